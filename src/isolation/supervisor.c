/*
 * supervisor.c — the worker processes of one isolated plugin: starting
 * them, noticing when they end, restarting them, and giving up.
 *
 * One thread per isolated plugin. It alone starts workers: the worker's
 * parent-death signal (PR_SET_PDEATHSIG) follows the thread that started
 * it, and this thread lives exactly as long as the plugin. It sleeps in
 * poll() on the serving worker's pidfd (and an eventfd that stops it), so
 * a death is seen the moment it happens, by signal or exit, whatever the
 * plugin did to its own memory. Then it:
 *   - reaps the worker, and writes how it ended where the calls in flight
 *     read it, before it wakes them (their result: plugin_crashed);
 *   - counts a crash (not a kill for a timeout or a stop): the
 *     max_crashes_per_minute-th crash within 60 s disables the plugin;
 *   - starts the next worker: at once after a crash that a call caused or
 *     after a worker that served, with exponential backoff (10 ms, doubling,
 *     at most 10 s) while workers fail to start or die before serving.
 * Starting means: shared memory, posix_spawn, LOAD (and INIT when the
 * manager initialized the plugin), each within the load timeout. A call
 * that finds no worker waits for one until its deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "isolation/proto.h"
#include "isolation/proxy.h"
#include "isolation/spawn.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/errors.h"

#define BACKOFF_FIRST_NS (10 * 1000000LL)
#define BACKOFF_MAX_NS (10 * 1000000000LL)
#define CRASH_WINDOW_NS (60 * 1000000000LL)

/* ------------------------------------------------------------------ */
/* Starting a worker                                                   */
/* ------------------------------------------------------------------ */

/* A worker's log lines outside calls: kept for the next call to log. */
static void log_lines(cpex__iso_proxy *p, const cpex__iso_ctl_reply *r)
{
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < r->log_count; i++)
        cpex__iso_proxy_note(p, r->logs[i].level, r->logs[i].text);
    pthread_mutex_unlock(&p->lock);
}

/* The first LOAD reply decides the handlers (and whether the plugin is an
   audit sink); a later one must agree: the manager wired the first. */
static bool adopt_load(cpex__iso_proxy *p, const cpex__iso_ctl_reply *r, char *why, size_t cap)
{
    if (p->adopted) {
        bool same = r->handler_count == p->handler_count && r->has_verdict == p->has_verdict;
        for (size_t i = 0; same && i < r->handler_count; i++)
            same = strcmp(r->handlers[i].hook, p->handlers[i].hook) == 0;
        if (!same)
            snprintf(why, cap,
                     "the restarted plugin registered other handlers (or %s verdict handler) "
                     "than at its first start; it must register the same ones every time",
                     p->has_verdict ? "no" : "a");
        return same;
    }
    p->adopted = true;
    p->has_verdict = r->has_verdict;
    /* A sink may have no handler at all (reply.c allows it only then). */
    if (r->handler_count && !(p->handlers = cpex__calloc(r->handler_count, sizeof *p->handlers)))
        goto oom;
    p->handler_count = r->handler_count;
    for (size_t i = 0; i < r->handler_count; i++) {
        p->handlers[i].hook = cpex__strdup(r->handlers[i].hook);
        p->handlers[i].fn = cpex__iso_proxy_handler;
        p->handlers[i].payload_type =
            r->handlers[i].payload_type ? cpex__strdup(r->handlers[i].payload_type) : NULL;
        if (!p->handlers[i].hook || (r->handlers[i].payload_type && !p->handlers[i].payload_type))
            goto oom;
    }
    p->reported_name = r->name ? cpex__strdup(r->name) : NULL;
    p->reported_version = r->version ? cpex__strdup(r->version) : NULL;
    p->origin = cpex__strdup(r->origin);
    p->protections = cpex__strdup(r->protections);
    p->has_initialize = r->has_initialize;
    p->has_shutdown = r->has_shutdown;
    if ((r->name && !p->reported_name) || (r->version && !p->reported_version) || !p->origin ||
        !p->protections)
        goto oom;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < r->warning_count; i++)
        cpex__iso_proxy_note(p, CPEX_LOG_WARN, r->warnings[i]);
    pthread_mutex_unlock(&p->lock);
    return true;
