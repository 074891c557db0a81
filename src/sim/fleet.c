/*
 * The simulated fleet. Each (account, region, product) scope holds only a
 * sorted array of {serial, version}; every field of an item is derived on
 * demand from hash(seed, scope, serial) (stable fields) and
 * hash(.., version) (fields that updates change). 100k items cost 800 KB and
 * no start-up time, and the same seed always gives the same fleet.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aifleet/error.h"
#include "sim.h"

static uint64_t seed_mask(const af_sim *s)
{
	return sim_mix64(s->opt.seed * 0x2545f4914f6cdd1dULL + 7);
}

static uint64_t idval(const af_sim *s, const sim_scope *sc, uint32_t serial)
{
	return sim_mix64((((uint64_t)sc->key << 32) | serial) ^ seed_mask(s));
}

static int slot_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = ((const sim_slot *)b)->serial;
	return x < y ? -1 : x > y;
}

static const sim_slot *find_serial(const sim_scope *sc, uint32_t serial)
{
	return bsearch(&serial, sc->slots, sc->n, sizeof(sim_slot), slot_cmp);
}

/* The slot of an id value, or NULL when it is not (or no longer) here. */
static const sim_slot *find_id(const af_sim *s, const sim_scope *sc, uint64_t v)
{
	uint64_t raw = sim_unmix64(v) ^ seed_mask(s);
	if ((uint32_t)(raw >> 32) != sc->key)
		return NULL;
	return find_serial(sc, (uint32_t)raw);
}

static int scope_add(af_sim *s, int account, int region, sim_product p, int items)
{
	sim_scope *n = realloc(s->scopes, (s->nscopes + 1) * sizeof(*n));
	if (!n)
		return af_error_set(AF_ERR_NOMEM, "out of memory");
	s->scopes = n;
	n = &s->scopes[s->nscopes++];
	memset(n, 0, sizeof(*n));
	n->account = account;
	n->region = region;
	n->product = p;
	n->key = ((uint32_t)(account + 1) << 12) | ((uint32_t)region << 4) | (uint32_t)p;
	n->cap = items > 0 ? (size_t)items : 1;
	n->slots = malloc(n->cap * sizeof(sim_slot));
	if (!n->slots)
		return af_error_set(AF_ERR_NOMEM, "out of memory");
	for (int i = 0; i < items; i++) {
		n->slots[i].serial = (uint32_t)i + 1;
		n->slots[i].version = 0;
	}
	n->n = (size_t)items;
	n->next_serial = (uint32_t)items + 1;
	return 0;
}

int sim_fleet_init(af_sim *s)
{
	int err = 0;
	for (size_t a = 0; a < s->naccounts; a++) {
		sim_account *acc = &s->accounts[a];
		int items = acc->items > 0 ? acc->items : s->opt.items;
		for (int r = 0; r < acc->nregions; r++) {
			if (acc->provider == SIM_ALIBABA) {
				if ((err = scope_add(s, (int)a, r, SIM_TAIR, items)) < 0 ||
				    (err = scope_add(s, (int)a, r, SIM_HOLO, items)) < 0)
					goto done;
			} else if ((err = scope_add(s, (int)a, r, SIM_TIONE, items)) < 0) {
				goto done;
			}
		}
	}
done:
	return err;
}

void sim_fleet_free(af_sim *s)
{
	for (size_t i = 0; i < s->nscopes; i++)
		free(s->scopes[i].slots);
	free(s->scopes);
	s->scopes = NULL;
	s->nscopes = 0;
}

sim_scope *sim_fleet_scope(af_sim *s, int account, const char *region, sim_product p)
{
	int r;
	if (account < 0 || (size_t)account >= s->naccounts)
		return NULL;
	r = sim_account_region(&s->accounts[account], region);
	if (r < 0)
		return NULL;
	for (size_t i = 0; i < s->nscopes; i++)
		if (s->scopes[i].account == account && s->scopes[i].region == r &&
		    s->scopes[i].product == p)
			return &s->scopes[i];
	return NULL;
}

/* ---- value tables ---- */

static const char *models[] = {"Qwen3-32B",     "Qwen2.5-72B-Instruct", "DeepSeek-V3",
                               "DeepSeek-R1",   "DeepSeek-OCR",         "GLM-4.5",
                               "Llama-3.1-70B", "Llama-3.1-8B",         "Qwen3-Embedding-8B"};
#define NMODELS (sizeof(models) / sizeof(models[0]))

