/*
 * Tencent TI-ONE DescribeModelServiceGroups (2021-11-11, API 3.0): the
 * generated service group with its services, its JSON in the full shape of
 * the API page's example, the handler with its paging and filters, and the
 * product's descriptor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

extern const af_product af_product_tione; /* src/collect/tione.c */

#define TIONE_DEFAULT_LIMIT 20

#define OS(obj, k, v) sim_set_str(obj, k, v)
#define OI(obj, k, v) sim_set_int(obj, k, v)

/* One generated service group: compact, rendered on demand. */
typedef struct tione_svc {
	char id[48], status[16], charge[24], itype[40], gpu_type[8], model[40], model_version[48];
	char model_id[32], cluster[24];
	/* where the model and the inference code are (COS) and the volume
	 * mounted (CFS) */
	char bucket[40], cos_dir[128], cfs_id[16], cfs_path[16];
	int replicas, ready, cpu, mem, gpu, weight;
	bool model_null, total_present;
} tione_svc;
typedef struct tione_group {
	char id[32], name[48], status[16], created_by[16], uin[16], create[24], update[24];
	int nsvc, tags_mode; /* 0 null, 1 [], 2 one tag */
	tione_svc svc[3];
} tione_group;

static const struct itype {
	const char *name, *gpu;
	int cpu, mem, gpu100;
} itypes[] = {
    {"TI.GNV4.3XLARGE44.POST", "A10", 12000, 45056, 100},
    {"TI.GNV4.6XLARGE88.POST", "A10", 24000, 90112, 200},
    {"TI.GN7.2XLARGE32.POST", "T4", 8000, 32768, 100},
    {"TI.GT4.20XLARGE234.POST", "A100", 80000, 239616, 800},
    {"TI.HCCPNV5.32XLARGE512.POST", "H800", 128000, 524288, 800},
    {"TI.GNL20.8XLARGE128.POST", "L20", 32000, 131072, 200},
};
#define NITYPES (sizeof(itypes) / sizeof(itypes[0]))

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* A service's storage, from its own state: the COS bucket of its model
 * (a training job's checkpoint, as on the API page) and the CFS file
 * system it mounts. No key or token: names and paths only. */
static void storage_gen(tione_svc *v, uint64_t cs)
{
	static const char *buckets[] = {"ti-models", "llm-weights", "infer-assets"};
	static const char *mounts[] = {"/", "/models", "/data/llm"};
	char model[sizeof(v->model)], b36[14];
	const char *base = SIM_PICK(&cs, buckets);
	unsigned appid = 1250000000u + (unsigned)(sim_rng(&cs) % 10000000u);
	unsigned long long train = 700000000000000000ULL + sim_rng(&cs) % 200000000000000000ULL;
	unsigned step = 100 * (1 + (unsigned)(sim_rng(&cs) % 20));

	snprintf(v->bucket, sizeof(v->bucket), "%s-%u", base, appid);
	snprintf(model, sizeof(model), "%s", v->model);
	lower(model);
	snprintf(v->cos_dir, sizeof(v->cos_dir), "output/%s/train-%llu/checkpoint-%u/", model,
	         train, step);
	sim_base36(b36, sim_rng(&cs));
	snprintf(v->cfs_id, sizeof(v->cfs_id), "cfs-%s", b36 + 5);
	snprintf(v->cfs_path, sizeof(v->cfs_path), "%s", SIM_PICK(&cs, mounts));
}

static void tione_gen(tione_group *g, const af_sim *s, const sim_scope *sc, const sim_slot *sl)
{
	static const char *gstat[] = {"Normal",  "Normal",   "Normal",  "Normal",
	                              "Stopped", "Abnormal", "Waiting", "Pending"};
	static const char *charges[] = {"POSTPAID_BY_HOUR", "POSTPAID_BY_HOUR", "PREPAID",
	                                "HYBRID_PAID"};
	uint64_t st = sim_item_state(s, sc, sl), mt = sim_hash(st, sl->version + 1);
	int64_t created = SIM_T0 + (int64_t)(sim_rng(&st) % (600 * 86400));
	unsigned uin = 100000000u + (unsigned)(sim_rng(&st) % 900000000u);
	int running = 0;

	memset(g, 0, sizeof(*g));
	sim_fleet_id(g->id, sizeof(g->id), s, sc, sl->serial);
	if (sim_rng(&st) % 6 == 0)
		snprintf(g->name, sizeof(g->name), "推理服务-%u", sl->serial);
	else
		snprintf(g->name, sizeof(g->name), "llm-svc-%u", sl->serial);
	snprintf(g->uin, sizeof(g->uin), "1000%08u", uin % 100000000u);
	snprintf(g->created_by, sizeof(g->created_by), "1000%08u",
	         (unsigned)(sim_rng(&st) % 100000000u));
	sim_fmt_time(g->create, sizeof(g->create), "%Y-%m-%dT%H:%M:%SZ", created);
	g->tags_mode = (int)(sim_rng(&st) % 3);
	g->nsvc = 1 + (int)(sim_rng(&st) % 3);
	sim_fmt_time(g->update, sizeof(g->update), "%Y-%m-%dT%H:%M:%SZ",
	             created + 3600 + (int64_t)sl->version * 86400 +
	                 (int64_t)(sim_rng(&mt) % 86400));
	for (int i = 0; i < g->nsvc; i++) {
		tione_svc *v = &g->svc[i];
		uint64_t ss = sim_hash(st, (uint64_t)i + 100);
		const struct itype *it = &itypes[sim_rng(&mt) % NITYPES];
		snprintf(v->id, sizeof(v->id), "%s-%d", g->id, i + 1);
		snprintf(v->charge, sizeof(v->charge), "%s", SIM_PICK(&ss, charges));
		snprintf(v->cluster, sizeof(v->cluster), "%s",
		         sim_rng(&ss) % 2 ? "" : "tke-gz-001");
		snprintf(v->status, sizeof(v->status), "%s", SIM_PICK(&mt, gstat));
		v->replicas = strcmp(v->status, "Stopped") == 0 ? 0 : 1 + (int)(sim_rng(&mt) % 8);
		v->ready = strcmp(v->status, "Normal") == 0 ? v->replicas : v->replicas / 2;
		snprintf(v->itype, sizeof(v->itype), "%s", it->name);
		snprintf(v->gpu_type, sizeof(v->gpu_type), "%s", it->gpu);
		v->cpu = it->cpu;
		v->mem = it->mem;
		v->gpu = it->gpu100;
		v->weight = 100;
		v->model_null = sim_rng(&ss) % 6 == 0; /* the page warns ModelInfo may be null */
		v->total_present = sim_rng(&ss) % 2 == 0;
		snprintf(v->model, sizeof(v->model), "%s", sim_models[sim_rng(&ss) % sim_nmodels]);
		unsigned long long model_no = sim_rng(&ss) % 1000000000000000000ULL;

		snprintf(v->model_id, sizeof(v->model_id), "m-%llu", model_no);
		snprintf(v->model_version, sizeof(v->model_version), "mv-v%u-%llu",
		         (unsigned)(sim_rng(&mt) % 9) + 1, model_no);
		/* a state of its own: the draws above stay as they were */
		storage_gen(v, sim_hash(st, (uint64_t)i + 300));
		if (strcmp(v->status, "Normal") == 0)
			running++;
	}
	/* the group status follows its services, as the console shows it */
	snprintf(g->status, sizeof(g->status), "%s", running ? "Normal" : g->svc[0].status);
}

static json_object *condition(const char *type, const char *reason, const char *msg,
                              const char *when)
{
	json_object *c = json_object_new_object();
	OS(c, "Message", msg);
	OS(c, "Reason", reason);
	OS(c, "Status", "True");
	OS(c, "Type", type);
	OS(c, "LastTransitionTime", when);
	OS(c, "LastUpdateTime", when);
	return c;
}

static json_object *resources(const tione_svc *v, int mult)
{
	json_object *r = json_object_new_object(), *set = json_object_new_array(),
	            *d = json_object_new_object();
	OI(r, "Cpu", (int64_t)v->cpu * mult);
	OI(r, "Memory", (int64_t)v->mem * mult);
	OI(r, "Gpu", (int64_t)v->gpu * mult);
	OI(r, "RealGpu", (int64_t)v->gpu * mult);
	OS(r, "GpuType", v->gpu_type);
	OS(d, "Name", v->gpu_type);
	OI(d, "Value", (int64_t)v->gpu * mult);
	json_object_array_add(set, d);
	json_object_object_add(r, "RealGpuDetailSet", set);
	return r;
}

static json_object *image_info(const tione_svc *v)
{
	json_object *img = json_object_new_object();
	char url[96];
	snprintf(url, sizeof(url), "tione.tencentcloudcr.com/qcloud-ti-platform/%s:latest",
	         v->model);
	lower(url);
	OS(img, "ImageType", "PRE_SET");
	OS(img, "ImageUrl", url);
	OS(img, "RegistryRegion", "");
	OS(img, "RegistryId", "");
	return img;
}

/* {"Bucket","Region","Paths":[path]}: where on COS */
static json_object *cos_path_info(const tione_svc *v, const char *region, const char *path)
{
	json_object *c = json_object_new_object(), *paths = json_object_new_array();
	OS(c, "Bucket", v->bucket);
	OS(c, "Region", region);
	json_object_array_add(paths, json_object_new_string(path));
	json_object_object_add(c, "Paths", paths);
	return c;
}

/* The page warns ModelInfo may be null. */
static json_object *model_info(const tione_svc *v, const char *region)
{
	json_object *mi;
	if (v->model_null)
		return NULL;
	mi = json_object_new_object();
	OS(mi, "ModelId", v->model_id);
	OS(mi, "ModelName", v->model);
	OS(mi, "ModelVersionId", v->model_version);
	OS(mi, "ModelVersion", "v1");
	OS(mi, "ModelSource", "COS");
	OS(mi, "ModelType", "NORMAL");
	json_object_object_add(mi, "CosPathInfo", cos_path_info(v, region, v->cos_dir));
	OS(mi, "AlgorithmFramework", "PYTORCH");
	OS(mi, "ModelFormat", "PYTORCH");
	return mi;
}

/* The code that serves the model: model_service.py next to the checkpoint. */
static json_object *infer_code_info(const tione_svc *v, const char *region)
{
	json_object *ic = json_object_new_object();
	char path[sizeof(v->cos_dir) + 20];
	snprintf(path, sizeof(path), "%smodel_service.py", v->cos_dir);
	json_object_object_add(ic, "CosPathInfo", cos_path_info(v, region, path));
	return ic;
}

static json_object *volume_mount(const tione_svc *v)
{
	json_object *vm = json_object_new_object(), *cfs = json_object_new_object();
	OS(vm, "VolumeSourceType", "CFS");
	OS(cfs, "Id", v->cfs_id);
	OS(cfs, "Path", v->cfs_path);
	OS(cfs, "MountType", "");
	OS(cfs, "Protocol", "");
	json_object_object_add(vm, "CFSConfig", cfs);
	return vm;
}

/* ServiceInfo.Status, a Kubernetes workload status. */
static json_object *workload_status(const tione_group *g, const tione_svc *v)
{
	json_object *st = json_object_new_object(), *conds = json_object_new_array();
	char when[40];
	/* Conditions carry local times with +08:00, unlike the Z times around them */
	snprintf(when, sizeof(when), "%.19s+08:00", g->update);
	OI(st, "Replicas", v->replicas);
	OI(st, "UpdatedReplicas", v->replicas);
	OI(st, "ReadyReplicas", v->ready);
	OI(st, "AvailableReplicas", v->ready);
	OI(st, "UnavailableReplicas", v->replicas - v->ready);
	OS(st, "Status", v->status);
	OS(st, "Reason", "");
	json_object_array_add(conds, condition("Available", "MinimumReplicasAvailable",
	                                       "Deployment has minimum availability.", when));
	json_object_array_add(conds, condition("Progressing", "NewReplicaSetAvailable",
	                                       "ReplicaSet has successfully progressed.", when));
	json_object_object_add(st, "Conditions", conds);
	return st;
}

static json_object *service_info(const tione_group *g, const tione_svc *v, const char *region)
{
	json_object *si = json_object_new_object();
	OI(si, "Replicas", v->replicas);
	json_object_object_add(si, "ImageInfo", image_info(v));
	json_object_object_add(si, "Env", json_object_new_array());
	json_object_object_add(si, "Resources", resources(v, 1));
	OS(si, "InstanceType", v->itype);
	json_object_object_add(si, "ModelInfo", model_info(v, region));
	json_object_object_add(si, "InferCodeInfo", infer_code_info(v, region));
	json_object_object_add(si, "VolumeMount", volume_mount(v));
	json_object_object_add(si, "LogEnable", json_object_new_boolean(0));
	json_object_object_add(si, "LogConfig", NULL);
	json_object_object_add(si, "AuthorizationEnable", json_object_new_boolean(0));
	OS(si, "ScaleMode", "MANUAL");
	json_object_object_add(si, "HorizontalPodAutoscaler", NULL);
	json_object_object_add(si, "CronScaleJobs", json_object_new_array());
	OS(si, "ScaleStrategy", "");
	json_object_object_add(si, "ScheduledAction", NULL);
	json_object_object_add(si, "Status", workload_status(g, v));
	OI(si, "Weight", 0);
	json_object_object_add(si, "PodList", json_object_new_array());
	json_object_object_add(si, "Pods", NULL);
	json_object_object_add(si, "PodInfos", json_object_new_array());
	json_object_object_add(si, "ResourceTotal",
	                       v->total_present ? resources(v, v->replicas) : NULL);
	OI(si, "OldReplicas", 0);
	OI(si, "HybridBillingPrepaidReplicas", 0);
	OI(si, "OldHybridBillingPrepaidReplicas", 0);
	json_object_object_add(si, "ServiceLimit", NULL);
	json_object_object_add(si, "ModelHotUpdateEnable", json_object_new_boolean(0));
	json_object_object_add(si, "ModelTurboEnable", json_object_new_boolean(0));
	return si;
}

static json_object *tione_service(const tione_group *g, const tione_svc *v, const char *region)
{
	json_object *o = json_object_new_object();
	char ns[40];
	snprintf(ns, sizeof(ns), "infer-%s", g->uin);
	OS(o, "ServiceGroupId", g->id);
	OS(o, "ServiceId", v->id);
	OS(o, "ServiceGroupName", g->name);
	OS(o, "ServiceDescription", "");
	json_object_object_add(o, "ServiceInfo", service_info(g, v, region));
	OS(o, "ClusterId", v->cluster);
	OS(o, "Region", region);
	OS(o, "Namespace", ns);
	OS(o, "ChargeType", v->charge);
	OS(o, "ResourceGroupId", "");
	OS(o, "ResourceGroupName", "");
	json_object_object_add(o, "Tags", json_object_new_array());
	OS(o, "IngressName", "user-ingress-1");
	OS(o, "CreatedBy", g->created_by);
	OS(o, "CreateTime", g->create);
	OS(o, "UpdateTime", g->update);
	OS(o, "Uin", g->uin);
	OS(o, "SubUin", "");
	OI(o, "AppId", 0);
	OS(o, "BusinessStatus", "CREATE_SUCCEED");
	OS(o, "CreateFailedReason", "CREATE_SUCCEED");
	OS(o, "Status", v->status);
	OS(o, "BillingInfo", "");
	OI(o, "Weight", v->weight);
	OS(o, "CreateSource", "DEFAULT");
	OS(o, "Version", "1");
	OS(o, "LatestVersion", "");
	json_object_object_add(o, "ServiceLimit", NULL);
	json_object_object_add(o, "ScheduledAction", NULL);
	return o;
}

static json_object *tione_json(const tione_group *g, const char *region)
{
	json_object *o = json_object_new_object(), *svcs = json_object_new_array();
	int running = 0;
	OS(o, "ServiceGroupId", g->id);
	OS(o, "ServiceGroupName", g->name);
	OS(o, "CreatedBy", g->created_by);
	OS(o, "CreateTime", g->create);
	OS(o, "UpdateTime", g->update);
	OS(o, "Uin", g->uin);
	OI(o, "ServiceCount", g->nsvc);
	for (int i = 0; i < g->nsvc; i++)
		running += strcmp(g->svc[i].status, "Normal") == 0;
	OI(o, "RunningServiceCount", running);
	for (int i = 0; i < g->nsvc; i++)
		json_object_array_add(svcs, tione_service(g, &g->svc[i], region));
	json_object_object_add(o, "Services", svcs);
	OS(o, "Status", g->status);
	if (g->tags_mode == 0) {
		json_object_object_add(o, "Tags", NULL);
	} else {
		json_object *tags = json_object_new_array();
		if (g->tags_mode == 2) {
			json_object *t = json_object_new_object();
			OS(t, "TagKey", "team");
			OS(t, "TagValue", "算法平台");
			json_object_array_add(tags, t);
		}
		json_object_object_add(o, "Tags", tags);
	}
	OS(o, "BusinessStatus", "");
	OS(o, "WeightUpdateStatus", "");
	OS(o, "CreateSource", "DEFAULT");
	OS(o, "BillingInfo", "");
	OS(o, "LatestVersion", "");
	return o;
}

static json_object *tione_render(const af_sim *s, const sim_scope *sc, const sim_slot *sl)
{
	tione_group g;
	tione_gen(&g, s, sc, sl);
	return tione_json(&g, sim_scope_region(s, sc));
}

static void tione_truth(json_object *o, const af_sim *s, const sim_scope *sc, const sim_slot *sl)
{
	tione_group g;
	json_object *svcs = json_object_new_array();
	int replicas = 0;
	tione_gen(&g, s, sc, sl);
	OS(o, "id", g.id);
	OS(o, "status", g.status);
	for (int j = 0; j < g.nsvc; j++) {
		json_object *v = json_object_new_object();
		OS(v, "id", g.svc[j].id);
		OI(v, "replicas", g.svc[j].replicas);
		OS(v, "status", g.svc[j].status);
		json_object_array_add(svcs, v);
		replicas += g.svc[j].replicas;
	}
	OI(o, "replicas", replicas);
	json_object_object_add(o, "services", svcs);
}

/* ---- DescribeModelServiceGroups ---- */

enum {
	TF_GROUP_ID,
	TF_GROUP_NAME,
	TF_STATUS,
	TF_SERVICE_ID,
	TF_CLUSTER,
	TF_CREATED_BY,
	TF_MODEL_VERSION
};
static const char *tfilter_names[] = {"ServiceGroupId", "ServiceGroupName", "Status",
                                      "ServiceId",      "ClusterId",        "CreatedBy",
                                      "ModelVersionId"};

typedef struct tione_filter {
	int name;
	json_object *values;
	bool fuzzy, negative;
} tione_filter;

static bool value_hit(json_object *values, const char *v, bool fuzzy)
{
	size_t n = json_object_array_length(values);
	for (size_t i = 0; i < n; i++) {
		const char *want = json_object_get_string(json_object_array_get_idx(values, i));
		if (!want)
			continue;
		if (fuzzy ? strstr(v, want) != NULL : strcmp(v, want) == 0)
			return true;
	}
	return false;
}

static bool tione_match(const tione_group *g, const tione_filter *f, size_t nf)
{
	for (size_t i = 0; i < nf; i++) {
		bool hit = false;
		switch (f[i].name) {
		case TF_GROUP_ID:
			hit = value_hit(f[i].values, g->id, false);
			break;
		case TF_GROUP_NAME:
			hit = value_hit(f[i].values, g->name, f[i].fuzzy);
			break;
		case TF_STATUS:
			hit = value_hit(f[i].values, g->status, false);
			break;
		case TF_CREATED_BY:
			hit = value_hit(f[i].values, g->created_by, false);
			break;
		default:
			for (int k = 0; k < g->nsvc && !hit; k++) {
				const tione_svc *v = &g->svc[k];
				const char *field = f[i].name == TF_SERVICE_ID ? v->id
				                    : f[i].name == TF_CLUSTER  ? v->cluster
				                    : v->model_null            ? ""
				                                               : v->model_version;
				hit = value_hit(f[i].values, field, false);
			}
		}
		if (hit == f[i].negative)
			return false;
	}
	return true;
}

#define TIONE_MAX_FILTERS 16
#define NTFILTERS         (sizeof(tfilter_names) / sizeof(tfilter_names[0]))

/* Reads Filters into f: their number, or -1 with resp filled. */
static int tione_filters(tione_filter *f, const sim_req *r, sim_resp *resp)
{
	json_object *filters = NULL;
	int nf = 0;

	if (!json_object_object_get_ex(r->json, "Filters", &filters) || !filters)
		return 0;
	if (!json_object_is_type(filters, json_type_array)) {
		sim_tc_error(resp, r, "InvalidParameter", "Filters must be an array.");
		return -1;
	}
	for (size_t i = 0; i < json_object_array_length(filters); i++) {
		json_object *fo = json_object_array_get_idx(filters, i), *x;
		const char *name = NULL;
		int idx = -1;
		if (nf >= TIONE_MAX_FILTERS) {
			sim_tc_error(resp, r, "InvalidParameterValue", "Too many filters.");
			return -1;
		}
		if (json_object_object_get_ex(fo, "Name", &x))
			name = json_object_get_string(x);
		for (int k = 0; name && k < (int)NTFILTERS; k++)
			if (strcmp(name, tfilter_names[k]) == 0)
				idx = k;
		if (idx < 0 || !json_object_object_get_ex(fo, "Values", &x) ||
		    !json_object_is_type(x, json_type_array)) {
			sim_tc_error(resp, r, "InvalidParameterValue",
			             "Unsupported filter name or missing Values.");
			return -1;
		}
		f[nf].name = idx;
		f[nf].values = x;
		f[nf].fuzzy =
		    json_object_object_get_ex(fo, "Fuzzy", &x) && json_object_get_boolean(x);
		f[nf].negative =
		    json_object_object_get_ex(fo, "Negative", &x) && json_object_get_boolean(x);
		nf++;
	}
	return nf;
}

/* An integer member of the body into *out (kept when absent): 0, or -1
 * with resp filled when it is not an integer. */
static int tione_int(int64_t *out, const sim_req *r, sim_resp *resp, const char *key)
{
	json_object *v;
	char msg[64];

	if (!json_object_object_get_ex(r->json, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int)) {
		snprintf(msg, sizeof(msg), "%s must be an integer.", key);
		sim_tc_error(resp, r, "InvalidParameter", msg);
		return -1;
	}
	*out = json_object_get_int64(v);
	return 0;
}

/* The groups [offset, offset + limit) of those that pass the filters into
 * groups; the number that pass. Caller locks. */
static size_t tione_list(json_object *groups, const af_sim *s, const sim_scope *sc,
                         const tione_filter *f, size_t nf, size_t offset, size_t limit)
{
	size_t total = 0;
	if (nf == 0) {
		sim_fleet_render(groups, s, sc, offset, limit);
		return sc->n;
	}
	for (size_t k = 0; k < sc->n; k++) {
		tione_group g;
		tione_gen(&g, s, sc, &sc->slots[k]);
		if (!tione_match(&g, f, nf))
			continue;
		if (total >= offset && total < offset + limit)
			json_object_array_add(groups, tione_json(&g, sim_scope_region(s, sc)));
		total++;
	}
	return total;
}

static int tione_describe(af_sim *s, sim_req *r, sim_resp *resp)
{
	int64_t offset = 0, limit = TIONE_DEFAULT_LIMIT;
	json_object *o, *in, *groups;
	tione_filter f[TIONE_MAX_FILTERS];
	size_t total = 0;
	int nf;
	sim_scope *sc;

	if (tione_int(&offset, r, resp, "Offset") < 0 || tione_int(&limit, r, resp, "Limit") < 0)
		return 0;
	if (offset < 0 || limit < 0 || limit > af_product_tione.max_page_size)
		return sim_tc_error(resp, r, "InvalidParameterValue",
		                    "Offset must be >= 0 and Limit within 0-100.");
	if ((nf = tione_filters(f, r, resp)) < 0)
		return 0;
	o = json_object_new_object();
	in = json_object_new_object();
	groups = json_object_new_array();
	offset = (int64_t)sim_fault_start(r, (size_t)offset); /* repeat_page: Offset 0 */
	pthread_mutex_lock(&s->lock);
	if ((sc = sim_fleet_scope(s, r->account, r->region, r->product)))
		total = tione_list(groups, s, sc, f, (size_t)nf, (size_t)offset, (size_t)limit);
	pthread_mutex_unlock(&s->lock);
	int64_t said = (int64_t)total;
	sim_fault_page(r, groups, &said);
	json_object_object_add(in, "ServiceGroups", groups);
	json_object_object_add(in, "TotalCount", json_object_new_int64(said));
	json_object_object_add(in, "RequestId", json_object_new_string(r->request_id));
	json_object_object_add(o, "Response", in);
	return sim_json_out(resp, 200, o);
}

/* The page scripted faults match: Offset / Limit + 1. */
static int tione_page(const sim_req *r)
{
	int64_t off = 0, lim = TIONE_DEFAULT_LIMIT;
	json_object *v;
	if (json_object_object_get_ex(r->json, "Offset", &v))
		off = json_object_get_int64(v);
	if (json_object_object_get_ex(r->json, "Limit", &v))
		lim = json_object_get_int64(v);
	return lim > 0 ? (int)(off / lim) + 1 : 1;
}

static const sim_action tione_actions[] = {
    {
        .name = "DescribeModelServiceGroups",
        .method = "POST",
        .fixture = "tione_describe_example.json",
        .handle = tione_describe,
        .page = tione_page,
        .list = true,
        /* the per-replica GPU in 1/100 cards */
        .huge_number = "Services/ServiceInfo/Resources/Gpu",
        .long_name = "ServiceGroupName",
    },
};

_Static_assert(sizeof(tione_actions) / sizeof(tione_actions[0]) <= SIM_ACTIONS_MAX,
               "room in the stats");

const sim_product sim_product_tione = {
    .product = &af_product_tione,
    .style = SIM_TC3,
    .version = "2021-11-11",
    .tc3_service = "tione",
    .actions = tione_actions,
    .nactions = sizeof(tione_actions) / sizeof(tione_actions[0]),
    .id_prefix = "ms-",
    .default_page_size = TIONE_DEFAULT_LIMIT,
    .rate_limit = 20, /* documented for DescribeModelServiceGroups */
    .render = tione_render,
    .truth = tione_truth,
};
