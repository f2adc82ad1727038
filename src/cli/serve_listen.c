/*
 * serve_listen.c — the listening socket of `cpex serve`: TCP on
 * ADDR:PORT (--listen; IPv6 as [ADDR]:PORT; port 0 picks a free one) or a
 * Unix socket (--unix PATH). Opened here rather than by libmicrohttpd so
 * that the address in use, the port picked and the loopback check are
 * ours to report before the daemon starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "serve_listen.h"

enum { BACKLOG = 1024 };

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

/* Split "ADDR:PORT" or "[ADDR]:PORT" into host and port (copies). */
bool serve_listen_split(const char *spec, char *host, size_t host_cap, char *port, size_t port_cap)
{
    const char *colon;
    const char *h = spec;
    size_t hlen;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':')
            return false;
        h = spec + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon || strchr(spec, ':') != colon) /* a bare IPv6 address needs brackets */
            return false;
        hlen = (size_t)(colon - spec);
    }
    size_t plen = strlen(colon + 1);
    if (hlen == 0 || hlen >= host_cap || plen == 0 || plen >= port_cap ||
        strspn(colon + 1, "0123456789") != plen)
        return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, colon + 1, plen + 1);
    return atoi(port) <= 65535;
}

static int open_tcp(const char *spec, serve_listener *out, char *why, size_t cap)
{
    char host[128], port[8];
    if (!serve_listen_split(spec, host, sizeof host, port, sizeof port)) {
        snprintf(why, cap,
                 "'%s' is not ADDR:PORT (e.g. 127.0.0.1:8787, [::1]:8787, "
                 "localhost:0 for a free port)",
                 spec);
        return -1;
    }
    struct addrinfo hints = {0}, *list = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host, port, &hints, &list);
    if (gai != 0) {
        snprintf(why, cap, "cannot resolve '%s': %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, BACKLOG) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(list);
    if (fd < 0) {
        snprintf(why, cap, "cannot listen on %s: %s%s", spec, strerror(err),
                 err == EADDRINUSE ? " (another process listens there: pick another port "
                                     "with --listen)"
                                   : "");
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned p = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
            p = ntohs(in->sin_port);
            snprintf(out->address, sizeof out->address, "http://%s:%u", ip, p);
        } else {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
            p = ntohs(in6->sin6_port);
            snprintf(out->address, sizeof out->address, "http://[%s]:%u", ip, p);
        }
        out->loopback = is_loopback((const struct sockaddr *)&ss);
    }
    out->fd = fd;
    return 0;
}

/* Whether a server answers on the Unix socket at `path`. */
static bool unix_alive(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool alive = connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0;
    close(fd);
    return alive;
}

static int open_unix(const char *path, serve_listener *out, char *why, size_t cap)
{
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(why, cap, "the socket path '%s' is longer than %zu bytes", path,
                 sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    struct stat st;
    if (lstat(path, &st) == 0) {
        /* A socket left by a server that died may go; anything else stays. */
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(why, cap, "'%s' exists and is not a socket; remove it or pick another path",
                     path);
            return -1;
        }
        if (unix_alive(&sa)) {
            snprintf(why, cap, "a server already answers on '%s'", path);
            return -1;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (const struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(fd, BACKLOG) != 0) {
        snprintf(why, cap, "cannot listen on the Unix socket '%s': %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    out->fd = fd;
    out->loopback = true; /* reachable from this machine only */
    out->unix_path = path;
    snprintf(out->address, sizeof out->address, "unix:%s", path);
    return 0;
}

int serve_listen_open(const char *tcp, const char *unix_path, serve_listener *out, char *why,
                      size_t cap)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    return unix_path ? open_unix(unix_path, out, why, cap) : open_tcp(tcp, out, why, cap);
}

void serve_listen_cleanup(serve_listener *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->unix_path)
        unlink(l->unix_path);
    l->unix_path = NULL;
}
