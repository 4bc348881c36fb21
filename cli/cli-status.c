/*
 * `paraf status`: the agent's version, uptime and process, the tokens present, the state of its
 * token helper, its policy directory (valid or why not, R13), how PINs are asked (the trusted
 * dialog; the types whose PIN clients may send, R2) and whether login sessions can be checked
 * (logind, R1) (agent.status).
 */
#include "cli.h"

#include <inttypes.h>

static const char status_usage[] =
	"Usage: paraf status [--json]\n"
	"\n"
	"Shows the agent's version, process id and uptime, the tokens present, the state of its\n"
	"token helper process, its policy directory (valid, or why not; test mode), how PINs\n"
	"are asked (the pinentry program of its trusted PIN dialog, and the certificate types\n"
	"whose PIN a client may send instead), and whether logind can tell it the caller's\n"
	"login session (agent.status).\n"
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
policy_print(json_object *res)
{
	json_object *pol = cli_json_obj(res, "policy", json_type_object);
	json_object *valid = cli_json_obj(pol, "valid", json_type_boolean);
	json_object *test = cli_json_obj(pol, "test_mode", json_type_boolean);
	_cleanup_free_ char *dir = cli_sanitize(cli_json_str(pol, "directory"));
	_cleanup_free_ char *err = cli_sanitize(cli_json_str(pol, "error"));
	int64_t owners, revoked;

	if (!pol || !valid)
		return 0;
	printf("policy:  %s: ", dir ? dir : "?");
	if (json_object_get_boolean(valid)) {
		printf("valid");
		if (json_int(pol, "owners", &owners) >= 0)
			printf(", %" PRId64 " registered certificate%s", owners,
				owners == 1 ? "" : "s");
		if (json_int(pol, "revoked", &revoked) >= 0)
			printf(", %" PRId64 " revoked", revoked);
		putchar('\n');
	} else {
		printf("INVALID, every signature is refused: %s\n", err ? err : "(no reason given)");
	}
	if (test && json_object_get_boolean(test))
		printf("         test mode: --policy given, files of the agent's own account are "
		       "accepted (R13 wants root's)\n");
	return 0;
}

static int
pin_print(json_object *res)
{
	json_object *types = cli_json_obj(res, "pin_parameter_types", json_type_array);
	_cleanup_free_ char *pinentry = cli_sanitize(cli_json_str(res, "pinentry"));
	size_t i, n = types ? json_object_array_length(types) : 0;

	if (!types && !pinentry)
		return 0;
	printf("PIN:     asked in the agent's PIN dialog");
	if (pinentry)
		printf(" (%s)", pinentry);
	if (n == 0) {
		printf("; no client may send it\n");
		return 0;
	}
	printf("; a client may send it for ");
	for (i = 0; i < n; i++) {
		json_object *t = json_object_array_get_idx(types, i);
		_cleanup_free_ char *s = NULL;

		if (!json_object_is_type(t, json_type_string))
			continue;
		s = cli_sanitize(json_object_get_string(t));
		if (!s)
			return -ENOMEM;
		printf("%s%s", i == 0 ? "" : i + 1 == n ? " and " : ", ", s);
	}
	printf(" certificates\n");
	return 0;
}

static int
status_print(json_object *res)
{
	_cleanup_free_ char *version = cli_sanitize(cli_json_str(res, "version"));
	json_object *tokens = cli_json_obj(res, "tokens", json_type_array);
	json_object *helper = cli_json_obj(res, "helper", json_type_object);
	json_object *logind = cli_json_obj(res, "logind", json_type_boolean);
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
	if (policy_print(res) < 0 || pin_print(res) < 0)
		return CLI_EXIT_LOCAL;
	if (logind)
		printf("logind:  %s\n", json_object_get_boolean(logind) ?
					       "present: login sessions are checked (R1)" :
					       "absent: login sessions cannot be checked; the policy's "
					       "without_logind decides (R1)");
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
	.summary = "agent version, tokens present, helper, policy, PIN dialog, logind",
	.usage = status_usage,
	.run = status_run,
};
