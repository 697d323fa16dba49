/*
 * Trace reader tests: synthetic traces written with trace_builder.h, read
 * back with exact expectations; cut, corrupt and foreign files; fuzzing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/bigmem.h"
#include "trace/reader.h"
#include "trace_builder.h"

#define FUZZ_VARIANTS 2000
#define FUZZ_TIMEOUT_S 100  /* a hang fails the test instead of stalling ctest */

static char tmpdir[64];

/* ---- helpers ---- */

static const char *tpath(const char *name)
{
	static char buf[4][128];
	static int k;
	char *p = buf[k++ & 3];
	snprintf(p, 128, "%s/%s", tmpdir, name);
	return p;
}

/* Unlinks before writing: ext4 flushes a truncated-and-rewritten file on close. */
static const char *save(const struct tb *b, const char *name)
{
	const char *p = tpath(name);
	unlink(p);
	assert_int_equal(tb_write(b, p), 0);
	return p;
}

static const char *save_bytes(const void *data, size_t n, const char *name)
{
	const char *p = tpath(name);
	unlink(p);
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	return p;
}

struct evlog {
	struct mt_event *ev;
	size_t n, cap;
	size_t stop_after;  /* 0 = never stop */
};

static int collect(const struct mt_event *ev, void *arg)
{
	struct evlog *l = arg;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->ev = realloc(l->ev, l->cap * sizeof *l->ev);
		assert_non_null(l->ev);
	}
	l->ev[l->n++] = *ev;
	return l->stop_after && l->n == l->stop_after ? 42 : 0;
}

/* Opens and replays path; fails the test on any error. */
static struct mt_trace *load(const char *path, struct evlog *log)
{
	char err[MT_ERR_LEN];
	struct mt_trace *tr = NULL;
	int r = mt_trace_open(path, &tr, err, NULL, NULL);
	if (r)
		fail_msg("open: %s", err);
	r = mt_trace_replay(tr, collect, log, err);
	if (r)
		fail_msg("replay: %s", err);
	return tr;
}

static void expect_open_error(const char *path, int code, const char *needle)
{
	char err[MT_ERR_LEN];
	struct mt_trace *tr = (void *)1;
	assert_int_equal(mt_trace_open(path, &tr, err, NULL, NULL), code);
	assert_null(tr);
	if (!strstr(err, needle))
		fail_msg("message '%s' lacks '%s'", err, needle);
}

static void expect_ev(const struct mt_event *e, uint8_t type, uint8_t func, uint64_t t,
                      uint64_t ptr, uint64_t size, uint32_t stack, uint32_t thread)
{
	if (e->type != type || e->func != func || e->t != t || e->ptr != ptr || e->size != size ||
	    e->stack != stack || e->thread_idx != thread)
		fail_msg("got type %u func %u t %llu ptr %#llx size %llu stack %u thread %u; "
		         "want %u %u %llu %#llx %llu %u %u",
		         e->type, e->func, (unsigned long long)e->t, (unsigned long long)e->ptr,
		         (unsigned long long)e->size, e->stack, e->thread_idx, type, func,
		         (unsigned long long)t, (unsigned long long)ptr, (unsigned long long)size,
		         stack, thread);
}
#define ALLOC MT_E_ALLOC
#define FREE MT_E_FREE

