/*
 * Fuzz target: parafd's request path. The input is what a client writes on the socket:
 *
 *   1. every line goes through ag_request_parse() and, when it is a request, its params
 *      through the field table of every method (ag_fields_parse(), ag_fields_release());
 *   2. the whole input is then written to a real parafd server (ag-server.c: line framing,
 *      the 1 MiB limit, answers in order, half-close) over a Unix socket, with the real method
 *      handlers (ag-methods.c, ag-sign.c: policy directory, decision, CMS assembly, audit
 *      record in journal mode), and every answer must be one JSON-RPC 2.0 response line.
 *
 * The token helper is replaced by a fake backend: this file defines every function of
 * agent/ag-helper.c, so the linker never takes ag-helper.o from the agent library (when
 * ag-helper.c gains a function that the agent calls, the link fails with a duplicate
 * definition: add the function here too). The fake holds two tokens with test/fuzz/data's
 * EC, RSA and revoked certificates and answers sign requests by the PIN it is given, like a
 * token: "1234" signs, a PIN containing "incorrect" (with "low", "final", "lock") is wrong,
 * "locked", "removed", "extractable", "mechanism" are those token errors, "fail" and "timeout"
 * fail the helper, "garbage" is a malformed answer, "short" too few signatures, "odd" an
 * ECDSA signature of odd length. Sign answers come as the helper sends them to parafd
 * (TOK_MSG_SIGN_STREAM): the first half of the signatures in a part, the rest in the reply;
 * "badpart" sends a part out of order (the agent must call that nonsense), "late" sends the
 * part before an error reply (the agent must answer none of it).
 *
 * An input whose first line starts with '#' gives the fake token directives on that line
 * (the line itself is not sent): list=fail, list=timeout, list=garbage, list=wrongtype,
 * list=error, list=empty, flags=low, flags=final, watch=removed (the hotplug watch sees the
 * first token gone).
 *
 * Policy (a scratch directory, read by the agent as with --policy): the EC certificate is an
 * individual one of this account, with its PIN in $CREDENTIALS_DIRECTORY; the RSA one a
 * system one; the revoked one is on the CRL and in revoked.list. The PIN dialog program is a
 * relative path, which ag_pinentry_ask() refuses at once: nothing is ever spawned.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <systemd/sd-event.h>

#include "ag-audit.h"
#include "ag-server.h"
#include "ag.h"
#include "fuzz-common.h"
#include "pf-buf.h"
#include "tok.h"

/* --- the fake token backend (replaces agent/ag-helper.c) ------------------------------- */

struct fake_op {
	struct fake_op *next;
	struct pf_buf frame;
	uint32_t part_type;
	ag_helper_part_cb part;
	ag_helper_cb cb;
	void *data;
};

struct ag_helper {
	struct fake_op *head, *tail;
	unsigned restarts;
};

enum list_mode {
	LIST_OK,
	LIST_FAIL,
	LIST_TIMEOUT,
	LIST_GARBAGE,
	LIST_WRONGTYPE,
	LIST_ERROR,
	LIST_EMPTY,
};

static struct {
	enum list_mode list;
	bool watch_removed; /* the watch sees token A gone */
	uint32_t token_flags;
	unsigned pin_incorrect; /* wrong-PIN answers in this input */
} fake;

#define TOKEN_A "0123456789abcdef"
#define TOKEN_B "fedcba9876543210"

static uint8_t *cert_ec, *cert_rsa, *cert_revoked;
static size_t cert_ec_len, cert_rsa_len, cert_revoked_len;

int
ag_helper_new(struct ag_server *srv, const char *path, char *const *modules, size_t n_modules,
	struct ag_helper **ret)
{
	struct ag_helper *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	*ret = h;
	return 0;
}

static struct fake_op *
op_pop(struct ag_helper *h)
{
	struct fake_op *op = h->head;

	if (op) {
		h->head = op->next;
		if (!h->head)
			h->tail = NULL;
	}
	return op;
}

