// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_core_btf.c - the small CO-RE BTF (daemon/kernel/core_btf.c) made
 * from this machine's kernel BTF: every type the local BTF names is there
 * with the kernel's size and members (names, offsets, bitfield sizes),
 * what those members embed is there too, pointers lead to void, a type
 * nobody names is not copied, and libbpf can parse the file it wrote.
 */
// TEST_SRCS: user/daemon/kernel/core_btf.c
// TEST_WRAPS:
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/btf.h>

#include "daemon/kernel/core_btf.h"

/* What bpf/ctld.bpf.c names, and a flavour of one (libbpf ignores "___x"). */
static struct btf *local_btf(void)
{
	struct btf *b = btf__new_empty();
	int i = btf__add_int(b, "int", 4, BTF_INT_SIGNED);

	assert_true(i > 0);
	assert_true(btf__add_struct(b, "task_struct", 8) > 0);
	assert_int_equal(btf__add_field(b, "tgid", i, 0, 0), 0);
	assert_true(btf__add_struct(b, "sock___flavour", 8) > 0);
	assert_true(btf__add_struct(b, "socket_alloc", 8) > 0);
	assert_true(btf__add_struct(b, "no_such_kernel_type_x", 8) > 0);
	return b;
}

/* Same size and members as the kernel's; embedded types recursively the same. */
static void assert_same_type(const struct btf *kern, __u32 kid, const struct btf *copy, __u32 cid,
			     int depth)
{
	const struct btf_type *k = btf__type_by_id(kern, kid), *c = btf__type_by_id(copy, cid);

	assert_int_equal(btf_kind(k), btf_kind(c));
	assert_string_equal(btf__name_by_offset(kern, k->name_off),
			    btf__name_by_offset(copy, c->name_off));
	if (btf_is_ptr(c)) {
		assert_int_equal(c->type, 0); /* void *: never followed */
		return;
	}
	if (!btf_is_composite(k) || depth > 3)
		return;
	assert_int_equal(k->size, c->size);
	assert_int_equal(btf_vlen(k), btf_vlen(c));
	for (__u16 i = 0; i < btf_vlen(k); i++) {
		const struct btf_member *km = btf_members(k) + i, *cm = btf_members(c) + i;

		assert_int_equal(btf_member_bit_offset(k, i), btf_member_bit_offset(c, i));
		assert_int_equal(btf_member_bitfield_size(k, i), btf_member_bitfield_size(c, i));
		assert_string_equal(btf__name_by_offset(kern, km->name_off),
				    btf__name_by_offset(copy, cm->name_off));
		assert_int_equal(btf__resolve_size(kern, km->type),
				 btf__resolve_size(copy, cm->type));
		assert_same_type(kern, btf__resolve_type(kern, km->type), copy,
				 btf__resolve_type(copy, cm->type), depth + 1);
	}
}

static void test_copies_what_is_named(void **state)
{
	static const char *const named[] = { "task_struct", "sock", "socket_alloc" };
	struct btf *kern = btf__load_vmlinux_btf(), *local = local_btf(), *copy;
	struct core_btf c;

	(void)state;
	assert_non_null(kern); /* the daemon's eBPF mode needs it: so does this test */
	assert_int_equal(core_btf_make(&c, local, kern), 0);
	assert_true(c.fd >= 0);
	copy = btf__parse(c.path, NULL); /* what libbpf does with btf_custom_path */
	assert_non_null(copy);
	assert_int_equal(btf__type_cnt(copy) - 1, c.ntypes);
	assert_true(c.ntypes < btf__type_cnt(kern) / 20);
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		int kid = btf__find_by_name_kind(kern, named[i], BTF_KIND_STRUCT);
		int cid = btf__find_by_name_kind(copy, named[i], BTF_KIND_STRUCT);

		assert_true(kid > 0);
		assert_true(cid > 0);
		assert_same_type(kern, (__u32)kid, copy, (__u32)cid, 0);
	}
	/* embedded in sock: there; only pointed to by task_struct: not */
	assert_true(btf__find_by_name_kind(copy, "sock_common", BTF_KIND_STRUCT) > 0);
	assert_int_equal(btf__find_by_name_kind(copy, "mm_struct", BTF_KIND_STRUCT), -ENOENT);
	assert_int_equal(btf__find_by_name_kind(copy, "no_such_kernel_type_x", BTF_KIND_STRUCT),
			 -ENOENT);
	btf__free(copy);
	core_btf_close(&c);
	core_btf_close(&c); /* twice is safe */
	btf__free(local);
	btf__free(kern);
}

/* A zeroed one (a start that never made it) closes nothing: not fd 0. */
static void test_zeroed_closes_nothing(void **state)
{
	struct core_btf c = { 0 };
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	(void)state;
	assert_true(null >= 0);
	assert_int_equal(dup2(null, 0), 0); /* an fd 0 to lose */
	close(null);
	core_btf_close(&c);
	assert_int_equal(c.fd, -1);
	assert_true(fcntl(0, F_GETFD) >= 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copies_what_is_named),
		cmocka_unit_test(test_zeroed_closes_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
