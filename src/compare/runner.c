/*
 * One run of a comparison.
 *
 * Command mode: CMD runs under the configuration; a line of its stdout
 * that matches --cycle-pattern ends a cycle, and the RSS is read the
 * moment the line arrives (stdout is a pipe read in the same poll() as
 * the signals), not at the next tick.
 *
 * Server mode (the seed's setup): the server command runs under the
 * configuration; after --ready the load command, under the unchanged
 * environment, runs --cycles times one after the other, and the server's
 * RSS is read as each load run exits.  Then the server gets SIGTERM,
 * SIGKILL after --grace.
 *
 * Every command starts in a process group of its own with stdin from
 * /dev/null, and the measured RSS is its group's (group.c).  memtriage is
 * the children's subreaper (set by the caller), so a process a run leaves
 * behind is reparented to it; when a run ends its group is killed and
 * every child reaped: nothing outlives the run, zombies included.
 *
 * Signals are blocked by the caller and read from a signalfd: SIGCHLD
 * reaps, SIGINT/SIGTERM/SIGHUP stop the comparison.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli/cli.h"
#include "compare/compare.h"

#define NS_PER_MS  1000000ull
#define LINE_MAX_  4096                 /* a longer line is matched on its start */
#define PROGRESS_PERIOD_NS (200 * NS_PER_MS)
#define MiB        (1024.0 * 1024)

enum role { ROLE_MAIN, ROLE_LOAD };      /* main: CMD or the server, whose RSS is measured */

struct child {
	enum role role;
	pid_t pid;                           /* also its process group; 0 when none */
	int out_fd;                          /* its stdout; -1 at EOF */
	int reaped, wstatus;
	int ended;                           /* its group was ended: nothing of it is left */
	int mark_fd;                         /* the marks relay's pipe (main only); -1 when none */
	struct line_buf { char s[LINE_MAX_]; size_t len; int cont; } out, marks;
};

struct runner {
	struct cmp_opts *o;
	struct cmp_result *r;
	int sfd;
	const sigset_t *old;
	volatile int *stop_sig;
	size_t index, total;
	struct child main, load;
	uint64_t next_sample, progress_ns;
	int progress_shown;
	size_t cap_cycles;
	int want_stop;                       /* --cycles reached in command mode */
	enum { SRC_NONE, SRC_LINES, SRC_MARKS } source;  /* what ends cycles: the first seen, only */
	int saw_line;                        /* CMD printed a line */
};

/* ---- sweep points --------------------------------------------------------- */

size_t cmp_points(const struct cmp_opts *o)
{
	size_t n = 1;
	for (size_t k = 0; k < o->n_sweeps; k++)
		n *= o->sweep[k].n;
	return n;
}

/* The first sweep varies slowest: rows of the tables follow it. */
size_t cmp_point_value(const struct cmp_opts *o, size_t point, size_t k)
{
	for (size_t j = o->n_sweeps; j-- > k + 1; )
		point /= o->sweep[j].n;
	return point % o->sweep[k].n;
}

char *cmp_substitute(const struct cmp_opts *o, size_t point, const char *s)
{
	size_t cap = strlen(s) + 1, len = 0;
	char *out = malloc(cap);
	while (out && *s) {
		const char *val = NULL;
		size_t skip = 0;
		for (size_t k = 0; k < o->n_sweeps && *s == '{'; k++) {
			size_t nl = strlen(o->sweep[k].name);
			if (strncmp(s + 1, o->sweep[k].name, nl) == 0 && s[1 + nl] == '}') {
				val = o->sweep[k].value[cmp_point_value(o, point, k)];
				skip = nl + 2;
			}
		}
		size_t add = val ? strlen(val) : 1;
		if (len + add + 1 > cap) {
			char *n = realloc(out, cap = 2 * (len + add + 1));
			if (!n) {
				free(out);
				return NULL;
			}
			out = n;
		}
		memcpy(out + len, val ? val : s, add);
		len += add;
		s += val ? skip : 1;
	}
	if (out)
		out[len] = '\0';
	return out;
}

