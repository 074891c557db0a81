/* Unit tests for the first-load path's key map (src/store/keymap.c): every
 * key put is found with its id through the map's growth, keys never put
 * are not, and an id can be replaced but not be 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aifleet/error.h"
#include "keymap.h"

/* splitmix64: keys as uniform as the SHA-256 prefixes the loader uses. */
static uint64_t next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void key_of(uint64_t seed, unsigned char key[AF_KEY_LEN])
{
	uint64_t a = next(&seed), b = next(&seed);

	memcpy(key, &a, 8);
	memcpy(key + 8, &b, 8);
}

static void test_put_and_get_through_growth(void **state)
{
	enum { N = 200000 };
	unsigned char key[AF_KEY_LEN];
	af_key_map *m = NULL;
	int64_t id;

	(void)state;
	assert_int_equal(af_key_map_new(&m), 0);
	assert_false(af_key_map_get(m, (const unsigned char *)"0123456789abcdef", &id));
	for (uint64_t i = 0; i < N; i++) {
		key_of(i, key);
		assert_int_equal(af_key_map_put(m, key, (int64_t)i + 1), 0);
	}
	assert_int_equal(af_key_map_count(m), N);
	for (uint64_t i = 0; i < N; i++) {
		key_of(i, key);
		id = 0;
		assert_true(af_key_map_get(m, key, &id));
		assert_int_equal(id, (int64_t)i + 1);
	}
	for (uint64_t i = N; i < 2 * N; i++) {
		key_of(i, key);
		assert_false(af_key_map_get(m, key, NULL));
	}
	af_key_map_free(m);
}

/* Keys that share their first eight bytes (the slot's source) collide on
 * one slot: the probe must still tell them apart. */
static void test_same_home_slot(void **state)
{
	unsigned char a[AF_KEY_LEN] = {0}, b[AF_KEY_LEN] = {0};
	af_key_map *m = NULL;
	int64_t id;

	(void)state;
	b[15] = 1;
	assert_int_equal(af_key_map_new(&m), 0);
	assert_int_equal(af_key_map_put(m, a, 7), 0);
	assert_false(af_key_map_get(m, b, NULL));
	assert_int_equal(af_key_map_put(m, b, 8), 0);
	assert_true(af_key_map_get(m, a, &id));
	assert_int_equal(id, 7);
	assert_true(af_key_map_get(m, b, &id));
	assert_int_equal(id, 8);
	/* a known key takes a new id; the count stays */
	assert_int_equal(af_key_map_put(m, a, 9), 0);
	assert_true(af_key_map_get(m, a, &id));
	assert_int_equal(id, 9);
	assert_int_equal(af_key_map_count(m), 2);
	/* 0 marks an empty slot: refused */
	assert_int_equal(af_key_map_put(m, a, 0), AF_ERR_PARAM);
	af_key_map_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_and_get_through_growth),
	    cmocka_unit_test(test_same_home_slot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
