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
 * Interning looks among the children of the canonical parent: each
 * canonical node keeps its first KIDS children beside it (kids[]), the
 * rare further ones go to a hash table (more[]).  A trace where every
 * stack is new has tens of millions of nodes, far more than the caches
 * hold, yet most nodes are children of a node resolved moments before,
 * whose kids[] entry is still in cache; a global hash table would instead
 * cost each node a memory access (it did: twice the time).  For the other
 * nodes, whose parent lies far back (the second call site of a function,
 * or a call path the recorder defined again after its cache let go of
 * it), resolution is a pipeline: 3 * AHEAD nodes ahead the parent's
 * canonical id is fetched, 2 * AHEAD ahead its kids[] entry, AHEAD ahead
 * the children's ips (trace/prefetch.h says why not __builtin_prefetch).
 *
 * Canonical ids come in the order of the first recorder id defining each
 * path (plus the unknown node where first needed), so they are
 * reproducible; ties in top lists go to the smaller canonical id.
 *
 * Big arrays come from trace/bigmem.h (huge pages, no page-fault storms).
 * Per canonical node: 16 bytes of cnodes (kept) and 4 * KIDS of kids[];
 * per recorder id: 4 bytes of canon[].  All but cnodes are freed once the
 * stacks are merged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "analyze/analysis.h"
#include "trace/bigmem.h"
#include "trace/prefetch.h"

#define SYM_CHAIN  MT_SYM_MAX_FRAMES  /* frames asked per address: its whole inline chain */
#define AHEAD      16                 /* nodes between pipeline stages */
#define KIDS       3                  /* children kept beside a canonical node: 12 bytes */
#define MORE_BITS0 10                 /* first size of the table of further children */
#define NOINLINE   __attribute__((noinline))

struct mt_analysis_priv {
	struct mt_symbolizer *sym;
	int sym_tried;
	size_t stacks_bytes, cnodes_bytes;  /* mt_big sizes of a->stacks and a->cnodes */
};

struct canon {
	const struct mt_node *nd; size_t n_nd;  /* the recorder's trie */
	struct mt_cnode *cn; size_t n, cap;     /* canonical nodes, cn[0] the root; cap fixed */
	uint32_t (*kids)[KIDS];                 /* per canonical node: its first KIDS children */
	uint32_t *canon;                        /* recorder id -> canonical id */
	uint32_t *more; uint64_t mask;          /* the children beyond KIDS: canonical ids, 0 empty */
	size_t n_more;
	unsigned shift;                         /* 64 - log2(size of more) */
	uint32_t unknown;                       /* canonical (root, 0), 0 until needed */
};

/* ---- canonicalization --------------------------------------------------- */

static uint32_t unknown(struct canon *c)
{
	if (!c->unknown) {
		c->unknown = (uint32_t)c->n++;
		c->cn[c->unknown] = (struct mt_cnode){ .ip = 0, .parent = 0 };
	}
	return c->unknown;
}

static inline uint64_t more_home(const struct canon *c, uint32_t cp, uint64_t ip)
{
	return ((ip ^ (uint64_t)cp << 32 ^ cp) * 0x9e3779b97f4a7c15ull) >> c->shift;
}

/* Doubles the overflow table.  0 or -ENOMEM. */
static int more_grow(struct canon *c)
{
	size_t size = 2 * (c->mask + 1);
	uint32_t *m = mt_big_alloc(size * sizeof(*m));
	if (!m)
		return -ENOMEM;
	uint32_t *old = c->more;
	size_t old_size = c->mask + 1;
	c->more = m;
	c->mask = size - 1;
	c->shift--;
	for (size_t i = 0; i < old_size; i++) {
		if (!old[i])
			continue;
		const struct mt_cnode *k = &c->cn[old[i]];
		uint64_t j = more_home(c, k->parent, k->ip);
		while (m[j])
			j = (j + 1) & c->mask;
		m[j] = old[i];
	}
	mt_big_free(old, old_size * sizeof(*old));
	return 0;
}

/* A new canonical node (cp, ip). */
static inline uint32_t cnode_new(struct canon *c, uint32_t cp, uint64_t ip)
{
	uint32_t id = (uint32_t)c->n++;
	c->cn[id] = (struct mt_cnode){ .ip = ip, .parent = cp };
	return id;
}

