/*
 * Per-thread recorder state: the chunk buffer a thread appends events to,
 * its registration in the trace (MT_REC_THREAD), and its end.
 *
 * A thread's state is created on its first hooked call and found through
 * an initial-exec TLS pointer afterwards.  A pthread key destructor flushes
 * the chunk when the thread exits; allocations made by later TLS
 * destructors attach a fresh state, which the key destructor (re-armed)
 * flushes again.  States of exited threads are kept on a free list and
 * reused, so thousands of short-lived threads cost a bounded amount.
 */
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "record.h"

__thread struct mt_thread *mt_self __attribute__((tls_model("initial-exec")));

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mt_thread *live_threads;   /* registered and not exited */
static struct mt_thread *free_threads;   /* exited, reusable */
static uint32_t next_idx = 1;
static uint32_t n_threads_total;
static pthread_key_t exit_key;
static int key_ok;

static void thread_exit(void *arg);

void mt_thread_init(void)
{
	key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
}

void mt_thread_lock(void) { pthread_mutex_lock(&reg_lock); }
void mt_thread_unlock(void) { pthread_mutex_unlock(&reg_lock); }
uint32_t mt_thread_count(void) { return n_threads_total; }

/* Starts a fresh chunk in t->buf. */
static void chunk_reset(struct mt_thread *t)
{
	t->pos = t->buf + MT_EVENTS_HEADER_SIZE;
	t->limit = t->buf + MT_THREAD_BUF_BYTES - MT_EVENT_ROOM;
	t->n_events = 0;
	t->prev_ptr = t->prev_node = t->prev_ip = 0;
	t->t_first = t->t_last = 0;
}

static void emit_thread_record(struct mt_thread *t)
{
	uint8_t rec[64 + 16], *p = rec;
	char name[17] = "";
	prctl(PR_GET_NAME, name, 0, 0, 0);
	p = mt_put_varint(p, t->idx);
	p = mt_put_varint(p, (uint64_t)t->tid);
	p = mt_put_varint(p, mt_ticks_after());
	p = mt_put_str(p, name, 16);
	mt_writer_record(MT_REC_THREAD, rec, (size_t)(p - rec));
}

static struct mt_thread *take_state(void)
{
	struct mt_thread *t = free_threads;
	if (t) {
		free_threads = t->next;
		uint8_t *buf = t->buf;
		memset(t, 0, sizeof *t);
		t->buf = buf;
		return t;
	}
	t = mt_mem_alloc(sizeof *t);
	if (t && !(t->buf = mt_writer_get_buffer())) {
		mt_mem_free(t, sizeof *t);
		t = NULL;
	}
	return t;
}

struct mt_thread *mt_thread_attach(void)
{
	mt_depth++;
	pthread_mutex_lock(&reg_lock);
	struct mt_thread *t = take_state();
	if (t) {
		t->idx = next_idx++;
		t->tid = (pid_t)syscall(SYS_gettid);
		chunk_reset(t);
		t->next = live_threads;
		live_threads = t;
		n_threads_total++;
	}
	pthread_mutex_unlock(&reg_lock);
	if (t) {
		mt_unwind_thread_init(&t->unw);  /* reads the stack bounds; may malloc (guarded) */
		mt_self = t;
		if (key_ok)
			pthread_setspecific(exit_key, t);
		emit_thread_record(t);
	}
	mt_depth--;
	return t;
}

/* Fills the fixed chunk header in place (format.h: struct mt_events_header). */
static void chunk_seal(struct mt_thread *t)
{
	struct mt_events_header h;
	memset(&h, 0, sizeof h);
	h.kind = MT_REC_EVENTS;
	h.len = (uint32_t)(t->pos - t->buf - MT_EVENTS_HEADER_SIZE);
	h.thread_idx = t->idx;
	h.n_events = t->n_events;
	h.t_first = t->t_first;
	h.t_last = t->t_last;
	h.first_seq = t->seq;
	memcpy(t->buf, &h, sizeof h);
	t->seq += t->n_events;
}

void mt_thread_flush(struct mt_thread *t)
{
	if (t->n_events == 0)
		return;
	uint8_t *fresh = mt_writer_get_buffer();
	if (!fresh) {  /* out of memory: drop this chunk rather than crash */
		mt_diag("out of memory for trace buffers; events dropped", NULL);
		t->seq += t->n_events;
		chunk_reset(t);
		return;
	}
	chunk_seal(t);
	mt_writer_submit(t->buf);
	t->buf = fresh;
	chunk_reset(t);
}

void mt_thread_flush_all(void)
{
	pthread_mutex_lock(&reg_lock);
	for (struct mt_thread *t = live_threads; t; t = t->next)
		mt_thread_flush(t);
	pthread_mutex_unlock(&reg_lock);
}

static void unlink_live(struct mt_thread *t)
{
	for (struct mt_thread **pp = &live_threads; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			return;
		}
	}
}

/* pthread key destructor: the thread is exiting. */
static void thread_exit(void *arg)
{
	struct mt_thread *t = arg;
	if (!t || mt_self != t)
		return;
	mt_depth++;
	char name[17] = "";
	prctl(PR_GET_NAME, name, 0, 0, 0);
	uint8_t rec[96], *p = rec;
	p = mt_put_varint(p, t->idx);
	p = mt_put_str(p, name, 16);
	mt_writer_record(MT_REC_THREAD_NAME, rec, (size_t)(p - rec));
	p = rec;
	p = mt_put_varint(p, t->idx);
	p = mt_put_varint(p, mt_ticks_after());
	mt_writer_record(MT_REC_THREAD_EXIT, rec, (size_t)(p - rec));

	pthread_mutex_lock(&reg_lock);
	if (mt_state == MT_RECORDING)
		mt_thread_flush(t);
	unlink_live(t);
	t->next = free_threads;
	free_threads = t;
	pthread_mutex_unlock(&reg_lock);
	mt_self = NULL;
	mt_depth--;
}

int mt_thread_any_in_hook(void)
{
	int any = 0;
	pthread_mutex_lock(&reg_lock);
	for (struct mt_thread *t = live_threads; t && !any; t = t->next)
		any = t != mt_self && __atomic_load_n(&t->in_hook, __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&reg_lock);
	return any;
}
