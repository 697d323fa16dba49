/*
 * Analyzer (src/analyze) and text reporter (src/report): replay semantics
 * on hand-made event streams, the live-heap map against a brute-force
 * reference, stack canonicalization, and whole traces written with the
 * trace builder, read by the reader and reported as text.
 *
 * `test_analysis --bench [N]` times the replay core alone on N million
 * synthetic events (default 40).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "analyze/analysis.h"
#include "report/report.h"
#include "trace_builder.h"

/* ---- helpers ------------------------------------------------------------ */

static struct mt_node g_nodes[64];
static struct mt_trace g_tr;

/* A fake trace for replays fed by hand: nodes 1..n as given, ended by exit. */
static const struct mt_trace *fake_trace(size_t n_nodes)
{
	memset(&g_tr, 0, sizeof(g_tr));
	g_tr.nodes = g_nodes;
	g_tr.n_nodes = n_nodes;
	g_tr.ended = 1;
	g_tr.end_reason = MT_END_EXIT;
	g_tr.ns_per_tick = 1.0;
	return &g_tr;
}

static void ev(struct mt_replay *r, int type, int func, uint64_t t, uint64_t ptr, uint64_t size,
               uint32_t stack, uint32_t thread)
{
	struct mt_event e = { .t = t, .ptr = ptr, .size = size, .stack = stack,
	                      .thread_idx = thread, .type = (uint8_t)type, .func = (uint8_t)func };
	assert_int_equal(mt_replay_event(&e, r), 0);
}

#define MALLOC(r, t, p, s, st, th) ev(r, MT_E_ALLOC, MT_EV_MALLOC, t, p, s, st, th)
#define FREE(r, t, p, th)          ev(r, MT_E_FREE, MT_EV_FREE, t, p, 0, 0, th)

static struct mt_analysis *finish(struct mt_replay *r, const struct mt_trace *tr)
{
	struct mt_analysis *a = NULL;
	char err[MT_ERR_LEN];
	struct mt_analysis_opts o = { .top_n = 100 };
	assert_int_equal(mt_replay_finish(r, tr, &o, &a, err), 0);
	return a;
}

static const struct mt_stack *stack_of(const struct mt_analysis *a, uint64_t leaf_ip)
{
	for (size_t i = 0; i < a->n_stacks; i++)
		if (a->stacks[i].node && a->cnodes[a->stacks[i].node].ip == leaf_ip)
			return &a->stacks[i];
	return NULL;
}

/* The per-stack figures must add up to the global ones. */
static void check_sums(const struct mt_analysis *a)
{
	uint64_t peak = 0, leaked = 0, blocks = 0, calls = 0, temp = 0, bytes = 0;
	for (size_t i = 0; i < a->n_stacks; i++) {
		peak += a->stacks[i].st.peak_bytes;
		leaked += a->stacks[i].st.leaked_bytes;
		blocks += a->stacks[i].st.leaked_blocks;
		calls += a->stacks[i].st.calls;
		temp += a->stacks[i].st.temporary;
		bytes += a->stacks[i].st.bytes;
	}
	assert_int_equal(peak, a->peak_bytes);
	assert_int_equal(leaked, a->end_bytes);
	assert_int_equal(blocks, a->end_blocks);
	assert_int_equal(calls, a->alloc_calls);
	assert_int_equal(temp, a->temporary);
	assert_int_equal(bytes, a->bytes_allocated);
}

/* ---- replay semantics --------------------------------------------------- */

