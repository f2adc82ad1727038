/*
 * describe.c — cpex_library_describe_sandboxed (cpex/loader.h): the
 * loader's description of a library, made by `cpex-worker --describe` in
 * its sandbox, so the library's constructors never run in the inspecting
 * process. The worker's JSON is read as strictly as a reply: a library
 * that ends the worker, hangs it or garbles its output gets a description
 * that says so.
 */
#include "cpex/loader.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "isolation/spawn.h"
#include "loader/libfile.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/errors.h"

#define DESCRIBE_MAX_OUTPUT (8u << 20)
#define DESCRIBE_MAX_ITEMS 1024u
#define DESCRIBE_DEFAULT_TIMEOUT 10.0

/* ------------------------------------------------------------------ */
/* The worker's JSON                                                   */
/* ------------------------------------------------------------------ */

typedef struct rd {
    char why[200];
} rd;

static bool bad(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool bad(rd *r, const char *fmt, ...)
{
    if (!r->why[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->why, sizeof r->why, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* A string field (NULL allowed when `optional`); copied into *out. */
static bool str(rd *r, const json_t *o, const char *key, bool optional, char **out)
{
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    if (optional && (!v || json_is_null(v)))
        return true;
    const char *s = json_string_value(v);
    if (!s || strlen(s) != json_string_length(v))
        return bad(r, "'%s' is not a string without NUL", key);
    return (*out = cpex__strdup(s)) != NULL || bad(r, "out of memory");
}

static bool flag(rd *r, const json_t *o, const char *key, int *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_boolean(v))
        return bad(r, "'%s' is not true or false", key);
    *out = json_is_true(v);
    return true;
}

static bool number(rd *r, const json_t *o, const char *key, json_int_t lo, json_int_t hi,
                   json_int_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return bad(r, "'%s' is not an integer from %lld to %lld", key, (long long)lo,
                   (long long)hi);
    *out = json_integer_value(v);
    return true;
}

static bool strings(rd *r, const json_t *o, const char *key, char ***out, size_t *count)
{
    const json_t *a = json_object_get(o, key);
    *out = NULL;
    *count = 0;
    if (!json_is_array(a) || json_array_size(a) > DESCRIBE_MAX_ITEMS)
        return bad(r, "'%s' is not a list of at most %u strings", key, DESCRIBE_MAX_ITEMS);
    size_t n = json_array_size(a);
    if (!n)
        return true;
    char **v = cpex__calloc(n, sizeof *v);
    if (!v)
        return bad(r, "out of memory");
    *out = v;
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(a, i);
        if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s))
            return bad(r, "'%s' holds something that is not a string", key);
        if (!(v[i] = cpex__strdup(json_string_value(s))))
            return bad(r, "out of memory");
        *count = i + 1;
    }
    return true;
}

static bool entry(rd *r, const json_t *e, cpex_library_entry *out)
{
    if (!json_is_object(e))
        return bad(r, "an entry is not an object");
    return str(r, e, "entry", false, &out->entry) && str(r, e, "symbol", false, &out->symbol) &&
           flag(r, e, "exported", &out->exported) && str(r, e, "kind", false, &out->kind) &&
           str(r, e, "display_name", true, &out->display_name) &&
           str(r, e, "version", true, &out->version) &&
           str(r, e, "description", true, &out->description) &&
           strings(r, e, "hooks", &out->hooks, &out->hook_count);
}

