/*
 * Text reporter: the report a person reads in a terminal, at most
 * MT_REPORT_WIDTH columns.  SUMMARY lines start at column 0 with a fixed
 * prefix followed by a plain integer ("peak heap: 1234 bytes ...") so
 * scripts and tests can parse them; human-readable sizes follow in
 * parentheses.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "report/report.h"
#include "analyze/arenas.h"

#define BAR_WIDTH     30
#define FILE_COLS     48   /* source paths longer than this keep their tail */
#define HIST_ROWS     32

struct tw {
	FILE *f;
	const struct mt_analysis *a;
	const struct mt_trace *tr;
	const struct mt_report_opts *o;
};

/* Prints s, cut to `width` columns with "..." when longer, and a newline. */
static void put_line(FILE *f, const char *s, int width)
{
	int len = (int)strlen(s);
	if (len <= width)
		fprintf(f, "%s\n", s);
	else
		fprintf(f, "%.*s...\n", width - 3, s);
}

static void section(FILE *f, const char *title)
{
	fprintf(f, "\n%s\n", title);
}

/* ---- header ------------------------------------------------------------- */

static void command_line(const struct mt_trace *tr, char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = 0;
	for (int i = 0; i < tr->argc && o + 1 < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? " " : "", tr->argv[i]);
	if (!buf[0] && tr->exe)
		snprintf(buf, cap, "%s", tr->exe);
	if (!buf[0])
		snprintf(buf, cap, "(unknown)");
}

static void write_header(struct tw *w)
{
	const struct mt_trace *tr = w->tr;
	char cmd[1024], line[1200], b1[MT_FMT_LEN], b2[MT_FMT_LEN], when[64] = "";
	const char *path = w->o->trace_path ? w->o->trace_path : tr->path;

	fprintf(w->f, "MEMTRIAGE REPORT\n");
	command_line(tr, cmd, sizeof(cmd));
	snprintf(line, sizeof(line), "command:  %s", cmd);
	put_line(w->f, line, MT_REPORT_WIDTH);
	if (tr->start_realtime_ns) {
		time_t t = (time_t)(tr->start_realtime_ns / 1000000000u);
		struct tm tm;
		if (localtime_r(&t, &tm))
			strftime(when, sizeof(when), ", started %Y-%m-%d %H:%M:%S", &tm);
	}
	if (tr->pid)
		fprintf(w->f, "process:  pid %u, %u thread%s%s\n", tr->pid, w->a->n_threads,
		        w->a->n_threads == 1 ? "" : "s", when);
	else
		fprintf(w->f, "process:  unknown (no process record in the trace)\n");
	fprintf(w->f, "duration: %s\n", mt_fmt_duration(b1, w->a->duration_ns));
	snprintf(line, sizeof(line), "trace:    %s (%s, %s events)", path ? path : "?",
	         mt_fmt_size(b1, tr->file_size), mt_fmt_count(b2, w->a->n_events));
	put_line(w->f, line, MT_REPORT_WIDTH);
	if (w->a->end_kind == MT_ENDED_CUT)
		fprintf(w->f, "WARNING: the trace was cut (the process crashed, was killed, or is still "
		        "running);\n         figures cover what was recorded until then.\n");
	else if (w->a->end_kind == MT_ENDED_EXEC)
		fprintf(w->f, "note:     the process called exec(); the new program was not recorded.\n");
	if (tr->lost_events || mt_trace_stat(tr, MT_ST_DROPPED, 0))
		fprintf(w->f, "WARNING: %" PRIu64 " events lost and %" PRIu64 " dropped by the recorder; "
		        "figures are approximate.\n", tr->lost_events, mt_trace_stat(tr, MT_ST_DROPPED, 0));
}

/* ---- summary ------------------------------------------------------------ */

static const char *end_phrase(enum mt_end_kind k)
{
	switch (k) {
	case MT_ENDED_EXIT: return "leaked at exit";
	case MT_ENDED_EXEC: return "live at exec";
	default:            return "live when the trace was cut";
	}
}

static void write_anomalies(struct tw *w)
{
	const struct mt_analysis *a = w->a;
	char b[MT_FMT_LEN];
	if (a->failed_calls)
		fprintf(w->f, "failed allocations: %" PRIu64 " (returned NULL)\n", a->failed_calls);
	if (a->unknown_frees)
		fprintf(w->f, "frees of unknown blocks: %" PRIu64 " (allocated before recording "
		        "started, or outside the hooks)\n", a->unknown_frees);
	if (a->double_allocs)
		fprintf(w->f, "anomalies: %" PRIu64 " allocations of an address already live "
		        "(the older block was counted as freed)\n", a->double_allocs);
	if (a->unknown_func)
		fprintf(w->f, "unknown allocation functions: %s events\n",
		        mt_fmt_count(b, a->unknown_func));
}

