/*
 * rulescan: which return addresses of a shared library would make
 * mt_unwind_capture fall back to unw_backtrace, and why; and where the CFI
 * row at the return address differs from the row at the call (ra - 1,
 * the right one, which unwind_test's noreturn_row_test checks).  Reads
 * "hex_offset function" lines (the address after each call instruction,
 * from objdump; see rulescan.sh).  Includes unwind.c to reach its static
 * rule computation.
 * usage: rulescan lib.so < calls.txt
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/record/unwind.c"

#define MAX_EXAMPLES 6

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_NOLOAD);
	if (!h)
		h = dlopen(argv[1], RTLD_NOW);
	struct link_map *lm = NULL;
	if (!h || dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0) {
		fprintf(stderr, "rulescan: cannot load '%s': %s\n", argv[1], dlerror());
		return 1;
	}
	unsigned long counts[MT_UNWIND_WHY_COUNT] = { 0 }, total = 0, row_differs = 0;
	char examples[MT_UNWIND_WHY_COUNT][MAX_EXAMPLES][64];
	int n_ex[MT_UNWIND_WHY_COUNT] = { 0 };
	char line[512], fn[256];
	unsigned long off;
	while (fgets(line, sizeof line, stdin)) {
		if (sscanf(line, "%lx %255s", &off, fn) != 2)
			continue;
		uint64_t ra = lm->l_addr + off;
		unsigned why = mt_unwind_explain(ra);
		if (rule_compute_at(ra, ra) != rule_compute_at(ra, ra - 1) && row_differs++ < 5)
			printf("  row at ra differs from row at ra - 1: %s+%lx\n", fn, off);
		total++;
		counts[why]++;
		if (why && n_ex[why] < MAX_EXAMPLES)
			snprintf(examples[why][n_ex[why]++], 64, "%.40s+%lx", fn, off);
	}
	printf("%s: %lu call sites", argv[1], total);
	for (unsigned w = 0; w < MT_UNWIND_WHY_COUNT; w++)
		if (counts[w])
			printf(", %s %lu", mt_unwind_why_name(w), counts[w]);
	printf("; row at ra differs %lu\n", row_differs);
	for (unsigned w = 1; w < MT_UNWIND_WHY_COUNT; w++) {
		if (!n_ex[w])
			continue;
		printf("  %s in:", mt_unwind_why_name(w));
		for (int i = 0; i < n_ex[w]; i++)
			printf(" %s", examples[w][i]);
		printf("\n");
	}
	return 0;
}
