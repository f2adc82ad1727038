/*
 * lib_factory.c — the `lib:` scheme: plugins from shared libraries.
 *
 * One create, step by step (each failure is one error item naming the
 * resolved library path and saying what to do; the manager puts the
 * configuration file, position and the operator's plugin name in front):
 *
 *   1. Parse the kind (kind.c). Bad forms never reach dlopen.
 *   2. Resolve the path: absolute stays; relative — a bare file name too —
 *      is relative to the directory of the configuration file (request
 *      base_dir), else to the current directory. Never the system library
 *      search path: an operator's YAML names a file, not a soname.
 *   3. dlopen(RTLD_NOW | RTLD_LOCAL): unresolved symbols show now, and the
 *      plugin's symbols stay out of the global namespace. On failure the
 *      dlerror() text is kept and the file is examined to say why (missing,
 *      not ELF, not a shared library, other architecture, missing
 *      dependency, undefined symbol).
 *   4. Read the manifest `cpex_plugin_list` if the library has one:
 *      manifest.c follows its pointers only inside the library's own
 *      readable segments (image.c), checks it and copies it into host
 *      memory; every later use reads the copy. No plugin code runs (the
 *      library's constructors aside).
 *   5. Choose the entry point: `cpex_plugin_create`, or
 *      `cpex_plugin_create_<entry>` for `?entry=`; with a manifest, the
 *      entry must be listed, and a library of named entries needs one.
 *   6. Call it with the host's ABI version, the host table, the config and
 *      a message buffer; map each status to a message that keeps the
 *      plugin's own text.
 *   7. Check the registration (size, ABI version, handlers), compare its
 *      handlers with the hooks its manifest entry lists (hooks_agree.c),
 *      filter handlers by the `#` fragment, and hand the product to the
 *      manager.
 *
 * Every failure after dlopen undoes what was done: the plugin's destroy if
 * its create succeeded, then dlclose. On success the library handle goes to
 * product.release, which the manager calls after the plugin's destroy: the
 * OS reference count then unmaps the library once the last instance created
 * from it is gone (each create holds its own dlopen reference).
 */
#include "cpex/loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__GLIBC__)
#include <elf.h>
#endif

#include "loader/admit.h"
#include "loader/libcache.h"
#include "loader/hooks_agree.h"
#include "loader/image.h"
#include "loader/kind.h"
#include "loader/lib_factory.h"
#include "loader/lib_open.h"
#include "loader/manifest.h"
#include "core/registration.h"
#include "util/alloc.h"
#include "util/errors.h"
#include "util/text.h"

/** The scheme this factory serves. */
#define LIB_SCHEME "lib"
/** Size of the buffer a plugin may write its failure message into. */
#define PLUGIN_MSG_CAP 1024

/* What product.release gets: the library reference and what we allocated
   for the plugin's registration. */
typedef struct lib_handle {
    void *dl;
    cpex_handler_reg *filtered; /* handlers kept by a '#' fragment, or NULL */
} lib_handle;

static void lib_release(void *data)
{
    lib_handle *h = data;
    if (!h)
        return;
    cpex__free(h->filtered);
    if (h->dl)
        cpex__lib_close(h->dl);
    cpex__free(h);
}

/* ------------------------------------------------------------------ */
/* Paths                                                               */
/* ------------------------------------------------------------------ */

/* `a` then `b`, newly allocated (no printf: it runs for every plugin). */
static char *concat(const char *a, const char *b)
{
    size_t al = strlen(a), bl = strlen(b);
    char *s = cpex__malloc(al + bl + 1);
    if (s) {
        memcpy(s, a, al);
        memcpy(s + al, b, bl + 1);
    }
    return s;
}

static char *join(const char *dir, const char *path)
{
    size_t dl = strlen(dir), pl = strlen(path);
    size_t slash = dl && dir[dl - 1] == '/' ? 0 : 1;
    char *s = cpex__malloc(dl + slash + pl + 1); /* two per plugin: no printf */
    if (!s)
        return NULL;
    memcpy(s, dir, dl);
    if (slash)
        s[dl] = '/';
    memcpy(s + dl + slash, path, pl + 1);
    return s;
}

