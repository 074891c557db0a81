/*
 * aifleet prune against a real PostgreSQL, on a history the loader wrote:
 * every as-of answer and every change of the feed at the cutoff or later
 * is what it was; exactly the versions that ended by the cutoff (counted
 * by hand from the script below) and the deletion markers before it go;
 * a dry run deletes and records nothing; a prune that fails midway leaves
 * each entity a contiguous run of its latest versions, and the next one
 * finishes the job; a scope a sync holds is left alone; a run over the
 * whole database keeps a prune out; status shows the retained span.
 */
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aifleet/error.h"
#include "aifleet/prune.h"
#include "aifleet/store.h"
#include "storetest.h"
#include "testdb.h"
#include "testutil.h"

#define NRUNS 6
#define AIFLEET_BIN AF_BINARY_DIR "/src/cli/aifleet"

static const af_scope beijing = {"alibaba", "acct", "cn-beijing", "tair_kvcache"};
static const af_scope hangzhou = {"alibaba", "acct", "cn-hangzhou", "tair_kvcache"};

/*
 * Run r (1..6), in both scopes alike ("bj-" and "hz-" ids):
 *   a  renamed in every run                  -> a version closes in runs 2..6
 *   b  renamed in runs 2 and 5               -> closes in runs 2 and 5
 *   c  gone in run 3 (a deletion marker), back in run 5 (restored)
 *   d  never changes                         -> never closes
 *   e  (four more, never changing: the guard allows the deletion of c)
 */
static void one_run(af_store *s, int r)
{
	af_run_options ro = {.trigger = "test"};
	const af_scope *scopes[] = {&beijing, &hangzhou};
	af_load_summary sum;
	af_loader *l = NULL;

	assert_int_equal(af_loader_begin(&l, s, &ro), 0);
	for (size_t k = 0; k < 2; k++) {
		const char *p = k == 0 ? "bj-" : "hz-";
		char id[32], name[32];

		snprintf(id, sizeof(id), "%sa", p);
		snprintf(name, sizeof(name), "a run %d", r);
		assert_int_equal(st_inst(l, scopes[k], id, name), 0);
		snprintf(id, sizeof(id), "%sb", p);
		assert_int_equal(st_inst(l, scopes[k], id, r < 2 ? "b one" : r < 5 ? "b two" : "b three"),
				 0);
		if (r < 3 || r >= 5) {
			snprintf(id, sizeof(id), "%sc", p);
			assert_int_equal(st_inst(l, scopes[k], id, "c"), 0);
		}
		for (int e = 0; e < 5; e++) {
			snprintf(id, sizeof(id), "%se%d", p, e);
			assert_int_equal(st_inst(l, scopes[k], id, "steady"), 0);
		}
		st_done(l, scopes[k], AF_SCOPE_COMPLETE);
	}
	assert_int_equal(af_loader_commit(l, &sum), 0);
	af_loader_free(l);
}

/* fleet_as_of and instances_as_of at every moment, and the feed. */
static void snapshot(af_testdb *db, const char *name)
{
	char sql[1024];

	snprintf(sql, sizeof(sql),
		 "CREATE TABLE %s AS"
		 " SELECT 'fleet' AS f, m.t, to_jsonb(x) AS row FROM t_moment m,"
		 "  LATERAL aifleet.fleet_as_of(m.t) x"
		 " UNION ALL SELECT 'instances', m.t, to_jsonb(x) FROM t_moment m,"
		 "  LATERAL aifleet.instances_as_of(m.t) x"
		 " UNION ALL SELECT 'feed', x.time, to_jsonb(x) FROM aifleet.change_feed x",
		 name);
	af_testdb_exec(db, sql);
}

/* Six runs, then every answer of the read side kept for comparison. */
static af_store *history(af_testdb *db)
{
	af_store *s = st_open(db);

	for (int r = 1; r <= NRUNS; r++)
		one_run(s, r);
	/* moments: every run's start, and just before and after it */
	af_testdb_exec(db, "CREATE TABLE t_moment AS SELECT t FROM aifleet.sync_run r,"
			   " LATERAL (VALUES (r.started_at), (r.started_at - interval '1 ms'),"
			   " (r.started_at + interval '1 ms')) m (t);"
			   "INSERT INTO t_moment SELECT now();"
			   "CREATE TABLE t_history AS SELECT * FROM aifleet.history");
	snapshot(db, "before");
	return s;
}

