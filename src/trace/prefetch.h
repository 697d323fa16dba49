/*
 * mt_prefetch(p): asks for the cache line at p, never faults, always kept.
 *
 * The replay and canonicalization pipelines prefetch data a few items
 * ahead, often at an address chosen by a branch (a free needs other lines
 * than an allocation).  GCC 12 at -O2 deletes such __builtin_prefetch
 * calls outright (its control-dependent dead code elimination treats them
 * as removable), which silently turns a pipeline into a chain of cache
 * misses; a volatile asm cannot be deleted.
 */
#ifndef MT_TRACE_PREFETCH_H
#define MT_TRACE_PREFETCH_H

#if defined(__x86_64__) || defined(__i386__)
#define mt_prefetch(p) __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)(p)))
#else
#define mt_prefetch(p) __builtin_prefetch(p)
#endif

#endif
