/*
 * The recorder's own memory: page-granular anonymous mappings, counted so
 * the report can show what the recorder itself costs.  Never malloc: the
 * hooks must not recurse into the allocator they observe.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "record.h"

static _Atomic uint64_t mem_current, mem_peak;

static size_t round_pages(size_t n)
{
	size_t pg = 4096;
	return (n + pg - 1) & ~(pg - 1);
}

void *mt_mem_alloc(size_t bytes)
{
	size_t n = round_pages(bytes);
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	uint64_t cur = __atomic_add_fetch(&mem_current, n, __ATOMIC_RELAXED);
	uint64_t peak = __atomic_load_n(&mem_peak, __ATOMIC_RELAXED);
	while (cur > peak && !__atomic_compare_exchange_n(&mem_peak, &peak, cur, 1,
	                                                  __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	return p;
}

void mt_mem_free(void *p, size_t bytes)
{
	if (!p)
		return;
	size_t n = round_pages(bytes);
	munmap(p, n);
	__atomic_sub_fetch(&mem_current, n, __ATOMIC_RELAXED);
}

uint64_t mt_mem_current(void) { return __atomic_load_n(&mem_current, __ATOMIC_RELAXED); }
uint64_t mt_mem_peak(void) { return __atomic_load_n(&mem_peak, __ATOMIC_RELAXED); }

/* At most this many diagnostics per process, so a broken setup cannot flood stderr. */
#define MT_DIAG_MAX 20
static _Atomic int diag_count;

void mt_diag(const char *msg, const char *detail)
{
	if (__atomic_fetch_add(&diag_count, 1, __ATOMIC_RELAXED) >= MT_DIAG_MAX)
		return;
	char line[512];
	size_t n = 0;
	const char *parts[] = { "memtriage recorder: ", msg, detail ? ": " : "", detail ? detail : "", "\n" };
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
		for (const char *s = parts[i]; *s && n < sizeof line - 1; s++)
			line[n++] = *s;
	if (n && line[n - 1] != '\n')
		line[n - 1] = '\n';
	(void)!write(2, line, n);
}
