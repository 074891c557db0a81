/*
 * Crash tests: the real aifleet binary against aifleet-sim and a real
 * PostgreSQL, killed (SIGKILL) at random points of a run, and with its
 * database connection lost mid-run. One run is one transaction: whatever
 * happens, the data tables hold either the state before the run or the
 * state of a complete run, nothing of the dead run stays behind (no
 * backend, no advisory lock), and the next run succeeds.
 *
 * The kill delays are random, drawn relative to the measured length of a
 * complete run and its merge; the seed and those times are printed, and
 * AIFLEET_CRASH_SEED=N AIFLEET_CRASH_TIMES=RUN_MS,MERGE_MS replay the same
 * delays.
 */
#include <errno.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aifleet/log.h"
#include "e2e.h"
#include "testdb.h"
#include "testutil.h"


/* Random kills per run of test_sigkill_at_random_points. */
#define KILLS 8
/* Upper bounds, generous for the ASan build. */
#define RUN_TIMEOUT_MS	   60000L
#define QUIET_TIMEOUT_MS   15000L
#define BACKEND_TIMEOUT_MS 30000L

typedef struct crash_env {
	af_testdb db;  /* the database the runs are killed on */
	af_testdb ref; /* clean runs only, for comparison */
	e2e_sim sim;
	char *dir, *ref_dir;
	char *config, *ref_config;
	PGconn *observer; /* on db: pg_stat_activity, pg_locks, checksums */
	PGconn *locker;	  /* on db: holds a table lock to stop a run in its merge */
	pid_t child;	  /* a running aifleet, killed by the teardown */
	unsigned runs;	  /* numbers the output files */
	char out_path[700], err_path[700];
	char **heap;  /* strings the teardown frees, so that a failed */
	size_t nheap; /* assertion leaks nothing */
} crash_env;

/* Hands `s` (malloc'd) to the teardown and returns it. */
static char *track(crash_env *e, char *s)
{
	char **grown = realloc(e->heap, (e->nheap + 1) * sizeof(*e->heap));

	if (!grown) {
		free(s);
		fail_msg("out of memory");
	}
	e->heap = grown;
	e->heap[e->nheap++] = s;
	return s;
}

/* ---- small utilities --------------------------------------------------- */

/* splitmix64: a seeded generator of our own, independent of rand(). */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static long rng_range(uint64_t *s, long lo, long hi)
{
	return hi <= lo ? lo : lo + (long)(rng_next(s) % (uint64_t)(hi - lo));
}

/* ---- libpq connections the test keeps open ------------------------------ */

static PGconn *pg_open(const af_testdb *db, const char *app)
{
	char conninfo[700];
	PGconn *c;

	snprintf(conninfo, sizeof(conninfo), "%s application_name=%s", db->conninfo, app);
	c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		PQfinish(c);
		fail_msg("cannot connect to %s: %s", db->name, msg);
	}
	return c;
}

