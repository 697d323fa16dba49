/*
 * Call-stack capture and interning.
 *
 * Capture: our own DWARF CFI unwinder (unwind.c): a lock-free cache of
 * frame rules plus an exact memo of the previous capture, 2-5x faster than
 * libunwind's unw_backtrace, which it falls back to for frames outside its
 * fast form.  Binaries without frame pointers unwind too.  Frames in the
 * recorder itself are dropped.
 *
 * Interning: stacks form a trie, as in heaptrack (src/track/tracetree.h):
 * node = (parent node, ip), and an event carries only its innermost node
 * id.  Three levels, cheapest first:
 *   1. a per-thread 2-way cache: 64-bit hash of the whole stack ->
 *      node id (a false hit needs a 64-bit hash collision between two
 *      stacks of one thread in one slot);
 *   2. the thread's previous trie walk: the outer frames a new stack shares
 *      with it reuse their node ids without any lookup (consecutive
 *      allocations usually differ only near the top);
 *   3. a global lock-free cache (parent, ip) -> id for the rest; a miss
 *      takes a lock, assigns a new id and writes an MT_EV_NODE definition
 *      into the thread's chunk.
 * Level 3 is a bounded cache, not a complete index: an evicted pair gets a
 * new id when seen again, and the reader merges equal definitions.  That
 * bounds the recorder's memory whatever the number of distinct stacks.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>
#include <sys/mman.h>
#include "record.h"

static uintptr_t self_lo, self_hi;

/* One slot: ip, then (parent << 32 | id).  Written under node_lock as
 * key = 0, ip, key; read lock-free as key, ip, key (equal keys bracket a
 * consistent ip, since an id is never reused for another pair). */
struct node_slot {
	uint64_t ip;
	uint64_t key;
};
static struct node_slot *node_table;
static pthread_mutex_t node_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t node_count;


void mt_stack_init(uintptr_t lo, uintptr_t hi)
{
	self_lo = lo;
	self_hi = hi;
	node_table = mt_mem_alloc(sizeof(struct node_slot) * MT_NODE_CACHE_SLOTS);
	/* read at random: 2 MiB pages spare the TLB misses (they were 30% of capture time) */
	if (node_table)
		madvise(node_table, sizeof(struct node_slot) * MT_NODE_CACHE_SLOTS, MADV_HUGEPAGE);
	unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
}

uint64_t mt_stack_nodes(void) { return __atomic_load_n(&node_count, __ATOMIC_RELAXED); }

static inline uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static inline struct node_slot *bucket(uint32_t parent, uint64_t ip)
{
	uint64_t h = mix64(ip * 0x9E3779B97F4A7C15ull + parent);
	return node_table + ((h & (MT_NODE_CACHE_SLOTS - 1)) & ~3ull);  /* 4 slots = 64 B */
}

static inline uint32_t table_find(const struct node_slot *b, uint32_t parent, uint64_t ip)
{
	for (int i = 0; i < 4; i++) {
		uint64_t k1 = __atomic_load_n(&b[i].key, __ATOMIC_ACQUIRE);
		if ((uint32_t)(k1 >> 32) != parent || !k1)
			continue;
		uint64_t v = __atomic_load_n(&b[i].ip, __ATOMIC_ACQUIRE);
		uint64_t k2 = __atomic_load_n(&b[i].key, __ATOMIC_ACQUIRE);
		if (k1 == k2 && v == ip)
			return (uint32_t)k1;
	}
	return 0;
}

static void table_store(struct node_slot *b, uint32_t parent, uint64_t ip, uint32_t id)
{
	int victim = (int)(ip >> 4) & 3;
	for (int i = 0; i < 4; i++) {
		if (!__atomic_load_n(&b[i].key, __ATOMIC_RELAXED)) {
			victim = i;
			break;
		}
	}
	__atomic_store_n(&b[victim].key, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&b[victim].ip, ip, __ATOMIC_RELEASE);
	__atomic_store_n(&b[victim].key, ((uint64_t)parent << 32) | id, __ATOMIC_RELEASE);
}

/* Appends the definition of node id to t's chunk (format.h: MT_EV_NODE). */
static void emit_node(struct mt_thread *t, uint32_t id, uint32_t parent, uint64_t ip)
{
	if (MT_UNLIKELY(t->pos >= t->limit))
		mt_thread_flush(t);
	uint8_t *p = t->pos;
	*p++ = MT_EV_NODE;
	p = mt_put_svarint(p, (int64_t)id - (int64_t)t->prev_node);
	p = mt_put_svarint(p, (int64_t)id - (int64_t)parent);
	p = mt_put_svarint(p, (int64_t)(ip - t->prev_ip));
	t->prev_node = id;
	t->prev_ip = ip;
	t->pos = p;
	t->n_events++;
}

