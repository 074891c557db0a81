#ifndef AIFLEET_TEST_PAI_EAS_H
#define AIFLEET_TEST_PAI_EAS_H

/* The test suite's own product (tests/product/pai_eas.c). */

#include "aifleet/product.h"

#define PAI_EAS_PRODUCT "pai_eas"

extern const af_product pai_eas_product;

int pai_eas_normalize_page(const af_scope *scope, json_object *page, const af_record_sink *sink,
			   af_norm_stats *stats);

#endif
