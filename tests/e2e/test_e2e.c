/*
 * End-to-end tests: aifleet-sim (real binary, real signatures over loopback
 * HTTP) -> collectors -> normalizers -> loader -> a real PostgreSQL.
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

#include "aifleet/buf.h"
#include "aifleet/config.h"
#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/store.h"
#include "aifleet/sync.h"
#include "e2e.h"
#include "testdb.h"
#include "testutil.h"

typedef struct env {
	af_testdb db;
	e2e_sim sim;
	char *dir;
	char *config;
} env;

/* What the test that runs holds, copied by value: a failed assertion
 * leaves the test's frame (and its env) behind, and the teardown stops
 * and removes from this copy what env_down did not. */
static env live;
static bool is_live;

static void env_up(env *e, const char *const *sim_args, const char *text, const char *extra)
{
	memset(e, 0, sizeof(*e));
	af_testdb_create(&e->db);
	live = *e;
	is_live = true;
	e2e_sim_start(&e->sim, sim_args);
	live.sim = e->sim;
	e->dir = af_test_tempdir();
	live.dir = e->dir;
	e->config = e2e_write_config(e->dir, &e->sim, &e->db, text, extra);
	live.config = e->config;
	e2e_set_demo_credentials();
}

static void env_down(env *e)
{
	is_live = false;
	e2e_sim_stop(&e->sim);
	af_testdb_drop(&e->db);
	free(e->config);
	af_test_rmtree(e->dir);
	free(e->dir);
}

static int teardown(void **state)
{
	(void)state;
	if (is_live)
		env_down(&live);
	return 0;
}

typedef struct sync_args {
	bool dry_run;
	const char *only;
	const char *save_raw;
	const char *from_raw;
} sync_args;

static int run_sync(const env *e, const sync_args *a, af_sync_result *r)
{
	af_config cfg;
	af_sync_options o = {0};
	int err;

	af_config_init(&cfg);
	if ((err = af_config_load(&cfg, e->config)) < 0)
		fail_msg("config: %s", af_error_last());
	if (a) {
		o.dry_run = a->dry_run;
		o.only = a->only;
		o.raw.save_dir = a->save_raw;
		o.raw.replay_dir = a->from_raw;
	}
	o.trigger = "test_e2e";
	err = af_sync_run(&cfg, &o, r);
	af_sync_result_free(r); /* the outcomes point into cfg */
	af_config_free(&cfg);
	return err;
}

static void sync_ok(const env *e, af_sync_result *r)
{
	if (run_sync(e, NULL, r) < 0)
		fail_msg("sync failed: %s", af_error_last());
}

static char *db_ids(const env *e, const char *table, const char *product)
{
	char sql[512];
	char *v;

	snprintf(sql, sizeof(sql),
		 "SELECT coalesce(string_agg(native_id, E'\\n' ORDER BY native_id COLLATE \"C\"), '') "
		 "FROM aifleet.%s WHERE product = '%s' AND deleted_at IS NULL",
		 table, product);
	v = af_testdb_query_value(&e->db, sql);
	return v ? v : strdup("");
}

static long long sim_service_count(const env *e, const char *product)
{
	char path[128];
	json_object *fleet, *items, *services;
	long long n = 0;

	snprintf(path, sizeof(path), "/_sim/fleet?product=%s", product);
	fleet = e2e_sim_request(&e->sim, NULL, path, NULL);
	assert_true(json_object_object_get_ex(fleet, "items", &items));
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		if (!json_object_object_get_ex(json_object_array_get_idx(items, i), "services",
					       &services))
			continue;
		/* TI-ONE lists the services; Hologres counts them. */
		if (json_object_is_type(services, json_type_array))
			n += (long long)json_object_array_length(services);
		else
			n += json_object_get_int64(services);
	}
	json_object_put(fleet);
	return n;
}

static void test_every_item_arrives_exactly_once(void **state)
{
	static const char *const sim_args[] = {"--items", "23", "--seed", "11", NULL};
	static const char *const products[] = {"tair_kvcache", "hologres", "tione"};
	af_sync_result r;
	json_object *stats, *rejected;
	env e;

	/* Small pages, so that every product pages several times. */
	env_up(&e, sim_args, NULL,
	       "[account demo-ali]\ntair_kvcache_page_size = 7\n"
	       "[account demo-tc]\ntione_page_size = 4\n");
	sync_ok(&e, &r);
	assert_int_equal(r.scopes, 10);
	assert_int_equal(r.complete, 10);
	assert_int_equal(r.duplicates, 0);
	assert_int_equal(r.rejected, 0);

	for (size_t i = 0; i < 3; i++) {
		char *want = e2e_sim_ids(&e.sim, products[i]);
		char *got = db_ids(&e, "instance", products[i]);

		assert_true(strlen(want) > 0);
		assert_string_equal(got, want);
		free(want);
		free(got);
	}
	/* 23 items x (2 + 1 + 1 Alibaba regions: demo-ali, demo-ali-sts and
	 * the member read through a role) for each Alibaba product, and 23 x 2
	 * regions for TI-ONE. */
	assert_int_equal(r.items, 23 * 4 * 2 + 23 * 2);
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.service "
						    "WHERE product = 'tione'"),
			 sim_service_count(&e, "tione"));
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.service "
						    "WHERE product = 'hologres'"),
			 sim_service_count(&e, "hologres"));

	stats = e2e_sim_request(&e.sim, NULL, "/_sim/stats", NULL);
	assert_true(json_object_object_get_ex(stats, "rejected_signatures", &rejected));
	assert_int_equal(json_object_get_int64(rejected), 0);
	json_object_put(stats);

	/* The ledger knows every scope, and the run is recorded. */
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.scope_state "
						    "WHERE last_state = 'complete'"),
			 10);
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.sync_run "
						    "WHERE status = 'succeeded'"),
			 1);
	env_down(&e);
}

