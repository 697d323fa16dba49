/*
 * `memtriage sim nonheap`: memory growth outside malloc.  The requests'
 * heap use is flat (temporaries only, all freed), yet RSS grows every
 * cycle, from two sources no heap profile sees:
 *
 *   anonymous mappings   before each cycle's requests, map_region mmaps
 *                        --mmap-bytes more (like a ring buffer or a memory-
 *                        mapped store per shard), writes every page, and
 *                        keeps it mapped
 *   thread stacks        and starts --threads-per-cycle more long-lived
 *                        threads (like a thread per subscriber that is
 *                        never reaped), each of which touches --stack-touch
 *                        bytes of its stack and parks
 *
 * With the defaults RSS grows by 8 MiB + 4 x 256 KiB = 9 MiB per cycle,
 * about 54 MiB in 6 cycles, while the live heap never exceeds what the
 * workers hold for the requests in flight (--workers x about 1.3 x
 * --payload; a few hundred KiB).
 *
 * One request, on one of --workers threads (each serves one request at a
 * time, so --concurrency is the same thing): malloc the body (--payload
 * bytes), 8 header objects of 64-256 B and a response (a quarter of the
 * body), hold them --hold-ms, free them.
 *
 * The workload's own bookkeeping is not on the heap either: each region
 * holds its own link in its first bytes, and the table of parked threads
 * is an mmap.  At exit the parked threads are woken and joined, and every
 * region unmapped.  All threads run on stacks mapped by the workload (see
 * mt_sim_thread_start), so glibc frees their DTVs at join: a memtriage
 * report shows nothing leaked.  -v prints the model's mmap'd bytes and
 * thread count.
 */
#include <alloca.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sim/sim_int.h"

/* Defaults: about 3.5 s bare on 2 cores, RSS +9 MiB per cycle. */
#define NH_DEF_CYCLES       6
#define NH_DEF_REQUESTS     1000
#define NH_DEF_WORKERS      4
#define NH_DEF_PAYLOAD      (16u << 10)
#define NH_DEF_HOLD_MS      2
#define NH_DEF_SEED         1
#define NH_DEF_MMAP         (8u << 20)
#define NH_DEF_THREADS      4
#define NH_DEF_STACK_TOUCH  (256u << 10)

#define NH_HEADERS          8           /* small objects per request */
#define NH_MAX_THREADS      16384       /* parked threads in all */
#define NH_MAX_MMAP         (64ull << 30)
#define NH_MAX_STACK_TOUCH  (1ull << 30)
#define NH_STACK_SLACK      (256u << 10) /* stack beyond the touched part */

struct nh_opts {
	struct mt_sim_common c;
	uint64_t mmap_bytes;        /* per cycle */
	uint64_t threads;           /* parked threads started per cycle */
	uint64_t stack_touch;       /* bytes of its stack each one touches */
};

/* The head of a mapped region: the list of regions lives in them. */
struct nh_region {
	struct nh_region *next;
	size_t bytes;
};

static const struct nh_opts *nh_opt;
static size_t nh_page;

static struct nh_region *regions;        /* main thread only */
static uint64_t mapped_bytes, n_regions;

/* Parked threads: their table is an mmap, their state under park_lock. */
static struct mt_sim_thread *parked;
static size_t parked_table_bytes;
static uint64_t n_started;
static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cv = PTHREAD_COND_INITIALIZER;      /* one more parked */
static pthread_cond_t wake_cv = PTHREAD_COND_INITIALIZER;      /* stopping */
static uint64_t n_parked;
static int stopping;

static __attribute__((noreturn, cold)) void nh_oom(size_t bytes)
{
	mt_sim_printf(2, "memtriage: sim nonheap: out of memory allocating %zu bytes\n", bytes);
	_exit(1);
}

static void *nh_malloc(size_t bytes)
{
	void *p = malloc(bytes);

	if (!p)
		nh_oom(bytes);
	return p;
}

/* ---- anonymous mappings -------------------------------------------------- */

/* Maps `bytes` more, writes every page, keeps it; returns 0 or -1. */
static __attribute__((noinline)) int map_region(size_t bytes)
{
	struct nh_region *r;

	if (bytes < sizeof *r)
		bytes = sizeof *r;
	r = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED) {
		mt_sim_printf(2, "memtriage: sim nonheap: cannot map %zu bytes\n", bytes);
		return -1;
	}
	for (size_t off = 0; off < bytes; off += nh_page)
		((volatile char *)r)[off] = 1;
	r->bytes = bytes;
	r->next = regions;
	regions = r;
	mapped_bytes += bytes;
	n_regions++;
	return 0;
}

