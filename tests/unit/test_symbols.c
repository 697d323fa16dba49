/*
 * Symbolization (src/analyze/symbols.c) against this very executable and
 * the libc it runs with: the module list is built from dl_iterate_phdr the
 * way the recorder builds it, then addresses of known functions are
 * resolved.  Needs the test compiled with -g (any -O: the inline probes
 * use always_inline).
 *
 * `test_symbols --bench` also prints symbolization speed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "analyze/symbols.h"

#define MAX_MODS 128

static struct mt_module g_mods[MAX_MODS];
static size_t g_n_mods;
static const char *g_exe_base;   /* basename of /proc/self/exe */

/* ---- probes: functions whose addresses and lines we know ---- */

/* Returns its own return address: a pc inside the caller, at the call. */
static __attribute__((noinline)) uint64_t caller_pc(void)
{
	return (uint64_t)(uintptr_t)__builtin_extract_return_addr(__builtin_return_address(0));
}

/* The asm after each call uses pc, so the call is not a tail call. */
static __attribute__((noinline)) uint64_t probe_plain(int *line)
{
	uint64_t pc = caller_pc(); *line = __LINE__;
	__asm__ volatile("" : "+r"(pc));
	return pc;
}

struct inline_lines { int inner, mid, outer; };

static inline __attribute__((always_inline)) uint64_t inl_inner(struct inline_lines *l)
{
	uint64_t pc = caller_pc(); l->inner = __LINE__;
	__asm__ volatile("" : "+r"(pc));
	return pc;
}

static inline __attribute__((always_inline)) uint64_t inl_mid(struct inline_lines *l)
{
	uint64_t pc = inl_inner(l); l->mid = __LINE__;
	__asm__ volatile("" : "+r"(pc));
	return pc;
}

static __attribute__((noinline)) uint64_t probe_inline(struct inline_lines *l)
{
	uint64_t pc = inl_mid(l); l->outer = __LINE__;
	__asm__ volatile("" : "+r"(pc));
	return pc;
}

/* ---- the module list, as the recorder would write it ---- */

/* Build-id from the PT_NOTE segments mapped at bias; fills m->build_id. */
static void note_build_id(struct mt_module *m, const ElfW(Phdr) *ph, ElfW(Addr) bias)
{
	size_t align = ph->p_align == 8 ? 8 : 4;
	const char *p = (const char *)(bias + ph->p_vaddr), *end = p + ph->p_memsz;
	while (p + sizeof(ElfW(Nhdr)) <= end) {
		const ElfW(Nhdr) *n = (const void *)p;
		const char *name = p + sizeof(*n);
		const char *desc = name + ((n->n_namesz + align - 1) & ~(align - 1));
		if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
			m->build_id = malloc(n->n_descsz);
			memcpy(m->build_id, desc, n->n_descsz);
			m->build_id_len = n->n_descsz;
			return;
		}
		p = desc + ((n->n_descsz + align - 1) & ~(align - 1));
	}
}

static int on_phdr(struct dl_phdr_info *info, size_t size, void *arg)
{
	if (g_n_mods == MAX_MODS)
		return 1;
	struct mt_module *m = &g_mods[g_n_mods];
	m->id = (uint32_t)g_n_mods++;
	m->load_bias = info->dlpi_addr;
	if (m->id == 0) {
		char buf[4096];
		ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		m->path = strdup(buf);
	} else {
		m->path = strdup(info->dlpi_name);
	}
	m->segs = calloc(info->dlpi_phnum, sizeof(*m->segs));
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD)
			m->segs[m->n_segs++] = (struct mt_segment){
				info->dlpi_addr + ph->p_vaddr, ph->p_memsz, ph->p_flags };
		else if (ph->p_type == PT_NOTE && !m->build_id)
			note_build_id(m, ph, info->dlpi_addr);
	}
	return 0;
}

static int load_modules(void **state)
{
	dl_iterate_phdr(on_phdr, NULL);
	const char *slash = strrchr(g_mods[0].path, '/');
	g_exe_base = slash ? slash + 1 : g_mods[0].path;
	return g_n_mods > 1 ? 0 : -1;
}

