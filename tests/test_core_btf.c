// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_core_btf.c - the small CO-RE BTF (daemon/kernel/core_btf.c) made
 * from the raw index of this machine's kernel BTF: libbpf parses the file
 * it wrote; it is type for type what the libbpf-based copy made before
 * (a reference built here with libbpf's btf__add_type from libbpf's parse
 * of the kernel BTF: same kinds, names, sizes, members, offsets, ids);
 * every type the local BTF names is there with the kernel's size and
 * members, what those members embed is there too, pointers lead to void,
 * a type nobody names is not copied; the same for the daemon's own
 * programs, their BTF found in the object the skeleton embeds; a blob
 * whose type names an id past the last is refused.
 */
// TEST_SRCS: user/daemon/kernel/core_btf.c user/daemon/kernel/btf_scan.c
// TEST_WRAPS:
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/btf.h>
#include <linux/btf.h>

#include "ctld.skel.h"

#include "daemon/kernel/btf_scan.h"
#include "daemon/kernel/core_btf.h"

#define MAX_BLOB (64u << 20)

/* The kernel's blob, read whole (the daemon maps it: the bytes are the same). */
static uint8_t *read_vmlinux(size_t *len)
{
	int fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);
	uint8_t *buf = malloc(MAX_BLOB);
	ssize_t r = 1;

	assert_true(fd >= 0); /* the daemon's eBPF mode needs it: so does this test */
	assert_non_null(buf);
	for (*len = 0; r > 0 && *len < MAX_BLOB; *len += (size_t)r)
		assert_true((r = read(fd, buf + *len, MAX_BLOB - *len)) >= 0);
	close(fd);
	return buf;
}

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

/* The copy as core_btf.c made it with libbpf before it read the raw blob:
 * the reference the raw copy must equal, id for id. Kernel ids stay in
 * the copied types until remap() renumbers them. */
static int ref_copy(const struct btf *src, struct btf *dst, __u32 *new_id, __u32 id)
{
	const struct btf_type *t = btf__type_by_id(src, id);
	int nid, err = 0;

	if (id == 0 || new_id[id])
		return (int)new_id[id];
	if ((nid = btf__add_type(dst, src, t)) < 0)
		return nid;
	new_id[id] = (__u32)nid;
	switch (btf_kind(t)) {
	case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST:
	case BTF_KIND_RESTRICT: case BTF_KIND_TYPE_TAG:
		err = ref_copy(src, dst, new_id, t->type);
		break;
	case BTF_KIND_ARRAY:
		err = ref_copy(src, dst, new_id, btf_array(t)->type);
		err = err < 0 ? err : ref_copy(src, dst, new_id, btf_array(t)->index_type);
		break;
	case BTF_KIND_STRUCT: case BTF_KIND_UNION:
		for (__u16 i = 0; i < btf_vlen(t) && err >= 0; i++)
			err = ref_copy(src, dst, new_id, btf_members(t)[i].type);
		break;
	}
	return err < 0 ? err : nid;
}

static void remap(struct btf *dst, const __u32 *new_id)
{
	for (__u32 id = 1; id < btf__type_cnt(dst); id++) {
		struct btf_type *t = (struct btf_type *)btf__type_by_id(dst, id);

		if (btf_is_ptr(t))
			t->type = 0;
		else if (btf_is_mod(t) || btf_is_typedef(t))
			t->type = new_id[t->type];
		else if (btf_is_array(t))
			btf_array(t)->type = new_id[btf_array(t)->type],
			btf_array(t)->index_type = new_id[btf_array(t)->index_type];
		else if (btf_is_composite(t))
			for (__u16 i = 0; i < btf_vlen(t); i++)
				btf_members(t)[i].type = new_id[btf_members(t)[i].type];
	}
}

static bool root_kind(const struct btf_type *t)
{
	return btf_is_composite(t) || btf_is_any_enum(t) || btf_is_fwd(t) || btf_is_typedef(t);
}

static size_t essential_len(const char *name)
{
	const char *flavour = strstr(name, "___");

	return flavour ? (size_t)(flavour - name) : strlen(name);
}

static bool named_in(const struct btf *local, const char *name)
{
	for (__u32 l = 1; l < btf__type_cnt(local); l++) {
		const struct btf_type *t = btf__type_by_id(local, l);
		const char *ln = btf__name_by_offset(local, t->name_off);

		if (root_kind(t) && essential_len(ln) == strlen(name) &&
		    strncmp(ln, name, strlen(name)) == 0)
			return true;
	}
	return false;
}

/* Every root type (struct, union, enum, fwd, typedef) of a name local has. */
static struct btf *reference_copy(const struct btf *kern, const struct btf *local)
{
	struct btf *dst = btf__new_empty();
	__u32 *new_id = calloc(btf__type_cnt(kern), sizeof(__u32));

	assert_non_null(dst);
	assert_non_null(new_id);
	for (__u32 id = 1; id < btf__type_cnt(kern); id++) {
		const struct btf_type *t = btf__type_by_id(kern, id);
		const char *name = btf__name_by_offset(kern, t->name_off);

		if (name[0] && root_kind(t) && named_in(local, name))
			assert_true(ref_copy(kern, dst, new_id, id) > 0);
	}
	remap(dst, new_id);
	free(new_id);
	return dst;
}

