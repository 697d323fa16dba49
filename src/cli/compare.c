/*
 * memtriage compare [options] -- CMD [ARGS...]: runs CMD once per
 * allocator configuration, one after the other, samples its RSS from
 * /proc (no injection) and prints one row per configuration: RSS at the
 * start and after each cycle, growth per cycle, VmPeak, wall time,
 * throughput and final RSS against the baseline's; then a recommendation.
 *
 * A cycle ends when CMD prints a line matching `^cycle [0-9]+:` on stdout
 * (the built-in sims do).  CMD's stdout is read through a pipe so that the
 * RSS is read the moment the line arrives, not at the next tick.
 *
 * Each run is started in its own process group, with stdin from /dev/null
 * (a background group reading the terminal would be stopped).  The
 * terminal's Ctrl-C therefore reaches memtriage alone: it signals the
 * run's group with SIGINT, then SIGKILL after COMPARE_GRACE_NS, reaps it
 * and exits 130, so no run outlives memtriage.  Signals are blocked for
 * the whole command and read from a signalfd in the same poll() as the
 * pipe: no handler runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
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
#define MiB       (1024.0 * 1024)

#define COMPARE_INTERVAL_DEFAULT_NS (100 * NS_PER_MS)
#define COMPARE_INTERVAL_MIN_NS     (10 * NS_PER_MS)  /* a /proc read costs ~50 us */
#define COMPARE_INTERVAL_MAX_NS     (60 * NS_PER_S)
#define COMPARE_GRACE_NS            NS_PER_S   /* after SIGINT to the group, before SIGKILL */
#define COMPARE_CONFIGS_MAX         16         /* configurations in one comparison */
#define COMPARE_VARS_MAX            8          /* variables of one user configuration */
#define COMPARE_NAME_MAX            12         /* characters of a name: the table's first column */
#define COMPARE_LINE_MAX            4096       /* a longer stdout line is matched on its start */
#define COMPARE_CYCLE_COLS          6          /* cycle columns; beyond, first 5, "...", last */
#define COMPARE_THROUGHPUT_TOLERANCE 0.10      /* recommendation: within 10% of the baseline */
#define COMPARE_PROGRESS_PERIOD_NS  (200 * NS_PER_MS)

static const char *const lib_dirs[] = {
	"/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib",
};

struct env_var {
	const char *name, *value;
};

struct config {
	char name[COMPARE_NAME_MAX + 1];
	struct env_var vars[COMPARE_VARS_MAX];
	size_t n_vars;
	const char *preload;       /* library file name looked up in lib_dirs, or NULL */
	const char *package;       /* the Debian package that has it */
};

static const struct config builtins[] = {
	{ .name = "glibc" },
	{ .name = "arena2", .vars = { { "MALLOC_ARENA_MAX", "2" } }, .n_vars = 1 },
	{ .name = "arena2-trim", .n_vars = 3, .vars = {
		{ "MALLOC_ARENA_MAX", "2" }, { "MALLOC_TRIM_THRESHOLD_", "131072" },
		{ "MALLOC_MMAP_THRESHOLD_", "131072" } } },
	{ .name = "jemalloc", .preload = "libjemalloc.so.2", .package = "libjemalloc2" },
	{ .name = "mimalloc", .preload = "libmimalloc.so.2", .package = "libmimalloc2.0" },
	{ .name = "tcmalloc", .preload = "libtcmalloc_minimal.so.4",
	  .package = "libtcmalloc-minimal4" },
};
#define N_BUILTINS (sizeof(builtins) / sizeof(builtins[0]))
#define DEFAULT_CONFIGS "glibc,arena2,jemalloc,mimalloc"

/* What one run measured.  Sizes in bytes. */
struct result {
	const struct config *cfg;
	char preload_path[256];
	int missing;               /* the preload library is not installed: not run */
	int started, exec_errno, wstatus;
	int have_sample;
	uint64_t initial, last_rss, vm_peak;
	uint64_t cycles[COMPARE_CYCLE_COLS - 1];   /* RSS after cycles 1..5 */
	uint64_t last_cycle;
	size_t n_cycles;
	double throughput_sum;
	size_t n_throughput;
	uint64_t wall_ns;
};

