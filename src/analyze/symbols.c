/*
 * Offline symbolization with elfutils libdwfl (contract in symbols.h).
 *
 * Layout.  Each trace module gets its own Dwfl session, opened on the
 * first ip that falls inside it, so a trace naming hundreds of libraries
 * only pays for the ones its stacks touch, and modules that reuse one
 * address range over time (dlclose, then dlopen of another library) never
 * collide inside libdwfl.  Our own sorted range table maps an ip to its
 * module.
 *
 * Per ip: inline chain from DWARF scopes, else the ELF symbol table, else
 * "module+0xoffset".  The chain is read the way eu-addr2line -i reads it
 * (see resolve_dwarf), but the scopes at a pc are found through a per-CU
 * index of functions plus a descent inside the one function, not with
 * dwarf_getscopes, which walks the whole CU on every call: same frames on
 * 5,000 libc and 3,000 C++ addresses, 20 to 500 times faster.  Results
 * are cached per (ip, is_return_address), display names per raw libdw
 * name, and every string is interned, so a stack seen a million times
 * costs one hash probe per frame after the first.
 *
 * Memory: libiberty's demangler allocates with xmalloc, which exits the
 * process when memory runs out; every other allocation failure degrades to
 * an uncached "??" frame.
 */
#include "analyze/symbols.h"

#include <demangle.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Initial slots of the ip cache and of the string table (powers of two). */
#define SYM_CACHE_MIN_SLOTS 1024
#define SYM_STR_MIN_SLOTS   1024
#define SYM_MAP_MIN_SLOTS   256
/* Bytes per string arena chunk; longer strings get a chunk of their own. */
#define SYM_STR_CHUNK       (64u << 10)
/* Bytes for "module+0x<16 hex digits>" beyond the module name. */
#define SYM_OFFSET_NAME_EXTRA 24

/*
 * Search path for separate debug files: "-" skips the CRC check of
 * .gnu_debuglink files, ".debug" looks beside the binary, /usr/lib/debug
 * is where Debian -dbgsym and -dbg packages put files by build-id
 * (/usr/lib/debug/.build-id/xx/rest.debug).  Same default as elfutils'
 * own tools.  With DEBUGINFOD_URLS set, libdwfl also asks those servers
 * for files it cannot find here.
 */
static char sym_debuginfo_path[] = "-.debug:/usr/lib/debug";
static char *sym_debuginfo_path_p = sym_debuginfo_path;

static const Dwfl_Callbacks sym_callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
	.debuginfo_path = &sym_debuginfo_path_p,
};

/* ---- string interning ---- */

struct str_chunk {
	struct str_chunk *next;
	size_t used, cap;
	char data[];
};

struct strtab {
	const char **slots;   /* open addressing, NULL = empty */
	size_t n, cap;        /* cap is a power of two, n <= cap / 2 */
	struct str_chunk *chunks;
};

/* FNV-1a, 64-bit (Fowler, Noll, Vo; http://www.isthe.com/chongo/tech/comp/fnv/). */
static uint64_t str_hash(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	return h;
}

/* Copies s[0..len) plus a NUL into the arena; NULL on out of memory. */
static char *str_store(struct strtab *t, const char *s, size_t len)
{
	struct str_chunk *c = t->chunks;
	if (!c || c->cap - c->used < len + 1) {
		size_t cap = len + 1 > SYM_STR_CHUNK ? len + 1 : SYM_STR_CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = t->chunks;
		t->chunks = c;
	}
	char *p = c->data + c->used;
	memcpy(p, s, len);
	p[len] = '\0';
	c->used += len + 1;
	return p;
}

