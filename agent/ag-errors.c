/*
 * The error table: every error the agent can return, with its stable code and reason. The
 * OpenRPC document and the tests read this table; doc/protocol.md must list every entry.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ag.h"
#include "pf-util.h"

static const struct ag_error_info errors[_AG_ERR_MAX] = {
	[AG_ERR_PARSE] = { -32700, "parse-error", NULL, "the request is not valid JSON" },
	[AG_ERR_INVALID_REQUEST] = { -32600, "invalid-request", NULL,
		"the request is not a JSON-RPC 2.0 request object with an id" },
	[AG_ERR_METHOD_NOT_FOUND] = { -32601, "method-not-found", NULL, "no such method" },
	[AG_ERR_INVALID_PARAMS] = { -32602, "invalid-params", NULL,
		"a parameter is missing, unknown, of the wrong type or out of range" },
	[AG_ERR_INTERNAL] = { -32603, "internal-error", NULL, "a fault inside the agent" },
	[AG_ERR_REQUEST_TOO_LARGE] = { -32001, "request-too-large", NULL,
		"the request line exceeds the size limit" },
	[AG_ERR_NESTING_TOO_DEEP] = { -32002, "nesting-too-deep", NULL,
		"the request nests JSON deeper than the limit" },
	[AG_ERR_TOO_MANY_DOCUMENTS] = { -32003, "too-many-documents", NULL,
		"more documents than one request may sign" },
	[AG_ERR_TOO_MANY_CLIENTS] = { -32004, "too-many-clients", NULL,
		"the agent serves as many clients as it may" },
	[AG_ERR_PEER_REFUSED] = { -32005, "peer-refused", "R1",
		"the connecting process belongs to another account" },
	[AG_ERR_UNKNOWN_CERTIFICATE] = { -32010, "unknown-certificate", NULL,
		"no present token holds this certificate" },
	[AG_ERR_TOKEN_NOT_PRESENT] = { -32011, "token-not-present", NULL,
		"the token is not present" },
	[AG_ERR_KEY_NOT_FOUND] = { -32012, "key-not-found", NULL,
		"the token has no private key for this certificate" },
	[AG_ERR_KEY_EXTRACTABLE] = { -32013, "key-extractable", "R3",
		"the private key is extractable or was not always sensitive" },
	[AG_ERR_PIN_REQUIRED] = { -32014, "pin-required", NULL, "the token needs a PIN" },
	[AG_ERR_PIN_PARAMETER_REFUSED] = { -32015, "pin-parameter-refused", "R2",
		"this agent does not accept PINs from clients" },
	[AG_ERR_PIN_INCORRECT] = { -32016, "pin-incorrect", NULL, "the token refused the PIN" },
	[AG_ERR_PIN_LOCKED] = { -32017, "pin-locked", NULL, "the token's PIN is locked" },
	[AG_ERR_PIN_INVALID] = { -32018, "pin-invalid", NULL,
		"the token refused the PIN's length or characters" },
	[AG_ERR_UNSUPPORTED_ALGORITHM] = { -32019, "unsupported-algorithm", NULL,
		"the key or token cannot make this kind of signature" },
	[AG_ERR_TOKEN_REMOVED] = { -32020, "token-removed",
		NULL, "the token was removed during the operation" },
	[AG_ERR_TOKEN_ERROR] = { -32021, "token-error", NULL, "the token or its module failed" },
	[AG_ERR_TOKEN_HELPER_FAILED] = { -32022, "token-helper-failed", NULL,
		"the token helper crashed or did not answer in time; it has been replaced" },
	[AG_ERR_UNREGISTERED] = { -32030, "unregistered", "R5",
		"the certificate has no type or no registered owner" },
	[AG_ERR_NOT_OWNER] = { -32031, "not-owner", "R1",
		"the certificate belongs to another account" },
	[AG_ERR_NO_SESSION] = { -32032, "no-session", "R1",
		"the request comes from no local login session, or sessions cannot be checked" },
	[AG_ERR_REMOTE_SESSION] = { -32033, "remote-session", "R1",
		"the request comes from a remote login session" },
	[AG_ERR_INACTIVE_SESSION] = { -32034, "inactive-session", "R1",
		"the request comes from a login session that is not the active one" },
	[AG_ERR_BATCH_TOO_LARGE] = { -32035, "batch-too-large", "R1",
		"more documents than the policy lets one PIN authorise" },
	[AG_ERR_USAGE_NOT_ALLOWED] = { -32036, "usage-not-allowed", "R6",
		"the certificate's type may not be used for this usage" },
	[AG_ERR_USAGE_NOT_IN_CERTIFICATE] = { -32037, "usage-not-in-certificate", "R6",
		"the certificate's extensions do not allow this usage" },
	[AG_ERR_NOT_YET_VALID] = { -32038, "not-yet-valid", "R7", "the certificate is not valid yet" },
	[AG_ERR_EXPIRED] = { -32039, "expired", "R7", "the certificate has expired" },
	[AG_ERR_NON_COMPLIANT] = { -32040, "non-compliant", "R7",
		"the certificate is valid for longer than the regulation allows" },
	[AG_ERR_UNTRUSTED] = { -32041, "untrusted", NULL,
		"the certificate does not chain to a configured trust anchor" },
	[AG_ERR_REVOKED] = { -32042, "revoked", "R8",
		"the certificate is revoked and can never be used again" },
	[AG_ERR_REVOCATION_UNKNOWN] = { -32043, "revocation-unknown", "R8",
		"no current CRL from the issuer, and the policy requires one" },
	[AG_ERR_PIN_CANCELLED] = { -32044, "pin-cancelled", NULL,
		"the official cancelled the PIN dialog" },
	[AG_ERR_PIN_DIALOG_FAILED] = { -32045, "pin-dialog-failed", NULL,
		"the PIN dialog could not be shown or did not answer" },
	[AG_ERR_DIALOG_LOCATION_REFUSED] = { -32046, "dialog-location-refused", "R1",
		"the terminal or display named for the PIN dialog is not the caller's own" },
	[AG_ERR_POLICY_INVALID] = { -32047, "policy-invalid", "R13",
		"the policy, registry or revocation list cannot be read safely" },
	[AG_ERR_AUDIT_UNAVAILABLE] = { -32048, "audit-unavailable", "R13",
		"the audit service did not acknowledge the decision's record, so no signature is "
		"released" },
	[AG_ERR_TYPE_NOT_SERVED] = { -32049, "type-not-served", "R1",
		"a system-mode agent serves electronic-system certificates only: individual and "
		"jabatan certificates need their owner's own agent and PIN dialog" },
};

enum ag_err
ag_error_from_reason(const char *reason)
{
	for (int e = 0; e < _AG_ERR_MAX; e++)
		if (reason && streq(errors[e].reason, reason))
			return e;
	return AG_ERR_INTERNAL;
}

const struct ag_error_info *
ag_error_info(enum ag_err e)
{
	if ((unsigned)e >= _AG_ERR_MAX)
		e = AG_ERR_INTERNAL;
	return &errors[e];
}

void
ag_error_set(struct ag_error *e, enum ag_err err, const char *field, const char *fmt, ...)
{
	va_list ap;

	e->err = err;
	snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

void
ag_error_release(struct ag_error *e)
{
	json_object_put(e->extra);
	e->extra = NULL;
}

json_object *
ag_error_response(json_object *id, struct ag_error *e)
{
	const struct ag_error_info *info = ag_error_info(e->err);
	const char *rule = e->rule ? e->rule : info->rule;
	json_object *resp = json_object_new_object();
	json_object *err = json_object_new_object();
	json_object *data = e->extra ? e->extra : json_object_new_object();

	e->extra = NULL;
	json_object_object_add(data, "reason", json_object_new_string(info->reason));
	json_object_object_add(data, "rule", rule ? json_object_new_string(rule) : NULL);
	json_object_object_add(data, "field", e->field[0] ? json_object_new_string(e->field) : NULL);
	json_object_object_add(err, "code", json_object_new_int(info->code));
	json_object_object_add(err, "message",
		json_object_new_string(e->message[0] ? e->message : info->summary));
	json_object_object_add(err, "data", data);
	json_object_object_add(resp, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(resp, "id", id ? json_object_get(id) : NULL);
	json_object_object_add(resp, "error", err);
	return resp;
}

json_object *
ag_result_response(json_object *id, json_object *result)
{
	json_object *resp = json_object_new_object();

	json_object_object_add(resp, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(resp, "id", json_object_get(id));
	json_object_object_add(resp, "result", result);
	return resp;
}

enum ag_err
ag_error_from_tok(uint32_t tok_err)
{
	switch (tok_err) {
	case TOK_ERR_TOKEN_NOT_PRESENT:
		return AG_ERR_TOKEN_NOT_PRESENT;
	case TOK_ERR_TOKEN_REMOVED:
		return AG_ERR_TOKEN_REMOVED;
	case TOK_ERR_KEY_NOT_FOUND:
		return AG_ERR_KEY_NOT_FOUND;
	case TOK_ERR_KEY_EXTRACTABLE:
		return AG_ERR_KEY_EXTRACTABLE;
	case TOK_ERR_PIN_REQUIRED:
		return AG_ERR_PIN_REQUIRED;
	case TOK_ERR_PIN_INCORRECT:
		return AG_ERR_PIN_INCORRECT;
	case TOK_ERR_PIN_LOCKED:
		return AG_ERR_PIN_LOCKED;
	case TOK_ERR_PIN_INVALID:
		return AG_ERR_PIN_INVALID;
	case TOK_ERR_MECHANISM:
		return AG_ERR_UNSUPPORTED_ALGORITHM;
	case TOK_ERR_MODULE:
	case TOK_ERR_DEVICE:
		return AG_ERR_TOKEN_ERROR;
	default:
		return AG_ERR_INTERNAL;
	}
}
