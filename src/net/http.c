/*
 * The signed API transport over libcurl: one easy handle per session (its
 * connection cache gives keep-alive), a client shared by the worker threads
 * for options, rate limits, the concurrency bound, the retry budget and the
 * counters. Policy details: docs/transport.md.
 */
#include "aifleet/clock.h"
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/log.h"
#include "aifleet/product.h"
#include "aifleet/secret.h"
#include "aifleet/version.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Requests per second of a product without a descriptor or a setting. */
#define AF_DEFAULT_RATE 10.0
#define TC3_CONTENT_TYPE "application/json; charset=utf-8"

typedef struct rate_entry {
	char *provider, *product, *account;
	af_token_bucket bucket;
	struct rate_entry *next;
} rate_entry;

typedef struct conc_slot {
	char *provider;
	int in_flight;
	struct conc_slot *next;
} conc_slot;

struct af_client {
	af_client_options o;
	char *ca_bundle;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a concurrency slot was released */
	rate_entry *rates;
	conc_slot *slots;
	int retries_used;
	af_client_stats stats;
};

struct af_session {
	af_client *c;
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
	af_buf *sink;     /* the body of the transfer in progress */
	bool over_limit;  /* the sink hit its cap */
	int sends;        /* times libcurl was about to send this attempt's request */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Sleeps `seconds` on the monotonic clock, resuming after signals. */
static void mono_sleep(double seconds)
{
	struct timespec until;
	double t;

	if (!(seconds > 0))
		return;
	t = af_clock_seconds() + seconds;
	until.tv_sec = (time_t)t;
	until.tv_nsec = (long)((t - (double)until.tv_sec) * 1e9);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
		;
}

void af_api_response_init(af_api_response *r)
{
	memset(r, 0, sizeof(*r));
	af_buf_init(&r->body, 0);
}

void af_api_response_free(af_api_response *r)
{
	if (!r)
		return;
	/* Bodies can hold secrets (the Hologres apiKey): wipe them. */
	af_buf_free_secret(&r->body);
	json_object_put(r->json);
	r->json = NULL;
	af_items_free(r->items);
	r->items = NULL;
}

void af_client_options_default(af_client_options *o)
{
	memset(o, 0, sizeof(*o));
	o->connect_timeout_ms = 5000;
	o->total_timeout_ms = 30000;
	o->max_response_bytes = (size_t)32 * 1024 * 1024;
	o->max_attempts = 4;
	o->base_delay_ms = 200;
	o->max_delay_ms = 20000;
	o->retry_budget = 200;
	o->max_concurrency = 4;
}

int af_client_new(af_client **out, const af_client_options *opts)
{
	af_client *c;

	*out = NULL;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return af_error_set(AF_ERR_GENERIC, "curl_global_init: %s",
				    curl_easy_strerror(curl_init_rc));
	if (!(c = calloc(1, sizeof(*c))))
		return af_error_oom();
	if (opts)
		c->o = *opts;
	else
		af_client_options_default(&c->o);
	if (c->o.ca_bundle && !(c->ca_bundle = strdup(c->o.ca_bundle))) {
		free(c);
		return af_error_oom();
	}
	c->o.ca_bundle = c->ca_bundle;
	/* Zero means "not set": fall back to the documented defaults. */
	if (c->o.connect_timeout_ms <= 0)
		c->o.connect_timeout_ms = 5000;
	if (c->o.total_timeout_ms <= 0)
		c->o.total_timeout_ms = 30000;
	if (c->o.max_response_bytes == 0)
		c->o.max_response_bytes = (size_t)32 * 1024 * 1024;
	if (c->o.max_attempts <= 0)
		c->o.max_attempts = 4;
	if (c->o.max_concurrency <= 0)
		c->o.max_concurrency = 4;
	if (c->o.retry_budget < 0)
		c->o.retry_budget = 0;
	if (c->o.base_delay_ms < 0)
		c->o.base_delay_ms = 0;
	if (c->o.max_delay_ms < 0)
		c->o.max_delay_ms = 0;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	*out = c;
	return 0;
}

void af_client_free(af_client *c)
{
	if (!c)
		return;
	for (rate_entry *r = c->rates, *next; r; r = next) {
		next = r->next;
		free(r->provider);
		free(r->product);
		free(r->account);
		free(r);
	}
	for (conc_slot *s = c->slots, *next; s; s = next) {
		next = s->next;
		free(s->provider);
		free(s);
	}
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c->ca_bundle);
	free(c);
}

