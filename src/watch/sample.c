/*
 * One sample of a process's memory, read from /proc and the cgroup files.
 *
 * The parsers take text and fill a struct, so they are tested on strings
 * (tests/e2e/watch/parse_test.c) and know nothing of files.  Each /proc
 * file is one "Key: value [kB]" per line; a table maps the keys we use to
 * fields, and unknown keys are skipped, which keeps old and new kernels
 * alike readable: a field a kernel lacks (RssAnon before 4.5,
 * smaps_rollup before 4.14) is simply absent from the sample.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "watch/watch.h"

const struct mt_watch_field_info mt_watch_fields[MT_WF_COUNT] = {
	[MT_WF_RSS]           = { "RSS (VmRSS)", 0 },
	[MT_WF_RSS_ANON]      = { "anonymous (RssAnon)", 0 },
	[MT_WF_RSS_FILE]      = { "file-backed (RssFile)", 0 },
	[MT_WF_RSS_SHMEM]     = { "shared memory (RssShmem)", 0 },
	[MT_WF_HWM]           = { "peak RSS (VmHWM)", 0 },
	[MT_WF_VM_PEAK]       = { "peak virtual (VmPeak)", 0 },
	[MT_WF_VM_SIZE]       = { "virtual (VmSize)", 0 },
	[MT_WF_SWAP]          = { "swapped out (VmSwap)", 0 },
	[MT_WF_THREADS]       = { "threads", 1 },
	[MT_WF_SM_RSS]        = { "smaps_rollup Rss", 0 },
	[MT_WF_SM_PSS]        = { "proportional (Pss)", 0 },
	[MT_WF_SM_ANON]       = { "smaps_rollup Anonymous", 0 },
	[MT_WF_SM_PRIV_DIRTY] = { "private dirty", 0 },
	[MT_WF_SM_SWAP]       = { "smaps_rollup Swap", 0 },
	[MT_WF_TASKS]         = { "tasks (/proc/PID/task)", 1 },
	[MT_WF_CG_CURRENT]    = { "cgroup memory (whole cgroup)", 0 },
	[MT_WF_CG_MAX]        = { "cgroup limit", 0 },
};

/* ---- parsing ------------------------------------------------------------- */

struct key {
	const char *name;     /* without the colon */
	enum mt_watch_field field;
};

static const struct key status_keys[] = {
	{ "VmRSS",    MT_WF_RSS },
	{ "RssAnon",  MT_WF_RSS_ANON },
	{ "RssFile",  MT_WF_RSS_FILE },
	{ "RssShmem", MT_WF_RSS_SHMEM },
	{ "VmHWM",    MT_WF_HWM },
	{ "VmPeak",   MT_WF_VM_PEAK },
	{ "VmSize",   MT_WF_VM_SIZE },
	{ "VmSwap",   MT_WF_SWAP },
	{ "Threads",  MT_WF_THREADS },
};

static const struct key smaps_keys[] = {
	{ "Rss",           MT_WF_SM_RSS },
	{ "Pss",           MT_WF_SM_PSS },
	{ "Anonymous",     MT_WF_SM_ANON },
	{ "Private_Dirty", MT_WF_SM_PRIV_DIRTY },
	{ "Swap",          MT_WF_SM_SWAP },
};

#define N_KEYS(t) (sizeof(t) / sizeof((t)[0]))

/* The table entry whose name is the len bytes at `name`, or NULL. */
static const struct key *find_key(const struct key *keys, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(keys[i].name) == len && memcmp(keys[i].name, name, len) == 0)
			return &keys[i];
	return NULL;
}

/*
 * Parses the value after a key's colon: a decimal, optionally followed by
 * "kB".  Returns 0 with *out in bytes (or the bare count), -EINVAL when
 * there is no number.
 */
static int parse_value(const char *p, uint64_t *out)
{
	char *end;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	if (errno)
		return -EINVAL;
	while (*end == ' ' || *end == '\t')
		end++;
	if (strncmp(end, "kB", 2) == 0)
		v *= 1024;
	*out = v;
	return 0;
}

/* Sets the fields of `keys` found in `text`; returns how many. */
static int parse_kv(const char *text, const struct key *keys, size_t n_keys,
                    struct mt_watch_sample *s)
{
	int found = 0;
	for (const char *line = text; line && *line; ) {
		const char *eol = strchr(line, '\n');
		const char *colon = memchr(line, ':', eol ? (size_t)(eol - line) : strlen(line));
		const struct key *k = colon ? find_key(keys, n_keys, line, (size_t)(colon - line)) : NULL;
		uint64_t v;
		if (k && parse_value(colon + 1, &v) == 0) {
			s->v[k->field] = v;
			s->have |= 1u << k->field;
			found++;
		}
		line = eol ? eol + 1 : NULL;
	}
	return found;
}