static bool from_json(rd *r, const json_t *d, cpex_library_info *info)
{
    json_int_t n = 0;
    if (!json_is_object(d))
        return bad(r, "not a JSON object");
    if (!str(r, d, "path", false, &info->path) || !flag(r, d, "loaded", &info->loaded) ||
        !number(r, d, "host_abi", 0, UINT32_MAX, &n))
        return false;
    info->host_abi = (uint32_t)n;
    if (!flag(r, d, "has_manifest", &info->has_manifest) ||
        !flag(r, d, "abi_known", &info->abi_known) ||
        !number(r, d, "abi_version", 0, UINT32_MAX, &n))
        return false;
    info->abi_version = (uint32_t)n;
    if (!number(r, d, "compatible", -1, 1, &n))
        return false;
    info->compatible = (int)n;
    if (!str(r, d, "build_info", true, &info->build_info) ||
        !strings(r, d, "problems", &info->problems, &info->problem_count) ||
        !strings(r, d, "notes", &info->notes, &info->note_count) ||
        !flag(r, d, "usable", &info->usable) || !str(r, d, "sandbox", false, &info->sandbox))
        return false;
    const json_t *es = json_object_get(d, "entries");
    if (!json_is_array(es) || json_array_size(es) > DESCRIBE_MAX_ITEMS)
        return bad(r, "'entries' is not a list of at most %u entries", DESCRIBE_MAX_ITEMS);
    size_t count = json_array_size(es);
    if (count && !(info->entries = cpex__calloc(count, sizeof *info->entries)))
        return bad(r, "out of memory");
    for (size_t i = 0; i < count; i++) {
        info->entry_count = i + 1;
        if (!entry(r, json_array_get(es, i), &info->entries[i]))
            return false;
    }
    if (info->usable && info->problem_count)
        return bad(r, "usable with problems");
    return true;
}

/* ------------------------------------------------------------------ */
/* The worker                                                          */
/* ------------------------------------------------------------------ */

/* An info that only says why there is no description. */
static cpex_library_info *failed(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static cpex_library_info *failed(const char *path, const char *fmt, ...)
{
    cpex_library_info *info = cpex__calloc(1, sizeof *info);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!info)
        return NULL;
    info->path = cpex__strdup(path);
    info->host_abi = CPEX_ABI_VERSION;
    info->compatible = -1;
    info->problems = cpex__calloc(1, sizeof *info->problems);
    if (info->problems && (info->problems[0] = cpex__strdup(msg)))
        info->problem_count = 1;
    if (!info->path || !info->problem_count) {
        cpex_library_info_free(info);
        return NULL;
    }
    return info;
}

