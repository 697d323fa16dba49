/*
 * Internals of `memtriage sim frontend`, shared by its two dispatchers:
 * frontend.c (the model, the worker pool, and the in-process dispatcher
 * that generates requests itself) and frontend_net.c (--listen: requests
 * arrive over TCP).  Both hand the same struct fe_request through the same
 * PARSE / hold / RESPOND tasks on the same pool, so the memory shape is
 * the model's in either mode.
 *
 * Ownership: the dispatcher (one thread) owns a request except while it
 * sits in the work queue or a worker runs its task; a worker hands it back
 * through the done queue.  Every function below runs on the dispatcher
 * unless it says otherwise.  Allocation failure is fatal (fe_malloc prints
 * and _exits 1): the model has no partial states worth keeping.
 */
#ifndef MT_SIM_FRONTEND_INT_H
#define MT_SIM_FRONTEND_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/sim_int.h"

#define FE_MAX_CONCURRENCY  4096        /* requests in flight, connections */
#define FE_MAX_WORKERS      1024        /* threads */
#define FE_MAX_PAYLOAD      (1ull << 30)
#define FE_MAX_CHUNKS       5           /* response chunks per request */

struct fe_opts {
	uint64_t payload_bytes;
	uint64_t concurrency;    /* in flight; with --listen: connections */
	uint64_t requests;       /* per cycle (in-process only) */
	uint64_t cycles;         /* in-process only */
	uint64_t workers;        /* 0 = as many as concurrency */
	uint64_t hold_ms;
	uint64_t seed;
	int trim;                /* malloc_trim(0) after each cycle */
	int verbose;             /* model's own live-heap figures on stderr */
	const char *listen;      /* ADDR:PORT to serve, or NULL: in-process */
};

enum fe_stage { FE_PARSE, FE_RESPOND };

/* One request: owned as the file comment says; its size is the model's. */
struct fe_request {
	uint64_t id;
	enum fe_stage stage;     /* the task to run next */
	int conn;                /* --listen: index of the connection it came on */
	uint64_t deadline_ns;    /* end of the hold, set when the parse is done */
	char *payload;
	size_t payload_bytes;
	char *body;              /* the worker's copy of the payload */
	void **node;             /* the parsed tree, node[0] the root */
	size_t n_nodes;
	uint64_t tree_bytes;     /* node array + nodes, for the live accounting */
	void *chunk[FE_MAX_CHUNKS];
	unsigned n_chunks;
	uint64_t chunk_bytes;    /* sum of the chunks' sizes: the response */
};

/* Ring of request pointers; cap (the concurrency) bounds len. */
struct fe_queue {
	struct fe_request **slot;
	size_t cap, head, len;
};

/*
 * The worker pool and the queues between it and the dispatcher.  Workers
 * pop `work`, run the task, push `done`, then signal have_done and, when
 * notify_fd >= 0, add 1 to that eventfd (the --listen dispatcher polls it).
 */
struct fe_server {
	const struct fe_opts *opt;
	pthread_mutex_t lock;
	pthread_cond_t have_work;    /* work queue non-empty or stopping */
	pthread_cond_t have_done;    /* done queue non-empty */
	struct fe_queue work, done;  /* shared, under lock */
	struct fe_queue held;        /* dispatcher only: parsed, by deadline */
	int stopping;
	int notify_fd;               /* eventfd, or -1 */
	struct mt_sim_thread *thread;
	size_t n_threads;
	/* The model's own accounting (requested bytes), at phase granularity. */
	_Atomic uint64_t live_bytes, peak_bytes;
};

/* malloc that prints "out of memory" and _exits 1 on failure; any thread. */
void *fe_malloc(size_t bytes);

/* Fills the payload text template from seed; call once before serving. */
void fe_text_init(uint64_t seed);

/* Copies n bytes of the text template into dst, starting at offset off. */
void fe_fill(char *dst, size_t n, uint64_t off);

/* The model's live-heap accounting (bytes); any thread. */
void fe_live_add(struct fe_server *s, uint64_t bytes);
void fe_live_sub(struct fe_server *s, uint64_t bytes);

/* Ring operations; the caller serialises access and keeps len within cap. */
void fe_queue_push(struct fe_queue *q, struct fe_request *rq);
struct fe_request *fe_queue_pop(struct fe_queue *q);
struct fe_request *fe_queue_peek(const struct fe_queue *q);

/*
 * Sets up s for opt (queues of opt->concurrency slots, lock, conditions)
 * and starts the workers (opt->workers, or opt->concurrency if 0), on
 * stacks the workload maps when own_stacks (no DTV is left at exit), else
 * on glibc's.  notify_fd as in struct fe_server.  Returns 0, or -1 after
 * printing why (the workers that did start are running: call fe_pool_stop).
 */
int fe_pool_start(struct fe_server *s, const struct fe_opts *opt, int notify_fd, int own_stacks);

/* Stops and joins the workers (the work queue must be empty), frees what fe_pool_start made. */
void fe_pool_stop(struct fe_server *s);

/* Queues rq for its next task (rq->stage) and wakes a worker. */
void fe_submit(struct fe_server *s, struct fe_request *rq);

/*
 * A new request: id, stage PARSE, a payload of `bytes` (unfilled: the
 * caller fills it).  The dispatcher owns it; fe_request_free frees it.
 */
struct fe_request *fe_request_alloc(struct fe_server *s, uint64_t id, size_t bytes);

/*
 * The sizes of rq's response chunks (rq->n_chunks of them, after RESPOND)
 * into size[]: drawn again from the request's generator, as RESPOND drew
 * them, so the request itself stays the in-process model's size.
 */
void fe_chunk_sizes(const struct fe_server *s, const struct fe_request *rq, size_t *size);

/* Frees rq's response chunks, payload and rq itself (its tree and body are gone by then). */
void fe_request_free(struct fe_server *s, struct fe_request *rq);

/* Hands every held request whose hold has ended to a worker to respond. */
void fe_release_due(struct fe_server *s);

/* Serves over TCP at opt->listen until SIGTERM/SIGINT (frontend_net.c); exit status. */
int fe_net_run(const struct fe_opts *opt);

#endif
