/*
 * One structured record per decision, allow or deny (STYLE 14), and where it goes (R13):
 *
 *   required  paraf-auditd (audit/aud.h) must acknowledge the record, i.e. have it on disk in
 *             its hash chain, before the caller goes on; a sign request releases its signature
 *             only then, and is refused with `audit-unavailable` otherwise (fail closed).
 *   spool     the same, but when the service is unreachable or cannot store the record, the
 *             record goes to a local spool file (0600, fsync'd) and counts as stored; the spool
 *             is forwarded in order, each record removed only after its acknowledgement.
 *   journal   the journal only (development, tests): nothing is tamper-evident.
 *
 * Whatever the mode, a copy goes to the journal (stderr in the foreground, as
 * "parafd: audit {json}"), so an operator sees decisions even while the service is down.
 * Every record carries a random `record_id` (32 hex digits): a record resent after a lost
 * acknowledgement is recognisable in the log as the same record.
 *
 * No PIN ever reaches a record (R2): the record type has no field for one.
 *
 * The sink is process-wide state (ag_audit_setup()): parafd's server, its sign method and the
 * provisioning commands of `paraf` all write through ag_audit_commit().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "ag.h"

#define AG_AUDIT_ID_HEX 32                    /* record_id: 128 random bits */
#define AG_AUDIT_SPOOL_MAX (64u * 1024 * 1024) /* bytes in the spool; past this, nothing is stored */
#define AG_AUDIT_FLUSH_BATCH 64               /* spooled records forwarded in one pass */
#define AG_AUDIT_PART_MAX (60u * 1024)        /* a record line we send: under AUD_RECORD_MAX */
#define AG_AUDIT_HEAD_DOCS (16u * 1024)       /* a split record's own documents, bytes of JSON */
#define AG_AUDIT_SLACK (4u * 1024)            /* what the verdict may add after ag_audit_prestore */

struct ag_audit_doc {
	const char *name;
	const unsigned char *digest;
	size_t digest_len;
};

struct ag_audit_record {
	const char *record_id; /* NULL: ag_audit_commit() draws one */
	const char *method;
	struct ucred peer;
	const char *exe;
	const char *certificate;
	const char *certificate_type;
	const char *owner;
	const char *usage;
	const char *digest_algorithm;
	const struct ag_audit_doc *docs;
	size_t n_docs;
	bool allow;
	const char *rule;
	const char *reason;
	const char *message;
	const char *outcome; /* after an allowed decision: "signed" or the error's reason */
	time_t time;         /* 0: now */
	struct ag_audit_early *early; /* from ag_audit_prestore(), or NULL */
};

/* A long record's continuation records, stored before its verdict (ag_audit_prestore). */
struct ag_audit_early {
	char record_id[AG_AUDIT_ID_HEX + 1];
	time_t time;
	json_object *docs;  /* the documents, as the record and its copy carry them */
	size_t head;        /* documents the record itself carries (all: not split) */
	char **lines;       /* the continuation records, in order */
	size_t n_lines;
	size_t stored;      /* of them acknowledged by paraf-auditd */
};

struct ag_audit_options {
	enum ag_audit_mode mode;
	const char *socket_path; /* NULL: AG_AUDIT_SOCKET_DEFAULT */
	const char *spool_path;  /* NULL: ag_audit_spool_default() */
	unsigned timeout_ms;     /* 0: AG_AUDIT_TIMEOUT_DEFAULT seconds */
	const char *program;     /* "parafd" or "paraf": the prefix of messages on stderr */
};

/* Configures the process's sink (copies what it needs). Calling it again replaces the sink.
 * Without a call, the sink is `required` on the default socket. -ENOMEM. */
int ag_audit_setup(const struct ag_audit_options *o);
void ag_audit_shutdown(void);
enum ag_audit_mode ag_audit_mode(void);
const char *ag_audit_socket_path(void);
/* $XDG_STATE_HOME/paraf/audit-spool, else $HOME/.local/state/paraf/audit-spool; NULL when
 * neither variable is set (or out of memory). Free it. */
char *ag_audit_spool_default(void);

/* The record as JSON: today's object, plus `record_id` when the record has one. */
json_object *ag_audit_json(const struct ag_audit_record *r);
/* A fresh record_id from getrandom(). */
void ag_audit_record_id(char ret[AG_AUDIT_ID_HEX + 1]);

/*
 * Stores r as the mode demands and writes the journal (stderr) copy. 0: stored (acknowledged,
 * or spooled in spool mode, or journal mode); -ENOLINK: not stored: the caller must not act
 * on the decision (a sign request withholds its signature). failed_outcome: what the copy
 * says as `outcome` when the record was not stored (sign: "audit-unavailable"), NULL to keep.
 * A record larger than one line may be (some hundreds of documents) is sent as continuation
 * records ({"record_id","continues","part","parts","time","method","documents"}) followed
 * by the record itself with its first documents (AG_AUDIT_HEAD_DOCS bytes of them) and
 * `documents_total`: the record is stored only when all of them are.
 */
int ag_audit_commit(bool to_stderr, const struct ag_audit_record *r, const char *failed_outcome);
/*
 * For a decision whose outcome comes later (sign: the token signs meanwhile): draws the
 * record's id and time and, when its documents make it too long for one line, stores the
 * continuation records now (while the service answers at once; otherwise they wait for
 * ag_audit_commit). ag_audit_commit() with r->early = e then sends only what is left: the
 * record itself comes last as always, so its verdict is stored after everything it refers
 * to. Release e with ag_audit_early_release() after the commit.
 */
void ag_audit_prestore(const struct ag_audit_record *r, struct ag_audit_early *e);
void ag_audit_early_release(struct ag_audit_early *e);
/* ag_audit_commit() for records whose storage changes nothing (a refused connection). */
void ag_audit_write(bool to_stderr, const struct ag_audit_record *r);
/* Whether a record could be stored now (before a sign request asks for the PIN): 0, or
 * -ENOLINK in required mode when the service cannot be reached. */
int ag_audit_check(void);

/* Forwards up to max spooled records, oldest first, each removed after its acknowledgement.
 * 0 and the records left in *ret_left (may be NULL); -ENOLINK when the service does not take
 * them (the rest stays); -EBADMSG for a spool that is not one (left alone); -errno. */
int ag_audit_flush(unsigned max, size_t *ret_left);
/* Records waiting in the spool (0 when there is none, or it cannot be read). */
size_t ag_audit_spool_pending(void);

/* The spool itself, for the tests: appends one line (a record, no newline) under the spool's
 * lock, fsync'd; -ENOSPC past AG_AUDIT_SPOOL_MAX; -EBADMSG for a file that is not a spool. */
int ag_audit_spool_append(const char *path, const char *line, size_t len);
