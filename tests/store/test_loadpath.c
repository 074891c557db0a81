/*
 * The load path against a real PostgreSQL: an unchanged scope is skipped
 * (and only then), a changed one is filtered down to what changed, and
 * every path -- straight COPY for a scope the ledger never saw, the
 * filtered merge, the skip -- leaves the same database for the same input.
 * The history those runs build never has two overlapping versions.
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

enum {
	RENAME = 1,  /* tk-1 is renamed */
	GPU4 = 2,    /* tk-1 has 4 GPUs, not 2 */
	NO_TK2 = 4,  /* tk-2 and its resources vanished */
	EXTRA = 8,   /* tk-3 appears */
	NO_SVC = 16, /* svc-1 and its resource vanished */
	REJECT = 32, /* one resource of tk-1 is invalid (rejected) */
};

/* One scope's fleet: tk-1 with svc-1, tk-2, and tk-3 with EXTRA. */
static void feed(af_loader *l, const af_scope *sc, unsigned flags)
{
	assert_int_equal(st_inst(l, sc, "tk-1", flags & RENAME ? "one-renamed" : "one"), 0);
	assert_int_equal(st_res(l, sc, AF_OWNER_INSTANCE, "tk-1", "gpu_count", flags & GPU4 ? 4 : 2,
	                        "cards", "A10"),
	                 0);
	assert_int_equal(st_res(l, sc, AF_OWNER_INSTANCE, "tk-1", "cpu_cores", 8, "cores", NULL),
	                 0);
	if (!(flags & NO_SVC)) {
		assert_int_equal(st_svc(l, sc, "tk-1", "svc-1", "qwen-72b", 1), 0);
		assert_int_equal(
		    st_res(l, sc, AF_OWNER_SERVICE, "svc-1", "memory_gib", 16, "GiB", NULL), 0);
	}
	if (!(flags & NO_TK2)) {
		assert_int_equal(st_inst(l, sc, "tk-2", "two"), 0);
		assert_int_equal(
		    st_res(l, sc, AF_OWNER_INSTANCE, "tk-2", "cpu_cores", 4, "cores", NULL), 0);
	}
	if (flags & EXTRA) {
		assert_int_equal(st_inst(l, sc, "tk-3", "three"), 0);
		assert_int_equal(
		    st_res(l, sc, AF_OWNER_INSTANCE, "tk-3", "cpu_cores", 2, "cores", NULL), 0);
	}
	if (flags & REJECT)
		assert_int_equal(
		    st_res(l, sc, AF_OWNER_INSTANCE, "tk-1", "memory_gib", -1, "GiB", NULL),
		    AF_ERR_DATA);
}

static void report(af_loader *l, const af_scope *sc, af_scope_state state, uint64_t duplicates)
{
	af_scope_report r;

	memset(&r, 0, sizeof(r));
	r.scope = *sc;
	r.state = state;
	r.duplicates = duplicates;
	assert_int_equal(af_loader_scope_done(l, &r), 0);
}

typedef struct scope_run {
	const af_scope *scope;
	unsigned flags;
	af_scope_state state;
	uint64_t duplicates;
} scope_run;

/* One run over the given scopes; returns its summary. */
static af_load_summary run(af_store *s, const scope_run *runs, size_t n)
{
	af_run_options opts = {.trigger = "test", .guard = &st_allow_all_deletes};
	af_load_summary sum;
	af_loader *l = NULL;
	size_t i;

	if (af_loader_begin(&l, s, &opts) < 0)
		fail_msg("begin: %s", af_error_last());
	for (i = 0; i < n; i++)
		feed(l, runs[i].scope, runs[i].flags);
	for (i = 0; i < n; i++)
		report(l, runs[i].scope, runs[i].state, runs[i].duplicates);
	if (af_loader_commit(l, &sum) < 0)
		fail_msg("commit: %s", af_error_last());
	af_loader_free(l);
	return sum;
}

static af_load_summary run1(af_store *s, const af_scope *sc, unsigned flags)
{
	scope_run r = {sc, flags, AF_SCOPE_COMPLETE, 0};

	return run(s, &r, 1);
}

static long long q(const af_testdb *db, const char *sql)
{
	return af_testdb_query_int(db, sql);
}

