/*
 * Robustness: one fixture per case under tests/fixtures/normalize/ (nulls,
 * missing fields, wrong types, unknown fields, huge numbers, unicode,
 * missing ids, empty pages, ResourceTotal, nested apiKey). Expectations
 * are derived by hand from each fixture.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/normalize.h"
#include "aifleet/secret.h"
#include "rec.h"
#include "testutil.h"

static const af_scope tair_scope = {AF_PROVIDER_ALIBABA, "acct", "cn-beijing", "tair_kvcache"};
static const af_scope tione_scope = {AF_PROVIDER_TENCENT, "acct", "ap-guangzhou", "tione"};
static const af_scope holo_scope = {AF_PROVIDER_ALIBABA, "acct", "cn-shanghai",
                                    "hologres"};

enum product { TAIR, TIONE, HOLO };

#define AF_TEST_SECRET_DEPTH AF_SECRET_MAX_DEPTH

/* Runs one fixture; Hologres fixtures are {"list": item, "detail": answer}. */
static int run(enum product p, const char *name, rec *rc, af_norm_stats *st)
{
	char rel[128];
	json_object *o, *list = NULL, *detail = NULL;
	int err;

	snprintf(rel, sizeof(rel), "normalize/%s", name);
	o = rec_load(rel);
	rec_init(rc);
	memset(st, 0, sizeof(*st));
	switch (p) {
	case TAIR:
		err = af_normalize_tair_page(&tair_scope, o, &rc->sink, st);
		break;
	case TIONE:
		err = af_normalize_tione_page(&tione_scope, o, &rc->sink, st);
		break;
	default:
		json_object_object_get_ex(o, "list", &list);
		json_object_object_get_ex(o, "detail", &detail);
		err = af_normalize_hologres_node(&holo_scope, list, detail, &rc->sink, st);
		break;
	}
	/* records are copies: they outlive the page */
	json_object_put(o);
	return err;
}

/* run() on a fixture edited in memory first. */
static int run_edited(enum product p, const char *name, void (*edit)(json_object *), rec *rc,
                      af_norm_stats *st)
{
	char rel[128];
	json_object *o;
	int err;

	snprintf(rel, sizeof(rel), "normalize/%s", name);
	o = rec_load(rel);
	edit(o);
	rec_init(rc);
	memset(st, 0, sizeof(*st));
	err = p == TAIR    ? af_normalize_tair_page(&tair_scope, o, &rc->sink, st)
	      : p == TIONE ? af_normalize_tione_page(&tione_scope, o, &rc->sink, st)
	                   : AF_ERR_PARAM;
	json_object_put(o);
	return err;
}

static json_object *at(json_object *o, const char *path)
{
	char buf[128], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *t = strtok_r(buf, ".", &save); t && o; t = strtok_r(NULL, ".", &save)) {
		if (*t >= '0' && *t <= '9')
			o = json_object_array_get_idx(o, (size_t)atoi(t));
		else if (!json_object_object_get_ex(o, t, &o))
			o = NULL;
	}
	assert_non_null(o);
	return o;
}

static void fix_resource_total(json_object *page)
{
	json_object_object_del(at(page, "Response.ServiceGroups.0"), "UpdateTime");
	json_object_object_del(
	    at(page, "Response.ServiceGroups.0.Services.2.ServiceInfo.Resources"), "Memory");
}

static void fix_huge(json_object *page)
{
	json_object *res = at(page, "Response.ServiceGroups.0.Services.0.ServiceInfo.Resources");

	json_object_object_del(res, "Memory");
	json_object_object_del(res, "Gpu");
}

static void stats_are(const af_norm_stats *st, uint64_t inst, uint64_t svc, uint64_t res,
                      uint64_t rejected, uint64_t warnings)
{
	if (st->instances != inst || st->services != svc || st->resources != res ||
	    st->rejected != rejected || st->warnings != warnings)
		fail_msg(
		    "stats i%llu s%llu r%llu rej%llu w%llu, want i%llu s%llu r%llu rej%llu w%llu",
		    (unsigned long long)st->instances, (unsigned long long)st->services,
		    (unsigned long long)st->resources, (unsigned long long)st->rejected,
		    (unsigned long long)st->warnings, (unsigned long long)inst,
		    (unsigned long long)svc, (unsigned long long)res, (unsigned long long)rejected,
		    (unsigned long long)warnings);
}

/* Every emitted JSON text parses strictly as UTF-8 (json-c's own
 * validator) and holds no \u0000: what PostgreSQL jsonb accepts. */
static void json_ok(const char *t)
{
	json_tokener *tok;
	json_object *o;

	if (!t)
		return;
	tok = json_tokener_new();
	assert_non_null(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, t, (int)strlen(t));
	if (!o)
		fail_msg("invalid JSON: %s", t);
	assert_null(strstr(t, "\\u0000"));
	json_object_put(o);
	json_tokener_free(tok);
}

static void json_valid(const rec *rc)
{
	for (size_t i = 0; i < rc->ninst; i++) {
		json_ok(rc->inst[i].raw_json);
		json_ok(rc->inst[i].tags_json);
	}
	for (size_t i = 0; i < rc->nsvc; i++) {
		json_ok(rc->svc[i].raw_json);
		json_ok(rc->svc[i].tags_json);
	}
}

/* ---- stderr capture, to check what the warnings say ---- */

typedef struct capture {
	int saved;
	char path[256];
} capture;

static void capture_start(capture *c)
{
	char *dir = af_test_tempdir();
	int fd;

	snprintf(c->path, sizeof(c->path), "%s/stderr", dir);
	free(dir);
	fflush(stderr);
	c->saved = dup(2);
	fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0 && c->saved >= 0);
	dup2(fd, 2);
	close(fd);
}

static char *capture_end(capture *c)
{
	char *text;

	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	text = af_test_read_file(c->path, NULL);
	assert_non_null(text);
	unlink(c->path);
	*strrchr(c->path, '/') = '\0';
	rmdir(c->path); /* the directory capture_start made */
	return text;
}

/* ---- Tair ---- */

