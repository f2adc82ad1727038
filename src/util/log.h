/*
 * log.h — where libcpex's own log lines go: a sink the host chose (or
 * standard error), filtered by level.
 */
#ifndef CPEX_UTIL_LOG_H
#define CPEX_UTIL_LOG_H

#include <stdint.h>

/** A log destination. `fn` NULL: standard error. Levels are enum cpex_log_level. */
typedef struct cpex__log_sink {
    void (*fn)(void *user, uint32_t level, const char *plugin, const char *message);
    void *user;
    uint32_t min_level; /* lines below this level are dropped */
} cpex__log_sink;

/**
 * Format and emit one line. `sink` NULL: standard error at CPEX_LOG_WARN and
 * above. `plugin` may be NULL. Text is cut at 2 KiB.
 */
void cpex__log(const cpex__log_sink *sink, uint32_t level, const char *plugin, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** "debug", "info", "warn" or "error". */
const char *cpex__log_level_name(uint32_t level);

#endif
