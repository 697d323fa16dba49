/*
 * Shared by the unwinder tests: cmp_here() captures the stack of its caller
 * three ways (mt_unwind_capture with memo, without memo, and libunwind's
 * unw_backtrace) and counts any difference.  The first entry of each list
 * is a return address into cmp_here (three different call sites); from the
 * second on the lists must be equal.
 */
#ifndef UNW_TEST_CMP_H
#define UNW_TEST_CMP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NOI __attribute__((noinline, noclone))

struct cmp_totals {
	uint64_t captures;       /* calls of cmp_here */
	uint64_t frames;         /* frames compared */
	uint64_t mismatches;     /* lists that differ (memo or cold vs libunwind) */
	uint64_t reuse_errors;   /* reused_outer claimed frames that differ */
	uint64_t fallbacks;      /* mt_unwind captures answered by unw_backtrace */
	uint64_t memo_hits, frames_reused;
	uint64_t by_why[32];
};

/* Captures and compares; returns the number of frames (for a data dependency). */
int cmp_here(void);
/* Adds this thread's counts to the process totals (call before a thread ends). */
void cmp_thread_done(void);
/* Process totals so far (threads that called cmp_thread_done, plus the caller). */
void cmp_totals(struct cmp_totals *out);

/* C++ scenarios (scen_cxx.cc); any exception is caught before returning. */
int cxx_entry(int depth, uint64_t *rng);
/* The C dispatcher (scen.c), callable from C++ frames. */
int scen_dispatch(int depth, uint64_t *rng);

static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

#ifdef __cplusplus
}
#endif
#endif
