/*
 * libinfo.c — see libinfo.h.
 *
 * The library is read by the loader (cpex_library_describe_sandboxed,
 * cpex/loader.h) inside the sandboxed worker process, with the very checks
 * a load applies: a hostile manifest is reported, not followed, and none
 * of the library's code (its constructors) runs in this process. What stays here is what only the command does: finding a bare
 * name in the build's plugin directory, listing the file's exported entry
 * symbols from its ELF symbol table (elfsyms.c), and the JSON document.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cpex/cpex.h>

#include "cli.h"
#include "elfsyms.h"
#include "libinfo.h"

/* ------------------------------------------------------------------ */
/* Finding the file                                                    */
/* ------------------------------------------------------------------ */

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Try `dir`/`fmt-of-name`; the path when it is a regular file. */
static char *try_in(const char *dir, size_t dir_len, const char *prefix, const char *name,
                    const char *suffix)
{
    char *p = NULL;
    if (asprintf(&p, "%.*s/%s%s%s", (int)dir_len, dir, prefix, name, suffix) < 0)
        return NULL;
    if (is_file(p))
        return p;
    free(p);
    return NULL;
}

/*
 * The path to open. A name with a '/' is taken as it is. A bare name is
 * tried in the current directory, then as lib<name>.so and <name> in each
 * directory of CPEX_PLUGIN_PATH (colon-separated), in order. Never a bare
 * name for dlopen, which would search the system library path instead.
 */
static char *find_library(const char *arg)
{
    char *p = NULL;
    if (strchr(arg, '/'))
        return strdup(arg);
    if (is_file(arg))
        return asprintf(&p, "./%s", arg) < 0 ? NULL : p;
    const char *path = getenv("CPEX_PLUGIN_PATH");
    for (const char *dir = path; dir && *dir;) {
        size_t len = strcspn(dir, ":");
        if (len > 0 &&
            ((p = try_in(dir, len, "lib", arg, ".so")) || (p = try_in(dir, len, "", arg, ""))))
            return p;
        dir += len;
        if (*dir == ':')
            dir++;
    }
    return asprintf(&p, "./%s", arg) < 0 ? NULL : p;
}

/* ------------------------------------------------------------------ */
/* The document                                                        */
/* ------------------------------------------------------------------ */

