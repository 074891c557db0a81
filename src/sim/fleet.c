/*
 * The simulated fleet. Each (account, region, product) scope holds only a
 * sorted array of {serial, version}; every field of an item is derived on
 * demand from hash(seed, scope, serial) (stable fields) and
 * hash(.., version) (fields that updates change). 100k items cost 800 KB and
 * no start-up time, and the same seed always gives the same fleet.
 *
 * This file knows no product: the generators are in the product files, and
 * what a scope holds, how its ids look and what the control API reports of
 * an item come from the product's descriptor.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/error.h"
#include "sim.h"

static uint64_t seed_mask(const af_sim *s)
{
	return sim_mix64(s->opt.seed * 0x2545f4914f6cdd1dULL + 7);
}

uint64_t sim_fleet_idval(const af_sim *s, const sim_scope *sc, uint32_t serial)
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

static int scope_add(af_sim *s, int account, int region, int product, int items)
{
	sim_scope *n = realloc(s->scopes, (s->nscopes + 1) * sizeof(*n));
	if (!n)
		return af_error_oom();
	s->scopes = n;
	n = &s->scopes[s->nscopes++];
	memset(n, 0, sizeof(*n));
	n->account = account;
	n->region = region;
	n->product = product;
	n->key = ((uint32_t)(account + 1) << 12) | ((uint32_t)region << 4) | (uint32_t)product;
	n->cap = items > 0 ? (size_t)items : 1;
	n->slots = malloc(n->cap * sizeof(sim_slot));
	if (!n->slots)
		return af_error_oom();
	for (int i = 0; i < items; i++) {
		n->slots[i].serial = (uint32_t)i + 1;
		n->slots[i].version = 0;
	}
	n->n = (size_t)items;
	n->next_serial = (uint32_t)items + 1;
	return 0;
}

/* Every account gets, in each of its regions, a scope of every product of
 * its provider, in registry order. */