static const char *nz(const char *s)
{
	return s ? s : "";
}

/* A product's own default rate (its descriptor), else a rate well below
 * the usual limits: a bucket is never unlimited. */
static double default_rate(const char *product)
{
	const af_product *p = af_product_find(product);

	return p ? p->default_rate : AF_DEFAULT_RATE;
}

/* Under c->mu. */
static rate_entry *rate_find(af_client *c, const char *provider, const char *product,
			     const char *account, bool create)
{
	rate_entry *r;

	for (r = c->rates; r; r = r->next)
		if (strcmp(r->provider, nz(provider)) == 0 && strcmp(r->product, nz(product)) == 0 &&
		    strcmp(r->account, nz(account)) == 0)
			return r;
	if (!create || !(r = calloc(1, sizeof(*r))))
		return NULL;
	r->provider = strdup(nz(provider));
	r->product = strdup(nz(product));
	r->account = strdup(nz(account));
	if (!r->provider || !r->product || !r->account) {
		free(r->provider);
		free(r->product);
		free(r->account);
		free(r);
		return NULL;
	}
	/* Burst 1: never above the per-second limit in any window. */
	af_token_bucket_init(&r->bucket, default_rate(product), 1, af_clock_seconds());
	r->next = c->rates;
	c->rates = r;
	return r;
}

int af_client_set_rate(af_client *c, const char *provider, const char *product,
		       const char *account, double rps, double burst)
{
	rate_entry *r;

	if (!(rps > 0) || !(burst >= 0))
		return af_error_set(AF_ERR_CONFIG, "rate limit for %s %s account=%s must be > 0",
				    nz(provider), nz(product), nz(account));
	pthread_mutex_lock(&c->mu);
	r = rate_find(c, provider, product, account, true);
	if (r)
		af_token_bucket_init(&r->bucket, rps, burst, af_clock_seconds());
	pthread_mutex_unlock(&c->mu);
	return r ? 0 : af_error_oom();
}

void af_client_get_stats(af_client *c, af_client_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->stats;
	pthread_mutex_unlock(&c->mu);
}

/*
 * libcurl resends a request by itself when the kept-alive connection it
 * went out on turns out dead -- with the same headers, so with the same
 * signature nonce, which the provider refuses as a replay
 * (SignatureNonceUsed). Refuse the resend: the transfer then fails with
 * CURLE_ABORTED_BY_CALLBACK, a transient error, and the next attempt is
 * signed afresh.
 */
static int on_prereq(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
		     int conn_local_port)
{
	af_session *s = ud;

	(void)conn_primary_ip, (void)conn_local_ip, (void)conn_primary_port, (void)conn_local_port;
	return ++s->sends > 1 ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	af_session *s = ud;
	size_t len = size * nmemb;

	if (af_buf_append(s->sink, ptr, len) < 0) {
		/* Returning short aborts the transfer with CURLE_WRITE_ERROR. */
		s->over_limit = true;
		return 0;
	}
	return len;
}

int af_session_new(af_session **out, af_client *c)
{
	af_session *s;
	CURL *h;
	const af_client_options *o = &c->o;

	*out = NULL;
	if (!(s = calloc(1, sizeof(*s))))
		return af_error_oom();
	if (!(h = curl_easy_init())) {
		free(s);
		return af_error_set(AF_ERR_GENERIC, "curl_easy_init failed");
	}
	s->c = c;
	s->curl = h;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->ca_bundle)
		curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_bundle);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->total_timeout_ms);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_USERAGENT, AIFLEET_USER_AGENT);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(h, CURLOPT_PREREQDATA, s);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
	*out = s;
	return 0;
}

void af_session_free(af_session *s)
{
	if (!s)
		return;
	curl_easy_cleanup(s->curl);
	free(s);
}

struct af_session_pool {
	af_client *client;
	pthread_mutex_t mu;
	af_session **idle;
	size_t nidle, max_idle;
};

int af_session_pool_new(af_session_pool **out, af_client *c, size_t max_idle)
{
	af_session_pool *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p || !(p->idle = calloc(max_idle ? max_idle : 1, sizeof(*p->idle)))) {
		free(p);
		return af_error_oom();
	}
	p->client = c;
	p->max_idle = max_idle;
	pthread_mutex_init(&p->mu, NULL);
	*out = p;
	return 0;
}

