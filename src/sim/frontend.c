/*
 * `memtriage sim frontend`: a model of the LLM-serving HTTP frontend in
 * seed report 000, whose RSS grew to 8 GB while nothing leaked.
 *
 * One request goes through two tasks on a pool of worker threads, as in
 * the seed's tokio `spawn_blocking` + pythonize/depythonize path:
 *
 *   dispatcher (main thread)                 worker threads (--workers)
 *   ------------------------                 --------------------------
 *   malloc request + payload, fill     ──►   PARSE: copy the body (a payload-
 *     (at most --concurrency requests          sized string, like pythonize's
 *      in flight; bounded task queue)          str) and parse it into a tree of
 *                                              small objects (the seed's size
 *                                              histogram), in this worker's arena
 *   hold the request --hold-ms with    ◄──
 *     its tree alive (the response
 *     is being generated)              ──►   RESPOND (any worker): build 2-5
 *                                              response chunks of 1-4 KB, free
 *                                              the tree and body (usually
 *                                              allocated by another thread)
 *   free chunks, payload, request      ◄──
 *
 * Why this shape: a worker is busy only while it parses, so one thread's
 * arena can hold the trees of many requests in flight, and how many varies
 * from moment to moment.  glibc gives each thread an arena (up to 8 per
 * core) and an arena returns memory only from the top of its heaps, so
 * every arena keeps its own high-water mark; their sum grows over time far
 * above the live heap, which stays flat.  MALLOC_ARENA_MAX=2 bounds it.
 * (A worker that holds its own request while sleeping would pin one tree
 * per thread and show almost no retention.)
 *
 * Nothing leaks: every block is freed before the function returns, and the
 * workload prints with write(2), so no stdio buffer is allocated either.
 * Allocation sizes depend only on --seed and the request number, so with
 * --workers 1 --concurrency 1 the allocations are the same on every run
 * (their interleaving across threads is not, with more workers).
 *
 * This file holds the model (the worker tasks and the pool, shared through
 * frontend_int.h) and the in-process dispatcher, which makes up requests
 * itself and runs --cycles cycles of --requests.  With --listen the same
 * pool serves requests that arrive over TCP instead (frontend_net.c).
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim/frontend_int.h"

/* Defaults: about 5 s bare on 2 cores, RSS several times the live heap. */
#define FE_DEF_PAYLOAD      (200u << 10)
#define FE_DEF_CONCURRENCY  48
#define FE_DEF_REQUESTS     1000
#define FE_DEF_CYCLES       3
#define FE_DEF_HOLD_MS      2
#define FE_DEF_SEED         1
#define FE_LINGER_US        200000      /* after the last cycle line, before the teardown */

#define FE_BYTES_PER_NODE   64          /* one parsed object per 64 payload bytes */
#define FE_MAX_NODES        16384       /* objects per request tree */
#define FE_TEXT_BYTES       4096        /* payload text template */

static char fe_text[FE_TEXT_BYTES];

/* ---- small helpers --------------------------------------------------- */

static __attribute__((noreturn, cold)) void fe_oom(size_t bytes)
{
	mt_sim_printf(2, "memtriage: sim frontend: out of memory allocating %zu bytes\n", bytes);
	_exit(1);
}

void *fe_malloc(size_t bytes)
{
	void *p = malloc(bytes);

	if (!p)
		fe_oom(bytes);
	return p;
}

void fe_live_add(struct fe_server *s, uint64_t bytes)
{
	uint64_t now = atomic_fetch_add(&s->live_bytes, bytes) + bytes;
	uint64_t peak = atomic_load(&s->peak_bytes);

	while (now > peak && !atomic_compare_exchange_weak(&s->peak_bytes, &peak, now))
		;
}

void fe_live_sub(struct fe_server *s, uint64_t bytes)
{
	atomic_fetch_sub(&s->live_bytes, bytes);
}

/* Fills fe_text with lower-case words and spaces, like a chat prompt. */
void fe_text_init(uint64_t seed)
{
	uint64_t r = seed ^ 0x7e57;

	for (size_t i = 0; i < FE_TEXT_BYTES; i++)
		fe_text[i] = (mt_sim_rand(&r) % 6) ? (char)('a' + mt_sim_rand(&r) % 26) : ' ';
}

