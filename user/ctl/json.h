/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * json.h - builds one JSON object per line for ctl --json: strings escaped
 * (invalid UTF-8 becomes U+FFFD), job output as a string when it is valid
 * UTF-8 and as base64 otherwise. Keys are given in order; nothing is parsed.
 */
#ifndef CTLD_JSON_H
#define CTLD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/utf8.h"

struct json_line {
	char *buf; /* the line, buf[0..len), once json_end() returned 0 */
	size_t len, cap;
	bool first; /* the next member needs no comma */
	bool oom;   /* an allocation failed; json_end() reports it */
};

/* Starts a new object, reusing the buffer of the previous line. */
void json_begin(struct json_line *j);
void json_add_str(struct json_line *j, const char *key, const char *val);
void json_add_strn(struct json_line *j, const char *key, const uint8_t *val, size_t len);
void json_add_u64(struct json_line *j, const char *key, uint64_t v);
void json_add_i64(struct json_line *j, const char *key, int64_t v);
void json_add_bool(struct json_line *j, const char *key, bool v);
/* Nested values: json_open(j, "programs", '[') ... json_close(j, ']');
 * inside an array, members are opened with key NULL. */
void json_open(struct json_line *j, const char *key, char bracket);
void json_close(struct json_line *j, char bracket);
/* "data": "..." when data is valid UTF-8, else "data_base64": "...". */
void json_add_data(struct json_line *j, const uint8_t *data, size_t len);
/* Closes the object and adds '\n'. 0, or -ENOMEM (the line is unusable). */
int json_end(struct json_line *j);
void json_free(struct json_line *j);

/* Standard base64 with padding; out needs 4 * ((len + 2) / 3) + 1 bytes.
 * Returns the length written (without the NUL). */
size_t base64_encode(const uint8_t *in, size_t len, char *out);

#endif
