/*
 * The client side of the parafd socket protocol (doc/protocol.md): connect to the Unix stream
 * socket, write one JSON-RPC 2.0 request line, read one response line and match its id. A PIN
 * never passes through json-c: the request that carries one is assembled in a wiping pf_buf
 * and the PIN is escaped there (R2), so no unwiped copy is left in freed heap memory.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

#define CONN_READ_CHUNK (64u * 1024)

struct cli_conn {
	int fd;
	int64_t next_id;
	char *buf; /* bytes received and not yet consumed */
	size_t len;
	size_t cap;
};

void
cli_rpc_error_release(struct cli_rpc_error *e)
{
	free(e->message);
	free(e->reason);
	free(e->rule);
	free(e->field);
	json_object_put(e->data);
	memset(e, 0, sizeof(*e));
}

int
cli_socket_path(const struct cli_ctx *ctx, char **ret)
{
	const char *e;
	char *p;

	if (ctx->socket_path)
		p = strdup(ctx->socket_path);
	else if ((e = getenv("PARAF_SOCKET")) && *e)
		p = strdup(e);
	else if ((e = getenv("XDG_RUNTIME_DIR")) && *e) {
		if (asprintf(&p, "%s/paraf/agent.sock", e) < 0)
			p = NULL;
	} else
		return -ENXIO;
	if (!p)
		return -ENOMEM;
	*ret = p;
	return 0;
}

int
cli_conn_open(const char *path, struct cli_conn **ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	struct cli_conn *c;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return pf_negerrno();
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		if (errno != EINTR)
			return pf_negerrno();
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = TAKE_FD(fd);
	c->next_id = 1;
	*ret = c;
	return 0;
}

struct cli_conn *
cli_conn_free(struct cli_conn *c)
{
	if (!c)
		return NULL;
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c);
	return NULL;
}

void
cli_json_escape(struct pf_buf *b, const char *s, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	size_t i, start = 0;

	pf_buf_put(b, "\"", 1);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		char esc[6];
		size_t k;

		if (ch >= 0x20 && ch != '"' && ch != '\\' && ch != 0x7f)
			continue;
		pf_buf_put(b, s + start, i - start);
		start = i + 1;
		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			k = 2;
		} else {
			memcpy(esc, "\\u00", 4);
			esc[4] = hx[ch >> 4];
			esc[5] = hx[ch & 15];
			k = 6;
		}
		pf_buf_put(b, esc, k);
		explicit_bzero(esc, sizeof(esc));
	}
	pf_buf_put(b, s + start, n - start);
	pf_buf_put(b, "\"", 1);
}

/* The request line, newline included, into b (which wipes when a PIN goes in). */
static int
rpc_request_build(struct pf_buf *b, int64_t id, const char *method, json_object *params,
	const struct pf_secret *pin)
{
	const char *ps = NULL;
	char idbuf[32];
	size_t pn = 0;

	if (params) {
		if (!json_object_is_type(params, json_type_object))
			return -EINVAL;
		/* The PIN goes in only here: a "pin" key in params would be a second copy. */
		if (pin && json_object_object_get_ex(params, "pin", NULL))
			return -EINVAL;
		ps = json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN |
								    JSON_C_TO_STRING_NOSLASHESCAPE);
		if (!ps)
			return -ENOMEM;
		pn = strlen(ps);
		if (pn < 2 || ps[0] != '{' || ps[pn - 1] != '}')
			return -EINVAL;
	}
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
	pf_buf_put(b, "{\"jsonrpc\":\"2.0\",\"id\":", 22);
	pf_buf_put(b, idbuf, strlen(idbuf));
	pf_buf_put(b, ",\"method\":", 10);
	cli_json_escape(b, method, strlen(method));
	if (ps || pin) {
		int empty = !ps || streq(ps, "{}");

		pf_buf_put(b, ",\"params\":", 10);
		if (ps)
			pf_buf_put(b, ps, pn - 1); /* without its closing brace */
		else
			pf_buf_put(b, "{", 1);
		if (pin) {
			if (!empty)
				pf_buf_put(b, ",", 1);
			pf_buf_put(b, "\"pin\":", 6);
			cli_json_escape(b, pin->data, pin->len);
		}
		pf_buf_put(b, "}", 1);
	}
	pf_buf_put(b, "}\n", 2);
	return pf_buf_status(b);
}

static int
conn_send(struct cli_conn *c, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return pf_negerrno();
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* The next line (without its newline, NUL-terminated in place); consume it with line_len + 1. */
static int
conn_read_line(struct cli_conn *c, char **ret_line, size_t *ret_len)
{
	size_t scanned = 0;

	for (;;) {
		char *nl = NULL;
		ssize_t k;

		if (c->len > scanned)
			nl = memchr(c->buf + scanned, '\n', c->len - scanned);
		if (nl) {
			if ((size_t)(nl - c->buf) > CLI_RESPONSE_MAX)
				return -EMSGSIZE;
			*nl = 0;
			*ret_line = c->buf;
			*ret_len = (size_t)(nl - c->buf);
			return 0;
		}
		scanned = c->len;
		if (c->len > CLI_RESPONSE_MAX)
			return -EMSGSIZE;
		if (c->cap - c->len < CONN_READ_CHUNK) {
			size_t cap = c->cap ? c->cap * 2 : CONN_READ_CHUNK * 2;
			char *d;

			if (cap < c->len + CONN_READ_CHUNK)
				cap = c->len + CONN_READ_CHUNK;
			d = realloc(c->buf, cap);
			if (!d)
				return -ENOMEM;
			c->buf = d;
			c->cap = cap;
		}
		k = read(c->fd, c->buf + c->len, CONN_READ_CHUNK);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return pf_negerrno();
		}
		if (k == 0)
			return -ECONNRESET;
		c->len += (size_t)k;
	}
}

