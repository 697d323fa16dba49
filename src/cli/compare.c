/*
 * memtriage compare [options] -- CMD [ARGS...]
 * memtriage compare [options] --server CMD --load CMD
 *
 * Runs a workload once per allocator configuration (and sweep point), one
 * run after the other, samples its RSS from /proc (no injection unless
 * --record), and prints the tables of src/compare/results.c.  The runs
 * themselves are src/compare/runner.c.
 *
 * The terminal's Ctrl-C reaches memtriage alone (each run has its own
 * process group, stdin /dev/null): it stops the run in progress (SIGINT to
 * its group, SIGKILL after --grace), reaps everything and exits 130.
 * memtriage is the runs' subreaper, so processes a run leaves behind are
 * reaped too, even where pid 1 does not reap.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli/cli.h"
#include "compare/compare.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S  1000000000ull

#define DEFAULT_CYCLE_PATTERN "^cycle [0-9]+:"
#define DEFAULT_TPUT_PATTERN  "throughput=([0-9.]+)"
#define DEFAULT_MARK_PATTERN  "^cycle"

static void compare_usage(FILE *f)
{
	fprintf(f, "usage: memtriage compare [<options>] -- CMD [ARGS...]\n"
	        "       memtriage compare [<options>] --server CMD --load CMD\n\n"
	        "Runs a workload once per allocator configuration, one run after the other, and\n"
	        "compares their memory: RSS of the run's process group from /proc at the start,\n"
	        "after each cycle and at the end, growth per cycle, VmPeak, wall time, throughput\n"
	        "and final RSS against the baseline's (glibc); then a recommendation.\n\n"
	        "A cycle ends when CMD prints a line matching --cycle-pattern (the built-in sims\n"
	        "print 'cycle N: ...') or makes a mark (include/memtriage.h) whose label matches\n"
	        "--cycle-mark.  With --server and --load (shell command lines), the\n"
	        "server runs under each configuration, the load runs --cycles times against it\n"
	        "under the unchanged environment, and the server's RSS is read after each load.\n\n"
	        "options:\n"
	        "  --configs LIST           configurations to run, comma-separated\n"
	        "                           (default " CMP_DEFAULT_CONFIGS ")\n"
	        "  --config NAME:VAR=VALUE,...\n"
	        "                           define and run a configuration of your own: those\n"
	        "                           variables set (a piece without '=' continues the\n"
	        "                           previous value: MALLOC_CONF=narenas:2,tcache:false)\n"
	        "  --cycles N               load runs per server (default 3); with CMD: stop it\n"
	        "                           after N cycles (default: let it end by itself)\n"
	        "  --server CMD, --load CMD the server and the load command (sh -c)\n"
	        "  --ready DURATION         time the server gets to start (default 1s)\n"
	        "  --grace DURATION         after SIGTERM, before SIGKILL (default 5s)\n"
	        "  --sweep NAME=V1,V2,...   run every value: {NAME} in the commands takes it; a\n"
	        "                           second --sweep gives column groups and a ratio\n"
	        "  --trim-interval DURATION period of malloc_trim(0) in the 'trim' configuration\n"
	        "                           (default 1s)\n"
	        "  --cycle-pattern REGEX    a line of CMD that ends a cycle (POSIX extended;\n"
	        "                           default '" DEFAULT_CYCLE_PATTERN "')\n"
	        "  --cycle-mark REGEX       a mark's label that ends a cycle (default '" DEFAULT_MARK_PATTERN "')\n"
	        "  --throughput-pattern REGEX\n"
	        "                           a line with a throughput, its first group the number\n"
	        "                           (default '" DEFAULT_TPUT_PATTERN "')\n"
	        "  --record[=DIR]           also record each run (the server, in server mode) into\n"
	        "                           DIR/compare.<run>.trace (default DIR: .) and show its\n"
	        "                           verdict; the figures then include the recorder's cost\n"
	        "  -o, --output FILE        also write the results as JSON (memtriage report\n"
	        "                           --format html FILE renders them)\n"
	        "  -i, --interval DURATION  time between samples (default 100ms, at least 10ms)\n"
	        "  -v, --verbose            copy the commands' stdout to stderr\n"
	        "  -h, --help               show this help\n\n"
	        "configurations:\n");
	for (size_t i = 0; i < cmp_n_builtins; i++)
		fprintf(f, "  %-12s %s%s\n", cmp_builtins[i].name, cmp_builtins[i].summary,
		        cmp_builtins[i].package ? " (a missing one is reported and skipped)" : "");
	fprintf(f, "\nExit status: 0 when every run ended as asked, 1 otherwise, 2 for a usage\n"
	        "error, 130 after Ctrl-C.\n\nexamples:\n"
	        "  memtriage compare -- memtriage sim frontend --payload 1M --concurrency 96\n"
	        "  memtriage compare --configs glibc,arena2 --sweep c=2,8,32,96 --sweep p=1K,200K \\\n"
	        "      -- memtriage sim frontend --concurrency {c} --payload {p}\n"
	        "  memtriage compare --server 'memtriage sim frontend --listen 127.0.0.1:18080' \\\n"
	        "      --load 'memtriage sim load --connect 127.0.0.1:18080' --cycles 3\n");
}

/* ---- options ------------------------------------------------------------- */