static const char fixture_config[] =
	"[database]\nconninfo = @CONNINFO@\n"
	"[account demo-ali]\nprovider = alibaba\ncredentials = env\n"
	"access_key_id_env = DEMO_ALI_ACCESS_KEY_ID\n"
	"access_key_secret_env = DEMO_ALI_ACCESS_KEY_SECRET\n"
	"regions = cn-beijing\n"
	"tair_kvcache_endpoint = http://127.0.0.1:@PORT@\n"
	"hologres_endpoint = http://127.0.0.1:@PORT@/{region}\n"
	"[account demo-tc]\nprovider = tencent\ncredentials = env\n"
	"secret_id_env = DEMO_TC_SECRET_ID\nsecret_key_env = DEMO_TC_SECRET_KEY\n"
	"regions = ap-guangzhou\n"
	"tione_endpoint = http://127.0.0.1:@PORT@\n";

static void expect_sql(const env *e, const char *sql, const char *want)
{
	char *got = af_testdb_query_value(&e->db, sql);

	if (!got || strcmp(got, want) != 0)
		fail_msg("%s\n  got  %s\n  want %s", sql, got ? got : "NULL", want);
	free(got);
}

static char *dump_database(const env *e)
{
	char cmd[2048], path[600];
	char *dump;

	snprintf(path, sizeof(path), "%s/dump.sql", e->dir);
	snprintf(cmd, sizeof(cmd), "pg_dump --data-only --no-owner '%s' > '%s'", e->db.conninfo, path);
	assert_int_equal(system(cmd), 0);
	dump = af_test_read_file(path, NULL);
	assert_non_null(dump);
	return dump;
}

/* The API pages' own examples, served verbatim, come out with the units
 * and statuses the pages imply. The Tair page's example says TotalCount 3
 * but holds one instance: it does not add up, so that scope is partial --
 * its instance is loaded, and nothing could have been tombstoned. */
static void test_api_page_examples_units_and_statuses(void **state)
{
	static const char *const sim_args[] = {"--fixtures", NULL};
	af_sync_result r;
	char *dump;
	env e;

	env_up(&e, sim_args, fixture_config, NULL);
	sync_ok(&e, &r);
	assert_int_equal(r.complete, 2);
	assert_int_equal(r.partial, 1);
	expect_sql(&e, "SELECT product || ': ' || last_state FROM aifleet.scope_state "
			 "WHERE last_state <> 'complete'",
		     "tair_kvcache: partial");

	/* TI-ONE example: TI.GNV4.3XLARGE44.POST = 12 cores, 44 GiB, one A10
	 * per replica; Replicas is 0 (stopped), so the totals are 0. */
	expect_sql(&e, "SELECT per_replica || ' ' || unit FROM aifleet.resource "
			 "WHERE owner_native_id = 'ms-vzd8qdk5-1' AND kind = 'cpu_cores'",
		     "12 cores");
	expect_sql(&e, "SELECT per_replica || ' ' || unit FROM aifleet.resource "
			 "WHERE owner_native_id = 'ms-vzd8qdk5-1' AND kind = 'memory_gib'",
		     "44 GiB");
	expect_sql(&e, "SELECT per_replica || ' ' || gpu_model FROM aifleet.resource "
			 "WHERE owner_native_id = 'ms-vzd8qdk5-1' AND kind = 'gpu_count'",
		     "1 A10");
	expect_sql(&e, "SELECT capacity FROM aifleet.resource "
			 "WHERE owner_native_id = 'ms-vzd8qdk5-1' AND kind = 'cpu_cores'",
		     "0");
	expect_sql(&e, "SELECT status || '/' || status_raw || ' ' || charge_type "
			 "FROM aifleet.service WHERE native_id = 'ms-vzd8qdk5-1'",
		     "stopped/Stopped postpaid");
	expect_sql(&e, "SELECT model || ' ' || replicas FROM aifleet.service "
			 "WHERE native_id = 'ms-vzd8qdk5-1'",
		     "chatglm-6b-tiacc-ft 0");
	expect_sql(&e, "SELECT created_at = '2023-08-05T05:46:58Z' FROM aifleet.instance "
			 "WHERE native_id = 'ms-vzd8qdk5'",
		     "t");

	/* Tair example: the numeric tag value becomes a string, and the
	 * DestroyTime with its trailing newline still parses (kept in raw). */
	expect_sql(&e, "SELECT tags::text FROM aifleet.instance WHERE product = 'tair_kvcache'",
		     "{\"thread\": \"900\"}");
	expect_sql(&e, "SELECT created_at = '2025-04-07T04:46:00Z' AND "
			 "expires_at = '2025-11-04T02:09:26Z' AND status = 'running' "
			 "FROM aifleet.instance WHERE product = 'tair_kvcache'",
		     "t");

	/* Hologres example: node totals and usage, one model service. */
	expect_sql(&e, "SELECT capacity || '/' || used FROM aifleet.resource "
			 "WHERE owner_native_id = 'hologram_aicombo_public_cn-77xxx' "
			 "AND kind = 'cpu_cores'",
		     "32/32");
	expect_sql(&e, "SELECT capacity || '/' || used FROM aifleet.resource "
			 "WHERE owner_native_id = 'hologram_aicombo_public_cn-77xxx' "
			 "AND kind = 'gpu_count'",
		     "4/2");
	expect_sql(&e, "SELECT count(*) FROM aifleet.service WHERE product = 'hologres'", "1");

	/* The Hologres apiKey is nowhere in the data (the schema's comments
	 * mention the word, to say it is dropped). */
	dump = dump_database(&e);
	assert_non_null(strstr(dump, "hologram_aicombo_public_cn-77xxx")); /* the dump has data */
	assert_null(strstr(dump, "sk-42f6c8xxxxxb"));
	assert_null(strstr(dump, "apiKey"));
	free(dump);
	env_down(&e);
}

