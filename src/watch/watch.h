/*
 * memtriage watch: a process's memory sampled from outside, with no
 * injection (any language, any allocator), and the plateau analysis of
 * those samples.
 *
 *   sample.c   one sample: /proc/PID/status, /proc/PID/smaps_rollup,
 *              /proc/PID/task, /proc/PID/cmdline and the cgroup's memory
 *              files.  The parsers are pure functions on strings.
 *   series.c   the growing array of samples and its limit.
 *   analyze.c  statistics on RSS over time (src/stats/stats.h) and the
 *              verdict, with every figure it rests on.
 *   text.c     the text report (one writer; the analysis is computed once).
 *
 * Units: memory in bytes, threads and tasks as counts, times in ns since
 * the first sample (CLOCK_MONOTONIC).  Errors are negative errno values.
 * Nothing here is thread-safe or signal-safe; the command uses it from one
 * thread.
 */
#ifndef MT_WATCH_WATCH_H
#define MT_WATCH_WATCH_H

#include <dirent.h>
#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "stats/stats.h"

/* ---- limits: every growable thing of watch, in one place ---------------- */

/*
 * Samples kept.  At the default 1 s interval that is 18 hours; past it the
 * series is thinned (every second sample dropped, and from then on one
 * sample in two kept), so a watch of any length keeps its whole history at
 * a coarser step.  65536 samples of ~160 bytes: 10 MiB at most.
 */
#define MT_WATCH_SAMPLES_MAX    65536
/*
 * Points the statistics run on.  Mann-Kendall and Theil-Sen are O(n^2), and
 * phase detection repeats them; above this many samples the series is
 * reduced to this many consecutive bucket means first (this also tames the
 * autocorrelation of samples taken close together).
 */
#define MT_WATCH_POINTS_MAX     600
#define MT_WATCH_BLOCKS         10       /* rows of the block-average table */
#define MT_WATCH_CMDLINE_MAX    256      /* bytes of the command line kept for the header */
#define MT_WATCH_PROC_READ_MAX  16384    /* bytes read of one /proc file (status is ~1.5 KiB) */

/* ---- one sample ----------------------------------------------------------- */

/* The values a sample may hold; a sample says which it has in `have`. */
enum mt_watch_field {
	MT_WF_RSS,            /* status VmRSS: resident set, bytes */
	MT_WF_RSS_ANON,       /* status RssAnon: anonymous resident (heap, stacks, mmaps) */
	MT_WF_RSS_FILE,       /* status RssFile: file-backed resident (code, mapped files) */
	MT_WF_RSS_SHMEM,      /* status RssShmem: shared memory, tmpfs, shared anonymous */
	MT_WF_HWM,            /* status VmHWM: peak RSS so far */
	MT_WF_VM_PEAK,        /* status VmPeak: peak virtual size */
	MT_WF_VM_SIZE,        /* status VmSize: virtual size */
	MT_WF_SWAP,           /* status VmSwap: anonymous memory swapped out */
	MT_WF_THREADS,        /* status Threads: count */
	MT_WF_SM_RSS,         /* smaps_rollup Rss */
	MT_WF_SM_PSS,         /* smaps_rollup Pss: RSS with shared pages divided among sharers */
	MT_WF_SM_ANON,        /* smaps_rollup Anonymous */
	MT_WF_SM_PRIV_DIRTY,  /* smaps_rollup Private_Dirty */
	MT_WF_SM_SWAP,        /* smaps_rollup Swap */
	MT_WF_TASKS,          /* entries of /proc/PID/task: count */
	MT_WF_CG_CURRENT,     /* cgroup memory.current (v2) or memory.usage_in_bytes (v1) */
	MT_WF_CG_MAX,         /* cgroup memory.max or memory.limit_in_bytes; absent = no limit */
	MT_WF_COUNT
};

struct mt_watch_field_info {
	const char *name;     /* as the report shows it */
	int is_count;         /* 1: a count (threads, tasks); 0: bytes */
};
/* Indexed by enum mt_watch_field. */
extern const struct mt_watch_field_info mt_watch_fields[MT_WF_COUNT];

