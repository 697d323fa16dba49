/*
 * libmemtriage_trim.so: a remedy to try, not a recorder.  Preloaded into
 * a program, it calls glibc's malloc_trim(0) every MEMTRIAGE_TRIM_INTERVAL_MS
 * milliseconds (default 1000) from a thread of its own, so that memory
 * the arenas hold free goes back to the system without changing the
 * program.  `memtriage compare --configs trim` uses it.
 *
 * Why malloc_trim(0) and not MALLOC_TRIM_THRESHOLD_: the threshold only
 * trims the top of the main arena after a free; malloc_trim(0) walks
 * every arena and also releases whole free pages inside them with
 * MADV_DONTNEED (glibc 2.8 and later, malloc/malloc.c: mtrim()), which is
 * where per-thread arena retention sits.
 *
 * Cost: malloc_trim takes each arena's lock in turn while it walks its
 * free chunks (tens of ms on heaps of GBs), so allocations of the
 * program's threads wait meanwhile; a longer interval costs less.
 *
 * Guarantees: the thread blocks every signal (they keep going to the
 * program's threads), is detached, and never allocates after start;
 * errno is kept.  A child made by fork() starts its own thread
 * (pthread_atfork); exec'd programs get their own, as LD_PRELOAD stays.
 * Without glibc's malloc (another allocator preloaded before it),
 * malloc_trim is glibc's and finds nothing to trim.
 *
 * What it changes: the program is multi-threaded from its first
 * instruction, so calls that need a single-threaded process fail, as
 * they would with any such library: unshare(CLONE_NEWUSER) gives EINVAL
 * (unshare(2)).
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define TRIM_DEFAULT_MS 1000
#define TRIM_MIN_MS     1
#define TRIM_MAX_MS     (24 * 3600 * 1000)

static long interval_ms(void)
{
	const char *s = getenv("MEMTRIAGE_TRIM_INTERVAL_MS");
	char *end;
	if (!s || !*s)
		return TRIM_DEFAULT_MS;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < TRIM_MIN_MS || v > TRIM_MAX_MS)
		return TRIM_DEFAULT_MS;
	return v;
}

static void *trim_loop(void *arg)
{
	long ms = (long)(intptr_t)arg;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	for (;;) {
		struct timespec left = ts;
		while (nanosleep(&left, &left) && errno == EINTR)
			;
		malloc_trim(0);
	}
	return NULL;
}

static void trim_start(void)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t th;
	int saved = errno;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);   /* the thread inherits the full mask */
	if (pthread_attr_init(&attr) == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		pthread_create(&th, &attr, trim_loop, (void *)(intptr_t)interval_ms());
		pthread_attr_destroy(&attr);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
}

/*
 * At load, and again in each child of fork(): pre-fork servers (gunicorn,
 * nginx, PostgreSQL) do their work in forked children, where the parent's
 * thread does not exist.
 */
__attribute__((constructor)) static void trim_init(void)
{
	trim_start();
	pthread_atfork(NULL, NULL, trim_start);
}
