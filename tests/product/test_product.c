/*
 * The product seam: a product defined in this directory only
 * (pai_eas.c: descriptor, collector, normalizer; fixtures under
 * tests/fixtures/product/) is registered at run time, configured like a
 * built-in one, and synced twice from replayed pages into a real
 * PostgreSQL, with its history. Nothing in src/ or include/ names it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "aifleet/collect.h"
#include "aifleet/config.h"
#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/secret.h"
#include "aifleet/sync.h"
#include "pai_eas.h"
#include "testdb.h"
#include "testutil.h"

#define RUNS AF_FIXTURES_DIR "/product/pai_eas"

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0600), 0);
}

/* A configuration file in `dir` with `body` after a [database] section. */
static char *write_config(const char *dir, const char *conninfo, const char *body)
{
	char *path = malloc(1024), text[2048];

	assert_non_null(path);
	snprintf(path, 1024, "%s/aifleet.ini", dir);
	snprintf(text, sizeof(text), "[database]\nconninfo = %s\n%s", conninfo ? conninfo : "",
		 body);
	write_file(path, text);
	return path;
}

static int group_setup(void **state)
{
	af_log_setup(AF_LOG_ERROR, AF_LOG_TEXT);
	return af_product_register(&pai_eas_product);
}

/* ---- the registry ------------------------------------------------------- */

static void test_registered_like_a_built_in(void **state)
{
	af_product broken = pai_eas_product;
	char names[256], endpoint[128];

	assert_ptr_equal(af_product_find(PAI_EAS_PRODUCT), &pai_eas_product);
	assert_int_equal(af_product_index(PAI_EAS_PRODUCT), (int)af_product_count() - 1);
	af_product_names(names, sizeof(names));
	assert_non_null(strstr(names, ", " PAI_EAS_PRODUCT));
	assert_int_equal(af_default_endpoint(endpoint, sizeof(endpoint), PAI_EAS_PRODUCT,
					     "cn-hangzhou", false),
			 0);
	assert_string_equal(endpoint, "https://pai-eas.cn-hangzhou.aliyuncs.com");
	assert_int_equal(af_default_endpoint(endpoint, sizeof(endpoint), PAI_EAS_PRODUCT, "a/b",
					     false),
			 AF_ERR_CONFIG);

	/* A second product of the same name, or one that cannot work. */
	assert_int_equal(af_product_register(&pai_eas_product), AF_ERR_CONFIG);
	broken.name = "Bad Name";
	assert_int_equal(af_product_register(&broken), AF_ERR_CONFIG);
	broken.name = "pai_eas_broken";
	broken.collect = NULL;
	assert_int_equal(af_product_register(&broken), AF_ERR_CONFIG);
	broken = pai_eas_product;
	broken.name = "pai_eas_broken";
	broken.default_page_size = broken.max_page_size + 1;
	assert_int_equal(af_product_register(&broken), AF_ERR_CONFIG);
	assert_null(af_product_find("pai_eas_broken"));
}

/* Every product's declared secret fields are ones the one secret policy
 * removes: a product cannot declare a secret the policy would keep. */
static void test_secret_fields_are_known_to_the_policy(void **state)
{
	size_t checked = 0;

	for (size_t i = 0; i < af_product_count(); i++) {
		const af_product *p = af_product_at(i);

		for (const char *const *f = p->secret_fields; f && *f; f++, checked++)
			if (!af_secret_name(*f))
				fail_msg("%s declares secret field %s, which aifleet/secret.h keeps",
					 p->name, *f);
	}
	assert_true(checked >= 2); /* Hologres apiKey, PAI-EAS AccessToken */
}

/* A job asks for the account's page size, else the descriptor's default,
 * and never more than the API accepts. */