struct mt_watch_sample {
	uint64_t t_ns;              /* since the first sample */
	uint64_t v[MT_WF_COUNT];    /* meaningful where `have` has the bit */
	uint32_t have;              /* bit (1u << field) for each value present */
	char state;                 /* status State: 'R', 'S', 'Z', ...; 0 when unknown */
};

static inline int mt_watch_has(const struct mt_watch_sample *s, enum mt_watch_field f)
{
	return (s->have >> f) & 1;
}

/*
 * Pure parsers.  `text` is NUL-terminated; lines that are not "Key: value"
 * or whose key is unknown are skipped, so any kernel's files parse.  Values
 * in kB become bytes.  Each returns the number of fields it set in `s`
 * (0 when none: an empty file, a zombie's status).
 */
int mt_watch_parse_status(const char *text, struct mt_watch_sample *s);
int mt_watch_parse_smaps_rollup(const char *text, struct mt_watch_sample *s);

/*
 * Finds the memory cgroup of /proc/PID/cgroup text.  want_version 2: the
 * line "0::PATH"; 1: a line whose controller list holds "memory".  Writes
 * PATH to `path` (cap bytes).  Returns 0, -ENOENT when there is no such
 * line, -ENAMETOOLONG when PATH does not fit.  On a hybrid system both
 * exist and only one has the memory files; mt_watch_proc_open tries v2,
 * then v1.
 */
int mt_watch_parse_cgroup(const char *text, int want_version, char *path, size_t cap);

/*
 * A cgroup memory file's value: a decimal, or "max" (v2's no limit).
 * Returns 1 with *out set, 0 for no limit ("max", or v1's page-counter
 * maximum, any value >= 2^62), -EINVAL for anything else.
 */
int mt_watch_parse_cg_value(const char *text, uint64_t *out);

/*
 * The command line as one string: the NUL-separated arguments of
 * /proc/PID/cmdline (len bytes, not NUL-terminated) joined by spaces,
 * control characters shown as '?', cut with "..." to fit `cap` (>= 4).
 * Returns the length written (0 for an empty command line: a zombie, a
 * kernel thread).
 */
size_t mt_watch_format_cmdline(const char *raw, size_t len, char *out, size_t cap);

/* ---- reading a process ---------------------------------------------------- */

/*
 * An open process.  status and cmdline stay open, so a pid reused by
 * another process after ours died reads as gone (ESRCH), never as the
 * newcomer; smaps_rollup is reopened for every sample because its file
 * holds the address space seen at open (an exec would leave it stale).
 */
struct mt_watch_proc {
	pid_t pid;
	int status_fd, cmdline_fd;      /* -1 when closed */
	DIR *task_dir;                   /* NULL when /proc/PID/task could not be opened */
	int smaps_errno;                 /* 0 while smaps_rollup reads; else why not */
	int cg_version;                  /* 0: no cgroup memory files found; 1 or 2 */
	char cg_current[320], cg_max[320];
	char cmdline[MT_WATCH_CMDLINE_MAX];  /* the latest non-empty one */
	uint64_t t0_ns;                  /* CLOCK_MONOTONIC of the first sample; 0 before */
};

/*
 * Opens process `pid`.  Returns 0; -ESRCH when there is no such process
 * (or only its zombie), -EACCES when its /proc/PID/status cannot be read,
 * -EINVAL when it has no memory of its own (a kernel thread).  On failure
 * nothing needs closing.
 */
int mt_watch_proc_open(struct mt_watch_proc *p, pid_t pid);

/*
 * Takes one sample into *s (t_ns relative to the first sample).  Returns 0;
 * -ESRCH when the process has exited (gone, or a zombie not yet reaped);
 * another negative errno when /proc/PID/status could not be read.  Values a
 * kernel or a permission does not give are left out of s->have.
 */
int mt_watch_proc_sample(struct mt_watch_proc *p, struct mt_watch_sample *s);

/* Closes what open took; safe to call twice, and after a failed open. */
void mt_watch_proc_close(struct mt_watch_proc *p);

