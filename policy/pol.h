/*
 * The regulation's vocabulary as the rest of paraf uses it. Decisions live here too (the
 * next issue's work); this file names the usage types every request must state (R6).
 */
#pragma once

/* R6: the usage types of the regulation (Serang 8(5), Depok 11(4), Denpasar 8(5), Blitar 17).
 * The order is the wire order of the `usage` parameter. */
enum pol_usage {
	POL_USAGE_SIGNATURE = 1,
	POL_USAGE_EMAIL,
	POL_USAGE_TLS_CLIENT,
	POL_USAGE_TLS_SERVER,
	POL_USAGE_DOCUMENT_PROTECTION,
};

/* NULL-terminated, in enum order from POL_USAGE_SIGNATURE. */
extern const char *const pol_usage_names[];
const char *pol_usage_to_string(enum pol_usage u);
