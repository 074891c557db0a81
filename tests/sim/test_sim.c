/*
 * aifleet-sim over real HTTP: requests are built and signed here, on the
 * client side, with sign.h and libcurl, exactly as a collector would.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "aifleet/creds.h"
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/product.h"
#include "aifleet/secret.h"
#include "aifleet/sign.h"
#include "sim.h"
#include "testutil.h"

/* demo accounts, as documented in docs/simulator.md */
#define ALI_AK    "LTAI5tSimDemoAli0000001"
#define ALI_SK    "sim-demo-ali-secret-NOT-REAL"
#define STS_AK    "STS.SimDemoAliSts000001"
#define STS_SK    "sim-demo-sts-secret-NOT-REAL"
#define STS_TOKEN "sim-demo-sts-token-NOT-REAL"
#define TC_ID     "AKIDSimDemoTencent000000001"
#define TC_SK     "sim-demo-tc-secret-NOT-REAL"

static af_sim *g_sim;
static char g_base[64];
static CURL *g_reuse; /* when set, requests go over this handle (kept-alive connection) */

typedef struct http_result {
	long status;
	af_buf body;
	char retry_after[32];
	CURLcode curl;
} http_result;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	af_buf *b = ud;
	return af_buf_append(b, p, sz * n) == 0 ? sz * n : 0;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	http_result *r = ud;
	size_t len = sz * n;
	if (len > 19 && strncasecmp(p, "x-acs-retry-after:", 18) == 0)
		snprintf(r->retry_after, sizeof(r->retry_after), "%.*s", (int)(len - 20), p + 19);
	return len;
}

/* headers: NULL-terminated "Name: value" strings */
static void http(http_result *res, const char *method, const char *url, const char **headers,
                 const char *body)
{
	CURL *c = g_reuse ? g_reuse : curl_easy_init();
	struct curl_slist *h = NULL;
	memset(res, 0, sizeof(*res));
	af_buf_init(&res->body, 0);
	for (size_t i = 0; headers && headers[i]; i++)
		h = curl_slist_append(h, headers[i]);
	h = curl_slist_append(h, "Accept:");
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &res->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, res);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	res->curl = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	if (c != g_reuse)
		curl_easy_cleanup(c);
}

static json_object *res_json(const http_result *r)
{
	json_object *o = json_tokener_parse(af_buf_data(&r->body) ? af_buf_data(&r->body) : "");
	assert_non_null(o);
	return o;
}

/* The error code of an Alibaba (Code/code) or Tencent (Response.Error.Code) body. */
static void err_code(char *out, size_t n, const http_result *r)
{
	json_object *o = json_tokener_parse(af_buf_data(&r->body) ? af_buf_data(&r->body) : ""), *v,
	            *e;
	out[0] = '\0';
	if (!o)
		return;
	if (json_object_object_get_ex(o, "Code", &v) || json_object_object_get_ex(o, "code", &v))
		snprintf(out, n, "%s", json_object_get_string(v));
	else if (json_object_object_get_ex(o, "Response", &v) &&
	         json_object_object_get_ex(v, "Error", &e) &&
	         json_object_object_get_ex(e, "Code", &v))
		snprintf(out, n, "%s", json_object_get_string(v));
	json_object_put(o);
}

/* ---- Alibaba ACS3 client ---- */

typedef struct ali_call {
	const char *path;   /* as sent; default "/" */
	const char *action; /* x-acs-action */
	const char *version;
	const af_kv *query;
	size_t nquery;
	const char *ak, *sk, *token;
	const char *host;     /* Host header; default 127.0.0.1:PORT */
	int64_t skew;         /* seconds added to the clock */
	const char *nonce;    /* default fresh */
	const char *tamper;   /* query string sent instead of the signed one */
	const char *sign_sha; /* x-acs-content-sha256 sent; default the real one */
} ali_call;

static void ali(http_result *res, const ali_call *c)
{
	char date[21], nonce[33], sha[65], url[2048], hh[9][512];
	const char *hdrs[10];
	af_kv kv[8];
	size_t nkv = 0, nh = 0;
	af_buf q = AF_BUF_INIT;
	af_sign_steps st;
	char hostbuf[128];
	const char *host = c->host;
	if (!host) {
		snprintf(hostbuf, sizeof(hostbuf), "127.0.0.1:%u", af_sim_port(g_sim));
		host = hostbuf;
	}
	af_acs3_format_date(date, (int64_t)time(NULL) + c->skew);
	assert_int_equal(af_sign_nonce(nonce), 0);
	af_sha256_hex(sha, "", 0);
	kv[nkv++] = (af_kv){"host", host};
	kv[nkv++] = (af_kv){"x-acs-action", c->action};
	kv[nkv++] = (af_kv){"x-acs-version", c->version};
	kv[nkv++] = (af_kv){"x-acs-date", date};
	kv[nkv++] = (af_kv){"x-acs-signature-nonce", c->nonce ? c->nonce : nonce};
	kv[nkv++] = (af_kv){"x-acs-content-sha256", c->sign_sha ? c->sign_sha : sha};
	if (c->token)
		kv[nkv++] = (af_kv){"x-acs-security-token", c->token};
	assert_int_equal(af_canonical_query(&q, c->query, c->nquery), 0);
	af_sign_steps_init(&st);
	af_acs3_input in = {.method = "GET",
	                    .canonical_uri = c->path ? c->path : "/",
	                    .query = c->query,
	                    .nquery = c->nquery,
	                    .headers = kv,
	                    .nheaders = nkv,
	                    .payload_hash = sha,
	                    .access_key_id = c->ak,
	                    .access_key_secret = c->sk};
	assert_int_equal(af_acs3_sign(&st, &in), 0);
	for (size_t i = 0; i < nkv; i++) {
		snprintf(hh[nh], sizeof(hh[nh]), "%s: %s", kv[i].key, kv[i].value);
		hdrs[nh] = hh[nh];
		nh++;
	}
	snprintf(hh[nh], sizeof(hh[nh]), "Authorization: %s", af_buf_data(&st.authorization));
	hdrs[nh] = hh[nh];
	nh++;
	hdrs[nh] = NULL;
	const char *qs = c->tamper ? c->tamper : (af_buf_data(&q) ? af_buf_data(&q) : "");
	snprintf(url, sizeof(url), "%s%s%s%s", g_base, c->path ? c->path : "/", *qs ? "?" : "", qs);
	http(res, "GET", url, hdrs, NULL);
	af_sign_steps_free(&st);
	af_buf_free(&q);
}

static void tair(http_result *res, const char *ak, const char *sk, const af_kv *q, size_t nq)
{
	ali_call c = {.action = "DescribeTairKVCacheInferInstances",
	              .version = "2015-01-01",
	              .query = q,
	              .nquery = nq,
	              .ak = ak,
	              .sk = sk};
	ali(res, &c);
}

/* ---- Tencent TC3 client ---- */

typedef struct tc_call {
	const char *body;
	const char *id, *sk;
	const char *service; /* default tione */
	const char *region;  /* default ap-guangzhou */
	int64_t skew;
	bool host_without_port;
	const char *tamper_body;
	const char *action;  /* default DescribeModelServiceGroups */
	const char *version; /* default 2021-11-11 */
	const char *token;   /* X-TC-Token when set */
	bool skip;           /* unsigned: "Authorization: SKIP" */
} tc_call;

static void tc(http_result *res, const tc_call *c)
{
	char sha[65], host[64], h1[512], h2[128], h3[64], h4[64], h5[64], h6[96], h7[512];
	const char *ct = "application/json; charset=utf-8";
	int64_t ts = (int64_t)time(NULL) + c->skew;
	af_sign_steps st;
	if (c->host_without_port)
		snprintf(host, sizeof(host), "127.0.0.1");
	else
		snprintf(host, sizeof(host), "127.0.0.1:%u", af_sim_port(g_sim));
	af_sha256_hex(sha, c->body, strlen(c->body));
	af_sign_steps_init(&st);
	af_tc3_input in = {.method = "POST",
	                   .content_type = ct,
	                   .host = host,
	                   .payload_hash = sha,
	                   .service = c->service ? c->service : "tione",
	                   .timestamp = ts,
	                   .secret_id = c->id,
	                   .secret_key = c->sk};
	assert_int_equal(af_tc3_sign(&st, &in), 0);
	snprintf(h1, sizeof(h1), "Authorization: %s",
	         c->skip ? "SKIP" : af_buf_data(&st.authorization));
	snprintf(h2, sizeof(h2), "X-TC-Region: %s", c->region ? c->region : "ap-guangzhou");
	snprintf(h3, sizeof(h3), "X-TC-Timestamp: %lld", (long long)ts);
	snprintf(h4, sizeof(h4), "Content-Type: %s", ct);
	snprintf(h5, sizeof(h5), "X-TC-Version: %s", c->version ? c->version : "2021-11-11");
	snprintf(h6, sizeof(h6), "X-TC-Action: %s",
	         c->action ? c->action : "DescribeModelServiceGroups");
	snprintf(h7, sizeof(h7), "X-TC-Token: %s", c->token ? c->token : "");
	const char *hdrs[] = {h1, h2, h3, h4, h5, h6, c->token ? h7 : NULL, NULL};
	http(res, "POST", g_base, hdrs, c->tamper_body ? c->tamper_body : c->body);
	af_sign_steps_free(&st);
}

/* ---- fixtures ---- */

static int start(int items, bool fixtures, const char *config)
{
	sim_options o;
	sim_options_defaults(&o);
	o.port = 0;
	o.items = items;
	o.fixtures = fixtures;
	o.config_file = (char *)config;
	if (af_sim_start(&g_sim, &o) < 0) {
		fprintf(stderr, "af_sim_start: %s\n", af_error_last());
		return -1;
	}
	snprintf(g_base, sizeof(g_base), "http://127.0.0.1:%u", af_sim_port(g_sim));
	return 0;
}

static int setup_small(void **state)
{
	(void)state;
	return start(237, false, NULL);
}

static int setup_fixtures(void **state)
{
	(void)state;
	return start(5, true, NULL);
}

static int teardown(void **state)
{
	(void)state;
	af_sim_stop(g_sim);
	g_sim = NULL;
	return 0;
}

static void reset_control(void)
{
	http_result r;
	char url[128];
	snprintf(url, sizeof(url), "%s/_sim/faults", g_base);
	http(&r, "DELETE", url, NULL, NULL);
	af_buf_free(&r.body);
	snprintf(url, sizeof(url), "%s/_sim/stats/reset", g_base);
	http(&r, "POST", url, NULL, "");
	af_buf_free(&r.body);
}

static json_object *control_get(const char *path)
{
	http_result r;
	char url[512];
	snprintf(url, sizeof(url), "%s%s", g_base, path);
	http(&r, "GET", url, NULL, NULL);
	assert_int_equal(r.status, 200);
	json_object *o = res_json(&r);
	af_buf_free(&r.body);
	return o;
}

static json_object *control_post(const char *path, const char *body)
{
	http_result r;
	char url[512];
	snprintf(url, sizeof(url), "%s%s", g_base, path);
	http(&r, "POST", url, NULL, body);
	assert_int_equal(r.status, 200);
	json_object *o = res_json(&r);
	af_buf_free(&r.body);
	return o;
}

static int64_t jget_int(json_object *o, const char *path)
{
	/* "a.b.c" */
	char buf[256], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *t = strtok_r(buf, ".", &save); t; t = strtok_r(NULL, ".", &save))
		assert_true(json_object_object_get_ex(o, t, &o));
	return json_object_get_int64(o);
}

/* ---- tests: official vectors through the verifier's URI decoding ---- */

static void free_req_uri(sim_req *r)
{
	for (size_t i = 0; i < r->nparams; i++) {
		free((char *)r->params[i].key);
		free((char *)r->params[i].value);
	}
	free(r->params);
	free(r->raw_uri);
	free(r->path);
	free(r->query);
}

#define A3_AUTH                                                                                    \
	"ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;"             \
	"x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature="           \
	"06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"

static void test_verifier_official_a3(void **state)
{
	(void)state;
	/* SPEC.md A3 [OFFICIAL-DOC]: the final request line and headers, as they
	 * would arrive, go through the server's URI decoding and ACS3 check. */
	sim_req r;
	sim_verdict v;
	memset(&r, 0, sizeof(r));
	r.raw_uri = strdup(
	    "/?ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai");
	assert_int_equal(sim_req_parse_uri(&r), 0);
	assert_string_equal(r.path, "/");
	assert_int_equal(r.nparams, 2);
	af_kv h[] = {
	    {"Host", "ecs.cn-shanghai.aliyuncs.com"},
	    {"x-acs-action", "RunInstances"},
	    {"x-acs-content-sha256",
	     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	    {"x-acs-date", "2023-10-26T10:22:32Z"},
	    {"x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"},
	    {"x-acs-version", "2014-05-26"},
	    {"Accept", "application/json"}, /* unsigned headers do not matter */
	    {"Authorization", A3_AUTH},
	};
	sim_wire w = {.method = "POST",
	              .path = r.path,
	              .params = r.params,
	              .nparams = r.nparams,
	              .headers = h,
	              .nheaders = 8,
	              .body = "",
	              .body_len = 0};
	const int64_t at = 1698315752; /* 2023-10-26T10:22:32Z, computed with date -u -d */
	char cred[64];
	assert_int_equal(sim_auth_credential(cred, sizeof(cred), A3_AUTH), 0);
	assert_string_equal(cred, "YourAccessKeyId");
	assert_int_equal(sim_acs3_check(&v, &w, "YourAccessKeyId", "YourAccessKeySecret", at), 0);
	/* 15 minutes of skew are tolerated, not more */
	assert_int_equal(sim_acs3_check(&v, &w, "YourAccessKeyId", "YourAccessKeySecret", at + 900),
	                 0);
	assert_int_equal(sim_acs3_check(&v, &w, "YourAccessKeyId", "YourAccessKeySecret", at + 901),
	                 -1);
	assert_string_equal(v.code, "InvalidTimeStamp.Expired");
	assert_int_equal(sim_acs3_check(&v, &w, "YourAccessKeyId", "OtherSecret", at), -1);
	assert_string_equal(v.code, "SignatureDoesNotMatch");
	/* an unsigned x-acs-* header that arrived breaks SignedHeaders */
	h[6] = (af_kv){"x-acs-extra", "1"};
	assert_int_equal(sim_acs3_check(&v, &w, "YourAccessKeyId", "YourAccessKeySecret", at), -1);
	assert_string_equal(v.code, "SignatureDoesNotMatch");
	h[6] = (af_kv){"Accept", "application/json"};
	/* the query as it arrived is what counts */
	free_req_uri(&r);
	memset(&r, 0, sizeof(r));
	r.raw_uri = strdup(
	    "/?ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-hangzhou");
	assert_int_equal(sim_req_parse_uri(&r), 0);
	w.path = r.path;
	w.params = r.params;
	w.nparams = r.nparams;
	assert_int_equal(sim_acs3_check(&v, &w, "YourAccessKeyId", "YourAccessKeySecret", at), -1);
	assert_string_equal(v.code, "SignatureDoesNotMatch");
	free_req_uri(&r);
}

#define T1_BODY                                                                                    \
	"{\"Limit\": 1, \"Filters\": [{\"Values\": [\"\\u672a\\u547d\\u540d\"], \"Name\": "        \
	"\"instance-name\"}]}"
#define T1_AUTH                                                                                    \
	"TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/"          \
	"tc3_request, SignedHeaders=content-type;host, "                                           \
	"Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"

static void test_verifier_official_t1(void **state)
{
	(void)state;
	/* SPEC.md T1 [OFFICIAL-DOC]: the request as it arrives at the server,
	 * checked for service "cvm" at the vector's time. */
	const char *id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
	           *sk = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
	af_kv h[] = {
	    {"Host", "cvm.tencentcloudapi.com"},
	    {"Content-Type", "application/json; charset=utf-8"},
	    {"X-TC-Action", "DescribeInstances"},
	    {"X-TC-Timestamp", "1551113065"},
	    {"X-TC-Version", "2017-03-12"},
	    {"X-TC-Region", "ap-guangzhou"},
	    {"Authorization", T1_AUTH},
	};
	sim_wire w = {.method = "POST",
	              .path = "/",
	              .headers = h,
	              .nheaders = 7,
	              .body = T1_BODY,
	              .body_len = strlen(T1_BODY)};
	sim_verdict v;
	char cred[64];
	assert_int_equal(sim_auth_credential(cred, sizeof(cred), T1_AUTH), 0);
	assert_string_equal(cred, id);
	assert_int_equal(sim_tc3_check(&v, &w, id, sk, "cvm", 1551113065), 0);
	/* the SDKs sign the host without the port: accepted when it arrives with one */
	h[0].value = "cvm.tencentcloudapi.com:443";
	assert_int_equal(sim_tc3_check(&v, &w, id, sk, "cvm", 1551113065), 0);
	/* the simulator wants its own service in the scope */
	assert_int_equal(sim_tc3_check(&v, &w, id, sk, "tione", 1551113065), -1);
	assert_string_equal(v.code, "AuthFailure.InvalidAuthorization");
	assert_int_equal(sim_tc3_check(&v, &w, id, sk, "cvm", 1551113065 + 301), -1);
	assert_string_equal(v.code, "AuthFailure.SignatureExpire");
	assert_int_equal(sim_tc3_check(&v, &w, id, "wrong", "cvm", 1551113065), -1);
	assert_string_equal(v.code, "AuthFailure.SignatureFailure");
	w.body = "{\"Limit\": 2, \"Filters\": []}";
	w.body_len = strlen(w.body);
	assert_int_equal(sim_tc3_check(&v, &w, id, sk, "cvm", 1551113065), -1);
	assert_string_equal(v.code, "AuthFailure.SignatureFailure");
}

static void test_uri_percent_decoding(void **state)
{
	(void)state;
	sim_req r;
	memset(&r, 0, sizeof(r));
	r.raw_uri = strdup("/a%2Fb?SearchKey=%E6%8E%A8%E7%90%86%20x%2A&Tag.1.Key=env&Empty=&Flag");
	assert_int_equal(sim_req_parse_uri(&r), 0);
	assert_string_equal(r.path, "/a%2Fb"); /* the path stays raw: it is the canonical URI */
	assert_int_equal(r.nparams, 4);
	assert_string_equal(sim_req_param(&r, "SearchKey"), "推理 x*");
	assert_string_equal(sim_req_param(&r, "Tag.1.Key"), "env");
	assert_string_equal(sim_req_param(&r, "Empty"), "");
	assert_string_equal(sim_req_param(&r, "Flag"), "");
	for (size_t i = 0; i < r.nparams; i++) {
		free((char *)r.params[i].key);
		free((char *)r.params[i].value);
	}
	free(r.params);
	free(r.raw_uri);
	free(r.path);
	free(r.query);
}

static void test_id_codec_roundtrip(void **state)
{
	(void)state;
	uint64_t xs[] = {0, 1, 0x123456789abcdefULL, UINT64_MAX, 0x8000000000000000ULL};
	char b[14];
	for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
		uint64_t back;
		assert_int_equal(sim_unmix64(sim_mix64(xs[i])), xs[i]);
		sim_base36(b, xs[i]);
		assert_int_equal(sim_unbase36(&back, b), 0);
		assert_int_equal(back, xs[i]);
	}
	assert_string_equal((sim_base36(b, 35), b), "000000000000z");
}

