/* test_support.c — see test_support.h. */
#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void test_assert_contains(const char *haystack, const char *needle, const char *file, int line)
{
    if (haystack && needle && strstr(haystack, needle))
        return;
    print_error("%s:%d: expected to find \"%s\" in:\n%s\n", file, line, needle ? needle : "(null)",
                haystack ? haystack : "(null)");
    _fail(file, line);
}

char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    return buf;
}

cpex_cmf_message *test_text_message(const char *text)
{
    cpex_cmf_message *m = cpex_cmf_new(CPEX_ROLE_USER);
    if (!m || cpex_cmf_append_text(m, CPEX_PART_TEXT, text, strlen(text)) != CPEX_OK) {
        /* not a cmocka failure: this may run on a worker thread */
        fprintf(stderr, "test_text_message: cannot build a message of \"%s\"\n", text);
        abort();
    }
    return m;
}

char *test_write_temp(const char *name_hint, const char *text)
{
    char *path = malloc(256);
    snprintf(path, 256, "/tmp/cpex_test_%s_XXXXXX", name_hint ? name_hint : "file");
    int fd = mkstemp(path);
    if (fd < 0) {
        free(path);
        return NULL;
    }
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len) {
        close(fd);
        free(path);
        return NULL;
    }
    close(fd);
    return path;
}

int test_temp_dir(char *dir, size_t cap, const char *tag)
{
    int n = snprintf(dir, cap, "%s/%s-XXXXXX", CPEX_BINARY_DIR, tag);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return mkdtemp(dir) && chmod(dir, 0755) == 0 ? 0 : -1;
}

int test_remove_tree(const char *dir)
{
    size_t cap = strlen(dir) + 16;
    char *cmd = malloc(cap);
    if (!cmd || strchr(dir, '\'')) {
        free(cmd);
        return -1;
    }
    snprintf(cmd, cap, "rm -rf '%s'", dir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}