struct ag_helper *
ag_helper_free(struct ag_helper *h)
{
	struct fake_op *op;

	if (!h)
		return NULL;
	while ((op = op_pop(h))) {
		op->cb(-ECANCELED, 0, NULL, 0, op->data);
		pf_buf_release(&op->frame);
		free(op);
	}
	free(h);
	return NULL;
}

int
ag_helper_submit(struct ag_helper *h, struct pf_buf *frame, unsigned timeout_ms, ag_helper_cb cb,
	void *data)
{
	return ag_helper_submit_parts(h, frame, timeout_ms, 0, NULL, cb, data);
}

int
ag_helper_submit_parts(struct ag_helper *h, struct pf_buf *frame, unsigned timeout_ms,
	uint32_t part_type, ag_helper_part_cb part, ag_helper_cb cb, void *data)
{
	struct fake_op *op = calloc(1, sizeof(*op));

	if (!op) {
		pf_buf_release(frame);
		return -ENOMEM;
	}
	/* The agent's frames are well-formed: length, type, body, within the cap. */
	FUZZ_CHECK(frame->len >= 8 && frame->len <= 4 + (size_t)TOK_FRAME_MAX);
	FUZZ_CHECK(timeout_ms > 0);
	op->frame = *frame;
	pf_buf_init(frame);
	op->part_type = part_type;
	op->part = part;
	op->cb = cb;
	op->data = data;
	if (h->tail)
		h->tail->next = op;
	else
		h->head = op;
	h->tail = op;
	return 0;
}

pid_t
ag_helper_pid(const struct ag_helper *h)
{
	return 0;
}

unsigned
ag_helper_restarts(const struct ag_helper *h)
{
	return h->restarts;
}

void
ag_helper_recycle(struct ag_helper *h)
{
	h->restarts++;
}

bool
ag_helper_busy(const struct ag_helper *h)
{
	return h->head != NULL;
}

static void
answer(struct fake_op *op, uint32_t type, struct pf_buf *body)
{
	FUZZ_CHECK(pf_buf_status(body) >= 0);
	op->cb(0, type, body->data, body->len, op->data);
}

static void
fake_list(struct fake_op *op)
{
	struct tok_token tokens[2] = {
		{ TOKEN_A, "Budi", "A0001", "Fuzz Tokens", "EC", "fuzz-p11.so", "Reader 00 00",
			TOK_PIN_INITIALIZED | TOK_LOGIN_REQUIRED | fake.token_flags },
		{ TOKEN_B, "Dinas", "B0002", "Fuzz Tokens", "RSA", "fuzz-p11.so", "Reader 01 00",
			TOK_PIN_INITIALIZED | TOK_LOGIN_REQUIRED },
	};
	struct tok_cert certs[4] = {
		{ TOKEN_A, "budi", { (uint8_t *)"\x01", 1 }, { cert_ec, cert_ec_len } },
		{ TOKEN_B, "dinas", { (uint8_t *)"\x02", 1 }, { cert_rsa, cert_rsa_len } },
		{ TOKEN_A, "old", { (uint8_t *)"\x03", 1 }, { cert_revoked, cert_revoked_len } },
		{ TOKEN_B, "junk", { (uint8_t *)"\x04", 1 }, { (uint8_t *)"\x30\x03\x02\x01\x01", 5 } },
	};
	struct tok_list l = { TOK_OK, tokens, 2, certs, 4 };
	struct pf_buf b;

	pf_buf_init(&b);
	switch (fake.list) {
	case LIST_FAIL:
		op->cb(-ECONNRESET, 0, NULL, 0, op->data);
		return;
	case LIST_TIMEOUT:
		op->cb(-ETIMEDOUT, 0, NULL, 0, op->data);
		return;
	case LIST_GARBAGE:
		pf_buf_put(&b, "\0\0\0\0\0\0\0\x09", 8);
		answer(op, TOK_MSG_LIST_REPLY, &b);
		break;
	case LIST_WRONGTYPE:
		tok_list_encode(&b, &l);
		answer(op, TOK_MSG_SIGN_REPLY, &b);
		break;
	case LIST_ERROR:
		l = (struct tok_list){ .err = TOK_ERR_MODULE };
		tok_list_encode(&b, &l);
		answer(op, TOK_MSG_LIST_REPLY, &b);
		break;
	case LIST_EMPTY:
		l = (struct tok_list){ .err = TOK_OK };
		tok_list_encode(&b, &l);
		answer(op, TOK_MSG_LIST_REPLY, &b);
		break;
	case LIST_OK:
		tok_list_encode(&b, &l);
		answer(op, TOK_MSG_LIST_REPLY, &b);
		break;
	}
	pf_buf_release(&b);
}