int sim_fleet_init(af_sim *s)
{
	int err = 0;
	for (size_t a = 0; a < s->naccounts; a++) {
		sim_account *acc = &s->accounts[a];
		int items = acc->items > 0 ? acc->items : s->opt.items;
		for (int r = 0; r < acc->nregions; r++) {
			for (size_t p = 0; p < sim_product_count(); p++) {
				const char *provider = sim_product_at(p)->product->provider;
				if (strcmp(provider, acc->provider) == 0 &&
				    (err = scope_add(s, (int)a, r, (int)p, items)) < 0)
					return err;
			}
		}
	}
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

sim_scope *sim_fleet_scope(af_sim *s, int account, const char *region, int product)
{
	int r;
	if (account < 0 || (size_t)account >= s->naccounts)
		return NULL;
	r = sim_account_region(&s->accounts[account], region);
	if (r < 0)
		return NULL;
	for (size_t i = 0; i < s->nscopes; i++)
		if (s->scopes[i].account == account && s->scopes[i].region == r &&
		    s->scopes[i].product == product)
			return &s->scopes[i];
	return NULL;
}

const char *sim_scope_region(const af_sim *s, const sim_scope *sc)
{
	return s->accounts[sc->account].regions[sc->region];
}

/* ---- what the generators share ---- */

const char *const sim_models[] = {"Qwen3-32B",     "Qwen2.5-72B-Instruct", "DeepSeek-V3",
                                  "DeepSeek-R1",   "DeepSeek-OCR",         "GLM-4.5",
                                  "Llama-3.1-70B", "Llama-3.1-8B",         "Qwen3-Embedding-8B"};
const size_t sim_nmodels = sizeof(sim_models) / sizeof(sim_models[0]);

const char *sim_pick(uint64_t *st, const char *const *arr, size_t n)
{
	return arr[sim_rng(st) % n];
}

uint64_t sim_item_state(const af_sim *s, const sim_scope *sc, const sim_slot *sl)
{
	return sim_hash(s->opt.seed, ((uint64_t)sc->key << 32) | sl->serial);
}

void sim_fleet_id(char *out, size_t n, const af_sim *s, const sim_scope *sc, uint32_t serial)
{
	char b[14];
	sim_base36(b, sim_fleet_idval(s, sc, serial));
	snprintf(out, n, "%s%s", sim_product_at((size_t)sc->product)->id_prefix, b);
}

void sim_fleet_render(json_object *list, const af_sim *s, const sim_scope *sc, size_t start,
                      size_t count)
{
	const sim_product *p = sim_product_at((size_t)sc->product);
	for (size_t k = start; k < sc->n && k < start + count; k++)
		json_object_array_add(list, p->render(s, sc, &sc->slots[k]));
}

/* ---- lookups, mutation, dump ---- */

const sim_slot *sim_fleet_lookup(const af_sim *s, const sim_scope *sc, const char *id)
{
	const char *prefix = sim_product_at((size_t)sc->product)->id_prefix;
	uint64_t v;
	size_t pl = strlen(prefix);
	if (strncmp(id, prefix, pl) != 0 || sim_unbase36(&v, id + pl) < 0)
		return NULL;
	return find_id(s, sc, v);
}

/* The id the control API reports. */
static void public_id(char *out, size_t n, const af_sim *s, const sim_scope *sc, uint32_t serial)
{
	const sim_product *p = sim_product_at((size_t)sc->product);
	if (p->public_id)
		p->public_id(out, n, s, sc, serial);
	else
		sim_fleet_id(out, n, s, sc, serial);
}

static bool scope_match(const af_sim *s, const sim_scope *sc, const char *product,
                        const char *account, const char *region)
{
	const sim_account *a = &s->accounts[sc->account];
	if (product && *product && sim_product_index(product) != sc->product)
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

/* One POST /_sim/mutate: the fractions asked for and the ids it touched. */
typedef struct mutation {
	double create, update, delete;
	uint64_t seed;
	json_object *created, *updated, *deleted;
	size_t nc, nu, nd;
	uint32_t *idx; /* scratch: a permutation of one scope's slots */
} mutation;

static void note_id(json_object *ids, const af_sim *s, const sim_scope *sc, uint32_t serial)
{
	char id[64];
	public_id(id, sizeof(id), s, sc, serial);
	json_object_array_add(ids, json_object_new_string(id));
}

/* Deletes, updates and creates round(f * n) items of one scope, chosen from
 * (seed, scope key). */
static int mutate_scope(af_sim *s, sim_scope *sc, mutation *m)
{
	size_t n = sc->n, d, u, c, k, w;
	uint64_t st = sim_hash(m->seed, sc->key);

	d = frac_count(m->delete, n);
	u = frac_count(m->update, n);
	if (d + u > n)
		u = n - d;
	c = frac_count(m->create, n);
	free(m->idx);
	if (!(m->idx = malloc((n + 1) * sizeof(*m->idx))))
		return af_error_oom();
	for (k = 0; k < n; k++)
		m->idx[k] = (uint32_t)k;
	/* partial Fisher-Yates: the first d are deleted, the next u updated */
	for (k = 0; k < d + u; k++) {
		size_t j = k + (size_t)(sim_rng(&st) % (n - k));
		uint32_t t = m->idx[k];
		m->idx[k] = m->idx[j];
		m->idx[j] = t;
	}
	for (k = d; k < d + u; k++) {
		sim_slot *sl = &sc->slots[m->idx[k]];
		sl->version++;
		note_id(m->updated, s, sc, sl->serial);
	}
	for (k = 0; k < d; k++) {
		sim_slot *sl = &sc->slots[m->idx[k]];
		note_id(m->deleted, s, sc, sl->serial);
		sl->serial = 0; /* tombstone, compacted below */
	}
	for (k = w = 0; k < n; k++)
		if (sc->slots[k].serial != 0)
			sc->slots[w++] = sc->slots[k];
	sc->n = w;
	if (sc->n + c > sc->cap) {
		size_t cap = (sc->n + c) * 2;
		sim_slot *ns = realloc(sc->slots, cap * sizeof(*ns));
		if (!ns)
			return af_error_oom();
		sc->slots = ns;
		sc->cap = cap;
	}
	for (k = 0; k < c; k++) {
		sim_slot *sl = &sc->slots[sc->n++];
		sl->serial = sc->next_serial++;
		sl->version = 0;
		note_id(m->created, s, sc, sl->serial);
	}
	m->nc += c;
	m->nu += u;
	m->nd += d;
	return 0;
}

int sim_fleet_mutate(af_sim *s, json_object **out, json_object *req)
{
	mutation m = {
	    .create = jnum(req, "create"),
	    .update = jnum(req, "update"),
	    .delete = jnum(req, "delete"),
	    .seed = (uint64_t)jnum(req, "seed"),
	    .created = json_object_new_array(),
	    .updated = json_object_new_array(),
	    .deleted = json_object_new_array(),
	};
	const char *product = jstring(req, "product"), *account = jstring(req, "account"),
	           *region = jstring(req, "region");
	json_object *res = json_object_new_object();
	int err = 0;

	if (product && sim_product_index(product) < 0) {
		err = af_error_set(AF_ERR_PARAM, "unknown product");
		goto done;
	}
	for (size_t i = 0; i < s->nscopes; i++)
		if (scope_match(s, &s->scopes[i], product, account, region) &&
		    (err = mutate_scope(s, &s->scopes[i], &m)) < 0)
			goto done;
	json_object_object_add(res, "created", json_object_new_int64((int64_t)m.nc));
	json_object_object_add(res, "updated", json_object_new_int64((int64_t)m.nu));
	json_object_object_add(res, "deleted", json_object_new_int64((int64_t)m.nd));
	json_object_object_add(res, "created_ids", json_object_get(m.created));
	json_object_object_add(res, "updated_ids", json_object_get(m.updated));
	json_object_object_add(res, "deleted_ids", json_object_get(m.deleted));
	*out = json_object_get(res);
done:
	free(m.idx);
	json_object_put(m.created);
	json_object_put(m.updated);
	json_object_put(m.deleted);
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
		const sim_product *p = sim_product_at((size_t)sc->product);
		if (!scope_match(s, sc, product, account, region))
			continue;
		for (size_t k = 0; k < sc->n; k++) {
			json_object *o = json_object_new_object();
			sim_set_str(o, "product", p->product->name);
			sim_set_str(o, "account", s->accounts[sc->account].label);
			sim_set_str(o, "region", sim_scope_region(s, sc));
			sim_set_int(o, "version", sc->slots[k].version);
			p->truth(o, s, sc, &sc->slots[k]);
			json_object_array_add(items, o);
			count++;
		}
	}
	json_object_object_add(res, "count", json_object_new_int64((int64_t)count));
	json_object_object_add(res, "items", items);
	*out = res;
	return 0;
}
