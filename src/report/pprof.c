/*
 * pprof reporter: the analysis as a gzip-compressed profile.proto
 * (proto/profile.proto), the heap profile format of Go's runtime/pprof,
 * read by `go tool pprof`, pprof itself and the tools that import it.
 *
 * What it holds:
 *  - one Sample per call stack of the analysis (a->stacks), with the four
 *    values of a Go heap profile first, so tools treat it as one:
 *      alloc_objects/count  allocation calls (failed ones included)
 *      alloc_space/bytes    bytes allocated by successful calls
 *      inuse_objects/count  blocks still live when the recording ended:
 *      inuse_space/bytes    leaked at exit (or live at exec, or when a cut
 *                           trace stops), which a Go profile would call
 *                           "in use" at the moment it was taken
 *    then memtriage's own
 *      peak_space/bytes     live bytes of the stack at the heap's peak
 *    and inuse_space as the default type, as in a Go heap profile;
 *  - a Location per return address, its Lines the inline chain at that
 *    address, innermost inlined function first; a Function per (name,
 *    source file); a Mapping per module of the trace, with its build-id;
 *  - comments saying what "in use" means for this trace and that the
 *    values are exact (every allocation is recorded: no sampling).
 *
 * The profile is streamed: the wire format merges concatenated messages
 * (repeated fields append), so each string, function, location and sample
 * is packed as a Profile of its own straight into the gzip stream, the
 * moment it is first needed.  Memory stays at the deduplication tables,
 * whatever the number of stacks.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "profile.pb-c.h"
#include "report/report.h"

typedef Perftools__Profiles__Profile   PbProfile;
typedef Perftools__Profiles__ValueType PbValueType;
typedef Perftools__Profiles__Sample    PbSample;
typedef Perftools__Profiles__Mapping   PbMapping;
typedef Perftools__Profiles__Location  PbLocation;
typedef Perftools__Profiles__Line      PbLine;
typedef Perftools__Profiles__Function  PbFunction;

/* Limits: each ends the report with -E2BIG rather than grow without bound. */
#define PP_STRINGS_MAX    (1u << 26)   /* distinct strings (a function key packs two indices) */
#define PP_IDS_MAX        (1u << 26)   /* distinct locations; distinct functions */
#define PP_FRAMES_MAX     (MT_STACK_DEPTH_MAX * MT_SYM_MAX_FRAMES)  /* a whole stack, inlines included */
#define PP_GZ_CHUNK       (64u << 10)  /* bytes staged before each deflate call */
#define PP_N_TYPES        5

/* ---- gzip output: zlib's deflate with a gzip wrapper ------------------- */

struct gz {
	z_stream z;
	FILE *out;
	int err;                       /* sticky: first error, negative errno */
	size_t n_in;                   /* bytes staged in in[] */
	unsigned char in[PP_GZ_CHUNK], out_buf[PP_GZ_CHUNK];
};

