#ifndef AIFLEET_HTTP_H
#define AIFLEET_HTTP_H

/*
 * The signed API transport: one call = sign, send over libcurl, classify
 * the answer, retry what is transient, respect the rate limits.
 *
 * af_client is shared by all threads of a run: it holds options, rate
 * limiters (token bucket per provider/product/account, AIMD on throttling),
 * the run's retry budget and counters, all behind a mutex.
 * af_session is one libcurl handle (one connection cache): one per worker
 * thread, reused across calls so connections are kept alive.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aifleet/buf.h"
#include "aifleet/creds.h"
#include "aifleet/items.h"
#include "aifleet/sign.h"

typedef enum af_api_style {
	AF_API_ACS3_RPC, /* Alibaba RPC: GET /?query, V3 signed */
	AF_API_ACS3_ROA, /* Alibaba ROA: GET /path, V3 signed */
	AF_API_TC3,      /* Tencent API 3.0: POST / JSON, TC3 signed */
} af_api_style;

typedef struct af_api_request {
	af_api_style style;
	const char *endpoint; /* scheme://host[:port][/base]: https://r-kvstore.aliyuncs.com
	                         or http://127.0.0.1:8080 for the simulator. A base path
	                         (http://127.0.0.1:8089/cn-hangzhou) is prepended to
	                         `path`, and the full path as sent is what is signed. */
	const char *method;   /* GET or POST */
	const char *path;     /* "/" or the ROA path, segments already encoded */
	const af_kv *query;   /* decoded parameters, flattened (Tag.1.Key) */
	size_t nquery;
	const char *body;     /* request body (TC3 JSON) or NULL */
	size_t body_len;
	const char *action;   /* x-acs-action / X-TC-Action */
	const char *version;  /* x-acs-version / X-TC-Version */
	const char *region;   /* X-TC-Region; also named in messages */
	const char *service;  /* TC3 credential-scope service, e.g. "tione" */
	/* Labels: named in error messages, and the rate-limit key. */
	const char *provider; /* AF_PROVIDER_* */
	const char *product;  /* a registered product's name (aifleet/product.h) */
	const char *account;  /* account label, never a key */
	/* STS's OIDC calls are not signed: no Authorization (ACS3), or
	 * "Authorization: SKIP" (TC3); the credentials may then be empty. */
	bool unsigned_call;
	const char *content_type; /* of the body; NULL: application/json */
	const char *redact;   /* a secret the request carries (an OIDC token): kept out of errors */
	/* A top-level member of the answer that holds a long list (an API
	 * without paging). A success body's list is then split off
	 * (aifleet/items.h): its elements go to out->items as compact text,
	 * never one json-c tree, and out->json is the answer with the member
	 * as []. A body the splitter does not take is parsed whole, as
	 * without it. NULL: always parse whole. */
	const char *list_member;
} af_api_request;

typedef struct af_api_response {
	long http_status;
	af_buf body;          /* raw body bytes */
	json_object *json;    /* parsed body (owned); NULL unless the call succeeded */
	af_items *items;      /* with list_member: the list split off (owned), or NULL */
	char request_id[128]; /* provider RequestId, "" if none */
	char error_code[128]; /* provider error code on failure, "" otherwise */
	int attempts;         /* 1 + retries */
	int throttled;        /* attempts the provider answered with throttling */
} af_api_response;

void af_api_response_init(af_api_response *r);
void af_api_response_free(af_api_response *r);

typedef struct af_client_options {
	const char *ca_bundle;      /* NULL: the system default; verification is always on */
	long connect_timeout_ms;    /* default 5000 */
	long total_timeout_ms;      /* default 30000 */
	size_t max_response_bytes;  /* default 32 MiB */
	int max_attempts;           /* default 4 (1 + 3 retries) */
	long base_delay_ms;         /* default 200 */
	long max_delay_ms;          /* default 20000 */
	int retry_budget;           /* retries allowed in the whole run; default 200 */
	int max_concurrency;        /* per provider; default 4 */
} af_client_options;

void af_client_options_default(af_client_options *o);

typedef struct af_client_stats {
	uint64_t requests;      /* HTTP attempts made */
	uint64_t retries;
	uint64_t throttled;     /* throttling answers received */
	uint64_t errors;        /* calls that failed for good */
	uint64_t bytes;         /* response bytes received */
	uint64_t connects;      /* new connections opened (reuse = requests - connects) */
} af_client_stats;

typedef struct af_client af_client;
typedef struct af_session af_session;

int af_client_new(af_client **out, const af_client_options *opts);
void af_client_free(af_client *c);

/* Rate limit for one (provider, product, account): `rps` requests per second,
 * bursts up to `burst`. Without a call, the product descriptor's
 * default_rate applies (aifleet/product.h), burst 1; 10/s for a product
 * the registry does not know. */
int af_client_set_rate(af_client *c, const char *provider, const char *product,
		       const char *account, double rps, double burst);

void af_client_get_stats(af_client *c, af_client_stats *out);

