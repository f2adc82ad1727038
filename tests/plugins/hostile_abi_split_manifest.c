/*
 * hostile_abi_split_manifest.c — the other disagreement: the manifest
 * claims ABI 1.5 (a minor newer than this host's), while the entry point
 * would register as 1.0. The manifest is read first, so the host must
 * refuse the library before running any plugin code: the entry point
 * aborts.
 */
#define TEST_PLUGIN_RAW_ABI
#include "common_plugin.h"

TEST_ABORTING_CREATE

TEST_ONE_ENTRY_MANIFEST("ABI split", "1.0.0", "manifest 1.5, registration 1.0",
                        CPEX_ABI_MAKE_VERSION(1, 5), 1);
