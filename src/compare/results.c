/*
 * What a comparison prints: the RSS after each cycle per run, the runs'
 * VmPeak, wall time and throughput, the verdicts of recorded runs, the
 * scaling tables of sweeps, and a recommendation; and the same tables in
 * the JSON results file (schema "memtriage-compare", docs/compare.md).
 *
 * Every RSS is a process group's (group.c), in MiB (2^20 bytes) with one
 * decimal below 10 MiB, where a start-up RSS lies.
 */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>
#include "cli/cli.h"
#include "compare/compare.h"

#define MiB (1024.0 * 1024)
#define CYCLE_COLS 6                  /* cycle columns; beyond, the first 5 and the last */
#define THROUGHPUT_TOLERANCE 0.10     /* recommendation: within 10% of the baseline */

static int has_data(const struct cmp_result *r)
{
	return r->status != CMP_MISSING && r->status != CMP_NOT_RUN &&
	       r->status != CMP_NOEXEC && r->have_sample;
}

/* Ran to its end as asked: exited 0, or stopped by --cycles. */
static int run_ok(const struct cmp_result *r)
{
	return r->status == CMP_STOPPED ||
	       (r->status == CMP_RAN && WIFEXITED(r->wstatus) && WEXITSTATUS(r->wstatus) == 0);
}

static uint64_t final_rss(const struct cmp_result *r)
{
	return r->cycles_seen ? r->last_cycle_rss : r->last_rss;
}

static double throughput(const struct cmp_result *r)
{
	return r->n_throughput ? r->throughput_sum / (double)r->n_throughput : 0;
}

/* The baseline of a sweep point: glibc when it ran, else its first run with figures. */
static const struct cmp_result *baseline(const struct cmp_result *res, size_t n, size_t point)
{
	for (size_t i = 0; i < n; i++)
		if (res[i].point == point && has_data(&res[i]) && strcmp(res[i].cfg->name, "glibc") == 0)
			return &res[i];
	for (size_t i = 0; i < n; i++)
		if (res[i].point == point && has_data(&res[i]))
			return &res[i];
	return NULL;
}

/* v, or 0 when it would print as "-0" with `step` as the last digit's unit. */
static double nz(double v, double step)
{
	return fabs(v) < step / 2 ? 0.0 : v;
}

static const char *mib(char buf[32], uint64_t bytes)
{
	double v = (double)bytes / MiB;
	snprintf(buf, 32, v < 10 ? "%.1f" : "%.0f", v);
	return buf;
}

/* "glibc", or "glibc c=96 p=1M" with sweeps. */
static void run_label(const struct cmp_opts *o, const struct cmp_result *r, char *buf, size_t cap)
{
	size_t len = (size_t)snprintf(buf, cap, "%s", r->cfg->name);
	for (size_t k = 0; k < o->n_sweeps && len < cap; k++)
		len += (size_t)snprintf(buf + len, cap - len, " %s=%s", o->sweep[k].name,
		                        o->sweep[k].value[cmp_point_value(o, r->point, k)]);
}

static const char *why_not(const struct cmp_result *r, char *buf, size_t cap)
{
	switch (r->status) {
	case CMP_MISSING:
		if (r->cfg->kind == CMP_PRELOAD_SYSTEM)
			snprintf(buf, cap, "not installed (Debian package %s)", r->cfg->package);
		else
			snprintf(buf, cap, "not found: %s", r->cfg->preload);
		break;
	case CMP_NOT_RUN: snprintf(buf, cap, "not run"); break;
	case CMP_SERVER_DIED:
		snprintf(buf, cap, "the server ended before the first load (%s %d)",
		         WIFSIGNALED(r->wstatus) ? "signal" : "status",
		         WIFSIGNALED(r->wstatus) ? WTERMSIG(r->wstatus) : WEXITSTATUS(r->wstatus));
		break;
	case CMP_NOEXEC: snprintf(buf, cap, "cannot run the command: %s", strerror(r->exec_errno)); break;
	default: snprintf(buf, cap, "no sample: the command exited at once"); break;
	}
	return buf;
}