static int free_modules(void **state)
{
	for (size_t i = 0; i < g_n_mods; i++) {
		free(g_mods[i].path);
		free(g_mods[i].build_id);
		free(g_mods[i].segs);
	}
	return 0;
}

/* The module whose path contains needle; NULL when none. */
static const struct mt_module *find_module(const char *needle)
{
	for (size_t i = 1; i < g_n_mods; i++)
		if (strstr(g_mods[i].path, needle))
			return &g_mods[i];
	return NULL;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = s ? strlen(s) : 0, b = strlen(suffix);
	return s && a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- tests ---- */

static void test_noinline_function(void **state)
{
	int line = 0;
	uint64_t pc = probe_plain(&line);
	struct mt_symbolizer *s = mt_symbolizer_new(g_mods, g_n_mods);
	struct mt_frame f[MT_SYM_MAX_FRAMES];
	int n = mt_symbolize(s, pc, 1, f, MT_SYM_MAX_FRAMES);
	assert_int_equal(n, 1);
	assert_string_equal(f[0].function, "probe_plain");
	assert_true(ends_with(f[0].file, "test_symbols.c"));
	assert_int_equal(f[0].line, line);
	assert_int_equal(f[0].inlined, 0);
	assert_string_equal(f[0].module, g_exe_base);
	assert_int_equal(f[0].ip, pc);
	mt_symbolizer_free(s);
}

static void test_inline_chain(void **state)
{
	struct inline_lines l = { 0 };
	uint64_t pc = probe_inline(&l);
	struct mt_symbolizer *s = mt_symbolizer_new(g_mods, g_n_mods);
	struct mt_frame f[MT_SYM_MAX_FRAMES];
	int n = mt_symbolize(s, pc, 1, f, MT_SYM_MAX_FRAMES);
	assert_int_equal(n, 3);
	assert_string_equal(f[0].function, "inl_inner");
	assert_int_equal(f[0].line, l.inner);
	assert_int_equal(f[0].inlined, 1);
	assert_string_equal(f[1].function, "inl_mid");
	assert_int_equal(f[1].line, l.mid);
	assert_int_equal(f[1].inlined, 1);
	assert_true(ends_with(f[1].file, "test_symbols.c"));
	assert_string_equal(f[2].function, "probe_inline");
	assert_int_equal(f[2].line, l.outer);
	assert_int_equal(f[2].inlined, 0);

	/* Too small an array keeps the innermost frames and the real function last. */
	assert_int_equal(mt_symbolize(s, pc, 1, f, 2), 2);
	assert_string_equal(f[0].function, "inl_inner");
	assert_string_equal(f[1].function, "probe_inline");
	assert_int_equal(mt_symbolize(s, pc, 1, f, 1), 1);
	assert_string_equal(f[0].function, "probe_inline");
	assert_int_equal(mt_symbolize(s, pc, 1, f, 0), 0);
	mt_symbolizer_free(s);
}

static void test_cache_returns_interned_strings(void **state)
{
	int line;
	uint64_t pc = probe_plain(&line);
	struct mt_symbolizer *s = mt_symbolizer_new(g_mods, g_n_mods);
	struct mt_frame a, b;
	mt_symbolize(s, pc, 1, &a, 1);
	mt_symbolize(s, pc, 1, &b, 1);
	assert_ptr_equal(a.function, b.function);
	assert_ptr_equal(a.file, b.file);
	assert_ptr_equal(a.module, b.module);
	mt_symbolizer_free(s);
}

static void test_demangle(void **state)
{
	char buf[256];
	assert_string_equal(mt_demangle("_ZN3foo3barEv", buf, sizeof(buf)), "foo::bar()");
	assert_string_equal(mt_demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE",
	                                buf, sizeof(buf)), "core::ptr::drop_in_place");
	assert_string_equal(mt_demangle("_RNvNtCs1234_7mycrate3foo3bar", buf, sizeof(buf)),
	                    "mycrate::foo::bar");
	const char *plain = "malloc";
	assert_ptr_equal(mt_demangle(plain, buf, sizeof(buf)), plain);
	const char *bad = "_Zgarbage";
	assert_ptr_equal(mt_demangle(bad, buf, sizeof(buf)), bad);
	assert_null(mt_demangle(NULL, buf, sizeof(buf)));
	assert_string_equal(mt_demangle("_ZN3foo3barEv", buf, 4), "foo");
}

