/*
 * `memtriage sim frontend --listen ADDR:PORT`: the frontend model serving
 * requests that arrive over TCP, so that a load generator in another
 * process (`memtriage sim load`) drives it the way the seed's load
 * generator drove the real frontend, and the server's RSS can be read
 * between load runs (`memtriage compare --server ... --load ...`).
 *
 * Protocol, per connection, one request at a time:
 *
 *   client:  "REQ <n>\n" and n payload bytes (n decimal, 1 to --payload)
 *   server:  "OK <m>\n" and m response bytes (the request's 2-5 chunks,
 *            1-4 KiB each), or "ERR <reason>\n" and the connection closed
 *
 * A client sends its next request after the answer; what it sends early
 * waits unread in the socket.  The header may end in "\r\n".  The answer
 * carries the chunks because a real frontend keeps them until they are
 * sent: the dispatcher frees them after the last byte left, as the
 * in-process dispatcher frees them when a request completes.
 *
 * The dispatcher is this one thread: a ppoll() loop over the listening
 * socket, the connections (non-blocking: a slow client costs its slot and
 * nothing else), the pool's eventfd (a task completed) and a pipe that
 * the SIGTERM/SIGINT handler writes to, whichever thread takes the signal.
 * It mallocs each request and its payload and reads the payload into it,
 * where the in-process dispatcher makes them up; PARSE, the hold and
 * RESPOND run on the model's worker pool (frontend.c), so the allocations
 * and the frees across threads are the model's.  --concurrency caps the
 * connections served at once; more wait in the listen backlog.
 *
 * Memory besides the model's: the connection table, the poll set and a
 * batch, malloc'd once at start.  At SIGTERM/SIGINT it stops accepting,
 * closes idle connections, lets requests in flight finish (dropping their
 * answers), joins the workers (on stacks it maps, so no thread DTV is
 * left) and frees everything: a recorded server leaks nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sim/frontend_int.h"

#define FE_NET_HEAD_MAX     32              /* request line, "\n" included */
#define FE_NET_DRAIN_MAX    (1u << 20)      /* read and dropped after an ERR */
#define FE_NET_ACCEPT_PAUSE_NS 100000000ull /* after accept fails (EMFILE...) */
#define FE_NET_FD_SLACK     64              /* descriptors besides connections */

enum fe_conn_state {
	FE_CONN_FREE,     /* slot unused, fd -1 */
	FE_CONN_HEAD,     /* reading "REQ <n>\n" into line */
	FE_CONN_BODY,     /* reading the payload into rq */
	FE_CONN_BUSY,     /* rq on the pool; the socket is not polled */
	FE_CONN_SEND,     /* sending line ("OK <m>\n") and rq's chunks */
	FE_CONN_DRAIN,    /* ERR sent: dropping input until EOF */
};

struct fe_conn {
	int fd;
	enum fe_conn_state state;
	struct fe_request *rq;          /* BODY, BUSY, SEND; else NULL */
	size_t have;                    /* bytes of the current state done */
	size_t line_len;                /* SEND: length of the answer line */
	size_t chunk_size[FE_MAX_CHUNKS]; /* SEND: rq's chunks */
	char line[FE_NET_HEAD_MAX + 1];
};

/* Poll set: the fixed descriptors first, then one per connection slot. */
enum { FE_PFD_SIGNAL, FE_PFD_DONE, FE_PFD_LISTEN, FE_PFD_CONN };

struct fe_net {
	struct fe_server s;
	const struct fe_opts *opt;
	int lfd, efd, sig_rfd;
	struct fe_conn *conn;           /* [opt->concurrency] */
	size_t n_open;                  /* slots not FREE */
	struct pollfd *pfd;             /* [FE_PFD_CONN + opt->concurrency] */
	struct fe_request **batch;      /* [opt->concurrency] */
	uint64_t in_flight;             /* requests on the pool or held */
	uint64_t next_id, served, failed;
	uint64_t accept_after_ns;       /* 0, or no accept before this */
	int stopping;
};

/* ---- signals: a pipe the handler writes to ------------------------------ */

static int fe_sig_wfd = -1;

static void fe_on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (write(fe_sig_wfd, &c, 1) < 0) {
		/* full pipe: a stop is already pending */
	}
	errno = saved;
}

