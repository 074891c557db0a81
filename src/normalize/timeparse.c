/*
 * Timestamps of the API pages, parsed by hand: strptime has no portable
 * offset or fraction support, and mktime/timegm depend on TZ or are
 * non-standard. The epoch arithmetic is days-from-civil (H. Hinnant).
 *
 * Accepted: [blanks] YYYY-MM-DD (T|t|space) HH:MM [:SS [.fraction]]
 *           [Z | z | +HH:MM | -HH:MM | +HHMM | +HH] [blanks]
 * Without a zone the time is taken as UTC (docs/mapping.md says why).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "aifleet/error.h"
#include "aifleet/normalize.h"

#define USEC_PER_SEC INT64_C(1000000)
#define SEC_PER_DAY  INT64_C(86400)
#define MIN_SEC      INT64_C(-62135596800) /* 0001-01-01T00:00:00Z */
#define MAX_SEC      INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Exactly `n` digits at *p; advances. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

static int fail(af_time *out, const char *why)
{
	*out = AF_TIME_NULL;
	/* the text is provider data, not a secret, but keep messages short */
	return af_error_set(AF_ERR_DATA, "bad timestamp: %s", why);
}

int af_time_parse(af_time *out, const char *s)
{
	const char *p = s;
	int y, mo, d, h, mi, sec = 0, oh = 0, om = 0, sign = 0;
	int64_t usec = 0, days, t;

	if (!s)
		return fail(out, "missing");
	while (isspace((unsigned char)*p))
		p++;
	if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') ||
	    !digits(&p, 2, &d))
		return fail(out, "date is not YYYY-MM-DD");
	if (*p != 'T' && *p != 't' && *p != ' ')
		return fail(out, "no time part");
	p++;
	if (!digits(&p, 2, &h) || !expect(&p, ':') || !digits(&p, 2, &mi))
		return fail(out, "time is not HH:MM");
	if (*p == ':') {
		p++;
		if (!digits(&p, 2, &sec))
			return fail(out, "seconds are not SS");
		if (*p == '.' || *p == ',') {
			int64_t scale = 100000;
			int n = 0;

			p++;
			if (!isdigit((unsigned char)*p))
				return fail(out, "empty fraction");
			/* digits beyond microseconds are truncated */
			for (; isdigit((unsigned char)*p); p++, n++) {
				if (n >= 30)
					return fail(out, "fraction too long");
				if (scale > 0) {
					usec += (*p - '0') * scale;
					scale /= 10;
				}
			}
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		p++;
		if (!digits(&p, 2, &oh))
			return fail(out, "offset is not +HH[:MM]");
		if (*p == ':') {
			p++;
			if (!digits(&p, 2, &om))
				return fail(out, "offset is not +HH:MM");
		} else if (isdigit((unsigned char)*p)) {
			if (!digits(&p, 2, &om))
				return fail(out, "offset is not +HHMM");
		}
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p)
		return fail(out, "trailing characters");
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return fail(out, "no such date");
	if (h > 23 || mi > 59 || sec > 59)
		return fail(out, "no such time of day");
	if (oh > 23 || om > 59)
		return fail(out, "offset out of range");
	days = days_from_civil(y, mo, d);
	t = days * SEC_PER_DAY + h * 3600 + mi * 60 + sec;
	t -= sign * (oh * 3600 + om * 60);
	/* an offset can push a date past year 1 or 9999; PostgreSQL takes it,
	 * but af_time_format's output would then not parse back */
	if (t < MIN_SEC || t > MAX_SEC)
		return fail(out, "outside years 1..9999 in UTC");
	*out = t * USEC_PER_SEC + usec;
	return 0;
}

void af_time_format(char out[40], af_time t)
{
	int64_t secs, usec, days, rem, y;
	int m, d;

	if (t == AF_TIME_NULL) {
		out[0] = '\0';
		return;
	}
	/* floor division, so that times before 1970 come out right */
	secs = t / USEC_PER_SEC;
	usec = t % USEC_PER_SEC;
	if (usec < 0) {
		usec += USEC_PER_SEC;
		secs--;
	}
	days = secs / SEC_PER_DAY;
	rem = secs % SEC_PER_DAY;
	if (rem < 0) {
		rem += SEC_PER_DAY;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	/* the widest int64 time is 31 characters; the compiler cannot know
	 * the ranges, so format into a roomy buffer and copy */
	char buf[128];
	size_t n;

	snprintf(buf, sizeof(buf), "%04" PRId64 "-%02d-%02d %02d:%02d:%02d.%06d+00", y, m, d,
	         (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (int)usec);
	n = strlen(buf);
	if (n > 39)
		n = 39;
	memcpy(out, buf, n);
	out[n] = '\0';
}
