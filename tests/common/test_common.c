/* Unit tests for src/common: the capped buffer and the error slot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aifleet/buf.h"
#include "aifleet/error.h"
#include "aifleet/log.h"

static void test_buf_grows_and_terminates(void **state)
{
	af_buf b = AF_BUF_INIT;

	for (int i = 0; i < 1000; i++)
		assert_int_equal(af_buf_printf(&b, "%d,", i), 0);
	assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
	assert_int_equal(b.data[b.len], '\0');
	assert_true(b.len > 3000);
	af_buf_free(&b);
}

static void test_buf_cap_is_hard(void **state)
{
	af_buf b;

	af_buf_init(&b, 10);
	assert_int_equal(af_buf_puts(&b, "0123456789"), 0);
	assert_int_equal(af_buf_puts(&b, "x"), AF_ERR_LIMIT);
	assert_int_equal(b.len, 10);
	assert_non_null(strstr(af_error_last(), "10 bytes"));
	af_buf_free(&b);
}

static void test_buf_detach_transfers_ownership(void **state)
{
	af_buf b = AF_BUF_INIT;
	char *p;

	assert_int_equal(af_buf_puts(&b, "abc"), 0);
	p = af_buf_detach(&b);
	assert_string_equal(p, "abc");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(p);
}

static void test_error_prefix_keeps_cause(void **state)
{
	assert_int_equal(af_error_set(AF_ERR_DATA, "bad field %s", "Cpu"), AF_ERR_DATA);
	assert_int_equal(af_error_prefix(AF_ERR_DATA, "scope %s: ", "a/b"), AF_ERR_DATA);
	assert_string_equal(af_error_last(), "scope a/b: bad field Cpu");
	assert_int_equal(af_error_last_class(), AF_ERR_DATA);
	assert_string_equal(af_error_class_name(AF_ERR_TRANSIENT), "transient");
	af_error_clear();
	assert_string_equal(af_error_last(), "");
}

static void test_log_parsing_and_secret_headers(void **state)
{
	af_log_level level;
	af_log_format format;

	assert_int_equal(af_log_parse_level(&level, "WARN"), 0);
	assert_int_equal(level, AF_LOG_WARN);
	assert_int_equal(af_log_parse_level(&level, "loud"), AF_ERR_CONFIG);
	assert_int_equal(af_log_parse_format(&format, "json"), 0);
	assert_int_equal(format, AF_LOG_JSON);
	assert_true(af_log_header_is_secret("Authorization"));
	assert_true(af_log_header_is_secret("x-acs-security-token"));
	assert_true(af_log_header_is_secret("X-TC-Token"));
	assert_false(af_log_header_is_secret("x-acs-action"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_grows_and_terminates),
		cmocka_unit_test(test_buf_cap_is_hard),
		cmocka_unit_test(test_buf_detach_transfers_ownership),
		cmocka_unit_test(test_error_prefix_keeps_cause),
		cmocka_unit_test(test_log_parsing_and_secret_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