static json_object *mutate(const env *e, const char *body)
{
	json_object *m = e2e_sim_request(&e->sim, "POST", "/_sim/mutate", body);

	assert_non_null(m);
	return m;
}

static long long json_int(json_object *o, const char *key)
{
	json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	return json_object_get_int64(v);
}

/* Builds "'a','b',..." from a JSON array of strings, for SQL IN lists. */
static char *sql_list(json_object *o, const char *key)
{
	json_object *arr;
	af_buf out = AF_BUF_INIT;

	assert_true(json_object_object_get_ex(o, key, &arr));
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		af_buf_printf(&out, "%s'%s'", i ? "," : "",
			      json_object_get_string(json_object_array_get_idx(arr, i)));
	return af_buf_data(&out) ? af_buf_detach(&out) : strdup("''");
}

/* Each history row of run 2 with the native id of the instance it belongs
 * to (itself, the owner of a service, the owner of a resource's owner). */
static const char run2_history_instance[] =
	"SELECT coalesce(i.native_id, si.native_id, ri.native_id) AS instance "
	"FROM aifleet.history h "
	"LEFT JOIN aifleet.instance i ON h.entity_type = 'instance' AND i.id = h.entity_id "
	"LEFT JOIN aifleet.service s ON h.entity_type = 'service' AND s.id = h.entity_id "
	"LEFT JOIN aifleet.resource r ON h.entity_type = 'resource' AND r.id = h.entity_id "
	"LEFT JOIN aifleet.service rs ON rs.id = r.service_id "
	"LEFT JOIN aifleet.instance ri ON ri.id = coalesce(r.instance_id, rs.instance_id) "
	"LEFT JOIN aifleet.instance si ON si.id = s.instance_id "
	"WHERE h.run_id = 2";

static void test_mutation_gives_exactly_the_expected_history(void **state)
{
	static const char *const sim_args[] = {"--items", "20", "--seed", "5", NULL};
	af_sync_result r1, r2, r3;
	json_object *m;
	char *created, *updated, *deleted, sql[8192];
	env e;

	env_up(&e, sim_args, NULL, NULL);
	sync_ok(&e, &r1);
	assert_int_equal(r1.load.instances.created, r1.items);

	m = mutate(&e, "{\"create\":0.1,\"update\":0.1,\"delete\":0.1,\"seed\":9}");
	created = sql_list(m, "created_ids");
	updated = sql_list(m, "updated_ids");
	deleted = sql_list(m, "deleted_ids");
	sync_ok(&e, &r2);
	assert_int_equal(r2.complete, 10);
	assert_int_equal(r2.load.instances.created, json_int(m, "created"));
	assert_int_equal(r2.load.instances.deleted, json_int(m, "deleted"));
	assert_int_equal(r2.load.instances.restored, 0);

	/* Instance history of the run: exactly the created and deleted ids
	 * with their kinds, and updates only among the updated ids. */
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM aifleet.change_feed WHERE run_id = 2 "
		 "AND entity_type = 'instance' AND change = 'created' AND native_id IN (%s)",
		 created);
	assert_int_equal(af_testdb_query_int(&e.db, sql), json_int(m, "created"));
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM aifleet.change_feed WHERE run_id = 2 "
		 "AND entity_type = 'instance' AND change = 'deleted' AND native_id IN (%s)",
		 deleted);
	assert_int_equal(af_testdb_query_int(&e.db, sql), json_int(m, "deleted"));
	/* Every history row of the run (any entity) belongs to a mutated
	 * instance: nothing else was touched. */
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM (%s) h WHERE instance NOT IN (%s,%s,%s)",
		 run2_history_instance, created, updated, deleted);
	assert_int_equal(af_testdb_query_int(&e.db, sql), 0);
	/* And every updated instance left at least one row (on itself or a child). */
	snprintf(sql, sizeof(sql),
		 "SELECT count(DISTINCT instance) FROM (%s) h WHERE instance IN (%s)",
		 run2_history_instance, updated);
	assert_int_equal(af_testdb_query_int(&e.db, sql), json_int(m, "updated"));
	assert_int_equal(r2.load.history_rows,
			 af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.history "
						    "WHERE run_id = 2"));

	/* The fleet as of run 1 is the fleet before the mutation. */
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM aifleet.instances_as_of("
		 "(SELECT started_at FROM aifleet.sync_run WHERE id = 1)) WHERE native_id IN (%s)",
		 deleted);
	assert_int_equal(af_testdb_query_int(&e.db, sql), json_int(m, "deleted"));
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM aifleet.instances_as_of("
		 "(SELECT started_at FROM aifleet.sync_run WHERE id = 1)) WHERE native_id IN (%s)",
		 created);
	assert_int_equal(af_testdb_query_int(&e.db, sql), 0);

	/* A resync with no change writes no history: every scope is skipped
	 * as unchanged, its records counted unchanged. */
	sync_ok(&e, &r3);
	assert_int_equal(r3.load.history_rows, 0);
	assert_int_equal(r3.load.scopes_skipped, 10);
	assert_int_equal(r3.load.instances.unchanged, r3.load.instances.staged);
	assert_true(r3.load.instances.unchanged > 0);
	assert_int_equal(r3.load.instances.updated + r3.load.services.updated +
				 r3.load.resources.updated,
			 0);
	json_object_put(m);
	free(created);
	free(updated);
	free(deleted);
	env_down(&e);
}