static void pg_exec(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(res);

	PQclear(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("SQL failed: %s\n%s", PQerrorMessage(c), sql);
}

/* First column of the first row, malloc'd ("" for no row or NULL). */
static char *pg_value(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	char *v;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		fail_msg("query failed: %s\n%s", PQerrorMessage(c), sql);
	}
	v = strdup(PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	assert_non_null(v);
	return v;
}

static long long pg_int(PGconn *c, const char *sql)
{
	char *v = pg_value(c, sql);
	long long n = strtoll(v, NULL, 10);

	free(v);
	return n;
}

/* ---- what the database holds --------------------------------------------- */

/* What a database says about the fleet, without its ids, times and run
 * numbers: two databases synced from the same simulator states agree on it
 * whatever runs failed in between. */
static const char content_sql[] =
	"SELECT concat_ws(' ', "
	"(SELECT 'instance=' || count(*) || ':' || md5(coalesce(string_agg(concat_ws('|', "
	" provider, account, region, product, native_id, encode(content_hash, 'hex'),"
	" deleted_at IS NULL), E'\\n' ORDER BY provider, account, product, native_id"
	" COLLATE \"C\"), '')) FROM aifleet.instance), "
	"(SELECT 'service=' || count(*) || ':' || md5(coalesce(string_agg(concat_ws('|', "
	" provider, account, region, product, native_id, instance_native_id,"
	" encode(content_hash, 'hex'), deleted_at IS NULL), E'\\n' ORDER BY provider, account,"
	" product, native_id COLLATE \"C\"), '')) FROM aifleet.service), "
	"(SELECT 'resource=' || count(*) || ':' || md5(coalesce(string_agg(concat_ws('|', "
	" provider, account, region, product, owner_kind, owner_native_id, kind,"
	" encode(content_hash, 'hex'), deleted_at IS NULL), E'\\n' ORDER BY provider, account,"
	" product, owner_kind, owner_native_id COLLATE \"C\", kind), '')) FROM aifleet.resource), "
	"(SELECT 'history=' || count(*) || ':' || md5(coalesce(string_agg(k, E'\\n' ORDER BY k"
	" COLLATE \"C\"), '')) FROM ("
	"  SELECT concat_ws('|', h.entity_type,"
	"   coalesce(concat_ws('/', i.provider, i.account, i.product, i.native_id),"
	"            concat_ws('/', s.provider, s.account, s.product, s.native_id),"
	"            concat_ws('/', r.provider, r.account, r.product, r.owner_kind,"
	"                      r.owner_native_id, r.kind)),"
	"   h.change, h.diff::text, isempty(h.valid), upper_inf(h.valid)) AS k"
	"  FROM aifleet.history h"
	"  LEFT JOIN aifleet.instance i ON h.entity_type = 'instance' AND i.id = h.entity_id"
	"  LEFT JOIN aifleet.service s ON h.entity_type = 'service' AND s.id = h.entity_id"
	"  LEFT JOIN aifleet.resource r ON h.entity_type = 'resource' AND r.id = h.entity_id) x))";

/* A query's value on the observer connection (tracked). */
static const char *observe(crash_env *e, const char *sql)
{
	return track(e, pg_value(e->observer, sql));
}

/* Every column of every data table, ordered by key: equal checksums mean
 * equal data (ids and timestamps included). */
static const char *checksum(crash_env *e)
{
	static const char *const tables[][2] = {
		{"instance", "id"}, {"service", "id"},
		{"resource", "id"}, {"history", "id"},
		{"sync_run", "id"}, {"scope_state", "provider, account, region, product"},
	};
	char sql[2048];
	size_t n = 0;

	n += (size_t)snprintf(sql + n, sizeof(sql) - n, "SELECT concat_ws(' '");
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n,
				      ", (SELECT '%s=' || count(*) || ':' || md5(coalesce("
				      "string_agg(t::text, E'\\n' ORDER BY %s), '')) "
				      "FROM (SELECT * FROM aifleet.%s) t)",
				      tables[i][0], tables[i][1], tables[i][0]);
	assert_true(n + 2 < sizeof(sql));
	snprintf(sql + n, sizeof(sql) - n, ")");
	return observe(e, sql);
}

static const char *content_of(crash_env *e, const af_testdb *db)
{
	char *v = af_testdb_query_value(db, content_sql);

	assert_non_null(v);
	return track(e, v);
}

/* Waits until no session but the observer is connected to the database and
 * no advisory lock is held in it: whatever a dead run left must go. */
static void wait_until_quiet(crash_env *e, const char *when)
{
	static const char sessions[] =
		"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
		" AND pid <> pg_backend_pid()";
	static const char locks[] =
		"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
		" AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
	static const char what[] =
		"SELECT concat_ws('; ',"
		" (SELECT string_agg(format('pid %s application %L state %s query %L', pid,"
		"  application_name, state, left(query, 60)), ', ')"
		"  FROM pg_stat_activity"
		"  WHERE datname = current_database() AND pid <> pg_backend_pid()),"
		" (SELECT string_agg(format('advisory lock %s/%s held by %s', classid, objid, pid),"
		"  ', ')"
		"  FROM pg_locks WHERE locktype = 'advisory' AND database ="
		"  (SELECT oid FROM pg_database WHERE datname = current_database())))";
	double deadline = af_test_now() + QUIET_TIMEOUT_MS / 1000.0;

	for (;;) {
		if (pg_int(e->observer, sessions) == 0 && pg_int(e->observer, locks) == 0)
			return;
		if (af_test_now() > deadline) {
			const char *left = observe(e, what);

			fail_msg("%s: still there after %ld ms: %s", when, QUIET_TIMEOUT_MS, left);
		}
		af_test_sleep_ms(20);
	}
}