/* ---- Tair: authentication ---- */

static void expect_ali(const ali_call *c, long status, const char *code)
{
	http_result r;
	char got[128];
	ali(&r, c);
	err_code(got, sizeof(got), &r);
	if (r.status != status || strcmp(got, code) != 0)
		fprintf(stderr, "expected %ld %s, got %ld %s: %s\n", status, code, r.status, got,
		        af_buf_data(&r.body) ? af_buf_data(&r.body) : "");
	assert_int_equal(r.status, status);
	assert_string_equal(got, code);
	af_buf_free(&r.body);
}

static void test_tair_auth(void **state)
{
	(void)state;
	af_kv q[] = {{"RegionId", "cn-beijing"}, {"PageNumber", "1"}, {"PageSize", "10"}};
	ali_call ok = {.action = "DescribeTairKVCacheInferInstances",
	               .version = "2015-01-01",
	               .query = q,
	               .nquery = 3,
	               .ak = ALI_AK,
	               .sk = ALI_SK};
	ali_call c;

	reset_control();
	expect_ali(&ok, 200, "");
	c = ok;
	c.sk = "wrong-secret";
	expect_ali(&c, 400, "SignatureDoesNotMatch");
	c = ok;
	c.ak = "LTAInobody";
	expect_ali(&c, 404, "InvalidAccessKeyId.NotFound");
	c = ok;
	c.skew = -16 * 60;
	expect_ali(&c, 400, "InvalidTimeStamp.Expired");
	c = ok;
	c.skew = 14 * 60; /* inside the window */
	expect_ali(&c, 200, "");
	c = ok;
	c.nonce = "0123456789abcdef0123456789abcdef";
	expect_ali(&c, 200, "");
	expect_ali(&c, 400, "SignatureNonceUsed");
	c = ok;
	c.tamper = "PageNumber=1&PageSize=10&RegionId=cn-hangzhou";
	expect_ali(&c, 400, "SignatureDoesNotMatch");
	c = ok;
	c.sign_sha = "0000000000000000000000000000000000000000000000000000000000000000";
	expect_ali(&c, 400, "SignatureDoesNotMatch");
	/* STS account: the token is required and must match */
	c = ok;
	c.ak = STS_AK;
	c.sk = STS_SK;
	expect_ali(&c, 400, "InvalidSecurityToken.MismatchWithAccessKey");
	c.token = "not-the-token";
	expect_ali(&c, 400, "InvalidSecurityToken.MismatchWithAccessKey");
	c.token = STS_TOKEN;
	expect_ali(&c, 200, "");

	/* missing Authorization, and a missing RegionId after a good signature */
	{
		http_result r;
		char url[256], got[64];
		snprintf(url, sizeof(url), "%s/?RegionId=cn-beijing", g_base);
		const char *h[] = {"x-acs-action: DescribeTairKVCacheInferInstances", NULL};
		http(&r, "GET", url, h, NULL);
		err_code(got, sizeof(got), &r);
		assert_int_equal(r.status, 400);
		assert_string_equal(got, "MissingAuthorization");
		af_buf_free(&r.body);
	}
	c = ok;
	c.query = q + 1;
	c.nquery = 2;
	expect_ali(&c, 400, "MissingParameter");

	json_object *st = control_get("/_sim/stats");
	assert_int_equal(jget_int(st, "rejected_signatures"), 9);
	assert_int_equal(jget_int(st, "auth_errors.SignatureNonceUsed"), 1);
	json_object_put(st);
}

static void test_tair_encoded_query_verifies(void **state)
{
	(void)state;
	/* unicode, space and '*' in the query: the server must decode the raw
	 * query itself for the signature to match */
	af_kv q[] = {{"RegionId", "cn-hangzhou"}, {"SearchKey", "推理 缓存*"}, {"PageSize", "100"}};
	http_result r;
	tair(&r, ALI_AK, ALI_SK, q, 3);
	assert_int_equal(r.status, 200);
	json_object *o = res_json(&r);
	json_object *arr;
	assert_true(json_object_object_get_ex(o, "Instances", &arr));
	assert_true(json_object_object_get_ex(arr, "TairInferInstanceDTO", &arr));
	assert_int_equal(jget_int(o, "TotalCount"), (int64_t)json_object_array_length(arr));
	json_object_put(o);
	af_buf_free(&r.body);

	af_kv q2[] = {{"RegionId", "cn-hangzhou"}, {"SearchKey", "推理缓存"}, {"PageSize", "100"}};
	tair(&r, ALI_AK, ALI_SK, q2, 3);
	assert_int_equal(r.status, 200);
	o = res_json(&r);
	assert_true(jget_int(o, "TotalCount") > 0); /* 1 in 8 names is unicode */
	json_object_put(o);
	af_buf_free(&r.body);

	af_kv q3[] = {{"RegionId", "cn-hangzhou"}, {"PageSize", "101"}};
	tair(&r, ALI_AK, ALI_SK, q3, 2);
	assert_int_equal(r.status, 400);
	af_buf_free(&r.body);
}

/* ---- paging: every item exactly once ---- */

static void fleet_ids(json_object **ids_out, const char *product, const char *account,
                      const char *region)
{
	char path[256];
	snprintf(path, sizeof(path), "/_sim/fleet?product=%s&account=%s&region=%s", product,
	         account, region);
	json_object *f = control_get(path), *items, *ids = json_object_new_object();
	assert_true(json_object_object_get_ex(f, "items", &items));
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		json_object *it = json_object_array_get_idx(items, i), *id;
		assert_true(json_object_object_get_ex(it, "id", &id));
		json_object_object_add(ids, json_object_get_string(id), json_object_new_int(0));
	}
	assert_int_equal(json_object_object_length(ids), json_object_array_length(items));
	json_object_put(f);
	*ids_out = ids;
}

static void mark_seen(json_object *ids, const char *id)
{
	json_object *v;
	assert_true(json_object_object_get_ex(ids, id, &v)); /* known */
	assert_int_equal(json_object_get_int(v), 0);         /* not seen before */
	json_object_object_add(ids, id, json_object_new_int(1));
}

static void all_seen(json_object *ids)
{
	json_object_object_foreach(ids, k, v)
	{
		(void)k;
		assert_int_equal(json_object_get_int(v), 1);
	}
}

static void test_tair_paging_exactly_once(void **state)
{
	(void)state;
	json_object *ids;
	fleet_ids(&ids, "tair_kvcache", "demo-ali", "cn-beijing");
	assert_int_equal(json_object_object_length(ids), 237);
	for (int page = 1;; page++) {
		char pn[16];
		snprintf(pn, sizeof(pn), "%d", page);
		af_kv q[] = {{"RegionId", "cn-beijing"}, {"PageNumber", pn}, {"PageSize", "50"}};
		http_result r;
		json_object *o, *arr;
		tair(&r, ALI_AK, ALI_SK, q, 3);
		assert_int_equal(r.status, 200);
		o = res_json(&r);
		assert_int_equal(jget_int(o, "TotalCount"), 237);
		assert_int_equal(jget_int(o, "PageNumber"), page);
		json_object_object_get_ex(o, "Instances", &arr);
		json_object_object_get_ex(arr, "TairInferInstanceDTO", &arr);
		size_t n = json_object_array_length(arr);
		for (size_t i = 0; i < n; i++) {
			json_object *id, *it = json_object_array_get_idx(arr, i), *rg;
			json_object_object_get_ex(it, "InstanceId", &id);
			json_object_object_get_ex(it, "RegionId", &rg);
			assert_string_equal(json_object_get_string(rg), "cn-beijing");
			mark_seen(ids, json_object_get_string(id));
		}
		json_object_put(o);
		af_buf_free(&r.body);
		if (n == 0)
			break;
		assert_true(page <= 5);
	}
	all_seen(ids);
	json_object_put(ids);
}

static void test_tione_paging_exactly_once(void **state)
{
	(void)state;
	json_object *ids;
	fleet_ids(&ids, "tione", "demo-tc", "ap-shanghai");
	assert_int_equal(json_object_object_length(ids), 237);
	for (int off = 0; off < 237; off += 40) {
		char body[64];
		http_result r;
		json_object *o, *in, *arr;
		snprintf(body, sizeof(body), "{\"Offset\":%d,\"Limit\":40}", off);
		tc_call c = {.body = body, .id = TC_ID, .sk = TC_SK, .region = "ap-shanghai"};
		for (;;) { /* TI-ONE's 20/s limit may answer RequestLimitExceeded: wait, retry */
			tc(&r, &c);
			assert_int_equal(r.status, 200);
			o = res_json(&r);
			json_object_object_get_ex(o, "Response", &in);
			if (!json_object_object_get_ex(in, "Error", &arr))
				break;
			json_object_put(o);
			af_buf_free(&r.body);
			usleep(100000);
		}
		assert_int_equal(jget_int(in, "TotalCount"), 237);
		json_object_object_get_ex(in, "ServiceGroups", &arr);
		assert_int_equal(json_object_array_length(arr), off + 40 <= 237 ? 40 : 237 - off);
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *id, *g = json_object_array_get_idx(arr, i), *svcs;
			json_object_object_get_ex(g, "ServiceGroupId", &id);
			mark_seen(ids, json_object_get_string(id));
			assert_true(json_object_object_get_ex(g, "Services", &svcs));
			assert_true(json_object_array_length(svcs) >= 1 &&
			            json_object_array_length(svcs) <= 3);
		}
		json_object_put(o);
		af_buf_free(&r.body);
	}
	all_seen(ids);
	json_object_put(ids);
}

/* ---- TI-ONE: authentication ---- */

static void expect_tc(const tc_call *c, const char *code)
{
	http_result r;
	char got[128];
	tc(&r, c);
	err_code(got, sizeof(got), &r);
	if (strcmp(got, code) != 0)
		fprintf(stderr, "expected %s, got %s: %s\n", code, got, af_buf_data(&r.body));
	assert_int_equal(r.status, 200); /* Tencent errors come with HTTP 200 */
	assert_string_equal(got, code);
	af_buf_free(&r.body);
}

static void test_tione_auth(void **state)
{
	(void)state;
	tc_call ok = {.body = "{\"Offset\":0,\"Limit\":5}", .id = TC_ID, .sk = TC_SK}, c;
	usleep(1100000); /* a fresh rate-limit window */
	expect_tc(&ok, "");
	c = ok;
	c.host_without_port = true; /* what the official SDKs sign */
	expect_tc(&c, "");
	c = ok;
	c.sk = "wrong";
	expect_tc(&c, "AuthFailure.SignatureFailure");
	c = ok;
	c.id = "AKIDnobody";
	expect_tc(&c, "AuthFailure.SecretIdNotFound");
	c = ok;
	c.skew = 6 * 60;
	expect_tc(&c, "AuthFailure.SignatureExpire");
	c = ok;
	c.service = "cvm";
	expect_tc(&c, "AuthFailure.InvalidAuthorization");
	c = ok;
	c.tamper_body = "{\"Offset\":0,\"Limit\":6}";
	expect_tc(&c, "AuthFailure.SignatureFailure");
	c = ok;
	c.body = "{\"Offset\":0,\"Limit\":101}";
	expect_tc(&c, "InvalidParameterValue");
	c.body = "{\"Limit\":5,\"Filters\":[{\"Name\":\"Bogus\",\"Values\":[\"x\"]}]}";
	expect_tc(&c, "InvalidParameterValue");
}

static void test_tione_filters(void **state)
{
	(void)state;
	json_object *f =
	    control_get("/_sim/fleet?product=tione&account=demo-tc&region=ap-guangzhou");
	json_object *items, *first, *id, *svcs, *sid;
	json_object_object_get_ex(f, "items", &items);
	first = json_object_array_get_idx(items, 7);
	json_object_object_get_ex(first, "id", &id);
	json_object_object_get_ex(first, "services", &svcs);
	json_object_object_get_ex(json_object_array_get_idx(svcs, 0), "id", &sid);
	char body[256];
	http_result r;
	usleep(1100000);
	snprintf(body, sizeof(body),
	         "{\"Limit\":100,\"Filters\":[{\"Name\":\"ServiceId\",\"Values\":[\"%s\"]}]}",
	         json_object_get_string(sid));
	tc_call c = {.body = body, .id = TC_ID, .sk = TC_SK};
	tc(&r, &c);
	json_object *o = res_json(&r), *in, *groups, *gid;
	json_object_object_get_ex(o, "Response", &in);
	assert_int_equal(jget_int(in, "TotalCount"), 1);
	json_object_object_get_ex(in, "ServiceGroups", &groups);
	json_object_object_get_ex(json_object_array_get_idx(groups, 0), "ServiceGroupId", &gid);
	assert_string_equal(json_object_get_string(gid), json_object_get_string(id));
	json_object_put(o);
	af_buf_free(&r.body);
	json_object_put(f);
}

/* ---- Hologres ---- */

