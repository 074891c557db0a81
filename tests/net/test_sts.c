/*
 * STS AssumeRole over real HTTP on loopback against a scripted server: the
 * request shapes of both vendors (action, version, parameters, signed with
 * the base credentials), the answers' shapes, refusals, and a whole sync in
 * which a member account's scope is collected with the role a central
 * account assumed -- the inventory call signed with the assumed key and
 * carrying its token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "aifleet/config.h"
#include "aifleet/creds.h"
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/log.h"
#include "aifleet/record.h"
#include "aifleet/sync.h"
#include "testdb.h"
#include "testsrv.h"
#include "testutil.h"

#define ROLE "acs:ram::1234567890:role/aifleet-inventory"
#define ALI_ANSWER                                                                                 \
	"{\"RequestId\":\"sts-1\",\"AssumedRoleUser\":{\"Arn\":\"" ROLE "/aifleet\","              \
	"\"AssumedRoleId\":\"3001:aifleet\"},\"Credentials\":{\"AccessKeyId\":\"STS.assumed\","   \
	"\"AccessKeySecret\":\"assumed-s3cr3t\",\"SecurityToken\":\"assumed-t0ken\","              \
	"\"Expiration\":\"2099-01-01T00:00:00Z\"}}"
#define TC_ANSWER                                                                                  \
	"{\"Response\":{\"Credentials\":{\"Token\":\"tc-t0ken\",\"TmpSecretId\":\"AKIDassumed\","  \
	"\"TmpSecretKey\":\"tc-s3cr3t\"},\"ExpiredTime\":4070908800,"                              \
	"\"Expiration\":\"2099-01-01T00:00:00Z\",\"RequestId\":\"sts-2\"}}"

#define ALI_ANSWER2                                                                                \
	"{\"RequestId\":\"sts-3\",\"Credentials\":{\"AccessKeyId\":\"STS.member\","             \
	"\"AccessKeySecret\":\"member-s3cr3t\",\"SecurityToken\":\"member-t0ken\","                \
	"\"Expiration\":\"2099-01-01T00:00:00Z\"}}"

static const af_credentials central = {"LTAIcentral", "central-s3cr3t", NULL, 0};

typedef ts_client fixture;

static int setup(void **state)
{
	return ts_client_setup(state);
}

static int teardown(void **state)
{
	return ts_client_teardown(state);
}

static const char *arg(const ts_arrival *a, const char *name)
{
	for (size_t i = 0; i < a->nargs; i++)
		if (strcmp(a->args[i].key, name) == 0)
			return a->args[i].value;
	return NULL;
}

static void assert_no_secret(void)
{
	assert_null(strstr(af_error_last(), "s3cr3t"));
	assert_null(strstr(af_error_last(), "t0ken"));
}

static void test_alibaba_request_and_answer(void **state)
{
	fixture *f = *state;
	const ts_reply script[] = {{.body = ALI_ANSWER}};
	testsrv *srv = ts_start(script, 1);
	af_assume_role r = {.role_arn = ROLE, .external_id = "ext-42", .duration_seconds = 900,
			    .endpoint = ts_url(srv), .account = "member"};
	const ts_arrival *a;
	af_credentials c;

	assert_int_equal(af_credentials_assume_role(&c, f->session, AF_PROVIDER_ALIBABA, &central,
						    &r),
			 0);
	assert_string_equal(c.access_key_id, "STS.assumed");
	assert_string_equal(c.access_key_secret, "assumed-s3cr3t");
	assert_string_equal(c.security_token, "assumed-t0ken");
	assert_int_equal(c.expires_at, 4070908800);
	af_credentials_clear(&c);

	assert_int_equal(ts_count(srv), 1);
	a = ts_get(srv, 0);
	assert_string_equal(a->method, "GET");
	assert_string_equal(ts_header(a, "x-acs-action"), "AssumeRole");
	assert_string_equal(ts_header(a, "x-acs-version"), "2015-04-01");
	assert_string_equal(arg(a, "RoleArn"), ROLE);
	assert_string_equal(arg(a, "RoleSessionName"), "aifleet");
	assert_string_equal(arg(a, "DurationSeconds"), "900");
	assert_string_equal(arg(a, "ExternalId"), "ext-42");
	assert_null(arg(a, "Policy"));
	assert_non_null(strstr(ts_header(a, "Authorization"),
			       "ACS3-HMAC-SHA256 Credential=LTAIcentral,"));
	ts_stop(srv);
}

static void test_tencent_request_and_answer(void **state)
{
	static const af_credentials tc_central = {"AKIDcentral", "tc-central-s3cr3t", NULL, 0};
	fixture *f = *state;
	const ts_reply script[] = {{.body = TC_ANSWER}};
	testsrv *srv = ts_start(script, 1);
	af_assume_role r = {.role_arn = "qcs::cam::uin/100000000001:roleName/aifleet",
			    .session_name = "inventory", .policy = "{\"version\":\"2.0\"}",
			    .endpoint = ts_url(srv), .region = "ap-shanghai", .account = "member"};
	json_object *body, *v;
	const ts_arrival *a;
	af_credentials c;

	assert_int_equal(af_credentials_assume_role(&c, f->session, AF_PROVIDER_TENCENT,
						    &tc_central, &r),
			 0);
	assert_string_equal(c.access_key_id, "AKIDassumed");
	assert_string_equal(c.access_key_secret, "tc-s3cr3t");
	assert_string_equal(c.security_token, "tc-t0ken");
	assert_int_equal(c.expires_at, 4070908800);
	af_credentials_clear(&c);

	a = ts_get(srv, 0);
	assert_string_equal(a->method, "POST");
	assert_string_equal(ts_header(a, "X-TC-Action"), "AssumeRole");
	assert_string_equal(ts_header(a, "X-TC-Version"), "2018-08-13");
	assert_string_equal(ts_header(a, "X-TC-Region"), "ap-shanghai");
	assert_non_null(strstr(ts_header(a, "Authorization"), "Credential=AKIDcentral/"));
	assert_non_null(strstr(ts_header(a, "Authorization"), "/sts/tc3_request"));
	assert_non_null(body = json_tokener_parse(a->body));
	assert_true(json_object_object_get_ex(body, "RoleArn", &v));
	assert_string_equal(json_object_get_string(v), r.role_arn);
	assert_true(json_object_object_get_ex(body, "RoleSessionName", &v));
	assert_string_equal(json_object_get_string(v), "inventory");
	assert_true(json_object_object_get_ex(body, "DurationSeconds", &v));
	assert_int_equal(json_object_get_int(v), 3600);
	assert_true(json_object_object_get_ex(body, "Policy", &v));
	assert_string_equal(json_object_get_string(v), "{\"version\":\"2.0\"}");
	json_object_put(body);
	ts_stop(srv);
}

/* STS says no, or answers without credentials: named, nothing kept. */
static void test_refusals(void **state)
{
	fixture *f = *state;
	const ts_reply script[] = {
		{.status = 403, .body = "{\"RequestId\":\"sts-9\",\"Code\":\"NoPermission\","
					"\"Message\":\"You are not authorized to do this action.\"}"},
		{.body = "{\"RequestId\":\"sts-8\",\"Credentials\":{\"AccessKeyId\":\"x\"}}"},
	};
	testsrv *srv = ts_start(script, 2);
	af_assume_role r = {.role_arn = ROLE, .endpoint = ts_url(srv), .account = "member"};
	af_credentials c;

	assert_int_equal(af_credentials_assume_role(&c, f->session, AF_PROVIDER_ALIBABA, &central,
						    &r),
			 AF_ERR_AUTH);
	assert_non_null(strstr(af_error_last(), "NoPermission"));
	assert_non_null(strstr(af_error_last(), ROLE));
	assert_non_null(strstr(af_error_last(), "sts-9"));
	assert_no_secret();
	assert_int_equal(af_credentials_assume_role(&c, f->session, AF_PROVIDER_ALIBABA, &central,
						    &r),
			 AF_ERR_DATA);
	assert_non_null(strstr(af_error_last(), "lacks"));
	assert_null(c.access_key_id);
	r.role_arn = NULL;
	assert_int_equal(af_credentials_assume_role(&c, f->session, AF_PROVIDER_ALIBABA, &central,
						    &r),
			 AF_ERR_CONFIG);
	ts_stop(srv);
}