void fe_fill(char *dst, size_t n, uint64_t off)
{
	off %= FE_TEXT_BYTES;
	while (n) {
		size_t k = FE_TEXT_BYTES - off < n ? FE_TEXT_BYTES - off : n;

		memcpy(dst, fe_text + off, k);
		dst += k;
		n -= k;
		off = 0;
	}
}

/* The request's own generator: its sizes depend on seed and id only. */
static uint64_t fe_rng(const struct fe_server *s, const struct fe_request *rq, uint64_t stage)
{
	return (s->opt->seed * 0x2545f4914f6cdd1dull) ^ (rq->id << 1) ^ stage;
}

/* ---- queues (callers serialise access) ------------------------------- */

void fe_queue_push(struct fe_queue *q, struct fe_request *rq)
{
	q->slot[(q->head + q->len) % q->cap] = rq;
	q->len++;
}

struct fe_request *fe_queue_pop(struct fe_queue *q)
{
	struct fe_request *rq = q->slot[q->head];

	q->head = (q->head + 1) % q->cap;
	q->len--;
	return rq;
}

struct fe_request *fe_queue_peek(const struct fe_queue *q)
{
	return q->len ? q->slot[q->head] : NULL;
}

/* ---- worker tasks ---------------------------------------------------- */

/*
 * Size of one parsed object, after the seed's histogram of the
 * serialization layer: per 1000 objects 370 of 8-32 B, 420 of 33-190 B,
 * 160 of 191 B-1 KB, 35 of 1-6 KB and 15 of 6-36 KB.
 */
static size_t fe_node_size(uint64_t *r)
{
	uint64_t x = mt_sim_rand(r) % 1000;

	if (x < 370)
		return mt_sim_rand_range(r, 8, 32);
	if (x < 790)
		return mt_sim_rand_range(r, 33, 190);
	if (x < 950)
		return mt_sim_rand_range(r, 191, 1024);
	if (x < 985)
		return mt_sim_rand_range(r, 1025, 6 << 10);
	return mt_sim_rand_range(r, (6 << 10) + 1, 36 << 10);
}

static size_t fe_node_count(size_t payload_bytes)
{
	size_t n = payload_bytes / FE_BYTES_PER_NODE;

	return n < 1 ? 1 : n > FE_MAX_NODES ? FE_MAX_NODES : n;
}

/*
 * PARSE: copies the payload into a body and builds the object tree from
 * it: node i's first word points to its parent (node (i-1)/8), the rest
 * is a slice of the body.
 */
static void fe_parse(struct fe_server *s, struct fe_request *rq)
{
	uint64_t r = fe_rng(s, rq, FE_PARSE);
	size_t len = rq->payload_bytes, cur = 0;

	rq->body = fe_malloc(len);
	memcpy(rq->body, rq->payload, len);
	rq->n_nodes = fe_node_count(len);
	rq->node = fe_malloc(rq->n_nodes * sizeof *rq->node);
	rq->tree_bytes = rq->n_nodes * sizeof *rq->node;
	for (size_t i = 0; i < rq->n_nodes; i++) {
		size_t sz = fe_node_size(&r), k = sz - sizeof(void *);
		char *p = fe_malloc(sz);

		*(void **)p = i ? rq->node[(i - 1) / 8] : NULL;
		if (cur + k > len)
			cur = 0;
		memcpy(p + sizeof(void *), rq->body + cur, k <= len ? k : len);
		cur += k;
		rq->node[i] = p;
		rq->tree_bytes += sz;
	}
	fe_live_add(s, len + rq->tree_bytes);
}

/* Draws one response chunk's size and the offset of its text from *r. */
static size_t fe_chunk_draw(uint64_t *r, uint64_t *text_off)
{
	size_t sz = mt_sim_rand_range(r, 1 << 10, 4 << 10);

	*text_off = mt_sim_rand(r);
	return sz;
}

