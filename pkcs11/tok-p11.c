/*
 * PKCS#11 proper: loads modules, enumerates tokens and certificates, and signs digests with a
 * key on a token. Runs only inside paraf-token-helper.
 *
 * Why not libp11: 0.4.12 sends RSA-PSS to the token as raw RSA (CKM_RSA_X_509), which real
 * cards refuse and which would let the host choose the padding; it crashes enumerating two or
 * more slots (PKCS11_update_slots) and cannot recover after a token is re-inserted. The few
 * calls needed here are plain PKCS#11 through p11-kit's module loader, which also gives the
 * system module registry (OpenSC and vendor modules) for free.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#include "pf-codec.h"
#include "pf-util.h"
#include "tok-p11.h"

#define TOK_OBJECTS_MAX 256     /* certificates per token */
#define TOK_SIG_MAX 1024        /* RSA 8192, EC P-521 */
#define TOK_SLOTLIST_TRIES 3    /* p11-kit-proxy's C_GetSlotList fails while readers change */

struct tok_module {
	CK_FUNCTION_LIST *f;
	char *name;
	bool initialized; /* our C_Initialize succeeded: C_Finalize at the end */
};

struct tok_ctx {
	struct tok_module *mods;
	size_t n_mods;
	CK_FUNCTION_LIST **registry; /* set when the p11-kit registry was loaded */
	bool watched; /* a TOK_MSG_WATCH enumerated once: slot events count from there */
};

#define TOK_EVENTS_DRAIN 64 /* slot events read in one watch, at most */

/* The token left (or is leaving) while we were talking to it. */
static bool
rv_is_removal(CK_RV rv)
{
	return rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT ||
	       rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED;
}

struct tok_ctx *
tok_ctx_free(struct tok_ctx *c)
{
	size_t i;

	if (!c)
		return NULL;
	for (i = 0; i < c->n_mods; i++) {
		if (c->mods[i].initialized)
			(void)c->mods[i].f->C_Finalize(NULL);
		if (!c->registry)
			p11_kit_module_release(c->mods[i].f);
		free(c->mods[i].name);
	}
	if (c->registry)
		p11_kit_modules_release(c->registry);
	free(c->mods);
	free(c);
	return NULL;
}

static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static int
ctx_add(struct tok_ctx *c, CK_FUNCTION_LIST *f, const char *path, bool initialized)
{
	struct tok_module *m = realloc(c->mods, (c->n_mods + 1) * sizeof(*m));

	if (!m)
		return -ENOMEM;
	c->mods = m;
	m[c->n_mods].f = f;
	m[c->n_mods].initialized = initialized;
	m[c->n_mods].name = strdup(path ? base_name(path) : "unknown");
	if (!m[c->n_mods].name)
		return -ENOMEM;
	c->n_mods++;
	return 0;
}

static int
is_trust_module(CK_FUNCTION_LIST *f)
{
	_cleanup_free_ char *v = p11_kit_config_option(f, "trust-policy");

	return v && (streq(v, "yes") || streq(v, "true"));
}

/* The helper is single-threaded: modules are loaded unmanaged and initialised with NULL
 * arguments, i.e. without locking. p11-kit's managed initialisation asks for OS locking, and
 * OpenSC 0.23 then deadlocks on its own card mutex in C_GetTokenInfo after a card it was logged
 * in to is removed or swapped (reproduced without paraf; test/test_opensc.py). */
static int
ctx_init(CK_FUNCTION_LIST *f)
{
	CK_RV rv = f->C_Initialize(NULL);

	return rv == CKR_OK ? 1 : rv == CKR_CRYPTOKI_ALREADY_INITIALIZED ? 0 : -EIO;
}

