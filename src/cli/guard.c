/* guard.c — an exit while a command is armed is a failure; see guard.h. */
#include <dlfcn.h>
#include <execinfo.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "guard.h"

typedef struct known_plugin {
    char *name;
    char *library; /* realpath of the origin, or NULL */
    char *mode;
    char **hooks;
} known_plugin;

/* The exit may come from any thread (a concurrent or background handler
   runs on a worker): everything the handler reads is under the lock, and
   no one holds the lock while calling into a plugin. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char *command;
static bool armed, registered;
static char doing[512], lost[256], hook[256];
static known_plugin *plugins;
static size_t plugin_count;

static void free_plugins(void)
{
    for (size_t i = 0; i < plugin_count; i++) {
        free(plugins[i].name);
        free(plugins[i].library);
        free(plugins[i].mode);
        cpex_strv_free(plugins[i].hooks);
    }
    free(plugins);
    plugins = NULL;
    plugin_count = 0;
}

/* Appends to a fixed buffer, cut at its end. */
typedef struct msgbuf {
    char text[4096];
    size_t len;
} msgbuf;

static void add(msgbuf *b, const char *s)
{
    size_t n = strlen(s), room = sizeof b->text - 1 - b->len;
    if (n > room)
        n = room;
    memcpy(b->text + b->len, s, n);
    b->len += n;
    b->text[b->len] = '\0';
}

/* Add text that did not come from us (a plugin name, a path), escaped. */
static void add_untrusted(msgbuf *b, const char *s)
{
    char *e = cli_escape(s);
    add(b, e ? e : "?");
    free(e);
}

static bool wired_for(const known_plugin *p, const char *h)
{
    for (size_t i = 0; p->hooks && p->hooks[i]; i++) {
        if (strcmp(p->hooks[i], h) == 0)
            return true;
    }
    return false;
}

/* Whether `lib` is an object of the command itself rather than a plugin's:
   the executable, libcpex, jansson, the C library and the runtimes that can
   have frames between a plugin and exit(). */
static bool ours(const char *lib)
{
    static const void *anchors[4];
    anchors[0] = (const void *)&cli_guard_arm;
    anchors[1] = (const void *)&cpex_manager_invoke;
    anchors[2] = (const void *)&json_object;
    anchors[3] = (const void *)&exit;
    for (size_t i = 0; i < sizeof anchors / sizeof anchors[0]; i++) {
        Dl_info di;
        if (dladdr(anchors[i], &di) && di.dli_fname && strcmp(di.dli_fname, lib) == 0)
            return true;
    }
    /* By name too: in an executable that is not position-independent, the
       address of a library function is the executable's PLT entry. */
    const char *base = strrchr(lib, '/');
    base = base ? base + 1 : lib;
    static const char *const runtimes[] = {"libcpex.so", "libjansson.so", "libyaml",   "libc.so",
                                           "libc-",      "ld-linux",      "ld64.so",   "libpthread",
                                           "libgcc_s",   "libasan",       "libubsan",  "libtsan",
                                           "liblsan",    "libdl",         "linux-vdso"};
    for (size_t i = 0; i < sizeof runtimes / sizeof runtimes[0]; i++) {
        if (strncmp(base, runtimes[i], strlen(runtimes[i])) == 0)
            return true;
    }
    return false;
}

/* The plugin library on this thread's stack, innermost first: the code
   that called exit(). A malloc'd path, or NULL. */
static char *library_on_stack(void)
{
    void *frames[128];
    int n = backtrace(frames, (int)(sizeof frames / sizeof frames[0]));
    for (int i = 0; i < n; i++) {
        Dl_info di;
        if (!dladdr(frames[i], &di) || !di.dli_fname || !di.dli_fname[0] || ours(di.dli_fname))
            continue;
        char *real = realpath(di.dli_fname, NULL);
        char *self = realpath("/proc/self/exe", NULL);
        bool exe = real && self && strcmp(real, self) == 0;
        free(self);
        if (exe) {
            free(real);
            continue;
        }
        return real ? real : strdup(di.dli_fname);
    }
    return NULL;
}