int af_session_pool_take(af_session_pool *p, af_session **out)
{
	pthread_mutex_lock(&p->mu);
	*out = p->nidle ? p->idle[--p->nidle] : NULL;
	pthread_mutex_unlock(&p->mu);
	return *out ? 0 : af_session_new(out, p->client);
}

void af_session_pool_give(af_session_pool *p, af_session *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&p->mu);
	if (p->nidle < p->max_idle) {
		p->idle[p->nidle++] = s;
		s = NULL;
	}
	pthread_mutex_unlock(&p->mu);
	af_session_free(s);
}

void af_session_pool_free(af_session_pool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nidle; i++)
		af_session_free(p->idle[i]);
	pthread_mutex_destroy(&p->mu);
	free(p->idle);
	free(p);
}

static void slist_free_wiped(struct curl_slist *l)
{
	/* The list holds Authorization and token headers. */
	for (struct curl_slist *p = l; p; p = p->next)
		OPENSSL_cleanse(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

typedef struct req_target {
	char url[4096];
	char host[512];     /* the Host header value: host[:port] */
	char path[2048];    /* the full path as sent: base path + request path */
	char scheme[16];
} req_target;

static int parse_endpoint(req_target *t, const af_api_request *req, af_buf *cq)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	const char *rpath = req->path && req->path[0] ? req->path : "/";
	size_t blen;
	int w, err = 0;
	CURLUcode uc;

	if (!u)
		return af_error_oom();
	if (!req->endpoint || (uc = curl_url_set(u, CURLUPART_URL, req->endpoint, 0)) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		err = af_error_set(AF_ERR_CONFIG, "invalid endpoint URL \"%s\"", nz(req->endpoint));
		goto done;
	}
	/* Only a port that differs from the scheme's default is in Host. */
	if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_NO_DEFAULT_PORT) != CURLUE_OK)
		port = NULL;
	blen = strlen(path);
	while (blen > 0 && path[blen - 1] == '/')
		blen--;
	w = snprintf(t->path, sizeof(t->path), "%.*s%s%s", (int)blen, path,
		     rpath[0] == '/' ? "" : "/", rpath);
	if (w < 0 || (size_t)w >= sizeof(t->path)) {
		err = af_error_set(AF_ERR_CONFIG, "request path too long");
		goto done;
	}
	w = snprintf(t->host, sizeof(t->host), "%s%s%s", host, port ? ":" : "", port ? port : "");
	if (w < 0 || (size_t)w >= sizeof(t->host)) {
		err = af_error_set(AF_ERR_CONFIG, "endpoint host too long");
		goto done;
	}
	snprintf(t->scheme, sizeof(t->scheme), "%s", scheme);
	w = snprintf(t->url, sizeof(t->url), "%s://%s%s%s%s", scheme, t->host, t->path,
		     af_buf_len(cq) ? "?" : "", af_buf_len(cq) ? af_buf_data(cq) : "");
	if (w < 0 || (size_t)w >= sizeof(t->url))
		err = af_error_set(AF_ERR_LIMIT, "request URL longer than %zu bytes",
				   sizeof(t->url));
done:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return err;
}

static int slist_add(struct curl_slist **l, const char *name, const char *value)
{
	af_buf line = AF_BUF_INIT;
	struct curl_slist *n;
	int err;

	/* "Name;" sends an empty header; "Name:" would remove it. */
	if ((err = af_buf_printf(&line, value[0] ? "%s: %s" : "%s;", name, value)) < 0)
		return err;
	n = curl_slist_append(*l, af_buf_data(&line));
	af_buf_free_secret(&line);
	if (!n)
		return af_error_oom();
	*l = n;
	return 0;
}

static void debug_request(const char *method, const char *url, const af_kv *h, size_t nh)
{
	if (!af_log_enabled(AF_LOG_DEBUG))
		return;
	af_debug("http", "%s %s", method, url);
	for (size_t i = 0; i < nh; i++)
		af_debug("http", "  %s: %s", h[i].key,
			 af_log_header_is_secret(h[i].key) ? AF_SECRET_REDACTED : h[i].value);
}

