/* Migrations against a real PostgreSQL: from empty, idempotent, checksum
 * tampering refused, concurrent migrators serialized, every object commented,
 * the read-only role. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aifleet/error.h"
#include "aifleet/migrate.h"
#include "aifleet/store.h"
#include "storetest.h"
#include "testdb.h"
#include "testutil.h"

static void test_migrate_from_empty_and_again(void **state)
{
	af_testdb db;
	af_store *s = NULL;
	int applied = -1;

	af_testdb_create(&db);
	assert_int_equal(af_store_connect(&s, db.conninfo), 0);
	assert_int_equal(af_store_migrate(s, &applied), 0);
	assert_int_equal(applied, (int)af_migrations_count);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.schema_migrations"),
			 (long long)af_migrations_count);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM pg_tables WHERE schemaname"
						  " = 'aifleet' AND tablename IN ('instance', 'service',"
						  " 'resource', 'history', 'sync_run', 'scope_state')"),
			 6);
	/* checksum is the SHA-256 of the embedded text, computed here by PostgreSQL */
	{
		char sql[256];
		char *want;

		snprintf(sql, sizeof(sql), "SELECT checksum FROM aifleet.schema_migrations WHERE version = %d",
			 af_migrations[0].version);
		want = af_testdb_query_value(&db, sql);
		assert_non_null(want);
		assert_int_equal(strlen(want), 64);
		free(want);
	}
	/* idempotent */
	assert_int_equal(af_store_migrate(s, &applied), 0);
	assert_int_equal(applied, 0);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* Applies migrations [from, to) by hand: their texts and bookkeeping
 * rows, as aifleet would have left them. An upgrade test compares the
 * read side before and after exactly the migrations it is about. */
static void apply_by_hand(af_testdb *db, size_t from, size_t to)
{
	PGconn *c;

	assert_true(af_migrations_count >= to);
	c = PQconnectdb(db->conninfo);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	for (size_t i = from; i < to; i++) {
		char version[16];
		const char *params[3] = {af_migrations[i].sql, af_migrations[i].name, version};
		PGresult *res;

		snprintf(version, sizeof(version), "%d", af_migrations[i].version);
		af_testdb_exec(db, af_migrations[i].sql);
		res = PQexecParams(c, "INSERT INTO aifleet.schema_migrations (version, name, checksum)"
				      " VALUES ($3, $2, encode(sha256(convert_to($1, 'UTF8')), 'hex'))",
				   3, NULL, params, NULL, NULL, 0);
		assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
		PQclear(res);
	}
	PQfinish(c);
}

/* Brings a new database to the first `n` migrations by hand. */
static void migrate_by_hand(af_testdb *db, size_t n)
{
	af_testdb_create(db);
	af_testdb_exec(db, "CREATE SCHEMA aifleet;"
			   "CREATE TABLE aifleet.schema_migrations (version integer PRIMARY KEY,"
			   " name text NOT NULL, checksum text NOT NULL,"
			   " applied_at timestamptz NOT NULL DEFAULT now())");
	apply_by_hand(db, 0, n);
}

/*
 * An upgrade from the previous schema with data in it: the database is
 * brought to migration 001 by hand, filled, then migrated by the store.
 * Every row survives, and the delete guard's state and columns are usable.
 */
static void test_upgrade_from_001_with_data(void **state)
{
	af_testdb db;
	af_store *s = NULL;
	PGconn *c;
	PGresult *res;
	int applied = -1;

	(void)state;
	assert_int_equal(af_migrations[0].version, 1);
	migrate_by_hand(&db, 1);
	af_testdb_exec(&db,
		       "INSERT INTO aifleet.sync_run (trigger, tool_version, status)"
		       " VALUES ('old', '0.1.0', 'partial');"
		       "INSERT INTO aifleet.scope_state (provider, account, region, product,"
		       " last_run_id, last_attempt_at, last_complete_at, last_state, last_error)"
		       " VALUES ('alibaba', 'a', 'cn-beijing', 'tair_kvcache', 1, now(), now(),"
		       "  'complete', NULL),"
		       " ('tencent', 't', 'ap-guangzhou', 'tione', 1, now(), NULL, 'failed', 'x');"
		       "INSERT INTO aifleet.instance (provider, account, product, region, native_id,"
		       " content_hash, first_seen_at, last_changed_at, last_run_id)"
		       " VALUES ('alibaba', 'a', 'tair_kvcache', 'cn-beijing', 'tk-1', '\\x00',"
		       "  now(), now(), 1)");

	assert_int_equal(af_store_connect(&s, db.conninfo), 0);
	assert_int_equal(af_store_migrate(s, &applied), 0);
	assert_int_equal(applied, (int)af_migrations_count - 1);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.instance"
						  " WHERE native_id = 'tk-1'"),
			 1);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.scope_freshness"
						  " WHERE held_deletes IS NULL AND held_live IS NULL"),
			 2);
	assert_int_equal(af_testdb_query_int(&db, "SELECT scopes_held FROM aifleet.sync_run"), 0);
	af_testdb_exec(&db, "UPDATE aifleet.scope_state SET last_state = 'held', held_deletes = 12,"
			    " held_live = 20 WHERE product = 'tair_kvcache'");
	c = PQconnectdb(db.conninfo);
	res = PQexec(c, "UPDATE aifleet.scope_state SET last_state = 'gone'");
	assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
	PQclear(res);
	PQfinish(c);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* The moments the read side is asked about: before the first run, each
 * run's start, halfway to the next, now. */