static void test_hologres_list_and_get(void **state)
{
	(void)state;
	http_result r;
	char path[256], host[128], got[64];
	json_object *ids, *o, *list;
	fleet_ids(&ids, "hologres", "demo-ali", "cn-hangzhou");

	/* region from a /<region> path prefix, signed over the full path */
	ali_call c = {.path = "/cn-hangzhou/api/v1/instances/rpc/listInstanceModel",
	              .action = "ListInstanceModel",
	              .version = "2022-06-01",
	              .ak = ALI_AK,
	              .sk = ALI_SK};
	ali(&r, &c);
	assert_int_equal(r.status, 200);
	o = res_json(&r);
	assert_true(json_object_object_get_ex(o, "instanceModelList", &list));
	assert_int_equal(json_object_array_length(list), 237);
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *id, *it = json_object_array_get_idx(list, i);
		json_object_object_get_ex(it, "aiInstanceId", &id);
		mark_seen(ids, json_object_get_string(id));
	}
	all_seen(ids);
	json_object *hid;
	json_object_object_get_ex(json_object_array_get_idx(list, 3), "holoInstanceId", &hid);
	snprintf(path, sizeof(path), "/api/v1/instances/%s/getInstanceModel",
	         json_object_get_string(hid));
	af_buf_free(&r.body);

	/* region from Host: hologram.<region>.aliyuncs.com:port */
	snprintf(host, sizeof(host), "hologram.cn-hangzhou.aliyuncs.com:%u", af_sim_port(g_sim));
	ali_call g = {.path = path,
	              .action = "GetInstanceModel",
	              .version = "2022-06-01",
	              .ak = ALI_AK,
	              .sk = ALI_SK,
	              .host = host};
	ali(&r, &g);
	assert_int_equal(r.status, 200);
	json_object *d = res_json(&r), *svcs, *rid;
	assert_true(json_object_object_get_ex(d, "requestId", &rid));
	assert_true(json_object_object_get_ex(d, "modelServiceList", &svcs));
	assert_true(json_object_array_length(svcs) <= 3);
	for (size_t i = 0; i < json_object_array_length(svcs); i++) {
		json_object *k;
		assert_true(
		    json_object_object_get_ex(json_object_array_get_idx(svcs, i), "apiKey", &k));
		assert_memory_equal(json_object_get_string(k), "sk-", 3);
	}
	json_object_put(d);
	af_buf_free(&r.body);

	/* the same node is not in another region */
	snprintf(host, sizeof(host), "hologram.cn-beijing.aliyuncs.com:%u", af_sim_port(g_sim));
	ali(&r, &g);
	err_code(got, sizeof(got), &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(got, "InstanceNotFound");
	af_buf_free(&r.body);

	g.path = "/cn-hangzhou/api/v1/instances/hgpostcn-cn-nosuchthing0/getInstanceModel";
	g.host = NULL;
	ali(&r, &g);
	err_code(got, sizeof(got), &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(got, "InstanceNotFound");
	af_buf_free(&r.body);

	/* no region anywhere */
	c.path = "/api/v1/instances/rpc/listInstanceModel";
	expect_ali(&c, 400, "InvalidRegionId");
	json_object_put(o);
	json_object_put(ids);
}

/* ---- isolation ---- */

static void test_accounts_see_own_fleet(void **state)
{
	(void)state;
	af_kv q[] = {{"RegionId", "cn-shanghai"}};
	http_result r;
	/* demo-ali has no cn-shanghai; demo-ali-sts has only cn-shanghai */
	tair(&r, ALI_AK, ALI_SK, q, 1);
	json_object *o = res_json(&r);
	assert_int_equal(jget_int(o, "TotalCount"), 0);
	json_object_put(o);
	af_buf_free(&r.body);
	ali_call c = {.action = "DescribeTairKVCacheInferInstances",
	              .version = "2015-01-01",
	              .query = q,
	              .nquery = 1,
	              .ak = STS_AK,
	              .sk = STS_SK,
	              .token = STS_TOKEN};
	ali(&r, &c);
	o = res_json(&r);
	assert_int_equal(jget_int(o, "TotalCount"), 237);
	json_object_put(o);
	af_buf_free(&r.body);
}

/* ---- scripted faults ---- */

static void test_scripted_fault_page3_once(void **state)
{
	(void)state;
	reset_control();
	json_object *f = control_post(
	    "/_sim/faults",
	    "[{\"product\":\"tair_kvcache\",\"account\":\"demo-ali\",\"region\":\"cn-beijing\","
	    "\"action\":\"DescribeTairKVCacheInferInstances\",\"page\":3,\"kind\":\"http500\","
	    "\"times\":1},"
	    "{\"product\":\"tair_kvcache\",\"region\":\"cn-hangzhou\",\"page\":2,"
	    "\"kind\":\"throttle\",\"times\":1},"
	    "{\"product\":\"tair_kvcache\",\"region\":\"cn-hangzhou\",\"page\":4,"
	    "\"kind\":\"malformed\",\"times\":1},"
	    "{\"product\":\"tair_kvcache\",\"region\":\"cn-hangzhou\",\"page\":5,"
	    "\"kind\":\"drop\",\"times\":1}]");
	assert_int_equal(json_object_array_length(f), 4);
	json_object_put(f);
	http_result r;
	char got[64];
	for (int page = 1; page <= 4; page++) {
		char pn[8];
		snprintf(pn, sizeof(pn), "%d", page);
		af_kv q[] = {{"RegionId", "cn-beijing"}, {"PageNumber", pn}, {"PageSize", "30"}};
		tair(&r, ALI_AK, ALI_SK, q, 3);
		err_code(got, sizeof(got), &r);
		assert_int_equal(r.status, page == 3 ? 500 : 200);
		assert_string_equal(got, page == 3 ? "InternalError" : "");
		af_buf_free(&r.body);
	}
	/* once only: page 3 again succeeds */
	af_kv q3[] = {{"RegionId", "cn-beijing"}, {"PageNumber", "3"}, {"PageSize", "30"}};
	tair(&r, ALI_AK, ALI_SK, q3, 3);
	assert_int_equal(r.status, 200);
	af_buf_free(&r.body);

	af_kv t2[] = {{"RegionId", "cn-hangzhou"}, {"PageNumber", "2"}};
	tair(&r, ALI_AK, ALI_SK, t2, 2);
	err_code(got, sizeof(got), &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(got, "Throttling.User");
	assert_true(atoi(r.retry_after) > 0);
	af_buf_free(&r.body);

	af_kv t4[] = {{"RegionId", "cn-hangzhou"}, {"PageNumber", "4"}};
	tair(&r, ALI_AK, ALI_SK, t4, 2);
	assert_int_equal(r.status, 200);
	assert_null(json_tokener_parse(af_buf_data(&r.body))); /* malformed */
	af_buf_free(&r.body);

	af_kv t5[] = {{"RegionId", "cn-hangzhou"}, {"PageNumber", "5"}};
	tair(&r, ALI_AK, ALI_SK, t5, 2);
	assert_int_not_equal(r.curl, CURLE_OK); /* dropped connection */
	af_buf_free(&r.body);

	json_object *st = control_get("/_sim/stats");
	assert_int_equal(jget_int(st, "faults.http500"), 1);
	assert_int_equal(jget_int(st, "faults.throttle"), 1);
	assert_int_equal(jget_int(st, "faults.malformed"), 1);
	assert_int_equal(jget_int(st, "faults.drop"), 1);
	assert_int_equal(jget_int(st, "by_action.DescribeTairKVCacheInferInstances"), 8);
	json_object_put(st);
	reset_control();
}

/* ---- a hang does not block other clients ---- */

static void *hanging_request(void *arg)
{
	http_result *r = arg;
	af_kv q[] = {{"RegionId", "cn-beijing"}, {"PageNumber", "9"}};
	tair(r, ALI_AK, ALI_SK, q, 2);
	return NULL;
}

static void test_hang_does_not_block_others(void **state)
{
	(void)state;
	pthread_t th;
	http_result hung, r;
	struct timespec a, b;
	reset_control();
	json_object_put(control_post(
	    "/_sim/faults", "{\"product\":\"tair_kvcache\",\"page\":9,\"kind\":\"timeout\","
	                    "\"hang_ms\":1500}"));
	assert_int_equal(pthread_create(&th, NULL, hanging_request, &hung), 0);
	usleep(200000); /* let it get stuck */
	clock_gettime(CLOCK_MONOTONIC, &a);
	af_kv q[] = {{"RegionId", "cn-beijing"}, {"PageNumber", "1"}};
	tair(&r, ALI_AK, ALI_SK, q, 2);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_int_equal(r.status, 200);
	af_buf_free(&r.body);
	/* answered while the other connection still hangs */
	assert_true((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 1000);
	json_object *st = control_get("/_sim/stats");
	assert_int_equal(jget_int(st, "in_flight"), 1);
	assert_true(jget_int(st, "in_flight_max") >= 2);
	json_object_put(st);
	pthread_join(th, NULL);
	assert_int_not_equal(hung.curl, CURLE_OK); /* closed after the hang */
	af_buf_free(&hung.body);
	reset_control();
}

/* ---- rate limit ---- */

static void test_tione_rate_limit(void **state)
{
	(void)state;
	tc_call c = {.body = "{\"Limit\":1}", .id = TC_ID, .sk = TC_SK};
	int limited = 0, ok = 0;
	struct timespec a, b;
	usleep(1100000);
	reset_control();
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 60; i++) {
		http_result r;
		char got[64];
		tc(&r, &c);
		err_code(got, sizeof(got), &r);
		if (strcmp(got, "RequestLimitExceeded") == 0)
			limited++;
		else if (got[0] == '\0')
			ok++;
		af_buf_free(&r.body);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	assert_int_equal(ok + limited, 60);
	/* a sliding window of 20 per second: exactly 20 pass if the burst fits
	 * in one second, and never more than 20 per started second */
	if (secs < 1.0)
		assert_int_equal(ok, 20);
	assert_true(ok >= 20 && ok <= 20 * ((int)secs + 1));
	json_object *st = control_get("/_sim/stats");
	assert_int_equal(jget_int(st, "throttled"), limited);
	json_object_put(st);
}

/* ---- mutation ---- */

static void test_mutation(void **state)
{
	(void)state;
	json_object *before, *after, *m, *arr, *v;
	fleet_ids(&before, "tair_kvcache", "demo-ali", "cn-hangzhou");
	m = control_post("/_sim/mutate", "{\"create\":0.02,\"update\":0.05,\"delete\":0.03,"
	                                 "\"seed\":7,\"product\":\"tair_kvcache\","
	                                 "\"account\":\"demo-ali\",\"region\":\"cn-hangzhou\"}");
	/* 237 items: round(4.74)=5 created, round(11.85)=12 updated, round(7.11)=7 deleted */
	assert_int_equal(jget_int(m, "created"), 5);
	assert_int_equal(jget_int(m, "updated"), 12);
	assert_int_equal(jget_int(m, "deleted"), 7);
	fleet_ids(&after, "tair_kvcache", "demo-ali", "cn-hangzhou");
	assert_int_equal(json_object_object_length(after), 237 + 5 - 7);
	json_object_object_get_ex(m, "deleted_ids", &arr);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		const char *id = json_object_get_string(json_object_array_get_idx(arr, i));
		assert_true(json_object_object_get_ex(before, id, &v));
		assert_false(json_object_object_get_ex(after, id, &v));
	}
	json_object_object_get_ex(m, "created_ids", &arr);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		const char *id = json_object_get_string(json_object_array_get_idx(arr, i));
		assert_false(json_object_object_get_ex(before, id, &v));
		assert_true(json_object_object_get_ex(after, id, &v));
	}
	/* updated items keep their id and carry a new version */
	json_object *f = control_get(
	                "/_sim/fleet?product=tair_kvcache&account=demo-ali&region=cn-hangzhou"),
	            *items;
	json_object_object_get_ex(f, "items", &items);
	int bumped = 0;
	for (size_t i = 0; i < json_object_array_length(items); i++)
		bumped += jget_int(json_object_array_get_idx(items, i), "version") == 1;
	assert_int_equal(bumped, 12);
	/* other scopes untouched */
	json_object *other =
	    control_get("/_sim/fleet?product=tair_kvcache&account=demo-ali&region=cn-beijing");
	assert_int_equal(jget_int(other, "count"), 237);
	json_object_put(other);
	json_object_put(f);
	json_object_put(m);
	json_object_put(before);
	json_object_put(after);
}

/* ---- fixture mode ---- */

static void test_fixture_mode_verbatim(void **state)
{
	(void)state;
	size_t len;
	char *want = af_test_read_fixture("api/tair_describe_example.json", &len);
	af_kv q[] = {{"RegionId", "cn-beijing"}};
	http_result r;
	tair(&r, ALI_AK, ALI_SK, q, 1);
	assert_int_equal(r.status, 200);
	assert_int_equal(af_buf_len(&r.body), len);
	assert_memory_equal(af_buf_data(&r.body), want, len);
	free(want);
	af_buf_free(&r.body);

	want = af_test_read_fixture("api/tione_describe_example.json", &len);
	tc_call c = {.body = "{}", .id = TC_ID, .sk = TC_SK};
	tc(&r, &c);
	assert_int_equal(af_buf_len(&r.body), len);
	assert_memory_equal(af_buf_data(&r.body), want, len);
	free(want);
	af_buf_free(&r.body);

	want = af_test_read_fixture("api/hologres_get_example.json", &len);
	ali_call g = {.path = "/cn-shanghai/api/v1/instances/hgpostcn-cn-any/getInstanceModel",
	              .action = "GetInstanceModel",
	              .version = "2022-06-01",
	              .ak = ALI_AK,
	              .sk = ALI_SK};
	ali(&r, &g);
	assert_int_equal(af_buf_len(&r.body), len);
	assert_memory_equal(af_buf_data(&r.body), want, len);
	free(want);
	af_buf_free(&r.body);

	/* still authenticated */
	tair(&r, ALI_AK, "wrong", q, 1);
	assert_int_equal(r.status, 400);
	af_buf_free(&r.body);
}

/* ---- determinism ---- */

static void test_same_seed_same_fleet(void **state)
{
	(void)state;
	af_sim *a = NULL, *b = NULL;
	sim_options o;
	json_object *da, *db;
	sim_options_defaults(&o);
	o.port = 0;
	o.items = 300;
	assert_int_equal(af_sim_start(&a, &o), 0);
	assert_int_equal(af_sim_start(&b, &o), 0);
	pthread_mutex_lock(&a->lock);
	sim_fleet_dump(a, &da, NULL, NULL, NULL);
	pthread_mutex_unlock(&a->lock);
	pthread_mutex_lock(&b->lock);
	sim_fleet_dump(b, &db, NULL, NULL, NULL);
	pthread_mutex_unlock(&b->lock);
	assert_string_equal(json_object_to_json_string(da), json_object_to_json_string(db));
	json_object_put(db);
	af_sim_stop(b);
	o.seed = 2;
	assert_int_equal(af_sim_start(&b, &o), 0);
	sim_fleet_dump(b, &db, NULL, NULL, NULL);
	assert_string_not_equal(json_object_to_json_string(da), json_object_to_json_string(db));
	json_object_put(da);
	json_object_put(db);
	af_sim_stop(a);
	af_sim_stop(b);
}

/* ---- configuration file, random faults ---- */

/* The temporary directories the tests made, removed by main() at the end
 * too: a failed assertion skips a test's own cleanup. */
static char *g_dirs[16];
static size_t g_ndirs;

static char *tempdir(void)
{
	char *dir = af_test_tempdir();
	if (g_ndirs < sizeof(g_dirs) / sizeof(g_dirs[0]))
		g_dirs[g_ndirs++] = strdup(dir);
	return dir;
}

static void tempdirs_remove(void)
{
	for (size_t i = 0; i < g_ndirs; i++) {
		af_test_rmtree(g_dirs[i]);
		free(g_dirs[i]);
	}
	g_ndirs = 0;
}

static char *write_config(const char *text)
{
	char *dir = tempdir(), *path = malloc(strlen(dir) + 16);
	sprintf(path, "%s/sim.ini", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(dir);
	return path;
}

static void remove_config(char *path)
{
	*strrchr(path, '/') = '\0';
	af_test_rmtree(path);
	free(path);
}

static void test_example_config_loads(void **state)
{
	(void)state;
	assert_int_equal(start(4, false, AF_SOURCE_DIR "/deploy/sim.example.ini"), 0);
	assert_int_equal(g_sim->naccounts, 3);
	json_object *f = control_get("/_sim/fleet?account=team-a&product=tair_kvcache");
	assert_int_equal(jget_int(f, "count"), 3 * 200); /* items = 200 in 3 regions */
	json_object_put(f);
	f = control_get("/_sim/fleet?account=team-b");
	assert_int_equal(jget_int(f, "count"), 3 * 4); /* --items for team-b */
	json_object_put(f);
	teardown(NULL);
}

static void test_bad_config_hides_values(void **state)
{
	(void)state;
	char *path = write_config("[account x]\nprovider = alibaba\n"
	                          "acess_key_secret = TOPSECRET-VALUE\n");
	sim_options o;
	af_sim *s = NULL;
	sim_options_defaults(&o);
	o.port = 0;
	o.config_file = path;
	assert_int_equal(af_sim_start(&s, &o), AF_ERR_CONFIG);
	assert_null(s);
	assert_non_null(strstr(af_error_last(), "acess_key_secret"));
	assert_null(strstr(af_error_last(), "TOPSECRET"));
	remove_config(path);
}

static void random_fault_run(char *out, size_t n)
{
	af_kv q[] = {{"RegionId", "cn-hangzhou"}, {"PageSize", "1"}};
	for (size_t i = 0; i + 1 < n; i++) {
		http_result r;
		tair(&r, "LTAIcfg", "cfg-secret", q, 2);
		out[i] = r.status == 200 ? '.' : r.status == 500 ? 'E' : '?';
		af_buf_free(&r.body);
	}
	out[n - 1] = '\0';
}

static void test_random_faults_deterministic(void **state)
{
	(void)state;
	char *path = write_config("[account cfg]\nprovider = alibaba\naccess_key_id = LTAIcfg\n"
	                          "access_key_secret = cfg-secret\nregions = cn-hangzhou\n"
	                          "[limits tair_kvcache]\nhttp500 = 0.9\n"
	                          "[limits tair_kvcache cfg]\nhttp500 = 0.5\n");
	char a[65], b[65];
	int errors = 0;
	assert_int_equal(start(10, false, path), 0);
	random_fault_run(a, sizeof(a));
	teardown(NULL);
	assert_int_equal(start(10, false, path), 0);
	random_fault_run(b, sizeof(b));
	json_object *st = control_get("/_sim/stats");
	teardown(NULL);
	remove_config(path);
	assert_string_equal(a, b); /* same seed, same faults */
	for (const char *p = a; *p; p++) {
		assert_true(*p == '.' || *p == 'E');
		errors += *p == 'E';
	}
	/* the account override (0.5) wins over the product-wide 0.9 */
	assert_true(errors > 16 && errors < 48);
	assert_int_equal(jget_int(st, "faults.http500"), errors);
	json_object_put(st);
}

static void test_more_fault_kinds(void **state)
{
	(void)state;
	http_result r;
	char got[64], body[512];
	reset_control();
	/* a Hologres Get for one instance, TI-ONE page 2 (Offset 10 / Limit 10 + 1) */
	json_object *f = control_get(
	                "/_sim/fleet?product=hologres&account=demo-ali&region=cn-beijing"),
	            *items, *hid;
	json_object_object_get_ex(f, "items", &items);
	json_object_object_get_ex(json_object_array_get_idx(items, 0), "holoInstanceId", &hid);
	snprintf(body, sizeof(body),
	         "[{\"product\":\"hologres\",\"action\":\"GetInstanceModel\",\"instance\":\"%s\","
	         "\"kind\":\"truncated\"},"
	         "{\"product\":\"tione\",\"page\":2,\"kind\":\"throttle\",\"times\":2},"
	         "{\"product\":\"tione\",\"page\":3,\"kind\":\"auth\"},"
	         "{\"product\":\"tione\",\"page\":4,\"kind\":\"timeout\",\"hang_ms\":300}]",
	         json_object_get_string(hid));
	json_object_put(control_post("/_sim/faults", body));

	char path[256];
	snprintf(path, sizeof(path), "/cn-beijing/api/v1/instances/%s/getInstanceModel",
	         json_object_get_string(hid));
	ali_call g = {.path = path,
	              .action = "GetInstanceModel",
	              .version = "2022-06-01",
	              .ak = ALI_AK,
	              .sk = ALI_SK};
	ali(&r, &g);
	assert_int_equal(r.status, 200);
	assert_null(json_tokener_parse(af_buf_data(&r.body))); /* truncated */
	af_buf_free(&r.body);
	ali(&r, &g); /* once only */
	json_object *ok = res_json(&r);
	json_object_put(ok);
	af_buf_free(&r.body);
	json_object_put(f);

	usleep(1100000);
	tc_call c = {.body = "{\"Offset\":10,\"Limit\":10}", .id = TC_ID, .sk = TC_SK};
	for (int i = 0; i < 3; i++) {
		tc(&r, &c);
		err_code(got, sizeof(got), &r);
		assert_string_equal(got, i < 2 ? "RequestLimitExceeded" : "");
		af_buf_free(&r.body);
	}
	c.body = "{\"Offset\":20,\"Limit\":10}";
	tc(&r, &c);
	err_code(got, sizeof(got), &r);
	assert_string_equal(got, "AuthFailure.SignatureFailure");
	af_buf_free(&r.body);
	c.body = "{\"Offset\":30,\"Limit\":10}";
	tc(&r, &c); /* hangs 300 ms, then the connection is closed */
	assert_int_not_equal(r.curl, CURLE_OK);
	af_buf_free(&r.body);

	json_object *st = control_get("/_sim/stats");
	assert_int_equal(jget_int(st, "faults.truncated"), 1);
	assert_int_equal(jget_int(st, "faults.throttle"), 2);
	assert_int_equal(jget_int(st, "faults.auth"), 1);
	assert_int_equal(jget_int(st, "faults.timeout"), 1);
	json_object_put(st);
	json_object *left = control_get("/_sim/faults");
	assert_int_equal(json_object_array_length(left), 4); /* kept, with times 0 */
	json_object_put(left);
	reset_control();
}

/* ---- faults in the data: answers that parse but are wrong ---- */

static void post_faults(const char *body)
{
	json_object_put(control_post("/_sim/faults", body));
}

/* A Tair page of cn-beijing (demo-ali), parsed; *items borrowed from it. */
static json_object *tair_page(json_object **items, http_result *raw, const char *region, int page,
                              int size)
{
	char pn[16], ps[16];
	http_result r;
	json_object *o, *inst;
	snprintf(pn, sizeof(pn), "%d", page);
	snprintf(ps, sizeof(ps), "%d", size);
	af_kv q[] = {{"RegionId", region}, {"PageNumber", pn}, {"PageSize", ps}};
	tair(&r, ALI_AK, ALI_SK, q, 3);
	assert_int_equal(r.status, 200);
	o = res_json(&r);
	*items = NULL;
	if (json_object_object_get_ex(o, "Instances", &inst))
		json_object_object_get_ex(inst, "TairInferInstanceDTO", items);
	if (raw)
		*raw = r;
	else
		af_buf_free(&r.body);
	return o;
}

/* A TI-ONE page of ap-guangzhou, waiting out the 20/s limit; *groups and *in borrowed. */
static json_object *tione_page(json_object **in, json_object **groups, http_result *raw, int offset,
                               int limit)
{
	char body[64];
	http_result r;
	json_object *o, *err;
	snprintf(body, sizeof(body), "{\"Offset\":%d,\"Limit\":%d}", offset, limit);
	tc_call c = {.body = body, .id = TC_ID, .sk = TC_SK};
	for (;;) {
		tc(&r, &c);
		assert_int_equal(r.status, 200);
		o = res_json(&r);
		assert_true(json_object_object_get_ex(o, "Response", in));
		if (!json_object_object_get_ex(*in, "Error", &err) ||
		    strcmp(json_object_get_string(json_object_object_get(err, "Code")),
		           "RequestLimitExceeded") != 0)
			break;
		json_object_put(o);
		af_buf_free(&r.body);
		usleep(100000);
	}
	*groups = NULL;
	json_object_object_get_ex(*in, "ServiceGroups", groups);
	if (raw)
		*raw = r;
	else
		af_buf_free(&r.body);
	return o;
}

static http_result holo_call(const char *path)
{
	http_result r;
	ali_call c = {.path = path,
	              .action = strstr(path, "listInstanceModel") ? "ListInstanceModel"
	                                                          : "GetInstanceModel",
	              .version = "2022-06-01",
	              .ak = ALI_AK,
	              .sk = ALI_SK};
	ali(&r, &c);
	return r;
}

static const char *jstr_at(json_object *arr, size_t i, const char *key)
{
	json_object *v;
	assert_true(json_object_object_get_ex(json_object_array_get_idx(arr, i), key, &v));
	return json_object_get_string(v);
}

static bool has_key(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v);
}

static void test_fault_error_body(void **state)
{
	(void)state;
	http_result r;
	json_object *o, *in, *e;
	reset_control();
	post_faults(
	    "[{\"product\":\"tair_kvcache\",\"kind\":\"error_body\"},"
	    "{\"product\":\"hologres\",\"action\":\"ListInstanceModel\",\"kind\":\"error_body\"},"
	    "{\"product\":\"tione\",\"kind\":\"error_body\"}]");

	/* Tair (RPC): capitalised keys, HTTP 200, no list and no TotalCount */
	af_kv q[] = {{"RegionId", "cn-beijing"}, {"PageNumber", "1"}};
	tair(&r, ALI_AK, ALI_SK, q, 2);
	assert_int_equal(r.status, 200);
	o = res_json(&r);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "Code")),
	                    "InternalError");
	assert_true(has_key(o, "Message") && has_key(o, "RequestId"));
	assert_false(has_key(o, "Instances") || has_key(o, "TotalCount"));
	json_object_put(o);
	af_buf_free(&r.body);

	/* Hologres (ROA): its lowercase keys */
	r = holo_call("/cn-beijing/api/v1/instances/rpc/listInstanceModel");
	assert_int_equal(r.status, 200);
	o = res_json(&r);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "code")),
	                    "InternalError");
	assert_true(has_key(o, "message") && has_key(o, "requestId"));
	assert_false(has_key(o, "instanceModelList") || has_key(o, "Code"));
	json_object_put(o);
	af_buf_free(&r.body);

	/* TI-ONE: Response.Error, as Tencent always answers errors */
	usleep(1100000);
	tc_call c = {.body = "{\"Offset\":0,\"Limit\":10}", .id = TC_ID, .sk = TC_SK};
	tc(&r, &c);
	assert_int_equal(r.status, 200);
	o = res_json(&r);
	assert_true(json_object_object_get_ex(o, "Response", &in));
	assert_true(json_object_object_get_ex(in, "Error", &e));
	assert_string_equal(json_object_get_string(json_object_object_get(e, "Code")),
	                    "InternalError");
	assert_true(has_key(e, "Message") && has_key(in, "RequestId"));
	assert_false(has_key(in, "ServiceGroups") || has_key(in, "TotalCount"));
	json_object_put(o);
	af_buf_free(&r.body);

	/* each once: the next answers are whole */
	o = tair_page(&in, NULL, "cn-beijing", 1, 10);
	assert_int_equal(json_object_array_length(in), 10);
	json_object_put(o);
	json_object *st = control_get("/_sim/stats");
	assert_int_equal(jget_int(st, "faults.error_body"), 3);
	json_object_put(st);
	reset_control();
}

