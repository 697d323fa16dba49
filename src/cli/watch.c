/*
 * memtriage watch [options] (PID | -- CMD [ARGS...]): sample a process's
 * memory from outside (/proc and its cgroup; no injection, so any program
 * in any language) and tell whether its RSS grows, levels off after a
 * warm-up, or neither.
 *
 * Signals are blocked for the whole watch and taken with sigtimedwait(),
 * which is also the sampling timer: no handler runs, so nothing races
 * with the loop.  Watching a PID, SIGINT, SIGTERM and SIGHUP stop the
 * sampling and the report follows; that process is never signalled.
 * Running CMD, memtriage behaves like `memtriage run` (and time(1)): CMD
 * keeps stdin, stdout and stderr, SIGTERM and SIGHUP are forwarded to it,
 * SIGQUIT is left to it, SIGINT stops the sampling (the terminal sends it
 * to CMD too), and memtriage exits with CMD's status.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"
#include "watch/watch.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S  1000000000ull
#define WATCH_INTERVAL_DEFAULT_NS NS_PER_S
#define WATCH_INTERVAL_MIN_NS     (10 * NS_PER_MS)   /* /proc reads cost ~50 us; 10 ms keeps it < 1% */
#define WATCH_INTERVAL_MAX_NS     (3600 * NS_PER_S)
#define WATCH_DURATION_MAX_NS     (366ull * 24 * 3600 * NS_PER_S)
#define WATCH_STATUS_PERIOD_NS    (200 * NS_PER_MS)  /* live line redrawn at most 5 times a second */
#define WATCH_GRACE_NS            NS_PER_S           /* after SIGINT: time for CMD to exit first */

static void watch_usage(FILE *f)
{
	fprintf(f, "usage: memtriage watch [<options>] PID\n"
	        "   or: memtriage watch [<options>] -- CMD [ARGS...]\n\n"
	        "Samples a process's memory from outside, without injecting anything, so it works\n"
	        "on any program in any language: RSS and its anonymous/file/shared split, swap,\n"
	        "threads (/proc/PID/status), Pss (/proc/PID/smaps_rollup) and the cgroup's memory.\n"
	        "When sampling ends it prints a report: growing, plateau after warm-up, or no\n"
	        "significant growth, with the statistics behind the verdict.\n\n"
	        "With PID it samples until the process exits, --duration passes or you press\n"
	        "Ctrl-C (the process itself is never signalled).  With -- CMD it runs CMD, samples\n"
	        "it until it exits and exits with CMD's status; CMD's stdin, stdout and stderr are\n"
	        "left alone.\n\noptions:\n"
	        "  -i, --interval DURATION  time between samples (default 1s, at least 10ms)\n"
	        "  -d, --duration DURATION  stop sampling after DURATION (CMD keeps running)\n"
	        "  -o, --output FILE        write the report to FILE ('-': stdout); default stdout\n"
	        "                           when watching a PID, stderr when running CMD\n"
	        "  -l, --listen ADDR:PORT   while sampling, serve OpenMetrics at\n"
	        "                           http://ADDR:PORT/metrics (':PORT': all interfaces,\n"
	        "                           '[::1]:PORT': IPv6; port 0: any free port, printed)\n"
	        "  -h, --help               show this help\n\n"
	        "DURATION is a number with a unit: 50ms, 1s, 1.5s, 10m, 2h (no unit: seconds).\n"
	        "On a terminal a live line on stderr shows RSS and the slope so far.\n\n"
	        "examples:\n"
	        "  memtriage watch --interval 5s --duration 1h 4242\n"
	        "  memtriage watch --interval 50ms -- python3 server.py\n"
	        "  memtriage watch --listen :9464 4242\n");
}

struct watch_args {
	uint64_t interval_ns, duration_ns;   /* duration 0: none */
	const char *output;
	const char *listen;                   /* --listen ADDR:PORT, or NULL */
	pid_t pid;                            /* PID mode */
	char **cmd;                           /* CMD mode: NULL-terminated */
};

/* ---- options ------------------------------------------------------------ */