static void test_replay_basic(void **state)
{
	for (int i = 1; i <= 3; i++)
		g_nodes[i] = (struct mt_node){ 0x1000u * (unsigned)i, 0 };
	const struct mt_trace *tr = fake_trace(4);
	struct mt_replay *r = mt_replay_new(NULL, 0);

	MALLOC(r, 10, 0xa0, 64, 1, 1);
	MALLOC(r, 20, 0xb0, 100, 2, 1);
	FREE(r, 30, 0xb0, 1);               /* temporary: last allocation of thread 1 */
	FREE(r, 40, 0xa0, 1);               /* not temporary: b came in between */
	MALLOC(r, 50, 0xc0, 1000, 1, 2);
	ev(r, MT_E_FREE, MT_EV_REALLOC, 60, 0xc0, 0, 0, 2);   /* realloc c -> d */
	ev(r, MT_E_ALLOC, MT_EV_REALLOC, 61, 0xd0, 2000, 3, 2);
	FREE(r, 70, 0xe0, 2);               /* never allocated */
	MALLOC(r, 80, 0, 10, 1, 2);         /* failed */
	ev(r, MT_E_ALLOC, MT_EV_CALLOC, 90, 0xf0, 8, 2, 1);
	FREE(r, 95, 0xf0, 2);               /* other thread: not temporary */

	struct mt_analysis *a = finish(r, tr);
	assert_int_equal(a->alloc_calls, 6);
	assert_int_equal(a->calls[MT_EV_MALLOC], 4);
	assert_int_equal(a->calls[MT_EV_REALLOC], 1);
	assert_int_equal(a->calls[MT_EV_CALLOC], 1);
	assert_int_equal(a->failed_calls, 1);
	assert_int_equal(a->free_calls, 4);
	assert_int_equal(a->bytes_allocated, 64 + 100 + 1000 + 2000 + 8);
	assert_int_equal(a->temporary, 1);
	assert_int_equal(a->unknown_frees, 1);
	assert_int_equal(a->peak_bytes, 2008);
	assert_int_equal(a->peak_blocks, 2);
	assert_int_equal(a->peak_t_ns, 90);
	assert_int_equal(a->end_bytes, 2000);
	assert_int_equal(a->end_blocks, 1);
	assert_int_equal(a->end_kind, MT_ENDED_EXIT);
	assert_int_equal(a->n_threads, 2);
	assert_int_equal(a->n_events, 11);
	assert_int_equal(a->hist_calls[mt_hist_bucket(64)], 1);
	assert_int_equal(mt_hist_bucket(64), 6);
	assert_int_equal(mt_hist_bucket(65), 7);
	assert_int_equal(mt_hist_bucket(1), 0);
	assert_int_equal(mt_hist_bucket(2), 1);

	const struct mt_stack *s1 = stack_of(a, 0x1000), *s2 = stack_of(a, 0x2000),
	                      *s3 = stack_of(a, 0x3000);
	assert_non_null(s1);
	assert_non_null(s2);
	assert_non_null(s3);
	assert_int_equal(s1->st.calls, 3);
	assert_int_equal(s1->st.peak_bytes, 0);
	assert_int_equal(s2->st.peak_bytes, 8);
	assert_int_equal(s2->st.temporary, 1);
	assert_int_equal(s3->st.peak_bytes, 2000);
	assert_int_equal(s3->st.leaked_bytes, 2000);
	assert_int_equal(a->n_top[MT_TOP_LEAKED], 1);
	assert_ptr_equal(&a->stacks[a->top[MT_TOP_LEAKED][0]], s3);
	assert_ptr_equal(&a->stacks[a->top[MT_TOP_CALLS][0]], s1);
	check_sums(a);
	mt_analysis_free(a);
}

/* The peak is the first time the maximum is reached; later equal heaps do not move it. */
static void test_peak_per_stack(void **state)
{
	g_nodes[1] = (struct mt_node){ 0x1000, 0 };
	g_nodes[2] = (struct mt_node){ 0x2000, 0 };
	const struct mt_trace *tr = fake_trace(3);
	struct mt_replay *r = mt_replay_new(NULL, 0);

	MALLOC(r, 1, 0x10, 300, 1, 0);
	MALLOC(r, 2, 0x20, 200, 2, 0);      /* peak 500: s1 300, s2 200 */
	FREE(r, 3, 0x10, 0);
	MALLOC(r, 4, 0x30, 100, 2, 0);      /* 300: below */
	MALLOC(r, 5, 0x40, 200, 1, 0);      /* 500: equal, not a new peak */
	FREE(r, 6, 0x20, 0);
	MALLOC(r, 7, 0x50, 50, 2, 0);
	struct mt_analysis *a = finish(r, tr);
	assert_int_equal(a->peak_bytes, 500);
	assert_int_equal(a->peak_t_ns, 2);
	assert_int_equal(stack_of(a, 0x1000)->st.peak_bytes, 300);
	assert_int_equal(stack_of(a, 0x2000)->st.peak_bytes, 200);
	check_sums(a);
	mt_analysis_free(a);
}

static void test_double_alloc(void **state)
{
	g_nodes[1] = (struct mt_node){ 0x1000, 0 };
	const struct mt_trace *tr = fake_trace(2);
	struct mt_replay *r = mt_replay_new(NULL, 0);
	MALLOC(r, 1, 0x10, 100, 1, 0);
	MALLOC(r, 2, 0x10, 40, 1, 0);       /* same pointer while live */
	struct mt_analysis *a = finish(r, tr);
	assert_int_equal(a->double_allocs, 1);
	assert_int_equal(a->end_bytes, 40);
	assert_int_equal(a->end_blocks, 1);
	assert_int_equal(a->peak_bytes, 100);
	check_sums(a);
	mt_analysis_free(a);
}

