/*
 * Replay core: the live heap and the per-stack figures, updated once per
 * event in the reader's global order.  This is the hot loop of `report`
 * (tens of millions of events), so the per-event path allocates nothing,
 * touches few cache lines and keeps its rare branches out of line.
 *
 * Live heap: open addressing with linear probing over 24-byte slots, a
 * power-of-two capacity kept at most 5/8 full, deletion by backward shift
 * so no tombstones slow later probes.  ptr 0 marks an empty slot: a
 * successful allocation never returns NULL.
 *
 * Hashing keeps neighbours together: the page of a pointer picks a random
 * run of LOCAL_GRAINS slots (multiplicative hashing, Fibonacci constant,
 * high bits) and its offset in the page, in LOCAL_GRAIN-byte steps, the
 * slot in the run.  Blocks that an allocator hands out one after the other
 * lie side by side, so their slots share cache lines instead of costing a
 * memory access each (a sixth of the replay time on the bigtree anchor, 2 M
 * blocks live).  Heaps that pack blocks closer than a grain make long runs,
 * so the map counts its probes and, past LOCAL_PROBES per operation,
 * rehashes the whole pointer once and for all (scatter mode).  Either way
 * the figures are the same.
 *
 * Big live heaps still do not fit in cache, so events come in batches
 * (mt_replay_events): while processing event i we prefetch the home slot
 * of event i + AHEAD, and for a free at i + AHEAD/2, whose slot has
 * arrived by then, the figures of the stack that allocated the block.
 * (trace/prefetch.h says why not __builtin_prefetch.)
 *
 * Per-stack figures live in a dense array of slots, one per recorder node
 * id that allocated, in order of first use, reached through idx[node id]
 * (4 bytes per id: most trie nodes are inner frames that never allocate).
 * A live block names its slot, so a free goes there directly.  A slot has
 * the size of struct mt_stack: stacks.c turns the array into the
 * analysis's stacks in place, merging the ids of one call path.
 *
 * Peak per stack in O(1): the global peak moves forward only, so a stack's
 * live bytes at the (latest) peak is its live value at its first change
 * after that peak, or its final value if it did not change after it.  The
 * replay counts peaks (epoch, +1 each time the peak rises); a slot keeps
 * the epoch of its last change and saves its live value when a change
 * finds that the epoch moved since (see live_add/sub).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "analyze/analysis.h"
#include "trace/bigmem.h"
#include "trace/prefetch.h"

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define NOINLINE    __attribute__((noinline, cold))
#define HOT_INLINE  inline __attribute__((always_inline))  /* the per-event path, one loop */

#define LIVE_INIT_BITS  16            /* 64 Ki slots, 1.5 MiB */
#define LIVE_QUAD_BITS  20            /* from 1 Mi slots (24 MiB) on, the map grows fourfold */
#define LIVE_MAX_BITS   32            /* MT_LIVE_MAX blocks fill 2^32 slots to 1/2 */
#define HASH_MUL        0x9e3779b97f4a7c15ull
#define LOCAL_PAGE      12            /* log2 of the span whose blocks share a run of slots */
#define LOCAL_GRAIN     5             /* log2 bytes per slot of the run: glibc's smallest chunk */
#define LOCAL_GRAINS    (1u << (LOCAL_PAGE - LOCAL_GRAIN))
#define LOCAL_WINDOW    (1u << 16)    /* operations between looks at the probe count */
#define LOCAL_PROBES    4             /* mean extra probes per operation that end local hashing */
#define PROGRESS_EVERY  (1u << 20)    /* events between progress calls */
#define AHEAD           16            /* events between a prefetch and its use */
#define HUGE_TABLE      (4u << 20)    /* bytes from which the live map uses mmap */
#define SLOTS_INIT      256           /* stack slots first allocated */
#ifndef EPOCH_MAX
#define EPOCH_MAX       UINT32_MAX    /* test_analysis sets it tiny, to exercise rebase_epochs() */
#endif

struct live {
	uint64_t ptr;                 /* 0 = empty slot */
	uint64_t size;
	uint32_t stack;               /* stack slot of the allocation */
	uint32_t thread;              /* thread index of the allocation */
};

