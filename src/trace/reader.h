/*
 * Trace reader: validates a trace file and hands its contents to the
 * analyzer.
 *
 * Reading is two passes.  mt_trace_open() reads the whole file once:
 * it validates every block, keeps the small records (process, clock,
 * modules, threads, samples, markers, stats, end) in struct mt_trace, and
 * indexes each thread's event chunks, keeping decompressed event blocks
 * up to MT_TRACE_KEEP_MAX for replay.  mt_trace_replay() then decodes the
 * chunks and delivers every event in one global order: per thread in
 * program order, across threads by timestamp (ties: frees before
 * allocations), so a block freed on thread B and handed out again on
 * thread A arrives as free-then-alloc.  Call-stack trie nodes (MT_EV_NODE)
 * are collected during replay into trace->nodes; they are complete when
 * replay returns.
 *
 * Errors: functions return 0 or a negative errno-style code and fill
 * `err` (a caller buffer of MT_ERR_LEN bytes) with a one-line message
 * without the "memtriage: " prefix, such as
 *   "'x.trace' is not a memtriage trace (bad magic)".
 * -EINVAL means corrupt or foreign input; -E2BIG a trace beyond one of
 * the MT_TRACE_*_MAX limits; other codes come from the system.
 * A trace whose final block is incomplete is not an error: trace->cut is
 * set and everything before it is read.
 *
 * Not thread-safe: one struct mt_trace per thread.
 */
#ifndef MT_TRACE_READER_H
#define MT_TRACE_READER_H

#include <stddef.h>
#include <stdint.h>
#include "format.h"

#define MT_ERR_LEN 256

/*
 * Limits.  A trace beyond one is refused with -E2BIG and a message naming
 * the limit, never a crash; each bounds memory a corrupt or hostile file
 * could make the reader allocate.
 */
#define MT_TRACE_CHUNKS_MAX   (1u << 22)  /* event chunks indexed (48 B each) */
#define MT_TRACE_NODES_MAX    (1u << 28)  /* call-stack trie node ids (16 B each): bigtree needs 20 M */
#define MT_TRACE_MODULES_MAX  65536u      /* module records */
#define MT_TRACE_THREADS_MAX  (1u << 20)  /* distinct thread indices */
#define MT_TRACE_SAMPLES_MAX  (1u << 22)  /* timeline samples */
#define MT_TRACE_MARKERS_MAX  (1u << 22)  /* markers */
#define MT_TRACE_MALLOC_INFOS_MAX (1u << 16) /* malloc_info(3) snapshots */
#define MT_TRACE_KEYS_MAX     1024u       /* keys in one sample; distinct stats keys */
#define MT_TRACE_ARGS_MAX     (1u << 20)  /* argv entries, and segments of one module */
#define MT_TRACE_CACHE_BLOCKS 4           /* decompressed blocks replay keeps (8 MiB max each) */
/*
 * Decompressed blocks that pass 1 keeps for pass 2, in bytes: a trace
 * whose event blocks fit is decompressed once instead of twice (zstd is
 * half the time of a report otherwise).  Blocks beyond it are read again
 * by replay.  Replay frees each kept block once its chunks are used up, so
 * the analyzer's structures grow into the memory the blocks give back.
 * The limit actually applied is the smaller of mt_trace_keep_max and a
 * quarter of physical memory.
 */
#define MT_TRACE_KEEP_MAX     (512ull << 20)
extern uint64_t mt_trace_keep_max;         /* MT_TRACE_KEEP_MAX; tests lower it */

/* One loaded module (executable or shared object) for symbolization. */
struct mt_module {
	uint32_t id;
	uint64_t t_ns;          /* load time, ns since trace start */
	uint64_t unload_t_ns;   /* 0 while loaded at the end */
	uint64_t load_bias;     /* l_addr: runtime address = bias + ELF vaddr */
	char *path;             /* owned */
	uint8_t *build_id;      /* owned, may be NULL */
	size_t build_id_len;
	size_t n_segs;
	struct mt_segment { uint64_t start, size; uint32_t flags; } *segs; /* owned */
};

struct mt_thread_info {
	uint32_t idx;           /* recorder's thread index */
	uint32_t os_tid;
	uint64_t start_ns, exit_ns;  /* exit_ns 0 if never seen exiting */
	char *name;             /* owned, may be "" */
};

/* One timeline sample: keys are enum mt_sample_key. */
struct mt_sample {
	uint64_t t_ns;
	uint32_t n;
	struct mt_kv { uint32_t key; uint64_t value; } *kv;  /* owned */
};

struct mt_marker {
	uint64_t t_ns;
	uint32_t thread_idx;
	uint32_t kind;          /* 0 = mark, 1 = request begin, 2 = request end */
	uint64_t arg;           /* request id (kinds 1 and 2) */
	char *label;            /* owned */
	uint64_t arg2;          /* request begin: payload bytes; 0 when the record has none
	                           (written after the label, a later minor-version field) */
};

/* A glibc malloc_info(3) snapshot: per-arena XML, as glibc wrote it. */
struct mt_malloc_info {
	uint64_t t_ns;
	char *xml;              /* owned, NUL-terminated */
};

/*
 * Call-stack trie node; nodes[id] for id < n_nodes, nodes[0] is the root.
 * A defined node has parent < id, so walking parents always ends at the
 * root.  In a cut trace an event's stack id may name an undefined node
 * (ip 0) or be >= n_nodes: callers treat both as an unknown frame.
 */
