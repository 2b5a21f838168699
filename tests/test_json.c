// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_json.c - the JSON lines of ctl --json. Daemon text and job output are
 * untrusted: nothing may end a string early, start a new line, or leave
 * invalid UTF-8 for the reader's parser. Output that is not UTF-8 must come
 * through byte-exact as base64.
 */
// TEST_SRCS: user/ctl/json.c user/common/utf8.c
// TEST_WRAPS:
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/json.h"

static struct json_line J;

static const char *line(void)
{
	static char copy[4096];

	assert_int_equal(json_end(&J), 0);
	assert_true(J.len < sizeof(copy));
	memcpy(copy, J.buf, J.len);
	copy[J.len] = '\0';
	return copy;
}

static int teardown(void **state)
{
	(void)state;
	json_free(&J);
	return 0;
}

/* Quotes, backslashes and control characters are escaped; the line has one '\n'. */
static void json_escapes(void **state)
{
	(void)state;
	json_begin(&J);
	json_add_str(&J, "text", "a\"b\\c\nd\te\rf\x01g\x1f\x7fh");
	assert_string_equal(line(), "{\"text\":\"a\\\"b\\\\c\\nd\\te\\rf\\u0001g\\u001f\x7fh\"}\n");
}

/* Valid multi-byte UTF-8 passes through unchanged. */
static void json_utf8_passes(void **state)
{
	(void)state;
	json_begin(&J);
	json_add_str(&J, "s", "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
	assert_string_equal(line(), "{\"s\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}\n");
}

/* Each invalid byte in a string becomes U+FFFD, and the rest survives. */
static void json_invalid_utf8_replaced(void **state)
{
	(void)state;
	json_begin(&J);
	json_add_str(&J, "s", "a\xff" "b\xc3");
	assert_string_equal(line(), "{\"s\":\"a\\ufffdb\\ufffd\"}\n");
}

/* Overlong forms, surrogates, code points above U+10FFFF and truncation are invalid. */
static void json_utf8_validation(void **state)
{
	static const char *const bad[] = { "\xc0\x80", "\xc1\xbf", "\xe0\x80\xaf",
					   "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
					   "\x80", "\xe2\x82", "\xf0\x9f\x98" };

	(void)state;
	assert_true(utf8_valid((const uint8_t *)"plain", 5));
	assert_true(utf8_valid((const uint8_t *)"\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
	assert_true(utf8_valid((const uint8_t *)"\xed\x9f\xbf", 3));	 /* U+D7FF */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (utf8_valid((const uint8_t *)bad[i], strlen(bad[i])))
			fail_msg("invalid sequence %zu accepted", i);
}

/* Output that is UTF-8 is a string; anything else is base64 of the exact bytes. */
static void json_data_forms(void **state)
{
	static const uint8_t binary[] = { 'h', 'i', '\n', 0xff, '\n' };

	(void)state;
	json_begin(&J);
	json_add_data(&J, (const uint8_t *)"hi\n", 3);
	assert_string_equal(line(), "{\"data\":\"hi\\n\"}\n");
	json_begin(&J);
	json_add_data(&J, binary, sizeof(binary));
	assert_string_equal(line(), "{\"data_base64\":\"aGkK/wo=\"}\n");
	json_begin(&J);
	json_add_data(&J, (const uint8_t *)"a\0b", 3); /* NUL is valid UTF-8, escaped */
	assert_string_equal(line(), "{\"data\":\"a\\u0000b\"}\n");
}

/* RFC 4648's test vectors, padding included. */
static void json_base64_vectors(void **state)
{
	static const char *const in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					   "Zm9vYmFy" };
	char buf[16];

	(void)state;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		assert_int_equal(base64_encode((const uint8_t *)in[i], strlen(in[i]), buf),
				 strlen(out[i]));
		assert_string_equal(buf, out[i]);
	}
}

/* Numbers at their limits, booleans, member separators and nesting. */
static void json_members(void **state)
{
	(void)state;
	json_begin(&J);
	json_add_str(&J, "event", "x");
	json_add_u64(&J, "u", UINT64_MAX);
	json_add_i64(&J, "i", INT64_MIN);
	json_add_bool(&J, "b", true);
	json_open(&J, "list", '[');
	json_open(&J, NULL, '{');
	json_add_u64(&J, "n", 1);
	json_close(&J, '}');
	json_open(&J, NULL, '{');
	json_close(&J, '}');
	json_close(&J, ']');
	json_add_bool(&J, "last", false);
	assert_string_equal(line(), "{\"event\":\"x\",\"u\":18446744073709551615,"
				    "\"i\":-9223372036854775808,\"b\":true,"
				    "\"list\":[{\"n\":1},{}],\"last\":false}\n");
}

/* A new line reuses the buffer and starts clean (no stray comma). */
static void json_line_reuse(void **state)
{
	(void)state;
	json_begin(&J);
	json_add_str(&J, "a", "1");
	line();
	json_begin(&J);
	json_add_str(&J, "b", "2");
	assert_string_equal(line(), "{\"b\":\"2\"}\n");
	json_begin(&J);
	assert_string_equal(line(), "{}\n");
}

/* A 32 KiB chunk of the worst case (all control bytes) grows the buffer as needed. */
static void json_large_output(void **state)
{
	static uint8_t data[32768];

	(void)state;
	memset(data, 1, sizeof(data));
	json_begin(&J);
	json_add_data(&J, data, sizeof(data));
	assert_int_equal(json_end(&J), 0);
	assert_int_equal(J.len, strlen("{\"data\":\"\"}\n") + 6 * sizeof(data));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(json_escapes),
		cmocka_unit_test(json_utf8_passes),
		cmocka_unit_test(json_invalid_utf8_replaced),
		cmocka_unit_test(json_utf8_validation),
		cmocka_unit_test(json_data_forms),
		cmocka_unit_test(json_base64_vectors),
		cmocka_unit_test(json_members),
		cmocka_unit_test(json_line_reuse),
		cmocka_unit_test(json_large_output),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}
