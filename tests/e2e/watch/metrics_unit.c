/*
 * Unit tests of `watch --listen`'s pure parts: the --listen value's
 * syntax (src/watch/listen.c) and the exposition (src/watch/metrics.c) in
 * both formats, on a hand-made sample and on the analysis of a synthetic
 * leak.  tests/e2e/watch_listen.sh builds it with the system's cc and runs
 * it; it prints "metrics_unit: ok", or names each failed check and exits 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "watch/watch.h"

static int failed;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "metrics_unit: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		failed = 1; \
	} \
} while (0)

static void test_split(void)
{
	char host[64];
	unsigned port = 1;
	CHECK(mt_watch_listen_split("127.0.0.1:0", host, sizeof(host), &port) == 0);
	CHECK(strcmp(host, "127.0.0.1") == 0 && port == 0);
	CHECK(mt_watch_listen_split("[::1]:9100", host, sizeof(host), &port) == 0);
	CHECK(strcmp(host, "::1") == 0 && port == 9100);
	CHECK(mt_watch_listen_split(":65535", host, sizeof(host), &port) == 0);
	CHECK(host[0] == 0 && port == 65535);
	CHECK(mt_watch_listen_split("localhost:80", host, sizeof(host), &port) == 0);
	CHECK(strcmp(host, "localhost") == 0 && port == 80);
	static const char *const bad[] = {
		"", "9100", ":", "h:", "h:65536", "h:-1", "h:+1", "h:1x", "h:123456", "::1:9100",
		"[::1]9100", "[]:1", "[::1:1", "h: 1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = mt_watch_listen_split(bad[i], host, sizeof(host), &port);
		if (rc != -EINVAL)
			fprintf(stderr, "metrics_unit: '%s' accepted\n", bad[i]);
		CHECK(rc == -EINVAL);
	}
	CHECK(mt_watch_listen_split("abcdefgh:1", host, 8, &port) == -EINVAL);  /* host too long */
}

/* The exposition of m in fmt, as a malloc'd string. */
static char *render(const struct mt_watch_metrics *m, enum mt_metrics_format fmt)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	CHECK(f && mt_watch_write_metrics(f, m, fmt) == 0);
	fclose(f);
	return buf;
}

static int has(const char *text, const char *line)
{
	const char *p = strstr(text, line);
	return p && (p == text || p[-1] == '\n');
}

static struct mt_watch_sample sample(void)
{
	struct mt_watch_sample s = { 0 };
	s.v[MT_WF_RSS] = 40960000;
	s.v[MT_WF_RSS_ANON] = 30000000;
	s.v[MT_WF_RSS_FILE] = 10960000;
	s.v[MT_WF_THREADS] = 5;
	s.have = 1u << MT_WF_RSS | 1u << MT_WF_RSS_ANON | 1u << MT_WF_RSS_FILE | 1u << MT_WF_THREADS;
	return s;
}

#define L "{pid=\"42\",command=\"a \\\"b\\\" c\\\\d\\n?\xc3\xa9??\"}"

