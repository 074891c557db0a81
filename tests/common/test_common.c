/* Unit tests for src/common: the capped buffer and the error slot; and the
 * harness's child runner (tests/common/testutil.c), whose limit and signal
 * paths the integration tests only reach when something hangs or crashes. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aifleet/buf.h"
#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/strset.h"
#include "testutil.h"

static void test_buf_grows_and_terminates(void **state)
{
	af_buf b = AF_BUF_INIT;

	for (int i = 0; i < 1000; i++)
		assert_int_equal(af_buf_printf(&b, "%d,", i), 0);
	assert_int_equal(strncmp(af_buf_data(&b), "0,1,2,", 6), 0);
	assert_int_equal(af_buf_data(&b)[af_buf_len(&b)], '\0');
	assert_true(af_buf_len(&b) > 3000);
	af_buf_free(&b);
}

static void test_buf_cap_is_hard(void **state)
{
	af_buf b;

	af_buf_init(&b, 10);
	assert_int_equal(af_buf_puts(&b, "0123456789"), 0);
	assert_int_equal(af_buf_puts(&b, "x"), AF_ERR_LIMIT);
	assert_int_equal(af_buf_len(&b), 10);
	assert_non_null(strstr(af_error_last(), "10 bytes"));
	af_buf_free(&b);
}

/* Truncating drops a tail (a half-written row) and keeps the terminator
 * and the allocation; it never grows the contents. */
static void test_buf_truncate_keeps_a_prefix(void **state)
{
	af_buf b = AF_BUF_INIT;

	af_buf_truncate(&b, 0); /* nothing appended yet: nothing to do */
	assert_null(af_buf_data(&b));
	assert_int_equal(af_buf_puts(&b, "abcdef"), 0);
	af_buf_truncate(&b, 10);
	assert_string_equal(af_buf_data(&b), "abcdef");
	af_buf_truncate(&b, 3);
	assert_int_equal(af_buf_len(&b), 3);
	assert_string_equal(af_buf_data(&b), "abc");
	assert_int_equal(af_buf_puts(&b, "xy"), 0);
	assert_string_equal(af_buf_data(&b), "abcxy");
	af_buf_truncate(&b, 0);
	assert_string_equal(af_buf_data(&b), "");
	af_buf_free(&b);
}

static void test_buf_detach_transfers_ownership(void **state)
{
	af_buf b = AF_BUF_INIT;
	char *p;

	assert_int_equal(af_buf_puts(&b, "abc"), 0);
	p = af_buf_detach(&b);
	assert_string_equal(p, "abc");
	assert_null(af_buf_data(&b));
	assert_int_equal(af_buf_len(&b), 0);
	free(p);
}

/* The string set: each string once, through many growths of its table
 * and arena; prefixes, the empty string and near neighbours are distinct;
 * and it stays compact (what the per-scope indexes of a sync rely on). */
static void test_strset_exact_and_compact(void **state)
{
	enum { N = 50000 };
	af_strset *set = NULL;
	char key[32];

	assert_int_equal(af_strset_new(&set), 0);
	assert_false(af_strset_has(set, ""));
	assert_int_equal(af_strset_add(set, ""), 1);
	assert_int_equal(af_strset_add(set, ""), 0);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "tk-%08d", i);
		assert_int_equal(af_strset_add(set, key), 1);
	}
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "tk-%08d", i);
		assert_true(af_strset_has(set, key));
		assert_int_equal(af_strset_add(set, key), 0);
		snprintf(key, sizeof(key), "tk-%08d ", i);
		assert_false(af_strset_has(set, key));
	}
	assert_false(af_strset_has(set, "tk-"));
	assert_false(af_strset_has(set, "tk-0000000"));
	assert_int_equal(af_strset_count(set), N + 1);
	/* 12 bytes of string, and at most 2 x 8 bytes of slots and 2 x the
	 * arena: 48 bytes an entry, not a json-c table's ~100 */
	assert_true(af_strset_bytes(set) <= (size_t)N * 48);
	af_strset_free(set);
	af_strset_free(NULL);
}

static void test_error_prefix_keeps_cause(void **state)
{
	assert_int_equal(af_error_set(AF_ERR_DATA, "bad field %s", "Cpu"), AF_ERR_DATA);
	assert_int_equal(af_error_prefix(AF_ERR_DATA, "scope %s: ", "a/b"), AF_ERR_DATA);
	assert_string_equal(af_error_last(), "scope a/b: bad field Cpu");
	assert_string_equal(af_error_class_name(AF_ERR_TRANSIENT), "transient");
	assert_int_equal(af_error_oom(), AF_ERR_NOMEM);
	assert_string_equal(af_error_last(), "out of memory");
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

static void test_run_reports_code_signal_output_and_limit(void **state)
{
	const char *exit3[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
	const char *killed[] = {"/bin/sh", "-c", "kill -TERM $$", NULL};
	const char *hangs[] = {"/bin/sh", "-c", "exec sleep 30", NULL};
	af_test_run_result r = {0};
	char *dir = af_test_tempdir(), path[1100];
	double t0;

	(void)state;
	assert_int_equal(af_test_run("/bin/sh", exit3, dir, 10, &r), 3);
	assert_string_equal(r.out, "out\n");
	assert_string_equal(r.err, "err\n");
	assert_false(r.timed_out);
	assert_true(r.maxrss_kb > 0);
	assert_int_equal(af_test_run("/bin/sh", killed, dir, 0, &r), 128 + SIGTERM);
	assert_string_equal(r.out, "");
	/* Killed at the limit, long before the child would have ended. */
	t0 = af_test_now();
	assert_int_equal(af_test_run("/bin/sh", hangs, dir, 0.3, &r), -1);
	assert_true(r.timed_out);
	assert_int_equal(r.code, 128 + SIGKILL);
	assert_true(af_test_now() - t0 < 10);
	af_test_run_free(&r);
	snprintf(path, sizeof(path), "%s/out.txt", dir);
	remove(path);
	snprintf(path, sizeof(path), "%s/err.txt", dir);
	remove(path);
	remove(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_grows_and_terminates),
		cmocka_unit_test(test_buf_cap_is_hard),
		cmocka_unit_test(test_buf_truncate_keeps_a_prefix),
		cmocka_unit_test(test_buf_detach_transfers_ownership),
		cmocka_unit_test(test_strset_exact_and_compact),
		cmocka_unit_test(test_error_prefix_keeps_cause),
		cmocka_unit_test(test_log_parsing_and_secret_headers),
		cmocka_unit_test(test_run_reports_code_signal_output_and_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
