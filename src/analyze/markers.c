/*
 * Markers: the live heap at the program's marks and requests, what each
 * label's phases and each request left behind, and the stacks that grew
 * between two marks (analysis.h, struct mt_marks).
 *
 * Markers are placed among the events by time, like samples: the replay
 * keeps the global live heap at each one (two numbers per marker), never
 * a copy of every stack, which could be millions per mark.  Per-stack
 * figures are kept only at the two marks of a diff, which the command line
 * names before the replay: a copy of the slots' live figures at the first,
 * each slot's change at the second (the copy's bytes are kept too, for the
 * live bytes at A and B a folded diff prints).  The sum of those changes is the live
 * heap's change exactly, because every live change goes to one slot and to
 * the total together (replay.c, live_add/live_sub).
 *
 * Slots are recorder node ids; the report names canonical stacks.  Only a
 * diff needs the mapping, so it is rebuilt here from the canonical trie
 * (a hash of (parent, ip) over a->cnodes) for the slots that changed,
 * following the rules of stacks.c's canonicalization: an undefined node,
 * or one whose parent id is not below its own, continues in the unknown
 * node (root, ip 0).
 *
 * Marker times are ns in the trace (the reader converts ticks); the replay
 * compares ticks, so they go back through the inverse fit, to within a
 * tick, as sample times do (analyze.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "analyze/analysis.h"

#define HASH_MUL      0x9e3779b97f4a7c15ull
#define LIST_LABELS   12   /* labels an unknown-label message lists */

/* ---- time order --------------------------------------------------------- */

static int by_time(const void *x, const void *y, void *arg)
{
	const struct mt_marker *m = arg;
	size_t i = *(const size_t *)x, j = *(const size_t *)y;
	if (m[i].t_ns != m[j].t_ns)
		return m[i].t_ns < m[j].t_ns ? -1 : 1;
	return i < j ? -1 : i > j;
}

/* Indices of tr's markers in time order, ties in file order; NULL on no memory. */
static size_t *time_order(const struct mt_trace *tr)
{
	size_t *o = malloc((tr->n_markers + 1) * sizeof(*o));
	if (!o)
		return NULL;
	for (size_t i = 0; i < tr->n_markers; i++)
		o[i] = i;
	qsort_r(o, tr->n_markers, sizeof(*o), by_time, tr->markers);
	return o;
}

/* ns since the trace start -> ticks, the inverse of mt_trace_ns(). */
static uint64_t ns_to_ticks(const struct mt_trace *tr, uint64_t t_ns)
{
	double d = tr->ns_per_tick > 0 ? (double)t_ns / tr->ns_per_tick : (double)t_ns;
	return tr->tick0 + (d >= 0x1p63 ? (uint64_t)1 << 63 : (uint64_t)d);
}

/* ---- finding a mark by label -------------------------------------------- */

/* Ordinal (among marks in time order) of the nth mark labelled s[0..len), or SIZE_MAX. */
static size_t find_nth(const struct mt_trace *tr, const size_t *o, const char *s, size_t len,
                       unsigned long nth)
{
	size_t k = 0;
	unsigned long seen = 0;
	for (size_t i = 0; i < tr->n_markers; i++) {
		const struct mt_marker *m = &tr->markers[o[i]];
		if (m->kind != MT_MK_MARK)
			continue;
		if (strlen(m->label) == len && memcmp(m->label, s, len) == 0 && ++seen == nth)
			return k;
		k++;
	}
	return SIZE_MAX;
}