static void test_libc_malloc(void **state)
{
	void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	assert_non_null(libc);
	uint64_t ip = (uint64_t)(uintptr_t)dlsym(libc, "malloc");
	dlclose(libc);
	struct mt_symbolizer *s = mt_symbolizer_new(g_mods, g_n_mods);
	struct mt_frame f[MT_SYM_MAX_FRAMES];
	int n = mt_symbolize(s, ip, 0, f, MT_SYM_MAX_FRAMES);
	assert_true(n >= 1);
	const char *fn = f[n - 1].function;
	assert_true(strcmp(fn, "malloc") == 0 || strcmp(fn, "__libc_malloc") == 0);
	assert_non_null(f[n - 1].module);
	assert_true(strncmp(f[n - 1].module, "libc.so", 7) == 0);
	mt_symbolizer_free(s);
}

static void test_garbage_addresses(void **state)
{
	static const uint64_t ips[] = { 0, 1, 0x1000, UINT64_MAX, UINT64_MAX / 2 };
	struct mt_symbolizer *s = mt_symbolizer_new(g_mods, g_n_mods);
	struct mt_frame f[MT_SYM_MAX_FRAMES];
	for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
		for (int ret = 0; ret < 2; ret++) {
			assert_int_equal(mt_symbolize(s, ips[i], ret, f, MT_SYM_MAX_FRAMES), 1);
			assert_string_equal(f[0].function, "??");
			assert_null(f[0].module);
			assert_null(f[0].file);
		}
	}
	/* Every byte of every segment of every module: no crash, never NULL. */
	for (size_t m = 0; m < g_n_mods; m++)
		for (size_t k = 0; k < g_mods[m].n_segs; k++)
			for (uint64_t a = g_mods[m].segs[k].start;
			     a < g_mods[m].segs[k].start + g_mods[m].segs[k].size; a += 4093) {
				int n = mt_symbolize(s, a, 1, f, MT_SYM_MAX_FRAMES);
				assert_true(n >= 1 && n <= MT_SYM_MAX_FRAMES);
				for (int i = 0; i < n; i++)
					assert_non_null(f[i].function);
			}
	assert_int_equal(mt_symbolize(NULL, 1, 0, f, 1), 0);
	mt_symbolizer_free(s);
	mt_symbolizer_free(NULL);
}

/* A module whose file is missing or whose build-id differs resolves to name+0xoffset. */
static void test_missing_and_mismatched_files(void **state)
{
	int line;
	uint64_t pc = probe_plain(&line);
	struct mt_module mods[2] = { g_mods[0], g_mods[0] };
	uint8_t wrong[20] = { 1, 2, 3 };
	mods[0].build_id = wrong;
	mods[0].build_id_len = sizeof(wrong);
	mods[1].path = "/nonexistent/dir/libgone.so.1";
	mods[1].load_bias = 0x7f0000000000ull;
	struct mt_segment seg = { 0x7f0000001000ull, 0x1000, 5 };
	mods[1].segs = &seg;
	mods[1].n_segs = 1;
	struct mt_symbolizer *s = mt_symbolizer_new(mods, 2);
	struct mt_frame f[MT_SYM_MAX_FRAMES];
	char want[256];

	assert_int_equal(mt_symbolize(s, pc, 1, f, MT_SYM_MAX_FRAMES), 1);
	snprintf(want, sizeof(want), "%s+0x%llx", g_exe_base,
	         (unsigned long long)(pc - 1 - g_mods[0].load_bias));
	assert_string_equal(f[0].function, want);
	assert_string_equal(f[0].module, g_exe_base);
	assert_null(f[0].file);

	assert_int_equal(mt_symbolize(s, 0x7f0000001234ull, 0, f, MT_SYM_MAX_FRAMES), 1);
	assert_string_equal(f[0].function, "libgone.so.1+0x1234");
	assert_string_equal(f[0].module, "libgone.so.1");
	mt_symbolizer_free(s);
}

