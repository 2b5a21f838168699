// SPDX-License-Identifier: BSD-2-Clause
/*
 * json.c - one JSON object per line, for ctl --json.
 *
 * Everything a daemon sends (command names, error texts, job output) is
 * untrusted text: it is escaped here byte by byte, so no input can end a
 * string early, add a line, or produce invalid UTF-8 for the reader's parser.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "ctl/json.h"

static bool grow(struct json_line *j, size_t more)
{
	size_t cap = j->cap ? j->cap : 256;
	char *p;

	if (j->oom)
		return false;
	if (j->len + more <= j->cap)
		return true;
	while (cap < j->len + more)
		cap *= 2;
	p = realloc(j->buf, cap);
	if (!p) {
		j->oom = true;
		return false;
	}
	j->buf = p;
	j->cap = cap;
	return true;
}

static void put(struct json_line *j, const char *s, size_t len)
{
	if (!grow(j, len))
		return;
	memcpy(j->buf + j->len, s, len);
	j->len += len;
}

static void put_cstr(struct json_line *j, const char *s)
{
	put(j, s, strlen(s));
}

void json_begin(struct json_line *j)
{
	j->len = 0;
	j->oom = false;
	j->first = true;
	put(j, "{", 1);
}

/* Appends s as a quoted JSON string. */
static void put_string(struct json_line *j, const uint8_t *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	put(j, "\"", 1);
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq_len(s + i, len - i);
		uint8_t ch = s[i];

		if (n == 0) {
			put_cstr(j, "\\ufffd"); /* one replacement per invalid byte */
			i++;
			continue;
		}
		if (ch == '"' || ch == '\\') {
			char esc[2] = { '\\', (char)ch };

			put(j, esc, 2);
		} else if (ch == '\n') {
			put_cstr(j, "\\n");
		} else if (ch == '\t') {
			put_cstr(j, "\\t");
		} else if (ch == '\r') {
			put_cstr(j, "\\r");
		} else if (ch < 0x20) {
			char esc[6] = { '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15] };

			put(j, esc, sizeof(esc));
		} else {
			put(j, (const char *)s + i, n);
		}
		i += n;
	}
	put(j, "\"", 1);
}

/* A member's key, or only the separator for an array element (key NULL). */
static void put_key(struct json_line *j, const char *key)
{
	if (!j->first)
		put(j, ",", 1);
	j->first = false;
	if (!key)
		return;
	put_string(j, (const uint8_t *)key, strlen(key));
	put(j, ":", 1);
}

void json_open(struct json_line *j, const char *key, char bracket)
{
	put_key(j, key);
	put(j, &bracket, 1);
	j->first = true;
}

void json_close(struct json_line *j, char bracket)
{
	put(j, &bracket, 1);
	j->first = false;
}

void json_add_strn(struct json_line *j, const char *key, const uint8_t *val, size_t len)
{
	put_key(j, key);
	put_string(j, val, len);
}

void json_add_str(struct json_line *j, const char *key, const char *val)
{
	json_add_strn(j, key, (const uint8_t *)val, strlen(val));
}

void json_add_u64(struct json_line *j, const char *key, uint64_t v)
{
	char num[24];

	put_key(j, key);
	put(j, num, (size_t)snprintf(num, sizeof(num), "%" PRIu64, v));
}

void json_add_i64(struct json_line *j, const char *key, int64_t v)
{
	char num[24];

	put_key(j, key);
	put(j, num, (size_t)snprintf(num, sizeof(num), "%" PRId64, v));
}

void json_add_bool(struct json_line *j, const char *key, bool v)
{
	put_key(j, key);
	put_cstr(j, v ? "true" : "false");
}

size_t base64_encode(const uint8_t *in, size_t len, char *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

void json_add_data(struct json_line *j, const uint8_t *data, size_t len)
{
	size_t need = 4 * ((len + 2) / 3) + 1;

	if (utf8_valid(data, len)) {
		json_add_strn(j, "data", data, len);
		return;
	}
	put_key(j, "data_base64");
	/* encode in place at the end of the line: no second buffer */
	if (!grow(j, need + 2))
		return;
	j->buf[j->len++] = '"';
	j->len += base64_encode(data, len, j->buf + j->len);
	j->buf[j->len++] = '"';
}

int json_end(struct json_line *j)
{
	put(j, "}\n", 2);
	return j->oom ? -ENOMEM : 0;
}

void json_free(struct json_line *j)
{
	free(j->buf);
	*j = (struct json_line){ .buf = NULL };
}