static void
fake_sign(struct fake_op *op, const uint8_t *body, size_t len)
{
	struct tok_sign_req req = {};
	struct tok_sign_reply rep = {};
	const char *pin;
	struct pf_buf b;
	size_t n_sigs;

	/* The agent's request decodes, names a token and key of the list, and carries one
	 * digest of the hash's length per document. */
	FUZZ_CHECK(tok_sign_req_decode(body, len, &req) >= 0);
	FUZZ_CHECK(strcmp(req.token_id, TOKEN_A) == 0 || strcmp(req.token_id, TOKEN_B) == 0);
	FUZZ_CHECK(req.ck_id.n == 1);
	FUZZ_CHECK(req.n_digests >= 1 && req.n_digests <= AG_DOCUMENTS_MAX);
	for (size_t i = 0; i < req.n_digests; i++)
		FUZZ_CHECK(req.digests[i].n == tok_hash_len(req.hash) ||
			req.mech != TOK_MECH_RSA_PKCS);
	/* R2: an empty PIN never reaches the token. */
	FUZZ_CHECK(!req.pin || req.pin->len > 0);
	pin = req.pin ? req.pin->data : "";

	if (strstr(pin, "fail") || strstr(pin, "timeout")) {
		op->cb(strstr(pin, "fail") ? -EPIPE : -ETIMEDOUT, 0, NULL, 0, op->data);
		tok_sign_req_release(&req);
		return;
	}
	pf_buf_init(&b);
	if (strstr(pin, "garbage")) {
		pf_buf_put(&b, "\0\0\0\0\xff", 5);
		answer(op, TOK_MSG_SIGN_REPLY, &b);
		pf_buf_release(&b);
		tok_sign_req_release(&req);
		return;
	}
	rep.logins = 1;
	/* At most one wrong PIN per input: two would make the next dialog wait (R2's delay). */
	if (strstr(pin, "incorrect") && fake.pin_incorrect++ == 0) {
		rep.err = TOK_ERR_PIN_INCORRECT;
		rep.ck_rv = 0xa0; /* CKR_PIN_INCORRECT */
		rep.pin_flags = TOK_PIN_INITIALIZED | (strstr(pin, "low") ? TOK_PIN_COUNT_LOW : 0) |
				(strstr(pin, "final") ? TOK_PIN_FINAL_TRY : 0) |
				(strstr(pin, "lock") ? TOK_PIN_LOCKED : 0);
	} else if (strstr(pin, "locked")) {
		rep.err = TOK_ERR_PIN_LOCKED;
		rep.pin_flags = TOK_PIN_LOCKED;
	} else if (strstr(pin, "removed")) {
		rep.err = TOK_ERR_TOKEN_REMOVED;
		rep.detail = "the token went away";
	} else if (strstr(pin, "extractable")) {
		rep.err = TOK_ERR_KEY_EXTRACTABLE;
	} else if (strstr(pin, "mechanism")) {
		rep.err = TOK_ERR_MECHANISM;
		rep.ck_rv = 0x70;
	}
	if (rep.err == TOK_OK || strstr(pin, "late")) {
		size_t sig_len = req.mech == TOK_MECH_ECDSA ? 64 : 256;

		if (strstr(pin, "odd"))
			sig_len = 63;
		n_sigs = req.n_digests - (strstr(pin, "short") ? 1 : 0);
		rep.sigs = calloc(n_sigs ? n_sigs : 1, sizeof(*rep.sigs));
		FUZZ_CHECK(rep.sigs);
		rep.n_sigs = n_sigs;
		for (size_t i = 0; i < n_sigs; i++) {
			rep.sigs[i].p = malloc(sig_len);
			FUZZ_CHECK(rep.sigs[i].p);
			rep.sigs[i].n = sig_len;
			/* Not a real signature (nothing checks it here), but an r and s that DER
			 * encodes without trouble: no leading zeros. */
			for (size_t k = 0; k < sig_len; k++)
				rep.sigs[i].p[k] = (uint8_t)(0x11 + i + k);
		}
	}
	if (op->part && rep.n_sigs / 2 > 0) {
		/* The first half as a part, as the helper sends them while it signs. */
		size_t half = rep.n_sigs / 2;
		struct pf_buf pb;

		pf_buf_init(&pb);
		tok_sign_part_encode(&pb, strstr(pin, "badpart") ? 1 : 0, rep.sigs, half);
		FUZZ_CHECK(pf_buf_status(&pb) >= 0);
		if (op->part(pb.data, pb.len, op->data) < 0) {
			/* parafd calls it nonsense: the helper is replaced, the call fails. */
			FUZZ_CHECK(strstr(pin, "badpart"));
			pf_buf_release(&pb);
			op->cb(-EBADMSG, 0, NULL, 0, op->data);
			goto out;
		}
		FUZZ_CHECK(!strstr(pin, "badpart"));
		pf_buf_release(&pb);
		for (size_t i = 0; i < half; i++)
			free(rep.sigs[i].p);
		memmove(rep.sigs, rep.sigs + half, (rep.n_sigs - half) * sizeof(*rep.sigs));
		rep.n_sigs -= half;
	}
	if (rep.err != TOK_OK) {
		for (size_t i = 0; i < rep.n_sigs; i++)
			free(rep.sigs[i].p);
		rep.n_sigs = 0;
	}
	tok_sign_reply_encode(&b, &rep);
	answer(op, TOK_MSG_SIGN_REPLY, &b);
out:
	pf_buf_release(&b);
	for (size_t i = 0; i < rep.n_sigs; i++)
		free(rep.sigs[i].p);
	free(rep.sigs);
	tok_sign_req_release(&req);
}

