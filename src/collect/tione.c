/*
 * TI-ONE: DescribeModelServiceGroups (tione 2021-11-11, POST JSON, TC3
 * signed), paged by Offset/Limit (Limit at most 100).
 */
#include "aifleet/collect.h"
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/paging.h"

#include <stdio.h>
#include <string.h>

#define TIONE_ACTION "DescribeModelServiceGroups"
#define TIONE_VERSION "2021-11-11"
#define TIONE_SERVICE "tione"
#define TIONE_MAX_LIMIT 100

/*
 * The success shape: {"Response": {...}} without "Error" (the transport
 * has classified those), with ServiceGroups as an array; a null list is
 * the empty form. *response receives the Response object.
 */
static int tione_page_list(json_object *body, json_object **response, json_object **list)
{
	json_object *groups = NULL;

	*list = NULL;
	if (!json_object_object_get_ex(body, "Response", response) ||
	    !json_object_is_type(*response, json_type_object))
		return af_error_set(AF_ERR_DATA, "malformed page: no \"Response\" object");
	if (json_object_object_get_ex(*response, "Error", NULL))
		return af_error_set(AF_ERR_DATA, "malformed page: Response.Error in a success");
	if (!json_object_object_get_ex(*response, "ServiceGroups", &groups))
		return af_error_set(AF_ERR_DATA, "malformed page: no Response.ServiceGroups");
	if (groups && !json_object_is_type(groups, json_type_array))
		return af_error_set(AF_ERR_DATA,
				    "malformed page: Response.ServiceGroups is not an array");
	*list = groups;
	return 0;
}

/* Fetches, checks and emits the page at offset index x limit; *step says
 * what is next. */
static int tione_page(af_job *job, af_paging *paging, int index, int limit, int *step)
{
	long offset = (long)index * limit;
	char body_text[96], key[40];
	af_api_request req;
	json_object *body = NULL, *response = NULL, *list, *total = NULL;
	int err;

	snprintf(body_text, sizeof(body_text), "{\"Offset\":%ld,\"Limit\":%d}", offset, limit);
	snprintf(key, sizeof(key), "offset-%ld", offset);
	af_job_request_init(job, &req, AF_API_TC3, TIONE_ACTION, TIONE_VERSION);
	req.service = TIONE_SERVICE;
	req.body = body_text;
	req.body_len = strlen(body_text);

	if ((err = af_job_fetch(job, af_job_session(job), &req, key, &body)) < 0)
		return af_error_prefix(err, "offset %ld: ", offset);
	if ((err = tione_page_list(body, &response, &list)) == 0) {
		json_object_object_get_ex(response, "TotalCount", &total);
		err = af_paging_emit(job, paging, body, list, "ServiceGroupId", total, limit, step);
	}
	if (err < 0)
		af_error_prefix(err, "offset %ld (request %s): ", offset, af_page_request_id(body));
	json_object_put(body);
	return err;
}

static int tione_collect(af_job *job)
{
	return af_paging_collect(job, tione_page);
}

/* One global host (and one for the international site); the region goes
 * in the X-TC-Region header. */
static int tione_endpoint(char *out, size_t n, const char *region, bool intl)
{
	return af_endpoint_expand(out, n, intl ? "https://tione.intl.tencentcloudapi.com"
					       : "https://tione.tencentcloudapi.com", region);
}

/* The RAM/CAM actions of the API calls above. */
static const char *const tione_permissions[] = {"name/tione:" TIONE_ACTION, NULL};

const af_product af_product_tione = {
	.name = "tione",
	.provider = AF_PROVIDER_TENCENT,
	.title = "TI-ONE",
	.default_endpoint = tione_endpoint,
	.default_page_size = TIONE_MAX_LIMIT,
	.max_page_size = TIONE_MAX_LIMIT,
	/* TI-ONE documents 20 requests per second per API. */
	.default_rate = 20.0,
	.collect = tione_collect,
	.normalize = af_normalize_tione_page,
	.permissions = tione_permissions,
};
