/* Faults (scripted and random), rate limits, latency and the counters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/error.h"
#include "sim.h"

void sim_stats_count(sim_counter **arr, size_t *n, const char *key)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*arr)[i].key, key) == 0) {
			(*arr)[i].n++;
			return;
		}
	sim_counter *na = realloc(*arr, (*n + 1) * sizeof(*na));
	if (!na)
		return;
	*arr = na;
	na[*n].key = strdup(key);
	na[*n].n = na[*n].key ? 1 : 0;
	if (na[*n].key)
		(*n)++;
}

static bool str_match(const char *want, const char *have)
{
	return !want || (have && strcmp(want, have) == 0);
}

/*
 * Which answers a kind can spoil. The page faults need a list; those about
 * TotalCount or page numbers a paged one. A short, empty or repeated page
 * hits a page after the first unless the fault names a page: a short first
 * page looks like a small scope, and page 1 again is page 1. An unpaged
 * list has no pages: short_page and empty_page cut it.
 */
static bool fault_applies(int kind, const sim_action *a, int page, bool any_page)
{
	bool paged = a->page != NULL;

	switch (kind) {
	case SIM_F_SHORT_PAGE:
	case SIM_F_EMPTY_PAGE:
		if (!paged)
			return a->list;
		return !any_page || page != 1;
	case SIM_F_REPEAT_PAGE:
		return paged && (!any_page || page != 1);
	case SIM_F_LYING_TOTAL:
		return paged;
	default:
		return true;
	}
}

/* The first scripted fault matching the request, consumed; caller locks. */
static int scripted(af_sim *s, const sim_req *r, int *hang_ms, int64_t *arg)
{
	const char *label = s->accounts[r->account].label;
	for (size_t i = 0; i < s->nfaults; i++) {
		sim_fault *f = &s->faults[i];
		if (f->times == 0 || (f->product >= 0 && f->product != r->product) ||
		    !str_match(f->account, label) || !str_match(f->region, r->region) ||
		    !str_match(f->action, r->action->name) ||
		    (f->page >= 0 && f->page != r->page) || !str_match(f->instance, r->instance) ||
		    !fault_applies(f->kind, r->action, r->page, f->page < 0))
			continue;
		if (f->times > 0)
			f->times--;
		*hang_ms = f->hang_ms;
		*arg = f->arg;
		return f->kind;
	}
	return SIM_F_NONE;
}

/* Sliding window: at most rate_limit accepted requests in any 1000 ms.
 * Returns 0 (accepted) or the ms until a slot frees up. Caller locks. */
static int64_t rate_check(sim_account *a, int p)
{
	int lim = a->limits[p].rate_limit;
	int64_t now = sim_now_ms(), oldest;
	if (lim <= 0 || !a->window[p])
		return 0;
	oldest = a->window[p][a->wpos[p]];
	if (now - oldest < 1000)
		return 1000 - (now - oldest);
	a->window[p][a->wpos[p]] = now;
	a->wpos[p] = (a->wpos[p] + 1) % lim;
	return 0;
}

/* The random fault of a request: a pure function of (seed, account,
 * product, n-th request). Caller locks. */
static int random_fault(af_sim *s, const sim_req *r)
{
	sim_account *a = &s->accounts[r->account];
	const sim_limits *l = &a->limits[r->product];
	uint64_t p = (uint64_t)r->product;
	double u = (double)(sim_hash(s->opt.seed ^ sim_hash_str(a->label),
	                             (p << 56) | a->fault_counter[p]++) >>
	                    11) /
	           (double)(1ULL << 53);
	double acc = 0;
	int kind = SIM_F_NONE;
	for (int k = 1; k < SIM_F_NKINDS && kind == SIM_F_NONE; k++) {
		acc += l->rate[k];
		if (u < acc)
			kind = k;
	}
	/* a kind this answer cannot carry (a TotalCount lie for an unpaged
	 * list) is no fault, not another one */
	return fault_applies(kind, r->action, r->page, true) ? kind : SIM_F_NONE;
}

/* Answers a throttled request: 1. Alibaba says when to retry. */
static int throttled(sim_resp *resp, const sim_req *r, int64_t wait)
{
	if (sim_product_at((size_t)r->product)->style == SIM_TC3) {
		sim_tc_error(resp, r, "RequestLimitExceeded",
		             "Your current request rate exceeds the limit.");
		return 1;
	}
	snprintf(resp->retry_after, sizeof(resp->retry_after), "%lld",
	         (long long)(wait > 0 ? wait : 200));
	sim_error(resp, r, 400, "Throttling.User", "Request was denied due to user flow control.");
	return 1;
}