/* The letter of the "State:" line, or 0. */
static char parse_state(const char *text)
{
	const char *p = strstr(text, "\nState:");
	p = p ? p + 7 : strncmp(text, "State:", 6) == 0 ? text + 6 : NULL;
	if (!p)
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	return isalpha((unsigned char)*p) ? *p : 0;
}

int mt_watch_parse_status(const char *text, struct mt_watch_sample *s)
{
	s->state = parse_state(text);
	return parse_kv(text, status_keys, N_KEYS(status_keys), s);
}

int mt_watch_parse_smaps_rollup(const char *text, struct mt_watch_sample *s)
{
	/* the first line is the address range "...-... ---p ... [rollup]": no key */
	return parse_kv(text, smaps_keys, N_KEYS(smaps_keys), s);
}

/* Whether the comma-separated list of len bytes at `list` holds "memory". */
static int lists_memory(const char *list, size_t len)
{
	for (size_t i = 0; i < len; ) {
		size_t j = i;
		while (j < len && list[j] != ',')
			j++;
		if (j - i == 6 && memcmp(list + i, "memory", 6) == 0)
			return 1;
		i = j + 1;
	}
	return 0;
}

int mt_watch_parse_cgroup(const char *text, int want_version, char *path, size_t cap)
{
	for (const char *line = text; line && *line; ) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		const char *c1 = memchr(line, ':', len);
		const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
		if (c2) {
			int v2 = c1 - line == 1 && line[0] == '0' && c2 == c1 + 1;
			int match = want_version == 2 ? v2 : !v2 && lists_memory(c1 + 1, (size_t)(c2 - c1 - 1));
			if (match) {
				size_t plen = len - (size_t)(c2 + 1 - line);
				if (plen + 1 > cap)
					return -ENAMETOOLONG;
				memcpy(path, c2 + 1, plen);
				path[plen] = 0;
				return 0;
			}
		}
		line = eol ? eol + 1 : NULL;
	}
	return -ENOENT;
}

/* v1 reports "no limit" as PAGE_COUNTER_MAX pages in bytes, a little under 2^63. */
#define CG_NO_LIMIT_FROM (1ull << 62)

int mt_watch_parse_cg_value(const char *text, uint64_t *out)
{
	while (*text == ' ' || *text == '\t')
		text++;
	if (strncmp(text, "max", 3) == 0)
		return 0;
	if (!isdigit((unsigned char)*text))
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || (*end && *end != '\n' && *end != ' '))
		return -EINVAL;
	if (v >= CG_NO_LIMIT_FROM)
		return 0;
	*out = v;
	return 1;
}

