/* libFuzzer target: af_normalize_tair_page over arbitrary JSON. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_run_page(data, size, af_normalize_tair_page);
}