/* The answer of a fault before the handler: 1 when it answered, 0 when
 * the request goes on (to a post-render or a handler-rendered fault). */
static int fault_answer(af_sim *s, sim_req *r, sim_resp *resp, int kind, int hang, int64_t arg,
                        int *post)
{
	bool tc3 = sim_product_at((size_t)r->product)->style == SIM_TC3;

	switch (kind) {
	case SIM_F_HTTP500:
		if (tc3) {
			sim_tc_error(resp, r, "InternalError", "Internal error.");
			resp->status = 500;
		} else {
			sim_error(resp, r, 500, "InternalError",
			          "The request processing has failed due to some unknown error.");
		}
		return 1;
	case SIM_F_DROP:
		/* The request was read in full and authenticated (an Alibaba
		 * nonce is spent), and the connection is closed without a byte
		 * of answer: what a client sees when a server or a proxy dies
		 * while handling its request. See docs/simulator.md for what
		 * libcurl then does on a kept-alive connection. */
		resp->drop = true;
		return 1;
	case SIM_F_TIMEOUT:
		sim_sleep_ms(s,
		             hang > 0 ? hang : s->accounts[r->account].limits[r->product].hang_ms);
		resp->drop = true;
		return 1;
	case SIM_F_AUTH:
		if (tc3)
			sim_tc_error(resp, r, "AuthFailure.SignatureFailure",
			             "The provided credentials could not be validated.");
		else
			sim_error(resp, r, 400, "SignatureDoesNotMatch",
			          "The request signature does not conform to Aliyun standards.");
		return 1;
	case SIM_F_ERROR_BODY:
		/* HTTP 200, the product's own error body, and no list: only the
		 * body says that this is an error */
		if (tc3)
			sim_tc_error(resp, r, "InternalError",
			             "An internal error has occurred. Retry your request.");
		else
			sim_error(resp, r, 200, "InternalError",
			          "The request processing has failed due to some unknown error.");
		return 1;
	case SIM_F_MALFORMED:
	case SIM_F_TRUNCATED:
		*post = kind;
		return 0;
	case SIM_F_NONE:
		return 0;
	default:
		r->fault = kind;
		r->fault_arg = arg;
		return 0;
	}
}

int sim_faults_apply(af_sim *s, sim_req *r, sim_resp *resp, int *post)
{
	const sim_product *p = sim_product_at((size_t)r->product);
	sim_account *a = &s->accounts[r->account];
	int kind, hang = 0, latency;
	int64_t wait = 0, arg = -1;
	char key[256];

	*post = SIM_F_NONE;
	pthread_mutex_lock(&s->lock);
	s->stats.by_action[r->product][r->action - p->actions]++;
	snprintf(key, sizeof(key), "%s %s %s", r->action->name, a->label, r->region);
	sim_stats_count(&s->stats.by_scope, &s->stats.nby_scope, key);
	kind = scripted(s, r, &hang, &arg);
	if (kind == SIM_F_NONE)
		kind = random_fault(s, r);
	if (kind == SIM_F_NONE && (wait = rate_check(a, r->product)) > 0)
		s->stats.throttled++;
	if (kind != SIM_F_NONE)
		s->stats.faults[kind]++;
	pthread_mutex_unlock(&s->lock);

	latency = a->limits[r->product].latency_ms + s->opt.latency_ms;
	if (latency > 0)
		sim_sleep_ms(s, latency);
	if (wait > 0 || kind == SIM_F_THROTTLE)
		return throttled(resp, r, wait);
	return fault_answer(s, r, resp, kind, hang, arg, post);
}

size_t sim_fault_start(const sim_req *r, size_t start)
{
	return r->fault == SIM_F_REPEAT_PAGE ? 0 : start;
}

size_t sim_fault_keep(const sim_req *r, size_t n)
{
	if (r->fault == SIM_F_EMPTY_PAGE || n == 0)
		return 0;
	if (r->fault != SIM_F_SHORT_PAGE)
		return n;
	/* fewer than there are, whatever was asked for */
	if (r->fault_arg >= 0)
		return (size_t)r->fault_arg < n ? (size_t)r->fault_arg : n - 1;
	return n / 2;
}