static const char moments_sql[] =
	"CREATE TABLE t_moment AS"
	" SELECT started_at - interval '1 second' AS ts FROM aifleet.sync_run WHERE id = 1"
	" UNION SELECT started_at FROM aifleet.sync_run"
	" UNION SELECT started_at + (lead(started_at) OVER (ORDER BY id) - started_at) / 2"
	"  FROM aifleet.sync_run"
	" UNION SELECT now()";

/* Every read-side answer at every moment, as jsonb rows in t_<prefix>. */
static void snapshot_read_side(af_testdb *db, const char *prefix)
{
	char sql[1024];

	snprintf(sql, sizeof(sql),
		 "CREATE TABLE %s_answer AS"
		 " SELECT 'instance' AS f, m.ts, to_jsonb(x) AS row FROM t_moment m,"
		 "  LATERAL aifleet.instances_as_of(m.ts) x WHERE m.ts IS NOT NULL"
		 " UNION ALL SELECT 'service', m.ts, to_jsonb(x) FROM t_moment m,"
		 "  LATERAL aifleet.services_as_of(m.ts) x WHERE m.ts IS NOT NULL"
		 " UNION ALL SELECT 'resource', m.ts, to_jsonb(x) FROM t_moment m,"
		 "  LATERAL aifleet.resources_as_of(m.ts) x WHERE m.ts IS NOT NULL"
		 " UNION ALL SELECT 'fleet', m.ts, to_jsonb(x) FROM t_moment m,"
		 "  LATERAL aifleet.fleet_as_of(m.ts) x WHERE m.ts IS NOT NULL"
		 " UNION ALL SELECT 'feed', NULL, to_jsonb(x) FROM aifleet.change_feed x"
		 " UNION ALL SELECT 'capacity', NULL, to_jsonb(x) FROM aifleet.capacity_summary x"
		 " UNION ALL SELECT 'current', NULL, to_jsonb(x) FROM aifleet.current_resources x",
		 prefix);
	af_testdb_exec(db, sql);
}

/*
 * The upgrade to 003 on a real history: a database at 002 holding what
 * the 002 loader wrote over six runs (tests/fixtures/store/history-002.sql:
 * creations, renames, deletions, restorations, held scopes). Every answer
 * of the read side -- the as-of functions at every run's start and between
 * runs, the change feed, the current views -- is taken with 002's
 * functions, the store migrates, and 003's functions must give the very
 * same rows, with every version kept.
 */
