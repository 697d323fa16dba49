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
	        "      --diff A B      only the stacks whose live bytes grew most from mark A to\n"
	        "                      mark B, with the live heap and RSS change; a mark is a label\n"
	        "                      (its first occurrence) or LABEL#N (its Nth)\n"
	        "      --timing        print the time each phase took on stderr\n"
	        "  -h, --help          show this help\n", MT_TOP_DEFAULT, MT_TOP_MAX);
}

struct report_args {
	const char *trace, *output;
	const struct mt_reporter *rep;
	unsigned top_n;
	const char *diff[2];     /* --diff A B: mark specs; NULL without --diff */
};

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct report_args *ra)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "top",    required_argument, NULL, 'n' },
		{ "timing", no_argument,       NULL, 'T' },
		{ "diff",   required_argument, NULL, 'D' },
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
		case 'D':
			if (optind >= argc)
				return mt_usage_error("report", "--diff takes two marks: --diff A B");
			ra->diff[0] = optarg;
			ra->diff[1] = argv[optind++];
			break;
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

/*
 * report --diff: the marks are looked up before the replay, which keeps
 * per-stack figures at those two only.  An exit status, the reason printed.
 */
static int write_diff(const struct report_args *ra, FILE *out, const char *out_name)
{
	struct mt_analysis_opts aopts = { .top_n = ra->top_n };
	struct mt_report_opts ropts = { .top_n = ra->top_n, .trace_path = ra->trace };
	struct mt_trace *tr = NULL;
	struct mt_analysis *a = NULL;
	char err[MT_ERR_LEN] = "";
	size_t k;
	int rc;

	if (mt_trace_open(ra->trace, &tr, err, NULL, NULL)) {
		mt_error("%s", err[0] ? err : "cannot read the trace");
		return MT_EXIT_USAGE;
	}
	for (int i = 0; i < 2; i++) {
		if ((rc = mt_marks_find(tr, ra->diff[i], &k, err))) {
			mt_error("%s", err);
			mt_trace_close(tr);
			return rc == -ENOENT ? MT_EXIT_USAGE : MT_EXIT_FAIL;
		}
		aopts.diff_mark[i] = k + 1;
	}
	if ((rc = mt_analyze(tr, &aopts, &a, err))) {
		mt_error("%s", err);
		mt_trace_close(tr);
		return rc == -EINVAL ? MT_EXIT_USAGE : MT_EXIT_FAIL;
	}
	rc = ra->rep->write(a, out, &ropts);
	if (rc)
		mt_error("cannot write the report to '%s': %s", out_name, strerror(-rc));
	mt_analysis_free(a);
	mt_trace_close(tr);
	return rc ? MT_EXIT_FAIL : MT_EXIT_OK;
}

static int write_one(const struct report_args *ra, FILE *out, const char *out_name)
{
	if (ra->diff[0])
		return write_diff(ra, out, out_name);
	return mt_write_report(ra->trace, ra->rep, ra->top_n, out, out_name);
}

int mt_cmd_report(int argc, char **argv)
{
	struct report_args ra = { .rep = &mt_report_text, .top_n = MT_TOP_DEFAULT };
	int rc = parse_args(argc, argv, &ra);
	if (rc >= 0)
		return rc;
	if (!ra.output || strcmp(ra.output, "-") == 0)
		return write_one(&ra, stdout, "stdout");

	FILE *out = fopen(ra.output, "w");
	if (!out) {
		mt_error("cannot write '%s': %s", ra.output, strerror(errno));
		return MT_EXIT_FAIL;
	}
	rc = write_one(&ra, out, ra.output);
	if (fclose(out) && !rc) {
		mt_error("cannot write '%s': %s", ra.output, strerror(errno));
		rc = MT_EXIT_FAIL;
	}
	return rc;
}
