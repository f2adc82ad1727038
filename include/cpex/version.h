/*
 * cpex/version.h — version of the libcpex library (not of the plugin ABI,
 * which abi.h carries).
 */
#ifndef CPEX_VERSION_H
#define CPEX_VERSION_H

#define CPEX_VERSION_STRING "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

/** The version of the linked library, e.g. "0.1.0". */
const char *cpex_version(void);

#ifdef __cplusplus
}
#endif

#endif /* CPEX_VERSION_H */