/* "NAME=V1,V2,..." (argv's, cut in place) into the next sweep. */
static int parse_sweep(struct cmp_opts *o, char *spec)
{
	char *eq = strchr(spec, '=');
	if (o->n_sweeps == CMP_SWEEPS_MAX)
		return mt_usage_error("compare", "at most %d --sweep", CMP_SWEEPS_MAX);
	if (!eq || eq == spec || !eq[1] || strcspn(spec, "{}, ") < (size_t)(eq - spec))
		return mt_usage_error("compare", "invalid --sweep '%s': expected NAME=V1,V2,...", spec);
	struct cmp_sweep *s = &o->sweep[o->n_sweeps];
	*eq = '\0';
	s->name = spec;
	for (size_t k = 0; k < o->n_sweeps; k++)
		if (strcmp(o->sweep[k].name, spec) == 0)
			return mt_usage_error("compare", "--sweep '%s' is given twice", spec);
	for (char *p = eq + 1, *save = NULL; (p = strtok_r(p, ",", &save)); p = NULL) {
		if (s->n == CMP_VALUES_MAX)
			return mt_usage_error("compare", "--sweep '%s' has more than %d values", spec,
			                      CMP_VALUES_MAX);
		s->value[s->n++] = p;
	}
	if (!s->n)
		return mt_usage_error("compare", "--sweep '%s' has no value", spec);
	o->n_sweeps++;
	return 0;
}

static int compile(regex_t *re, const char *pat, const char *opt)
{
	int rc = regcomp(re, pat, REG_EXTENDED | (strcmp(opt, "--throughput-pattern") ? REG_NOSUB : 0));
	if (rc) {
		char msg[128];
		regerror(rc, re, msg, sizeof(msg));
		return mt_usage_error("compare", "invalid %s '%s': %s", opt, pat, msg);
	}
	return 0;
}

/* {NAME} of every sweep must appear in a command, else the sweep does nothing. */
static int check_sweeps_used(const struct cmp_opts *o)
{
	for (size_t k = 0; k < o->n_sweeps; k++) {
		char key[80];
		int used = 0;
		snprintf(key, sizeof(key), "{%s}", o->sweep[k].name);
		for (char **a = o->cmd; a && *a; a++)
			used |= strstr(*a, key) != NULL;
		used |= o->server && strstr(o->server, key);
		used |= o->load && strstr(o->load, key);
		if (!used)
			return mt_usage_error("compare", "--sweep '%s': no command has '%s'",
			                      o->sweep[k].name, key);
	}
	return 0;
}

enum { O_CONFIGS = 256, O_CONFIG, O_CYCLES, O_SERVER, O_LOAD, O_READY, O_GRACE, O_SWEEP,
       O_TRIM, O_CYCLE_RE, O_TPUT_RE, O_MARK_RE, O_RECORD };

