/* HTTP server (libmicrohttpd): raw request capture, dispatch, responses. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "aifleet/error.h"
#include "sim.h"

#define SIM_MAX_BODY ((size_t)8 * 1024 * 1024)

void sim_options_defaults(sim_options *o)
{
	memset(o, 0, sizeof(*o));
	o->port = 8089;
	o->seed = 1;
	o->items = 50;
}

const char *sim_req_header(const sim_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *sim_req_param(const sim_req *r, const char *name)
{
	for (size_t i = 0; i < r->nparams; i++)
		if (strcmp(r->params[i].key, name) == 0)
			return r->params[i].value;
	return NULL;
}

/* MHD hands the URI over exactly as it appeared in the request line, before
 * any decoding: this is what the signature was computed over. */
static void *uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	sim_req *r = calloc(1, sizeof(*r));
	(void)cls;
	(void)conn;
	if (!r)
		return NULL;
	r->raw_uri = strdup(uri ? uri : "/");
	af_buf_init(&r->body, SIM_MAX_BODY);
	r->product = -1;
	r->account = -1;
	r->page = -1;
	r->fault_arg = -1;
	return r;
}

static void req_free(sim_req *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nparams; i++) {
		free((char *)r->params[i].key);
		free((char *)r->params[i].value);
	}
	free(r->params);
	free(r->raw_uri);
	free(r->path);
	free(r->query);
	af_buf_free(&r->body);
	json_object_put(r->json);
	free((char *)r->instance);
	free(r);
}

static void completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	req_free(*req_cls);
	*req_cls = NULL;
}

char *sim_unescape(const char *s, size_t len)
{
	char *d = malloc(len + 1);
	if (!d)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	MHD_http_unescape(d);
	return d;
}

int sim_req_parse_uri(sim_req *r)
{
	const char *q = strchr(r->raw_uri, '?');
	size_t plen = q ? (size_t)(q - r->raw_uri) : strlen(r->raw_uri);
	r->path = strndup(r->raw_uri, plen);
	r->query = strdup(q ? q + 1 : "");
	if (!r->path || !r->query)
		return AF_ERR_NOMEM;
	for (const char *p = r->query; *p;) {
		const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p), *eq;
		if (end > p) {
			af_kv *n = realloc(r->params, (r->nparams + 1) * sizeof(*n));
			if (!n)
				return AF_ERR_NOMEM;
			r->params = n;
			eq = memchr(p, '=', (size_t)(end - p));
			n[r->nparams].key = sim_unescape(p, (size_t)((eq ? eq : end) - p));
			n[r->nparams].value =
			    eq ? sim_unescape(eq + 1, (size_t)(end - eq - 1)) : strdup("");
			r->nparams++;
		}
		p = amp ? amp + 1 : end;
	}
	return 0;
}

static void track(af_sim *s, int delta)
{
	pthread_mutex_lock(&s->lock);
	s->stats.in_flight += delta;
	if (delta > 0) {
		s->stats.requests++;
		if (s->stats.in_flight > s->stats.in_flight_max)
			s->stats.in_flight_max = s->stats.in_flight;
	}
	pthread_mutex_unlock(&s->lock);
}

