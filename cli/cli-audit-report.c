/*
 * The yearly evaluation report (R14, "supervision and evaluation at least once a year,
 * reported upward"): what the audit log says about one calendar year (UTC), joined with the
 * registry (owners.d: unit and type by certificate id), the revocation list, incidents.log and
 * the certificate copies in certs/. The counting is pure (records in, JSON out) so that it can
 * be tested without a log; the HTML page is drawn from the JSON alone, so both say the same.
 *
 * A record resent after a lost acknowledgement (the same record_id twice) is counted once;
 * continuation records of a long sign record are counted through its `documents_total`.
 */
#include "cli.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>

#include <openssl/pem.h>

#include "pol.h"

#define REPORT_SCHEMA "paraf-audit-report/1"
#define REPORT_INCIDENT_MATCH_SEC 600 /* a log line and a record this close are one incident */
#define REPORT_CERTS_MAX 65536        /* files read from certs/ */
#define DAY 86400

static const char *const month_names[12] = { "Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul",
	"Agu", "Sep", "Okt", "Nov", "Des" };

/* --- small tallies ---------------------------------------------------------------------- */

struct tally_item {
	char *key;
	char *extra; /* a second key (a refusal's rule beside its reason) */
	uint64_t a, b;
};

struct tally {
	struct tally_item *v;
	size_t n;
};

static void
tally_release(struct tally *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].key);
		free(t->v[i].extra);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

static struct tally_item *
tally_get(struct tally *t, const char *key, const char *extra)
{
	struct tally_item *nv;

	for (size_t i = 0; i < t->n; i++)
		if (streq(t->v[i].key, key) &&
		    ((!extra && !t->v[i].extra) ||
			    (extra && t->v[i].extra && streq(extra, t->v[i].extra))))
			return &t->v[i];
	nv = realloc(t->v, (t->n + 1) * sizeof(*nv));
	if (!nv)
		return NULL;
	t->v = nv;
	memset(&nv[t->n], 0, sizeof(*nv));
	nv[t->n].key = strdup(key);
	nv[t->n].extra = extra ? strdup(extra) : NULL;
	if (!nv[t->n].key || (extra && !nv[t->n].extra)) {
		free(nv[t->n].key);
		free(nv[t->n].extra);
		return NULL;
	}
	return &nv[t->n++];
}

static bool
tally_has(const struct tally *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (streq(t->v[i].key, key))
			return true;
	return false;
}

/* Largest first, then by key: the order of the tables and charts. */
static int
item_cmp(const void *x, const void *y)
{
	const struct tally_item *a = x, *b = y;

	if (a->a != b->a)
		return a->a > b->a ? -1 : 1;
	return strcmp(a->key, b->key);
}

/* A set of record ids: open addressing, grown at half full. */
struct idset {
	char **slot;
	size_t cap, n;
};

