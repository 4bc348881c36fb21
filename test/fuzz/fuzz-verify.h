/*
 * `paraf verify` (cli_verify_run) over one input written as a file, against fixed anchors,
 * CRLs and an owners registry at the fixed time FUZZ_NOW; the report is rendered as JSON and
 * text too. Shared by fuzz-cms.c and fuzz-pdf.c.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Once: the scratch directory, the content file "doc" a detached CMS "doc.p7s" signs. */
void fuzz_verify_setup(void);
/* Writes data to <scratch>/verify/<name> and verifies it; aborts when a check fails. */
void fuzz_verify_one(const char *name, const uint8_t *data, size_t size);
