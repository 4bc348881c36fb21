/*
 * Provisioning (issue 5; REGULATION.md R2, R4, R7, R8, R9, R13, R17, R18): the operator's
 * commands (`paraf admin register|init-token|import-cert|revoke|incident|transfer|list`) and the
 * owner's (`paraf activate`, `paraf renew`). The operator registers the applicant, initialises
 * the token and imports the certificate; the owner, from their own account only, turns the
 * one-time activation code into a passphrase of their own choosing, has the key generated on
 * the token and signs the certificate request with it (R4: never through a proxy).
 *
 * The token is reached only through paraf-token-helper (a struct tok_link), secrets come only
 * from the pinentry dialog paraf runs on the caller's own terminal or display, or, for the
 * SO PIN, from a root-only credential file; they live in pf_secret and are wiped (R2). Every
 * step writes one audit record (ag_audit_write, on stderr) that never holds a secret.
 *
 * cli-admin-common.c holds the machinery every command shares, cli-admin-check.c the pure
 * pieces the unit tests reach (test/test-cli-admin.c), cli-owner-csr.c the PKCS#10 request.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/x509.h>

#include "ag-policy.h"
#include "cli.h"
#include "pol.h"
#include "pf-secret.h"
#include "tok.h"

/* Limits, each checked before what it bounds is used. */
#define CLI_PROV_MODULES_MAX 16        /* --module options */
#define CLI_PROV_NOTE_MAX 200          /* a --note on a revocation or an incident */
#define CLI_PROV_APP_ID_MAX 96         /* an application id */
#define CLI_PROV_CERT_FILE_MAX (256u * 1024) /* CERT.pem, CHAIN.pem */
#define CLI_PROV_CHAIN_MAX 16          /* certificates in CHAIN.pem */
#define CLI_PROV_CODE_DIGITS 12        /* the activation code's usual length */
#define CLI_PROV_CODE_MAX 32           /* its longest, for a token that wants long PINs */
#define CLI_PROV_KEY_ID_LEN 16         /* bytes of a CKA_ID made by paraf */
#define CLI_PROV_TIMEOUT_MS 60000      /* one token operation ... */
#define CLI_PROV_GENERATE_TIMEOUT_MS 180000 /* ... but an RSA 3072 key pair on a card is slow */
#define CLI_PROV_CSR_MAX (64u * 1024)  /* the PEM request written */

/* The subcommands of `paraf admin`. */
extern const struct cli_cmd cli_cmd_admin_register, cli_cmd_admin_init_token,
	cli_cmd_admin_import_cert, cli_cmd_admin_revoke, cli_cmd_admin_incident,
	cli_cmd_admin_transfer, cli_cmd_admin_list;
/* cli-backup.c (R15) */
extern const struct cli_cmd cli_cmd_admin_backup, cli_cmd_admin_restore;

/* What every provisioning command shares: its options and what it opened. */
struct cli_prov {
	const struct cli_cmd *cmd;  /* for messages: cmd->name is "admin register"... */
	const char *method;         /* the audit record's method: "admin.register"... */
	const char *policy_dir;     /* --policy, else PARAF_SYSCONFDIR */
	bool policy_given;          /* --policy: test mode (files of the caller accepted) */
	char *modules[CLI_PROV_MODULES_MAX];
	size_t n_modules;
	const char *pinentry;       /* --pinentry, else the policy's, else /usr/bin/pinentry */
	const char *so_pin_file;    /* --so-pin-file */
	int json;
	const char *audit_cert;     /* the certificate at stake, for records that name none */
	struct ag_policy *policy;   /* after cli_prov_policy_load() */
	struct tok_link *link;      /* after cli_prov_link() */
};

void cli_prov_release(struct cli_prov *pv);

/* Parses the options a provisioning command shares: 'P' --policy, 'M' --module,
 * 'E' --pinentry, 'S' --so-pin-file, and the common ones. CLI_OPT_CONTINUE or the exit status. */
#define CLI_PROV_OPT_POLICY { "policy", required_argument, NULL, 'P' }
#define CLI_PROV_OPT_MODULE { "module", required_argument, NULL, 'M' }
#define CLI_PROV_OPT_PINENTRY { "pinentry", required_argument, NULL, 'E' }
#define CLI_PROV_OPT_SO_PIN_FILE { "so-pin-file", required_argument, NULL, 'S' }
int cli_prov_opt(struct cli_prov *pv, struct cli_ctx *ctx, int c, char **argv);

