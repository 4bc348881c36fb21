/*
 * parafd's internals: errors, the JSON-RPC framing and field tables, the method table, the
 * server and the asynchronous link to the token helper. Everything here is testable without
 * a socket; ag-server.c is the only file that touches the event loop's sockets.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/x509.h>

#include "pf-buf.h"
#include "pf-secret.h"
#include "tok.h"

/* Limits on what a client controls, checked before allocating (doc/protocol.md). */
#define AG_REQUEST_MAX (1024u * 1024u) /* bytes in one request line, newline excluded */
#define AG_JSON_DEPTH_MAX 16
#define AG_DOCUMENTS_MAX 1000
#define AG_NAME_MAX 255
#define AG_OUTPUT_MAX (16u * 1024u * 1024u) /* unread responses before we stop reading */
#define AG_READ_CHUNK (64u * 1024u)
#define AG_CLIENTS_DEFAULT 512
#define AG_IDLE_TIMEOUT_DEFAULT 120 /* seconds */
#define AG_HELPER_TIMEOUT_DEFAULT 30 /* seconds for one token operation ... */
#define AG_HELPER_TIMEOUT_PER_DOC_MS 2000 /* ... plus this per document: real cards are slow */
#define AG_HOTPLUG_INTERVAL_DEFAULT 500 /* ms between two looks at the tokens while anyone
					   subscribes to token events (the 2 s promise) */
#define AG_HOTPLUG_INTERVAL_MIN 50
#define AG_HOTPLUG_INTERVAL_MAX 1800 /* above this, a change could take more than 2 s to show */

/* Stable error identities. The wire code and reason of each are in ag-errors.c. */
enum ag_err {
	AG_ERR_PARSE,
	AG_ERR_INVALID_REQUEST,
	AG_ERR_METHOD_NOT_FOUND,
	AG_ERR_INVALID_PARAMS,
	AG_ERR_INTERNAL,
	AG_ERR_REQUEST_TOO_LARGE,
	AG_ERR_NESTING_TOO_DEEP,
	AG_ERR_TOO_MANY_DOCUMENTS,
	AG_ERR_TOO_MANY_CLIENTS,
	AG_ERR_PEER_REFUSED,
	AG_ERR_UNKNOWN_CERTIFICATE,
	AG_ERR_TOKEN_NOT_PRESENT,
	AG_ERR_KEY_NOT_FOUND,
	AG_ERR_KEY_EXTRACTABLE,
	AG_ERR_PIN_REQUIRED,
	AG_ERR_PIN_PARAMETER_REFUSED,
	AG_ERR_PIN_INCORRECT,
	AG_ERR_PIN_LOCKED,
	AG_ERR_PIN_INVALID,
	AG_ERR_UNSUPPORTED_ALGORITHM,
	AG_ERR_TOKEN_REMOVED,
	AG_ERR_TOKEN_ERROR,
	AG_ERR_TOKEN_HELPER_FAILED,
	/* refusals by the policy (pol_decide), one per reason */
	AG_ERR_UNREGISTERED,
	AG_ERR_NOT_OWNER,
	AG_ERR_NO_SESSION,
	AG_ERR_REMOTE_SESSION,
	AG_ERR_INACTIVE_SESSION,
	AG_ERR_BATCH_TOO_LARGE,
	AG_ERR_USAGE_NOT_ALLOWED,
	AG_ERR_USAGE_NOT_IN_CERTIFICATE,
	AG_ERR_NOT_YET_VALID,
	AG_ERR_EXPIRED,
	AG_ERR_NON_COMPLIANT,
	AG_ERR_UNTRUSTED,
	AG_ERR_REVOKED,
	AG_ERR_REVOCATION_UNKNOWN,
	/* the PIN dialog */
	AG_ERR_PIN_CANCELLED,
	AG_ERR_PIN_DIALOG_FAILED,
	AG_ERR_DIALOG_LOCATION_REFUSED,
	AG_ERR_POLICY_INVALID,
	/* the audit service (R13) */
	AG_ERR_AUDIT_UNAVAILABLE,
	/* a system-mode agent (parafd --system) serves electronic-system certificates only */
	AG_ERR_TYPE_NOT_SERVED,
	_AG_ERR_MAX,
};

