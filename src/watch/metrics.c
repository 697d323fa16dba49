/*
 * The watch as metrics for Prometheus: OpenMetrics 1.0 text, or the older
 * Prometheus text format 0.0.4 for clients that ask for it.
 *
 * One table of families, walked once; each family is a gauge of one
 * sample, except the verdict (one sample per class, all present, so an
 * alert can match `class="growing"` and read 0 as well as 1) and the
 * samples counter.  The two formats differ only where the specs do: in
 * OpenMetrics a counter's family is named without "_total", a unit gets
 * a "# UNIT" line, and the exposition ends with "# EOF"; 0.0.4 knows none
 * of these, and `promtool check metrics` (a 0.0.4 parser) reads an
 * OpenMetrics counter as a family without help.
 *
 * What is not known is left out, never written as 0: a dashboard showing
 * a live heap of 0 would be a lie, a missing series is not.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include "watch/watch.h"

const char *mt_metrics_content_type(enum mt_metrics_format fmt)
{
	return fmt == MT_METRICS_PROM_TEXT ? "text/plain; version=0.0.4; charset=utf-8" :
	       "application/openmetrics-text; version=1.0.0; charset=utf-8";
}

const char *mt_watch_verdict_label(enum mt_watch_verdict v)
{
	switch (v) {
	case MT_WATCH_GROWING:   return "growing";
	case MT_WATCH_PLATEAU:   return "plateau_after_warmup";
	case MT_WATCH_NO_GROWTH: return "no_significant_growth";
	case MT_WATCH_TOO_FEW:   break;
	}
	return "too_few_samples";
}

/* ---- label values ------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 :
	             s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* overlong forms, surrogates and code points past U+10FFFF */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return len;
}

/* Writes s as a label value: \\, \" and \n escaped, invalid UTF-8 as '?'. */
static void put_label_value(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p);
	while (n) {
		size_t len = utf8_len(p, n);
		if (*p == '\\' || *p == '"')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (len)
			fwrite(p, 1, len, out);
		else
			fputc('?', out);
		len = len ? len : 1;
		p += len;
		n -= len;
	}
}

/* ---- families ------------------------------------------------------------------ */

struct family {
	const char *name;     /* the family's name; a counter's samples add "_total" */
	const char *type;     /* "gauge" or "counter" */
	const char *unit;     /* NULL: none; else the name ends in "_" + unit */
	const char *help;
};

struct writer {
	FILE *out;
	const struct mt_watch_metrics *m;
	enum mt_metrics_format fmt;
};

static void put_family(const struct writer *w, const struct family *f)
{
	int counter = strcmp(f->type, "counter") == 0;
	/* 0.0.4 names a counter's family after its sample */
	const char *suffix = counter && w->fmt == MT_METRICS_PROM_TEXT ? "_total" : "";
	fprintf(w->out, "# HELP %s%s %s\n", f->name, suffix, f->help);
	fprintf(w->out, "# TYPE %s%s %s\n", f->name, suffix, f->type);
	if (f->unit && w->fmt == MT_METRICS_OPENMETRICS)
		fprintf(w->out, "# UNIT %s %s\n", f->name, f->unit);
}

/* name{pid="..",command=".."[,class=".."] */
static void put_labels(const struct writer *w, const char *name, const char *cls)
{
	fprintf(w->out, "%s{pid=\"%ld\",command=\"", name, (long)w->m->pid);
	put_label_value(w->out, w->m->cmdline);
	fputc('"', w->out);
	if (cls)
		fprintf(w->out, ",class=\"%s\"", cls);
	fputc('}', w->out);
}

static void put_u64(const struct writer *w, const struct family *f, uint64_t v)
{
	put_family(w, f);
	put_labels(w, f->name, NULL);
	fprintf(w->out, " %" PRIu64 "\n", v);
}

/* A double as both formats spell it: NaN, +Inf, -Inf, or 17 significant digits. */
static void put_double(const struct writer *w, const struct family *f, double v)
{
	put_family(w, f);
	put_labels(w, f->name, NULL);
	if (isnan(v))
		fputs(" NaN\n", w->out);
	else if (isinf(v))
		fputs(v > 0 ? " +Inf\n" : " -Inf\n", w->out);
	else
		fprintf(w->out, " %.17g\n", v);
}

/* ---- the exposition ---------------------------------------------------------- */

