/*
 * Helpers shared by the built-in workloads.  None of them calls malloc:
 * a workload's allocation profile must be its model's and nothing else,
 * so output uses a stack buffer and write(2), and /proc is read with
 * open/read rather than stdio.  The cycle runner's threads run on stacks
 * mapped here (see mt_sim_thread_start in sim_int.h), so that glibc frees
 * their DTVs at join instead of leaving them in its stack cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
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

/* The host part of "ADDR:PORT" into host[n]: brackets stripped; its port, or NULL. */
static const char *addr_split(const char *s, char *host, size_t n)
{
	const char *colon, *h = s;
	size_t hl;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return NULL;
		h = s + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return NULL;  /* an IPv6 literal needs its brackets */
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= n)
		return NULL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	return colon + 1;
}

int mt_sim_parse_addr(const char *s, struct sockaddr_storage *sa, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN];
	const char *port_s = s ? addr_split(s, host, sizeof host) : NULL;
	struct sockaddr_in v4 = { .sin_family = AF_INET };
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };
	uint64_t port;

	if (!port_s || mt_sim_parse_u64(port_s, 0, 65535, &port))
		return -1;
	if (*s != '[' && inet_pton(AF_INET, host, &v4.sin_addr) == 1) {
		v4.sin_port = htons((uint16_t)port);
		memset(sa, 0, sizeof *sa);
		memcpy(sa, &v4, sizeof v4);
		*len = sizeof v4;
		return 0;
	}
	if (*s == '[' && inet_pton(AF_INET6, host, &v6.sin6_addr) == 1) {
		v6.sin6_port = htons((uint16_t)port);
		memset(sa, 0, sizeof *sa);
		memcpy(sa, &v6, sizeof v6);
		*len = sizeof v6;
		return 0;
	}
	return -1;
}

void mt_sim_format_addr(const struct sockaddr *sa, char *buf)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
		snprintf(buf, MT_SIM_ADDR_MAX, "[%s]:%u", host, ntohs(v6->sin6_port));
	} else {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
		snprintf(buf, MT_SIM_ADDR_MAX, "%s:%u", host, ntohs(v4->sin_port));
	}
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

/* ---- options shared by the cycle workloads (leak, plateau, nonheap) ---- */

#define MT_SIM_MAX_OPTS 32

static int opt_bad(const char *workload, const char *opt, const char *val)
{
	mt_sim_printf(2, "memtriage: sim %s: invalid value '%s' for --%s\n", workload, val, opt);
	return 2;
}

int mt_sim_getopt(int argc, char **argv, const struct mt_sim_opt *opts, size_t n, int *verbose)
{
	struct option longopts[MT_SIM_MAX_OPTS + 3];
	const char *workload = argv[0];
	size_t k = 0;
	int c, idx;

	if (n > MT_SIM_MAX_OPTS) {
		mt_sim_printf(2, "memtriage: sim %s: too many options\n", workload);
		return 2;
	}
	for (; k < n; k++)
		longopts[k] = (struct option){ opts[k].name, required_argument, NULL, 256 + (int)k };
	longopts[k++] = (struct option){ "verbose", no_argument, NULL, 'v' };
	longopts[k++] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[k] = (struct option){ NULL, 0, NULL, 0 };
	opterr = 0;  /* our messages, not getopt's "leak: ..." */
	while ((c = getopt_long(argc, argv, "+:vh", longopts, &idx)) != -1) {
		const struct mt_sim_opt *o;
		int bad;

		if (c == 'h')
			return 1;
		if (c == 'v') {
			*verbose = 1;
			continue;
		}
		if (c == '?' || c == ':') {
			mt_sim_printf(2, "memtriage: sim %s: %s '%s' (see 'memtriage sim %s --help')\n",
				      workload, c == ':' ? "missing value for option" : "unknown option",
				      argv[optind - 1], workload);
			return 2;
		}
		o = &opts[c - 256];
		if (o->bytes) {
			uint64_t v;

			bad = mt_sim_parse_bytes(optarg, &v) || v < o->min || v > o->max;
			if (!bad)
				*o->val = v;
		} else {
			bad = mt_sim_parse_u64(optarg, o->min, o->max, o->val) != 0;
		}
		if (bad)
			return opt_bad(workload, o->name, optarg);
	}
	if (optind < argc) {
		mt_sim_printf(2, "memtriage: sim %s: unexpected argument '%s'\n", workload, argv[optind]);
		return 2;
	}
	return 0;
}

/* ---- threads on stacks the workload maps itself ------------------------ */

/* glibc's default stack size (RLIMIT_STACK, 8 MiB usually), within reason. */
static size_t default_stack_bytes(void)
{
	pthread_attr_t attr;
	size_t sz = 0;

	if (!pthread_getattr_default_np(&attr)) {
		pthread_attr_getstacksize(&attr, &sz);
		pthread_attr_destroy(&attr);
	}
	if (sz < (256u << 10) || sz > (64u << 20))
		sz = 8u << 20;
	return sz;
}

