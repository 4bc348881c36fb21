/*
 * Text encodings used on the wire: strict base64 (RFC 4648, padded, no whitespace) and
 * lower-case hex. Decoders refuse anything that is not canonical, so one value has one spelling.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Returns a newly allocated NUL-terminated string, or NULL on allocation failure. */
char *pf_base64_encode(const uint8_t *p, size_t n);
/* -EINVAL for any character outside the alphabet, bad padding or length; -ENOMEM. */
int pf_base64_decode(const char *s, size_t len, uint8_t **ret_p, size_t *ret_n);
/* The number of bytes a valid base64 string of this length decodes to at most. */
size_t pf_base64_decoded_max(size_t len);

char *pf_hex_encode(const uint8_t *p, size_t n);

/* 1 when s is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most
 * U+10FFFF), else 0. */
int pf_utf8_valid(const char *s, size_t n);