/* A number no double holds: json-c reads it as inf, strict parsers refuse it. */
static void out_of_range(json_object *o, const char *key)
{
	if (o && json_object_is_type(o, json_type_object))
		json_object_object_add(o, key, json_object_new_double_s(HUGE_VAL, "1e400"));
}

/* "oversized-" and then letters and digits that do not compress: a name of
 * repeated 'x' would shrink to nothing in a TOAST or an index tuple and hide
 * the limits a real long name runs into. Deterministic, like the fleet. */
static void oversized(json_object *o, const char *key, int64_t bytes)
{
	static const char mark[] = "oversized-", alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	uint64_t state = (uint64_t)bytes, x = 0;
	char *big;

	if (!o || !json_object_is_type(o, json_type_object))
		return;
	if (bytes < 0)
		bytes = SIM_OVERSIZED_DEFAULT;
	if (!(big = malloc((size_t)bytes + 1)))
		return; /* then the name stays as it was: the answer is still valid */
	for (int64_t i = 0; i < bytes; i++, x >>= 8) {
		if (i % 8 == 0)
			x = sim_rng(&state);
		big[i] = alnum[(x & 0xff) % (sizeof(alnum) - 1)];
	}
	memcpy(big, mark, bytes < (int64_t)sizeof(mark) - 1 ? (size_t)bytes : sizeof(mark) - 1);
	json_object_object_add(o, key, json_object_new_string_len(big, (int)bytes));
	free(big);
}

static json_object *member(json_object *o, const char *key)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* The object that holds the last member of a path "a/b/c" in item (an
 * array on the way stands for its first element), and that member's name
 * in key; NULL when the item has no such place. */
static json_object *spot(json_object *item, const char *path, char *key, size_t n)
{
	const char *slash;
	char seg[64];

	while (item && (slash = strchr(path, '/'))) {
		if ((size_t)(slash - path) >= sizeof(seg))
			return NULL;
		memcpy(seg, path, (size_t)(slash - path));
		seg[slash - path] = '\0';
		item = member(item, seg);
		if (item && json_object_is_type(item, json_type_array))
			item = json_object_array_length(item) ? json_object_array_get_idx(item, 0)
			                                      : NULL;
		path = slash + 1;
	}
	snprintf(key, n, "%s", path);
	return item;
}

/*
 * The fields the action's first item spoils (sim_action huge_number and
 * long_name): a number the normalizer reads and a name it stores.
 */
void sim_fault_item(const sim_req *r, json_object *item)
{
	char key[64];
	json_object *o;

	if (r->fault == SIM_F_OUT_OF_RANGE && r->action->huge_number) {
		if ((o = spot(item, r->action->huge_number, key, sizeof(key))))
			out_of_range(o, key);
	} else if (r->fault == SIM_F_OVERSIZED && r->action->long_name) {
		if ((o = spot(item, r->action->long_name, key, sizeof(key))))
			oversized(o, key, r->fault_arg);
	}
}

void sim_fault_page(const sim_req *r, json_object *list, int64_t *total)
{
	size_t n = json_object_array_length(list), keep = sim_fault_keep(r, n);

	if (keep < n)
		json_object_array_del_idx(list, keep, n - keep);
	if (keep > 0)
		sim_fault_item(r, json_object_array_get_idx(list, 0));
	if (r->fault == SIM_F_LYING_TOTAL && *total > 0) {
		/* smaller than the truth, always */
		int64_t said = r->fault_arg >= 0 ? r->fault_arg : SIM_LYING_TOTAL_DEFAULT;
		*total = said < *total ? said : *total - 1;
	}
}

void sim_faults_post(sim_resp *resp, int kind)
{
	size_t half = af_buf_len(&resp->body) / 2;
	if (kind == SIM_F_TRUNCATED) {
		af_buf_truncate(&resp->body, half);
	} else if (kind == SIM_F_MALFORMED) {
		/* valid prefix, then bytes no JSON parser accepts */
		af_buf_truncate(&resp->body, half);
		af_buf_puts(&resp->body, "\",,]}{<html>502 Bad Gateway</html>");
	}
}

static char *jdup(json_object *o, const char *k)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !v)
		return NULL;
	return strdup(json_object_get_string(v));
}

static int jint(json_object *o, const char *k, int def)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !v)
		return def;
	return json_object_get_int(v);
}

