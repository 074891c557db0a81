/*
 * The job: what a collector needs to fetch and emit one scope, and the
 * bookkeeping that turns its work into a scope report.
 */
#include "aifleet/collect.h"
#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/secret.h"

#include <errno.h>
#include <json-c/linkhash.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void af_job_request_init(af_job *job, af_api_request *req, af_api_style style,
			 const char *action, const char *version)
{
	memset(req, 0, sizeof(*req));
	req->style = style;
	req->endpoint = job->endpoint;
	req->method = style == AF_API_TC3 ? "POST" : "GET";
	req->path = "/";
	req->action = action;
	req->version = version;
	req->region = job->scope.region;
	req->provider = job->scope.provider;
	req->product = job->scope.product;
	req->account = job->scope.account;
}

/* mkdir -p for the directory part of `path`. */
static int make_parents(const char *path)
{
	char buf[1024];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return af_error_set(AF_ERR_IO, "path too long: %s", path);
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return af_error_set(AF_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
		*p = '/';
	}
	return 0;
}

/* Page files: DIR/provider/account/region/product/<page_key>.json. The
 * key is built by collectors from ids the provider gave us, so keep it to a
 * safe alphabet rather than trusting it as a path component. */
static int page_path(char *out, size_t n, const char *dir, const af_job *job, const char *key)
{
	char safe[256];
	size_t i;
	int len;

	for (i = 0; key[i] && i < sizeof(safe) - 1; i++) {
		char c = key[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			 c == '-' || c == '_' || c == '.';
		safe[i] = ok && !(c == '.' && i == 0) ? c : '_';
	}
	safe[i] = '\0';
	len = snprintf(out, n, "%s/%s/%s/%s/%s/%s.json", dir, job->scope.provider,
		       job->scope.account, job->scope.region, job->scope.product, safe);
	if (len < 0 || (size_t)len >= n)
		return af_error_set(AF_ERR_IO, "raw page path too long under %s", dir);
	return 0;
}

/* Pages on disk follow the database's secret policy (aifleet/secret.h):
 * what is written is a copy without secrets; the page itself is left as
 * it came, for the normalizer. Numbers keep json-c's text, so that a
 * replay reads what the live run read. */
static int save_page(const af_job *job, const char *key, json_object *json)
{
	json_object *clean = NULL;
	char path[1024];
	const char *text;
	FILE *f;
	int err;

	if ((err = page_path(path, sizeof(path), job->raw->save_dir, job, key)) < 0 ||
	    (err = make_parents(path)) < 0 || (err = af_secret_copy(&clean, json)) < 0)
		return err;
	text = json_object_to_json_string_ext(clean, JSON_C_TO_STRING_PRETTY |
							     JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text) {
		err = af_error_set(AF_ERR_NOMEM, "out of memory writing %s", path);
		goto done;
	}
	if (!(f = fopen(path, "w"))) {
		err = af_error_set(AF_ERR_IO, "cannot write %s: %s", path, strerror(errno));
		goto done;
	}
	if (fputs(text, f) == EOF || fputc('\n', f) == EOF) {
		fclose(f);
		err = af_error_set(AF_ERR_IO, "cannot write %s", path);
		goto done;
	}
	if (fclose(f) != 0)
		err = af_error_set(AF_ERR_IO, "cannot write %s: %s", path, strerror(errno));
done:
	json_object_put(clean);
	return err;
}

static int replay_page(const af_job *job, const char *key, json_object **out)
{
	char path[1024];
	json_object *json;
	int err;

	if ((err = page_path(path, sizeof(path), job->raw->replay_dir, job, key)) < 0)
		return err;
	json = json_object_from_file(path);
	if (!json) {
		const char *why = json_util_get_last_err();
		int len = why ? (int)strcspn(why, "\n") : 0;

		return af_error_set(AF_ERR_IO, "cannot replay %s: %.*s", path, len, why ? why : "");
	}
	*out = json;
	return 0;
}

int af_job_fetch(af_job *job, af_session *session, const af_api_request *req,
		 const char *page_key, json_object **out)
{
	af_api_response resp;
	double started = now_seconds();
	int err;

	*out = NULL;
	if (job->raw && job->raw->replay_dir) {
		err = replay_page(job, page_key, out);
		pthread_mutex_lock(&job->stats_lock);
		if (err == 0)
			job->report.pages++;
		pthread_mutex_unlock(&job->stats_lock);
		return err;
	}

	af_api_response_init(&resp);
	err = af_session_call(session, req, job->creds, &resp);
	pthread_mutex_lock(&job->stats_lock);
	job->report.requests += (uint64_t)resp.attempts;
	if (resp.attempts > 1)
		job->report.retries += (uint64_t)(resp.attempts - 1);
	job->report.throttled += (uint64_t)resp.throttled;
	job->fetch_seconds += now_seconds() - started;
	if (err == 0)
		job->report.pages++;
	pthread_mutex_unlock(&job->stats_lock);
	if (err < 0)
		goto done;

	*out = resp.json;
	resp.json = NULL;
	if (job->raw && job->raw->save_dir && (err = save_page(job, page_key, *out)) < 0) {
		json_object_put(*out);
		*out = NULL;
	}
done:
	af_api_response_free(&resp);
	return err;
}

/* A request id goes into messages as it is: only a short printable one. */
static bool printable_id(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= 128 || s[n] <= ' ' || s[n] > '~')
			return false;
	return n > 0;
}

