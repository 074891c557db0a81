/*
 * Hologres AI nodes: one ListInstanceModel item plus the GetInstanceModel
 * answer for its Hologres instance. The node is an instance with its
 * cpu/memory/gpu/gpu memory (capacity and used); modelServiceList[] are its
 * services, each with what it occupies. The apiKey of a model service is
 * never copied anywhere (nz_raw goes through aifleet/secret.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/error.h"
#include "norm_internal.h"

typedef struct holo_kind {
	const char *field; /* cpu, memory, gpu, gpuMemory (+ "Used") */
	const char *used;
	const char *kind;
	const char *unit;
} holo_kind;

/* The page gives memory in GiB and gpuMemory in GB; both are stored as GiB
 * (docs/mapping.md: the GB figures are taken as GiB, no conversion). */
static const holo_kind kinds[] = {
    {"cpu", "cpuUsed", "cpu_cores", "cores"},
    {"memory", "memoryUsed", "memory_gib", "GiB"},
    {"gpu", "gpuUsed", "gpu_count", "cards"},
    {"gpuMemory", "gpuMemoryUsed", "gpu_memory_gib", "GiB"},
};

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* The detail (Get) answer is newer and fuller: it wins when both have the
 * field (not null); returns the object to read `key` from. */
static json_object *pick(json_object *detail, json_object *item, const char *key)
{
	return nz_get(detail, key) ? detail : item;
}

static const char *pick_str(nz_ctx *c, json_object *detail, json_object *item, const char *key)
{
	return nz_str(c, pick(detail, item, key), key);
}

static const char *pick_code(nz_ctx *c, json_object *detail, json_object *item, const char *key)
{
	return nz_code(c, pick(detail, item, key), key);
}

static af_num pick_num(nz_ctx *c, json_object *detail, json_object *item, const char *key)
{
	return nz_num(c, pick(detail, item, key), key);
}

/* Reads the node's resources into res[0..*n). */
static void node_resources(nz_ctx *c, const char *owner, json_object *detail, json_object *item,
                           af_resource res[NKINDS], size_t *n)
{
	*n = 0;
	for (size_t i = 0; i < NKINDS; i++) {
		af_resource r = {0};

		r.capacity = pick_num(c, detail, item, kinds[i].field);
		r.used = pick_num(c, detail, item, kinds[i].used);
		if (!r.capacity.set && !r.used.set)
			continue;
		r.owner_kind = AF_OWNER_INSTANCE;
		r.owner_id = owner;
		r.kind = kinds[i].kind;
		r.unit = kinds[i].unit;
		r.basis = "reported";
		res[(*n)++] = r;
	}
}

static int one_service(nz_ctx *c, const af_instance *node, json_object *seen, json_object *svc,
                       size_t index)
{
	const char *node_item = c->item, *name, *why;
	af_service s = {0};
	af_resource res[NKINDS];
	size_t nres = 0;
	char *id = NULL;
	size_t len;
	int err = 0;

	nz_ctx_item_index(c, "modelServiceList", index);
	if (!json_object_is_type(svc, json_type_object)) {
		nz_reject(c, NULL, "not an object");
		goto done;
	}
	if (!(name = nz_id(svc, "modelName", &why))) {
		nz_reject(c, "modelName", why ? why : "missing");
		goto done;
	}
	if ((err = nz_seen(seen, name)) != 0) {
		if (err > 0) {
			nz_reject(c, "modelName", "repeated on the node");
			err = 0;
		}
		goto done;
	}
	len = strlen(node->native_id) + 1 + strlen(name) + 1;
	if (!(id = malloc(len))) {
		err = af_error_oom();
		goto done;
	}
	snprintf(id, len, "%s/%s", node->native_id, name);
	c->item = id;

	s.instance_id = node->native_id;
	s.native_id = id;
	s.name = name;
	s.model = nz_str(c, svc, "modelType");
	s.model_version = nz_str(c, svc, "version");
	s.status_raw = nz_code(c, svc, "status");
	s.status = nz_status(s.status_raw);
	s.replicas = nz_num(c, svc, "serviceCount");
	s.created_at = AF_TIME_NULL;
	s.updated_at = AF_TIME_NULL;
	/* what the service occupies on its node, all replicas together */
	for (size_t i = 0; i < NKINDS; i++) {
		af_resource r = {0};

		r.capacity = nz_num(c, svc, kinds[i].field);
		if (!r.capacity.set)
			continue;
		r.owner_kind = AF_OWNER_SERVICE;
		r.owner_id = id;
		r.kind = kinds[i].kind;
		r.unit = kinds[i].unit;
		r.basis = "reported";
		res[nres++] = r;
	}
	err = nz_emit_service_item(c, &s, svc, res, nres);
done:
	c->item = node_item;
	free(id);
	return err < 0 ? err : 0;
}