oom:
    snprintf(why, cap, "out of memory");
    return false;
}

/* Start a worker process; nothing is asked of it yet. NULL with `why`. */
static cpex__iso_inc *spawn_worker(cpex__iso_proxy *p, char *why, size_t cap)
{
    int fd = -1;
    cpex__iso_inc *inc = cpex__iso_inc_new(p, &fd, why, cap);
    if (!inc)
        return NULL;
    char nchan[16], parent[24];
    snprintf(nchan, sizeof nchan, "%u", p->channels);
    snprintf(parent, sizeof parent, "%ld", (long)getpid());
    char *argv[] = {p->worker_path, "--serve", nchan, parent, p->name, NULL};
    inc->pid = cpex__iso_spawn(p->worker_path, argv, fd, -1, why, cap);
    close(fd);
    if (inc->pid < 0) {
        cpex__iso_inc_unref(inc);
        return NULL;
    }
    inc->pidfd = cpex__iso_pidfd_open(inc->pid);
    if (inc->pidfd < 0) {
        snprintf(why, cap, "cannot watch the worker (pidfd_open: %s)", strerror(errno));
        kill(inc->pid, SIGKILL);
        int st;
        while (waitpid(inc->pid, &st, 0) < 0 && errno == EINTR) {
        }
        cpex__iso_inc_unref(inc);
        return NULL;
    }
    return inc;
}

/* Kill and reap a worker that will not serve. */
static void discard(cpex__iso_inc *inc)
{
    if (!inc)
        return;
    cpex__iso_pidfd_kill(inc->pidfd);
    if (!atomic_load(&inc->dead)) {
        int sig, status;
        char text[300];
        cpex__iso_pidfd_reap(inc->pidfd, 1, &sig, &status, text, sizeof text);
        cpex__iso_inc_mark_dead(inc);
    }
    cpex__iso_inc_unref(inc);
}

/*
 * A spare for the next restart: a worker started now and told to PREPARE
 * (set up its sandbox), not waited for. A restart then costs LOAD alone —
 * no process creation (one to two milliseconds on a virtual machine) and
 * no seccomp compilation on the way. Kept by a plugin whose worker has
 * died once; a plugin that never crashes pays nothing.
 */
static void make_spare(cpex__iso_proxy *p)
{
    char why[300];
    cpex__iso_inc *inc = spawn_worker(p, why, sizeof why);
    if (!inc)
        return;
    int ch = cpex__iso_inc_take_channel(inc, true, 0); /* free: nobody else has it */
    memcpy(inc->chans[ch].req, p->load_req, p->load_req_len);
    inc->chans[ch].req[0] = ISO_REQ_PREPARE;
    cpex__iso_chan_post(&inc->chans[ch], (uint32_t)p->load_req_len);
    pthread_mutex_lock(&p->lock);
    p->spare = inc;
    pthread_mutex_unlock(&p->lock);
}

/* The spare, once its sandbox is up; NULL when there is none or it failed. */
static cpex__iso_inc *take_spare(cpex__iso_proxy *p, int64_t deadline)
{
    pthread_mutex_lock(&p->lock);
    cpex__iso_inc *inc = p->spare;
    p->spare = NULL;
    pthread_mutex_unlock(&p->lock);
    if (!inc)
        return NULL;
    cpex__iso_ctl_reply r;
    uint8_t *buf = NULL;
    char why[600];
    bool ok = cpex__iso_inc_await(inc, 0, ISO_REQ_PREPARE, deadline, true, &r, &buf, why,
                                  sizeof why) == 0;
    if (ok) {
        log_lines(p, &r);
        ok = r.status == ISO_REP_OK;
        cpex__iso_ctl_reply_free(&r);
        cpex__free(buf);
    }
    cpex__iso_inc_give_channel(inc, 0);
    if (ok)
        return inc;
    discard(inc); /* a fresh start reports whatever went wrong */
    return NULL;
}

/* A worker that serves: the spare or a new one, LOAD and (when the manager
   initialized the plugin) INIT. NULL with `why` or `err` items on failure. */
