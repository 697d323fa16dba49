/*
 * memtriage compare: the same workload under several allocator
 * configurations, one run after the other, RSS sampled from /proc.
 *
 *   config.c  the configurations (built-in and --config) and what each
 *             sets in the environment of the run
 *   group.c   RSS and VmPeak of a process group from /proc
 *   runner.c  one run: a command whose stdout marks cycles, or a server
 *             with a load command run N times against it
 *   table.c   a table of text cells, printed to fit a terminal or as JSON
 *   results.c the tables of a comparison, its sweeps and recommendation,
 *             and the JSON results file (schema "memtriage-compare")
 *
 * Sizes are bytes, times nanoseconds (CLOCK_MONOTONIC).  Nothing here is
 * thread-safe; the command is single-threaded.
 */
#ifndef MT_COMPARE_COMPARE_H
#define MT_COMPARE_COMPARE_H

#include <regex.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define CMP_CONFIGS_MAX  16     /* configurations in one comparison */
#define CMP_VARS_MAX     8      /* variables of one user configuration */
#define CMP_NAME_MAX     12     /* characters of a configuration's name */
#define CMP_SWEEPS_MAX   2      /* --sweep options: rows, then column groups */
#define CMP_VALUES_MAX   16     /* values of one sweep */
#define CMP_CYCLES_MAX   1000   /* RSS kept per run, one per cycle */

struct cmp_env {
	const char *name, *value;
};

/* Where a configuration's LD_PRELOAD library comes from. */
enum cmp_preload { CMP_PRELOAD_NONE, CMP_PRELOAD_SYSTEM, CMP_PRELOAD_OWN };

struct cmp_config {
	char name[CMP_NAME_MAX + 1];
	struct cmp_env vars[CMP_VARS_MAX];
	size_t n_vars;
	enum cmp_preload kind;
	const char *preload;       /* file name: in the system's library folders, or memtriage's */
	const char *package;       /* the Debian package of a system library */
	const char *summary;       /* one line for --help and the JSON */
};

/* A --sweep NAME=V1,V2,...: {NAME} in the commands takes each value. */
struct cmp_sweep {
	const char *name;          /* borrowed from argv (cut in place) */
	const char *value[CMP_VALUES_MAX];
	size_t n;
};

struct cmp_opts {
	const struct cmp_config *run[CMP_CONFIGS_MAX];
	size_t n_run;
	struct cmp_config user[CMP_CONFIGS_MAX];
	size_t n_user;
	struct cmp_sweep sweep[CMP_SWEEPS_MAX];
	size_t n_sweeps;
	char **cmd;                /* CMD [ARGS...], NULL in server mode */
	const char *server, *load; /* shell command lines (sh -c), server mode */
	unsigned cycles;           /* server mode: load runs; else stop after N cycles (0: never) */
	uint64_t interval_ns, ready_ns, grace_ns, trim_interval_ns;
	regex_t cycle_re, tput_re, mark_re;  /* --cycle-pattern, --throughput-pattern, --cycle-mark */
	const char *cycle_pat, *tput_pat, *mark_pat;
	const char *record_dir;    /* --record: write a trace per run there; NULL: no recording */
	const char *output;        /* --output: JSON results file; NULL: none */
	FILE *output_file;         /* opened before the runs, so a bad path fails first */
	int verbose, progress;
	char *recorder, *trim_lib; /* absolute paths, found when a run needs them (owned) */
	char *relay;               /* libmemtriage_marks.so, preloaded first; NULL: marks unseen */
};

/* What one run measured. */
enum cmp_status {
	CMP_NOT_RUN,               /* stopped before its turn */
	CMP_MISSING,               /* its library is not installed */
	CMP_RAN,                   /* it ran; exit status in wstatus */
	CMP_NOEXEC,                /* the command could not be started (exec_errno) */
	CMP_SERVER_DIED,           /* server mode: the server ended before the last load */
	CMP_LOAD_FAILED,           /* server mode: a load run did not exit 0 */
	CMP_STOPPED,               /* --cycles reached: the run was stopped, as asked */
};

struct cmp_result {
	const struct cmp_config *cfg;
	size_t point;              /* sweep point: index of the value of each sweep, mixed radix */
	enum cmp_status status;
	int exec_errno, wstatus, load_wstatus;
	char preload_path[256];
	int have_sample;
	uint64_t initial, last_rss, vm_peak;      /* bytes */
	uint64_t *cycle_rss; size_t n_cycles;     /* RSS after the first CMP_CYCLES_MAX cycles (owned) */
	size_t cycles_seen;                       /* every cycle, kept or not */
	uint64_t last_cycle_rss;                  /* RSS after the last cycle */
	double throughput_sum; size_t n_throughput;
	uint64_t wall_ns;
	char trace[512];           /* --record: the trace's path; "" when none */
	char verdict[96];          /* --record: "ALLOCATOR RETENTION (high)"; "" when none */
};

