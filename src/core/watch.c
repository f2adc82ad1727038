/*
 * watch.c — keep a configuration file applied while it changes
 * (cpex_manager_watch_file, cpex/reload.h).
 *
 * One thread per watched file. It watches the file's directory with
 * inotify, not the file: an atomic rename over the file, an editor's
 * save-as-new, and a Kubernetes ConfigMap update (the `..data` symlink
 * swapped to a new timestamped directory) all leave the old inode behind,
 * and only the directory sees them. When the path is a link, the directory
 * of the file it resolves to is watched as well (re-resolved after every
 * burst), so an edit in place of the target is seen too.
 *
 * Events only say "look again": after a quiet period (debounce) the file
 * is read, through the path, and judged by its content:
 *   - a read during which the file changed (inode, size or mtime differ
 *     before and after, or fewer bytes than its size) is torn: read again
 *     after another quiet period, up to READ_RETRIES times;
 *   - an empty read is a file being rewritten: the same;
 *   - content with the hash of what was applied last is skipped;
 *   - content that does not parse is read once more after a quiet period
 *     (its writer may not be done), then refused and reported;
 *   - anything else is reloaded (reload.c).
 * The watch itself may break (the directory removed or renamed, inotify
 * failing): that is reported, the watch is re-established every second,
 * and the file is read once it is back. Nothing here ends the process.
 */
#include "core/reload.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libgen.h>

#include "util/alloc.h"

#define DEFAULT_DEBOUNCE_MS 500u
#define MAX_WAIT_FACTOR 10  /* a burst longer than 10 debounces is read anyway */
#define RETRY_WATCH_MS 1000 /* re-establishing a lost watch */
#define READ_RETRIES 3      /* torn or empty reads before giving up on a change */
#define MAX_CONFIG_BYTES (64u * 1024u * 1024u)

#define WATCH_MASK                                                                                 \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_MODIFY |            \
     IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

typedef struct cpex__watcher {
    cpex_manager *m;
    char *path;       /* as the host gave it, made absolute */
    char *dir, *base; /* its directory and name */
    char *target_dir; /* directory of the file it resolves to, when another; or NULL */
    char *target_base;
    uint32_t debounce_ms;
    int ifd;
    int wd_dir, wd_target;
    int wake[2];
    pthread_t thread;
    _Atomic int stop;
    _Atomic int alive;
    bool has_applied;
    uint64_t applied[2];
} cpex__watcher;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Two independent 64-bit hashes of the content (a change that keeps both
 * is not a practical concern; the file's writer could do anything anyway). */
static void content_hash(const char *buf, size_t len, uint64_t out[2])
{
    uint64_t a = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        a = (a ^ (unsigned char)buf[i]) * 0x100000001b3ull;
    out[0] = a;
    out[1] = cpex__hash_name(buf, len) ^ (uint64_t)len;
}

/* ------------------------------------------------------------------ */
/* Watches                                                             */
/* ------------------------------------------------------------------ */

/* (Re)watch the directory of the file the path resolves to, when it is
 * not the path's own directory. */
static void watch_target(cpex__watcher *w)
{
    char *real = realpath(w->path, NULL);
    char *tdir = real ? cpex__config_dir_of(real) : NULL;
    bool same = !tdir || strcmp(tdir, w->dir) == 0;
    if (w->target_dir && (same || strcmp(tdir, w->target_dir) != 0)) {
        if (w->wd_target >= 0)
            inotify_rm_watch(w->ifd, w->wd_target);
        w->wd_target = -1;
        cpex__free(w->target_dir);
        cpex__free(w->target_base);
        w->target_dir = w->target_base = NULL;
    }
    if (!same && !w->target_dir) {
        char *copy = cpex__strdup(real);
        w->target_base = copy ? cpex__strdup(basename(copy)) : NULL;
        cpex__free(copy);
        w->target_dir = tdir;
        tdir = NULL;
        w->wd_target = inotify_add_watch(w->ifd, w->target_dir, WATCH_MASK);
    }
    cpex__free(tdir);
    free(real); /* from libc */
}

/* Set up inotify and the directory watch; false (errno kept) when not possible. */
static bool establish(cpex__watcher *w)
{
    if (w->ifd < 0) {
        w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->ifd < 0)
            return false;
        w->wd_dir = w->wd_target = -1;
        cpex__free(w->target_dir);
        cpex__free(w->target_base);
        w->target_dir = w->target_base = NULL;
    }
    w->wd_dir = inotify_add_watch(w->ifd, w->dir, WATCH_MASK);
    if (w->wd_dir < 0)
        return false;
    watch_target(w);
    return true;
}

