/* Unit tests for the INI configuration: defaults, every key family,
 * validation errors that name file, line and key, and the file-mode rule. */
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

#include "aifleet/config.h"
#include "aifleet/error.h"
#include "aifleet/record.h"
#include "testutil.h"

static char *write_config(const char *text, mode_t mode)
{
	char *dir = af_test_tempdir();
	char *path = af_test_write_file(dir, "aifleet.ini", text, mode);

	free(dir);
	return path;
}

/* Removes a file of write_config and the directory made for it. */
static void remove_config(char *path)
{
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
}

static int load(af_config *cfg, const char *text)
{
	char *path = write_config(text, 0640);
	int err;

	af_config_init(cfg);
	err = af_config_load(cfg, path);
	remove_config(path);
	free(path);
	return err;
}

static void test_full_config(void **state)
{
	af_config cfg;
	af_account_config *a;
	af_product_config *holo, *tione;

	assert_int_equal(load(&cfg, "[database]\n"
				    "conninfo = dbname=fleet\n"
				    "wait_for_lock = yes\n"
				    "[sync]\n"
				    "concurrency = 8\n"
				    "timeout_ms = 1234\n"
				    "[account ali-1]\n"
				    "provider = alibaba\n"
				    "regions = cn-beijing , cn-hangzhou,cn-shanghai\n"
				    "products = hologres\n"
				    "hologres_endpoint = http://127.0.0.1:9/{region}\n"
				    "hologres_rate_limit = 2.5\n"
				    "[account tc]\n"
				    "provider = tencent\n"
				    "regions = ap-guangzhou\n"
				    "intl = true\n"
				    "tione_page_size = 50\n"),
			 0);
	assert_string_equal(cfg.db_conninfo, "dbname=fleet");
	assert_true(cfg.wait_for_lock);
	assert_int_equal(cfg.concurrency, 8);
	assert_int_equal(cfg.timeout_ms, 1234);
	assert_int_equal(cfg.retry_budget, 200); /* default kept */
	assert_int_equal(cfg.naccounts, 2);

	a = &cfg.accounts[0];
	assert_string_equal(a->name, "ali-1");
	assert_int_equal(a->nregions, 3);
	assert_string_equal(a->regions[0], "cn-beijing");
	assert_string_equal(a->regions[2], "cn-shanghai");
	holo = af_account_product(a, "hologres");
	assert_true(holo->enabled);
	assert_false(af_account_product(a, "tair_kvcache")->enabled);
	assert_string_equal(holo->endpoint, "http://127.0.0.1:9/{region}");
	assert_true(holo->rate_limit > 2.49 && holo->rate_limit < 2.51);
	/* env credentials default to the official variable names */
	assert_string_equal(a->id_env, "ALIBABA_CLOUD_ACCESS_KEY_ID");
	assert_string_equal(a->token_env, "ALIBABA_CLOUD_SECURITY_TOKEN");

	a = &cfg.accounts[1];
	assert_true(a->intl);
	tione = af_account_product(a, "tione");
	assert_true(tione->enabled); /* products default to the provider's */
	assert_int_equal(tione->page_size, 50);
	assert_string_equal(a->secret_env, "TENCENTCLOUD_SECRET_KEY");
	af_config_free(&cfg);
}

static void expect_error(const char *text, const char *needle)
{
	af_config cfg;

	assert_int_equal(load(&cfg, text), AF_ERR_CONFIG);
	if (!strstr(af_error_last(), needle))
		fail_msg("error '%s' does not mention '%s'", af_error_last(), needle);
	af_config_free(&cfg);
}

