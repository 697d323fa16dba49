/*
 * The growing sample array.  It doubles up to MT_WATCH_SAMPLES_MAX, then
 * halves its resolution instead of growing: a long watch keeps its start
 * (the warm-up) and its end (the trend) alike, which dropping the oldest
 * samples would not.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "watch/watch.h"

#define SERIES_FIRST_CAP 256

void mt_watch_series_init(struct mt_watch_series *sr)
{
	struct mt_watch_series empty = MT_WATCH_SERIES_INIT;
	*sr = empty;
}

void mt_watch_series_release(struct mt_watch_series *sr)
{
	free(sr->s);
	mt_watch_series_init(sr);
}

/* Keeps samples 0, 2, 4, ...: half the samples, twice the step. */
static void thin(struct mt_watch_series *sr)
{
	size_t k = 0;
	for (size_t i = 0; i < sr->n; i += 2)
		sr->s[k++] = sr->s[i];
	sr->n = k;
	sr->stride *= 2;
	sr->thinned++;
}

/* Room for one more sample: 0, 1 when thinning made it, -ENOMEM. */
static int make_room(struct mt_watch_series *sr)
{
	if (sr->n < sr->cap)
		return 0;
	if (sr->cap >= MT_WATCH_SAMPLES_MAX) {
		thin(sr);
		return 1;
	}
	size_t cap = sr->cap ? sr->cap * 2 : SERIES_FIRST_CAP;
	if (cap > MT_WATCH_SAMPLES_MAX)
		cap = MT_WATCH_SAMPLES_MAX;
	struct mt_watch_sample *s = realloc(sr->s, cap * sizeof(*s));
	if (!s)
		return -ENOMEM;
	sr->s = s;
	sr->cap = cap;
	return 0;
}

int mt_watch_series_push(struct mt_watch_series *sr, const struct mt_watch_sample *s)
{
	if (sr->skip) {
		sr->skip--;
		sr->offered++;
		return 0;
	}
	int rc = make_room(sr);
	if (rc < 0)
		return rc;
	/*
	 * After thinning, the last kept sample may have been dropped; the new
	 * one still lands one stride after a kept one because the series held
	 * an even count (MT_WATCH_SAMPLES_MAX is even) when it was thinned.
	 */
	sr->s[sr->n++] = *s;
	sr->offered++;
	sr->skip = sr->stride - 1;
	return rc;
}

size_t mt_watch_series_field(const struct mt_watch_series *sr, enum mt_watch_field f,
                             uint64_t *t, double *v)
{
	size_t k = 0;
	for (size_t i = 0; i < sr->n; i++) {
		if (!mt_watch_has(&sr->s[i], f))
			continue;
		if (t)
			t[k] = sr->s[i].t_ns;
		if (v)
			v[k] = (double)sr->s[i].v[f];
		k++;
	}
	return k;
}
