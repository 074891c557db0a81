/*
 * af_time_parse / af_time_format, table-driven. Expected epoch seconds
 * come from `date -u -d <timestamp> +%s` (GNU coreutils), an independent
 * implementation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aifleet/error.h"
#include "aifleet/normalize.h"

#define S INT64_C(1000000)

static const struct {
	const char *in;
	int64_t want;
} good[] = {
    /* the formats of the API pages */
    {"2025-04-07T04:46Z", 1744001160 * S},
    {"2025-04-07T04:46Z\n", 1744001160 * S}, /* Tair DestroyTime */
    {"2025-11-04T02:09:26Z", 1762222166 * S},
    {"2023-08-08T22:27:01+08:00", 1691504821 * S},
    {"2026-01-28T07:44:27.535Z", 1769586267 * S + 535000},
    /* naive: taken as UTC */
    {"2023-08-05 05:46:58", 1691214418 * S},
    {"2023-08-05T05:46:58", 1691214418 * S},
    /* spacing, case, offset spellings */
    {"  2023-08-05T05:46:58Z \t\r\n", 1691214418 * S},
    {"2023-08-05t05:46:58z", 1691214418 * S},
    {"2023-08-08T22:27:01+0800", 1691504821 * S},
    {"2023-08-08T22:27:01+08", 1691504821 * S},
    {"2023-08-05T00:46:58-05:00", 1691214418 * S},
    {"2023-08-05T05:46:58+00:00", 1691214418 * S},
    /* fractions: shorter, microseconds, truncated beyond */
    {"2026-01-28T07:44:27.5Z", 1769586267 * S + 500000},
    {"2026-01-28T07:44:27.000001Z", 1769586267 * S + 1},
    {"2026-01-28T07:44:27.1234567Z", 1769586267 * S + 123456},
    /* calendar edges */
    {"2024-02-29T00:00:00Z", 1709164800 * S},
    {"2000-03-01T00:00:00Z", 951868800 * S},
    {"1970-01-01T00:00:00Z", 0},
    {"1969-12-31T23:59:59Z", -1 * S},
    {"9999-12-31T23:59:59Z", INT64_C(253402300799) * S},
    {"0001-01-01T00:00:00Z", INT64_C(-62135596800) * S},
    {"2023-08-05T00:30:00+01:00", (1691193600 - 1800) * S}, /* crosses the day */
    {"0001-01-01T00:00:00-00:01", (INT64_C(-62135596800) + 60) * S},
    {"9999-12-31T23:59:59.999999Z", INT64_C(253402300799) * S + 999999},
};

static const char *const bad[] = {
    "",
    "   ",
    "garbage",
    "2025-13-01T00:00:00Z", /* month 13 */
    "2025-00-10T00:00:00Z",
    "2025-02-30T00:00:00Z", /* Feb 30 */
    "2023-02-29T00:00:00Z", /* not a leap year */
    "1900-02-29T00:00:00Z", /* century, not leap */
    "2025-04-31T00:00:00Z",
    "2025-04-00T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2025-04-07T24:00:00Z",
    "2025-04-07T23:60:00Z",
    "2025-04-07T23:59:60Z",
    "2025-04-07", /* date only */
    "2025-04-07T",
    "2025-04-07T04Z",
    "2025-4-7T04:46Z",
    "25-04-07T04:46Z",
    "2025-04-07T04:46:5Z",
    "2025-04-07T04:46:00.Z",
    "2025-04-07T04:46:00Zjunk",
    "2025-04-07T04:46:00 Z x",
    "2025-04-07T04:46:00+8",
    "2025-04-07T04:46:00+24:00",
    "2025-04-07T04:46:00+08:60",
    "2025-04-07T04:46:00+08:",
    "2025/04/07 04:46:00",
    "1744001160",
    "2025-04-07T04:46:00.1234567890123456789012345678901Z", /* absurd fraction */
    "\xe4\xb8\xad\xe6\x96\x87",
    "0001-01-01T00:00:00+00:01", /* before year 1 in UTC */
    "9999-12-31T23:59:59-00:01", /* after 9999 in UTC */
};

static void parses(void **state)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		af_time t = 42;

		if (af_time_parse(&t, good[i].in) != 0)
			fail_msg("[%s] rejected: %s", good[i].in, af_error_last());
		if (t != good[i].want)
			fail_msg("[%s] -> %lld, want %lld", good[i].in, (long long)t,
			         (long long)good[i].want);
	}
}

static void rejects(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		af_time t = 42;

		if (af_time_parse(&t, bad[i]) != AF_ERR_DATA)
			fail_msg("[%s] accepted as %lld", bad[i], (long long)t);
		assert_true(t == AF_TIME_NULL);
	}
}

static void rejects_null(void **state)
{
	af_time t = 42;

	assert_int_equal(af_time_parse(&t, NULL), AF_ERR_DATA);
	assert_true(t == AF_TIME_NULL);
}

static void formats(void **state)
{
	static const struct {
		int64_t t;
		const char *want;
	} cases[] = {
	    {1744001160 * S, "2025-04-07 04:46:00.000000+00"},
	    {1769586267 * S + 535000, "2026-01-28 07:44:27.535000+00"},
	    {0, "1970-01-01 00:00:00.000000+00"},
	    {-1, "1969-12-31 23:59:59.999999+00"},
	    {1709164800 * S, "2024-02-29 00:00:00.000000+00"},
	    {INT64_C(-62135596800) * S, "0001-01-01 00:00:00.000000+00"},
	};
	char buf[40];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		af_time_format(buf, cases[i].t);
		assert_string_equal(buf, cases[i].want);
	}
	af_time_format(buf, AF_TIME_NULL);
	assert_string_equal(buf, "");
}

/* format then parse is the identity (PostgreSQL's "+00" is an offset). */
static void round_trip(void **state)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char buf[40];
		af_time t;

		af_time_format(buf, good[i].want);
		assert_int_equal(af_time_parse(&t, buf), 0);
		assert_true(t == good[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parses),  cmocka_unit_test(rejects),    cmocka_unit_test(rejects_null),
	    cmocka_unit_test(formats), cmocka_unit_test(round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
