/*
 * Pure parts of the transport: retry delays, answer classification, token
 * bucket arithmetic, default endpoints, and credentials files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aifleet/creds.h"
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/product.h"
#include "aifleet/record.h"
#include "testutil.h"

static void test_backoff_bounds(void **state)
{
	/* cap = min(max, base * 2^attempt); full jitter over [0, cap]. */
	assert_int_equal(af_backoff_delay_ms(100, 20000, 0, 0, 0.0), 0);
	assert_int_equal(af_backoff_delay_ms(100, 20000, 0, 0, 0.999999), 100);
	assert_int_equal(af_backoff_delay_ms(100, 20000, 3, 0, 0.999999), 800);
	assert_int_equal(af_backoff_delay_ms(100, 20000, 3, 0, 0.5), 400);
	assert_int_equal(af_backoff_delay_ms(100, 1000, 10, 0, 0.999999), 1000);
	assert_int_equal(af_backoff_delay_ms(100, 1000, 1000, 0, 0.999999), 1000);
	/* Out-of-range u is clamped, never beyond the cap. */
	assert_int_equal(af_backoff_delay_ms(100, 1000, 2, 0, 1.5), 400);
	assert_int_equal(af_backoff_delay_ms(100, 1000, 2, 0, -1), 0);
	/* x-acs-retry-after wins, capped by max_delay. */
	assert_int_equal(af_backoff_delay_ms(100, 20000, 0, 1500, 0.0), 1500);
	assert_int_equal(af_backoff_delay_ms(100, 1000, 0, 1500, 0.3), 1000);
	for (int a = 0; a < 20; a++)
		for (double u = 0; u < 1; u += 0.0625) {
			long d = af_backoff_delay_ms(50, 5000, a, 0, u);
			long cap = 50L << (a > 7 ? 7 : a);

			assert_true(d >= 0);
			assert_true(d <= (cap > 5000 ? 5000 : cap));
		}
}

typedef struct cls_case {
	const char *name;
	af_api_style style;
	long status;
	const char *body;
	long retry_after;
	int klass;
	bool retry, throttled;
	const char *code, *request_id;
} cls_case;

