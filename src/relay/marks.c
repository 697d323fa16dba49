/*
 * libmemtriage_marks.so: passes a program's markers (include/memtriage.h)
 * to `memtriage compare`, which preloads it into every run so that marks
 * can end cycles without recording.  memtriage_mark(label) writes
 * "label\n" to the pipe named by MEMTRIAGE_MARK_FD, then calls the next
 * definition (the recorder's, when the run is also recorded), as do the
 * request functions.  The constructor takes the fd and the variable for
 * this process alone (close-on-exec, unsetenv), so that programs it
 * starts see neither; forked children share the pipe, and their marks
 * count too.
 *
 * The pipe's write end is non-blocking: when compare falls behind and the
 * pipe is full (64 KiB of labels), a mark is dropped rather than the
 * program stopped.  Nothing here allocates; writes of up to PIPE_BUF
 * bytes are atomic (pipe(7)), so marks of several threads do not mix.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define LABEL_MAX 200   /* as MEMTRIAGE_LABEL_MAX: the rest of a longer label is cut */

static int mark_fd = -1;
static void (*next_mark)(const char *);
static void (*next_begin)(uint64_t, uint64_t);
static void (*next_end)(uint64_t);

__attribute__((constructor)) static void relay_init(void)
{
	const char *s = getenv("MEMTRIAGE_MARK_FD");
	char *end;
	if (s && *s) {
		long fd = strtol(s, &end, 10);
		if (!*end && fd >= 3 && fd < 65536 && fcntl((int)fd, F_GETFD) >= 0) {
			mark_fd = (int)fd;
			/* this process's marks only: programs it execs get neither the fd nor the name */
			fcntl(mark_fd, F_SETFD, FD_CLOEXEC);
		}
		unsetenv("MEMTRIAGE_MARK_FD");
	}
	next_mark = (void (*)(const char *))dlsym(RTLD_NEXT, "memtriage_mark");
	next_begin = (void (*)(uint64_t, uint64_t))dlsym(RTLD_NEXT, "memtriage_request_begin");
	next_end = (void (*)(uint64_t))dlsym(RTLD_NEXT, "memtriage_request_end");
}

EXPORT void memtriage_mark(const char *label)
{
	if (mark_fd >= 0 && label) {
		char buf[LABEL_MAX + 1];
		size_t n = strnlen(label, LABEL_MAX);
		int saved = errno;
		memcpy(buf, label, n);
		for (size_t i = 0; i < n; i++)
			if (buf[i] == '\n')
				buf[i] = ' ';      /* one mark, one line */
		buf[n] = '\n';
		(void)!write(mark_fd, buf, n + 1);
		errno = saved;
	}
	if (next_mark)
		next_mark(label);
}

EXPORT void memtriage_request_begin(uint64_t id, uint64_t payload_bytes)
{
	if (next_begin)
		next_begin(id, payload_bytes);
}

EXPORT void memtriage_request_end(uint64_t id)
{
	if (next_end)
		next_end(id);
}