/* Doubles the slot array; 0 or -1 on out of memory (table unchanged). */
static int strtab_grow(struct strtab *t)
{
	size_t cap = t->cap ? t->cap * 2 : SYM_STR_MIN_SLOTS;
	const char **slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		const char *s = t->slots[i];
		if (!s)
			continue;
		size_t j = str_hash(s, strlen(s)) & (cap - 1);
		while (slots[j])
			j = (j + 1) & (cap - 1);
		slots[j] = s;
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

/* Returns the one stored copy of s[0..len); NULL on out of memory. */
static const char *strtab_intern_n(struct strtab *t, const char *s, size_t len)
{
	if ((t->n + 1) * 2 > t->cap && strtab_grow(t) < 0)
		return NULL;
	size_t j = str_hash(s, len) & (t->cap - 1);
	for (; t->slots[j]; j = (j + 1) & (t->cap - 1)) {
		const char *o = t->slots[j];
		if (strncmp(o, s, len) == 0 && o[len] == '\0')
			return o;
	}
	const char *p = str_store(t, s, len);
	if (p) {
		t->slots[j] = p;
		t->n++;
	}
	return p;
}

/* Interns a NUL-terminated string; NULL in, NULL out. */
static const char *strtab_intern(struct strtab *t, const char *s)
{
	return s ? strtab_intern_n(t, s, strlen(s)) : NULL;
}

static void strtab_release(struct strtab *t)
{
	for (struct str_chunk *c = t->chunks, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* ---- pointer-keyed map ---- */

/* uint64 key (never 0) -> non-NULL pointer; open addressing, cap a power of two. */
struct ptrmap {
	struct ptrmap_slot { uint64_t key; void *val; } *slots;
	size_t n, cap;
};

/* Fibonacci hashing (Knuth, TAOCP vol. 3, 6.4): spreads aligned keys. */
static size_t key_hash(uint64_t key, size_t cap)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

static struct ptrmap_slot *ptrmap_probe(struct ptrmap_slot *slots, size_t cap, uint64_t key)
{
	size_t j = key_hash(key, cap);
	while (slots[j].key && slots[j].key != key)
		j = (j + 1) & (cap - 1);
	return &slots[j];
}

/* The value stored under key; NULL when absent. */
static void *ptrmap_get(const struct ptrmap *m, uint64_t key)
{
	return m->cap ? ptrmap_probe(m->slots, m->cap, key)->val : NULL;
}

/* Stores val under a key not yet present; -1 on out of memory (map unchanged). */
static int ptrmap_put(struct ptrmap *m, uint64_t key, void *val)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : SYM_MAP_MIN_SLOTS;
		struct ptrmap_slot *slots = calloc(cap, sizeof(*slots));
		if (!slots)
			return -1;
		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i].key)
				*ptrmap_probe(slots, cap, m->slots[i].key) = m->slots[i];
		free(m->slots);
		m->slots = slots;
		m->cap = cap;
	}
	*ptrmap_probe(m->slots, m->cap, key) = (struct ptrmap_slot){ key, val };
	m->n++;
	return 0;
}

/* ---- demangling ---- */

/* 1 when name is in a mangling demangle_alloc understands (_Z: Itanium C++
   and legacy Rust; _R: Rust v0). */
static int is_mangled(const char *name)
{
	return name && name[0] == '_' && (name[1] == 'Z' || name[1] == 'R');
}

/*
 * Demangles an Itanium C++ (_Z...) or Rust (legacy _ZN...17h<hash>E, v0
 * _R...) name into a malloc'd string; NULL when name is not one of those.
 * DMGL_AUTO makes cplus_demangle try rust_demangle first (a legacy Rust
 * name is also valid Itanium mangling, and only the Rust demangler drops
 * the hash), then the C++ demangler.
 */
