/*
 * TI-ONE: DescribeModelServiceGroups (tione 2021-11-11, POST JSON, TC3
 * signed), paged by Offset/Limit (Limit at most 100).
 */
#include "aifleet/collect.h"
#include "aifleet/error.h"
#include "paging.h"

#include <stdio.h>
#include <string.h>

#define TIONE_ACTION "DescribeModelServiceGroups"
#define TIONE_VERSION "2021-11-11"
#define TIONE_SERVICE "tione"
#define TIONE_MAX_LIMIT 100

static int tione_collect(af_job *job)
{
	int limit = job->product->page_size ? job->product->page_size : TIONE_MAX_LIMIT;
	af_paging paging;
	int err;

	if (limit > TIONE_MAX_LIMIT)
		limit = TIONE_MAX_LIMIT;
	af_paging_init(&paging, job->config->max_pages);
	for (long offset = 0;; offset += limit) {
		char body_text[96], key[40];
		af_api_request req;
		json_object *body = NULL, *response = NULL, *groups, *total = NULL;
		size_t n = 0;

		snprintf(body_text, sizeof(body_text), "{\"Offset\":%ld,\"Limit\":%d}", offset, limit);
		snprintf(key, sizeof(key), "offset-%ld", offset);
		af_job_request_init(job, &req, AF_API_TC3, TIONE_ACTION, TIONE_VERSION);
		req.service = TIONE_SERVICE;
		req.body = body_text;
		req.body_len = strlen(body_text);

		if ((err = af_job_fetch(job, job->session, &req, key, &body)) < 0)
			return af_error_prefix(err, "offset %ld: ", offset);
		if (json_object_object_get_ex(body, "Response", &response)) {
			if (json_object_object_get_ex(response, "ServiceGroups", &groups) &&
			    json_object_is_type(groups, json_type_array))
				n = json_object_array_length(groups);
			json_object_object_get_ex(response, "TotalCount", &total);
		}

		if ((err = af_job_emit_page(job, af_normalize_tione_page, body)) < 0) {
			json_object_put(body);
			return af_error_prefix(err, "offset %ld: ", offset);
		}
		err = af_paging_next(&paging, n, total, limit);
		json_object_put(body);
		if (err <= 0)
			return err < 0 ? af_error_prefix(err, "offset %ld: ", offset) : 0;
	}
}

const af_collector af_collector_tione = {
	.product = AF_PRODUCT_TIONE,
	.provider = AF_PROVIDER_TENCENT,
	.default_page_size = TIONE_MAX_LIMIT,
	.collect = tione_collect,
};