/* A stack id past MT_STACK_ID_MAX (corrupt trace) is an error with a message, not a crash. */
static void test_limits(void **state)
{
	const struct mt_trace *tr = fake_trace(1);
	struct mt_replay *r = mt_replay_new(NULL, 0);
	struct mt_analysis *a = NULL;
	char err[MT_ERR_LEN] = "";
	struct mt_event e = { .t = 1, .ptr = 0x10, .size = 1, .stack = MT_STACK_ID_MAX,
	                      .type = MT_E_ALLOC, .func = MT_EV_MALLOC };
	int rc = mt_replay_event(&e, r);   /* queued: the error may come now or at finish */
	if (rc == 0)
		rc = mt_replay_finish(r, tr, NULL, &a, err);
	else
		mt_replay_free(r);
	assert_int_equal(rc, -E2BIG);
	assert_null(a);
	assert_non_null(strstr(err[0] ? err : "call-stack id", "call-stack id"));
}

/* One call path defined under several node ids is one stack. */
static void test_canonical_stacks(void **state)
{
	g_nodes[1] = (struct mt_node){ 0x100, 0 };
	g_nodes[2] = (struct mt_node){ 0x200, 1 };
	g_nodes[3] = (struct mt_node){ 0x100, 0 };   /* = 1 */
	g_nodes[4] = (struct mt_node){ 0x200, 3 };   /* = 2 */
	g_nodes[5] = (struct mt_node){ 0x300, 3 };   /* child of the duplicate */
	g_nodes[6] = (struct mt_node){ 0x400, 9 };   /* parent undefined */
	const struct mt_trace *tr = fake_trace(7);
	struct mt_replay *r = mt_replay_new(NULL, 0);
	MALLOC(r, 1, 0x10, 10, 2, 0);
	MALLOC(r, 2, 0x20, 20, 4, 0);
	MALLOC(r, 3, 0x30, 30, 5, 0);
	MALLOC(r, 4, 0x40, 40, 6, 0);
	MALLOC(r, 5, 0x50, 50, 0, 0);       /* no stack */
	MALLOC(r, 6, 0x60, 60, 33, 0);      /* node never defined */
	struct mt_analysis *a = finish(r, tr);
	assert_int_equal(a->n_stacks, 5);
	const struct mt_stack *s = stack_of(a, 0x200);
	assert_non_null(s);
	assert_int_equal(s->st.calls, 2);
	assert_int_equal(s->st.leaked_bytes, 30);
	uint32_t p = a->cnodes[s->node].parent;
	assert_int_equal(a->cnodes[p].ip, 0x100);
	assert_int_equal(a->cnodes[p].parent, 0);
	s = stack_of(a, 0x300);
	assert_int_equal(a->cnodes[s->node].parent, p);
	s = stack_of(a, 0x400);
	uint32_t unk = a->cnodes[s->node].parent;
	assert_int_equal(a->cnodes[unk].ip, 0);
	int found_root = 0, found_unknown = 0;
	for (size_t i = 0; i < a->n_stacks; i++) {
		found_root += a->stacks[i].node == 0 && a->stacks[i].st.bytes == 50;
		found_unknown += a->stacks[i].node == unk && a->stacks[i].st.bytes == 60;
	}
	assert_int_equal(found_root, 1);
	assert_int_equal(found_unknown, 1);
	check_sums(a);
	mt_analysis_free(a);
}

/*
 * Random allocations and frees against a brute-force live set, blocks
 * `stride` bytes apart: 16 packs two blocks per hashing grain (the map
 * must give up local hashing), 48 keeps it local.
 */
static void live_map_random(uint64_t stride)
{
	enum { POOL = 50000, OPS = 2000000, STACKS = 7 };
	static uint64_t live_size[POOL];
	uint64_t live = 0, blocks = 0, peak = 0, t = 0, frees = 0;
	for (int i = 1; i <= STACKS; i++)
		g_nodes[i] = (struct mt_node){ 0x1000u * (unsigned)i, 0 };
	const struct mt_trace *tr = fake_trace(STACKS + 1);
	struct mt_replay *r = mt_replay_new(NULL, 0);
	memset(live_size, 0, sizeof(live_size));
	srand(12345);
	for (int op = 0; op < OPS; op++) {
		/* clustered addresses: many share hash neighbourhoods */
		int k = rand() % POOL;
		uint64_t ptr = 0x7f0000000000ull + (uint64_t)k * stride;
		if (live_size[k]) {
			FREE(r, ++t, ptr, (uint32_t)(rand() % 4));
			live -= live_size[k];
			blocks--;
			live_size[k] = 0;
			frees++;
		} else {
			uint64_t size = 1 + (uint64_t)(rand() % 4096);
			MALLOC(r, ++t, ptr, size, 1 + (uint32_t)(rand() % STACKS), (uint32_t)(rand() % 4));
			live_size[k] = size;
			live += size;
			blocks++;
			if (live > peak)
				peak = live;
		}
	}
	struct mt_analysis *a = finish(r, tr);
	assert_int_equal(a->end_bytes, live);
	assert_int_equal(a->end_blocks, blocks);
	assert_int_equal(a->peak_bytes, peak);
	assert_int_equal(a->free_calls, frees);
	assert_int_equal(a->unknown_frees, 0);
	assert_int_equal(a->double_allocs, 0);
	check_sums(a);
	mt_analysis_free(a);
}

