// SPDX-License-Identifier: BSD-2-Clause
/*
 * fuzz_frame.c - libFuzzer target for the frame codec: the length prefix
 * parser, the Request decoder (as the daemon runs it), the request-id peek
 * used for error replies, and the Message decoder (as clients run it).
 * Arbitrary bytes must never crash, hang or read out of bounds.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static ctld_Request req;
	static ctld_Message msg;
	size_t off = 0;

	while (off < size) {
		size_t hdr, body;
		uint64_t id;

		if (wire_frame_check(data + off, size - off, 1 << 20, &hdr, &body) != 1)
			break;
		wire_decode(ctld_Request_fields, data + off + hdr, body, &req, NULL);
		wire_peek_request_id(data + off + hdr, body, &id);
		off += hdr + body;
	}
	wire_decode(ctld_Message_fields, data, size, &msg, NULL);
	return 0;
}
