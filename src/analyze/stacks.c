/*
 * Call stacks of an analysis: canonicalization of the recorder's trie,
 * per-stack sums, top lists, and symbolization of what gets printed.
 *
 * The recorder's dedup cache is bounded, so one (parent, ip) may appear
 * under several node ids.  We intern (canonical parent, ip) to give each
 * call path exactly one canonical node.  Nodes are resolved in id order:
 * a defined node's parent has a smaller id (the reader checks it), so the
 * parent is resolved first and no walk up the trie is needed.  A node whose
 * definition is missing (cut trace) continues in the "unknown" node
 * (root, ip 0), and so does a node whose parent id is not below its own
 * (which the reader never lets through; no cycle can form).
 *
 * A trace where every stack is new has tens of millions of nodes, and the
 * intern table is then far bigger than the caches: looked up one node after
 * the other, every node would wait for memory.  So resolution is a
 * pipeline.  The table is keyed by a node's *path hash*, a hash of the ips
 * from the root, computed from its parent's path hash: unlike (canonical
 * parent, ip) it is known long before the node's turn, without resolving
 * the nodes in between.  Equal call paths have equal path hashes, so it is
 * a valid hash of the key, and the key itself is still compared.  Each node
 * prefetches its table slot 2 * AHEAD nodes before its turn, and the
 * canonical node that slot's tag points to AHEAD nodes before.
 *
 * Canonical ids come in the order of the first recorder id defining each
 * path (plus the unknown node where first needed), so they are
 * reproducible; ties in top lists go to the smaller canonical id.
 *
 * Big arrays come from trace/bigmem.h (huge pages, no page-fault storms);
 * per node id the canonicalization needs 8 bytes (canonical id, path hash)
 * plus 12 for its table slot, all freed before the stacks are merged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "analyze/analysis.h"
#include "trace/bigmem.h"

#include <time.h>
static double DBG_now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
#define DBG_T(name) do { if (getenv("MT_DBG")) { double _n = DBG_now(); fprintf(stderr, "  %-14s %.3f\n", name, _n - DBG_last); DBG_last = _n; } } while (0)
static double DBG_last; static uint64_t DBG_res, DBG_probe, DBG_dup;
#define SYM_CHAIN MT_SYM_MAX_FRAMES  /* frames asked per address: its whole inline chain */
#define AHEAD     16                 /* nodes between pipeline stages */

struct mt_analysis_priv {
	struct mt_symbolizer *sym;
	int sym_tried;
	size_t stacks_bytes, cnodes_bytes;  /* mt_big sizes of a->stacks and a->cnodes */
};

struct canon {
	const struct mt_node *nd; size_t n_nd;  /* the recorder's trie */
	struct mt_cnode *cn; size_t n, cap;     /* canonical nodes, cn[0] the root; cap fixed */
	uint64_t *slot; uint64_t mask;          /* intern table: path hash << 32 | canonical id, 0 empty */
	unsigned shift;                         /* 32 - log2(table size): home = hash >> shift */
	uint32_t *canon;                        /* recorder id -> canonical id */
	uint32_t *ph;                           /* recorder id -> path hash */
	uint32_t unknown;                       /* canonical (root, 0), 0 until needed */
};

/* ---- canonicalization --------------------------------------------------- */

/* Path hash of a frame at ip below a node of path hash `up`. */
static inline uint32_t path_hash(uint32_t up, uint64_t ip)
{
	uint64_t h = (ip ^ (uint64_t)up << 29) * 0x9e3779b97f4a7c15ull;
	h ^= h >> 31;
	return (uint32_t)((h * 0xbf58476d1ce4e5b9ull) >> 32);
}
#define PH_UNKNOWN path_hash(0, 0)

static inline const uint64_t *home(const struct canon *c, uint32_t h)
{
	return &c->slot[h >> c->shift];
}

static uint32_t unknown(struct canon *c)
{
	if (!c->unknown) {
		c->unknown = (uint32_t)c->n++;
		c->cn[c->unknown] = (struct mt_cnode){ .ip = 0, .parent = 0 };
	}
	return c->unknown;
}

/* Stage 0: prefetches what the next stages read of node x's parent (often far back). */
static inline void stage_parent(const struct canon *c, uint32_t x)
{
	uint32_t p = c->nd[x].parent;
	if (p < x) {
		__builtin_prefetch(&c->ph[p]);
		__builtin_prefetch(&c->canon[p]);
	}
}

