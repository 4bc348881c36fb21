/*
 * Provisioning, inside paraf-token-helper: initialise a blank token, set the activation code,
 * let the owner choose their passphrase, generate a key pair on the token, read a public key
 * and store a certificate beside its key. Each request gets exactly one reply; every session
 * is closed and every login logged out before the reply goes back.
 *
 * The operator's steps (INIT_TOKEN, INIT_PIN, WRITE_CERT) and the owner's (SET_PIN, GENERATE)
 * are separate messages so that the CLI can run the owner's only from the owner's account (R4);
 * nothing here ever overwrites what is already there: an initialised token, a user PIN that is
 * set, an object with the CKA_ID. Keys are generated on the token, sensitive and
 * non-extractable, and a token that does not honour that loses the key at once (R3).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "pf-util.h"
#include "tok-p11.h"

#define ADMIN_RSA_BITS 3072
#define ADMIN_EC_FIELD_MAX 66 /* bytes of a P-521 coordinate, the largest named curve we read */

/* DER of the OID prime256v1 (1.2.840.10045.3.1.7), as CKA_EC_PARAMS wants it. */
static const uint8_t ec_params_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01,
	0x07 };
static const uint8_t rsa_exponent[] = { 0x01, 0x00, 0x01 };

static void
reply_fail(struct tok_admin_reply *ret, enum tok_err e, CK_RV rv, const char *detail)
{
	ret->err = e;
	ret->ck_rv = (uint32_t)rv;
	free(ret->detail);
	ret->detail = strdup(detail);
}

/* A conflict with what the token holds already: tok_err has no outcome of its own for it. */
static void
reply_exists(struct tok_admin_reply *ret, const char *detail)
{
	reply_fail(ret, TOK_ERR_DEVICE, 0, detail);
	ret->exists = 1;
}

static uint32_t
pin_len_value(CK_ULONG v)
{
	return v == CK_UNAVAILABLE_INFORMATION || v > UINT32_MAX ? 0 : (uint32_t)v;
}

static void
reply_pin_limits(struct tok_admin_reply *ret, const CK_TOKEN_INFO *ti)
{
	ret->min_pin = pin_len_value(ti->ulMinPinLen);
	ret->max_pin = pin_len_value(ti->ulMaxPinLen);
}

/* Refuses a PIN the token would refuse anyway, before it can cost a retry; says the limits. */
static int
pin_len_check(const CK_TOKEN_INFO *ti, const struct pf_secret *pin, const char *what,
	struct tok_admin_reply *ret)
{
	uint32_t lo = pin_len_value(ti->ulMinPinLen), hi = pin_len_value(ti->ulMaxPinLen);
	char msg[128];

	if (!pin || (lo == 0 && hi == 0) || (hi != 0 && hi < lo))
		return 0; /* the token does not say: let it decide */
	if (pin->len >= lo && (hi == 0 || pin->len <= hi))
		return 0;
	if (hi)
		snprintf(msg, sizeof(msg), "the %s must be %u to %u characters long", what, lo, hi);
	else
		snprintf(msg, sizeof(msg), "the %s must be at least %u characters long", what, lo);
	reply_fail(ret, TOK_ERR_PIN_INVALID, CKR_PIN_LEN_RANGE, msg);
	return -EINVAL;
}

static uint32_t
so_pin_flags(CK_FLAGS f)
{
	uint32_t r = 0;

	if (f & CKF_SO_PIN_COUNT_LOW)
		r |= TOK_PIN_COUNT_LOW;
	if (f & CKF_SO_PIN_FINAL_TRY)
		r |= TOK_PIN_FINAL_TRY;
	if (f & CKF_SO_PIN_LOCKED)
		r |= TOK_PIN_LOCKED;
	if (f & CKF_SO_PIN_TO_BE_CHANGED)
		r |= TOK_PIN_TO_BE_CHANGED;
	return r;
}

/* One token's session for one request. */
struct admin_session {
	CK_FUNCTION_LIST *f;
	CK_SLOT_ID slot;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s;
	int open;
	int logged_in;
};

static int
session_open(struct tok_ctx *c, const char *token_id, int rw, struct admin_session *as,
	struct tok_admin_reply *ret)
{
	CK_RV rv;