/* "no mark 'x' in the trace; marks: 'a', 'b', ..." */
static void unknown_label(const struct mt_trace *tr, const size_t *o, const char *spec,
                          char err[MT_ERR_LEN])
{
	const char *listed[LIST_LABELS];
	size_t n = 0, more = 0;
	int off = snprintf(err, MT_ERR_LEN, "no mark '%s' in the trace; marks:", spec);
	for (size_t i = 0; i < tr->n_markers; i++) {
		const struct mt_marker *m = &tr->markers[o[i]];
		size_t j = 0;
		if (m->kind != MT_MK_MARK)
			continue;
		while (j < n && strcmp(listed[j], m->label))
			j++;
		if (j < n)
			continue;
		if (n == LIST_LABELS) {
			more++;  /* may count a label twice: only "more" is said */
			continue;
		}
		listed[n++] = m->label;
		if (off < MT_ERR_LEN)
			off += snprintf(err + off, (size_t)(MT_ERR_LEN - off), "%s '%s'", n > 1 ? "," : "",
			                m->label);
	}
	if (!n)
		snprintf(err, MT_ERR_LEN, "no mark '%s': the trace has no marks (memtriage_mark)", spec);
	else if (more && off < MT_ERR_LEN)
		snprintf(err + off, (size_t)(MT_ERR_LEN - off), ", ...");
}

int mt_marks_find(const struct mt_trace *tr, const char *spec, size_t *ordinal, char err[MT_ERR_LEN])
{
	size_t *o = time_order(tr);
	if (!o) {
		snprintf(err, MT_ERR_LEN, "out of memory");
		return -ENOMEM;
	}
	size_t k = find_nth(tr, o, spec, strlen(spec), 1);
	const char *h = strrchr(spec, '#');
	if (k == SIZE_MAX && h && h[1] >= '1' && h[1] <= '9' && strspn(h + 1, "0123456789") == strlen(h + 1))
		k = find_nth(tr, o, spec, (size_t)(h - spec), strtoul(h + 1, NULL, 10));
	if (k == SIZE_MAX)
		unknown_label(tr, o, spec, err);
	free(o);
	if (k == SIZE_MAX)
		return -ENOENT;
	*ordinal = k;
	return 0;
}

/* Index in time order of the mark with 0-based ordinal k, or SIZE_MAX. */
static size_t mark_index(const struct mt_trace *tr, const size_t *o, size_t k)
{
	for (size_t i = 0; i < tr->n_markers; i++)
		if (tr->markers[o[i]].kind == MT_MK_MARK && k-- == 0)
			return i;
	return SIZE_MAX;
}

/* The diff's marks as indices in time order; 0 when opts asks for none or names none. */
static int diff_marks(const struct mt_trace *tr, const size_t *o, const struct mt_analysis_opts *opts,
                      size_t *ia, size_t *ib)
{
	if (!opts || !opts->diff_mark[0] || !opts->diff_mark[1])
		return 0;
	*ia = mark_index(tr, o, opts->diff_mark[0] - 1);
	*ib = mark_index(tr, o, opts->diff_mark[1] - 1);
	return *ia != SIZE_MAX && *ib != SIZE_MAX;
}

int mt_marks_prepare(struct mt_replay *r, const struct mt_trace *tr,
                     const struct mt_analysis_opts *opts)
{
	size_t n = tr->n_markers, ia, ib, first = SIZE_MAX, second = SIZE_MAX;
	if (!n)
		return 0;
	size_t *o = time_order(tr);
	uint64_t *ticks = malloc(n * sizeof(*ticks));
	int rc = -ENOMEM;
	if (o && ticks) {
		for (size_t i = 0; i < n; i++) {
			ticks[i] = ns_to_ticks(tr, tr->markers[o[i]].t_ns);
			if (i && ticks[i] < ticks[i - 1])
				ticks[i] = ticks[i - 1];
		}
		if (diff_marks(tr, o, opts, &ia, &ib)) {
			first = ia < ib ? ia : ib;
			second = ia < ib ? ib : ia;
		}
		rc = mt_replay_marks(r, ticks, n, first, second);
	}
	free(o);
	free(ticks);
	return rc;
}

/* ---- points: heap from the replay, RSS from the nearest sample ---------- */