/* The hotplug watch's look (agent/ag-watch.c): the tokens, without certificates. */
static void
fake_watch(struct fake_op *op, const uint8_t *body, size_t len)
{
	struct tok_token tokens[2] = {
		{ TOKEN_B, "Dinas", "B0002", "Fuzz Tokens", "RSA", "fuzz-p11.so", "Reader 01 00",
			TOK_PIN_INITIALIZED | TOK_LOGIN_REQUIRED },
		{ TOKEN_A, "Budi", "A0001", "Fuzz Tokens", "EC", "fuzz-p11.so", "Reader 00 00",
			TOK_PIN_INITIALIZED | TOK_LOGIN_REQUIRED | fake.token_flags },
	};
	struct tok_list l = { TOK_OK, tokens, fake.watch_removed ? 1 : 2, NULL, 0 };
	uint32_t force;
	struct pf_buf b;

	FUZZ_CHECK(tok_watch_req_decode(body, len, &force) >= 0);
	pf_buf_init(&b);
	tok_watch_reply_encode(&b, 1, &l);
	answer(op, TOK_MSG_WATCH_REPLY, &b);
	pf_buf_release(&b);
}

/* Answers the queued operations (their callbacks may queue more); the number answered. */
static unsigned
fake_drain(struct ag_helper *h)
{
	struct fake_op *op;
	unsigned n = 0;

	while ((op = op_pop(h))) {
		const uint8_t *d = op->frame.data;
		uint32_t len = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
		uint32_t type = (uint32_t)d[4] << 24 | (uint32_t)d[5] << 16 | (uint32_t)d[6] << 8 | d[7];

		FUZZ_CHECK(len == op->frame.len - 4);
		if (type == TOK_MSG_LIST)
			fake_list(op);
		else if (type == TOK_MSG_SIGN_STREAM && op->part &&
			 op->part_type == TOK_MSG_SIGN_PART)
			fake_sign(op, d + 8, op->frame.len - 8);
		else if (type == TOK_MSG_WATCH)
			fake_watch(op, d + 8, op->frame.len - 8);
		else
			op->cb(-EBADMSG, 0, NULL, 0, op->data); /* a message parafd never sends */
		pf_buf_release(&op->frame);
		free(op);
		n++;
	}
	return n;
}

