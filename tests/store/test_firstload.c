/*
 * The first-load path against a real PostgreSQL: the records of an account
 * the database has never held go straight into the tables, and must leave
 * the same database -- rows, owners, history, run records -- as the merge
 * leaves for the same input, run after run, however the input misbehaves:
 * a record sent twice, a service before its instance, resources apart
 * from their owner, an orphan, one instance in two regions, a record too
 * large, an owner with more resource kinds than the path follows.
 *
 * Each case feeds one script into two databases: one loaded as aifleet
 * loads (the first run takes the first-load path), one with
 * af_run_options.no_direct (every run merges). Their dumps, with ids and
 * timestamps replaced by what names them (natural keys, run numbers), must
 * be equal.
 */
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aifleet/error.h"
#include "aifleet/store.h"
#include "storetest.h"
#include "testdb.h"

static const af_scope BJ = {"alibaba", "acct", "cn-beijing", "tair_kvcache"};
static const af_scope SH = {"alibaba", "acct", "cn-shanghai", "tair_kvcache"};

/* A record too large for one COPY row (the loader's limit is 16 MiB). */
static int big_instance(af_loader *l, const af_scope *sc)
{
	const size_t n = (size_t)17 * 1024 * 1024;
	af_record_sink sink = af_loader_sink(l);
	char *raw = malloc(n + 16);
	af_instance in;
	int err;

	assert_non_null(raw);
	memcpy(raw, "{\"x\": \"", 7);
	memset(raw + 7, 'a', n);
	memcpy(raw + 7 + n, "\"}", 3);
	memset(&in, 0, sizeof(in));
	in.native_id = "tk-big";
	in.created_at = in.updated_at = in.expires_at = AF_TIME_NULL;
	in.raw_json = raw;
	err = sink.instance(sink.ctx, sc, &in);
	free(raw);
	return err;
}

/* The first run's records, in the order that tries the path hardest. */
static void feed_first(af_loader *l, bool with_orphan)
{
	static const char *const kinds[] = {"k01", "k02", "k03", "k04", "k05", "k06",
	                                    "k07", "k08", "k09", "k10", "k11", "k12",
	                                    "k13", "k14", "k15", "k16", "k17", "k18"};

	/* a service before its instance, and its resource */
	assert_int_equal(st_svc(l, &BJ, "tk-2", "svc-early", "llama-8b", 2), 0);
	assert_int_equal(st_res(l, &BJ, AF_OWNER_SERVICE, "svc-early", "gpu_count", 1, "cards",
	                        "T4"),
	                 0);
	assert_int_equal(st_inst(l, &BJ, "tk-1", "one"), 0);
	assert_int_equal(st_res(l, &BJ, AF_OWNER_INSTANCE, "tk-1", "gpu_count", 2, "cards", "A10"),
	                 0);
	assert_int_equal(st_svc(l, &BJ, "tk-1", "svc-1", "qwen-72b", 1), 0);
	assert_int_equal(st_res(l, &BJ, AF_OWNER_SERVICE, "svc-1", "memory_gib", 16, "GiB", NULL),
	                 0);
	/* the instance's own resource after its service's */
	assert_int_equal(st_res(l, &BJ, AF_OWNER_INSTANCE, "tk-1", "cpu_cores", 8, "cores", NULL),
	                 0);
	assert_int_equal(st_inst(l, &BJ, "tk-2", "two"), 0);
	assert_int_equal(st_res(l, &BJ, AF_OWNER_INSTANCE, "tk-2", "cpu_cores", 4, "cores", NULL),
	                 0);
	/* a resource apart from its owner, seen before: the later copy wins */
	assert_int_equal(st_res(l, &BJ, AF_OWNER_SERVICE, "svc-1", "memory_gib", 32, "GiB", NULL),
	                 0);
	/* the same kind twice in a row for one owner */
	assert_int_equal(st_res(l, &BJ, AF_OWNER_INSTANCE, "tk-2", "memory_gib", 8, "GiB", NULL),
	                 0);
	assert_int_equal(st_res(l, &BJ, AF_OWNER_INSTANCE, "tk-2", "memory_gib", 9, "GiB", NULL),
	                 0);
	/* an instance sent again, then its resources again */
	assert_int_equal(st_inst(l, &BJ, "tk-1", "one-again"), 0);
	assert_int_equal(st_res(l, &BJ, AF_OWNER_INSTANCE, "tk-1", "gpu_count", 3, "cards", "A10"),
	                 0);
	assert_int_equal(big_instance(l, &BJ), AF_ERR_DATA);
	/* more kinds than the path follows for one owner */
	assert_int_equal(st_inst(l, &SH, "tk-5", "five"), 0);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		assert_int_equal(
		    st_res(l, &SH, AF_OWNER_INSTANCE, "tk-5", kinds[i], (double)i, "units", NULL), 0);
	/* the same instance in a second region: one entity, the later wins */
	assert_int_equal(st_inst(l, &SH, "tk-2", "two-in-shanghai"), 0);
	if (with_orphan)
		assert_int_equal(
		    st_res(l, &SH, AF_OWNER_INSTANCE, "tk-404", "cpu_cores", 1, "cores", NULL), 0);
}

