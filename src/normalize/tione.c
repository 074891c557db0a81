/*
 * TI-ONE: one DescribeModelServiceGroups page. A service group is an
 * instance; its Services[] are services, each with its resources. The
 * group itself gets no resources: they would count the services' capacity
 * twice in any view that sums resources.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/error.h"
#include "norm_internal.h"

/* One ResourceInfo quantity and how to convert it. */
typedef struct tione_kind {
	const char *field; /* Cpu, Memory, Gpu, RealGpu */
	const char *kind;  /* cpu_cores, ... */
	const char *unit;
	double factor; /* provider unit -> our unit */
	bool gpu;
} tione_kind;

static const tione_kind kinds[] = {
    {"Cpu", "cpu_cores", "cores", 1.0 / 1000.0, false},   /* 1/1000 core */
    {"Memory", "memory_gib", "GiB", 1.0 / 1024.0, false}, /* MB */
    {"Gpu", "gpu_count", "cards", 1.0 / 100.0, true},     /* 1/100 card */
    {"RealGpu", "real_gpu_count", "cards", 1.0 / 100.0, true},
};

static const char *gpu_type(nz_ctx *c, json_object *per, json_object *total)
{
	const char *t = nz_str(c, per, "GpuType");

	if (!t || !*t)
		t = nz_str(c, total, "GpuType");
	return t && *t ? t : NULL;
}

static int service_resources(nz_ctx *c, const char *owner, json_object *info, af_num replicas)
{
	json_object *per = nz_get(info, "Resources");
	json_object *total = nz_get(info, "ResourceTotal");
	const char *gpu_model;
	int err;

	if (per && !json_object_is_type(per, json_type_object)) {
		nz_warn(c, "ServiceInfo.Resources", "not an object");
		per = NULL;
	}
	if (total && !json_object_is_type(total, json_type_object)) {
		nz_warn(c, "ServiceInfo.ResourceTotal", "not an object");
		total = NULL;
	}
	gpu_model = gpu_type(c, per, total);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const tione_kind *k = &kinds[i];
		af_resource r = {0};
		af_num t;

		r.per_replica = nz_scale(nz_num(c, per, k->field), k->factor);
		t = nz_scale(nz_num(c, total, k->field), k->factor);
		if (t.set) {
			r.capacity = t;
			r.basis = "resource_total";
		} else if (r.per_replica.set) {
			/* Resources are per replica: a stopped service (0 replicas)
			 * holds nothing, whatever its size */
			r.basis = "per_replica_x_replicas";
			if (replicas.set) {
				r.capacity.value = r.per_replica.value * replicas.value;
				r.capacity.set = isfinite(r.capacity.value);
				if (!r.capacity.set)
					nz_warn(c, k->field, "per replica x replicas out of range");
			}
		} else {
			continue;
		}
		r.owner_kind = AF_OWNER_SERVICE;
		r.owner_id = owner;
		r.kind = k->kind;
		r.unit = k->unit;
		r.gpu_model = k->gpu ? gpu_model : NULL;
		if ((err = nz_emit_resource(c, &r)) < 0)
			return err;
	}
	return 0;
}

static int one_service(nz_ctx *c, const af_instance *group, json_object *seen, json_object *svc,
                       size_t index)
{
	json_object *info, *model;
	af_service s = {0};
	char *tags = NULL, *raw = NULL;
	const char *group_item = c->item;
	int err = 0;

	nz_ctx_item_index(c, "Services", index);
	if (!json_object_is_type(svc, json_type_object)) {
		nz_reject(c, "not an object");
		goto done;
	}
	if (!(s.native_id = nz_id(svc, "ServiceId"))) {
		nz_reject(c, "no ServiceId");
		goto done;
	}
	c->item = s.native_id;
	if ((err = nz_seen(seen, s.native_id)) != 0) {
		if (err > 0) {
			nz_reject(c, "ServiceId repeated in the group");
			err = 0;
		}
		goto done;
	}
	info = nz_get(svc, "ServiceInfo");
	if (info && !json_object_is_type(info, json_type_object)) {
		nz_warn(c, "ServiceInfo", "not an object");
		info = NULL;
	}
	model = nz_get(info, "ModelInfo");

	s.instance_id = group->native_id;
	/* services have no name of their own: the group's name is theirs */
	s.name = nz_str(c, svc, "ServiceGroupName");
	if (!s.name || !*s.name)
		s.name = group->name;
	s.model = nz_str(c, model, "ModelName");
	s.model_version = nz_str(c, model, "ModelVersion");
	s.status_raw = nz_str(c, svc, "Status");
	s.status = nz_status(s.status_raw);
	s.charge_type_raw = nz_str(c, svc, "ChargeType");
	s.charge_type = nz_charge(s.charge_type_raw);
	s.replicas = nz_num(c, info, "Replicas");
	s.created_at = nz_time(c, svc, "CreateTime");
	s.updated_at = nz_time(c, svc, "UpdateTime");
	if ((err = nz_tags(&tags, c, nz_get(svc, "Tags"), "Tags", "TagKey", "TagValue")) < 0)
		goto done;
	s.tags_json = tags;
	if ((err = nz_raw(&raw, svc, NULL)) < 0)
		goto done;
	s.raw_json = raw;

	if ((err = nz_emit_service(c, &s)) < 0)
		goto done;
	err = service_resources(c, s.native_id, info, s.replicas);
done:
	c->item = group_item;
	free(tags);
	free(raw);
	return err;
}