static void test_upgrade_002_history_reads_the_same(void **state)
{
	af_testdb db;
	af_store *s = NULL;
	char *fixture;
	int applied = -1;

	(void)state;
	assert_true(af_migrations_count >= 3);
	migrate_by_hand(&db, 2);
	fixture = af_test_read_file(AF_FIXTURES_DIR "/store/history-002.sql", NULL);
	assert_non_null(fixture);
	af_testdb_exec(&db, fixture);
	free(fixture);
	assert_true(af_testdb_query_int(&db, "SELECT count(DISTINCT change) FROM aifleet.history") == 4);
	/* 001 put btree_gist where "$user" pointed: schema aifleet, for user aifleet */
	assert_true(af_testdb_query_int(&db, "SELECT count(*) FROM pg_proc WHERE pronamespace ="
					     " 'aifleet'::regnamespace AND proname LIKE 'gbt%'") > 100);
	af_testdb_exec(&db, moments_sql);
	snapshot_read_side(&db, "before");
	assert_true(af_testdb_query_int(&db, "SELECT count(*) FROM before_answer") > 5000);
	af_testdb_exec(&db, "CREATE TABLE before_history AS SELECT id, entity_type, entity_id,"
			    " valid, change, changed_at, run_id, diff FROM aifleet.history");

	apply_by_hand(&db, 2, 4);
	snapshot_read_side(&db, "after");
	assert_int_equal(af_testdb_query_int(&db,
		"SELECT count(*) FROM ((TABLE before_answer EXCEPT ALL TABLE after_answer)"
		" UNION ALL (TABLE after_answer EXCEPT ALL TABLE before_answer)) d"), 0);
	/* and the store takes it from there */
	assert_int_equal(af_store_connect(&s, db.conninfo), 0);
	assert_int_equal(af_store_migrate(s, &applied), 0);
	assert_int_equal(applied, (int)af_migrations_count - 4);
	/* every version kept as it was, and the open ones compacted */
	assert_int_equal(af_testdb_query_int(&db,
		"SELECT count(*) FROM ((TABLE before_history EXCEPT SELECT id, entity_type,"
		" entity_id, valid, change, changed_at, run_id, diff FROM aifleet.history)"
		" UNION ALL (SELECT id, entity_type, entity_id, valid, change, changed_at, run_id,"
		" diff FROM aifleet.history EXCEPT TABLE before_history)) d"), 0);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.history"
						  " WHERE upper_inf(valid) AND NOT isempty(valid)"
						  " AND content IS NOT NULL"), 0);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.history"
						  " WHERE content IS NULL"),
			 af_testdb_query_int(&db, "SELECT (SELECT count(*) FROM aifleet.instance WHERE"
						  " deleted_at IS NULL) + (SELECT count(*) FROM"
						  " aifleet.service WHERE deleted_at IS NULL) + (SELECT"
						  " count(*) FROM aifleet.resource WHERE deleted_at IS NULL)"));
	/* btree_gist left schema aifleet */
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM pg_proc"
						  " WHERE pronamespace = 'aifleet'::regnamespace"
						  " AND proname LIKE 'gbt%'"), 0);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* The fleet of one run of the 003 history below. */
enum {
	H_RENAME = 1, /* tk-1 is renamed */
	H_GPU4 = 2,   /* tk-1 has 4 GPUs, not 2 */
	H_NO_TK2 = 4, /* tk-2 and its resource vanished */
	H_NO_SVC = 8, /* svc-1 and its resource vanished */
	H_TK3 = 16,   /* tk-3 appears */
	H_SVC2 = 32,  /* svc-1 is renamed */
};

static const af_scope HA = {"alibaba", "a", "cn-beijing", "tair_kvcache"};
static const af_scope HB = {"tencent", "t", "ap-guangzhou", "tione"};

static void history_run(af_store *s, unsigned flags)
{
	af_run_options opts = {.trigger = "test"};
	af_load_summary sum;
	af_loader *l = NULL;

	if (af_loader_begin(&l, s, &opts) < 0)
		fail_msg("begin: %s", af_error_last());
	assert_int_equal(st_inst(l, &HA, "tk-1", flags & H_RENAME ? "one-renamed" : "one"), 0);
	assert_int_equal(st_res(l, &HA, AF_OWNER_INSTANCE, "tk-1", "gpu_count",
				flags & H_GPU4 ? 4 : 2, "cards", "A10"), 0);
	assert_int_equal(st_res(l, &HA, AF_OWNER_INSTANCE, "tk-1", "cpu_cores", 8, "cores", NULL), 0);
	if (!(flags & H_NO_SVC)) {
		assert_int_equal(st_svc_named(l, &HA, "tk-1", "svc-1",
					      flags & H_SVC2 ? "chat v2" : "chat", "qwen-72b", 1),
				 0);
		assert_int_equal(st_res(l, &HA, AF_OWNER_SERVICE, "svc-1", "memory_gib", 16, "GiB",
					NULL), 0);
	}
	if (!(flags & H_NO_TK2)) {
		assert_int_equal(st_inst(l, &HA, "tk-2", "two"), 0);
		assert_int_equal(st_res(l, &HA, AF_OWNER_INSTANCE, "tk-2", "cpu_cores", 4, "cores",
					NULL), 0);
	}
	if (flags & H_TK3) {
		assert_int_equal(st_inst(l, &HA, "tk-3", "three"), 0);
		assert_int_equal(st_res(l, &HA, AF_OWNER_INSTANCE, "tk-3", "cpu_cores", 2, "cores",
					NULL), 0);
	}
	assert_int_equal(st_inst(l, &HB, "ms-1", "group"), 0);
	assert_int_equal(st_svc(l, &HB, "ms-1", "ms-1-1", "llama", 2), 0);
	assert_int_equal(st_res(l, &HB, AF_OWNER_SERVICE, "ms-1-1", "gpu_count", 2, "cards", "T4"), 0);
	st_done(l, &HA, AF_SCOPE_COMPLETE);
	st_done(l, &HB, AF_SCOPE_COMPLETE);
	if (af_loader_commit(l, &sum) < 0)
		fail_msg("commit: %s", af_error_last());
	af_loader_free(l);
}