/* A later run: renamed, resized, one instance gone, one new. */
static void feed_next(af_loader *l, bool with_orphan)
{
	(void)with_orphan;
	assert_int_equal(st_inst(l, &BJ, "tk-1", "one-renamed"), 0);
	assert_int_equal(st_res(l, &BJ, AF_OWNER_INSTANCE, "tk-1", "gpu_count", 4, "cards", "A10"),
	                 0);
	assert_int_equal(st_res(l, &BJ, AF_OWNER_INSTANCE, "tk-1", "cpu_cores", 8, "cores", NULL),
	                 0);
	assert_int_equal(st_svc(l, &BJ, "tk-1", "svc-1", "qwen-72b", 2), 0);
	assert_int_equal(st_res(l, &BJ, AF_OWNER_SERVICE, "svc-1", "memory_gib", 32, "GiB", NULL),
	                 0);
	assert_int_equal(st_inst(l, &SH, "tk-5", "five"), 0);
	assert_int_equal(st_inst(l, &SH, "tk-6", "six"), 0);
	assert_int_equal(st_res(l, &SH, AF_OWNER_INSTANCE, "tk-6", "cpu_cores", 2, "cores", NULL),
	                 0);
}

typedef void (*feeder)(af_loader *l, bool with_orphan);

static af_load_summary run(af_store *s, feeder feed, bool no_direct, bool with_orphan)
{
	af_run_options opts = {
	    .trigger = "test", .guard = &st_allow_all_deletes, .no_direct = no_direct};
	af_load_summary sum;
	af_loader *l = NULL;

	if (af_loader_begin(&l, s, &opts) < 0)
		fail_msg("begin: %s", af_error_last());
	feed(l, with_orphan);
	st_done(l, &BJ, AF_SCOPE_COMPLETE);
	st_done(l, &SH, AF_SCOPE_COMPLETE);
	if (af_loader_commit(l, &sum) < 0)
		fail_msg("commit: %s", af_error_last());
	af_loader_free(l);
	return sum;
}

/* What a database holds, ids and timestamps named by what they stand for:
 * an owner by its natural key, the time of a run by the run. */
static const char dump_helpers_sql[] =
    "CREATE FUNCTION public.t_run(ts timestamptz) RETURNS text LANGUAGE sql STABLE AS"
    " $$SELECT CASE WHEN ts IS NULL THEN '-' ELSE coalesce((SELECT 'run' || id"
    " FROM aifleet.sync_run WHERE started_at = ts), ts::text) END$$;"
    "CREATE FUNCTION public.t_row(j jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS"
    " $$SELECT j - 'id' - 'instance_id' - 'service_id' - 'first_seen_at'"
    " - 'last_changed_at' - 'deleted_at'$$;"
    "CREATE FUNCTION public.t_key(eid bigint) RETURNS text LANGUAGE sql STABLE AS"
    " $$SELECT coalesce((SELECT 'i/' || native_id FROM aifleet.instance WHERE id = eid),"
    " (SELECT 's/' || native_id FROM aifleet.service WHERE id = eid),"
    " (SELECT 'r/' || owner_kind || '/' || owner_native_id || '/' || kind"
    " FROM aifleet.resource WHERE id = eid), 'none')$$";

