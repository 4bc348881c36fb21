/*
 * The regulation as decisions (REGULATION.md, rules R1-R18). Everything here is pure: text in,
 * structs out; facts in, verdict out. Files, clocks, sockets and logind are the agent's
 * business, so every rule can be tested without a token, a clock or a login session.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/x509.h>

/* R6: the usage types of the regulation (Serang 8(5), Depok 11(4), Denpasar 8(5), Blitar 17).
 * The order is the wire order of the `usage` parameter. */
enum pol_usage {
	POL_USAGE_SIGNATURE = 1,
	POL_USAGE_EMAIL,
	POL_USAGE_TLS_CLIENT,
	POL_USAGE_TLS_SERVER,
	POL_USAGE_DOCUMENT_PROTECTION,
	_POL_USAGE_MAX,
};
#define POL_USAGE_BIT(u) (1u << (u))

/* NULL-terminated, in enum order from POL_USAGE_SIGNATURE. */
extern const char *const pol_usage_names[];
const char *pol_usage_to_string(enum pol_usage u);

/* R5: certificate types (Serang 7, Depok 10, Denpasar 7, Blitar 9). */
enum pol_type {
	POL_TYPE_NONE = 0,
	POL_TYPE_INDIVIDUAL,
	POL_TYPE_JABATAN,
	POL_TYPE_SYSTEM,
	_POL_TYPE_MAX,
};
#define POL_TYPE_BIT(t) (1u << (t))
const char *pol_type_to_string(enum pol_type t);
enum pol_type pol_type_from_string(const char *s);

enum pol_revocation_mode {
	POL_REVOCATION_REQUIRE = 0, /* no fresh CRL for the issuer: refuse (fail closed) */
	POL_REVOCATION_BEST_EFFORT,
};

enum pol_no_logind {
	POL_NO_LOGIND_DENY = 0,
	POL_NO_LOGIND_ALLOW,
};

#define POL_LIST_MAX 64     /* OIDs in one list */
#define POL_OWNERS_MAX 4096 /* registry entries */
#define POL_TEXT_MAX 256    /* one registry value */

struct pol_strv {
	char **v;
	size_t n;
};

struct pol_owner {
	char *file;        /* where it was read, for messages */
	char cert_id[65];  /* lower-case hex SHA-256 of the certificate */
	char *account;     /* the owner's local account */
	uid_t uid;         /* resolved by the loader; valid when uid_known */
	bool uid_known;
	enum pol_type type;
	char *name, *nip, *nik, *email, *position, *unit, *decree, *token_serial;
	/* provisioning (R4, R17, R18): an application is registered before its certificate
	 * exists; cert_id stays empty until the certificate is imported */
	char *application; /* the application's id: the owners.d file name without .conf */
	char *phone, *superior, *renews;
	char *key_id;      /* hex CKA_ID of the key generated on the token (`key`), or NULL */
};

struct pol_revoked {
	char cert_id[65];
	char *when;
	char *reason;
};

/* R1: the most documents one PIN may authorise, and [pin] max_batch's default: one sign
 * request's limit (the agent's AG_DOCUMENTS_MAX). */
#define POL_BATCH_MAX 1000

struct pol_policy {
	/* [types]: certificatePolicies OIDs that say a certificate's type (R5) */
	struct pol_strv type_oids[_POL_TYPE_MAX];
	/* [usage]: the type x usage matrix (R6), a bit per enum pol_usage */
	unsigned usage_matrix[_POL_TYPE_MAX];
	/* [signature]: extendedKeyUsage OIDs that allow document signature (R6) */
	struct pol_strv signature_ekus;
	/* [validity] (R7) */
	unsigned renew_warning_days;
	unsigned max_validity_days;
	bool allow_long_validity;
	/* [trust] and [revocation] (R8) */
	char *trust_anchors; /* a directory of PEM files */
	char *crl_dir;       /* a directory of CRLs (PEM or DER) */
	enum pol_revocation_mode revocation;
	/* [owner] (R1) */
	bool root_may_own;   /* root may be a registered owner (system certificates) */
	/* [session] (R1) */
	bool allow_remote_session;
	bool allow_inactive_session; /* no active local session: a background or cron process */
	enum pol_no_logind without_logind;
	/* [pin] (R1, R2) */
	unsigned pin_parameter_types; /* POL_TYPE_BIT()s whose PIN may come in the request */
	unsigned max_batch; /* 1..POL_BATCH_MAX */
	char *pinentry;
	unsigned pin_timeout; /* seconds the dialog waits */
	/* [registration] (R17): official e-mail domains; a domain matches itself and its
	 * subdomains */
	struct pol_strv email_domains;
	/* [keys] (R3): the key generated on the token at activation */
	bool key_rsa;           /* RSA 3072 instead of EC P-256 */
	/* [passphrase] (R2, R4) */
	unsigned passphrase_min_length;

	/* owners.d (R1, R5, R17) and the local revocation list (R8) */
	struct pol_owner *owners;
	size_t n_owners;
	struct pol_revoked *revoked;
	size_t n_revoked;
};

void pol_policy_init(struct pol_policy *p); /* the defaults, documented in doc/policy.md */
void pol_policy_release(struct pol_policy *p);
/* Applies one INI text (policy.conf or a drop-in) on top of p. On failure, ret_error says
 * which line of name and what is wrong, and p may be partly updated (discard it). */