static void nearest_rss(const struct mt_analysis *a, struct mt_mark_point *p)
{
	size_t lo = 0, hi = a->n_timeline;
	if (!hi)
		return;
	while (lo < hi) {  /* first point at or after p->t_ns */
		size_t mid = lo + (hi - lo) / 2;
		if (a->timeline[mid].t_ns < p->t_ns)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t k = lo;
	if (k == a->n_timeline || (k > 0 && p->t_ns - a->timeline[k - 1].t_ns < a->timeline[k].t_ns - p->t_ns))
		k--;
	p->have_rss = 1;
	p->rss = a->timeline[k].rss;
	p->rss_t_ns = a->timeline[k].t_ns;
}

static void fill_points(struct mt_marks *m, const struct mt_analysis *a, const struct mt_trace *tr,
                        const size_t *o, const struct mt_marks_replay *mr)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct mt_marker *k = &tr->markers[o[i]];
		struct mt_mark_point *p = &m->pt[i];
		p->t_ns = k->t_ns;
		p->label = k->label ? k->label : "";
		p->kind = k->kind;
		p->thread_idx = k->thread_idx;
		p->id = k->arg;
		p->payload_bytes = k->kind == MT_MK_BEGIN ? k->arg2 : 0;
		if (mr->n == m->n) {
			p->heap_bytes = mr->bytes[i];
			p->heap_blocks = mr->blocks[i];
		}
		nearest_rss(a, p);
		m->n_marks += k->kind == MT_MK_MARK;
	}
}

/* ---- labels: count and growth per phase --------------------------------- */

static int by_label(const void *x, const void *y, void *arg)
{
	const struct mt_mark_point *pt = arg;
	size_t i = *(const size_t *)x, j = *(const size_t *)y;
	int c = strcmp(pt[i].label, pt[j].label);
	return c ? c : (i < j ? -1 : i > j);
}

static int by_first(const void *x, const void *y)
{
	const size_t *a = x, *b = y;  /* struct label_tmp begins with its first index */
	return *a < *b ? -1 : *a > *b;
}

struct label_tmp {
	size_t first;
	struct mt_mark_label l;
};

/* One phase: mark p to mark q (q = SIZE_MAX: to the end) into l. */
static void add_phase(struct mt_mark_label *l, const struct mt_marks *m, const struct mt_analysis *a,
                      size_t p, size_t q)
{
	const struct mt_mark_point *s = &m->pt[p];
	uint64_t end_heap = q == SIZE_MAX ? a->end_bytes : m->pt[q].heap_bytes;
	int64_t g = (int64_t)(end_heap - s->heap_bytes);
	if (!l->count++ || g < l->growth_min)
		l->growth_min = g;
	if (l->count == 1 || g > l->growth_max)
		l->growth_max = g;
	l->growth_sum += g;
	const struct mt_timeline_point *last = a->n_timeline ? &a->timeline[a->n_timeline - 1] : NULL;
	if (s->have_rss && (q != SIZE_MAX || last)) {
		uint64_t end_rss = q == SIZE_MAX ? last->rss : m->pt[q].rss;
		l->rss_growth_sum += (int64_t)(end_rss - s->rss);
		l->rss_n++;
	}
}

static int build_labels(struct mt_marks *m, const struct mt_analysis *a)
{
	size_t n = m->n_marks, k = 0;
	size_t *idx = malloc((n + 1) * sizeof(*idx)), *next = malloc((m->n + 1) * sizeof(*next));
	struct label_tmp *t = calloc(n + 1, sizeof(*t));
	int rc = -ENOMEM;
	if (!idx || !next || !t)
		goto out;
	for (size_t i = m->n, nx = SIZE_MAX; i-- > 0;) {
		next[i] = nx;
		if (m->pt[i].kind == MT_MK_MARK) {
			nx = i;
			idx[--n] = i;
		}
	}
	n = m->n_marks;
	qsort_r(idx, n, sizeof(*idx), by_label, m->pt);
	for (size_t i = 0; i < n; i++) {
		if (!i || strcmp(m->pt[idx[i]].label, m->pt[idx[i - 1]].label)) {
			t[k].first = idx[i];
			t[k++].l.label = m->pt[idx[i]].label;
		}
		add_phase(&t[k - 1].l, m, a, idx[i], next[idx[i]]);
	}
	qsort(t, k, sizeof(*t), by_first);
	m->labels = malloc((k + 1) * sizeof(*m->labels));
	if (!m->labels)
		goto out;
	for (size_t i = 0; i < k; i++)
		m->labels[i] = t[i].l;
	m->n_labels = k;
	rc = 0;
out:
	free(idx);
	free(next);
	free(t);
	return rc;
}