/* ---- starting a command ------------------------------------------------------ */

/*
 * In the child: own group, stdin /dev/null, stdout to the pipe, the
 * configuration when `r` is set, exec argv (or sh -c line).  The exec
 * errno goes through err_fd (close-on-exec).
 */
static void __attribute__((noreturn)) exec_child(struct runner *rn, char **argv, const char *line,
                                                 int out_fd, int err_fd, int mark_fd, int configure)
{
	setpgid(0, 0);
	sigprocmask(SIG_SETMASK, rn->old, NULL);
	int null_fd = open("/dev/null", O_RDONLY);
	if (null_fd >= 0)
		dup2(null_fd, STDIN_FILENO);
	dup2(out_fd, STDOUT_FILENO);
	/* the relay's pipe: inherited across exec (no FD_CLOEXEC), above the fds programs use */
	int relay_fd = mark_fd >= 0 ? fcntl(mark_fd, F_DUPFD, 200) : -1;
	if (relay_fd >= 0)
		fcntl(relay_fd, F_SETFL, O_NONBLOCK);
	if (configure)
		cmp_config_apply(rn->o, rn->r, rn->r->trace[0] ? rn->r->trace : NULL, relay_fd);
	if (line)
		execl("/bin/sh", "sh", "-c", line, (char *)NULL);
	else
		execvp(argv[0], argv);
	int e = errno;
	if (write(err_fd, &e, sizeof(e)) < 0)
		_exit(MT_EXIT_NOEXEC);
	_exit(MT_EXIT_NOEXEC);
}

/* Closes the pipes of start() that are open. */
static void close_pipes(int p[3][2])
{
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 2; k++)
			if (p[i][k] >= 0)
				close(p[i][k]);
}

/*
 * Starts a child: stdout into a pipe, and for the measured (main) one the
 * marks relay's pipe when it is configured.  Returns 0, or an errno
 * (exec's, fork's or pipe's).
 */
