/*
 * `paraf status`: the agent's version, uptime and process, the tokens present, the state of its
 * token helper, and whether it takes PINs from clients (agent.status).
 */
#include "cli.h"

#include <inttypes.h>

static const char status_usage[] =
	"Usage: paraf status [--json]\n"
	"\n"
	"Shows the agent's version, process id and uptime, the tokens present, the state of its\n"
	"token helper process, and whether it accepts a PIN from clients (agent.status).\n"
	"\n"
	"  --json  print the agent's answer as JSON\n";

static void
uptime_format(int64_t s, char *buf, size_t n)
{
	if (s >= 86400)
		snprintf(buf, n, "%" PRId64 "d %02" PRId64 "h %02" PRId64 "m %02" PRId64 "s",
			s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
	else if (s >= 3600)
		snprintf(buf, n, "%" PRId64 "h %02" PRId64 "m %02" PRId64 "s", s / 3600,
			s / 60 % 60, s % 60);
	else if (s >= 60)
		snprintf(buf, n, "%" PRId64 "m %02" PRId64 "s", s / 60, s % 60);
	else
		snprintf(buf, n, "%" PRId64 "s", s);
}

static int
json_int(json_object *o, const char *key, int64_t *ret)
{
	json_object *v = cli_json_obj(o, key, json_type_int);

	if (!v)
		return -ENOENT;
	*ret = json_object_get_int64(v);
	return 0;
}

static int
status_print(json_object *res)
{
	_cleanup_free_ char *version = cli_sanitize(cli_json_str(res, "version"));
	json_object *tokens = cli_json_obj(res, "tokens", json_type_array);
	json_object *helper = cli_json_obj(res, "helper", json_type_object);
	json_object *pinp = cli_json_obj(res, "pin_parameter", json_type_boolean);
	json_object *running = cli_json_obj(helper, "running", json_type_boolean);
	int64_t uptime, pid, ntok, hpid, restarts;
	char up[64];
	size_t i;

	if (!version || json_int(res, "uptime_seconds", &uptime) < 0 ||
	    json_int(res, "pid", &pid) < 0 || json_int(res, "tokens_present", &ntok) < 0) {
		cli_error("the agent's answer to 'agent.status' lacks a field");
		return CLI_EXIT_AGENT;
	}
	uptime_format(uptime, up, sizeof(up));
	printf("agent:   parafd %s, pid %" PRId64 ", up %s\n", version, pid, up);
	printf("tokens:  %" PRId64 " present", ntok);
	for (i = 0; tokens && i < json_object_array_length(tokens); i++) {
		json_object *t = json_object_array_get_idx(tokens, i);
		_cleanup_free_ char *id = NULL;

		if (!json_object_is_type(t, json_type_string))
			continue;
		id = cli_sanitize(json_object_get_string(t));
		if (!id)
			return CLI_EXIT_LOCAL;
		printf("%s%s", i ? ", " : ": ", id);
	}
	putchar('\n');
	if (running) {
		if (json_object_get_boolean(running)) {
			printf("helper:  running");
			if (json_int(helper, "pid", &hpid) >= 0)
				printf(", pid %" PRId64, hpid);
		} else
			printf("helper:  not running");
		if (json_int(helper, "restarts", &restarts) >= 0)
			printf(", %" PRId64 " restart%s", restarts, restarts == 1 ? "" : "s");
		putchar('\n');
	}
	if (pinp)
		printf("PIN:     %s\n", json_object_get_boolean(pinp) ?
					       "accepted from clients (paraf sign asks for it)" :
					       "not accepted from clients (the agent asks for it)");
	return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
}

static int
status_run(struct cli_ctx *ctx, int argc, char **argv)
{
	_cleanup_(cli_conn_freep) struct cli_conn *conn = NULL;
	_cleanup_(json_object_putp) json_object *res = NULL;
	int r;

	r = cli_opts_none(ctx, &cli_cmd_status, argc, argv);
	if (r != CLI_OPT_CONTINUE)
		return r;
	r = cli_agent_connect(ctx, &conn);
	if (r != CLI_EXIT_OK)
		return r;
	r = cli_agent_call(conn, "agent.status", NULL, NULL, &res, NULL);
	if (r != CLI_EXIT_OK)
		return r;
	if (ctx->json)
		return cli_json_print(res) < 0 ? CLI_EXIT_LOCAL : CLI_EXIT_OK;
	return status_print(res);
}

const struct cli_cmd cli_cmd_status = {
	.name = "status",
	.summary = "agent version, uptime, tokens present, helper state",
	.usage = status_usage,
	.run = status_run,
};
