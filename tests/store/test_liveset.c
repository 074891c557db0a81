/* Unit tests for the live set (src/store/liveset.c): a row added is taken
 * by its hash once sealed and then no longer listed as unseen, a hash never
 * added is not taken, rows whose hashes share the bytes that pick a slot
 * stay apart, the order records come in does not matter, and an empty set
 * finds nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aifleet/error.h"
#include "liveset.h"

/* splitmix64: hashes as uniform as the SHA-256 values the loader uses. */
static uint64_t next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void hash_of(uint64_t seed, unsigned char hash[32])
{
	for (int i = 0; i < 4; i++) {
		uint64_t v = next(&seed);

		memcpy(hash + 8 * i, &v, 8);
	}
}

typedef struct tally {
	unsigned char *listed; /* per id, how often each_unseen gave it */
	size_t n, max;
} tally;

static int count_unseen(void *ctx, int64_t id)
{
	tally *t = ctx;

	assert_true(id >= 1 && (size_t)id <= t->max);
	t->listed[id]++;
	t->n++;
	return 0;
}

static int stop_at_first(void *ctx, int64_t id)
{
	(void)id;
	++*(int *)ctx;
	return AF_ERR_GENERIC;
}

static void test_take_marks_and_unseen_lists_the_rest(void **state)
{
	enum { N = 200000 };
	unsigned char hash[32];
	af_live_set *s = NULL;
	tally t = {calloc(N + 1, 1), 0, N};
	int calls = 0;

	(void)state;
	assert_non_null(t.listed);
	assert_int_equal(af_live_set_new(&s), 0);
	for (int64_t id = 1; id <= N; id++) {
		hash_of((uint64_t)id, hash);
		assert_int_equal(af_live_set_add(s, id, hash), 0);
	}
	assert_int_equal(af_live_set_count(s), N);
	/* not sealed: nothing is taken yet */
	hash_of(2, hash);
	assert_false(af_live_set_take(s, hash));
	af_live_set_seal(s);
	assert_int_not_equal(af_live_set_add(s, N + 1, hash), 0);
	for (int64_t id = 2; id <= N; id += 2) {
		hash_of((uint64_t)id, hash);
		assert_true(af_live_set_take(s, hash));
		assert_true(af_live_set_take(s, hash)); /* a second record: still live */
	}
	for (uint64_t seed = N + 1; seed <= 2 * N; seed++) {
		hash_of(seed, hash);
		assert_false(af_live_set_take(s, hash));
	}
	assert_int_equal(af_live_set_each_unseen(s, count_unseen, &t), 0);
	assert_int_equal(t.n, N / 2);
	for (int64_t id = 1; id <= N; id++)
		assert_int_equal(t.listed[id], id % 2); /* the odd ones, each once */
	assert_int_equal(af_live_set_each_unseen(s, stop_at_first, &calls), AF_ERR_GENERIC);
	assert_int_equal(calls, 1);
	af_live_set_free(s);
	free(t.listed);
}

/* Hashes equal in the first 8 bytes (the slot's source) and apart in the
 * next 8: every one is found as itself, probing past the others. */
static void test_shared_slot_bytes(void **state)
{
	enum { N = 500 };
	unsigned char hash[32];
	af_live_set *s = NULL;
	tally t = {calloc(N + 1, 1), 0, N};

	(void)state;
	assert_non_null(t.listed);
	assert_int_equal(af_live_set_new(&s), 0);
	for (int64_t id = 1; id <= N; id++) {
		hash_of((uint64_t)id, hash);
		memset(hash, 0x5a, 8);
		assert_int_equal(af_live_set_add(s, id, hash), 0);
	}
	af_live_set_seal(s);
	for (int64_t id = 1; id <= N; id += 3) {
		hash_of((uint64_t)id, hash);
		memset(hash, 0x5a, 8);
		assert_true(af_live_set_take(s, hash));
	}
	/* the same slot bytes, a tail never added */
	hash_of(N + 7, hash);
	memset(hash, 0x5a, 8);
	assert_false(af_live_set_take(s, hash));
	/* beyond the 128 bits that decide, a difference does not count */
	hash_of(1, hash);
	memset(hash, 0x5a, 8);
	hash[31] ^= 0xff;
	assert_true(af_live_set_take(s, hash));
	assert_int_equal(af_live_set_each_unseen(s, count_unseen, &t), 0);
	for (int64_t id = 1; id <= N; id++)
		assert_int_equal(t.listed[id], (id - 1) % 3 != 0);
	af_live_set_free(s);
	free(t.listed);
}

/* Records come mostly in the order their rows were read (the set tries
 * the row after the last one taken first), but not always: in order, in
 * reverse, with a row skipped and with two rows of one hash side by side,
 * each record takes exactly one row and every other row stays unseen. */
static void test_taken_in_any_order(void **state)
{
	enum { N = 1000 };
	unsigned char hash[32];
	af_live_set *s = NULL;
	tally t = {calloc(N + 1, 1), 0, N};

	(void)state;
	assert_non_null(t.listed);
	assert_int_equal(af_live_set_new(&s), 0);
	for (int64_t id = 1; id <= N; id++) {
		/* ids 501 and 502 share a hash */
		hash_of((uint64_t)(id == 502 ? 501 : id), hash);
		assert_int_equal(af_live_set_add(s, id, hash), 0);
	}
	af_live_set_seal(s);
	for (int64_t id = 1; id <= 500; id++) { /* in order, 250 skipped */
		hash_of((uint64_t)id, hash);
		if (id != 250)
			assert_true(af_live_set_take(s, hash));
	}
	hash_of(501, hash);
	assert_true(af_live_set_take(s, hash)); /* 501 */
	assert_true(af_live_set_take(s, hash)); /* 502, its twin */
	assert_true(af_live_set_take(s, hash)); /* a third record: both taken, still live */
	for (int64_t id = N; id > 502; id--) {  /* in reverse */
		hash_of((uint64_t)id, hash);
		assert_true(af_live_set_take(s, hash));
	}
	hash_of(10, hash);
	assert_true(af_live_set_take(s, hash)); /* again: taken before, still live */
	assert_int_equal(af_live_set_each_unseen(s, count_unseen, &t), 0);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.listed[250], 1);
	af_live_set_free(s);
	free(t.listed);
}

/* An empty set (a scope with no live rows left) takes nothing and lists
 * nothing. */
static void test_empty_set(void **state)
{
	unsigned char hash[32];
	af_live_set *s = NULL;
	tally t = {calloc(2, 1), 0, 1};

	(void)state;
	assert_non_null(t.listed);
	hash_of(1, hash);
	assert_int_equal(af_live_set_new(&s), 0);
	af_live_set_seal(s);
	af_live_set_seal(s); /* twice: no effect */
	assert_false(af_live_set_take(s, hash));
	assert_int_equal(af_live_set_each_unseen(s, count_unseen, &t), 0);
	assert_int_equal(t.n, 0);
	assert_int_equal(af_live_set_count(s), 0);
	af_live_set_free(s);
	af_live_set_free(NULL);
	free(t.listed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_take_marks_and_unseen_lists_the_rest),
	    cmocka_unit_test(test_shared_slot_bytes),
	    cmocka_unit_test(test_taken_in_any_order),
	    cmocka_unit_test(test_empty_set),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
