/*
 * Instance role credentials from the metadata services, over real HTTP on
 * loopback against a scripted server: the IMDSv2 token flow and its IMDSv1
 * fallback (and its refusal), the role listing, the vendors' document
 * shapes, retries, refusals, and the default chains reaching the role step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aifleet/creds.h"
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/log.h"
#include "aifleet/record.h"
#include "testsrv.h"

#define ECS_DOC                                                                                    \
	"{\"AccessKeyId\":\"STS.ecs-id\",\"AccessKeySecret\":\"ecs-s3cr3t\","                      \
	"\"SecurityToken\":\"ecs-t0ken\",\"Expiration\":\"2026-12-01T18:00:00Z\","                 \
	"\"LastUpdated\":\"2026-12-01T12:00:00Z\",\"Code\":\"Success\"}"
#define CVM_DOC                                                                                    \
	"{\"TmpSecretId\":\"AKIDcvm\",\"TmpSecretKey\":\"cvm-s3cr3t\",\"Token\":\"cvm-t0ken\","   \
	"\"ExpiredTime\":1796148000,\"Expiration\":\"2026-12-01T18:00:00Z\",\"Code\":\"Success\"}"

typedef ts_client fixture;

static int setup(void **state)
{
	unsetenv("ALIBABA_CLOUD_ECS_METADATA");
	unsetenv("ALIBABA_CLOUD_IMDSV1_DISABLED");
	return ts_client_setup(state);
}

static int teardown(void **state)
{
	return ts_client_teardown(state);
}

static void assert_no_secret(void)
{
	assert_null(strstr(af_error_last(), "s3cr3t"));
	assert_null(strstr(af_error_last(), "t0ken"));
}

static void test_ecs_imdsv2_flow(void **state)
{
	fixture *f = *state;
	const ts_reply script[] = {{.body = "v2-session-token"}, {.body = "inventory-role\n"},
				   {.body = ECS_DOC}};
	testsrv *srv = ts_start(script, 3);
	af_metadata_options o = {.endpoint = ts_url(srv)};
	af_credentials c;

	assert_int_equal(af_credentials_from_ecs_ram_role(&c, f->session, &o), 0);
	assert_string_equal(c.access_key_id, "STS.ecs-id");
	assert_string_equal(c.access_key_secret, "ecs-s3cr3t");
	assert_string_equal(c.security_token, "ecs-t0ken");
	assert_int_equal(c.expires_at, 1796148000); /* 2026-12-01T18:00:00Z */
	af_credentials_clear(&c);

	assert_int_equal(ts_count(srv), 3);
	assert_string_equal(ts_get(srv, 0)->method, "PUT");
	assert_string_equal(ts_get(srv, 0)->path, "/latest/api/token");
	assert_string_equal(ts_header(ts_get(srv, 0), "X-aliyun-ecs-metadata-token-ttl-seconds"),
			    "21600");
	assert_string_equal(ts_get(srv, 1)->method, "GET");
	assert_string_equal(ts_get(srv, 1)->path, "/latest/meta-data/ram/security-credentials/");
	assert_string_equal(ts_get(srv, 2)->path,
			    "/latest/meta-data/ram/security-credentials/inventory-role");
	for (size_t i = 1; i < 3; i++)
		assert_string_equal(ts_header(ts_get(srv, i), "X-aliyun-ecs-metadata-token"),
				    "v2-session-token");
	ts_stop(srv);
}

/* A role named by the account (or ALIBABA_CLOUD_ECS_METADATA) is not
 * looked up; a 5xx is retried. */
static void test_ecs_named_role_and_retry(void **state)
{
	fixture *f = *state;
	const ts_reply script[] = {{.status = 503}, {.body = "tok"}, {.status = 500},
				   {.body = ECS_DOC}};
	testsrv *srv = ts_start(script, 4);
	af_metadata_options o = {.endpoint = ts_url(srv)};
	af_credentials c;

	setenv("ALIBABA_CLOUD_ECS_METADATA", "from-env", 1);
	assert_int_equal(af_credentials_from_ecs_ram_role(&c, f->session, &o), 0);
	af_credentials_clear(&c);
	unsetenv("ALIBABA_CLOUD_ECS_METADATA");
	assert_int_equal(ts_count(srv), 4);
	assert_string_equal(ts_get(srv, 3)->path,
			    "/latest/meta-data/ram/security-credentials/from-env");
	ts_stop(srv);
}