/* ---- requests ----------------------------------------------------------- */

static int by_id(const void *x, const void *y, void *arg)
{
	const struct mt_mark_point *pt = arg;
	size_t i = *(const size_t *)x, j = *(const size_t *)y;
	if (pt[i].id != pt[j].id)
		return pt[i].id < pt[j].id ? -1 : 1;
	return i < j ? -1 : i > j;
}

static int by_begin(const void *x, const void *y)
{
	const struct mt_request *a = x, *b = y;
	return a->begin < b->begin ? -1 : a->begin > b->begin;
}

static void add_request(struct mt_marks *m, size_t b, size_t e)
{
	const struct mt_mark_point *pb = &m->pt[b], *pe = &m->pt[e];
	struct mt_request *r = &m->req[m->n_req++];
	*r = (struct mt_request){ .id = pb->id, .payload_bytes = pb->payload_bytes,
	                          .thread_idx = pb->thread_idx, .begin = b, .end = e };
	r->heap_delta = (int64_t)(pe->heap_bytes - pb->heap_bytes);
	r->have_rss = pb->have_rss && pe->have_rss;
	r->rss_delta = r->have_rss ? (int64_t)(pe->rss - pb->rss) : 0;
}

/* Pairs each begin with the next end of its id: sorted by (id, time), one pass. */
static int pair_requests(struct mt_marks *m)
{
	size_t n = 0;
	size_t *idx = malloc((m->n + 1) * sizeof(*idx));
	m->req = malloc((m->n / 2 + 1) * sizeof(*m->req));
	if (!idx || !m->req) {
		free(idx);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->n; i++)
		if (m->pt[i].kind == MT_MK_BEGIN || m->pt[i].kind == MT_MK_END)
			idx[n++] = i;
	qsort_r(idx, n, sizeof(*idx), by_id, m->pt);
	size_t open = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		const struct mt_mark_point *p = &m->pt[idx[i]];
		if (i && p->id != m->pt[idx[i - 1]].id && open != SIZE_MAX) {
			m->req_unmatched++;  /* the previous id's last begin never ended */
			open = SIZE_MAX;
		}
		if (p->kind == MT_MK_BEGIN) {
			m->req_unmatched += open != SIZE_MAX;
			open = idx[i];
		} else if (open != SIZE_MAX) {
			add_request(m, open, idx[i]);
			open = SIZE_MAX;
		} else {
			m->req_unmatched++;
		}
	}
	m->req_unmatched += open != SIZE_MAX;
	free(idx);
	qsort(m->req, m->n_req, sizeof(*m->req), by_begin);
	return 0;
}

static void request_stats(struct mt_marks *m)
{
	size_t max_end = 0;
	for (size_t i = 0; i < m->n_req; i++) {
		const struct mt_request *r = &m->req[i];
		struct mt_req_bucket *b = &m->bucket[mt_hist_bucket(r->payload_bytes)];
		if (i && r->begin < max_end)
			m->n_overlapped++;
		max_end = r->end > max_end ? r->end : max_end;
		if (!i || r->heap_delta < m->heap_min)
			m->heap_min = r->heap_delta;
		if (!i || r->heap_delta > m->heap_max)
			m->heap_max = r->heap_delta;
		m->heap_sum += (double)r->heap_delta;
		b->n++;
		b->heap_sum += (double)r->heap_delta;
		if (r->have_rss) {
			b->n_rss++;
			b->rss_sum += (double)r->rss_delta;
		}
		if (!r->payload_bytes)
			continue;
		double ratio = (double)r->heap_delta / (double)r->payload_bytes;
		if (!m->n_ratio || ratio < m->ratio_min)
			m->ratio_min = ratio;
		if (!m->n_ratio || ratio > m->ratio_max)
			m->ratio_max = ratio;
		m->n_ratio++;
		m->ratio_sum += ratio;
		b->ratio_sum += ratio;
	}
}

