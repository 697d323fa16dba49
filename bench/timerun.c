/* timerun: run a command, report its wall time and the peak RSS of its process tree.
 *
 *   timerun [-w COMM] RESULT_FILE TIMEOUT_S CMD [ARGS...]
 *
 * Writes one line to RESULT_FILE:  "<wall_s> <maxrss_kb> <status> <pid> <cpu_s> <watch_kb>"
 *   wall_s     CLOCK_MONOTONIC seconds from fork to reaping the child
 *   maxrss_kb  getrusage(RUSAGE_CHILDREN).ru_maxrss: the largest RSS of any process of the
 *              tree that was reaped (the command and the descendants it waited for); the same
 *              figure GNU time's %M gives, without needing the 'time' package
 *   status     exit code, 128+signal if killed by a signal, 124 if TIMEOUT_S expired
 *              (the command's process group then gets SIGTERM, and SIGKILL 2 s later)
 *   pid        the command's pid (= its process group)
 *   cpu_s      user + system CPU seconds of the reaped tree
 *   watch_kb   with -w COMM: the largest VmHWM seen, polling /proc every 20 ms, among the
 *              processes of the command's process group named COMM (e.g. the program that
 *              heaptrack's script runs, whose own peak RSS getrusage cannot separate from
 *              heaptrack_interpret's); 0 without -w
 * Exit status: that of the command (same encoding).  TIMEOUT_S 0 means no limit.
 * The command runs in its own process group, so a timeout also ends what it started;
 * SIGINT/SIGTERM to timerun are forwarded to that group. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* largest VmHWM (kB) among the processes of process group pgrp named comm */
static long watch_hwm(pid_t pgrp, const char *comm)
{
	long best = 0;
	DIR *d = opendir("/proc");
	if (!d) return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
		char path[300], buf[1024];
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f) continue;
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = 0;
		char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
		if (!lp || !rp) continue;
		int pg = 0;
		char state;
		if (sscanf(rp + 1, " %c %*d %d", &state, &pg) != 2 || pg != pgrp) continue;
		*rp = 0;
		if (strcmp(lp + 1, comm)) continue;
		snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
		if (!(f = fopen(path, "r"))) continue;
		while (fgets(buf, sizeof buf, f)) {
			long kb;
			if (sscanf(buf, "VmHWM: %ld", &kb) == 1 && kb > best) best = kb;
		}
		fclose(f);
	}
	closedir(d);
	return best;
}

int main(int argc, char **argv)
{
	const char *watch = NULL;
	if (argc > 2 && !strcmp(argv[1], "-w")) {
		watch = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: timerun [-w COMM] RESULT_FILE TIMEOUT_S CMD [ARGS...]\n");
		return 2;
	}
	const char *result = argv[1];
	double limit = atof(argv[2]);

	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &old);

	double t0 = now();
	pid_t pid = fork();
	if (pid < 0) {
		perror("timerun: fork");
		return 2;
	}
	if (pid == 0) {
		setpgid(0, 0);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[3], argv + 3);
		fprintf(stderr, "timerun: cannot run '%s': %s\n", argv[3], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);

	int status = 0, timed_out = 0, interrupted = 0;
	long hwm = 0;
	double kill_at = 0;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid) break;
		if (r < 0 && errno != EINTR) { perror("timerun: waitpid"); return 2; }
		double t = now(), wait_s = 1.0;
		if (limit > 0 && !timed_out && !interrupted) {
			if (t - t0 >= limit) {
				timed_out = 1;
				kill(-pid, SIGTERM);
				kill_at = t + 2.0;
				continue;
			}
			wait_s = t0 + limit - t;
		}
		if (kill_at > 0) {
			if (t >= kill_at) { kill(-pid, SIGKILL); kill_at = 0; continue; }
			wait_s = kill_at - t;
		}
		if (wait_s > 1.0) wait_s = 1.0;
		if (watch) {
			long kb = watch_hwm(pid, watch);
			if (kb > hwm) hwm = kb;
			if (wait_s > 0.02) wait_s = 0.02;
		}
		struct timespec ts = { (time_t)wait_s, (long)((wait_s - (double)(time_t)wait_s) * 1e9) };
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
			interrupted = sig;
			kill(-pid, sig);
			if (kill_at == 0) kill_at = now() + 2.0;
		}
	}
	double wall = now() - t0;
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);

	int code;
	if (timed_out) code = 124;
	else if (WIFEXITED(status)) code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status)) code = 128 + WTERMSIG(status);
	else code = 2;

	FILE *f = fopen(result, "w");
	if (!f) { perror(result); return 2; }
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
	             (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
	fprintf(f, "%.4f %ld %d %d %.3f %ld\n", wall, ru.ru_maxrss, code, (int)pid, cpu, hwm);
	fclose(f);
	if (interrupted) {
		signal(interrupted, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		raise(interrupted);
	}
	return code;
}
