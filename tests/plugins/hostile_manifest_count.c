/*
 * hostile_manifest_count.c — a hand-written manifest that claims 2^40
 * entries over a one-element array. The host must refuse the count before
 * reading the array (AddressSanitizer would catch a read past it), and
 * must not run any plugin code: the entry point aborts.
 */
#define TEST_PLUGIN_RAW_ABI
#include "common_plugin.h"

TEST_ABORTING_CREATE

TEST_ONE_ENTRY_MANIFEST("Huge", "1.0.0", "claims a huge count", CPEX_ABI_VERSION, (size_t)1 << 40);