/* ---- diff: slots to canonical stacks ------------------------------------ */

struct chash {
	uint32_t *id; uint64_t mask;   /* canonical ids, 0 = empty (the root is never a child) */
	const struct mt_cnode *cn;
};

static uint64_t ch_home(const struct chash *h, uint32_t parent, uint64_t ip)
{
	return ((ip ^ (uint64_t)parent << 32 ^ parent) * HASH_MUL >> 20) & h->mask;
}

static int ch_init(struct chash *h, const struct mt_analysis *a)
{
	uint64_t cap = 16;
	while (cap < 2 * (uint64_t)a->n_cnodes)
		cap *= 2;
	h->id = calloc(cap, sizeof(*h->id));
	h->mask = cap - 1;
	h->cn = a->cnodes;
	if (!h->id)
		return -ENOMEM;
	for (size_t c = 1; c < a->n_cnodes; c++) {
		uint64_t i = ch_home(h, a->cnodes[c].parent, a->cnodes[c].ip);
		while (h->id[i])
			i = (i + 1) & h->mask;
		h->id[i] = (uint32_t)c;
	}
	return 0;
}

/* Canonical child (parent, ip), or 0. */
static uint32_t ch_find(const struct chash *h, uint32_t parent, uint64_t ip)
{
	for (uint64_t i = ch_home(h, parent, ip); h->id[i]; i = (i + 1) & h->mask) {
		const struct mt_cnode *c = &h->cn[h->id[i]];
		if (c->parent == parent && c->ip == ip)
			return h->id[i];
	}
	return 0;
}

/*
 * Canonical leaf of recorder node x: its ips up to the root (or to where
 * the definition is lost: the unknown node), then down the canonical trie.
 * ips is a growable buffer of *cap entries.  0 on out of memory.
 */
static uint32_t canon_of(const struct chash *h, const struct mt_trace *tr, uint32_t x,
                         uint64_t **ips, size_t *cap)
{
	size_t n = 0;
	uint32_t c = 0;
	for (uint32_t cur = x; cur;) {
		if (cur >= tr->n_nodes || !tr->nodes[cur].ip) {
			c = ch_find(h, 0, 0);
			break;
		}
		if (n == *cap) {
			uint64_t *p = realloc(*ips, (*cap ? 2 * *cap : 64) * sizeof(**ips));
			if (!p)
				return 0;
			*ips = p;
			*cap = *cap ? 2 * *cap : 64;
		}
		(*ips)[n++] = tr->nodes[cur].ip;
		uint32_t parent = tr->nodes[cur].parent;
		if (parent >= cur) {
			c = ch_find(h, 0, 0);
			break;
		}
		cur = parent;
	}
	while (n-- > 0)
		c = ch_find(h, c, (*ips)[n]);
	return c;
}

static int by_node(const void *x, const void *y)
{
	const struct mt_diff_stack *a = x, *b = y;
	return a->node < b->node ? -1 : a->node > b->node;
}

static int by_growth(const void *x, const void *y)
{
	const struct mt_diff_stack *a = x, *b = y;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	return by_node(x, y);
}

/* Live bytes of slot i at mark A: the earlier mark's snapshot, plus the change when A is later. */
static uint64_t slot_at_a(const struct mt_marks_replay *mr, size_t i, int sign)
{
	uint64_t first = mr->first_bytes && i < mr->n_first ? mr->first_bytes[i] : 0;
	return sign > 0 ? first : first + (uint64_t)mr->d_bytes[i];
}

/*
 * Per-slot changes -> rows per canonical stack (row nodes kept as made),
 * merged; n rows.  Unchanged slots live at both marks are kept too: a
 * two-column flame graph needs the whole heap at A and at B.
 */