static uint64_t
str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void
idset_release(struct idset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

/* 1 when added, 0 when there already, -ENOMEM. */
static int
idset_add(struct idset *s, const char *id)
{
	size_t i;

	if ((s->n + 1) * 2 > s->cap) {
		struct idset g = { .cap = s->cap ? s->cap * 2 : 1024 };

		g.slot = calloc(g.cap, sizeof(*g.slot));
		if (!g.slot)
			return -ENOMEM;
		for (size_t k = 0; k < s->cap; k++)
			if (s->slot[k]) {
				for (i = str_hash(s->slot[k]) & (g.cap - 1); g.slot[i];
					i = (i + 1) & (g.cap - 1))
					;
				g.slot[i] = s->slot[k];
			}
		g.n = s->n;
		free(s->slot);
		*s = g;
	}
	for (i = str_hash(id) & (s->cap - 1); s->slot[i]; i = (i + 1) & (s->cap - 1))
		if (streq(s->slot[i], id))
			return 0;
	s->slot[i] = strdup(id);
	if (!s->slot[i])
		return -ENOMEM;
	s->n++;
	return 1;
}

/* --- the report ------------------------------------------------------------------------- */

struct cli_report {
	struct cli_report_input in;
	time_t year_start, year_end; /* [start, end) */
	uint64_t seen, in_year, duplicates, continuations;
	uint64_t sig_requests, sig_documents, refusals, unfinished;
	uint64_t month_req[12], month_docs[12], month_refusals[12];
	struct tally units, types, usages;          /* a: requests, b: documents */
	struct tally rules, reasons, deny_methods;  /* a: refusals */
	struct tally outcomes;                      /* a: allowed requests that did not sign */
	struct tally used;                          /* certificates that signed in the year */
	struct tally revoke_recorded;               /* certificates an admin.revoke record names */
	json_object *incident_records;              /* [{time_t, token, kind, message}] */
	struct idset ids;
};

static const struct pol_owner *
owner_of(const struct cli_report *r, const char *cert)
{
	return r->in.policy && cert ? pol_owner_find(r->in.policy, cert) : NULL;
}

int
cli_report_new(const struct cli_report_input *in, struct cli_report **ret)
{
	struct cli_report *r = calloc(1, sizeof(*r));
	struct tm tm = { .tm_mday = 1, .tm_year = in->year - 1900 };

	if (!r)
		return -ENOMEM;
	r->in = *in;
	r->year_start = timegm(&tm);
	tm = (struct tm){ .tm_mday = 1, .tm_year = in->year + 1 - 1900 };
	r->year_end = timegm(&tm);
	r->incident_records = json_object_new_array();
	if (!r->incident_records) {
		free(r);
		return -ENOMEM;
	}
	*ret = r;
	return 0;
}

struct cli_report *
cli_report_free(struct cli_report *r)
{
	if (!r)
		return NULL;
	tally_release(&r->units);
	tally_release(&r->types);
	tally_release(&r->usages);
	tally_release(&r->rules);
	tally_release(&r->reasons);
	tally_release(&r->deny_methods);
	tally_release(&r->outcomes);
	tally_release(&r->used);
	tally_release(&r->revoke_recorded);
	json_object_put(r->incident_records);
	idset_release(&r->ids);
	free(r);
	return NULL;
}

static const char *
str_or(const char *s, const char *dflt)
{
	return s && *s ? s : dflt;
}

/* "…token <serial> <kind>" up to end (exclusive): the serial may hold spaces, the kind not. */
static bool
split_token_kind(const char *p, const char *end, char *serial, size_t ssz, char *kind,
	size_t ksz)
{
	const char *sp;

	if (!end || end <= p)
		return false;
	for (sp = end - 1; sp > p && *sp != ' '; sp--)
		;
	if (sp <= p || (size_t)(sp - p) >= ssz || (size_t)(end - sp - 1) >= ksz)
		return false;
	memcpy(serial, p, (size_t)(sp - p));
	serial[sp - p] = 0;
	memcpy(kind, sp + 1, (size_t)(end - sp - 1));
	kind[end - sp - 1] = 0;
	return *serial && *kind;
}

int
cli_report_add(struct cli_report *r, const struct cli_audit_entry *e)
{
	json_object *rec = e->record, *docs, *total;
	const char *id = cli_json_str(rec, "record_id"), *method = cli_json_str(rec, "method");
	const char *verdict = cli_json_str(rec, "verdict"), *cert = cli_json_str(rec, "certificate");
	const char *outcome = cli_json_str(rec, "outcome");
	time_t t = cli_audit_entry_time(e);
	struct tally_item *it;
	struct tm tm;
	uint64_t ndocs = 0;
	int k;

	r->seen++;
	if (id) {
		k = idset_add(&r->ids, id);
		if (k < 0)
			return k;
		if (k == 0) {
			r->duplicates++; /* a resend after a lost acknowledgement */
			return 0;
		}
	}
	if (cli_json_str(rec, "continues")) {
		r->continuations++;
		return 0;
	}
	if (method && streq(method, "admin.revoke") && verdict && streq(verdict, "allow") && cert &&
	    !tally_get(&r->revoke_recorded, cert, NULL))
		return -ENOMEM;
	if (t < r->year_start || t >= r->year_end || !gmtime_r(&t, &tm))
		return 0;
	r->in_year++;
	if (json_object_object_get_ex(rec, "documents_total", &total))
		ndocs = (uint64_t)json_object_get_int64(total);
	else if (json_object_object_get_ex(rec, "documents", &docs) &&
		 json_object_is_type(docs, json_type_array))
		ndocs = json_object_array_length(docs);

	if (verdict && streq(verdict, "deny")) {
		const char *rule = str_or(cli_json_str(rec, "rule"), "(none)");
		const char *reason = str_or(cli_json_str(rec, "reason"), "(none)");

		r->refusals++;
		r->month_refusals[tm.tm_mon]++;
		if (!(it = tally_get(&r->rules, rule, NULL)))
			return -ENOMEM;
		it->a++;
		if (!(it = tally_get(&r->reasons, reason, rule)))
			return -ENOMEM;
		it->a++;
		if (!(it = tally_get(&r->deny_methods, str_or(method, "(none)"), NULL)))
			return -ENOMEM;
		it->a++;
		return 0;
	}
	if (!verdict || !streq(verdict, "allow") || !method)
		return 0;
	if (streq(method, "sign")) {
		const struct pol_owner *o = owner_of(r, cert);
		const char *unit = o ? str_or(o->unit, "(no unit)") : "(not registered)";
		const char *type = str_or(cli_json_str(rec, "certificate_type"),
			o ? pol_type_to_string(o->type) : NULL);

		if (!outcome || !streq(outcome, "signed")) {
			r->unfinished++;
			if (!(it = tally_get(&r->outcomes, str_or(outcome, "(none)"), NULL)))
				return -ENOMEM;
			it->a++;
			return 0;
		}
		r->sig_requests++;
		r->sig_documents += ndocs;
		r->month_req[tm.tm_mon]++;
		r->month_docs[tm.tm_mon] += ndocs;
#define COUNT(t, key)                                             \
	do {                                                      \
		if (!(it = tally_get(t, key, NULL)))              \
			return -ENOMEM;                           \
		it->a++;                                          \
		it->b += ndocs;                                   \
	} while (0)
		COUNT(&r->units, unit);
		COUNT(&r->types, str_or(type, "(unknown)"));
		COUNT(&r->usages, str_or(cli_json_str(rec, "usage"), "(unknown)"));
		if (cert)
			COUNT(&r->used, cert);
#undef COUNT
	} else if (streq(method, "admin.incident")) {
		const char *msg = cli_json_str(rec, "message"), *p, *end;
		char serial[256], kind[64];
		json_object *j;

		/* "security incident: token <serial> <kind>; …" (cli-admin-revoke.c) */
		p = msg ? strstr(msg, "token ") : NULL;
		end = p ? strchr(p, ';') : NULL;
		if (!p || !split_token_kind(p + 6, end, serial, sizeof(serial), kind, sizeof(kind)))
			serial[0] = kind[0] = 0;
		j = json_object_new_object();
		json_object_object_add(j, "t", json_object_new_int64((int64_t)t));
		json_object_object_add(j, "token", serial[0] ? json_object_new_string(serial) : NULL);
		json_object_object_add(j, "kind", kind[0] ? json_object_new_string(kind) : NULL);
		json_object_object_add(j, "message", msg ? json_object_new_string(msg) : NULL);
		json_object_object_add(j, "seq", json_object_new_int64((int64_t)e->seq));
		json_object_array_add(r->incident_records, j);
	}
	return 0;
}

/* --- JSON ------------------------------------------------------------------------------- */

static json_object *
jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *
jtime(time_t t)
{
	struct tm tm;
	char buf[32];

	if (t < 0 || !gmtime_r(&t, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return NULL;
	return json_object_new_string(buf);
}

static json_object *
tally_json(struct tally *t, const char *key_name, const char *extra_name, const char *a_name,
	const char *b_name)
{
	json_object *arr = json_object_new_array();

	if (t->n)
		qsort(t->v, t->n, sizeof(*t->v), item_cmp);
	for (size_t i = 0; i < t->n; i++) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, key_name, json_object_new_string(t->v[i].key));
		if (extra_name)
			json_object_object_add(o, extra_name, jstr(t->v[i].extra));
		json_object_object_add(o, a_name, json_object_new_int64((int64_t)t->v[i].a));
		if (b_name)
			json_object_object_add(o, b_name, json_object_new_int64((int64_t)t->v[i].b));
		json_object_array_add(arr, o);
	}
	return arr;
}

static void
owner_fields(json_object *o, const struct pol_owner *ow)
{
	json_object_object_add(o, "account", jstr(ow ? ow->account : NULL));
	json_object_object_add(o, "name", jstr(ow ? ow->name : NULL));
	json_object_object_add(o, "unit", jstr(ow ? ow->unit : NULL));
	json_object_object_add(o, "type", jstr(ow ? pol_type_to_string(ow->type) : NULL));
}

static const struct cli_report_cert *
cert_find(const struct cli_report *r, const char *id)
{
	for (size_t i = 0; i < r->in.n_certs; i++)
		if (streq(r->in.certs[i].id, id))
			return &r->in.certs[i];
	return NULL;
}

/* incidents.log lines of the year, each joined with a record of the same incident. */
static json_object *
incidents_json(struct cli_report *r)
{
	json_object *arr = json_object_new_array();
	size_t nrec = json_object_array_length(r->incident_records);
	bool *matched = calloc(nrec ? nrec : 1, sizeof(bool));
	const char *s = r->in.incidents;

	if (!matched)
		return arr;
	while (s && *s) {
		const char *nl = strchr(s, '\n'), *sp, *tok, *by;
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		_cleanup_free_ char *line = strndup(s, len);
		char serial[256] = "", kind[64] = "";
		json_object *o, *src;
		time_t t;

		s += len + (nl ? 1 : 0);
		if (!line || !*line || line[0] == '#')
			continue;
		sp = strchr(line, ' ');
		if (!sp)
			continue;
		{
			_cleanup_free_ char *ts = strndup(line, (size_t)(sp - line));
			if (!ts || cli_time_parse(ts, false, &t) < 0)
				continue;
		}
		if (t < r->year_start || t >= r->year_end)
			continue;
		tok = strstr(sp, " token ");
		by = tok ? strstr(tok, " by ") : NULL;
		if (tok)
			split_token_kind(tok + 7, by, serial, sizeof(serial), kind, sizeof(kind));
		o = json_object_new_object();
		src = json_object_new_array();
		json_object_array_add(src, json_object_new_string("incidents.log"));
		json_object_object_add(o, "time", jtime(t));
		json_object_object_add(o, "token", serial[0] ? json_object_new_string(serial) : NULL);
		json_object_object_add(o, "kind", kind[0] ? json_object_new_string(kind) : NULL);
		json_object_object_add(o, "text", json_object_new_string(line));
		json_object_object_add(o, "seq", NULL);
		for (size_t i = 0; i < nrec; i++) {
			json_object *rec = json_object_array_get_idx(r->incident_records, i);
			time_t rt = (time_t)json_object_get_int64(json_object_object_get(rec, "t"));
			const char *rtok = cli_json_str(rec, "token"), *rkind = cli_json_str(rec, "kind");

			if (matched[i] || !rtok || !rkind || !streq(rtok, serial) ||
			    !streq(rkind, kind) || llabs((long long)(rt - t)) > REPORT_INCIDENT_MATCH_SEC)
				continue;
			matched[i] = true;
			json_object_array_add(src, json_object_new_string("audit"));
			json_object_object_add(o, "seq",
				json_object_get(json_object_object_get(rec, "seq")));
			break;
		}
		json_object_object_add(o, "sources", src);
		json_object_array_add(arr, o);
	}
	/* Records with no line in incidents.log (a file restored from an older backup, or
	 * edited: worth a look). */
	for (size_t i = 0; i < nrec; i++) {
		json_object *rec = json_object_array_get_idx(r->incident_records, i), *o, *src;

		if (matched[i])
			continue;
		o = json_object_new_object();
		src = json_object_new_array();
		json_object_array_add(src, json_object_new_string("audit"));
		json_object_object_add(o, "time",
			jtime((time_t)json_object_get_int64(json_object_object_get(rec, "t"))));
		json_object_object_add(o, "token", json_object_get(json_object_object_get(rec,
			"token")));
		json_object_object_add(o, "kind", json_object_get(json_object_object_get(rec,
			"kind")));
		json_object_object_add(o, "text", json_object_get(json_object_object_get(rec,
			"message")));
		json_object_object_add(o, "seq", json_object_get(json_object_object_get(rec, "seq")));
		json_object_object_add(o, "sources", src);
		json_object_array_add(arr, o);
	}
	free(matched);
	return arr;
}

static int
expiring_cmp(const void *x, const void *y)
{
	json_object *a = *(json_object *const *)x, *b = *(json_object *const *)y;
	int64_t da = json_object_get_int64(json_object_object_get(a, "days_left"));
	int64_t db = json_object_get_int64(json_object_object_get(b, "days_left"));

	if (da != db)
		return da < db ? -1 : 1;
	return strcmp(cli_json_str(a, "certificate"), cli_json_str(b, "certificate"));
}

json_object *
cli_report_json(struct cli_report *r)
{
	const struct pol_policy *p = r->in.policy;
	json_object *o = json_object_new_object(), *log = json_object_new_object(), *j, *arr;
	json_object *months = json_object_new_array();
	time_t horizon = r->in.now + (time_t)CLI_REPORT_EXPIRY_DAYS * DAY;

	json_object_object_add(o, "schema", json_object_new_string(REPORT_SCHEMA));
	json_object_object_add(o, "year", json_object_new_int(r->in.year));
	json_object_object_add(o, "generated", jtime(r->in.now));
	json_object_object_add(o, "audit_dir", jstr(r->in.audit_dir));
	json_object_object_add(o, "policy_dir", jstr(r->in.policy_dir));

	json_object_object_add(log, "checked", json_object_new_boolean(r->in.log.checked));
	json_object_object_add(log, "intact", json_object_new_boolean(r->in.log.checked &&
		r->in.log.intact));
	json_object_object_add(log, "records", json_object_new_int64((int64_t)r->in.log.records));
	json_object_object_add(log, "head", r->in.log.intact ? jstr(r->in.log.head) : NULL);
	json_object_object_add(log, "fault", jstr(r->in.log.intact ? NULL : r->in.log.fault));
	json_object_object_add(log, "file", r->in.log.intact ? NULL :
		jstr(r->in.log.file && *r->in.log.file ? r->in.log.file : NULL));
	json_object_object_add(log, "line", r->in.log.intact ? NULL :
		json_object_new_int64((int64_t)r->in.log.line));
	json_object_object_add(log, "seq", r->in.log.intact ? NULL :
		json_object_new_int64((int64_t)r->in.log.seq));
	json_object_object_add(log, "detail", r->in.log.intact ? NULL :
		jstr(r->in.log.detail && *r->in.log.detail ? r->in.log.detail : NULL));
	json_object_object_add(log, "records_read", json_object_new_int64((int64_t)r->seen));
	json_object_object_add(log, "records_in_year", json_object_new_int64((int64_t)r->in_year));
	json_object_object_add(log, "duplicates", json_object_new_int64((int64_t)r->duplicates));
	json_object_object_add(log, "continuations",
		json_object_new_int64((int64_t)r->continuations));
	json_object_object_add(o, "log", log);

	/* signatures */
	j = json_object_new_object();
	json_object_object_add(j, "requests", json_object_new_int64((int64_t)r->sig_requests));
	json_object_object_add(j, "documents", json_object_new_int64((int64_t)r->sig_documents));
	for (int m = 0; m < 12; m++) {
		json_object *mo = json_object_new_object();
		char key[8];

		snprintf(key, sizeof(key), "%04d-%02d", r->in.year, m + 1);
		json_object_object_add(mo, "month", json_object_new_string(key));
		json_object_object_add(mo, "requests", json_object_new_int64((int64_t)r->month_req[m]));
		json_object_object_add(mo, "documents",
			json_object_new_int64((int64_t)r->month_docs[m]));
		json_object_object_add(mo, "refusals",
			json_object_new_int64((int64_t)r->month_refusals[m]));
		json_object_array_add(months, mo);
	}
	json_object_object_add(j, "by_month", months);
	json_object_object_add(j, "by_unit", tally_json(&r->units, "unit", NULL, "requests",
		"documents"));
	json_object_object_add(j, "by_type", tally_json(&r->types, "type", NULL, "requests",
		"documents"));
	json_object_object_add(j, "by_usage", tally_json(&r->usages, "usage", NULL, "requests",
		"documents"));
	json_object_object_add(o, "signatures", j);

	j = json_object_new_object();
	json_object_object_add(j, "total", json_object_new_int64((int64_t)r->unfinished));
	json_object_object_add(j, "by_outcome", tally_json(&r->outcomes, "outcome", NULL, "count",
		NULL));
	json_object_object_add(o, "unfinished", j);

	j = json_object_new_object();
	json_object_object_add(j, "total", json_object_new_int64((int64_t)r->refusals));
	json_object_object_add(j, "by_rule", tally_json(&r->rules, "rule", NULL, "count", NULL));
	json_object_object_add(j, "by_reason", tally_json(&r->reasons, "reason", "rule", "count",
		NULL));
	json_object_object_add(j, "by_method", tally_json(&r->deny_methods, "method", NULL, "count",
		NULL));
	json_object_object_add(o, "refusals", j);

	json_object_object_add(o, "incidents", incidents_json(r));

	/* revocations dated in the year (revoked.list) */
	arr = json_object_new_array();
	for (size_t i = 0; p && i < p->n_revoked; i++) {
		const struct pol_revoked *rv = &p->revoked[i];
		json_object *e;
		time_t t;

		if (!rv->when || cli_time_parse(rv->when, false, &t) < 0 || t < r->year_start ||
		    t >= r->year_end)
			continue;
		e = json_object_new_object();
		json_object_object_add(e, "certificate", json_object_new_string(rv->cert_id));
		json_object_object_add(e, "time", jtime(t));
		json_object_object_add(e, "reason", jstr(rv->reason));
		owner_fields(e, owner_of(r, rv->cert_id));
		json_object_object_add(e, "in_audit_log",
			json_object_new_boolean(tally_has(&r->revoke_recorded, rv->cert_id)));
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "revocations", arr);

	/* certificates expiring in the next CLI_REPORT_EXPIRY_DAYS days (certs/), not revoked */
	arr = json_object_new_array();
	for (size_t i = 0; i < r->in.n_certs; i++) {
		const struct cli_report_cert *c = &r->in.certs[i];
		json_object *e;

		if (c->not_after < r->in.now || c->not_after > horizon ||
		    (p && pol_revoked_find(p, c->id)))
			continue;
		e = json_object_new_object();
		json_object_object_add(e, "certificate", json_object_new_string(c->id));
		json_object_object_add(e, "subject", jstr(c->subject_cn[0] ? c->subject_cn : NULL));
		owner_fields(e, owner_of(r, c->id));
		json_object_object_add(e, "not_after", jtime(c->not_after));
		json_object_object_add(e, "days_left",
			json_object_new_int64((int64_t)((c->not_after - r->in.now) / DAY)));
		json_object_array_add(arr, e);
	}
	json_object_array_sort(arr, expiring_cmp);
	json_object_object_add(o, "expiring", arr);
	json_object_object_add(o, "expiring_window_days",
		json_object_new_int(CLI_REPORT_EXPIRY_DAYS));

	/* registered certificates that signed nothing in the year, usable in it */
	arr = json_object_new_array();
	for (size_t i = 0; p && i < p->n_owners; i++) {
		const struct pol_owner *ow = &p->owners[i];
		const struct pol_revoked *rv;
		const struct cli_report_cert *c;
		json_object *e;
		time_t rt;

		if (!ow->cert_id[0] || tally_has(&r->used, ow->cert_id))
			continue;
		rv = pol_revoked_find(p, ow->cert_id);
		if (rv && rv->when && cli_time_parse(rv->when, false, &rt) == 0 && rt < r->year_start)
			continue; /* revoked before the year began */
		c = cert_find(r, ow->cert_id);
		if (c && (c->not_after < r->year_start || c->not_before >= r->year_end))
			continue; /* not valid at any time of the year */
		e = json_object_new_object();
		json_object_object_add(e, "certificate", json_object_new_string(ow->cert_id));
		owner_fields(e, ow);
		json_object_object_add(e, "revoked", rv ? jstr(rv->when) : NULL);
		json_object_object_add(e, "not_after", c ? jtime(c->not_after) : NULL);
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "unused", arr);
	return o;
}

/* --- certs/ ----------------------------------------------------------------------------- */

int
cli_report_certs_load(const char *policy_dir, struct cli_report_cert **ret, size_t *ret_n)
{
	_cleanup_free_ char *dir = NULL;
	struct cli_report_cert *v = NULL;
	struct dirent *e;
	size_t n = 0;
	DIR *d;
	int r = 0;

	if (asprintf(&dir, "%s/certs", policy_dir) < 0)
		return -ENOMEM;
	d = opendir(dir);
	if (!d) {
		if (errno != ENOENT)
			return pf_negerrno();
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	while ((e = readdir(d)) && r >= 0) {
		size_t l = strlen(e->d_name);
		_cleanup_free_ char *path = NULL;
		_cleanup_free_ uint8_t *pem = NULL;
		struct pol_cert_facts f = {};
		unsigned char *der = NULL;
		size_t len;
		X509 *x = NULL;
		BIO *b;
		int dl;

		if (e->d_name[0] == '.' || l < 5 || !streq(e->d_name + l - 4, ".pem"))
			continue;
		if (n >= REPORT_CERTS_MAX) {
			r = -E2BIG;
			break;
		}
		if (asprintf(&path, "%s/%s", dir, e->d_name) < 0) {
			path = NULL;
			r = -ENOMEM;
			break;
		}
		if (cli_file_read_all(path, CLI_REPORT_FILE_MAX, &pem, &len) < 0)
			continue;
		b = BIO_new_mem_buf(pem, (int)len);
		if (b)
			x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
		if (!x)
			continue;
		dl = i2d_X509(x, &der);
		X509_free(x);
		if (dl <= 0 || pol_cert_facts_from_der(der, (size_t)dl, &f) < 0) {
			OPENSSL_free(der);
			continue;
		}
		OPENSSL_free(der);
		{
			struct cli_report_cert *nv = realloc(v, (n + 1) * sizeof(*nv));

			if (!nv) {
				pol_cert_facts_release(&f);
				r = -ENOMEM;
				break;
			}
			v = nv;
			memset(&v[n], 0, sizeof(v[n]));
			memcpy(v[n].id, f.id, sizeof(v[n].id));
			v[n].not_before = f.not_before;
			v[n].not_after = f.not_after;
			snprintf(v[n].subject_cn, sizeof(v[n].subject_cn), "%s", f.subject_cn);
			n++;
		}
		pol_cert_facts_release(&f);
	}
	closedir(d);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* --- HTML ------------------------------------------------------------------------------- */

static void
put(struct pf_buf *b, const char *s)
{
	pf_buf_put(b, s, strlen(s));
}

static void
putf(struct pf_buf *b, const char *fmt, ...) _printf_(2, 3);

static void
putf(struct pf_buf *b, const char *fmt, ...)
{
	_cleanup_free_ char *s = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		s = NULL;
		b->error = -ENOMEM;
		return;
	}
	pf_buf_put(b, s, (size_t)n);
}

/* Text into HTML (element content and attribute values alike). */
static void
esc(struct pf_buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&':
			put(b, "&amp;");
			break;
		case '<':
			put(b, "&lt;");
			break;
		case '>':
			put(b, "&gt;");
			break;
		case '"':
			put(b, "&quot;");
			break;
		case '\'':
			put(b, "&#39;");
			break;
		default:
			if ((unsigned char)*s < 0x20 && *s != '\t')
				put(b, "?");
			else
				pf_buf_put(b, s, 1);
		}
	}
}

