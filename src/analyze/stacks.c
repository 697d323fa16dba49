/*
 * Call stacks of an analysis: canonicalization of the recorder's trie,
 * per-stack sums, top lists, and symbolization of what gets printed.
 *
 * The recorder's dedup cache is bounded, so one (parent, ip) may appear
 * under several node ids.  We intern (canonical parent, ip) to give each
 * call path exactly one canonical node, resolving a node's ancestors
 * first and memoizing every node resolved.  A node whose definition is
 * missing (cut trace) or whose parent chain is longer than
 * MT_STACK_DEPTH_MAX (a cycle in a corrupt trace) continues in the
 * "unknown" node: (root, ip 0).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "analyze/analysis.h"

#define UNSET     UINT32_MAX
#define HASH_MUL  0x9e3779b97f4a7c15ull
#define SYM_CHAIN MT_SYM_MAX_FRAMES  /* frames asked per address: its whole inline chain */

struct mt_analysis_priv {
	struct mt_symbolizer *sym;
	int sym_tried;
};

struct canon {
	const struct mt_trace *tr;
	struct mt_cnode *cn; size_t n, cap;   /* canonical nodes, cn[0] the root */
	uint32_t *slot; uint64_t mask; unsigned shift;  /* interning: canonical id, 0 = empty */
	uint32_t *memo;                       /* trie node id -> canonical id, UNSET */
	uint32_t *chain;                      /* MT_STACK_DEPTH_MAX ids being resolved */
	uint32_t unknown;                     /* canonical (root, 0), 0 until needed */
};

/* ---- interning ---------------------------------------------------------- */

static uint64_t cn_hash(const struct canon *c, uint32_t parent, uint64_t ip)
{
	return ((ip ^ ((uint64_t)parent << 40 | parent)) * HASH_MUL) >> c->shift;
}

static int intern_grow(struct canon *c)
{
	unsigned bits = 64 - c->shift + 1;
	uint32_t *s = calloc((size_t)1 << bits, sizeof(*s));
	if (!s)
		return -ENOMEM;
	free(c->slot);
	c->slot = s;
	c->mask = ((uint64_t)1 << bits) - 1;
	c->shift = 64 - bits;
	for (uint32_t id = 1; id < c->n; id++) {
		uint64_t i = cn_hash(c, c->cn[id].parent, c->cn[id].ip);
		while (c->slot[i])
			i = (i + 1) & c->mask;
		c->slot[i] = id;
	}
	return 0;
}

/* Canonical id of (parent, ip); 0 on out of memory (0 is never a child). */
static uint32_t intern(struct canon *c, uint32_t parent, uint64_t ip)
{
	uint64_t i = cn_hash(c, parent, ip);
	for (; c->slot[i]; i = (i + 1) & c->mask) {
		const struct mt_cnode *n = &c->cn[c->slot[i]];
		if (n->ip == ip && n->parent == parent)
			return c->slot[i];
	}
	if (c->n == c->cap) {
		size_t cap = c->cap * 2;
		struct mt_cnode *cn = realloc(c->cn, cap * sizeof(*cn));
		if (!cn || cap > UINT32_MAX)
			return 0;
		c->cn = cn;
		c->cap = cap;
	}
	uint32_t id = (uint32_t)c->n++;
	c->cn[id].ip = ip;
	c->cn[id].parent = parent;
	c->slot[i] = id;
	if (c->n * 2 > c->mask + 1 && intern_grow(c))
		return 0;
	return id;
}

static int canon_init(struct canon *c, const struct mt_trace *tr)
{
	size_t n = tr->n_nodes + 2, bits = 10;
	while (((size_t)1 << bits) < 2 * n)
		bits++;
	memset(c, 0, sizeof(*c));
	c->tr = tr;
	c->cap = n;
	c->n = 1;
	c->cn = calloc(n, sizeof(*c->cn));
	c->slot = calloc((size_t)1 << bits, sizeof(*c->slot));
	c->memo = malloc((tr->n_nodes + 1) * sizeof(*c->memo));
	c->chain = malloc(MT_STACK_DEPTH_MAX * sizeof(*c->chain));
	c->mask = ((uint64_t)1 << bits) - 1;
	c->shift = 64 - (unsigned)bits;
	if (!c->cn || !c->slot || !c->memo || !c->chain)
		return -ENOMEM;
	memset(c->memo, 0xff, (tr->n_nodes + 1) * sizeof(*c->memo));
	return 0;
}

static void canon_release(struct canon *c)
{
	free(c->cn);
	free(c->slot);
	free(c->memo);
	free(c->chain);
}

static int node_defined(const struct mt_trace *tr, uint32_t id)
{
	return id < tr->n_nodes && tr->nodes[id].ip != 0;
}