struct compare {
	const struct config *run[COMPARE_CONFIGS_MAX];
	size_t n_run;
	struct config user[COMPARE_CONFIGS_MAX];
	size_t n_user;
	const char *configs;       /* --configs, or the default */
	uint64_t interval_ns;
	int verbose, progress;
	char **cmd;
	int sfd;                   /* signalfd of the blocked signals */
	int stop_sig;              /* SIGINT, SIGTERM or SIGHUP taken: stop everything */
};

static void compare_usage(FILE *f)
{
	fprintf(f, "usage: memtriage compare [<options>] -- CMD [ARGS...]\n\n"
	        "Runs CMD once per allocator configuration, one after the other, and compares\n"
	        "their memory: RSS sampled from /proc at the start, after each cycle (a line\n"
	        "'cycle N: ...' on CMD's stdout, as the built-in sims print) and at the end,\n"
	        "growth per cycle, VmPeak, wall time, throughput (from 'throughput=N' in the\n"
	        "cycle lines) and final RSS against the baseline's; then a recommendation.\n\n"
	        "options:\n"
	        "  --configs LIST           configurations to run, comma-separated\n"
	        "                           (default " DEFAULT_CONFIGS ")\n"
	        "  --config NAME:VAR=VALUE,...\n"
	        "                           define and run a configuration of your own: those\n"
	        "                           variables set (a piece without '=' continues the\n"
	        "                           previous value: MALLOC_CONF=narenas:2,tcache:false)\n"
	        "  -i, --interval DURATION  time between samples (default 100ms, at least 10ms)\n"
	        "  -v, --verbose            copy CMD's stdout to stderr\n"
	        "  -h, --help               show this help\n\n"
	        "configurations: glibc (the environment unchanged: the baseline), arena2\n"
	        "(MALLOC_ARENA_MAX=2), arena2-trim (also MALLOC_TRIM_THRESHOLD_=131072 and\n"
	        "MALLOC_MMAP_THRESHOLD_=131072), jemalloc, mimalloc, tcmalloc (LD_PRELOAD of the\n"
	        "installed library; a missing one is reported and skipped).\n\n"
	        "CMD's stdin is /dev/null and it runs in its own process group: Ctrl-C stops the\n"
	        "current run (SIGINT to its group, SIGKILL a second later) and exits 130.\n"
	        "Exit status: 0 when every run exited 0, 1 otherwise, 2 for a usage error.\n\n"
	        "example:\n"
	        "  memtriage compare --configs glibc,arena2 -- memtriage sim frontend --cycles 3\n");
}

/* ---- options ------------------------------------------------------------- */

/* Parses "100ms", "0.5s", "2" (seconds) into ns within the limits; 0, or -1 after reporting. */
static int parse_interval(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end), ns = -1;
	if (end != s && !errno && isfinite(v) && s[0] != '-' && s[0] != '+') {
		if (strcmp(end, "ms") == 0)
			ns = v * 1e6;
		else if (strcmp(end, "s") == 0 || *end == '\0')
			ns = v * 1e9;
	}
	if (ns < (double)COMPARE_INTERVAL_MIN_NS || ns > (double)COMPARE_INTERVAL_MAX_NS) {
		mt_usage_error("compare", "invalid value '%s' for --interval: expected a duration "
		               "such as 50ms or 1s, from 10ms to 60s", s);
		return -1;
	}
	*out = (uint64_t)ns;
	return 0;
}

