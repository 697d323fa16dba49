/*
 * Trace builder for tests: writes synthetic v1 traces (docs/trace-format.md)
 * in memory, byte for byte as the recorder would, so reader and analyzer
 * tests can state exactly what a trace holds.
 *
 *   struct tb b;
 *   tb_init(&b, 0);                          file header, flags MT_FILE_*
 *   tb_clock(&b, 1000, 1000, 0);             small records go into the open block
 *   struct tb_chunk c;
 *   tb_chunk_begin(&b, &c, 0);               events of thread 0
 *   tb_node(&c, 1, 0, 0x401000);
 *   tb_alloc(&c, MT_EV_MALLOC, 1100, 64, 1, 0x10000);
 *   tb_free(&c, 1200, 0x10000);
 *   tb_chunk_end(&b, &c);                    appends the MT_REC_EVENTS record
 *   uint64_t off = tb_block_end(&b);         compresses the block; returns its offset
 *   tb_write(&b, "x.trace");
 *   tb_release(&b);
 *
 * Times are absolute ticks; the builder writes the deltas.  Any number of
 * chunks may be open at once (one per thread, say); each is appended to the
 * open block when ended, so file order is end order.  tb_chunk_begin takes
 * first_seq from a per-thread counter (thread_idx < TB_THREADS); set
 * c.first_seq after it to fake a loss, or c.timed = 1 to leave t_first at
 * 0 and write the whole time as the first delta (as the recorder does when
 * a chunk starts with node definitions).  Tests may edit b.file.p (whole file
 * image) and b.raw.p (records of the open block) directly to corrupt them.
 * Out of memory aborts: this is test code.
 */
#ifndef MT_TESTS_TRACE_BUILDER_H
#define MT_TESTS_TRACE_BUILDER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "trace/format.h"
#include "trace/varint.h"
#include "trace/columns.h"

#define TB_THREADS 256   /* thread indices with an automatic sequence counter */

struct tb_buf {
	uint8_t *p;
	size_t len, cap;
};

struct tb_chunk {
	struct tb_buf ev;        /* encoded events */
	uint32_t thread_idx, n_events;
	uint64_t t_first, t_last, first_seq;
	uint64_t t, prev_ptr, prev_id, prev_ip;  /* delta bases */
	int timed;               /* a timed event was written (t_first is set) */
};

struct tb {
	struct tb_buf file;      /* the whole file image */
	struct tb_buf raw;       /* records of the open block */
	uint64_t seq[TB_THREADS];
	int level;               /* zstd level, 1 unless a test changes it */
	ZSTD_CCtx *cctx;
};

