/*
 * cpex/reload.h — changing a manager's configuration while it serves:
 * reloads, watching a file, generations, and asking what routing would
 * run for an entity.
 *
 * A reload builds the new registry beside the old one — every new plugin
 * created, initialized (when the manager is) and checked — and publishes
 * it in one atomic step: invokes already running finish on the registry
 * they started with, later ones see all of the new one. A configuration
 * that fails anywhere publishes nothing and the old one keeps serving.
 * Plugins whose entry is unchanged keep their instance and its state.
 * docs/configuration.md ("Reload") has the rules.
 */
#ifndef CPEX_RELOAD_H
#define CPEX_RELOAD_H

#include "cpex/export.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "cpex/error.h"
#include "cpex/extensions.h"
#include "cpex/manager.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The generation of the registry invokes use now. Every load, reload,
 * registration and unregistration publishes a new registry whose
 * generation is one more; a reload advances it exactly once. 0 before the
 * first change. (Registrations in a row are published as one registry when
 * the registry is next read; its generation counts each of them.) The result of an invoke carries the generation it ran on.
 * [thread: any]
 */
CPEX_API uint64_t cpex_manager_generation(const cpex_manager *manager);

/**
 * Replace what earlier loads and reloads brought in with the configuration
 * in file `path` (plugins registered from code, factories and payload
 * types stay). Plugins whose entry is unchanged — name, kind, config, mode,
 * priority, on_error, timeout, capabilities, hooks, and the same artifact
 * (for `lib:`, the library file's device, inode, size and modification
 * time) — keep their instance and state; the others are created (and
 * initialized when the manager is) before anything is published; removed
 * and replaced ones are shut down and destroyed after the last invoke
 * that uses them. The routing (routes, groups, settings, conditions) is
 * the file's. On failure nothing changes and `err` holds every problem.
 * Reloads, loads and registrations are serialized.
 * Errors: as cpex_manager_load_file (CPEX_E_EXISTS when a plugin of the
 * file has the name of a plugin registered from code).
 * [thread: any but a handler's; not from inside a reload callback's own
 * watcher stop]
 */
CPEX_API cpex_status cpex_manager_reload_file(cpex_manager *manager, const char *path,
                                              cpex_error *err);

/** As cpex_manager_reload_file, from `len` bytes of YAML (source, base_dir as for load_string). */
CPEX_API cpex_status cpex_manager_reload_string(cpex_manager *manager, const char *yaml, size_t len,
                                                const char *source, const char *base_dir,
                                                cpex_error *err);

/** What happened in one reload attempt (or to the watch). */
typedef enum cpex_reload_event_kind {
    CPEX_RELOAD_APPLIED = 0,       /* a configuration was published (generation advanced) */
    CPEX_RELOAD_FAILED = 1,        /* a configuration was refused; the previous one serves */
    CPEX_RELOAD_UNCHANGED = 2,     /* the watcher read the content already applied: nothing done */
    CPEX_RELOAD_WATCH_LOST = 3,    /* the watch broke (directory gone, inotify error): retrying */
    CPEX_RELOAD_WATCH_RESTORED = 4 /* the watch is in place again (the file is read again) */
} cpex_reload_event_kind;

/** One event, valid during the callback only. */
typedef struct cpex_reload_event {
    uint32_t struct_size;
    cpex_reload_event_kind kind;
    const char *path;    /* the file, or the source name of a string */
    uint64_t generation; /* the generation serving after the attempt */
    /**
     * What went wrong (FAILED, WATCH_LOST) or a short note; never NULL.
     * It names files, lines, plugins and keys but never quotes the
     * configuration's text: every quoted span is replaced by '…', so a
     * value in the file (a token, a URL) cannot reach a log this way.
     */
    const char *message;
    bool from_watcher; /* made by the watcher thread, not by a reload call */
} cpex_reload_event;

/**
 * Called after every reload attempt (by a reload function or the
 * watcher) and on watch changes, on the thread that made it (the
 * watcher's thread for watched files), after the manager's lock is
 * released. It may invoke and read status; it must not free the manager.
 */
typedef void (*cpex_reload_fn)(void *user, const cpex_reload_event *event);

/** Set the reload callback (replacing the previous one; NULL: none). [thread: any] */
CPEX_API void cpex_manager_on_reload(cpex_manager *manager, cpex_reload_fn fn, void *user);