static size_t max_cycles(const struct cmp_result *res, size_t n)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (has_data(&res[i]) && res[i].cycles_seen > m)
			m = res[i].cycles_seen;
	return m;
}

/* ---- the tables ------------------------------------------------------------ */

static struct cmp_table *rss_table(const struct cmp_opts *o, const struct cmp_result *res, size_t n)
{
	size_t mc = max_cycles(res, n), cols = mc > CYCLE_COLS ? CYCLE_COLS : mc;
	struct cmp_table *t = cmp_table_new("RSS (MiB) at the start, after each cycle, at the end",
	                                    cols + 5);
	char name[64], b[32], why[128], lab[128];
	if (!t)
		return NULL;
	cmp_table_col(t, 0, "run", 0);
	cmp_table_col(t, 1, "start", 1);
	for (size_t k = 0; k < cols; k++) {
		size_t cyc = k == cols - 1 && mc > CYCLE_COLS ? mc : k + 1;
		snprintf(name, sizeof(name), "%scycle %zu", cyc != k + 1 ? "... " : "", cyc);
		cmp_table_col(t, 2 + k, name, 1);
	}
	cmp_table_col(t, cols + 2, "final", 1);
	cmp_table_col(t, cols + 3, "growth/cycle", 1);
	cmp_table_col(t, cols + 4, "vs base", 1);
	for (size_t i = 0; i < n; i++) {
		const struct cmp_result *r = &res[i], *base = baseline(res, n, r->point);
		size_t row = cmp_table_row(t);
		run_label(o, r, lab, sizeof(lab));
		cmp_table_set(t, row, 0, "%s", lab);
		if (!has_data(r)) {
			cmp_table_set(t, row, 1, "%s", why_not(r, why, sizeof(why)));
			t->span[row] = 1;
			continue;
		}
		cmp_table_set(t, row, 1, "%s", mib(b, r->initial));
		for (size_t k = 0; k < cols; k++) {
			int last = k == cols - 1 && mc > CYCLE_COLS;
			if (last ? r->cycles_seen > CYCLE_COLS - 1 : k < r->n_cycles)
				cmp_table_set(t, row, 2 + k, "%s", mib(b, last ? r->last_cycle_rss
				                                               : r->cycle_rss[k]));
		}
		cmp_table_set(t, row, cols + 2, "%s", mib(b, final_rss(r)));
		if (r->cycles_seen >= 2 && r->n_cycles)
			cmp_table_set(t, row, cols + 3, "%+.1f", nz(((double)r->last_cycle_rss -
			              (double)r->cycle_rss[0]) / (double)(r->cycles_seen - 1) / MiB, 0.1));
		cmp_table_set(t, row, cols + 4, "%.2fx", (double)final_rss(r) / (double)final_rss(base));
	}
	snprintf(t->note, sizeof(t->note), "RSS of the run's process group from /proc every %.0f ms "
	         "and %s; growth/cycle: (after the last cycle - after the first) / (cycles - 1); "
	         "final: after the last cycle (the last sample without cycles); vs base: final "
	         "against glibc's (else the first run's) at the same sweep point.",
	         (double)o->interval_ns / 1e6, o->cmd ? "at each cycle line" :
	         "as each load run exits; start: after --ready, before the first load");
	return t;
}

static const char *exit_text(const struct cmp_result *r, char *buf, size_t cap)
{
	if (r->status == CMP_STOPPED)
		snprintf(buf, cap, "stopped after --cycles");
	else if (r->status == CMP_SERVER_DIED)
		snprintf(buf, cap, "server ended early (%s %d)", WIFSIGNALED(r->wstatus) ? "signal" :
		         "status", WIFSIGNALED(r->wstatus) ? WTERMSIG(r->wstatus) : WEXITSTATUS(r->wstatus));
	else if (r->status == CMP_LOAD_FAILED)
		snprintf(buf, cap, "load failed (status %d)", WIFEXITED(r->load_wstatus) ?
		         WEXITSTATUS(r->load_wstatus) : 128 + WTERMSIG(r->load_wstatus));
	else if (WIFSIGNALED(r->wstatus))
		snprintf(buf, cap, "killed by signal %d", WTERMSIG(r->wstatus));
	else
		snprintf(buf, cap, "%d", WEXITSTATUS(r->wstatus));
	return buf;
}