size_t mt_watch_format_cmdline(const char *raw, size_t len, char *out, size_t cap)
{
	size_t o = 0;
	while (len && raw[len - 1] == 0)   /* the terminating NUL(s) */
		len--;
	for (size_t i = 0; i < len; i++) {
		if (o + 1 >= cap) {
			memcpy(out + cap - 4, "...", 4);
			return cap - 1;
		}
		unsigned char c = (unsigned char)raw[i];
		out[o++] = c == 0 ? ' ' : c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[o] = 0;
	return o;
}

/* ---- reading ----------------------------------------------------------- */

/*
 * Reads a whole /proc file from its start into buf (NUL-terminated, at
 * most cap - 1 bytes).  Returns the length, or -errno.
 */
static ssize_t read_at0(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	while (len + 1 < cap) {
		ssize_t r = pread(fd, buf + len, cap - 1 - len, (off_t)len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = 0;
	return (ssize_t)len;
}

/* Reads the file at `path` into buf; returns the length or -errno. */
static ssize_t read_path(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read_at0(fd, buf, cap);
	close(fd);
	return n;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Sets p->cg_* to the files of the process's memory cgroup when they can be
 * read: v2's memory.current under /sys/fs/cgroup, else v1's
 * memory.usage_in_bytes under /sys/fs/cgroup/memory.  Leaves cg_version 0
 * when neither is there (the root cgroup, a private mount namespace).
 */
static void find_cgroup(struct mt_watch_proc *p)
{
	static const struct {
		int version;
		const char *root, *current, *max;
	} layouts[] = {
		{ 2, "/sys/fs/cgroup", "memory.current", "memory.max" },
		{ 1, "/sys/fs/cgroup/memory", "memory.usage_in_bytes", "memory.limit_in_bytes" },
	};
	char text[4096], path[256], file[320];

	snprintf(file, sizeof(file), "/proc/%d/cgroup", (int)p->pid);
	if (read_path(file, text, sizeof(text)) <= 0)
		return;
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		if (mt_watch_parse_cgroup(text, layouts[i].version, path, sizeof(path)))
			continue;
		const char *rel = strcmp(path, "/") == 0 ? "" : path;
		if (snprintf(p->cg_current, sizeof(p->cg_current), "%s%s/%s", layouts[i].root, rel,
		             layouts[i].current) >= (int)sizeof(p->cg_current) ||
		    access(p->cg_current, R_OK))
			continue;
		snprintf(p->cg_max, sizeof(p->cg_max), "%s%s/%s", layouts[i].root, rel, layouts[i].max);
		p->cg_version = layouts[i].version;
		return;
	}
	p->cg_current[0] = p->cg_max[0] = 0;
}

int mt_watch_proc_open(struct mt_watch_proc *p, pid_t pid)
{
	char path[64], text[MT_WATCH_PROC_READ_MAX];
	struct mt_watch_sample s = { 0 };

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->status_fd = p->cmdline_fd = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	p->status_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (p->status_fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ssize_t n = read_at0(p->status_fd, text, sizeof(text));
	if (n < 0 || mt_watch_parse_status(text, &s) == 0) {
		mt_watch_proc_close(p);
		return n < 0 && n != -ESRCH ? (int)n : -ESRCH;
	}
	if (!mt_watch_has(&s, MT_WF_RSS)) {
		mt_watch_proc_close(p);
		return s.state == 'Z' || s.state == 'X' ? -ESRCH : -EINVAL;
	}
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	p->cmdline_fd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	p->task_dir = opendir(path);
	find_cgroup(p);
	return 0;
}

/* Adds smaps_rollup's figures, or notes once why they cannot be had. */
static void sample_smaps(struct mt_watch_proc *p, struct mt_watch_sample *s)
{
	char path[64], text[MT_WATCH_PROC_READ_MAX];
	if (p->smaps_errno)
		return;   /* missing (kernel < 4.14) or forbidden: it will not change */
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)p->pid);
	ssize_t n = read_path(path, text, sizeof(text));
	if (n < 0 && n != -ESRCH)
		p->smaps_errno = (int)-n;
	else if (n > 0)
		mt_watch_parse_smaps_rollup(text, s);
}

static void sample_tasks(struct mt_watch_proc *p, struct mt_watch_sample *s)
{
	uint64_t n = 0;
	struct dirent *d;
	if (!p->task_dir)
		return;
	rewinddir(p->task_dir);
	while ((d = readdir(p->task_dir)))
		n += d->d_name[0] != '.';
	if (n) {
		s->v[MT_WF_TASKS] = n;
		s->have |= 1u << MT_WF_TASKS;
	}
}

static void sample_cmdline(struct mt_watch_proc *p)
{
	char raw[MT_WATCH_CMDLINE_MAX * 4], line[MT_WATCH_CMDLINE_MAX];
	if (p->cmdline_fd < 0)
		return;
	ssize_t n = read_at0(p->cmdline_fd, raw, sizeof(raw));
	if (n > 0 && mt_watch_format_cmdline(raw, (size_t)n, line, sizeof(line)))
		memcpy(p->cmdline, line, sizeof(line));
}

/* Reads one cgroup file into field f when it holds a value. */
static void sample_cg_file(const char *path, enum mt_watch_field f, struct mt_watch_sample *s)
{
	char text[64];
	uint64_t v;
	if (path[0] && read_path(path, text, sizeof(text)) > 0 && mt_watch_parse_cg_value(text, &v) == 1) {
		s->v[f] = v;
		s->have |= 1u << f;
	}
}

int mt_watch_proc_sample(struct mt_watch_proc *p, struct mt_watch_sample *s)
{
	char text[MT_WATCH_PROC_READ_MAX];
	uint64_t now = now_ns();

	memset(s, 0, sizeof(*s));
	if (!p->t0_ns)
		p->t0_ns = now;
	s->t_ns = now - p->t0_ns;
	ssize_t n = read_at0(p->status_fd, text, sizeof(text));
	if (n < 0)
		return (int)n;
	mt_watch_parse_status(text, s);
	/* a zombie keeps its status file but has no memory left: it has exited */
	if (n == 0 || s->state == 'Z' || s->state == 'X' || !mt_watch_has(s, MT_WF_RSS))
		return -ESRCH;
	sample_smaps(p, s);
	sample_tasks(p, s);
	sample_cmdline(p);
	sample_cg_file(p->cg_current, MT_WF_CG_CURRENT, s);
	sample_cg_file(p->cg_max, MT_WF_CG_MAX, s);
	return 0;
}

void mt_watch_proc_close(struct mt_watch_proc *p)
{
	if (p->status_fd >= 0)
		close(p->status_fd);
	if (p->cmdline_fd >= 0)
		close(p->cmdline_fd);
	if (p->task_dir)
		closedir(p->task_dir);
	p->status_fd = p->cmdline_fd = -1;
	p->task_dir = NULL;
}
