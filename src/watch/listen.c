/*
 * `memtriage watch --listen`: a minimal HTTP/1.1 server for /metrics that
 * lives inside the sampling loop.  The loop waits in
 * mt_watch_server_run() instead of sleeping, so there is no thread and no
 * lock: a request is answered between two samples.  Every socket is
 * non-blocking and every connection has a deadline and a size cap, so a
 * client that sends slowly, never reads, or floods cannot delay a sample
 * by more than the time to render one exposition (an analysis, a few ms).
 *
 * One request per connection (Connection: close): Prometheus opens a
 * connection per scrape anyway when told to, and it keeps the server free
 * of keep-alive and pipelining state.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "watch/watch.h"

#define LISTEN_BACKLOG   16
#define DRAIN_MAX        4096                 /* bytes of unread request discarded before close */
#define ACCEPT_PAUSE_NS  (100 * 1000000ull)   /* after EMFILE and the like: do not spin */

struct client {
	int fd;                  /* -1: a free slot */
	uint64_t deadline_ns;
	size_t req_len;
	char *resp;              /* NULL while reading the request */
	size_t resp_len, resp_off;
	char req[MT_WATCH_HTTP_REQUEST_MAX + 1];
};

struct mt_watch_server {
	int fd;
	mt_watch_render_fn render;
	void *arg;
	uint64_t accept_after_ns;   /* accepting paused until then after a failure */
	char url[INET6_ADDRSTRLEN + 32];
	struct client c[MT_WATCH_HTTP_CLIENTS_MAX];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the address ------------------------------------------------------------ */

/* PORT: 1 to 5 digits, at most 65535; returns 0 or -EINVAL. */
static int parse_port(const char *s, unsigned *port)
{
	unsigned v = 0;
	size_t n = strspn(s, "0123456789");
	if (n == 0 || n > 5 || s[n])
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (v > 65535)
		return -EINVAL;
	*port = v;
	return 0;
}

int mt_watch_listen_split(const char *spec, char *host, size_t cap, unsigned *port)
{
	const char *h = spec, *colon;
	size_t hlen;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':' || close == spec + 1)
			return -EINVAL;
		h = spec + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - spec);
		if (memchr(spec, ':', hlen))    /* an IPv6 address without brackets */
			return -EINVAL;
	}
	if (hlen >= cap || parse_port(colon + 1, port))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = 0;
	return 0;
}

/* A listening socket on ai; returns the fd or -errno. */
static int bind_one(const struct addrinfo *ai)
{
	int one = 1, zero = 0;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                ai->ai_protocol);
	if (fd < 0)
		return -errno;
	/* a watch restarted at once need not wait for the old connections' TIME_WAIT */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* ":PORT" binds "::", which then takes IPv4 too */
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, LISTEN_BACKLOG)) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/*
 * Binds the first address of the list that works; for all interfaces
 * (no host) IPv6 first, as it covers IPv4.  Returns the fd or the first
 * -errno met.
 */
static int bind_any(const struct addrinfo *list, int wildcard)
{
	int first_err = 0;
	for (int pass = wildcard ? 0 : 1; pass < 2; pass++)
		for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
			if (pass == 0 && ai->ai_family != AF_INET6)
				continue;
			int fd = bind_one(ai);
			if (fd >= 0)
				return fd;
			if (!first_err)
				first_err = fd;
		}
	return first_err ? first_err : -EADDRNOTAVAIL;
}

/* The URL of the bound socket, "http://[::1]:9100/metrics". */
static void make_url(struct mt_watch_server *sv)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (getsockname(sv->fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof(addr));
			port = ntohs(a->sin6_port);
		} else {
			const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, addr, sizeof(addr));
			port = ntohs(a->sin_port);
		}
	}
	snprintf(sv->url, sizeof(sv->url), ss.ss_family == AF_INET6 ? "http://[%s]:%u/metrics" :
	         "http://%s:%u/metrics", addr, port);
}