/* Signs the request with a fresh timestamp and nonce; fills the header list. */
static int build_headers(struct curl_slist **list, af_kv *h, size_t *nh, af_sign_steps *steps,
			 const af_api_request *req, const af_credentials *cr, req_target *t,
			 char *date, char *nonce, char *ts, char *payload_hash)
{
	const char *body = req->body ? req->body : "";
	size_t body_len = req->body ? req->body_len : 0;
	int err;

	*nh = 0;
	if (req->style == AF_API_TC3) {
		if (!req->service || !req->service[0])
			return af_error_set(AF_ERR_PARAM, "TC3 request without a service name");
		if (!req->body) {
			body = "{}";
			body_len = 2;
		}
		af_sha256_hex(payload_hash, body, body_len);
		snprintf(ts, 24, "%lld", (long long)time(NULL));
		af_tc3_input in = {
			.method = req->method ? req->method : "POST",
			.query = req->query,
			.nquery = req->nquery,
			.content_type = TC3_CONTENT_TYPE,
			.host = t->host,
			.payload_hash = payload_hash,
			.service = req->service,
			.timestamp = strtoll(ts, NULL, 10),
			.secret_id = cr->access_key_id,
			.secret_key = cr->access_key_secret,
			.canonical_uri = t->path,
		};
		if (!req->unsigned_call && (err = af_tc3_sign(steps, &in)) < 0)
			return err;
		h[(*nh)++] = (af_kv){"Host", t->host};
		h[(*nh)++] = (af_kv){"Content-Type", TC3_CONTENT_TYPE};
		h[(*nh)++] = (af_kv){"X-TC-Action", nz(req->action)};
		h[(*nh)++] = (af_kv){"X-TC-Version", nz(req->version)};
		h[(*nh)++] = (af_kv){"X-TC-Timestamp", ts};
		if (req->region && req->region[0])
			h[(*nh)++] = (af_kv){"X-TC-Region", req->region};
		if (cr->security_token && cr->security_token[0])
			h[(*nh)++] = (af_kv){"X-TC-Token", cr->security_token};
	} else {
		af_sha256_hex(payload_hash, body, body_len);
		af_acs3_format_date(date, (int64_t)time(NULL));
		if ((err = af_sign_nonce(nonce)) < 0)
			return err;
		h[(*nh)++] = (af_kv){"host", t->host};
		h[(*nh)++] = (af_kv){"x-acs-action", nz(req->action)};
		h[(*nh)++] = (af_kv){"x-acs-version", nz(req->version)};
		h[(*nh)++] = (af_kv){"x-acs-date", date};
		h[(*nh)++] = (af_kv){"x-acs-signature-nonce", nonce};
		h[(*nh)++] = (af_kv){"x-acs-content-sha256", payload_hash};
		if (cr->security_token && cr->security_token[0])
			h[(*nh)++] = (af_kv){"x-acs-security-token", cr->security_token};
		if (req->body)
			h[(*nh)++] = (af_kv){"content-type",
					     req->content_type ? req->content_type : "application/json"};
		af_acs3_input in = {
			.method = req->method ? req->method : "GET",
			.canonical_uri = t->path,
			.query = req->query,
			.nquery = req->nquery,
			.headers = h,
			.nheaders = *nh,
			.payload_hash = payload_hash,
			.access_key_id = cr->access_key_id,
			.access_key_secret = cr->access_key_secret,
		};
		if (!req->unsigned_call && (err = af_acs3_sign(steps, &in)) < 0)
			return err;
		h[(*nh)++] = (af_kv){"accept", "application/json"};
	}
	if (!req->unsigned_call)
		h[(*nh)++] = (af_kv){"Authorization", af_buf_data(&steps->authorization)};
	else if (req->style == AF_API_TC3)
		h[(*nh)++] = (af_kv){"Authorization", "SKIP"};
	for (size_t i = 0; i < *nh; i++)
		if ((err = slist_add(list, h[i].key, h[i].value)) < 0)
			return err;
	/* "Expect:" removes curl's 100-continue round trip for bodies. */
	{
		struct curl_slist *n = curl_slist_append(*list, "Expect:");

		if (!n)
			return af_error_oom();
		*list = n;
	}
	return 0;
}