/* The gauges of the latest sample: one per field the kernel gave. */
static const struct {
	enum mt_watch_field field;
	struct family f;
} sample_families[] = {
	{ MT_WF_RSS, { "memtriage_rss_bytes", "gauge", "bytes",
	  "Resident set size of the process (VmRSS of /proc/PID/status) at the latest sample." } },
	{ MT_WF_RSS_ANON, { "memtriage_rss_anon_bytes", "gauge", "bytes",
	  "Anonymous resident memory: heap, stacks, private mappings (RssAnon)." } },
	{ MT_WF_RSS_FILE, { "memtriage_rss_file_bytes", "gauge", "bytes",
	  "File-backed resident memory: code, mapped files (RssFile)." } },
	{ MT_WF_RSS_SHMEM, { "memtriage_rss_shmem_bytes", "gauge", "bytes",
	  "Shared memory, tmpfs and shared anonymous mappings (RssShmem)." } },
	{ MT_WF_SWAP, { "memtriage_swap_bytes", "gauge", "bytes",
	  "Anonymous memory of the process swapped out (VmSwap)." } },
	{ MT_WF_THREADS, { "memtriage_threads", "gauge", NULL,
	  "Threads of the process (Threads of /proc/PID/status)." } },
};

static const struct family
	fam_heap = { "memtriage_heap_live_bytes", "gauge", "bytes",
	             "Live heap: allocated and not yet freed." },
	fam_free = { "memtriage_allocator_free_bytes", "gauge", "bytes",
	             "Memory the allocator holds free for reuse (retained after free)." },
	fam_slope = { "memtriage_rss_growth_bytes_per_second", "gauge", "bytes_per_second",
	              "Growth of RSS over the analysis's later window (Theil-Sen slope)." },
	fam_anon_slope = { "memtriage_rss_anon_growth_bytes_per_second", "gauge",
	                   "bytes_per_second",
	                   "Growth of anonymous RSS over the later window (Theil-Sen slope)." },
	fam_verdict = { "memtriage_verdict", "gauge", NULL,
	                "The watch's verdict on RSS: 1 for the current class, 0 for the others." },
	fam_samples = { "memtriage_samples", "counter", NULL, "Samples taken of the process." };

static void put_sample_gauges(const struct writer *w)
{
	const struct mt_watch_sample *s = w->m->last;
	for (size_t i = 0; s && i < sizeof(sample_families) / sizeof(sample_families[0]); i++)
		if (mt_watch_has(s, sample_families[i].field))
			put_u64(w, &sample_families[i].f, s->v[sample_families[i].field]);
	if (w->m->have_heap_live)
		put_u64(w, &fam_heap, w->m->heap_live_bytes);
	if (w->m->have_alloc_free)
		put_u64(w, &fam_free, w->m->alloc_free_bytes);
}

static void put_analysis(const struct writer *w)
{
	const struct mt_watch_analysis *a = w->m->a;
	enum mt_watch_verdict v = a ? a->verdict : MT_WATCH_TOO_FEW;
	static const enum mt_watch_verdict all[] = {
		MT_WATCH_GROWING, MT_WATCH_PLATEAU, MT_WATCH_NO_GROWTH, MT_WATCH_TOO_FEW,
	};
	if (v != MT_WATCH_TOO_FEW) {
		put_double(w, &fam_slope, a->later_ts.slope_per_s);
		if (a->parts[MT_WP_ANON].have)
			put_double(w, &fam_anon_slope, a->parts[MT_WP_ANON].slope_per_s);
	}
	put_family(w, &fam_verdict);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		put_labels(w, fam_verdict.name, mt_watch_verdict_label(all[i]));
		fprintf(w->out, " %d\n", all[i] == v);
	}
}

int mt_watch_write_metrics(FILE *out, const struct mt_watch_metrics *m, enum mt_metrics_format fmt)
{
	struct writer w = { out, m, fmt };
	errno = 0;
	put_sample_gauges(&w);
	put_analysis(&w);
	put_family(&w, &fam_samples);
	put_labels(&w, "memtriage_samples_total", NULL);
	fprintf(out, " %" PRIu64 "\n", m->samples_total);
	if (fmt == MT_METRICS_OPENMETRICS)
		fputs("# EOF\n", out);
	if (fflush(out) || ferror(out))
		return errno ? -errno : -EIO;
	return 0;
}
