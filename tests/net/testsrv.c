#include "testsrv.h"
#include "aifleet/log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TS_MAX_ARRIVALS 1024

struct testsrv {
	struct MHD_Daemon *d;
	pthread_mutex_t mu;
	const ts_reply *script;
	size_t nscript;
	ts_arrival arrivals[TS_MAX_ARRIVALS];
	size_t n;
	int in_flight, max_in_flight;
	char url[64];
	uint16_t port;
};

double ts_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");

	if (!p)
		abort();
	return p;
}

static void kv_push(af_kv **kv, size_t *n, const char *k, const char *v)
{
	af_kv *p = realloc(*kv, (*n + 1) * sizeof(**kv));

	if (!p)
		abort();
	p[*n].key = xstrdup(k);
	p[*n].value = xstrdup(v);
	*kv = p;
	(*n)++;
}

static enum MHD_Result on_header(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	ts_arrival *a = cls;

	kv_push(&a->headers, &a->nheaders, key, value);
	return MHD_YES;
}

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key,
			      const char *value)
{
	ts_arrival *a = cls;

	kv_push(&a->args, &a->nargs, key, value);
	return MHD_YES;
}

typedef struct conn_state {
	size_t idx;
} conn_state;

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	testsrv *s = cls;
	conn_state *cs = *con_cls;
	ts_arrival *a;
	const ts_reply *r;
	static const ts_reply dflt = {.status = 200};
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *body;
	size_t blen;

	if (!cs) {
		if (!(cs = calloc(1, sizeof(*cs))))
			return MHD_NO;
		pthread_mutex_lock(&s->mu);
		if (s->n >= TS_MAX_ARRIVALS) {
			pthread_mutex_unlock(&s->mu);
			free(cs);
			return MHD_NO;
		}
		cs->idx = s->n++;
		a = &s->arrivals[cs->idx];
		a->t = ts_now();
		snprintf(a->method, sizeof(a->method), "%s", method);
		snprintf(a->path, sizeof(a->path), "%s", url);
		MHD_get_connection_values(conn, MHD_HEADER_KIND, on_header, a);
		MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, on_arg, a);
		pthread_mutex_unlock(&s->mu);
		*con_cls = cs;
		return MHD_YES;
	}
	a = &s->arrivals[cs->idx];
	if (*upload_data_size) {
		char *p = realloc(a->body, a->body_len + *upload_data_size + 1);

		if (!p)
			return MHD_NO;
		memcpy(p + a->body_len, upload_data, *upload_data_size);
		a->body_len += *upload_data_size;
		p[a->body_len] = '\0';
		a->body = p;
		*upload_data_size = 0;
		return MHD_YES;
	}
	r = cs->idx < s->nscript ? &s->script[cs->idx] : &dflt;
	pthread_mutex_lock(&s->mu);
	if (++s->in_flight > s->max_in_flight)
		s->max_in_flight = s->in_flight;
	pthread_mutex_unlock(&s->mu);
	if (r->delay_ms > 0) {
		struct timespec d = {r->delay_ms / 1000, (long)(r->delay_ms % 1000) * 1000000L};

		nanosleep(&d, NULL);
	}
	pthread_mutex_lock(&s->mu);
	s->in_flight--;
	a->done = ts_now();
	pthread_mutex_unlock(&s->mu);
	if (r->drop)
		return MHD_NO;
	if (r->filler_bytes) {
		blen = r->filler_bytes;
		if (!(body = malloc(blen)))
			return MHD_NO;
		memset(body, 'x', blen);
		body[0] = '"';
		resp = MHD_create_response_from_buffer(blen, body, MHD_RESPMEM_MUST_FREE);
	} else {
		const char *b = r->body ? r->body : TS_DEFAULT_BODY;

		resp = MHD_create_response_from_buffer(strlen(b), (void *)b,
							 MHD_RESPMEM_MUST_COPY);
	}
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	if (r->retry_after)
		MHD_add_response_header(resp, "x-acs-retry-after", r->retry_after);
	if (r->request_id)
		MHD_add_response_header(resp, "x-acs-request-id", r->request_id);
	ret = MHD_queue_response(conn, r->status ? (unsigned)r->status : 200u, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	free(*con_cls);
	*con_cls = NULL;
}

testsrv *ts_start(const ts_reply *script, size_t n)
{
	testsrv *s = calloc(1, sizeof(*s));
	const union MHD_DaemonInfo *info;
	struct sockaddr_in sa;

	if (!s)
		abort();
	pthread_mutex_init(&s->mu, NULL);
	s->script = script;
	s->nscript = n;
	/* Loopback only; port 0: the kernel picks a free one, read back below. */
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = 0;
	s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
					MHD_USE_ERROR_LOG,
				0, NULL, NULL, handler, s, MHD_OPTION_NOTIFY_COMPLETED,
				on_completed, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
	if (!s->d)
		abort();
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : 0;
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%u", (unsigned)s->port);
	return s;
}

void ts_stop(testsrv *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	for (size_t i = 0; i < s->n; i++) {
		ts_arrival *a = &s->arrivals[i];

		for (size_t k = 0; k < a->nargs; k++) {
			free((char *)a->args[k].key);
			free((char *)a->args[k].value);
		}
		for (size_t k = 0; k < a->nheaders; k++) {
			free((char *)a->headers[k].key);
			free((char *)a->headers[k].value);
		}
		free(a->args);
		free(a->headers);
		free(a->body);
	}
	pthread_mutex_destroy(&s->mu);
	free(s);
}

uint16_t ts_port(testsrv *s)
{
	return s->port;
}

const char *ts_url(testsrv *s)
{
	return s->url;
}

size_t ts_count(testsrv *s)
{
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = s->n;
	pthread_mutex_unlock(&s->mu);
	return n;
}

const ts_arrival *ts_get(testsrv *s, size_t i)
{
	return i < ts_count(s) ? &s->arrivals[i] : NULL;
}

int ts_max_in_flight(testsrv *s)
{
	int m;

	pthread_mutex_lock(&s->mu);
	m = s->max_in_flight;
	pthread_mutex_unlock(&s->mu);
	return m;
}

const char *ts_header(const ts_arrival *a, const char *name)
{
	for (size_t i = 0; i < a->nheaders; i++)
		if (strcasecmp(a->headers[i].key, name) == 0)
			return a->headers[i].value;
	return NULL;
}

int ts_client_setup(void **state)
{
	ts_client *c = calloc(1, sizeof(*c));
	af_client_options o;

	af_log_setup(AF_LOG_ERROR, AF_LOG_TEXT);
	af_client_options_default(&o);
	o.base_delay_ms = 5;
	o.max_delay_ms = 20;
	if (!c || af_client_new(&c->client, &o) < 0 || af_session_new(&c->session, c->client) < 0) {
		ts_client_teardown((void **)&c);
		return -1;
	}
	*state = c;
	return 0;
}

int ts_client_teardown(void **state)
{
	ts_client *c = *state;

	if (c) {
		af_session_free(c->session);
		af_client_free(c->client);
		free(c);
	}
	*state = NULL;
	return 0;
}
