/*
 * One structured record per decision, allow or deny (STYLE 14): to the journal, or to stderr
 * in the foreground; the tamper-evident audit service of a later issue takes the same record.
 * No PIN ever reaches a record (R2): the record type has no field for one.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <json-c/json.h>

struct ag_audit_doc {
	const char *name;
	const unsigned char *digest;
	size_t digest_len;
};

struct ag_audit_record {
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
};

/* Returns the record as JSON (for tests), after writing it. */
void ag_audit_write(bool to_stderr, const struct ag_audit_record *r);
json_object *ag_audit_json(const struct ag_audit_record *r);
