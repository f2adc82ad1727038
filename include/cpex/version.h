/*
 * cpex/version.h — version of the libcpex library (not of the plugin ABI,
 * which abi.h carries).
 */
#ifndef CPEX_VERSION_H
#define CPEX_VERSION_H

#include "cpex/export.h"

#define CPEX_VERSION_STRING "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

/** The version of the linked library, e.g. "0.1.0". */
CPEX_API const char *cpex_version(void);

#ifdef __cplusplus
}
#endif

#endif /* CPEX_VERSION_H */