struct mt_node {
	uint64_t ip;            /* 0 = undefined (definition lost in a cut trace) */
	uint32_t parent;
};

/* Where an event chunk lies (internal to the reader, exposed for tests). */
struct mt_chunk_ref {
	uint64_t file_off;      /* offset of the block header */
	uint32_t rec_off;       /* offset of the record inside the raw block */
	uint32_t thread_idx;
	uint32_t len, n_events;
	uint64_t t_first, t_last, first_seq;
};

struct mt_trace {
	char *path;
	int fd;
	uint64_t file_size;
	uint32_t minor, flags;
	int cut;                /* final block incomplete: read up to the one before */
	int ended;              /* an MT_REC_END was seen */
	uint32_t end_reason;    /* enum mt_end_reason when ended */
	uint64_t end_ns;

	/* process */
	uint32_t pid, ppid;
	uint64_t start_realtime_ns;
	char *exe;
	int argc;
	char **argv;
	uint64_t page_size;

	/* time: ticks -> ns since the first clock record, by linear fit */
	uint64_t tick0;
	double ns_per_tick;

	struct mt_module *modules; size_t n_modules;      /* sorted by id, reloads after loads */
	struct mt_thread_info *threads; size_t n_threads; /* sorted by idx */
	struct mt_sample *samples; size_t n_samples;
	struct mt_marker *markers; size_t n_markers;
	struct mt_malloc_info *malloc_infos; size_t n_malloc_infos;  /* in time order */
	struct mt_kv *stats; size_t n_stats;

	struct mt_node *nodes; size_t n_nodes;   /* filled by replay */
	/* Alloc + free events in chunks.  After open it is the chunk headers'
	   sum, an upper bound that still counts MT_EV_NODE entries (good for
	   progress); a replay that runs to the end makes it exact: one per
	   recorded call, nodes excluded (a realloc counts once, though it may
	   be delivered as a free and an alloc). */
	uint64_t n_events;
	uint64_t raw_bytes;      /* decompressed bytes */
	uint64_t lost_events;    /* gaps in per-thread sequence numbers */

	struct mt_chunk_ref *chunks; size_t n_chunks;     /* file order */
	void *priv;              /* reader internals */
};

/* A decoded, globally ordered event. */
enum mt_event_type { MT_E_ALLOC = 1, MT_E_FREE = 2 };

struct mt_event {
	uint64_t t;             /* ticks (mt_trace_ns() converts) */
	uint64_t ptr;           /* 0 for a failed allocation */
	uint64_t size;          /* request in bytes; 0 for frees */
	uint32_t stack;         /* innermost trie node; 0 = none, and for frees */
	uint32_t thread_idx;
	uint8_t type;           /* enum mt_event_type */
	uint8_t func;           /* enum mt_ev_tag of the call: MT_EV_FREE, MT_EV_MALLOC, ...;
	                           a realloc yields MT_E_FREE (old block) with func
	                           MT_EV_REALLOC, then MT_E_ALLOC with func MT_EV_REALLOC */
	uint8_t realloc_failed; /* MT_E_ALLOC of a realloc that returned NULL with size > 0:
	                           the old block stays live, no free half is delivered */
};

/*
 * Opens and validates `path` (pass 1).  On success *out is a new trace the
 * caller releases with mt_trace_close().  `progress`, when non-NULL, is
 * called now and then with bytes read so far and the file size.
 */
int mt_trace_open(const char *path, struct mt_trace **out, char err[MT_ERR_LEN],
                  void (*progress)(uint64_t done, uint64_t total, void *arg), void *arg);

/* Receives each event in global order; a non-zero return stops replay and is returned. */
typedef int (*mt_event_fn)(const struct mt_event *ev, void *arg);
/* Receives ev[0..n), n >= 1, the next events in global order; the same contract per call. */
typedef int (*mt_events_fn)(const struct mt_event *ev, size_t n, void *arg);

/*
 * Pass 2: decodes every chunk and calls fn for each alloc/free event in
 * global order.  Returns 0, fn's non-zero value, or a negative code with
 * `err` filled (-EINVAL for malformed events, naming the thread).  `ev` is
 * valid only during the call.  Calling it again replays from the start and
 * rebuilds trace->nodes.  Memory: the blocks pass 1 kept (MT_TRACE_KEEP_MAX),
 * each freed once its chunks are replayed; for the others one chunk copy per
 * thread whose time range overlaps the merge position, plus
 * MT_TRACE_CACHE_BLOCKS blocks.
 */
int mt_trace_replay(struct mt_trace *tr, mt_event_fn fn, void *arg, char err[MT_ERR_LEN]);

/*
 * mt_trace_replay() delivering events in batches (up to MT_REPLAY_BATCH at
 * a time), which saves a call per event and lets the receiver look ahead
 * (prefetch).  When fn stops replay, the events after the stopping batch
 * are not delivered; on a decode error every event before the bad one is.
 */
#define MT_REPLAY_BATCH 256
int mt_trace_replay_batch(struct mt_trace *tr, mt_events_fn fn, void *arg, char err[MT_ERR_LEN]);

/* Ticks -> ns since trace start. */
uint64_t mt_trace_ns(const struct mt_trace *tr, uint64_t ticks);

/* Looks up a stats key (enum mt_stats_key); returns def when absent. */
uint64_t mt_trace_stat(const struct mt_trace *tr, uint32_t key, uint64_t def);

/* Releases everything; NULL is a no-op. */
void mt_trace_close(struct mt_trace *tr);

#endif
