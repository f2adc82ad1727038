/* abi_newer_minor.c — a plugin that claims ABI 1.99 (a minor newer than
   the host's): its manifest and its entry point both say so. The host must
   refuse it with both versions in the message. */
#define CPEX_PLUGIN_ABI_MAJOR 1u
#define CPEX_PLUGIN_ABI_MINOR 99u

#define TEST_PLUGIN_NAME "abi-newer-minor"
#define TEST_PLUGIN_VERSION "1.99.0"
#define TEST_PLUGIN_DESCRIPTION "claims ABI 1.99"
#include "common_plugin.h"