static char *demangle_alloc(const char *name)
{
	if (!is_mangled(name))
		return NULL;
	return cplus_demangle(name, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
}

const char *mt_demangle(const char *mangled, char *buf, size_t len)
{
	char *d = demangle_alloc(mangled);
	if (!d || len == 0) {
		free(d);
		return mangled;
	}
	size_t n = strlen(d);
	if (n >= len)
		n = len - 1;
	memcpy(buf, d, n);
	buf[n] = '\0';
	free(d);
	return buf;
}

/* ---- modules ---- */

enum { MOD_UNOPENED = 0, MOD_OK = 1, MOD_UNUSABLE = -1 };

struct sym_mod {
	const struct mt_module *mod;
	const char *name;      /* interned basename of mod->path */
	Dwfl *dwfl;            /* NULL until opened */
	Dwfl_Module *dm;       /* non-NULL when state == MOD_OK */
	int state;
};

/* One address range [start, end) of a module; sorted by start. */
struct sym_range {
	uint64_t start, end;
	uint64_t max_end;      /* largest end among ranges[0..this]: bounds the overlap scan */
	size_t mod;
};

struct cache_slot {
	uint64_t ip;
	size_t first;          /* index of the first frame in the pool */
	uint32_t n;            /* frames; 0 = empty slot */
	uint32_t is_ret;
};

struct mt_symbolizer {
	struct sym_mod *mods;
	size_t n_mods;
	struct sym_range *ranges;
	size_t n_ranges;
	struct strtab strs;
	struct cache_slot *slots;   /* open addressing, power-of-two cap */
	size_t n_cached, cap;
	struct mt_frame *pool;      /* frames of every cached ip */
	size_t n_pool, cap_pool;
	struct ptrmap names;        /* raw name pointer (libdw-owned, stable) -> interned display name */
	struct ptrmap cus;          /* CU DIE data pointer -> struct cu_index */
	const char *unknown;        /* "??" */
};

/*
 * Interned display name (demangled, or the name itself) of a raw name from
 * libdw: a DWARF string or a symbol-table name.  Those live in the file's
 * data for the symbolizer's lifetime, so the raw pointer is a key that
 * skips demangling and hashing when many ips share a function.
 * NULL in, NULL out; NULL on out of memory.
 */
static const char *intern_function(struct mt_symbolizer *s, const char *name)
{
	if (!name)
		return NULL;
	const char *r = ptrmap_get(&s->names, (uintptr_t)name);
	if (r)
		return r;
	char *d = demangle_alloc(name);
	r = strtab_intern(&s->strs, d ? d : name);
	free(d);
	if (r)
		ptrmap_put(&s->names, (uintptr_t)name, (void *)r);   /* a miss only costs speed */
	return r;
}

/* Basename of a module path; the whole path when it has no '/'. */
static const char *path_basename(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash && slash[1] ? slash + 1 : path;
}

/*
 * The trace should record segment starts as runtime addresses; a start
 * below a non-zero bias can only be an ELF p_vaddr, so accept that form
 * too rather than lose the module.
 */
static uint64_t seg_runtime_start(const struct mt_module *m, const struct mt_segment *g)
{
	return m->load_bias && g->start < m->load_bias ? g->start + m->load_bias : g->start;
}

/* 1 when the file's build-id equals the trace's (or the trace has none). */
static int build_id_matches(Dwfl_Module *dm, const struct mt_module *m)
{
	if (!m->build_id || m->build_id_len == 0)
		return 1;
	const unsigned char *bits;
	GElf_Addr vaddr;
	int len = dwfl_module_build_id(dm, &bits, &vaddr);
	return len > 0 && (size_t)len == m->build_id_len &&
	       memcmp(bits, m->build_id, m->build_id_len) == 0;
}

/*
 * Opens the module's file at its runtime bias.  A missing or non-regular
 * file (a FIFO would block the open), a non-ELF file or a build-id
 * mismatch leaves the module MOD_UNUSABLE; its ips then resolve to
 * "module+0xoffset".  For ET_EXEC files libdwfl ignores the bias, which is
 * then 0 anyway.
 */
static void module_open(struct sym_mod *sm)
{
	const struct mt_module *m = sm->mod;
	struct stat st;
	sm->state = MOD_UNUSABLE;
	if (!m->path || stat(m->path, &st) != 0 || !S_ISREG(st.st_mode))
		return;
	sm->dwfl = dwfl_begin(&sym_callbacks);
	if (!sm->dwfl)
		return;
	dwfl_report_begin(sm->dwfl);
	Dwfl_Module *dm = dwfl_report_elf(sm->dwfl, sm->name, m->path, -1, m->load_bias, true);
	if (dwfl_report_end(sm->dwfl, NULL, NULL) != 0 || !dm || !build_id_matches(dm, m))
		return;
	sm->dm = dm;
	sm->state = MOD_OK;
}

static Dwfl_Module *module_get(struct sym_mod *sm)
{
	if (sm->state == MOD_UNOPENED)
		module_open(sm);
	return sm->dm;
}

/* Appends [start, end) for module i; -1 on out of memory. */
static int range_add(struct mt_symbolizer *s, size_t *cap, uint64_t start, uint64_t end, size_t i)
{
	if (end <= start)
		return 0;
	if (s->n_ranges == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct sym_range *r = realloc(s->ranges, ncap * sizeof(*r));
		if (!r)
			return -1;
		s->ranges = r;
		*cap = ncap;
	}
	s->ranges[s->n_ranges++] = (struct sym_range){ .start = start, .end = end, .mod = i };
	return 0;
}

/*
 * Ranges of module i: its recorded segments, or, when the trace has none,
 * the extent libdwfl derives from the file's program headers (which opens
 * the file now instead of lazily).
 */
static int module_ranges(struct mt_symbolizer *s, size_t *cap, size_t i)
{
	const struct mt_module *m = s->mods[i].mod;
	for (size_t k = 0; k < m->n_segs; k++) {
		uint64_t start = seg_runtime_start(m, &m->segs[k]);
		uint64_t end = start + m->segs[k].size;
		if (range_add(s, cap, start, end < start ? UINT64_MAX : end, i) < 0)
			return -1;
	}
	if (m->n_segs > 0 || !module_get(&s->mods[i]))
		return 0;
	Dwarf_Addr low, high;
	dwfl_module_info(s->mods[i].dm, NULL, &low, &high, NULL, NULL, NULL, NULL);
	return range_add(s, cap, low, high, i);
}

static int range_cmp(const void *a, const void *b)
{
	const struct sym_range *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Sorts the ranges and fills max_end so lookups can scan overlaps. */
static void ranges_index(struct mt_symbolizer *s)
{
	if (s->n_ranges > 1)
		qsort(s->ranges, s->n_ranges, sizeof(*s->ranges), range_cmp);
	uint64_t max_end = 0;
	for (size_t i = 0; i < s->n_ranges; i++) {
		if (s->ranges[i].end > max_end)
			max_end = s->ranges[i].end;
		s->ranges[i].max_end = max_end;
	}
}

/*
 * Between two modules that both cover an address (a library unloaded and
 * another loaded at the same place), prefer the one still loaded at the
 * end, then the later load: ips carry no time, so this is a guess that is
 * right for every stack recorded after the last load.
 */
static int module_preferred(const struct mt_module *a, const struct mt_module *b)
{
	if ((a->unload_t_ns == 0) != (b->unload_t_ns == 0))
		return a->unload_t_ns == 0;
	return a->t_ns > b->t_ns;
}

/* The module covering addr, or NULL. */
static struct sym_mod *module_find(struct mt_symbolizer *s, uint64_t addr)
{
	size_t lo = 0, hi = s->n_ranges;   /* first range with start > addr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->ranges[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	struct sym_mod *best = NULL;
	for (size_t i = lo; i-- > 0 && s->ranges[i].max_end > addr;) {
		struct sym_mod *sm = &s->mods[s->ranges[i].mod];
		if (addr < s->ranges[i].end && (!best || module_preferred(sm->mod, best->mod)))
			best = sm;
	}
	return best;
}

/* ---- resolution ---- */

/* Deepest DIE nesting searched for the scopes at a pc; deeper input is
   treated as having no scope there (it only happens with corrupt DWARF). */
#define SYM_MAX_SCOPE_DEPTH 128

/* The scopes containing a pc, outermost first. */
struct scope_path {
	Dwarf_Die d[SYM_MAX_SCOPE_DEPTH];
	int n;                 /* scopes in d */
	int depth;             /* current recursion depth, bounds n */
};

/* A frame list being built, innermost first, capped at MT_SYM_MAX_FRAMES. */
struct chain {
	struct mt_frame f[MT_SYM_MAX_FRAMES];
	int n;
};

/*
 * Appends a frame.  When the chain is full, inlined frames are dropped and
 * a real (outermost) function overwrites the last slot, so a truncated
 * chain keeps its innermost frames and still ends with the real function.
 */
static void chain_push(struct chain *c, const struct mt_frame *f)
{
	if (c->n < MT_SYM_MAX_FRAMES)
		c->f[c->n++] = *f;
	else if (!f->inlined)
		c->f[MT_SYM_MAX_FRAMES - 1] = *f;
}

/* "module+0xoffset" where offset is the ELF address (ip - load bias), as addr2line -e wants. */
static const char *offset_name(struct mt_symbolizer *s, const struct sym_mod *sm, uint64_t addr)
{
	size_t cap = strlen(sm->name) + SYM_OFFSET_NAME_EXTRA;
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	snprintf(buf, cap, "%s+0x%llx", sm->name,
	         (unsigned long long)(addr - sm->mod->load_bias));
	const char *r = strtab_intern(&s->strs, buf);
	free(buf);
	return r;
}

/*
 * Name of a subprogram or inlined-subroutine DIE, through abstract origins
 * and specifications.  A mangled linkage name wins (its demangling carries
 * namespaces and parameters, DW_AT_name only the last component); an
 * unmangled one is an asm alias such as glibc's "__GI___libc_malloc", worse
 * than DW_AT_name "__libc_malloc", so it is only a fallback.
 */
static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute a;
	const char *link = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &a));
	if (!link)
		link = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a));
	if (is_mangled(link))
		return link;
	const char *name = dwarf_diename(die);
	return name ? name : link;
}

