/*
 * The writer: one background thread that turns thread chunks and small
 * records into compressed blocks on disk, and samples the process.
 *
 * Threads hand over full chunks (mt_writer_submit) through a bounded
 * queue; when the writer lags, producers wait rather than grow memory
 * without limit.  Blocks are closed at MT_BLOCK_TARGET raw bytes or after
 * MT_BLOCK_MAX_AGE_MS, so a process killed with SIGKILL loses at most that
 * much besides what sat in thread buffers.
 *
 * zstd's memory comes from mmap through a custom allocator, so the
 * recorder never calls the malloc it observes and its size is counted.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY  /* ZSTD_customMem: zstd allocates through our mmap */
#include <zstd.h>
#include "record.h"
#include "trace/columns.h"

#define MT_QUEUE_MAX        64    /* chunks waiting for the writer (x 128 KiB) */
#define MT_POOL_MAX         64    /* empty chunk buffers kept for reuse */
#define MT_BLOCK_MAX_AGE_MS 1000
#define MT_CLOCK_EVERY_MS   1000
#define MT_DEFAULT_INTERVAL_MS 100
/* raw bytes a block may hold: the target plus one column chunk (or side buffer) */
#define MT_BLOCK_CAP (MT_BLOCK_TARGET + mt_columns_scratch_size(MT_THREAD_BUF_BYTES) + MT_SIDE_BYTES)

static pthread_mutex_t wlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wcond = PTHREAD_COND_INITIALIZER;   /* work for the writer */
static pthread_cond_t room = PTHREAD_COND_INITIALIZER;    /* space for producers */
static uint8_t *queue[MT_QUEUE_MAX];
static size_t q_len;
static uint8_t *pool[MT_POOL_MAX];
static size_t pool_len;
static uint8_t *side, *side_spare;
static size_t side_len;
static int quit, thread_running;
static pthread_t writer_thread;

/* Touched by the writer thread only (or by the finishing thread after join). */
static int fd = -1;
static uint8_t *block, *cblock;
static size_t block_len, cblock_cap;
static uint8_t *col_chunk, *col_scratch;  /* a chunk in column form, and its scratch */
static ZSTD_CCtx *cctx;
static uint64_t raw_total, written_total, events_total;
static uint64_t block_opened_ns, last_clock_ns, last_sample_ns;
static unsigned interval_ms = MT_DEFAULT_INTERVAL_MS;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- zstd memory through mmap ------------------------------------------ */
static void *zalloc(void *opaque, size_t n)
{
	uint8_t *p = mt_mem_alloc(n + 16);
	if (!p)
		return NULL;
	*(size_t *)p = n + 16;
	return p + 16;
}

static void zfree(void *opaque, void *ptr)
{
	if (ptr)
		mt_mem_free((uint8_t *)ptr - 16, *(size_t *)((uint8_t *)ptr - 16));
}

/* ---- file output ---------------------------------------------------------- */
static int write_all(const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
		written_total += (uint64_t)w;
	}
	return 0;
}

/*
 * zstd level for the next block: MT_ZSTD_LEVEL (3: 14% smaller than level 1
 * on a churn block, at 244 instead of 436 MB/s on the 2-core EPYC) while
 * the machine has CPU to spare, MT_ZSTD_LEVEL_FAST when chunks queue up or
 * when the process already keeps more than MT_BUSY_FAST of the CPUs busy:
 * then every cycle the writer spends is taken from the program (mt, two
 * busy threads on two cores: 0.35 s of its 1.75 s run at level 3).
 */
#define MT_BUSY_FAST 0.7

static size_t read_file(const char *path, char *buf, size_t len);

static double cpu_busy;  /* share of all CPUs the process used over the last sample period */

static int compression_level(void)
{
	pthread_mutex_lock(&wlock);
	size_t backlog = q_len;
	pthread_mutex_unlock(&wlock);
	return backlog > MT_QUEUE_MAX / 4 || cpu_busy > MT_BUSY_FAST ? MT_ZSTD_LEVEL_FAST : MT_ZSTD_LEVEL;
}

