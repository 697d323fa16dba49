/*
 * Analysis of a trace: replays every allocation and free in the reader's
 * global order and derives the figures of a report.
 *
 * What it computes (struct mt_analysis below):
 *  - calls per allocation function and free calls, bytes allocated;
 *  - temporary allocations: a block freed by the thread that allocated it
 *    with no other allocation by that thread in between (a realloc counts
 *    as an allocation; the implicit free inside a realloc never makes the
 *    old block temporary: growing a buffer is not a throw-away);
 *  - the peak of the live heap (bytes, blocks, time) and how much of it
 *    each call stack held at that moment;
 *  - what was still live at the end (leaked at exit, or live when a cut
 *    trace stops);
 *  - a size histogram, peak RSS from samples, recorder overhead;
 *  - per call stack: calls, bytes, temporaries, bytes at the peak,
 *    leaked bytes and blocks; and the top N stacks by each of those.
 *
 * Stack identity.  Events name recorder trie nodes, and the recorder may
 * define one (parent, ip) under several ids.  After replay every node is
 * mapped to a canonical node by interning (canonical parent, ip), and
 * figures are summed per canonical leaf, so one call path is one stack.
 * Canonical ids follow the recorder's: in the order of the first id that
 * defines each call path.
 *
 * Ownership: mt_analyze() borrows the trace; it must stay open until
 * mt_analysis_free(), because modules (for symbolization) and the process
 * record are read from it when the report is written.
 *
 * Errors: 0 or a negative errno-style code, with a one-line message (no
 * "memtriage: " prefix) in the caller's err[MT_ERR_LEN].
 *
 * Not thread-safe.
 */
#ifndef MT_ANALYZE_ANALYSIS_H
#define MT_ANALYZE_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>
#include "trace/reader.h"
#include "analyze/symbols.h"

/* ---- limits: each is an error the user sees, never a crash ------------ */
#define MT_LIVE_MAX        (1ull << 31)  /* live blocks at once */
#define MT_STACK_ID_MAX    (1u << 26)    /* largest trie node id an event may name */
#define MT_THREAD_IDX_MAX  (1u << 22)    /* largest recorder thread index */
#define MT_STACK_DEPTH_MAX 4096          /* frames a report walks per stack */
#define MT_TOP_MAX         1000          /* largest --top */
#define MT_TOP_DEFAULT     5

/*
 * Size histogram: bucket 0 holds sizes 0 and 1, bucket k (1..64) holds
 * sizes in (2^(k-1), 2^k], i.e. 2, 3-4, 5-8, 9-16, ...  Only successful
 * allocations are counted, with their requested size.
 */
#define MT_HIST_BUCKETS 65
static inline unsigned mt_hist_bucket(uint64_t size_bytes)
{
	return size_bytes <= 1 ? 0 : 64 - (unsigned)__builtin_clzll(size_bytes - 1);
}
/* Largest size in bucket k (k < 64); bucket 64 ends at UINT64_MAX. */
static inline uint64_t mt_hist_upper(unsigned k)
{
	return k >= 64 ? UINT64_MAX : (uint64_t)1 << k;
}

/* Figures of one canonical call stack. */
struct mt_stack_stats {
	uint64_t calls;           /* allocation calls, failed ones included */
	uint64_t bytes;           /* bytes allocated by successful calls */
	uint64_t temporary;       /* temporary allocations (see above) */
	uint64_t peak_bytes;      /* live bytes of this stack at the global heap peak */
	uint64_t leaked_bytes;    /* live at the end */
	uint64_t leaked_blocks;
};

struct mt_stack {
	uint32_t node;            /* canonical leaf: index into mt_analysis.cnodes; 0 = no stack */
	struct mt_stack_stats st;
};

/* Canonical call-stack trie node; cnodes[0] is the root. */
struct mt_cnode {
	uint64_t ip;              /* return address; 0 = unknown (definition lost) */
	uint32_t parent;
};

enum mt_top_kind {
	MT_TOP_PEAK,              /* by peak_bytes */
	MT_TOP_LEAKED,            /* by leaked_bytes */
	MT_TOP_CALLS,             /* by calls */
	MT_TOP_TEMPORARY,         /* by temporary */
	MT_TOP_KINDS
};

