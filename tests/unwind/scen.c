/*
 * unwind_test: random call stacks of many frame shapes, each captured
 * repeatedly on the way down and on the way back up, compared between
 * mt_unwind_capture and unw_backtrace (cmp.c).  Built without frame
 * pointers.  usage: unwind_test [iterations] [max_depth]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <execinfo.h>
#include <libunwind.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmp.h"
#include "record/unwind.h"

int lib_recurse(int depth, uint64_t *s, int (*cb)(int, uint64_t *));

static volatile uint64_t sink;
static int max_depth = 60;

/* Capture on the way down (before the call) and back up (after it). */
#define MAYBE_CAPTURE(x, bit) ((((x) >> (bit)) & 7) == 0 ? cmp_here() : 0)

NOI static int r_plain(int depth, uint64_t *s)
{
	uint64_t x = rng_next(s);
	int r = MAYBE_CAPTURE(x, 0);
	if (depth > 0)
		r += scen_dispatch(depth - 1, s);
	r += MAYBE_CAPTURE(x, 3);
	sink += x;
	return r;
}

/* Many values live across the call: every callee-saved register, rbp too. */
NOI static int r_regs(int depth, uint64_t *s)
{
	uint64_t a = rng_next(s), b = a * 3, c = a ^ 5, d = a + 7, e = a >> 3, f = a * a, g = ~a;
	int r = MAYBE_CAPTURE(a, 0);
	if (depth > 0)
		r += scen_dispatch(depth - 1, s);
	r += MAYBE_CAPTURE(a, 3);
	sink += a + b * c + d * e + f * g;
	sink ^= b + c + d + e + f + g;
	return r;
}

/* Variable-length array: CFA is rbp-based even without frame pointers. */
NOI static int r_vla(int depth, uint64_t *s)
{
	uint64_t x = rng_next(s);
	size_t n = 1 + (x & 63);
	volatile char buf[n];
	buf[0] = (char)x;
	buf[n - 1] = 1;
	int r = MAYBE_CAPTURE(x, 6);
	if (depth > 0)
		r += scen_dispatch(depth - 1, s);
	r += MAYBE_CAPTURE(x, 9);
	return r + buf[0] + buf[n - 1];
}

NOI static int r_alloca(int depth, uint64_t *s)
{
	uint64_t x = rng_next(s);
	size_t n = 16 + (x & 255);
	volatile char *buf = __builtin_alloca(n);
	buf[0] = (char)x;
	int r = MAYBE_CAPTURE(x, 8);
	if (depth > 0)
		r += scen_dispatch(depth - 1, s);
	return r + buf[0];
}

/* A large frame (stack probes where enabled). */
NOI static int r_big(int depth, uint64_t *s)
{
	uint64_t x = rng_next(s);
	volatile char big[9000];
	big[x % sizeof big] = 1;
	int r = MAYBE_CAPTURE(x, 4);
	if (depth > 0)
		r += scen_dispatch(depth - 1, s);
	return r + big[x % sizeof big];
}

/* Over-aligned local: gcc realigns the stack and describes the CFA with a
   DW_CFA_def_cfa_expression, outside the fast form: a fallback case. */
NOI static int r_align(int depth, uint64_t *s)
{
	uint64_t x = rng_next(s);
	volatile uint64_t v[4] __attribute__((aligned(64)));
	v[0] = x;
	int r = MAYBE_CAPTURE(x, 5);
	if (depth > 0)
		r += scen_dispatch(depth - 1, s);
	return r + (int)(v[0] & 0xff);
}

/* An over-aligned local plus a variable-length array: gcc realigns through
   a "DRAP" register (r10) and describes the CFA with
   DW_CFA_def_cfa_expression, outside the fast form: a fallback case, like
   PLT stubs. */
NOI static int r_drap_frame(int depth, uint64_t *s, uint64_t x)
{
	volatile uint64_t v[4] __attribute__((aligned(64)));
	volatile char vla[1 + (x & 15)];
	v[0] = x;
	vla[0] = 1;
	int r = MAYBE_CAPTURE(x, 5);
	if (depth > 0)
		r += scen_dispatch(depth - 1, s);
	return r + (int)(v[0] & 0xff) + vla[0];
}

NOI static int r_drap(int depth, uint64_t *s)
{
	uint64_t x = rng_next(s);
	if ((x & 7) != 0)   /* rare: every stack through it falls back */
		return r_regs(depth, s);
	return r_drap_frame(depth, s, x) + 1;
}

/* Sibling call: this frame is replaced by the callee. */
NOI static int r_tail(int depth, uint64_t *s)
{
	uint64_t x = rng_next(s);
	sink += x;
	if (depth > 0)
		return scen_dispatch(depth - 1, s);
	return cmp_here();
}

/* Indirect call through a table. */
static int (*volatile indirect[2])(int, uint64_t *) = { r_plain, r_regs };
NOI static int r_indirect(int depth, uint64_t *s)
{
	uint64_t x = rng_next(s);
	int r = 0;
	if (depth > 0)
		r = indirect[x & 1](depth - 1, s);
	sink += x;
	return r + MAYBE_CAPTURE(x, 2);
}

