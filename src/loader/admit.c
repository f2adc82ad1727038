/* admit.c — see admit.h. */
#include "loader/admit.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cpex/abi.h"
#include "loader/trust.h"
#include "util/alloc.h"
#include "util/errors.h"

/* Whether a request (perhaps built by a host against an older header)
   has `field`. */
#define REQ_HAS(req, field)                                                                        \
    ((req)->struct_size >= offsetof(cpex_factory_request, field) + sizeof((req)->field))

/* Who could replace the file (`found`, NULL: nobody): a warning, or under
   strict_permissions a refusal. */
static cpex_status judge_trust(const char *found, const char *path, const cpex_factory_request *req,
                               cpex_error *err)
{
    if (!found)
        return CPEX_OK;
    if (REQ_HAS(req, strict_permissions) && req->strict_permissions)
        return cpex__error_add(err, CPEX_E_LOAD, NULL,
                               "refusing library '%s': users other than root and the host's "
                               "own could replace it (plugin_settings.strict_permissions is "
                               "on)\n"
                               "  %s\n"
                               "  hint: fix the ownership and modes above, or keep the plugin "
                               "in a directory only root can write",
                               path, found);
    if (req->log) {
        char line[2048];
        snprintf(line, sizeof line,
                 "library '%s' could be replaced by users other than root and the host's own: "
                 "%s. It is loaded anyway; plugin_settings.strict_permissions: true refuses "
                 "such a library",
                 path, found);
        req->log(req->log_ctx, CPEX_LOG_WARN, line);
    }
    return CPEX_OK;
}

/* The pin, compared with `hex`, the hash of the file about to be loaded. */
static cpex_status compare_pin(const char *hex, const char *path, const char *pin, cpex_error *err)
{
    if (strcmp(hex, pin) == 0) /* the configuration keeps pins in lowercase */
        return CPEX_OK;
    return cpex__error_add(err, CPEX_E_LOAD, NULL,
                           "library '%s' does not match its pinned sha256\n"
                           "  pinned: %s\n"
                           "  file:   %s\n"
                           "  hint: if the library was updated on purpose, pin the new hash "
                           "(`cpex inspect` prints it); if not, find out who changed it",
                           path, pin, hex);
}

cpex_status cpex__admit_library(cpex__libfile *f, const char *path, const char *as_written,
                                const cpex_factory_request *req, int *missing,
                                cpex__libcheck *found, cpex_error *err)
{
    char why[600];
    *missing = 0;
    switch (cpex__libfile_open(f, path, why, sizeof why)) {
    case CPEX_LIBFILE_OK: break;
    case CPEX_LIBFILE_MISSING: *missing = 1; return CPEX_E_LOAD;
    case CPEX_LIBFILE_OTHER:
        return cpex__error_add(err, CPEX_E_LOAD, NULL, "cannot load library '%s': %s", path, why);
    }
    char trust[1536];
    bool trusted = cpex__trust_check(&f->st, path, as_written, trust, sizeof trust) == 0;
    cpex_status st = judge_trust(trusted ? NULL : trust, path, req, err);
    char hex[CPEX__SHA256_HEX + 1] = "";
    if (st == CPEX_OK && cpex__admit_pinned(req)) {
        if (cpex__libfile_sha256(f, hex, why, sizeof why) != 0)
            st = cpex__error_add(err, CPEX_E_LOAD, NULL, "library '%s' %s", path, why);
        else
            st = compare_pin(hex, path, req->sha256, err);
    }
    if (st != CPEX_OK) {
        cpex__libfile_close(f);
        return st;
    }
    if (found) {
        memset(found, 0, sizeof *found);
        found->st = f->st;
        memcpy(found->sha256, hex, sizeof hex);
        found->resolved = cpex__strdup(path);
        found->trust = trusted ? NULL : cpex__strdup(trust);
        if (!found->resolved || (!trusted && !found->trust))
            cpex__libcheck_clear(found); /* nothing to remember: no harm */
    }
    return CPEX_OK;
}

cpex_status cpex__admit_cached(const cpex__libcheck *check, const cpex_factory_request *req,
                               cpex_error *err)
{
    cpex_status st = judge_trust(check->trust, check->resolved, req, err);
    if (st == CPEX_OK && cpex__admit_pinned(req))
        st = compare_pin(check->sha256, check->resolved, req->sha256, err);
    return st;
}

int cpex__admit_pinned(const cpex_factory_request *req)
{
    return REQ_HAS(req, sha256) && req->sha256;
}

cpex_status cpex__admit_loaded(const cpex__libfile *f, const char *path, cpex_error *err)
{
    char why[400];
    if (cpex__libfile_same(f, path, why, sizeof why) == 0)
        return CPEX_OK;
    return cpex__error_add(err, CPEX_E_LOAD, NULL,
                           "library '%s' %s\n"
                           "  hint: load it again once nothing rewrites it; replace plugin "
                           "files by renaming a complete new file over them, never in place",
                           path, why);
}