/* How many of the instances in `ids` (a SQL list) are tombstoned, or not. */
static long long count_instances(const env *e, const char *ids, bool tombstoned)
{
	char sql[4096];

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM aifleet.instance WHERE native_id IN (%s) "
		 "AND deleted_at IS %s NULL",
		 ids, tombstoned ? "NOT" : "");
	return af_testdb_query_int(&e->db, sql);
}

static void test_failed_scope_tombstones_nothing(void **state)
{
	static const char *const sim_args[] = {"--items", "20", "--seed", "3", NULL};
	const char *args[] = {"--config", NULL, "--no-progress", "sync", NULL};
	af_sync_result r;
	json_object *m, *faults;
	char *deleted_bj, *deleted_hz, *out = NULL, *err = NULL;
	env e;

	env_up(&e, sim_args, NULL, "[account demo-ali]\ntair_kvcache_page_size = 5\n"
				   "[sync]\nmax_attempts = 2\n");
	args[1] = e.config;
	sync_ok(&e, &r);

	m = mutate(&e, "{\"delete\":0.25,\"seed\":4,\"product\":\"tair_kvcache\","
		       "\"account\":\"demo-ali\",\"region\":\"cn-beijing\"}");
	deleted_bj = sql_list(m, "deleted_ids");
	json_object_put(m);
	m = mutate(&e, "{\"delete\":0.25,\"seed\":4,\"product\":\"tair_kvcache\","
		       "\"account\":\"demo-ali\",\"region\":\"cn-hangzhou\"}");
	deleted_hz = sql_list(m, "deleted_ids");
	json_object_put(m);

	/* Page 3 of the Tair list in cn-beijing fails every time. */
	faults = e2e_sim_request(&e.sim, "POST", "/_sim/faults",
				 "[{\"product\":\"tair_kvcache\",\"account\":\"demo-ali\","
				 "\"region\":\"cn-beijing\",\"page\":3,\"kind\":\"http500\","
				 "\"times\":-1}]");
	json_object_put(faults);

	assert_int_equal(e2e_run_aifleet(e.dir, args, &out, &err), 2); /* partial */
	assert_non_null(strstr(out, "partial"));
	assert_non_null(strstr(err, "alibaba/demo-ali/cn-beijing/tair_kvcache"));
	assert_non_null(strstr(err, "page 3"));
	assert_non_null(strstr(err, "InternalError"));
	assert_non_null(strstr(err, "request ")); /* the RequestId is named */

	/* cn-beijing failed part-way: its vanished instances are untouched. */
	assert_int_equal(count_instances(&e, deleted_bj, false), 5);
	/* cn-hangzhou completed: its vanished instances are tombstoned. */
	assert_int_equal(count_instances(&e, deleted_hz, true), 5);
	expect_sql(&e, "SELECT last_state FROM aifleet.scope_state WHERE account = 'demo-ali' "
			 "AND region = 'cn-beijing' AND product = 'tair_kvcache'",
		     "partial");
	expect_sql(&e, "SELECT status FROM aifleet.sync_run WHERE id = 2", "partial");
	expect_sql(&e, "SELECT last_error LIKE '%page 3%InternalError%' FROM aifleet.scope_state "
			 "WHERE account = 'demo-ali' AND region = 'cn-beijing' "
			 "AND product = 'tair_kvcache'",
		     "t");

	/* Once the fault is gone, the next run completes and tombstones. */
	json_object_put(e2e_sim_request(&e.sim, "DELETE", "/_sim/faults", NULL));
	free(out);
	free(err);
	assert_int_equal(e2e_run_aifleet(e.dir, args, &out, &err), 0);
	assert_int_equal(count_instances(&e, deleted_bj, true), 5);
	free(out);
	free(err);
	free(deleted_bj);
	free(deleted_hz);
	env_down(&e);
}

static void test_dry_run_writes_nothing(void **state)
{
	static const char *const sim_args[] = {"--items", "15", NULL};
	sync_args dry = {.dry_run = true};
	af_sync_result r, plan;
	json_object *m;
	char *before, *after;
	static const char snapshot[] =
		"SELECT (SELECT count(*) FROM aifleet.sync_run) || '/' || "
		"(SELECT count(*) FROM aifleet.history) || '/' || "
		"(SELECT count(*) FROM aifleet.instance WHERE deleted_at IS NULL) || '/' || "
		"(SELECT max(last_attempt_at) FROM aifleet.scope_state) || '/' || "
		"(SELECT sum(xmin::text::bigint) FROM aifleet.instance)";
	env e;

	env_up(&e, sim_args, NULL, NULL);
	/* On a new database a dry run refuses: it may not even create the schema. */
	assert_int_equal(run_sync(&e, &dry, &plan), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "aifleet migrate"));
	assert_null(af_testdb_query_value(&e.db, "SELECT to_regclass('aifleet.instance')"));
	sync_ok(&e, &r);
	m = mutate(&e, "{\"create\":0.2,\"update\":0.2,\"delete\":0.2,\"seed\":2}");
	before = af_testdb_query_value(&e.db, snapshot);
	assert_int_equal(run_sync(&e, &dry, &plan), 0);
	after = af_testdb_query_value(&e.db, snapshot);
	assert_string_equal(before, after);
	/* ... yet the plan has the right numbers. */
	assert_int_equal(plan.load.instances.created, json_int(m, "created"));
	assert_int_equal(plan.load.instances.deleted, json_int(m, "deleted"));
	assert_int_equal(plan.load.run_id, 0);
	/* And the real run then does what the plan said. */
	sync_ok(&e, &r);
	assert_int_equal(r.load.instances.created, plan.load.instances.created);
	assert_int_equal(r.load.instances.updated, plan.load.instances.updated);
	assert_int_equal(r.load.resources.deleted, plan.load.resources.deleted);
	assert_int_equal(r.load.history_rows, plan.load.history_rows);
	json_object_put(m);
	free(before);
	free(after);
	env_down(&e);
}