static void test_errors_name_the_problem(void **state)
{
	expect_error("[sync]\nconcurrency = many\n", "concurrency");
	expect_error("[sync]\nconcurrency = 4\nbogus = 1\n", ":3:");
	expect_error("[account a]\nprovider = azure\n", "alibaba or tencent");
	expect_error("[account a]\nprovider = alibaba\n", "regions is required");
	expect_error("[account a]\nprovider = alibaba\nregions = cn-beijing\nproducts = tione\n",
		     "Tencent");
	expect_error("[account a]\nprovider = tencent\nregions = ap-x\nproducts = hologres\n",
		     "Alibaba");
	expect_error("[account a]\nprovider = alibaba\nregions = cn beijing\n", "invalid region");
	expect_error("[account a]\nprovider = alibaba\nregions = a, a\n", "twice");
	expect_error("[account a]\nprovider = alibaba\nregions = a\ntair_kvcache_endpoint = ftp://x\n",
		     "http");
	expect_error("[account a b]\nprovider = alibaba\n", "account names");
	expect_error("[nonsense]\nx = 1\n", "unknown section");
	expect_error("[account a]\nprovider = alibaba\nregions = a\naccess_key_secret = s3cr3t\n",
		     "unknown key 'access_key_secret'");
	expect_error("[account a]\nprovider = tencent\nregions = a\ncredentials = alibabacloud-file\n",
		     "alibabacloud-file credentials on a Tencent account");
	expect_error("[account a]\nprovider = alibaba\nregions = a\ncredentials = magic\n",
		     "credentials must be env, default, aliyun-cli, alibabacloud-file, tencent-file, "
		     "ecs-ram-role, cvm-role, oidc, tke-oidc or credentials-uri");
	expect_error("[account a]\nprovider = tencent\nregions = a\ncredentials = oidc\n",
		     "oidc credentials on a Tencent account");
	expect_error("[account a]\nprovider = alibaba\nregions = a\ncredentials = tke-oidc\n",
		     "tke-oidc credentials on an Alibaba account");
	expect_error("[account a]\nprovider = tencent\nregions = a\ncredentials = ecs-ram-role\n",
		     "ecs-ram-role credentials on a Tencent account");
	expect_error("[account a]\nprovider = alibaba\nregions = a\ncredentials = cvm-role\n",
		     "cvm-role credentials on an Alibaba account");
	expect_error("[account a]\nprovider = alibaba\nregions = a\nmetadata_endpoint = 100.100.100.200\n",
		     "metadata_endpoint must start with http://");
}

/* AssumeRole: a source is another account of the same provider, the
 * chain ends, and an identity that is only a source needs no regions. */
static void test_assume_role_sources(void **state)
{
	static const char member[] = "[account m]\nprovider = alibaba\nregions = a\n"
				     "role_arn = acs:ram::1:role/r\n";
	char text[1024];
	af_config cfg;

	snprintf(text, sizeof(text), "[account c]\nprovider = alibaba\n%ssource = c\n"
		 "duration_seconds = 900\nexternal_id = x\nrole_session_name = s\n", member);
	assert_int_equal(load(&cfg, text), 0);
	assert_int_equal(cfg.accounts[0].nregions, 0);
	assert_string_equal(cfg.accounts[1].source, "c");
	assert_int_equal(cfg.accounts[1].duration_seconds, 900);
	af_config_free(&cfg);

	snprintf(text, sizeof(text), "%ssource = nobody\n", member);
	expect_error(text, "source 'nobody' is no account of this file");
	snprintf(text, sizeof(text), "[account t]\nprovider = tencent\n%ssource = t\n", member);
	expect_error(text, "source 't' is a tencent account");
	expect_error("[account m]\nprovider = alibaba\nregions = a\nsource = m\n",
		     "source needs a role_arn");
	snprintf(text, sizeof(text), "%ssource = m\n", member);
	expect_error(text, "loop");
	expect_error("[account a]\nprovider = alibaba\nrole_arn = x\nsource = b\nregions = r\n"
		     "[account b]\nprovider = alibaba\nrole_arn = x\nsource = c\n"
		     "[account c]\nprovider = alibaba\nrole_arn = x\nsource = d\n"
		     "[account d]\nprovider = alibaba\n",
		     "chain more than 3 roles");
	expect_error("[account a]\nprovider = alibaba\nregions = r\nduration_seconds = 60\n",
		     "duration_seconds must be between 900 and 43200");
	expect_error("[account a]\nprovider = alibaba\n", "regions is required");
}