static const cls_case cls_cases[] = {
	{"ali ok", AF_API_ACS3_RPC, 200, "{\"RequestId\":\"r1\",\"TotalCount\":0}", 0, 0, false,
	 false, "", "r1"},
	{"ali throttling", AF_API_ACS3_RPC, 400,
	 "{\"RequestId\":\"r2\",\"Code\":\"Throttling.User\",\"Message\":\"Request was denied due "
	 "to user flow control.\"}",
	 0, AF_ERR_TRANSIENT, true, true, "Throttling.User", "r2"},
	{"ali retry-after only", AF_API_ACS3_RPC, 400, "{\"Code\":\"Whatever\"}", 1200,
	 AF_ERR_TRANSIENT, true, true, "Whatever", ""},
	{"ali 503", AF_API_ACS3_RPC, 503, "{\"Code\":\"ServiceUnavailable\",\"RequestId\":\"r3\"}", 0,
	 AF_ERR_TRANSIENT, true, false, "ServiceUnavailable", "r3"},
	{"ali 502 html", AF_API_ACS3_RPC, 502, "<html>bad gateway</html>", 0, AF_ERR_TRANSIENT, true,
	 false, "", ""},
	{"ali internal", AF_API_ACS3_RPC, 500, "{\"Code\":\"InternalError\"}", 0, AF_ERR_TRANSIENT,
	 true, false, "InternalError", ""},
	{"ali sig", AF_API_ACS3_RPC, 400, "{\"Code\":\"SignatureDoesNotMatch\",\"RequestId\":\"r4\"}",
	 0, AF_ERR_AUTH, false, false, "SignatureDoesNotMatch", "r4"},
	{"ali ak", AF_API_ACS3_RPC, 404, "{\"Code\":\"InvalidAccessKeyId.NotFound\"}", 0,
	 AF_ERR_AUTH, false, false, "InvalidAccessKeyId.NotFound", ""},
	{"ali forbidden", AF_API_ACS3_ROA, 403,
	 "{\"code\":\"Forbidden.RAM\",\"requestId\":\"r5\",\"message\":\"no\"}", 0, AF_ERR_AUTH,
	 false, false, "Forbidden.RAM", "r5"},
	{"ali param", AF_API_ACS3_RPC, 400, "{\"Code\":\"InvalidParameter.PageSize\"}", 0,
	 AF_ERR_PARAM, false, false, "InvalidParameter.PageSize", ""},
	{"ali missing", AF_API_ACS3_RPC, 400, "{\"Code\":\"MissingParameter\"}", 0, AF_ERR_PARAM,
	 false, false, "MissingParameter", ""},
	{"ali roa ok lowercase", AF_API_ACS3_ROA, 200, "{\"requestId\":\"r6\"}", 0, 0, false, false,
	 "", "r6"},
	{"ali bad json 200", AF_API_ACS3_RPC, 200, "{\"RequestId\":", 0, AF_ERR_DATA, false, false,
	 "", ""},
	{"ali trailing garbage", AF_API_ACS3_RPC, 200, "{} x", 0, AF_ERR_DATA, false, false, "", ""},
	{"ali array", AF_API_ACS3_RPC, 200, "[1,2]", 0, AF_ERR_DATA, false, false, "", ""},
	{"ali empty 200", AF_API_ACS3_RPC, 200, "", 0, AF_ERR_DATA, false, false, "", ""},
	{"tc ok", AF_API_TC3, 200, "{\"Response\":{\"TotalCount\":0,\"RequestId\":\"t1\"}}", 0, 0,
	 false, false, "", "t1"},
	{"tc limit", AF_API_TC3, 200,
	 "{\"Response\":{\"Error\":{\"Code\":\"RequestLimitExceeded\",\"Message\":\"slow\"},"
	 "\"RequestId\":\"t2\"}}",
	 0, AF_ERR_TRANSIENT, true, true, "RequestLimitExceeded", "t2"},
	{"tc limit sub", AF_API_TC3, 200,
	 "{\"Response\":{\"Error\":{\"Code\":\"RequestLimitExceeded.UinLimitExceeded\"}}}", 0,
	 AF_ERR_TRANSIENT, true, true, "RequestLimitExceeded.UinLimitExceeded", ""},
	{"tc internal", AF_API_TC3, 200, "{\"Response\":{\"Error\":{\"Code\":\"InternalError\"}}}", 0,
	 AF_ERR_TRANSIENT, true, false, "InternalError", ""},
	{"tc auth", AF_API_TC3, 200,
	 "{\"Response\":{\"Error\":{\"Code\":\"AuthFailure.SignatureFailure\",\"Message\":\"m\"},"
	 "\"RequestId\":\"t3\"}}",
	 0, AF_ERR_AUTH, false, false, "AuthFailure.SignatureFailure", "t3"},
	{"tc unauthorized", AF_API_TC3, 200,
	 "{\"Response\":{\"Error\":{\"Code\":\"UnauthorizedOperation\"}}}", 0, AF_ERR_AUTH, false,
	 false, "UnauthorizedOperation", ""},
	{"tc param", AF_API_TC3, 200,
	 "{\"Response\":{\"Error\":{\"Code\":\"InvalidParameterValue.Limit\"}}}", 0, AF_ERR_PARAM,
	 false, false, "InvalidParameterValue.Limit", ""},
	{"tc failed op not retried", AF_API_TC3, 200,
	 "{\"Response\":{\"Error\":{\"Code\":\"FailedOperation.QueryFailed\"}}}", 0, AF_ERR_GENERIC,
	 false, false, "FailedOperation.QueryFailed", ""},
	{"tc no Response", AF_API_TC3, 200, "{\"TotalCount\":0}", 0, AF_ERR_DATA, false, false, "",
	 ""},
	{"tc 502", AF_API_TC3, 502, "oops", 0, AF_ERR_TRANSIENT, true, false, "", ""},
	{"tc bad json", AF_API_TC3, 200, "{\"Response\":{", 0, AF_ERR_DATA, false, false, "", ""},
};