/* a macro so that strftime sees literal formats (-Wformat-nonliteral) */
#define fmt_time(out, n, fmt, t)                                                                   \
	do {                                                                                       \
		time_t tt_ = (time_t)(t);                                                          \
		struct tm tm_;                                                                     \
		gmtime_r(&tt_, &tm_);                                                              \
		strftime(out, n, fmt, &tm_);                                                       \
	} while (0)

#define T0 1704067200 /* 2024-01-01T00:00:00Z */

static const char *pick(uint64_t *st, const char *const *arr, size_t n)
{
	return arr[sim_rng(st) % n];
}
#define PICK(st, arr) pick(st, arr, sizeof(arr) / sizeof(arr[0]))

static void item_id(char *out, size_t n, const af_sim *s, const sim_scope *sc, uint32_t serial,
                    int which)
{
	char b[14];
	uint64_t v = idval(s, sc, serial);
	if (sc->product == SIM_HOLO && which == 1) {
		/* the AI node id: derived, not decodable (lookups go by holoInstanceId) */
		sim_base36(b, sim_mix64(v ^ 0x5bd1e995u));
		snprintf(out, n, "hologram_aicombo_public_cn-%s", b);
		return;
	}
	sim_base36(b, v);
	snprintf(out, n, "%s%s",
	         sc->product == SIM_TAIR    ? "tk-"
	         : sc->product == SIM_TIONE ? "ms-"
	                                    : "hgpostcn-cn-",
	         b);
}

static uint64_t base_state(const af_sim *s, const sim_scope *sc, const sim_slot *sl)
{
	return sim_hash(s->opt.seed, ((uint64_t)sc->key << 32) | sl->serial);
}

/* ---- Tair KVCache ---- */

void sim_tair_gen(sim_tair *t, const af_sim *s, const sim_scope *sc, const sim_slot *sl)
{
	static const char *statuses[] = {"Normal", "Normal",   "Normal",   "Normal",  "Normal",
	                                 "Normal", "Creating", "Changing", "Stopped", "Abnormal"};
	static const char *tagkeys[] = {"env", "team", "thread", "priority", "owner"};
	static const char *envs[] = {"prod", "staging", "dev"};
	static const char *teams[] = {"search", "ads", "推荐", "llm-platform"};
	uint64_t st = base_state(s, sc, sl), mt = sim_hash(st, sl->version + 1);
	const char *region = s->accounts[sc->account].regions[sc->region];
	int64_t created = T0 + (int64_t)(sim_rng(&st) % (600 * 86400));
	uint32_t serial = sl->serial;

	memset(t, 0, sizeof(*t));
	item_id(t->id, sizeof(t->id), s, sc, serial, 0);
	if (sim_rng(&st) % 8 == 0)
		snprintf(t->name, sizeof(t->name), "推理缓存-%u", serial);
	else
		snprintf(t->name, sizeof(t->name), "kvcache-%u", serial);
	snprintf(t->charge, sizeof(t->charge), "%s", sim_rng(&st) % 3 ? "PostPaid" : "PrePaid");
	snprintf(t->zone, sizeof(t->zone), "%s-%c", region, (char)('a' + sim_rng(&st) % 8));
	fmt_time(t->create, sizeof(t->create), "%Y-%m-%dT%H:%MZ", created);
	if (t->charge[1] == 'r')
		fmt_time(t->end, sizeof(t->end), "%Y-%m-%dT%H:%M:%SZ", created + 365 * 86400);
	/* the API page's quirk: DestroyTime carries a trailing newline */
	if (sim_rng(&st) % 3 == 0)
		fmt_time(t->destroy, sizeof(t->destroy), "%Y-%m-%dT%H:%MZ\n", created);
	snprintf(t->vpc, sizeof(t->vpc), "vpc-%013llx", (unsigned long long)(sim_rng(&st) >> 12));
	snprintf(t->vsw, sizeof(t->vsw), "vsw-%013llx", (unsigned long long)(sim_rng(&st) >> 12));
	snprintf(t->ip, sizeof(t->ip), "172.16.%u.%u", (unsigned)(sim_rng(&st) % 256),
	         (unsigned)(sim_rng(&st) % 254 + 1));
	snprintf(t->rg, sizeof(t->rg), "rg-acfm%010llx", (unsigned long long)(sim_rng(&st) >> 24));
	snprintf(t->ack, sizeof(t->ack), "c%016llx%015llx", (unsigned long long)sim_rng(&st),
	         (unsigned long long)(sim_rng(&st) >> 4));
	snprintf(t->vnode, sizeof(t->vnode), "tv-%010llx",
	         (unsigned long long)(sim_rng(&st) >> 24));
	t->ntags = (int)(sim_rng(&st) % 4);
	for (int i = 0; i < t->ntags; i++) {
		int k = (int)((sim_rng(&st) % 5 + (uint64_t)i) % 5);
		t->tags[i].key = tagkeys[k];
		if (k == 2 || k == 3) {
			t->tags[i].numeric = true; /* numeric JSON Value, as in the page */
			snprintf(t->tags[i].value, sizeof(t->tags[i].value), "%u",
			         k == 2 ? 900u : (unsigned)(sim_rng(&st) % 10));
		} else if (k == 0) {
			snprintf(t->tags[i].value, sizeof(t->tags[i].value), "%s", PICK(&st, envs));
		} else if (k == 1) {
			snprintf(t->tags[i].value, sizeof(t->tags[i].value), "%s",
			         PICK(&st, teams));
		} else {
			snprintf(t->tags[i].value, sizeof(t->tags[i].value), "u%u",
			         (unsigned)(sim_rng(&st) % 100));
		}
	}
	/* mutable part */
	snprintf(t->status, sizeof(t->status), "%s", PICK(&mt, statuses));
	snprintf(t->model, sizeof(t->model), "%s", models[sim_rng(&mt) % NMODELS]);
	t->cu = 1 << (sim_rng(&mt) % 4);
	snprintf(t->klass, sizeof(t->klass), "kvcache.cu.g4b.%d", t->cu);
	t->services = 1 + (int)(sim_rng(&mt) % 3);
	t->vnodes = 1 + (int)(sim_rng(&mt) % 4);
	t->fixed = t->vnodes;
	t->elastic = (int)(sim_rng(&mt) % 2);
	t->capacity = 256LL * t->cu;
}