static void test_live_map_random(void **state)
{
	live_map_random(16);
	live_map_random(48);
}

/* The same events one by one and in batches of every size give the same analysis. */
static void test_batches(void **state)
{
	enum { EVENTS = 20000 };
	struct mt_event *evs = calloc(EVENTS, sizeof(*evs));
	uint64_t live[64] = {0};
	for (int i = 1; i <= 5; i++)
		g_nodes[i] = (struct mt_node){ 0x1000u * (unsigned)i, 0 };
	const struct mt_trace *tr = fake_trace(6);
	srand(777);
	for (int i = 0; i < EVENTS; i++) {
		int k = rand() % 64;
		struct mt_event *e = &evs[i];
		e->t = (uint64_t)i;
		e->thread_idx = (uint32_t)(k & 3);
		if (live[k]) {
			*e = (struct mt_event){ .t = (uint64_t)i, .ptr = live[k], .thread_idx = e->thread_idx,
			                        .type = MT_E_FREE, .func = MT_EV_FREE };
			live[k] = 0;
		} else {
			live[k] = 0x10000ull * (uint64_t)(k + 1) + (uint64_t)(rand() % 8) * 64;
			*e = (struct mt_event){ .t = (uint64_t)i, .ptr = live[k], .size = 1 + (uint64_t)(rand() % 500),
			                        .stack = (uint32_t)(rand() % 6), .thread_idx = e->thread_idx,
			                        .type = MT_E_ALLOC, .func = MT_EV_MALLOC };
		}
	}
	struct mt_analysis *ref = NULL;
	for (size_t batch = 0; batch <= 300; batch = batch ? batch * 3 + 1 : 1) {
		struct mt_replay *r = mt_replay_new(NULL, EVENTS);
		for (size_t i = 0; i < EVENTS; ) {
			size_t n = batch ? (EVENTS - i < batch ? EVENTS - i : batch) : 1;
			assert_int_equal(batch ? mt_replay_events(&evs[i], n, r) : mt_replay_event(&evs[i], r), 0);
			i += n;
		}
		struct mt_analysis *a = finish(r, tr);
		check_sums(a);
		if (!ref) {
			ref = a;
			continue;
		}
		assert_int_equal(a->peak_bytes, ref->peak_bytes);
		assert_int_equal(a->temporary, ref->temporary);
		assert_int_equal(a->n_stacks, ref->n_stacks);
		assert_memory_equal(a->stacks, ref->stacks, a->n_stacks * sizeof(*a->stacks));
		mt_analysis_free(a);
	}
	mt_analysis_free(ref);
	free(evs);
}

/* ---- canonical stacks against call paths -------------------------------- */

/* FNV-1a over the ips of a call path, outermost first; the root's path is empty. */
static uint64_t path_add(uint64_t h, uint64_t ip)
{
	for (int i = 0; i < 8; i++)
		h = (h ^ (uint8_t)(ip >> (8 * i))) * 0x100000001b3ull;
	return h;
}
#define PATH_ROOT 0xcbf29ce484222325ull

/* The path hash of recorder node id as stacks.c must see it (analysis.h, stack identity). */
static uint64_t recorder_path(const struct mt_trace *tr, uint32_t id)
{
	if (id == 0)
		return PATH_ROOT;
	if (id >= tr->n_nodes || !tr->nodes[id].ip)
		return path_add(PATH_ROOT, 0);  /* the unknown node */
	uint32_t p = tr->nodes[id].parent;
	uint64_t up = p < id ? recorder_path(tr, p) : path_add(PATH_ROOT, 0);
	return path_add(up, tr->nodes[id].ip);
}

static uint64_t canonical_path(const struct mt_analysis *a, uint32_t node)
{
	return node ? path_add(canonical_path(a, a->cnodes[node].parent), a->cnodes[node].ip) : PATH_ROOT;
}

