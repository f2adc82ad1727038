/* log.c — see log.h. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>

#include "cpex/abi.h"
#include "util/text.h"

const char *cpex__log_level_name(uint32_t level)
{
    switch (level) {
    case CPEX_LOG_DEBUG: return "debug";
    case CPEX_LOG_INFO: return "info";
    case CPEX_LOG_WARN: return "warn";
    default: return "error";
    }
}

void cpex__log(const cpex__log_sink *sink, uint32_t level, const char *plugin, const char *fmt, ...)
{
    uint32_t min = sink ? sink->min_level : CPEX_LOG_WARN;
    if (level < min)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (sink && sink->fn) {
        sink->fn(sink->user, level, plugin, msg);
        return;
    }
    /* No sink: the line goes to a terminal, perhaps. The plugin's name (from
       the operator's YAML) and the message (often a plugin's own words) are
       escaped, so that neither can forge a line or steer the terminal. */
    char text[2 * sizeof msg], name[256]; /* cut with "..." if escapes double it */
    cpex__text_escape(text, sizeof text, msg);
    if (plugin) {
        cpex__text_escape(name, sizeof name, plugin);
        fprintf(stderr, "cpex: [%s] plugin '%s': %s\n", cpex__log_level_name(level), name, text);
    } else {
        fprintf(stderr, "cpex: [%s] %s\n", cpex__log_level_name(level), text);
    }
}