const char *af_page_request_id(json_object *body)
{
	static const char *const names[] = {"RequestId", "requestId"};
	json_object *resp = NULL, *v = NULL;

	if (json_object_object_get_ex(body, "Response", &resp) &&
	    json_object_is_type(resp, json_type_object))
		body = resp;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (json_object_object_get_ex(body, names[i], &v) &&
		    json_object_is_type(v, json_type_string) && printable_id(json_object_get_string(v)))
			return json_object_get_string(v);
	return "-";
}

static int filter_instance(void *ctx, const af_scope *scope, const af_instance *inst)
{
	af_job *job = ctx;
	char *key;
	int err;

	if (inst->native_id && lh_table_lookup_entry(job->seen, inst->native_id)) {
		/* The list shifted under us while paging: one item, seen twice. */
		job->report.duplicates++;
		job->skipping = true;
		return 0;
	}
	job->skipping = false;
	err = job->out->instance(job->out->ctx, scope, inst);
	if (err == AF_ERR_DATA) {
		af_warn("collect", "%s", af_error_last());
		job->report.rejected++;
		job->skipping = true;
		return 0;
	}
	if (err < 0)
		return err;
	if (!(key = strdup(inst->native_id)))
		return af_error_set(AF_ERR_NOMEM, "out of memory");
	lh_table_insert(job->seen, key, NULL);
	job->report.items++;
	return 0;
}

static int forward_child(af_job *job, int err)
{
	if (err == AF_ERR_DATA) {
		af_warn("collect", "%s", af_error_last());
		job->report.rejected++;
		return 0;
	}
	return err;
}

static int filter_service(void *ctx, const af_scope *scope, const af_service *svc)
{
	af_job *job = ctx;

	if (job->skipping)
		return 0;
	return forward_child(job, job->out->service(job->out->ctx, scope, svc));
}

static int filter_resource(void *ctx, const af_scope *scope, const af_resource *res)
{
	af_job *job = ctx;

	if (job->skipping)
		return 0;
	return forward_child(job, job->out->resource(job->out->ctx, scope, res));
}

const af_record_sink *af_job_sink(af_job *job)
{
	return &job->filter;
}

void af_job_lock(af_job *job)
{
	pthread_mutex_lock(job->out_lock);
	job->skipping = false;
	job->locked_at = now_seconds();
}

void af_job_unlock(af_job *job)
{
	/* Time spent here is normalizing plus streaming COPY to the loader. */
	job->normalize_seconds += now_seconds() - job->locked_at;
	job->skipping = false;
	pthread_mutex_unlock(job->out_lock);
}

void af_job_add_norm_stats(af_job *job, const af_norm_stats *st, json_object *page)
{
	/* The normalizer named each rejected item and its field; this names
	 * the answer it came in, so the provider can be asked about it. */
	if (st->rejected > 0)
		af_warn("collect", "%s/%s/%s/%s: %llu item(s) rejected in the answer with request id %s",
			job->scope.provider, job->scope.account, job->scope.region, job->scope.product,
			(unsigned long long)st->rejected, af_page_request_id(page));
	pthread_mutex_lock(&job->stats_lock);
	job->norm.instances += st->instances;
	job->norm.services += st->services;
	job->norm.resources += st->resources;
	job->norm.rejected += st->rejected;
	job->norm.warnings += st->warnings;
	pthread_mutex_unlock(&job->stats_lock);
}

int af_job_emit_page(af_job *job, af_page_normalizer normalize, json_object *page)
{
	af_norm_stats st = {0};
	int err;

	af_job_lock(job);
	err = normalize(&job->scope, page, af_job_sink(job), &st);
	af_job_unlock(job);
	af_job_add_norm_stats(job, &st, page);
	return err;
}

void af_job_fail(af_job *job, int err)
{
	pthread_mutex_lock(&job->stats_lock);
	if (!job->error[0])
		snprintf(job->error, sizeof(job->error), "%s", af_error_last());
	(void)err;
	pthread_mutex_unlock(&job->stats_lock);
}

static void free_key(struct lh_entry *e)
{
	free(lh_entry_k(e));
}

int af_job_init(af_job *job)
{
	job->seen = lh_kchar_table_new(1024, free_key);
	if (!job->seen)
		return af_error_set(AF_ERR_NOMEM, "out of memory");
	pthread_mutex_init(&job->stats_lock, NULL);
	job->filter.instance = filter_instance;
	job->filter.service = filter_service;
	job->filter.resource = filter_resource;
	job->filter.ctx = job;
	job->report.scope = job->scope;
	return 0;
}

void af_job_cleanup(af_job *job)
{
	if (job->seen)
		lh_table_free(job->seen);
	job->seen = NULL;
	pthread_mutex_destroy(&job->stats_lock);
}
