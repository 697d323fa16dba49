/*
 * The text report of `memtriage watch`: the verdict first with the figures
 * and thresholds it rests on, then the tables behind it (blocks, phases,
 * the regression, every figure sampled).  At most MT_REPORT_WIDTH columns.
 *
 * It only formats: every number comes from the series and the analysis.
 * The "VERDICT: " line has a fixed prefix so scripts can read it.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include "report/report.h"
#include "watch/watch.h"

#define MIB (1024.0 * 1024)

/* ---- formatting -------------------------------------------------------- */

/* "+52.1 MiB", "-1.20 MiB", "0 B": mt_fmt_size with a sign. */
static const char *fmt_signed(char buf[MT_FMT_LEN], double bytes)
{
	char mag[MT_FMT_LEN];
	double r = round(fabs(bytes));
	mt_fmt_size(mag, r > 1e19 ? UINT64_MAX : (uint64_t)r);
	snprintf(buf, MT_FMT_LEN, "%s%.24s", r == 0 ? "" : bytes < 0 ? "-" : "+", mag);
	return buf;
}

/* A slope as "+88.0 GiB/h". */
static const char *fmt_rate(char buf[MT_FMT_LEN], double bytes_per_s)
{
	char s[MT_FMT_LEN];
	snprintf(buf, MT_FMT_LEN, "%.24s/h", fmt_signed(s, bytes_per_s * 3600));
	return buf;
}

static const char *fmt_bytes(char buf[MT_FMT_LEN], double bytes)
{
	return mt_fmt_size(buf, bytes <= 0 ? 0 : (uint64_t)round(bytes));
}

/* A value of field f: a size, or a plain count. */
static const char *fmt_field(char buf[MT_FMT_LEN], enum mt_watch_field f, uint64_t v)
{
	return mt_watch_fields[f].is_count ? mt_fmt_count(buf, v) : mt_fmt_size(buf, v);
}

static const char *fmt_p(char buf[MT_FMT_LEN], double p)
{
	if (p < 0.0001)
		snprintf(buf, MT_FMT_LEN, "p < 0.0001");
	else
		snprintf(buf, MT_FMT_LEN, "p = %.4f", p);
	return buf;
}

/* The unit of the time columns, chosen once for the report. */
struct tunit {
	double div;           /* ns per unit */
	const char *name;
	int prec;
};

static struct tunit time_unit(uint64_t duration_ns)
{
	double s = (double)duration_ns / 1e9;
	if (s < 100)
		return (struct tunit){ 1e9, "s", 2 };
	if (s < 1000)
		return (struct tunit){ 1e9, "s", 0 };
	if (s < 36000)
		return (struct tunit){ 60e9, "min", 1 };
	return (struct tunit){ 3600e9, "h", 1 };
}

/* "0.00-1.50 s" */
static const char *fmt_times(char *buf, size_t cap, const struct tunit *u, uint64_t t0, uint64_t t1)
{
	snprintf(buf, cap, "%.*f-%.*f %s", u->prec, (double)t0 / u->div, u->prec,
	         (double)t1 / u->div, u->name);
	return buf;
}

/* "38-82", 1-based and inclusive like the seed's iterations. */
static const char *fmt_samples(char *buf, size_t cap, size_t first, size_t n)
{
	snprintf(buf, cap, "%zu-%zu", first + 1, first + n);
	return buf;
}

/* ---- header ------------------------------------------------------------ */

