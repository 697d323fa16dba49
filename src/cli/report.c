/*
 * memtriage report TRACE: analyze a recorded trace and print a report.
 */
#include <errno.h>
#include <getopt.h>
#include <string.h>
#include "cli/cli.h"

static void report_usage(FILE *f)
{
	fprintf(f, "usage: memtriage report [<options>] TRACE\n\n"
	        "Analyzes a trace written by 'memtriage run' and prints a report: allocation\n"
	        "statistics, peak heap, what was leaked at exit, the top call stacks, a size\n"
	        "histogram and the recorder's own overhead.\n\noptions:\n"
	        "  -o, --output FILE   write the report to FILE instead of stdout\n"
	        "  -f, --format NAME   report format (default text):\n");
	for (size_t i = 0; mt_reporters[i]; i++)
		fprintf(f, "                        %-6s %s\n", mt_reporters[i]->name,
		        mt_reporters[i]->summary);
	fprintf(f, "  -n, --top N         call stacks per top list (default %d, at most %d)\n"
	        "      --timing        print the time each phase took on stderr\n"
	        "  -h, --help          show this help\n", MT_TOP_DEFAULT, MT_TOP_MAX);
}

struct report_args {
	const char *trace, *output;
	const struct mt_reporter *rep;
	unsigned top_n;
};

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct report_args *ra)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "top",    required_argument, NULL, 'n' },
		{ "timing", no_argument,       NULL, 'T' },
		{ "help",   no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:f:n:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': ra->output = optarg; break;
		case 'f':
			if (!(ra->rep = mt_reporter_find(optarg)))
				return mt_usage_error("report", "unknown format '%s'", optarg);
			break;
		case 'n':
			if (mt_parse_uint("report", "--top", optarg, 1, MT_TOP_MAX, &ra->top_n))
				return MT_EXIT_USAGE;
			break;
		case 'T': mt_report_timing = 1; break;
		case 'h': report_usage(stdout); return MT_EXIT_OK;
		default:  return mt_bad_option("report", c, argv);
		}
	}
	if (optind >= argc)
		return mt_usage_error("report", "missing trace file");
	if (optind + 1 < argc)
		return mt_usage_error("report", "unexpected argument '%s'", argv[optind + 1]);
	ra->trace = argv[optind];
	return -1;
}

int mt_cmd_report(int argc, char **argv)
{
	struct report_args ra = { .rep = &mt_report_text, .top_n = MT_TOP_DEFAULT };
	int rc = parse_args(argc, argv, &ra);
	if (rc >= 0)
		return rc;
	if (!ra.output || strcmp(ra.output, "-") == 0)
		return mt_write_report(ra.trace, ra.rep, ra.top_n, stdout, "stdout");

	FILE *out = fopen(ra.output, "w");
	if (!out) {
		mt_error("cannot write '%s': %s", ra.output, strerror(errno));
		return MT_EXIT_FAIL;
	}
	rc = mt_write_report(ra.trace, ra.rep, ra.top_n, out, ra.output);
	if (fclose(out) && !rc) {
		mt_error("cannot write '%s': %s", ra.output, strerror(errno));
		rc = MT_EXIT_FAIL;
	}
	return rc;
}