static void test_page_size_is_capped_by_the_descriptor(void **state)
{
	static const int want[][2] = {{0, 50}, {7, 7}, {100, 100}, {500, 100}};
	af_product_config settings = {.enabled = true};
	af_job_setup setup = {
		.scope = {"alibaba", "eas", "cn-hangzhou", PAI_EAS_PRODUCT},
		.product = &pai_eas_product,
		.settings = &settings,
		.endpoint = "http://127.0.0.1:9",
		.max_pages = 3,
	};
	char endpoint[600];
	af_job *job;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		settings.page_size = want[i][0];
		assert_int_equal(af_job_new(&job, &setup), 0);
		assert_int_equal(af_job_page_size(job), want[i][1]);
		assert_int_equal(af_job_max_pages(job), 3);
		assert_int_equal(af_job_detail_concurrency(job), 1);
		af_job_free(job);
	}
	/* an endpoint the job cannot hold is refused, not cut */
	memset(endpoint, 'a', sizeof(endpoint) - 1);
	endpoint[sizeof(endpoint) - 1] = '\0';
	setup.endpoint = endpoint;
	assert_int_equal(af_job_new(&job, &setup), AF_ERR_LIMIT);
	assert_null(job);
}

/* ---- configuration ------------------------------------------------------- */

static void test_configured_like_a_built_in(void **state)
{
	char *dir = af_test_tempdir(), *path;
	const af_product_config *pc;
	af_config cfg;

	/* An account that lists no products gets every product of its
	 * provider, the registered one included; its keys are product keys. */
	path = write_config(dir, NULL,
			    "[account a]\nprovider = alibaba\nregions = cn-hangzhou\n"
			    "pai_eas_page_size = 7\npai_eas_rate_limit = 2\n");
	af_config_init(&cfg);
	assert_int_equal(af_config_load(&cfg, path), 0);
	pc = af_account_product(&cfg.accounts[0], PAI_EAS_PRODUCT);
	assert_non_null(pc);
	assert_true(pc->enabled);
	assert_int_equal(pc->page_size, 7);
	assert_true(af_account_product(&cfg.accounts[0], "tair_kvcache")->enabled);
	assert_false(af_account_product(&cfg.accounts[0], "tione")->enabled);
	af_config_free(&cfg);
	free(path);

	/* Its provider is the descriptor's: a Tencent account cannot have it. */
	path = write_config(dir, NULL,
			    "[account t]\nprovider = tencent\nregions = ap-guangzhou\n"
			    "products = pai_eas\n");
	af_config_init(&cfg);
	assert_int_equal(af_config_load(&cfg, path), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "pai_eas is an Alibaba Cloud product"));
	af_config_free(&cfg);
	free(path);
	af_test_rmtree(dir);
	free(dir);
}

/* ---- end to end ---------------------------------------------------------- */

static int sync_replay(const char *config, const char *run, af_sync_result *r)
{
	af_sync_options o = {0};
	af_config cfg;
	int err;

	af_config_init(&cfg);
	assert_int_equal(af_config_load(&cfg, config), 0);
	o.raw.replay_dir = run;
	o.only = PAI_EAS_PRODUCT;
	err = af_sync_run(&cfg, &o, r);
	af_sync_result_free(r); /* the outcomes point into cfg */
	af_config_free(&cfg);
	return err;
}

static long long count(const af_testdb *db, const char *sql)
{
	return af_testdb_query_int(db, sql);
}