/* Callbacks from libc: the recursion continues inside qsort's comparator. */
static __thread struct { int depth; uint64_t *s; int done, r; } cb;
static int cmp_cb(const void *a, const void *b)
{
	if (!cb.done) {
		cb.done = 1;
		cb.r += cb.depth > 0 ? scen_dispatch(cb.depth - 1, cb.s) : cmp_here();
	}
	return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

NOI static int r_qsort(int depth, uint64_t *s)
{
	int v[17];
	uint64_t x = rng_next(s);
	for (int i = 0; i < 17; i++)
		v[i] = (int)((x >> (i * 3)) & 255);
	__typeof__(cb) saved = cb;
	cb.depth = depth;
	cb.s = s;
	cb.done = 0;
	cb.r = 0;
	if (x & 1)
		qsort(v, 17, sizeof v[0], cmp_cb);
	else
		(void)bsearch(&v[3], v, 17, sizeof v[0], cmp_cb);
	int r = cb.r + v[0];
	cb = saved;
	return r;
}

/* Through a shared library and back. */
NOI static int r_lib(int depth, uint64_t *s)
{
	return lib_recurse(depth, s, scen_dispatch) + 1;
}

NOI static int r_cxx(int depth, uint64_t *s)
{
	return cxx_entry(depth, s) + 1;
}

/* Signal handler on the same stack: a signal frame, a fallback case. */
static __thread struct { int depth; uint64_t *s; int r; } sig;
static void on_signal(int signo)
{
	sig.r += sig.depth > 0 ? scen_dispatch(sig.depth > 4 ? 4 : sig.depth - 1, sig.s) : cmp_here();
}

NOI static int r_signal(int depth, uint64_t *s)
{
	uint64_t x = rng_next(s);
	if ((x & 15) != 0)   /* rare: signals are slow */
		return r_plain(depth, s);
	sig.depth = depth;
	sig.s = s;
	sig.r = 0;
	raise((x & 16) ? SIGUSR2 : SIGUSR1);   /* SIGUSR2 runs on an alternate stack */
	return sig.r;
}

typedef int (*recfn)(int, uint64_t *);
static const recfn kinds[] = {
	r_plain, r_regs, r_vla, r_alloca, r_big, r_align, r_tail, r_indirect,
	r_qsort, r_lib, r_cxx, r_signal, r_drap, r_regs, r_plain, r_regs,
};
static unsigned kind_mask = 15;   /* may be narrowed for focused runs */

NOI int scen_dispatch(int depth, uint64_t *s)
{
	uint64_t x = rng_next(s);
	int r = kinds[(x >> 20) & kind_mask](depth, s);
	sink += x;
	return r + 1;
}

/*
 * The CFI row of a frame is the one that covers the call, ra - 1, not the
 * one at ra: after a call to a noreturn function GCC may start a row with
 * another CFA right at the return address (glibc 2.36 has 6 such call
 * sites, e.g. __new_exitfn's call to __assert_fail, which mallocs; see
 * rulescan).  mt_unwind, libunwind 1.6 and libgcc (glibc's backtrace) all
 * take ra - 1; a row taken at ra would read the stale slot, which holds 0
 * here and would end the list.  unwt_noreturn_row reproduces the layout.
 */
void unwt_noreturn_row(void (*cb)(void));
__asm__(".text\n"
        ".globl unwt_noreturn_row\n"
        ".type unwt_noreturn_row, @function\n"
        "unwt_noreturn_row:\n"
        "\t.cfi_startproc\n"
        "\tpush %rbx\n"
        "\t.cfi_def_cfa_offset 16\n"
        "\t.cfi_offset rbx, -16\n"
        "\tsub $16, %rsp\n"
        "\t.cfi_def_cfa_offset 32\n"
        "\tmovq $0, (%rsp)\n"
        "\tmovq $0, 8(%rsp)\n"
        "\tcall *%rdi\n"               /* does not return */
        "\t.cfi_def_cfa_offset 8\n"    /* a row that starts at the return address */
        "\t.cfi_same_value rbx\n"
        "\tud2\n"
        "\t.cfi_endproc\n"
        ".size unwt_noreturn_row, .-unwt_noreturn_row\n");

#define NR_MAX 64
static jmp_buf nr_env;
static struct mt_unwind_thread nr_ut;
static uint64_t nr_mt[NR_MAX];
static void *nr_unw[NR_MAX], *nr_bt[NR_MAX];
static int nr_n_mt, nr_n_unw, nr_n_bt;

NOI static void nr_callback(void)
{
	nr_n_mt = mt_unwind_capture(&nr_ut, nr_mt, NR_MAX, NULL);
	nr_n_unw = unw_backtrace(nr_unw, NR_MAX);
	nr_n_bt = backtrace(nr_bt, NR_MAX);
	longjmp(nr_env, 1);
}

/* Returns 0 if mt_unwind gives the true stack, the same as libunwind and glibc. */
NOI static int noreturn_row_test(void)
{
	uint64_t outer[NR_MAX];
	int n_outer = mt_unwind_capture(&nr_ut, outer, NR_MAX, NULL);
	if (!setjmp(nr_env))
		unwt_noreturn_row(nr_callback);
	/* nr_mt: [in nr_callback, in unwt_noreturn_row, in noreturn_row_test, callers...] */
	uint64_t test_fn = (uint64_t)(uintptr_t)noreturn_row_test;
	int ok = nr_n_mt == n_outer + 2 && nr_mt[2] > test_fn && nr_mt[2] - test_fn < 4096;
	for (int i = 1; ok && i < n_outer; i++)
		ok = nr_mt[i + 2] == outer[i];
	int bt_same = nr_n_bt == nr_n_mt;
	for (int i = 1; bt_same && i < nr_n_mt; i++)
		bt_same = (uint64_t)(uintptr_t)nr_bt[i] == nr_mt[i];
	int unw_same = nr_n_unw == nr_n_mt;
	for (int i = 1; unw_same && i < nr_n_mt; i++)
		unw_same = (uint64_t)(uintptr_t)nr_unw[i] == nr_mt[i];
	printf("noreturn row: mt_unwind %d frames (%s), glibc backtrace %s, libunwind %d frames (%s)\n",
	       nr_n_mt, ok ? "the true stack" : "WRONG", bt_same ? "the same" : "DIFFERENT",
	       nr_n_unw, unw_same ? "the same" : "different");
	if (getenv("UNWTEST_VERBOSE"))
		for (int i = 0; i < nr_n_mt || i < nr_n_unw; i++)
			printf("  %2d mt %#lx  unw %p  bt %p\n", i, (unsigned long)(i < nr_n_mt ? nr_mt[i] : 0),
			       i < nr_n_unw ? nr_unw[i] : NULL, i < nr_n_bt ? nr_bt[i] : NULL);
	return !(ok && unw_same);   /* backtrace(): informative (sanitizers intercept it) */
}

static void run(long iters, uint64_t seed)
{
	uint64_t s = seed | 1;
	for (long i = 0; i < iters; i++) {
		int depth = (int)(rng_next(&s) % (uint64_t)(max_depth + 1));
		uint64_t path = rng_next(&s);
		sink += scen_dispatch(depth, &path);
		sink += cmp_here();
	}
}

struct thread_arg {
	long iters;
	uint64_t seed;
};

/* SIGUSR2's handler runs on a per-thread alternate stack; *old gets the
   previous one, to put back (sanitizers install their own). */
static void altstack_init(stack_t *old)
{
	stack_t ss = { .ss_sp = malloc(1 << 20), .ss_size = 1 << 20, .ss_flags = 0 };
	sigaltstack(&ss, old);
}

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	stack_t old, mine;
	altstack_init(&old);
	run(a->iters, a->seed);
	cmp_thread_done();
	sigaltstack(&old, &mine);
	free(mine.ss_sp);
	return NULL;
}