/*
 * Every answer of the read side, for 003 and later: the as-of functions at
 * every moment, every entity's versions in their order (t_entity names
 * them), the change feed, and every view but for the clock-dependent
 * scope_freshness.age; and the shape of the read side -- every view's
 * columns and every function's arguments and result types.
 */
static void snapshot_read_side_003(af_testdb *db, const char *prefix)
{
	char sql[2048];

	snapshot_read_side(db, prefix);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO %s_answer"
		 " SELECT 'entity', NULL::timestamptz, to_jsonb(e) || jsonb_build_object('n', x.n, 'v', to_jsonb(x))"
		 "  FROM t_entity e, LATERAL aifleet.entity_history(e.provider, e.account, e.product,"
		 "  e.native_id) WITH ORDINALITY x(entity_type, entity_id, valid, change, changed_at,"
		 "  run_id, diff, content, n)"
		 " UNION ALL SELECT 'current_instances', NULL, to_jsonb(x) FROM aifleet.current_instances x"
		 " UNION ALL SELECT 'current_services', NULL, to_jsonb(x) FROM aifleet.current_services x"
		 " UNION ALL SELECT 'run_status', NULL, to_jsonb(x) FROM aifleet.run_status x"
		 " UNION ALL SELECT 'scope_freshness', NULL, to_jsonb(x) - 'age'"
		 "  FROM aifleet.scope_freshness x;"
		 "CREATE TABLE %s_shape AS"
		 " SELECT c.relname::text AS object, a.attnum::int AS n, a.attname::text AS name,"
		 "  format_type(a.atttypid, a.atttypmod) AS type"
		 "  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
		 "  WHERE c.relnamespace = 'aifleet'::regnamespace AND c.relkind = 'v'"
		 "  AND a.attnum > 0 AND NOT a.attisdropped"
		 " UNION ALL SELECT p.proname::text, 0, pg_get_function_arguments(p.oid),"
		 "  pg_get_function_result(p.oid) FROM pg_proc p"
		 "  WHERE p.pronamespace = 'aifleet'::regnamespace",
		 prefix, prefix);
	af_testdb_exec(db, sql);
}

/*
 * The upgrade to 004 on a history the loader wrote at 003: six runs with
 * creations, renames (of an instance and of a service), a capacity change,
 * deletions of an instance and of a service with their resources,
 * restorations, a skipped run. One open
 * version keeps a stored content that differs from its current row (003
 * kept those; nothing aifleet writes has one), so the read side's
 * preference for a stored content is compared too. Every answer is taken
 * with 003's views and functions, the store migrates, and 004's must give
 * the very same rows, in the same order where the contract orders them,
 * with the same columns and types; 004 adds one view and nothing else.
 */
