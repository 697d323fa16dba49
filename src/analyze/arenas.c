/*
 * glibc's per-arena view: parses the malloc_info(3) XML snapshots the
 * recorder stores (MT_REC_MALLOC_INFO) and prints the per-arena table and
 * the free-chunk sizes under the report's GLIBC ARENAS section.
 *
 * The XML's shape is glibc's own (malloc/malloc.c, __malloc_info, glibc
 * 2.36): one <heap nr="N"> per arena with <size from to total count/> free
 * chunk bins, <total type="fast|rest" count size/>, <system type="current|
 * max" size/> and <aspace .../>; then process-wide totals, among them
 * <total type="mmap" count size/>.  Unknown tags are ignored, so a newer
 * glibc's additions do no harm.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "analyze/arenas.h"
#include "report/report.h"

/* Value of attribute `name` inside the tag that starts at tag (up to '>'); 0 if absent. */
static uint64_t attr(const char *tag, const char *end, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = tag + 1; p + n + 2 < end; p++)
		if (p[-1] == ' ' && !strncmp(p, name, n) && p[n] == '=' && p[n + 1] == '"')
			return strtoull(p + n + 2, NULL, 10);
	return 0;
}

static int attr_is(const char *tag, const char *end, const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);
	for (const char *p = tag + 1; p + n + v + 3 < end; p++)
		if (p[-1] == ' ' && !strncmp(p, name, n) && p[n] == '=' && p[n + 1] == '"' &&
		    !strncmp(p + n + 2, value, v) && p[n + 2 + v] == '"')
			return 1;
	return 0;
}

/*
 * Adds a free-chunk bin to the size histogram (powers of 4 from 32 B, like
 * the report's), by the bin's mean chunk size: a large bin, and the
 * unsorted list, span a wide range of sizes between `from` and `to`.
 */
static void add_bin(struct mt_arenas *m, uint64_t total, uint64_t count)
{
	uint64_t mean = count ? total / count : 0;
	int b = 0;
	for (uint64_t lim = 32; mean > lim && b < MT_ARENA_BUCKETS - 1; lim *= 4)
		b++;
	m->bucket_bytes[b] += total;
	m->bucket_count[b] += count;
}

/* One tag of a <heap>; `a` is NULL outside any heap (process-wide totals). */
static void take_tag(struct mt_arenas *m, struct mt_arena *a, const char *t, const char *e)
{
	if (!strncmp(t, "<size ", 6) || !strncmp(t, "<unsorted ", 10)) {
		if (a)
			add_bin(m, attr(t, e, "total"), attr(t, e, "count"));
	} else if (!strncmp(t, "<total ", 7)) {
		uint64_t count = attr(t, e, "count"), size = attr(t, e, "size");
		if (attr_is(t, e, "type", "mmap")) {
			m->mmap_count = count;
			m->mmap_bytes = size;
		} else if (a) {
			a->free_count += count;
			a->free_bytes += size;
		}
	} else if (a && !strncmp(t, "<system ", 8)) {
		if (attr_is(t, e, "type", "current"))
			a->system_bytes = attr(t, e, "size");
		else if (attr_is(t, e, "type", "max"))
			a->system_max_bytes = attr(t, e, "size");
	}
}

void mt_arenas_release(struct mt_arenas *m)
{
	free(m->arena);
	memset(m, 0, sizeof *m);
}

int mt_arenas_parse(const char *xml, struct mt_arenas *m)
{
	memset(m, 0, sizeof *m);
	struct mt_arena *cur = NULL;
	for (const char *t = strchr(xml, '<'); t; t = strchr(t + 1, '<')) {
		const char *e = strchr(t, '>');
		if (!e)
			break;
		if (!strncmp(t, "<heap ", 6)) {
			if (m->n_arenas == MT_ARENAS_MAX)
				return -1;
			struct mt_arena *na = realloc(m->arena, (m->n_arenas + 1) * sizeof *na);
			if (!na)
				return -1;
			m->arena = na;
			cur = &m->arena[m->n_arenas++];
			memset(cur, 0, sizeof *cur);
			cur->nr = (unsigned)attr(t, e, "nr");
		} else if (!strncmp(t, "</heap>", 7)) {
			cur = NULL;
		} else {
			take_tag(m, cur, t, e);
		}
	}
	for (size_t i = 0; i < m->n_arenas; i++) {
		m->system_bytes += m->arena[i].system_bytes;
		m->free_bytes += m->arena[i].free_bytes;
		m->free_count += m->arena[i].free_count;
	}
	return m->n_arenas ? 0 : -1;
}

