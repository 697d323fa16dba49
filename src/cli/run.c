/*
 * memtriage run [options] [--] CMD ARGS...: record every allocation of CMD
 * by preloading libmemtriage.so into it, then report on the trace.
 *
 * Like time(1), memtriage stays in the foreground, leaves CMD's stdin,
 * stdout and stderr alone, ignores SIGINT and SIGQUIT while CMD runs (the
 * terminal sends them to CMD too, and we want to report on what CMD
 * recorded), forwards SIGTERM and SIGHUP, and exits with CMD's status.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli/cli.h"

static void run_usage(FILE *f)
{
	fprintf(f, "usage: memtriage run [<options>] [--] CMD [ARGS...]\n\n"
	        "Runs CMD with the recorder preloaded (LD_PRELOAD), writes every allocation\n"
	        "and free to a trace, then prints a report on stderr.  Exits with CMD's status.\n"
	        "Child processes of CMD are not recorded.\n\noptions:\n"
	        "  -o, --output TRACE  trace file (default memtriage.<CMD>.<pid>.trace here)\n"
	        "      --report FILE   write the report to FILE instead of stderr ('-': stdout)\n"
	        "  -n, --top N         call stacks per top list (default %d)\n"
	        "      --no-report     only record; read it later with 'memtriage report'\n"
	        "      --interval MS   sample RSS and allocator statistics every MS ms (default 100)\n"
	        "      --trim-probe[=end|markers]\n"
	        "                      call malloc_trim(0) when CMD exits (end, the default) and also\n"
	        "                      at each marker (markers), recording RSS before and after: the\n"
	        "                      memory glibc held free and could give back (glibc only)\n"
	        "  -h, --help          show this help\n\n"
	        "environment:\n"
	        "  MEMTRIAGE_LIB       path of libmemtriage.so (default: next to the memtriage\n"
	        "                      executable, or in ../lib/memtriage/ from it)\n"
	        "  LD_PRELOAD          kept: libraries already preloaded (an allocator such as\n"
	        "                      libjemalloc.so.2) load after the recorder and still serve\n"
	        "                      the allocations\n", MT_TOP_DEFAULT);
}

struct run_args {
	const char *output, *report;
	unsigned top_n;
	int no_report;
	unsigned interval_ms;    /* 0: the recorder's default */
	const char *trim_probe;  /* NULL, "end" or "markers" */
	char **cmd;
};

