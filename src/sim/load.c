/*
 * `memtriage sim load --connect ADDR:PORT`: the load generator for
 * `memtriage sim frontend --listen`, as the seed's load generator was for
 * the real frontend: --concurrency connections, each sending one request
 * at a time ("REQ <n>\n" and n payload bytes, see frontend_net.c) and
 * reading its answer, until --requests requests were sent in all.  Run it
 * N times against one server and read the server's RSS between runs.
 *
 * It must not weigh on the machine it measures: the payload is sent from
 * one static text buffer (again and again for payloads larger than it),
 * answers are read into a small buffer on each thread's stack and dropped,
 * and nothing is malloc'd per request.  One thread per connection, with
 * blocking sockets and --timeout on every send and receive, keeps it
 * simple and still cannot hang.
 *
 * Output, one line on stdout:
 *   load: requests=N errors=E seconds=S throughput=X req/s
 * (X: answered requests per second; `memtriage compare` reads it).  Exit
 * status 0 when every request got OK, 1 otherwise (the first failure on
 * stderr), 2 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sim/sim_int.h"

#define LD_DEF_REQUESTS     1000
#define LD_DEF_CONCURRENCY  48
#define LD_DEF_PAYLOAD      (200u << 10)
#define LD_DEF_CONNECT_S    5
#define LD_DEF_TIMEOUT_S    60

#define LD_MAX_CONCURRENCY  4096
#define LD_MAX_PAYLOAD      (1ull << 30)
#define LD_TEXT_BYTES       (64u << 10)    /* the payload text, sent in turns */
#define LD_IN_BYTES         8192           /* each thread's answer buffer */
#define LD_LINE_MAX         128            /* longest answer line accepted */
#define LD_STACK_BYTES      (256u << 10)
#define LD_RETRY_MS         50             /* between connection attempts */

struct ld_opts {
	const char *connect;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint64_t requests, concurrency, payload_bytes;
	uint64_t connect_timeout_s, timeout_s;
};

struct ld_run {
	const struct ld_opts *o;
	_Atomic uint64_t next;       /* requests claimed by the threads */
	_Atomic uint64_t ok;         /* requests answered OK */
	pthread_mutex_t lock;        /* first_error */
	char first_error[200];
};

/* Buffered reading of one connection's answers (on a thread's stack). */
struct ld_reader {
	int fd;
	size_t pos, len;
	char buf[LD_IN_BYTES];
};

static char ld_text[LD_TEXT_BYTES];

