/*
 * A small INI reader shared by the agent's configuration and the policy files: sections,
 * `key = value` lines, '#' and ';' comments. It turns text into callbacks and nothing else;
 * what a key means, and whether an unknown one is an error, is the caller's business.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define PF_INI_LINE_MAX 4096

/* Called for each key; a negative return stops the parse, and err (errsz bytes) then says
 * what is wrong with the value (pf_ini_parse() adds the file name and line number). */
typedef int (*pf_ini_cb)(void *data, const char *section, const char *key, const char *value,
	char *err, size_t errsz);

int pf_ini_parse(const char *name, const char *text, pf_ini_cb cb, void *data, char *ret_error,
	size_t error_size);
/* yes/no, true/false, on/off, 1/0. */
int pf_parse_bool(const char *v, bool *ret);
/* A decimal number within [min, max], nothing else on the line. */
int pf_parse_uint(const char *v, unsigned min, unsigned max, unsigned *ret);
/* Strips white space at both ends, in place. */
char *pf_strip(char *s);
