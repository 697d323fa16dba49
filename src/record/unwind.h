/*
 * Fast call-stack capture for the recorder's hot path: an x86-64 unwinder
 * that reads DWARF call-frame information (.eh_frame) from memory, so code
 * built without frame pointers (Debian's -O2 -g) unwinds at a few
 * nanoseconds per frame.
 *
 * Contract: mt_unwind_capture() returns the same return-address list that
 * libunwind's unw_backtrace() would return if called at the same place
 * (libunwind 1.6, x86_64/Gtrace.c, is the reference; tests/unwind/
 * compares the two on synthetic stacks and on every malloc of real
 * programs).  Frames whose unwind rules fall outside the fast form
 * (below) make the whole capture fall back to unw_backtrace, so the
 * result is identical by construction there too.
 *
 * Fast form of a frame, the same "standard frame" libunwind's fast path
 * accepts: CFA = rsp + c or rbp + c; return address saved at CFA - 8;
 * rbp unchanged or saved at CFA + c (a multiple of 8); rsp = CFA; no
 * expression rules; not a signal frame.  A frame whose return address or
 * rbp rule is "undefined" (_start, clone3) ends the stack.
 *
 * How (details in unwind.c):
 *  - a global 2-way table of 128 Ki rules keyed by return address, one
 *    64-bit word per entry, read without locks; a miss finds the FDE with
 *    glibc's _dl_find_object() and the .eh_frame_hdr binary-search table,
 *    then runs the CIE and FDE call-frame programs up to the address;
 *  - per-thread memoization: a capture that reaches a frame (pc, sp, and
 *    rbp where it matters) seen in the thread's previous capture, whose
 *    stack words read by that capture still hold the same values, copies
 *    the previous capture's outer frames instead of unwinding them.  This
 *    is exact, not a heuristic: unwinding is a function of those inputs.
 *    Keeping the memo costs time per frame; a thread whose consecutive
 *    stacks share too few frames pauses it (mt_unwind_set_memo).
 *
 * Sources: DWARF 5 section 6.4 (call frame information; CIE, FDE and the
 * DW_CFA_* instructions); Linux Standard Base Core 5.0, section 10.6
 * (.eh_frame: augmentation strings "zRPLS", DW_EH_PE_* pointer encodings;
 * .eh_frame_hdr: version 1, sorted table of (initial location, FDE)
 * pairs); System V x86-64 psABI 3.6 (DWARF register numbers: 6 rbp,
 * 7 rsp, 16 return address); glibc manual, "Dynamic Linker
 * Introspection" (_dl_find_object, dlfo_eh_frame = the PT_GNU_EH_FRAME
 * segment, lock-free and async-signal-safe, glibc >= 2.35).
 *
 * Limits (all fall back to unw_backtrace, so they cost speed, never
 * correctness): signal frames; PLT stubs, ld.so's lazy-binding trampolines
 * and other code whose CFA is not rsp/rbp + offset; frames of 256 KiB or
 * more; code above 2^47 (5-level paging); code without .eh_frame_hdr or
 * without an FDE (ld.so's _dl_start_user, which runs constructors); a
 * stack pointer outside the thread's stack (sigaltstack, coroutines).
 * Stacks deeper than `max` frames are truncated and not memoized.
 */
#ifndef MT_UNWIND_H
#define MT_UNWIND_H

#include <stdint.h>

#define MT_UNWIND_MAX_FRAMES 256   /* frames per capture and per memo */
#define MT_UNWIND_MEMO_AT    256   /* slots of the memo's sp index (power of 2) */

/* Why a capture fell back to unw_backtrace (mt_unwind_stats.fallback_why). */
enum mt_unwind_why {
	MT_UNWIND_OK = 0,
	MT_UNWIND_NO_FDE,        /* no object, no .eh_frame_hdr, or no FDE covers pc */
	MT_UNWIND_BAD_CFI,       /* malformed CIE/FDE, unknown opcode or augmentation */
	MT_UNWIND_SIGNAL_FRAME,  /* CIE augmentation 'S' (__restore_rt) */
	MT_UNWIND_CFA_EXPR,      /* DW_CFA_def_cfa_expression (PLT, realigned stacks) */
	MT_UNWIND_CFA_REG,       /* CFA based on a register other than rsp/rbp */
	MT_UNWIND_RA_RULE,       /* return address not at CFA - 8 */
	MT_UNWIND_RBP_RULE,      /* rbp saved other than at CFA + 8k */
	MT_UNWIND_RSP_RULE,      /* rsp has a rule of its own */
	MT_UNWIND_EXPR_RULE,     /* some register has an expression or val_* rule */
	MT_UNWIND_RANGE,         /* offset too large for the compact rule */
	MT_UNWIND_BIG_PC,        /* address >= 2^47 */
	MT_UNWIND_BOUNDS,        /* CFA or a saved slot outside [frame sp, stack top] */
	MT_UNWIND_OFF_STACK,     /* capture started outside the thread's stack */
	MT_UNWIND_WHY_COUNT
};

/* Per-thread counters, updated by mt_unwind_capture only. */
struct mt_unwind_stats {
	uint64_t captures;        /* calls */
	uint64_t fallbacks;       /* answered by unw_backtrace */
	uint64_t memo_hits;       /* reused outer frames of the previous capture */
	uint64_t memo_rests;      /* times the memo did not pay and was paused */
	uint64_t frames;          /* frames returned */
	uint64_t frames_reused;   /* of those, copied from the previous capture */
	uint64_t fallback_pc;     /* return address of the last unsupported frame */
	uint32_t fallback_why;    /* its enum mt_unwind_why */
	uint32_t by_why[MT_UNWIND_WHY_COUNT];
};

