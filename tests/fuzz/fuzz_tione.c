/* libFuzzer target: af_normalize_tione_page over arbitrary JSON. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const af_scope scope = {"fuzz", "fuzz", "fuzz", "fuzz"};
	json_object *page = fz_parse(data, size);
	af_norm_stats st = {0};
	fz_counts counts;
	af_record_sink sink = fz_sink(&counts);
	int err;

	if (!page)
		return 0;
	err = af_normalize_tione_page(&scope, page, &sink, &st);
	fz_check_stats(&st, &counts, err);
	json_object_put(page);
	return 0;
}
