/*
 * Tair KVCache: DescribeTairKVCacheInferInstances (r-kvstore 2015-01-01,
 * RPC, GET /?..., ACS3 signed), paged by PageNumber/PageSize.
 */
#include "aifleet/collect.h"
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/paging.h"

#include <stdio.h>
#include <string.h>

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

/* Fetches, checks and emits page index + 1; *step says what comes next. */
static int tair_page(af_job *job, af_paging *paging, int index, int page_size, int *step)
{
	int page = index + 1;
	char page_no[16], size[16], key[32];
	af_kv query[3];
	af_api_request req;
	json_object *body = NULL, *list, *total = NULL;
	int err;

	snprintf(page_no, sizeof(page_no), "%d", page);
	snprintf(size, sizeof(size), "%d", page_size);
	snprintf(key, sizeof(key), "page-%d", page);
	query[0] = (af_kv){"RegionId", af_job_scope(job)->region};
	query[1] = (af_kv){"PageNumber", page_no};
	query[2] = (af_kv){"PageSize", size};
	af_job_request_init(job, &req, AF_API_ACS3_RPC, TAIR_ACTION, TAIR_VERSION);
	req.query = query;
	req.nquery = 3;

	if ((err = af_job_fetch(job, af_job_session(job), &req, key, &body)) < 0)
		return af_error_prefix(err, "page %d: ", page);
	json_object_object_get_ex(body, "TotalCount", &total);
	if ((err = tair_page_list(body, &list)) == 0)
		err = af_paging_emit(job, paging, body, list, "InstanceId", total, page_size, step);
	if (err < 0)
		af_error_prefix(err, "page %d (request %s): ", page, af_page_request_id(body));
	json_object_put(body);
	return err;
}

static int tair_collect(af_job *job)
{
	return af_paging_collect(job, tair_page);
}

/* r-kvstore regions served by the central host (SPEC.md section 4, the
 * SDK's EndpointMap); other regions use r-kvstore.<region>.aliyuncs.com. */
static const char *const central_regions[] = {
	"cn-qingdao",           "cn-beijing",   "cn-wulanchabu",      "cn-hangzhou",
	"cn-shanghai",          "cn-shenzhen",  "cn-heyuan",          "cn-hangzhou-finance",
	"cn-wuhan",             "cn-zhangbei",  "cn-shanghai-finance-1", "cn-shenzhen-finance-1",
	"cn-north-2-gov-1",     NULL,
};

static int tair_endpoint(char *out, size_t n, const char *region, bool intl)
{
	for (const char *const *r = central_regions; region && *r; r++)
		if (strcmp(*r, region) == 0)
			return af_endpoint_expand(out, n, "https://r-kvstore.aliyuncs.com", region);
	return af_endpoint_expand(out, n, "https://r-kvstore.{region}.aliyuncs.com", region);
}

/* The RAM/CAM actions of the API calls above. */
static const char *const tair_permissions[] = {"kvstore:" TAIR_ACTION, NULL};

const af_product af_product_tair = {
	.name = "tair_kvcache",
	.provider = AF_PROVIDER_ALIBABA,
	.title = "Tair KVCache",
	.default_endpoint = tair_endpoint,
	.default_page_size = TAIR_MAX_PAGE_SIZE,
	.max_page_size = TAIR_MAX_PAGE_SIZE,
	/* Alibaba publishes no limit for this API: well below the usual ones. */
	.default_rate = 10.0,
	.collect = tair_collect,
	.normalize = af_normalize_tair_page,
	.permissions = tair_permissions,
};
