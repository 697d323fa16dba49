/*
 * Unit tests of src/watch: the /proc parsers on strings taken from real
 * kernels, the series' thinning at its limit, and the verdicts on
 * synthetic series of known shape (a leak, a bounded cache, a flat line,
 * a staircase creep, and the shape of seed 003's plateau).
 *
 * tests/e2e/watch.sh builds it with the system's cc from src/watch's
 * sample.c, series.c and analyze.c and src/stats/stats.c (no CMake
 * target, so the test stays within watch's own files) and runs it; it
 * prints "unit: ok" and exits 0, or names each failed check and exits 1.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "watch/watch.h"

static int failed;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "unit: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		failed = 1; \
	} \
} while (0)

/* Linux 6.x, abridged: every key watch reads, and some it skips. */
static const char status_6x[] =
	"Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nPid:\t4242\n"
	"VmPeak:\t  140000 kB\nVmSize:\t  139000 kB\nVmLck:\t       0 kB\nVmHWM:\t   34000 kB\n"
	"VmRSS:\t   33400 kB\nRssAnon:\t   26900 kB\nRssFile:\t    6500 kB\nRssShmem:\t       0 kB\n"
	"VmData:\t   30000 kB\nVmSwap:\t      12 kB\nThreads:\t4\nSigQ:\t0/63426\n";

/* Linux 4.4: no RssAnon/RssFile/RssShmem yet; no trailing newline. */
static const char status_44[] =
	"Name:\tcat\nState:\tR (running)\nVmPeak:\t    7480 kB\nVmRSS:\t     700 kB\nThreads:\t1";

static const char status_zombie[] =
	"Name:\tsleep\nState:\tZ (zombie)\nTgid:\t77\nThreads:\t1\n";

static const char smaps_rollup[] =
	"56300a30a000-7ffdfdf0a000 ---p 00000000 00:00 0                          [rollup]\n"
	"Rss:                1780 kB\nPss:                 424 kB\nPss_Anon:            116 kB\n"
	"Private_Dirty:       116 kB\nAnonymous:           116 kB\nSwap:                  0 kB\n"
	"SwapPss:               0 kB\n";

static void test_status(void)
{
	struct mt_watch_sample s = { 0 };
	CHECK(mt_watch_parse_status(status_6x, &s) == 9);
	CHECK(s.state == 'S');
	CHECK(s.v[MT_WF_RSS] == 33400ull * 1024);
	CHECK(s.v[MT_WF_RSS_ANON] == 26900ull * 1024);
	CHECK(s.v[MT_WF_RSS_FILE] == 6500ull * 1024);
	CHECK(mt_watch_has(&s, MT_WF_RSS_SHMEM) && s.v[MT_WF_RSS_SHMEM] == 0);
	CHECK(s.v[MT_WF_HWM] == 34000ull * 1024);
	CHECK(s.v[MT_WF_VM_PEAK] == 140000ull * 1024);
	CHECK(s.v[MT_WF_SWAP] == 12ull * 1024);
	CHECK(s.v[MT_WF_THREADS] == 4);          /* a count: no kB */
	CHECK(!mt_watch_has(&s, MT_WF_SM_PSS));

	struct mt_watch_sample old = { 0 };
	CHECK(mt_watch_parse_status(status_44, &old) == 3);
	CHECK(old.state == 'R');
	CHECK(old.v[MT_WF_RSS] == 700ull * 1024);
	CHECK(old.v[MT_WF_THREADS] == 1);
	CHECK(!mt_watch_has(&old, MT_WF_RSS_ANON));

	struct mt_watch_sample z = { 0 };
	CHECK(mt_watch_parse_status(status_zombie, &z) == 1);
	CHECK(z.state == 'Z' && !mt_watch_has(&z, MT_WF_RSS));

	struct mt_watch_sample e = { 0 };
	CHECK(mt_watch_parse_status("", &e) == 0 && e.have == 0 && e.state == 0);
	CHECK(mt_watch_parse_status("VmRSS:\tlots kB\nVmRSSX:\t5 kB\n", &e) == 0);
}

static void test_smaps(void)
{
	struct mt_watch_sample s = { 0 };
	CHECK(mt_watch_parse_smaps_rollup(smaps_rollup, &s) == 5);
	CHECK(s.v[MT_WF_SM_RSS] == 1780ull * 1024);
	CHECK(s.v[MT_WF_SM_PSS] == 424ull * 1024);    /* not confused with Pss_Anon */
	CHECK(s.v[MT_WF_SM_ANON] == 116ull * 1024);
	CHECK(s.v[MT_WF_SM_PRIV_DIRTY] == 116ull * 1024);
	CHECK(mt_watch_has(&s, MT_WF_SM_SWAP) && s.v[MT_WF_SM_SWAP] == 0);
	CHECK(!mt_watch_has(&s, MT_WF_RSS));
}

