/*
 * lib_factory.h — the `lib:` factory itself, for the layer above the
 * loader: cpex_loader_register (src/isolation/factory.c) registers a
 * factory that runs a plugin in process through cpex__lib_create, or in a
 * worker process — which loads it through cpex__lib_create too, so both
 * apply the very same checks.
 */
#ifndef CPEX_LOADER_LIB_FACTORY_H
#define CPEX_LOADER_LIB_FACTORY_H

#include "cpex/error.h"
#include "cpex/factory.h"

/**
 * Create a plugin from the shared library its `lib:` kind names (the
 * steps are described at the top of lib_factory.c). `factory_data` is
 * NULL or from cpex__lib_factory_data_new: then recent checks of an
 * unchanged file are reused (libcache.h). Ignores request->isolation: the
 * caller decides where this runs.
 */
cpex_status cpex__lib_create(void *factory_data, const cpex_factory_request *req,
                             cpex_factory_product *out, cpex_error *err);

/**
 * The library file a `lib:` kind names, resolved as cpex__lib_create
 * resolves it (relative to `base_dir`, else the current directory;
 * canonical when the file exists). *path is malloc'd (cpex__free).
 * CPEX_E_CONFIG for a kind that does not parse.
 */
/** Data for a registered `lib:` factory (its check cache); NULL on OOM, which only
    costs the reuse. Free with cpex__lib_factory_data_free (a cpex_factory's destroy). */
void *cpex__lib_factory_data_new(void);
void cpex__lib_factory_data_free(void *data);

cpex_status cpex__lib_resolve(const char *kind, const char *base_dir, char **path, cpex_error *err);

/**
 * The artifact identity of a `lib:` kind for reloads (core/registration.h,
 * cpex__identify_fn): the file the kind names now, links followed, as
 * "lib <dev>:<ino>:<size>:<mtime>" in buf. -1 when it cannot be read.
 */
int cpex__lib_identify(const cpex_factory_request *request, char *buf, size_t cap);

#endif