static bool file_tree_contains(const char *dir, const char *needle)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "grep -rqF -- '%s' '%s'", needle, dir);
	return system(cmd) == 0;
}

/* Secrets never reach the logs (even at debug level), the saved pages or
 * the database; and pages saved with --save-raw replay to the same rows. */
static void test_secrets_nowhere_and_raw_replay(void **state)
{
	static const char *const sim_args[] = {"--items", "12", "--seed", "8", NULL};
	static const char *const secrets[] = {
		"sim-demo-ali-secret-NOT-REAL", "sim-demo-sts-secret-NOT-REAL",
		"sim-demo-sts-token-NOT-REAL", "sim-demo-tc-secret-NOT-REAL", "apiKey", "sk-",
	};
	const char *args[] = {"--config", NULL, "--log-level", "debug", "--save-raw", NULL,
			      "sync", NULL};
	char raw_dir[600], *out = NULL, *err = NULL, *dump, *counts1, *counts2;
	static const char counts[] =
		"SELECT (SELECT count(*) FROM aifleet.instance) || '/' || "
		"(SELECT count(*) FROM aifleet.service) || '/' || "
		"(SELECT count(*) FROM aifleet.resource) || '/' || "
		"(SELECT string_agg(encode(content_hash, 'hex'), '' ORDER BY provider, account, "
		"product, native_id) FROM aifleet.instance)";
	sync_args replay = {0};
	af_sync_result r;
	af_testdb db2;
	env e;

	env_up(&e, sim_args, NULL, NULL);
	snprintf(raw_dir, sizeof(raw_dir), "%s/raw", e.dir);
	args[1] = e.config;
	args[5] = raw_dir;
	assert_int_equal(e2e_run_aifleet(e.dir, args, &out, &err), 0);
	assert_true(strlen(err) > 1000); /* debug logging really happened */
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		if (strstr(out, secrets[i]) || strstr(err, secrets[i]))
			fail_msg("'%s' appears in the output", secrets[i]);
		if (file_tree_contains(raw_dir, secrets[i]))
			fail_msg("'%s' appears in the saved pages", secrets[i]);
	}
	dump = dump_database(&e);
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (strstr(dump, secrets[i]))
			fail_msg("'%s' appears in the database dump", secrets[i]);
	free(dump);
	/* The pages are there: one list per Hologres scope, and details. */
	assert_true(file_tree_contains(raw_dir, "instanceModelList"));
	assert_true(file_tree_contains(raw_dir, "TairInferInstanceDTO"));
	assert_true(file_tree_contains(raw_dir, "ServiceGroups"));
	counts1 = af_testdb_query_value(&e.db, counts);

	/* Replay into a fresh database with the simulator gone. */
	e2e_sim_stop(&e.sim);
	af_testdb_create(&db2);
	{
		af_testdb saved = e.db;

		e.db = db2;
		free(e.config);
		e.config = e2e_write_config(e.dir, &e.sim, &e.db, NULL, NULL);
		replay.from_raw = raw_dir;
		if (run_sync(&e, &replay, &r) < 0)
			fail_msg("replay failed: %s", af_error_last());
		assert_int_equal(r.complete, 10);
		assert_int_equal(r.requests, 0);
		counts2 = af_testdb_query_value(&e.db, counts);
		assert_string_equal(counts1, counts2);
		af_testdb_drop(&e.db);
		e.db = saved;
	}
	free(counts1);
	free(counts2);
	free(out);
	free(err);
	env_down(&e);
}

static void test_cli_exit_codes(void **state)
{
	static const char *const sim_args[] = {"--items", "5", NULL};
	const char *sync_args_[] = {"--config", NULL, "sync", NULL};
	const char *no_cmd[] = {"--no-progress", NULL};
	const char *bad_opt[] = {"--frobnicate", "sync", NULL};
	const char *missing[] = {"--config", "/nonexistent/aifleet.ini", "sync", NULL};
	const char *help[] = {"--help", NULL};
	af_store *store = NULL;
	af_loader *loader = NULL;
	af_run_options ro = {0};
	char *out = NULL, *err = NULL;
	env e;

	env_up(&e, sim_args, NULL, NULL);
	sync_args_[1] = e.config;

	assert_int_equal(e2e_run_aifleet(e.dir, no_cmd, NULL, NULL), 64);
	assert_int_equal(e2e_run_aifleet(e.dir, bad_opt, NULL, NULL), 64);
	assert_int_equal(e2e_run_aifleet(e.dir, help, &out, NULL), 0);
	assert_non_null(strstr(out, "Exit codes"));
	free(out);
	assert_int_equal(e2e_run_aifleet(e.dir, missing, NULL, &err), 78);
	assert_non_null(strstr(err, "/nonexistent/aifleet.ini"));
	free(err);

	/* Another run holds the lock: exit 75 at once, naming the holder. */
	assert_int_equal(af_store_connect(&store, e.db.conninfo), 0);
	assert_int_equal(af_store_migrate(store, NULL), 0);
	assert_int_equal(af_loader_begin(&loader, store, &ro), 0);
	assert_int_equal(e2e_run_aifleet(e.dir, sync_args_, NULL, &err), 75);
	assert_non_null(strstr(err, "lock"));
	free(err);
	af_loader_free(loader);
	af_store_free(store);
	assert_int_equal(e2e_run_aifleet(e.dir, sync_args_, NULL, NULL), 0);

	/* A dead database: exit 75 (try later), and nothing else breaks. */
	{
		const char *dead[] = {"--config", e.config, "--db",
				      "host=127.0.0.1 port=1 connect_timeout=2", "sync", NULL};
		assert_int_equal(e2e_run_aifleet(e.dir, dead, NULL, &err), 75);
		assert_non_null(strstr(err, "127.0.0.1"));
		free(err);
	}
	env_down(&e);
}