static void test_openmetrics(void)
{
	struct mt_watch_sample s = sample();
	/* a quote, a backslash, a newline, a stray byte, a valid é, a cut sequence */
	struct mt_watch_metrics m = { .pid = 42, .cmdline = "a \"b\" c\\d\n\xff\xc3\xa9\xe2\x82",
	                              .last = &s, .samples_total = 7 };
	char *t = render(&m, MT_METRICS_OPENMETRICS);
	CHECK(has(t, "# TYPE memtriage_rss_bytes gauge\n"));
	CHECK(has(t, "# UNIT memtriage_rss_bytes bytes\n"));
	CHECK(has(t, "memtriage_rss_bytes" L " 40960000\n"));
	CHECK(has(t, "memtriage_rss_anon_bytes" L " 30000000\n"));
	CHECK(has(t, "# UNIT memtriage_rss_file_bytes bytes\n"));
	CHECK(!strstr(t, "memtriage_rss_shmem_bytes"));        /* not in the sample: left out */
	CHECK(has(t, "memtriage_threads" L " 5\n"));
	CHECK(!strstr(t, "# UNIT memtriage_threads"));
	CHECK(!strstr(t, "heap_live") && !strstr(t, "allocator_free"));  /* never guessed */
	CHECK(!strstr(t, "growth_bytes_per_second"));          /* no analysis: no slope */
	CHECK(has(t, "memtriage_verdict{pid=\"42\"") );
	CHECK(strstr(t, ",class=\"too_few_samples\"} 1\n"));
	CHECK(strstr(t, ",class=\"growing\"} 0\n"));
	CHECK(strstr(t, ",class=\"plateau_after_warmup\"} 0\n"));
	CHECK(strstr(t, ",class=\"no_significant_growth\"} 0\n"));
	CHECK(has(t, "# TYPE memtriage_samples counter\n"));
	CHECK(has(t, "memtriage_samples_total" L " 7\n"));
	size_t n = strlen(t);
	CHECK(n > 6 && strcmp(t + n - 6, "# EOF\n") == 0);
	CHECK(strstr(t, "# EOF") == t + n - 6);                 /* once, at the end */
	free(t);

	m.have_heap_live = m.have_alloc_free = 1;
	m.heap_live_bytes = 123;
	m.alloc_free_bytes = 456;
	m.last = NULL;
	t = render(&m, MT_METRICS_OPENMETRICS);
	CHECK(has(t, "memtriage_heap_live_bytes" L " 123\n"));
	CHECK(has(t, "# UNIT memtriage_heap_live_bytes bytes\n"));
	CHECK(has(t, "memtriage_allocator_free_bytes" L " 456\n"));
	CHECK(!strstr(t, "memtriage_rss_bytes"));              /* no sample yet */
	free(t);
}

static void test_prom_text(void)
{
	struct mt_watch_sample s = sample();
	struct mt_watch_metrics m = { .pid = 42, .cmdline = "x", .last = &s, .samples_total = 7 };
	char *t = render(&m, MT_METRICS_PROM_TEXT);
	CHECK(has(t, "# TYPE memtriage_samples_total counter\n"));
	CHECK(has(t, "# HELP memtriage_samples_total "));
	CHECK(!strstr(t, "# UNIT") && !strstr(t, "# EOF"));
	CHECK(has(t, "memtriage_rss_bytes{pid=\"42\",command=\"x\"} 40960000\n"));
	free(t);
	CHECK(strstr(mt_metrics_content_type(MT_METRICS_OPENMETRICS),
	              "application/openmetrics-text; version=1.0.0; charset=utf-8"));
	CHECK(strstr(mt_metrics_content_type(MT_METRICS_PROM_TEXT), "text/plain; version=0.0.4"));
}

/* 60 samples a second apart, RSS growing 1 MiB/s from 100 MiB: "growing" at that slope. */
static void test_analysis(void)
{
	struct mt_watch_series sr;
	struct mt_watch_analysis a;
	struct mt_watch_sample s = { 0 };
	mt_watch_series_init(&sr);
	for (int i = 0; i < 60; i++) {
		s.t_ns = (uint64_t)i * 1000000000u;
		s.v[MT_WF_RSS] = s.v[MT_WF_RSS_ANON] = (100 + (uint64_t)i) << 20;
		s.have = 1u << MT_WF_RSS | 1u << MT_WF_RSS_ANON;
		CHECK(mt_watch_series_push(&sr, &s) >= 0);
	}
	CHECK(mt_watch_analyze(&sr, &a) == 0 && a.verdict == MT_WATCH_GROWING);
	struct mt_watch_metrics m = { .pid = 1, .cmdline = "", .last = &s, .samples_total = 60,
	                              .a = &a };
	char *t = render(&m, MT_METRICS_OPENMETRICS);
	CHECK(has(t, "# UNIT memtriage_rss_growth_bytes_per_second bytes_per_second\n"));
	CHECK(has(t, "memtriage_rss_growth_bytes_per_second{pid=\"1\",command=\"\"} 1048576\n"));
	CHECK(has(t, "memtriage_rss_anon_growth_bytes_per_second{pid=\"1\",command=\"\"} 1048576\n"));
	CHECK(strstr(t, ",class=\"growing\"} 1\n") && strstr(t, ",class=\"too_few_samples\"} 0\n"));
	free(t);
	mt_watch_series_release(&sr);
}

int main(void)
{
	test_split();
	test_openmetrics();
	test_prom_text();
	test_analysis();
	if (failed)
		return 1;
	puts("metrics_unit: ok");
	return 0;
}