/* Source position of a module address from the line table; file NULL when none. */
static void line_at(Dwfl_Module *dm, uint64_t addr, const char **file, int *line)
{
	Dwfl_Line *l = dwfl_module_getsrc(dm, addr);
	*file = NULL;
	*line = 0;
	if (l)
		*file = dwfl_lineinfo(l, NULL, line, NULL, NULL, NULL);
}

/* Where an inlined subroutine was called: DW_AT_call_file / DW_AT_call_line. */
static void call_site(Dwarf_Die *inl, Dwarf_Files *files, const char **file, int *line)
{
	Dwarf_Attribute a;
	Dwarf_Word v;
	*file = NULL;
	*line = 0;
	if (files && dwarf_formudata(dwarf_attr(inl, DW_AT_call_file, &a), &v) == 0)
		*file = dwarf_filesrc(files, v, NULL, NULL);
	if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_line, &a), &v) == 0)
		*line = (int)v;
}

/* Tags whose DIEs have pc ranges and may hold inlined code. */
static int is_code_scope(int tag)
{
	switch (tag) {
	case DW_TAG_subprogram: case DW_TAG_inlined_subroutine: case DW_TAG_entry_point:
	case DW_TAG_lexical_block: case DW_TAG_try_block: case DW_TAG_catch_block:
		return 1;
	}
	return 0;
}

