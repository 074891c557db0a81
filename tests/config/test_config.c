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
	char *path = malloc(strlen(dir) + 16);
	FILE *f;

	sprintf(path, "%s/aifleet.ini", dir);
	free(dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

static int load(af_config *cfg, const char *text)
{
	char *path = write_config(text, 0640);
	int err;

	af_config_init(cfg);
	err = af_config_load(cfg, path);
	unlink(path);
	free(path);
	return err;
}

static void test_full_config(void **state)
{
	af_config cfg;
	af_account_config *a;

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
	assert_true(a->hologres.enabled);
	assert_false(a->tair.enabled);
	assert_string_equal(a->hologres.endpoint, "http://127.0.0.1:9/{region}");
	assert_true(a->hologres.rate_limit > 2.49 && a->hologres.rate_limit < 2.51);
	/* env credentials default to the official variable names */
	assert_string_equal(a->id_env, "ALIBABA_CLOUD_ACCESS_KEY_ID");
	assert_string_equal(a->token_env, "ALIBABA_CLOUD_SECURITY_TOKEN");

	a = &cfg.accounts[1];
	assert_true(a->intl);
	assert_true(a->tione.enabled); /* products default to the provider's */
	assert_int_equal(a->tione.page_size, 50);
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
	unlink(path);
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
		cmocka_unit_test(test_secret_values_never_echoed),
		cmocka_unit_test(test_group_writable_file_refused),
		cmocka_unit_test(test_missing_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
