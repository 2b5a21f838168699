// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_btf_scan.c - reading a raw BTF blob (daemon/kernel/btf_scan.c) and
 * handing it to libbpf (daemon/kernel/kernel_btf.c). Against libbpf's own
 * parse of this machine's kernel BTF: one function's id and argument
 * count, and the index (the same types, records and names by id, the same
 * answers by name and kind). On hand-made blobs: a FUNC and its
 * FUNC_PROTO, a missing name, and blobs both must refuse (bad magic,
 * truncated, a record past its section, a kind it does not know, strings
 * not terminated) so that the caller falls back to libbpf. And libbpf's
 * wrapped btf__load_vmlinux_btf() / btf__find_by_name_kind(): full
 * parses, or placeholders whose lookups the index answers; the ops
 * kernel_btf_open() was given get the index before its users.
 */
// TEST_SRCS: user/daemon/kernel/btf_scan.c user/daemon/kernel/kernel_btf.c user/common/util.c
// TEST_WRAPS: btf__load_vmlinux_btf btf__find_by_name_kind
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
	assert_int_equal(kernel_btf_open(&k, NULL), 0);
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

static void note_index(const struct btf_index *index, void *ctx)
{
	*(const struct btf_index **)ctx = index;
}

/* The index agrees with libbpf's parse: every type's record and name by
 * id, and lookups by name and kind (first match, or none). */
static void test_index_same_as_libbpf_on_this_kernel(void **state)
{
	static const struct { const char *name; unsigned kind; } finds[] = {
		{ "btf_trace_sched_process_exit", BTF_KIND_TYPEDEF },
		{ "btf_trace_inet_sock_set_state", BTF_KIND_TYPEDEF },
		{ "inet_csk_listen_start", BTF_KIND_FUNC },
		{ "task_struct", BTF_KIND_STRUCT },
		{ "task_struct", BTF_KIND_FWD },
		{ "no_such_type_x", BTF_KIND_TYPEDEF },
	};
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_index *x, *given = NULL;
	struct kernel_btf_ops ops = { .indexed = note_index, .ctx = &given };
	struct kernel_btf k;

	(void)state;
	assert_non_null(btf);
	assert_int_equal(kernel_btf_open(&k, &ops), 0);
	assert_non_null(x = kernel_btf_index(&k));
	assert_ptr_equal(given, x); /* the ops had it before the wait ended */
	assert_int_equal(x->count, btf__type_cnt(btf));
	for (uint32_t id = 1; id < x->count; id++) {
		const struct btf_type *t = btf__type_by_id(btf, id);

		assert_int_equal(btf_index_record_len(x, id),
				 (id + 1 < x->count ? (const char *)btf__type_by_id(btf, id + 1)
						    : (const char *)t + btf_index_record_len(x, id)) -
					 (const char *)t);
		assert_memory_equal(btf_index_type(x, id), t, btf_index_record_len(x, id));
		assert_string_equal(btf_index_name(x, t->name_off),
				    btf__name_by_offset(btf, t->name_off));
	}
	assert_null(btf_index_type(x, 0));
	assert_null(btf_index_type(x, x->count));
	assert_null(btf_index_name(x, x->strs_len));
	for (size_t i = 0; i < sizeof(finds) / sizeof(finds[0]); i++)
		assert_int_equal(btf_index_find(x, finds[i].name, finds[i].kind),
				 btf__find_by_name_kind(btf, finds[i].name, finds[i].kind));
	for (uint32_t id = 1; id < x->count; id += 97) /* typedefs and modifiers skipped */
		if (btf__resolve_type(btf, id) > 0)
			assert_memory_equal(btf_index_resolve(x, id),
					    btf__type_by_id(btf, btf__resolve_type(btf, id)),
					    sizeof(struct btf_type));
	kernel_btf_close(&k);
	btf__free(btf);
}

/* While a blob is held, libbpf's btf__load_vmlinux_btf() (the daemon links
 * with the same wraps) gets a fresh parse of it per call (libbpf frees
 * each), the same types as its own read of the file; with placeholders
 * on, a placeholder whose TYPEDEF and FUNC lookups the index answers (the
 * kernel's ids) and other kinds libbpf (-ENOENT on it). Other BTFs are
 * libbpf's alone; after the close it reads the file again. */
