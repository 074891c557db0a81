/*
 * The commands scripts and deploy pipelines use, run as the aifleet
 * binary: `status --format json` on a database that aifleet-sim and a
 * real PostgreSQL filled (one document, equal to the tables), and
 * `check-config` (exit 0 with every scope listed; 78 naming the account
 * whose credentials are missing, a profile that is not in its file, an
 * OIDC token file that is not there; no server asked, no secret printed).
 */
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e.h"
#include "testdb.h"
#include "testutil.h"

static json_object *jget(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no \"%s\" in %s", key, json_object_to_json_string(o));
	return v;
}

/* ---- status --format json ------------------------------------------------- */

static void test_status_json(void **state)
{
	static const char *const sim_args[] = {"--items", "10", "--seed", "3", NULL};
	af_testdb db;
	e2e_sim sim;
	char *dir = af_test_tempdir(), *config, *out = NULL, *err = NULL;
	json_object *doc, *runs, *scopes, *mutate;
	long long nscopes;

	(void)state;
	af_testdb_create(&db);
	e2e_sim_start(&sim, sim_args);
	config = e2e_write_config(dir, &sim, &db, NULL, NULL);
	e2e_set_demo_credentials();
	{
		const char *sync[] = {"--config", config, "--no-progress", "sync", NULL};
		const char *status[] = {"--config", config, "status", "--format", "json",
					"--runs", "1", NULL};

		assert_int_equal(e2e_run_aifleet(dir, sync, NULL, NULL), 0);
		mutate = e2e_sim_request(&sim, "POST", "/_sim/mutate",
					 "{\"update\":0.2,\"seed\":4}");
		json_object_put(mutate);
		assert_int_equal(e2e_run_aifleet(dir, sync, NULL, NULL), 0);
		assert_int_equal(e2e_run_aifleet(dir, status, &out, &err), 0);
	}
	doc = json_tokener_parse(out);
	if (!doc)
		fail_msg("status --format json printed no JSON:\n%s", out);
	assert_int_equal(json_object_get_int(jget(doc, "pending_migrations")), 0);
	runs = jget(doc, "runs");
	/* --runs 1: the newest run only */
	assert_int_equal(json_object_array_length(runs), 1);
	assert_int_equal(json_object_get_int64(jget(json_object_array_get_idx(runs, 0), "id")),
			 af_testdb_query_int(&db, "SELECT max(id) FROM aifleet.sync_run"));
	assert_int_equal(json_object_get_int64(jget(json_object_array_get_idx(runs, 0), "updated")),
			 af_testdb_query_int(&db, "SELECT instances_updated + services_updated +"
						  " resources_updated FROM aifleet.sync_run"
						  " ORDER BY id DESC LIMIT 1"));
	assert_string_equal(json_object_get_string(jget(json_object_array_get_idx(runs, 0),
							 "status")),
			    "succeeded");
	scopes = jget(doc, "scopes");
	nscopes = af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.scope_state");
	assert_true(nscopes > 0);
	assert_int_equal((long long)json_object_array_length(scopes), nscopes);
	for (size_t i = 0; i < json_object_array_length(scopes); i++) {
		json_object *s = json_object_array_get_idx(scopes, i);
		char sql[512];

		assert_string_equal(json_object_get_string(jget(s, "last_state")), "complete");
		assert_true(json_object_is_type(jget(s, "last_error"), json_type_null));
		assert_true(json_object_is_type(jget(s, "age_seconds"), json_type_double) ||
			    json_object_is_type(jget(s, "age_seconds"), json_type_int));
		snprintf(sql, sizeof(sql),
			 "SELECT items FROM aifleet.scope_state WHERE provider = '%s'"
			 " AND account = '%s' AND region = '%s' AND product = '%s'",
			 json_object_get_string(jget(s, "provider")),
			 json_object_get_string(jget(s, "account")),
			 json_object_get_string(jget(s, "region")),
			 json_object_get_string(jget(s, "product")));
		assert_int_equal(json_object_get_int64(jget(s, "items")),
				 af_testdb_query_int(&db, sql));
		/* times are RFC 3339 in UTC */
		assert_non_null(strstr(json_object_get_string(jget(s, "last_complete_at")),
				       "+00:00"));
	}
	json_object_put(doc);
	free(out);
	free(err);
	{
		const char *bad[] = {"--config", config, "status", "--format", "markdown", NULL};

		assert_int_equal(e2e_run_aifleet(dir, bad, NULL, &err), 64);
		assert_non_null(strstr(err, "text or json"));
		free(err);
	}
	e2e_sim_stop(&sim);
	af_testdb_drop(&db);
	free(config);
	af_test_rmtree(dir);
	free(dir);
}

/* ---- check-config ---------------------------------------------------------- */

/*
 * Accounts of every kind of source: environment (set and unset), an
 * aliyun CLI profile (present and absent), RRSA OIDC (token file there
 * and not), the ECS role, and a member assuming a role with a source's
 * keys. The endpoint of each point at a port nothing listens on: a
 * check that asked a server would fail or hang there.
 */
