/*
 * memtriage guard --max-rss SIZE [options] [--] CMD ARGS...: run CMD, and
 * when its RSS passes SIZE stop it (SIGTERM, then SIGKILL after a grace
 * period) and start it again, with exponential backoff, at most
 * --restart-limit times.
 *
 * What is measured: VmRSS of CMD's own process (/proc/PID/status), not the
 * sum over its children: a wrapper such as `sh -c` should `exec` the real
 * program.  What is stopped: CMD's whole process group; CMD is started as
 * the leader of a new one, so its children go with it and none outlives
 * guard; guard is their subreaper (PR_SET_CHILD_SUBREAPER), so it reaps
 * the orphans of that tree too.  (A CMD in its own group is not the
 * terminal's foreground group: reading the terminal stops it with SIGTTIN.)
 *
 * Signals are blocked for the whole run and taken with sigtimedwait(),
 * which is also the check timer, as in watch.c: no handler runs.  SIGINT,
 * SIGTERM and SIGHUP to guard stop CMD the same way (SIGTERM to the group,
 * the grace period, SIGKILL) and guard exits 128 + that signal.  When CMD
 * ends by itself guard exits with its status, 128 + N when a signal N
 * killed it, and does not restart it: only the memory limit restarts.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"
#include "watch/watch.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S  1000000000ull
#define GUARD_CHECK_DEFAULT_NS   NS_PER_S
#define GUARD_CHECK_MIN_NS       (10 * NS_PER_MS)   /* one /proc read ~50 us: < 1% of a CPU */
#define GUARD_CHECK_MAX_NS       (3600 * NS_PER_S)
#define GUARD_GRACE_DEFAULT_NS   (10 * NS_PER_S)
#define GUARD_GRACE_MAX_NS       (3600 * NS_PER_S)
#define GUARD_RESTART_DEFAULT    10                 /* a runaway loop ends within minutes */
#define GUARD_RESTART_MAX        1000000
#define GUARD_BACKOFF_FIRST_NS   (100 * NS_PER_MS)  /* doubled after each restart... */
#define GUARD_BACKOFF_MAX_NS     (30 * NS_PER_S)    /* ...up to this */
#define GUARD_BACKOFF_RESET_NS   (60 * NS_PER_S)    /* a run this long was healthy: start over */
#define GUARD_GROUP_POLL_NS      (10 * NS_PER_MS)   /* in the grace period: is the group gone? */
#define GUARD_KILL_WAIT_NS       NS_PER_S           /* after SIGKILL: for the group's last to go */

static void guard_usage(FILE *f)
{
	fprintf(f, "usage: memtriage guard --max-rss SIZE [<options>] [--] CMD [ARGS...]\n\n"
	        "Runs CMD and checks its RSS (VmRSS of its own process in /proc/PID/status) every\n"
	        "check interval.  When RSS passes SIZE it sends SIGTERM to CMD's process group,\n"
	        "SIGKILL after the grace period, and starts CMD again after a backoff (0.1 s,\n"
	        "doubled after each restart up to 30 s, back to 0.1 s after a run longer than\n"
	        "60 s).  After --restart-limit restarts it stops CMD for good and exits 1.\n"
	        "When CMD ends by itself guard exits with its status.  CMD keeps stdin, stdout\n"
	        "and stderr; it runs in its own process group, so its children are stopped too.\n"
	        "SIGINT, SIGTERM or SIGHUP to guard stop CMD the same way, then guard exits.\n\n"
	        "options:\n"
	        "  -m, --max-rss SIZE            the limit: bytes, with K, M or G (powers of 1024),\n"
	        "                                or N%% of the memory limit of guard's cgroup\n"
	        "                                (cgroup v2 memory.max or v1 memory.limit_in_bytes)\n"
	        "  -g, --grace DURATION          time between SIGTERM and SIGKILL (default 10s)\n"
	        "  -i, --check-interval DURATION time between checks (default 1s, at least 10ms)\n"
	        "  -r, --restart-limit N         restarts before giving up (default %d; 0: none)\n"
	        "  -h, --help                    show this help\n\n"
	        "DURATION is a number with a unit: 50ms, 0.05, 1s, 10m (no unit: seconds).\n\n"
	        "examples:\n"
	        "  memtriage guard --max-rss 2G -- ./server --port 8080\n"
	        "  memtriage guard --max-rss 80%% --check-interval 100ms -- python3 worker.py\n",
	        GUARD_RESTART_DEFAULT);
}