/* Tags without pc ranges that may enclose function definitions
   (GCC puts C++ out-of-line definitions inside their namespace). */
static int is_code_container(int tag)
{
	return tag == DW_TAG_namespace || tag == DW_TAG_module;
}

/*
 * Descends from parent into the child scope that contains pc, appending
 * each such scope to p (outermost first).  This is the part of
 * dwarf_getscopes we need, pruned: it enters only scopes whose ranges hold
 * pc (and namespaces, which have none), where dwarf_getscopes visits every
 * DIE of the CU and dwarf_getscopes_die does it again.  Those two walks
 * were 80% of the time (2,400 ips/s on libc, 800 on a small C++ program);
 * with the per-CU function index (below) this descent starts at the
 * function and only reads its children.  Returns 1 when a child scope
 * contained pc.
 */
static int scopes_descend(Dwarf_Die *parent, Dwarf_Addr pc, struct scope_path *p)
{
	Dwarf_Die child;
	if (p->depth >= SYM_MAX_SCOPE_DEPTH || dwarf_child(parent, &child) != 0)
		return 0;
	p->depth++;
	int found = 0;
	do {
		int tag = dwarf_tag(&child);
		if (is_code_scope(tag) && dwarf_haspc(&child, pc) == 1) {
			p->d[p->n++] = child;
			scopes_descend(&child, pc, p);
			found = 1;
		} else if (is_code_container(tag)) {
			found = scopes_descend(&child, pc, p);
		}
	} while (!found && dwarf_siblingof(&child, &child) == 0);
	p->depth--;
	return found;
}

/* ---- per-CU function index ---- */

/* One address range of a function-level DIE (a subprogram, not nested in another). */
struct cu_fn {
	uint64_t lo, hi;       /* [lo, hi), DWARF addresses */
	uint64_t max_hi;       /* largest hi among fns[0..this]: bounds the overlap scan */
	Dwarf_Die die;
};

/* The functions of one CU sorted by lo, built on the first pc in the CU. */
struct cu_index {
	struct cu_fn *fns;
	size_t n, cap;
};

