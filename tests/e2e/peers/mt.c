/*
 * peers/mt: a multi-threaded workload whose allocation totals are known
 * exactly, for tests/e2e/peers.sh (built there with gcc).
 *
 * Two worker threads each run N rounds (argv[1], default 20000): a round
 * frees the block in a random one of LOCAL slots and puts a new one there,
 * 16 B .. 2 KiB (xorshift, seeded per thread: the same sizes every run).
 * One free in four is handed to the other thread through a mutex-protected
 * ring and freed there (cross-thread frees; locally when the ring is
 * full).  Then each thread keeps the blocks of its first LEAK slots
 * (leaked), frees the rest, and after a barrier frees what the other
 * thread handed it.  After a second barrier each thread allocates BIG
 * blocks of BIG_SIZE bytes; a third barrier holds them all live at once
 * (the peak: 2 x 48 x 64 KiB = 6 MiB, while the churn can never hold more
 * than 2 x (LOCAL + RING) x 2 KiB = 2 MiB), then they are freed.
 *
 * Output goes through write(2) only (no stdio buffer is allocated).  stdout
 * gets the sum of the sizes freed (the same every run); stderr gets the
 * ground truth:
 *   TRUTH calls=C frees=F peak=P leaked=L leaked_blocks=B dtv=D
 * C, F, P and L count the program's own calls only.  glibc's pthread_create
 * also callocs one DTV per thread, D bytes, never freed while the thread's
 * stack stays cached (elf/dl-tls.c: 16 x (max TLS module id + 16)); D
 * depends on the libraries loaded, preloaded recorders included, so the
 * program computes it in the running process.
 */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOCAL 256
#define RING 256
#define LEAK 10
#define BIG 48
#define BIG_SIZE 65536

struct ring {
	pthread_mutex_t mu;
	void *buf[RING];
	unsigned head, tail;
};

struct tstat {
	long allocs, frees, leaked_blocks;
	long long leaked;
	uint64_t ck;
} __attribute__((aligned(64)));

static struct ring rings[2] = {
	{ .mu = PTHREAD_MUTEX_INITIALIZER },
	{ .mu = PTHREAD_MUTEX_INITIALIZER },
};
static struct tstat st[2];
static pthread_barrier_t bar;
static long rounds = 20000;

static uint64_t xs64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static __attribute__((noinline)) void *alloc_obj(struct tstat *s, size_t sz)
{
	uint64_t *p = malloc(sz);

	if (!p)
		abort();
	p[0] = sz; /* read back by whichever thread frees it */
	s->allocs++;
	return p;
}

static __attribute__((noinline)) void free_obj(struct tstat *s, void *p)
{
	s->ck += ((uint64_t *)p)[0];
	free(p);
	s->frees++;
}

static int push(struct ring *r, void *p)
{
	int ok = 0;

	pthread_mutex_lock(&r->mu);
	if (r->tail - r->head < RING) {
		r->buf[r->tail++ % RING] = p;
		ok = 1;
	}
	pthread_mutex_unlock(&r->mu);
	return ok;
}

static void drain(struct tstat *s, struct ring *r)
{
	void *batch[RING];
	unsigned n = 0;

	pthread_mutex_lock(&r->mu);
	while (r->head != r->tail)
		batch[n++] = r->buf[r->head++ % RING];
	pthread_mutex_unlock(&r->mu);
	for (unsigned i = 0; i < n; i++)
		free_obj(s, batch[i]);
}

static void *worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	struct tstat *s = &st[t];
	uint64_t rs = 0x1234567ull + 0x9E3779B97F4A7C15ull * (uint64_t)(t + 1);
	void *slot[LOCAL] = { 0 };
	void *big[BIG];

	for (long i = 0; i < rounds; i++) {
		uint64_t r = xs64(&rs);
		unsigned idx = (unsigned)(r % LOCAL);

		if (slot[idx] && !(((r >> 20) & 3) == 0 && push(&rings[1 - t], slot[idx])))
			free_obj(s, slot[idx]);
		unsigned e = 4 + (unsigned)((r >> 24) % 7); /* 16 B .. 2 KiB */
		size_t sz = ((size_t)1 << e) + ((r >> 32) & (((size_t)1 << e) - 1));
		slot[idx] = alloc_obj(s, sz);
		if ((i & 15) == 15)
			drain(s, &rings[t]);
	}
	for (unsigned i = 0; i < LOCAL; i++) {
		if (!slot[i])
			continue;
		if (i < LEAK) {
			s->leaked += (long long)((uint64_t *)slot[i])[0];
			s->leaked_blocks++;
		} else {
			free_obj(s, slot[i]);
		}
	}
	pthread_barrier_wait(&bar); /* the other thread pushes no more */
	drain(s, &rings[t]);
	pthread_barrier_wait(&bar); /* only the leaked blocks are live */
	for (int i = 0; i < BIG; i++)
		big[i] = alloc_obj(s, BIG_SIZE);
	pthread_barrier_wait(&bar); /* the peak */
	for (int i = 0; i < BIG; i++)
		free_obj(s, big[i]);
	return NULL;
}

static int max_tls_modid(struct dl_phdr_info *info, size_t size, void *arg)
{
	size_t *max = arg;

	(void)size;
	if (info->dlpi_tls_modid > *max)
		*max = info->dlpi_tls_modid;
	return 0;
}

static void out(int fd, const char *s)
{
	size_t n = strlen(s);

	while (n) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			exit(2);
		s += w;
		n -= (size_t)w;
	}
}

int main(int argc, char **argv)
{
	pthread_t th[2];
	char line[256];
	size_t modid = 0;

	if (argc > 1)
		rounds = atol(argv[1]);
	if (rounds < 1)
		return 2;
	pthread_barrier_init(&bar, NULL, 2);
	for (int t = 0; t < 2; t++)
		if (pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t))
			return 2;
	for (int t = 0; t < 2; t++)
		pthread_join(th[t], NULL);
	dl_iterate_phdr(max_tls_modid, &modid);

	long calls = st[0].allocs + st[1].allocs, frees = st[0].frees + st[1].frees;
	long long leaked = st[0].leaked + st[1].leaked;
	long leaked_blocks = st[0].leaked_blocks + st[1].leaked_blocks;
	snprintf(line, sizeof line, "%llu\n", (unsigned long long)(st[0].ck + st[1].ck));
	out(1, line);
	snprintf(line, sizeof line, "TRUTH calls=%ld frees=%ld peak=%lld leaked=%lld leaked_blocks=%ld dtv=%zu\n",
	         calls, frees, leaked + 2LL * BIG * BIG_SIZE, leaked, leaked_blocks, 16 * (modid + 14 + 2));
	out(2, line);
	return calls - frees == leaked_blocks ? 0 : 1;
}
