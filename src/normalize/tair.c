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

static int emit_resource(nz_ctx *c, const char *owner, const char *kind, af_num capacity,
                         const char *unit)
{
	af_resource r = {0};

	if (!capacity.set)
		return 0;
	r.owner_kind = AF_OWNER_INSTANCE;
	r.owner_id = owner;
	r.kind = kind;
	r.capacity = capacity;
	r.unit = unit;
	r.basis = "reported";
	return nz_emit_resource(c, &r);
}

/* The model of the instance as a service, so that "which model runs where"
 * is one query over services for all products. */
static int emit_model_service(nz_ctx *c, json_object *item, const af_instance *inst)
{
	static const char *const keep[] = {"Model", "ModelServiceNum", NULL};
	af_service s = {0};
	json_object *sub = NULL;
	char *id = NULL, *raw = NULL;
	size_t len;
	int err = 0;

	if (!inst->model || !*inst->model)
		return 0;
	len = strlen(inst->native_id) + sizeof("/model");
	if (!(id = malloc(len)))
		return af_error_set(AF_ERR_NOMEM, "out of memory");
	snprintf(id, len, "%s/model", inst->native_id);

	/* its raw payload is the part of the item that describes the model */
	if (!(sub = json_object_new_object())) {
		err = af_error_set(AF_ERR_NOMEM, "out of memory");
		goto done;
	}
	for (const char *const *k = keep; *k; k++) {
		json_object *v;

		if (json_object_object_get_ex(item, *k, &v) &&
		    json_object_object_add(sub, *k, json_object_get(v)) < 0) {
			json_object_put(v);
			err = af_error_set(AF_ERR_NOMEM, "out of memory");
			goto done;
		}
	}
	if ((err = nz_raw(&raw, sub, NULL)) < 0)
		goto done;

	s.instance_id = inst->native_id;
	s.native_id = id;
	s.name = inst->model;
	s.model = inst->model;
	s.status = inst->status;
	s.status_raw = inst->status_raw;
	s.charge_type = inst->charge_type;
	s.charge_type_raw = inst->charge_type_raw;
	s.replicas = nz_num(c, item, "ModelServiceNum");
	s.created_at = inst->created_at;
	s.updated_at = AF_TIME_NULL;
	s.tags_json = inst->tags_json;
	s.raw_json = raw;
	err = nz_emit_service(c, &s);
done:
	json_object_put(sub);
	free(id);
	free(raw);
	return err;
}

static int one_item(nz_ctx *c, json_object *seen, json_object *item, size_t index)
{
	af_instance in = {0};
	char *tags = NULL, *raw = NULL;
	int err = 0;

	nz_ctx_item_index(c, "TairInferInstanceDTO", index);
	if (!json_object_is_type(item, json_type_object)) {
		nz_reject(c, "not an object");
		return 0;
	}
	if (!(in.native_id = nz_id(item, "InstanceId"))) {
		nz_reject(c, "no InstanceId");
		return 0;
	}
	c->item = in.native_id;
	if ((err = nz_seen(seen, in.native_id)) != 0) {
		if (err < 0)
			return err;
		nz_reject(c, "InstanceId repeated in the page");
		return 0;
	}

	in.name = nz_str(c, item, "InstanceName");
	in.status_raw = nz_str(c, item, "InstanceStatus");
	in.status = nz_status(in.status_raw);
	in.charge_type_raw = nz_str(c, item, "ChargeType");
	in.charge_type = nz_charge(in.charge_type_raw);
	in.zone = nz_str(c, item, "ZoneId");
	in.spec = nz_str(c, item, "InstanceClass");
	in.model = nz_str(c, item, "Model");
	in.created_at = nz_time(c, item, "CreateTime");
	in.updated_at = AF_TIME_NULL;
	in.expires_at = nz_time(c, item, "EndTime");
	/* DestroyTime has no column (raw only), but a bad one is still worth a
	 * warning: it says the page is not what we think */
	(void)nz_time(c, item, "DestroyTime");

	if ((err = nz_tags(&tags, c, nz_get(nz_get(item, "Tags"), "Tag"), "Tags.Tag", "Key",
	                   "Value")) < 0)
		goto done;
	in.tags_json = tags;
	if ((err = nz_raw(&raw, item, NULL)) < 0)
		goto done;
	in.raw_json = raw;

	if ((err = nz_emit_instance(c, &in)) < 0)
		goto done;
	if ((err = emit_resource(c, in.native_id, "kv_capacity", nz_num(c, item, "Capacity"),
	                         "capacity_units")) < 0)
		goto done;
	if ((err = emit_resource(c, in.native_id, "compute_units",
	                         nz_num(c, item, "ComputeUnitNum"), "compute_units")) < 0)
		goto done;
	if ((err = emit_resource(c, in.native_id, "vnodes", nz_num(c, item, "VNodeCount"),
	                         "vnodes")) < 0)
		goto done;
	err = emit_model_service(c, item, &in);
done:
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
	nz_ctx_init(&c, scope, sink, stats, &dummy);

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
		return af_error_set(AF_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < json_object_array_length(list); i++)
		if ((err = one_item(&c, seen, json_object_array_get_idx(list, i), i)) < 0)
			break;
	json_object_put(seen);
	return err;
}
