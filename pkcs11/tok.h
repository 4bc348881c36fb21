/*
 * Token access. Two halves share this header:
 *
 *  - the helper side (tok-p11.c), which loads PKCS#11 modules and talks to tokens, runs only
 *    in the paraf-token-helper process: vendor module code never runs inside parafd;
 *  - the message side (tok-msg.c), plain data in and out, used by both processes to speak
 *    over their socketpair, and the spawn side (tok-helper.c) used by parafd.
 *
 * Every message is a frame: u32 length, then u32 type, then the body (pf-buf.h encoding).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pf-buf.h"
#include "pf-secret.h"

#define TOK_FRAME_MAX PF_BUF_MAX
#define TOK_SIGN_MAX 1000 /* digests in one sign message (the agent's AG_DOCUMENTS_MAX) */
/* TOK_MSG_SIGN_STREAM sends a part once this many signatures wait, or once the oldest has
 * waited TOK_SIGN_PART_USEC (a smartcard's 0.1-1 s a signature: each one as it comes). */
#define TOK_SIGN_PART_MAX 32
#define TOK_SIGN_PART_USEC 20000
#define TOK_DIGEST_MAX 64
#define TOK_ID_LEN 16 /* hex digits of a token id */

enum tok_msg_type {
	TOK_MSG_LIST = 1,
	TOK_MSG_LIST_REPLY = 2,
	TOK_MSG_SIGN = 3,
	TOK_MSG_SIGN_REPLY = 4,
	/* Provisioning (paraf admin, paraf activate/renew): one request, one TOK_MSG_ADMIN_REPLY. */
	TOK_MSG_INIT_TOKEN = 5,  /* C_InitToken on a blank token: so_pin, label */
	TOK_MSG_INIT_PIN = 6,    /* C_Login(SO) + C_InitPIN: the one-time activation code */
	TOK_MSG_SET_PIN = 7,     /* C_Login(USER, old) + C_SetPIN(old, new): the owner's passphrase */
	TOK_MSG_GENERATE = 8,    /* C_GenerateKeyPair on the token (R3): returns the public key */
	TOK_MSG_PUBKEY = 9,      /* the public key (SubjectPublicKeyInfo DER) with a CKA_ID */
	TOK_MSG_WRITE_CERT = 10, /* C_CreateObject: a certificate next to its key (same CKA_ID) */
	TOK_MSG_ADMIN_REPLY = 11,
	/* Hotplug: a light look at the token set (no certificates, no sessions). The body is u32
	 * force; the reply is u32 changed, then a tok_list of tokens only when changed is 1. The
	 * helper first asks each module C_WaitForSlotEvent(CKF_DONT_BLOCK): CKR_NO_EVENT from
	 * every module means nothing changed (changed = 0, unless force, or this is the helper's
	 * first look); an event, or a module without slot events, means enumerating the slots. */
	TOK_MSG_WATCH = 12,
	TOK_MSG_WATCH_REPLY = 13,
	/* Signing with the signatures sent as they are made (parafd's batches): the body is a
	 * TOK_MSG_SIGN's; the helper answers with TOK_MSG_SIGN_PART frames (u32 first, then a
	 * count and the signatures: first = how many came in earlier parts), then one
	 * TOK_MSG_SIGN_REPLY with the rest. parafd assembles each part while the token makes
	 * the next, so a batch waits for the token and little else. On an error the reply
	 * carries it and no signatures, and every part already sent is void. */
	TOK_MSG_SIGN_STREAM = 14,
	TOK_MSG_SIGN_PART = 15,
};

/* Outcomes, converted from CK_RV once at the helper boundary (tok_err_from_rv). */
enum tok_err {
	TOK_OK = 0,
	TOK_ERR_INTERNAL,
	TOK_ERR_MODULE,            /* no module could be loaded or initialised */
	TOK_ERR_TOKEN_NOT_PRESENT,
	TOK_ERR_TOKEN_REMOVED,     /* removed during the operation */
	TOK_ERR_KEY_NOT_FOUND,
	TOK_ERR_KEY_EXTRACTABLE,   /* R3 */
	TOK_ERR_PIN_REQUIRED,
	TOK_ERR_PIN_INCORRECT,
	TOK_ERR_PIN_LOCKED,
	TOK_ERR_PIN_INVALID,
	TOK_ERR_MECHANISM,
	TOK_ERR_DEVICE,
	_TOK_ERR_MAX,
};