static cpex__iso_inc *start_worker(cpex__iso_proxy *p, bool first, cpex_error *err, char *why,
                                   size_t cap)
{
    int64_t deadline = cpex__deadline_add(cpex__now_ns(), p->load_timeout_ns);
    cpex__iso_inc *inc = take_spare(p, deadline);
    if (!inc && !(inc = spawn_worker(p, why, cap)))
        return NULL;
    cpex__iso_ctl_reply r;
    uint8_t *buf = NULL;
    bool ok = cpex__iso_inc_control(inc, ISO_REQ_LOAD, p->load_req, p->load_req_len, deadline, true,
                                    &r, &buf, why, cap) == 0;
    if (ok) {
        log_lines(p, &r);
        if (r.status == ISO_REP_FAILED) {
            for (size_t i = 0; i < r.error_count; i++) {
                if (first)
                    cpex__error_add(err, r.error_codes[i], NULL, "%s", r.errors[i]);
                else if (i == 0)
                    snprintf(why, cap, "%s", r.errors[0]);
            }
            ok = false;
        } else if (r.status != ISO_REP_OK) {
            snprintf(why, cap, "the worker refused LOAD: %s", r.message ? r.message : "?");
            ok = false;
        } else {
            ok = adopt_load(p, &r, why, cap);
        }
        cpex__iso_ctl_reply_free(&r);
        cpex__free(buf);
    }
    pthread_mutex_lock(&p->lock);
    bool init = p->initialized && p->has_initialize;
    pthread_mutex_unlock(&p->lock);
    if (ok && init) {
        uint8_t op = ISO_REQ_INIT;
        deadline = cpex__deadline_add(cpex__now_ns(), p->load_timeout_ns);
        ok = cpex__iso_inc_control(inc, ISO_REQ_INIT, &op, 1, deadline, true, &r, &buf, why, cap) ==
             0;
        if (ok) {
            log_lines(p, &r);
            if (r.status != ISO_REP_OK) {
                snprintf(why, cap, "initialize failed: %s", r.message ? r.message : "(no message)");
                ok = false;
            }
            cpex__iso_ctl_reply_free(&r);
            cpex__free(buf);
        }
    }
    if (ok)
        return inc;
    discard(inc);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Crashes and restarts (under p->lock)                                */
/* ------------------------------------------------------------------ */

/* Count a crash at `now`; true when it makes max_crashes within 60 s. */
static bool count_crash(cpex__iso_proxy *p, int64_t now)
{
    p->crashes++;
    int64_t sec = now / 1000000000;
    size_t slot = (size_t)(sec % 60);
    if (p->crash_second[slot] != sec) {
        p->crash_second[slot] = sec;
        p->crash_count[slot] = 0;
    }
    p->crash_count[slot]++;
    uint64_t total = 0;
    for (size_t i = 0; i < 60; i++)
        if (sec - p->crash_second[i] < 60)
            total += p->crash_count[i];
    return total >= p->max_crashes;
}

/* Keep a line for the next call to log (see proxy.h); under p->lock. */
void cpex__iso_proxy_note(cpex__iso_proxy *p, uint32_t level, const char *text)
{
    if (p->pending_count >= sizeof p->pending / sizeof *p->pending)
        return;
    char *copy = cpex__strdup(text);
    if (!copy)
        return;
    p->pending[p->pending_count].level = level;
    p->pending[p->pending_count++].text = copy;
}

static int64_t backoff(uint32_t failures)
{
    if (failures == 0)
        return 0;
    int64_t d = BACKOFF_FIRST_NS;
    for (uint32_t i = 1; i < failures && d < BACKOFF_MAX_NS; i++)
        d *= 2;
    return d < BACKOFF_MAX_NS ? d : BACKOFF_MAX_NS;
}

static void disable(cpex__iso_proxy *p, const char *last)
{
    p->state = ISO_P_DISABLED;
    snprintf(
        p->down_reason, sizeof p->down_reason,
        "the plugin is disabled: its worker crashed %u times within a minute (the limit, "
        "sandbox.max_crashes_per_minute); the last time it %.300s. Fix the plugin, or raise the "
        "limit, and load the configuration again",
        p->max_crashes, last);
    cpex__iso_proxy_note(p, CPEX_LOG_ERROR, p->down_reason);
}

/* The serving worker ended: reap it, tell its callers, plan the next. */
static void on_death(cpex__iso_proxy *p, cpex__iso_inc *inc)
{
    char text[300];
    int sig = -1, status = -1;
    cpex__iso_pidfd_reap(inc->pidfd, 1, &sig, &status, text, sizeof text);
    int condemned = atomic_load(&inc->condemned);
    /* A kill for a timeout, a stop or the CPU limit is the plugin's limit
       enforced, not a crash. */
    bool crash = condemned != ISO_CONDEMN_TIMEOUT && condemned != ISO_CONDEMN_STOP &&
                 !(p->cpu_seconds > 0 && sig == SIGXCPU);
    bool in_call = false;
    for (uint32_t i = 0; i < p->channels; i++)
        in_call = in_call || atomic_load(&inc->busy[i]);
    bool served = atomic_load(&inc->served) > 0;
    int64_t now = cpex__now_ns();

    pthread_mutex_lock(&p->lock);
    char what[450];
    if (condemned != ISO_CONDEMN_NONE) {
        pthread_mutex_lock(&inc->lock);
        snprintf(what, sizeof what, "was stopped by the host: %s", inc->condemn_text);
        pthread_mutex_unlock(&inc->lock);
    } else {
        snprintf(what, sizeof what, "%s", text);
    }
    if (p->state == ISO_P_STOPPED)
        crash = false; /* a worker ending as the plugin stops is no crash */
    if (crash && count_crash(p, now))
        disable(p, what);
    inc->death_signal = sig;
    inc->death_status = status;
    snprintf(inc->death_text, sizeof inc->death_text, "%s; %s", what,
             p->state == ISO_P_DISABLED  ? "that was one crash too many: the plugin is disabled"
             : p->state == ISO_P_STOPPED ? "the plugin is stopping"
                                         : "a new worker is started");
    cpex__iso_inc_mark_dead(inc);
    bool was_current = p->current == inc;
    if (was_current)
        p->current = NULL;
    if (p->state == ISO_P_READY || p->state == ISO_P_STARTING) {
        p->state = ISO_P_DOWN;
        if (crash && !in_call && !served)
            p->start_failures++;
        p->next_start_ns = now + backoff(p->start_failures);
        snprintf(p->down_reason, sizeof p->down_reason, "its worker %s", what);
    }
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    if (was_current)
        cpex__iso_inc_unref(inc);
}

/* ------------------------------------------------------------------ */
/* The thread                                                          */
/* ------------------------------------------------------------------ */

static void *supervise(void *arg)
{
    cpex__iso_proxy *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        int64_t now = cpex__now_ns();
        if ((p->state == ISO_P_DOWN || p->state == ISO_P_STARTING) && now >= p->next_start_ns) {
            bool first = !p->first_done;
            p->state = ISO_P_STARTING;
            pthread_mutex_unlock(&p->lock);
            char why[700] = "";
            cpex_error err = CPEX_ERROR_INIT;
            cpex__iso_inc *inc = start_worker(p, first, &err, why, sizeof why);
            pthread_mutex_lock(&p->lock);
            if (first) {
                if (!inc && err.count == 0)
                    cpex__error_add(&err, CPEX_E_LOAD, NULL, "%s", why);
                cpex__error_move(&p->first_err, &err);
                p->first_done = true;
                if (!inc) {
                    p->state = ISO_P_STOPPED;
                    pthread_cond_broadcast(&p->cond);
                    break;
                }
            }
            cpex_error_cleanup(&err);
            if (inc && p->stop) {
                p->current = inc;
                break;
            }
            if (inc) {
                p->current = inc;
                p->state = ISO_P_READY;
                if (!first) {
                    p->restarts++;
                    if (!p->spare) {
                        /* The callers waiting for this worker go first; the
                           spare's process creation is no business of theirs. */
                        pthread_cond_broadcast(&p->cond);
                        pthread_mutex_unlock(&p->lock);
                        make_spare(p);
                        pthread_mutex_lock(&p->lock);
                    }
                }
            } else {
                char last[760];
                snprintf(last, sizeof last, "could not be restarted (%s)", why);
                p->start_failures++;
                if (count_crash(p, cpex__now_ns()))
                    disable(p, last);
                else {
                    p->state = ISO_P_DOWN;
                    p->next_start_ns = cpex__now_ns() + backoff(p->start_failures);
                    snprintf(p->down_reason, sizeof p->down_reason, "its worker %.560s", last);
                }
            }
            pthread_cond_broadcast(&p->cond);
            continue;
        }
        struct pollfd fds[3] = {{p->cmd_efd, POLLIN, 0}, {-1, POLLIN, 0}, {-1, POLLIN, 0}};
        cpex__iso_inc *watched = p->current, *spare = p->spare;
        if (watched) {
            atomic_fetch_add(&watched->refs, 1);
            fds[1].fd = watched->pidfd;
        }
        if (spare)
            fds[2].fd = spare->pidfd; /* only this thread takes or drops the spare */
        int timeout = -1;
        if (p->state == ISO_P_DOWN) {
            int64_t ms = (p->next_start_ns - now + 999999) / 1000000;
            timeout = ms < 0 ? 0 : ms > 60000 ? 60000 : (int)ms;
        }
        pthread_mutex_unlock(&p->lock);
        int n = poll(fds, 3, timeout);
        if (n > 0 && (fds[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t rd = read(p->cmd_efd, &v, sizeof v);
            (void)rd;
        }
        if (n > 0 && watched && fds[1].revents)
            on_death(p, watched);
        cpex__iso_inc_unref(watched);
        if (n > 0 && spare && fds[2].revents) {
            pthread_mutex_lock(&p->lock);
            p->spare = NULL;
            pthread_mutex_unlock(&p->lock);
            discard(spare);
        }
        pthread_mutex_lock(&p->lock);
    }
    /* Stopping: the workers left go with this thread. */
    cpex__iso_inc *inc = p->current, *spare = p->spare;
    p->current = NULL;
    p->spare = NULL;
    p->state = ISO_P_STOPPED;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    discard(spare);
    if (inc) {
        cpex__iso_inc_condemn(inc, ISO_CONDEMN_STOP, "the plugin is stopping");
        char text[300];
        int sig, status;
        cpex__iso_pidfd_reap(inc->pidfd, 1, &sig, &status, text, sizeof text);
        snprintf(inc->death_text, sizeof inc->death_text, "was stopped: the plugin is stopping");
        cpex__iso_inc_mark_dead(inc);
        cpex__iso_inc_unref(inc);
    }
    return NULL;
}

cpex_status cpex__iso_supervisor_start(cpex__iso_proxy *p, cpex_error *err)
{
    p->cmd_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->cmd_efd < 0)
        return cpex__error_add(err, CPEX_E_LOAD, NULL, "cannot start the supervisor: %s",
                               strerror(errno));
    p->state = ISO_P_STARTING;
    int rc = pthread_create(&p->thread, NULL, supervise, p);
    if (rc != 0) {
        close(p->cmd_efd);
        p->cmd_efd = -1;
        return cpex__error_add(err, CPEX_E_LOAD, NULL, "cannot start the supervisor thread: %s",
                               strerror(rc));
    }
    pthread_mutex_lock(&p->lock);
    while (!p->first_done)
        pthread_cond_wait(&p->cond, &p->lock);
    bool ok = p->state != ISO_P_STOPPED;
    pthread_mutex_unlock(&p->lock);
    if (ok)
        return CPEX_OK;
    pthread_join(p->thread, NULL);
    close(p->cmd_efd);
    p->cmd_efd = -1;
    cpex_status st = p->first_err.code != CPEX_OK ? p->first_err.code : CPEX_E_LOAD;
    cpex__error_move(err, &p->first_err);
    return st;
}

void cpex__iso_supervisor_stop(cpex__iso_proxy *p)
{
    if (p->cmd_efd < 0)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    uint64_t one = 1;
    ssize_t wr = write(p->cmd_efd, &one, sizeof one);
    (void)wr;
    pthread_join(p->thread, NULL);
    close(p->cmd_efd);
    p->cmd_efd = -1;
}