int mt_watch_server_open(struct mt_watch_server **out, const char *spec, mt_watch_render_fn render,
                         void *arg, char *err, size_t errcap)
{
	char host[256], service[8];
	unsigned port;
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_family = AF_UNSPEC,
	                          .ai_socktype = SOCK_STREAM }, *list;
	*out = NULL;
	if (mt_watch_listen_split(spec, host, sizeof(host), &port)) {
		snprintf(err, errcap, "expected HOST:PORT, [IPV6]:PORT or :PORT, PORT from 0 to 65535");
		return -EINVAL;
	}
	snprintf(service, sizeof(service), "%u", port);
	int rc = getaddrinfo(host[0] ? host : NULL, service, &hints, &list);
	if (rc) {
		snprintf(err, errcap, "%s", rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -EADDRNOTAVAIL;
	}
	int fd = bind_any(list, !host[0]);
	freeaddrinfo(list);
	struct mt_watch_server *sv = fd >= 0 ? calloc(1, sizeof(*sv)) : NULL;
	if (!sv) {
		rc = fd >= 0 ? -ENOMEM : fd;
		snprintf(err, errcap, "%s", strerror(-rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	sv->fd = fd;
	sv->render = render;
	sv->arg = arg;
	for (int i = 0; i < MT_WATCH_HTTP_CLIENTS_MAX; i++)
		sv->c[i].fd = -1;
	make_url(sv);
	*out = sv;
	return 0;
}

const char *mt_watch_server_url(const struct mt_watch_server *sv)
{
	return sv->url;
}

/* ---- connections ------------------------------------------------------------ */

/*
 * Closes a connection.  Unread request bytes are drained first: closing a
 * socket with unread input sends a reset, which may make the client drop
 * the response it has not read yet.
 */
static void client_close(struct client *c)
{
	char sink[512];
	size_t drained = 0;
	ssize_t r;
	shutdown(c->fd, SHUT_WR);
	while (drained < DRAIN_MAX && (r = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
		drained += (size_t)r;
	close(c->fd);
	free(c->resp);
	c->fd = -1;
	c->resp = NULL;
}

/* Sends what the socket takes now; closes the connection once all is sent or on error. */
static void client_write(struct client *c)
{
	while (c->resp_off < c->resp_len) {
		ssize_t r = send(c->fd, c->resp + c->resp_off, c->resp_len - c->resp_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0)
			break;
		c->resp_off += (size_t)r;
	}
	client_close(c);
}

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	}
	return "Internal Server Error";
}

/* Queues the response (headers and body) and starts sending it. */
static void respond(struct client *c, int status, const char *ctype, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	                 "Content-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
	                 status_text(status), ctype, len, status == 405 ? "Allow: GET\r\n" : "");
	c->resp = malloc((size_t)n + len);
	if (!c->resp) {
		client_close(c);
		return;
	}
	memcpy(c->resp, head, (size_t)n);
	memcpy(c->resp + n, body, len);
	c->resp_len = (size_t)n + len;
	c->resp_off = 0;
	client_write(c);
}

static void respond_text(struct client *c, int status, const char *msg)
{
	respond(c, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

/* The value of header `name` (lower-case, with ':') in the request, or NULL; cuts it at its line's end. */
static char *header(char *req, const char *name)
{
	size_t n = strlen(name);
	for (char *line = strchr(req, '\n'); line; line = strchr(line, '\n')) {
		line++;
		if (strncasecmp(line, name, n) == 0) {
			char *v = line + n;
			v[strcspn(v, "\r\n")] = 0;
			return v;
		}
	}
	return NULL;
}

/*
 * OpenMetrics unless the client asks for the 0.0.4 text format only.
 * Prometheus lists both, OpenMetrics first; curl sends * / *.
 */
static enum mt_metrics_format negotiate(char *req)
{
	const char *accept = header(req, "accept:");
	if (accept && !strcasestr(accept, "application/openmetrics-text") &&
	    strcasestr(accept, "text/plain"))
		return MT_METRICS_PROM_TEXT;
	return MT_METRICS_OPENMETRICS;
}

static void serve_metrics(struct mt_watch_server *sv, struct client *c, enum mt_metrics_format fmt)
{
	char *body = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&body, &len);
	int rc = f ? sv->render(sv->arg, f, fmt) : -ENOMEM;
	if (f && fclose(f) && !rc)
		rc = -ENOMEM;
	if (rc)
		respond_text(c, 500, "cannot render the metrics\n");
	else
		respond(c, 200, mt_metrics_content_type(fmt), body, len);
	free(body);
}

/* A whole request head is in c->req: answer it. */
static void handle_request(struct mt_watch_server *sv, struct client *c)
{
	char *req = c->req;
	size_t mlen = strcspn(req, " \r\n");
	char *target = req + mlen;
	if (*target != ' ') {
		respond_text(c, 400, "bad request\n");
		return;
	}
	target++;
	size_t tlen = strcspn(target, " \r\n");
	if (target[tlen] != ' ' || strncmp(target + tlen + 1, "HTTP/1.", 7) != 0) {
		respond_text(c, 400, "bad request\n");
		return;
	}
	size_t plen = strcspn(target, "? \r\n");    /* the path, without a query */
	if (mlen != 3 || strncmp(req, "GET", 3) != 0)
		respond_text(c, 405, "only GET is served\n");
	else if (plen != 8 || strncmp(target, "/metrics", 8) != 0)
		respond_text(c, 404, "not found: try /metrics\n");
	else
		serve_metrics(sv, c, negotiate(req));
}

/* Reads what arrived; answers once the head is complete. */
static void client_read(struct mt_watch_server *sv, struct client *c)
{
	ssize_t r = recv(c->fd, c->req + c->req_len, MT_WATCH_HTTP_REQUEST_MAX - c->req_len,
	                 MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (r <= 0) {
		client_close(c);
		return;
	}
	c->req_len += (size_t)r;
	c->req[c->req_len] = 0;
	if (memchr(c->req, 0, c->req_len))      /* a NUL in a request head is no HTTP */
		respond_text(c, 400, "bad request\n");
	else if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n"))
		handle_request(sv, c);
	else if (c->req_len == MT_WATCH_HTTP_REQUEST_MAX)
		respond_text(c, 431, "request too large\n");
}

/*
 * A slot for a new connection: a free one, else the oldest connection
 * still sending its request, closed to make room: idle clients that hold
 * every slot must not keep a scrape out.  -1 when every slot is answering.
 */
static int take_slot(struct mt_watch_server *sv)
{
	int oldest = -1;
	for (int i = 0; i < MT_WATCH_HTTP_CLIENTS_MAX; i++) {
		struct client *c = &sv->c[i];
		if (c->fd < 0)
			return i;
		if (!c->resp && (oldest < 0 || c->deadline_ns < sv->c[oldest].deadline_ns))
			oldest = i;
	}
	if (oldest >= 0)
		client_close(&sv->c[oldest]);
	return oldest;
}

/* Accepts the pending connections, each into a slot of take_slot(). */
static void accept_all(struct mt_watch_server *sv, uint64_t now)
{
	for (;;) {
		int fd = accept4(sv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)   /* EMFILE, ENOBUFS: retry later */
				sv->accept_after_ns = now + ACCEPT_PAUSE_NS;
			return;
		}
		int i = take_slot(sv);
		if (i < 0) {               /* every slot is sending an answer: this one waits no more */
			close(fd);
			return;
		}
		struct client *c = &sv->c[i];
		c->fd = fd;
		c->req_len = 0;
		c->req[0] = 0;
		c->deadline_ns = now + MT_WATCH_HTTP_TIMEOUT_NS;
	}
}

/* ---- the loop --------------------------------------------------------------- */

/*
 * Fills pfd: [0] wake_fd, [1] the listening socket (fd -1 while every slot
 * is answering or accepting is paused), then one per connection, slot[] naming
 * it.  Closes connections past their deadline and lowers *wake_at to the
 * next deadline.  Returns the count.
 */
static nfds_t fill_pollfds(struct mt_watch_server *sv, int wake_fd, uint64_t now,
                           struct pollfd *pfd, int *slot, uint64_t *wake_at)
{
	nfds_t n = 2;
	int free_slot = 0;          /* a free slot, or one take_slot() may free */
	pfd[0] = (struct pollfd){ .fd = wake_fd, .events = POLLIN };
	for (int i = 0; i < MT_WATCH_HTTP_CLIENTS_MAX; i++) {
		struct client *c = &sv->c[i];
		if (c->fd >= 0 && c->deadline_ns <= now)
			client_close(c);
		if (c->fd < 0) {
			free_slot = 1;
			continue;
		}
		if (!c->resp)
			free_slot = 1;
		if (c->deadline_ns < *wake_at)
			*wake_at = c->deadline_ns;
		slot[n] = i;
		pfd[n++] = (struct pollfd){ .fd = c->fd, .events = c->resp ? POLLOUT : POLLIN };
	}
	int accepting = free_slot && now >= sv->accept_after_ns;
	if (!accepting && sv->accept_after_ns > now && sv->accept_after_ns < *wake_at)
		*wake_at = sv->accept_after_ns;
	pfd[1] = (struct pollfd){ .fd = accepting ? sv->fd : -1, .events = POLLIN };
	return n;
}

int mt_watch_server_run(struct mt_watch_server *sv, int wake_fd, uint64_t deadline_ns)
{
	struct pollfd pfd[2 + MT_WATCH_HTTP_CLIENTS_MAX];
	int slot[2 + MT_WATCH_HTTP_CLIENTS_MAX];
	for (;;) {
		uint64_t now = now_ns(), wake_at = deadline_ns;
		if (now >= deadline_ns)
			return 0;
		nfds_t n = fill_pollfds(sv, wake_fd, now, pfd, slot, &wake_at);
		struct timespec ts = { (time_t)((wake_at - now) / 1000000000u),
		                       (long)((wake_at - now) % 1000000000u) };
		int r = ppoll(pfd, n, &ts, NULL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		for (nfds_t i = 2; i < n; i++) {
			struct client *c = &sv->c[slot[i]];
			if (!pfd[i].revents)
				continue;
			if (pfd[i].revents & POLLNVAL)
				client_close(c);
			else if (c->resp)          /* an error shows as a failed send */
				client_write(c);
			else                       /* and here as a failed recv */
				client_read(sv, c);
		}
		if (pfd[1].revents & POLLIN)
			accept_all(sv, now);
		if (pfd[0].revents)
			return 1;
	}
}

void mt_watch_server_close(struct mt_watch_server *sv)
{
	if (!sv)
		return;
	for (int i = 0; i < MT_WATCH_HTTP_CLIENTS_MAX; i++)
		if (sv->c[i].fd >= 0)
			client_close(&sv->c[i]);
	close(sv->fd);
	free(sv);
}