/* No IMDSv2 token: IMDSv1 (no token header) unless it is disabled. */
static void test_ecs_imdsv1_fallback_and_refusal(void **state)
{
	fixture *f = *state;
	const ts_reply script[] = {{.status = 403, .body = "forbidden"}, {.body = ECS_DOC},
				   {.status = 404, .body = "not found"}};
	testsrv *srv = ts_start(script, 3);
	af_metadata_options o = {.endpoint = ts_url(srv), .role = "named"};
	af_credentials c;

	assert_int_equal(af_credentials_from_ecs_ram_role(&c, f->session, &o), 0);
	assert_string_equal(c.access_key_id, "STS.ecs-id");
	af_credentials_clear(&c);
	assert_string_equal(ts_get(srv, 1)->path, "/latest/meta-data/ram/security-credentials/named");
	assert_null(ts_header(ts_get(srv, 1), "X-aliyun-ecs-metadata-token"));

	setenv("ALIBABA_CLOUD_IMDSV1_DISABLED", "true", 1);
	assert_int_equal(af_credentials_from_ecs_ram_role(&c, f->session, &o), AF_ERR_CONFIG);
	unsetenv("ALIBABA_CLOUD_IMDSV1_DISABLED");
	assert_non_null(strstr(af_error_last(), "IMDSv1 is disabled"));
	assert_non_null(strstr(af_error_last(), "HTTP 404"));
	assert_int_equal(ts_count(srv), 3); /* no credentials call after the refusal */
	assert_null(c.access_key_id);
	ts_stop(srv);
}

static void test_ecs_bad_answers(void **state)
{
	fixture *f = *state;
	const ts_reply script[] = {
		{.body = "tok"}, {.body = "{\"Code\":\"Failed\",\"AccessKeySecret\":\"x-s3cr3t\"}"},
		{.body = "tok"}, {.body = "{\"Code\":\"Success\",\"AccessKeyId\":\"id\","
					  "\"AccessKeySecret\":\"x-s3cr3t\"}"},
		{.body = "tok"}, {.body = "not json, s3cr3t"},
		{.body = "tok"}, {.body = "bad role name with spaces"},
	};
	testsrv *srv = ts_start(script, 8);
	af_metadata_options o = {.endpoint = ts_url(srv), .role = "r"};
	af_credentials c;

	assert_int_equal(af_credentials_from_ecs_ram_role(&c, f->session, &o), AF_ERR_AUTH);
	assert_non_null(strstr(af_error_last(), "Code Failed"));
	assert_no_secret();
	assert_int_equal(af_credentials_from_ecs_ram_role(&c, f->session, &o), AF_ERR_DATA);
	assert_non_null(strstr(af_error_last(), "lacks"));
	assert_no_secret();
	assert_int_equal(af_credentials_from_ecs_ram_role(&c, f->session, &o), AF_ERR_DATA);
	assert_no_secret();
	o.role = NULL;
	assert_int_equal(af_credentials_from_ecs_ram_role(&c, f->session, &o), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "is a role attached"));
	assert_null(c.access_key_id);
	ts_stop(srv);
}

static void test_cvm_role_flow(void **state)
{
	fixture *f = *state;
	const ts_reply script[] = {{.body = "inventory"}, {.body = CVM_DOC}, {.status = 404}};
	testsrv *srv = ts_start(script, 3);
	af_metadata_options o = {.endpoint = ts_url(srv)};
	af_credentials c;

	assert_int_equal(af_credentials_from_cvm_role(&c, f->session, &o), 0);
	assert_string_equal(c.access_key_id, "AKIDcvm");
	assert_string_equal(c.access_key_secret, "cvm-s3cr3t");
	assert_string_equal(c.security_token, "cvm-t0ken");
	assert_int_equal(c.expires_at, 1796148000);
	af_credentials_clear(&c);
	assert_string_equal(ts_get(srv, 0)->path, "/latest/meta-data/cam/security-credentials/");
	assert_string_equal(ts_get(srv, 1)->path,
			    "/latest/meta-data/cam/security-credentials/inventory");
	/* no role attached */
	assert_int_equal(af_credentials_from_cvm_role(&c, f->session, &o), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "HTTP 404"));
	ts_stop(srv);
}

