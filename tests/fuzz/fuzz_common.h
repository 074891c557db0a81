#ifndef AIFLEET_FUZZ_COMMON_H
#define AIFLEET_FUZZ_COMMON_H

/*
 * Shared by the normalizer fuzz targets: parse the input with json-c, and a
 * sink that counts records and checks the invariants of record.h on each
 * (required fields set; raw/tags strict JSON that jsonb takes: valid UTF-8,
 * no \u0000, canonical numbers only; tags all strings; no secret name or
 * value anywhere, inside strings and embedded JSON included). A broken
 * invariant aborts, which libFuzzer reports.
 */

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "aifleet/normalize.h"

/* An invariant of a target: abort (which libFuzzer reports) when false. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__,         \
			        __LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

json_object *fz_parse(const uint8_t *data, size_t size);
/* A sink whose ctx must point to a fz_counts. */
typedef struct fz_counts {
	uint64_t inst, svc, res;
} fz_counts;
af_record_sink fz_sink(fz_counts *counts);
/* Checks the stats agree with what reached the sink. */
void fz_check_stats(const af_norm_stats *st, const fz_counts *c, int err);

/* The whole body of a page target: parse, normalize into the checking
 * sink, check the stats. Always returns 0, as libFuzzer expects. */
int fz_run_page(const uint8_t *data, size_t size, af_page_normalizer normalize);

#endif
