/*
 * elfsyms.c — reading .dynsym from a file; see elfsyms.h.
 *
 * The file is untrusted input: every offset and size read from it is
 * checked against the file's size before use, and the tables we read are
 * capped, so a truncated or hostile file yields "cannot read", never a
 * crash or a huge allocation.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfsyms.h"

/* Tables larger than this are not a plugin's. */
#define TABLE_MAX (64u * 1024u * 1024u)

void cli_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* Read exactly `size` bytes at `off`, or fail. */
static int read_at(int fd, void *buf, size_t size, uint64_t off, uint64_t file_size)
{
    if (off > file_size || size > file_size - off)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, (char *)buf + done, size - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

static void *read_table(int fd, uint64_t off, uint64_t size, uint64_t file_size)
{
    if (size == 0 || size > TABLE_MAX)
        return NULL;
    void *p = malloc((size_t)size);
    if (p && read_at(fd, p, (size_t)size, off, file_size) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **cli_elf_exported(const char *path, const char *prefix, char *why, size_t cap)
{
    ElfW(Ehdr) eh;
    ElfW(Shdr) *sh = NULL;
    ElfW(Sym) *syms = NULL;
    char *strtab = NULL, **out = NULL;
    size_t count = 0;
    struct stat stbuf;
    /* O_NONBLOCK: a FIFO at the path must not block the open (fstat then
       refuses it); O_NOCTTY: nor may a terminal become ours. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        snprintf(why, cap, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &stbuf) != 0 || !S_ISREG(stbuf.st_mode)) {
        snprintf(why, cap, "not a regular file");
        goto done;
    }
    uint64_t fsize = (uint64_t)stbuf.st_size;
    if (read_at(fd, &eh, sizeof eh, 0, fsize) != 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
        snprintf(why, cap, "not an ELF file");
        goto done;
    }
    /* Only what this process could load: same class and byte order. */
    unsigned char cls = sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    unsigned char data = ELFDATA2MSB;
#else
    unsigned char data = ELFDATA2LSB;
#endif
    if (eh.e_ident[EI_CLASS] != cls || eh.e_ident[EI_DATA] != data) {
        snprintf(why, cap, "an ELF file of another class or byte order than this host");
        goto done;
    }
    if (eh.e_shentsize != sizeof(ElfW(Shdr)) || eh.e_shnum == 0 || eh.e_shnum > 65000) {
        snprintf(why, cap, "no usable section headers (stripped beyond .dynsym?)");
        goto done;
    }
    sh = read_table(fd, eh.e_shoff, (uint64_t)eh.e_shnum * sizeof *sh, fsize);
    if (!sh) {
        snprintf(why, cap, "section headers outside the file");
        goto done;
    }
    size_t dyn = eh.e_shnum;
    for (size_t i = 0; i < eh.e_shnum; i++) {
        if (sh[i].sh_type == SHT_DYNSYM) {
            dyn = i;
            break;
        }
    }
    if (dyn == eh.e_shnum || sh[dyn].sh_link >= eh.e_shnum ||
        sh[dyn].sh_entsize != sizeof(ElfW(Sym))) {
        snprintf(why, cap, "no dynamic symbol table");
        goto done;
    }
    const ElfW(Shdr) *ss = &sh[sh[dyn].sh_link];
    syms = read_table(fd, sh[dyn].sh_offset, sh[dyn].sh_size, fsize);
    strtab = read_table(fd, ss->sh_offset, ss->sh_size, fsize);
    if (!syms || !strtab) {
        snprintf(why, cap, "the dynamic symbol table lies outside the file");
        goto done;
    }
    size_t nsyms = sh[dyn].sh_size / sizeof *syms, strsize = ss->sh_size;
    size_t plen = strlen(prefix);
    out = calloc(1, sizeof *out);
    for (size_t i = 0; out && i < nsyms; i++) {
        const ElfW(Sym) *s = &syms[i];
        unsigned bind = ELF64_ST_BIND(s->st_info), vis = ELF64_ST_VISIBILITY(s->st_other);
        if (s->st_shndx == SHN_UNDEF || s->st_name >= strsize ||
            (bind != STB_GLOBAL && bind != STB_WEAK) ||
            (vis != STV_DEFAULT && vis != STV_PROTECTED))
            continue;
        const char *name = strtab + s->st_name;
        size_t max = strsize - s->st_name;
        size_t len = strnlen(name, max);
        if (len == max || len < plen || strncmp(name, prefix, plen) != 0)
            continue; /* unterminated, or not ours */
        char **n = realloc(out, (count + 2) * sizeof *n);
        if (!n)
            break;
        out = n;
        if (!(out[count] = strndup(name, len)))
            break;
        out[++count] = NULL;
    }
    if (!out)
        snprintf(why, cap, "out of memory");
    else if (count) {
        /* Sorted, each name once (a versioned symbol may appear twice). */
        qsort(out, count, sizeof *out, cmp_str);
        size_t w = 1;
        for (size_t r = 1; r < count; r++) {
            if (strcmp(out[r], out[w - 1]) == 0)
                free(out[r]);
            else
                out[w++] = out[r];
        }
        out[w] = NULL;
    }
done:
    free(sh);
    free(syms);
    free(strtab);
    close(fd);
    return out;
}
