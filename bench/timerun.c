/* timerun: run a command, report its wall time and the peak RSS of its process tree.
 *
 *   timerun RESULT_FILE TIMEOUT_S CMD [ARGS...]
 *
 * Writes one line to RESULT_FILE:  "<wall_s> <maxrss_kb> <status> <pid>"
 *   wall_s     CLOCK_MONOTONIC seconds from fork to reaping the child
 *   maxrss_kb  getrusage(RUSAGE_CHILDREN).ru_maxrss: the largest RSS of any process of the
 *              tree that was reaped (the command and the descendants it waited for); the same
 *              figure GNU time's %M gives, without needing the 'time' package
 *   status     exit code, 128+signal if killed by a signal, 124 if TIMEOUT_S expired
 *              (the command's process group then gets SIGTERM, and SIGKILL 2 s later)
 *   pid        the command's pid (= its process group)
 * Exit status: that of the command (same encoding).  TIMEOUT_S 0 means no limit.
 * The command runs in its own process group, so a timeout also ends what it started;
 * SIGINT/SIGTERM to timerun are forwarded to that group. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: timerun RESULT_FILE TIMEOUT_S CMD [ARGS...]\n");
		return 2;
	}
	const char *result = argv[1];
	double limit = atof(argv[2]);

	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &old);

	double t0 = now();
	pid_t pid = fork();
	if (pid < 0) {
		perror("timerun: fork");
		return 2;
	}
	if (pid == 0) {
		setpgid(0, 0);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[3], argv + 3);
		fprintf(stderr, "timerun: cannot run '%s': %s\n", argv[3], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);

	int status = 0, timed_out = 0, interrupted = 0;
	double kill_at = 0;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid) break;
		if (r < 0 && errno != EINTR) { perror("timerun: waitpid"); return 2; }
		double t = now(), wait_s = 1.0;
		if (limit > 0 && !timed_out && !interrupted) {
			if (t - t0 >= limit) {
				timed_out = 1;
				kill(-pid, SIGTERM);
				kill_at = t + 2.0;
				continue;
			}
			wait_s = t0 + limit - t;
		}
		if (kill_at > 0) {
			if (t >= kill_at) { kill(-pid, SIGKILL); kill_at = 0; continue; }
			wait_s = kill_at - t;
		}
		if (wait_s > 1.0) wait_s = 1.0;
		struct timespec ts = { (time_t)wait_s, (long)((wait_s - (double)(time_t)wait_s) * 1e9) };
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
			interrupted = sig;
			kill(-pid, sig);
			if (kill_at == 0) kill_at = now() + 2.0;
		}
	}
	double wall = now() - t0;
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);

	int code;
	if (timed_out) code = 124;
	else if (WIFEXITED(status)) code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status)) code = 128 + WTERMSIG(status);
	else code = 2;

	FILE *f = fopen(result, "w");
	if (!f) { perror(result); return 2; }
	fprintf(f, "%.4f %ld %d %d\n", wall, ru.ru_maxrss, code, (int)pid);
	fclose(f);
	if (interrupted) {
		signal(interrupted, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		raise(interrupted);
	}
	return code;
}
