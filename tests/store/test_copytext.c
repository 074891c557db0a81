/* Unit tests for the COPY text format writer (src/store/copytext.c).
 * Expected strings are written by hand from the PostgreSQL COPY docs: "\N"
 * is NULL; backslash, tab, newline and carriage return are backslash-escaped.
 * Numbers and times are also compared, over many values, with what the
 * writer printed before it formatted them itself (printf's %.17g, gmtime),
 * and the record checks of columns.c that guard COPY (UTF-8, JSON) are
 * held to the reasons they give. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "aifleet/error.h"
#include "columns.h"
#include "store_internal.h"

/* xorshift64: the property tests' values, the same on every run */
static uint64_t next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

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

/* Every escaped byte, alone, doubled, at either end, and each byte 1..255
 * in one text against a byte-at-a-time reference. */
static void test_text_every_escape(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"\\", "\\\\"},
		{"\t", "\\t"},
		{"\n", "\\n"},
		{"\r", "\\r"},
		{"\\\\\t\t\n\n\r\r", "\\\\\\\\\\t\\t\\n\\n\\r\\r"},
		{"\ra\n", "\\ra\\n"},
		{"a\\", "a\\\\"},
		{"\\a", "\\\\a"},
		{"\x01\x0b\x0c\x1f\x7f", "\x01\x0b\x0c\x1f\x7f"}, /* other controls pass */
		{"\xff\xc0\x80", "\xff\xc0\x80"}, /* bytes are not judged here */
	};
	char all[256], want[512];
	size_t i, n = 0;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_text(cases[i].in, cases[i].want);
	for (i = 1; i < 256; i++) {
		char c = (char)i;

		all[i - 1] = c;
		if (c == '\\' || c == '\t' || c == '\n' || c == '\r') {
			want[n++] = '\\';
			c = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
		}
		want[n++] = c;
	}
	all[255] = '\0';
	want[n] = '\0';
	expect_text(all, want);
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

static void expect_time_error(af_time t)
{
	af_buf b = AF_BUF_INIT;

	assert_int_equal(af_store_copy_time(&b, t), AF_ERR_DATA);
	af_buf_free(&b);
}

/* The ends of the range (years 1..9999), before 1970, and leap rules. */
static void test_time_edges(void **state)
{
	expect_time(-62135596800LL * 1000000, "0001-01-01 00:00:00.000000+00");
	expect_time_error(-62135596800LL * 1000000 - 1);
	expect_time(253402300799LL * 1000000 + 999999, "9999-12-31 23:59:59.999999+00");
	expect_time_error(253402300800LL * 1000000);
	expect_time_error(INT64_MAX);
	expect_time_error(INT64_MIN + 1);
	expect_time(-1000000, "1969-12-31 23:59:59.000000+00");
	expect_time(-999999, "1969-12-31 23:59:59.000001+00");
	expect_time(-86400LL * 1000000, "1969-12-31 00:00:00.000000+00");
	/* -2203891200 s: 1900-03-01 (1900 has no Feb 29); -2203977600 s: Feb 28 */
	expect_time(-2203891200LL * 1000000, "1900-03-01 00:00:00.000000+00");
	expect_time(-2203977600LL * 1000000, "1900-02-28 00:00:00.000000+00");
	/* 1600 and 2400 do have one */
	expect_time(-11670998400LL * 1000000, "1600-02-29 00:00:00.000000+00");
	expect_time(13574563200LL * 1000000, "2400-02-29 00:00:00.000000+00");
	expect_time(4102444799LL * 1000000 + 500000, "2099-12-31 23:59:59.500000+00");
}

/* What af_store_copy_time wrote when it asked gmtime_r and snprintf. */
static bool reference_time(char *out, size_t n, af_time t)
{
	int64_t secs = t / 1000000, usec = t % 1000000;
	time_t tt;
	struct tm tm;

	if (usec < 0) {
		usec += 1000000;
		secs -= 1;
	}
	tt = (time_t)secs;
	if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
		return false;
	snprintf(out, n, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)usec);
	return true;
}