struct path_sum { uint64_t path, calls, bytes; };

static int path_cmp(const void *x, const void *y)
{
	const struct path_sum *p = x, *q = y;
	return p->path < q->path ? -1 : p->path > q->path;
}

/* Sorts and sums entries with equal paths; returns how many remain. */
static size_t path_merge(struct path_sum *v, size_t n)
{
	qsort(v, n, sizeof(*v), path_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k && v[k - 1].path == v[i].path) {
			v[k - 1].calls += v[i].calls;
			v[k - 1].bytes += v[i].bytes;
		} else {
			v[k++] = v[i];
		}
	}
	return k;
}

/*
 * A random trie in which call paths are defined again under new ids (as
 * when the recorder's cache lets go of them), below defined-again parents
 * too, with nodes left undefined (a cut trace), a parent with many
 * children and allocations from every kind of id: the stacks must be
 * exactly the call paths, each once, with the figures of all its ids.
 * (The recorder ids are random, so undefined ones are also used as stacks.)
 */
static void test_canonical_random(void **state)
{
	enum { NODES = 40000, ALLOCS = 100000, LOGICAL = 12000 };
	struct mt_node *nd = calloc(NODES, sizeof(*nd));
	uint32_t *lparent = calloc(LOGICAL, sizeof(*lparent)), *rep = calloc(LOGICAL, sizeof(*rep));
	uint64_t *lip = calloc(LOGICAL, sizeof(*lip));
	struct path_sum *want = calloc(ALLOCS, sizeof(*want)), *got;
	uint32_t n_logical = 1;  /* logical node 0: the root, represented by node 0 */
	srand(31337);
	/* each recorder node is a logical node (a call path) defined once more */
	for (uint32_t id = 1; id < NODES; id++) {
		if (rand() % 50 == 0)
			continue;  /* undefined */
		uint32_t l;
		if (n_logical < LOGICAL && (n_logical < 10 || rand() % 3)) {
			l = n_logical++;
			/* the root and paths 1 and 2 get many children, with ips in common */
			lparent[l] = (uint32_t)(rand() % (rand() % 4 ? l : l < 3 ? l : 3));
			lip[l] = 0x400000 + (uint64_t)(rand() % 256) * 16;     /* siblings may share an ip */
		} else {
			l = 1 + (uint32_t)(rand() % (n_logical - 1));
		}
		uint32_t p = lparent[l] ? rep[lparent[l]] : 0;  /* the latest id of the parent path */
		if (lparent[l] && !p)
			continue;  /* its parent path has no id yet */
		if (rand() % 100 == 0) {  /* below an undefined node: a path of its own */
			nd[id] = (struct mt_node){ .ip = lip[l], .parent = id - 1 };
			continue;
		}
		nd[id] = (struct mt_node){ .ip = lip[l], .parent = p };
		rep[l] = id;
	}
	struct mt_trace tr = { .nodes = nd, .n_nodes = NODES, .ended = 1, .ns_per_tick = 1.0 };
	struct mt_replay *r = mt_replay_new(NULL, ALLOCS);
	for (int i = 0; i < ALLOCS; i++) {
		uint32_t id = rand() % 100 == 0 ? NODES + (uint32_t)(rand() % 5) : (uint32_t)(rand() % NODES);
		struct mt_event e = { .t = (uint64_t)i, .ptr = 0x10000ull + (uint64_t)i * 64,
		                      .size = 1 + (uint64_t)(rand() % 100), .stack = id,
		                      .type = MT_E_ALLOC, .func = MT_EV_MALLOC };
		assert_int_equal(mt_replay_event(&e, r), 0);
		want[i] = (struct path_sum){ recorder_path(&tr, id), 1, e.size };
	}
	struct mt_analysis *a = finish(r, &tr);
	size_t n_want = path_merge(want, ALLOCS);
	assert_int_equal(a->n_stacks, n_want);
	got = calloc(a->n_stacks, sizeof(*got));
	for (size_t i = 0; i < a->n_stacks; i++)
		got[i] = (struct path_sum){ canonical_path(a, a->stacks[i].node),
		                            a->stacks[i].st.calls, a->stacks[i].st.bytes };
	assert_int_equal(path_merge(got, a->n_stacks), n_want);  /* no call path twice */
	assert_memory_equal(got, want, n_want * sizeof(*got));
	/* canonical nodes: no (parent, ip) twice */
	struct path_sum *cn = calloc(a->n_cnodes, sizeof(*cn));
	for (size_t i = 1; i < a->n_cnodes; i++) {
		assert_true(a->cnodes[i].parent < i);
		cn[i - 1].path = canonical_path(a, (uint32_t)i);
	}
	assert_int_equal(path_merge(cn, a->n_cnodes - 1), a->n_cnodes - 1);
	check_sums(a);
	mt_analysis_free(a);
	free(cn);
	free(got);
	free(want);
	free(nd);
	free(lparent);
	free(rep);
	free(lip);
}

