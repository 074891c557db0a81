/* libFuzzer target: af_normalize_hologres_node over {"list": ..., "detail": ...}
 * (the shape of tests/fixtures/normalize/hologres_*.json), or any JSON as the
 * list item alone. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const af_scope scope = {"fuzz", "fuzz", "fuzz", "fuzz"};
	json_object *o = fz_parse(data, size), *list = NULL, *detail = NULL;
	af_norm_stats st = {0};
	fz_counts counts;
	af_record_sink sink = fz_sink(&counts);
	int err;

	if (!o)
		return 0;
	if (!json_object_object_get_ex(o, "list", &list))
		list = o;
	json_object_object_get_ex(o, "detail", &detail);
	err = af_normalize_hologres_node(&scope, list, detail, &sink, &st);
	fz_check_stats(&st, &counts, err);
	json_object_put(o);
	return 0;
}