int
tok_ctx_new(char *const *modules, size_t n_modules, struct tok_ctx **ret)
{
	struct tok_ctx *c = calloc(1, sizeof(*c));
	size_t i;
	int r, init;

	if (!c)
		return -ENOMEM;
	if (n_modules) {
		for (i = 0; i < n_modules; i++) {
			CK_FUNCTION_LIST *f = p11_kit_module_load(modules[i],
				P11_KIT_MODULE_UNMANAGED);
			if (!f)
				continue;
			init = ctx_init(f);
			if (init < 0) {
				p11_kit_module_release(f);
				continue;
			}
			r = ctx_add(c, f, modules[i], init);
			if (r < 0) {
				if (init)
					(void)f->C_Finalize(NULL);
				p11_kit_module_release(f);
				tok_ctx_free(c);
				return r;
			}
		}
	} else {
		c->registry = p11_kit_modules_load(NULL, P11_KIT_MODULE_UNMANAGED);
		for (i = 0; c->registry && c->registry[i]; i++) {
			_cleanup_free_ char *path = NULL;

			/* The trust store module holds CA anchors, not anyone's keys. */
			if (is_trust_module(c->registry[i]))
				continue;
			init = ctx_init(c->registry[i]);
			if (init < 0)
				continue;
			path = p11_kit_module_get_filename(c->registry[i]);
			r = ctx_add(c, c->registry[i], path, init);
			if (r < 0) {
				if (init)
					(void)c->registry[i]->C_Finalize(NULL);
				tok_ctx_free(c);
				return r;
			}
		}
	}
	if (c->n_mods == 0) {
		tok_ctx_free(c);
		return -ENOENT;
	}
	*ret = c;
	return 0;
}

size_t
tok_ctx_n_modules(const struct tok_ctx *c)
{
	return c->n_mods;
}

CK_FUNCTION_LIST *
tok_ctx_module(const struct tok_ctx *c, size_t i)
{
	return i < c->n_mods ? c->mods[i].f : NULL;
}

/* PKCS#11 pads its fixed-size text fields with blanks. */
char *
tok_p11_field_str(const CK_UTF8CHAR *p, size_t n)
{
	char *s;

	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == 0))
		n--;
	s = malloc(n + 1);
	if (!s)
		return NULL;
	memcpy(s, p, n);
	s[n] = 0;
	/* The values reach JSON and the PIN dialog: no control bytes. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
	return s;
}

uint32_t
tok_p11_pin_flags(CK_FLAGS f)
{
	uint32_t r = 0;

	if (f & CKF_USER_PIN_INITIALIZED)
		r |= TOK_PIN_INITIALIZED;
	if (f & CKF_USER_PIN_COUNT_LOW)
		r |= TOK_PIN_COUNT_LOW;
	if (f & CKF_USER_PIN_FINAL_TRY)
		r |= TOK_PIN_FINAL_TRY;
	if (f & CKF_USER_PIN_LOCKED)
		r |= TOK_PIN_LOCKED;
	if (f & CKF_USER_PIN_TO_BE_CHANGED)
		r |= TOK_PIN_TO_BE_CHANGED;
	if (f & CKF_LOGIN_REQUIRED)
		r |= TOK_LOGIN_REQUIRED;
	if (f & CKF_PROTECTED_AUTHENTICATION_PATH)
		r |= TOK_PROTECTED_AUTH_PATH;
	return r;
}

/* The token id: stable across replugging and across slots, and not the bare serial, which
 * two manufacturers may share. */
char *
tok_p11_token_id(const CK_TOKEN_INFO *ti)
{
	unsigned char md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (!ctx)
		return NULL;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(ctx, ti->manufacturerID, sizeof(ti->manufacturerID)) &&
	     EVP_DigestUpdate(ctx, ti->model, sizeof(ti->model)) &&
	     EVP_DigestUpdate(ctx, ti->serialNumber, sizeof(ti->serialNumber)) &&
	     EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	return ok ? pf_hex_encode(md, TOK_ID_LEN / 2) : NULL;
}

int
tok_p11_slot_list(CK_FUNCTION_LIST *f, CK_SLOT_ID *slots, CK_ULONG *n)
{
	CK_RV rv = CKR_OK;
	int t;

	for (t = 0; t < TOK_SLOTLIST_TRIES; t++) {
		CK_ULONG k = TOK_SLOTS_MAX;
		rv = f->C_GetSlotList(CK_TRUE, slots, &k);
		if (rv == CKR_OK) {
			*n = k;
			return 0;
		}
		if (rv == CKR_BUFFER_TOO_SMALL) {
			/* More slots than we look at: take the first TOK_SLOTS_MAX. */
			*n = TOK_SLOTS_MAX;
			return 0;
		}
	}
	return -EIO;
}