/* Every credential source has its name in the file. */
static void test_credential_sources(void **state)
{
	static const struct {
		const char *text;
		af_cred_source want;
	} cases[] = {
		{"[account a]\nprovider = alibaba\nregions = a\n", AF_CRED_ENV},
		{"[account a]\nprovider = alibaba\nregions = a\ncredentials = default\n",
		 AF_CRED_DEFAULT},
		{"[account a]\nprovider = tencent\nregions = a\ncredentials = default\n",
		 AF_CRED_DEFAULT},
		{"[account a]\nprovider = alibaba\nregions = a\ncredentials = alibabacloud-file\n"
		 "profile = ops\n",
		 AF_CRED_ALIBABACLOUD_FILE},
		{"[account a]\nprovider = alibaba\nregions = a\ncredentials = aliyun-cli\n",
		 AF_CRED_ALIYUN_CLI},
		{"[account a]\nprovider = tencent\nregions = a\ncredentials = tencent-file\n",
		 AF_CRED_TENCENT_FILE},
		{"[account a]\nprovider = alibaba\nregions = a\ncredentials = ecs-ram-role\n"
		 "role_name = inventory\nmetadata_endpoint = http://127.0.0.1:9\n",
		 AF_CRED_ECS_RAM_ROLE},
		{"[account a]\nprovider = tencent\nregions = a\ncredentials = cvm-role\n",
		 AF_CRED_CVM_ROLE},
		{"[account a]\nprovider = alibaba\nregions = a\ncredentials = credentials-uri\n"
		 "credentials_uri = http://127.0.0.1:9/creds\n",
		 AF_CRED_URI},
	};
	af_config cfg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(load(&cfg, cases[i].text), 0);
		assert_int_equal(cfg.accounts[0].cred_source, cases[i].want);
		af_config_free(&cfg);
	}
}

static void test_duplicate_account_refused(void **state)
{
	/* the second header is the error; the message points at both */
	expect_error("[account prod]\n"
		     "provider = alibaba\n"
		     "regions = cn-beijing\n"
		     "\n"
		     "[sync]\n"
		     "concurrency = 2\n"
		     "[account prod]\n"
		     "regions = cn-hangzhou\n",
		     "aifleet.ini:7: account 'prod' is defined twice (first at line 1)");
	/* spacing does not make another account; an empty repeat counts too */
	expect_error("[account prod]\nprovider = alibaba\nregions = a\n[account  prod]\n",
		     "aifleet.ini:4: account 'prod' is defined twice (first at line 1)");
	/* labels are case-sensitive, like everywhere else: these are two */
	af_config cfg;
	assert_int_equal(load(&cfg, "[account prod]\nprovider = alibaba\nregions = a\n"
				    "[account Prod]\nprovider = alibaba\nregions = b\n"),
			 0);
	assert_int_equal(cfg.naccounts, 2);
	af_config_free(&cfg);
}

static void test_duplicate_key_refused(void **state)
{
	expect_error("[account prod]\n"
		     "provider = alibaba\n"
		     "; comment\n"
		     "regions = cn-beijing\n"
		     "products = tair_kvcache\n"
		     "regions = cn-hangzhou\n",
		     "aifleet.ini:6: key 'regions' given twice in [account prod] (first at line 4)");
	/* [sync] twice is one [sync]: a key may not come back in the second */
	expect_error("[sync]\nconcurrency = 4\ntimeout_ms = 1000\n[database]\nconninfo = x\n"
		     "[sync]\nmax_pages = 5\nconcurrency = 8\n",
		     "aifleet.ini:8: key 'concurrency' given twice in [sync] (first at line 2)");
	expect_error("[database]\nconninfo = a\n[database]\nconninfo = b\n",
		     "aifleet.ini:4: key 'conninfo' given twice in [database] (first at line 2)");
	/* an alias sets the same field: the message names both spellings */
	expect_error("[account tc]\nprovider = tencent\nregions = ap-x\n"
		     "access_key_id_env = A\nsecret_id_env = B\n",
		     "aifleet.ini:5: key 'secret_id_env' given twice in [account tc] (first at "
		     "line 4, as 'access_key_id_env')");
	/* the same key in two accounts is fine */
	af_config cfg;
	assert_int_equal(load(&cfg, "[sync]\nconcurrency = 3\n"
				    "[account a]\nprovider = alibaba\nregions = a\n"
				    "[sync]\ntimeout_ms = 999\n"
				    "[account b]\nprovider = alibaba\nregions = a\n"),
			 0);
	assert_int_equal(cfg.naccounts, 2);
	assert_int_equal(cfg.concurrency, 3);
	assert_int_equal(cfg.timeout_ms, 999);
	af_config_free(&cfg);
}

