/*
 * The job: what a collector needs to fetch and emit one scope, and the
 * bookkeeping that turns its work into a scope report. The struct is
 * private to this file: collectors and the sync engine use the functions
 * of aifleet/collect.h.
 */
#include "aifleet/collect.h"
#include "aifleet/clock.h"
#include "aifleet/config.h"
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/items.h"
#include "aifleet/log.h"
#include "aifleet/secret.h"
#include "aifleet/strset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* An endpoint is a URL the configuration gave or a default's: a longer one
 * is a mistake, not an address. */
#define AF_JOB_MAX_ENDPOINT 512

struct af_job {
	af_scope scope;
	const af_product *product;
	const af_product_config *settings;
	char *endpoint;
	int max_pages;
	int detail_concurrency;
	af_cred_provider *creds;  /* the account's, NULL when replaying */
	af_client *client;
	af_session_pool *sessions; /* helper threads' sessions; NULL: their own */
	af_session *session;     /* the worker's session, NULL when replaying */
	const af_raw_options *raw;

	/* Records go to `out` (the loader, single-threaded) through a
	 * de-duplicating filter; a collector holds `out_lock` (af_job_lock)
	 * while it normalizes a page into af_job_sink(). */
	const af_record_sink *out;
	pthread_mutex_t *out_lock;
	af_record_sink filter;
	af_strset *seen;         /* instance native ids of this scope, while it runs */
	bool skipping;           /* inside a duplicate or rejected instance */
	pthread_mutex_t stats_lock;
	double fetch_seconds;
	double normalize_seconds; /* guarded by out_lock */
	double locked_at;

	/* Outcome. */
	af_norm_stats norm;
	af_scope_report report;
	/* The first error, NULL while there is none. A job of every scope
	 * lives for the whole run: what it keeps is kept per scope, so it
	 * holds no fixed-size buffers and no state of its collection. */
	char *error;
	int error_class;         /* class of the error that ended the scope */
	bool skipped;            /* failed before it ran (af_job_skip) */
};

static bool replaying(const af_job *job)
{
	return job->raw && job->raw->replay_dir;
}

const af_scope *af_job_scope(const af_job *job)
{
	return &job->scope;
}

int af_job_page_size(const af_job *job)
{
	int size = job->settings && job->settings->page_size > 0 ? job->settings->page_size
								 : job->product->default_page_size;

	if (job->product->max_page_size > 0 && size > job->product->max_page_size)
		size = job->product->max_page_size;
	return size;
}

int af_job_max_pages(const af_job *job)
{
	return job->max_pages;
}

int af_job_detail_concurrency(const af_job *job)
{
	return job->detail_concurrency > 0 ? job->detail_concurrency : 1;
}

af_session *af_job_session(af_job *job)
{
	return job->session;
}

int af_job_session_open(af_job *job, af_session **out)
{
	*out = NULL;
	if (replaying(job))
		return 0;
	return job->sessions ? af_session_pool_take(job->sessions, out)
			     : af_session_new(out, job->client);
}

void af_job_session_close(af_job *job, af_session *s)
{
	if (job->sessions)
		af_session_pool_give(job->sessions, s);
	else
		af_session_free(s);
}