static inline void tb_reserve(struct tb_buf *b, size_t n)
{
	if (b->len + n <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	b->p = realloc(b->p, cap);
	if (!b->p) {
		fprintf(stderr, "trace_builder: out of memory\n");
		abort();
	}
	b->cap = cap;
}

static inline void tb_put(struct tb_buf *b, const void *src, size_t n)
{
	if (!n)
		return;
	tb_reserve(b, n);
	memcpy(b->p + b->len, src, n);
	b->len += n;
}

static inline void tb_u8(struct tb_buf *b, uint8_t v) { tb_put(b, &v, 1); }

/* v as `bytes` little-endian bytes; bytes past the eighth are zero. */
static inline void tb_le(struct tb_buf *b, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		tb_u8(b, i < 8 ? (uint8_t)(v >> (8 * i)) : 0);
}

static inline void tb_varint(struct tb_buf *b, uint64_t v)
{
	tb_reserve(b, MT_VARINT_MAX);
	b->len = (size_t)(mt_put_varint(b->p + b->len, v) - b->p);
}

static inline void tb_svarint(struct tb_buf *b, int64_t v) { tb_varint(b, mt_zigzag(v)); }

static inline void tb_bytes(struct tb_buf *b, const void *s, size_t n)
{
	tb_varint(b, n);
	tb_put(b, s, n);
}

static inline void tb_str(struct tb_buf *b, const char *s) { tb_bytes(b, s, strlen(s)); }

/* ---- file and blocks ---- */

/* Starts a trace: the 32-byte file header with the given MT_FILE_* flags. */
static inline void tb_init(struct tb *t, uint64_t flags)
{
	memset(t, 0, sizeof *t);
	t->level = 1;
	tb_put(&t->file, MT_FILE_MAGIC, 8);
	tb_le(&t->file, MT_FORMAT_MAJOR, 2);
	tb_le(&t->file, MT_FORMAT_MINOR, 2);
	tb_le(&t->file, MT_FILE_HEADER_SIZE, 4);
	tb_le(&t->file, flags, 8);
	tb_le(&t->file, 0, 8);
}

static inline void tb_release(struct tb *t)
{
	free(t->file.p);
	free(t->raw.p);
	ZSTD_freeCCtx(t->cctx);
	memset(t, 0, sizeof *t);
}

/* Compresses the open block (even if empty) onto the file; returns the block's file offset. */
static inline uint64_t tb_block_end(struct tb *t)
{
	if (!t->cctx) {
		t->cctx = ZSTD_createCCtx();
		ZSTD_CCtx_setParameter(t->cctx, ZSTD_c_checksumFlag, 1);
		ZSTD_CCtx_setParameter(t->cctx, ZSTD_c_compressionLevel, t->level);
	}
	if (t->raw.len > MT_BLOCK_RAW_MAX) {
		fprintf(stderr, "trace_builder: block of %zu bytes > MT_BLOCK_RAW_MAX\n", t->raw.len);
		abort();
	}
	uint64_t off = t->file.len;
	size_t bound = ZSTD_compressBound(t->raw.len);
	tb_reserve(&t->file, MT_BLOCK_HEADER_SIZE + bound);
	uint8_t *frame = t->file.p + off + MT_BLOCK_HEADER_SIZE;
	size_t n = ZSTD_compress2(t->cctx, frame, bound, t->raw.p ? t->raw.p : (const uint8_t *)"", t->raw.len);
	if (ZSTD_isError(n)) {
		fprintf(stderr, "trace_builder: %s\n", ZSTD_getErrorName(n));
		abort();
	}
	uint32_t raw = (uint32_t)t->raw.len, comp = (uint32_t)n;
	t->file.len = off;
	tb_le(&t->file, MT_BLOCK_MAGIC, 4);
	tb_le(&t->file, comp, 4);
	tb_le(&t->file, raw, 4);
	tb_le(&t->file, mt_block_check(MT_BLOCK_MAGIC, comp, raw), 4);
	t->file.len += comp;
	t->raw.len = 0;
	return off;
}

/* Writes the file image (blocks ended so far) to path; returns 0 or -1. */
static inline int tb_write(const struct tb *t, const char *path)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t n = fwrite(t->file.p, 1, t->file.len, f);
	return fclose(f) || n != t->file.len ? -1 : 0;
}

/* ---- small records ---- */

/* Appends a record of any kind (u8 kind, varint len, payload) to the open block. */
static inline void tb_record(struct tb *t, uint8_t kind, const void *payload, size_t len)
{
	tb_u8(&t->raw, kind);
	tb_bytes(&t->raw, payload, len);
}

/* Appends the record kind whose payload is in p, then frees p. */
static inline void tb_emit(struct tb *t, uint8_t kind, struct tb_buf *p)
{
	tb_record(t, kind, p->p, p->len);
	free(p->p);
}

static inline void tb_process(struct tb *t, uint32_t pid, uint32_t ppid, uint64_t realtime_ns,
                              const char *exe, int argc, const char *const *argv, uint64_t page_size)
{
	struct tb_buf p = {0};
	tb_varint(&p, pid);
	tb_varint(&p, ppid);
	tb_varint(&p, realtime_ns);
	tb_str(&p, exe);
	tb_varint(&p, (uint64_t)argc);
	for (int i = 0; i < argc; i++)
		tb_str(&p, argv[i]);
	tb_varint(&p, page_size);
	tb_emit(t, MT_REC_PROCESS, &p);
}

static inline void tb_clock(struct tb *t, uint64_t ticks, uint64_t mono_ns, uint64_t realtime_ns)
{
	struct tb_buf p = {0};
	tb_varint(&p, ticks);
	tb_varint(&p, mono_ns);
	tb_varint(&p, realtime_ns);
	tb_emit(t, MT_REC_CLOCK, &p);
}

struct tb_seg { uint64_t start, size; uint32_t flags; };