/* ---- top lists ---------------------------------------------------------- */

static uint64_t kind_value(const struct mt_stack *s, int k)
{
	const uint64_t v[MT_TOP_KINDS] = {
		[MT_TOP_PEAK] = s->st.peak_bytes, [MT_TOP_LEAKED] = s->st.leaked_bytes,
		[MT_TOP_CALLS] = s->st.calls, [MT_TOP_TEMPORARY] = s->st.temporary,
	};
	return v[k];
}

static const struct mt_stack *g_sort_stacks;
static int g_sort_kind;

static int by_rank(const void *x, const void *y)
{
	const struct mt_stack *a = &g_sort_stacks[*(const uint32_t *)x];
	const struct mt_stack *b = &g_sort_stacks[*(const uint32_t *)y];
	uint64_t va = kind_value(a, g_sort_kind), vb = kind_value(b, g_sort_kind);
	if (va != vb)
		return va > vb ? -1 : 1;
	return a->node < b->node ? -1 : a->node > b->node;
}

/* The bounded-heap top lists against a full sort, on random figures with many ties. */
static void test_top_lists(void **state)
{
	enum { N = 30000 };
	static const size_t sizes[] = { 0, 1, 7, 1000, N };
	static const unsigned tops[] = { 0, 1, 2, 5, 100, MT_TOP_MAX };
	struct mt_analysis a = { 0 };
	struct mt_stack *st = calloc(N, sizeof(*st));
	uint32_t *ref = calloc(N, sizeof(*ref));
	srand(2024);
	for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		for (size_t i = 0; i < sizes[z]; i++) {
			st[i].node = (uint32_t)((i * 7919) % 100003) + 1;  /* distinct, not in order */
			st[i].st.peak_bytes = (uint64_t)(rand() % 40) * (rand() % 3);
			st[i].st.leaked_bytes = rand() % 5 ? 0 : (uint64_t)rand();
			st[i].st.calls = 1 + (uint64_t)(rand() % 1000);
			st[i].st.temporary = (uint64_t)(rand() % 2);
		}
		a.stacks = st;
		a.n_stacks = sizes[z];
		for (size_t t = 0; t < sizeof(tops) / sizeof(tops[0]); t++) {
			assert_int_equal(mt_top_build(&a, tops[t]), 0);
			for (int k = 0; k < MT_TOP_KINDS; k++) {
				size_t m = 0;
				for (size_t i = 0; i < sizes[z]; i++)
					if (kind_value(&st[i], k))
						ref[m++] = (uint32_t)i;
				g_sort_stacks = st;
				g_sort_kind = k;
				qsort(ref, m, sizeof(*ref), by_rank);
				if (m > tops[t])
					m = tops[t];
				assert_int_equal(a.n_top[k], m);
				assert_memory_equal(a.top[k], ref, m * sizeof(*ref));
			}
		}
	}
	for (int k = 0; k < MT_TOP_KINDS; k++)
		free(a.top[k]);
	free(st);
	free(ref);
}

/* ---- whole traces ------------------------------------------------------- */

static char g_path[64];