static const char dump_sql[] =
    "SELECT string_agg(x, E'\\n' ORDER BY x) FROM ("
    " SELECT t_key(id) || ' ' || t_row(to_jsonb(t)) || ' ' || t_run(first_seen_at) || ' '"
    "  || t_run(last_changed_at) || ' ' || t_run(deleted_at) AS x FROM aifleet.instance t"
    " UNION ALL SELECT t_key(id) || ' ' || t_row(to_jsonb(t)) || ' owner ' || t_key(instance_id)"
    "  || ' ' || t_run(first_seen_at) || ' ' || t_run(last_changed_at) || ' '"
    "  || t_run(deleted_at) FROM aifleet.service t"
    " UNION ALL SELECT t_key(id) || ' ' || t_row(to_jsonb(t)) || ' owner '"
    "  || t_key(coalesce(service_id, instance_id)) || ' ' || t_run(first_seen_at) || ' '"
    "  || t_run(last_changed_at) || ' ' || t_run(deleted_at) FROM aifleet.resource t"
    " UNION ALL SELECT 'history ' || t_key(entity_id) || ' ' || entity_type || ' '"
    "  || t_run(lower(valid)) || ' ' || CASE WHEN isempty(valid) THEN 'empty'"
    "  ELSE t_run(upper(valid)) END || ' ' || change || ' ' || t_run(changed_at) || ' '"
    "  || run_id || ' ' || coalesce(diff::text, '-') || ' '"
    "  || coalesce(t_row(content)::text, '-') FROM aifleet.history"
    " UNION ALL SELECT 'run ' || id || ' ' || (to_jsonb(r) - 'started_at' - 'finished_at'"
    "  - 'trigger')::text FROM aifleet.sync_run r"
    " UNION ALL SELECT 'scope ' || (to_jsonb(s) - 'last_attempt_at' - 'last_complete_at'"
    "  - 'seconds')::text FROM aifleet.scope_state s) v";

static char *dump(const af_testdb *db)
{
	char *d = af_testdb_query_value(db, dump_sql);

	assert_non_null(d);
	return d;
}

static void assert_same(const af_testdb *a, const af_testdb *b, const char *when)
{
	char *da = dump(a), *db = dump(b);

	if (strcmp(da, db) != 0) {
		print_error("first-load path:\n%s\n\nmerge:\n%s\n", da, db);
		fail_msg("the two paths differ %s", when);
	}
	free(da);
	free(db);
}

