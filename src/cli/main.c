/*
 * memtriage: the command table and the top-level options.
 */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "sim/sim.h"

static int cmd_help(int argc, char **argv);

static const struct mt_cmd commands[] = {
	{ "run",    mt_cmd_run,    "record every allocation of a command, then report on it" },
	{ "report", mt_cmd_report, "analyze a trace and print a report" },
	{ "sim",    mt_cmd_sim,    "run a built-in workload with known memory behaviour" },
	{ "watch",  mt_cmd_watch,  "sample a process's memory from /proc: growing, or a plateau?" },
	{ "guard",  mt_cmd_guard,  "run a command, restart it when its RSS passes a limit" },
	{ "compare", mt_cmd_compare, "run a command under several allocators, compare their RSS" },
	{ "help",   cmd_help,      "show the help of a command" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct mt_cmd *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: memtriage [--version] [--help] <command> [<options>] [<args>]\n\n"
	        "Is my program's memory growth a leak?  memtriage records every allocation\n"
	        "of a process and tells you where its memory went.\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nexamples:\n"
	        "  memtriage run -- ./server --port 8080     record, then print the report\n"
	        "  memtriage report memtriage.server.1234.trace\n\n"
	        "'memtriage help <command>' or 'memtriage <command> --help' describe a command.\n");
}

/* `memtriage help CMD` is `memtriage CMD --help`. */
static int cmd_help(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return MT_EXIT_OK;
	}
	if (argc > 2)
		return mt_usage_error("help", "too many arguments");
	const struct mt_cmd *c = find_command(argv[1]);
	if (!c)
		return mt_usage_error(NULL, "unknown command '%s'", argv[1]);
	char *sub[] = { (char *)c->name, "--help", NULL };
	return c->fn(2, sub);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return MT_EXIT_USAGE;
	}
	const char *arg = argv[1];
	if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
		usage(stdout);
		return MT_EXIT_OK;
	}
	if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
		printf("memtriage %s\n", MT_VERSION);
		return MT_EXIT_OK;
	}
	if (arg[0] == '-')
		return mt_usage_error(NULL, "unknown option '%s'", arg);
	const struct mt_cmd *c = find_command(arg);
	if (!c)
		return mt_usage_error(NULL, "unknown command '%s'", arg);
	return c->fn(argc - 1, argv + 1);
}