/* Writes an OIDC token file (as Kubernetes projects it: world-readable,
 * a trailing newline) and returns its path (caller frees). */
static char *token_file(const char *dir, const char *token)
{
	char *path = malloc(1200);
	FILE *fp;

	assert_non_null(path);
	snprintf(path, 1200, "%s/token", dir);
	assert_non_null(fp = fopen(path, "w"));
	fprintf(fp, "%s\n", token);
	fclose(fp);
	return path;
}

#define OIDC_TOKEN "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.oidc-t0ken-sig"

/* RRSA: AssumeRoleWithOIDC is not signed, the token travels in the form
 * body (never the URL, which the debug log shows), the token file is read
 * on each call, and no error repeats the token. */
static void test_alibaba_oidc(void **state)
{
	fixture *f = *state;
	const ts_reply script[] = {
		{.body = ALI_ANSWER},
		{.status = 400, .body = "{\"RequestId\":\"o2\",\"Code\":\"AuthenticationFail.OIDCToken."
					"Invalid\",\"Message\":\"bad token " OIDC_TOKEN "\"}"},
	};
	testsrv *srv = ts_start(script, 2);
	char *dir = af_test_tempdir(), *tok = token_file(dir, OIDC_TOKEN);
	const ts_arrival *a;
	af_credentials c;

	setenv("ALIBABA_CLOUD_ROLE_ARN", ROLE, 1);
	setenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1234567890:oidc-provider/ack-rrsa", 1);
	setenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE", tok, 1);
	assert_int_equal(af_credentials_from_oidc_env(&c, f->session, AF_PROVIDER_ALIBABA,
						      ts_url(srv)),
			 0);
	assert_string_equal(c.access_key_id, "STS.assumed");
	af_credentials_clear(&c);
	a = ts_get(srv, 0);
	assert_string_equal(a->method, "POST");
	assert_string_equal(ts_header(a, "x-acs-action"), "AssumeRoleWithOIDC");
	assert_string_equal(ts_header(a, "x-acs-version"), "2015-04-01");
	assert_null(ts_header(a, "Authorization"));
	assert_non_null(strstr(ts_header(a, "content-type"), "x-www-form-urlencoded"));
	assert_null(strstr(a->path, "t0ken"));
	assert_null(arg(a, "OIDCToken"));
	assert_non_null(a->body);
	assert_non_null(strstr(a->body, "OIDCToken=" OIDC_TOKEN "&")); /* no newline kept */
	assert_non_null(strstr(a->body, "OIDCProviderArn=acs%3Aram%3A%3A1234567890%3Aoidc-provider"));
	assert_non_null(strstr(a->body, "RoleSessionName=aifleet"));

	/* refused: named, and the token echoed by the server is redacted */
	assert_int_equal(af_credentials_from_oidc_env(&c, f->session, AF_PROVIDER_ALIBABA,
						      ts_url(srv)),
			 AF_ERR_AUTH);
	assert_non_null(strstr(af_error_last(), "AuthenticationFail.OIDCToken.Invalid"));
	assert_non_null(strstr(af_error_last(), ROLE));
	assert_no_secret();
	assert_null(strstr(af_error_last(), "oidc-t0ken"));

	/* a missing token file is a configuration error naming it */
	remove(tok);
	assert_int_equal(af_credentials_from_oidc_env(&c, f->session, AF_PROVIDER_ALIBABA,
						      ts_url(srv)),
			 AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), tok));
	unsetenv("ALIBABA_CLOUD_ROLE_ARN");
	unsetenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN");
	unsetenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE");
	free(tok);
	af_test_rmtree(dir);
	free(dir);
	ts_stop(srv);
}

