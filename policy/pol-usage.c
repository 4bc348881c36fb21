/*
 * Names of the usage types (R6), shared by the socket protocol and the CLI.
 */
#include <stddef.h>

#include "pol.h"

const char *const pol_usage_names[] = {
	"signature", "email", "tls-client", "tls-server", "document-protection", NULL,
};

const char *
pol_usage_to_string(enum pol_usage u)
{
	if (u < POL_USAGE_SIGNATURE || u > POL_USAGE_DOCUMENT_PROTECTION)
		return NULL;
	return pol_usage_names[u - 1];
}
