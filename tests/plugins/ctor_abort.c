/*
 * ctor_abort.c — a library whose constructor aborts the process: dlopen
 * alone would end the host. Only a check made before dlopen (a sha256 pin
 * that does not match, strict_permissions) lets a host survive being
 * pointed at it; tests/e2e/test_plugin_files.c proves both are made first.
 */
#define TEST_PLUGIN_RAW_ABI
#include "common_plugin.h"

__attribute__((constructor)) static void end_the_host(void) { abort(); }

TEST_ABORTING_CREATE
