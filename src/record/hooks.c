/*
 * The interposed allocation functions.  The whole malloc family lives in
 * this one file (musl's rule: replace all of it or none).
 *
 * Each hook: (1) if the next allocator is not known yet, resolve it, and
 * serve dlsym's own early calloc from a static pool; (2) enter() decides
 * whether to record (recording on, not nested inside the recorder); (3)
 * calls the next allocator; (4) appends one event; (5) restores errno.
 * A free is stamped before the real free, an allocation after the real
 * call returns: that is what lets the reader order a block freed on one
 * thread and handed out again on another (docs/trace-format.md).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "record.h"

struct mt_real mt_real;

/* ---- bootstrap pool: dlsym may calloc before mt_real is known ---------- */
static uint8_t boot_pool[MT_BOOT_POOL_BYTES] __attribute__((aligned(64)));
static size_t boot_used;
static int resolving;

static int in_boot_pool(const void *p)
{
	return (const uint8_t *)p >= boot_pool && (const uint8_t *)p < boot_pool + sizeof boot_pool;
}

/* Each pool block: 16-byte header holding its size, then the data. */
static void *boot_alloc(size_t n, size_t align)
{
	if (align < 16)
		align = 16;
	size_t start = (boot_used + 16 + align - 1) & ~(align - 1);
	if (n > sizeof boot_pool || start + n > sizeof boot_pool) {
		mt_diag("bootstrap pool exhausted", NULL);
		return NULL;
	}
	*(size_t *)(boot_pool + start - 16) = n;
	boot_used = start + n;
	return boot_pool + start;  /* static storage is zeroed and never reused */
}

static size_t boot_size(const void *p) { return *(const size_t *)((const uint8_t *)p - 16); }

#define RESOLVE(name) mt_real.name = (__typeof__(mt_real.name))dlsym(RTLD_NEXT, #name)

/* Finds the next allocator.  Until it is done, hooks use the pool. */
static MT_COLD void resolve_real(void)
{
	if (resolving)
		return;
	resolving = 1;
	RESOLVE(calloc);
	RESOLVE(free);
	RESOLVE(realloc);
	RESOLVE(reallocarray);
	RESOLVE(posix_memalign);
	RESOLVE(aligned_alloc);
	RESOLVE(memalign);
	RESOLVE(valloc);
	RESOLVE(pvalloc);
	RESOLVE(malloc);  /* last: its presence means "all resolved" */
	resolving = 0;
	if (!mt_real.malloc) {
		mt_diag("cannot find the next malloc with dlsym", dlerror());
		return;
	}
	mt_init();
}

static inline int ready(void)
{
	if (MT_LIKELY(mt_real.malloc != NULL))
		return 1;
	resolve_real();
	return mt_real.malloc != NULL;
}

void mt_bootstrap(void)
{
	(void)ready();
}

/* ---- entering and leaving the recorder --------------------------------- */
__thread int mt_depth __attribute__((tls_model("initial-exec")));

/*
 * Returns the thread to record into, or NULL to pass the call through.
 * in_hook is published before mt_state is re-read, so mt_finish (which
 * sets the state, then issues membarrier, then reads in_hook) either sees
 * us inside or we see it stopping.
 */
static inline struct mt_thread *enter(void)
{
	if (MT_UNLIKELY(mt_state != MT_RECORDING) || mt_depth)
		return NULL;
	struct mt_thread *t = mt_self;
	if (MT_UNLIKELY(!t) && !(t = mt_thread_attach()))
		return NULL;
	mt_depth++;
	t->in_hook = 1;
	__asm__ volatile("" ::: "memory");
	if (MT_UNLIKELY(mt_state != MT_RECORDING)) {
		t->in_hook = 0;
		mt_depth--;
		return NULL;
	}
	return t;
}

static inline void leave(struct mt_thread *t)
{
	__atomic_store_n(&t->in_hook, 0, __ATOMIC_RELEASE);
	mt_depth--;
}

/* ---- event encoding (format: src/trace/format.h) ----------------------- */
static inline uint8_t *put_time(struct mt_thread *t, uint8_t *p, uint64_t now)
{
	if (MT_UNLIKELY(t->t_first == 0))  /* first timed event of the chunk (nodes carry no time) */
		t->t_first = t->t_last = now;
	uint64_t dt = now > t->t_last ? now - t->t_last : 0;  /* never backwards */
	t->t_last += dt;
	return mt_put_varint(p, dt);
}