static void test_auth_failure_is_named_and_contained(void **state)
{
	static const char *const sim_args[] = {"--items", "6", NULL};
	const char *args[] = {"--config", NULL, "sync", NULL};
	char *out = NULL, *err = NULL;
	env e;

	env_up(&e, sim_args, NULL, NULL);
	args[1] = e.config;
	setenv("DEMO_TC_SECRET_KEY", "a-wrong-secret-value", 1);
	assert_int_equal(e2e_run_aifleet(e.dir, args, &out, &err), 78);
	e2e_set_demo_credentials();
	assert_non_null(strstr(err, "AuthFailure.SignatureFailure"));
	assert_non_null(strstr(err, "DescribeModelServiceGroups"));
	assert_non_null(strstr(err, "ap-guangzhou"));
	assert_non_null(strstr(err, "demo-tc"));
	assert_null(strstr(err, "a-wrong-secret-value"));
	assert_null(strstr(out, "a-wrong-secret-value"));
	/* The Alibaba scopes were still loaded; TI-ONE left untouched. */
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.scope_state "
						    "WHERE last_state = 'complete'"),
			 8);
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.instance "
						    "WHERE product = 'tione'"),
			 0);
	free(out);
	free(err);
	env_down(&e);
}

/* credentials = default: the Alibaba account finds the simulator's keys in
 * ~/.alibabacloud/credentials (a private HOME), the Tencent account in the
 * official variables; the log names the step each used, never a value. */
static void test_default_credential_chain(void **state)
{
	static const char *const sim_args[] = {"--items", "4", NULL};
	static const char text[] =
		"[database]\nconninfo = @CONNINFO@\n"
		"[account demo-ali]\nprovider = alibaba\ncredentials = default\n"
		"regions = cn-hangzhou\nproducts = tair_kvcache\n"
		"tair_kvcache_endpoint = http://127.0.0.1:@PORT@\n"
		"[account demo-tc]\nprovider = tencent\ncredentials = default\n"
		"regions = ap-guangzhou\ntione_endpoint = http://127.0.0.1:@PORT@\n";
	const char *args[] = {"--config", NULL, "sync", NULL};
	char *out = NULL, *err = NULL, *home, *saved = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	char path[1200];
	FILE *f;
	env e;

	env_up(&e, sim_args, text, NULL);
	args[1] = e.config;
	home = af_test_tempdir();
	snprintf(path, sizeof(path), "%s/.alibabacloud", home);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/.alibabacloud/credentials", home);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "[default]\ntype = access_key\naccess_key_id = %s\naccess_key_secret = %s\n",
		getenv("DEMO_ALI_ACCESS_KEY_ID"), getenv("DEMO_ALI_ACCESS_KEY_SECRET"));
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	setenv("HOME", home, 1);
	unsetenv("ALIBABA_CLOUD_ACCESS_KEY_ID");
	setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true", 1);
	setenv("TENCENTCLOUD_SECRET_ID", getenv("DEMO_TC_SECRET_ID"), 1);
	setenv("TENCENTCLOUD_SECRET_KEY", getenv("DEMO_TC_SECRET_KEY"), 1);

	assert_int_equal(e2e_run_aifleet(e.dir, args, &out, &err), 0);
	assert_non_null(strstr(err, "account demo-ali: credentials from the default chain's "
				    "credentials file (~/.alibabacloud/credentials)"));
	assert_non_null(strstr(err, "account demo-tc: credentials from the default chain's "
				    "environment (TENCENTCLOUD_SECRET_ID)"));
	assert_null(strstr(err, getenv("DEMO_ALI_ACCESS_KEY_SECRET")));
	assert_null(strstr(err, getenv("DEMO_TC_SECRET_KEY")));
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.scope_state "
						    "WHERE last_state = 'complete'"),
			 2);

	if (saved)
		setenv("HOME", saved, 1);
	unsetenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED");
	unsetenv("TENCENTCLOUD_SECRET_ID");
	unsetenv("TENCENTCLOUD_SECRET_KEY");
	af_test_rmtree(home);
	free(home);
	free(saved);
	free(out);
	free(err);
	env_down(&e);
}

/* Against the simulator's STS, whose credentials live one second: the
 * member account's role is renewed as it runs out, every scope completes,
 * and nothing is refused -- the renewal is end to end, not only against a
 * scripted server (tests/net/test_sts.c). */
static void test_expiring_role_is_renewed(void **state)
{
	static const char *const sim_args[] = {"--items", "40", "--credential-ttl", "1", NULL};
	json_object *stats, *by, *n;
	af_sync_result r;
	long long assumed = 0;
	env e;

	/* small pages: the member's scopes take several calls, each with
	 * credentials that have less than 180 s left */
	env_up(&e, sim_args, NULL, "[account demo-ali-member]\ntair_kvcache_page_size = 5\n");
	sync_ok(&e, &r);
	assert_int_equal(r.complete, r.scopes);
	assert_int_equal(r.auth_failures, 0);
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.scope_state"
						    " WHERE account = 'demo-ali-member'"
						    " AND last_state = 'complete'"),
			 2);
	stats = e2e_sim_request(&e.sim, NULL, "/_sim/stats", NULL);
	if (json_object_object_get_ex(stats, "by_service", &by) &&
	    json_object_object_get_ex(by, "alibaba-sts AssumeRole", &n))
		assumed = json_object_get_int64(n);
	json_object_put(stats);
	/* once when the run starts, then again for the calls that follow */
	assert_true(assumed > 1);
	env_down(&e);
}