/* ---- config.c ---- */
extern const struct cmp_config cmp_builtins[];
extern const size_t cmp_n_builtins;
#define CMP_DEFAULT_CONFIGS "glibc,arena2,jemalloc,mimalloc"

/* The configuration called name[0..len) among built-ins and o->user; NULL if none. */
const struct cmp_config *cmp_config_find(const struct cmp_opts *o, const char *name, size_t len);
/*
 * Parses "NAME:VAR=VALUE,VAR=VALUE" (argv's, cut in place) into a new user
 * configuration and adds it to the runs.  0, or MT_EXIT_USAGE after a
 * one-line message.
 */
int cmp_config_parse_user(struct cmp_opts *o, char *spec);
/* Puts the --configs list (then the --config ones) into o->run.  0 or MT_EXIT_USAGE. */
int cmp_config_parse_list(struct cmp_opts *o, const char *list);
/*
 * Finds r->cfg's library into r->preload_path (system folders, or memtriage's
 * own via o).  Returns 0, or -1 with r->status = CMP_MISSING.
 */
int cmp_config_locate(struct cmp_opts *o, struct cmp_result *r);
/*
 * In a child about to exec: sets the configuration's variables and
 * LD_PRELOAD: the marks relay when mark_fd >= 0 (MEMTRIAGE_MARK_FD), the
 * recorder when `trace` is not NULL, the configuration's library, then
 * what was preloaded already.
 */
void cmp_config_apply(const struct cmp_opts *o, const struct cmp_result *r, const char *trace,
                      int mark_fd);

/* ---- group.c ---- */
struct cmp_mem {
	uint64_t rss;              /* sum of VmRSS over the group's processes */
	uint64_t vm_peak;          /* largest VmPeak among them */
	unsigned procs;            /* processes found (zombies excluded) */
	unsigned with_mm;          /* those with memory: not exiting */
};
/* Reads every process of group pgid from /proc.  0, or -ESRCH when none has memory left. */
int cmp_group_mem(pid_t pgid, struct cmp_mem *m);
/* Processes of group pgid still alive or zombie (for the no-orphans check); 0 when none. */
unsigned cmp_group_count(pid_t pgid);
/* SIGKILLs every living child of process `parent`; returns how many there were. */
unsigned cmp_children_kill(pid_t parent);

/* ---- runner.c ---- */
/*
 * Runs r (cfg and point set) with the commands of sweep point r->point,
 * signals blocked by the caller and read from sfd; `old` is the mask to
 * restore in children.  Returns 0, or 128 + a signal that stopped the
 * comparison (the run's processes are gone by then).
 */
int cmp_run(struct cmp_opts *o, struct cmp_result *r, int sfd, const sigset_t *old,
            size_t index, size_t total, volatile int *stop_sig);
/*
 * `s` with every {NAME} of the sweeps replaced by point's values (malloc'd;
 * NULL when out of memory).
 */
char *cmp_substitute(const struct cmp_opts *o, size_t point, const char *s);
/* Number of sweep points (1 without --sweep). */
size_t cmp_points(const struct cmp_opts *o);
/* Index of sweep k's value at `point`. */
size_t cmp_point_value(const struct cmp_opts *o, size_t point, size_t k);

/* ---- table.c ---- */
struct cmp_table {
	char title[128];
	char note[512];            /* printed under the table; "" for none */
	size_t n_cols, n_rows;
	const char **col;          /* column names (owned copies) */
	char **cell;               /* n_rows x n_cols, row-major (owned); NULL cell = "-" */
	unsigned char *span;       /* per row: cell 1 is a sentence over the columns after the first */
	unsigned char *numeric;    /* per column: right-aligned */
};
struct cmp_table *cmp_table_new(const char *title, size_t n_cols);
void cmp_table_col(struct cmp_table *t, size_t c, const char *name, int numeric);
/* Appends a row; its cells are NULL until set.  Returns the row index, or (size_t)-1 on no memory. */
size_t cmp_table_row(struct cmp_table *t);
void cmp_table_set(struct cmp_table *t, size_t row, size_t col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void cmp_table_free(struct cmp_table *t);
/* Aligned columns, two spaces apart; the note wrapped at 100 columns. */
void cmp_table_print(const struct cmp_table *t, FILE *f);
/* {"title":..,"note":..,"columns":[..],"rows":[[..],..]} */
void cmp_table_json(const struct cmp_table *t, FILE *f);
/* s's words on lines of at most 100 columns (a longer word alone on its line). */
void cmp_print_wrapped(FILE *f, const char *s);
/* A JSON string literal of s: quotes around mt_jw_escape(), HTML-safe. */
void cmp_json_str(FILE *f, const char *s);

/* ---- results.c ---- */
/*
 * Prints the comparison's tables and recommendation on `out` and, with
 * o->output, writes the JSON results file.  Returns 0, or MT_EXIT_FAIL
 * after a message when the file cannot be written.
 */
int cmp_results_write(const struct cmp_opts *o, struct cmp_result *res, size_t n, FILE *out);

#endif