static void write_summary(struct tw *w)
{
	const struct mt_analysis *a = w->a;
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN];
	section(w->f, "SUMMARY");
	fprintf(w->f, "calls to allocation functions: %" PRIu64, a->alloc_calls);
	if (a->duration_ns >= 1000000)
		fprintf(w->f, " (%s per second)",
		        mt_fmt_count(b1, (uint64_t)((double)a->alloc_calls * 1e9 / (double)a->duration_ns)));
	fprintf(w->f, "\nfree calls: %" PRIu64 "\n", a->free_calls);
	fprintf(w->f, "bytes allocated: %" PRIu64 " bytes (%s)\n", a->bytes_allocated,
	        mt_fmt_size(b1, a->bytes_allocated));
	fprintf(w->f, "temporary allocations: %" PRIu64 " (%s of calls)\n", a->temporary,
	        mt_fmt_percent(b1, a->temporary, a->alloc_calls));
	fprintf(w->f, "peak heap: %" PRIu64 " bytes (%s) in %" PRIu64 " blocks at %s\n",
	        a->peak_bytes, mt_fmt_size(b1, a->peak_bytes), a->peak_blocks,
	        mt_fmt_duration(b2, a->peak_t_ns));
	if (a->have_rss)
		fprintf(w->f, "peak RSS: %" PRIu64 " bytes (%s)\n", a->peak_rss_bytes,
		        mt_fmt_size(b1, a->peak_rss_bytes));
	else
		fprintf(w->f, "peak RSS: n/a (no RSS samples in the trace)\n");
	fprintf(w->f, "%s: %" PRIu64 " bytes in %" PRIu64 " blocks (%s)\n", end_phrase(a->end_kind),
	        a->end_bytes, a->end_blocks, mt_fmt_size(b1, a->end_bytes));
	write_anomalies(w);
}


/* ---- verdict, evidence, remedies --------------------------------------- */

/*
 * Prints s wrapped at MT_REPORT_WIDTH from column `col` (what the line
 * already holds), continuation lines indented by `indent`.
 */
static void put_wrapped_at(FILE *f, const char *s, int col, int indent)
{
	int width = MT_REPORT_WIDTH, start = col;
	while (*s) {
		const char *sp = s;
		while (*sp && *sp != ' ')
			sp++;
		int len = (int)(sp - s);
		if (col > start && col + 1 + len > width) {
			fprintf(f, "\n%*s", indent, "");
			col = start = indent;
		} else if (col > start) {
			fputc(' ', f);
			col++;
		}
		fprintf(f, "%.*s", len, s);
		col += len;
		s = *sp ? sp + 1 : sp;
	}
	fputc('\n', f);
}

/*
 * A snippet line, indented by 3 beyond its own leading spaces; longer than
 * the width, broken at spaces with " \\" so a shell reads it as one line.
 */
static void put_wrapped(FILE *f, const char *s, int indent)
{
	put_wrapped_at(f, s, 0, indent);
}

static void put_code(FILE *f, const char *s)
{
	int lead = (int)strspn(s, " "), col = 3 + lead, width = MT_REPORT_WIDTH - 2;
	fprintf(f, "   %*s", lead, "");
	s += lead;
	while (*s) {
		const char *sp = strchr(s, ' ');
		int len = sp ? (int)(sp - s) : (int)strlen(s);
		if (col > 3 + lead && col + 1 + len > width) {
			fprintf(f, " \\\n%*s", 5 + lead, "");
			col = 5 + lead;
		} else if (col > 3 + lead) {
			fputc(' ', f);
			col++;
		}
		fprintf(f, "%.*s", len, s);
		col += len;
		s += len;
		s += strspn(s, " ");
	}
	fputc('\n', f);
}

static void write_remedy(FILE *f, size_t rank, const char *r);

static const char *fmt_signed_size(char buf[MT_FMT_LEN], double v)
{
	char b[MT_FMT_LEN];
	mt_fmt_size(b, (uint64_t)(v < 0 ? -v : v));
	snprintf(buf, MT_FMT_LEN, "%s%.24s", v < 0 ? "-" : "", b);
	return buf;
}

static const char *fmt_ev(char buf[MT_FMT_LEN], double v, enum mt_ev_unit u)
{
	char b[MT_FMT_LEN];
	switch (u) {
	case MT_U_BYTES:       return fmt_signed_size(buf, v);
	case MT_U_BYTES_PER_S: snprintf(buf, MT_FMT_LEN, "%.26s/s", fmt_signed_size(b, v)); return buf;
	case MT_U_RATIO:       snprintf(buf, MT_FMT_LEN, "%.3g", v); return buf;
	case MT_U_PERCENT:     snprintf(buf, MT_FMT_LEN, "%.0f%%", 100 * v); return buf;
	case MT_U_P:           snprintf(buf, MT_FMT_LEN, "%.2g", v); return buf;
	default:               snprintf(buf, MT_FMT_LEN, "%.0f", v); return buf;
	}
}

/* Owner line: "#1  3.52 MiB live at end in 900 blocks: f < g < h". */
static void write_owner(struct tw *w, size_t rank, uint32_t si)
{
	const struct mt_stack *s = &w->a->stacks[si];
	struct mt_frame fr[4];
	char line[512], b1[MT_FMT_LEN];
	int more = 0, n = mt_analysis_stack_frames(w->a, s->node, fr, 4, &more);
	int o = snprintf(line, sizeof line, "  owner #%zu  %s %s in %" PRIu64 " blocks:", rank,
	                 mt_fmt_size(b1, s->st.leaked_bytes),
	                 w->a->end_kind == MT_ENDED_EXIT ? "leaked" : "live at end", s->st.leaked_blocks);
	for (int i = 0; i < n && o < (int)sizeof line; i++)
		o += snprintf(line + o, sizeof line - (size_t)o, "%s %s", i ? " <" : "", fr[i].function);
	if (!n)
		snprintf(line + o, sizeof line - (size_t)o, " <no call stack recorded>");
	put_line(w->f, line, MT_REPORT_WIDTH);
}