struct livemap {
	struct live *slot;
	uint64_t mask;                /* capacity - 1 */
	uint64_t count;
	uint64_t grow_at;             /* count that triggers doubling */
	unsigned shift;               /* 64 - log2(capacity) */
	unsigned scatter;             /* 0: local hashing; 1: the whole pointer hashed */
	uint64_t ops, probes;         /* finds and inserts; extra probes they took */
	uint64_t review_at;           /* ops at which the probe count is looked at */
};

_Static_assert(LIVE_INIT_BITS >= LOCAL_PAGE - LOCAL_GRAIN, "a run fits the smallest map");
_Static_assert((1ull << LIVE_MAX_BITS) == 2 * MT_LIVE_MAX, "the biggest map holds MT_LIVE_MAX");

struct thread_state {
	uint64_t last_ptr;            /* the thread's latest allocation */
	uint64_t seen;
};

struct mt_replay {
	struct livemap live;
	uint32_t *idx; uint32_t n_idx;             /* node id -> slot + 1 (0: none yet) */
	struct mt_replay_slot *slot; size_t n_slot, cap_slot;
	struct thread_state *thr; uint32_t n_thr;

	uint64_t seq;                 /* events so far */
	uint64_t last_t;
	uint64_t live_bytes, live_blocks;
	uint64_t peak_bytes, peak_blocks, peak_t;
	uint32_t epoch;               /* peaks so far, modulo the rebase in new_epoch() */

	uint64_t calls[MT_N_ALLOC_FUNCS], failed[MT_N_ALLOC_FUNCS], func_bytes[MT_N_ALLOC_FUNCS];
	uint64_t free_calls, bytes, temporary;
	uint64_t unknown_frees, double_allocs, unknown_func;
	uint64_t hist_calls[MT_HIST_BUCKETS], hist_bytes[MT_HIST_BUCKETS];

	/* timeline hook: live heap at sample ticks (mt_replay_timeline) */
	uint64_t next_tick;           /* tl_ticks[tl_done], UINT64_MAX when none is pending */
	uint64_t *tl_ticks, *tl_bytes, *tl_blocks, *tl_calls, *tl_abytes;
	size_t tl_n, tl_done;

	/* markers hook: live heap at marker ticks (mt_replay_marks), per-slot at a diff's marks */
	uint64_t *mk_ticks;
	struct mt_marks_replay mk;    /* mk.n markers, mk_done of them passed */
	size_t mk_done, mk_first, mk_second;
	uint64_t *snap_bytes, *snap_blocks; size_t n_snap;  /* slots' live at mk_first */

	void (*progress)(uint64_t, uint64_t, void *);
	void *progress_arg;
	uint64_t total_events;
	char err[MT_ERR_LEN];
};

/* ---- live heap map ------------------------------------------------------ */

static inline uint64_t lm_home(const struct livemap *m, uint64_t ptr)
{
	if (unlikely(m->scatter))
		return (ptr * HASH_MUL) >> m->shift;
	uint64_t run = ((ptr >> LOCAL_PAGE) * HASH_MUL) >> m->shift;
	return run ^ ((ptr >> LOCAL_GRAIN) & (LOCAL_GRAINS - 1));  /* stays in run's aligned block */
}

/*
 * Zeroed slots.  Big tables come from mmap with transparent huge pages
 * asked for: random probes over a table of hundreds of MiB otherwise miss
 * the TLB as well as the cache.
 */
static struct live *lm_alloc(size_t n)
{
	size_t bytes = n * sizeof(struct live);
	if (bytes < HUGE_TABLE)
		return calloc(n, sizeof(struct live));
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, bytes, MADV_HUGEPAGE);  /* a hint: failure is harmless */
	return p;
}

static void lm_free(struct live *slot, size_t n)
{
	if (n * sizeof(struct live) < HUGE_TABLE)
		free(slot);
	else if (slot)
		munmap(slot, n * sizeof(struct live));
}

