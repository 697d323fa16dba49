/*
 * `memtriage sim leak`: a service with an unbounded cache, the classic
 * "leak" that is no bug in any one line: every response is memoised under
 * its request id in a global hash map that nothing ever evicts, and ids
 * never repeat, so no entry is ever hit or freed.
 *
 * One request, on one of --workers threads (each serves one request at a
 * time, so --concurrency is the same thing):
 *
 *   read_request      malloc the body (--payload bytes), fill it
 *   parse_request     split it into tokens: one small object (32-512 B)
 *                     per KiB of body, in a linked list
 *   render_response   malloc a response (a quarter of the body), fill it
 *                     from the tokens
 *   (hold --hold-ms with all of it alive: the response is being sent)
 *   cache_insert_unbounded
 *                     malloc ONE block of exactly --leak-bytes (entry
 *                     header + a copy of the response's start) and link it
 *                     into the map: this is the leak
 *   free tokens, response and body
 *
 * So the live heap grows by exactly --leak-bytes per request (requests x
 * leak-bytes per cycle, 4,096,000 bytes = 3.9 MiB with the defaults), all
 * of it allocated in cache_insert_unbounded, while everything else is
 * temporary.  Nothing else is left at exit: the map's buckets are a static
 * array, the workers run on stacks the workload maps (their DTVs are freed
 * at join), output goes through write(2); a memtriage report's "leaked at
 * exit" is therefore exactly cycles x requests x leak-bytes bytes in
 * cycles x requests blocks, which -v prints as the model's figures.
 * --leak-bytes 0 turns the leak off (a control: same work, no growth).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/sim_int.h"

/* Defaults: about 5 s bare on 2 cores, the live heap +3.9 MiB per cycle. */
#define LK_DEF_CYCLES       6
#define LK_DEF_REQUESTS     1000
#define LK_DEF_WORKERS      4
#define LK_DEF_PAYLOAD      (16u << 10)
#define LK_DEF_HOLD_MS      3
#define LK_DEF_SEED         1
#define LK_DEF_LEAK         4096

#define LK_BUCKETS          (1u << 16)
#define LK_MAX_LEAK         (1ull << 30)

struct lk_opts {
	struct mt_sim_common c;
	uint64_t leak_bytes;     /* per request; 0 = no leak */
};

/* One cache entry: a single malloc'd block of exactly leak_bytes. */
struct lk_entry {
	struct lk_entry *next;   /* bucket chain */
	uint64_t key;            /* request id */
	uint32_t len;            /* bytes of data */
	char data[];
};

/* A token of the parsed request. */
struct lk_token {
	struct lk_token *next;
	size_t len;
	char text[];
};

/*
 * The unbounded cache: static buckets, so the only heap it holds is its
 * entries, and counters of what it holds (under cache_lock).
 */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lk_entry *cache_bucket[LK_BUCKETS];
static uint64_t cache_entries, cache_bytes;

static const struct lk_opts *lk_opt;

static __attribute__((noreturn, cold)) void lk_oom(size_t bytes)
{
	mt_sim_printf(2, "memtriage: sim leak: out of memory allocating %zu bytes\n", bytes);
	_exit(1);
}

static void *lk_malloc(size_t bytes)
{
	void *p = malloc(bytes);

	if (!p)
		lk_oom(bytes);
	return p;
}

/*
 * Memoises the first bytes of a response under its request id, for ever:
 * nothing evicts, and ids never repeat.  The block is exactly `bytes`
 * long (>= sizeof(struct lk_entry)).  noinline: the leak's call stack must
 * name this function.
 */
static __attribute__((noinline)) void cache_insert_unbounded(uint64_t key, const char *resp,
							     size_t resp_len, size_t bytes)
{
	struct lk_entry *e = lk_malloc(bytes);
	size_t len = bytes - sizeof *e;
	uint64_t b = (key * 0x9e3779b97f4a7c15ull) >> 48;   /* 16 bits */

	e->key = key;
	e->len = (uint32_t)len;
	memcpy(e->data, resp, len < resp_len ? len : resp_len);
	if (len > resp_len)
		memset(e->data + resp_len, 0, len - resp_len);
	pthread_mutex_lock(&cache_lock);
	e->next = cache_bucket[b];
	cache_bucket[b] = e;
	cache_entries++;
	cache_bytes += bytes;
	pthread_mutex_unlock(&cache_lock);
}

static __attribute__((noinline)) char *read_request(uint64_t id, size_t len)
{
	char *body = lk_malloc(len);

	memset(body, 'a' + (int)(id % 26), len);
	return body;
}

static __attribute__((noinline)) struct lk_token *parse_request(const char *body, size_t len,
								 uint64_t *r)
{
	struct lk_token *head = NULL;
	size_t n = len / 1024 ? len / 1024 : 1, off = 0;

	for (size_t i = 0; i < n; i++) {
		size_t sz = mt_sim_rand_range(r, 32, 512), k = sz - sizeof(struct lk_token);
		struct lk_token *t = lk_malloc(sz);

		if (off + k > len)
			off = 0;
		t->len = k <= len ? k : len;
		memcpy(t->text, body + off, t->len);
		off += t->len;
		t->next = head;
		head = t;
	}
	return head;
}

