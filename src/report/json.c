/*
 * JSON reporter: every figure of the text report, plus what a page needs
 * to draw charts (the whole timeline, every stack with its symbolized
 * frames).  docs/report.schema.json is the contract; a field added here
 * goes there too, and a change that breaks a consumer bumps "version".
 *
 * Stacks reference a shared, deduplicated frame table by index, so a
 * frame common to thousands of stacks is written once.  Symbolizing is
 * done in a first pass (the frame table must be complete before the
 * stacks that point into it are written, and a streamed document cannot
 * go back).
 *
 * Sizes are bounded whatever the trace: at most JSON_STACKS_MAX stacks,
 * JSON_TIMELINE_MAX timeline points and JSON_MARKS_MAX markers, with the
 * leftovers summed or counted so totals still add up.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "report/report.h"
#include "report/jsonw.h"
#include "analyze/arenas.h"

#define JSON_SCHEMA_VERSION 1
#define JSON_FRAMES        64      /* frames per stack, inlined ones included */
#define JSON_FRAMES_MAX    256     /* most frames per stack opts->frames may ask for */
#define JSON_STACKS_MAX    20000   /* stacks written; beyond, the best ranked by any figure */
#define JSON_TIMELINE_MAX  20000   /* timeline points; beyond, every k-th (and the last) */
#define JSON_MARKS_MAX     20000   /* markers and labels listed; beyond, the first and last half */

/* A frame of the table: the symbolizer's frame and where it sits in its module. */
struct jframe {
	struct mt_frame fr;          /* strings owned by the analysis' symbolizer */
	int have_offset;
	uint64_t offset;             /* ELF address of fr.ip in its module: ip - load bias */
};

/* Open-addressing map (ip, position in the ip's inline chain) -> frame table index. */
struct fslot { uint64_t ip; uint32_t pos, idx1; };   /* idx1 0: empty */

/* Segments of every module, sorted by start: ip -> module for frame offsets. */
struct seg { uint64_t start, end; const struct mt_module *m; };

struct jctx {
	struct mt_jw w;
	const struct mt_analysis *a;
	const struct mt_trace *tr;
	const struct mt_report_opts *o;
	int max_frames;

	unsigned char *keep;         /* per stack: written */
	size_t n_kept;
	uint32_t *sf_off;            /* per stack: first entry in sf[] (n_stacks + 1 entries) */
	unsigned char *sf_more;      /* per stack: frames were left out */
	uint32_t *sf; size_t n_sf, cap_sf;         /* frame table indices of every kept stack */
	uint32_t *df; size_t n_df, cap_df;         /* same for the diff's stacks */
	uint32_t *df_off; unsigned char *df_more;  /* per diff stack (n_diff_top + 1 entries) */

	struct jframe *frames; size_t n_frames, cap_frames;
	struct fslot *map; size_t map_cap;
	struct seg *segs; size_t n_segs;
};

/* ---- growable arrays ---------------------------------------------------- */

/* Makes room for one more element of `size` bytes in *arr; 0 or -ENOMEM. */
static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 1024;
	void *p = realloc(*arr, nc * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = nc;
	return 0;
}

static int push_u32(uint32_t **arr, size_t *n, size_t *cap, uint32_t v)
{
	if (grow((void **)arr, cap, *n, sizeof(**arr)))
		return -ENOMEM;
	(*arr)[(*n)++] = v;
	return 0;
}

/* ---- module offsets ----------------------------------------------------- */

static int seg_cmp(const void *x, const void *y)
{
	const struct seg *p = x, *q = y;
	return p->start < q->start ? -1 : p->start > q->start;
}

static int segs_build(struct jctx *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->tr->n_modules; i++)
		n += c->tr->modules[i].n_segs;
	if (!n)
		return 0;
	if (!(c->segs = malloc(n * sizeof(*c->segs))))
		return -ENOMEM;
	for (size_t i = 0; i < c->tr->n_modules; i++) {
		const struct mt_module *m = &c->tr->modules[i];
		for (size_t k = 0; k < m->n_segs; k++)
			c->segs[c->n_segs++] = (struct seg){ m->segs[k].start,
			                                     m->segs[k].start + m->segs[k].size, m };
	}
	qsort(c->segs, c->n_segs, sizeof(*c->segs), seg_cmp);
	return 0;
}

static const char *base_name(const char *p)
{
	const char *s = p ? strrchr(p, '/') : NULL;
	return s ? s + 1 : p;
}

/*
 * The module holding ip whose file is `module` (a basename, as the
 * symbolizer names it), or NULL.  Segments may overlap when a library
 * was unloaded and another loaded in its place: a few segments before
 * the ip are tried, newest load first is not needed because the name
 * must match too.
 */
static const struct mt_module *module_of(const struct jctx *c, uint64_t ip, const char *module)
{
	size_t lo = 0, hi = c->n_segs;
	if (!module)
		return NULL;
	while (lo < hi) {   /* first segment starting after ip */
		size_t mid = lo + (hi - lo) / 2;
		if (c->segs[mid].start <= ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo, tries = 0; i-- > 0 && tries < 16; tries++) {
		const struct seg *s = &c->segs[i];
		if (ip < s->end && s->m->path && strcmp(base_name(s->m->path), module) == 0)
			return s->m;
	}
	return NULL;
}

/* ---- frame table -------------------------------------------------------- */

static size_t fslot_hash(uint64_t ip, uint32_t pos, size_t mask)
{
	uint64_t h = (ip ^ ((uint64_t)pos << 58)) * 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 20) & mask;
}

static struct fslot *fslot_find(struct fslot *map, size_t cap, uint64_t ip, uint32_t pos)
{
	size_t i = fslot_hash(ip, pos, cap - 1);
	while (map[i].idx1 && (map[i].ip != ip || map[i].pos != pos))
		i = (i + 1) & (cap - 1);
	return &map[i];
}

static int map_grow(struct jctx *c)
{
	size_t cap = c->map_cap ? c->map_cap * 2 : 4096;
	struct fslot *m = calloc(cap, sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < c->map_cap; i++)
		if (c->map[i].idx1)
			*fslot_find(m, cap, c->map[i].ip, c->map[i].pos) = c->map[i];
	free(c->map);
	c->map = m;
	c->map_cap = cap;
	return 0;
}