/* Token PIN flags, independent of the CKF_ values. */
enum {
	TOK_PIN_INITIALIZED = 1 << 0,
	TOK_PIN_COUNT_LOW = 1 << 1,
	TOK_PIN_FINAL_TRY = 1 << 2,
	TOK_PIN_LOCKED = 1 << 3,
	TOK_PIN_TO_BE_CHANGED = 1 << 4,
	TOK_LOGIN_REQUIRED = 1 << 5,
	TOK_PROTECTED_AUTH_PATH = 1 << 6,
};

enum tok_mech {
	TOK_MECH_RSA_PKCS = 1, /* RSASSA-PKCS1-v1_5 over a DigestInfo built by the helper */
	TOK_MECH_RSA_PSS = 2,  /* CKM_RSA_PKCS_PSS, MGF1 with the same hash, salt = hash length */
	TOK_MECH_ECDSA = 3,    /* CKM_ECDSA; the reply is r || s as the token gives it */
};

enum tok_hash {
	TOK_HASH_SHA256 = 1,
	TOK_HASH_SHA384 = 2,
	TOK_HASH_SHA512 = 3,
};

struct tok_blob {
	uint8_t *p;
	size_t n;
};

struct tok_token {
	char *id; /* TOK_ID_LEN hex digits of SHA-256(manufacturer, model, serial) */
	char *label;
	char *serial;
	char *manufacturer;
	char *model;
	char *module; /* the module's file name */
	char *slot;   /* the slot's description: for a card, the reader's name (e.g. "Feitian
	                 ePass2003 00 00"), which `paraf devices` matches to a USB device */
	uint32_t flags; /* TOK_PIN_*, TOK_LOGIN_REQUIRED */
};

struct tok_cert {
	char *token_id;
	char *label;
	struct tok_blob ck_id;
	struct tok_blob der;
};

struct tok_list {
	uint32_t err;
	struct tok_token *tokens;
	size_t n_tokens;
	struct tok_cert *certs;
	size_t n_certs;
};

struct tok_sign_req {
	char *token_id;
	struct tok_blob ck_id;
	uint32_t mech; /* enum tok_mech */
	uint32_t hash; /* enum tok_hash */
	struct pf_secret *pin; /* may be NULL: then only tokens that need no login work */
	struct tok_blob *digests;
	size_t n_digests;
};

struct tok_sign_reply {
	uint32_t err;        /* enum tok_err */
	uint32_t ck_rv;      /* the PKCS#11 value behind err, for messages */
	uint32_t pin_flags;  /* TOK_PIN_* read after a failed login */
	uint32_t logins;     /* C_Login calls made (1, or 1 + one per signature for
	                        CKA_ALWAYS_AUTHENTICATE keys) */
	char *detail;        /* short lower-case text, never secret */
	struct tok_blob *sigs;
	size_t n_sigs;
};

/* Provisioning requests. Which fields are used depends on the message type; secrets are
 * pf_secret (wiped). A token is named by its id (TOK_ID_LEN hex) or, for INIT_TOKEN, by
 * `serial` of a blank token, or the first blank token when serial is empty.
 *
 * On the wire each type carries only its own fields (the encoder drops the others, so a secret
 * never travels where it is not used); the decoder refuses a missing required field, an empty
 * secret and anything over the caps below:
 *   INIT_TOKEN  serial (may be ""), so_pin, label (1..TOK_TOKEN_LABEL_MAX bytes)
 *   INIT_PIN    token_id, so_pin, pin (the activation code)
 *   SET_PIN     token_id, pin (old), new_pin
 *   GENERATE    token_id, pin (may be NULL: protected authentication path), key_kind, ck_id,
 *               label (may be ""), decrypt (0 or 1; 1 only makes sense for RSA)
 *   PUBKEY      token_id, ck_id
 *   WRITE_CERT  token_id, pin (may be NULL, as for GENERATE), ck_id, der, label (may be "")
 * Labels are printable text (no control bytes). */
