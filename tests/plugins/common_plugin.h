/*
 * common_plugin.h — what the look-alike test plugins share.
 *
 * Test plugins are built one .c file per library, so the shared part is a
 * header, included once by each plugin. Before including it, a plugin may
 * define:
 *
 *   TEST_PLUGIN_RAW_ABI        written against <cpex/abi.h> alone (no SDK);
 *                              otherwise <cpex/plugin.h> is included (define
 *                              CPEX_PLUGIN_ABI_MAJOR / _MINOR first to claim
 *                              another ABI);
 *   TEST_PLUGIN_LIVE_COUNT     export `hostile_live_instances`, counted down
 *                              by destroy() (a test holding its own reference
 *                              to the library proves the host destroyed what
 *                              it refused);
 *   TEST_PLUGIN_NAME, _VERSION, _DESCRIPTION
 *                              the whole minimal plugin: a create that
 *                              registers allow_handlers under that name and
 *                              version, and its manifest (CPEX_PLUGIN);
 *                              include the header at the end of the file;
 *                              TEST_PLUGIN_HANDLERS (an array) replaces
 *                              allow_handlers, and TEST_PLUGIN_INITIALIZE
 *                              (an initialize callback) gives the plugin an
 *                              allocated instance (test_new_instance) and
 *                              that callback.
 *
 * It always provides (unused ones cost nothing): allow(), a handler that
 * allows every call; allow_handlers, allow on cmf.tool_pre_invoke; destroy(),
 * which frees the instance; test_new_instance() (SDK plugins); TEST_REGISTER, TEST_RAW_CREATE,
 * TEST_ABORTING_CREATE and TEST_ONE_ENTRY_MANIFEST (below).
 */
#ifndef CPEX_TEST_COMMON_PLUGIN_H
#define CPEX_TEST_COMMON_PLUGIN_H

#include <stdlib.h>

#ifdef TEST_PLUGIN_RAW_ABI
#include <cpex/abi.h>
#define TEST_EXPORT __attribute__((visibility("default")))
#else
#include <cpex/plugin.h>
#define TEST_EXPORT CPEX_EXPORT
#endif

#define TEST_UNUSED __attribute__((unused))

TEST_UNUSED static int32_t allow(void *instance, const cpex_call *call)
{
    (void)instance;
    (void)call;
    return CPEX_ALLOW;
}

TEST_UNUSED static const cpex_handler_reg allow_handlers[] = {
    CPEX_HANDLER("cmf.tool_pre_invoke", allow, "cmf")};

#ifdef TEST_PLUGIN_LIVE_COUNT
TEST_EXPORT int hostile_live_instances;

TEST_UNUSED static void destroy(void *instance)
{
    hostile_live_instances--;
    free(instance);
}
#else
TEST_UNUSED static void destroy(void *instance) { free(instance); }
#endif

#ifndef TEST_PLUGIN_RAW_ABI
/* Allocate a 16-byte instance with destroy() as its destructor; on failure,
   write "out of memory" into err and return CPEX_CREATE_INIT_FAILED. */
static inline int32_t test_new_instance(cpex_plugin_registration *out, char *err, size_t err_cap)
{
    out->instance = malloc(16);
    if (!out->instance) {
        cpex_plugin_errorf(err, err_cap, "out of memory");
        return CPEX_CREATE_INIT_FAILED;
    }
    out->destroy = destroy;
    return CPEX_CREATE_OK;
}
#endif

/* Fill the registration's name, version and `n` handlers; evaluates to
   CPEX_CREATE_OK. TEST_REGISTER: the handlers are a whole array. */
#define TEST_REGISTER_N(out, name_, version_, list_, n)                                            \
    ((out)->name = (name_), (out)->version = (version_), (out)->handler_count = (n),               \
     (out)->handlers = (list_), CPEX_CREATE_OK)
#define TEST_REGISTER(out, name_, version_, list_)                                                 \
    TEST_REGISTER_N(out, name_, version_, list_, sizeof(list_) / sizeof((list_)[0]))

/* The head of a hand-written (no SDK) entry point `fn`, exported, with
   parameters host_abi, host, config, out, err and err_cap; the body follows. */
#define TEST_RAW_CREATE(fn)                                                                        \
    TEST_EXPORT int32_t fn(uint32_t host_abi, const cpex_host_api *host,                           \
                           const cpex_plugin_config *config, cpex_plugin_registration *out,        \
                           char *err, size_t err_cap);                                             \
    int32_t fn(uint32_t host_abi, const cpex_host_api *host, const cpex_plugin_config *config,     \
               cpex_plugin_registration *out, char *err, size_t err_cap)

/* An entry point that must never run (the host must refuse the library
   from its manifest first): it aborts. */
#define TEST_ABORTING_CREATE                                                                       \
    TEST_RAW_CREATE(cpex_plugin_create)                                                            \
    {                                                                                              \
        (void)host_abi, (void)host, (void)config, (void)out, (void)err, (void)err_cap;             \
        abort();                                                                                   \
    }

/* A hand-written manifest of ABI `abi` claiming `count` entries over a
   one-entry array: the default entry, on cmf.tool_pre_invoke. */
#define TEST_ONE_ENTRY_MANIFEST(name_, version_, description_, abi, count)                         \
    static const char *const hooks[] = {"cmf.tool_pre_invoke"};                                    \
    static const cpex_manifest_entry only = {                                                      \
        sizeof(cpex_manifest_entry), 0, "", name_, version_, description_, 1, hooks};              \
    static const cpex_manifest_entry *const entries[] = {&only};                                   \
    TEST_EXPORT extern const cpex_manifest cpex_plugin_list;                                       \
    const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), (abi), (count), entries, NULL}

#ifdef TEST_PLUGIN_NAME
#ifndef TEST_PLUGIN_HANDLERS
#define TEST_PLUGIN_HANDLERS allow_handlers
#endif
static int32_t create(const cpex_host_api *host, const cpex_plugin_config *config,
                      cpex_plugin_registration *out, char *err, size_t err_cap)
{
    (void)host;
    (void)config;
#ifdef TEST_PLUGIN_INITIALIZE
    if (test_new_instance(out, err, err_cap) != CPEX_CREATE_OK)
        return CPEX_CREATE_INIT_FAILED;
    out->initialize = TEST_PLUGIN_INITIALIZE;
#else
    (void)err;
    (void)err_cap;
#endif
    return TEST_REGISTER(out, TEST_PLUGIN_NAME, TEST_PLUGIN_VERSION, TEST_PLUGIN_HANDLERS);
}

CPEX_PLUGIN(create, TEST_PLUGIN_NAME, TEST_PLUGIN_VERSION, TEST_PLUGIN_DESCRIPTION,
            "cmf.tool_pre_invoke")
#endif

#endif /* CPEX_TEST_COMMON_PLUGIN_H */
