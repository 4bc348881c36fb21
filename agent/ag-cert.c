/*
 * What certificates.list says about a certificate: names, validity, key, key usages. Parsing
 * is OpenSSL's; the names of usages are RFC 5280's, and RFC 9336's documentSigning, which
 * OpenSSL does not name.
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "ag.h"
#include "pf-codec.h"
#include "pf-util.h"

char *
ag_cert_id(const uint8_t *der, size_t n)
{
	unsigned char md[32];

	if (!EVP_Digest(der, n, md, NULL, EVP_sha256(), NULL))
		return NULL;
	return pf_hex_encode(md, sizeof(md));
}

char *
ag_time_iso8601(time_t t)
{
	struct tm tm;
	char buf[32];

	if (!gmtime_r(&t, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return NULL;
	return strdup(buf);
}

static json_object *
asn1_time_json(const ASN1_TIME *t)
{
	struct tm tm;
	char buf[32];

	if (!t || !ASN1_TIME_to_tm(t, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return NULL;
	return json_object_new_string(buf);
}

static json_object *
name_json(const X509_NAME *n)
{
	BIO *b = BIO_new(BIO_s_mem());
	json_object *o = NULL;
	char *p;
	long len;

	if (!b)
		return NULL;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		len = BIO_get_mem_data(b, &p);
		o = json_object_new_string_len(p, (int)len);
	}
	BIO_free(b);
	return o;
}

static json_object *
serial_json(const ASN1_INTEGER *serial)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
	json_object *o = NULL;
	char *hex;

	if (!bn)
		return NULL;
	hex = BN_bn2hex(bn);
	if (hex) {
		for (char *c = hex; *c; c++)
			if (*c >= 'A' && *c <= 'F')
				*c = (char)(*c - 'A' + 'a');
		o = json_object_new_string(hex);
		OPENSSL_free(hex);
	}
	BN_free(bn);
	return o;
}

static json_object *
key_json(X509 *x)
{
	EVP_PKEY *k = X509_get0_pubkey(x);
	json_object *o;
	char curve[64];

	if (!k)
		return NULL;
	o = json_object_new_object();
	if (EVP_PKEY_is_a(k, "RSA"))
		json_object_object_add(o, "algorithm", json_object_new_string("rsa"));
	else if (EVP_PKEY_is_a(k, "RSA-PSS"))
		json_object_object_add(o, "algorithm", json_object_new_string("rsa-pss"));
	else if (EVP_PKEY_is_a(k, "EC"))
		json_object_object_add(o, "algorithm", json_object_new_string("ec"));
	else
		json_object_object_add(o, "algorithm", json_object_new_string(
			EVP_PKEY_get0_type_name(k) ? EVP_PKEY_get0_type_name(k) : "unknown"));
	json_object_object_add(o, "size", json_object_new_int(EVP_PKEY_get_bits(k)));
	if (EVP_PKEY_is_a(k, "EC") &&
	    EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve), NULL))
		json_object_object_add(o, "curve", json_object_new_string(curve));
	return o;
}

static json_object *
key_usage_json(X509 *x)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} ku[] = {
		{ KU_DIGITAL_SIGNATURE, "digitalSignature" },
		{ KU_NON_REPUDIATION, "nonRepudiation" },
		{ KU_KEY_ENCIPHERMENT, "keyEncipherment" },
		{ KU_DATA_ENCIPHERMENT, "dataEncipherment" },
		{ KU_KEY_AGREEMENT, "keyAgreement" },
		{ KU_KEY_CERT_SIGN, "keyCertSign" },
		{ KU_CRL_SIGN, "cRLSign" },
		{ KU_ENCIPHER_ONLY, "encipherOnly" },
		{ KU_DECIPHER_ONLY, "decipherOnly" },
	};
	uint32_t v;
	json_object *a;

	if (X509_get_ext_by_NID(x, NID_key_usage, -1) < 0)
		return NULL;
	v = X509_get_key_usage(x);
	a = json_object_new_array();
	for (size_t i = 0; i < ARRAY_SIZE(ku); i++)
		if (v & ku[i].bit)
			json_object_array_add(a, json_object_new_string(ku[i].name));
	return a;
}

static json_object *
eku_json(X509 *x)
{
	static const struct {
		const char *oid;
		const char *name;
	} names[] = {
		{ "1.3.6.1.5.5.7.3.1", "serverAuth" },
		{ "1.3.6.1.5.5.7.3.2", "clientAuth" },
		{ "1.3.6.1.5.5.7.3.3", "codeSigning" },
		{ "1.3.6.1.5.5.7.3.4", "emailProtection" },
		{ "1.3.6.1.5.5.7.3.8", "timeStamping" },
		{ "1.3.6.1.5.5.7.3.9", "OCSPSigning" },
		{ "1.3.6.1.5.5.7.3.36", "documentSigning" }, /* RFC 9336 */
	};
	EXTENDED_KEY_USAGE *eku;
	json_object *a;
	int crit = 0;

	eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
	if (!eku)
		return NULL;
	a = json_object_new_array();
	for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
		char oid[80];
		const char *name = NULL;

		if (OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_OBJECT_value(eku, i), 1) <= 0)
			continue;
		for (size_t k = 0; k < ARRAY_SIZE(names); k++)
			if (streq(names[k].oid, oid))
				name = names[k].name;
		json_object_array_add(a, json_object_new_string(name ? name : oid));
	}
	EXTENDED_KEY_USAGE_free(eku);
	return a;
}

json_object *
ag_cert_describe(X509 *x)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "subject", name_json(X509_get_subject_name(x)));
	json_object_object_add(o, "issuer", name_json(X509_get_issuer_name(x)));
	json_object_object_add(o, "serial", serial_json(X509_get0_serialNumber(x)));
	json_object_object_add(o, "not_before", asn1_time_json(X509_get0_notBefore(x)));
	json_object_object_add(o, "not_after", asn1_time_json(X509_get0_notAfter(x)));
	json_object_object_add(o, "key", key_json(x));
	json_object_object_add(o, "key_usage", key_usage_json(x));
	json_object_object_add(o, "extended_key_usage", eku_json(x));
	return o;
}
