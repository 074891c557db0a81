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

/*
 * The success shape: a RequestId and Instances.TairInferInstanceDTO as an
 * array. The empty forms the API uses are "Instances": {} and a null list;
 * *list is then NULL. Anything else is not a page and must not count as an
 * empty one.
 */
static int tair_page_list(json_object *body, json_object **list)
{
	json_object *rid = NULL, *instances = NULL, *dto = NULL;

	*list = NULL;
	if (!json_object_object_get_ex(body, "RequestId", &rid) ||
	    !json_object_is_type(rid, json_type_string))
		return af_error_set(AF_ERR_DATA, "malformed page: no RequestId");
	if (!json_object_object_get_ex(body, "Instances", &instances) ||
	    !json_object_is_type(instances, json_type_object))
		return af_error_set(AF_ERR_DATA, "malformed page: no \"Instances\" object");
	if (!json_object_object_get_ex(instances, "TairInferInstanceDTO", &dto) || !dto)
		return 0;
	if (!json_object_is_type(dto, json_type_array))
		return af_error_set(AF_ERR_DATA,
				    "malformed page: Instances.TairInferInstanceDTO is not an array");
	*list = dto;
	return 0;
}

/* Fetches, checks and emits page `page`; *step says what comes next. */
static int tair_page(af_job *job, af_paging *paging, int page, int page_size, int *step)
{
	char page_no[16], size[16], key[32];
	af_kv query[3];
	af_api_request req;
	json_object *body = NULL, *list, *total = NULL;
	int err;

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
	if ((err = tair_page_list(body, &list)) < 0 ||
	    (err = af_job_emit_page(job, af_normalize_tair_page, body)) < 0)
		goto done;
	json_object_object_get_ex(body, "TotalCount", &total);
	if ((err = af_paging_next(paging, list, "InstanceId", total, page_size)) >= 0) {
		*step = err;
		err = 0;
	}
done:
	if (err < 0)
		af_error_prefix(err, "page %d (request %s): ", page, af_page_request_id(body));
	json_object_put(body);
	return err;
}

static int tair_collect(af_job *job)
{
	int page_size = job->product->page_size ? job->product->page_size : TAIR_MAX_PAGE_SIZE;
	int step = AF_PAGING_MORE, page = 0, err;
	af_paging paging;

	if (page_size > TAIR_MAX_PAGE_SIZE)
		page_size = TAIR_MAX_PAGE_SIZE;
	if ((err = af_paging_init(&paging, job->config->max_pages)) < 0)
		return err;
	while (step != AF_PAGING_DONE) {
		page = step == AF_PAGING_RESTART ? 1 : page + 1;
		if (step == AF_PAGING_RESTART)
			af_warn("collect", "%s/%s/%s: TotalCount changed while paging; listing again",
				job->scope.account, job->scope.region, job->scope.product);
		if ((err = tair_page(job, &paging, page, page_size, &step)) < 0)
			break;
	}
	af_paging_free(&paging);
	return err;
}

const af_collector af_collector_tair = {
	.product = AF_PRODUCT_TAIR,
	.provider = AF_PROVIDER_ALIBABA,
	.default_page_size = TAIR_MAX_PAGE_SIZE,
	.collect = tair_collect,
};
