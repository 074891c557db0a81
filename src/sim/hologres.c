/*
 * Hologres AI nodes, ListInstanceModel and GetInstanceModel (2022-06-01,
 * ROA): the generated node with its model services, its JSON in the list
 * and in the detail, the two handlers and the product's descriptor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/error.h"
#include "sim.h"

extern const af_product af_product_hologres; /* src/collect/hologres.c */

#define OS(obj, k, v) sim_set_str(obj, k, v)
#define OI(obj, k, v) sim_set_int(obj, k, v)

/* One generated node: compact, rendered on demand. */
typedef struct holo_svc {
	char model_name[40], model_type[32], provider[16], status[16], task[16], version[12];
	char message[16], api_key[40];
	int cpu, gpu, gpu_mem, mem, count;
} holo_svc;
typedef struct holo_item {
	char ai_id[48], holo_id[32], holo_name[48], spec[32], rtype[12], status[20], charge[12];
	char commodity[40], expire[48];
	int cpu, cpu_used, gpu, gpu_used, gpu_mem, gpu_mem_used, mem, mem_used, nodes;
	bool auto_renew;
	int nsvc;
	holo_svc svc[3];
} holo_item;

/* The AI node id (aiInstanceId, what the control API reports): derived
 * from the decodable holoInstanceId, but not decodable itself (lookups go
 * by holoInstanceId). */
static void holo_ai_id(char *out, size_t n, const af_sim *s, const sim_scope *sc, uint32_t serial)
{
	char b[14];
	sim_base36(b, sim_mix64(sim_fleet_idval(s, sc, serial) ^ 0x5bd1e995u));
	snprintf(out, n, "hologram_aicombo_public_cn-%s", b);
}

static const struct holo_spec {
	const char *name, *type;
	int cpu, mem, gpu, gpu_mem;
} specs[] = {
    {"small-8core-30G-24G", "small", 8, 30, 1, 24},
    {"middle-32core-128G-96G", "middle", 32, 128, 4, 96},
    {"large-64core-256G-320G", "large", 64, 256, 4, 320},
};