	memset(as, 0, sizeof(*as));
	if (tok_ctx_find_token(c, token_id, &as->f, &as->slot, &as->ti) < 0) {
		reply_fail(ret, TOK_ERR_TOKEN_NOT_PRESENT, 0, "no token with this id is present");
		return -ENOENT;
	}
	reply_pin_limits(ret, &as->ti);
	if (!(as->ti.flags & CKF_TOKEN_INITIALIZED)) {
		reply_fail(ret, TOK_ERR_TOKEN_NOT_PRESENT, 0, "the token is not initialised yet");
		return -ENOENT;
	}
	rv = as->f->C_OpenSession(as->slot, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0), NULL,
		NULL, &as->s);
	if (rv != CKR_OK) {
		reply_fail(ret, tok_err_from_rv(rv), rv, "cannot open a session on the token");
		return -EIO;
	}
	as->open = 1;
	return 0;
}

/* Logs in as who; on a refusal, pin_flags says what the token thinks of that PIN now. */
static int
session_login(struct admin_session *as, CK_USER_TYPE who, const struct pf_secret *pin,
	struct tok_admin_reply *ret)
{
	int protected_path = !pin && (as->ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH);
	CK_TOKEN_INFO after;
	enum tok_err e;
	CK_RV rv;

	if (!pin && !protected_path) {
		reply_fail(ret, TOK_ERR_PIN_REQUIRED, 0, "the token needs a PIN");
		return -EACCES;
	}
	e = tok_p11_login(as->f, as->s, who, pin, protected_path, &rv);
	if (e == TOK_OK) {
		as->logged_in = 1;
		return 0;
	}
	if (as->f->C_GetTokenInfo(as->slot, &after) == CKR_OK)
		ret->pin_flags = who == CKU_SO ? so_pin_flags(after.flags) :
						 tok_p11_pin_flags(after.flags);
	reply_fail(ret, e, rv, who == CKU_SO ? "the token refused the SO PIN" :
					       "the token refused the PIN");
	return -EACCES;
}

static void
session_close(struct admin_session *as)
{
	/* No login outlives the request it was made for (R1). */
	if (as->logged_in)
		as->f->C_Logout(as->s);
	if (as->open)
		as->f->C_CloseSession(as->s);
	as->logged_in = 0;
	as->open = 0;
}

/* Finds up to max objects matching tmpl; *ret_n says how many (capped at max). */
static CK_RV
find_objects(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n_tmpl,
	CK_OBJECT_HANDLE *objs, CK_ULONG max, CK_ULONG *ret_n)
{
	CK_RV rv = f->C_FindObjectsInit(s, tmpl, n_tmpl);

	*ret_n = 0;
	if (rv != CKR_OK)
		return rv;
	rv = f->C_FindObjects(s, objs, max, ret_n);
	f->C_FindObjectsFinal(s);
	return rv;
}

static CK_RV
find_by_id(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, const CK_OBJECT_CLASS *cls,
	const struct tok_blob *ck_id, CK_OBJECT_HANDLE *objs, CK_ULONG max, CK_ULONG *ret_n)
{
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_ID, ck_id->p, ck_id->n },
		{ CKA_CLASS, (void *)cls, sizeof(*cls) },
	};

	return find_objects(f, s, tmpl, cls ? 2 : 1, objs, max, ret_n);
}

/* A point as PKCS#11 2.40 gives it (DER OCTET STRING around it) or as some tokens do (raw),
 * told apart by the lengths a raw point on this curve can have. */
static int
point_is_raw(const uint8_t *p, size_t n, size_t fb)
{
	return (n == 1 + 2 * fb && p[0] == 0x04) || (n == 1 + fb && (p[0] == 0x02 || p[0] == 0x03));
}

static int
ec_point_unwrap(const struct tok_blob *pt, size_t fb, const uint8_t **ret_p, size_t *ret_n)
{
	const uint8_t *p = pt->p;
	size_t n = pt->n, hdr = 0;

	if (n > 0 && point_is_raw(p, n, fb)) {
		*ret_p = p;
		*ret_n = n;
		return 0;
	}
	if (n >= 2 && p[0] == 0x04 && p[1] < 0x80 && p[1] == n - 2)
		hdr = 2;
	else if (n >= 3 && p[0] == 0x04 && p[1] == 0x81 && p[2] >= 0x80 && p[2] == n - 3)
		hdr = 3;
	if (!hdr || !point_is_raw(p + hdr, n - hdr, fb))
		return -EBADMSG;
	*ret_p = p + hdr;
	*ret_n = n - hdr;
	return 0;
}

static EVP_PKEY *
pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pk = NULL;

	if (params && ctx && EVP_PKEY_fromdata_init(ctx) > 0)
		if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
			pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pk;
}