static void test_upgrade_003_reads_the_same(void **state)
{
	static const unsigned runs[] = {0,
					H_RENAME | H_GPU4,
					H_RENAME | H_GPU4 | H_NO_TK2 | H_NO_SVC,
					H_GPU4 | H_TK3,
					H_GPU4 | H_TK3,
					H_TK3 | H_NO_TK2 | H_SVC2};
	af_testdb db;
	af_store *s = NULL;
	PGconn *c;
	PGresult *res;
	char *plan;
	int applied = -1;

	(void)state;
	assert_true(af_migrations_count >= 4);
	assert_int_equal(af_migrations[2].version, 3);
	migrate_by_hand(&db, 3);
	assert_int_equal(af_store_connect(&s, db.conninfo), 0);
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
		history_run(s, runs[i]);
	af_testdb_exec(&db, "UPDATE aifleet.history h SET content = to_jsonb(t) || '{\"name\": \"kept\"}'"
			    " FROM aifleet.instance t WHERE t.id = h.entity_id AND t.native_id = 'tk-3'"
			    " AND h.content IS NULL");
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(DISTINCT change) FROM aifleet.history"), 4);
	assert_true(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.history WHERE change = 'restored'"
					     " AND entity_type = 'service'") >= 1);
	assert_true(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.history WHERE content IS NULL") > 5);
	assert_true(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.history WHERE content IS NOT NULL"
					     " AND NOT isempty(valid) AND NOT upper_inf(valid)") > 3);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.sync_run"), 6);
	af_testdb_exec(&db, moments_sql);
	af_testdb_exec(&db, "CREATE TABLE t_entity AS SELECT DISTINCT provider, account, product, native_id"
			    " FROM aifleet.change_feed");
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM t_entity"), 12);
	snapshot_read_side_003(&db, "before");
	assert_true(af_testdb_query_int(&db, "SELECT count(*) FROM before_answer") > 300);
	/* tk-3's kept content: in instances_as_of and fleet_as_of at the six
	 * moments from its creation on, and in the feed's row of its creation */
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM before_answer"
						  " WHERE row ->> 'name' = 'kept'"), 6 + 6 + 1);

	apply_by_hand(&db, 3, 4);
	snapshot_read_side_003(&db, "after");
	assert_int_equal(af_testdb_query_int(&db,
		"SELECT count(*) FROM ((TABLE before_answer EXCEPT ALL TABLE after_answer)"
		" UNION ALL (TABLE after_answer EXCEPT ALL TABLE before_answer)) d"), 0);
	assert_int_equal(af_testdb_query_int(&db,
		"SELECT count(*) FROM ((TABLE before_shape EXCEPT ALL TABLE after_shape)"
		" UNION ALL (SELECT * FROM (TABLE after_shape EXCEPT ALL TABLE before_shape) n"
		"  WHERE object <> 'entity_versions')) d"), 0);
	/* the new view: every version but the deletion markers */
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.entity_versions"),
			 af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.history WHERE NOT isempty(valid)"));
	/* fleet_as_of is inlined into the caller's query: the plan's top node
	 * is no function scan */
	plan = af_testdb_query_value(&db, "EXPLAIN SELECT * FROM aifleet.fleet_as_of(now())");
	assert_non_null(plan);
	assert_null(strstr(plan, "Function Scan"));
	free(plan);
	/* and the reader gets the same answers */
	c = PQconnectdb(db.conninfo);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PQclear(PQexec(c, "SET ROLE aifleet_reader"));
	res = PQexec(c, "SELECT count(*) FROM aifleet.fleet_as_of(now()) WHERE content ->> 'name' = 'kept'");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(res, 0, 0), "1");
	PQclear(res);
	res = PQexec(c, "SELECT count(*) FROM aifleet.change_feed");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	assert_int_equal(atoll(PQgetvalue(res, 0, 0)),
			 af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.history"));
	PQclear(res);
	PQfinish(c);
	assert_int_equal(af_store_migrate(s, &applied), 0);
	assert_int_equal(applied, (int)af_migrations_count - 4);
	af_store_free(s);
	af_testdb_drop(&db);
}

/*
 * The upgrade to 005 (analytics) on a history the loader wrote at 004:
 * every answer of the read side is what it was once the columns 005
 * appends are set aside, but for capacity_summary's GPU memory, which now
 * counts the catalog's figure for tk-1's A10s: without it
 * (gpu_memory_gib - gpu_memory_gib_catalog) it is the old one. Nothing of
 * the read side's shape is removed or changed, only added to.
 */