static void lose(cpex__watcher *w, const char *why)
{
    if (!atomic_exchange(&w->alive, 0)) {
        return;
    }
    if (w->ifd >= 0)
        close(w->ifd); /* drops every watch; a fresh instance is made on retry */
    w->ifd = -1;
    w->wd_dir = w->wd_target = -1;
    char msg[600];
    snprintf(msg, sizeof msg, "%s; retrying every %d ms (the configuration in use stays)", why,
             RETRY_WATCH_MS);
    cpex__reload_report(w->m, CPEX_RELOAD_WATCH_LOST, w->path, msg, true);
}

/* Drain the events. Returns whether one concerns the file; may lose the watch. */
static bool drain(cpex__watcher *w)
{
    bool relevant = false;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(w->ifd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            char why[200];
            snprintf(why, sizeof why, "reading inotify events failed: %s", strerror(errno));
            lose(w, why);
            return true;
        }
        if (n == 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                relevant = true; /* events were lost: look again */
                continue;
            }
            if (ev->wd == w->wd_dir && (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))) {
                lose(w, "the watched directory was removed or moved");
                return true;
            }
            if (ev->wd == w->wd_target && (ev->mask & IN_IGNORED)) {
                w->wd_target = -1; /* an old ConfigMap directory went away */
                relevant = true;
                continue;
            }
            const char *name = ev->len ? ev->name : "";
            /* The file itself, Kubernetes' `..data` and its siblings, or
             * the file the path links to. Other files of a busy directory
             * are ignored. */
            if ((ev->wd == w->wd_dir &&
                 (strcmp(name, w->base) == 0 || strncmp(name, "..", 2) == 0)) ||
                (ev->wd == w->wd_target && w->target_base && strcmp(name, w->target_base) == 0))
                relevant = true;
        }
    }
    return relevant;
}

/* ------------------------------------------------------------------ */
/* Reading and applying                                                */
/* ------------------------------------------------------------------ */

typedef enum { READ_OK, READ_AGAIN, READ_FAILED } read_result;

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Read the whole file as it settled. READ_AGAIN: torn, empty or missing
 * for now (`why` says which). */
static read_result read_settled(const char *path, char **out, size_t *len, char *why, size_t cap)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, cap, "cannot open the file: %s", strerror(errno));
        return errno == ENOENT ? READ_AGAIN : READ_FAILED; /* mid-swap, or really gone */
    }
    struct stat before, after, by_path;
    if (fstat(fd, &before) != 0 || before.st_size < 0 ||
        (unsigned long long)before.st_size > MAX_CONFIG_BYTES) {
        snprintf(why, cap, "cannot use the file (not readable, or larger than %u MiB)",
                 MAX_CONFIG_BYTES >> 20);
        close(fd);
        return READ_FAILED;
    }
    size_t want = (size_t)before.st_size;
    char *buf = cpex__malloc(want + 1);
    size_t got = 0;
    while (buf && got < want) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    bool changed = fstat(fd, &after) != 0 || !same_file(&before, &after) ||
                   stat(path, &by_path) != 0 || by_path.st_ino != after.st_ino ||
                   by_path.st_dev != after.st_dev;
    close(fd);
    if (!buf) {
        snprintf(why, cap, "out of memory reading the file");
        return READ_FAILED;
    }
    if (changed || got != want) {
        cpex__free(buf);
        snprintf(why, cap, "the file changed while it was read");
        return READ_AGAIN;
    }
    if (got == 0) {
        cpex__free(buf);
        snprintf(why, cap, "the file is empty (being rewritten?)");
        return READ_AGAIN;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return READ_OK;
}