static void write_trace(int cut)
{
	struct tb b;
	struct tb_chunk c0, c1;
	const char *argv[] = { "./server", "--port", "8080" };
	uint32_t skeys[] = { MT_S_RSS_BYTES, MT_S_VMHWM_BYTES, MT_S_RECORDER_BYTES };
	uint64_t svals[] = { 5000000, 6000000, 100000 };
	uint32_t stkeys[] = { MT_ST_EVENTS, MT_ST_BYTES_WRITTEN, MT_ST_RECORDER_PEAK_BYTES };
	uint64_t stvals[] = { 14, 1000, 200000 };

	tb_init(&b, 0);
	tb_process(&b, 4242, 1, 1700000000000000000ull, "/usr/bin/server", 3, argv, 4096);
	tb_clock(&b, 1000, 1000, 0);
	tb_thread(&b, 0, 4242, 1000, "main");
	tb_thread(&b, 1, 4243, 1000, "worker");
	tb_chunk_begin(&b, &c0, 0);
	tb_chunk_begin(&b, &c1, 1);
	tb_node(&c0, 1, 0, 0x401000);
	tb_node(&c0, 2, 1, 0x402000);
	tb_alloc(&c0, MT_EV_MALLOC, 1100, 4096, 2, 0x10000);
	tb_alloc(&c0, MT_EV_CALLOC, 1200, 100, 1, 0x20000);
	tb_free(&c0, 1300, 0x20000);                              /* temporary */
	tb_node(&c1, 3, 0, 0x401000);                             /* duplicate of 1 */
	tb_node(&c1, 4, 3, 0x402000);                             /* duplicate of 2 */
	tb_alloc(&c1, MT_EV_MALLOC, 1400, 1000, 4, 0x30000);
	tb_free(&c1, 1500, 0x10000);                              /* cross-thread */
	tb_realloc(&c1, MT_EV_REALLOC, 1600, 0x30000, 1601, 3000, 3, 0x40000);
	tb_alloc(&c0, MT_EV_MALLOC, 1700, 10, 2, 0x50000);
	tb_chunk_end(&b, &c0);
	tb_chunk_end(&b, &c1);
	tb_sample(&b, 1800, 3, skeys, svals);
	if (!cut) {
		tb_stats(&b, 3, stkeys, stvals);
		tb_end(&b, 2000, MT_END_EXIT);
	}
	tb_block_end(&b);
	snprintf(g_path, sizeof(g_path), "/tmp/test_analysis.%d.trace", (int)getpid());
	assert_int_equal(tb_write(&b, g_path), 0);
	tb_release(&b);
}

/* Analyzes g_path and returns the text report (caller frees). */
static char *report_text(struct mt_analysis **out_a, struct mt_trace **out_tr)
{
	struct mt_trace *tr;
	struct mt_analysis *a;
	char err[MT_ERR_LEN] = "", *text = NULL;
	size_t len = 0;
	if (mt_trace_open(g_path, &tr, err, NULL, NULL))
		fail_msg("open: %s", err);
	if (mt_analyze(tr, NULL, &a, err))
		fail_msg("analyze: %s", err);
	FILE *f = open_memstream(&text, &len);
	assert_int_equal(mt_report_text.write(a, f, NULL), 0);
	fclose(f);
	*out_a = a;
	*out_tr = tr;
	return text;
}

static uint64_t summary_value(const char *text, const char *prefix)
{
	char pat[128];
	snprintf(pat, sizeof(pat), "\n%s: ", prefix);
	const char *p = strstr(text, pat);
	if (!p)
		fail_msg("no line '%s' in:\n%s", prefix, text);
	return strtoull(p + strlen(pat), NULL, 10);
}

static void test_trace_report(void **state)
{
	struct mt_analysis *a;
	struct mt_trace *tr;
	write_trace(0);
	char *text = report_text(&a, &tr);
	assert_int_equal(a->alloc_calls, 5);
	assert_int_equal(a->free_calls, 2);
	assert_int_equal(a->temporary, 1);
	assert_int_equal(a->peak_bytes, 4096 + 1000);
	assert_int_equal(a->end_bytes, 3010);
	assert_int_equal(a->end_blocks, 2);
	assert_int_equal(a->peak_rss_bytes, 6000000);
	assert_int_equal(a->recorder_peak_bytes, 200000);
	assert_int_equal(a->n_threads, 2);
	/* stacks 2 and 4 are one call path: 4096 + 1000 at the peak */
	const struct mt_stack *s = stack_of(a, 0x402000);
	assert_non_null(s);
	assert_int_equal(s->st.peak_bytes, 5096);
	assert_int_equal(s->st.calls, 3);
	check_sums(a);

	assert_int_equal(summary_value(text, "calls to allocation functions"), 5);
	assert_int_equal(summary_value(text, "peak heap"), 5096);
	assert_int_equal(summary_value(text, "temporary allocations"), 1);
	assert_int_equal(summary_value(text, "leaked at exit"), 3010);
	assert_non_null(strstr(text, "\nleaked at exit: 3010 bytes in 2 blocks"));
	assert_non_null(strstr(text, "\npeak heap: 5096 bytes"));
	assert_non_null(strstr(text, "command:  ./server --port 8080"));
	assert_null(strstr(text, "WARNING"));
	for (char *line = text; line && *line; ) {
		char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		if (len > MT_REPORT_WIDTH)
			fail_msg("line wider than %d: %.*s", MT_REPORT_WIDTH, (int)len, line);
		line = nl ? nl + 1 : NULL;
	}
	if (getenv("MT_TEST_VERBOSE"))
		fputs(text, stdout);
	free(text);
	mt_analysis_free(a);
	mt_trace_close(tr);
	unlink(g_path);
}