static EVP_PKEY *
pkey_rsa(const struct tok_blob *mod, const struct tok_blob *exp)
{
	BIGNUM *n = BN_bin2bn(mod->p, (int)mod->n, NULL);
	BIGNUM *e = BN_bin2bn(exp->p, (int)exp->n, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *pk = NULL;

	if (n && e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		pk = pkey_from_params("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return pk;
}

static EVP_PKEY *
pkey_ec(const struct tok_blob *params, const struct tok_blob *point, const char **ret_detail)
{
	const unsigned char *q = params->p;
	ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &q, (long)params->n);
	EC_GROUP *group = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	const uint8_t *pt;
	size_t pt_len, fb;
	EVP_PKEY *pk = NULL;
	int nid = oid && q == params->p + params->n ? OBJ_obj2nid(oid) : NID_undef;

	ASN1_OBJECT_free(oid);
	if (nid == NID_undef || !(group = EC_GROUP_new_by_curve_name(nid))) {
		*ret_detail = "the key's curve is not a named curve OpenSSL knows";
		return NULL;
	}
	fb = ((size_t)EC_GROUP_get_degree(group) + 7) / 8;
	EC_GROUP_free(group);
	if (fb == 0 || fb > ADMIN_EC_FIELD_MAX || ec_point_unwrap(point, fb, &pt, &pt_len) < 0) {
		*ret_detail = "the token's CKA_EC_POINT is not a point on the key's curve";
		return NULL;
	}
	bld = OSSL_PARAM_BLD_new();
	if (bld &&
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, OBJ_nid2sn(nid), 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, pt_len))
		pk = pkey_from_params("EC", bld);
	OSSL_PARAM_BLD_free(bld);
	if (!pk)
		*ret_detail = "the token's CKA_EC_POINT is not a point on the key's curve";
	return pk;
}

/* The public key of a key object (a public key, or an RSA private key, which carries its
 * modulus and exponent), built with OpenSSL from the token's attributes. */
static enum tok_err
pkey_from_object(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, EVP_PKEY **ret,
	CK_RV *ret_rv, const char **ret_detail)
{
	CK_KEY_TYPE kt = (CK_KEY_TYPE)-1;
	CK_ATTRIBUTE ka = { CKA_KEY_TYPE, &kt, sizeof(kt) };
	struct tok_blob a = {}, b = {};
	EVP_PKEY *pk = NULL;
	enum tok_err e = TOK_OK;
	CK_RV rv;

	*ret_rv = CKR_OK;
	rv = f->C_GetAttributeValue(s, o, &ka, 1);
	if (rv != CKR_OK) {
		*ret_rv = rv;
		*ret_detail = "cannot read the key type";
		return tok_err_from_rv(rv);
	}
	if (kt == CKK_RSA) {
		rv = tok_p11_get_attr(f, s, o, CKA_MODULUS, &a);
		if (rv == CKR_OK)
			rv = tok_p11_get_attr(f, s, o, CKA_PUBLIC_EXPONENT, &b);
		if (rv == CKR_OK && !(pk = pkey_rsa(&a, &b))) {
			*ret_detail = "the token's RSA modulus or exponent is not valid";
			e = TOK_ERR_DEVICE;
		}
	} else if (kt == CKK_EC) {
		rv = tok_p11_get_attr(f, s, o, CKA_EC_PARAMS, &a);
		if (rv == CKR_OK)
			rv = tok_p11_get_attr(f, s, o, CKA_EC_POINT, &b);
		if (rv == CKR_OK && !(pk = pkey_ec(&a, &b, ret_detail)))
			e = TOK_ERR_MECHANISM;
	} else {
		*ret_detail = "the key is neither RSA nor EC";
		e = TOK_ERR_MECHANISM;
	}
	if (rv != CKR_OK) {
		*ret_rv = rv;
		*ret_detail = "cannot read the public key's attributes";
		e = tok_err_from_rv(rv);
	}
	free(a.p);
	free(b.p);
	if (e == TOK_OK)
		*ret = pk;
	return e;
}

static int
spki_der(EVP_PKEY *pk, struct tok_blob *ret)
{
	int n = i2d_PUBKEY(pk, NULL);
	uint8_t *p, *q;

	if (n <= 0 || (size_t)n > TOK_SPKI_MAX)
		return -EINVAL;
	p = q = malloc((size_t)n);
	if (!p)
		return -ENOMEM;
	if (i2d_PUBKEY(pk, &q) != n) {
		free(p);
		return -EINVAL;
	}
	ret->p = p;
	ret->n = (size_t)n;
	return 0;
}

static void
admin_reply_spki(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
	struct tok_admin_reply *ret)
{
	EVP_PKEY *pk = NULL;
	const char *detail = NULL;
	CK_RV rv;
	enum tok_err e = pkey_from_object(f, s, o, &pk, &rv, &detail);

	if (e != TOK_OK) {
		reply_fail(ret, e, rv, detail);
		return;
	}
	if (spki_der(pk, &ret->spki) < 0)
		reply_fail(ret, TOK_ERR_INTERNAL, 0, "cannot encode the public key");
	else
		ret->err = TOK_OK;
	EVP_PKEY_free(pk);
}

static int
ids_contain(char *const *ids, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] && streq(ids[i], id))
			return 1;
	return 0;
}