static void write_header(FILE *out, const struct mt_watch_run_info *ri,
                         const struct mt_watch_series *sr, const struct mt_watch_analysis *a)
{
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN], b3[MT_FMT_LEN], b4[MT_FMT_LEN];
	const char *cmd = ri->cmdline && *ri->cmdline ? ri->cmdline : "(command line unknown)";
	int cmd_room = MT_REPORT_WIDTH - 10;

	fprintf(out, "MEMTRIAGE WATCH\n\n");
	fprintf(out, "pid:      %ld\n", (long)ri->pid);
	if ((int)strlen(cmd) > cmd_room)
		fprintf(out, "command:  %.*s...\n", cmd_room - 3, cmd);
	else
		fprintf(out, "command:  %s\n", cmd);
	fprintf(out, "watched:  %s, %s samples every %s", mt_fmt_duration(b1, a->duration_ns),
	        mt_fmt_count(b2, a->n_samples), mt_fmt_duration(b3, ri->interval_ns));
	if (a->n_samples > 1)
		fprintf(out, " (%s on average)",
		        mt_fmt_duration(b4, a->duration_ns / (a->n_samples - 1)));
	fprintf(out, "\nended:    %s\n", ri->ended);
	if (ri->thinned)
		fprintf(out, "thinned:  %u times at the limit of %d samples: one sample kept in %u\n",
		        ri->thinned, MT_WATCH_SAMPLES_MAX, sr->stride);
	if (a->n_samples)
		fprintf(out, "RSS:      %s at the start, %s at the end, %s at most\n",
		        fmt_bytes(b1, a->rss_first), fmt_bytes(b2, a->rss_last),
		        fmt_bytes(b3, a->rss.max));
}

/* Writes `head` then the items joined by ", ", wrapped at MT_REPORT_WIDTH with an indent of 4. */
static void write_list(FILE *out, const char *head, const char *const *items, size_t n)
{
	int col = fprintf(out, "%s", head);
	for (size_t i = 0; i < n; i++) {
		int len = (int)strlen(items[i]) + (i + 1 < n ? 1 : 0);
		if (i && col + 1 + len > MT_REPORT_WIDTH)
			col = fprintf(out, "\n   ");
		col += fprintf(out, " %s%s", items[i], i + 1 < n ? "," : "");
	}
	fputc('\n', out);
}

/* Whether any sample has field f. */
static int any_has(const struct mt_watch_series *sr, enum mt_watch_field f)
{
	for (size_t i = 0; i < sr->n; i++)
		if (mt_watch_has(&sr->s[i], f))
			return 1;
	return 0;
}

/* "evidence used:" names what the samples hold, and why smaps_rollup is missing. */
static void write_sources(FILE *out, const struct mt_watch_run_info *ri,
                          const struct mt_watch_series *sr)
{
	char smaps[96], cg[64];
	const char *items[8];
	size_t n = 0;
	items[n++] = "VmRSS";
	if (any_has(sr, MT_WF_RSS_ANON))
		items[n++] = "the RssAnon/RssFile/RssShmem split";
	if (any_has(sr, MT_WF_SWAP))
		items[n++] = "VmSwap";
	if (any_has(sr, MT_WF_THREADS))
		items[n++] = "Threads (/proc/PID/status)";
	if (any_has(sr, MT_WF_TASKS))
		items[n++] = "the task count (/proc/PID/task)";
	if (any_has(sr, MT_WF_SM_PSS))
		snprintf(smaps, sizeof(smaps), "Pss and Private_Dirty (smaps_rollup)");
	else if (ri->smaps_errno)
		snprintf(smaps, sizeof(smaps), "no smaps_rollup (%s)", strerror(ri->smaps_errno));
	else
		snprintf(smaps, sizeof(smaps), "no smaps_rollup");
	items[n++] = smaps;
	if (any_has(sr, MT_WF_CG_CURRENT))
		snprintf(cg, sizeof(cg), "cgroup v%d memory (the whole cgroup)", ri->cg_version);
	else
		snprintf(cg, sizeof(cg), "no cgroup memory files");
	items[n++] = cg;
	write_list(out, "  evidence used:", items, n);
}

/* ---- verdict ------------------------------------------------------------- */

/* One evidence line: label, what was measured, what "growing" needs and whether it held. */
static void evidence(FILE *out, const char *label, const char *measured, const char *needs,
                     int met)
{
	fprintf(out, "  %-8s %-55s needs %s: %s\n", label, measured, needs, met ? "yes" : "no");
}

