/*
 * ctor_crash.c — a library whose constructor aborts: `cpex inspect` must
 * report that the library ended the worker that read it, and live on
 * (tests/scripts/test_cli_inspect.sh). Never loaded by anything else.
 */
#include <stdlib.h>

#define TEST_PLUGIN_NAME "ctor-crash"
#define TEST_PLUGIN_VERSION "1.0.0"
#define TEST_PLUGIN_DESCRIPTION "its constructor aborts"

__attribute__((constructor)) static void crash(void) { abort(); }

#include "common_plugin.h"