static void write_verdict(struct tw *w)
{
	const struct mt_verdict *v = w->a->verdict;
	const struct mt_analysis *a = w->a;
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN], b3[MT_FMT_LEN], b4[MT_FMT_LEN];
	if (!v)
		return;
	section(w->f, "VERDICT");
	fprintf(w->f, "verdict: %s, confidence %s\n", mt_verdict_name(v->cls),
	        mt_confidence_name(v->confidence));
	put_wrapped(w->f, v->summary, 2);
	if (v->cls == MT_V_TOO_SHORT)
		return;
	if (!v->allocator_stats && v->mi_samples)
		fprintf(w->f, "allocator statistics unavailable: evidence from RSS minus live heap\n"
		        "  (only %zu mallinfo2 sample%s: the recorder stops sampling when one call "
		        "takes over 5 ms)\n", v->mi_samples, v->mi_samples == 1 ? "" : "s");
	else if (!v->allocator_stats)
		fprintf(w->f, "allocator statistics unavailable: evidence from RSS minus live heap\n"
		        "  (no mallinfo2: the allocator is not glibc's)\n");
	for (size_t i = 0; i < v->n_owners; i++)
		write_owner(w, i + 1, v->owners[i]);

	const struct mt_timeline_point *p0 = &a->timeline[v->win_first];
	section(w->f, "EVIDENCE");
	fprintf(w->f, "after warm-up: samples %zu-%zu of %zu (%s to %s%s)\n", v->win_first + 1, v->win_end, a->n_timeline,
	        mt_fmt_duration(b1, p0->t_ns), mt_fmt_duration(b2, a->timeline[v->win_end - 1].t_ns),
	        v->win_end < a->n_timeline ? ", before the exit" : "");
	fprintf(w->f, "%-4s %-58s %14s %2s %14s\n", "met", "figure (met: the rule's condition held)",
	        "measured", "", "threshold");
	for (size_t i = 0; i < v->n_ev; i++) {
		const struct mt_evidence *e = &v->ev[i];
		fprintf(w->f, "%-4s %-58.58s %14s %2s %14s\n", e->met ? "yes" : "no", e->what,
		        fmt_ev(b1, e->value, e->unit), e->op, fmt_ev(b2, e->threshold, e->unit));
	}
	fprintf(w->f, "live heap after warm-up: mean %s, slope %s/s; RSS mean %s, slope %s/s\n",
	        fmt_signed_size(b1, v->heap_mean), fmt_signed_size(b2, v->heap_slope),
	        fmt_signed_size(b3, v->rss_mean), fmt_signed_size(b4, v->rss_slope));

	section(w->f, "REMEDIES");
	if (!v->n_remedy)
		fprintf(w->f, "(none needed)\n");
	for (size_t i = 0; i < v->n_remedy; i++)
		write_remedy(w->f, i + 1, v->remedy[i]);
}

/*
 * A remedy: its first line is prose, wrapped; a line that starts with
 * spaces is a command or snippet: kept as it is, and a command too long
 * for the width is broken at spaces with a shell continuation " \".
 */
static void write_remedy(FILE *f, size_t rank, const char *r)
{
	char line[MT_V_TEXT_LEN + 8];
	for (int first = 1; *r; first = 0) {
		const char *nl = strchr(r, '\n');
		size_t len = nl ? (size_t)(nl - r) : strlen(r);
		snprintf(line, sizeof line, "%.*s", (int)len, r);
		r += len + (nl ? 1 : 0);
		if (first) {
			int col = fprintf(f, "%zu. ", rank);
			put_wrapped_at(f, line, col, 5);
			continue;
		}
		put_code(f, line);
	}
}

/* ---- timeline and glibc arenas ------------------------------------------ */

#define TIMELINE_BLOCKS 10

static void write_timeline(struct tw *w)
{
	const struct mt_analysis *a = w->a;
	size_t n = a->n_timeline;
	char b[6][MT_FMT_LEN];
	if (!n)
		return;
	size_t bs = (n + TIMELINE_BLOCKS - 1) / TIMELINE_BLOCKS;
	section(w->f, "TIMELINE (block averages)");
	fprintf(w->f, "%-5s %-19s %12s %12s %14s %12s %8s\n", "block", "time", "RSS", "live heap",
	        "alloc. free", "non-heap", "threads");
	for (size_t first = 0, k = 1; first < n; first += bs, k++) {
		size_t end = first + bs < n ? first + bs : n, nmi = 0;
		double rss = 0, heap = 0, fr = 0, nh = 0, th = 0;
		for (size_t i = first; i < end; i++) {
			const struct mt_timeline_point *p = &a->timeline[i];
			rss += (double)p->rss;
			heap += (double)p->heap_bytes;
			nh += (double)p->non_heap;
			th += (double)p->threads;
			if (p->have_mi) {
				fr += (double)p->alloc_free;
				nmi++;
			}
		}
		double m = (double)(end - first);
		char when[48];
		snprintf(when, sizeof when, "%s-%s", mt_fmt_duration(b[0], a->timeline[first].t_ns),
		         mt_fmt_duration(b[1], a->timeline[end - 1].t_ns));
		fprintf(w->f, "%-5zu %-19s %12s %12s %14s %12s %8.0f\n", k, when,
		        mt_fmt_size(b[2], (uint64_t)(rss / m)), mt_fmt_size(b[3], (uint64_t)(heap / m)),
		        nmi ? mt_fmt_size(b[4], (uint64_t)(fr / (double)nmi)) : "-",
		        fmt_signed_size(b[5], nh / m), th / m);
	}
	if (a->verdict && !a->verdict->allocator_stats)
		fprintf(w->f, "non-heap here is RSS minus live heap (allocator statistics unavailable)\n");
}