/* Stage 1: the path hash of node x; prefetches its table slot. */
static inline void stage_hash(struct canon *c, uint32_t x)
{
	const struct mt_node *m = &c->nd[x];
	if (!m->ip) {
		c->ph[x] = PH_UNKNOWN;
		return;
	}
	uint32_t up = m->parent < x ? c->ph[m->parent] : PH_UNKNOWN;
	uint32_t h = path_hash(up, m->ip);
	c->ph[x] = h;
	__builtin_prefetch(home(c, h));
}

/* Stage 2: prefetches the canonical node whose tag matches in node x's home slot. */
static inline void stage_peek(const struct canon *c, uint32_t x)
{
	uint32_t h = c->ph[x];
	uint64_t v = *home(c, h);
	if (v && (uint32_t)(v >> 32) == h)
		__builtin_prefetch(&c->cn[(uint32_t)v]);
}

/* Stage 3: interns node x as (canonical parent, ip). */
static inline void stage_resolve(struct canon *c, uint32_t x)
{
	const struct mt_node *m = &c->nd[x];
	if (!m->ip) {
		c->canon[x] = unknown(c);
		return;
	}
	uint32_t cp = m->parent < x ? c->canon[m->parent] : unknown(c);
	uint32_t h = c->ph[x];
	uint64_t i = (uint64_t)(home(c, h) - c->slot);
	DBG_res++;
	for (;; i = (i + 1) & c->mask) {
		uint64_t v = c->slot[i];
		DBG_probe++;
		if (!v)
			break;
		const struct mt_cnode *k = &c->cn[(uint32_t)v];
		if ((uint32_t)(v >> 32) == h && k->ip == m->ip && k->parent == cp) {
			c->canon[x] = (uint32_t)v;
			DBG_dup++;
			return;
		}
	}
	uint32_t id = (uint32_t)c->n++;
	c->cn[id] = (struct mt_cnode){ .ip = m->ip, .parent = cp };
	c->slot[i] = (uint64_t)h << 32 | id;
	c->canon[x] = id;
}

static void canon_release(struct canon *c)
{
	mt_big_free(c->slot, (c->mask + 1) * sizeof(*c->slot));
	mt_big_free(c->ph, c->n_nd * sizeof(*c->ph));
	mt_big_free(c->canon, c->n_nd * sizeof(*c->canon));
	mt_big_free(c->cn, c->cap * sizeof(*c->cn));
	c->slot = NULL;
	c->ph = c->canon = NULL;
	c->cn = NULL;
}

static int canon_init(struct canon *c, const struct mt_trace *tr)
{
	size_t n = tr->n_nodes, bits = 10;
	while (((size_t)1 << bits) < n + n / 2)  /* at most 2/3 full */
		bits++;
	memset(c, 0, sizeof(*c));
	c->nd = tr->nodes;
	c->n_nd = n;
	c->cap = n + 2;                           /* the root, the unknown node, one per other id */
	c->n = 1;
	c->mask = ((uint64_t)1 << bits) - 1;
	c->shift = 32 - (unsigned)bits;
	c->cn = mt_big_alloc(c->cap * sizeof(*c->cn));
	c->slot = mt_big_alloc((c->mask + 1) * sizeof(*c->slot));
	c->canon = mt_big_alloc(n * sizeof(*c->canon));
	c->ph = mt_big_alloc(n * sizeof(*c->ph));
	if (!c->cn || !c->slot || !c->canon || !c->ph) {
		canon_release(c);
		return -ENOMEM;
	}
	return 0;
}

/* Resolves every recorder node; c->canon[id] is then its canonical id. */
static void canon_run(struct canon *c)
{
	uint32_t n = (uint32_t)c->n_nd;
	if (!n)
		return;
	c->canon[0] = 0;
	c->ph[0] = 0;
	for (uint32_t x = 1; x < n + 3 * AHEAD; x++) {
		if (x < n)
			stage_parent(c, x);
		if (x > AHEAD && x - AHEAD < n)
			stage_hash(c, x - AHEAD);
		if (x > 2 * AHEAD && x - 2 * AHEAD < n)
			stage_peek(c, x - 2 * AHEAD);
		if (x > 3 * AHEAD && x - 3 * AHEAD < n)
			stage_resolve(c, x - 3 * AHEAD);
	}
}