/* ---- the series ----------------------------------------------------------- */

/*
 * Samples in time order, growing up to MT_WATCH_SAMPLES_MAX, then thinned
 * (see the limit).  Owns `s`.
 */
struct mt_watch_series {
	struct mt_watch_sample *s;
	size_t n, cap;
	unsigned stride;      /* one offered sample kept in `stride`: 1, 2, 4 ... */
	unsigned skip;        /* offered samples to drop before the next kept one */
	unsigned thinned;     /* times the series was halved */
	uint64_t offered;     /* samples taken in all */
};

#define MT_WATCH_SERIES_INIT { NULL, 0, 0, 1, 0, 0, 0 }

void mt_watch_series_init(struct mt_watch_series *sr);
/*
 * Offers a sample.  Returns 0 (kept or skipped by the stride), 1 when the
 * series was thinned to make room (tell the user), -ENOMEM with the series
 * unchanged.
 */
int mt_watch_series_push(struct mt_watch_series *sr, const struct mt_watch_sample *s);
/* Frees the samples; the series is empty and usable again. */
void mt_watch_series_release(struct mt_watch_series *sr);
/*
 * Copies field f of every sample into v[] and its time into t[] (either may
 * be NULL); samples lacking f are skipped.  Returns how many were copied.
 */
size_t mt_watch_series_field(const struct mt_watch_series *sr, enum mt_watch_field f,
                             uint64_t *t, double *v);

/* ---- the analysis ----------------------------------------------------------- */

enum mt_watch_verdict {
	MT_WATCH_TOO_FEW,      /* fewer than MT_WATCH_MIN_POINTS samples */
	MT_WATCH_NO_GROWTH,    /* no significant growth (and no warm-up worth naming) */
	MT_WATCH_PLATEAU,      /* rose during warm-up, then level */
	MT_WATCH_GROWING,      /* significant growth in the later window, above both floors */
};

/* A range of samples [first, first + n) of the series, and RSS over it. */
struct mt_watch_span {
	size_t first, n;            /* n == 0: absent */
	uint64_t t0_ns, t1_ns;
	struct mt_summary rss;
};

/* One part of RSS over the later window. */
struct mt_watch_part {
	enum mt_watch_field field;
	int have;                   /* the kernel gave it in every sample of the window */
	double first, last;         /* bytes (or count) at the window's ends */
	double slope_per_s;         /* Theil-Sen over the window */
	double rise;                /* slope times the window's duration */
};

enum mt_watch_part_id { MT_WP_ANON, MT_WP_FILE, MT_WP_SHMEM, MT_WP_SWAP, MT_WP_COUNT };

/* Bits of mt_watch_analysis.growth_checks: each condition "growing" needs. */
#define MT_WATCH_CHECK_TREND   0x1   /* Mann-Kendall: increasing at MT_WATCH_ALPHA */
#define MT_WATCH_CHECK_RATIO   0x2   /* rise >= MT_WATCH_GROWTH_RATIO of the window's mean */
#define MT_WATCH_CHECK_SLOPE   0x4   /* slope >= MT_WATCH_FLOOR_BYTES_PER_H */
#define MT_WATCH_CHECK_RISE    0x8   /* rise >= MT_WATCH_FLOOR_BYTES */
#define MT_WATCH_CHECK_ALL     0xf

struct mt_watch_analysis {
	enum mt_watch_verdict verdict;
	size_t n_samples;           /* in the series */
	size_t n_points;            /* analyzed: n_samples, or MT_WATCH_POINTS_MAX bucket means */
	uint64_t duration_ns;       /* first to last sample */
	struct mt_summary rss;      /* over all samples */
	double rss_first, rss_last;

	/* phases; spans are in sample indices of the series */
	int have_plateau;
	struct mt_watch_span warmup, settling, plateau;
	double start_level;         /* RSS of the first analyzed point */
	double warmup_rise;         /* plateau mean - start_level */