/* Keeps the first failure's message; later ones only count. */
static void ld_error(struct ld_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ld_error(struct ld_run *r, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&r->lock);
	if (!r->first_error[0]) {
		va_start(ap, fmt);
		vsnprintf(r->first_error, sizeof r->first_error, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&r->lock);
}

/* Words and spaces, like the server's own text; the server does not look. */
static void ld_text_init(void)
{
	uint64_t s = 0x10ad;

	for (size_t i = 0; i < LD_TEXT_BYTES; i++)
		ld_text[i] = (mt_sim_rand(&s) % 6) ? (char)('a' + mt_sim_rand(&s) % 26) : ' ';
}

/* ---- connecting ----------------------------------------------------------- */

/* A connection refused or not yet possible: the server may be starting. */
static int ld_retryable(int err)
{
	return err == ECONNREFUSED || err == EAGAIN || err == EINTR || err == ETIMEDOUT ||
	       err == ECONNRESET || err == ENETUNREACH || err == EHOSTUNREACH;
}

/* One attempt: a socket with --timeout on send and receive; fd, or -1 (errno set). */
static int ld_try_connect(const struct ld_opts *o)
{
	struct timeval tv = { .tv_sec = (time_t)o->timeout_s };
	int one = 1, err, fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (!connect(fd, (const struct sockaddr *)&o->addr, o->addr_len))
		return fd;
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

/* Connects, retrying for --connect-timeout; fd, or -1 (recorded). */
static int ld_connect(struct ld_run *r)
{
	uint64_t deadline = mt_sim_now_ns() + r->o->connect_timeout_s * 1000000000u;

	for (;;) {
		int fd = ld_try_connect(r->o);

		if (fd >= 0)
			return fd;
		if (!ld_retryable(errno) || mt_sim_now_ns() >= deadline) {
			ld_error(r, "cannot connect to '%s': %s", r->o->connect, strerror(errno));
			return -1;
		}
		mt_sim_sleep_ms(LD_RETRY_MS);
	}
}

/* ---- one request ---------------------------------------------------------- */

/* Sends "REQ <n>\n" and n bytes of text; 0, or -1 (recorded). */
static int ld_send(struct ld_run *r, int fd)
{
	char head[32];
	size_t hlen = (size_t)snprintf(head, sizeof head, "REQ %llu\n",
				       (unsigned long long)r->o->payload_bytes);
	size_t total = hlen + r->o->payload_bytes, sent = 0;

	while (sent < total) {
		struct iovec iov[2];
		struct msghdr msg = { .msg_iov = iov };
		size_t off = sent < hlen ? 0 : (sent - hlen) % LD_TEXT_BYTES;
		size_t body_left = total - (sent < hlen ? hlen : sent);
		ssize_t w;

		if (sent < hlen)
			iov[msg.msg_iovlen++] = (struct iovec){ head + sent, hlen - sent };
		iov[msg.msg_iovlen++] = (struct iovec){
			ld_text + off, body_left < LD_TEXT_BYTES - off ? body_left : LD_TEXT_BYTES - off };
		w = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			ld_error(r, "sending a request: %s", errno == EAGAIN ?
				 "timed out (see --timeout)" : strerror(errno));
			return -1;
		}
		sent += (size_t)w;
	}
	return 0;
}

/* Refills rd when it is empty; 0, or -1 at EOF or error (errno 0 for EOF). */
static int ld_fill(struct ld_reader *rd)
{
	ssize_t n;

	if (rd->pos < rd->len)
		return 0;
	do
		n = recv(rd->fd, rd->buf, sizeof rd->buf, 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		if (n == 0)
			errno = 0;
		return -1;
	}
	rd->pos = 0;
	rd->len = (size_t)n;
	return 0;
}

/* Reads one line (without its "\n") into line[LD_LINE_MAX]; 0, or -1 (errno; 0: EOF, E2BIG). */
static int ld_read_line(struct ld_reader *rd, char *line)
{
	size_t k = 0;

	for (;;) {
		char ch;

		if (ld_fill(rd))
			return -1;
		ch = rd->buf[rd->pos++];
		if (ch == '\n')
			break;
		if (k == LD_LINE_MAX - 1) {
			errno = E2BIG;
			return -1;
		}
		line[k++] = ch;
	}
	line[k] = '\0';
	return 0;
}

/* Reads and drops n bytes; 0, or -1 (errno; 0: EOF). */
static int ld_skip(struct ld_reader *rd, uint64_t n)
{
	while (n) {
		size_t k;

		if (ld_fill(rd))
			return -1;
		k = rd->len - rd->pos < n ? rd->len - rd->pos : (size_t)n;
		rd->pos += k;
		n -= k;
	}
	return 0;
}

static const char *ld_why(int err)
{
	return !err ? "the server closed the connection" :
	       err == EAGAIN ? "no answer in time (see --timeout)" :
	       err == E2BIG ? "answer line too long" : strerror(err);
}

/* Reads the answer: "OK <m>\n" and m bytes; 0, or -1 (recorded). */
static int ld_answer(struct ld_run *r, struct ld_reader *rd)
{
	char line[LD_LINE_MAX];
	uint64_t m;

	if (ld_read_line(rd, line)) {
		ld_error(r, "reading an answer: %s", ld_why(errno));
		return -1;
	}
	if (!strncmp(line, "ERR ", 4)) {
		ld_error(r, "the server answered '%s'", line);
		return -1;
	}
	if (strncmp(line, "OK ", 3) || mt_sim_parse_u64(line + 3, 0, UINT64_MAX, &m)) {
		ld_error(r, "not an answer: '%.60s'", line);
		return -1;
	}
	if (ld_skip(rd, m)) {
		ld_error(r, "reading a response: %s", ld_why(errno));
		return -1;
	}
	return 0;
}

/* One connection: claims requests until all are claimed; reconnects after a failure. */
static void *ld_thread(void *arg)
{
	struct ld_run *r = arg;
	struct ld_reader rd = { .fd = -1 };

	while (atomic_load(&r->next) < r->o->requests) {
		if (rd.fd < 0) {
			rd.fd = ld_connect(r);
			rd.pos = rd.len = 0;
			if (rd.fd < 0)
				break;
		}
		if (atomic_fetch_add(&r->next, 1) >= r->o->requests)
			break;
		if (!ld_send(r, rd.fd) && !ld_answer(r, &rd)) {
			atomic_fetch_add(&r->ok, 1);
			continue;
		}
		close(rd.fd);   /* the stream may be mid-answer: start afresh */
		rd.fd = -1;
	}
	if (rd.fd >= 0)
		close(rd.fd);
	return NULL;
}

/* ---- running -------------------------------------------------------------- */

static int ld_run(const struct ld_opts *o)
{
	static pthread_t tid[LD_MAX_CONCURRENCY];
	struct ld_run r = { .o = o };
	pthread_attr_t attr;
	uint64_t t0, ok, errors, started = 0;
	double secs;

	ld_text_init();
	pthread_mutex_init(&r.lock, NULL);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, LD_STACK_BYTES);
	t0 = mt_sim_now_ns();
	for (; started < o->concurrency; started++) {
		if (pthread_create(&tid[started], &attr, ld_thread, &r)) {
			ld_error(&r, "cannot create thread %llu", (unsigned long long)started + 1);
			break;
		}
	}
	for (uint64_t i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	secs = (double)(mt_sim_now_ns() - t0) / 1e9;
	pthread_attr_destroy(&attr);
	pthread_mutex_destroy(&r.lock);
	ok = atomic_load(&r.ok);
	errors = o->requests - ok;  /* unsent ones included: no thread could send them */
	mt_sim_printf(1, "load: requests=%llu errors=%llu seconds=%.2f throughput=%.0f req/s\n",
		      (unsigned long long)o->requests, (unsigned long long)errors, secs,
		      secs > 0 ? (double)ok / secs : 0.0);
	if (!errors)
		return 0;
	mt_sim_printf(2, "memtriage: sim load: %llu of %llu requests failed; first: %s\n",
		      (unsigned long long)errors, (unsigned long long)o->requests,
		      r.first_error[0] ? r.first_error : "unknown");
	return 1;
}

/* ---- options -------------------------------------------------------------- */

static void ld_usage(FILE *f)
{
	fprintf(f,
		"usage: memtriage sim load --connect ADDR:PORT [OPTIONS]\n\n"
		"Load generator for 'memtriage sim frontend --listen ADDR:PORT': opens\n"
		"--concurrency connections, sends --requests requests in all (one at a time\n"
		"on each connection: 'REQ <bytes>' and the payload), reads the answers, and\n"
		"prints 'load: requests=N errors=E seconds=S throughput=X req/s'.  Exit\n"
		"status 0 when every request was answered OK, 1 otherwise.\n\n"
		"options:\n"
		"  --connect ADDR:PORT     the server: 127.0.0.1:8080, [::1]:8080 (required)\n"
		"  --requests N            requests in all (default %d)\n"
		"  --concurrency N         connections (default %d)\n"
		"  --payload BYTES         payload per request, K/M/G suffixes (default 200K)\n"
		"  --connect-timeout SECS  keep trying to connect this long (default %d)\n"
		"  --timeout SECS          fail a request that waits this long on a send or\n"
		"                          an answer (default %d)\n"
		"  -h, --help              print this help\n",
		LD_DEF_REQUESTS, LD_DEF_CONCURRENCY, LD_DEF_CONNECT_S, LD_DEF_TIMEOUT_S);
}

static int ld_bad(const char *opt, const char *val)
{
	mt_sim_printf(2, "memtriage: sim load: invalid value '%s' for --%s\n", val, opt);
	return 2;
}

/* Parses one option's value into o; returns 0 or 2 (usage error). */
static int ld_set(struct ld_opts *o, int c, const char *name, const char *v)
{
	switch (c) {
	case 'a':
		o->connect = v;
		return mt_sim_parse_addr(v, &o->addr, &o->addr_len) ? ld_bad(name, v) : 0;
	case 'r':
		return mt_sim_parse_u64(v, 1, UINT32_MAX, &o->requests) ? ld_bad(name, v) : 0;
	case 'c':
		return mt_sim_parse_u64(v, 1, LD_MAX_CONCURRENCY, &o->concurrency) ? ld_bad(name, v) : 0;
	case 'p':
		return mt_sim_parse_bytes(v, &o->payload_bytes) || !o->payload_bytes ||
		       o->payload_bytes > LD_MAX_PAYLOAD ? ld_bad(name, v) : 0;
	case 'C':
		return mt_sim_parse_u64(v, 0, 3600, &o->connect_timeout_s) ? ld_bad(name, v) : 0;
	case 't':
		return mt_sim_parse_u64(v, 1, 3600, &o->timeout_s) ? ld_bad(name, v) : 0;
	}
	return 2;
}

int mt_sim_load(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "connect",         required_argument, NULL, 'a' },
		{ "requests",        required_argument, NULL, 'r' },
		{ "concurrency",     required_argument, NULL, 'c' },
		{ "payload",         required_argument, NULL, 'p' },
		{ "connect-timeout", required_argument, NULL, 'C' },
		{ "timeout",         required_argument, NULL, 't' },
		{ "help",            no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct ld_opts o = {
		.requests = LD_DEF_REQUESTS, .concurrency = LD_DEF_CONCURRENCY,
		.payload_bytes = LD_DEF_PAYLOAD, .connect_timeout_s = LD_DEF_CONNECT_S,
		.timeout_s = LD_DEF_TIMEOUT_S,
	};
	int c, idx;

	opterr = 0;  /* our messages, not getopt's "load: ..." */
	while ((c = getopt_long(argc, argv, "+:h", longopts, &idx)) != -1) {
		if (c == 'h') {
			ld_usage(stdout);
			return 0;
		}
		if (c == '?' || c == ':') {
			mt_sim_printf(2, "memtriage: sim load: %s '%s' (see 'memtriage sim load --help')\n",
				      c == ':' ? "missing value for option" : "unknown option",
				      argv[optind - 1]);
			return 2;
		}
		if (ld_set(&o, c, longopts[idx].name, optarg))
			return 2;
	}
	if (optind < argc) {
		mt_sim_printf(2, "memtriage: sim load: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!o.connect) {
		mt_sim_printf(2, "memtriage: sim load: --connect ADDR:PORT is required\n");
		return 2;
	}
	return ld_run(&o);
}
