/*
 * Folded-stacks reporter: one line per call stack, its frames outermost
 * first joined by ';', then a space and a value:
 *
 *     main;handle_request;parse_json 123456
 *
 * which flamegraph.pl, inferno and speedscope read.  Every stack of the
 * analysis is written, not only a top list, so the widths of a flame
 * graph add up to the report's totals (the peak heap, bytes leaked,
 * calls...); stacks whose value is 0 are left out.  Consumers sum lines
 * that name the same frames, which happens when two call sites in one
 * function differ only by line.
 *
 * With report --diff the line carries two values, live bytes at mark A
 * and at mark B: flamegraph.pl draws widths from the second and colours
 * from the difference.
 *
 * Frame names follow the conventions of those tools: the function
 * (demangled), an inlined frame as its own frame with flamegraph.pl's
 * "_[i]" annotation, "module+0xoffset" for an address without a symbol
 * (the symbolizer's name), "0x<ip>" where no module covers the address.
 * A name can never break the grammar: ';' becomes ':', control
 * characters (a newline...) become '?', and a name ending in a space and
 * digits gets '_' for that space, which flamegraph.pl would otherwise
 * read as a value column.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "report/report.h"

/* Frames one line may hold: every ip of the deepest stack, with room for inlining. */
#define FOLDED_FRAMES_MAX (2 * MT_STACK_DEPTH_MAX)

static const char *const metric_names[MT_METRICS] = {
	[MT_METRIC_PEAK]      = "peak",
	[MT_METRIC_LEAKED]    = "leaked",
	[MT_METRIC_ALLOCATED] = "allocated",
	[MT_METRIC_CALLS]     = "calls",
	[MT_METRIC_TEMPORARY] = "temporary",
};

const char *mt_metric_name(enum mt_metric m)
{
	return (unsigned)m < MT_METRICS ? metric_names[m] : NULL;
}

int mt_metric_parse(const char *name, enum mt_metric *out)
{
	for (unsigned m = 0; name && m < MT_METRICS; m++)
		if (strcmp(metric_names[m], name) == 0) {
			*out = (enum mt_metric)m;
			return 0;
		}
	return -1;
}

uint64_t mt_metric_value(const struct mt_stack_stats *st, enum mt_metric m)
{
	switch (m) {
	case MT_METRIC_LEAKED:    return st->leaked_bytes;
	case MT_METRIC_ALLOCATED: return st->bytes;
	case MT_METRIC_CALLS:     return st->calls;
	case MT_METRIC_TEMPORARY: return st->temporary;
	default:                  return st->peak_bytes;
	}
}

/* The space before a trailing run of digits ("f 12"), or NULL. */
static const char *space_before_number(const char *s)
{
	const char *sp = strrchr(s, ' ');
	if (!sp || !sp[1] || strspn(sp + 1, "0123456789") != strlen(sp + 1))
		return NULL;
	return sp;
}

/* Writes one frame name so the line stays parseable (see the top of the file). */
static void put_name(FILE *f, const char *s)
{
	const char *sp = space_before_number(s);
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == ';')
			c = ':';
		else if (c < 0x20 || c == 0x7f)
			c = '?';
		else if (p == sp)
			c = '_';
		putc(c, f);
	}
}

static void put_frame(FILE *f, const struct mt_frame *fr)
{
	if (!fr->function[0] || strcmp(fr->function, "??") == 0)
		fprintf(f, "0x%" PRIx64, fr->ip);
	else
		put_name(f, fr->function);
	if (fr->inlined)
		fputs("_[i]", f);
}

/*
 * Writes the frames of canonical stack `node`, outermost first, without
 * the value.  fr has room for FOLDED_FRAMES_MAX frames.  A stack with no
 * frame to show is "[no call stack]"; one cut for lack of room starts
 * with "[truncated]", where its outer frames would be.
 */
static void put_stack(FILE *f, const struct mt_analysis *a, uint32_t node, struct mt_frame *fr)
{
	int more = 0, n = node ? mt_analysis_stack_frames(a, node, fr, FOLDED_FRAMES_MAX, &more) : 0;
	if (!n) {
		fputs("[no call stack]", f);
		return;
	}
	if (more)
		fputs("[truncated];", f);
	for (int i = n - 1; i >= 0; i--) {
		put_frame(f, &fr[i]);
		if (i)
			putc(';', f);
	}
}

static void write_stacks(FILE *f, const struct mt_analysis *a, enum mt_metric m, struct mt_frame *fr)
{
	for (size_t i = 0; i < a->n_stacks; i++) {
		uint64_t v = mt_metric_value(&a->stacks[i].st, m);
		if (!v)
			continue;
		put_stack(f, a, a->stacks[i].node, fr);
		fprintf(f, " %" PRIu64 "\n", v);
	}
}

/* report --diff: "STACK A B", live bytes at the two marks, every stack live at either. */
static void write_diff(FILE *f, const struct mt_analysis *a, struct mt_frame *fr)
{
	const struct mt_marks *mk = a->marks;
	for (size_t i = 0; i < mk->n_diff_rows; i++) {
		const struct mt_diff_stack *d = &mk->diff_top[i];
		int64_t b = (int64_t)d->a_bytes + d->bytes;
		if (b < 0)  /* cannot happen: every live change goes to one stack */
			b = 0;
		if (!d->a_bytes && !b)
			continue;
		put_stack(f, a, d->node, fr);
		fprintf(f, " %" PRIu64 " %" PRId64 "\n", d->a_bytes, b);
	}
}

static int folded_write(const struct mt_analysis *a, FILE *out, const struct mt_report_opts *opts)
{
	struct mt_frame *fr = malloc(FOLDED_FRAMES_MAX * sizeof(*fr));
	if (!fr)
		return -ENOMEM;
	if (a->marks && a->marks->have_diff)
		write_diff(out, a, fr);
	else
		write_stacks(out, a, opts ? opts->metric : MT_METRIC_PEAK, fr);
	free(fr);
	errno = 0;
	if (fflush(out) || ferror(out))
		return errno ? -errno : -EIO;
	return 0;
}

const struct mt_reporter mt_report_folded = {
	.name = "folded",
	.summary = "folded stacks for flame graphs (flamegraph.pl, inferno, speedscope)",
	.write = folded_write,
};