static void test_times_match_gmtime(void **state)
{
	const int64_t lo = -62135596800LL * 1000000 - 86400LL * 1000000 * 400;
	const uint64_t span = (uint64_t)(253402300800LL * 1000000 - lo) + 86400ULL * 1000000 * 400;
	uint64_t rnd = 0x9e3779b97f4a7c15ULL;
	af_buf b = AF_BUF_INIT;
	char want[64];

	for (int i = 0; i < 300000; i++) {
		uint64_t r = next_random(&rnd);
		/* anywhere in (and a little past) the range; a third at midnight
		 * plus or minus a microsecond, where days turn */
		af_time t = lo + (int64_t)(r % span);

		if (i % 3 == 0)
			t = t - t % (86400LL * 1000000) + (int64_t)(r >> 62) - 1;
		af_buf_reset(&b);
		if (reference_time(want, sizeof(want), t)) {
			assert_int_equal(af_store_copy_time(&b, t), 0);
			assert_string_equal(af_buf_data(&b), want);
		} else {
			assert_int_equal(af_store_copy_time(&b, t), AF_ERR_DATA);
		}
	}
	af_buf_free(&b);
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

static void expect_num(double v, const char *want)
{
	af_buf b = AF_BUF_INIT;

	assert_int_equal(af_store_copy_num(&b, (af_num){v, true}), 0);
	assert_string_equal(af_buf_data(&b), want);
	af_buf_free(&b);
}

/* Integers are written without printf up to 2^53: the same text. */
static void test_number_edges(void **state)
{
	af_buf b = AF_BUF_INIT;

	expect_num(0, "0");
	expect_num(-0.0, "-0");
	expect_num(1, "1");
	expect_num(-3, "-3");
	expect_num(123456789, "123456789");
	expect_num(9007199254740991.0, "9007199254740991"); /* 2^53 - 1 */
	expect_num(9007199254740992.0, "9007199254740992"); /* 2^53 */
	expect_num(9007199254740994.0, "9007199254740994");
	expect_num(1e16, "10000000000000000");
	expect_num(1e17, "1e+17");
	expect_num(18446744073709551616.0, "1.8446744073709552e+19");
	expect_num(1000000000000000.5, "1000000000000000.5");
	expect_num(1.5, "1.5");
	expect_num(1e-300, "1e-300");
	expect_num(1e300, "1.0000000000000001e+300");
	expect_num(DBL_MAX, "1.7976931348623157e+308");
	expect_num(5e-324, "4.9406564584124654e-324");
	expect_num(2.5e-5, "2.5000000000000001e-05");
	assert_int_equal(af_store_copy_num(&b, (af_num){-INFINITY, true}), AF_ERR_DATA);
	assert_int_equal(af_store_copy_num(&b, (af_num){-NAN, true}), AF_ERR_DATA);
	assert_null(af_buf_data(&b));
	af_buf_free(&b);
}

/* Against %.17g over doubles of every kind: random bits, integers of
 * every size, and small fractions. */
static void test_numbers_match_printf(void **state)
{
	uint64_t rnd = 42;
	af_buf b = AF_BUF_INIT;
	char want[40];

	for (int i = 0; i < 400000; i++) {
		uint64_t r = next_random(&rnd);
		double v;

		switch (i % 4) {
		case 0: memcpy(&v, &r, sizeof(v)); break;
		case 1: v = (double)(r >> (r % 64)); break;
		case 2: v = -(double)(r >> (11 + r % 53)); break;
		default: v = (double)(r % 100000) / 64.0; break;
		}
		af_buf_reset(&b);
		if (!isfinite(v)) {
			assert_int_equal(af_store_copy_num(&b, (af_num){v, true}), AF_ERR_DATA);
			continue;
		}
		snprintf(want, sizeof(want), "%.17g", v);
		assert_int_equal(af_store_copy_num(&b, (af_num){v, true}), 0);
		assert_string_equal(af_buf_data(&b), want);
	}
	af_buf_free(&b);
}

static void test_format_u64(void **state)
{
	static const struct {
		uint64_t v;
		const char *want;
	} cases[] = {
		{0, "0"}, {7, "7"}, {10, "10"}, {1000000, "1000000"}, {UINT64_MAX, "18446744073709551615"},
	};
	char out[21];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = af_store_format_u64(out, cases[i].v);

		out[n] = '\0';
		assert_string_equal(out, cases[i].want);
	}
}