/* ---- per-stack sums ----------------------------------------------------- */

static int active(const struct mt_stack_stats *s)
{
	return s->calls || s->leaked_blocks || s->peak_bytes;
}

static void add_stats(struct mt_stack_stats *d, const struct mt_stack_stats *s)
{
	d->calls += s->calls;
	d->bytes += s->bytes;
	d->temporary += s->temporary;
	d->peak_bytes += s->peak_bytes;
	d->leaked_bytes += s->leaked_bytes;
	d->leaked_blocks += s->leaked_blocks;
}

/* Canonical leaf of recorder node id. */
static uint32_t leaf_of(struct canon *c, uint32_t id)
{
	if (id == 0)
		return 0;
	return id < c->n_nd ? c->canon[id] : unknown(c);
}

/*
 * Sums a->stacks (one per recorder node that allocated) per canonical leaf,
 * in place: a stack keeps the place of the first of its slots.
 */
static int merge_stacks(struct mt_analysis *a, struct canon *c)
{
	size_t bytes = (c->n + 1) * sizeof(uint32_t);  /* + 1: unknown may be made below */
	uint32_t *first = mt_big_alloc(bytes);         /* canonical id -> stack + 1 */
	if (!first)
		return -ENOMEM;
	struct mt_stack *st = a->stacks;
	size_t k = 0;
	for (size_t i = 0; i < a->n_stacks; i++) {
		if (!active(&st[i].st))
			continue;
		uint32_t leaf = leaf_of(c, st[i].node);
		if (first[leaf]) {
			add_stats(&st[first[leaf] - 1].st, &st[i].st);
			continue;
		}
		first[leaf] = (uint32_t)k + 1;
		st[k] = st[i];
		st[k++].node = leaf;
	}
	a->n_stacks = k;
	mt_big_free(first, bytes);
	return 0;
}

/* ---- top lists ---------------------------------------------------------- */

static uint64_t top_value(const struct mt_stack *s, enum mt_top_kind k)
{
	switch (k) {
	case MT_TOP_PEAK:      return s->st.peak_bytes;
	case MT_TOP_LEAKED:    return s->st.leaked_bytes;
	case MT_TOP_CALLS:     return s->st.calls;
	case MT_TOP_TEMPORARY: return s->st.temporary;
	default:               return 0;
	}
}

/* Does stack x rank before stack y?  Larger value first; equal values by node id. */
static int ranks_before(const struct mt_stack *x, const struct mt_stack *y, enum mt_top_kind k)
{
	uint64_t vx = top_value(x, k), vy = top_value(y, k);
	return vx != vy ? vx > vy : x->node < y->node;
}

/*
 * The best `cap` stacks seen so far for one kind: a min-heap whose root
 * h[0] is the worst of them, the one a better stack replaces.
 */
struct top_heap {
	uint32_t *h;
	size_t n, cap;
	enum mt_top_kind kind;
};

static void top_sift_down(struct top_heap *t, const struct mt_stack *st, size_t i)
{
	uint32_t x = t->h[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= t->n)
			break;
		if (c + 1 < t->n && ranks_before(&st[t->h[c]], &st[t->h[c + 1]], t->kind))
			c++;  /* the worse child */
		if (!ranks_before(&st[x], &st[t->h[c]], t->kind))
			break;
		t->h[i] = t->h[c];
		i = c;
	}
	t->h[i] = x;
}