struct ag_error_info {
	int code;
	const char *reason;
	const char *rule; /* the regulation rule a refusal enforces, or NULL */
	const char *summary;
};

const struct ag_error_info *ag_error_info(enum ag_err e);
/* The error for a policy refusal's reason token (pol_verdict.reason). */
enum ag_err ag_error_from_reason(const char *reason);

struct ag_error {
	enum ag_err err;
	char message[256];
	char field[64];
	const char *rule;   /* overrides the table's rule when set */
	json_object *extra; /* more members of data, owned */
};

void ag_error_set(struct ag_error *e, enum ag_err err, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void ag_error_release(struct ag_error *e);
/* A whole JSON-RPC error response; id may be NULL (sent as null). Consumes e->extra. */
json_object *ag_error_response(json_object *id, struct ag_error *e);
json_object *ag_result_response(json_object *id, json_object *result);
enum ag_err ag_error_from_tok(uint32_t tok_err);

/* ag-json.c: one request line to a validated JSON-RPC request. */
struct ag_request {
	json_object *root;   /* owns everything below */
	json_object *id;     /* the same object as *ret_id, owned by the caller */
	const char *method;  /* borrowed from root */
	json_object *params; /* borrowed, may be NULL */
};

/* Parses and validates one line; line[len] must be a NUL written in place of the newline.
 * *ret_id is a new reference to a copy of the id whenever one could be read, also on failure.
 * On failure fills err. */
int ag_request_parse(const char *line, size_t len, struct ag_request *ret, json_object **ret_id,
	struct ag_error *err);
void ag_request_release(struct ag_request *r);
/* Overwrites the bytes of every string value in a parsed tree: used to wipe a PIN. */
void ag_json_wipe_strings(json_object *o);

/* ag-fields.c: parameters are parsed into plain structs by tables. */
enum ag_ftype {
	AG_F_STRING,  /* char * (borrowed from the JSON tree) */
	AG_F_ENUM,    /* int: 1 + index into values; 0 when absent */
	AG_F_BASE64,  /* struct tok_blob (owned) */
	AG_F_OBJECTS, /* array of sub-structs: void * + size_t count (owned) */
	AG_F_SECRET,  /* struct pf_secret * (owned), wiped in the JSON tree */
	AG_F_HEX,     /* char * of exactly max hex digits, lower case (borrowed) */
	AG_F_ENUM_SET, /* unsigned: an array of names from values, bit i for values[i], plus
			  AG_F_SET_GIVEN when the key was present (so [] differs from absent);
			  min..max items */
};

#define AG_F_SET_GIVEN 0x80000000u

enum {
	AG_F_REQUIRED = 1 << 0,
	AG_F_DISPLAYED = 1 << 1, /* shown to a person: no control characters or bidi overrides */
};

struct ag_field {
	const char *name;
	enum ag_ftype type;
	unsigned flags;
	size_t offset;          /* of the value in the params struct */
	size_t count_offset;    /* AG_F_OBJECTS: of the size_t count */
	size_t min;             /* STRING: bytes; OBJECTS: items; BASE64: decoded bytes */
	size_t max;
	const char *const *values; /* AG_F_ENUM: NULL-terminated */
	const struct ag_field *sub; /* AG_F_OBJECTS: the item's fields, name NULL ends */
	size_t sub_size;
	enum ag_err max_err;    /* OBJECTS: error for too many items (0 = invalid-params) */
	const char *description;
};

/* Parses obj (a JSON object, or NULL/[]/{} for none) into out. Unknown and missing keys are
 * errors. out must be zeroed; ag_fields_release() frees what was allocated, also after a
 * failure. */
int ag_fields_parse(const struct ag_field *fields, json_object *obj, void *out,
	struct ag_error *err);
void ag_fields_release(const struct ag_field *fields, void *out);
/* JSON Schema of one field, for rpc.discover. */
json_object *ag_field_schema(const struct ag_field *f);

/* ag-cert.c: facts about a certificate, for certificates.list and sign. */
char *ag_cert_id(const uint8_t *der, size_t n); /* lower-case hex SHA-256 */
json_object *ag_cert_describe(X509 *x);         /* the fields of certificates.list, less id/token */
char *ag_time_iso8601(time_t t);

/* ag-cms.c: a CAdES-BES detached SignedData whose signature is made elsewhere. */
struct ag_cms;
enum ag_pad { AG_PAD_PKCS1, AG_PAD_PSS };
/* CAdES-BES carries the claimed signing time as a signingTime attribute; PAdES baseline
 * wants none (the time is the PDF signature dictionary's /M). */
enum ag_cms_profile { AG_CMS_CADES, AG_CMS_PADES };
/* Builds the signed attributes for a document digest and returns the hash to be signed. */
int ag_cms_new(X509 *cert, const EVP_MD *md, enum ag_pad pad, enum ag_cms_profile profile,
	const uint8_t *digest, size_t digest_len, time_t signing_time, struct ag_cms **ret,
	uint8_t *ret_tbs, size_t *ret_tbs_len);
/* Puts the token's signature in (r || s for EC) and returns the DER of the ContentInfo. */
int ag_cms_finish(struct ag_cms *c, const uint8_t *sig, size_t sig_len, uint8_t **ret_der,
	size_t *ret_len);
struct ag_cms *ag_cms_free(struct ag_cms *c);
/* The same for the documents of one request (one signer, signing time, padding and profile):
 * the structure is encoded once and each document's bytes put in place, with a result byte for
 * byte that of ag_cms_new() + ag_cms_finish(). ag_cms_batch_tbs() gives the hash to sign for
 * a document digest; ag_cms_batch_finish() the DER for that digest and its signature. */
struct ag_cms_batch;
int ag_cms_batch_new(X509 *cert, const EVP_MD *md, enum ag_pad pad, enum ag_cms_profile profile,
	time_t signing_time, struct ag_cms_batch **ret);
int ag_cms_batch_tbs(struct ag_cms_batch *b, const uint8_t *digest, size_t digest_len,
	uint8_t *ret_tbs, size_t *ret_tbs_len);
int ag_cms_batch_finish(struct ag_cms_batch *b, const uint8_t *digest, size_t digest_len,
	const uint8_t *sig, size_t sig_len, uint8_t **ret_der, size_t *ret_len);
struct ag_cms_batch *ag_cms_batch_free(struct ag_cms_batch *b);
/* r || s as a token gives it, to a DER ECDSA-Sig-Value. */
int ag_ecdsa_sig_to_der(const uint8_t *sig, size_t n, uint8_t **ret_der, size_t *ret_len);

/* ag-config.c */
/* Where decision records go (R13). Zero is `required`: a configuration that says nothing
 * fails closed. */
enum ag_audit_mode {
	AG_AUDIT_REQUIRED = 0, /* paraf-auditd must acknowledge a record before a signature leaves */
	AG_AUDIT_SPOOL,        /* … or it goes to the local spool, forwarded once the service is back */
	AG_AUDIT_JOURNAL,      /* the journal (stderr in the foreground) only: development, tests */
	_AG_AUDIT_MODE_MAX,
};
#define AG_AUDIT_SOCKET_DEFAULT "/run/paraf/audit.sock"
#define AG_AUDIT_TIMEOUT_DEFAULT 5 /* seconds the service may take to acknowledge a record */
const char *ag_audit_mode_to_string(enum ag_audit_mode m);

struct ag_config {
	unsigned helper_timeout; /* seconds */
	unsigned idle_timeout;   /* seconds */
	unsigned max_clients;
	char **modules;
	size_t n_modules;
	enum ag_audit_mode audit_mode; /* `audit` */
	char *audit_socket;            /* `audit_socket`, NULL: AG_AUDIT_SOCKET_DEFAULT */
	unsigned audit_timeout;        /* `audit_timeout`, seconds */
	unsigned hotplug_interval;     /* `hotplug_interval`, ms between looks at the tokens */
	unsigned exit_idle;            /* `exit_idle`, seconds with nothing to do before exiting
					* (socket activation); 0: never */
	bool system_mode;              /* `mode = system`: serves system certificates to other
					* accounts, PINs from credentials (doc/service.md) */
};
void ag_config_init(struct ag_config *c);
void ag_config_release(struct ag_config *c);
/* Reads an INI file; on failure ret_error says which line and what is wrong. */
int ag_config_load(struct ag_config *c, const char *path, char *ret_error, size_t error_size);
int ag_config_add_module(struct ag_config *c, const char *path);
#define AG_AUDIT_SOCKET_PATH_MAX 108 /* sizeof(sockaddr_un.sun_path) */
/* `audit_socket` or --audit-socket: an absolute path shorter than AG_AUDIT_SOCKET_PATH_MAX. */
int ag_config_set_audit_socket(struct ag_config *c, const char *path);
#define AG_EXIT_IDLE_MAX 86400 /* `exit_idle` and --exit-idle, seconds */
/* `mode`: "user" (the default) or "system". */
int ag_config_parse_mode(const char *v, bool *ret_system);

/* ag-methods.c: the method table. */
struct ag_server;
struct ag_call;
typedef void (*ag_handler)(struct ag_call *call);
struct ag_method {
	const char *name;
	const struct ag_field *params; /* NULL: takes none */
	size_t params_size;
	const char *summary;
	const char *result_description;
	const enum ag_err *errors; /* the method-specific errors, _AG_ERR_MAX ends */
	ag_handler handler;
};
const struct ag_method *ag_method_find(const char *name);
extern const struct ag_method ag_methods[];
extern const size_t ag_n_methods;
json_object *ag_discover(void); /* the OpenRPC document */

/* A call in progress: the request, its parsed params, and where its answer goes. */
struct ag_call {
	struct ag_server *srv;
	struct ag_client *client; /* NULL once the client has gone */
	json_object *id;
	json_object *root; /* the request, owned: string params borrow from it */
	const struct ag_method *method;
	void *params;
	struct ucred peer;
	/* Called when the client goes away while the call waits (a PIN dialog, a delay): the
	 * handler stops what it can and finishes the call. */
	void (*abandon)(struct ag_call *call);
	void *abandon_data;
};
void ag_call_reply(struct ag_call *call, json_object *result);
void ag_call_fail(struct ag_call *call, struct ag_error *e);

/* ag-helper.c: the token helper, asynchronously. */
struct ag_helper;
typedef void (*ag_helper_cb)(int r, uint32_t type, const uint8_t *body, size_t len, void *data);
int ag_helper_new(struct ag_server *srv, const char *path, char *const *modules,
	size_t n_modules, struct ag_helper **ret);
struct ag_helper *ag_helper_free(struct ag_helper *h);
/* Queues a frame (taken over and wiped); cb runs once with r < 0 if the helper failed. */
int ag_helper_submit(struct ag_helper *h, struct pf_buf *frame, unsigned timeout_ms,
	ag_helper_cb cb, void *data);
/* The same, for an operation answered in parts (TOK_MSG_SIGN_STREAM): every frame of type
 * part_type before the answer goes to part as it arrives; part returning < 0 means the helper
 * spoke nonsense: it is replaced and cb runs with -EBADMSG. */
typedef int (*ag_helper_part_cb)(const uint8_t *body, size_t len, void *data);
int ag_helper_submit_parts(struct ag_helper *h, struct pf_buf *frame, unsigned timeout_ms,
	uint32_t part_type, ag_helper_part_cb part, ag_helper_cb cb, void *data);
pid_t ag_helper_pid(const struct ag_helper *h);
unsigned ag_helper_restarts(const struct ag_helper *h);
/* An operation is in flight or queued: the hotplug watch waits for its next tick. */
bool ag_helper_busy(const struct ag_helper *h);