struct guard_args {
	uint64_t max_rss;                 /* bytes */
	uint64_t check_ns, grace_ns;
	unsigned restart_limit;
	char **cmd;                       /* NULL-terminated */
};

/* ---- options ------------------------------------------------------------ */

/*
 * The effective memory limit of guard's own cgroup: the smallest limit
 * set on it or an ancestor (a parent's limit binds its children too),
 * under `root` with `file` in each folder.  Returns 1 with *out set, 0
 * when none is set or the files cannot be read.
 */
static int cgroup_limit_under(const char *root, const char *file, char *path, uint64_t *out)
{
	char fpath[512], text[64];
	uint64_t best = UINT64_MAX, v;
	for (;;) {
		snprintf(fpath, sizeof(fpath), "%s%s/%s", root, path, file);
		int fd = open(fpath, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = read(fd, text, sizeof(text) - 1);
			close(fd);
			text[n > 0 ? n : 0] = 0;
			if (n > 0 && mt_watch_parse_cg_value(text, &v) == 1 && v < best)
				best = v;
		}
		char *slash = strrchr(path, '/');
		if (!slash)
			break;
		*slash = 0;               /* up one level; "" is the root */
	}
	if (best == UINT64_MAX)
		return 0;
	*out = best;
	return 1;
}

/* Guard's cgroup memory limit: v2 first, then v1.  Returns 1 with *out set, 0 when none. */
static int cgroup_limit(uint64_t *out)
{
	char text[4096], path[256];
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n > 0 ? n : 0] = 0;
	if (mt_watch_parse_cgroup(text, 2, path, sizeof(path)) == 0 &&
	    cgroup_limit_under("/sys/fs/cgroup", "memory.max", strcmp(path, "/") ? path : path + 1,
	                       out))
		return 1;
	if (mt_watch_parse_cgroup(text, 1, path, sizeof(path)) == 0 &&
	    cgroup_limit_under("/sys/fs/cgroup/memory", "memory.limit_in_bytes",
	                       strcmp(path, "/") ? path : path + 1, out))
		return 1;
	return 0;
}