/* Where a walk up from a trie node stops: root, a resolved node, or unknown. */
static uint32_t walk_up(struct canon *c, uint32_t id, size_t *depth)
{
	const struct mt_trace *tr = c->tr;
	size_t d = 0;
	for (;;) {
		if (id == 0) {
			*depth = d;
			return 0;
		}
		if (!node_defined(tr, id) || d == MT_STACK_DEPTH_MAX)
			break;
		if (c->memo[id] != UNSET) {
			*depth = d;
			return c->memo[id];
		}
		c->chain[d++] = id;
		id = tr->nodes[id].parent;
	}
	*depth = d;
	if (!c->unknown)
		c->unknown = intern(c, 0, 0);
	return c->unknown ? c->unknown : UNSET;
}

/* Canonical id of trie node `id`; UNSET on out of memory. */
static uint32_t resolve(struct canon *c, uint32_t id)
{
	size_t d;
	uint32_t base = walk_up(c, id, &d);
	if (base == UNSET)
		return UNSET;
	while (d--) {
		uint32_t n = c->chain[d];
		base = intern(c, base, c->tr->nodes[n].ip);
		if (!base)
			return UNSET;
		c->memo[n] = base;
	}
	return base;
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

/* Sums st[] per canonical leaf into a->stacks. */
static int sum_stacks(struct mt_analysis *a, struct canon *c,
                      const struct mt_stack_stats *st, size_t n, uint32_t *leaf)
{
	struct mt_stack_stats *cs = calloc(c->n, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (leaf[i] != UNSET)
			add_stats(&cs[leaf[i]], &st[i]);
	size_t k = 0;
	for (size_t i = 0; i < c->n; i++)
		k += active(&cs[i]);
	a->stacks = calloc(k ? k : 1, sizeof(*a->stacks));
	if (!a->stacks) {
		free(cs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (!active(&cs[i]))
			continue;
		a->stacks[a->n_stacks].node = (uint32_t)i;
		a->stacks[a->n_stacks++].st = cs[i];
	}
	free(cs);
	return 0;
}

/* Canonical leaf per trie node with figures, UNSET for the others. */
static uint32_t *resolve_leaves(struct canon *c, const struct mt_stack_stats *st, size_t n)
{
	uint32_t *leaf = malloc((n ? n : 1) * sizeof(*leaf));
	if (!leaf)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		leaf[i] = active(&st[i]) ? resolve(c, (uint32_t)i) : UNSET;
		if (active(&st[i]) && leaf[i] == UNSET) {
			free(leaf);
			return NULL;
		}
	}
	return leaf;
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

struct top_ctx {
	const struct mt_stack *stacks;
	enum mt_top_kind kind;
};

/* Larger value first; equal values by node id, so reports are reproducible. */
static int top_cmp(const void *x, const void *y, void *arg)
{
	const struct top_ctx *t = arg;
	const struct mt_stack *a = &t->stacks[*(const uint32_t *)x];
	const struct mt_stack *b = &t->stacks[*(const uint32_t *)y];
	uint64_t va = top_value(a, t->kind), vb = top_value(b, t->kind);
	if (va != vb)
		return va > vb ? -1 : 1;
	return a->node < b->node ? -1 : a->node > b->node;
}

static int build_top(struct mt_analysis *a, enum mt_top_kind k, unsigned top_n)
{
	uint32_t *idx = malloc((a->n_stacks ? a->n_stacks : 1) * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	size_t m = 0;
	for (size_t i = 0; i < a->n_stacks; i++)
		if (top_value(&a->stacks[i], k))
			idx[m++] = (uint32_t)i;
	struct top_ctx ctx = { a->stacks, k };
	qsort_r(idx, m, sizeof(*idx), top_cmp, &ctx);
	a->top[k] = idx;
	a->n_top[k] = m < top_n ? m : top_n;
	return 0;
}

int mt_stacks_build(struct mt_analysis *a, const struct mt_trace *tr,
                    const struct mt_stack_stats *st, size_t n, unsigned top_n,
                    char err[MT_ERR_LEN])
{
	struct canon c;
	uint32_t *leaf = NULL;
	int rc = -ENOMEM;

	a->priv = calloc(1, sizeof(*a->priv));
	if (!a->priv || canon_init(&c, tr))
		goto out;
	a->n_trie_nodes = tr->n_nodes;
	leaf = resolve_leaves(&c, st, n);
	if (!leaf || sum_stacks(a, &c, st, n, leaf))
		goto out;
	for (int k = 0; k < MT_TOP_KINDS; k++)
		if (build_top(a, (enum mt_top_kind)k, top_n))
			goto out;
	a->cnodes = c.cn;
	a->n_cnodes = c.n;
	c.cn = NULL;
	rc = 0;
out:
	if (rc)
		snprintf(err, MT_ERR_LEN, "out of memory while resolving call stacks");
	free(leaf);
	if (a->priv)
		canon_release(&c);
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
	if (a->priv)
		mt_symbolizer_free(a->priv->sym);
	free(a->priv);
	free(a->cnodes);
	free(a->stacks);
	for (int k = 0; k < MT_TOP_KINDS; k++)
		free(a->top[k]);
	free(a);
}