/* A PID argument: a decimal from 1 to INT_MAX; 0 or -1 after reporting. */
static int parse_pid(const char *s, pid_t *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < 1 || v > 0x7fffffff || !(s[0] >= '0' && s[0] <= '9')) {
		mt_usage_error("watch", "'%s' is not a process id; to run a command, put it after '--'",
		               s);
		return -1;
	}
	*out = (pid_t)v;
	return 0;
}

/* A --listen value's syntax; the address itself is checked when it is bound. */
static int check_listen(const char *s)
{
	char host[256];
	unsigned port;
	if (mt_watch_listen_split(s, host, sizeof(host), &port) == 0)
		return 0;
	mt_usage_error("watch", "invalid value '%s' for --listen: expected HOST:PORT, [IPV6]:PORT "
	               "or :PORT, PORT from 0 to 65535", s);
	return -1;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct watch_args *wa)
{
	static const struct option longopts[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "duration", required_argument, NULL, 'd' },
		{ "output",   required_argument, NULL, 'o' },
		{ "listen",   required_argument, NULL, 'l' },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:i:d:o:l:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (mt_parse_duration("watch", "--interval", optarg, WATCH_INTERVAL_MIN_NS,
			                   WATCH_INTERVAL_MAX_NS, &wa->interval_ns))
				return MT_EXIT_USAGE;
			break;
		case 'd':
			if (mt_parse_duration("watch", "--duration", optarg, WATCH_INTERVAL_MIN_NS,
			                   WATCH_DURATION_MAX_NS, &wa->duration_ns))
				return MT_EXIT_USAGE;
			break;
		case 'o': wa->output = optarg; break;
		case 'l':
			if (check_listen(optarg))
				return MT_EXIT_USAGE;
			wa->listen = optarg;
			break;
		case 'h': watch_usage(stdout); return MT_EXIT_OK;
		default:  return mt_bad_option("watch", c, argv);
		}
	}
	int dashdash = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
	if (optind >= argc)
		return mt_usage_error("watch", dashdash ? "missing the command to run after '--'" :
		                      "missing the process id, or '--' and a command to run");
	if (dashdash) {
		wa->cmd = argv + optind;
		return -1;
	}
	if (argc - optind > 1)
		return mt_usage_error("watch", "too many arguments; to run a command, put it after '--'");
	return parse_pid(argv[optind], &wa->pid) ? MT_EXIT_USAGE : -1;
}

/* ---- the live status line --------------------------------------------- */

/* Least squares over every sample so far, in running sums (t in s, v in MiB from the first). */
struct live {
	int on;                 /* stderr is a terminal */
	int shown;
	uint64_t last_ns;       /* when it was last drawn */
	double n, st, sv, stt, stv, v0;
};

static void live_add(struct live *l, const struct mt_watch_sample *s)
{
	double t = (double)s->t_ns / 1e9, v;
	if (l->n == 0)
		l->v0 = (double)s->v[MT_WF_RSS];
	v = ((double)s->v[MT_WF_RSS] - l->v0) / (1024.0 * 1024);
	l->n++;
	l->st += t;
	l->sv += v;
	l->stt += t * t;
	l->stv += t * v;
}

static void live_show(struct live *l, pid_t pid, const struct mt_watch_sample *s)
{
	char rss[MT_FMT_LEN], rate[MT_FMT_LEN], dur[MT_FMT_LEN];
	if (!l->on || (l->shown && s->t_ns - l->last_ns < WATCH_STATUS_PERIOD_NS))
		return;
	double den = l->n * l->stt - l->st * l->st;
	double slope = den > 0 ? (l->n * l->stv - l->st * l->sv) / den : 0;  /* MiB/s */
	mt_fmt_size(rate, (uint64_t)(fabs(slope) * 3600 * 1024 * 1024));
	fprintf(stderr, "\rmemtriage: watching %ld: RSS %s, %.0f samples in %s, slope so far %s%s/h"
	        "\033[K", (long)pid, mt_fmt_size(rss, s->v[MT_WF_RSS]), l->n,
	        mt_fmt_duration(dur, s->t_ns), slope < 0 ? "-" : "+", rate);
	fflush(stderr);
	l->shown = 1;
	l->last_ns = s->t_ns;
}