/* Parses SIZE: "1048576", "512K", "60M", "2G", "80%"; 0 or -1 after reporting. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (s[0] >= '0' && s[0] <= '9' && s[strlen(s) - 1] == '%') {
		double pct = strtod(s, &end);
		uint64_t limit;
		if (errno || *end != '%' || end[1] || !(pct > 0 && pct <= 100))
			return mt_usage_error("guard", "invalid value '%s' for --max-rss: a percentage "
			                      "is from 0 to 100%%", s), -1;
		if (!cgroup_limit(&limit))
			return mt_usage_error("guard", "cannot use --max-rss '%s': no memory limit is set "
			                      "on memtriage's cgroup", s), -1;
		*out = (uint64_t)((double)limit * pct / 100);
		return *out ? 0 : -1;
	}
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = !*end ? 0 : !strcmp(end, "K") || !strcmp(end, "k") ? 10 :
	                 !strcmp(end, "M") ? 20 : !strcmp(end, "G") ? 30 : 64;
	if (!(s[0] >= '0' && s[0] <= '9') || errno || end == s || shift == 64 || v == 0 ||
	    v > (UINT64_MAX >> shift))
		return mt_usage_error("guard", "invalid value '%s' for --max-rss: expected bytes with "
		                      "K, M or G, or a percentage such as 80%%", s), -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct guard_args *ga)
{
	static const struct option longopts[] = {
		{ "max-rss",        required_argument, NULL, 'm' },
		{ "grace",          required_argument, NULL, 'g' },
		{ "check-interval", required_argument, NULL, 'i' },
		{ "restart-limit",  required_argument, NULL, 'r' },
		{ "help",           no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *max_rss = NULL;
	int c;
	optind = 0;
	opterr = 0;
	/* '+': stop at CMD, whose own options are not ours */
	while ((c = getopt_long(argc, argv, "+:m:g:i:r:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': max_rss = optarg; break;
		case 'g':
			if (mt_parse_duration("guard", "--grace", optarg, 0, GUARD_GRACE_MAX_NS, &ga->grace_ns))
				return MT_EXIT_USAGE;
			break;
		case 'i':
			if (mt_parse_duration("guard", "--check-interval", optarg, GUARD_CHECK_MIN_NS,
			                   GUARD_CHECK_MAX_NS, &ga->check_ns))
				return MT_EXIT_USAGE;
			break;
		case 'r':
			if (mt_parse_uint("guard", "--restart-limit", optarg, 0, GUARD_RESTART_MAX,
			                  &ga->restart_limit))
				return MT_EXIT_USAGE;
			break;
		case 'h': guard_usage(stdout); return MT_EXIT_OK;
		default:  return mt_bad_option("guard", c, argv);
		}
	}
	if (!max_rss)
		return mt_usage_error("guard", "missing --max-rss");
	if (optind >= argc)
		return mt_usage_error("guard", "missing the command to run");
	/* after the loop, so that a bad option is reported before a cgroup without a limit */
	if (parse_size(max_rss, &ga->max_rss))
		return MT_EXIT_USAGE;
	ga->cmd = argv + optind;
	return -1;
}

/* ---- the child ------------------------------------------------------------ */

struct guard {
	const struct guard_args *ga;
	sigset_t sigs, old_mask;       /* taken with sigtimedwait; the caller's mask */
	void (*old_int)(int), (*old_chld)(int);
	pid_t child;                   /* also its process group; 0 when none runs */
	int wstatus;
	int stop_sig;                  /* the first SIGINT, SIGTERM or SIGHUP received, or 0 */
	unsigned n_stops;              /* how many of those were received */
};

/*
 * Reaps every child that has exited: CMD, and the orphans of its tree,
 * which come to guard as their subreaper.  Returns 1 once CMD is reaped
 * (or when none runs).
 */
static int try_reap(struct guard *g)
{
	for (;;) {
		int st;
		pid_t r = waitpid(-1, &st, WNOHANG);
		if (r > 0 && r == g->child)
			g->wstatus = st, g->child = 0;
		if (r > 0 || (r < 0 && errno == EINTR))
			continue;
		if (r < 0 && g->child)
			g->wstatus = 0, g->child = 0;   /* ECHILD: someone else reaped it */
		return g->child == 0;
	}
}

/* A signal other than SIGCHLD: remembers a request to stop. */
static void note_signal(struct guard *g, int sig)
{
	if (!sig || sig == SIGCHLD)
		return;
	if (!g->stop_sig)
		g->stop_sig = sig;
	g->n_stops++;
}

/*
 * In the child: a process group of its own, the caller's signal mask and
 * dispositions back, exec.  On failure sends errno through `fd`
 * (close-on-exec: the parent reads EOF when exec succeeds) and exits 127.
 */
static void __attribute__((noreturn)) exec_child(const struct guard *g, int fd)
{
	setpgid(0, 0);
	signal(SIGCHLD, g->old_chld);
	signal(SIGINT, g->old_int);
	sigprocmask(SIG_SETMASK, &g->old_mask, NULL);
	execvp(g->ga->cmd[0], g->ga->cmd);
	int e = errno;
	if (write(fd, &e, sizeof(e)) < 0)
		_exit(MT_EXIT_NOEXEC);
	_exit(MT_EXIT_NOEXEC);
}

