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

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* Reads the resources of a service into res[0..*n); unreadable ones mark
 * the service (nz_bad). */
static void service_resources(nz_ctx *c, const char *owner, json_object *info, af_num replicas,
                              af_resource res[NKINDS], size_t *n)
{
	json_object *per = nz_obj(c, info, "Resources");
	json_object *total = nz_obj(c, info, "ResourceTotal");
	const char *gpu_model = gpu_type(c, per, total);

	*n = 0;
	for (size_t i = 0; i < NKINDS; i++) {
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
					nz_bad(c, k->field, "per replica x replicas out of range");
			}
		} else {
			continue;
		}
		r.owner_kind = AF_OWNER_SERVICE;
		r.owner_id = owner;
		r.kind = k->kind;
		r.unit = k->unit;
		r.gpu_model = k->gpu ? gpu_model : NULL;
		res[(*n)++] = r;
	}
}

static int one_service(nz_ctx *c, const af_instance *group, json_object *seen, json_object *svc,
                       size_t index)
{
	json_object *info, *model;
	af_service s = {0};
	af_resource res[NKINDS];
	size_t nres = 0;
	char *tags = NULL;
	const char *group_item = c->item, *why;
	int err = 0;

	nz_ctx_item_index(c, "Services", index);
	if (!json_object_is_type(svc, json_type_object)) {
		nz_reject(c, NULL, "not an object");
		goto done;
	}
	if (!(s.native_id = nz_id(svc, "ServiceId", &why))) {
		nz_reject(c, "ServiceId", why ? why : "missing");
		goto done;
	}
	c->item = s.native_id;
	if ((err = nz_seen(seen, s.native_id)) != 0) {
		if (err > 0) {
			nz_reject(c, "ServiceId", "repeated in the group");
			err = 0;
		}
		goto done;
	}
	info = nz_obj(c, svc, "ServiceInfo");
	model = nz_obj(c, info, "ModelInfo");

	s.instance_id = group->native_id;
	/* services have no name of their own: the group's name is theirs */
	s.name = nz_str(c, svc, "ServiceGroupName");
	if (!s.name || !*s.name)
		s.name = group->name;
	s.model = nz_str(c, model, "ModelName");
	s.model_version = nz_str(c, model, "ModelVersion");
	s.status_raw = nz_code(c, svc, "Status");
	s.status = nz_status(s.status_raw);
	s.charge_type_raw = nz_code(c, svc, "ChargeType");
	s.charge_type = nz_charge(s.charge_type_raw);
	s.replicas = nz_num(c, info, "Replicas");
	s.created_at = nz_time(c, svc, "CreateTime");
	s.updated_at = nz_time(c, svc, "UpdateTime");
	service_resources(c, s.native_id, info, s.replicas, res, &nres);
	if ((err = nz_tags(c, &tags, nz_get(svc, "Tags"), "Tags", "TagKey", "TagValue")) < 0)
		goto done;
	s.tags_json = tags;
	err = nz_emit_service_item(c, &s, svc, res, nres);
done:
	c->item = group_item;
	free(tags);
	return err < 0 ? err : 0;
}

static int one_group(nz_ctx *c, json_object *seen, json_object *g, size_t index)
{
	static const char *const drop[] = {"Services", NULL};
	af_instance in = {0};
	json_object *services, *svc_seen = NULL;
	char *tags = NULL, *raw = NULL;
	const char *why;
	int err = 0;

	nz_ctx_item_index(c, "ServiceGroups", index);
	if (!json_object_is_type(g, json_type_object)) {
		nz_reject(c, NULL, "not an object");
		return 0;
	}
	if (!(in.native_id = nz_id(g, "ServiceGroupId", &why))) {
		nz_reject(c, "ServiceGroupId", why ? why : "missing");
		return 0;
	}
	c->item = in.native_id;
	if ((err = nz_seen(seen, in.native_id)) != 0) {
		if (err < 0)
			return err;
		nz_reject(c, "ServiceGroupId", "repeated in the page");
		return 0;
	}

	/* a group that cannot be read is rejected with its services */
	in.name = nz_str(c, g, "ServiceGroupName");
	in.status_raw = nz_code(c, g, "Status");
	in.status = nz_status(in.status_raw);
	in.created_at = nz_time(c, g, "CreateTime");
	in.updated_at = nz_time(c, g, "UpdateTime");
	in.expires_at = AF_TIME_NULL;
	if ((err = nz_tags(c, &tags, nz_get(g, "Tags"), "Tags", "TagKey", "TagValue")) < 0)
		goto done;
	in.tags_json = tags;
	/* the services carry their own raw payloads */
	if ((err = nz_raw(c, &raw, g, drop)) < 0)
		goto done;
	in.raw_json = raw;
	if ((err = nz_item_check(c)) <= 0)
		goto done;

	if ((err = nz_emit_instance(c, &in)) < 0)
		goto done;

	services = nz_get(g, "Services");
	if (services && !json_object_is_type(services, json_type_array)) {
		/* its services are unknown, so the scope must not be complete */
		nz_reject(c, "Services", "not an array");
		goto done;
	}
	if (services && !(svc_seen = json_object_new_object())) {
		err = af_error_oom();
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
	return err < 0 ? err : 0;
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
	if (!(list = nz_get(resp, "ServiceGroups")))
		return 0; /* missing or null: an empty page */
	if (!json_object_is_type(list, json_type_array))
		return af_error_set(AF_ERR_DATA, "TI-ONE page: ServiceGroups is not an array");
	if (!(seen = json_object_new_object()))
		return af_error_oom();
	nz_ctx_init(&c, scope, sink, stats, &dummy);
	for (size_t i = 0; i < json_object_array_length(list); i++)
		if ((err = one_group(&c, seen, json_object_array_get_idx(list, i), i)) < 0)
			break;
	nz_ctx_free(&c);
	json_object_put(seen);
	return err;
}