/* A configuration's name: 1 to COMPARE_NAME_MAX letters, digits, '-', '_' or '.'. */
static int valid_name(const char *s, size_t len)
{
	if (len == 0 || len > COMPARE_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", s[i]))
			return 0;
	return 1;
}

static const struct config *find_config(const struct compare *c, const char *name, size_t len)
{
	for (size_t i = 0; i < N_BUILTINS; i++)
		if (strlen(builtins[i].name) == len && memcmp(builtins[i].name, name, len) == 0)
			return &builtins[i];
	for (size_t i = 0; i < c->n_user; i++)
		if (strlen(c->user[i].name) == len && memcmp(c->user[i].name, name, len) == 0)
			return &c->user[i];
	return NULL;
}

static int add_run(struct compare *c, const struct config *cfg)
{
	if (c->n_run == COMPARE_CONFIGS_MAX)
		return mt_usage_error("compare", "too many configurations: at most %d",
		                      COMPARE_CONFIGS_MAX);
	c->run[c->n_run++] = cfg;
	return 0;
}

/*
 * "NAME:VAR=VALUE,VAR=VALUE": splits `spec` in place (it is argv's) into
 * a new user configuration.  Returns 0, or MT_EXIT_USAGE after reporting.
 */
static int parse_user_config(struct compare *c, char *spec)
{
	char *colon = strchr(spec, ':');
	if (!colon || !valid_name(spec, (size_t)(colon - spec)))
		return mt_usage_error("compare", "invalid --config '%s': expected NAME:VAR=VALUE,... "
		                      "with a NAME of 1 to %d letters, digits, '-', '_' or '.'", spec,
		                      COMPARE_NAME_MAX);
	if (find_config(c, spec, (size_t)(colon - spec)))
		return mt_usage_error("compare", "configuration '%.*s' is already defined",
		                      (int)(colon - spec), spec);
	if (c->n_user == COMPARE_CONFIGS_MAX)
		return mt_usage_error("compare", "too many --config: at most %d", COMPARE_CONFIGS_MAX);
	struct config *u = &c->user[c->n_user];
	char shown[160];
	snprintf(shown, sizeof(shown), "%s", spec);   /* for messages: spec is cut below */
	memset(u, 0, sizeof(*u));
	memcpy(u->name, spec, (size_t)(colon - spec));
	for (char *p = colon + 1; ; ) {
		char *comma = strchr(p, ',');
		char *eq = memchr(p, '=', comma ? (size_t)(comma - p) : strlen(p));
		if (eq) {
			if (eq == p || u->n_vars == COMPARE_VARS_MAX)
				return mt_usage_error("compare", "invalid --config '%s': expected "
				                      "NAME:VAR=VALUE,... with at most %d variables", shown,
				                      COMPARE_VARS_MAX);
			if (p > colon + 1)
				p[-1] = '\0';       /* ends the previous value */
			*eq = '\0';
			u->vars[u->n_vars++] = (struct env_var){ p, eq + 1 };
		} else if (!u->n_vars) {
			break;                  /* reported below */
		}                           /* else: the previous value goes on, comma and all */
		if (!comma)
			break;
		p = comma + 1;
	}
	if (!u->n_vars)
		return mt_usage_error("compare", "invalid --config '%s': expected NAME:VAR=VALUE,...",
		                      shown);
	c->n_user++;
	return add_run(c, u);
}

/* The names of --configs into c->run.  Returns 0 or MT_EXIT_USAGE. */
static int parse_configs(struct compare *c)
{
	const struct config *user_runs[COMPARE_CONFIGS_MAX];
	size_t n_user_runs = c->n_run;
	memcpy(user_runs, c->run, n_user_runs * sizeof(user_runs[0]));
	c->n_run = 0;
	for (const char *p = c->configs; ; ) {
		size_t len = strcspn(p, ",");
		const struct config *cfg = find_config(c, p, len);
		if (!cfg)
			return mt_usage_error("compare", "unknown configuration '%.*s' in --configs; "
			                      "known: glibc, arena2, arena2-trim, jemalloc, mimalloc, "
			                      "tcmalloc, or a --config NAME", (int)len, p);
		int in_user = 0;
		for (size_t i = 0; i < n_user_runs; i++)
			in_user |= user_runs[i] == cfg;
		if (!in_user && add_run(c, cfg))
			return MT_EXIT_USAGE;
		if (!p[len])
			break;
		p += len + 1;
	}
	for (size_t i = 0; i < n_user_runs; i++)
		if (add_run(c, user_runs[i]))
			return MT_EXIT_USAGE;
	return 0;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct compare *c)
{
	static const struct option longopts[] = {
		{ "configs",  required_argument, NULL, 'C' },
		{ "config",   required_argument, NULL, 'c' },
		{ "interval", required_argument, NULL, 'i' },
		{ "verbose",  no_argument,       NULL, 'v' },
		{ "help",     no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	optind = 0;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+:i:vh", longopts, NULL)) != -1) {
		switch (o) {
		case 'C': c->configs = optarg; break;
		case 'c':
			if (parse_user_config(c, optarg))
				return MT_EXIT_USAGE;
			break;
		case 'i':
			if (parse_interval(optarg, &c->interval_ns))
				return MT_EXIT_USAGE;
			break;
		case 'v': c->verbose = 1; break;
		case 'h': compare_usage(stdout); return MT_EXIT_OK;
		default:  return mt_bad_option("compare", o, argv);
		}
	}
	if (optind >= argc)
		return mt_usage_error("compare", "missing the command to run after '--'");
	c->cmd = argv + optind;
	/* with --config alone, the user's configurations against the baseline */
	if (!c->configs)
		c->configs = c->n_user ? "glibc" : DEFAULT_CONFIGS;
	return parse_configs(c) ? MT_EXIT_USAGE : -1;
}

/* ---- one run -------------------------------------------------------------- */

/* Finds the preload library of r->cfg; sets r->missing when none is installed. */
static void find_preload(struct result *r)
{
	if (!r->cfg->preload)
		return;
	for (size_t i = 0; i < sizeof(lib_dirs) / sizeof(lib_dirs[0]); i++) {
		snprintf(r->preload_path, sizeof(r->preload_path), "%s/%s", lib_dirs[i],
		         r->cfg->preload);
		if (access(r->preload_path, R_OK) == 0)
			return;
	}
	r->missing = 1;
}

/* In the child: own group, stdout to the pipe, the configuration's environment, exec. */
static void __attribute__((noreturn)) exec_child(const struct compare *c, const struct result *r,
                                                 int out_fd, int err_fd, const sigset_t *old)
{
	setpgid(0, 0);
	sigprocmask(SIG_SETMASK, old, NULL);
	int null_fd = open("/dev/null", O_RDONLY);
	if (null_fd >= 0)
		dup2(null_fd, STDIN_FILENO);
	dup2(out_fd, STDOUT_FILENO);
	for (size_t i = 0; i < r->cfg->n_vars; i++)
		setenv(r->cfg->vars[i].name, r->cfg->vars[i].value, 1);
	if (r->cfg->preload) {
		const char *prev = getenv("LD_PRELOAD");
		char buf[1024];
		snprintf(buf, sizeof(buf), "%s%s%s", r->preload_path, prev && *prev ? ":" : "",
		         prev ? prev : "");
		setenv("LD_PRELOAD", buf, 1);
	}
	execvp(c->cmd[0], c->cmd);
	int e = errno;
	if (write(err_fd, &e, sizeof(e)) < 0)
		_exit(MT_EXIT_NOEXEC);
	_exit(MT_EXIT_NOEXEC);
}

/* State of the run in progress. */
struct runner {
	struct compare *c;
	struct result *r;
	size_t index;              /* of the run, for the progress line */
	pid_t pid;
	int out_fd;                /* CMD's stdout; -1 at EOF */
	int reaped;
	struct mt_watch_proc proc;
	int proc_open;
	char line[COMPARE_LINE_MAX];
	size_t line_len;
	int line_cont;             /* the buffer filled up: the rest of that line is no line start */
	uint64_t t0, progress_ns;
	int progress_shown;
};

static void progress_clear(struct runner *rn)
{
	if (rn->progress_shown)
		fputs("\r\033[K", stderr);
	rn->progress_shown = 0;
}

static void progress_show(struct runner *rn)
{
	uint64_t now = mt_mono_ns();
	if (!rn->c->progress || (rn->progress_shown && now - rn->progress_ns < COMPARE_PROGRESS_PERIOD_NS))
		return;
	fprintf(stderr, "\rmemtriage: compare: %s (%zu of %zu), cycle %zu, RSS %.0f MiB\033[K",
	        rn->r->cfg->name, rn->index + 1, rn->c->n_run, rn->r->n_cycles,
	        (double)rn->r->last_rss / MiB);
	fflush(stderr);
	rn->progress_shown = 1;
	rn->progress_ns = now;
}

/* Reads the process's status into the result; 0, or -ESRCH once it is gone. */
static int sample(struct runner *rn)
{
	struct mt_watch_sample s;
	if (!rn->proc_open)
		return -ESRCH;
	int rc = mt_watch_proc_sample(&rn->proc, &s);
	if (rc < 0 || !mt_watch_has(&s, MT_WF_RSS))
		return rc < 0 ? rc : -ESRCH;
	if (!rn->r->have_sample)
		rn->r->initial = s.v[MT_WF_RSS];
	rn->r->have_sample = 1;
	rn->r->last_rss = s.v[MT_WF_RSS];
	if (mt_watch_has(&s, MT_WF_VM_PEAK))
		rn->r->vm_peak = s.v[MT_WF_VM_PEAK];
	progress_show(rn);
	return 0;
}

/* `cycle N: ... throughput=X ...`: RSS now (the last sample once the process is gone). */
static void on_line(struct runner *rn, const char *line)
{
	const char *p = line + 6;
	if (strncmp(line, "cycle ", 6) || !(*p >= '0' && *p <= '9'))
		return;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p != ':')
		return;
	struct result *r = rn->r;
	sample(rn);
	if (r->n_cycles < COMPARE_CYCLE_COLS - 1)
		r->cycles[r->n_cycles] = r->last_rss;
	r->last_cycle = r->last_rss;
	r->n_cycles++;
	const char *t = strstr(p, "throughput=");
	if (t) {
		char *end;
		double v = strtod(t + 11, &end);
		if (end != t + 11 && isfinite(v)) {
			r->throughput_sum += v;
			r->n_throughput++;
		}
	}
}

/* Takes what the pipe has; returns 0, or 1 at EOF (the fd is then closed). */
static int read_output(struct runner *rn)
{
	char buf[4096];
	ssize_t n = read(rn->out_fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		close(rn->out_fd);
		rn->out_fd = -1;
		return 1;
	}
	if (rn->c->verbose) {
		progress_clear(rn);
		fwrite(buf, 1, (size_t)n, stderr);
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] != '\n' && rn->line_len < COMPARE_LINE_MAX - 1) {
			rn->line[rn->line_len++] = buf[i];
			continue;
		}
		rn->line[rn->line_len] = '\0';
		if (!rn->line_cont)
			on_line(rn, rn->line);
		rn->line_cont = buf[i] != '\n';
		rn->line_len = 0;
	}
	return 0;
}

