#ifndef AIFLEET_COLLECT_H
#define AIFLEET_COLLECT_H

/*
 * Collectors and the job they work in.
 *
 * A collector (the `collect` of a product descriptor, aifleet/product.h)
 * knows its API's requests and paging, and nothing else: it asks its job
 * to fetch pages (af_job_fetch signs, retries, saves or replays them) and
 * to emit each page through the product's normalizer (af_job_emit_page).
 * The job is opaque: a collector reads its scope, its page size and its
 * limits through the accessors below, never the configuration.
 *
 * The sync engine (aifleet/sync.h) creates one job per scope
 * (af_job_new), runs it on a worker (af_job_run) and reads its report.
 */

#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "aifleet/items.h"
#include "aifleet/normalize.h"
#include "aifleet/product.h"
#include "aifleet/record.h"

struct af_api_request;
struct af_client;
struct af_cred_provider;
struct af_product_config;
struct af_session;

/* Where raw pages come from / go to. */
typedef struct af_raw_options {
	const char *save_dir;   /* write every response page here, or NULL */
	const char *replay_dir; /* read pages from here instead of the network, or NULL */
} af_raw_options;

/* ---- for collectors --------------------------------------------------- */

const af_scope *af_job_scope(const af_job *job);

/* The page size to ask for: the account's <product>_page_size, else the
 * descriptor's default, never above the descriptor's max_page_size. */
int af_job_page_size(const af_job *job);

/* [sync] max_pages: no list is followed past it. */
int af_job_max_pages(const af_job *job);

/* [sync] detail_concurrency: detail calls in flight per scope (>= 1). */
int af_job_detail_concurrency(const af_job *job);

/* The session of the worker running this job; NULL when pages are
 * replayed from disk (af_job_fetch needs none then). */
struct af_session *af_job_session(af_job *job);

/* A session of its own for a helper thread of the collector, from the
 * run's pool; give it back with af_job_session_close. *out is NULL, and 0
 * returned, when replaying. */
int af_job_session_open(af_job *job, struct af_session **out);
void af_job_session_close(af_job *job, struct af_session *s);

/* Fills the request's common fields (endpoint, labels, style, method);
 * the collector adds path, query and body. */
void af_job_request_init(af_job *job, struct af_api_request *req, int style, const char *action,
			 const char *version);

/*
 * Fetches one page. `page_key` names the page for --save-raw/--from-raw
 * (e.g. "page-3", "offset-200", "get-hgpostcn-cn-x"). On success *out is a
 * parsed body the caller must json_object_put(). On failure the error
 * (naming source, scope and request id) is in af_error_last().
 * Thread-safe as long as each thread uses its own `session`.
 */
int af_job_fetch(af_job *job, struct af_session *session, const struct af_api_request *req,
		 const char *page_key, json_object **out);

/*
 * af_job_fetch for an answer that lists a whole scope in one document (an
 * API without paging): the elements of its top-level array `member` come
 * back in *items, as compact text (aifleet/items.h) to be parsed one at a
 * time, and *out is the rest of the answer, with `member` as []. The list
 * is never one json-c tree (about 3 KiB an element, some 320 MiB for 100k
 * Hologres nodes, held while the detail calls run). *items is NULL when
 * the member is missing or not an array; *out then has it as it came.
 * The caller frees both. --save-raw writes such a page whole (the elements
 * streamed one at a time), --from-raw splits it again.
 */
int af_job_fetch_list(af_job *job, struct af_session *session,
		      const struct af_api_request *req, const char *page_key,
		      const char *member, json_object **out, af_items **items);

/* The provider's request id in a parsed body (RequestId, requestId or
 * Response.RequestId), or "-": for messages about a page. Borrowed. */
const char *af_page_request_id(json_object *body);

/* Normalizes one page with the product's normalizer into the job's sink
 * (under the job's lock) and adds the normalizer's stats. */
int af_job_emit_page(af_job *job, json_object *page);

/* For a collector whose normalizer takes more than one page (Hologres: a
 * list item and its detail): the sink de-duplicates instances (and their
 * children), counts, and forwards to the loader. Use it only between
 * af_job_lock() and af_job_unlock(). */
const af_record_sink *af_job_sink(af_job *job);
void af_job_lock(af_job *job);
void af_job_unlock(af_job *job);

/* Adds normalizer stats after a page (logging the page's request id when
 * items were rejected); rejected items make the scope partial (a rejected
 * item may still exist, so nothing may be tombstoned). */
void af_job_add_norm_stats(af_job *job, const af_norm_stats *st, json_object *page);

/* Records the scope's first error (af_error_last()), for a failure on a
 * thread other than the job's own. */
void af_job_fail(af_job *job);

/* The error recorded by af_job_fail, "" if none. Borrowed. */
const char *af_job_error(const af_job *job);

/* A warning about this scope: "provider/account/region/product: ...". */
void af_job_warn(const af_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- for the sync engine ---------------------------------------------- */

typedef struct af_job_setup {
	af_scope scope;
	const af_product *product;
	const struct af_product_config *settings; /* the account's settings of the product */
	const char *endpoint;         /* resolved for the scope's region */
	int max_pages;
	int detail_concurrency;
	struct af_cred_provider *creds; /* the account's; NULL when replaying */
	struct af_client *client;
	/* Where helper threads take their sessions (af_job_session_open);
	 * NULL: each makes its own. */
	struct af_session_pool *sessions;
	const af_raw_options *raw;
	/* Records go to `out` (the loader, single-threaded) while `out_lock`
	 * is held. */
	const af_record_sink *out;
	pthread_mutex_t *out_lock;
} af_job_setup;

/* Copies what it needs of `setup` except the pointers, which must outlive
 * the job. AF_ERR_NOMEM or AF_ERR_LIMIT (an endpoint too long). */
int af_job_new(af_job **out, const af_job_setup *setup);
void af_job_free(af_job *job);

/* Runs the product's collector with the worker's session (NULL when
 * replaying) and judges the scope: complete, partial or failed. */
void af_job_run(af_job *job, struct af_session *session);

/* Marks the scope failed without running it (no HTTP session, no
 * credentials for its account); `error_class` is the cause's (0: none in
 * particular). af_job_run then does nothing. */
void af_job_skip(af_job *job, int error_class, const char *why);

/* The scope's report; valid until af_job_free. */
const af_scope_report *af_job_report(const af_job *job);

/* The class of the error that ended the scope, 0 if none. */
int af_job_error_class(const af_job *job);

/* Summed over the job's threads: waiting for HTTP, and normalizing plus
 * streaming to the loader. */
void af_job_times(const af_job *job, double *fetch_seconds, double *normalize_seconds);

#endif
