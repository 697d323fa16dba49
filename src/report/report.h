/*
 * Reporters: one method table per output format.  The analysis is
 * computed once (src/analyze/analysis.h); a reporter only formats it.
 * Adding a format is one file that defines a `const struct mt_reporter`
 * and one line in the table in report.c.
 *
 * Errors: write() returns 0, or a negative errno-style code when the
 * stream failed (the caller names the file in its message).
 */
#ifndef MT_REPORT_REPORT_H
#define MT_REPORT_REPORT_H

#include <stdint.h>
#include <stdio.h>
#include "analyze/analysis.h"

#define MT_REPORT_FRAMES 12    /* symbolized frames shown per stack, inlined ones included */
#define MT_REPORT_WIDTH  100   /* columns of the text report */

/* The per-stack figure a one-value format (folded) prints; report --metric. */
enum mt_metric {
	MT_METRIC_PEAK,        /* live bytes at the heap's peak (the default: 0) */
	MT_METRIC_LEAKED,      /* bytes live at the end */
	MT_METRIC_ALLOCATED,   /* bytes allocated */
	MT_METRIC_CALLS,       /* allocation calls */
	MT_METRIC_TEMPORARY,   /* temporary allocations */
	MT_METRICS
};

struct mt_report_opts {
	unsigned top_n;        /* stacks per top list; 0 or more than computed = all computed */
	int frames;            /* frames per stack; 0 = MT_REPORT_FRAMES */
	const char *trace_path;/* shown in the header; NULL = the trace's own path */
	enum mt_metric metric; /* folded: the figure per stack; other formats ignore it */
};

struct mt_reporter {
	const char *name;      /* what --format takes */
	const char *summary;   /* one line for --help */
	int binary;            /* output is not text: the CLI will not write it to a terminal */
	int (*write)(const struct mt_analysis *a, FILE *out, const struct mt_report_opts *opts);
};

/* Every reporter, NULL-terminated, in the order --help lists them. */
extern const struct mt_reporter *const mt_reporters[];

extern const struct mt_reporter mt_report_text;
/*
 * JSON (json.c): every figure of the text report, the timeline, every stack
 * (up to 20000) with frames from a shared table; docs/report.schema.json.
 */
extern const struct mt_reporter mt_report_json;
/*
 * The JSON document of mt_report_json written to out, for reporters that
 * embed it (HTML).  flags: 0 or MT_JW_HTML_SAFE (report/jsonw.h: escapes
 * <, >, & so it can sit in a <script> element).  0, -ENOMEM, or -errno
 * when out failed.
 */
int mt_report_json_doc(const struct mt_analysis *a, FILE *out, const struct mt_report_opts *opts,
                       int flags);
/*
 * pprof (pprof.c): gzip'd profile.proto, Go's heap sample types
 * (alloc_objects, alloc_space, inuse_objects, inuse_space; inuse = live at
 * the end) and peak_space, one sample per stack; binary.
 */
extern const struct mt_reporter mt_report_pprof;
/*
 * Folded stacks (folded.c), the input of flamegraph.pl, inferno and
 * speedscope: "outer;...;inner VALUE" per stack, VALUE the opts->metric
 * figure, lines of value 0 left out.  With report --diff: "STACK A B",
 * live bytes at mark A and at mark B, flamegraph.pl's differential input.
 */
extern const struct mt_reporter mt_report_folded;
/*
 * HTML (html.c): one self-contained page that needs no network, the JSON
 * document (mt_report_json_doc) drawn by inline JavaScript: verdict,
 * timeline chart, size histogram, flame graph of the stacks, tables.
 */
extern const struct mt_reporter mt_report_html;
/*
 * The same page for a `memtriage compare` result: json_text (len bytes,
 * borrowed; not NUL-terminated necessarily) is a document of schema
 * "memtriage-compare", embedded as it is (with <, > and & escaped) and
 * drawn as its tables and recommendation.  0; -EINVAL when json_text is
 * NULL or does not name that schema (nothing written); -errno or -EIO
 * when out failed.
 */
int mt_html_write_compare(const char *json_text, size_t len, FILE *out);

/* "peak", "leaked", "allocated", "calls", "temporary"; NULL for an unknown metric. */
const char *mt_metric_name(enum mt_metric m);
/* The metric called `name`: 0, or -1 when there is none. */
int mt_metric_parse(const char *name, enum mt_metric *out);
/* Stack figure `m` of st (bytes or a count). */
uint64_t mt_metric_value(const struct mt_stack_stats *st, enum mt_metric m);

/* The reporter called `name`, or NULL. */
const struct mt_reporter *mt_reporter_find(const char *name);

/* ---- formatting helpers shared by reporters ---------------------------- */
#define MT_FMT_LEN 32          /* room for any helper's output */

/* "123 B", "1.18 MiB", "3.00 GiB": binary units, 3 significant digits. */
const char *mt_fmt_size(char buf[MT_FMT_LEN], uint64_t bytes);
/* "1,234,567". */
const char *mt_fmt_count(char buf[MT_FMT_LEN], uint64_t n);
/* "850 ns", "12.3 ms", "1.234 s", "2 min 03 s", "1 h 02 min". */
const char *mt_fmt_duration(char buf[MT_FMT_LEN], uint64_t ns);
/* 100 * part / whole with one decimal; "-" when whole is 0. */
const char *mt_fmt_percent(char buf[MT_FMT_LEN], uint64_t part, uint64_t whole);

#endif