/* A stripped copy of this executable: no .symtab, no DWARF, same build-id. */
static void test_stripped_binary(void **state)
{
	char path[] = "/tmp/mt_symbols_stripped_XXXXXX", cmd[8192];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "objcopy --strip-all '%s' '%s' 2>/dev/null", g_mods[0].path, path);
	if (system(cmd) != 0) {
		unlink(path);
		skip();
	}
	int line;
	uint64_t pc = probe_plain(&line);
	struct mt_module m = g_mods[0];
	m.path = path;
	struct mt_symbolizer *s = mt_symbolizer_new(&m, 1);
	struct mt_frame f[MT_SYM_MAX_FRAMES];
	assert_int_equal(mt_symbolize(s, pc, 1, f, MT_SYM_MAX_FRAMES), 1);
	/* probe_plain is static: gone with .symtab, and no debug file exists
	   for this build-id, so only the offset is left. */
	char want[256];
	snprintf(want, sizeof(want), "%s+0x%llx", strrchr(path, '/') + 1,
	         (unsigned long long)(pc - 1 - m.load_bias));
	assert_string_equal(f[0].function, want);
	assert_null(f[0].file);
	assert_string_equal(f[0].module, strrchr(path, '/') + 1);
	mt_symbolizer_free(s);
	unlink(path);
}

/* ---- speed ---- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Symbolizes n addresses spread over the executable segment of mod. */
static void bench_module(const struct mt_module *mod, int n)
{
	const struct mt_segment *x = NULL;
	for (size_t k = 0; k < mod->n_segs; k++)
		if (mod->segs[k].flags & PF_X)
			x = &mod->segs[k];
	if (!x)
		return;
	struct mt_frame f[MT_SYM_MAX_FRAMES];
	uint64_t step = x->size / (uint64_t)n ? x->size / (uint64_t)n : 1;
	struct mt_symbolizer *s = mt_symbolizer_new(g_mods, g_n_mods);
	double t0 = now_s();
	mt_symbolize(s, x->start + step / 2, 1, f, MT_SYM_MAX_FRAMES);  /* opens the files */
	double t1 = now_s();
	long frames = 0;
	for (int i = 1; i < n; i++)
		frames += mt_symbolize(s, x->start + (uint64_t)i * step, 1, f, MT_SYM_MAX_FRAMES);
	double t2 = now_s();
	for (int i = 1; i < n; i++)
		mt_symbolize(s, x->start + (uint64_t)i * step, 1, f, MT_SYM_MAX_FRAMES);
	double t3 = now_s();
	printf("%-28s first ip %6.1f ms; uncached %8.0f ips/s (%.2f frames/ip); cached %10.0f ips/s\n",
	       strrchr(mod->path, '/') ? strrchr(mod->path, '/') + 1 : mod->path,
	       (t1 - t0) * 1e3, (n - 1) / (t2 - t1), (double)frames / (n - 1), (n - 1) / (t3 - t2));
	mt_symbolizer_free(s);
}

static void run_bench(void)
{
	bench_module(&g_mods[0], 2000);
	const char *libs[] = { "libc.so", "libdw.so", "libelf.so", "libcmocka" };
	for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++)
		if (find_module(libs[i]))
			bench_module(find_module(libs[i]), 20000);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_noinline_function),
		cmocka_unit_test(test_inline_chain),
		cmocka_unit_test(test_cache_returns_interned_strings),
		cmocka_unit_test(test_demangle),
		cmocka_unit_test(test_libc_malloc),
		cmocka_unit_test(test_garbage_addresses),
		cmocka_unit_test(test_missing_and_mismatched_files),
		cmocka_unit_test(test_stripped_binary),
	};
	if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
		load_modules(NULL);
		run_bench();
		return free_modules(NULL);
	}
	return cmocka_run_group_tests(tests, load_modules, free_modules);
}
