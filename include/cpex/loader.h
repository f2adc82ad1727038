/*
 * cpex/loader.h — the `lib:` scheme: plugins from shared libraries.
 *
 * The loader is a scheme factory; a host turns it on with
 * cpex_loader_register(manager). The core knows nothing of dlopen.
 *
 * cpex_library_describe tells what a plugin library holds without creating
 * any plugin (`cpex inspect` is built on it): its manifest, read with the
 * same checks a real load applies, its entry points and whether this host
 * can load it.
 */
#ifndef CPEX_LOADER_H
#define CPEX_LOADER_H

#include "cpex/export.h"

#include <stddef.h>
#include <stdint.h>

#include "cpex/error.h"
#include "cpex/manager.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Register the `lib` scheme factory on `manager`. */
CPEX_API cpex_status cpex_loader_register(cpex_manager *manager, cpex_error *err);

/**
 * One entry point of a library, as cpex_library_describe found it. Every
 * string is owned by the cpex_library_info it belongs to.
 */
typedef struct cpex_library_entry {
    /** The entry name: "" for the default entry point, else a C identifier. Never NULL. */
    char *entry;
    /** Its symbol: "cpex_plugin_create" or "cpex_plugin_create_<entry>". Never NULL. */
    char *symbol;
    /**
     * 1 when the library itself exports `symbol` as a function (or as a
     * symbol whose type the platform cannot tell); 0 when it does not, when
     * only a library it depends on defines it, or when it is not a function
     * — a problem of the info then says which.
     */
    int exported;
    /** What an operator writes to load this entry: "lib:<path>[?entry=<entry>]". Never NULL. */
    char *kind;
    /** From the manifest; NULL for a library without one. */
    char *display_name;
    /** From the manifest; NULL when not given, or without a manifest. */
    char *version;
    /** From the manifest; NULL when not given, or without a manifest. */
    char *description;
    /**
     * The hooks the manifest says the entry serves: hook_count names (hooks
     * is NULL when hook_count is 0). Without a manifest (has_manifest 0 in
     * the info) they are unknown until a plugin is created, and both are 0.
     */
    size_t hook_count;
    char **hooks;
} cpex_library_entry;

/**
 * What cpex_library_describe found. Allocated by the library (a later
 * release may append fields); release with cpex_library_info_free. Every
 * pointer in it is owned by it.
 */
typedef struct cpex_library_info {
    /** The path that was opened (a name without '/' gets "./" in front). Never NULL. */
    char *path;
    /** 1 when dlopen (RTLD_NOW | RTLD_LOCAL) succeeded; else a problem says why. */
    int loaded;
    /** The plugin ABI of this host (CPEX_ABI_VERSION). */
    uint32_t host_abi;
    /** 1 when the library itself exports a manifest (cpex_plugin_list). */
    int has_manifest;
    /** 1 when the manifest's ABI version could be read into abi_version. */
    int abi_known;
    /** The ABI the library was built for (CPEX_ABI_MAJOR/MINOR); 0 unless abi_known. */
    uint32_t abi_version;
    /** 1 this host may load it (same major, minor not newer), 0 it may not, -1 unknown. */
    int compatible;
    /** The manifest's build information; NULL when none. */
    char *build_info;
    /**
     * The entry points: those the manifest lists (in its order; with an
     * invalid manifest, those read before the problem), or, without a
     * manifest, the exported entry point symbols found (the default one,
     * and those among the `exported_symbols` the caller passed).
     */
    size_t entry_count;
    cpex_library_entry *entries;
    /**
     * What stops the library from loading here, one line each, saying what
     * to do. Any problem makes `usable` 0.
     */
    size_t problem_count;
    char **problems;
    /** What is worth knowing but does not stop a load, one line each. */
    size_t note_count;
    char **notes;
    /** 1 when a configuration naming one of the entries should load (no problems). */
    int usable;
    /** NULL when the library was read in this process (cpex_library_describe);
        else the protections of the sandboxed worker that read it (one line). */
    char *sandbox;
    /* ---- appended ---- */
    /**
     * The SHA-256 of the file, 64 lowercase hex digits, computed on the
     * very descriptor that was checked and then loaded: what a plugin's
     * `sha256:` pins. NULL when the path is not a readable regular file.
     */
    char *sha256;
} cpex_library_info;

/**
 * Describe the plugin library at `path` without creating any plugin:
 * check it as a load does (a regular file, opened without blocking: a
 * FIFO, socket, directory or device is a problem, never a hang; who other
 * than root and the host's user could replace it, as a note), hash it
 * (`sha256`), open it (dlopen RTLD_NOW | RTLD_LOCAL; the library's
 * constructors run, no entry point does), read its manifest with the checks a real load applies
 * (every pointer is followed only inside the library's own readable
 * memory), look up its entry points, check its ABI against this host's,
 * and close it. Never searches the system library path: a `path` without
 * '/' is taken relative to the current directory.
 *
 * `exported_symbols` (may be NULL) is a NULL-terminated list of symbol
 * names the caller knows the file exports (e.g. read from its ELF dynamic
 * symbol table): the entry points among them are looked up as well, so a
 * library without a manifest can show its named entries, and one with a
 * manifest gets a note for each entry point it exports but does not list.
 * Without it, a library without a manifest shows its default entry point
 * only (named ones cannot be guessed).
 *
 * Returns CPEX_OK and `*out` whenever a description could be made — also
 * for a file that is missing, is no library, or holds a hostile manifest:
 * then `usable` is 0 and `problems` say why. Returns CPEX_E_INVALID for a
 * NULL argument and CPEX_E_NOMEM when memory runs out (with an item in
 * `err`, which may be NULL, and *out NULL).
 */
CPEX_API cpex_status cpex_library_describe(const char *path, const char *const *exported_symbols,
                                           cpex_library_info **out, cpex_error *err);

/**
 * As cpex_library_describe, but none of the library's code runs in the
 * calling process: the description is made by the cpex-worker program
 * (`--describe`) inside the sandbox isolated plugins run in
 * (docs/isolation.md) — the library's constructors can read only the
 * library and the system libraries, write nothing, open no socket and
 * start no process — and read back as strictly as any reply of a worker.
 * `worker_path` NULL finds the worker as for isolated plugins
 * ($CPEX_WORKER, or beside libcpex). `timeout` (seconds; <= 0: 10) bounds
 * the whole description: a constructor that never returns is killed.
 *
 * Returns CPEX_OK and `*out` whenever a description could be made — also
 * when the worker cannot be found, the library crashes it, hangs it or
 * garbles its output: then `usable` is 0 and a problem says what happened.
 * `sandbox` of the info names the protections that were in force. Errors
 * as cpex_library_describe.
 */
CPEX_API cpex_status cpex_library_describe_sandboxed(const char *path,
                                                     const char *const *exported_symbols,
                                                     const char *worker_path, double timeout,
                                                     cpex_library_info **out, cpex_error *err);

/** Free `info` and everything in it. NULL is allowed. */
CPEX_API void cpex_library_info_free(cpex_library_info *info);

#ifdef __cplusplus
}
#endif

#endif /* CPEX_LOADER_H */