static void test_fault_short_and_empty_page(void **state)
{
	(void)state;
	json_object *o, *clean, *items, *clean_items, *in;
	reset_control();
	clean = tair_page(&clean_items, NULL, "cn-beijing", 2, 50);
	post_faults(
	    "[{\"product\":\"tair_kvcache\",\"region\":\"cn-beijing\",\"kind\":\"short_page\"},"
	    "{\"product\":\"tair_kvcache\",\"page\":3,\"kind\":\"short_page\",\"items\":3},"
	    "{\"product\":\"tair_kvcache\",\"region\":\"cn-hangzhou\",\"kind\":\"empty_page\"}]");

	/* not page 1: the first short_page waits for page 2 */
	o = tair_page(&items, NULL, "cn-beijing", 1, 50);
	assert_int_equal(json_object_array_length(items), 50);
	json_object_put(o);
	o = tair_page(&items, NULL, "cn-beijing", 2, 50);
	assert_int_equal(jget_int(o, "TotalCount"), 237); /* more remain, says the total */
	assert_int_equal(jget_int(o, "PageNumber"), 2);
	assert_int_equal(json_object_array_length(items), 25); /* half the page */
	for (size_t i = 0; i < 25; i++) /* the page's own first items, the rest cut */
		assert_string_equal(jstr_at(items, i, "InstanceId"),
		                    jstr_at(clean_items, i, "InstanceId"));
	json_object_put(o);
	o = tair_page(&items, NULL, "cn-beijing", 3, 50);
	assert_int_equal(json_object_array_length(items), 3);
	assert_int_equal(jget_int(o, "TotalCount"), 237);
	json_object_put(o);

	o = tair_page(&items, NULL, "cn-hangzhou", 1, 50);
	assert_int_equal(json_object_array_length(items), 50);
	json_object_put(o);
	o = tair_page(&items, NULL, "cn-hangzhou", 4, 50);
	assert_int_equal(json_object_array_length(items), 0);
	assert_int_equal(jget_int(o, "TotalCount"), 237);
	json_object_put(o);
	/* used up: page 2 is whole again */
	o = tair_page(&items, NULL, "cn-beijing", 2, 50);
	assert_int_equal(json_object_array_length(items), 50);
	json_object_put(o);
	json_object_put(clean);

	/* TI-ONE, Offset/Limit paging */
	usleep(1100000);
	post_faults("[{\"product\":\"tione\",\"kind\":\"empty_page\"},"
	            "{\"product\":\"tione\",\"page\":4,\"kind\":\"short_page\",\"items\":7}]");
	o = tione_page(&in, &items, NULL, 0, 40);
	assert_int_equal(json_object_array_length(items), 40);
	json_object_put(o);
	o = tione_page(&in, &items, NULL, 40, 40);
	assert_int_equal(json_object_array_length(items), 0);
	assert_int_equal(jget_int(in, "TotalCount"), 237);
	json_object_put(o);
	o = tione_page(&in, &items, NULL, 120, 40);
	assert_int_equal(json_object_array_length(items), 7);
	assert_int_equal(jget_int(in, "TotalCount"), 237);
	json_object_put(o);

	/* Hologres has no pages: the list is cut, and nothing says so */
	post_faults("[{\"product\":\"hologres\",\"kind\":\"short_page\"},"
	            "{\"product\":\"hologres\",\"kind\":\"empty_page\"}]");
	http_result r = holo_call("/cn-hangzhou/api/v1/instances/rpc/listInstanceModel");
	o = res_json(&r);
	assert_true(json_object_object_get_ex(o, "instanceModelList", &items));
	assert_int_equal(json_object_array_length(items), 118);
	json_object_put(o);
	af_buf_free(&r.body);
	r = holo_call("/cn-hangzhou/api/v1/instances/rpc/listInstanceModel");
	o = res_json(&r);
	assert_true(json_object_object_get_ex(o, "instanceModelList", &items));
	assert_int_equal(json_object_array_length(items), 0);
	json_object_put(o);
	af_buf_free(&r.body);

	json_object *st = control_get("/_sim/stats");
	assert_int_equal(jget_int(st, "faults.short_page"), 4);
	assert_int_equal(jget_int(st, "faults.empty_page"), 3);
	json_object_put(st);
	reset_control();
}

static void test_fault_lying_total(void **state)
{
	(void)state;
	json_object *o, *items, *in;
	reset_control();
	post_faults("[{\"product\":\"tair_kvcache\",\"page\":1,\"kind\":\"lying_total\"},"
	            "{\"product\":\"tione\",\"page\":2,\"kind\":\"lying_total\",\"total\":100},"
	            "{\"product\":\"tione\",\"page\":3,\"kind\":\"lying_total\",\"total\":5000}]");
	o = tair_page(&items, NULL, "cn-beijing", 1, 50);
	assert_int_equal(jget_int(o, "TotalCount"), 10); /* fewer than on this very page */
	assert_int_equal(json_object_array_length(items), 50);
	json_object_put(o);
	o = tair_page(&items, NULL, "cn-beijing", 1, 50);
	assert_int_equal(jget_int(o, "TotalCount"), 237);
	json_object_put(o);

	usleep(1100000);
	o = tione_page(&in, &items, NULL, 40, 40);
	assert_int_equal(jget_int(in, "TotalCount"), 100);
	assert_int_equal(json_object_array_length(items), 40);
	json_object_put(o);
	o = tione_page(&in, &items, NULL, 80, 40);
	assert_int_equal(jget_int(in, "TotalCount"), 236); /* never the truth or more */
	json_object_put(o);
	json_object *st = control_get("/_sim/stats");
	assert_int_equal(jget_int(st, "faults.lying_total"), 3);
	json_object_put(st);
	reset_control();
}

static void test_fault_repeat_page(void **state)
{
	(void)state;
	json_object *o, *p1, *items, *items1, *in;
	reset_control();
	p1 = tair_page(&items1, NULL, "cn-beijing", 1, 30);
	post_faults("[{\"product\":\"tair_kvcache\",\"kind\":\"repeat_page\"},"
	            "{\"product\":\"tione\",\"kind\":\"repeat_page\"}]");
	o = tair_page(&items, NULL, "cn-beijing", 1, 30); /* page 1 is page 1: not used up */
	json_object_put(o);
	o = tair_page(&items, NULL, "cn-beijing", 3, 30);
	assert_int_equal(jget_int(o, "PageNumber"), 3); /* the page asked for ... */
	assert_int_equal(jget_int(o, "TotalCount"), 237);
	assert_int_equal(json_object_array_length(items), 30);
	for (size_t i = 0; i < 30; i++) /* ... with page 1's items */
		assert_string_equal(jstr_at(items, i, "InstanceId"),
		                    jstr_at(items1, i, "InstanceId"));
	json_object_put(o);
	json_object_put(p1);

	usleep(1100000);
	p1 = tione_page(&in, &items1, NULL, 0, 20);
	o = tione_page(&in, &items, NULL, 100, 20);
	assert_int_equal(jget_int(in, "TotalCount"), 237);
	assert_int_equal(json_object_array_length(items), 20);
	for (size_t i = 0; i < 20; i++)
		assert_string_equal(jstr_at(items, i, "ServiceGroupId"),
		                    jstr_at(items1, i, "ServiceGroupId"));
	json_object_put(o);
	json_object_put(p1);
	json_object *st = control_get("/_sim/stats");
	assert_int_equal(jget_int(st, "faults.repeat_page"), 2);
	json_object_put(st);
	reset_control();
}

