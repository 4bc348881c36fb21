/*
 * The verification report (R11): the conclusion of each signature from its facts, in the
 * spirit of EU DSS / ETSI EN 319 102-1 (TOTAL_PASSED, TOTAL_FAILED, INDETERMINATE with a
 * sub-indication), and the report as text for people and as JSON for programs. The rules and
 * the JSON schema are in doc/verification.md; the order of the checks below is the order there.
 */
#include "cli.h"

#include <openssl/x509_vfy.h>

const char *
cli_conclusion_name(enum cli_conclusion c)
{
	switch (c) {
	case CLI_VALID:
		return "VALID";
	case CLI_INDETERMINATE:
		return "INDETERMINATE";
	case CLI_INVALID:
	default:
		return "INVALID";
	}
}

const char *
cli_indication_name(enum cli_conclusion c)
{
	switch (c) {
	case CLI_VALID:
		return "TOTAL_PASSED";
	case CLI_INDETERMINATE:
		return "INDETERMINATE";
	case CLI_INVALID:
	default:
		return "TOTAL_FAILED";
	}
}

void
cli_signer_report_release(struct cli_signer_report *s)
{
	free(s->signer);
	free(s->signer_cn);
	free(s->nip);
	free(s->position);
	free(s->issuer);
	free(s->serial);
	free(s->not_before);
	free(s->not_after);
	free(s->digest_algorithm);
	free(s->signing_time);
	free(s->claimed_time);
	free(s->ts.time_iso);
	free(s->ts.tsa);
	free(s->ts.error);
	free(s->integrity_error);
	free(s->format_error);
	free(s->trust_error);
	free(s->verify_error);
	free(s->anchor);
	free(s->cert_error);
	free(s->revocation_time);
	free(s->revocation_reason);
	free(s->pdf.field);
	free(s->pdf.sub_filter);
	free(s->pdf.name);
	free(s->pdf.reason);
	free(s->pdf.location);
	free(s->pdf.appended_detail);
	free(s->reason);
	memset(s, 0, sizeof(*s));
}

struct cli_verify_report *
cli_verify_report_free(struct cli_verify_report *r)
{
	if (!r)
		return NULL;
	for (size_t i = 0; i < r->n_signers; i++)
		cli_signer_report_release(&r->signers[i]);
	free(r->signers);
	free(r->file);
	free(r->content);
	free(r->error);
	free(r->time);
	free(r);
	return NULL;
}

static int
verdict(struct cli_signer_report *s, enum cli_conclusion c, const char *sub, const char *fmt,
	...) _printf_(4, 5);

static int
verdict(struct cli_signer_report *s, enum cli_conclusion c, const char *sub, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	s->conclusion = c;
	s->sub_indication = sub;
	free(s->reason);
	s->reason = NULL;
	if (fmt) {
		va_start(ap, fmt);
		n = vasprintf(&s->reason, fmt, ap);
		va_end(ap);
		if (n < 0)
			s->reason = NULL;
	}
	return n < 0 ? -ENOMEM : 0;
}

/* OpenSSL's words for "there is no path to an anchor" (as opposed to a path that fails). */
static int
trust_error_is_no_chain(const char *e)
{
	static const int codes[] = {
		X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
		X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
		X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
		X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
		X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE,
	};

	if (!e)
		return 1;
	for (size_t i = 0; i < ARRAY_SIZE(codes); i++)
		if (streq(e, X509_verify_cert_error_string(codes[i])))
			return 1;
	return 0;
}