	/* the later window: the plateau when there is one, else the last half */
	struct mt_watch_span later;
	struct mt_watch_span early;  /* without a plateau: the samples before the later half */
	int later_is_plateau;
	struct mt_fit later_ls, later_ts;
	struct mt_trend later_mk;
	double later_rise;          /* Theil-Sen slope times the window's duration, bytes */
	double later_ratio;         /* later_rise / the window's mean RSS */
	unsigned growth_checks;     /* MT_WATCH_CHECK_* that held */

	struct mt_watch_part parts[MT_WP_COUNT];
	int have_threads;
	uint64_t threads_first, threads_last, threads_max;

	struct mt_block blocks[MT_WATCH_BLOCKS];
	size_t n_blocks, block_size;
};

/*
 * Analyzes the RSS of the series.  Returns 0 (a verdict, MT_WATCH_TOO_FEW
 * included), or -ENOMEM; the stats functions' errors on well-formed input
 * are not expected and come back as they are.
 */
int mt_watch_analyze(const struct mt_watch_series *sr, struct mt_watch_analysis *a);

/* The verdict as the report prints it: "growing", "plateau after warm-up", ... */
const char *mt_watch_verdict_name(enum mt_watch_verdict v);

/* ---- thresholds (analyze.c explains each) -------------------------------- */
#define MT_WATCH_MIN_POINTS          10        /* samples for any verdict */
#define MT_WATCH_ALPHA               0.01      /* Mann-Kendall significance level */
#define MT_WATCH_PHASE_ALPHA         DBL_MIN   /* phases by magnitude alone (analyze.c) */
#define MT_WATCH_GROWTH_RATIO        0.05      /* rise over the window / its mean RSS */
#define MT_WATCH_FLOOR_BYTES_PER_H   (1024.0 * 1024)   /* 1 MiB per hour */
#define MT_WATCH_FLOOR_BYTES         (1024.0 * 1024)   /* 1 MiB over the window */
#define MT_WATCH_PLATEAU_MIN_FRACTION 0.2      /* of the analyzed points */

/* ---- the report ------------------------------------------------------------ */

/* What the report says about how the watch went. */
struct mt_watch_run_info {
	pid_t pid;
	const char *cmdline;        /* "" when unknown */
	uint64_t interval_ns;
	const char *ended;          /* "the process exited (status 0)", "--duration passed", ... */
	int smaps_errno;            /* 0: smaps_rollup was read */
	int cg_version;             /* 0: no cgroup figures */
	unsigned thinned;           /* times the series was halved */
};

/* Writes the text report (at most 100 columns).  Returns 0 or -errno of the stream. */
int mt_watch_write_text(FILE *out, const struct mt_watch_run_info *ri,
                        const struct mt_watch_series *sr, const struct mt_watch_analysis *a);


/* ---- metrics (metrics.c): the watch as OpenMetrics text ---------------------- */

/* The two exposition formats /metrics speaks (chosen from the Accept header). */
enum mt_metrics_format {
	MT_METRICS_OPENMETRICS,   /* application/openmetrics-text 1.0.0: UNIT lines, "# EOF" */
	MT_METRICS_PROM_TEXT,     /* text/plain 0.0.4: counters named with _total, no UNIT, no EOF */
};

/* Content-Type of each format. */
const char *mt_metrics_content_type(enum mt_metrics_format fmt);

/*
 * What the exposition shows.  Every metric carries the labels pid and
 * command.  Values that are not known are left out, never shown as 0:
 * `last` NULL (no sample yet) leaves out the memory gauges, a verdict of
 * MT_WATCH_TOO_FEW (or `a` NULL) the slopes.  The live heap and the free
 * memory the allocator holds are never known to watch (it injects
 * nothing); have_heap_live and have_alloc_free are for a source that
 * records them, and leave those metrics out when 0.
 */
struct mt_watch_metrics {
	pid_t pid;
	const char *cmdline;                   /* any bytes; NULL or "" when unknown */
	const struct mt_watch_sample *last;    /* the latest sample, or NULL */
	uint64_t samples_total;                /* samples taken since the start */
	const struct mt_watch_analysis *a;     /* NULL: not analyzed (verdict "too few samples") */
	int have_heap_live, have_alloc_free;
	uint64_t heap_live_bytes;              /* live heap: allocated and not freed */
	uint64_t alloc_free_bytes;             /* held by the allocator, free for reuse */
};

