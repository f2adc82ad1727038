/*
 * cpex/cpex.h — everything a host includes to embed libcpex.
 * Plugins include cpex/plugin.h instead.
 */
#ifndef CPEX_CPEX_H
#define CPEX_CPEX_H

#include "cpex/abi.h"
#include "cpex/cmf.h"
#include "cpex/codes.h"
#include "cpex/context.h"
#include "cpex/error.h"
#include "cpex/extensions.h"
#include "cpex/factory.h"
#include "cpex/json.h"
#include "cpex/loader.h"
#include "cpex/manager.h"
#include "cpex/observe.h"
#include "cpex/payload.h"
#include "cpex/reload.h"
#include "cpex/result.h"
#include "cpex/state.h"
#include "cpex/version.h"

#endif /* CPEX_CPEX_H */