static void write_growth_checks(FILE *out, const struct mt_watch_analysis *a,
                                const struct tunit *u)
{
	char m[128], n[64], b1[MT_FMT_LEN], b2[MT_FMT_LEN], b3[MT_FMT_LEN], tb[64], sb[48];
	const struct mt_watch_span *w = &a->later;

	fprintf(out, "  window:  %s, samples %s, %s, mean RSS %s\n",
	        a->later_is_plateau ? "the plateau" : "the later half",
	        fmt_samples(sb, sizeof(sb), w->first, w->n),
	        fmt_times(tb, sizeof(tb), u, w->t0_ns, w->t1_ns), fmt_bytes(b1, w->rss.mean));
	snprintf(m, sizeof(m), "Mann-Kendall Z = %.2f, %s, %s", a->later_mk.z,
	         fmt_p(b1, a->later_mk.p_two_sided),
	         a->later_mk.direction > 0 ? "increasing" :
	         a->later_mk.direction < 0 ? "decreasing" : "no trend");
	snprintf(n, sizeof(n), "p < %g", MT_WATCH_ALPHA);
	evidence(out, "trend:", m, n, a->growth_checks & MT_WATCH_CHECK_TREND);
	snprintf(m, sizeof(m), "Theil-Sen %s (least squares %s)",
	         fmt_rate(b1, a->later_ts.slope_per_s), fmt_rate(b2, a->later_ls.slope_per_s));
	snprintf(n, sizeof(n), ">= %s/h", fmt_bytes(b3, MT_WATCH_FLOOR_BYTES_PER_H));
	evidence(out, "slope:", m, n, a->growth_checks & MT_WATCH_CHECK_SLOPE);
	snprintf(m, sizeof(m), "%s over the window, %.1f%% of its mean",
	         fmt_signed(b1, a->later_rise), 100 * a->later_ratio);
	snprintf(n, sizeof(n), ">= %.0f%%, >= %s", 100 * MT_WATCH_GROWTH_RATIO,
	         fmt_bytes(b2, MT_WATCH_FLOOR_BYTES));
	evidence(out, "rise:", m, n, (a->growth_checks & (MT_WATCH_CHECK_RATIO | MT_WATCH_CHECK_RISE))
	         == (MT_WATCH_CHECK_RATIO | MT_WATCH_CHECK_RISE));
}

static const char *const part_name[MT_WP_COUNT] = {
	[MT_WP_ANON] = "anonymous", [MT_WP_FILE] = "file-backed",
	[MT_WP_SHMEM] = "shared", [MT_WP_SWAP] = "swapped",
};

/* "split:" how each part of RSS moved over the window; "threads:" their count. */
static void write_split(FILE *out, const struct mt_watch_analysis *a)
{
	char b[MT_FMT_LEN];
	int any = 0;
	for (int i = 0; i < MT_WP_COUNT; i++) {
		if (!a->parts[i].have)
			continue;
		fprintf(out, "%s %s %s", any ? "," : "  split:  ", part_name[i],
		        fmt_signed(b, a->parts[i].rise));
		any = 1;
	}
	if (any)
		fprintf(out, " over the window (Theil-Sen)\n");
	if (a->have_threads)
		fprintf(out, "  threads: %" PRIu64 " at the start, %" PRIu64 " at the end, %" PRIu64
		        " at most\n", a->threads_first, a->threads_last, a->threads_max);
}

/* The part of RSS that carries most of the growth, or -1 when none does. */
static int main_part(const struct mt_watch_analysis *a)
{
	int best = -1;
	for (int i = 0; i < MT_WP_COUNT; i++)
		if (a->parts[i].have && a->parts[i].rise > 0 &&
		    (best < 0 || a->parts[i].rise > a->parts[best].rise))
			best = i;
	if (best >= 0 && a->parts[best].rise < 0.5 * a->later_rise)
		return -1;
	return best;
}

