/* swap_v1.c — build 1 of the swap plugin (swap_plugin.h). */
#define SWAP_VERSION 1
#define SWAP_VERSION_TEXT "1.0.0"
#include "swap_plugin.h"
