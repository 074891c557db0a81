/*
 * The API pages' own response examples (tests/fixtures/api/, verbatim)
 * through each normalizer. Expected values are derived by hand from the
 * pages and the units in SPEC.md; epoch seconds were checked with
 * `date -u -d <timestamp> +%s`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aifleet/error.h"
#include "aifleet/normalize.h"
#include "rec.h"

#define S INT64_C(1000000)

static const af_scope tair_scope = {AF_PROVIDER_ALIBABA, "acct", "cn-beijing", "tair_kvcache"};
static const af_scope tione_scope = {AF_PROVIDER_TENCENT, "acct", "ap-guangzhou", "tione"};
static const af_scope holo_scope = {AF_PROVIDER_ALIBABA, "acct", "cn-shanghai",
                                    "hologres"};

#define TK "tk-9dp7e37bab*****"

static void tair_example(void **state)
{
	json_object *page = rec_load("api/tair_describe_example.json");
	af_norm_stats st = {0};
	const af_instance *in;
	const af_service *s;
	const af_resource *r;
	rec rc;

	rec_init(&rc);
	assert_int_equal(af_normalize_tair_page(&tair_scope, page, &rc.sink, &st), 0);
	assert_string_equal(rc.order, "IRRRS");
	assert_int_equal(st.instances, 1);
	assert_int_equal(st.services, 1);
	assert_int_equal(st.resources, 3);
	assert_int_equal(st.rejected, 0);
	/* DestroyTime "2025-04-07T04:46Z\n" parses: no warning */
	assert_int_equal(st.warnings, 0);

	in = rec_inst(&rc, TK);
	assert_string_equal(in->name, "kvcache-7");
	assert_string_equal(in->status, "running");
	assert_string_equal(in->status_raw, "Normal");
	assert_string_equal(in->charge_type, "postpaid");
	assert_string_equal(in->charge_type_raw, "PostPaid");
	assert_string_equal(in->zone, "cn-hangzhou-g");
	assert_string_equal(in->spec, "kvcache.cu.g4b.2");
	assert_string_equal(in->model, "DeepSeek-OCR");
	assert_true(in->created_at == 1744001160 * S); /* 2025-04-07T04:46Z */
	assert_true(in->expires_at == 1762222166 * S); /* 2025-11-04T02:09:26Z */
	assert_true(in->updated_at == AF_TIME_NULL);
	/* the numeric tag value 900 becomes the string "900" */
	rec_json_eq(in->tags_json, "{\"thread\":\"900\"}");
	assert_non_null(strstr(in->tags_json, "\"900\""));
	/* raw keeps everything, DestroyTime and the vnode split included */
	assert_non_null(strstr(in->raw_json, "\"DestroyTime\":\"2025-04-07T04:46Z\\n\""));
	assert_non_null(strstr(in->raw_json, "\"FixedVNodeCount\":0"));
	assert_non_null(strstr(in->raw_json, "\"ElasticVNodeCount\":0"));
	assert_non_null(strstr(in->raw_json, "\"VNodeName\":\"tv-xxxxx\""));
	assert_null(strchr(in->raw_json, '\n')); /* compact */

	r = rec_res(&rc, TK, "kv_capacity");
	assert_int_equal(r->owner_kind, AF_OWNER_INSTANCE);
	rec_num_eq(r->capacity, 256);
	rec_num_unset(r->used);
	rec_num_unset(r->per_replica);
	assert_string_equal(r->unit, "capacity_units");
	assert_string_equal(r->basis, "reported");
	r = rec_res(&rc, TK, "compute_units");
	rec_num_eq(r->capacity, 1);
	assert_string_equal(r->unit, "compute_units");
	r = rec_res(&rc, TK, "vnodes");
	rec_num_eq(r->capacity, 2);
	assert_string_equal(r->unit, "vnodes");

	s = rec_svc(&rc, TK "/model");
	assert_string_equal(s->instance_id, TK);
	assert_string_equal(s->model, "DeepSeek-OCR");
	assert_string_equal(s->status, "running");
	rec_num_eq(s->replicas, 1);
	assert_true(s->created_at == 1744001160 * S);
	rec_json_eq(s->raw_json, "{\"Model\":\"DeepSeek-OCR\",\"ModelServiceNum\":1}");

	rec_free(&rc);
	json_object_put(page);
}

