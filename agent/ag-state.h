/*
 * Certificates this agent once saw revoked (R8), remembered across restarts.
 */
#pragma once

#include <stdbool.h>

bool ag_state_revoked(const char *cert_id);
int ag_state_remember_revoked(const char *cert_id);
