/*
 * registration.c — reading and checking a registration as a plugin wrote
 * it (see registration.h): its size, its handler array walked with the
 * plugin's own stride, and the rules every handler list must keep.
 */
#include "core/registration.h"
#include "core/hook_names.h"

#include <stdio.h>
#include <string.h>

/* Whether the registration's declared size covers `field`. */
#define HAS_FIELD(reg, field)                                                                      \
    ((size_t)(reg)->struct_size >= offsetof(cpex_plugin_registration, field) + sizeof((reg)->field))

size_t cpex__registration_handler_size(const cpex_plugin_registration *reg)
{
    if (HAS_FIELD(reg, handler_size) && reg->handler_size != 0)
        return reg->handler_size;
    return CPEX_HANDLER_REG_SIZE_1_0;
}

static const unsigned char *entry_at(const cpex_plugin_registration *reg, size_t index)
{
    return (const unsigned char *)reg->handlers + index * cpex__registration_handler_size(reg);
}

cpex_handler_reg cpex__registration_handler(const cpex_plugin_registration *reg, size_t index)
{
    cpex_handler_reg h;
    size_t size = cpex__registration_handler_size(reg);
    memset(&h, 0, sizeof h);
    memcpy(&h, entry_at(reg, index), size < sizeof h ? size : sizeof h);
    return h;
}

/* Whether entry `index` holds non-zero bytes past this host's cpex_handler_reg. */
static int unknown_tail(const cpex_plugin_registration *reg, size_t index)
{
    size_t size = cpex__registration_handler_size(reg);
    const unsigned char *e = entry_at(reg, index);
    for (size_t b = sizeof(cpex_handler_reg); b < size; b++)
        if (e[b])
            return 1;
    return 0;
}

/* The size fields: registration, reserved, handler entries. */
static cpex_status check_sizes(const cpex_plugin_registration *reg, const char *from,
                               const cpex__where *where, cpex_error *err)
{
    if (!reg || reg->struct_size < CPEX_REGISTRATION_SIZE_1_0)
        return cpex__error_add(err, CPEX_E_LOAD, where,
                               "registration from %s is too small (%u bytes; ABI 1.0 needs at "
                               "least %zu); the plugin was built against a broken SDK — rebuild "
                               "it with cpex/plugin.h",
                               from, reg ? reg->struct_size : 0, CPEX_REGISTRATION_SIZE_1_0);
    if (HAS_FIELD(reg, reserved) && reg->reserved != 0)
        return cpex__error_add(err, CPEX_E_LOAD, where,
                               "registration from %s sets its reserved field (%u); it must be 0 — "
                               "rebuild the plugin with cpex/plugin.h",
                               from, reg->reserved);
    size_t size = cpex__registration_handler_size(reg);
    if (size < CPEX_HANDLER_REG_SIZE_1_0 || size > CPEX__MAX_HANDLER_SIZE ||
        size % _Alignof(cpex_handler_reg) != 0)
        return cpex__error_add(err, CPEX_E_LOAD, where,
                               "registration from %s declares handler entries of %zu bytes; this "
                               "host accepts %zu to %u bytes in steps of %zu — the registration "
                               "is corrupt (handler_size must be sizeof(cpex_handler_reg))",
                               from, size, CPEX_HANDLER_REG_SIZE_1_0, CPEX__MAX_HANDLER_SIZE,
                               _Alignof(cpex_handler_reg));
    return CPEX_OK;
}