/* How the recording ended, which names what "live at the end" means. */
enum mt_end_kind {
	MT_ENDED_EXIT,            /* MT_END_EXIT: live at the end is leaked at exit */
	MT_ENDED_EXEC,            /* the process exec'd: live at exec */
	MT_ENDED_CUT,             /* trace cut (crash, SIGKILL) or no end record */
};

/*
 * Timeline: one point per sample that has RSS, in time order.  heap_* is
 * the live heap exactly as replayed up to the sample's time (every event
 * stamped at or before it), valid when have_heap.  mi_* are glibc's
 * mallinfo2 fields from the latest mallinfo sample at most
 * MT_TL_MALLINFO_MAX_AGE_NS old (have_mi; the recorder samples mallinfo at
 * most once a second, and only when the next allocator is glibc's).
 * Derived, in bytes, each valid when its inputs are:
 *   alloc_free = mi_arena + mi_hblkhd - mi_heap   held by the allocator, not the
 *                program, when mallinfo was sampled (>= 0)
 *   footprint = heap_bytes + alloc_free  what glibc holds from the system now
 *   non_heap  = rss - footprint - recorder   RSS outside malloc (signed: the
 *               recorder's figure is its mapped memory, an upper bound, so
 *               the level is biased low; its changes are what count);
 *               without mallinfo: rss - heap_bytes - recorder
 */
#define MT_TL_MALLINFO_MAX_AGE_NS 1500000000ull  /* 1.5 s: one missed mallinfo sample at most */

struct mt_timeline_point {
	uint64_t t_ns;
	uint64_t rss, rss_anon, rss_file, rss_shmem;   /* bytes; split 0 when absent */
	uint64_t threads;                              /* 0 when absent */
	uint64_t recorder;                             /* recorder's own bytes (0 when absent) */
	uint64_t heap_bytes, heap_blocks;
	uint64_t alloc_calls, alloc_bytes;             /* cumulative since the start (with the heap) */
	int have_heap, have_mi;
	uint64_t mi_arena, mi_ordblks, mi_hblks, mi_hblkhd, mi_uordblks, mi_fordblks, mi_keepcost;
	uint64_t mi_age_ns;                            /* age of the mallinfo sample used */
	uint64_t mi_heap;                              /* live heap at that mallinfo sample */
	uint64_t footprint, alloc_free;
	int64_t non_heap;          /* may be < 0: the recorder's figure is an upper bound (mapped) */
};

/* Verdict classes (docs/verdict.md has every rule and threshold). */
enum mt_verdict_class {
	MT_V_TOO_SHORT,           /* fewer than MT_V_MIN_POINTS samples */
	MT_V_NO_GROWTH,
	MT_V_LIVE_HEAP_GROWTH,    /* leak or unbounded cache */
	MT_V_ALLOC_RETENTION,     /* fragmentation: RSS far above a flat live heap */
	MT_V_PLATEAU,             /* pooling plateau after warm-up */
	MT_V_NON_HEAP_GROWTH,     /* RSS outside malloc grows */
};
enum mt_confidence { MT_CONF_LOW, MT_CONF_MEDIUM, MT_CONF_HIGH };

/* Units of an evidence figure, for the reporter. */
enum mt_ev_unit { MT_U_BYTES, MT_U_BYTES_PER_S, MT_U_RATIO, MT_U_PERCENT, MT_U_P, MT_U_COUNT };

#define MT_V_EVIDENCE_MAX 16
#define MT_V_REMEDY_MAX   12
#define MT_V_OWNERS_MAX   3
#define MT_V_TEXT_LEN     400

/* One measured figure against its threshold: "value op threshold" held or not. */
struct mt_evidence {
	const char *what;         /* static: "live-heap slope after warm-up" */
	double value, threshold;
	enum mt_ev_unit unit;
	const char *op;           /* ">=", "<", ... */
	int met;                  /* the rule's condition held */
};