int
cli_signer_conclude(const struct cli_trust *t, struct cli_signer_report *s)
{
	/* TOTAL_FAILED: the signature is proven wrong. */
	if (s->format_error && !s->unsupported)
		return verdict(s, CLI_INVALID, "FORMAT_FAILURE", "%s", s->format_error);
	if (s->unsupported)
		return verdict(s, CLI_INDETERMINATE, "UNSUPPORTED_FORMAT", "%s",
			s->format_error ? s->format_error : "not a kind of signature paraf checks");
	if (s->integrity_state == CLI_INTEGRITY_HASH_FAILURE)
		return verdict(s, CLI_INVALID, "HASH_FAILURE", "%s", s->integrity_error);
	if (s->integrity_state == CLI_INTEGRITY_SIG_FAILURE)
		return verdict(s, CLI_INVALID, "SIG_CRYPTO_FAILURE", "%s", s->integrity_error);
	if (s->integrity_state == CLI_INTEGRITY_FORMAT)
		return verdict(s, CLI_INDETERMINATE, "UNSUPPORTED_FORMAT", "%s", s->integrity_error);
	if (s->chain == CLI_CHAIN_BAD_SIGNATURE)
		return verdict(s, CLI_INVALID, "CHAIN_SIG_FAILURE", "%s", s->verify_error);
	/* Expired, not yet valid or revoked at the signing time, under a trusted chain (R7, R8). */
	if (s->trusted && s->cert_validity == CLI_CERT_INVALID)
		return verdict(s, CLI_INVALID, s->cert_sub, "%s", s->cert_error);

	/* INDETERMINATE: not shown either way. */
	if (s->integrity_state == CLI_INTEGRITY_UNKNOWN)
		return verdict(s, CLI_INDETERMINATE, "NO_SIGNING_CERTIFICATE_FOUND", "%s",
			s->integrity_error);
	if (!s->trusted) {
		if (t && cli_trust_n_anchors(t) == 0)
			return verdict(s, CLI_INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND",
				"no trust anchors configured");
		return verdict(s, CLI_INDETERMINATE,
			trust_error_is_no_chain(s->trust_error) ? "NO_CERTIFICATE_CHAIN_FOUND" :
								  "CERTIFICATE_CHAIN_GENERAL_FAILURE",
			"the signer's certificate is not trusted: %s",
			s->trust_error ? s->trust_error : "no chain to a trust anchor");
	}
	if (s->ts.status == CLI_TST_INVALID)
		return verdict(s, CLI_INDETERMINATE, "TIMESTAMP_FAILURE",
			"the signature's timestamp is not valid: %s", s->ts.error);
	if (s->cert_validity == CLI_CERT_UNKNOWN)
		return verdict(s, CLI_INDETERMINATE, s->cert_sub ? s->cert_sub : "TRY_LATER", "%s",
			s->cert_error ? s->cert_error : "the certificate's status is unknown");
	if (s->is_pdf && s->pdf.appended == CLI_APPENDED_OTHER)
		return verdict(s, CLI_INDETERMINATE, "MODIFIED_AFTER_SIGNING",
			"the document was changed after this signature (%s), so what a PDF "
			"reader shows may not be what was signed",
			s->pdf.appended_detail ? s->pdf.appended_detail : "bytes were added");
	return verdict(s, CLI_VALID, NULL, NULL);
}

/* --- JSON --------------------------------------------------------------------------------- */

static json_object *
jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static const char *
time_source_name(enum cli_time_source t)
{
	return t == CLI_TIME_TIMESTAMP ? "timestamp" : t == CLI_TIME_CLAIMED ? "claimed" : NULL;
}

static const char *
tst_status_name(enum cli_tst_status s)
{
	return s == CLI_TST_VALID ? "valid" : s == CLI_TST_UNTRUSTED ? "untrusted" : "invalid";
}

static const char *
revocation_name(enum cli_revocation r)
{
	switch (r) {
	case CLI_REV_GOOD:
		return "good";
	case CLI_REV_REVOKED:
		return "revoked";
	case CLI_REV_CRL_MISSING:
		return "crl-missing";
	case CLI_REV_CRL_STALE:
		return "crl-stale";
	case CLI_REV_UNCHECKED:
	default:
		return "unchecked";
	}
}

static const char *
appended_name(enum cli_appended a)
{
	return a == CLI_APPENDED_NONE ? "none" : a == CLI_APPENDED_SIGNATURES ? "signatures" :
										"other";
}

/* The PDF signature dictionary's own fields. */
static json_object *
pdf_json(const struct cli_pdf_sig_report *p)
{
	json_object *o = json_object_new_object(), *br = NULL;

	if (!o)
		return NULL;
	json_object_object_add(o, "field", jstr(p->field));
	json_object_object_add(o, "sub_filter", jstr(p->sub_filter));
	json_object_object_add(o, "name", jstr(p->name));
	json_object_object_add(o, "reason", jstr(p->reason));
	json_object_object_add(o, "location", jstr(p->location));
	if (p->has_byte_range) {
		br = json_object_new_array();
		for (int i = 0; br && i < 4; i++)
			json_object_array_add(br, json_object_new_int64(p->byte_range[i]));
	}
	json_object_object_add(o, "byte_range", br);
	return o;
}