#define TOK_TOKEN_LABEL_MAX 32    /* CK_TOKEN_INFO.label */
#define TOK_SERIAL_MAX 16         /* CK_TOKEN_INFO.serialNumber */
#define TOK_CKA_LABEL_MAX 128     /* CKA_LABEL of a key or certificate */
#define TOK_CKA_ID_MAX 64         /* CKA_ID */
#define TOK_CERT_MAX (64 * 1024)  /* a certificate's DER */
#define TOK_SPKI_MAX (16 * 1024)  /* a SubjectPublicKeyInfo's DER */
enum tok_key_kind {
	TOK_KEY_RSA_3072 = 1,
	TOK_KEY_EC_P256 = 2,
};

struct tok_admin_req {
	uint32_t type;           /* enum tok_msg_type */
	char *token_id;          /* all but INIT_TOKEN */
	char *serial;            /* INIT_TOKEN: the blank token's serial, or "" */
	char *label;             /* INIT_TOKEN: the new token label; GENERATE, WRITE_CERT: CKA_LABEL */
	struct pf_secret *so_pin;  /* INIT_TOKEN, INIT_PIN */
	struct pf_secret *pin;     /* INIT_PIN: the activation code; SET_PIN: old; GENERATE,
				      WRITE_CERT: the user PIN */
	struct pf_secret *new_pin; /* SET_PIN */
	struct tok_blob ck_id;     /* GENERATE, PUBKEY, WRITE_CERT */
	uint32_t key_kind;         /* GENERATE: enum tok_key_kind */
	uint32_t decrypt;          /* GENERATE: also CKA_DECRYPT/CKA_UNWRAP (types that need it) */
	struct tok_blob der;       /* WRITE_CERT: the certificate */
};

/* What each operation answers besides err (which is TOK_OK or the refusal). Every operation
 * that found the token says its PIN length limits; a PIN outside them is refused with
 * TOK_ERR_PIN_INVALID before the token sees it; a refused login gives its PIN error (usually
 * TOK_ERR_PIN_INCORRECT) with pin_flags; a token id nobody has gives TOK_ERR_TOKEN_NOT_PRESENT.
 *   INIT_TOKEN  token_id, serial of the token initialised; refused with
 *               TOK_ERR_TOKEN_NOT_PRESENT when no blank token (with that serial) is present, and
 *               then exists = 1 (with that token's token_id and serial) when the named token is
 *               initialised already: re-initialising would destroy its keys
 *   INIT_PIN    refused with exists = 1 when the user PIN is set already: an operator resetting
 *               it would hold a working PIN for the owner's key (R1, R4)
 *   SET_PIN     nothing more (a wrong old PIN: TOK_ERR_PIN_INCORRECT with pin_flags)
 *   GENERATE    spki; refused with exists = 1 when an object with the CKA_ID exists, with
 *               TOK_ERR_MECHANISM for an EC key with decrypt; a token that did not keep the key
 *               sensitive and non-extractable: TOK_ERR_KEY_EXTRACTABLE (both new objects
 *               destroyed, R3). The public key is made CKA_PRIVATE false: PUBKEY and LIST need
 *               no login.
 *   PUBKEY      spki; TOK_ERR_KEY_NOT_FOUND when no public key object with the CKA_ID is visible
 *   WRITE_CERT  refused with exists = 1 when a certificate with the CKA_ID exists, with
 *               TOK_ERR_KEY_NOT_FOUND when no private key has the CKA_ID or the certificate's
 *               public key is not that key's, with TOK_ERR_INTERNAL when der is not one X.509
 *               certificate (a bad request, as for SIGN)
 * tok_err has no "exists" outcome of its own: such refusals other than INIT_TOKEN's carry
 * TOK_ERR_DEVICE (the token's state refuses the operation) and exists = 1; `detail` says what
 * exactly, in words fit for the operator. min_pin/max_pin are 0 when the token does not say
 * or was not found. */
