/*
 * What subcommands share: messages, option parsing helpers, and the
 * read-analyze-report pipeline with its progress line.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"

void mt_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("memtriage: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int mt_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("memtriage: ", stderr);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (see 'memtriage %s%s--help')\n", cmd ? cmd : "", cmd ? " " : "");
	va_end(ap);
	return MT_EXIT_USAGE;
}

int mt_bad_option(const char *cmd, int c, char **argv)
{
	const char *arg = argv[optind - 1];
	if (c == ':')
		return mt_usage_error(cmd, "option '%s' needs a value", arg);
	if (optopt && !(arg[0] == '-' && arg[1] == '-'))
		return mt_usage_error(cmd, "unknown option '-%c'", optopt);
	return mt_usage_error(cmd, "unknown option '%s'", arg);
}

int mt_parse_uint(const char *cmd, const char *opt, const char *s, unsigned lo, unsigned hi,
                  unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || errno || s[0] == '-' || v < lo || v > hi) {
		mt_usage_error(cmd, "invalid value '%s' for %s: expected a number from %u to %u",
		               s, opt, lo, hi);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

/* ---- progress line ------------------------------------------------------ */

/*
 * Drawn on stderr only when it is a terminal (the caller decides), as one
 * line rewritten in place with "\r" and erased before anything else is
 * printed.  Redrawn when the percentage changes, at most once per
 * PROGRESS_MIN_NS: on a fast disk the reader and the replay call back far
 * more often than a person can read, and each redraw is a write(2).
 */
#define PROGRESS_MIN_NS 100000000ull   /* 100 ms: at most 10 redraws a second */

struct progress {
	const char *path;
	int last;          /* last percent shown, -1 = none */
	int shown;         /* a line is on the terminal */
	uint64_t last_ns;  /* mt_mono_ns() of the last redraw */
};

static void progress_show(struct progress *p, const char *what, uint64_t done, uint64_t total)
{
	int pct = total ? (int)(done * 100 / total) : 0;
	if (pct > 100)
		pct = 100;
	if (pct == p->last)
		return;
	uint64_t now = mt_mono_ns();
	if (p->shown && now - p->last_ns < PROGRESS_MIN_NS)
		return;
	p->last = pct;
	p->shown = 1;
	p->last_ns = now;
	fprintf(stderr, "\rmemtriage: %s '%s': %3d%%\033[K", what, p->path, pct);
	fflush(stderr);
}

static void progress_read(uint64_t done, uint64_t total, void *arg)
{
	progress_show(arg, "reading", done, total);
}

static void progress_replay(uint64_t done, uint64_t total, void *arg)
{
	progress_show(arg, "analyzing", done, total);
}