static inline void tb_module(struct tb *t, uint32_t id, uint64_t ticks, uint64_t load_bias,
                             const char *path, const void *build_id, size_t build_id_len,
                             size_t nseg, const struct tb_seg *segs)
{
	struct tb_buf p = {0};
	tb_varint(&p, id);
	tb_varint(&p, ticks);
	tb_varint(&p, load_bias);
	tb_str(&p, path);
	tb_bytes(&p, build_id, build_id_len);
	tb_varint(&p, nseg);
	for (size_t i = 0; i < nseg; i++) {
		tb_varint(&p, segs[i].start);
		tb_varint(&p, segs[i].size);
		tb_varint(&p, segs[i].flags);
	}
	tb_emit(t, MT_REC_MODULE, &p);
}

static inline void tb_module_unload(struct tb *t, uint32_t id, uint64_t ticks)
{
	struct tb_buf p = {0};
	tb_varint(&p, id);
	tb_varint(&p, ticks);
	tb_emit(t, MT_REC_MODULE_UNLOAD, &p);
}

static inline void tb_thread(struct tb *t, uint32_t idx, uint32_t os_tid, uint64_t ticks, const char *name)
{
	struct tb_buf p = {0};
	tb_varint(&p, idx);
	tb_varint(&p, os_tid);
	tb_varint(&p, ticks);
	tb_str(&p, name);
	tb_emit(t, MT_REC_THREAD, &p);
}

static inline void tb_thread_exit(struct tb *t, uint32_t idx, uint64_t ticks)
{
	struct tb_buf p = {0};
	tb_varint(&p, idx);
	tb_varint(&p, ticks);
	tb_emit(t, MT_REC_THREAD_EXIT, &p);
}

static inline void tb_thread_name(struct tb *t, uint32_t idx, const char *name)
{
	struct tb_buf p = {0};
	tb_varint(&p, idx);
	tb_str(&p, name);
	tb_emit(t, MT_REC_THREAD_NAME, &p);
}

/* MT_REC_SAMPLE (kind MT_REC_SAMPLE) or MT_REC_STATS (no ticks): n key/value pairs. */
static inline void tb_kv(struct tb_buf *p, size_t n, const uint32_t *keys, const uint64_t *vals)
{
	tb_varint(p, n);
	for (size_t i = 0; i < n; i++) {
		tb_varint(p, keys[i]);
		tb_varint(p, vals[i]);
	}
}

static inline void tb_sample(struct tb *t, uint64_t ticks, size_t n, const uint32_t *keys,
                             const uint64_t *vals)
{
	struct tb_buf p = {0};
	tb_varint(&p, ticks);
	tb_kv(&p, n, keys, vals);
	tb_emit(t, MT_REC_SAMPLE, &p);
}

static inline void tb_stats(struct tb *t, size_t n, const uint32_t *keys, const uint64_t *vals)
{
	struct tb_buf p = {0};
	tb_kv(&p, n, keys, vals);
	tb_emit(t, MT_REC_STATS, &p);
}

static inline void tb_marker(struct tb *t, uint64_t ticks, uint32_t thread_idx, uint32_t kind,
                             uint64_t arg, const char *label)
{
	struct tb_buf p = {0};
	tb_varint(&p, ticks);
	tb_varint(&p, thread_idx);
	tb_varint(&p, kind);
	tb_varint(&p, arg);
	tb_str(&p, label);
	tb_emit(t, MT_REC_MARKER, &p);
}

static inline void tb_end(struct tb *t, uint64_t ticks, uint32_t reason)
{
	struct tb_buf p = {0};
	tb_varint(&p, ticks);
	tb_varint(&p, reason);
	tb_emit(t, MT_REC_END, &p);
}

/* ---- event chunks ---- */

static inline void tb_chunk_begin(struct tb *t, struct tb_chunk *c, uint32_t thread_idx)
{
	memset(c, 0, sizeof *c);
	c->thread_idx = thread_idx;
	c->first_seq = thread_idx < TB_THREADS ? t->seq[thread_idx] : 0;
}

/* Delta from the chunk's previous timestamp; the first timed event sets t_first. */
static inline uint64_t tb_dt(struct tb_chunk *c, uint64_t t)
{
	if (!c->timed) {
		c->timed = 1;
		c->t_first = c->t = t;
	}
	if (t < c->t) {
		fprintf(stderr, "trace_builder: time goes back in thread %u\n", c->thread_idx);
		abort();
	}
	uint64_t dt = t - c->t;
	c->t = c->t_last = t;
	return dt;
}

static inline void tb_ptr(struct tb_chunk *c, uint64_t ptr)
{
	tb_svarint(&c->ev, (int64_t)(ptr - c->prev_ptr));
	c->prev_ptr = ptr;
}

