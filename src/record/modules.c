/*
 * Loaded ELF modules, reported so the analyzer can symbolize offline:
 * path, load bias, PT_LOAD segments and GNU build-id of each object that
 * dl_iterate_phdr(3) lists, dlopen'd ones included.
 *
 * Scans happen at start, from the writer thread now and then, and whenever
 * a new call-stack node has an address outside every known module (a
 * library was just dlopen'd).  A scan is cheap when nothing changed: the
 * loader's adds/subs counters (dlpi_adds, dlpi_subs) are compared first.
 */
#include <elf.h>
#include <link.h>
#include <string.h>
#include <unistd.h>
#include "record.h"

struct known_module {
	uint64_t bias;
	uint64_t lo, hi;      /* span of its PT_LOAD segments */
	uint32_t id;
	int seen;             /* found by the current scan */
	char name_tail[32];   /* last bytes of the path, to tell objects apart */
};

static struct known_module mods[MT_MAX_MODULES];
static size_t n_mods;
static uint32_t next_id = 1;
static unsigned long long last_adds = ~0ull, last_subs = ~0ull;
static pthread_mutex_t mod_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *module_path(const struct dl_phdr_info *info, char *buf, size_t len)
{
	if (info->dlpi_name && info->dlpi_name[0])
		return info->dlpi_name;
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static void tail_of(const char *path, char out[32])
{
	size_t n = strlen(path);
	const char *s = n > 31 ? path + n - 31 : path;
	memset(out, 0, 32);
	memcpy(out, s, strlen(s));
}

/* Finds the GNU build-id note in the loaded image; returns its length. */
static size_t build_id(const struct dl_phdr_info *info, const uint8_t **out)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
		const uint8_t *end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
			const uint8_t *name = p + sizeof *nh;
			const uint8_t *desc = name + ((nh->n_namesz + 3) & ~3u);
			if (desc + nh->n_descsz > end)
				break;
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
				*out = desc;
				return nh->n_descsz;
			}
			p = desc + ((nh->n_descsz + 3) & ~3u);
		}
	}
	return 0;
}

static void emit_module(const struct dl_phdr_info *info, const char *path, uint32_t id)
{
	uint8_t rec[8192], *p = rec;
	const uint8_t *bid = NULL;
	size_t bid_len = build_id(info, &bid);
	p = mt_put_varint(p, id);
	p = mt_put_varint(p, mt_ticks_after());
	p = mt_put_varint(p, info->dlpi_addr);
	p = mt_put_str(p, path, 4096);
	p = mt_put_varint(p, bid_len > 64 ? 0 : bid_len);
	for (size_t i = 0; bid_len <= 64 && i < bid_len; i++)
		*p++ = bid[i];
	uint8_t *nseg_at = p++;
	unsigned nseg = 0;
	for (int i = 0; i < info->dlpi_phnum && nseg < 64; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		p = mt_put_varint(p, info->dlpi_addr + ph->p_vaddr);
		p = mt_put_varint(p, ph->p_memsz);
		p = mt_put_varint(p, ph->p_flags);
		nseg++;
	}
	*nseg_at = (uint8_t)nseg;  /* < 128: one varint byte */
	mt_writer_record(MT_REC_MODULE, rec, (size_t)(p - rec));
}

static void load_span(const struct dl_phdr_info *info, uint64_t *lo, uint64_t *hi)
{
	*lo = UINT64_MAX;
	*hi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uint64_t a = info->dlpi_addr + ph->p_vaddr;
		if (a < *lo)
			*lo = a;
		if (a + ph->p_memsz > *hi)
			*hi = a + ph->p_memsz;
	}
}

static int scan_one(struct dl_phdr_info *info, size_t size, void *arg)
{
	char buf[4096];
	const char *path = module_path(info, buf, sizeof buf);
	char tail[32];
	tail_of(path, tail);
	for (size_t i = 0; i < n_mods; i++) {
		if (mods[i].bias == info->dlpi_addr && !memcmp(mods[i].name_tail, tail, 32)) {
			mods[i].seen = 1;
			return 0;
		}
	}
	if (n_mods == MT_MAX_MODULES)
		return 0;
	struct known_module *m = &mods[n_mods++];
	m->bias = info->dlpi_addr;
	memcpy(m->name_tail, tail, 32);
	load_span(info, &m->lo, &m->hi);
	m->id = next_id++;
	m->seen = 1;
	emit_module(info, path, m->id);
	return 0;
}

static int read_counters(struct dl_phdr_info *info, size_t size, void *arg)
{
	unsigned long long *c = arg;
	c[0] = info->dlpi_adds;
	c[1] = info->dlpi_subs;
	return 1;  /* the first object is enough */
}

static void drop_unseen(void)
{
	size_t w = 0;
	for (size_t i = 0; i < n_mods; i++) {
		if (!mods[i].seen) {
			uint8_t rec[32], *p = rec;
			p = mt_put_varint(p, mods[i].id);
			p = mt_put_varint(p, mt_ticks_after());
			mt_writer_record(MT_REC_MODULE_UNLOAD, rec, (size_t)(p - rec));
			continue;
		}
		mods[w++] = mods[i];
	}
	n_mods = w;
}

/* Caller holds mod_lock. */
static void scan_locked(void)
{
	unsigned long long c[2] = { 0, 0 };
	dl_iterate_phdr(read_counters, c);
	if (c[0] == last_adds && c[1] == last_subs)
		return;
	last_adds = c[0];
	last_subs = c[1];
	for (size_t i = 0; i < n_mods; i++)
		mods[i].seen = 0;
	dl_iterate_phdr(scan_one, NULL);
	drop_unseen();
}

void mt_modules_scan(void)
{
	mt_depth++;
	pthread_mutex_lock(&mod_lock);
	scan_locked();
	pthread_mutex_unlock(&mod_lock);
	mt_depth--;
}

/* Called for each new call-stack node: rescan if ip lies in no known module. */
void mt_modules_note_ip(uint64_t ip)
{
	pthread_mutex_lock(&mod_lock);
	int known = 0;
	for (size_t i = 0; i < n_mods && !known; i++)
		known = ip >= mods[i].lo && ip < mods[i].hi;
	if (!known)
		scan_locked();
	pthread_mutex_unlock(&mod_lock);
}

struct self_query {
	uintptr_t addr, lo, hi;
	int found;
};

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct self_query *q = arg;
	uint64_t lo, hi;
	load_span(info, &lo, &hi);
	if (q->addr < lo || q->addr >= hi)
		return 0;
	q->lo = lo;
	q->hi = hi;
	q->found = 1;
	return 1;
}

int mt_modules_self_range(const void *addr, uintptr_t *lo, uintptr_t *hi)
{
	struct self_query q = { (uintptr_t)addr, 0, 0, 0 };
	dl_iterate_phdr(find_self, &q);
	*lo = q.lo;
	*hi = q.hi;
	return q.found ? 0 : -1;
}