static inline void ensure_room(struct mt_thread *t)
{
	if (MT_UNLIKELY(t->pos >= t->limit))
		mt_thread_flush(t);
}

static inline void log_alloc(struct mt_thread *t, uint8_t tag, void *ptr, size_t size)
{
	uint32_t stack = mt_stack_capture(t);
	uint64_t now = mt_ticks_after();
	ensure_room(t);
	uint8_t *p = t->pos;
	*p++ = tag;
	p = put_time(t, p, now);
	p = mt_put_varint(p, size);
	p = mt_put_varint(p, stack);
	p = mt_put_svarint(p, (int64_t)((uint64_t)(uintptr_t)ptr - t->prev_ptr));
	t->prev_ptr = (uintptr_t)ptr;
	t->pos = p;
	t->n_events++;
}

static inline void log_free(struct mt_thread *t, void *ptr)
{
	uint64_t now = mt_ticks_before();
	ensure_room(t);
	uint8_t *p = t->pos;
	*p++ = MT_EV_FREE;
	p = put_time(t, p, now);
	p = mt_put_svarint(p, (int64_t)((uint64_t)(uintptr_t)ptr - t->prev_ptr));
	t->prev_ptr = (uintptr_t)ptr;
	t->pos = p;
	t->n_events++;
}

/* The realloc event carries both stamps; see format.h. */
static void log_realloc(struct mt_thread *t, uint8_t tag, uint64_t before, void *old,
                        void *ptr, size_t size)
{
	uint32_t stack = mt_stack_capture(t);
	uint64_t after = mt_ticks_after();
	ensure_room(t);
	uint8_t *p = t->pos;
	*p++ = tag;
	p = put_time(t, p, before);
	p = mt_put_svarint(p, (int64_t)((uint64_t)(uintptr_t)old - t->prev_ptr));
	p = put_time(t, p, after);
	p = mt_put_varint(p, size);
	p = mt_put_varint(p, stack);
	p = mt_put_svarint(p, (int64_t)((uint64_t)(uintptr_t)ptr - (uint64_t)(uintptr_t)old));
	t->prev_ptr = (uintptr_t)ptr;
	t->pos = p;
	t->n_events++;
}

/* ---- the malloc family ---------------------------------------------------- */
MT_EXPORT void *malloc(size_t size)
{
	if (MT_UNLIKELY(!ready()))
		return boot_alloc(size, 16);
	struct mt_thread *t = enter();
	if (!t)
		return mt_real.malloc(size);
	void *p = mt_real.malloc(size);
	int e = errno;
	log_alloc(t, MT_EV_MALLOC, p, size);
	leave(t);
	errno = e;
	return p;
}

MT_EXPORT void free(void *ptr)
{
	if (!ptr)
		return;
	if (MT_UNLIKELY(in_boot_pool(ptr)))
		return;
	if (MT_UNLIKELY(!ready()))
		return;  /* cannot happen for a non-pool pointer; be safe */
	struct mt_thread *t = enter();
	if (!t) {
		mt_real.free(ptr);
		return;
	}
	int e = errno;
	log_free(t, ptr);
	leave(t);
	mt_real.free(ptr);
	errno = e;
}

MT_EXPORT void *calloc(size_t n, size_t size)
{
	if (MT_UNLIKELY(!ready()))
		return boot_alloc(n * size, 16);  /* pool memory is zero */
	struct mt_thread *t = enter();
	if (!t)
		return mt_real.calloc(n, size);
	void *p = mt_real.calloc(n, size);
	int e = errno;
	size_t total;
	if (__builtin_mul_overflow(n, size, &total))
		total = SIZE_MAX;
	log_alloc(t, MT_EV_CALLOC, p, total);
	leave(t);
	errno = e;
	return p;
}

/* realloc of a pool block: move it into the real heap (its old copy stays). */
static MT_COLD void *boot_realloc(void *ptr, size_t size)
{
	void *p = malloc(size);
	if (p) {
		size_t old = boot_size(ptr);
		memcpy(p, ptr, old < size ? old : size);
	}
	return p;
}

MT_EXPORT void *realloc(void *ptr, size_t size)
{
	if (MT_UNLIKELY(!ready()))
		return ptr ? NULL : boot_alloc(size, 16);
	if (MT_UNLIKELY(ptr && in_boot_pool(ptr)))
		return boot_realloc(ptr, size);
	struct mt_thread *t = enter();
	if (!t)
		return mt_real.realloc(ptr, size);
	uint64_t before = mt_ticks_before();
	void *p = mt_real.realloc(ptr, size);
	int e = errno;
	log_realloc(t, MT_EV_REALLOC, before, ptr, p, size);
	leave(t);
	errno = e;
	return p;
}

