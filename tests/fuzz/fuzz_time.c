/* libFuzzer target: af_time_parse on arbitrary bytes; whatever parses must
 * survive af_time_format and parse back to the same instant. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/normalize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), buf[40];
	af_time t, back;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (af_time_parse(&t, s) == 0) {
		af_time_format(buf, t);
		if (af_time_parse(&back, buf) != 0 || back != t) {
			fprintf(stderr, "round trip failed: %s\n", buf);
			abort();
		}
	} else if (t != AF_TIME_NULL) {
		abort();
	}
	free(s);
	return 0;
}