/** Reload counters. Initialize with cpex_reload_status_init. */
typedef struct cpex_reload_status {
    uint32_t struct_size;
    uint64_t successes;      /* reloads applied */
    uint64_t failures;       /* reloads refused */
    uint64_t unchanged;      /* watcher reads skipped: same content as applied */
    int64_t last_success_ns; /* CLOCK_REALTIME of the last applied reload, ns; 0: never */
    uint64_t generation;     /* cpex_manager_generation() */
    bool watching;           /* a watch was started and not stopped */
    bool watcher_alive;      /* its inotify watch is in place */
    char watched_path[1024]; /* the watched file ("" when none) */
    char last_error[1024];   /* the last failure, redacted as event messages are; "" none */
} cpex_reload_status;

static inline void cpex_reload_status_init(cpex_reload_status *status)
{
    memset(status, 0, sizeof *status);
    status->struct_size = (uint32_t)sizeof *status;
}

/**
 * Fill `status`. Errors: CPEX_E_INVALID (NULL, or a struct_size smaller
 * than this layout). [thread: any]
 */
CPEX_API cpex_status cpex_manager_reload_status(const cpex_manager *manager,
                                                cpex_reload_status *status);

/**
 * Reload from `path` now (as cpex_manager_reload_file), then keep
 * reloading it whenever it changes, from a thread of the manager's:
 *
 * - the file's directory is watched with inotify (and the directory of
 *   the file it links to), so edits in place, atomic renames over it and
 *   Kubernetes ConfigMap `..data` symlink swaps are all seen;
 * - a burst of changes is one reload: the file is read once no event came
 *   for `debounce_ms` (0: 500 ms), or at the latest 10 × debounce_ms after
 *   the first event of the burst;
 * - content whose hash equals what was applied last is skipped;
 * - an empty read, or a read during which the file changed, is not
 *   applied: it is read again once the file settles (and a configuration
 *   that does not parse is read once more, in case its writer was not
 *   done);
 * - a failed reload keeps the old configuration and is reported;
 * - a watch error (the directory removed, inotify failing) never stops the
 *   host: it is reported, retried every second until the watch is back,
 *   and the file is read then.
 * Every attempt is counted (cpex_manager_reload_status) and reported to
 * the reload callback. The thread is stopped and joined by
 * cpex_manager_watch_stop and by cpex_manager_free.
 * Errors: as cpex_manager_reload_file (nothing is watched then),
 * CPEX_E_EXISTS (already watching: stop first), CPEX_E_IO (inotify or
 * thread unavailable), CPEX_E_INVALID.
 */
CPEX_API cpex_status cpex_manager_watch_file(cpex_manager *manager, const char *path,
                                             uint32_t debounce_ms, cpex_error *err);

/**
 * Stop watching and join the watcher thread (a reload it is making
 * finishes first). CPEX_OK, also when nothing was watched; CPEX_E_STATE
 * when called from the watcher's own thread (a reload callback).
 */
CPEX_API cpex_status cpex_manager_watch_stop(cpex_manager *manager);

/**
 * What routing would run for an invoke of `hook` (NULL: every hook that
 * has plugins) with extensions `ext` (its meta: entity type, name, scope,
 * tags; NULL: an invoke without an entity), and why — for operators and
 * `cpex check`. A new JSON object:
 *
 *   {"generation": 7, "routing_enabled": true, "source": "gateway.yaml",
 *    "entity": {"type": "tool", "name": "hr-lookup", "scope": null, "tags": []},
 *    "hooks": [{"hook": "cmf.tool_pre_invoke",
 *               "route": {"index": 2, "line": 31, "matcher": "tool: hr-*",
 *                         "specificity": 300, "scope": null} | null,
 *               "groups": ["global.policies.all", "groups.pii"],
 *               "plugins": [{"name": "pii", "phase": "sequential", "priority": 10,
 *                            "from": "groups.pii", "override": false}, ...],
 *               "note": "..."}]}
 *
 * NULL on OOM or a NULL manager (with `err`). [thread: any]
 */
CPEX_API json_t *cpex_manager_explain_route(cpex_manager *manager, const char *hook,
                                            const cpex_extensions *ext, cpex_error *err);

/** Plans in the published registry's route cache (0 when routing is off). [thread: any] */
CPEX_API size_t cpex_manager_route_cache_size(const cpex_manager *manager);

#ifdef __cplusplus
}
#endif

#endif /* CPEX_RELOAD_H */
