/* init_fail.c — a plugin that is created fine but whose initialize callback
   fails with its own message. Its instance is allocated, so a host that
   forgets to destroy it leaks (LeakSanitizer catches that). */
#include <cpex/plugin.h>

static int32_t initialize(void *instance, char *err, size_t err_cap)
{
    (void)instance;
    cpex_plugin_errorf(err, err_cap, "init_fail: backend at 10.0.0.1:9 is unreachable");
    return 1;
}

#define TEST_PLUGIN_NAME "init-fail"
#define TEST_PLUGIN_VERSION "1.0.0"
#define TEST_PLUGIN_DESCRIPTION "fails in initialize"
#define TEST_PLUGIN_INITIALIZE initialize
#include "common_plugin.h"