static int parse_option(struct cmp_opts *o, int c, const char **configs)
{
	switch (c) {
	case O_CONFIGS: *configs = optarg; return 0;
	case O_CONFIG:  return cmp_config_parse_user(o, optarg);
	case O_CYCLES:  return mt_parse_uint("compare", "--cycles", optarg, 1, 100000, &o->cycles)
	                       ? MT_EXIT_USAGE : 0;
	case O_SERVER:  o->server = optarg; return 0;
	case O_LOAD:    o->load = optarg; return 0;
	case O_READY:   return mt_parse_duration("compare", "--ready", optarg, 0, 600 * NS_PER_S,
	                                         &o->ready_ns) ? MT_EXIT_USAGE : 0;
	case O_GRACE:   return mt_parse_duration("compare", "--grace", optarg, 0, 600 * NS_PER_S,
	                                         &o->grace_ns) ? MT_EXIT_USAGE : 0;
	case O_SWEEP:   return parse_sweep(o, optarg);
	case O_TRIM:    return mt_parse_duration("compare", "--trim-interval", optarg, NS_PER_MS,
	                                         3600 * NS_PER_S, &o->trim_interval_ns)
	                       ? MT_EXIT_USAGE : 0;
	case O_CYCLE_RE: o->cycle_pat = optarg; return 0;
	case O_TPUT_RE:  o->tput_pat = optarg; return 0;
	case O_MARK_RE:  o->mark_pat = optarg; return 0;
	case O_RECORD:  o->record_dir = optarg ? optarg : "."; return 0;
	case 'o':       o->output = optarg; return 0;
	case 'i':       return mt_parse_duration("compare", "--interval", optarg, 10 * NS_PER_MS,
	                                         60 * NS_PER_S, &o->interval_ns) ? MT_EXIT_USAGE : 0;
	case 'v':       o->verbose = 1; return 0;
	}
	return MT_EXIT_USAGE;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct cmp_opts *o)
{
	static const struct option longopts[] = {
		{ "configs", required_argument, NULL, O_CONFIGS },
		{ "config",  required_argument, NULL, O_CONFIG },
		{ "cycles",  required_argument, NULL, O_CYCLES },
		{ "server",  required_argument, NULL, O_SERVER },
		{ "load",    required_argument, NULL, O_LOAD },
		{ "ready",   required_argument, NULL, O_READY },
		{ "grace",   required_argument, NULL, O_GRACE },
		{ "sweep",   required_argument, NULL, O_SWEEP },
		{ "trim-interval", required_argument, NULL, O_TRIM },
		{ "cycle-pattern", required_argument, NULL, O_CYCLE_RE },
		{ "throughput-pattern", required_argument, NULL, O_TPUT_RE },
		{ "cycle-mark", required_argument, NULL, O_MARK_RE },
		{ "record",  optional_argument, NULL, O_RECORD },
		{ "output",  required_argument, NULL, 'o' },
		{ "interval", required_argument, NULL, 'i' },
		{ "verbose", no_argument,       NULL, 'v' },
		{ "help",    no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *configs = NULL;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:o:i:vh", longopts, NULL)) != -1) {
		if (c == 'h') {
			compare_usage(stdout);
			return MT_EXIT_OK;
		}
		if (c == '?' || c == ':')
			return mt_bad_option("compare", c, argv);
		if (parse_option(o, c, &configs))
			return MT_EXIT_USAGE;
	}
	if (optind < argc)
		o->cmd = argv + optind;
	if (!o->cmd && !o->server && !o->load)
		return mt_usage_error("compare", "missing the command to run after '--'");
	if (o->cmd && (o->server || o->load))
		return mt_usage_error("compare", "give either CMD after '--' or --server and --load");
	if (!o->cmd && !(o->server && o->load))
		return mt_usage_error("compare", "--server and --load go together");
	if (!o->cmd && !o->cycles)
		o->cycles = 3;
	if (compile(&o->cycle_re, o->cycle_pat, "--cycle-pattern"))
		return MT_EXIT_USAGE;
	if (compile(&o->tput_re, o->tput_pat, "--throughput-pattern")) {
		regfree(&o->cycle_re);
		return MT_EXIT_USAGE;
	}
	if (compile(&o->mark_re, o->mark_pat, "--cycle-mark")) {
		regfree(&o->cycle_re);
		regfree(&o->tput_re);
		return MT_EXIT_USAGE;
	}
	if (check_sweeps_used(o))
		return MT_EXIT_USAGE;
	/* with --config alone, the user's configurations against the baseline */
	if (!configs)
		configs = o->n_user ? "glibc" : CMP_DEFAULT_CONFIGS;
	if (cmp_points(o) > 256)
		return mt_usage_error("compare", "the sweeps make more than 256 points");
	return cmp_config_parse_list(o, configs) ? MT_EXIT_USAGE : -1;
}

/* ---- recording ----------------------------------------------------------------- */

/* DIR/compare.<config>[.<name>=<value>...].trace, '/' and spaces in values made '_'. */
static void trace_path(const struct cmp_opts *o, struct cmp_result *r)
{
	char *p = r->trace, *end = r->trace + sizeof(r->trace);
	p += snprintf(p, (size_t)(end - p), "%s/compare.%s", o->record_dir, r->cfg->name);
	for (size_t k = 0; k < o->n_sweeps && p < end; k++) {
		char *v = p + snprintf(p, (size_t)(end - p), ".%s=", o->sweep[k].name);
		if (v >= end)
			break;
		p = v + snprintf(v, (size_t)(end - v), "%s", o->sweep[k].value[cmp_point_value(o, r->point, k)]);
		for (; v < p && v < end; v++)
			if (*v == '/' || *v == ' ')
				*v = '_';
	}
	if (p < end)
		snprintf(p, (size_t)(end - p), ".trace");
}

/* The verdict of a recorded run, "" when its trace cannot be read. */
static void verdict_of(struct cmp_result *r)
{
	struct mt_trace *tr = NULL;
	struct mt_analysis *a = NULL;
	char err[MT_ERR_LEN];
	struct stat st;
	if (stat(r->trace, &st) || mt_trace_open(r->trace, &tr, err, NULL, NULL)) {
		snprintf(r->verdict, sizeof(r->verdict), "no trace");
		return;
	}
	if (mt_analyze(tr, NULL, &a, err) == 0 && a->verdict)
		snprintf(r->verdict, sizeof(r->verdict), "%s (%s)", mt_verdict_name(a->verdict->cls),
		         mt_confidence_name(a->verdict->confidence));
	else
		snprintf(r->verdict, sizeof(r->verdict), "not analyzed: %.70s", err);
	mt_analysis_free(a);
	mt_trace_close(tr);
}

/* ---- the command ------------------------------------------------------------------ */

/* Runs every point and configuration; returns 0, or the exit status of a stop by a signal. */
static int run_all(struct cmp_opts *o, struct cmp_result *res, size_t n)
{
	sigset_t sigs, old;
	volatile int stop_sig = 0;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGCHLD);
	void (*old_chld)(int) = signal(SIGCHLD, SIG_DFL);  /* so that waitpid sees the children */
	sigprocmask(SIG_BLOCK, &sigs, &old);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		mt_error("cannot create a signalfd: %s", strerror(errno));
		return MT_EXIT_FAIL;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (cmp_config_locate(o, &res[i]))
			continue;
		if (o->record_dir)
			trace_path(o, &res[i]);
		rc = cmp_run(o, &res[i], sfd, &old, i, n, &stop_sig);
	}
	close(sfd);
	signal(SIGCHLD, old_chld);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* Why a run did not end as asked, on stderr; 1 when it did not. */