static void test_syncs_end_to_end_with_history(void **state)
{
	char *dir = af_test_tempdir(), *config;
	af_sync_result r;
	af_testdb db;

	af_testdb_create(&db);
	config = write_config(dir, db.conninfo,
			      "[account eas]\nprovider = alibaba\nregions = cn-hangzhou\n"
			      "products = pai_eas\npai_eas_page_size = 2\n");

	/* Run 1: three services on two pages, each with three resources. */
	assert_int_equal(sync_replay(config, RUNS "/run1", &r), 0);
	assert_int_equal(r.scopes, 1);
	assert_int_equal(r.complete, 1);
	assert_int_equal(r.items, 3);
	assert_int_equal(r.load.instances.created, 3);
	assert_int_equal(r.load.resources.created, 9);
	assert_int_equal(r.load.history_rows, 12);
	assert_int_equal(count(&db, "SELECT count(*) FROM aifleet.current_instances"
				    " WHERE product = 'pai_eas' AND provider = 'alibaba'"),
			 3);
	/* capacity = per replica x replicas; the GPU model is kept */
	assert_int_equal(count(&db, "SELECT capacity FROM aifleet.current_resources"
				    " WHERE product = 'pai_eas' AND kind = 'cpu_cores'"
				    " AND owner_native_id = 'eas-m-a1b2c3'"),
			 8);
	assert_int_equal(count(&db, "SELECT count(*) FROM aifleet.current_resources"
				    " WHERE product = 'pai_eas' AND gpu_model = 'L20'"),
			 1);
	assert_int_equal(count(&db, "SELECT count(*) FROM aifleet.instance"
				    " WHERE tags->>'team' = 'ml'"),
			 1);
	/* The declared secret never reaches the database. */
	assert_int_equal(count(&db, "SELECT count(*) FROM aifleet.instance WHERE raw::text LIKE"
				    " '%AccessToken%' OR raw::text LIKE '%tok-%'"),
			 0);
	assert_int_equal(count(&db, "SELECT count(*) FROM aifleet.instance"
				    " WHERE raw->>'Image' LIKE '%vllm%'"),
			 3);

	/* Run 2: one stopped, one gone, one new. */
	assert_int_equal(sync_replay(config, RUNS "/run2", &r), 0);
	assert_int_equal(r.complete, 1);
	assert_int_equal(r.load.instances.created, 1);
	assert_int_equal(r.load.instances.updated, 1);
	assert_int_equal(r.load.instances.deleted, 1);
	assert_int_equal(r.load.instances.unchanged, 1);
	assert_int_equal(r.load.resources.created, 3);
	assert_int_equal(r.load.resources.deleted, 3);
	assert_int_equal(r.load.resources.unchanged, 6);
	assert_int_equal(count(&db, "SELECT count(*) FROM aifleet.current_instances"
				    " WHERE native_id = 'eas-m-d4e5f6' AND status = 'stopped'"),
			 1);

	/* History answers "what ran at time T" and "what changed". */
	assert_int_equal(count(&db, "SELECT count(*) FROM aifleet.instances_as_of("
				    "(SELECT started_at FROM aifleet.sync_run ORDER BY id DESC"
				    " LIMIT 1) - interval '1 microsecond')"
				    " WHERE product = 'pai_eas' AND native_id = 'eas-m-g7h8i9'"),
			 1);
	assert_int_equal(count(&db, "SELECT count(*) FROM aifleet.instances_as_of(now())"
				    " WHERE product = 'pai_eas' AND native_id = 'eas-m-g7h8i9'"),
			 0);
	assert_int_equal(count(&db, "SELECT count(*) FROM aifleet.history WHERE change = 'created'"),
			 16);
	assert_int_equal(count(&db, "SELECT count(*) FROM aifleet.history WHERE change = 'updated'"),
			 1);
	assert_int_equal(count(&db, "SELECT count(*) FROM aifleet.history WHERE change = 'deleted'"),
			 4);
	assert_int_equal(count(&db, "SELECT count(*) FROM aifleet.scope_state"
				    " WHERE product = 'pai_eas' AND last_state = 'complete'"),
			 1);

	af_testdb_drop(&db);
	af_test_rmtree(dir);
	free(dir);
	free(config);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registered_like_a_built_in),
		cmocka_unit_test(test_secret_fields_are_known_to_the_policy),
		cmocka_unit_test(test_page_size_is_capped_by_the_descriptor),
		cmocka_unit_test(test_configured_like_a_built_in),
		cmocka_unit_test(test_syncs_end_to_end_with_history),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