typedef struct attempt_result {
	CURLcode cc;
	long status;
	long retry_after_ms;
	bool over_limit;
	bool resend_refused; /* the connection died and libcurl wanted to resend */
	char request_id[128]; /* x-acs-request-id / X-TC-RequestId response header */
} attempt_result;

/* Points the handle at `url` with `headers`, the answer going into a fresh
 * `body` capped at `max`. The caller sets the method, then transfer_run. */
static void transfer_begin(af_session *s, af_buf *body, size_t max, const char *url,
			   struct curl_slist *headers)
{
	af_buf_free_secret(body);
	af_buf_init(body, max);
	s->sink = body;
	s->over_limit = false;
	s->sends = 0;
	s->errbuf[0] = '\0';
	curl_easy_setopt(s->curl, CURLOPT_URL, url);
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, headers);
}

/* Performs the transfer transfer_begin set up: how it went lands in *ar,
 * the client's counters count it, the handle forgets the headers. */
static void transfer_run(af_session *s, const char *method, const char *url,
			 attempt_result *ar)
{
	af_client *c = s->c;
	long connects = 0;

	ar->cc = curl_easy_perform(s->curl);
	ar->over_limit = s->over_limit;
	ar->resend_refused = ar->cc == CURLE_ABORTED_BY_CALLBACK && s->sends > 1;
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &ar->status);
	curl_easy_getinfo(s->curl, CURLINFO_NUM_CONNECTS, &connects);
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, NULL);
	af_debug("http", "%s %s -> HTTP %ld, %zu bytes, curl %d", method, url, ar->status,
		 af_buf_len(s->sink), (int)ar->cc);
	pthread_mutex_lock(&c->mu);
	c->stats.requests++;
	c->stats.bytes += af_buf_len(s->sink);
	c->stats.connects += (uint64_t)(connects > 0 ? connects : 0);
	pthread_mutex_unlock(&c->mu);
	s->sink = NULL;
}

