/*
 * glibc's per-arena figures from malloc_info(3) snapshots (arenas.c).
 * Not thread-safe per struct; no global state.
 */
#ifndef MT_ANALYZE_ARENAS_H
#define MT_ANALYZE_ARENAS_H

#include <stdint.h>
#include <stdio.h>
#include "trace/reader.h"

#define MT_ARENAS_MAX    4096  /* arenas parsed from one snapshot (glibc: 8 x cores by default) */
#define MT_ARENAS_SHOWN  10    /* rows of the per-arena table, most free memory first */
#define MT_ARENA_BUCKETS 10    /* free-chunk size classes: <= 32 B, x4 each, then larger */

struct mt_arena {
	unsigned nr;                /* glibc's arena number; 0 = the main arena */
	uint64_t system_bytes;      /* memory the arena holds from the system (<system type="current">) */
	uint64_t system_max_bytes;  /* its high-water mark */
	uint64_t free_bytes;        /* in free chunks: fastbins + the rest (<total type="fast|rest">) */
	uint64_t free_count;        /* free chunks */
};

struct mt_arenas {
	struct mt_arena *arena; size_t n_arenas;   /* owned */
	uint64_t system_bytes, free_bytes, free_count;   /* sums over arenas */
	uint64_t mmap_count, mmap_bytes;           /* chunks served by mmap */
	uint64_t bucket_count[MT_ARENA_BUCKETS], bucket_bytes[MT_ARENA_BUCKETS];
};

/* Parses one snapshot into *m (released with mt_arenas_release); 0, or -1 if none found / no memory. */
int mt_arenas_parse(const char *xml, struct mt_arenas *m);
void mt_arenas_release(struct mt_arenas *m);

/* The last snapshot at or before until_ns (else the first); NULL when the trace has none. */
const struct mt_malloc_info *mt_arenas_pick(const struct mt_trace *tr, uint64_t until_ns);

/* The per-arena table and free-chunk sizes, for the report's GLIBC ARENAS section. */
void mt_arenas_write(FILE *f, const struct mt_arenas *m, uint64_t t_ns, uint64_t threads);

#endif