MT_EXPORT void *reallocarray(void *ptr, size_t n, size_t size)
{
	if (MT_UNLIKELY(!ready()))
		return NULL;
	if (MT_UNLIKELY(ptr && in_boot_pool(ptr))) {
		size_t total;
		if (__builtin_mul_overflow(n, size, &total)) {
			errno = ENOMEM;
			return NULL;
		}
		return boot_realloc(ptr, total);
	}
	struct mt_thread *t = enter();
	if (!t)
		return mt_real.reallocarray(ptr, n, size);
	uint64_t before = mt_ticks_before();
	void *p = mt_real.reallocarray(ptr, n, size);
	int e = errno;
	size_t total;
	if (__builtin_mul_overflow(n, size, &total))
		total = SIZE_MAX;
	log_realloc(t, MT_EV_REALLOCARRAY, before, ptr, p, total);
	leave(t);
	errno = e;
	return p;
}

MT_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	if (MT_UNLIKELY(!ready())) {
		*out = boot_alloc(size, align);
		return *out ? 0 : ENOMEM;
	}
	struct mt_thread *t = enter();
	if (!t)
		return mt_real.posix_memalign(out, align, size);
	int r = mt_real.posix_memalign(out, align, size);
	int e = errno;
	log_alloc(t, MT_EV_POSIX_MEMALIGN, r == 0 ? *out : NULL, size);
	leave(t);
	errno = e;
	return r;
}

/* The remaining aligned variants share one shape. */
#define ALIGNED_HOOK(name, tag, params, args, boot)                    \
	MT_EXPORT void *name params                                    \
	{                                                              \
		if (MT_UNLIKELY(!ready()))                             \
			return boot;                                   \
		struct mt_thread *t = enter();                         \
		if (!t)                                                \
			return mt_real.name args;                      \
		void *p = mt_real.name args;                           \
		int e = errno;                                         \
		log_alloc(t, tag, p, size);                            \
		leave(t);                                              \
		errno = e;                                             \
		return p;                                              \
	}

ALIGNED_HOOK(aligned_alloc, MT_EV_ALIGNED_ALLOC, (size_t align, size_t size), (align, size),
             boot_alloc(size, align))
ALIGNED_HOOK(memalign, MT_EV_MEMALIGN, (size_t align, size_t size), (align, size),
             boot_alloc(size, align))
ALIGNED_HOOK(valloc, MT_EV_VALLOC, (size_t size), (size), boot_alloc(size, 4096))
ALIGNED_HOOK(pvalloc, MT_EV_PVALLOC, (size_t size), (size), boot_alloc(size, 4096))

/* ---- process lifecycle: exec and _exit end the trace -------------------- */
/*
 * exec in the recorded process ends its trace and the new program is
 * recorded again, into the same file: wrapper scripts and version-manager
 * shims (pyenv's `python3` is a bash script that execs the interpreter)
 * would otherwise leave only the wrapper's trace.  The recorder removed
 * itself from LD_PRELOAD at start (so children started with fork+exec or
 * posix_spawn are not recorded); for an exec of this same process, the
 * environment passed on gets LD_PRELOAD back.  A fork child is not
 * recorded and passes the environment on untouched.
 */
static int is_recorded_process(void)
{
	/* A vfork child shares our memory but has its own pid: leave it alone. */
	return mt_state == MT_RECORDING && getpid() == mt_pid;
}

#define MT_EXEC_MAX_ENV 1024  /* 8 KiB of stack: exec may run on a small thread stack */

/*
 * Builds envp for an exec of this process: the variables the recorder took
 * out of the environment at start (LD_PRELOAD's entry, MEMTRIAGE_OUTPUT,
 * MEMTRIAGE_TRIM_PROBE) go back in, so the new program is recorded the same
 * way.  `out` receives the array, `buf` the strings.
 */
