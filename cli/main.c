/*
 * paraf: the command-line client of the paraf signing agent. main() parses the options that
 * come before the command and hands the rest to the command's own parser (cli-*.c).
 */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, CLI_OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	struct cli_ctx ctx = {};
	const struct cli_cmd *cmd;
	int c, r;

	r = cli_opts_exact(NULL, argc, argv, opts, 1);
	if (r != CLI_OPT_CONTINUE)
		return r;
	opterr = 0; /* the messages are ours, with the usage hint */
	/* "+": stop at the command, whose options are its own. */
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!*optarg)
				return cli_usage_error(NULL, "option '--socket' needs a path");
			ctx.socket_path = optarg;
			break;
		case CLI_OPT_JSON:
			ctx.json = 1;
			break;
		case 'h':
			cli_help_print(stdout);
			return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
		case 'V':
			cli_version_print(stdout);
			return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
		case ':':
			return cli_usage_error(NULL, "option '%s' needs an argument",
				argv[optind - 1]);
		default:
			return cli_opt_unknown(NULL, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error(NULL, "missing COMMAND");
	cmd = cli_cmd_find(argv[optind]);
	if (!cmd)
		return cli_usage_error(NULL, "unknown command '%s'", argv[optind]);
	argc -= optind;
	argv += optind;
	optind = 0; /* glibc: start afresh on the command's arguments */
	return cmd->run(&ctx, argc, argv);
}