static int64_t
jint(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static json_object *
jarr(json_object *o, const char *key)
{
	return cli_json_obj(o, key, json_type_array);
}

static size_t
alen(json_object *a)
{
	return a ? json_object_array_length(a) : 0;
}

/* Vertical bars: one per item, label under it, value over it. */
static void
svg_columns(struct pf_buf *b, const char *title, size_t n, const char *const *labels,
	const int64_t *values)
{
	const int W = 720, H = 240, top = 24, bottom = 36, left = 16;
	int64_t max = 1;
	double bw = n ? (double)(W - 2 * left) / (double)n : 0;

	for (size_t i = 0; i < n; i++)
		if (values[i] > max)
			max = values[i];
	putf(b, "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", W, H);
	esc(b, title);
	put(b, "\" xmlns=\"http://www.w3.org/2000/svg\">\n");
	putf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n", left,
		H - bottom, W - left, H - bottom);
	for (size_t i = 0; i < n; i++) {
		double h = (double)(H - top - bottom) * (double)values[i] / (double)max;
		double x = left + bw * (double)i + bw * 0.15;

		putf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"bar\"/>\n",
			x, (double)(H - bottom) - h, bw * 0.7, h);
		putf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"val\">%" PRId64 "</text>\n",
			x + bw * 0.35, (double)(H - bottom) - h - 4, values[i]);
		putf(b, "<text x=\"%.1f\" y=\"%d\" class=\"lbl\">", x + bw * 0.35, H - bottom + 18);
		esc(b, labels[i]);
		put(b, "</text>\n");
	}
	put(b, "</svg>\n");
}