static uint32_t le32_test(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* ---- round trip ---- */

static void build_single(struct tb *b)
{
	static const char *const argv[] = { "app", "-x" };
	static const struct tb_seg segs[] = { { 0x400000, 0x1000, 5 }, { 0x401000, 0x2000, 6 } };
	static const uint32_t skeys[] = { MT_S_RSS_BYTES, MT_S_THREADS };
	static const uint64_t svals[] = { 1 << 20, 1 };
	static const uint32_t stkeys[] = { MT_ST_EVENTS, MT_ST_NODES };
	static const uint64_t stvals[] = { 12, 3 };
	struct tb_chunk c;
	tb_init(b, 0);
	tb_process(b, 1234, 1, 1700000000000000000ull, "/usr/bin/app", 2, argv, 4096);
	tb_clock(b, 1000, 1000, 5);
	tb_module(b, 1, 1000, 0x400000, "/usr/bin/app", "\x01\x02\x03", 3, 2, segs);
	tb_module(b, 2, 1050, 0x7f0000000000, "/lib/libc.so.6", "", 0, 0, NULL);
	tb_thread(b, 0, 1234, 1000, "main");
	tb_chunk_begin(b, &c, 0);
	tb_node(&c, 1, 0, 0x401000);
	tb_node(&c, 2, 1, 0x401100);
	tb_node(&c, 3, 1, 0x401200);
	tb_alloc(&c, MT_EV_MALLOC, 1100, 64, 2, 0x10000);
	tb_alloc(&c, MT_EV_CALLOC, 1150, 4000, 3, 0x10040);
	tb_alloc(&c, MT_EV_MALLOC, 1160, 1ull << 40, 3, 0);
	tb_free(&c, 1200, 0x10000);
	tb_alloc(&c, MT_EV_POSIX_MEMALIGN, 1300, 100, 2, 0x7f0000001000);
	tb_chunk_end(b, &c);
	tb_sample(b, 2000, 2, skeys, svals);
	tb_marker(b, 1500, 0, 0, 7, "cycle 1");
	tb_block_end(b);
	tb_chunk_begin(b, &c, 0);
	tb_node(&c, 4, 3, 0x401300);
	tb_free(&c, 2100, 0x10040);
	tb_alloc(&c, MT_EV_MALLOC, 2200, 1, 4, 0x10000);
	tb_free(&c, 2300, 0x7f0000001000);
	tb_chunk_end(b, &c);
	tb_module_unload(b, 2, 2500);
	tb_thread_name(b, 0, "worker");
	tb_thread_exit(b, 0, 2900);
	tb_stats(b, 2, stkeys, stvals);
	tb_clock(b, 3000, 3000, 2005);
	tb_end(b, 3000, MT_END_EXIT);
	tb_block_end(b);
}

static void progress_cb(uint64_t done, uint64_t total, void *arg)
{
	uint64_t *last = arg;
	assert_true(done <= total);
	*last = done;
}

static void test_single_thread_round_trip(void **state)
{
	struct tb b;
	struct evlog log = {0};
	char err[MT_ERR_LEN];
	uint64_t last = 0;
	build_single(&b);
	const char *path = save(&b, "single.trace");
	struct mt_trace *tr;
	assert_int_equal(mt_trace_open(path, &tr, err, progress_cb, &last), 0);
	assert_int_equal(last, b.file.len);
	assert_int_equal(tr->n_events, 12);  /* header sum: 8 events + 4 nodes */
	assert_int_equal(tr->n_chunks, 2);
	assert_int_equal(mt_trace_replay(tr, collect, &log, err), 0);
	assert_int_equal(tr->n_events, 8);

	assert_int_equal(log.n, 8);
	expect_ev(&log.ev[0], ALLOC, MT_EV_MALLOC, 1100, 0x10000, 64, 2, 0);
	expect_ev(&log.ev[1], ALLOC, MT_EV_CALLOC, 1150, 0x10040, 4000, 3, 0);
	expect_ev(&log.ev[2], ALLOC, MT_EV_MALLOC, 1160, 0, 1ull << 40, 3, 0);
	expect_ev(&log.ev[3], FREE, MT_EV_FREE, 1200, 0x10000, 0, 0, 0);
	expect_ev(&log.ev[4], ALLOC, MT_EV_POSIX_MEMALIGN, 1300, 0x7f0000001000, 100, 2, 0);
	expect_ev(&log.ev[5], FREE, MT_EV_FREE, 2100, 0x10040, 0, 0, 0);
	expect_ev(&log.ev[6], ALLOC, MT_EV_MALLOC, 2200, 0x10000, 1, 4, 0);
	expect_ev(&log.ev[7], FREE, MT_EV_FREE, 2300, 0x7f0000001000, 0, 0, 0);
	for (size_t i = 0; i < log.n; i++)
		assert_int_equal(log.ev[i].realloc_failed, 0);

	assert_int_equal(tr->n_nodes, 5);
	assert_int_equal(tr->nodes[0].ip, 0);
	assert_int_equal(tr->nodes[1].ip, 0x401000);
	assert_int_equal(tr->nodes[1].parent, 0);
	assert_int_equal(tr->nodes[2].ip, 0x401100);
	assert_int_equal(tr->nodes[2].parent, 1);
	assert_int_equal(tr->nodes[3].parent, 1);
	assert_int_equal(tr->nodes[4].ip, 0x401300);
	assert_int_equal(tr->nodes[4].parent, 3);

	assert_int_equal(tr->cut, 0);
	assert_int_equal(tr->ended, 1);
	assert_int_equal(tr->end_reason, MT_END_EXIT);
	assert_int_equal(tr->lost_events, 0);
	assert_int_equal(tr->pid, 1234);
	assert_int_equal(tr->ppid, 1);
	assert_int_equal(tr->start_realtime_ns, 1700000000000000000ull);
	assert_string_equal(tr->exe, "/usr/bin/app");
	assert_int_equal(tr->argc, 2);
	assert_string_equal(tr->argv[1], "-x");
	assert_null(tr->argv[2]);
	assert_int_equal(tr->page_size, 4096);

	/* ticks are ns here (no TSC): ns since the first clock record */
	assert_true(tr->ns_per_tick == 1.0);
	assert_int_equal(tr->tick0, 1000);
	assert_int_equal(mt_trace_ns(tr, 1500), 500);
	assert_int_equal(mt_trace_ns(tr, 10), 0);
	assert_int_equal(tr->end_ns, 2000);

	assert_int_equal(tr->n_modules, 2);
	assert_int_equal(tr->modules[0].id, 1);
	assert_int_equal(tr->modules[0].load_bias, 0x400000);
	assert_string_equal(tr->modules[0].path, "/usr/bin/app");
	assert_int_equal(tr->modules[0].build_id_len, 3);
	assert_memory_equal(tr->modules[0].build_id, "\x01\x02\x03", 3);
	assert_int_equal(tr->modules[0].n_segs, 2);
	assert_int_equal(tr->modules[0].segs[1].start, 0x401000);
	assert_int_equal(tr->modules[0].segs[1].size, 0x2000);
	assert_int_equal(tr->modules[0].segs[1].flags, 6);
	assert_int_equal(tr->modules[0].unload_t_ns, 0);
	assert_null(tr->modules[1].build_id);
	assert_int_equal(tr->modules[1].t_ns, 50);
	assert_int_equal(tr->modules[1].unload_t_ns, 1500);

	assert_int_equal(tr->n_threads, 1);
	assert_string_equal(tr->threads[0].name, "worker");
	assert_int_equal(tr->threads[0].os_tid, 1234);
	assert_int_equal(tr->threads[0].start_ns, 0);
	assert_int_equal(tr->threads[0].exit_ns, 1900);

	assert_int_equal(tr->n_samples, 1);
	assert_int_equal(tr->samples[0].t_ns, 1000);
	assert_int_equal(tr->samples[0].n, 2);
	assert_int_equal(tr->samples[0].kv[0].key, MT_S_RSS_BYTES);
	assert_int_equal(tr->samples[0].kv[0].value, 1 << 20);
	assert_int_equal(tr->n_markers, 1);
	assert_int_equal(tr->markers[0].t_ns, 500);
	assert_int_equal(tr->markers[0].arg, 7);
	assert_string_equal(tr->markers[0].label, "cycle 1");
	assert_int_equal(mt_trace_stat(tr, MT_ST_EVENTS, 0), 12);
	assert_int_equal(mt_trace_stat(tr, MT_ST_DROPPED, 99), 99);

	mt_trace_close(tr);
	free(log.ev);
	tb_release(&b);
}

/* A second replay of the same open trace delivers the same events. */
static void test_replay_twice(void **state)
{
	struct tb b;
	struct evlog a = {0}, c = {0};
	char err[MT_ERR_LEN];
	build_single(&b);
	struct mt_trace *tr = load(save(&b, "twice.trace"), &a);
	assert_int_equal(mt_trace_replay(tr, collect, &c, err), 0);
	assert_int_equal(a.n, c.n);
	assert_memory_equal(a.ev, c.ev, a.n * sizeof *a.ev);
	assert_int_equal(tr->n_nodes, 5);
	mt_trace_close(tr);
	free(a.ev);
	free(c.ev);
	tb_release(&b);
}

static void test_stop_from_callback(void **state)
{
	struct tb b;
	struct evlog log = { .stop_after = 2 };
	char err[MT_ERR_LEN];
	struct mt_trace *tr;
	build_single(&b);
	assert_int_equal(mt_trace_open(save(&b, "stop.trace"), &tr, err, NULL, NULL), 0);
	assert_int_equal(mt_trace_replay(tr, collect, &log, err), 42);
	assert_int_equal(log.n, 2);
	mt_trace_close(tr);
	free(log.ev);
	tb_release(&b);
}

/* ---- cross-thread order ---- */

/*
 * Thread 2 frees 0x5000 at t=100 and thread 1 gets it back at t=101, but
 * thread 2's chunk is written after thread 1's (and in a later block).
 * At t=200 both act at the same time: the free still comes first, though
 * the allocating thread has the lower index.  Thread 3's chunk is first in
 * the file but latest in time.
 */
static void test_cross_thread_free_before_alloc(void **state)
{
	struct tb b;
	struct tb_chunk a, c, d;
	struct evlog log = {0};
	tb_init(&b, 0);
	tb_chunk_begin(&b, &d, 3);
	tb_alloc(&d, MT_EV_MALLOC, 1000, 8, 0, 0xa000);
	tb_chunk_end(&b, &d);
	tb_chunk_begin(&b, &a, 1);
	tb_alloc(&a, MT_EV_MALLOC, 20, 32, 0, 0x9000);
	tb_alloc(&a, MT_EV_MALLOC, 101, 16, 0, 0x5000);
	tb_alloc(&a, MT_EV_MALLOC, 200, 48, 0, 0x6000);
	tb_free(&a, 250, 0x9000);
	tb_chunk_end(&b, &a);
	tb_block_end(&b);
	tb_chunk_begin(&b, &c, 2);
	tb_alloc(&c, MT_EV_MALLOC, 10, 16, 0, 0x5000);
	tb_free(&c, 100, 0x5000);
	tb_alloc(&c, MT_EV_MALLOC, 150, 48, 0, 0x6000);
	tb_free(&c, 200, 0x6000);
	tb_chunk_end(&b, &c);
	tb_block_end(&b);

	struct mt_trace *tr = load(save(&b, "cross.trace"), &log);
	assert_int_equal(log.n, 9);
	expect_ev(&log.ev[0], ALLOC, MT_EV_MALLOC, 10, 0x5000, 16, 0, 2);
	expect_ev(&log.ev[1], ALLOC, MT_EV_MALLOC, 20, 0x9000, 32, 0, 1);
	expect_ev(&log.ev[2], FREE, MT_EV_FREE, 100, 0x5000, 0, 0, 2);
	expect_ev(&log.ev[3], ALLOC, MT_EV_MALLOC, 101, 0x5000, 16, 0, 1);
	expect_ev(&log.ev[4], ALLOC, MT_EV_MALLOC, 150, 0x6000, 48, 0, 2);
	expect_ev(&log.ev[5], FREE, MT_EV_FREE, 200, 0x6000, 0, 0, 2);
	expect_ev(&log.ev[6], ALLOC, MT_EV_MALLOC, 200, 0x6000, 48, 0, 1);
	expect_ev(&log.ev[7], FREE, MT_EV_FREE, 250, 0x9000, 0, 0, 1);
	expect_ev(&log.ev[8], ALLOC, MT_EV_MALLOC, 1000, 0xa000, 8, 0, 3);
	assert_int_equal(tr->n_chunks, 3);
	mt_trace_close(tr);
	free(log.ev);
	tb_release(&b);
}

/*
 * A writer may leave t_first at 0 and put the whole time in the first delta
 * (the recorder does when a chunk starts with node definitions): same
 * absolute times, same order, the chunk is just loaded early.
 */
static void test_zero_t_first(void **state)
{
	struct tb b;
	struct tb_chunk a, c;
	struct evlog log = {0};
	tb_init(&b, 0);
	tb_chunk_begin(&b, &c, 2);
	c.timed = 1;  /* base 0 */
	tb_node(&c, 1, 0, 0x42);
	tb_alloc(&c, MT_EV_MALLOC, 5000, 8, 1, 0x100);
	tb_free(&c, 7000, 0x100);
	tb_chunk_end(&b, &c);
	tb_chunk_begin(&b, &a, 1);
	tb_alloc(&a, MT_EV_MALLOC, 4000, 8, 0, 0x200);
	tb_alloc(&a, MT_EV_MALLOC, 6000, 8, 0, 0x300);
	tb_chunk_end(&b, &a);
	tb_block_end(&b);
	struct mt_trace *tr = load(save(&b, "t0.trace"), &log);
	assert_int_equal(tr->chunks[0].t_first, 0);
	assert_int_equal(log.n, 4);
	expect_ev(&log.ev[0], ALLOC, MT_EV_MALLOC, 4000, 0x200, 8, 0, 1);
	expect_ev(&log.ev[1], ALLOC, MT_EV_MALLOC, 5000, 0x100, 8, 1, 2);
	expect_ev(&log.ev[2], ALLOC, MT_EV_MALLOC, 6000, 0x300, 8, 0, 1);
	expect_ev(&log.ev[3], FREE, MT_EV_FREE, 7000, 0x100, 0, 0, 2);
	mt_trace_close(tr);
	free(log.ev);
	tb_release(&b);
}

/* ---- realloc ---- */

static void test_realloc_halves(void **state)
{
	struct tb b;
	struct tb_chunk a, c;
	struct evlog log = {0};
	tb_init(&b, 0);
	tb_chunk_begin(&b, &a, 1);
	tb_alloc(&a, MT_EV_MALLOC, 10, 100, 0, 0x1000);
	tb_realloc(&a, MT_EV_REALLOC, 20, 0x1000, 40, 200, 0, 0x2000);
	tb_realloc(&a, MT_EV_REALLOC, 50, 0, 51, 300, 0, 0x4000);         /* realloc(NULL, n) */
	tb_realloc(&a, MT_EV_REALLOCARRAY, 60, 0x2000, 61, 0, 0, 0);      /* realloc(p, 0) frees */
	tb_free(&a, 70, 0x4000);
	tb_chunk_end(&b, &a);
	tb_chunk_begin(&b, &c, 2);
	tb_alloc(&c, MT_EV_MALLOC, 30, 8, 0, 0x3000);
	tb_chunk_end(&b, &c);
	tb_block_end(&b);

	struct mt_trace *tr = load(save(&b, "realloc.trace"), &log);
	assert_int_equal(log.n, 8);
	expect_ev(&log.ev[0], ALLOC, MT_EV_MALLOC, 10, 0x1000, 100, 0, 1);
	expect_ev(&log.ev[1], FREE, MT_EV_REALLOC, 20, 0x1000, 0, 0, 1);
	expect_ev(&log.ev[2], ALLOC, MT_EV_MALLOC, 30, 0x3000, 8, 0, 2);
	expect_ev(&log.ev[3], ALLOC, MT_EV_REALLOC, 40, 0x2000, 200, 0, 1);
	expect_ev(&log.ev[4], ALLOC, MT_EV_REALLOC, 51, 0x4000, 300, 0, 1);
	expect_ev(&log.ev[5], FREE, MT_EV_REALLOCARRAY, 60, 0x2000, 0, 0, 1);
	expect_ev(&log.ev[6], ALLOC, MT_EV_REALLOCARRAY, 61, 0, 0, 0, 1);
	expect_ev(&log.ev[7], FREE, MT_EV_FREE, 70, 0x4000, 0, 0, 1);
	for (size_t i = 0; i < log.n; i++)
		assert_int_equal(log.ev[i].realloc_failed, 0);
	assert_int_equal(tr->n_events, 6);  /* calls: a realloc counts once */
	mt_trace_close(tr);
	free(log.ev);
	tb_release(&b);
}

static void test_failed_realloc(void **state)
{
	struct tb b;
	struct tb_chunk a;
	struct evlog log = {0};
	tb_init(&b, 0);
	tb_chunk_begin(&b, &a, 0);
	tb_alloc(&a, MT_EV_MALLOC, 10, 100, 1, 0x1000);
	tb_realloc(&a, MT_EV_REALLOC, 20, 0x1000, 25, 1ull << 45, 1, 0);
	tb_free(&a, 30, 0x1000);  /* the old block stayed live; prev_ptr is now 0 */
	tb_chunk_end(&b, &a);
	tb_block_end(&b);

	struct mt_trace *tr = load(save(&b, "failed.trace"), &log);
	assert_int_equal(log.n, 3);
	expect_ev(&log.ev[0], ALLOC, MT_EV_MALLOC, 10, 0x1000, 100, 1, 0);
	expect_ev(&log.ev[1], ALLOC, MT_EV_REALLOC, 25, 0, 1ull << 45, 1, 0);
	assert_int_equal(log.ev[1].realloc_failed, 1);
	expect_ev(&log.ev[2], FREE, MT_EV_FREE, 30, 0x1000, 0, 0, 0);
	assert_int_equal(log.ev[2].realloc_failed, 0);
	mt_trace_close(tr);
	free(log.ev);
	tb_release(&b);
}

/* ---- extensibility ---- */

static void test_unknown_record_kinds_skipped(void **state)
{
	struct tb b;
	struct tb_chunk a;
	struct evlog log = {0};
	tb_init(&b, 0);
	tb_record(&b, 200, "xyz", 3);
	tb_record(&b, 0, NULL, 0);
	tb_record(&b, 99, "\x80\x80\x80", 3);  /* even a malformed payload: never looked at */
	/* a clock record with a field a later minor appended */
	struct tb_buf p = {0};
	tb_varint(&p, 500);
	tb_varint(&p, 7000);
	tb_varint(&p, 1);
	tb_varint(&p, 123456);
	tb_emit(&b, MT_REC_CLOCK, &p);
	tb_chunk_begin(&b, &a, 0);
	tb_alloc(&a, MT_EV_MALLOC, 600, 10, 0, 0x100);
	tb_chunk_end(&b, &a);
	tb_record(&b, 255, "0123456789", 10);
	tb_block_end(&b);

	struct mt_trace *tr = load(save(&b, "unknown.trace"), &log);
	assert_int_equal(log.n, 1);
	expect_ev(&log.ev[0], ALLOC, MT_EV_MALLOC, 600, 0x100, 10, 0, 0);
	assert_int_equal(tr->tick0, 500);
	assert_int_equal(mt_trace_ns(tr, 600), 100);
	mt_trace_close(tr);
	free(log.ev);
	tb_release(&b);
}

/* A later minor with a larger file header: blocks start at header_size. */
static void test_larger_file_header(void **state)
{
	struct tb b;
	struct tb_chunk a;
	struct evlog log = {0};
	tb_init(&b, 0);
	b.file.p[10] = 7;          /* minor 7 */
	b.file.p[12] = 40;         /* header_size 40 */
	tb_le(&b.file, 0, 8);
	tb_chunk_begin(&b, &a, 0);
	tb_free(&a, 5, 0x10);
	tb_chunk_end(&b, &a);
	tb_block_end(&b);
	struct mt_trace *tr = load(save(&b, "minor.trace"), &log);
	assert_int_equal(tr->minor, 7);
	assert_int_equal(log.n, 1);
	mt_trace_close(tr);
	free(log.ev);
	tb_release(&b);
}

/* ---- cut and corrupt files ---- */

/* Three blocks of three events each; returns the offsets of the blocks. */
static void build_three_blocks(struct tb *b, uint64_t off[3])
{
	tb_init(b, 0);
	tb_clock(b, 0, 0, 0);
	for (int k = 0; k < 3; k++) {
		struct tb_chunk c;
		tb_chunk_begin(b, &c, 0);
		tb_alloc(&c, MT_EV_MALLOC, 100 * k + 1, 16, 0, 0x1000 + k);
		tb_alloc(&c, MT_EV_MALLOC, 100 * k + 2, 16, 0, 0x2000 + k);
		tb_free(&c, 100 * k + 3, 0x1000 + k);
		tb_chunk_end(b, &c);
		tb_sample(b, 100 * k + 4, 0, NULL, NULL);
		off[k] = tb_block_end(b);
	}
}

static void test_truncated_at_every_offset(void **state)
{
	struct tb b;
	uint64_t off[3];
	char err[MT_ERR_LEN];
	build_three_blocks(&b, off);
	for (size_t len = off[2]; len < b.file.len; len++) {
		struct evlog log = {0};
		struct mt_trace *tr = load(save_bytes(b.file.p, len, "cut.trace"), &log);
		assert_int_equal(tr->cut, len > off[2]);
		assert_int_equal(log.n, 6);
		assert_int_equal(tr->n_samples, 2);
		expect_ev(&log.ev[5], FREE, MT_EV_FREE, 103, 0x1001, 0, 0, 0);
		mt_trace_close(tr);
		free(log.ev);
	}
	for (size_t len = 1; len < MT_FILE_HEADER_SIZE; len++)
		expect_open_error(save_bytes(b.file.p, len, "cut.trace"), -EINVAL, "cut inside its file header");
	struct mt_trace *tr;
	assert_int_equal(mt_trace_open(save_bytes(b.file.p, MT_FILE_HEADER_SIZE, "cut.trace"), &tr, err,
	                               NULL, NULL), 0);
	assert_int_equal(tr->n_chunks, 0);
	assert_int_equal(tr->cut, 0);
	mt_trace_close(tr);
	tb_release(&b);
}

static void test_bad_middle_block(void **state)
{
	struct tb b;
	uint64_t off[3];
	char want[64];
	build_three_blocks(&b, off);
	snprintf(want, sizeof want, "corrupt block at offset %llu", (unsigned long long)off[1]);

	b.file.p[off[1] + 12] ^= 1;  /* header check */
	expect_open_error(save(&b, "bad.trace"), -EINVAL, want);
	b.file.p[off[1] + 12] ^= 1;

	b.file.p[off[1] + 0] ^= 0x20;  /* header magic */
	expect_open_error(save(&b, "bad.trace"), -EINVAL, want);
	b.file.p[off[1] + 0] ^= 0x20;

	size_t last = off[2] - 5;  /* a byte of the frame: zstd's checksum catches it */
	b.file.p[last] ^= 0x40;
	expect_open_error(save(&b, "bad.trace"), -EINVAL, want);
	b.file.p[last] ^= 0x40;
	tb_release(&b);
}

/* The same damage to the final block is a crash's torn write: cut, not corrupt. */
static void test_bad_last_block_is_cut(void **state)
{
	struct tb b;
	uint64_t off[3];
	build_three_blocks(&b, off);
	/* a damaged frame in the last block reads as a torn write ... */
	size_t spots[] = { off[2] + 20, b.file.len - 1 };
	for (size_t i = 0; i < 2; i++) {
		struct evlog log = {0};
		b.file.p[spots[i]] ^= 0x11;
		struct mt_trace *tr = load(save(&b, "badlast.trace"), &log);
		assert_int_equal(tr->cut, 1);
		assert_int_equal(log.n, 6);
		mt_trace_close(tr);
		free(log.ev);
		b.file.p[spots[i]] ^= 0x11;
	}
	/* ... but a header that fails its check with data after it is corruption:
	   a header is written whole, and its sizes cannot be trusted */
	b.file.p[off[2] + 12] ^= 0x11;
	const char *bad = save(&b, "badhdr.trace");
	struct mt_trace *bt = NULL;
	char err[MT_ERR_LEN];
	assert_int_equal(mt_trace_open(bad, &bt, err, NULL, NULL), -EINVAL);
	assert_non_null(strstr(err, "corrupt block"));
	b.file.p[off[2] + 12] ^= 0x11;
	/* zeros after the last good block (an extended, never written tail) */
	uint8_t *z = calloc(1, b.file.len + 4096);
	memcpy(z, b.file.p, off[2]);
	struct evlog log = {0};
	struct mt_trace *tr = load(save_bytes(z, off[2] + 4096, "zeros.trace"), &log);
	assert_int_equal(tr->cut, 1);
	assert_int_equal(log.n, 6);
	mt_trace_close(tr);
	free(log.ev);
	free(z);
	tb_release(&b);
}

static void test_foreign_files(void **state)
{
	static const uint8_t elf[64] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0 };
	expect_open_error(save_bytes(elf, sizeof elf, "elf"), -EINVAL, "is not a memtriage trace (bad magic)");
	expect_open_error("/proc/self/exe", -EINVAL, "is not a memtriage trace");
	const char *text = "hello, world\nthis is not a trace at all, just text\n";
	expect_open_error(save_bytes(text, strlen(text), "text"), -EINVAL, "is not a memtriage trace");
	expect_open_error(save_bytes("MEMTRACX", 8, "short"), -EINVAL, "is not a memtriage trace");
	expect_open_error(save_bytes("MEM", 3, "shorter"), -EINVAL, "cut inside its file header");
}