static void tair_nulls(void **state)
{
	af_norm_stats st;
	const af_instance *in;
	rec rc;

	assert_int_equal(run(TAIR, "tair_nulls.json", &rc, &st), 0);
	assert_string_equal(rc.order, "III");
	/* nulls are "not reported": silent */
	stats_are(&st, 3, 0, 0, 0, 0);
	in = rec_inst(&rc, "tk-nulls");
	assert_null(in->name);
	assert_null(in->status);
	assert_null(in->status_raw);
	assert_null(in->charge_type);
	assert_null(in->model);
	assert_null(in->tags_json);
	assert_true(in->created_at == AF_TIME_NULL);
	assert_true(in->expires_at == AF_TIME_NULL);
	rec_json_eq(rec_inst(&rc, "tk-bare")->raw_json, "{\"InstanceId\":\"tk-bare\"}");
	in = rec_inst(&rc, "tk-tagnull");
	assert_null(in->tags_json);
	assert_true(in->expires_at == AF_TIME_NULL); /* "" */
	assert_non_null(strstr(in->raw_json, "\"Tags2\""));
	json_valid(&rc);
	rec_free(&rc);
}

static void tair_empty_pages(void **state)
{
	static const char *const files[] = {"tair_missing_instances.json",
	                                    "tair_empty_instances.json"};
	af_norm_stats st;
	rec rc;

	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(run(TAIR, files[i], &rc, &st), 0);
		assert_int_equal(rc.calls, 0);
		stats_are(&st, 0, 0, 0, 0, 0);
		rec_free(&rc);
	}
}

static void tair_wrong_types(void **state)
{
	af_norm_stats st;
	capture cap;
	char *log;
	rec rc;

	capture_start(&cap);
	assert_int_equal(run(TAIR, "tair_wrong_types.json", &rc, &st), 0);
	log = capture_end(&cap);

	/* a field of the wrong type cannot be read: both items are rejected
	 * whole (their stored versions stand), nothing of them is emitted;
	 * the only warning is tk-types' raw-only DestroyTime */
	assert_int_equal(rc.calls, 0);
	stats_are(&st, 0, 0, 0, 2, 1);

	/* the rejection names scope, item and the first unreadable field;
	 * values never appear */
	assert_non_null(strstr(log, "alibaba/acct/cn-beijing/tair_kvcache: tk-types rejected: "
	                            "field InstanceName: not a string"));
	assert_non_null(strstr(log, "tk-types: field DestroyTime: unparseable timestamp"));
	assert_non_null(strstr(log, "tk-hex rejected: field Capacity: string is not a number"));
	assert_null(strstr(log, "yesterday"));
	assert_null(strstr(log, "sk-tagsecret"));
	assert_null(strstr(log, "0x10"));
	free(log);
	rec_free(&rc);
}

static void tair_missing_ids(void **state)
{
	af_norm_stats st;
	capture cap;
	char *log;
	rec rc;

	capture_start(&cap);
	assert_int_equal(run(TAIR, "tair_missing_ids.json", &rc, &st), 0);
	log = capture_end(&cap);
	/* eight unusable items rejected, the ninth goes through */
	stats_are(&st, 1, 0, 1, 8, 0);
	assert_string_equal(rc.order, "IR");
	assert_string_equal(rec_inst(&rc, "tk-good")->name, "survivor");
	assert_non_null(strstr(log, "TairInferInstanceDTO #0 rejected"));
	assert_non_null(strstr(log, "TairInferInstanceDTO #7 rejected"));
	free(log);
	rec_free(&rc);
}

static void tair_huge(void **state)
{
	af_norm_stats st;
	capture cap;
	char *log;
	rec rc;

	capture_start(&cap);
	assert_int_equal(run(TAIR, "tair_huge.json", &rc, &st), 0);
	log = capture_end(&cap);
	/* 1e308 is a (silly but finite) number; 1e400 is inf: out of range,
	 * so the item is rejected rather than its compute_units blanked */
	assert_int_equal(rc.calls, 0);
	stats_are(&st, 0, 0, 0, 1, 0);
	assert_non_null(strstr(log, "tk-huge rejected: field ComputeUnitNum: number out of range"));
	free(log);
	rec_free(&rc);
}

static void tair_unicode(void **state)
{
	af_norm_stats st;
	const af_instance *in;
	rec rc;

	assert_int_equal(run(TAIR, "tair_unicode.json", &rc, &st), 0);
	stats_are(&st, 1, 1, 1, 0, 0);
	in = rec_inst(&rc, "tk-ünï-中文");
	assert_string_equal(in->name, "缓存 🚀 é中");
	assert_string_equal(in->status, "creating");
	assert_string_equal(in->charge_type, "prepaid");
	rec_json_eq(in->tags_json, "{\"团队\":\"推理 \\\"quoted\\\" \\\\ back\"}");
	/* unknown fields are kept in raw; UTF-8 and slashes stay as they are */
	assert_non_null(
	    strstr(in->raw_json, "\"SomethingNew\":{\"nested\":[1,{\"deep\":\"value\"}]"));
	assert_non_null(strstr(in->raw_json, "\"AnotherNewField\":3.25"));
	assert_non_null(strstr(in->raw_json, "模型/v2"));
	assert_string_equal(rec_svc(&rc, "tk-ünï-中文/model")->model, "模型/v2");
	json_valid(&rc);
	rec_free(&rc);
}

static void tair_bad_pages(void **state)
{
	static const char *const pages[] = {
	    "[]",
	    "\"text\"",
	    "42",
	    "{\"Instances\": \"text\"}",
	    "{\"Instances\": {\"TairInferInstanceDTO\": {\"InstanceId\": \"tk-1\"}}}",
	};
	rec rc;

	rec_init(&rc);
	assert_int_equal(af_normalize_tair_page(&tair_scope, NULL, &rc.sink, NULL), AF_ERR_DATA);
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		json_object *o = json_tokener_parse(pages[i]);

		assert_non_null(o);
		assert_int_equal(af_normalize_tair_page(&tair_scope, o, &rc.sink, NULL),
		                 AF_ERR_DATA);
		json_object_put(o);
	}
	assert_int_equal(rc.calls, 0);
	rec_free(&rc);
}

