/*
 * libunwcmp.so: an LD_PRELOAD shim that captures the stack on every
 * malloc, calloc and realloc of a real program.  UNWCMP_MODE selects:
 *   compare  mt_unwind_capture and unw_backtrace at the same point, lists
 *            compared (from the second entry: the first is two call sites)
 *   mt       mt_unwind_capture only (memo on)
 *   cold     mt_unwind_capture only, memo off
 *   unw      unw_backtrace only
 *   none     interpose only (the baseline for timing)
 * UNWCMP_MEMO=0|1|2 sets mt_unwind_set_memo (default 1, adaptive).
 * At exit one summary line per process, and the distinct addresses that
 * made mt_unwind fall back, go to stderr or, with UNWCMP_OUT=file, are
 * appended to that file (gcc, make, python spawn many processes).
 * The allocator itself is glibc's (__libc_malloc and friends).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libunwind.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "record/unwind.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

#define MAXF MT_UNWIND_MAX_FRAMES
#define NOI __attribute__((noinline, noclone))
#define MAX_SITES 128
#define MAX_REPORTS 5

enum { MODE_NONE, MODE_COMPARE, MODE_MT, MODE_COLD, MODE_UNW };
static int mode = -1;
static __thread int guard __attribute__((tls_model("initial-exec")));
static __thread struct mt_unwind_thread *tut __attribute__((tls_model("initial-exec")));

static struct {
	uint64_t captures, frames, mismatches, fallbacks, memo_hits, frames_reused;
	uint64_t reuse_errors, by_why[MT_UNWIND_WHY_COUNT];
} g;
static struct {
	uint64_t pc;
	uint32_t why, count;
} sites[MAX_SITES];
static int n_reports;
static volatile uint64_t sink;

#define ADD(field, v) __atomic_fetch_add(&g.field, (v), __ATOMIC_RELAXED)

static void out(const char *s)
{
	const char *path = getenv("UNWCMP_OUT");
	int fd = path ? open(path, O_WRONLY | O_APPEND | O_CREAT, 0644) : 2;
	if (fd < 0)
		return;
	(void)!write(fd, s, strlen(s));
	if (fd != 2)
		close(fd);
}

static void describe(char *buf, size_t size, uint64_t ip)
{
	Dl_info info;
	if (dladdr((void *)(uintptr_t)(ip - 1), &info) && info.dli_fname) {
		const char *obj = strrchr(info.dli_fname, '/');
		obj = obj ? obj + 1 : info.dli_fname;
		if (info.dli_sname)
			snprintf(buf, size, "%s+%#lx (%s)", info.dli_sname,
			         (unsigned long)(ip - (uint64_t)(uintptr_t)info.dli_saddr), obj);
		else
			snprintf(buf, size, "%#lx (%s+%#lx)", (unsigned long)ip, obj,
			         (unsigned long)(ip - (uint64_t)(uintptr_t)info.dli_fbase));
	} else {
		snprintf(buf, size, "%#lx", (unsigned long)ip);
	}
}

static void note_site(uint64_t pc, uint32_t why)
{
	for (int i = 0; i < MAX_SITES; i++) {
		uint64_t cur = __atomic_load_n(&sites[i].pc, __ATOMIC_RELAXED);
		if (!cur && __atomic_compare_exchange_n(&sites[i].pc, &cur, pc, 0, __ATOMIC_RELAXED,
		                                        __ATOMIC_RELAXED))
			cur = pc, sites[i].why = why;
		if (cur == pc) {
			__atomic_fetch_add(&sites[i].count, 1, __ATOMIC_RELAXED);
			return;
		}
	}
}

static void report(const uint64_t *a, int n, void *const *b, int m)
{
	if (__atomic_fetch_add(&n_reports, 1, __ATOMIC_RELAXED) >= MAX_REPORTS)
		return;
	char line[512], d1[200], d2[200];
	snprintf(line, sizeof line, "unwcmp MISMATCH pid=%d mt=%d unw=%d\n", getpid(), n, m);
	out(line);
	for (int i = 0; i < n || i < m; i++) {
		describe(d1, sizeof d1, i < n ? a[i] : 0);
		describe(d2, sizeof d2, i < m ? (uint64_t)(uintptr_t)b[i] : 0);
		snprintf(line, sizeof line, "  %2d %s %-60s | %s\n", i,
		         i < n && i < m && a[i] == (uint64_t)(uintptr_t)b[i] ? " " : "*", d1, d2);
		out(line);
	}
}

static struct mt_unwind_thread *thread_state(void)
{
	if (!tut) {
		void *p = mmap(NULL, sizeof *tut, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		               -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		tut = p;
		mt_unwind_thread_init(tut);   /* may malloc: we are inside the guard */
		const char *memo = getenv("UNWCMP_MEMO");   /* 0 never, 1 adaptive, 2 always */
		if (mode == MODE_COLD)
			mt_unwind_set_memo(tut, 0);
		else if (memo)
			mt_unwind_set_memo(tut, atoi(memo));
	}
	return tut;
}

