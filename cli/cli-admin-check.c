/*
 * The pure pieces of provisioning, reachable from the unit tests without a token, a dialog or a
 * policy directory: revocation reasons and lines (R8, R9), application ids, activation codes,
 * token labels and key ids, the certificate-against-registration check of import-cert (R5, R6,
 * R7, R17, R18) and the status `paraf admin list` shows.
 */
#include "cli-admin.h"

#include <ctype.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "pf-codec.h"

#define DAY (24 * 3600L)

/* R8 grounds (Belu 21, Blitar 30, Depok 21(1), Denpasar 16(1), Serang 16), as tokens. */
const char *const cli_revoke_reasons[] = {
	"left-post", "transferred", "retired", "deceased", "violation",
	"key-lost", "key-damaged", "key-compromise", "superseded", NULL,
};

bool
cli_revoke_reason_valid(const char *reason)
{
	for (size_t i = 0; reason && cli_revoke_reasons[i]; i++)
		if (streq(reason, cli_revoke_reasons[i]))
			return true;
	return false;
}

bool
cli_revoke_reason_is_incident(const char *reason)
{
	/* The reasons pol_decide() answers under R9 (doc/policy.md). */
	return streq(reason, "key-lost") || streq(reason, "key-damaged") ||
	       streq(reason, "key-compromise") || streq(reason, "incident");
}

const char *
cli_incident_reason(const char *kind)
{
	/* R9: lost, damaged or inaccessible keys, and a suspected misuse or leak. A key its
	 * owner can no longer reach is, for revocation, a lost one. */
	static const struct {
		const char *kind, *reason;
	} map[] = {
		{ "lost", "key-lost" },
		{ "damaged", "key-damaged" },
		{ "inaccessible", "key-lost" },
		{ "suspected-misuse", "key-compromise" },
	};

	for (size_t i = 0; kind && i < ARRAY_SIZE(map); i++)
		if (streq(kind, map[i].kind))
			return map[i].reason;
	return NULL;
}

bool
cli_text_line_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (!n || n > max || !pf_utf8_valid(s, n))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static bool
hex64(const char *s)
{
	return s && strlen(s) == CLI_CERT_ID_LEN &&
	       strspn(s, "0123456789abcdef") == CLI_CERT_ID_LEN;
}