static void top_push(struct top_heap *t, const struct mt_stack *st, uint32_t x)
{
	size_t i = t->n++;
	while (i > 0 && ranks_before(&st[t->h[(i - 1) / 2]], &st[x], t->kind)) {
		t->h[i] = t->h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	t->h[i] = x;
}

/* Offers stack x (non-zero value v) to the heap. */
static inline void top_offer(struct top_heap *t, const struct mt_stack *st, uint32_t x, uint64_t v)
{
	if (t->n < t->cap) {
		top_push(t, st, x);
		return;
	}
	uint64_t worst = top_value(&st[t->h[0]], t->kind);
	if (v < worst || (v == worst && st[x].node > st[t->h[0]].node))
		return;  /* the common case once the heap is full */
	t->h[0] = x;
	top_sift_down(t, st, 0);
}

struct top_ctx {
	const struct mt_stack *stacks;
	enum mt_top_kind kind;
};

static int top_cmp(const void *x, const void *y, void *arg)
{
	const struct top_ctx *t = arg;
	const struct mt_stack *a = &t->stacks[*(const uint32_t *)x];
	const struct mt_stack *b = &t->stacks[*(const uint32_t *)y];
	return ranks_before(a, b, t->kind) ? -1 : ranks_before(b, a, t->kind);
}

int mt_top_build(struct mt_analysis *a, unsigned top_n)
{
	struct top_heap t[MT_TOP_KINDS];
	const struct mt_stack *st = a->stacks;
	for (int k = 0; k < MT_TOP_KINDS; k++) {
		free(a->top[k]);
		a->n_top[k] = 0;
		a->top[k] = malloc((top_n ? top_n : 1) * sizeof(uint32_t));
		t[k] = (struct top_heap){ .h = a->top[k], .cap = top_n, .kind = (enum mt_top_kind)k };
	}
	for (int k = 0; k < MT_TOP_KINDS; k++)
		if (!a->top[k])
			return -ENOMEM;
	for (size_t i = 0; i < a->n_stacks; i++) {
		for (int k = 0; k < MT_TOP_KINDS; k++) {
			uint64_t v = top_value(&st[i], (enum mt_top_kind)k);
			if (v)
				top_offer(&t[k], st, (uint32_t)i, v);
		}
	}
	for (int k = 0; k < MT_TOP_KINDS; k++) {
		struct top_ctx ctx = { st, (enum mt_top_kind)k };
		qsort_r(t[k].h, t[k].n, sizeof(uint32_t), top_cmp, &ctx);
		a->n_top[k] = t[k].n;
	}
	return 0;
}

/* ---- building ----------------------------------------------------------- */

int mt_stacks_build(struct mt_analysis *a, const struct mt_trace *tr,
                    struct mt_stack *st, size_t n, size_t st_bytes, unsigned top_n,
                    char err[MT_ERR_LEN])
{
	struct canon c;
	int rc = -ENOMEM;

	a->priv = calloc(1, sizeof(*a->priv));
	if (!a->priv) {
		mt_big_free(st, st_bytes);
		goto out;
	}
	a->stacks = st;
	a->n_stacks = n;
	a->priv->stacks_bytes = st_bytes;
	a->n_trie_nodes = tr->n_nodes;
	DBG_last = DBG_now();
	if (canon_init(&c, tr))
		goto out;
	DBG_T("init");
	canon_run(&c);
	DBG_T("canon_run");
	if (getenv("MT_DBG2")) { memset(c.slot, 0, (c.mask+1)*8); c.n = 1; c.unknown = 0; DBG_T("memset"); canon_run(&c); DBG_T("canon_run2"); }
	if (getenv("MT_DBG")) fprintf(stderr, "nodes %zu canonical %zu resolved %lu probes %lu dups %lu mask %lu\n", c.n_nd, c.n, DBG_res, DBG_probe, DBG_dup, c.mask);
	mt_big_free(c.slot, (c.mask + 1) * sizeof(*c.slot));  /* merging needs canon[] only */
	mt_big_free(c.ph, c.n_nd * sizeof(*c.ph));
	c.slot = NULL;
	c.ph = NULL;
	DBG_T("free");
	rc = merge_stacks(a, &c);
	DBG_T("merge");
	a->cnodes = c.cn;
	a->n_cnodes = c.n;
	a->priv->cnodes_bytes = c.cap * sizeof(*c.cn);
	c.cn = NULL;
	canon_release(&c);
	DBG_T("release");
	if (!rc)
		rc = mt_top_build(a, top_n);
	DBG_T("top");
out:
	if (rc)
		snprintf(err, MT_ERR_LEN, "out of memory while resolving call stacks");
	return rc;
}

/* ---- symbolized frames -------------------------------------------------- */

static int has_prefix(const char *s, const char *p)
{
	return s && strncmp(s, p, strlen(p)) == 0;
}

/* An allocation entry point of libc, seen when the recorder did not strip it. */
static int is_libc_alloc(const struct mt_frame *f)
{
	static const char *const names[] = {
		"malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign",
		"aligned_alloc", "memalign", "valloc", "pvalloc", "__libc_malloc",
		"__libc_calloc", "__libc_realloc", "__libc_memalign", "__libc_valloc",
		"__libc_pvalloc", "__posix_memalign", "_int_malloc", "_int_realloc",
		"_int_memalign", "tcache_init", "malloc_hook_ini", "_mid_memalign",
	};
	if (!has_prefix(f->module, "libc.so") && !has_prefix(f->module, "libc-"))
		return 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(f->function, names[i]) == 0)
			return 1;
	return 0;
}

