/* hooks_agree.c — the manifest entry and the registration name the same hooks; see hooks_agree.h. */
#include "loader/hooks_agree.h"

#include <stdio.h>
#include <string.h>

#include "core/registration.h"
#include "util/errors.h"

#define HINT                                                                                       \
    "\n  hint: the library is inconsistent; make the hooks named in its CPEX_PLUGIN / "            \
    "CPEX_PLUGIN_ENTRY match its handler array, and rebuild it"

static int registered(const cpex_plugin_registration *reg, const char *hook)
{
    for (size_t i = 0; i < reg->handler_count; i++)
        if (strcmp(cpex__registration_handler(reg, i).hook, hook) == 0)
            return 1;
    return 0;
}

static int listed(const cpex_manifest_entry *entry, const char *hook)
{
    for (size_t i = 0; i < entry->hook_count; i++)
        if (strcmp(entry->hooks[i], hook) == 0)
            return 1;
    return 0;
}

/* "entry 'x'" or "the default entry", into buf. */
static const char *entry_words(const cpex_manifest_entry *entry, char *buf, size_t cap)
{
    if (entry->entry[0])
        snprintf(buf, cap, "entry '%.100s'", entry->entry);
    else
        snprintf(buf, cap, "the default entry");
    return buf;
}

cpex_status cpex__hooks_agree(const cpex_manifest_entry *entry, const cpex_plugin_registration *reg,
                              const char *path, cpex_error *err)
{
    char which[160] = ""; /* named only for a message (a load checks every plugin) */
    cpex_status st = CPEX_OK;
    for (size_t i = 0; i < entry->hook_count; i++)
        if (!registered(reg, entry->hooks[i]))
            st = cpex__error_add(err, CPEX_E_LOAD, NULL,
                                 "library '%s': the manifest of %s lists '%.200s' but the plugin "
                                 "registered no handler for it" HINT,
                                 path, entry_words(entry, which, sizeof which), entry->hooks[i]);
    for (size_t i = 0; i < reg->handler_count; i++) {
        const char *hook = cpex__registration_handler(reg, i).hook;
        if (!listed(entry, hook))
            st = cpex__error_add(err, CPEX_E_LOAD, NULL,
                                 "library '%s': the plugin registered a handler for '%.200s' "
                                 "that its manifest entry does not list (%s)" HINT,
                                 path, hook, entry_words(entry, which, sizeof which));
    }
    return st;
}
