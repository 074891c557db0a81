#ifndef AIFLEET_COLLECT_H
#define AIFLEET_COLLECT_H

/*
 * Collectors: one per product. A collector knows its endpoints, paging and
 * request shape, and nothing else: it asks its job to fetch pages
 * (af_job_fetch, which signs, retries, saves or replays) and hands each
 * page to its product's normalizer with af_job_sink() as the destination.
 *
 * Adding a product = one af_collector + one normalizer + tests.
 */

#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "aifleet/config.h"
#include "aifleet/creds.h"
#include "aifleet/http.h"
#include "aifleet/normalize.h"
#include "aifleet/record.h"
#include "aifleet/store.h"

typedef struct af_job af_job;

typedef struct af_collector {
	const char *product;  /* AF_PRODUCT_* */
	const char *provider; /* AF_PROVIDER_* */
	int default_page_size;
	/* Collects the whole scope. Returns 0 when every page was fetched and
	 * normalized, or a negative af_error_class at the first failure (the
	 * job has recorded what did arrive). */
	int (*collect)(af_job *job);
} af_collector;

/* The registry: every collector, NULL-terminated. */
extern const af_collector *const af_collectors[];
const af_collector *af_collector_find(const char *product);

/* Where raw pages come from / go to. */
typedef struct af_raw_options {
	const char *save_dir;   /* write every response page here, or NULL */
	const char *replay_dir; /* read pages from here instead of the network, or NULL */
} af_raw_options;

/*
 * One scope's collection. Created by the sync engine; collectors use only
 * the accessors below.
 */
struct af_job {
	af_scope scope;
	const af_collector *collector;
	const af_account_config *account;
	const af_product_config *product;
	const af_config *config;
	const af_credentials *creds;
	char endpoint[512];      /* resolved for this scope */
	af_client *client;
	af_session *session;     /* this worker's session */
	const af_raw_options *raw;

	/* Records go to `out` (the loader, single-threaded) through a
	 * de-duplicating filter; a collector holds `out_lock` (af_job_lock)
	 * while it normalizes a page into af_job_sink(). */
	const af_record_sink *out;
	pthread_mutex_t *out_lock;
	af_record_sink filter;
	struct lh_table *seen;   /* instance native ids of this scope */
	bool skipping;           /* inside a duplicate or rejected instance */
	pthread_mutex_t stats_lock;
	double fetch_seconds;
	double normalize_seconds; /* guarded by out_lock */
	double locked_at;

	/* Outcome. */
	af_norm_stats norm;
	af_scope_report report;
	char error[1024];
	int last_error_class;    /* class of the error that ended the scope */
};

/* Builds the request's common fields (endpoint, labels, style...) for this
 * job; the collector fills action, path, query, body. */
void af_job_request_init(af_job *job, af_api_request *req, af_api_style style,
			 const char *action, const char *version);

/*
 * Fetches one page. `page_key` names the page for --save-raw/--from-raw
 * (e.g. "page-3", "offset-200", "get-hgpostcn-cn-x"). On success *out is a
 * parsed body the caller must json_object_put(). On failure the error
 * (naming source, scope and request id) is in af_error_last().
 * Thread-safe as long as each thread uses its own `session`.
 */
int af_job_fetch(af_job *job, af_session *session, const af_api_request *req,
		 const char *page_key, json_object **out);

/* The provider's request id in a parsed body (RequestId, requestId or
 * Response.RequestId), or "-": for messages about a page. Borrowed. */
const char *af_page_request_id(json_object *body);

/* The sink to normalize into: de-duplicates instances (and their
 * children), counts, and forwards to the loader. Use it only between
 * af_job_lock() and af_job_unlock(). */
const af_record_sink *af_job_sink(af_job *job);
void af_job_lock(af_job *job);
void af_job_unlock(af_job *job);

/* Normalizes one page into af_job_sink() under the job's lock and adds the
 * normalizer's stats. */
int af_job_emit_page(af_job *job, af_page_normalizer normalize, json_object *page);

/* Adds normalizer stats after a page (logging the page's request id when
 * items were rejected); rejected items are added to the scope report when
 * the scope ends, and make the scope partial (a rejected item may still
 * exist, so nothing may be tombstoned). */
void af_job_add_norm_stats(af_job *job, const af_norm_stats *st, json_object *page);

/* Records the first error of the scope (message from af_error_last()). */
void af_job_fail(af_job *job, int err);

int af_job_init(af_job *job);
void af_job_cleanup(af_job *job);

#endif