/* After C_InitToken: the token again, by label and serial (SoftHSM moves an initialised token
 * to a new slot with a random id and gives it a serial only now), not one of those that were
 * initialised before. */
static int
find_initialised(CK_FUNCTION_LIST *f, const char *label, const char *serial, char *const *before,
	size_t n_before, CK_TOKEN_INFO *ret_ti)
{
	CK_SLOT_ID slots[TOK_SLOTS_MAX];
	CK_ULONG n = 0;

	if (tok_p11_slot_list(f, slots, &n) < 0)
		return -EIO;
	for (CK_ULONG i = 0; i < n; i++) {
		_cleanup_free_ char *l = NULL, *sn = NULL, *id = NULL;
		CK_TOKEN_INFO ti;

		if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
		    !(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		l = tok_p11_field_str(ti.label, sizeof(ti.label));
		sn = tok_p11_field_str(ti.serialNumber, sizeof(ti.serialNumber));
		id = tok_p11_token_id(&ti);
		if (!l || !sn || !id)
			return -ENOMEM;
		if (!streq(l, label) || (serial[0] && !streq(sn, serial)) ||
		    ids_contain(before, n_before, id))
			continue;
		*ret_ti = ti;
		return 0;
	}
	return -ENOENT;
}

static void
admin_init_token(struct tok_ctx *c, const struct tok_admin_req *req, struct tok_admin_reply *ret)
{
	CK_FUNCTION_LIST *f = NULL;
	CK_SLOT_ID slot = 0;
	CK_TOKEN_INFO ti, done;
	char *before[TOK_SLOTS_MAX] = {};
	_cleanup_free_ char *blank_serial = NULL, *used_id = NULL, *used_serial = NULL;
	CK_UTF8CHAR label[32];
	size_t n_before = 0, i, m;
	CK_RV rv;

	for (m = 0; !f && m < tok_ctx_n_modules(c); m++) {
		CK_FUNCTION_LIST *mf = tok_ctx_module(c, m);
		CK_SLOT_ID slots[TOK_SLOTS_MAX];
		CK_ULONG n = 0;

		if (tok_p11_slot_list(mf, slots, &n) < 0)
			continue;
		for (CK_ULONG k = 0; k < n; k++) {
			_cleanup_free_ char *sn = NULL;

			if (mf->C_GetTokenInfo(slots[k], &ti) != CKR_OK)
				continue;
			sn = tok_p11_field_str(ti.serialNumber, sizeof(ti.serialNumber));
			if (!sn) {
				reply_fail(ret, TOK_ERR_INTERNAL, CKR_HOST_MEMORY, "out of memory");
				return;
			}
			if (req->serial[0] && !streq(sn, req->serial))
				continue;
			if (ti.flags & CKF_TOKEN_INITIALIZED) {
				if (req->serial[0] && !used_id) {
					used_id = tok_p11_token_id(&ti);
					used_serial = TAKE_PTR(sn);
					reply_pin_limits(ret, &ti);
				}
				continue;
			}
			f = mf;
			slot = slots[k];
			blank_serial = TAKE_PTR(sn);
			break;
		}
	}
	if (!f) {
		if (used_id && used_serial) {
			/* Refused without touching it: its keys and certificates stay. */
			reply_fail(ret, TOK_ERR_TOKEN_NOT_PRESENT, 0, "the token is already "
				"initialised: re-initialising would destroy its keys");
			ret->exists = 1;
			ret->token_id = TAKE_PTR(used_id);
			ret->serial = TAKE_PTR(used_serial);
		} else {
			reply_fail(ret, TOK_ERR_TOKEN_NOT_PRESENT, 0,
				req->serial[0] ? "no token with this serial is present" :
						 "no blank token is present");
		}
		return;
	}
	reply_pin_limits(ret, &ti);
	if (pin_len_check(&ti, req->so_pin, "SO PIN", ret) < 0)
		return;

	/* The tokens of this module initialised already: the new one is none of them. */
	{
		CK_SLOT_ID slots[TOK_SLOTS_MAX];
		CK_ULONG n = 0;

		if (tok_p11_slot_list(f, slots, &n) == 0)
			for (CK_ULONG k = 0; k < n; k++) {
				CK_TOKEN_INFO t;

				if (f->C_GetTokenInfo(slots[k], &t) == CKR_OK &&
				    (t.flags & CKF_TOKEN_INITIALIZED) && n_before < TOK_SLOTS_MAX)
					before[n_before++] = tok_p11_token_id(&t);
			}
	}

	memset(label, ' ', sizeof(label));
	memcpy(label, req->label, strlen(req->label)); /* the decoder capped it at 32 */
	rv = f->C_InitToken(slot, (CK_UTF8CHAR_PTR)req->so_pin->data, req->so_pin->len, label);
	if (rv != CKR_OK) {
		CK_TOKEN_INFO after;

		if (f->C_GetTokenInfo(slot, &after) == CKR_OK)
			ret->pin_flags = so_pin_flags(after.flags);
		reply_fail(ret, tok_err_from_rv(rv), rv, "the token refused to initialise");
		goto out;
	}
	if (find_initialised(f, req->label, blank_serial, before, n_before, &done) < 0) {
		reply_fail(ret, TOK_ERR_DEVICE, 0,
			"the token was initialised but cannot be found again by its label");
		goto out;
	}
	ret->token_id = tok_p11_token_id(&done);
	ret->serial = tok_p11_field_str(done.serialNumber, sizeof(done.serialNumber));
	if (!ret->token_id || !ret->serial) {
		reply_fail(ret, TOK_ERR_INTERNAL, CKR_HOST_MEMORY, "out of memory");
		goto out;
	}
	reply_pin_limits(ret, &done);
	ret->err = TOK_OK;
out:
	for (i = 0; i < n_before; i++)
		free(before[i]);
}

static void
admin_init_pin(struct tok_ctx *c, const struct tok_admin_req *req, struct tok_admin_reply *ret)
{
	struct admin_session as;
	CK_RV rv;

	if (session_open(c, req->token_id, 1, &as, ret) < 0)
		return;
	if (as.ti.flags & CKF_USER_PIN_INITIALIZED) {
		/* Resetting it would hand the operator a working PIN for the owner's key. */
		reply_exists(ret, "the token's user PIN is set already: the operator may not reset "
				  "the owner's passphrase (R1, R4); a lost passphrase is an "
				  "incident (R9)");
		goto out;
	}
	if (pin_len_check(&as.ti, req->pin, "activation code", ret) < 0)
		goto out;
	if (session_login(&as, CKU_SO, req->so_pin, ret) < 0)
		goto out;
	rv = as.f->C_InitPIN(as.s, (CK_UTF8CHAR_PTR)req->pin->data, req->pin->len);
	if (rv != CKR_OK) {
		reply_fail(ret, tok_err_from_rv(rv), rv, "the token refused the activation code");
		goto out;
	}
	ret->err = TOK_OK;
out:
	session_close(&as);
}

static void
admin_set_pin(struct tok_ctx *c, const struct tok_admin_req *req, struct tok_admin_reply *ret)
{
	struct admin_session as;
	CK_RV rv;

	if (session_open(c, req->token_id, 1, &as, ret) < 0)
		return;
	if (pin_len_check(&as.ti, req->new_pin, "new PIN", ret) < 0)
		goto out;
	if (session_login(&as, CKU_USER, req->pin, ret) < 0)
		goto out;
	rv = as.f->C_SetPIN(as.s, (CK_UTF8CHAR_PTR)req->pin->data, req->pin->len,
		(CK_UTF8CHAR_PTR)req->new_pin->data, req->new_pin->len);
	if (rv != CKR_OK) {
		reply_fail(ret, tok_err_from_rv(rv), rv, "the token refused the new PIN");
		goto out;
	}
	ret->err = TOK_OK;
out:
	session_close(&as);
}

/* Logs the owner in for GENERATE and WRITE_CERT, as signing does: only when the token says a
 * login is needed. */
static int
session_user_login(struct admin_session *as, const struct pf_secret *pin,
	struct tok_admin_reply *ret)
{
	if (!(as->ti.flags & CKF_LOGIN_REQUIRED))
		return 0;
	return session_login(as, CKU_USER, pin, ret);
}

/* R3: what the token says of the new private key, a token that does not answer being taken
 * to answer the worst. */
static const char *
key_exposed(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	int k_ext, k_sens, k_asens, k_next;
	CK_BBOOL ext = tok_p11_bool_attr(f, s, key, CKA_EXTRACTABLE, &k_ext);
	CK_BBOOL sens = tok_p11_bool_attr(f, s, key, CKA_SENSITIVE, &k_sens);
	CK_BBOOL asens = tok_p11_bool_attr(f, s, key, CKA_ALWAYS_SENSITIVE, &k_asens);
	CK_BBOOL next = tok_p11_bool_attr(f, s, key, CKA_NEVER_EXTRACTABLE, &k_next);

	if (!k_ext || ext)
		return "the token made the key extractable (CKA_EXTRACTABLE): it has been "
		       "destroyed";
	if (!k_sens || !sens)
		return "the token did not make the key sensitive (CKA_SENSITIVE): it has been "
		       "destroyed";
	if (!k_asens || !asens)
		return "the token does not say the key was always sensitive "
		       "(CKA_ALWAYS_SENSITIVE): it has been destroyed";
	if (!k_next || !next)
		return "the token does not say the key was never extractable "
		       "(CKA_NEVER_EXTRACTABLE): it has been destroyed";
	return NULL;
}

static void
admin_generate(struct tok_ctx *c, const struct tok_admin_req *req, struct tok_admin_reply *ret)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE, dec = req->decrypt ? CK_TRUE : CK_FALSE;
	CK_ULONG bits = ADMIN_RSA_BITS, label_len = strlen(req->label);
	int rsa = req->key_kind == TOK_KEY_RSA_3072;
	CK_MECHANISM mech = { rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pub[] = {
		{ CKA_TOKEN, &yes, sizeof(yes) },
		/* A public key is public: readable without a login (PUBKEY, LIST). */
		{ CKA_PRIVATE, &no, sizeof(no) },
		{ CKA_VERIFY, &yes, sizeof(yes) },
		{ CKA_ENCRYPT, &dec, sizeof(dec) },
		{ CKA_ID, req->ck_id.p, req->ck_id.n },
		{ CKA_MODULUS_BITS, &bits, sizeof(bits) },
		{ CKA_PUBLIC_EXPONENT, (void *)rsa_exponent, sizeof(rsa_exponent) },
		{ CKA_LABEL, req->label, label_len },
	};
	CK_ATTRIBUTE priv[] = {
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_SIGN, &yes, sizeof(yes) },
		{ CKA_DECRYPT, &dec, sizeof(dec) },
		{ CKA_UNWRAP, &dec, sizeof(dec) },
		{ CKA_DERIVE, &no, sizeof(no) },
		{ CKA_ID, req->ck_id.p, req->ck_id.n },
		{ CKA_LABEL, req->label, label_len },
	};
	CK_ULONG n_pub = ARRAY_SIZE(pub), n_priv = ARRAY_SIZE(priv);
	CK_OBJECT_HANDLE pubk = CK_INVALID_HANDLE, privk = CK_INVALID_HANDLE, objs[1];
	struct admin_session as;
	const char *exposed;
	CK_ULONG n = 0;
	CK_RV rv;

	if (!rsa && req->decrypt) {
		reply_fail(ret, TOK_ERR_MECHANISM, 0, "an EC key cannot decrypt: use RSA for a "
						      "certificate type that needs decryption");
		return;
	}
	if (!rsa) {
		/* CKA_EC_PARAMS in place of CKA_MODULUS_BITS; no CKA_PUBLIC_EXPONENT */
		pub[5] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)ec_params_p256,
			sizeof(ec_params_p256) };
		pub[6] = pub[7];
		n_pub--;
	}
	if (label_len == 0) { /* CKA_LABEL is last in both */
		n_pub--;
		n_priv--;
	}
	if (session_open(c, req->token_id, 1, &as, ret) < 0)
		return;
	if (session_user_login(&as, req->pin, ret) < 0)
		goto out;
	rv = find_by_id(as.f, as.s, NULL, &req->ck_id, objs, ARRAY_SIZE(objs), &n);
	if (rv != CKR_OK) {
		reply_fail(ret, tok_err_from_rv(rv), rv, "cannot search the token");
		goto out;
	}
	if (n > 0) {
		reply_exists(ret, "an object with this CKA_ID exists on the token already");
		goto out;
	}
	rv = as.f->C_GenerateKeyPair(as.s, &mech, pub, n_pub, priv, n_priv, &pubk, &privk);
	if (rv != CKR_OK) {
		reply_fail(ret, tok_err_from_rv(rv), rv,
			"the token could not generate the key pair");
		goto out;
	}
	exposed = key_exposed(as.f, as.s, privk);
	if (exposed) {
		reply_fail(ret, TOK_ERR_KEY_EXTRACTABLE, 0, exposed);
		goto out;
	}
	admin_reply_spki(as.f, as.s, pubk, ret);
