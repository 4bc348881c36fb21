/*
 * The decision before every private-key operation, and the status certificates.list shows.
 * Pure functions of the policy, the certificate's facts, the peer, its session and the time:
 * every rule has a unit test that needs no token, no clock and no login session.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "pol.h"

#define DAY 86400L

static void
deny(struct pol_verdict *v, const char *rule, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
deny(struct pol_verdict *v, const char *rule, const char *reason, const char *fmt, ...)
{
	va_list ap;

	v->allow = false;
	v->rule = rule;
	v->reason = reason;
	va_start(ap, fmt);
	vsnprintf(v->message, sizeof(v->message), fmt, ap);
	va_end(ap);
}

static bool
strv_has(const struct pol_strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->v[i], s))
			return true;
	return false;
}

enum pol_type
pol_cert_type(const struct pol_policy *p, const struct pol_cert_facts *f,
	const struct pol_owner *owner)
{
	/* R5: the certificate's own policy OIDs first, the registry second. */
	for (int t = POL_TYPE_INDIVIDUAL; t < _POL_TYPE_MAX; t++)
		for (size_t i = 0; i < f->policies.n; i++)
			if (strv_has(&p->type_oids[t], f->policies.v[i]))
				return t;
	return owner ? owner->type : POL_TYPE_NONE;
}

#define OID_SERVER_AUTH "1.3.6.1.5.5.7.3.1"
#define OID_CLIENT_AUTH "1.3.6.1.5.5.7.3.2"
#define OID_EMAIL_PROTECTION "1.3.6.1.5.5.7.3.4"
#define OID_ANY_EKU "2.5.29.37.0"

bool
pol_usage_in_certificate(const struct pol_policy *p, const struct pol_cert_facts *c,
	enum pol_usage u, const char **ret_why)
{
	const char *why = NULL;

	/* R6, by our own reading of the extensions: OpenSSL's purposes let a certificate without
	 * any through, and a missing keyUsage is a refusal here, not a pass. */
	if (!c->has_key_usage) {
		why = "the certificate has no keyUsage extension";
		goto out;
	}
	switch (u) {
	case POL_USAGE_SIGNATURE:
		if (!(c->key_usage & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)))
			why = "keyUsage has neither digitalSignature nor nonRepudiation";
		else if (c->has_eku) {
			bool ok = false;
			for (size_t i = 0; i < c->ekus.n && !ok; i++)
				ok = strv_has(&p->signature_ekus, c->ekus.v[i]);
			if (!ok)
				why = "extendedKeyUsage holds none of the document-signing purposes";
		}
		break;
	case POL_USAGE_EMAIL:
		if (!(c->key_usage & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION |
				      KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT)))
			why = "keyUsage allows no e-mail protection";
		else if (!c->has_eku || !strv_has(&c->ekus, OID_EMAIL_PROTECTION))
			why = "extendedKeyUsage lacks emailProtection";
		else if (!c->has_email)
			why = "the certificate names no e-mail address";
		break;
	case POL_USAGE_TLS_CLIENT:
		if (!(c->key_usage & (KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT)))
			why = "keyUsage has neither digitalSignature nor keyAgreement";
		else if (!c->has_eku || !strv_has(&c->ekus, OID_CLIENT_AUTH))
			why = "extendedKeyUsage lacks clientAuth";
		break;
	case POL_USAGE_TLS_SERVER:
		if (!(c->key_usage & (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT)))
			why = "keyUsage allows no TLS server key";
		else if (!c->has_eku || !strv_has(&c->ekus, OID_SERVER_AUTH))
			why = "extendedKeyUsage lacks serverAuth";
		break;
	case POL_USAGE_DOCUMENT_PROTECTION:
		if (!(c->key_usage & (KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT)))
			why = "keyUsage has neither keyEncipherment nor keyAgreement";
		break;
	default:
		why = "unknown usage";
	}
out:
	if (ret_why)
		*ret_why = why;
	return why == NULL;
}

static bool
too_long(const struct pol_policy *p, const struct pol_cert_facts *c)
{
	return !p->allow_long_validity &&
	       (c->not_after - c->not_before) > (time_t)p->max_validity_days * DAY;
}

