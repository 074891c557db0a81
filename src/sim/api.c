/* The three APIs: Tair KVCache, Hologres AI nodes, TI-ONE service groups. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/error.h"
#include "sim.h"

#define TAIR_MAX_PAGE   100 /* documented choice: larger PageSize -> InvalidParameter */
#define TIONE_MAX_LIMIT 100

static int parse_int(long *out, const char *s)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno)
		return -1;
	*out = v;
	return 0;
}

/* ---- Tair KVCache ---- */

typedef struct tair_filter {
	const char *status, *charge, *zone, *search, *ids;
	const char *tag_key[5], *tag_value[5];
	int ntags;
} tair_filter;

static bool tair_match(const sim_tair *t, const tair_filter *f)
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
	return true;
}

int sim_tair_handle(af_sim *s, sim_req *r, sim_resp *resp)
{
	long page = 1, size = 30;
	const char *v;
	tair_filter f = {0};
	json_object *o, *list;
	size_t total = 0, start;
	char name[32];
	sim_scope *sc;

	if ((v = sim_req_param(r, "PageNumber")) && (parse_int(&page, v) < 0 || page < 1))
		return sim_ali_error(resp, r, 400, false, "InvalidParameter",
		                     "The specified parameter PageNumber is not valid.");
	if ((v = sim_req_param(r, "PageSize")) &&
	    (parse_int(&size, v) < 0 || size < 1 || size > TAIR_MAX_PAGE))
		return sim_ali_error(resp, r, 400, false, "InvalidParameter",
		                     "The specified parameter PageSize is not valid (1-100).");
	f.status = sim_req_param(r, "InstanceStatus");
	f.charge = sim_req_param(r, "ChargeType");
	f.zone = sim_req_param(r, "ZoneId");
	f.search = sim_req_param(r, "SearchKey");
	f.ids = sim_req_param(r, "InstanceIds");
	for (int i = 1; i <= 5; i++) {
		snprintf(name, sizeof(name), "Tag.%d.Key", i);
		if (!(v = sim_req_param(r, name)))
			continue;
		f.tag_key[f.ntags] = v;
		snprintf(name, sizeof(name), "Tag.%d.Value", i);
		f.tag_value[f.ntags++] = sim_req_param(r, name);
	}
	o = json_object_new_object();
	list = json_object_new_array();
	json_object_object_add(o, "RequestId", json_object_new_string(r->request_id));
	json_object_object_add(o, "PageNumber", json_object_new_int64(page));
	json_object_object_add(o, "PageSize", json_object_new_int64(size));
	/* repeat_page: page 1's items, under the PageNumber asked for */
	start = sim_fault_start(r, (size_t)(page - 1) * (size_t)size);

	pthread_mutex_lock(&s->lock);
	sc = sim_fleet_scope(s, r->account, r->region, SIM_TAIR);
	bool filtered = f.status || f.charge || f.zone || f.search || f.ntags || f.ids;
	if (sc && !filtered) {
		/* the common case renders only the requested page */
		total = sc->n;
		for (size_t k = start; k < sc->n && k < start + (size_t)size; k++) {
			sim_tair t;
			sim_tair_gen(&t, s, sc, &sc->slots[k]);
			json_object_array_add(list, sim_tair_json(&t, r->region));
		}
	} else if (sc) {
		char *ids = f.ids ? strdup(f.ids) : NULL;
		for (size_t k = 0; k < sc->n; k++) {
			sim_tair t;
			sim_tair_gen(&t, s, sc, &sc->slots[k]);
			if (!tair_match(&t, &f))
				continue;
			if (ids) {
				bool hit = false;
				char *save = NULL, *tmp = strdup(f.ids);
				for (char *tok = strtok_r(tmp, ",", &save); tok && !hit;
				     tok = strtok_r(NULL, ",", &save))
					hit = strcmp(tok, t.id) == 0;
				free(tmp);
				if (!hit)
					continue;
			}
			if (total >= start && total < start + (size_t)size)
				json_object_array_add(list, sim_tair_json(&t, r->region));
			total++;
		}
		free(ids);
	}
	pthread_mutex_unlock(&s->lock);

	int64_t said = (int64_t)total;
	sim_fault_page(r, list, &said);
	json_object_object_add(o, "TotalCount", json_object_new_int64(said));
	json_object *inst = json_object_new_object();
	json_object_object_add(inst, "TairInferInstanceDTO", list);
	json_object_object_add(o, "Instances", inst);
	return sim_json_out(resp, 200, o);
}

/* ---- Hologres ---- */

/* The list has no paging, so it can be huge: render it from a snapshot of
 * the slots outside the lock, one item at a time, straight into the body. */