static void test_empty_and_missing(void **state)
{
	expect_open_error(save_bytes("", 0, "empty.trace"), -EINVAL, "is empty");
	expect_open_error(tpath("missing.trace"), -ENOENT, "cannot open trace");
	expect_open_error(tmpdir, -EISDIR, "cannot read trace");
}

static void test_other_major_rejected(void **state)
{
	struct tb b;
	tb_init(&b, 0);
	tb_block_end(&b);
	b.file.p[8] = 2;
	expect_open_error(save(&b, "v2.trace"), -EINVAL, "trace format 2.0");
	b.file.p[8] = 1;
	b.file.p[12] = 8;  /* header_size below 32 */
	expect_open_error(save(&b, "hs.trace"), -EINVAL, "corrupt file header");
	tb_release(&b);
}

/* ---- events: loss, nodes, malformed ---- */

static void test_lost_events(void **state)
{
	struct tb b;
	struct tb_chunk c;
	struct evlog log = {0};
	tb_init(&b, 0);
	tb_chunk_begin(&b, &c, 0);
	tb_free(&c, 1, 0x10);
	tb_free(&c, 2, 0x20);
	tb_chunk_end(&b, &c);                /* seq 0..1 */
	tb_chunk_begin(&b, &c, 0);
	c.first_seq = 9;                     /* 7 events never written */
	tb_free(&c, 3, 0x30);
	tb_chunk_end(&b, &c);
	tb_chunk_begin(&b, &c, 1);
	c.first_seq = 5;                     /* thread 1's first 5 are gone too */
	tb_free(&c, 4, 0x40);
	tb_chunk_end(&b, &c);
	tb_block_end(&b);
	struct mt_trace *tr = load(save(&b, "lost.trace"), &log);
	assert_int_equal(tr->lost_events, 12);
	assert_int_equal(log.n, 4);
	mt_trace_close(tr);
	free(log.ev);
	tb_release(&b);
}

