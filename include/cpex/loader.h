/*
 * cpex/loader.h — the `lib:` scheme: plugins from shared libraries.
 *
 * The loader is a scheme factory; a host turns it on with
 * cpex_loader_register(manager). The core knows nothing of dlopen.
 */
#ifndef CPEX_LOADER_H
#define CPEX_LOADER_H

#include "cpex/export.h"

#include "cpex/error.h"
#include "cpex/manager.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Register the `lib` scheme factory on `manager`. */
CPEX_API cpex_status cpex_loader_register(cpex_manager *manager, cpex_error *err);

#ifdef __cplusplus
}
#endif

#endif /* CPEX_LOADER_H */
