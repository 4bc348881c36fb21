/*
 * Policy, registry and revocation-list texts to one immutable struct. Text in, struct out:
 * reading the files and checking who may write them (R13) is the agent's loader's work.
 * Unknown sections, keys and values are errors naming the line: a misspelt rule must not
 * silently keep a weaker default.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pf-ini.h"
#include "pol.h"

#define POL_LINE_MAX 4096

static const char *const type_names[_POL_TYPE_MAX] = {
	[POL_TYPE_NONE] = "none",
	[POL_TYPE_INDIVIDUAL] = "individual",
	[POL_TYPE_JABATAN] = "jabatan",
	[POL_TYPE_SYSTEM] = "system",
};

const char *
pol_type_to_string(enum pol_type t)
{
	return (unsigned)t < _POL_TYPE_MAX ? type_names[t] : "none";
}

enum pol_type
pol_type_from_string(const char *s)
{
	for (int t = POL_TYPE_INDIVIDUAL; t < _POL_TYPE_MAX; t++)
		if (strcmp(type_names[t], s) == 0)
			return t;
	/* The regulation's own words for the position type. */
	if (strcmp(s, "position") == 0)
		return POL_TYPE_JABATAN;
	return POL_TYPE_NONE;
}

static void
strv_clear(struct pol_strv *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i]);
	free(v->v);
	v->v = NULL;
	v->n = 0;
}