static void test_libbpf_gets_the_held_blob(void **state)
{
	struct btf *own = btf__load_vmlinux_btf(), *a, *b, *p;
	struct kernel_btf k;

	(void)state;
	assert_non_null(own);
	assert_int_equal(kernel_btf_open(&k, NULL), 0);
	assert_non_null(k.how);
	a = btf__load_vmlinux_btf();
	b = btf__load_vmlinux_btf();
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_int_equal(btf__type_cnt(a), btf__type_cnt(own));
	assert_int_equal(btf__find_by_name_kind(a, "task_struct", BTF_KIND_STRUCT),
			 btf__find_by_name_kind(own, "task_struct", BTF_KIND_STRUCT));
	assert_memory_equal(btf__raw_data(a, &(__u32){ 0 }), k.data, 64);
	assert_int_equal(k.handed_parses, 2);
	kernel_btf_use_placeholders(&k, true);
	p = btf__load_vmlinux_btf();
	assert_non_null(p);
	assert_int_equal(btf__type_cnt(p), 2); /* void and its marker */
	assert_int_equal(k.handed_placeholders, 1);
	assert_int_equal(btf__find_by_name_kind(p, "btf_trace_sched_process_fork", BTF_KIND_TYPEDEF),
			 btf__find_by_name_kind(own, "btf_trace_sched_process_fork", BTF_KIND_TYPEDEF));
	assert_int_equal(btf__find_by_name_kind(p, "inet_csk_listen_start", BTF_KIND_FUNC),
			 btf__find_by_name_kind(own, "inet_csk_listen_start", BTF_KIND_FUNC));
	assert_int_equal(btf__find_by_name_kind(p, "no_such_function_x", BTF_KIND_FUNC), -ENOENT);
	assert_int_equal(k.lookups, 3);
	assert_int_equal(btf__find_by_name_kind(p, "task_struct", BTF_KIND_STRUCT), -ENOENT);
	assert_int_equal(btf__find_by_name_kind(a, "btf_trace_sched_process_fork", BTF_KIND_TYPEDEF),
			 btf__find_by_name_kind(own, "btf_trace_sched_process_fork", BTF_KIND_TYPEDEF));
	assert_int_equal(k.lookups, 3); /* neither of those two by the index */
	btf__free(p);
	btf__free(a);
	btf__free(b);
	kernel_btf_close(&k);
	kernel_btf_close(&k); /* twice is safe */
	assert_null(k.data);
	a = btf__load_vmlinux_btf();
	assert_non_null(a);
	assert_int_equal(btf__type_cnt(a), btf__type_cnt(own));
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

static void test_hand_made_index(void **state)
{
	struct btf_index x;
	struct blob b;

	(void)state;
	make_blob(&b);
	assert_int_equal(btf_index_build(&x, (void *)&b, sizeof(b)), 0);
	assert_int_equal(x.count, 4);
	assert_int_equal(btf_index_record_len(&x, 1), 16);
	assert_int_equal(btf_index_record_len(&x, 2), 12 + 2 * 8);
	assert_int_equal(btf_index_record_len(&x, 3), 12);
	assert_int_equal(btf_index_record_len(&x, 4), 0);
	assert_ptr_equal(btf_index_type(&x, 3), (void *)&b.types[11]);
	assert_int_equal(btf_index_find(&x, "f", BTF_KIND_FUNC), 3);
	assert_int_equal(btf_index_find(&x, "f", BTF_KIND_TYPEDEF), -ENOENT);
	assert_int_equal(btf_index_find(&x, "int", BTF_KIND_INT), 1);
	assert_ptr_equal(btf_index_resolve(&x, 1), btf_index_type(&x, 1));
	assert_null(btf_index_resolve(&x, 9));
	btf_index_free(&x);
	btf_index_free(&x); /* twice is safe */
	/* the FUNC_PROTO says 3 params: its record runs past the type section */
	b.types[5] = (BTF_KIND_FUNC_PROTO << 24) | 3;
	b.h.type_len = sizeof(b.types) - 12 - 4; /* ... and stops before the FUNC */
	assert_int_equal(btf_index_build(&x, (void *)&b, sizeof(b)), -EBADMSG);
	assert_null(x.off);
	/* a kind this code does not know (the FUNC's) */
	make_blob(&b);
	b.types[12] = 30u << 24;
	assert_int_equal(btf_index_build(&x, (void *)&b, sizeof(b)), -EBADMSG);
	/* strings not terminated at the end of their section */
	make_blob(&b);
	b.h.str_len = 6;
	assert_int_equal(btf_index_build(&x, (void *)&b, sizeof(b)), -EBADMSG);
	/* the type section not 4-aligned */
	make_blob(&b);
	b.h.type_off = 2;
	assert_int_equal(btf_index_build(&x, (void *)&b, sizeof(b)), -EBADMSG);
	/* truncated, not BTF */
	make_blob(&b);
	assert_int_equal(btf_index_build(&x, (void *)&b, sizeof(b) - 4), -EBADMSG);
	b.h.magic = 0x1234;
	assert_int_equal(btf_index_build(&x, (void *)&b, sizeof(b)), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_as_libbpf_on_this_kernel),
		cmocka_unit_test(test_index_same_as_libbpf_on_this_kernel),
		cmocka_unit_test(test_hand_made_blobs),
		cmocka_unit_test(test_hand_made_index),
		cmocka_unit_test(test_libbpf_gets_the_held_blob),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