static int diff_rows(const struct mt_analysis *a, const struct mt_trace *tr,
                     const struct mt_marks_replay *mr, int sign, struct mt_diff_stack *rows, size_t *n)
{
	struct chash h;
	uint64_t *ips = NULL;
	size_t cap = 0, k = 0;
	if (ch_init(&h, a))
		return -ENOMEM;
	for (size_t i = 0; i < mr->n_slot; i++) {
		uint64_t at_a = slot_at_a(mr, i, sign);
		if (!mr->d_bytes[i] && !mr->d_blocks[i] && !at_a)
			continue;
		uint32_t c = mr->node[i] ? canon_of(&h, tr, mr->node[i], &ips, &cap) : 0;
		rows[k++] = (struct mt_diff_stack){ c, sign * mr->d_bytes[i], sign * mr->d_blocks[i], at_a };
	}
	free(ips);
	free(h.id);
	qsort(rows, k, sizeof(*rows), by_node);
	size_t m = 0;
	for (size_t i = 0; i < k; i++) {
		if (m && rows[m - 1].node == rows[i].node) {
			rows[m - 1].bytes += rows[i].bytes;
			rows[m - 1].blocks += rows[i].blocks;
			rows[m - 1].a_bytes += rows[i].a_bytes;
		} else {
			rows[m++] = rows[i];
		}
	}
	*n = m;
	return 0;
}

static int build_diff(struct mt_marks *m, const struct mt_analysis *a, const struct mt_trace *tr,
                      const size_t *o, const struct mt_marks_replay *mr,
                      const struct mt_analysis_opts *opts)
{
	size_t n, top;
	if (!diff_marks(tr, o, opts, &m->diff_a, &m->diff_b))
		return 0;
	top = opts->top_n ? opts->top_n : MT_TOP_DEFAULT;
	int sign = m->diff_a <= m->diff_b ? 1 : -1;
	struct mt_diff_stack *rows = malloc((mr->n_slot + 1) * sizeof(*rows));
	if (!rows || diff_rows(a, tr, mr, sign, rows, &n)) {
		free(rows);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		m->diff_bytes += rows[i].bytes;
		m->diff_blocks += rows[i].blocks;
		if (!rows[i].bytes && !rows[i].blocks)
			continue;
		m->n_diff_changed++;
		if (rows[i].bytes > 0) {
			m->n_diff_grew++;
			m->diff_grew_bytes += rows[i].bytes;
		} else {
			m->diff_shrank_bytes += rows[i].bytes;
		}
	}
	qsort(rows, n, sizeof(*rows), by_growth);
	while (m->n_diff_top < n && m->n_diff_top < top && rows[m->n_diff_top].bytes > 0)
		m->n_diff_top++;
	m->n_diff_rows = n;
	m->diff_top = rows;
	m->have_diff = 1;
	return 0;
}

/* ---- building and freeing ------------------------------------------------ */

static void replay_release(struct mt_marks_replay *mr)
{
	free(mr->bytes);
	free(mr->blocks);
	free(mr->node);
	free(mr->d_bytes);
	free(mr->d_blocks);
	free(mr->first_bytes);
	memset(mr, 0, sizeof(*mr));
}

int mt_marks_build(struct mt_analysis *a, const struct mt_trace *tr, struct mt_marks_replay *mr,
                   const struct mt_analysis_opts *opts)
{
	struct mt_marks *m = calloc(1, sizeof(*m));
	size_t *o = time_order(tr);
	int rc = -ENOMEM;
	if (!m || !o || !(m->pt = calloc(tr->n_markers + 1, sizeof(*m->pt))))
		goto out;
	m->n = tr->n_markers;
	fill_points(m, a, tr, o, mr);
	if (build_labels(m, a) || pair_requests(m))
		goto out;
	request_stats(m);
	if (mr->have_diff && !mr->oom && build_diff(m, a, tr, o, mr, opts))
		goto out;
	if (mr->oom)
		goto out;
	a->marks = m;
	m = NULL;
	rc = 0;
out:
	mt_marks_free(m);
	free(o);
	replay_release(mr);
	return rc;
}

void mt_marks_free(struct mt_marks *m)
{
	if (!m)
		return;
	free(m->pt);
	free(m->labels);
	free(m->req);
	free(m->diff_top);
	free(m);
}
