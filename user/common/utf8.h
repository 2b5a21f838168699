/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * utf8.h - UTF-8 validation, for the JSON ctl prints and for the strings
 * the daemon sends (protobuf `string` fields must be valid UTF-8, or a
 * client's decoder refuses the whole message).
 */
#ifndef CTLD_UTF8_H
#define CTLD_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s[0..left) (1..4), or 0 if invalid:
 * overlong forms, surrogates and code points above U+10FFFF are invalid. */
size_t utf8_seq_len(const uint8_t *s, size_t left);
bool utf8_valid(const uint8_t *s, size_t len);
/* Replaces every byte that is not part of a valid sequence with '?', in
 * place (a NUL-terminated string keeps its length). Returns how many. */
size_t utf8_sanitize(char *s);

#endif