static void try_reap(struct runner *rn)
{
	pid_t p;
	if (rn->reaped)
		return;
	while ((p = waitpid(rn->pid, &rn->r->wstatus, WNOHANG)) < 0 && errno == EINTR)
		;
	if (p == rn->pid || p < 0) {
		rn->reaped = 1;
		rn->r->wall_ns = mt_mono_ns() - rn->t0;
	}
}

/* Takes the pending signals; returns 1 when one stops the comparison. */
static int read_signals(struct runner *rn)
{
	struct signalfd_siginfo si;
	while (read(rn->c->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			try_reap(rn);
		else
			rn->c->stop_sig = (int)si.ssi_signo;
	}
	try_reap(rn);     /* SIGCHLDs merge: look anyway */
	return rn->c->stop_sig != 0;
}

/* After Ctrl-C: SIGINT to the group, SIGKILL after the grace, reap; nothing of it is left. */
static void stop_run(struct runner *rn)
{
	uint64_t deadline = mt_mono_ns() + COMPARE_GRACE_NS;
	kill(-rn->pid, SIGINT);
	while (!rn->reaped && mt_mono_ns() < deadline) {
		struct pollfd pf = { rn->c->sfd, POLLIN, 0 };
		poll(&pf, 1, 20);
		read_signals(rn);
	}
	kill(-rn->pid, SIGKILL);    /* the group: grandchildren too */
	while (!rn->reaped) {
		if (waitpid(rn->pid, &rn->r->wstatus, 0) == rn->pid || errno != EINTR)
			rn->reaped = 1;
	}
}

/* Samples every interval and reads CMD's stdout until it exits (or a signal stops it). */
static void run_loop(struct runner *rn)
{
	uint64_t next = mt_mono_ns();
	while (!rn->reaped || rn->out_fd >= 0) {
		uint64_t now = mt_mono_ns();
		if (now >= next) {
			if (!rn->reaped)
				sample(rn);
			while (next <= now)
				next += rn->c->interval_ns;
		}
		struct pollfd pf[2] = { { rn->c->sfd, POLLIN, 0 }, { rn->out_fd, POLLIN, 0 } };
		int timeout = rn->reaped ? 0 : (int)((next - now + NS_PER_MS - 1) / NS_PER_MS);
		if (poll(pf, rn->out_fd >= 0 ? 2 : 1, timeout) < 0 && errno != EINTR)
			break;
		/* output first: a cycle line's RSS is read before a SIGCHLD is looked at */
		if (rn->out_fd >= 0 && (pf[1].revents || rn->reaped))
			if (read_output(rn) == 0 && rn->reaped && !pf[1].revents) {
				/* CMD is gone and its pipe is empty: a grandchild may hold it open */
				close(rn->out_fd);
				rn->out_fd = -1;
			}
		if (read_signals(rn)) {
			stop_run(rn);
			return;
		}
	}
}

/* Runs r->cfg; fills r.  Returns 0, or an exit status when the comparison must stop. */
static int run_one(struct compare *c, struct result *r, size_t index, const sigset_t *old)
{
	int out[2], err[2];
	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
		mt_error("cannot run '%s': %s", c->cmd[0], strerror(errno));
		return MT_EXIT_FAIL;
	}
	fflush(NULL);
	struct runner rn = { .c = c, .r = r, .index = index, .t0 = mt_mono_ns() };
	rn.pid = fork();
	if (rn.pid == 0)
		exec_child(c, r, out[1], err[1], old);
	int fork_errno = errno;
	close(out[1]);
	close(err[1]);
	if (rn.pid < 0) {
		close(out[0]);
		close(err[0]);
		mt_error("cannot run '%s': %s", c->cmd[0], strerror(fork_errno));
		return MT_EXIT_FAIL;
	}
	setpgid(rn.pid, rn.pid);    /* both sides: whichever runs first */
	r->started = 1;
	rn.out_fd = out[0];
	r->exec_errno = mt_exec_error(err[0]);
	memset(&rn.proc, 0, sizeof(rn.proc));
	rn.proc.status_fd = rn.proc.cmdline_fd = -1;
	if (!r->exec_errno && mt_watch_proc_open(&rn.proc, rn.pid) == 0)
		rn.proc_open = 1;
	run_loop(&rn);
	if (rn.out_fd >= 0)
		close(rn.out_fd);
	if (rn.proc_open)
		mt_watch_proc_close(&rn.proc);
	progress_clear(&rn);
	if (c->stop_sig) {
		mt_error("interrupted: stopped the '%s' run (pid %ld) and its process group",
		         r->cfg->name, (long)rn.pid);
		return 128 + c->stop_sig;
	}
	return 0;
}