/* Installs the handler for SIGTERM and SIGINT, saving the old ones in old[2]. */
static void fe_signals_catch(struct sigaction old[2])
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fe_on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, &old[0]);
	sigaction(SIGINT, &sa, &old[1]);
}

static void fe_signals_restore(const struct sigaction old[2])
{
	sigaction(SIGTERM, &old[0], NULL);
	sigaction(SIGINT, &old[1], NULL);
}

/* ---- connections --------------------------------------------------------- */

/* Closes c and frees its request; never for BUSY (the pool has the request). */
static void fe_conn_close(struct fe_net *n, struct fe_conn *c)
{
	close(c->fd);
	if (c->rq)
		fe_request_free(&n->s, c->rq);
	c->rq = NULL;
	c->fd = -1;
	c->state = FE_CONN_FREE;
	n->n_open--;
}

/* Answers "ERR <why>" (best effort: a client that reads nothing loses it), then drains. */
static void fe_conn_fail(struct fe_net *n, struct fe_conn *c, const char *why)
{
	char msg[64];
	int len = snprintf(msg, sizeof msg, "ERR %s\n", why);

	n->failed++;
	if (send(c->fd, msg, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT) != len) {
		fe_conn_close(n, c);
		return;
	}
	/* Close only at the client's EOF: a close with input unread would reset
	 * the connection, and the reset can destroy the ERR before it is read. */
	shutdown(c->fd, SHUT_WR);
	c->state = FE_CONN_DRAIN;
	c->have = 0;
}

/*
 * Parses the request line c->line[0..c->have) ("REQ <n>\n", "\r\n" too).
 * Returns n, or 0 after answering ERR.
 */
static uint64_t fe_head_parse(struct fe_net *n, struct fe_conn *c)
{
	char *num = c->line + 4;
	size_t end = c->have - 1;
	uint64_t bytes;

	if (end && c->line[end - 1] == '\r')
		end--;
	c->line[end] = '\0';
	if (strncmp(c->line, "REQ ", 4)) {
		fe_conn_fail(n, c, "expected 'REQ <payload-bytes>'");
		return 0;
	}
	if (mt_sim_parse_u64(num, 1, UINT64_MAX, &bytes)) {
		fe_conn_fail(n, c, "bad payload size");
		return 0;
	}
	if (bytes > n->opt->payload_bytes) {
		fe_conn_fail(n, c, "payload larger than the server's --payload");
		return 0;
	}
	return bytes;
}

/*
 * HEAD: reads the request line without reading past its "\n" (peek, then
 * take up to it), so no payload byte lands in the line buffer; on a whole
 * line, allocates the request and moves to BODY.
 */
static void fe_conn_read_head(struct fe_net *n, struct fe_conn *c)
{
	char peek[FE_NET_HEAD_MAX];
	ssize_t got = recv(c->fd, peek, FE_NET_HEAD_MAX - c->have, MSG_PEEK);
	const char *nl;
	uint64_t bytes;

	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (got <= 0) {
		fe_conn_close(n, c);    /* EOF between requests: the usual goodbye */
		return;
	}
	nl = memchr(peek, '\n', (size_t)got);
	got = recv(c->fd, c->line + c->have, nl ? (size_t)(nl - peek + 1) : (size_t)got, 0);
	if (got <= 0) {
		fe_conn_close(n, c);
		return;
	}
	c->have += (size_t)got;
	if (c->line[c->have - 1] != '\n') {
		if (c->have == FE_NET_HEAD_MAX)
			fe_conn_fail(n, c, "request line too long");
		return;
	}
	bytes = fe_head_parse(n, c);
	if (!bytes)
		return;
	c->rq = fe_request_alloc(&n->s, n->next_id++, (size_t)bytes);
	c->rq->conn = (int)(c - n->conn);
	c->state = FE_CONN_BODY;
	c->have = 0;
}

/* BODY: reads payload bytes; the whole payload goes to the pool to be parsed. */
static void fe_conn_read_body(struct fe_net *n, struct fe_conn *c)
{
	struct fe_request *rq = c->rq;
	ssize_t got = recv(c->fd, rq->payload + c->have, rq->payload_bytes - c->have, 0);

	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (got <= 0) {
		fe_conn_close(n, c);    /* gone mid-request: nothing to answer */
		return;
	}
	c->have += (size_t)got;
	if (c->have < rq->payload_bytes)
		return;
	c->state = FE_CONN_BUSY;
	n->in_flight++;
	fe_submit(&n->s, rq);
}