out:
	/* A key whose public half cannot be read, or that could leave the token, is no use to
	 * anyone: nothing half-made stays behind, and the CKA_ID stays free for a retry. */
	if (ret->err != TOK_OK && privk != CK_INVALID_HANDLE) {
		as.f->C_DestroyObject(as.s, privk);
		if (pubk != CK_INVALID_HANDLE)
			as.f->C_DestroyObject(as.s, pubk);
	}
	session_close(&as);
}

static void
admin_pubkey(struct tok_ctx *c, const struct tok_admin_req *req, struct tok_admin_reply *ret)
{
	static const CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
	CK_OBJECT_HANDLE objs[2];
	struct admin_session as;
	CK_ULONG n = 0;
	CK_RV rv;

	if (session_open(c, req->token_id, 0, &as, ret) < 0)
		return;
	rv = find_by_id(as.f, as.s, &cls, &req->ck_id, objs, ARRAY_SIZE(objs), &n);
	if (rv != CKR_OK)
		reply_fail(ret, tok_err_from_rv(rv), rv, "cannot search the token");
	else if (n == 0)
		reply_fail(ret, TOK_ERR_KEY_NOT_FOUND, 0,
			"no public key with this CKA_ID is visible without a login (there is none, "
			"or the token keeps public keys private)");
	else if (n > 1)
		reply_fail(ret, TOK_ERR_KEY_NOT_FOUND, 0, "several public keys share this CKA_ID");
	else
		admin_reply_spki(as.f, as.s, objs[0], ret);
	session_close(&as);
}