static long long q(const af_testdb *db, const char *sql)
{
	return af_testdb_query_int(db, sql);
}

/* The answers at `cutoff` or later are the same before and after. */
static void assert_same_from(const af_testdb *db, const char *cutoff)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM ((SELECT * FROM before WHERE t >= '%s' EXCEPT ALL"
		 " SELECT * FROM after WHERE t >= '%s') UNION ALL (SELECT * FROM after"
		 " WHERE t >= '%s' EXCEPT ALL SELECT * FROM before WHERE t >= '%s')) d",
		 cutoff, cutoff, cutoff, cutoff);
	assert_int_equal(q(db, sql), 0);
}

/* Start of run `r`, as --before takes it. */
static char *run_start(const af_testdb *db, int r)
{
	char sql[160], *v;

	snprintf(sql, sizeof(sql),
		 "SELECT to_char(started_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.USTZH:TZM')"
		 " FROM aifleet.sync_run WHERE id = %d", r);
	v = af_testdb_query_value(db, sql);
	assert_non_null(v);
	return v;
}

/* Stops the prune once it deleted 3 rows: a quarter of the way. */
static int fail_midway(void *ctx, uint64_t batches, uint64_t deleted)
{
	uint64_t *stopped_at = ctx;

	if (deleted < 3)
		return 0;
	*stopped_at = batches;
	return af_error_set(AF_ERR_DB, "the test stops the prune here");
}

/*
 * Cutoff: the start of run 4. What ended by then, per scope: a's versions
 * of runs 1, 2 and 3 (closed by runs 2, 3, 4), b's of run 1 (closed by 2),
 * c's of runs 1-2 (closed by the deletion in run 3); and c's deletion
 * marker of run 3. So 5 versions and 1 marker a scope: 10 and 2.
 */
static void test_prune_keeps_every_answer_from_the_cutoff(void **state)
{
	af_prune_options o = {.batch_ids = 4};
	af_prune_result r;
	af_testdb db;
	af_store *s;
	char *cutoff, sql[768];
	long long rows;

	(void)state;
	s = history(&db);
	cutoff = run_start(&db, 4);
	o.before = cutoff;
	rows = q(&db, "SELECT count(*) FROM aifleet.history");

	/* dry: the counts, nothing deleted, nothing recorded */
	o.dry_run = true;
	assert_int_equal(af_prune(s, &o, &r), 0);
	assert_int_equal(r.versions, 10);
	assert_int_equal(r.markers, 2);
	assert_int_equal(r.scopes, 2);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history"), rows);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history_prune"), 0);

	o.dry_run = false;
	assert_int_equal(af_prune(s, &o, &r), 0);
	assert_int_equal(r.versions, 10);
	assert_int_equal(r.markers, 2);
	assert_true(r.batches > 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history"), rows - 12);
	snapshot(&db, "after");
	assert_same_from(&db, cutoff);
	/* and before the cutoff the answers did change: that history is gone */
	assert_true(q(&db, "SELECT count(*) FROM (SELECT * FROM before EXCEPT ALL"
			   " SELECT * FROM after) d") > 0);
	/* what went is exactly what ended by the cutoff */
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM (SELECT id FROM t_history EXCEPT SELECT id FROM aifleet.history) d"
		 " JOIN t_history h USING (id) WHERE NOT ((NOT isempty(h.valid) AND"
		 " upper(h.valid) <= '%s') OR (isempty(h.valid) AND h.changed_at < '%s'))",
		 cutoff, cutoff);
	assert_int_equal(q(&db, sql), 0);
	/* recorded, and status tells the span */
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history_prune WHERE status = 'finished'"
				" AND versions = 10 AND markers = 2 AND scopes = 2"), 1);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM aifleet.history_span"
				   " WHERE complete_from = '%s' AND pruned_before = '%s'", cutoff, cutoff);
	assert_int_equal(q(&db, sql), 1);
	{
		char *text = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&text, &len);

		assert_int_equal(af_store_print_status(s, out, 3), 0);
		assert_int_equal(af_store_print_status_json(s, out, 3), 0);
		fclose(out);
		assert_non_null(strstr(text, "as-of answers complete from"));
		assert_non_null(strstr(text, "pruned before"));
		assert_non_null(strstr(text, "\"complete_from\""));
		free(text);
	}
	/* a second prune with the same cutoff has nothing left to do */
	assert_int_equal(af_prune(s, &o, &r), 0);
	assert_int_equal(r.versions + r.markers, 0);
	free(cutoff);
	af_store_free(s);
	af_testdb_drop(&db);
}