/* Horizontal bars: one row per item, label left, value right of the bar. */
static void
svg_rows(struct pf_buf *b, const char *title, json_object *arr, const char *key,
	const char *value_key)
{
	const int W = 720, row = 26, label_w = 260, pad = 8;
	size_t n = arr ? json_object_array_length(arr) : 0;
	int64_t max = 1;

	if (!n) {
		put(b, "<p class=\"none\">—</p>\n");
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (jint(json_object_array_get_idx(arr, i), value_key) > max)
			max = jint(json_object_array_get_idx(arr, i), value_key);
	putf(b, "<svg class=\"chart\" viewBox=\"0 0 %d %zu\" role=\"img\" aria-label=\"", W,
		n * (size_t)row + 2 * (size_t)pad);
	esc(b, title);
	put(b, "\" xmlns=\"http://www.w3.org/2000/svg\">\n");
	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(arr, i);
		int64_t v = jint(it, value_key);
		double w = (double)(W - label_w - 80) * (double)v / (double)max;
		size_t y = (size_t)pad + i * (size_t)row;

		putf(b, "<text x=\"%d\" y=\"%zu\" class=\"rlbl\">", label_w - 8, y + 17);
		esc(b, cli_json_str(it, key));
		put(b, "</text>\n");
		putf(b, "<rect x=\"%d\" y=\"%zu\" width=\"%.1f\" height=\"%d\" class=\"bar\"/>\n",
			label_w, y + 4, w, row - 8);
		putf(b, "<text x=\"%.1f\" y=\"%zu\" class=\"rval\">%" PRId64 "</text>\n",
			(double)label_w + w + 6, y + 17, v);
	}
	put(b, "</svg>\n");
}