/* Off an instance nothing answers: a clear, quick error (connect refused
 * on a closed loopback port, retried, then given up). */
static void test_no_metadata_service(void **state)
{
	fixture *f = *state;
	af_metadata_options o = {.endpoint = "http://127.0.0.1:9"};
	af_credentials c;

	assert_int_equal(af_credentials_from_cvm_role(&c, f->session, &o), AF_ERR_TRANSIENT);
	assert_non_null(strstr(af_error_last(), "CVM role"));
	assert_non_null(strstr(af_error_last(), "127.0.0.1:9"));
}

/* A local credentials server: GET the URI, the ECS document's shape. */
static void test_credentials_uri(void **state)
{
	fixture *f = *state;
	const ts_reply script[] = {{.body = ECS_DOC}, {.status = 403, .body = "no"}};
	testsrv *srv = ts_start(script, 2);
	char uri[256];
	af_credentials c;

	snprintf(uri, sizeof(uri), "%s/v1/credentials?role=inventory", ts_url(srv));
	assert_int_equal(af_credentials_from_uri(&c, f->session, uri), 0);
	assert_string_equal(c.access_key_id, "STS.ecs-id");
	assert_string_equal(c.security_token, "ecs-t0ken");
	af_credentials_clear(&c);
	assert_string_equal(ts_get(srv, 0)->method, "GET");
	assert_string_equal(ts_get(srv, 0)->path, "/v1/credentials");
	assert_int_equal(af_credentials_from_uri(&c, f->session, uri), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "HTTP 403"));
	assert_int_equal(af_credentials_from_uri(&c, f->session, "file:///etc/passwd"), AF_ERR_CONFIG);
	assert_null(c.access_key_id);
	ts_stop(srv);
}

/* The default chains reach the instance role step when nothing before it
 * is configured, and use it. */
static void test_default_chains_use_the_instance_role(void **state)
{
	static const char *const vars[] = {
		"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
		"ALIBABA_CLOUD_CONFIG_FILE", "ALIBABA_CLOUD_CREDENTIALS_FILE",
		"ALIBABA_CLOUD_ECS_METADATA_DISABLED", "TENCENTCLOUD_SECRET_ID",
		"TENCENTCLOUD_CREDENTIALS_FILE"};
	fixture *f = *state;
	const ts_reply script[] = {{.body = "tok"}, {.body = "role"}, {.body = ECS_DOC},
				   {.body = "role"}, {.body = CVM_DOC}};
	testsrv *srv = ts_start(script, 5);
	af_chain_options o = {.session = f->session,
			      .tencent_system_file = "/nonexistent/tencentcloud-credentials",
			      .metadata = {.endpoint = ts_url(srv)}};
	char *saved = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	const char *step;
	af_credentials c;

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	setenv("HOME", "/nonexistent/aifleet-home", 1);
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_ALIBABA, &o, &step), 0);
	assert_non_null(strstr(step, "ECS RAM role"));
	assert_string_equal(c.access_key_id, "STS.ecs-id");
	af_credentials_clear(&c);
	assert_int_equal(af_credentials_default(&c, AF_PROVIDER_TENCENT, &o, &step), 0);
	assert_non_null(strstr(step, "CVM role"));
	assert_string_equal(c.access_key_id, "AKIDcvm");
	af_credentials_clear(&c);
	if (saved)
		setenv("HOME", saved, 1);
	free(saved);
	ts_stop(srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ecs_imdsv2_flow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ecs_named_role_and_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ecs_imdsv1_fallback_and_refusal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ecs_bad_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cvm_role_flow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_metadata_service, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credentials_uri, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_chains_use_the_instance_role, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