struct mt_verdict {
	enum mt_verdict_class cls;
	enum mt_confidence confidence;
	int allocator_stats;      /* mallinfo2 evidence used; 0: RSS minus live heap */
	size_t mi_samples;        /* timeline points with a mallinfo2 sample of their own */
	char summary[MT_V_TEXT_LEN];
	struct mt_evidence ev[MT_V_EVIDENCE_MAX]; size_t n_ev;
	char remedy[MT_V_REMEDY_MAX][MT_V_TEXT_LEN]; size_t n_remedy;
	uint32_t owners[MT_V_OWNERS_MAX]; size_t n_owners;  /* indices into stacks (live-heap growth) */
	/* the window the growth rules judge: points [win_first, win_end), after warm-up and
	   before the exit's teardown */
	size_t win_first, win_end;
	/* measured values the summary and remedies quote */
	double heap_mean, heap_slope, heap_rise, rss_mean, rss_slope, rss_rise;
	/* free_end, footprint_end, util_end: at the window's mallinfo2 sample with the most
	   allocator-held free memory (the retention at its worst); heap_end: at the window's end */
	double free_end, heap_end, footprint_end, util_end, non_heap_rise;
	double plateau_mean, plateau_max, warmup_rise, plateau_fraction;
	int have_trim; uint64_t trim_before, trim_after;
	uint64_t threads_first, threads_last;
	char alt_alloc[3][128]; size_t n_alt;   /* allocators found on this system */
};

/*
 * Markers (markers.c): the program's marks and requests (include/memtriage.h)
 * placed among the events.  The replay records the live heap at each
 * marker's time as it does at samples (every event stamped at or before
 * it); RSS is the nearest sample's.  Only the global heap is kept per
 * marker: per-stack live bytes are kept at the two marks a diff names
 * (mt_analysis_opts.diff_mark), known before the replay.
 *
 * Requests pair a begin with the next end of the same id.  Their live-heap
 * change is the whole heap's over the span: with requests in flight on
 * several threads it includes the others' work (as any process-wide
 * measure does); n_overlapped says how many spans overlapped another.
 */
enum mt_marker_kind { MT_MK_MARK = 0, MT_MK_BEGIN = 1, MT_MK_END = 2 };

struct mt_mark_point {
	uint64_t t_ns;
	const char *label;        /* borrowed from the trace; "" for requests */
	uint32_t kind, thread_idx;
	uint64_t id, payload_bytes;          /* requests: id; begin: payload bytes */
	uint64_t heap_bytes, heap_blocks;    /* live when the marker was written */
	int have_rss;
	uint64_t rss, rss_t_ns;              /* nearest RSS sample and its time */
};

/* Marks sharing one label: each occurrence's phase runs to the next mark (or the end). */
struct mt_mark_label {
	const char *label;        /* borrowed */
	uint64_t count;
	int64_t growth_sum, growth_min, growth_max;  /* live-heap change per phase, bytes */
	int64_t rss_growth_sum;   /* RSS change per phase, summed over rss_n phases */
	uint64_t rss_n;
};

struct mt_request {
	uint64_t id, payload_bytes;
	uint32_t thread_idx;
	size_t begin, end;        /* indices into mt_marks.pt */
	int64_t heap_delta;       /* live heap at end - at begin, bytes */
	int64_t rss_delta;        /* nearest RSS samples; valid when have_rss */
	int have_rss;
};

/* Requests grouped by payload: bucket mt_hist_bucket(payload_bytes). */
struct mt_req_bucket {
	uint64_t n, n_rss;
	double heap_sum, rss_sum, ratio_sum;  /* ratio_sum over requests with payload > 0 */
};

/* One stack's change between the diff's marks (canonical leaf, as mt_stack.node). */
struct mt_diff_stack {
	uint32_t node;
	int64_t bytes, blocks;    /* live at mark B - live at mark A */
	uint64_t a_bytes;         /* live at mark A (at B: a_bytes + bytes) */
};

struct mt_marks {
	struct mt_mark_point *pt; size_t n;          /* owned; every marker, time order */
	size_t n_marks;                              /* of kind MT_MK_MARK */
	struct mt_mark_label *labels; size_t n_labels;  /* owned; first-occurrence order */

	struct mt_request *req; size_t n_req;        /* owned; completed requests by begin */
	uint64_t req_unmatched;                      /* begins without an end, ends without a begin */
	uint64_t n_overlapped;                       /* requests that began while another was open */
	size_t n_ratio;                              /* requests with payload > 0 */
	double ratio_sum, ratio_min, ratio_max;      /* heap_delta / payload_bytes */
	int64_t heap_min, heap_max; double heap_sum; /* heap_delta over all requests */
	struct mt_req_bucket bucket[MT_HIST_BUCKETS];

