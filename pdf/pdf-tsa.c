/*
 * RFC 3161 timestamps for PAdES B-T: a TimeStampReq over the SHA-256 of the signature value,
 * with a random nonce and certReq, POSTed with libcurl (http:// and https:// only, redirects
 * not followed, a PDF_TSA_TIMEOUT second limit, the reply capped at PDF_TSA_REPLY_MAX), and the
 * reply checked with OpenSSL's TS API: status granted, version, nonce and message imprint as
 * asked. Whether the TSA is trusted is the verifier's question, not the signer's.
 */
#include "pdf-write.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/ts.h>

#include "pf-util.h"

static char *
msg_new(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

int
pdf_tsa_url_valid(const char *url)
{
	const char *host;
	const unsigned char *p;

	if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else
		return 0;
	if (!*host || *host == '/' || *host == ':' || strlen(url) > PDF_URL_MAX)
		return 0;
	for (p = (const unsigned char *)url; *p; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return 0;
	return 1;
}

struct reply {
	struct pf_buf b;
	int too_big;
};

static size_t
reply_write(char *p, size_t size, size_t n, void *data)
{
	struct reply *r = data;
	size_t len = size * n;

	if (r->b.len + len > PDF_TSA_REPLY_MAX) {
		r->too_big = 1;
		return 0;
	}
	pf_buf_put(&r->b, p, len);
	return pf_buf_status(&r->b) < 0 ? 0 : len;
}

static int
tsa_post(const char *url, const uint8_t *query, size_t qlen, struct pf_buf *out, char **err)
{
	static int curl_ready;
	struct reply rep = {};
	struct curl_slist *hdr = NULL;
	char curl_err[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode c;
	CURL *h;

	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return -ENOMEM;
		curl_ready = 1;
	}
	h = curl_easy_init();
	hdr = curl_slist_append(NULL, "Content-Type: application/timestamp-query");
	if (!h || !hdr) {
		curl_easy_cleanup(h);
		curl_slist_free_all(hdr);
		return -ENOMEM;
	}
	pf_buf_init(&rep.b);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)PDF_TSA_TIMEOUT);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, query);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)qlen);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, reply_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &rep);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "paraf");
	c = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdr);
	if (rep.too_big) {
		*err = msg_new("the timestamp server's reply is larger than %u bytes",
			PDF_TSA_REPLY_MAX);
		pf_buf_release(&rep.b);
		return -EMSGSIZE;
	}
	if (c != CURLE_OK) {
		*err = msg_new("cannot reach the timestamp server: %s",
			curl_err[0] ? curl_err : curl_easy_strerror(c));
		pf_buf_release(&rep.b);
		return c == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH;
	}
	if (status != 200) {
		*err = msg_new("the timestamp server answered HTTP %ld", status);
		pf_buf_release(&rep.b);
		return -EPROTO;
	}
	if (pf_buf_status(&rep.b) < 0) {
		pf_buf_release(&rep.b);
		return -ENOMEM;
	}
	*out = rep.b;
	return 0;
}

static const char *
ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e ? ERR_reason_error_string(e) : NULL;

	return s ? s : "malformed";
}

int
pdf_tsa_stamp(const char *url, const uint8_t *data, size_t len, uint8_t **ret, size_t *ret_len,
	char **ret_error)
{
	uint8_t hash[32], nonce_bytes[8];
	TS_REQ *req = NULL;
	TS_MSG_IMPRINT *mi = NULL;
	X509_ALGOR *alg = NULL;
	ASN1_INTEGER *nonce = NULL;
	BIGNUM *bn = NULL;
	TS_RESP *resp = NULL;
	TS_VERIFY_CTX *vctx = NULL;
	PKCS7 *token;
	uint8_t *q = NULL, *tok = NULL;
	const unsigned char *pp;
	struct pf_buf reply;
	int qlen, tlen, r;

	pf_buf_init(&reply);
	ERR_clear_error();
	if (!pdf_tsa_url_valid(url)) {
		*ret_error = msg_new("'%s' is not an http:// or https:// URL", url);
		return -EINVAL;
	}
	if (!EVP_Digest(data, len, hash, NULL, EVP_sha256(), NULL) ||
	    RAND_bytes(nonce_bytes, sizeof(nonce_bytes)) != 1) {
		r = -EIO;
		goto out;
	}
	nonce_bytes[0] &= 0x7f; /* a positive INTEGER of 8 bytes at most */
	nonce_bytes[0] |= 0x01;
	req = TS_REQ_new();
	mi = TS_MSG_IMPRINT_new();
	alg = X509_ALGOR_new();
	bn = BN_bin2bn(nonce_bytes, sizeof(nonce_bytes), NULL);
	nonce = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	if (!req || !mi || !alg || !nonce ||
	    !X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, NULL) ||
	    !TS_MSG_IMPRINT_set_algo(mi, alg) || !TS_MSG_IMPRINT_set_msg(mi, hash, sizeof(hash)) ||
	    !TS_REQ_set_version(req, 1) || !TS_REQ_set_msg_imprint(req, mi) ||
	    !TS_REQ_set_nonce(req, nonce) || !TS_REQ_set_cert_req(req, 1)) {
		r = -ENOMEM;
		goto out;
	}
	qlen = i2d_TS_REQ(req, &q);
	if (qlen <= 0) {
		r = -ENOMEM;
		goto out;
	}
	r = tsa_post(url, q, (size_t)qlen, &reply, ret_error);
	if (r < 0)
		goto out;
	pp = reply.data;
	resp = d2i_TS_RESP(NULL, &pp, (long)reply.len);
	if (!resp || pp != reply.data + reply.len) {
		*ret_error = msg_new("the timestamp server's reply is not a TimeStampResp");
		r = -EBADMSG;
		goto out;
	}
	/* Status granted, version 1, our nonce, our message imprint (RFC 3161 2.4.2). */
	vctx = TS_REQ_to_TS_VERIFY_CTX(req, NULL);
	if (!vctx) {
		r = -ENOMEM;
		goto out;
	}
	/* Not TS_VFY_SIGNATURE: that needs a trust store (the verifier's business); the
	 * token's own signature is checked below against the certificate it carries. */
	TS_VERIFY_CTX_set_flags(vctx, TS_VFY_VERSION | TS_VFY_IMPRINT | TS_VFY_NONCE);
	if (TS_RESP_verify_response(vctx, resp) != 1) {
		*ret_error = msg_new("the timestamp server's reply is refused: %s", ossl_reason());
		r = -EBADMSG;
		goto out;
	}
	token = TS_RESP_get_token(resp);
	if (!token || PKCS7_verify(token, NULL, NULL, NULL, NULL, PKCS7_NOVERIFY) != 1) {
		*ret_error = msg_new("the timestamp token's signature does not verify: %s",
			ossl_reason());
		r = -EBADMSG;
		goto out;
	}
	tlen = i2d_PKCS7(token, &tok);
	if (tlen <= 0) {
		*ret_error = msg_new("the timestamp server's reply has no token");
		r = -EBADMSG;
		goto out;
	}
	*ret = tok;
	*ret_len = (size_t)tlen;
	tok = NULL;
	r = 0;
out:
	ERR_clear_error();
	OPENSSL_free(q);
	OPENSSL_free(tok);
	TS_VERIFY_CTX_free(vctx);
	TS_RESP_free(resp);
	TS_REQ_free(req);
	TS_MSG_IMPRINT_free(mi);
	X509_ALGOR_free(alg);
	ASN1_INTEGER_free(nonce);
	BN_free(bn);
	pf_buf_release(&reply);
	return r;
}
