/* Unit tests for the COPY text format writer (src/store/copytext.c).
 * Expected strings are written by hand from the PostgreSQL COPY docs: "\N"
 * is NULL; backslash, tab, newline and carriage return are backslash-escaped. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aifleet/error.h"
#include "store_internal.h"

static void expect_text(const char *in, const char *want)
{
	af_buf b = AF_BUF_INIT;

	assert_int_equal(af_store_copy_text(&b, in), 0);
	assert_non_null(af_buf_data(&b));
	assert_string_equal(af_buf_data(&b), want);
	af_buf_free(&b);
}

static void test_text_escaping(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"plain", "plain"},
		{"", ""},
		{"a\tb", "a\\tb"},
		{"line1\nline2", "line1\\nline2"},
		{"cr\r", "cr\\r"},
		{"back\\slash", "back\\\\slash"},
		{"\\N", "\\\\N"}, /* the literal two characters, not NULL */
		{"\t\n\\", "\\t\\n\\\\"},
		{"\xe4\xb8\xad\xe6\x96\x87", "\xe4\xb8\xad\xe6\x96\x87"}, /* UTF-8 passes through */
		{"{\"k\": \"v\\\"q\"}", "{\"k\": \"v\\\\\"q\"}"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_text(cases[i].in, cases[i].want);
}

static void test_null_and_separators(void **state)
{
	af_buf b = AF_BUF_INIT;

	assert_int_equal(af_store_copy_text(&b, NULL), 0);
	assert_int_equal(af_store_copy_sep(&b), 0);
	assert_int_equal(af_store_copy_text(&b, "x"), 0);
	assert_int_equal(af_store_copy_sep(&b), 0);
	assert_int_equal(af_store_copy_null(&b), 0);
	assert_int_equal(af_store_copy_eol(&b), 0);
	assert_string_equal(af_buf_data(&b), "\\N\tx\t\\N\n");
	af_buf_free(&b);
}

static void expect_time(af_time t, const char *want)
{
	af_buf b = AF_BUF_INIT;

	assert_int_equal(af_store_copy_time(&b, t), 0);
	assert_string_equal(af_buf_data(&b), want);
	af_buf_free(&b);
}

static void test_times(void **state)
{
	expect_time(AF_TIME_NULL, "\\N");
	expect_time(0, "1970-01-01 00:00:00.000000+00");
	expect_time(-1, "1969-12-31 23:59:59.999999+00");
	/* 1700000000 s is 2023-11-14T22:13:20Z */
	expect_time(1700000000123456LL, "2023-11-14 22:13:20.123456+00");
	/* 951782400 s is 2000-02-29T00:00:00Z (leap day) */
	expect_time(951782400000000LL, "2000-02-29 00:00:00.000000+00");
}

static void test_numbers(void **state)
{
	af_buf b = AF_BUF_INIT;

	assert_int_equal(af_store_copy_num(&b, (af_num){0, false}), 0);
	assert_string_equal(af_buf_data(&b), "\\N");
	af_buf_reset(&b);
	assert_int_equal(af_store_copy_num(&b, (af_num){2, true}), 0);
	assert_string_equal(af_buf_data(&b), "2");
	af_buf_reset(&b);
	assert_int_equal(af_store_copy_num(&b, (af_num){0.5, true}), 0);
	assert_string_equal(af_buf_data(&b), "0.5");
	af_buf_reset(&b);
	/* 17 significant digits: the shortest form that round-trips any double */
	assert_int_equal(af_store_copy_num(&b, (af_num){0.1, true}), 0);
	assert_string_equal(af_buf_data(&b), "0.10000000000000001");
	af_buf_reset(&b);
	assert_int_equal(af_store_copy_num(&b, (af_num){NAN, true}), AF_ERR_DATA);
	assert_int_equal(af_store_copy_num(&b, (af_num){INFINITY, true}), AF_ERR_DATA);
	af_buf_free(&b);
}

static void test_hash_is_escaped_bytea_hex(void **state)
{
	unsigned char h[32];
	af_buf b = AF_BUF_INIT;

	for (int i = 0; i < 32; i++)
		h[i] = (unsigned char)(i * 8 + 1);
	assert_int_equal(af_store_copy_hash(&b, h), 0);
	assert_string_equal(af_buf_data(&b), "\\\\x"
				    "0109111921293139414951596169717981899199a1a9b1b9c1c9d1d9e1e9f1f9");
	af_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_escaping),
		cmocka_unit_test(test_null_and_separators),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_hash_is_escaped_bytea_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