static void test_classify(void **state)
{
	for (size_t i = 0; i < sizeof(cls_cases) / sizeof(cls_cases[0]); i++) {
		const cls_case *c = &cls_cases[i];
		af_api_verdict v;
		json_object *j = (json_object *)1;

		af_api_classify(&v, &j, c->style, c->status, c->body, strlen(c->body),
				c->retry_after);
		if (v.klass != c->klass || v.retry != c->retry || v.throttled != c->throttled)
			print_error("case %s: klass %d retry %d throttled %d (%s)\n", c->name,
				    v.klass, v.retry, v.throttled, v.message);
		assert_int_equal(v.klass, c->klass);
		assert_int_equal(v.retry, c->retry);
		assert_int_equal(v.throttled, c->throttled);
		assert_string_equal(v.code, c->code);
		assert_string_equal(v.request_id, c->request_id);
		if (c->klass == 0)
			assert_non_null(j);
		else
			assert_null(j);
		json_object_put(j);
	}
}

static void test_classify_messages(void **state)
{
	af_api_verdict v;
	const char *b = "{\"Response\":{\"Error\":{\"Code\":\"AuthFailure\",\"Message\":\"the "
			"signature is wrong\"}}}";

	af_api_classify(&v, NULL, AF_API_TC3, 200, b, strlen(b), 0);
	assert_string_equal(v.message, "the signature is wrong");
	af_api_classify(&v, NULL, AF_API_ACS3_RPC, 200, "{\"a\":", 5, 0);
	assert_non_null(strstr(v.message, "unparseable JSON body"));
}

static void test_token_bucket_math(void **state)
{
	af_token_bucket b;
	double t = 100.0, w;

	af_token_bucket_init(&b, 20, 1, t);
	assert_true(af_token_bucket_reserve(&b, t) == 0);
	/* Reservations queue up 1/rate apart. */
	w = af_token_bucket_reserve(&b, t);
	assert_float_equal(w, 0.05, 1e-9);
	w = af_token_bucket_reserve(&b, t);
	assert_float_equal(w, 0.10, 1e-9);
	/* After the debt is repaid plus one interval, a token is there again. */
	assert_true(af_token_bucket_reserve(&b, t + 0.15) == 0);
	/* Burst: a full bucket of 5 serves 5 at once, then 1/rate apart. */
	af_token_bucket_init(&b, 10, 5, t);
	for (int i = 0; i < 5; i++)
		assert_true(af_token_bucket_reserve(&b, t) == 0);
	assert_float_equal(af_token_bucket_reserve(&b, t), 0.1, 1e-9);
	/* Tokens never accumulate beyond the burst. */
	af_token_bucket_init(&b, 10, 2, t);
	assert_true(af_token_bucket_reserve(&b, t + 1000) == 0);
	assert_true(af_token_bucket_reserve(&b, t + 1000) == 0);
	assert_true(af_token_bucket_reserve(&b, t + 1000) > 0);
}

static void test_token_bucket_aimd(void **state)
{
	af_token_bucket b;

	af_token_bucket_init(&b, 20, 1, 0);
	af_token_bucket_throttled(&b, 0);
	assert_float_equal(b.rate, 10, 1e-9);
	af_token_bucket_throttled(&b, 0);
	af_token_bucket_throttled(&b, 0);
	af_token_bucket_throttled(&b, 0);
	af_token_bucket_throttled(&b, 0);
	assert_float_equal(b.rate, 1, 1e-9); /* floor 1/s */
	af_token_bucket_success(&b, 0);
	assert_float_equal(b.rate, 2, 1e-9); /* + max/20 */
	for (int i = 0; i < 100; i++)
		af_token_bucket_success(&b, 0);
	assert_float_equal(b.rate, 20, 1e-9); /* never above the configured rate */
	/* A slow configured rate keeps its own floor. */
	af_token_bucket_init(&b, 0.5, 1, 0);
	af_token_bucket_throttled(&b, 0);
	assert_float_equal(b.rate, 0.5, 1e-9);
}

