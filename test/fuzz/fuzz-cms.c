/*
 * Fuzz target: the CMS side of `paraf verify` (cli/cli-verify.c, cli-verify-cms.c,
 * cli-verify-trust.c, cli-verify-tst.c, cli-verify-report.c). The input is a signature file,
 * DER or PEM, named doc.p7s beside the document it may sign detached (test/fuzz/data/
 * content.txt); anchors: test/fuzz/data/ca.pem and demo-ca.pem with their CRLs.
 */
#include "fuzz-common.h"
#include "fuzz-verify.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_verify_setup();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_verify_one("doc.p7s", data, size);
	return 0;
}
