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
#include "rec.h"
#include "testutil.h"

static const af_scope tair_scope = {AF_PROVIDER_ALIBABA, "acct", "cn-beijing", AF_PRODUCT_TAIR};
static const af_scope tione_scope = {AF_PROVIDER_TENCENT, "acct", "ap-guangzhou", AF_PRODUCT_TIONE};
static const af_scope holo_scope = {AF_PROVIDER_ALIBABA, "acct", "cn-shanghai",
                                    AF_PRODUCT_HOLOGRES};

enum product { TAIR, TIONE, HOLO };

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
	const af_instance *in;
	capture cap;
	char *log;
	rec rc;

	capture_start(&cap);
	assert_int_equal(run(TAIR, "tair_wrong_types.json", &rc, &st), 0);
	log = capture_end(&cap);

	assert_string_equal(rc.order, "IRSI");
	/* tk-types: InstanceName, InstanceStatus, ChargeType, CreateTime, EndTime,
	 * DestroyTime, 3 bad tags, ComputeUnitNum, VNodeCount = 11;
	 * tk-hex: Capacity "0x10", "inf", "nan", Tags.Tag not an array = 4 */
	stats_are(&st, 2, 1, 1, 0, 15);
	in = rec_inst(&rc, "tk-types");
	assert_null(in->name);
	assert_null(in->status);
	assert_null(in->charge_type);
	assert_true(in->created_at == AF_TIME_NULL);
	assert_true(in->expires_at == AF_TIME_NULL);
	rec_json_eq(in->tags_json,
	            "{\"b\":\"true\",\"f\":\"1.5\",\"o\":\"{\\\"k\\\":[1,\\\"x\\\"]}\","
	            "\"s\":\"last wins\"}");
	/* a numeric string is a number */
	rec_num_eq(rec_res(&rc, "tk-types", "kv_capacity")->capacity, 512);
	assert_null(rec_res_opt(&rc, "tk-types", "compute_units"));
	assert_null(rec_res_opt(&rc, "tk-types", "vnodes"));
	rec_num_eq(rec_svc(&rc, "tk-types/model")->replicas, 3);
	assert_null(rec_inst(&rc, "tk-hex")->tags_json);
	assert_null(rec_res_opt(&rc, "tk-hex", "kv_capacity"));
	rec_assert_absent(&rc, "sk-tagsecret");

	/* warnings name the scope, the item and the field; values never appear */
	assert_non_null(strstr(log, "alibaba/acct/cn-beijing/tair_kvcache"));
	assert_non_null(strstr(log, "tk-types"));
	assert_non_null(strstr(log, "CreateTime"));
	assert_non_null(strstr(log, "ComputeUnitNum"));
	assert_null(strstr(log, "yesterday"));
	assert_null(strstr(log, "sk-tagsecret"));
	free(log);
	json_valid(&rc);
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
	const af_instance *in;
	af_norm_stats st;
	rec rc;

	assert_int_equal(run(TAIR, "tair_huge.json", &rc, &st), 0);
	/* 1e308 is a (silly but finite) number; 1e400 is inf and the 26-digit
	 * integer saturates in json-c: both dropped with a warning */
	stats_are(&st, 1, 0, 1, 0, 2);
	rec_num_eq(rec_res(&rc, "tk-huge", "kv_capacity")->capacity, 1e308);
	assert_null(rec_res_opt(&rc, "tk-huge", "compute_units"));
	assert_null(rec_res_opt(&rc, "tk-huge", "vnodes"));
	/* raw: json-c reads NaN/Infinity/1e400, jsonb takes none of them */
	in = rec_inst(&rc, "tk-huge");
	assert_non_null(strstr(in->raw_json, "\"ComputeUnitNum\":null"));
	assert_non_null(strstr(in->raw_json, "\"Weird\":null"));
	assert_non_null(strstr(in->raw_json, "\"Weirder\":null"));
	assert_non_null(strstr(in->raw_json, "\"Capacity\":1e308"));
	json_valid(&rc);
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

	assert_int_equal(run(TIONE, "tione_resource_total.json", &rc, &st), 0);
	assert_string_equal(rc.order, "ISRRRSRRRRSRS");
	/* warnings: group UpdateTime, Memory "lots", ServiceInfo not an object */
	stats_are(&st, 1, 4, 8, 1, 3);
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

	rec_num_unset(rec_svc(&rc, "ms-total-5")->replicas);
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
	const af_resource *r;
	rec rc;

	assert_int_equal(run(TIONE, "tione_huge.json", &rc, &st), 0);
	/* 1e308/1000 x 1e308 replicas overflows; Memory saturated; Gpu inf */
	stats_are(&st, 1, 1, 1, 0, 3);
	r = rec_res(&rc, "ms-huge-1", "cpu_cores");
	rec_num_eq(r->per_replica, 1e305);
	rec_num_unset(r->capacity);
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
	assert_string_equal(rc.order, "IR");
	/* the detail is unusable (rejected: partial), Feb 30 is a warning */
	stats_are(&st, 1, 0, 1, 1, 1);
	assert_true(rec_inst(&rc, "holo-ai-3")->expires_at == AF_TIME_NULL);
	rec_num_eq(rec_res(&rc, "holo-ai-3", "cpu_cores")->used, 2);
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

/* Invalid UTF-8 and NULs: ids rejected, text fields dropped, raw and
 * tags repaired (U+FFFD for bad bytes, cut at a NUL). */
static void tair_bad_utf8(void **state)
{
	af_norm_stats st;
	const af_instance *in;
	rec rc;

	assert_int_equal(run(TAIR, "tair_bad_utf8.json", &rc, &st), 0);
	assert_string_equal(rc.order, "I");
	/* InstanceName, Model, ZoneId (a UTF-16 surrogate in CESU form) */
	stats_are(&st, 1, 0, 0, 2, 3);
	in = rec_inst(&rc, "tk-utf");
	assert_null(in->name);
	assert_null(in->model);
	assert_null(in->zone);
	assert_string_equal(in->spec, "ok \xe2\x82\xac");
	rec_json_eq(in->tags_json, "{\"k\xef\xbf\xbd\":\"v\",\"ok\":\"\xef\xbf\xbd\xef\xbf\xbd\"}");
	assert_non_null(strstr(in->raw_json, "\"InstanceName\":\"bad\xef\xbf\xbd(\""));
	assert_non_null(strstr(in->raw_json, "\"Model\":\"m\""));
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
	};
	af_log_setup(AF_LOG_WARN, AF_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
