/*
 * Fuzz target: the PDF reading paths. The input is a PDF file:
 *
 *   1. `paraf verify FILE.pdf` (cli_verify_run: pdf/pdf-sigs.c finds the signature fields,
 *      checks each /ByteRange against the file and streams the signed bytes into the CMS
 *      check), as in fuzz-cms.c;
 *   2. `paraf sign-pdf`'s reading and update (pdf_doc_open: header, tail, startxref, qpdf
 *      without recovery; pdf_update_build: page geometry, annotations, form, a visible or an
 *      invisible signature), and the signed file it would write, read back with
 *      pdf_sigs_read(): when the verifier could read the original, the signature just added
 *      must be found, cover the whole file and hold the bytes put in its /Contents.
 *
 * (sign-pdf reads only the objects it needs, the verifier every signature field: a PDF damaged
 * in an earlier signature's dictionary is signed, and the result is refused by `paraf verify`
 * as the original was. test/fuzz/regressions/pdf/crash-a59e67… is such a file.)
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fuzz-common.h"
#include "fuzz-verify.h"
#include "pdf-sigs.h"
#include "pdf-write.h"

static char *in_path, *out_path;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_verify_setup();
	in_path = fuzz_path(fuzz_tmpdir(), "verify/doc.pdf");
	out_path = fuzz_path(fuzz_tmpdir(), "signed.pdf");
	return 0;
}

/* A stand-in for the CMS: DER-looking, not ending in a zero byte (padding is stripped). */
static const uint8_t fake_cms[] = { 0x30, 0x06, 0x02, 0x01, 0x01, 0x04, 0x01, 0x7f };

static void
read_back(const struct pdf_update *u, uint64_t size)
{
	struct pdf_sigs *sigs = NULL;
	char *err = NULL;
	const struct pdf_sig *mine = NULL;
	int r;

	r = pdf_sigs_read(out_path, &sigs, &err);
	if (r == -E2BIG) { /* more signatures than reported: the input had them */
		free(err);
		return;
	}
	if (r < 0) {
		fprintf(stderr, "the signed PDF cannot be read back: %s\n", err ? err : "?");
		abort();
	}
	for (size_t i = 0; i < sigs->n; i++)
		if (sigs->sigs[i].field && strcmp(sigs->sigs[i].field, u->field_name) == 0)
			mine = &sigs->sigs[i];
	if (!mine) {
		fprintf(stderr, "the signature '%s' is not found in the signed PDF\n", u->field_name);
		abort();
	}
	if (mine->error) {
		fprintf(stderr, "the signature '%s' cannot be checked: %s\n", u->field_name,
			mine->error);
		abort();
	}
	FUZZ_CHECK(mine->whole_file && mine->signed_end == size);
	FUZZ_CHECK(mine->contents_len == sizeof(fake_cms) &&
		memcmp(mine->contents, fake_cms, sizeof(fake_cms)) == 0);
	FUZZ_CHECK(mine->appended == PDF_APPENDED_NONE);
	pdf_sigs_free(sigs);
	free(err);
}

/* Whether the verifier's reader takes the original. */
static bool
verifier_reads(void)
{
	struct pdf_sigs *sigs = NULL;
	char *err = NULL;
	int r = pdf_sigs_read(in_path, &sigs, &err);

	pdf_sigs_free(sigs);
	free(err);
	return r >= 0;
}

static void
sign(size_t size)
{
	struct pdf_doc *d = NULL;
	struct pdf_update *u = NULL;
	struct pdf_sign_opts o = {};
	char *why = NULL;
	int fd, out, r;

	fd = open(in_path, O_RDONLY | O_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	r = pdf_doc_open(fd, size, &d, &why);
	if (r < 0) {
		FUZZ_CHECK(why || r == -ENOMEM);
		goto out;
	}
	FUZZ_CHECK(pdf_doc_n_pages(d) >= 1);
	FUZZ_CHECK(pdf_doc_version(d));
	o.page = (int)(size % (size_t)pdf_doc_n_pages(d));
	o.visible = size & 1;
	o.reason = "Menyetujui";
	o.location = "Kota Contoh";
	o.name = "Budi Santoso";
	o.when = FUZZ_NOW;
	o.contents_max = 2048;
	if (o.visible) {
		o.url = "https://verifikasi.contoh.go.id/v/0123456789abcdef";
		o.text = (struct pdf_block_text){ "Ditandatangani secara elektronik oleh :",
			"Kepala Dinas Komunikasi dan Informatika", "Budi Santoso",
			"197803152005011002", "Balai Sertifikasi Elektronik (BSrE)" };
		o.footer = "Dokumen ini telah ditandatangani secara elektronik menggunakan "
			   "sertifikat elektronik yang diterbitkan oleh BSrE";
		o.at_given = (size & 2) != 0;
		o.at_x = (double)(size % 500);
		o.at_y = (double)(size % 700);
	}
	r = pdf_update_build(d, &o, &u, &why);
	if (r < 0) {
		FUZZ_CHECK(why || r == -ENOMEM);
		goto out;
	}
	/* The ByteRange covers everything but the hole, from the original's first byte. */
	FUZZ_CHECK(u->base == size);
	FUZZ_CHECK(u->byterange[0] == 0 && u->byterange[1] == size + u->hole_start);
	FUZZ_CHECK(u->byterange[2] == size + u->hole_end);
	FUZZ_CHECK(u->byterange[3] == u->buf.len - u->hole_end);
	{
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		FUZZ_CHECK(ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL));
		FUZZ_CHECK(pdf_update_digest_update(u, ctx) >= 0);
		EVP_MD_CTX_free(ctx);
	}
	/* The file sign-pdf would write: the original, the update, the CMS in the hole. */
	out = open(out_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	FUZZ_CHECK(out >= 0);
	{
		uint8_t buf[65536];
		ssize_t k;

		FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0);
		while ((k = read(fd, buf, sizeof(buf))) > 0)
			FUZZ_CHECK(write(out, buf, (size_t)k) == k);
		FUZZ_CHECK(write(out, u->buf.data, u->buf.len) == (ssize_t)u->buf.len);
	}
	FUZZ_CHECK(pdf_update_contents_write(u, out, fake_cms, sizeof(fake_cms)) >= 0);
	close(out);
	if (verifier_reads())
		read_back(u, size + u->buf.len);
out:
	pdf_update_free(u);
	pdf_doc_free(d);
	free(why);
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_verify_one("doc.pdf", data, size);
	sign(size);
	return 0;
}
