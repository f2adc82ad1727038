/* image.c — the readable memory and the symbols of a library; see image.h. */
#include "loader/image.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

static void say(char *why, size_t cap, const char *fmt, const char *arg)
{
    if (why && cap)
        snprintf(why, cap, fmt, arg ? arg : "");
}

/* ------------------------------------------------------------------ */
/* Segments                                                            */
/* ------------------------------------------------------------------ */

typedef struct collect_ctx {
    cpex__image *im;
    const struct link_map *lm;
} collect_ctx;

static int collect_segments(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    collect_ctx *c = data;
    /* The library is the object with its load bias and its name: the bias
       alone could match the program itself (0) in a non-PIE build. */
    if (info->dlpi_addr != c->lm->l_addr || !info->dlpi_name || !c->lm->l_name ||
        strcmp(info->dlpi_name, c->lm->l_name) != 0)
        return 0;
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_R) || ph->p_memsz == 0)
            continue;
        if (cpex__image_add_range(c->im, (const void *)(info->dlpi_addr + ph->p_vaddr),
                                  (size_t)ph->p_memsz) != 0)
            break;
    }
    return 1;
}

void cpex__image_init_ranges(cpex__image *im) { memset(im, 0, sizeof *im); }

int cpex__image_init(cpex__image *im, void *dl, char *why, size_t cap)
{
    cpex__image_init_ranges(im);
    im->dl = dl;
    struct link_map *lm = NULL;
    dlerror();
    if (!dl || dlinfo(dl, RTLD_DI_LINKMAP, &lm) != 0 || !lm) {
        const char *e = dl ? dlerror() : NULL;
        say(why, cap, "cannot find where the library is mapped (%s)", e ? e : "no link map");
        return -1;
    }
    im->lm = lm;
    collect_ctx c = {im, lm};
    dl_iterate_phdr(collect_segments, &c);
    if (im->count == 0) {
        say(why, cap, "cannot find the mapped segments of the library%s", "");
        return -1;
    }
    return 0;
}

int cpex__image_add_range(cpex__image *im, const void *base, size_t size)
{
    if (!im || im->count == CPEX_IMAGE_MAX_RANGES)
        return -1;
    uintptr_t lo = (uintptr_t)base;
    if (size == 0 || lo + size < lo)
        return 0; /* nothing readable, or a range that wraps: ignored */
    im->ranges[im->count].lo = lo;
    im->ranges[im->count].hi = lo + size;
    im->count++;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

size_t cpex__image_room(const cpex__image *im, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (!im)
        return p ? SIZE_MAX : 0;
    for (size_t i = 0; i < im->count; i++)
        if (a >= im->ranges[i].lo && a < im->ranges[i].hi)
            return im->ranges[i].hi - a;
    return 0;
}

const char *cpex__image_check(const cpex__image *im, const void *p, size_t size, size_t align)
{
    if (!p)
        return "is NULL";
    if (align > 1 && (uintptr_t)p % align != 0)
        return "is misaligned";
    size_t room = cpex__image_room(im, p);
    if (room == 0)
        return "points outside the library";
    if (room < size)
        return "runs past the end of the library's data";
    return NULL;
}

const char *cpex__image_text(const cpex__image *im, const char *s, size_t max, int allow_empty)
{
    if (!s)
        return "is NULL";
    size_t room = cpex__image_room(im, s);
    if (room == 0)
        return "points outside the library";
    size_t limit = room <= max ? room : max + 1;
    size_t n = strnlen(s, limit);
    if (n == limit)
        return limit == room ? "is not terminated before the end of the library's data"
                             : "is not a terminated string of reasonable length";
    if (n == 0 && !allow_empty)
        return "is empty";
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Symbols                                                             */
/* ------------------------------------------------------------------ */

cpex__image_lookup cpex__image_symbol(const cpex__image *im, const char *name, cpex__image_sym *out,
                                      char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (!im || !im->dl || !name) {
        say(why, cap, "no library to look '%s' up in", name);
        return CPEX_SYM_MISSING;
    }
    dlerror();
    void *sym = dlsym(im->dl, name);
    const char *e = dlerror();
    if (!sym) {
        say(why, cap, "%s", e ? e : "the symbol's value is NULL");
        return CPEX_SYM_MISSING;
    }
#if defined(__GLIBC__)
    Dl_info di;
    struct link_map *owner = NULL;
    /* dlsym on a handle also searches the library's dependencies: a plugin
       that links another plugin would otherwise hand us that one's entry
       point or manifest. When the platform cannot tell, trust it. */
    if (im->lm && dladdr1(sym, &di, (void **)&owner, RTLD_DL_LINKMAP) && owner && owner != im->lm) {
        say(why, cap, "it is defined only by a library the plugin depends on%s", "");
        return CPEX_SYM_FOREIGN;
    }
    ElfW(Sym) *es = NULL;
    /* dladdr finds the symbol nearest below the address: use its entry only
       if it is the symbol at exactly this address. */
    if (dladdr1(sym, &di, (void **)&es, RTLD_DL_SYMENT) && es && di.dli_saddr == sym) {
        out->size = (size_t)es->st_size;
        switch (ELF64_ST_TYPE(es->st_info)) { /* the same in ELF32 */
        case STT_OBJECT: out->type = CPEX_SYM_DATA; break;
        case STT_FUNC:
        case STT_GNU_IFUNC: out->type = CPEX_SYM_CODE; break;
        case STT_NOTYPE: out->type = CPEX_SYM_UNKNOWN; break;
        default: out->type = CPEX_SYM_OTHER; break;
        }
    }
#endif
    out->addr = sym;
    return CPEX_SYM_FOUND;
}