/* Reads one variable-length attribute into newly allocated memory. */
CK_RV
tok_p11_get_attr(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
	CK_ATTRIBUTE_TYPE type, struct tok_blob *ret)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	CK_RV rv;

	rv = f->C_GetAttributeValue(s, o, &a, 1);
	if (rv != CKR_OK)
		return rv;
	if (a.ulValueLen == (CK_ULONG)-1 || a.ulValueLen > TOK_ATTR_MAX)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	a.pValue = malloc(a.ulValueLen + 1);
	if (!a.pValue)
		return CKR_HOST_MEMORY;
	rv = f->C_GetAttributeValue(s, o, &a, 1);
	if (rv != CKR_OK) {
		free(a.pValue);
		return rv;
	}
	((uint8_t *)a.pValue)[a.ulValueLen] = 0;
	ret->p = a.pValue;
	ret->n = a.ulValueLen;
	return CKR_OK;
}

static int
list_certs(CK_FUNCTION_LIST *f, CK_SLOT_ID slot, const char *tid, struct tok_list *l)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_CERTIFICATE_TYPE, &ct, sizeof(ct) },
	};
	CK_OBJECT_HANDLE objs[TOK_OBJECTS_MAX];
	CK_SESSION_HANDLE s;
	CK_ULONG n = 0, i;
	CK_RV rv;

	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK)
		return rv_is_removal(rv) ? -ENODEV : -EIO;
	rv = f->C_FindObjectsInit(s, tmpl, ARRAY_SIZE(tmpl));
	if (rv == CKR_OK) {
		rv = f->C_FindObjects(s, objs, TOK_OBJECTS_MAX, &n);
		f->C_FindObjectsFinal(s);
	}
	if (rv_is_removal(rv)) {
		f->C_CloseSession(s);
		return -ENODEV;
	}
	for (i = 0; rv == CKR_OK && i < n; i++) {
		struct tok_cert c = {};
		struct tok_blob label = {};
		struct tok_cert *nc;
		CK_RV arv;

		arv = tok_p11_get_attr(f, s, objs[i], CKA_VALUE, &c.der);
		if (arv == CKR_OK) {
			arv = tok_p11_get_attr(f, s, objs[i], CKA_ID, &c.ck_id);
			if (arv != CKR_OK)
				free(c.der.p);
		}
		if (arv == CKR_OK) {
			arv = tok_p11_get_attr(f, s, objs[i], CKA_LABEL, &label);
			if (arv == CKR_OK)
				c.label = tok_p11_field_str(label.p, label.n);
			free(label.p);
			if (rv_is_removal(arv)) {
				free(c.der.p);
				free(c.ck_id.p);
				free(c.label);
			}
		}
		if (rv_is_removal(arv)) {
			f->C_CloseSession(s);
			return -ENODEV;
		}
		if (!c.der.p)
			continue;
		c.token_id = strdup(tid);
		nc = realloc(l->certs, (l->n_certs + 1) * sizeof(*nc));
		if (!nc || !c.token_id) {
			free(c.der.p);
			free(c.ck_id.p);
			free(c.label);
			free(c.token_id);
			if (nc)
				l->certs = nc;
			f->C_CloseSession(s);
			return -ENOMEM;
		}
		l->certs = nc;
		l->certs[l->n_certs++] = c;
	}
	f->C_CloseSession(s);
	return 0;
}

static int
list_has_token(const struct tok_list *l, const char *id)
{
	for (size_t i = 0; i < l->n_tokens; i++)
		if (streq(l->tokens[i].id, id))
			return 1;
	return 0;
}

static void
list_drop_certs_from(struct tok_list *l, size_t from)
{
	for (size_t i = from; i < l->n_certs; i++)
		tok_cert_release(&l->certs[i]);
	l->n_certs = from;
}