/* What the signature covers of the file, and what came after it (PDF). */
static json_object *
coverage_json(const struct cli_pdf_sig_report *p)
{
	json_object *o;

	if (!p->has_byte_range)
		return NULL;
	o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "whole_file", json_object_new_boolean(p->whole_file));
	json_object_object_add(o, "signed_end", json_object_new_int64((int64_t)p->signed_end));
	json_object_object_add(o, "file_size", json_object_new_int64((int64_t)p->file_size));
	json_object_object_add(o, "appended_bytes",
		json_object_new_int64((int64_t)p->appended_bytes));
	json_object_object_add(o, "appended", json_object_new_string(appended_name(p->appended)));
	json_object_object_add(o, "appended_detail", jstr(p->appended_detail));
	json_object_object_add(o, "appended_revisions",
		json_object_new_int64((int64_t)p->appended_revisions));
	json_object_object_add(o, "later_signatures",
		json_object_new_int64((int64_t)p->later_signatures));
	return o;
}

static json_object *
signer_json(const struct cli_signer_report *s, size_t index)
{
	json_object *j = json_object_new_object(), *ts = NULL;

	if (!j)
		return NULL;
	json_object_object_add(j, "index", json_object_new_int64((int64_t)index));
	json_object_object_add(j, "conclusion",
		json_object_new_string(cli_conclusion_name(s->conclusion)));
	json_object_object_add(j, "indication",
		json_object_new_string(cli_indication_name(s->conclusion)));
	json_object_object_add(j, "sub_indication", jstr(s->sub_indication));
	json_object_object_add(j, "reason", jstr(s->reason));
	/* who */
	json_object_object_add(j, "signer", jstr(s->signer));
	json_object_object_add(j, "signer_cn", jstr(s->signer_cn));
	json_object_object_add(j, "nip", jstr(s->nip));
	json_object_object_add(j, "nip_source", jstr(s->nip_source));
	json_object_object_add(j, "position", jstr(s->position));
	json_object_object_add(j, "issuer", jstr(s->issuer));
	json_object_object_add(j, "serial", jstr(s->serial));
	json_object_object_add(j, "not_before", jstr(s->not_before));
	json_object_object_add(j, "not_after", jstr(s->not_after));
	json_object_object_add(j, "digest_algorithm", jstr(s->digest_algorithm));
	/* when */
	json_object_object_add(j, "signing_time", jstr(s->signing_time));
	json_object_object_add(j, "signing_time_source", jstr(time_source_name(s->time_source)));
	json_object_object_add(j, "claimed_signing_time", jstr(s->claimed_time));
	if (s->ts.status != CLI_TST_NONE) {
		ts = json_object_new_object();
		if (ts) {
			json_object_object_add(ts, "status",
				json_object_new_string(tst_status_name(s->ts.status)));
			json_object_object_add(ts, "time", jstr(s->ts.time_iso));
			json_object_object_add(ts, "tsa", jstr(s->ts.tsa));
			json_object_object_add(ts, "error", jstr(s->ts.error));
		}
	}
	json_object_object_add(j, "timestamp", ts);
	/* integrity */
	json_object_object_add(j, "integrity", json_object_new_boolean(s->integrity));
	json_object_object_add(j, "integrity_error",
		jstr(s->format_error ? s->format_error : s->integrity_error));
	/* the certificate */
	json_object_object_add(j, "trusted", json_object_new_boolean(s->trusted));
	json_object_object_add(j, "trust_error", jstr(s->trust_error));
	json_object_object_add(j, "trust_anchor", jstr(s->anchor));
	json_object_object_add(j, "verified", json_object_new_boolean(s->verified));
	json_object_object_add(j, "verify_error", jstr(s->verify_error));
	json_object_object_add(j, "valid_at_signing_time",
		s->cert_validity == CLI_CERT_UNKNOWN ?
			NULL :
			json_object_new_boolean(s->cert_validity == CLI_CERT_VALID));
	json_object_object_add(j, "certificate_status",
		json_object_new_string(s->cert_status ? s->cert_status : "unknown"));
	json_object_object_add(j, "certificate_error", jstr(s->cert_error));
	json_object_object_add(j, "revocation",
		json_object_new_string(revocation_name(s->revocation)));
	json_object_object_add(j, "revocation_time", jstr(s->revocation_time));
	json_object_object_add(j, "revocation_reason", jstr(s->revocation_reason));
	json_object_object_add(j, "coverage", s->is_pdf ? coverage_json(&s->pdf) : NULL);
	json_object_object_add(j, "pdf", s->is_pdf ? pdf_json(&s->pdf) : NULL);
	return j;
}