/* Takes over the DER an i2d_*() call made (p, n) as newly allocated memory of our own. */
static int
der_take(unsigned char **p, int n, struct tok_blob *ret)
{
	int r = 0;

	if (n <= 0 || !*p)
		r = -EINVAL;
	else if (!(ret->p = malloc((size_t)n)))
		r = -ENOMEM;
	if (r == 0) {
		memcpy(ret->p, *p, (size_t)n);
		ret->n = (size_t)n;
	}
	OPENSSL_free(*p);
	*p = NULL;
	return r;
}

/* The certificate must go beside the key it certifies: the private key with its CKA_ID, and
 * the same public key where the token lets us read it. */
static int
cert_fits_key(struct admin_session *as, const struct tok_admin_req *req, X509 *x,
	struct tok_admin_reply *ret)
{
	static const CK_OBJECT_CLASS cpriv = CKO_PRIVATE_KEY, cpub = CKO_PUBLIC_KEY;
	CK_OBJECT_HANDLE objs[2], key = CK_INVALID_HANDLE;
	EVP_PKEY *tk = NULL;
	const char *detail = NULL;
	CK_ULONG n = 0;
	CK_RV rv;
	int r = 0;

	rv = find_by_id(as->f, as->s, &cpriv, &req->ck_id, objs, ARRAY_SIZE(objs), &n);
	if (rv != CKR_OK) {
		reply_fail(ret, tok_err_from_rv(rv), rv, "cannot search the token");
		return -EIO;
	}
	if (n != 1) {
		reply_fail(ret, TOK_ERR_KEY_NOT_FOUND, 0, n == 0 ?
			"no private key with this CKA_ID: a certificate goes beside its key" :
			"several private keys share this CKA_ID");
		return -ENOENT;
	}
	key = objs[0];
	rv = find_by_id(as->f, as->s, &cpub, &req->ck_id, objs, ARRAY_SIZE(objs), &n);
	if (rv == CKR_OK && n == 1)
		key = objs[0];
	/* A token that gives no public key (an EC private key alone) cannot be compared. */
	if (pkey_from_object(as->f, as->s, key, &tk, &rv, &detail) != TOK_OK)
		return 0;
	if (EVP_PKEY_eq(X509_get0_pubkey(x), tk) != 1) {
		reply_fail(ret, TOK_ERR_KEY_NOT_FOUND, 0,
			"the certificate's public key is not the key with this CKA_ID");
		r = -EINVAL;
	}
	EVP_PKEY_free(tk);
	return r;
}