/* The tokens present (with their certificates when with_certs). */
static int
ctx_enumerate(struct tok_ctx *c, bool with_certs, struct tok_list *ret)
{
	struct tok_list l = {};
	size_t m;
	int r;

	for (m = 0; m < c->n_mods; m++) {
		CK_FUNCTION_LIST *f = c->mods[m].f;
		CK_SLOT_ID slots[TOK_SLOTS_MAX];
		CK_ULONG n = 0, i;

		if (tok_p11_slot_list(f, slots, &n) < 0)
			continue;
		for (i = 0; i < n; i++) {
			CK_TOKEN_INFO ti;
			CK_SLOT_INFO si;
			struct tok_token t = {};
			struct tok_token *nt;

			/* A slot that fails (unrecognised card, reader going away) is skipped. */
			if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
				continue;
			/* A blank token (SoftHSM's free slot, a card before provisioning) holds no
			 * keys or certificates yet. */
			if (!(ti.flags & CKF_TOKEN_INITIALIZED))
				continue;
			t.id = tok_p11_token_id(&ti);
			if (t.id && list_has_token(&l, t.id)) {
				free(t.id); /* the same token seen through a second module */
				continue;
			}
			t.label = tok_p11_field_str(ti.label, sizeof(ti.label));
			t.serial = tok_p11_field_str(ti.serialNumber, sizeof(ti.serialNumber));
			t.manufacturer = tok_p11_field_str(ti.manufacturerID,
				sizeof(ti.manufacturerID));
			t.model = tok_p11_field_str(ti.model, sizeof(ti.model));
			t.module = strdup(c->mods[m].name);
			if (f->C_GetSlotInfo(slots[i], &si) == CKR_OK)
				t.slot = tok_p11_field_str(si.slotDescription,
					sizeof(si.slotDescription));
			else
				t.slot = strdup("");
			t.flags = tok_p11_pin_flags(ti.flags);
			nt = realloc(l.tokens, (l.n_tokens + 1) * sizeof(*nt));
			if (nt)
				l.tokens = nt;
			if (!nt || !t.id || !t.label || !t.serial || !t.manufacturer || !t.model ||
			    !t.module || !t.slot) {
				tok_token_release(&t);
				tok_list_release(&l);
				return -ENOMEM;
			}
			l.tokens[l.n_tokens++] = t;
			if (!with_certs)
				continue;
			size_t first_cert = l.n_certs;
			r = list_certs(f, slots[i], t.id, &l);
			if (r == -ENOMEM) {
				tok_list_release(&l);
				return r;
			}
			if (r == -ENODEV) {
				/* Removed while we read it: not there, nor its certificates. */
				list_drop_certs_from(&l, first_cert);
				tok_token_release(&l.tokens[--l.n_tokens]);
			}
		}
	}
	*ret = l;
	return 0;
}

int
tok_ctx_list(struct tok_ctx *c, struct tok_list *ret)
{
	return ctx_enumerate(c, true, ret);
}

int
tok_ctx_watch(struct tok_ctx *c, int force, int *ret_changed, struct tok_list *ret)
{
	bool look = force || !c->watched;
	int r;

	for (size_t m = 0; m < c->n_mods; m++) {
		CK_FUNCTION_LIST *f = c->mods[m].f;

		/* Drain what the module has queued: one look covers every event. */
		for (int k = 0; k < TOK_EVENTS_DRAIN; k++) {
			CK_SLOT_ID slot;
			CK_RV rv = f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL);

			if (rv == CKR_NO_EVENT)
				break;
			/* An event, or no slot events at all (SoftHSM, p11-kit's proxy): look. */
			look = true;
			if (rv != CKR_OK)
				break;
		}
	}
	if (!look) {
		*ret_changed = 0;
		return 0;
	}
	r = ctx_enumerate(c, false, ret);
	if (r < 0)
		return r;
	c->watched = true;
	*ret_changed = 1;
	return 0;
}

int
tok_ctx_find_token(struct tok_ctx *c, const char *id, CK_FUNCTION_LIST **ret_f,
	CK_SLOT_ID *ret_slot, CK_TOKEN_INFO *ret_ti)
{
	for (size_t m = 0; m < c->n_mods; m++) {
		CK_FUNCTION_LIST *f = c->mods[m].f;
		CK_SLOT_ID slots[TOK_SLOTS_MAX];
		CK_ULONG n = 0;

		if (tok_p11_slot_list(f, slots, &n) < 0)
			continue;
		for (CK_ULONG i = 0; i < n; i++) {
			CK_TOKEN_INFO ti;
			_cleanup_free_ char *tid = NULL;

			if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
				continue;
			tid = tok_p11_token_id(&ti);
			if (tid && streq(tid, id)) {
				*ret_f = f;
				*ret_slot = slots[i];
				*ret_ti = ti;
				return 0;
			}
		}
	}
	return -ENOENT;
}