/* ---- the aifleet binary ------------------------------------------------ */

/* Starts `aifleet --config CONFIG --no-progress [extra] COMMAND` in the
 * background; its output goes to dir/runN.{out,err}. It never outlives the
 * test program, whatever happens to it (SIGKILL on our death). */
static void spawn_aifleet(crash_env *e, const char *dir, const char *config, const char *extra,
			  const char *extra_value, const char *command)
{
	const char *argv[8];
	size_t n = 0;
	pid_t pid;

	assert_int_equal(e->child, 0);
	e->runs++;
	snprintf(e->out_path, sizeof(e->out_path), "%s/run%u.out", dir, e->runs);
	snprintf(e->err_path, sizeof(e->err_path), "%s/run%u.err", dir, e->runs);
	argv[n++] = AIFLEET_BIN;
	argv[n++] = "--config";
	argv[n++] = config;
	argv[n++] = "--no-progress";
	if (extra) {
		argv[n++] = extra;
		argv[n++] = extra_value;
	}
	argv[n++] = command;
	argv[n] = NULL;
	fflush(NULL);
	pid = af_test_spawn(AIFLEET_BIN, argv, e->out_path, e->err_path, SIGKILL);
	assert_true(pid >= 0);
	e->child = pid;
}

static void spawn_sync(crash_env *e, const char *dir, const char *config, const char *extra,
		       const char *extra_value)
{
	spawn_aifleet(e, dir, config, extra, extra_value, "sync");
}