static void
cell(struct pf_buf *b, json_object *o, const char *key)
{
	json_object *v;

	put(b, "<td>");
	if (json_object_object_get_ex(o, key, &v) && v) {
		if (json_object_is_type(v, json_type_string))
			esc(b, json_object_get_string(v));
		else if (json_object_is_type(v, json_type_boolean))
			put(b, json_object_get_boolean(v) ? "ya (yes)" : "tidak (no)");
		else if (json_object_is_type(v, json_type_array)) {
			for (size_t i = 0; i < json_object_array_length(v); i++) {
				if (i)
					put(b, ", ");
				esc(b, json_object_get_string(json_object_array_get_idx(v, i)));
			}
		} else
			esc(b, json_object_get_string(v));
	} else {
		put(b, "–");
	}
	put(b, "</td>");
}

/* A table of the objects in arr: headers[i] over the member keys[i]. */
static void
table(struct pf_buf *b, json_object *arr, size_t ncols, const char *const *headers,
	const char *const *keys)
{
	size_t n = arr ? json_object_array_length(arr) : 0;

	if (!n) {
		put(b, "<p class=\"none\">Tidak ada (none).</p>\n");
		return;
	}
	put(b, "<table>\n<thead><tr>");
	for (size_t c = 0; c < ncols; c++) {
		put(b, "<th>");
		esc(b, headers[c]);
		put(b, "</th>");
	}
	put(b, "</tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i);

		put(b, "<tr>");
		for (size_t c = 0; c < ncols; c++)
			cell(b, o, keys[c]);
		put(b, "</tr>\n");
	}
	put(b, "</tbody>\n</table>\n");
}