static void test_upgrade_004_reads_the_same(void **state)
{
	static const unsigned runs[] = {0, H_RENAME | H_GPU4, H_GPU4 | H_NO_TK2 | H_NO_SVC | H_TK3,
					H_TK3 | H_SVC2};
	static const char strip_sql[] =
		"UPDATE after_answer SET row = row - 'model_key' - 'gpu_memory_gib_catalog'"
		" || CASE WHEN f = 'capacity' THEN jsonb_build_object('gpu_memory_gib',"
		"  (row ->> 'gpu_memory_gib')::float8 - (row ->> 'gpu_memory_gib_catalog')::float8)"
		"  ELSE '{}' END"
		" WHERE f IN ('capacity', 'current', 'current_instances', 'current_services')";
	af_testdb db;
	af_store *s = NULL;
	int applied = -1;

	(void)state;
	assert_true(af_migrations_count >= 5);
	assert_int_equal(af_migrations[3].version, 4);
	migrate_by_hand(&db, 4);
	assert_int_equal(af_store_connect(&s, db.conninfo), 0);
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
		history_run(s, runs[i]);
	af_testdb_exec(&db, moments_sql);
	af_testdb_exec(&db, "CREATE TABLE t_entity AS SELECT DISTINCT provider, account, product, native_id"
			    " FROM aifleet.change_feed");
	snapshot_read_side_003(&db, "before");
	assert_true(af_testdb_query_int(&db, "SELECT count(*) FROM before_answer") > 100);

	apply_by_hand(&db, 4, 5);
	snapshot_read_side_003(&db, "after");
	/* the catalog's memory is there: tk-1's 2 A10 (24 GiB) and ms-1-1's
	 * 2 T4 (16 GiB), the last run's fleet */
	assert_int_equal(af_testdb_query_int(&db, "SELECT sum((row ->> 'gpu_memory_gib_catalog')::float8)"
						  " FROM after_answer WHERE f = 'capacity'"),
			 2 * 24 + 2 * 16);
	af_testdb_exec(&db, strip_sql);
	assert_int_equal(af_testdb_query_int(&db,
		"SELECT count(*) FROM ((TABLE before_answer EXCEPT ALL TABLE after_answer)"
		" UNION ALL (TABLE after_answer EXCEPT ALL TABLE before_answer)) d"), 0);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM (TABLE before_shape"
						  " EXCEPT ALL TABLE after_shape) d"), 0);
	assert_true(af_testdb_query_int(&db, "SELECT count(*) FROM (TABLE after_shape"
					     " EXCEPT ALL TABLE before_shape) d") >= 5);
	/* the new columns are filled from the rows already there */
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.current_services"
						  " WHERE model_key IS DISTINCT FROM lower(model)"), 0);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.derived_resources"), 2);
	assert_int_equal(af_store_migrate(s, &applied), 0);
	assert_int_equal(applied, (int)af_migrations_count - 5);
	af_store_free(s);
	af_testdb_drop(&db);
}

/*
 * The upgrade to 006 (shards) on a history the loader wrote at 005: the
 * runs already recorded keep every value and read as unsharded (shard and
 * scopes NULL, none busy); the read side answers as before; a run over
 * listed scopes then records them.
 */
static void test_upgrade_005_keeps_the_runs(void **state)
{
	static const unsigned runs[] = {0, H_RENAME | H_GPU4, H_GPU4 | H_NO_TK2 | H_TK3};
	af_testdb db;
	af_store *s = NULL;
	int applied = -1;

	(void)state;
	assert_true(af_migrations_count >= 6);
	assert_int_equal(af_migrations[5].version, 6);
	migrate_by_hand(&db, 5);
	assert_int_equal(af_store_connect(&s, db.conninfo), 0);
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
		history_run(s, runs[i]);
	af_testdb_exec(&db, moments_sql);
	af_testdb_exec(&db, "CREATE TABLE t_entity AS SELECT DISTINCT provider, account, product,"
			    " native_id FROM aifleet.change_feed;"
			    "CREATE TABLE runs_before AS SELECT * FROM aifleet.sync_run");
	snapshot_read_side_003(&db, "before");

	apply_by_hand(&db, 5, 6);
	snapshot_read_side_003(&db, "after");
	assert_int_equal(af_testdb_query_int(&db,
		"SELECT count(*) FROM ((TABLE before_answer EXCEPT ALL TABLE after_answer)"
		" UNION ALL (TABLE after_answer EXCEPT ALL TABLE before_answer)) d"), 0);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM runs_before"), 3);
	assert_int_equal(af_testdb_query_int(&db,
		"SELECT count(*) FROM (SELECT to_jsonb(r) - 'shard' - 'scopes' - 'scopes_busy'"
		" FROM aifleet.sync_run r EXCEPT SELECT to_jsonb(b) FROM runs_before b) d"), 0);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.sync_run"
						  " WHERE shard IS NULL AND scopes IS NULL"
						  " AND scopes_busy = 0"), 3);
	assert_int_equal(af_store_migrate(s, &applied), 0);
	assert_int_equal(applied, (int)af_migrations_count - 6);
	{
		af_scope sc = {"alibaba", "a1", "cn-beijing", "tair_kvcache"};
		bool busy[1] = {false};
		af_run_options ro = {.trigger = "test", .scopes = &sc, .nscopes = 1, .busy = busy,
				     .shard = "0/1"};
		af_load_summary sum;
		af_loader *l = NULL;

		assert_int_equal(af_loader_begin(&l, s, &ro), 0);
		assert_false(busy[0]);
		st_done(l, &sc, AF_SCOPE_COMPLETE);
		assert_int_equal(af_loader_commit(l, &sum), 0);
		af_loader_free(l);
		assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.sync_run"
							  " WHERE shard = '0/1' AND scopes ="
							  " '{alibaba/a1/cn-beijing/tair_kvcache}'"), 1);
	}
	af_store_free(s);
	af_testdb_drop(&db);
}

