/*
 * Big zeroed arrays for the reader and the analyzer (call-stack nodes,
 * per-stack figures, kept blocks): tens to hundreds of MiB touched once
 * in order, where 4 KiB page faults alone cost a tenth of a second per
 * few hundred MiB.
 *
 * Below MT_BIG_MMAP_MIN bytes an array is calloc'd; from there on it is
 * an anonymous mapping with transparent huge pages asked for (a hint:
 * without them it still works), grown by mremap, which moves page tables
 * instead of copying, and returned to the system by munmap as soon as it
 * is freed.  Which of the two an array is follows from its size alone, so
 * callers pass the byte size they allocated or grew to when they grow or
 * free it (the same value, or the call is undefined).
 *
 * Errors: NULL on out of memory; the array passed to mt_big_grow() stays
 * valid.  Thread-safe (no state of its own).
 */
#ifndef MT_TRACE_BIGMEM_H
#define MT_TRACE_BIGMEM_H

#include <stddef.h>

#define MT_BIG_MMAP_MIN (1u << 20)  /* bytes from which an array is its own mapping */

/* A zeroed array of `bytes` (0 allowed: a valid pointer to nothing). */
void *mt_big_alloc(size_t bytes);

/* Grows p from old_bytes to new_bytes (>= old_bytes): contents kept, the rest zeroed. */
void *mt_big_grow(void *p, size_t old_bytes, size_t new_bytes);

/* Frees p, allocated or last grown to `bytes`.  NULL is a no-op. */
void mt_big_free(void *p, size_t bytes);

#endif
