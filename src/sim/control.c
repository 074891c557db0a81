/* The /_sim/ control endpoints: unauthenticated, loopback only by default. */
#include <string.h>

#include "aifleet/error.h"
#include "sim.h"

static int body_json(json_object **out, const sim_req *r)
{
	enum json_tokener_error jerr = json_tokener_success;
	*out =
	    json_tokener_parse_verbose(af_buf_data(&r->body) ? af_buf_data(&r->body) : "", &jerr);
	if (!*out)
		return af_error_set(AF_ERR_PARAM, "body is not JSON: %s",
		                    json_tokener_error_desc(jerr));
	return 0;
}

static int control_error(sim_resp *resp, int status, const char *msg)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string(msg));
	return sim_json_out(resp, status, o);
}

int sim_control_handle(af_sim *s, sim_req *r, sim_resp *resp)
{
	const char *p = r->path + 5; /* after "/_sim" */
	bool get = strcmp(r->method, "GET") == 0, post = strcmp(r->method, "POST") == 0;
	json_object *in = NULL, *out = NULL;
	int err = 0;

	pthread_mutex_lock(&s->lock);
	s->stats.control++;
	pthread_mutex_unlock(&s->lock);

	if (strcmp(p, "/health") == 0 && get) {
		out = json_object_new_object();
		json_object_object_add(out, "ok", json_object_new_boolean(1));
		json_object_object_add(out, "fixtures", json_object_new_boolean(s->opt.fixtures));
		return sim_json_out(resp, 200, out);
	}
	if (strcmp(p, "/fleet") == 0 && get) {
		pthread_mutex_lock(&s->lock);
		err = sim_fleet_dump(s, &out, sim_req_param(r, "product"),
		                     sim_req_param(r, "account"), sim_req_param(r, "region"));
		pthread_mutex_unlock(&s->lock);
		if (err < 0)
			return control_error(resp, 400, af_error_last());
		return sim_json_out(resp, 200, out);
	}
	if (strcmp(p, "/mutate") == 0 && post) {
		if ((err = body_json(&in, r)) < 0)
			return control_error(resp, 400, af_error_last());
		pthread_mutex_lock(&s->lock);
		err = sim_fleet_mutate(s, &out, in);
		pthread_mutex_unlock(&s->lock);
		json_object_put(in);
		if (err < 0)
			return control_error(resp, 400, af_error_last());
		return sim_json_out(resp, 200, out);
	}
	if (strcmp(p, "/faults") == 0) {
		if (post) {
			if ((err = body_json(&in, r)) < 0 || (err = sim_faults_add(s, in)) < 0) {
				json_object_put(in);
				return control_error(resp, 400, af_error_last());
			}
			json_object_put(in);
		} else if (strcmp(r->method, "DELETE") == 0) {
			sim_faults_clear(s);
		} else if (!get) {
			return control_error(resp, 405, "method not allowed");
		}
		return sim_json_out(resp, 200, sim_faults_json(s));
	}
	if (strcmp(p, "/stats") == 0 && get)
		return sim_json_out(resp, 200, sim_stats_json(s));
	if (strcmp(p, "/stats/reset") == 0 && post) {
		sim_stats_reset(s);
		return sim_json_out(resp, 200, sim_stats_json(s));
	}
	return control_error(resp, 404, "unknown control endpoint");
}
