/*
 * The audit commands' pieces (R13, R14, R15):
 *
 *   /report/year          the yearly report (cli-audit-report.c) from a synthetic year of
 *                         records, registry, revocations, incidents and certificates: its JSON
 *                         checked field by field, and the HTML page self-contained
 *   /backup/round-trip    paraf admin backup then restore (cli-backup.c) into empty
 *                         directories: every file back, byte for byte; no key material; the
 *                         restored log verifies (aud_verify); revocations merged, never lifted
 *   /backup/refused       damaged, tampered and key-holding archives are refused before
 *                         anything is written; differing files are not replaced without force
 *   /spool/forward        ag-audit.c's spool against a fake paraf-auditd on a temporary socket:
 *                         records kept while the service is down, forwarded in order once it
 *                         is back, each removed after its acknowledgement; a lost
 *                         acknowledgement is resent under the same record_id (recognisable),
 *                         a refused record stays; nothing is lost
 *   /audit/required       fail closed: no service, no stored record (-ENOLINK)
 *   /audit/long-record    a record longer than one line goes as continuations, then itself
 *   /audit/prestore       a sign record's continuations are stored before its verdict, the
 *                         record itself last with the same id and time; with the service
 *                         down meanwhile, the commit stores them all
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ag-audit.h"
#include "aud.h"
#include "cli.h"
#include "pol.h"

#define DAY 86400

static char tmp[256];

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/test-audit-report.XXXXXX");
	return mkdtemp(tmp) ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	ag_audit_shutdown();
	return nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static char *
path_of(const char *rel)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", tmp, rel) > 0);
	return p;
}

static void
write_file(const char *rel, const char *text, mode_t mode)
{
	char *p = path_of(rel), *d = strdup(p), *s = strrchr(d, '/');
	FILE *f;

	*s = 0;
	for (char *q = d + strlen(tmp) + 1; *q; q++)
		if (*q == '/') {
			*q = 0;
			mkdir(d, 0755);
			*q = '/';
		}
	mkdir(d, 0755);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(p, mode);
	free(d);
	free(p);
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0, n;

	if (!f)
		return NULL;
	n = getdelim(&buf, &cap, 0, f);
	fclose(f);
	if (n == (size_t)-1) {
		free(buf);
		return strdup("");
	}
	return buf;
}

static const char *
jget_str(json_object *o, const char *path)
{
	json_object *v = o;
	char *copy = strdup(path), *save = NULL;

	for (char *k = strtok_r(copy, ".", &save); k && v; k = strtok_r(NULL, ".", &save)) {
		if (k[0] >= '0' && k[0] <= '9')
			v = json_object_array_get_idx(v, (size_t)atoi(k));
		else if (!json_object_object_get_ex(v, k, &v))
			v = NULL;
	}
	free(copy);
	return v ? json_object_get_string(v) : NULL;
}

static int64_t
jget_int(json_object *o, const char *path)
{
	const char *s = jget_str(o, path);

	if (!s)
		fail_msg("no value at %s", path);
	return strtoll(s, NULL, 10);
}

static json_object *
jget(json_object *o, const char *path)
{
	json_object *v = o;
	char *copy = strdup(path), *save = NULL;

	for (char *k = strtok_r(copy, ".", &save); k && v; k = strtok_r(NULL, ".", &save)) {
		if (k[0] >= '0' && k[0] <= '9')
			v = json_object_array_get_idx(v, (size_t)atoi(k));
		else if (!json_object_object_get_ex(v, k, &v))
			v = NULL;
	}
	free(copy);
	return v;
}

/* --- /report/year ----------------------------------------------------------------------- */

#define A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define D "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

static void
owner(struct pol_policy *p, const char *name, const char *text)
{
	char err[256];

	if (pol_owner_parse(p, name, text, err, sizeof(err)) < 0)
		fail_msg("owner %s: %s", name, err);
}

static uint64_t seq_no;

/* Feeds one record (JSON text of the sender's record) to the report. */
static void
feed(struct cli_report *r, const char *record_json)
{
	json_object *rec = json_tokener_parse(record_json), *stored = json_object_new_object();
	struct cli_audit_entry e = {};

	if (!rec)
		fail_msg("not JSON: %s", record_json);
	json_object_object_add(stored, "seq", json_object_new_int64((int64_t)++seq_no));
	json_object_object_add(stored, "time", json_object_new_string("2027-12-01T00:00:00Z"));
	json_object_object_add(stored, "record", rec);
	e.seq = seq_no;
	e.time = "2027-12-01T00:00:00Z";
	e.uid = 1000;
	e.pid = 42;
	e.record = rec;
	e.stored = stored;
	e.file = "audit-202712-001.log";
	e.line = seq_no;
	assert_int_equal(cli_report_add(r, &e), 0);
	json_object_put(stored);
}

static char *
docs_json(size_t n)
{
	struct pf_buf b;
	char item[128];

	pf_buf_init(&b);
	pf_buf_put(&b, "[", 1);
	for (size_t i = 0; i < n; i++) {
		int k = snprintf(item, sizeof(item), "%s{\"name\":\"d%zu.pdf\",\"digest\":\"%064zx\"}",
			i ? "," : "", i, i);
		pf_buf_put(&b, item, (size_t)k);
	}
	pf_buf_put(&b, "]", 2);
	return (char *)b.data;
}

#define SIGN(t, id, cert, type, usage, ndocs_json, extra, verdict, rule, reason, outcome)      \
	"{\"time\":\"" t "\",\"method\":\"sign\",\"uid\":1000,\"pid\":7,\"exe\":\"/usr/bin/x\","   \
	"\"certificate\":" cert ",\"certificate_type\":" type ",\"owner\":\"budi\",\"usage\":"   \
	usage ",\"digest_algorithm\":\"sha256\",\"documents\":" ndocs_json extra                \
	",\"verdict\":\"" verdict "\",\"rule\":" rule ",\"reason\":\"" reason "\",\"message\":" \
	"\"m\",\"outcome\":" outcome ",\"record_id\":\"" id "\"}"