/* Runs the aifleet binary; returns its exit code, and stderr/stdout in
 * *out and *err (freed and replaced on every call). */
static int run_cli(const env *e, const char *const *args, char **out, char **err)
{
	free(*out);
	free(*err);
	*out = *err = NULL;
	return e2e_run_aifleet(e->dir, args, out, err);
}

/* The mass-delete guard: 60% of a Tair scope vanishing is held (nothing
 * tombstoned, exit 2, status and the log say how to accept); a dry run
 * shows what --allow-deletes would do; --allow-deletes SCOPE accepts one
 * scope, "all" the rest; then 40% vanishing goes through on its own. */
static void test_mass_delete_guard(void **state)
{
	static const char *const sim_args[] = {"--items", "30", "--seed", "8", NULL};
	static const char hz[] = "alibaba/demo-ali/cn-hangzhou/tair_kvcache";
	const char *sync[] = {"--config", NULL, "--no-progress", "sync", NULL};
	const char *status[] = {"--config", NULL, "status", NULL};
	const char *dry[] = {"--config", NULL, "--no-progress", "--dry-run", "sync", NULL};
	const char *dry_all[] = {"--config", NULL, "--no-progress", "--dry-run", "sync",
				 "--allow-deletes", "all", NULL};
	const char *allow_hz[] = {"--config", NULL, "--no-progress", "sync", "--allow-deletes", hz,
				  NULL};
	const char *allow_all[] = {"--config", NULL, "--no-progress", "sync", "--allow-deletes",
				   "all", NULL};
	const char *allow_typo[] = {"--config", NULL, "--no-progress", "sync", "--allow-deletes",
				    "alibaba/demo-ali/cn-hangzhou/tair", NULL};
	static const char tombstoned_tair[] =
		"SELECT count(*) FROM aifleet.instance WHERE product = 'tair_kvcache'"
		" AND deleted_at IS NOT NULL";
	char *out = NULL, *err = NULL, *before, *after;
	json_object *m;
	env e;

	(void)state;
	env_up(&e, sim_args, NULL, NULL);
	sync[1] = status[1] = dry[1] = dry_all[1] = allow_hz[1] = allow_all[1] = allow_typo[1] =
		e.config;
	assert_int_equal(run_cli(&e, sync, &out, &err), 0);

	m = mutate(&e, "{\"delete\":0.6,\"seed\":9,\"product\":\"tair_kvcache\"}");
	assert_int_equal(json_int(m, "deleted"), 4 * 18); /* four Tair scopes of 30 */
	json_object_put(m);
	assert_int_equal(run_cli(&e, sync, &out, &err), 2);
	assert_int_equal(af_testdb_query_int(&e.db, tombstoned_tair), 0);
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.scope_state"
						   " WHERE last_state = 'held'"),
			 4);
	/* 18 instances, each with its model service and three resources */
	expect_sql(&e, "SELECT held_deletes || ' of ' || held_live FROM aifleet.scope_state"
		       " WHERE product = 'tair_kvcache' AND region = 'cn-hangzhou'"
		       " AND account = 'demo-ali'",
		   "90 of 150");
	assert_non_null(strstr(err, "aifleet sync --allow-deletes alibaba/demo-ali/cn-hangzhou/"
				    "tair_kvcache"));
	assert_non_null(strstr(out, "4 held"));
	assert_int_equal(run_cli(&e, status, &out, &err), 0);
	assert_non_null(strstr(out, "held"));
	assert_non_null(strstr(out, "--allow-deletes"));

	/* A dry run says what would be held. */
	assert_int_equal(run_cli(&e, dry, &out, &err), 2);
	assert_non_null(strstr(out, "would be held: 90 of 150 live entities"));

	/* A typo is not an accepted deletion. */
	assert_int_equal(run_cli(&e, allow_typo, &out, &err), 78);
	assert_non_null(strstr(err, "no such scope"));

	/* The dry run shows the deletions --allow-deletes all would make. */
	before = af_testdb_query_value(&e.db, "SELECT count(*) || '/' || max(id) FROM aifleet.history");
	assert_int_equal(run_cli(&e, dry_all, &out, &err), 0);
	after = af_testdb_query_value(&e.db, "SELECT count(*) || '/' || max(id) FROM aifleet.history");
	assert_string_equal(before, after);
	assert_non_null(strstr(out, "instances"));
	assert_null(strstr(out, "would be held"));

	/* One scope accepted: its 18 go, the other three stay held. */
	assert_int_equal(run_cli(&e, allow_hz, &out, &err), 2);
	assert_int_equal(af_testdb_query_int(&e.db, tombstoned_tair), 18);
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.scope_state"
						   " WHERE last_state = 'held'"),
			 3);
	assert_int_equal(run_cli(&e, allow_all, &out, &err), 0);
	assert_int_equal(af_testdb_query_int(&e.db, tombstoned_tair), 4 * 18);

	/* 40% of what is left: 5 instances, 25 entities (more than 10, but less
	 * than half of 60): not held. */
	m = mutate(&e, "{\"delete\":0.4,\"seed\":10,\"product\":\"tair_kvcache\"}");
	assert_int_equal(json_int(m, "deleted"), 4 * 5);
	json_object_put(m);
	assert_int_equal(run_cli(&e, sync, &out, &err), 0);
	assert_int_equal(af_testdb_query_int(&e.db, tombstoned_tair), 4 * 18 + 4 * 5);
	free(before);
	free(after);
	free(out);
	free(err);
	env_down(&e);
}