/* Adds each address range of die; -1 on out of memory. */
static int cu_index_add(struct cu_index *x, Dwarf_Die *die)
{
	Dwarf_Addr base, lo, hi;
	for (ptrdiff_t off = 0; (off = dwarf_ranges(die, off, &base, &lo, &hi)) > 0;) {
		if (hi <= lo)
			continue;
		if (x->n == x->cap) {
			size_t cap = x->cap ? x->cap * 2 : 64;
			struct cu_fn *f = realloc(x->fns, cap * sizeof(*f));
			if (!f)
				return -1;
			x->fns = f;
			x->cap = cap;
		}
		x->fns[x->n++] = (struct cu_fn){ .lo = lo, .hi = hi, .die = *die };
	}
	return 0;
}

/* Adds the function-level scopes under parent, looking into namespaces. */
static int cu_index_collect(struct cu_index *x, Dwarf_Die *parent, int depth)
{
	Dwarf_Die child;
	if (depth >= SYM_MAX_SCOPE_DEPTH || dwarf_child(parent, &child) != 0)
		return 0;
	do {
		int tag = dwarf_tag(&child);
		if (is_code_scope(tag) && cu_index_add(x, &child) < 0)
			return -1;
		if (is_code_container(tag) && cu_index_collect(x, &child, depth + 1) < 0)
			return -1;
	} while (dwarf_siblingof(&child, &child) == 0);
	return 0;
}

/* By lo, then in DIE order (die.addr grows with the DIE offset). */
static int cu_fn_cmp(const void *a, const void *b)
{
	const struct cu_fn *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return (uintptr_t)x->die.addr < (uintptr_t)y->die.addr ? -1 :
	       (uintptr_t)x->die.addr > (uintptr_t)y->die.addr;
}

static void cu_index_free(struct cu_index *x)
{
	if (x)
		free(x->fns);
	free(x);
}

/*
 * The index of cu, built on first use: one walk over the CU's top level
 * instead of one per pc.  NULL on out of memory.
 */
static struct cu_index *cu_index_get(struct mt_symbolizer *s, Dwarf_Die *cu)
{
	uint64_t key = (uintptr_t)cu->addr;
	struct cu_index *x = ptrmap_get(&s->cus, key);
	if (x)
		return x;
	x = calloc(1, sizeof(*x));
	if (!x || cu_index_collect(x, cu, 0) < 0 || ptrmap_put(&s->cus, key, x) < 0) {
		cu_index_free(x);
		return NULL;
	}
	if (x->n > 1)
		qsort(x->fns, x->n, sizeof(*x->fns), cu_fn_cmp);
	uint64_t max_hi = 0;
	for (size_t i = 0; i < x->n; i++) {
		if (x->fns[i].hi > max_hi)
			max_hi = x->fns[i].hi;
		x->fns[i].max_hi = max_hi;
	}
	return x;
}

/*
 * The range holding pc that starts last, or NULL; among ranges starting at
 * the same address, the first DIE, as dwarf_getscopes would find it (gas
 * emits one DIE per alias: "quotactl" before "__GI_quotactl").
 */
static const struct cu_fn *cu_fn_find(const struct cu_index *x, uint64_t pc)
{
	size_t lo = 0, hi = x->n;   /* first range with lo > pc */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (x->fns[mid].lo <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i-- > 0 && x->fns[i].max_hi > pc;) {
		if (pc >= x->fns[i].hi)
			continue;
		while (i > 0 && x->fns[i - 1].lo == x->fns[i].lo && pc < x->fns[i - 1].hi)
			i--;
		return &x->fns[i];
	}
	return NULL;
}

/*
 * Fills p with the scopes containing pc in cu: the function from the CU's
 * index, then the pruned descent inside it.  Without an index (out of
 * memory) the descent starts at the CU root.  Returns 1 when a scope
 * contains pc.
 */
static int scopes_at(struct mt_symbolizer *s, Dwarf_Die *cu, Dwarf_Addr pc, struct scope_path *p)
{
	struct cu_index *x = cu_index_get(s, cu);
	if (!x)
		return scopes_descend(cu, pc, p);
	const struct cu_fn *fn = cu_fn_find(x, pc);
	if (!fn)
		return 0;
	p->d[p->n++] = fn->die;
	p->depth = 1;
	scopes_descend(&p->d[0], pc, p);
	return 1;
}