/*
 * One history id a batch, stopped once 3 rows went: those deletions stay
 * (each batch its own transaction), every entity keeps
 * a contiguous run of its latest versions, every answer from the cutoff
 * on is the same, the prune is recorded as failed, and the next prune
 * finishes the job.
 */
static void test_prune_stopped_midway_is_consistent(void **state)
{
	uint64_t stopped_at = 0;
	af_prune_options o = {.batch_ids = 1, .after_batch = fail_midway, .ctx = &stopped_at};
	af_prune_result r;
	af_testdb db;
	af_store *s;
	char *cutoff, sql[768];

	(void)state;
	s = history(&db);
	cutoff = run_start(&db, 4);
	o.before = cutoff;
	assert_int_equal(af_prune(s, &o, &r), AF_ERR_DB);
	assert_non_null(strstr(af_error_last(), "stops the prune here"));
	assert_int_equal(r.batches, stopped_at);
	assert_int_equal(r.versions + r.markers, 3);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history_prune WHERE status = 'failed'"
				" AND error LIKE '%stops the prune here%'"), 1);
	/* no entity lost a version while an older one of it stayed */
	snprintf(sql, sizeof(sql),
		 "WITH gone AS (SELECT * FROM t_history WHERE id NOT IN (SELECT id FROM aifleet.history))"
		 " SELECT count(*) FROM gone g JOIN aifleet.history h ON h.entity_id = g.entity_id"
		 " AND h.id < g.id");
	assert_int_equal(q(&db, sql), 0);
	snapshot(&db, "after");
	assert_same_from(&db, cutoff);
	/* the span counts the cutoff of the prune that failed: before it,
	 * answers may be incomplete */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM aifleet.history_span"
				   " WHERE complete_from = '%s'", cutoff);
	assert_int_equal(q(&db, sql), 1);

	o.after_batch = NULL;
	assert_int_equal(af_prune(s, &o, &r), 0);
	assert_int_equal(q(&db, "SELECT count(*) FROM t_history") -
				 q(&db, "SELECT count(*) FROM aifleet.history"),
			 12);
	free(cutoff);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* A scope a sync holds keeps its history; a run over the whole database
 * keeps the prune out (AF_ERR_LOCKED); bad cutoffs are AF_ERR_PARAM. */