/* Per-arena table from the malloc_info snapshot nearest before the mallinfo2 sample p. */
static void write_malloc_info(struct tw *w, const struct mt_timeline_point *p)
{
	const struct mt_malloc_info *mi = mt_arenas_pick(w->a->trace, p->t_ns);
	struct mt_arenas m;
	if (!mi || mt_arenas_parse(mi->xml, &m))
		return;
	mt_arenas_write(w->f, &m, mi->t_ns, p->threads);
	mt_arenas_release(&m);
}

static void write_arenas(struct tw *w)
{
	const struct mt_analysis *a = w->a;
	const struct mt_timeline_point *p = NULL;
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN];
	/* the last sample before the exit's teardown, when the verdict found one; else the last */
	size_t end = a->verdict && a->verdict->win_end ? a->verdict->win_end : a->n_timeline;
	for (size_t i = end; i-- > 0 && !p;)
		if (a->timeline[i].have_mi && !a->timeline[i].mi_age_ns)
			p = &a->timeline[i];
	if (!p)
		return;
	uint64_t fp = p->mi_arena + p->mi_hblkhd;
	double util = fp ? (double)p->mi_heap / (double)fp : 0;
	section(w->f, "GLIBC ARENAS (mallinfo2, last sample before the exit)");
	fprintf(w->f, "at %s:\n", mt_fmt_duration(b1, p->t_ns - p->mi_age_ns));
	fprintf(w->f, "  arena (non-mmap):     %16s\n", mt_fmt_size(b1, p->mi_arena));
	fprintf(w->f, "  in use (uordblks):    %16s\n", mt_fmt_size(b1, p->mi_uordblks));
	fprintf(w->f, "  free in arenas (fordblks): %10s\n", mt_fmt_size(b1, p->mi_fordblks));
	fprintf(w->f, "  releasable (keepcost):%16s\n", mt_fmt_size(b1, p->mi_keepcost));
	fprintf(w->f, "  mmap regions (hblks): %16s  holding %s (hblkhd)\n",
	        mt_fmt_count(b1, p->mi_hblks), mt_fmt_size(b2, p->mi_hblkhd));
	fprintf(w->f, "  live heap:            %16s  utilization %.1f%% of arena + hblkhd\n",
	        mt_fmt_size(b1, p->mi_heap), 100 * util);
	fprintf(w->f, "  threads:              %16" PRIu64 "\n", p->threads);
	if (mt_verdict_arena_warn_util(util))
		fprintf(w->f, "WARNING: low utilization: %.1f%% of what glibc holds is live\n", 100 * util);
	if (mt_verdict_arena_warn_keepcost(p->mi_fordblks, p->mi_keepcost))
		fprintf(w->f, "WARNING: free in arenas (%s) far above releasable at the top (%s): the "
		        "free memory\n         is spread inside the arenas; only malloc_trim(0) or "
		        "fewer arenas give it back\n", mt_fmt_size(b1, p->mi_fordblks),
		        mt_fmt_size(b2, p->mi_keepcost));
	write_malloc_info(w, p);
}

/* ---- allocation functions ----------------------------------------------- */

static void write_functions(struct tw *w)
{
	const struct mt_analysis *a = w->a;
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN], b3[MT_FMT_LEN], b4[MT_FMT_LEN];
	section(w->f, "ALLOCATION FUNCTIONS");
	fprintf(w->f, "%-16s %15s %8s %16s %12s\n", "function", "calls", "% calls",
	        "bytes allocated", "failed");
	for (unsigned f = 0; f < MT_N_ALLOC_FUNCS; f++) {
		if (!a->calls[f])
			continue;
		fprintf(w->f, "%-16s %15s %8s %16s %12s\n", f ? mt_func_name(f) : "(unknown)",
		        mt_fmt_count(b1, a->calls[f]), mt_fmt_percent(b2, a->calls[f], a->alloc_calls),
		        mt_fmt_size(b3, a->func_bytes[f]), mt_fmt_count(b4, a->failed[f]));
	}
	fprintf(w->f, "%-16s %15s\n", "free", mt_fmt_count(b1, a->free_calls));
}

/* ---- top stacks --------------------------------------------------------- */

/* A long source path keeps its last components: ".../dir/file.c". */
static const char *short_path(const char *p)
{
	size_t len = strlen(p);
	if (len <= FILE_COLS)
		return p;
	const char *s = p + len - (FILE_COLS - 4);
	const char *slash = strchr(s, '/');
	return slash ? slash + 1 : s;
}

/* The symbolizer names an address without a symbol "module+0xoffset". */
static int is_module_offset(const struct mt_frame *fr)
{
	size_t len = strlen(fr->module);
	return strncmp(fr->function, fr->module, len) == 0 && fr->function[len] == '+';
}

