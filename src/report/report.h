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

struct mt_report_opts {
	unsigned top_n;        /* stacks per top list; 0 or more than computed = all computed */
	int frames;            /* frames per stack; 0 = MT_REPORT_FRAMES */
	const char *trace_path;/* shown in the header; NULL = the trace's own path */
};

struct mt_reporter {
	const char *name;      /* what --format takes */
	const char *summary;   /* one line for --help */
	int (*write)(const struct mt_analysis *a, FILE *out, const struct mt_report_opts *opts);
};

/* Every reporter, NULL-terminated, in the order --help lists them. */
extern const struct mt_reporter *const mt_reporters[];

extern const struct mt_reporter mt_report_text;

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