/* One look at the file. Returns true when it should be looked at again
 * after a quiet period (`tries` counts those for the current change). */
static bool attempt(cpex__watcher *w, int *tries)
{
    char *buf = NULL, why[300];
    size_t len = 0;
    read_result r = read_settled(w->path, &buf, &len, why, sizeof why);
    if (r != READ_OK) {
        if (r == READ_AGAIN && ++*tries <= READ_RETRIES)
            return true;
        char msg[400];
        snprintf(msg, sizeof msg, "%s; the configuration in use stays", why);
        cpex__reload_report(w->m, CPEX_RELOAD_FAILED, w->path, msg, true);
        *tries = 0;
        return false;
    }
    uint64_t h[2];
    content_hash(buf, len, h);
    if (w->has_applied && h[0] == w->applied[0] && h[1] == w->applied[1]) {
        cpex__free(buf);
        cpex__reload_report(w->m, CPEX_RELOAD_UNCHANGED, w->path, "same content as applied", true);
        *tries = 0;
        return false;
    }
    char *base_dir = cpex__config_dir_of(w->path);
    if (!base_dir) {
        cpex__free(buf);
        cpex__reload_report(w->m, CPEX_RELOAD_FAILED, w->path, "out of memory", true);
        return false;
    }
    cpex__config *cfg = NULL;
    cpex_error perr = CPEX_ERROR_INIT;
    cpex_status st = cpex__config_parse(buf, len, w->path, base_dir, &cfg, &perr);
    cpex_error_cleanup(&perr);
    bool again = false;
    if (st != CPEX_OK && *tries == 0) {
        /* Maybe half written by a writer that is not done: once more. */
        *tries = READ_RETRIES; /* a torn read after this is the end of it */
        again = true;
    } else if (st != CPEX_OK) {
        /* Counted and reported (redacted) as every refused reload is. */
        *tries = 0;
        cpex__reload_text(w->m, buf, len, w->path, base_dir, true, NULL);
    } else {
        *tries = 0;
        if (cpex__reload_parsed(w->m, cfg, w->path, true, NULL) == CPEX_OK) {
            w->has_applied = true;
            w->applied[0] = h[0];
            w->applied[1] = h[1];
        }
    }
    cpex__config_free(cfg);
    cpex__free(buf);
    cpex__free(base_dir);
    return again;
}

/* ------------------------------------------------------------------ */
/* The thread                                                          */
/* ------------------------------------------------------------------ */

static void *watch_main(void *arg)
{
    cpex__watcher *w = arg;
    int64_t first = -1, last = -1, retry_at = -1;
    int tries = 0;
    int64_t debounce = w->debounce_ms;
    while (!atomic_load(&w->stop)) {
        int64_t now = now_ms(), due = -1;
        if (first >= 0) {
            due = last + debounce;
            if (first + debounce * MAX_WAIT_FACTOR < due)
                due = first + debounce * MAX_WAIT_FACTOR;
        }
        if (!atomic_load(&w->alive) && (due < 0 || retry_at < due))
            due = retry_at;
        int timeout = due < 0      ? -1
                      : due <= now ? 0
                                   : (int)(due - now > INT_MAX ? INT_MAX : due - now);
        struct pollfd fds[2] = {{w->wake[0], POLLIN, 0}, {w->ifd, POLLIN, 0}};
        int n = poll(fds, w->ifd >= 0 ? 2 : 1, timeout);
        if (n < 0 && errno != EINTR) {
            char why[200];
            snprintf(why, sizeof why, "waiting for events failed: %s", strerror(errno));
            lose(w, why);
            retry_at = now_ms() + RETRY_WATCH_MS;
            struct timespec ts = {0, 50 * 1000000L}; /* never spin */
            nanosleep(&ts, NULL);
            continue;
        }
        if (atomic_load(&w->stop) || (n > 0 && (fds[0].revents & POLLIN)))
            break;
        now = now_ms();
        if (n > 0 && w->ifd >= 0 && (fds[1].revents & (POLLIN | POLLERR | POLLHUP))) {
            bool was_alive = atomic_load(&w->alive);
            if (drain(w)) {
                if (first < 0)
                    first = now;
                last = now;
            }
            if (was_alive && !atomic_load(&w->alive))
                retry_at = now + RETRY_WATCH_MS;
        }
        if (!atomic_load(&w->alive) && now >= retry_at) {
            if (establish(w)) {
                atomic_store(&w->alive, 1);
                cpex__reload_report(w->m, CPEX_RELOAD_WATCH_RESTORED, w->path,
                                    "the file is read again", true);
                first = last = now - debounce; /* read it now: changes may have been missed */
            } else {
                retry_at = now + RETRY_WATCH_MS;
            }
        }
        if (first >= 0 && (now >= last + debounce || now >= first + debounce * MAX_WAIT_FACTOR)) {
            first = last = -1;
            if (atomic_load(&w->alive))
                watch_target(w); /* a ConfigMap swap points the link elsewhere */
            if (attempt(w, &tries))
                first = last = now_ms(); /* look again after a quiet period */
        }
    }
    return NULL;
}