static void
test_report_year(void **state)
{
	struct pol_policy p;
	struct cli_report *r = NULL;
	struct cli_report_input in = {};
	struct cli_report_cert certs[3] = {};
	json_object *j;
	struct pf_buf html;
	char err[256], *docs100 = docs_json(100), *rec;
	time_t now;
	const char *incidents =
		"2027-09-10T10:00:00Z token SN-1 lost by root (uid 0): 1 certificate(s) registered\n"
		"2026-02-01T00:00:00Z token X damaged by root (uid 0): 0 certificate(s) registered\n";

	(void)state;
	assert_int_equal(cli_time_parse("2027-12-01T00:00:00Z", false, &now), 0);
	pol_policy_init(&p);
	owner(&p, "a.conf", "[owner]\ncertificate = " A "\naccount = budi\ntype = individual\n"
			    "name = Budi Santoso\nunit = Dinas Kominfo\n");
	owner(&p, "b.conf", "[owner]\ncertificate = " B "\naccount = siti\ntype = jabatan\n"
			    "name = Siti Aminah\nunit = Bappeda\nposition = Kepala\n");
	owner(&p, "c.conf", "[owner]\ncertificate = " C "\naccount = joko\ntype = individual\n"
			    "name = Joko\nunit = Dinas Kominfo\n");
	owner(&p, "d.conf", "[owner]\ncertificate = " D "\naccount = ani\ntype = individual\n"
			    "name = Ani\nunit = Bappeda\n");
	owner(&p, "e.conf", "[owner]\napplication = eko-20270101-0001\naccount = eko\n"
			    "type = individual\nname = Eko\nunit = Bappeda\n");
	assert_int_equal(pol_revoked_parse(&p, "revoked.list",
				 D " 2026-06-01T00:00:00Z retired\n"
				 B " 2027-09-10T10:00:05Z key-lost incident lost\n",
				 err, sizeof(err)), 0);
	/* a expires in 30 days, b in 40 (but revoked), c in 200 */
	memcpy(certs[0].id, A, 65);
	certs[0].not_before = now - 300 * DAY;
	certs[0].not_after = now + 30 * DAY;
	snprintf(certs[0].subject_cn, sizeof(certs[0].subject_cn), "Budi Santoso");
	memcpy(certs[1].id, B, 65);
	certs[1].not_before = now - 300 * DAY;
	certs[1].not_after = now + 40 * DAY;
	memcpy(certs[2].id, C, 65);
	certs[2].not_before = now - 300 * DAY;
	certs[2].not_after = now + 200 * DAY;

	in.year = 2027;
	in.now = now;
	in.audit_dir = "/var/lib/paraf/audit";
	in.policy_dir = "/etc/paraf";
	in.policy = &p;
	in.incidents = incidents;
	in.certs = certs;
	in.n_certs = 3;
	in.log.checked = true;
	in.log.intact = true;
	in.log.records = 13;
	in.log.head = "1111111111111111111111111111111111111111111111111111111111111111";
	assert_int_equal(cli_report_new(&in, &r), 0);

	/* the year before and after: seen, not counted (c stays unused in 2027) */
	feed(r, SIGN("2026-12-31T23:59:59Z", "00000000000000000000000000000001", "\"" C "\"",
		"\"individual\"", "\"signature\"", "[]", "", "allow", "null", "allowed", "\"signed\""));
	/* January: a signs 2 documents; the same record resent (lost acknowledgement) */
	feed(r, SIGN("2027-01-15T08:00:00Z", "00000000000000000000000000000002", "\"" A "\"",
		"\"individual\"", "\"signature\"",
		"[{\"name\":\"x\",\"digest\":\"00\"},{\"name\":\"y\",\"digest\":\"01\"}]", "", "allow",
		"null", "allowed", "\"signed\""));
	feed(r, SIGN("2027-01-15T08:00:00Z", "00000000000000000000000000000002", "\"" A "\"",
		"\"individual\"", "\"signature\"",
		"[{\"name\":\"x\",\"digest\":\"00\"},{\"name\":\"y\",\"digest\":\"01\"}]", "", "allow",
		"null", "allowed", "\"signed\""));
	/* March: b signs one (document-protection); a signs 500 in a long record: a
	 * continuation first, then the record with documents_total */
	feed(r, SIGN("2027-03-02T08:00:00Z", "00000000000000000000000000000003", "\"" B "\"",
		"\"jabatan\"", "\"document-protection\"", "[{\"name\":\"z\",\"digest\":\"02\"}]", "",
		"allow", "null", "allowed", "\"signed\""));
	assert_true(asprintf(&rec, "{\"record_id\":\"00000000000000000000000000000005\","
				   "\"continues\":\"00000000000000000000000000000004\",\"part\":2,"
				   "\"parts\":2,\"time\":\"2027-03-03T08:00:00Z\",\"method\":\"sign\","
				   "\"documents\":%s}", docs100) > 0);
	feed(r, rec);
	free(rec);
	assert_true(asprintf(&rec, SIGN("2027-03-03T08:00:00Z", "00000000000000000000000000000004",
		"\"" A "\"", "\"individual\"", "\"signature\"", "%s",
		",\"documents_total\":500,\"parts\":2", "allow", "null", "allowed", "\"signed\""),
		docs100) > 0);
	feed(r, rec);
	free(rec);
	/* April: allowed, then a wrong PIN */
	feed(r, SIGN("2027-04-01T08:00:00Z", "00000000000000000000000000000006", "\"" A "\"",
		"\"individual\"", "\"signature\"", "[]", "", "allow", "null", "allowed",
		"\"pin-incorrect\""));
	/* May: three refusals */
	feed(r, SIGN("2027-05-01T08:00:00Z", "00000000000000000000000000000007", "\"" A "\"",
		"\"individual\"", "\"signature\"", "[]", "", "deny", "\"R1\"", "not-owner", "null"));
	feed(r, SIGN("2027-05-02T08:00:00Z", "00000000000000000000000000000008", "\"" B "\"",
		"\"jabatan\"", "\"signature\"", "[]", "", "deny", "\"R7\"", "expired", "null"));
	feed(r, "{\"time\":\"2027-05-03T08:00:00Z\",\"method\":\"connect\",\"uid\":1001,\"pid\":9,"
		"\"verdict\":\"deny\",\"rule\":\"R1\",\"reason\":\"peer-refused\",\"record_id\":"
		"\"00000000000000000000000000000009\"}");
	/* September: the incident and its revocation, as paraf admin records them */
	feed(r, "{\"time\":\"2027-09-10T10:00:30Z\",\"method\":\"admin.incident\",\"uid\":0,"
		"\"pid\":1,\"verdict\":\"allow\",\"rule\":\"R9\",\"reason\":\"incident\",\"message\":"
		"\"security incident: token SN-1 lost; 1 certificate(s) registered with it are "
		"revoked as key-lost\",\"outcome\":\"recorded\",\"record_id\":"
		"\"0000000000000000000000000000000a\"}");
	feed(r, "{\"time\":\"2027-09-10T10:00:31Z\",\"method\":\"admin.revoke\",\"uid\":0,\"pid\":1,"
		"\"certificate\":\"" B "\",\"verdict\":\"allow\",\"rule\":\"R9\",\"reason\":"
		"\"allowed\",\"outcome\":\"revoked\",\"record_id\":\"0000000000000000000000000000000b\"}");
	feed(r, SIGN("2028-01-01T00:00:00Z", "0000000000000000000000000000000c", "\"" A "\"",
		"\"individual\"", "\"signature\"", "[]", "", "allow", "null", "allowed", "\"signed\""));

	j = cli_report_json(r);
	assert_non_null(j);
	assert_string_equal(jget_str(j, "schema"), "paraf-audit-report/1");
	assert_int_equal(jget_int(j, "year"), 2027);
	assert_string_equal(jget_str(j, "generated"), "2027-12-01T00:00:00Z");
	/* the log */
	assert_true(json_object_get_boolean(jget(j, "log.intact")));
	assert_int_equal(jget_int(j, "log.records"), 13);
	assert_int_equal(jget_int(j, "log.records_read"), 13);
	assert_int_equal(jget_int(j, "log.records_in_year"), 9);
	assert_int_equal(jget_int(j, "log.duplicates"), 1);
	assert_int_equal(jget_int(j, "log.continuations"), 1);
	assert_null(jget(j, "log.fault"));
	/* signatures: requests and documents, by month, unit, type, usage */
	assert_int_equal(jget_int(j, "signatures.requests"), 3);
	assert_int_equal(jget_int(j, "signatures.documents"), 503);
	assert_int_equal(json_object_array_length(jget(j, "signatures.by_month")), 12);
	assert_string_equal(jget_str(j, "signatures.by_month.0.month"), "2027-01");
	assert_int_equal(jget_int(j, "signatures.by_month.0.requests"), 1);
	assert_int_equal(jget_int(j, "signatures.by_month.0.documents"), 2);
	assert_int_equal(jget_int(j, "signatures.by_month.1.requests"), 0);
	assert_int_equal(jget_int(j, "signatures.by_month.2.requests"), 2);
	assert_int_equal(jget_int(j, "signatures.by_month.2.documents"), 501);
	assert_int_equal(jget_int(j, "signatures.by_month.4.refusals"), 3);
	assert_int_equal(jget_int(j, "signatures.by_month.11.documents"), 0);
	assert_int_equal(json_object_array_length(jget(j, "signatures.by_unit")), 2);
	assert_string_equal(jget_str(j, "signatures.by_unit.0.unit"), "Dinas Kominfo");
	assert_int_equal(jget_int(j, "signatures.by_unit.0.requests"), 2);
	assert_int_equal(jget_int(j, "signatures.by_unit.0.documents"), 502);
	assert_string_equal(jget_str(j, "signatures.by_unit.1.unit"), "Bappeda");
	assert_int_equal(jget_int(j, "signatures.by_unit.1.requests"), 1);
	assert_int_equal(jget_int(j, "signatures.by_unit.1.documents"), 1);
	assert_string_equal(jget_str(j, "signatures.by_type.0.type"), "individual");
	assert_int_equal(jget_int(j, "signatures.by_type.0.documents"), 502);
	assert_string_equal(jget_str(j, "signatures.by_type.1.type"), "jabatan");
	assert_string_equal(jget_str(j, "signatures.by_usage.0.usage"), "signature");
	assert_int_equal(jget_int(j, "signatures.by_usage.0.requests"), 2);
	assert_string_equal(jget_str(j, "signatures.by_usage.1.usage"), "document-protection");
	assert_int_equal(jget_int(j, "signatures.by_usage.1.documents"), 1);
	/* allowed, not signed */
	assert_int_equal(jget_int(j, "unfinished.total"), 1);
	assert_string_equal(jget_str(j, "unfinished.by_outcome.0.outcome"), "pin-incorrect");
	/* refusals by rule, reason, method */
	assert_int_equal(jget_int(j, "refusals.total"), 3);
	assert_string_equal(jget_str(j, "refusals.by_rule.0.rule"), "R1");
	assert_int_equal(jget_int(j, "refusals.by_rule.0.count"), 2);
	assert_string_equal(jget_str(j, "refusals.by_rule.1.rule"), "R7");
	assert_int_equal(jget_int(j, "refusals.by_rule.1.count"), 1);
	assert_int_equal(json_object_array_length(jget(j, "refusals.by_reason")), 3);
	assert_string_equal(jget_str(j, "refusals.by_reason.0.reason"), "expired");
	assert_string_equal(jget_str(j, "refusals.by_reason.0.rule"), "R7");
	assert_string_equal(jget_str(j, "refusals.by_reason.1.reason"), "not-owner");
	assert_string_equal(jget_str(j, "refusals.by_reason.2.reason"), "peer-refused");
	assert_string_equal(jget_str(j, "refusals.by_method.0.method"), "sign");
	assert_int_equal(jget_int(j, "refusals.by_method.0.count"), 2);
	assert_string_equal(jget_str(j, "refusals.by_method.1.method"), "connect");
	/* incidents: the log line of the year, joined with its record */
	assert_int_equal(json_object_array_length(jget(j, "incidents")), 1);
	assert_string_equal(jget_str(j, "incidents.0.time"), "2027-09-10T10:00:00Z");
	assert_string_equal(jget_str(j, "incidents.0.token"), "SN-1");
	assert_string_equal(jget_str(j, "incidents.0.kind"), "lost");
	assert_int_equal(json_object_array_length(jget(j, "incidents.0.sources")), 2);
	assert_string_equal(jget_str(j, "incidents.0.sources.0"), "incidents.log");
	assert_string_equal(jget_str(j, "incidents.0.sources.1"), "audit");
	/* revocations dated in the year */
	assert_int_equal(json_object_array_length(jget(j, "revocations")), 1);
	assert_string_equal(jget_str(j, "revocations.0.certificate"), B);
	assert_string_equal(jget_str(j, "revocations.0.reason"), "key-lost");
	assert_string_equal(jget_str(j, "revocations.0.unit"), "Bappeda");
	assert_string_equal(jget_str(j, "revocations.0.account"), "siti");
	assert_true(json_object_get_boolean(jget(j, "revocations.0.in_audit_log")));
	/* expiring in 90 days: a (b is revoked, c is later) */
	assert_int_equal(jget_int(j, "expiring_window_days"), 90);
	assert_int_equal(json_object_array_length(jget(j, "expiring")), 1);
	assert_string_equal(jget_str(j, "expiring.0.certificate"), A);
	assert_int_equal(jget_int(j, "expiring.0.days_left"), 30);
	assert_string_equal(jget_str(j, "expiring.0.name"), "Budi Santoso");
	assert_string_equal(jget_str(j, "expiring.0.unit"), "Dinas Kominfo");
	assert_string_equal(jget_str(j, "expiring.0.not_after"), "2027-12-31T00:00:00Z");
	/* registered, unused in the year: c (d was revoked before it, the pending one has none) */
	assert_int_equal(json_object_array_length(jget(j, "unused")), 1);
	assert_string_equal(jget_str(j, "unused.0.certificate"), C);
	assert_string_equal(jget_str(j, "unused.0.account"), "joko");
	assert_null(jget(j, "unused.0.revoked"));

	/* the HTML page: self-contained, charts inline, text escaped */
	pf_buf_init(&html);
	assert_int_equal(cli_report_html(j, &html), 0);
	pf_buf_put(&html, "", 1);
	{
		const char *h = (const char *)html.data;

		assert_non_null(strstr(h, "<!DOCTYPE html>"));
		assert_non_null(strstr(h, "<svg"));
		assert_non_null(strstr(h, "@media print"));
		assert_non_null(strstr(h, "Dinas Kominfo"));
		assert_null(strstr(h, "src="));
		assert_null(strstr(h, "href="));
		assert_null(strstr(h, "url("));
		assert_null(strstr(h, "@import"));
		assert_null(strstr(h, "<script"));
	}
	pf_buf_release(&html);
	json_object_put(j);
	cli_report_free(r);
	free(docs100);
	pol_policy_release(&p);
}

