/*
 * The helper side's internals shared by tok-p11.c (list, sign) and tok-admin.c (provisioning):
 * module and slot enumeration, the token id, attribute reads and the login. Not part of the
 * interface (tok.h): only files that run inside paraf-token-helper include this.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "tok.h"

#define TOK_SLOTS_MAX 64         /* slots per module we look at */
#define TOK_ATTR_MAX (64 * 1024) /* a certificate's DER, a CKA_ID */

size_t tok_ctx_n_modules(const struct tok_ctx *c);
CK_FUNCTION_LIST *tok_ctx_module(const struct tok_ctx *c, size_t i);
/* Finds the module and slot holding the token with this id, by enumerating afresh. -ENOENT. */
int tok_ctx_find_token(struct tok_ctx *c, const char *id, CK_FUNCTION_LIST **ret_f,
	CK_SLOT_ID *ret_slot, CK_TOKEN_INFO *ret_ti);

/* The slots with a token present (at most TOK_SLOTS_MAX), retried while readers change. */
int tok_p11_slot_list(CK_FUNCTION_LIST *f, CK_SLOT_ID *slots, CK_ULONG *n);
/* TOK_ID_LEN hex digits of SHA-256(manufacturer, model, serial); newly allocated. */
char *tok_p11_token_id(const CK_TOKEN_INFO *ti);
/* A blank-padded PKCS#11 text field as a string, control bytes replaced; newly allocated. */
char *tok_p11_field_str(const CK_UTF8CHAR *p, size_t n);
uint32_t tok_p11_pin_flags(CK_FLAGS f); /* CKF_USER_PIN_* and friends to TOK_PIN_* */
/* One variable-length attribute (at most TOK_ATTR_MAX) into newly allocated memory. */
CK_RV tok_p11_get_attr(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
	CK_ATTRIBUTE_TYPE type, struct tok_blob *ret);
CK_BBOOL tok_p11_bool_attr(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
	CK_ATTRIBUTE_TYPE t, int *ret_known);
/* C_Login; a user login over someone else's is logged out and made again. protected_path
 * uses the reader's PIN pad (pin unused). */
enum tok_err tok_p11_login(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_USER_TYPE who,
	const struct pf_secret *pin, int protected_path, CK_RV *ret_rv);