cpex_status cpex__registration_check(const cpex_plugin_registration *reg, const char *from,
                                     const cpex__where *where, cpex_error *err)
{
    cpex_status st = check_sizes(reg, from, where, err);
    if (st != CPEX_OK)
        return st;
    /* An audit sink (a verdict handler, ABI 1.1) needs no handler. */
    int sink = HAS_FIELD(reg, verdict) && reg->verdict;
    if (reg->handler_count == 0 && sink)
        return CPEX_OK;
    if (reg->handler_count == 0 || !reg->handlers)
        return cpex__error_add(err, CPEX_E_LOAD, where,
                               "plugin from %s registered no handlers; a plugin must register at "
                               "least one (hook, handler) pair, or a verdict handler",
                               from);
    if (reg->handler_count > CPEX__MAX_HANDLERS)
        return cpex__error_add(err, CPEX_E_LOAD, where,
                               "plugin from %s registered %zu handlers; more than %u is not "
                               "plausible — the registration is corrupt",
                               from, reg->handler_count, CPEX__MAX_HANDLERS);
    for (size_t i = 0; i < reg->handler_count; i++) {
        cpex_handler_reg h = cpex__registration_handler(reg, i);
        if (unknown_tail(reg, i)) {
            st = cpex__error_add(err, CPEX_E_LOAD, where,
                                 "handler #%zu from %s uses fields this host does not know (its "
                                 "entries are %zu bytes, this host knows %zu); load it into a "
                                 "host of the plugin's ABI version or newer",
                                 i, from, cpex__registration_handler_size(reg),
                                 sizeof(cpex_handler_reg));
            continue;
        }
        if (!h.hook || !*h.hook) {
            st = cpex__error_add(err, CPEX_E_LOAD, where, "handler #%zu from %s has no hook name",
                                 i, from);
            continue;
        }
        if (!h.fn)
            st = cpex__error_add(err, CPEX_E_LOAD, where,
                                 "handler for hook '%s' from %s has no function (NULL)", h.hook,
                                 from);
        for (size_t j = 0; j < i; j++) {
            cpex_handler_reg earlier = cpex__registration_handler(reg, j);
            if (earlier.hook && cpex__hook_same(earlier.hook, h.hook)) {
                if (strcmp(earlier.hook, h.hook) == 0)
                    st = cpex__error_add(err, CPEX_E_LOAD, where,
                                         "plugin from %s registered two handlers for hook '%s'; "
                                         "register one handler per hook",
                                         from, h.hook);
                else
                    st = cpex__error_add(err, CPEX_E_LOAD, where,
                                         "plugin from %s registered handlers for '%s' and '%s', "
                                         "two spellings of one hook; register one of them",
                                         from, earlier.hook, h.hook);
                break;
            }
        }
    }
    return st;
}

void cpex__registration_use_handlers(cpex_plugin_registration *reg,
                                     const cpex_handler_reg *handlers, size_t count)
{
    if (reg->struct_size < sizeof *reg)
        memset((unsigned char *)reg + reg->struct_size, 0, sizeof *reg - reg->struct_size);
    reg->struct_size = (uint32_t)sizeof *reg;
    reg->handler_size = (uint32_t)sizeof(cpex_handler_reg);
    reg->handlers = handlers;
    reg->handler_count = count;
}

/* Append `n` bytes as snprintf at *pos would (cut at cap, always ended). */
static void list_put(char *buf, size_t cap, size_t *pos, const char *s, size_t n)
{
    if (*pos < cap) {
        size_t room = cap - 1 - *pos;
        size_t k = n < room ? n : room;
        memcpy(buf + *pos, s, k);
        buf[*pos + k] = '\0';
    }
    *pos += n;
}

void cpex__registration_list_hooks(const cpex_plugin_registration *reg, char *buf, size_t cap)
{
    /* "[a, b]", each hook cut at 100 bytes; by hand: it runs for every
       plugin a configuration loads. */
    if (!cap)
        return;
    size_t pos = 0;
    list_put(buf, cap, &pos, "[", 1);
    for (size_t i = 0; i < reg->handler_count && pos < cap; i++) {
        const char *hook = cpex__registration_handler(reg, i).hook;
        if (i)
            list_put(buf, cap, &pos, ", ", 2);
        const char *h = hook ? hook : "(null)";
        list_put(buf, cap, &pos, h, strnlen(h, 100));
    }
    if (pos < cap)
        list_put(buf, cap, &pos, "]", 1);
}