/* ---- the table ------------------------------------------------------------ */

static int run_ok(const struct result *r)
{
	return r->started && !r->exec_errno && WIFEXITED(r->wstatus) && WEXITSTATUS(r->wstatus) == 0;
}

static int has_data(const struct result *r)
{
	return r->started && !r->exec_errno && r->have_sample;
}

static uint64_t final_rss(const struct result *r)
{
	return r->n_cycles ? r->last_cycle : r->last_rss;
}

static double throughput(const struct result *r)
{
	return r->n_throughput ? r->throughput_sum / (double)r->n_throughput : 0;
}

/* The baseline: glibc when it ran, else the first configuration that has figures. */
static const struct result *baseline(const struct result *res, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (has_data(&res[i]) && strcmp(res[i].cfg->name, "glibc") == 0)
			return &res[i];
	for (size_t i = 0; i < n; i++)
		if (has_data(&res[i]))
			return &res[i];
	return NULL;
}

/* Bytes as MiB in a 7-wide cell: one decimal below 10 MiB, where a start-up RSS lies. */
static void print_mib(FILE *out, uint64_t bytes)
{
	double v = (double)bytes / MiB;
	fprintf(out, v < 10 ? " %7.1f" : " %7.0f", v);
}

static void print_why_not(FILE *out, const struct result *r)
{
	if (r->missing)
		fprintf(out, "not installed (Debian package %s)\n", r->cfg->package);
	else if (!r->started)
		fprintf(out, "not run\n");
	else if (r->exec_errno)
		fprintf(out, "cannot run the command: %s\n", strerror(r->exec_errno));
	else
		fprintf(out, "no sample: the command exited at once\n");
}

