/*
 * Event chunks in two encodings (docs/trace-format.md, "Event chunks"):
 *
 *  - rows: what a recording thread appends in its hot path, one event after
 *    another, each a tag byte and its varints (format.h, "Events of one
 *    thread chunk").  Cheap to write; never stored in a file.
 *  - columns: what the file holds.  The writer thread transposes each row
 *    chunk into six columns (tags, times, sizes, stacks, pointers, node
 *    definitions), so that zstd sees like next to like: on the anchor
 *    workloads this shrinks the compressed trace by about a third.
 *    Pointers are stored whole (6 or 8 bytes, little-endian), so that the
 *    free of a block repeats the bytes of its allocation and zstd can match
 *    them, or as deltas when addresses move in small steps (columns.c).
 *
 * Thread-safe (no state); async-signal-safe (no allocation).
 */
#ifndef MT_TRACE_COLUMNS_H
#define MT_TRACE_COLUMNS_H

#include <stddef.h>
#include <stdint.h>
#include "format.h"

enum mt_column {
	MT_COL_TAG,     /* one byte per event, MT_EV_NODE included */
	MT_COL_TIME,    /* varint dt per timed event; a realloc has two */
	MT_COL_SIZE,    /* varint size per allocation */
	MT_COL_STACK,   /* svarint (stack id - last node defined before it in the chunk) per allocation */
	MT_COL_PTR,     /* per pointer (alloc, free, realloc old and new), coded by the chunk's mode */
	MT_COL_NODE,    /* svarint d_id, svarint (id - parent), svarint d_ip per MT_EV_NODE */
	MT_N_COLUMNS,
};
#define MT_COLUMNS_DIR_SIZE (4 * MT_N_COLUMNS)  /* u32 byte length of each column */

/* Pointer column coding, in mt_events_header.pad[0] of a column chunk. */
enum mt_ptr_mode {
	MT_PTRS_DELTA = 1,  /* svarint (ptr - previous ptr in the chunk), first from 0 */
	MT_PTRS_WHOLE6 = 6, /* 6 bytes little-endian each (every pointer < 2^48) */
	MT_PTRS_WHOLE8 = 8, /* 8 bytes little-endian each */
};

/* Scratch space for mt_chunk_columns(): bytes needed for a row chunk of row_len bytes. */
static inline size_t mt_columns_scratch_size(size_t row_len) { return 13 * row_len + 128; }

/*
 * Transposes one row chunk (a struct mt_events_header with kind
 * MT_REC_EVENTS, then row_len = header.len bytes of rows) into a column
 * chunk at out: the same header, with len updated and pad[0] the pointer mode,
 * followed by the column directory and the columns.  `scratch` must hold
 * mt_columns_scratch_size(header.len) bytes; out must hold that much too.
 * Returns the bytes written to out, or 0 when the rows are malformed
 * (a tag out of range, a varint cut short, a count that does not match).
 */
size_t mt_chunk_columns(const uint8_t *rows_chunk, uint8_t *out, uint8_t *scratch);

#endif