/* An empty map of 2^bits slots (bits >= LOCAL_PAGE - LOCAL_GRAIN), hashing as `scatter` says. */
static int lm_init(struct livemap *m, unsigned bits, unsigned scatter)
{
	memset(m, 0, sizeof(*m));
	m->slot = lm_alloc((size_t)1 << bits);
	if (!m->slot)
		return -ENOMEM;
	m->mask = ((uint64_t)1 << bits) - 1;
	m->shift = 64 - bits;
	m->grow_at = (m->mask + 1) / 2 + (m->mask + 1) / 8;
	m->scatter = scatter;
	m->review_at = LOCAL_WINDOW;
	return 0;
}

/* Moves every entry into a new table of 2^bits slots; on failure the old table is kept. */
static int lm_rehash(struct livemap *m, unsigned bits, unsigned scatter)
{
	struct livemap n;
	if (lm_init(&n, bits, scatter))
		return -ENOMEM;
	for (uint64_t i = 0; i <= m->mask; i++) {
		if (!m->slot[i].ptr)
			continue;
		uint64_t j = lm_home(&n, m->slot[i].ptr);
		while (n.slot[j].ptr)
			j = (j + 1) & n.mask;
		n.slot[j] = m->slot[i];
	}
	n.count = m->count;
	n.ops = n.review_at = m->ops;
	lm_free(m->slot, m->mask + 1);
	*m = n;
	return 0;
}

/*
 * Grows the table: doubles it, or quadruples it from LIVE_QUAD_BITS on,
 * where every step costs a rehash of millions of entries into fresh
 * memory.  On failure the old table is kept.
 */