/* TKE: AssumeRoleWithWebIdentity, "Authorization: SKIP", TKE_REGION as
 * X-TC-Region, the token in the JSON body. */
static void test_tke_web_identity(void **state)
{
	fixture *f = *state;
	const ts_reply script[] = {{.body = TC_ANSWER}};
	testsrv *srv = ts_start(script, 1);
	char *dir = af_test_tempdir(), *tok = token_file(dir, OIDC_TOKEN);
	json_object *body, *v;
	const ts_arrival *a;
	af_credentials c;

	setenv("TKE_ROLE_ARN", "qcs::cam::uin/100000000001:roleName/tke-aifleet", 1);
	setenv("TKE_PROVIDER_ID", "cls-abc123", 1);
	setenv("TKE_WEB_IDENTITY_TOKEN_FILE", tok, 1);
	setenv("TKE_REGION", "ap-beijing", 1);
	assert_int_equal(af_credentials_from_oidc_env(&c, f->session, AF_PROVIDER_TENCENT,
						      ts_url(srv)),
			 0);
	assert_string_equal(c.access_key_id, "AKIDassumed");
	assert_string_equal(c.security_token, "tc-t0ken");
	af_credentials_clear(&c);
	a = ts_get(srv, 0);
	assert_string_equal(ts_header(a, "X-TC-Action"), "AssumeRoleWithWebIdentity");
	assert_string_equal(ts_header(a, "X-TC-Version"), "2018-08-13");
	assert_string_equal(ts_header(a, "X-TC-Region"), "ap-beijing");
	assert_string_equal(ts_header(a, "Authorization"), "SKIP");
	assert_non_null(body = json_tokener_parse(a->body));
	assert_true(json_object_object_get_ex(body, "WebIdentityToken", &v));
	assert_string_equal(json_object_get_string(v), OIDC_TOKEN);
	assert_true(json_object_object_get_ex(body, "ProviderId", &v));
	assert_string_equal(json_object_get_string(v), "cls-abc123");
	json_object_put(body);
	unsetenv("TKE_ROLE_ARN");
	unsetenv("TKE_PROVIDER_ID");
	unsetenv("TKE_WEB_IDENTITY_TOKEN_FILE");
	unsetenv("TKE_REGION");
	free(tok);
	af_test_rmtree(dir);
	free(dir);
	ts_stop(srv);
}