static void
admin_write_cert(struct tok_ctx *c, const struct tok_admin_req *req, struct tok_admin_reply *ret)
{
	static const CK_OBJECT_CLASS ccert = CKO_CERTIFICATE;
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	struct tok_blob subject = {}, issuer = {}, serial = {};
	const unsigned char *q = req->der.p;
	X509 *x = d2i_X509(NULL, &q, (long)req->der.n);
	unsigned char *der = NULL;
	CK_OBJECT_HANDLE objs[1], obj;
	struct admin_session as = {};
	CK_ULONG n = 0;
	CK_RV rv;

	if (!x || q != req->der.p + req->der.n || !X509_get0_pubkey(x)) {
		reply_fail(ret, TOK_ERR_INTERNAL, 0,
			"the certificate is not one X.509 DER certificate");
		goto done;
	}
	if (der_take(&der, i2d_X509_NAME(X509_get_subject_name(x), &der), &subject) < 0 ||
	    der_take(&der, i2d_X509_NAME(X509_get_issuer_name(x), &der), &issuer) < 0 ||
	    der_take(&der, i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &der), &serial) < 0) {
		reply_fail(ret, TOK_ERR_INTERNAL, 0, "cannot encode the certificate's names");
		goto done;
	}
	if (session_open(c, req->token_id, 1, &as, ret) < 0)
		goto done;
	if (session_user_login(&as, req->pin, ret) < 0)
		goto out;
	rv = find_by_id(as.f, as.s, &ccert, &req->ck_id, objs, ARRAY_SIZE(objs), &n);
	if (rv != CKR_OK) {
		reply_fail(ret, tok_err_from_rv(rv), rv, "cannot search the token");
		goto out;
	}
	if (n > 0) {
		reply_exists(ret, "a certificate with this CKA_ID exists on the token already");
		goto out;
	}
	if (cert_fits_key(&as, req, x, ret) < 0)
		goto out;
	{
		CK_ATTRIBUTE tmpl[] = {
			{ CKA_CLASS, &cls, sizeof(cls) },
			{ CKA_CERTIFICATE_TYPE, &ct, sizeof(ct) },
			{ CKA_TOKEN, &yes, sizeof(yes) },
			{ CKA_PRIVATE, &no, sizeof(no) },
			{ CKA_ID, req->ck_id.p, req->ck_id.n },
			{ CKA_SUBJECT, subject.p, subject.n },
			{ CKA_ISSUER, issuer.p, issuer.n },
			{ CKA_SERIAL_NUMBER, serial.p, serial.n },
			{ CKA_VALUE, req->der.p, req->der.n },
			/* last: left out when empty */
			{ CKA_LABEL, req->label, strlen(req->label) },
		};

		rv = as.f->C_CreateObject(as.s, tmpl, ARRAY_SIZE(tmpl) - (req->label[0] ? 0 : 1),
			&obj);
	}
	if (rv != CKR_OK) {
		reply_fail(ret, tok_err_from_rv(rv), rv,
			"the token refused to store the certificate");
		goto out;
	}
	ret->err = TOK_OK;