/* An escaped, not-intact report says so. */
static void
test_report_not_intact(void **state)
{
	struct cli_report *r = NULL;
	struct cli_report_input in = { .year = 2027, .now = 1 };
	struct pf_buf html;
	json_object *j;

	(void)state;
	in.log.checked = true;
	in.log.intact = false;
	in.log.fault = "edited";
	in.log.file = "audit-202701-001.log";
	in.log.line = 7;
	in.log.seq = 7;
	in.log.detail = "<b>changed</b>";
	assert_int_equal(cli_report_new(&in, &r), 0);
	j = cli_report_json(r);
	assert_false(json_object_get_boolean(jget(j, "log.intact")));
	assert_string_equal(jget_str(j, "log.fault"), "edited");
	assert_int_equal(jget_int(j, "log.line"), 7);
	pf_buf_init(&html);
	assert_int_equal(cli_report_html(j, &html), 0);
	pf_buf_put(&html, "", 1);
	assert_non_null(strstr((char *)html.data, "TIDAK utuh"));
	assert_non_null(strstr((char *)html.data, "&lt;b&gt;changed&lt;/b&gt;"));
	assert_null(strstr((char *)html.data, "<b>changed"));
	pf_buf_release(&html);
	json_object_put(j);
	cli_report_free(r);
}