/* At debug level, with every header and URL logged: the STS and OIDC
 * flows write no key, secret, token or OIDC token to the log. stderr goes
 * to a file for the length of the test. */
static void test_debug_log_holds_no_secret(void **state)
{
	fixture *f = *state;
	const ts_reply script[] = {{.body = ALI_ANSWER}, {.body = ALI_ANSWER}, {.body = TC_ANSWER}};
	testsrv *srv = ts_start(script, 3);
	char *dir = af_test_tempdir(), *tok = token_file(dir, OIDC_TOKEN), log_path[1200], *log;
	af_assume_role r = {.role_arn = ROLE, .endpoint = ts_url(srv), .account = "member"};
	af_credentials c;
	int saved = dup(2), fd;
	size_t len = 0;

	snprintf(log_path, sizeof(log_path), "%s/stderr.log", dir);
	assert_true((fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
	fflush(stderr);
	assert_true(dup2(fd, 2) >= 0);
	close(fd);
	af_log_setup(AF_LOG_DEBUG, AF_LOG_TEXT);

	assert_int_equal(af_credentials_assume_role(&c, f->session, AF_PROVIDER_ALIBABA, &central,
						    &r),
			 0);
	af_credentials_clear(&c);
	setenv("ALIBABA_CLOUD_ROLE_ARN", ROLE, 1);
	setenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1:oidc-provider/p", 1);
	setenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE", tok, 1);
	assert_int_equal(af_credentials_from_oidc_env(&c, f->session, AF_PROVIDER_ALIBABA,
						      ts_url(srv)),
			 0);
	af_credentials_clear(&c);
	setenv("TKE_ROLE_ARN", "qcs::cam::uin/1:roleName/r", 1);
	setenv("TKE_PROVIDER_ID", "cls-1", 1);
	setenv("TKE_WEB_IDENTITY_TOKEN_FILE", tok, 1);
	setenv("TKE_REGION", "ap-beijing", 1);
	assert_int_equal(af_credentials_from_oidc_env(&c, f->session, AF_PROVIDER_TENCENT,
						      ts_url(srv)),
			 0);
	af_credentials_clear(&c);

	af_log_setup(AF_LOG_ERROR, AF_LOG_TEXT);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	log = af_test_read_file(log_path, &len);
	assert_non_null(log);
	assert_non_null(strstr(log, "AssumeRoleWithOIDC")); /* it did log, at debug level */
	assert_null(strstr(log, "s3cr3t"));
	assert_null(strstr(log, "t0ken"));
	assert_null(strstr(log, "oidc-t0ken"));
	free(log);
	for (const char *const *v = (const char *const[]){"ALIBABA_CLOUD_ROLE_ARN",
							  "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
							  "ALIBABA_CLOUD_OIDC_TOKEN_FILE", "TKE_ROLE_ARN",
							  "TKE_PROVIDER_ID", "TKE_WEB_IDENTITY_TOKEN_FILE",
							  "TKE_REGION", NULL};
	     *v; v++)
		unsetenv(*v);
	free(tok);
	af_test_rmtree(dir);
	free(dir);
	ts_stop(srv);
}

/* The identity that assumes the roles: its keys come from the environment
 * (sync_accounts sets them). */
#define CENTRAL                                                                                    \
	"[account central]\nprovider = alibaba\n"                                                  \
	"access_key_id_env = STS_TEST_ID\naccess_key_secret_env = STS_TEST_SECRET\n"

/* Syncs the account sections `accounts` into `db` (a [database] section is
 * put in front), with the central keys in the environment for the run. */
static int sync_accounts(const af_testdb *db, const char *accounts, af_sync_result *res)
{
	char *dir = af_test_tempdir(), path[1200];
	af_sync_options o = {0};
	af_config cfg;
	FILE *fp;
	int err;

	snprintf(path, sizeof(path), "%s/aifleet.ini", dir);
	assert_non_null(fp = fopen(path, "w"));
	fprintf(fp, "[database]\nconninfo = %s\n%s", db->conninfo, accounts);
	fclose(fp);
	chmod(path, 0600);
	setenv("STS_TEST_ID", central.access_key_id, 1);
	setenv("STS_TEST_SECRET", central.access_key_secret, 1);
	af_config_init(&cfg);
	assert_int_equal(af_config_load(&cfg, path), 0);
	err = af_sync_run(&cfg, &o, res);
	af_sync_result_free(res); /* the outcomes point into cfg */
	af_config_free(&cfg);
	unsetenv("STS_TEST_ID");
	unsetenv("STS_TEST_SECRET");
	af_test_rmtree(dir);
	free(dir);
	return err;
}

#define EMPTY_TAIR_PAGE                                                                            \
	"{\"RequestId\":\"p1\",\"TotalCount\":0,\"PageNumber\":1,\"PageSize\":100,"             \
	"\"Instances\":{\"TairInferInstanceDTO\":[]}}"

/* A whole sync: the member account's credentials are the role the central
 * account assumed; the Tair call is signed with them. */
static void test_sync_with_an_assumed_role(void **state)
{
	const ts_reply script[] = {{.body = ALI_ANSWER}, {.body = EMPTY_TAIR_PAGE}};
	testsrv *srv = ts_start(script, 2);
	char text[4096];
	af_sync_result res;
	const ts_arrival *a;
	af_testdb db;

	af_testdb_create(&db);
	snprintf(text, sizeof(text),
		 CENTRAL "[account member]\nprovider = alibaba\nsource = central\nrole_arn = " ROLE "\n"
		 "sts_endpoint = %s\nregions = cn-hangzhou\nproducts = tair_kvcache\n"
		 "tair_kvcache_endpoint = %s\n",
		 ts_url(srv), ts_url(srv));
	assert_int_equal(sync_accounts(&db, text, &res), 0);
	assert_int_equal(res.scopes, 1); /* the central identity collects nothing itself */
	assert_int_equal(res.complete, 1);
	assert_int_equal(ts_count(srv), 2);
	assert_non_null(strstr(ts_header(ts_get(srv, 0), "Authorization"), "Credential=LTAIcentral,"));
	a = ts_get(srv, 1);
	assert_string_equal(ts_header(a, "x-acs-action"), "DescribeTairKVCacheInferInstances");
	assert_non_null(strstr(ts_header(a, "Authorization"), "Credential=STS.assumed,"));
	assert_string_equal(ts_header(a, "x-acs-security-token"), "assumed-t0ken");
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.scope_state"
						  " WHERE account = 'member' AND last_state = 'complete'"),
			 1);
	af_testdb_drop(&db);
	ts_stop(srv);
}