static int holo_list(af_sim *s, sim_req *r, sim_resp *resp, const sim_scope *sc)
{
	sim_scope snap;
	sim_slot *slots = NULL;
	size_t n;
	int err = 0;

	memset(&snap, 0, sizeof(snap));
	if (sc) {
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
		sim_holo h;
		json_object *o;
		sim_holo_gen(&h, s, &snap, &slots[k]);
		o = sim_holo_json(&h, r->region, false);
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
		sim_ali_error(resp, r, 500, true, "InternalError", "response too large");
	free(slots);
	return err;
}

int sim_holo_handle(af_sim *s, sim_req *r, sim_resp *resp)
{
	json_object *o = json_object_new_object();
	sim_scope *sc;

	json_object_object_add(o, "requestId", json_object_new_string(r->request_id));
	pthread_mutex_lock(&s->lock);
	sc = sim_fleet_scope(s, r->account, r->region, SIM_HOLO);
	if (r->action == SIM_ACT_HOLO_LIST) {
		json_object_put(o);
		return holo_list(s, r, resp, sc);
	} else {
		const sim_slot *sl = sc ? sim_fleet_lookup(s, sc, r->instance) : NULL;
		sim_holo h;
		if (!sl) {
			pthread_mutex_unlock(&s->lock);
			json_object_put(o);
			o = json_object_new_object();
			json_object_object_add(o, "code",
			                       json_object_new_string("InstanceNotFound"));
			json_object_object_add(
			    o, "message",
			    json_object_new_string("The specified instance is not found."));
			json_object_object_add(o, "requestId",
			                       json_object_new_string(r->request_id));
			return sim_json_out(resp, 404, o);
		}
		sim_holo_gen(&h, s, sc, sl);
		json_object *d = sim_holo_json(&h, r->region, true);
		sim_fault_item(r, d);
		json_object_object_foreach(d, key, val)
		{
			json_object_object_add(o, key, json_object_get(val));
		}
		json_object_put(d);
	}
	pthread_mutex_unlock(&s->lock);
	return sim_json_out(resp, 200, o);
}

/* ---- TI-ONE ---- */

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

static bool tione_match(const sim_tione *g, const tione_filter *f, size_t nf)
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
				const sim_tione_svc *v = &g->svc[k];
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

int sim_tione_handle(af_sim *s, sim_req *r, sim_resp *resp, json_object *body)
{
	int64_t offset = 0, limit = 20;
	json_object *v, *filters = NULL, *o, *in, *groups;
	tione_filter f[16];
	size_t nf = 0, total = 0;
	sim_scope *sc;

	if (json_object_object_get_ex(body, "Offset", &v)) {
		if (!json_object_is_type(v, json_type_int))
			return sim_tc_error(resp, r, "InvalidParameter",
			                    "Offset must be an integer.");
		offset = json_object_get_int64(v);
	}
	if (json_object_object_get_ex(body, "Limit", &v)) {
		if (!json_object_is_type(v, json_type_int))
			return sim_tc_error(resp, r, "InvalidParameter",
			                    "Limit must be an integer.");
		limit = json_object_get_int64(v);
	}
	if (offset < 0 || limit < 0 || limit > TIONE_MAX_LIMIT)
		return sim_tc_error(resp, r, "InvalidParameterValue",
		                    "Offset must be >= 0 and Limit within 0-100.");
	if (json_object_object_get_ex(body, "Filters", &filters) && filters) {
		if (!json_object_is_type(filters, json_type_array))
			return sim_tc_error(resp, r, "InvalidParameter",
			                    "Filters must be an array.");
		for (size_t i = 0; i < json_object_array_length(filters); i++) {
			json_object *fo = json_object_array_get_idx(filters, i), *x;
			const char *name = NULL;
			int idx = -1;
			if (nf >= 16)
				return sim_tc_error(resp, r, "InvalidParameterValue",
				                    "Too many filters.");
			if (json_object_object_get_ex(fo, "Name", &x))
				name = json_object_get_string(x);
			for (int k = 0; name && k < 7; k++)
				if (strcmp(name, tfilter_names[k]) == 0)
					idx = k;
			if (idx < 0 || !json_object_object_get_ex(fo, "Values", &x) ||
			    !json_object_is_type(x, json_type_array))
				return sim_tc_error(resp, r, "InvalidParameterValue",
				                    "Unsupported filter name or missing Values.");
			f[nf].name = idx;
			f[nf].values = x;
			f[nf].fuzzy = json_object_object_get_ex(fo, "Fuzzy", &x) &&
			              json_object_get_boolean(x);
			f[nf].negative = json_object_object_get_ex(fo, "Negative", &x) &&
			                 json_object_get_boolean(x);
			nf++;
		}
	}
	o = json_object_new_object();
	in = json_object_new_object();
	groups = json_object_new_array();
	offset = (int64_t)sim_fault_start(r, (size_t)offset); /* repeat_page: Offset 0 */
	pthread_mutex_lock(&s->lock);
	sc = sim_fleet_scope(s, r->account, r->region, SIM_TIONE);
	if (sc && nf == 0) {
		total = sc->n;
		for (size_t k = (size_t)offset; k < sc->n && k < (size_t)(offset + limit); k++) {
			sim_tione g;
			sim_tione_gen(&g, s, sc, &sc->slots[k]);
			json_object_array_add(groups, sim_tione_json(&g, r->region));
		}
	} else if (sc) {
		for (size_t k = 0; k < sc->n; k++) {
			sim_tione g;
			sim_tione_gen(&g, s, sc, &sc->slots[k]);
			if (!tione_match(&g, f, nf))
				continue;
			if (total >= (size_t)offset && total < (size_t)(offset + limit))
				json_object_array_add(groups, sim_tione_json(&g, r->region));
			total++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	int64_t said = (int64_t)total;
	sim_fault_page(r, groups, &said);
	json_object_object_add(in, "ServiceGroups", groups);
	json_object_object_add(in, "TotalCount", json_object_new_int64(said));
	json_object_object_add(in, "RequestId", json_object_new_string(r->request_id));
	json_object_object_add(o, "Response", in);
	return sim_json_out(resp, 200, o);
}
