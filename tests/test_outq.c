// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_outq.c - the chunked byte FIFO behind every client socket and job
 * stdin: byte order across 64 KiB chunk boundaries, partial consumption, and
 * the promise that a failed append leaves the queue exactly as it was.
 *
 * malloc and free are wrapped: malloc can be told to fail on its Nth call,
 * and both are counted so a failure path that leaks shows up.
 */
// TEST_SRCS: user/daemon/core/outq.c
// TEST_WRAPS: malloc free
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/core/outq.h"

#define CHUNK (64 * 1024)

void *__real_malloc(size_t size);
void __real_free(void *p);

static struct {
	int fail_at; /* fail the Nth malloc from now (1 = the next one); 0 = never */
	long live;   /* successful mallocs minus frees of non-NULL pointers */
	long calls;
} M;

void *__wrap_malloc(size_t size);
void *__wrap_malloc(size_t size)
{
	void *p;

	M.calls++;
	if (M.fail_at > 0 && --M.fail_at == 0)
		return NULL;
	p = __real_malloc(size);
	if (p)
		M.live++;
	return p;
}

void __wrap_free(void *p);
void __wrap_free(void *p)
{
	if (p)
		M.live--;
	__real_free(p);
}

/* A position-dependent byte pattern, so a shifted or reordered byte is caught. */
static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 131 + (i >> 9) + (i >> 17));
}

static uint8_t src[512 * 1024];

static int outq_setup(void **state)
{
	static struct outq q;

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = pattern(i);
	M.fail_at = 0;
	M.live = 0;
	outq_init(&q);
	*state = &q;
	return 0;
}

static int outq_teardown(void **state)
{
	outq_clear(*state);
	return 0;
}

/* Compares the queue's iovecs, in order, with src[from .. from + q->bytes). */
static int check_content(const struct outq *q, size_t from)
{
	struct iovec iov[64];
	int n = outq_iov(q, iov, 64);
	size_t off = from, total = 0;

	for (int i = 0; i < n; i++) {
		assert_true(iov[i].iov_len > 0);
		assert_true(iov[i].iov_len <= CHUNK);
		assert_memory_equal(iov[i].iov_base, src + off, iov[i].iov_len);
		off += iov[i].iov_len;
		total += iov[i].iov_len;
	}
	assert_int_equal(total, q->bytes);
	return n;
}

/* Appends of sizes around the chunk size land in order and split into 64 KiB iovecs. */
static void outq_append_sizes(void **state)
{
	struct outq *q = *state;
	const struct {
		size_t len;
		int iovs;
	} cases[] = { { 1, 1 }, { 65535, 1 }, { 65536, 1 }, { 65537, 2 }, { 200000, 4 }, { 0, 0 } };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(outq_append(q, src, cases[i].len), 0);
		assert_int_equal(q->bytes, cases[i].len);
		assert_int_equal(check_content(q, 0), cases[i].iovs);
		assert_int_equal(M.live, cases[i].iovs);
		outq_clear(q);
		assert_int_equal(q->bytes, 0);
		assert_int_equal(M.live, 0);
	}
}

/* Many small appends fill the tail chunk before a new one is started. */
static void outq_append_fills_tail(void **state)
{
	struct outq *q = *state;
	struct iovec iov[4];
	size_t off = 0;

	while (off < CHUNK + 100) {
		size_t n = 1000;

		assert_int_equal(outq_append(q, src + off, n), 0);
		off += n;
	}
	assert_int_equal(q->bytes, off);
	assert_int_equal(outq_iov(q, iov, 4), 2);
	assert_int_equal(iov[0].iov_len, CHUNK);
	assert_int_equal(iov[1].iov_len, off - CHUNK);
	assert_int_equal(M.live, 2);
	check_content(q, 0);
}

/* An append bigger than the tail's room tops up the tail and continues in new chunks. */
static void outq_append_across_chunks(void **state)
{
	struct outq *q = *state;

	assert_int_equal(outq_append(q, src, 100), 0);
	assert_int_equal(outq_append(q, src + 100, 200000), 0);
	assert_int_equal(outq_append(q, src + 200100, 7), 0);
	assert_int_equal(q->bytes, 200107);
	assert_int_equal(check_content(q, 0), 4); /* 65536 * 3 + 3499 */
}

/* outq_iov never writes more than max entries, oldest first. */
static void outq_iov_max(void **state)
{
	struct outq *q = *state;
	struct iovec iov[3] = { 0 };

	assert_int_equal(outq_append(q, src, 5 * CHUNK), 0);
	assert_int_equal(outq_iov(q, iov, 2), 2);
	assert_ptr_not_equal(iov[0].iov_base, NULL);
	assert_memory_equal(iov[0].iov_base, src, CHUNK);
	assert_memory_equal(iov[1].iov_base, src + CHUNK, CHUNK);
	assert_null(iov[2].iov_base);
	assert_int_equal(outq_iov(q, iov, 0), 0);
}

/* Consuming part of the first chunk moves its start; the rest is still in order. */
static void outq_consume_within_chunk(void **state)
{
	struct outq *q = *state;
	struct iovec iov[4];

	assert_int_equal(outq_append(q, src, 100000), 0);
	outq_consume(q, 10);
	assert_int_equal(q->bytes, 99990);
	assert_int_equal(check_content(q, 10), 2);
	assert_int_equal(outq_iov(q, iov, 4), 2);
	assert_int_equal(iov[0].iov_len, CHUNK - 10);
	outq_consume(q, CHUNK - 11);
	assert_int_equal(check_content(q, CHUNK - 1), 2);
	assert_int_equal(M.live, 2);
}

