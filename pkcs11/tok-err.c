/*
 * PKCS#11 return values to paraf outcomes, and the names of digests. Converting in one place
 * keeps the agent free of CK_RV and lets a test pin every mapping down.
 */
#include <p11-kit/pkcs11.h>

#include "pf-util.h"
#include "tok.h"

const char *
tok_err_to_string(enum tok_err e)
{
	static const char *const names[_TOK_ERR_MAX] = {
		[TOK_OK] = "ok",
		[TOK_ERR_INTERNAL] = "internal error in the token helper",
		[TOK_ERR_MODULE] = "no PKCS#11 module could be loaded",
		[TOK_ERR_TOKEN_NOT_PRESENT] = "token not present",
		[TOK_ERR_TOKEN_REMOVED] = "token removed during the operation",
		[TOK_ERR_KEY_NOT_FOUND] = "no private key for this certificate",
		[TOK_ERR_KEY_EXTRACTABLE] = "private key is extractable or was not always sensitive",
		[TOK_ERR_PIN_REQUIRED] = "a PIN is required",
		[TOK_ERR_PIN_INCORRECT] = "PIN incorrect",
		[TOK_ERR_PIN_LOCKED] = "PIN locked",
		[TOK_ERR_PIN_INVALID] = "PIN has an invalid length or characters",
		[TOK_ERR_MECHANISM] = "signature mechanism not supported by the token or key",
		[TOK_ERR_DEVICE] = "token or module error",
	};

	if ((unsigned)e >= _TOK_ERR_MAX || !names[e])
		return "unknown error";
	return names[e];
}

enum tok_err
tok_err_from_rv(unsigned long rv)
{
	switch (rv) {
	case CKR_OK:
		return TOK_OK;
	case CKR_PIN_INCORRECT:
		return TOK_ERR_PIN_INCORRECT;
	case CKR_PIN_LOCKED:
		return TOK_ERR_PIN_LOCKED;
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
		return TOK_ERR_PIN_INVALID;
	case CKR_USER_NOT_LOGGED_IN:
		return TOK_ERR_PIN_REQUIRED;
	case CKR_DEVICE_REMOVED:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
		return TOK_ERR_TOKEN_REMOVED;
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_SLOT_ID_INVALID:
		return TOK_ERR_TOKEN_NOT_PRESENT;
	case CKR_MECHANISM_INVALID:
	case CKR_MECHANISM_PARAM_INVALID:
	case CKR_KEY_TYPE_INCONSISTENT:
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
	case CKR_KEY_SIZE_RANGE:
	case CKR_DATA_LEN_RANGE:
		return TOK_ERR_MECHANISM;
	case CKR_KEY_HANDLE_INVALID:
	case CKR_OBJECT_HANDLE_INVALID:
		return TOK_ERR_KEY_NOT_FOUND;
	case CKR_HOST_MEMORY:
	case CKR_ARGUMENTS_BAD:
		return TOK_ERR_INTERNAL;
	case CKR_CRYPTOKI_NOT_INITIALIZED:
		return TOK_ERR_MODULE;
	default:
		return TOK_ERR_DEVICE;
	}
}

size_t
tok_hash_len(uint32_t hash)
{
	switch (hash) {
	case TOK_HASH_SHA256:
		return 32;
	case TOK_HASH_SHA384:
		return 48;
	case TOK_HASH_SHA512:
		return 64;
	default:
		return 0;
	}
}

const char *
tok_hash_name(uint32_t hash)
{
	switch (hash) {
	case TOK_HASH_SHA256:
		return "sha256";
	case TOK_HASH_SHA384:
		return "sha384";
	case TOK_HASH_SHA512:
		return "sha512";
	default:
		return NULL;
	}
}