json_object *sim_tair_json(const sim_tair *t, const char *region)
{
	json_object *o = json_object_new_object(), *tags = json_object_new_object(),
	            *arr = json_object_new_array();
#define S(k, v) json_object_object_add(o, k, json_object_new_string(v))
#define I(k, v) json_object_object_add(o, k, json_object_new_int64(v))
	S("VpcId", t->vpc);
	S("CreateTime", t->create);
	S("ChargeType", t->charge);
	S("NetworkType", "VPC");
	S("InstanceName", t->name);
	S("InstanceClass", t->klass);
	S("DestroyTime", t->destroy);
	S("InstanceId", t->id);
	S("InstanceType", "TairInfer");
	S("RegionId", region);
	S("EndTime", t->end);
	S("VSwitchId", t->vsw);
	S("ResourceGroupId", t->rg);
	S("ZoneId", t->zone);
	S("InstanceStatus", t->status);
	for (int i = 0; i < t->ntags; i++) {
		json_object *tag = json_object_new_object();
		json_object_object_add(tag, "Key", json_object_new_string(t->tags[i].key));
		json_object_object_add(tag, "Value",
		                       t->tags[i].numeric
		                           ? json_object_new_int64(atoll(t->tags[i].value))
		                           : json_object_new_string(t->tags[i].value));
		json_object_array_add(arr, tag);
	}
	json_object_object_add(tags, "Tag", arr);
	json_object_object_add(o, "Tags", tags);
	S("PrivateIp", t->ip);
	I("Capacity", t->capacity);
	S("Model", t->model);
	I("ModelServiceNum", t->services);
	I("ComputeUnitNum", t->cu);
	S("VNodeName", t->vnode);
	S("AckId", t->ack);
	I("VNodeCount", t->vnodes);
	I("FixedVNodeCount", t->fixed);
	I("ElasticVNodeCount", t->elastic);
	return o;
}

/* ---- TI-ONE ---- */

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

