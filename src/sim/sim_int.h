/*
 * Internals shared by the built-in workloads (src/sim/): the workload
 * table entry type and small helpers in common.c.  Not part of any public
 * API; src/sim/sim.h holds the one entry point the CLI calls.
 *
 * The helpers never allocate through malloc (output goes through a stack
 * buffer and write(2), /proc is read with open/read), so a workload's
 * allocation counts are exactly those of its model, and nothing the
 * helpers do shows up as a leak in a memtriage report.
 */
#ifndef MT_SIM_SIM_INT_H
#define MT_SIM_SIM_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * A workload: `run` gets argv[0] = the workload name and its own options,
 * and returns the process exit status (0 ok, 1 failure, 2 usage error).
 */
struct mt_sim_workload {
	const char *name;
	const char *summary;        /* one line for `memtriage sim --help` */
	int (*run)(int argc, char **argv);
};

int mt_sim_frontend(int argc, char **argv);
int mt_sim_load(int argc, char **argv);
int mt_sim_leak(int argc, char **argv);
int mt_sim_plateau(int argc, char **argv);
int mt_sim_nonheap(int argc, char **argv);

/*
 * Parses a byte count: decimal digits with an optional K, M or G suffix
 * (powers of 1024, either case, optional trailing "B" or "iB").  Stores it
 * in *out and returns 0; returns -1 on an empty, malformed or overflowing
 * string and leaves *out unchanged.
 */
int mt_sim_parse_bytes(const char *s, uint64_t *out);

/*
 * Parses a decimal integer in [min, max] into *out; returns 0, or -1 if s
 * is not entirely such a number (*out unchanged).
 */
int mt_sim_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Room for "[v6-address]:65535" and its NUL. */
#define MT_SIM_ADDR_MAX 56

/*
 * Parses "ADDR:PORT", ADDR an IPv4 literal (127.0.0.1) or an IPv6 literal
 * in brackets ([::1]), PORT 0-65535, into *sa and *len.  Returns 0, or -1
 * if s is anything else (nothing stored).  No name lookup.
 */
int mt_sim_parse_addr(const char *s, struct sockaddr_storage *sa, socklen_t *len);

/* Writes sa (AF_INET or AF_INET6) as ADDR:PORT into buf[MT_SIM_ADDR_MAX]. */
void mt_sim_format_addr(const struct sockaddr *sa, char *buf);

/* Resident set size from /proc/self/statm in bytes; 0 if unreadable. */
uint64_t mt_sim_rss_bytes(void);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t mt_sim_now_ns(void);

/* Sleeps ms milliseconds (restarting after signals); ms 0 returns at once. */
void mt_sim_sleep_ms(uint64_t ms);

/*
 * printf to a file descriptor through a 1 KiB stack buffer and write(2):
 * no stdio buffer is allocated.  Longer output is truncated.  Returns 0, or
 * -1 if the write failed.
 */
int mt_sim_printf(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- shared by the cycle workloads (leak.c, plateau.c, nonheap.c) ---- */

#define MT_SIM_MAX_WORKERS 1024

/*
 * One option of a workload: --NAME VALUE, a decimal count or (bytes set) a
 * byte count with K/M/G suffixes, in [min, max], stored in *val.  Several
 * names may share one val (--concurrency and --workers).
 */
struct mt_sim_opt {
	const char *name;
	int bytes;
	uint64_t min, max;
	uint64_t *val;
};

/*
 * Parses argv (argv[0] the workload's name) against opts[0..n), plus
 * -v/--verbose (sets *verbose) and -h/--help.  Returns 0 to run, 1 when
 * help was asked (the caller prints its usage and exits 0), or 2 after
 * printing a usage error on stderr, worded as frontend's.
 */
int mt_sim_getopt(int argc, char **argv, const struct mt_sim_opt *opts, size_t n, int *verbose);

/* The options every cycle workload takes (see MT_SIM_COMMON_OPTS). */
struct mt_sim_common {
	uint64_t cycles;
	uint64_t requests;          /* per cycle */
	uint64_t workers;           /* worker threads = requests in flight */
	uint64_t payload_bytes;     /* temporary request body */
	uint64_t hold_ms;           /* a request holds its temporaries this long */
	uint64_t seed;
	int verbose;
};

/* Table entries for the common options of struct mt_sim_common *o. */
#define MT_SIM_COMMON_OPTS(o) \
	{ "cycles",      0, 1, 1000000,          &(o)->cycles }, \
	{ "requests",    0, 1, UINT32_MAX,       &(o)->requests }, \
	{ "workers",     0, 1, MT_SIM_MAX_WORKERS, &(o)->workers }, \
	{ "concurrency", 0, 1, MT_SIM_MAX_WORKERS, &(o)->workers }, \
	{ "payload",     1, 1, 1ull << 30,       &(o)->payload_bytes }, \
	{ "hold-ms",     0, 0, 60000,            &(o)->hold_ms }, \
	{ "seed",        0, 0, UINT64_MAX,       &(o)->seed }

/*
 * A thread on a stack mapped by the workload (at least stack_bytes, at
 * least glibc's default size, with a guard page below).  glibc keeps the
 * stacks it maps in a cache after join, with their DTVs (calloc'd), which a
 * memtriage report would show as leaked; a thread on a user stack has its
 * DTV freed at join, so a workload's leaks are exactly its model's.
 */
struct mt_sim_thread {
	pthread_t tid;
	void *map;
	size_t map_bytes;
};

/* Starts fn(arg) on a new thread; returns 0, or -1 (nothing to join). */
int mt_sim_thread_start(struct mt_sim_thread *t, size_t stack_bytes, void *(*fn)(void *),
			void *arg);

/* Joins the thread and unmaps its stack. */
void mt_sim_thread_join(struct mt_sim_thread *t);

/*
 * What a cycle workload does.  serve handles request id (ids run on from
 * cycle to cycle: cycle c serves [(c-1) * requests, c * requests)) on
 * worker thread `worker` (0-based), hold included.  begin_cycle (optional)
 * runs on the main thread before cycle c's requests (c from 1) and returns
 * 0, or -1 to stop with status 1; end_cycle (optional) runs after the
 * cycle's line is printed (for -v figures).
 */
struct mt_sim_cycle_ops {
	void *ctx;
	void (*serve)(void *ctx, unsigned worker, uint64_t id);
	int (*begin_cycle)(void *ctx, uint64_t cycle);
	void (*end_cycle)(void *ctx, uint64_t cycle);
};

/*
 * Runs o->cycles cycles of o->requests requests on o->workers threads:
 * prints "initial: rss=N MB", then after each cycle
 * "cycle N: rss=N MB requests=N throughput=N req/s" (as frontend does),
 * and joins its workers before it returns 0 (or 1 on a failure, reported).
 */
int mt_sim_run_cycles(const char *workload, const struct mt_sim_common *o,
		      const struct mt_sim_cycle_ops *ops);

/* Prints the line of one cycle that started at t0_ns (mt_sim_now_ns). */
void mt_sim_print_cycle(uint64_t cycle, uint64_t requests, uint64_t t0_ns);

/* splitmix64: a small, seedable, well-mixed generator; state is *s. */
static inline uint64_t mt_sim_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi] (hi >= lo), slightly biased for huge ranges. */
static inline uint64_t mt_sim_rand_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
	return lo + mt_sim_rand(s) % (hi - lo + 1);
}

#endif
