/*
 * --metrics-file, held to docs/operations.md "Metrics": after a run that
 * aifleet-sim and a real PostgreSQL served, the file is what promtool
 * accepts, each scope's values are those of the ledger (and the items
 * those of the simulator), and the run's those of the database. Runs that
 * end badly -- a scope held by the guard, another run holding the lock,
 * the database gone -- still write it, saying so; a path that cannot work
 * fails before anything is collected; a dry run writes none. The alert
 * rules of deploy/prometheus pass promtool's checks and their own unit
 * tests.
 */
#include <dirent.h>
#include <libpq-fe.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "aifleet/metrics.h"
#include "e2e.h"
#include "store_internal.h"
#include "testdb.h"
#include "testutil.h"

#define RULES_DIR AF_SOURCE_DIR "/deploy/prometheus"

typedef struct fixture {
	e2e_world w;
	char prom[1024];
	PGconn *holder; /* holds the run lock in test_failed_runs */
} fixture;

static int fixture_up(void **state)
{
	static const char *const sim_args[] = {"--items", "20", "--seed", "5", NULL};
	fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	*state = f;
	e2e_world_up(&f->w, sim_args);
	snprintf(f->prom, sizeof(f->prom), "%s/aifleet.prom", f->w.dir);
	return 0;
}

/* For the tests that need a directory only. */
static int dir_up(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	*state = f;
	f->w.dir = af_test_tempdir();
	snprintf(f->prom, sizeof(f->prom), "%s/aifleet.prom", f->w.dir);
	return 0;
}

static int fixture_down(void **state)
{
	fixture *f = *state;

	if (!f)
		return 0;
	PQfinish(f->holder);
	e2e_world_down(&f->w);
	free(f);
	return 0;
}

/* ---- running things ------------------------------------------------------ */

/* aifleet sync --metrics-file f->prom [extra...]; returns the exit code. */
static int sync_with_metrics(const fixture *f, const char *extra, char **err)
{
	const char *args[] = {"--config", f->w.config, "--no-progress", "sync",
			      "--metrics-file", f->prom, extra, NULL};

	return e2e_run_aifleet(f->w.dir, args, NULL, err);
}

