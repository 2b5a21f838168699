// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_btf_scan.c - finding one function's BTF id and argument count in a
 * raw BTF blob (daemon/kernel/btf_scan.c): against libbpf's own parse of
 * this machine's kernel BTF for several functions (the answer the daemon
 * relied on before), and on hand-made blobs: a FUNC and its FUNC_PROTO, a
 * missing name, and blobs it must refuse (bad magic, truncated, a kind it
 * does not know) so that the caller falls back to libbpf.
 */
// TEST_SRCS: user/daemon/kernel/btf_scan.c user/daemon/kernel/kernel_btf.c user/common/util.c
// TEST_WRAPS: btf__load_vmlinux_btf
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <bpf/btf.h>
#include <linux/btf.h>

#include "daemon/kernel/btf_scan.h"
#include "daemon/kernel/kernel_btf.h"

static void test_same_as_libbpf_on_this_kernel(void **state)
{
	static const char *const funcs[] = { "inet_csk_listen_start", "tcp_v4_connect", "do_exit",
					     "inet_listen", "security_socket_listen" };
	struct btf *btf = btf__load_vmlinux_btf(); /* none held: libbpf reads the file */
	struct kernel_btf k;

	(void)state;
	assert_non_null(btf); /* the daemon's eBPF mode needs it: so does this test */
	assert_int_equal(kernel_btf_open(&k), 0);
	for (size_t i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++) {
		int want = btf__find_by_name_kind(btf, funcs[i], BTF_KIND_FUNC), nargs = -1;
		uint32_t id = 0;
		int err = btf_scan_func(k.data, k.len, funcs[i], &id, &nargs);

		if (want < 0) {
			assert_int_equal(err, -ENOENT);
			continue;
		}
		assert_int_equal(err, 0);
		assert_int_equal(id, want);
		assert_int_equal(nargs,
				 btf_vlen(btf__type_by_id(btf, btf__type_by_id(btf, id)->type)));
	}
	assert_int_equal(btf_scan_func(k.data, k.len, "no_such_function_x", &(uint32_t){ 0 },
				       &(int){ 0 }),
			 -ENOENT);
	kernel_btf_close(&k);
	btf__free(btf);
}

/* While a blob is held, libbpf's btf__load_vmlinux_btf() (the daemon links
 * with the same wrap) gets it parsed: first the parse made ahead, then a
 * fresh one per call (libbpf frees each), the same types as its own read
 * of the file; after the close it reads the file again. */
static void test_libbpf_gets_the_held_blob(void **state)
{
	struct btf *own = btf__load_vmlinux_btf(), *a, *b;
	const struct btf *ahead;
	struct kernel_btf k;

	(void)state;
	assert_non_null(own);
	assert_int_equal(kernel_btf_open(&k), 0);
	assert_non_null(k.how);
	ahead = kernel_btf_parsed(&k);
	assert_non_null(ahead);
	a = btf__load_vmlinux_btf();
	assert_ptr_equal(a, ahead);
	assert_null(kernel_btf_parsed(&k)); /* libbpf's now */
	b = btf__load_vmlinux_btf();
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_int_equal(btf__type_cnt(a), btf__type_cnt(own));
	assert_int_equal(btf__find_by_name_kind(a, "task_struct", BTF_KIND_STRUCT),
			 btf__find_by_name_kind(own, "task_struct", BTF_KIND_STRUCT));
	assert_memory_equal(btf__raw_data(a, &(__u32){ 0 }), k.data, 64);
	btf__free(a);
	btf__free(b);
	kernel_btf_close(&k);
	kernel_btf_close(&k); /* twice is safe */
	assert_null(k.data);
	a = btf__load_vmlinux_btf();
	assert_non_null(a);
	btf__free(a);
	btf__free(own);
}

/* A blob: INT "int" (1), FUNC_PROTO (2) with two params, FUNC "f" (3). */
struct blob {
	struct btf_header h;
	uint32_t types[3 + 1 + 3 + 2 * 2 + 3];
	char strs[8];
} __attribute__((aligned(8)));

static void make_blob(struct blob *b)
{
	uint32_t *t = b->types;

	memset(b, 0, sizeof(*b));
	memcpy(b->strs, "\0int\0f\0", 7);
	/* INT: name "int", info kind 1, size 4, then its encoding word */
	*t++ = 1, *t++ = BTF_KIND_INT << 24, *t++ = 4, *t++ = 32;
	/* FUNC_PROTO: no name, vlen 2, returns type 1; params (name, type) x 2 */
	*t++ = 0, *t++ = (BTF_KIND_FUNC_PROTO << 24) | 2, *t++ = 1;
	*t++ = 0, *t++ = 1, *t++ = 0, *t++ = 1;
	/* FUNC "f" of type 2 */
	*t++ = 5, *t++ = BTF_KIND_FUNC << 24, *t++ = 2;
	b->h = (struct btf_header){ .magic = BTF_MAGIC, .version = 1, .hdr_len = sizeof(b->h),
				    .type_off = 0, .type_len = sizeof(b->types),
				    .str_off = sizeof(b->types), .str_len = sizeof(b->strs) };
}

static void test_hand_made_blobs(void **state)
{
	struct blob b;
	uint32_t id = 0;
	int nargs = 0;

	(void)state;
	make_blob(&b);
	assert_int_equal(btf_scan_func((void *)&b, sizeof(b), "f", &id, &nargs), 0);
	assert_int_equal(id, 3);
	assert_int_equal(nargs, 2);
	assert_int_equal(btf_scan_func((void *)&b, sizeof(b), "int", &id, &nargs), -ENOENT);
	assert_int_equal(btf_scan_func((void *)&b, sizeof(b), "g", &id, &nargs), -ENOENT);
	/* truncated */
	assert_int_equal(btf_scan_func((void *)&b, sizeof(b) - 8, "f", &id, &nargs), -EBADMSG);
	assert_int_equal(btf_scan_func((void *)&b, 10, "f", &id, &nargs), -EBADMSG);
	/* not BTF */
	b.h.magic = 0x1234;
	assert_int_equal(btf_scan_func((void *)&b, sizeof(b), "f", &id, &nargs), -EBADMSG);
	/* a kind this code does not know, before the FUNC: cannot walk past it */
	make_blob(&b);
	b.types[1] = 30u << 24;
	assert_int_equal(btf_scan_func((void *)&b, sizeof(b), "f", &id, &nargs), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_as_libbpf_on_this_kernel),
		cmocka_unit_test(test_hand_made_blobs),
		cmocka_unit_test(test_libbpf_gets_the_held_blob),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