/* A Hologres node of cn-hangzhou with at least one model service. */
static void holo_node_with_service(char *out, size_t n)
{
	json_object *f = control_get(
	                "/_sim/fleet?product=hologres&account=demo-ali&region=cn-hangzhou"),
	            *items, *svcs, *hid;
	out[0] = '\0';
	json_object_object_get_ex(f, "items", &items);
	for (size_t i = 0; i < json_object_array_length(items) && !out[0]; i++) {
		json_object *it = json_object_array_get_idx(items, i);
		/* for Hologres, "services" is the node's number of model services */
		if (json_object_object_get_ex(it, "services", &svcs) &&
		    json_object_get_int(svcs) > 0 &&
		    json_object_object_get_ex(it, "holoInstanceId", &hid))
			snprintf(out, n, "%s", json_object_get_string(hid));
	}
	json_object_put(f);
	assert_true(out[0] != '\0');
}

static void test_fault_out_of_range(void **state)
{
	(void)state;
	json_object *o, *items, *in, *v;
	http_result raw;
	char hid[64], path[160];
	reset_control();
	holo_node_with_service(hid, sizeof(hid));
	snprintf(path, sizeof(path), "/cn-hangzhou/api/v1/instances/%s/getInstanceModel", hid);
	post_faults(
	    "[{\"product\":\"tair_kvcache\",\"kind\":\"out_of_range\"},"
	    "{\"product\":\"tione\",\"kind\":\"out_of_range\"},"
	    "{\"product\":\"hologres\",\"action\":\"ListInstanceModel\",\"kind\":\"out_of_range\"},"
	    "{\"product\":\"hologres\",\"action\":\"GetInstanceModel\",\"kind\":\"out_of_range\"}"
	    "]");

	/* the text says 1e400; json-c reads it as inf; one item only */
	o = tair_page(&items, &raw, "cn-beijing", 1, 20);
	assert_non_null(strstr(af_buf_data(&raw.body), "\"Capacity\":1e400"));
	assert_null(strstr(strstr(af_buf_data(&raw.body), "1e400") + 1, "1e400"));
	v = json_object_object_get(json_object_array_get_idx(items, 0), "Capacity");
	assert_true(json_object_is_type(v, json_type_double) && isinf(json_object_get_double(v)));
	v = json_object_object_get(json_object_array_get_idx(items, 1), "Capacity");
	assert_true(json_object_is_type(v, json_type_int));
	json_object_put(o);
	af_buf_free(&raw.body);

	usleep(1100000);
	o = tione_page(&in, &items, &raw, 0, 10);
	assert_non_null(strstr(af_buf_data(&raw.body), "\"Gpu\":1e400"));
	json_object *svc = json_object_array_get_idx(
	    json_object_object_get(json_object_array_get_idx(items, 0), "Services"), 0);
	v = json_object_object_get(
	    json_object_object_get(json_object_object_get(svc, "ServiceInfo"), "Resources"), "Gpu");
	assert_true(isinf(json_object_get_double(v)));
	json_object_put(o);
	af_buf_free(&raw.body);

	raw = holo_call("/cn-hangzhou/api/v1/instances/rpc/listInstanceModel");
	assert_non_null(strstr(af_buf_data(&raw.body), "\"gpu\":1e400"));
	o = res_json(&raw);
	json_object_object_get_ex(o, "instanceModelList", &items);
	assert_true(isinf(json_object_get_double(
	    json_object_object_get(json_object_array_get_idx(items, 0), "gpu"))));
	json_object_put(o);
	af_buf_free(&raw.body);
	raw = holo_call(path);
	assert_int_equal(raw.status, 200);
	assert_non_null(strstr(af_buf_data(&raw.body), "\"gpu\":1e400"));
	af_buf_free(&raw.body);
	json_object *st = control_get("/_sim/stats");
	assert_int_equal(jget_int(st, "faults.out_of_range"), 4);
	json_object_put(st);
	reset_control();
}

static void test_fault_oversized(void **state)
{
	(void)state;
	json_object *o, *items, *in, *v;
	http_result raw;
	char hid[64], path[160];
	const size_t mib = 1024 * 1024;
	reset_control();
	holo_node_with_service(hid, sizeof(hid));
	snprintf(path, sizeof(path), "/cn-hangzhou/api/v1/instances/%s/getInstanceModel", hid);
	post_faults(
	    "[{\"product\":\"tair_kvcache\",\"kind\":\"oversized\",\"bytes\":3000000},"
	    "{\"product\":\"tione\",\"kind\":\"oversized\"},"
	    "{\"product\":\"hologres\",\"action\":\"ListInstanceModel\",\"kind\":\"oversized\","
	    "\"bytes\":1000},"
	    "{\"product\":\"hologres\",\"action\":\"GetInstanceModel\",\"kind\":\"oversized\","
	    "\"bytes\":5}]");

	o = tair_page(&items, NULL, "cn-beijing", 1, 20);
	v = json_object_object_get(json_object_array_get_idx(items, 0), "InstanceName");
	assert_int_equal(json_object_get_string_len(v), 3000000);
	assert_memory_equal(json_object_get_string(v), "oversized-", 10);
	/* letters and digits that do not repeat: nothing compresses them away */
	assert_int_equal(strspn(json_object_get_string(v), "abcdefghijklmnopqrstuvwxyz0123456789-"),
	                 3000000);
	assert_null(strstr(json_object_get_string(v) + 10, "xxxxxxxx"));
	v = json_object_object_get(json_object_array_get_idx(items, 1), "InstanceName");
	assert_true(json_object_get_string_len(v) < 48);
	json_object_put(o);

	/* the default: 20 MiB, and the whole answer under the client's 32 MiB cap */
	usleep(1100000);
	o = tione_page(&in, &items, &raw, 0, 100);
	assert_int_equal(json_object_get_string_len(json_object_object_get(
	                     json_object_array_get_idx(items, 0), "ServiceGroupName")),
	                 20 * mib);
	assert_true(af_buf_len(&raw.body) > 20 * mib && af_buf_len(&raw.body) < 32 * mib);
	assert_int_equal(json_object_array_length(items), 100);
	json_object_put(o);
	af_buf_free(&raw.body);

	raw = holo_call("/cn-hangzhou/api/v1/instances/rpc/listInstanceModel");
	o = res_json(&raw);
	json_object_object_get_ex(o, "instanceModelList", &items);
	assert_int_equal(json_object_get_string_len(json_object_object_get(
	                     json_object_array_get_idx(items, 0), "holoInstanceName")),
	                 1000);
	json_object_put(o);
	af_buf_free(&raw.body);
	raw = holo_call(path);
	o = res_json(&raw);
	v = json_object_object_get(
	    json_object_array_get_idx(json_object_object_get(o, "modelServiceList"), 0),
	    "modelName");
	assert_int_equal(json_object_get_string_len(v), 5);
	assert_memory_equal(json_object_get_string(v), "overs", 5);
	json_object_put(o);
	af_buf_free(&raw.body);
	reset_control();
}

static void expect_fault_refused(const char *body, const char *needle)
{
	http_result r;
	char url[128];
	snprintf(url, sizeof(url), "%s/_sim/faults", g_base);
	http(&r, "POST", url, NULL, body);
	if (r.status != 400 || !af_buf_data(&r.body) || !strstr(af_buf_data(&r.body), needle))
		fail_msg("%s: got %ld %s, want 400 with '%s'", body, r.status,
		         af_buf_data(&r.body) ? af_buf_data(&r.body) : "", needle);
	af_buf_free(&r.body);
}

static void test_fault_scripts_checked(void **state)
{
	(void)state;
	reset_control();
	/* a fault that could never fire is a mistake in the test */
	expect_fault_refused("{\"product\":\"hologres\",\"kind\":\"lying_total\"}",
	                     "lying_total does not apply to hologres");
	expect_fault_refused("{\"product\":\"hologres\",\"kind\":\"repeat_page\"}", "repeat_page");
	expect_fault_refused(
	    "{\"product\":\"hologres\",\"action\":\"GetInstanceModel\",\"kind\":\"short_page\"}",
	    "short_page does not apply to hologres GetInstanceModel");
	expect_fault_refused("{\"kind\":\"lying_total\",\"items\":3}",
	                     "\\\"items\\\" is for short_page");
	expect_fault_refused("{\"kind\":\"oversized\",\"bytes\":0}", "\\\"bytes\\\" must be");
	expect_fault_refused("{\"kind\":\"oversized\",\"bytes\":268435457}",
	                     "\\\"bytes\\\" must be");
	expect_fault_refused("{\"kind\":\"short_page\",\"items\":\"3\"}", "\\\"items\\\" must be");
	expect_fault_refused("{\"kind\":\"lying_total\",\"total\":-1}", "\\\"total\\\" must be");
	/* nothing of a refused batch is kept */
	expect_fault_refused("[{\"kind\":\"http500\"},{\"kind\":\"nonsense\"}]", "fault 1");
	json_object *left = control_get("/_sim/faults");
	assert_int_equal(json_object_array_length(left), 0);
	json_object_put(left);
	/* the listing shows a fault's number */
	post_faults("{\"product\":\"tione\",\"kind\":\"lying_total\",\"total\":3,\"times\":-1}");
	left = control_get("/_sim/faults");
	assert_int_equal(jget_int(json_object_array_get_idx(left, 0), "total"), 3);
	assert_int_equal(jget_int(json_object_array_get_idx(left, 0), "times"), -1);
	json_object_put(left);
	reset_control();
}

/*
 * drop: the request is read in full and authenticated, then the connection
 * closes with no answer. On a fresh connection libcurl reports an empty
 * reply; on a kept-alive one it resends the same bytes once by itself, so
 * an Alibaba request comes back SignatureNonceUsed (its nonce was spent),
 * and a Tencent one (TC3 has no nonce) simply succeeds.
 */
static void test_fault_drop_after_request_read(void **state)
{
	(void)state;
	http_result r;
	char got[64];
	json_object *st, *o, *in, *items;
	reset_control();
	post_faults("[{\"product\":\"tair_kvcache\",\"page\":7,\"kind\":\"drop\"},"
	            "{\"product\":\"tair_kvcache\",\"page\":8,\"kind\":\"drop\"},"
	            "{\"product\":\"tione\",\"page\":5,\"kind\":\"drop\"}]");
	af_kv q7[] = {{"RegionId", "cn-beijing"}, {"PageNumber", "7"}, {"PageSize", "10"}};
	tair(&r, ALI_AK, ALI_SK, q7, 3);
	assert_int_equal(r.curl, CURLE_GOT_NOTHING);
	assert_int_equal(af_buf_len(&r.body), 0);
	af_buf_free(&r.body);
	st = control_get("/_sim/stats");
	/* read, verified and counted before the connection was closed */
	assert_int_equal(jget_int(st, "by_action.DescribeTairKVCacheInferInstances"), 1);
	assert_int_equal(jget_int(st, "faults.drop"), 1);
	json_object_put(st);

	g_reuse = curl_easy_init();
	af_kv q1[] = {{"RegionId", "cn-beijing"}, {"PageNumber", "1"}, {"PageSize", "10"}};
	tair(&r, ALI_AK, ALI_SK, q1, 3);
	assert_int_equal(r.status, 200);
	af_buf_free(&r.body);
	af_kv q8[] = {{"RegionId", "cn-beijing"}, {"PageNumber", "8"}, {"PageSize", "10"}};
	tair(&r, ALI_AK, ALI_SK, q8, 3);
	err_code(got, sizeof(got), &r);
	assert_int_equal(r.curl, CURLE_OK);
	assert_int_equal(r.status, 400);
	assert_string_equal(got, "SignatureNonceUsed");
	af_buf_free(&r.body);
	st = control_get("/_sim/stats");
	assert_int_equal(jget_int(st, "requests"), 4); /* page 7; page 1; page 8 twice */
	assert_int_equal(jget_int(st, "auth_errors.SignatureNonceUsed"), 1);
	assert_int_equal(jget_int(st, "faults.drop"), 2);
	json_object_put(st);

	usleep(1100000);
	o = tione_page(&in, &items, NULL, 0, 10);
	json_object_put(o);
	o = tione_page(&in, &items, NULL, 40, 10);
	assert_int_equal(json_object_array_length(items), 10); /* resent, answered */
	json_object_put(o);
	curl_easy_cleanup(g_reuse);
	g_reuse = NULL;
	st = control_get("/_sim/stats");
	assert_int_equal(jget_int(st, "faults.drop"), 3);
	assert_int_equal(jget_int(st, "by_action.DescribeModelServiceGroups"), 3);
	json_object_put(st);
	reset_control();
}

static void test_random_data_faults(void **state)
{
	(void)state;
	char *path = write_config("[account cfg]\nprovider = alibaba\naccess_key_id = LTAIcfg\n"
	                          "access_key_secret = cfg-secret\nregions = cn-hangzhou\n"
	                          "[limits tair_kvcache]\nempty_page = 1\n"
	                          "[limits hologres]\nlying_total = 1\n");
	http_result r;
	json_object *o, *inst, *list;
	assert_int_equal(start(30, false, path), 0);
	for (int page = 1; page <= 2; page++) {
		char pn[8];
		snprintf(pn, sizeof(pn), "%d", page);
		af_kv q[] = {{"RegionId", "cn-hangzhou"}, {"PageNumber", pn}, {"PageSize", "10"}};
		tair(&r, "LTAIcfg", "cfg-secret", q, 3);
		o = res_json(&r);
		json_object_object_get_ex(o, "Instances", &inst);
		json_object_object_get_ex(inst, "TairInferInstanceDTO", &list);
		/* every page but the first comes back empty */
		assert_int_equal(json_object_array_length(list), page == 1 ? 10 : 0);
		json_object_put(o);
		af_buf_free(&r.body);
	}
	/* a kind the answer cannot carry is no fault */
	ali_call c = {.path = "/cn-hangzhou/api/v1/instances/rpc/listInstanceModel",
	              .action = "ListInstanceModel",
	              .version = "2022-06-01",
	              .ak = "LTAIcfg",
	              .sk = "cfg-secret"};
	ali(&r, &c);
	o = res_json(&r);
	json_object_object_get_ex(o, "instanceModelList", &list);
	assert_int_equal(json_object_array_length(list), 30);
	json_object_put(o);
	af_buf_free(&r.body);
	json_object *st = control_get("/_sim/stats");
	assert_int_equal(jget_int(st, "faults.empty_page"), 1);
	assert_int_equal(jget_int(st, "faults.lying_total"), 0);
	json_object_put(st);
	teardown(NULL);
	remove_config(path);
}

/* ---- the product descriptors ---- */

/* Every simulated product is complete, names a product aifleet knows and
 * agrees with it on paging; its actions can be routed and served. */
static void test_product_descriptors(void **state)
{
	(void)state;
	assert_true(sim_product_count() >= 1 && sim_product_count() <= SIM_PRODUCTS_MAX);
	assert_null(sim_product_at(sim_product_count()));
	assert_int_equal(sim_product_index("no_such_product"), -1);
	assert_string_equal(sim_product_name(-1), "?");
	for (size_t i = 0; i < sim_product_count(); i++) {
		const sim_product *p = sim_product_at(i);
		assert_non_null(p->product);
		/* the core's own descriptor, not a copy of its facts */
		assert_ptr_equal(af_product_find(p->product->name), p->product);
		assert_int_equal(sim_product_index(p->product->name), (int)i);
		assert_string_equal(sim_product_name((int)i), p->product->name);
		assert_string_equal(sim_provider_find(p->product->provider), p->product->provider);
		/* the API's own default page, within the most it accepts */
		assert_true(p->product->max_page_size == 0 ||
			    p->default_page_size <= p->product->max_page_size);
		assert_non_null(p->version);
		assert_true(p->id_prefix && *p->id_prefix);
		assert_non_null(p->render);
		assert_non_null(p->truth);
		assert_true(p->nactions >= 1 && p->nactions <= SIM_ACTIONS_MAX);
		if (p->style == SIM_TC3)
			assert_true(p->tc3_service && *p->tc3_service);
		if (p->style == SIM_ACS3_ROA)
			assert_true(p->roa_root && p->roa_root[0] == '/' && p->roa_host);
		for (size_t j = 0; j < i; j++) {
			const sim_product *q = sim_product_at(j);
			assert_string_not_equal(q->product->name, p->product->name);
			assert_string_not_equal(q->id_prefix, p->id_prefix);
		}
		for (size_t a = 0; a < p->nactions; a++) {
			const sim_action *act = &p->actions[a];
			assert_non_null(act->name);
			assert_non_null(act->method);
			assert_non_null(act->handle);
			assert_non_null(sim_fixture_get(act->fixture));
			assert_true((p->style == SIM_ACS3_ROA) == (act->path != NULL));
			assert_true(!act->page || act->list); /* paged means a list */
		}
	}
	assert_non_null(sim_provider_find("aliyun"));
	assert_null(sim_provider_find("nope"));
}