static void unmap_regions(void)
{
	while (regions) {
		struct nh_region *r = regions;

		regions = r->next;
		munmap(r, r->bytes);
	}
}

/* ---- parked threads ---------------------------------------------------- */

/* Touches `bytes` of this thread's stack, then parks until stopping. */
static __attribute__((noinline)) void park_with_stack(size_t bytes)
{
	volatile char *p = bytes ? alloca(bytes) : NULL;

	for (size_t off = 0; off < bytes; off += nh_page)
		p[off] = 1;
	if (bytes)
		p[bytes - 1] = 1;
	pthread_mutex_lock(&park_lock);
	n_parked++;
	pthread_cond_signal(&park_cv);
	while (!stopping)
		pthread_cond_wait(&wake_cv, &park_lock);
	pthread_mutex_unlock(&park_lock);
	if (bytes)
		p[0] = 2;       /* keeps the frame (and the touched stack) alive until here */
}

static void *parked_thread(void *arg)
{
	park_with_stack((size_t)nh_opt->stack_touch);
	return NULL;
}

/* Starts n more parked threads and waits until all have touched their stacks. */
static __attribute__((noinline)) int start_parked_threads(uint64_t n)
{
	size_t stack = (size_t)nh_opt->stack_touch + NH_STACK_SLACK;
	uint64_t want;

	for (uint64_t i = 0; i < n; i++) {
		if (mt_sim_thread_start(&parked[n_started], stack, parked_thread, NULL)) {
			mt_sim_printf(2, "memtriage: sim nonheap: cannot create parked thread %llu\n",
				      (unsigned long long)n_started + 1);
			return -1;
		}
		n_started++;
	}
	want = n_started;
	pthread_mutex_lock(&park_lock);
	while (n_parked < want)
		pthread_cond_wait(&park_cv, &park_lock);
	pthread_mutex_unlock(&park_lock);
	return 0;
}

static void stop_parked_threads(void)
{
	pthread_mutex_lock(&park_lock);
	stopping = 1;
	pthread_cond_broadcast(&wake_cv);
	pthread_mutex_unlock(&park_lock);
	while (n_started)
		mt_sim_thread_join(&parked[--n_started]);
}

/* ---- cycles and requests ----------------------------------------------- */

static int nh_begin_cycle(void *ctx, uint64_t cycle)
{
	if (nh_opt->mmap_bytes && map_region((size_t)nh_opt->mmap_bytes))
		return -1;
	return start_parked_threads(nh_opt->threads);
}

static void nh_serve(void *ctx, unsigned worker, uint64_t id)
{
	const struct nh_opts *o = nh_opt;
	uint64_t r = (o->c.seed * 0x2545f4914f6cdd1dull) ^ (id << 1);
	size_t len = o->c.payload_bytes, resp_len = len / 4 ? len / 4 : 1;
	char *body = nh_malloc(len), *resp;
	char *hdr[NH_HEADERS];

	memset(body, 'a' + (int)(id % 26), len);
	for (unsigned i = 0; i < NH_HEADERS; i++) {
		size_t sz = mt_sim_rand_range(&r, 64, 256);

		hdr[i] = nh_malloc(sz);
		memcpy(hdr[i], body, sz < len ? sz : len);
	}
	resp = nh_malloc(resp_len);
	memcpy(resp, body, resp_len);
	mt_sim_sleep_ms(o->c.hold_ms);
	free(resp);
	for (unsigned i = NH_HEADERS; i-- > 0;)
		free(hdr[i]);
	free(body);
}

static void nh_end_cycle(void *ctx, uint64_t cycle)
{
	if (nh_opt->c.verbose)
		mt_sim_printf(2, "cycle %llu: model mmap %llu bytes in %llu regions, "
			      "%llu parked threads\n",
			      (unsigned long long)cycle, (unsigned long long)mapped_bytes,
			      (unsigned long long)n_regions, (unsigned long long)n_started);
}