/* --- /backup ---------------------------------------------------------------------------- */

static void
make_log(const char *rel, int records)
{
	struct aud_log_options o = { .checkpoint_records = 2 };
	struct aud_log *l = NULL;
	char *dir = path_of(rel), rec[256], hash[AUD_HASH_HEX + 1];
	uint64_t seq;

	o.dir = dir;
	mkdir(dir, 0700);
	assert_int_equal(aud_log_open(&o, &l), 0);
	for (int i = 0; i < records; i++) {
		int n = snprintf(rec, sizeof(rec), "{\"method\":\"sign\",\"owner\":\"budi\","
						   "\"n\":%d,\"record_id\":\"%032x\"}", i, i);
		assert_int_equal(aud_log_append(l, 1000, 42, rec, (size_t)n, &seq, hash), 0);
	}
	assert_int_equal(aud_log_checkpoint(l), 0);
	aud_log_close(l);
	free(dir);
}

/* A self-signed CA (the anchor) and its empty CRL, PEM, as parafd reads them. */
static void
make_ca(const char *cert_rel, const char *crl_rel)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_CRL *crl = X509_CRL_new();
	X509_NAME *n = X509_NAME_new();
	ASN1_TIME *t;
	char *cp = path_of(cert_rel), *lp = path_of(crl_rel);
	FILE *f;

	assert_non_null(k);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"Test CA", -1,
		-1, 0);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), -DAY);
	X509_gmtime_adj(X509_getm_notAfter(x), 365 * DAY);
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, n);
	t = ASN1_TIME_adj(NULL, time(NULL), 0, -3600);
	X509_CRL_set1_lastUpdate(crl, t);
	ASN1_TIME_free(t);
	t = ASN1_TIME_adj(NULL, time(NULL), 30, 0);
	X509_CRL_set1_nextUpdate(crl, t);
	ASN1_TIME_free(t);
	assert_true(X509_CRL_sign(crl, k, EVP_sha256()) > 0);
	f = fopen(cp, "w");
	assert_non_null(f);
	PEM_write_X509(f, x);
	fclose(f);
	f = fopen(lp, "w");
	assert_non_null(f);
	PEM_write_X509_CRL(f, crl);
	fclose(f);
	X509_NAME_free(n);
	X509_CRL_free(crl);
	X509_free(x);
	EVP_PKEY_free(k);
	free(cp);
	free(lp);
}

static void
make_policy(const char *rel)
{
	char p[256], q[256];

#define W(f, t, m) (snprintf(p, sizeof(p), "%s/%s", rel, f), write_file(p, t, m))
	W("policy.conf", "[validity]\nrenew_warning_days = 45\n", 0644);
	W("policy.d/10-site.conf", "[session]\nallow_inactive = yes\n", 0644);
	W("owners.d/budi-20270101-0001.conf", "[owner]\ncertificate = " A "\naccount = budi\n"
					      "type = individual\nname = Budi\nunit = Kominfo\n",
		0644);
	W("certs/" A ".pem", "not a certificate, but a file to carry\n", 0644);
	W("revoked.list", "# <certificate id> <time> <reason> [note]\n"
			  D " 2026-06-01T00:00:00Z retired\n", 0644);
	W("incidents.log", "2027-09-10T10:00:00Z token SN-1 lost by root (uid 0): 1\n", 0644);
	W("anchors/ca.pem", "", 0644);
	W("crl/ca.crl", "", 0644);
	snprintf(p, sizeof(p), "%s/anchors/ca.pem", rel);
	snprintf(q, sizeof(q), "%s/crl/ca.crl", rel);
	make_ca(p, q);
	/* key material: never in a backup */
	W("pins/" A ".pin", "123456\n", 0600);
	W("certs/budi.key", "secret\n", 0600);
#undef W
}