/* Starts CMD; returns 0, or an exit status after reporting why it could not. */
static int spawn(struct guard *g)
{
	char **cmd = g->ga->cmd;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC)) {
		mt_error("cannot run '%s': %s", cmd[0], strerror(errno));
		return MT_EXIT_FAIL;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		exec_child(g, fds[1]);
	}
	int fork_errno = errno;
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		mt_error("cannot run '%s': %s", cmd[0], strerror(fork_errno));
		return MT_EXIT_FAIL;
	}
	setpgid(pid, pid);  /* in both: the group exists whichever runs first (EACCES after exec) */
	g->child = pid;
	int e = mt_exec_error(fds[0]);
	if (!e)
		return 0;
	while (!try_reap(g))
		note_signal(g, mt_wait_signal(&g->sigs, mt_mono_ns() + 10 * NS_PER_MS));
	mt_error("cannot run '%s': %s", cmd[0], strerror(e));
	/* the shell's convention: 127 not found, 126 found but not executable */
	return mt_exec_status(e);
}

/*
 * Stops CMD's process group: SIGTERM, then SIGKILL once the grace period
 * passes with any of the group left (at once when a second stop request
 * comes; logged), and reaps CMD.  Returns 1 when SIGKILL was needed.
 */
static int stop_group(struct guard *g)
{
	pid_t pgid = g->child;
	uint64_t deadline = mt_mono_ns() + g->ga->grace_ns;
	unsigned n_stops = g->n_stops;
	kill(-pgid, SIGTERM);
	for (;;) {
		if (try_reap(g) && kill(-pgid, 0) < 0)
			return 0;             /* CMD reaped, and nothing of its group left */
		uint64_t now = mt_mono_ns();
		if (now >= deadline || g->n_stops > n_stops)
			break;
		uint64_t next = now + GUARD_GROUP_POLL_NS;
		note_signal(g, mt_wait_signal(&g->sigs, next < deadline ? next : deadline));
	}
	mt_error("guard: '%s' outlived the grace period: sent SIGKILL", g->ga->cmd[0]);
	kill(-pgid, SIGKILL);
	/* SIGKILL cannot be caught: the group is gone (and reaped) within moments */
	deadline = mt_mono_ns() + GUARD_KILL_WAIT_NS;
	while ((!try_reap(g) || kill(-pgid, 0) == 0) && mt_mono_ns() < deadline)
		note_signal(g, mt_wait_signal(&g->sigs, mt_mono_ns() + GUARD_GROUP_POLL_NS));
	while (!try_reap(g))
		note_signal(g, mt_wait_signal(&g->sigs, mt_mono_ns() + GUARD_GROUP_POLL_NS));
	return 1;
}

/* VmRSS of `pid` in bytes; 0 when it has none (a zombie) or cannot be read. */
static uint64_t read_rss(pid_t pid)
{
	char path[64], text[4096];
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n > 0 ? n : 0] = 0;
	const char *p = strstr(text, "\nVmRSS:");
	return p ? strtoull(p + 7, NULL, 10) * 1024 : 0;
}

/* CMD's status in the shell's convention; says so when a signal killed it. */
static int command_status(const struct guard *g)
{
	if (WIFSIGNALED(g->wstatus)) {
		int sig = WTERMSIG(g->wstatus);
		mt_error("'%s' was killed by signal %d (%s)%s", g->ga->cmd[0], sig, strsignal(sig),
		         WCOREDUMP(g->wstatus) ? ", core dumped" : "");
		return 128 + sig;
	}
	return WEXITSTATUS(g->wstatus);
}

enum run_end { RUN_EXITED, RUN_OVER_LIMIT, RUN_STOPPED };

/*
 * Checks CMD every interval until it exits, passes the limit or guard is
 * told to stop.  Over the limit, logs it and stops the group.
 */