/* Thread 1 uses node 7 that thread 2 defines in a chunk later in the file. */
static void test_nodes_defined_by_other_thread(void **state)
{
	struct tb b;
	struct tb_chunk c;
	struct evlog log = {0};
	tb_init(&b, 0);
	tb_chunk_begin(&b, &c, 1);
	tb_alloc(&c, MT_EV_MALLOC, 50, 8, 7, 0x100);
	tb_chunk_end(&b, &c);
	tb_block_end(&b);
	tb_chunk_begin(&b, &c, 2);
	tb_node(&c, 6, 0, 0x500);
	tb_node(&c, 7, 6, 0x400);
	tb_node(&c, 6, 0, 0x500);  /* defined again: the recorder's cache is bounded */
	tb_alloc(&c, MT_EV_MALLOC, 10, 8, 7, 0x200);
	tb_chunk_end(&b, &c);
	tb_block_end(&b);
	struct mt_trace *tr = load(save(&b, "nodes.trace"), &log);
	assert_int_equal(log.n, 2);
	assert_int_equal(log.ev[1].stack, 7);
	assert_int_equal(tr->n_nodes, 8);
	assert_int_equal(tr->nodes[7].ip, 0x400);
	assert_int_equal(tr->nodes[7].parent, 6);
	assert_int_equal(tr->nodes[3].ip, 0);
	assert_int_equal(tr->n_events, 2);
	mt_trace_close(tr);
	free(log.ev);
	tb_release(&b);
}