static size_t max_cycles(const struct result *res, size_t n)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (has_data(&res[i]) && res[i].n_cycles > m)
			m = res[i].n_cycles;
	return m;
}

static void print_rss_table(FILE *out, const struct result *res, size_t n,
                            const struct result *base)
{
	size_t mc = max_cycles(res, n), cols = mc > COMPARE_CYCLE_COLS ? COMPARE_CYCLE_COLS : mc;
	fprintf(out, "%-12s %7s", "RSS (MiB)", "initial");
	for (size_t k = 0; k < cols; k++) {
		size_t cyc = (k == cols - 1 && mc > COMPARE_CYCLE_COLS) ? mc : k + 1;
		if (k == cols - 1 && mc > COMPARE_CYCLE_COLS)
			fprintf(out, " %3s", "...");
		fprintf(out, " cycle%2zu", cyc);
	}
	fprintf(out, " %7s %8s %8s\n", "final", "growth/c", "vs base");
	for (size_t i = 0; i < n; i++) {
		const struct result *r = &res[i];
		if (!has_data(r)) {
			fprintf(out, "%-12s ", r->cfg->name);
			print_why_not(out, r);
			continue;
		}
		fprintf(out, "%-12s", r->cfg->name);
		print_mib(out, r->initial);
		for (size_t k = 0; k < cols; k++) {
			int last_col = k == cols - 1 && mc > COMPARE_CYCLE_COLS;
			if (last_col)
				fprintf(out, " %3s", "...");
			if (last_col ? r->n_cycles > COMPARE_CYCLE_COLS - 1 : k < r->n_cycles)
				print_mib(out, last_col ? r->last_cycle : r->cycles[k]);
			else
				fprintf(out, " %7s", "-");
		}
		print_mib(out, final_rss(r));
		if (r->n_cycles >= 2)
			fprintf(out, " %+8.1f", ((double)r->last_cycle - (double)r->cycles[0]) /
			        (double)(r->n_cycles - 1) / MiB);
		else
			fprintf(out, " %8s", "-");
		fprintf(out, " %7.2fx\n", (double)final_rss(r) / (double)final_rss(base));
	}
}