/* Two hops (ChainableRamRoleArn): central assumes the hub's role, whose
 * credentials assume the member's. */
static void test_two_hop_chain(void **state)
{
	const ts_reply script[] = {{.body = ALI_ANSWER}, {.body = ALI_ANSWER2},
				   {.body = EMPTY_TAIR_PAGE}};
	testsrv *srv = ts_start(script, 3);
	char text[4096];
	af_sync_result res;
	af_testdb db;

	af_testdb_create(&db);
	snprintf(text, sizeof(text),
		 CENTRAL "[account hub]\nprovider = alibaba\nsource = central\nrole_arn = " ROLE "\n"
		 "sts_endpoint = %s\n"
		 "[account member]\nprovider = alibaba\nsource = hub\n"
		 "role_arn = acs:ram::2222:role/member\nsts_endpoint = %s\nregions = cn-hangzhou\n"
		 "products = tair_kvcache\ntair_kvcache_endpoint = %s\n",
		 ts_url(srv), ts_url(srv), ts_url(srv));
	assert_int_equal(sync_accounts(&db, text, &res), 0);
	assert_int_equal(res.complete, 1);
	assert_int_equal(ts_count(srv), 3);
	assert_non_null(strstr(ts_header(ts_get(srv, 0), "Authorization"), "Credential=LTAIcentral,"));
	assert_non_null(strstr(ts_header(ts_get(srv, 1), "Authorization"), "Credential=STS.assumed,"));
	assert_string_equal(ts_header(ts_get(srv, 1), "x-acs-security-token"), "assumed-t0ken");
	assert_non_null(strstr(ts_header(ts_get(srv, 2), "Authorization"), "Credential=STS.member,"));
	af_testdb_drop(&db);
	ts_stop(srv);
}