/* --- the server ------------------------------------------------------------------------ */

static bool verbose; /* $PARAF_FUZZ_VERBOSE: print the server's answers */
static sd_event *event;
static struct ag_server *srv;
static struct sockaddr_un sa = { .sun_family = AF_UNIX };

static char *
cert_id(const uint8_t *der, size_t n)
{
	char *id = ag_cert_id(der, n);

	FUZZ_CHECK(id);
	return id;
}

static void
write_text(const char *dir, const char *name, const char *text)
{
	char *p = fuzz_path(dir, name);

	fuzz_write_file(p, text, strlen(text));
	free(p);
}

static void
policy_setup(const char *dir)
{
	const struct passwd *pw = getpwuid(geteuid());
	char *d, *text, *id_ec = cert_id(cert_ec, cert_ec_len), *id_rsa = cert_id(cert_rsa,
		cert_rsa_len), *id_rev = cert_id(cert_revoked, cert_revoked_len);
	uint8_t *f;
	size_t n;

	FUZZ_CHECK(pw);
	fuzz_mkdir(dir, 0755);
	write_text(dir, "policy.conf",
		"[types]\nindividual = 1.3.6.1.4.1.55555.1.1\n"
		"[owner]\nroot_may_own = yes\n"
		"[session]\nallow_inactive = yes\nwithout_logind = allow\n"
		"[pin]\nparameter_types = individual, system\nmax_batch = 20\n");
	d = fuzz_path(dir, "owners.d");
	fuzz_mkdir(d, 0755);
	FUZZ_CHECK(asprintf(&text, "[owner]\ncertificate = %s\naccount = %s\ntype = individual\n"
		"name = Budi Santoso\nnip = 197803152005011002\n", id_ec, pw->pw_name) > 0);
	write_text(d, "budi.conf", text);
	free(text);
	FUZZ_CHECK(asprintf(&text, "[owner]\ncertificate = %s\naccount = %s\ntype = system\n"
		"name = Dinas Kominfo\n", id_rsa, pw->pw_name) > 0);
	write_text(d, "dinas.conf", text);
	free(text);
	FUZZ_CHECK(asprintf(&text, "[owner]\ncertificate = %s\naccount = %s\ntype = individual\n"
		"name = Revoked Person\n", id_rev, pw->pw_name) > 0);
	write_text(d, "revoked.conf", text);
	free(text);
	free(d);
	FUZZ_CHECK(asprintf(&text, "# fuzz\n%s 2026-07-01T00:00:00Z key-compromise test\n",
		id_rev) > 0);
	write_text(dir, "revoked.list", text);
	free(text);
	d = fuzz_path(dir, "anchors");
	fuzz_mkdir(d, 0755);
	f = fuzz_data_read("ca.pem", &n);
	text = fuzz_path(d, "ca.pem");
	fuzz_write_file(text, f, n);
	free(text);
	free(f);
	free(d);
	d = fuzz_path(dir, "crl");
	fuzz_mkdir(d, 0755);
	f = fuzz_data_read("ca.crl", &n);
	text = fuzz_path(d, "ca.crl");
	fuzz_write_file(text, f, n);
	free(text);
	free(f);
	free(d);

	/* The individual certificate's PIN as a credential: signing goes on without a dialog. */
	d = fuzz_path(fuzz_tmpdir(), "credentials");
	fuzz_mkdir(d, 0700);
	FUZZ_CHECK(asprintf(&text, "paraf-pin-%s", id_ec) > 0);
	write_text(d, text, "1234\n");
	free(text);
	setenv("CREDENTIALS_DIRECTORY", d, 1);
	free(d);
	free(id_ec);
	free(id_rsa);
	free(id_rev);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = fuzz_tmpdir();
	struct ag_audit_options ao = { .mode = AG_AUDIT_JOURNAL, .program = "fuzz-request" };
	struct ag_config cfg;
	char *sock_dir, *sock, *state, *pol, err[512] = "";
	int lfd;

	verbose = getenv("PARAF_FUZZ_VERBOSE") != NULL;
	cert_ec = fuzz_data_read("ec.der", &cert_ec_len);
	cert_rsa = fuzz_data_read("rsa.der", &cert_rsa_len);
	cert_revoked = fuzz_data_read("revoked.der", &cert_revoked_len);
	/* The agent's state (certificates seen revoked) stays in the scratch directory. */
	state = fuzz_path(tmp, "state");
	fuzz_mkdir(state, 0700);
	setenv("XDG_STATE_HOME", state, 1);
	setenv("HOME", state, 1);
	free(state);
	pol = fuzz_path(tmp, "policy");
	policy_setup(pol);

	FUZZ_CHECK(ag_audit_setup(&ao) >= 0);
	FUZZ_CHECK(sd_event_new(&event) >= 0);
	sock_dir = fuzz_path(tmp, "run");
	sock = fuzz_path(sock_dir, "agent.sock");
	FUZZ_CHECK(strlen(sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	if (ag_socket_listen(sock, &lfd, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz-request: %s\n", err);
		abort();
	}
	ag_config_init(&cfg);
	cfg.audit_mode = AG_AUDIT_JOURNAL;
	FUZZ_CHECK(ag_server_new(event, &cfg, "/nonexistent/paraf-token-helper", lfd, true, sock,
			   &srv) >= 0);
	srv->policy_dir = pol;
	srv->policy_dir_given = true;
	srv->pinentry = strdup("no-pinentry"); /* relative: refused, never run */
	srv->log_stderr = false;
	free(sock);
	free(sock_dir);
	return 0;
}

/* Every line the server writes is one JSON-RPC 2.0 response, or a notification (hotplug). */
static void
check_response(const char *line, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o, *v;

	FUZZ_CHECK(tok);
	o = json_tokener_parse_ex(tok, line, (int)len);
	FUZZ_CHECK(o && json_tokener_get_parse_end(tok) == len);
	FUZZ_CHECK(json_object_is_type(o, json_type_object));
	FUZZ_CHECK(json_object_object_get_ex(o, "jsonrpc", &v) &&
		strcmp(json_object_get_string(v), "2.0") == 0);
	if (json_object_object_get_ex(o, "method", &v)) {
		FUZZ_CHECK(json_object_is_type(v, json_type_string));
		FUZZ_CHECK(!json_object_object_get_ex(o, "id", NULL));
	} else {
		FUZZ_CHECK(json_object_object_get_ex(o, "id", NULL));
		FUZZ_CHECK(json_object_object_get_ex(o, "result", NULL) !=
			json_object_object_get_ex(o, "error", NULL));
	}
	json_object_put(o);
	json_tokener_free(tok);
}

/* Step 1: the parser and every method's field table, line by line. */
static void
parse_lines(const uint8_t *data, size_t size)
{
	size_t start = 0;

	while (start < size) {
		const uint8_t *nl = memchr(data + start, '\n', size - start);
		size_t len = nl ? (size_t)(nl - data) - start : size - start;
		struct ag_request req = {};
		struct ag_error err = {};
		json_object *id = NULL;
		char *line;

		if (len <= AG_REQUEST_MAX) {
			line = malloc(len + 1);
			FUZZ_CHECK(line);
			memcpy(line, data + start, len);
			line[len] = 0;
			if (ag_request_parse(line, len, &req, &id, &err) >= 0) {
				FUZZ_CHECK(req.method);
				for (size_t m = 0; m < ag_n_methods; m++) {
					struct ag_error ferr = {};
					void *p;

					if (!ag_methods[m].params)
						continue;
					p = calloc(1, ag_methods[m].params_size);
					FUZZ_CHECK(p);
					(void)ag_fields_parse(ag_methods[m].params, req.params, p, &ferr);
					ag_fields_release(ag_methods[m].params, p);
					ag_error_release(&ferr);
					free(p);
				}
				ag_request_release(&req);
			} else {
				json_object *resp = ag_error_response(id, &err);

				FUZZ_CHECK(resp && json_object_to_json_string(resp));
				json_object_put(resp);
			}
			ag_error_release(&err);
			json_object_put(id);
			free(line);
		}
		start += len + 1;
	}
}

#define IDLE_ROUNDS_MAX 200 /* rounds without progress before the server is declared stuck */

/* Step 2: the input through a real connection; returns when the server has closed it. */
static void
serve(const uint8_t *data, size_t size)
{
	struct pf_buf in;
	size_t off = 0;
	bool shut = false, closed = false;
	unsigned idle = 0;
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	pf_buf_init(&in);
	while (!closed) {
		bool progress = false;
		uint8_t buf[65536];
		ssize_t k;

		while (off < size) {
			k = send(fd, data + off, size - off, MSG_NOSIGNAL);
			if (k <= 0)
				break;
			off += (size_t)k;
			progress = true;
		}
		if (off == size && !shut) {
			FUZZ_CHECK(shutdown(fd, SHUT_WR) == 0);
			shut = progress = true;
		}
		if (sd_event_run(event, 0) > 0)
			progress = true;
		if (fake_drain(srv->helper))
			progress = true;
		while ((k = recv(fd, buf, sizeof(buf), 0)) > 0) {
			pf_buf_put(&in, buf, (size_t)k);
			progress = true;
		}
		if (k == 0)
			closed = true;
		idle = progress ? 0 : idle + 1;
		/* A request that never gets its answer: the server is stuck. */
		FUZZ_CHECK(idle < IDLE_ROUNDS_MAX);
	}
	close(fd);
	FUZZ_CHECK(pf_buf_status(&in) >= 0);
	for (size_t s = 0; s < in.len;) {
		uint8_t *nl = memchr(in.data + s, '\n', in.len - s);

		FUZZ_CHECK(nl); /* every answer ends with a newline */
		if (verbose)
			fprintf(stderr, "< %.*s\n", (int)(nl - in.data - s), (char *)in.data + s);
		check_response((char *)in.data + s, (size_t)(nl - in.data) - s);
		s = (size_t)(nl - in.data) + 1;
	}
	pf_buf_release(&in);
	/* The client is gone and nothing waits for the token. */
	for (unsigned i = 0; srv->n_clients && i < IDLE_ROUNDS_MAX; i++)
		sd_event_run(event, 0);
	FUZZ_CHECK(srv->n_clients == 0);
	FUZZ_CHECK(fake_drain(srv->helper) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	memset(&fake, 0, sizeof(fake));
	/* Wrong-PIN memory is per input, so that an input replays the same way. */
	memset(srv->pin_failures, 0, sizeof(srv->pin_failures));
	if (size && data[0] == '#') {
		const uint8_t *nl = memchr(data, '\n', size);
		size_t n = nl ? (size_t)(nl - data) : size;
		char *directive = strndup((const char *)data, n);

		FUZZ_CHECK(directive);
		fake.list = strstr(directive, "list=fail")	  ? LIST_FAIL
			    : strstr(directive, "list=timeout")	  ? LIST_TIMEOUT
			    : strstr(directive, "list=garbage")	  ? LIST_GARBAGE
			    : strstr(directive, "list=wrongtype") ? LIST_WRONGTYPE
			    : strstr(directive, "list=error")	  ? LIST_ERROR
			    : strstr(directive, "list=empty")	  ? LIST_EMPTY
								  : LIST_OK;
		fake.watch_removed = strstr(directive, "watch=removed") != NULL;
		if (strstr(directive, "flags=low"))
			fake.token_flags |= TOK_PIN_COUNT_LOW;
		if (strstr(directive, "flags=final"))
			fake.token_flags |= TOK_PIN_FINAL_TRY;
		free(directive);
		data += n + (nl ? 1 : 0);
		size -= n + (nl ? 1 : 0);
	}
	parse_lines(data, size);
	serve(data, size);
	return 0;
}