/* Reads the policy directory as parafd does (R13 checked); prints the error. Exit status. */
int cli_prov_policy_load(struct cli_prov *pv);

/*
 * The operator's commands: root, a member of the group `paraf-admin`, or (test mode, --policy
 * DIR) the owner of DIR. Prints and audits a refusal (R13); exit status.
 */
int cli_prov_operator_check(struct cli_prov *pv);
/*
 * The owner's commands (R4): only from the registered account itself, root included; root's
 * own registration needs `[owner] root_may_own`. Prints and audits a refusal; exit status.
 */
int cli_prov_owner_check(struct cli_prov *pv, const struct pol_owner *o);

/* The registry entry of an application (borrowed from pv->policy), or NULL. */
const struct pol_owner *cli_prov_application_find(const struct cli_prov *pv, const char *id);
/* The registry entry of a certificate: all 64 hex digits or a unique prefix of at least
 * CLI_CERT_PREFIX_MIN; prints why not. Exit status. */
int cli_prov_cert_find(const struct cli_prov *pv, const char *arg, const struct pol_owner **ret);
/*
 * Writes a registry entry to path (owners.d/<application>.conf) atomically, mode 0644: a new
 * one never over an existing file (-EEXIST), an update in place. The text is read back with
 * pol_owner_parse() first, so parafd never meets an entry it would refuse.
 */
int cli_prov_registry_write(const char *path, const struct pol_owner *o, bool overwrite,
	char *err, size_t errsz);
/* Whether the caller could rewrite an existing entry (test mode, or root's own registration
 * with root_may_own): the owner's commands record what they can. */
bool cli_prov_registry_writable(const struct pol_owner *o);
/* A copy of *o with every string duplicated (release with cli_prov_owner_release). */
int cli_prov_owner_copy(const struct pol_owner *o, struct pol_owner *ret);
void cli_prov_owner_release(struct pol_owner *o);

/* One audit record: who is the caller. Never a secret (R2). It goes where parafd's records go
 * (ag_audit_commit(), the sink cli_audit_sink_setup() configures: paraf-auditd, or the spool,
 * or the journal), with a copy on stderr ("parafd: audit {json}"). */
struct cli_prov_audit {
	const struct pol_owner *owner; /* the application's entry, or NULL */
	const char *certificate;       /* the certificate's id, or NULL (the entry's) */
	bool allow;
	const char *rule, *reason;
	const char *message;           /* for people: names the application and the token */
	const char *outcome;           /* after an allowed step */
};
void cli_prov_audit(const struct cli_prov *pv, const struct cli_prov_audit *a);

/* Prints "paraf: <cmd>: <message>" and writes a deny record. Returns the exit status. */
int cli_prov_refuse(const struct cli_prov *pv, const struct pol_owner *o, int status,
	const char *rule, const char *reason, const char *fmt, ...) _printf_(6, 7);

/*
 * The trusted dialog (ag-pinentry.c), run by paraf on the caller's own terminal (ttyname and
 * $TERM) or display ($DISPLAY, $XAUTHORITY, $WAYLAND_DISPLAY), on a private sd-event loop until
 * it answers. 0 and a non-empty secret; -ECANCELED (cancelled, or nothing typed), -ETIMEDOUT,
 * -ENOENT (no pinentry program), other -errno. error: a SETERROR line, or NULL.
 */
int cli_prov_ask(struct cli_prov *pv, const char *title, const char *description,
	const char *prompt, const char *error, struct pf_secret **ret);
/* Prints why a dialog gave no secret; exit status. */
int cli_prov_ask_failed(const struct cli_prov *pv, const struct pol_owner *o, const char *what,
	int r);

/*
 * The SO PIN: --so-pin-file FILE (a regular file owned by root or the caller, mode 0600 or
 * stricter), else $CREDENTIALS_DIRECTORY/paraf-so-pin (same checks), else the dialog. Never argv
 * nor the environment (R2). Exit status; prints why not.
 */
