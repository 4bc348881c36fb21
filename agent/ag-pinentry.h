/*
 * The trusted PIN dialog: parafd asks GnuPG's pinentry programs (Assuan protocol) for the PIN,
 * asynchronously on its sd-event loop, so the calling application never sees the PIN (R2) and
 * other clients are served while a person types. One ag_pinentry_ask() is one dialog for one
 * signing act: nothing is cached, nothing is offered for caching (R1).
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "pf-secret.h"

/* Limits, checked before anything is allocated or sent. */
#define AG_PIN_LINE_MAX 4096        /* bytes in one line from the pinentry, LF excluded */
#define AG_PIN_ASSUAN_LINE_MAX 1000 /* bytes in one line we send, LF excluded (libassuan) */
#define AG_PIN_TEXT_MAX 65536       /* bytes in one text of the dialog before truncation */
#define AG_PIN_VALUE_MAX 4096       /* bytes in an OPTION value or an environment value */
#define AG_PIN_TIMEOUT_DEFAULT 60   /* seconds, when ag_pin_dialog.timeout is 0 */
#define AG_PIN_TIMEOUT_MAX 3600     /* seconds */
#define AG_PIN_DEADLINE_GRACE 5     /* seconds past the pinentry's own timeout */

struct ag_pin_dialog {
	const char *program;         /* pinentry path, absolute, e.g. /usr/bin/pinentry */
	const char *tty;             /* OPTION ttyname=, or NULL */
	const char *tty_type;        /* OPTION ttytype= (TERM), or NULL */
	const char *display;         /* X11 DISPLAY for the child's environment, or NULL */
	const char *xauthority;      /* XAUTHORITY for the child's environment, or NULL */
	const char *wayland_display; /* WAYLAND_DISPLAY for the child's environment, or NULL */
	const char *runtime_dir;     /* XDG_RUNTIME_DIR for the child, or NULL */
	const char *lang;            /* LANG/LC_ALL and OPTION lc-ctype/lc-messages, or NULL for
	                                C.UTF-8 */
	const char *title;           /* SETTITLE, or NULL */
	const char *description;     /* SETDESC: multi-line UTF-8 the agent composes, or NULL */
	const char *prompt;          /* SETPROMPT, or NULL */
	const char *ok_label, *cancel_label; /* SETOK / SETCANCEL, may be NULL */
	const char *error;           /* SETERROR (e.g. "PIN salah, sisa percobaan rendah"), or NULL */
	const char *confirm_text;    /* if non-NULL: first a CONFIRM dialog with this text (final try:
	                                the official must explicitly agree to risk locking), then
	                                GETPIN */
	unsigned timeout;            /* seconds (0: AG_PIN_TIMEOUT_DEFAULT): SETTIMEOUT, and also our
	                                own deadline (+ AG_PIN_DEADLINE_GRACE) for each of CONFIRM
	                                and GETPIN, after which the child is killed */
};

struct ag_pinentry;

/*
 * r: 0 with pin set (the callback owns it: free with pf_secret_free; it may be empty when the
 * person just pressed Enter, and the caller decides what an empty PIN means), -ECANCELED when
 * the person cancelled or declined the confirmation, -ETIMEDOUT (the pinentry's timeout or our
 * deadline), -ENOENT when the program cannot be run, -E2BIG for a PIN longer than
 * PF_SECRET_MAX, -EIO for protocol errors (including a pinentry that reports it cannot show
 * the dialog, a crash or a line longer than AG_PIN_LINE_MAX), -ENOMEM. The callback runs
 * exactly once, from the event loop (never from inside ag_pinentry_ask); when it runs, the
 * ag_pinentry is already gone: forget the pointer, never cancel it afterwards.
 */
typedef void (*ag_pin_cb)(int r, struct pf_secret *pin, void *data);

/*
 * Starts the dialog. The strings of d are copied: d may go away on return. Returns 0 and the
 * dialog in *ret_p, or a negative errno and then the callback never runs: -EINVAL for a
 * relative program path, text that is not UTF-8, an OPTION value with a space, '%' or a control
 * character, an environment value with a control character, a timeout above
 * AG_PIN_TIMEOUT_MAX; fork, socket and sd-event errors as they come.
 */
int ag_pinentry_ask(sd_event *e, const struct ag_pin_dialog *d, ag_pin_cb cb, void *data,
	struct ag_pinentry **ret_p);

/* The request's client went away: kill the dialog; the callback is NOT called. Accepts NULL,
 * returns NULL. The child is sent SIGTERM (SIGKILL a second later) and reaped from the event
 * loop; freeing the event loop meanwhile kills and reaps it at once. */
struct ag_pinentry *ag_pinentry_cancel(struct ag_pinentry *p);

/* The pinentry's process id, for the audit log and the tests. */
pid_t ag_pinentry_pid(const struct ag_pinentry *p);
