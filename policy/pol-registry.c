/*
 * The applicant's data (R17) and the owner's passphrase (R2, R4), checked before anything
 * reaches a token or the registry; and the registry entry's text. Pure functions.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pol.h"

static int
bad(const char **ret_field, const char *field, char *msg, size_t msgsz, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

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

static bool
all_digits(const char *s, size_t n)
{
	if (!s || strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

static int
num(const char *s, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

static bool
date_ok(int y, int m, int d)
{
	static const int days[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return y >= 1900 && y <= 2100 && m >= 1 && m <= 12 && d >= 1 && d <= days[m - 1];
}

/* Academic, professional and religious titles that a name "without titles" (R17) must not
 * carry, compared without dots and case: "Dr.", "S.Kom", "M.Si", "H."... */
static const char *const titles[] = {
	"dr", "drs", "dra", "ir", "prof", "h", "hj", "st", "se", "sh", "mh", "ssos", "msi", "mt",
	"mm", "mkom", "skom", "spd", "mpd", "sip", "amd", "phd", "mba", "skm", "sked", "mkes",
	"ssi", "sag", "mag", "spsi", "sarch", "mph", "msc", "bsc", "ba", "ma", "sth", "lc", "kh",
};

static bool
is_title(const char *w, size_t n)
{
	char buf[16];
	size_t k = 0;

	for (size_t i = 0; i < n && k < sizeof(buf) - 1; i++)
		if (w[i] != '.')
			buf[k++] = (char)tolower((unsigned char)w[i]);
	buf[k] = 0;
	for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++)
		if (!strcmp(buf, titles[i]))
			return true;
	return false;
}

static int
check_name(const char *name, const char **ret_field, char *msg, size_t msgsz)
{
	const char *p = name;

	if (!name || !*name)
		return bad(ret_field, "name", msg, msgsz, "the full name is required");
	/* Letters (any script), spaces, apostrophes and hyphens: titles bring dots and commas. */
	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		if (*c < 0x80 && !isalpha(*c) && *c != ' ' && *c != '\'' && *c != '-')
			return bad(ret_field, "name", msg, msgsz,
				"the name must be the full name without titles (R17): '%c' is not "
				"allowed", *c);
	while (*p) {
		size_t n;

		while (*p == ' ')
			p++;
		n = strcspn(p, " ");
		if (n && is_title(p, n))
			return bad(ret_field, "name", msg, msgsz,
				"the name must be without titles (R17): '%.*s' is a title", (int)n, p);
		p += n;
	}
	return 0;
}

int
pol_registration_check(const struct pol_policy *p, const struct pol_owner *o,
	const char **ret_field, char *msg, size_t msgsz)
{
	const char *at, *domain;
	int r, d, m, y;

	r = check_name(o->name, ret_field, msg, msgsz);
	if (r < 0)
		return r;
	/* NIK: 16 digits; digits 7-12 are the birth date DDMMYY, women's day + 40. */
	if (!all_digits(o->nik, 16))
		return bad(ret_field, "nik", msg, msgsz, "the NIK must be exactly 16 digits");
	d = num(o->nik + 6, 2);
	m = num(o->nik + 8, 2);
	if (d > 40)
		d -= 40;
	if (!date_ok(2000, m, d))
		return bad(ret_field, "nik", msg, msgsz,
			"the NIK's digits 7-12 must be a birth date (DDMMYY, day + 40 for women)");
	/* NIP: 18 digits: birth date YYYYMMDD, appointment YYYYMM, sex 1 or 2, serial. */
	if (!all_digits(o->nip, 18))
		return bad(ret_field, "nip", msg, msgsz, "the NIP must be exactly 18 digits");
	y = num(o->nip, 4);
	m = num(o->nip + 4, 2);
	d = num(o->nip + 6, 2);
	if (!date_ok(y, m, d) || !date_ok(num(o->nip + 8, 4), num(o->nip + 12, 2), 1) ||
	    (o->nip[14] != '1' && o->nip[14] != '2'))
		return bad(ret_field, "nip", msg, msgsz,
			"the NIP must be a birth date (YYYYMMDD), an appointment month (YYYYMM), "
			"1 or 2, and a serial number");
	if (!o->email || !(at = strchr(o->email, '@')) || at == o->email || strchr(at + 1, '@'))
		return bad(ret_field, "email", msg, msgsz, "the official e-mail address is required");
	domain = at + 1;
	for (size_t i = 0; i < p->email_domains.n; i++) {
		const char *want = p->email_domains.v[i];
		size_t dl = strlen(domain), wl = strlen(want);

		if (!strcasecmp(domain, want) ||
		    (dl > wl && domain[dl - wl - 1] == '.' && !strcasecmp(domain + dl - wl, want)))
			goto email_ok;
	}
	return bad(ret_field, "email", msg, msgsz,
		"the e-mail address must be on an official government domain (R17): '%s' is not "
		"in the policy's [registration] email_domains", domain);
email_ok:
	if (!o->unit || !*o->unit)
		return bad(ret_field, "unit", msg, msgsz, "the organisational unit is required (R17)");
	if (o->type == POL_TYPE_JABATAN) {
		/* R18: a position certificate names the position and its appointment decree. */
		if (!o->position || !*o->position)
			return bad(ret_field, "position", msg, msgsz,
				"a jabatan certificate needs the position (R18)");
		if (!o->decree || !*o->decree)
			return bad(ret_field, "decree", msg, msgsz,
				"a jabatan certificate needs the appointment decree (R18)");
	}
	if (o->type == POL_TYPE_NONE)
		return bad(ret_field, "type", msg, msgsz,
			"the certificate type must be individual, jabatan or system (R5)");
	*ret_field = NULL;
	return 0;
}