/* Builds one chunk of thread 5 whose events are `bytes`, announcing n events. */
static int replay_raw_events(const void *bytes, size_t len, uint32_t n, char *err)
{
	struct tb b;
	struct tb_chunk c;
	struct evlog log = {0};
	struct mt_trace *tr;
	tb_init(&b, 0);
	tb_chunk_begin(&b, &c, 5);
	tb_free(&c, 1, 0x10);
	tb_put(&c.ev, bytes, len);
	c.n_events += n;
	tb_chunk_end(&b, &c);
	tb_block_end(&b);
	assert_int_equal(mt_trace_open(save(&b, "raw.trace"), &tr, err, NULL, NULL), 0);
	int r = mt_trace_replay(tr, collect, &log, err);
	mt_trace_close(tr);
	free(log.ev);
	tb_release(&b);
	return r;
}

static void test_malformed_events(void **state)
{
	char err[MT_ERR_LEN];
	static const struct { const char *bytes; size_t len; uint32_t n; const char *msg; } cases[] = {
		{ "\x7f\x01\x01", 3, 1, "malformed events in thread 5" },            /* unknown tag */
		{ "\x01\x01\x01", 3, 1, "malformed events in thread 5" },            /* malloc cut short */
		{ "\x10\x01\x02", 3, 2, "malformed events in thread 5" },            /* count too high */
		{ "\x10\x01\x02\x10\x01\x02", 6, 1, "malformed events in thread 5" },/* count too low */
		{ "\x10\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01\x02", 13, 1, "malformed events" },
		{ "\x01\x00\x01\x80\x80\x80\x80\x80\x01\x00", 10, 1, "malformed events" }, /* stack > 32 bits */
		{ "\x20\x02\x00\x02", 4, 1, "malformed events" },                    /* parent == id */
		{ "\x20\x00\x00\x02", 4, 1, "malformed events" },                    /* node id 0 */
		{ "\x20\x02\x02\x00", 4, 1, "malformed events" },                    /* ip 0 */
		{ "\x20\x02\x02\x02\x20\x00\x02\x04", 8, 2, "conflicting definitions of call-stack node 1" },
		{ "\x20\x80\x80\x80\x80\x02\x02\x02", 8, 1, "beyond the reader limit" }, /* node id 2^28 */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int r = replay_raw_events(cases[i].bytes, cases[i].len, cases[i].n, err);
		if (r >= 0 || !strstr(err, cases[i].msg))
			fail_msg("case %zu: r %d, '%s'", i, r, err);
	}
	assert_int_equal(replay_raw_events("\x10\x01\x02", 3, 1, err), 0);
}

