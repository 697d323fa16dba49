/*
 * `memtriage sim plateau`: a service with a bounded LRU cache, the
 * "pooling plateau" that looks like a leak for a while: the live heap
 * rises while the cache warms up, then insertions evict the least recently
 * used entries and it stays level, however long requests continue.
 *
 * One request, on one of --workers threads (each serves one request at a
 * time, so --concurrency is the same thing):
 *
 *   malloc the body (--payload bytes), fill it
 *   key = a uniform draw from --keys keys (seed and request id decide it)
 *   cache_lookup: a hit moves the entry to the front of the LRU list and
 *     copies its value into the response
 *   on a miss, cache_build_entry mallocs the value (one block, header
 *     included, whose size depends on the key only: uniform in
 *     [entry-bytes/2, 3 entry-bytes/2]) and cache_insert_bounded links it
 *     in front, evicting (freeing) from the back while more than
 *     --cache-entries are held
 *   (hold --hold-ms with body and response alive)
 *   free response and body
 *
 * With the defaults (1000 entries of 16 KiB on average, 4000 keys) the
 * cache is full early in cycle 2 and holds about 16 MiB from then on; it
 * moves only as entries of different sizes replace each other (about 1%).
 * RSS follows with a lag: under glibc it creeps a few % more for a few
 * turnovers of the cache (entries of mixed sizes fragment the bins, and
 * each worker's arena settles at its own high-water mark), then levels:
 * bare on 2 cores, 16 19 20 20 20 20 20 20 MB over the 8 default cycles.
 * At exit the cache is freed (cache_clear): a memtriage report shows
 * nothing leaked (the workers run on stacks the workload maps, so glibc
 * frees their DTVs at join).  -v prints the model's cache bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/sim_int.h"

/* Defaults: about 4.5 s bare on 2 cores; warm-up in cycles 1-2. */
#define PL_DEF_CYCLES       8
#define PL_DEF_REQUESTS     1000
#define PL_DEF_WORKERS      4
#define PL_DEF_PAYLOAD      (16u << 10)
#define PL_DEF_HOLD_MS      2
#define PL_DEF_SEED         1
#define PL_DEF_ENTRIES      1000
#define PL_DEF_ENTRY_BYTES  (16u << 10)
#define PL_KEYS_PER_ENTRY   4           /* default --keys: 4 x --cache-entries */

#define PL_BUCKETS          (1u << 16)
#define PL_MAX_ENTRIES      (1ull << 24)
#define PL_MAX_ENTRY_BYTES  (1ull << 30)

struct pl_opts {
	struct mt_sim_common c;
	uint64_t entries;        /* cache capacity */
	uint64_t entry_bytes;    /* mean entry size */
	uint64_t keys;           /* key space; 0 = PL_KEYS_PER_ENTRY x entries */
};

/* One cache entry: a single malloc'd block of pl_entry_size(key) bytes. */
struct pl_entry {
	struct pl_entry *hnext;          /* bucket chain */
	struct pl_entry *prev, *next;    /* LRU list, most recent first */
	uint64_t key;
	size_t bytes;                    /* the whole block */
	char value[];
};

/* The bounded cache, under cache_lock; buckets static, entries on the heap. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pl_entry *cache_bucket[PL_BUCKETS];
static struct pl_entry *lru_head, *lru_tail;
static uint64_t cache_entries, cache_bytes, cache_peak_bytes;
static uint64_t n_hits, n_misses, n_evictions;

static const struct pl_opts *pl_opt;

static __attribute__((noreturn, cold)) void pl_oom(size_t bytes)
{
	mt_sim_printf(2, "memtriage: sim plateau: out of memory allocating %zu bytes\n", bytes);
	_exit(1);
}

static void *pl_malloc(size_t bytes)
{
	void *p = malloc(bytes);

	if (!p)
		pl_oom(bytes);
	return p;
}

static uint32_t pl_bucket(uint64_t key)
{
	return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 48);
}

/* Entry size for a key: uniform in [mean/2, 3 mean/2], header included. */
static size_t pl_entry_size(uint64_t key)
{
	uint64_t r = (pl_opt->c.seed * 0xd1342543de82ef95ull) ^ (key * 0x9e3779b97f4a7c15ull);
	uint64_t mean = pl_opt->entry_bytes;
	size_t sz = (size_t)mt_sim_rand_range(&r, mean / 2, mean + mean / 2);

	return sz < sizeof(struct pl_entry) ? sizeof(struct pl_entry) : sz;
}

/* ---- the LRU list and the map (cache_lock held) ------------------------- */

static void lru_unlink(struct pl_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		lru_tail = e->prev;
}