/* Index of frame fr, pos-th of its ip's chain, in the table (added if new); -1: no memory. */
static int64_t frame_index(struct jctx *c, const struct mt_frame *fr, uint32_t pos)
{
	if ((c->n_frames + 1) * 2 > c->map_cap && map_grow(c))
		return -1;
	struct fslot *s = fslot_find(c->map, c->map_cap, fr->ip, pos);
	if (s->idx1)
		return s->idx1 - 1;
	if (grow((void **)&c->frames, &c->cap_frames, c->n_frames, sizeof(*c->frames)))
		return -1;
	struct jframe *j = &c->frames[c->n_frames];
	const struct mt_module *m = module_of(c, fr->ip, fr->module);
	*j = (struct jframe){ .fr = *fr, .have_offset = m != NULL,
	                      .offset = m ? fr->ip - m->load_bias : 0 };
	*s = (struct fslot){ fr->ip, pos, (uint32_t)++c->n_frames };
	return s->idx1 - 1;
}

/*
 * Symbolizes canonical stack `node` and appends its frame indices to
 * *arr; *more: frames were left out.  The position of a frame in its
 * ip's chain restarts after each real (not inlined) frame, so recursion
 * through one call site keeps one entry per frame.  0 or -ENOMEM.
 */
static int stack_frames(struct jctx *c, uint32_t node, uint32_t **arr, size_t *n, size_t *cap,
                        unsigned char *more)
{
	struct mt_frame fr[JSON_FRAMES_MAX];
	int m = 0, k = node ? mt_analysis_stack_frames(c->a, node, fr, c->max_frames, &m) : 0;
	uint32_t pos = 0;
	for (int i = 0; i < k; i++) {
		int64_t idx = frame_index(c, &fr[i], pos);
		if (idx < 0 || push_u32(arr, n, cap, (uint32_t)idx))
			return -ENOMEM;
		pos = fr[i].inlined && i + 1 < k && fr[i + 1].ip == fr[i].ip ? pos + 1 : 0;
	}
	*more = (unsigned char)(m != 0);
	return 0;
}

/* ---- which stacks are written ------------------------------------------- */

static const struct mt_stack *g_stacks;   /* qsort context: not thread-safe, like the analysis */
static int g_metric;

static uint64_t metric(const struct mt_stack *s, int m)
{
	switch (m) {
	case 0:  return s->st.peak_bytes;
	case 1:  return s->st.leaked_bytes;
	case 2:  return s->st.bytes;
	default: return s->st.calls;
	}
}

static int by_metric_desc(const void *x, const void *y)
{
	uint32_t i = *(const uint32_t *)x, j = *(const uint32_t *)y;
	uint64_t u = metric(&g_stacks[i], g_metric), v = metric(&g_stacks[j], g_metric);
	return u != v ? (u > v ? -1 : 1) : (i > j) - (i < j);
}

static const uint32_t *g_rank;

static int by_rank(const void *x, const void *y)
{
	uint32_t i = *(const uint32_t *)x, j = *(const uint32_t *)y;
	return g_rank[i] != g_rank[j] ? (g_rank[i] < g_rank[j] ? -1 : 1) : (i > j) - (i < j);
}

/* Marks the stacks the top lists and the verdict name: always written. */
static void keep_named(struct jctx *c)
{
	const struct mt_analysis *a = c->a;
	for (int k = 0; k < MT_TOP_KINDS; k++)
		for (size_t i = 0; i < a->n_top[k]; i++)
			c->keep[a->top[k][i]] = 1;
	if (a->verdict)
		for (size_t i = 0; i < a->verdict->n_owners; i++)
			if (a->verdict->owners[i] < a->n_stacks)
				c->keep[a->verdict->owners[i]] = 1;
}

/*
 * Too many stacks: ranks every stack by peak bytes, leaked bytes, bytes
 * allocated and calls, and keeps the best by its best rank, so each
 * figure's leaders get in fairly (the union of the top of each list).
 * A stack whose figure is 0 gets no rank from that figure.
 */
