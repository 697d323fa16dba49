/*
 * Internal header of the recorder, libmemtriage.so (LD_PRELOAD).
 *
 * Data flow: a hook (hooks.c) calls the next allocator, captures the call
 * stack (stack.c), and appends one event to its thread's buffer
 * (thread.c).  A full buffer goes to the writer thread (writer.c), which
 * packs buffers and small records into blocks, compresses each block with
 * zstd and appends it to the trace file.  init.c starts and stops all of
 * it; modules.c reports loaded ELF objects for offline symbolization.
 *
 * Rules every file here keeps (see STYLE.md): the hook path never calls
 * malloc (own memory comes from mt_mem_alloc, i.e. mmap), takes no lock in
 * the common case, keeps errno, and marks the thread as "inside the
 * recorder" (tls depth) before calling anything that may allocate, so that
 * such allocations pass straight to the real allocator unrecorded.
 */
#ifndef MT_RECORD_H
#define MT_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include "trace/format.h"
#include "unwind.h"

#define MT_LIKELY(x)   __builtin_expect(!!(x), 1)
#define MT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MT_COLD        __attribute__((noinline, cold))
#define MT_EXPORT      __attribute__((visibility("default")))

/* ---- limits: every growable structure of the recorder has one ---------- */
#define MT_MAX_FRAMES        256           /* deeper stacks keep their innermost frames */
#define MT_THREAD_BUF_BYTES  (128u << 10)  /* one thread's event chunk */
#define MT_EVENT_ROOM        96            /* worst-case bytes of one event */
#define MT_BLOCK_TARGET      (1u << 20)    /* raw bytes per compressed block */
#define MT_SIDE_BYTES        (256u << 10)  /* small records waiting for the writer */
#define MT_NODE_CACHE_SLOTS  (1u << 18)    /* call-stack trie dedup cache (16 B each: 4 MiB) */
#define MT_STACK_CACHE_SLOTS 4096          /* per-thread whole-stack cache, 2-way */
#define MT_BOOT_POOL_BYTES   (64u << 10)   /* allocations served before dlsym works */
#define MT_MAX_MODULES       4096
#define MT_ZSTD_LEVEL        3             /* writer.c: compression_level() */
#define MT_ZSTD_LEVEL_FAST   1

/* ---- global state (init.c) --------------------------------------------- */
enum mt_state {
	MT_OFF = 0,        /* not initialised yet, or not recording (fork child) */
	MT_RECORDING,
	MT_STOPPED,        /* trace finished (exit, exec); hooks pass through */
};
extern volatile int mt_state;
extern pid_t mt_pid;                    /* pid of the recorded process */
/* MEMTRIAGE_TRIM_PROBE: 0 off, 1 at the end, 2 at the end and at each marker. */
extern int mt_trim_probe;