static int report_failure(const struct cmp_opts *o, const struct cmp_result *r)
{
	const char *name = r->cfg->name;
	switch (r->status) {
	case CMP_MISSING: case CMP_NOT_RUN: case CMP_STOPPED:
		return 0;
	case CMP_NOEXEC:
		mt_error("'%s': cannot run '%s': %s", name, o->cmd ? o->cmd[0] : "/bin/sh",
		         strerror(r->exec_errno));
		return 1;
	case CMP_SERVER_DIED:
		mt_error("'%s': the server ended before the last load run", name);
		return 1;
	case CMP_LOAD_FAILED:
		mt_error("'%s': a load run failed (status %d)", name, WIFEXITED(r->load_wstatus) ?
		         WEXITSTATUS(r->load_wstatus) : 128 + WTERMSIG(r->load_wstatus));
		return 1;
	case CMP_RAN:
		break;
	}
	if (WIFSIGNALED(r->wstatus)) {
		mt_error("'%s': the command was killed by signal %d (%s)", name, WTERMSIG(r->wstatus),
		         strsignal(WTERMSIG(r->wstatus)));
		return 1;
	}
	if (WEXITSTATUS(r->wstatus)) {
		mt_error("'%s': the command exited with status %d", name, WEXITSTATUS(r->wstatus));
		return 1;
	}
	return 0;
}