static void
assert_same_file(const char *a_rel, const char *b_rel)
{
	char *a = path_of(a_rel), *b = path_of(b_rel), *x = read_file(a), *y = read_file(b);

	if (!x || !y || strcmp(x, y) != 0)
		fail_msg("'%s' and '%s' differ", a, b);
	free(a);
	free(b);
	free(x);
	free(y);
}

static bool
exists(const char *rel)
{
	char *p = path_of(rel);
	bool r = access(p, F_OK) == 0;

	free(p);
	return r;
}

static void
backup(const char *policy, const char *audit, const char *archive,
	struct cli_backup_result *ret)
{
	char *pd = path_of(policy), *ad = path_of(audit), *ar = path_of(archive), err[1024];
	struct cli_backup_opts o = { .policy_dir = pd, .audit_dir = ad, .archive = ar,
		.now = 1800000000 };

	if (cli_backup_write(&o, ret, err, sizeof(err)) < 0)
		fail_msg("backup: %s", err);
	free(pd);
	free(ad);
	free(ar);
}

static int
restore(const char *archive, const char *policy, const char *audit, bool force,
	struct cli_backup_result *ret, char *err, size_t errsz)
{
	char *pd = path_of(policy), *ad = path_of(audit), *ar = path_of(archive);
	struct cli_backup_opts o = { .policy_dir = pd, .audit_dir = ad, .archive = ar,
		.force = force, .now = 1800000000 };
	int r = cli_backup_restore(&o, ret, err, errsz);

	free(pd);
	free(ad);
	free(ar);
	return r;
}

static void
test_backup_round_trip(void **state)
{
	struct cli_backup_result res = {}, res2 = {};
	struct aud_report rep;
	char err[2048], *ad, *rl;
	static const char *const files[] = { "policy.conf", "policy.d/10-site.conf",
		"owners.d/budi-20270101-0001.conf", "certs/" A ".pem", "revoked.list",
		"incidents.log", "anchors/ca.pem", "crl/ca.crl" };

	(void)state;
	make_policy("etc");
	make_log("log", 7);
	backup("etc", "log", "b.tar", &res);
	assert_int_equal(res.files, 1 + 8 + 1 + 1); /* info, policy, checkpoint, 1 log file */
	assert_int_equal(res.skipped, 1);           /* certs/budi.key */
	assert_int_equal(res.audit_records, 7);
	assert_int_equal(strlen(res.manifest_sha256), 64);

	if (restore("b.tar", "new/etc", "new/log", false, &res2, err, sizeof(err)) != 0)
		fail_msg("restore: %s", err);
	assert_string_equal(res2.manifest_sha256, res.manifest_sha256);
	assert_int_equal(res2.audit_records, 7);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char a[256], b[256];

		snprintf(a, sizeof(a), "etc/%s", files[i]);
		snprintf(b, sizeof(b), "new/etc/%s", files[i]);
		assert_same_file(a, b);
	}
	/* R3: no key material came back, because none went in */
	assert_false(exists("new/etc/pins"));
	assert_false(exists("new/etc/certs/budi.key"));
	/* the log verifies where it was restored */
	ad = path_of("new/log");
	memset(&rep, 0, sizeof(rep));
	assert_int_equal(aud_verify(ad, &rep), 0);
	assert_int_equal(rep.fault, AUD_OK);
	assert_int_equal(rep.records, 7);
	free(ad);

	/* Again: everything is in place already. */
	assert_int_equal(restore("b.tar", "new/etc", "new/log", false, &res2, err, sizeof(err)),
		0);
	assert_int_equal(res2.files, 0);

	/* R8: a revocation made after the backup survives a restore, even with force. */
	write_file("new/etc/revoked.list", D " 2026-06-01T00:00:00Z retired\n"
					   C " 2027-10-01T00:00:00Z violation\n", 0644);
	write_file("new/etc/policy.conf", "[validity]\nrenew_warning_days = 10\n", 0644);
	assert_int_equal(restore("b.tar", "new/etc", "new/log", false, &res2, err, sizeof(err)),
		-EEXIST);
	assert_non_null(strstr(err, "policy.conf"));
	assert_int_equal(restore("b.tar", "new/etc", "new/log", true, &res2, err, sizeof(err)), 0);
	assert_same_file("etc/policy.conf", "new/etc/policy.conf");
	rl = path_of("new/etc/revoked.list");
	{
		char *t = read_file(rl);

		assert_non_null(strstr(t, C " 2027-10-01T00:00:00Z violation"));
		assert_non_null(strstr(t, D " 2026-06-01T00:00:00Z retired"));
		free(t);
	}
	free(rl);

	/* A log here that grew past the archive's is kept, not cut back. */
	make_log("new/log", 3);
	assert_int_equal(restore("b.tar", "new/etc", "new/log", false, &res2, err, sizeof(err)),
		0);
	ad = path_of("new/log");
	memset(&rep, 0, sizeof(rep));
	assert_int_equal(aud_verify(ad, &rep), 0);
	assert_int_equal(rep.records, 10);
	free(ad);
}

/* Flips the byte of the archive's copy of needle (the first occurrence after the header
 * block it is in). */
static void
flip(const char *archive_rel, const char *needle)
{
	char *p = path_of(archive_rel), *data;
	size_t n;
	FILE *f = fopen(p, "r+");
	char *hit;

	assert_non_null(f);
	data = malloc(16 * 1024 * 1024);
	n = fread(data, 1, 16 * 1024 * 1024, f);
	hit = memmem(data, n, needle, strlen(needle));
	assert_non_null(hit);
	hit[0] ^= 0x20;
	fseek(f, 0, SEEK_SET);
	fwrite(data, 1, n, f);
	fclose(f);
	free(data);
	free(p);
}

static void
assert_nothing_written(void)
{
	assert_false(exists("t/etc"));
	assert_false(exists("t/log"));
}