void sim_tione_gen(sim_tione *g, const af_sim *s, const sim_scope *sc, const sim_slot *sl)
{
	static const char *gstat[] = {"Normal",  "Normal",   "Normal",  "Normal",
	                              "Stopped", "Abnormal", "Waiting", "Pending"};
	static const char *charges[] = {"POSTPAID_BY_HOUR", "POSTPAID_BY_HOUR", "PREPAID",
	                                "HYBRID_PAID"};
	uint64_t st = base_state(s, sc, sl), mt = sim_hash(st, sl->version + 1);
	int64_t created = T0 + (int64_t)(sim_rng(&st) % (600 * 86400));
	unsigned uin = 100000000u + (unsigned)(sim_rng(&st) % 900000000u);
	int running = 0;

	memset(g, 0, sizeof(*g));
	item_id(g->id, sizeof(g->id), s, sc, sl->serial, 0);
	if (sim_rng(&st) % 6 == 0)
		snprintf(g->name, sizeof(g->name), "推理服务-%u", sl->serial);
	else
		snprintf(g->name, sizeof(g->name), "llm-svc-%u", sl->serial);
	snprintf(g->uin, sizeof(g->uin), "1000%08u", uin % 100000000u);
	snprintf(g->created_by, sizeof(g->created_by), "1000%08u",
	         (unsigned)(sim_rng(&st) % 100000000u));
	fmt_time(g->create, sizeof(g->create), "%Y-%m-%dT%H:%M:%SZ", created);
	g->tags_mode = (int)(sim_rng(&st) % 3);
	g->nsvc = 1 + (int)(sim_rng(&st) % 3);
	fmt_time(g->update, sizeof(g->update), "%Y-%m-%dT%H:%M:%SZ",
	         created + 3600 + (int64_t)sl->version * 86400 + (int64_t)(sim_rng(&mt) % 86400));
	for (int i = 0; i < g->nsvc; i++) {
		sim_tione_svc *v = &g->svc[i];
		uint64_t ss = sim_hash(st, (uint64_t)i + 100);
		const struct itype *it = &itypes[sim_rng(&mt) % NITYPES];
		snprintf(v->id, sizeof(v->id), "%s-%d", g->id, i + 1);
		snprintf(v->charge, sizeof(v->charge), "%s", PICK(&ss, charges));
		snprintf(v->cluster, sizeof(v->cluster), "%s",
		         sim_rng(&ss) % 2 ? "" : "tke-gz-001");
		snprintf(v->status, sizeof(v->status), "%s", PICK(&mt, gstat));
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
		snprintf(v->model, sizeof(v->model), "%s", models[sim_rng(&ss) % NMODELS]);
		snprintf(v->model_id, sizeof(v->model_id), "m-%llu",
		         (unsigned long long)(sim_rng(&ss) % 1000000000000000000ULL));
		snprintf(v->model_version, sizeof(v->model_version), "mv-v%u-%s",
		         (unsigned)(sim_rng(&mt) % 9) + 1, v->model_id + 2);
		if (strcmp(v->status, "Normal") == 0)
			running++;
	}
	/* the group status follows its services, as the console shows it */
	snprintf(g->status, sizeof(g->status), "%s", running ? "Normal" : g->svc[0].status);
}

static json_object *jstr(const char *s)
{
	return json_object_new_string(s);
}

static json_object *condition(const char *type, const char *reason, const char *msg,
                              const char *when)
{
	json_object *c = json_object_new_object();
	json_object_object_add(c, "Message", jstr(msg));
	json_object_object_add(c, "Reason", jstr(reason));
	json_object_object_add(c, "Status", jstr("True"));
	json_object_object_add(c, "Type", jstr(type));
	json_object_object_add(c, "LastTransitionTime", jstr(when));
	json_object_object_add(c, "LastUpdateTime", jstr(when));
	return c;
}

static json_object *resources(const sim_tione_svc *v, int mult)
{
	json_object *r = json_object_new_object(), *set = json_object_new_array(),
	            *d = json_object_new_object();
	json_object_object_add(r, "Cpu", json_object_new_int64((int64_t)v->cpu * mult));
	json_object_object_add(r, "Memory", json_object_new_int64((int64_t)v->mem * mult));
	json_object_object_add(r, "Gpu", json_object_new_int64((int64_t)v->gpu * mult));
	json_object_object_add(r, "RealGpu", json_object_new_int64((int64_t)v->gpu * mult));
	json_object_object_add(r, "GpuType", jstr(v->gpu_type));
	json_object_object_add(d, "Name", jstr(v->gpu_type));
	json_object_object_add(d, "Value", json_object_new_int64((int64_t)v->gpu * mult));
	json_object_array_add(set, d);
	json_object_object_add(r, "RealGpuDetailSet", set);
	return r;
}