static enum run_end watch_run(struct guard *g, unsigned restarts)
{
	const struct guard_args *ga = g->ga;
	uint64_t next = mt_mono_ns();
	for (;;) {
		if (try_reap(g))
			return RUN_EXITED;
		if (g->stop_sig)
			return RUN_STOPPED;
		uint64_t rss = read_rss(g->child);
		if (rss > ga->max_rss) {
			char r[MT_FMT_LEN], l[MT_FMT_LEN], what[64];
			if (restarts < ga->restart_limit)
				snprintf(what, sizeof(what), "restart %u of %u", restarts + 1,
				         ga->restart_limit);
			else
				snprintf(what, sizeof(what), "restart limit %u reached", ga->restart_limit);
			mt_error("guard: RSS %s > limit %s: sending SIGTERM to %ld (%s)",
			         mt_fmt_size(r, rss), mt_fmt_size(l, ga->max_rss), (long)g->child, what);
			stop_group(g);
			return RUN_OVER_LIMIT;
		}
		uint64_t now = mt_mono_ns();
		next += ga->check_ns;
		while (next <= now)    /* fell behind (a loaded machine): skip, do not burst */
			next += ga->check_ns;
		int sig;
		while ((sig = mt_wait_signal(&g->sigs, next)) && sig == SIGCHLD && !try_reap(g))
			;
		note_signal(g, sig);
	}
}

/* Sleeps `ns` unless a stop request comes; returns 1 when one did. */
static int backoff(struct guard *g, uint64_t ns)
{
	uint64_t deadline = mt_mono_ns() + ns;
	int sig;
	while (!g->stop_sig && (sig = mt_wait_signal(&g->sigs, deadline)))
		note_signal(g, sig);
	return g->stop_sig != 0;
}

/* Runs, checks and restarts CMD; returns guard's exit status. */
static int guard_loop(struct guard *g)
{
	const struct guard_args *ga = g->ga;
	uint64_t delay = GUARD_BACKOFF_FIRST_NS;
	for (unsigned restarts = 0;; restarts++) {
		uint64_t start = mt_mono_ns();
		int rc = spawn(g);
		if (rc)
			return rc;
		mt_error("guard: started '%s' as pid %ld", ga->cmd[0], (long)g->child);
		switch (watch_run(g, restarts)) {
		case RUN_EXITED:
			return command_status(g);
		case RUN_STOPPED:
			mt_error("guard: %s: sending SIGTERM to %ld", strsignal(g->stop_sig),
			         (long)g->child);
			stop_group(g);
			return 128 + g->stop_sig;
		case RUN_OVER_LIMIT:
			break;
		}
		if (g->stop_sig)
			return 128 + g->stop_sig;
		if (restarts >= ga->restart_limit) {
			mt_error("guard: giving up on '%s': its RSS passed the limit after %u restart%s",
			         ga->cmd[0], restarts, restarts == 1 ? "" : "s");
			return MT_EXIT_FAIL;
		}
		if (mt_mono_ns() - start > GUARD_BACKOFF_RESET_NS)
			delay = GUARD_BACKOFF_FIRST_NS;
		if (backoff(g, delay))
			return 128 + g->stop_sig;
		delay = delay * 2 < GUARD_BACKOFF_MAX_NS ? delay * 2 : GUARD_BACKOFF_MAX_NS;
	}
}

int mt_cmd_guard(int argc, char **argv)
{
	struct guard_args ga = {
		.check_ns = GUARD_CHECK_DEFAULT_NS, .grace_ns = GUARD_GRACE_DEFAULT_NS,
		.restart_limit = GUARD_RESTART_DEFAULT,
	};
	struct guard g;
	int rc = parse_args(argc, argv, &ga);
	if (rc >= 0)
		return rc;
	memset(&g, 0, sizeof(g));
	g.ga = &ga;
	sigemptyset(&g.sigs);
	sigaddset(&g.sigs, SIGINT);
	sigaddset(&g.sigs, SIGTERM);
	sigaddset(&g.sigs, SIGHUP);
	sigaddset(&g.sigs, SIGCHLD);
	/* waitpid needs SIGCHLD not ignored; a background job starts with SIGINT ignored */
	g.old_chld = signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_BLOCK, &g.sigs, &g.old_mask);
	g.old_int = signal(SIGINT, SIG_DFL);
	/* orphans of CMD's tree come to guard, which reaps them: none is left a zombie */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	rc = guard_loop(&g);
	sigprocmask(SIG_SETMASK, &g.old_mask, NULL);
	return rc;
}