/* The child (cp, ip) of a node whose KIDS first children are all taken.  0 on out of memory. */
static NOINLINE uint32_t more_child(struct canon *c, uint32_t cp, uint64_t ip)
{
	uint64_t i = more_home(c, cp, ip);
	for (; c->more[i]; i = (i + 1) & c->mask) {
		const struct mt_cnode *k = &c->cn[c->more[i]];
		if (k->ip == ip && k->parent == cp)
			return c->more[i];
	}
	uint32_t id = cnode_new(c, cp, ip);
	c->more[i] = id;
	if (++c->n_more * 2 > c->mask + 1 && more_grow(c))
		return 0;
	return id;
}

/* The canonical child (cp, ip), made if new.  0 on out of memory (0 is never a child). */
static inline uint32_t child(struct canon *c, uint32_t cp, uint64_t ip)
{
	uint32_t *k = c->kids[cp];
	for (int i = 0; i < KIDS; i++) {
		if (!k[i])
			return k[i] = cnode_new(c, cp, ip);
		if (c->cn[k[i]].ip == ip)
			return k[i];
	}
	return more_child(c, cp, ip);
}

/*
 * The pipeline.  Stage s works on node i - s * AHEAD at step i, so when
 * node x is at stage s, the nodes up to x - (3 - s) * AHEAD - 1 are
 * resolved: a parent that far back (often: a call site's siblings come
 * long after it) has a canonical id, whose children the later stages can
 * fetch.  Nearer parents were resolved moments ago and are in cache.
 */
static inline uint32_t far_parent(const struct canon *c, uint32_t x, unsigned stage)
{
	uint32_t p = c->nd[x].parent, lag = (3 - stage) * AHEAD + 1;
	return x >= lag && p <= x - lag ? p : UINT32_MAX;
}

/* Stage 0: the parent's canonical id. */
static inline void stage_parent(const struct canon *c, uint32_t x)
{
	uint32_t p = c->nd[x].parent;
	if (p < x)
		mt_prefetch(&c->canon[p]);
}

/* Stage 1: the parent's children. */
static inline void stage_kids(const struct canon *c, uint32_t x)
{
	uint32_t p = far_parent(c, x, 1);
	if (p != UINT32_MAX)
		mt_prefetch(c->kids[c->canon[p]]);
}

/* Stage 2: the ips of the parent's children. */
static inline void stage_peek(const struct canon *c, uint32_t x)
{
	uint32_t p = far_parent(c, x, 2);
	if (p == UINT32_MAX)
		return;
	const uint32_t *k = c->kids[c->canon[p]];
	for (int i = 0; i < KIDS && k[i]; i++)
		mt_prefetch(&c->cn[k[i]]);
}

/* Stage 3: interns node x as (canonical parent, ip).  0 or -ENOMEM. */
static inline int stage_resolve(struct canon *c, uint32_t x)
{
	const struct mt_node *m = &c->nd[x];
	if (!m->ip) {
		c->canon[x] = unknown(c);
		return 0;
	}
	uint32_t cp = m->parent < x ? c->canon[m->parent] : unknown(c);
	return (c->canon[x] = child(c, cp, m->ip)) ? 0 : -ENOMEM;
}

static void canon_release(struct canon *c)
{
	mt_big_free(c->more, (c->mask + 1) * sizeof(*c->more));
	mt_big_free(c->kids, c->cap * sizeof(*c->kids));
	mt_big_free(c->canon, c->n_nd * sizeof(*c->canon));
	mt_big_free(c->cn, c->cap * sizeof(*c->cn));
	c->more = NULL;
	c->kids = NULL;
	c->canon = NULL;
	c->cn = NULL;
}

static int canon_init(struct canon *c, const struct mt_trace *tr)
{
	size_t n = tr->n_nodes;
	memset(c, 0, sizeof(*c));
	c->nd = tr->nodes;
	c->n_nd = n;
	c->cap = n + 2;                           /* the root, the unknown node, one per other id */
	c->n = 1;
	c->mask = (1u << MORE_BITS0) - 1;
	c->shift = 64 - MORE_BITS0;
	c->cn = mt_big_alloc(c->cap * sizeof(*c->cn));
	c->kids = mt_big_alloc(c->cap * sizeof(*c->kids));
	c->canon = mt_big_alloc(n * sizeof(*c->canon));
	c->more = mt_big_alloc((c->mask + 1) * sizeof(*c->more));
	if (!c->cn || !c->kids || !c->canon || !c->more) {
		canon_release(c);
		return -ENOMEM;
	}
	return 0;
}

