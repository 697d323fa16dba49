/*
 * Big zeroed arrays: bigmem.h has the contract.
 */
#include "bigmem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int is_mapped(size_t bytes)
{
	return bytes >= MT_BIG_MMAP_MIN;
}

static void *map(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, bytes, MADV_HUGEPAGE);  /* a hint: failure is harmless */
	return p;
}

void *mt_big_alloc(size_t bytes)
{
	return is_mapped(bytes) ? map(bytes) : calloc(1, bytes ? bytes : 1);
}

void *mt_big_grow(void *p, size_t old_bytes, size_t new_bytes)
{
	if (!p)
		return mt_big_alloc(new_bytes);
	if (is_mapped(old_bytes)) {
		void *q = mremap(p, old_bytes, new_bytes, MREMAP_MAYMOVE);
		if (q == MAP_FAILED)
			return NULL;
		madvise(q, new_bytes, MADV_HUGEPAGE);
		return q;
	}
	if (is_mapped(new_bytes)) {  /* from the heap to a mapping: copy once */
		void *q = map(new_bytes);
		if (!q)
			return NULL;
		memcpy(q, p, old_bytes);
		free(p);
		return q;
	}
	void *q = realloc(p, new_bytes ? new_bytes : 1);
	if (!q)
		return NULL;
	memset((char *)q + old_bytes, 0, new_bytes - old_bytes);
	return q;
}

void mt_big_free(void *p, size_t bytes)
{
	if (!p)
		return;
	if (is_mapped(bytes))
		munmap(p, bytes);
	else
		free(p);
}