int mt_sim_thread_start(struct mt_sim_thread *t, size_t stack_bytes, void *(*fn)(void *),
			void *arg)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	pthread_attr_t attr;
	void *map;
	int err;

	if (stack_bytes < default_stack_bytes())
		stack_bytes = default_stack_bytes();
	stack_bytes = (stack_bytes + page - 1) / page * page;
	/* One guard page below the stack, as glibc would place it. */
	map = mmap(NULL, stack_bytes + page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (map == MAP_FAILED)
		return -1;
	mprotect(map, page, PROT_NONE);
	pthread_attr_init(&attr);
	pthread_attr_setstack(&attr, (char *)map + page, stack_bytes);
	err = pthread_create(&t->tid, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	if (err) {
		munmap(map, stack_bytes + page);
		return -1;
	}
	t->map = map;
	t->map_bytes = stack_bytes + page;
	return 0;
}

void mt_sim_thread_join(struct mt_sim_thread *t)
{
	pthread_join(t->tid, NULL);
	/* The kernel cleared the thread's tid when it exited: its stack is free. */
	munmap(t->map, t->map_bytes);
	t->map = NULL;
}

/* ---- the cycle runner -------------------------------------------------- */

struct pool {
	const struct mt_sim_cycle_ops *ops;
	pthread_mutex_t lock;
	pthread_cond_t go;          /* a cycle started (gen changed) or stopping */
	pthread_cond_t idle;        /* the last worker finished the cycle */
	uint64_t gen;               /* cycles started so far */
	uint64_t end;               /* one past the current cycle's last request id */
	_Atomic uint64_t next;      /* next request id to serve */
	unsigned running;           /* workers still serving the current cycle */
	int stopping;
};

struct pool_worker {
	struct pool *pool;
	unsigned index;
};

static void *pool_worker(void *arg)
{
	struct pool_worker *w = arg;
	struct pool *p = w->pool;
	uint64_t seen = 0;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		uint64_t id, end;

		while (p->gen == seen && !p->stopping)
			pthread_cond_wait(&p->go, &p->lock);
		if (p->stopping)
			break;
		seen = p->gen;
		end = p->end;
		pthread_mutex_unlock(&p->lock);
		while ((id = atomic_fetch_add(&p->next, 1)) < end)
			p->ops->serve(p->ops->ctx, w->index, id);
		pthread_mutex_lock(&p->lock);
		if (!--p->running)
			pthread_cond_signal(&p->idle);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void mt_sim_print_cycle(uint64_t cycle, uint64_t requests, uint64_t t0_ns)
{
	double secs = (double)(mt_sim_now_ns() - t0_ns) / 1e9;

	mt_sim_printf(1, "cycle %llu: rss=%llu MB requests=%llu throughput=%.0f req/s\n",
		      (unsigned long long)cycle, (unsigned long long)(mt_sim_rss_bytes() >> 20),
		      (unsigned long long)requests, secs > 0 ? (double)requests / secs : 0.0);
}

int mt_sim_run_cycles(const char *workload, const struct mt_sim_common *o,
		      const struct mt_sim_cycle_ops *ops)
{
	struct mt_sim_thread tid[MT_SIM_MAX_WORKERS];
	struct pool_worker arg[MT_SIM_MAX_WORKERS];
	struct pool p = { .ops = ops };
	unsigned nw = (unsigned)o->workers, started = 0;
	int rc = 0;

	mt_sim_printf(1, "initial: rss=%llu MB\n", (unsigned long long)(mt_sim_rss_bytes() >> 20));
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.go, NULL);
	pthread_cond_init(&p.idle, NULL);
	for (; started < nw; started++) {
		arg[started] = (struct pool_worker){ &p, started };
		if (mt_sim_thread_start(&tid[started], 0, pool_worker, &arg[started])) {
			mt_sim_printf(2, "memtriage: sim %s: cannot create worker thread %u\n",
				      workload, started + 1);
			rc = 1;
			break;
		}
	}
	for (uint64_t c = 1; !rc && c <= o->cycles; c++) {
		uint64_t t0;

		if (ops->begin_cycle && ops->begin_cycle(ops->ctx, c)) {
			rc = 1;
			break;
		}
		t0 = mt_sim_now_ns();   /* throughput: of the requests alone */
		pthread_mutex_lock(&p.lock);
		atomic_store(&p.next, (c - 1) * o->requests);
		p.end = c * o->requests;
		p.running = started;
		p.gen++;
		pthread_cond_broadcast(&p.go);
		while (p.running)
			pthread_cond_wait(&p.idle, &p.lock);
		pthread_mutex_unlock(&p.lock);
		mt_sim_print_cycle(c, o->requests, t0);
		if (ops->end_cycle)
			ops->end_cycle(ops->ctx, c);
	}
	pthread_mutex_lock(&p.lock);
	p.stopping = 1;
	pthread_cond_broadcast(&p.go);
	pthread_mutex_unlock(&p.lock);
	while (started)
		mt_sim_thread_join(&tid[--started]);
	pthread_cond_destroy(&p.idle);
	pthread_cond_destroy(&p.go);
	pthread_mutex_destroy(&p.lock);
	return rc;
}