static void live_clear(struct live *l)
{
	if (l->shown)
		fputs("\r\033[K", stderr);
	l->shown = 0;
}

/* ---- the watch --------------------------------------------------------- */

struct watcher {
	const struct watch_args *wa;
	struct mt_watch_proc proc;
	struct mt_watch_series series;
	struct live live;
	sigset_t sigs;             /* blocked, taken with sigtimedwait */
	pid_t child;               /* CMD mode: the command, until reaped */
	int reaped, wstatus;
	int exited;                /* the process is gone (or a zombie) */
	int stop_sig;              /* the signal that stopped the sampling, or 0 */
	const char *ended;         /* why sampling stopped */
	char ended_buf[160];
	/* --listen: the server, the signals as an fd it can poll, what it shows */
	struct mt_watch_server *server;
	int sfd;                   /* signalfd of `sigs`, or -1 */
	struct mt_watch_sample last;         /* the latest sample (the series may skip it) */
	struct mt_watch_analysis an;         /* of the series when it had an_offered samples */
	uint64_t an_offered;
};

/* Reaps the command when it has exited; returns 1 once it has. */
static int try_reap(struct watcher *w)
{
	if (w->reaped)
		return 1;
	pid_t r;
	while ((r = waitpid(w->child, &w->wstatus, WNOHANG)) < 0 && errno == EINTR)
		;
	if (r == w->child)
		w->reaped = 1;
	else if (r < 0)
		w->reaped = 1, w->wstatus = 0;  /* ECHILD: someone else reaped it; report status 0 */
	return w->reaped;
}

/*
 * Takes one signal: returns 1 when it stops the sampling.  In CMD mode
 * SIGTERM and SIGHUP go on to the command, SIGQUIT is left to it (the
 * terminal sent it there too) and SIGCHLD reaps it.
 */
static int on_signal(struct watcher *w, int sig)
{
	if (sig == SIGCHLD) {
		if (!w->child || !try_reap(w))
			return 0;
		w->exited = 1;
		w->ended = "the process exited";
		return 1;
	}
	if (w->child && (sig == SIGTERM || sig == SIGHUP)) {
		if (!w->reaped)
			kill(w->child, sig);
		return 0;
	}
	if (sig == SIGQUIT)
		return 0;
	w->stop_sig = sig;
	w->ended = sig == SIGINT ? "interrupted (SIGINT)" : sig == SIGTERM ? "stopped by SIGTERM" :
	           "stopped by SIGHUP";
	return 1;
}

/* One sample into the series; returns 1 when sampling must stop. */
static int take_sample(struct watcher *w)
{
	struct mt_watch_sample s;
	int rc = mt_watch_proc_sample(&w->proc, &s);
	if (rc == -ESRCH) {
		w->exited = 1;
		w->ended = "the process exited";
		return 1;
	}
	if (rc < 0) {
		live_clear(&w->live);
		mt_error("cannot read '/proc/%ld/status': %s", (long)w->proc.pid, strerror(-rc));
		w->ended = "/proc/PID/status could not be read";
		return 1;
	}
	rc = mt_watch_series_push(&w->series, &s);
	if (rc < 0) {
		live_clear(&w->live);
		mt_error("out of memory after %zu samples; analyzing those", w->series.n);
		w->ended = "out of memory";
		return 1;
	}
	w->last = s;
	live_add(&w->live, &s);
	live_show(&w->live, w->proc.pid, &s);
	if (w->wa->duration_ns && s.t_ns >= w->wa->duration_ns) {
		w->ended = "--duration passed";
		return 1;
	}
	return 0;
}

/* ---- --listen --------------------------------------------------------------- */

/*
 * Renders /metrics: the latest sample and the analysis of the series,
 * redone only when a sample came since the last scrape (a few ms on the
 * 600 points the statistics use).
 */