int cli_prov_so_pin(struct cli_prov *pv, const struct pol_owner *o, struct pf_secret **ret);
/* The checks on a secret file, for the tests: 0, -EPERM (owner or mode), -EINVAL (not a
 * regular file), -errno. st from fstat of the opened file. */
int cli_prov_secret_file_ok(const struct stat *st, uid_t caller);

/* Starts the token helper (tok_helper_default_path, the --module list). Exit status. */
int cli_prov_link(struct cli_prov *pv);
/* One provisioning request and its answer. -errno for a helper that failed (printed). */
int cli_prov_admin_call(struct cli_prov *pv, const struct tok_admin_req *req,
	unsigned timeout_ms, struct tok_admin_reply *ret);
/* The token whose serial is given, from a fresh LIST: its id (TOK_ID_LEN hex) and flags.
 * -ENOENT when not present (printed by the caller), -errno. */
int cli_prov_token_find(struct cli_prov *pv, const char *serial, char **ret_id,
	uint32_t *ret_flags);
/* Signs one SHA-256 digest with the token key: the signature as DER for ECDSA, raw for RSA
 * PKCS#1 v1.5. On a token refusal *ret_reply holds err, pin_flags and detail (release it). */
int cli_prov_sign(struct cli_prov *pv, const char *token_id, const uint8_t *ck_id,
	size_t ck_id_len, bool ec, const struct pf_secret *pin, const uint8_t *digest,
	uint8_t **ret_sig, size_t *ret_len, struct tok_sign_reply *ret_reply);
/* A token's refusal for people, with the PIN's tries status; the text never holds a secret. */
void cli_prov_tok_message(uint32_t err, uint32_t pin_flags, const char *detail, char *buf,
	size_t n);

/* Appends one line to <policy>/revoked.list (O_APPEND, fsync, created 0644). */
int cli_prov_revoked_append(const struct cli_prov *pv, const char *line);
/* The same for <policy>/incidents.log (R9), which nothing shortens either. */
int cli_prov_incident_append(const struct cli_prov *pv, const char *line);
/*
 * Revokes cert_id locally (R8): refuses what is revoked already (printed: "already revoked on
 * … (…)"), appends, audits. Exit status.
 */
int cli_prov_revoke(struct cli_prov *pv, const char *cert_id, const char *reason,
	const char *note, const char *rule);

/* --- cli-admin-check.c: pure pieces ------------------------------------------------------ */

/* R8/R9: the reasons `paraf admin revoke --reason` takes. NULL-terminated. */
extern const char *const cli_revoke_reasons[];
bool cli_revoke_reason_valid(const char *reason);
/* The reasons that are security incidents (R9). */
bool cli_revoke_reason_is_incident(const char *reason);
/* R9: an incident's kind to the revocation reason of its certificates; NULL for an unknown
 * kind. */
const char *cli_incident_reason(const char *kind);
/* One revoked.list line, "<id> <time> <reason>[ <note>]\n". -EINVAL for a bad id, reason or a
 * note with control characters or longer than CLI_PROV_NOTE_MAX. */
int cli_revoked_line(const char *cert_id, time_t when, const char *reason, const char *note,
	char **ret);
/* A single line of printable text of at most max bytes (notes, serials): 1 or 0. */
bool cli_text_line_ok(const char *s, size_t max);

/* An application id: "<account>-<YYYYMMDD>-<4 hex>" from the account, the UTC date of now and
 * two random bytes. -EINVAL for an account that is not a valid user name. */
int cli_application_id(const char *account, time_t now, const uint8_t rnd[2], char *buf,
	size_t n);
/* 1 when s is a well-formed application id (a file name: [A-Za-z0-9._-], no leading dot). */
bool cli_application_id_valid(const char *s);
/* 1 when s is a user name paraf accepts ([a-z_][a-z0-9_.-]*, at most 32, optional final $). */
bool cli_account_name_valid(const char *s);

/* The activation code's length for a token's PIN limits (0: unknown). 0 when none fits. */
size_t cli_activation_code_len(unsigned min_pin, unsigned max_pin);
/* n decimal digits, uniform, from getrandom(). buf has n + 1 bytes. */
int cli_activation_code_make(size_t n, char *buf);
/* "123456789012" as "1234-5678-9012" for people; buf of at least 2 * strlen(code). */
void cli_activation_code_format(const char *code, char *buf, size_t n);
/* What the owner typed, without spaces and hyphens (they may copy the grouping), into a new
 * secret. -EINVAL when anything but digits remains. */