/* The one optional number a kind takes: its JSON key and bounds. */
static const struct {
	int kind;
	const char *key;
	int64_t min, max;
} fault_args[] = {
    {SIM_F_SHORT_PAGE, "items", 0, INT32_MAX},
    {SIM_F_LYING_TOTAL, "total", 0, INT64_MAX},
    {SIM_F_OVERSIZED, "bytes", 1, SIM_OVERSIZED_MAX},
};
#define NFAULT_ARGS (sizeof(fault_args) / sizeof(fault_args[0]))

/* Checks one scripted fault before any is added: a fault that can never
 * fire (lying_total for Hologres) is a mistake in the test, say so. */
static int fault_check(json_object *o, size_t i)
{
	json_object *k, *v;
	int kind, product = -1;
	const char *action = NULL;
	bool fits = false;

	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "kind", &k) ||
	    (kind = sim_fault_parse(json_object_get_string(k))) < 0)
		return af_error_set(AF_ERR_PARAM, "fault %zu: missing or unknown kind", i);
	if (json_object_object_get_ex(o, "product", &k) &&
	    (product = sim_product_index(json_object_get_string(k))) < 0)
		return af_error_set(AF_ERR_PARAM, "fault %zu: unknown product", i);
	if (json_object_object_get_ex(o, "action", &k))
		action = json_object_get_string(k);
	for (size_t p = 0; p < sim_product_count() && !fits; p++) {
		const sim_product *sp = sim_product_at(p);
		for (size_t a = 0; a < sp->nactions && !fits && (product < 0 || (int)p == product);
		     a++)
			fits = str_match(action, sp->actions[a].name) &&
			       fault_applies(kind, &sp->actions[a], 2, true);
	}
	if (!fits)
		return af_error_set(AF_ERR_PARAM, "fault %zu: %s does not apply to %s%s%s", i,
		                    sim_fault_name(kind),
		                    product >= 0 ? sim_product_name(product) : "",
		                    product >= 0 && action ? " " : "", action ? action : "");
	for (size_t j = 0; j < NFAULT_ARGS; j++) {
		if (!json_object_object_get_ex(o, fault_args[j].key, &v))
			continue;
		if (fault_args[j].kind != kind)
			return af_error_set(AF_ERR_PARAM, "fault %zu: \"%s\" is for %s only", i,
			                    fault_args[j].key, sim_fault_name(fault_args[j].kind));
		if (!json_object_is_type(v, json_type_int) ||
		    json_object_get_int64(v) < fault_args[j].min ||
		    json_object_get_int64(v) > fault_args[j].max)
			return af_error_set(
			    AF_ERR_PARAM, "fault %zu: \"%s\" must be an integer from %lld to %lld",
			    i, fault_args[j].key, (long long)fault_args[j].min,
			    (long long)fault_args[j].max);
	}
	return 0;
}

static int64_t fault_arg(json_object *o, int kind)
{
	json_object *v;

	for (size_t j = 0; j < NFAULT_ARGS; j++)
		if (fault_args[j].kind == kind &&
		    json_object_object_get_ex(o, fault_args[j].key, &v))
			return json_object_get_int64(v);
	return -1;
}

static void fault_free(sim_fault *f)
{
	free(f->account);
	free(f->region);
	free(f->action);
	free(f->instance);
}

int sim_faults_add(af_sim *s, json_object *arr)
{
	size_t n;
	sim_fault *nf;
	if (json_object_is_type(arr, json_type_object)) {
		json_object *wrap = json_object_new_array();
		json_object_array_add(wrap, json_object_get(arr));
		int err = sim_faults_add(s, wrap);
		json_object_put(wrap);
		return err;
	}
	if (!json_object_is_type(arr, json_type_array))
		return af_error_set(AF_ERR_PARAM, "expected a JSON array of faults");
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		int err = fault_check(json_object_array_get_idx(arr, i), i);
		if (err < 0)
			return err;
	}
	pthread_mutex_lock(&s->lock);
	nf = realloc(s->faults, (s->nfaults + n + 1) * sizeof(*nf));
	if (!nf) {
		pthread_mutex_unlock(&s->lock);
		return af_error_oom();
	}
	s->faults = nf;
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i), *k;
		sim_fault *f = &s->faults[s->nfaults++];
		memset(f, 0, sizeof(*f));
		f->product = json_object_object_get_ex(o, "product", &k)
		                 ? sim_product_index(json_object_get_string(k))
		                 : -1;
		f->account = jdup(o, "account");
		f->region = jdup(o, "region");
		f->action = jdup(o, "action");
		f->instance = jdup(o, "instance");
		f->page = jint(o, "page", -1);
		json_object_object_get_ex(o, "kind", &k);
		f->kind = sim_fault_parse(json_object_get_string(k));
		f->times = jint(o, "times", 1);
		f->hang_ms = jint(o, "hang_ms", 0);
		f->arg = fault_arg(o, f->kind);
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void sim_faults_clear(af_sim *s)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nfaults; i++)
		fault_free(&s->faults[i]);
	free(s->faults);
	s->faults = NULL;
	s->nfaults = 0;
	pthread_mutex_unlock(&s->lock);
}