static void test_cgroup(void)
{
	char path[64];
	const char *v2 = "0::/user.slice/user-1000.slice/session-2.scope\n";
	const char *hybrid = "12:pids:/\n4:memory,kmem:/process_api/d4f49e\n1:cpu:/\n0::/\n";
	CHECK(mt_watch_parse_cgroup(v2, 2, path, sizeof(path)) == 0);
	CHECK(strcmp(path, "/user.slice/user-1000.slice/session-2.scope") == 0);
	CHECK(mt_watch_parse_cgroup(v2, 1, path, sizeof(path)) == -ENOENT);
	CHECK(mt_watch_parse_cgroup(hybrid, 1, path, sizeof(path)) == 0);
	CHECK(strcmp(path, "/process_api/d4f49e") == 0);
	CHECK(mt_watch_parse_cgroup(hybrid, 2, path, sizeof(path)) == 0 && strcmp(path, "/") == 0);
	CHECK(mt_watch_parse_cgroup("3:memoryx:/a\n", 1, path, sizeof(path)) == -ENOENT);
	CHECK(mt_watch_parse_cgroup(v2, 2, path, 8) == -ENAMETOOLONG);
	CHECK(mt_watch_parse_cgroup("", 2, path, sizeof(path)) == -ENOENT);

	uint64_t x = 7;
	CHECK(mt_watch_parse_cg_value("123456\n", &x) == 1 && x == 123456);
	CHECK(mt_watch_parse_cg_value("max\n", &x) == 0);
	CHECK(mt_watch_parse_cg_value("9223372036854771712\n", &x) == 0);  /* v1: no limit */
	CHECK(mt_watch_parse_cg_value("-1\n", &x) == -EINVAL);
	CHECK(mt_watch_parse_cg_value("12ab\n", &x) == -EINVAL);
}

static void test_cmdline(void)
{
	char out[16];
	static const char raw[] = "python3\0-c\0print(1)\0";
	char big[64];
	CHECK(mt_watch_format_cmdline(raw, sizeof(raw) - 1, big, sizeof(big)) == 19);
	CHECK(strcmp(big, "python3 -c print(1)") == 0);
	CHECK(mt_watch_format_cmdline("a\tb\0", 4, big, sizeof(big)) == 3 && strcmp(big, "a?b") == 0);
	CHECK(mt_watch_format_cmdline("", 0, big, sizeof(big)) == 0 && big[0] == 0);
	CHECK(mt_watch_format_cmdline(raw, sizeof(raw) - 1, out, sizeof(out)) == 15);
	CHECK(strcmp(out, "python3 -c p...") == 0);
}

/* ---- the series --------------------------------------------------------- */

static void test_thinning(void)
{
	struct mt_watch_series sr = MT_WATCH_SERIES_INIT;
	struct mt_watch_sample s = { 0 };
	int thinned_now = 0;
	for (uint64_t i = 0; i < 2 * (uint64_t)MT_WATCH_SAMPLES_MAX + 3; i++) {
		s.t_ns = i;
		int rc = mt_watch_series_push(&sr, &s);
		CHECK(rc >= 0);
		thinned_now += rc == 1;
	}
	CHECK(sr.thinned == 2 && thinned_now == 2 && sr.stride == 4);
	CHECK(sr.n <= MT_WATCH_SAMPLES_MAX && sr.offered == 2 * (uint64_t)MT_WATCH_SAMPLES_MAX + 3);
	CHECK(sr.s[0].t_ns == 0);
	int even = 1;
	for (size_t i = 1; i < sr.n; i++)
		even &= sr.s[i].t_ns - sr.s[i - 1].t_ns == sr.stride;
	CHECK(even);   /* the whole history at one step: nothing lost at the seams */
	mt_watch_series_release(&sr);
	CHECK(sr.n == 0 && sr.s == NULL && sr.stride == 1);
}

/* ---- the verdicts ---------------------------------------------------------- */

#define MIB (1024.0 * 1024)

/* Deterministic noise in [-1, 1). */
static double noise(uint64_t *state)
{
	*state = *state * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(*state >> 11) / (double)(1ull << 52) - 1;
}

/* A series of n samples every dt_s seconds with RSS rss[i] bytes; anon carries it all. */
static void make_series(struct mt_watch_series *sr, const double *rss, size_t n, double dt_s)
{
	mt_watch_series_init(sr);
	for (size_t i = 0; i < n; i++) {
		struct mt_watch_sample s = { .t_ns = (uint64_t)(i * dt_s * 1e9) };
		s.v[MT_WF_RSS] = (uint64_t)rss[i];
		s.v[MT_WF_RSS_ANON] = (uint64_t)rss[i] - (uint64_t)(4 * MIB);
		s.v[MT_WF_RSS_FILE] = (uint64_t)(4 * MIB);
		s.v[MT_WF_THREADS] = 2;
		s.have = 1u << MT_WF_RSS | 1u << MT_WF_RSS_ANON | 1u << MT_WF_RSS_FILE |
		         1u << MT_WF_THREADS;
		CHECK(mt_watch_series_push(sr, &s) == 0);
	}
}