static void test_default_endpoints(void **state)
{
	char e[128];

	assert_int_equal(af_default_endpoint(e, sizeof(e), "tair_kvcache", "cn-beijing", false), 0);
	assert_string_equal(e, "https://r-kvstore.aliyuncs.com");
	assert_int_equal(
		af_default_endpoint(e, sizeof(e), "tair_kvcache", "ap-southeast-1", false), 0);
	assert_string_equal(e, "https://r-kvstore.ap-southeast-1.aliyuncs.com");
	assert_int_equal(
		af_default_endpoint(e, sizeof(e), "hologres", "cn-hangzhou", false), 0);
	assert_string_equal(e, "https://hologram.cn-hangzhou.aliyuncs.com");
	assert_int_equal(af_default_endpoint(e, sizeof(e), "tione", "ap-guangzhou", false),
			 0);
	assert_string_equal(e, "https://tione.tencentcloudapi.com");
	assert_int_equal(af_default_endpoint(e, sizeof(e), "tione", NULL, true), 0);
	assert_string_equal(e, "https://tione.intl.tencentcloudapi.com");
	assert_int_equal(af_default_endpoint(e, sizeof(e), "hologres", NULL, false),
			 AF_ERR_CONFIG);
	assert_int_equal(af_default_endpoint(e, sizeof(e), "hologres", "x/../y", false),
			 AF_ERR_CONFIG);
	assert_int_equal(af_default_endpoint(e, sizeof(e), "nope", "cn-beijing", false),
			 AF_ERR_CONFIG);
	assert_int_equal(af_default_endpoint(e, 10, "tair_kvcache", "cn-beijing", false),
			 AF_ERR_LIMIT);

	assert_int_equal(af_endpoint_expand(e, sizeof(e), "http://127.0.0.1:8089/{region}",
					    "cn-hangzhou"),
			 0);
	assert_string_equal(e, "http://127.0.0.1:8089/cn-hangzhou");
	assert_int_equal(af_endpoint_expand(e, sizeof(e), "https://{region}.x/{region}", "a-1"), 0);
	assert_string_equal(e, "https://a-1.x/a-1");
	assert_int_equal(af_endpoint_expand(e, sizeof(e), "https://fixed", NULL), 0);
	assert_string_equal(e, "https://fixed");
	assert_int_equal(af_endpoint_expand(e, sizeof(e), "https://{region}", NULL), AF_ERR_CONFIG);
	assert_int_equal(af_endpoint_expand(e, 8, "https://{region}", "cn-beijing"), AF_ERR_LIMIT);
}

static const char aliyun_cfg[] =
	"{\"current\":\"dev\",\"profiles\":["
	"{\"name\":\"default\",\"mode\":\"AK\",\"access_key_id\":\"LTAIdefault\","
	"\"access_key_secret\":\"SECRETdefault\",\"sts_token\":\"\",\"region_id\":\"cn-hangzhou\"},"
	"{\"name\":\"dev\",\"mode\":\"StsToken\",\"access_key_id\":\"STS.id\","
	"\"access_key_secret\":\"SECRETdev\",\"sts_token\":\"TOKENdev\"},"
	"{\"name\":\"role\",\"mode\":\"RamRoleArn\",\"access_key_id\":\"a\","
	"\"access_key_secret\":\"SECRETrole\"}]}";

static void test_creds_aliyun(void **state)
{
	char *dir = af_test_tempdir();
	char *p = af_test_write_file(dir, "config.json", aliyun_cfg, 0600);
	af_credentials c;

	unsetenv("ALIBABA_CLOUD_PROFILE");
	assert_int_equal(af_credentials_from_aliyun_cli(&c, p, NULL), 0); /* "current" = dev */
	assert_string_equal(c.access_key_id, "STS.id");
	assert_string_equal(c.access_key_secret, "SECRETdev");
	assert_string_equal(c.security_token, "TOKENdev");
	af_credentials_clear(&c);
	assert_null(c.access_key_id);

	assert_int_equal(af_credentials_from_aliyun_cli(&c, p, "default"), 0);
	assert_string_equal(c.access_key_id, "LTAIdefault");
	assert_null(c.security_token);
	af_credentials_clear(&c);

	setenv("ALIBABA_CLOUD_PROFILE", "default", 1);
	assert_int_equal(af_credentials_from_aliyun_cli(&c, p, NULL), 0);
	assert_string_equal(c.access_key_id, "LTAIdefault");
	af_credentials_clear(&c);
	unsetenv("ALIBABA_CLOUD_PROFILE");

	/* Unsupported mode and unknown profile: clear message, no secret in it. */
	assert_int_equal(af_credentials_from_aliyun_cli(&c, p, "role"), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "RamRoleArn"));
	assert_null(strstr(af_error_last(), "SECRET"));
	assert_int_equal(af_credentials_from_aliyun_cli(&c, p, "nope"), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "\"nope\""));

	/* The default path comes from ALIBABA_CLOUD_CONFIG_FILE. */
	setenv("ALIBABA_CLOUD_CONFIG_FILE", p, 1);
	assert_int_equal(af_credentials_from_aliyun_cli(&c, NULL, "default"), 0);
	af_credentials_clear(&c);
	unsetenv("ALIBABA_CLOUD_CONFIG_FILE");

	/* Readable by others: refused, and the message says why. */
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(af_credentials_from_aliyun_cli(&c, p, NULL), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "chmod 600"));
	assert_null(c.access_key_id);
	assert_int_equal(chmod(p, 0640), 0);
	assert_int_equal(af_credentials_check_file_mode(p), AF_ERR_CONFIG);
	assert_int_equal(chmod(p, 0400), 0);
	assert_int_equal(af_credentials_check_file_mode(p), 0);
	remove(p);
	free(p);
	p = af_test_write_file(dir, "bad.json", "{\"profiles\": [", 0600);
	assert_int_equal(af_credentials_from_aliyun_cli(&c, p, "x"), AF_ERR_CONFIG);
	remove(p);
	free(p);
	rmdir(dir);
	free(dir);
}

