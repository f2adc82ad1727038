/* lib_open.c — dlopen the file a path names now; see lib_open.h. */
#include "loader/lib_open.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/text.h"

/* One library this file opened. */
typedef struct opened {
    void *dl;
    char *name; /* what dlopen was given: the path, or a private copy's */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    bool confirmed; /* a caller checked the file after this mapping (cpex__lib_open_confirm) */
    size_t refs;    /* cpex__lib_open references not yet closed */
    struct opened *next;
} opened;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static opened *all;
static _Atomic unsigned long copies; /* names private copies apart */

static bool same_identity(const opened *o, const struct stat *st)
{
    return o->dev == st->st_dev && o->ino == st->st_ino && o->size == st->st_size &&
           o->mtime.tv_sec == st->st_mtim.tv_sec && o->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           o->ctime.tv_sec == st->st_ctim.tv_sec && o->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

int cpex__lib_identity(const char *path, char *buf, size_t cap)
{
    struct stat st;
    if (!path || stat(path, &st) != 0)
        return -1;
    /* "%llu:%llu:%lld:%lld.%09ld" of device, inode, size, mtime; by hand
       (one per plugin of a load; printf was most of its cost). */
    char text[128];
    size_t n = 0;
    n += cpex__text_dec(text + n, (unsigned long long)st.st_dev, false, 0);
    text[n++] = ':';
    n += cpex__text_dec(text + n, (unsigned long long)st.st_ino, false, 0);
    text[n++] = ':';
    n += cpex__text_signed(text + n, (long long)st.st_size);
    text[n++] = ':';
    n += cpex__text_signed(text + n, (long long)st.st_mtim.tv_sec);
    text[n++] = '.';
    long ns = (long)st.st_mtim.tv_nsec;
    if (ns < 0) {
        text[n++] = '-';
        n += cpex__text_dec(text + n, 0ull - (unsigned long long)ns, false, 8);
    } else {
        n += cpex__text_dec(text + n, (unsigned long long)ns, false, 9);
    }
    text[n] = '\0';
    if (cap) {
        size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(buf, text, k);
        buf[k] = '\0';
    }
    return 0;
}

/* Whether the loader still has a library under `name` (glibc would hand it back). */
static bool name_loaded(const char *name)
{
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (!h)
        return false;
    dlclose(h);
    return true;
}

/* Copy `path` into a new private directory; the copy's path, or NULL (why). */
static char *private_copy(const char *path, char *why, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *tmp = getenv("TMPDIR");
    char dir_in_lib[PATH_MAX];
    snprintf(dir_in_lib, sizeof dir_in_lib, "%.*s", (int)(base - path > 0 ? base - path - 1 : 1),
             base - path > 0 ? path : ".");
    const char *roots[3] = {tmp && *tmp ? tmp : "/tmp", "/tmp", dir_in_lib};
    int src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0) {
        snprintf(why, cap, "cannot read '%s' to load its new version: %s", path, strerror(errno));
        return NULL;
    }
    char *result = NULL;
    for (int r = 0; r < 3 && !result; r++) {
        char dir[PATH_MAX];
        unsigned long n = atomic_fetch_add(&copies, 1) + 1;
        snprintf(dir, sizeof dir, "%s/.cpex-lib-%ld-%lu-XXXXXX", roots[r], (long)getpid(), n);
        if (!mkdtemp(dir))
            continue;
        char *dst_path = cpex__asprintf("%s/%s", dir, base);
        int dst = dst_path ? open(dst_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700) : -1;
        bool ok = dst >= 0 && lseek(src, 0, SEEK_SET) == 0;
        char buf[65536];
        while (ok) {
            ssize_t got = read(src, buf, sizeof buf);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                ok = got == 0;
                break;
            }
            for (ssize_t off = 0; ok && off < got;) {
                ssize_t put = write(dst, buf + off, (size_t)(got - off));
                if (put < 0 && errno == EINTR)
                    continue;
                ok = put > 0;
                off += put > 0 ? put : 0;
            }
        }
        if (dst >= 0 && close(dst) != 0)
            ok = false;
        if (ok) {
            result = dst_path;
        } else {
            snprintf(why, cap, "cannot copy '%s' into '%s' to load its new version: %s", path, dir,
                     strerror(errno ? errno : EIO));
            if (dst_path)
                unlink(dst_path);
            rmdir(dir);
            cpex__free(dst_path);
        }
    }
    close(src);
    return result;
}

