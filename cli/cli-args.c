/*
 * The command table, `paraf --help` and `--version`, and the option handling every command
 * shares (--json, --help, and the messages for unknown options and missing arguments), so that
 * each command's own getopt loop deals only with its own options.
 */
#include "cli.h"

#include <getopt.h>

#include "paraf-config.h"

static const struct cli_cmd *const cli_commands[] = {
	&cli_cmd_status,
	&cli_cmd_tokens,
	&cli_cmd_devices,
	&cli_cmd_certs,
	&cli_cmd_sign,
	&cli_cmd_sign_pdf,
	&cli_cmd_verify,
	&cli_cmd_admin,
	&cli_cmd_activate,
	&cli_cmd_renew,
	&cli_cmd_audit,
	&cli_cmd_expiry,
};

const struct cli_cmd *
cli_cmd_find(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cli_commands); i++)
		if (streq(cli_commands[i]->name, name))
			return cli_commands[i];
	return NULL;
}

void
cli_help_print(FILE *f)
{
	size_t i;

	fputs("Usage: paraf [--socket PATH] [--json] COMMAND [ARGS]\n"
	      "\n"
	      "Signs files with the key on your token through the paraf agent (parafd), which\n"
	      "asks for the PIN in its own trusted dialog, and verifies CMS signatures offline.\n"
	      "\n"
	      "Commands:\n",
		f);
	for (i = 0; i < ARRAY_SIZE(cli_commands); i++)
		fprintf(f, "  %-8s %s\n", cli_commands[i]->name, cli_commands[i]->summary);
	fputs("\n"
	      "Options:\n"
	      "  --socket PATH  the agent's socket; default $PARAF_SOCKET, else\n"
	      "                 $XDG_RUNTIME_DIR/paraf/agent.sock\n"
	      "  --json         print the result as JSON, for scripts (also after COMMAND)\n"
	      "  --help         this text; 'paraf COMMAND --help' describes a command\n"
	      "  --version      print the version\n"
	      "\n"
	      "Exit status:\n"
	      "  0  success (verify: every signature is VALID)\n"
	      "  1  verify: a signature is INVALID or INDETERMINATE\n"
	      "  2  usage error: bad option, missing or malformed argument; --pin-file for\n"
	      "     a certificate whose PIN is typed in the agent's PIN dialog\n"
	      "  3  cannot reach the agent: no socket, connection refused or broken\n"
	      "  4  the agent returned an error or refused by its policy (reason and rule\n"
	      "     are printed)\n"
	      "  5  local file error: cannot read an input or write an output\n"
	      "\n"
	      "Provisioning (admin, activate, renew): 2 also for an invalid registration field,\n"
	      "3 when the token helper cannot start or the token is not present, 4 when refused\n"
	      "by the rules (R-rule printed), the caller's rights, the token or the dialog.\n",
		f);
}

void
cli_version_print(FILE *f)
{
	fprintf(f, "paraf %s\n", PARAF_VERSION);
}

int
cli_opt_unknown(const struct cli_cmd *cmd, char **argv)
{
	const char *arg = argv[optind - 1];
	const char *prefix = cmd ? cmd->name : NULL;

	/* getopt_long() leaves optopt 0 for an unknown long option, the option's value for a
	 * known one given an argument it does not take, and the letter for a short one. */
	if (optopt && strncmp(arg, "--", 2) == 0 && strchr(arg, '='))
		return cli_usage_error(cmd, "%s%soption '%.*s' takes no argument",
			prefix ? prefix : "", prefix ? ": " : "", (int)(strchr(arg, '=') - arg),
			arg);
	if (optopt && strncmp(arg, "--", 2) != 0)
		return cli_usage_error(cmd, "%s%sunknown option '-%c'", prefix ? prefix : "",
			prefix ? ": " : "", optopt);
	return cli_usage_error(cmd, "%s%sunknown option '%s'", prefix ? prefix : "",
		prefix ? ": " : "", arg);
}

int
cli_opt_common(struct cli_ctx *ctx, const struct cli_cmd *cmd, int c, char **argv)
{
	switch (c) {
	case CLI_OPT_JSON:
		ctx->json = 1;
		return CLI_OPT_CONTINUE;
	case 'h':
		fputs(cmd->usage, stdout);
		return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
	case ':':
		return cli_usage_error(cmd, "%s: option '%s' needs an argument", cmd->name,
			argv[optind - 1]);
	case '?':
		return cli_opt_unknown(cmd, argv);
	default:
		return cli_usage_error(cmd, "%s: unexpected option", cmd->name);
	}
}

int
cli_opts_exact(const struct cli_cmd *cmd, int argc, char **argv, const struct option *opts,
	int stop_at_operand)
{
	const char *prefix = cmd ? cmd->name : "";
	const char *sep = cmd ? ": " : "";
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *eq;
		const struct option *o;
		size_t n;

		if (streq(a, "--"))
			break;
		if (strncmp(a, "--", 2) != 0) {
			if (stop_at_operand && (a[0] != '-' || streq(a, "-")))
				break;
			continue;
		}
		eq = strchr(a, '=');
		n = eq ? (size_t)(eq - a) - 2 : strlen(a) - 2;
		for (o = opts; o->name; o++)
			if (strlen(o->name) == n && strncmp(o->name, a + 2, n) == 0)
				break;
		if (!o->name)
			return cli_usage_error(cmd, "%s%sunknown option '%.*s'", prefix, sep,
				(int)n + 2, a);
		if (o->has_arg == required_argument && !eq)
			i++; /* its argument, whatever it looks like */
	}
	return CLI_OPT_CONTINUE;
}

int
cli_opts_none(struct cli_ctx *ctx, const struct cli_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = { CLI_COMMON_OPTIONS, {} };
	int c, r;

	r = cli_opts_exact(cmd, argc, argv, opts, 0);
	if (r != CLI_OPT_CONTINUE)
		return r;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		r = cli_opt_common(ctx, cmd, c, argv);
		if (r != CLI_OPT_CONTINUE)
			return r;
	}
	if (optind < argc)
		return cli_usage_error(cmd, "%s: unexpected argument '%s'", cmd->name, argv[optind]);
	return CLI_OPT_CONTINUE;
}
