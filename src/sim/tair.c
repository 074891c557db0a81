/*
 * Tair KVCache DescribeTairKVCacheInferInstances (2015-01-01, RPC): the
 * generated instance, its JSON as the API page shows it, the handler with
 * its paging and filters, and the product's descriptor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

extern const af_product af_product_tair; /* src/collect/tair.c */

#define TAIR_DEFAULT_PAGE 30

/* One generated instance: compact, rendered on demand. */
typedef struct tair_item {
	char id[32], name[48], status[16], klass[32], model[40], charge[16], zone[40], vnode[24];
	char vpc[32], vsw[32], ip[20], rg[32], ack[40], create[24], end[24], destroy[24];
	int services, cu, vnodes, fixed, elastic;
	int64_t capacity;
	int ntags;
	struct {
		const char *key;
		char value[24];
		bool numeric;
	} tags[3];
} tair_item;

static void tair_gen(tair_item *t, const af_sim *s, const sim_scope *sc, const sim_slot *sl)
{
	static const char *statuses[] = {"Normal", "Normal",   "Normal",   "Normal",  "Normal",
	                                 "Normal", "Creating", "Changing", "Stopped", "Abnormal"};
	static const char *tagkeys[] = {"env", "team", "thread", "priority", "owner"};
	static const char *envs[] = {"prod", "staging", "dev"};
	static const char *teams[] = {"search", "ads", "推荐", "llm-platform"};
	uint64_t st = sim_item_state(s, sc, sl), mt = sim_hash(st, sl->version + 1);
	const char *region = sim_scope_region(s, sc);
	int64_t created = SIM_T0 + (int64_t)(sim_rng(&st) % (600 * 86400));
	uint32_t serial = sl->serial;

	memset(t, 0, sizeof(*t));
	sim_fleet_id(t->id, sizeof(t->id), s, sc, serial);
	if (sim_rng(&st) % 8 == 0)
		snprintf(t->name, sizeof(t->name), "推理缓存-%u", serial);
	else
		snprintf(t->name, sizeof(t->name), "kvcache-%u", serial);
	snprintf(t->charge, sizeof(t->charge), "%s", sim_rng(&st) % 3 ? "PostPaid" : "PrePaid");
	snprintf(t->zone, sizeof(t->zone), "%s-%c", region, (char)('a' + sim_rng(&st) % 8));
	sim_fmt_time(t->create, sizeof(t->create), "%Y-%m-%dT%H:%MZ", created);
	if (t->charge[1] == 'r')
		sim_fmt_time(t->end, sizeof(t->end), "%Y-%m-%dT%H:%M:%SZ", created + 365 * 86400);
	/* the API page's quirk: DestroyTime carries a trailing newline */
	if (sim_rng(&st) % 3 == 0)
		sim_fmt_time(t->destroy, sizeof(t->destroy), "%Y-%m-%dT%H:%MZ\n", created);
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
			snprintf(t->tags[i].value, sizeof(t->tags[i].value), "%s",
			         SIM_PICK(&st, envs));
		} else if (k == 1) {
			snprintf(t->tags[i].value, sizeof(t->tags[i].value), "%s",
			         SIM_PICK(&st, teams));
		} else {
			snprintf(t->tags[i].value, sizeof(t->tags[i].value), "u%u",
			         (unsigned)(sim_rng(&st) % 100));
		}
	}
	/* mutable part */
	snprintf(t->status, sizeof(t->status), "%s", SIM_PICK(&mt, statuses));
	snprintf(t->model, sizeof(t->model), "%s", sim_models[sim_rng(&mt) % sim_nmodels]);
	t->cu = 1 << (sim_rng(&mt) % 4);
	snprintf(t->klass, sizeof(t->klass), "kvcache.cu.g4b.%d", t->cu);
	t->services = 1 + (int)(sim_rng(&mt) % 3);
	t->vnodes = 1 + (int)(sim_rng(&mt) % 4);
	t->fixed = t->vnodes;
	t->elastic = (int)(sim_rng(&mt) % 2);
	t->capacity = 256LL * t->cu;
}

static json_object *tair_json(const tair_item *t, const char *region)
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

static json_object *tair_render(const af_sim *s, const sim_scope *sc, const sim_slot *sl)
{
	tair_item t;
	tair_gen(&t, s, sc, sl);
	return tair_json(&t, sim_scope_region(s, sc));
}

static void tair_truth(json_object *o, const af_sim *s, const sim_scope *sc, const sim_slot *sl)
{
	tair_item t;
	tair_gen(&t, s, sc, sl);
	sim_set_str(o, "id", t.id);
	sim_set_str(o, "status", t.status);
	sim_set_str(o, "model", t.model);
	sim_set_int(o, "compute_units", t.cu);
}

/* ---- DescribeTairKVCacheInferInstances ---- */
typedef struct tair_filter {
	const char *status, *charge, *zone, *search, *ids;
	const char *tag_key[5], *tag_value[5];
	int ntags;
} tair_filter;

static bool tair_has_id(const char *ids, const char *id)
{
	bool hit = false;
	char *save = NULL, *tmp = strdup(ids);
	for (char *tok = strtok_r(tmp, ",", &save); tok && !hit; tok = strtok_r(NULL, ",", &save))
		hit = strcmp(tok, id) == 0;
	free(tmp);
	return hit;
}

