/*
 * benchcrash.c — libbenchcrash.so, the plugin of the crash-and-restart
 * figure of cpex_bench_isolation: allows, except when the first text part
 * is "crash", where it dies of SIGSEGV.
 */
#include <string.h>
#include <sys/mman.h>

#include <cpex/plugin.h>

static int32_t maybe_crash(void *instance, const cpex_call *call)
{
    const cpex_cmf_message *m = cpex_call_cmf(call);
    (void)instance;
    if (m && m->part_count && m->parts[0].kind == CPEX_PART_TEXT &&
        cpex_str_eq(m->parts[0].text, "crash")) {
        /* a page that is gone: SIGSEGV, also under the sanitizers */
        char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        munmap(page, 4096);
        *(volatile char *)page = 1;
    }
    return CPEX_ALLOW;
}

static const cpex_handler_reg handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", maybe_crash, "cmf")};

static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)host, (void)config, (void)err, (void)err_cap;
    out->name = "bench-crash";
    out->version = "1.0.0";
    out->handler_count = 1;
    out->handlers = handlers;
    return CPEX_CREATE_OK;
}

CPEX_PLUGIN(create, "bench-crash", "1.0.0", "benchmark: dies on \"crash\"", "cmf.tool_pre_invoke")