static void promtool(const char *dir, const char *const *args)
{
	af_test_run_result r = {0};
	const char *argv[16];
	size_t n = 0;

	argv[n++] = PROMTOOL_BIN;
	for (size_t i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (af_test_run(PROMTOOL_BIN, argv, dir, 60, &r) != 0)
		fail_msg("promtool %s %s: exit %d\n%s%s", args[0], args[1], r.code, r.out, r.err);
	af_test_run_free(&r);
}

/* promtool check metrics reads standard input only. */
static void promtool_check_metrics(const fixture *f)
{
	af_test_run_result r = {0};
	char script[1200];
	const char *argv[] = {"sh", "-c", script, NULL};

	snprintf(script, sizeof(script), "exec '%s' check metrics < '%s'", PROMTOOL_BIN, f->prom);
	if (af_test_run("/bin/sh", argv, f->w.dir, 60, &r) != 0)
		fail_msg("promtool check metrics: exit %d\n%s%s", r.code, r.out, r.err);
	af_test_run_free(&r);
}

/* ---- reading the file ------------------------------------------------------ */

static char *read_metrics(const fixture *f)
{
	char *text = af_test_read_file(f->prom, NULL);

	if (!text)
		fail_msg("no metrics file %s", f->prom);
	return text;
}

/* The value of the sample whose series is exactly `series` (name and
 * labels as aifleet writes them). */
static bool sample(const char *text, const char *series, double *value)
{
	size_t len = strlen(series);

	for (const char *line = text; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1
								       : line + strlen(line)) {
		if (strncmp(line, series, len) == 0 && line[len] == ' ') {
			*value = strtod(line + len + 1, NULL);
			return true;
		}
	}
	return false;
}

static double must_sample(const char *text, const char *series)
{
	double v = 0;

	if (!sample(text, series, &v))
		fail_msg("no sample %s in\n%s", series, text);
	return v;
}

/* name{provider="..",account="..",region="..",product=".."[,extra]} */
static const char *scope_series(char *out, size_t n, const char *name, PGresult *ledger, int row,
				const char *extra)
{
	snprintf(out, n, "%s{provider=\"%s\",account=\"%s\",region=\"%s\",product=\"%s\"%s%s}",
		 name, PQgetvalue(ledger, row, 0), PQgetvalue(ledger, row, 1),
		 PQgetvalue(ledger, row, 2), PQgetvalue(ledger, row, 3), extra ? "," : "",
		 extra ? extra : "");
	return out;
}

static size_t count_lines_starting(const char *text, const char *prefix)
{
	size_t n = 0, len = strlen(prefix);

	for (const char *line = text; line && *line;) {
		n += strncmp(line, prefix, len) == 0;
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	return n;
}

/* The sum of the samples whose line starts with `prefix` and whose labels
 * hold `label`. */
static double sum_of(const char *text, const char *prefix, const char *label)
{
	size_t len = strlen(prefix);
	double total = 0;

	for (const char *line = text; line && *line;) {
		const char *end = strchr(line, '\n'), *close = strchr(line, '}');
		const char *has = strstr(line, label);

		if (strncmp(line, prefix, len) == 0 && close && has && has < close &&
		    (!end || close < end))
			total += strtod(close + 1, NULL);
		line = end ? end + 1 : NULL;
	}
	return total;
}

static PGresult *ledger(const fixture *f, PGconn *conn)
{
	PGresult *res = PQexec(conn,
			       "SELECT provider, account, region, product, last_state, items, rejected,"
			       " requests, retries, throttled, coalesce(held_deletes, 0),"
			       " extract(epoch FROM last_attempt_at),"
			       " extract(epoch FROM last_complete_at), last_run_id"
			       " FROM aifleet.scope_state ORDER BY 1, 2, 3, 4");

	(void)f;
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	return res;
}

static PGconn *connect_db(const fixture *f)
{
	PGconn *conn = PQconnectdb(f->w.db.conninfo);

	assert_int_equal(PQstatus(conn), CONNECTION_OK);
	return conn;
}

/*
 * Every scope of the ledger has its samples, equal to the ledger's. With
 * `committed`, the states too (the run that wrote the file is the
 * ledger's last); otherwise every scope reads failed, its success time
 * still the ledger's.
 */
static void check_scopes(const fixture *f, const char *text, bool committed)
{
	static const char *const counts[] = {"aifleet_scope_items", "aifleet_scope_rejected",
					     "aifleet_scope_requests", "aifleet_scope_retries",
					     "aifleet_scope_throttled", "aifleet_scope_held_deletes"};
	static const char *const states[] = {"complete", "partial", "failed", "held"};
	PGconn *conn = connect_db(f);
	PGresult *res = ledger(f, conn);
	char series[512], label[64];
	int rows = PQntuples(res);

	assert_true(rows > 0);
	/* four state samples a scope, and no scope the ledger does not know */
	assert_int_equal(count_lines_starting(text, "aifleet_scope_state{"), 4 * (size_t)rows);
	for (int i = 0; i < rows; i++) {
		const char *complete_at = PQgetvalue(res, i, 12);

		for (size_t m = 0; committed && m < sizeof(counts) / sizeof(counts[0]); m++)
			assert_int_equal((long long)must_sample(text, scope_series(series, sizeof(series),
										    counts[m], res, i,
										    NULL)),
					 atoll(PQgetvalue(res, i, 5 + (int)m)));
		for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++) {
			bool is = committed ? strcmp(PQgetvalue(res, i, 4), states[s]) == 0
					    : strcmp(states[s], "failed") == 0;

			snprintf(label, sizeof(label), "state=\"%s\"", states[s]);
			assert_int_equal((int)must_sample(text, scope_series(series, sizeof(series),
									  "aifleet_scope_state", res,
									  i, label)),
					 is);
		}
		scope_series(series, sizeof(series), "aifleet_scope_last_success_timestamp_seconds",
			     res, i, NULL);
		if (PQgetisnull(res, i, 12)) {
			double v;

			assert_false(sample(text, series, &v));
		} else {
			assert_true(fabs(must_sample(text, series) - atof(complete_at)) < 0.002);
		}
		if (committed)
			assert_true(fabs(must_sample(text, scope_series(series, sizeof(series),
						     "aifleet_scope_last_attempt_timestamp_seconds",
						     res, i, NULL)) -
					 atof(PQgetvalue(res, i, 11))) < 0.002);
	}
	PQclear(res);
	PQfinish(conn);
}

/* The file is mode 0644 (the exporter is another user) and the only one
 * of its name: no temporary file was left beside it. */
static void check_file(const fixture *f)
{
	struct stat st;
	struct dirent *e;
	DIR *d = opendir(f->w.dir);

	assert_int_equal(stat(f->prom, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "aifleet.prom.", 13) == 0)
			fail_msg("temporary file %s left", e->d_name);
	closedir(d);
}

static long long db_int(const fixture *f, const char *sql)
{
	return af_testdb_query_int(&f->w.db, sql);
}

/* ---- the tests ------------------------------------------------------------- */

/* A clean run, then a run after changes: the file promtool accepts, with
 * the ledger's scopes and the database's counts. */
static void test_metrics_of_a_run(void **state)
{
	fixture *f = *state;
	char *text, *tair;
	size_t tair_ids = 0;
	json_object *m;

	assert_int_equal(sync_with_metrics(f, NULL, NULL), 0);
	promtool_check_metrics(f);
	check_file(f);
	text = read_metrics(f);
	check_scopes(f, text, true);
	assert_int_equal((int)must_sample(text, "aifleet_run_exit_code"), 0);
	assert_int_equal((long long)must_sample(text, "aifleet_run_id"),
			 db_int(f, "SELECT max(id) FROM aifleet.sync_run"));
	assert_int_equal((long long)must_sample(text,
						"aifleet_run_rows{entity=\"instance\",change=\"created\"}"),
			 db_int(f, "SELECT count(*) FROM aifleet.instance"));
	assert_int_equal((long long)must_sample(text,
						"aifleet_run_rows{entity=\"resource\",change=\"created\"}"),
			 db_int(f, "SELECT count(*) FROM aifleet.resource"));
	assert_int_equal((long long)must_sample(text, "aifleet_run_history_rows"),
			 db_int(f, "SELECT count(*) FROM aifleet.history"));
	assert_int_equal((long long)must_sample(text, "aifleet_run_scopes{state=\"complete\"}"),
			 db_int(f, "SELECT count(*) FROM aifleet.scope_state"
				   " WHERE last_state = 'complete'"));
	assert_true(must_sample(text, "aifleet_run_duration_seconds{phase=\"total\"}") > 0);
	assert_true(must_sample(text, "aifleet_run_end_timestamp_seconds") >=
		    must_sample(text, "aifleet_run_start_timestamp_seconds"));

	/* the items are the simulator's, not only the ledger's */
	tair = e2e_sim_ids(&f->w.sim, "tair_kvcache");
	for (const char *p = tair; *p; p++)
		tair_ids += *p == '\n';
	tair_ids += *tair && tair[strlen(tair) - 1] != '\n';
	assert_true(tair_ids > 0);
	assert_int_equal((long long)sum_of(text, "aifleet_scope_items{", "product=\"tair_kvcache\""),
			 (long long)tair_ids);
	free(tair);
	free(text);

	/* a second run after changes: its own counts */
	m = e2e_sim_request(&f->w.sim, "POST", "/_sim/mutate",
			    "{\"create\":0.1,\"update\":0.1,\"delete\":0.1,\"seed\":9}");
	assert_non_null(m);
	json_object_put(m);
	assert_int_equal(sync_with_metrics(f, NULL, NULL), 0);
	promtool_check_metrics(f);
	text = read_metrics(f);
	check_scopes(f, text, true);
	assert_int_equal((long long)must_sample(text, "aifleet_run_id"),
			 db_int(f, "SELECT max(id) FROM aifleet.sync_run"));
	assert_int_equal((long long)must_sample(text,
						"aifleet_run_rows{entity=\"instance\",change=\"deleted\"}"),
			 db_int(f, "SELECT count(*) FROM aifleet.history h"
				   " JOIN aifleet.sync_run r ON r.id = h.run_id"
				   " WHERE h.entity_type = 'instance' AND h.change = 'deleted'"
				   " AND r.id = (SELECT max(id) FROM aifleet.sync_run)"));
	free(text);
}

/*
 * Runs that end badly still write the file: a scope held by the guard
 * (exit 2: held, with its held deletes), another run holding the lock
 * (exit 75: every scope failed, their success times the ledger's), the
 * database unreachable (exit 75: no success time at all).
 */
static void test_failed_runs(void **state)
{
	fixture *f = *state;
	char lock[128], *text, *err = NULL;
	PGresult *res;
	json_object *m;
	int code;

	assert_int_equal(sync_with_metrics(f, NULL, NULL), 0);

	m = e2e_sim_request(&f->w.sim, "POST", "/_sim/mutate",
			    "{\"delete\":0.6,\"seed\":10,\"product\":\"tair_kvcache\","
			    "\"account\":\"demo-ali\",\"region\":\"cn-beijing\"}");
	assert_non_null(m);
	json_object_put(m);
	code = sync_with_metrics(f, NULL, &err);
	if (code != 2)
		fail_msg("held run: exit %d, want 2\n%s", code, err);
	free(err);
	promtool_check_metrics(f);
	text = read_metrics(f);
	check_scopes(f, text, true);
	assert_int_equal((int)must_sample(text, "aifleet_run_exit_code"), 2);
	assert_int_equal((int)must_sample(text, "aifleet_run_scopes{state=\"held\"}"), 1);
	assert_true(must_sample(text, "aifleet_scope_held_deletes{provider=\"alibaba\","
				      "account=\"demo-ali\",region=\"cn-beijing\","
				      "product=\"tair_kvcache\"}") > 0);
	free(text);

	/* another run holds the lock */
	f->holder = connect_db(f);
	snprintf(lock, sizeof(lock), "SELECT pg_advisory_lock(%lld)", AF_STORE_RUN_LOCK_KEY);
	res = PQexec(f->holder, lock);
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	PQclear(res);
	assert_int_equal(sync_with_metrics(f, NULL, NULL), 75);
	promtool_check_metrics(f);
	text = read_metrics(f);
	check_scopes(f, text, false);
	assert_int_equal((int)must_sample(text, "aifleet_run_exit_code"), 75);
	assert_int_equal((int)must_sample(text, "aifleet_run_id"), 0);
	free(text);
	PQfinish(f->holder);
	f->holder = NULL;

	/* the database unreachable: a port nothing listens on */
	{
		const char *args[] = {"--config", f->w.config, "--no-progress", "--db",
				      "host=127.0.0.1 port=1 dbname=none connect_timeout=2", "sync",
				      "--metrics-file", f->prom, NULL};

		assert_int_equal(e2e_run_aifleet(f->w.dir, args, NULL, NULL), 75);
	}
	promtool_check_metrics(f);
	text = read_metrics(f);
	assert_int_equal((int)must_sample(text, "aifleet_run_exit_code"), 75);
	assert_int_equal(count_lines_starting(text, "aifleet_scope_last_success_timestamp_seconds{"),
			 0);
	assert_true(count_lines_starting(text, "aifleet_scope_state{") > 0);
	free(text);
}

/* A path that cannot work fails before any run (78, no run recorded); a
 * dry run writes no file. */
static void test_bad_path_and_dry_run(void **state)
{
	fixture *f = *state;
	const char *dry[] = {"--config", f->w.config, "--no-progress", "--dry-run", "sync",
			     "--metrics-file", f->prom, NULL};
	const char *migrate[] = {"--config", f->w.config, "migrate", NULL};
	const char *status[] = {"status", "--metrics-file", f->prom, NULL};
	char *err = NULL, bad[1100];
	struct stat st;

	snprintf(bad, sizeof(bad), "%s/no/such/dir/aifleet.prom", f->w.dir);
	{
		const char *args[] = {"--config", f->w.config, "--no-progress", "sync",
				      "--metrics-file", bad, NULL};

		assert_int_equal(e2e_run_aifleet(f->w.dir, migrate, NULL, NULL), 0);
		assert_int_equal(e2e_run_aifleet(f->w.dir, args, NULL, &err), 78);
		if (!strstr(err, "no directory"))
			fail_msg("no reason given:\n%s", err);
		free(err);
	}
	assert_int_equal(db_int(f, "SELECT count(*) FROM aifleet.sync_run"), 0);
	{
		const char *args[] = {"--config", f->w.config, "--no-progress", "sync",
				      "--metrics-file", f->w.dir, NULL};

		assert_int_equal(e2e_run_aifleet(f->w.dir, args, NULL, NULL), 78);
	}
	assert_int_equal(e2e_run_aifleet(f->w.dir, dry, NULL, NULL), 0);
	assert_int_not_equal(stat(f->prom, &st), 0);
	assert_int_equal(e2e_run_aifleet(f->w.dir, status, NULL, NULL), 64);
}

/* Label values are escaped as the format wants (a region may hold any
 * text), and promtool reads the file. */
static void test_label_escaping(void **state)
{
	fixture *f = *state;
	af_scope_outcome o = {
		.scope = {"alibaba", "prod", "odd\\\"region\nname", "tair_kvcache"},
		.state = "partial",
		.items = 7,
		.attempted_at = 1700000000.5,
	};
	af_sync_result r = {.outcomes = &o, .noutcomes = 1, .scopes = 1, .partial = 1};
	char *text;

	assert_int_equal(af_metrics_write(f->prom, &r, 2, 1700000001.25), 0);
	promtool_check_metrics(f);
	text = read_metrics(f);
	assert_non_null(strstr(text, "aifleet_scope_items{provider=\"alibaba\",account=\"prod\","
				     "region=\"odd\\\\\\\"region\\nname\",product=\"tair_kvcache\"} 7\n"));
	assert_non_null(strstr(text, "aifleet_run_end_timestamp_seconds 1700000001.250\n"));
	free(text);
}

static void test_alert_rules(void **state)
{
	const char *check[] = {"check", "rules", RULES_DIR "/aifleet.rules.yml", NULL};
	const char *unit[] = {"test", "rules", RULES_DIR "/aifleet.rules.test.yml", NULL};
	fixture *f = *state;

	promtool(f->w.dir, check);
	promtool(f->w.dir, unit);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_metrics_of_a_run, fixture_up, fixture_down),
		cmocka_unit_test_setup_teardown(test_failed_runs, fixture_up, fixture_down),
		cmocka_unit_test_setup_teardown(test_bad_path_and_dry_run, fixture_up, fixture_down),
		cmocka_unit_test_setup_teardown(test_label_escaping, dir_up, fixture_down),
		cmocka_unit_test_setup_teardown(test_alert_rules, dir_up, fixture_down),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