static bool tair_match(const tair_item *t, const tair_filter *f)
{
	if (f->status && strcmp(f->status, t->status) != 0)
		return false;
	if (f->charge && strcmp(f->charge, t->charge) != 0)
		return false;
	if (f->zone && strcmp(f->zone, t->zone) != 0)
		return false;
	if (f->search && !strstr(t->name, f->search) && !strstr(t->id, f->search))
		return false;
	for (int i = 0; i < f->ntags; i++) {
		bool hit = false;
		for (int j = 0; j < t->ntags && !hit; j++)
			hit = strcmp(t->tags[j].key, f->tag_key[i]) == 0 &&
			      (!f->tag_value[i] || strcmp(t->tags[j].value, f->tag_value[i]) == 0);
		if (!hit)
			return false;
	}
	return !f->ids || tair_has_id(f->ids, t->id);
}

static bool tair_filtered(const tair_filter *f)
{
	return f->status || f->charge || f->zone || f->search || f->ntags || f->ids;
}

static void tair_filter_parse(tair_filter *f, const sim_req *r)
{
	char name[32];
	const char *v;

	memset(f, 0, sizeof(*f));
	f->status = sim_req_param(r, "InstanceStatus");
	f->charge = sim_req_param(r, "ChargeType");
	f->zone = sim_req_param(r, "ZoneId");
	f->search = sim_req_param(r, "SearchKey");
	f->ids = sim_req_param(r, "InstanceIds");
	for (int i = 1; i <= 5; i++) {
		snprintf(name, sizeof(name), "Tag.%d.Key", i);
		if (!(v = sim_req_param(r, name)))
			continue;
		f->tag_key[f->ntags] = v;
		snprintf(name, sizeof(name), "Tag.%d.Value", i);
		f->tag_value[f->ntags++] = sim_req_param(r, name);
	}
}

/* The page [start, start + size) of the scope's instances that pass the
 * filter into list; the number that pass. Caller locks. */
static size_t tair_list(json_object *list, const af_sim *s, const sim_scope *sc,
                        const tair_filter *f, size_t start, size_t size)
{
	size_t total = 0;
	if (!tair_filtered(f)) {
		/* the common case renders only the requested page */
		sim_fleet_render(list, s, sc, start, size);
		return sc->n;
	}
	for (size_t k = 0; k < sc->n; k++) {
		tair_item t;
		tair_gen(&t, s, sc, &sc->slots[k]);
		if (!tair_match(&t, f))
			continue;
		if (total >= start && total < start + size)
			json_object_array_add(list, tair_json(&t, sim_scope_region(s, sc)));
		total++;
	}
	return total;
}

static int tair_describe(af_sim *s, sim_req *r, sim_resp *resp)
{
	long page = 1, size = TAIR_DEFAULT_PAGE;
	const char *v;
	tair_filter f;
	json_object *o, *list, *inst;
	size_t total = 0, start;
	sim_scope *sc;

	if ((v = sim_req_param(r, "PageNumber")) && (sim_parse_long(&page, v) < 0 || page < 1))
		return sim_error(resp, r, 400, "InvalidParameter",
		                 "The specified parameter PageNumber is not valid.");
	if ((v = sim_req_param(r, "PageSize")) &&
	    (sim_parse_long(&size, v) < 0 || size < 1 || size > af_product_tair.max_page_size))
		return sim_error(resp, r, 400, "InvalidParameter",
		                 "The specified parameter PageSize is not valid (1-100).");
	tair_filter_parse(&f, r);
	o = json_object_new_object();
	list = json_object_new_array();
	json_object_object_add(o, "RequestId", json_object_new_string(r->request_id));
	json_object_object_add(o, "PageNumber", json_object_new_int64(page));
	json_object_object_add(o, "PageSize", json_object_new_int64(size));
	/* repeat_page: page 1's items, under the PageNumber asked for */
	start = sim_fault_start(r, (size_t)(page - 1) * (size_t)size);

	pthread_mutex_lock(&s->lock);
	if ((sc = sim_fleet_scope(s, r->account, r->region, r->product)))
		total = tair_list(list, s, sc, &f, start, (size_t)size);
	pthread_mutex_unlock(&s->lock);

	int64_t said = (int64_t)total;
	sim_fault_page(r, list, &said);
	json_object_object_add(o, "TotalCount", json_object_new_int64(said));
	inst = json_object_new_object();
	json_object_object_add(inst, "TairInferInstanceDTO", list);
	json_object_object_add(o, "Instances", inst);
	return sim_json_out(resp, 200, o);
}

/* The page scripted faults match: PageNumber as sent (default 1). */
static int tair_page(const sim_req *r)
{
	const char *pg = sim_req_param(r, "PageNumber");
	return pg ? atoi(pg) : 1;
}

static const sim_action tair_actions[] = {
    {
        .name = "DescribeTairKVCacheInferInstances",
        .method = "GET",
        .fixture = "tair_describe_example.json",
        .handle = tair_describe,
        .page = tair_page,
        .list = true,
        .huge_number = "Capacity",
        .long_name = "InstanceName",
    },
};

_Static_assert(sizeof(tair_actions) / sizeof(tair_actions[0]) <= SIM_ACTIONS_MAX,
               "room in the stats");

const sim_product sim_product_tair = {
    .product = &af_product_tair,
    .style = SIM_ACS3_RPC,
    .version = "2015-01-01",
    .actions = tair_actions,
    .nactions = sizeof(tair_actions) / sizeof(tair_actions[0]),
    .id_prefix = "tk-",
    .default_page_size = TAIR_DEFAULT_PAGE,
    .rate_limit = 0, /* Alibaba publishes no figure for this API */
    .render = tair_render,
    .truth = tair_truth,
};