/* ---- TI-ONE ---- */

static void tione_empty_pages(void **state)
{
	static const char *const files[] = {"tione_empty.json", "tione_no_groups.json"};
	af_norm_stats st;
	rec rc;

	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(run(TIONE, files[i], &rc, &st), 0);
		assert_int_equal(rc.calls, 0);
		stats_are(&st, 0, 0, 0, 0, 0);
		rec_free(&rc);
	}
}

static void tione_bad_pages(void **state)
{
	af_norm_stats st;
	rec rc;

	assert_int_equal(run(TIONE, "tione_not_object.json", &rc, &st), AF_ERR_DATA);
	rec_free(&rc);
	assert_int_equal(run(TIONE, "tione_error.json", &rc, &st), AF_ERR_DATA);
	assert_non_null(strstr(af_error_last(), "AuthFailure.SignatureExpire"));
	assert_int_equal(rc.calls, 0);
	rec_free(&rc);
}

static void tione_resource_total(void **state)
{
	af_norm_stats st;
	const af_resource *r;
	const af_service *s;
	rec rc;

	/* as it is, the group's UpdateTime cannot be read: the group is
	 * rejected with its services */
	assert_int_equal(run(TIONE, "tione_resource_total.json", &rc, &st), 0);
	assert_int_equal(rc.calls, 0);
	stats_are(&st, 0, 0, 0, 1, 0);
	rec_free(&rc);

	/* without that, and without ms-total-3's Memory "lots" */
	assert_int_equal(
	    run_edited(TIONE, "tione_resource_total.json", fix_resource_total, &rc, &st), 0);
	/* rejected: the service without an id, ms-total-5 (ServiceInfo) */
	assert_string_equal(rc.order, "ISRRRSRRRRSR");
	stats_are(&st, 1, 3, 8, 2, 0);
	rec_json_eq(rec_inst(&rc, "ms-total")->tags_json, "{\"env\":\"prod\",\"n\":\"7\"}");
	assert_true(rec_inst(&rc, "ms-total")->updated_at == AF_TIME_NULL);

	/* ResourceTotal present: it is the capacity; per replica still filled */
	s = rec_svc(&rc, "ms-total-1");
	assert_string_equal(s->charge_type, "prepaid");
	assert_string_equal(s->status, "running");
	assert_string_equal(s->model, "llama");
	assert_string_equal(s->model_version, "v3");
	r = rec_res(&rc, "ms-total-1", "cpu_cores");
	rec_num_eq(r->per_replica, 8);
	rec_num_eq(r->capacity, 24);
	assert_string_equal(r->basis, "resource_total");
	r = rec_res(&rc, "ms-total-1", "memory_gib");
	rec_num_eq(r->per_replica, 32);
	rec_num_eq(r->capacity, 96);
	r = rec_res(&rc, "ms-total-1", "gpu_count");
	rec_num_eq(r->per_replica, 0.5);
	rec_num_eq(r->capacity, 1.5);
	assert_string_equal(r->gpu_model, "T4");
	assert_null(rec_res_opt(&rc, "ms-total-1", "real_gpu_count"));

	/* ResourceTotal null: per replica x 2 replicas */
	s = rec_svc(&rc, "ms-total-2");
	assert_string_equal(s->charge_type, "hybrid");
	assert_string_equal(s->status, "failed");
	assert_string_equal(s->status_raw, "CREATE_FAILED");
	r = rec_res(&rc, "ms-total-2", "cpu_cores");
	rec_num_eq(r->per_replica, 0.5);
	rec_num_eq(r->capacity, 1);
	assert_string_equal(r->basis, "per_replica_x_replicas");
	rec_num_eq(rec_res(&rc, "ms-total-2", "memory_gib")->capacity, 3);
	r = rec_res(&rc, "ms-total-2", "gpu_count");
	rec_num_eq(r->capacity, 0);
	assert_null(r->gpu_model); /* GpuType "" */
	r = rec_res(&rc, "ms-total-2", "real_gpu_count");
	rec_num_eq(r->per_replica, 0.25);
	rec_num_eq(r->capacity, 0.5);

	/* unknown vocabulary; no Replicas: per replica known, total not */
	s = rec_svc(&rc, "ms-total-3");
	assert_string_equal(s->charge_type, "unknown");
	assert_string_equal(s->charge_type_raw, "SOMETHING_NEW");
	assert_string_equal(s->status, "unknown");
	assert_string_equal(s->status_raw, "Hibernating");
	rec_num_unset(s->replicas);
	r = rec_res(&rc, "ms-total-3", "cpu_cores");
	rec_num_eq(r->per_replica, 4);
	rec_num_unset(r->capacity);
	assert_null(rec_res_opt(&rc, "ms-total-3", "memory_gib"));

	json_valid(&rc);
	rec_free(&rc);
}

static void tione_nulls(void **state)
{
	af_norm_stats st;
	const af_service *s;
	rec rc;

	assert_int_equal(run(TIONE, "tione_nulls.json", &rc, &st), 0);
	/* ms-badsvcs is emitted, but its unknown services make it rejected
	 * (the scope is partial); the group without an id is rejected */
	assert_string_equal(rc.order, "IISSI");
	stats_are(&st, 3, 2, 0, 2, 0);
	assert_null(rec_inst(&rc, "ms-nulls")->tags_json);
	assert_null(rec_inst(&rc, "ms-nulls")->status);
	s = rec_svc(&rc, "ms-svcnull-1");
	assert_string_equal(s->instance_id, "ms-svcnull");
	assert_null(s->status);
	assert_null(s->charge_type);
	rec_num_unset(s->replicas);
	assert_null(rec_svc(&rc, "ms-svcnull-2")->model);
	rec_inst(&rc, "ms-badsvcs");
	json_valid(&rc);
	rec_free(&rc);
}