/* The upgrade to 007 (retention) on a history written at 006: nothing
 * of it changes, and history_span tells it whole, from the first run. */
static void test_upgrade_006_spans_the_history(void **state)
{
	static const unsigned runs[] = {0, H_RENAME | H_GPU4, H_NO_TK2 | H_TK3};
	af_testdb db;
	af_store *s = NULL;

	(void)state;
	assert_true(af_migrations_count >= 7);
	assert_int_equal(af_migrations[6].version, 7);
	migrate_by_hand(&db, 6);
	assert_int_equal(af_store_connect(&s, db.conninfo), 0);
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
		history_run(s, runs[i]);
	af_testdb_exec(&db, "CREATE TABLE h_before AS SELECT * FROM aifleet.history");
	apply_by_hand(&db, 6, 7);
	assert_int_equal(af_testdb_query_int(&db,
		"SELECT count(*) FROM ((TABLE h_before EXCEPT ALL TABLE aifleet.history)"
		" UNION ALL (TABLE aifleet.history EXCEPT ALL TABLE h_before)) d"), 0);
	assert_int_equal(af_testdb_query_int(&db,
		"SELECT count(*) FROM aifleet.history_span WHERE history_rows ="
		" (SELECT count(*) FROM aifleet.history) AND complete_from ="
		" (SELECT min(started_at) FROM aifleet.sync_run) AND pruned_before IS NULL"
		" AND last_prune_at IS NULL"), 1);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* The upgrade to 008 (free space in the entity tables' pages) on a
 * history written at 007: every row as it was, the setting on the three
 * entity tables only, and runs go on from the upgraded database. */
static void test_upgrade_007_leaves_room(void **state)
{
	static const unsigned runs[] = {0, H_RENAME | H_GPU4};
	static const char rows_sql[] =
	    "SELECT string_agg(r, ',' ORDER BY r) FROM ("
	    " SELECT to_jsonb(t)::text AS r FROM aifleet.instance t UNION ALL"
	    " SELECT to_jsonb(t)::text FROM aifleet.service t UNION ALL"
	    " SELECT to_jsonb(t)::text FROM aifleet.resource t UNION ALL"
	    " SELECT to_jsonb(t)::text FROM aifleet.history t) v";
	af_testdb db;
	af_store *s = NULL;
	char *before, *after;

	(void)state;
	assert_true(af_migrations_count >= 8);
	assert_int_equal(af_migrations[7].version, 8);
	migrate_by_hand(&db, 7);
	assert_int_equal(af_store_connect(&s, db.conninfo), 0);
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
		history_run(s, runs[i]);
	before = af_testdb_query_value(&db, rows_sql);
	apply_by_hand(&db, 7, 8);
	after = af_testdb_query_value(&db, rows_sql);
	assert_non_null(before);
	assert_string_equal(before, after);
	free(after);
	after = af_testdb_query_value(&db,
		"SELECT string_agg(c.relname || ':' || array_to_string(c.reloptions, ';'), ','"
		" ORDER BY c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
		" WHERE n.nspname = 'aifleet' AND c.reloptions IS NOT NULL AND c.relkind = 'r'");
	assert_string_equal(after, "instance:fillfactor=90,resource:fillfactor=90,service:fillfactor=90");
	/* a run after the upgrade: tk-2 vanishes, tk-3 appears */
	history_run(s, H_NO_TK2 | H_TK3);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.instance"
						  " WHERE deleted_at IS NOT NULL"), 1);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.instance"
						  " WHERE native_id = 'tk-3' AND deleted_at IS NULL"), 1);
	free(before);
	free(after);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_checksum_matches_postgres_sha256(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	PGconn *c = PQconnectdb(db.conninfo);
	const char *params[1] = {af_migrations[0].sql};
	PGresult *res;
	char *stored;

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	/* An independent SHA-256: PostgreSQL's sha256() over the same text. */
	res = PQexecParams(c, "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", 1, NULL,
			   params, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	stored = af_testdb_query_value(&db, "SELECT checksum FROM aifleet.schema_migrations ORDER BY version LIMIT 1");
	assert_string_equal(stored, PQgetvalue(res, 0, 0));
	free(stored);
	PQclear(res);
	PQfinish(c);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_tampered_checksum_refused(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	int applied = -1;

	af_testdb_exec(&db, "UPDATE aifleet.schema_migrations SET checksum = repeat('0', 64)"
			    " WHERE version = 1");
	assert_int_equal(af_store_migrate(s, &applied), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), af_migrations[0].name));
	assert_non_null(strstr(af_error_last(), "changed"));
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_unknown_migration_refused(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);

	af_testdb_exec(&db, "INSERT INTO aifleet.schema_migrations (version, name, checksum)"
			    " VALUES (999, '999_future.sql', repeat('a', 64))");
	assert_int_equal(af_store_migrate(s, NULL), AF_ERR_CONFIG);
	assert_non_null(strstr(af_error_last(), "999_future.sql"));
	af_store_free(s);
	af_testdb_drop(&db);
}