static NOINLINE int lm_grow(struct livemap *m, char *err)
{
	unsigned cur = 64 - m->shift, bits = cur + (cur >= LIVE_QUAD_BITS ? 2 : 1);
	if (bits > LIVE_MAX_BITS)
		bits = LIVE_MAX_BITS;
	if (bits <= cur) {
		snprintf(err, MT_ERR_LEN, "more than %llu blocks live at once (limit MT_LIVE_MAX)",
		         (unsigned long long)MT_LIVE_MAX);
		return -E2BIG;
	}
	if (lm_rehash(m, bits, m->scatter)) {
		snprintf(err, MT_ERR_LEN, "out of memory for %llu live blocks",
		         (unsigned long long)m->count);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Every LOCAL_WINDOW operations: too many probes means the heap packs
 * blocks closer than local hashing spreads them, so the map scatters.  Out
 * of memory for that, it stays as it is: slower, never wrong.
 */
static NOINLINE void lm_review(struct livemap *m)
{
	if (!m->scatter && m->probes > (uint64_t)LOCAL_PROBES * LOCAL_WINDOW)
		lm_rehash(m, 64 - m->shift, 1);
	m->probes = 0;
	m->review_at = m->ops + LOCAL_WINDOW;
}

/* The slot holding ptr (ptr != 0), or NULL. */
static inline struct live *lm_find(struct livemap *m, uint64_t ptr)
{
	uint64_t i = lm_home(m, ptr);
	m->ops++;
	for (;;) {
		struct live *e = &m->slot[i];
		if (e->ptr == ptr)
			return e;
		if (!e->ptr)
			return NULL;
		i = (i + 1) & m->mask;
		m->probes++;
	}
}

/* The slot holding ptr, or the empty slot where it goes (e->ptr == 0). */
static inline struct live *lm_slot(struct livemap *m, uint64_t ptr)
{
	uint64_t i = lm_home(m, ptr);
	m->ops++;
	for (;;) {
		struct live *e = &m->slot[i];
		if (e->ptr == ptr || !e->ptr)
			return e;
		i = (i + 1) & m->mask;
		m->probes++;
	}
}

/* Removes e, moving later entries of its cluster back so no probe chain breaks. */
static inline void lm_erase(struct livemap *m, struct live *e)
{
	uint64_t i = (uint64_t)(e - m->slot), j = i;
	for (;;) {
		j = (j + 1) & m->mask;
		uint64_t p = m->slot[j].ptr;
		if (!p)
			break;
		/* the entry at j may fill i when its home is not in (i, j] */
		if (((j - lm_home(m, p)) & m->mask) >= ((j - i) & m->mask)) {
			m->slot[i] = m->slot[j];
			i = j;
		}
	}
	m->slot[i].ptr = 0;
	m->count--;
}

/* ---- stack slots and per-thread arrays ---------------------------------- */

static NOINLINE int grow_idx(struct mt_replay *r, uint32_t id)
{
	if (id >= MT_STACK_ID_MAX) {
		snprintf(r->err, MT_ERR_LEN, "call-stack id %u exceeds the limit %u (corrupt trace?)",
		         id, MT_STACK_ID_MAX);
		return -E2BIG;
	}
	uint32_t n = r->n_idx ? r->n_idx : 1024;
	while (n <= id)
		n *= 2;
	uint32_t *x = mt_big_grow(r->idx, (size_t)r->n_idx * sizeof(*x), (size_t)n * sizeof(*x));
	if (!x) {
		snprintf(r->err, MT_ERR_LEN, "out of memory for %u call-stack nodes", n);
		return -ENOMEM;
	}
	r->idx = x;
	r->n_idx = n;
	return 0;
}

static NOINLINE int grow_slots(struct mt_replay *r)
{
	size_t n = r->cap_slot ? 2 * r->cap_slot : SLOTS_INIT;
	struct mt_replay_slot *s = mt_big_grow(r->slot, r->cap_slot * sizeof(*s), n * sizeof(*s));
	if (!s) {
		snprintf(r->err, MT_ERR_LEN, "out of memory for %zu call stacks", n);
		return -ENOMEM;
	}
	r->slot = s;
	r->cap_slot = n;
	return 0;
}

/* The slot of node id sid (< n_idx), made on its first allocation; -1 on error. */
static inline int64_t slot_of(struct mt_replay *r, uint32_t sid)
{
	uint32_t k = r->idx[sid];
	if (likely(k))
		return k - 1;
	if (unlikely(r->n_slot == r->cap_slot) && grow_slots(r))
		return -1;
	r->slot[r->n_slot].node = sid;  /* the rest is zero: fresh memory */
	r->slot[r->n_slot].epoch = r->epoch;
	r->idx[sid] = (uint32_t)++r->n_slot;
	return (int64_t)r->n_slot - 1;
}

static NOINLINE int grow_thr(struct mt_replay *r, uint32_t idx)
{
	if (idx >= MT_THREAD_IDX_MAX) {
		snprintf(r->err, MT_ERR_LEN, "thread index %u exceeds the limit %u (corrupt trace?)",
		         idx, MT_THREAD_IDX_MAX);
		return -E2BIG;
	}
	uint32_t n = r->n_thr ? r->n_thr : 64;
	while (n <= idx)
		n *= 2;
	struct thread_state *t = realloc(r->thr, (size_t)n * sizeof(*t));
	if (!t) {
		snprintf(r->err, MT_ERR_LEN, "out of memory for %u threads", n);
		return -ENOMEM;
	}
	memset(t + r->n_thr, 0, (size_t)(n - r->n_thr) * sizeof(*t));
	r->thr = t;
	r->n_thr = n;
	return 0;
}

/* ---- live accounting ---------------------------------------------------- */

/*
 * The peak rises: from now on every slot's at-peak value is its live value
 * until it changes, which a slot says by an epoch other than r->epoch.
 * Before the epoch wraps (every 2^32 rises of the peak), every slot is set
 * to say so explicitly, with epoch 0, and the replay goes on from epoch 1.
 */
static NOINLINE void rebase_epochs(struct mt_replay *r)
{
	for (size_t i = 0; i < r->n_slot; i++)
		r->slot[i].epoch = 0;
	r->epoch = 0;
}

static inline void new_epoch(struct mt_replay *r)
{
	if (unlikely(r->epoch >= EPOCH_MAX))
		rebase_epochs(r);
	r->epoch++;
}

static inline void save_at_peak(const struct mt_replay *r, struct mt_replay_slot *s)
{
	if (s->epoch != r->epoch)
		s->at_peak = s->live_bytes;
	s->epoch = r->epoch;
}

static inline void live_add(struct mt_replay *r, struct mt_replay_slot *s, uint64_t size, uint64_t t)
{
	save_at_peak(r, s);
	s->live_bytes += size;
	s->live_blocks++;
	r->live_bytes += size;
	r->live_blocks++;
	if (r->live_bytes > r->peak_bytes) {
		r->peak_bytes = r->live_bytes;
		r->peak_blocks = r->live_blocks;
		r->peak_t = t;
		new_epoch(r);
	}
}

static inline void live_sub(struct mt_replay *r, struct mt_replay_slot *s, uint64_t size)
{
	save_at_peak(r, s);
	s->live_bytes -= size;
	s->live_blocks--;
	r->live_bytes -= size;
	r->live_blocks--;
}

/* ---- events ------------------------------------------------------------- */

static NOINLINE void count_failed(struct mt_replay *r, unsigned f, uint64_t size)
{
	if (size)
		r->failed[f]++;
}

/* The block at e is replaced by a new allocation of the same address. */
static NOINLINE void drop_stale(struct mt_replay *r, struct live *e)
{
	r->double_allocs++;
	live_sub(r, &r->slot[e->stack], e->size);
}

static HOT_INLINE int on_alloc(struct mt_replay *r, const struct mt_event *ev)
{
	unsigned f = ev->func;
	uint32_t sid = ev->stack, tid = ev->thread_idx;
	uint64_t size = ev->size, ptr = ev->ptr;
	int rc;

	if (unlikely(f == 0 || f >= MT_N_ALLOC_FUNCS)) {
		r->unknown_func++;
		f = 0;
	}
	if (unlikely(sid >= r->n_idx) && (rc = grow_idx(r, sid)))
		return rc;
	if (unlikely(tid >= r->n_thr) && (rc = grow_thr(r, tid)))
		return rc;
	int64_t k = slot_of(r, sid);
	if (unlikely(k < 0))
		return -ENOMEM;
	struct mt_replay_slot *s = &r->slot[k];
	r->calls[f]++;
	s->calls++;
	r->thr[tid].seen = 1;
	if (unlikely(!ptr)) {
		count_failed(r, f, size);
		return 0;
	}
	unsigned b = mt_hist_bucket(size);
	r->hist_calls[b]++;
	r->hist_bytes[b] += size;
	r->func_bytes[f] += size;
	r->bytes += size;
	s->bytes += size;
	r->thr[tid].last_ptr = ptr;

	if (unlikely(r->live.count >= r->live.grow_at) && (rc = lm_grow(&r->live, r->err)))
		return rc;
	if (unlikely(r->live.ops >= r->live.review_at))
		lm_review(&r->live);
	struct live *e = lm_slot(&r->live, ptr);
	if (unlikely(e->ptr))
		drop_stale(r, e);
	else
		r->live.count++;
	e->ptr = ptr;
	e->size = size;
	e->stack = (uint32_t)k;
	e->thread = tid;
	live_add(r, s, size, ev->t);
	return 0;
}

static HOT_INLINE int on_free(struct mt_replay *r, const struct mt_event *ev)
{
	int is_free = ev->func == MT_EV_FREE;
	r->free_calls += is_free;
	if (unlikely(!ev->ptr))
		return 0;
	struct live *e = lm_find(&r->live, ev->ptr);
	if (unlikely(!e)) {
		r->unknown_frees++;
		return 0;
	}
	struct mt_replay_slot *s = &r->slot[e->stack];
	/* e->thread == tid implies tid < n_thr: that thread made the allocation */
	if (is_free && e->thread == ev->thread_idx && r->thr[e->thread].last_ptr == ev->ptr) {
		r->temporary++;
		s->temporary++;
	}
	live_sub(r, s, e->size);
	lm_erase(&r->live, e);
	return 0;
}

static NOINLINE void report_progress(struct mt_replay *r)
{
	r->progress(r->seq, r->total_events, r->progress_arg);
}

/* Diff's first mark: every slot's live figures now (O(slots), twice per replay at most). */
static NOINLINE void snap_first(struct mt_replay *r)
{
	size_t n = r->n_slot ? r->n_slot : 1;
	r->snap_bytes = malloc(n * sizeof(uint64_t));
	r->snap_blocks = malloc(n * sizeof(uint64_t));
	if (!r->snap_bytes || !r->snap_blocks) {
		r->mk.oom = 1;
		return;
	}
	for (size_t i = 0; i < r->n_slot; i++) {
		r->snap_bytes[i] = r->slot[i].live_bytes;
		r->snap_blocks[i] = r->slot[i].live_blocks;
	}
	r->n_snap = r->n_slot;
}

/* Diff's second mark: each slot's change since the first (slots made since started at 0). */
static NOINLINE void snap_second(struct mt_replay *r)
{
	struct mt_marks_replay *m = &r->mk;
	size_t n = r->n_slot ? r->n_slot : 1;
	if (m->oom)
		return;
	m->node = malloc(n * sizeof(*m->node));
	m->d_bytes = malloc(n * sizeof(*m->d_bytes));
	m->d_blocks = malloc(n * sizeof(*m->d_blocks));
	if (!m->node || !m->d_bytes || !m->d_blocks) {
		m->oom = 1;
		return;
	}
	for (size_t i = 0; i < r->n_slot; i++) {
		const struct mt_replay_slot *s = &r->slot[i];
		int old = i < r->n_snap;
		m->node[i] = s->node;
		m->d_bytes[i] = (int64_t)(s->live_bytes - (old ? r->snap_bytes[i] : 0));
		m->d_blocks[i] = (int64_t)(s->live_blocks - (old ? r->snap_blocks[i] : 0));
	}
	m->n_slot = r->n_slot;
	m->first_bytes = r->snap_bytes;  /* handed over: the folded diff prints live at A and B */
	m->n_first = r->n_snap;
	r->snap_bytes = NULL;
	m->have_diff = 1;
}

/*
 * The event at `t` comes after one or more sample or marker ticks: those
 * saw the live heap as it is now, before this event.
 */
static NOINLINE void timeline_catch_up(struct mt_replay *r, uint64_t t)
{
	while (r->tl_done < r->tl_n && r->tl_ticks[r->tl_done] < t) {
		r->tl_bytes[r->tl_done] = r->live_bytes;
		r->tl_blocks[r->tl_done] = r->live_blocks;
		uint64_t calls = 0;
		for (unsigned f = 0; f < MT_N_ALLOC_FUNCS; f++)
			calls += r->calls[f];
		r->tl_calls[r->tl_done] = calls;
		r->tl_abytes[r->tl_done] = r->bytes;
		r->tl_done++;
	}
	while (r->mk_done < r->mk.n && r->mk_ticks[r->mk_done] < t) {
		r->mk.bytes[r->mk_done] = r->live_bytes;
		r->mk.blocks[r->mk_done] = r->live_blocks;
		if (r->mk_done == r->mk_first)
			snap_first(r);
		if (r->mk_done == r->mk_second)
			snap_second(r);
		r->mk_done++;
	}
	uint64_t a = r->tl_done < r->tl_n ? r->tl_ticks[r->tl_done] : UINT64_MAX;
	uint64_t b = r->mk_done < r->mk.n ? r->mk_ticks[r->mk_done] : UINT64_MAX;
	r->next_tick = a < b ? a : b;
}

static HOT_INLINE int process(struct mt_replay *r, const struct mt_event *ev)
{
	if (unlikely(ev->t > r->next_tick))
		timeline_catch_up(r, ev->t);
	uint64_t seq = ++r->seq;
	if (unlikely((seq & (PROGRESS_EVERY - 1)) == 0) && r->progress)
		report_progress(r);
	r->last_t = ev->t;
	if (ev->type == MT_E_ALLOC)
		return on_alloc(r, ev);
	return on_free(r, ev);
}

int mt_replay_event(const struct mt_event *ev, void *arg)
{
	return process(arg, ev);
}

/*
 * First stage: the cache lines of the live slot where ev's pointer starts
 * its probe, and of the slots after it, which a free moves back.
 */
static inline void prefetch_live(const struct mt_replay *r, const struct mt_event *ev)
{
	const struct live *slot = &r->live.slot[lm_home(&r->live, ev->ptr)];
	mt_prefetch(slot);
	mt_prefetch((const char *)slot + 64);
}

/* Second stage, for a free: the figures of the stack that allocated the block. */
static inline void prefetch_stack(const struct mt_replay *r, const struct mt_event *ev)
{
	if (ev->type != MT_E_FREE)
		return;
	const struct live *e = &r->live.slot[lm_home(&r->live, ev->ptr)];
	if (e->ptr == ev->ptr)  /* most blocks sit in their home slot */
		mt_prefetch(&r->slot[e->stack]);
}

int mt_replay_events(const struct mt_event *ev, size_t n, void *arg)
{
	struct mt_replay *r = arg;
	for (size_t i = 0; i < n && i < AHEAD; i++)
		prefetch_live(r, &ev[i]);
	for (size_t i = 0; i < n && i < AHEAD / 2; i++)
		prefetch_stack(r, &ev[i]);
	for (size_t i = 0; i < n; i++) {
		if (i + AHEAD < n)
			prefetch_live(r, &ev[i + AHEAD]);
		if (i + AHEAD / 2 < n)
			prefetch_stack(r, &ev[i + AHEAD / 2]);
		int rc = process(r, &ev[i]);
		if (unlikely(rc))
			return rc;
	}
	return 0;
}

/* ---- lifetime ----------------------------------------------------------- */

struct mt_replay *mt_replay_new(const struct mt_analysis_opts *opts, uint64_t total_events)
{
	struct mt_replay *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (lm_init(&r->live, LIVE_INIT_BITS, 0) || grow_idx(r, 0) || grow_slots(r) || grow_thr(r, 0)) {
		mt_replay_free(r);
		return NULL;
	}
	if (opts) {
		r->progress = opts->progress;
		r->progress_arg = opts->progress_arg;
	}
	r->total_events = total_events;
	r->next_tick = UINT64_MAX;
	return r;
}

int mt_replay_timeline(struct mt_replay *r, const uint64_t *ticks, size_t n)
{
	free(r->tl_ticks);
	free(r->tl_bytes);
	free(r->tl_blocks);
	free(r->tl_calls);
	free(r->tl_abytes);
	r->tl_n = r->tl_done = 0;
	r->next_tick = UINT64_MAX;
	r->tl_ticks = malloc((n + 1) * sizeof(uint64_t));
	r->tl_bytes = calloc(n + 1, sizeof(uint64_t));
	r->tl_blocks = calloc(n + 1, sizeof(uint64_t));
	r->tl_calls = calloc(n + 1, sizeof(uint64_t));
	r->tl_abytes = calloc(n + 1, sizeof(uint64_t));
	if (!r->tl_ticks || !r->tl_bytes || !r->tl_blocks || !r->tl_calls || !r->tl_abytes)
		return -ENOMEM;
	memcpy(r->tl_ticks, ticks, n * sizeof(uint64_t));
	r->tl_n = n;
	timeline_catch_up(r, 0);  /* next_tick: the first sample or marker tick */
	return 0;
}

int mt_replay_marks(struct mt_replay *r, const uint64_t *ticks, size_t n,
                    size_t snap_first_at, size_t snap_second_at)
{
	free(r->mk_ticks);
	free(r->mk.bytes);
	free(r->mk.blocks);
	r->mk.n = r->mk_done = 0;
	r->mk_ticks = malloc((n + 1) * sizeof(uint64_t));
	r->mk.bytes = calloc(n + 1, sizeof(uint64_t));
	r->mk.blocks = calloc(n + 1, sizeof(uint64_t));
	if (!r->mk_ticks || !r->mk.bytes || !r->mk.blocks)
		return -ENOMEM;
	memcpy(r->mk_ticks, ticks, n * sizeof(uint64_t));
	r->mk.n = n;
	r->mk_first = snap_first_at;
	r->mk_second = snap_second_at;
	timeline_catch_up(r, 0);
	return 0;
}

/* Frees what the markers hook holds that was not handed over. */
static void marks_release(struct mt_replay *r)
{
	free(r->mk_ticks);
	free(r->snap_bytes);
	free(r->snap_blocks);
	free(r->mk.bytes);
	free(r->mk.blocks);
	free(r->mk.node);
	free(r->mk.d_bytes);
	free(r->mk.d_blocks);
	free(r->mk.first_bytes);
	memset(&r->mk, 0, sizeof(r->mk));
	r->mk_ticks = NULL;
	r->snap_bytes = r->snap_blocks = NULL;
}

const char *mt_replay_error(const struct mt_replay *r)
{
	return r->err[0] ? r->err : NULL;
}

void mt_replay_free(struct mt_replay *r)
{
	if (!r)
		return;
	if (r->live.slot)
		lm_free(r->live.slot, r->live.mask + 1);
	mt_big_free(r->idx, (size_t)r->n_idx * sizeof(*r->idx));
	mt_big_free(r->slot, r->cap_slot * sizeof(*r->slot));
	free(r->thr);
	free(r->tl_ticks);
	free(r->tl_bytes);
	free(r->tl_blocks);
	free(r->tl_calls);
	free(r->tl_abytes);
	marks_release(r);
	free(r);
}

/* ---- hand-over to the analysis ------------------------------------------ */

static void copy_totals(struct mt_analysis *a, const struct mt_replay *r)
{
	memcpy(a->calls, r->calls, sizeof(a->calls));
	memcpy(a->failed, r->failed, sizeof(a->failed));
	memcpy(a->func_bytes, r->func_bytes, sizeof(a->func_bytes));
	memcpy(a->hist_calls, r->hist_calls, sizeof(a->hist_calls));
	memcpy(a->hist_bytes, r->hist_bytes, sizeof(a->hist_bytes));
	for (unsigned f = 0; f < MT_N_ALLOC_FUNCS; f++) {
		a->alloc_calls += r->calls[f];
		a->failed_calls += r->failed[f];
	}
	a->free_calls = r->free_calls;
	a->bytes_allocated = r->bytes;
	a->temporary = r->temporary;
	a->peak_bytes = r->peak_bytes;
	a->peak_blocks = r->peak_blocks;
	a->end_bytes = r->live_bytes;
	a->end_blocks = r->live_blocks;
	a->unknown_frees = r->unknown_frees;
	a->double_allocs = r->double_allocs;
	a->unknown_func = r->unknown_func;
	a->n_events = r->seq;
	for (uint32_t i = 0; i < r->n_thr; i++)
		a->n_threads += r->thr[i].seen != 0;
}

int mt_replay_finish(struct mt_replay *r, const struct mt_trace *tr,
                     const struct mt_analysis_opts *opts,
                     struct mt_analysis **out, char err[MT_ERR_LEN])
{
	struct mt_analysis *a = calloc(1, sizeof(*a));
	*out = NULL;
	if (!a) {
		snprintf(err, MT_ERR_LEN, "out of memory while analyzing");
		mt_replay_free(r);
		return -ENOMEM;
	}
	copy_totals(a, r);
	a->trace = tr;
	a->peak_t_ns = mt_trace_ns(tr, r->peak_t);
	uint64_t last_t = r->last_t;
	uint32_t epoch = r->epoch;
	timeline_catch_up(r, UINT64_MAX);  /* samples after the last event: the final heap */
	struct mt_tl_heap h = { r->tl_bytes, r->tl_blocks, r->tl_calls, r->tl_abytes, r->tl_n };
	if (mt_timeline_build(a, tr, &h)) {
		snprintf(err, MT_ERR_LEN, "out of memory while analyzing");
		mt_replay_free(r);
		mt_analysis_free(a);
		return -ENOMEM;
	}
	struct mt_replay_slot *sl = r->slot;
	size_t n = r->n_slot, bytes = r->cap_slot * sizeof(struct mt_replay_slot);
	struct mt_marks_replay mk = r->mk;
	memset(&r->mk, 0, sizeof(r->mk));  /* handed over, with the slots */
	r->slot = NULL;
	mt_replay_free(r);  /* the live map and the index go before stacks are built */
	int rc = mt_analysis_fill(a, tr, sl, n, bytes, epoch, last_t, opts, err);
	if (!rc && tr->n_markers && mt_marks_build(a, tr, &mk, opts)) {
		snprintf(err, MT_ERR_LEN, "out of memory while analyzing markers");
		rc = -ENOMEM;
	}
	free(mk.bytes);     /* mt_marks_build() frees them too; free(NULL) after it */
	free(mk.blocks);
	free(mk.node);
	free(mk.d_bytes);
	free(mk.d_blocks);
	free(mk.first_bytes);
	if (rc) {
		mt_analysis_free(a);
		return rc;
	}
	*out = a;
	return 0;
}