void fe_chunk_sizes(const struct fe_server *s, const struct fe_request *rq, size_t *size)
{
	uint64_t r = fe_rng(s, rq, FE_RESPOND), off;

	mt_sim_rand(&r);    /* the number of chunks, as fe_respond drew it */
	for (unsigned i = 0; i < rq->n_chunks; i++)
		size[i] = fe_chunk_draw(&r, &off);
}

/* RESPOND: builds 2-5 response chunks of 1-4 KB, then frees tree and body. */
static void fe_respond(struct fe_server *s, struct fe_request *rq)
{
	uint64_t r = fe_rng(s, rq, FE_RESPOND), off;

	rq->n_chunks = 2 + mt_sim_rand(&r) % (FE_MAX_CHUNKS - 1);
	rq->chunk_bytes = 0;
	for (unsigned i = 0; i < rq->n_chunks; i++) {
		size_t sz = fe_chunk_draw(&r, &off);

		rq->chunk[i] = fe_malloc(sz);
		fe_fill(rq->chunk[i], sz, off);
		rq->chunk_bytes += sz;
	}
	fe_live_add(s, rq->chunk_bytes);
	for (size_t i = rq->n_nodes; i-- > 0;)
		free(rq->node[i]);
	free(rq->node);
	free(rq->body);
	fe_live_sub(s, rq->tree_bytes + rq->payload_bytes);
	rq->node = NULL;
	rq->body = NULL;
}

/* Adds 1 to the dispatcher's eventfd; it cannot fill up (2^64 - 2 completions). */
static void fe_notify(int fd)
{
	uint64_t one = 1;

	while (write(fd, &one, sizeof one) < 0 && errno == EINTR)
		;
}