/* The two copies, id for id: the same record but for where names are. */
static void assert_same_copy(const struct btf *ref, const struct btf *copy)
{
	assert_int_equal(btf__type_cnt(ref), btf__type_cnt(copy));
	for (__u32 id = 1; id < btf__type_cnt(ref); id++) {
		const struct btf_type *r = btf__type_by_id(ref, id), *c = btf__type_by_id(copy, id);
		__u32 rt = btf_is_ptr(r) ? 0 : r->type; /* the raw copy's pointers lead to void */

		assert_int_equal(r->info, c->info);
		assert_int_equal(rt, c->type); /* size or type: one word */
		assert_string_equal(btf__name_by_offset(ref, r->name_off),
				    btf__name_by_offset(copy, c->name_off));
		if (btf_is_composite(r)) {
			for (__u16 i = 0; i < btf_vlen(r); i++) {
				assert_int_equal(btf_members(r)[i].type, btf_members(c)[i].type);
				assert_int_equal(btf_members(r)[i].offset, btf_members(c)[i].offset);
				assert_string_equal(btf__name_by_offset(ref, btf_members(r)[i].name_off),
						    btf__name_by_offset(copy, btf_members(c)[i].name_off));
			}
		} else if (btf_is_enum(r)) {
			for (__u16 i = 0; i < btf_vlen(r); i++) {
				assert_int_equal(btf_enum(r)[i].val, btf_enum(c)[i].val);
				assert_string_equal(btf__name_by_offset(ref, btf_enum(r)[i].name_off),
						    btf__name_by_offset(copy, btf_enum(c)[i].name_off));
			}
		} else if (btf_is_array(r)) {
			assert_memory_equal(btf_array(r), btf_array(c), sizeof(struct btf_array));
		} else if (btf_is_int(r)) {
			assert_int_equal(*(const __u32 *)(r + 1), *(const __u32 *)(c + 1));
		}
	}
}

static void test_copies_what_is_named(void **state)
{
	static const char *const named[] = { "task_struct", "sock", "socket_alloc" };
	struct btf *kern = btf__load_vmlinux_btf(), *local = local_btf(), *copy, *ref;
	size_t len;
	uint8_t *blob = read_vmlinux(&len);
	struct btf_index index;
	struct core_btf c;
	__u32 local_len;
	const void *raw = btf__raw_data(local, &local_len);

	(void)state;
	assert_non_null(kern);
	assert_int_equal(btf_index_build(&index, blob, len), 0);
	assert_int_equal(core_btf_make(&c, raw, local_len, &index), 0);
	assert_true(c.fd >= 0);
	copy = btf__parse(c.path, NULL); /* what libbpf does with btf_custom_path */
	assert_non_null(copy);
	assert_int_equal(btf__type_cnt(copy) - 1, c.ntypes);
	assert_true(c.ntypes < btf__type_cnt(kern) / 20);
	ref = reference_copy(kern, local);
	assert_same_copy(ref, copy);
	btf__free(ref);
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
	btf_index_free(&index);
	free(blob);
}

/* The daemon's own programs (the object the skeleton embeds, found as the
 * start-up thread finds it): the copy equals the reference, id for id. */
static void test_the_programs_copy_is_the_reference(void **state)
{
	size_t object_len, local_len, len;
	const void *object = ctld__elf_bytes(&object_len);
	const uint8_t *local_raw;
	uint8_t *blob = read_vmlinux(&len);
	struct btf *kern = btf__load_vmlinux_btf(), *local, *copy, *ref;
	struct btf_index index;
	struct core_btf c;

	(void)state;
	assert_int_equal(core_btf_of_object(object, object_len, &local_raw, &local_len), 0);
	assert_non_null(local = btf__new(local_raw, (__u32)local_len));
	assert_int_equal(btf_index_build(&index, blob, len), 0);
	assert_int_equal(core_btf_make(&c, local_raw, local_len, &index), 0);
	assert_non_null(copy = btf__parse(c.path, NULL));
	assert_true(c.ntypes > 100); /* task_struct alone embeds that many */
	ref = reference_copy(kern, local);
	assert_same_copy(ref, copy);
	/* not an ELF object, or cut short: no .BTF */
	assert_int_equal(core_btf_of_object(blob, len, &local_raw, &local_len), -EBADMSG);
	assert_int_equal(core_btf_of_object(object, 100, &local_raw, &local_len), -EBADMSG);
	btf__free(ref);
	btf__free(copy);
	core_btf_close(&c);
	btf_index_free(&index);
	btf__free(local);
	btf__free(kern);
	free(blob);
}

/* A kernel type naming a type id past the last: refused, nothing left open. */
static void test_bad_reference_is_refused(void **state)
{
	struct {
		struct btf_header h;
		uint32_t types[3 + 3];
		char strs[12];
	} __attribute__((aligned(8))) b = {
		.h = { .magic = BTF_MAGIC, .version = 1, .hdr_len = sizeof(b.h),
		       .type_len = sizeof(b.types), .str_off = sizeof(b.types),
		       .str_len = sizeof(b.strs) },
		/* STRUCT "sock" size 8, one member "x" of type 7 (there are 1) */
		.types = { 1, (BTF_KIND_STRUCT << 24) | 1, 8, 6, 7, 0 },
		.strs = "\0sock\0x\0",
	};
	struct btf *local = local_btf();
	struct btf_index index;
	struct core_btf c;
	__u32 local_len;
	const void *raw = btf__raw_data(local, &local_len);

	(void)state;
	assert_int_equal(btf_index_build(&index, (const uint8_t *)&b, sizeof(b)), 0);
	assert_int_equal(core_btf_make(&c, raw, local_len, &index), -EBADMSG);
	assert_int_equal(c.fd, -1);
	core_btf_close(&c);
	btf_index_free(&index);
	btf__free(local);
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
		cmocka_unit_test(test_the_programs_copy_is_the_reference),
		cmocka_unit_test(test_bad_reference_is_refused),
		cmocka_unit_test(test_zeroed_closes_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
