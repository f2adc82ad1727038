/* swap_v2.c — build 2 of the swap plugin (swap_plugin.h). */
#define SWAP_VERSION 2
#define SWAP_VERSION_TEXT "2.0.0"
#include "swap_plugin.h"