static const uint8_t digestinfo_sha256[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
	0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
static const uint8_t digestinfo_sha384[] = { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
	0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 };
static const uint8_t digestinfo_sha512[] = { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
	0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 };

struct hash_info {
	const uint8_t *digestinfo;
	size_t digestinfo_len;
	CK_MECHANISM_TYPE ck_hash;
	CK_RSA_PKCS_MGF_TYPE mgf;
};

static const struct hash_info *
hash_info(uint32_t hash)
{
	static const struct hash_info h256 = { digestinfo_sha256, sizeof(digestinfo_sha256),
		CKM_SHA256, CKG_MGF1_SHA256 };
	static const struct hash_info h384 = { digestinfo_sha384, sizeof(digestinfo_sha384),
		CKM_SHA384, CKG_MGF1_SHA384 };
	static const struct hash_info h512 = { digestinfo_sha512, sizeof(digestinfo_sha512),
		CKM_SHA512, CKG_MGF1_SHA512 };

	switch (hash) {
	case TOK_HASH_SHA256:
		return &h256;
	case TOK_HASH_SHA384:
		return &h384;
	case TOK_HASH_SHA512:
		return &h512;
	default:
		return NULL;
	}
}

static void
reply_fail(struct tok_sign_reply *ret, enum tok_err e, CK_RV rv, const char *detail)
{
	ret->err = e;
	ret->ck_rv = (uint32_t)rv;
	free(ret->detail);
	ret->detail = strdup(detail);
}

CK_BBOOL
tok_p11_bool_attr(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t,
	int *ret_known)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = { t, &v, sizeof(v) };

	*ret_known = f->C_GetAttributeValue(s, o, &a, 1) == CKR_OK && a.ulValueLen == sizeof(v);
	return v;
}

/* Finds the private key with this CKA_ID and checks it may be used at all (R3). */
static enum tok_err
find_key(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, const struct tok_blob *ck_id,
	CK_OBJECT_HANDLE *ret_key, CK_KEY_TYPE *ret_type, CK_BBOOL *ret_always_auth, CK_RV *ret_rv,
	const char **ret_detail)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_ID, ck_id->p, ck_id->n },
	};
	CK_OBJECT_HANDLE objs[2];
	CK_ULONG n = 0;
	CK_KEY_TYPE kt = (CK_KEY_TYPE)-1;
	CK_ATTRIBUTE ka = { CKA_KEY_TYPE, &kt, sizeof(kt) };
	int k_extractable, k_always_sensitive, k_sensitive, k_always_auth, k_sign;
	CK_BBOOL extractable, always_sensitive, sensitive, always_auth, sign;
	CK_RV rv;

	rv = f->C_FindObjectsInit(s, tmpl, ARRAY_SIZE(tmpl));
	if (rv == CKR_OK) {
		rv = f->C_FindObjects(s, objs, ARRAY_SIZE(objs), &n);
		f->C_FindObjectsFinal(s);
	}
	*ret_rv = rv;
	if (rv != CKR_OK) {
		*ret_detail = "cannot search the token for the private key";
		return tok_err_from_rv(rv);
	}
	if (n == 0) {
		*ret_detail = "no private key with the certificate's CKA_ID";
		return TOK_ERR_KEY_NOT_FOUND;
	}
	if (n > 1) {
		*ret_detail = "several private keys share the certificate's CKA_ID";
		return TOK_ERR_KEY_NOT_FOUND;
	}
	rv = f->C_GetAttributeValue(s, objs[0], &ka, 1);
	if (rv != CKR_OK) {
		*ret_rv = rv;
		*ret_detail = "cannot read the key type";
		return tok_err_from_rv(rv);
	}
	extractable = tok_p11_bool_attr(f, s, objs[0], CKA_EXTRACTABLE, &k_extractable);
	always_sensitive = tok_p11_bool_attr(f, s, objs[0], CKA_ALWAYS_SENSITIVE,
		&k_always_sensitive);
	sensitive = tok_p11_bool_attr(f, s, objs[0], CKA_SENSITIVE, &k_sensitive);
	always_auth = tok_p11_bool_attr(f, s, objs[0], CKA_ALWAYS_AUTHENTICATE, &k_always_auth);
	sign = tok_p11_bool_attr(f, s, objs[0], CKA_SIGN, &k_sign);

	/* R3: a key that could ever have left the token is never used. A token that does not
	 * say is treated as saying the worst. */
	if (!k_extractable || extractable) {
		*ret_detail = "the private key is extractable (CKA_EXTRACTABLE)";
		return TOK_ERR_KEY_EXTRACTABLE;
	}
	if (!k_always_sensitive || !always_sensitive || !k_sensitive || !sensitive) {
		*ret_detail = "the private key is not always sensitive (CKA_ALWAYS_SENSITIVE)";
		return TOK_ERR_KEY_EXTRACTABLE;
	}
	if (k_sign && !sign) {
		*ret_detail = "the private key may not sign (CKA_SIGN is false)";
		return TOK_ERR_MECHANISM;
	}
	*ret_key = objs[0];
	*ret_type = kt;
	*ret_always_auth = k_always_auth && always_auth;
	return TOK_OK;
}

