// SPDX-License-Identifier: BSD-2-Clause
/*
 * error_names.c - the names of the protocol's error codes, for messages
 * (ctld_error_code_name() in client.h).
 */
#include "client/client.h"
#include "common/util.h"

static const char *const error_code_names[] = {
	[ctld_ErrorCode_OK] = "OK",
	[ctld_ErrorCode_BAD_REQUEST] = "BAD_REQUEST",
	[ctld_ErrorCode_PROTOCOL] = "PROTOCOL",
	[ctld_ErrorCode_NOT_FOUND] = "NOT_FOUND",
	[ctld_ErrorCode_LIMIT] = "LIMIT",
	[ctld_ErrorCode_BAD_VERSION] = "BAD_VERSION",
	[ctld_ErrorCode_NEED_HELLO] = "NEED_HELLO",
	[ctld_ErrorCode_SYSTEM] = "SYSTEM",
	[ctld_ErrorCode_PERMISSION] = "PERMISSION",
	[ctld_ErrorCode_UNSUPPORTED] = "UNSUPPORTED",
	[ctld_ErrorCode_INTERNAL] = "INTERNAL",
};

const char *ctld_error_code_name(ctld_ErrorCode code)
{
	if ((size_t)code < ARRAY_SIZE(error_code_names) && error_code_names[code])
		return error_code_names[code];
	return "UNKNOWN_ERROR";
}