static int render_metrics(void *arg, FILE *out, enum mt_metrics_format fmt)
{
	struct watcher *w = arg;
	uint64_t taken = w->series.offered;
	if (taken && w->an_offered != taken) {
		int rc = mt_watch_analyze(&w->series, &w->an);
		if (rc)
			return rc;
		w->an_offered = taken;
	}
	struct mt_watch_metrics m = {
		.pid = w->proc.pid, .cmdline = w->proc.cmdline, .last = taken ? &w->last : NULL,
		.samples_total = taken, .a = taken ? &w->an : NULL,
	};
	return mt_watch_write_metrics(out, &m, fmt);
}

/* Opens the --listen server before anything starts; returns 0 or an exit status. */
static int start_server(struct watcher *w)
{
	char err[160];
	int rc = mt_watch_server_open(&w->server, w->wa->listen, render_metrics, w, err,
	                              sizeof(err));
	if (rc) {
		mt_error("cannot listen on '%s': %s", w->wa->listen, err);
		return MT_EXIT_USAGE;
	}
	mt_error("serving metrics on %s", mt_watch_server_url(w->server));
	return 0;
}

static void stop_server(struct watcher *w)
{
	mt_watch_server_close(w->server);
	w->server = NULL;
	if (w->sfd >= 0)
		close(w->sfd);
	w->sfd = -1;
}

/*
 * Waits for a signal until `deadline` like mt_wait_signal, serving
 * /metrics meanwhile when --listen is on: the blocked signals are read
 * from a signalfd the server polls beside its sockets.
 */