/* Updates cpu_busy from /proc/self/stat (utime + stime, fields 14 and 15, in clock ticks). */
static void measure_busy(void)
{
	static uint64_t last_cpu, last_ns;
	static long ncpu, hz;
	char text[1024];
	if (!ncpu) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		hz = sysconf(_SC_CLK_TCK);
	}
	if (!read_file("/proc/self/stat", text, sizeof text) || ncpu <= 0 || hz <= 0)
		return;
	const char *p = strrchr(text, ')');  /* the command name may hold spaces */
	for (int field = 2; p && field < 14; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return;
	uint64_t ut = strtoull(p + 1, (char **)&p, 10);
	uint64_t st = strtoull(p + 1, NULL, 10);
	uint64_t cpu = ut + st, now = mono_ns();
	if (last_ns && now > last_ns)
		cpu_busy = (double)(cpu - last_cpu) / (double)hz * 1e9 / (double)(now - last_ns) / (double)ncpu;
	last_cpu = cpu;
	last_ns = now;
}

/* Compresses the pending raw records into one block and writes it. */
static void block_close(void)
{
	if (!block_len || fd < 0) {
		block_len = 0;
		return;
	}
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, compression_level());
	size_t c = ZSTD_compress2(cctx, cblock + MT_BLOCK_HEADER_SIZE, cblock_cap - MT_BLOCK_HEADER_SIZE,
	                          block, block_len);
	if (ZSTD_isError(c)) {
		mt_diag("compression failed", ZSTD_getErrorName(c));
		block_len = 0;
		return;
	}
	struct mt_block_header h = { MT_BLOCK_MAGIC, (uint32_t)c, (uint32_t)block_len, 0 };
	h.check = mt_block_check(h.magic, h.comp_size, h.raw_size);
	memcpy(cblock, &h, sizeof h);
	if (write_all(cblock, MT_BLOCK_HEADER_SIZE + c) < 0) {
		mt_diag("cannot write the trace; recording stops", strerror(errno));
		close(fd);
		fd = -1;
	}
	raw_total += block_len;
	block_len = 0;
}

/* Appends bytes to the block; closes it first when they would not fit. */
static void block_add(const uint8_t *p, size_t n)
{
	if (block_len + n > MT_BLOCK_CAP)
		block_close();
	if (!block_len)
		block_opened_ns = mono_ns();
	memcpy(block + block_len, p, n);
	block_len += n;
	if (block_len >= MT_BLOCK_TARGET)
		block_close();
}

static void add_record(uint8_t kind, const uint8_t *payload, size_t len)
{
	uint8_t hdr[1 + MT_VARINT_MAX], *p = hdr;
	*p++ = kind;
	p = mt_put_varint(p, len);
	block_add(hdr, (size_t)(p - hdr));
	block_add(payload, len);
}

/* ---- small records from any thread -------------------------------------- */
/*
 * Small records wait for room at most MT_SIDE_WAIT_MS: a caller may hold a
 * recorder lock the writer thread needs (modules.c scans under its lock and
 * writes module records), so an unbounded wait could deadlock.  A record
 * that still finds no room is dropped and counted in MT_ST_DROPPED.
 */
#define MT_SIDE_WAIT_MS 200

static uint64_t dropped_records;