/* Builds, signs and sends one attempt; the answer lands in out->body. */
static int do_attempt(af_session *s, const af_api_request *req, const af_credentials *cr,
		      af_api_response *out, attempt_result *ar)
{
	af_client *c = s->c;
	af_buf cq = AF_BUF_INIT;
	af_sign_steps steps;
	struct curl_slist *list = NULL;
	req_target t;
	af_kv h[12];
	size_t nh = 0;
	char date[21] = "", nonce[33] = "", ts[24] = "", ph[65] = "";
	const char *method;
	struct curl_header *rh;
	int err;

	memset(ar, 0, sizeof(*ar));
	af_sign_steps_init(&steps);
	if ((err = af_canonical_query(&cq, req->query, req->nquery)) < 0 ||
	    (err = parse_endpoint(&t, req, &cq)) < 0 ||
	    (err = build_headers(&list, h, &nh, &steps, req, cr, &t, date, nonce, ts, ph)) < 0)
		goto done;
	method = req->method ? req->method : (req->style == AF_API_TC3 ? "POST" : "GET");
	debug_request(method, t.url, h, nh);

	transfer_begin(s, &out->body, c->o.max_response_bytes, t.url, list);
	if (req->style == AF_API_TC3 && strcmp(method, "POST") == 0) {
		const char *body = req->body ? req->body : "{}";
		size_t blen = req->body ? req->body_len : 2;

		curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
		curl_easy_setopt(s->curl, CURLOPT_CUSTOMREQUEST, NULL);
	} else if (req->body) {
		curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(s->curl, CURLOPT_CUSTOMREQUEST,
				 strcmp(method, "POST") == 0 ? NULL : method);
	} else {
		curl_easy_setopt(s->curl, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(s->curl, CURLOPT_CUSTOMREQUEST,
				 strcmp(method, "GET") == 0 ? NULL : method);
	}
	transfer_run(s, method, t.url, ar);
	out->http_status = ar->status;
	if (ar->cc == CURLE_OK &&
	    curl_easy_header(s->curl, "x-acs-retry-after", 0, CURLH_HEADER, -1, &rh) == CURLHE_OK) {
		long v = strtol(rh->value, NULL, 10);

		ar->retry_after_ms = v > 0 ? v : 0;
	}
	/* Errors without a RequestId in the body still carry one here. */
	if (ar->cc == CURLE_OK &&
	    (curl_easy_header(s->curl, "x-acs-request-id", 0, CURLH_HEADER, -1, &rh) == CURLHE_OK ||
	     curl_easy_header(s->curl, "X-TC-RequestId", 0, CURLH_HEADER, -1, &rh) == CURLHE_OK))
		snprintf(ar->request_id, sizeof(ar->request_id), "%.*s",
			 (int)strcspn(rh->value, " \t\r\n\"\\"), rh->value);
done:
	slist_free_wiped(list);
	af_sign_steps_free(&steps);
	af_buf_free(&cq);
	return err;
}

/*
 * Verdict for an HTTP answer. A list request's success body is split
 * first (aifleet/items.h) and the verdict is the envelope's: the error
 * shapes (Code, code, success, RequestId, Message, Response.Error) are
 * top-level members, which the envelope keeps as they came, and the list
 * never becomes one tree. The body is then empty: the items own its data.
 */
static void classify_answer(af_api_verdict *v, const af_api_request *req, af_api_response *out,
			    const attempt_result *ar)
{
	const char *text = af_buf_data(&out->body);
	size_t len = af_buf_len(&out->body);
	char *envelope = NULL;
	int err;

	if (req->list_member && ar->status >= 200 && ar->status < 300) {
		err = af_items_split(&out->items, &envelope, &len, &out->body, req->list_member);
		if (err < 0) {
			memset(v, 0, sizeof(*v));
			v->klass = err;
			snprintf(v->message, sizeof(v->message), "%s", af_error_last());
			return;
		}
		if (out->items) {
			text = envelope;
			af_debug("http", "%s: %zu %s items kept as %zu bytes of text",
				 nz(req->action), af_items_count(out->items), req->list_member,
				 af_items_bytes(out->items));
		} else {
			len = af_buf_len(&out->body);
		}
	}
	af_api_classify(v, &out->json, req->style, ar->status, text, len, ar->retry_after_ms);
	free(envelope);
	if (v->klass != 0) {
		af_items_free(out->items);
		out->items = NULL;
	}
}

/* Verdict for a failed transfer (no usable HTTP answer). */
static void classify_curl(af_api_verdict *v, const attempt_result *ar, const char *errbuf)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->message, sizeof(v->message), "%s%s%s%s", curl_easy_strerror(ar->cc),
		 errbuf[0] ? " (" : "", errbuf, errbuf[0] ? ")" : "");
	if (ar->resend_refused) {
		snprintf(v->message, sizeof(v->message),
			 "the connection was dropped with the request in flight; retrying with a"
			 " fresh signature");
		v->klass = AF_ERR_TRANSIENT;
		v->retry = true;
		return;
	}
	switch (ar->cc) {
	case CURLE_WRITE_ERROR:
		v->klass = ar->over_limit ? AF_ERR_LIMIT : AF_ERR_GENERIC;
		if (ar->over_limit)
			snprintf(v->message, sizeof(v->message),
				 "response larger than the cap, transfer aborted");
		break;
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		v->klass = AF_ERR_TRANSIENT;
		v->retry = true;
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		/* Not transient: the same CA bundle fails the same way next time. */
		v->klass = AF_ERR_CONFIG;
		snprintf(v->message + strlen(v->message), sizeof(v->message) - strlen(v->message),
			 "; TLS verification failed: check [sync] ca_bundle (the CA bundle that"
			 " verifies the provider's certificate) and the endpoint's host name");
		break;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		v->klass = AF_ERR_CONFIG;
		break;
	default:
		v->klass = AF_ERR_GENERIC;
		break;
	}
}

static conc_slot *slot_find(af_client *c, const char *provider)
{
	conc_slot *s;

	for (s = c->slots; s; s = s->next)
		if (strcmp(s->provider, provider) == 0)
			return s;
	if (!(s = calloc(1, sizeof(*s))) || !(s->provider = strdup(provider))) {
		free(s);
		return NULL;
	}
	s->next = c->slots;
	c->slots = s;
	return s;
}

static int slot_acquire(af_client *c, const char *provider)
{
	conc_slot *s;

	pthread_mutex_lock(&c->mu);
	if (!(s = slot_find(c, provider))) {
		pthread_mutex_unlock(&c->mu);
		return af_error_oom();
	}
	while (s->in_flight >= c->o.max_concurrency)
		pthread_cond_wait(&c->cv, &c->mu);
	s->in_flight++;
	pthread_mutex_unlock(&c->mu);
	return 0;
}

