/*
 * The peer's login session and dialog location, as facts for the policy (R1).
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "pol.h"

struct ag_dialog_location {
	const char *tty;
	const char *tty_type;
	const char *display;
	const char *xauthority;
	const char *wayland_display;
};

bool ag_logind_present(void);
void ag_session_facts(pid_t pid, struct pol_session *ret);
char *ag_peer_exe(pid_t pid);
/* 0 when every location given belongs to uid; else fills err and *ret_field. */
int ag_dialog_location_check(uid_t uid, pid_t pid, const struct ag_dialog_location *loc,
	char *err, size_t errsz, const char **ret_field);