/* The simulator's data faults, each scripted forever on one scope of a
 * fleet that is loaded already: every run commits (exit 2, the other
 * scopes complete), the faulty scope is not complete, and nothing is
 * tombstoned or changed anywhere. */
static void test_sim_faults_tombstone_nothing(void **state)
{
	static const char *const sim_args[] = {"--items", "12", "--seed", "21", NULL};
	static const char *const faults[] = {
		"{\"product\":\"tair_kvcache\",\"region\":\"cn-beijing\",\"kind\":\"error_body\"}",
		"{\"product\":\"hologres\",\"region\":\"cn-beijing\",\"action\":\"ListInstanceModel\","
		"\"kind\":\"error_body\"}",
		"{\"product\":\"tione\",\"region\":\"ap-guangzhou\",\"kind\":\"error_body\"}",
		"{\"product\":\"tair_kvcache\",\"region\":\"cn-beijing\",\"kind\":\"short_page\"}",
		"{\"product\":\"tione\",\"region\":\"ap-guangzhou\",\"kind\":\"empty_page\"}",
		"{\"product\":\"tair_kvcache\",\"region\":\"cn-beijing\",\"kind\":\"lying_total\","
		"\"total\":2}",
		"{\"product\":\"tione\",\"region\":\"ap-guangzhou\",\"kind\":\"repeat_page\"}",
		"{\"product\":\"tair_kvcache\",\"region\":\"cn-beijing\",\"kind\":\"out_of_range\"}",
		"{\"product\":\"hologres\",\"region\":\"cn-beijing\",\"action\":\"GetInstanceModel\","
		"\"kind\":\"out_of_range\"}",
		"{\"product\":\"tione\",\"region\":\"ap-guangzhou\",\"kind\":\"out_of_range\"}",
		"{\"product\":\"tair_kvcache\",\"region\":\"cn-beijing\",\"kind\":\"oversized\","
		"\"bytes\":200000}",
	};
	static const char state_sql[] =
		"SELECT md5(string_agg(t, '|' ORDER BY t)) FROM ("
		" SELECT native_id || coalesce(deleted_at::text, '') || content_hash::text AS t"
		"  FROM aifleet.instance"
		" UNION ALL SELECT native_id || coalesce(deleted_at::text, '') || content_hash::text"
		"  FROM aifleet.service"
		" UNION ALL SELECT owner_native_id || kind || coalesce(deleted_at::text, '')"
		"  || content_hash::text FROM aifleet.resource) x";
	af_sync_result r;
	char *before, *after, body[512];
	env e;

	(void)state;
	env_up(&e, sim_args, NULL, "[account demo-ali]\ntair_kvcache_page_size = 5\n"
				   "[account demo-tc]\ntione_page_size = 5\n"
				   "[sync]\nmax_attempts = 2\n");
	sync_ok(&e, &r);
	assert_int_equal(r.complete, r.scopes);
	before = af_testdb_query_value(&e.db, state_sql);
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		json_object *ans;

		snprintf(body, sizeof(body), "[%.*s,\"times\":-1}]", (int)strlen(faults[i]) - 1,
			 faults[i]);
		ans = e2e_sim_request(&e.sim, "POST", "/_sim/faults", body);
		assert_non_null(ans);
		json_object_put(ans);
		sync_ok(&e, &r);
		if (r.complete != r.scopes - 1 || r.load.instances.deleted + r.load.services.deleted +
							   r.load.resources.deleted !=
						       0)
			fail_msg("fault %s: %zu of %zu scopes complete, %llu instances deleted",
				 faults[i], r.complete, r.scopes,
				 (unsigned long long)r.load.instances.deleted);
		after = af_testdb_query_value(&e.db, state_sql);
		if (strcmp(before, after) != 0)
			fail_msg("fault %s changed the stored fleet", faults[i]);
		free(after);
		json_object_put(e2e_sim_request(&e.sim, "DELETE", "/_sim/faults", NULL));
	}
	/* Without faults everything completes again, and still nothing moved. */
	sync_ok(&e, &r);
	assert_int_equal(r.complete, r.scopes);
	after = af_testdb_query_value(&e.db, state_sql);
	assert_string_equal(before, after);
	free(before);
	free(after);
	env_down(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_every_item_arrives_exactly_once, teardown),
		cmocka_unit_test_teardown(test_api_page_examples_units_and_statuses, teardown),
		cmocka_unit_test_teardown(test_mutation_gives_exactly_the_expected_history, teardown),
		cmocka_unit_test_teardown(test_failed_scope_tombstones_nothing, teardown),
		cmocka_unit_test_teardown(test_dry_run_writes_nothing, teardown),
		cmocka_unit_test_teardown(test_secrets_nowhere_and_raw_replay, teardown),
		cmocka_unit_test_teardown(test_cli_exit_codes, teardown),
		cmocka_unit_test_teardown(test_auth_failure_is_named_and_contained, teardown),
		cmocka_unit_test_teardown(test_default_credential_chain, teardown),
		cmocka_unit_test_teardown(test_expiring_role_is_renewed, teardown),
		cmocka_unit_test_teardown(test_mass_delete_guard, teardown),
		cmocka_unit_test_teardown(test_sim_faults_tombstone_nothing, teardown),
	};

	af_log_setup(AF_LOG_WARN, AF_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
