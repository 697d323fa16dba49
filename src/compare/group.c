/*
 * Memory of a process group from /proc.  A run's command may be a shell
 * or a launcher whose child is the real program (`sh -c 'server ...'`,
 * a server with worker processes), so `compare` measures the group the
 * run was started in, not one pid.  RSS is summed over the group (shared
 * pages count once per process that maps them, as in `ps`); VmPeak is the
 * largest single one, as a sum of address-space sizes means nothing.
 *
 * A full scan of /proc costs about 10 us per process on this machine
 * kind; at the default 100 ms interval that is well under 1% of a core
 * with a few hundred processes.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "compare/compare.h"

/* Reads /proc/PID/<name> into buf (NUL-terminated); bytes read, or -1. */
static ssize_t read_proc(const char *pid, const char *name, char *buf, size_t cap)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%s/%s", pid, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/*
 * Process group and state of /proc/PID/stat: "pid (comm) S ppid pgrp ...";
 * comm may hold spaces and parentheses, so fields follow the last ')'.
 */
static int stat_ids(const char *pid, pid_t *ppid, pid_t *pgrp, char *state)
{
	char buf[512];
	if (read_proc(pid, "stat", buf, sizeof(buf)) <= 0)
		return -1;
	char *p = strrchr(buf, ')');
	int pp, pg;
	if (!p || sscanf(p + 1, " %c %d %d", state, &pp, &pg) != 3)
		return -1;
	*ppid = pp;
	*pgrp = pg;
	return 0;
}

/* "Key:   1234 kB" in a status file, in bytes; 0 when absent. */
static uint64_t status_kb(const char *status, const char *key)
{
	const char *p = strstr(status, key);
	if (!p)
		return 0;
	return strtoull(p + strlen(key), NULL, 10) * 1024;
}

/* Which processes each_proc() picks: those of a group, or the children of a process. */
enum pick { BY_GROUP, BY_PARENT };

/*
 * Calls fn (when not NULL) for every process whose group (BY_GROUP) or
 * parent (BY_PARENT) is `id`, zombies only with_zombies; returns how many.
 */
static unsigned each_proc(enum pick by, pid_t id, int with_zombies,
                          void (*fn)(const char *pid, void *arg), void *arg)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	unsigned n = 0;
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		pid_t pg, pp;
		char state;
		if (!isdigit((unsigned char)e->d_name[0]) || stat_ids(e->d_name, &pp, &pg, &state))
			continue;
		if ((by == BY_GROUP ? pg : pp) != id || (!with_zombies && (state == 'Z' || state == 'X')))
			continue;
		n++;
		if (fn)
			fn(e->d_name, arg);
	}
	closedir(d);
	return n;
}

static void add_member(const char *pid, void *arg)
{
	struct cmp_mem *m = arg;
	char status[4096];
	if (read_proc(pid, "status", status, sizeof(status)) <= 0)
		return;
	/* an exiting process has lost its mm: no VmRSS line, and it counts for nothing */
	if (!strstr(status, "\nVmRSS:"))
		return;
	uint64_t peak = status_kb(status, "\nVmPeak:");
	m->with_mm++;
	m->rss += status_kb(status, "\nVmRSS:");
	if (peak > m->vm_peak)
		m->vm_peak = peak;
}

int cmp_group_mem(pid_t pgid, struct cmp_mem *m)
{
	memset(m, 0, sizeof(*m));
	m->procs = each_proc(BY_GROUP, pgid, 0, add_member, m);
	return m->with_mm ? 0 : -ESRCH;
}

unsigned cmp_group_count(pid_t pgid)
{
	return each_proc(BY_GROUP, pgid, 1, NULL, NULL);
}

static void kill_one(const char *pid, void *arg)
{
	kill((pid_t)atol(pid), SIGKILL);
}

unsigned cmp_children_kill(pid_t parent)
{
	return each_proc(BY_PARENT, parent, 0, kill_one, NULL);
}
