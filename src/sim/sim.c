/*
 * `memtriage sim NAME [OPTIONS]`: run a built-in workload whose memory
 * behaviour is known, for the demo, the tests and calibrating verdicts.
 * One entry per workload in the table below; each lives in its own file
 * (frontend.c with frontend_net.c, leak.c, plateau.c, nonheap.c, and
 * load.c, the client of `frontend --listen`) and parses its own options
 * (leak, plateau and nonheap through mt_sim_getopt and run their cycles
 * through mt_sim_run_cycles, both in common.c).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "sim/sim.h"
#include "sim/sim_int.h"

static const struct mt_sim_workload workloads[] = {
	{ "frontend", "LLM-serving HTTP frontend: many threads, large payloads, "
	              "cross-thread frees; RSS grows from allocator retention, no leak",
	  mt_sim_frontend },
	{ "leak", "unbounded cache: every request leaks --leak-bytes into a map that "
	          "is never evicted; the live heap grows linearly",
	  mt_sim_leak },
	{ "plateau", "bounded LRU cache: the live heap rises during warm-up, then "
	             "stays level; nothing leaks",
	  mt_sim_plateau },
	{ "nonheap", "RSS grows outside malloc (anonymous mmaps, parked thread "
	             "stacks) while the heap stays flat",
	  mt_sim_nonheap },
	{ "load", "load generator for 'frontend --listen': sends requests over "
	          "TCP on many connections, prints throughput",
	  mt_sim_load },
};
#define N_WORKLOADS (sizeof workloads / sizeof workloads[0])

static void usage(FILE *f)
{
	fputs("usage: memtriage sim WORKLOAD [OPTIONS]\n"
	      "       memtriage sim WORKLOAD --help\n\n"
	      "Runs a built-in workload with known memory behaviour; record it with\n"
	      "  memtriage run -- memtriage sim WORKLOAD ...\n\n"
	      "workloads:\n", f);
	for (size_t i = 0; i < N_WORKLOADS; i++)
		fprintf(f, "  %-10s %s\n", workloads[i].name, workloads[i].summary);
}

static const struct mt_sim_workload *find_workload(const char *name)
{
	for (size_t i = 0; i < N_WORKLOADS; i++)
		if (!strcmp(workloads[i].name, name))
			return &workloads[i];
	return NULL;
}

int mt_cmd_sim(int argc, char **argv)
{
	const struct mt_sim_workload *w;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	w = find_workload(argv[1]);
	if (!w) {
		fprintf(stderr, "memtriage: unknown workload '%s' (see 'memtriage sim --help')\n",
			argv[1]);
		return 2;
	}
	optind = 0;  /* glibc: full re-initialisation for the workload's getopt_long */
	return w->run(argc - 1, argv + 1);
}