static void write_frame(struct tw *w, const struct mt_frame *fr)
{
	char line[512], where[256] = "";
	int cut = fr->file && short_path(fr->file) != fr->file;
	if (fr->file && fr->line)
		snprintf(where, sizeof(where), " (%s%s:%d)", cut ? ".../" : "", short_path(fr->file),
		         fr->line);
	else if (fr->file)
		snprintf(where, sizeof(where), " (%s%s)", cut ? ".../" : "", short_path(fr->file));
	else if (fr->module && !is_module_offset(fr))
		snprintf(where, sizeof(where), " [%s]", fr->module);
	if (strcmp(fr->function, "??") == 0)
		snprintf(line, sizeof(line), "      at 0x%" PRIx64 "%s", fr->ip, where);
	else
		snprintf(line, sizeof(line), "      at %s%s%s", fr->function, where,
		         fr->inlined ? " [inlined]" : "");
	put_line(w->f, line, MT_REPORT_WIDTH);
}

static void write_frames(struct tw *w, uint32_t node)
{
	struct mt_frame fr[64];
	int max = w->o->frames > 0 ? w->o->frames : MT_REPORT_FRAMES, more;
	if (max > 64)
		max = 64;
	if (!node) {
		fprintf(w->f, "      <no call stack recorded>\n");
		return;
	}
	int n = mt_analysis_stack_frames(w->a, node, fr, max, &more);
	for (int i = 0; i < n; i++)
		write_frame(w, &fr[i]);
	if (more)
		fprintf(w->f, "      ...\n");
}

static const char *const top_title[MT_TOP_KINDS] = {
	[MT_TOP_PEAK]      = "BY LIVE HEAP AT THE PEAK",
	[MT_TOP_LEAKED]    = NULL,  /* depends on how the trace ended */
	[MT_TOP_CALLS]     = "BY ALLOCATION CALLS",
	[MT_TOP_TEMPORARY] = "BY TEMPORARY ALLOCATIONS",
};

/* "#1  512 KiB at peak (43.4%); 10 calls, ..." - the list's own figure first. */
static void write_stack_head(struct tw *w, enum mt_top_kind k, size_t rank, const struct mt_stack *s)
{
	const struct mt_analysis *a = w->a;
	const struct mt_stack_stats *st = &s->st;
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN], b3[MT_FMT_LEN], b4[MT_FMT_LEN], b5[MT_FMT_LEN];
	char b6[MT_FMT_LEN], line[512];
	const char *leak = a->end_kind == MT_ENDED_EXIT ? "leaked" : "live at end";
	const char *calls = st->calls == 1 ? "call" : "calls";
	switch (k) {
	case MT_TOP_PEAK:
		snprintf(line, sizeof(line), "#%zu  %s at peak (%s); %s %s, %s allocated, %s %s",
		         rank, mt_fmt_size(b1, st->peak_bytes), mt_fmt_percent(b2, st->peak_bytes, a->peak_bytes),
		         mt_fmt_count(b3, st->calls), calls, mt_fmt_size(b4, st->bytes),
		         mt_fmt_size(b5, st->leaked_bytes), leak);
		break;
	case MT_TOP_LEAKED:
		snprintf(line, sizeof(line), "#%zu  %s %s in %s block%s (%s); %s %s, %s at peak",
		         rank, mt_fmt_size(b1, st->leaked_bytes), leak, mt_fmt_count(b2, st->leaked_blocks),
		         st->leaked_blocks == 1 ? "" : "s",
		         mt_fmt_percent(b3, st->leaked_bytes, a->end_bytes), mt_fmt_count(b4, st->calls),
		         calls, mt_fmt_size(b5, st->peak_bytes));
		break;
	case MT_TOP_CALLS:
		snprintf(line, sizeof(line), "#%zu  %s %s (%s), %s allocated; %s temporary, %s at peak",
		         rank, mt_fmt_count(b1, st->calls), calls, mt_fmt_percent(b2, st->calls, a->alloc_calls),
		         mt_fmt_size(b3, st->bytes), mt_fmt_count(b4, st->temporary), mt_fmt_size(b5, st->peak_bytes));
		break;
	default:
		snprintf(line, sizeof(line), "#%zu  %s temporary (%s of its %s %s); %s allocated, %s at peak",
		         rank, mt_fmt_count(b1, st->temporary), mt_fmt_percent(b2, st->temporary, st->calls),
		         mt_fmt_count(b3, st->calls), calls, mt_fmt_size(b4, st->bytes),
		         mt_fmt_size(b6, st->peak_bytes));
		break;
	}
	put_line(w->f, line, MT_REPORT_WIDTH);
}

static void write_top(struct tw *w, enum mt_top_kind k)
{
	const struct mt_analysis *a = w->a;
	char title[160], b1[MT_FMT_LEN];
	size_t n = a->n_top[k];
	if (w->o->top_n && w->o->top_n < n)
		n = w->o->top_n;
	if (k == MT_TOP_LEAKED)
		snprintf(title, sizeof(title), "TOP STACKS BY %s (%s)",
		         a->end_kind == MT_ENDED_EXIT ? "BYTES LEAKED AT EXIT" :
		         a->end_kind == MT_ENDED_EXEC ? "BYTES LIVE AT EXEC" :
		         "BYTES LIVE WHEN THE TRACE WAS CUT", mt_fmt_size(b1, a->end_bytes));
	else if (k == MT_TOP_PEAK)
		snprintf(title, sizeof(title), "TOP STACKS %s (%s)", top_title[k],
		         mt_fmt_size(b1, a->peak_bytes));
	else
		snprintf(title, sizeof(title), "TOP STACKS %s", top_title[k]);
	section(w->f, title);
	if (!n)
		fprintf(w->f, "(none)\n");
	for (size_t i = 0; i < n; i++) {
		const struct mt_stack *s = &a->stacks[a->top[k][i]];
		write_stack_head(w, k, i + 1, s);
		write_frames(w, s->node);
	}
}