static void tione_huge(void **state)
{
	af_norm_stats st;
	rec rc;

	assert_int_equal(run(TIONE, "tione_huge.json", &rc, &st), 0);
	/* Memory saturated, Gpu inf, 1e308/1000 x 1e308 replicas overflows:
	 * the service is rejected, its group stands */
	assert_string_equal(rc.order, "I");
	stats_are(&st, 1, 0, 0, 1, 0);
	rec_free(&rc);

	/* a product that overflows alone is as unreadable */
	assert_int_equal(run_edited(TIONE, "tione_huge.json", fix_huge, &rc, &st), 0);
	assert_string_equal(rc.order, "I");
	stats_are(&st, 1, 0, 0, 1, 0);
	rec_free(&rc);
}

/* ---- Hologres ---- */

static void hologres_apikey_nested(void **state)
{
	static const char *const secrets[] = {"sk-", "apiKey", "ApiKey", "api_key", "API-KEY"};
	af_norm_stats st;
	const af_instance *in;
	const af_service *s;
	capture cap;
	char *log;
	rec rc;

	capture_start(&cap);
	assert_int_equal(run(HOLO, "hologres_apikey_nested.json", &rc, &st), 0);
	log = capture_end(&cap);

	assert_string_equal(rc.order, "IRSRRRRS");
	stats_are(&st, 1, 2, 5, 2, 0);
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		rec_assert_absent(&rc, secrets[i]);
		assert_null(strstr(log, secrets[i]));
	}
	in = rec_inst(&rc, "holo-ai-1");
	assert_string_equal(in->status, "running");       /* detail ResourceReady over list */
	assert_string_equal(in->charge_type, "postpaid"); /* only the list has it */
	assert_non_null(strstr(in->raw_json, "\"holoInstanceId\":\"hgpostcn-cn-1\""));
	assert_null(strstr(in->raw_json, "requestId"));
	rec_num_eq(rec_res(&rc, "holo-ai-1", "cpu_cores")->capacity, 16);
	rec_num_eq(rec_res(&rc, "holo-ai-1", "cpu_cores")->used, 4);

	s = rec_svc(&rc, "holo-ai-1/m1");
	assert_string_equal(s->status, "creating");
	/* the rest of the payload survives, the embedded JSON minus its key */
	assert_non_null(strstr(s->raw_json, "\"keep\":\"visible\""));
	assert_non_null(strstr(s->raw_json, "\\\"timeout\\\":600"));
	rec_num_eq(rec_res(&rc, "holo-ai-1/m1", "gpu_memory_gib")->capacity, 24);
	s = rec_svc(&rc, "holo-ai-1/m2");
	assert_string_equal(s->status, "failed");
	/* an embedded JSON without a secret is kept byte for byte */
	assert_non_null(strstr(s->raw_json, "\"modelParams\":\"{\\\"timeout\\\":5}\""));
	assert_non_null(strstr(log, "modelServiceList #2 rejected"));
	free(log);
	json_valid(&rc);
	rec_free(&rc);
}

static void hologres_no_id(void **state)
{
	af_norm_stats st;
	rec rc;

	assert_int_equal(run(HOLO, "hologres_no_id.json", &rc, &st), 0);
	assert_int_equal(rc.calls, 0);
	stats_are(&st, 0, 0, 0, 1, 0);
	rec_free(&rc);
}

static void hologres_bad_detail(void **state)
{
	af_norm_stats st;
	rec rc;

	assert_int_equal(run(HOLO, "hologres_bad_detail.json", &rc, &st), 0);
	/* the detail is unusable (rejected: partial), and Feb 30 is an
	 * unreadable expirationTime: the node is rejected too */
	assert_int_equal(rc.calls, 0);
	stats_are(&st, 0, 0, 0, 2, 0);
	rec_free(&rc);

	assert_int_equal(run(HOLO, "hologres_services_not_array.json", &rc, &st), 0);
	assert_string_equal(rc.order, "I");
	stats_are(&st, 1, 0, 0, 1, 0);
	rec_assert_absent(&rc, "sk-");
	rec_free(&rc);
}

static void hologres_bad_item(void **state)
{
	json_object *arr = json_tokener_parse("[1]");
	rec rc;

	rec_init(&rc);
	assert_int_equal(af_normalize_hologres_node(&holo_scope, NULL, NULL, &rc.sink, NULL),
	                 AF_ERR_DATA);
	assert_int_equal(af_normalize_hologres_node(&holo_scope, arr, NULL, &rc.sink, NULL),
	                 AF_ERR_DATA);
	assert_int_equal(rc.calls, 0);
	json_object_put(arr);
	rec_free(&rc);
}

/* Invalid UTF-8 and NULs: ids rejected; text, raw and tags repaired
 * visibly (U+FFFD for every bad byte and NUL, a warning each). */