static const char report_css[] =
	"body{font-family:'DejaVu Sans',Arial,sans-serif;color:#111;margin:2em auto;"
	"max-width:60em;padding:0 1em;line-height:1.4}\n"
	"h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #999;"
	"margin-top:1.8em}\n"
	".meta{color:#444;font-size:.9em}\n"
	".ok{border:1px solid #2a7;background:#eefaf3;padding:.6em}\n"
	".bad{border:2px solid #c22;background:#fdeeee;padding:.6em;font-weight:bold}\n"
	"table{border-collapse:collapse;width:100%;font-size:.9em;margin:.5em 0}\n"
	"th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top;"
	"overflow-wrap:anywhere}\n"
	"th{background:#eee}td.n,th.n{text-align:right}\n"
	".chart{width:100%;height:auto;max-width:720px;display:block;margin:.5em 0}\n"
	".bar{fill:#3465a4}.axis{stroke:#555;stroke-width:1}\n"
	".val,.lbl{font-size:12px;text-anchor:middle;fill:#111}\n"
	".rlbl{font-size:12px;text-anchor:end;fill:#111}.rval{font-size:12px;fill:#111}\n"
	".none{color:#666;font-style:italic}\n"
	".totals td{font-weight:bold}\n"
	"code{font-size:.85em;word-break:break-all}\n"
	"@media print{body{margin:0;max-width:none}h2,h3{page-break-after:avoid;break-after:avoid}"
	"table,svg,.ok,.bad{page-break-inside:avoid}.bar{fill:#555}"
	"a{color:inherit;text-decoration:none}}\n"
	"@page{size:A4;margin:18mm}\n";