/* ---- size histogram ----------------------------------------------------- */

/*
 * Rows group the analysis' power-of-two buckets by four: <= 8 B, <= 32 B,
 * <= 128 B, ... like memray's log-scale histogram; each row counts the
 * sizes above the previous row's bound.
 */
struct hist_row { uint64_t upper, calls, bytes; };

static int hist_rows(const struct mt_analysis *a, struct hist_row *rows)
{
	int n = 0;
	for (unsigned k = 0; k < MT_HIST_BUCKETS; k++) {
		int r = k <= 3 ? 0 : (int)(k - 2) / 2;
		if (r >= n) {
			n = r + 1;
			rows[r] = (struct hist_row){ 0, 0, 0 };
		}
		rows[r].calls += a->hist_calls[k];
		rows[r].bytes += a->hist_bytes[k];
		rows[r].upper = mt_hist_upper(k);
	}
	return n;
}

/* "<= 8 B", "<= 2 KiB", "<= 16 EiB": a power of two in whole units. */
static void pow2_label(char buf[MT_FMT_LEN], uint64_t upper)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	int u = 0;
	if (upper == UINT64_MAX) {
		snprintf(buf, MT_FMT_LEN, "larger");
		return;
	}
	while (upper >= 1024 && u < 6) {
		upper /= 1024;
		u++;
	}
	snprintf(buf, MT_FMT_LEN, "<= %" PRIu64 " %s", upper, unit[u]);
}

static void write_histogram(struct tw *w)
{
	const struct mt_analysis *a = w->a;
	struct hist_row rows[HIST_ROWS + 4];
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN], b3[MT_FMT_LEN], b4[MT_FMT_LEN], bar[BAR_WIDTH + 1];
	int n = hist_rows(a, rows), lo = 0, hi = n - 1;
	uint64_t max = 0, total = 0;

	section(w->f, "SIZE HISTOGRAM (requested sizes of successful allocations)");
	while (lo < n && !rows[lo].calls)
		lo++;
	while (hi >= lo && !rows[hi].calls)
		hi--;
	if (lo > hi) {
		fprintf(w->f, "(no allocations)\n");
		return;
	}
	for (int i = lo; i <= hi; i++) {
		max = rows[i].calls > max ? rows[i].calls : max;
		total += rows[i].calls;
	}
	fprintf(w->f, "%-12s %15s %8s %16s\n", "size", "allocations", "%", "bytes allocated");
	for (int i = lo; i <= hi; i++) {
		int len = (int)((rows[i].calls * BAR_WIDTH + max - 1) / max);
		memset(bar, '#', (size_t)len);
		bar[len] = 0;
		pow2_label(b1, rows[i].upper);
		fprintf(w->f, "%-12s %15s %8s %16s  %s\n", b1, mt_fmt_count(b2, rows[i].calls),
		        mt_fmt_percent(b3, rows[i].calls, total), mt_fmt_size(b4, rows[i].bytes), bar);
	}
}

/* ---- recorder overhead -------------------------------------------------- */

static void write_overhead(struct tw *w)
{
	const struct mt_analysis *a = w->a;
	const struct mt_trace *tr = w->tr;
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN], b3[MT_FMT_LEN];
	uint64_t events = mt_trace_stat(tr, MT_ST_EVENTS, a->n_events + tr->n_nodes);
	uint64_t raw = mt_trace_stat(tr, MT_ST_BYTES_RAW, tr->raw_bytes);

	section(w->f, "RECORDER OVERHEAD");
	fprintf(w->f, "events recorded: %s (allocations, frees and stack nodes); %s dropped, %s lost\n",
	        mt_fmt_count(b1, events), mt_fmt_count(b2, mt_trace_stat(tr, MT_ST_DROPPED, 0)),
	        mt_fmt_count(b3, tr->lost_events));
	fprintf(w->f, "trace size: %s, %.2f bytes per event; %s before compression\n",
	        mt_fmt_size(b1, tr->file_size), events ? (double)tr->file_size / (double)events : 0.0,
	        mt_fmt_size(b2, raw));
	if (a->have_recorder_bytes && a->have_rss && a->recorder_peak_bytes <= a->peak_rss_bytes)
		fprintf(w->f, "recorder memory: %s at its peak (%s of peak RSS)\n",
		        mt_fmt_size(b1, a->recorder_peak_bytes),
		        mt_fmt_percent(b2, a->recorder_peak_bytes, a->peak_rss_bytes));
	else if (a->have_recorder_bytes)
		fprintf(w->f, "recorder memory: %s at its peak\n", mt_fmt_size(b1, a->recorder_peak_bytes));
	else
		fprintf(w->f, "recorder memory: n/a (not in the trace)\n");
	fprintf(w->f, "call stacks: %s recorded trie nodes, %s distinct stacks that allocated\n",
	        mt_fmt_count(b1, a->n_trie_nodes), mt_fmt_count(b2, a->n_stacks));
}