static json_object *tione_service(const sim_tione *g, const sim_tione_svc *v, const char *region)
{
	json_object *o = json_object_new_object(), *si = json_object_new_object(),
	            *img = json_object_new_object(), *st = json_object_new_object(),
	            *conds = json_object_new_array();
	char when[40], ns[40], img_url[96];
	/* Conditions carry local times with +08:00, unlike the Z times around them */
	snprintf(when, sizeof(when), "%.19s+08:00", g->update);
	snprintf(ns, sizeof(ns), "infer-%s", g->uin);
	snprintf(img_url, sizeof(img_url), "tione.tencentcloudcr.com/qcloud-ti-platform/%s:latest",
	         v->model);
	for (char *p = img_url; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');

#define OS(obj, k, v) json_object_object_add(obj, k, jstr(v))
#define OI(obj, k, v) json_object_object_add(obj, k, json_object_new_int64(v))
	OS(o, "ServiceGroupId", g->id);
	OS(o, "ServiceId", v->id);
	OS(o, "ServiceGroupName", g->name);
	OS(o, "ServiceDescription", "");
	OI(si, "Replicas", v->replicas);
	OS(img, "ImageType", "PRE_SET");
	OS(img, "ImageUrl", img_url);
	OS(img, "RegistryRegion", "");
	OS(img, "RegistryId", "");
	json_object_object_add(si, "ImageInfo", img);
	json_object_object_add(si, "Env", json_object_new_array());
	json_object_object_add(si, "Resources", resources(v, 1));
	OS(si, "InstanceType", v->itype);
	if (v->model_null) {
		json_object_object_add(si, "ModelInfo", NULL);
	} else {
		json_object *mi = json_object_new_object();
		OS(mi, "ModelId", v->model_id);
		OS(mi, "ModelName", v->model);
		OS(mi, "ModelVersionId", v->model_version);
		OS(mi, "ModelVersion", "v1");
		OS(mi, "ModelSource", "COS");
		OS(mi, "ModelType", "NORMAL");
		OS(mi, "AlgorithmFramework", "PYTORCH");
		OS(mi, "ModelFormat", "PYTORCH");
		json_object_object_add(si, "ModelInfo", mi);
	}
	json_object_object_add(si, "LogEnable", json_object_new_boolean(0));
	json_object_object_add(si, "LogConfig", NULL);
	json_object_object_add(si, "AuthorizationEnable", json_object_new_boolean(0));
	OS(si, "ScaleMode", "MANUAL");
	json_object_object_add(si, "HorizontalPodAutoscaler", NULL);
	json_object_object_add(si, "CronScaleJobs", json_object_new_array());
	OS(si, "ScaleStrategy", "");
	json_object_object_add(si, "ScheduledAction", NULL);
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
	json_object_object_add(si, "Status", st);
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
	json_object_object_add(o, "ServiceInfo", si);
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

json_object *sim_tione_json(const sim_tione *g, const char *region)
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

/* ---- Hologres AI nodes ---- */

static const struct holo_spec {
	const char *name, *type;
	int cpu, mem, gpu, gpu_mem;
} specs[] = {
    {"small-8core-30G-24G", "small", 8, 30, 1, 24},
    {"middle-32core-128G-96G", "middle", 32, 128, 4, 96},
    {"large-64core-256G-320G", "large", 64, 256, 4, 320},
};

void sim_holo_gen(sim_holo *h, const af_sim *s, const sim_scope *sc, const sim_slot *sl)
{
	static const char *nstat[] = {"ResourceReady", "ResourceReady", "ResourceReady",
	                              "ResourceReady", "Creating",      "Stopped",
	                              "Abnormal"};
	static const char *mtypes[] = {"qwen3.5-plus", "deepseek-v3", "glm-4.5", "llama-3.1-8b",
	                               "qwen3-embedding-8b"};
	static const char *providers[] = {"bailian", "modelscope", "huggingface"};
	static const char *tasks[] = {"chat", "embedding", "rerank"};
	static const char *sstat[] = {"Running", "Running", "Running", "Deploying", "Failed"};
	uint64_t st = base_state(s, sc, sl), mt = sim_hash(st, sl->version + 1);
	const struct holo_spec *sp = &specs[sim_rng(&st) % 3];
	int64_t exp = T0 + 400 * 86400 + (int64_t)(sim_rng(&st) % (365 * 86400));
	char when[32];

	memset(h, 0, sizeof(*h));
	item_id(h->holo_id, sizeof(h->holo_id), s, sc, sl->serial, 0);
	item_id(h->ai_id, sizeof(h->ai_id), s, sc, sl->serial, 1);
	if (sim_rng(&st) % 4 == 0)
		snprintf(h->holo_name, sizeof(h->holo_name), "AI节点-%u", sl->serial);
	else
		snprintf(h->holo_name, sizeof(h->holo_name), "holo-ai-%u", sl->serial);
	snprintf(h->spec, sizeof(h->spec), "%s", sp->name);
	snprintf(h->rtype, sizeof(h->rtype), "%s", sp->type);
	bool prepaid = sim_rng(&st) % 3 == 0;
	snprintf(h->charge, sizeof(h->charge), "%s", prepaid ? "PrePaid" : "PostPaid");
	snprintf(h->commodity, sizeof(h->commodity), "%s",
	         prepaid ? "hologram_aiprepay_public_cn" : "hologram_aipostpay_public_cn");
	fmt_time(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", exp);
	snprintf(h->expire, sizeof(h->expire), "%s.%03uZ", when, (unsigned)(sim_rng(&st) % 1000));
	h->auto_renew = sim_rng(&st) % 2;
	/* mutable part */
	snprintf(h->status, sizeof(h->status), "%s", PICK(&mt, nstat));
	h->nodes = 1 + (int)(sim_rng(&mt) % 4);
	h->cpu = sp->cpu * h->nodes;
	h->mem = sp->mem * h->nodes;
	h->gpu = sp->gpu * h->nodes;
	h->gpu_mem = sp->gpu_mem * h->nodes;
	h->nsvc = (int)(sim_rng(&mt) % 4);
	for (int i = 0; i < h->nsvc; i++) {
		sim_holo_svc *v = &h->svc[i];
		uint64_t ss = sim_hash(st, (uint64_t)i + 200);
		snprintf(v->model_type, sizeof(v->model_type), "%s", PICK(&ss, mtypes));
		snprintf(v->model_name, sizeof(v->model_name), "%s_svc_%d", v->model_type, i + 1);
		for (char *p = v->model_name; *p; p++)
			if (*p == '-' || *p == '.')
				*p = '_';
		snprintf(v->provider, sizeof(v->provider), "%s", PICK(&ss, providers));
		snprintf(v->task, sizeof(v->task), "%s", PICK(&ss, tasks));
		/* a fake key, but shaped like the real thing: it must never leak */
		snprintf(v->api_key, sizeof(v->api_key), "sk-%016llx%016llx",
		         (unsigned long long)sim_rng(&ss), (unsigned long long)sim_rng(&ss));
		snprintf(v->status, sizeof(v->status), "%s", PICK(&mt, sstat));
		snprintf(v->message, sizeof(v->message), "%s",
		         strcmp(v->status, "Failed") == 0 ? "Failed" : "");
		snprintf(v->version, sizeof(v->version), "v1.%u", (unsigned)(sim_rng(&mt) % 10));
		v->count = 1 + (int)(sim_rng(&mt) % 2);
		/* each service gets an equal share of the node, so usage never
		 * exceeds the totals (a CPU-only share when GPUs run out) */
		int share = h->nsvc * v->count;
		v->cpu = h->cpu / share > 0 ? h->cpu / share : 1;
		v->mem = h->mem / share;
		v->gpu = h->gpu / share;
		v->gpu_mem = v->gpu > 0 ? h->gpu_mem / share : 0;
		h->cpu_used += v->cpu * v->count;
		h->gpu_used += v->gpu * v->count;
		h->mem_used += v->mem * v->count;
		h->gpu_mem_used += v->gpu_mem * v->count;
	}
}

json_object *sim_holo_json(const sim_holo *h, const char *region, bool detail)
{
	json_object *o = json_object_new_object();
	OI(o, "cpu", h->cpu);
	OI(o, "gpu", h->gpu);
	OI(o, "memory", h->mem);
	OI(o, "gpuMemory", h->gpu_mem);
	if (detail) {
		json_object *list = json_object_new_array();
		for (int i = 0; i < h->nsvc; i++) {
			const sim_holo_svc *v = &h->svc[i];
			json_object *m = json_object_new_object();
			char params[128];
			snprintf(params, sizeof(params),
			         "{\"timeout\":600,\"max_retries\":%d,\"max_retry_delay\":8,"
			         "\"initial_retry_delay\":0.5}",
			         5 + i * 5);
			OI(m, "gpuMemory", v->gpu_mem);
			OI(m, "memory", v->mem);
			OI(m, "cpu", v->cpu);
			OS(m, "modelType", v->model_type);
			OI(m, "gpu", v->gpu);
			OS(m, "status", v->status);
			OS(m, "modelName", v->model_name);
			OI(m, "serviceCount", v->count);
			OS(m, "version", v->version);
			OS(m, "message", v->message);
			OS(m, "taskType", v->task);
			OS(m, "modelParams", params);
			OS(m, "apiKey", v->api_key);
			OS(m, "provider", v->provider);
			OS(m, "instanceRegion", region);
			OS(m, "serviceDeployRegion", region);
			json_object_array_add(list, m);
		}
		json_object_object_add(o, "modelServiceList", list);
	}
	OI(o, "cpuUsed", h->cpu_used);
	OI(o, "memoryUsed", h->mem_used);
	OI(o, "gpuUsed", h->gpu_used);
	OS(o, "aiInstanceId", h->ai_id);
	OI(o, "gpuMemoryUsed", h->gpu_mem_used);
	OS(o, "regionId", region);
	OS(o, "resourceType", h->rtype);
	OI(o, "nodeCount", h->nodes);
	OS(o, "commodityCode", h->commodity);
	OS(o, "chargeType", h->charge);
	OS(o, "status", h->status);
	OS(o, "expirationTime", h->expire);
	json_object_object_add(o, "autoRenewal", json_object_new_boolean(h->auto_renew));
	if (!detail) {
		OS(o, "holoInstanceId", h->holo_id);
		OS(o, "holoInstanceName", h->holo_name);
		OS(o, "aiSpec", h->spec);
	}
	return o;
}

/* ---- lookups, mutation, dump ---- */

const sim_slot *sim_fleet_lookup(const af_sim *s, const sim_scope *sc, const char *id)
{
	const char *prefix = sc->product == SIM_TAIR    ? "tk-"
	                     : sc->product == SIM_TIONE ? "ms-"
	                                                : "hgpostcn-cn-";
	uint64_t v;
	size_t pl = strlen(prefix);
	if (strncmp(id, prefix, pl) != 0 || sim_unbase36(&v, id + pl) < 0)
		return NULL;
	return find_id(s, sc, v);
}

static void primary_id(char *out, size_t n, const af_sim *s, const sim_scope *sc, uint32_t serial)
{
	item_id(out, n, s, sc, serial, sc->product == SIM_HOLO ? 1 : 0);
}

static bool scope_match(const af_sim *s, const sim_scope *sc, const char *product,
                        const char *account, const char *region)
{
	const sim_account *a = &s->accounts[sc->account];
	if (product && *product && sim_product_parse(product) != (int)sc->product)
		return false;
	if (account && *account && strcmp(account, a->label) != 0)
		return false;
	if (region && *region && strcmp(region, a->regions[sc->region]) != 0)
		return false;
	return true;
}

static double jnum(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

static const char *jstring(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
	           ? json_object_get_string(v)
	           : NULL;
}

static size_t frac_count(double f, size_t n)
{
	if (f <= 0)
		return 0;
	if (f >= 1)
		return n;
	return (size_t)llround(f * (double)n);
}

int sim_fleet_mutate(af_sim *s, json_object **out, json_object *req)
{
	double fc = jnum(req, "create"), fu = jnum(req, "update"), fd = jnum(req, "delete");
	uint64_t seed = (uint64_t)jnum(req, "seed");
	const char *product = jstring(req, "product"), *account = jstring(req, "account"),
	           *region = jstring(req, "region");
	json_object *res = json_object_new_object(), *created = json_object_new_array(),
	            *updated = json_object_new_array(), *deleted = json_object_new_array();
	size_t nc = 0, nu = 0, nd = 0;
	uint32_t *idx = NULL;
	int err = 0;
	char id[64];

	if (product && sim_product_parse(product) < 0) {
		err = af_error_set(AF_ERR_PARAM, "unknown product");
		goto done;
	}
	for (size_t i = 0; i < s->nscopes; i++) {
		sim_scope *sc = &s->scopes[i];
		size_t n = sc->n, d, u, c, k;
		uint64_t st = sim_hash(seed, sc->key);
		if (!scope_match(s, sc, product, account, region))
			continue;
		d = frac_count(fd, n);
		u = frac_count(fu, n);
		if (d + u > n)
			u = n - d;
		c = frac_count(fc, n);
		free(idx);
		idx = malloc((n + 1) * sizeof(*idx));
		if (!idx) {
			err = af_error_set(AF_ERR_NOMEM, "out of memory");
			goto done;
		}
		for (k = 0; k < n; k++)
			idx[k] = (uint32_t)k;
		/* partial Fisher-Yates: the first d are deleted, the next u updated */
		for (k = 0; k < d + u; k++) {
			size_t j = k + (size_t)(sim_rng(&st) % (n - k));
			uint32_t t = idx[k];
			idx[k] = idx[j];
			idx[j] = t;
		}
		for (k = d; k < d + u; k++) {
			sim_slot *sl = &sc->slots[idx[k]];
			sl->version++;
			primary_id(id, sizeof(id), s, sc, sl->serial);
			json_object_array_add(updated, json_object_new_string(id));
		}
		for (k = 0; k < d; k++) {
			sim_slot *sl = &sc->slots[idx[k]];
			primary_id(id, sizeof(id), s, sc, sl->serial);
			json_object_array_add(deleted, json_object_new_string(id));
			sl->serial = 0; /* tombstone, compacted below */
		}
		size_t w = 0;
		for (k = 0; k < n; k++)
			if (sc->slots[k].serial != 0)
				sc->slots[w++] = sc->slots[k];
		sc->n = w;
		if (sc->n + c > sc->cap) {
			size_t cap = (sc->n + c) * 2;
			sim_slot *ns = realloc(sc->slots, cap * sizeof(*ns));
			if (!ns) {
				err = af_error_set(AF_ERR_NOMEM, "out of memory");
				goto done;
			}
			sc->slots = ns;
			sc->cap = cap;
		}
		for (k = 0; k < c; k++) {
			sim_slot *sl = &sc->slots[sc->n++];
			sl->serial = sc->next_serial++;
			sl->version = 0;
			primary_id(id, sizeof(id), s, sc, sl->serial);
			json_object_array_add(created, json_object_new_string(id));
		}
		nc += c;
		nu += u;
		nd += d;
	}
	json_object_object_add(res, "created", json_object_new_int64((int64_t)nc));
	json_object_object_add(res, "updated", json_object_new_int64((int64_t)nu));
	json_object_object_add(res, "deleted", json_object_new_int64((int64_t)nd));
	json_object_object_add(res, "created_ids", json_object_get(created));
	json_object_object_add(res, "updated_ids", json_object_get(updated));
	json_object_object_add(res, "deleted_ids", json_object_get(deleted));
	*out = json_object_get(res);
done:
	free(idx);
	json_object_put(created);
	json_object_put(updated);
	json_object_put(deleted);
	json_object_put(res);
	return err;
}

int sim_fleet_dump(af_sim *s, json_object **out, const char *product, const char *account,
                   const char *region)
{
	json_object *res = json_object_new_object(), *items = json_object_new_array();
	size_t count = 0;
	for (size_t i = 0; i < s->nscopes; i++) {
		sim_scope *sc = &s->scopes[i];
		const sim_account *a = &s->accounts[sc->account];
		const char *reg = a->regions[sc->region];
		if (!scope_match(s, sc, product, account, region))
			continue;
		for (size_t k = 0; k < sc->n; k++) {
			json_object *o = json_object_new_object();
			OS(o, "product", sim_product_name((int)sc->product));
			OS(o, "account", a->label);
			OS(o, "region", reg);
			OI(o, "version", sc->slots[k].version);
			if (sc->product == SIM_TAIR) {
				sim_tair t;
				sim_tair_gen(&t, s, sc, &sc->slots[k]);
				OS(o, "id", t.id);
				OS(o, "status", t.status);
				OS(o, "model", t.model);
				OI(o, "compute_units", t.cu);
			} else if (sc->product == SIM_TIONE) {
				sim_tione g;
				json_object *svcs = json_object_new_array();
				int replicas = 0;
				sim_tione_gen(&g, s, sc, &sc->slots[k]);
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
			} else {
				sim_holo h;
				sim_holo_gen(&h, s, sc, &sc->slots[k]);
				OS(o, "id", h.ai_id);
				OS(o, "holoInstanceId", h.holo_id);
				OS(o, "status", h.status);
				OI(o, "nodeCount", h.nodes);
				OI(o, "services", h.nsvc);
			}
			json_object_array_add(items, o);
			count++;
		}
	}
	json_object_object_add(res, "count", json_object_new_int64((int64_t)count));
	json_object_object_add(res, "items", items);
	*out = res;
	return 0;
}