enum { OPT_REPORT = 256, OPT_NO_REPORT, OPT_INTERVAL, OPT_TRIM_PROBE };

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct run_args *ra)
{
	static const struct option longopts[] = {
		{ "output",    required_argument, NULL, 'o' },
		{ "report",    required_argument, NULL, OPT_REPORT },
		{ "top",       required_argument, NULL, 'n' },
		{ "no-report", no_argument,       NULL, OPT_NO_REPORT },
		{ "interval",  required_argument, NULL, OPT_INTERVAL },
		{ "trim-probe", optional_argument, NULL, OPT_TRIM_PROBE },
		{ "help",      no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 0;
	opterr = 0;
	/* '+': stop at CMD, whose own options are not ours */
	while ((c = getopt_long(argc, argv, "+:o:n:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':           ra->output = optarg; break;
		case OPT_REPORT:    ra->report = optarg; break;
		case OPT_NO_REPORT: ra->no_report = 1; break;
		case OPT_INTERVAL:
			if (mt_parse_uint("run", "--interval", optarg, 1, 3600 * 1000, &ra->interval_ms))
				return MT_EXIT_USAGE;
			break;
		case OPT_TRIM_PROBE:
			ra->trim_probe = optarg ? optarg : "end";
			if (strcmp(ra->trim_probe, "end") && strcmp(ra->trim_probe, "markers"))
				return mt_usage_error("run", "--trim-probe takes 'end' or 'markers'");
			break;
		case 'n':
			if (mt_parse_uint("run", "--top", optarg, 1, MT_TOP_MAX, &ra->top_n))
				return MT_EXIT_USAGE;
			break;
		case 'h': run_usage(stdout); return MT_EXIT_OK;
		default:  return mt_bad_option("run", c, argv);
		}
	}
	if (optind >= argc)
		return mt_usage_error("run", "missing the command to run");
	ra->cmd = argv + optind;
	return -1;
}

/* ---- the child ---------------------------------------------------------- */

/* Default trace name for CMD run as pid: memtriage.<basename>.<pid>.trace. */
static void default_trace(char *buf, size_t cap, const char *cmd, pid_t pid)
{
	const char *base = strrchr(cmd, '/');
	base = base ? base + 1 : cmd;
	snprintf(buf, cap, "memtriage.%s.%ld.trace", *base ? base : "cmd", (long)pid);
}

/* Absolute form of path, for a child that may change its directory. */
static void absolute(char *buf, size_t cap, const char *path)
{
	char cwd[PATH_MAX];
	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		snprintf(buf, cap, "%s", path);
	else
		snprintf(buf, cap, "%s/%s", cwd, path);
}

/*
 * In the child: preload the recorder ahead of any LD_PRELOAD already set,
 * name the trace, exec.  On failure sends errno through `fd` (close-on-exec,
 * so the parent reads EOF when exec succeeds) and exits 127.
 */
static void __attribute__((noreturn)) child(const struct run_args *ra, const char *lib, int fd,
                                            const sigset_t *mask)
{
	char trace[PATH_MAX], abs[2 * PATH_MAX + 2];
	const char *old = getenv("LD_PRELOAD");
	size_t len = strlen(lib) + (old ? strlen(old) : 0) + 2;
	char *preload = malloc(len);

	if (ra->output)
		snprintf(trace, sizeof(trace), "%s", ra->output);
	else
		default_trace(trace, sizeof(trace), ra->cmd[0], getpid());
	absolute(abs, sizeof(abs), trace);
	if (preload) {
		snprintf(preload, len, "%s%s%s", lib, old && *old ? " " : "", old && *old ? old : "");
		setenv("LD_PRELOAD", preload, 1);
	}
	setenv("MEMTRIAGE_OUTPUT", abs, 1);
	if (ra->trim_probe)
		setenv("MEMTRIAGE_TRIM_PROBE", ra->trim_probe, 1);
	if (ra->interval_ms) {
		char ms[16];
		snprintf(ms, sizeof(ms), "%u", ra->interval_ms);
		setenv("MEMTRIAGE_INTERVAL_MS", ms, 1);
	}
	sigprocmask(SIG_SETMASK, mask, NULL);
	execvp(ra->cmd[0], ra->cmd);
	int e = errno;
	if (write(fd, &e, sizeof(e)) < 0)
		_exit(MT_EXIT_NOEXEC);
	_exit(MT_EXIT_NOEXEC);
}

/* ---- waiting ------------------------------------------------------------ */

static volatile pid_t child_pid;

static void forward(int sig)
{
	int e = errno;
	if (child_pid > 0)
		kill(child_pid, sig);
	errno = e;
}

static void set_handler(int sig, void (*fn)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

/* Waits for the child; returns its exit status in the shell's convention. */
static int wait_child(pid_t pid, const char *cmd)
{
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			mt_error("cannot wait for '%s': %s", cmd, strerror(errno));
			return MT_EXIT_FAIL;
		}
	}
	if (WIFSIGNALED(st)) {
		mt_error("'%s' was killed by signal %d (%s)%s", cmd, WTERMSIG(st),
		         strsignal(WTERMSIG(st)), WCOREDUMP(st) ? ", core dumped" : "");
		return 128 + WTERMSIG(st);
	}
	return WEXITSTATUS(st);
}

/*
 * Forks and execs CMD; returns its status.  When CMD could not be started
 * prints why, leaves *pid_out 0 and returns 127 (not found), 126 (not
 * executable) or 1.
 */
static int spawn(const struct run_args *ra, const char *lib, pid_t *pid_out)
{
	sigset_t block, old;
	int fds[2];

	if (pipe2(fds, O_CLOEXEC)) {
		mt_error("cannot run '%s': %s", ra->cmd[0], strerror(errno));
		return MT_EXIT_FAIL;
	}
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &old);  /* no signal lost between fork and handlers */
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		child(ra, lib, fds[1], &old);
	}
	int fork_errno = errno;
	close(fds[1]);
	if (pid < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(fds[0]);
		mt_error("cannot run '%s': %s", ra->cmd[0], strerror(fork_errno));
		return MT_EXIT_FAIL;
	}
	*pid_out = child_pid = pid;
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	set_handler(SIGTERM, forward);
	set_handler(SIGHUP, forward);
	sigprocmask(SIG_SETMASK, &old, NULL);

	int e = mt_exec_error(fds[0]);
	int status = wait_child(pid, ra->cmd[0]);
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (e) {
		mt_error("cannot run '%s': %s", ra->cmd[0], strerror(e));
		*pid_out = 0;
		/* the shell's convention: 127 not found, 126 found but not executable */
		return mt_exec_status(e);
	}
	return status;
}

/* ---- after the run ------------------------------------------------------ */

/* Reports on the trace into --report FILE or stderr; returns 0 or an exit status. */
static int report(const struct run_args *ra, const char *trace)
{
	if (!ra->report)
		return mt_write_report(trace, &mt_report_text, ra->top_n, stderr, "stderr");
	if (strcmp(ra->report, "-") == 0)
		return mt_write_report(trace, &mt_report_text, ra->top_n, stdout, "stdout");
	FILE *out = fopen(ra->report, "w");
	if (!out) {
		mt_error("cannot write '%s': %s", ra->report, strerror(errno));
		return MT_EXIT_FAIL;
	}
	int rc = mt_write_report(trace, &mt_report_text, ra->top_n, out, ra->report);
	if (fclose(out) && !rc) {
		mt_error("cannot write '%s': %s", ra->report, strerror(errno));
		rc = MT_EXIT_FAIL;
	}
	return rc;
}

int mt_cmd_run(int argc, char **argv)
{
	struct run_args ra = { .top_n = MT_TOP_DEFAULT };
	char trace[PATH_MAX];
	struct stat st;
	pid_t pid = 0;

	int rc = parse_args(argc, argv, &ra);
	if (rc >= 0)
		return rc;
	char *lib = mt_find_lib(MT_RECORDER_LIB);
	if (!lib)
		return MT_EXIT_USAGE;
	/* a stale trace must not pass for this run's if the recorder never starts */
	if (ra.output && !stat(ra.output, &st) && S_ISREG(st.st_mode))
		unlink(ra.output);
	int status = spawn(&ra, lib, &pid);
	free(lib);
	if (!pid)
		return status;

	if (ra.output)
		snprintf(trace, sizeof(trace), "%s", ra.output);
	else
		default_trace(trace, sizeof(trace), ra.cmd[0], pid);
	if (stat(trace, &st)) {
		/* the recorder never started (static binary, setuid) */
		mt_error("no trace was written to '%s' (is '%s' statically linked or setuid?)",
		         trace, ra.cmd[0]);
		return status;
	}
	char size[MT_FMT_LEN];
	mt_error("trace written to '%s' (%s)", trace, mt_fmt_size(size, (uint64_t)st.st_size));
	if (!ra.no_report)
		report(&ra, trace);
	return status;
}