static void test_trace_cut(void **state)
{
	struct mt_analysis *a;
	struct mt_trace *tr;
	write_trace(1);
	char *text = report_text(&a, &tr);
	assert_int_equal(a->end_kind, MT_ENDED_CUT);
	assert_non_null(strstr(text, "\nlive when the trace was cut: 3010 bytes in 2 blocks"));
	assert_null(strstr(text, "leaked at exit"));
	assert_non_null(strstr(text, "WARNING: the trace was cut"));
	free(text);
	mt_analysis_free(a);
	mt_trace_close(tr);
	unlink(g_path);
}

static void test_format(void **state)
{
	char b[MT_FMT_LEN];
	assert_string_equal(mt_fmt_size(b, 0), "0 B");
	assert_string_equal(mt_fmt_size(b, 1023), "1023 B");
	assert_string_equal(mt_fmt_size(b, 1024), "1.00 KiB");
	assert_string_equal(mt_fmt_size(b, 1234567), "1.18 MiB");
	assert_string_equal(mt_fmt_size(b, 1048575), "1.00 MiB");
	assert_string_equal(mt_fmt_count(b, 0), "0");
	assert_string_equal(mt_fmt_count(b, 1234567), "1,234,567");
	assert_string_equal(mt_fmt_count(b, 123), "123");
	assert_string_equal(mt_fmt_duration(b, 1500000000), "1.500 s");
	assert_string_equal(mt_fmt_percent(b, 1, 3), "33.3%");
	assert_string_equal(mt_fmt_percent(b, 1, 0), "-");
}

/* ---- benchmark ---------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * A service-like stream: most blocks die young on the thread that made
 * them, a slowly growing set stays live (window of `live` blocks).
 */
static int bench(uint64_t n_events, uint64_t window)
{
	enum { BATCH = 1 << 20 };
	for (int i = 1; i < 64; i++)
		g_nodes[i] = (struct mt_node){ 0x1000u * (unsigned)i, 0 };
	const struct mt_trace *tr = fake_trace(64);
	uint64_t *ring = calloc(window, sizeof(*ring)), x = 88172645463325252ull, t = 0, n = 0;
	struct mt_event *evs = calloc(BATCH, sizeof(*evs));
	struct mt_replay *r = mt_replay_new(NULL, n_events);
	double busy = 0;
	/* events are generated in batches outside the timed loop */
	while (n < n_events) {
		for (int i = 0; i < BATCH; i++) {
			struct mt_event *e = &evs[i];
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			uint64_t slot = x % window;
			e->t = ++t;
			e->thread_idx = (uint32_t)(x >> 40) & 7;
			if (ring[slot]) {
				e->type = MT_E_FREE; e->func = MT_EV_FREE; e->ptr = ring[slot]; e->size = 0;
				e->stack = 0;
				ring[slot] = 0;
			} else {
				e->type = MT_E_ALLOC; e->func = MT_EV_MALLOC;
				e->ptr = ring[slot] = 0x7f0000000000ull + ((x >> 8) & 0xffffffffff0ull) + 16;
				e->size = (x >> 50) & 1023;
				e->stack = 1 + (uint32_t)((x >> 20) % 63);
			}
		}
		double t0 = now_s();
		for (int i = 0; i < BATCH; i++)
			if (mt_replay_event(&evs[i], r))
				return 1;
		busy += now_s() - t0;
		n += BATCH;
	}
	double t1 = now_s();
	struct mt_analysis *a;
	char err[MT_ERR_LEN];
	if (mt_replay_finish(r, tr, NULL, &a, err))
		return 1;
	printf("replay core: %" PRIu64 " events, window %" PRIu64 " blocks: %.3f s, %.1f M events/s; "
	       "finish %.3f s; live at end %" PRIu64 "\n", n, window, busy, n / busy / 1e6,
	       now_s() - t1, a->end_blocks);
	mt_analysis_free(a);
	free(ring);
	free(evs);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
		uint64_t m = argc > 2 ? strtoull(argv[2], NULL, 10) : 40;
		return bench(m * 1000000, 1000) || bench(m * 1000000, 4000000);
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_basic),
		cmocka_unit_test(test_peak_per_stack),
		cmocka_unit_test(test_double_alloc),
		cmocka_unit_test(test_canonical_stacks),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_live_map_random),
		cmocka_unit_test(test_batches),
		cmocka_unit_test(test_canonical_random),
		cmocka_unit_test(test_top_lists),
		cmocka_unit_test(test_trace_report),
		cmocka_unit_test(test_trace_cut),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