static void tione_example(void **state)
{
	json_object *page = rec_load("api/tione_describe_example.json");
	af_norm_stats st = {0};
	const af_instance *in;
	const af_service *s;
	const af_resource *r;
	rec rc;

	rec_init(&rc);
	assert_int_equal(af_normalize_tione_page(&tione_scope, page, &rc.sink, &st), 0);
	/* the group has no resources of its own: services only */
	assert_string_equal(rc.order, "ISRRRR");
	assert_int_equal(st.instances, 1);
	assert_int_equal(st.services, 1);
	assert_int_equal(st.resources, 4);
	assert_int_equal(st.rejected, 0);
	assert_int_equal(st.warnings, 0);

	in = rec_inst(&rc, "ms-vzd8qdk5");
	assert_string_equal(in->name, "llm_test");
	assert_string_equal(in->status, "stopped");
	assert_string_equal(in->status_raw, "Stopped");
	assert_null(in->charge_type);                  /* groups have no charge type */
	assert_true(in->created_at == 1691214418 * S); /* 2023-08-05T05:46:58Z */
	assert_true(in->updated_at == 1691504822 * S); /* 2023-08-08T14:27:02Z */
	rec_json_eq(in->tags_json, "{}");
	/* the group's raw leaves out Services (they have their own) */
	assert_null(strstr(in->raw_json, "\"Services\""));
	assert_null(strstr(in->raw_json, "ms-vzd8qdk5-1"));
	assert_non_null(strstr(in->raw_json, "\"ServiceCount\":1"));

	s = rec_svc(&rc, "ms-vzd8qdk5-1");
	assert_string_equal(s->instance_id, "ms-vzd8qdk5");
	assert_string_equal(s->name, "llm_test");
	assert_string_equal(s->model, "chatglm-6b-tiacc-ft");
	assert_string_equal(s->model_version, "v1");
	assert_string_equal(s->status, "stopped");
	assert_string_equal(s->status_raw, "Stopped");
	assert_string_equal(s->charge_type, "postpaid");
	assert_string_equal(s->charge_type_raw, "POSTPAID_BY_HOUR");
	rec_num_eq(s->replicas, 0);
	assert_true(s->created_at == 1691214418 * S);
	assert_true(s->updated_at == 1691504822 * S);
	rec_json_eq(s->tags_json, "{}");
	/* the service raw keeps nested data, e.g. the +08:00 conditions */
	assert_non_null(
	    strstr(s->raw_json, "\"LastTransitionTime\":\"2023-08-08T22:27:01+08:00\""));
	assert_non_null(strstr(s->raw_json, "\"InstanceType\":\"TI.GNV4.3XLARGE44.POST\""));
	/* NOSLASHESCAPE: URLs and paths stay readable */
	assert_non_null(strstr(s->raw_json, "tione.tencentcloudcr.com/qcloud-ti-platform"));

	/* TI.GNV4.3XLARGE44: 12000/1000 = 12 cores, 45056/1024 = 44 GiB, 100/100
	 * = 1 A10 per replica; Replicas 0 (stopped), so 0 in total */
	r = rec_res(&rc, "ms-vzd8qdk5-1", "cpu_cores");
	assert_int_equal(r->owner_kind, AF_OWNER_SERVICE);
	rec_num_eq(r->per_replica, 12);
	rec_num_eq(r->capacity, 0);
	rec_num_unset(r->used);
	assert_string_equal(r->unit, "cores");
	assert_string_equal(r->basis, "per_replica_x_replicas");
	assert_null(r->gpu_model);
	r = rec_res(&rc, "ms-vzd8qdk5-1", "memory_gib");
	rec_num_eq(r->per_replica, 44);
	rec_num_eq(r->capacity, 0);
	assert_string_equal(r->unit, "GiB");
	r = rec_res(&rc, "ms-vzd8qdk5-1", "gpu_count");
	rec_num_eq(r->per_replica, 1);
	rec_num_eq(r->capacity, 0);
	assert_string_equal(r->unit, "cards");
	assert_string_equal(r->gpu_model, "A10");
	r = rec_res(&rc, "ms-vzd8qdk5-1", "real_gpu_count");
	rec_num_eq(r->per_replica, 1);
	assert_string_equal(r->gpu_model, "A10");

	rec_free(&rc);
	json_object_put(page);
}