static void test_prune_locks_and_cutoffs(void **state)
{
	af_prune_options o = {0};
	af_prune_result r;
	af_testdb db;
	af_store *s, *other = NULL;
	af_loader *l = NULL;
	af_run_options whole = {.trigger = "whole"};
	char *cutoff, sql[160];
	PGconn *holder;
	PGresult *res;

	(void)state;
	s = history(&db);
	cutoff = run_start(&db, 4);
	o.before = cutoff;

	holder = PQconnectdb(db.conninfo);
	assert_int_equal(PQstatus(holder), CONNECTION_OK);
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%lld)",
		 (long long)(int64_t)af_scope_hash(&hangzhou));
	res = PQexec(holder, sql);
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	PQclear(res);
	assert_int_equal(af_prune(s, &o, &r), 0);
	assert_int_equal(r.busy, 1);
	assert_int_equal(r.scopes, 1);
	assert_int_equal(r.versions, 5);
	assert_int_equal(r.markers, 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM t_history WHERE content ->> 'region' = 'cn-hangzhou'"
				" AND id NOT IN (SELECT id FROM aifleet.history)"), 0);
	PQfinish(holder);

	/* a run over the whole database holds the run key exclusively */
	assert_int_equal(af_store_connect(&other, db.conninfo), 0);
	assert_int_equal(af_loader_begin(&l, other, &whole), 0);
	assert_int_equal(af_prune(s, &o, &r), AF_ERR_LOCKED);
	assert_non_null(strstr(af_error_last(), "another aifleet run holds"));
	af_loader_free(l);
	af_store_free(other);
	assert_int_equal(af_prune(s, &o, &r), 0);
	assert_int_equal(r.versions, 5); /* hangzhou's, now */

	o.before = NULL;
	o.older_than = "a while";
	assert_int_equal(af_prune(s, &o, &r), AF_ERR_PARAM);
	assert_non_null(strstr(af_error_last(), "--older-than: 'a while' is not a duration"));
	o.older_than = "-3 days";
	assert_int_equal(af_prune(s, &o, &r), AF_ERR_PARAM);
	assert_non_null(strstr(af_error_last(), "not in the past"));
	o.older_than = NULL;
	o.before = "2999-01-01";
	assert_int_equal(af_prune(s, &o, &r), AF_ERR_PARAM);
	o.before = NULL;
	assert_int_equal(af_prune(s, &o, &r), AF_ERR_PARAM);
	assert_non_null(strstr(af_error_last(), "prune needs one cutoff"));
	free(cutoff);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* The command: exit codes, its line, the configuration's default. */
static void test_prune_command(void **state)
{
	af_test_run_result res = {0};
	af_testdb db;
	af_store *s;
	char *dir = af_test_tempdir(), *config;

	(void)state;
	s = history(&db);
	config = af_test_write_file(dir, "aifleet.ini", "[database]\nhistory_retention = 100000 days\n",
				    0600);
	{
		const char *args[] = {AIFLEET_BIN, "--db", db.conninfo, "prune", "--older-than",
				      "nonsense", NULL};

		assert_int_equal(af_test_run(AIFLEET_BIN, args, dir, 60, &res), 64);
		assert_non_null(strstr(res.err, "is not a duration"));
	}
	{
		const char *args[] = {AIFLEET_BIN, "--db", db.conninfo, "prune", NULL};

		assert_int_equal(af_test_run(AIFLEET_BIN, args, dir, 60, &res), 64);
		assert_non_null(strstr(res.err, "prune needs one cutoff"));
	}
	{
		const char *args[] = {AIFLEET_BIN, "--config", config, "--db", db.conninfo, "prune",
				      NULL};

		assert_int_equal(af_test_run(AIFLEET_BIN, args, dir, 60, &res), 0);
		assert_non_null(strstr(res.out, "prune: deleted 0 versions and 0 deletion markers"));
	}
	{
		/* everything closed: a 5, b 2, c 1 versions a scope */
		const char *args[] = {AIFLEET_BIN, "--db", db.conninfo, "prune", "--older-than",
				      "1 microsecond", "--dry-run", NULL};

		assert_int_equal(af_test_run(AIFLEET_BIN, args, dir, 60, &res), 0);
		assert_non_null(strstr(res.out, "prune: dry run: would delete 16 versions and 2"
						" deletion markers"));
	}
	{
		const char *args[] = {AIFLEET_BIN, "--db", db.conninfo, "status", "--older-than", "1d",
				      NULL};

		assert_int_equal(af_test_run(AIFLEET_BIN, args, dir, 60, &res), 64);
		assert_non_null(strstr(res.err, "--older-than is an option of prune"));
	}
	af_test_run_free(&res);
	af_test_rmtree(dir);
	free(config);
	free(dir);
	af_store_free(s);
	af_testdb_drop(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prune_keeps_every_answer_from_the_cutoff),
		cmocka_unit_test(test_prune_stopped_midway_is_consistent),
		cmocka_unit_test(test_prune_locks_and_cutoffs),
		cmocka_unit_test(test_prune_command),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