	/* diff between two marks (have_diff); A may come after B, deltas are B - A */
	int have_diff;
	size_t diff_a, diff_b;                       /* indices into pt */
	int64_t diff_bytes, diff_blocks;             /* sum of every stack's change */
	size_t n_diff_changed, n_diff_grew;          /* stacks whose live bytes or blocks changed; grew */
	int64_t diff_grew_bytes, diff_shrank_bytes;  /* sums over stacks that grew; shrank (< 0) */
	struct mt_diff_stack *diff_top; size_t n_diff_top;  /* owned; by bytes grown, best first */
	/* diff_top[0..n_diff_rows): every stack live at A or at B, same order; the first
	   n_diff_top grew, unchanged and shrinking ones follow (folded diff, report.h) */
	size_t n_diff_rows;
};

/*
 * Finds the mark `spec` names: a label (its first occurrence in time
 * order), or "label#N" for the Nth occurrence (N from 1).  *ordinal is
 * the mark's 0-based position among marks in time order.  -ENOENT with a
 * one-line message listing the labels when none matches, -ENOMEM.
 */
int mt_marks_find(const struct mt_trace *tr, const char *spec, size_t *ordinal, char err[MT_ERR_LEN]);

struct mt_analysis_priv;

struct mt_analysis {
	const struct mt_trace *trace;      /* borrowed */

	/* calls, indexed by enum mt_ev_tag of the allocation function (1..9) */
	uint64_t calls[MT_N_ALLOC_FUNCS];
	uint64_t failed[MT_N_ALLOC_FUNCS]; /* returned NULL for a non-zero request */
	uint64_t func_bytes[MT_N_ALLOC_FUNCS];
	uint64_t alloc_calls;              /* sum of calls[] */
	uint64_t failed_calls;             /* sum of failed[] */
	uint64_t free_calls;               /* free() calls (realloc's own frees excluded) */
	uint64_t bytes_allocated;          /* sum of requested sizes of successful calls */
	uint64_t temporary;

	/* live heap */
	uint64_t peak_bytes, peak_blocks;
	uint64_t peak_t_ns;                /* ns since trace start */
	uint64_t end_bytes, end_blocks;    /* live when the recording stopped */
	enum mt_end_kind end_kind;

	/* anomalies: none in a correct, complete trace */
	uint64_t unknown_frees;            /* frees of blocks allocated before recording */
	uint64_t double_allocs;            /* allocation of a pointer already live */
	uint64_t unknown_func;             /* events with a function tag we do not know */

	/* sizes */
	uint64_t hist_calls[MT_HIST_BUCKETS];
	uint64_t hist_bytes[MT_HIST_BUCKETS];

	/* process and time */
	uint64_t n_events;                 /* alloc + free events replayed */
	uint64_t duration_ns;
	uint32_t n_threads;                /* threads seen (records or events) */

	/* memory from samples; have_* is 0 when no sample had the key */
	int have_rss;
	uint64_t peak_rss_bytes;           /* max(RSS samples, last VmHWM sample) */
	int have_recorder_bytes;
	uint64_t recorder_peak_bytes;      /* max(stat, samples) of the recorder's own memory */

	/* timeline and verdict (timeline.c, verdict.c); timeline NULL when no sample had RSS */
	struct mt_timeline_point *timeline; size_t n_timeline;   /* owned */
	struct mt_verdict *verdict;                              /* owned; NULL only on no memory */

	/* stacks */
	struct mt_cnode *cnodes; size_t n_cnodes;   /* owned */
	struct mt_stack *stacks; size_t n_stacks;   /* owned; every stack with a call or a leak */
	uint32_t *top[MT_TOP_KINDS];                /* owned; indices into stacks, best first */
	struct mt_marks *marks;                     /* owned; NULL when the trace has no marker */
	size_t n_top[MT_TOP_KINDS];                 /* <= opts.top_n; stacks with value 0 left out */
	size_t n_trie_nodes;                        /* recorder nodes before canonicalization */

	struct mt_analysis_priv *priv;
};