/* Timing modes: the capture alone, no counters (atomics would dominate). */
NOI static void capture_only(void)
{
	uint64_t a[MAXF];
	int reused;
	if (mode == MODE_UNW) {
		sink += (uint64_t)unw_backtrace((void **)a, MAXF);
		return;
	}
	struct mt_unwind_thread *ut = thread_state();
	if (ut)
		sink += (uint64_t)mt_unwind_capture(ut, a, MAXF, &reused);
}

/* Compare mode: both captures, counted and compared. */
NOI static void capture(void)
{
	struct mt_unwind_thread *ut = thread_state();
	uint64_t a[MAXF];
	void *b[MAXF];
	int reused = 0, n = 0, m = 0;
	if (!ut)
		return;
	uint64_t fb = ut->stats.fallbacks, hits = ut->stats.memo_hits;
	uint64_t reused0 = ut->stats.frames_reused;
	if (mode != MODE_UNW)
		n = mt_unwind_capture(ut, a, MAXF, &reused);
	if (mode == MODE_UNW || mode == MODE_COMPARE)
		m = unw_backtrace(b, MAXF);
	ADD(captures, 1);
	ADD(frames, (uint64_t)(mode == MODE_UNW ? m : n));
	if (ut->stats.fallbacks != fb) {
		ADD(fallbacks, 1);
		ADD(by_why[ut->stats.fallback_why % MT_UNWIND_WHY_COUNT], 1);
		note_site(ut->stats.fallback_pc, ut->stats.fallback_why);
	}
	ADD(memo_hits, ut->stats.memo_hits - hits);
	ADD(frames_reused, ut->stats.frames_reused - reused0);
	if (mode == MODE_COMPARE) {
		int same = n == m;
		for (int i = 1; same && i < n; i++)
			same = a[i] == (uint64_t)(uintptr_t)b[i];
		if (!same) {
			ADD(mismatches, 1);
			report(a, n, b, m);
		}
	}
	sink += n + m;
}

static void set_mode(void)
{
	const char *e = getenv("UNWCMP_MODE");
	mode = !e || !strcmp(e, "compare") ? MODE_COMPARE : !strcmp(e, "mt") ? MODE_MT
	     : !strcmp(e, "cold") ? MODE_COLD : !strcmp(e, "unw") ? MODE_UNW : MODE_NONE;
}

static inline void record(void)
{
	if (guard)
		return;
	guard++;
	int saved = errno;
	if (mode < 0)
		set_mode();
	if (mode == MODE_COMPARE)
		capture();
	else if (mode != MODE_NONE)
		capture_only();
	errno = saved;
	guard--;
}

void *malloc(size_t n)
{
	void *p = __libc_malloc(n);
	record();
	return p;
}

void *calloc(size_t n, size_t s)
{
	void *p = __libc_calloc(n, s);
	record();
	return p;
}

void *realloc(void *q, size_t n)
{
	void *p = __libc_realloc(q, n);
	record();
	return p;
}

void free(void *p)
{
	__libc_free(p);
}

__attribute__((destructor)) static void summary(void)
{
	char line[1024], exe[256] = "?", d[200];
	guard++;
	if (tut && mode != MODE_COMPARE) {   /* timing modes keep their counts per thread */
		g.captures = tut->stats.captures;
		g.frames = tut->stats.frames;
		g.fallbacks = tut->stats.fallbacks;
		g.memo_hits = tut->stats.memo_hits;
		g.frames_reused = tut->stats.frames_reused;
	}
	ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[k > 0 ? k : 1] = 0;
	int len = snprintf(line, sizeof line,
	                   "unwcmp pid=%d exe=%s mode=%d captures=%lu frames=%lu mismatches=%lu "
	                   "fallbacks=%lu memo_hits=%lu frames_reused=%lu ",
	                   getpid(), exe, mode, (unsigned long)g.captures, (unsigned long)g.frames,
	                   (unsigned long)g.mismatches, (unsigned long)g.fallbacks,
	                   (unsigned long)g.memo_hits, (unsigned long)g.frames_reused);
	for (int w = 1; w < MT_UNWIND_WHY_COUNT; w++)
		if (g.by_why[w])
			len += snprintf(line + len, sizeof line - (size_t)len, " [%s]=%lu",
			                mt_unwind_why_name((unsigned)w), (unsigned long)g.by_why[w]);
	snprintf(line + len, sizeof line - (size_t)len, "\n");
	out(line);
	for (int i = 0; i < MAX_SITES && sites[i].pc; i++) {
		describe(d, sizeof d, sites[i].pc);
		snprintf(line, sizeof line, "unwcmp-fallback why=%s count=%u at=%s\n",
		         mt_unwind_why_name(sites[i].why), sites[i].count, d);
		out(line);
	}
}
