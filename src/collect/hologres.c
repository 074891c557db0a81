/*
 * Hologres AI nodes: ListInstanceModel, then GetInstanceModel for every
 * Holo instance it lists (hologram 2022-06-01, ROA GETs, ACS3 signed).
 * The detail calls run concurrently, at most [sync] detail_concurrency at
 * a time, each worker on its own session.
 *
 * The list has no paging: one answer holds every node of the scope. It is
 * kept as compact text (af_job_fetch_list, aifleet/items.h) while the
 * details run, and each worker parses only the node it works on, so the
 * collector holds one node per worker, not the fleet as a json-c tree.
 */
#include "aifleet/collect.h"
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/threads.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOLO_VERSION "2022-06-01"
#define HOLO_LIST_ACTION "ListInstanceModel"
#define HOLO_LIST_PATH "/api/v1/instances/rpc/listInstanceModel"
#define HOLO_GET_ACTION "GetInstanceModel"
#define HOLO_LIST_MEMBER "instanceModelList"

typedef struct detail_pool {
	af_job *job;
	const af_items *list; /* instanceModelList's nodes (borrowed) */
	size_t n;
	atomic_size_t next;   /* next index to fetch */
	atomic_int failed;    /* first error class, 0 if none */
} detail_pool;

/*
 * The success shape of GetInstanceModel: a modelServiceList member, an
 * array or null (a node without services). A body without it is not a
 * detail, and must not read as "no services".
 */
static int check_detail(json_object *detail)
{
	json_object *services = NULL;

	if (!json_object_object_get_ex(detail, "modelServiceList", &services))
		return af_error_set(AF_ERR_DATA, "malformed answer: no modelServiceList");
	if (services && !json_object_is_type(services, json_type_array))
		return af_error_set(AF_ERR_DATA, "malformed answer: modelServiceList is not an array");
	return 0;
}

static int fetch_detail(af_job *job, af_session *session, json_object *item, json_object **out)
{
	json_object *holo_id;
	const char *id;
	af_buf path = AF_BUF_INIT;
	af_api_request req;
	char key[300];
	int err;

	*out = NULL;
	if (!json_object_object_get_ex(item, "holoInstanceId", &holo_id) ||
	    !json_object_is_type(holo_id, json_type_string) || !*json_object_get_string(holo_id))
		return 0; /* nothing to ask about: the normalizer sees no detail */
	id = json_object_get_string(holo_id);
	if ((err = af_buf_puts(&path, "/api/v1/instances/")) < 0 ||
	    (err = af_rfc3986_encode(&path, id, strlen(id))) < 0 ||
	    (err = af_buf_puts(&path, "/getInstanceModel")) < 0)
		goto done;
	af_job_request_init(job, &req, AF_API_ACS3_ROA, HOLO_GET_ACTION, HOLO_VERSION);
	req.path = af_buf_data(&path);
	snprintf(key, sizeof(key), "get-%s", id);
	if ((err = af_job_fetch(job, session, &req, key, out)) < 0) {
		af_error_prefix(err, "instance %s: ", id);
	} else if ((err = check_detail(*out)) < 0) {
		af_error_prefix(err, "instance %s (request %s): ", id, af_page_request_id(*out));
		json_object_put(*out);
		*out = NULL;
	}
done:
	af_buf_free(&path);
	return err;
}

/* One node as the normalizer's page: the list item, its detail, and the
 * request id to name when something in it is rejected. */
static int emit_node(af_job *job, json_object *item, json_object *detail)
{
	json_object *page = json_object_new_object();
	int err;

	if (!page)
		return af_error_oom();
	json_object_object_add(page, "item", json_object_get(item));
	if (detail)
		json_object_object_add(page, "detail", json_object_get(detail));
	json_object_object_add(page, "requestId",
			       json_object_new_string(af_page_request_id(detail ? detail : item)));
	err = af_job_emit_page(job, page);
	json_object_put(page);
	return err;
}

/* Node i of the list: parsed from its text, asked about, emitted, freed. */
static int one_node(af_job *job, af_session *session, const af_items *list, size_t i)
{
	json_object *item = NULL, *detail = NULL;
	int err;

	if ((err = af_items_parse(list, i, &item)) < 0 ||
	    (err = fetch_detail(job, session, item, &detail)) < 0)
		goto done;
	err = emit_node(job, item, detail);
done:
	json_object_put(detail);
	json_object_put(item);
	return err;
}