/* Every row version in the entity tables and history: any write shows. */
static const char written_sql[] = "SELECT string_agg(x, ',' ORDER BY x) FROM ("
                                  " SELECT 'i' || ctid || xmin AS x FROM aifleet.instance UNION ALL"
                                  " SELECT 's' || ctid || xmin FROM aifleet.service UNION ALL"
                                  " SELECT 'r' || ctid || xmin FROM aifleet.resource UNION ALL"
                                  " SELECT 'h' || ctid || xmin FROM aifleet.history) v";

static const af_scope X = {"alibaba", "x", "cn-beijing", "tair_kvcache"};
static const af_scope Y = {"alibaba", "y", "cn-beijing", "tair_kvcache"};

static void test_unchanged_scope_skipped(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_load_summary sum;
	char *before, *after;

	(void)state;
	sum = run1(s, &X, 0);
	assert_int_equal(sum.scopes_skipped, 0);
	assert_int_equal(sum.instances.created, 2);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.scope_state WHERE"
	                        " octet_length(digest) = 32"),
	                 1);
	before = af_testdb_query_value(&db, written_sql);
	sum = run1(s, &X, 0);
	after = af_testdb_query_value(&db, written_sql);
	assert_int_equal(sum.scopes_skipped, 1);
	assert_int_equal(sum.scopes_complete, 1);
	assert_int_equal(sum.history_rows, 0);
	/* seen unchanged, as a merge would have counted them */
	assert_int_equal(sum.instances.staged, 2);
	assert_int_equal(sum.instances.unchanged, 2);
	assert_int_equal(sum.resources.unchanged, 4);
	assert_string_equal(before, after);
	/* only the ledger moved: last seen is run 2 */
	assert_int_equal(q(&db,
	                   "SELECT count(*) FROM aifleet.scope_state ss JOIN aifleet.sync_run r"
	                   " ON r.id = 2 WHERE ss.last_complete_at = r.started_at"
	                   " AND ss.last_run_id = 2 AND ss.last_state = 'complete'"),
	                 1);
	assert_int_equal(q(&db, "SELECT scopes_skipped FROM aifleet.sync_run WHERE id = 2"), 1);
	free(before);
	free(after);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_changed_resource_not_skipped(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_load_summary sum;

	(void)state;
	run1(s, &X, 0);
	sum = run1(s, &X, GPU4);
	assert_int_equal(sum.scopes_skipped, 0);
	assert_int_equal(sum.resources.updated, 1);
	assert_int_equal(sum.resources.unchanged, 3);
	assert_int_equal(sum.instances.unchanged, 2);
	assert_int_equal(sum.history_rows, 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.resource WHERE kind = 'gpu_count'"
	                        " AND capacity = 4"),
	                 1);
	/* and the new state is what the next identical run skips */
	sum = run1(s, &X, GPU4);
	assert_int_equal(sum.scopes_skipped, 1);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* Partial, rejected, duplicated or held: no digest, so no skip next time. */