static int one_group(nz_ctx *c, json_object *seen, json_object *g, size_t index)
{
	static const char *const drop[] = {"Services", NULL};
	af_instance in = {0};
	json_object *services, *svc_seen = NULL;
	char *tags = NULL, *raw = NULL;
	int err = 0;

	nz_ctx_item_index(c, "ServiceGroups", index);
	if (!json_object_is_type(g, json_type_object)) {
		nz_reject(c, "not an object");
		return 0;
	}
	if (!(in.native_id = nz_id(g, "ServiceGroupId"))) {
		nz_reject(c, "no ServiceGroupId");
		return 0;
	}
	c->item = in.native_id;
	if ((err = nz_seen(seen, in.native_id)) != 0) {
		if (err < 0)
			return err;
		nz_reject(c, "ServiceGroupId repeated in the page");
		return 0;
	}

	in.name = nz_str(c, g, "ServiceGroupName");
	in.status_raw = nz_str(c, g, "Status");
	in.status = nz_status(in.status_raw);
	in.created_at = nz_time(c, g, "CreateTime");
	in.updated_at = nz_time(c, g, "UpdateTime");
	in.expires_at = AF_TIME_NULL;
	if ((err = nz_tags(&tags, c, nz_get(g, "Tags"), "Tags", "TagKey", "TagValue")) < 0)
		goto done;
	in.tags_json = tags;
	/* the services carry their own raw payloads */
	if ((err = nz_raw(&raw, g, drop)) < 0)
		goto done;
	in.raw_json = raw;

	if ((err = nz_emit_instance(c, &in)) < 0)
		goto done;

	services = nz_get(g, "Services");
	if (services && !json_object_is_type(services, json_type_array)) {
		/* its services are unknown, so the scope must not be complete */
		nz_reject(c, "Services is not an array");
		goto done;
	}
	if (services && !(svc_seen = json_object_new_object())) {
		err = af_error_set(AF_ERR_NOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; services && i < json_object_array_length(services); i++)
		if ((err = one_service(c, &in, svc_seen, json_object_array_get_idx(services, i),
		                       i)) < 0)
			goto done;
done:
	json_object_put(svc_seen);
	free(tags);
	free(raw);
	return err;
}

int af_normalize_tione_page(const af_scope *scope, json_object *page, const af_record_sink *sink,
                            af_norm_stats *stats)
{
	af_norm_stats dummy = {0};
	json_object *resp, *list, *error, *seen;
	nz_ctx c;
	int err = 0;

	if (!page || !json_object_is_type(page, json_type_object))
		return af_error_set(AF_ERR_DATA, "TI-ONE page is not a JSON object");
	resp = nz_get(page, "Response");
	if (!resp || !json_object_is_type(resp, json_type_object))
		return af_error_set(AF_ERR_DATA, "TI-ONE page has no Response object");
	if ((error = nz_get(resp, "Error"))) {
		json_object *code = nz_get(error, "Code");

		return af_error_set(AF_ERR_DATA, "TI-ONE page is an error: %s",
		                    code && json_object_is_type(code, json_type_string)
		                        ? json_object_get_string(code)
		                        : "(no code)");
	}
	nz_ctx_init(&c, scope, sink, stats, &dummy);

	if (!(list = nz_get(resp, "ServiceGroups")))
		return 0; /* missing or null: an empty page */
	if (!json_object_is_type(list, json_type_array))
		return af_error_set(AF_ERR_DATA, "TI-ONE page: ServiceGroups is not an array");
	if (!(seen = json_object_new_object()))
		return af_error_set(AF_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < json_object_array_length(list); i++)
		if ((err = one_group(&c, seen, json_object_array_get_idx(list, i), i)) < 0)
			break;
	json_object_put(seen);
	return err;
}