static void test_malformed_records(void **state)
{
	struct tb b;
	tb_init(&b, 0);
	tb_record(&b, MT_REC_CLOCK, "\x01\x02", 2);  /* clock lacks realtime */
	tb_block_end(&b);
	expect_open_error(save(&b, "mrec.trace"), -EINVAL, "malformed clock record at offset 0 of block at offset 32");
	tb_release(&b);

	tb_init(&b, 0);
	tb_u8(&b.raw, MT_REC_EVENTS);  /* events header overruns the block */
	tb_le(&b.raw, 100, 4);
	tb_le(&b.raw, 0, 35);
	tb_block_end(&b);
	expect_open_error(save(&b, "mrec.trace"), -EINVAL, "malformed events record");
	tb_release(&b);

	tb_init(&b, 0);
	tb_u8(&b.raw, 77);  /* an unknown record whose length overruns the block */
	tb_varint(&b.raw, 10);
	tb_block_end(&b);
	expect_open_error(save(&b, "mrec.trace"), -EINVAL, "malformed record (kind 77)");
	tb_release(&b);
}

/* ---- clock fit ---- */

static void test_tsc_clock_fit(void **state)
{
	struct tb b;
	char err[MT_ERR_LEN];
	struct mt_trace *tr;
	tb_init(&b, MT_FILE_TSC);
	tb_clock(&b, 1000000, 5000, 0);
	tb_clock(&b, 2500000, 505000, 0);
	tb_clock(&b, 4000000, 1005000, 0);
	tb_sample(&b, 4000000, 0, NULL, NULL);
	tb_block_end(&b);
	assert_int_equal(mt_trace_open(save(&b, "tsc.trace"), &tr, err, NULL, NULL), 0);
	assert_true(tr->ns_per_tick > 0.3333333 && tr->ns_per_tick < 0.3333334);
	assert_int_equal(tr->tick0, 1000000);
	assert_int_equal(mt_trace_ns(tr, 2500000), 500000);
	assert_int_equal(tr->samples[0].t_ns, 1000000);
	mt_trace_close(tr);
	tb_release(&b);

	tb_init(&b, MT_FILE_TSC);  /* one clock record: 1 ns per tick, documented fallback */
	tb_clock(&b, 1000000, 5000, 0);
	tb_block_end(&b);
	assert_int_equal(mt_trace_open(save(&b, "tsc1.trace"), &tr, err, NULL, NULL), 0);
	assert_true(tr->ns_per_tick == 1.0);
	assert_int_equal(mt_trace_ns(tr, 1000300), 300);
	mt_trace_close(tr);
	tb_release(&b);
}

/* ---- randomized merge against a reference order ---- */

