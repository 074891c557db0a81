#include "storetest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aifleet/error.h"

static const char *const all_scopes[] = {"all"};
const af_delete_guard st_allow_all_deletes = {AF_DELETE_GUARD_FRACTION, AF_DELETE_GUARD_MIN,
                                              all_scopes, 1};

af_store *st_open(af_testdb *db)
{
	af_store *s = NULL;
	int applied = -1;

	af_testdb_create(db);
	if (af_store_connect(&s, db->conninfo) < 0)
		fail_msg("connect: %s", af_error_last());
	if (af_store_migrate(s, &applied) < 0)
		fail_msg("migrate: %s", af_error_last());
	assert_true(applied > 0);
	return s;
}

int st_inst(af_loader *l, const af_scope *sc, const char *id, const char *name)
{
	af_record_sink sink = af_loader_sink(l);
	af_instance in;

	memset(&in, 0, sizeof(in));
	in.native_id = id;
	in.name = name;
	in.status = "running";
	in.status_raw = "Running";
	in.charge_type = "postpaid";
	in.charge_type_raw = "PostPaid";
	in.zone = "cn-beijing-h";
	in.spec = "kvcache.x8";
	in.model = "qwen-72b";
	in.created_at = 1700000000000000LL;
	in.updated_at = AF_TIME_NULL;
	in.expires_at = AF_TIME_NULL;
	in.tags_json = "{\"team\": \"ml\"}";
	in.raw_json = "{\"InstanceId\": \"x\", \"Nested\": {\"a\": [1, 2]}}";
	return sink.instance(sink.ctx, sc, &in);
}

int st_svc_named(af_loader *l, const af_scope *sc, const char *inst, const char *id,
		 const char *name, const char *model, double replicas)
{
	af_record_sink sink = af_loader_sink(l);
	af_service sv;

	memset(&sv, 0, sizeof(sv));
	sv.instance_id = inst;
	sv.native_id = id;
	sv.name = name;
	sv.model = model;
	sv.status = "running";
	sv.replicas = (af_num){replicas, true};
	sv.created_at = AF_TIME_NULL;
	sv.updated_at = AF_TIME_NULL;
	sv.raw_json = "{}";
	return sink.service(sink.ctx, sc, &sv);
}

int st_svc(af_loader *l, const af_scope *sc, const char *inst, const char *id, const char *model,
	   double replicas)
{
	return st_svc_named(l, sc, inst, id, id, model, replicas);
}

int st_res(af_loader *l, const af_scope *sc, af_owner_kind ok, const char *owner,
	   const char *kind, double capacity, const char *unit, const char *gpu)
{
	af_record_sink sink = af_loader_sink(l);
	af_resource r;

	memset(&r, 0, sizeof(r));
	r.owner_kind = ok;
	r.owner_id = owner;
	r.kind = kind;
	r.capacity = (af_num){capacity, true};
	r.unit = unit;
	r.gpu_model = gpu;
	r.basis = "reported";
	return sink.resource(sink.ctx, sc, &r);
}

void st_done(af_loader *l, const af_scope *sc, af_scope_state state)
{
	af_scope_report rep;

	memset(&rep, 0, sizeof(rep));
	rep.scope = *sc;
	rep.state = state;
	rep.pages = 1;
	rep.requests = 1;
	rep.error = state == AF_SCOPE_COMPLETE ? NULL : "simulated collection error";
	if (af_loader_scope_done(l, &rep) < 0)
		fail_msg("scope_done: %s", af_error_last());
}
