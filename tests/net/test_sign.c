/*
 * Signing: golden files from SPEC.md vectors (tests/fixtures/sign/), step by
 * step, plus RFC 3986 encoding and canonical-query rules.
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
#include "aifleet/sign.h"
#include "testutil.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ACS_DATE "2023-10-26T10:22:32Z"
#define ACS_NONCE "3156853299f313e23d1673dc12e1703d"
#define TC_ID "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
#define TC_KEY "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"

static char *fixture(const char *dir, const char *name, size_t *len)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "sign/%s/%s", dir, name);
	return af_test_read_fixture(rel, len);
}

/* Compares every step of `s` with the case's golden files. */
static void check_steps(const char *dir, const af_sign_steps *s)
{
	static const char *const names[] = {"canonical_request", "canonical_request_hash",
					    "string_to_sign", "signature", "authorization"};
	const char *got[] = {af_buf_data(&s->canonical_request), s->canonical_request_hash,
			     af_buf_data(&s->string_to_sign), s->signature,
			     af_buf_data(&s->authorization)};
	char hex[65];
	size_t len;
	char *cr, *crh;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *want = fixture(dir, names[i], &len);

		if (strcmp(want, got[i]) != 0)
			print_error("%s/%s:\nwant [%s]\ngot  [%s]\n", dir, names[i], want, got[i]);
		assert_string_equal(got[i], want);
		free(want);
	}
	/* The fixture itself is consistent with the spec's published hash. */
	cr = fixture(dir, "canonical_request", &len);
	crh = fixture(dir, "canonical_request_hash", NULL);
	af_sha256_hex(hex, cr, len);
	assert_string_equal(hex, crh);
	free(cr);
	free(crh);
}

/* Hashes the case's body and checks it against the published payload hash. */
static void payload_hash(const char *dir, char out[65])
{
	size_t len;
	char *body = fixture(dir, "body", &len);
	char *want = fixture(dir, "payload_hash", NULL);

	af_sha256_hex(out, body, len);
	assert_string_equal(out, want);
	free(body);
	free(want);
}

static void run_tc3(const char *dir, const char *host, const char *service)
{
	af_sign_steps s;
	char ph[65];

	payload_hash(dir, ph);
	af_tc3_input in = {
		.method = "POST",
		.content_type = "application/json; charset=utf-8",
		.host = host,
		.payload_hash = ph,
		.service = service,
		.timestamp = 1551113065,
		.secret_id = TC_ID,
		.secret_key = TC_KEY,
	};
	af_sign_steps_init(&s);
	assert_int_equal(af_tc3_sign(&s, &in), 0);
	check_steps(dir, &s);
	af_sign_steps_free(&s);
}

static void test_tc3_t1_official(void **state)
{
	run_tc3("tc3_t1", "cvm.tencentcloudapi.com", "cvm");
}

static void test_tc3_intl(void **state)
{
	run_tc3("tc3_intl", "cvm.tencentcloudapi.com", "cvm");
}

static void test_tc3_t2_tione(void **state)
{
	run_tc3("tc3_t2_tione", "tione.tencentcloudapi.com", "tione");
}

static void test_tc3_service_not_from_host(void **state)
{
	af_sign_steps s;

	/* The host label says "cvm", the request says "tione": scope follows the request. */
	af_tc3_input in = {
		.method = "POST",
		.content_type = "application/json; charset=utf-8",
		.host = "cvm.tencentcloudapi.com",
		.payload_hash = EMPTY_SHA256,
		.service = "tione",
		.timestamp = 1551113065,
		.secret_id = TC_ID,
		.secret_key = TC_KEY,
	};
	af_sign_steps_init(&s);
	assert_int_equal(af_tc3_sign(&s, &in), 0);
	assert_non_null(strstr(af_buf_data(&s.string_to_sign), "\n2019-02-25/tione/tc3_request\n"));
	assert_non_null(strstr(af_buf_data(&s.authorization), "/2019-02-25/tione/tc3_request, "));
	af_sign_steps_free(&s);
}

static void test_tc3_date_is_utc(void **state)
{
	af_sign_steps s;

	/* 1551139199 = 2019-02-25T23:59:59Z, already 2019-02-26 in UTC+8. */
	af_tc3_input in = {
		.method = "POST",
		.content_type = "application/json",
		.host = "tione.tencentcloudapi.com",
		.payload_hash = EMPTY_SHA256,
		.service = "tione",
		.timestamp = 1551139199,
		.secret_id = "id",
		.secret_key = "key",
	};
	setenv("TZ", "Asia/Shanghai", 1);
	af_sign_steps_init(&s);
	assert_int_equal(af_tc3_sign(&s, &in), 0);
	assert_non_null(strstr(af_buf_data(&s.string_to_sign), "\n2019-02-25/tione/tc3_request\n"));
	in.timestamp = 1551139200;
	assert_int_equal(af_tc3_sign(&s, &in), 0);
	assert_non_null(strstr(af_buf_data(&s.string_to_sign), "\n2019-02-26/tione/tc3_request\n"));
	af_sign_steps_free(&s);
	unsetenv("TZ");
}