static void lru_push_front(struct pl_entry *e)
{
	e->prev = NULL;
	e->next = lru_head;
	if (lru_head)
		lru_head->prev = e;
	else
		lru_tail = e;
	lru_head = e;
}

static struct pl_entry *map_find(uint64_t key)
{
	struct pl_entry *e = cache_bucket[pl_bucket(key)];

	while (e && e->key != key)
		e = e->hnext;
	return e;
}

static void map_remove(struct pl_entry *e)
{
	struct pl_entry **pp = &cache_bucket[pl_bucket(e->key)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
}

/* Copies the start of e's value into resp (cache_lock held). */
static void pl_copy_value(const struct pl_entry *e, char *resp, size_t len)
{
	size_t vlen = e->bytes - sizeof *e;

	memcpy(resp, e->value, vlen < len ? vlen : len);
}

/* ---- the cache ---------------------------------------------------------- */

/* On a hit, moves the entry to the front and copies its value; returns 1. */
static __attribute__((noinline)) int cache_lookup(uint64_t key, char *resp, size_t len)
{
	struct pl_entry *e;

	pthread_mutex_lock(&cache_lock);
	e = map_find(key);
	if (e) {
		lru_unlink(e);
		lru_push_front(e);
		pl_copy_value(e, resp, len);
		n_hits++;
	} else {
		n_misses++;
	}
	pthread_mutex_unlock(&cache_lock);
	return e != NULL;
}

/* The value of a missed key, computed (filled) outside the lock. */
static __attribute__((noinline)) struct pl_entry *cache_build_entry(uint64_t key)
{
	size_t bytes = pl_entry_size(key);
	struct pl_entry *e = pl_malloc(bytes);

	e->key = key;
	e->bytes = bytes;
	memset(e->value, 'A' + (int)(key % 26), bytes - sizeof *e);
	return e;
}

/* Frees a chain of evicted entries (linked through hnext). */
static __attribute__((noinline)) void cache_free_evicted(struct pl_entry *e)
{
	while (e) {
		struct pl_entry *next = e->hnext;

		free(e);
		e = next;
	}
}

/*
 * Links e in front, unless another worker inserted its key meanwhile (then
 * e is freed), and evicts from the back while over capacity.  Copies the
 * value into resp.
 */
static __attribute__((noinline)) void cache_insert_bounded(struct pl_entry *e, char *resp,
							   size_t len)
{
	struct pl_entry *evicted = NULL, *had;

	pthread_mutex_lock(&cache_lock);
	had = map_find(e->key);
	if (had) {
		lru_unlink(had);
		lru_push_front(had);
		pl_copy_value(had, resp, len);
		e->hnext = NULL;
		evicted = e;        /* ours was not needed: free it below */
	} else {
		uint32_t b = pl_bucket(e->key);

		e->hnext = cache_bucket[b];
		cache_bucket[b] = e;
		lru_push_front(e);
		pl_copy_value(e, resp, len);
		cache_entries++;
		cache_bytes += e->bytes;
		if (cache_bytes > cache_peak_bytes)
			cache_peak_bytes = cache_bytes;
		while (cache_entries > pl_opt->entries) {
			struct pl_entry *old = lru_tail;

			lru_unlink(old);
			map_remove(old);
			cache_entries--;
			cache_bytes -= old->bytes;
			n_evictions++;
			old->hnext = evicted;
			evicted = old;
		}
	}
	pthread_mutex_unlock(&cache_lock);
	cache_free_evicted(evicted);
}

/* Frees every entry (at exit: the cache is no leak). */
static void cache_clear(void)
{
	pthread_mutex_lock(&cache_lock);
	while (lru_head) {
		struct pl_entry *e = lru_head;

		lru_head = e->next;
		free(e);
	}
	lru_tail = NULL;
	memset(cache_bucket, 0, sizeof cache_bucket);
	cache_entries = 0;
	cache_bytes = 0;
	pthread_mutex_unlock(&cache_lock);
}

/* ---- requests ----------------------------------------------------------- */

static void pl_serve(void *ctx, unsigned worker, uint64_t id)
{
	const struct pl_opts *o = pl_opt;
	uint64_t r = (o->c.seed * 0x2545f4914f6cdd1dull) ^ (id << 1);
	uint64_t key = mt_sim_rand(&r) % o->keys;
	size_t len = o->c.payload_bytes, resp_len = len / 4 ? len / 4 : 1;
	char *body = pl_malloc(len);
	char *resp = pl_malloc(resp_len);

	memset(body, 'a' + (int)(id % 26), len);
	if (!cache_lookup(key, resp, resp_len))
		cache_insert_bounded(cache_build_entry(key), resp, resp_len);
	mt_sim_sleep_ms(o->c.hold_ms);
	free(resp);
	free(body);
}

static void pl_end_cycle(void *ctx, uint64_t cycle)
{
	uint64_t n, bytes, hits, misses;

	if (!pl_opt->c.verbose)
		return;
	pthread_mutex_lock(&cache_lock);
	n = cache_entries;
	bytes = cache_bytes;
	hits = n_hits;
	misses = n_misses;
	pthread_mutex_unlock(&cache_lock);
	mt_sim_printf(2, "cycle %llu: model cache %llu bytes in %llu entries "
		      "(hits %llu, misses %llu so far)\n",
		      (unsigned long long)cycle, (unsigned long long)bytes,
		      (unsigned long long)n, (unsigned long long)hits,
		      (unsigned long long)misses);
}

static void pl_usage(FILE *f)
{
	fprintf(f,
		"usage: memtriage sim plateau [OPTIONS]\n\n"
		"A service with a bounded LRU cache: each request looks up a random key and,\n"
		"on a miss, builds the value and inserts it, evicting the least recently used\n"
		"entry once --cache-entries are held.  The live heap rises while the cache\n"
		"warms up, then stays level.  The cache is freed at exit (nothing leaks).\n"
		"Prints 'initial: rss=N MB' and after each cycle\n"
		"'cycle N: rss=N MB requests=N throughput=N req/s' on stdout.\n\n"
		"options:\n"
		"  --cycles N            cycles (default %d)\n"
		"  --requests N          requests per cycle (default %d)\n"
		"  --workers N           worker threads, each serving one request at a time\n"
		"                        (default %d); --concurrency N is the same\n"
		"  --payload BYTES       request body, K/M/G suffixes (default 16K)\n"
		"  --hold-ms MS          time a request holds its temporaries (default %d)\n"
		"  --seed N              seed of the keys and entry sizes (default %d)\n"
		"  --cache-entries N     cache capacity (default %d)\n"
		"  --entry-bytes BYTES   mean entry size; sizes are uniform in [1/2, 3/2] of\n"
		"                        it (default 16K)\n"
		"  --keys N              distinct keys requested, uniformly (default %d x the\n"
		"                        cache entries)\n"
		"  -v, --verbose         print the model's cache bytes after each cycle and at\n"
		"                        the end on stderr\n"
		"  -h, --help            print this help\n",
		PL_DEF_CYCLES, PL_DEF_REQUESTS, PL_DEF_WORKERS, PL_DEF_HOLD_MS, PL_DEF_SEED,
		PL_DEF_ENTRIES, PL_KEYS_PER_ENTRY);
}

int mt_sim_plateau(int argc, char **argv)
{
	struct pl_opts o = {
		.c = { .cycles = PL_DEF_CYCLES, .requests = PL_DEF_REQUESTS,
		       .workers = PL_DEF_WORKERS, .payload_bytes = PL_DEF_PAYLOAD,
		       .hold_ms = PL_DEF_HOLD_MS, .seed = PL_DEF_SEED },
		.entries = PL_DEF_ENTRIES, .entry_bytes = PL_DEF_ENTRY_BYTES,
	};
	const struct mt_sim_opt opts[] = {
		MT_SIM_COMMON_OPTS(&o.c),
		{ "cache-entries", 0, 1, PL_MAX_ENTRIES, &o.entries },
		{ "entry-bytes", 1, 1, PL_MAX_ENTRY_BYTES, &o.entry_bytes },
		{ "keys", 0, 1, UINT64_MAX / 2, &o.keys },
	};
	struct mt_sim_cycle_ops ops = { .serve = pl_serve, .end_cycle = pl_end_cycle };
	uint64_t peak, entries, bytes;
	int rc = mt_sim_getopt(argc, argv, opts, sizeof opts / sizeof opts[0], &o.c.verbose);

	if (rc == 1) {
		pl_usage(stdout);
		return 0;
	}
	if (rc)
		return rc;
	if (!o.keys)
		o.keys = o.entries * PL_KEYS_PER_ENTRY;
	pl_opt = &o;
	rc = mt_sim_run_cycles("plateau", &o.c, &ops);
	entries = cache_entries;
	bytes = cache_bytes;
	peak = cache_peak_bytes;
	cache_clear();
	if (o.c.verbose)
		mt_sim_printf(2, "model: cache_bytes=%llu cache_entries=%llu cache_peak_bytes=%llu "
			      "hits=%llu misses=%llu evictions=%llu (freed at exit)\n",
			      (unsigned long long)bytes, (unsigned long long)entries,
			      (unsigned long long)peak, (unsigned long long)n_hits,
			      (unsigned long long)n_misses, (unsigned long long)n_evictions);
	return rc;
}
