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

/* Brings a new database to the first `n` migrations by hand: their texts
 * and bookkeeping rows, as aifleet would have left them. */
static void migrate_by_hand(af_testdb *db, size_t n)
{
	PGconn *c;

	assert_true(af_migrations_count >= n);
	af_testdb_create(db);
	af_testdb_exec(db, "CREATE SCHEMA aifleet;"
			   "CREATE TABLE aifleet.schema_migrations (version integer PRIMARY KEY,"
			   " name text NOT NULL, checksum text NOT NULL,"
			   " applied_at timestamptz NOT NULL DEFAULT now())");
	c = PQconnectdb(db->conninfo);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	for (size_t i = 0; i < n; i++) {
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

	assert_int_equal(af_store_connect(&s, db.conninfo), 0);
	assert_int_equal(af_store_migrate(s, &applied), 0);
	assert_true(applied >= 1);
	snapshot_read_side(&db, "after");
	assert_int_equal(af_testdb_query_int(&db,
		"SELECT count(*) FROM ((TABLE before_answer EXCEPT ALL TABLE after_answer)"
		" UNION ALL (TABLE after_answer EXCEPT ALL TABLE before_answer)) d"), 0);
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
				      "capacity_summary", "change_feed", "run_status", "scope_freshness"};

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
		cmocka_unit_test(test_checksum_matches_postgres_sha256),
		cmocka_unit_test(test_tampered_checksum_refused),
		cmocka_unit_test(test_unknown_migration_refused),
		cmocka_unit_test(test_concurrent_migrators),
		cmocka_unit_test(test_everything_commented),
		cmocka_unit_test(test_reader_role),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