void af_job_request_init(af_job *job, af_api_request *req, int style, const char *action,
			 const char *version)
{
	memset(req, 0, sizeof(*req));
	req->style = (af_api_style)style;
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

void af_job_warn(const af_job *job, const char *fmt, ...)
{
	char name[512], msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	af_warn("collect", "%s: %s", af_scope_name(name, sizeof(name), &job->scope), msg);
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

/* A member name as JSON text, and the colon; 0 or AF_ERR_NOMEM. */
static int write_key(FILE *f, const char *key)
{
	json_object *k = json_object_new_string(key);
	const char *text =
		k ? json_object_to_json_string_ext(k, JSON_C_TO_STRING_NOSLASHESCAPE) : NULL;
	int err = text ? 0 : af_error_oom();

	if (text)
		fprintf(f, "%s: ", text);
	json_object_put(k);
	return err;
}

/* A value as compact JSON text, "null" for a JSON null; writes it and
 * returns 0, or AF_ERR_NOMEM (json-c could not print it). */
static int write_value(FILE *f, json_object *value)
{
	const char *text = value ? json_object_to_json_string_ext(
					   value, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
				 : "null";

	if (!text)
		return af_error_oom();
	fputs(text, f);
	return 0;
}

/* The list's elements, one a line, each through the secret policy as it
 * would have gone as part of the whole page; one element in memory at a
 * time, however long the list. */
static int write_items(FILE *f, const af_items *items)
{
	json_object *item = NULL, *clean = NULL;
	int err = 0;

	fputc('[', f);
	for (size_t i = 0; i < af_items_count(items) && err == 0; i++) {
		fputs(i ? ",\n    " : "\n    ", f);
		if ((err = af_items_parse(items, i, &item)) == 0 &&
		    (err = af_secret_copy_nested(&clean, item, AF_ITEMS_LEVELS)) == 0)
			err = write_value(f, clean);
		json_object_put(clean);
		json_object_put(item);
		clean = item = NULL;
	}
	fputs(af_items_count(items) ? "\n  ]" : "]", f);
	return err;
}

/* A page whose list was split off: the (clean) rest of the answer as it
 * came, the list streamed where its [] stands. */
static int write_list_page(FILE *f, json_object *clean, const char *member, const af_items *items)
{
	bool first = true;
	int err = 0;

	fputc('{', f);
	json_object_object_foreach(clean, key, value)
	{
		fprintf(f, "%s\n  ", first ? "" : ",");
		first = false;
		if ((err = write_key(f, key)) < 0 ||
		    (err = strcmp(key, member) == 0 ? write_items(f, items) : write_value(f, value)) <
			    0)
			break;
	}
	fputs("\n}\n", f);
	return err;
}

static int write_page(FILE *f, json_object *clean, const char *member, const af_items *items)
{
	const char *text;

	if (items && json_object_is_type(clean, json_type_object))
		return write_list_page(f, clean, member, items);
	text = json_object_to_json_string_ext(clean, JSON_C_TO_STRING_PRETTY |
							     JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text)
		return af_error_oom();
	fputs(text, f);
	fputc('\n', f);
	return 0;
}

/* Pages on disk follow the database's secret policy (aifleet/secret.h):
 * what is written is a copy without secrets; the page itself is left as
 * it came, for the normalizer. Numbers keep json-c's text, so that a
 * replay reads what the live run read. A list split off the page (`items`,
 * the elements of `member`) is written where it stood. */
static int save_page(const af_job *job, const char *key, json_object *json, const char *member,
		     const af_items *items)
{
	json_object *clean = NULL;
	char path[1024];
	FILE *f;
	int err;

	if ((err = page_path(path, sizeof(path), job->raw->save_dir, job, key)) < 0 ||
	    (err = make_parents(path)) < 0 || (err = af_secret_copy(&clean, json)) < 0)
		return err;
	if (!(f = fopen(path, "w"))) {
		err = af_error_set(AF_ERR_IO, "cannot write %s: %s", path, strerror(errno));
		goto done;
	}
	if ((err = write_page(f, clean, member, items)) < 0) {
		fclose(f);
		af_error_prefix(err, "writing %s: ", path);
		goto done;
	}
	if (ferror(f)) {
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

/* A file whole into `out`. */
static int read_page_file(const char *path, af_buf *out)
{
	FILE *f = fopen(path, "r");
	char chunk[16384];
	size_t n;
	int err = 0;

	if (!f)
		return af_error_set(AF_ERR_IO, "cannot replay %s: %s", path, strerror(errno));
	while (err == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		err = af_buf_append(out, chunk, n);
	if (err == 0 && ferror(f))
		err = af_error_set(AF_ERR_IO, "cannot replay %s: read error", path);
	fclose(f);
	return err;
}

/* A saved list page, split as a live answer is, so that a replay holds no
 * more of it than the live run did. A page that cannot be read or split
 * is replayed as any page, with the same errors as ever. */
static int replay_list(const af_job *job, const char *key, const char *member, json_object **out,
		       af_items **items)
{
	char path[1024], *envelope = NULL;
	size_t envelope_len;
	af_buf text;
	int err;

	if ((err = page_path(path, sizeof(path), job->raw->replay_dir, job, key)) < 0)
		return err;
	af_buf_init(&text, SIZE_MAX / 2);
	if (read_page_file(path, &text) < 0) {
		af_error_clear();
	} else if ((err = af_items_split(items, &envelope, &envelope_len, &text, member)) < 0) {
		goto done;
	}
	if (!*items) {
		err = replay_page(job, key, out);
		goto done;
	}
	if (!(*out = json_tokener_parse(envelope))) {
		af_items_free(*items);
		*items = NULL;
		err = af_error_oom();
	}
done:
	af_buf_free(&text);
	free(envelope);
	return err;
}

/* One signed call with the account's current credentials; when the answer
 * says the token expired, the credentials are renewed and the call made
 * once more (the transport's retries are for transient failures only). */
static int call_with_credentials(af_job *job, af_session *session, const af_api_request *req,
				 af_api_response *resp)
{
	af_credentials creds = {0};
	int err;

	if (!job->creds)
		return af_error_set(AF_ERR_CONFIG, "no credentials for account %s", job->scope.account);
	if ((err = af_cred_provider_get(job->creds, session, &creds)) < 0)
		return err;
	err = af_session_call(session, req, &creds, resp);
	if (err == AF_ERR_AUTH && af_credentials_expired_code(resp->error_code)) {
		int attempts = resp->attempts, throttled = resp->throttled;

		af_warn("collect", "%s: the temporary credentials expired; renewing them once",
			job->scope.account);
		if (af_cred_provider_expired(job->creds, session, &creds) == 0) {
			af_credentials_clear(&creds);
			if ((err = af_cred_provider_get(job->creds, session, &creds)) == 0)
				err = af_session_call(session, req, &creds, resp);
			resp->attempts += attempts;
			resp->throttled += throttled;
		}
	}
	af_credentials_clear(&creds);
	return err;
}

/*
 * A list fetch hands its list as items whichever way the answer came: one
 * that was parsed whole (the splitter did not take it) has its array moved
 * into a store as well, and [] left in its place, as the splitter leaves it.
 */
static int take_list(json_object *body, const char *member, af_items **items)
{
	json_object *list = NULL, *empty;
	int err;

	if (*items || !json_object_object_get_ex(body, member, &list) ||
	    !json_object_is_type(list, json_type_array))
		return 0;
	if ((err = af_items_from_array(items, list)) < 0)
		return err;
	if (!(empty = json_object_new_array()) || json_object_object_add(body, member, empty) < 0) {
		json_object_put(empty);
		af_items_free(*items);
		*items = NULL;
		return af_error_oom();
	}
	return 0;
}

static void count_fetch(af_job *job, const af_api_response *resp, double started, int err)
{
	pthread_mutex_lock(&job->stats_lock);
	if (resp) {
		job->report.requests += (uint64_t)resp->attempts;
		if (resp->attempts > 1)
			job->report.retries += (uint64_t)(resp->attempts - 1);
		job->report.throttled += (uint64_t)resp->throttled;
		job->fetch_seconds += af_clock_seconds() - started;
	}
	if (err == 0)
		job->report.pages++;
	pthread_mutex_unlock(&job->stats_lock);
}

/* A page from the replay directory; with `member`, its list split off. */
static int fetch_replayed(af_job *job, const char *page_key, const char *member, json_object **out,
			  af_items **items)
{
	int err;

	if (!member)
		err = replay_page(job, page_key, out);
	else if ((err = replay_list(job, page_key, member, out, items)) == 0)
		err = take_list(*out, member, items);
	count_fetch(job, NULL, 0, err);
	return err;
}

/* af_job_fetch, and with `member` af_job_fetch_list: the answer from the
 * network or the replay directory, counted, and saved with --save-raw. */
static int fetch(af_job *job, af_session *session, const af_api_request *req,
		 const char *page_key, const char *member, json_object **out, af_items **items)
{
	af_api_request call = *req;
	af_api_response resp;
	double started = af_clock_seconds();
	int err;

	*out = NULL;
	*items = NULL;
	if (replaying(job)) {
		err = fetch_replayed(job, page_key, member, out, items);
		goto done;
	}
	call.list_member = member;
	af_api_response_init(&resp);
	err = call_with_credentials(job, session, &call, &resp);
	count_fetch(job, &resp, started, err);
	if (err == 0) {
		*out = resp.json;
		*items = resp.items;
		resp.json = NULL;
		resp.items = NULL;
	}
	af_api_response_free(&resp);
	if (err == 0 && member)
		err = take_list(*out, member, items);
	if (err == 0 && job->raw && job->raw->save_dir)
		err = save_page(job, page_key, *out, member, *items);
done:
	if (err < 0) {
		json_object_put(*out);
		af_items_free(*items);
		*out = NULL;
		*items = NULL;
	}
	return err;
}

int af_job_fetch(af_job *job, af_session *session, const af_api_request *req,
		 const char *page_key, json_object **out)
{
	af_items *none;

	return fetch(job, session, req, page_key, NULL, out, &none);
}

int af_job_fetch_list(af_job *job, af_session *session, const af_api_request *req,
		      const char *page_key, const char *member, json_object **out,
		      af_items **items)
{
	return fetch(job, session, req, page_key, member, out, items);
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
	int err;

	if (inst->native_id && af_strset_has(job->seen, inst->native_id)) {
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
	if (inst->native_id && (err = af_strset_add(job->seen, inst->native_id)) < 0)
		return err;
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
	job->locked_at = af_clock_seconds();
}

void af_job_unlock(af_job *job)
{
	/* Time spent here is normalizing plus streaming COPY to the loader. */
	job->normalize_seconds += af_clock_seconds() - job->locked_at;
	job->skipping = false;
	pthread_mutex_unlock(job->out_lock);
}

void af_job_add_norm_stats(af_job *job, const af_norm_stats *st, json_object *page)
{
	/* The normalizer named each rejected item and its field; this names
	 * the answer it came in, so the provider can be asked about it. */
	if (st->rejected > 0)
		af_job_warn(job, "%llu item(s) rejected in the answer with request id %s",
			    (unsigned long long)st->rejected, af_page_request_id(page));
	pthread_mutex_lock(&job->stats_lock);
	job->norm.instances += st->instances;
	job->norm.services += st->services;
	job->norm.resources += st->resources;
	job->norm.rejected += st->rejected;
	job->norm.warnings += st->warnings;
	pthread_mutex_unlock(&job->stats_lock);
}

int af_job_emit_page(af_job *job, json_object *page)
{
	af_norm_stats st = {0};
	int err;

	af_job_lock(job);
	err = job->product->normalize(&job->scope, page, af_job_sink(job), &st);
	af_job_unlock(job);
	af_job_add_norm_stats(job, &st, page);
	return err;
}

/* Replaces the job's error with `fmt`; out of memory, it keeps none (the
 * log has said what it was). */
static void set_error(af_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(af_job *job, const char *fmt, ...)
{
	va_list ap;
	char *text = NULL;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	free(job->error);
	job->error = text;
}

void af_job_fail(af_job *job)
{
	pthread_mutex_lock(&job->stats_lock);
	if (!job->error)
		set_error(job, "%s", af_error_last());
	pthread_mutex_unlock(&job->stats_lock);
}

const char *af_job_error(const af_job *job)
{
	return job->error ? job->error : "";
}

int af_job_new(af_job **out, const af_job_setup *setup)
{
	af_job *job;

	*out = NULL;
	if (setup->endpoint && strlen(setup->endpoint) >= AF_JOB_MAX_ENDPOINT)
		return af_error_set(AF_ERR_LIMIT, "endpoint longer than %d bytes",
				    AF_JOB_MAX_ENDPOINT - 1);
	if (!(job = calloc(1, sizeof(*job))) ||
	    !(job->endpoint = strdup(setup->endpoint ? setup->endpoint : ""))) {
		free(job);
		return af_error_oom();
	}
	pthread_mutex_init(&job->stats_lock, NULL);
	job->scope = setup->scope;
	job->product = setup->product;
	job->settings = setup->settings;
	job->max_pages = setup->max_pages;
	job->detail_concurrency = setup->detail_concurrency;
	job->creds = setup->creds;
	job->client = setup->client;
	job->sessions = setup->sessions;
	job->raw = setup->raw;
	job->out = setup->out;
	job->out_lock = setup->out_lock;
	job->filter = (af_record_sink){filter_instance, filter_service, filter_resource, job};
	job->report.scope = job->scope;
	*out = job;
	return 0;
}

void af_job_free(af_job *job)
{
	if (!job)
		return;
	af_strset_free(job->seen);
	pthread_mutex_destroy(&job->stats_lock);
	free(job->endpoint);
	free(job->error);
	free(job);
}

/* The scope's state from how the collector ended: an error leaves it
 * partial when some pages arrived, a rejected item makes it partial. */
static void judge(af_job *job, int err)
{
	char name[512];

	af_scope_name(name, sizeof(name), &job->scope);
	/* The filter counted what the loader refused (under the loader lock);
	 * add what the normalizer refused, now that every thread is done. */
	job->report.rejected += job->norm.rejected;
	if (err < 0) {
		/* Overwrite whatever a helper thread recorded: this message has
		 * the scope in front and the cause behind it. */
		af_error_prefix(err, "%s: ", name);
		set_error(job, "%s", af_error_last());
		af_err("sync", "%s", af_error_last());
		job->report.state = job->report.pages > 0 ? AF_SCOPE_PARTIAL : AF_SCOPE_FAILED;
		job->error_class = err;
	} else if (job->report.rejected > 0) {
		set_error(job, "%s: %llu item(s) rejected as invalid; nothing tombstoned in this scope",
			  name, (unsigned long long)job->report.rejected);
		af_warn("sync", "%s", af_job_error(job));
		job->report.state = AF_SCOPE_PARTIAL;
	} else {
		job->report.state = AF_SCOPE_COMPLETE;
	}
	job->report.error = job->error;
}

void af_job_run(af_job *job, af_session *session)
{
	double started = af_clock_seconds();
	char name[512];

	if (job->skipped)
		return;
	job->session = session;
	/* What only the collection needs lives as long as it */
	judge(job, af_strset_new(&job->seen) < 0 ? AF_ERR_NOMEM : job->product->collect(job));
	af_strset_free(job->seen);
	job->seen = NULL;
	job->report.seconds = af_clock_seconds() - started;
	job->session = NULL;
	af_debug("sync", "%s: %llu pages, %llu items, %.2f s",
		 af_scope_name(name, sizeof(name), &job->scope),
		 (unsigned long long)job->report.pages, (unsigned long long)job->report.items,
		 job->report.seconds);
}

void af_job_skip(af_job *job, int error_class, const char *why)
{
	char name[512];

	set_error(job, "%s: %s", af_scope_name(name, sizeof(name), &job->scope), why);
	job->skipped = true;
	job->error_class = error_class;
	job->report.state = AF_SCOPE_FAILED;
	job->report.error = job->error;
}

const af_scope_report *af_job_report(const af_job *job)
{
	return &job->report;
}

int af_job_error_class(const af_job *job)
{
	return job->error_class;
}

void af_job_times(const af_job *job, double *fetch_seconds, double *normalize_seconds)
{
	*fetch_seconds = job->fetch_seconds;
	*normalize_seconds = job->normalize_seconds;
}
