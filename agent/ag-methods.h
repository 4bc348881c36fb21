/*
 * Helpers the method handlers share (ag-methods.c, ag-sign.c).
 */
#pragma once

#include "ag.h"

unsigned ag_op_timeout_ms(const struct ag_server *srv, size_t n_docs);
void ag_call_fail_msg(struct ag_call *call, enum ag_err e, const char *field, const char *msg);
void ag_call_fail_helper(struct ag_call *call, int r);
json_object *ag_pin_status_json(uint32_t tok_pin_flags);
/* One token as tokens.list and the token.* notifications show it. */
json_object *ag_token_json(const struct tok_token *t, bool present);

/* Asks the helper for tokens and certificates; cb gets the list, or the call fails. */
typedef void (*ag_list_cb)(struct ag_call *call, struct tok_list *l);
void ag_list_start(struct ag_call *call, ag_list_cb cb);

/* ag-sign.c: the sign method's parameters, parsed by ag_sign_fields */
struct sign_doc {
	const char *name;
	struct tok_blob digest;
};

struct sign_params {
	const char *certificate;
	int usage;            /* enum pol_usage */
	int format;           /* 1 cms, 2 raw */
	int digest_algorithm; /* enum tok_hash */
	int padding;          /* 0 absent, 1 pkcs1, 2 pss */
	int profile;          /* 0 absent (cades), 1 cades, 2 pades */
	struct sign_doc *documents;
	size_t n_documents;
	struct pf_secret *pin;
	const char *tty, *tty_type, *display, *xauthority, *wayland_display;
};

extern const struct ag_field ag_sign_fields[];
#define AG_SIGN_PARAMS_SIZE sizeof(struct sign_params)
void ag_sign(struct ag_call *call);