static char *resolve_path_as_written(const char *path, const char *base_dir)
{
    if (path[0] == '/')
        return cpex__strdup(path);
    if (base_dir && *base_dir)
        return join(base_dir, path);
    /* Make it absolute so that messages and `origin` say which file it was;
       "./" keeps dlopen from searching the library path if getcwd fails. */
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd))
        return join(cwd, path);
    return cpex__asprintf("./%s", path);
}

/* The absolute path, without "..", "." or links when the file exists (an
   operator reads it in messages and `cpex check`); as written otherwise,
   so a missing file is reported under the name the operator gave. */
static char *canonical_of(char *joined)
{
    char canonical[PATH_MAX];
    if (!realpath(joined, canonical))
        return joined;
    char *c = cpex__strdup(canonical);
    if (!c)
        return joined;
    cpex__free(joined);
    return c;
}

static char *resolve_path(const char *path, const char *base_dir)
{
    char *joined = resolve_path_as_written(path, base_dir);
    return joined ? canonical_of(joined) : NULL;
}

/* ------------------------------------------------------------------ */
/* Explaining a failed dlopen                                          */
/* ------------------------------------------------------------------ */

#if defined(__GLIBC__)
typedef struct elf_id {
    int ok;
    unsigned char cls;  /* ELFCLASS32 / ELFCLASS64 */
    unsigned char data; /* ELFDATA2LSB / ELFDATA2MSB */
    uint16_t type;      /* ET_DYN for a shared library */
    uint16_t machine;   /* EM_* */
} elf_id;

/* Read the identification part of an ELF header (the fields whose offsets
   are the same for 32- and 64-bit files). */
static elf_id read_elf_id(const char *path)
{
    elf_id id = {0, 0, 0, 0, 0};
    unsigned char h[20];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return id;
    ssize_t n = read(fd, h, sizeof h);
    close(fd);
    if (n < (ssize_t)sizeof h || memcmp(h, ELFMAG, SELFMAG) != 0)
        return id;
    id.ok = 1;
    id.cls = h[EI_CLASS];
    id.data = h[EI_DATA];
    int le = h[EI_DATA] == ELFDATA2LSB;
    id.type = (uint16_t)(le ? (h[16] | h[17] << 8) : (h[16] << 8 | h[17]));
    id.machine = (uint16_t)(le ? (h[18] | h[19] << 8) : (h[18] << 8 | h[19]));
    return id;
}

static const char *machine_name(uint16_t m)
{
    switch (m) {
    case EM_386: return "x86 (32-bit)";
    case EM_X86_64: return "x86-64";
    case EM_ARM: return "ARM (32-bit)";
    case EM_AARCH64: return "AArch64";
    case EM_RISCV: return "RISC-V";
    case EM_PPC64: return "PowerPC 64";
    case EM_S390: return "s390";
    default: return "another architecture";
    }
}
#endif

/* Fill `hint` with the likely cause of a dlopen failure and what to do. */
static void explain_dlopen(const char *path, const char *dlerr, int relative, const char *base_dir,
                           char *hint, size_t cap)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR) {
            if (!relative)
                snprintf(hint, cap, "the file does not exist; check the path in `kind`");
            else if (base_dir)
                snprintf(hint, cap,
                         "the file does not exist; check the path in `kind` (a relative path "
                         "resolves against '%s', the directory of the configuration file)",
                         base_dir);
            else
                snprintf(hint, cap,
                         "the file does not exist; check the path in `kind` (a relative path "
                         "resolves against the current directory when the configuration does "
                         "not come from a file)");
        } else
            snprintf(hint, cap, "the file cannot be examined (%s); check its permissions",
                     strerror(e));
        return;
    }
    if (S_ISDIR(sb.st_mode)) {
        snprintf(hint, cap, "it is a directory; name the library file itself (lib<name>.so)");
        return;
    }
    if (access(path, R_OK) != 0) {
        snprintf(hint, cap, "the file is not readable by this process; check its permissions");
        return;
    }