int
cli_report_html(json_object *rep, struct pf_buf *b)
{
	json_object *log = cli_json_obj(rep, "log", json_type_object);
	json_object *sig = cli_json_obj(rep, "signatures", json_type_object);
	json_object *ref = cli_json_obj(rep, "refusals", json_type_object);
	json_object *unf = cli_json_obj(rep, "unfinished", json_type_object);
	json_object *months = sig ? jarr(sig, "by_month") : NULL;
	const char *labels[12];
	int64_t values[12], docs[12], refusals[12];
	int year = (int)jint(rep, "year");
	bool intact = log && json_object_get_boolean(json_object_object_get(log, "intact"));

	if (!log || !sig || !ref || !unf || !months || json_object_array_length(months) != 12)
		return -EINVAL;
	for (int m = 0; m < 12; m++) {
		json_object *mo = json_object_array_get_idx(months, (size_t)m);

		labels[m] = month_names[m];
		values[m] = jint(mo, "requests");
		docs[m] = jint(mo, "documents");
		refusals[m] = jint(mo, "refusals");
	}
	putf(b, "<!DOCTYPE html>\n<html lang=\"id\">\n<head>\n<meta charset=\"utf-8\">\n"
		"<meta name=\"generator\" content=\"paraf audit report\">\n"
		"<title>Laporan evaluasi tahunan %d — paraf</title>\n<style>\n", year);
	put(b, report_css);
	put(b, "</style>\n</head>\n<body>\n");
	putf(b, "<h1>Laporan evaluasi penggunaan sertifikat elektronik %d</h1>\n", year);
	put(b, "<p class=\"meta\">Yearly evaluation report of electronic certificate use (R14). "
	       "Dibuat (generated) ");
	esc(b, cli_json_str(rep, "generated"));
	put(b, " · log <code>");
	esc(b, cli_json_str(rep, "audit_dir"));
	put(b, "</code> · registry <code>");
	esc(b, cli_json_str(rep, "policy_dir"));
	put(b, "</code></p>\n");

	if (intact) {
		putf(b, "<p class=\"ok\">Log audit utuh (the audit log is intact, R13): %" PRId64
			" records, head <code>", jint(log, "records"));
		esc(b, cli_json_str(log, "head"));
		put(b, "</code>.</p>\n");
	} else {
		put(b, "<p class=\"bad\">PERINGATAN: log audit TIDAK utuh (the audit log is NOT "
		       "intact): ");
		esc(b, cli_json_str(log, "fault"));
		if (cli_json_str(log, "file")) {
			put(b, " at ");
			esc(b, cli_json_str(log, "file"));
			putf(b, ":%" PRId64 ", seq %" PRId64, jint(log, "line"), jint(log, "seq"));
		}
		if (cli_json_str(log, "detail")) {
			put(b, " — ");
			esc(b, cli_json_str(log, "detail"));
		}
		put(b, ". The counts below come from a log that may have been changed.</p>\n");
	}
	putf(b, "<p class=\"meta\">%" PRId64 " records of %d counted; %" PRId64
		" resent copies counted once; %" PRId64 " continuation records.</p>\n",
		jint(log, "records_in_year"), year, jint(log, "duplicates"),
		jint(log, "continuations"));

	put(b, "<h2>Ringkasan (summary)</h2>\n<table class=\"totals\"><tbody>\n");
	putf(b, "<tr><th>Permintaan tanda tangan (signing requests)</th><td class=\"n\">%" PRId64
		"</td></tr>\n", jint(sig, "requests"));
	putf(b, "<tr><th>Dokumen ditandatangani (documents signed)</th><td class=\"n\">%" PRId64
		"</td></tr>\n", jint(sig, "documents"));
	putf(b, "<tr><th>Penolakan (refusals)</th><td class=\"n\">%" PRId64 "</td></tr>\n",
		jint(ref, "total"));
	putf(b, "<tr><th>Diizinkan tetapi tidak ditandatangani (allowed, not signed)</th>"
		"<td class=\"n\">%" PRId64 "</td></tr>\n", jint(unf, "total"));
	putf(b, "<tr><th>Insiden (incidents)</th><td class=\"n\">%zu</td></tr>\n",
		alen(jarr(rep, "incidents")));
	putf(b, "<tr><th>Pencabutan (revocations)</th><td class=\"n\">%zu</td></tr>\n",
		alen(jarr(rep, "revocations")));
	put(b, "</tbody></table>\n");

	put(b, "<h2>Tanda tangan per bulan (signing requests per month)</h2>\n");
	svg_columns(b, "signing requests per month", 12, labels, values);
	put(b, "<table><thead><tr><th>Bulan (month)</th><th class=\"n\">Permintaan (requests)</th>"
	       "<th class=\"n\">Dokumen (documents)</th><th class=\"n\">Penolakan (refusals)</th>"
	       "</tr></thead><tbody>\n");
	for (int m = 0; m < 12; m++)
		putf(b, "<tr><td>%s %d</td><td class=\"n\">%" PRId64 "</td><td class=\"n\">%" PRId64
			"</td><td class=\"n\">%" PRId64 "</td></tr>\n", month_names[m], year, values[m],
			docs[m], refusals[m]);
	put(b, "</tbody></table>\n");

	put(b, "<h2>Per unit kerja (per unit)</h2>\n");
	svg_rows(b, "signing requests per unit", jarr(sig, "by_unit"), "unit", "requests");
	{
		static const char *const h[] = { "Unit", "Permintaan (requests)", "Dokumen (documents)" };
		static const char *const k[] = { "unit", "requests", "documents" };
		table(b, jarr(sig, "by_unit"), 3, h, k);
	}
	put(b, "<h2>Per jenis sertifikat (per certificate type, R5)</h2>\n");
	svg_rows(b, "signing requests per certificate type", jarr(sig, "by_type"), "type",
		"requests");
	put(b, "<h2>Per penggunaan (per usage, R6)</h2>\n");
	svg_rows(b, "signing requests per usage", jarr(sig, "by_usage"), "usage", "requests");

	put(b, "<h2>Penolakan per aturan (refusals by rule)</h2>\n");
	svg_rows(b, "refusals by rule", jarr(ref, "by_rule"), "rule", "count");
	put(b, "<h3>Per alasan (by reason)</h3>\n");
	{
		static const char *const h[] = { "Alasan (reason)", "Aturan (rule)", "Jumlah (count)" };
		static const char *const k[] = { "reason", "rule", "count" };
		table(b, jarr(ref, "by_reason"), 3, h, k);
	}
	put(b, "<h3>Diizinkan tetapi tidak ditandatangani (allowed requests that did not sign)"
	       "</h3>\n");
	{
		static const char *const h[] = { "Hasil (outcome)", "Jumlah (count)" };
		static const char *const k[] = { "outcome", "count" };
		table(b, jarr(unf, "by_outcome"), 2, h, k);
	}

	put(b, "<h2>Insiden keamanan (security incidents, R9)</h2>\n");
	{
		static const char *const h[] = { "Waktu (time)", "Token", "Jenis (kind)",
			"Sumber (sources)", "Catatan (text)" };
		static const char *const k[] = { "time", "token", "kind", "sources", "text" };
		table(b, jarr(rep, "incidents"), 5, h, k);
	}
	put(b, "<h2>Pencabutan (revocations, R8)</h2>\n");
	{
		static const char *const h[] = { "Waktu (time)", "Sertifikat (certificate)",
			"Alasan (reason)", "Nama (name)", "Unit", "Tercatat di log (in audit log)" };
		static const char *const k[] = { "time", "certificate", "reason", "name", "unit",
			"in_audit_log" };
		table(b, jarr(rep, "revocations"), 6, h, k);
	}
	putf(b, "<h2>Akan kedaluwarsa dalam %" PRId64 " hari (expiring within %" PRId64
		" days, R7)</h2>\n", jint(rep, "expiring_window_days"),
		jint(rep, "expiring_window_days"));
	{
		static const char *const h[] = { "Berlaku s.d. (not after)", "Sisa hari (days)",
			"Nama (name)", "Unit", "Jenis (type)", "Sertifikat (certificate)" };
		static const char *const k[] = { "not_after", "days_left", "name", "unit", "type",
			"certificate" };
		table(b, jarr(rep, "expiring"), 6, h, k);
	}
	put(b, "<h2>Terdaftar tetapi tidak digunakan (registered, not used this year)</h2>\n");
	{
		static const char *const h[] = { "Nama (name)", "Akun (account)", "Unit",
			"Jenis (type)", "Dicabut (revoked)", "Sertifikat (certificate)" };
		static const char *const k[] = { "name", "account", "unit", "type", "revoked",
			"certificate" };
		table(b, jarr(rep, "unused"), 6, h, k);
	}
	put(b, "<p class=\"meta\">paraf audit report · schema " REPORT_SCHEMA "</p>\n"
	       "</body>\n</html>\n");
	return pf_buf_status(b);
}
