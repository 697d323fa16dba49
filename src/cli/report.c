/*
 * memtriage report TRACE: analyze a recorded trace and print a report.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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
	        "      --metric M      folded: the value per stack, one of peak (live bytes at\n"
	        "                      the heap's peak; default), leaked, allocated (bytes),\n"
	        "                      calls, temporary\n"
	        "      --diff A B      only the stacks whose live bytes grew most from mark A to\n"
	        "                      mark B, with the live heap and RSS change; a mark is a label\n"
	        "                      (its first occurrence) or LABEL#N (its Nth); folded: every\n"
	        "                      stack with its live bytes at A and at B\n"
	        "      --timing        print the time each phase took on stderr\n"
	        "  -h, --help          show this help\n", MT_TOP_DEFAULT, MT_TOP_MAX);
}

struct report_args {
	const char *trace, *output;
	const struct mt_reporter *rep;
	unsigned top_n;
	const char *diff[2];     /* --diff A B: mark specs; NULL without --diff */
	const char *metric;      /* --metric as given; NULL without it */
	enum mt_metric metric_id;
};

/*
 * --metric picks the one value a folded line carries; a format that shows
 * every figure, or a diff (live bytes at A and B), has no use for it, and
 * ignoring it would let a user believe the output was chosen by it.
 * Returns -1 to go on, or an exit status.
 */
static int check_metric(const struct report_args *ra)
{
	if (!ra->metric)
		return -1;
	if (ra->rep != &mt_report_folded)
		return mt_usage_error("report", "--metric applies to --format folded only, "
		                      "not to '%s'", ra->rep->name);
	if (ra->diff[0])
		return mt_usage_error("report", "--metric does not apply to --diff, "
		                      "which gives live bytes at A and at B");
	return -1;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct report_args *ra)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "top",    required_argument, NULL, 'n' },
		{ "timing", no_argument,       NULL, 'T' },
		{ "diff",   required_argument, NULL, 'D' },
		{ "metric", required_argument, NULL, 'M' },
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
		case 'M':
			if (mt_metric_parse(optarg, &ra->metric_id))
				return mt_usage_error("report", "unknown metric '%s': expected peak, leaked, "
				                      "allocated, calls or temporary", optarg);
			ra->metric = optarg;
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
	return check_metric(ra);
}

/* ---- compare results (memtriage compare -o FILE) ---------------------------- */

#define COMPARE_FILE_MAX (64u << 20)   /* a results file is KBs; this only bounds a mistake */

/*
 * The whole file when it is a compare results file (JSON whose start names
 * the schema "memtriage-compare"); NULL otherwise (a trace, or unreadable:
 * the trace reader then says why).  *len is its size.
 */
static char *read_compare(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char head[256], packed[256];
	if (!f)
		return NULL;
	size_t n = fread(head, 1, sizeof(head) - 1, f), k = 0;
	for (size_t i = 0; i < n; i++)      /* as reformatted by jq or json.tool, too */
		if (!strchr(" \t\r\n", head[i]))
			packed[k++] = head[i];
	packed[k] = '\0';
	char *text = NULL;
	if (packed[0] == '{' && strstr(packed, "\"schema\":\"memtriage-compare\"") &&
	    fseek(f, 0, SEEK_END) == 0) {
		long size = ftell(f);
		if (size > 0 && (unsigned long)size <= COMPARE_FILE_MAX && fseek(f, 0, SEEK_SET) == 0 &&
		    (text = malloc((size_t)size + 1)) && fread(text, 1, (size_t)size, f) == (size_t)size) {
			text[size] = '\0';
			*len = (size_t)size;
		} else {
			free(text);
			text = NULL;
		}
	}
	fclose(f);
	return text;
}

static int write_compare(const struct report_args *ra, const char *text, size_t len, FILE *out,
                         const char *out_name)
{
	int rc = 0;
	if (ra->rep == &mt_report_html)
		rc = mt_html_write_compare(text, len, out);
	else if (fwrite(text, 1, len, out) != len)
		rc = -EIO;
	if (rc == -EINVAL) {
		mt_error("'%s' is not a compare results file that can be read", ra->trace);
		return MT_EXIT_USAGE;
	}
	if (rc)
		mt_error("cannot write the report to '%s': %s", out_name, strerror(-rc));
	return rc ? MT_EXIT_FAIL : MT_EXIT_OK;
}

static int write_one(const struct report_args *ra, FILE *out, const char *out_name)
{
	struct mt_report_opts ro = { .top_n = ra->top_n, .metric = ra->metric_id };
	return mt_write_report_opts(ra->trace, ra->rep, &ro, ra->diff[0] ? ra->diff : NULL,
	                            out, out_name);
}

int mt_cmd_report(int argc, char **argv)
{
	struct report_args ra = { .rep = &mt_report_text, .top_n = MT_TOP_DEFAULT };
	int rc = parse_args(argc, argv, &ra);
	if (rc >= 0)
		return rc;
	if (ra.diff[0] && ra.rep == &mt_report_pprof)
		return mt_usage_error("report", "--diff has no pprof form: compare two traces' "
		                      "profiles with 'go tool pprof -diff_base'");
	if ((!ra.output || strcmp(ra.output, "-") == 0) && ra.rep->binary && isatty(STDOUT_FILENO)) {
		mt_error("format '%s' is binary: write it with -o FILE or redirect stdout",
		         ra.rep->name);
		return MT_EXIT_USAGE;
	}
	size_t cmp_len = 0;
	char *cmp = read_compare(ra.trace, &cmp_len);
	if (cmp && ra.rep != &mt_report_html && ra.rep != &mt_report_json) {
		free(cmp);
		return mt_usage_error("report", "'%s' holds the results of 'memtriage compare': they "
		                      "have an html and a json form only", ra.trace);
	}
	if (!ra.output || strcmp(ra.output, "-") == 0) {
		rc = cmp ? write_compare(&ra, cmp, cmp_len, stdout, "stdout")
		         : write_one(&ra, stdout, "stdout");
		free(cmp);
		return rc;
	}

	FILE *out = fopen(ra.output, "w");
	if (!out) {
		mt_error("cannot write '%s': %s", ra.output, strerror(errno));
		free(cmp);
		return MT_EXIT_FAIL;
	}
	rc = cmp ? write_compare(&ra, cmp, cmp_len, out, ra.output) : write_one(&ra, out, ra.output);
	free(cmp);
	if (fclose(out) && !rc) {
		mt_error("cannot write '%s': %s", ra.output, strerror(errno));
		rc = MT_EXIT_FAIL;
	}
	return rc;
}