void
pol_decide(const struct pol_policy *p, const struct pol_request *req,
	const struct pol_cert_facts *cert, const struct pol_peer *peer,
	const struct pol_session *session, time_t now, struct pol_verdict *ret)
{
	const struct pol_owner *owner = pol_owner_find(p, cert->id);
	const struct pol_revoked *rev = pol_revoked_find(p, cert->id);
	const char *usage = pol_usage_to_string(req->usage), *why;
	enum pol_type type = pol_cert_type(p, cert, owner);

	memset(ret, 0, sizeof(*ret));
	ret->type = type;
	ret->owner = owner;

	/* R8/R9: a revoked certificate is never usable again, whatever else holds. */
	if (rev) {
		bool incident = !strcmp(rev->reason, "key-lost") || !strcmp(rev->reason, "key-damaged") ||
				!strcmp(rev->reason, "key-compromise") || !strcmp(rev->reason, "incident");
		deny(ret, incident ? "R9" : "R8", "revoked",
			"the certificate was revoked on %s (%s) and can never be used again", rev->when,
			rev->reason);
		return;
	}
	if (cert->revocation == POL_REV_REVOKED) {
		deny(ret, "R8", "revoked",
			"the certificate is revoked by its issuer's CRL and can never be used again");
		return;
	}
	/* R5: every certificate in use has a type. */
	if (type == POL_TYPE_NONE) {
		deny(ret, "R5", "unregistered",
			"the certificate has no type: it is neither registered nor carries a known policy");
		return;
	}
	/* R1, R2: the system agent serves services, with PINs from credentials and no dialog;
	 * individual and jabatan certificates need their owner's own session, agent and dialog. */
	if (req->system_agent && type != POL_TYPE_SYSTEM) {
		deny(ret, "R1", "type-not-served",
			"this is a certificate of type %s: the system agent serves electronic-system "
			"certificates only; its owner signs with it through their own agent and PIN "
			"dialog", pol_type_to_string(type));
		return;
	}
	/* R1: only the owner's own account, and only a registered owner. */
	if (!owner) {
		deny(ret, "R1", "unregistered", "the certificate has no registered owner");
		return;
	}
	if (!owner->uid_known) {
		deny(ret, "R1", "unregistered", "the registered owner's account '%s' does not exist here",
			owner->account);
		return;
	}
	if (peer->uid != owner->uid) {
		deny(ret, "R1", "not-owner",
			"this certificate belongs to account '%s'; no other account may use it",
			owner->account);
		return;
	}
	if (owner->uid == 0 && !p->root_may_own) {
		deny(ret, "R1", "not-owner", "root may not use a certificate unless the policy says so");
		return;
	}
	/* R1: an official signs from their own desk, not from a remote or background session.
	 * Electronic-system certificates belong to services and are exempt. */
	if (type != POL_TYPE_SYSTEM) {
		if (!session->logind) {
			if (p->without_logind == POL_NO_LOGIND_DENY) {
				deny(ret, "R1", "no-session",
					"login sessions cannot be checked on this machine (no logind), and "
					"the policy refuses in that case");
				return;
			}
		} else if (!session->found) {
			if (!p->allow_inactive_session) {
				deny(ret, "R1", "no-session",
					"the request comes from a process in no login session");
				return;
			}
		} else if (session->remote && !p->allow_remote_session) {
			deny(ret, "R1", "remote-session",
				"the request comes from a remote login session");
			return;
		} else if (!session->active && !p->allow_inactive_session) {
			deny(ret, "R1", "inactive-session",
				"the request comes from a login session that is not the active one");
			return;
		}
	}
	/* R2: the PIN goes from the trusted dialog to the token, not through the application. */
	if (req->pin_parameter && !(p->pin_parameter_types & POL_TYPE_BIT(type))) {
		deny(ret, "R2", "pin-parameter-refused",
			"the PIN of a certificate of type %s is asked by the trusted PIN dialog, never "
			"taken from the application", pol_type_to_string(type));
		return;
	}
	/* R1: one PIN, an explicit and bounded list of documents. */
	if (req->n_documents > p->max_batch) {
		deny(ret, "R1", "batch-too-large",
			"one PIN may authorise at most %u documents, this request lists %zu",
			p->max_batch, req->n_documents);
		return;
	}
	/* R6: the type's usages, then the certificate's own extensions. */
	if (!usage || !(p->usage_matrix[type] & POL_USAGE_BIT(req->usage))) {
		deny(ret, "R6", "usage-not-allowed", "a certificate of type %s may not be used for %s",
			pol_type_to_string(type), usage ? usage : "this usage");
		return;
	}
	if (cert->is_ca) {
		deny(ret, "R6", "usage-not-in-certificate",
			"a CA certificate signs certificates, not documents");
		return;
	}
	if (!pol_usage_in_certificate(p, cert, req->usage, &why)) {
		deny(ret, "R6", "usage-not-in-certificate", "the certificate does not allow %s: %s",
			usage, why);
		return;
	}
	/* R7: within its validity, and no longer than the regulation's two years. */
	if (now < cert->not_before) {
		deny(ret, "R7", "not-yet-valid", "the certificate is not valid yet");
		return;
	}
	if (now > cert->not_after) {
		deny(ret, "R7", "expired", "the certificate has expired; renew it with a new one");
		return;
	}
	if (too_long(p, cert)) {
		deny(ret, "R7", "non-compliant",
			"the certificate is valid for %ld days, more than the %u days the regulation allows",
			(long)((cert->not_after - cert->not_before) / DAY), p->max_validity_days);
		return;
	}
	if (!cert->trusted) {
		deny(ret, NULL, "untrusted", "the certificate does not chain to a trust anchor: %s",
			cert->trust_error);
		return;
	}
	/* R8: fail closed without a current CRL, unless the policy says best effort. */
	if ((cert->revocation == POL_REV_CRL_MISSING || cert->revocation == POL_REV_CRL_STALE) &&
	    p->revocation == POL_REVOCATION_REQUIRE) {
		deny(ret, "R8", "revocation-unknown",
			cert->revocation == POL_REV_CRL_STALE
				? "the issuer's CRL is past its nextUpdate, so revocation cannot be checked"
				: "there is no CRL from the issuer, so revocation cannot be checked");
		return;
	}
	ret->allow = true;
	ret->reason = "allowed";
	snprintf(ret->message, sizeof(ret->message), "allowed");
}