/* Each product's items are a function of (seed, scope, slot). */
static void test_products_render_deterministic(void **state)
{
	(void)state;
	af_sim *a = NULL, *b = NULL, *c = NULL;
	sim_options o;
	size_t differ = 0;
	sim_options_defaults(&o);
	o.port = 0;
	o.items = 3;
	assert_int_equal(af_sim_start(&a, &o), 0);
	assert_int_equal(af_sim_start(&b, &o), 0);
	o.seed = 2;
	assert_int_equal(af_sim_start(&c, &o), 0);
	assert_int_equal(a->nscopes, c->nscopes);
	for (size_t i = 0; i < a->nscopes; i++) {
		const sim_scope *sa = &a->scopes[i], *sb = &b->scopes[i], *sc = &c->scopes[i];
		const sim_product *p = sim_product_at((size_t)sa->product);
		json_object *ja = p->render(a, sa, &sa->slots[0]),
		            *jb = p->render(b, sb, &sb->slots[0]),
		            *jc = p->render(c, sc, &sc->slots[0]), *t = json_object_new_object(),
		            *id;
		assert_string_equal(json_object_to_json_string(ja), json_object_to_json_string(jb));
		differ +=
		    strcmp(json_object_to_json_string(ja), json_object_to_json_string(jc)) != 0;
		p->truth(t, a, sa, &sa->slots[0]);
		assert_true(json_object_object_get_ex(t, "id", &id));
		assert_true(json_object_is_type(id, json_type_string));
		json_object_put(ja);
		json_object_put(jb);
		json_object_put(jc);
		json_object_put(t);
	}
	assert_int_equal(differ, a->nscopes); /* another seed, another fleet */
	af_sim_stop(a);
	af_sim_stop(b);
	af_sim_stop(c);
}

/* ---- TI-ONE: the whole service of the API page ---- */

/* got has want's shape: the same JSON types, objects the same members in
 * the same order, arrays' elements shaped like want's first. */
static void assert_same_shape(json_object *want, json_object *got, const char *where)
{
	json_type t = json_object_get_type(want);
	if (json_object_get_type(got) != t)
		fail_msg("%s: %s where the API page has %s", where,
		         json_type_to_name(json_object_get_type(got)), json_type_to_name(t));
	if (t == json_type_object) {
		struct lh_entry *we = lh_table_head(json_object_get_object(want)),
		                *ge = lh_table_head(json_object_get_object(got));
		for (; we && ge; we = lh_entry_next(we), ge = lh_entry_next(ge)) {
			const char *key = lh_entry_k(we);
			assert_string_equal((const char *)lh_entry_k(ge), key);
			assert_same_shape((json_object *)lh_entry_v(we),
			                  (json_object *)lh_entry_v(ge), key);
		}
		if (we || ge)
			fail_msg("%s: not the API page's members", where);
	} else if (t == json_type_array && json_object_array_length(want) > 0) {
		assert_true(json_object_array_length(got) > 0);
		for (size_t i = 0; i < json_object_array_length(got); i++)
			assert_same_shape(json_object_array_get_idx(want, 0),
			                  json_object_array_get_idx(got, i), where);
	}
}

static json_object *jpath(json_object *o, const char *path)
{
	char buf[256], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *t = strtok_r(buf, ".", &save); t && o; t = strtok_r(NULL, ".", &save)) {
		if (json_object_is_type(o, json_type_array))
			o = json_object_array_get_idx(o, (size_t)atoi(t));
		else if (!json_object_object_get_ex(o, t, &o))
			return NULL;
	}
	return o;
}

static void assert_string_member(json_object *o, const char *key)
{
	json_object *v = jpath(o, key);
	if (!v || !json_object_is_type(v, json_type_string))
		fail_msg("%s: not a string", key);
}

static void assert_cos_path_info(json_object *c, const char *region)
{
	json_object *paths = jpath(c, "Paths");
	assert_true(json_object_is_type(c, json_type_object));
	assert_string_member(c, "Bucket");
	assert_string_member(c, "Region");
	assert_string_equal(json_object_get_string(jpath(c, "Region")), region);
	assert_true(json_object_is_type(paths, json_type_array));
	assert_true(json_object_array_length(paths) >= 1);
	for (size_t i = 0; i < json_object_array_length(paths); i++) {
		json_object *p = json_object_array_get_idx(paths, i);
		assert_true(json_object_is_type(p, json_type_string));
		assert_true(json_object_get_string_len(p) > 0);
	}
}

static void test_tione_storage_members(void **state)
{
	(void)state;
	size_t len, nsvc = 0, nmodel = 0;
	char *page = af_test_read_fixture("api/tione_describe_example.json", &len);
	json_object *example = json_tokener_parse(page), *groups, *again, *in;
	json_object *want = jpath(example, "Response.ServiceGroups.0.Services.0.ServiceInfo"), *o,
	            *o2;
	assert_non_null(want);
	reset_control();
	o = tione_page(&in, &groups, NULL, 0, 100);
	o2 = tione_page(&in, &again, NULL, 0, 100);
	assert_non_null(groups);
	assert_non_null(again);
	assert_true(json_object_array_length(groups) > 0);
	for (size_t i = 0; i < json_object_array_length(groups); i++) {
		json_object *svcs = jpath(json_object_array_get_idx(groups, i), "Services"),
		            *svcs2 = jpath(json_object_array_get_idx(again, i), "Services");
		for (size_t k = 0; k < json_object_array_length(svcs); k++) {
			json_object *sv = json_object_array_get_idx(svcs, k);
			json_object *si = jpath(sv, "ServiceInfo"), *mi = jpath(si, "ModelInfo");
			json_object *si2 =
			    jpath(json_object_array_get_idx(svcs2, k), "ServiceInfo");
			const char *region = json_object_get_string(jpath(sv, "Region"));
			static const char *const members[] = {"InferCodeInfo", "VolumeMount"};
			nsvc++;
			/* in every service, the types of the API page's example */
			assert_true(
			    json_object_is_type(jpath(si, "InferCodeInfo"), json_type_object));
			assert_cos_path_info(jpath(si, "InferCodeInfo.CosPathInfo"), region);
			assert_true(
			    json_object_is_type(jpath(si, "VolumeMount"), json_type_object));
			assert_string_member(si, "VolumeMount.VolumeSourceType");
			assert_true(json_object_is_type(jpath(si, "VolumeMount.CFSConfig"),
			                                json_type_object));
			assert_string_member(si, "VolumeMount.CFSConfig.Id");
			assert_string_member(si, "VolumeMount.CFSConfig.Path");
			assert_string_member(si, "VolumeMount.CFSConfig.MountType");
			assert_string_member(si, "VolumeMount.CFSConfig.Protocol");
			for (size_t m = 0; m < 2; m++) {
				assert_same_shape(jpath(want, members[m]), jpath(si, members[m]),
				                  members[m]);
				/* the same service, the same values */
				assert_string_equal(
				    json_object_to_json_string(jpath(si, members[m])),
				    json_object_to_json_string(jpath(si2, members[m])));
			}
			if (mi) { /* ModelInfo may be null, as the page warns */
				nmodel++;
				assert_cos_path_info(jpath(mi, "CosPathInfo"), region);
				assert_same_shape(jpath(want, "ModelInfo.CosPathInfo"),
				                  jpath(mi, "CosPathInfo"), "CosPathInfo");
				assert_string_equal(
				    json_object_to_json_string(jpath(mi, "CosPathInfo")),
				    json_object_to_json_string(
				        jpath(si2, "ModelInfo.CosPathInfo")));
			}
			/* the normalizer keeps the whole service in raw: nothing
			 * in it may be, or look like, a secret */
			assert_false(af_secret_tree_has(sv));
		}
	}
	assert_true(nsvc > nmodel && nmodel > 0); /* both kinds were seen */
	json_object_put(o);
	json_object_put(o2);
	json_object_put(example);
	free(page);
}

/* ---- roles: STS, instance metadata, issued credentials ---- */

#define ROLE_ARN    "acs:ram::1234567890123456:role/aifleet-inventory"
#define OIDC_ARN    "acs:ram::1234567890123456:oidc-provider/aifleet-sim"
#define OIDC_TOKEN  "sim-demo-oidc-token-NOT-REAL"
#define TC_ROLE_ARN "qcs::cam::uin/100000000001:roleName/aifleet-inventory-tc"
#define TC_PROVIDER "aifleet-sim-oidc"
#define TC_WEB_TOK  "sim-demo-web-identity-token-NOT-REAL"

/* Temporary credentials as an answer gave them. */
typedef struct tmp_creds {
	char id[64], secret[64], token[256];
	char expiration[32];
	int64_t expired_time; /* Tencent ExpiredTime */
} tmp_creds;

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;
	assert_true(json_object_object_get_ex(o, key, &v));
	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

static void take_creds(tmp_creds *c, json_object *o, const char *id, const char *secret,
                       const char *token)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%s", jstr(o, id));
	snprintf(c->secret, sizeof(c->secret), "%s", jstr(o, secret));
	snprintf(c->token, sizeof(c->token), "%s", jstr(o, token));
}

static bool all_alnum(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

/* An ISO 8601 UTC time about `secs` from now (within a few seconds). */
static void assert_expires_in(const char *iso, int64_t secs)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
	assert_non_null(end);
	assert_int_equal(*end, '\0');
	int64_t at = (int64_t)timegm(&tm), now = (int64_t)time(NULL);
	assert_true(at >= now + secs - 3 && at <= now + secs + 1);
}

static void ali_assume(http_result *r, const char *ak, const char *sk, const char *token,
                       const af_kv *q, size_t nq)
{
	ali_call c = {.action = "AssumeRole",
	              .version = "2015-04-01",
	              .query = q,
	              .nquery = nq,
	              .ak = ak,
	              .sk = sk,
	              .token = token};
	ali(r, &c);
}

/* AssumeRole of the demo role, signed by demo-ali: the member's credentials. */
static void ali_role_creds(tmp_creds *c, const char *duration)
{
	http_result r;
	json_object *o, *cr, *u;
	af_kv q[] = {{"RoleArn", ROLE_ARN},
	             {"RoleSessionName", "aifleet-test"},
	             {"DurationSeconds", duration ? duration : "3600"}};
	ali_assume(&r, ALI_AK, ALI_SK, NULL, q, 3);
	if (r.status != 200)
		fprintf(stderr, "AssumeRole: %ld %s\n", r.status, af_buf_data(&r.body));
	assert_int_equal(r.status, 200);
	o = res_json(&r);
	assert_int_equal(strlen(jstr(o, "RequestId")), 36);
	assert_true(json_object_object_get_ex(o, "AssumedRoleUser", &u));
	assert_string_equal(jstr(u, "Arn"), ROLE_ARN "/aifleet-test");
	assert_non_null(strstr(jstr(u, "AssumedRoleId"), ":aifleet-test"));
	assert_true(json_object_object_get_ex(o, "Credentials", &cr));
	take_creds(c, cr, "AccessKeyId", "AccessKeySecret", "SecurityToken");
	snprintf(c->expiration, sizeof(c->expiration), "%s", jstr(cr, "Expiration"));
	json_object_put(o);
	af_buf_free(&r.body);
}

/* Tair of cn-hangzhou with temporary credentials: the ids it lists. */
static long tair_with(const tmp_creds *c, const char *token, char *code, size_t ncode,
                      json_object **ids)
{
	http_result r;
	json_object *o, *inst, *items;
	af_kv q[] = {{"RegionId", "cn-hangzhou"}, {"PageSize", "100"}};
	ali_call call = {.action = "DescribeTairKVCacheInferInstances",
	                 .version = "2015-01-01",
	                 .query = q,
	                 .nquery = 2,
	                 .ak = c->id,
	                 .sk = c->secret,
	                 .token = token};
	long status;
	ali(&r, &call);
	status = r.status;
	err_code(code, ncode, &r);
	if (ids && status == 200) {
		o = res_json(&r);
		*ids = json_object_new_object();
		assert_true(json_object_object_get_ex(o, "Instances", &inst));
		assert_true(json_object_object_get_ex(inst, "TairInferInstanceDTO", &items));
		for (size_t i = 0; i < json_object_array_length(items); i++)
			json_object_object_add(
			    *ids, jstr(json_object_array_get_idx(items, i), "InstanceId"),
			    json_object_new_int(0));
		json_object_put(o);
	}
	af_buf_free(&r.body);
	return status;
}

/* The member account's Tair fleet of cn-hangzhou, read with c. */
static void assert_reads_member_fleet(const tmp_creds *c)
{
	json_object *want, *got;
	char code[128];
	fleet_ids(&want, "tair_kvcache", "demo-ali-member", "cn-hangzhou");
	assert_true(json_object_object_length(want) > 0);
	assert_int_equal(tair_with(c, c->token, code, sizeof(code), &got), 200);
	/* the first page of 100 */
	size_t n = (size_t)json_object_object_length(want);
	assert_int_equal(json_object_object_length(got), n < 100 ? n : 100);
	json_object_object_foreach(got, k, v)
	{
		(void)v;
		mark_seen(want, k);
	}
	json_object_put(want);
	json_object_put(got);
}

static void expect_tair_with(const tmp_creds *c, const char *token, long status, const char *code)
{
	char got[128];
	long st = tair_with(c, token, got, sizeof(got), NULL);
	if (st != status || strcmp(got, code) != 0)
		fprintf(stderr, "expected %ld %s, got %ld %s\n", status, code, st, got);
	assert_int_equal(st, status);
	assert_string_equal(got, code);
}

static void test_sts_alibaba_assume_role(void **state)
{
	(void)state;
	tmp_creds c, c2;
	tmp_creds wrong;
	json_object *st;

	reset_control();
	ali_role_creds(&c, NULL);
	assert_int_equal(strlen(c.id), 24);
	assert_memory_equal(c.id, "STS.", 4);
	assert_true(all_alnum(c.id + 4));
	assert_true(strlen(c.secret) >= 30 && strlen(c.token) >= 100);
	assert_expires_in(c.expiration, 3600);
	assert_reads_member_fleet(&c);

	/* the token goes with the key: none, another one's */
	expect_tair_with(&c, NULL, 400, "InvalidSecurityToken.Mismatch");
	ali_role_creds(&c2, "900");
	assert_expires_in(c2.expiration, 900);
	assert_string_not_equal(c.id, c2.id);
	expect_tair_with(&c, c2.token, 400, "InvalidSecurityToken.MismatchWithAccessKey");
	wrong = c;
	wrong.secret[0] = wrong.secret[0] == 'A' ? 'B' : 'A';
	expect_tair_with(&wrong, c.token, 400, "SignatureDoesNotMatch");
	/* a configured account's fleet stays its own */
	expect_tair_with(&(tmp_creds){.id = "STS.NotIssuedByTheSim00", .secret = "x"}, "t", 404,
	                 "InvalidAccessKeyId.NotFound");

	/* refusals */
	af_kv unknown[] = {{"RoleArn", "acs:ram::1234567890123456:role/nope"},
	                   {"RoleSessionName", "s1"}};
	ali_call ac = {.action = "AssumeRole",
	               .version = "2015-04-01",
	               .query = unknown,
	               .nquery = 2,
	               .ak = ALI_AK,
	               .sk = ALI_SK};
	expect_ali(&ac, 404, "EntityNotExist.Role");
	af_kv ok[] = {{"RoleArn", ROLE_ARN}, {"RoleSessionName", "s1"}};
	ac.query = ok;
	ac.ak = STS_AK; /* demo-ali-sts is not trusted */
	ac.sk = STS_SK;
	ac.token = STS_TOKEN;
	expect_ali(&ac, 403, "NoPermission");
	/* a caller holding the member's credentials counts as the member: not trusted */
	ac.ak = c.id;
	ac.sk = c.secret;
	ac.token = c.token;
	expect_ali(&ac, 403, "NoPermission");
	ac.ak = ALI_AK;
	ac.sk = ALI_SK;
	ac.token = NULL;
	af_kv nosess[] = {{"RoleArn", ROLE_ARN}};
	ac.query = nosess;
	ac.nquery = 1;
	expect_ali(&ac, 400, "MissingRoleSessionName");
	af_kv noarn[] = {{"RoleSessionName", "s1"}};
	ac.query = noarn;
	expect_ali(&ac, 400, "MissingRoleArn");
	af_kv badsess[] = {{"RoleArn", ROLE_ARN}, {"RoleSessionName", "a b"}};
	ac.query = badsess;
	ac.nquery = 2;
	expect_ali(&ac, 400, "InvalidParameter.RoleSessionName");
	for (int i = 0; i < 3; i++) {
		static const char *const bad[] = {"899", "43201", "1h"};
		af_kv q[] = {
		    {"RoleArn", ROLE_ARN}, {"RoleSessionName", "s1"}, {"DurationSeconds", bad[i]}};
		ac.query = q;
		ac.nquery = 3;
		expect_ali(&ac, 400, "InvalidParameter.DurationSeconds");
	}
	ac.query = ok;
	ac.nquery = 2;
	ac.version = "2019-01-01";
	expect_ali(&ac, 400, "InvalidVersion");
	ac.version = "2015-04-01";
	ac.sk = "not-the-secret";
	expect_ali(&ac, 400, "SignatureDoesNotMatch");

	st = control_get("/_sim/stats");
	assert_int_equal(jget_int(st, "by_service.alibaba-sts AssumeRole"), 2 + 11);
	assert_int_equal(jget_int(st, "by_action.DescribeTairKVCacheInferInstances"), 1);
	json_object_put(st);
}