/* STS refuses one member's role: that account's scope fails, named and
 * counted as refused credentials (the CLI exits 78), nothing of it is
 * touched; the other account is collected and committed. */
static void test_refused_role_fails_only_its_account(void **state)
{
	const ts_reply script[] = {
		{.status = 403, .body = "{\"RequestId\":\"sts-7\",\"Code\":\"NoPermission\","
					"\"Message\":\"not authorized\"}"},
		{.body = EMPTY_TAIR_PAGE},
	};
	testsrv *srv = ts_start(script, 2);
	char text[4096], *why;
	af_sync_result res;
	af_testdb db;

	af_testdb_create(&db);
	snprintf(text, sizeof(text),
		 CENTRAL "regions = cn-beijing\nproducts = tair_kvcache\ntair_kvcache_endpoint = %s\n"
		 "[account member]\nprovider = alibaba\nsource = central\nrole_arn = " ROLE "\n"
		 "sts_endpoint = %s\nregions = cn-hangzhou\nproducts = tair_kvcache\n"
		 "tair_kvcache_endpoint = %s\n",
		 ts_url(srv), ts_url(srv), ts_url(srv));
	assert_int_equal(sync_accounts(&db, text, &res), 0);
	assert_int_equal(res.scopes, 2);
	assert_int_equal(res.complete, 1);
	assert_int_equal(res.failed, 1);
	assert_int_equal(res.auth_failures, 1);
	assert_int_equal(ts_count(srv), 2);
	why = af_testdb_query_value(&db, "SELECT last_error FROM aifleet.scope_state"
					 " WHERE account = 'member' AND last_state = 'failed'");
	assert_non_null(why);
	assert_non_null(strstr(why, "NoPermission"));
	assert_non_null(strstr(why, ROLE));
	assert_null(strstr(why, "s3cr3t"));
	free(why);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.scope_state"
						  " WHERE account = 'central' AND last_state = 'complete'"),
			 1);
	af_testdb_drop(&db);
	ts_stop(srv);
}

/* An Alibaba STS answer whose credentials expire `in` seconds from now. */
static char *sts_answer(const char *id, long in)
{
	char when[32], *text = malloc(512);
	time_t t = time(NULL) + in;
	struct tm tm;

	assert_non_null(text);
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(text, 512,
		 "{\"RequestId\":\"s-%s\",\"Credentials\":{\"AccessKeyId\":\"%s\","
		 "\"AccessKeySecret\":\"sec-s3cr3t-%s\",\"SecurityToken\":\"tok-t0ken-%s\","
		 "\"Expiration\":\"%s\"}}",
		 id, id, id, id, when);
	return text;
}

/* One member account read through a role, against `script`; returns the
 * sync's result code and fills *res. */