static void test_tc3_canonical_uri_and_query(void **state)
{
	af_sign_steps s;
	const af_kv q[] = {{"Limit", "20"}, {"Offset", "0"}};

	af_tc3_input in = {
		.method = "GET",
		.query = q,
		.nquery = 2,
		.content_type = "application/x-www-form-urlencoded",
		.host = "127.0.0.1:8089",
		.payload_hash = EMPTY_SHA256,
		.service = "tione",
		.timestamp = 1551113065,
		.secret_id = "id",
		.secret_key = "key",
		.canonical_uri = "/base/",
	};
	af_sign_steps_init(&s);
	assert_int_equal(af_tc3_sign(&s, &in), 0);
	assert_string_equal(af_buf_data(&s.canonical_request),
			    "GET\n/base/\nLimit=20&Offset=0\n"
			    "content-type:application/x-www-form-urlencoded\nhost:127.0.0.1:8089\n\n"
			    "content-type;host\n" EMPTY_SHA256);
	af_sign_steps_free(&s);
}

typedef struct acs_case {
	const char *dir;
	const char *method;
	const char *host;
	const char *uri;
	const char *action;
	const char *version;
	const char *token;
	af_kv query[3];
	size_t nquery;
} acs_case;

static const acs_case acs_cases[] = {
	{"acs3_a3", "POST", "ecs.cn-shanghai.aliyuncs.com", "/", "RunInstances", "2014-05-26", NULL,
	 {{"RegionId", "cn-shanghai"},
	  {"ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"}},
	 2},
	{"acs3_tair", "GET", "r-kvstore.aliyuncs.com", "/", "DescribeTairKVCacheInferInstances",
	 "2015-01-01", NULL,
	 {{"RegionId", "cn-beijing"}, {"PageSize", "30"}, {"PageNumber", "1"}},
	 3},
	{"acs3_tair_sts", "GET", "r-kvstore.aliyuncs.com", "/", "DescribeTairKVCacheInferInstances",
	 "2015-01-01", "YourSecurityToken",
	 {{"PageNumber", "1"}, {"RegionId", "cn-beijing"}, {"PageSize", "30"}},
	 3},
	{"acs3_holo_list", "GET", "hologram.cn-hangzhou.aliyuncs.com",
	 "/api/v1/instances/rpc/listInstanceModel", "ListInstanceModel", "2022-06-01", NULL, {{0}}, 0},
	{"acs3_holo_get", "GET", "hologram.cn-hangzhou.aliyuncs.com",
	 "/api/v1/instances/hgpostcn-cn-xxxx/getInstanceModel", "GetInstanceModel", "2022-06-01", NULL,
	 {{0}}, 0},
};

static void test_acs3_vectors(void **state)
{
	for (size_t i = 0; i < sizeof(acs_cases) / sizeof(acs_cases[0]); i++) {
		const acs_case *c = &acs_cases[i];
		af_sign_steps s;
		char ph[65];
		size_t nh = 0;
		af_kv h[8];

		payload_hash(c->dir, ph);
		/* Deliberately unsorted, mixed case, with unsigned headers mixed in. */
		h[nh++] = (af_kv){"X-Acs-Version", c->version};
		h[nh++] = (af_kv){"accept", "application/json"};
		h[nh++] = (af_kv){"x-acs-signature-nonce", ACS_NONCE};
		h[nh++] = (af_kv){"Host", c->host};
		h[nh++] = (af_kv){"x-acs-date", " " ACS_DATE " "};
		h[nh++] = (af_kv){"x-acs-content-sha256", ph};
		h[nh++] = (af_kv){"x-acs-action", c->action};
		if (c->token)
			h[nh++] = (af_kv){"x-acs-security-token", c->token};
		af_acs3_input in = {
			.method = c->method,
			.canonical_uri = c->uri,
			.query = c->query,
			.nquery = c->nquery,
			.headers = h,
			.nheaders = nh,
			.payload_hash = ph,
			.access_key_id = "YourAccessKeyId",
			.access_key_secret = "YourAccessKeySecret",
		};
		af_sign_steps_init(&s);
		assert_int_equal(af_acs3_sign(&s, &in), 0);
		check_steps(c->dir, &s);
		/* Signing twice with the same steps gives the same result. */
		assert_int_equal(af_acs3_sign(&s, &in), 0);
		check_steps(c->dir, &s);
		af_sign_steps_free(&s);
	}
}

static char *enc(const char *s)
{
	af_buf b = AF_BUF_INIT;

	assert_int_equal(af_rfc3986_encode(&b, s, strlen(s)), 0);
	return af_buf_detach(&b);
}