/* Resolves every recorder node; c->canon[id] is then its canonical id.  0 or -ENOMEM. */
static int canon_run(struct canon *c)
{
	uint32_t n = (uint32_t)c->n_nd;
	if (!n)
		return 0;
	c->canon[0] = 0;
	for (uint32_t i = 1; i < n + 3 * AHEAD; i++) {
		if (i < n)
			stage_parent(c, i);
		if (i > AHEAD && i - AHEAD < n)
			stage_kids(c, i - AHEAD);
		if (i > 2 * AHEAD && i - 2 * AHEAD < n)
			stage_peek(c, i - 2 * AHEAD);
		if (i > 3 * AHEAD && i - 3 * AHEAD < n && stage_resolve(c, i - 3 * AHEAD))
			return -ENOMEM;
	}
	return 0;
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

/* The figures of a slot, its peak resolved (analysis.h, struct mt_replay_slot). */
static struct mt_stack_stats slot_stats(const struct mt_replay_slot *s, uint32_t epoch)
{
	return (struct mt_stack_stats){
		.calls = s->calls, .bytes = s->bytes, .temporary = s->temporary,
		.peak_bytes = s->epoch == epoch ? s->at_peak : s->live_bytes,
		.leaked_bytes = s->live_bytes, .leaked_blocks = s->live_blocks,
	};
}

/*
 * Turns the replay's slots, one per recorder node that allocated, into
 * a->stacks, one per canonical leaf, in place: a stack takes the place of
 * the first of its slots, which is never after the slots summed into it.
 * The memory changes type on the way, through a union (C11 6.5.2.3).
 */
static int merge_stacks(struct mt_analysis *a, struct canon *c, uint32_t epoch)
{
	size_t bytes = (c->n + 1) * sizeof(uint32_t);  /* + 1: unknown may be made below */
	uint32_t *first = mt_big_alloc(bytes);         /* canonical id -> stack + 1 */
	if (!first)
		return -ENOMEM;
	union cell {
		struct mt_replay_slot sl;
		struct mt_stack st;
	} *cell = (void *)a->stacks;
	size_t k = 0;
	for (size_t i = 0; i < a->n_stacks; i++) {
		const struct mt_replay_slot s = cell[i].sl;
		struct mt_stack out = { .node = leaf_of(c, s.node), .st = slot_stats(&s, epoch) };
		if (!active(&out.st))
			continue;
		if (first[out.node]) {
			add_stats(&cell[first[out.node] - 1].st.st, &out.st);
			continue;
		}
		first[out.node] = (uint32_t)k + 1;
		cell[k++].st = out;
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
	for (size_t i = 0; top_n && i < a->n_stacks; i++) {
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

_Static_assert(sizeof(struct mt_replay_slot) == sizeof(struct mt_stack), "slots become stacks");

int mt_stacks_build(struct mt_analysis *a, const struct mt_trace *tr,
                    struct mt_replay_slot *sl, size_t n, size_t sl_bytes, uint32_t epoch,
                    unsigned top_n, char err[MT_ERR_LEN])
{
	struct canon c;
	int rc = -ENOMEM;

	a->priv = calloc(1, sizeof(*a->priv));
	if (!a->priv) {
		mt_big_free(sl, sl_bytes);
		goto out;
	}
	a->stacks = (void *)sl;  /* mt_analysis_free() frees it; merge_stacks() makes it stacks */
	a->n_stacks = n;
	a->priv->stacks_bytes = sl_bytes;
	a->n_trie_nodes = tr->n_nodes;
	if (canon_init(&c, tr))
		goto out;
	if (canon_run(&c)) {
		canon_release(&c);
		goto out;
	}
	mt_big_free(c.more, (c.mask + 1) * sizeof(*c.more));  /* merging needs canon[] only */
	mt_big_free(c.kids, c.cap * sizeof(*c.kids));
	c.more = NULL;
	c.kids = NULL;
	rc = merge_stacks(a, &c, epoch);
	a->cnodes = c.cn;
	a->n_cnodes = c.n;
	a->priv->cnodes_bytes = c.cap * sizeof(*c.cn);
	c.cn = NULL;
	canon_release(&c);
	if (!rc)
		rc = mt_top_build(a, top_n);
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
	free(a->timeline);
	free(a->verdict);
	mt_marks_free(a->marks);
	free(a);
}