static void test_digest_only_after_clean_run(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	scope_run partial = {&X, 0, AF_SCOPE_PARTIAL, 0};
	scope_run dup = {&X, 0, AF_SCOPE_COMPLETE, 1};
	static const char no_digest[] =
	    "SELECT count(*) FROM aifleet.scope_state WHERE digest IS NULL";
	af_load_summary sum;

	(void)state;
	run(s, &partial, 1);
	assert_int_equal(q(&db, no_digest), 1);
	sum = run1(s, &X, 0);
	assert_int_equal(sum.scopes_skipped, 0); /* partial last time: merged */
	assert_int_equal(q(&db, no_digest), 0);
	sum = run1(s, &X, 0);
	assert_int_equal(sum.scopes_skipped, 1);

	sum = run1(s, &X, REJECT);
	assert_int_equal(sum.scopes_skipped, 0);
	assert_int_equal(sum.scopes_partial, 1);
	assert_int_equal(q(&db, no_digest), 1);
	sum = run1(s, &X, 0);
	assert_int_equal(sum.scopes_skipped, 0);
	assert_int_equal(q(&db, no_digest), 0);

	sum = run(s, &dup, 1);
	assert_int_equal(sum.scopes_skipped, 0);
	assert_int_equal(sum.scopes_complete, 1);
	assert_int_equal(q(&db, no_digest), 1);
	run1(s, &X, 0);
	assert_int_equal(q(&db, no_digest), 0);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_held_scope_keeps_no_digest(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_delete_guard strict = {0.1, 1, NULL, 0};
	af_run_options opts = {.trigger = "test", .guard = &strict};
	af_load_summary sum;
	af_loader *l = NULL;

	(void)state;
	run1(s, &X, EXTRA);
	assert_int_equal(af_loader_begin(&l, s, &opts), 0);
	feed(l, &X, NO_TK2);
	report(l, &X, AF_SCOPE_COMPLETE, 0);
	assert_int_equal(af_loader_commit(l, &sum), 0);
	af_loader_free(l);
	assert_int_equal(sum.scopes_held, 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.scope_state WHERE digest IS NULL"
	                        " AND last_state = 'held'"),
	                 1);
	/* the same records again: not skipped, still held */
	assert_int_equal(af_loader_begin(&l, s, &opts), 0);
	feed(l, &X, NO_TK2);
	report(l, &X, AF_SCOPE_COMPLETE, 0);
	assert_int_equal(af_loader_commit(l, &sum), 0);
	af_loader_free(l);
	assert_int_equal(sum.scopes_skipped, 0);
	assert_int_equal(sum.scopes_held, 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.instance WHERE deleted_at IS NULL"),
	                 3);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* A record that moved to another region leaves its old scope's digest
 * stale; it goes, so the old scope is merged next time. */
static void test_moved_record_clears_old_digest(void **state)
{
	static const af_scope X2 = {"alibaba", "x", "cn-shanghai", "tair_kvcache"};
	af_testdb db;
	af_store *s = st_open(&db);
	af_load_summary sum;
	af_loader *l = NULL;

	(void)state;
	run1(s, &X, 0);
	run1(s, &X, 0);
	/* X is unchanged (skipped), and tk-2 also shows up in cn-shanghai */
	assert_int_equal(af_loader_begin(&l, s, NULL), 0);
	feed(l, &X, 0);
	assert_int_equal(st_inst(l, &X2, "tk-2", "two"), 0);
	assert_int_equal(st_res(l, &X2, AF_OWNER_INSTANCE, "tk-2", "cpu_cores", 4, "cores", NULL),
	                 0);
	report(l, &X, AF_SCOPE_COMPLETE, 0);
	report(l, &X2, AF_SCOPE_COMPLETE, 0);
	assert_int_equal(af_loader_commit(l, &sum), 0);
	af_loader_free(l);
	assert_int_equal(sum.scopes_skipped, 1);
	assert_int_equal(sum.instances.updated, 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.instance WHERE native_id = 'tk-2'"
	                        " AND region = 'cn-shanghai'"),
	                 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.scope_state WHERE region ="
	                        " 'cn-beijing' AND digest IS NULL"),
	                 1);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* A spool that cannot be created fails the run with the directory named,
 * and commits nothing. */
