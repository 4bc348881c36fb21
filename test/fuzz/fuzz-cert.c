/*
 * Fuzz target: the certificate decision. The input is a certificate's DER, as a token would
 * hold it: pol_cert_facts_from_der() (policy/pol-cert.c), the chain and CRL check against
 * test/fuzz/data's anchors and CRLs (pol_trust_check), the type, the status, the usages its
 * extensions allow, and pol_decide() for every usage with a fixed policy in which the input
 * certificate is registered to the caller; and what certificates.list says of it
 * (ag_cert_describe, ag_cert_id). Checks: an allowed request is one the certificate's own
 * extensions, dates and chain allow.
 */
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ag.h"
#include "fuzz-common.h"
#include "pol.h"

static struct pol_policy policy;
static struct pol_trust trust;

static void
load_pem(const char *name, bool crl)
{
	char *path = fuzz_data_path(name);
	FILE *f = fopen(path, "r");

	FUZZ_CHECK(f);
	if (crl) {
		X509_CRL *c = PEM_read_X509_CRL(f, NULL, NULL, NULL);

		FUZZ_CHECK(c && sk_X509_CRL_push(trust.crls, c) > 0);
	} else {
		X509 *x = PEM_read_X509(f, NULL, NULL, NULL);

		FUZZ_CHECK(x && sk_X509_push(trust.anchors, x) > 0);
	}
	fclose(f);
	free(path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512] = "";

	pol_policy_init(&policy);
	if (pol_policy_parse(&policy, "policy.conf",
		    "[types]\n"
		    "individual = 1.3.6.1.4.1.55555.1.1\n"
		    "jabatan = 2.25.288437233808201889182003567309362975498\n"
		    "system = 1.3.6.1.4.1.55555.1.3\n"
		    "[owner]\nroot_may_own = yes\n"
		    "[session]\nallow_inactive = yes\n"
		    "[trust]\nrevocation = best-effort\n",
		    err, sizeof(err)) < 0 ||
	    pol_owner_parse(&policy, "owner.conf",
		    "[owner]\n"
		    "certificate = 0000000000000000000000000000000000000000000000000000000000000000\n"
		    "account = budi\ntype = jabatan\nname = Budi Santoso\nposition = Kepala Bidang\n",
		    err, sizeof(err)) < 0 ||
	    pol_revoked_parse(&policy, "revoked.list",
		    "1111111111111111111111111111111111111111111111111111111111111111 "
		    "2026-07-01T00:00:00Z key-compromise\n",
		    err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz-cert: %s\n", err);
		abort();
	}
	policy.owners[0].uid = 1000;
	policy.owners[0].uid_known = true;
	trust.anchors = sk_X509_new_null();
	trust.intermediates = sk_X509_new_null();
	trust.crls = sk_X509_CRL_new_null();
	FUZZ_CHECK(trust.anchors && trust.intermediates && trust.crls);
	load_pem("ca.pem", false);
	load_pem("demo-ca.pem", false);
	load_pem("ca.crl", true);
	load_pem("demo-ca.crl", true);
	return 0;
}

static void
decide(struct pol_cert_facts *f, bool registered)
{
	static const struct pol_session sessions[] = {
		{ .logind = true, .found = true, .active = true },
		{ .logind = true, .found = true, .remote = true, .active = true },
		{ .logind = false },
	};
	const struct pol_peer peer = { 1000, 4242 };

	memcpy(policy.owners[0].cert_id, registered ? f->id : "", registered ? 65 : 1);
	for (int u = POL_USAGE_SIGNATURE; u < _POL_USAGE_MAX; u++) {
		const char *why = NULL;
		bool in_cert = pol_usage_in_certificate(&policy, f, (enum pol_usage)u, &why);

		FUZZ_CHECK(in_cert || why);
		for (size_t s = 0; s < sizeof(sessions) / sizeof(sessions[0]); s++) {
			struct pol_request req = { (enum pol_usage)u, 1 + s, s == 2, s == 1 };
			struct pol_verdict v;

			pol_decide(&policy, &req, f, &peer, &sessions[s], FUZZ_NOW, &v);
			FUZZ_CHECK(v.reason);
			FUZZ_CHECK(memchr(v.message, 0, sizeof(v.message)));
			if (!v.allow)
				continue;
			/* R5-R8: what is allowed is registered, typed, usable, current, trusted. */
			FUZZ_CHECK(registered && v.owner == &policy.owners[0]);
			FUZZ_CHECK(v.type != POL_TYPE_NONE);
			FUZZ_CHECK(in_cert);
			FUZZ_CHECK(f->not_before <= FUZZ_NOW && FUZZ_NOW <= f->not_after);
			FUZZ_CHECK(f->trusted);
			FUZZ_CHECK(f->revocation != POL_REV_REVOKED);
			FUZZ_CHECK(!f->is_ca);
			/* R1: the system agent serves system certificates only. */
			FUZZ_CHECK(!req.system_agent || v.type == POL_TYPE_SYSTEM);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	X509 *x = d2i_X509(NULL, &p, (long)size);
	struct pol_cert_facts f;
	struct pol_status st;

	if (x) {
		json_object *j = ag_cert_describe(x);
		char *id = ag_cert_id(data, size);

		FUZZ_CHECK(j && json_object_to_json_string(j));
		FUZZ_CHECK(id && strlen(id) == 64);
		json_object_put(j);
		free(id);
	}
	if (pol_cert_facts_from_der(data, size, &f) >= 0) {
		FUZZ_CHECK(strlen(f.id) == 64);
		FUZZ_CHECK(memchr(f.subject_cn, 0, sizeof(f.subject_cn)));
		if (x)
			pol_trust_check(&trust, x, FUZZ_NOW, &f);
		pol_cert_status(&policy, &f, FUZZ_NOW, &st);
		FUZZ_CHECK(st.status);
		(void)pol_cert_type(&policy, &f, NULL);
		decide(&f, true);
		decide(&f, false);
		(void)pol_cert_type(&policy, &f, &policy.owners[0]);
		pol_cert_facts_release(&f);
	}
	X509_free(x);
	return 0;
}
