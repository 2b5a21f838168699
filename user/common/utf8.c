// SPDX-License-Identifier: BSD-2-Clause
/*
 * utf8.c - see utf8.h.
 */
#include <string.h>

#include "common/utf8.h"

size_t utf8_seq_len(const uint8_t *s, size_t left)
{
	uint32_t cp;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0; /* continuation byte, 0xc0/0xc1 (overlong), or above U+10FFFF */
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool utf8_valid(const uint8_t *s, size_t len)
{
	for (size_t i = 0, n; i < len; i += n)
		if (!(n = utf8_seq_len(s + i, len - i)))
			return false;
	return true;
}

size_t utf8_sanitize(char *s)
{
	size_t len = strlen(s), fixed = 0;

	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq_len((const uint8_t *)s + i, len - i);

		if (n) {
			i += n;
			continue;
		}
		s[i++] = '?';
		fixed++;
	}
	return fixed;
}
