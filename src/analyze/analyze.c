/*
 * mt_analyze(): replay a trace and complete the figures that come from
 * its small records (samples, stats, end) rather than from events.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "analyze/analysis.h"

static const char *const func_names[MT_N_ALLOC_FUNCS] = {
	[MT_EV_MALLOC]         = "malloc",
	[MT_EV_CALLOC]         = "calloc",
	[MT_EV_REALLOC]        = "realloc",
	[MT_EV_REALLOCARRAY]   = "reallocarray",
	[MT_EV_POSIX_MEMALIGN] = "posix_memalign",
	[MT_EV_ALIGNED_ALLOC]  = "aligned_alloc",
	[MT_EV_MEMALIGN]       = "memalign",
	[MT_EV_VALLOC]         = "valloc",
	[MT_EV_PVALLOC]        = "pvalloc",
};

const char *mt_func_name(unsigned tag)
{
	if (tag == MT_EV_FREE)
		return "free";
	if (tag < MT_N_ALLOC_FUNCS && func_names[tag])
		return func_names[tag];
	return "?";
}

/*
 * Asks the replay for the live heap at every sample: sample times are ns
 * since the trace start, events carry ticks, so each time goes back to
 * ticks (the inverse of mt_trace_ns, to within a tick).
 */
static int set_timeline(struct mt_replay *r, const struct mt_trace *tr)
{
	size_t n = tr->n_samples;
	uint64_t *ticks = malloc((n + 1) * sizeof(*ticks));
	if (!ticks)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		double ns = (double)tr->samples[i].t_ns;
		double d = tr->ns_per_tick > 0 ? ns / tr->ns_per_tick : ns;
		ticks[i] = tr->tick0 + (d >= 0x1p63 ? (uint64_t)1 << 63 : (uint64_t)d);
		if (i && ticks[i] < ticks[i - 1])
			ticks[i] = ticks[i - 1];
	}
	int rc = mt_replay_timeline(r, ticks, n);
	free(ticks);
	return rc;
}

int mt_analyze(struct mt_trace *tr, const struct mt_analysis_opts *opts,
               struct mt_analysis **out, char err[MT_ERR_LEN])
{
	struct mt_replay *r = mt_replay_new(opts, tr->n_events);
	*out = NULL;
	if (!r) {
		snprintf(err, MT_ERR_LEN, "out of memory while analyzing");
		return -ENOMEM;
	}
	err[0] = 0;
	if (set_timeline(r, tr) || mt_marks_prepare(r, tr, opts)) {
		snprintf(err, MT_ERR_LEN, "out of memory while analyzing");
		mt_replay_free(r);
		return -ENOMEM;
	}
	int rc = mt_trace_replay_batch(tr, mt_replay_events, r, err);
	if (rc) {
		const char *why = mt_replay_error(r);  /* NULL: the reader failed and said why */
		if (why)
			snprintf(err, MT_ERR_LEN, "%s", why);
		else if (!err[0])
			snprintf(err, MT_ERR_LEN, "cannot replay the trace (error %d)", rc);
		mt_replay_free(r);
		return rc > 0 ? -EINVAL : rc;
	}
	return mt_replay_finish(r, tr, opts, out, err);
}

/* Peak RSS: the largest RSS sample, or the kernel's high-water mark if larger. */
static void scan_samples(struct mt_analysis *a, const struct mt_trace *tr)
{
	uint64_t hwm = 0;
	int have_hwm = 0;
	for (size_t i = 0; i < tr->n_samples; i++) {
		const struct mt_sample *s = &tr->samples[i];
		for (uint32_t j = 0; j < s->n; j++) {
			uint64_t v = s->kv[j].value;
			switch (s->kv[j].key) {
			case MT_S_RSS_BYTES:
				a->have_rss = 1;
				if (v > a->peak_rss_bytes)
					a->peak_rss_bytes = v;
				break;
			case MT_S_VMHWM_BYTES:
				have_hwm = 1;
				hwm = v;
				break;
			case MT_S_RECORDER_BYTES:
				a->have_recorder_bytes = 1;
				if (v > a->recorder_peak_bytes)
					a->recorder_peak_bytes = v;
				break;
			}
		}
	}
	if (have_hwm) {
		a->have_rss = 1;
		if (hwm > a->peak_rss_bytes)
			a->peak_rss_bytes = hwm;
	}
}

static void scan_records(struct mt_analysis *a, const struct mt_trace *tr, uint64_t last_t)
{
	uint64_t rec = mt_trace_stat(tr, MT_ST_RECORDER_PEAK_BYTES, 0);
	if (rec) {
		a->have_recorder_bytes = 1;
		if (rec > a->recorder_peak_bytes)
			a->recorder_peak_bytes = rec;
	}
	if (tr->cut || !tr->ended)
		a->end_kind = MT_ENDED_CUT;
	else
		a->end_kind = tr->end_reason == MT_END_EXEC ? MT_ENDED_EXEC : MT_ENDED_EXIT;

	uint64_t d = a->n_events ? mt_trace_ns(tr, last_t) : 0;
	if (tr->ended && tr->end_ns > d)
		d = tr->end_ns;
	if (tr->n_samples && tr->samples[tr->n_samples - 1].t_ns > d)
		d = tr->samples[tr->n_samples - 1].t_ns;
	a->duration_ns = d;
	if (tr->n_threads > a->n_threads)
		a->n_threads = (uint32_t)tr->n_threads;
}

int mt_analysis_fill(struct mt_analysis *a, const struct mt_trace *tr,
                     struct mt_replay_slot *sl, size_t n, size_t sl_bytes, uint32_t epoch,
                     uint64_t last_t, const struct mt_analysis_opts *opts, char err[MT_ERR_LEN])
{
	unsigned top_n = opts && opts->top_n ? opts->top_n : MT_TOP_DEFAULT;
	if (top_n > MT_TOP_MAX)
		top_n = MT_TOP_MAX;
	scan_samples(a, tr);
	scan_records(a, tr, last_t);
	int rc = mt_stacks_build(a, tr, sl, n, sl_bytes, epoch, top_n, err);
	if (!rc && mt_verdict_build(a)) {
		snprintf(err, MT_ERR_LEN, "out of memory while analyzing");
		rc = -ENOMEM;
	}
	return rc;
}