/* ---- the record checks that keep COPY from failing (columns.c) ---------- */

/* The instance's problem, or NULL; valid until the next call. */
static const char *instance_problem(const char *name, const char *tags, const char *raw)
{
	static char msg[160];
	static json_tokener *tok;
	af_instance in;

	if (!tok) {
		tok = json_tokener_new();
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	}
	memset(&in, 0, sizeof(in));
	in.native_id = "i-1";
	in.name = name;
	in.created_at = in.updated_at = in.expires_at = AF_TIME_NULL;
	in.tags_json = tags;
	in.raw_json = raw;
	return af_record_problem(&af_entities[AF_ENTITY_INSTANCE], &in, tok, msg, sizeof(msg));
}

static void test_utf8_checks(void **state)
{
	static const char *const valid[] = {
		"", "plain", "\x7f", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80",
		"\xed\x9f\xbf" /* U+D7FF */, "\xee\x80\x80" /* U+E000 */, "\xef\xbf\xbf",
		"\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf" /* U+10FFFF */,
		"a\xe4\xb8\xad\xe6\x96\x87z\xf0\x9f\x98\x80",
	};
	static const char *const invalid[] = {
		"\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xe0\x9f\xbf", "\xf0\x80\x80\x80",
		"\xf0\x8f\xbf\xbf",                        /* overlong */
		"\xed\xa0\x80", "\xed\xbf\xbf",                /* surrogates */
		"\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf7\xbf\xbf\xbf", /* beyond U+10FFFF */
		"\xf8\x88\x80\x80\x80", "\xfe", "\xff",           /* no such lead byte */
		"\xc3", "\xe4\xb8", "\xf0\x9f\x98", "ab\xc3", "\xe4\xb8z", /* truncated */
		"\x80", "a\xbfz",                           /* a lone continuation */
	};
	af_scope sc = {"alibaba", "acct", "cn-beijing", "tione"};
	size_t i;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		assert_null(instance_problem(valid[i], NULL, NULL));
		sc.region = valid[i][0] ? valid[i] : "r";
		assert_true(af_scope_valid(&sc));
	}
	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		const char *why = instance_problem(invalid[i], NULL, NULL);

		assert_non_null(why);
		assert_string_equal(why, "a text field is not valid UTF-8");
		sc.region = invalid[i];
		assert_false(af_scope_valid(&sc));
	}
}

/* JSON as json-c judges it: each text as tags (an object wanted) and as
 * raw (any value). NULL: valid. */
