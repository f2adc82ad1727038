/*
 * manifest_unterminated.c — an entry whose display name is the last bytes
 * of the library's writable segment, with no terminator before the
 * segment ends. strnlen(s, 4097) would run off the segment (and off the
 * mapping when the segment ends on a page boundary); the host must stop at
 * the segment's end and refuse the string.
 *
 * The string cannot be a constant (a literal always ends in NUL), so a
 * constructor — which runs at dlopen, before the host reads anything —
 * finds the end of the segment that holds `tail`, fills its last bytes
 * with 'x' and points the entry at them. `tail` is given a section of its
 * own so that AddressSanitizer adds no redzone after it; it is the last
 * zero-initialized object of the library, hence at the end of the segment.
 * If the layout ever differs the display name stays "layout changed", the
 * manifest is valid, and the test that expects a refusal says so.
 * The entry point aborts: no plugin code may run after that.
 */
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cpex/abi.h>

#define FILL 16

__attribute__((section(".bss.zz_manifest_tail"), aligned(8))) static char tail[64];

static const char *const hooks[] = {"cmf.tool_pre_invoke"};
/* Writable: the constructor sets the display name. */
static cpex_manifest_entry only = {sizeof(cpex_manifest_entry), 0, "",   "layout changed", "1.0.0",
                                   "unterminated name",         1, hooks};
static const cpex_manifest_entry *const entries[] = {&only};

__attribute__((visibility("default"))) extern const cpex_manifest cpex_plugin_list;
const cpex_manifest cpex_plugin_list = {sizeof(cpex_manifest), CPEX_ABI_VERSION, 1, entries,
                                        "hostile: unterminated"};

/* The end of the PT_LOAD segment holding `tail`. */
static int segment_end(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t a = (uintptr_t)tail;
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (ph->p_type == PT_LOAD && a >= lo && a < hi) {
            *(uintptr_t *)data = hi;
            return 1;
        }
    }
    return 0;
}

__attribute__((constructor)) static void place_name(void)
{
    uintptr_t end = 0;
    dl_iterate_phdr(segment_end, &end);
    if (end >= (uintptr_t)tail + FILL && end <= (uintptr_t)tail + sizeof tail) {
        char *s = (char *)(end - FILL);
        memset(s, 'x', FILL);
        only.display_name = s;
    }
}

/* The entry point: never run, the manifest is refused first. */
__attribute__((visibility("default"))) void cpex_plugin_create(void);
void cpex_plugin_create(void) { abort(); }
