/*
 * Start and end of recording.
 *
 * Start is lazy: the first hooked call in the process (which may come from
 * another library's constructor, before ours ran) resolves the next
 * allocator and calls mt_init(), which opens the trace.  Our constructor
 * then starts the writer thread and removes the recorder from LD_PRELOAD,
 * so programs this one starts are not recorded.
 *
 * End: exit (our destructor), _exit and exec call mt_finish(), which stops
 * recording, waits for threads inside a hook, flushes every thread and
 * closes the trace.  A fork child does not record (its trace would be the
 * parent's file): the atfork child handler switches it off.
 */
#include <linux/membarrier.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "record.h"

volatile int mt_state;
pid_t mt_pid;
int mt_trim_probe;
static int membarrier_ok;
static int writer_started;

static void fork_child(void)
{
	mt_state = MT_OFF;
	mt_writer_child_reset();
}

static char trace_file[4096];

const char *mt_trace_file(void) { return trace_file; }

/* MEMTRIAGE_OUTPUT, or memtriage.PID.trace; kept for an exec of this process. */
static const char *trace_path(void)
{
	const char *out = getenv("MEMTRIAGE_OUTPUT");
	if (out && *out && strlen(out) < sizeof trace_file)
		strcpy(trace_file, out);
	else
		snprintf(trace_file, sizeof trace_file, "memtriage.%d.trace", (int)getpid());
	return trace_file;
}

void mt_init(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	mt_depth++;
	mt_pid = getpid();
	uintptr_t lo = 0, hi = 0;
	mt_modules_self_range((const void *)&mt_init, &lo, &hi);
	mt_stack_init(lo, hi);
	mt_thread_init();
	const char *probe = getenv("MEMTRIAGE_TRIM_PROBE");
	mt_trim_probe = !probe ? 0 : !strcmp(probe, "markers") ? 2 : 1;
	const char *path = trace_path();
	int r = mt_writer_open(path);
	if (r < 0) {
		mt_diag("cannot open the trace file; not recording", strerror(-r));
		mt_depth--;
		return;
	}
	pthread_atfork(NULL, NULL, fork_child);
	membarrier_ok = syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
	mt_state = MT_RECORDING;
	mt_depth--;
}

static char saved_preload[4096];

const char *mt_saved_preload(void) { return saved_preload[0] ? saved_preload : NULL; }

/* Removes the recorder's entry from LD_PRELOAD in place (setenv would allocate). */
static void unset_self_preload(void)
{
	extern char **environ;
	for (char **e = environ; e && *e; e++) {
		if (strncmp(*e, "LD_PRELOAD=", 11))
			continue;
		if (strlen(*e + 11) < sizeof saved_preload)
			strcpy(saved_preload, *e + 11);
		char *s = *e + 11, *w = s;
		while (*s) {
			size_t n = strcspn(s, ": ");
			const char *base = s;
			for (size_t i = 0; i < n; i++)
				if (s[i] == '/')
					base = s + i + 1;
			int self = (size_t)(s + n - base) >= 15 && !strncmp(base, "libmemtriage.so", 15);
			if (!self) {
				if (w != *e + 11)
					*w++ = ' ';
				memmove(w, s, n);
				w += n;
			}
			s += n;
			while (*s == ':' || *s == ' ')
				s++;
		}
		*w = 0;
		if (!*(*e + 11))
			unsetenv("LD_PRELOAD");  /* it held the recorder alone */
		return;
	}
}

/*
 * The program sees the environment it would have had without the recorder:
 * LD_PRELOAD without it (so its children are not recorded), and no
 * MEMTRIAGE_OUTPUT.  unsetenv shifts environ in place; it does not allocate.
 */
__attribute__((constructor)) static void mt_ctor(void)
{
	unset_self_preload();
	mt_bootstrap();
	unsetenv("MEMTRIAGE_OUTPUT");
	unsetenv("MEMTRIAGE_TRIM_PROBE");
	if (mt_state == MT_RECORDING && !writer_started) {
		writer_started = 1;
		mt_writer_detect_allocator();
		mt_modules_scan();
		if (mt_writer_start() < 0)
			mt_diag("cannot start the writer thread; writing at exit only", NULL);
	}
}

/* Waits (bounded) until no other thread is inside a hook. */
static void quiesce(void)
{
	if (membarrier_ok)
		syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
	else
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (int spin = 0; spin < 10000; spin++) {
		if (!mt_thread_any_in_hook())
			return;
		sched_yield();
	}
}

void mt_finish(enum mt_end_reason why)
{
	static int finishing;
	if (__atomic_exchange_n(&finishing, 1, __ATOMIC_ACQ_REL))
		return;
	if (mt_state != MT_RECORDING)
		return;
	mt_depth++;
	if (mt_trim_probe && why == MT_END_EXIT)
		mt_writer_trim_probe();  /* before recording stops: other threads may still run */
	mt_state = MT_STOPPED;
	quiesce();
	mt_thread_flush_all();
	mt_writer_stop(why);
	mt_depth--;
}

__attribute__((destructor)) static void mt_dtor(void)
{
	mt_finish(MT_END_EXIT);
}
