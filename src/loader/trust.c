/* trust.c — see trust.h. */
#include "loader/trust.h"

#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Findings gathered into one line. */
typedef struct findings {
    char *out;
    size_t cap, len;
    int count;
    uid_t euid;
} findings;

static void add(findings *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(findings *f, const char *fmt, ...)
{
    f->count++;
    if (f->len + 3 >= f->cap)
        return;
    if (f->len) {
        memcpy(f->out + f->len, "; ", 3);
        f->len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(f->out + f->len, f->cap - f->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        f->len += (size_t)n < f->cap - f->len ? (size_t)n : f->cap - f->len - 1;
}

/* "uid 1000 (alice)", or "uid 1000" when the name cannot be found. */
static void user_name(uid_t uid, char *buf, size_t cap)
{
    struct passwd pw, *res = NULL;
    char scratch[1024];
    if (getpwuid_r(uid, &pw, scratch, sizeof scratch, &res) == 0 && res && res->pw_name)
        snprintf(buf, cap, "uid %u (%s)", (unsigned)uid, res->pw_name);
    else
        snprintf(buf, cap, "uid %u", (unsigned)uid);
}

/* Who may own what the host loads: root, and the host's own user. */
static void owners(const findings *f, char *buf, size_t cap)
{
    if (f->euid == 0) {
        snprintf(buf, cap, "root (the host runs as root)");
    } else {
        char me[300];
        user_name(f->euid, me, sizeof me);
        snprintf(buf, cap, "root or %s that runs the host", me);
    }
}

/* One file or directory. */
static void judge(findings *f, const struct stat *st, const char *path, int dir)
{
    const char *what = dir ? "directory" : "file";
    if (st->st_uid != 0 && st->st_uid != f->euid) {
        char who[300], allowed[400];
        user_name(st->st_uid, who, sizeof who);
        owners(f, allowed, sizeof allowed);
        add(f, "%s '%s' is owned by %s, not by %s: run chown root '%s'%s", what, path, who, allowed,
            path, dir ? ", or move the plugin elsewhere" : "");
    }
    mode_t w = st->st_mode & (S_IWGRP | S_IWOTH);
    if (!w)
        return;
    const char *by = w == (S_IWGRP | S_IWOTH) ? "group and others"
                     : w == S_IWGRP           ? "its group"
                                              : "others";
    unsigned mode = (unsigned)(st->st_mode & 07777);
    if (dir && (st->st_mode & S_ISVTX))
        add(f,
            "directory '%s' is writable by %s (mode %04o; sticky, which still lets them create "
            "names in it): keep plugins in a directory only %s can write",
            path, by, mode, f->euid == 0 ? "root" : "root and the host's user");
    else
        add(f, "%s '%s' is writable by %s (mode %04o): run chmod go-w '%s'", what, path, by, mode,
            path);
}

/* Whether directory `dir` is one of those above `path` (both absolute). */
static int above(const char *dir, const char *path)
{
    size_t n = strlen(dir);
    if (strcmp(dir, "/") == 0)
        return path[0] == '/';
    return strncmp(dir, path, n) == 0 && path[n] == '/';
}

/* Every directory above `path` (absolute), nearest first, except those
   above `skip` (judged already; may be NULL). */
static void walk_up(findings *f, const char *path, const char *skip)
{
    char dir[PATH_MAX];
    if (!path || path[0] != '/' || strlen(path) >= sizeof dir)
        return;
    strcpy(dir, path);
    for (;;) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            return;
        if (slash == dir)
            slash[1] = '\0'; /* "/" itself */
        else
            *slash = '\0';
        /* lstat: a link on the way is judged by the directory holding it
           (whoever can write that can replace the link), which comes next. */
        struct stat st;
        if (!(skip && above(dir, skip)) && lstat(dir, &st) == 0 && S_ISDIR(st.st_mode))
            judge(f, &st, dir, 1);
        if (strcmp(dir, "/") == 0)
            return;
    }
}

int cpex__trust_check(const struct stat *file, const char *path, const char *as_written, char *out,
                      size_t cap)
{
    findings f = {out, cap, 0, 0, geteuid()};
    if (cap)
        out[0] = '\0';
    judge(&f, file, path, 0);
    walk_up(&f, path, NULL);
    if (as_written && strcmp(as_written, path) != 0)
        walk_up(&f, as_written, path);
    return f.count;
}
