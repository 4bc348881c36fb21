/*
 * The PKCS#10 certificate request of `paraf activate` and `paraf renew` (R3, R16): OpenSSL
 * builds the CertificationRequestInfo (the registered subject, R17, and the public key the
 * token generated), its DER is hashed and signed by the token key through a callback (the
 * private key never leaves the token), and the signature is checked against the public key
 * before the request is handed out, so that `openssl req -verify` and the CA accept it.
 */
#include "cli-admin.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

PF_DEFINE_CLEANUP(X509_REQ, X509_REQ_free)
PF_DEFINE_CLEANUP(EVP_PKEY, EVP_PKEY_free)
PF_DEFINE_CLEANUP(X509_NAME, X509_NAME_free)
PF_DEFINE_CLEANUP(X509_ALGOR, X509_ALGOR_free)
PF_DEFINE_CLEANUP(BIO, BIO_free)

static int
name_add(X509_NAME *nm, int nid, const char *v)
{
	if (!v || !*v)
		return 0;
	/* MBSTRING_UTF8: OpenSSL picks the string type X.520 wants for each attribute
	 * (PrintableString for C and serialNumber, IA5String for emailAddress, UTF8String else)
	 * and refuses a value over the attribute's upper bound. */
	return X509_NAME_add_entry_by_NID(nm, nid, MBSTRING_UTF8, (const unsigned char *)v, -1, -1,
		       0) == 1 ? 0 : -EINVAL;
}

static int
subject_build(const struct cli_csr_subject *s, X509_NAME **ret, const char **ret_field)
{
	_cleanup_(X509_NAME_freep) X509_NAME *nm = X509_NAME_new();
	_cleanup_free_ char *serial = NULL;
	static const struct {
		int nid;
		const char *field;
	} order[] = {
		{ NID_countryName, "country" },
		{ NID_organizationName, "organisation" },
		{ NID_organizationalUnitName, "unit" },
		{ NID_title, "position" },
		{ NID_commonName, "name" },
		{ NID_serialNumber, "nip" },
		{ NID_pkcs9_emailAddress, "email" },
	};

	if (!nm || (s->nip && asprintf(&serial, "NIP%s", s->nip) < 0))
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		const char *v = order[i].nid == NID_countryName	       ? s->country
				: order[i].nid == NID_organizationName	       ? s->org
				: order[i].nid == NID_organizationalUnitName ? s->unit
				: order[i].nid == NID_title		       ? s->position
				: order[i].nid == NID_commonName	       ? s->name
				: order[i].nid == NID_serialNumber	       ? serial
									       : s->email;

		if (name_add(nm, order[i].nid, v) < 0) {
			*ret_field = order[i].field;
			return -EINVAL;
		}
	}
	*ret = TAKE_PTR(nm);
	return 0;
}

/* The extensions asked for: keyUsage (signing; keyEncipherment when the key may decrypt) and
 * the e-mail address as a subjectAltName (what an S/MIME certificate needs). The CA decides. */
static int
extensions_add(X509_REQ *req, const struct cli_csr_subject *s, bool rsa)
{
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
	X509_EXTENSION *e;
	int r = -ENOMEM;

	if (!exts || !ku)
		goto out;
	if (!ASN1_BIT_STRING_set_bit(ku, 0, 1) || !ASN1_BIT_STRING_set_bit(ku, 1, 1) ||
	    (s->decrypt && rsa && !ASN1_BIT_STRING_set_bit(ku, 2, 1)))
		goto out;
	e = X509V3_EXT_i2d(NID_key_usage, 1, ku);
	if (!e || !sk_X509_EXTENSION_push(exts, e)) {
		X509_EXTENSION_free(e);
		goto out;
	}
	if (s->email && *s->email) {
		GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

		if (!gens || !g || !ia5 || !ASN1_STRING_set(ia5, s->email, -1)) {
			sk_GENERAL_NAME_free(gens);
			GENERAL_NAME_free(g);
			ASN1_IA5STRING_free(ia5);
			goto out;
		}
		GENERAL_NAME_set0_value(g, GEN_EMAIL, ia5);
		if (!sk_GENERAL_NAME_push(gens, g)) {
			GENERAL_NAME_free(g);
			sk_GENERAL_NAME_free(gens);
			goto out;
		}
		e = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
		GENERAL_NAMES_free(gens);
		if (!e || !sk_X509_EXTENSION_push(exts, e)) {
			X509_EXTENSION_free(e);
			goto out;
		}
	}
	r = X509_REQ_add_extensions(req, exts) == 1 ? 0 : -ENOMEM;
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ASN1_BIT_STRING_free(ku);
	return r;
}

