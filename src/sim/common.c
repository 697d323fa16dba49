/*
 * Helpers shared by the built-in workloads.  None of them calls malloc:
 * a workload's allocation profile must be its model's and nothing else,
 * so output uses a stack buffer and write(2), and /proc is read with
 * open/read rather than stdio.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim/sim_int.h"

int mt_sim_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Multiplier for a size suffix ("", "B", "K", "KB", "KiB", ...); 0 if unknown. */
static uint64_t suffix_scale(const char *s)
{
	uint64_t scale;

	switch (*s) {
	case '\0':
		return 1;
	case 'b': case 'B':
		return s[1] ? 0 : 1;
	case 'k': case 'K':
		scale = 1ull << 10;
		break;
	case 'm': case 'M':
		scale = 1ull << 20;
		break;
	case 'g': case 'G':
		scale = 1ull << 30;
		break;
	default:
		return 0;
	}
	s++;
	if (!*s || !strcmp(s, "B") || !strcmp(s, "b") || !strcmp(s, "iB"))
		return scale;
	return 0;
}

int mt_sim_parse_bytes(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t scale;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	scale = suffix_scale(end);
	if (!scale || v > UINT64_MAX / scale)
		return -1;
	*out = v * scale;
	return 0;
}

uint64_t mt_sim_rss_bytes(void)
{
	char buf[128];
	unsigned long size, resident;
	ssize_t n;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
		return 0;
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint64_t mt_sim_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void mt_sim_sleep_ms(uint64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	while (ms && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int mt_sim_printf(int fd, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;
	size_t off = 0;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	while (off < (size_t)n) {
		ssize_t w = write(fd, buf + off, (size_t)n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}