int pol_policy_parse(struct pol_policy *p, const char *name, const char *text, char *ret_error,
	size_t error_size);
/* Parses one owners.d file into a new registry entry (uid not resolved). */
int pol_owner_parse(struct pol_policy *p, const char *name, const char *text, char *ret_error,
	size_t error_size);
/* Parses the local revocation list: "<cert id> <time> <reason> [note]" per line, '#' comments. */
int pol_revoked_parse(struct pol_policy *p, const char *name, const char *text, char *ret_error,
	size_t error_size);
const struct pol_owner *pol_owner_find(const struct pol_policy *p, const char *cert_id);
const struct pol_revoked *pol_revoked_find(const struct pol_policy *p, const char *cert_id);

/* Provisioning checks (pure). Each returns 0, or -EINVAL with ret_field naming the field at
 * fault and msg saying what was expected. */
int pol_registration_check(const struct pol_policy *p, const struct pol_owner *o,
	const char **ret_field, char *msg, size_t msgsz);
/* R2, R4: the passphrase the owner chooses at activation: long enough, within the token's
 * limits (0 = unknown), not one repeated character, not the NIK, the NIP, a birth date or the
 * activation code. */
int pol_passphrase_check(const struct pol_policy *p, const struct pol_owner *o,
	const char *pass, size_t len, const char *activation_code, unsigned token_min,
	unsigned token_max, char *msg, size_t msgsz);
/* The owners.d text of an entry, as pol_owner_parse() reads it back. */
char *pol_owner_format(const struct pol_owner *o);

/* What a certificate says about itself, and what its chain and CRLs say about it. */
enum pol_rev_state {
	POL_REV_GOOD = 0,
	POL_REV_REVOKED,      /* on a CRL */
	POL_REV_CRL_MISSING,  /* no CRL from the issuer */
	POL_REV_CRL_STALE,    /* the issuer's CRL is past its nextUpdate */
	POL_REV_UNCHECKED,    /* the chain did not verify, so revocation could not be asked */
};

struct pol_cert_facts {
	char id[65];
	char subject_cn[128];
	time_t not_before, not_after;
	bool has_key_usage;
	uint32_t key_usage; /* OpenSSL's KU_* bits */
	bool has_eku;
	struct pol_strv ekus;     /* dotted OIDs */
	struct pol_strv policies; /* certificatePolicies, dotted OIDs */
	bool has_email;           /* rfc822Name or emailAddress */
	bool is_ca;
	/* from pol_trust_check() */
	bool trusted;
	char trust_error[128];
	enum pol_rev_state revocation;
};

/* Pure: DER in, facts out (trust fields left for pol_trust_check). */
int pol_cert_facts_from_der(const uint8_t *der, size_t n, struct pol_cert_facts *ret);
/* The same from a certificate already decoded from der (its id is der's SHA-256). */
int pol_cert_facts_from_x509(X509 *x, const uint8_t *der, size_t n, struct pol_cert_facts *ret);
void pol_cert_facts_release(struct pol_cert_facts *f);

/* The chain and CRL check at a given time, against anchors and CRLs already in memory. */
struct pol_trust {
	STACK_OF(X509) *anchors;
	STACK_OF(X509) *intermediates;
	STACK_OF(X509_CRL) *crls;
};
void pol_trust_check(const struct pol_trust *t, X509 *cert, time_t now,
	struct pol_cert_facts *facts);

enum pol_type pol_cert_type(const struct pol_policy *p, const struct pol_cert_facts *f,
	const struct pol_owner *owner);

/* Who asks, and from where (facts the agent gathered from SO_PEERCRED and logind). */
struct pol_peer {
	uid_t uid;
	pid_t pid;
};

struct pol_session {
	bool logind;  /* logind runs on this machine */
	bool found;   /* the peer belongs to a login session */
	bool remote;
	bool active;
};

struct pol_request {
	enum pol_usage usage;
	size_t n_documents;
	bool pin_parameter; /* the PIN came in the request */
	bool system_agent;  /* asked of the system-mode agent (parafd --system), which serves
			       other accounts' services without a PIN dialog */
};

struct pol_verdict {
	bool allow;
	const char *rule;   /* "R1"... or NULL */
	const char *reason; /* stable token: see doc/policy.md */
	char message[256];
	enum pol_type type;
	const struct pol_owner *owner;
};

/* The one decision before every private-key operation. Pure: no I/O, no clock, no globals. */
void pol_decide(const struct pol_policy *p, const struct pol_request *req,
	const struct pol_cert_facts *cert, const struct pol_peer *peer,
	const struct pol_session *session, time_t now, struct pol_verdict *ret);

/* certificates.list: valid, expiring, expired, not-yet-valid, revoked, untrusted, unregistered,
 * non-compliant; with the reason and the days left (negative once expired). */
struct pol_status {
	const char *status;
	const char *reason;
	long days_left;
	unsigned usages; /* allowed usages: matrix of its type, narrowed by its extensions */
};
void pol_cert_status(const struct pol_policy *p, const struct pol_cert_facts *cert, time_t now,
	struct pol_status *ret);

/* Whether the certificate's own extensions allow the usage (R6), and if not, why. */
bool pol_usage_in_certificate(const struct pol_policy *p, const struct pol_cert_facts *cert,
	enum pol_usage u, const char **ret_why);