/* ---- markers: marks, phases by label, requests, diff -------------------- */

#define MARKS_ROWS   100   /* marks listed; beyond, the first and last half */
#define LABEL_ROWS   50    /* labels listed, by first occurrence */

static void write_mark_row(struct tw *w, const struct mt_marks *m, size_t rank, size_t i, size_t prev)
{
	const struct mt_mark_point *p = &m->pt[i], *q = prev == SIZE_MAX ? NULL : &m->pt[prev];
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN], b3[MT_FMT_LEN];
	fprintf(w->f, "%-5zu %-10s %-26.26s %14" PRIu64 " %+14" PRId64 " %12s %12s\n", rank,
	        mt_fmt_duration(b1, p->t_ns), p->label, p->heap_bytes,
	        (int64_t)(p->heap_bytes - (q ? q->heap_bytes : 0)),
	        p->have_rss ? mt_fmt_size(b2, p->rss) : "-",
	        p->have_rss && q && q->have_rss ? fmt_signed_size(b3, (double)p->rss - (double)q->rss) : "-");
}

static void write_marks(struct tw *w)
{
	const struct mt_marks *m = w->a->marks;
	if (!m || !m->n_marks)
		return;
	section(w->f, "MARKS (live heap when each mark was written; RSS from the nearest sample)");
	fprintf(w->f, "%-5s %-10s %-26s %14s %14s %12s %12s\n", "mark", "time", "label",
	        "live bytes", "change", "RSS", "RSS change");
	size_t rank = 0, prev = SIZE_MAX;
	for (size_t i = 0; i < m->n; i++) {
		if (m->pt[i].kind != MT_MK_MARK)
			continue;
		rank++;
		if (m->n_marks <= MARKS_ROWS || rank <= MARKS_ROWS / 2 || rank > m->n_marks - MARKS_ROWS / 2)
			write_mark_row(w, m, rank, i, prev);
		else if (rank == MARKS_ROWS / 2 + 1)
			fprintf(w->f, "...   (%zu marks not shown)\n", m->n_marks - MARKS_ROWS);
		prev = i;
	}
	fprintf(w->f, "marks: %zu; live heap at the end: %" PRIu64 " bytes\n", m->n_marks,
	        w->a->end_bytes);

	section(w->f, "PHASES BY LABEL (a phase runs from a mark to the next mark, or to the end)");
	fprintf(w->f, "%-28s %7s %16s %14s %12s %12s %12s\n", "label", "count", "growth/phase",
	        "total growth", "min", "max", "RSS/phase");
	for (size_t i = 0; i < m->n_labels && i < LABEL_ROWS; i++) {
		const struct mt_mark_label *l = &m->labels[i];
		char b1[MT_FMT_LEN];
		fprintf(w->f, "%-28.28s %7" PRIu64 " %+16.0f %+14" PRId64 " %+12" PRId64 " %+12" PRId64
		        " %12s\n", l->label, l->count, (double)l->growth_sum / (double)l->count,
		        l->growth_sum, l->growth_min, l->growth_max,
		        l->rss_n ? fmt_signed_size(b1, (double)l->rss_growth_sum / (double)l->rss_n) : "-");
	}
	if (m->n_labels > LABEL_ROWS)
		fprintf(w->f, "... (%zu labels not shown)\n", m->n_labels - LABEL_ROWS);
	fprintf(w->f, "growth: live-heap bytes from the mark to the next (the whole process's heap)\n");
}

static void write_request_buckets(struct tw *w, const struct mt_marks *m)
{
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN];
	fprintf(w->f, "%-12s %10s %18s %16s %11s\n", "payload", "requests", "avg heap change",
	        "avg RSS change", "avg ratio");
	for (unsigned k = 0; k < MT_HIST_BUCKETS; k++) {
		const struct mt_req_bucket *b = &m->bucket[k];
		if (!b->n)
			continue;
		pow2_label(b1, mt_hist_upper(k));
		fprintf(w->f, "%-12s %10" PRIu64 " %+18.1f %16s", b1, b->n, b->heap_sum / (double)b->n,
		        b->n_rss ? fmt_signed_size(b2, b->rss_sum / (double)b->n_rss) : "-");
		if (k > 0)
			fprintf(w->f, " %10.2fx\n", b->ratio_sum / (double)b->n);
		else
			fprintf(w->f, " %11s\n", "-");
	}
}

