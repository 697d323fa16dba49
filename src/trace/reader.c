/*
 * Trace reader.  reader.h has the contract, docs/trace-format.md the format.
 *
 * Pass 1 (mt_trace_open) reads the blocks in file order, decodes the small
 * records into struct mt_trace and only indexes event chunks.  It keeps
 * the decompressed blocks that hold chunks, up to the keep limit, so that
 * pass 2 does not decompress them again.
 *
 * Pass 2 (mt_trace_replay) merges the threads.  Each thread is one stream:
 * its chunks in file order (= its program order), one decoded at a time.  A
 * binary min-heap keyed by (time, frees before allocs, thread) holds every
 * stream's next key.  A stream whose next chunk is not loaded yet waits
 * under that chunk's t_first, so a chunk is opened only when the merge
 * reaches its time: in place in a kept block (freed once its chunks are
 * used up), or decompressed again and copied out, which costs one chunk per
 * thread overlapping the current time plus MT_TRACE_CACHE_BLOCKS
 * decompressed blocks.  The stream at the root keeps delivering while its
 * next key is below the runner-up, so one busy thread (or a single-threaded
 * trace) runs without touching the heap per event; events are decoded
 * straight into a batch handed to the caller MT_REPLAY_BATCH at a time.
 * This is the "sort chunks by t_first, activate at t_first" merge,
 * organised per thread so a thread's chunks are never reordered, even when
 * a writer leaves t_first at 0.
 */
#include "reader.h"
#include "bigmem.h"
#include "prefetch.h"
#include "columns.h"
#include "varint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define LIKELY(x)   __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define COLD        __attribute__((cold, noinline))
#define HOT_INLINE  inline __attribute__((always_inline))

_Static_assert(sizeof(struct mt_file_header) == MT_FILE_HEADER_SIZE, "file header layout");
_Static_assert(sizeof(struct mt_block_header) == MT_BLOCK_HEADER_SIZE, "block header layout");
_Static_assert(sizeof(struct mt_events_header) == MT_EVENTS_HEADER_SIZE, "events header layout");
_Static_assert(MT_TRACE_CHUNKS_MAX < (1u << 30), "thread numbers must fit the heap key");

#define COMP_MAX         ZSTD_COMPRESSBOUND(MT_BLOCK_RAW_MAX) /* largest valid frame */
#define FILE_HEADER_MAX  65536u      /* header_size beyond this is corrupt, not a later minor */
#define PROGRESS_STEP    (64u << 20) /* bytes read between progress calls */
#define ZSTD_MAGIC       0xFD2FB528u
#define ZSTD_FHD_CHECKSUM 0x04u      /* Content_Checksum_flag in the frame header descriptor */

/*
 * A chunk's columns are followed by PAD zero bytes (in a chunk copy, or at
 * the end of a kept block), so the decoder reads varints without a bounds
 * check per byte: a varint running past its column's end stops at the next
 * column's bytes, the next record's or the first zero of the pad, and one
 * check per column after each event catches the overrun.  A whole pointer
 * is read as 8 bytes whatever its width, hence PAD >= 8 too.
 */
#define PAD 16

uint64_t mt_trace_keep_max = MT_TRACE_KEEP_MAX;

/* ---- small helpers --------------------------------------------------- */

static inline uint32_t le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static inline uint64_t le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* Formats a one-line message into err and returns code. */
static COLD __attribute__((format(printf, 3, 4)))
int fail(char *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, MT_ERR_LEN, fmt, ap);
	va_end(ap);
	return code;
}

/*
 * Makes room for element n in *arr (capacity *cap elements of elem bytes),
 * doubling up to limit.  Returns 0, -E2BIG when n reached limit, -ENOMEM.
 */