static void *fe_worker(void *arg)
{
	struct fe_server *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct fe_request *rq;

		while (!s->work.len && !s->stopping)
			pthread_cond_wait(&s->have_work, &s->lock);
		if (!s->work.len)
			break;
		rq = fe_queue_pop(&s->work);
		pthread_mutex_unlock(&s->lock);
		if (rq->stage == FE_PARSE)
			fe_parse(s, rq);
		else
			fe_respond(s, rq);
		pthread_mutex_lock(&s->lock);
		fe_queue_push(&s->done, rq);
		pthread_cond_signal(&s->have_done);
		if (s->notify_fd >= 0)
			fe_notify(s->notify_fd);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- dispatcher ------------------------------------------------------ */

struct fe_request *fe_request_alloc(struct fe_server *s, uint64_t id, size_t bytes)
{
	struct fe_request *rq = fe_malloc(sizeof *rq);

	memset(rq, 0, sizeof *rq);
	rq->id = id;
	rq->stage = FE_PARSE;
	rq->conn = -1;
	rq->payload_bytes = bytes;
	rq->payload = fe_malloc(bytes);
	fe_live_add(s, sizeof *rq + bytes);
	return rq;
}

/* In-process: the dispatcher makes up request id's payload itself. */
static struct fe_request *fe_request_new(struct fe_server *s, uint64_t id)
{
	struct fe_request *rq = fe_request_alloc(s, id, s->opt->payload_bytes);

	fe_fill(rq->payload, rq->payload_bytes, id * 131);
	return rq;
}

void fe_request_free(struct fe_server *s, struct fe_request *rq)
{
	for (unsigned i = 0; i < rq->n_chunks; i++)
		free(rq->chunk[i]);
	free(rq->payload);
	fe_live_sub(s, rq->chunk_bytes + rq->payload_bytes + sizeof *rq);
	free(rq);
}

void fe_submit(struct fe_server *s, struct fe_request *rq)
{
	pthread_mutex_lock(&s->lock);
	fe_queue_push(&s->work, rq);
	pthread_cond_signal(&s->have_work);
	pthread_mutex_unlock(&s->lock);
}

/*
 * Waits until a task completes or the oldest held request is due
 * (deadline_ns, CLOCK_MONOTONIC; 0 for none); moves completed requests
 * into batch and returns how many (0 when the deadline passed first).
 */
static size_t fe_collect(struct fe_server *s, struct fe_request **batch, uint64_t deadline_ns)
{
	struct timespec ts = { .tv_sec = deadline_ns / 1000000000u,
			       .tv_nsec = deadline_ns % 1000000000u };
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (!s->done.len) {
		if (!deadline_ns)
			pthread_cond_wait(&s->have_done, &s->lock);
		else if (pthread_cond_timedwait(&s->have_done, &s->lock, &ts))
			break;
	}
	while (s->done.len)
		batch[n++] = fe_queue_pop(&s->done);
	pthread_mutex_unlock(&s->lock);
	return n;
}

void fe_release_due(struct fe_server *s)
{
	struct fe_request *rq;
	uint64_t now = mt_sim_now_ns();

	while ((rq = fe_queue_peek(&s->held)) && rq->deadline_ns <= now) {
		fe_queue_pop(&s->held);
		rq->stage = FE_RESPOND;
		fe_submit(s, rq);
	}
}

/* Serves requests [first, first + count), keeping at most concurrency in flight. */
static void fe_serve(struct fe_server *s, struct fe_request **batch, uint64_t first,
		     uint64_t count)
{
	uint64_t submitted = 0, completed = 0, conc = s->opt->concurrency;
	uint64_t hold_ns = s->opt->hold_ms * 1000000u;

	while (completed < count) {
		struct fe_request *head;
		size_t n;

		while (submitted < count && submitted - completed < conc)
			fe_submit(s, fe_request_new(s, first + submitted++));
		fe_release_due(s);
		head = fe_queue_peek(&s->held);
		n = fe_collect(s, batch, head ? head->deadline_ns : 0);
		for (size_t i = 0; i < n; i++) {
			if (batch[i]->stage == FE_RESPOND) {
				fe_request_free(s, batch[i]);
				completed++;
				continue;
			}
			batch[i]->deadline_ns = mt_sim_now_ns() + hold_ns;
			fe_queue_push(&s->held, batch[i]);
		}
	}
}

static void fe_report_cycle(struct fe_server *s, uint64_t cycle, uint64_t t0)
{
	double secs = (double)(mt_sim_now_ns() - t0) / 1e9;

	if (s->opt->trim)
		malloc_trim(0);
	mt_sim_printf(1, "cycle %llu: rss=%llu MB requests=%llu throughput=%.0f req/s\n",
		      (unsigned long long)cycle,
		      (unsigned long long)(mt_sim_rss_bytes() >> 20),
		      (unsigned long long)s->opt->requests,
		      secs > 0 ? (double)s->opt->requests / secs : 0.0);
	if (s->opt->verbose)
		mt_sim_printf(2, "cycle %llu: model live heap peak so far %llu MB\n",
			      (unsigned long long)cycle,
			      (unsigned long long)(atomic_load(&s->peak_bytes) >> 20));
}

/* ---- the pool -------------------------------------------------------- */

/* The dispatcher's timed waits use CLOCK_MONOTONIC, like the deadlines. */
static void fe_cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &attr);
	pthread_condattr_destroy(&attr);
}

/* Starts one worker; on glibc's stack (the in-process model's) unless own_stack. */
static int fe_thread_start(struct fe_server *s, struct mt_sim_thread *t, int own_stack)
{
	if (own_stack)
		return mt_sim_thread_start(t, 0, fe_worker, s);
	t->map = NULL;
	return pthread_create(&t->tid, NULL, fe_worker, s) ? -1 : 0;
}

int fe_pool_start(struct fe_server *s, const struct fe_opts *opt, int notify_fd, int own_stacks)
{
	size_t nw = opt->workers ? opt->workers : opt->concurrency;

	s->opt = opt;
	s->notify_fd = notify_fd;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->have_work, NULL);
	fe_cond_init_monotonic(&s->have_done);
	s->work.cap = s->done.cap = s->held.cap = opt->concurrency;
	s->work.slot = fe_malloc(opt->concurrency * sizeof *s->work.slot);
	s->done.slot = fe_malloc(opt->concurrency * sizeof *s->done.slot);
	s->held.slot = fe_malloc(opt->concurrency * sizeof *s->held.slot);
	s->thread = fe_malloc(nw * sizeof *s->thread);
	for (s->n_threads = 0; s->n_threads < nw; s->n_threads++) {
		if (fe_thread_start(s, &s->thread[s->n_threads], own_stacks)) {
			mt_sim_printf(2, "memtriage: sim frontend: cannot create worker thread %zu\n",
				      s->n_threads + 1);
			return -1;
		}
	}
	return 0;
}