static void write_growing(FILE *out, const struct mt_watch_analysis *a)
{
	char b1[MT_FMT_LEN];
	static const char *const where[MT_WP_COUNT] = {
		[MT_WP_ANON]  = "anonymous memory: the heap, thread stacks or private mmaps",
		[MT_WP_FILE]  = "file-backed pages (mapped files, code), not the heap",
		[MT_WP_SHMEM] = "shared memory (tmpfs, System V or POSIX shm, shared anonymous)",
		[MT_WP_SWAP]  = "swap: RSS understates the growth",
	};
	int p = main_part(a);
	if (p >= 0)
		fprintf(out, "  The growth is in %s.\n", where[p]);
	if (a->have_threads && a->threads_last > a->threads_first)
		fprintf(out, "  Threads grew from %" PRIu64 " to %" PRIu64 ": each adds a stack and "
		        "may add a malloc arena.\n", a->threads_first, a->threads_last);
	if (a->later_ts.slope_per_s > 0)
		fprintf(out, "  At this slope RSS grows by 1 GiB every %s.\n",
		        mt_fmt_duration(b1, (uint64_t)(1e9 * 1024 * MIB / a->later_ts.slope_per_s)));
	fprintf(out, "  Not decidable from /proc alone: whether it is the live heap (a leak, an unbounded "
	        "cache),\n  memory the allocator keeps (retention), or mappings outside malloc "
	        "(non-heap growth).\n  'memtriage run -- CMD' records the allocations and tells "
	        "them apart.\n");
}

static void write_plateau(FILE *out, const struct mt_watch_analysis *a, const struct tunit *u)
{
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN], b3[MT_FMT_LEN], tb[64];
	const struct mt_watch_span *p = &a->plateau;
	fprintf(out, "  RSS rose by %s from the start to the plateau (%s of its mean), then held:\n",
	        fmt_signed(b1, a->warmup_rise),
	        mt_fmt_percent(b2, (uint64_t)fmax(0, a->warmup_rise), (uint64_t)p->rss.mean));
	fprintf(out, "  plateau %s: mean %s, sd %s, range %s; its slope is below the floors.\n",
	        fmt_times(tb, sizeof(tb), u, p->t0_ns, p->t1_ns), fmt_bytes(b1, p->rss.mean),
	        fmt_bytes(b2, p->rss.sd), fmt_bytes(b3, p->rss.max - p->rss.min));
	if (a->growth_checks & MT_WATCH_CHECK_TREND)
		fprintf(out, "  It still creeps upward (a significant trend, below the floors): watch "
		        "longer to tell.\n");
	fprintf(out, "  Pooling or a bounded cache, not a leak, as far as this watch shows: size the "
	        "limit from\n  the plateau's maximum %s and alert when RSS leaves it.\n",
	        fmt_bytes(b1, p->rss.max));
}

static void write_no_growth(FILE *out, const struct mt_watch_analysis *a)
{
	if (a->growth_checks & MT_WATCH_CHECK_TREND)
		fprintf(out, "  A small upward trend is significant, but below the floors: watch longer "
		        "to tell.\n");
	else if (a->later_mk.direction < 0)
		fprintf(out, "  RSS is falling in the later window.\n");
	else
		fprintf(out, "  No trend in the later window%s.\n",
		        a->have_plateau ? "" : ", and no level held long enough to call a plateau");
}

static void write_verdict(FILE *out, const struct mt_watch_run_info *ri,
                          const struct mt_watch_series *sr, const struct mt_watch_analysis *a,
                          const struct tunit *u)
{
	fprintf(out, "\nVERDICT: %s\n", mt_watch_verdict_name(a->verdict));
	if (a->verdict == MT_WATCH_TOO_FEW) {
		fprintf(out, "  %zu samples; the analysis needs %d: watch longer or sample more often "
		        "(--interval).\n", a->n_samples, MT_WATCH_MIN_POINTS);
		write_sources(out, ri, sr);
		return;
	}
	write_growth_checks(out, a, u);
	write_split(out, a);
	if (a->verdict == MT_WATCH_GROWING)
		write_growing(out, a);
	else if (a->verdict == MT_WATCH_PLATEAU)
		write_plateau(out, a, u);
	else
		write_no_growth(out, a);
	write_sources(out, ri, sr);
}

