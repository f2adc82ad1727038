/* config_names.c — YAML names of modes and on_error values (see config.h). */
#include "core/config.h"

#include "util/count.h"
#include "util/names.h"

static const char *const mode_names[] = {
    [CPEX_MODE_SEQUENTIAL] = "sequential",
    [CPEX_MODE_TRANSFORM] = "transform",
    [CPEX_MODE_AUDIT] = "audit",
    [CPEX_MODE_CONCURRENT] = "concurrent",
    [CPEX_MODE_FIRE_AND_FORGET] = "fire_and_forget",
    [CPEX_MODE_DISABLED] = "disabled",
};

static const char *const on_error_names[] = {
    [CPEX_ON_ERROR_FAIL] = "fail",
    [CPEX_ON_ERROR_IGNORE] = "ignore",
    [CPEX_ON_ERROR_DISABLE] = "disable",
};

int cpex__mode_from_name(const char *name)
{
    return cpex__names_index(mode_names, CPEX__COUNT(mode_names), name);
}

const char *cpex_mode_name(uint32_t mode)
{
    return mode < CPEX__COUNT(mode_names) ? mode_names[mode] : "unknown";
}

int cpex__on_error_from_name(const char *name)
{
    return cpex__names_index(on_error_names, CPEX__COUNT(on_error_names), name);
}

const char *cpex_on_error_name(cpex_on_error on_error)
{
    unsigned v = (unsigned)on_error;
    return v < CPEX__COUNT(on_error_names) ? on_error_names[v] : "unknown";
}