/* Consuming across a chunk boundary frees the drained chunks. */
static void outq_consume_across_chunks(void **state)
{
	struct outq *q = *state;

	assert_int_equal(outq_append(q, src, 200000), 0);
	assert_int_equal(M.live, 4);
	outq_consume(q, CHUNK + 5);
	assert_int_equal(q->bytes, 200000 - CHUNK - 5);
	assert_int_equal(check_content(q, CHUNK + 5), 3);
	assert_int_equal(M.live, 3);
	outq_consume(q, 2 * CHUNK - 5); /* exactly to the start of the last chunk */
	assert_int_equal(check_content(q, 3 * CHUNK), 1);
	assert_int_equal(M.live, 1);
}

/* Draining to empty resets head and tail; the next append starts a fresh queue. */
static void outq_consume_to_empty_then_append(void **state)
{
	struct outq *q = *state;

	assert_int_equal(outq_append(q, src, 70000), 0);
	outq_consume(q, 70000);
	assert_int_equal(q->bytes, 0);
	assert_null(q->head);
	assert_null(q->tail);
	assert_int_equal(M.live, 0);
	assert_int_equal(outq_iov(q, (struct iovec[1]){ 0 }, 1), 0);
	assert_int_equal(outq_append(q, src + 5, 66000), 0);
	assert_int_equal(check_content(q, 5), 2);
	/* and consume in small steps down to nothing again */
	for (size_t done = 0; done < 66000; done += 1000) {
		assert_int_equal(q->bytes, 66000 - done);
		outq_consume(q, 1000);
	}
	assert_int_equal(q->bytes, 0);
	assert_null(q->tail);
	assert_int_equal(outq_append(q, src, 3), 0);
	assert_int_equal(check_content(q, 0), 1);
}

/* outq_consume(0) is a no-op, even on an empty queue. */
static void outq_consume_zero(void **state)
{
	struct outq *q = *state;

	outq_consume(q, 0);
	assert_int_equal(q->bytes, 0);
	assert_int_equal(outq_append(q, src, 10), 0);
	outq_consume(q, 0);
	assert_int_equal(check_content(q, 0), 1);
}

/* outq_clear frees every chunk and leaves an empty, reusable queue. */
static void outq_clear_frees(void **state)
{
	struct outq *q = *state;

	assert_int_equal(outq_append(q, src, 300000), 0);
	outq_consume(q, 1234);
	outq_clear(q);
	assert_int_equal(q->bytes, 0);
	assert_null(q->head);
	assert_null(q->tail);
	assert_int_equal(M.live, 0);
	outq_clear(q); /* twice is fine */
	assert_int_equal(outq_append(q, src, 1), 0);
	assert_int_equal(check_content(q, 0), 1);
}

/* A malloc failing halfway through a multi-chunk append leaves the queue untouched. */
static void outq_append_enomem_untouched(void **state)
{
	struct outq *q = *state;
	struct iovec before[4], after[4];
	int n;

	assert_int_equal(outq_append(q, src, 100), 0);
	n = outq_iov(q, before, 4);
	assert_int_equal(n, 1);
	M.fail_at = 2; /* 200000 - 65436 bytes of room need 3 new chunks: fail the 2nd */
	M.calls = 0;
	assert_int_equal(outq_append(q, src + 100, 200000), -ENOMEM);
	assert_int_equal(M.calls, 2);
	assert_int_equal(q->bytes, 100);
	assert_int_equal(M.live, 1); /* the chunk allocated before the failure was freed */
	assert_int_equal(outq_iov(q, after, 4), 1);
	assert_ptr_equal(after[0].iov_base, before[0].iov_base);
	assert_int_equal(after[0].iov_len, 100); /* the tail was not topped up */
	check_content(q, 0);
	/* the queue still works: the same append now succeeds and lands in order */
	assert_int_equal(outq_append(q, src + 100, 200000), 0);
	assert_int_equal(q->bytes, 200100);
	assert_int_equal(check_content(q, 0), 4);
	outq_clear(q);
	assert_int_equal(M.live, 0);
}

/* A failure on the very first chunk of an append to an empty queue also leaves it empty. */
static void outq_append_enomem_empty_queue(void **state)
{
	struct outq *q = *state;

	M.fail_at = 1;
	assert_int_equal(outq_append(q, src, 10), -ENOMEM);
	assert_int_equal(q->bytes, 0);
	assert_null(q->head);
	assert_null(q->tail);
	assert_int_equal(M.live, 0);
	assert_int_equal(outq_append(q, src, 10), 0);
	assert_int_equal(check_content(q, 0), 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, outq_setup, outq_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(outq_append_sizes),
		T(outq_append_fills_tail),
		T(outq_append_across_chunks),
		T(outq_iov_max),
		T(outq_consume_within_chunk),
		T(outq_consume_across_chunks),
		T(outq_consume_to_empty_then_append),
		T(outq_consume_zero),
		T(outq_clear_frees),
		T(outq_append_enomem_untouched),
		T(outq_append_enomem_empty_queue),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
