/*
 * main.c — cpex-worker: runs one isolated plugin for a libcpex host
 * (docs/isolation.md). Not a program to start by hand:
 *
 *   cpex-worker --serve CHANNELS PARENT_PID NAME
 *       started by the host with posix_spawn: the shared memory on fd 3,
 *       standard input /dev/null, standard output joined to standard
 *       error, every other descriptor closed;
 *   cpex-worker --describe LIBRARY [SYMBOL...]
 *       `cpex inspect`: the description of a library, read in the
 *       sandbox, as JSON on standard output.
 *
 * Channel 0 is served by the main thread (it also takes the control
 * requests); each other channel by a thread of its own, started once the
 * plugin is loaded (so that the sandbox, applied by the main thread before
 * the library is opened, covers every thread).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "isolation/proto.h"
#include "util/alloc.h"
#include "worker/worker.h"

worker wk;


static int usage(void)
{
    fprintf(stderr,
            "cpex-worker runs isolated plugins for libcpex; it is started by the library, not "
            "by hand.\n"
            "  cpex-worker --describe LIBRARY [SYMBOL...]   describe a library in the sandbox\n");
    return 2;
}

/* Close every descriptor above `keep` (posix_spawn closed them already;
   this is the second line, for a host that started us otherwise). */
static void close_above(int keep)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0) == 0)
        return;
#endif
    for (int fd = keep + 1; fd < 1024; fd++)
        close(fd);
}

static int serve(int argc, char **argv)
{
    if (argc < 5)
        return usage();
    long channels = strtol(argv[2], NULL, 10);
    long parent = strtol(argv[3], NULL, 10);
    snprintf(wk.plugin_name, sizeof wk.plugin_name, "%s", argv[4]);
    /* The host (the thread that started us) gone means we are done. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != (pid_t)parent)
        return 70;
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core); /* a crash dump would hold the plugin's data */
    close_above(ISO_SHM_FD);
    if (channels < 1 || channels > (long)ISO_MAX_CHANNELS)
        return 70;

    struct stat st;
    if (fstat(ISO_SHM_FD, &st) != 0 || (size_t)st.st_size != ISO_SHM_SIZE(channels))
        return 70;
    wk.size = (size_t)st.st_size;
    wk.base = mmap(NULL, wk.size, PROT_READ | PROT_WRITE, MAP_SHARED, ISO_SHM_FD, 0);
    if (wk.base == MAP_FAILED)
        return 70;
    close(ISO_SHM_FD);
    const cpex__iso_shm_head *head = wk.base;
    if (head->magic != ISO_SHM_MAGIC || head->version != ISO_PROTO_VERSION ||
        head->channels != (uint32_t)channels || head->area_size != ISO_AREA_SIZE)
        return 70;
    wk.channels = (uint32_t)channels;
    wk.chans = cpex__calloc(wk.channels, sizeof *wk.chans);
    if (!wk.chans)
        return 70;
    for (uint32_t i = 0; i < wk.channels; i++) {
        cpex__iso_chan_bind(&wk.chans[i].ch, wk.base, wk.channels, i);
        pthread_mutex_init(&wk.chans[i].up_lock, NULL);
    }
    wk.garble = getenv("CPEX_WORKER_TEST_GARBLE");
    (void)wk_host_table();

    wchan *c0 = &wk.chans[0];
    for (;;) {
        cpex__iso_chan_wait_request(&c0->ch);
        uint32_t len = c0->ch.ctl->req_len;
        if (len == 0 || len > ISO_AREA_SIZE)
            return 70; /* a host that writes this is broken: end rather than guess */
        uint8_t op = c0->ch.req[0];
        if (op == ISO_REQ_CALL || op == ISO_REQ_VERDICT)
            wk_serve_call(c0, c0->ch.req, len);
        else if (wk_control(op, c0->ch.req, len, &c0->ch))
            break;
    }
    /* DESTROY answered: leave without running anything else of the plugin's
       (its atexit handlers and destructors ran, or not, with its dlclose). */
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--serve") == 0)
        return serve(argc, argv);
    if (argc >= 3 && strcmp(argv[1], "--describe") == 0)
        return wk_describe_main(argc, argv);
    return usage();
}