static void print_run_table(FILE *out, const struct result *res, size_t n,
                            const struct result *base)
{
	char dur[MT_FMT_LEN];
	double bt = throughput(base);
	fprintf(out, "\n%-12s %10s %10s %13s %8s  %s\n", "run", "VmPeak MiB", "wall",
	        "throughput/s", "vs base", "exit");
	for (size_t i = 0; i < n; i++) {
		const struct result *r = &res[i];
		if (!has_data(r))
			continue;
		fprintf(out, "%-12s %10.0f %10s", r->cfg->name, (double)r->vm_peak / MiB,
		        mt_fmt_duration(dur, r->wall_ns));
		if (r->n_throughput)
			fprintf(out, " %13.0f", throughput(r));
		else
			fprintf(out, " %13s", "-");
		if (r->n_throughput && bt > 0)
			fprintf(out, " %+7.0f%%", (throughput(r) / bt - 1) * 100);
		else
			fprintf(out, " %8s", "-");
		if (WIFSIGNALED(r->wstatus))
			fprintf(out, "  killed by signal %d\n", WTERMSIG(r->wstatus));
		else
			fprintf(out, "  %d\n", WEXITSTATUS(r->wstatus));
	}
}

/*
 * The rule: the lowest final RSS among the runs that exited 0 and whose
 * average throughput is within COMPARE_THROUGHPUT_TOLERANCE of the
 * baseline's; throughput is ignored when the baseline has none.
 */
static void print_recommendation(FILE *out, const struct result *res, size_t n,
                                 const struct result *base)
{
	double bt = throughput(base);
	const struct result *best = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct result *r = &res[i];
		if (!has_data(r) || !run_ok(r))
			continue;
		if (bt > 0 && (!r->n_throughput ||
		               throughput(r) < bt * (1 - COMPARE_THROUGHPUT_TOLERANCE)))
			continue;
		if (!best || final_rss(r) < final_rss(best))
			best = r;
	}
	if (!best) {
		fprintf(out, "recommendation: none: no run exited 0 with throughput within %.0f%% of "
		        "%s's\n", COMPARE_THROUGHPUT_TOLERANCE * 100, base->cfg->name);
		return;
	}
	if (bt > 0)
		fprintf(out, "recommendation: %s, %.0f MiB final (%.2fx): lowest final RSS at >= %.0f%% "
		        "of %s's throughput\n", best->cfg->name, (double)final_rss(best) / MiB,
		        (double)final_rss(best) / (double)final_rss(base),
		        (1 - COMPARE_THROUGHPUT_TOLERANCE) * 100, base->cfg->name);
	else
		fprintf(out, "recommendation: %s, %.0f MiB final (%.2fx): lowest final RSS of the runs "
		        "that exited 0\n", best->cfg->name, (double)final_rss(best) / MiB,
		        (double)final_rss(best) / (double)final_rss(base));
}

