/*
 * cmd_inspect.c — `cpex inspect LIBRARY [--json]`: describe a plugin
 * library without creating any plugin and without running any of its code
 * here (cpex_library_describe_sandboxed reads it in the sandboxed worker,
 * libinfo.c makes the JSON document; this file prints).
 */
#include <string.h>

#include "cli.h"
#include "guard.h"
#include "libinfo.h"

static const char *str_or(const json_t *v, const char *fallback)
{
    const char *s = json_string_value(v);
    return s ? s : fallback;
}

/* Everything below comes from the library (its manifest, its symbol
   table) or the command line: printed with cli_text/cli_line, escaped. */

/* Notes and problems: messages of libcpex and of this command that quote
   the library's path and strings; the path given and the path found are
   known to come from elsewhere. */
static void print_message(FILE *out, const char *prefix, const char *text, const json_t *d)
{
    const char *quoted[] = {json_string_value(json_object_get(d, "library")),
                            json_string_value(json_object_get(d, "path")), NULL};
    if (!quoted[0])
        quoted[0] = quoted[1], quoted[1] = NULL;
    fputs(prefix, out);
    cli_put_message(out, text, "    ", quoted);
    fputc('\n', out);
}

static void print_list(const char *title, const json_t *list, const json_t *d)
{
    size_t i;
    json_t *v;
    if (json_array_size(list) == 0)
        return;
    printf("\n%s:\n", title);
    json_array_foreach(list, i, v) print_message(stdout, "  - ", str_or(v, ""), d);
}

static void print_entry(const json_t *e, const char *sha256)
{
    const char *entry = str_or(json_object_get(e, "entry"), "");
    const char *kind = str_or(json_object_get(e, "kind"), "?");
    const json_t *hooks = json_object_get(e, "hooks");
    const char *display = json_string_value(json_object_get(e, "display_name"));
    putchar('\n');
    cli_text(stdout, "  entry %s", entry[0] ? entry : "(default)");
    if (display)
        cli_text(stdout, ": %s %s", display, str_or(json_object_get(e, "version"), "(no version)"));
    putchar('\n');
    if (json_string_value(json_object_get(e, "description")))
        cli_line(stdout, "    description  %s", str_or(json_object_get(e, "description"), ""));
    if (json_is_array(hooks)) {
        size_t i;
        json_t *h;
        printf("    hooks        ");
        json_array_foreach(hooks, i, h) cli_text(stdout, "%s%s", i ? ", " : "", str_or(h, ""));
        putchar('\n');
    } else {
        printf("    hooks        (unknown without a manifest)\n");
    }
    cli_line(stdout, "    symbol       %s (%s)", str_or(json_object_get(e, "symbol"), "?"),
             json_is_true(json_object_get(e, "exported")) ? "exported" : "MISSING");
    cli_line(stdout, "    kind:        \"%s\"", kind);
    if (sha256) /* the line that pins this very file in the plugin's entry */
        printf("    sha256:      %s\n", sha256);
    /* A fragment keeps one handler of a plugin that serves several hooks. */
    if (json_array_size(hooks) > 1)
        cli_line(stdout, "                 one handler only: \"%s#%s\"", kind,
                 str_or(json_array_get(hooks, 0), ""));
}

static void print_text(const json_t *d)
{
    const json_t *compatible = json_object_get(d, "compatible");
    const json_t *entries = json_object_get(d, "entries");
    const json_t *symbols = json_object_get(d, "symbols");
    cli_line(stdout, "library      %s",
             str_or(json_object_get(d, "path"), str_or(json_object_get(d, "library"), "")));
    /* The hash to pin comes first: it is known even when the library does
       not load here. Hex digits only, from libcpex. */
    if (json_string_value(json_object_get(d, "sha256")))
        printf("sha256       %s\n", str_or(json_object_get(d, "sha256"), ""));
    if (json_is_true(json_object_get(d, "loaded"))) {
        if (json_is_true(json_object_get(d, "manifest")))
            cli_line(stdout, "ABI          library %s, host %s: %s",
                     str_or(json_object_get(d, "abi"), "?"),
                     str_or(json_object_get(d, "host_abi"), "?"),
                     json_is_true(compatible)    ? "compatible"
                     : json_is_false(compatible) ? "NOT compatible"
                                                 : "unknown");
        else
            cli_line(stdout, "ABI          library unknown (no manifest; checked at load), host %s",
                     str_or(json_object_get(d, "host_abi"), "?"));
        printf("manifest     %s\n", json_is_true(json_object_get(d, "manifest")) ? "yes" : "no");
        if (json_string_value(json_object_get(d, "build_info")))
            cli_line(stdout, "build        %s", str_or(json_object_get(d, "build_info"), ""));
        printf("entries      %zu\n", json_array_size(entries));
        size_t i;
        json_t *e;
        json_array_foreach(entries, i, e)
            print_entry(e, json_string_value(json_object_get(d, "sha256")));
        printf("\nexported entry symbols: ");
        if (json_array_size(symbols) == 0)
            printf("(none found)");
        json_array_foreach(symbols, i, e) cli_text(stdout, "%s%s", i ? ", " : "", str_or(e, ""));
        putchar('\n');
    }
    if (json_string_value(json_object_get(d, "sandbox"))) {
        putchar('\n');
        cli_line(stdout, "read in a sandboxed worker: %s",
                 str_or(json_object_get(d, "sandbox"), ""));
    }
    print_list("notes", json_object_get(d, "notes"), d);
    print_list("problems", json_object_get(d, "problems"), d);
    printf("\n%s\n", json_is_true(json_object_get(d, "usable"))
                         ? "usable: yes"
                         : "usable: NO (see the problems above)");
}

int cli_cmd_inspect(int argc, char **argv)
{
    const char *library = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_output_is("the help text");
            cli_help_inspect(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_error("inspect", "unknown option '%s'", a);
        } else if (!library) {
            library = a;
        } else {
            return cli_usage_error("inspect",
                                   "unexpected argument '%s' (inspect one library at a "
                                   "time)",
                                   a);
        }
    }
    if (!library)
        return cli_usage_error("inspect", "missing LIBRARY: the plugin library to describe");
    /* The library is opened in a worker process, so its constructors cannot
       end this one; the guard stays for anything else that would. */
    cli_guard_arm("cpex inspect");
    cli_guard_doing("describing the library (in a sandboxed worker)");
    cli_guard_lost("the description of the library is missing");
    json_t *d = cli_describe_library(library);
    cli_guard_disarm();
    if (!d) {
        fprintf(stderr, "cpex inspect: out of memory\n");
        return CLI_FAIL;
    }
    bool usable = json_is_true(json_object_get(d, "usable"));
    if (json) {
        cli_print_json(stdout, d);
        putchar('\n');
    } else {
        print_text(d);
    }
    /* Problems also go to stderr: a script that only checks the exit code
       still leaves the reason in its log. */
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(d, "problems"), i, p)
    {
        cli_text(stderr, "cpex inspect: %s: ", library);
        print_message(stderr, "", str_or(p, ""), d);
    }
    json_decref(d);
    return usable ? CLI_OK : CLI_FAIL;
}