/* Reaps the child if it has ended: its exit code (128 + signal), or -1. */
static int poll_child(crash_env *e)
{
	int status;
	pid_t r;

	assert_true(e->child > 0);
	do
		r = waitpid(e->child, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	assert_true(r >= 0);
	if (r == 0)
		return -1;
	e->child = 0;
	return af_test_exit_code(status);
}

/* Waits for the child to end by itself (bounded). */
static int wait_child(crash_env *e)
{
	double deadline = af_test_now() + RUN_TIMEOUT_MS / 1000.0;
	int code;

	while ((code = poll_child(e)) < 0) {
		if (af_test_now() > deadline)
			fail_msg("aifleet did not finish within %ld ms (see %s)", RUN_TIMEOUT_MS,
				 e->err_path);
		af_test_sleep_ms(5);
	}
	return code;
}

/* SIGKILLs the child after `delay_ms` unless it ended before; returns its
 * exit code, or 128 + SIGKILL. */
static int kill_child_after(crash_env *e, long delay_ms, const char **phase)
{
	static const char doing[] =
		"SELECT coalesce(max(CASE WHEN state = 'active' THEN left(query, 40)"
		" ELSE state END), 'no session') FROM pg_stat_activity"
		" WHERE datname = current_database() AND application_name = 'aifleet'";
	double deadline = af_test_now() + delay_ms / 1000.0;
	int code, status;

	while ((code = poll_child(e)) < 0 && af_test_now() < deadline)
		af_test_sleep_ms(1);
	if (code >= 0)
		return code;
	/* What its session was doing, a millisecond before the kill. */
	if (phase)
		*phase = observe(e, doing);
	assert_int_equal(kill(e->child, SIGKILL), 0);
	assert_int_equal(waitpid(e->child, &status, 0), e->child);
	e->child = 0;
	return af_test_exit_code(status);
}

static const char *child_output(crash_env *e, bool err)
{
	char *s = af_test_read_file(err ? e->err_path : e->out_path, NULL);

	return track(e, s ? s : strdup(""));
}

/* A complete run: exit 0 within the bound. Returns its wall time in ms. */
static long sync_clean(crash_env *e, const char *dir, const char *config)
{
	double t0 = af_test_now();
	int code;

	spawn_sync(e, dir, config, NULL, NULL);
	code = wait_child(e);
	if (code != 0) {
		const char *err = child_output(e, true);

		fail_msg("aifleet sync exited %d, want 0:\n%s", code, err);
	}
	return (long)((af_test_now() - t0) * 1000);
}

/* `aifleet migrate`: the schema, no run. */
static void migrate(crash_env *e)
{
	int code;

	spawn_aifleet(e, e->dir, e->config, NULL, NULL, "migrate");
	if ((code = wait_child(e)) != 0)
		fail_msg("aifleet migrate exited %d, want 0:\n%s", code, child_output(e, true));
}

/* ---- fixtures ------------------------------------------------------------ */

static int setup(void **state)
{
	crash_env *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	crash_env *e = *state;
	int status;

	if (e->child > 0) {
		kill(e->child, SIGKILL);
		waitpid(e->child, &status, 0);
	}
	if (e->locker)
		PQfinish(e->locker);
	if (e->observer)
		PQfinish(e->observer);
	e2e_sim_stop(&e->sim);
	af_test_rmtree(e->sim.dir);
	af_testdb_drop(&e->db);
	af_testdb_drop(&e->ref);
	af_test_rmtree(e->dir);
	af_test_rmtree(e->ref_dir);
	free(e->dir);
	free(e->ref_dir);
	free(e->config);
	free(e->ref_config);
	for (size_t i = 0; i < e->nheap; i++)
		free(e->heap[i]);
	free(e->heap);
	free(e);
	return 0;
}

static void env_up(crash_env *e, const char *const *sim_args, bool with_ref)
{
	af_testdb_create(&e->db);
	e2e_sim_start(&e->sim, sim_args);
	e->dir = af_test_tempdir();
	e->config = e2e_write_config(e->dir, &e->sim, &e->db, NULL, NULL);
	if (with_ref) {
		af_testdb_create(&e->ref);
		e->ref_dir = af_test_tempdir();
		e->ref_config = e2e_write_config(e->ref_dir, &e->sim, &e->ref, NULL, NULL);
	}
	e2e_set_demo_credentials();
	e->observer = pg_open(&e->db, "test_crash_observer");
}

static void mutate(crash_env *e, const char *body)
{
	json_object *m = e2e_sim_request(&e->sim, "POST", "/_sim/mutate", body);

	assert_non_null(m);
	json_object_put(m);
}

/* The live instances of every product are exactly the simulator's. */
static void assert_matches_simulator(crash_env *e)
{
	static const char *const products[] = {"tair_kvcache", "hologres", "tione"};
	char sql[512];

	for (size_t i = 0; i < sizeof(products) / sizeof(products[0]); i++) {
		const char *want = track(e, e2e_sim_ids(&e->sim, products[i]));
		const char *got;

		snprintf(sql, sizeof(sql),
			 "SELECT coalesce(string_agg(native_id, E'\\n' ORDER BY native_id"
			 " COLLATE \"C\"), '') FROM aifleet.instance"
			 " WHERE product = '%s' AND deleted_at IS NULL",
			 products[i]);
		got = observe(e, sql);
		assert_true(strlen(want) > 0);
		if (strcmp(got, want) != 0)
			fail_msg("%s: the database's live instances differ from the simulator's",
				 products[i]);
	}
}

/* The state of one more complete run: one more sync_run row, succeeded,
 * every scope complete in it, and the fleet as a clean run records it. */
static void assert_complete_run_state(crash_env *e, long long runs, const char *want_content)
{
	const char *content;

	assert_int_equal(pg_int(e->observer, "SELECT count(*) FROM aifleet.sync_run"), runs);
	content = observe(e, "SELECT status FROM aifleet.sync_run ORDER BY id DESC LIMIT 1");
	assert_string_equal(content, "succeeded");
	assert_int_equal(pg_int(e->observer, "SELECT count(*) FROM aifleet.scope_state WHERE "
					     "last_state = 'complete' AND last_run_id = "
					     "(SELECT max(id) FROM aifleet.sync_run)"),
			 10);
	content = content_of(e, &e->db);
	if (strcmp(content, want_content) != 0)
		fail_msg("the committed state differs from a clean run's:\n  got  %s\n  want %s",
			 content, want_content);
}

/* ---- kill -9 ----------------------------------------------------------- */

/* The merge time from a run's summary line ("..., merge 0.14 s)"); a
 * quarter of the run if the line is not there. */
static long merge_ms_of(const char *summary, long run_ms)
{
	const char *m = strstr(summary, "], merge ");
	double seconds;

	if (m && sscanf(m, "], merge %lf s", &seconds) == 1 && seconds > 0 &&
	    seconds * 1000 < run_ms)
		return (long)(seconds * 1000) + 1;
	return run_ms / 4;
}

static uint64_t crash_seed(void)
{
	const char *s = getenv("AIFLEET_CRASH_SEED");

	if (s && *s)
		return strtoull(s, NULL, 10);
	return (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
}

static void test_sigkill_at_random_points(void **state)
{
	static const char *const sim_args[] = {
		"--items", "30", "--latency-ms", "50", "--seed", "21", NULL,
	};
	crash_env *e = *state;
	uint64_t seed = crash_seed(), rng = seed;
	const char *reference, *ref_content, *now;
	long run_ms, merge_ms;
	long long runs;
	int rolled_back = 0, committed = 0;

	print_message("test_crash: seed %llu\n", (unsigned long long)seed);
	env_up(e, sim_args, true);

	/* Both databases get the same clean first run... */
	sync_clean(e, e->dir, e->config);
	sync_clean(e, e->ref_dir, e->ref_config);
	wait_until_quiet(e, "after the first run");
	/* The comparison means something: equal after equal clean runs. */
	assert_string_equal(content_of(e, &e->db), content_of(e, &e->ref));

	/* ... then the fleet changes, and only the reference syncs cleanly:
	 * that is what a complete run must leave, and how long it takes. */
	mutate(e, "{\"create\":0.1,\"update\":0.1,\"delete\":0.1,\"seed\":7}");
	run_ms = sync_clean(e, e->ref_dir, e->ref_config);
	merge_ms = merge_ms_of(child_output(e, false), run_ms);
	if (getenv("AIFLEET_CRASH_TIMES") &&
	    sscanf(getenv("AIFLEET_CRASH_TIMES"), "%ld,%ld", &run_ms, &merge_ms) != 2)
		fail_msg("AIFLEET_CRASH_TIMES is RUN_MS,MERGE_MS");
	assert_true(run_ms > 0 && merge_ms > 0 && merge_ms < run_ms);
	ref_content = content_of(e, &e->ref);
	print_message("test_crash: a complete run takes %ld ms, its merge %ld ms "
		      "(AIFLEET_CRASH_SEED=%llu AIFLEET_CRASH_TIMES=%ld,%ld replay these kills)\n",
		      run_ms, merge_ms, (unsigned long long)seed, run_ms, merge_ms);

	reference = checksum(e);
	runs = pg_int(e->observer, "SELECT count(*) FROM aifleet.sync_run");
	for (int i = 0; i < KILLS; i++) {
		/* Half the kills anywhere in the run, half around its end
		 * (merge, COMMIT, exit). */
		long delay = i % 2 == 0 ? rng_range(&rng, 0, run_ms)
					: rng_range(&rng, run_ms - 2 * merge_ms, run_ms + merge_ms);
		const char *phase = "finished";
		int code;

		spawn_sync(e, e->dir, e->config, NULL, NULL);
		code = kill_child_after(e, delay, &phase);
		wait_until_quiet(e, "after the kill");
		now = checksum(e);
		if (strcmp(now, reference) == 0) {
			/* Nothing committed: it must really have died. */
			if (code != 128 + SIGKILL)
				fail_msg("kill %d (seed %llu, %ld ms): exit %d without committing",
					 i, (unsigned long long)seed, delay, code);
			rolled_back++;
			print_message("test_crash: kill %d after %ld ms (%s): rolled back\n", i,
				      delay, phase);
		} else {
			/* Committed (killed after COMMIT, or finished first). */
			if (code != 128 + SIGKILL && code != 0)
				fail_msg("kill %d (seed %llu, %ld ms): exit %d", i,
					 (unsigned long long)seed, delay, code);
			assert_complete_run_state(e, ++runs, ref_content);
			committed++;
			print_message("test_crash: kill %d after %ld ms (%s): %s, committed\n", i,
				      delay, phase,
				      code == 0 ? "finished first" : "killed after COMMIT");
			reference = now;
		}
	}
	print_message("test_crash: %d kills rolled back, %d runs committed\n", rolled_back,
		      committed);
	/* With half the delays inside the run, some kill hit a live run. */
	assert_true(rolled_back >= 1);

	/* The next normal run succeeds and agrees with the simulator. */
	sync_clean(e, e->dir, e->config);
	wait_until_quiet(e, "after the final run");
	assert_complete_run_state(e, ++runs, ref_content);
	assert_matches_simulator(e);
}

/* Waits for the run's backend to satisfy `cond` (SQL on pg_stat_activity)
 * and returns its pid; fails if the run ends first. */
static long long wait_for_backend(crash_env *e, const char *cond)
{
	char sql[512];
	double deadline = af_test_now() + BACKEND_TIMEOUT_MS / 1000.0;

	snprintf(sql, sizeof(sql),
		 "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
		 " AND application_name = 'aifleet' AND xact_start IS NOT NULL AND (%s)",
		 cond);
	for (;;) {
		long long pid = pg_int(e->observer, sql);
		int code;

		if (pid > 0)
			return pid;
		if ((code = poll_child(e)) >= 0) {
			const char *err = child_output(e, true);

			fail_msg("aifleet ended (exit %d) before its backend was seen with %s:\n%s",
				 code, cond, err);
		}
		if (af_test_now() > deadline)
			fail_msg("no aifleet backend with %s within %ld ms", cond,
				 BACKEND_TIMEOUT_MS);
		af_test_sleep_ms(5);
	}
}

/* Another session holds aifleet.instance, so a run stops at the first
 * statement of its commit that reads it (the filter's fetch of live rows,
 * or the merge), inside its transaction, after the collection's COPY. */
static void block_merge(crash_env *e)
{
	e->locker = pg_open(&e->db, "test_crash_locker");
	pg_exec(e->locker, "BEGIN; LOCK TABLE aifleet.instance IN ACCESS EXCLUSIVE MODE");
}

static void unblock_merge(crash_env *e)
{
	pg_exec(e->locker, "COMMIT");
	PQfinish(e->locker);
	e->locker = NULL;
}

/* Waiting for block_merge's lock: not in a COPY of the collection. */
static const char in_merge[] = "wait_event_type = 'Lock' AND query NOT LIKE 'COPY%FROM STDIN'";

static void test_sigkill_during_merge(void **state)
{
	static const char *const sim_args[] = {"--items", "10", "--seed", "22", NULL};
	crash_env *e = *state;
	const char *before;

	env_up(e, sim_args, false);
	sync_clean(e, e->dir, e->config);
	mutate(e, "{\"create\":0.2,\"update\":0.2,\"delete\":0.2,\"seed\":3}");
	wait_until_quiet(e, "after the first run");
	before = checksum(e);

	block_merge(e);
	spawn_sync(e, e->dir, e->config, NULL, NULL);
	wait_for_backend(e, in_merge);
	assert_int_equal(kill_child_after(e, 0, NULL), 128 + SIGKILL);
	/* The orphaned backend notices its client is gone once it can run. */
	unblock_merge(e);
	wait_until_quiet(e, "after the kill in the merge");
	assert_string_equal(checksum(e), before);

	sync_clean(e, e->dir, e->config);
	wait_until_quiet(e, "after the next run");
	assert_int_equal(pg_int(e->observer, "SELECT count(*) FROM aifleet.sync_run"), 2);
	assert_matches_simulator(e);
}

/* ---- the database dies under a run ------------------------------------------ */

/* Syncs once and changes the fleet (unless `first_load`: the run is then
 * the database's first), starts a run, terminates its backend from
 * another session once `cond` holds (a merge blocked by block_merge if
 * `merge`), and checks what the documentation promises: exit 75, nothing
 * changed, the next run succeeds. */
static void lose_database_mid_run(crash_env *e, const char *cond, bool merge, bool first_load)
{
	const char *before, *out, *err;
	char sql[128];
	long long pid;
	int code;

	if (first_load) {
		migrate(e);
	} else {
		sync_clean(e, e->dir, e->config);
		mutate(e, "{\"create\":0.2,\"update\":0.2,\"delete\":0.2,\"seed\":5}");
	}
	wait_until_quiet(e, "after the first run");
	before = checksum(e);

	if (merge)
		block_merge(e);
	spawn_sync(e, e->dir, e->config, NULL, NULL);
	pid = wait_for_backend(e, cond);
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%lld)", pid);
	assert_string_equal(observe(e, sql), "t");
	code = wait_child(e);
	if (merge)
		unblock_merge(e);
	out = child_output(e, false);
	err = child_output(e, true);
	print_message("test_crash: backend terminated (%s): exit %d\n", cond, code);
	if (code != 75)
		fail_msg("the database was lost mid-run (%s): exit %d, want 75 (EX_TEMPFAIL)\n"
			 "stdout: %sstderr: %s",
			 cond, code, out, err);
	assert_null(strstr(out, "sync: run")); /* no summary of a committed run */
	wait_until_quiet(e, "after the lost run");
	assert_string_equal(checksum(e), before);

	sync_clean(e, e->dir, e->config);
	wait_until_quiet(e, "after the next run");
	assert_int_equal(pg_int(e->observer, "SELECT count(*) FROM aifleet.sync_run"),
			 first_load ? 1 : 2);
	assert_matches_simulator(e);
}

/* The run's backend while the collection goes on: its transaction open,
 * waiting for the rows the loader buffers (spooled, or for the first-load
 * path's COPY). */
static const char collecting[] = "state = 'idle in transaction'";

/* A resync: its records are spooled; the loss is met when the commit
 * reads them back. */
static void test_db_lost_while_collecting(void **state)
{
	static const char *const sim_args[] = {
		"--items", "30", "--latency-ms", "50", "--seed", "23", NULL,
	};
	crash_env *e = *state;

	env_up(e, sim_args, false);
	lose_database_mid_run(e, collecting, false, false);
}

/* The database's first run: its records go straight into the tables; the
 * loss is met when their COPY is sent. */
static void test_db_lost_during_first_load(void **state)
{
	static const char *const sim_args[] = {
		"--items", "3", "--latency-ms", "200", "--seed", "24", NULL,
	};
	crash_env *e = *state;

	env_up(e, sim_args, false);
	lose_database_mid_run(e, collecting, false, true);
}

static void test_db_lost_during_merge(void **state)
{
	static const char *const sim_args[] = {"--items", "10", "--seed", "25", NULL};
	crash_env *e = *state;

	env_up(e, sim_args, false);
	lose_database_mid_run(e, in_merge, true, false);
}

/* A loopback port that refuses connections: bound, never listening, and
 * kept bound so that nothing else takes it meanwhile. */
static int closed_port(int *fd)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(*fd >= 0);
	assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

static void test_db_unreachable_from_start(void **state)
{
	static const char *const sim_args[] = {"--items", "5", "--seed", "26", NULL};
	crash_env *e = *state;
	json_object *stats, *requests;
	const char *out, *err;
	char conninfo[128];
	long long asked;
	double t0;
	int fd, code;

	env_up(e, sim_args, false);
	/* The configuration names the (empty) test database; --db points the
	 * run at a port where nothing listens. */
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d connect_timeout=5",
		 closed_port(&fd));
	t0 = af_test_now();
	spawn_sync(e, e->dir, e->config, "--db", conninfo);
	code = wait_child(e);
	close(fd);
	out = child_output(e, false);
	err = child_output(e, true);
	print_message("test_crash: database unreachable: exit %d after %lld ms\n", code,
		      (long long)((af_test_now() - t0) * 1000));
	if (code != 75)
		fail_msg("unreachable database: exit %d, want 75 (EX_TEMPFAIL)\nstderr: %s", code,
			 err);
	assert_non_null(strstr(err, "cannot connect"));
	assert_null(strstr(out, "sync: run"));
	/* Nothing was created in the configured database ... */
	assert_string_equal(observe(e, "SELECT coalesce(to_regnamespace('aifleet')::text, '')"),
			    "");
	/* ... and no inventory was asked of the cloud either (credentials
	 * come first: the member account's role was assumed with STS). */
	stats = e2e_sim_request(&e->sim, NULL, "/_sim/stats", NULL);
	asked = -1;
	if (json_object_object_get_ex(stats, "by_action", &requests)) {
		asked = 0;
		json_object_object_foreach(requests, action, n)
		{
			(void)action;
			asked += json_object_get_int64(n);
		}
	}
	json_object_put(stats);
	assert_int_equal(asked, 0);
	wait_until_quiet(e, "after the unreachable run");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sigkill_at_random_points, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigkill_during_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_lost_while_collecting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_lost_during_first_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_lost_during_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_unreachable_from_start, setup, teardown),
	};

	af_log_setup(AF_LOG_WARN, AF_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
