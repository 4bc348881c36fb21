/*
 * Fuzz target: the audit log's readers (audit/, cli/cli-audit*.c). The input is a log
 * directory, split at NUL bytes (which no stored line holds): the first part is the
 * checkpoint file (none when empty), the next ones the log files audit-202611-001.log,
 * audit-202611-002.log... in order. Then:
 *
 *   1. aud_verify(), the verifier of `paraf audit verify`;
 *   2. cli_audit_read() with the yearly report (`paraf audit show`, `report`), rendered as
 *      JSON and HTML;
 *   3. aud_log_open(), what paraf-auditd does when it starts on that directory (scan, torn
 *      tail repair, checkpoint check), then one record appended and the log closed: an intact
 *      log that paraf-auditd opened and appended to must still verify intact. (Opening checks
 *      the tail only, by design: a log damaged further back is aud_verify()'s to find.)
 */
#include <errno.h>
#include <string.h>

#include "aud.h"
#include "cli.h"
#include "fuzz-common.h"

#define PARTS 9 /* the checkpoint and up to eight log files */

static char *dir;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	dir = fuzz_path(fuzz_tmpdir(), "audit");
	fuzz_mkdir(dir, 0700);
	return 0;
}

static int
entry_seen(const struct cli_audit_entry *e, void *data)
{
	struct cli_report *rep = data;

	FUZZ_CHECK(e->record && e->stored && e->file);
	(void)cli_audit_entry_time(e);
	return cli_report_add(rep, e);
}

static void
report(const struct aud_report *ar, bool intact)
{
	struct cli_report_input in = {
		.year = 2026,
		.now = FUZZ_NOW,
		.audit_dir = dir,
		.log = { .checked = true, .intact = intact,
			.fault = intact ? NULL : aud_fault_to_string(ar->fault),
			.detail = ar->detail, .file = ar->file, .line = ar->line, .seq = ar->seq,
			.records = ar->records, .head = ar->head },
	};
	struct cli_report *rep = NULL;
	char err[512] = "";
	json_object *j;
	struct pf_buf html;

	FUZZ_CHECK(cli_report_new(&in, &rep) >= 0);
	if (cli_audit_read(dir, entry_seen, rep, err, sizeof(err)) < 0)
		FUZZ_CHECK(err[0]);
	j = cli_report_json(rep);
	FUZZ_CHECK(j && json_object_to_json_string(j));
	pf_buf_init(&html);
	FUZZ_CHECK(cli_report_html(j, &html) >= 0);
	pf_buf_release(&html);
	json_object_put(j);
	cli_report_free(rep);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *parts[PARTS];
	size_t lens[PARTS];
	size_t n = fuzz_split(data, size, 0, PARTS, parts, lens);
	struct aud_report ar = {}, after = {};
	struct aud_log_options o = { .dir = NULL, .file_max = 4096 };
	struct aud_log *l = NULL;
	bool intact;
	int r;

	fuzz_empty_dir(dir);
	if (lens[0]) {
		char *p = fuzz_path(dir, "checkpoint");

		fuzz_write_file(p, parts[0], lens[0]);
		free(p);
	}
	for (size_t i = 1; i < n; i++) {
		char name[64], *p;

		snprintf(name, sizeof(name), "audit-202611-%03zu.log", i);
		p = fuzz_path(dir, name);
		fuzz_write_file(p, parts[i], lens[i]);
		free(p);
	}
	fuzz_parts_free(parts, n);

	r = aud_verify(dir, &ar);
	FUZZ_CHECK(r == 0 || r == -ENOENT || r == -EACCES || r == -ENOMEM || r == -EIO);
	if (r < 0)
		return 0;
	FUZZ_CHECK(memchr(ar.detail, 0, sizeof(ar.detail)) && memchr(ar.file, 0, sizeof(ar.file)));
	FUZZ_CHECK(aud_fault_to_string(ar.fault));
	intact = ar.fault == AUD_OK;
	report(&ar, intact);

	o.dir = dir;
	r = aud_log_open(&o, &l);
	if (r < 0)
		return 0;
	{
		static const char rec[] = "{\"method\":\"sign\",\"verdict\":\"allow\"}";
		uint64_t seq = 0;
		char hash[AUD_HASH_HEX + 1];

		r = aud_log_append(l, 1000, 4242, rec, sizeof(rec) - 1, &seq, hash);
		FUZZ_CHECK(r >= 0);
	}
	aud_log_close(l);
	/* An intact log stays intact through paraf-auditd's open and append. */
	FUZZ_CHECK(aud_verify(dir, &after) == 0);
	if (intact && after.fault != AUD_OK) {
		fprintf(stderr, "after aud_log_open() and an append, the log is not intact: %s at "
			"%s:%llu (%s); before: %s\n", aud_fault_to_string(after.fault), after.file,
			(unsigned long long)after.line, after.detail, aud_fault_to_string(ar.fault));
		abort();
	}
	return 0;
}
