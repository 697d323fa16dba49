/*
 * The configurations `compare` runs: built-in ones, the user's --config,
 * and what each one sets in a run's environment.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "compare/compare.h"

/* Where Debian and most distributions put shared libraries. */
static const char *const lib_dirs[] = {
	"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
	"/usr/local/lib",
};

/*
 * arena2-trim's thresholds: 128 KiB, glibc's own default before its
 * dynamic mmap threshold raises it (mallopt(3), M_MMAP_THRESHOLD); fixing
 * them also turns that raise off.
 */
const struct cmp_config cmp_builtins[] = {
	{ .name = "glibc", .summary = "the environment unchanged: the baseline" },
	{ .name = "arena2", .vars = { { "MALLOC_ARENA_MAX", "2" } }, .n_vars = 1,
	  .summary = "MALLOC_ARENA_MAX=2" },
	{ .name = "arena2-trim", .n_vars = 3, .vars = {
		{ "MALLOC_ARENA_MAX", "2" }, { "MALLOC_TRIM_THRESHOLD_", "131072" },
		{ "MALLOC_MMAP_THRESHOLD_", "131072" } },
	  .summary = "MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=131072 MALLOC_MMAP_THRESHOLD_=131072" },
	{ .name = "trim", .kind = CMP_PRELOAD_OWN, .preload = MT_TRIM_LIB,
	  .summary = "malloc_trim(0) every --trim-interval from a preloaded thread" },
	{ .name = "jemalloc", .kind = CMP_PRELOAD_SYSTEM, .preload = "libjemalloc.so.2",
	  .package = "libjemalloc2", .summary = "LD_PRELOAD=libjemalloc.so.2" },
	{ .name = "mimalloc", .kind = CMP_PRELOAD_SYSTEM, .preload = "libmimalloc.so.2",
	  .package = "libmimalloc2.0", .summary = "LD_PRELOAD=libmimalloc.so.2" },
	{ .name = "tcmalloc", .kind = CMP_PRELOAD_SYSTEM, .preload = "libtcmalloc_minimal.so.4",
	  .package = "libtcmalloc-minimal4", .summary = "LD_PRELOAD=libtcmalloc_minimal.so.4" },
};
const size_t cmp_n_builtins = sizeof(cmp_builtins) / sizeof(cmp_builtins[0]);