static void watcher_free(cpex__watcher *w)
{
    if (!w)
        return;
    if (w->ifd >= 0)
        close(w->ifd);
    if (w->wake[0] >= 0)
        close(w->wake[0]);
    if (w->wake[1] >= 0)
        close(w->wake[1]);
    cpex__free(w->path);
    cpex__free(w->dir);
    cpex__free(w->base);
    cpex__free(w->target_dir);
    cpex__free(w->target_base);
    cpex__free(w);
}

/* ------------------------------------------------------------------ */
/* API                                                                 */
/* ------------------------------------------------------------------ */

static char *absolute(const char *path)
{
    if (path[0] == '/')
        return cpex__strdup(path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return NULL;
    return cpex__asprintf("%s/%s", cwd, path);
}

cpex_status cpex_manager_watch_file(cpex_manager *m, const char *path, uint32_t debounce_ms,
                                    cpex_error *err)
{
    if (!m || !path || !*path || !m->reload)
        return cpex__error_add(err, CPEX_E_INVALID, NULL,
                               "watch_file: a manager and a file path are required");
    cpex__where where = {path, 0, 0, NULL, NULL};
    cpex__reload_state *r = m->reload;
    /* The lock is not held while the first reload runs: its callback may
     * read the status (which takes the lock). `watch_starting` keeps a
     * second watch_file out meanwhile. */
    pthread_mutex_lock(&r->watch_lock);
    if (r->watcher || r->watch_starting) {
        cpex_status st = cpex__error_add(err, CPEX_E_EXISTS, &where,
                                         "already watching '%s'; call cpex_manager_watch_stop "
                                         "first",
                                         r->watcher ? r->watcher->path : "a file");
        pthread_mutex_unlock(&r->watch_lock);
        return st;
    }
    r->watch_starting = true;
    pthread_mutex_unlock(&r->watch_lock);
    cpex__watcher *w = cpex__calloc(1, sizeof *w);
    cpex_status st = CPEX_OK;
    if (!w) {
        st = cpex__error_add(err, CPEX_E_NOMEM, &where, "out of memory");
        goto out;
    }
    w->m = m;
    w->ifd = w->wake[0] = w->wake[1] = -1;
    w->wd_dir = w->wd_target = -1;
    w->debounce_ms = debounce_ms ? debounce_ms : DEFAULT_DEBOUNCE_MS;
    atomic_init(&w->stop, 0);
    atomic_init(&w->alive, 0);
    w->path = absolute(path);
    char *copy = w->path ? cpex__strdup(w->path) : NULL;
    w->base = copy ? cpex__strdup(basename(copy)) : NULL;
    cpex__free(copy);
    copy = w->path ? cpex__strdup(w->path) : NULL;
    w->dir = copy ? cpex__strdup(dirname(copy)) : NULL;
    cpex__free(copy);
    if (!w->path || !w->base || !w->dir) {
        st = cpex__error_add(err, CPEX_E_NOMEM, &where, "out of memory");
        goto out;
    }
    if (pipe2(w->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        st = cpex__error_add(err, CPEX_E_IO, &where, "cannot watch the file: pipe: %s",
                             strerror(errno));
        goto out;
    }
    /* The watch before the first read: a change made in between is seen. */
    if (!establish(w)) {
        st = cpex__error_add(err, CPEX_E_IO, &where,
                             "cannot watch the directory '%s' with inotify: %s", w->dir,
                             strerror(errno));
        goto out;
    }
    atomic_store(&w->alive, 1);
    /* The first reload: the file as it is now becomes the configuration. */
    char *buf = NULL, why[300];
    size_t len = 0;
    read_result rr = READ_AGAIN;
    for (int i = 0; i <= READ_RETRIES && rr == READ_AGAIN; i++) {
        if (i) {
            struct timespec ts = {0, (long)w->debounce_ms * 1000000L % 1000000000L};
            nanosleep(&ts, NULL);
        }
        rr = read_settled(w->path, &buf, &len, why, sizeof why);
    }
    if (rr != READ_OK) {
        st = cpex__error_add(err, CPEX_E_IO, &where, "%s", why);
        char msg[400];
        snprintf(msg, sizeof msg, "%s; nothing is watched", why);
        cpex__reload_report(m, CPEX_RELOAD_FAILED, w->path, msg, false);
        goto out;
    }
    char *base_dir = cpex__config_dir_of(w->path);
    st = base_dir ? cpex__reload_text(m, buf, len, w->path, base_dir, false, err)
                  : cpex__error_add(err, CPEX_E_NOMEM, &where, "out of memory");
    if (st == CPEX_OK) {
        w->has_applied = true;
        content_hash(buf, len, w->applied);
    }
    cpex__free(base_dir);
    cpex__free(buf);
    if (st != CPEX_OK)
        goto out;
    /* Published before the thread starts: its first callback may stop it. */
    pthread_mutex_lock(&r->watch_lock);
    int rc = pthread_create(&w->thread, NULL, watch_main, w);
    if (rc == 0) {
        r->watcher = w;
        w = NULL;
    } else {
        st = cpex__error_add(err, CPEX_E_IO, &where, "cannot start the watcher thread: %s",
                             strerror(rc));
    }
    r->watch_starting = false;
    pthread_mutex_unlock(&r->watch_lock);
    watcher_free(w);
    return st;
out:
    pthread_mutex_lock(&r->watch_lock);
    r->watch_starting = false;
    pthread_mutex_unlock(&r->watch_lock);
    watcher_free(w);
    return st;
}

cpex_status cpex_manager_watch_stop(cpex_manager *m)
{
    if (!m || !m->reload)
        return CPEX_OK;
    cpex__reload_state *r = m->reload;
    pthread_mutex_lock(&r->watch_lock);
    cpex__watcher *w = r->watcher;
    if (w && pthread_equal(w->thread, pthread_self())) {
        pthread_mutex_unlock(&r->watch_lock);
        return CPEX_E_STATE; /* a callback cannot join its own thread */
    }
    r->watcher = NULL; /* from here status readers no longer see it */
    pthread_mutex_unlock(&r->watch_lock);
    if (!w)
        return CPEX_OK;
    atomic_store(&w->stop, 1);
    ssize_t ignored = write(w->wake[1], "x", 1);
    (void)ignored;
    pthread_join(w->thread, NULL);
    watcher_free(w);
    return CPEX_OK;
}

void cpex__watch_stop_all(cpex_manager *m) { cpex_manager_watch_stop(m); }

void cpex__watch_fill_status(cpex_manager *m, cpex_reload_status *st)
{
    cpex__reload_state *r = m->reload;
    pthread_mutex_lock(&r->watch_lock);
    if (r->watcher) {
        st->watching = true;
        st->watcher_alive = atomic_load(&r->watcher->alive) != 0;
        snprintf(st->watched_path, sizeof st->watched_path, "%s", r->watcher->path);
    }
    pthread_mutex_unlock(&r->watch_lock);
}