static struct cmp_table *run_table(const struct cmp_opts *o, const struct cmp_result *res, size_t n)
{
	struct cmp_table *t = cmp_table_new("", 6);
	char dur[MT_FMT_LEN], lab[128], ex[96];
	if (!t)
		return NULL;
	cmp_table_col(t, 0, "run", 0);
	cmp_table_col(t, 1, "VmPeak MiB", 1);
	cmp_table_col(t, 2, "wall", 1);
	cmp_table_col(t, 3, "throughput/s", 1);
	cmp_table_col(t, 4, "vs base", 1);
	cmp_table_col(t, 5, "exit", 0);
	for (size_t i = 0; i < n; i++) {
		const struct cmp_result *r = &res[i], *base = baseline(res, n, r->point);
		if (!has_data(r))
			continue;
		size_t row = cmp_table_row(t);
		run_label(o, r, lab, sizeof(lab));
		cmp_table_set(t, row, 0, "%s", lab);
		cmp_table_set(t, row, 1, "%.0f", (double)r->vm_peak / MiB);
		cmp_table_set(t, row, 2, "%s", mt_fmt_duration(dur, r->wall_ns));
		if (r->n_throughput)
			cmp_table_set(t, row, 3, "%.0f", throughput(r));
		if (r->n_throughput && throughput(base) > 0)
			cmp_table_set(t, row, 4, "%+.0f%%", nz((throughput(r) / throughput(base) - 1) * 100, 1));
		cmp_table_set(t, row, 5, "%s", exit_text(r, ex, sizeof(ex)));
	}
	snprintf(t->note, sizeof(t->note), "VmPeak: the largest in the group; wall: %s; "
	         "throughput: the mean of the numbers matched by --throughput-pattern.",
	         o->cmd ? "the command's" : "the load runs' together");
	return t;
}

static struct cmp_table *record_table(const struct cmp_opts *o, const struct cmp_result *res,
                                      size_t n)
{
	struct cmp_table *t = cmp_table_new("Recorded runs (memtriage report TRACE for the evidence)", 3);
	char lab[128];
	if (!t)
		return NULL;
	cmp_table_col(t, 0, "run", 0);
	cmp_table_col(t, 1, "verdict", 0);
	cmp_table_col(t, 2, "trace", 0);
	for (size_t i = 0; i < n; i++) {
		if (!res[i].trace[0])
			continue;
		size_t row = cmp_table_row(t);
		run_label(o, &res[i], lab, sizeof(lab));
		cmp_table_set(t, row, 0, "%s", lab);
		cmp_table_set(t, row, 1, "%s", res[i].verdict[0] ? res[i].verdict : "no trace");
		cmp_table_set(t, row, 2, "%s", res[i].trace);
	}
	return t;
}

/* The run of configuration cfg at the point whose sweep values are (v0, v1). */
static const struct cmp_result *at(const struct cmp_opts *o, const struct cmp_result *res, size_t n,
                                   const struct cmp_config *cfg, size_t v0, size_t v1)
{
	size_t point = o->n_sweeps == 2 ? v0 * o->sweep[1].n + v1 : v0;
	for (size_t i = 0; i < n; i++)
		if (res[i].cfg == cfg && res[i].point == point)
			return has_data(&res[i]) ? &res[i] : NULL;
	return NULL;
}

/*
 * The seed's scaling table, one per configuration: a row per value of the
 * first sweep; per value of the second, the final RSS and its growth over
 * the first row; then last/first of the second sweep's values.
 */