int af_session_new(af_session **out, af_client *c);
void af_session_free(af_session *s);

/*
 * Idle sessions to hand out again. A collector's helper thread takes one
 * for its calls and gives it back when done, so that the helpers of the
 * next scope reuse its connection (and TLS session) instead of making new
 * ones: thousands of small scopes are otherwise thousands of handshakes.
 * Thread-safe; it keeps at most `max_idle` sessions.
 */
typedef struct af_session_pool af_session_pool;

int af_session_pool_new(af_session_pool **out, af_client *c, size_t max_idle);
/* An idle session, or a new one. */
int af_session_pool_take(af_session_pool *p, af_session **out);
/* Keeps `s` for the next taker, or frees it when enough are idle. */
void af_session_pool_give(af_session_pool *p, af_session *s);
/* Frees the idle sessions; every taken one must have been given back. */
void af_session_pool_free(af_session_pool *p);

/*
 * Performs one API call with retries. On success returns 0 with
 * out->json parsed. On failure returns a negative af_error_class
 * (AF_ERR_TRANSIENT after exhausting retries, AF_ERR_AUTH, AF_ERR_PARAM,
 * AF_ERR_DATA for an unparseable body, AF_ERR_LIMIT) and sets the last
 * error to a message naming provider, action, region, account, HTTP
 * status, error code and RequestId -- never a secret.
 */
int af_session_call(af_session *s, const af_api_request *req, const af_credentials *creds,
		    af_api_response *out);

/* A plain HTTP call, for the instance metadata services: no signature, no
 * rate limit, retried (like an API call, with backoff) on a failed
 * transfer or HTTP 5xx, at most max_attempts times. */
typedef struct af_plain_request {
	const char *method;      /* "GET" or "PUT" (without a body) */
	const char *url;
	const af_kv *headers;
	size_t nheaders;
	long connect_timeout_ms; /* 0: the client's */
	long total_timeout_ms;   /* 0: the client's */
	const char *what;        /* names the call in errors: "ECS metadata token" */
} af_plain_request;

/* On an answer (any status below 500 or above 599) returns 0 with *status
 * and the body in *out (at most 64 KiB; free it with af_buf_free_secret:
 * it may hold credentials). Otherwise a negative af_error_class naming
 * req->what and the URL, and *out is empty. */
int af_session_plain(af_session *s, const af_plain_request *req, long *status, af_buf *out);

/* ---- Helpers, exposed so that they can be unit-tested ------------------ */

/* Copies a configured endpoint, replacing every "{region}" with `region`.
 * AF_ERR_CONFIG if the template needs a region and none is given. */
int af_endpoint_expand(char *out, size_t n, const char *tmpl, const char *region);

/* Retry delay before retry number `attempt` (0 = the first retry):
 * retry_after_ms > 0 (x-acs-retry-after) -> min(retry_after_ms, max_ms);
 * otherwise full jitter: floor(u * (cap + 1)) with cap = min(max_ms,
 * base_ms * 2^attempt), u uniform in [0, 1). */
long af_backoff_delay_ms(long base_ms, long max_ms, int attempt, long retry_after_ms, double u);

/* What one HTTP answer means. */
typedef struct af_api_verdict {
	int klass;              /* 0 = success, else a negative af_error_class */
	bool retry;             /* transient: worth another attempt */
	bool throttled;         /* a throttling answer: slow this bucket down */
	char code[128];         /* provider error code, "" if none */
	char request_id[128];   /* provider RequestId, "" if none */
	char message[512];      /* provider message or parser/HTTP description */
} af_api_verdict;

/* Classifies one answer (see docs/transport.md for the code lists). On
 * success *json (if json is not NULL) receives the parsed body (caller
 * owns). retry_after_ms: the x-acs-retry-after header value, 0 if none. */
void af_api_classify(af_api_verdict *out, json_object **json, af_api_style style,
		     long http_status, const char *body, size_t len, long retry_after_ms);

/* A token bucket with AIMD rate adaptation; times in seconds on a monotonic
 * clock. Not locked: af_client serialises access. */
typedef struct af_token_bucket {
	double rate;      /* current requests per second */
	double max_rate;  /* the configured rate (recovery ceiling) */
	double min_rate;  /* floor for multiplicative decrease */
	double burst;     /* bucket depth */
	double tokens;    /* may go negative: reservations of future slots */
	double last;      /* time of the last refill */
} af_token_bucket;

void af_token_bucket_init(af_token_bucket *b, double rps, double burst, double now);
/* Reserves one request slot at `now`; returns the seconds to wait before
 * sending (0 if a token was available). Reservations are FIFO, so callers
 * that sleep the returned time never exceed the rate together. */
double af_token_bucket_reserve(af_token_bucket *b, double now);
/* AIMD: halve the rate (not below min_rate) on throttling ... */
void af_token_bucket_throttled(af_token_bucket *b, double now);
/* ... and add max_rate/20 (at least 0.1/s) per success, up to max_rate. */
void af_token_bucket_success(af_token_bucket *b, double now);

#endif