/* Remove a private copy and its directory (the mapping stays). */
static void unlink_copy(const char *copy)
{
    unlink(copy);
    char *dir = cpex__strdup(copy);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash) {
        *slash = '\0';
        rmdir(dir);
    }
    cpex__free(dir);
}

void *cpex__lib_open(const char *path, char *why, size_t cap)
{
    return cpex__lib_open_checked(path, NULL, NULL, why, cap);
}

void *cpex__lib_open_checked(const char *path, const struct stat *known, bool *reused, char *why,
                             size_t cap)
{
    why[0] = '\0';
    if (reused)
        *reused = false;
    struct stat st;
    if (known)
        st = *known;
    else if (stat(path, &st) != 0) {
        void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL); /* let dlopen say what is wrong */
        if (!dl) {
            const char *e = dlerror();
            snprintf(why, cap, "%s", e ? e : "unknown error");
        }
        return dl;
    }
    pthread_mutex_lock(&lock);
    /* The same file opened before (under any name): another reference. */
    for (opened *o = all; o; o = o->next) {
        if (o->refs && same_identity(o, &st)) {
            void *dl = dlopen(o->name, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
            if (dl == o->dl) {
                o->refs++;
                if (reused) /* only a mapping someone checked after making it */
                    *reused = o->confirmed;
                pthread_mutex_unlock(&lock);
                return dl;
            }
            if (dl)
                dlclose(dl);
        }
    }
    /* Is the name taken by another version, ours or one still mapped? */
    bool taken = false;
    for (opened *o = all; o && !taken; o = o->next)
        taken = strcmp(o->name, path) == 0 && !same_identity(o, &st);
    opened *rec = cpex__calloc(1, sizeof *rec);
    char *copy = NULL;
    if (!rec) {
        pthread_mutex_unlock(&lock);
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    if (taken && name_loaded(path)) {
        copy = private_copy(path, why, cap);
        if (!copy) {
            pthread_mutex_unlock(&lock);
            cpex__free(rec);
            return NULL;
        }
    }
    const char *name = copy ? copy : path;
    dlerror();
    void *dl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *e = dlerror();
        snprintf(why, cap, "%s", e ? e : "unknown error");
    }
    if (copy)
        unlink_copy(copy);
    if (!dl) {
        pthread_mutex_unlock(&lock);
        cpex__free(copy);
        cpex__free(rec);
        return NULL;
    }
    /* Forget records of names no longer loaded: their name is free again. */
    for (opened **pp = &all; *pp;) {
        opened *o = *pp;
        if (!o->refs && strcmp(o->name, name) == 0) {
            *pp = o->next;
            cpex__free(o->name);
            cpex__free(o);
        } else {
            pp = &o->next;
        }
    }
    rec->dl = dl;
    rec->name = copy ? copy : cpex__strdup(path);
    rec->dev = st.st_dev;
    rec->ino = st.st_ino;
    rec->size = st.st_size;
    rec->mtime = st.st_mtim;
    rec->ctime = st.st_ctim;
    rec->refs = 1;
    rec->next = all;
    all = rec;
    if (!rec->name) { /* cannot track it: it still works, it just is not found again */
        all = rec->next;
        cpex__free(rec);
    }
    pthread_mutex_unlock(&lock);
    return dl;
}

void cpex__lib_open_confirm(void *dl)
{
    if (!dl)
        return;
    pthread_mutex_lock(&lock);
    for (opened *o = all; o; o = o->next)
        if (o->dl == dl && o->refs)
            o->confirmed = true;
    pthread_mutex_unlock(&lock);
}

void cpex__lib_close(void *dl)
{
    if (!dl)
        return;
    pthread_mutex_lock(&lock);
    for (opened **pp = &all; *pp; pp = &(*pp)->next) {
        opened *o = *pp;
        if (o->dl != dl || !o->refs)
            continue;
        o->refs--;
        dlclose(dl);
        if (!o->refs && !name_loaded(o->name)) {
            /* Unmapped: the record has nothing left to say. A library glibc
             * keeps (NODELETE, unique symbols) keeps its record, so that its
             * name still reads as taken. */
            *pp = o->next;
            cpex__free(o->name);
            cpex__free(o);
        }
        pthread_mutex_unlock(&lock);
        return;
    }
    pthread_mutex_unlock(&lock);
    dlclose(dl); /* not ours (stat failed at open): plain close */
}
