/*
 * host_state.h — the state slots of the host table (host_state.c), for the
 * table in host_api.c. Not installed.
 */
#ifndef CPEX_CORE_HOST_STATE_H
#define CPEX_CORE_HOST_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "cpex/abi.h"

int32_t cpex__h_state_get(const cpex_call *call, const char *key, cpex_str *value);
int32_t cpex__h_state_set(const cpex_call *call, const char *key, const void *value, size_t len,
                          int64_t ttl_ms);
int32_t cpex__h_state_incr(const cpex_call *call, const char *key, int64_t delta, int64_t ttl_ms,
                           int64_t *value, int64_t *ttl_left_ms);
int32_t cpex__h_state_delete(const cpex_call *call, const char *key);
int32_t cpex__h_state_set_add(const cpex_call *call, const char *key, const void *member,
                              size_t len, int64_t ttl_ms);
int32_t cpex__h_state_set_members(const cpex_call *call, const char *key, cpex_str **members,
                                  size_t *count);

#endif