#if defined(__GLIBC__)
    elf_id lib = read_elf_id(path);
    if (!lib.ok) {
        snprintf(hint, cap,
                 "it is not a shared library (no ELF header); point `kind` at a plugin "
                 "built with `cc -shared -fPIC`");
        return;
    }
    elf_id self = read_elf_id("/proc/self/exe");
    if (self.ok && (lib.cls != self.cls || lib.machine != self.machine || lib.data != self.data)) {
        snprintf(hint, cap,
                 "it was built for %s (%d-bit), but this host runs on %s (%d-bit); rebuild "
                 "the plugin for this machine",
                 machine_name(lib.machine), lib.cls == ELFCLASS64 ? 64 : 32,
                 machine_name(self.machine), self.cls == ELFCLASS64 ? 64 : 32);
        return;
    }
    if (lib.type != ET_DYN) {
        snprintf(hint, cap,
                 "it is an ELF file but not a shared library (a program or an object file); "
                 "build the plugin with `cc -shared -fPIC`");
        return;
    }
#endif
    if (dlerr && strstr(dlerr, "position-independent executable"))
        snprintf(hint, cap,
                 "it is a program, not a shared library; build the plugin with "
                 "`cc -shared -fPIC`");
    else if (dlerr && strstr(dlerr, "undefined symbol"))
        snprintf(hint, cap,
                 "the plugin uses a symbol that no library provides; link the plugin against "
                 "the libraries it needs (libcpex itself is reached only through the host "
                 "table, never by symbol)");
    else if (dlerr && strstr(dlerr, "cannot open shared object file"))
        snprintf(hint, cap,
                 "a library the plugin depends on cannot be found; run `ldd %s` and install "
                 "what is missing, or give the plugin a runpath",
                 path);
    else if (dlerr && strstr(dlerr, "wrong ELF class"))
        snprintf(hint, cap, "it was built for another word size; rebuild it for this machine");
    else
        snprintf(hint, cap, "rebuild the plugin for this host, or check the file is not damaged");
}

/* ------------------------------------------------------------------ */
/* Symbols                                                             */
/* ------------------------------------------------------------------ */

/* A symbol of the library itself (image.c tells it from a dependency's). */
static const void *find_symbol(const cpex__image *im, const char *name, cpex__image_sym *sym,
                               char *why, size_t cap)
{
    return cpex__image_symbol(im, name, sym, why, cap) == CPEX_SYM_FOUND ? sym->addr : NULL;
}

static cpex_plugin_create_fn to_create_fn(const void *sym)
{
    /* An object pointer to a function pointer: memcpy, which ISO C allows,
       rather than a cast, which it does not. */
    cpex_plugin_create_fn fn;
    _Static_assert(sizeof fn == sizeof sym, "function and object pointers differ in size");
    memcpy(&fn, &sym, sizeof fn);
    return fn;
}

/* ------------------------------------------------------------------ */
/* The factory                                                         */
/* ------------------------------------------------------------------ */

typedef struct load {
    const cpex_factory_request *req;
    cpex__kind kind;
    char *path; /* resolved */
    void *dl;
    cpex__image image;             /* the library's readable memory and symbols */
    cpex__manifest_copy *manifest; /* validated host-owned copy, or NULL */
    char *symbol;                  /* entry point name */
    cpex_plugin_create_fn create;
    cpex_plugin_registration reg;
    int created; /* create returned OK: destroy is owed on failure */
    cpex_handler_reg *filtered;
    cpex__libfile file;    /* the checked file, open from admit to loaded (admit.c) */
    cpex__libcache *cache; /* the factory's (NULL: none) */
} load;

static void load_undo(load *l)
{
    cpex__libfile_close(&l->file);
    if (l->created && l->reg.destroy)
        l->reg.destroy(l->reg.instance);
    cpex__free(l->filtered);
    cpex__manifest_copy_free(l->manifest);
    l->manifest = NULL;
    if (l->dl)
        cpex__lib_close(l->dl);
    cpex__free(l->symbol);
    cpex__free(l->path);
    cpex__kind_cleanup(&l->kind);
}

static cpex_status oom(cpex_error *err, const load *l)
{
    return cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory loading library '%s'",
                           l->path        ? l->path
                           : l->kind.path ? l->kind.path
                                          : "?");
}

