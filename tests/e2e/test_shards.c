/*
 * Sharded and concurrent runs (docs/operations.md "Shards and concurrent
 * runs"), as aifleet processes against aifleet-sim and one real
 * PostgreSQL: three shards run at once leave the database one unsharded
 * run leaves (ids and times named by what they stand for); two runs of
 * one shard never interleave, whether the second skips its scopes or
 * waits for them; a scope another run holds is skipped and left to it;
 * sync_run records the shard and the scopes.
 */
#include <libpq-fe.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "aifleet/record.h"
#include "e2e.h"
#include "testdb.h"
#include "testutil.h"

#define NSHARDS 3

typedef struct fixture {
	e2e_sim sim;
	af_testdb sharded, single;
	char *dir;
	char *config_sharded, *config_single;
	PGconn *holder;
} fixture;

static int fixture_up(void **state)
{
	/* latency, so that runs last long enough to meet */
	static const char *const sim_args[] = {"--items", "8", "--seed", "11", "--latency-ms",
					       "20", NULL};
	fixture *f = calloc(1, sizeof(*f));
	char sub[1100];

	assert_non_null(f);
	*state = f;
	e2e_sim_start(&f->sim, sim_args);
	af_testdb_create(&f->sharded);
	af_testdb_create(&f->single);
	f->dir = af_test_tempdir();
	snprintf(sub, sizeof(sub), "%s/sharded", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	f->config_sharded = e2e_write_config(sub, &f->sim, &f->sharded, NULL, NULL);
	snprintf(sub, sizeof(sub), "%s/single", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	f->config_single = e2e_write_config(sub, &f->sim, &f->single, NULL, NULL);
	e2e_set_demo_credentials();
	return 0;
}

static int fixture_down(void **state)
{
	fixture *f = *state;

	if (!f)
		return 0;
	PQfinish(f->holder);
	e2e_sim_stop(&f->sim);
	af_testdb_drop(&f->sharded);
	af_testdb_drop(&f->single);
	free(f->config_sharded);
	free(f->config_single);
	af_test_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* ---- running aifleet, several at once -------------------------------------- */

typedef struct run {
	pid_t pid;
	char out[1100], err[1100];
	int code;
} run;

/* Starts `aifleet --config CONFIG --no-progress sync [extra...]`. */
static void start(run *r, const fixture *f, const char *config, const char *tag,
		  const char *const *extra)
{
	const char *argv[16] = {AIFLEET_BIN, "--config", config, "--no-progress", "sync"};
	size_t n = 5;

	for (size_t i = 0; extra && extra[i] && n < 15; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	snprintf(r->out, sizeof(r->out), "%s/%s.out", f->dir, tag);
	snprintf(r->err, sizeof(r->err), "%s/%s.err", f->dir, tag);
	r->pid = af_test_spawn(AIFLEET_BIN, argv, r->out, r->err, SIGKILL);
	assert_true(r->pid > 0);
}

static int finish(run *r)
{
	int status = 0;

	assert_int_equal(af_test_wait(r->pid, 120, &status, NULL), 0);
	r->code = af_test_exit_code(status);
	return r->code;
}

static void expect_code(run *r, int want)
{
	if (finish(r) != want) {
		char *err = af_test_read_file(r->err, NULL);

		fail_msg("exit %d, want %d:\n%s", r->code, want, err ? err : "");
	}
}

/* ---- what a database holds ------------------------------------------------- */

/*
 * Every row of the entity tables, history and ledger, without what names
 * a run or a time: ids by natural key, owners by theirs, a version by its
 * change, content and whether it is open.
 */
static const char dump_sql[] =
	"WITH k AS (SELECT id, 'i/' || native_id AS key FROM aifleet.instance"
	"  UNION ALL SELECT id, 's/' || native_id FROM aifleet.service"
	"  UNION ALL SELECT id, 'r/' || owner_native_id || '/' || kind FROM aifleet.resource)"
	" SELECT string_agg(x, E'\\n' ORDER BY x) FROM ("
	"  SELECT k.key || ' ' || (to_jsonb(t) - 'id' - 'instance_id' - 'service_id'"
	"   - 'first_seen_at' - 'last_changed_at' - 'deleted_at' - 'last_run_id')::text"
	"   || ' live=' || (t.deleted_at IS NULL) AS x"
	"   FROM aifleet.instance t JOIN k USING (id)"
	"  UNION ALL SELECT k.key || ' ' || (to_jsonb(t) - 'id' - 'instance_id' - 'service_id'"
	"   - 'first_seen_at' - 'last_changed_at' - 'deleted_at' - 'last_run_id')::text"
	"   || ' on ' || o.key || ' live=' || (t.deleted_at IS NULL)"
	"   FROM aifleet.service t JOIN k USING (id) JOIN k o ON o.id = t.instance_id"
	"  UNION ALL SELECT k.key || ' ' || (to_jsonb(t) - 'id' - 'instance_id' - 'service_id'"
	"   - 'first_seen_at' - 'last_changed_at' - 'deleted_at' - 'last_run_id')::text"
	"   || ' of ' || o.key || ' live=' || (t.deleted_at IS NULL)"
	"   FROM aifleet.resource t JOIN k USING (id)"
	"   JOIN k o ON o.id = coalesce(t.service_id, t.instance_id)"
	"  UNION ALL SELECT 'history ' || k.key || ' ' || h.change || ' open='"
	"   || upper_inf(h.valid) || ' ' || coalesce((h.content - 'id' - 'instance_id'"
	"   - 'service_id' - 'first_seen_at' - 'last_changed_at' - 'deleted_at'"
	"   - 'last_run_id')::text, '-')"
	"   FROM aifleet.history h JOIN k ON k.id = h.entity_id"
	"  UNION ALL SELECT 'scope ' || (to_jsonb(s) - 'last_attempt_at' - 'last_complete_at'"
	"   - 'seconds' - 'last_run_id')::text FROM aifleet.scope_state s) v";

static void assert_same_database(const fixture *f)
{
	char *a = af_testdb_query_value(&f->sharded, dump_sql);
	char *b = af_testdb_query_value(&f->single, dump_sql);

	assert_non_null(a);
	assert_non_null(b);
	if (strcmp(a, b) != 0) {
		print_error("sharded:\n%s\n\nsingle run:\n%s\n", a, b);
		fail_msg("three shards left another database than one run");
	}
	assert_true(strlen(a) > 1000);
	free(a);
	free(b);
}

static long long q(const af_testdb *db, const char *sql)
{
	return af_testdb_query_int(db, sql);
}

/* ---- the tests ------------------------------------------------------------- */

/*
 * Three shards at once, twice (a first load, then a resync after
 * changes), against one unsharded run each time: the same database; the
 * shards' scopes are disjoint and add up to all of them; they ran side by
 * side.
 */
static void test_three_shards_equal_one_run(void **state)
{
	fixture *f = *state;
	char shard[NSHARDS][16];
	run runs[NSHARDS], single;
	json_object *m;

	for (int round = 0; round < 2; round++) {
		for (int k = 0; k < NSHARDS; k++) {
			const char *extra[] = {"--shard", shard[k], NULL};
			char tag[32];

			snprintf(shard[k], sizeof(shard[k]), "%d/%d", k, NSHARDS);
			snprintf(tag, sizeof(tag), "shard%d-%d", k, round);
			start(&runs[k], f, f->config_sharded, tag, extra);
		}
		for (int k = 0; k < NSHARDS; k++)
			expect_code(&runs[k], 0);
		start(&single, f, f->config_single, round ? "single-1" : "single-0", NULL);
		expect_code(&single, 0);
		assert_same_database(f);
		if (round == 0) {
			m = e2e_sim_request(&f->sim, "POST", "/_sim/mutate",
					    "{\"create\":0.2,\"update\":0.2,\"delete\":0.2,\"seed\":12}");
			assert_non_null(m);
			json_object_put(m);
		}
	}
	/* every run recorded its shard and scopes: disjoint, all of them */
	assert_int_equal(q(&f->sharded, "SELECT count(DISTINCT shard) FROM aifleet.sync_run"), 3);
	assert_int_equal(q(&f->sharded, "SELECT count(*) FROM aifleet.sync_run"
					" WHERE shard IS NULL OR scopes IS NULL"), 0);
	assert_int_equal(q(&f->sharded, "SELECT count(*) FROM (SELECT s FROM aifleet.sync_run,"
					" unnest(scopes) s WHERE id <= 3 GROUP BY s HAVING count(*) > 1) d"),
			 0);
	assert_int_equal(q(&f->sharded, "SELECT count(DISTINCT s) FROM aifleet.sync_run,"
					" unnest(scopes) s WHERE id <= 3"),
			 q(&f->single, "SELECT cardinality(scopes) FROM aifleet.sync_run WHERE id = 1"));
	assert_int_equal(q(&f->single, "SELECT count(*) FROM aifleet.sync_run WHERE shard IS NULL"),
			 2);
	/* side by side: in each round, some two shards' runs overlapped */
	assert_true(q(&f->sharded, "SELECT count(*) FROM aifleet.sync_run a JOIN aifleet.sync_run b"
				   " ON a.id < b.id AND (a.id <= 3) = (b.id <= 3)"
				   " AND a.started_at < b.finished_at AND b.started_at < a.finished_at") >= 2);
}

/*
 * Two runs of one shard started together: without --wait the second
 * finds the scopes taken and exits 75 (or, if the first was done before
 * it began, both run); with --wait both run, one after the other. Either
 * way no two runs that loaded the same scope overlap in time.
 */
static void test_one_shard_never_interleaves(void **state)
{
	static const char *const nowait[] = {"--shard", "1/3", NULL};
	static const char *const wait[] = {"--shard", "1/3", "--wait", NULL};
	static const char overlap_sql[] =
		"SELECT count(*) FROM aifleet.sync_run a JOIN aifleet.sync_run b ON a.id < b.id"
		" AND a.scopes && b.scopes AND a.started_at < b.finished_at"
		" AND b.started_at < a.finished_at";
	fixture *f = *state;
	run a, b;
	int ca, cb;

	start(&a, f, f->config_sharded, "a", nowait);
	start(&b, f, f->config_sharded, "b", nowait);
	ca = finish(&a);
	cb = finish(&b);
	if (!((ca == 0 && cb == 75) || (ca == 75 && cb == 0) || (ca == 0 && cb == 0)))
		fail_msg("two runs of one shard: exits %d and %d", ca, cb);
	if (ca == 75 || cb == 75) {
		char *err = af_test_read_file(ca == 75 ? a.err : b.err, NULL);

		assert_non_null(strstr(err, "another aifleet run holds"));
		free(err);
	}
	start(&a, f, f->config_sharded, "wa", wait);
	start(&b, f, f->config_sharded, "wb", wait);
	expect_code(&a, 0);
	expect_code(&b, 0);
	assert_true(q(&f->sharded, "SELECT count(*) FROM aifleet.sync_run") >= 3);
	assert_int_equal(q(&f->sharded, overlap_sql), 0);
	assert_int_equal(q(&f->sharded, "SELECT count(*) FROM aifleet.sync_run"
					" WHERE status <> 'succeeded'"), 0);
}

/*
 * A scope another session holds is skipped: the run loads the others
 * (exit 2, scopes_busy 1) and leaves the held scope's ledger as it was;
 * once it is free, the next run loads it.
 */
static void test_busy_scope_is_skipped(void **state)
{
	fixture *f = *state;
	af_scope held = {"alibaba", "demo-ali", "cn-beijing", "tair_kvcache"};
	char sql[128];
	PGresult *res;
	run r;

	start(&r, f, f->config_sharded, "first", NULL);
	expect_code(&r, 0);
	f->holder = PQconnectdb(f->sharded.conninfo);
	assert_int_equal(PQstatus(f->holder), CONNECTION_OK);
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%lld)",
		 (long long)(int64_t)af_scope_hash(&held));
	res = PQexec(f->holder, sql);
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	PQclear(res);

	start(&r, f, f->config_sharded, "busy", NULL);
	expect_code(&r, 2);
	assert_int_equal(q(&f->sharded, "SELECT scopes_busy FROM aifleet.sync_run WHERE id = 2"), 1);
	assert_int_equal(q(&f->sharded, "SELECT last_run_id FROM aifleet.scope_state"
					" WHERE account = 'demo-ali' AND region = 'cn-beijing'"
					" AND product = 'tair_kvcache'"),
			 1);
	assert_int_equal(q(&f->sharded, "SELECT count(*) FROM aifleet.scope_state"
					" WHERE last_run_id = 2"),
			 q(&f->sharded, "SELECT count(*) FROM aifleet.scope_state") - 1);
	assert_int_equal(q(&f->sharded, "SELECT count(*) FROM aifleet.sync_run, unnest(scopes) s"
					" WHERE id = 2 AND s = 'alibaba/demo-ali/cn-beijing/tair_kvcache'"),
			 0);

	PQfinish(f->holder);
	f->holder = NULL;
	start(&r, f, f->config_sharded, "free", NULL);
	expect_code(&r, 0);
	assert_int_equal(q(&f->sharded, "SELECT count(*) FROM aifleet.scope_state"
					" WHERE last_run_id = 3"),
			 q(&f->sharded, "SELECT count(*) FROM aifleet.scope_state"));
}

/* --shard and --account as a user may get them wrong; check-config lists
 * exactly a shard's scopes, and the shards' lists add up to the whole. */
static void test_selection_options(void **state)
{
	fixture *f = *state;
	char *out = NULL, *err = NULL;
	size_t total = 0, all = 0;

	{
		const char *bad[][4] = {{"--shard", "3/3", NULL}, {"--shard", "x", NULL},
					{"--shard", "1/0", NULL}, {"--shard", "-1/2", NULL}};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			const char *args[] = {"--config", f->config_sharded, bad[i][0], bad[i][1],
					      "sync", NULL};

			assert_int_equal(e2e_run_aifleet(f->dir, args, NULL, &err), 64);
			assert_non_null(strstr(err, "--shard wants K/N"));
			free(err);
		}
	}
	{
		const char *args[] = {"--config", f->config_sharded, "--account", "nobody", "sync",
				      NULL};

		assert_int_equal(e2e_run_aifleet(f->dir, args, NULL, &err), 78);
		assert_non_null(strstr(err, "--account nobody: no such account"));
		free(err);
	}
	{
		const char *args[] = {"--config", f->config_sharded, "--shard", "0/2", "status",
				      NULL};

		assert_int_equal(e2e_run_aifleet(f->dir, args, NULL, &err), 64);
		free(err);
	}
	for (int k = -1; k < NSHARDS; k++) {
		char shard[16];
		const char *args[] = {"--config", f->config_sharded, "--shard", shard, "check-config",
				      NULL};
		const char *whole[] = {"--config", f->config_sharded, "check-config", NULL};
		size_t n = 0;

		snprintf(shard, sizeof(shard), "%d/%d", k, NSHARDS);
		assert_int_equal(e2e_run_aifleet(f->dir, k < 0 ? whole : args, &out, NULL), 0);
		for (const char *p = out; (p = strstr(p, " scope(s)")) != NULL; p++) {
			const char *s = p;

			while (s > out && s[-1] != ' ')
				s--;
			n = strtoul(s, NULL, 10);
		}
		if (k < 0)
			all = n;
		else
			total += n;
		free(out);
	}
	assert_true(all > 0);
	assert_int_equal(total, all);
	{
		const char *args[] = {"--config", f->config_sharded, "--account", "demo-tc",
				      "check-config", NULL};

		assert_int_equal(e2e_run_aifleet(f->dir, args, &out, NULL), 0);
		assert_non_null(strstr(out, "tencent/demo-tc/ap-guangzhou/tione"));
		assert_null(strstr(out, "alibaba/demo-ali/"));
		free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_three_shards_equal_one_run, fixture_up,
						fixture_down),
		cmocka_unit_test_setup_teardown(test_one_shard_never_interleaves, fixture_up,
						fixture_down),
		cmocka_unit_test_setup_teardown(test_busy_scope_is_skipped, fixture_up,
						fixture_down),
		cmocka_unit_test_setup_teardown(test_selection_options, fixture_up, fixture_down),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