void fe_pool_stop(struct fe_server *s)
{
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->have_work);
	pthread_mutex_unlock(&s->lock);
	while (s->n_threads) {
		struct mt_sim_thread *t = &s->thread[--s->n_threads];

		if (t->map)
			mt_sim_thread_join(t);
		else
			pthread_join(t->tid, NULL);
	}
	free(s->thread);
	free(s->held.slot);
	free(s->done.slot);
	free(s->work.slot);
	pthread_cond_destroy(&s->have_done);
	pthread_cond_destroy(&s->have_work);
	pthread_mutex_destroy(&s->lock);
}

/* ---- in-process mode --------------------------------------------------- */

static int fe_run(const struct fe_opts *o)
{
	struct fe_server s = { .opt = o };
	struct fe_request **batch;
	int rc;

	fe_text_init(o->seed);
	mt_sim_printf(1, "initial: rss=%llu MB\n", (unsigned long long)(mt_sim_rss_bytes() >> 20));
	rc = fe_pool_start(&s, o, -1, 0) ? 1 : 0;
	batch = fe_malloc(o->concurrency * sizeof *batch);
	for (uint64_t c = 1; !rc && c <= o->cycles; c++) {
		uint64_t t0 = mt_sim_now_ns();

		fe_serve(&s, batch, (c - 1) * o->requests, o->requests);
		fe_report_cycle(&s, c, t0);
	}
	/*
	 * A server would stay up after its last request: so that a reader from
	 * outside (memtriage compare, watch) that reads RSS when the last cycle
	 * line arrives does not catch the teardown below on a busy machine.
	 */
	if (!rc)
		usleep(FE_LINGER_US);
	free(batch);
	fe_pool_stop(&s);
	return rc;
}

static void fe_usage(FILE *f)
{
	fprintf(f,
		"usage: memtriage sim frontend [OPTIONS]\n\n"
		"A model of an LLM-serving HTTP frontend: a dispatcher hands each request's\n"
		"payload to a pool of worker threads, which parse it into many small objects,\n"
		"build response chunks, hold them --hold-ms, and free them; the dispatcher frees\n"
		"the chunks (cross-thread frees).  Nothing leaks; under glibc RSS grows from\n"
		"per-thread arena retention.  Prints 'initial: rss=N MB' and after each cycle\n"
		"'cycle N: rss=N MB requests=N throughput=N req/s' on stdout.\n\n"
		"With --listen ADDR:PORT it serves requests sent over TCP (by 'memtriage sim\n"
		"load', protocol below) instead of making them up, prints 'listening on\n"
		"ADDR:PORT' and serves until SIGTERM or SIGINT; --concurrency then caps the\n"
		"connections served at once (one request in flight each).\n\n"
		"options:\n"
		"  --payload BYTES     request payload size, K/M/G suffixes (default 200K);\n"
		"                      with --listen the largest accepted\n"
		"  --concurrency N     requests in flight at most (default %d)\n"
		"  --requests N        requests per cycle (default %d)\n"
		"  --cycles N          cycles (default %d)\n"
		"  --workers N         worker threads (default: the concurrency)\n"
		"  --hold-ms MS        time a worker holds a parsed request (default %d)\n"
		"  --seed N            seed of the object sizes (default %d)\n"
		"  --trim              call malloc_trim(0) after each cycle (a remedy)\n"
		"  --listen ADDR:PORT  serve over TCP: 127.0.0.1:8080, [::1]:8080; port 0 picks\n"
		"                      a free one (--requests, --cycles, --trim do not apply)\n"
		"  -v, --verbose       print the model's own live-heap peak on stderr\n"
		"  -h, --help          print this help\n\n"
		"protocol (--listen): per connection, one request at a time: the line\n"
		"'REQ <payload-bytes>' and that many bytes; the answer is 'OK <bytes>' and the\n"
		"response, or 'ERR <reason>' and the connection is closed.\n",
		FE_DEF_CONCURRENCY, FE_DEF_REQUESTS, FE_DEF_CYCLES, FE_DEF_HOLD_MS, FE_DEF_SEED);
}

