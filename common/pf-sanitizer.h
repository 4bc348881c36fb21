/* Whether this build is instrumented by AddressSanitizer: gcc defines __SANITIZE_ADDRESS__,
 * clang answers __has_feature(address_sanitizer). Only for the few checks that cannot hold
 * under it, such as a bound on resident memory (the sanitizer's quarantine keeps freed
 * memory). See doc/security.md, "Sanitizers and valgrind". */
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define PF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PF_ASAN 1
#endif
#endif
#ifndef PF_ASAN
#define PF_ASAN 0
#endif