static void nh_usage(FILE *f)
{
	fprintf(f,
		"usage: memtriage sim nonheap [OPTIONS]\n\n"
		"Memory growth outside malloc: before each cycle the workload maps more\n"
		"anonymous memory (mmap, every page written, kept) and starts more long-lived\n"
		"threads that touch part of their stack and park, while the requests' heap use\n"
		"stays flat (temporaries only).  Threads are joined and mappings unmapped at\n"
		"exit.  Prints 'initial: rss=N MB' and after each cycle\n"
		"'cycle N: rss=N MB requests=N throughput=N req/s' on stdout.\n\n"
		"options:\n"
		"  --cycles N              cycles (default %d)\n"
		"  --requests N            requests per cycle (default %d)\n"
		"  --workers N             worker threads, each serving one request at a time\n"
		"                          (default %d); --concurrency N is the same\n"
		"  --payload BYTES         request body, K/M/G suffixes (default 16K)\n"
		"  --hold-ms MS            time a request holds its temporaries (default %d)\n"
		"  --seed N                seed of the header sizes (default %d)\n"
		"  --mmap-bytes BYTES      anonymous memory mapped per cycle (default 8M)\n"
		"  --threads-per-cycle N   parked threads started per cycle (default %d)\n"
		"  --stack-touch BYTES     stack each parked thread touches (default 256K)\n"
		"  -v, --verbose           print the model's mmap'd bytes and threads after\n"
		"                          each cycle and at the end on stderr\n"
		"  -h, --help              print this help\n",
		NH_DEF_CYCLES, NH_DEF_REQUESTS, NH_DEF_WORKERS, NH_DEF_HOLD_MS, NH_DEF_SEED,
		NH_DEF_THREADS);
}

int mt_sim_nonheap(int argc, char **argv)
{
	struct nh_opts o = {
		.c = { .cycles = NH_DEF_CYCLES, .requests = NH_DEF_REQUESTS,
		       .workers = NH_DEF_WORKERS, .payload_bytes = NH_DEF_PAYLOAD,
		       .hold_ms = NH_DEF_HOLD_MS, .seed = NH_DEF_SEED },
		.mmap_bytes = NH_DEF_MMAP, .threads = NH_DEF_THREADS,
		.stack_touch = NH_DEF_STACK_TOUCH,
	};
	const struct mt_sim_opt opts[] = {
		MT_SIM_COMMON_OPTS(&o.c),
		{ "mmap-bytes", 1, 0, NH_MAX_MMAP, &o.mmap_bytes },
		{ "threads-per-cycle", 0, 0, NH_MAX_THREADS, &o.threads },
		{ "stack-touch", 1, 0, NH_MAX_STACK_TOUCH, &o.stack_touch },
	};
	struct mt_sim_cycle_ops ops = {
		.serve = nh_serve, .begin_cycle = nh_begin_cycle, .end_cycle = nh_end_cycle,
	};
	uint64_t threads, touched, heap_max;
	int rc = mt_sim_getopt(argc, argv, opts, sizeof opts / sizeof opts[0], &o.c.verbose);

	if (rc == 1) {
		nh_usage(stdout);
		return 0;
	}
	if (rc)
		return rc;
	if (o.threads * o.c.cycles > NH_MAX_THREADS) {
		mt_sim_printf(2, "memtriage: sim nonheap: at most %d parked threads in all "
			      "(--threads-per-cycle x --cycles)\n", NH_MAX_THREADS);
		return 2;
	}
	nh_opt = &o;
	nh_page = (size_t)sysconf(_SC_PAGESIZE);
	parked_table_bytes = (size_t)(o.threads * o.c.cycles) * sizeof *parked;
	if (parked_table_bytes) {
		parked = mmap(NULL, parked_table_bytes, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (parked == MAP_FAILED) {
			mt_sim_printf(2, "memtriage: sim nonheap: cannot map the thread table\n");
			return 1;
		}
	}
	rc = mt_sim_run_cycles("nonheap", &o.c, &ops);
	threads = n_started;
	touched = threads * o.stack_touch;
	/* Per worker: body, response (a quarter of it, at least 1 B), headers. */
	heap_max = o.c.workers * (o.c.payload_bytes + (o.c.payload_bytes / 4 ? o.c.payload_bytes / 4 : 1)
				  + NH_HEADERS * 256);
	stop_parked_threads();
	if (parked_table_bytes)
		munmap(parked, parked_table_bytes);
	if (o.c.verbose)
		mt_sim_printf(2, "model: mmap_bytes=%llu mmap_regions=%llu threads=%llu "
			      "stack_touched_bytes=%llu request_heap_max=%llu (released at exit)\n",
			      (unsigned long long)mapped_bytes, (unsigned long long)n_regions,
			      (unsigned long long)threads, (unsigned long long)touched,
			      (unsigned long long)heap_max);
	unmap_regions();
	return rc;
}