static int select_ranked(struct jctx *c)
{
	const struct mt_analysis *a = c->a;
	size_t n = a->n_stacks;
	uint32_t *order = malloc(n * sizeof(*order)), *rank = malloc(n * sizeof(*rank));
	if (!order || !rank) {
		free(order);
		free(rank);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		rank[i] = UINT32_MAX;
	g_stacks = a->stacks;
	for (g_metric = 0; g_metric < 4; g_metric++) {
		for (size_t i = 0; i < n; i++)
			order[i] = (uint32_t)i;
		qsort(order, n, sizeof(*order), by_metric_desc);
		for (size_t r = 0; r < n && metric(&a->stacks[order[r]], g_metric); r++)
			if (r < rank[order[r]])
				rank[order[r]] = (uint32_t)r;
	}
	for (size_t i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	g_rank = rank;
	qsort(order, n, sizeof(*order), by_rank);
	for (size_t i = 0; i < n && c->n_kept < JSON_STACKS_MAX; i++)
		if (!c->keep[order[i]]) {
			c->keep[order[i]] = 1;
			c->n_kept++;
		}
	free(order);
	free(rank);
	return 0;
}

static int select_stacks(struct jctx *c)
{
	size_t n = c->a->n_stacks;
	if (!(c->keep = calloc(n ? n : 1, 1)))
		return -ENOMEM;
	if (n <= JSON_STACKS_MAX) {
		memset(c->keep, 1, n);
		c->n_kept = n;
		return 0;
	}
	keep_named(c);
	for (size_t i = 0; i < n; i++)
		c->n_kept += c->keep[i];
	return select_ranked(c);
}

/* Symbolizes every kept stack and the diff's stacks into the frame table. */
static int symbolize_all(struct jctx *c)
{
	const struct mt_analysis *a = c->a;
	const struct mt_marks *mk = a->marks;
	size_t nd = mk && mk->have_diff ? mk->n_diff_top : 0;
	c->sf_off = calloc(a->n_stacks + 1, sizeof(*c->sf_off));
	c->sf_more = calloc(a->n_stacks + 1, 1);
	c->df_off = calloc(nd + 1, sizeof(*c->df_off));
	c->df_more = calloc(nd + 1, 1);
	if (!c->sf_off || !c->sf_more || !c->df_off || !c->df_more || segs_build(c))
		return -ENOMEM;
	for (size_t i = 0; i < a->n_stacks; i++) {
		c->sf_off[i] = (uint32_t)c->n_sf;
		if (c->keep[i] && stack_frames(c, a->stacks[i].node, &c->sf, &c->n_sf, &c->cap_sf,
		                               &c->sf_more[i]))
			return -ENOMEM;
	}
	c->sf_off[a->n_stacks] = (uint32_t)c->n_sf;
	for (size_t i = 0; i < nd; i++) {
		c->df_off[i] = (uint32_t)c->n_df;
		if (stack_frames(c, mk->diff_top[i].node, &c->df, &c->n_df, &c->cap_df, &c->df_more[i]))
			return -ENOMEM;
	}
	c->df_off[nd] = (uint32_t)c->n_df;
	return 0;
}

static void ctx_release(struct jctx *c)
{
	free(c->keep);
	free(c->sf_off);
	free(c->sf_more);
	free(c->sf);
	free(c->df);
	free(c->df_off);
	free(c->df_more);
	free(c->frames);
	free(c->map);
	free(c->segs);
}

/* ---- trace -------------------------------------------------------------- */

static const char *end_name(enum mt_end_kind k)
{
	return k == MT_ENDED_EXIT ? "exit" : k == MT_ENDED_EXEC ? "exec" : "cut";
}

/*
 * The allocator that served malloc: one preloaded or linked in place of
 * glibc's, by its library; else glibc when mallinfo2 was sampled (the
 * recorder samples it only when the next malloc is glibc's); else unknown.
 */
static const char *allocator_name(const struct mt_analysis *a)
{
	static const char *const libs[][2] = {
		{ "libjemalloc", "jemalloc" }, { "libmimalloc", "mimalloc" },
		{ "libtcmalloc", "tcmalloc" }, { "libhoard", "hoard" }, { "libsnmalloc", "snmalloc" },
	};
	const struct mt_trace *tr = a->trace;
	for (size_t i = 0; i < tr->n_modules; i++) {
		const char *b = base_name(tr->modules[i].path);
		for (size_t k = 0; b && k < sizeof(libs) / sizeof(libs[0]); k++)
			if (strncmp(b, libs[k][0], strlen(libs[k][0])) == 0)
				return libs[k][1];
	}
	for (size_t i = 0; i < a->n_timeline; i++)
		if (a->timeline[i].have_mi)
			return "glibc";
	return NULL;
}

static void write_start_time(struct jctx *c)
{
	char when[40];
	struct tm tm;
	time_t t = (time_t)(c->tr->start_realtime_ns / 1000000000u);
	if (!c->tr->start_realtime_ns || !gmtime_r(&t, &tm) ||
	    !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm)) {
		mt_jw_null(&c->w, "start_realtime_ns");
		mt_jw_null(&c->w, "start_time");
		return;
	}
	mt_jw_u64(&c->w, "start_realtime_ns", c->tr->start_realtime_ns);
	mt_jw_str(&c->w, "start_time", when);
}

static size_t timeline_stride(const struct mt_analysis *a)
{
	return a->n_timeline <= JSON_TIMELINE_MAX ? 1
	       : (a->n_timeline + JSON_TIMELINE_MAX - 1) / JSON_TIMELINE_MAX;
}

static void write_trace(struct jctx *c)
{
	const struct mt_trace *tr = c->tr;
	const struct mt_analysis *a = c->a;
	const char *path = c->o->trace_path ? c->o->trace_path : tr->path;
	struct mt_jw *w = &c->w;

	mt_jw_obj(w, "trace", 0);
	mt_jw_str(w, "path", path);
	mt_jw_arr(w, "command", 1);
	for (int i = 0; i < tr->argc; i++)
		mt_jw_str(w, NULL, tr->argv[i]);
	mt_jw_end(w);
	mt_jw_str(w, "exe", tr->exe);
	if (tr->pid) {
		mt_jw_u64(w, "pid", tr->pid);
		mt_jw_u64(w, "ppid", tr->ppid);
	} else {
		mt_jw_null(w, "pid");
		mt_jw_null(w, "ppid");
	}
	write_start_time(c);
	mt_jw_u64(w, "duration_ns", a->duration_ns);
	mt_jw_str(w, "end", end_name(a->end_kind));
	mt_jw_bool(w, "truncated", tr->cut);
	mt_jw_u64(w, "events", a->n_events);
	mt_jw_u64(w, "lost_events", tr->lost_events);
	mt_jw_u64(w, "dropped_records", mt_trace_stat(tr, MT_ST_DROPPED, 0));
	mt_jw_u64(w, "threads", a->n_threads);
	mt_jw_str(w, "allocator", allocator_name(a));
	mt_jw_u64(w, "file_bytes", tr->file_size);
	mt_jw_u64(w, "samples", a->n_timeline);
	mt_jw_u64(w, "timeline_stride", timeline_stride(a));
	mt_jw_end(w);
}

/* ---- summary ------------------------------------------------------------ */

/* "malloc" ... "pvalloc" for tags 1..9, "unknown" for 0. */
static const char *func_key(unsigned f)
{
	return f ? mt_func_name(f) : "unknown";
}

/* A map from function name to one figure; tag 0 only when it counted anything. */
static void write_by_function(struct jctx *c, const char *key, const uint64_t *v)
{
	mt_jw_obj(&c->w, key, 1);
	for (unsigned f = 0; f < MT_N_ALLOC_FUNCS; f++)
		if (f || c->a->calls[0])
			mt_jw_u64(&c->w, func_key(f), v[f]);
	mt_jw_end(&c->w);
}

static void write_summary(struct jctx *c)
{
	const struct mt_analysis *a = c->a;
	struct mt_jw *w = &c->w;
	mt_jw_obj(w, "summary", 0);
	mt_jw_u64(w, "alloc_calls", a->alloc_calls);
	if (a->duration_ns >= 1000000)
		mt_jw_dbl(w, "calls_per_second", (double)a->alloc_calls * 1e9 / (double)a->duration_ns);
	else
		mt_jw_null(w, "calls_per_second");
	write_by_function(c, "calls_by_function", a->calls);
	write_by_function(c, "bytes_by_function", a->func_bytes);
	write_by_function(c, "failed_by_function", a->failed);
	mt_jw_u64(w, "failed_calls", a->failed_calls);
	mt_jw_u64(w, "free_calls", a->free_calls);
	mt_jw_u64(w, "bytes_allocated", a->bytes_allocated);
	mt_jw_u64(w, "temporary", a->temporary);
	mt_jw_u64(w, "peak_heap_bytes", a->peak_bytes);
	mt_jw_u64(w, "peak_heap_blocks", a->peak_blocks);
	mt_jw_u64(w, "peak_t_ns", a->peak_t_ns);
	mt_jw_u64(w, "leaked_bytes", a->end_bytes);
	mt_jw_u64(w, "leaked_blocks", a->end_blocks);
	if (a->have_rss)
		mt_jw_u64(w, "peak_rss_bytes", a->peak_rss_bytes);
	else
		mt_jw_null(w, "peak_rss_bytes");
	if (a->have_recorder_bytes)
		mt_jw_u64(w, "recorder_peak_bytes", a->recorder_peak_bytes);
	else
		mt_jw_null(w, "recorder_peak_bytes");
	mt_jw_obj(w, "anomalies", 1);
	mt_jw_u64(w, "unknown_frees", a->unknown_frees);
	mt_jw_u64(w, "double_allocs", a->double_allocs);
	mt_jw_u64(w, "unknown_func_events", a->unknown_func);
	mt_jw_end(w);
	mt_jw_end(w);
}

/* ---- verdict ------------------------------------------------------------ */

static const char *class_name(enum mt_verdict_class k)
{
	switch (k) {
	case MT_V_NO_GROWTH:        return "no_significant_growth";
	case MT_V_LIVE_HEAP_GROWTH: return "live_heap_growth";
	case MT_V_ALLOC_RETENTION:  return "allocator_retention";
	case MT_V_PLATEAU:          return "pooling_plateau";
	case MT_V_NON_HEAP_GROWTH:  return "non_heap_growth";
	case MT_V_TOO_SHORT:        break;
	}
	return "too_short";
}

static const char *unit_name(enum mt_ev_unit u)
{
	switch (u) {
	case MT_U_BYTES:       return "bytes";
	case MT_U_BYTES_PER_S: return "bytes_per_second";
	case MT_U_RATIO:       return "ratio";
	case MT_U_PERCENT:     return "fraction";
	case MT_U_P:           return "p_value";
	default:               return "count";
	}
}

static void write_window(struct jctx *c, const struct mt_verdict *v)
{
	const struct mt_analysis *a = c->a;
	struct mt_jw *w = &c->w;
	if (v->cls == MT_V_TOO_SHORT || v->win_end == 0 || v->win_end > a->n_timeline ||
	    v->win_first >= v->win_end) {
		mt_jw_null(w, "window");
		return;
	}
	mt_jw_obj(w, "window", 1);
	mt_jw_u64(w, "first", v->win_first);
	mt_jw_u64(w, "end", v->win_end);
	mt_jw_u64(w, "first_t_ns", a->timeline[v->win_first].t_ns);
	mt_jw_u64(w, "last_t_ns", a->timeline[v->win_end - 1].t_ns);
	mt_jw_bool(w, "before_exit", v->win_end < a->n_timeline);
	mt_jw_end(w);
}

static void write_evidence(struct jctx *c, const struct mt_verdict *v)
{
	struct mt_jw *w = &c->w;
	mt_jw_arr(w, "evidence", 0);
	for (size_t i = 0; i < v->n_ev; i++) {
		const struct mt_evidence *e = &v->ev[i];
		mt_jw_obj(w, NULL, 1);
		mt_jw_str(w, "what", e->what);
		mt_jw_dbl(w, "value", e->value);
		mt_jw_str(w, "op", e->op);
		mt_jw_dbl(w, "threshold", e->threshold);
		mt_jw_str(w, "unit", unit_name(e->unit));
		mt_jw_bool(w, "met", e->met);
		mt_jw_end(w);
	}
	mt_jw_end(w);
}

static void write_measured(struct jctx *c, const struct mt_verdict *v)
{
	struct mt_jw *w = &c->w;
	mt_jw_obj(w, "measured", 0);
	mt_jw_dbl(w, "heap_mean_bytes", v->heap_mean);
	mt_jw_dbl(w, "heap_slope_bytes_per_second", v->heap_slope);
	mt_jw_dbl(w, "heap_rise_bytes", v->heap_rise);
	mt_jw_dbl(w, "rss_mean_bytes", v->rss_mean);
	mt_jw_dbl(w, "rss_slope_bytes_per_second", v->rss_slope);
	mt_jw_dbl(w, "rss_rise_bytes", v->rss_rise);
	mt_jw_dbl(w, "free_end_bytes", v->free_end);
	mt_jw_dbl(w, "heap_end_bytes", v->heap_end);
	mt_jw_dbl(w, "footprint_end_bytes", v->footprint_end);
	mt_jw_dbl(w, "utilization_end", v->util_end);
	mt_jw_dbl(w, "non_heap_rise_bytes", v->non_heap_rise);
	mt_jw_dbl(w, "plateau_mean_bytes", v->plateau_mean);
	mt_jw_dbl(w, "plateau_max_bytes", v->plateau_max);
	mt_jw_dbl(w, "warmup_rise_bytes", v->warmup_rise);
	mt_jw_dbl(w, "plateau_fraction", v->plateau_fraction);
	if (v->have_trim) {
		mt_jw_obj(w, "trim_probe", 1);
		mt_jw_u64(w, "rss_before_bytes", v->trim_before);
		mt_jw_u64(w, "rss_after_bytes", v->trim_after);
		mt_jw_end(w);
	} else {
		mt_jw_null(w, "trim_probe");
	}
	mt_jw_u64(w, "threads_first", v->threads_first);
	mt_jw_u64(w, "threads_last", v->threads_last);
	mt_jw_end(w);
}

static void write_verdict(struct jctx *c)
{
	const struct mt_verdict *v = c->a->verdict;
	struct mt_jw *w = &c->w;
	if (!v) {
		mt_jw_null(w, "verdict");
		return;
	}
	mt_jw_obj(w, "verdict", 0);
	mt_jw_str(w, "class", class_name(v->cls));
	mt_jw_str(w, "title", mt_verdict_name(v->cls));
	mt_jw_str(w, "confidence", mt_confidence_name(v->confidence));
	mt_jw_str(w, "summary", v->summary);
	mt_jw_bool(w, "allocator_stats", v->allocator_stats);
	mt_jw_u64(w, "mallinfo_samples", v->mi_samples);
	write_window(c, v);
	write_evidence(c, v);
	mt_jw_arr(w, "remedies", 0);
	for (size_t i = 0; i < v->n_remedy; i++)
		mt_jw_str(w, NULL, v->remedy[i]);
	mt_jw_end(w);
	mt_jw_arr(w, "owners", 1);
	for (size_t i = 0; i < v->n_owners; i++)
		mt_jw_u64(w, NULL, v->owners[i]);
	mt_jw_end(w);
	write_measured(c, v);
	mt_jw_arr(w, "alternative_allocators", 1);
	for (size_t i = 0; i < v->n_alt && i < 3; i++)
		mt_jw_str(w, NULL, v->alt_alloc[i]);
	mt_jw_end(w);
	mt_jw_end(w);
}

/* ---- timeline ----------------------------------------------------------- */

static void write_mallinfo(struct mt_jw *w, const struct mt_timeline_point *p)
{
	if (!p->have_mi) {
		mt_jw_null(w, "mallinfo");
		return;
	}
	mt_jw_obj(w, "mallinfo", 1);
	mt_jw_u64(w, "arena", p->mi_arena);
	mt_jw_u64(w, "ordblks", p->mi_ordblks);
	mt_jw_u64(w, "hblks", p->mi_hblks);
	mt_jw_u64(w, "hblkhd", p->mi_hblkhd);
	mt_jw_u64(w, "uordblks", p->mi_uordblks);
	mt_jw_u64(w, "fordblks", p->mi_fordblks);
	mt_jw_u64(w, "keepcost", p->mi_keepcost);
	mt_jw_u64(w, "age_ns", p->mi_age_ns);
	mt_jw_u64(w, "heap_bytes", p->mi_heap);
	mt_jw_end(w);
}

/* A figure that exists only when `have` is set. */
static void u64_or_null(struct mt_jw *w, const char *key, int have, uint64_t v)
{
	if (have)
		mt_jw_u64(w, key, v);
	else
		mt_jw_null(w, key);
}

static void write_point(struct mt_jw *w, const struct mt_timeline_point *p)
{
	mt_jw_obj(w, NULL, 1);
	mt_jw_u64(w, "t_ns", p->t_ns);
	mt_jw_u64(w, "rss", p->rss);
	mt_jw_u64(w, "rss_anon", p->rss_anon);
	mt_jw_u64(w, "rss_file", p->rss_file);
	mt_jw_u64(w, "rss_shmem", p->rss_shmem);
	mt_jw_u64(w, "threads", p->threads);
	mt_jw_u64(w, "recorder", p->recorder);
	u64_or_null(w, "heap_bytes", p->have_heap, p->heap_bytes);
	u64_or_null(w, "heap_blocks", p->have_heap, p->heap_blocks);
	u64_or_null(w, "alloc_calls", p->have_heap, p->alloc_calls);
	u64_or_null(w, "alloc_bytes", p->have_heap, p->alloc_bytes);
	u64_or_null(w, "alloc_free", p->have_mi, p->alloc_free);
	u64_or_null(w, "footprint", p->have_mi && p->have_heap, p->footprint);
	if (p->have_heap)
		mt_jw_i64(w, "non_heap", p->non_heap);
	else
		mt_jw_null(w, "non_heap");
	write_mallinfo(w, p);
	mt_jw_end(w);
}

static void write_timeline(struct jctx *c)
{
	const struct mt_analysis *a = c->a;
	size_t stride = timeline_stride(a);
	mt_jw_arr(&c->w, "timeline", 0);
	for (size_t i = 0; i < a->n_timeline; i++)
		if (i % stride == 0 || i + 1 == a->n_timeline)
			write_point(&c->w, &a->timeline[i]);
	mt_jw_end(&c->w);
}

/* ---- marks, requests, diff ---------------------------------------------- */

static const char *marker_kind(uint32_t k)
{
	return k == MT_MK_MARK ? "mark" : k == MT_MK_BEGIN ? "begin" : "end";
}

static void write_mark_point(struct mt_jw *w, const struct mt_mark_point *p)
{
	mt_jw_obj(w, NULL, 1);
	mt_jw_u64(w, "t_ns", p->t_ns);
	mt_jw_str(w, "kind", marker_kind(p->kind));
	mt_jw_str(w, "label", p->label ? p->label : "");
	mt_jw_u64(w, "thread", p->thread_idx);
	if (p->kind != MT_MK_MARK)
		mt_jw_u64(w, "id", p->id);
	if (p->kind == MT_MK_BEGIN)
		mt_jw_u64(w, "payload_bytes", p->payload_bytes);
	mt_jw_u64(w, "heap_bytes", p->heap_bytes);
	mt_jw_u64(w, "heap_blocks", p->heap_blocks);
	u64_or_null(w, "rss", p->have_rss, p->rss);
	u64_or_null(w, "rss_t_ns", p->have_rss, p->rss_t_ns);
	mt_jw_end(w);
}

/* Whether entry i of n is listed: all when few, else the first and last half. */
static int listed(size_t i, size_t n)
{
	return n <= JSON_MARKS_MAX || i < JSON_MARKS_MAX / 2 || i >= n - JSON_MARKS_MAX / 2;
}

static void write_labels(struct jctx *c, const struct mt_marks *m)
{
	struct mt_jw *w = &c->w;
	mt_jw_arr(w, "labels", 0);
	for (size_t i = 0; i < m->n_labels; i++) {
		const struct mt_mark_label *l = &m->labels[i];
		if (!listed(i, m->n_labels))
			continue;
		mt_jw_obj(w, NULL, 1);
		mt_jw_str(w, "label", l->label ? l->label : "");
		mt_jw_u64(w, "count", l->count);
		mt_jw_dbl(w, "growth_mean_bytes", l->count ? (double)l->growth_sum / (double)l->count : 0);
		mt_jw_i64(w, "growth_sum_bytes", l->growth_sum);
		mt_jw_i64(w, "growth_min_bytes", l->growth_min);
		mt_jw_i64(w, "growth_max_bytes", l->growth_max);
		mt_jw_u64(w, "rss_phases", l->rss_n);
		if (l->rss_n)
			mt_jw_dbl(w, "rss_growth_mean_bytes", (double)l->rss_growth_sum / (double)l->rss_n);
		else
			mt_jw_null(w, "rss_growth_mean_bytes");
		mt_jw_end(w);
	}
	mt_jw_end(w);
	mt_jw_u64(w, "labels_omitted", m->n_labels > JSON_MARKS_MAX ? m->n_labels - JSON_MARKS_MAX : 0);
}

static void write_req_buckets(struct mt_jw *w, const struct mt_marks *m)
{
	mt_jw_arr(w, "by_payload", 0);
	for (unsigned k = 0; k < MT_HIST_BUCKETS; k++) {
		const struct mt_req_bucket *b = &m->bucket[k];
		if (!b->n)
			continue;
		mt_jw_obj(w, NULL, 1);
		if (k < 64)
			mt_jw_u64(w, "upper_bytes", mt_hist_upper(k));
		else
			mt_jw_null(w, "upper_bytes");
		mt_jw_u64(w, "requests", b->n);
		mt_jw_dbl(w, "heap_change_mean_bytes", b->heap_sum / (double)b->n);
		if (b->n_rss)
			mt_jw_dbl(w, "rss_change_mean_bytes", b->rss_sum / (double)b->n_rss);
		else
			mt_jw_null(w, "rss_change_mean_bytes");
		if (k > 0)
			mt_jw_dbl(w, "ratio_mean", b->ratio_sum / (double)b->n);
		else
			mt_jw_null(w, "ratio_mean");
		mt_jw_end(w);
	}
	mt_jw_end(w);
}

static void write_requests(struct jctx *c, const struct mt_marks *m)
{
	struct mt_jw *w = &c->w;
	if (!m->n_req && !m->req_unmatched) {
		mt_jw_null(w, "requests");
		return;
	}
	mt_jw_obj(w, "requests", 0);
	mt_jw_u64(w, "completed", m->n_req);
	mt_jw_u64(w, "unmatched", m->req_unmatched);
	mt_jw_u64(w, "overlapped", m->n_overlapped);
	mt_jw_u64(w, "with_payload", m->n_ratio);
	if (m->n_ratio) {
		mt_jw_obj(w, "ratio", 1);
		mt_jw_dbl(w, "mean", m->ratio_sum / (double)m->n_ratio);
		mt_jw_dbl(w, "min", m->ratio_min);
		mt_jw_dbl(w, "max", m->ratio_max);
		mt_jw_end(w);
	} else {
		mt_jw_null(w, "ratio");
	}
	if (m->n_req) {
		mt_jw_obj(w, "heap_change_bytes", 1);
		mt_jw_dbl(w, "mean", m->heap_sum / (double)m->n_req);
		mt_jw_i64(w, "min", m->heap_min);
		mt_jw_i64(w, "max", m->heap_max);
		mt_jw_end(w);
	} else {
		mt_jw_null(w, "heap_change_bytes");
	}
	write_req_buckets(w, m);
	mt_jw_end(w);
}

static void write_diff_mark(struct mt_jw *w, const char *key, const struct mt_mark_point *p)
{
	mt_jw_obj(w, key, 1);
	mt_jw_str(w, "label", p->label ? p->label : "");
	mt_jw_u64(w, "t_ns", p->t_ns);
	mt_jw_u64(w, "heap_bytes", p->heap_bytes);
	mt_jw_u64(w, "heap_blocks", p->heap_blocks);
	u64_or_null(w, "rss", p->have_rss, p->rss);
	u64_or_null(w, "rss_t_ns", p->have_rss, p->rss_t_ns);
	mt_jw_end(w);
}

static void write_frame_list(struct mt_jw *w, const uint32_t *idx, size_t n)
{
	mt_jw_arr(w, "frames", 1);
	for (size_t i = 0; i < n; i++)
		mt_jw_u64(w, NULL, idx[i]);
	mt_jw_end(w);
}

static void write_diff_top(struct jctx *c, const struct mt_marks *m)
{
	struct mt_jw *w = &c->w;
	mt_jw_arr(w, "top", 0);
	for (size_t i = 0; i < m->n_diff_top; i++) {
		const struct mt_diff_stack *d = &m->diff_top[i];
		mt_jw_obj(w, NULL, 1);
		mt_jw_i64(w, "bytes", d->bytes);
		mt_jw_i64(w, "blocks", d->blocks);
		if (m->diff_grew_bytes > 0)
			mt_jw_dbl(w, "share", (double)d->bytes / (double)m->diff_grew_bytes);
		else
			mt_jw_null(w, "share");
		write_frame_list(w, c->df + c->df_off[i], c->df_off[i + 1] - c->df_off[i]);
		mt_jw_bool(w, "truncated", c->df_more[i]);
		mt_jw_end(w);
	}
	mt_jw_end(w);
}

static void write_diff(struct jctx *c, const struct mt_marks *m)
{
	struct mt_jw *w = &c->w;
	if (!m->have_diff || m->diff_a >= m->n || m->diff_b >= m->n) {
		mt_jw_null(w, "diff");
		return;
	}
	const struct mt_mark_point *pa = &m->pt[m->diff_a], *pb = &m->pt[m->diff_b];
	int64_t heap = (int64_t)(pb->heap_bytes - pa->heap_bytes);
	int64_t blocks = (int64_t)(pb->heap_blocks - pa->heap_blocks);
	mt_jw_obj(w, "diff", 0);
	write_diff_mark(w, "a", pa);
	write_diff_mark(w, "b", pb);
	mt_jw_i64(w, "heap_change_bytes", heap);
	mt_jw_i64(w, "heap_change_blocks", blocks);
	mt_jw_i64(w, "stacks_change_bytes", m->diff_bytes);
	mt_jw_i64(w, "stacks_change_blocks", m->diff_blocks);
	mt_jw_bool(w, "sums_match", m->diff_bytes == heap && m->diff_blocks == blocks);
	mt_jw_u64(w, "changed_stacks", m->n_diff_changed);
	mt_jw_u64(w, "grew_stacks", m->n_diff_grew);
	mt_jw_i64(w, "grew_bytes", m->diff_grew_bytes);
	mt_jw_i64(w, "shrank_bytes", m->diff_shrank_bytes);
	if (pa->have_rss && pb->have_rss) {
		int64_t rss = (int64_t)(pb->rss - pa->rss);
		mt_jw_i64(w, "rss_change_bytes", rss);
		mt_jw_i64(w, "rss_minus_heap_change_bytes", rss - heap);
	} else {
		mt_jw_null(w, "rss_change_bytes");
		mt_jw_null(w, "rss_minus_heap_change_bytes");
	}
	write_diff_top(c, m);
	mt_jw_end(w);
}

static void write_marks(struct jctx *c)
{
	const struct mt_marks *m = c->a->marks;
	struct mt_jw *w = &c->w;
	if (!m) {
		mt_jw_null(w, "marks");
		return;
	}
	mt_jw_obj(w, "marks", 0);
	mt_jw_u64(w, "markers", m->n);
	mt_jw_u64(w, "marks", m->n_marks);
	mt_jw_arr(w, "points", 0);
	for (size_t i = 0; i < m->n; i++)
		if (listed(i, m->n))
			write_mark_point(w, &m->pt[i]);
	mt_jw_end(w);
	mt_jw_u64(w, "points_omitted", m->n > JSON_MARKS_MAX ? m->n - JSON_MARKS_MAX : 0);
	write_labels(c, m);
	write_requests(c, m);
	write_diff(c, m);
	mt_jw_end(w);
}

/* ---- histogram and arenas ----------------------------------------------- */

static void write_histogram(struct jctx *c)
{
	const struct mt_analysis *a = c->a;
	struct mt_jw *w = &c->w;
	mt_jw_arr(w, "histogram", 0);
	for (unsigned k = 0; k < MT_HIST_BUCKETS; k++) {
		if (!a->hist_calls[k])
			continue;
		mt_jw_obj(w, NULL, 1);
		mt_jw_u64(w, "lower_bytes", k <= 1 ? k * 2 : mt_hist_upper(k - 1) + 1);
		if (k < 64)
			mt_jw_u64(w, "upper_bytes", mt_hist_upper(k));
		else
			mt_jw_null(w, "upper_bytes");
		mt_jw_u64(w, "calls", a->hist_calls[k]);
		mt_jw_u64(w, "bytes", a->hist_bytes[k]);
		mt_jw_end(w);
	}
	mt_jw_end(w);
}

static void write_free_chunks(struct mt_jw *w, const struct mt_arenas *m)
{
	mt_jw_arr(w, "free_chunk_sizes", 0);
	for (int i = 0; i < MT_ARENA_BUCKETS; i++) {
		if (!m->bucket_count[i])
			continue;
		mt_jw_obj(w, NULL, 1);
		if (i < MT_ARENA_BUCKETS - 1)
			mt_jw_u64(w, "upper_bytes", (uint64_t)32 << (2 * i));
		else
			mt_jw_null(w, "upper_bytes");
		mt_jw_u64(w, "chunks", m->bucket_count[i]);
		mt_jw_u64(w, "bytes", m->bucket_bytes[i]);
		mt_jw_end(w);
	}
	mt_jw_end(w);
}

static int by_free_desc(const void *x, const void *y)
{
	const struct mt_arena *p = x, *q = y;
	if (p->free_bytes != q->free_bytes)
		return p->free_bytes > q->free_bytes ? -1 : 1;
	return (p->nr > q->nr) - (p->nr < q->nr);
}

static void write_arena_rows(struct mt_jw *w, const struct mt_arenas *m)
{
	struct mt_arena *sorted = malloc((m->n_arenas ? m->n_arenas : 1) * sizeof(*sorted));
	mt_jw_arr(w, "arenas", 0);
	if (sorted) {   /* without memory the list stays empty: the totals still stand */
		memcpy(sorted, m->arena, m->n_arenas * sizeof(*sorted));
		qsort(sorted, m->n_arenas, sizeof(*sorted), by_free_desc);
		for (size_t i = 0; i < m->n_arenas; i++) {
			const struct mt_arena *r = &sorted[i];
			mt_jw_obj(w, NULL, 1);
			mt_jw_u64(w, "nr", r->nr);
			mt_jw_u64(w, "system_bytes", r->system_bytes);
			mt_jw_u64(w, "system_max_bytes", r->system_max_bytes);
			mt_jw_u64(w, "free_bytes", r->free_bytes);
			mt_jw_u64(w, "free_chunks", r->free_count);
			mt_jw_end(w);
		}
	}
	mt_jw_end(w);
	free(sorted);
}

/* The malloc_info snapshot nearest before t_ns, as the text report's per-arena table. */
static void write_malloc_info(struct jctx *c, uint64_t t_ns)
{
	const struct mt_malloc_info *mi = mt_arenas_pick(c->tr, t_ns);
	struct mt_jw *w = &c->w;
	struct mt_arenas m;
	if (!mi || !mi->xml || mt_arenas_parse(mi->xml, &m)) {
		mt_jw_null(w, "malloc_info");
		return;
	}
	mt_jw_obj(w, "malloc_info", 0);
	mt_jw_u64(w, "t_ns", mi->t_ns);
	mt_jw_u64(w, "arena_count", m.n_arenas);
	mt_jw_u64(w, "system_bytes", m.system_bytes);
	mt_jw_u64(w, "free_bytes", m.free_bytes);
	mt_jw_u64(w, "free_chunks", m.free_count);
	mt_jw_u64(w, "mmap_chunks", m.mmap_count);
	mt_jw_u64(w, "mmap_bytes", m.mmap_bytes);
	write_arena_rows(w, &m);
	write_free_chunks(w, &m);
	mt_jw_end(w);
	mt_arenas_release(&m);
}

/* The point the text report's GLIBC ARENAS section shows, or NULL. */
static const struct mt_timeline_point *arenas_point(const struct mt_analysis *a)
{
	size_t end = a->verdict && a->verdict->win_end ? a->verdict->win_end : a->n_timeline;
	if (end > a->n_timeline)
		end = a->n_timeline;
	for (size_t i = end; i-- > 0;)
		if (a->timeline[i].have_mi && !a->timeline[i].mi_age_ns)
			return &a->timeline[i];
	return NULL;
}

static void write_arenas(struct jctx *c)
{
	const struct mt_timeline_point *p = arenas_point(c->a);
	struct mt_jw *w = &c->w;
	if (!p) {
		mt_jw_null(w, "arenas");
		return;
	}
	uint64_t fp = p->mi_arena + p->mi_hblkhd;
	double util = fp ? (double)p->mi_heap / (double)fp : 0;
	mt_jw_obj(w, "arenas", 0);
	mt_jw_u64(w, "t_ns", p->t_ns - p->mi_age_ns);
	mt_jw_u64(w, "arena", p->mi_arena);
	mt_jw_u64(w, "uordblks", p->mi_uordblks);
	mt_jw_u64(w, "fordblks", p->mi_fordblks);
	mt_jw_u64(w, "keepcost", p->mi_keepcost);
	mt_jw_u64(w, "hblks", p->mi_hblks);
	mt_jw_u64(w, "hblkhd", p->mi_hblkhd);
	mt_jw_u64(w, "heap_bytes", p->mi_heap);
	mt_jw_dbl(w, "utilization", util);
	mt_jw_u64(w, "threads", p->threads);
	mt_jw_bool(w, "warn_low_utilization", mt_verdict_arena_warn_util(util));
	mt_jw_bool(w, "warn_free_not_releasable",
	           mt_verdict_arena_warn_keepcost(p->mi_fordblks, p->mi_keepcost));
	write_malloc_info(c, p->t_ns);
	mt_jw_end(w);
}

/* ---- frames, stacks, top lists ------------------------------------------ */

static void write_frames(struct jctx *c)
{
	struct mt_jw *w = &c->w;
	char ip[24];
	mt_jw_arr(w, "frames", 0);
	for (size_t i = 0; i < c->n_frames; i++) {
		const struct jframe *j = &c->frames[i];
		mt_jw_obj(w, NULL, 1);
		mt_jw_str(w, "function", j->fr.function);
		mt_jw_str(w, "file", j->fr.file);
		if (j->fr.line > 0)
			mt_jw_u64(w, "line", (uint64_t)j->fr.line);
		else
			mt_jw_null(w, "line");
		mt_jw_str(w, "module", j->fr.module);
		u64_or_null(w, "offset", j->have_offset, j->offset);
		snprintf(ip, sizeof(ip), "0x%" PRIx64, j->fr.ip);
		mt_jw_str(w, "ip", ip);
		mt_jw_bool(w, "inlined", j->fr.inlined);
		mt_jw_end(w);
	}
	mt_jw_end(w);
}

static void write_stack(struct jctx *c, size_t i)
{
	const struct mt_stack_stats *st = &c->a->stacks[i].st;
	struct mt_jw *w = &c->w;
	mt_jw_obj(w, NULL, 1);
	mt_jw_u64(w, "id", i);
	write_frame_list(w, c->sf + c->sf_off[i], c->sf_off[i + 1] - c->sf_off[i]);
	mt_jw_bool(w, "truncated", c->sf_more[i]);
	mt_jw_u64(w, "calls", st->calls);
	mt_jw_u64(w, "bytes", st->bytes);
	mt_jw_u64(w, "temporary", st->temporary);
	mt_jw_u64(w, "peak_bytes", st->peak_bytes);
	mt_jw_u64(w, "leaked_bytes", st->leaked_bytes);
	mt_jw_u64(w, "leaked_blocks", st->leaked_blocks);
	mt_jw_end(w);
}

/* Sums of the stacks left out, so the written ones plus these give the totals. */
static void write_omitted(struct jctx *c)
{
	struct mt_stack_stats sum = { 0 };
	struct mt_jw *w = &c->w;
	for (size_t i = 0; i < c->a->n_stacks; i++) {
		const struct mt_stack_stats *st = &c->a->stacks[i].st;
		if (c->keep[i])
			continue;
		sum.calls += st->calls;
		sum.bytes += st->bytes;
		sum.temporary += st->temporary;
		sum.peak_bytes += st->peak_bytes;
		sum.leaked_bytes += st->leaked_bytes;
		sum.leaked_blocks += st->leaked_blocks;
	}
	mt_jw_obj(w, "stacks_omitted", 1);
	mt_jw_u64(w, "count", c->a->n_stacks - c->n_kept);
	mt_jw_u64(w, "calls", sum.calls);
	mt_jw_u64(w, "bytes", sum.bytes);
	mt_jw_u64(w, "temporary", sum.temporary);
	mt_jw_u64(w, "peak_bytes", sum.peak_bytes);
	mt_jw_u64(w, "leaked_bytes", sum.leaked_bytes);
	mt_jw_u64(w, "leaked_blocks", sum.leaked_blocks);
	mt_jw_end(w);
}

static void write_stacks(struct jctx *c)
{
	mt_jw_arr(&c->w, "stacks", 0);
	for (size_t i = 0; i < c->a->n_stacks; i++)
		if (c->keep[i])
			write_stack(c, i);
	mt_jw_end(&c->w);
	write_omitted(c);
}

static void write_top(struct jctx *c)
{
	static const char *const names[MT_TOP_KINDS] = {
		[MT_TOP_PEAK] = "peak", [MT_TOP_LEAKED] = "leaked",
		[MT_TOP_CALLS] = "calls", [MT_TOP_TEMPORARY] = "temporary",
	};
	const struct mt_analysis *a = c->a;
	struct mt_jw *w = &c->w;
	mt_jw_obj(w, "top", 0);
	for (int k = 0; k < MT_TOP_KINDS; k++) {
		size_t n = a->n_top[k];
		if (c->o->top_n && c->o->top_n < n)
			n = c->o->top_n;
		mt_jw_arr(w, names[k], 1);
		for (size_t i = 0; i < n; i++)
			mt_jw_u64(w, NULL, a->top[k][i]);
		mt_jw_end(w);
	}
	mt_jw_end(w);
}

/* ---- recorder overhead -------------------------------------------------- */

static void write_overhead(struct jctx *c)
{
	const struct mt_analysis *a = c->a;
	const struct mt_trace *tr = c->tr;
	struct mt_jw *w = &c->w;
	uint64_t events = mt_trace_stat(tr, MT_ST_EVENTS, a->n_events + tr->n_nodes);
	mt_jw_obj(w, "overhead", 0);
	mt_jw_u64(w, "events_recorded", events);
	mt_jw_u64(w, "dropped_records", mt_trace_stat(tr, MT_ST_DROPPED, 0));
	mt_jw_u64(w, "lost_events", tr->lost_events);
	mt_jw_u64(w, "trace_bytes", tr->file_size);
	if (events)
		mt_jw_dbl(w, "bytes_per_event", (double)tr->file_size / (double)events);
	else
		mt_jw_null(w, "bytes_per_event");
	mt_jw_u64(w, "raw_bytes", mt_trace_stat(tr, MT_ST_BYTES_RAW, tr->raw_bytes));
	u64_or_null(w, "recorder_peak_bytes", a->have_recorder_bytes, a->recorder_peak_bytes);
	if (a->have_recorder_bytes && a->have_rss && a->peak_rss_bytes &&
	    a->recorder_peak_bytes <= a->peak_rss_bytes)
		mt_jw_dbl(w, "recorder_fraction_of_peak_rss",
		          (double)a->recorder_peak_bytes / (double)a->peak_rss_bytes);
	else
		mt_jw_null(w, "recorder_fraction_of_peak_rss");
	mt_jw_u64(w, "trie_nodes", a->n_trie_nodes);
	mt_jw_u64(w, "stacks", a->n_stacks);
	mt_jw_end(w);
}

/* ---- the document ------------------------------------------------------- */

static void write_document(struct jctx *c)
{
	struct mt_jw *w = &c->w;
	mt_jw_obj(w, NULL, 0);
	mt_jw_str(w, "schema", "memtriage-report");
	mt_jw_u64(w, "version", JSON_SCHEMA_VERSION);
#ifdef MT_VERSION
	mt_jw_str(w, "generator", "memtriage " MT_VERSION);
#else
	mt_jw_str(w, "generator", "memtriage");
#endif
	write_trace(c);
	write_summary(c);
	write_verdict(c);
	write_timeline(c);
	write_marks(c);
	write_histogram(c);
	write_arenas(c);
	write_frames(c);
	write_stacks(c);
	write_top(c);
	write_overhead(c);
	mt_jw_end(w);
}

int mt_report_json_doc(const struct mt_analysis *a, FILE *out, const struct mt_report_opts *opts,
                       int flags)
{
	struct mt_report_opts none = { 0 };
	struct jctx c = { .a = a, .tr = a->trace, .o = opts ? opts : &none };
	int rc;
	c.max_frames = c.o->frames > 0 ? c.o->frames : JSON_FRAMES;
	if (c.max_frames > JSON_FRAMES_MAX)
		c.max_frames = JSON_FRAMES_MAX;
	mt_jw_init(&c.w, out, flags);
	rc = select_stacks(&c);
	if (!rc)
		rc = symbolize_all(&c);
	if (!rc) {
		write_document(&c);
		rc = mt_jw_finish(&c.w);
	}
	ctx_release(&c);
	return rc;
}

static int json_write(const struct mt_analysis *a, FILE *out, const struct mt_report_opts *opts)
{
	return mt_report_json_doc(a, out, opts, 0);
}

const struct mt_reporter mt_report_json = {
	.name = "json",
	.summary = "every figure, stacks and timeline as JSON (docs/report.schema.json)",
	.write = json_write,
};