const struct mt_malloc_info *mt_arenas_pick(const struct mt_trace *tr, uint64_t until_ns)
{
	const struct mt_malloc_info *best = NULL;
	for (size_t i = 0; tr && i < tr->n_malloc_infos; i++)
		if (!best || tr->malloc_infos[i].t_ns <= until_ns)
			best = &tr->malloc_infos[i];
	return best;
}

static int by_free_desc(const void *x, const void *y)
{
	const struct mt_arena *a = x, *b = y;
	return a->free_bytes < b->free_bytes ? 1 : a->free_bytes > b->free_bytes ? -1 : 0;
}

static void write_buckets(FILE *f, const struct mt_arenas *m)
{
	static const char *names[MT_ARENA_BUCKETS] = { "<= 32 B", "<= 128 B", "<= 512 B", "<= 2 KiB",
		"<= 8 KiB", "<= 32 KiB", "<= 128 KiB", "<= 512 KiB", "<= 2 MiB", "larger" };
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN];
	fprintf(f, "free chunks by size (all arenas; a bin counts at its mean chunk size):\n"
	        "  %-12s %12s %14s\n", "chunk size", "chunks", "bytes");
	for (int i = 0; i < MT_ARENA_BUCKETS; i++)
		if (m->bucket_count[i])
			fprintf(f, "  %-12s %12s %14s\n", names[i], mt_fmt_count(b1, m->bucket_count[i]),
			        mt_fmt_size(b2, m->bucket_bytes[i]));
}

void mt_arenas_write(FILE *f, const struct mt_arenas *m, uint64_t t_ns, uint64_t threads)
{
	char b1[MT_FMT_LEN], b2[MT_FMT_LEN], b3[MT_FMT_LEN], b4[MT_FMT_LEN];
	fprintf(f, "per arena (malloc_info at %s): %zu arenas for %" PRIu64 " threads; mmap'd chunks: "
	        "%s holding %s\n", mt_fmt_duration(b1, t_ns), m->n_arenas, threads,
	        mt_fmt_count(b2, m->mmap_count), mt_fmt_size(b3, m->mmap_bytes));
	struct mt_arena *sorted = malloc(m->n_arenas * sizeof *sorted);
	if (!sorted)
		return;
	memcpy(sorted, m->arena, m->n_arenas * sizeof *sorted);
	qsort(sorted, m->n_arenas, sizeof *sorted, by_free_desc);
	fprintf(f, "  %-6s %14s %14s %12s %12s\n", "arena", "holds", "free", "free chunks", "in use");
	size_t shown = m->n_arenas < MT_ARENAS_SHOWN ? m->n_arenas : MT_ARENAS_SHOWN;
	for (size_t i = 0; i < shown; i++) {
		const struct mt_arena *a = &sorted[i];
		uint64_t used = a->system_bytes > a->free_bytes ? a->system_bytes - a->free_bytes : 0;
		fprintf(f, "  %-6u %14s %14s %12s %11.1f%%\n", a->nr, mt_fmt_size(b1, a->system_bytes),
		        mt_fmt_size(b2, a->free_bytes), mt_fmt_count(b3, a->free_count),
		        a->system_bytes ? 100.0 * (double)used / (double)a->system_bytes : 0.0);
	}
	if (m->n_arenas > shown)
		fprintf(f, "  ... %zu more arenas\n", m->n_arenas - shown);
	fprintf(f, "  %-6s %14s %14s %12s\n", "all", mt_fmt_size(b1, m->system_bytes),
	        mt_fmt_size(b2, m->free_bytes), mt_fmt_count(b4, m->free_count));
	free(sorted);
	write_buckets(f, m);
}
