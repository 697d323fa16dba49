/*
 * Finding memtriage's own preload libraries (the recorder, the periodic
 * trim library) the way `run` always has: $MEMTRIAGE_LIB, else next to
 * the memtriage executable, else in <exe dir>/../lib/memtriage/.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli/cli.h"

/* realpath of dir/rel when it is a readable file; NULL otherwise. */
static char *lib_at(const char *dir, const char *rel)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, rel) >= (int)sizeof(path))
		return NULL;
	if (access(path, R_OK))
		return NULL;
	return realpath(path, NULL);
}

/* MEMTRIAGE_LIB names the recorder's file, or a folder holding all the libraries. */
static char *from_env(const char *env, const char *name)
{
	struct stat st;
	if (stat(env, &st)) {
		mt_error("cannot use MEMTRIAGE_LIB '%s': %s", env, strerror(errno));
		return NULL;
	}
	char *p = NULL;
	if (S_ISDIR(st.st_mode)) {
		p = lib_at(env, name);
	} else {
		char copy[PATH_MAX];
		snprintf(copy, sizeof(copy), "%s", env);
		/* a file: the recorder itself, or a sibling of it */
		p = strcmp(name, MT_RECORDER_LIB) == 0 ? realpath(env, NULL) : lib_at(dirname(copy), name);
	}
	if (!p)
		mt_error("cannot use MEMTRIAGE_LIB '%s': no readable %s there", env, name);
	return p;
}

char *mt_find_lib(const char *name)
{
	const char *env = getenv("MEMTRIAGE_LIB");
	char exe[PATH_MAX], rel[PATH_MAX];

	if (env && *env)
		return from_env(env, name);
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		mt_error("cannot find %s: /proc/self/exe: %s; set MEMTRIAGE_LIB", name, strerror(errno));
		return NULL;
	}
	exe[n] = 0;
	char *dir = dirname(exe), *p;
	snprintf(rel, sizeof(rel), "../lib/memtriage/%s", name);
	if ((p = lib_at(dir, name)) || (p = lib_at(dir, rel))) {
		if (!strpbrk(p, " :\t\n"))
			return p;
		mt_error("cannot preload '%s': LD_PRELOAD cannot hold a path with spaces or colons; "
		         "set MEMTRIAGE_LIB to a copy elsewhere", p);
		free(p);
		return NULL;
	}
	mt_error("cannot find %s in '%s' or '%s/../lib/memtriage'; set MEMTRIAGE_LIB", name, dir, dir);
	return NULL;
}