static void
test_backup_refused(void **state)
{
	struct cli_backup_result res = {};
	char err[2048], *p;
	FILE *f;
	struct stat st;

	(void)state;
	make_policy("etc");
	make_log("log", 5);
	backup("etc", "log", "good.tar", &res);

	/* a changed byte in a member: its checksum */
	backup("etc", "log", "flip.tar", &res);
	flip("flip.tar", "unit = Kominfo");
	assert_int_equal(restore("flip.tar", "t/etc", "t/log", true, &res, err, sizeof(err)),
		-EBADMSG);
	assert_non_null(strstr(err, "owners.d/budi-20270101-0001.conf"));
	assert_non_null(strstr(err, "checksum"));
	assert_nothing_written();

	/* a cut archive */
	p = path_of("good.tar");
	assert_int_equal(stat(p, &st), 0);
	free(p);
	{
		char *src = path_of("good.tar"), *dst = path_of("cut.tar"), *d = read_file(src);
		FILE *o = fopen(dst, "w");

		(void)d;
		free(d);
		f = fopen(src, "r");
		for (off_t i = 0; i < st.st_size - 1536; i++)
			fputc(fgetc(f), o);
		fclose(f);
		fclose(o);
		free(src);
		free(dst);
	}
	assert_int_equal(restore("cut.tar", "t/etc", "t/log", true, &res, err, sizeof(err)),
		-EBADMSG);
	assert_non_null(strstr(err, "truncated"));
	assert_nothing_written();

	/* an edited audit record, the archive's checksums made afresh (a consistent forgery of
	 * the manifest): the chain gives it away */
	p = path_of("log");
	{
		DIR *d = opendir(p);
		struct dirent *e;
		char lf[512] = "";

		while ((e = readdir(d)))
			if (strncmp(e->d_name, "audit-", 6) == 0)
				snprintf(lf, sizeof(lf), "%s/%s", p, e->d_name);
		closedir(d);
		{
			char *t = read_file(lf), *hit = strstr(t, "\"n\":2,");

			assert_non_null(hit);
			hit[4] = '9';
			f = fopen(lf, "w");
			fputs(t, f);
			fclose(f);
			free(t);
		}
	}
	free(p);
	backup("etc", "log", "forged.tar", &res);
	assert_int_equal(restore("forged.tar", "t/etc", "t/log", true, &res, err, sizeof(err)),
		-EBADMSG);
	assert_non_null(strstr(err, "audit log is not intact"));
	assert_nothing_written();

	/* a file holding a private key stops the backup itself */
	write_file("etc/anchors/oops.pem", "-----BEGIN EC PRIVATE KEY-----\nAAAA\n"
					   "-----END EC PRIVATE KEY-----\n", 0644);
	{
		char *pd = path_of("etc"), *ad = path_of("log"), *ar = path_of("k.tar");
		struct cli_backup_opts o = { .policy_dir = pd, .audit_dir = ad, .archive = ar,
			.now = 1800000000 };

		assert_int_equal(cli_backup_write(&o, &res, err, sizeof(err)), -EPERM);
		assert_non_null(strstr(err, "oops.pem"));
		assert_int_equal(access(ar, F_OK), -1);
		free(pd);
		free(ad);
		free(ar);
	}
	/* an existing archive is not replaced without force */
	{
		char *pd = path_of("etc"), *ad = path_of("log"), *ar = path_of("good.tar");
		struct cli_backup_opts o = { .policy_dir = pd, .audit_dir = ad, .archive = ar,
			.now = 1800000000 };

		assert_int_equal(cli_backup_write(&o, &res, err, sizeof(err)), -EEXIST);
		free(pd);
		free(ad);
		free(ar);
	}
}

/* --- /spool and the sink, against a fake paraf-auditd ------------------------------------ */

#define FAKE_LINES_MAX 4096

struct fake {
	char path[256];
	int lfd;
	pthread_t thread;
	pthread_mutex_t lock;
	char *lines[FAKE_LINES_MAX];
	size_t n;
	long drop_at;  /* the line (0-based, over the service's life) whose answer is lost */
	long error_at; /* … answered "error io-error" (not stored) */
	int cur;       /* the connection being served, or -1 */
};

static void *
fake_run(void *data)
{
	struct fake *f = data;

	for (;;) {
		int c = accept(f->lfd, NULL, NULL);
		FILE *in;
		char *line = NULL;
		size_t cap = 0;
		ssize_t k;

		if (c < 0)
			return NULL;
		pthread_mutex_lock(&f->lock);
		f->cur = c;
		pthread_mutex_unlock(&f->lock);
		in = fdopen(dup(c), "r");
		while ((k = getline(&line, &cap, in)) > 0) {
			long idx;
			char answer[128];

			if (line[k - 1] == '\n')
				line[--k] = 0;
			pthread_mutex_lock(&f->lock);
			idx = (long)f->n;
			if (idx == f->error_at) {
				f->error_at = -1;
				f->n++; /* counted, not stored */
				f->lines[idx] = strdup("(refused)");
				pthread_mutex_unlock(&f->lock);
				(void)!write(c, "error io-error\n", 15);
				continue;
			}
			f->lines[f->n++] = strdup(line);
			pthread_mutex_unlock(&f->lock);
			if (idx == f->drop_at) {
				f->drop_at = -1;
				break; /* stored, but the answer is lost */
			}
			snprintf(answer, sizeof(answer), "ok %ld %064d\n", idx + 1, 0);
			(void)!write(c, answer, strlen(answer));
		}
		free(line);
		fclose(in);
		pthread_mutex_lock(&f->lock);
		f->cur = -1;
		close(c);
		pthread_mutex_unlock(&f->lock);
	}
}

static void
fake_start(struct fake *f, const char *rel)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *p = path_of(rel);

	assert_true(strlen(p) < sizeof(sa.sun_path));
	snprintf(f->path, sizeof(f->path), "%s", p);
	memcpy(sa.sun_path, p, strlen(p) + 1);
	free(p);
	f->cur = -1;
	unlink(f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	pthread_mutex_init(&f->lock, NULL);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_run, f), 0);
}

static void
fake_stop(struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	if (f->cur >= 0)
		shutdown(f->cur, SHUT_RDWR); /* the client keeps its connection: end it */
	pthread_mutex_unlock(&f->lock);
	shutdown(f->lfd, SHUT_RDWR);
	close(f->lfd);
	pthread_join(f->thread, NULL);
	unlink(f->path);
}

static void
fake_release(struct fake *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->lines[i]);
	f->n = 0;
}

static char *
id_of(const char *line)
{
	json_object *o = json_tokener_parse(line);
	char *id = o && cli_json_str(o, "record_id") ? strdup(cli_json_str(o, "record_id")) : NULL;

	json_object_put(o);
	return id;
}

static void
rec_make(struct ag_audit_record *r, const char *id, const char *message)
{
	memset(r, 0, sizeof(*r));
	r->record_id = id;
	r->method = "sign";
	r->peer.uid = 1000;
	r->peer.pid = 42;
	r->allow = true;
	r->reason = "allowed";
	r->message = message;
	r->outcome = "signed";
}