/* ---- tables ------------------------------------------------------------- */

static const char *phase_of(const struct mt_watch_analysis *a, size_t i)
{
	if (!a->have_plateau)
		return "";
	if (i >= a->plateau.first)
		return "plateau";
	return a->settling.n && i >= a->settling.first ? "settling" : "warm-up";
}

static void write_blocks(FILE *out, const struct mt_watch_analysis *a, const struct tunit *u)
{
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN], b3[MT_FMT_LEN], b4[MT_FMT_LEN], tb[64], sb[48];
	if (!a->n_blocks)
		return;
	fprintf(out, "\nMEMORY BY BLOCKS (%zu blocks of %zu sample%s: average RSS)\n", a->n_blocks,
	        a->block_size, a->block_size == 1 ? "" : "s");
	fprintf(out, "%5s  %-12s %-17s %10s %10s %10s %11s%s\n", "block", "samples", "time",
	        "avg RSS", "min", "max", "change", a->have_plateau ? "  phase" : "");
	for (size_t i = 0; i < a->n_blocks; i++) {
		const struct mt_block *b = &a->blocks[i];
		fprintf(out, "%5zu  %-12s %-17s %10s %10s %10s %11s%s%s\n", i + 1,
		        fmt_samples(sb, sizeof(sb), b->first, b->n),
		        fmt_times(tb, sizeof(tb), u, b->t0_ns, b->t1_ns), fmt_bytes(b1, b->mean),
		        fmt_bytes(b2, b->min), fmt_bytes(b3, b->max),
		        i ? fmt_signed(b4, b->mean - a->blocks[i - 1].mean) : "-",
		        a->have_plateau ? "  " : "", phase_of(a, b->first + b->n / 2));
	}
}

static void phase_row(FILE *out, const char *name, const struct mt_watch_span *sp,
                      const struct tunit *u)
{
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN], b3[MT_FMT_LEN], b4[MT_FMT_LEN], b5[MT_FMT_LEN];
	char tb[64], sb[48];
	if (!sp->n)
		return;
	fprintf(out, "%-10s %-12s %-17s %10s %10s %10s %10s %10s\n", name,
	        fmt_samples(sb, sizeof(sb), sp->first, sp->n),
	        fmt_times(tb, sizeof(tb), u, sp->t0_ns, sp->t1_ns), fmt_bytes(b1, sp->rss.mean),
	        fmt_bytes(b2, sp->rss.sd), fmt_bytes(b3, sp->rss.min), fmt_bytes(b4, sp->rss.max),
	        fmt_bytes(b5, sp->rss.max - sp->rss.min));
}

static void write_phases(FILE *out, const struct mt_watch_analysis *a, const struct tunit *u)
{
	fprintf(out, "\nPHASES (RSS)\n");
	if (!a->have_plateau)
		fprintf(out, "no plateau: RSS held no level for %.0f%% of the watch; the halves instead\n",
		        100 * MT_WATCH_PLATEAU_MIN_FRACTION);
	fprintf(out, "%-10s %-12s %-17s %10s %10s %10s %10s %10s\n", "phase", "samples", "time",
	        "mean", "sd", "min", "max", "range");
	if (a->have_plateau) {
		phase_row(out, "warm-up", &a->warmup, u);
		phase_row(out, "settling", &a->settling, u);
		phase_row(out, "plateau", &a->plateau, u);
		return;
	}
	phase_row(out, "first half", &a->early, u);
	phase_row(out, "later half", &a->later, u);
}