static bool
contains(const char *hay, size_t n, const char *needle)
{
	size_t k = needle ? strlen(needle) : 0;

	if (k < 4 || k > n)
		return false;
	for (size_t i = 0; i + k <= n; i++)
		if (!memcmp(hay + i, needle, k))
			return true;
	return false;
}

int
pol_passphrase_check(const struct pol_policy *p, const struct pol_owner *o, const char *pass,
	size_t len, const char *activation_code, unsigned token_min, unsigned token_max, char *msg,
	size_t msgsz)
{
	unsigned min = p->passphrase_min_length;
	char dates[4][16];
	size_t n_dates = 0, i;

	if (token_min > min)
		min = token_min;
	if (len < min) {
		snprintf(msg, msgsz, "the passphrase must be at least %u characters", min);
		return -EINVAL;
	}
	if (token_max && len > token_max) {
		snprintf(msg, msgsz, "the token accepts at most %u characters", token_max);
		return -EINVAL;
	}
	for (i = 1; i < len && pass[i] == pass[0]; i++)
		;
	if (i == len) {
		snprintf(msg, msgsz, "the passphrase must not be one character repeated");
		return -EINVAL;
	}
	if (activation_code && *activation_code && contains(pass, len, activation_code)) {
		snprintf(msg, msgsz, "the passphrase must not contain the activation code");
		return -EINVAL;
	}
	if ((o->nik && contains(pass, len, o->nik)) || (o->nip && contains(pass, len, o->nip))) {
		snprintf(msg, msgsz, "the passphrase must not contain the NIK or the NIP");
		return -EINVAL;
	}
	/* The birth date as DDMMYYYY, YYYYMMDD and DDMMYY, from the NIP (and the NIK's DDMMYY). */
	if (o->nip && all_digits(o->nip, 18)) {
		snprintf(dates[n_dates++], sizeof(dates[0]), "%.8s", o->nip);
		snprintf(dates[n_dates++], sizeof(dates[0]), "%.2s%.2s%.4s", o->nip + 6, o->nip + 4,
			o->nip);
		snprintf(dates[n_dates++], sizeof(dates[0]), "%.2s%.2s%.2s", o->nip + 6, o->nip + 4,
			o->nip + 2);
	}
	if (o->nik && all_digits(o->nik, 16))
		snprintf(dates[n_dates++], sizeof(dates[0]), "%.6s", o->nik + 6);
	for (i = 0; i < n_dates; i++)
		if (contains(pass, len, dates[i])) {
			snprintf(msg, msgsz, "the passphrase must not contain the birth date");
			return -EINVAL;
		}
	return 0;
}

char *
pol_owner_format(const struct pol_owner *o)
{
	char *out = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&out, &size);

	if (!f)
		return NULL;
	fprintf(f, "# paraf owners registry entry (doc/policy.md); written by paraf admin\n[owner]\n");
#define KV(k, v) if ((v) && *(v)) fprintf(f, "%s = %s\n", k, v)
	KV("application", o->application);
	KV("certificate", o->cert_id);
	KV("account", o->account);
	fprintf(f, "type = %s\n", pol_type_to_string(o->type));
	KV("name", o->name);
	KV("nik", o->nik);
	KV("nip", o->nip);
	KV("email", o->email);
	KV("phone", o->phone);
	KV("position", o->position);
	KV("unit", o->unit);
	KV("decree", o->decree);
	KV("superior", o->superior);
	KV("token", o->token_serial);
	KV("key", o->key_id);
	KV("renews", o->renews);
#undef KV
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}