json_object *sim_faults_json(af_sim *s)
{
	json_object *arr = json_object_new_array();
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nfaults; i++) {
		sim_fault *f = &s->faults[i];
		json_object *o = json_object_new_object();
		if (f->product >= 0)
			json_object_object_add(
			    o, "product", json_object_new_string(sim_product_name(f->product)));
#define OPT(k, v)                                                                                  \
	if (v)                                                                                     \
	json_object_object_add(o, k, json_object_new_string(v))
		OPT("account", f->account);
		OPT("region", f->region);
		OPT("action", f->action);
		OPT("instance", f->instance);
		if (f->page >= 0)
			json_object_object_add(o, "page", json_object_new_int(f->page));
		json_object_object_add(o, "kind", json_object_new_string(sim_fault_name(f->kind)));
		for (size_t j = 0; j < NFAULT_ARGS; j++)
			if (fault_args[j].kind == (int)f->kind && f->arg >= 0)
				json_object_object_add(o, fault_args[j].key,
				                       json_object_new_int64(f->arg));
		json_object_object_add(o, "times", json_object_new_int(f->times));
		json_object_array_add(arr, o);
	}
	pthread_mutex_unlock(&s->lock);
	return arr;
}

static json_object *counters(const sim_counter *c, size_t n)
{
	json_object *o = json_object_new_object();
	for (size_t i = 0; i < n; i++)
		json_object_object_add(o, c[i].key, json_object_new_int64((int64_t)c[i].n));
	return o;
}

json_object *sim_stats_json(af_sim *s)
{
	json_object *o = json_object_new_object(), *act = json_object_new_object(),
	            *fk = json_object_new_object();
	pthread_mutex_lock(&s->lock);
	sim_stats *st = &s->stats;
	json_object_object_add(o, "requests", json_object_new_int64((int64_t)st->requests));
	for (size_t p = 0; p < sim_product_count(); p++) {
		const sim_product *sp = sim_product_at(p);
		for (size_t a = 0; a < sp->nactions; a++)
			json_object_object_add(act, sp->actions[a].name,
			                       json_object_new_int64((int64_t)st->by_action[p][a]));
	}
	json_object_object_add(o, "by_action", act);
	json_object_object_add(o, "by_scope", counters(st->by_scope, st->nby_scope));
	json_object_object_add(o, "rejected_signatures",
	                       json_object_new_int64((int64_t)st->rejected_signatures));
	json_object_object_add(o, "auth_errors", counters(st->auth_errors, st->nauth_errors));
	json_object_object_add(o, "throttled", json_object_new_int64((int64_t)st->throttled));
	for (int k = 1; k < SIM_F_NKINDS; k++)
		json_object_object_add(fk, sim_fault_name(k),
		                       json_object_new_int64((int64_t)st->faults[k]));
	json_object_object_add(o, "faults", fk);
	json_object_object_add(o, "control", json_object_new_int64((int64_t)st->control));
	json_object_object_add(o, "by_service", counters(st->by_service, st->nby_service));
	json_object_object_add(o, "in_flight", json_object_new_int(st->in_flight));
	json_object_object_add(o, "in_flight_max", json_object_new_int(st->in_flight_max));
	pthread_mutex_unlock(&s->lock);
	return o;
}

static void counters_free(sim_counter **c, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((*c)[i].key);
	free(*c);
	*c = NULL;
	*n = 0;
}

void sim_stats_reset(af_sim *s)
{
	pthread_mutex_lock(&s->lock);
	int in_flight = s->stats.in_flight;
	counters_free(&s->stats.by_scope, &s->stats.nby_scope);
	counters_free(&s->stats.auth_errors, &s->stats.nauth_errors);
	counters_free(&s->stats.by_service, &s->stats.nby_service);
	memset(&s->stats, 0, sizeof(s->stats));
	s->stats.in_flight = in_flight;
	pthread_mutex_unlock(&s->lock);
}