/* POST / with a form body (or the query) and no Authorization. */
static void ali_oidc(http_result *r, const char *form, const char *query)
{
	char url[1024];
	const char *hdrs[] = {"x-acs-action: AssumeRoleWithOIDC", "x-acs-version: 2015-04-01",
	                      "Content-Type: application/x-www-form-urlencoded", NULL};
	snprintf(url, sizeof(url), "%s/%s%s", g_base, query ? "?" : "", query ? query : "");
	http(r, "POST", url, hdrs, form ? form : "");
}

static void expect_oidc(const char *form, long status, const char *code)
{
	http_result r;
	char got[128];
	ali_oidc(&r, form, NULL);
	err_code(got, sizeof(got), &r);
	if (r.status != status || strcmp(got, code) != 0)
		fprintf(stderr, "expected %ld %s, got %ld %s\n", status, code, r.status, got);
	assert_int_equal(r.status, status);
	assert_string_equal(got, code);
	af_buf_free(&r.body);
}

static void test_sts_alibaba_oidc(void **state)
{
	(void)state;
	http_result r;
	json_object *o, *cr, *info;
	tmp_creds c;
	const char *form = "RoleArn=acs%3Aram%3A%3A1234567890123456%3Arole%2Faifleet-inventory"
	                   "&OIDCProviderArn=" OIDC_ARN "&OIDCToken=" OIDC_TOKEN
	                   "&RoleSessionName=pod-1&DurationSeconds=1800";

	ali_oidc(&r, form, NULL);
	assert_int_equal(r.status, 200);
	o = res_json(&r);
	assert_true(json_object_object_get_ex(o, "Credentials", &cr));
	take_creds(&c, cr, "AccessKeyId", "AccessKeySecret", "SecurityToken");
	assert_expires_in(jstr(cr, "Expiration"), 1800);
	assert_true(json_object_object_get_ex(o, "OIDCTokenInfo", &info));
	assert_non_null(jstr(info, "Subject"));
	assert_true(json_object_object_get_ex(o, "AssumedRoleUser", &info));
	assert_string_equal(jstr(info, "Arn"), ROLE_ARN "/pod-1");
	json_object_put(o);
	af_buf_free(&r.body);
	assert_reads_member_fleet(&c);

	/* the same in the query */
	ali_oidc(&r, NULL,
	         "RoleArn=" ROLE_ARN "&OIDCProviderArn=" OIDC_ARN "&OIDCToken=" OIDC_TOKEN
	         "&RoleSessionName=pod-2");
	assert_int_equal(r.status, 200);
	af_buf_free(&r.body);

	expect_oidc("RoleArn=" ROLE_ARN "&OIDCProviderArn=" OIDC_ARN
	            "&OIDCToken=not-the-token&RoleSessionName=pod-1",
	            400, "AuthenticationFail.OIDCToken.Invalid");
	expect_oidc("RoleArn=" ROLE_ARN "&OIDCProviderArn=" OIDC_ARN "x&OIDCToken=" OIDC_TOKEN
	            "&RoleSessionName=pod-1",
	            404, "EntityNotExist.OIDCProvider");
	expect_oidc("RoleArn=" ROLE_ARN "&OIDCProviderArn=" OIDC_ARN "&RoleSessionName=pod-1", 400,
	            "MissingOIDCToken");
	expect_oidc("RoleArn=" ROLE_ARN "&OIDCToken=" OIDC_TOKEN "&RoleSessionName=pod-1", 400,
	            "MissingOIDCProviderArn");
	expect_oidc("RoleArn=acs:ram::1:role/nope&OIDCProviderArn=" OIDC_ARN
	            "&OIDCToken=" OIDC_TOKEN "&RoleSessionName=pod-1",
	            404, "EntityNotExist.Role");
}

static void tc_role_creds(tmp_creds *c, const tc_call *call)
{
	http_result r;
	json_object *o, *resp, *cr, *e;
	tc(&r, call);
	assert_int_equal(r.status, 200);
	o = res_json(&r);
	assert_true(json_object_object_get_ex(o, "Response", &resp));
	if (json_object_object_get_ex(resp, "Error", &e))
		fprintf(stderr, "%s\n", json_object_to_json_string(o));
	assert_false(json_object_object_get_ex(resp, "Error", &e));
	assert_true(json_object_object_get_ex(resp, "Credentials", &cr));
	take_creds(c, cr, "TmpSecretId", "TmpSecretKey", "Token");
	snprintf(c->expiration, sizeof(c->expiration), "%s", jstr(resp, "Expiration"));
	c->expired_time = jget_int(resp, "ExpiredTime");
	assert_non_null(jstr(resp, "RequestId"));
	json_object_put(o);
	af_buf_free(&r.body);
}

/* TI-ONE of ap-guangzhou with temporary credentials: the error code, "" if none. */
static void tione_with(char *code, size_t n, const tmp_creds *c, const char *token)
{
	http_result r;
	tc_call call = {.body = "{\"Limit\":1}", .id = c->id, .sk = c->secret, .token = token};
	for (;;) { /* waiting out the 20/s limit */
		tc(&r, &call);
		assert_int_equal(r.status, 200);
		err_code(code, n, &r);
		af_buf_free(&r.body);
		if (strcmp(code, "RequestLimitExceeded") != 0)
			break;
		usleep(100000);
	}
}

#define TC_ASSUME_BODY                                                                             \
	"{\"RoleArn\":\"" TC_ROLE_ARN "\",\"RoleSessionName\":\"aifleet\",\"DurationSeconds\":%d}"

static void test_sts_tencent(void **state)
{
	(void)state;
	char body[512], code[128];
	tmp_creds c;

	snprintf(body, sizeof(body), TC_ASSUME_BODY, 7200);
	tc_call call = {.body = body,
	                .id = TC_ID,
	                .sk = TC_SK,
	                .service = "sts",
	                .action = "AssumeRole",
	                .version = "2018-08-13"};
	tc_role_creds(&c, &call);
	assert_int_equal(strlen(c.id), 36);
	assert_memory_equal(c.id, "AKID", 4);
	assert_true(all_alnum(c.id + 4));
	assert_expires_in(c.expiration, 7200);
	assert_true(c.expired_time >= (int64_t)time(NULL) + 7197);
	tione_with(code, sizeof(code), &c, c.token);
	assert_string_equal(code, "");
	tione_with(code, sizeof(code), &c, NULL);
	assert_string_equal(code, "AuthFailure.TokenFailure");
	tione_with(code, sizeof(code), &c, "not-the-token");
	assert_string_equal(code, "AuthFailure.TokenFailure");

	/* AssumeRole with the role's own credentials: demo-tc trusts itself */
	tc_call chained = call;
	chained.id = c.id;
	chained.sk = c.secret;
	chained.token = c.token;
	tmp_creds c2;
	tc_role_creds(&c2, &chained);

	/* refusals */
	tc_call bad = call;
	bad.body = "{\"RoleArn\":\"qcs::cam::uin/1:roleName/nope\",\"RoleSessionName\":\"x1\"}";
	expect_tc(&bad, "ResourceNotFound.RoleNotExist");
	bad.body = "{\"RoleArn\":\"" TC_ROLE_ARN "\"}";
	expect_tc(&bad, "MissingParameter");
	snprintf(body, sizeof(body), TC_ASSUME_BODY, 60);
	bad.body = body;
	expect_tc(&bad, "InvalidParameterValue");
	snprintf(body, sizeof(body), TC_ASSUME_BODY, 3600);
	bad.service = "tione"; /* the scope must name sts */
	expect_tc(&bad, "AuthFailure.InvalidAuthorization");
	bad.service = "sts";
	bad.sk = "wrong";
	expect_tc(&bad, "AuthFailure.SignatureFailure");
	bad.sk = TC_SK;
	bad.version = "2021-11-11";
	expect_tc(&bad, "NoSuchVersion");

	/* AssumeRoleWithWebIdentity: unsigned */
	tc_call web = {.body =
	                   "{\"ProviderId\":\"" TC_PROVIDER "\",\"WebIdentityToken\":\"" TC_WEB_TOK
	                   "\",\"RoleArn\":\"" TC_ROLE_ARN "\",\"RoleSessionName\":\"pod-1\"}",
	               .id = "unused",
	               .sk = "unused",
	               .service = "sts",
	               .skip = true,
	               .action = "AssumeRoleWithWebIdentity",
	               .version = "2018-08-13"};
	tc_role_creds(&c2, &web);
	assert_expires_in(c2.expiration, 3600);
	tione_with(code, sizeof(code), &c2, c2.token);
	assert_string_equal(code, "");
	web.body = "{\"ProviderId\":\"" TC_PROVIDER
	           "\",\"WebIdentityToken\":\"nope\",\"RoleArn\":\"" TC_ROLE_ARN
	           "\",\"RoleSessionName\":\"pod-1\"}";
	expect_tc(&web, "InvalidParameter.WebIdentityTokenError");
	web.body = "{\"ProviderId\":\"other\",\"WebIdentityToken\":\"" TC_WEB_TOK
	           "\",\"RoleArn\":\"" TC_ROLE_ARN "\",\"RoleSessionName\":\"pod-1\"}";
	expect_tc(&web, "InvalidParameter.WebIdentityTokenError");
	web.body = "{\"WebIdentityToken\":\"" TC_WEB_TOK "\",\"RoleArn\":\"" TC_ROLE_ARN
	           "\",\"RoleSessionName\":\"pod-1\"}";
	expect_tc(&web, "MissingParameter");
}

/* A metadata call: status, body in *out (caller frees). */
static long md(af_buf *out, const char *method, const char *path, const char *header)
{
	http_result r;
	char url[512];
	const char *hdrs[] = {header, NULL};
	snprintf(url, sizeof(url), "%s%s", g_base, path);
	http(&r, method, url, header ? hdrs : NULL, NULL);
	*out = r.body;
	return r.status;
}

static long md_status(const char *method, const char *path, const char *header)
{
	af_buf b;
	long st = md(&b, method, path, header);
	af_buf_free(&b);
	return st;
}

#define ECS_ROLES "/latest/meta-data/ram/security-credentials/"
#define CVM_ROLES "/latest/meta-data/cam/security-credentials/"

static void ecs_token(char *out, size_t n, const char *ttl)
{
	char h[128];
	af_buf b;
	snprintf(h, sizeof(h), "X-aliyun-ecs-metadata-token-ttl-seconds: %s", ttl);
	assert_int_equal(md(&b, "PUT", "/latest/api/token", h), 200);
	snprintf(out, n, "X-aliyun-ecs-metadata-token: %s", af_buf_data(&b));
	assert_true(strlen(af_buf_data(&b)) >= 32);
	af_buf_free(&b);
}

static void ecs_creds(tmp_creds *c, const char *token_header)
{
	af_buf b;
	json_object *o;
	assert_int_equal(md(&b, "GET", ECS_ROLES "aifleet-inventory", token_header), 200);
	o = json_tokener_parse(af_buf_data(&b));
	assert_non_null(o);
	take_creds(c, o, "AccessKeyId", "AccessKeySecret", "SecurityToken");
	assert_string_equal(jstr(o, "Code"), "Success");
	assert_non_null(jstr(o, "LastUpdated"));
	snprintf(c->expiration, sizeof(c->expiration), "%s", jstr(o, "Expiration"));
	json_object_put(o);
	af_buf_free(&b);
}

static void test_metadata_ecs(void **state)
{
	(void)state;
	char tok[160];
	af_buf b;
	tmp_creds c;
	json_object *st;

	reset_control();
	/* IMDSv2: a session token, then the role and its credentials */
	ecs_token(tok, sizeof(tok), "21600");
	assert_int_equal(md(&b, "GET", ECS_ROLES, tok), 200);
	assert_string_equal(af_buf_data(&b), "aifleet-inventory");
	af_buf_free(&b);
	ecs_creds(&c, tok);
	assert_memory_equal(c.id, "STS.", 4);
	assert_int_equal(strlen(c.id), 24);
	assert_reads_member_fleet(&c);
	/* IMDSv1 is allowed by default */
	ecs_creds(&c, NULL);
	assert_reads_member_fleet(&c);

	assert_int_equal(md_status("PUT", "/latest/api/token", NULL), 400);
	assert_int_equal(
	    md_status("PUT", "/latest/api/token", "X-aliyun-ecs-metadata-token-ttl-seconds: 0"),
	    400);
	assert_int_equal(
	    md_status("PUT", "/latest/api/token", "X-aliyun-ecs-metadata-token-ttl-seconds: 21601"),
	    400);
	assert_int_equal(md_status("GET", ECS_ROLES, "X-aliyun-ecs-metadata-token: forged"), 401);
	assert_int_equal(
	    md_status("GET", ECS_ROLES "aifleet-inventory", "X-aliyun-ecs-metadata-token: forged"),
	    401);
	assert_int_equal(md_status("GET", ECS_ROLES "no-such-role", tok), 404);
	/* a token expires */
	ecs_token(tok, sizeof(tok), "1");
	assert_int_equal(md_status("GET", ECS_ROLES, tok), 200);
	usleep(1100000);
	assert_int_equal(md_status("GET", ECS_ROLES, tok), 401);

	st = control_get("/_sim/stats");
	assert_int_equal(jget_int(st, "by_service.ecs-metadata PutToken"), 5);
	assert_int_equal(jget_int(st, "by_service.ecs-metadata GetRoleCredentials"), 3);
	json_object_put(st);
}

static void test_metadata_cvm(void **state)
{
	(void)state;
	af_buf b;
	json_object *o;
	tmp_creds c;
	char code[128];

	assert_int_equal(md(&b, "GET", CVM_ROLES, NULL), 200);
	assert_string_equal(af_buf_data(&b), "aifleet-inventory-tc");
	af_buf_free(&b);
	assert_int_equal(md(&b, "GET", CVM_ROLES "aifleet-inventory-tc", NULL), 200);
	o = json_tokener_parse(af_buf_data(&b));
	assert_non_null(o);
	take_creds(&c, o, "TmpSecretId", "TmpSecretKey", "Token");
	assert_string_equal(jstr(o, "Code"), "Success");
	assert_expires_in(jstr(o, "Expiration"), 21600);
	assert_true(jget_int(o, "ExpiredTime") >= (int64_t)time(NULL) + 21597);
	json_object_put(o);
	af_buf_free(&b);
	assert_memory_equal(c.id, "AKID", 4);
	tione_with(code, sizeof(code), &c, c.token);
	assert_string_equal(code, "");
	assert_int_equal(md_status("GET", CVM_ROLES "aifleet-inventory", NULL), 404);
}

/* Runs f against a second simulator started with o, then puts g_sim back. */
static void with_sim(const sim_options *o, void (*f)(void))
{
	af_sim *saved = g_sim;
	char base[64];
	memcpy(base, g_base, sizeof(base));
	assert_int_equal(af_sim_start(&g_sim, o), 0);
	snprintf(g_base, sizeof(g_base), "http://127.0.0.1:%u", af_sim_port(g_sim));
	f();
	af_sim_stop(g_sim);
	g_sim = saved;
	memcpy(g_base, base, sizeof(base));
}

static void expiry_run(void)
{
	tmp_creds a, m, t;
	char code[128], tok[160];
	json_object *o;
	af_buf b;

	ali_role_creds(&a, "3600");
	assert_expires_in(a.expiration, 1); /* capped by --credential-ttl */
	assert_reads_member_fleet(&a);
	ecs_token(tok, sizeof(tok), "60");
	ecs_creds(&m, tok);
	assert_expires_in(m.expiration, 1);
	assert_int_equal(md(&b, "GET", CVM_ROLES "aifleet-inventory-tc", NULL), 200);
	o = json_tokener_parse(af_buf_data(&b));
	take_creds(&t, o, "TmpSecretId", "TmpSecretKey", "Token");
	json_object_put(o);
	af_buf_free(&b);
	tione_with(code, sizeof(code), &t, t.token);
	assert_string_equal(code, "");

	usleep(1500000);
	expect_tair_with(&a, a.token, 400, "InvalidSecurityToken.Expired");
	expect_tair_with(&m, m.token, 400, "InvalidSecurityToken.Expired");
	tione_with(code, sizeof(code), &t, t.token);
	assert_string_equal(code, "AuthFailure.TokenFailure");
	/* new ones work again */
	ali_role_creds(&a, NULL);
	assert_reads_member_fleet(&a);
}

