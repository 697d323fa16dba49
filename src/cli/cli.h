/*
 * The memtriage command: one file per subcommand, dispatched from the
 * table in main.c.  Each subcommand is `int mt_cmd_NAME(int argc, char
 * **argv)` with argv[0] the subcommand's name; it parses its own options
 * (getopt_long, options after the command), accepts --help, and returns
 * the process exit status.
 *
 * Exit statuses: 0 success; 1 a failure while working (I/O, out of
 * memory); 2 a usage error or an unreadable trace; `run` returns its
 * command's status instead (127 when it cannot be started).
 *
 * Messages go to stderr as "memtriage: <lower-case message>", naming the
 * subject in single quotes.
 */
#ifndef MT_CLI_CLI_H
#define MT_CLI_CLI_H

#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include "report/report.h"

#define MT_EXIT_OK      0
#define MT_EXIT_FAIL    1
#define MT_EXIT_USAGE   2
#define MT_EXIT_NOEXEC  127   /* like the shell: the command was not found */
#define MT_EXIT_NOPERM  126   /* like the shell: found but could not be executed */

/*
 * Starting a command (run, watch): the child writes its exec errno into a
 * close-on-exec pipe.  mt_exec_error() reads it from the parent's end and
 * closes it: the errno, or 0 when exec succeeded (EOF).  mt_exec_status()
 * maps that errno to the shell's exit status: 127 not found, 126 otherwise.
 */
int mt_exec_error(int fd);
int mt_exec_status(int err);

/* CLOCK_MONOTONIC in ns. */
uint64_t mt_mono_ns(void);

/*
 * Waits for a signal of `sigs` (blocked by the caller) until `deadline`
 * (mt_mono_ns() time; 0: forever); returns the signal, or 0 at the deadline.
 */
int mt_wait_signal(const sigset_t *sigs, uint64_t deadline);

/*
 * Parses a duration: "50ms", "1.5s", "10m", "2h", "3" (seconds), into ns
 * within [lo, hi].  Returns 0, or -1 after a one-line usage error naming
 * the command `cmd` and option `opt`.
 */
int mt_parse_duration(const char *cmd, const char *opt, const char *s, uint64_t lo, uint64_t hi,
                      uint64_t *out);

/* File names of memtriage's preload libraries. */
#define MT_RECORDER_LIB "libmemtriage.so"
#define MT_TRIM_LIB     "libmemtriage_trim.so"
#define MT_MARKS_LIB    "libmemtriage_marks.so"

/*
 * Absolute path of one of memtriage's libraries (`name`, MT_*_LIB):
 * $MEMTRIAGE_LIB (the recorder's file, whose folder then holds the
 * others, or a folder), else next to this executable, else in
 * <exe dir>/../lib/memtriage/.  The path has no space or colon, so it can
 * go into LD_PRELOAD.  Prints why and returns NULL when none is usable;
 * the caller frees the result.
 */
char *mt_find_lib(const char *name);

struct mt_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;      /* one line for `memtriage --help` */
};

int mt_cmd_run(int argc, char **argv);
int mt_cmd_report(int argc, char **argv);
int mt_cmd_watch(int argc, char **argv);
int mt_cmd_guard(int argc, char **argv);
int mt_cmd_compare(int argc, char **argv);

/* "memtriage: " + message + newline on stderr. */
void mt_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Reports a usage error of subcommand `cmd` (NULL for the top level) on
 * one line with a hint to its --help, and returns MT_EXIT_USAGE.
 */
int mt_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * The usage error for getopt's last '?' or ':' result (getopt_long run
 * with opterr = 0 and a leading ':' in the option string).  Returns
 * MT_EXIT_USAGE.
 */
int mt_bad_option(const char *cmd, int c, char **argv);

/* Parses a decimal in [lo, hi] for option `opt`; on error reports it and returns -1. */
int mt_parse_uint(const char *cmd, const char *opt, const char *s, unsigned lo, unsigned hi,
                  unsigned *out);

/*
 * Reads the trace at `path`, analyzes it and writes a `rep` report with
 * top_n stacks per list into `out` (named `out_name` in messages).  Shows
 * progress on stderr when stderr is a terminal.  Returns an exit status,
 * having printed the reason when it is not 0: 2 for a trace the reader
 * rejects, 1 for other failures.
 */
int mt_write_report(const char *path, const struct mt_reporter *rep, unsigned top_n,
                    FILE *out, const char *out_name);
/*
 * mt_write_report() with every report option in `ro` (its trace_path is
 * replaced by path) and, when diff is not NULL, `report --diff` between
 * the marks diff[0] and diff[1] (mt_marks_find() specs; an unknown mark
 * gives its message and 2).
 */
int mt_write_report_opts(const char *path, const struct mt_reporter *rep,
                         const struct mt_report_opts *ro, const char *const *diff,
                         FILE *out, const char *out_name);

/* When set, mt_write_report() prints the time of each phase on stderr (--timing). */
extern int mt_report_timing;

#endif