static MT_COLD uint32_t node_insert(struct mt_thread *t, struct node_slot *b, uint32_t parent,
                                    uint64_t ip)
{
	pthread_mutex_lock(&node_lock);
	uint32_t id = table_find(b, parent, ip);
	if (!id) {
		id = ++node_count;
		table_store(b, parent, ip, id);
	}
	pthread_mutex_unlock(&node_lock);
	/* Defined by every thread that inserted it; a duplicate definition is harmless. */
	emit_node(t, id, parent, ip);
	mt_modules_note_ip(ip);
	return id;
}

static inline uint32_t trie_child(struct mt_thread *t, uint32_t parent, uint64_t ip)
{
	struct node_slot *b = bucket(parent, ip);
	uint32_t id = table_find(b, parent, ip);
	return id ? id : node_insert(t, b, parent, ip);
}

/* Interns frames f[0..n) (innermost first) and returns the innermost node. */
static uint32_t trie_walk(struct mt_thread *t, const uint64_t *f, uint32_t n)
{
	uint32_t common = 0, limit = n < t->last_n ? n : t->last_n;
	while (common < limit && t->last_ips[common] == f[n - 1 - common])
		common++;
	uint32_t node = common ? t->last_ids[common - 1] : 0;
	for (uint32_t k = common; k < n; k++) {
		uint64_t ip = f[n - 1 - k];
		node = trie_child(t, node, ip);
		t->last_ips[k] = ip;
		t->last_ids[k] = node;
	}
	t->last_n = n;
	return node;
}

/*
 * 64-bit hash of a stack.  Four independent lanes, so the multiplies of
 * consecutive frames overlap instead of forming one dependency chain
 * (a 22-frame chain of multiply-xor cost about 30 ns here).
 */
static inline uint64_t stack_hash(const uint64_t *f, uint32_t n)
{
	uint64_t h[4] = { n, 0x243F6A8885A308D3ull, 0x13198A2E03707344ull, 0xA4093822299F31D0ull };
	uint32_t i = 0;
	for (; i + 4 <= n; i += 4)
		for (int k = 0; k < 4; k++)
			h[k] = (h[k] ^ f[i + k]) * 0x9E3779B97F4A7C15ull;
	for (; i < n; i++)
		h[0] = (h[0] ^ f[i]) * 0x9E3779B97F4A7C15ull;
	return mix64(h[0] ^ (h[1] >> 1) ^ (h[2] >> 2) ^ (h[3] >> 3) ^ n) | 1;  /* never 0: empty slot */
}

/* Way of the 2-way whole-stack cache set that holds h, or NULL. */
static inline uint32_t scache_find(struct mt_thread *t, uint64_t h, uint32_t n, uint32_t *set)
{
	*set = (uint32_t)(h >> 40) & (MT_STACK_CACHE_SLOTS / 2 - 1);
	struct mt_scache_slot *w = &t->scache[2 * *set];
	if (w[0].hash == h && w[0].n == n)
		return w[0].id;
	if (w[1].hash == h && w[1].n == n) {
		struct mt_scache_slot tmp = w[0];  /* most recent first */
		w[0] = w[1];
		w[1] = tmp;
		return w[0].id;
	}
	return 0;
}

static inline void scache_put(struct mt_thread *t, uint32_t set, uint64_t h, uint32_t n, uint32_t id)
{
	struct mt_scache_slot *w = &t->scache[2 * set];
	w[1] = w[0];
	w[0] = (struct mt_scache_slot){ h, id, n };
}

uint32_t mt_stack_capture(struct mt_thread *t)
{
	int reused;
	int got = mt_unwind_capture(&t->unw, t->frames, MT_MAX_FRAMES, &reused);
	int s = 0;
	while (s < got && t->frames[s] >= self_lo && t->frames[s] < self_hi)
		s++;
	if (s >= got)
		return 0;
	const uint64_t *f = t->frames + s;
	uint32_t n = (uint32_t)(got - s), set;
	uint64_t h = stack_hash(f, n);
	uint32_t id = scache_find(t, h, n, &set);
	if (id)
		return id;
	id = trie_walk(t, f, n);
	scache_put(t, set, h, n, id);
	return id;
}
