/*
 * The timeline of a trace: per RSS sample, RSS and its split, threads,
 * the live heap as replayed up to the sample's time, and glibc's view of
 * its arenas (mallinfo2), from which the parts of RSS follow:
 *
 *   RSS = live heap + allocator-held free + non-heap (+ recorder)
 *
 * The recorder samples mallinfo2 at most once a second and RSS more often,
 * so a point borrows the latest mallinfo sample when it is at most
 * MT_TL_MALLINFO_MAX_AGE_NS old (one missed mallinfo sample); older, the
 * point has no allocator figures rather than stale ones.  Without mallinfo
 * (another allocator preloaded, or none sampled yet), non_heap is RSS minus
 * the live heap, which then also holds what the allocator keeps free: the
 * verdict says so.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "analyze/analysis.h"

/* Latest values of the mallinfo keys, and when they were sampled. */
struct mi_state {
	int have;
	uint64_t t_ns;
	uint64_t v[7];   /* MT_S_MI_ARENA .. MT_S_MI_KEEPCOST */
	int have_heap;
	uint64_t heap;   /* live heap at the mallinfo sample */
};

/* Reads one sample into p (RSS and split, threads, recorder) and mi (mallinfo). */
static int read_sample(const struct mt_sample *s, struct mt_timeline_point *p, struct mi_state *mi)
{
	int have_rss = 0, got_mi = 0;
	for (uint32_t j = 0; j < s->n; j++) {
		uint32_t k = s->kv[j].key;
		uint64_t v = s->kv[j].value;
		switch (k) {
		case MT_S_RSS_BYTES:       p->rss = v; have_rss = 1; break;
		case MT_S_RSS_ANON_BYTES:  p->rss_anon = v; break;
		case MT_S_RSS_FILE_BYTES:  p->rss_file = v; break;
		case MT_S_RSS_SHMEM_BYTES: p->rss_shmem = v; break;
		case MT_S_THREADS:         p->threads = v; break;
		case MT_S_RECORDER_BYTES:  p->recorder = v; break;
		default:
			if (k >= MT_S_MI_ARENA && k <= MT_S_MI_KEEPCOST) {
				mi->v[k - MT_S_MI_ARENA] = v;
				got_mi = 1;
			}
		}
	}
	if (got_mi) {
		mi->have = 1;
		mi->t_ns = s->t_ns;
	}
	return have_rss;
}

static void attach_mallinfo(struct mt_timeline_point *p, const struct mi_state *mi)
{
	if (!mi->have || p->t_ns - mi->t_ns > MT_TL_MALLINFO_MAX_AGE_NS)
		return;
	p->have_mi = 1;
	p->mi_age_ns = p->t_ns - mi->t_ns;
	p->mi_arena = mi->v[0];
	p->mi_ordblks = mi->v[1];
	p->mi_hblks = mi->v[2];
	p->mi_hblkhd = mi->v[3];
	p->mi_uordblks = mi->v[4];
	p->mi_fordblks = mi->v[5];
	p->mi_keepcost = mi->v[6];
	p->mi_heap = mi->have_heap ? mi->heap : p->heap_bytes;
}

static uint64_t sub0(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/*
 * With a mallinfo sample up to 1.5 s old, what the allocator held free is
 * taken as measured then (footprint - live heap at that time), and the
 * footprint now as the live heap now plus that free memory: the live heap
 * moves with every event, the free memory held in arenas slowly.
 */
static void derive(struct mt_timeline_point *p)
{
	if (p->have_mi) {
		uint64_t fp = p->mi_arena + p->mi_hblkhd;
		p->alloc_free = p->have_heap ? sub0(fp, p->mi_heap) : p->mi_fordblks;
		p->footprint = p->have_heap ? p->heap_bytes + p->alloc_free : fp;
		p->non_heap = (int64_t)p->rss - (int64_t)(p->footprint + p->recorder);
	} else {
		p->non_heap = (int64_t)p->rss - (int64_t)(p->heap_bytes + p->recorder);
	}
}

int mt_timeline_build(struct mt_analysis *a, const struct mt_trace *tr, const struct mt_tl_heap *h)
{
	const uint64_t *heap_bytes = h->n ? h->bytes : NULL;
	size_t n_heap = h->n;
	struct mi_state mi = { 0 };
	size_t n = 0;
	a->timeline = calloc(tr->n_samples + 1, sizeof(*a->timeline));
	if (!a->timeline)
		return -ENOMEM;
	uint64_t recorder = 0;
	for (size_t i = 0; i < tr->n_samples; i++) {
		struct mt_timeline_point *p = &a->timeline[n];
		memset(p, 0, sizeof(*p));
		p->t_ns = tr->samples[i].t_ns;
		int had = mi.have, rss = read_sample(&tr->samples[i], p, &mi);
		if (mi.have && (!had || mi.t_ns == p->t_ns)) {
			mi.have_heap = heap_bytes && i < n_heap;
			mi.heap = mi.have_heap ? heap_bytes[i] : 0;
		}
		if (!rss)
			continue;   /* mallinfo-only or trim-probe sample: no point of its own */
		if (p->recorder)
			recorder = p->recorder;
		else
			p->recorder = recorder;
		if (heap_bytes && i < n_heap) {
			p->have_heap = 1;
			p->heap_bytes = heap_bytes[i];
			p->heap_blocks = h->blocks[i];
			p->alloc_calls = h->calls[i];
			p->alloc_bytes = h->abytes[i];
		}
		attach_mallinfo(p, &mi);
		derive(p);
		n++;
	}
	a->n_timeline = n;
	return 0;
}