static void
conn_consume(struct cli_conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

static char *
json_strdup(json_object *o, const char *key)
{
	const char *s = cli_json_str(o, key);

	return s ? strdup(s) : NULL;
}

static int
rpc_error_parse(json_object *err, struct cli_rpc_error *ret)
{
	json_object *code = cli_json_obj(err, "code", json_type_int);
	json_object *data = cli_json_obj(err, "data", json_type_object);
	const char *msg = cli_json_str(err, "message");
	struct cli_rpc_error e = {};

	if (!code || !msg)
		return -EPROTO;
	e.code = (int)json_object_get_int64(code);
	e.message = strdup(msg);
	if (!e.message)
		return -ENOMEM;
	if (data) {
		e.reason = json_strdup(data, "reason");
		e.rule = json_strdup(data, "rule");
		e.field = json_strdup(data, "field");
		e.data = json_object_get(data);
	}
	*ret = e;
	return 0;
}

/* Checks one response line against the request id; the result or error goes out. */
static int
rpc_response_parse(const char *line, size_t len, int64_t id, json_object **ret_result,
	struct cli_rpc_error *ret_error)
{
	json_tokener *tok;
	json_object *resp, *rid, *result, *err;
	const char *ver;
	int r, has_result, has_error;

	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	resp = json_tokener_parse_ex(tok, line, (int)len);
	if (!resp || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		json_tokener_free(tok);
		json_object_put(resp);
		return -EPROTO;
	}
	json_tokener_free(tok);

	r = -EPROTO;
	if (!json_object_is_type(resp, json_type_object))
		goto out;
	ver = cli_json_str(resp, "jsonrpc");
	if (!ver || !streq(ver, "2.0"))
		goto out;
	has_result = json_object_object_get_ex(resp, "result", &result);
	has_error = json_object_object_get_ex(resp, "error", &err);
	if (has_result == has_error || !json_object_object_get_ex(resp, "id", &rid))
		goto out;
	if (json_object_is_type(rid, json_type_int)) {
		if (json_object_get_int64(rid) != id)
			goto out;
	} else if (!(rid == NULL && has_error)) {
		/* id null: an error the agent could not tie to a request (too-many-clients). */
		goto out;
	}
	if (has_error) {
		if (!json_object_is_type(err, json_type_object))
			goto out;
		r = rpc_error_parse(err, ret_error);
		if (r >= 0)
			r = -EREMOTEIO;
		goto out;
	}
	*ret_result = json_object_get(result);
	r = 0;
out:
	json_object_put(resp);
	return r;
}

int
cli_rpc_call(struct cli_conn *c, const char *method, json_object *params,
	const struct pf_secret *pin, json_object **ret_result, struct cli_rpc_error *ret_error)
{
	struct pf_buf req;
	char *line;
	size_t len;
	int64_t id = c->next_id++;
	int r, rsend = 0;

	pf_buf_init(&req);
	req.wipe = pin != NULL;
	r = rpc_request_build(&req, id, method, params, pin);
	if (r >= 0)
		rsend = conn_send(c, req.data, req.len);
	pf_buf_release(&req); /* the PIN's last copy on this side, wiped before we wait */
	if (r < 0)
		return r;
	/*
	 * When sending failed the agent may still have said why before closing (too-many-clients):
	 * that answer is more useful than EPIPE.
	 */
	r = conn_read_line(c, &line, &len);
	if (r < 0)
		return rsend < 0 ? rsend : r;
	r = rpc_response_parse(line, len, id, ret_result, ret_error);
	conn_consume(c, len + 1);
	return r;
}

static int
json_flag(json_object *o, const char *key)
{
	json_object *v = cli_json_obj(o, key, json_type_boolean);

	return v && json_object_get_boolean(v);
}

void
cli_rpc_error_print(const char *what, const struct cli_rpc_error *e)
{
	_cleanup_free_ char *msg = cli_sanitize(e->message);
	_cleanup_free_ char *reason = cli_sanitize(e->reason);
	_cleanup_free_ char *field = cli_sanitize(e->field);
	_cleanup_free_ char *rule = cli_sanitize(e->rule);
	json_object *ps = cli_json_obj(e->data, "pin_status", json_type_object);
	char code[32];

	snprintf(code, sizeof(code), "error %d", e->code);
	fflush(stdout);
	fprintf(stderr, "paraf: %s: %s (%s", what, reason ? reason : code, msg ? msg : "");
	if (field)
		fprintf(stderr, "; field '%s'", field);
	if (rule)
		fprintf(stderr, "; rule %s", rule);
	fputs(")\n", stderr);

	if (ps) {
		if (json_flag(ps, "locked"))
			cli_error("the token's PIN is now locked: security staff must unblock it");
		else if (json_flag(ps, "final_try"))
			cli_warn("one PIN try left: a further wrong PIN locks the token");
		else if (json_flag(ps, "count_low"))
			cli_warn("few PIN tries left");
	}
}

/* The refusals of the agent's policy (doc/protocol.md): each decided by a rule of the
 * regulation, so the official reads the decision itself, with the reason and the rule. */
static const char *const policy_reasons[] = {
	"pin-parameter-refused",    /* R2 */
	"unregistered",             /* R1, R5 */
	"not-owner",                /* R1 */
	"no-session",               /* R1 */
	"remote-session",           /* R1 */
	"inactive-session",         /* R1 */
	"batch-too-large",          /* R1 */
	"usage-not-allowed",        /* R6 */
	"usage-not-in-certificate", /* R6 */
	"not-yet-valid",            /* R7 */
	"expired",                  /* R7 */
	"non-compliant",            /* R7 */
	"untrusted",
	"revoked",                  /* R8, R9 */
	"revocation-unknown",       /* R8 */
	"dialog-location-refused",  /* R1 */
	"policy-invalid",           /* R13 */
};

int
cli_reason_is_policy(const char *reason)
{
	size_t i;

	for (i = 0; reason && i < ARRAY_SIZE(policy_reasons); i++)
		if (streq(reason, policy_reasons[i]))
			return 1;
	return 0;
}

static void
policy_refusal_print(const char *method, const struct cli_rpc_error *e)
{
	_cleanup_free_ char *msg = cli_sanitize(e->message);
	_cleanup_free_ char *reason = cli_sanitize(e->reason);
	_cleanup_free_ char *rule = cli_sanitize(e->rule);

	fflush(stdout);
	fprintf(stderr, "paraf: %s refused by policy: %s (reason %s", method, msg ? msg : "",
		reason ? reason : "?");
	if (rule)
		fprintf(stderr, ", rule %s", rule);
	fputs(")\n", stderr);
}

int
cli_agent_connect(const struct cli_ctx *ctx, struct cli_conn **ret)
{
	_cleanup_free_ char *path = NULL;
	int r;

	r = cli_socket_path(ctx, &path);
	if (r == -ENXIO) {
		cli_error("cannot find the agent: XDG_RUNTIME_DIR is not set; "
			  "use --socket PATH or set PARAF_SOCKET");
		return CLI_EXIT_UNREACHABLE;
	}
	if (r < 0) {
		cli_error("%s", strerror(-r));
		return CLI_EXIT_LOCAL;
	}
	r = cli_conn_open(path, ret);
	switch (r) {
	case 0:
		return CLI_EXIT_OK;
	case -ENOENT:
	case -ECONNREFUSED:
	case -ENOTDIR:
		cli_error("no agent at '%s': %s (is parafd running?)", path, strerror(-r));
		break;
	case -ENAMETOOLONG:
		cli_error("socket path '%s' is too long", path);
		break;
	default:
		cli_error("cannot connect to the agent at '%s': %s", path, strerror(-r));
		break;
	}
	return r == -ENOMEM ? CLI_EXIT_LOCAL : CLI_EXIT_UNREACHABLE;
}

int
cli_agent_call(struct cli_conn *c, const char *method, json_object *params,
	const struct pf_secret *pin, json_object **ret_result, struct cli_rpc_error *ret_error)
{
	struct cli_rpc_error e = {};
	char what[64];
	int r;

	r = cli_rpc_call(c, method, params, pin, ret_result, &e);
	switch (r) {
	case 0:
		return CLI_EXIT_OK;
	case -EREMOTEIO:
		if (streq(method, "sign") && cli_reason_is_policy(e.reason)) {
			policy_refusal_print(method, &e);
		} else {
			if (streq(method, "sign"))
				snprintf(what, sizeof(what), "sign refused");
			else
				snprintf(what, sizeof(what), "'%s' failed", method);
			cli_rpc_error_print(what, &e);
		}
		if (ret_error)
			*ret_error = e;
		else
			cli_rpc_error_release(&e);
		return CLI_EXIT_AGENT;
	case -EPROTO:
		cli_error("the agent's answer to '%s' is not a valid JSON-RPC response", method);
		return CLI_EXIT_AGENT;
	case -EMSGSIZE:
		cli_error("the agent's answer to '%s' is longer than %u MiB", method,
			CLI_RESPONSE_MAX / (1024 * 1024));
		return CLI_EXIT_AGENT;
	case -ENOMEM:
		cli_error("out of memory");
		return CLI_EXIT_LOCAL;
	case -ECONNRESET:
	case -EPIPE:
		cli_error("the agent closed the connection before answering '%s'", method);
		return CLI_EXIT_UNREACHABLE;
	default:
		cli_error("cannot talk to the agent: %s", strerror(-r));
		return CLI_EXIT_UNREACHABLE;
	}
}