struct mt_analysis_opts {
	unsigned top_n;                    /* stacks per top list; 0 = MT_TOP_DEFAULT */
	/* Called about every million events with events replayed and the total. */
	void (*progress)(uint64_t done, uint64_t total, void *arg);
	void *progress_arg;
	/* diff between two marks: 1 + ordinals from mt_marks_find(); 0 = no diff */
	size_t diff_mark[2];
};

/*
 * Replays `tr` (opened with mt_trace_open, not yet replayed) and fills a
 * new analysis into *out, which the caller frees with mt_analysis_free().
 * opts may be NULL.
 */
int mt_analyze(struct mt_trace *tr, const struct mt_analysis_opts *opts,
               struct mt_analysis **out, char err[MT_ERR_LEN]);

/* Frees the analysis, its symbolizer and every string it handed out. NULL is a no-op. */
void mt_analysis_free(struct mt_analysis *a);

/*
 * Symbolizes canonical stack `node` into out[0..max): innermost frame
 * first; an inlined chain appears as several entries, the inlined ones
 * with .inlined = 1 before the function they were inlined into.  Frames
 * of the recorder itself, of libc's allocation functions at the
 * innermost end, and of process or thread start-up (_start,
 * __libc_start_main, start_thread, clone) at the outermost end are left
 * out.  Returns the entries written; *more is set
 * to 1 when frames were left out for lack of room.  Strings live until
 * mt_analysis_free().  Node 0 (no stack) yields 0 entries.
 */
int mt_analysis_stack_frames(const struct mt_analysis *a, uint32_t node,
                             struct mt_frame *out, int max, int *more);

/* ---- replay core, exposed for unit tests and benchmarks ---------------- */
/*
 * mt_analyze() is mt_replay_new(), mt_trace_replay_batch(tr, mt_replay_events, r),
 * mt_replay_finish().  Tests can feed events directly, one at a time or in
 * batches (a batch lets the replay prefetch ahead: faster on big heaps).
 */
struct mt_replay;

/* opts may be NULL; total_events is passed to opts->progress. NULL on out of memory. */
struct mt_replay *mt_replay_new(const struct mt_analysis_opts *opts, uint64_t total_events);
int mt_replay_event(const struct mt_event *ev, void *replay);  /* an mt_event_fn; 0 or -errno */
int mt_replay_events(const struct mt_event *ev, size_t n, void *replay);  /* an mt_events_fn */
/* Message of the error that made mt_replay_event() return non-zero; NULL if none did. */
const char *mt_replay_error(const struct mt_replay *r);
/*
 * Turns the replay into an analysis of `tr` (whose nodes, samples, stats
 * and end record are read) and frees r in every case.
 */
int mt_replay_finish(struct mt_replay *r, const struct mt_trace *tr,
                     const struct mt_analysis_opts *opts,
                     struct mt_analysis **out, char err[MT_ERR_LEN]);
void mt_replay_free(struct mt_replay *r);              /* NULL is a no-op */

/*
 * Internal, between replay.c, analyze.c and stacks.c.
 *
 * The replay's figures for one recorder trie node id that allocated.  The
 * peak per stack is kept lazily: the replay numbers the rises of the peak
 * (epochs), and a slot whose last live change came before the latest rise
 * (epoch != the replay's final epoch) held live_bytes at the peak, the
 * others at_peak.  Same size as struct mt_stack, which slots become in
 * place.
 */
struct mt_replay_slot {
	uint32_t node;            /* recorder trie node id */
	uint32_t epoch;           /* the replay's epoch at the last live change */
	uint64_t calls, bytes, temporary;
	uint64_t at_peak;
	uint64_t live_bytes, live_blocks;
};

/*
 * Completes `a` (totals already copied from the replay) from the trace
 * `tr` and the slots sl[0..n), one per recorder node id that allocated;
 * epoch is the replay's final epoch and last_t the ticks of the last
 * event.  sl is an mt_big array (trace/bigmem.h) of sl_bytes that `a`
 * takes over in every case: it becomes a->stacks, canonical stacks merged
 * in place.  Builds canonical stacks and top lists.
 */
int mt_analysis_fill(struct mt_analysis *a, const struct mt_trace *tr,
                     struct mt_replay_slot *sl, size_t n, size_t sl_bytes, uint32_t epoch,
                     uint64_t last_t, const struct mt_analysis_opts *opts, char err[MT_ERR_LEN]);