static void test_rfc3986(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"a b", "a%20b"},
		{"a*b", "a%2Ab"},
		{"a~b", "a~b"},
		{"a/b", "a%2Fb"},
		{"a+b", "a%2Bb"},
		{"\xe4\xb8\xad", "%E4%B8%AD"}, /* 中 */
		{"AZaz09-_.", "AZaz09-_."},
		{"=&%", "%3D%26%25"},
		{"2023-03-13T08:34:30Z", "2023-03-13T08%3A34%3A30Z"},
		{"", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = enc(cases[i].in);

		assert_string_equal(got, cases[i].out);
		free(got);
	}
}

static void test_rfc3986_path(void **state)
{
	af_buf b = AF_BUF_INIT;

	assert_int_equal(af_rfc3986_encode_path(&b, "/api/v1/instances/a b*/get~x"), 0);
	assert_string_equal(af_buf_data(&b), "/api/v1/instances/a%20b%2A/get~x");
	af_buf_free(&b);
}

static void test_canonical_query(void **state)
{
	af_buf b = AF_BUF_INIT;
	/* Sorted by encoded name in byte order: uppercase before lowercase,
	 * "Tag.1.Key" < "Tag.1.Value" < "Tag.2.Key"; empty values stay "k=". */
	const af_kv p[] = {
		{"Tag.2.Key", "env"}, {"b", ""},       {"Tag.1.Value", "a b"}, {"Tag.1.Key", "x*y"},
		{"A", "~"},           {"SearchKey", "中"}, {"a", "1"},
	};

	assert_int_equal(af_canonical_query(&b, p, sizeof(p) / sizeof(p[0])), 0);
	assert_string_equal(af_buf_data(&b),
			    "A=~&SearchKey=%E4%B8%AD&Tag.1.Key=x%2Ay&Tag.1.Value=a%20b&"
			    "Tag.2.Key=env&a=1&b=");
	af_buf_reset(&b);
	assert_int_equal(af_canonical_query(&b, NULL, 0), 0);
	assert_string_equal(af_buf_data(&b), "");
	af_buf_free(&b);
}

static void test_canonical_query_duplicates_by_value(void **state)
{
	af_buf b = AF_BUF_INIT;
	const af_kv p[] = {{"k", "b"}, {"k", "a"}, {"k", ""}};

	assert_int_equal(af_canonical_query(&b, p, 3), 0);
	assert_string_equal(af_buf_data(&b), "k=&k=a&k=b");
	af_buf_free(&b);
}

static void test_acs3_date_and_nonce(void **state)
{
	char d[21], n1[33], n2[33];

	af_acs3_format_date(d, 1698315752); /* the A3 vector's date */
	assert_string_equal(d, ACS_DATE);
	af_acs3_format_date(d, 0);
	assert_string_equal(d, "1970-01-01T00:00:00Z");
	assert_int_equal(af_sign_nonce(n1), 0);
	assert_int_equal(af_sign_nonce(n2), 0);
	assert_int_equal(strlen(n1), 32);
	assert_int_equal(strspn(n1, "0123456789abcdef"), 32);
	assert_string_not_equal(n1, n2);
}

static void test_hmac_rfc4231(void **state)
{
	/* RFC 4231 test case 2. */
	unsigned char mac[32];
	char hex[65];
	static const char *want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

	assert_int_equal(af_hmac_sha256(mac, "Jefe", 4, "what do ya want for nothing?", 28), 0);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	assert_string_equal(hex, want);
	af_sha256_hex(hex, "", 0);
	assert_string_equal(hex, EMPTY_SHA256);
}

static void test_missing_inputs_refused(void **state)
{
	af_sign_steps s;
	af_acs3_input a = {.method = "GET", .canonical_uri = "/", .access_key_id = "id"};
	af_tc3_input t = {.method = "POST", .content_type = "application/json", .host = "h",
			  .secret_id = "id", .secret_key = "k"};

	af_sign_steps_init(&s);
	assert_int_equal(af_acs3_sign(&s, &a), AF_ERR_PARAM);
	assert_int_equal(af_tc3_sign(&s, &t), AF_ERR_PARAM); /* no service */
	af_sign_steps_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tc3_t1_official),
		cmocka_unit_test(test_tc3_intl),
		cmocka_unit_test(test_tc3_t2_tione),
		cmocka_unit_test(test_tc3_service_not_from_host),
		cmocka_unit_test(test_tc3_date_is_utc),
		cmocka_unit_test(test_tc3_canonical_uri_and_query),
		cmocka_unit_test(test_acs3_vectors),
		cmocka_unit_test(test_rfc3986),
		cmocka_unit_test(test_rfc3986_path),
		cmocka_unit_test(test_canonical_query),
		cmocka_unit_test(test_canonical_query_duplicates_by_value),
		cmocka_unit_test(test_acs3_date_and_nonce),
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_missing_inputs_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