static int grow(void **arr, size_t *cap, size_t n, size_t elem, size_t limit)
{
	if (n < *cap)
		return 0;
	if (n >= limit)
		return -E2BIG;
	size_t nc = *cap ? *cap * 2 : 16;
	if (nc > limit)
		nc = limit;
	if (nc <= n)
		nc = n + 1;
	void *p = realloc(*arr, nc * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = nc;
	return 0;
}
#define GROW(arr, n, cap, limit) grow((void **)&(arr), &(cap), (n), sizeof *(arr), (limit))

/* Makes *buf hold at least n bytes (n may be 0).  Returns 0 or -ENOMEM. */
static int reserve(uint8_t **buf, size_t *cap, size_t n)
{
	if (n <= *cap && *buf)
		return 0;
	uint8_t *p = realloc(*buf, n ? n : 1);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

/* pread until n bytes or end of file.  Returns bytes read or -errno. */
static ssize_t read_at(int fd, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* ---- reader internals -------------------------------------------------- */

/* Online least-squares fit of monotonic ns against ticks (Welford updates). */
struct clockfit {
	uint64_t n, t0, m0;      /* count; first record's ticks and ns */
	double mx, my, cxx, cxy; /* means and co-moments, relative to t0/m0 */
};

struct cache_slot {          /* one decompressed block kept for replay */
	uint64_t off, used;      /* block offset; LRU stamp, 0 = empty */
	uint8_t *raw;
	size_t cap;
	uint32_t len;
};

struct span {                /* one thread's chunks: by_thread[first .. first+n) */
	uint32_t thread_idx, first, n;
};

struct kept {                /* a decompressed event block pass 1 kept for replay */
	uint64_t off;            /* file offset of the block */
	uint8_t *raw;            /* raw bytes + PAD zeros, in a segment; NULL once replay let it go */
	size_t bytes;            /* bytes it takes in the segment */
	uint32_t seg;            /* index in rd->segs */
	uint32_t n_chunks, left; /* its chunks; those replay has not used up yet */
};

/*
 * Kept blocks are packed into segments, each its own mapping with huge
 * pages (blocks are about 1 MiB: mapped one by one they would fault in
 * 4 KiB pages).  Segments double from KEEP_SEG_MIN to KEEP_SEG_MAX, so a
 * small trace does not pay for a big one.  A segment is unmapped once
 * replay has let go of all its blocks; replay goes through the file
 * roughly in order, so memory comes back as it goes.
 */
#define KEEP_SEG_MIN (256u << 10)
#define KEEP_SEG_MAX (32u << 20)  /* a multiple of 2 MiB */
struct keep_seg {
	uint8_t *base;           /* NULL once unmapped */
	size_t size, used;
	uint32_t blocks;         /* kept blocks still in it */
};

struct rd {
	ZSTD_DCtx *dctx;
	uint8_t *comp; size_t comp_cap;  /* one compressed frame */
	uint8_t *raw; size_t raw_cap;    /* pass 1: the block being walked */
	struct clockfit fit;
	uint64_t tmin;                   /* smallest tick seen: origin without clocks */
	uint64_t header_events;          /* sum of the chunk headers' n_events */
	size_t cap_modules, cap_threads, cap_samples, cap_markers, cap_malloc_infos, cap_stats, cap_chunks, cap_nodes;
	struct cache_slot cache[MT_TRACE_CACHE_BLOCKS];
	uint64_t cache_clock;
	uint32_t *by_thread;             /* chunk indices grouped by thread, file order inside */
	struct span *spans; size_t n_spans;
	struct kept *kept; size_t n_kept, cap_kept;  /* sorted by off */
	struct keep_seg *segs; size_t n_segs, cap_segs;
	uint64_t kept_bytes, keep_limit;
};

/* ---- blocks ------------------------------------------------------------ */

enum blk_status {
	BLK_OK,      /* decompressed */
	BLK_END,     /* no bytes left: clean end of file */
	BLK_CUT,     /* the file ends inside the block */
	BLK_BADHDR,  /* 16 header bytes present, magic or check wrong */
	BLK_BAD,     /* header fine, block complete, contents fail a check */
};

struct blk {
	uint32_t comp, raw;      /* sizes from the header (unverified when BLK_BADHDR) */
};

/* Is f (n bytes) exactly one zstd frame with a content checksum, of raw bytes? */
static int frame_ok(const uint8_t *f, size_t n, uint32_t raw)
{
	if (n < 6 || le32(f) != ZSTD_MAGIC || !(f[4] & ZSTD_FHD_CHECKSUM))
		return 0;
	unsigned long long sz = ZSTD_getFrameContentSize(f, n);
	if (sz == ZSTD_CONTENTSIZE_ERROR || (sz != ZSTD_CONTENTSIZE_UNKNOWN && sz != raw))
		return 0;
	return ZSTD_findFrameCompressedSize(f, n) == n;
}

/*
 * Reads and checks the header of the block at off into *b.  Returns BLK_OK
 * when the frame can be read (block_body), another enum blk_status, or -errno.
 */
static int block_head(struct mt_trace *tr, uint64_t off, struct blk *b)
{
	uint8_t h[MT_BLOCK_HEADER_SIZE];
	uint64_t left = off < tr->file_size ? tr->file_size - off : 0;
	if (left == 0)
		return BLK_END;
	if (left < sizeof h)
		return BLK_CUT;
	ssize_t got = read_at(tr->fd, h, sizeof h, off);
	if (got < 0)
		return (int)got;
	if ((size_t)got < sizeof h)
		return BLK_CUT;
	b->comp = le32(h + 4);
	b->raw = le32(h + 8);
	if (le32(h) != MT_BLOCK_MAGIC || le32(h + 12) != mt_block_check(le32(h), b->comp, b->raw))
		return BLK_BADHDR;
	if (b->comp > left - sizeof h)
		return BLK_CUT;
	if (b->raw > MT_BLOCK_RAW_MAX || b->comp > COMP_MAX)
		return BLK_BAD;
	return BLK_OK;
}

/* Reads the frame of a block whose header passed and decompresses it into dst (b->raw bytes). */
static int block_body(struct mt_trace *tr, struct rd *rd, uint64_t off, const struct blk *b,
                      uint8_t *dst)
{
	if (reserve(&rd->comp, &rd->comp_cap, b->comp))
		return -ENOMEM;
	ssize_t got = read_at(tr->fd, rd->comp, b->comp, off + MT_BLOCK_HEADER_SIZE);
	if (got < 0)
		return (int)got;
	if ((size_t)got < b->comp)
		return BLK_CUT;
	if (!frame_ok(rd->comp, b->comp, b->raw))
		return BLK_BAD;
	size_t n = ZSTD_decompressDCtx(rd->dctx, dst, b->raw, rd->comp, b->comp);
	return ZSTD_isError(n) || n != b->raw ? BLK_BAD : BLK_OK;
}

/*
 * Reads the block at off and decompresses it into *dst (grown as needed,
 * PAD zero bytes after the raw bytes).  Returns an enum blk_status or -errno.
 */
static int block_read(struct mt_trace *tr, struct rd *rd, uint64_t off, struct blk *b,
                      uint8_t **dst, size_t *dst_cap)
{
	int st = block_head(tr, off, b);
	if (st != BLK_OK)
		return st;
	if (reserve(dst, dst_cap, (size_t)b->raw + PAD))
		return -ENOMEM;
	memset(*dst + b->raw, 0, PAD);
	return block_body(tr, rd, off, b, *dst);
}

/* Are all bytes from off to the end of the file zero (a torn, zero-filled tail)? */
static int zeros_to_end(struct mt_trace *tr, struct rd *rd, uint64_t off)
{
	enum { STEP = 65536 };
	if (reserve(&rd->comp, &rd->comp_cap, STEP))
		return 0;
	while (off < tr->file_size) {
		ssize_t n = read_at(tr->fd, rd->comp, STEP, off);
		if (n <= 0)
			return n == 0;
		for (ssize_t i = 0; i < n; i++)
			if (rd->comp[i])
				return 0;
		off += (uint64_t)n;
	}
	return 1;
}

/*
 * A block that fails a check is a crash's torn write, not corruption, when
 * nothing valid can follow it: it reaches the end of the file, or only
 * zeros do (a file system that extended the file but never wrote it).
 */
static int torn_tail(struct mt_trace *tr, struct rd *rd, uint64_t off, const struct blk *b, int st)
{
	/* A header that fails its check says nothing about sizes: only zeros after it are a tear. */
	if (st == BLK_BADHDR)
		return zeros_to_end(tr, rd, off);
	uint64_t end = off + MT_BLOCK_HEADER_SIZE + (uint64_t)b->comp;
	if (end >= tr->file_size)
		return 1;
	return zeros_to_end(tr, rd, end);
}

/* ---- pass 1: small records --------------------------------------------- */

struct p1 {                  /* pass-1 context, for handlers and messages */
	struct mt_trace *tr;
	struct rd *rd;
	char *err;
	uint64_t block_off;
	uint32_t rec_off;
};

struct in {                  /* a record payload being parsed */
	const uint8_t *p, *end;
};

static int in_u64(struct in *in, uint64_t *v)
{
	return mt_get_varint(&in->p, in->end, v) ? -EINVAL : 0;
}

static int in_u32(struct in *in, uint32_t *v)
{
	uint64_t x;
	if (in_u64(in, &x) || x > UINT32_MAX)
		return -EINVAL;
	*v = (uint32_t)x;
	return 0;
}

/* A count of items each at least min_bytes long: bounded by what is left. */
static int in_count(struct in *in, uint64_t *n, size_t min_bytes, uint64_t limit)
{
	if (in_u64(in, n) || *n > limit || *n > (uint64_t)(in->end - in->p) / min_bytes)
		return -EINVAL;
	return 0;
}

/* str: varint length, bytes.  *out is a NUL-terminated copy, *len its length. */
static int in_bytes(struct in *in, char **out, size_t *len)
{
	uint64_t n;
	if (in_u64(in, &n) || n > (uint64_t)(in->end - in->p))
		return -EINVAL;
	char *s = malloc(n + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, in->p, n);
	s[n] = 0;
	in->p += n;
	free(*out);
	*out = s;
	if (len)
		*len = n;
	return 0;
}

static int in_str(struct in *in, char **out) { return in_bytes(in, out, NULL); }

/* Writes the message for a limit hit; passes other codes through. */
static int limit_hit(struct p1 *c, int r, const char *what, unsigned long limit)
{
	if (r != -E2BIG)
		return r;
	return fail(c->err, r, "'%s': more than %lu %s (reader limit)", c->tr->path, limit, what);
}

static void see_tick(struct p1 *c, uint64_t t)
{
	if (t < c->rd->tmin)
		c->rd->tmin = t;
}

static void process_clear(struct mt_trace *tr)
{
	free(tr->exe);
	tr->exe = NULL;
	for (int i = 0; tr->argv && i < tr->argc; i++)
		free(tr->argv[i]);
	free(tr->argv);
	tr->argv = NULL;
	tr->argc = 0;
}

static int rec_process(struct p1 *c, struct in *in)
{
	struct mt_trace *tr = c->tr;
	uint64_t argc;
	int r;
	process_clear(tr);  /* a later record replaces an earlier one */
	if ((r = in_u32(in, &tr->pid)) || (r = in_u32(in, &tr->ppid)) ||
	    (r = in_u64(in, &tr->start_realtime_ns)) || (r = in_str(in, &tr->exe)) ||
	    (r = in_count(in, &argc, 1, MT_TRACE_ARGS_MAX)))
		return r;
	tr->argv = calloc(argc + 1, sizeof *tr->argv);
	if (!tr->argv)
		return -ENOMEM;
	tr->argc = (int)argc;
	for (uint64_t i = 0; i < argc; i++)
		if ((r = in_str(in, &tr->argv[i])))
			return r;
	return in_u64(in, &tr->page_size);
}

static int rec_clock(struct p1 *c, struct in *in)
{
	uint64_t ticks, mono, real;
	if (in_u64(in, &ticks) || in_u64(in, &mono) || in_u64(in, &real))
		return -EINVAL;
	struct clockfit *f = &c->rd->fit;
	if (f->n == 0) {
		f->t0 = ticks;
		f->m0 = mono;
	}
	double x = (double)(int64_t)(ticks - f->t0), y = (double)(int64_t)(mono - f->m0);
	double dx = x - f->mx;
	f->n++;
	f->mx += dx / (double)f->n;
	f->my += (y - f->my) / (double)f->n;
	f->cxx += dx * (x - f->mx);
	f->cxy += dx * (y - f->my);
	see_tick(c, ticks);
	return 0;
}

static void module_release(struct mt_module *m)
{
	free(m->path);
	free(m->build_id);
	free(m->segs);
}

static int module_parse(struct in *in, struct mt_module *m)
{
	uint64_t nseg;
	int r;
	if ((r = in_u32(in, &m->id)) || (r = in_u64(in, &m->t_ns)) || (r = in_u64(in, &m->load_bias)) ||
	    (r = in_str(in, &m->path)) || (r = in_bytes(in, (char **)&m->build_id, &m->build_id_len)) ||
	    (r = in_count(in, &nseg, 3, MT_TRACE_ARGS_MAX)))
		return r;
	if (m->build_id_len == 0) {
		free(m->build_id);
		m->build_id = NULL;
	}
	m->segs = calloc(nseg ? nseg : 1, sizeof *m->segs);
	if (!m->segs)
		return -ENOMEM;
	m->n_segs = nseg;
	for (uint64_t i = 0; i < nseg; i++)
		if (in_u64(in, &m->segs[i].start) || in_u64(in, &m->segs[i].size) ||
		    in_u32(in, &m->segs[i].flags))
			return -EINVAL;
	return 0;
}

/* First module with id > key: modules stay sorted by id, reloads after their first load. */
static size_t module_upper(const struct mt_trace *tr, uint32_t key)
{
	size_t lo = 0, hi = tr->n_modules;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (tr->modules[mid].id <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int rec_module(struct p1 *c, struct in *in)
{
	struct mt_trace *tr = c->tr;
	struct mt_module m = {0};
	int r = module_parse(in, &m);
	if (!r)
		r = limit_hit(c, GROW(tr->modules, tr->n_modules, c->rd->cap_modules,
		                      MT_TRACE_MODULES_MAX), "modules", MT_TRACE_MODULES_MAX);
	if (r) {
		module_release(&m);
		return r;
	}
	see_tick(c, m.t_ns);  /* t_ns holds ticks until the end of pass 1 */
	size_t at = module_upper(tr, m.id);
	memmove(tr->modules + at + 1, tr->modules + at, (tr->n_modules - at) * sizeof m);
	tr->modules[at] = m;
	tr->n_modules++;
	return 0;
}

static int rec_module_unload(struct p1 *c, struct in *in)
{
	struct mt_trace *tr = c->tr;
	uint32_t id;
	uint64_t ticks;
	if (in_u32(in, &id) || in_u64(in, &ticks))
		return -EINVAL;
	size_t at = module_upper(tr, id);
	if (at > 0 && tr->modules[at - 1].id == id)  /* the latest load of id */
		tr->modules[at - 1].unload_t_ns = ticks;
	return 0;
}

/* The entry for thread idx in tr->threads (sorted by idx), added if new; NULL on error r. */
static struct mt_thread_info *thread_get(struct p1 *c, uint32_t idx, int *r)
{
	struct mt_trace *tr = c->tr;
	size_t lo = 0, hi = tr->n_threads;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (tr->threads[mid].idx < idx)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < tr->n_threads && tr->threads[lo].idx == idx)
		return &tr->threads[lo];
	*r = limit_hit(c, GROW(tr->threads, tr->n_threads, c->rd->cap_threads, MT_TRACE_THREADS_MAX),
	               "threads", MT_TRACE_THREADS_MAX);
	char *name = *r ? NULL : strdup("");
	if (!name) {
		*r = *r ? *r : -ENOMEM;
		return NULL;
	}
	memmove(tr->threads + lo + 1, tr->threads + lo, (tr->n_threads - lo) * sizeof *tr->threads);
	tr->threads[lo] = (struct mt_thread_info){ .idx = idx, .name = name };
	tr->n_threads++;
	return &tr->threads[lo];
}

static int rec_thread(struct p1 *c, struct in *in)
{
	uint32_t idx, tid;
	uint64_t ticks;
	int r = 0;
	if (in_u32(in, &idx) || in_u32(in, &tid) || in_u64(in, &ticks))
		return -EINVAL;
	struct mt_thread_info *t = thread_get(c, idx, &r);
	if (!t)
		return r;
	t->os_tid = tid;
	t->start_ns = ticks;  /* ticks until the end of pass 1 */
	see_tick(c, ticks);
	return in_str(in, &t->name);
}

static int rec_thread_exit(struct p1 *c, struct in *in)
{
	uint32_t idx;
	uint64_t ticks;
	int r = 0;
	if (in_u32(in, &idx) || in_u64(in, &ticks))
		return -EINVAL;
	struct mt_thread_info *t = thread_get(c, idx, &r);
	if (!t)
		return r;
	t->exit_ns = ticks;
	return 0;
}

static int rec_thread_name(struct p1 *c, struct in *in)
{
	uint32_t idx;
	int r = 0;
	if (in_u32(in, &idx))
		return -EINVAL;
	struct mt_thread_info *t = thread_get(c, idx, &r);
	return t ? in_str(in, &t->name) : r;
}

/* n x (varint key, varint64 value) into a new array. */
static int kv_parse(struct in *in, struct mt_kv **out, uint32_t *n_out)
{
	uint64_t n;
	if (in_count(in, &n, 2, MT_TRACE_KEYS_MAX))
		return -EINVAL;
	struct mt_kv *kv = calloc(n ? n : 1, sizeof *kv);
	if (!kv)
		return -ENOMEM;
	for (uint64_t i = 0; i < n; i++) {
		if (in_u32(in, &kv[i].key) || in_u64(in, &kv[i].value)) {
			free(kv);
			return -EINVAL;
		}
	}
	*out = kv;
	*n_out = (uint32_t)n;
	return 0;
}

static int rec_sample(struct p1 *c, struct in *in)
{
	struct mt_trace *tr = c->tr;
	struct mt_sample s = {0};
	int r;
	if (in_u64(in, &s.t_ns))
		return -EINVAL;
	if ((r = kv_parse(in, &s.kv, &s.n)))
		return r;
	r = GROW(tr->samples, tr->n_samples, c->rd->cap_samples, MT_TRACE_SAMPLES_MAX);
	if (r) {
		free(s.kv);
		return limit_hit(c, r, "samples", MT_TRACE_SAMPLES_MAX);
	}
	see_tick(c, s.t_ns);
	tr->samples[tr->n_samples++] = s;
	return 0;
}

static int rec_marker(struct p1 *c, struct in *in)
{
	struct mt_trace *tr = c->tr;
	struct mt_marker m = {0};
	int r;
	if (in_u64(in, &m.t_ns) || in_u32(in, &m.thread_idx) || in_u32(in, &m.kind) ||
	    in_u64(in, &m.arg))
		return -EINVAL;
	if ((r = in_str(in, &m.label)))
		return r;
	if (in->p < in->end && in_u64(in, &m.arg2)) {  /* arg2: absent in older traces */
		free(m.label);
		return -EINVAL;
	}
	r = GROW(tr->markers, tr->n_markers, c->rd->cap_markers, MT_TRACE_MARKERS_MAX);
	if (r) {
		free(m.label);
		return limit_hit(c, r, "markers", MT_TRACE_MARKERS_MAX);
	}
	see_tick(c, m.t_ns);
	tr->markers[tr->n_markers++] = m;
	return 0;
}

/* MT_REC_MALLOC_INFO: varint64 ticks, str xml (glibc's malloc_info(3) output). */
static int rec_malloc_info(struct p1 *c, struct in *in)
{
	struct mt_trace *tr = c->tr;
	struct mt_malloc_info m = {0};
	int r;
	if (in_u64(in, &m.t_ns))
		return -EINVAL;
	if ((r = in_str(in, &m.xml)))
		return r;
	r = GROW(tr->malloc_infos, tr->n_malloc_infos, c->rd->cap_malloc_infos, MT_TRACE_MALLOC_INFOS_MAX);
	if (r) {
		free(m.xml);
		return limit_hit(c, r, "malloc_info records", MT_TRACE_MALLOC_INFOS_MAX);
	}
	see_tick(c, m.t_ns);
	tr->malloc_infos[tr->n_malloc_infos++] = m;
	return 0;
}

/* Sets one stats key: a later record's value replaces an earlier one. */
static int stat_set(struct p1 *c, struct mt_kv kv)
{
	struct mt_trace *tr = c->tr;
	size_t j = 0;
	while (j < tr->n_stats && tr->stats[j].key != kv.key)
		j++;
	if (j == tr->n_stats) {
		int r = GROW(tr->stats, tr->n_stats, c->rd->cap_stats, MT_TRACE_KEYS_MAX);
		if (r)
			return limit_hit(c, r, "stats keys", MT_TRACE_KEYS_MAX);
		tr->n_stats++;
	}
	tr->stats[j] = kv;
	return 0;
}

static int rec_stats(struct p1 *c, struct in *in)
{
	struct mt_kv *kv;
	uint32_t n;
	int r = kv_parse(in, &kv, &n);
	if (r)
		return r;
	for (uint32_t i = 0; !r && i < n; i++)
		r = stat_set(c, kv[i]);
	free(kv);
	return r;
}

static int rec_end(struct p1 *c, struct in *in)
{
	struct mt_trace *tr = c->tr;
	if (in_u64(in, &tr->end_ns) || in_u32(in, &tr->end_reason))
		return -EINVAL;
	tr->ended = 1;
	return 0;
}

typedef int (*rec_parse_fn)(struct p1 *c, struct in *in);

/* Small record kinds pass 1 decodes; others are skipped by their length. */
static const struct rec_kind {
	const char *name;
	rec_parse_fn parse;
} rec_kinds[] = {
	[MT_REC_PROCESS]       = { "process", rec_process },
	[MT_REC_CLOCK]         = { "clock", rec_clock },
	[MT_REC_MODULE]        = { "module", rec_module },
	[MT_REC_MODULE_UNLOAD] = { "module unload", rec_module_unload },
	[MT_REC_THREAD]        = { "thread", rec_thread },
	[MT_REC_THREAD_EXIT]   = { "thread exit", rec_thread_exit },
	[MT_REC_THREAD_NAME]   = { "thread name", rec_thread_name },
	[MT_REC_EVENTS]        = { "events", NULL },
	[MT_REC_SAMPLE]        = { "sample", rec_sample },
	[MT_REC_MARKER]        = { "marker", rec_marker },
	[MT_REC_STATS]         = { "stats", rec_stats },
	[MT_REC_END]           = { "end", rec_end },
	[MT_REC_MALLOC_INFO]   = { "malloc_info", rec_malloc_info },
};
#define N_REC_KINDS (sizeof rec_kinds / sizeof rec_kinds[0])

/* u8 kind, varint len, payload: decodes a known kind, skips others. */
static int small_record(struct p1 *c, const uint8_t *raw, uint32_t n, uint32_t *off)
{
	uint8_t kind = raw[*off];
	struct in in = { raw + *off + 1, raw + n };
	uint64_t len;
	if (in_u64(&in, &len) || len > (uint64_t)(in.end - in.p))
		return -EINVAL;
	in.end = in.p + len;
	*off = (uint32_t)(in.end - raw);
	if (kind < N_REC_KINDS && rec_kinds[kind].parse)
		return rec_kinds[kind].parse(c, &in);  /* bytes after known fields: a later minor's */
	return 0;
}

/* MT_REC_EVENTS: index the chunk, leave its events for replay. */
static int index_chunk(struct p1 *c, const uint8_t *raw, uint32_t n, uint32_t *off)
{
	struct mt_trace *tr = c->tr;
	const uint8_t *h = raw + *off;
	if (n - *off < MT_EVENTS_HEADER_SIZE)
		return -EINVAL;
	struct mt_chunk_ref ref = {
		.file_off = c->block_off, .rec_off = *off,
		.len = le32(h + 1), .thread_idx = le32(h + 5), .n_events = le32(h + 9),
		.t_first = le64(h + 13), .t_last = le64(h + 21), .first_seq = le64(h + 29),
	};
	if (ref.len > n - *off - MT_EVENTS_HEADER_SIZE || ref.n_events > ref.len)
		return -EINVAL;  /* every event takes at least one byte */
	int r = GROW(tr->chunks, tr->n_chunks, c->rd->cap_chunks, MT_TRACE_CHUNKS_MAX);
	if (r)
		return limit_hit(c, r, "event chunks", MT_TRACE_CHUNKS_MAX);
	tr->chunks[tr->n_chunks++] = ref;
	c->rd->header_events += ref.n_events;
	if (ref.n_events)
		see_tick(c, ref.t_first);
	*off += MT_EVENTS_HEADER_SIZE + ref.len;
	return 0;
}

static COLD int record_fail(struct p1 *c, int r, uint8_t kind)
{
	if (c->err[0])
		return r;  /* the handler said why */
	if (r == -ENOMEM)
		return fail(c->err, r, "out of memory reading '%s'", c->tr->path);
	if (kind < N_REC_KINDS && rec_kinds[kind].name)
		return fail(c->err, -EINVAL, "'%s': malformed %s record at offset %u of block at offset %llu",
		            c->tr->path, rec_kinds[kind].name, c->rec_off, (unsigned long long)c->block_off);
	return fail(c->err, -EINVAL, "'%s': malformed record (kind %u) at offset %u of block at offset %llu",
	            c->tr->path, kind, c->rec_off, (unsigned long long)c->block_off);
}

static int walk_block(struct p1 *c, const uint8_t *raw, uint32_t n)
{
	uint32_t off = 0;
	while (off < n) {
		uint8_t kind = raw[off];
		c->rec_off = off;
		int r = kind == MT_REC_EVENTS ? index_chunk(c, raw, n, &off) : small_record(c, raw, n, &off);
		if (r)
			return record_fail(c, r, kind);
	}
	return 0;
}

/* ---- pass 1: blocks kept for replay ------------------------------------- */

/* The keep limit: mt_trace_keep_max, at most a quarter of physical memory. */
static uint64_t keep_limit(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	uint64_t lim = mt_trace_keep_max;
	if (pages > 0 && page > 0 && (uint64_t)pages / 4 * (uint64_t)page < lim)
		lim = (uint64_t)pages / 4 * (uint64_t)page;
	return lim;
}

/* Bytes a block of raw bytes takes in a segment: PAD after it, the next on a cache line. */
static size_t keep_size(uint32_t raw)
{
	return ((size_t)raw + PAD + 63) & ~(size_t)63;
}

/*
 * Room for a block of raw bytes at the end of the last segment (a new one
 * when it is full), or NULL past the limit or out of memory: the block is
 * then read again by replay.  The room is only taken by keep_block().
 */
static uint8_t *keep_buffer(struct rd *rd, uint32_t raw)
{
	size_t bytes = keep_size(raw);
	if (rd->kept_bytes + bytes > rd->keep_limit)
		return NULL;
	struct keep_seg *sg = rd->n_segs ? &rd->segs[rd->n_segs - 1] : NULL;
	if (sg && sg->used + bytes <= sg->size)
		return sg->base + sg->used;
	size_t size = sg ? 2 * sg->size : KEEP_SEG_MIN;
	if (size > KEEP_SEG_MAX)
		size = KEEP_SEG_MAX;
	if (size < bytes)
		size = bytes;
	if (GROW(rd->segs, rd->n_segs, rd->cap_segs, SIZE_MAX / sizeof *rd->segs))
		return NULL;
	uint8_t *base = mt_big_alloc(size);
	if (!base)
		return NULL;
	rd->segs[rd->n_segs++] = (struct keep_seg){ .base = base, .size = size };
	return base;
}

/* Keeps the block at off, just decompressed into keep_buffer()'s room, if it holds chunks. */
static void keep_block(struct rd *rd, uint64_t off, uint32_t raw, size_t n_chunks)
{
	struct keep_seg *sg = &rd->segs[rd->n_segs - 1];
	size_t bytes = keep_size(raw);
	if (!n_chunks || GROW(rd->kept, rd->n_kept, rd->cap_kept, SIZE_MAX / sizeof *rd->kept))
		return;  /* the room stays free for the next block */
	rd->kept[rd->n_kept++] = (struct kept){ .off = off, .raw = sg->base + sg->used, .bytes = bytes,
	                                        .seg = (uint32_t)(rd->n_segs - 1),
	                                        .n_chunks = (uint32_t)n_chunks };
	sg->used += bytes;
	sg->blocks++;
	rd->kept_bytes += bytes;
}

/* Decompresses the block at off (header in *b passed) into room to keep it, or rd->raw. */
static int block_fetch(struct mt_trace *tr, struct rd *rd, uint64_t off, const struct blk *b,
                       uint8_t **keep)
{
	*keep = keep_buffer(rd, b->raw);
	if (*keep) {
		int st = block_body(tr, rd, off, b, *keep);
		memset(*keep + b->raw, 0, PAD);  /* the room may hold a block that was not kept */
		if (st != BLK_OK)
			*keep = NULL;
		return st;
	}
	if (reserve(&rd->raw, &rd->raw_cap, b->raw))
		return -ENOMEM;
	return block_body(tr, rd, off, b, rd->raw);
}

/* ---- pass 1: file ---------------------------------------------------- */

static int file_header(struct mt_trace *tr, uint64_t *data_off, char *err)
{
	uint8_t h[MT_FILE_HEADER_SIZE];
	ssize_t n = read_at(tr->fd, h, sizeof h, 0);
	if (n < 0)
		return fail(err, (int)n, "cannot read trace '%s': %s", tr->path, strerror((int)-n));
	if (n == 0)
		return fail(err, -EINVAL, "'%s' is empty: the recorder wrote nothing", tr->path);
	if (memcmp(h, MT_FILE_MAGIC, (size_t)n < 8 ? (size_t)n : 8))
		return fail(err, -EINVAL, "'%s' is not a memtriage trace (bad magic)", tr->path);
	if ((size_t)n < sizeof h)
		return fail(err, -EINVAL, "'%s' is cut inside its file header", tr->path);
	unsigned major = h[8] | h[9] << 8, minor = h[10] | h[11] << 8;
	uint32_t size = le32(h + 12);
	if (major != MT_FORMAT_MAJOR)
		return fail(err, -EINVAL, "'%s' is trace format %u.%u; this memtriage reads format %u.x",
		            tr->path, major, minor, MT_FORMAT_MAJOR);
	if (size < MT_FILE_HEADER_SIZE || size > FILE_HEADER_MAX)
		return fail(err, -EINVAL, "'%s': corrupt file header (size %u)", tr->path, size);
	if (size > tr->file_size)
		return fail(err, -EINVAL, "'%s' is cut inside its file header", tr->path);
	tr->minor = minor;
	tr->flags = (uint32_t)le64(h + 16);
	*data_off = size;
	return 0;
}

static void report(struct mt_trace *tr, uint64_t done,
                   void (*progress)(uint64_t, uint64_t, void *), void *arg)
{
	if (progress)
		progress(done, tr->file_size, arg);
}

/* Reads every block; stops at a clean end or a cut. */
static int read_blocks(struct p1 *c, uint64_t off,
                       void (*progress)(uint64_t, uint64_t, void *), void *arg)
{
	struct mt_trace *tr = c->tr;
	struct rd *rd = c->rd;
	uint64_t next_report = off + PROGRESS_STEP;
	for (;;) {
		struct blk b;
		uint8_t *keep = NULL;
		int st = block_head(tr, off, &b);
		if (st == BLK_OK)
			st = block_fetch(tr, rd, off, &b, &keep);
		if (st < 0)
			return fail(c->err, st, "cannot read trace '%s': %s", tr->path, strerror(-st));
		if (st == BLK_END)
			return 0;
		if (st == BLK_CUT || (st != BLK_OK && torn_tail(tr, rd, off, &b, st))) {
			tr->cut = 1;
			return 0;
		}
		if (st != BLK_OK)
			return fail(c->err, -EINVAL, "'%s': corrupt block at offset %llu", tr->path,
			            (unsigned long long)off);
		c->block_off = off;
		size_t chunks_before = tr->n_chunks;
		int r = walk_block(c, keep ? keep : rd->raw, b.raw);
		if (keep)
			keep_block(rd, off, b.raw, r ? 0 : tr->n_chunks - chunks_before);
		if (r)
			return r;
		tr->raw_bytes += b.raw;
		off += MT_BLOCK_HEADER_SIZE + (uint64_t)b.comp;
		if (off >= next_report) {
			report(tr, off, progress, arg);
			next_report = off + PROGRESS_STEP;
		}
	}
}

/* Ticks -> ns: least-squares line through the clock records (TSC only). */
static void clock_finish(struct mt_trace *tr, const struct rd *rd)
{
	const struct clockfit *f = &rd->fit;
	tr->ns_per_tick = 1.0;
	tr->tick0 = f->n ? f->t0 : rd->tmin == UINT64_MAX ? 0 : rd->tmin;
	if (!(tr->flags & MT_FILE_TSC) || f->n < 2 || !(f->cxx > 0))
		return;  /* ticks are ns already, or nothing to fit: 1 ns per tick */
	double b = f->cxy / f->cxx;
	if (!(b > 1e-6 && b < 1e6))
		return;
	/* The line crosses the first record's ns at t0 + shift ticks. */
	double shift = f->mx - f->my / b;
	if (!(shift > -1e18 && shift < 1e18))
		return;
	tr->ns_per_tick = b;
	tr->tick0 = f->t0 + (uint64_t)(int64_t)(shift + (shift < 0 ? -0.5 : 0.5));
}

/* Pass 1 stored ticks in the *_ns fields; now that the clock is known, convert. */
static void times_to_ns(struct mt_trace *tr)
{
	for (size_t i = 0; i < tr->n_modules; i++) {
		struct mt_module *m = &tr->modules[i];
		m->t_ns = mt_trace_ns(tr, m->t_ns);
		m->unload_t_ns = m->unload_t_ns ? mt_trace_ns(tr, m->unload_t_ns) : 0;
	}
	for (size_t i = 0; i < tr->n_threads; i++) {
		struct mt_thread_info *t = &tr->threads[i];
		t->start_ns = mt_trace_ns(tr, t->start_ns);
		t->exit_ns = t->exit_ns ? mt_trace_ns(tr, t->exit_ns) : 0;
	}
	for (size_t i = 0; i < tr->n_samples; i++)
		tr->samples[i].t_ns = mt_trace_ns(tr, tr->samples[i].t_ns);
	for (size_t i = 0; i < tr->n_markers; i++)
		tr->markers[i].t_ns = mt_trace_ns(tr, tr->markers[i].t_ns);
	for (size_t i = 0; i < tr->n_malloc_infos; i++)
		tr->malloc_infos[i].t_ns = mt_trace_ns(tr, tr->malloc_infos[i].t_ns);
	if (tr->ended)
		tr->end_ns = mt_trace_ns(tr, tr->end_ns);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Adds the sequence gaps of one thread's chunks (file order) to lost_events. */
static void count_lost(struct mt_trace *tr, const uint32_t *ci, uint32_t n)
{
	uint64_t expect = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct mt_chunk_ref *ch = &tr->chunks[ci[i]];
		if (ch->first_seq > expect)
			tr->lost_events += ch->first_seq - expect;
		if (ch->first_seq + ch->n_events > expect)
			expect = ch->first_seq + ch->n_events;
	}
}

/* Groups chunk indices by thread (file order within) into spans. */
static int group_chunks(struct mt_trace *tr, struct rd *rd)
{
	size_t n = tr->n_chunks;
	uint64_t *key = malloc((n ? n : 1) * sizeof *key);
	rd->by_thread = malloc((n ? n : 1) * sizeof *rd->by_thread);
	rd->spans = malloc((n ? n : 1) * sizeof *rd->spans);
	if (!key || !rd->by_thread || !rd->spans) {
		free(key);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		key[i] = (uint64_t)tr->chunks[i].thread_idx << 32 | i;
	qsort(key, n, sizeof *key, cmp_u64);
	rd->n_spans = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t t = (uint32_t)(key[i] >> 32);
		rd->by_thread[i] = (uint32_t)key[i];
		if (!rd->n_spans || rd->spans[rd->n_spans - 1].thread_idx != t)
			rd->spans[rd->n_spans++] = (struct span){ .thread_idx = t, .first = (uint32_t)i };
		rd->spans[rd->n_spans - 1].n++;
	}
	free(key);
	for (size_t s = 0; s < rd->n_spans; s++)
		count_lost(tr, rd->by_thread + rd->spans[s].first, rd->spans[s].n);
	return 0;
}

static int trace_new(const char *path, struct mt_trace **out, char *err)
{
	struct mt_trace *tr = calloc(1, sizeof *tr);
	struct rd *rd = calloc(1, sizeof *rd);
	if (tr)
		tr->fd = -1;
	*out = tr;
	if (!tr || !rd || !(tr->path = strdup(path)) || !(rd->dctx = ZSTD_createDCtx())) {
		if (rd)
			ZSTD_freeDCtx(rd->dctx);
		free(rd);
		return fail(err, -ENOMEM, "out of memory opening '%s'", path);
	}
	rd->tmin = UINT64_MAX;
	rd->keep_limit = keep_limit();
	tr->priv = rd;
	return 0;
}

static int trace_open_file(struct mt_trace *tr, char *err)
{
	struct stat st;
	int e;
	tr->fd = open(tr->path, O_RDONLY | O_CLOEXEC);
	if (tr->fd < 0)
		return e = errno, fail(err, -e, "cannot open trace '%s': %s", tr->path, strerror(e));
	if (fstat(tr->fd, &st))
		return e = errno, fail(err, -e, "cannot read trace '%s': %s", tr->path, strerror(e));
	if (S_ISDIR(st.st_mode))
		return fail(err, -EISDIR, "cannot read trace '%s': %s", tr->path, strerror(EISDIR));
	if (!S_ISREG(st.st_mode))
		return fail(err, -EINVAL, "'%s' is not a regular file", tr->path);
	tr->file_size = (uint64_t)st.st_size;
	posix_fadvise(tr->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return 0;
}

int mt_trace_open(const char *path, struct mt_trace **out, char err[MT_ERR_LEN],
                  void (*progress)(uint64_t done, uint64_t total, void *arg), void *arg)
{
	struct mt_trace *tr;
	uint64_t off = 0;
	err[0] = 0;
	*out = NULL;
	int r = trace_new(path, &tr, err);
	if (!r)
		r = trace_open_file(tr, err);
	if (!r)
		r = file_header(tr, &off, err);
	if (!r) {
		struct p1 c = { .tr = tr, .rd = tr->priv, .err = err };
		report(tr, 0, progress, arg);
		r = read_blocks(&c, off, progress, arg);
	}
	if (!r && group_chunks(tr, tr->priv))
		r = fail(err, -ENOMEM, "out of memory reading '%s'", path);
	if (r) {
		mt_trace_close(tr);
		return r;
	}
	struct rd *rd = tr->priv;
	tr->n_events = rd->header_events;
	clock_finish(tr, rd);
	times_to_ns(tr);
	report(tr, tr->file_size, progress, arg);
	*out = tr;
	return 0;
}

/* ---- pass 2: replay ------------------------------------------------------ */

typedef unsigned __int128 mkey_t;

/* Heap key classes at equal time: load a chunk, then frees, then allocs. */
enum { KEY_LOAD = 0, KEY_FREE = 1, KEY_ALLOC = 2 };
#define KEY_THREAD_MASK ((1u << 30) - 1)
#define KEY_MAX (~(mkey_t)0)

static inline mkey_t mkkey(uint64_t t, unsigned cls, uint32_t s)
{
	return (mkey_t)t << 32 | (mkey_t)(cls << 30 | s);
}

/*
 * Decode position in the active chunk.  Kept in a local while a stream runs
 * so it lives in registers across the callback; stored back on exit.
 */
struct cursor {
	const uint8_t *tag, *tag_end;    /* MT_COL_TAG: one byte per event */
	const uint8_t *time, *time_end;  /* the varint columns; PAD zero bytes follow the last */
	const uint8_t *size, *size_end;
	const uint8_t *stack, *stack_end;
	const uint8_t *ptr, *ptr_end;    /* coded by ptr_mode (enum mt_ptr_mode) */
	const uint8_t *node, *node_end;
	unsigned ptr_mode;
	uint32_t thread_idx;             /* of the chunk, copied into each event */
	uint64_t t;                      /* delta base: last timestamp */
	uint64_t last_ptr;               /* delta base in MT_PTRS_DELTA mode */
	uint64_t last_node;              /* base of stack ids: last node defined in the chunk */
};

#define KEPT_NONE UINT32_MAX

/* One thread's stream: its active chunk and the chunks that follow. */
struct stream {
	struct cursor cur;
	uint64_t prev_id, prev_ip;  /* node delta bases */
	uint8_t has_ev2;         /* ev2 (a realloc's alloc half) follows the event just decoded */
	struct mt_event ev;      /* next event to deliver, under the stream's heap key */
	struct mt_event ev2;
	uint32_t next, last;     /* rd->by_thread[next .. last): chunks not loaded yet */
	uint32_t chunk;          /* index in tr->chunks of the active chunk, for messages */
	uint32_t kept;           /* rd->kept index the active chunk lies in, or KEPT_NONE */
	uint8_t *buf;            /* copy of the active chunk's columns, plus PAD (not kept) */
	size_t cap;
};

struct replay {
	struct mt_trace *tr;
	struct rd *rd;
	char *err;
	int code;                /* error code behind a message already in err */
	struct stream *s;
	mkey_t *heap;            /* min-heap of the streams' next keys */
	size_t n_heap;
	uint64_t nodes_seen;     /* MT_EV_NODE entries decoded */
	mt_events_fn fn;
	void *arg;
	size_t n_out;            /* events in out[] not delivered yet */
	struct mt_event out[MT_REPLAY_BATCH];
};

static inline void heap_push(struct replay *R, mkey_t k)
{
	mkey_t *h = R->heap;
	size_t i = R->n_heap++;
	while (i > 0 && h[(i - 1) / 2] > k) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = k;
}

/*
 * Replaces the root (the running stream's key) with k and sifts it down.
 * The running stream stays at the root while it delivers, so switching
 * streams costs one sift instead of a pop and a push.  (A branch-free
 * loser tree on these 128-bit keys measured 45% slower when threads
 * interleave event by event: more instructions than the mispredictions
 * it saves.)
 */
static inline void heap_sift_root(struct replay *R, mkey_t k)
{
	mkey_t *h = R->heap;
	size_t n = R->n_heap, i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && h[c + 1] < h[c])
			c++;
		if (h[c] >= k)
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = k;
}

static inline void heap_drop_root(struct replay *R)
{
	if (--R->n_heap)
		heap_sift_root(R, R->heap[R->n_heap]);
}

/* The smallest key below the root: where the root's stream must yield. */
static inline mkey_t heap_second(const struct replay *R)
{
	const mkey_t *h = R->heap;
	if (R->n_heap < 3)
		return R->n_heap == 2 ? h[1] : KEY_MAX;
	return h[1] < h[2] ? h[1] : h[2];
}

static COLD int events_fail(struct replay *R, const struct stream *s)
{
	if (R->err[0])
		return R->code ? R->code : -EINVAL;
	const struct mt_chunk_ref *ch = &R->tr->chunks[s->chunk];
	return fail(R->err, -EINVAL, "'%s': malformed events in thread %u (chunk at offset %u of block at offset %llu)",
	            R->tr->path, ch->thread_idx, ch->rec_off, (unsigned long long)ch->file_off);
}

/* Makes room for nodes[id].  Returns 0, -1 with the message written. */
static COLD int nodes_reserve(struct replay *R, uint64_t id)
{
	struct mt_trace *tr = R->tr;
	struct rd *rd = R->rd;
	if (id >= MT_TRACE_NODES_MAX) {
		R->code = fail(R->err, -E2BIG, "'%s': call-stack node id %llu beyond the reader limit of %u",
		     tr->path, (unsigned long long)id, MT_TRACE_NODES_MAX);
		return -1;
	}
	if (id >= rd->cap_nodes) {
		size_t cap = rd->cap_nodes ? rd->cap_nodes : 1024;
		while (cap <= id)
			cap *= 2;
		if (cap > MT_TRACE_NODES_MAX)
			cap = MT_TRACE_NODES_MAX;
		/* big arrays: huge pages, growth without copying (bigmem.h) */
		struct mt_node *n = mt_big_grow(tr->nodes, rd->cap_nodes * sizeof *n, cap * sizeof *n);
		if (!n) {
			R->code = fail(R->err, -ENOMEM, "out of memory reading '%s'", tr->path);
			return -1;
		}
		tr->nodes = n;
		rd->cap_nodes = cap;
	}
	return 0;
}

/*
 * Makes nodes[id] exist (id >= n_nodes), nodes before it undefined; the
 * caller writes nodes[id].  Returns 0, -1 with the message written.  New
 * ids mostly come in order, and the array is far bigger than the caches:
 * the lines a few nodes ahead are fetched for writing now, so storing
 * them later does not wait for memory.
 */
static inline int nodes_extend(struct replay *R, uint64_t id)
{
	struct mt_trace *tr = R->tr;
	if (UNLIKELY(id >= R->rd->cap_nodes) && nodes_reserve(R, id))
		return -1;
	if (UNLIKELY(id > tr->n_nodes))
		memset(tr->nodes + tr->n_nodes, 0, (id - tr->n_nodes) * sizeof *tr->nodes);
	if (id + 16 < R->rd->cap_nodes)
		mt_prefetch(&tr->nodes[id + 16]);
	tr->n_nodes = id + 1;
	return 0;
}

/*
 * Reads a varint at p with no bounds check (see PAD).  Returns the byte
 * after it, or NULL when it is longer than 10 bytes.  One- and two-byte
 * values (most of a chunk) take the unrolled path.  A branch-free decoder
 * (8-byte load, mask, shifts) measured slower: fewer mispredictions, but
 * more instructions than the mispredictions cost.
 */
static HOT_INLINE const uint8_t *uv(const uint8_t *p, uint64_t *v)
{
	uint64_t b = *p++;
	if (LIKELY(b < 0x80)) {
		*v = b;
		return p;
	}
	uint64_t r = b & 0x7f;
	b = *p++;
	if (LIKELY(b < 0x80)) {
		*v = r | b << 7;
		return p;
	}
	r |= (b & 0x7f) << 7;
	for (unsigned shift = 14; shift < 70; shift += 7) {
		b = *p++;
		r |= (b & 0x7f) << shift;
		if (b < 0x80) {
			*v = r;
			return p;
		}
	}
	return NULL;
}

/* MT_EV_NODE: svarint d_id, svarint (id - parent), svarint d_ip.  Returns the next byte or NULL. */
static const uint8_t *stream_node(struct replay *R, struct stream *s, const uint8_t *p)
{
	uint64_t a, b, c;
	if (!(p = uv(p, &a)) || !(p = uv(p, &b)) || !(p = uv(p, &c)))
		return NULL;
	uint64_t id = s->prev_id + (uint64_t)mt_unzigzag(a);
	uint64_t parent = id - (uint64_t)mt_unzigzag(b);
	uint64_t ip = s->prev_ip + (uint64_t)mt_unzigzag(c);
	s->prev_id = id;
	s->prev_ip = ip;
	R->nodes_seen++;
	if (id == 0 || parent >= id || ip == 0)
		return NULL;
	struct mt_node *n;
	if (id >= R->tr->n_nodes) {  /* a new id: nothing to check against */
		if (nodes_extend(R, id))
			return NULL;
		n = &R->tr->nodes[id];
	} else if ((n = &R->tr->nodes[id])->ip && (n->ip != ip || n->parent != parent)) {
		R->code = fail(R->err, -EINVAL, "'%s': conflicting definitions of call-stack node %llu",
		               R->tr->path, (unsigned long long)id);
		return NULL;
	}
	n->ip = ip;
	n->parent = (uint32_t)parent;
	return p;
}

/* Reads one pointer from the pointer column; 0, or -1 when it is cut short. */
static HOT_INLINE int take_ptr(struct cursor *c, uint64_t *ptr)
{
	uint64_t v;
	if (c->ptr_mode == MT_PTRS_DELTA) {
		if (UNLIKELY(!(c->ptr = uv(c->ptr, &v)) || c->ptr > c->ptr_end))
			return -1;
		*ptr = c->last_ptr += (uint64_t)mt_unzigzag(v);
		return 0;
	}
	if (UNLIKELY(c->ptr_end - c->ptr < (long)c->ptr_mode))
		return -1;
	memcpy(&v, c->ptr, 8);  /* PAD makes the 8-byte read safe */
	c->ptr += c->ptr_mode;
	*ptr = c->ptr_mode == MT_PTRS_WHOLE8 ? v : v & 0xffffffffffffull;
	return 0;
}

/* Reads the size and stack of an allocation; 0, or -1 when malformed. */
static HOT_INLINE int take_size_stack(struct cursor *c, uint64_t *size, uint64_t *stack)
{
	uint64_t d;
	if (UNLIKELY(!(c->size = uv(c->size, size)) || !(c->stack = uv(c->stack, &d)) ||
	             c->size > c->size_end || c->stack > c->stack_end))
		return -1;
	*stack = c->last_node + (uint64_t)mt_unzigzag(d);
	return *stack > UINT32_MAX ? -1 : 0;
}

/* Realloc family: the free half (if any) goes to e, the alloc half to s->ev2 after it. */
static HOT_INLINE int stream_realloc(struct stream *s, struct cursor *c, uint8_t tag,
                                     struct mt_event *e)
{
	uint64_t dtb, dta, size, stack;
	uint64_t old, new;
	if (!(c->time = uv(c->time, &dtb)) || !(c->time = uv(c->time, &dta)) ||
	    c->time > c->time_end || take_size_stack(c, &size, &stack) || take_ptr(c, &old) ||
	    take_ptr(c, &new))
		return -1;
	uint64_t t_before = c->t + dtb, t_after = t_before + dta;
	int failed = new == 0 && size > 0;
	int has_free = old != 0 && !failed;
	struct mt_event *a = has_free ? &s->ev2 : e;
	c->t = t_after;
	a->t = t_after;
	a->ptr = new;
	a->size = size;
	a->stack = (uint32_t)stack;
	a->thread_idx = c->thread_idx;
	a->type = MT_E_ALLOC;
	a->func = tag;
	a->realloc_failed = (uint8_t)failed;
	if (has_free) {
		*e = (struct mt_event){ .t = t_before, .ptr = old, .thread_idx = c->thread_idx,
		                        .type = MT_E_FREE, .func = tag };
		s->has_ev2 = 1;
	}
	return 1;
}

/* An event's time delta and pointer; 0, or -1 when malformed. */
static HOT_INLINE int take_time_ptr(struct cursor *c, uint64_t *t, uint64_t *ptr)
{
	uint64_t dt;
	if (UNLIKELY(!(c->time = uv(c->time, &dt)) || c->time > c->time_end))
		return -1;
	*t = c->t += dt;
	return take_ptr(c, ptr);
}

/*
 * Decodes the next alloc or free at c into e (a realloc's alloc half into
 * s->ev2), defining nodes on the way.  Returns 1, 0 at the end of the
 * chunk, or -1 on malformed bytes.
 */
static HOT_INLINE int stream_decode(struct replay *R, struct stream *s, struct cursor *c,
                                    struct mt_event *e)
{
	uint64_t size, stack;
	for (;;) {
		if (UNLIKELY(c->tag == c->tag_end))  /* every column used up exactly */
			return c->time == c->time_end && c->size == c->size_end && c->stack == c->stack_end &&
			       c->ptr == c->ptr_end && c->node == c->node_end ? 0 : -1;
		uint8_t tag = *c->tag++;
		switch (tag) {
		case MT_EV_FREE:
			if (take_time_ptr(c, &e->t, &e->ptr))
				return -1;
			e->size = 0;
			e->stack = 0;
			e->thread_idx = c->thread_idx;
			e->type = MT_E_FREE;
			e->func = MT_EV_FREE;
			e->realloc_failed = 0;
			return 1;
		case MT_EV_MALLOC: case MT_EV_CALLOC: case MT_EV_POSIX_MEMALIGN:
		case MT_EV_ALIGNED_ALLOC: case MT_EV_MEMALIGN: case MT_EV_VALLOC: case MT_EV_PVALLOC:
			if (take_time_ptr(c, &e->t, &e->ptr) || take_size_stack(c, &size, &stack))
				return -1;
			e->size = size;
			e->stack = (uint32_t)stack;
			e->thread_idx = c->thread_idx;
			e->type = MT_E_ALLOC;
			e->func = tag;
			e->realloc_failed = 0;
			return 1;
		case MT_EV_REALLOC: case MT_EV_REALLOCARRAY:
			return stream_realloc(s, c, tag, e);
		case MT_EV_NODE:
			if (!(c->node = stream_node(R, s, c->node)) || c->node > c->node_end)
				return -1;
			c->last_node = s->prev_id;
			continue;
		default:
			return -1;
		}
	}
}

/* Next event into e: 1, 0 when the active chunk is used up, -1 malformed. */
static HOT_INLINE int stream_step(struct replay *R, struct stream *s, struct cursor *c,
                                  struct mt_event *e)
{
	if (UNLIKELY(s->has_ev2)) {
		*e = s->ev2;
		s->has_ev2 = 0;
		return 1;
	}
	return stream_decode(R, s, c, e);
}

/* Heap key of event e of stream i. */
static inline mkey_t event_key(const struct mt_event *e, uint32_t i)
{
	return mkkey(e->t, e->type == MT_E_FREE ? KEY_FREE : KEY_ALLOC, i);
}

/* Returns the decompressed block at off from the cache, reading it on a miss. */
static int cache_get(struct replay *R, uint64_t off, const uint8_t **raw, uint32_t *len)
{
	struct rd *rd = R->rd;
	struct cache_slot *victim = &rd->cache[0];
	for (int i = 0; i < MT_TRACE_CACHE_BLOCKS; i++) {
		struct cache_slot *c = &rd->cache[i];
		if (c->used && c->off == off) {
			c->used = ++rd->cache_clock;
			*raw = c->raw;
			*len = c->len;
			return 0;
		}
		if (c->used < victim->used)
			victim = c;
	}
	struct blk b;
	victim->used = 0;
	int st = block_read(R->tr, rd, off, &b, &victim->raw, &victim->cap);
	if (st < 0)
		return fail(R->err, st, "cannot read trace '%s': %s", R->tr->path, strerror(-st));
	if (st != BLK_OK)
		return fail(R->err, -EINVAL, "'%s': block at offset %llu changed after the trace was opened",
		            R->tr->path, (unsigned long long)off);
	victim->off = off;
	victim->len = b.raw;
	victim->used = ++rd->cache_clock;
	*raw = victim->raw;
	*len = b.raw;
	return 0;
}

/*
 * Points the cursor at the columns of a chunk copy (docs/trace-format.md,
 * "Event chunks"): the directory of column lengths, then the columns.
 * Returns 0, or -1 when the directory does not add up.
 */
static int columns_open(struct cursor *c, const uint8_t *buf, uint32_t len, uint8_t ptr_mode,
                        const struct mt_chunk_ref *ch)
{
	if (len < MT_COLUMNS_DIR_SIZE ||
	    (ptr_mode != MT_PTRS_DELTA && ptr_mode != MT_PTRS_WHOLE6 && ptr_mode != MT_PTRS_WHOLE8))
		return -1;
	const uint8_t *at = buf + MT_COLUMNS_DIR_SIZE, *end = buf + len;
	const uint8_t *start[MT_N_COLUMNS], *stop[MT_N_COLUMNS];
	for (int k = 0; k < MT_N_COLUMNS; k++) {
		uint32_t n = le32(buf + 4 * k);
		if (n > (uint64_t)(end - at))
			return -1;
		start[k] = at;
		stop[k] = at += n;
	}
	if (at != end || (uint64_t)(stop[MT_COL_TAG] - start[MT_COL_TAG]) != ch->n_events)
		return -1;
	*c = (struct cursor){
		.thread_idx = ch->thread_idx,
		.tag = start[MT_COL_TAG], .tag_end = stop[MT_COL_TAG],
		.time = start[MT_COL_TIME], .time_end = stop[MT_COL_TIME],
		.size = start[MT_COL_SIZE], .size_end = stop[MT_COL_SIZE],
		.stack = start[MT_COL_STACK], .stack_end = stop[MT_COL_STACK],
		.ptr = start[MT_COL_PTR], .ptr_end = stop[MT_COL_PTR],
		.node = start[MT_COL_NODE], .node_end = stop[MT_COL_NODE],
		.ptr_mode = ptr_mode, .t = ch->t_first,
	};
	return 0;
}

/* The kept block at off still in memory, or KEPT_NONE. */
static uint32_t kept_find(const struct rd *rd, uint64_t off)
{
	size_t lo = 0, hi = rd->n_kept;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (rd->kept[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < rd->n_kept && rd->kept[lo].off == off && rd->kept[lo].raw ? (uint32_t)lo : KEPT_NONE;
}

/* The active chunk of a stream is used up: a kept block whose chunks are all replayed is freed. */
static void kept_release(struct rd *rd, struct stream *s)
{
	if (s->kept == KEPT_NONE)
		return;
	struct kept *k = &rd->kept[s->kept];
	s->kept = KEPT_NONE;
	if (!k->left || --k->left)
		return;
	struct keep_seg *sg = &rd->segs[k->seg];
	k->raw = NULL;
	rd->kept_bytes -= k->bytes;
	if (--sg->blocks == 0) {
		mt_big_free(sg->base, sg->size);
		sg->base = NULL;
	}
}

/*
 * Finds the raw bytes of the stream's next chunk: in place in a kept block,
 * or copied out of a cached one.  Points *h at the chunk's header and *cols
 * at its columns (followed by PAD readable bytes).
 */
static int chunk_bytes(struct replay *R, struct stream *s, const struct mt_chunk_ref *ch,
                       const uint8_t **h, const uint8_t **cols)
{
	const uint8_t *raw = NULL;
	uint32_t len = 0;
	s->kept = kept_find(R->rd, ch->file_off);
	if (s->kept != KEPT_NONE) {
		*h = R->rd->kept[s->kept].raw + ch->rec_off;  /* pass 1 checked the header */
		*cols = *h + MT_EVENTS_HEADER_SIZE;
		return 0;
	}
	int r = cache_get(R, ch->file_off, &raw, &len);
	if (r)
		return r;
	*h = raw + ch->rec_off;
	if (ch->rec_off > len || len - ch->rec_off < MT_EVENTS_HEADER_SIZE + (uint64_t)ch->len ||
	    (*h)[0] != MT_REC_EVENTS || le32(*h + 1) != ch->len)
		return fail(R->err, -EINVAL, "'%s': block at offset %llu changed after the trace was opened",
		            R->tr->path, (unsigned long long)ch->file_off);
	if (reserve(&s->buf, &s->cap, (size_t)ch->len + PAD))
		return fail(R->err, -ENOMEM, "out of memory reading '%s'", R->tr->path);
	memcpy(s->buf, *h + MT_EVENTS_HEADER_SIZE, ch->len);
	memset(s->buf + ch->len, 0, PAD);
	*cols = s->buf;
	return 0;
}

/* Opens the stream's next chunk and resets the delta bases. */
static int stream_load(struct replay *R, struct stream *s)
{
	const struct mt_chunk_ref *ch = &R->tr->chunks[R->rd->by_thread[s->next]];
	const uint8_t *h = NULL, *cols = NULL;
	s->chunk = R->rd->by_thread[s->next++];
	int r = chunk_bytes(R, s, ch, &h, &cols);
	if (r)
		return r;
	if (columns_open(&s->cur, cols, ch->len, h[MT_EVENTS_HEADER_SIZE - 3], ch))
		return fail(R->err, -EINVAL, "'%s': malformed events in thread %u", R->tr->path,
		            ch->thread_idx);
	s->prev_id = s->prev_ip = 0;
	s->has_ev2 = 0;
	return 0;
}

/* Key under which stream i waits for its next chunk: that chunk's t_first. */
static mkey_t load_key(const struct replay *R, uint32_t i)
{
	return mkkey(R->tr->chunks[R->rd->by_thread[R->s[i].next]].t_first, KEY_LOAD, i);
}

/* Stream i (at the root) used up its chunk: wait for the next one, or retire. */
static void stream_requeue(struct replay *R, uint32_t i)
{
	struct stream *s = &R->s[i];
	kept_release(R->rd, s);
	if (s->next < s->last) {
		heap_sift_root(R, load_key(R, i));
		return;
	}
	heap_drop_root(R);
	free(s->buf);
	s->buf = NULL;
	s->cap = 0;
}

/* Stream i (at the root) loads its next chunk and requeues under its first event. */
static int stream_start(struct replay *R, uint32_t i)
{
	struct stream *s = &R->s[i];
	int r = stream_load(R, s);
	if (r)
		return r;
	r = stream_decode(R, s, &s->cur, &s->ev);
	if (r < 0)
		return events_fail(R, s);
	if (r > 0)
		heap_sift_root(R, event_key(&s->ev, i));
	else
		stream_requeue(R, i);
	return 0;
}

/* Delivers the events in out[].  Returns 0 or fn's non-zero value. */
static int flush(struct replay *R)
{
	size_t n = R->n_out;
	R->n_out = 0;
	return n ? R->fn(R->out, n, R->arg) : 0;
}

/*
 * Stream i (at the root) queues its events in out[] while they sort before
 * `limit` (the next smallest key; KEY_MAX when no other stream waits), then
 * sifts down under its next key or requeues for its next chunk.  Events are
 * decoded straight into out[], delivered whenever it fills.  Returns 0,
 * fn's non-zero value, or a negative code.
 */
static int stream_run(struct replay *R, uint32_t i, mkey_t limit)
{
	struct stream *s = &R->s[i];
	struct cursor c = s->cur;
	struct mt_event *out = R->out;
	size_t n = R->n_out;
	int r = 0, stop = 0;
	out[n++] = s->ev;
	for (;;) {
		if (UNLIKELY(n == MT_REPLAY_BATCH)) {
			R->n_out = n;
			if ((stop = flush(R)))
				break;
			n = 0;
		}
		r = stream_step(R, s, &c, &out[n]);
		if (UNLIKELY(r <= 0))
			break;
		if (limit != KEY_MAX) {
			mkey_t k = event_key(&out[n], i);
			if (k > limit) {
				s->ev = out[n];
				heap_sift_root(R, k);
				break;
			}
		}
		n++;
	}
	s->cur = c;
	if (stop)
		return stop;
	R->n_out = n;
	if (r < 0)
		return (stop = flush(R)) ? stop : events_fail(R, s);
	if (r == 0)
		stream_requeue(R, i);
	return 0;
}

static int merge(struct replay *R)
{
	while (R->n_heap) {
		mkey_t k = R->heap[0];
		uint32_t i = (uint32_t)k & KEY_THREAD_MASK;
		unsigned cls = ((uint32_t)k >> 30) & 3;
		int r = cls == KEY_LOAD ? stream_start(R, i) : stream_run(R, i, heap_second(R));
		if (r)
			return r;
	}
	return flush(R);
}

static void replay_release(struct replay *R, size_t n)
{
	for (size_t i = 0; R->s && i < n; i++)
		free(R->s[i].buf);
	free(R->s);
	free(R->heap);
}

int mt_trace_replay_batch(struct mt_trace *tr, mt_events_fn fn, void *arg, char err[MT_ERR_LEN])
{
	struct rd *rd = tr->priv;
	size_t n = rd->n_spans;
	struct replay *R = calloc(1, sizeof *R);  /* out[] is 10 KiB: not on the stack */
	err[0] = 0;
	if (!R)
		return fail(err, -ENOMEM, "out of memory reading '%s'", tr->path);
	*R = (struct replay){ .tr = tr, .rd = rd, .err = err, .fn = fn, .arg = arg };
	R->s = calloc(n ? n : 1, sizeof *R->s);
	R->heap = malloc((n ? n : 1) * sizeof *R->heap);
	if (!R->s || !R->heap) {
		replay_release(R, 0);
		free(R);
		return fail(err, -ENOMEM, "out of memory reading '%s'", tr->path);
	}
	tr->n_nodes = 0;  /* a second replay redefines them */
	for (size_t k = 0; k < rd->n_kept; k++)
		rd->kept[k].left = rd->kept[k].n_chunks;
	for (uint32_t i = 0; i < n; i++) {
		R->s[i].next = rd->spans[i].first;
		R->s[i].last = rd->spans[i].first + rd->spans[i].n;
		R->s[i].kept = KEPT_NONE;
		heap_push(R, load_key(R, i));
	}
	int r = merge(R);
	replay_release(R, n);
	if (!r)
		tr->n_events = rd->header_events - R->nodes_seen;
	free(R);
	return r;
}

struct one_by_one {          /* mt_trace_replay() on top of the batches */
	mt_event_fn fn;
	void *arg;
};

static int deliver_each(const struct mt_event *ev, size_t n, void *arg)
{
	const struct one_by_one *o = arg;
	for (size_t i = 0; i < n; i++) {
		int r = o->fn(&ev[i], o->arg);
		if (r)
			return r;
	}
	return 0;
}

int mt_trace_replay(struct mt_trace *tr, mt_event_fn fn, void *arg, char err[MT_ERR_LEN])
{
	struct one_by_one o = { fn, arg };
	return mt_trace_replay_batch(tr, deliver_each, &o, err);
}

/* ---- accessors ----------------------------------------------------------- */

uint64_t mt_trace_ns(const struct mt_trace *tr, uint64_t ticks)
{
	if (ticks <= tr->tick0)
		return 0;
	uint64_t d = ticks - tr->tick0;
	if (tr->ns_per_tick == 1.0)
		return d;
	double ns = (double)d * tr->ns_per_tick + 0.5;
	return ns >= 0x1p64 ? UINT64_MAX : (uint64_t)ns;
}

uint64_t mt_trace_stat(const struct mt_trace *tr, uint32_t key, uint64_t def)
{
	for (size_t i = 0; tr && i < tr->n_stats; i++)
		if (tr->stats[i].key == key)
			return tr->stats[i].value;
	return def;
}

static void rd_free(struct rd *rd)
{
	if (!rd)
		return;
	ZSTD_freeDCtx(rd->dctx);
	free(rd->comp);
	free(rd->raw);
	for (int i = 0; i < MT_TRACE_CACHE_BLOCKS; i++)
		free(rd->cache[i].raw);
	for (size_t i = 0; i < rd->n_segs; i++)
		mt_big_free(rd->segs[i].base, rd->segs[i].size);
	free(rd->segs);
	free(rd->kept);
	free(rd->by_thread);
	free(rd->spans);
	free(rd);
}

void mt_trace_close(struct mt_trace *tr)
{
	if (!tr)
		return;
	if (tr->fd >= 0)
		close(tr->fd);
	process_clear(tr);
	for (size_t i = 0; i < tr->n_modules; i++)
		module_release(&tr->modules[i]);
	for (size_t i = 0; i < tr->n_threads; i++)
		free(tr->threads[i].name);
	for (size_t i = 0; i < tr->n_samples; i++)
		free(tr->samples[i].kv);
	for (size_t i = 0; i < tr->n_markers; i++)
		free(tr->markers[i].label);
	free(tr->modules);
	free(tr->threads);
	free(tr->samples);
	free(tr->markers);
	for (size_t i = 0; i < tr->n_malloc_infos; i++)
		free(tr->malloc_infos[i].xml);
	free(tr->malloc_infos);
	free(tr->stats);
	struct rd *rd = tr->priv;
	mt_big_free(tr->nodes, rd ? rd->cap_nodes * sizeof *tr->nodes : 0);
	free(tr->chunks);
	rd_free(tr->priv);
	free(tr->path);
	free(tr);
}