static void slot_release(af_client *c, const char *provider)
{
	conc_slot *s;

	pthread_mutex_lock(&c->mu);
	if ((s = slot_find(c, provider)) && s->in_flight > 0)
		s->in_flight--;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void rate_wait(af_client *c, const af_api_request *req)
{
	rate_entry *r;
	double wait = 0;

	pthread_mutex_lock(&c->mu);
	if ((r = rate_find(c, req->provider, req->product, req->account, true)))
		wait = af_token_bucket_reserve(&r->bucket, af_clock_seconds());
	pthread_mutex_unlock(&c->mu);
	mono_sleep(wait);
}

static void rate_feedback(af_client *c, const af_api_request *req, bool ok, bool throttled)
{
	rate_entry *r;

	pthread_mutex_lock(&c->mu);
	if (throttled)
		c->stats.throttled++;
	if ((r = rate_find(c, req->provider, req->product, req->account, false))) {
		if (throttled)
			af_token_bucket_throttled(&r->bucket, af_clock_seconds());
		else if (ok)
			af_token_bucket_success(&r->bucket, af_clock_seconds());
	}
	pthread_mutex_unlock(&c->mu);
}

static double jitter_u(void)
{
	uint32_t x = 0;

	if (RAND_bytes((unsigned char *)&x, sizeof(x)) != 1)
		x = (uint32_t)rand();
	return (double)x / 4294967296.0;
}

int af_session_call(af_session *s, const af_api_request *req, const af_credentials *creds,
		    af_api_response *out)
{
	af_client *c = s->c;
	const char *provider = req->provider ? req->provider : "?";
	af_api_verdict v;
	attempt_result ar;
	char suffix[96] = "";
	int err = 0, attempt;

	json_object_put(out->json);
	out->json = NULL;
	af_items_free(out->items);
	out->items = NULL;
	out->request_id[0] = out->error_code[0] = '\0';
	out->attempts = 0;
	out->throttled = 0;
	if (!creds || (!req->unsigned_call && (!creds->access_key_id || !creds->access_key_secret)))
		return af_error_set(AF_ERR_CONFIG, "%s %s %s account=%s: no credentials", provider,
				    nz(req->product), nz(req->action), nz(req->account));
	for (attempt = 0;; attempt++) {
		if ((err = slot_acquire(c, provider)) < 0)
			return err;
		rate_wait(c, req);
		err = do_attempt(s, req, creds, out, &ar);
		slot_release(c, provider);
		out->attempts = attempt + 1;
		if (err < 0)
			goto fail_local;
		if (ar.cc != CURLE_OK)
			classify_curl(&v, &ar, s->errbuf);
		else
			classify_answer(&v, req, out, &ar);
		if (!v.request_id[0])
			memcpy(v.request_id, ar.request_id, sizeof(v.request_id));
		snprintf(out->request_id, sizeof(out->request_id), "%s", v.request_id);
		snprintf(out->error_code, sizeof(out->error_code), "%s", v.code);
		rate_feedback(c, req, v.klass == 0, v.throttled);
		if (v.throttled)
			out->throttled++;
		if (v.klass == 0)
			return 0;
		if (!v.retry)
			break;
		if (attempt + 1 >= c->o.max_attempts) {
			snprintf(suffix, sizeof(suffix), " [gave up after %d attempts]",
				 attempt + 1);
			break;
		}
		pthread_mutex_lock(&c->mu);
		if (c->retries_used >= c->o.retry_budget) {
			pthread_mutex_unlock(&c->mu);
			snprintf(suffix, sizeof(suffix), " [run retry budget of %d exhausted]",
				 c->o.retry_budget);
			break;
		}
		c->retries_used++;
		c->stats.retries++;
		pthread_mutex_unlock(&c->mu);
		long delay = af_backoff_delay_ms(c->o.base_delay_ms, c->o.max_delay_ms, attempt,
						 req->style == AF_API_TC3 ? 0 : ar.retry_after_ms,
						 jitter_u());
		af_debug("http", "%s %s %s: retry %d in %ld ms (%s%s%s)", provider,
			 nz(req->product), nz(req->action), attempt + 1, delay,
			 v.code[0] ? v.code : "", v.code[0] ? ": " : "", v.message);
		mono_sleep((double)delay / 1000.0);
	}
	/* The provider's text may echo what we sent; never let a key through:
	 * ours by value, any other by the secret policy. */
	af_secret_redact_in_place(v.message, sizeof(v.message));
	af_secret_redact_value(v.message, sizeof(v.message), creds->access_key_secret);
	af_secret_redact_value(v.message, sizeof(v.message), creds->access_key_id);
	af_secret_redact_value(v.message, sizeof(v.message), creds->security_token);
	af_secret_redact_value(v.message, sizeof(v.message), req->redact);
	pthread_mutex_lock(&c->mu);
	c->stats.errors++;
	pthread_mutex_unlock(&c->mu);
	return af_error_set(v.klass, "%s %s %s region=%s account=%s: HTTP %ld %s (request %s): %s%s",
			    provider, nz(req->product), nz(req->action), nz(req->region),
			    nz(req->account), ar.status, v.code[0] ? v.code : "-",
			    v.request_id[0] ? v.request_id : "-", v.message, suffix);
fail_local:
	pthread_mutex_lock(&c->mu);
	c->stats.errors++;
	pthread_mutex_unlock(&c->mu);
	return af_error_prefix(err, "%s %s %s region=%s account=%s: ", provider, nz(req->product),
			       nz(req->action), nz(req->region), nz(req->account));
}

/* ---- plain calls: the instance metadata services ------------------------ */

#define PLAIN_MAX_BODY ((size_t)64 * 1024)

static int plain_attempt(af_session *s, const af_plain_request *req, long *status, af_buf *out,
			 attempt_result *ar)
{
	const af_client_options *o = &s->c->o;
	struct curl_slist *list = NULL;
	bool put = strcmp(req->method, "PUT") == 0;
	int err = 0;

	memset(ar, 0, sizeof(*ar));
	for (size_t i = 0; i < req->nheaders; i++)
		if ((err = slist_add(&list, req->headers[i].key, req->headers[i].value)) < 0)
			goto done;
	transfer_begin(s, out, PLAIN_MAX_BODY, req->url, list);
	curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 req->connect_timeout_ms > 0 ? req->connect_timeout_ms : o->connect_timeout_ms);
	curl_easy_setopt(s->curl, CURLOPT_TIMEOUT_MS,
			 req->total_timeout_ms > 0 ? req->total_timeout_ms : o->total_timeout_ms);
	if (put) {
		curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		curl_easy_setopt(s->curl, CURLOPT_CUSTOMREQUEST, "PUT");
	} else {
		curl_easy_setopt(s->curl, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(s->curl, CURLOPT_CUSTOMREQUEST, NULL);
	}
	transfer_run(s, req->method, req->url, ar);
	*status = ar->status;
	/* back to the API calls' timeouts */
	curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
	curl_easy_setopt(s->curl, CURLOPT_TIMEOUT_MS, o->total_timeout_ms);
done:
	slist_free_wiped(list);
	return err;
}

int af_session_plain(af_session *s, const af_plain_request *req, long *status, af_buf *out)
{
	const af_client_options *o = &s->c->o;
	af_api_verdict v;
	attempt_result ar;
	int err;

	*status = 0;
	for (int attempt = 0;; attempt++) {
		if ((err = plain_attempt(s, req, status, out, &ar)) < 0)
			return af_error_prefix(err, "%s: ", req->what);
		if (ar.cc == CURLE_OK && (ar.status < 500 || ar.status > 599))
			return 0; /* an answer: the caller reads its status */
		if (ar.cc != CURLE_OK) {
			classify_curl(&v, &ar, s->errbuf);
		} else {
			memset(&v, 0, sizeof(v));
			v.klass = AF_ERR_TRANSIENT;
			v.retry = true;
			snprintf(v.message, sizeof(v.message), "HTTP %ld", ar.status);
		}
		if (!v.retry || attempt + 1 >= o->max_attempts)
			break;
		mono_sleep((double)af_backoff_delay_ms(o->base_delay_ms, o->max_delay_ms, attempt, 0,
						       jitter_u()) /
			   1000.0);
	}
	af_buf_free_secret(out);
	af_secret_redact_in_place(v.message, sizeof(v.message));
	return af_error_set(v.klass, "%s: %s %s: %s", req->what, req->method, req->url, v.message);
}