static int start(struct runner *rn, struct child *ch, enum role role, char **argv,
                 const char *line, int configure)
{
	int p[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };   /* stdout, exec errno, marks */
	int want_marks = role == ROLE_MAIN && rn->o->relay && rn->o->cmd;
	memset(ch, 0, sizeof(*ch));
	ch->role = role;
	ch->out_fd = ch->mark_fd = -1;
	if (pipe2(p[0], O_CLOEXEC) || pipe2(p[1], O_CLOEXEC) || (want_marks && pipe2(p[2], O_CLOEXEC))) {
		int e = errno;
		close_pipes(p);
		return e;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		exec_child(rn, argv, line, p[0][1], p[1][1], p[2][1], configure);
	int fork_errno = errno;
	int out = p[0][0], err = p[1][0], marks = p[2][0];
	p[0][0] = p[1][0] = p[2][0] = -1;
	close_pipes(p);             /* the write ends: the child has them */
	if (pid < 0) {
		close(out);
		close(err);
		if (marks >= 0)
			close(marks);
		return fork_errno;
	}
	setpgid(pid, pid);          /* both sides: whichever runs first */
	ch->pid = pid;
	ch->out_fd = out;
	ch->mark_fd = marks;
	fcntl(ch->out_fd, F_SETFL, O_NONBLOCK);
	if (marks >= 0)
		fcntl(marks, F_SETFL, O_NONBLOCK);
	return mt_exec_error(err);
}

/* ---- sampling and output ----------------------------------------------------- */

static void progress_clear(struct runner *rn)
{
	if (rn->progress_shown)
		fputs("\r\033[K", stderr);
	rn->progress_shown = 0;
}

static void progress_show(struct runner *rn)
{
	uint64_t now = mt_mono_ns();
	if (!rn->o->progress || (rn->progress_shown && now - rn->progress_ns < PROGRESS_PERIOD_NS))
		return;
	fprintf(stderr, "\rmemtriage: compare: %s (run %zu of %zu), cycle %zu, RSS %.0f MiB\033[K",
	        rn->r->cfg->name, rn->index + 1, rn->total, rn->r->n_cycles,
	        (double)rn->r->last_rss / MiB);
	fflush(stderr);
	rn->progress_shown = 1;
	rn->progress_ns = now;
}

/* Reads the measured group's memory into the result; 0, or -ESRCH once it is gone. */
static int sample(struct runner *rn)
{
	struct cmp_mem m;
	if (!rn->main.pid || cmp_group_mem(rn->main.pid, &m))
		return -ESRCH;
	struct cmp_result *r = rn->r;
	if (!r->have_sample)
		r->initial = m.rss;
	r->have_sample = 1;
	r->last_rss = m.rss;
	if (m.vm_peak > r->vm_peak)
		r->vm_peak = m.vm_peak;
	progress_show(rn);
	return 0;
}

/*
 * The end of a cycle: RSS now (the last sample when the group is gone).
 * The first CMP_CYCLES_MAX are kept; the count and the last go on.
 */
static void end_cycle(struct runner *rn)
{
	struct cmp_result *r = rn->r;
	sample(rn);
	if (r->n_cycles == rn->cap_cycles && rn->cap_cycles < CMP_CYCLES_MAX) {
		size_t cap = rn->cap_cycles ? 2 * rn->cap_cycles : 8;
		cap = cap > CMP_CYCLES_MAX ? CMP_CYCLES_MAX : cap;
		uint64_t *n = realloc(r->cycle_rss, cap * sizeof(*n));
		if (n) {
			r->cycle_rss = n;
			rn->cap_cycles = cap;
		}
	}
	if (r->n_cycles < rn->cap_cycles)
		r->cycle_rss[r->n_cycles++] = r->last_rss;
	r->cycles_seen++;
	r->last_cycle_rss = r->last_rss;
	if (rn->o->cmd && rn->o->cycles && r->cycles_seen >= rn->o->cycles)
		rn->want_stop = 1;
}

/* Lines or marks end cycles, whichever comes first: a program doing both counts once. */
static int cycle_source(struct runner *rn, int source)
{
	if (rn->source == SRC_NONE)
		rn->source = source;
	return (int)rn->source == source;
}

static void on_line(struct runner *rn, struct child *ch, const char *line)
{
	regmatch_t m[2];
	/* CMD's first line says it has started up: its RSS then is the start */
	if (ch->role == ROLE_MAIN && rn->o->cmd && !rn->saw_line && !rn->r->n_cycles) {
		int had = rn->r->have_sample;
		rn->saw_line = 1;
		rn->r->have_sample = 0;   /* sample() then takes this one as the start */
		if (sample(rn))           /* gone already (it changed nothing): the first stays */
			rn->r->have_sample = had;
	}
	if (ch->role == ROLE_MAIN && rn->o->cmd && regexec(&rn->o->cycle_re, line, 0, NULL, 0) == 0 &&
	    cycle_source(rn, SRC_LINES))
		end_cycle(rn);
	/* throughput: CMD's own lines, or the load's */
	if ((ch->role == ROLE_LOAD || rn->o->cmd) &&
	    regexec(&rn->o->tput_re, line, 2, m, 0) == 0 && m[1].rm_so >= 0) {
		char *end;
		double v = strtod(line + m[1].rm_so, &end);
		if (end != line + m[1].rm_so && isfinite(v) && v >= 0) {
			rn->r->throughput_sum += v;
			rn->r->n_throughput++;
		}
	}
}

/* A mark the program made (through the relay): one matching --cycle-mark ends a cycle. */
static void on_mark(struct runner *rn, struct child *ch, const char *label)
{
	if (regexec(&rn->o->mark_re, label, 0, NULL, 0) == 0 && cycle_source(rn, SRC_MARKS))
		end_cycle(rn);
}

/*
 * Takes what one of a child's pipes (*fd: its stdout, or the marks pipe)
 * has, a line at a time into fn; closes it at EOF.
 */
static void read_lines(struct runner *rn, struct child *ch, int *fd, struct line_buf *lb,
                       void (*fn)(struct runner *, struct child *, const char *))
{
	char buf[4096];
	ssize_t n;
	while ((n = read(*fd, buf, sizeof(buf))) > 0) {
		if (rn->o->verbose && fd == &ch->out_fd) {
			progress_clear(rn);
			fwrite(buf, 1, (size_t)n, stderr);
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n' && lb->len < LINE_MAX_ - 1) {
				lb->s[lb->len++] = buf[i];
				continue;
			}
			lb->s[lb->len] = '\0';
			if (!lb->cont)
				fn(rn, ch, lb->s);
			lb->cont = buf[i] != '\n';
			lb->len = 0;
		}
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		if (lb->len && !lb->cont) {   /* a last line without a newline */
			lb->s[lb->len] = '\0';
			fn(rn, ch, lb->s);
		}
		lb->len = 0;
		close(*fd);
		*fd = -1;
	}
}