static void *detail_worker(void *arg)
{
	detail_pool *pool = arg;
	af_job *job = pool->job;
	af_session *session = NULL;
	int err = 0;

	if ((err = af_job_session_open(job, &session)) < 0)
		goto done;
	for (;;) {
		size_t i = atomic_fetch_add(&pool->next, 1);

		if (i >= pool->n || atomic_load(&pool->failed))
			break;
		if ((err = one_node(job, session, pool->list, i)) < 0)
			break;
	}
done:
	if (err < 0) {
		int expected = 0;

		af_job_fail(job);
		atomic_compare_exchange_strong(&pool->failed, &expected, err);
	}
	af_job_session_close(job, session);
	return NULL;
}

/*
 * The success shape: instanceModelList, an array or null (no AI nodes in
 * this region). Without it the body is not a list at all. `nodes` is the
 * array split off the body, NULL when there was none.
 */
static int check_list(json_object *body, const af_items *nodes)
{
	json_object *list = NULL;

	if (nodes)
		return 0;
	if (json_object_object_get_ex(body, HOLO_LIST_MEMBER, &list) && !list)
		return 0;
	return af_error_set(AF_ERR_DATA, "list (request %s): malformed answer: %s",
			    af_page_request_id(body),
			    list ? HOLO_LIST_MEMBER " is not an array" : "no " HOLO_LIST_MEMBER);
}

/* The detail calls, detail_concurrency at a time, over the list's nodes. */
static int run_details(af_job *job, const af_items *nodes)
{
	detail_pool pool;
	size_t want;
	int err;

	pool.job = job;
	pool.list = nodes;
	pool.n = af_items_count(nodes);
	atomic_init(&pool.next, 0);
	atomic_init(&pool.failed, 0);
	want = (size_t)af_job_detail_concurrency(job);
	if (want > pool.n)
		want = pool.n;
	if (af_threads_run(want, detail_worker, &pool) == 0 && pool.n > 0)
		return af_error_set(AF_ERR_GENERIC, "cannot start detail workers");
	err = atomic_load(&pool.failed);
	if (err < 0)
		/* The message was recorded by the worker that failed. */
		return af_error_set(err, "%s", af_job_error(job));
	return 0;
}

static int hologres_collect(af_job *job)
{
	af_api_request req;
	json_object *body = NULL;
	af_items *nodes = NULL;
	int err;

	af_job_request_init(job, &req, AF_API_ACS3_ROA, HOLO_LIST_ACTION, HOLO_VERSION);
	req.path = HOLO_LIST_PATH;
	if ((err = af_job_fetch_list(job, af_job_session(job), &req, "list", HOLO_LIST_MEMBER,
				     &body, &nodes)) < 0 ||
	    (err = check_list(body, nodes)) < 0)
		goto done;
	/* What is left of the answer is not needed while the details run. */
	json_object_put(body);
	body = NULL;
	if (nodes)
		err = run_details(job, nodes);
done:
	json_object_put(body);
	af_items_free(nodes);
	return err;
}

/* Regional hosts only. */
static int hologres_endpoint(char *out, size_t n, const char *region, bool intl)
{
	return af_endpoint_expand(out, n, "https://hologram.{region}.aliyuncs.com", region);
}

/* The apiKey of a model service: the secret policy drops it, whatever
 * its spelling. */
static const char *const hologres_secrets[] = {"apiKey", "api_key", NULL};

/* The RAM/CAM actions of the API calls above. */
static const char *const hologres_permissions[] = {"hologram:" HOLO_LIST_ACTION,
						   "hologram:" HOLO_GET_ACTION, NULL};

const af_product af_product_hologres = {
	.name = "hologres",
	.provider = AF_PROVIDER_ALIBABA,
	.title = "Hologres AI nodes",
	.default_endpoint = hologres_endpoint,
	/* ListInstanceModel is not paged: one answer lists every node. */
	.default_page_size = 0,
	.max_page_size = 0,
	/* Alibaba publishes no limit for these APIs: well below the usual ones. */
	.default_rate = 10.0,
	.collect = hologres_collect,
	.normalize = af_normalize_hologres_page,
	.permissions = hologres_permissions,
	.secret_fields = hologres_secrets,
};