static void test_json_checks(void **state)
{
	static const struct {
		const char *text, *tags, *raw;
	} cases[] = {
		{"{}", NULL, NULL},
		{"[]", "tags_json: not a JSON object", NULL},
		{"{\"a\": 1, \"b\": [true, false, null, -0, 0.5, -12.25], \"c\": {\"d\": \"e\"}}", NULL, NULL},
		{"{\"k\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", NULL, NULL},
		{"{\"\xe4\xb8\xad\": \"\xf0\x9f\x98\x80\"}", NULL, NULL},
		{"{\t\"a\"\n:\r1 }", NULL, NULL},
		{"{\"a\":1,\"a\":2}", NULL, NULL},
		{"[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]", "tags_json: not a JSON object", NULL}, /* 16 deep */
		{"[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]", "tags_json: not a JSON object", NULL},
		{"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", /* 31 deep */
		 "tags_json: not a JSON object", NULL},
		{"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
		 "tags_json: nesting too deep", "raw_json: nesting too deep"},
		/* json-c's verdicts at the edges of the grammar */
		{"{\"a\": 123456789012345678901234567890}", NULL, NULL},
		{"{\"a\": 1e5, \"b\": 1E+5, \"c\": 1.}", NULL, NULL},
		{"{\"a\": -01}", NULL, NULL},
		{"{\"a\": 01}", "tags_json: number expected", "raw_json: number expected"},
		{"{\"a\": .5}", "tags_json: unexpected character", "raw_json: unexpected character"},
		{"{\"a\": \"\\u00e9\\ud83d\\ude00\"}", NULL, NULL},
		{"{\"a\": \"\\u0000\"}", "tags_json: contains \\u0000, which PostgreSQL jsonb cannot store",
		 "raw_json: contains \\u0000, which PostgreSQL jsonb cannot store"},
		{"{\"a\": \"\\\\u0000\"}", NULL, NULL},
		{"{\"a\": \"\\x\"}", "tags_json: invalid string sequence", "raw_json: invalid string sequence"},
		{"{\"a\": \"\x01\x7f\"}", NULL, NULL}, /* json-c takes raw control characters */
		{"{\"a\": \"\xc3\"}", "tags_json: invalid utf-8 string", "raw_json: invalid utf-8 string"},
		{" {\"a\": 1}", NULL, NULL},
		{"{\"a\": 1} ", NULL, NULL},
		{"{\"a\": 1}x", "tags_json: unexpected character", "raw_json: unexpected character"},
		{"{\"a\": 1}{}", "tags_json: unexpected character", "raw_json: unexpected character"},
		{"{\"a\": 1,}", "tags_json: unexpected character", "raw_json: unexpected character"},
		{"[1,]", "tags_json: unexpected character", "raw_json: unexpected character"},
		{"{\"a\" 1}", "tags_json: object property name separator ':' expected",
		 "raw_json: object property name separator ':' expected"},
		{"{\"a\": 1 \"b\": 2}", "tags_json: object value separator ',' expected",
		 "raw_json: object value separator ',' expected"},
		{"{'a': 1}", NULL, NULL}, /* json-c takes single-quoted names, strict or not */
		{"{\"a\": 'b'}", "tags_json: unexpected character", "raw_json: unexpected character"},
		{"{1: 2}", "tags_json: quoted object property name expected",
		 "raw_json: quoted object property name expected"},
		{"{\"a\": tru}", "tags_json: boolean expected", "raw_json: boolean expected"},
		{"{\"a\": True}", "tags_json: boolean expected", "raw_json: boolean expected"},
		{"{\"a\": nul}", "tags_json: null expected", "raw_json: null expected"},
		{"{\"a\": 1", "tags_json: truncated JSON", "raw_json: truncated JSON"},
		{"{\"a\": \"b", "tags_json: truncated JSON", "raw_json: truncated JSON"},
		{"", "tags_json: truncated JSON", "raw_json: truncated JSON"},
		{"1", "tags_json: truncated JSON", "raw_json: truncated JSON"},
		{"\"s\"", "tags_json: not a JSON object", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = instance_problem("n", cases[i].text, NULL);

		if (cases[i].tags ? !why || strcmp(why, cases[i].tags) != 0 : why != NULL)
			fail_msg("tags %s: '%s', not '%s'", cases[i].text, why ? why : "(valid)",
				 cases[i].tags ? cases[i].tags : "(valid)");
		why = instance_problem("n", NULL, cases[i].text);
		if (cases[i].raw ? !why || strcmp(why, cases[i].raw) != 0 : why != NULL)
			fail_msg("raw %s: '%s', not '%s'", cases[i].text, why ? why : "(valid)",
				 cases[i].raw ? cases[i].raw : "(valid)");
	}
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
		cmocka_unit_test(test_text_every_escape),
		cmocka_unit_test(test_null_and_separators),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_time_edges),
		cmocka_unit_test(test_times_match_gmtime),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_number_edges),
		cmocka_unit_test(test_numbers_match_printf),
		cmocka_unit_test(test_format_u64),
		cmocka_unit_test(test_utf8_checks),
		cmocka_unit_test(test_json_checks),
		cmocka_unit_test(test_hash_is_escaped_bytea_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