int
cli_csr_build(const struct cli_csr_subject *s, const uint8_t *spki, size_t spki_len,
	cli_csr_sign_fn sign, void *data, char **ret_pem, size_t *ret_len, const char **ret_field)
{
	_cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
	_cleanup_(X509_NAME_freep) X509_NAME *nm = NULL;
	_cleanup_(X509_ALGOR_freep) X509_ALGOR *alg = NULL;
	_cleanup_(BIO_freep) BIO *bio = NULL;
	const unsigned char *p = spki;
	unsigned char *tbs = NULL, digest[32];
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	ASN1_BIT_STRING *bits;
	BUF_MEM *mem;
	bool ec;
	int len, r;

	*ret_field = NULL;
	pub = d2i_PUBKEY(NULL, &p, (long)spki_len);
	if (!pub || p != spki + spki_len)
		return -EBADMSG;
	ec = EVP_PKEY_is_a(pub, "EC");
	if (!ec && !EVP_PKEY_is_a(pub, "RSA"))
		return -EBADMSG;
	r = subject_build(s, &nm, ret_field);
	if (r < 0)
		return r;
	req = X509_REQ_new();
	alg = X509_ALGOR_new();
	if (!req || !alg || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
	    !X509_REQ_set_subject_name(req, nm) || !X509_REQ_set_pubkey(req, pub))
		return -ENOMEM;
	r = extensions_add(req, s, !ec);
	if (r < 0)
		return r;
	/* ecdsa-with-SHA256 has no parameters; sha256WithRSAEncryption has NULL (RFC 4055). */
	if (!X509_ALGOR_set0(alg, OBJ_nid2obj(ec ? NID_ecdsa_with_SHA256 : NID_sha256WithRSAEncryption),
		    ec ? V_ASN1_UNDEF : V_ASN1_NULL, NULL) ||
	    !X509_REQ_set1_signature_algo(req, alg))
		return -ENOMEM;
	len = i2d_re_X509_REQ_tbs(req, &tbs);
	if (len <= 0)
		return -ENOMEM;
	r = EVP_Digest(tbs, (size_t)len, digest, NULL, EVP_sha256(), NULL) ? 0 : -EIO;
	OPENSSL_free(tbs);
	if (r < 0)
		return r;
	r = sign(data, digest, &sig, &sig_len);
	if (r < 0)
		return r;
	bits = ASN1_BIT_STRING_new();
	if (!bits || !ASN1_BIT_STRING_set(bits, sig, (int)sig_len)) {
		ASN1_BIT_STRING_free(bits);
		free(sig);
		return -ENOMEM;
	}
	free(sig);
	/* A signature is a whole number of bytes: no unused bits. */
	bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	X509_REQ_set0_signature(req, bits);
	/* The token signed what we meant: the request verifies with the key it carries. */
	if (X509_REQ_verify(req, pub) != 1)
		return -EBADE;
	bio = BIO_new(BIO_s_mem());
	if (!bio || !PEM_write_bio_X509_REQ(bio, req))
		return -ENOMEM;
	BIO_get_mem_ptr(bio, &mem);
	if (mem->length > CLI_PROV_CSR_MAX)
		return -EFBIG;
	*ret_pem = strndup(mem->data, mem->length);
	if (!*ret_pem)
		return -ENOMEM;
	*ret_len = mem->length;
	return 0;
}
