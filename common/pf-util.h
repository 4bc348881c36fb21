/*
 * Small helpers every paraf library uses: cleanup attributes in the style of systemd
 * (_cleanup_free_, TAKE_PTR), array sizes, and the errno-returning conventions.
 */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

static inline void
pf_freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(pf_freep)

static inline void
pf_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_close_ _cleanup_(pf_closep)

/* Hands ownership of a pointer over: returns it and clears the variable. */
#define TAKE_PTR(p) ({ __typeof__(p) _p = (p); (p) = NULL; _p; })
#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -1; _fd; })

/* Defines name##p() that calls free_fn on a pointer-to-pointer, for _cleanup_(). */
#define PF_DEFINE_CLEANUP(type, free_fn)                 \
	static inline void free_fn##p(type **p)        \
	{                                              \
		if (*p)                                \
			free_fn(*p);                   \
	}

static inline int
pf_negerrno(void)
{
	return errno > 0 ? -errno : -EIO;
}

static inline int
streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}
