/* coarse_clock.c — see coarse_clock.h. */
#include "util/coarse_clock.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"

_Atomic int64_t cpex__coarse_word;

enum { TICKER_NONE, TICKER_STARTED, TICKER_FAILED };

static _Atomic int ticker_state = TICKER_NONE;
static _Atomic int wanted;  /* a reader found the word cleared since the probe */
static _Atomic int parked;  /* the ticker waits for a reader */
static _Atomic int running; /* for tests: ticking, not parked */
static bool stop;           /* under mu */
static bool atfork_done;    /* set once, by register_atfork */
static pid_t ticker_pid;    /* the process whose ticker it is */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv; /* on CLOCK_MONOTONIC, made by start() */
static pthread_t ticker;

/* Wait on cv (mu held) until `until` ns of CLOCK_MONOTONIC or a signal. */
static void wait_until(int64_t until)
{
    struct timespec ts = {(time_t)(until / 1000000000), (long)(until % 1000000000)};
    (void)pthread_cond_timedwait(&cv, &mu, &ts);
}

static void *ticker_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "cpex-ticker");
    pthread_mutex_lock(&mu);
    while (!stop) {
        atomic_store(&running, 1);
        for (int i = 0; i < CPEX__COARSE_PROBE_STEPS && !stop; i++) {
            int64_t now = cpex__now_ns();
            atomic_store_explicit(&cpex__coarse_word, now, memory_order_relaxed);
            wait_until(now + CPEX__COARSE_STEP_NS);
        }
        if (stop)
            break;
        /* The probe: for one step every reader reads the clock itself and
         * says it is there. */
        atomic_store(&wanted, 0);
        atomic_store(&cpex__coarse_word, 0);
        wait_until(cpex__now_ns() + CPEX__COARSE_STEP_NS);
        atomic_store(&parked, 1);
        if (!atomic_load(&wanted)) {
            atomic_store(&running, 0);
            while (!atomic_load(&wanted) && !stop)
                pthread_cond_wait(&cv, &mu);
        }
        atomic_store(&parked, 0);
    }
    atomic_store(&cpex__coarse_word, 0);
    atomic_store(&running, 0);
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* fork: the child has no ticker; it starts its own on its first reading. */
static void fork_prepare(void) { pthread_mutex_lock(&mu); }
static void fork_parent(void) { pthread_mutex_unlock(&mu); }
static void fork_child(void)
{
    pthread_mutex_unlock(&mu);
    atomic_store(&cpex__coarse_word, 0);
    atomic_store(&wanted, 0);
    atomic_store(&parked, 0);
    atomic_store(&running, 0);
    if (atomic_load(&ticker_state) == TICKER_STARTED)
        atomic_store(&ticker_state, TICKER_NONE);
}

/* Registered before `mu` is first taken: a fork that raced a first
 * start() could otherwise copy `mu` locked into a child that has no
 * handler to unlock it. */
static void register_atfork(void)
{
    atfork_done = pthread_atfork(fork_prepare, fork_parent, fork_child) == 0;
}

static void start(void)
{
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&mu);
    if (atomic_load(&ticker_state) != TICKER_NONE) {
        pthread_mutex_unlock(&mu);
        return;
    }
    int state = TICKER_FAILED;
    pthread_condattr_t ca;
    if (atfork_done && pthread_condattr_init(&ca) == 0) {
        if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
            pthread_cond_init(&cv, &ca) == 0) {
            /* The ticker takes none of the host's signals. */
            sigset_t all, old;
            sigfillset(&all);
            pthread_sigmask(SIG_SETMASK, &all, &old);
            stop = false;
            atomic_store(&wanted, 1);
            /* A small stack: it sleeps and reads the clock. */
            pthread_attr_t ta;
            bool attr = pthread_attr_init(&ta) == 0;
            if (attr)
                (void)pthread_attr_setstacksize(&ta, 256 * 1024);
            if (pthread_create(&ticker, attr ? &ta : NULL, ticker_main, NULL) == 0) {
                state = TICKER_STARTED;
                ticker_pid = getpid();
            } else {
                pthread_cond_destroy(&cv);
            }
            if (attr)
                pthread_attr_destroy(&ta);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
        }
        pthread_condattr_destroy(&ca);
    }
    atomic_store(&ticker_state, state);
    pthread_mutex_unlock(&mu);
}

int64_t cpex__coarse_now_slow(void)
{
    int64_t now = cpex__now_ns();
    int state = atomic_load(&ticker_state);
    if (state == TICKER_NONE) {
        start();
    } else if (state == TICKER_STARTED) {
        if (!atomic_load(&wanted))
            atomic_store(&wanted, 1);
        if (atomic_load(&parked)) {
            pthread_mutex_lock(&mu);
            pthread_cond_signal(&cv);
            pthread_mutex_unlock(&mu);
        }
    }
    return now;
}

int cpex__coarse_ticker_running(void) { return atomic_load(&running); }

/* Unloading libcpex (dlclose, or exit) stops the ticker first: its code is
 * about to go. Readings after this one are CLOCK_MONOTONIC reads (FAILED:
 * no new ticker), and `cv` stays valid for a reader still signalling it.
 * In the child of a fork that ran no atfork handlers (_Fork, a raw clone)
 * the thread is not there to join; such a child's word stays frozen, so
 * its long deadlines are not checked (do not invoke in one). */
__attribute__((destructor)) static void coarse_clock_fini(void)
{
    if (atomic_load(&ticker_state) != TICKER_STARTED || getpid() != ticker_pid)
        return;
    pthread_mutex_lock(&mu);
    stop = true;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(ticker, NULL);
    atomic_store(&ticker_state, TICKER_FAILED);
}