/* One frame of the memo.  Private to unwind.c. */
struct mt_unwind_frame {
	uint64_t pc;        /* return address: where the frame is suspended */
	uint64_t sp;        /* stack pointer after return (CFA of the inner frame) */
	uint64_t rbp;       /* rbp in that frame */
	uint64_t rule;      /* the rule word of pc */
};

/*
 * Per-thread state: the caller owns it (embedded in its thread state, about
 * 17 KiB), zero-initialises it for each thread (zero again when the memory
 * is reused for another thread: it caches the thread's stack bounds), and
 * never shares it between threads.  Fields are private to unwind.c, except
 * `stats`, which the owner may read.
 */
struct mt_unwind_thread {
	uintptr_t stack_lo, stack_hi;   /* [lo, hi): the thread's stack; 0, 0 = unknown */
	int bounds_failed;              /* pthread_getattr_np failed: always fall back */
	int memo_off;                   /* 1: never use the previous capture (benchmarks, A/B) */
	int memo_always;                /* 1: never pause the memo (tests) */
	int memo_score;                 /* decaying sum of reused - 2 * new frames */
	uint32_t memo_rest;             /* captures left to make without the memo */
	uint32_t memo_n;                /* frames in memo, 0 = no usable previous capture */
	uint32_t memo_gen;              /* rule-table generation memo was built under */
	uint64_t end_addr, end_val;     /* word that ended the memo'd stack, end_addr 0 if none */
	struct mt_unwind_frame memo[MT_UNWIND_MAX_FRAMES];  /* outermost first */
	uint8_t memo_need_rbp[MT_UNWIND_MAX_FRAMES];        /* 1: frame's rbp matters */
	uint16_t memo_at[MT_UNWIND_MEMO_AT];                /* sp -> memo depth + 1 */
	struct mt_unwind_frame cur[MT_UNWIND_MAX_FRAMES];   /* scratch: this capture, innermost first */
	struct mt_unwind_stats stats;
};

#define MT_UNWIND_THREAD_BYTES sizeof(struct mt_unwind_thread)

/*
 * Captures the call stack of the function that calls mt_unwind_capture.
 *
 * Writes at most `max` (clamped to MT_UNWIND_MAX_FRAMES) return addresses
 * to ips, innermost first: ips[0] is mt_unwind_capture's own return
 * address (an address in its caller), ips[1] its caller's return address,
 * and so on up to the outermost frame (_start for the main thread, clone3
 * for others).  Every entry is a return address; exactly what
 * unw_backtrace(ips, max) returns when called in place of
 * mt_unwind_capture.  Returns the number of frames written, 0 if none.
 *
 * *reused_outer (may be NULL) receives the number of frames at the outer
 * end of the result that are known to equal the outer end of this thread's
 * previous result (ips[n-k..n) == prev[pn-k..pn)); 0 when unknown (first
 * capture, fallback, truncated stacks).  It is a lower bound: more outer
 * frames may happen to match.
 *
 * Must run on the thread that owns ut, and not re-entered on it (the
 * recorder's recursion guard ensures both).  The first call on a thread
 * calls mt_unwind_thread_init (which may allocate) unless the owner did.
 * The fast path takes no lock, does no system call and never allocates;
 * a rule-table miss calls _dl_find_object (async-signal-safe).  A fallback
 * calls libunwind's unw_backtrace, which may allocate on its first use in
 * a thread.  Not async-signal-safe as a whole for that reason.
 */
int mt_unwind_capture(struct mt_unwind_thread *ut, uint64_t *ips, int max, int *reused_outer);

/*
 * Reads the calling thread's stack bounds into ut (pthread_getattr_np).
 * Call once per thread, with the recursion guard held: for the main thread
 * glibc reads /proc/self/maps through stdio, which calls malloc.  Returns
 * 0, or -1 if the bounds are unknown (every capture then falls back).
 */
int mt_unwind_thread_init(struct mt_unwind_thread *ut);

/*
 * 1 (the default): reuse outer frames of the previous capture where that
 * pays (the thread pauses the memo for a while when too few frames were
 * reused); 0: never; 2: always, even where it does not pay (tests).
 */
void mt_unwind_set_memo(struct mt_unwind_thread *ut, int on);

/*
 * Diagnostic: why a stack through return address ra would fall back
 * (enum mt_unwind_why; MT_UNWIND_OK if ra's frame is in the fast form).
 * Computes the rule from the CFI each time; does not touch the cache.
 */
unsigned mt_unwind_explain(uint64_t ra);

/*
 * Forgets every cached rule and every thread's memo.  Call after code was
 * unloaded (dlclose): rules are cached by address, and another object may
 * be mapped where the old one was.  Safe to call concurrently with
 * captures; a capture running at that moment may still use old rules.
 */
void mt_unwind_invalidate(void);

/* Process-wide counters of the rule table (relaxed reads). */
struct mt_unwind_global_stats {
	uint64_t rule_misses;        /* rules computed from CFI */
	uint64_t rule_unsupported;   /* of which not in the fast form */
};
void mt_unwind_global_stats(struct mt_unwind_global_stats *out);

/* Name of an enum mt_unwind_why value, for diagnostics. */
const char *mt_unwind_why_name(unsigned why);

#endif
