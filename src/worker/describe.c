/*
 * describe.c — `cpex-worker --describe LIBRARY [SYMBOL...]`, for `cpex
 * inspect` (cpex_library_describe_sandboxed): the loader's own
 * cpex_library_describe, run inside the worker's sandbox, so that the
 * library's constructors run here — never in the inspecting process — and
 * can read nothing but the library and the system libraries, write
 * nothing, open no socket and start nothing.
 *
 * The description goes out as one JSON object on the descriptor that was
 * standard output; standard output itself is joined to standard error
 * before the library is opened, so a constructor's printf cannot mix into
 * it by accident.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jansson.h>

#include "cpex/loader.h"
#include "worker/worker.h"

static json_t *opt(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *strings(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i] ? v[i] : ""));
    return a;
}

static json_t *to_json(const cpex_library_info *info, const char *sandbox)
{
    json_t *entries = json_array();
    for (size_t i = 0; entries && i < info->entry_count; i++) {
        const cpex_library_entry *e = &info->entries[i];
        json_array_append_new(
            entries, json_pack("{s:s,s:s,s:b,s:s,s:o,s:o,s:o,s:o}", "entry", e->entry, "symbol",
                               e->symbol, "exported", e->exported, "kind", e->kind, "display_name",
                               opt(e->display_name), "version", opt(e->version), "description",
                               opt(e->description), "hooks", strings(e->hooks, e->hook_count)));
    }
    return json_pack(
        "{s:s,s:b,s:I,s:b,s:b,s:I,s:i,s:o,s:o,s:o,s:o,s:b,s:s}", "path", info->path, "loaded",
        info->loaded, "host_abi", (json_int_t)info->host_abi, "has_manifest", info->has_manifest,
        "abi_known", info->abi_known, "abi_version", (json_int_t)info->abi_version, "compatible",
        info->compatible, "build_info", opt(info->build_info), "entries", entries, "problems",
        strings(info->problems, info->problem_count), "notes",
        strings(info->notes, info->note_count), "usable", info->usable, "sandbox", sandbox);
}

int wk_describe_main(int argc, char **argv)
{
    const char *path = argv[2];
    int out = dup(1);
    if (out < 0 || dup2(2, 1) < 0)
        return 70;
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    wk_sandbox_req req;
    memset(&req, 0, sizeof req);
    req.library = path;
    wk_sandbox_res res;
    wk_sandbox_apply(&req, &res);
    if (res.error[0]) {
        fprintf(stderr, "cpex-worker: %s\n", res.error);
        return 71;
    }
    cpex_library_info *info = NULL;
    cpex_error err = CPEX_ERROR_INIT;
    if (cpex_library_describe(path, (const char *const *)(argv + 3), &info, &err) != CPEX_OK) {
        fprintf(stderr, "cpex-worker: %s\n", cpex_error_message(&err));
        return 72;
    }
    json_t *doc = to_json(info, res.summary);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (!text)
        return 72;
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(out, text + done, len - done);
        if (n <= 0)
            return 73;
        done += (size_t)n;
    }
    /* Leave without the library's destructors or atexit handlers: what
       they might do is nobody's business here. */
    _exit(0);
}