struct tok_admin_reply {
	uint32_t err;         /* enum tok_err */
	uint32_t ck_rv;
	uint32_t pin_flags;   /* after a failed login: TOK_PIN_* of the PIN refused (the SO PIN's
				 COUNT_LOW/FINAL_TRY/LOCKED for a failed SO login) */
	char *detail;         /* short lower-case text, never secret */
	char *token_id;       /* INIT_TOKEN: the new token's id */
	char *serial;         /* INIT_TOKEN: its serial */
	struct tok_blob spki; /* GENERATE, PUBKEY: SubjectPublicKeyInfo DER */
	uint32_t min_pin, max_pin; /* the token's PIN length limits (ulMinPinLen, ulMaxPinLen) */
	uint32_t exists;      /* 1: refused because what was to be made is there already */
};

/* tok-err.c */
const char *tok_err_to_string(enum tok_err e);
/* The one place a CK_RV becomes an outcome. */
enum tok_err tok_err_from_rv(unsigned long rv);
size_t tok_hash_len(uint32_t hash);
const char *tok_hash_name(uint32_t hash);

/* tok-msg.c: framing and (de)serialisation. Encoders append to b; decoders return -EBADMSG
 * on anything malformed and leave *ret untouched. */
void tok_frame_begin(struct pf_buf *b, uint32_t type); /* reserves the length field */
int tok_frame_end(struct pf_buf *b);                    /* fills it in */
/* Reads one whole frame from a blocking fd (helper side). -EPIPE on EOF. */
int tok_frame_read(int fd, struct pf_buf *ret_body, uint32_t *ret_type);
int tok_write_all(int fd, const void *p, size_t n);

void tok_list_encode(struct pf_buf *b, const struct tok_list *l);
int tok_list_decode(const uint8_t *p, size_t n, struct tok_list *ret);
void tok_list_release(struct tok_list *l);
/* One entry's strings and blobs (not the entry itself). */
void tok_token_release(struct tok_token *t);
void tok_cert_release(struct tok_cert *c);

void tok_watch_req_encode(struct pf_buf *b, uint32_t force);
int tok_watch_req_decode(const uint8_t *p, size_t n, uint32_t *ret_force);
/* changed 0: l is not sent (may be NULL); the decoder then gives an empty list. */
void tok_watch_reply_encode(struct pf_buf *b, uint32_t changed, const struct tok_list *l);
int tok_watch_reply_decode(const uint8_t *p, size_t n, uint32_t *ret_changed,
	struct tok_list *ret);

void tok_sign_req_encode(struct pf_buf *b, const struct tok_sign_req *r);
int tok_sign_req_decode(const uint8_t *p, size_t n, struct tok_sign_req *ret);
void tok_sign_req_release(struct tok_sign_req *r);

void tok_sign_reply_encode(struct pf_buf *b, const struct tok_sign_reply *r);
/* TOK_MSG_SIGN_PART: sigs[0..n) are the signatures of digests first, first + 1, ... */
void tok_sign_part_encode(struct pf_buf *b, size_t first, const struct tok_blob *sigs, size_t n);
/* Decodes into ret->sigs / ret->n_sigs (released with tok_sign_reply_release); a part has at
 * least one signature and first + n never exceeds TOK_SIGN_MAX. */
int tok_sign_part_decode(const uint8_t *p, size_t n, size_t *ret_first,
	struct tok_sign_reply *ret);
int tok_sign_reply_decode(const uint8_t *p, size_t n, struct tok_sign_reply *ret);
void tok_sign_reply_release(struct tok_sign_reply *r);

/* Appends the body of r->type's request (the caller begins the frame with r->type) and sets
 * b->wipe when it carries a secret. The decoder takes the frame's type; it refuses a type that
 * is not a provisioning request. */