/*
 * Frames for addr from DWARF, with eu-addr2line -i's reading of the
 * scopes: walking out from the innermost scope, each
 * DW_TAG_inlined_subroutine is a frame at the current position, and its
 * DW_AT_call_file/line become the position in the next frame out; the
 * first DW_TAG_subprogram is the real function.  The innermost position
 * comes from the line table.  Returns 1 when it found that function, 0
 * (chain untouched past c->n) otherwise.
 */
static int resolve_dwarf(struct mt_symbolizer *s, struct sym_mod *sm, uint64_t addr,
                         struct chain *c)
{
	Dwarf_Addr bias;
	Dwarf_Die *cu = dwfl_module_addrdie(sm->dm, addr, &bias);
	struct scope_path p = { .n = 0, .depth = 0 };
	if (!cu || !scopes_at(s, cu, addr - bias, &p))
		return 0;
	Dwarf_Files *files = NULL;
	if (dwarf_getsrcfiles(cu, &files, NULL) != 0)
		files = NULL;
	const char *file;
	int line, found = 0, start = c->n;
	line_at(sm->dm, addr, &file, &line);
	for (int i = p.n - 1; i >= 0 && !found; i--) {
		int tag = dwarf_tag(&p.d[i]);
		if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram &&
		    tag != DW_TAG_entry_point)
			continue;
		found = tag != DW_TAG_inlined_subroutine;
		struct mt_frame f = {
			.function = intern_function(s, die_name(&p.d[i])),
			.file = strtab_intern(&s->strs, file), .line = line,
			.inlined = !found, .module = sm->name,
		};
		chain_push(c, &f);
		if (!found)
			call_site(&p.d[i], files, &file, &line);
	}
	if (!found)
		c->n = start;
	return found;
}

/* Interned, demangled symbol-table name covering addr, else the offset name. */
static const char *symtab_name(struct mt_symbolizer *s, struct sym_mod *sm, uint64_t addr)
{
	GElf_Off off;
	GElf_Sym sym;
	const char *name = dwfl_module_addrinfo(sm->dm, addr, &off, &sym, NULL, NULL, NULL);
	return name ? intern_function(s, name) : offset_name(s, sm, addr);
}

/* One frame from the ELF symbol table plus the line table (no DWARF scopes at addr). */
static void resolve_symtab(struct mt_symbolizer *s, struct sym_mod *sm, uint64_t addr,
                           struct chain *c)
{
	struct mt_frame f = { .function = symtab_name(s, sm, addr), .module = sm->name };
	const char *file;
	line_at(sm->dm, addr, &file, &f.line);
	f.file = strtab_intern(&s->strs, file);
	chain_push(c, &f);
}

/*
 * Fills c for a lookup address.  The real function of a DWARF chain whose
 * DIE has no name takes the symbol-table name; any other missing name
 * (unnamed inline, out of memory while interning) becomes "??", so the
 * function field is never NULL afterwards.
 */
static void resolve(struct mt_symbolizer *s, uint64_t addr, struct chain *c)
{
	struct sym_mod *sm = module_find(s, addr);
	c->n = 0;
	if (sm && module_get(sm)) {
		if (!resolve_dwarf(s, sm, addr, c))
			resolve_symtab(s, sm, addr, c);
		else if (!c->f[c->n - 1].function)
			c->f[c->n - 1].function = symtab_name(s, sm, addr);
	} else if (sm) {
		struct mt_frame f = { .function = offset_name(s, sm, addr), .module = sm->name };
		chain_push(c, &f);
	} else {
		chain_push(c, &(struct mt_frame){ .function = s->unknown });
	}
	for (int i = 0; i < c->n; i++)
		if (!c->f[i].function)
			c->f[i].function = s->unknown;
}

/* ---- cache ---- */

static struct cache_slot *cache_probe(struct cache_slot *slots, size_t cap, uint64_t ip,
                                      uint32_t is_ret)
{
	size_t j = key_hash(ip ^ is_ret, cap);
	while (slots[j].n && (slots[j].ip != ip || slots[j].is_ret != is_ret))
		j = (j + 1) & (cap - 1);
	return &slots[j];
}

