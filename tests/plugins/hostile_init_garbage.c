/*
 * hostile_init_garbage.c — an initialize callback that fails and writes
 * garbage into its message buffer: the whole buffer, no terminating NUL,
 * with a terminal escape sequence and a newline that forges a second line.
 * The host must keep the message bounded and printable on one line.
 */
#include <string.h>

#include <cpex/plugin.h>

static int32_t initialize(void *instance, char *err, size_t err_cap)
{
    (void)instance;
    static const char forged[] = "init_garbage: failed\x1b[2J\nFAKE: all plugins loaded fine ";
    if (err && err_cap) {
        memset(err, 'X', err_cap); /* no NUL anywhere */
        memcpy(err, forged, sizeof forged - 1 < err_cap ? sizeof forged - 1 : err_cap);
    }
    return -1;
}

#define TEST_PLUGIN_NAME "init-garbage"
#define TEST_PLUGIN_VERSION "1.0.0"
#define TEST_PLUGIN_DESCRIPTION "fails initialize with a garbage message"
#define TEST_PLUGIN_INITIALIZE initialize
#include "common_plugin.h"