static void test_line_numbers_and_inih_limits(void **state)
{
	af_config cfg;
	char text[512];

	/* an indented line continues the key above it (inih): not a second key */
	assert_int_equal(load(&cfg, "[account a]\nprovider = alibaba\nregions = a, b\n  c\n"), 0);
	assert_int_equal(cfg.accounts[0].nregions, 3);
	assert_string_equal(cfg.accounts[0].regions[2], "c");
	af_config_free(&cfg);
	/* errors name the line they are on */
	expect_error("; top\n\n[sync]\n\nconcurrency = 0\n", "aifleet.ini:5: [sync] concurrency");
	/* inih would cut a long line in two and parse both halves */
	snprintf(text, sizeof(text), "[database]\nconninfo = host=%0300d\n", 0);
	expect_error(text, "aifleet.ini:2: line longer than");
	/* ... and cut a long section name short, merging two accounts */
	expect_error("[account abcdefghijklmnopqrstuvwxyz0123456789abcdefghij]\nprovider = alibaba\n",
		     "aifleet.ini:2: section name");
}

static void test_delete_guard_keys(void **state)
{
	af_config cfg;

	af_config_init(&cfg);
	assert_true(cfg.max_delete_fraction > 0.49 && cfg.max_delete_fraction < 0.51);
	assert_int_equal(cfg.max_delete_min, 10);
	assert_int_equal(load(&cfg, "[sync]\nmax_delete_fraction = 0.25\nmax_delete_min = 0\n"), 0);
	assert_true(cfg.max_delete_fraction > 0.249 && cfg.max_delete_fraction < 0.251);
	assert_int_equal(cfg.max_delete_min, 0);
	af_config_free(&cfg);
	assert_int_equal(load(&cfg, "[sync]\nmax_delete_fraction = 1\nmax_delete_min = 5000\n"), 0);
	assert_true(cfg.max_delete_fraction == 1.0);
	assert_int_equal(cfg.max_delete_min, 5000);
	af_config_free(&cfg);

	static const char *const bad_fraction[] = {"0", "1.5", "-0.1", "half", "nan", "0.5x", ""};
	for (size_t i = 0; i < sizeof(bad_fraction) / sizeof(bad_fraction[0]); i++) {
		char text[128];

		snprintf(text, sizeof(text), "[sync]\nmax_delete_fraction = %s\n", bad_fraction[i]);
		expect_error(text, "aifleet.ini:2: [sync] max_delete_fraction must be a number greater "
				   "than 0 and at most 1");
	}
	static const char *const bad_min[] = {"-1", "1.5", "ten", "99999999999999999999", ""};
	for (size_t i = 0; i < sizeof(bad_min) / sizeof(bad_min[0]); i++) {
		char text[128];

		snprintf(text, sizeof(text), "[sync]\nmax_delete_min = %s\n", bad_min[i]);
		expect_error(text, "aifleet.ini:2: [sync] max_delete_min must be a whole number");
	}
}

static void test_secret_values_never_echoed(void **state)
{
	af_config cfg;

	/* A user pasting a secret into the file gets an error that names
	 * the key but does not repeat the value. */
	assert_int_equal(load(&cfg, "[account a]\nprovider = alibaba\nregions = a\n"
				    "access_key_secret = VERYSECRETVALUE\n"),
			 AF_ERR_CONFIG);
	assert_null(strstr(af_error_last(), "VERYSECRETVALUE"));
	af_config_free(&cfg);
}

static void test_group_writable_file_refused(void **state)
{
	char *path = write_config("[sync]\nconcurrency = 2\n", 0664);
	af_config cfg;

	af_config_init(&cfg);
	assert_int_equal(af_config_load(&cfg, path), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "writable"));
	af_config_free(&cfg);
	remove_config(path);
	free(path);
}

static void test_missing_file(void **state)
{
	af_config cfg;

	af_config_init(&cfg);
	assert_int_equal(af_config_load(&cfg, "/nonexistent/aifleet.ini"), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "/nonexistent/aifleet.ini"));
	af_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_errors_name_the_problem),
		cmocka_unit_test(test_credential_sources),
		cmocka_unit_test(test_assume_role_sources),
		cmocka_unit_test(test_duplicate_account_refused),
		cmocka_unit_test(test_duplicate_key_refused),
		cmocka_unit_test(test_line_numbers_and_inih_limits),
		cmocka_unit_test(test_delete_guard_keys),
		cmocka_unit_test(test_secret_values_never_echoed),
		cmocka_unit_test(test_group_writable_file_refused),
		cmocka_unit_test(test_missing_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
