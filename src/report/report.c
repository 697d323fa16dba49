/*
 * The reporter table and the number formatting every reporter shares.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "report/report.h"

const struct mt_reporter *const mt_reporters[] = {
	&mt_report_text,
	&mt_report_json,
	&mt_report_pprof,
	&mt_report_folded,
	&mt_report_html,
	NULL,
};

const struct mt_reporter *mt_reporter_find(const char *name)
{
	for (size_t i = 0; mt_reporters[i]; i++)
		if (strcmp(mt_reporters[i]->name, name) == 0)
			return mt_reporters[i];
	return NULL;
}

const char *mt_fmt_size(char buf[MT_FMT_LEN], uint64_t bytes)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	if (bytes < 1024) {
		snprintf(buf, MT_FMT_LEN, "%" PRIu64 " B", bytes);
		return buf;
	}
	double v = (double)bytes / 1024;
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	int prec = v < 10 ? 2 : v < 100 ? 1 : 0;
	/* 1023.6 KiB would print as "1024 KiB": promote instead */
	if (prec == 0 && v >= 1023.5 && u < 5) {
		v /= 1024;
		u++;
		prec = 2;
	}
	snprintf(buf, MT_FMT_LEN, "%.*f %s", prec, v, unit[u]);
	return buf;
}

const char *mt_fmt_count(char buf[MT_FMT_LEN], uint64_t n)
{
	char digits[24];
	int len = snprintf(digits, sizeof(digits), "%" PRIu64, n), o = 0;
	for (int i = 0; i < len; i++) {
		if (i && (len - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = 0;
	return buf;
}

const char *mt_fmt_duration(char buf[MT_FMT_LEN], uint64_t ns)
{
	uint64_t s = ns / 1000000000u;
	if (ns < 1000)
		snprintf(buf, MT_FMT_LEN, "%" PRIu64 " ns", ns);
	else if (ns < 1000000)
		snprintf(buf, MT_FMT_LEN, "%.1f us", ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, MT_FMT_LEN, "%.1f ms", ns / 1e6);
	else if (s < 120)
		snprintf(buf, MT_FMT_LEN, "%.3f s", ns / 1e9);
	else if (s < 7200)
		snprintf(buf, MT_FMT_LEN, "%" PRIu64 " min %02" PRIu64 " s", s / 60, s % 60);
	else
		snprintf(buf, MT_FMT_LEN, "%" PRIu64 " h %02" PRIu64 " min", s / 3600, s / 60 % 60);
	return buf;
}

const char *mt_fmt_percent(char buf[MT_FMT_LEN], uint64_t part, uint64_t whole)
{
	if (!whole)
		snprintf(buf, MT_FMT_LEN, "-");
	else
		snprintf(buf, MT_FMT_LEN, "%.1f%%", 100.0 * (double)part / (double)whole);
	return buf;
}