static void test_creds_tencent(void **state)
{
	char *dir = af_test_tempdir();
	char *p = af_test_write_file(dir, "credentials",
			     "[default]\nsecret_id = AKIDdefault\nsecret_key = KEYdefault\n"
			     "[prod]\nsecret_id=AKIDprod\nsecret_key=KEYprod\ntoken=TOKprod\n"
			     "[broken]\nsecret_id=only\n",
			     0600);
	af_credentials c;

	assert_int_equal(af_credentials_from_tencent_file(&c, p, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDdefault");
	assert_string_equal(c.access_key_secret, "KEYdefault");
	assert_null(c.security_token);
	af_credentials_clear(&c);
	assert_int_equal(af_credentials_from_tencent_file(&c, p, "prod"), 0);
	assert_string_equal(c.security_token, "TOKprod");
	af_credentials_clear(&c);
	assert_int_equal(af_credentials_from_tencent_file(&c, p, "broken"), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "[broken]"));
	assert_null(strstr(af_error_last(), "only"));
	assert_int_equal(af_credentials_from_tencent_file(&c, p, "absent"), AF_ERR_CONFIG);
	setenv("TENCENTCLOUD_CREDENTIALS_FILE", p, 1);
	assert_int_equal(af_credentials_from_tencent_file(&c, NULL, NULL), 0);
	af_credentials_clear(&c);
	unsetenv("TENCENTCLOUD_CREDENTIALS_FILE");
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(af_credentials_from_tencent_file(&c, p, NULL), AF_ERR_CONFIG);
	assert_null(c.access_key_id);
	assert_null(strstr(af_error_last(), "KEYdefault"));
	remove(p);
	free(p);
	rmdir(dir);
	free(dir);
}

static void test_creds_env(void **state)
{
	af_credentials c;

	setenv("AFT_ID", "idv", 1);
	setenv("AFT_SECRET", "secretvalue", 1);
	unsetenv("AFT_TOKEN");
	assert_int_equal(af_credentials_from_env(&c, "AFT_ID", "AFT_SECRET", "AFT_TOKEN"), 0);
	assert_string_equal(c.access_key_secret, "secretvalue");
	assert_null(c.security_token);
	af_credentials_clear(&c);
	setenv("AFT_TOKEN", "tok", 1);
	assert_int_equal(af_credentials_from_env(&c, "AFT_ID", "AFT_SECRET", "AFT_TOKEN"), 0);
	assert_string_equal(c.security_token, "tok");
	af_credentials_clear(&c);
	unsetenv("AFT_SECRET");
	assert_int_equal(af_credentials_from_env(&c, "AFT_ID", "AFT_SECRET", NULL), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "AFT_SECRET"));
	assert_null(strstr(af_error_last(), "idv"));
	af_credentials_clear(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_bounds),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_classify_messages),
		cmocka_unit_test(test_token_bucket_math),
		cmocka_unit_test(test_token_bucket_aimd),
		cmocka_unit_test(test_default_endpoints),
		cmocka_unit_test(test_creds_aliyun),
		cmocka_unit_test(test_creds_tencent),
		cmocka_unit_test(test_creds_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
