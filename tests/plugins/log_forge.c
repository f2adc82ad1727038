/*
 * log_forge.c — text that must not reach a terminal raw. The plugin logs,
 * at warning level, a message with a newline that forges a "summary:" line,
 * a clear-screen escape sequence, a C1 CSI (U+009B), a right-to-left
 * override (U+202E) and a byte that is not UTF-8 — in initialize (for
 * `cpex check`'s warnings) and in every handler call (for `cpex run`'s
 * stderr) — and its manifest's description holds the same kind of bytes
 * (for `cpex inspect`). Every byte of it must come out escaped.
 */
#include <stdlib.h>

#include <cpex/plugin.h>

#define FORGED                                                                                     \
    "forged\nsummary: 0 requests, 0 allowed, 0 denied, 0 errors, 0 soft errors, 0.0 ms"            \
    "\x1b[2J\xc2\x9b"                                                                              \
    "31m\xe2\x80\xae"                                                                              \
    "txt.exe\xff"

typedef struct forger {
    const cpex_host_api *host;
} forger;

static int32_t on_call(void *instance, const cpex_call *call)
{
    forger *self = instance;
    cpex_logf(self->host, call, CPEX_LOG_WARN, "%s", FORGED);
    return CPEX_ALLOW;
}

static int32_t initialize(void *instance, char *err, size_t err_cap)
{
    (void)err;
    (void)err_cap;
    forger *self = instance;
    cpex_logf(self->host, NULL, CPEX_LOG_WARN, "%s", FORGED);
    return 0;
}

static void destroy(void *instance) { free(instance); }

static const cpex_handler_reg handlers[] = {CPEX_HANDLER("cmf.tool_pre_invoke", on_call, "cmf")};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)config;
    forger *self = calloc(1, sizeof *self);
    if (!self) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    self->host = host;
    out->name = "log-forge";
    out->version = "1.0.0";
    out->instance = self;
    out->initialize = initialize;
    out->destroy = destroy;
    out->handler_count = 1;
    out->handlers = handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "log-forge", "1.0.0", "manifest text\nusable: yes\x1b]0;title\x07",
            "cmf.tool_pre_invoke")