int
cli_verify_report_json(const struct cli_verify_report *r, json_object **ret)
{
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();
	json_object *arr = json_object_new_array();

	if (!o || !arr) {
		json_object_put(arr);
		return -ENOMEM;
	}
	json_object_object_add(o, "file", jstr(r->file));
	json_object_object_add(o, "format", json_object_new_string(r->is_pdf ? "pdf" : "cms"));
	json_object_object_add(o, "content", jstr(r->content));
	json_object_object_add(o, "verification_time", jstr(r->time));
	json_object_object_add(o, "trust_anchors", json_object_new_int64((int64_t)r->n_anchors));
	json_object_object_add(o, "crls", json_object_new_int64((int64_t)r->n_crls));
	if (r->is_pdf)
		json_object_object_add(o, "unsigned_fields",
			json_object_new_int64((int64_t)r->unsigned_fields));
	json_object_object_add(o, "signatures", arr);
	for (size_t i = 0; i < r->n_signers; i++) {
		json_object *j = signer_json(&r->signers[i], i + 1);

		if (!j || json_object_array_add(arr, j) < 0) {
			json_object_put(j);
			return -ENOMEM;
		}
	}
	json_object_object_add(o, "conclusion",
		json_object_new_string(cli_conclusion_name(r->conclusion)));
	json_object_object_add(o, "indication",
		json_object_new_string(cli_indication_name(r->conclusion)));
	json_object_object_add(o, "reason", jstr(r->error));
	*ret = TAKE_PTR(o);
	return 0;
}

/* --- text --------------------------------------------------------------------------------- */

/* The longest label and a space: "certificate verified (terverifikasi):" in a signature's
 * block (indented by 2), "conclusion (kesimpulan):" at the top. */
#define LABEL_WIDTH_BLOCK 38
#define LABEL_WIDTH_TOP 25

/* "label" then the sanitized value, or "-"; indented inside a signature's block. */
static void
field_print(FILE *f, int indent, const char *label, const char *value)
{
	_cleanup_free_ char *s = cli_sanitize(value);
	int w = indent ? LABEL_WIDTH_BLOCK : LABEL_WIDTH_TOP;

	fprintf(f, "%*s%-*s%s\n", indent, "", w, label, s ? s : "-");
}

static void
field_printf(FILE *f, int indent, const char *label, const char *fmt, ...) _printf_(4, 5);

static void
field_printf(FILE *f, int indent, const char *label, const char *fmt, ...)
{
	_cleanup_free_ char *v = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&v, fmt, ap) < 0)
		v = NULL;
	va_end(ap);
	field_print(f, indent, label, v ? v : "(out of memory)");
}