void
pol_cert_status(const struct pol_policy *p, const struct pol_cert_facts *c, time_t now,
	struct pol_status *ret)
{
	const struct pol_owner *owner = pol_owner_find(p, c->id);
	enum pol_type type = pol_cert_type(p, c, owner);

	memset(ret, 0, sizeof(*ret));
	ret->days_left = (long)((c->not_after - now) / DAY);
	for (int u = POL_USAGE_SIGNATURE; u < _POL_USAGE_MAX; u++)
		if ((p->usage_matrix[type] & POL_USAGE_BIT(u)) && !c->is_ca &&
		    pol_usage_in_certificate(p, c, u, NULL))
			ret->usages |= POL_USAGE_BIT(u);
	if (pol_revoked_find(p, c->id) || c->revocation == POL_REV_REVOKED) {
		ret->status = "revoked";
		ret->reason = "revoked and never usable again (R8)";
	} else if (!c->trusted) {
		ret->status = "untrusted";
		ret->reason = c->trust_error;
	} else if (type == POL_TYPE_NONE || !owner) {
		ret->status = "unregistered";
		ret->reason = type == POL_TYPE_NONE ? "no type (R5)" : "no registered owner (R1)";
	} else if (too_long(p, c)) {
		ret->status = "non-compliant";
		ret->reason = "valid for longer than the regulation allows (R7)";
	} else if (now < c->not_before) {
		ret->status = "not-yet-valid";
		ret->reason = "not valid yet (R7)";
	} else if (now > c->not_after) {
		ret->status = "expired";
		ret->reason = "expired (R7)";
	} else if (ret->days_left <= (long)p->renew_warning_days) {
		ret->status = "expiring";
		ret->reason = "expires soon: ask for renewal (R7)";
	} else {
		ret->status = "valid";
		ret->reason = NULL;
	}
}