static void on_exit_while_armed(void)
{
    pthread_mutex_lock(&lock);
    if (!armed) {
        pthread_mutex_unlock(&lock);
        return;
    }
    armed = false;
    char *library = library_on_stack();
    msgbuf b = {{0}, 0};
    add(&b, command);
    add(&b, ": did not finish: ");
    size_t named = 0;
    if (library) {
        /* The plugins that live in that library: one, or several operator
           names for one library (then those wired for the hook in flight). */
        for (int pass = 0; pass < 2 && named == 0; pass++) {
            for (size_t i = 0; i < plugin_count; i++) {
                const known_plugin *p = &plugins[i];
                if (!p->library || strcmp(p->library, library) != 0 ||
                    (pass == 0 && (!hook[0] || !wired_for(p, hook))))
                    continue;
                add(&b, named++ ? " or '" : "plugin '");
                add_untrusted(&b, p->name);
                add(&b, "' (");
                add(&b, p->mode);
                add(&b, ")");
            }
        }
        add(&b, named ? ", from " : "a plugin from ");
        add_untrusted(&b, library);
        add(&b,
            named ? ", ended the process (it called exit)" : " ended the process (it called exit)");
    } else {
        add(&b, "the process was ended by a call to exit() that libcpex did not make");
    }
    if (doing[0]) {
        add(&b, " while ");
        add(&b, doing);
    }
    if (!named && hook[0]) {
        /* Not known from the stack: the suspects. */
        size_t wired = 0;
        for (size_t i = 0; i < plugin_count; i++) {
            if (!wired_for(&plugins[i], hook))
                continue;
            add(&b, wired++ ? ", " : "; plugins wired for the hook: ");
            add_untrusted(&b, plugins[i].name);
        }
    }
    if (lost[0]) {
        add(&b, "; ");
        add(&b, lost);
    }
    add(&b, "\n");
    free(library);
    /* Straight to the descriptor: another thread may hold stderr's lock. */
    for (size_t off = 0; off < b.len;) {
        ssize_t w = write(STDERR_FILENO, b.text + off, b.len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    /* No stdio flush either: every complete result line is out already, and
       a half-written one is better lost than cut. */
    _exit(CLI_FAIL);
}

void cli_guard_arm(const char *cmd)
{
    pthread_mutex_lock(&lock);
    command = cmd;
    armed = true;
    doing[0] = lost[0] = hook[0] = '\0';
    if (!registered) {
        /* backtrace() loads its unwinder on first use: not in an exit handler. */
        void *frame[1];
        backtrace(frame, 1);
        registered = atexit(on_exit_while_armed) == 0;
    }
    pthread_mutex_unlock(&lock);
}

static void set(char *buf, size_t cap, const char *fmt, va_list ap)
{
    pthread_mutex_lock(&lock);
    if (fmt)
        vsnprintf(buf, cap, fmt, ap);
    else
        buf[0] = '\0';
    pthread_mutex_unlock(&lock);
}

void cli_guard_doing(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set(doing, sizeof doing, fmt, ap);
    va_end(ap);
}

void cli_guard_lost(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set(lost, sizeof lost, fmt, ap);
    va_end(ap);
}

void cli_guard_hook(const char *h)
{
    pthread_mutex_lock(&lock);
    snprintf(hook, sizeof hook, "%s", h ? h : "");
    pthread_mutex_unlock(&lock);
}

void cli_guard_plugins(cpex_manager *manager)
{
    char **names = cpex_manager_plugin_names(manager);
    size_t n = 0;
    while (names && names[n])
        n++;
    known_plugin *list = calloc(n ? n : 1, sizeof *list);
    size_t count = 0;
    for (size_t i = 0; list && i < n; i++) {
        cpex_plugin_info info = CPEX_PLUGIN_INFO_INIT;
        if (cpex_manager_plugin_info(manager, names[i], &info) != CPEX_OK)
            continue;
        known_plugin *p = &list[count++];
        p->name = strdup(info.name);
        p->library = info.origin ? realpath(info.origin, NULL) : NULL;
        p->mode = strdup(cpex_mode_name(info.mode));
        p->hooks = info.hooks;
        info.hooks = NULL;
        cpex_plugin_info_cleanup(&info);
        if (!p->name || !p->mode) { /* out of memory: forget this one */
            free(p->name);
            free(p->library);
            free(p->mode);
            cpex_strv_free(p->hooks);
            count--;
        }
    }
    cpex_strv_free(names);
    pthread_mutex_lock(&lock);
    free_plugins();
    plugins = list;
    plugin_count = list ? count : 0;
    pthread_mutex_unlock(&lock);
}

void cli_guard_disarm(void)
{
    pthread_mutex_lock(&lock);
    armed = false;
    free_plugins();
    pthread_mutex_unlock(&lock);
}