/* Step 4: the manifest, read only through the library's image. */
static cpex_status read_manifest(load *l, cpex_error *err)
{
    char why[512];
    cpex__image_sym sym;
    int mapped = cpex__image_init(&l->image, l->dl, why, sizeof why) == 0;
    /* This very library (handle and file) was read for an earlier plugin. */
    if (mapped && cpex__libcache_manifest_get(l->cache, l->dl, &l->file.st, &l->manifest))
        return CPEX_OK;
    if (!find_symbol(&l->image, CPEX_MANIFEST_SYMBOL, &sym, why, sizeof why)) {
        if (mapped)
            cpex__libcache_manifest_put(l->cache, l->dl, &l->file.st, NULL);
        return CPEX_OK; /* no manifest (or only a dependency's): entry points alone */
    }
    if (!mapped)
        return cpex__error_add(err, CPEX_E_LOAD, NULL,
                               "library '%s' exports a manifest ('" CPEX_MANIFEST_SYMBOL
                               "') that cannot be read safely\n"
                               "  %s\n"
                               "  hint: the loader checks a manifest against the library's "
                               "mapped segments (dl_iterate_phdr), which this platform did not "
                               "report; load a build of the plugin without a manifest",
                               l->path, why);
    cpex_status st =
        cpex__manifest_load(&l->image, &sym, CPEX_ABI_VERSION, l->path, &l->manifest, err);
    if (st == CPEX_OK)
        cpex__libcache_manifest_put(l->cache, l->dl, &l->file.st, l->manifest);
    return st;
}

/* Step 5: the entry point symbol, checked against the manifest's entries. */
static cpex_status choose_entry(load *l, cpex_error *err)
{
    char why[512];
    const cpex_manifest *man = l->manifest ? &l->manifest->manifest : NULL;
    const char *entry = l->kind.entry;
    if (man) {
        if (entry && !cpex__manifest_find(man, entry)) {
            char *list = cpex__manifest_entry_list(man);
            if (!list)
                return oom(err, l);
            cpex_status st = cpex__error_add(err, CPEX_E_CONFIG, NULL,
                                             "no entry '%s' in %s; available: %s\n"
                                             "  hint: write one of them after '?entry='",
                                             entry, l->path, list);
            cpex__free(list);
            return st;
        }
        if (!entry && !cpex__manifest_find(man, "")) {
            char *list = cpex__manifest_entry_list(man);
            if (!list)
                return oom(err, l);
            const char *first = man->entries[0]->entry;
            cpex_status st = cpex__error_add(
                err, CPEX_E_CONFIG, NULL,
                "library '%s' has no default entry point ('" CPEX_ENTRY_SYMBOL
                "'); it holds named plugins, so an entry is needed: %s\n"
                "  hint: choose one with '?entry=<name>', e.g. kind: \"lib:%s?entry=%s\"",
                l->path, list, l->kind.path, first);
            cpex__free(list);
            return st;
        }
    }
    l->symbol = entry ? concat(CPEX_ENTRY_SYMBOL_PREFIX, entry) : cpex__strdup(CPEX_ENTRY_SYMBOL);
    if (!l->symbol)
        return oom(err, l);
    cpex__image_sym sym;
    const void *fn = find_symbol(&l->image, l->symbol, &sym, why, sizeof why);
    if (!fn) {
        if (man)
            return cpex__error_add(err, CPEX_E_LOAD, NULL,
                                   "library '%s' lists entry '%s' in its manifest but does not "
                                   "export '%s' (%s)\n"
                                   "  hint: the library is inconsistent; rebuild it with the "
                                   "cpex/plugin.h macros, which emit both",
                                   l->path, entry ? entry : "(default)", l->symbol, why);
        if (entry)
            return cpex__error_add(err, CPEX_E_LOAD, NULL,
                                   "library '%s' does not export '%s' and has no manifest "
                                   "('" CPEX_MANIFEST_SYMBOL "') listing its entries (%s)\n"
                                   "  hint: check the name after '?entry=', or drop it if the "
                                   "library holds a single plugin",
                                   l->path, l->symbol, why);
        return cpex__error_add(err, CPEX_E_LOAD, NULL,
                               "library '%s' does not export '" CPEX_ENTRY_SYMBOL
                               "' and has no manifest ('" CPEX_MANIFEST_SYMBOL "') (%s)\n"
                               "  hint: it is not a libcpex plugin, or it holds several plugins "
                               "and needs '?entry=<name>'; plugins are built with CPEX_PLUGIN "
                               "from cpex/plugin.h",
                               l->path, why);
    }
    /* Calling data as code would crash the host: refuse it while we can. */
    if (sym.type == CPEX_SYM_DATA || sym.type == CPEX_SYM_OTHER)
        return cpex__error_add(err, CPEX_E_LOAD, NULL,
                               "library '%s' exports '%s', but it is not a function\n"
                               "  the symbol is a %s\n"
                               "  hint: the library is damaged or not a libcpex plugin; rebuild "
                               "it with the cpex/plugin.h macros",
                               l->path, l->symbol,
                               sym.type == CPEX_SYM_DATA ? "data object" : "non-function symbol");
    l->create = to_create_fn(fn);
    return CPEX_OK;
}