#define HID "hologram_aicombo_public_cn-77xxx"

static json_object *holo_list_item(json_object *list)
{
	json_object *arr;

	assert_true(json_object_object_get_ex(list, "instanceModelList", &arr));
	return json_object_array_get_idx(arr, 0);
}

static void hologres_example(void **state)
{
	json_object *list = rec_load("api/hologres_list_example.json");
	json_object *detail = rec_load("api/hologres_get_example.json");
	af_norm_stats st = {0};
	const af_instance *in;
	const af_service *s;
	const af_resource *r;
	rec rc;

	rec_init(&rc);
	assert_int_equal(
	    af_normalize_hologres_node(&holo_scope, holo_list_item(list), detail, &rc.sink, &st),
	    0);
	assert_string_equal(rc.order, "IRRRRSRRRR");
	assert_int_equal(st.instances, 1);
	assert_int_equal(st.services, 1);
	assert_int_equal(st.resources, 8);
	assert_int_equal(st.rejected, 0);
	assert_int_equal(st.warnings, 0);

	in = rec_inst(&rc, HID);
	assert_string_equal(in->name, "AI节点List测试");
	assert_string_equal(in->status, "running");
	assert_string_equal(in->status_raw, "ResourceReady");
	/* list says PostPaid, detail PrePaid: the detail wins */
	assert_string_equal(in->charge_type, "prepaid");
	assert_string_equal(in->charge_type_raw, "PrePaid");
	assert_string_equal(in->spec, "small-8core-30G-24G");
	assert_true(in->expires_at == 1769586267 * S + 535000); /* ...07:44:27.535Z */
	assert_null(in->tags_json);
	assert_non_null(strstr(in->raw_json, "\"holoInstanceId\":\"hgpostcn-cn-yi34hlzdx003\""));
	assert_non_null(strstr(in->raw_json, "\"resourceType\":\"middle\""));
	assert_null(strstr(in->raw_json, "requestId"));
	assert_null(strstr(in->raw_json, "modelServiceList"));

	/* node totals and usage, from the detail */
	r = rec_res(&rc, HID, "cpu_cores");
	rec_num_eq(r->capacity, 32);
	rec_num_eq(r->used, 32);
	assert_string_equal(r->unit, "cores");
	r = rec_res(&rc, HID, "memory_gib");
	rec_num_eq(r->capacity, 128);
	rec_num_eq(r->used, 64);
	assert_string_equal(r->unit, "GiB");
	r = rec_res(&rc, HID, "gpu_count");
	rec_num_eq(r->capacity, 4);
	rec_num_eq(r->used, 2);
	assert_string_equal(r->unit, "cards");
	r = rec_res(&rc, HID, "gpu_memory_gib");
	rec_num_eq(r->capacity, 128);
	rec_num_eq(r->used, 64);
	assert_string_equal(r->unit, "GiB");

	s = rec_svc(&rc, HID "/my_model");
	assert_string_equal(s->instance_id, HID);
	assert_string_equal(s->name, "my_model");
	assert_string_equal(s->model, "qwen3.5-plus");
	assert_string_equal(s->model_version, "v1.1");
	assert_string_equal(s->status, "running");
	rec_num_eq(s->replicas, 2);
	assert_non_null(strstr(s->raw_json, "\"taskType\":\"embedding\""));
	assert_non_null(strstr(s->raw_json, "\"provider\":\"bailian\""));
	r = rec_res(&rc, HID "/my_model", "cpu_cores");
	assert_int_equal(r->owner_kind, AF_OWNER_SERVICE);
	rec_num_eq(r->capacity, 32);
	rec_num_unset(r->used);
	rec_num_eq(rec_res(&rc, HID "/my_model", "memory_gib")->capacity, 32);
	rec_num_eq(rec_res(&rc, HID "/my_model", "gpu_count")->capacity, 2);
	rec_num_eq(rec_res(&rc, HID "/my_model", "gpu_memory_gib")->capacity, 32);

	/* the secret, anywhere */
	rec_assert_absent(&rc, "apiKey");
	rec_assert_absent(&rc, "sk-42f6c8xxxxxb");
	rec_assert_absent(&rc, "sk-");

	rec_free(&rc);
	json_object_put(list);
	json_object_put(detail);
}