static void test_spool_directory_unwritable(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_load_summary sum;
	af_loader *l = NULL;
	const char *old = getenv("TMPDIR");
	char *saved = old ? strdup(old) : NULL;

	(void)state;
	run1(s, &X, 0);
	setenv("TMPDIR", "/nonexistent/aifleet-spool-test", 1);
	assert_int_equal(af_loader_begin(&l, s, NULL), 0);
	assert_int_equal(st_inst(l, &X, "tk-1", "one"), AF_ERR_IO);
	assert_non_null(strstr(af_error_last(), "/nonexistent/aifleet-spool-test"));
	assert_non_null(strstr(af_error_last(), "TMPDIR"));
	assert_int_equal(af_loader_commit(l, &sum), AF_ERR_IO);
	af_loader_free(l);
	if (saved)
		setenv("TMPDIR", saved, 1);
	else
		unsetenv("TMPDIR");
	free(saved);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.sync_run"), 1);
	/* and the next run, with a spool, loads */
	assert_int_equal(run1(s, &X, RENAME).instances.updated, 1);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* The rows and history of account `acct`, without what must differ between
 * two accounts fed the same records (ids, the account, hashes). */
static const char account_view_sql[] =
    "CREATE VIEW t_%s AS"
    " SELECT 'instance' AS type, t.native_id AS key, to_jsonb(t) - 'id' - 'account'"
    "  - 'content_hash' AS row FROM aifleet.instance t WHERE account = '%s'"
    " UNION ALL SELECT 'service', t.native_id, to_jsonb(t) - 'id' - 'account'"
    "  - 'content_hash' - 'instance_id' FROM aifleet.service t WHERE account = '%s'"
    " UNION ALL SELECT 'resource', t.owner_native_id || '/' || t.kind, to_jsonb(t) - 'id'"
    "  - 'account' - 'content_hash' - 'instance_id' - 'service_id'"
    "  FROM aifleet.resource t WHERE account = '%s'"
    " UNION ALL SELECT 'history ' || h.entity_type, e.key, jsonb_build_object('valid',"
    "  h.valid, 'change', h.change, 'changed_at', h.changed_at, 'run', h.run_id, 'diff',"
    "  h.diff, 'content', coalesce(h.content, e.row) - 'id' - 'account' - 'content_hash'"
    "  - 'instance_id' - 'service_id')"
    " FROM aifleet.history h JOIN (SELECT id, native_id AS key, to_jsonb(t) AS row"
    "  FROM aifleet.instance t WHERE account = '%s' UNION ALL SELECT id, native_id,"
    "  to_jsonb(t) FROM aifleet.service t WHERE account = '%s' UNION ALL SELECT id,"
    "  owner_native_id || '/' || kind, to_jsonb(t) FROM aifleet.resource t"
    "  WHERE account = '%s') e ON e.id = h.entity_id";

static void account_view(af_testdb *db, const char *acct)
{
	char sql[2048];

	snprintf(sql, sizeof(sql), account_view_sql, acct, acct, acct, acct, acct, acct, acct);
	af_testdb_exec(db, sql);
}

static const af_scope Z = {"alibaba", "z", "cn-beijing", "tair_kvcache"};
static const af_scope W = {"alibaba", "w", "cn-beijing", "tair_kvcache"};

/* The row versions of one account's entities and of their history: any
 * write to them shows. */
static char *account_written(af_testdb *db, const char *acct)
{
	char sql[1536];

	snprintf(sql, sizeof(sql),
	         "SELECT string_agg(x, ',' ORDER BY x) FROM ("
	         " SELECT 'i' || ctid || xmin AS x FROM aifleet.instance WHERE account = '%s'"
	         " UNION ALL SELECT 's' || ctid || xmin FROM aifleet.service WHERE account = '%s'"
	         " UNION ALL SELECT 'r' || ctid || xmin FROM aifleet.resource WHERE account = '%s'"
	         " UNION ALL SELECT 'h' || h.ctid || h.xmin FROM aifleet.history h"
	         "  JOIN (SELECT id FROM aifleet.instance WHERE account = '%s' UNION ALL"
	         "   SELECT id FROM aifleet.service WHERE account = '%s' UNION ALL"
	         "   SELECT id FROM aifleet.resource WHERE account = '%s') e"
	         "  ON e.id = h.entity_id) v",
	         acct, acct, acct, acct, acct, acct);
	return af_testdb_query_value(db, sql);
}

/*
 * A changed scope's live rows are read by scope, one changed scope beside
 * a skipped one and then two changed ones. W's rows are in the tables but
 * not in the ledger (its row is deleted) and not in the run: they must stay
 * as they are -- neither matched by a record of another scope nor
 * tombstoned as unseen.
 */
static void test_readback_paths(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	scope_run x_changed_z_same[2] = {{&X, GPU4 | NO_TK2, AF_SCOPE_COMPLETE, 0},
	                                 {&Z, 0, AF_SCOPE_COMPLETE, 0}};
	scope_run both_changed[2] = {{&X, RENAME | GPU4 | NO_TK2, AF_SCOPE_COMPLETE, 0},
	                             {&Z, EXTRA | NO_SVC, AF_SCOPE_COMPLETE, 0}};
	af_load_summary sum;
	char *w_before, *w_after;

	(void)state;
	run1(s, &X, 0);
	run1(s, &Z, 0);
	run1(s, &W, 0);
	af_testdb_exec(&db, "DELETE FROM aifleet.scope_state WHERE account = 'w'");
	w_before = account_written(&db, "w");

	/* Z unchanged (skipped, not filtered), X changed */
	sum = run(s, x_changed_z_same, 2);
	assert_int_equal(sum.scopes_skipped, 1);
	assert_int_equal(sum.instances.deleted, 1);
	assert_int_equal(sum.resources.updated, 1);
	assert_int_equal(sum.resources.deleted, 1);

	/* every ledger scope of the run filtered */
	sum = run(s, both_changed, 2);
	assert_int_equal(sum.scopes_skipped, 0);
	assert_int_equal(sum.instances.updated, 1);  /* X's tk-1 renamed */
	assert_int_equal(sum.instances.created, 1);  /* Z's tk-3 */
	assert_int_equal(sum.services.deleted, 1);   /* Z's svc-1 */
	assert_int_equal(sum.resources.deleted, 1);  /* and its resource */
	assert_int_equal(sum.resources.created, 1);  /* tk-3's */
	assert_int_equal(sum.instances.deleted + sum.instances.restored + sum.resources.updated, 0);
	w_after = account_written(&db, "w");
	assert_non_null(w_before);
	assert_string_equal(w_before, w_after);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.instance WHERE account = 'w'"
	                        " AND deleted_at IS NULL"),
	                 2);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.instance WHERE account = 'x'"
	                        " AND deleted_at IS NULL"),
	                 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.instance WHERE account = 'z'"
	                        " AND deleted_at IS NULL"),
	                 3);
	free(w_before);
	free(w_after);
	af_store_free(s);
	af_testdb_drop(&db);
}