static int sync_member(const ts_reply *script, size_t n, testsrv **srv, af_testdb *db,
		       af_sync_result *res)
{
	char text[4096];

	*srv = ts_start(script, n);
	af_testdb_create(db);
	snprintf(text, sizeof(text),
		 CENTRAL "[account member]\nprovider = alibaba\nsource = central\nrole_arn = " ROLE "\n"
		 "sts_endpoint = %s\nregions = cn-hangzhou\nproducts = tair_kvcache\n"
		 "tair_kvcache_endpoint = %s\n",
		 ts_url(*srv), ts_url(*srv));
	return sync_accounts(db, text, res);
}

/* Credentials with 180 s or less left are renewed before they are used. */
static void test_renewed_before_expiry(void **state)
{
	char *soon = sts_answer("STS.soon", 100), *later = sts_answer("STS.later", 3600);
	const ts_reply script[] = {{.body = soon}, {.body = later}, {.body = EMPTY_TAIR_PAGE}};
	af_sync_result res;
	testsrv *srv;
	af_testdb db;

	assert_int_equal(sync_member(script, 3, &srv, &db, &res), 0);
	assert_int_equal(res.complete, 1);
	assert_int_equal(ts_count(srv), 3);
	assert_string_equal(ts_header(ts_get(srv, 1), "x-acs-action"), "AssumeRole");
	assert_non_null(strstr(ts_header(ts_get(srv, 2), "Authorization"), "Credential=STS.later,"));
	assert_string_equal(ts_header(ts_get(srv, 2), "x-acs-security-token"), "tok-t0ken-STS.later");
	af_testdb_drop(&db);
	ts_stop(srv);
	free(soon);
	free(later);
}

/* A token the provider calls expired is renewed once and the call made
 * again: the scope completes. */
static void test_renewed_when_refused_as_expired(void **state)
{
	char *first = sts_answer("STS.first", 3600), *second = sts_answer("STS.second", 3600);
	const ts_reply script[] = {
		{.body = first},
		{.status = 400, .body = "{\"RequestId\":\"e1\",\"Code\":\"InvalidSecurityToken."
					"Expired\",\"Message\":\"The security token you provided "
					"has expired.\"}"},
		{.body = second},
		{.body = EMPTY_TAIR_PAGE},
	};
	af_sync_result res;
	testsrv *srv;
	af_testdb db;

	assert_int_equal(sync_member(script, 4, &srv, &db, &res), 0);
	assert_int_equal(res.complete, 1);
	assert_int_equal(ts_count(srv), 4);
	assert_non_null(strstr(ts_header(ts_get(srv, 1), "Authorization"), "Credential=STS.first,"));
	assert_string_equal(ts_header(ts_get(srv, 2), "x-acs-action"), "AssumeRole");
	assert_non_null(strstr(ts_header(ts_get(srv, 3), "Authorization"), "Credential=STS.second,"));
	assert_int_equal(res.requests, 2); /* both Tair attempts counted */
	af_testdb_drop(&db);
	ts_stop(srv);
	free(first);
	free(second);
}

/* Static keys cannot be renewed: an "expired" answer fails the scope as
 * refused credentials, after one attempt. */
static void test_static_keys_are_not_renewed(void **state)
{
	const ts_reply script[] = {
		{.status = 400, .body = "{\"RequestId\":\"e2\",\"Code\":\"InvalidSecurityToken."
					"Expired\",\"Message\":\"expired\"}"},
	};
	testsrv *srv = ts_start(script, 1);
	char text[2048];
	af_sync_result res;
	af_testdb db;

	af_testdb_create(&db);
	snprintf(text, sizeof(text),
		 CENTRAL "regions = cn-hangzhou\nproducts = tair_kvcache\ntair_kvcache_endpoint = %s\n",
		 ts_url(srv));
	assert_int_equal(sync_accounts(&db, text, &res), 0);
	assert_int_equal(res.failed, 1);
	assert_int_equal(res.auth_failures, 1);
	assert_int_equal(ts_count(srv), 1);
	af_testdb_drop(&db);
	ts_stop(srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_alibaba_request_and_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tencent_request_and_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alibaba_oidc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tke_web_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debug_log_holds_no_secret, setup, teardown),
		cmocka_unit_test(test_sync_with_an_assumed_role),
		cmocka_unit_test(test_two_hop_chain),
		cmocka_unit_test(test_refused_role_fails_only_its_account),
		cmocka_unit_test(test_renewed_before_expiry),
		cmocka_unit_test(test_renewed_when_refused_as_expired),
		cmocka_unit_test(test_static_keys_are_not_renewed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