/* Adds what is left of buf[0..len) after skipping *skip bytes to iov[*k]. */
static void fe_iov_add(struct iovec *iov, int *k, size_t *skip, void *buf, size_t len)
{
	if (*skip >= len) {
		*skip -= len;
		return;
	}
	iov[*k].iov_base = (char *)buf + *skip;
	iov[*k].iov_len = len - *skip;
	(*k)++;
	*skip = 0;
}

/* SEND: sends what is left of the answer; when all is sent, frees the request. */
static void fe_conn_send(struct fe_net *n, struct fe_conn *c)
{
	struct iovec iov[1 + FE_MAX_CHUNKS];
	struct msghdr msg = { .msg_iov = iov };
	struct fe_request *rq = c->rq;
	size_t skip = c->have;
	int k = 0;
	ssize_t sent;

	fe_iov_add(iov, &k, &skip, c->line, c->line_len);
	for (unsigned i = 0; i < rq->n_chunks; i++)
		fe_iov_add(iov, &k, &skip, rq->chunk[i], c->chunk_size[i]);
	msg.msg_iovlen = (size_t)k;
	sent = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
	if (sent < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (sent < 0) {
		fe_conn_close(n, c);    /* the client left before its answer */
		return;
	}
	c->have += (size_t)sent;
	if (c->have < c->line_len + rq->chunk_bytes)
		return;
	fe_request_free(&n->s, rq);
	c->rq = NULL;
	c->state = FE_CONN_HEAD;
	c->have = 0;
	n->served++;
}

/* DRAIN: drops input until EOF (or FE_NET_DRAIN_MAX bytes), then closes. */
static void fe_conn_drain(struct fe_net *n, struct fe_conn *c)
{
	char buf[4096];
	ssize_t got = recv(c->fd, buf, sizeof buf, 0);

	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	c->have += got > 0 ? (size_t)got : 0;
	if (got <= 0 || c->have >= FE_NET_DRAIN_MAX)
		fe_conn_close(n, c);
}

static void fe_conn_io(struct fe_net *n, struct fe_conn *c)
{
	switch (c->state) {
	case FE_CONN_HEAD:
		fe_conn_read_head(n, c);
		break;
	case FE_CONN_BODY:
		fe_conn_read_body(n, c);
		break;
	case FE_CONN_SEND:
		fe_conn_send(n, c);
		break;
	case FE_CONN_DRAIN:
		fe_conn_drain(n, c);
		break;
	case FE_CONN_FREE:
	case FE_CONN_BUSY:
		break;
	}
}

/* ---- the dispatcher's events --------------------------------------------- */

/* A request came back from RESPOND: answer it (or, when stopping, drop it). */
static void fe_net_responded(struct fe_net *n, struct fe_request *rq)
{
	struct fe_conn *c = &n->conn[rq->conn];

	n->in_flight--;
	if (n->stopping) {
		fe_conn_close(n, c);
		return;
	}
	c->line_len = (size_t)snprintf(c->line, sizeof c->line, "OK %llu\n",
				       (unsigned long long)rq->chunk_bytes);
	fe_chunk_sizes(&n->s, rq, c->chunk_size);
	c->state = FE_CONN_SEND;
	c->have = 0;
	fe_conn_send(n, c);     /* usually all of it fits in the socket now */
}

/* The eventfd fired: takes every completed task, as fe_serve does in-process. */
static void fe_net_on_done(struct fe_net *n)
{
	uint64_t hold_ns = n->opt->hold_ms * 1000000u, count;
	size_t k = 0;

	if (read(n->efd, &count, sizeof count) < 0) {
		/* EAGAIN: a completion already taken on an earlier round */
	}
	pthread_mutex_lock(&n->s.lock);
	while (n->s.done.len)
		n->batch[k++] = fe_queue_pop(&n->s.done);
	pthread_mutex_unlock(&n->s.lock);
	for (size_t i = 0; i < k; i++) {
		struct fe_request *rq = n->batch[i];

		if (rq->stage == FE_RESPOND) {
			fe_net_responded(n, rq);
			continue;
		}
		rq->deadline_ns = mt_sim_now_ns() + hold_ns;
		fe_queue_push(&n->s.held, rq);
	}
}

static struct fe_conn *fe_net_free_slot(struct fe_net *n)
{
	for (size_t i = 0; i < n->opt->concurrency; i++)
		if (n->conn[i].state == FE_CONN_FREE)
			return &n->conn[i];
	return NULL;
}

/* Accepts connections while slots are free; the rest wait in the backlog. */
static void fe_net_accept(struct fe_net *n)
{
	static int told;
	int one = 1;

	while (!n->stopping && n->n_open < n->opt->concurrency) {
		struct fe_conn *c;
		int fd = accept4(n->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				if (!told++)
					mt_sim_printf(2, "memtriage: sim frontend: accept: %s\n",
						      strerror(errno));
				n->accept_after_ns = mt_sim_now_ns() + FE_NET_ACCEPT_PAUSE_NS;
			}
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c = fe_net_free_slot(n);
		*c = (struct fe_conn){ .fd = fd, .state = FE_CONN_HEAD };
		n->n_open++;
	}
}

/* SIGTERM or SIGINT: stop accepting, close what has no request in flight. */
static void fe_net_stop(struct fe_net *n)
{
	char buf[16];

	while (read(n->sig_rfd, buf, sizeof buf) > 0)
		;
	if (n->stopping)
		return;
	n->stopping = 1;
	close(n->lfd);
	n->lfd = -1;
	for (size_t i = 0; i < n->opt->concurrency; i++)
		if (n->conn[i].state != FE_CONN_FREE && n->conn[i].state != FE_CONN_BUSY)
			fe_conn_close(n, &n->conn[i]);
}

static short fe_conn_events(const struct fe_conn *c)
{
	switch (c->state) {
	case FE_CONN_HEAD:
	case FE_CONN_BODY:
	case FE_CONN_DRAIN:
		return POLLIN;
	case FE_CONN_SEND:
		return POLLOUT;
	default:
		return 0;
	}
}

/* Fills the poll set; returns ppoll's timeout (NULL: none) in *ts. */
static const struct timespec *fe_net_poll_set(struct fe_net *n, struct timespec *ts)
{
	const struct fe_request *head = fe_queue_peek(&n->s.held);
	uint64_t now = mt_sim_now_ns(), wake = head ? head->deadline_ns : 0;
	int accepting = !n->stopping && n->n_open < n->opt->concurrency;

	if (accepting && n->accept_after_ns > now) {
		accepting = 0;
		if (!wake || n->accept_after_ns < wake)
			wake = n->accept_after_ns;
	}
	n->pfd[FE_PFD_SIGNAL] = (struct pollfd){ .fd = n->sig_rfd, .events = POLLIN };
	n->pfd[FE_PFD_DONE] = (struct pollfd){ .fd = n->efd, .events = POLLIN };
	n->pfd[FE_PFD_LISTEN] = (struct pollfd){ .fd = accepting ? n->lfd : -1, .events = POLLIN };
	for (size_t i = 0; i < n->opt->concurrency; i++) {
		short ev = n->stopping ? 0 : fe_conn_events(&n->conn[i]);

		n->pfd[FE_PFD_CONN + i] = (struct pollfd){ .fd = ev ? n->conn[i].fd : -1, .events = ev };
	}
	if (!wake)
		return NULL;
	wake = wake > now ? wake - now : 0;
	ts->tv_sec = (time_t)(wake / 1000000000u);
	ts->tv_nsec = (long)(wake % 1000000000u);
	return ts;
}

/* Serves until stopped and nothing is in flight; returns 0, or 1 if polling failed. */
static int fe_net_loop(struct fe_net *n)
{
	nfds_t n_pfd = FE_PFD_CONN + n->opt->concurrency;
	int rc = 0;

	while (!n->stopping || n->in_flight) {
		struct timespec ts;
		const struct timespec *tmo;
		int failed;

		fe_release_due(&n->s);
		tmo = fe_net_poll_set(n, &ts);
		failed = ppoll(n->pfd, n_pfd, tmo, NULL) < 0 && errno != EINTR;
		if (failed) {
			/* Cannot happen with a valid set; stop, and keep collecting. */
			mt_sim_printf(2, "memtriage: sim frontend: poll: %s\n", strerror(errno));
			rc = 1;
			fe_net_stop(n);
			mt_sim_sleep_ms(1);
		}
		if (failed || n->pfd[FE_PFD_DONE].revents)
			fe_net_on_done(n);
		for (size_t i = 0; !failed && i < n->opt->concurrency; i++)
			if (n->pfd[FE_PFD_CONN + i].revents)
				fe_conn_io(n, &n->conn[i]);
		if (!failed && n->pfd[FE_PFD_LISTEN].revents)
			fe_net_accept(n);
		if (!failed && n->pfd[FE_PFD_SIGNAL].revents)
			fe_net_stop(n);
	}
	return rc;
}

/* ---- setup ---------------------------------------------------------------- */

/* A non-blocking listening socket at where (ADDR:PORT); fd, -1 (said why) or -2 (bad where). */
static int fe_net_listen(const char *where)
{
	struct sockaddr_storage sa;
	socklen_t len;
	int one = 1, fd;

	if (mt_sim_parse_addr(where, &sa, &len))
		return -2;
	fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* Restarted servers (compare runs one per configuration) reuse the port. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, len) || listen(fd, SOMAXCONN))
		goto fail;
	return fd;