/* malloc-like tags (MT_EV_MALLOC, MT_EV_CALLOC, MT_EV_POSIX_MEMALIGN, ...); ptr 0 = failed. */
static inline void tb_alloc(struct tb_chunk *c, uint8_t tag, uint64_t t, uint64_t size,
                            uint32_t stack, uint64_t ptr)
{
	tb_u8(&c->ev, tag);
	tb_varint(&c->ev, tb_dt(c, t));
	tb_varint(&c->ev, size);
	tb_varint(&c->ev, stack);
	tb_ptr(c, ptr);
	c->n_events++;
}

static inline void tb_free(struct tb_chunk *c, uint64_t t, uint64_t ptr)
{
	tb_u8(&c->ev, MT_EV_FREE);
	tb_varint(&c->ev, tb_dt(c, t));
	tb_ptr(c, ptr);
	c->n_events++;
}

/* MT_EV_REALLOC or MT_EV_REALLOCARRAY: old freed at t_before, new returned at t_after. */
static inline void tb_realloc(struct tb_chunk *c, uint8_t tag, uint64_t t_before, uint64_t old_ptr,
                              uint64_t t_after, uint64_t size, uint32_t stack, uint64_t new_ptr)
{
	tb_u8(&c->ev, tag);
	tb_varint(&c->ev, tb_dt(c, t_before));
	tb_svarint(&c->ev, (int64_t)(old_ptr - c->prev_ptr));
	tb_varint(&c->ev, tb_dt(c, t_after));
	tb_varint(&c->ev, size);
	tb_varint(&c->ev, stack);
	tb_svarint(&c->ev, (int64_t)(new_ptr - old_ptr));
	c->prev_ptr = new_ptr;
	c->n_events++;
}

/* Defines trie node id as frame ip called from node parent. */
static inline void tb_node(struct tb_chunk *c, uint32_t id, uint32_t parent, uint64_t ip)
{
	tb_u8(&c->ev, MT_EV_NODE);
	tb_svarint(&c->ev, (int64_t)((uint64_t)id - c->prev_id));
	tb_svarint(&c->ev, (int64_t)id - (int64_t)parent);
	tb_svarint(&c->ev, (int64_t)(ip - c->prev_ip));
	c->prev_id = id;
	c->prev_ip = ip;
	c->n_events++;
}

/* Appends the chunk as an MT_REC_EVENTS record to the open block and frees its buffer. */
/*
 * Appends the chunk as the file stores it: the rows are transposed into
 * columns by the recorder's own code (src/trace/columns.c).  Rows that do
 * not transpose (a test writing malformed bytes on purpose) are stored as
 * a tag column alone, which the reader must reject.
 */
static inline void tb_chunk_end(struct tb *t, struct tb_chunk *c)
{
	struct tb_buf rows = { 0 };
	tb_u8(&rows, MT_REC_EVENTS);
	tb_le(&rows, c->ev.len, 4);
	tb_le(&rows, c->thread_idx, 4);
	tb_le(&rows, c->n_events, 4);
	tb_le(&rows, c->t_first, 8);
	tb_le(&rows, c->t_last, 8);
	tb_le(&rows, c->first_seq, 8);
	tb_le(&rows, 0, 3);
	tb_put(&rows, c->ev.p, c->ev.len);
	size_t cap = mt_columns_scratch_size(c->ev.len);
	uint8_t *out = malloc(cap), *scratch = malloc(cap);
	size_t n = out && scratch ? mt_chunk_columns(rows.p, out, scratch) : 0;
	if (n) {
		tb_put(&t->raw, out, n);
	} else {  /* malformed on purpose: directory says "all bytes are tags" */
		rows.p[MT_EVENTS_HEADER_SIZE - 3] = 6;
		uint32_t len = (uint32_t)(MT_COLUMNS_DIR_SIZE + c->ev.len);
		memcpy(rows.p + 1, &len, 4);
		tb_put(&t->raw, rows.p, MT_EVENTS_HEADER_SIZE);
		tb_le(&t->raw, c->ev.len, 4);
		tb_le(&t->raw, 0, MT_COLUMNS_DIR_SIZE - 4);
		tb_put(&t->raw, c->ev.p, c->ev.len);
	}
	free(out);
	free(scratch);
	free(rows.p);
	if (c->thread_idx < TB_THREADS)
		t->seq[c->thread_idx] = c->first_seq + c->n_events;
	free(c->ev.p);
	memset(c, 0, sizeof *c);
}

#endif