static void deadline_in(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

void mt_writer_record(uint8_t kind, const uint8_t *payload, size_t len)
{
	size_t need = 1 + MT_VARINT_MAX + len;
	if (!side || need > MT_SIDE_BYTES)
		return;
	int self = thread_running && pthread_equal(pthread_self(), writer_thread);
	struct timespec deadline;
	deadline_in(&deadline, MT_SIDE_WAIT_MS);
	mt_depth++;
	pthread_mutex_lock(&wlock);
	while (side_len + need > MT_SIDE_BYTES && thread_running && !quit && !self) {
		pthread_cond_signal(&wcond);
		if (pthread_cond_timedwait(&room, &wlock, &deadline))
			break;
	}
	if (side_len + need <= MT_SIDE_BYTES) {
		uint8_t *p = side + side_len;
		*p++ = kind;
		p = mt_put_varint(p, len);
		memcpy(p, payload, len);
		side_len = (size_t)(p + len - side);
	} else {
		dropped_records++;
	}
	pthread_mutex_unlock(&wlock);
	mt_depth--;
}

/* ---- chunk buffers -------------------------------------------------------- */
uint8_t *mt_writer_get_buffer(void)
{
	uint8_t *b = NULL;
	pthread_mutex_lock(&wlock);
	if (pool_len)
		b = pool[--pool_len];
	pthread_mutex_unlock(&wlock);
	return b ? b : mt_mem_alloc(MT_THREAD_BUF_BYTES);
}

static void put_buffer_locked(uint8_t *b)
{
	if (pool_len < MT_POOL_MAX)
		pool[pool_len++] = b;
	else
		mt_mem_free(b, MT_THREAD_BUF_BYTES);
}

void mt_writer_submit(uint8_t *chunk)
{
	const struct mt_events_header *h = (const void *)chunk;
	pthread_mutex_lock(&wlock);
	while (q_len == MT_QUEUE_MAX && thread_running && !quit) {
		pthread_cond_signal(&wcond);
		pthread_cond_wait(&room, &wlock);
	}
	if (q_len < MT_QUEUE_MAX) {
		queue[q_len++] = chunk;
		events_total += h->n_events;
	} else {
		put_buffer_locked(chunk);  /* no writer and no room: cannot happen in practice */
	}
	if (q_len >= MT_QUEUE_MAX / 2)
		pthread_cond_signal(&wcond);
	pthread_mutex_unlock(&wlock);
}

/* Moves queued chunks and side records into blocks.  Writer side only. */
static void drain(void)
{
	uint8_t *local[MT_QUEUE_MAX];
	size_t n;
	pthread_mutex_lock(&wlock);
	n = q_len;
	memcpy(local, queue, n * sizeof local[0]);
	q_len = 0;
	uint8_t *s = side;
	size_t s_len = side_len;
	side = side_spare;
	side_spare = s;
	side_len = 0;
	pthread_cond_broadcast(&room);
	pthread_mutex_unlock(&wlock);

	block_add(s, s_len);
	for (size_t i = 0; i < n; i++) {
		size_t len = mt_chunk_columns(local[i], col_chunk, col_scratch);
		if (len)
			block_add(col_chunk, len);
		else
			mt_diag("internal error: malformed event chunk dropped", NULL);
	}
	pthread_mutex_lock(&wlock);
	for (size_t i = 0; i < n; i++)
		put_buffer_locked(local[i]);
	pthread_mutex_unlock(&wlock);
}

/* ---- sampling ------------------------------------------------------------- */
static size_t read_file(const char *path, char *buf, size_t len)
{
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return 0;
	ssize_t n = read(f, buf, len - 1);
	close(f);
	buf[n > 0 ? n : 0] = 0;
	return n > 0 ? (size_t)n : 0;
}

/* Value in kB after "key:" in a /proc status-style text, in bytes; 0 if absent. */
static uint64_t status_kb(const char *text, const char *key)
{
	const char *p = strstr(text, key);
	if (!p)
		return 0;
	p += strlen(key);
	while (*p == ' ' || *p == '\t' || *p == ':')
		p++;
	uint64_t v = 0;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	return v;
}

static uint8_t *put_kv(uint8_t *p, uint32_t key, uint64_t v)
{
	p = mt_put_varint(p, key);
	return mt_put_varint(p, v);
}

static void write_clock(void)
{
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	uint8_t rec[40], *p = rec;
	uint64_t t = mt_ticks_after();
	p = mt_put_varint(p, t);
	p = mt_put_varint(p, mono_ns());
	p = mt_put_varint(p, (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec);
	add_record(MT_REC_CLOCK, rec, (size_t)(p - rec));
}

/* ---- allocator and cgroup evidence ------------------------------------------ */
/*
 * mallinfo2() means something only when the next allocator is glibc's: then
 * mt_real.malloc is libc.so.6's own malloc.  It locks each arena in turn and
 * walks every free chunk in its bins (glibc malloc/malloc.c, int_mallinfo),
 * stalling the program's allocations in that arena meanwhile: 0.9 ms with 16
 * busy arenas, tens of ms on a heap with millions of free chunks (bigtree).
 * So after a call that took T, the next waits at least T / MT_MALLINFO_MAX_SHARE
 * (and never less than one sample interval): the stall stays under that share
 * of the run.  malloc_info(3) walks the same lists and follows the same rule.
 */
#define MT_MALLINFO_MAX_SHARE 0.02

static uint64_t mallinfo_next_ns, malloc_info_next_ns;  /* earliest next call */
static int glibc_next = -1;   /* -1 unknown, 0 no, 1 yes */
static char cg_current[256], cg_max[256];  /* cgroup files, "" when none */

/*
 * Decided once, by mt_writer_detect_allocator() from the recorder's
 * constructor (dlopen is unsafe inside malloc and during exit); unknown
 * (-1) reads as "no".
 */
void mt_writer_detect_allocator(void)
{
	if (glibc_next >= 0)
		return;
	mt_depth++;
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	glibc_next = libc && dlsym(libc, "malloc") == (void *)mt_real.malloc;
	if (libc)
		dlclose(libc);
	mt_depth--;
}

static int next_is_glibc(void)
{
	return glibc_next > 0;
}

static uint8_t *put_mallinfo(uint8_t *p, unsigned *n)
{
	uint64_t now = mono_ns();
	if (!next_is_glibc() || now < mallinfo_next_ns)
		return p;
	struct mallinfo2 mi = mallinfo2();
	mallinfo_next_ns = now + (uint64_t)((double)(mono_ns() - now) / MT_MALLINFO_MAX_SHARE);
	static const uint32_t keys[] = { MT_S_MI_ARENA, MT_S_MI_ORDBLKS, MT_S_MI_HBLKS, MT_S_MI_HBLKHD,
	                                 MT_S_MI_UORDBLKS, MT_S_MI_FORDBLKS, MT_S_MI_KEEPCOST };
	const size_t vals[] = { mi.arena, mi.ordblks, mi.hblks, mi.hblkhd, mi.uordblks, mi.fordblks,
	                        mi.keepcost };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		p = put_kv(p, keys[i], vals[i]);
	*n += 7;
	return p;
}

/*
 * glibc's malloc_info(3): per-arena free chunks by size, as XML, every
 * MT_MALLOC_INFO_EVERY samples (it walks every bin of every arena under the
 * arena's lock, like mallinfo2, so the same back-off applies) and at the
 * end.  The XML goes into the trace as glibc wrote it; the analyzer parses it.
 */
#define MT_MALLOC_INFO_EVERY 10

static unsigned samples_since_info;

static void add_record_parts(uint8_t kind, const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
	uint8_t hdr[1 + MT_VARINT_MAX], *p = hdr;
	*p++ = kind;
	p = mt_put_varint(p, a_len + b_len);
	block_add(hdr, (size_t)(p - hdr));
	block_add(a, a_len);
	block_add(b, b_len);
}

static void write_malloc_info(void)
{
	char *xml = NULL;
	size_t len = 0;
	uint64_t t0 = mono_ns();
	FILE *f = open_memstream(&xml, &len);  /* its mallocs pass through: mt_depth > 0 here */
	if (!f)
		return;
	malloc_info(0, f);
	fclose(f);
	__atomic_store_n(&malloc_info_next_ns,
	                 t0 + (uint64_t)((double)(mono_ns() - t0) / MT_MALLINFO_MAX_SHARE),
	                 __ATOMIC_RELAXED);
	uint8_t head[2 * MT_VARINT_MAX], *p = head;
	p = mt_put_varint(p, mt_ticks_after());
	p = mt_put_varint(p, len);
	if (xml && len <= MT_BLOCK_TARGET)
		add_record_parts(MT_REC_MALLOC_INFO, head, (size_t)(p - head), (const uint8_t *)xml, len);
	free(xml);
}

/*
 * A malloc_info snapshot taken on the calling thread (a marker), handed over
 * as a small record; one too big for the side buffer (hundreds of arenas)
 * is skipped, the writer's periodic snapshots still cover the run.
 */
void mt_writer_malloc_info_now(void)
{
	uint64_t t0 = mono_ns();
	if (!next_is_glibc() || t0 < __atomic_load_n(&malloc_info_next_ns, __ATOMIC_RELAXED))
		return;  /* the throttle of the periodic snapshots applies to marks too */
	char *xml = NULL;
	size_t len = 0;
	mt_depth++;
	FILE *f = open_memstream(&xml, &len);
	if (f) {
		malloc_info(0, f);
		fclose(f);
		__atomic_store_n(&malloc_info_next_ns,
		                 t0 + (uint64_t)((double)(mono_ns() - t0) / MT_MALLINFO_MAX_SHARE),
		                 __ATOMIC_RELAXED);
		uint8_t *rec = xml && len < MT_SIDE_BYTES / 2 ? mt_mem_alloc(len + 2 * MT_VARINT_MAX) : NULL;
		if (rec) {
			uint8_t *p = mt_put_varint(rec, mt_ticks_after());
			p = mt_put_varint(p, len);
			memcpy(p, xml, len);
			mt_writer_record(MT_REC_MALLOC_INFO, rec, (size_t)(p + len - rec));
			mt_mem_free(rec, len + 2 * MT_VARINT_MAX);
		}
	}
	free(xml);
	mt_depth--;
}

static void maybe_malloc_info(void)
{
	if (!next_is_glibc() || ++samples_since_info < MT_MALLOC_INFO_EVERY ||
	    mono_ns() < __atomic_load_n(&malloc_info_next_ns, __ATOMIC_RELAXED))
		return;
	samples_since_info = 0;
	write_malloc_info();
}

/* Finds the process's cgroup memory files: v2 memory.current/max, else v1 usage/limit. */
static void cgroup_init(void)
{
	char text[4096];
	if (!read_file("/proc/self/cgroup", text, sizeof text))
		return;
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		char *path = strrchr(line, ':');
		if (path && !strncmp(line, "0::", 3)) {
			snprintf(cg_current, sizeof cg_current, "/sys/fs/cgroup%s/memory.current", path + 1);
			snprintf(cg_max, sizeof cg_max, "/sys/fs/cgroup%s/memory.max", path + 1);
			if (!access(cg_current, R_OK))
				return;
		}
		if (path && strstr(line, ":memory:")) {
			snprintf(cg_current, sizeof cg_current, "/sys/fs/cgroup/memory%s/memory.usage_in_bytes", path + 1);
			snprintf(cg_max, sizeof cg_max, "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", path + 1);
			if (!access(cg_current, R_OK))
				return;
		}
		line = nl ? nl + 1 : NULL;
	}
	cg_current[0] = cg_max[0] = 0;
}

static uint64_t read_u64_file(const char *path, int *ok)
{
	char text[64];
	*ok = path[0] && read_file(path, text, sizeof text) && text[0] >= '0' && text[0] <= '9';
	uint64_t v = 0;
	for (const char *s = text; *ok && *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (uint64_t)(*s - '0');
	return v;
}

static uint8_t *put_cgroup(uint8_t *p, unsigned *n)
{
	int ok;
	uint64_t cur = read_u64_file(cg_current, &ok);
	if (!ok)
		return p;
	p = put_kv(p, MT_S_CG_CURRENT, cur);
	(*n)++;
	uint64_t max = read_u64_file(cg_max, &ok);  /* "max" (v2) or a huge number (v1): no limit */
	if (ok && max < (1ull << 62)) {
		p = put_kv(p, MT_S_CG_MAX, max);
		(*n)++;
	}
	return p;
}

/*
 * The trim probe: RSS, malloc_trim(0), RSS again, as one sample holding
 * MT_S_TRIM_RSS_BEFORE / MT_S_TRIM_RSS_AFTER.  What the call gave back is
 * memory glibc held free in its arenas and could return to the system.
 * Runs on the calling thread; glibc only (a no-op under another allocator).
 */
void mt_writer_trim_probe(void)
{
	if (!next_is_glibc())
		return;
	char text[4096];
	read_file("/proc/self/status", text, sizeof text);
	uint64_t before = status_kb(text, "VmRSS") * 1024;
	malloc_trim(0);
	read_file("/proc/self/status", text, sizeof text);
	uint64_t after = status_kb(text, "VmRSS") * 1024;
	uint8_t rec[64], *p = rec;
	p = mt_put_varint(p, mt_ticks_after());
	p = mt_put_varint(p, 2);
	p = put_kv(p, MT_S_TRIM_RSS_BEFORE, before);
	p = put_kv(p, MT_S_TRIM_RSS_AFTER, after);
	mt_writer_record(MT_REC_SAMPLE, rec, (size_t)(p - rec));
}

/*
 * One timeline sample.  RSS and its anonymous / file / shmem split come from
 * /proc/self/status (the kernel's per-process counters, the same ones
 * smaps_rollup sums, without walking every mapping).
 */
static void write_sample(void)
{
	char text[4096];
	uint8_t rec[512], kv[448], *p = rec, *q = kv;
	unsigned n = 0;
	read_file("/proc/self/status", text, sizeof text);
	static const struct { uint32_t key; const char *name; uint64_t unit; } fields[] = {
		{ MT_S_RSS_BYTES, "VmRSS", 1024 },          { MT_S_RSS_ANON_BYTES, "RssAnon", 1024 },
		{ MT_S_RSS_FILE_BYTES, "RssFile", 1024 },   { MT_S_RSS_SHMEM_BYTES, "RssShmem", 1024 },
		{ MT_S_VMHWM_BYTES, "VmHWM", 1024 },        { MT_S_VMPEAK_BYTES, "VmPeak", 1024 },
		{ MT_S_THREADS, "Threads", 1 },
	};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++, n++)
		q = put_kv(q, fields[i].key, status_kb(text, fields[i].name) * fields[i].unit);
	q = put_kv(q, MT_S_RECORDER_BYTES, mt_mem_current());
	n++;
	q = put_mallinfo(q, &n);
	q = put_cgroup(q, &n);
	p = mt_put_varint(p, mt_ticks_after());
	p = mt_put_varint(p, n);
	memcpy(p, kv, (size_t)(q - kv));
	p += q - kv;
	add_record(MT_REC_SAMPLE, rec, (size_t)(p - rec));
}

static void write_process(void)
{
	static uint8_t rec[16384];
	char exe[4096], cmd[8192];
	uint8_t *p = rec;
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = 0;
	size_t clen = read_file("/proc/self/cmdline", cmd, sizeof cmd);
	p = mt_put_varint(p, (uint64_t)getpid());
	p = mt_put_varint(p, (uint64_t)getppid());
	p = mt_put_varint(p, (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec);
	p = mt_put_str(p, exe, sizeof exe);
	size_t argc = 0;
	for (size_t i = 0; i < clen; i++)
		argc += cmd[i] == 0;
	p = mt_put_varint(p, argc);
	for (size_t i = 0; i < clen;) {
		p = mt_put_str(p, cmd + i, 4096);
		i += strlen(cmd + i) + 1;
	}
	p = mt_put_varint(p, (uint64_t)sysconf(_SC_PAGESIZE));
	add_record(MT_REC_PROCESS, rec, (size_t)(p - rec));
}

static void periodic(void)
{
	uint64_t now = mono_ns();
	if (now - last_sample_ns >= (uint64_t)interval_ms * 1000000u) {
		last_sample_ns = now;
		write_sample();
		measure_busy();
		maybe_malloc_info();
		mt_modules_scan();
	}
	if (now - last_clock_ns >= (uint64_t)MT_CLOCK_EVERY_MS * 1000000u) {
		last_clock_ns = now;
		write_clock();
	}
	if (block_len && now - block_opened_ns >= (uint64_t)MT_BLOCK_MAX_AGE_MS * 1000000u)
		block_close();
}

static void *writer_main(void *arg)
{
	mt_depth++;  /* nothing this thread allocates is the program's */
	drain();
	block_close();  /* the module list, at once */
	pthread_mutex_lock(&wlock);
	while (!quit) {
		struct timespec ts;
		deadline_in(&ts, 10);  /* wake at least every 10 ms */
		pthread_cond_timedwait(&wcond, &wlock, &ts);
		pthread_mutex_unlock(&wlock);
		drain();
		periodic();
		pthread_mutex_lock(&wlock);
	}
	pthread_mutex_unlock(&wlock);
	return NULL;
}

/* ---- lifecycle ------------------------------------------------------------- */
int mt_writer_open(const char *path)
{
	const char *iv = getenv("MEMTRIAGE_INTERVAL_MS");
	if (iv && *iv) {
		unsigned v = 0;
		for (const char *s = iv; *s >= '0' && *s <= '9'; s++)
			v = v * 10 + (unsigned)(*s - '0');
		if (v)
			interval_ms = v;
	}
	ZSTD_customMem mem = { zalloc, zfree, NULL };
	cctx = ZSTD_createCCtx_advanced(mem);
	cblock_cap = MT_BLOCK_HEADER_SIZE + ZSTD_compressBound(MT_BLOCK_CAP);
	block = mt_mem_alloc(MT_BLOCK_CAP);
	cblock = mt_mem_alloc(cblock_cap);
	side = mt_mem_alloc(MT_SIDE_BYTES);
	side_spare = mt_mem_alloc(MT_SIDE_BYTES);
	col_chunk = mt_mem_alloc(mt_columns_scratch_size(MT_THREAD_BUF_BYTES));
	col_scratch = mt_mem_alloc(mt_columns_scratch_size(MT_THREAD_BUF_BYTES));
	if (!cctx || !block || !cblock || !side || !side_spare || !col_chunk || !col_scratch)
		return -ENOMEM;
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	struct mt_file_header h;
	memset(&h, 0, sizeof h);
	memcpy(h.magic, MT_FILE_MAGIC, 8);
	h.major = MT_FORMAT_MAJOR;
	h.minor = MT_FORMAT_MINOR;
	h.header_size = MT_FILE_HEADER_SIZE;
	h.flags = MT_TICKS_ARE_TSC ? MT_FILE_TSC : 0;
	if (write_all((const uint8_t *)&h, sizeof h) < 0)
		return -errno;
	write_process();
	write_clock();
	block_close();  /* a process killed at once still leaves who it was */
	cgroup_init();
	last_clock_ns = last_sample_ns = mono_ns();
	return 0;
}

int mt_writer_start(void)
{
	mt_depth++;
	int r = pthread_create(&writer_thread, NULL, writer_main, NULL);
	mt_depth--;
	if (r)
		return -r;
	pthread_mutex_lock(&wlock);
	thread_running = 1;
	pthread_mutex_unlock(&wlock);
	return 0;
}

static void write_stats(void)
{
	uint8_t rec[128], *p = rec;
	p = mt_put_varint(p, 7);
	p = put_kv(p, MT_ST_EVENTS, events_total);
	p = put_kv(p, MT_ST_DROPPED, dropped_records);
	p = put_kv(p, MT_ST_BYTES_RAW, raw_total + block_len);
	p = put_kv(p, MT_ST_BYTES_WRITTEN, written_total);
	p = put_kv(p, MT_ST_RECORDER_PEAK_BYTES, mt_mem_peak());
	p = put_kv(p, MT_ST_THREADS, mt_thread_count());
	p = put_kv(p, MT_ST_NODES, mt_stack_nodes());
	add_record(MT_REC_STATS, rec, (size_t)(p - rec));
}

void mt_writer_stop(enum mt_end_reason why)
{
	pthread_mutex_lock(&wlock);
	int running = thread_running;
	quit = 1;
	pthread_cond_broadcast(&wcond);
	pthread_cond_broadcast(&room);
	pthread_mutex_unlock(&wlock);
	if (running)
		pthread_join(writer_thread, NULL);
	if (fd < 0)
		return;
	drain();
	mt_modules_scan();
	drain();
	write_sample();
	if (next_is_glibc())
		write_malloc_info();
	write_clock();
	write_stats();
	uint8_t rec[24], *p = rec;
	p = mt_put_varint(p, mt_ticks_after());
	p = mt_put_varint(p, (uint64_t)why);
	add_record(MT_REC_END, rec, (size_t)(p - rec));
	block_close();
	close(fd);
	fd = -1;
}

void mt_writer_lock(void) { pthread_mutex_lock(&wlock); }
void mt_writer_unlock(void) { pthread_mutex_unlock(&wlock); }

void mt_writer_child_reset(void)
{
	/* The writer thread does not exist in the child; its file is the parent's. */
	thread_running = 0;
	quit = 1;
	if (fd >= 0)
		close(fd);
	fd = -1;
}