/* Doubles the cache; -1 on out of memory (cache unchanged). */
static int cache_grow(struct mt_symbolizer *s)
{
	size_t cap = s->cap ? s->cap * 2 : SYM_CACHE_MIN_SLOTS;
	struct cache_slot *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -1;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slots[i].n)
			*cache_probe(slots, cap, s->slots[i].ip, s->slots[i].is_ret) = s->slots[i];
	free(s->slots);
	s->slots = slots;
	s->cap = cap;
	return 0;
}

/* Appends frames to the pool; index of the first or (size_t)-1 on out of memory. */
static size_t pool_append(struct mt_symbolizer *s, const struct mt_frame *f, int n)
{
	if (s->cap_pool - s->n_pool < (size_t)n) {
		size_t cap = s->cap_pool ? s->cap_pool * 2 : 4096;
		struct mt_frame *p = realloc(s->pool, cap * sizeof(*p));
		if (!p)
			return (size_t)-1;
		s->pool = p;
		s->cap_pool = cap;
	}
	size_t first = s->n_pool;
	memcpy(s->pool + first, f, (size_t)n * sizeof(*f));
	s->n_pool += (size_t)n;
	return first;
}

/* Caches a resolved chain; silently skipped when memory runs out. */
static void cache_put(struct mt_symbolizer *s, uint64_t ip, uint32_t is_ret, const struct chain *c)
{
	if ((s->n_cached + 1) * 2 > s->cap && cache_grow(s) < 0)
		return;
	size_t first = pool_append(s, c->f, c->n);
	if (first == (size_t)-1)
		return;
	*cache_probe(s->slots, s->cap, ip, is_ret) =
		(struct cache_slot){ .ip = ip, .first = first, .n = (uint32_t)c->n, .is_ret = is_ret };
	s->n_cached++;
}

/*
 * Copies n frames to out[0..max) and stamps ip.  When max < n, keeps the
 * innermost max - 1 frames and the real function last (see chain_push).
 */
static int frames_copy(struct mt_frame *out, int max, const struct mt_frame *f, int n, uint64_t ip)
{
	int k = n <= max ? n : max;
	memcpy(out, f, (size_t)k * sizeof(*f));
	if (k < n)
		out[k - 1] = f[n - 1];
	for (int i = 0; i < k; i++)
		out[i].ip = ip;
	return k;
}

/* ---- public API ---- */

int mt_symbolize(struct mt_symbolizer *s, uint64_t ip, int is_return_address,
                 struct mt_frame *out, int max)
{
	if (!s || !out || max <= 0)
		return 0;
	uint32_t is_ret = is_return_address && ip > 0;
	if (s->cap) {
		struct cache_slot *e = cache_probe(s->slots, s->cap, ip, is_ret);
		if (e->n)
			return frames_copy(out, max, s->pool + e->first, (int)e->n, ip);
	}
	struct chain c;
	resolve(s, ip - is_ret, &c);
	cache_put(s, ip, is_ret, &c);
	return frames_copy(out, max, c.f, c.n, ip);
}

struct mt_symbolizer *mt_symbolizer_new(const struct mt_module *mods, size_t n)
{
	struct mt_symbolizer *s = calloc(1, sizeof(*s));
	if (!s || !(s->unknown = strtab_intern(&s->strs, "??")))
		goto fail;
	s->mods = calloc(n ? n : 1, sizeof(*s->mods));
	if (!s->mods)
		goto fail;
	s->n_mods = n;
	size_t cap = 0;
	for (size_t i = 0; i < n; i++) {
		s->mods[i].mod = &mods[i];
		s->mods[i].name = strtab_intern(&s->strs, path_basename(mods[i].path ? mods[i].path : "??"));
		if (!s->mods[i].name || module_ranges(s, &cap, i) < 0)
			goto fail;
	}
	ranges_index(s);
	return s;
fail:
	mt_symbolizer_free(s);
	return NULL;
}

void mt_symbolizer_free(struct mt_symbolizer *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_mods; i++)
		if (s->mods[i].dwfl)
			dwfl_end(s->mods[i].dwfl);
	free(s->mods);
	free(s->ranges);
	free(s->slots);
	free(s->pool);
	for (size_t i = 0; i < s->cus.cap; i++)
		if (s->cus.slots[i].key)
			cu_index_free(s->cus.slots[i].val);
	free(s->cus.slots);
	free(s->names.slots);
	strtab_release(&s->strs);
	free(s);
}
