#include "store_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aifleet/error.h"

/* The bytes COPY text format escapes; NUL ends the value. */
static const unsigned char escaped[256] = {
	[0] = 1, ['\\'] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1,
};

int af_store_copy_text(af_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	const char *run = s;
	int err;

	if (!s)
		return af_store_copy_null(b);
	/* Copy unescaped stretches in one append: most values need no escaping.
	 * The table finds the end of a stretch in one test per byte. */
	for (;;) {
		char esc[2] = {'\\', 0};

		while (!escaped[*p])
			p++;
		if ((err = af_buf_append(b, run, (size_t)((const char *)p - run))) < 0)
			return err;
		switch (*p) {
		case '\0': return 0;
		case '\t': esc[1] = 't'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		default: esc[1] = '\\'; break;
		}
		if ((err = af_buf_append(b, esc, 2)) < 0)
			return err;
		run = (const char *)++p;
	}
}

size_t af_store_format_u64(char out[20], uint64_t v)
{
	char tmp[20];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

/* v (0 <= v < 10^width) in `width` digits, zero-padded. */
static void put_digits(char *out, unsigned v, int width)
{
	while (width-- > 0) {
		out[width] = (char)('0' + v % 10);
		v /= 10;
	}
}

/*
 * The proleptic Gregorian date of a day counted from 1970-01-01, as gmtime
 * gives it (H. Hinnant's civil_from_days: eras of 400 years, years that
 * start on March 1 so that the leap day comes last).
 */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era, yy;
	unsigned doe, yoe, doy, mp;

	z += 719468; /* days from 0000-03-01 */
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);                           /* [0, 146096] */
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
	yy = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* [0, 365] */
	mp = (5 * doy + 2) / 153;                      /* [0, 11], March first */
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yy + (*m <= 2);
}

int af_store_copy_time(af_buf *b, af_time t)
{
	int64_t secs, usec, days, sod, year;
	unsigned month, day;
	char out[29]; /* YYYY-MM-DD HH:MM:SS.UUUUUU+00 */

	if (t == AF_TIME_NULL)
		return af_store_copy_null(b);
	/* Floor division, so times before 1970 keep a positive fraction. */
	secs = t / 1000000;
	usec = t % 1000000;
	if (usec < 0) {
		usec += 1000000;
		secs -= 1;
	}
	days = secs / 86400;
	sod = secs % 86400;
	if (sod < 0) {
		sod += 86400;
		days -= 1;
	}
	civil_from_days(days, &year, &month, &day);
	/* PostgreSQL and four digits hold years 1..9999 (AD). */
	if (year < 1 || year > 9999)
		return af_error_set(AF_ERR_DATA, "time %" PRId64 " out of range", t);
	put_digits(out, (unsigned)year, 4);
	out[4] = '-';
	put_digits(out + 5, month, 2);
	out[7] = '-';
	put_digits(out + 8, day, 2);
	out[10] = ' ';
	put_digits(out + 11, (unsigned)(sod / 3600), 2);
	out[13] = ':';
	put_digits(out + 14, (unsigned)(sod / 60 % 60), 2);
	out[16] = ':';
	put_digits(out + 17, (unsigned)(sod % 60), 2);
	out[19] = '.';
	put_digits(out + 20, (unsigned)usec, 6);
	memcpy(out + 26, "+00", 3);
	return af_buf_append(b, out, sizeof(out));
}

int af_store_copy_num(af_buf *b, af_num n)
{
	char out[40];
	int len;

	if (!n.set)
		return af_store_copy_null(b);
	if (!isfinite(n.value))
		return af_error_set(AF_ERR_DATA, "number is not finite");
	/* An integer below 2^53 (most counts and sizes are) has at most 16
	 * digits, which %.17g writes as they are: no point, no exponent. -0
	 * and everything else are left to printf. */
	if (!signbit(n.value) && n.value < 0x1p53 && n.value == (double)(uint64_t)n.value)
		return af_buf_append(b, out, af_store_format_u64(out, (uint64_t)n.value));
	/* %.17g round-trips every double exactly through float8 input. */
	len = snprintf(out, sizeof(out), "%.17g", n.value);
	return af_buf_append(b, out, (size_t)len);
}

int af_store_copy_hash(af_buf *b, const unsigned char hash[32])
{
	/* The two hex digits of every byte value: one copy per byte. */
#define HEX16(h)                                                                           \
	h "0" h "1" h "2" h "3" h "4" h "5" h "6" h "7" h "8" h "9" h "a" h "b" h "c" h "d" \
	h "e" h "f"
	static const char hex[] = HEX16("0") HEX16("1") HEX16("2") HEX16("3") HEX16("4") HEX16("5")
		HEX16("6") HEX16("7") HEX16("8") HEX16("9") HEX16("a") HEX16("b") HEX16("c") HEX16("d")
		HEX16("e") HEX16("f");
#undef HEX16
	char out[3 + 64];
	size_t i;

	/* bytea hex input is \x...; the backslash itself is escaped for COPY. */
	out[0] = '\\';
	out[1] = '\\';
	out[2] = 'x';
	for (i = 0; i < 32; i++)
		memcpy(out + 3 + 2 * i, hex + 2 * hash[i], 2);
	return af_buf_append(b, out, sizeof(out));
}
