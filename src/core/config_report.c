/*
 * config_report.c — where every problem of a configuration check is
 * reported (config_check.h): errors go to the caller's cpex_error, each
 * with the source, line and column, the plugin and the key; warnings go
 * to the configuration. It implements the YAML tree's cpex__ydiag, so the
 * tree, the scalar and typed readers and the routing files report here
 * too.
 *
 * At most CFG_MAX_ERRORS errors are reported, then one "too many"; the
 * rest are still counted, so the check fails all the same.
 */
#include "core/config_check.h"

#include <stdarg.h>
#include <stdio.h>

#include "core/routing_config.h"
#include "util/alloc.h"
#include "util/errors.h"

#define CFG_MAX_ERRORS 100

/* Report a configuration problem at `pos`, naming the current plugin. */
void cpex__cfg_report_at(cpex__cfg_ctx *c, cpex__pos pos, const char *key, const char *fmt,
                         va_list ap)
{
    c->errors++;
    if (c->muted)
        return;
    if (c->errors > CFG_MAX_ERRORS) {
        c->muted = true;
        cpex__where w = {c->source, 0, 0, NULL, NULL};
        cpex__error_add(c->err, CPEX_E_CONFIG, &w,
                        "too many errors; only the first %d are shown, fix those first",
                        CFG_MAX_ERRORS);
        return;
    }
    char body[2048];
    int off = 0;
    if (!c->plugin && c->plugin_no > 0)
        off = snprintf(body, sizeof body, "plugin #%zu: ", c->plugin_no);
    if (off < 0)
        off = 0;
    vsnprintf(body + off, sizeof body - (size_t)off, fmt, ap);
    cpex__where w = {c->source, pos.line, pos.column, c->plugin, key};
    cpex__error_add(c->err, CPEX_E_CONFIG, &w, "%s", body);
}

void cpex__cfg_report(cpex__cfg_ctx *c, const cpex__ynode *at, const char *key, const char *fmt,
                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    cpex__cfg_report_at(c, cpex__ynode_pos(at), key, fmt, ap);
    va_end(ap);
}

/* The tree's cpex__ydiag: the YAML files report through here. */
void cpex__cfg_report_diag(cpex__ydiag *diag, cpex__pos pos, const char *key, const char *fmt,
                           va_list ap)
{
    cpex__cfg_report_at((cpex__cfg_ctx *)(void *)diag, pos, key, fmt, ap);
}

/* Add a warning "<file>:<line>:<col>: [plugin '<p>': ]<text>" to the config. */
static void warn_v(cpex__cfg_ctx *c, const cpex__ynode *at, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
void cpex__cfg_warn(cpex__cfg_ctx *c, const cpex__ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    warn_v(c, at, fmt, ap);
    va_end(ap);
}

/* The routing files' warnings (routing_config.h): `diag` is the ctx's first member. */
void cpex__config_warn(cpex__ydiag *diag, const cpex__ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    warn_v((cpex__cfg_ctx *)(void *)diag, at, fmt, ap);
    va_end(ap);
}

static void warn_v(cpex__cfg_ctx *c, const cpex__ynode *at, const char *fmt, va_list ap)
{
    char body[1024];
    vsnprintf(body, sizeof body, fmt, ap);
    cpex__pos p = cpex__ynode_pos(at);
    char who[300] = "";
    if (c->plugin)
        snprintf(who, sizeof who, "plugin '%.256s': ", c->plugin);
    else if (c->plugin_no > 0)
        snprintf(who, sizeof who, "plugin #%zu: ", c->plugin_no);
    char *msg = p.line > 0
                    ? cpex__asprintf("%s:%d:%d: %s%s", c->source, p.line, p.column, who, body)
                    : cpex__asprintf("%s: %s%s", c->source, who, body);
    cpex__config *cfg = c->cfg;
    char **w = msg ? cpex__realloc(cfg->warnings, (cfg->warning_count + 2) * sizeof *w) : NULL;
    if (!w) {
        cpex__free(msg);
        c->diag.nomem = true;
        return;
    }
    w[cfg->warning_count++] = msg;
    w[cfg->warning_count] = NULL;
    cfg->warnings = w;
}