/* Without a detail answer the node comes from the list alone, no services. */
static void hologres_list_only(void **state)
{
	json_object *list = rec_load("api/hologres_list_example.json");
	af_norm_stats st = {0};
	const af_instance *in;
	const af_resource *r;
	rec rc;

	rec_init(&rc);
	assert_int_equal(
	    af_normalize_hologres_node(&holo_scope, holo_list_item(list), NULL, &rc.sink, &st), 0);
	assert_string_equal(rc.order, "IRRRR");
	in = rec_inst(&rc, HID);
	assert_string_equal(in->charge_type, "postpaid");
	assert_non_null(strstr(in->raw_json, "\"resourceType\":\"small\""));
	r = rec_res(&rc, HID, "cpu_cores");
	rec_num_eq(r->capacity, 7);
	rec_num_eq(r->used, 7);
	/* the page's own example says 32 GPUs used of 1: kept as reported */
	r = rec_res(&rc, HID, "gpu_count");
	rec_num_eq(r->capacity, 1);
	rec_num_eq(r->used, 32);
	rec_num_eq(rec_res(&rc, HID, "memory_gib")->capacity, 16);
	rec_num_eq(rec_res(&rc, HID, "gpu_memory_gib")->capacity, 32);
	assert_int_equal(st.services, 0);
	rec_free(&rc);
	json_object_put(list);
}

/* Pure: the same page twice gives byte-identical records. */
static void deterministic(void **state)
{
	json_object *page = rec_load("api/tione_describe_example.json");
	rec a, b;

	rec_init(&a);
	rec_init(&b);
	assert_int_equal(af_normalize_tione_page(&tione_scope, page, &a.sink, NULL), 0);
	assert_int_equal(af_normalize_tione_page(&tione_scope, page, &b.sink, NULL), 0);
	assert_int_equal(a.all_len, b.all_len);
	assert_memory_equal(a.all, b.all, a.all_len);
	assert_string_equal(a.order, b.order);
	rec_free(&a);
	rec_free(&b);
	json_object_put(page);
}

/* A sink failure stops the producer and comes back unchanged. */
static void sink_failure_stops(void **state)
{
	json_object *page = rec_load("api/tair_describe_example.json");
	rec rc;

	rec_init(&rc);
	rc.fail_after = 2;
	assert_int_equal(af_normalize_tair_page(&tair_scope, page, &rc.sink, NULL), AF_ERR_DB);
	assert_int_equal(rc.calls, 2);
	rec_free(&rc);
	json_object_put(page);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tair_example),     cmocka_unit_test(tione_example),
	    cmocka_unit_test(hologres_example), cmocka_unit_test(hologres_list_only),
	    cmocka_unit_test(deterministic),    cmocka_unit_test(sink_failure_stops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