static struct cmp_table *sweep_table(const struct cmp_opts *o, const struct cmp_result *res,
                                     size_t n, const struct cmp_config *cfg)
{
	const struct cmp_sweep *s0 = &o->sweep[0], *s1 = o->n_sweeps == 2 ? &o->sweep[1] : NULL;
	size_t groups = s1 ? s1->n : 1, ratio = s1 && s1->n >= 2;
	char title[128], name[96], b[32];
	snprintf(title, sizeof(title), "Scaling over %s under %s: final RSS (MiB), growth over the "
	         "first row", s0->name, cfg->name);
	struct cmp_table *t = cmp_table_new(title, 1 + 2 * groups + ratio);
	if (!t)
		return NULL;
	cmp_table_col(t, 0, s0->name, 0);
	for (size_t g = 0; g < groups; g++) {
		snprintf(name, sizeof(name), s1 ? "%s=%s" : "final", s1 ? s1->name : "",
		         s1 ? s1->value[g] : "");
		cmp_table_col(t, 1 + 2 * g, name, 1);
		cmp_table_col(t, 2 + 2 * g, "growth", 1);
	}
	if (ratio) {
		snprintf(name, sizeof(name), "%s/%s", s1->value[s1->n - 1], s1->value[0]);
		cmp_table_col(t, 1 + 2 * groups, name, 1);
	}
	for (size_t v = 0; v < s0->n; v++) {
		size_t row = cmp_table_row(t);
		cmp_table_set(t, row, 0, "%s", s0->value[v]);
		for (size_t g = 0; g < groups; g++) {
			const struct cmp_result *r = at(o, res, n, cfg, v, g), *first = at(o, res, n, cfg, 0, g);
			if (!r)
				continue;
			cmp_table_set(t, row, 1 + 2 * g, "%s", mib(b, final_rss(r)));
			if (first)
				cmp_table_set(t, row, 2 + 2 * g, "%+.0f%%",
				              nz(((double)final_rss(r) / (double)final_rss(first) - 1) * 100, 1));
		}
		const struct cmp_result *lo = ratio ? at(o, res, n, cfg, v, 0) : NULL;
		const struct cmp_result *hi = ratio ? at(o, res, n, cfg, v, s1->n - 1) : NULL;
		if (lo && hi)
			cmp_table_set(t, row, 1 + 2 * groups, "%.1fx",
			              (double)final_rss(hi) / (double)final_rss(lo));
	}
	return t;
}

/*
 * The rule: at the last sweep point (the heaviest, by convention), the
 * lowest final RSS among runs that ended as asked and whose throughput is
 * within THROUGHPUT_TOLERANCE of the baseline's (ignored when the
 * baseline reports none).
 */
static void recommend(const struct cmp_result *res, size_t n, size_t point, char *buf, size_t cap)
{
	const struct cmp_result *base = baseline(res, n, point), *best = NULL;
	if (!base) {
		snprintf(buf, cap, "none: no run has figures");
		return;
	}
	double bt = throughput(base);
	for (size_t i = 0; i < n; i++) {
		const struct cmp_result *r = &res[i];
		if (r->point != point || !has_data(r) || !run_ok(r))
			continue;
		if (bt > 0 && (!r->n_throughput || throughput(r) < bt * (1 - THROUGHPUT_TOLERANCE)))
			continue;
		if (!best || final_rss(r) < final_rss(best))
			best = r;
	}
	if (!best)
		snprintf(buf, cap, "none: no run ended as asked with throughput within %.0f%% of %s's",
		         THROUGHPUT_TOLERANCE * 100, base->cfg->name);
	else if (bt > 0)
		snprintf(buf, cap, "%s, %.0f MiB final (%.2fx %s): lowest final RSS at >= %.0f%% of %s's "
		         "throughput", best->cfg->name, (double)final_rss(best) / MiB,
		         (double)final_rss(best) / (double)final_rss(base), base->cfg->name,
		         (1 - THROUGHPUT_TOLERANCE) * 100, base->cfg->name);
	else
		snprintf(buf, cap, "%s, %.0f MiB final (%.2fx %s): lowest final RSS of the runs that "
		         "ended as asked", best->cfg->name, (double)final_rss(best) / MiB,
		         (double)final_rss(best) / (double)final_rss(base), base->cfg->name);
	/* the trade-off the throughput rule turned down, so that it is a choice, not a secret */
	const struct cmp_result *low = NULL;
	for (size_t i = 0; i < n; i++)
		if (res[i].point == point && has_data(&res[i]) && run_ok(&res[i]) &&
		    (!low || final_rss(&res[i]) < final_rss(low)))
			low = &res[i];
	size_t len = strlen(buf);
	if (best && low && low != best && final_rss(low) < final_rss(best) && len < cap)
		snprintf(buf + len, cap - len, "; lowest at any throughput: %s, %.2fx, throughput "
		         "%+.0f%%", low->cfg->name, (double)final_rss(low) / (double)final_rss(base),
		         bt > 0 && low->n_throughput ? (throughput(low) / bt - 1) * 100 : 0.0);
}