/*
 * The same records into two accounts of one database, run after run: X
 * takes the fast paths (its scope is in the ledger: skipped when unchanged,
 * filtered when changed), Y the full one (its ledger row is deleted before
 * every run, so its records stream straight into staging and are merged
 * whole). Rows and history must be the same, and no two versions of an
 * entity may overlap.
 */
static void test_paths_agree(void **state)
{
	static const unsigned steps[] = {0,
	                                 0,
	                                 RENAME | GPU4,
	                                 NO_TK2,
	                                 0,
	                                 NO_SVC,
	                                 EXTRA,
	                                 EXTRA,
	                                 EXTRA | RENAME,
	                                 0,
	                                 NO_SVC | NO_TK2,
	                                 0,
	                                 EXTRA | GPU4};
	af_testdb db;
	af_store *s = st_open(&db);
	size_t skipped = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		scope_run both[2] = {{&X, steps[i], AF_SCOPE_COMPLETE, 0},
		                     {&Y, steps[i], AF_SCOPE_COMPLETE, 0}};
		af_load_summary sum;

		af_testdb_exec(&db, "DELETE FROM aifleet.scope_state WHERE account = 'y'");
		sum = run(s, both, 2);
		skipped += sum.scopes_skipped;
		assert_true(sum.scopes_skipped <= 1);
	}
	/* steps 1 and 7 repeat their predecessor: X was skipped there */
	assert_int_equal(skipped, 2);
	account_view(&db, "x");
	account_view(&db, "y");
	assert_true(q(&db, "SELECT count(*) FROM t_x WHERE type LIKE 'history%'") > 20);
	assert_int_equal(q(&db, "SELECT count(*) FROM ((TABLE t_x EXCEPT ALL TABLE t_y)"
	                        " UNION ALL (TABLE t_y EXCEPT ALL TABLE t_x)) d"),
	                 0);
	/* one entity's versions: every history row of it, oldest first, the
	 * open one with the current row as its content */
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.entity_history('alibaba', 'x',"
				" 'tair_kvcache', 'tk-1')"),
			 q(&db, "SELECT count(*) FROM aifleet.history h JOIN aifleet.instance i"
				" ON i.id = h.entity_id WHERE i.account = 'x' AND i.native_id = 'tk-1'"));
	assert_true(q(&db, "SELECT count(*) FROM aifleet.entity_history('alibaba', 'x',"
			   " 'tair_kvcache', 'tk-1')") >= 3);
	assert_int_equal(q(&db, "SELECT count(*) FROM (SELECT content, row_number() OVER () AS n,"
				" count(*) OVER () AS last FROM aifleet.entity_history('alibaba', 'x',"
				" 'tair_kvcache', 'tk-1')) v JOIN aifleet.instance i ON i.account = 'x'"
				" AND i.native_id = 'tk-1' WHERE v.n = v.last AND v.content = to_jsonb(i)"),
			 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.entity_history('alibaba', 'x',"
				" 'tair_kvcache', 'tk-1/gpu_count') WHERE entity_type = 'resource'"
				" AND content ->> 'kind' = 'gpu_count'"),
			 q(&db, "SELECT count(*) FROM aifleet.history h JOIN aifleet.resource r"
				" ON r.id = h.entity_id WHERE r.account = 'x' AND r.owner_native_id ="
				" 'tk-1' AND r.kind = 'gpu_count'"));
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.entity_history('alibaba', 'x',"
				" 'tair_kvcache', 'tk-404')"),
			 0);
	/* the loader's promise that replaced the exclusion constraint */
	assert_int_equal(q(&db,
	                   "SELECT count(*) FROM aifleet.history a JOIN aifleet.history b"
	                   " ON a.entity_id = b.entity_id AND a.id < b.id AND a.valid && b.valid"),
	                 0);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history WHERE content IS NULL"),
	                 q(&db,
	                   "SELECT (SELECT count(*) FROM aifleet.instance WHERE deleted_at IS NULL)"
	                   " + (SELECT count(*) FROM aifleet.service WHERE deleted_at IS NULL)"
	                   " + (SELECT count(*) FROM aifleet.resource WHERE deleted_at IS NULL)"));
	af_store_free(s);
	af_testdb_drop(&db);
}