/* Starts a gzip stream into out: 0 or -ENOMEM. */
static int gz_open(struct gz *g, FILE *out)
{
	memset(&g->z, 0, sizeof(g->z));
	g->out = out;
	g->err = 0;
	g->n_in = 0;
	/* windowBits 15 + 16: a gzip header and trailer instead of zlib's */
	if (deflateInit2(&g->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
	                 Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	return 0;
}

/* Deflates the staged bytes (and finishes the stream when `flush` is Z_FINISH). */
static void gz_deflate(struct gz *g, int flush)
{
	g->z.next_in = g->in;
	g->z.avail_in = (uInt)g->n_in;
	g->n_in = 0;
	int rc;
	do {
		g->z.next_out = g->out_buf;
		g->z.avail_out = sizeof(g->out_buf);
		rc = deflate(&g->z, flush);
		size_t have = sizeof(g->out_buf) - g->z.avail_out;
		if (rc == Z_STREAM_ERROR) {
			g->err = g->err ? g->err : -EIO;
			return;
		}
		if (have && fwrite(g->out_buf, 1, have, g->out) != have && !g->err)
			g->err = errno ? -errno : -EIO;
	} while (g->z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
}

static void gz_write(struct gz *g, const uint8_t *data, size_t len)
{
	while (len && !g->err) {
		size_t n = sizeof(g->in) - g->n_in < len ? sizeof(g->in) - g->n_in : len;
		memcpy(g->in + g->n_in, data, n);
		g->n_in += n;
		data += n;
		len -= n;
		if (g->n_in == sizeof(g->in))
			gz_deflate(g, Z_NO_FLUSH);
	}
}

/* Finishes the stream (unless it already failed) and frees zlib's state: 0 or the error. */
static int gz_close(struct gz *g)
{
	if (!g->err)
		gz_deflate(g, Z_FINISH);
	deflateEnd(&g->z);
	return g->err;
}

/* protobuf-c's output interface, feeding the gzip stream. */
struct pb_sink {
	ProtobufCBuffer base;
	struct gz *gz;
};

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
	gz_write(((struct pb_sink *)b)->gz, data, len);
}

/* ---- an open-addressing map from a 64-bit key to a non-zero id ---------- */

struct idmap {
	uint64_t *keys;
	uint32_t *ids;                 /* 0: empty slot */
	size_t cap, n;                 /* cap: a power of two, or 0 */
};

static size_t mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (size_t)k;
}

/* The slot holding key's id, or NULL when key is absent. */
static uint32_t *idmap_find(const struct idmap *m, uint64_t key)
{
	for (size_t i = m->cap ? mix(key) & (m->cap - 1) : 0; m->cap && m->ids[i];
	     i = (i + 1) & (m->cap - 1))
		if (m->keys[i] == key)
			return &m->ids[i];
	return NULL;
}

/* The id stored under key, 0 when none. */
static uint32_t idmap_get(const struct idmap *m, uint64_t key)
{
	const uint32_t *id = idmap_find(m, key);
	return id ? *id : 0;
}

static void idmap_place(struct idmap *m, uint64_t key, uint32_t id)
{
	size_t i = mix(key) & (m->cap - 1);
	while (m->ids[i])
		i = (i + 1) & (m->cap - 1);
	m->keys[i] = key;
	m->ids[i] = id;
	m->n++;
}

/* Stores id (non-zero) under a key not yet present; grows at half full.  0 or -ENOMEM. */
static int idmap_put(struct idmap *m, uint64_t key, uint32_t id)
{
	if (2 * (m->n + 1) > m->cap) {
		struct idmap g = { .cap = m->cap ? 2 * m->cap : 1024 };
		g.keys = malloc(g.cap * sizeof(*g.keys));
		g.ids = calloc(g.cap, sizeof(*g.ids));
		if (!g.keys || !g.ids) {
			free(g.keys);
			free(g.ids);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++)
			if (m->ids[i])
				idmap_place(&g, m->keys[i], m->ids[i]);
		free(m->keys);
		free(m->ids);
		*m = g;
	}
	idmap_place(m, key, id);
	return 0;
}

static void idmap_release(struct idmap *m)
{
	free(m->keys);
	free(m->ids);
	*m = (struct idmap){ 0 };
}

/* ---- the writer ---------------------------------------------------------- */

/* A module's address range, for the mapping of a location. */
struct span {
	uint64_t lo, hi, max_hi;       /* [lo, hi); max_hi: largest hi up to here (sorted by lo) */
	uint32_t mod;                  /* index into the trace's modules */
};

struct pp {
	const struct mt_analysis *a;
	struct gz *gz;
	int err;                       /* sticky: first error, negative errno */

	const char **strs; size_t n_strs, cap_strs;   /* string table; borrowed or in owned[] */
	struct idmap str_ids;          /* content hash -> chain of indices + 1, see str_find */
	char **owned; size_t n_owned, cap_owned;
	uint32_t *str_next;            /* per string: the next index + 1 with the same hash */

	struct idmap locs;             /* ip -> location id */
	struct idmap funcs;            /* name index << 32 | file index -> function id */
	uint32_t n_locs, n_funcs, no_stack_loc;
	uint8_t *mod_unsym;            /* per module: a location in it has no symbol */

	struct span *spans; size_t n_spans;
	struct mt_frame *frames;       /* PP_FRAMES_MAX */
	uint64_t *loc_ids;             /* PP_FRAMES_MAX */
};

static void fail(struct pp *p, int err)
{
	if (!p->err)
		p->err = err;
}

/* Packs `msg` into the output: a fragment of the one Profile the file holds. */
static void emit(struct pp *p, const PbProfile *msg)
{
	struct pb_sink sink = { .base = { .append = sink_append }, .gz = p->gz };
	if (!p->err)
		protobuf_c_message_pack_to_buffer((const ProtobufCMessage *)msg, &sink.base);
	if (p->gz->err)
		fail(p, p->gz->err);
}

/* ---- string table ---- */

static uint64_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;     /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

/* Index of s in the table (hash h), or -1. */
static int64_t str_find(const struct pp *p, const char *s, uint64_t h)
{
	for (uint32_t i = idmap_get(&p->str_ids, h); i; i = p->str_next[i - 1])
		if (strcmp(p->strs[i - 1], s) == 0)
			return i - 1;
	return -1;
}

/* Appends s (which must outlive the writer) to the table and the output. */
static int64_t str_add(struct pp *p, const char *s, uint64_t h)
{
	if (p->n_strs == PP_STRINGS_MAX) {
		fail(p, -E2BIG);
		return 0;
	}
	if (p->n_strs == p->cap_strs) {
		size_t cap = p->cap_strs ? 2 * p->cap_strs : 1024;
		const char **s2 = realloc(p->strs, cap * sizeof(*s2));
		uint32_t *n2 = s2 ? realloc(p->str_next, cap * sizeof(*n2)) : NULL;
		if (s2)
			p->strs = s2;
		if (!n2) {
			fail(p, -ENOMEM);
			return 0;
		}
		p->str_next = n2;
		p->cap_strs = cap;
	}
	uint32_t idx = (uint32_t)p->n_strs, *slot = idmap_find(&p->str_ids, h), head = 0;
	/* the map keeps the newest index per hash; older ones chain behind it */
	if (slot) {
		head = *slot;
		*slot = idx + 1;
	} else if (idmap_put(&p->str_ids, h, idx + 1)) {
		fail(p, -ENOMEM);
		return 0;
	}
	p->strs[idx] = s;
	p->str_next[idx] = head;
	p->n_strs++;
	PbProfile frag = PERFTOOLS__PROFILES__PROFILE__INIT;
	char *one = (char *)s;
	frag.n_string_table = 1;
	frag.string_table = &one;
	emit(p, &frag);
	return idx;
}

/*
 * Index of s in the string table, adding it when new; s is borrowed and
 * must live as long as the writer.  NULL and "" are index 0.  Returns 0
 * with p->err set on failure.
 */
static int64_t str_index(struct pp *p, const char *s)
{
	if (!s || !*s)
		return 0;
	uint64_t h = str_hash(s);
	int64_t i = str_find(p, s, h);
	return i >= 0 ? i : str_add(p, s, h);
}

/* str_index() of a string formatted like printf, which the writer keeps. */
static int64_t str_printf(struct pp *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int64_t str_printf(struct pp *p, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int len = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (len < 0) {
		fail(p, -ENOMEM);
		return 0;
	}
	if (p->n_owned == p->cap_owned) {
		size_t cap = p->cap_owned ? 2 * p->cap_owned : 16;
		char **o = realloc(p->owned, cap * sizeof(*o));
		if (!o) {
			free(s);
			fail(p, -ENOMEM);
			return 0;
		}
		p->owned = o;
		p->cap_owned = cap;
	}
	p->owned[p->n_owned++] = s;
	return str_index(p, s);
}

/* ---- header: sample types, period, time, comments ---- */

static const char *const type_names[PP_N_TYPES][2] = {
	{ "alloc_objects", "count" }, { "alloc_space", "bytes" },
	{ "inuse_objects", "count" }, { "inuse_space", "bytes" },
	{ "peak_space", "bytes" },
};

static const char *end_phrase(enum mt_end_kind k)
{
	switch (k) {
	case MT_ENDED_EXIT: return "leaked at exit";
	case MT_ENDED_EXEC: return "live when the process called exec";
	default:            return "live when the trace was cut";
	}
}

/* The Profile.comment lines: what the values mean for this trace. */
static size_t header_comments(struct pp *p, int64_t *c)
{
	const struct mt_analysis *a = p->a;
	const struct mt_trace *tr = a->trace;
	size_t n = 0;
	c[n++] = str_printf(p, "memtriage %s heap profile of '%s' (pid %u)", MT_VERSION,
	                    tr && tr->exe ? tr->exe : "?", tr ? tr->pid : 0);
	c[n++] = str_index(p, "every allocation and free was recorded (no sampling): "
	                      "the values are exact counts, not estimates");
	c[n++] = str_printf(p, "inuse_objects, inuse_space: blocks %s (%" PRIu64 " bytes in %"
	                    PRIu64 " blocks)", end_phrase(a->end_kind), a->end_bytes, a->end_blocks);
	c[n++] = str_printf(p, "peak_space: live bytes of each stack at the peak of the live heap "
	                    "(%" PRIu64 " bytes in %" PRIu64 " blocks, %" PRIu64 " ns after the start)",
	                    a->peak_bytes, a->peak_blocks, a->peak_t_ns);
	if (tr && (tr->lost_events || mt_trace_stat(tr, MT_ST_DROPPED, 0)))
		c[n++] = str_printf(p, "WARNING: %" PRIu64 " events lost and %" PRIu64 " dropped by the "
		                    "recorder: the values are approximate", tr->lost_events,
		                    mt_trace_stat(tr, MT_ST_DROPPED, 0));
	return n;
}

static void write_header(struct pp *p)
{
	const struct mt_analysis *a = p->a;
	PbValueType types[PP_N_TYPES], *type_ptrs[PP_N_TYPES];
	PbValueType period = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	int64_t comments[8];
	PbProfile frag = PERFTOOLS__PROFILES__PROFILE__INIT;

	str_add(p, "", str_hash(""));               /* string_table[0] is "" by the format */
	for (int i = 0; i < PP_N_TYPES; i++) {
		perftools__profiles__value_type__init(&types[i]);
		types[i].type = str_index(p, type_names[i][0]);
		types[i].unit = str_index(p, type_names[i][1]);
		type_ptrs[i] = &types[i];
	}
	period.type = str_index(p, "space");
	period.unit = str_index(p, "bytes");
	frag.n_sample_type = PP_N_TYPES;
	frag.sample_type = type_ptrs;
	frag.period_type = &period;
	frag.period = 1;                             /* every byte is seen: no sampling period */
	frag.default_sample_type = str_index(p, "inuse_space");
	frag.time_nanos = a->trace ? (int64_t)a->trace->start_realtime_ns : 0;
	frag.duration_nanos = (int64_t)a->duration_ns;
	frag.n_comment = header_comments(p, comments);
	frag.comment = comments;
	emit(p, &frag);
}

/* ---- mappings ---- */

/* Segment start as a runtime address; like the symbolizer, accept a bare ELF p_vaddr. */
static uint64_t seg_start(const struct mt_module *m, const struct mt_segment *g)
{
	return m->load_bias && g->start < m->load_bias ? g->start + m->load_bias : g->start;
}

/* [lo, hi) of module m's segments; 0 when it has none. */
static int module_extent(const struct mt_module *m, uint64_t *lo, uint64_t *hi)
{
	*lo = UINT64_MAX;
	*hi = 0;
	for (size_t k = 0; k < m->n_segs; k++) {
		uint64_t s = seg_start(m, &m->segs[k]), e = s + m->segs[k].size;
		if (e < s)
			e = UINT64_MAX;   /* a corrupt size wraps: clamp */
		*lo = s < *lo ? s : *lo;
		*hi = e > *hi ? e : *hi;
	}
	return *lo < *hi;
}

static int span_cmp(const void *x, const void *y)
{
	const struct span *a = x, *b = y;
	return a->lo < b->lo ? -1 : a->lo > b->lo;
}

/* Sorted module ranges, so a location finds its mapping in log time.  0 or -ENOMEM. */
static int spans_build(struct pp *p)
{
	const struct mt_trace *tr = p->a->trace;
	size_t n = tr ? tr->n_modules : 0;
	if (!n)
		return 0;
	if (!(p->spans = malloc(n * sizeof(*p->spans))) || !(p->mod_unsym = calloc(n, 1)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct span *s = &p->spans[p->n_spans];
		s->mod = (uint32_t)i;
		p->n_spans += (size_t)module_extent(&tr->modules[i], &s->lo, &s->hi);
	}
	qsort(p->spans, p->n_spans, sizeof(*p->spans), span_cmp);
	uint64_t max_hi = 0;
	for (size_t i = 0; i < p->n_spans; i++)
		p->spans[i].max_hi = max_hi = p->spans[i].hi > max_hi ? p->spans[i].hi : max_hi;
	return 0;
}

/*
 * Between two modules over one address (a library unloaded, another
 * loaded there), the symbolizer's choice: still loaded at the end, then
 * the later load.
 */
static int module_preferred(const struct mt_module *a, const struct mt_module *b)
{
	if ((a->unload_t_ns == 0) != (b->unload_t_ns == 0))
		return a->unload_t_ns == 0;
	return a->t_ns > b->t_ns;
}

/* Index of the module covering ip, or -1. */
static long module_of(const struct pp *p, uint64_t ip)
{
	const struct mt_module *mods = p->a->trace ? p->a->trace->modules : NULL;
	size_t lo = 0, hi = p->n_spans;              /* first span with lo > ip */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->spans[mid].lo <= ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	long best = -1;
	for (size_t i = lo; i-- > 0 && p->spans[i].max_hi > ip;)
		if (ip < p->spans[i].hi &&
		    (best < 0 || module_preferred(&mods[p->spans[i].mod], &mods[best])))
			best = (long)p->spans[i].mod;
	return best;
}

/*
 * One Mapping per module, id = index + 1.  The recorder keeps no file
 * offsets: the lowest PT_LOAD of an ELF object starts the file (offset 0),
 * so the range starts there at offset 0.  Symbol flags are set when every
 * location in the module got a function; otherwise a tool may symbolize it.
 */
static void write_mappings(struct pp *p)
{
	const struct mt_trace *tr = p->a->trace;
	for (size_t i = 0; tr && i < tr->n_modules && !p->err; i++) {
		const struct mt_module *m = &tr->modules[i];
		PbMapping map = PERFTOOLS__PROFILES__MAPPING__INIT, *mp = &map;
		PbProfile frag = PERFTOOLS__PROFILES__PROFILE__INIT;
		char hex[2 * 64 + 1] = "";
		for (size_t k = 0; k < m->build_id_len && k < 64; k++)
			snprintf(hex + 2 * k, 3, "%02x", m->build_id[k]);
		map.id = i + 1;
		if (!module_extent(m, &map.memory_start, &map.memory_limit))
			map.memory_start = map.memory_limit = m->load_bias;   /* extent not recorded */
		map.filename = str_index(p, m->path);
		map.build_id = hex[0] ? str_printf(p, "%s", hex) : 0;
		map.has_functions = map.has_filenames = map.has_line_numbers =
			map.has_inline_frames = !p->mod_unsym[i];
		frag.n_mapping = 1;
		frag.mapping = &mp;
		emit(p, &frag);
	}
}

/* ---- functions and locations ---- */

static uint32_t function_id(struct pp *p, const char *name, const char *file)
{
	int64_t ni = str_index(p, name), fi = str_index(p, file);
	uint64_t key = (uint64_t)ni << 32 | (uint64_t)fi;
	uint32_t id = idmap_get(&p->funcs, key);
	if (id || p->err)
		return id;
	if (p->n_funcs == PP_IDS_MAX) {
		fail(p, -E2BIG);
		return 0;
	}
	if (idmap_put(&p->funcs, key, id = ++p->n_funcs)) {
		fail(p, -ENOMEM);
		return 0;
	}
	PbFunction fn = PERFTOOLS__PROFILES__FUNCTION__INIT, *fp = &fn;
	PbProfile frag = PERFTOOLS__PROFILES__PROFILE__INIT;
	fn.id = id;
	fn.name = ni;
	fn.filename = fi;
	frag.n_function = 1;
	frag.function = &fp;
	emit(p, &frag);
	return id;
}

/* The symbolizer found no symbol: "??" (no module) or "module+0xoffset". */
static int unsymbolized(const struct mt_frame *f)
{
	if (strcmp(f->function, "??") == 0)
		return 1;
	size_t len = f->module ? strlen(f->module) : 0;
	return len && !f->file && strncmp(f->function, f->module, len) == 0 && f->function[len] == '+';
}

/*
 * Emits the Location of fr[0..k), the frames of one address (inlined ones
 * first), and returns its id.  An address the symbolizer could not name
 * gets no Line, so pprof shows the address and may symbolize it itself.
 */
static uint32_t location_new(struct pp *p, const struct mt_frame *fr, int k)
{
	PbLine lines[MT_SYM_MAX_FRAMES], *lp[MT_SYM_MAX_FRAMES];
	PbLocation loc = PERFTOOLS__PROFILES__LOCATION__INIT, *locp = &loc;
	PbProfile frag = PERFTOOLS__PROFILES__PROFILE__INIT;
	long mod = module_of(p, fr[0].ip);
	int named = !unsymbolized(&fr[k - 1]);

	k = k > MT_SYM_MAX_FRAMES ? MT_SYM_MAX_FRAMES : k;
	for (int i = 0; named && i < k; i++) {
		perftools__profiles__line__init(&lines[i]);
		lines[i].function_id = function_id(p, fr[i].function, fr[i].file);
		lines[i].line = fr[i].line;
		lp[i] = &lines[i];
	}
	if (!named && mod >= 0)
		p->mod_unsym[mod] = 1;
	loc.id = ++p->n_locs;
	loc.mapping_id = mod >= 0 ? (uint64_t)mod + 1 : 0;
	loc.address = fr[0].ip;
	loc.n_line = named ? (size_t)k : 0;
	loc.line = lp;
	frag.n_location = 1;
	frag.location = &locp;
	emit(p, &frag);
	return (uint32_t)loc.id;
}

/* Location id of the address of fr[0..k), emitting it the first time. */
static uint32_t location_id(struct pp *p, const struct mt_frame *fr, int k)
{
	uint32_t id = idmap_get(&p->locs, fr[0].ip);
	if (id || p->err)
		return id;
	if (p->n_locs == PP_IDS_MAX) {
		fail(p, -E2BIG);
		return 0;
	}
	id = location_new(p, fr, k);
	if (idmap_put(&p->locs, fr[0].ip, id))
		fail(p, -ENOMEM);
	return id;
}

/* A stack with no frame left (none recorded, or only the recorder's): one named location. */
static uint32_t no_stack_location(struct pp *p)
{
	if (!p->no_stack_loc) {
		struct mt_frame f = { .function = "[no call stack recorded]" };
		p->no_stack_loc = location_new(p, &f, 1);
	}
	return p->no_stack_loc;
}

/* ---- samples ---- */

/*
 * Unbiasing.  A recorder that sampled allocations as a Poisson process
 * over bytes, one sample per `rate` bytes on average (Go's and jemalloc's
 * heap profilers do), would see a block of z bytes with probability
 * q = 1 - exp(-z / rate); a stack seen with n blocks of b bytes in all
 * then stands for n / q blocks and b / q bytes, with z = b / n.  This is
 * where a sampled trace would be scaled.  memtriage's recorder sees every
 * allocation (rate 0): values pass through exact.
 */
static int64_t unbias(uint64_t v, uint64_t n, uint64_t b, uint64_t rate_bytes)
{
	double q = 1;
	if (rate_bytes && n && b)
		q = 1 - exp(-((double)b / (double)n) / (double)rate_bytes);
	if (q >= 1)
		return v > INT64_MAX ? INT64_MAX : (int64_t)v;
	double s = (double)v / q;
	return s >= 9.2e18 ? INT64_MAX : (int64_t)llround(s);
}

/* Bytes per sample of the recording; the trace format has no sampling: 0. */
static uint64_t sample_rate(const struct mt_trace *tr)
{
	(void)tr;
	return 0;
}

/* Location ids of the stack's frames into p->loc_ids, leaf first; returns how many. */
static size_t stack_locations(struct pp *p, uint32_t node)
{
	int more = 0, n = mt_analysis_stack_frames(p->a, node, p->frames, PP_FRAMES_MAX, &more);
	size_t m = 0;
	for (int i = 0; i < n && !p->err;) {
		int k = 1;   /* an inline chain: inlined frames at one address, then their function */
		while (i + k < n && p->frames[i + k - 1].inlined && p->frames[i + k].ip == p->frames[i].ip)
			k++;
		p->loc_ids[m++] = location_id(p, &p->frames[i], k);
		i += k;
	}
	if (!m)
		p->loc_ids[m++] = no_stack_location(p);
	return m;
}

static void write_sample(struct pp *p, const struct mt_stack *s, uint64_t rate)
{
	const struct mt_stack_stats *st = &s->st;
	int64_t v[PP_N_TYPES] = {
		unbias(st->calls, st->calls, st->bytes, rate),
		unbias(st->bytes, st->calls, st->bytes, rate),
		unbias(st->leaked_blocks, st->leaked_blocks, st->leaked_bytes, rate),
		unbias(st->leaked_bytes, st->leaked_blocks, st->leaked_bytes, rate),
		unbias(st->peak_bytes, st->calls, st->bytes, rate),
	};
	PbSample smp = PERFTOOLS__PROFILES__SAMPLE__INIT, *sp = &smp;
	PbProfile frag = PERFTOOLS__PROFILES__PROFILE__INIT;
	smp.n_location_id = stack_locations(p, s->node);
	smp.location_id = p->loc_ids;
	smp.n_value = PP_N_TYPES;
	smp.value = v;
	frag.n_sample = 1;
	frag.sample = &sp;
	emit(p, &frag);
}

/* ---- entry point ---- */

static void pp_release(struct pp *p)
{
	idmap_release(&p->str_ids);
	idmap_release(&p->locs);
	idmap_release(&p->funcs);
	for (size_t i = 0; i < p->n_owned; i++)
		free(p->owned[i]);
	free(p->owned);
	free(p->strs);
	free(p->str_next);
	free(p->mod_unsym);
	free(p->spans);
	free(p->frames);
	free(p->loc_ids);
}

static int pprof_write(const struct mt_analysis *a, FILE *out, const struct mt_report_opts *opts)
{
	struct gz *gz = malloc(sizeof(*gz));
	struct pp p = { .a = a, .gz = gz };
	int rc;
	(void)opts;   /* the profile holds every stack; tools choose their own top N */
	if (!gz || gz_open(gz, out)) {
		free(gz);
		return -ENOMEM;
	}
	p.frames = malloc(PP_FRAMES_MAX * sizeof(*p.frames));
	p.loc_ids = malloc(PP_FRAMES_MAX * sizeof(*p.loc_ids));
	if (!p.frames || !p.loc_ids || spans_build(&p))
		fail(&p, -ENOMEM);
	write_header(&p);
	uint64_t rate = sample_rate(a->trace);
	for (size_t i = 0; i < a->n_stacks && !p.err; i++)
		write_sample(&p, &a->stacks[i], rate);
	write_mappings(&p);
	rc = gz_close(gz);
	rc = p.err ? p.err : rc;
	free(gz);
	pp_release(&p);
	if (!rc && (fflush(out) || ferror(out)))
		rc = errno ? -errno : -EIO;
	return rc;
}

const struct mt_reporter mt_report_pprof = {
	.name = "pprof",
	.summary = "gzip'd profile.proto for go tool pprof (Go heap sample types)",
	.binary = 1,
	.write = pprof_write,
};