static void two_paths(bool with_orphan)
{
	af_testdb da, dm;
	af_store *sa = st_open(&da), *sm = st_open(&dm);
	af_load_summary a, m;

	af_testdb_exec(&da, dump_helpers_sql);
	af_testdb_exec(&dm, dump_helpers_sql);
	a = run(sa, feed_first, false, with_orphan);
	m = run(sm, feed_first, true, with_orphan);
	/* 29 entities: straight in went tk-1, tk-2, tk-5, svc-1 and the 5
	 * resources that follow their owner unrepeated, and 16 of tk-5's 18
	 * kinds; svc-early (before its instance) and its resource, the
	 * repeated copies and the last 2 kinds went through the merge */
	assert_int_equal(a.instances.created + a.services.created + a.resources.created, 29);
	assert_int_equal(a.direct_rows, 25);
	assert_int_equal(m.direct_rows, 0);
	assert_int_equal(a.instances.created, 3);
	assert_int_equal(a.services.created, m.services.created);
	assert_int_equal(a.resources.created, m.resources.created);
	assert_int_equal(a.history_rows, m.history_rows);
	assert_int_equal(a.scopes_partial, m.scopes_partial);
	assert_int_equal(a.scopes_partial, with_orphan ? 2 : 1);
	assert_same(&da, &dm, "after the first load");
	/* the winners: the later copies */
	assert_int_equal(af_testdb_query_int(&da, "SELECT count(*) FROM aifleet.instance WHERE"
	                                          " native_id = 'tk-1' AND name = 'one-again'"),
	                 1);
	assert_int_equal(af_testdb_query_int(&da, "SELECT count(*) FROM aifleet.instance WHERE"
	                                          " native_id = 'tk-2' AND region = 'cn-shanghai'"),
	                 1);
	assert_int_equal(af_testdb_query_int(&da, "SELECT count(*) FROM aifleet.resource WHERE"
	                                          " owner_native_id = 'svc-1' AND capacity = 32"),
	                 1);
	assert_int_equal(af_testdb_query_int(&da, "SELECT count(*) FROM aifleet.resource WHERE"
	                                          " owner_native_id = 'tk-5'"),
	                 18);
	assert_int_equal(af_testdb_query_int(&da, "SELECT count(*) FROM aifleet.history"),
	                 (long long)a.history_rows);

	a = run(sa, feed_next, false, with_orphan);
	m = run(sm, feed_next, true, with_orphan);
	assert_int_equal(a.direct_rows, 0);
	assert_true(a.instances.updated + a.instances.deleted > 0);
	assert_same(&da, &dm, "after a second run");
	a = run(sa, feed_next, false, with_orphan);
	m = run(sm, feed_next, true, with_orphan);
	assert_same(&da, &dm, "after an identical third run");
	af_store_free(sa);
	af_store_free(sm);
	af_testdb_drop(&da);
	af_testdb_drop(&dm);
}

static void test_paths_agree(void **state)
{
	(void)state;
	two_paths(false);
}

static void test_paths_agree_with_orphan(void **state)
{
	(void)state;
	two_paths(true);
}

/*
 * A database whose rows have no ledger (loaded before the ledger existed,
 * or its ledger rows lost): its accounts are not new, whatever the ledger
 * says, so their records are merged -- sent straight in, they would
 * collide with the rows already there.
 */
static void test_rows_without_ledger_are_merged(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_load_summary sum;

	(void)state;
	sum = run(s, feed_first, false, false);
	assert_true(sum.direct_rows > 0);
	af_testdb_exec(&db, "DELETE FROM aifleet.scope_state");
	sum = run(s, feed_next, false, false);
	assert_int_equal(sum.direct_rows, 0);
	assert_int_equal(sum.instances.created, 1); /* tk-6 */
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.instance WHERE"
	                                          " native_id = 'tk-1' AND name = 'one-renamed'"),
	                 1);
	/* one open version per entity, ever */
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM (SELECT entity_id"
	                                          " FROM aifleet.history WHERE upper_inf(valid)"
	                                          " AND NOT isempty(valid) GROUP BY 1"
	                                          " HAVING count(*) > 1) d"),
	                 0);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* A dry run of a first load writes nothing, though its rows were sent. */