/* Read the worker's output until it closes it, at most until `deadline`. */
static char *read_all(int fd, int pidfd, int64_t deadline, size_t *len, bool *late)
{
    size_t cap = 65536, n = 0;
    char *buf = cpex__malloc(cap + 1);
    *late = false;
    while (buf) {
        int64_t left = deadline - cpex__now_ns();
        if (left <= 0) {
            *late = true;
            break;
        }
        struct pollfd pf = {fd, POLLIN, 0};
        int rc = poll(&pf, 1, (int)(left / 1000000) + 1);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc == 0)
            continue;
        if (n == cap) {
            if (cap >= DESCRIBE_MAX_OUTPUT)
                break;
            char *nb = cpex__realloc(buf, cap * 2 + 1);
            if (!nb) {
                cpex__free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    (void)pidfd;
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

cpex_status cpex_library_describe_sandboxed(const char *path, const char *const *exported_symbols,
                                            const char *worker_path, double timeout,
                                            cpex_library_info **out, cpex_error *err)
{
    if (!path || !out)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                               "cpex_library_describe_sandboxed: path and out are required");
    *out = NULL;
    char why[700];
    /* The file checks and the hash are made here, where no code of the
       library runs: a FIFO or device never reaches the worker, and the
       hash is not the word of a process the library's constructors ran in. */
    char hex[CPEX__SHA256_HEX + 1] = "";
    cpex__libfile file = {-1, {0}};
    switch (cpex__libfile_open(&file, path, why, sizeof why)) {
    case CPEX_LIBFILE_MISSING:
        *out = failed(path, "cannot load '%s': the file does not exist; check the path", path);
        return *out ? CPEX_OK : cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
    case CPEX_LIBFILE_OTHER:
        *out = failed(path, "cannot load '%s': %s", path, why);
        return *out ? CPEX_OK : cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
    case CPEX_LIBFILE_OK: break;
    }
    if (cpex__libfile_sha256(&file, hex, why, sizeof why) != 0)
        hex[0] = '\0'; /* the worker's own read reports the problem */
    cpex__libfile_close(&file);
    char *worker = cpex__iso_worker_find(worker_path, why, sizeof why);
    if (!worker) {
        *out = failed(path, "cannot describe '%s' in a sandbox: %s", path, why);
        return *out ? CPEX_OK : cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
    }
    size_t nsym = 0;
    while (exported_symbols && exported_symbols[nsym])
        nsym++;
    char **argv = cpex__calloc(nsym + 4, sizeof *argv);
    int pipefd[2] = {-1, -1};
    if (!argv || pipe2(pipefd, O_CLOEXEC) != 0) {
        cpex__free(argv);
        cpex__free(worker);
        return cpex__error_add(err, CPEX_E_NOMEM, NULL, "cannot start describing '%s': %s", path,
                               strerror(errno));
    }
    argv[0] = worker;
    argv[1] = "--describe";
    argv[2] = (char *)path;
    for (size_t i = 0; i < nsym; i++)
        argv[3 + i] = (char *)exported_symbols[i];
    pid_t pid = cpex__iso_spawn(worker, argv, -1, pipefd[1], why, sizeof why);
    close(pipefd[1]);
    cpex__free(argv);
    cpex__free(worker);
    if (pid < 0) {
        close(pipefd[0]);
        *out = failed(path, "cannot describe '%s' in a sandbox: %s", path, why);
        return *out ? CPEX_OK : cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
    }
    int pidfd = cpex__iso_pidfd_open(pid);
    int64_t deadline = cpex__deadline_add(
        cpex__now_ns(), cpex__seconds_to_ns(timeout > 0 ? timeout : DESCRIBE_DEFAULT_TIMEOUT));
    size_t len = 0;
    bool late = false;
    char *text = read_all(pipefd[0], pidfd, deadline, &len, &late);
    close(pipefd[0]);
    if (late)
        cpex__iso_pidfd_kill(pidfd);
    int sig = -1, status = -1;
    char ended[300] = "";
    if (pidfd >= 0) {
        /* After its output closed, a worker has little left to do; a
           library whose destructor hangs it is killed. */
        struct pollfd pf = {pidfd, POLLIN, 0};
        if (!late && poll(&pf, 1, 2000) == 0)
            cpex__iso_pidfd_kill(pidfd);
        cpex__iso_pidfd_reap(pidfd, 1, &sig, &status, ended, sizeof ended);
        close(pidfd);
    }
    cpex_library_info *info = NULL;
    if (late) {
        info = failed(path,
                      "describing '%s' did not finish within %.0f s: the library's "
                      "constructors do not return (the worker reading it was killed)",
                      path, timeout > 0 ? timeout : DESCRIBE_DEFAULT_TIMEOUT);
    } else if (sig >= 0 || status != 0) {
        info = failed(path,
                      "the worker reading '%s' %s: the library's constructors crashed or "
                      "ended the process (nothing of it ran in this process)",
                      path, ended[0] ? ended : "ended without a description");
    } else {
        json_error_t je;
        json_t *doc = text ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &je) : NULL;
        rd r = {""};
        info = cpex__calloc(1, sizeof *info);
        if (info && (!doc || !from_json(&r, doc, info))) {
            cpex_library_info_free(info);
            info = failed(path,
                          "the description of '%s' made in the sandbox cannot be read (%s); "
                          "the library may have written to the worker's output",
                          path, doc ? r.why : "not JSON");
        }
        json_decref(doc);
    }
    cpex__free(text);
    if (info) {
        cpex__free(info->sha256); /* the worker's: ours is the one to trust */
        info->sha256 = hex[0] ? cpex__strdup(hex) : NULL;
    }
    *out = info;
    return info ? CPEX_OK : cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
}
