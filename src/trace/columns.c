/*
 * Row chunks to column chunks (see columns.h).  Runs on the recorder's
 * writer thread, off the recorded program's hot path.
 */
#include <string.h>
#include "columns.h"
#include "varint.h"

struct colbuf {
	uint8_t *p[MT_N_COLUMNS];     /* write position of each column in scratch */
	uint8_t *start[MT_N_COLUMNS];
};

/* Copies one varint from *in to the column; returns -1 when it is cut or too long. */
static int copy_varint(const uint8_t **in, const uint8_t *end, uint8_t **out)
{
	const uint8_t *p = *in;
	for (int i = 0; i < MT_VARINT_MAX && p < end; i++) {
		uint8_t b = *p++;
		*(*out)++ = b;
		if (b < 0x80) {
			*in = p;
			return 0;
		}
	}
	return -1;
}

static int read_svarint(const uint8_t **in, const uint8_t *end, int64_t *v)
{
	return mt_get_svarint(in, end, v);
}

static void put_ptr(struct colbuf *c, uint64_t ptr)
{
	memcpy(c->p[MT_COL_PTR], &ptr, 8);  /* x86-64 and aarch64 are little-endian */
	c->p[MT_COL_PTR] += 8;
}

/* A pointer delta from the rows, resolved to the absolute pointer. */
static int take_ptr(const uint8_t **in, const uint8_t *end, uint64_t *base, uint64_t *ptr)
{
	int64_t d;
	if (read_svarint(in, end, &d))
		return -1;
	*ptr = *base + (uint64_t)d;
	return 0;
}

/* The stack id, stored relative to the last node defined in the chunk. */
static int put_stack(struct colbuf *c, const uint8_t **in, const uint8_t *end, uint64_t last_node)
{
	uint64_t id;
	if (mt_get_varint(in, end, &id))
		return -1;
	c->p[MT_COL_STACK] = mt_put_svarint(c->p[MT_COL_STACK], (int64_t)(id - last_node));
	return 0;
}

static int row_alloc(struct colbuf *c, const uint8_t **in, const uint8_t *end, uint64_t *prev,
                     uint64_t last_node)
{
	uint64_t ptr;
	if (copy_varint(in, end, &c->p[MT_COL_TIME]) || copy_varint(in, end, &c->p[MT_COL_SIZE]) ||
	    put_stack(c, in, end, last_node) || take_ptr(in, end, prev, &ptr))
		return -1;
	*prev = ptr;
	put_ptr(c, ptr);
	return 0;
}

static int row_realloc(struct colbuf *c, const uint8_t **in, const uint8_t *end, uint64_t *prev,
                       uint64_t last_node)
{
	uint64_t old, new;
	if (copy_varint(in, end, &c->p[MT_COL_TIME]) || take_ptr(in, end, prev, &old) ||
	    copy_varint(in, end, &c->p[MT_COL_TIME]) || copy_varint(in, end, &c->p[MT_COL_SIZE]) ||
	    put_stack(c, in, end, last_node) || take_ptr(in, end, &old, &new))
		return -1;
	*prev = new;
	put_ptr(c, old);
	put_ptr(c, new);
	return 0;
}

static int row_free(struct colbuf *c, const uint8_t **in, const uint8_t *end, uint64_t *prev)
{
	uint64_t ptr;
	if (copy_varint(in, end, &c->p[MT_COL_TIME]) || take_ptr(in, end, prev, &ptr))
		return -1;
	*prev = ptr;
	put_ptr(c, ptr);
	return 0;
}

/* Copies a node definition and tracks the id it defines. */
static int row_node(struct colbuf *c, const uint8_t **in, const uint8_t *end, uint64_t *last_node)
{
	int64_t d_id;
	const uint8_t *start = *in;
	if (read_svarint(in, end, &d_id))
		return -1;
	*last_node += (uint64_t)d_id;
	*in = start;
	for (int i = 0; i < 3; i++)
		if (copy_varint(in, end, &c->p[MT_COL_NODE]))
			return -1;
	return 0;
}