static int ref_cmp(const void *a, const void *b)
{
	const struct mt_event *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	if (x->type != y->type)
		return x->type == MT_E_FREE ? -1 : 1;
	return x->thread_idx < y->thread_idx ? -1 : x->thread_idx > y->thread_idx;
}

/* Appends a batch to an evlog (mt_events_fn); batches are never empty. */
static int collect_batch(const struct mt_event *ev, size_t n, void *arg)
{
	assert_true(n >= 1 && n <= MT_REPLAY_BATCH);
	for (size_t i = 0; i < n; i++)
		collect(&ev[i], arg);
	return 0;
}

/*
 * Six threads, chunks of random length flushed in random order across many
 * blocks (more than the block cache holds), times strictly increasing per
 * thread and tying across threads: the replay must equal a sort by
 * (time, frees first, thread).  The same whether pass 1 keeps every block
 * for replay, some or none (replay then reads them again), and whether
 * events come one by one or in batches.
 */
static void test_random_merge(void **state)
{
	enum { THREADS = 6, EVENTS = 20000 };
	struct tb b;
	struct tb_chunk ch[THREADS];
	uint64_t t[THREADS] = {0}, live[THREADS] = {0};
	struct mt_event *ref = calloc(2 * EVENTS, sizeof *ref);
	size_t n_ref = 0;
	struct evlog log = {0};
	tb_init(&b, 0);
	for (int i = 0; i < THREADS; i++)
		tb_chunk_begin(&b, &ch[i], (uint32_t)i);
	for (int e = 0; e < EVENTS; e++) {
		int i = (int)(rnd() % THREADS);
		struct tb_chunk *c = &ch[i];
		uint64_t ptr = (uint64_t)(i + 1) << 32 | (rnd() % 1000) << 4;
		t[i] += 1 + rnd() % 3;
		int kind = (int)(rnd() % 4);
		if (kind == 0 && live[i]) {
			tb_free(c, t[i], live[i]);
			ref[n_ref++] = (struct mt_event){ .t = t[i], .ptr = live[i], .thread_idx = (uint32_t)i,
			                                  .type = FREE, .func = MT_EV_FREE };
			live[i] = 0;
		} else if (kind == 1 && live[i]) {
			uint64_t ta = t[i] + 1 + rnd() % 2;
			tb_realloc(c, MT_EV_REALLOC, t[i], live[i], ta, 77, 3, ptr);
			ref[n_ref++] = (struct mt_event){ .t = t[i], .ptr = live[i], .thread_idx = (uint32_t)i,
			                                  .type = FREE, .func = MT_EV_REALLOC };
			ref[n_ref++] = (struct mt_event){ .t = ta, .ptr = ptr, .size = 77, .stack = 3,
			                                  .thread_idx = (uint32_t)i, .type = ALLOC,
			                                  .func = MT_EV_REALLOC };
			live[i] = ptr;
			t[i] = ta;
		} else {
			tb_alloc(c, MT_EV_MALLOC, t[i], 16 + e, 1, ptr);
			ref[n_ref++] = (struct mt_event){ .t = t[i], .ptr = ptr, .size = 16 + (uint64_t)e,
			                                  .stack = 1, .thread_idx = (uint32_t)i,
			                                  .type = ALLOC, .func = MT_EV_MALLOC };
			live[i] = ptr;
		}
		if (rnd() % 200 == 0) {
			tb_chunk_end(&b, c);
			tb_chunk_begin(&b, c, (uint32_t)i);
		}
		if (rnd() % 300 == 0)
			tb_block_end(&b);
	}
	for (int i = THREADS - 1; i >= 0; i--)
		tb_chunk_end(&b, &ch[i]);
	tb_block_end(&b);
	qsort(ref, n_ref, sizeof *ref, ref_cmp);

	const char *path = save(&b, "merge.trace");
	const uint64_t keep[] = { MT_TRACE_KEEP_MAX, 0, 40000 };
	for (size_t i = 0; i < 2 * sizeof(keep) / sizeof(keep[0]); i++) {
		char err[MT_ERR_LEN];
		struct mt_trace *tr;
		mt_trace_keep_max = keep[i / 2];
		log.n = 0;
		assert_int_equal(mt_trace_open(path, &tr, err, NULL, NULL), 0);
		if (i % 2)
			assert_int_equal(mt_trace_replay_batch(tr, collect_batch, &log, err), 0);
		else
			assert_int_equal(mt_trace_replay(tr, collect, &log, err), 0);
		assert_int_equal(log.n, n_ref);
		for (size_t k = 0; k < n_ref; k++)
			expect_ev(&log.ev[k], ref[k].type, ref[k].func, ref[k].t, ref[k].ptr, ref[k].size,
			          ref[k].stack, ref[k].thread_idx);
		assert_true(tr->n_chunks > 50);
		mt_trace_close(tr);
	}
	mt_trace_keep_max = MT_TRACE_KEEP_MAX;
	free(log.ev);
	free(ref);
	tb_release(&b);
}

/* ---- big arrays ---- */

/* Growth keeps the contents and zeroes the rest, from the heap into mappings and between them. */
static void test_big_arrays(void **state)
{
	static const size_t sizes[] = { 0, 100, MT_BIG_MMAP_MIN - 1, MT_BIG_MMAP_MIN, 3u << 20, 10u << 20 };
	unsigned char *p = mt_big_alloc(0);
	assert_non_null(p);
	for (size_t i = 1; i < sizeof sizes / sizeof sizes[0]; i++) {
		p = mt_big_grow(p, sizes[i - 1], sizes[i]);
		assert_non_null(p);
		for (size_t j = 0; j < sizes[i]; j++)
			if (p[j] != (j < sizes[i - 1] ? (unsigned char)(j * 7) : 0))
				fail_msg("byte %zu of %zu after growing from %zu", j, sizes[i], sizes[i - 1]);
		for (size_t j = sizes[i - 1]; j < sizes[i]; j++)
			p[j] = (unsigned char)(j * 7);
	}
	mt_big_free(p, sizes[sizeof sizes / sizeof sizes[0] - 1]);
	mt_big_free(NULL, 123);
}

/* ---- fuzzing ---- */

static int count_only(const struct mt_event *ev, void *arg)
{
	(*(uint64_t *)arg)++;
	return 0;
}

struct fuzz_tally { int open_failed, replay_failed, cut, whole; };