fail:
	mt_sim_printf(2, "memtriage: sim frontend: cannot listen on '%s': %s\n", where, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Room for every connection's descriptor: raise the soft limit up to the hard one. */
static void fe_net_raise_fd_limit(uint64_t conns)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)conns + FE_NET_FD_SLACK;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* The event descriptors: the pool's eventfd and the signal pipe. Returns 0 or -1. */
static int fe_net_fds(struct fe_net *n)
{
	int p[2];

	n->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->efd < 0 || pipe2(p, O_NONBLOCK | O_CLOEXEC)) {
		mt_sim_printf(2, "memtriage: sim frontend: %s: %s\n",
			      n->efd < 0 ? "eventfd" : "pipe", strerror(errno));
		if (n->efd >= 0)
			close(n->efd);
		return -1;
	}
	n->sig_rfd = p[0];
	fe_sig_wfd = p[1];
	return 0;
}

static void fe_net_report(const struct fe_net *n)
{
	if (!n->opt->verbose)
		return;
	mt_sim_printf(2, "frontend: served %llu requests (%llu refused); model live heap "
		      "peak %llu MB; rss %llu MB\n",
		      (unsigned long long)n->served, (unsigned long long)n->failed,
		      (unsigned long long)(atomic_load(&n->s.peak_bytes) >> 20),
		      (unsigned long long)(mt_sim_rss_bytes() >> 20));
}