/* The next allocator's entry points, found with dlsym(RTLD_NEXT). */
struct mt_real {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void *(*reallocarray)(void *, size_t, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
};
extern struct mt_real mt_real;

/* Resolves mt_real and initialises, if no hooked call did yet (hooks.c). */
void mt_bootstrap(void);
/* Once per process: resolves mt_real, opens the trace, starts the writer. */
void mt_init(void);
/* LD_PRELOAD as it was at start (the recorder included), for exec; NULL if unknown. */
const char *mt_saved_preload(void);
/* The trace file's path (MEMTRIAGE_OUTPUT as it was at start). */
const char *mt_trace_file(void);
/* Finishes the trace (flushes every thread, writes END); idempotent. */
void mt_finish(enum mt_end_reason why);

/* ---- per-thread state (thread.c) ---------------------------------------- */
struct mt_thread {
	uint8_t *buf;            /* chunk being filled; starts with mt_events_header */
	uint8_t *pos, *limit;    /* write position; limit leaves MT_EVENT_ROOM */
	uint64_t t_first, t_last;/* ticks of the chunk's first and last event */
	uint64_t prev_ptr;       /* delta bases, reset per chunk */
	uint64_t prev_node, prev_ip;
	uint32_t n_events;
	uint64_t seq;            /* events written by this thread so far */
	uint32_t idx;            /* thread index in the trace */
	pid_t tid;
	volatile int in_hook;    /* 1 while appending; read by mt_finish */
	int dead;                /* thread exited; buffer already flushed */
	/* stack capture state (stack.c) */
	struct mt_unwind_thread unw;         /* unwinder state: rule memo of the last capture */
	uint64_t frames[MT_MAX_FRAMES];
	uint32_t last_n;                     /* frames of the last trie walk */
	uint64_t last_ips[MT_MAX_FRAMES];    /* outermost first */
	uint32_t last_ids[MT_MAX_FRAMES];    /* node id per depth, outermost first */
	struct mt_scache_slot { uint64_t hash; uint32_t id, n; } scache[MT_STACK_CACHE_SLOTS]; /* 2-way */
	struct mt_thread *next;  /* registry list */
};

/* Recursion guard: > 0 while this thread runs recorder code. */
extern __thread int mt_depth;
extern __thread struct mt_thread *mt_self;

/* Returns this thread's state, creating it on first use; NULL if impossible. */
struct mt_thread *mt_thread_attach(void) MT_COLD;
/* Hands the thread's chunk to the writer and starts a new one. */
void mt_thread_flush(struct mt_thread *t) MT_COLD;
/* Flushes every live thread (at finish, other threads quiesced). */
void mt_thread_flush_all(void);
/* Registry lock, taken around fork. */
void mt_thread_lock(void);
void mt_thread_unlock(void);
void mt_thread_init(void);
uint32_t mt_thread_count(void);
/* 1 if a thread other than the caller is inside a hook (for mt_finish). */
int mt_thread_any_in_hook(void);

/* ---- stacks (stack.c) ---------------------------------------------------- */
/* Sets the address range of the recorder's own code (frames to drop). */
void mt_stack_init(uintptr_t self_lo, uintptr_t self_hi);
/*
 * Captures the caller's stack, interns it in the trie (appending node
 * definitions to t's chunk) and returns the innermost node id, 0 if none.
 */
uint32_t mt_stack_capture(struct mt_thread *t);
uint64_t mt_stack_nodes(void);

/* ---- writer (writer.c) --------------------------------------------------- */
int mt_writer_open(const char *path);            /* 0 or -errno */
void mt_writer_submit(uint8_t *chunk);           /* takes a full thread chunk */
uint8_t *mt_writer_get_buffer(void);             /* an empty chunk buffer, NULL on OOM */
/* Appends one small record (kind, payload) for the writer; thread-safe. */
void mt_writer_record(uint8_t kind, const uint8_t *payload, size_t len);
int mt_writer_start(void);                       /* starts the writer thread */
void mt_writer_stop(enum mt_end_reason why);     /* drains, writes STATS+END, closes */
void mt_writer_lock(void);                       /* around fork */
void mt_writer_unlock(void);
void mt_writer_child_reset(void);                /* in a fork child: forget the file */
/* Finds whether the next allocator is glibc's (mallinfo2, malloc_info, trim); once, from the constructor. */
void mt_writer_detect_allocator(void);
/* A malloc_info(3) snapshot now, from any thread (glibc only; markers). */
void mt_writer_malloc_info_now(void);
/* malloc_trim(0) with RSS before and after, as a sample record (glibc only). */
void mt_writer_trim_probe(void);

/* ---- modules (modules.c) ------------------------------------------------- */
/* Emits MT_REC_MODULE / MT_REC_MODULE_UNLOAD for changes since the last call. */
void mt_modules_scan(void);
/* Address range of the module holding `addr` (for the recorder itself). */
int mt_modules_self_range(const void *addr, uintptr_t *lo, uintptr_t *hi);
/* Called for each new stack node: rescans when ip is in no known module. */
void mt_modules_note_ip(uint64_t ip);

/* ---- own memory (mem.c) --------------------------------------------------- */
void *mt_mem_alloc(size_t bytes);    /* zeroed, page-granular mmap; NULL on failure */
void mt_mem_free(void *p, size_t bytes);
uint64_t mt_mem_current(void);
uint64_t mt_mem_peak(void);
/* Writes a diagnostic line to stderr without allocating (capped count). */
void mt_diag(const char *msg, const char *detail);

/* ---- time ------------------------------------------------------------------ */
/*
 * Ticks: the x86 TSC (constant and synchronised across cores on the machines
 * we target; the writer records (ticks, ns) pairs so the reader maps them).
 *
 * mt_ticks_before() stamps a free before the real free: a plain RDTSC is
 * enough, because it executes before it retires, it retires before every
 * later instruction, and the free's stores become visible only after they
 * retire; so the stamp precedes the moment another thread can see the block.
 * mt_ticks_after() stamps an allocation after the allocator returned: RDTSCP
 * waits until earlier instructions executed and earlier loads are globally
 * visible, so the stamp follows the load that found the block (a plain RDTSC
 * could run ahead of it).  Intel SDM vol. 2B, RDTSC and RDTSCP; measured here:
 * RDTSC 8.5 ns, RDTSCP 16.4 ns, RDTSC+LFENCE 14.5 ns on the 2-core EPYC.
 */
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define MT_TICKS_ARE_TSC 1
static inline uint64_t mt_ticks_before(void)
{
	return __rdtsc();
}
static inline uint64_t mt_ticks_after(void)
{
	unsigned aux;
	return __rdtscp(&aux);
}
#else
#include <time.h>
#define MT_TICKS_ARE_TSC 0
static inline uint64_t mt_ticks_now_(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#define mt_ticks_before mt_ticks_now_
#define mt_ticks_after mt_ticks_now_
#endif

/* Little helpers for small records. */
#include "trace/varint.h"
static inline uint8_t *mt_put_str(uint8_t *p, const char *s, size_t max)
{
	size_t n = 0;
	while (s && s[n] && n < max)
		n++;
	p = mt_put_varint(p, n);
	for (size_t i = 0; i < n; i++)
		*p++ = (uint8_t)s[i];
	return p;
}

#endif