static int wait_event(struct watcher *w, uint64_t deadline)
{
	if (w->server && w->sfd < 0 &&
	    (w->sfd = signalfd(-1, &w->sigs, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		mt_error("cannot serve metrics: signalfd: %s", strerror(errno));
		stop_server(w);
	}
	while (w->server) {
		struct signalfd_siginfo si;
		if (read(w->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			return (int)si.ssi_signo;
		int rc = mt_watch_server_run(w->server, w->sfd, deadline);
		if (rc == 0)
			return 0;
		if (rc < 0) {
			mt_error("cannot serve metrics any longer: %s", strerror(-rc));
			stop_server(w);
		}
	}
	return mt_wait_signal(&w->sigs, deadline);
}

/* Samples every interval until the process exits, --duration passes or a signal stops it. */
static void sample_loop(struct watcher *w)
{
	uint64_t next = mt_mono_ns();
	while (!take_sample(w)) {
		uint64_t now = mt_mono_ns();
		next += w->wa->interval_ns;
		while (next <= now)    /* fell behind (a loaded machine): skip, do not burst */
			next += w->wa->interval_ns;
		int sig, stop = 0;
		while (!stop && (sig = wait_event(w, next)))
			stop = on_signal(w, sig);
		if (stop)
			break;
	}
	stop_server(w);    /* the watch is over: a scrape now would get a stale verdict */
	live_clear(&w->live);
}

/* ---- the report --------------------------------------------------------- */

static int write_report(struct watcher *w, FILE *dflt)
{
	struct mt_watch_analysis a;
	const char *name = w->wa->output ? w->wa->output : dflt == stdout ? "stdout" : "stderr";
	FILE *out = dflt;
	int rc = mt_watch_analyze(&w->series, &a);
	if (rc) {
		mt_error("cannot analyze the samples: %s", strerror(-rc));
		return MT_EXIT_FAIL;
	}
	if (w->wa->output && strcmp(w->wa->output, "-") == 0)
		out = stdout;
	else if (w->wa->output && !(out = fopen(w->wa->output, "w"))) {
		mt_error("cannot write '%s': %s", w->wa->output, strerror(errno));
		return MT_EXIT_FAIL;
	}
	struct mt_watch_run_info ri = {
		.pid = w->proc.pid, .cmdline = w->proc.cmdline, .interval_ns = w->wa->interval_ns,
		.ended = w->ended ? w->ended : "", .smaps_errno = w->proc.smaps_errno,
		.cg_version = w->proc.cg_version, .thinned = w->series.thinned,
	};
	rc = mt_watch_write_text(out, &ri, &w->series, &a);
	if (out != stdout && out != stderr && fclose(out) && !rc)
		rc = -errno;
	if (rc) {
		mt_error("cannot write the report to '%s': %s", name, strerror(-rc));
		return MT_EXIT_FAIL;
	}
	return MT_EXIT_OK;
}

/* ---- PID mode ------------------------------------------------------------- */

/* Blocks the signals the watch takes with sigtimedwait; `old` gets the previous mask. */
static void block_signals(struct watcher *w, sigset_t *old)
{
	sigemptyset(&w->sigs);
	sigaddset(&w->sigs, SIGINT);
	sigaddset(&w->sigs, SIGTERM);
	sigaddset(&w->sigs, SIGHUP);
	if (w->wa->cmd) {
		sigaddset(&w->sigs, SIGQUIT);
		sigaddset(&w->sigs, SIGCHLD);
	}
	sigprocmask(SIG_BLOCK, &w->sigs, old);
}

static int open_error(pid_t pid, int rc)
{
	if (rc == -ESRCH)
		mt_error("cannot watch pid %ld: no such process", (long)pid);
	else if (rc == -EINVAL)
		mt_error("cannot watch pid %ld: it has no memory of its own (a kernel thread?)",
		         (long)pid);
	else
		mt_error("cannot watch pid %ld: %s", (long)pid, strerror(-rc));
	return rc == -ESRCH || rc == -EINVAL ? MT_EXIT_USAGE : MT_EXIT_FAIL;
}

static int watch_pid(struct watcher *w)
{
	sigset_t old;
	/*
	 * Signals first, so that once the process is open (its /proc files
	 * show in ours) a Ctrl-C always stops the sampling.  A shell starts
	 * background jobs with SIGINT ignored; blocked, a signal stays pending
	 * whatever its action, but say SIG_DFL so that holds on any kernel.
	 * The mask is never lifted, so the action never runs.
	 */
	block_signals(w, &old);
	signal(SIGINT, SIG_DFL);
	int rc = mt_watch_proc_open(&w->proc, w->wa->pid);
	if (rc)
		return open_error(w->wa->pid, rc);
	if (w->wa->listen && (rc = start_server(w))) {
		mt_watch_proc_close(&w->proc);
		return rc;
	}
	sample_loop(w);
	mt_watch_proc_close(&w->proc);
	return write_report(w, stdout);
}

/* ---- CMD mode -------------------------------------------------------------- */

/*
 * In the child: the caller's signal mask and SIGCHLD action back, then
 * exec.  On failure sends errno through `fd` (close-on-exec, so the parent
 * reads EOF when exec succeeds) and exits 127.
 */
static void __attribute__((noreturn)) exec_child(char **cmd, int fd, const sigset_t *old,
                                                 void (*old_chld)(int))
{
	signal(SIGCHLD, old_chld);
	sigprocmask(SIG_SETMASK, old, NULL);
	execvp(cmd[0], cmd);
	int e = errno;
	if (write(fd, &e, sizeof(e)) < 0)
		_exit(MT_EXIT_NOEXEC);
	_exit(MT_EXIT_NOEXEC);
}

/* Starts the command; returns 0, or an exit status after reporting why it could not. */
static int spawn(struct watcher *w, sigset_t *old)
{
	char **cmd = w->wa->cmd;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC)) {
		mt_error("cannot run '%s': %s", cmd[0], strerror(errno));
		return MT_EXIT_FAIL;
	}
	/* waitpid needs SIGCHLD not ignored (an ignoring parent would make children reap themselves) */
	void (*old_chld)(int) = signal(SIGCHLD, SIG_DFL);
	block_signals(w, old);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		exec_child(cmd, fds[1], old, old_chld);
	}
	int fork_errno = errno;
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		mt_error("cannot run '%s': %s", cmd[0], strerror(fork_errno));
		return MT_EXIT_FAIL;
	}
	w->child = pid;
	int e = mt_exec_error(fds[0]);
	if (!e)
		return 0;
	while (!try_reap(w))
		mt_wait_signal(&w->sigs, mt_mono_ns() + 10 * NS_PER_MS);
	mt_error("cannot run '%s': %s", cmd[0], strerror(e));
	/* the shell's convention: 127 not found, 126 found but not executable */
	return mt_exec_status(e);
}

