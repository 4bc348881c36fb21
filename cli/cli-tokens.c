/*
 * `paraf tokens`: the tokens present (tokens.list) as a table, with their PIN status so that an
 * official sees a low try count or a locked PIN before signing, not after.
 */
#include "cli.h"

static const char tokens_usage[] =
	"Usage: paraf tokens [--json]\n"
	"\n"
	"Lists the tokens present: id, label, serial, manufacturer, model and PIN status\n"
	"(ok, not initialized, count low, final try, locked, to be changed).\n"
	"\n"
	"  --json  print the agent's answer (tokens.list) as JSON\n";

static int
flag(json_object *ps, const char *key)
{
	json_object *v = cli_json_obj(ps, key, json_type_boolean);

	return v && json_object_get_boolean(v);
}

/* The PIN status flags in words, most urgent first. */
static void
pin_status_format(json_object *ps, char *buf, size_t n)
{
	static const struct {
		const char *key;
		int when;
		const char *text;
	} words[] = {
		{ "locked", 1, "locked" },
		{ "final_try", 1, "final try" },
		{ "count_low", 1, "count low" },
		{ "to_be_changed", 1, "to be changed" },
		{ "initialized", 0, "not initialized" },
	};
	size_t i, o = 0;

	buf[0] = 0;
	if (!ps) {
		snprintf(buf, n, "-");
		return;
	}
	for (i = 0; i < ARRAY_SIZE(words); i++) {
		json_object *v = cli_json_obj(ps, words[i].key, json_type_boolean);

		if (!v || flag(ps, words[i].key) != words[i].when)
			continue;
		o += (size_t)snprintf(buf + o, n - o, "%s%s", o ? ", " : "", words[i].text);
		if (o >= n)
			return;
	}
	if (o == 0)
		snprintf(buf, n, "ok");
}

static int
tokens_print(json_object *res)
{
	static const char *const headers[] = { "ID", "LABEL", "SERIAL", "MANUFACTURER", "MODEL",
		"PIN" };
	_cleanup_(cli_table_freep) struct cli_table *t = NULL;
	json_object *list = cli_json_obj(res, "tokens", json_type_array);
	size_t i, n;

	if (!list) {
		cli_error("the agent's answer to 'tokens.list' has no 'tokens' array");
		return CLI_EXIT_AGENT;
	}
	n = json_object_array_length(list);
	if (n == 0) {
		puts("no tokens present");
		return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
	}
	if (cli_table_new(ARRAY_SIZE(headers), headers, &t) < 0)
		return CLI_EXIT_LOCAL;
	for (i = 0; i < n; i++) {
		json_object *tok = json_object_array_get_idx(list, i);
		char pin[96];
		const char *cells[] = {
			cli_json_str(tok, "id"),
			cli_json_str(tok, "label"),
			cli_json_str(tok, "serial"),
			cli_json_str(tok, "manufacturer"),
			cli_json_str(tok, "model"),
			pin,
		};

		pin_status_format(cli_json_obj(tok, "pin_status", json_type_object), pin,
			sizeof(pin));
		if (cli_table_add(t, cells) < 0)
			return CLI_EXIT_LOCAL;
	}
	return cli_table_print(t, stdout) < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
}

static int
tokens_run(struct cli_ctx *ctx, int argc, char **argv)
{
	_cleanup_(cli_conn_freep) struct cli_conn *conn = NULL;
	_cleanup_(json_object_putp) json_object *res = NULL;
	int r;

	r = cli_opts_none(ctx, &cli_cmd_tokens, argc, argv);
	if (r != CLI_OPT_CONTINUE)
		return r;
	r = cli_agent_connect(ctx, &conn);
	if (r != CLI_EXIT_OK)
		return r;
	r = cli_agent_call(conn, "tokens.list", NULL, NULL, &res, NULL);
	if (r != CLI_EXIT_OK)
		return r;
	if (ctx->json)
		return cli_json_print(res) < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
	return tokens_print(res);
}

const struct cli_cmd cli_cmd_tokens = {
	.name = "tokens",
	.summary = "the tokens present: id, label, serial, manufacturer, model, PIN status",
	.usage = tokens_usage,
	.run = tokens_run,
};
