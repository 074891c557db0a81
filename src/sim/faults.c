/* Faults (scripted and random), rate limits, latency and the counters. */
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

/* The first scripted fault matching the request, consumed; caller locks. */
static int scripted(af_sim *s, const sim_req *r, sim_product p, int *hang_ms)
{
	const char *label = s->accounts[r->account].label;
	for (size_t i = 0; i < s->nfaults; i++) {
		sim_fault *f = &s->faults[i];
		if (f->times == 0 || (f->product >= 0 && f->product != (int)p) ||
		    !str_match(f->account, label) || !str_match(f->region, r->region) ||
		    !str_match(f->action, sim_action_name(r->action)) ||
		    (f->page >= 0 && f->page != r->page) || !str_match(f->instance, r->instance))
			continue;
		if (f->times > 0)
			f->times--;
		*hang_ms = f->hang_ms;
		return f->kind;
	}
	return SIM_F_NONE;
}

/* Sliding window: at most rate_limit accepted requests in any 1000 ms.
 * Returns 0 (accepted) or the ms until a slot frees up. Caller locks. */
static int64_t rate_check(sim_account *a, sim_product p)
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

int sim_faults_apply(af_sim *s, sim_req *r, sim_resp *resp, sim_product p, int *post)
{
	sim_account *a = &s->accounts[r->account];
	sim_limits *l = &a->limits[p];
	int kind, hang = 0, latency;
	int64_t wait = 0;
	char key[256];
	bool roa = p == SIM_HOLO, ali = p != SIM_TIONE;

	*post = SIM_F_NONE;
	pthread_mutex_lock(&s->lock);
	s->stats.by_action[r->action]++;
	snprintf(key, sizeof(key), "%s %s %s", sim_action_name(r->action), a->label, r->region);
	sim_stats_count(&s->stats.by_scope, &s->stats.nby_scope, key);
	kind = scripted(s, r, p, &hang);
	if (kind == SIM_F_NONE) {
		/* random faults are a pure function of (seed, account, product, n-th request) */
		double u = (double)(sim_hash(s->opt.seed ^ sim_hash_str(a->label),
		                             ((uint64_t)p << 56) | a->fault_counter[p]++) >>
		                    11) /
		           (double)(1ULL << 53);
		double acc = 0;
		for (int k = 1; k < SIM_F_NKINDS && kind == SIM_F_NONE; k++) {
			acc += l->rate[k];
			if (u < acc)
				kind = k;
		}
	}
	if (kind == SIM_F_NONE && (wait = rate_check(a, p)) > 0)
		s->stats.throttled++;
	if (kind != SIM_F_NONE)
		s->stats.faults[kind]++;
	pthread_mutex_unlock(&s->lock);

	latency = l->latency_ms + s->opt.latency_ms;
	if (latency > 0)
		sim_sleep_ms(s, latency);
	if (wait > 0 || kind == SIM_F_THROTTLE) {
		if (ali) {
			snprintf(resp->retry_after, sizeof(resp->retry_after), "%lld",
			         (long long)(wait > 0 ? wait : 200));
			sim_ali_error(resp, r, 400, roa, "Throttling.User",
			              "Request was denied due to user flow control.");
		} else {
			sim_tc_error(resp, r, "RequestLimitExceeded",
			             "Your current request rate exceeds the limit.");
		}
		return 1;
	}
	switch (kind) {
	case SIM_F_HTTP500:
		if (ali) {
			sim_ali_error(
			    resp, r, 500, roa, "InternalError",
			    "The request processing has failed due to some unknown error.");
		} else {
			sim_tc_error(resp, r, "InternalError", "Internal error.");
			resp->status = 500;
		}
		return 1;
	case SIM_F_DROP:
		resp->drop = true;
		return 1;
	case SIM_F_TIMEOUT:
		sim_sleep_ms(s, hang > 0 ? hang : l->hang_ms);
		resp->drop = true;
		return 1;
	case SIM_F_AUTH:
		if (ali)
			sim_ali_error(
			    resp, r, 400, roa, "SignatureDoesNotMatch",
			    "The request signature does not conform to Aliyun standards.");
		else
			sim_tc_error(resp, r, "AuthFailure.SignatureFailure",
			             "The provided credentials could not be validated.");
		return 1;
	case SIM_F_MALFORMED:
	case SIM_F_TRUNCATED:
		*post = kind;
		return 0;
	default:
		return 0;
	}
}

void sim_faults_post(sim_resp *resp, int kind)
{
	size_t half = resp->body.len / 2;
	if (kind == SIM_F_TRUNCATED) {
		resp->body.len = half;
		if (resp->body.data)
			resp->body.data[half] = '\0';
	} else if (kind == SIM_F_MALFORMED) {
		/* valid prefix, then bytes no JSON parser accepts */
		resp->body.len = half;
		if (resp->body.data)
			resp->body.data[half] = '\0';
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
		json_object *o = json_object_array_get_idx(arr, i), *k;
		if (!json_object_is_type(o, json_type_object) ||
		    !json_object_object_get_ex(o, "kind", &k) ||
		    sim_fault_parse(json_object_get_string(k)) < 0)
			return af_error_set(AF_ERR_PARAM, "fault %zu: missing or unknown kind", i);
		if (json_object_object_get_ex(o, "product", &k) &&
		    sim_product_parse(json_object_get_string(k)) < 0)
			return af_error_set(AF_ERR_PARAM, "fault %zu: unknown product", i);
	}
	pthread_mutex_lock(&s->lock);
	nf = realloc(s->faults, (s->nfaults + n + 1) * sizeof(*nf));
	if (!nf) {
		pthread_mutex_unlock(&s->lock);
		return af_error_set(AF_ERR_NOMEM, "out of memory");
	}
	s->faults = nf;
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(arr, i), *k;
		sim_fault *f = &s->faults[s->nfaults++];
		memset(f, 0, sizeof(*f));
		f->product = json_object_object_get_ex(o, "product", &k)
		                 ? sim_product_parse(json_object_get_string(k))
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
	for (int i = 0; i < SIM_NACTIONS; i++)
		json_object_object_add(act, sim_action_name(i),
		                       json_object_new_int64((int64_t)st->by_action[i]));
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
	memset(&s->stats, 0, sizeof(s->stats));
	s->stats.in_flight = in_flight;
	pthread_mutex_unlock(&s->lock);
}