/* Opens and replays whatever is at path; only crashes, hangs and silent errors fail. */
static void survive(const char *path, struct fuzz_tally *tally)
{
	char err[MT_ERR_LEN];
	struct mt_trace *tr;
	uint64_t n = 0;
	int r = mt_trace_open(path, &tr, err, NULL, NULL);
	if (r) {
		assert_true(r < 0);
		assert_non_null(memchr(err, 0, MT_ERR_LEN));
		assert_true(err[0] != 0);
		tally->open_failed++;
		return;
	}
	r = mt_trace_replay(tr, count_only, &n, err);
	assert_true(r <= 0);
	if (r)
		assert_true(err[0] != 0);
	tally->replay_failed += r != 0;
	tally->cut += !r && tr->cut;
	tally->whole += !r && !tr->cut;
	mt_trace_close(tr);
}

static void tally_print(const char *what, const struct fuzz_tally *t)
{
	print_message("%s: %d open errors, %d replay errors, %d read as cut, %d read whole\n", what,
	              t->open_failed, t->replay_failed, t->cut, t->whole);
}

/* A trace with every record kind, two threads, nodes and reallocs. */
static void build_fuzz_base(struct tb *b)
{
	struct tb_chunk c0, c1;
	build_single(b);
	tb_chunk_begin(b, &c0, 0);
	tb_chunk_begin(b, &c1, 1);
	for (int i = 0; i < 200; i++) {
		tb_node(&c1, 10 + i, 9 + i, 0x500000 + 16 * i);
		tb_alloc(&c0, MT_EV_MALLOC, 4000 + 2 * i, 32, 2, 0x20000 + 32 * i);
		tb_realloc(&c1, MT_EV_REALLOC, 4000 + 2 * i, 0, 4001 + 2 * i, 64, 10 + i, 0x30000 + 64 * i);
		if (i % 50 == 49) {
			tb_chunk_end(b, &c0);
			tb_chunk_begin(b, &c0, 0);
			tb_block_end(b);
		}
	}
	tb_chunk_end(b, &c1);
	tb_chunk_end(b, &c0);
	tb_block_end(b);
}

static void test_fuzz_file_bytes(void **state)
{
	struct tb b;
	build_fuzz_base(&b);
	uint8_t *buf = malloc(b.file.len);
	struct fuzz_tally tally = {0};
	alarm(FUZZ_TIMEOUT_S);
	for (int v = 0; v < FUZZ_VARIANTS; v++) {
		memcpy(buf, b.file.p, b.file.len);
		size_t len = b.file.len;
		int flips = 1 + (int)(rnd() % 4);
		for (int f = 0; f < flips; f++) {
			size_t at = v % 4 == 0 ? rnd() % 64 : rnd() % len;  /* headers get extra attention */
			buf[at] ^= (uint8_t)(1 + rnd() % 255);
		}
		if (v % 10 == 0)
			len = rnd() % len;
		survive(save_bytes(buf, len, "fuzz.trace"), &tally);
	}
	alarm(0);
	tally_print("file bytes", &tally);
	free(buf);
	tb_release(&b);
}

/* Flips bytes inside the records before compression, so the decoders see them. */
static void test_fuzz_record_bytes(void **state)
{
	struct tb base;
	build_fuzz_base(&base);
	/* recover the raw records of the file's blocks by decompressing them */
	struct tb_buf raw[16];
	size_t n_raw = 0;
	for (size_t off = MT_FILE_HEADER_SIZE; off < base.file.len && n_raw < 16;) {
		uint32_t comp = le32_test(base.file.p + off + 4), rawsz = le32_test(base.file.p + off + 8);
		raw[n_raw] = (struct tb_buf){ malloc(rawsz + 1), rawsz, rawsz + 1 };
		assert_int_equal(ZSTD_decompress(raw[n_raw].p, rawsz, base.file.p + off + 16, comp), rawsz);
		n_raw++;
		off += 16 + comp;
	}
	assert_true(n_raw >= 4);
	struct fuzz_tally tally = {0};
	alarm(FUZZ_TIMEOUT_S);
	for (int v = 0; v < FUZZ_VARIANTS; v++) {
		struct tb b;
		tb_init(&b, v % 3 ? 0 : MT_FILE_TSC);
		size_t victim = rnd() % n_raw;
		for (size_t k = 0; k < n_raw; k++) {
			tb_put(&b.raw, raw[k].p, raw[k].len);
			if (k == victim && b.raw.len) {
				int flips = 1 + (int)(rnd() % 3);
				for (int f = 0; f < flips; f++)
					b.raw.p[rnd() % b.raw.len] ^= (uint8_t)(1 + rnd() % 255);
				if (v % 8 == 0)
					b.raw.len = rnd() % b.raw.len;
			}
			tb_block_end(&b);
		}
		survive(save(&b, "rfuzz.trace"), &tally);
		tb_release(&b);
	}
	alarm(0);
	tally_print("record bytes", &tally);
	for (size_t k = 0; k < n_raw; k++)
		free(raw[k].p);
	tb_release(&base);
}

/* ---- setup ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int group_setup(void **state)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/mt_test_reader.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_thread_round_trip),
		cmocka_unit_test(test_replay_twice),
		cmocka_unit_test(test_stop_from_callback),
		cmocka_unit_test(test_cross_thread_free_before_alloc),
		cmocka_unit_test(test_zero_t_first),
		cmocka_unit_test(test_realloc_halves),
		cmocka_unit_test(test_failed_realloc),
		cmocka_unit_test(test_unknown_record_kinds_skipped),
		cmocka_unit_test(test_larger_file_header),
		cmocka_unit_test(test_truncated_at_every_offset),
		cmocka_unit_test(test_bad_middle_block),
		cmocka_unit_test(test_bad_last_block_is_cut),
		cmocka_unit_test(test_foreign_files),
		cmocka_unit_test(test_empty_and_missing),
		cmocka_unit_test(test_other_major_rejected),
		cmocka_unit_test(test_lost_events),
		cmocka_unit_test(test_nodes_defined_by_other_thread),
		cmocka_unit_test(test_malformed_events),
		cmocka_unit_test(test_malformed_records),
		cmocka_unit_test(test_tsc_clock_fit),
		cmocka_unit_test(test_random_merge),
		cmocka_unit_test(test_big_arrays),
		cmocka_unit_test(test_fuzz_file_bytes),
		cmocka_unit_test(test_fuzz_record_bytes),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
