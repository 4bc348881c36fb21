/*
 * The paraf command line: one file per command (cli-status.c, cli-sign.c, ...), each exporting a
 * const struct cli_cmd that cli-args.c lists; the agent connection (cli-rpc.c), PIN entry
 * (cli-pin.c), file hashing and atomic output (cli-file.c), tables (cli-table.c) and the offline
 * verifier of CMS and PDF signatures (cli-verify*.c). Commands return a process exit status
 * (enum cli_exit); every other function returns >= 0 on success or a negative errno, and writes
 * ret_* only on success.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pf-buf.h"
#include "pf-secret.h"
#include "pf-util.h"

/* Exit statuses: documented in `paraf --help` and doc/cli.md; scripts depend on them. */
enum cli_exit {
	CLI_EXIT_OK = 0,          /* success; verify: every signature VALID */
	CLI_EXIT_NOT_VALID = 1,   /* verify: a result other than VALID */
	CLI_EXIT_USAGE = 2,       /* bad option, missing or malformed argument */
	CLI_EXIT_UNREACHABLE = 3, /* cannot reach the agent */
	CLI_EXIT_AGENT = 4,       /* the agent returned an error (or an unusable answer) */
	CLI_EXIT_LOCAL = 5,       /* cannot read an input, cannot write an output */
	/* Provisioning (paraf admin, activate, renew) gives 3 and 4 their own words: */
	CLI_EXIT_NO_TOKEN = 3,    /* the token helper cannot start, the token is not there */
	CLI_EXIT_REFUSED = 4,     /* refused: by the rules (R-rule printed), the caller's rights,
	                             the token (a wrong PIN), or the dialog was cancelled */
};