/* Step 6: call the entry point and map its status. */
static cpex_status call_entry(load *l, cpex_error *err)
{
    const cpex_factory_request *req = l->req;
    cpex_plugin_config pc = *req->config;
    char *config_text = NULL;
    void (*json_free_fn)(void *) = NULL;
    /* The manager fills the config completely; fill what a host-built
       request may have left out, so a plugin never sees NULL here. */
    if (!pc.config)
        pc.config = (const cpex_json *)req->config_block;
    if (!pc.config_json.ptr) {
        config_text = req->config_block
                          ? json_dumps(req->config_block, JSON_ENCODE_ANY | JSON_COMPACT)
                          : NULL;
        json_get_alloc_funcs(NULL, &json_free_fn);
        pc.config_json.ptr = config_text ? config_text : "null";
        pc.config_json.len = strlen(pc.config_json.ptr);
        if (req->config_block && !config_text)
            return oom(err, l);
    }

    char msg[PLUGIN_MSG_CAP];
    memset(msg, 0, sizeof msg);
    memset(&l->reg, 0, sizeof l->reg);
    l->reg.struct_size = (uint32_t)sizeof l->reg;
    /* One byte kept back: the message ends in NUL even if the plugin fills
       the whole buffer without one. */
    int32_t status = l->create(CPEX_ABI_VERSION, req->host, &pc, &l->reg, msg, sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    if (config_text && json_free_fn)
        json_free_fn(config_text);
    cpex__text_one_line(msg);
    const char *said = msg[0] ? msg : "(the plugin gave no message)";

    switch (status) {
    case CPEX_CREATE_OK: l->created = 1; return CPEX_OK;
    case CPEX_CREATE_ABI_MISMATCH:
        return cpex__error_add(err, CPEX_E_LOAD, NULL,
                               "library '%s' refused the host's plugin ABI: %s\n"
                               "  host has ABI %u.%u\n"
                               "  hint: rebuild the plugin against the cpex/plugin.h installed "
                               "with this host",
                               l->path, said, CPEX_ABI_VERSION_MAJOR, CPEX_ABI_VERSION_MINOR);
    case CPEX_CREATE_CONFIG_REJECTED:
        return cpex__error_add(err, CPEX_E_CONFIG, NULL,
                               "the plugin in '%s' rejected its configuration: %s\n"
                               "  hint: fix this plugin's `config:` block",
                               l->path, said);
    case CPEX_CREATE_INIT_FAILED:
        return cpex__error_add(err, CPEX_E_LOAD, NULL,
                               "the plugin in '%s' failed to create an instance: %s", l->path,
                               said);
    default:
        return cpex__error_add(err, CPEX_E_LOAD, NULL,
                               "library '%s': '%s' returned status %d, which ABI %u.%u does not "
                               "define (message: %s)\n"
                               "  hint: the plugin is broken or built for another ABI; rebuild "
                               "it with cpex/plugin.h",
                               l->path, l->symbol, (int)status, CPEX_ABI_VERSION_MAJOR,
                               CPEX_ABI_VERSION_MINOR, said);
    }
}

/* Step 7: the registration the plugin filled, its agreement with the
   manifest, then the '#' fragment. */
static cpex_status check_registration(load *l, cpex_error *err)
{
    cpex_plugin_registration *reg = &l->reg;
    char why[300];
    if (reg->struct_size < CPEX_REGISTRATION_SIZE_1_0 || reg->struct_size > sizeof *reg)
        return cpex__error_add(err, CPEX_E_LOAD, NULL,
                               "library '%s': '%s' filled a registration of %u bytes\n"
                               "  host expects %zu to %zu bytes\n"
                               "  hint: the plugin is broken or built for a newer ABI; rebuild it "
                               "against the cpex/plugin.h installed with this host",
                               l->path, l->symbol, reg->struct_size,
                               (size_t)CPEX_REGISTRATION_SIZE_1_0, sizeof *reg);
    if (reg->abi_version == 0 && reg->handler_count == 0 && !reg->instance && !reg->name)
        return cpex__error_add(err, CPEX_E_LOAD, NULL,
                               "library '%s': '%s' returned OK but filled no registration\n"
                               "  hint: the plugin is broken; its create must fill the "
                               "registration (use the CPEX_PLUGIN macros of cpex/plugin.h)",
                               l->path, l->symbol);
    if (!cpex__abi_compatible(CPEX_ABI_VERSION, reg->abi_version, NULL, 0) &&
        !cpex__abi_compatible(CPEX_ABI_VERSION, reg->abi_version, why, sizeof why))
        return cpex__error_add(err, CPEX_E_LOAD, NULL,
                               "library '%s': the plugin's registration is for an incompatible "
                               "plugin ABI\n"
                               "  %s\n"
                               "  hint: rebuild the plugin against the cpex/plugin.h installed "
                               "with this host (ABI %u.%u)",
                               l->path, why, CPEX_ABI_VERSION_MAJOR, CPEX_ABI_VERSION_MINOR);
    if (reg->handler_count > CPEX__MAX_HANDLERS || (reg->handler_count && !reg->handlers))
        return cpex__error_add(err, CPEX_E_LOAD, NULL,
                               "library '%s': the plugin registered %zu handlers%s\n"
                               "  hint: the plugin is broken; fix its registration",
                               l->path, reg->handler_count,
                               reg->handlers ? "" : " but no handler array");
    /* The whole list is checked before the fragment picks from it, and
       compared with what the manifest says the entry serves. */
    cpex_status st = cpex__registration_check(reg, l->path, NULL, err);
    if (st != CPEX_OK)
        return st;
    const cpex_manifest_entry *entry =
        l->manifest
            ? cpex__manifest_find(&l->manifest->manifest, l->kind.entry ? l->kind.entry : "")
            : NULL;
    if (entry && (st = cpex__hooks_agree(entry, reg, l->path, err)) != CPEX_OK)
        return st;

    const char *frag = l->kind.handler;
    if (!frag)
        return CPEX_OK;
    size_t keep = 0;
    for (size_t i = 0; i < reg->handler_count; i++)
        if (strcmp(cpex__registration_handler(reg, i).hook, frag) == 0)
            keep++;
    if (keep == 0) {
        char list[600];
        cpex__registration_list_hooks(reg, list, sizeof list);
        return cpex__error_add(err, CPEX_E_CONFIG, NULL,
                               "the plugin in '%s' registered no handler for '#%s'; it "
                               "registered handlers for %s\n"
                               "  hint: put one of those after '#', or drop the fragment to "
                               "keep every handler",
                               l->path, frag, list);
    }
    l->filtered = cpex__malloc(keep * sizeof *l->filtered);
    if (!l->filtered)
        return oom(err, l);
    size_t n = 0;
    for (size_t i = 0; i < reg->handler_count; i++) {
        cpex_handler_reg h = cpex__registration_handler(reg, i);
        if (strcmp(h.hook, frag) == 0)
            l->filtered[n++] = h;
    }
    cpex__registration_use_handlers(reg, l->filtered, n);
    return CPEX_OK;
}

cpex_status cpex__lib_create(void *factory_data, const cpex_factory_request *req,
                             cpex_factory_product *out, cpex_error *err)
{
    if (!req || !out || !req->config || !req->config->kind.ptr || !req->host)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                               "lib loader: incomplete factory request (no config, kind or "
                               "host table)");
    load l;
    memset(&l, 0, sizeof l);
    l.req = req;
    l.file.fd = -1;
    l.cache = factory_data;

    /* 1. The kind. The manager's config strings are NUL-terminated. */
    cpex_status st = cpex__kind_parse(req->config->kind.ptr, &l.kind, err);
    if (st != CPEX_OK)
        return st;
    if (strcmp(l.kind.scheme, LIB_SCHEME) != 0) {
        st = cpex__error_add(err, CPEX_E_CONFIG, NULL,
                             "kind '%s' has scheme '%s' but this factory is registered for scheme "
                             "'" LIB_SCHEME "'",
                             req->config->kind.ptr, l.kind.scheme);
        load_undo(&l);
        return st;
    }

    /* 2. The path: as written (made absolute), and canonical. */
    int relative = l.kind.path[0] != '/';
    char *written = resolve_path_as_written(l.kind.path, req->base_dir);
    char *copy = written ? cpex__strdup(written) : NULL;
    if (!written || !copy) {
        cpex__free(written);
        cpex__free(copy);
        st = oom(err, &l);
        load_undo(&l);
        return st;
    }

    /* 3. The file, checked before the dynamic loader sees it and again
       after (admit.c: a regular file, who could replace it, its pin), and
       dlopen in between. A recent check of the same unchanged file is
       reused (libcache.h): a configuration of many plugins from one
       library checks it once. */
    cpex__libcache *cache = factory_data;
    cpex__libcheck check;
    bool cached = cpex__libcache_get(cache, written, &check);
    if (cached && cpex__admit_pinned(req) && !check.sha256[0]) {
        cpex__libcheck_clear(&check); /* no hash was computed then: check in full */
        cached = false;
    }
    int missing = 0;
    if (cached) {
        cpex__free(copy);
        st = cpex__admit_cached(&check, req, err);
        l.path = check.resolved; /* taken */
        check.resolved = NULL;
        l.file.st = check.st; /* nothing open: step 4 compares with this */
    } else {
        memset(&check, 0, sizeof check);
        l.path = canonical_of(copy);
        st = l.path ? cpex__admit_library(&l.file, l.path, written, req, &missing, &check, err)
                    : oom(err, &l);
    }
    if (missing) {
        char hint[600];
        explain_dlopen(l.path, NULL, relative, req->base_dir, hint, sizeof hint);
        st = cpex__error_add(err, CPEX_E_LOAD, NULL,
                             "cannot load library '%s': %s\n"
                             "  stat: %s: %s",
                             l.path, hint, l.path, strerror(ENOENT));
    }
    if (st != CPEX_OK) {
        cpex__libcheck_clear(&check);
        cpex__free(written);
        load_undo(&l);
        return st;
    }
    /* dlopen — of the file the path names now, even if an older build of
     * it is still loaded under that name (lib_open.h). */
    char dlerr[512];
    bool reused = false;
    l.dl = cpex__lib_open_checked(l.path, &l.file.st, &reused, dlerr, sizeof dlerr);
    if (!l.dl) {
        char hint[600];
        explain_dlopen(l.path, dlerr, relative, req->base_dir, hint, sizeof hint);
        st = cpex__error_add(err, CPEX_E_LOAD, NULL,
                             "cannot load library '%s': %s\n"
                             "  dlopen: %s",
                             l.path, hint, dlerr);
        cpex__libcheck_clear(&check);
        cpex__free(written);
        load_undo(&l);
        return st;
    }
    /* The check after dlopen: what it mapped is what was checked. A handle
       that is another reference to a mapping of this very file (same
       identity as the check just made), one that passed this check when it
       was made, mapped nothing new. */
    st = reused ? CPEX_OK : cpex__admit_loaded(&l.file, l.path, err);
    if (st == CPEX_OK && !reused)
        cpex__lib_open_confirm(l.dl);
    if (st == CPEX_OK && !cached)
        cpex__libcache_put(cache, written, &check);
    cpex__libcheck_clear(&check);
    cpex__free(written);
    if (st != CPEX_OK) {
        load_undo(&l);
        return st;
    }
    cpex__libfile_close(&l.file);
    if (cpex__admit_pinned(req))
        out->sha256_checked = 1; /* admit compared it */

    /* 4-7. */
    if ((st = read_manifest(&l, err)) != CPEX_OK || (st = choose_entry(&l, err)) != CPEX_OK ||
        (st = call_entry(&l, err)) != CPEX_OK || (st = check_registration(&l, err)) != CPEX_OK) {
        load_undo(&l);
        return st;
    }

    lib_handle *h = cpex__calloc(1, sizeof *h);
    char *origin = cpex__strdup(l.path);
    if (!h || !origin) {
        cpex__free(h);
        cpex__free(origin);
        st = oom(err, &l);
        load_undo(&l);
        return st;
    }
    h->dl = l.dl;
    h->filtered = l.filtered;

    if (req->log) {
        /* "loaded plugin '%.*s' from '%s'%s%s: it reports name '%.100s'
           version '%.50s'; handlers %s", put together without printf (it
           runs for every plugin a configuration loads). */
        char list[600], line[1200];
        cpex__registration_list_hooks(&l.reg, list, sizeof list);
        cpex__textbuf t;
        cpex__textbuf_init(&t, line, sizeof line);
        cpex__textbuf_str(&t, "loaded plugin '", SIZE_MAX);
        if (req->config->name.ptr)
            cpex__textbuf_put(&t, req->config->name.ptr,
                              strnlen(req->config->name.ptr, req->config->name.len));
        cpex__textbuf_str(&t, "' from '", SIZE_MAX);
        cpex__textbuf_str(&t, l.path, SIZE_MAX);
        cpex__textbuf_str(&t, l.kind.entry ? "' entry " : "'", SIZE_MAX);
        if (l.kind.entry)
            cpex__textbuf_str(&t, l.kind.entry, SIZE_MAX);
        cpex__textbuf_str(&t, ": it reports name '", SIZE_MAX);
        cpex__textbuf_str(&t, l.reg.name ? l.reg.name : "(none)", 100);
        cpex__textbuf_str(&t, "' version '", SIZE_MAX);
        cpex__textbuf_str(&t, l.reg.version ? l.reg.version : "(none)", 50);
        cpex__textbuf_str(&t, "'; handlers ", SIZE_MAX);
        cpex__textbuf_str(&t, list, SIZE_MAX);
        cpex__text_one_line(line);
        req->log(req->log_ctx, CPEX_LOG_INFO, line);
    }

    out->registration = l.reg;
    out->release = lib_release;
    out->release_data = h;
    out->origin = origin;
    cpex__manifest_copy_free(l.manifest);
    cpex__free(l.symbol);
    cpex__free(l.path);
    cpex__kind_cleanup(&l.kind);
    return CPEX_OK;
}