static void print_totals(const char *what)
{
	struct cmp_totals t;
	struct mt_unwind_global_stats g;
	cmp_totals(&t);
	mt_unwind_global_stats(&g);
	printf("%s: captures=%lu frames=%lu mismatches=%lu reuse_errors=%lu fallbacks=%lu "
	       "memo_hits=%lu frames_reused=%lu rules=%lu unsupported_rules=%lu\n",
	       what, (unsigned long)t.captures, (unsigned long)t.frames, (unsigned long)t.mismatches,
	       (unsigned long)t.reuse_errors, (unsigned long)t.fallbacks, (unsigned long)t.memo_hits,
	       (unsigned long)t.frames_reused, (unsigned long)g.rule_misses,
	       (unsigned long)g.rule_unsupported);
	for (int w = 1; w < MT_UNWIND_WHY_COUNT; w++)
		if (t.by_why[w])
			printf("  fallback %-26s %lu\n", mt_unwind_why_name((unsigned)w),
			       (unsigned long)t.by_why[w]);
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 200000;
	if (argc > 2)
		max_depth = atoi(argv[2]);
	signal(SIGUSR1, on_signal);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR2, &sa, NULL);
	stack_t old_ss;
	altstack_init(&old_ss);
	int fail = noreturn_row_test();
	run(iters, 0x9E3779B97F4A7C15ull);
	print_totals("main thread");
	pthread_t th[2];
	struct thread_arg args[2] = { { iters / 2, 12345 }, { iters / 2, 67890 } };
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, thread_main, &args[i]);
	run(iters / 2, 4242);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	struct cmp_totals t;
	print_totals("all threads");
	cmp_totals(&t);
	if (t.mismatches || t.reuse_errors || fail) {
		printf("FAIL\n");
		return 1;
	}
	printf("PASS\n");
	return 0;
}