static enum MHD_Result send_resp(af_sim *s, sim_req *r, sim_resp *resp, bool ali)
{
	struct MHD_Response *mr;
	enum MHD_Result ret;
	if (s->opt.verbose)
		fprintf(stderr, "aifleet-sim: %s %s -> %d %s%s\n", r->method, r->path,
		        resp->drop ? 0 : resp->status, r->request_id,
		        resp->drop ? " (dropped)" : "");
	if (resp->drop)
		return MHD_NO;
	/* MHD copies the body (MUST_COPY); its API only predates const. */
	mr = MHD_create_response_from_buffer(
	    af_buf_len(&resp->body),
	    (void *)(af_buf_data(&resp->body) ? af_buf_data(&resp->body) : ""),
	    MHD_RESPMEM_MUST_COPY);
	if (!mr)
		return MHD_NO;
	MHD_add_response_header(mr, "Content-Type",
	                        resp->content_type ? resp->content_type
	                                           : "application/json;charset=utf-8");
	if (ali && r->request_id[0])
		MHD_add_response_header(mr, "x-acs-request-id", r->request_id);
	if (resp->retry_after[0])
		MHD_add_response_header(mr, "x-acs-retry-after", resp->retry_after);
	ret = MHD_queue_response(r->conn, (unsigned)resp->status, mr);
	MHD_destroy_response(mr);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **req_cls)
{
	af_sim *s = cls;
	sim_req *r = *req_cls;
	sim_resp resp;
	enum MHD_Result ret;
	bool ali = false;
	(void)url;
	(void)version;

	if (!r)
		return MHD_NO;
	if (!r->conn) {
		r->conn = conn;
		r->method = method;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (af_buf_append(&r->body, upload_data, *upload_data_size) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	memset(&resp, 0, sizeof(resp));
	/* a Hologres list of 100k nodes is ~50 MB; allow for more than that */
	af_buf_init(&resp.body, (size_t)1 << 30);
	resp.status = 500;
	if (sim_req_parse_uri(r) < 0)
		return MHD_NO;
	if (strncmp(r->path, "/_sim/", 6) == 0) {
		sim_control_handle(s, r, &resp);
	} else {
		const char *auth = sim_req_header(r, "Authorization");
		const sim_service *svc = sim_service_find(r);
		track(s, 1);
		if (svc) {
			ali = svc->acs_request_id;
			svc->handle(s, r, &resp);
		} else if (sim_req_header(r, "X-TC-Action") ||
		           (auth && strncmp(auth, "TC3-", 4) == 0)) {
			sim_route_tc3(s, r, &resp);
		} else {
			ali = true;
			sim_route_acs3(s, r, &resp);
		}
		track(s, -1);
	}
	ret = send_resp(s, r, &resp, ali);
	af_buf_free(&resp.body);
	return ret;
}

int af_sim_start(af_sim **out, const sim_options *opt)
{
	af_sim *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | (opt->verbose ? MHD_USE_ERROR_LOG : 0);
	const union MHD_DaemonInfo *info;
	int err = 0;

	*out = NULL;
	if (!s)
		return af_error_oom();
	pthread_mutex_init(&s->lock, NULL);
	s->opt = *opt;
	s->opt.listen_host = strdup(opt->listen_host ? opt->listen_host : "127.0.0.1");
	s->opt.port_file = NULL;
	s->opt.config_file = NULL;
	if (s->opt.items < 0)
		s->opt.items = 0;
	if ((err = sim_config_load(s, opt->config_file)) < 0 || (err = sim_fleet_init(s)) < 0)
		goto done;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)opt->port);
	if (inet_pton(AF_INET, s->opt.listen_host, &sa.sin_addr) != 1) {
		err = af_error_set(AF_ERR_CONFIG, "--listen: %s is not an IPv4 address",
		                   s->opt.listen_host);
		goto done;
	}
	/* One thread per connection by default: a "timeout" fault then hangs only
	 * its own connection. --threads N switches to a pool of N. */
	struct MHD_OptionItem pool[] = {
	    {MHD_OPTION_THREAD_POOL_SIZE, opt->threads, NULL},
	    {MHD_OPTION_END, 0, NULL},
	};
	if (opt->threads > 0) {
		flags |= MHD_USE_AUTO;
	} else {
		flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO; /* poll, not select */
		pool[0].option = MHD_OPTION_END;
	}
	s->daemon = MHD_start_daemon(
	    flags, (uint16_t)opt->port, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR,
	    (const struct sockaddr *)&sa, MHD_OPTION_URI_LOG_CALLBACK, uri_log, s,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
	    MHD_OPTION_ARRAY, pool, MHD_OPTION_END);
	if (!s->daemon) {
		err = af_error_set(AF_ERR_IO, "cannot listen on %s:%d", s->opt.listen_host,
		                   opt->port);
		goto done;
	}
	info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : (uint16_t)opt->port;
	*out = s;
	s = NULL;
done:
	af_sim_stop(s);
	return err;
}

uint16_t af_sim_port(const af_sim *s)
{
	return s->port;
}

void af_sim_stop(af_sim *s)
{
	if (!s)
		return;
	s->stopping = 1;
	if (s->daemon)
		MHD_stop_daemon(s->daemon);
	sim_faults_clear(s);
	sim_stats_reset(s);
	sim_nonces_free(s);
	sim_issued_free(s);
	sim_fleet_free(s);
	sim_config_free(s);
	free(s->opt.listen_host);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