static void tair_bad_utf8(void **state)
{
	af_norm_stats st;
	const af_instance *in;
	rec rc;

	assert_int_equal(run(TAIR, "tair_bad_utf8.json", &rc, &st), 0);
	assert_string_equal(rc.order, "IS");
	/* InstanceName, Model, ZoneId (a UTF-16 surrogate in CESU form), a tag
	 * key, the tags, the raw of the instance and of its model service */
	stats_are(&st, 1, 1, 0, 2, 7);
	in = rec_inst(&rc, "tk-utf");
	assert_string_equal(in->name, "bad\xef\xbf\xbd(");
	assert_string_equal(in->model, "m\xef\xbf\xbdx");
	assert_string_equal(in->zone, "z\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(in->spec, "ok \xe2\x82\xac");
	rec_json_eq(
	    in->tags_json,
	    "{\"k\xef\xbf\xbd\":\"v\xef\xbf\xbdtail\",\"ok\":\"\xef\xbf\xbd\xef\xbf\xbd\"}");
	assert_non_null(strstr(in->raw_json, "\"InstanceName\":\"bad\xef\xbf\xbd(\""));
	assert_non_null(strstr(in->raw_json, "\"Model\":\"m\xef\xbf\xbdx\""));
	assert_string_equal(rec_svc(&rc, "tk-utf/model")->model, "m\xef\xbf\xbdx");
	json_valid(&rc);
	rec_free(&rc);
}

/* A repeated id would give two records with one key: the first wins, the
 * repeat is rejected (so the scope is partial). */
static void duplicate_ids(void **state)
{
	af_norm_stats st;
	rec rc;

	assert_int_equal(run(TAIR, "tair_duplicate_ids.json", &rc, &st), 0);
	assert_string_equal(rc.order, "IRI");
	stats_are(&st, 2, 0, 1, 1, 0);
	assert_string_equal(rec_inst(&rc, "tk-a")->name, "first");
	rec_num_eq(rec_res(&rc, "tk-a", "kv_capacity")->capacity, 1);
	rec_free(&rc);

	assert_int_equal(run(TIONE, "tione_duplicates.json", &rc, &st), 0);
	assert_string_equal(rc.order, "ISR");
	stats_are(&st, 1, 1, 1, 2, 0);
	assert_string_equal(rec_inst(&rc, "ms-d")->name, "first");
	rec_num_eq(rec_res(&rc, "ms-d-1", "cpu_cores")->capacity, 1);
	rec_free(&rc);

	assert_int_equal(run(HOLO, "hologres_duplicate_services.json", &rc, &st), 0);
	assert_string_equal(rc.order, "ISRS");
	stats_are(&st, 1, 2, 1, 1, 0);
	assert_string_equal(rec_svc(&rc, "holo-ai-d/m")->model, "first");
	rec_svc(&rc, "holo-ai-d/n");
	rec_assert_absent(&rc, "sk-dup");
	rec_free(&rc);
}

/* A sink with NULL callbacks still counts (the collectors' dry runs). */
static void null_sink(void **state)
{
	json_object *page = rec_load("api/tione_describe_example.json");
	af_norm_stats st = {0};

	assert_int_equal(af_normalize_tione_page(&tione_scope, page, NULL, &st), 0);
	stats_are(&st, 1, 1, 4, 0, 0);
	json_object_put(page);
}

/* ---- crafted pages: one rule each ---- */

/* Normalizes a page given as text (any bytes), capturing the log. */
static int run_text(enum product p, const char *text, rec *rc, af_norm_stats *st, char **log)
{
	json_tokener *tok = json_tokener_new();
	json_object *o, *list = NULL, *detail = NULL;
	capture cap;
	int err;

	assert_non_null(tok);
	o = json_tokener_parse_ex(tok, text, (int)strlen(text));
	if (!o)
		fail_msg("test page does not parse: %.200s", text);
	json_tokener_free(tok);
	rec_init(rc);
	memset(st, 0, sizeof(*st));
	capture_start(&cap);
	switch (p) {
	case TAIR:
		err = af_normalize_tair_page(&tair_scope, o, &rc->sink, st);
		break;
	case TIONE:
		err = af_normalize_tione_page(&tione_scope, o, &rc->sink, st);
		break;
	default:
		json_object_object_get_ex(o, "list", &list);
		json_object_object_get_ex(o, "detail", &detail);
		err = af_normalize_hologres_node(&holo_scope, list, detail, &rc->sink, st);
		break;
	}
	*log = capture_end(&cap);
	json_object_put(o);
	return err;
}

/* tmpl with its one "%s" replaced by `member` (no printf: any bytes). */
static char *fmt_page(const char *tmpl, const char *member)
{
	const char *at = strstr(tmpl, "%s");
	size_t head, mlen = strlen(member);
	char *page;

	assert_non_null(at);
	head = (size_t)(at - tmpl);
	page = malloc(strlen(tmpl) + mlen + 1);
	assert_non_null(page);
	memcpy(page, tmpl, head);
	memcpy(page + head, member, mlen);
	strcpy(page + head + mlen, at + 2);
	return page;
}

typedef struct bad_case {
	enum product p;
	const char *tmpl;   /* page with one %s for the bad member */
	const char *member; /* the unreadable member */
	const char *field;  /* named in the rejection */
	const char *item;   /* rejected, with everything under it */
	const char *order;  /* what the other items still emit */
} bad_case;

#define TAIR_TMPL                                                                                  \
	"{\"Instances\":{\"TairInferInstanceDTO\":[{\"InstanceId\":\"tk-bad\",\"Model\":\"m\","    \
	"\"Capacity\":2,%s},{\"InstanceId\":\"tk-good\",\"Capacity\":1}]}}"
#define TIONE_SVC_TMPL                                                                             \
	"{\"Response\":{\"ServiceGroups\":[{\"ServiceGroupId\":\"ms-g\",\"Services\":["            \
	"{\"ServiceId\":\"ms-bad\",\"ServiceInfo\":{\"Replicas\":1,\"Resources\":{\"Cpu\":1000}}," \
	"\"ChargeType\":\"PREPAID\",%s},{\"ServiceId\":\"ms-good\"}]}]}}"
#define TIONE_GROUP_TMPL                                                                           \
	"{\"Response\":{\"ServiceGroups\":[{\"ServiceGroupId\":\"ms-bad\",%s,"                     \
	"\"Services\":[{\"ServiceId\":\"ms-bad-1\"}]},{\"ServiceGroupId\":\"ms-good\"}]}}"
#define HOLO_NODE_TMPL                                                                             \
	"{\"list\":{\"aiInstanceId\":\"holo-bad\",\"cpu\":8,%s},"                                  \
	"\"detail\":{\"modelServiceList\":[{\"modelName\":\"m\"}]}}"
#define HOLO_SVC_TMPL                                                                              \
	"{\"list\":{\"aiInstanceId\":\"holo-n\"},\"detail\":{\"modelServiceList\":["               \
	"{\"modelName\":\"bad\",\"cpu\":2,%s},{\"modelName\":\"good\"}]}}"

static const bad_case bad_cases[] = {
    /* quantities */
    {TAIR, TAIR_TMPL, "\"Capacity\":1e400", "Capacity", "tk-bad", "IR"},
    {TAIR, TAIR_TMPL, "\"Capacity\":\"abc\"", "Capacity", "tk-bad", "IR"},
    {TAIR, TAIR_TMPL, "\"Capacity\":\"\"", "Capacity", "tk-bad", "IR"},
    {TAIR, TAIR_TMPL, "\"Capacity\":true", "Capacity", "tk-bad", "IR"},
    {TAIR, TAIR_TMPL, "\"ComputeUnitNum\":99999999999999999999999", "ComputeUnitNum", "tk-bad",
     "IR"},
    {TAIR, TAIR_TMPL, "\"VNodeCount\":-99999999999999999999999", "VNodeCount", "tk-bad", "IR"},
    {TAIR, TAIR_TMPL, "\"ModelServiceNum\":[1]", "ModelServiceNum", "tk-bad", "IR"},
    {TIONE, TIONE_SVC_TMPL, "\"Status\":\"Normal\",\"ServiceInfo\":{\"Replicas\":\"two\"}",
     "Replicas", "ms-bad", "IS"},
    {TIONE, TIONE_SVC_TMPL, "\"ServiceInfo\":{\"Resources\":{\"Cpu\":\"lots\"}}", "Cpu", "ms-bad",
     "IS"},
    {TIONE, TIONE_SVC_TMPL, "\"ServiceInfo\":{\"ResourceTotal\":{\"Gpu\":1e999}}", "Gpu", "ms-bad",
     "IS"},
    {HOLO, HOLO_NODE_TMPL, "\"gpuUsed\":1e400", "gpuUsed", "holo-bad", ""},
    {HOLO, HOLO_NODE_TMPL, "\"memory\":\"x\"", "memory", "holo-bad", ""},
    {HOLO, HOLO_SVC_TMPL, "\"gpu\":1e400", "gpu", "holo-n/bad", "IS"},
    {HOLO, HOLO_SVC_TMPL, "\"serviceCount\":{}", "serviceCount", "holo-n/bad", "IS"},
    /* times */
    {TAIR, TAIR_TMPL, "\"CreateTime\":\"2025-02-30T00:00Z\"", "CreateTime", "tk-bad", "IR"},
    {TAIR, TAIR_TMPL, "\"EndTime\":1744001160", "EndTime", "tk-bad", "IR"},
    {TAIR, TAIR_TMPL, "\"EndTime\":\" \"", "EndTime", "tk-bad", "IR"},
    {TIONE, TIONE_SVC_TMPL, "\"UpdateTime\":\"soon\"", "UpdateTime", "ms-bad", "IS"},
    {TIONE, TIONE_GROUP_TMPL, "\"CreateTime\":5", "CreateTime", "ms-bad", "I"},
    {HOLO, HOLO_NODE_TMPL, "\"expirationTime\":\"2026-13-01T00:00Z\"", "expirationTime", "holo-bad",
     ""},
    /* statuses and charge types */
    {TAIR, TAIR_TMPL, "\"InstanceStatus\":3", "InstanceStatus", "tk-bad", "IR"},
    {TAIR, TAIR_TMPL,
     "\"InstanceStatus\":\"Norm\xff"
     "al\"",
     "InstanceStatus", "tk-bad", "IR"},
    {TAIR, TAIR_TMPL, "\"ChargeType\":{\"a\":1}", "ChargeType", "tk-bad", "IR"},
    {TIONE, TIONE_SVC_TMPL, "\"Status\":7", "Status", "ms-bad", "IS"},
    {TIONE, TIONE_GROUP_TMPL, "\"Status\":[\"Normal\"]", "Status", "ms-bad", "I"},
    {HOLO, HOLO_NODE_TMPL, "\"status\":[\"a\"]", "status", "holo-bad", ""},
    {HOLO, HOLO_SVC_TMPL, "\"status\":1", "status", "holo-n/bad", "IS"},
    /* ids */
    {HOLO, HOLO_NODE_TMPL, "\"aiInstanceId\":5", "aiInstanceId", "instanceModelList item", ""},
    /* text of the wrong type, containers of the wrong type */
    {TAIR, TAIR_TMPL, "\"InstanceName\":[\"n\"]", "InstanceName", "tk-bad", "IR"},
    {TAIR, TAIR_TMPL, "\"Model\":5", "Model", "tk-bad", "IR"},
    {TAIR, TAIR_TMPL, "\"Tags\":\"x\"", "Tags", "tk-bad", "IR"},
    {TAIR, TAIR_TMPL, "\"Tags\":{\"Tag\":{\"Key\":\"a\"}}", "Tags.Tag", "tk-bad", "IR"},
    {TAIR, TAIR_TMPL, "\"Tags\":{\"Tag\":[5]}", "Tags.Tag", "tk-bad", "IR"},
    {TAIR, TAIR_TMPL, "\"Tags\":{\"Tag\":[{\"Value\":\"v\"}]}", "Tags.Tag", "tk-bad", "IR"},
    {TIONE, TIONE_SVC_TMPL, "\"ServiceInfo\":\"x\"", "ServiceInfo", "ms-bad", "IS"},
    {TIONE, TIONE_SVC_TMPL, "\"ServiceInfo\":{\"Resources\":[]}", "Resources", "ms-bad", "IS"},
    {TIONE, TIONE_SVC_TMPL, "\"ServiceInfo\":{\"ModelInfo\":{\"ModelName\":1}}", "ModelName",
     "ms-bad", "IS"},
    {TIONE, TIONE_SVC_TMPL, "\"ServiceInfo\":{\"ModelInfo\":\"llama\"}", "ModelInfo", "ms-bad",
     "IS"},
    {TIONE, TIONE_SVC_TMPL, "\"Tags\":[{\"TagKey\":1,\"TagValue\":\"v\"}]", "Tags", "ms-bad", "IS"},
    {TIONE, TIONE_GROUP_TMPL, "\"ServiceGroupName\":5", "ServiceGroupName", "ms-bad", "I"},
    {HOLO, HOLO_SVC_TMPL, "\"modelType\":false", "modelType", "holo-n/bad", "IS"},
};

/* A value that is present but cannot be read rejects its item whole (its
 * stored version stands, the scope is partial); the others go on. */
static void unreadable_rejects_item(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const bad_case *k = &bad_cases[i];
		char *page = fmt_page(k->tmpl, k->member), *log, want[160];
		af_norm_stats st;
		rec rc;

		assert_int_equal(run_text(k->p, page, &rc, &st, &log), 0);
		snprintf(want, sizeof(want), "%s rejected: field %s: ", k->item, k->field);
		if (!strstr(log, want) || st.rejected != 1 || strcmp(rc.order, k->order) != 0)
			fail_msg("case %zu (%s): rejected %llu, order [%s], log:\n%s", i, k->member,
			         (unsigned long long)st.rejected, rc.order, log);
		/* nothing of the rejected item was emitted */
		if (strcmp(k->item, "instanceModelList item") != 0)
			rec_assert_absent(&rc, k->item);
		/* the warning names the field, never its value */
		assert_null(strstr(log, "abc"));
		assert_null(strstr(log, "lots"));
		assert_null(strstr(log, "1e400"));
		free(log);
		free(page);
		rec_free(&rc);
	}
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Text up to 64 KiB is kept, longer rejects the item alone; so do an id
 * over 512 bytes, tags over 64 KiB and a raw payload over 1 MiB. */
static void size_limits(void **state)
{
	static const struct {
		const char *fmt; /* %s gets the long string */
		size_t len;
		const char *field; /* NULL: accepted */
		const char *item;
	} cases[] = {
	    {"\"InstanceId\":\"tk-bad\",\"InstanceName\":\"%s\"", 64 * 1024, NULL, "tk-bad"},
	    {"\"InstanceId\":\"tk-bad\",\"InstanceName\":\"%s\"", 64 * 1024 + 1, "InstanceName",
	     "tk-bad"},
	    {"\"InstanceId\":\"tk-bad\",\"Model\":\"%s\"", 20 * 1024 * 1024, "Model", "tk-bad"},
	    {"\"InstanceId\":\"tk-%s\"", 508, NULL, "tk-aaaa"},
	    {"\"InstanceId\":\"tk-%s\"", 510, "InstanceId", "TairInferInstanceDTO #0"},
	    {"\"InstanceId\":\"tk-bad\",\"Tags\":{\"Tag\":[{\"Key\":\"a\",\"Value\":\"%s\"}]}",
	     64 * 1024, "Tags.Tag", "tk-bad"},
	    {"\"InstanceId\":\"tk-bad\",\"Blob\":\"%s\"", 1024 * 1024, "raw", "tk-bad"},
	    {"\"InstanceId\":\"tk-bad\",\"Blob\":\"%s\"", 1000 * 1000, NULL, "tk-bad"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *big = repeat('a', cases[i].len), *member = fmt_page(cases[i].fmt, big);
		char *page = fmt_page("{\"Instances\":{\"TairInferInstanceDTO\":[{%s},"
		                      "{\"InstanceId\":\"tk-good\"}]}}",
		                      member);
		char *log, want[160];
		af_norm_stats st;
		rec rc;

		assert_int_equal(run_text(TAIR, page, &rc, &st, &log), 0);
		if (cases[i].field) {
			snprintf(want, sizeof(want), "%s rejected: field %s: ", cases[i].item,
			         cases[i].field);
			if (!strstr(log, want))
				fail_msg("case %zu: log %.300s", i, log);
			assert_string_equal(rc.order, "I");
			assert_int_equal(st.rejected, 1);
		} else {
			assert_string_equal(rc.order, "II");
			assert_int_equal(st.rejected, 0);
			assert_non_null(strstr(rc.all, cases[i].item));
		}
		assert_string_equal(rc.inst[rc.ninst - 1].native_id, "tk-good");
		free(log);
		free(page);
		free(member);
		free(big);
		rec_free(&rc);
	}
}

/* Tag values of every type, secrets left out of tags and raw, numeric
 * strings read as numbers. */
static void tair_tag_values(void **state)
{
	static const char page[] =
	    "{\"Instances\":{\"TairInferInstanceDTO\":[{\"InstanceId\":\"tk-t\",\"Capacity\":"
	    "\"512\","
	    "\"ModelServiceNum\":\" 3 \",\"Model\":\"m\",\"Tags\":{\"Tag\":["
	    "{\"Key\":\"b\",\"Value\":true},{\"Key\":\"n\",\"Value\":null},"
	    "{\"Key\":\"f\",\"Value\":1.5},{\"Key\":\"i\",\"Value\":900},{\"Key\":\"d\",\"Value\":"
	    "256.},"
	    "{\"Key\":\"o\",\"Value\":{\"k\":[1,\"x\",01.5]}},{\"Key\":\"s\",\"Value\":\"str\"},"
	    "{\"Key\":\"s\",\"Value\":\"last wins\"},{\"Key\":\"apiKey\",\"Value\":\"hunter2\"},"
	    "{\"Key\":\"e\",\"Value\":\"use sk-abcdefghijklmnop1234\"},"
	    "{\"Key\":\"j\",\"Value\":\"[v\\u0000tail\"}]}}]}}";
	const af_instance *in;
	af_norm_stats st;
	char *log;
	rec rc;

	assert_int_equal(run_text(TAIR, page, &rc, &st, &log), 0);
	assert_string_equal(rc.order, "IRS");
	stats_are(&st, 1, 1, 1, 0, 0);
	in = rec_inst(&rc, "tk-t");
	rec_json_eq(in->tags_json, "{\"b\":\"true\",\"f\":\"1.5\",\"i\":\"900\",\"d\":\"256\","
	                           "\"o\":\"{\\\"k\\\":[1,\\\"x\\\",1.5]}\",\"s\":\"last wins\","
	                           "\"e\":\"use <redacted>\"}"); /* j: uninspectable, dropped */
	rec_num_eq(rec_res(&rc, "tk-t", "kv_capacity")->capacity, 512);
	rec_num_eq(rec_svc(&rc, "tk-t/model")->replicas, 3);
	/* the tag named apiKey: its value is in neither tags nor raw */
	rec_assert_absent(&rc, "hunter2");
	rec_assert_absent(&rc, "sk-abcdefghijklmnop1234");
	assert_non_null(strstr(in->raw_json, "{\"Key\":\"apiKey\"}"));
	assert_non_null(strstr(in->raw_json, "{\"Key\":\"d\",\"Value\":256}"));
	json_valid(&rc);
	free(log);
	rec_free(&rc);
}

/* Text that holds a secret value is redacted visibly; the item stays. */
static void text_secret_redacted(void **state)
{
	static const char page[] =
	    "{\"Instances\":{\"TairInferInstanceDTO\":[{\"InstanceId\":\"tk-s\","
	    "\"InstanceName\":\"key sk-abcdefghijklmnop1234 "
	    "end\",\"ZoneId\":\"apiKey=hunter2\"}]}}";
	const af_instance *in;
	af_norm_stats st;
	char *log;
	rec rc;

	assert_int_equal(run_text(TAIR, page, &rc, &st, &log), 0);
	assert_string_equal(rc.order, "I");
	stats_are(&st, 1, 0, 0, 0, 2);
	in = rec_inst(&rc, "tk-s");
	assert_string_equal(in->name, "key <redacted> end");
	assert_string_equal(in->zone, "apiKey=<redacted>");
	rec_assert_absent(&rc, "sk-abcdefghijklmnop1234");
	rec_assert_absent(&rc, "hunter2");
	assert_non_null(strstr(log, "tk-s: field InstanceName: a secret-looking value redacted"));
	assert_null(strstr(log, "hunter2"));
	free(log);
	rec_free(&rc);
}

/* Raw: numbers in canonical JSON, non-finite and saturated ones null, bad
 * bytes and NULs as U+FFFD; modelParams nested deeper than json-c's own
 * limit still loses its key. */
static void raw_canonical(void **state)
{
	static const char page[] =
	    "{\"Instances\":{\"TairInferInstanceDTO\":[{\"InstanceId\":\"tk-n\","
	    "\"A\":[256.,01.5,-.5,1.e5,1E400,-0,-0.0,1e-400,NaN,-Infinity,99999999999999999999,"
	    "18446744073709551614,-9223372036854775807,0.1,123456789012345678,1.5e300],"
	    "\"S\":\"a\\u0000b\\u0001\xff\",\"k\\u0000x\":1}]}}";
	const af_instance *in;
	af_norm_stats st;
	char *log;
	rec rc;

	assert_int_equal(run_text(TAIR, page, &rc, &st, &log), 0);
	assert_string_equal(rc.order, "I");
	in = rec_inst(&rc, "tk-n");
	assert_non_null(strstr(in->raw_json,
	                       "\"A\":[256,1.5,-0.5,1e5,null,0,-0,0,null,null,null,"
	                       "18446744073709551614,-9223372036854775807,0.1,123456789012345678,"
	                       "1.5e300]"));
	assert_non_null(strstr(in->raw_json, "\"S\":\"a\xef\xbf\xbd"
	                                     "b\\u0001\xef\xbf\xbd\""));
	/* the raw was repaired: a warning */
	stats_are(&st, 1, 0, 0, 0, 1);
	json_valid(&rc);
	free(log);
	rec_free(&rc);
}

static char *nested_params(int depth, const char *inner)
{
	size_t n = (size_t)depth * 16 + strlen(inner) + 64;
	char *s = malloc(n), *p = s;

	assert_non_null(s);
	for (int i = 0; i < depth; i++)
		p += sprintf(p, "{\\\"a\\\":");
	p += sprintf(p, "%s", inner);
	for (int i = 0; i < depth; i++)
		*p++ = '}';
	*p = '\0';
	return s;
}

/* The case: modelParams nested 31+ deep (json-c's own limit) kept
 * the apiKey; now it is removed, and past the policy's depth the string
 * is dropped. */
static void hologres_deep_params(void **state)
{
	static const int depths[] = {5, 31, 40, 70};

	for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		char *params =
		    nested_params(depths[i], "{\\\"apiKey\\\":\\\"hunter2\\\",\\\"t\\\":1}");
		char *member = fmt_page("\"modelParams\":\"%s\"", params);
		char *page = fmt_page(HOLO_SVC_TMPL, member), *log;
		const af_service *s;
		af_norm_stats st;
		rec rc;

		assert_int_equal(run_text(HOLO, page, &rc, &st, &log), 0);
		assert_string_equal(rc.order, "ISRS");
		rec_assert_absent(&rc, "hunter2");
		rec_assert_absent(&rc, "apiKey");
		s = rec_svc(&rc, "holo-n/bad");
		if (depths[i] + 2 < AF_TEST_SECRET_DEPTH)
			assert_non_null(strstr(s->raw_json, "\\\"t\\\":1"));
		else
			assert_non_null(strstr(s->raw_json, "\"modelParams\":null"));
		json_valid(&rc);
		free(log);
		free(page);
		free(member);
		free(params);
		rec_free(&rc);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tair_nulls),
	    cmocka_unit_test(tair_empty_pages),
	    cmocka_unit_test(tair_wrong_types),
	    cmocka_unit_test(tair_missing_ids),
	    cmocka_unit_test(tair_huge),
	    cmocka_unit_test(tair_unicode),
	    cmocka_unit_test(tair_bad_pages),
	    cmocka_unit_test(tione_empty_pages),
	    cmocka_unit_test(tione_bad_pages),
	    cmocka_unit_test(tione_resource_total),
	    cmocka_unit_test(tione_nulls),
	    cmocka_unit_test(tione_huge),
	    cmocka_unit_test(hologres_apikey_nested),
	    cmocka_unit_test(hologres_no_id),
	    cmocka_unit_test(hologres_bad_detail),
	    cmocka_unit_test(hologres_bad_item),
	    cmocka_unit_test(duplicate_ids),
	    cmocka_unit_test(tair_bad_utf8),
	    cmocka_unit_test(null_sink),
	    cmocka_unit_test(unreadable_rejects_item),
	    cmocka_unit_test(size_limits),
	    cmocka_unit_test(tair_tag_values),
	    cmocka_unit_test(text_secret_redacted),
	    cmocka_unit_test(raw_canonical),
	    cmocka_unit_test(hologres_deep_params),
	};
	af_log_setup(AF_LOG_WARN, AF_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