out:
	session_close(&as);
done:
	X509_free(x);
	free(subject.p);
	free(issuer.p);
	free(serial.p);
}

void
tok_ctx_admin(struct tok_ctx *c, const struct tok_admin_req *req, struct tok_admin_reply *ret)
{
	memset(ret, 0, sizeof(*ret));
	/* Every path below sets err; this stands only if one forgets to. */
	ret->err = TOK_ERR_INTERNAL;
	switch (req->type) {
	case TOK_MSG_INIT_TOKEN:
		admin_init_token(c, req, ret);
		break;
	case TOK_MSG_INIT_PIN:
		admin_init_pin(c, req, ret);
		break;
	case TOK_MSG_SET_PIN:
		admin_set_pin(c, req, ret);
		break;
	case TOK_MSG_GENERATE:
		admin_generate(c, req, ret);
		break;
	case TOK_MSG_PUBKEY:
		admin_pubkey(c, req, ret);
		break;
	case TOK_MSG_WRITE_CERT:
		admin_write_cert(c, req, ret);
		break;
	default:
		reply_fail(ret, TOK_ERR_INTERNAL, 0, "not a provisioning request");
		break;
	}
	if (ret->err != TOK_OK && !ret->detail)
		reply_fail(ret, ret->err, ret->ck_rv, tok_err_to_string(ret->err));
}