/* Prints "listening on ADDR:PORT" (the real port) on stdout. */
static void fe_net_announce(int lfd)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof sa;
	char name[MT_SIM_ADDR_MAX];

	getsockname(lfd, (struct sockaddr *)&sa, &len);
	mt_sim_format_addr((struct sockaddr *)&sa, name);
	mt_sim_printf(1, "listening on %s\n", name);
}

int fe_net_run(const struct fe_opts *o)
{
	struct fe_net n = { .opt = o, .lfd = -1 };
	struct sigaction old[2];
	size_t cap = o->concurrency;
	int rc = 0;

	n.lfd = fe_net_listen(o->listen);
	if (n.lfd == -2) {
		mt_sim_printf(2, "memtriage: sim frontend: invalid value '%s' for --listen "
			      "(expected ADDR:PORT, e.g. 127.0.0.1:8080 or [::1]:8080)\n", o->listen);
		return 2;
	}
	if (n.lfd < 0 || fe_net_fds(&n)) {
		if (n.lfd >= 0)
			close(n.lfd);
		return 1;
	}
	fe_net_raise_fd_limit(cap);
	fe_text_init(o->seed);
	n.conn = fe_malloc(cap * sizeof *n.conn);
	n.pfd = fe_malloc((FE_PFD_CONN + cap) * sizeof *n.pfd);
	n.batch = fe_malloc(cap * sizeof *n.batch);
	for (size_t i = 0; i < cap; i++)
		n.conn[i] = (struct fe_conn){ .fd = -1, .state = FE_CONN_FREE };
	fe_signals_catch(old);
	if (fe_pool_start(&n.s, o, n.efd, 1)) {
		rc = 1;
	} else {
		fe_net_announce(n.lfd);
		rc = fe_net_loop(&n);
	}
	fe_pool_stop(&n.s);
	fe_net_report(&n);
	fe_signals_restore(old);
	if (n.lfd >= 0)
		close(n.lfd);
	close(n.efd);
	close(n.sig_rfd);
	close(fe_sig_wfd);
	fe_sig_wfd = -1;
	free(n.batch);
	free(n.pfd);
	free(n.conn);
	return rc;
}
