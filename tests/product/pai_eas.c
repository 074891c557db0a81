/*
 * A fourth product that lives only in the test suite: PAI-EAS model
 * services (Alibaba Cloud ListServices, eas 2021-07-01, ROA GET
 * /api/v2/services, paged by PageNumber/PageSize). It is built from the
 * public headers alone -- descriptor, collector, normalizer -- to prove
 * that a product is one file of its own plus one registration, and that
 * nothing in src/ needs to know its name. docs/adding-a-product.md walks
 * through this file.
 *
 * The mapping (a subset of the real API, enough to exercise every part
 * of the pipeline): one instance per service (ServiceId), its status,
 * Labels as tags, and three resources per replica times replicas
 * (Cpu cores, Memory MB as GiB, Gpu cards of GpuType).
 */
#include "pai_eas.h"

#include "aifleet/collect.h"
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/paging.h"
#include "aifleet/secret.h"

#include <stdio.h>
#include <string.h>

#define EAS_ACTION "ListServices"
#define EAS_VERSION "2021-07-01"
#define EAS_PATH "/api/v2/services"
#define EAS_MAX_PAGE_SIZE 100

/* ---- normalizer ---------------------------------------------------------- */

static const char *string_member(json_object *o, const char *name)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static af_num number_member(json_object *o, const char *name)
{
	json_object *v = NULL;
	af_num n = {0, false};

	if (json_object_object_get_ex(o, name, &v) &&
	    (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))) {
		n.value = json_object_get_double(v);
		n.set = true;
	}
	return n;
}

static const char *normalized_status(const char *raw)
{
	static const char *const map[][2] = {
		{"Running", "running"}, {"Stopped", "stopped"}, {"Creating", "creating"},
		{"Failed", "failed"},   {"Deleting", "deleting"},
	};

	for (size_t i = 0; raw && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(raw, map[i][0]) == 0)
			return map[i][1];
	return raw ? "unknown" : NULL;
}

/* Labels [{LabelKey, LabelValue}] as a JSON object; NULL when none. */
static json_object *labels_as_tags(json_object *item)
{
	json_object *labels = NULL, *tags;

	if (!json_object_object_get_ex(item, "Labels", &labels) ||
	    !json_object_is_type(labels, json_type_array) || json_object_array_length(labels) == 0)
		return NULL;
	if (!(tags = json_object_new_object()))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(labels); i++) {
		json_object *l = json_object_array_get_idx(labels, i);
		const char *k = string_member(l, "LabelKey"), *v = string_member(l, "LabelValue");

		if (k && v)
			json_object_object_add(tags, k, json_object_new_string(v));
	}
	return tags;
}

static int emit_resource(const af_record_sink *sink, const af_scope *scope, const char *owner,
			 const char *kind, const char *unit, af_num per_replica, af_num replicas,
			 const char *gpu_model, af_norm_stats *stats)
{
	af_resource r = {.owner_kind = AF_OWNER_INSTANCE, .owner_id = owner, .kind = kind,
			 .unit = unit, .per_replica = per_replica, .gpu_model = gpu_model,
			 .basis = "per_replica_x_replicas"};

	if (!per_replica.set || !replicas.set)
		return 0;
	r.capacity = (af_num){per_replica.value * replicas.value, true};
	stats->resources++;
	return sink->resource ? sink->resource(sink->ctx, scope, &r) : 0;
}

/* One service: the instance, then its resources. The raw payload is the
 * item without its secrets (the AccessToken), as the secret policy says. */