/* Many instances in one scope, run `step` of a history: every seventh
 * renamed at step 1, every eleventh gone from step 2, new ones from 3. */
static void feed_many(af_loader *l, const af_scope *sc, int step)
{
	char id[32], name[48];

	for (int i = 0; i < 600 + (step >= 3 ? 5 : 0); i++) {
		if (step >= 2 && i % 11 == 0)
			continue;
		snprintf(id, sizeof(id), "tk-%d", i);
		snprintf(name, sizeof(name), "%s%s", id, step >= 1 && i % 7 == 0 ? "-renamed" : "");
		assert_int_equal(st_inst(l, sc, id, name), 0);
		assert_int_equal(st_res(l, sc, AF_OWNER_INSTANCE, id, "cpu_cores",
		                        step >= 4 && i == 42 ? 16 : 8, "cores", NULL),
		                 0);
	}
}

/*
 * Records compared as they come: a spooled scope's live rows are read
 * while its records arrive, and a record they hold goes no further; the
 * records before the read was in are spooled and compared at the commit.
 * Hundreds of records a run give the reads time to land mid-run, so both
 * happen. X goes that way, Y (its ledger row deleted before each run) the
 * full merge; rows and history must agree after renames, deletions, new
 * instances, one changed resource and an unchanged run.
 */
static void test_compared_as_they_come(void **state)
{
	static const int steps[] = {0, 1, 2, 3, 3, 4};
	af_run_options opts = {.trigger = "test", .guard = &st_allow_all_deletes};
	af_testdb db;
	af_store *s = st_open(&db);

	(void)state;
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		af_load_summary sum;
		af_loader *l = NULL;

		af_testdb_exec(&db, "DELETE FROM aifleet.scope_state WHERE account = 'y'");
		assert_int_equal(af_loader_begin(&l, s, &opts), 0);
		feed_many(l, &X, steps[k]);
		feed_many(l, &Y, steps[k]);
		st_done(l, &X, AF_SCOPE_COMPLETE);
		st_done(l, &Y, AF_SCOPE_COMPLETE);
		assert_int_equal(af_loader_commit(l, &sum), 0);
		af_loader_free(l);
		/* step 3 twice: X unchanged the second time */
		assert_int_equal(sum.scopes_skipped, k == 4);
		if (k == 1)
			assert_int_equal(sum.instances.updated, 2 * 86);
		if (k == 2)
			assert_int_equal(sum.instances.deleted + sum.resources.deleted, 2 * 2 * 55);
		if (k == 3)
			assert_int_equal(sum.instances.created + sum.resources.created, 2 * 2 * 5);
		if (k == 5)
			assert_int_equal(sum.resources.updated, 2);
	}
	account_view(&db, "x");
	account_view(&db, "y");
	assert_int_equal(q(&db, "SELECT count(*) FROM t_x WHERE type LIKE 'history%'"),
	                 2 * 600 + 86 + 2 * 55 + 2 * 5 + 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM ((TABLE t_x EXCEPT ALL TABLE t_y)"
	                        " UNION ALL (TABLE t_y EXCEPT ALL TABLE t_x)) d"),
	                 0);
	af_store_free(s);
	af_testdb_drop(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unchanged_scope_skipped),
	    cmocka_unit_test(test_changed_resource_not_skipped),
	    cmocka_unit_test(test_digest_only_after_clean_run),
	    cmocka_unit_test(test_held_scope_keeps_no_digest),
	    cmocka_unit_test(test_moved_record_clears_old_digest),
	    cmocka_unit_test(test_spool_directory_unwritable),
	    cmocka_unit_test(test_paths_agree),
	    cmocka_unit_test(test_readback_paths),
	    cmocka_unit_test(test_compared_as_they_come),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