/* Waits for the command to exit, until `deadline` (0: for good), forwarding signals. */
static void wait_command(struct watcher *w, uint64_t deadline)
{
	int sig;
	while (!try_reap(w) && (sig = mt_wait_signal(&w->sigs, deadline)))
		if (sig == SIGTERM || sig == SIGHUP)
			kill(w->child, sig);
}

/* The command's status in the shell's convention; says so when a signal killed it. */
static int command_status(struct watcher *w)
{
	const char *cmd = w->wa->cmd[0];
	if (WIFSIGNALED(w->wstatus)) {
		int sig = WTERMSIG(w->wstatus);
		mt_error("'%s' was killed by signal %d (%s)%s", cmd, sig, strsignal(sig),
		         WCOREDUMP(w->wstatus) ? ", core dumped" : "");
		return 128 + sig;
	}
	return WEXITSTATUS(w->wstatus);
}

/* "ended:" once the command is reaped: why sampling stopped, then how the command ended. */
static void note_exit(struct watcher *w)
{
	char why[sizeof(w->ended_buf)] = "";
	if (w->stop_sig)
		snprintf(why, sizeof(why), "%s; ", w->ended);
	if (WIFSIGNALED(w->wstatus))
		snprintf(w->ended_buf, sizeof(w->ended_buf), "%sthe command was killed by signal %d (%s)",
		         why, WTERMSIG(w->wstatus), strsignal(WTERMSIG(w->wstatus)));
	else
		snprintf(w->ended_buf, sizeof(w->ended_buf), "%sthe command exited with status %d", why,
		         WEXITSTATUS(w->wstatus));
	w->ended = w->ended_buf;
}

/*
 * After the sampling: a command that exited is reaped before the report;
 * one interrupted by Ctrl-C gets WATCH_GRACE_NS to exit first (the
 * terminal sent it SIGINT too); one still running after --duration is
 * waited for after the report.
 */
static int watch_command(struct watcher *w)
{
	sigset_t old;
	int rc = w->wa->listen ? start_server(w) : 0;   /* before CMD runs: a bad address runs nothing */
	if (rc)
		return rc;
	rc = spawn(w, &old);
	if (rc)
		return rc;
	rc = mt_watch_proc_open(&w->proc, w->child);
	if (rc == 0) {
		sample_loop(w);
		mt_watch_proc_close(&w->proc);
	} else if (rc != -ESRCH) {
		open_error(w->child, rc);
	}
	if (w->exited || rc == -ESRCH)
		wait_command(w, 0);
	else if (w->stop_sig)
		wait_command(w, mt_mono_ns() + WATCH_GRACE_NS);
	if (w->reaped)
		note_exit(w);
	int report_rc = MT_EXIT_OK;
	if (w->series.n)
		report_rc = write_report(w, stderr);
	else if (rc == -ESRCH)
		mt_error("'%s' exited before its first sample", w->wa->cmd[0]);
	if (!w->reaped) {
		mt_error("waiting for '%s' (pid %ld) to exit", w->wa->cmd[0], (long)w->child);
		wait_command(w, 0);
	}
	int status = command_status(w);
	return status ? status : report_rc;
}

int mt_cmd_watch(int argc, char **argv)
{
	struct watch_args wa = { .interval_ns = WATCH_INTERVAL_DEFAULT_NS };
	struct watcher w;
	int rc = parse_args(argc, argv, &wa);
	if (rc >= 0)
		return rc;
	memset(&w, 0, sizeof(w));
	w.wa = &wa;
	w.proc.status_fd = w.proc.cmdline_fd = -1;
	w.proc.pid = wa.cmd ? 0 : wa.pid;
	w.sfd = -1;
	mt_watch_series_init(&w.series);
	w.live.on = isatty(STDERR_FILENO);
	rc = wa.cmd ? watch_command(&w) : watch_pid(&w);
	stop_server(&w);
	mt_watch_series_release(&w.series);
	return rc;
}