static void write_requests(struct tw *w)
{
	const struct mt_marks *m = w->a->marks;
	if (!m || (!m->n_req && !m->req_unmatched))
		return;
	section(w->f, "REQUESTS (live-heap change from each request's begin to its end)");
	fprintf(w->f, "requests: %zu completed", m->n_req);
	if (m->req_unmatched)
		fprintf(w->f, ", %" PRIu64 " unmatched (a begin without an end, or an end without a begin)",
		        m->req_unmatched);
	fputc('\n', w->f);
	if (!m->n_req)
		return;
	if (m->n_ratio)
		fprintf(w->f, "retention ratio: avg=%.2fx, min=%.2fx, max=%.2fx payload size "
		        "(%zu requests with a payload)\n", m->ratio_sum / (double)m->n_ratio,
		        m->ratio_min, m->ratio_max, m->n_ratio);
	else
		fprintf(w->f, "retention ratio: n/a (no request has a payload size)\n");
	fprintf(w->f, "live-heap change per request: avg=%+.1f, min=%+" PRId64 ", max=%+" PRId64 " bytes\n",
	        m->heap_sum / (double)m->n_req, m->heap_min, m->heap_max);
	put_wrapped(w->f, "note: the change is the whole process's live heap over each request's "
	            "span, so work of other threads in that time counts too (as in any "
	            "process-wide measure); RSS changes come from the nearest samples, coarser "
	            "than short requests.", 6);
	fprintf(w->f, "overlapping: %" PRIu64 " of %zu requests began while another was open\n",
	        m->n_overlapped, m->n_req);
	write_request_buckets(w, m);
}

static void write_diff_mark(struct tw *w, const char *which, const struct mt_mark_point *p)
{
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN];
	fprintf(w->f, "mark %s: '%s' at %s: live heap %" PRIu64 " bytes in %" PRIu64 " blocks, RSS %s\n",
	        which, p->label, mt_fmt_duration(b1, p->t_ns), p->heap_bytes, p->heap_blocks,
	        p->have_rss ? mt_fmt_size(b2, p->rss) : "n/a");
}

static void write_diff(struct tw *w)
{
	const struct mt_marks *m = w->a->marks;
	const struct mt_mark_point *pa = &m->pt[m->diff_a], *pb = &m->pt[m->diff_b];
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN], b3[MT_FMT_LEN];
	int64_t heap = (int64_t)(pb->heap_bytes - pa->heap_bytes);
	int64_t blocks = (int64_t)(pb->heap_blocks - pa->heap_blocks);

	section(w->f, "DIFF BETWEEN MARKS (live heap at each; like tracemalloc's compare_to)");
	write_diff_mark(w, "A", pa);
	write_diff_mark(w, "B", pb);
	fprintf(w->f, "live heap change: %+" PRId64 " bytes, %+" PRId64 " blocks (%s)\n", heap, blocks,
	        fmt_signed_size(b1, (double)heap));
	fprintf(w->f, "sum of stack changes: %+" PRId64 " bytes, %+" PRId64 " blocks over %zu stacks "
	        "(%zu grew by %+" PRId64 ", %zu shrank by %+" PRId64 "): %s\n", m->diff_bytes,
	        m->diff_blocks, m->n_diff_changed, m->n_diff_grew, m->diff_grew_bytes,
	        m->n_diff_changed - m->n_diff_grew, m->diff_shrank_bytes,
	        m->diff_bytes == heap && m->diff_blocks == blocks ? "equals the live heap change"
	                                                          : "DIFFERS from the live heap change");
	if (pa->have_rss && pb->have_rss) {
		int64_t rss = (int64_t)(pb->rss - pa->rss);
		fprintf(w->f, "RSS change: %+" PRId64 " bytes (%s; samples at %s and %s)\n", rss,
		        fmt_signed_size(b1, (double)rss), mt_fmt_duration(b2, pa->rss_t_ns),
		        mt_fmt_duration(b3, pb->rss_t_ns));
		fprintf(w->f, "RSS change - live heap change: %+" PRId64 " bytes (%s): allocator-held "
		        "and non-heap memory\n", rss - heap, fmt_signed_size(b1, (double)(rss - heap)));
	} else {
		fprintf(w->f, "RSS change: n/a (no RSS samples in the trace)\n");
	}
	section(w->f, "TOP STACKS BY GROWTH BETWEEN THE MARKS");
	if (!m->n_diff_top)
		fprintf(w->f, "(none grew)\n");
	for (size_t i = 0; i < m->n_diff_top; i++) {
		const struct mt_diff_stack *d = &m->diff_top[i];
		char line[256];
		snprintf(line, sizeof line, "#%zu  %+" PRId64 " bytes (%s), %+" PRId64 " blocks (%s of the "
		         "growth)", i + 1, d->bytes, fmt_signed_size(b1, (double)d->bytes), d->blocks,
		         mt_fmt_percent(b2, (uint64_t)d->bytes, (uint64_t)m->diff_grew_bytes));
		put_line(w->f, line, MT_REPORT_WIDTH);
		write_frames(w, d->node);
	}
}

static int text_write(const struct mt_analysis *a, FILE *out, const struct mt_report_opts *opts)
{
	struct mt_report_opts none = { 0 };
	struct tw w = { out, a, a->trace, opts ? opts : &none };
	write_header(&w);
	if (a->marks && a->marks->have_diff) {  /* report --diff: the diff alone */
		write_diff(&w);
		goto flush;
	}
	write_verdict(&w);
	write_timeline(&w);
	write_arenas(&w);
	write_marks(&w);
	write_requests(&w);
	write_summary(&w);
	write_functions(&w);
	for (int k = 0; k < MT_TOP_KINDS; k++)
		write_top(&w, (enum mt_top_kind)k);
	write_histogram(&w);
	write_overhead(&w);
flush:
	if (fflush(out) || ferror(out))
		return errno ? -errno : -EIO;
	return 0;
}

const struct mt_reporter mt_report_text = {
	.name = "text",
	.summary = "plain text for a terminal, 100 columns (default)",
	.write = text_write,
};