static int emit_service(const af_scope *scope, json_object *item, const af_record_sink *sink,
			af_norm_stats *stats)
{
	json_object *clean = NULL, *tags = labels_as_tags(item);
	af_num replicas = number_member(item, "TotalInstance");
	af_num memory_mb = number_member(item, "Memory");
	af_instance in = {0};
	const char *created;
	int err;

	in.native_id = string_member(item, "ServiceId");
	in.name = string_member(item, "ServiceName");
	in.status_raw = string_member(item, "Status");
	in.status = normalized_status(in.status_raw);
	in.created_at = in.updated_at = in.expires_at = AF_TIME_NULL;
	if ((created = string_member(item, "CreateTime")) &&
	    af_time_parse(&in.created_at, created) < 0) {
		stats->rejected++;
		err = 0;
		goto done;
	}
	if ((err = af_secret_copy(&clean, item)) < 0)
		goto done;
	in.raw_json = json_object_to_json_string_ext(clean, JSON_C_TO_STRING_PLAIN);
	in.tags_json = tags ? json_object_to_json_string_ext(tags, JSON_C_TO_STRING_PLAIN) : NULL;
	stats->instances++;
	if (sink->instance && (err = sink->instance(sink->ctx, scope, &in)) < 0)
		goto done;
	if (memory_mb.set)
		memory_mb.value /= 1024;
	if ((err = emit_resource(sink, scope, in.native_id, "cpu_cores", "cores",
				 number_member(item, "Cpu"), replicas, NULL, stats)) < 0 ||
	    (err = emit_resource(sink, scope, in.native_id, "memory_gib", "GiB", memory_mb,
				 replicas, NULL, stats)) < 0)
		goto done;
	err = emit_resource(sink, scope, in.native_id, "gpu_count", "cards",
			    number_member(item, "Gpu"), replicas, string_member(item, "GpuType"),
			    stats);
done:
	json_object_put(clean);
	json_object_put(tags);
	return err;
}

int pai_eas_normalize_page(const af_scope *scope, json_object *page, const af_record_sink *sink,
			   af_norm_stats *stats)
{
	af_norm_stats ignored = {0};
	json_object *services = NULL;
	int err;

	if (!stats)
		stats = &ignored;
	if (!json_object_is_type(page, json_type_object))
		return af_error_set(AF_ERR_DATA, "PAI-EAS page is not a JSON object");
	if (!json_object_object_get_ex(page, "Services", &services) || !services)
		return 0;
	if (!json_object_is_type(services, json_type_array))
		return af_error_set(AF_ERR_DATA, "PAI-EAS page: Services is not an array");
	for (size_t i = 0; i < json_object_array_length(services); i++) {
		json_object *item = json_object_array_get_idx(services, i);

		if (!json_object_is_type(item, json_type_object) || !string_member(item, "ServiceId")) {
			stats->rejected++; /* nothing of it is emitted; the scope is partial */
			continue;
		}
		if ((err = emit_service(scope, item, sink, stats)) < 0)
			return err;
	}
	return 0;
}

/* ---- collector ----------------------------------------------------------- */

static int eas_page(af_job *job, af_paging *paging, int index, int page_size, int *step)
{
	int page = index + 1;
	char page_no[16], size[16], key[32];
	af_kv query[2];
	af_api_request req;
	json_object *body = NULL, *list = NULL, *total = NULL;
	int err;

	snprintf(page_no, sizeof(page_no), "%d", page);
	snprintf(size, sizeof(size), "%d", page_size);
	snprintf(key, sizeof(key), "page-%d", page);
	query[0] = (af_kv){"PageNumber", page_no};
	query[1] = (af_kv){"PageSize", size};
	af_job_request_init(job, &req, AF_API_ACS3_ROA, EAS_ACTION, EAS_VERSION);
	req.path = EAS_PATH;
	req.query = query;
	req.nquery = 2;

	if ((err = af_job_fetch(job, af_job_session(job), &req, key, &body)) < 0)
		return af_error_prefix(err, "page %d: ", page);
	json_object_object_get_ex(body, "Services", &list);
	json_object_object_get_ex(body, "TotalCount", &total);
	err = af_paging_emit(job, paging, body, list, "ServiceId", total, page_size, step);
	if (err < 0)
		af_error_prefix(err, "page %d (request %s): ", page, af_page_request_id(body));
	json_object_put(body);
	return err;
}

static int eas_collect(af_job *job)
{
	return af_paging_collect(job, eas_page);
}

static int eas_endpoint(char *out, size_t n, const char *region, bool intl)
{
	return af_endpoint_expand(out, n, "https://pai-eas.{region}.aliyuncs.com", region);
}

static const char *const eas_secrets[] = {"AccessToken", NULL};
static const char *const eas_permissions[] = {"eas:" EAS_ACTION, NULL};

const af_product pai_eas_product = {
	.name = PAI_EAS_PRODUCT,
	.provider = AF_PROVIDER_ALIBABA,
	.title = "PAI-EAS services (test product)",
	.default_endpoint = eas_endpoint,
	.default_page_size = 50,
	.max_page_size = EAS_MAX_PAGE_SIZE,
	.default_rate = 5.0,
	.collect = eas_collect,
	.normalize = pai_eas_normalize_page,
	.permissions = eas_permissions,
	.secret_fields = eas_secrets,
};