static char *const *exec_env(char *const envp[], char **out, char *buf, size_t buf_len)
{
	const char *preload = mt_saved_preload();
	if (!preload || !envp)
		return envp;
	const char *probe = mt_trim_probe == 2 ? "markers" : mt_trim_probe ? "end" : NULL;
	size_t n = 0, w = 0;
	for (; envp[n] && w < MT_EXEC_MAX_ENV - 4; n++)
		if (strncmp(envp[n], "LD_PRELOAD=", 11) && strncmp(envp[n], "MEMTRIAGE_OUTPUT=", 17) &&
		    strncmp(envp[n], "MEMTRIAGE_TRIM_PROBE=", 21))
			out[w++] = envp[n];
	if (envp[n])
		return envp;  /* too many variables: pass them on unchanged */
	int len = snprintf(buf, buf_len, "LD_PRELOAD=%s%cMEMTRIAGE_OUTPUT=%s%cMEMTRIAGE_TRIM_PROBE=%s",
	                   preload, 0, mt_trace_file(), 0, probe ? probe : "");
	if (len < 0 || (size_t)len >= buf_len)
		return envp;
	char *output = buf + strlen(buf) + 1;
	out[w++] = buf;
	out[w++] = output;
	if (probe)
		out[w++] = output + strlen(output) + 1;
	out[w] = NULL;
	return out;
}

/* Runs before an exec; returns the environment the new program gets. */
static char *const *before_exec(char *const envp[], char **out, char *buf, size_t buf_len)
{
	if (!is_recorded_process())
		return envp;
	mt_finish(MT_END_EXEC);
	return exec_env(envp, out, buf, buf_len);
}

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef void (*exit_fn)(int) __attribute__((noreturn));

/* Every exec hook ends here, so the environment is rebuilt in one place. */
static int exec_common(const char *file, char *const argv[], char *const envp[], int search)
{
	static execve_fn real_execve, real_execvpe;
	if (!real_execve) {
		real_execve = (execve_fn)dlsym(RTLD_NEXT, "execve");
		real_execvpe = (execve_fn)dlsym(RTLD_NEXT, "execvpe");
	}
	char *env_out[MT_EXEC_MAX_ENV];
	char buf[2 * 4096 + 32];
	char *const *env = before_exec(envp, env_out, buf, sizeof buf);
	return (search ? real_execvpe : real_execve)(file, argv, env);
}

MT_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return exec_common(path, argv, envp, 0);
}

MT_EXPORT int execv(const char *path, char *const argv[])
{
	extern char **environ;
	return exec_common(path, argv, environ, 0);
}

MT_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	return exec_common(file, argv, envp, 1);
}

MT_EXPORT int execvp(const char *file, char *const argv[])
{
	extern char **environ;
	return exec_common(file, argv, environ, 1);
}

#define MT_EXECL_MAX_ARGS 4096
/* Collects execl-style arguments into an array on the stack. */
#define COLLECT_ARGS(argv, arg0, ap)                                         \
	char *argv[MT_EXECL_MAX_ARGS];                                       \
	size_t argc_ = 0;                                                    \
	argv[argc_++] = (char *)(arg0);                                      \
	while (argv[argc_ - 1] && argc_ < MT_EXECL_MAX_ARGS)                 \
		argv[argc_++] = va_arg(ap, char *);                          \
	if (argv[argc_ - 1]) {                                               \
		errno = E2BIG;                                               \
		va_end(ap);                                                  \
		return -1;                                                   \
	}

MT_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	COLLECT_ARGS(argv, arg, ap);
	va_end(ap);
	return execv(path, argv);
}

MT_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	COLLECT_ARGS(argv, arg, ap);
	va_end(ap);
	return execvp(file, argv);
}

MT_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	COLLECT_ARGS(argv, arg, ap);
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	return execve(path, argv, envp);
}

/*
 * dlclose: a library loaded later may reuse the address range, so the
 * unwinder's cached frame rules (keyed by address) are dropped, and the
 * module list is rescanned for the unload.  dlopen is not interposed: it
 * looks at its caller's address to choose the namespace and RUNPATH, and
 * would see ours; new modules are found when a stack reaches them.
 */
typedef int (*dlclose_fn)(void *);

MT_EXPORT int dlclose(void *handle)
{
	static dlclose_fn real;
	if (!real)
		real = (dlclose_fn)dlsym(RTLD_NEXT, "dlclose");
	int r = real(handle);
	mt_unwind_invalidate();
	if (mt_state == MT_RECORDING)
		mt_modules_scan();
	return r;
}

MT_EXPORT void _exit(int status)
{
	static exit_fn real;
	if (!real)
		real = (exit_fn)dlsym(RTLD_NEXT, "_exit");
	if (is_recorded_process())
		mt_finish(MT_END_EXIT);
	real(status);
}

MT_EXPORT void _Exit(int status)
{
	_exit(status);
}
