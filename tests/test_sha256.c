// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_sha256.c - SHA-256 against the FIPS 180-4 / NIST example vectors,
 * and the same digest whatever the pieces the data arrives in (file
 * transfers hash 32 KiB chunks, the padding crosses a block boundary).
 */
// TEST_SRCS: user/common/sha256.c
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/sha256.h"

static void digest_hex(const void *data, size_t len, char hex[65])
{
	struct sha256 s;
	uint8_t d[SHA256_DIGEST_LEN];

	sha256_init(&s);
	sha256_update(&s, data, len);
	sha256_final(&s, d);
	sha256_hex(d, hex);
}

/* The NIST examples: empty, "abc", and the two-block 448-bit message. */
static void sha256_known_vectors(void **state)
{
	char hex[65];

	(void)state;
	digest_hex("", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	digest_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	digest_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* One million 'a's, fed in uneven pieces: the long NIST vector. */
static void sha256_million_a_in_pieces(void **state)
{
	static uint8_t buf[1100]; /* the largest piece is 1059 bytes */
	struct sha256 s;
	uint8_t d[SHA256_DIGEST_LEN];
	char hex[65];
	size_t done = 0, piece = 1;

	(void)state;
	memset(buf, 'a', sizeof(buf));
	sha256_init(&s);
	while (done < 1000000) {
		size_t n = piece < 1000000 - done ? piece : 1000000 - done;

		sha256_update(&s, buf, n);
		done += n;
		piece = piece % 997 + 63;
	}
	sha256_final(&s, d);
	sha256_hex(d, hex);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Every length around the 55/56/64-byte padding edges equals a one-shot hash. */
static void sha256_split_equals_whole(void **state)
{
	uint8_t data[200];
	char whole[65], split[65];

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	for (size_t len = 50; len < 140; len++) {
		struct sha256 s;
		uint8_t d[SHA256_DIGEST_LEN];

		digest_hex(data, len, whole);
		sha256_init(&s);
		sha256_update(&s, data, len / 3);
		sha256_update(&s, data + len / 3, len - len / 3);
		sha256_final(&s, d);
		sha256_hex(d, split);
		assert_string_equal(whole, split);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sha256_known_vectors),
		cmocka_unit_test(sha256_million_a_in_pieces),
		cmocka_unit_test(sha256_split_equals_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
