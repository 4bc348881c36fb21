/*
 * Locked memory for PINs (R2). One page per secret is wasteful and deliberate: mlock() and
 * MADV_DONTDUMP work on whole pages, and a PIN must not share its page with anything that
 * is later freed without being wiped.
 */
#include "pf-secret.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SECRET_MAP 4096

int
pf_secret_new(const void *p, size_t n, struct pf_secret **ret)
{
	struct pf_secret *s;
	void *m;

	if (n > PF_SECRET_MAX || (n && memchr(p, 0, n)))
		return -EINVAL;
	m = mmap(NULL, SECRET_MAP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	/* Best effort: RLIMIT_MEMLOCK may be tiny for ordinary users; DONTDUMP still applies. */
	(void)mlock(m, SECRET_MAP);
	(void)madvise(m, SECRET_MAP, MADV_DONTDUMP);
	s = m;
	s->data = (char *)m + sizeof(*s);
	s->len = n;
	if (n)
		memcpy(s->data, p, n);
	s->data[n] = 0;
	*ret = s;
	return 0;
}

struct pf_secret *
pf_secret_free(struct pf_secret *s)
{
	if (!s)
		return NULL;
	explicit_bzero(s, SECRET_MAP);
	munlock(s, SECRET_MAP);
	munmap(s, SECRET_MAP);
	return NULL;
}
