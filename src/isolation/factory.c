/*
 * factory.c — the `lib:` scheme as a host registers it: a plugin runs in
 * process through the loader (cpex__lib_create), or, when the operator
 * wrote `isolation: process`, in a worker process behind a proxy
 * (proxy.h) — the worker loads the library with the same loader code.
 */
#include "cpex/loader.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "isolation/proto.h"
#include "isolation/proxy.h"
#include "isolation/spawn.h"
#include "isolation/wire.h"
#include "core/registration.h"
#include "loader/lib_factory.h"
#include "model/json_dump.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/errors.h"

/* A sandbox path as the worker gets it: absolute, relative ones taken
   against the configuration's directory (as library paths are). */
static char *absolute(const char *path, const char *base_dir)
{
    if (path[0] == '/')
        return cpex__strdup(path);
    if (base_dir && *base_dir)
        return cpex__asprintf("%s/%s", base_dir, path);
    char cwd[PATH_MAX];
    return getcwd(cwd, sizeof cwd) ? cpex__asprintf("%s/%s", cwd, path) : cpex__strdup(path);
}

static bool write_paths(cpex__iso_wr *w, const char *const *paths, size_t n, const char *base_dir)
{
    cpex__iso_wr_u32(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        char *a = absolute(paths[i], base_dir);
        if (!a)
            return false;
        cpex__iso_wr_cstr(w, a);
        cpex__free(a);
    }
    return true;
}

/* The LOAD request of every start of this plugin (proto.h). */
static uint8_t *load_request(const cpex_factory_request *req, const cpex_isolation_options *iso,
                             size_t *len)
{
    const cpex_plugin_config *pc = req->config;
    char *config = pc->config_json.ptr ? NULL : cpex__json_dump(req->config_block, 0);
    const char *config_text = pc->config_json.ptr ? pc->config_json.ptr : config ? config : "null";
    size_t config_len = pc->config_json.ptr ? pc->config_json.len : strlen(config_text);
    size_t cap = 4096 + config_len + pc->kind.len + pc->name.len;
    for (size_t i = 0; i < iso->read_path_count; i++)
        cap += strlen(iso->read_paths[i]) + PATH_MAX;
    for (size_t i = 0; i < iso->write_path_count; i++)
        cap += strlen(iso->write_paths[i]) + PATH_MAX;
    for (size_t i = 0; i < pc->hook_count; i++)
        cap += pc->hooks[i].len + 8;
    cap += (req->base_dir ? strlen(req->base_dir) : 0) + (req->source ? strlen(req->source) : 0);
    uint8_t *buf = cap <= ISO_AREA_SIZE ? cpex__malloc(cap) : NULL;
    if (!buf) {
        cpex__free(config);
        return NULL;
    }
    cpex__iso_wr w;
    cpex__iso_wr_init(&w, buf, cap);
    cpex__iso_wr_u8(&w, ISO_REQ_LOAD);
    cpex__iso_wr_u32(&w, iso->network);
    cpex__iso_wr_u32(&w, iso->require);
    cpex__iso_wr_u64(&w, iso->memory_mb);
    cpex__iso_wr_u32(&w, iso->open_files);
    cpex__iso_wr_f64(&w, iso->cpu_seconds_per_call);
    bool ok = write_paths(&w, iso->read_paths, iso->read_path_count, req->base_dir) &&
              write_paths(&w, iso->write_paths, iso->write_path_count, req->base_dir);
    cpex__iso_wr_strn(&w, pc->kind.ptr, pc->kind.len);
    cpex__iso_wr_cstr(&w, req->base_dir);
    cpex__iso_wr_cstr(&w, req->source);
    cpex__iso_wr_strn(&w, pc->name.ptr, pc->name.len);
    cpex__iso_wr_u32(&w, pc->mode);
    cpex__iso_wr_i32(&w, pc->priority);
    cpex__iso_wr_u32(&w, (uint32_t)pc->hook_count);
    for (size_t i = 0; i < pc->hook_count; i++)
        cpex__iso_wr_strn(&w, pc->hooks[i].ptr, pc->hooks[i].len);
    cpex__iso_wr_strn(&w, config_text, config_len);
    cpex__iso_wr_u32(&w, req->on_error);
    cpex__free(config);
    if (!ok || w.over) {
        cpex__free(buf);
        return NULL;
    }
    *len = w.len;
    return buf;
}

/* Pass the first start's log lines to the factory's log (the manager's, under the plugin). */
static void pass_notes(cpex__iso_proxy *p, const cpex_factory_request *req)
{
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->pending_count; i++) {
        if (req->log)
            req->log(req->log_ctx, p->pending[i].level, p->pending[i].text);
        cpex__free(p->pending[i].text);
    }
    p->pending_count = 0;
    pthread_mutex_unlock(&p->lock);
}

static void proxy_free_early(cpex__iso_proxy *p)
{
    /* What a first LOAD reply left before the start failed (out of memory
       half way through adopting it). */
    for (size_t i = 0; p->handlers && i < p->handler_count; i++) {
        cpex__free((char *)p->handlers[i].hook);
        cpex__free((char *)p->handlers[i].payload_type);
    }
    cpex__free(p->handlers);
    cpex__free(p->reported_name);
    cpex__free(p->reported_version);
    cpex__free(p->origin);
    cpex__free(p->protections);
    cpex__free(p->name);
    cpex__free(p->worker_path);
    cpex__free(p->load_req);
    cpex_error_cleanup(&p->first_err);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    cpex__free(p);
}