int af_normalize_hologres_node(const af_scope *scope, json_object *list_item, json_object *detail,
                               const af_record_sink *sink, af_norm_stats *stats)
{
	/* per-call noise and the services' own records stay out of the node's raw */
	static const char *const drop[] = {"requestId", "modelServiceList", NULL};
	af_norm_stats dummy = {0};
	af_instance in = {0};
	af_resource res[NKINDS];
	size_t nres = 0;
	json_object *services, *seen = NULL;
	const char *why;
	char *raw = NULL;
	nz_ctx c;
	int err = 0;

	if (!list_item || !json_object_is_type(list_item, json_type_object))
		return af_error_set(AF_ERR_DATA, "Hologres list item is not a JSON object");
	nz_ctx_init(&c, scope, sink, stats, &dummy);
	c.item = "instanceModelList item";
	if (detail && !json_object_is_type(detail, json_type_object)) {
		/* the node is known from the list, its services are not: partial */
		nz_reject(&c, NULL, "GetInstanceModel answer is not an object");
		detail = NULL;
	}
	/* the list's id, else the detail's; one that is there but unusable
	 * rejects the node */
	if (!(in.native_id = nz_id(list_item, "aiInstanceId", &why)) && !why)
		in.native_id = nz_id(detail, "aiInstanceId", &why);
	if (!in.native_id) {
		nz_reject(&c, "aiInstanceId", why ? why : "missing");
		goto done;
	}
	c.item = in.native_id;

	/* the node and its resources are one item: read all, then emit */
	in.name = pick_str(&c, detail, list_item, "holoInstanceName");
	in.status_raw = pick_code(&c, detail, list_item, "status");
	in.status = nz_status(in.status_raw);
	in.charge_type_raw = pick_code(&c, detail, list_item, "chargeType");
	in.charge_type = nz_charge(in.charge_type_raw);
	in.spec = pick_str(&c, detail, list_item, "aiSpec");
	in.created_at = AF_TIME_NULL;
	in.updated_at = AF_TIME_NULL;
	in.expires_at = nz_time(&c, pick(detail, list_item, "expirationTime"), "expirationTime");
	node_resources(&c, in.native_id, detail, list_item, res, &nres);
	if ((err = nz_raw_merge(&c, &raw, detail, list_item, drop)) < 0)
		goto done;
	in.raw_json = raw;
	if ((err = nz_item_check(&c)) <= 0)
		goto done;

	if ((err = nz_emit_instance(&c, &in)) < 0)
		goto done;
	if ((err = nz_emit_resources(&c, res, nres)) < 0)
		goto done;

	services = nz_get(detail, "modelServiceList");
	if (services && !json_object_is_type(services, json_type_array)) {
		nz_reject(&c, "modelServiceList", "not an array");
		goto done;
	}
	if (services && !(seen = json_object_new_object())) {
		err = af_error_oom();
		goto done;
	}
	for (size_t i = 0; services && i < json_object_array_length(services); i++)
		if ((err = one_service(&c, &in, seen, json_object_array_get_idx(services, i), i)) <
		    0)
			goto done;
done:
	nz_ctx_free(&c);
	json_object_put(seen);
	free(raw);
	return err < 0 ? err : 0;
}

int af_normalize_hologres_page(const af_scope *scope, json_object *page,
			       const af_record_sink *sink, af_norm_stats *stats)
{
	json_object *item = NULL, *detail = NULL;

	if (!json_object_is_type(page, json_type_object) ||
	    !json_object_object_get_ex(page, "item", &item))
		return af_error_set(AF_ERR_DATA, "Hologres node page without an item");
	json_object_object_get_ex(page, "detail", &detail);
	return af_normalize_hologres_node(scope, item, detail, sink, stats);
}
