/* libfile.c — see libfile.h. */
#include "loader/libfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* What a file of `mode` is, with what to do, for anything but a regular file. */
static void describe_type(mode_t mode, char *why, size_t cap)
{
    const char *fix = "point `kind` at the plugin's shared library (lib<name>.so)";
    if (S_ISFIFO(mode))
        snprintf(why, cap,
                 "it is a named pipe (FIFO), not a library file (the dynamic loader would wait "
                 "for a writer forever); %s",
                 fix);
    else if (S_ISSOCK(mode))
        snprintf(why, cap, "it is a socket, not a library file; %s", fix);
    else if (S_ISDIR(mode))
        snprintf(why, cap, "it is a directory; name the library file itself (lib<name>.so)");
    else if (S_ISCHR(mode))
        snprintf(why, cap, "it is a character device, not a library file; %s", fix);
    else if (S_ISBLK(mode))
        snprintf(why, cap, "it is a block device, not a library file; %s", fix);
    else
        snprintf(why, cap, "it is not a regular file (file type 0%o); %s",
                 (unsigned)(mode & S_IFMT), fix);
}

/* Why stat(path) failed with `e`, in words. */
static cpex__libfile_fail describe_stat_error(const char *path, int e, char *why, size_t cap)
{
    struct stat l;
    if (e == ENOENT && lstat(path, &l) == 0 && S_ISLNK(l.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? (size_t)n : 0] = '\0';
        snprintf(why, cap,
                 "it is a symbolic link to '%s', which does not exist (a dangling link); fix "
                 "the link or the path in `kind`",
                 target);
        return CPEX_LIBFILE_OTHER;
    }
    switch (e) {
    case ENOENT: return CPEX_LIBFILE_MISSING;
    case ELOOP:
        snprintf(why, cap,
                 "its path runs into a loop of symbolic links (or too many of them); fix the "
                 "links or name the file directly");
        break;
    case ENOTDIR:
        snprintf(why, cap,
                 "a part of its path that should be a directory is not one; check the path in "
                 "`kind`");
        break;
    case EACCES:
        snprintf(why, cap,
                 "it cannot be examined (%s); check the permissions of the directories on its "
                 "path",
                 strerror(e));
        break;
    case ENAMETOOLONG: snprintf(why, cap, "its path is too long for this system"); break;
    default: snprintf(why, cap, "it cannot be examined (%s)", strerror(e)); break;
    }
    return CPEX_LIBFILE_OTHER;
}

cpex__libfile_fail cpex__libfile_open(cpex__libfile *f, const char *path, char *why, size_t cap)
{
    f->fd = -1;
    memset(&f->st, 0, sizeof f->st);
    why[0] = '\0';
    /* What the path names, before anything opens it. */
    struct stat before;
    if (stat(path, &before) != 0)
        return describe_stat_error(path, errno, why, cap);
    if (!S_ISREG(before.st_mode)) {
        describe_type(before.st_mode, why, cap);
        return CPEX_LIBFILE_OTHER;
    }
    /* O_NONBLOCK: should a FIFO be swapped in since the stat, the open does
       not wait for a writer (and fstat below refuses it). O_NOCTTY: a
       terminal swapped in does not become ours. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == EACCES)
            snprintf(why, cap,
                     "the file is not readable by this process (%s); check its permissions",
                     strerror(e));
        else
            return describe_stat_error(path, e, why, cap);
        return CPEX_LIBFILE_OTHER;
    }
    if (fstat(fd, &f->st) != 0 || !S_ISREG(f->st.st_mode) || f->st.st_dev != before.st_dev ||
        f->st.st_ino != before.st_ino) {
        int e = errno;
        if (f->st.st_mode && !S_ISREG(f->st.st_mode)) {
            char what[400];
            describe_type(f->st.st_mode, what, sizeof what);
            snprintf(why, cap, "the path was replaced while it was being checked, and now %s",
                     what);
        } else if (f->st.st_mode) {
            snprintf(why, cap,
                     "the path was replaced by another file while it was being checked; try "
                     "again, and find out what replaces plugin files");
        } else {
            snprintf(why, cap, "the file cannot be examined (%s)", strerror(e));
        }
        close(fd);
        memset(&f->st, 0, sizeof f->st);
        return CPEX_LIBFILE_OTHER;
    }
    f->fd = fd;
    return CPEX_LIBFILE_OK;
}

static int same_time(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

int cpex__libfile_same(const cpex__libfile *f, const char *path, char *why, size_t cap)
{
    struct stat now;
    if (stat(path, &now) != 0) {
        snprintf(why, cap,
                 "disappeared while it was being loaded (%s); what was loaded is not what was "
                 "checked",
                 strerror(errno));
        return -1;
    }
    if (now.st_dev != f->st.st_dev || now.st_ino != f->st.st_ino) {
        snprintf(why, cap,
                 "was replaced by another file while it was being loaded; what was loaded is "
                 "not what was checked");
        return -1;
    }
    if (now.st_size != f->st.st_size || !same_time(now.st_mtim, f->st.st_mtim) ||
        !same_time(now.st_ctim, f->st.st_ctim)) {
        snprintf(why, cap,
                 "was changed while it was being loaded (its size, modification or change time "
                 "moved); what was loaded is not what was checked");
        return -1;
    }
    return 0;
}

int cpex__libfile_sha256(const cpex__libfile *f, char hex[CPEX__SHA256_HEX + 1], char *why,
                         size_t cap)
{
    cpex__sha256 h;
    cpex__sha256_init(&h);
    unsigned char buf[16384];
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(f->fd, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, cap, "cannot be read to compute its SHA-256 (%s)", strerror(errno));
            return -1;
        }
        if (n == 0)
            break;
        cpex__sha256_update(&h, buf, (size_t)n);
        off += n;
    }
    uint8_t digest[CPEX__SHA256_SIZE];
    cpex__sha256_final(&h, digest);
    cpex__sha256_hex(digest, hex);
    return 0;
}

void cpex__libfile_close(cpex__libfile *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}