static void write_regression(FILE *out, const struct mt_watch_analysis *a, const struct tunit *u)
{
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN], tb[64], sb[48];
	const struct mt_watch_span *w = &a->later;
	fprintf(out, "\nREGRESSION ON THE %s (samples %s, %s)\n",
	        a->later_is_plateau ? "PLATEAU" : "LATER HALF", fmt_samples(sb, sizeof(sb), w->first, w->n),
	        fmt_times(tb, sizeof(tb), u, w->t0_ns, w->t1_ns));
	fprintf(out, "least squares   %s", fmt_rate(b1, a->later_ls.slope_per_s));
	if (w->rss.sd > 0)   /* a constant window fits any line perfectly: r2 says nothing */
		fprintf(out, " (r2 %.3f)", a->later_ls.r2);
	fputc('\n', out);
	fprintf(out, "Theil-Sen       %s\n", fmt_rate(b1, a->later_ts.slope_per_s));
	fprintf(out, "Mann-Kendall    S = %.0f, Z = %.2f, %s: %s at alpha %g\n", a->later_mk.s,
	        a->later_mk.z, fmt_p(b2, a->later_mk.p_two_sided),
	        a->growth_checks & MT_WATCH_CHECK_TREND ? "increasing" :
	        a->later_mk.direction < 0 ? "decreasing" : "no significant increase", MT_WATCH_ALPHA);
	if (a->n_points < a->n_samples)
		fprintf(out, "(statistics on %zu points, each the mean of consecutive samples)\n",
		        a->n_points);
}

/* Rows of the FIGURES table, in order. */
static const enum mt_watch_field figure_rows[] = {
	MT_WF_RSS, MT_WF_RSS_ANON, MT_WF_RSS_FILE, MT_WF_RSS_SHMEM, MT_WF_SWAP, MT_WF_SM_PSS,
	MT_WF_SM_PRIV_DIRTY, MT_WF_HWM, MT_WF_VM_SIZE, MT_WF_VM_PEAK, MT_WF_THREADS, MT_WF_TASKS,
	MT_WF_CG_CURRENT, MT_WF_CG_MAX,
};

static void figure_row(FILE *out, const struct mt_watch_series *sr, enum mt_watch_field f)
{
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN], b3[MT_FMT_LEN], b4[MT_FMT_LEN];
	uint64_t first = 0, last = 0, lo = UINT64_MAX, hi = 0;
	size_t k = 0;
	for (size_t i = 0; i < sr->n; i++) {
		if (!mt_watch_has(&sr->s[i], f))
			continue;
		uint64_t v = sr->s[i].v[f];
		first = k++ ? first : v;
		last = v;
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	if (!k)
		return;
	fprintf(out, "%-30s %12s %12s %12s %12s\n", mt_watch_fields[f].name, fmt_field(b1, f, first),
	        fmt_field(b2, f, last), fmt_field(b3, f, lo), fmt_field(b4, f, hi));
}

static void write_figures(FILE *out, const struct mt_watch_series *sr)
{
	fprintf(out, "\nFIGURES (from /proc and the cgroup)\n%-30s %12s %12s %12s %12s\n", "",
	        "at the start", "at the end", "lowest", "highest");
	for (size_t i = 0; i < sizeof(figure_rows) / sizeof(figure_rows[0]); i++)
		figure_row(out, sr, figure_rows[i]);
}

int mt_watch_write_text(FILE *out, const struct mt_watch_run_info *ri,
                        const struct mt_watch_series *sr, const struct mt_watch_analysis *a)
{
	struct tunit u = time_unit(a->duration_ns);
	write_header(out, ri, sr, a);
	write_verdict(out, ri, sr, a, &u);
	write_blocks(out, a, &u);
	if (a->verdict != MT_WATCH_TOO_FEW) {
		write_phases(out, a, &u);
		write_regression(out, a, &u);
	}
	write_figures(out, sr);
	fflush(out);
	return ferror(out) ? -(errno ? errno : EIO) : 0;
}