int cli_activation_code_normalize(const struct pf_secret *typed, struct pf_secret **ret);

/* R2, R4: whether a passphrase holds the activation code's digits in order, whatever stands
 * between them (the operator saw the code printed in groups). */
bool cli_passphrase_holds_code(const char *pass, size_t len, const char *code);

/* The token label for a registration: "PARAF <name>" cut to 32 bytes on a UTF-8 boundary. */
void cli_token_label(const char *name, char *buf, size_t n);
/*
 * The CKA_ID of an application's key: the first CLI_PROV_KEY_ID_LEN bytes of
 * SHA-256("paraf-key:" application). Derived, not stored, because the owner who generates the
 * key cannot write the registry (R13) while the operator who imports the certificate must find
 * the key again; application ids carry random bits, so two applications never share one.
 */
void cli_key_id(const char *application, uint8_t out[CLI_PROV_KEY_ID_LEN]);
/* The CKA_ID of an entry's key: its recorded `key`, else cli_key_id() of its application.
 * -EINVAL for a recorded key longer than max bytes, or without an application to derive from. */
int cli_key_id_of(const struct pol_owner *o, uint8_t *out, size_t max, size_t *ret_len);

/*
 * import-cert (R5, R6, R7, R17, R18): the certificate against the registration and the
 * policy: subject CN = name, serialNumber holding the NIP; the OU (unit), title (position)
 * and e-mail address, when the certificate names them, = the registered ones; the type
 * (certificatePolicies per [types]); at least one usage of the type allowed by its
 * extensions; validity <= max_validity_days (unless allow_long_validity); not expired at now.
 * 0, or -EINVAL with ret_field naming what differs ("name", "nip", "unit", "position",
 * "email", "type", "usage", "validity") and msg saying how.
 */
int cli_cert_match_registration(const struct pol_policy *p, const struct pol_owner *o, X509 *x,
	time_t now, const char **ret_field, char *msg, size_t msgsz);

/* The status `paraf admin list` shows for an entry: pending, active, revoked, superseded,
 * expired, expiring (…). facts NULL when no copy of the certificate is at hand. */
struct cli_entry_status {
	const char *status;
	bool days_known;
	long days_left;
	const char *reason; /* or NULL; may point into buf */
	char buf[160];
};
void cli_entry_status(const struct pol_policy *p, const struct pol_owner *o,
	const struct pol_cert_facts *facts, time_t now, struct cli_entry_status *ret);

/* --- cli-owner-csr.c: the PKCS#10 request signed by the token key (R3, R16) -------------- */

struct cli_csr_subject {
	const char *name;     /* CN */
	const char *nip;      /* serialNumber "NIP<nip>" */
	const char *email;    /* emailAddress (and a requested subjectAltName), or NULL */
	const char *position; /* title, for jabatan, or NULL */
	const char *unit;     /* OU, or NULL */
	const char *org;      /* O, or NULL */
	const char *country;  /* C, "ID" */
	bool decrypt;         /* the key may also decrypt: keyEncipherment requested */
};

/* Signs a SHA-256 digest: ECDSA as DER, RSA as the PKCS#1 v1.5 signature. */
typedef int (*cli_csr_sign_fn)(void *data, const uint8_t digest[32], uint8_t **ret_sig,
	size_t *ret_len);

/*
 * Builds the request for the public key spki (DER SubjectPublicKeyInfo, EC or RSA): the
 * CertificationRequestInfo with OpenSSL, its DER hashed with SHA-256 and signed by sign (the
 * token), the signature put in and checked against spki before anything is returned. PEM.
 * -EINVAL with *ret_field naming a subject field that does not fit X.520's bounds (CN, OU and
 * title at most 64 characters); -EBADMSG for an spki that is not a public key; -EBADE when the
 * signature does not verify; a sign error as it comes.
 */
int cli_csr_build(const struct cli_csr_subject *s, const uint8_t *spki, size_t spki_len,
	cli_csr_sign_fn sign, void *data, char **ret_pem, size_t *ret_len, const char **ret_field);