static enum mt_watch_verdict verdict_of(const double *rss, size_t n, double dt_s,
                                        struct mt_watch_analysis *a)
{
	struct mt_watch_series sr;
	make_series(&sr, rss, n, dt_s);
	int rc = mt_watch_analyze(&sr, a);
	CHECK(rc == 0);
	mt_watch_series_release(&sr);
	return a->verdict;
}

static void test_verdicts(void)
{
	enum { N = 200 };
	static double v[N];
	struct mt_watch_analysis a;
	uint64_t st = 42;

	/* a leak: 100 MiB + 1 MiB/s, with 200 KiB of noise */
	for (int i = 0; i < N; i++)
		v[i] = 100 * MIB + i * MIB + 200e3 * noise(&st);
	CHECK(verdict_of(v, N, 1, &a) == MT_WATCH_GROWING);
	CHECK(a.growth_checks == MT_WATCH_CHECK_ALL && !a.have_plateau);
	CHECK(fabs(a.later_ts.slope_per_s / MIB - 1) < 0.05);
	CHECK(a.parts[MT_WP_ANON].have && a.parts[MT_WP_ANON].rise > 0.9 * a.later_rise);

	/* a bounded cache: 20 -> 70 MiB over 40 samples, then level within 64 KiB */
	for (int i = 0; i < N; i++)
		v[i] = (i < 40 ? 20 * MIB + i * 50 * MIB / 40 : 70 * MIB) + 65536 * noise(&st);
	CHECK(verdict_of(v, N, 1, &a) == MT_WATCH_PLATEAU);
	CHECK(a.have_plateau && a.plateau.first >= 36 && a.plateau.first <= 60);
	CHECK(a.warmup.n > 0 && a.warmup_rise > 40 * MIB);

	/* flat from the start */
	for (int i = 0; i < N; i++)
		v[i] = 50 * MIB + 100e3 * noise(&st);
	CHECK(verdict_of(v, N, 1, &a) == MT_WATCH_NO_GROWTH);

	/* a warm-up, then a staircase creep of 64 KiB steps: significant, but no growth */
	for (int i = 0; i < N; i++)
		v[i] = i < 20 ? 10 * MIB + i * MIB : 30 * MIB + (double)(i / 40) * 65536;
	CHECK(verdict_of(v, N, 1, &a) == MT_WATCH_PLATEAU);
	CHECK(!(a.growth_checks & MT_WATCH_CHECK_RATIO));

	/* the same shape over 5000 samples: analyzed as 600 bucket means */
	enum { BIG = 5000 };
	static double big[BIG];
	for (int i = 0; i < BIG; i++)
		big[i] = (i < 1000 ? 20 * MIB + i * 50 * MIB / 1000 : 70 * MIB) + 65536 * noise(&st);
	CHECK(verdict_of(big, BIG, 0.1, &a) == MT_WATCH_PLATEAU);
	CHECK(a.n_points == MT_WATCH_POINTS_MAX && a.n_samples == BIG);
	CHECK(a.plateau.first >= 900 && a.plateau.first <= 1500);
	CHECK(a.plateau.first + a.plateau.n == BIG && a.n_blocks == MT_WATCH_BLOCKS);
	for (int i = 0; i < BIG; i++)
		big[i] = 100 * MIB + i * 0.1 * MIB + 200e3 * noise(&st);
	CHECK(verdict_of(big, BIG, 0.1, &a) == MT_WATCH_GROWING);
	CHECK(a.later.first == BIG / 2 || a.later.first == (size_t)(MT_WATCH_POINTS_MAX / 2) * BIG /
	      MT_WATCH_POINTS_MAX);

	/* too few */
	CHECK(verdict_of(v, MT_WATCH_MIN_POINTS - 1, 1, &a) == MT_WATCH_TOO_FEW);
}

/*
 * The shape of seed 003 (../shared/seeds/003_*.txt): 50 iterations, warm-up
 * 738 -> 4219 MB over the first 10, then blocks of 10 averaging 3818, 3817,
 * 3957 and 3939 MB with ~100 MB of oscillation.  The seed's verdict: no
 * leak, a plateau after warm-up.  One sample per iteration, 60 s apart.
 */
static void test_seed_003(void)
{
	static const double block_mb[] = { 0, 3818, 3817, 3957, 3939 };
	double v[50];
	uint64_t st = 3;
	struct mt_watch_analysis a;
	for (int i = 0; i < 50; i++) {
		double mb = i < 10 ? 738 + (4219 - 738) * i / 9.0 : block_mb[i / 10] + 100 * noise(&st);
		v[i] = mb * 1e6;
	}
	CHECK(verdict_of(v, 50, 60, &a) == MT_WATCH_PLATEAU);
	CHECK(a.have_plateau && a.later_ratio < MT_WATCH_GROWTH_RATIO);
}

int main(void)
{
	test_status();
	test_smaps();
	test_cgroup();
	test_cmdline();
	test_thinning();
	test_verdicts();
	test_seed_003();
	if (!failed)
		puts("unit: ok");
	return failed;
}