static void test_issued_credentials_expire(void **state)
{
	(void)state;
	sim_options o;
	sim_options_defaults(&o);
	o.port = 0;
	o.items = 5;
	o.credential_ttl = 1;
	with_sim(&o, expiry_run);
}

static void imdsv2_run(void)
{
	char tok[160];
	tmp_creds c;
	assert_int_equal(md_status("GET", ECS_ROLES, NULL), 401);
	assert_int_equal(md_status("GET", ECS_ROLES "aifleet-inventory", NULL), 401);
	ecs_token(tok, sizeof(tok), "300");
	assert_int_equal(md_status("GET", ECS_ROLES, tok), 200);
	ecs_creds(&c, tok);
	assert_reads_member_fleet(&c);
	/* the CVM service has no session tokens */
	assert_int_equal(md_status("GET", CVM_ROLES, NULL), 200);
}

static void test_metadata_imdsv2_required(void **state)
{
	(void)state;
	sim_options o;
	sim_options_defaults(&o);
	o.port = 0;
	o.items = 5;
	o.imdsv2_required = true;
	with_sim(&o, imdsv2_run);
}

/* The config file: roles, [simulator], an account only read through a role. */
static void config_roles_run(void)
{
	http_result r;
	tmp_creds c;
	char code[128];
	json_object *o, *cr;
	af_kv q[] = {{"RoleArn", "acs:ram::42:role/reader"},
	             {"RoleSessionName", "s1"},
	             {"ExternalId", "ext-1"}};
	af_kv noext[] = {{"RoleArn", "acs:ram::42:role/reader"}, {"RoleSessionName", "s1"}};
	char body[256];

	assert_int_equal(g_sim->opt.credential_ttl, 30);
	assert_true(g_sim->opt.imdsv2_required);
	ali_assume(&r, "LTAIcentral", "central-secret", NULL, q, 3);
	assert_int_equal(r.status, 200);
	o = res_json(&r);
	assert_true(json_object_object_get_ex(o, "Credentials", &cr));
	take_creds(&c, cr, "AccessKeyId", "AccessKeySecret", "SecurityToken");
	assert_expires_in(jstr(cr, "Expiration"), 30);
	json_object_put(o);
	af_buf_free(&r.body);
	assert_int_equal(tair_with(&c, c.token, code, sizeof(code), NULL), 200);
	/* the ExternalId the role wants */
	ali_call ac = {.action = "AssumeRole",
	               .version = "2015-04-01",
	               .query = noext,
	               .nquery = 2,
	               .ak = "LTAIcentral",
	               .sk = "central-secret"};
	expect_ali(&ac, 403, "NoPermission");
	/* the Tencent role trusts tc-a only */
	snprintf(body, sizeof(body),
	         "{\"RoleArn\":\"qcs::cam::uin/7:roleName/r\",\"RoleSessionName\":\"s1\"}");
	tc_call call = {.body = body,
	                .id = "AKIDb",
	                .sk = "b-secret",
	                .service = "sts",
	                .action = "AssumeRole",
	                .version = "2018-08-13"};
	expect_tc(&call, "AuthFailure.UnauthorizedOperation");
	call.id = "AKIDa";
	call.sk = "a-secret";
	tc_role_creds(&c, &call);
	/* not an instance role */
	assert_int_equal(md_status("GET", CVM_ROLES, NULL), 404);
}

static void test_config_roles(void **state)
{
	(void)state;
	sim_options o;
	char *path = write_config(
	    "[simulator]\ncredential_ttl = 30\nimdsv2_required = true\n"
	    "[account central]\naccess_key_id = LTAIcentral\naccess_key_secret = central-secret\n"
	    "regions = cn-hangzhou\n"
	    "[account member]\nregions = cn-hangzhou\nitems = 3\n"
	    "[account tc-a]\nprovider = tencent\nsecret_id = AKIDa\nsecret_key = a-secret\n"
	    "regions = ap-guangzhou\n"
	    "[account tc-b]\nprovider = tencent\nsecret_id = AKIDb\nsecret_key = b-secret\n"
	    "regions = ap-guangzhou\n"
	    "[role reader]\narn = acs:ram::42:role/reader\naccount = member\ntrust = central\n"
	    "external_id = ext-1\ninstance = true\n"
	    "[role r]\narn = qcs::cam::uin/7:roleName/r\naccount = tc-b\ntrust = tc-a\n");
	sim_options_defaults(&o);
	o.port = 0;
	o.items = 2;
	o.config_file = path;
	with_sim(&o, config_roles_run);
	remove_config(path);

	/* a role must name an account, and trust accounts of its provider */
	static const char *const bad[] = {
	    "[account a]\naccess_key_id = k\naccess_key_secret = s\nregions = r\n"
	    "[role x]\narn = acs:ram::1:role/x\naccount = nobody\n",
	    "[account a]\naccess_key_id = k\naccess_key_secret = s\nregions = r\n"
	    "[account t]\nprovider = tencent\nsecret_id = k\nsecret_key = s\nregions = r\n"
	    "[role x]\narn = acs:ram::1:role/x\naccount = a\ntrust = t\n",
	    "[account a]\naccess_key_id = k\naccess_key_secret = s\nregions = r\n"
	    "[role x]\naccount = a\n",
	    "[account a]\nregions = r\n", /* keys, unless read through a role */
	    "[simulator]\ncredential_ttl = 0\n[account a]\naccess_key_id = k\n"
	    "access_key_secret = s\nregions = r\n",
	    "[account a]\naccess_key_id = k\naccess_key_secret = s\nregions = r\n"
	    "[role x]\narn = acs:ram::1:role/x\naccount = a\noidc_token_file = TOPSECRET\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		af_sim *s = NULL;
		path = write_config(bad[i]);
		o.config_file = path;
		assert_int_equal(af_sim_start(&s, &o), AF_ERR_CONFIG);
		assert_null(s);
		assert_null(strstr(af_error_last(), "TOPSECRET"));
		remove_config(path);
	}
}

/* The member account came last: every other account's fleet is the one
 * the demo had without it. */
static void test_demo_fleet_unchanged(void **state)
{
	(void)state;
	sim_options o;
	af_sim *a = NULL, *b = NULL;
	json_object *da, *db;
	char *path = write_config(
	    "[account demo-ali]\naccess_key_id = LTAI5tSimDemoAli0000001\n"
	    "access_key_secret = sim-demo-ali-secret-NOT-REAL\nregions = cn-hangzhou,cn-beijing\n"
	    "[account demo-ali-sts]\naccess_key_id = STS.SimDemoAliSts000001\n"
	    "access_key_secret = sim-demo-sts-secret-NOT-REAL\n"
	    "security_token = sim-demo-sts-token-NOT-REAL\nregions = cn-shanghai\n"
	    "[account demo-tc]\nprovider = tencent\nsecret_id = AKIDSimDemoTencent000000001\n"
	    "secret_key = sim-demo-tc-secret-NOT-REAL\nregions = ap-guangzhou,ap-shanghai\n");
	sim_options_defaults(&o);
	o.port = 0;
	o.items = 40;
	assert_int_equal(af_sim_start(&a, &o), 0);
	o.config_file = path;
	assert_int_equal(af_sim_start(&b, &o), 0);
	assert_int_equal(a->naccounts, 4);
	assert_string_equal(a->accounts[3].label, "demo-ali-member");
	for (size_t i = 0; i < 3; i++) {
		sim_fleet_dump(a, &da, NULL, a->accounts[i].label, NULL);
		sim_fleet_dump(b, &db, NULL, b->accounts[i].label, NULL);
		assert_true(jget_int(da, "count") > 0);
		assert_string_equal(json_object_to_json_string(da), json_object_to_json_string(db));
		json_object_put(da);
		json_object_put(db);
	}
	sim_fleet_dump(a, &da, NULL, "demo-ali-member", NULL);
	assert_int_equal(jget_int(da, "count"), 2 * 40); /* tair + hologres in cn-hangzhou */
	json_object_put(da);
	af_sim_stop(a);
	af_sim_stop(b);
	remove_config(path);
}

/* The client side (src/net: metadata.c, sts.c, http.c) against these
 * endpoints: what aifleet itself does with an instance or a role. */
static void client_roles_run(void)
{
	af_client_options co;
	af_client *cl = NULL;
	af_session *ss = NULL;
	af_credentials base = {0}, cr = {0};
	af_metadata_options mo = {.endpoint = g_base};
	af_api_response resp;
	af_kv q[] = {{"RegionId", "cn-hangzhou"}};
	af_api_request req = {.style = AF_API_ACS3_RPC,
	                      .endpoint = g_base,
	                      .method = "GET",
	                      .path = "/",
	                      .query = q,
	                      .nquery = 1,
	                      .action = "DescribeTairKVCacheInferInstances",
	                      .version = "2015-01-01",
	                      .provider = AF_PROVIDER_ALIBABA,
	                      .product = "tair_kvcache",
	                      .account = "demo-ali-member",
	                      .region = "cn-hangzhou"};

	unsetenv("ALIBABA_CLOUD_ECS_METADATA");
	unsetenv("ALIBABA_CLOUD_IMDSV1_DISABLED");
	af_client_options_default(&co);
	assert_int_equal(af_client_new(&cl, &co), 0);
	assert_int_equal(af_session_new(&ss, cl), 0);

	/* the ECS RAM role (IMDSv2), then a Tair call with it */
	assert_int_equal(af_credentials_from_ecs_ram_role(&cr, ss, &mo), 0);
	assert_memory_equal(cr.access_key_id, "STS.", 4);
	assert_true(cr.expires_at > (int64_t)time(NULL));
	af_api_response_init(&resp);
	assert_int_equal(af_session_call(ss, &req, &cr, &resp), 0);
	assert_int_equal(jget_int(resp.json, "TotalCount"), 5);
	af_api_response_free(&resp);
	af_credentials_clear(&cr);

	/* AssumeRole, signed by demo-ali */
	base.access_key_id = (char *)ALI_AK;
	base.access_key_secret = (char *)ALI_SK;
	af_assume_role ar = {.role_arn = ROLE_ARN, .endpoint = g_base, .account = "demo-ali"};
	assert_int_equal(af_credentials_assume_role(&cr, ss, AF_PROVIDER_ALIBABA, &base, &ar), 0);
	assert_true(cr.expires_at > (int64_t)time(NULL) + 3500);
	af_api_response_init(&resp);
	assert_int_equal(af_session_call(ss, &req, &cr, &resp), 0);
	assert_int_equal(jget_int(resp.json, "TotalCount"), 5);
	af_api_response_free(&resp);
	af_credentials_clear(&cr);
	ar.role_arn = "acs:ram::1234567890123456:role/nope";
	assert_true(af_credentials_assume_role(&cr, ss, AF_PROVIDER_ALIBABA, &base, &ar) < 0);
	assert_non_null(strstr(af_error_last(), "EntityNotExist.Role"));

	/* Tencent: the CVM role and AssumeRole */
	assert_int_equal(af_credentials_from_cvm_role(&cr, ss, &mo), 0);
	assert_memory_equal(cr.access_key_id, "AKID", 4);
	af_credentials_clear(&cr);
	base.access_key_id = (char *)TC_ID;
	base.access_key_secret = (char *)TC_SK;
	af_assume_role tr = {.role_arn = TC_ROLE_ARN,
	                     .endpoint = g_base,
	                     .account = "demo-tc",
	                     .region = "ap-guangzhou"};
	assert_int_equal(af_credentials_assume_role(&cr, ss, AF_PROVIDER_TENCENT, &base, &tr), 0);
	assert_memory_equal(cr.access_key_id, "AKID", 4);
	assert_true(cr.expires_at > (int64_t)time(NULL) + 3500);
	af_credentials_clear(&cr);

	af_session_free(ss);
	af_client_free(cl);
}

static void test_client_roles(void **state)
{
	(void)state;
	sim_options o;
	sim_options_defaults(&o);
	o.port = 0;
	o.items = 5;
	with_sim(&o, client_roles_run);
}

/* ---- the binary ---- */

static void test_binary_cli(void **state)
{
	(void)state;
	char *dir = tempdir(), pf[512], cmd[1024], url[128];
	pid_t parent = getpid();
	snprintf(pf, sizeof(pf), "%s/port", dir);
	snprintf(cmd, sizeof(cmd), "%s --help", AF_SIM_BINARY);
	FILE *p = popen(cmd, "r");
	char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	assert_int_equal(pclose(p), 0);
	assert_non_null(strstr(buf, "--listen"));
	assert_non_null(strstr(buf, "--port-file"));

	pid_t pid = fork();
	if (pid == 0) {
		af_test_die_with(parent, SIGTERM); /* if an assertion ends the test */
		execl(AF_SIM_BINARY, "aifleet-sim", "--listen", "127.0.0.1:0", "--port-file", pf,
		      "--items", "3", (char *)NULL);
		_exit(127);
	}
	int port = 0;
	for (int i = 0; i < 100 && port == 0; i++) {
		FILE *f = fopen(pf, "r");
		if (f) {
			if (fscanf(f, "%d", &port) != 1)
				port = 0;
			fclose(f);
		}
		if (!port)
			usleep(50000);
	}
	assert_true(port > 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/_sim/health", port);
	http_result r;
	http(&r, "GET", url, NULL, NULL);
	assert_int_equal(r.status, 200);
	af_buf_free(&r.body);
	kill(pid, SIGTERM);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	af_test_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest unit[] = {
	    cmocka_unit_test(test_verifier_official_a3),
	    cmocka_unit_test(test_verifier_official_t1),
	    cmocka_unit_test(test_uri_percent_decoding),
	    cmocka_unit_test(test_id_codec_roundtrip),
	    cmocka_unit_test(test_same_seed_same_fleet),
	    cmocka_unit_test(test_binary_cli),
	    cmocka_unit_test(test_example_config_loads),
	    cmocka_unit_test(test_bad_config_hides_values),
	    cmocka_unit_test(test_random_faults_deterministic),
	    cmocka_unit_test(test_random_data_faults),
	    cmocka_unit_test(test_product_descriptors),
	    cmocka_unit_test(test_products_render_deterministic),
	    cmocka_unit_test(test_config_roles),
	    cmocka_unit_test(test_demo_fleet_unchanged),
	};
	const struct CMUnitTest live[] = {
	    cmocka_unit_test(test_tair_auth),
	    cmocka_unit_test(test_tair_encoded_query_verifies),
	    cmocka_unit_test(test_tair_paging_exactly_once),
	    cmocka_unit_test(test_tione_auth),
	    cmocka_unit_test(test_tione_paging_exactly_once),
	    cmocka_unit_test(test_tione_filters),
	    cmocka_unit_test(test_tione_storage_members),
	    cmocka_unit_test(test_hologres_list_and_get),
	    cmocka_unit_test(test_accounts_see_own_fleet),
	    cmocka_unit_test(test_scripted_fault_page3_once),
	    cmocka_unit_test(test_more_fault_kinds),
	    cmocka_unit_test(test_fault_error_body),
	    cmocka_unit_test(test_fault_short_and_empty_page),
	    cmocka_unit_test(test_fault_lying_total),
	    cmocka_unit_test(test_fault_repeat_page),
	    cmocka_unit_test(test_fault_out_of_range),
	    cmocka_unit_test(test_fault_oversized),
	    cmocka_unit_test(test_fault_scripts_checked),
	    cmocka_unit_test(test_fault_drop_after_request_read),
	    cmocka_unit_test(test_hang_does_not_block_others),
	    cmocka_unit_test(test_tione_rate_limit),
	    cmocka_unit_test(test_mutation),
	    cmocka_unit_test(test_sts_alibaba_assume_role),
	    cmocka_unit_test(test_sts_alibaba_oidc),
	    cmocka_unit_test(test_sts_tencent),
	    cmocka_unit_test(test_metadata_ecs),
	    cmocka_unit_test(test_metadata_cvm),
	    cmocka_unit_test(test_metadata_imdsv2_required),
	    cmocka_unit_test(test_issued_credentials_expire),
	    cmocka_unit_test(test_client_roles),
	};
	const struct CMUnitTest fixtures[] = {
	    cmocka_unit_test(test_fixture_mode_verbatim),
	};
	int fails = 0;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	fails += cmocka_run_group_tests_name("sim_unit", unit, NULL, NULL);
	fails += cmocka_run_group_tests_name("sim_live", live, setup_small, teardown);
	fails += cmocka_run_group_tests_name("sim_fixtures", fixtures, setup_fixtures, teardown);
	tempdirs_remove();
	curl_global_cleanup();
	return fails ? 1 : 0;
}