cpex_status cpex__lib_resolve(const char *kind_text, const char *base_dir, char **path,
                              cpex_error *err)
{
    *path = NULL;
    cpex__kind kind;
    cpex_status st = cpex__kind_parse(kind_text, &kind, err);
    if (st != CPEX_OK)
        return st;
    *path = resolve_path(kind.path, base_dir);
    cpex__kind_cleanup(&kind);
    if (!*path)
        return cpex__error_add(err, CPEX_E_NOMEM, NULL, "out of memory resolving '%s'", kind_text);
    return CPEX_OK;
}

int cpex__lib_identify(const cpex_factory_request *req, char *buf, size_t cap)
{
    if (!req || !req->config || !req->config->kind.ptr)
        return -1;
    cpex__kind kind;
    if (cpex__kind_parse(req->config->kind.ptr, &kind, NULL) != CPEX_OK)
        return -1;
    char *path = resolve_path_as_written(kind.path, req->base_dir);
    char id[200];
    int rc = path ? cpex__lib_identity(path, id, sizeof id) : -1;
    if (rc == 0 && cap) { /* "lib %s" */
        cpex__textbuf t;
        cpex__textbuf_init(&t, buf, cap);
        cpex__textbuf_put(&t, "lib ", 4);
        cpex__textbuf_str(&t, id, sizeof id);
    }
    cpex__free(path);
    cpex__kind_cleanup(&kind);
    return rc;
}

void *cpex__lib_factory_data_new(void) { return cpex__libcache_new(); }

void cpex__lib_factory_data_free(void *data) { cpex__libcache_free(data); }
