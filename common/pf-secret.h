/*
 * A secret (a PIN) in its own locked, non-dumpable page: never swapped, never in a core file,
 * wiped when freed. The one type that holds a PIN anywhere in paraf (R2).
 */
#pragma once

#include <stddef.h>

#define PF_SECRET_MAX 256 /* longer PINs are refused, not truncated */

struct pf_secret {
	char *data; /* NUL-terminated, len bytes */
	size_t len;
};

/* -EINVAL when longer than PF_SECRET_MAX or containing a NUL; -ENOMEM. */
int pf_secret_new(const void *p, size_t n, struct pf_secret **ret);
struct pf_secret *pf_secret_free(struct pf_secret *s);