static void test_dry_first_load_leaves_nothing(void **state)
{
	af_run_options opts = {.dry_run = true, .trigger = "test"};
	af_testdb db;
	af_store *s = st_open(&db);
	af_load_summary sum;
	af_loader *l = NULL;

	(void)state;
	assert_int_equal(af_loader_begin(&l, s, &opts), 0);
	feed_next(l, false);
	st_done(l, &BJ, AF_SCOPE_COMPLETE);
	st_done(l, &SH, AF_SCOPE_COMPLETE);
	assert_int_equal(af_loader_commit(l, &sum), 0);
	af_loader_free(l);
	assert_true(sum.direct_rows > 0);
	assert_int_equal(sum.instances.created, 3);
	assert_int_equal(af_testdb_query_int(&db, "SELECT (SELECT count(*) FROM aifleet.instance)"
	                                          " + (SELECT count(*) FROM aifleet.resource)"
	                                          " + (SELECT count(*) FROM aifleet.history)"
	                                          " + (SELECT count(*) FROM aifleet.sync_run)"),
	                 0);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* Every index of schema aifleet, as pg_indexes shows it, valid or not,
 * with its comment; then every constraint, with the index it uses and its
 * comment. */
static const char indexes_sql[] =
    "SELECT (SELECT string_agg(indexdef || CASE WHEN x.indisvalid THEN '' ELSE ' INVALID' END"
    " || coalesce(' -- ' || obj_description(x.indexrelid, 'pg_class'), ''),"
    " E'\\n' ORDER BY indexname) FROM pg_indexes p JOIN pg_index x"
    " ON x.indexrelid = (quote_ident(p.schemaname) || '.' || quote_ident(p.indexname))::regclass"
    " WHERE p.schemaname = 'aifleet') || E'\\n' || (SELECT string_agg(format('%s %s %s %s%s', c.conrelid::regclass, c.conname,"
    " pg_get_constraintdef(c.oid), c.conindid::regclass,"
    " coalesce(' -- ' || obj_description(c.oid, 'pg_constraint'), '')), E'\\n'"
    " ORDER BY c.conrelid::regclass::text, c.conname)"
    " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'aifleet')";

/*
 * A first load into an empty database builds its indexes and unique
 * constraints after the rows (bulk.c): afterwards every index and
 * constraint is there as it was, a user's own and their comments included,
 * and a first load that never commits leaves them too.
 */
static void test_first_load_keeps_indexes(void **state)
{
	af_run_options opts = {.trigger = "test"};
	af_testdb db;
	af_store *s = st_open(&db);
	af_loader *l = NULL;
	char *before, *after;

	(void)state;
	af_testdb_exec(&db, "CREATE INDEX users_own ON aifleet.instance (lower(name));"
	                    "COMMENT ON INDEX aifleet.users_own IS 'by name';"
	                    "ALTER TABLE aifleet.service ADD CONSTRAINT users_unique"
	                    " UNIQUE (instance_id, native_id) WITH (fillfactor = 70);"
	                    "COMMENT ON CONSTRAINT users_unique ON aifleet.service IS 'theirs'");
	before = af_testdb_query_value(&db, indexes_sql);
	assert_non_null(strstr(before, "users_own"));
	assert_non_null(strstr(before, "-- by name"));
	assert_non_null(strstr(before, "fillfactor='70'"));
	assert_non_null(strstr(before, "-- theirs"));
	assert_non_null(strstr(before, "history_open_version"));
	assert_non_null(strstr(before, "resource_natural_key UNIQUE (provider, account, product,"
	                               " owner_kind, owner_native_id, kind)"));
	/* begun and abandoned: rolled back */
	assert_int_equal(af_loader_begin(&l, s, &opts), 0);
	feed_next(l, false);
	af_loader_free(l);
	after = af_testdb_query_value(&db, indexes_sql);
	assert_string_equal(after, before);
	free(after);
	/* committed */
	assert_true(run(s, feed_first, false, false).direct_rows > 0);
	after = af_testdb_query_value(&db, indexes_sql);
	assert_string_equal(after, before);
	free(after);
	/* and used: one open version per entity, still enforced */
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.history"
	                                          " WHERE upper_inf(valid) AND NOT isempty(valid)"),
	                 af_testdb_query_int(&db, "SELECT count(DISTINCT entity_id)"
	                                          " FROM aifleet.history"));
	free(before);
	af_store_free(s);
	af_testdb_drop(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paths_agree),
	    cmocka_unit_test(test_paths_agree_with_orphan),
	    cmocka_unit_test(test_rows_without_ledger_are_merged),
	    cmocka_unit_test(test_dry_first_load_leaves_nothing),
	    cmocka_unit_test(test_first_load_keeps_indexes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