static int setup(struct cmp_opts *o)
{
	if (o->record_dir) {
		struct stat st;
		if (stat(o->record_dir, &st) || !S_ISDIR(st.st_mode)) {
			mt_error("cannot record into '%s': not a folder", o->record_dir);
			return MT_EXIT_USAGE;
		}
		if (!(o->recorder = mt_find_lib(MT_RECORDER_LIB)))
			return MT_EXIT_USAGE;
	}
	if (o->output && !(o->output_file = fopen(o->output, "w"))) {
		mt_error("cannot write '%s': %s", o->output, strerror(errno));
		return MT_EXIT_FAIL;
	}
	/* marks end cycles in command mode; without the relay only output lines do */
	if (o->cmd)
		o->relay = mt_find_lib(MT_MARKS_LIB);
	o->progress = isatty(STDERR_FILENO);
	return 0;
}

int mt_cmd_compare(int argc, char **argv)
{
	struct cmp_opts o = { .interval_ns = 100 * NS_PER_MS, .ready_ns = NS_PER_S,
	                      .grace_ns = 5 * NS_PER_S, .trim_interval_ns = NS_PER_S,
	                      .cycle_pat = DEFAULT_CYCLE_PATTERN, .tput_pat = DEFAULT_TPUT_PATTERN,
	                      .mark_pat = DEFAULT_MARK_PATTERN };
	int rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	size_t n = cmp_points(&o) * o.n_run;
	struct cmp_result *res = calloc(n, sizeof(*res));
	if (!res) {
		mt_error("out of memory");
		rc = MT_EXIT_FAIL;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		res[i].point = i / o.n_run;
		res[i].cfg = o.run[i % o.n_run];
	}
	if ((rc = setup(&o)) || (rc = run_all(&o, res, n)))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (res[i].trace[0])
			verdict_of(&res[i]);
	rc = cmp_results_write(&o, res, n, stdout);
	o.output_file = NULL;      /* closed by cmp_results_write */
	if (fflush(stdout) && !rc) {
		mt_error("cannot write the tables: %s", strerror(errno));
		rc = MT_EXIT_FAIL;
	}
	int failed = 0;
	for (size_t i = 0; i < n; i++)
		failed |= report_failure(&o, &res[i]);   /* every failure is named */
	if (failed && !rc)
		rc = MT_EXIT_FAIL;
out:
	for (size_t i = 0; res && i < n; i++)
		free(res[i].cycle_rss);
	free(res);
	if (o.output_file) {         /* the runs were stopped: no results, no file */
		fclose(o.output_file);
		unlink(o.output);
	}
	free(o.recorder);
	free(o.trim_lib);
	free(o.relay);
	regfree(&o.mark_re);
	regfree(&o.cycle_re);
	regfree(&o.tput_re);
	return rc;
}
