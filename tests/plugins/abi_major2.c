/* abi_major2.c — a plugin that claims ABI 2.0 (a major this host does not
   speak): its manifest and its entry point both say so. The host must
   refuse it with both versions in the message. */
#define CPEX_PLUGIN_ABI_MAJOR 2u
#define CPEX_PLUGIN_ABI_MINOR 0u

#define TEST_PLUGIN_NAME "abi-major2"
#define TEST_PLUGIN_VERSION "2.0.0"
#define TEST_PLUGIN_DESCRIPTION "claims ABI 2.0"
#include "common_plugin.h"