static CK_RV
login_once(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_USER_TYPE who, const struct pf_secret *pin,
	int protected_path)
{
	if (protected_path)
		return f->C_Login(s, who, NULL, 0); /* the reader's own PIN pad */
	return f->C_Login(s, who, (CK_UTF8CHAR_PTR)pin->data, pin->len);
}

enum tok_err
tok_p11_login(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_USER_TYPE who,
	const struct pf_secret *pin, int protected_path, CK_RV *ret_rv)
{
	CK_RV rv = login_once(f, s, who, pin, protected_path);

	if (rv == CKR_USER_ALREADY_LOGGED_IN && who == CKU_USER) {
		/* Someone left the token logged in: do not sign on their login. */
		f->C_Logout(s);
		rv = login_once(f, s, who, pin, protected_path);
	}
	*ret_rv = rv;
	return tok_err_from_rv(rv);
}

static uint64_t
now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void
tok_ctx_sign(struct tok_ctx *c, const struct tok_sign_req *req, tok_sign_part_fn part,
	void *part_data, struct tok_sign_reply *ret)
{
	const struct hash_info *hi = hash_info(req->hash);
	CK_FUNCTION_LIST *f = NULL;
	CK_SLOT_ID slot;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	CK_KEY_TYPE kt = (CK_KEY_TYPE)-1;
	CK_BBOOL always_auth = CK_FALSE;
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_MECHANISM mech = { 0, NULL, 0 };
	const char *detail = NULL;
	int logged_in = 0, protected_path;
	enum tok_err e;
	CK_RV rv = CKR_OK;
	size_t i, sent = 0, hlen = tok_hash_len(req->hash);
	uint64_t since;

	memset(ret, 0, sizeof(*ret));
	if (!hi || req->n_digests == 0 || req->n_digests > TOK_SIGN_MAX) {
		reply_fail(ret, TOK_ERR_INTERNAL, 0, "bad sign request");
		return;
	}
	if (tok_ctx_find_token(c, req->token_id, &f, &slot, &ti) < 0) {
		reply_fail(ret, TOK_ERR_TOKEN_NOT_PRESENT, 0, "token not present");
		return;
	}
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK) {
		e = tok_err_from_rv(rv);
		/* Found a moment ago: "not present" now means removed meanwhile. */
		reply_fail(ret, e == TOK_ERR_TOKEN_NOT_PRESENT ? TOK_ERR_TOKEN_REMOVED : e, rv,
			"cannot open a session on the token");
		return;
	}
	protected_path = !!(ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH);
	if (ti.flags & CKF_LOGIN_REQUIRED) {
		if (!req->pin && !protected_path) {
			reply_fail(ret, TOK_ERR_PIN_REQUIRED, 0, "the token needs a PIN");
			goto out;
		}
		e = tok_p11_login(f, s, CKU_USER, req->pin, protected_path, &rv);
		ret->logins++;
		if (e != TOK_OK) {
			CK_TOKEN_INFO after;

			if (f->C_GetTokenInfo(slot, &after) == CKR_OK)
				ret->pin_flags = tok_p11_pin_flags(after.flags);
			reply_fail(ret, e, rv, "login refused");
			goto out;
		}
		logged_in = 1;
	}
	e = find_key(f, s, &req->ck_id, &key, &kt, &always_auth, &rv, &detail);
	if (e != TOK_OK) {
		reply_fail(ret, e, rv, detail);
		goto out;
	}
	switch (req->mech) {
	case TOK_MECH_RSA_PKCS:
		mech.mechanism = CKM_RSA_PKCS;
		break;
	case TOK_MECH_RSA_PSS:
		pss.hashAlg = hi->ck_hash;
		pss.mgf = hi->mgf;
		pss.sLen = hlen;
		mech.mechanism = CKM_RSA_PKCS_PSS;
		mech.pParameter = &pss;
		mech.ulParameterLen = sizeof(pss);
		break;
	case TOK_MECH_ECDSA:
		mech.mechanism = CKM_ECDSA;
		break;
	default:
		reply_fail(ret, TOK_ERR_MECHANISM, 0, "unknown mechanism");
		goto out;
	}
	if ((req->mech == TOK_MECH_ECDSA) != (kt == CKK_EC) ||
	    (req->mech != TOK_MECH_ECDSA && kt != CKK_RSA)) {
		reply_fail(ret, TOK_ERR_MECHANISM, 0, "the key's type does not fit the mechanism");
		goto out;
	}
	ret->sigs = calloc(req->n_digests, sizeof(*ret->sigs));
	if (!ret->sigs) {
		reply_fail(ret, TOK_ERR_INTERNAL, CKR_HOST_MEMORY, "out of memory");
		goto out;
	}
	since = now_usec();
	for (i = 0; i < req->n_digests; i++) {
		uint8_t data[64 + TOK_DIGEST_MAX];
		uint8_t sig[TOK_SIG_MAX];
		CK_ULONG data_len = 0, sig_len = sizeof(sig);

		if (req->digests[i].n != hlen) {
			reply_fail(ret, TOK_ERR_INTERNAL, 0, "digest length does not fit the hash");
			goto out;
		}
		if (req->mech == TOK_MECH_RSA_PKCS) {
			memcpy(data, hi->digestinfo, hi->digestinfo_len);
			data_len = hi->digestinfo_len;
		}
		memcpy(data + data_len, req->digests[i].p, hlen);
		data_len += hlen;

		rv = f->C_SignInit(s, &mech, key);
		if (rv == CKR_OK && always_auth) {
			/* CKA_ALWAYS_AUTHENTICATE (PIV 9C): the same PIN, once per signature, so
			 * the official still sees one dialog for the batch. */
			if (!req->pin && !protected_path) {
				reply_fail(ret, TOK_ERR_PIN_REQUIRED, 0, "the key needs a PIN");
				goto out;
			}
			e = tok_p11_login(f, s, CKU_CONTEXT_SPECIFIC, req->pin, protected_path,
				&rv);
			ret->logins++;
			/* C_Logout also clears OpenSC's PIN cache: never leave one behind (R2). */
			logged_in = 1;
		}
		if (rv == CKR_OK)
			rv = f->C_Sign(s, data, data_len, sig, &sig_len);
		if (rv != CKR_OK) {
			reply_fail(ret, tok_err_from_rv(rv), rv, "the token refused to sign");
			goto out;
		}
		ret->sigs[i].p = malloc(sig_len);
		if (!ret->sigs[i].p) {
			reply_fail(ret, TOK_ERR_INTERNAL, CKR_HOST_MEMORY, "out of memory");
			goto out;
		}
		memcpy(ret->sigs[i].p, sig, sig_len);
		ret->sigs[i].n = sig_len;
		ret->n_sigs++;
		if (part && (ret->n_sigs - sent >= TOK_SIGN_PART_MAX ||
				    now_usec() - since >= TOK_SIGN_PART_USEC)) {
			/* parafd assembles these while the token makes the next ones. */
			if (part(sent, ret->sigs + sent, ret->n_sigs - sent, part_data) < 0) {
				reply_fail(ret, TOK_ERR_INTERNAL, 0, "parafd stopped reading");
				goto out;
			}
			sent = ret->n_sigs;
			since = now_usec();
		}
	}
	ret->err = TOK_OK;
	/* The reply carries only the signatures no part has. */
	for (i = 0; i < sent; i++)
		free(ret->sigs[i].p);
	memmove(ret->sigs, ret->sigs + sent, (ret->n_sigs - sent) * sizeof(*ret->sigs));
	ret->n_sigs -= sent;
out:
	/* The token was there a moment ago: "not present" now means it was removed meanwhile. */
	if (ret->err == TOK_ERR_TOKEN_NOT_PRESENT)
		ret->err = TOK_ERR_TOKEN_REMOVED;
	if (ret->err != TOK_OK) {
		for (i = 0; i < ret->n_sigs; i++)
			free(ret->sigs[i].p);
		free(ret->sigs);
		ret->sigs = NULL;
		ret->n_sigs = 0;
	}
	/* No login outlives the request it was made for (R1). Should C_Logout fail, closing
	 * every session of ours on the slot ends the login too (PKCS#11: the login belongs to
	 * the application's sessions on the token). */
	if (logged_in && f->C_Logout(s) != CKR_OK) {
		f->C_CloseAllSessions(slot);
		return;
	}
	f->C_CloseSession(s);
}