static const char config_text[] =
	"[sync]\n"
	"connect_timeout_ms = 500\n"
	"[account env-ok]\n"
	"provider = alibaba\n"
	"credentials = env\n"
	"access_key_id_env = CC_ID\n"
	"access_key_secret_env = CC_SECRET\n"
	"regions = cn-beijing, cn-hangzhou\n"
	"products = tair_kvcache\n"
	"tair_kvcache_endpoint = http://127.0.0.1:1\n"
	"[account member]\n"
	"provider = alibaba\n"
	"source = env-ok\n"
	"role_arn = acs:ram::123:role/inventory\n"
	"sts_endpoint = http://127.0.0.1:1\n"
	"regions = cn-shanghai\n"
	"products = hologres\n"
	"hologres_endpoint = http://127.0.0.1:1/{region}\n"
	"[account pod]\n"
	"provider = alibaba\n"
	"credentials = oidc\n"
	"sts_endpoint = http://127.0.0.1:1\n"
	"regions = cn-beijing\n"
	"products = tair_kvcache\n"
	"tair_kvcache_endpoint = http://127.0.0.1:1\n"
	"[account vm]\n"
	"provider = alibaba\n"
	"credentials = ecs-ram-role\n"
	"metadata_endpoint = http://127.0.0.1:1\n"
	"regions = cn-beijing\n"
	"products = tair_kvcache\n"
	"tair_kvcache_endpoint = http://127.0.0.1:1\n"
	"[account cli]\n"
	"provider = alibaba\n"
	"credentials = aliyun-cli\n"
	"credentials_file = @DIR@/aliyun.json\n"
	"profile = prod\n"
	"regions = cn-beijing\n"
	"products = tair_kvcache\n"
	"tair_kvcache_endpoint = http://127.0.0.1:1\n";

static const char aliyun_json[] =
	"{\"current\":\"prod\",\"profiles\":[{\"name\":\"prod\",\"mode\":\"AK\","
	"\"access_key_id\":\"LTAIcheckconfig0001\",\"access_key_secret\":\"cc-cli-secret-XYZ\"}]}";

static int check_config(const char *dir, const char *config, char **out, char **err)
{
	const char *args[] = {"--config", config, "check-config", NULL};

	return e2e_run_aifleet(dir, args, out, err);
}

static void test_check_config(void **state)
{
	char *dir = af_test_tempdir(), *text, *config, *token, *aliyun, *out = NULL, *err = NULL;
	size_t len = strlen(config_text) + strlen(dir) + 1;
	char *p;
	int code;

	(void)state;
	text = malloc(len);
	assert_non_null(text);
	p = strstr(strcpy(text, config_text), "@DIR@");
	memmove(p + strlen(dir), p + 5, strlen(p + 5) + 1);
	memcpy(p, dir, strlen(dir));
	config = af_test_write_file(dir, "aifleet.ini", text, 0600);
	aliyun = af_test_write_file(dir, "aliyun.json", aliyun_json, 0600);
	token = af_test_write_file(dir, "token", "eyJhbGciOiJSUzI1NiJ9.e30.sig", 0600);
	setenv("CC_ID", "LTAIcheckconfigenv01", 1);
	setenv("CC_SECRET", "cc-env-secret-XYZ", 1);
	setenv("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::123:role/pod", 1);
	setenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::123:oidc-provider/ack", 1);
	setenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE", token, 1);

	/* everything resolvable: 0, every scope with its endpoint */
	code = check_config(dir, config, &out, &err);
	if (code != 0)
		fail_msg("check-config: exit %d\n%s%s", code, out, err);
	assert_non_null(strstr(out, "alibaba/env-ok/cn-beijing/tair_kvcache"));
	assert_non_null(strstr(out, "alibaba/env-ok/cn-hangzhou/tair_kvcache"));
	assert_non_null(strstr(out, "alibaba/member/cn-shanghai/hologres"));
	assert_non_null(strstr(out, "http://127.0.0.1:1/cn-shanghai"));
	assert_non_null(strstr(out, "6 scope(s)"));
	assert_non_null(strstr(out, "2 ok, 3 asked at run time, 0 failed"));
	assert_non_null(strstr(out, "assumes acs:ram::123:role/inventory"));
	/* no secret, not even an access key id, is printed */
	assert_null(strstr(out, "cc-env-secret"));
	assert_null(strstr(out, "cc-cli-secret"));
	assert_null(strstr(out, "LTAIcheckconfig"));
	assert_null(strstr(err, "cc-"));
	free(out);
	free(err);

	/* the source's secret unset: that account and its member fail (78) */
	unsetenv("CC_SECRET");
	assert_int_equal(check_config(dir, config, &out, &err), 78);
	assert_non_null(strstr(out, "CC_SECRET is not set"));
	assert_non_null(strstr(out, "its source env-ok"));
	assert_non_null(strstr(out, "2 failed"));
	free(out);
	free(err);
	setenv("CC_SECRET", "cc-env-secret-XYZ", 1);

	/* the OIDC token file gone, and the CLI's profile not in its file */
	unlink(token);
	free(aliyun);
	aliyun = af_test_write_file(dir, "aliyun.json",
			    "{\"current\":\"dev\",\"profiles\":[{\"name\":\"dev\",\"mode\":\"AK\","
			    "\"access_key_id\":\"LTAIcheckconfig0002\",\"access_key_secret\":\"x\"}]}",
			    0600);
	assert_int_equal(check_config(dir, config, &out, &err), 78);
	assert_non_null(strstr(out, "token file"));
	assert_non_null(strstr(out, "prod"));
	assert_non_null(strstr(out, "2 failed"));
	free(out);
	free(err);

	/* no configuration at all: a usage error */
	{
		const char *args[] = {"check-config", NULL};

		unsetenv("AIFLEET_CONFIG");
		assert_int_equal(e2e_run_aifleet(dir, args, NULL, &err), 64);
		assert_non_null(strstr(err, "check-config needs a configuration"));
		free(err);
	}
	unsetenv("CC_ID");
	unsetenv("CC_SECRET");
	unsetenv("ALIBABA_CLOUD_ROLE_ARN");
	unsetenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN");
	unsetenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE");
	free(text);
	free(config);
	free(aliyun);
	free(token);
	af_test_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_json),
		cmocka_unit_test(test_check_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