/* ---- JSON ------------------------------------------------------------------- */

static void json_runs(FILE *f, const struct cmp_opts *o, const struct cmp_result *res, size_t n)
{
	char why[128];
	static const char *const status[] = { "not_run", "missing", "ran", "cannot_start",
	                                      "server_died", "load_failed", "stopped" };
	fputs(",\"runs\":[", f);
	for (size_t i = 0; i < n; i++) {
		const struct cmp_result *r = &res[i];
		fprintf(f, "%s{\"config\":", i ? "," : "");
		cmp_json_str(f, r->cfg->name);
		fputs(",\"point\":{", f);
		for (size_t k = 0; k < o->n_sweeps; k++) {
			fputs(k ? "," : "", f);
			cmp_json_str(f, o->sweep[k].name);
			fputc(':', f);
			cmp_json_str(f, o->sweep[k].value[cmp_point_value(o, r->point, k)]);
		}
		fprintf(f, "},\"status\":\"%s\",\"ok\":%s", status[r->status], run_ok(r) ? "true" : "false");
		if (!has_data(r)) {
			fputs(",\"reason\":", f);
			cmp_json_str(f, why_not(r, why, sizeof(why)));
			fputc('}', f);
			continue;
		}
		fprintf(f, ",\"start_rss_bytes\":%llu,\"cycle_rss_bytes\":[",
		        (unsigned long long)r->initial);
		for (size_t k = 0; k < r->n_cycles; k++)
			fprintf(f, "%s%llu", k ? "," : "", (unsigned long long)r->cycle_rss[k]);
		fprintf(f, "],\"cycles\":%zu,\"final_rss_bytes\":%llu,\"vm_peak_bytes\":%llu,\"wall_ns\":%llu",
		        r->cycles_seen, (unsigned long long)final_rss(r), (unsigned long long)r->vm_peak,
		        (unsigned long long)r->wall_ns);
		if (r->n_throughput)
			fprintf(f, ",\"throughput\":%.3f", throughput(r));
		if (r->trace[0]) {
			fputs(",\"trace\":", f);
			cmp_json_str(f, r->trace);
			fputs(",\"verdict\":", f);
			cmp_json_str(f, r->verdict);
		}
		fputc('}', f);
	}
	fputc(']', f);
}

static void json_head(FILE *f, const struct cmp_opts *o)
{
	fputs("{\"schema\":\"memtriage-compare\",\"version\":1", f);
	if (o->cmd) {
		fputs(",\"command\":[", f);
		for (char **a = o->cmd; *a; a++) {
			fputs(a == o->cmd ? "" : ",", f);
			cmp_json_str(f, *a);
		}
		fputc(']', f);
	} else {
		fputs(",\"server\":", f);
		cmp_json_str(f, o->server);
		fputs(",\"load\":", f);
		cmp_json_str(f, o->load);
	}
	fprintf(f, ",\"cycles\":%u,\"interval_ns\":%llu,\"configs\":[", o->cycles,
	        (unsigned long long)o->interval_ns);
	for (size_t i = 0; i < o->n_run; i++) {
		fputs(i ? ",{\"name\":" : "{\"name\":", f);
		cmp_json_str(f, o->run[i]->name);
		fputs(",\"summary\":", f);
		cmp_json_str(f, o->run[i]->summary);
		fputs(",\"env\":{", f);
		for (size_t k = 0; k < o->run[i]->n_vars; k++) {
			fputs(k ? "," : "", f);
			cmp_json_str(f, o->run[i]->vars[k].name);
			fputc(':', f);
			cmp_json_str(f, o->run[i]->vars[k].value);
		}
		fputs("}}", f);
	}
	fputs("],\"sweeps\":[", f);
	for (size_t k = 0; k < o->n_sweeps; k++) {
		fputs(k ? ",{\"name\":" : "{\"name\":", f);
		cmp_json_str(f, o->sweep[k].name);
		fputs(",\"values\":[", f);
		for (size_t v = 0; v < o->sweep[k].n; v++) {
			fputs(v ? "," : "", f);
			cmp_json_str(f, o->sweep[k].value[v]);
		}
		fputs("]}", f);
	}
	fputc(']', f);
}