/* Erases the line, if one is shown; the next phase starts drawing at once. */
static void progress_clear(struct progress *p)
{
	if (p->shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	p->shown = 0;
	p->last = -1;
}

/* ---- read, analyze, report ---------------------------------------------- */

int mt_report_timing;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* t[0..3]: start, opened, analyzed, written. */
static void print_timing(const double t[4], uint64_t events)
{
	double total = t[3] - t[0];
	fprintf(stderr, "memtriage: timing: read %.3f s, replay and analysis %.3f s, report %.3f s; "
	        "total %.3f s, %.1f M events/s\n", t[1] - t[0], t[2] - t[1], t[3] - t[2], total,
	        total > 0 ? (double)events / total / 1e6 : 0.0);
}

/* --diff: the marks are looked up before the replay, which keeps per-stack figures at those two. */
static int find_diff_marks(const struct mt_trace *tr, const char *const *diff,
                           struct mt_analysis_opts *aopts)
{
	char err[MT_ERR_LEN] = "";
	size_t k;
	for (int i = 0; diff && i < 2; i++) {
		int rc = mt_marks_find(tr, diff[i], &k, err);
		if (rc) {
			mt_error("%s", err);
			return rc == -ENOENT ? MT_EXIT_USAGE : MT_EXIT_FAIL;
		}
		aopts->diff_mark[i] = k + 1;
	}
	return MT_EXIT_OK;
}

int mt_write_report_opts(const char *path, const struct mt_reporter *rep,
                         const struct mt_report_opts *ro, const char *const *diff,
                         FILE *out, const char *out_name)
{
	struct progress prog = { path, -1, 0, 0 };
	int tty = isatty(STDERR_FILENO);
	struct mt_analysis_opts aopts = { .top_n = ro->top_n };
	struct mt_report_opts ropts = *ro;
	struct mt_trace *tr = NULL;
	struct mt_analysis *a = NULL;
	char err[MT_ERR_LEN] = "";
	double t[4];
	int rc;

	ropts.trace_path = path;
	t[0] = now_s();
	if (mt_trace_open(path, &tr, err, tty ? progress_read : NULL, &prog)) {
		progress_clear(&prog);
		mt_error("%s", err[0] ? err : "cannot read the trace");
		return MT_EXIT_USAGE;
	}
	progress_clear(&prog);
	if ((rc = find_diff_marks(tr, diff, &aopts))) {
		mt_trace_close(tr);
		return rc;
	}
	t[1] = now_s();
	if (tty) {
		aopts.progress = progress_replay;
		aopts.progress_arg = &prog;
	}
	rc = mt_analyze(tr, &aopts, &a, err);
	progress_clear(&prog);
	if (rc) {
		mt_error("%s", err);
		mt_trace_close(tr);
		return rc == -EINVAL ? MT_EXIT_USAGE : MT_EXIT_FAIL;
	}
	t[2] = now_s();
	rc = rep->write(a, out, &ropts);
	if (rc)
		mt_error("cannot write the report to '%s': %s", out_name, strerror(-rc));
	t[3] = now_s();
	if (mt_report_timing)
		print_timing(t, a->n_events);
	mt_analysis_free(a);
	mt_trace_close(tr);
	return rc ? MT_EXIT_FAIL : MT_EXIT_OK;
}

int mt_write_report(const char *path, const struct mt_reporter *rep, unsigned top_n,
                    FILE *out, const char *out_name)
{
	struct mt_report_opts ro = { .top_n = top_n };
	return mt_write_report_opts(path, rep, &ro, NULL, out, out_name);
}

int mt_exec_error(int fd)
{
	int e = 0;
	ssize_t n;
	do
		n = read(fd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(fd);
	return n == (ssize_t)sizeof(e) ? e : 0;
}

int mt_exec_status(int err)
{
	return err == ENOENT || err == ENOTDIR ? MT_EXIT_NOEXEC : MT_EXIT_NOPERM;
}

uint64_t mt_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int mt_wait_signal(const sigset_t *sigs, uint64_t deadline)
{
	for (;;) {
		struct timespec ts;
		uint64_t now = mt_mono_ns();
		int sig;
		if (deadline && now >= deadline)
			return 0;
		if (deadline) {
			ts.tv_sec = (time_t)((deadline - now) / 1000000000u);
			ts.tv_nsec = (long)((deadline - now) % 1000000000u);
			sig = sigtimedwait(sigs, NULL, &ts);
		} else {
			sig = sigwaitinfo(sigs, NULL);
		}
		if (sig > 0)
			return sig;
		if (errno == EAGAIN)
			return 0;
		/* EINTR: a stop and continue, say; go on waiting */
	}
}

static const struct {
	const char *suffix;
	double ns;
} duration_units[] = {
	{ "ms", 1e6 }, { "s", 1e9 }, { "", 1e9 }, { "m", 60e9 }, { "min", 60e9 }, { "h", 3600e9 },
};

int mt_parse_duration(const char *cmd, const char *opt, const char *s, uint64_t lo, uint64_t hi,
                      uint64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end != s && !errno && isfinite(v) && v >= 0 && s[0] != '-' && s[0] != '+')
		for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++)
			if (strcmp(end, duration_units[i].suffix) == 0) {
				double ns = v * duration_units[i].ns;
				if (ns < (double)lo || ns > (double)hi)
					break;
				*out = (uint64_t)ns;
				return 0;
			}
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN];
	mt_usage_error(cmd, "invalid value '%s' for %s: expected a duration such as 50ms, "
	               "1s or 10m, from %s to %s", s, opt, mt_fmt_duration(b1, lo),
	               mt_fmt_duration(b2, hi));
	return -1;
}