static void
signer_print(FILE *f, const struct cli_signer_report *s, size_t i, size_t n)
{
	const struct cli_pdf_sig_report *p = &s->pdf;
	const char *who = s->signer_cn ? s->signer_cn : s->signer;

	if (s->is_pdf && p->field) {
		_cleanup_free_ char *field = cli_sanitize(p->field);

		fprintf(f, "\nsignature %zu of %zu (field \"%s\")\n", i + 1, n, field ? field : "");
	} else
		fprintf(f, "\nsignature %zu of %zu\n", i + 1, n);

	/* who */
	if (who)
		field_printf(f, 2, "signer (penanda tangan):", "%s%s%s", who, s->nip ? ", NIP " : "",
			s->nip ? s->nip : "");
	else
		field_print(f, 2, "signer (penanda tangan):",
			s->format_error ? "unknown (the signature cannot be read)" :
					  "unknown (the certificate is not in the signature)");
	if (s->nip && s->nip_source && streq(s->nip_source, "registry"))
		field_print(f, 2, "NIP source:", "the local registry (owners.d)");
	if (s->position)
		field_print(f, 2, "position (jabatan):", s->position);
	if (s->signer)
		field_print(f, 2, "subject:", s->signer);
	field_print(f, 2, "issuer (penerbit):", s->issuer);
	field_print(f, 2, "serial:", s->serial);
	if (s->signer)
		field_printf(f, 2, "certificate validity:", "%s to %s",
			s->not_before ? s->not_before : "?", s->not_after ? s->not_after : "?");

	/* when */
	if (s->time_source == CLI_TIME_TIMESTAMP)
		field_printf(f, 2, "signing time (waktu tanda tangan):",
			"%s, trusted (timestamp by %s)", s->signing_time,
			s->ts.tsa ? s->ts.tsa : "?");
	else if (s->time_source == CLI_TIME_CLAIMED)
		field_printf(f, 2, "signing time (waktu tanda tangan):",
			"%s, claimed by the signer (no trusted timestamp)", s->signing_time);
	else
		field_print(f, 2, "signing time (waktu tanda tangan):", "not stated");
	if (s->time_source == CLI_TIME_TIMESTAMP && s->claimed_time)
		field_print(f, 2, "claimed time:", s->claimed_time);
	if (s->ts.status == CLI_TST_UNTRUSTED || s->ts.status == CLI_TST_INVALID)
		field_printf(f, 2, "timestamp:", "%s (%s): %s",
			s->ts.status == CLI_TST_UNTRUSTED ? "present, not used" : "NOT VALID",
			s->ts.time_iso ? s->ts.time_iso : "no time", s->ts.error ? s->ts.error : "?");
	if (s->is_pdf && p->reason)
		field_print(f, 2, "reason (alasan):", p->reason);
	if (s->is_pdf && p->location)
		field_print(f, 2, "location (lokasi):", p->location);

	/* integrity */
	if (s->format_error)
		field_printf(f, 2, "integrity (keutuhan dokumen):", "NOT CHECKED: %s",
			s->format_error);
	else if (s->integrity)
		field_printf(f, 2, "integrity (keutuhan dokumen):",
			"intact: the %s is unchanged since it was signed%s%s%s",
			s->is_pdf ? "signed part of the document" : "content",
			s->digest_algorithm ? " (" : "",
			s->digest_algorithm ? s->digest_algorithm : "",
			s->digest_algorithm ? ")" : "");
	else
		field_printf(f, 2, "integrity (keutuhan dokumen):", "%s: %s",
			s->integrity_state == CLI_INTEGRITY_UNKNOWN ? "NOT CHECKED" : "FAILED",
			s->integrity_error ? s->integrity_error : "?");
	if (s->is_pdf && p->has_byte_range && !s->format_error) {
		if (p->whole_file)
			field_printf(f, 2, "signed range:",
				"the whole file (%llu bytes), except the signature value",
				(unsigned long long)p->file_size);
		else
			field_printf(f, 2, "signed range:",
				"one revision: the first %llu of %llu bytes, except the signature "
				"value",
				(unsigned long long)p->signed_end, (unsigned long long)p->file_size);
		if (p->appended == CLI_APPENDED_NONE && p->appended_bytes == 0)
			field_print(f, 2, "changed after signing:", "no");
		else if (p->appended == CLI_APPENDED_NONE)
			field_printf(f, 2, "changed after signing:", "no (%llu bytes of %s after it)",
				(unsigned long long)p->appended_bytes,
				p->appended_detail ? p->appended_detail : "padding");
		else if (p->appended == CLI_APPENDED_SIGNATURES)
			field_printf(f, 2, "changed after signing:",
				"only by %zu later signature%s (%llu bytes, one update each)",
				p->later_signatures, p->later_signatures == 1 ? "" : "s",
				(unsigned long long)p->appended_bytes);
		else
			field_printf(f, 2, "changed after signing:", "YES: %s",
				p->appended_detail ? p->appended_detail : "bytes added");
	}

	/* the certificate */
	if (s->format_error) {
		field_print(f, 2, "certificate trusted (terpercaya):", "not checked");
		field_print(f, 2, "certificate verified (terverifikasi):", "not checked");
		field_print(f, 2, "certificate valid (berlaku):", "not checked");
	} else if (s->trusted)
		field_printf(f, 2, "certificate trusted (terpercaya):",
			"yes: it chains to the trust anchor %s", s->anchor ? s->anchor : "?");
	else
		field_printf(f, 2, "certificate trusted (terpercaya):", "no: %s",
			s->trust_error ? s->trust_error : "?");
	if (s->format_error)
		;
	else if (s->verified)
		field_printf(f, 2, "certificate verified (terverifikasi):",
			"yes: every signature in the chain checks (%zu certificate%s)", s->chain_len,
			s->chain_len == 1 ? "" : "s");
	else
		field_printf(f, 2, "certificate verified (terverifikasi):", "%s: %s",
			s->chain == CLI_CHAIN_BAD_SIGNATURE ? "NO" : "not completely",
			s->verify_error ? s->verify_error : "?");
	if (s->format_error)
		;
	else if (s->cert_validity == CLI_CERT_VALID)
		field_print(f, 2, "certificate valid (berlaku):",
			s->time_source == CLI_TIME_TIMESTAMP ? "yes, at the trusted signing time" :
			s->time_source == CLI_TIME_CLAIMED   ? "yes, at the claimed signing time" :
								"yes, now (no signing time stated)");
	else
		field_printf(f, 2, "certificate valid (berlaku):", "%s: %s",
			s->cert_validity == CLI_CERT_INVALID ? "NO" : "unknown",
			s->cert_error ? s->cert_error : "?");
	switch (s->revocation) {
	case CLI_REV_GOOD:
		field_print(f, 2, "revocation (pencabutan):",
			"not revoked (a current CRL of the issuer)");
		break;
	case CLI_REV_REVOKED:
		field_printf(f, 2, "revocation (pencabutan):", "revoked on %s%s%s%s",
			s->revocation_time ? s->revocation_time : "an unknown date",
			s->revocation_reason ? " (" : "",
			s->revocation_reason ? s->revocation_reason : "",
			s->revocation_reason ? ")" : "");
		break;
	case CLI_REV_CRL_MISSING:
		field_print(f, 2, "revocation (pencabutan):", "unknown: no CRL from the issuer");
		break;
	case CLI_REV_CRL_STALE:
		field_print(f, 2, "revocation (pencabutan):",
			"unknown: the issuer's CRL is out of date");
		break;
	default:
		field_print(f, 2, "revocation (pencabutan):", "not checked");
	}
	field_printf(f, 2, "conclusion (kesimpulan):", "%s%s%s%s%s%s",
		cli_conclusion_name(s->conclusion), s->sub_indication ? " (" : "",
		s->sub_indication ? s->sub_indication : "", s->sub_indication ? ")" : "",
		s->reason ? ": " : "", s->reason ? s->reason : "");
}