int
cli_revoked_line(const char *cert_id, time_t when, const char *reason, const char *note,
	char **ret)
{
	struct tm tm;
	char t[32];
	int n;

	if (!hex64(cert_id) || !reason || !*reason || strspn(reason, "abcdefghijklmnopqrstuvwxyz-") !=
								strlen(reason))
		return -EINVAL;
	if (note && *note && !cli_text_line_ok(note, CLI_PROV_NOTE_MAX))
		return -EINVAL;
	if (!gmtime_r(&when, &tm) || !strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return -EINVAL;
	n = asprintf(ret, "%s %s %s%s%s\n", cert_id, t, reason, note && *note ? " " : "",
		note && *note ? note : "");
	return n < 0 ? -ENOMEM : 0;
}

bool
cli_account_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	/* POSIX portable user names as useradd takes them by default; what goes into a file
	 * name must hold no '/' and start with no '.'. */
	if (!n || n > 32 || !(islower((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '$' && i == n - 1)
			break;
		if (!islower(c) && !isdigit(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

int
cli_application_id(const char *account, time_t now, const uint8_t rnd[2], char *buf, size_t n)
{
	struct tm tm;
	int k;

	if (!cli_account_name_valid(account) || strchr(account, '$'))
		return -EINVAL;
	if (!gmtime_r(&now, &tm))
		return -EINVAL;
	k = snprintf(buf, n, "%s-%04d%02d%02d-%02x%02x", account, tm.tm_year + 1900, tm.tm_mon + 1,
		tm.tm_mday, rnd[0], rnd[1]);
	return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

bool
cli_application_id_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (!n || n > CLI_PROV_APP_ID_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

size_t
cli_activation_code_len(unsigned min_pin, unsigned max_pin)
{
	size_t n = CLI_PROV_CODE_DIGITS;

	if (max_pin && max_pin < n)
		n = max_pin;
	if (min_pin > n)
		n = min_pin;
	/* Fewer than 8 digits can be guessed in a token's tries too often; more than
	 * CLI_PROV_CODE_MAX is more than a person types. */
	if (n < 8 || n > CLI_PROV_CODE_MAX || (max_pin && n > max_pin))
		return 0;
	return n;
}

int
cli_activation_code_make(size_t n, char *buf)
{
	uint8_t rnd[64];
	size_t k = 0;

	if (n == 0 || n > CLI_PROV_CODE_MAX)
		return -EINVAL;
	while (k < n) {
		ssize_t got = getrandom(rnd, sizeof(rnd), 0);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			explicit_bzero(rnd, sizeof(rnd));
			return pf_negerrno();
		}
		/* 250 = 25 * 10: bytes from 250 up would favour the low digits. */
		for (ssize_t i = 0; i < got && k < n; i++)
			if (rnd[i] < 250)
				buf[k++] = (char)('0' + rnd[i] % 10);
	}
	buf[n] = 0;
	explicit_bzero(rnd, sizeof(rnd));
	return 0;
}

void
cli_activation_code_format(const char *code, char *buf, size_t n)
{
	size_t k = 0, len = strlen(code);

	if (!n)
		return;
	for (size_t i = 0; i < len && k + 2 < n; i++) {
		if (i && i % 4 == 0)
			buf[k++] = '-';
		buf[k++] = code[i];
	}
	buf[k] = 0;
}

int
cli_activation_code_normalize(const struct pf_secret *typed, struct pf_secret **ret)
{
	char buf[PF_SECRET_MAX + 1];
	size_t k = 0;
	int r = 0;

	for (size_t i = 0; i < typed->len && r == 0; i++) {
		char c = typed->data[i];

		if (c == ' ' || c == '-')
			continue;
		if (c < '0' || c > '9')
			r = -EINVAL;
		else
			buf[k++] = c;
	}
	if (r == 0 && k == 0)
		r = -EINVAL;
	if (r == 0)
		r = pf_secret_new(buf, k, ret);
	explicit_bzero(buf, sizeof(buf));
	return r;
}

bool
cli_passphrase_holds_code(const char *pass, size_t len, const char *code)
{
	char digits[PF_SECRET_MAX + 1];
	size_t k = 0, n = code ? strlen(code) : 0;
	bool found = false;

	/* The operator saw the code printed in groups: "1234-5678-9012" or "1234 5678 9012" is
	 * the code too. Its digits, in order, with anything between them, are. */
	for (size_t i = 0; i < len && k < sizeof(digits) - 1; i++)
		if (pass[i] >= '0' && pass[i] <= '9')
			digits[k++] = pass[i];
	digits[k] = 0;
	if (n && k >= n)
		found = strstr(digits, code) != NULL;
	explicit_bzero(digits, sizeof(digits));
	return found;
}

void
cli_token_label(const char *name, char *buf, size_t n)
{
	char full[TOK_TOKEN_LABEL_MAX + 8];
	size_t k, len;

	if (!n)
		return;
	snprintf(full, sizeof(full), "PARAF %s", name ? name : "");
	len = strlen(full);
	k = len < TOK_TOKEN_LABEL_MAX ? len : TOK_TOKEN_LABEL_MAX;
	if (k > n - 1)
		k = n - 1;
	/* Cut on a character boundary: never half of a UTF-8 sequence. */
	while (k > 0 && k < len && ((unsigned char)full[k] & 0xc0) == 0x80)
		k--;
	while (k > 0 && full[k - 1] == ' ')
		k--;
	memcpy(buf, full, k);
	buf[k] = 0;
}

void
cli_key_id(const char *application, uint8_t out[CLI_PROV_KEY_ID_LEN])
{
	static const char prefix[] = "paraf-key:";
	unsigned char md[32];
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(c, prefix, sizeof(prefix) - 1) ||
	    !EVP_DigestUpdate(c, application, strlen(application)) ||
	    !EVP_DigestFinal_ex(c, md, NULL))
		memset(md, 0, sizeof(md)); /* out of memory: a fixed id fails visibly later */
	EVP_MD_CTX_free(c);
	memcpy(out, md, CLI_PROV_KEY_ID_LEN);
}

int
cli_key_id_of(const struct pol_owner *o, uint8_t *out, size_t max, size_t *ret_len)
{
	size_t n;

	if (!o->key_id) {
		if (!o->application || max < CLI_PROV_KEY_ID_LEN)
			return -EINVAL;
		cli_key_id(o->application, out);
		*ret_len = CLI_PROV_KEY_ID_LEN;
		return 0;
	}
	/* pol_owner_parse() took only lower-case hex of whole bytes */
	n = strlen(o->key_id);
	if (n % 2 || n / 2 > max)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(o->key_id + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	*ret_len = n / 2;
	return 0;
}

/* --- the certificate against the registration ------------------------------------------- */

static int
bad(const char **ret_field, const char *field, char *msg, size_t msgsz, const char *fmt, ...)
	_printf_(5, 6);

static int
bad(const char **ret_field, const char *field, char *msg, size_t msgsz, const char *fmt, ...)
{
	va_list ap;

	*ret_field = field;
	va_start(ap, fmt);
	vsnprintf(msg, msgsz, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Equal but for ASCII case and runs of spaces: CAs print names in capitals. */
static bool
name_equal(const char *a, const char *b)
{
	while (*a == ' ')
		a++;
	while (*b == ' ')
		b++;
	while (*a && *b) {
		if (*a == ' ' && *b == ' ') {
			while (*a == ' ')
				a++;
			while (*b == ' ')
				b++;
			continue;
		}
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return false;
		a++;
		b++;
	}
	while (*a == ' ')
		a++;
	while (*b == ' ')
		b++;
	return !*a && !*b;
}

/* The UTF-8 values of a subject attribute, one by one: idx from -1. */
static char *
subject_next(const X509_NAME *nm, int nid, int *idx)
{
	unsigned char *u = NULL;
	X509_NAME_ENTRY *e;
	char *s;
	int len;

	*idx = X509_NAME_get_index_by_NID(nm, nid, *idx);
	if (*idx < 0)
		return NULL;
	e = X509_NAME_get_entry(nm, *idx);
	len = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
	if (len < 0)
		return strdup("");
	s = strndup((char *)u, (size_t)len);
	OPENSSL_free(u);
	return s ? s : strdup("");
}

/* When the subject has the attribute, one of its values must be want. */
static int
one_of_subject(const X509_NAME *nm, int nid, const char *want, const char **ret_field,
	const char *field, const char *attr, const char *what, const char *rule, char *msg,
	size_t msgsz)
{
	char first[POL_TEXT_MAX + 1] = "";
	bool seen = false, ok = false;
	int idx = -1;
	char *v;

	while ((v = subject_next(nm, nid, &idx))) {
		if (!seen)
			snprintf(first, sizeof(first), "%s", v);
		seen = true;
		ok = ok || name_equal(v, want);
		free(v);
	}
	if (!seen || ok)
		return 0;
	return bad(ret_field, field, msg, msgsz,
		"the certificate's subject %s is '%s', the registered %s '%s' (%s)", attr, first,
		what, want, rule);
}

static int
check_subject(const struct pol_owner *o, X509 *x, const char **ret_field, char *msg, size_t msgsz)
{
	const X509_NAME *nm = X509_get_subject_name(x);
	GENERAL_NAMES *san;
	bool cn_ok = false, nip_ok = false;
	char first_cn[128] = "";
	int idx = -1, r = 0;
	char *v;

	while ((v = subject_next(nm, NID_commonName, &idx))) {
		if (!first_cn[0])
			snprintf(first_cn, sizeof(first_cn), "%s", v);
		cn_ok = cn_ok || name_equal(v, o->name);
		free(v);
	}
	if (!cn_ok)
		return bad(ret_field, "name", msg, msgsz,
			"the certificate's subject CN is '%s', the registered name '%s' (R17)",
			first_cn[0] ? first_cn : "(none)", o->name);
	if (o->nip) {
		idx = -1;
		while ((v = subject_next(nm, NID_serialNumber, &idx))) {
			nip_ok = nip_ok || strstr(v, o->nip);
			free(v);
		}
		if (!nip_ok)
			return bad(ret_field, "nip", msg, msgsz,
				"the certificate's subject serialNumber does not hold the registered "
				"NIP %s (R17)", o->nip);
	}
	/* The unit (R17) and the position (R18), where the certificate names them. */
	if (o->unit && (r = one_of_subject(nm, NID_organizationalUnitName, o->unit, ret_field,
				"unit", "OU", "unit", "R17", msg, msgsz)) < 0)
		return r;
	if (o->position && (r = one_of_subject(nm, NID_title, o->position, ret_field, "position",
				    "title", "position", "R18", msg, msgsz)) < 0)
		return r;
	/* An e-mail address in the certificate must be the registered one (R17). */
	idx = -1;
	while (r == 0 && (v = subject_next(nm, NID_pkcs9_emailAddress, &idx))) {
		if (!o->email || strcasecmp(v, o->email) != 0)
			r = bad(ret_field, "email", msg, msgsz,
				"the certificate's subject e-mail is '%s', the registered one '%s' (R17)",
				v, o->email ? o->email : "(none)");
		free(v);
	}
	if (r < 0)
		return r;
	san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; san && r == 0 && i < sk_GENERAL_NAME_num(san); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
		const ASN1_IA5STRING *ia5;
		char e[POL_TEXT_MAX + 1];

		if (g->type != GEN_EMAIL)
			continue;
		ia5 = g->d.rfc822Name;
		snprintf(e, sizeof(e), "%.*s", ASN1_STRING_length(ia5),
			(const char *)ASN1_STRING_get0_data(ia5));
		if (!o->email || strcasecmp(e, o->email) != 0)
			r = bad(ret_field, "email", msg, msgsz,
				"the certificate's subjectAltName e-mail is '%s', the registered one "
				"'%s' (R17)", e, o->email ? o->email : "(none)");
	}
	GENERAL_NAMES_free(san);
	return r;
}

static bool
strv_has(const struct pol_strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (streq(v->v[i], s))
			return true;
	return false;
}

static int
check_type(const struct pol_policy *p, const struct pol_owner *o, const struct pol_cert_facts *f,
	const char **ret_field, char *msg, size_t msgsz)
{
	bool has_own = false;

	/* R5: the certificate's policy OIDs name its type; they must name the registered one. */
	for (int t = POL_TYPE_INDIVIDUAL; t < _POL_TYPE_MAX; t++)
		for (size_t i = 0; i < f->policies.n; i++) {
			if (!strv_has(&p->type_oids[t], f->policies.v[i]))
				continue;
			if ((enum pol_type)t != o->type)
				return bad(ret_field, "type", msg, msgsz,
					"the certificate's policy OID %s makes it a %s certificate; the "
					"registration is for %s (R5)", f->policies.v[i],
					pol_type_to_string(t), pol_type_to_string(o->type));
			has_own = true;
		}
	if (p->type_oids[o->type].n && !has_own)
		return bad(ret_field, "type", msg, msgsz,
			"the certificate carries none of the policy's [types] %s OIDs (R5)",
			pol_type_to_string(o->type));
	return 0;
}

static int
check_usage(const struct pol_policy *p, const struct pol_owner *o, const struct pol_cert_facts *f,
	const char **ret_field, char *msg, size_t msgsz)
{
	const char *why = NULL, *first_why = NULL;
	enum pol_usage first = 0;

	if (f->is_ca)
		return bad(ret_field, "usage", msg, msgsz,
			"this is a CA certificate, not an owner's (R6)");
	/* R6: at least one usage of the type that the certificate's extensions allow. */
	for (int u = POL_USAGE_SIGNATURE; u < _POL_USAGE_MAX; u++) {
		if (!(p->usage_matrix[o->type] & POL_USAGE_BIT(u)))
			continue;
		if (pol_usage_in_certificate(p, f, u, &why))
			return 0;
		if (!first) {
			first = u;
			first_why = why;
		}
	}
	if (!first)
		return bad(ret_field, "usage", msg, msgsz,
			"the policy allows no usage for a%s %s certificate (R6)",
			o->type == POL_TYPE_INDIVIDUAL ? "n" : "", pol_type_to_string(o->type));
	return bad(ret_field, "usage", msg, msgsz,
		"the certificate's extensions allow none of the usages of a%s %s certificate "
		"(%s: %s) (R6)", o->type == POL_TYPE_INDIVIDUAL ? "n" : "",
		pol_type_to_string(o->type), pol_usage_to_string(first),
		first_why ? first_why : "not allowed");
}

int
cli_cert_match_registration(const struct pol_policy *p, const struct pol_owner *o, X509 *x,
	time_t now, const char **ret_field, char *msg, size_t msgsz)
{
	struct pol_cert_facts f = {};
	unsigned char *der = NULL;
	int len, r;

	r = check_subject(o, x, ret_field, msg, msgsz);
	if (r < 0)
		return r;
	len = i2d_X509(x, &der);
	if (len <= 0)
		return bad(ret_field, "certificate", msg, msgsz, "the certificate cannot be encoded");
	r = pol_cert_facts_from_der(der, (size_t)len, &f);
	OPENSSL_free(der);
	if (r < 0)
		return bad(ret_field, "certificate", msg, msgsz, "the certificate cannot be read");
	r = check_type(p, o, &f, ret_field, msg, msgsz);
	if (r >= 0)
		r = check_usage(p, o, &f, ret_field, msg, msgsz);
	/* R7: two years, and renewal before expiry. */
	if (r >= 0 && !p->allow_long_validity &&
	    f.not_after - f.not_before > (time_t)p->max_validity_days * DAY)
		r = bad(ret_field, "validity", msg, msgsz,
			"the certificate is valid for %ld days, longer than the %u days the policy "
			"allows (R7)", (long)((f.not_after - f.not_before) / DAY),
			p->max_validity_days);
	if (r >= 0 && now > f.not_after)
		r = bad(ret_field, "validity", msg, msgsz, "the certificate has expired (R7)");
	pol_cert_facts_release(&f);
	if (r >= 0)
		*ret_field = NULL;
	return r;
}

void
cli_entry_status(const struct pol_policy *p, const struct pol_owner *o,
	const struct pol_cert_facts *facts, time_t now, struct cli_entry_status *ret)
{
	const struct pol_revoked *rv;
	struct pol_status st;

	memset(ret, 0, sizeof(*ret));
	if (!o->cert_id[0]) {
		ret->status = "pending";
		ret->reason = !o->token_serial ? "the token is not initialised yet"
						: "awaiting activation by the owner and the certificate";
		return;
	}
	if (facts) {
		ret->days_known = true;
		ret->days_left = (long)((facts->not_after - now) / DAY);
	}
	rv = pol_revoked_find(p, o->cert_id);
	if (rv) {
		ret->status = streq(rv->reason, "superseded") ? "superseded" : "revoked";
		snprintf(ret->buf, sizeof(ret->buf), "revoked on %s (%s): never usable again (R8)",
			rv->when, rv->reason);
		ret->reason = ret->buf;
		return;
	}
	if (!facts) {
		ret->status = "active";
		ret->reason = "no copy of the certificate in certs/: validity unknown";
		return;
	}
	pol_cert_status(p, facts, now, &st);
	ret->status = streq(st.status, "valid") ? "active" : st.status;
	ret->reason = st.reason;
}