static void read_output(struct runner *rn, struct child *ch)
{
	/* marks first: a program's mark usually comes before what it prints after it */
	if (ch->mark_fd >= 0)
		read_lines(rn, ch, &ch->mark_fd, &ch->marks, on_mark);
	if (ch->out_fd >= 0)
		read_lines(rn, ch, &ch->out_fd, &ch->out, on_line);
}

/* ---- children's ends ------------------------------------------------------------ */

/* Reaps every child that ended: ours get their status, orphans passed to us just go. */
static void reap(struct runner *rn)
{
	int st;
	pid_t p;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		struct child *ch = p == rn->main.pid ? &rn->main : p == rn->load.pid ? &rn->load : NULL;
		if (ch && !ch->reaped) {
			ch->reaped = 1;
			ch->wstatus = st;
		}
	}
}

/* Takes pending signals; returns 1 when one stops the comparison. */
static int read_signals(struct runner *rn)
{
	struct signalfd_siginfo si;
	while (read(rn->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (si.ssi_signo != SIGCHLD)
			*rn->stop_sig = (int)si.ssi_signo;
	reap(rn);          /* SIGCHLDs merge: look anyway */
	return *rn->stop_sig != 0;
}

/* Child done: reaped and its pipe drained (a grandchild holding the pipe does not count). */
static int done(const struct child *ch)
{
	return !ch->pid || ch->reaped;
}

/*
 * Polls the signals and the pipes and samples every interval until
 * `until` is done, or until `deadline` (mt_mono_ns; 0 = none).  Returns 0,
 * 1 when a stop signal came, 2 when the main child ended while waiting
 * for something else (server mode), 3 when --cycles was reached.
 */
static int pump(struct runner *rn, const struct child *until, uint64_t deadline)
{
	for (;;) {
		uint64_t now = mt_mono_ns();
		if (now >= rn->next_sample) {
			if (!rn->main.reaped)
				sample(rn);
			while (rn->next_sample <= now)
				rn->next_sample += rn->o->interval_ns;
		}
		if (until && done(until)) {
			/* what it printed before it ended still counts */
			for (struct child *c = &rn->main; c; c = c == &rn->main ? &rn->load : NULL)
				if ((c->out_fd >= 0 || c->mark_fd >= 0) && c->reaped)
					read_output(rn, c);
			return 0;
		}
		if (deadline && now >= deadline)
			return 0;
		if (until != &rn->main && rn->main.pid && rn->main.reaped)
			return 2;
		if (rn->want_stop)
			return 3;
		struct pollfd pf[5] = { { rn->sfd, POLLIN, 0 } };
		struct child *who[5] = { NULL };
		nfds_t n = 1;
		for (struct child *c = &rn->main; c; c = c == &rn->main ? &rn->load : NULL)
			for (int k = 0; k < 2; k++) {
				int fd = k ? c->mark_fd : c->out_fd;
				if (c->pid && fd >= 0) {
					pf[n] = (struct pollfd){ fd, POLLIN, 0 };
					who[n++] = c;
				}
			}
		uint64_t wake = rn->next_sample;
		if (deadline && deadline < wake)
			wake = deadline;
		int timeout = (int)((wake > now ? wake - now : 0) / NS_PER_MS) + 1;
		if (poll(pf, n, timeout) < 0 && errno != EINTR)
			return 1;
		/* output first: a cycle line's RSS is read before a SIGCHLD is looked at */
		for (nfds_t i = 1; i < n; i++)
			if (pf[i].revents)
				read_output(rn, who[i]);
		if (read_signals(rn))
			return 1;
	}
}

/*
 * Ends a child's process group: `sig`, then SIGKILL after the grace (0:
 * at once), then reaps until no process of the group is left.
 */
static void end_group(struct runner *rn, struct child *ch, int sig, uint64_t grace_ns)
{
	if (!ch->pid || ch->ended)
		return;
	if (sig && grace_ns && cmp_group_count(ch->pid)) {
		uint64_t deadline = mt_mono_ns() + grace_ns;
		kill(-ch->pid, sig);
		while (mt_mono_ns() < deadline && cmp_group_count(ch->pid)) {
			struct pollfd pf = { rn->sfd, POLLIN, 0 };
			poll(&pf, 1, 20);
			read_signals(rn);
		}
	}
	if (cmp_group_count(ch->pid))
		kill(-ch->pid, SIGKILL);
	for (int i = 0; i < 500 && cmp_group_count(ch->pid); i++) {
		struct pollfd pf = { rn->sfd, POLLIN, 0 };
		poll(&pf, 1, 10);
		reap(rn);
	}
	if (!ch->reaped && waitpid(ch->pid, &ch->wstatus, 0) == ch->pid)
		ch->reaped = 1;
	if (ch->out_fd >= 0) {
		close(ch->out_fd);
		ch->out_fd = -1;
	}
	if (ch->mark_fd >= 0) {
		close(ch->mark_fd);
		ch->mark_fd = -1;
	}
	ch->ended = 1;
}

/*
 * Processes that left the run's group (setsid, a double fork into a new
 * group) were reparented to memtriage, the subreaper, when their parent
 * ended: kill and reap them too, until none is left (theirs come next).
 */
static void reap_adopted(struct runner *rn)
{
	for (int round = 0; round < 100; round++) {
		unsigned n = cmp_children_kill(getpid());
		reap(rn);
		if (!n)
			return;
		struct pollfd pf = { rn->sfd, POLLIN, 0 };
		poll(&pf, 1, 10);
		reap(rn);
	}
}

/* ---- the two modes ------------------------------------------------------------- */

static int run_command(struct runner *rn, size_t point)
{
	struct cmp_opts *o = rn->o;
	struct cmp_result *r = rn->r;
	size_t argc = 0;
	while (o->cmd[argc])
		argc++;
	char **argv = calloc(argc + 1, sizeof(*argv));
	int rc = argv ? 0 : ENOMEM;
	for (size_t i = 0; i < argc && !rc; i++)
		if (!(argv[i] = cmp_substitute(o, point, o->cmd[i])))
			rc = ENOMEM;
	uint64_t t0 = mt_mono_ns();
	if (!rc)
		rc = start(rn, &rn->main, ROLE_MAIN, argv, NULL, 1);
	for (size_t i = 0; argv && i < argc; i++)
		free(argv[i]);
	free(argv);
	if (rc) {
		r->status = CMP_NOEXEC;
		r->exec_errno = rc;
		end_group(rn, &rn->main, 0, 0);
		return 0;
	}
	r->status = CMP_RAN;
	rn->next_sample = mt_mono_ns();
	int why = pump(rn, &rn->main, 0);
	r->wall_ns = mt_mono_ns() - t0;
	if (why == 3)
		r->status = CMP_STOPPED;
	/* stragglers the command left in its group end with it */
	end_group(rn, &rn->main, why == 1 ? SIGINT : SIGTERM, why == 0 ? 0 : o->grace_ns);
	r->wstatus = rn->main.wstatus;
	return why == 1;
}

/* Runs the load once; 0, 1 on a stop signal, 2 when the server died, 4 when the load failed. */
static int run_load(struct runner *rn, const char *load)
{
	int rc = start(rn, &rn->load, ROLE_LOAD, NULL, load, 0);
	if (rc) {
		rn->r->exec_errno = rc;
		end_group(rn, &rn->load, 0, 0);
		return 4;
	}
	int why = pump(rn, &rn->load, 0);
	end_group(rn, &rn->load, SIGTERM, why ? rn->o->grace_ns : 0);
	rn->r->load_wstatus = rn->load.wstatus;
	if (why)
		return why;
	if (!WIFEXITED(rn->load.wstatus) || WEXITSTATUS(rn->load.wstatus) != 0)
		return 4;
	end_cycle(rn);
	return 0;
}

static int run_server(struct runner *rn, size_t point)
{
	struct cmp_opts *o = rn->o;
	struct cmp_result *r = rn->r;
	char *server = cmp_substitute(o, point, o->server), *load = cmp_substitute(o, point, o->load);
	int rc = server && load ? start(rn, &rn->main, ROLE_MAIN, NULL, server, 1) : ENOMEM;
	int why = 0;
	if (rc) {
		r->status = CMP_NOEXEC;
		r->exec_errno = rc;
		goto out;
	}
	r->status = CMP_RAN;
	rn->next_sample = mt_mono_ns();
	why = pump(rn, NULL, mt_mono_ns() + o->ready_ns);
	if (!why && rn->main.reaped)
		why = 2;
	r->have_sample = 0;             /* initial: the server ready, before any load */
	uint64_t t0 = mt_mono_ns();
	if (!why)
		sample(rn);
	for (unsigned k = 0; k < o->cycles && !why; k++)
		why = run_load(rn, load);
	r->wall_ns = mt_mono_ns() - t0;
	if (why == 2)
		r->status = CMP_SERVER_DIED;
	else if (why == 4)
		r->status = CMP_LOAD_FAILED;
out:
	end_group(rn, &rn->load, SIGTERM, o->grace_ns);
	if (!rn->main.reaped) {
		sample(rn);
		end_group(rn, &rn->main, why == 1 ? SIGINT : SIGTERM, o->grace_ns);
		/* stopped by us after its work: a server's exit by SIGTERM is its normal end */
		r->wstatus = WIFSIGNALED(rn->main.wstatus) && WTERMSIG(rn->main.wstatus) == SIGTERM
		             ? 0 : rn->main.wstatus;
	} else {
		end_group(rn, &rn->main, 0, 0);
		r->wstatus = rn->main.wstatus;
	}
	free(server);
	free(load);
	return why == 1;
}

int cmp_run(struct cmp_opts *o, struct cmp_result *r, int sfd, const sigset_t *old,
            size_t index, size_t total, volatile int *stop_sig)
{
	struct runner rn = { .o = o, .r = r, .sfd = sfd, .old = old, .stop_sig = stop_sig,
	                     .index = index, .total = total };
	int stopped = o->cmd ? run_command(&rn, r->point) : run_server(&rn, r->point);
	reap_adopted(&rn);
	progress_clear(&rn);
	/* a stop signal may also have come while the run was being ended */
	if (stopped || *stop_sig) {
		mt_error("interrupted: stopped the '%s' run (process group %ld)", r->cfg->name,
		         (long)rn.main.pid);
		return 128 + *stop_sig;
	}
	return 0;
}