static struct mt_symbolizer *symbolizer(const struct mt_analysis *a)
{
	struct mt_analysis_priv *p = a->priv;
	if (!p)
		return NULL;
	if (!p->sym_tried && a->trace) {
		p->sym_tried = 1;
		p->sym = mt_symbolizer_new(a->trace->modules, a->trace->n_modules);
	}
	return p->sym;
}

/* Symbolizes one address into chain[]; returns the entries (>= 1). */
static int symbolize_ip(const struct mt_analysis *a, uint64_t ip, struct mt_frame *chain)
{
	static const char unknown[] = "<unknown frames: stack definition lost>";
	struct mt_symbolizer *s = ip ? symbolizer(a) : NULL;
	int n = s ? mt_symbolize(s, ip, 1, chain, SYM_CHAIN) : 0;
	if (n >= 1)
		return n;
	memset(chain, 0, sizeof(*chain));
	chain->ip = ip;
	chain->function = ip ? "??" : unknown;
	return 1;
}

/* Frames every stack ends in, which say nothing: process and thread start-up. */
static int is_start_routine(const struct mt_frame *f)
{
	static const char *const names[] = {
		"_start", "__libc_start_main", "__libc_start_main_impl", "__libc_start_call_main",
		"__libc_start_main_alias_2", "start_thread", "clone", "clone3", "__clone",
		"__clone3", "__GI___clone3", "__GI___clone",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(f->function, names[i]) == 0)
			return 1;
	return 0;
}

/* Canonical nodes from `node` to the root, innermost first; returns how many. */
static size_t node_chain(const struct mt_analysis *a, uint32_t node, uint32_t *chain)
{
	size_t d = 0;
	for (; node && node < a->n_cnodes && d < MT_STACK_DEPTH_MAX; node = a->cnodes[node].parent)
		chain[d++] = node;
	return d;
}

int mt_analysis_stack_frames(const struct mt_analysis *a, uint32_t node,
                             struct mt_frame *out, int max, int *more)
{
	static uint32_t chain[MT_STACK_DEPTH_MAX];  /* not thread-safe, like the rest */
	struct mt_frame sym[SYM_CHAIN];
	int n = 0, kept_any = 0;
	size_t d = node_chain(a, node, chain), end = d;

	*more = 0;
	/* drop the start-up frames at the outer end, but never the whole stack */
	while (end > 1) {
		int k = symbolize_ip(a, a->cnodes[chain[end - 1]].ip, sym);
		if (!is_start_routine(&sym[k - 1]))
			break;
		end--;
	}
	for (size_t i = 0; i < end; i++) {
		int k = symbolize_ip(a, a->cnodes[chain[i]].ip, sym);
		const struct mt_frame *outer = &sym[k - 1];
		if (has_prefix(outer->module, "libmemtriage"))
			continue;
		if (!kept_any && is_libc_alloc(outer))
			continue;
		kept_any = 1;
		if (n + k > max) {
			if (n == 0 && max > 0) {  /* one huge inline chain: its innermost part and the function */
				memcpy(out, sym, (size_t)(max - 1) * sizeof(*sym));
				out[max - 1] = sym[k - 1];
				n = max;
			}
			*more = 1;
			break;
		}
		memcpy(&out[n], sym, (size_t)k * sizeof(*sym));
		n += k;
	}
	return n;
}

void mt_analysis_free(struct mt_analysis *a)
{
	if (!a)
		return;
	if (a->priv) {
		mt_symbolizer_free(a->priv->sym);
		mt_big_free(a->cnodes, a->priv->cnodes_bytes);
		mt_big_free(a->stacks, a->priv->stacks_bytes);
	}
	free(a->priv);
	for (int k = 0; k < MT_TOP_KINDS; k++)
		free(a->top[k]);
	free(a);
}
