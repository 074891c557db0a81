/*
 * Tair KVCache: DescribeTairKVCacheInferInstances (r-kvstore 2015-01-01,
 * RPC, GET /?..., ACS3 signed), paged by PageNumber/PageSize.
 */
#include "aifleet/collect.h"
#include "aifleet/error.h"
#include "aifleet/log.h"
#include "paging.h"

#include <stdio.h>

#define TAIR_ACTION "DescribeTairKVCacheInferInstances"
#define TAIR_VERSION "2015-01-01"
#define TAIR_MAX_PAGE_SIZE 100 /* the largest PageSize the API accepts */

static int tair_collect(af_job *job)
{
	int page_size = job->product->page_size ? job->product->page_size : TAIR_MAX_PAGE_SIZE;
	af_paging paging;
	int err = 0;

	af_paging_init(&paging, job->config->max_pages);
	for (int page = 1;; page++) {
		char page_no[16], size[16], key[32];
		af_kv query[3];
		af_api_request req;
		json_object *body = NULL, *instances, *list, *total;
		size_t n = 0;

		snprintf(page_no, sizeof(page_no), "%d", page);
		snprintf(size, sizeof(size), "%d", page_size);
		snprintf(key, sizeof(key), "page-%d", page);
		query[0] = (af_kv){"RegionId", job->scope.region};
		query[1] = (af_kv){"PageNumber", page_no};
		query[2] = (af_kv){"PageSize", size};
		af_job_request_init(job, &req, AF_API_ACS3_RPC, TAIR_ACTION, TAIR_VERSION);
		req.query = query;
		req.nquery = 3;

		if ((err = af_job_fetch(job, job->session, &req, key, &body)) < 0)
			return af_error_prefix(err, "page %d: ", page);
		if (json_object_object_get_ex(body, "Instances", &instances) &&
		    json_object_object_get_ex(instances, "TairInferInstanceDTO", &list) &&
		    json_object_is_type(list, json_type_array))
			n = json_object_array_length(list);

		if ((err = af_job_emit_page(job, af_normalize_tair_page, body)) < 0) {
			json_object_put(body);
			return af_error_prefix(err, "page %d: ", page);
		}

		total = NULL;
		json_object_object_get_ex(body, "TotalCount", &total);
		err = af_paging_next(&paging, n, total, page_size);
		json_object_put(body);
		if (err <= 0)
			return err < 0 ? af_error_prefix(err, "page %d: ", page) : 0;
	}
}

const af_collector af_collector_tair = {
	.product = AF_PRODUCT_TAIR,
	.provider = AF_PROVIDER_ALIBABA,
	.default_page_size = TAIR_MAX_PAGE_SIZE,
	.collect = tair_collect,
};