static int fe_bad(const char *opt, const char *val)
{
	mt_sim_printf(2, "memtriage: sim frontend: invalid value '%s' for --%s\n", val, opt);
	return 2;
}

/* getopt_long said '?' (unknown option) or ':' (missing value) about arg. */
static int fe_bad_option(int c, const char *arg)
{
	mt_sim_printf(2, "memtriage: sim frontend: %s '%s' (see 'memtriage sim frontend --help')\n",
		      c == ':' ? "missing value for option" : "unknown option", arg);
	return 2;
}

/* Parses one option's value into o; returns 0 or 2 (usage error). */
static int fe_set(struct fe_opts *o, int c, const char *name, const char *v)
{
	switch (c) {
	case 'p':
		return mt_sim_parse_bytes(v, &o->payload_bytes) || !o->payload_bytes ||
		       o->payload_bytes > FE_MAX_PAYLOAD ? fe_bad(name, v) : 0;
	case 'c':
		return mt_sim_parse_u64(v, 1, FE_MAX_CONCURRENCY, &o->concurrency) ? fe_bad(name, v) : 0;
	case 'r':
		return mt_sim_parse_u64(v, 1, UINT32_MAX, &o->requests) ? fe_bad(name, v) : 0;
	case 'n':
		return mt_sim_parse_u64(v, 1, 1000000, &o->cycles) ? fe_bad(name, v) : 0;
	case 'w':
		return mt_sim_parse_u64(v, 1, FE_MAX_WORKERS, &o->workers) ? fe_bad(name, v) : 0;
	case 't':
		return mt_sim_parse_u64(v, 0, 60000, &o->hold_ms) ? fe_bad(name, v) : 0;
	case 's':
		return mt_sim_parse_u64(v, 0, UINT64_MAX, &o->seed) ? fe_bad(name, v) : 0;
	}
	return 2;
}

int mt_sim_frontend(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "payload",     required_argument, NULL, 'p' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "requests",    required_argument, NULL, 'r' },
		{ "cycles",      required_argument, NULL, 'n' },
		{ "workers",     required_argument, NULL, 'w' },
		{ "hold-ms",     required_argument, NULL, 't' },
		{ "seed",        required_argument, NULL, 's' },
		{ "trim",        no_argument,       NULL, 'T' },
		{ "listen",      required_argument, NULL, 'l' },
		{ "verbose",     no_argument,       NULL, 'v' },
		{ "help",        no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct fe_opts o = {
		.payload_bytes = FE_DEF_PAYLOAD, .concurrency = FE_DEF_CONCURRENCY,
		.requests = FE_DEF_REQUESTS, .cycles = FE_DEF_CYCLES,
		.hold_ms = FE_DEF_HOLD_MS, .seed = FE_DEF_SEED,
	};
	int c, idx, cycle_opts = 0;

	opterr = 0;  /* our messages, not getopt's "frontend: ..." */
	while ((c = getopt_long(argc, argv, "+:vh", longopts, &idx)) != -1) {
		if (c == 'h') {
			fe_usage(stdout);
			return 0;
		} else if (c == 'v') {
			o.verbose = 1;
		} else if (c == 'T') {
			o.trim = 1;
		} else if (c == 'l') {
			o.listen = optarg;
		} else if (c == '?' || c == ':') {
			return fe_bad_option(c, argv[optind - 1]);
		} else if (fe_set(&o, c, longopts[idx].name, optarg)) {
			return 2;
		}
		if (c == 'r' || c == 'n' || c == 'T')
			cycle_opts++;
	}
	if (optind < argc) {
		mt_sim_printf(2, "memtriage: sim frontend: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (o.listen && cycle_opts) {
		mt_sim_printf(2, "memtriage: sim frontend: --requests, --cycles and --trim "
			      "do not apply with --listen\n");
		return 2;
	}
	return o.listen ? fe_net_run(&o) : fe_run(&o);
}
