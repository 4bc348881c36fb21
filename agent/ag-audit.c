/*
 * Decision records. Each is one JSON object with the peer (from SO_PEERCRED), what was asked,
 * the verdict and the rule behind it.
 */
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include <systemd/sd-journal.h>

#include "ag-audit.h"
#include "ag.h"
#include "pf-codec.h"
#include "pf-util.h"

json_object *
ag_audit_json(const struct ag_audit_record *r)
{
	json_object *o = json_object_new_object(), *docs = json_object_new_array();
	_cleanup_free_ char *now = ag_time_iso8601(time(NULL));

	json_object_object_add(o, "time", now ? json_object_new_string(now) : NULL);
	json_object_object_add(o, "method", json_object_new_string(r->method));
	json_object_object_add(o, "uid", json_object_new_int64(r->peer.uid));
	json_object_object_add(o, "pid", json_object_new_int64(r->peer.pid));
	json_object_object_add(o, "exe", r->exe ? json_object_new_string(r->exe) : NULL);
#define S(k, v) json_object_object_add(o, k, (v) ? json_object_new_string(v) : NULL)
	S("certificate", r->certificate);
	S("certificate_type", r->certificate_type);
	S("owner", r->owner);
	S("usage", r->usage);
	S("digest_algorithm", r->digest_algorithm);
	for (size_t i = 0; i < r->n_docs; i++) {
		json_object *d = json_object_new_object();
		_cleanup_free_ char *hex = pf_hex_encode(r->docs[i].digest, r->docs[i].digest_len);

		json_object_object_add(d, "name", json_object_new_string(r->docs[i].name));
		json_object_object_add(d, "digest", hex ? json_object_new_string(hex) : NULL);
		json_object_array_add(docs, d);
	}
	json_object_object_add(o, "documents", docs);
	S("verdict", r->allow ? "allow" : "deny");
	S("rule", r->rule);
	S("reason", r->reason);
	S("message", r->message);
	S("outcome", r->outcome);
#undef S
	return o;
}

void
ag_audit_write(bool to_stderr, const struct ag_audit_record *r)
{
	json_object *o = ag_audit_json(r);
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
		JSON_C_TO_STRING_NOSLASHESCAPE);

	if (to_stderr) {
		fprintf(stderr, "parafd: audit %s\n", s);
		fflush(stderr);
	} else {
		sd_journal_send("MESSAGE=paraf %s %s by uid %u: %s", r->method,
			r->allow ? "allowed" : "denied", (unsigned)r->peer.uid,
			r->reason ? r->reason : "", "PRIORITY=%i", r->allow ? LOG_INFO : LOG_NOTICE,
			"PARAF_RECORD=%s", s, "PARAF_VERDICT=%s", r->allow ? "allow" : "deny",
			"PARAF_RULE=%s", r->rule ? r->rule : "", "PARAF_CERTIFICATE=%s",
			r->certificate ? r->certificate : "", NULL);
	}
	json_object_put(o);
}