int
cli_verify_report_print(const struct cli_verify_report *r, FILE *f)
{
	size_t valid = 0;

	field_print(f, 0, "file:", r->file);
	if (r->is_pdf && r->error)
		field_print(f, 0, "format:", "PDF");
	else if (r->is_pdf && r->unsigned_fields)
		field_printf(f, 0, "format:",
			"PDF, %zu signature%s (and %zu empty signature field%s)",
			r->n_signers, r->n_signers == 1 ? "" : "s", r->unsigned_fields,
			r->unsigned_fields == 1 ? "" : "s");
	else if (r->is_pdf)
		field_printf(f, 0, "format:", "PDF, %zu signature%s", r->n_signers,
			r->n_signers == 1 ? "" : "s");
	else {
		field_print(f, 0, "format:", "CMS signature (detached or embedded content)");
		field_print(f, 0, "content:", r->content ? r->content : "(inside the signature)");
	}
	if (r->time)
		field_printf(f, 0, "checked:", "%s, against %zu trust anchor%s and %zu CRL%s",
			r->time, r->n_anchors, r->n_anchors == 1 ? "" : "s", r->n_crls,
			r->n_crls == 1 ? "" : "s");
	if (r->error) {
		field_print(f, 0, "error:", r->error);
		field_print(f, 0, "conclusion (kesimpulan):", cli_conclusion_name(r->conclusion));
		return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
	}
	for (size_t i = 0; i < r->n_signers; i++) {
		signer_print(f, &r->signers[i], i, r->n_signers);
		valid += r->signers[i].conclusion == CLI_VALID;
	}
	fputc('\n', f);
	field_printf(f, 0, "conclusion (kesimpulan):", "%s (%zu of %zu signature%s VALID)",
		cli_conclusion_name(r->conclusion), valid, r->n_signers,
		r->n_signers == 1 ? "" : "s");
	return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}
