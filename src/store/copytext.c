#include "store_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aifleet/error.h"

int af_store_copy_null(af_buf *b)
{
	return af_buf_append(b, "\\N", 2);
}

int af_store_copy_sep(af_buf *b)
{
	return af_buf_append(b, "\t", 1);
}

int af_store_copy_eol(af_buf *b)
{
	return af_buf_append(b, "\n", 1);
}

int af_store_copy_text(af_buf *b, const char *s)
{
	const char *run = s;
	const char *p;
	int err;

	if (!s)
		return af_store_copy_null(b);
	/* Copy unescaped stretches in one append: most values need no escaping. */
	for (p = s; *p; p++) {
		const char *esc;

		switch (*p) {
		case '\\': esc = "\\\\"; break;
		case '\t': esc = "\\t"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		default: continue;
		}
		if ((err = af_buf_append(b, run, (size_t)(p - run))) < 0)
			return err;
		if ((err = af_buf_append(b, esc, 2)) < 0)
			return err;
		run = p + 1;
	}
	return af_buf_append(b, run, (size_t)(p - run));
}

int af_store_copy_time(af_buf *b, af_time t)
{
	int64_t secs, usec;
	time_t tt;
	struct tm tm;
	char out[64];
	int n;

	if (t == AF_TIME_NULL)
		return af_store_copy_null(b);
	/* Floor division, so times before 1970 keep a positive fraction. */
	secs = t / 1000000;
	usec = t % 1000000;
	if (usec < 0) {
		usec += 1000000;
		secs -= 1;
	}
	tt = (time_t)secs;
	if (!gmtime_r(&tt, &tm))
		return af_error_set(AF_ERR_DATA, "time %" PRId64 " out of range", t);
	n = snprintf(out, sizeof(out), "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)usec);
	if (n < 0 || (size_t)n >= sizeof(out) || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
		return af_error_set(AF_ERR_DATA, "time %" PRId64 " out of range", t);
	return af_buf_append(b, out, (size_t)n);
}

int af_store_copy_num(af_buf *b, af_num n)
{
	char out[40];
	int len;

	if (!n.set)
		return af_store_copy_null(b);
	if (!isfinite(n.value))
		return af_error_set(AF_ERR_DATA, "number is not finite");
	/* %.17g round-trips every double exactly through float8 input. */
	len = snprintf(out, sizeof(out), "%.17g", n.value);
	return af_buf_append(b, out, (size_t)len);
}

int af_store_copy_hash(af_buf *b, const unsigned char hash[32])
{
	static const char hex[] = "0123456789abcdef";
	char out[3 + 64];
	size_t i;

	/* bytea hex input is \x...; the backslash itself is escaped for COPY. */
	out[0] = '\\';
	out[1] = '\\';
	out[2] = 'x';
	for (i = 0; i < 32; i++) {
		out[3 + 2 * i] = hex[hash[i] >> 4];
		out[3 + 2 * i + 1] = hex[hash[i] & 15];
	}
	return af_buf_append(b, out, sizeof(out));
}