static void
test_spool_forward(void **state)
{
	struct ag_audit_options o = { .mode = AG_AUDIT_SPOOL, .timeout_ms = 2000,
		.program = "test" };
	struct fake f = { .drop_at = 2, .error_at = -1 };
	char *sock = path_of("audit.sock"), *spool = path_of("state/paraf/audit-spool");
	char ids[8][AG_AUDIT_ID_HEX + 1];
	struct ag_audit_record r;
	struct stat st;
	size_t left = 99, distinct = 0;
	char *seen[64];
	int dups = 0;

	(void)state;
	o.socket_path = sock;
	o.spool_path = spool;
	assert_int_equal(ag_audit_setup(&o), 0);

	/* The service is down: five records go to the spool, and count as stored. */
	for (int i = 0; i < 5; i++) {
		ag_audit_record_id(ids[i]);
		rec_make(&r, ids[i], "spooled while down");
		assert_int_equal(ag_audit_commit(true, &r, NULL), 0);
	}
	assert_int_equal(ag_audit_spool_pending(), 5);
	assert_int_equal(stat(spool, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(ag_audit_flush(AG_AUDIT_FLUSH_BATCH, &left), -ENOLINK);
	assert_int_equal(left, 5); /* nothing lost while the service stays away */

	/* A torn append (a crash mid-write) is cut by the next append, never forwarded. */
	{
		FILE *t = fopen(spool, "a");

		fputs("{\"half\":", t);
		fclose(t);
	}
	ag_audit_record_id(ids[5]);
	rec_make(&r, ids[5], "after a torn line");
	assert_int_equal(ag_audit_commit(true, &r, NULL), 0);
	assert_int_equal(ag_audit_spool_pending(), 6);

	/* Back, but the answer to the third record is lost: it is sent again (same record_id). */
	fake_start(&f, "audit.sock");
	assert_int_equal(ag_audit_flush(AG_AUDIT_FLUSH_BATCH, &left), 0);
	assert_int_equal(left, 0);
	assert_int_equal(ag_audit_spool_pending(), 0);
	pthread_mutex_lock(&f.lock);
	for (size_t i = 0; i < f.n; i++) {
		char *id = id_of(f.lines[i]);
		bool again = false;

		assert_non_null(id);
		assert_null(strstr(f.lines[i], "half"));
		for (size_t k = 0; k < distinct; k++)
			if (streq(seen[k], id))
				again = true;
		if (again) {
			/* only the record whose answer was lost comes twice */
			assert_string_equal(id, ids[2]);
			dups++;
			free(id);
		} else {
			seen[distinct++] = id;
		}
	}
	pthread_mutex_unlock(&f.lock);
	assert_int_equal(dups, 1);
	assert_int_equal(distinct, 6);
	for (size_t k = 0; k < 6; k++) {
		assert_string_equal(seen[k], ids[k]); /* in order, none lost */
		free(seen[k]);
	}
	/* Nothing is sent twice by a later pass. */
	fake_release(&f);
	assert_int_equal(ag_audit_flush(AG_AUDIT_FLUSH_BATCH, &left), 0);
	assert_int_equal(f.n, 0);

	/* A record the service refuses stays in the spool, and goes on the next pass. */
	fake_stop(&f);
	ag_audit_record_id(ids[6]);
	rec_make(&r, ids[6], "spooled again");
	assert_int_equal(ag_audit_commit(true, &r, NULL), 0);
	f.error_at = 0;
	fake_start(&f, "audit.sock");
	assert_int_equal(ag_audit_flush(AG_AUDIT_FLUSH_BATCH, &left), -ENOLINK);
	assert_int_equal(left, 1);
	assert_int_equal(ag_audit_flush(AG_AUDIT_FLUSH_BATCH, &left), 0);
	assert_int_equal(left, 0);
	assert_int_equal(f.n, 2);
	assert_string_equal(f.lines[0], "(refused)");
	{
		char *id = id_of(f.lines[1]);
		assert_string_equal(id, ids[6]);
		free(id);
	}

	/* With the service there and the spool empty, a record goes straight to it. */
	ag_audit_record_id(ids[7]);
	rec_make(&r, ids[7], "direct");
	assert_int_equal(ag_audit_commit(true, &r, NULL), 0);
	assert_int_equal(f.n, 3);
	{
		char *id = id_of(f.lines[2]);
		assert_string_equal(id, ids[7]);
		free(id);
	}
	assert_int_equal(ag_audit_spool_pending(), 0);
	fake_stop(&f);
	fake_release(&f);
	free(sock);
	free(spool);
}

static void
test_audit_required(void **state)
{
	struct ag_audit_options o = { .mode = AG_AUDIT_REQUIRED, .timeout_ms = 2000,
		.program = "test" };
	struct fake f = { .drop_at = -1, .error_at = -1 };
	char *sock = path_of("audit.sock"), *spool = path_of("state/audit-spool");
	struct ag_audit_record r;

	(void)state;
	o.socket_path = sock;
	o.spool_path = spool;
	assert_int_equal(ag_audit_setup(&o), 0);
	rec_make(&r, NULL, "no service");
	/* Fail closed: nothing stored, nothing spooled. */
	assert_int_equal(ag_audit_check(), -ENOLINK);
	assert_int_equal(ag_audit_commit(true, &r, "audit-unavailable"), -ENOLINK);
	assert_int_equal(access(spool, F_OK), -1);
	/* The service answers an error (its disk is full, say): still not stored. */
	f.error_at = 0;
	fake_start(&f, "audit.sock");
	assert_int_equal(ag_audit_check(), 0);
	assert_int_equal(ag_audit_commit(true, &r, "audit-unavailable"), -ENOLINK);
	assert_int_equal(ag_audit_commit(true, &r, "audit-unavailable"), 0);
	assert_int_equal(f.n, 2);
	fake_stop(&f);
	fake_release(&f);
	free(sock);
	free(spool);
}

static void
test_audit_long_record(void **state)
{
	struct ag_audit_options o = { .mode = AG_AUDIT_REQUIRED, .timeout_ms = 5000,
		.program = "test" };
	struct fake f = { .drop_at = -1, .error_at = -1 };
	char *sock = path_of("audit.sock"), id[AG_AUDIT_ID_HEX + 1];
	struct ag_audit_doc docs[AG_DOCUMENTS_MAX];
	static char names[AG_DOCUMENTS_MAX][AG_NAME_MAX + 1];
	static unsigned char digest[64];
	struct ag_audit_record r;
	size_t total = 0;

	(void)state;
	o.socket_path = sock;
	assert_int_equal(ag_audit_setup(&o), 0);
	for (size_t i = 0; i < AG_DOCUMENTS_MAX; i++) {
		memset(names[i], 'n', AG_NAME_MAX);
		snprintf(names[i], 8, "%05zu", i);
		names[i][5] = 'n';
		names[i][AG_NAME_MAX] = 0;
		docs[i] = (struct ag_audit_doc){ names[i], digest, sizeof(digest) };
	}
	ag_audit_record_id(id);
	rec_make(&r, id, "a long batch");
	r.docs = docs;
	r.n_docs = AG_DOCUMENTS_MAX;
	fake_start(&f, "audit.sock");
	assert_int_equal(ag_audit_commit(true, &r, NULL), 0);
	assert_true(f.n > 1);
	for (size_t i = 0; i < f.n; i++) {
		json_object *j = json_tokener_parse(f.lines[i]);

		assert_true(strlen(f.lines[i]) < AUD_RECORD_MAX);
		assert_non_null(j);
		total += json_object_array_length(jget(j, "documents"));
		if (i + 1 < f.n) {
			/* continuations first, each naming the record */
			assert_string_equal(jget_str(j, "continues"), id);
			assert_int_equal(jget_int(j, "parts"), (int64_t)f.n);
		} else {
			assert_string_equal(jget_str(j, "record_id"), id);
			assert_int_equal(jget_int(j, "documents_total"), AG_DOCUMENTS_MAX);
			assert_string_equal(jget_str(j, "verdict"), "allow");
			assert_string_equal(jget_str(j, "documents.0.name"), names[0]);
		}
		json_object_put(j);
	}
	assert_int_equal(total, AG_DOCUMENTS_MAX);
	fake_stop(&f);
	fake_release(&f);
	free(sock);
}

/* R13: ag_audit_prestore stores the continuations of a long sign record while the token
 * signs; the record itself, with the verdict, still comes last, before any release. */
static void
test_audit_prestore(void **state)
{
	struct ag_audit_options o = { .mode = AG_AUDIT_REQUIRED, .timeout_ms = 5000,
		.program = "test" };
	struct fake f = { .drop_at = -1, .error_at = -1 };
	char *sock = path_of("audit.sock");
	static struct ag_audit_doc docs[AG_DOCUMENTS_MAX];
	static char names[AG_DOCUMENTS_MAX][32];
	static unsigned char digest[32];
	struct ag_audit_early e;
	struct ag_audit_record r;
	size_t total = 0, before;
	const char *t0 = NULL;

	(void)state;
	o.socket_path = sock;
	assert_int_equal(ag_audit_setup(&o), 0);
	for (size_t i = 0; i < AG_DOCUMENTS_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "surat-%04zu.pdf", i);
		docs[i] = (struct ag_audit_doc){ names[i], digest, sizeof(digest) };
	}
	rec_make(&r, NULL, "allowed");
	r.outcome = NULL;
	r.docs = docs;
	r.n_docs = AG_DOCUMENTS_MAX;
	fake_start(&f, "audit.sock");
	ag_audit_prestore(&r, &e);
	/* stored at once: every continuation, nothing of the record itself yet */
	assert_true(e.n_lines >= 1);
	assert_int_equal(e.stored, e.n_lines);
	assert_true(e.head >= 1 && e.head < AG_DOCUMENTS_MAX);
	pthread_mutex_lock(&f.lock);
	before = f.n;
	pthread_mutex_unlock(&f.lock);
	assert_int_equal(before, e.n_lines);
	/* the verdict, later: the commit sends the record itself only */
	r.outcome = "signed";
	r.early = &e;
	assert_int_equal(ag_audit_commit(true, &r, NULL), 0);
	assert_int_equal(f.n, before + 1);
	for (size_t i = 0; i < f.n; i++) {
		json_object *j = json_tokener_parse(f.lines[i]);

		assert_non_null(j);
		assert_true(strlen(f.lines[i]) < AUD_RECORD_MAX);
		total += json_object_array_length(jget(j, "documents"));
		if (!t0)
			t0 = strdup(jget_str(j, "time"));
		assert_string_equal(jget_str(j, "time"), t0); /* one decision, one time */
		if (i + 1 < f.n) {
			assert_string_equal(jget_str(j, "continues"), e.record_id);
			assert_int_equal(jget_int(j, "part"), (int64_t)i + 2);
			assert_int_equal(jget_int(j, "parts"), (int64_t)f.n);
		} else {
			assert_string_equal(jget_str(j, "record_id"), e.record_id);
			assert_int_equal(jget_int(j, "documents_total"), AG_DOCUMENTS_MAX);
			assert_int_equal(jget_int(j, "parts"), (int64_t)f.n);
			assert_string_equal(jget_str(j, "outcome"), "signed");
			assert_int_equal(json_object_array_length(jget(j, "documents")), e.head);
			assert_string_equal(jget_str(j, "documents.0.name"), names[0]);
		}
		json_object_put(j);
	}
	assert_int_equal(total, AG_DOCUMENTS_MAX);
	free((char *)t0);
	ag_audit_early_release(&e);
	fake_stop(&f);
	fake_release(&f);

	/* The service down while the token signs: nothing stored early; the commit, with the
	 * service back, stores the continuations and then the record, in order. */
	f = (struct fake){ .drop_at = -1, .error_at = -1 };
	r.outcome = NULL;
	r.early = NULL;
	ag_audit_prestore(&r, &e);
	assert_true(e.n_lines >= 1);
	assert_int_equal(e.stored, 0);
	fake_start(&f, "audit.sock");
	r.outcome = "signed";
	r.early = &e;
	assert_int_equal(ag_audit_commit(true, &r, NULL), 0);
	assert_int_equal(f.n, e.n_lines + 1);
	for (size_t i = 0; i + 1 < f.n; i++)
		assert_non_null(strstr(f.lines[i], e.record_id));
	{
		char want[64];

		snprintf(want, sizeof(want), "\"documents_total\":%d", AG_DOCUMENTS_MAX);
		assert_non_null(strstr(f.lines[f.n - 1], want));
	}
	ag_audit_early_release(&e);
	fake_stop(&f);
	fake_release(&f);
	free(sock);
}

#define T(name, fn) { name, fn, setup, teardown, NULL }

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T("/report/year", test_report_year),
		T("/report/not-intact", test_report_not_intact),
		T("/backup/round-trip", test_backup_round_trip),
		T("/backup/refused", test_backup_refused),
		T("/spool/forward", test_spool_forward),
		T("/audit/required", test_audit_required),
		T("/audit/long-record", test_audit_long_record),
		T("/audit/prestore", test_audit_prestore),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
