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

#include <stddef.h>
#include <stdint.h>

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
