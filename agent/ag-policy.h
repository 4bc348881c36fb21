/*
 * Loading the policy directory: policy.conf, drop-ins in policy.d, owners.d, revoked.list,
 * the trust anchors and the CRLs. Files anyone but root could write are refused (R13); the
 * parsing and the decisions are policy/'s.
 */
#pragma once

#include <stdbool.h>

#include "pol.h"

#define AG_POLICY_FILE_MAX (4u * 1024u * 1024u) /* bytes in one policy, registry or CRL file */
#define AG_POLICY_FILES_MAX 4096                 /* files in one of its directories */

struct ag_policy {
	struct pol_policy pol;
	struct pol_trust trust;
	char *dir;
	bool owner_files_allowed; /* --policy DIR: files of the agent's own account accepted */
};

/* dir_given: the directory came from --policy (tests, development): files owned by the
 * agent's own account are accepted besides root's. */
int ag_policy_load(const char *dir, bool dir_given, struct ag_policy **ret, char *ret_error,
	size_t error_size);
struct ag_policy *ag_policy_free(struct ag_policy *p);