static void add_line(json_t *list, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void add_line(json_t *list, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_array_append_new(list, cli_json_str(buf));
}

static json_t *version_json(uint32_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%u.%u", (unsigned)CPEX_ABI_MAJOR(v), (unsigned)CPEX_ABI_MINOR(v));
    return json_string(buf);
}

static json_t *opt_text(const char *s) { return s ? cli_json_str(s) : json_null(); }

static json_t *entry_json(const cpex_library_info *info, const cpex_library_entry *e)
{
    json_t *ej = json_object();
    json_object_set_new(ej, "entry", cli_json_str(e->entry));
    json_object_set_new(ej, "display_name", opt_text(e->display_name));
    json_object_set_new(ej, "version", opt_text(e->version));
    json_object_set_new(ej, "description", opt_text(e->description));
    json_t *hooks = json_null();
    if (info->has_manifest) {
        hooks = json_array();
        for (size_t h = 0; h < e->hook_count; h++)
            json_array_append_new(hooks, cli_json_str(e->hooks[h]));
    }
    json_object_set_new(ej, "hooks", hooks);
    json_object_set_new(ej, "symbol", cli_json_str(e->symbol));
    json_object_set_new(ej, "exported", json_boolean(e->exported));
    json_object_set_new(ej, "kind", cli_json_str(e->kind));
    return ej;
}

/* Fill `doc` from what the loader found. */
static void from_info(json_t *doc, const cpex_library_info *info, json_t *problems, json_t *notes)
{
    json_object_set_new(doc, "path", cli_json_str(info->path));
    json_object_set_new(doc, "loaded", json_boolean(info->loaded));
    json_object_set_new(doc, "host_abi", version_json(info->host_abi));
    json_object_set_new(doc, "abi",
                        info->abi_known ? version_json(info->abi_version) : json_null());
    json_object_set_new(doc, "compatible",
                        info->compatible < 0 ? json_null() : json_boolean(info->compatible));
    json_object_set_new(doc, "manifest", json_boolean(info->has_manifest));
    json_object_set_new(doc, "build_info", opt_text(info->build_info));
    json_object_set_new(doc, "sandbox", opt_text(info->sandbox));
    json_object_set_new(doc, "sha256", opt_text(info->sha256));
    json_t *entries = json_object_get(doc, "entries");
    for (size_t i = 0; i < info->entry_count; i++)
        json_array_append_new(entries, entry_json(info, &info->entries[i]));
    for (size_t i = 0; i < info->problem_count; i++)
        json_array_append_new(problems, cli_json_str(info->problems[i]));
    for (size_t i = 0; i < info->note_count; i++)
        json_array_append_new(notes, cli_json_str(info->notes[i]));
}

json_t *cli_describe_library(const char *arg)
{
    json_t *doc = json_object(), *problems = json_array(), *notes = json_array();
    if (!doc || !problems || !notes) {
        json_decref(doc);
        json_decref(problems);
        json_decref(notes);
        return NULL;
    }
    json_object_set_new(doc, "library", cli_json_str(arg));
    json_object_set_new(doc, "path", json_null());
    json_object_set_new(doc, "loaded", json_false());
    json_object_set_new(doc, "host_abi", version_json(cpex_host_api_get()->abi_version));
    json_object_set_new(doc, "abi", json_null());
    json_object_set_new(doc, "compatible", json_null());
    json_object_set_new(doc, "manifest", json_false());
    json_object_set_new(doc, "build_info", json_null());
    json_object_set_new(doc, "sandbox", json_null());
    json_object_set_new(doc, "sha256", json_null());
    json_object_set_new(doc, "entries", json_array());
    json_object_set_new(doc, "symbols", json_array());

    bool usable = false;
    char *path = find_library(arg), *abs = NULL, **symbols = NULL;
    cpex_library_info *info = NULL;
    if (!path) {
        add_line(problems, "out of memory");
        goto finish;
    }
    abs = realpath(path, NULL);
    struct stat link;
    if (!abs && (errno != ENOENT || lstat(path, &link) != 0)) {
        add_line(problems, "cannot find '%s': %s%s", path, strerror(errno),
                 strchr(arg, '/') ? ""
                                  : "; a bare name is looked up in the current directory, then "
                                    "as lib<name>.so in each directory of CPEX_PLUGIN_PATH");
        goto finish;
    }
    if (!abs && !(abs = strdup(path))) { /* a dangling link: the loader says where it points */
        add_line(problems, "out of memory");
        goto finish;
    }

    /* The entry points of a library without a manifest cannot be guessed:
       the file's symbol table tells the loader which to look up. */
    char why[256];
    symbols = cli_elf_exported(abs, CPEX_ENTRY_SYMBOL, why, sizeof why);
    cpex_error err = CPEX_ERROR_INIT;
    if (cpex_library_describe_sandboxed(abs, (const char *const *)symbols, NULL, 0, &info, &err) !=
        CPEX_OK) {
        cpex_error_cleanup(&err);
        json_decref(doc);
        doc = NULL;
        goto finish;
    }
    /* Only a library that could be opened has symbols worth listing. */
    json_t *sj = json_object_get(doc, "symbols");
    for (size_t i = 0; info->loaded && symbols && symbols[i]; i++)
        json_array_append_new(sj, cli_json_str(symbols[i]));
    if (info->loaded && !symbols)
        add_line(notes,
                 "cannot list the exported symbols (%s); entry symbols are checked by name "
                 "only",
                 why);
    from_info(doc, info, problems, notes);
    usable = info->usable;

finish:
    cpex_library_info_free(info);
    cli_strv_free(symbols);
    free(abs);
    free(path);
    if (!doc) {
        json_decref(problems);
        json_decref(notes);
        return NULL;
    }
    json_object_set_new(doc, "problems", problems);
    json_object_set_new(doc, "notes", notes);
    json_object_set_new(doc, "usable", json_boolean(usable && json_array_size(problems) == 0));
    return doc;
}