/* Splits the rows into columns; returns the number of events or -1. */
static long split_rows(struct colbuf *c, const uint8_t *in, const uint8_t *end, uint64_t *max_ptr)
{
	uint64_t prev = 0, last_node = 0;
	long n = 0;
	while (in < end) {
		uint8_t tag = *in++;
		int r;
		*c->p[MT_COL_TAG]++ = tag;
		if (tag == MT_EV_FREE)
			r = row_free(c, &in, end, &prev);
		else if (tag == MT_EV_REALLOC || tag == MT_EV_REALLOCARRAY)
			r = row_realloc(c, &in, end, &prev, last_node);
		else if (tag >= MT_EV_MALLOC && tag <= MT_EV_PVALLOC)
			r = row_alloc(c, &in, end, &prev, last_node);
		else if (tag == MT_EV_NODE)
			r = row_node(c, &in, end, &last_node);
		else
			r = -1;
		if (r)
			return -1;
		if (tag != MT_EV_NODE && prev > *max_ptr)
			*max_ptr = prev;
		n++;
	}
	return n;
}

/*
 * Chooses how the chunk's pointers are stored and rewrites the column of
 * 8-byte pointers in place.  Whole pointers let zstd match a free with its
 * allocation (random reuse, as in a cache of many live blocks); deltas win
 * when addresses move in small steps (a tree or arena filled in order).
 * Deltas are taken when their varints average at most MT_PTR_DELTA_MAX_AVG
 * bytes: the crossing point measured on the anchor workloads (churn: whole
 * 2.42 vs delta 2.74 bytes per pointer after zstd; bigtree: 4.14 vs 1.85).
 */
#define MT_PTR_DELTA_MAX_AVG 2.5

static size_t delta_bytes(const uint8_t *ptrs, size_t n)
{
	uint64_t prev = 0, v;
	size_t total = 0;
	uint8_t tmp[MT_VARINT_MAX];
	for (size_t i = 0; i < n; i++) {
		memcpy(&v, ptrs + 8 * i, 8);
		total += (size_t)(mt_put_svarint(tmp, (int64_t)(v - prev)) - tmp);
		prev = v;
	}
	return total;
}

static size_t code_ptrs(uint8_t *ptrs, size_t bytes, uint64_t max_ptr, uint8_t *mode)
{
	size_t n = bytes / 8;
	if (n && delta_bytes(ptrs, n) <= MT_PTR_DELTA_MAX_AVG * (double)n) {
		uint64_t prev = 0, v;
		uint8_t *o = ptrs;  /* a varint is never longer than the 8 bytes it replaces */
		for (size_t i = 0; i < n; i++) {
			memcpy(&v, ptrs + 8 * i, 8);
			o = mt_put_svarint(o, (int64_t)(v - prev));
			prev = v;
		}
		*mode = MT_PTRS_DELTA;
		return (size_t)(o - ptrs);
	}
	unsigned width = max_ptr >> 48 ? 8 : 6;
	for (size_t i = 0; i < n; i++)
		memmove(ptrs + i * width, ptrs + i * 8, width);
	*mode = (uint8_t)width;
	return n * width;
}

size_t mt_chunk_columns(const uint8_t *rows_chunk, uint8_t *out, uint8_t *scratch)
{
	struct mt_events_header h;
	memcpy(&h, rows_chunk, sizeof h);
	const uint8_t *in = rows_chunk + MT_EVENTS_HEADER_SIZE;
	struct colbuf c;
	/* column regions in scratch: ptr may take 8 bytes per row byte, the rest at most 1 */
	size_t off = 0, len = h.len;
	for (int k = 0; k < MT_N_COLUMNS; k++) {
		c.start[k] = c.p[k] = scratch + off;
		off += k == MT_COL_PTR ? 8 * len + 16 : len + 8;
	}
	uint64_t max_ptr = 0;
	long n = split_rows(&c, in, in + len, &max_ptr);
	if (n < 0 || (uint64_t)n != h.n_events)
		return 0;
	uint8_t mode;
	size_t ptr_len = code_ptrs(c.start[MT_COL_PTR], (size_t)(c.p[MT_COL_PTR] - c.start[MT_COL_PTR]),
	                           max_ptr, &mode);
	c.p[MT_COL_PTR] = c.start[MT_COL_PTR] + ptr_len;

	uint8_t *o = out + MT_EVENTS_HEADER_SIZE + MT_COLUMNS_DIR_SIZE;
	for (int k = 0; k < MT_N_COLUMNS; k++) {
		uint32_t n_bytes = (uint32_t)(c.p[k] - c.start[k]);
		memcpy(out + MT_EVENTS_HEADER_SIZE + 4 * k, &n_bytes, 4);
		memcpy(o, c.start[k], n_bytes);
		o += n_bytes;
	}
	h.len = (uint32_t)(o - out - MT_EVENTS_HEADER_SIZE);
	h.pad[0] = mode;
	memcpy(out, &h, sizeof h);
	return (size_t)(o - out);
}