static void holo_gen(holo_item *h, const af_sim *s, const sim_scope *sc, const sim_slot *sl)
{
	static const char *nstat[] = {"ResourceReady", "ResourceReady", "ResourceReady",
	                              "ResourceReady", "Creating",      "Stopped",
	                              "Abnormal"};
	static const char *mtypes[] = {"qwen3.5-plus", "deepseek-v3", "glm-4.5", "llama-3.1-8b",
	                               "qwen3-embedding-8b"};
	static const char *providers[] = {"bailian", "modelscope", "huggingface"};
	static const char *tasks[] = {"chat", "embedding", "rerank"};
	static const char *sstat[] = {"Running", "Running", "Running", "Deploying", "Failed"};
	uint64_t st = sim_item_state(s, sc, sl), mt = sim_hash(st, sl->version + 1);
	const struct holo_spec *sp = &specs[sim_rng(&st) % 3];
	int64_t exp = SIM_T0 + 400 * 86400 + (int64_t)(sim_rng(&st) % (365 * 86400));
	char when[32];

	memset(h, 0, sizeof(*h));
	sim_fleet_id(h->holo_id, sizeof(h->holo_id), s, sc, sl->serial);
	holo_ai_id(h->ai_id, sizeof(h->ai_id), s, sc, sl->serial);
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
	sim_fmt_time(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", exp);
	snprintf(h->expire, sizeof(h->expire), "%s.%03uZ", when, (unsigned)(sim_rng(&st) % 1000));
	h->auto_renew = sim_rng(&st) % 2;
	/* mutable part */
	snprintf(h->status, sizeof(h->status), "%s", SIM_PICK(&mt, nstat));
	h->nodes = 1 + (int)(sim_rng(&mt) % 4);
	h->cpu = sp->cpu * h->nodes;
	h->mem = sp->mem * h->nodes;
	h->gpu = sp->gpu * h->nodes;
	h->gpu_mem = sp->gpu_mem * h->nodes;
	h->nsvc = (int)(sim_rng(&mt) % 4);
	for (int i = 0; i < h->nsvc; i++) {
		holo_svc *v = &h->svc[i];
		uint64_t ss = sim_hash(st, (uint64_t)i + 200);
		const char *type = SIM_PICK(&ss, mtypes);

		snprintf(v->model_type, sizeof(v->model_type), "%s", type);
		snprintf(v->model_name, sizeof(v->model_name), "%.24s_svc_%d", type, i + 1);
		for (char *p = v->model_name; *p; p++)
			if (*p == '-' || *p == '.')
				*p = '_';
		snprintf(v->provider, sizeof(v->provider), "%s", SIM_PICK(&ss, providers));
		snprintf(v->task, sizeof(v->task), "%s", SIM_PICK(&ss, tasks));
		/* a fake key, but shaped like the real thing: it must never leak */
		snprintf(v->api_key, sizeof(v->api_key), "sk-%016llx%016llx",
		         (unsigned long long)sim_rng(&ss), (unsigned long long)sim_rng(&ss));
		snprintf(v->status, sizeof(v->status), "%s", SIM_PICK(&mt, sstat));
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

static json_object *holo_json(const holo_item *h, const char *region, bool detail)
{
	json_object *o = json_object_new_object();
	OI(o, "cpu", h->cpu);
	OI(o, "gpu", h->gpu);
	OI(o, "memory", h->mem);
	OI(o, "gpuMemory", h->gpu_mem);
	if (detail) {
		json_object *list = json_object_new_array();
		for (int i = 0; i < h->nsvc; i++) {
			const holo_svc *v = &h->svc[i];
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

static json_object *holo_render(const af_sim *s, const sim_scope *sc, const sim_slot *sl)
{
	holo_item h;
	holo_gen(&h, s, sc, sl);
	return holo_json(&h, sim_scope_region(s, sc), false);
}

static void holo_truth(json_object *o, const af_sim *s, const sim_scope *sc, const sim_slot *sl)
{
	holo_item h;
	holo_gen(&h, s, sc, sl);
	OS(o, "id", h.ai_id);
	OS(o, "holoInstanceId", h.holo_id);
	OS(o, "status", h.status);
	OI(o, "nodeCount", h.nodes);
	OI(o, "services", h.nsvc);
}

/* ---- ListInstanceModel ---- */

/* The list has no paging, so it can be huge: render it from a snapshot of
 * the slots outside the lock, one item at a time, straight into the body. */
static int holo_list(af_sim *s, sim_req *r, sim_resp *resp)
{
	sim_scope snap;
	const sim_scope *sc;
	sim_slot *slots = NULL;
	size_t n;
	int err = 0;

	memset(&snap, 0, sizeof(snap));
	pthread_mutex_lock(&s->lock);
	if ((sc = sim_fleet_scope(s, r->account, r->region, r->product))) {
		snap = *sc;
		slots = malloc((sc->n + 1) * sizeof(*slots));
		if (slots)
			memcpy(slots, sc->slots, sc->n * sizeof(*slots));
		snap.slots = slots;
	}
	pthread_mutex_unlock(&s->lock);
	if (sc && !slots) {
		err = AF_ERR_NOMEM;
		goto done;
	}
	af_buf_reset(&resp->body);
	resp->status = 200;
	if ((err = af_buf_printf(&resp->body, "{\"requestId\":\"%s\",\"instanceModelList\":[",
	                         r->request_id)) < 0)
		goto done;
	/* short_page, empty_page: fewer nodes, and no total to say so */
	n = sim_fault_keep(r, snap.n);
	for (size_t k = 0; k < n; k++) {
		json_object *o = holo_render(s, &snap, &slots[k]);
		if (k == 0)
			sim_fault_item(r, o);
		if (k > 0)
			err = af_buf_puts(&resp->body, ",");
		if (err == 0)
			err = af_buf_puts(&resp->body, json_object_to_json_string_ext(
			                                   o, JSON_C_TO_STRING_PLAIN |
			                                          JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
		if (err < 0)
			goto done;
	}
	err = af_buf_puts(&resp->body, "]}");
done:
	if (err < 0)
		sim_error(resp, r, 500, "InternalError", "response too large");
	free(slots);
	return err;
}

/* ---- GetInstanceModel ---- */

static int holo_get(af_sim *s, sim_req *r, sim_resp *resp)
{
	json_object *o, *d;
	const sim_slot *sl;
	sim_scope *sc;
	holo_item h;

	pthread_mutex_lock(&s->lock);
	sc = sim_fleet_scope(s, r->account, r->region, r->product);
	sl = sc ? sim_fleet_lookup(s, sc, r->instance) : NULL;
	if (!sl) {
		pthread_mutex_unlock(&s->lock);
		o = json_object_new_object();
		OS(o, "code", "InstanceNotFound");
		OS(o, "message", "The specified instance is not found.");
		OS(o, "requestId", r->request_id);
		return sim_json_out(resp, 404, o);
	}
	holo_gen(&h, s, sc, sl);
	pthread_mutex_unlock(&s->lock);
	o = json_object_new_object();
	OS(o, "requestId", r->request_id);
	d = holo_json(&h, r->region, true);
	sim_fault_item(r, d);
	json_object_object_foreach(d, key, val)
	{
		json_object_object_add(o, key, json_object_get(val));
	}
	json_object_put(d);
	return sim_json_out(resp, 200, o);
}

static const sim_action holo_actions[] = {
    {
        .name = "ListInstanceModel",
        .method = "GET",
        .path = "rpc/listInstanceModel",
        .fixture = "hologres_list_example.json",
        .handle = holo_list,
        .list = true,
        .huge_number = "gpu",
        .long_name = "holoInstanceName",
    },
    {
        .name = "GetInstanceModel",
        .method = "GET",
        .path = "{holoInstanceId}/getInstanceModel",
        .fixture = "hologres_get_example.json",
        .handle = holo_get,
        .huge_number = "gpu",
        /* the detail has no name: its first model service's */
        .long_name = "modelServiceList/modelName",
    },
};

_Static_assert(sizeof(holo_actions) / sizeof(holo_actions[0]) <= SIM_ACTIONS_MAX,
               "room in the stats");

const sim_product sim_product_hologres = {
    .product = &af_product_hologres,
    .style = SIM_ACS3_ROA,
    .version = "2022-06-01",
    .roa_root = "/api/v1/instances/",
    .roa_host = "hologram.",
    .actions = holo_actions,
    .nactions = sizeof(holo_actions) / sizeof(holo_actions[0]),
    .id_prefix = "hgpostcn-cn-",
    .public_id = holo_ai_id,
    .rate_limit = 0, /* Alibaba publishes no figure for these APIs */
    .render = holo_render,
    .truth = holo_truth,
};