/* A configuration's name: 1 to CMP_NAME_MAX letters, digits, '-', '_' or '.'. */
static int valid_name(const char *s, size_t len)
{
	if (len == 0 || len > CMP_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", s[i]))
			return 0;
	return 1;
}

const struct cmp_config *cmp_config_find(const struct cmp_opts *o, const char *name, size_t len)
{
	for (size_t i = 0; i < cmp_n_builtins; i++)
		if (strlen(cmp_builtins[i].name) == len && memcmp(cmp_builtins[i].name, name, len) == 0)
			return &cmp_builtins[i];
	for (size_t i = 0; i < o->n_user; i++)
		if (strlen(o->user[i].name) == len && memcmp(o->user[i].name, name, len) == 0)
			return &o->user[i];
	return NULL;
}

static int add_run(struct cmp_opts *o, const struct cmp_config *cfg)
{
	if (o->n_run == CMP_CONFIGS_MAX)
		return mt_usage_error("compare", "too many configurations: at most %d",
		                      CMP_CONFIGS_MAX);
	o->run[o->n_run++] = cfg;
	return 0;
}

/* Splits "VAR=VALUE,VAR=VALUE" in place into u->vars; a piece without '=' continues a value. */
static int parse_vars(struct cmp_config *u, char *p, const char *shown)
{
	char *first = p;
	for (;;) {
		char *comma = strchr(p, ',');
		char *eq = memchr(p, '=', comma ? (size_t)(comma - p) : strlen(p));
		if (eq) {
			if (eq == p || u->n_vars == CMP_VARS_MAX)
				return mt_usage_error("compare", "invalid --config '%s': expected "
				                      "NAME:VAR=VALUE,... with at most %d variables", shown,
				                      CMP_VARS_MAX);
			if (p > first)
				p[-1] = '\0';       /* ends the previous value */
			*eq = '\0';
			u->vars[u->n_vars++] = (struct cmp_env){ p, eq + 1 };
		} else if (!u->n_vars) {
			break;                  /* reported by the caller */
		}                           /* else: the previous value goes on, comma and all */
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}

int cmp_config_parse_user(struct cmp_opts *o, char *spec)
{
	char *colon = strchr(spec, ':');
	if (!colon || !valid_name(spec, (size_t)(colon - spec)))
		return mt_usage_error("compare", "invalid --config '%s': expected NAME:VAR=VALUE,... "
		                      "with a NAME of 1 to %d letters, digits, '-', '_' or '.'", spec,
		                      CMP_NAME_MAX);
	if (cmp_config_find(o, spec, (size_t)(colon - spec)))
		return mt_usage_error("compare", "configuration '%.*s' is already defined",
		                      (int)(colon - spec), spec);
	if (o->n_user == CMP_CONFIGS_MAX)
		return mt_usage_error("compare", "too many --config: at most %d", CMP_CONFIGS_MAX);
	struct cmp_config *u = &o->user[o->n_user];
	char shown[160];
	snprintf(shown, sizeof(shown), "%s", spec);   /* for messages: spec is cut below */
	memset(u, 0, sizeof(*u));
	memcpy(u->name, spec, (size_t)(colon - spec));
	u->summary = "--config";
	if (parse_vars(u, colon + 1, shown))
		return MT_EXIT_USAGE;
	if (!u->n_vars)
		return mt_usage_error("compare", "invalid --config '%s': expected NAME:VAR=VALUE,...",
		                      shown);
	o->n_user++;
	return add_run(o, u);
}

int cmp_config_parse_list(struct cmp_opts *o, const char *list)
{
	const struct cmp_config *user_runs[CMP_CONFIGS_MAX];
	size_t n_user_runs = o->n_run;
	memcpy(user_runs, o->run, n_user_runs * sizeof(user_runs[0]));
	o->n_run = 0;
	for (const char *p = list; ; ) {
		size_t len = strcspn(p, ",");
		const struct cmp_config *cfg = cmp_config_find(o, p, len);
		if (!cfg)
			return mt_usage_error("compare", "unknown configuration '%.*s' in --configs; "
			                      "known: glibc, arena2, arena2-trim, trim, jemalloc, mimalloc, "
			                      "tcmalloc, or a --config NAME", (int)len, p);
		int dup = 0;
		for (size_t i = 0; i < n_user_runs; i++)
			dup |= user_runs[i] == cfg;
		for (size_t i = 0; i < o->n_run; i++)
			dup |= o->run[i] == cfg;
		if (!dup && add_run(o, cfg))
			return MT_EXIT_USAGE;
		if (!p[len])
			break;
		p += len + 1;
	}
	for (size_t i = 0; i < n_user_runs; i++)
		if (add_run(o, user_runs[i]))
			return MT_EXIT_USAGE;
	return 0;
}

int cmp_config_locate(struct cmp_opts *o, struct cmp_result *r)
{
	const struct cmp_config *c = r->cfg;
	r->preload_path[0] = '\0';
	if (c->kind == CMP_PRELOAD_OWN) {
		if (!o->trim_lib && !(o->trim_lib = mt_find_lib(c->preload))) {
			r->status = CMP_MISSING;
			return -1;
		}
		snprintf(r->preload_path, sizeof(r->preload_path), "%s", o->trim_lib);
		return 0;
	}
	if (c->kind != CMP_PRELOAD_SYSTEM)
		return 0;
	for (size_t i = 0; i < sizeof(lib_dirs) / sizeof(lib_dirs[0]); i++) {
		snprintf(r->preload_path, sizeof(r->preload_path), "%s/%s", lib_dirs[i], c->preload);
		if (access(r->preload_path, R_OK) == 0)
			return 0;
	}
	r->preload_path[0] = '\0';
	r->status = CMP_MISSING;
	return -1;
}

void cmp_config_apply(const struct cmp_opts *o, const struct cmp_result *r, const char *trace,
                      int mark_fd)
{
	char ms[32], buf[4096];
	const char *prev = getenv("LD_PRELOAD");
	size_t len = 0;

	for (size_t i = 0; i < r->cfg->n_vars; i++)
		setenv(r->cfg->vars[i].name, r->cfg->vars[i].value, 1);
	if (r->cfg->kind == CMP_PRELOAD_OWN) {
		snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(o->trim_interval_ns / 1000000));
		setenv("MEMTRIAGE_TRIM_INTERVAL_MS", ms, 1);
	}
	buf[0] = '\0';
	/* the relay first: its memtriage_mark() passes on to the recorder's */
	if (mark_fd >= 0 && o->relay) {
		len += (size_t)snprintf(buf, sizeof(buf), "%s", o->relay);
		snprintf(ms, sizeof(ms), "%d", mark_fd);
		setenv("MEMTRIAGE_MARK_FD", ms, 1);
	}
	/* the recorder before the allocator, so that it sees the allocator preloaded after it */
	if (trace && o->recorder && len < sizeof(buf)) {
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", len ? " " : "", o->recorder);
		setenv("MEMTRIAGE_OUTPUT", trace, 1);
	}
	if (r->preload_path[0] && len < sizeof(buf))
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", len ? " " : "",
		                        r->preload_path);
	if (prev && *prev && len < sizeof(buf))
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", len ? " " : "", prev);
	if (len)
		setenv("LD_PRELOAD", buf, 1);
}