static __attribute__((noinline)) char *render_response(const struct lk_token *tok, size_t len)
{
	char *resp = lk_malloc(len);
	size_t off = 0;

	while (off < len) {
		for (const struct lk_token *t = tok; t && off < len; t = t->next) {
			size_t k = t->len < len - off ? t->len : len - off;

			memcpy(resp + off, t->text, k);
			off += k;
		}
		if (!tok)
			break;
	}
	return resp;
}

static void lk_serve(void *ctx, unsigned worker, uint64_t id)
{
	const struct lk_opts *o = lk_opt;
	uint64_t r = (o->c.seed * 0x2545f4914f6cdd1dull) ^ (id << 1);
	size_t len = o->c.payload_bytes, resp_len = len / 4 ? len / 4 : 1;
	char *body = read_request(id, len);
	struct lk_token *tok = parse_request(body, len, &r);
	char *resp = render_response(tok, resp_len);

	mt_sim_sleep_ms(o->c.hold_ms);
	if (o->leak_bytes)
		cache_insert_unbounded(id, resp, resp_len, o->leak_bytes);
	while (tok) {
		struct lk_token *next = tok->next;

		free(tok);
		tok = next;
	}
	free(resp);
	free(body);
}

static void lk_end_cycle(void *ctx, uint64_t cycle)
{
	uint64_t n, bytes;

	if (!lk_opt->c.verbose)
		return;
	pthread_mutex_lock(&cache_lock);
	n = cache_entries;
	bytes = cache_bytes;
	pthread_mutex_unlock(&cache_lock);
	mt_sim_printf(2, "cycle %llu: model cache %llu bytes in %llu entries\n",
		      (unsigned long long)cycle, (unsigned long long)bytes,
		      (unsigned long long)n);
}

static void lk_usage(FILE *f)
{
	fprintf(f,
		"usage: memtriage sim leak [OPTIONS]\n\n"
		"A service that memoises every response under its request id in a global hash\n"
		"map that is never evicted (cache_insert_unbounded): besides its temporary work\n"
		"(body, tokens, response; all freed) each request leaks one block of exactly\n"
		"--leak-bytes, so the live heap grows linearly with the requests served.\n"
		"Prints 'initial: rss=N MB' and after each cycle\n"
		"'cycle N: rss=N MB requests=N throughput=N req/s' on stdout.\n\n"
		"options:\n"
		"  --cycles N          cycles (default %d)\n"
		"  --requests N        requests per cycle (default %d)\n"
		"  --workers N         worker threads, each serving one request at a time\n"
		"                      (default %d); --concurrency N is the same\n"
		"  --payload BYTES     request body, K/M/G suffixes (default 16K)\n"
		"  --hold-ms MS        time a request holds its temporaries (default %d)\n"
		"  --seed N            seed of the token sizes (default %d)\n"
		"  --leak-bytes BYTES  bytes leaked per request, one block: 0 (no leak) or\n"
		"                      at least %zu (default %d)\n"
		"  -v, --verbose       print the model's cache size after each cycle and at\n"
		"                      the end (the live heap at exit) on stderr\n"
		"  -h, --help          print this help\n",
		LK_DEF_CYCLES, LK_DEF_REQUESTS, LK_DEF_WORKERS, LK_DEF_HOLD_MS, LK_DEF_SEED,
		sizeof(struct lk_entry), LK_DEF_LEAK);
}

int mt_sim_leak(int argc, char **argv)
{
	struct lk_opts o = {
		.c = { .cycles = LK_DEF_CYCLES, .requests = LK_DEF_REQUESTS,
		       .workers = LK_DEF_WORKERS, .payload_bytes = LK_DEF_PAYLOAD,
		       .hold_ms = LK_DEF_HOLD_MS, .seed = LK_DEF_SEED },
		.leak_bytes = LK_DEF_LEAK,
	};
	const struct mt_sim_opt opts[] = {
		MT_SIM_COMMON_OPTS(&o.c),
		{ "leak-bytes", 1, 0, LK_MAX_LEAK, &o.leak_bytes },
	};
	struct mt_sim_cycle_ops ops = { .serve = lk_serve, .end_cycle = lk_end_cycle };
	int rc = mt_sim_getopt(argc, argv, opts, sizeof opts / sizeof opts[0], &o.c.verbose);

	if (rc == 1) {
		lk_usage(stdout);
		return 0;
	}
	if (rc)
		return rc;
	if (o.leak_bytes && o.leak_bytes < sizeof(struct lk_entry)) {
		mt_sim_printf(2, "memtriage: sim leak: --leak-bytes must be 0 or at least %zu\n",
			      sizeof(struct lk_entry));
		return 2;
	}
	lk_opt = &o;
	rc = mt_sim_run_cycles("leak", &o.c, &ops);
	if (o.c.verbose)
		mt_sim_printf(2, "model: leaked_bytes=%llu leaked_blocks=%llu "
			      "(the cache, never freed: the live heap at exit)\n",
			      (unsigned long long)cache_bytes, (unsigned long long)cache_entries);
	return rc;
}
