/*
 * Tair KVCache: one DescribeTairKVCacheInferInstances page. Each
 * Instances.TairInferInstanceDTO[] item becomes an instance, its three
 * resources (kv_capacity, compute_units, vnodes) and one service standing
 * for the model it serves. docs/mapping.md has the field table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/error.h"
#include "norm_internal.h"

typedef struct tair_kind {
	const char *field;
	const char *kind;
	const char *unit;
} tair_kind;

static const tair_kind kinds[] = {
    {"Capacity", "kv_capacity", "capacity_units"},
    {"ComputeUnitNum", "compute_units", "compute_units"},
    {"VNodeCount", "vnodes", "vnodes"},
};

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* The model of the instance as a service, so that "which model runs where"
 * is one query over services for all products. Its raw payload is the part
 * of the item that describes the model. */
static int model_service(nz_ctx *c, json_object *item, const af_instance *inst, af_service *s,
                         char **id, char **raw)
{
	static const char *const keep[] = {"Model", "ModelServiceNum", NULL};
	json_object *sub = NULL;
	size_t len;
	int err = 0;

	*id = *raw = NULL;
	s->replicas = nz_num(c, item, "ModelServiceNum");
	if (!inst->model || !*inst->model)
		return 0;
	len = strlen(inst->native_id) + sizeof("/model");
	if (!(*id = malloc(len)))
		return af_error_oom();
	snprintf(*id, len, "%s/model", inst->native_id);
	if (!(sub = json_object_new_object()))
		return af_error_oom();
	for (const char *const *k = keep; *k; k++) {
		json_object *v;

		if (json_object_object_get_ex(item, *k, &v) &&
		    json_object_object_add(sub, *k, json_object_get(v)) < 0) {
			json_object_put(v);
			err = af_error_oom();
			goto done;
		}
	}
	if ((err = nz_raw(c, raw, sub, NULL)) < 0)
		goto done;

	s->instance_id = inst->native_id;
	s->native_id = *id;
	s->name = inst->model;
	s->model = inst->model;
	s->status = inst->status;
	s->status_raw = inst->status_raw;
	s->charge_type = inst->charge_type;
	s->charge_type_raw = inst->charge_type_raw;
	s->created_at = inst->created_at;
	s->updated_at = AF_TIME_NULL;
	s->tags_json = inst->tags_json;
	s->raw_json = *raw;
done:
	json_object_put(sub);
	return err;
}

static int one_item(nz_ctx *c, json_object *seen, json_object *item, size_t index)
{
	af_instance in = {0};
	af_service svc = {0};
	af_num amount[NKINDS];
	char *tags = NULL, *raw = NULL, *svc_id = NULL, *svc_raw = NULL;
	const char *why;
	int err = 0;

	nz_ctx_item_index(c, "TairInferInstanceDTO", index);
	if (!json_object_is_type(item, json_type_object)) {
		nz_reject(c, NULL, "not an object");
		return 0;
	}
	if (!(in.native_id = nz_id(item, "InstanceId", &why))) {
		nz_reject(c, "InstanceId", why ? why : "missing");
		return 0;
	}
	c->item = in.native_id;
	if ((err = nz_seen(seen, in.native_id)) != 0) {
		if (err < 0)
			return err;
		nz_reject(c, "InstanceId", "repeated in the page");
		return 0;
	}

	/* every field is read before anything is emitted: an unreadable one
	 * rejects the whole item, so that nothing stored is blanked */
	in.name = nz_str(c, item, "InstanceName");
	in.status_raw = nz_code(c, item, "InstanceStatus");
	in.status = nz_status(in.status_raw);
	in.charge_type_raw = nz_code(c, item, "ChargeType");
	in.charge_type = nz_charge(in.charge_type_raw);
	in.zone = nz_str(c, item, "ZoneId");
	in.spec = nz_str(c, item, "InstanceClass");
	in.model = nz_str(c, item, "Model");
	in.created_at = nz_time(c, item, "CreateTime");
	in.updated_at = AF_TIME_NULL;
	in.expires_at = nz_time(c, item, "EndTime");
	/* DestroyTime has no column (raw only): a bad one is only a warning */
	nz_time_check(c, item, "DestroyTime");
	for (size_t i = 0; i < NKINDS; i++)
		amount[i] = nz_num(c, item, kinds[i].field);
	if ((err = nz_tags(c, &tags, nz_get(nz_obj(c, item, "Tags"), "Tag"), "Tags.Tag", "Key",
	                   "Value")) < 0)
		goto done;
	in.tags_json = tags;
	if ((err = nz_raw(c, &raw, item, NULL)) < 0)
		goto done;
	in.raw_json = raw;
	if ((err = model_service(c, item, &in, &svc, &svc_id, &svc_raw)) < 0)
		goto done;
	if ((err = nz_item_check(c)) <= 0)
		goto done;

	if ((err = nz_emit_instance(c, &in)) < 0)
		goto done;
	for (size_t i = 0; i < NKINDS; i++) {
		af_resource r = {0};

		if (!amount[i].set)
			continue;
		r.owner_kind = AF_OWNER_INSTANCE;
		r.owner_id = in.native_id;
		r.kind = kinds[i].kind;
		r.capacity = amount[i];
		r.unit = kinds[i].unit;
		r.basis = "reported";
		if ((err = nz_emit_resource(c, &r)) < 0)
			goto done;
	}
	err = svc.native_id ? nz_emit_service(c, &svc) : 0;
done:
	free(svc_id);
	free(svc_raw);
	free(tags);
	free(raw);
	return err;
}

int af_normalize_tair_page(const af_scope *scope, json_object *page, const af_record_sink *sink,
                           af_norm_stats *stats)
{
	af_norm_stats dummy = {0};
	json_object *list, *seen;
	nz_ctx c;
	int err = 0;

	if (!page || !json_object_is_type(page, json_type_object))
		return af_error_set(AF_ERR_DATA, "Tair page is not a JSON object");

	/* Instances missing or null is an empty page; a list of the wrong
	 * type is not: reading it as empty would tombstone the scope. */
	list = nz_get(page, "Instances");
	if (list && !json_object_is_type(list, json_type_object))
		return af_error_set(AF_ERR_DATA, "Tair page: Instances is not an object");
	if (!(list = nz_get(list, "TairInferInstanceDTO")))
		return 0;
	if (!json_object_is_type(list, json_type_array))
		return af_error_set(AF_ERR_DATA,
		                    "Tair page: Instances.TairInferInstanceDTO is not an array");
	if (!(seen = json_object_new_object()))
		return af_error_oom();
	nz_ctx_init(&c, scope, sink, stats, &dummy);
	for (size_t i = 0; i < json_object_array_length(list); i++)
		if ((err = one_item(&c, seen, json_object_array_get_idx(list, i), i)) < 0)
			break;
	nz_ctx_free(&c);
	json_object_put(seen);
	return err;
}