struct mig_thread {
	const char *conninfo;
	int rc, applied;
};

static void *migrate_thread(void *arg)
{
	struct mig_thread *t = arg;
	af_store *s = NULL;

	t->rc = af_store_connect(&s, t->conninfo);
	if (t->rc == 0)
		t->rc = af_store_migrate(s, &t->applied);
	af_store_free(s);
	return NULL;
}

static void test_concurrent_migrators(void **state)
{
	af_testdb db;
	struct mig_thread t[3];
	pthread_t th[3];
	int total = 0;

	af_testdb_create(&db);
	for (int i = 0; i < 3; i++) {
		t[i] = (struct mig_thread){db.conninfo, -100, -1};
		assert_int_equal(pthread_create(&th[i], NULL, migrate_thread, &t[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].rc, 0);
		total += t[i].applied;
	}
	/* the advisory lock makes exactly one of them apply everything */
	assert_int_equal(total, (int)af_migrations_count);
	af_testdb_drop(&db);
}

static void test_everything_commented(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);

	/* every table and view */
	assert_int_equal(af_testdb_query_int(&db,
		"SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
		" WHERE n.nspname = 'aifleet' AND c.relkind IN ('r', 'v')"
		" AND obj_description(c.oid, 'pg_class') IS NULL"), 0);
	/* every column of every table and view */
	assert_int_equal(af_testdb_query_int(&db,
		"SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
		" JOIN pg_namespace n ON n.oid = c.relnamespace"
		" WHERE n.nspname = 'aifleet' AND c.relkind IN ('r', 'v') AND a.attnum > 0"
		" AND NOT a.attisdropped AND col_description(c.oid, a.attnum) IS NULL"), 0);
	assert_true(af_testdb_query_int(&db,
		"SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
		" WHERE n.nspname = 'aifleet' AND c.relkind = 'v'") >= 6);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_reader_role(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	PGconn *c = PQconnectdb(db.conninfo);
	PGresult *res;
	static const char *views[] = {"current_instances", "current_services", "current_resources",
				      "capacity_summary", "change_feed", "run_status", "scope_freshness",
				      "entity_versions", "derived_resources", "capacity_by_model", "model_keys", "gpu_model", "gpu_alias",
				      "model_alias"};

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM pg_roles WHERE rolname ="
						  " 'aifleet_reader' AND NOT rolcanlogin"), 1);
	PQclear(PQexec(c, "SET ROLE aifleet_reader"));
	for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++) {
		char sql[128];

		snprintf(sql, sizeof(sql), "SELECT * FROM aifleet.%s", views[i]);
		res = PQexec(c, sql);
		assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
		PQclear(res);
	}
	res = PQexec(c, "SELECT count(*) FROM aifleet.fleet_as_of(now())");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	PQclear(res);
	/* but not the tables, and no writes */
	res = PQexec(c, "SELECT * FROM aifleet.instance");
	assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
	PQclear(res);
	res = PQexec(c, "DELETE FROM aifleet.sync_run");
	assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
	PQclear(res);
	PQfinish(c);
	af_store_free(s);
	af_testdb_drop(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_from_empty_and_again),
		cmocka_unit_test(test_upgrade_from_001_with_data),
		cmocka_unit_test(test_upgrade_002_history_reads_the_same),
		cmocka_unit_test(test_upgrade_003_reads_the_same),
		cmocka_unit_test(test_upgrade_004_reads_the_same),
		cmocka_unit_test(test_upgrade_005_keeps_the_runs),
		cmocka_unit_test(test_upgrade_006_spans_the_history),
		cmocka_unit_test(test_upgrade_007_leaves_room),
		cmocka_unit_test(test_checksum_matches_postgres_sha256),
		cmocka_unit_test(test_tampered_checksum_refused),
		cmocka_unit_test(test_unknown_migration_refused),
		cmocka_unit_test(test_concurrent_migrators),
		cmocka_unit_test(test_everything_commented),
		cmocka_unit_test(test_reader_role),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