static cpex_status isolated_create(const cpex_factory_request *req,
                                   const cpex_isolation_options *iso, cpex_factory_product *out,
                                   cpex_error *err)
{
    char why[700];
    char *worker = cpex__iso_worker_find(req->worker_path, why, sizeof why);
    if (!worker)
        return cpex__error_add(err, CPEX_E_LOAD, NULL, "isolation: process: %s", why);
    cpex__iso_proxy *p = cpex__calloc(1, sizeof *p);
    if (!p) {
        cpex__free(worker);
        return cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
    }
    cpex_error_init(&p->first_err); /* calloc left struct_size 0: errors would be dropped */
    p->worker_path = worker;
    p->name =
        cpex__strndup(req->config->name.ptr ? req->config->name.ptr : "", req->config->name.len);
    p->channels = iso->workers ? iso->workers : ISO_DEFAULT_WORKERS;
    if (p->channels > ISO_MAX_CHANNELS)
        p->channels = ISO_MAX_CHANNELS;
    p->on_error = req->on_error;
    p->max_crashes =
        iso->max_crashes_per_minute ? iso->max_crashes_per_minute : ISO_DEFAULT_MAX_CRASHES;
    p->load_timeout_ns =
        cpex__seconds_to_ns(iso->load_timeout > 0 ? iso->load_timeout : ISO_DEFAULT_LOAD_TIMEOUT);
    p->host = req->host;
    p->cpu_seconds = iso->cpu_seconds_per_call;
    p->cmd_efd = -1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    p->load_req = load_request(req, iso, &p->load_req_len);
    if (!p->name || !p->load_req) {
        proxy_free_early(p);
        return cpex__error_add(err, CPEX_E_NOMEM, NULL,
                               "out of memory (or a configuration "
                               "larger than the transport's %u MiB)",
                               ISO_AREA_SIZE >> 20);
    }
    cpex_status st = cpex__iso_supervisor_start(p, err);
    pass_notes(p, req);
    if (st != CPEX_OK) {
        proxy_free_early(p);
        return st;
    }

    cpex_plugin_registration *reg = &out->registration;
    reg->struct_size = (uint32_t)sizeof *reg;
    reg->abi_version = CPEX_ABI_VERSION;
    reg->name = p->reported_name;
    reg->version = p->reported_version;
    reg->instance = p;
    reg->initialize = cpex__iso_proxy_initialize;
    reg->shutdown = cpex__iso_proxy_shutdown;
    reg->destroy = cpex__iso_proxy_destroy;
    reg->handler_count = p->handler_count;
    reg->handlers = p->handlers;
    /* An audit sink in the worker: verdicts are forwarded there. */
    reg->verdict = p->has_verdict ? cpex__iso_proxy_verdict : NULL;
    out->origin = cpex__strdup(p->origin);
    out->isolation_info = cpex__asprintf("process (%u worker thread%s): %s", p->channels,
                                         p->channels == 1 ? "" : "s", p->protections);
    out->isolated = 1;
    if (!out->origin || !out->isolation_info) {
        cpex__free(out->origin);
        cpex__free(out->isolation_info);
        out->origin = out->isolation_info = NULL;
        cpex__iso_proxy_destroy(p);
        memset(reg, 0, sizeof *reg);
        return cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory");
    }
    return CPEX_OK;
}

static cpex_status lib_factory(void *data, const cpex_factory_request *req,
                               cpex_factory_product *out, cpex_error *err)
{
    const cpex_isolation_options *iso = NULL;
    if (req && req->struct_size >= offsetof(cpex_factory_request, isolation) + sizeof iso)
        iso = req->isolation;
    if (!iso || iso->mode == CPEX_ISOLATION_NONE)
        return cpex__lib_create(data, req, out, err);
    if (iso->mode != CPEX_ISOLATION_PROCESS)
        return cpex__error_add(err, CPEX_E_CONFIG, NULL,
                               "isolation mode %u is not one this "
                               "library knows (none, process)",
                               iso->mode);
    if (!req->config || !req->config->kind.ptr || !req->host)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                               "lib loader: incomplete factory request (no config, kind or host "
                               "table)");
    return isolated_create(req, iso, out, err);
}

cpex_status cpex_loader_register(cpex_manager *manager, cpex_error *err)
{
    if (!manager)
        return cpex__error_add(err, CPEX_E_INVALID, NULL, "cpex_loader_register: NULL manager");
    cpex_factory f;
    memset(&f, 0, sizeof f);
    f.struct_size = (uint32_t)sizeof f;
    f.create = lib_factory;
    f.data = cpex__lib_factory_data_new(); /* NULL only costs the check cache */
    f.destroy = cpex__lib_factory_data_free;
    cpex_status st = cpex_manager_register_scheme(manager, "lib", &f, err); /* takes f.data,
                                                                                also on failure */
    /* A reload keeps a lib: plugin only while its library file is the same. */
    if (st == CPEX_OK &&
        cpex__register_scheme_identify(manager, "lib", cpex__lib_identify) != CPEX_OK)
        st = cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory registering the lib: loader");
    return st;
}