static int
strv_add(struct pol_strv *v, const char *s, size_t len)
{
	char **n;

	if (v->n >= POL_LIST_MAX)
		return -E2BIG;
	n = realloc(v->v, (v->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	v->v = n;
	n[v->n] = strndup(s, len);
	if (!n[v->n])
		return -ENOMEM;
	v->n++;
	return 0;
}

void
pol_policy_init(struct pol_policy *p)
{
	static const char *const sig_ekus[] = {
		"1.3.6.1.5.5.7.3.36",     /* RFC 9336 documentSigning */
		"1.3.6.1.5.5.7.3.4",      /* emailProtection (S/MIME signing) */
		"1.2.840.113583.1.1.5",   /* Adobe Authentic Documents Trust */
		"1.3.6.1.4.1.311.10.3.12" /* Microsoft document signing */
	};

	memset(p, 0, sizeof(*p));
	/* R6 defaults: the matrix. A system certificate signs as an institutional seal. */
	p->usage_matrix[POL_TYPE_INDIVIDUAL] = POL_USAGE_BIT(POL_USAGE_SIGNATURE) |
		POL_USAGE_BIT(POL_USAGE_EMAIL) | POL_USAGE_BIT(POL_USAGE_DOCUMENT_PROTECTION) |
		POL_USAGE_BIT(POL_USAGE_TLS_CLIENT);
	p->usage_matrix[POL_TYPE_JABATAN] = POL_USAGE_BIT(POL_USAGE_SIGNATURE) |
		POL_USAGE_BIT(POL_USAGE_EMAIL) | POL_USAGE_BIT(POL_USAGE_DOCUMENT_PROTECTION);
	p->usage_matrix[POL_TYPE_SYSTEM] = POL_USAGE_BIT(POL_USAGE_TLS_SERVER) |
		POL_USAGE_BIT(POL_USAGE_TLS_CLIENT) | POL_USAGE_BIT(POL_USAGE_SIGNATURE);
	for (size_t i = 0; i < sizeof(sig_ekus) / sizeof(sig_ekus[0]); i++)
		strv_add(&p->signature_ekus, sig_ekus[i], strlen(sig_ekus[i]));
	p->renew_warning_days = 30;
	p->max_validity_days = 731; /* R7: two years, and a leap day */
	p->revocation = POL_REVOCATION_REQUIRE;
	p->without_logind = POL_NO_LOGIND_DENY;
	p->pin_parameter_types = POL_TYPE_BIT(POL_TYPE_SYSTEM); /* R2 */
	p->max_batch = POL_BATCH_MAX;
	p->pin_timeout = 120;
	strv_add(&p->email_domains, "go.id", 5); /* R17: the government domain */
	p->passphrase_min_length = 8;
}

static void
owner_release(struct pol_owner *o)
{
	free(o->file);
	free(o->account);
	free(o->name);
	free(o->nip);
	free(o->nik);
	free(o->email);
	free(o->position);
	free(o->unit);
	free(o->decree);
	free(o->token_serial);
	free(o->application);
	free(o->phone);
	free(o->superior);
	free(o->renews);
	free(o->key_id);
}

void
pol_policy_release(struct pol_policy *p)
{
	for (int t = 0; t < _POL_TYPE_MAX; t++)
		strv_clear(&p->type_oids[t]);
	strv_clear(&p->signature_ekus);
	strv_clear(&p->email_domains);
	free(p->trust_anchors);
	free(p->crl_dir);
	free(p->pinentry);
	for (size_t i = 0; i < p->n_owners; i++)
		owner_release(&p->owners[i]);
	free(p->owners);
	for (size_t i = 0; i < p->n_revoked; i++) {
		free(p->revoked[i].when);
		free(p->revoked[i].reason);
	}
	free(p->revoked);
	memset(p, 0, sizeof(*p));
}

/* Calls fn for each comma- or space-separated item of v. */
static int
each_item(const char *v, int (*fn)(void *data, const char *s, size_t n), void *data)
{
	while (*v) {
		size_t n;
		int r;

		while (*v == ',' || isspace((unsigned char)*v))
			v++;
		n = strcspn(v, ", \t");
		if (!n)
			break;
		r = fn(data, v, n);
		if (r < 0)
			return r;
		v += n;
	}
	return 0;
}

static int
oid_valid(const char *s, size_t n)
{
	size_t i, arcs = 1;

	if (!n || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[n - 1]))
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
			arcs++;
		} else if (!isdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return arcs >= 2;
}

static int
add_oid(void *data, const char *s, size_t n)
{
	if (!oid_valid(s, n))
		return -EINVAL;
	return strv_add(data, s, n);
}

static int
add_domain(void *data, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
			return -EINVAL;
	if (!n || s[0] == '.' || s[n - 1] == '.')
		return -EINVAL;
	return strv_add(data, s, n);
}

static int
add_usage(void *data, const char *s, size_t n)
{
	unsigned *mask = data;

	for (int u = POL_USAGE_SIGNATURE; u < _POL_USAGE_MAX; u++)
		if (strlen(pol_usage_names[u - 1]) == n && !strncmp(pol_usage_names[u - 1], s, n)) {
			*mask |= POL_USAGE_BIT(u);
			return 0;
		}
	return -EINVAL;
}

static int
add_type(void *data, const char *s, size_t n)
{
	unsigned *mask = data;
	char buf[32];
	enum pol_type t;

	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = 0;
	if (!strcmp(buf, "none"))
		return 0;
	t = pol_type_from_string(buf);
	if (t == POL_TYPE_NONE)
		return -EINVAL;
	*mask |= POL_TYPE_BIT(t);
	return 0;
}

static int
set_str(char **dst, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

static int
policy_kv(void *data, const char *sec, const char *key, const char *v, char *err, size_t errsz)
{
	struct pol_policy *p = data;
	const char *expect = NULL;
	int r = -ENOENT;

#define IS(s, k) (!strcmp(sec, s) && !strcmp(key, k))
	if (!strcmp(sec, "types") || !strcmp(sec, "usage")) {
		enum pol_type t = pol_type_from_string(key);
		if (t == POL_TYPE_NONE) {
			snprintf(err, errsz, "unknown certificate type '%s' (individual, jabatan, system)",
				key);
			return -EINVAL;
		}
		if (!strcmp(sec, "types")) {
			strv_clear(&p->type_oids[t]);
			r = each_item(v, add_oid, &p->type_oids[t]);
			expect = "a list of dotted OIDs";
		} else {
			p->usage_matrix[t] = 0;
			r = each_item(v, add_usage, &p->usage_matrix[t]);
			expect = "a list of usages (signature, email, tls-client, tls-server, "
				 "document-protection)";
		}
	} else if (IS("signature", "extended_key_usages")) {
		strv_clear(&p->signature_ekus);
		r = each_item(v, add_oid, &p->signature_ekus);
		expect = "a list of dotted OIDs";
	} else if (IS("validity", "renew_warning_days")) {
		r = pf_parse_uint(v, 0, 3650, &p->renew_warning_days);
		expect = "a number of days (0-3650)";
	} else if (IS("validity", "max_validity_days")) {
		r = pf_parse_uint(v, 1, 36500, &p->max_validity_days);
		expect = "a number of days";
	} else if (IS("validity", "allow_long_validity")) {
		r = pf_parse_bool(v, &p->allow_long_validity);
		expect = "yes or no";
	} else if (IS("trust", "anchors")) {
		r = v[0] == '/' ? set_str(&p->trust_anchors, v) : -EINVAL;
		expect = "an absolute directory path";
	} else if (IS("trust", "crl_dir")) {
		r = v[0] == '/' ? set_str(&p->crl_dir, v) : -EINVAL;
		expect = "an absolute directory path";
	} else if (IS("trust", "revocation")) {
		r = 0;
		if (!strcmp(v, "require"))
			p->revocation = POL_REVOCATION_REQUIRE;
		else if (!strcmp(v, "best-effort"))
			p->revocation = POL_REVOCATION_BEST_EFFORT;
		else
			r = -EINVAL;
		expect = "require or best-effort";
	} else if (IS("owner", "root_may_own")) {
		r = pf_parse_bool(v, &p->root_may_own);
		expect = "yes or no";
	} else if (IS("session", "allow_remote")) {
		r = pf_parse_bool(v, &p->allow_remote_session);
		expect = "yes or no";
	} else if (IS("session", "allow_inactive")) {
		r = pf_parse_bool(v, &p->allow_inactive_session);
		expect = "yes or no";
	} else if (IS("session", "without_logind")) {
		r = 0;
		if (!strcmp(v, "deny"))
			p->without_logind = POL_NO_LOGIND_DENY;
		else if (!strcmp(v, "allow"))
			p->without_logind = POL_NO_LOGIND_ALLOW;
		else
			r = -EINVAL;
		expect = "deny or allow";
	} else if (IS("pin", "parameter_types")) {
		p->pin_parameter_types = 0;
		r = each_item(v, add_type, &p->pin_parameter_types);
		expect = "a list of certificate types, or none";
	} else if (IS("pin", "max_batch")) {
		r = pf_parse_uint(v, 1, POL_BATCH_MAX, &p->max_batch);
		expect = "a number from 1 to 500";
	} else if (IS("pin", "pinentry")) {
		r = v[0] == '/' ? set_str(&p->pinentry, v) : -EINVAL;
		expect = "an absolute program path";
	} else if (IS("registration", "email_domains")) {
		strv_clear(&p->email_domains);
		r = each_item(v, add_domain, &p->email_domains);
		expect = "a list of domain names";
	} else if (IS("keys", "algorithm")) {
		r = 0;
		if (!strcmp(v, "ec-p256"))
			p->key_rsa = false;
		else if (!strcmp(v, "rsa-3072"))
			p->key_rsa = true;
		else
			r = -EINVAL;
		expect = "ec-p256 or rsa-3072";
	} else if (IS("passphrase", "min_length")) {
		r = pf_parse_uint(v, 6, 256, &p->passphrase_min_length);
		expect = "a number from 6 to 256";
	} else if (IS("pin", "timeout")) {
		r = pf_parse_uint(v, 5, 3600, &p->pin_timeout);
		expect = "a number of seconds (5-3600)";
	}
#undef IS
	if (r == -ENOENT)
		snprintf(err, errsz, "unknown setting '%s' in [%s]", key, sec);
	else if (r < 0)
		snprintf(err, errsz, "bad value '%s' for '%s': expected %s", v, key, expect);
	return r < 0 ? -EINVAL : 0;
}

int
pol_policy_parse(struct pol_policy *p, const char *name, const char *text, char *ret_error,
	size_t error_size)
{
	return pf_ini_parse(name, text, policy_kv, p, ret_error, error_size);
}

/* --- owners.d --------------------------------------------------------------------------- */

static int
hex64_valid(const char *v)
{
	if (strlen(v) != 64)
		return 0;
	for (int i = 0; i < 64; i++)
		if (!isdigit((unsigned char)v[i]) && !(v[i] >= 'a' && v[i] <= 'f'))
			return 0;
	return 1;
}

static int
text_valid(const char *v)
{
	size_t n = strlen(v);

	if (!n || n > POL_TEXT_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return 0;
	return 1;
}

static int
owner_kv(void *data, const char *sec, const char *key, const char *v, char *err, size_t errsz)
{
	struct pol_owner *o = data;
	char **dst = NULL;

	if (strcmp(sec, "owner") != 0) {
		snprintf(err, errsz, "unknown section [%s]; a registry file has one [owner]", sec);
		return -EINVAL;
	}
	if (!strcmp(key, "certificate")) {
		if (!hex64_valid(v)) {
			snprintf(err, errsz, "'certificate' must be 64 lower-case hex digits (the "
					     "certificate's SHA-256)");
			return -EINVAL;
		}
		memcpy(o->cert_id, v, 65);
		return 0;
	}
	if (!strcmp(key, "type")) {
		o->type = pol_type_from_string(v);
		if (o->type == POL_TYPE_NONE) {
			snprintf(err, errsz, "'type' must be individual, jabatan or system, not '%s'", v);
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(key, "account"))
		dst = &o->account;
	else if (!strcmp(key, "name"))
		dst = &o->name;
	else if (!strcmp(key, "nip"))
		dst = &o->nip;
	else if (!strcmp(key, "nik"))
		dst = &o->nik;
	else if (!strcmp(key, "email"))
		dst = &o->email;
	else if (!strcmp(key, "position"))
		dst = &o->position;
	else if (!strcmp(key, "unit"))
		dst = &o->unit;
	else if (!strcmp(key, "decree"))
		dst = &o->decree;
	else if (!strcmp(key, "token"))
		dst = &o->token_serial;
	else if (!strcmp(key, "application"))
		dst = &o->application;
	else if (!strcmp(key, "phone"))
		dst = &o->phone;
	else if (!strcmp(key, "superior"))
		dst = &o->superior;
	else if (!strcmp(key, "renews")) {
		if (!hex64_valid(v)) {
			snprintf(err, errsz, "'renews' must be the 64 hex digits of the certificate renewed");
			return -EINVAL;
		}
		dst = &o->renews;
	} else if (!strcmp(key, "key")) {
		/* the CKA_ID of the token key (paraf activate, paraf admin import-cert) */
		if (strlen(v) % 2 || strlen(v) > 128 || strspn(v, "0123456789abcdef") != strlen(v)) {
			snprintf(err, errsz, "'key' must be the lower-case hex of the key's CKA_ID");
			return -EINVAL;
		}
		dst = &o->key_id;
	}
	if (!dst) {
		snprintf(err, errsz, "unknown key '%s' in [owner]", key);
		return -EINVAL;
	}
	if (!text_valid(v)) {
		snprintf(err, errsz, "'%s' must be 1 to %d characters without control characters", key,
			POL_TEXT_MAX);
		return -EINVAL;
	}
	return set_str(dst, v);
}

int
pol_owner_parse(struct pol_policy *p, const char *name, const char *text, char *ret_error,
	size_t error_size)
{
	struct pol_owner o = {};
	struct pol_owner *n;
	int r;

	if (p->n_owners >= POL_OWNERS_MAX) {
		snprintf(ret_error, error_size, "%s: more than %d registry entries", name,
			POL_OWNERS_MAX);
		return -E2BIG;
	}
	r = pf_ini_parse(name, text, owner_kv, &o, ret_error, error_size);
	if (r >= 0) {
		/* An application (R4) is registered before its certificate exists. */
		const char *missing = !o.cert_id[0] && !o.application ? "certificate" : !o.account ? "account"
					: o.type == POL_TYPE_NONE ? "type" : !o.name ? "name" : NULL;
		if (!missing && o.type == POL_TYPE_JABATAN && !o.position)
			missing = "position"; /* R18: a jabatan certificate names its position */
		if (missing) {
			snprintf(ret_error, error_size, "%s: missing '%s' in [owner]", name, missing);
			r = -EINVAL;
		} else if (o.cert_id[0] && pol_owner_find(p, o.cert_id)) {
			snprintf(ret_error, error_size, "%s: certificate %.16s… is registered twice",
				name, o.cert_id);
			r = -EEXIST;
		}
	}
	if (r >= 0 && !(o.file = strdup(name)))
		r = -ENOMEM;
	if (r >= 0 && !(n = realloc(p->owners, (p->n_owners + 1) * sizeof(*n))))
		r = -ENOMEM;
	if (r < 0) {
		owner_release(&o);
		return r;
	}
	p->owners = n;
	p->owners[p->n_owners++] = o;
	return 0;
}

const struct pol_owner *
pol_owner_find(const struct pol_policy *p, const char *cert_id)
{
	for (size_t i = 0; cert_id[0] && i < p->n_owners; i++)
		if (!strcmp(p->owners[i].cert_id, cert_id))
			return &p->owners[i];
	return NULL;
}

/* --- the local revocation list (R8) -------------------------------------------------- */

int
pol_revoked_parse(struct pol_policy *p, const char *name, const char *text, char *ret_error,
	size_t error_size)
{
	const char *s = text;
	unsigned lineno = 0;

	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		char line[POL_LINE_MAX], id[65] = "", when[64] = "", reason[64] = "";
		struct pol_revoked *n;
		int k;

		lineno++;
		if (len >= sizeof(line)) {
			snprintf(ret_error, error_size, "%s:%u: line too long", name, lineno);
			return -EINVAL;
		}
		memcpy(line, s, len);
		line[len] = 0;
		s += len + (nl ? 1 : 0);
		if (!*pf_strip(line) || *pf_strip(line) == '#')
			continue;
		k = sscanf(line, "%64s %63s %63s", id, when, reason);
		if (k < 3 || !hex64_valid(id)) {
			snprintf(ret_error, error_size,
				"%s:%u: expected '<certificate id> <time> <reason> [note]'", name, lineno);
			return -EINVAL;
		}
		if (pol_revoked_find(p, id))
			continue; /* revoked twice is still revoked */
		n = realloc(p->revoked, (p->n_revoked + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		p->revoked = n;
		memcpy(n[p->n_revoked].cert_id, id, 65);
		n[p->n_revoked].when = strdup(when);
		n[p->n_revoked].reason = strdup(reason);
		if (!n[p->n_revoked].when || !n[p->n_revoked].reason)
			return -ENOMEM;
		p->n_revoked++;
	}
	return 0;
}

const struct pol_revoked *
pol_revoked_find(const struct pol_policy *p, const char *cert_id)
{
	for (size_t i = 0; i < p->n_revoked; i++)
		if (!strcmp(p->revoked[i].cert_id, cert_id))
			return &p->revoked[i];
	return NULL;
}