void tok_admin_req_encode(struct pf_buf *b, const struct tok_admin_req *r);
int tok_admin_req_decode(uint32_t type, const uint8_t *p, size_t n, struct tok_admin_req *ret);
void tok_admin_req_release(struct tok_admin_req *r);
void tok_admin_reply_encode(struct pf_buf *b, const struct tok_admin_reply *r);
int tok_admin_reply_decode(const uint8_t *p, size_t n, struct tok_admin_reply *ret);
void tok_admin_reply_release(struct tok_admin_reply *r);

/* A synchronous link to a helper, for the provisioning commands (the CLI is not an event
 * loop): spawns it, sends one frame at a time, waits for the answer with a deadline.
 * tok_link_open: -ENOENT/-EACCES when helper_path is not an executable, else as
 * tok_helper_spawn. tok_link_close closes the socket, gives the helper a short grace to exit,
 * then SIGKILLs and reaps it; accepts NULL and returns NULL. */
struct tok_link;
int tok_link_open(const char *helper_path, char *const *modules, size_t n_modules,
	struct tok_link **ret);
struct tok_link *tok_link_close(struct tok_link *l);
/* Sends a request frame (ended with tok_frame_end; wiped afterwards, whatever happens) and
 * returns the answer's type and body (ret_body, pf_buf_init'ed, is overwritten).
 * One deadline of timeout_ms (> 0, else -EINVAL) covers writing and reading. -ETIMEDOUT (no
 * answer in time), -ECONNRESET (the helper closed its end or died) and -EBADMSG (a frame
 * beyond TOK_FRAME_MAX) kill and reap the helper; later calls then return -ENOTCONN. */
int tok_link_call(struct tok_link *l, struct pf_buf *frame, unsigned timeout_ms,
	uint32_t *ret_type, struct pf_buf *ret_body);

/* tok-helper.c: parafd's side. Starts the helper with one end of a socketpair on fd 3. */
int tok_helper_spawn(const char *path, char *const *modules, size_t n_modules, pid_t *ret_pid,
	int *ret_fd);
/* The helper beside our own executable (a build tree, or a relocated install), else the
 * configured libexec path. Newly allocated; NULL when out of memory. */
char *tok_helper_default_path(void);

/* tok-p11.c: the helper's side. */
struct tok_ctx;
/* modules NULL or empty: the p11-kit registry (trust-policy modules skipped). */
int tok_ctx_new(char *const *modules, size_t n_modules, struct tok_ctx **ret);
struct tok_ctx *tok_ctx_free(struct tok_ctx *c);
/* Every initialised token present, and its certificates. A token whose slot answers "removed"
 * (CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED)
 * while being read is left out, certificates and all: it is going or gone. */
int tok_ctx_list(struct tok_ctx *c, struct tok_list *ret);
/* TOK_MSG_WATCH: *ret_changed 0 when every module's slot events say nothing happened since
 * the last look (and force is 0, and this is not the first look); else 1 and the tokens
 * (without certificates) in ret. */
int tok_ctx_watch(struct tok_ctx *c, int force, int *ret_changed, struct tok_list *ret);
/* Signs req's digests. With part (TOK_MSG_SIGN_STREAM), the signatures made so far are
 * handed to it now and then (TOK_SIGN_PART_MAX, TOK_SIGN_PART_USEC), in order, and ret->sigs
 * keeps only those never handed over; part returning < 0 (parafd gone) ends the signing with
 * TOK_ERR_INTERNAL. Without, ret->sigs has them all. The login ends before it returns. */
typedef int (*tok_sign_part_fn)(size_t first, const struct tok_blob *sigs, size_t n, void *data);
void tok_ctx_sign(struct tok_ctx *c, const struct tok_sign_req *req, tok_sign_part_fn part,
	void *part_data, struct tok_sign_reply *ret);
/* tok-admin.c: provisioning, in the helper. */
void tok_ctx_admin(struct tok_ctx *c, const struct tok_admin_req *req, struct tok_admin_reply *ret);