int mt_stacks_build(struct mt_analysis *a, const struct mt_trace *tr,
                    struct mt_replay_slot *sl, size_t n, size_t sl_bytes, uint32_t epoch,
                    unsigned top_n, char err[MT_ERR_LEN]);

/*
 * Fills a->top[] and a->n_top[] from a->stacks (replacing lists already
 * there): per kind, the top_n stacks with the largest non-zero value, ties
 * by node id.  One pass over the stacks with a bounded heap per kind: a
 * stack costs a comparison with the worst of a full list, log(top_n) steps
 * when it enters one; no sort of every stack.  0 or -ENOMEM.
 */
int mt_top_build(struct mt_analysis *a, unsigned top_n);

/*
 * Timeline hook of the replay: the live heap at each of n sample times,
 * given in ticks (the events' clock), sorted.  Call before replaying; the
 * replay then records live bytes and blocks before the first event later
 * than each tick (one compare per event).  Takes nothing over: ticks is
 * copied.  0 or -ENOMEM.
 */
int mt_replay_timeline(struct mt_replay *r, const uint64_t *ticks, size_t n);

/*
 * Builds a->timeline from tr's samples and the live heap the replay
 * recorded at them (heap_bytes/heap_blocks[0..n_heap), NULL when the
 * replay had no timeline hook); 0 or -ENOMEM.  timeline.c.
 */
/* What the replay saw at each sample tick, arrays of n (NULL pointers when n is 0). */
struct mt_tl_heap {
	const uint64_t *bytes, *blocks;   /* live heap */
	const uint64_t *calls, *abytes;   /* allocation calls and bytes allocated so far */
	size_t n;
};
int mt_timeline_build(struct mt_analysis *a, const struct mt_trace *tr, const struct mt_tl_heap *h);
/*
 * Markers hook of the replay, like mt_replay_timeline: the live heap at
 * each of n marker times in ticks (sorted).  At index snap_first the
 * replay copies every stack slot's live bytes and blocks, at snap_second
 * (>= snap_first) it keeps each slot's change since; SIZE_MAX: no diff.
 * 0 or -ENOMEM.
 */
int mt_replay_marks(struct mt_replay *r, const uint64_t *ticks, size_t n,
                    size_t snap_first, size_t snap_second);

/* What the replay measured at markers, handed from replay.c to markers.c. */
struct mt_marks_replay {
	uint64_t *bytes, *blocks; size_t n;     /* live heap at each marker tick (malloc'd) */
	int have_diff, oom;                     /* oom: no memory for the diff's snapshots */
	uint32_t *node; int64_t *d_bytes, *d_blocks; size_t n_slot;  /* per slot: recorder node, change */
	uint64_t *first_bytes; size_t n_first;  /* per slot: live at the earlier mark (slots made
	                                           later: 0); malloc'd, NULL without a diff */
};

/* Sets the markers hook from tr's markers and opts->diff_mark; 0 or -ENOMEM.  markers.c. */
int mt_marks_prepare(struct mt_replay *r, const struct mt_trace *tr,
                     const struct mt_analysis_opts *opts);
/*
 * Builds a->marks from tr's markers, a->timeline (RSS) and what the replay
 * measured (mr, whose arrays it frees in every case); needs a->cnodes for
 * the diff.  0 or -ENOMEM.  markers.c.
 */
int mt_marks_build(struct mt_analysis *a, const struct mt_trace *tr, struct mt_marks_replay *mr,
                   const struct mt_analysis_opts *opts);
void mt_marks_free(struct mt_marks *m);    /* NULL is a no-op */

/* Classifies a->timeline into a->verdict (needs the top lists); 0 or -ENOMEM.  verdict.c. */
int mt_verdict_build(struct mt_analysis *a);
const char *mt_verdict_name(enum mt_verdict_class c);
const char *mt_confidence_name(enum mt_confidence c);
/* Warnings of the glibc arena section: low utilization; free far above what trim can release. */
int mt_verdict_arena_warn_util(double util);
int mt_verdict_arena_warn_keepcost(uint64_t fordblks, uint64_t keepcost);

/* Name of an allocation function tag ("malloc", ...), "?" when unknown. */
const char *mt_func_name(unsigned tag);

#endif