/* The verdict as a label value: "growing", "plateau_after_warmup", ... */
const char *mt_watch_verdict_label(enum mt_watch_verdict v);

/*
 * Writes the exposition of `m` in format `fmt` to `out`.  Label values are
 * escaped, and bytes that are not valid UTF-8 are shown as '?'.  Returns 0
 * or -errno of the stream (-EIO when it sets no errno).
 */
int mt_watch_write_metrics(FILE *out, const struct mt_watch_metrics *m, enum mt_metrics_format fmt);

/* ---- the metrics server (listen.c) ------------------------------------------- */

/*
 * A tiny HTTP/1.1 server for /metrics, run from the sampling loop: it
 * never blocks it.  Sockets are non-blocking; each connection serves one
 * request (Connection: close) and is closed when its request exceeds
 * MT_WATCH_HTTP_REQUEST_MAX bytes or when it is not done within
 * MT_WATCH_HTTP_TIMEOUT_NS.  At MT_WATCH_HTTP_CLIENTS_MAX open
 * connections, a new one takes the slot of the oldest that is still
 * sending its request (idle clients cannot keep a scrape out); when all
 * are being answered, it waits in the kernel's backlog.
 *   GET /metrics  200, the exposition (OpenMetrics unless the Accept header
 *                 asks for text/plain and not application/openmetrics-text)
 *   GET other     404;  other methods: 405;  a malformed request: 400
 */
#define MT_WATCH_HTTP_CLIENTS_MAX   8
#define MT_WATCH_HTTP_REQUEST_MAX   8192                 /* bytes of request line and headers */
#define MT_WATCH_HTTP_TIMEOUT_NS    (5 * 1000000000ull)  /* per connection, read and write */

/*
 * Renders the exposition into `out` for a GET /metrics.  Returns 0, or a
 * negative errno: the client gets 500.
 */
typedef int (*mt_watch_render_fn)(void *arg, FILE *out, enum mt_metrics_format fmt);

struct mt_watch_server;

/*
 * Splits a --listen value: "HOST:PORT", "[IPV6]:PORT", or ":PORT" (all
 * interfaces: host ""); PORT a decimal from 0 (any free port) to 65535.
 * Writes the host, brackets removed, into `host` (cap bytes).  Returns 0,
 * or -EINVAL (with nothing promised in host) when the value is malformed.
 */
int mt_watch_listen_split(const char *spec, char *host, size_t cap, unsigned *port);

/*
 * Opens a server listening on `spec` (see mt_watch_listen_split; a host
 * may be a name, resolved once).  `render` is called for each GET
 * /metrics.  On success returns 0 and *out; on failure returns -EINVAL (a
 * malformed value), -EADDRNOTAVAIL (a host that does not resolve to a
 * local address), or the errno of socket, bind or listen (-EADDRINUSE,
 * -EACCES), with a reason in `err` (errcap bytes).
 * The sockets are close-on-exec: a command started later does not get them.
 */
int mt_watch_server_open(struct mt_watch_server **out, const char *spec, mt_watch_render_fn render,
                         void *arg, char *err, size_t errcap);

/* "http://127.0.0.1:9100/metrics", "http://[::1]:9100/metrics": where it listens. */
const char *mt_watch_server_url(const struct mt_watch_server *sv);

/*
 * Serves until `deadline_ns` (CLOCK_MONOTONIC) or until `wake_fd` (>= 0;
 * -1: none) is readable.  Returns 1 when wake_fd is readable, 0 at the
 * deadline, or -errno when poll fails for another reason than EINTR.
 */
int mt_watch_server_run(struct mt_watch_server *sv, int wake_fd, uint64_t deadline_ns);

/* Closes the server and its connections; NULL is a no-op. */
void mt_watch_server_close(struct mt_watch_server *sv);

#endif