static int write_json(const struct cmp_opts *o, const struct cmp_result *res, size_t n,
                      struct cmp_table **tabs, size_t n_tabs, const char *rec)
{
	FILE *f = o->output_file;
	json_head(f, o);
	json_runs(f, o, res, n);
	fputs(",\"tables\":[", f);
	for (size_t i = 0, k = 0; i < n_tabs; i++)
		if (tabs[i]) {
			fputs(k++ ? "," : "", f);
			cmp_table_json(tabs[i], f);
		}
	fputs("],\"recommendation\":", f);
	cmp_json_str(f, rec);
	fputs("}\n", f);
	if (ferror(f) | fclose(f)) {
		mt_error("cannot write '%s': %s", o->output, strerror(errno));
		return MT_EXIT_FAIL;
	}
	return 0;
}

/* ---- the whole ------------------------------------------------------------------ */

static void print_head(FILE *out, const struct cmp_opts *o)
{
	char line[101];            /* the command, cut to fit 100 columns */
	int len;
	if (o->cmd) {
		len = snprintf(line, sizeof(line), "memtriage compare: %s", o->cmd[0]);
		for (char **a = o->cmd + 1; *a && len < (int)sizeof(line); a++)
			len += snprintf(line + len, sizeof(line) - (size_t)len, " %s", *a);
	} else {
		len = snprintf(line, sizeof(line), "memtriage compare: server %s", o->server);
	}
	if (len >= (int)sizeof(line))
		memcpy(line + sizeof(line) - 4, "...", 4);
	fprintf(out, "%s\n", line);
	if (!o->cmd) {
		len = snprintf(line, sizeof(line), "  load (%u runs): %s", o->cycles, o->load);
		if (len >= (int)sizeof(line))
			memcpy(line + sizeof(line) - 4, "...", 4);
		fprintf(out, "%s\n", line);
	}
	fputc('\n', out);
}

int cmp_results_write(const struct cmp_opts *o, struct cmp_result *res, size_t n, FILE *out)
{
	struct cmp_table *tabs[3 + CMP_CONFIGS_MAX] = { NULL };
	size_t n_tabs = 0;
	char rec[512];
	int any_trace = 0;

	for (size_t i = 0; i < n; i++)
		any_trace |= res[i].trace[0] != 0;
	tabs[n_tabs++] = rss_table(o, res, n);
	tabs[n_tabs++] = run_table(o, res, n);
	if (any_trace)
		tabs[n_tabs++] = record_table(o, res, n);
	for (size_t c = 0; o->n_sweeps && c < o->n_run; c++)
		tabs[n_tabs++] = sweep_table(o, res, n, o->run[c]);
	recommend(res, n, cmp_points(o) - 1, rec, sizeof(rec));

	print_head(out, o);
	for (size_t i = 0; i < n_tabs; i++)
		if (tabs[i] && tabs[i]->n_rows) {
			cmp_table_print(tabs[i], out);
			fputc('\n', out);
		}
	char line[640];
	snprintf(line, sizeof(line), "recommendation%s: %s", o->n_sweeps ? " (at the last sweep point)"
	         : "", rec);
	cmp_print_wrapped(out, line);
	int rc = o->output_file ? write_json(o, res, n, tabs, n_tabs, rec) : 0;
	for (size_t i = 0; i < n_tabs; i++)
		cmp_table_free(tabs[i]);
	return rc;
}
