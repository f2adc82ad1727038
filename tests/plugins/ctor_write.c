/*
 * ctor_write.c — a library whose constructor writes a file
 * (/tmp/cpex-test-ctor-wrote-<uid>) before any plugin is created: `cpex
 * inspect` must read it without running that code in its own process
 * (tests/scripts/test_cli_inspect.sh proves the file is never written: the
 * constructor runs in the sandboxed worker, which may write nothing).
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#define TEST_PLUGIN_NAME "ctor-write"
#define TEST_PLUGIN_VERSION "1.0.0"
#define TEST_PLUGIN_DESCRIPTION "its constructor writes a file"

__attribute__((constructor)) static void wrote(void)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/cpex-test-ctor-wrote-%u", (unsigned)getuid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0)
        close(fd);
}

#include "common_plugin.h"