/* Limits, each checked before anything is allocated for the value it bounds. */
#define CLI_RESPONSE_MAX (64u * 1024 * 1024) /* one response line from the agent */
#define CLI_DOCUMENTS_MAX 1000               /* AG_DOCUMENTS_MAX of doc/protocol.md */
#define CLI_SIGFILE_MAX (64u * 1024 * 1024)  /* a signature file given to verify */
#define CLI_HASH_CHUNK (64u * 1024)          /* documents are hashed in reads of this size */
#define CLI_CERT_PREFIX_MIN 8                /* shortest accepted --cert prefix, hex digits */
#define CLI_CERT_ID_LEN 64                   /* hex SHA-256 of the certificate's DER */
#define CLI_LOCATION_MAX 255                 /* a sign parameter naming the PIN dialog's place
                                                (the agent's AG_PATH_PARAM_MAX) */

/* Options that apply to every command. */
struct cli_ctx {
	const char *socket_path; /* --socket, or NULL */
	int json;                /* --json */
};

struct cli_cmd {
	const char *name;
	const char *summary; /* one line for `paraf --help` */
	const char *usage;   /* full text for `paraf COMMAND --help` */
	int (*run)(struct cli_ctx *ctx, int argc, char **argv); /* argv[0] is the command name */
};

/* cli-args.c */
extern const struct cli_cmd cli_cmd_status, cli_cmd_tokens, cli_cmd_certs, cli_cmd_sign,
	cli_cmd_verify;
extern const struct cli_cmd cli_cmd_sign_pdf; /* cli-sign-pdf.c */
/* provisioning (cli-admin.h): the operator's `admin`, the owner's `activate` and `renew` */
extern const struct cli_cmd cli_cmd_admin, cli_cmd_activate, cli_cmd_renew;
/* the audit log (cli-audit.c) and expiry warnings (cli-expiry.c) */
extern const struct cli_cmd cli_cmd_audit, cli_cmd_expiry;
/* USB tokens and readers and the tokens PKCS#11 sees in them (cli-devices.c) */
extern const struct cli_cmd cli_cmd_devices;
const struct cli_cmd *cli_cmd_find(const char *name);
void cli_help_print(FILE *f);
void cli_version_print(FILE *f);
/* Returned by cli_opt_common() when option parsing goes on. */
#define CLI_OPT_CONTINUE (-1)
/*
 * Handles what getopt_long() returned for the options every command shares (--json, --help)
 * and for its errors ('?' unknown option, ':' missing argument). Returns CLI_OPT_CONTINUE or the
 * exit status the command must return at once. The option string must start with ":".
 */
int cli_opt_common(struct cli_ctx *ctx, const struct cli_cmd *cmd, int c, char **argv);
/*
 * getopt_long() takes any unambiguous prefix of a long option ("--pin" for "--pin-file"):
 * this refuses them, so that what runs is what was typed. Call before the getopt_long() loop;
 * stop_at_operand for the global options (which end at the command). CLI_OPT_CONTINUE, or
 * the usage error's exit status.
 */
struct option;
int cli_opts_exact(const struct cli_cmd *cmd, int argc, char **argv, const struct option *opts,
	int stop_at_operand);
/* The usage error for getopt_long()'s '?'; cmd NULL for the global options. */
int cli_opt_unknown(const struct cli_cmd *cmd, char **argv);
/*
 * The whole option parsing of a command that takes no arguments of its own: CLI_OPT_CONTINUE,
 * or the exit status to return at once (after --help, or a usage error).
 */
int cli_opts_none(struct cli_ctx *ctx, const struct cli_cmd *cmd, int argc, char **argv);
/* Long options every command accepts; put them last in the command's table. */
#define CLI_OPT_JSON 0x100
#define CLI_COMMON_OPTIONS                                                                  \
	{ "json", no_argument, NULL, CLI_OPT_JSON }, { "help", no_argument, NULL, 'h' }

/* cli-util.c: messages on stderr, "paraf: " first; the caller logs once. */
void cli_error(const char *fmt, ...) _printf_(1, 2);
void cli_warn(const char *fmt, ...) _printf_(1, 2);
/* Prints the message and "Try 'paraf CMD --help'."; returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...) _printf_(2, 3);
/*
 * A copy of s fit for a terminal: control characters, invalid UTF-8 and bidirectional
 * overrides become '?', so a name inside a certificate or a token label cannot rewrite the
 * screen. NULL for NULL, and NULL when out of memory.
 */
char *cli_sanitize(const char *s);
/*
 * 1 when s[0..n) (followed by a NUL) is valid UTF-8 without the characters doc/protocol.md
 * refuses in a document name: C0 and C1 controls, DEL, bidirectional overrides and isolates.
 */
int cli_text_is_displayable(const char *s, size_t n);
/* The number of characters (UTF-8 code points) in s, for column widths. */
size_t cli_text_width(const char *s);
/* The reason string of the oldest error on OpenSSL's queue, which is then cleared. */
const char *cli_openssl_error(void);
/* ISO 8601 UTC (2026-11-21T08:30:00Z) of an ASN.1 time, into buf of at least 21 bytes. */
int cli_asn1_time_iso(const ASN1_TIME *t, char *buf, size_t n);
/* Strictly parses a lower-case or upper-case hex string into lower-case; -EINVAL otherwise. */
int cli_hex_normalize(const char *s, char **ret);
/* Duplicates, or returns NULL on allocation failure (callers check). */
char *cli_strdup(const char *s);
/* Prints a JSON value on stdout for --json. */
int cli_json_print(json_object *o);
/* json-c accessors that check the type: NULL when absent or of another type. */
const char *cli_json_str(json_object *o, const char *key);
json_object *cli_json_obj(json_object *o, const char *key, json_type type);

PF_DEFINE_CLEANUP(json_object, json_object_put)

/* cli-rpc.c: the agent connection (doc/protocol.md) */
struct cli_conn;

struct cli_rpc_error {
	int code;      /* JSON-RPC error code */
	char *message; /* for people, never NULL after a filled error */
	char *reason;  /* data.reason, or NULL */
	char *rule;    /* data.rule, or NULL */
	char *field;   /* data.field, or NULL */
	json_object *data; /* the whole data object (a reference), or NULL */
};

void cli_rpc_error_release(struct cli_rpc_error *e);
/* --socket, else $PARAF_SOCKET, else $XDG_RUNTIME_DIR/paraf/agent.sock; -ENXIO if none. */
int cli_socket_path(const struct cli_ctx *ctx, char **ret);
/* Connects; -errno of socket()/connect(), -ENAMETOOLONG when the path does not fit. */
int cli_conn_open(const char *path, struct cli_conn **ret);
struct cli_conn *cli_conn_free(struct cli_conn *c);
PF_DEFINE_CLEANUP(struct cli_conn, cli_conn_free)
/*
 * Sends one request and waits for its answer. params may be NULL (none). When pin is given it
 * is added as the "pin" parameter: the request line is then built in a wiping buffer and the
 * PIN escaped there, never handed to json-c. Returns 0 and *ret_result (a new reference);
 * -EREMOTEIO when the agent answered with an error, which then fills *ret_error (release it
 * with cli_rpc_error_release()); -EPROTO for an answer that is not a valid JSON-RPC response to
 * this request; -EMSGSIZE for an answer longer than CLI_RESPONSE_MAX; -ECONNRESET when the
 * agent closed the connection; other -errno from the socket.
 */
int cli_rpc_call(struct cli_conn *c, const char *method, json_object *params,
	const struct pf_secret *pin, json_object **ret_result, struct cli_rpc_error *ret_error);
/* Appends s as a JSON string literal (with quotes); UTF-8 is kept, control bytes escaped. */
void cli_json_escape(struct pf_buf *b, const char *s, size_t n);
/*
 * Connects to the agent the options name. On failure prints one message and returns the exit
 * status (CLI_EXIT_UNREACHABLE, or CLI_EXIT_LOCAL when out of memory); else CLI_EXIT_OK.
 */
int cli_agent_connect(const struct cli_ctx *ctx, struct cli_conn **ret);
/*
 * cli_rpc_call() for commands: on failure prints one message and returns the exit status
 * (CLI_EXIT_AGENT for an error answer, which is also handed to *ret_error when that is not
 * NULL, for the caller to add detail; CLI_EXIT_UNREACHABLE when the connection broke), else
 * CLI_EXIT_OK with *ret_result.
 */
int cli_agent_call(struct cli_conn *c, const char *method, json_object *params,
	const struct pf_secret *pin, json_object **ret_result, struct cli_rpc_error *ret_error);
/* Prints an agent error as "paraf: <what>: <reason> (<message>; field ...; rule ...)". */
void cli_rpc_error_print(const char *what, const struct cli_rpc_error *e);
/*
 * 1 when reason (an error's data.reason) is a refusal by the agent's policy, the regulation's
 * rules (R1, R2, R5-R8, R13): a decision for the official to read, printed as
 * "paraf: sign refused by policy: <message> (reason <reason>, rule <rule>)".
 */
int cli_reason_is_policy(const char *reason);

/* cli-table.c: plain aligned columns */
struct cli_table;
int cli_table_new(size_t ncols, const char *const *headers, struct cli_table **ret);
struct cli_table *cli_table_free(struct cli_table *t);
PF_DEFINE_CLEANUP(struct cli_table, cli_table_free)
/* Adds a row of ncols cells (NULL shows as "-"); the cells are sanitized copies. */
int cli_table_add(struct cli_table *t, const char *const *cells);
int cli_table_print(const struct cli_table *t, FILE *f);

/* cli-certs.c */
/*
 * Finds the certificate that arg names in a certificates.list result: a full 64-hex id or a
 * unique prefix of at least CLI_CERT_PREFIX_MIN hex digits. -EINVAL when arg is not such hex,
 * -ENOENT when nothing matches, -ENOTUNIQ when several do. *ret_cert is borrowed from list.
 */
int cli_cert_resolve(json_object *list, const char *arg, json_object **ret_cert);
/*
 * Decodes the entry's base64 DER certificate and checks that its SHA-256 is the entry's id.
 * -EPROTO when the entry is malformed or the id does not match.
 */
int cli_cert_decode(json_object *cert, X509 **ret);
/*
 * Asks the agent for certificates.list and finds the certificate --cert names (cmd's usage
 * error when ambiguous): the list (owned: put it), the entry (borrowed from it) and its
 * decoded X.509. Returns a CLI_EXIT_* code, having said what went wrong.
 */
struct cli_conn;
int cli_agent_cert(struct cli_conn *conn, const struct cli_cmd *cmd, const char *arg,
	json_object **ret_list, json_object **ret_cert, X509 **ret_x);
/* The first commonName of a name as UTF-8; -ENOENT when it has none. */
int cli_name_cn(const X509_NAME *name, char **ret);

/* cli-dialog.c: the PIN's source and the PIN dialog's place for `paraf sign` (R1, R2) */
/*
 * 1 when the PIN of cert (a certificates.list entry) may travel in the sign request: its
 * `type` is one of status's (agent.status) `pin_parameter_types`. 0 otherwise, also for a
 * certificate without a type and a status without the list: paraf then sends no PIN and the
 * agent asks for it in its trusted dialog. *ret_type: the type, borrowed from cert, or NULL.
 */
int cli_pin_in_request(json_object *status, json_object *cert, const char **ret_type);
/*
 * The real path of the controlling terminal: ttyname() of standard input when that is a
 * terminal, else of /dev/tty (opened O_NOCTTY). -ENOTTY when there is none, -ENAMETOOLONG
 * when its name is longer than CLI_LOCATION_MAX.
 */
int cli_dialog_tty(char **ret);
/*
 * Adds to params where the agent's PIN dialog must appear, each only when known: `tty`
 * (cli_dialog_tty()), `tty_type` ($TERM, only with tty), `display` ($DISPLAY), `xauthority`
 * ($XAUTHORITY), `wayland_display` ($WAYLAND_DISPLAY). A value longer than CLI_LOCATION_MAX
 * is left out with a warning. -ENOMEM.
 */
int cli_dialog_location_add(json_object *params);

/* cli-pin.c */
/*
 * The PIN on the first line of path, "\n" or "\r\n" removed (a pipe will do). -ENODATA when
 * that line is empty, -E2BIG when longer than PF_SECRET_MAX, -EBADMSG when it holds a NUL.
 * The bytes read are wiped from the stack before returning.
 */
int cli_pin_read_file(const char *path, struct pf_secret **ret);
/*
 * Prompts on /dev/tty with echo off, restoring the terminal even when interrupted (the signal
 * is then re-raised). -ENXIO without a terminal, -ECANCELED when nothing was entered (or
 * end-of-file), -E2BIG when longer than PF_SECRET_MAX, -EBADMSG for a NUL byte.
 */
int cli_pin_read_tty(const char *prompt, struct pf_secret **ret);

/* cli-file.c */
/* Streams the regular file at path through md; *ret_len digest bytes into out. */
int cli_file_digest(const char *path, const EVP_MD *md, unsigned char *out, unsigned *ret_len);
/*
 * Writes data to path atomically: a temporary file in the same directory (mkstemp), fsync,
 * mode 0644, then rename. Without overwrite, an existing path is never replaced (-EEXIST).
 */
int cli_file_write_atomic(const char *path, const void *data, size_t n, int overwrite);
/* Reads a whole file of at most max bytes; -EFBIG when larger. */
int cli_file_read_all(const char *path, size_t max, uint8_t **ret, size_t *ret_len);

/*
 * cli-verify*.c: the offline verifier (R11): CMS signature files and the signatures in a PDF.
 * doc/verification.md describes the report; the field names below are its JSON keys.
 */
enum cli_conclusion {
	CLI_VALID,         /* TOTAL_PASSED */
	CLI_INDETERMINATE, /* INDETERMINATE */
	CLI_INVALID,       /* TOTAL_FAILED */
};

enum cli_time_source {
	CLI_TIME_NONE,      /* no time stated: the certificate is judged now */
	CLI_TIME_CLAIMED,   /* the signer's own clock: signingTime, or the PDF's /M */
	CLI_TIME_TIMESTAMP, /* an RFC 3161 timestamp that verified against the anchors */
};

enum cli_tst_status {
	CLI_TST_NONE,      /* no signature timestamp */
	CLI_TST_VALID,     /* verified: its time is the trusted signing time */
	CLI_TST_UNTRUSTED, /* intact and about this signature, but its TSA is not trusted */
	CLI_TST_INVALID,   /* broken, or not about this signature */
};

enum cli_integrity {
	CLI_INTEGRITY_OK,
	CLI_INTEGRITY_UNKNOWN,      /* the content digest matches; no certificate to check the
				       signature with */
	CLI_INTEGRITY_HASH_FAILURE, /* the content is not what was signed */
	CLI_INTEGRITY_SIG_FAILURE,  /* the signature value does not verify */
	CLI_INTEGRITY_FORMAT,       /* not checked: the signature cannot be read (format_error) */
};

enum cli_chain {
	CLI_CHAIN_OK,            /* every signature up to a self-signed certificate checks */
	CLI_CHAIN_INCOMPLETE,    /* an issuer is missing; the signatures up to it check */
	CLI_CHAIN_BAD_SIGNATURE, /* a certificate's signature does not verify */
};

enum cli_revocation {
	CLI_REV_GOOD,        /* a current CRL of the issuer does not list it */
	CLI_REV_REVOKED,     /* a CRL of the issuer lists it (revocation_time says when) */
	CLI_REV_CRL_MISSING, /* no CRL of the issuer */
	CLI_REV_CRL_STALE,   /* only CRLs past their nextUpdate */
	CLI_REV_UNCHECKED,   /* the chain is not trusted (now), so no CRL can be judged */
};

enum cli_cert_validity {
	CLI_CERT_VALID,   /* within its dates and not revoked at the signing time */
	CLI_CERT_INVALID, /* expired, not yet valid or revoked at the signing time */
	CLI_CERT_UNKNOWN,
};

enum cli_appended {
	CLI_APPENDED_NONE,       /* nothing after the signed range */
	CLI_APPENDED_SIGNATURES, /* only later signatures' updates */
	CLI_APPENDED_OTHER,      /* other changes */
};

struct cli_timestamp_report {
	enum cli_tst_status status;
	time_t time;
	char *time_iso; /* genTime, ISO 8601 */
	char *tsa;      /* the TSA certificate's subject, RFC 2253 */
	char *error;    /* why it is not VALID */
};

struct cli_pdf_sig_report {
	char *field, *sub_filter, *name, *reason, *location;
	int has_byte_range;
	int64_t byte_range[4];
	uint64_t file_size, signed_end, appended_bytes;
	int whole_file;
	enum cli_appended appended;
	size_t appended_revisions, later_signatures;
	char *appended_detail;
};

struct cli_signer_report {
	/* who */
	char *signer;       /* subject, RFC 2253; NULL when the certificate is missing */
	char *signer_cn;
	char *nip;          /* from the subject's serialNumber "NIP…", else from the registry */
	const char *nip_source; /* "certificate", "registry" or NULL */
	char *position;     /* jabatan, from the registry, or NULL */
	char *issuer;
	char *serial;       /* lower-case hex */
	char *not_before;   /* the signer certificate's validity, ISO 8601 */
	char *not_after;
	char *digest_algorithm;
	/* when */
	enum cli_time_source time_source;
	time_t time;        /* the signing time the certificate is judged at */
	char *signing_time; /* ISO 8601, or NULL (CLI_TIME_NONE) */
	char *claimed_time; /* what the signer claims, or NULL */
	struct cli_timestamp_report ts;
	/* integrity */
	enum cli_integrity integrity_state;
	int integrity;      /* integrity_state == CLI_INTEGRITY_OK */
	char *integrity_error;
	char *format_error; /* the signature could not be read at all: why */
	int unsupported;    /* format_error is a kind of signature this verifier does not check */
	/* the certificate */
	int trusted;        /* chains to an anchor at the signing time */
	char *trust_error;
	enum cli_chain chain;
	int verified;       /* chain == CLI_CHAIN_OK */
	char *verify_error;
	size_t chain_len;   /* certificates in the path checked, the signer's included */
	char *anchor;       /* the anchor's subject when trusted */
	enum cli_cert_validity cert_validity;
	const char *cert_status; /* "valid", "expired", "not-yet-valid", "revoked", "unknown" */
	const char *cert_sub;    /* the sub-indication the certificate's status leads to */
	char *cert_error;   /* why not valid, or why unknown */
	enum cli_revocation revocation;
	char *revocation_time;   /* when revoked */
	char *revocation_reason; /* the CRL's reason code, when given */
	/* PDF signatures */
	int is_pdf;
	struct cli_pdf_sig_report pdf;
	/* the verdict */
	enum cli_conclusion conclusion;
	const char *sub_indication; /* doc/verification.md lists them; NULL when VALID */
	char *reason;               /* NULL when VALID */
};

struct cli_verify_report {
	char *file;
	int is_pdf;
	char *content; /* CMS: the content file, NULL when embedded; PDF: NULL */
	char *error;   /* no signature could be reported: why (conclusion INVALID or INDETERMINATE) */
	char *time;    /* the time of the verification, ISO 8601 */
	size_t n_anchors, n_crls;
	size_t unsigned_fields; /* PDF: empty signature fields */
	size_t n_signers;
	struct cli_signer_report *signers;
	enum cli_conclusion conclusion;
};

#define CLI_VERIFY_FILES_MAX 256 /* --ca and --crl options, each */

struct cli_verify_opts {
	const char *sigfile;      /* a CMS signature file, or a PDF */
	const char *content;      /* NULL: derived from sigfile, or embedded (CMS only) */
	const char *const *cas;   /* --ca files, NULL-terminated; NULL or empty: anchors_dir */
	const char *anchors_dir;  /* every file in it; normally PARAF_SYSCONFDIR "/anchors" */
	const char *const *crls;  /* --crl files, NULL-terminated */
	const char *crl_dir;      /* --crl-dir; normally PARAF_SYSCONFDIR "/crl" */
	int crl_dir_given;        /* --crl-dir: used even with --crl */
	const char *owners_dir;   /* the registry (optional), PARAF_SYSCONFDIR "/owners.d" */
	time_t now;               /* the time of the verification; 0: the current time */
};

/*
 * Verifies a CMS signature file or a PDF's signatures. Returns 0 and a report whatever the
 * verdict (a file that is not a signature, an encrypted or damaged PDF, is a report with its
 * error set). Fails with -EUCLEAN for a usage error (the content file cannot be derived from
 * the signature file's name; a CONTENT given with a PDF), -EINVAL for a --ca or --crl file that
 * holds no certificate or CRL, or the -errno of a file that cannot be read; *error_out is then
 * a message saying which file (free it; NULL only when out of memory).
 */
int cli_verify_run(const struct cli_verify_opts *o, struct cli_verify_report **ret,
	char **error_out);
struct cli_verify_report *cli_verify_report_free(struct cli_verify_report *r);
PF_DEFINE_CLEANUP(struct cli_verify_report, cli_verify_report_free)
const char *cli_conclusion_name(enum cli_conclusion c);
/* "TOTAL_PASSED", "TOTAL_FAILED", "INDETERMINATE": EU DSS's and ETSI EN 319 102-1's words. */
const char *cli_indication_name(enum cli_conclusion c);
int cli_verify_report_json(const struct cli_verify_report *r, json_object **ret);
int cli_verify_report_print(const struct cli_verify_report *r, FILE *f);

/* The pieces, for cli-verify*.c and the tests. */
struct cli_trust;
/* Loads the anchors, CRLs and registry the options name. -EINVAL (with *error_out) for a --ca or
 * --crl file that cannot be used; a missing default directory is an empty one. */
int cli_trust_load(const struct cli_verify_opts *o, time_t now, struct cli_trust **ret,
	char **error_out);
struct cli_trust *cli_trust_free(struct cli_trust *t);
PF_DEFINE_CLEANUP(struct cli_trust, cli_trust_free)
size_t cli_trust_n_anchors(const struct cli_trust *t);
size_t cli_trust_n_crls(const struct cli_trust *t);
/* Who signed: subject, CN, issuer, serial, validity, NIP (certificate, else registry). */
int cli_signer_identify(const struct cli_trust *t, X509 *x, struct cli_signer_report *s);
/*
 * The certificate's status at s->time (s->time_source says how sure that time is): trusted,
 * verified, valid (dates and revocation). extra: certificates that came with the signature.
 */
int cli_signer_check_cert(const struct cli_trust *t, X509 *x, STACK_OF(X509) * extra,
	struct cli_signer_report *s);
/* The anchors and the other certificates loaded with them (borrowed): to find issuers. */
STACK_OF(X509) *cli_trust_certs(const struct cli_trust *t);
/* The RFC 3161 signature timestamp of a SignerInfo, if it has one (status CLI_TST_NONE). */
struct CMS_SignerInfo_st; /* CMS_SignerInfo */
int cli_timestamp_check(const struct cli_trust *t, struct CMS_SignerInfo_st *si,
	struct cli_timestamp_report *ret);
/*
 * Whether a timestamp's signer is trusted at its genTime: listed itself with the anchors, or
 * chaining to an anchor; valid then; not revoked by then as far as the CRLs know. *ret_why is
 * NULL when trusted, else why not.
 */
int cli_trust_tsa_check(const struct cli_trust *t, X509 *tsa, STACK_OF(X509) * extra,
	time_t gen, char **ret_why);
/* What the container says about the signing time besides the CMS (a PDF's /M). */
struct cli_claim {
	int has_time;
	time_t time;
};
/*
 * Verifies every SignerInfo of cms (n_reps of them) over cont (NULL: the embedded content),
 * filling reps[] and concluding each. -EIO with *error_out when the content cannot be read.
 */
struct CMS_ContentInfo_st; /* CMS_ContentInfo */
int cli_verify_signed_data(const struct cli_trust *t, struct CMS_ContentInfo_st *cms, BIO *cont,
	const char *content_name, const struct cli_claim *claim, struct cli_signer_report *reps,
	size_t n_reps, char **error_out);
/* The conclusion, sub-indication and reason of a filled signer report. */
int cli_signer_conclude(const struct cli_trust *t, struct cli_signer_report *s);
void cli_signer_report_release(struct cli_signer_report *s);
/* The certificate chain's signatures, from x up to a self-signed certificate among candidates. */
int cli_chain_verify(X509 *x, STACK_OF(X509) * const *candidates, size_t n_candidates,
	enum cli_chain *ret, char **ret_error, size_t *ret_len);
/* The NIP in a subject serialNumber value ("NIP197803152005011002", or 18 digits), or NULL. */
char *cli_nip_from_serial_number(const char *value);

/*
 * cli-audit*.c: the audit log paraf-auditd keeps (R13, R14), read by `paraf audit verify`,
 * `show` and `report`; doc/audit-commands.md. Stored records are audit/aud.h's lines:
 * {"seq","time","uid","pid","prev","record":{…}}.
 */
#define CLI_AUDIT_DIR_DEFAULT "/var/lib/paraf/audit"
#define CLI_AUDIT_LINE_MAX (128u * 1024)  /* one stored line: the record and its envelope */
#define CLI_AUDIT_FILES_MAX 65536         /* log files in the directory */
#define CLI_REPORT_EXPIRY_DAYS 90         /* the report's look-ahead for expiring certificates */
#define CLI_REPORT_FILE_MAX (4u * 1024 * 1024) /* incidents.log, a certificate in certs/ */

/*
 * The audit sink of this process (the provisioning commands' records, ag-audit.h): the
 * [agent] audit settings of parafd's configuration, $PARAF_CONFIG else PARAF_SYSCONFDIR/
 * parafd.conf when it exists, else `required` on the default socket. Once; a configuration
 * that cannot be read is reported and the defaults are kept (fail closed).
 */
void cli_audit_sink_setup(void);

struct cli_audit_entry {
	uint64_t seq;
	const char *time;     /* when the service stored it */
	int64_t uid, pid;     /* the sender, from SO_PEERCRED */
	json_object *record;  /* what the sender sent (borrowed) */
	json_object *stored;  /* the whole stored line (borrowed) */
	const char *file;     /* the log file's name, and the line in it */
	uint64_t line;
};
typedef int (*cli_audit_fn)(const struct cli_audit_entry *e, void *data);
/*
 * Calls fn for every stored record in dir, oldest file and line first. -ENOENT when dir does
 * not exist; -EBADMSG for a line that is not a stored record, -EFBIG for one longer than
 * CLI_AUDIT_LINE_MAX (err names file and line); fn's negative return stops and is returned.
 */
int cli_audit_read(const char *dir, cli_audit_fn fn, void *data, char *err, size_t errsz);
/* UTC times as people type them: 2027-01-15, 2027-01-15T08:00:00Z, 2027-01-15T08:00,
 * "2027-01-15 08:00". With end_of_day, a date alone means the last second of that day. */
int cli_time_parse(const char *s, bool end_of_day, time_t *ret);
/* The record's own time (when the decision was made), else the stored time; -1 if none. */
time_t cli_audit_entry_time(const struct cli_audit_entry *e);

/* cli-audit-report.c: the yearly evaluation report (R14). */
struct pol_policy;
struct cli_report_cert {
	char id[65];
	time_t not_before, not_after;
	char subject_cn[128];
};
struct cli_report_log {
	bool checked;          /* aud_verify ran */
	bool intact;
	const char *fault;     /* aud_fault_to_string, or an error; NULL when intact */
	const char *detail, *file;
	uint64_t line, seq, records;
	const char *head;
};
struct cli_report_input {
	int year;
	time_t now;                      /* "expiring" is counted from here */
	const char *audit_dir, *policy_dir;
	const struct pol_policy *policy; /* owners.d and revoked.list; NULL: none */
	const char *incidents;           /* incidents.log's text, or NULL */
	const struct cli_report_cert *certs; /* certs/<id>.pem */
	size_t n_certs;
	struct cli_report_log log;
};
struct cli_report;
int cli_report_new(const struct cli_report_input *in, struct cli_report **ret);
struct cli_report *cli_report_free(struct cli_report *r);
/* Counts one stored record (outside the year: only seen). */
int cli_report_add(struct cli_report *r, const struct cli_audit_entry *e);
/* The report, schema "paraf-audit-report/1" (doc/audit-commands.md); a new reference. */
json_object *cli_report_json(struct cli_report *r);
/* The report as one self-contained, printable HTML page with inline SVG charts. */
int cli_report_html(json_object *report, struct pf_buf *out);
/* Reads certs/<id>.pem of a policy directory (files that are not certificates are skipped). */
int cli_report_certs_load(const char *policy_dir, struct cli_report_cert **ret, size_t *ret_n);

/*
 * cli-backup.c: `paraf admin backup` and `restore` (R15). The archive is POSIX ustar:
 * SHA256SUMS (sha256sum's format, for every other member), paraf-backup.info, then
 * policy/… (owners.d, certs, revoked.list, incidents.log, policy.conf, policy.d, anchors,
 * crl) and audit/… (the log directory). Never key material: *.key, *.pin and pins/ are left
 * out, and a file holding a PEM private key stops the backup.
 */
#define CLI_BACKUP_MEMBER_MAX (1ull << 32) /* bytes in one archived file */
#define CLI_BACKUP_MEMBERS_MAX 100000
struct cli_backup_opts {
	const char *policy_dir;
	const char *audit_dir;
	const char *archive;
	bool force;       /* backup: replace the archive; restore: replace differing files */
	time_t now;
	FILE *out;        /* what was done, for people (NULL: nothing printed) */
};
struct cli_backup_result {
	size_t files;           /* archived, or restored (written) */
	size_t skipped;         /* left out (key material) or already in place */
	uint64_t audit_records; /* in the archived log */
	char manifest_sha256[65]; /* SHA-256 of SHA256SUMS: the archive's fingerprint */
};
/* 0, or -errno with err saying what (-EPERM: key material found, with its file). */
int cli_backup_write(const struct cli_backup_opts *o, struct cli_backup_result *ret, char *err,
	size_t errsz);
/*
 * Everything is checked before anything is written: the archive's form, every member against
 * SHA256SUMS and every listed member present, no key material, the archived audit chain
 * (aud_verify), the archived policy as parafd would read it; then what would change. revoked.list
 * and incidents.log are merged (nothing is ever removed from them, R8, R9); an audit log here
 * that the archive's extends is extended, one the archive's does not continue is moved aside
 * (with force) and never deleted. -EBADMSG: damaged or tampered (err says where); -EEXIST:
 * files differ and force is not given (err lists them); -EBUSY: paraf-auditd has the log
 * open (its lock on the directory is held for the whole restore, so none starts meanwhile).
 */
int cli_backup_restore(const struct cli_backup_opts *o, struct cli_backup_result *ret, char *err,
	size_t errsz);
