/*
 * host_slots.h — host-table slots implemented outside host_api.c (which
 * assembles the table): the ABI 1.1 slots that edit the call's payload in
 * place (host_edit.c).
 */
#ifndef CPEX_CORE_HOST_SLOTS_H
#define CPEX_CORE_HOST_SLOTS_H

#include <stddef.h>
#include <stdint.h>

#include "cpex/abi.h"

int32_t cpex__h_payload_set_text(const cpex_call *call, size_t part, const char *text, size_t len);
int32_t cpex__h_payload_set_tool_arguments(const cpex_call *call, size_t part,
                                           cpex_json *arguments);
int32_t cpex__h_payload_set_tool_result_content(const cpex_call *call, size_t part,
                                                cpex_json *content);
int32_t cpex__h_payload_append_text(const cpex_call *call, uint32_t kind, const char *text,
                                    size_t len);
int32_t cpex__h_payload_remove_part(const cpex_call *call, size_t part);
int32_t cpex__h_cmf_set_tool_result_content(struct cpex_cmf_message *message, size_t part,
                                            cpex_json *content);

#endif