static void print_report(FILE *out, const struct compare *c, const struct result *res)
{
	const struct result *base = baseline(res, c->n_run);
	char line[101];            /* the command, cut to fit 100 columns */
	int len = snprintf(line, sizeof(line), "memtriage compare: %s", c->cmd[0]);
	for (char **a = c->cmd + 1; *a && len < (int)sizeof(line); a++)
		len += snprintf(line + len, sizeof(line) - (size_t)len, " %s", *a);
	if (len >= (int)sizeof(line))
		memcpy(line + sizeof(line) - 4, "...", 4);
	fprintf(out, "%s\nRSS from /proc/PID/status every %.0f ms and at each 'cycle N:' line\n\n",
	        line, (double)c->interval_ns / 1e6);
	if (!base) {
		for (size_t i = 0; i < c->n_run; i++) {
			fprintf(out, "%-12s ", res[i].cfg->name);
			print_why_not(out, &res[i]);
		}
		return;
	}
	print_rss_table(out, res, c->n_run, base);
	print_run_table(out, res, c->n_run, base);
	fprintf(out, "\ngrowth/c: (RSS after the last cycle - after the first) / (cycles - 1); "
	        "final: after\nthe last cycle (the last sample without cycles); vs base: against "
	        "'%s'.\n", base->cfg->name);
	print_recommendation(out, res, c->n_run, base);
}

/* ---- the command ------------------------------------------------------------ */

/* Runs every configuration; returns 0, or the exit status of a stop by a signal. */
static int run_all(struct compare *c, struct result *res)
{
	sigset_t sigs, old;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGCHLD);
	void (*old_chld)(int) = signal(SIGCHLD, SIG_DFL);  /* so that waitpid sees the children */
	sigprocmask(SIG_BLOCK, &sigs, &old);
	c->sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (c->sfd < 0) {
		mt_error("cannot create a signalfd: %s", strerror(errno));
		return MT_EXIT_FAIL;
	}
	int rc = 0;
	for (size_t i = 0; i < c->n_run && !rc; i++) {
		res[i].cfg = c->run[i];
		find_preload(&res[i]);
		if (!res[i].missing)
			rc = run_one(c, &res[i], i, &old);
	}
	close(c->sfd);
	signal(SIGCHLD, old_chld);
	return rc;
}

int mt_cmd_compare(int argc, char **argv)
{
	struct compare c = { .interval_ns = COMPARE_INTERVAL_DEFAULT_NS };
	struct result res[COMPARE_CONFIGS_MAX];
	int rc = parse_args(argc, argv, &c);
	if (rc >= 0)
		return rc;
	c.progress = isatty(STDERR_FILENO);
	memset(res, 0, sizeof(res));
	for (size_t i = 0; i < c.n_run; i++)
		res[i].cfg = c.run[i];
	rc = run_all(&c, res);
	if (rc)
		return rc;
	print_report(stdout, &c, res);
	if (fflush(stdout)) {
		mt_error("cannot write the table: %s", strerror(errno));
		return MT_EXIT_FAIL;
	}
	rc = MT_EXIT_OK;
	for (size_t i = 0; i < c.n_run; i++) {
		const struct result *r = &res[i];
		if (r->missing || run_ok(r))
			continue;
		if (r->exec_errno)
			mt_error("'%s': cannot run '%s': %s", r->cfg->name, c.cmd[0],
			         strerror(r->exec_errno));
		else if (WIFSIGNALED(r->wstatus))
			mt_error("'%s': the command was killed by signal %d (%s)", r->cfg->name,
			         WTERMSIG(r->wstatus), strsignal(WTERMSIG(r->wstatus)));
		else
			mt_error("'%s': the command exited with status %d", r->cfg->name,
			         WEXITSTATUS(r->wstatus));
		rc = MT_EXIT_FAIL;
	}
	return rc;
}
