/*
 * The loader against a real PostgreSQL: every merge case, tombstoning rules,
 * rejected records, rollback on failure, the run lock, dry runs, history
 * (exclusion constraint, as-of, change feed) and the BI views.
 *
 * Expected values are worked out by hand from the fleet below.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aifleet/error.h"
#include "aifleet/store.h"
#include "storetest.h"
#include "testdb.h"

static const af_scope A = {"alibaba", "acct1", "cn-beijing", "tair_kvcache"};
static const af_scope B = {"tencent", "acct2", "ap-guangzhou", "tione"};
static const af_scope C = {"alibaba", "acct1", "cn-hangzhou", "hologres"};

enum {
	NO_TK1 = 1,      /* tk-1 (and its service and resources) vanished */
	NO_TK2 = 2,      /* tk-2 vanished */
	RENAME_TK1 = 4,  /* tk-1 renamed to "one-renamed" */
	GPU4 = 8,        /* tk-1 has 4 GPUs instead of 2 */
	RENAME_TK2 = 16, /* tk-2 renamed to "two-back" */
};

/*
 * The fleet:
 *   A: tk-1 "one" (A10 x2, 48 GiB GPU memory, 8 cores, 32 GiB) with service
 *      svc-1 (4 cores of its own, not counted: its instance reports cores);
 *      tk-2 "two" (4 cores).
 *   B: ms-1 with service ms-1-1 "llama" (T4 x2, 32 GiB GPU mem, 16 cores, 64 GiB).
 * = 3 instances, 2 services, 10 resources.
 */
static void feed(af_loader *l, unsigned flags)
{
	if (!(flags & NO_TK1)) {
		assert_int_equal(st_inst(l, &A, "tk-1", flags & RENAME_TK1 ? "one-renamed" : "one"), 0);
		assert_int_equal(st_svc(l, &A, "tk-1", "svc-1", "qwen-72b", 1), 0);
		assert_int_equal(st_res(l, &A, AF_OWNER_INSTANCE, "tk-1", "gpu_count",
					flags & GPU4 ? 4 : 2, "cards", "A10"), 0);
		assert_int_equal(st_res(l, &A, AF_OWNER_INSTANCE, "tk-1", "gpu_memory_gib", 48, "GiB", "A10"), 0);
		assert_int_equal(st_res(l, &A, AF_OWNER_INSTANCE, "tk-1", "cpu_cores", 8, "cores", NULL), 0);
		assert_int_equal(st_res(l, &A, AF_OWNER_INSTANCE, "tk-1", "memory_gib", 32, "GiB", NULL), 0);
		assert_int_equal(st_res(l, &A, AF_OWNER_SERVICE, "svc-1", "cpu_cores", 4, "cores", NULL), 0);
	}
	if (!(flags & NO_TK2)) {
		assert_int_equal(st_inst(l, &A, "tk-2", flags & RENAME_TK2 ? "two-back" : "two"), 0);
		assert_int_equal(st_res(l, &A, AF_OWNER_INSTANCE, "tk-2", "cpu_cores", 4, "cores", NULL), 0);
	}
	assert_int_equal(st_inst(l, &B, "ms-1", "group"), 0);
	assert_int_equal(st_svc(l, &B, "ms-1", "ms-1-1", "llama", 2), 0);
	assert_int_equal(st_res(l, &B, AF_OWNER_SERVICE, "ms-1-1", "gpu_count", 2, "cards", "T4"), 0);
	assert_int_equal(st_res(l, &B, AF_OWNER_SERVICE, "ms-1-1", "gpu_memory_gib", 32, "GiB", "T4"), 0);
	assert_int_equal(st_res(l, &B, AF_OWNER_SERVICE, "ms-1-1", "cpu_cores", 16, "cores", NULL), 0);
	assert_int_equal(st_res(l, &B, AF_OWNER_SERVICE, "ms-1-1", "memory_gib", 64, "GiB", NULL), 0);
}

/* One complete run of the fleet with `flags`; returns the summary. */
static af_load_summary run(af_store *s, unsigned flags, bool dry)
{
	af_run_options opts = {.dry_run = dry, .trigger = "test"};
	af_load_summary sum;
	af_loader *l = NULL;

	if (af_loader_begin(&l, s, &opts) < 0)
		fail_msg("begin: %s", af_error_last());
	feed(l, flags);
	st_done(l, &A, AF_SCOPE_COMPLETE);
	st_done(l, &B, AF_SCOPE_COMPLETE);
	if (af_loader_commit(l, &sum) < 0)
		fail_msg("commit: %s", af_error_last());
	af_loader_free(l);
	return sum;
}

static void expect_counts(const af_entity_counts *c, uint64_t created, uint64_t updated,
			  uint64_t deleted, uint64_t restored, uint64_t unchanged)
{
	assert_int_equal(c->created, created);
	assert_int_equal(c->updated, updated);
	assert_int_equal(c->deleted, deleted);
	assert_int_equal(c->restored, restored);
	assert_int_equal(c->unchanged, unchanged);
}

static long long q(const af_testdb *db, const char *sql)
{
	return af_testdb_query_int(db, sql);
}

static void test_created(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_load_summary sum = run(s, 0, false);

	assert_true(sum.run_id > 0);
	expect_counts(&sum.instances, 3, 0, 0, 0, 0);
	expect_counts(&sum.services, 2, 0, 0, 0, 0);
	expect_counts(&sum.resources, 10, 0, 0, 0, 0);
	assert_int_equal(sum.instances.staged, 3);
	assert_int_equal(sum.history_rows, 15);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.instance WHERE deleted_at IS NULL"), 3);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.service s JOIN aifleet.instance i"
				" ON i.id = s.instance_id AND i.native_id = s.instance_native_id"), 2);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.resource"), 10);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history WHERE change = 'created'"
				" AND upper_inf(valid) AND lower(valid) = (SELECT started_at FROM aifleet.sync_run)"),
			 15);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.instance WHERE length(content_hash) = 32"
				" AND first_seen_at = last_changed_at AND last_run_id = 1"), 3);
	/* jsonb columns hold parsed JSON */
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.instance WHERE tags ->> 'team' = 'ml'"
				" AND raw -> 'Nested' -> 'a' = '[1, 2]'"), 3);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.sync_run WHERE status = 'succeeded'"
				" AND instances_created = 3 AND services_created = 2"
				" AND resources_created = 10 AND history_rows = 15"
				" AND finished_at >= started_at AND trigger = 'test'"),
			 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.scope_state WHERE last_state = 'complete'"
				" AND last_complete_at = (SELECT started_at FROM aifleet.sync_run)"),
			 2);
	af_store_free(s);
	af_testdb_drop(&db);
}

static const char fingerprint_sql[] =
	"SELECT (SELECT string_agg(xmin::text || ctid::text, ',' ORDER BY id) FROM aifleet.instance)"
	" || (SELECT string_agg(xmin::text || ctid::text, ',' ORDER BY id) FROM aifleet.service)"
	" || (SELECT string_agg(xmin::text || ctid::text, ',' ORDER BY id) FROM aifleet.resource)"
	" || (SELECT string_agg(xmin::text || ctid::text, ',' ORDER BY id) FROM aifleet.history)";

static void test_unchanged_writes_nothing(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_load_summary sum;
	char *before, *after;

	run(s, 0, false);
	before = af_testdb_query_value(&db, fingerprint_sql);
	sum = run(s, 0, false);
	after = af_testdb_query_value(&db, fingerprint_sql);
	/* not one tuple rewritten: same xmin and ctid everywhere */
	assert_string_equal(before, after);
	free(before);
	free(after);
	expect_counts(&sum.instances, 0, 0, 0, 0, 3);
	expect_counts(&sum.services, 0, 0, 0, 0, 2);
	expect_counts(&sum.resources, 0, 0, 0, 0, 10);
	assert_int_equal(sum.history_rows, 0);
	/* "last seen" moved through the ledger only */
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.scope_state"
				" WHERE last_complete_at = (SELECT started_at FROM aifleet.sync_run WHERE id = 2)"),
			 2);
	assert_int_equal(q(&db, "SELECT instances_unchanged + services_unchanged + resources_unchanged"
				" FROM aifleet.sync_run WHERE id = 2"),
			 15);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_updated_with_diff(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_load_summary sum;

	run(s, 0, false);
	sum = run(s, RENAME_TK1 | GPU4, false);
	expect_counts(&sum.instances, 0, 1, 0, 0, 2);
	expect_counts(&sum.services, 0, 0, 0, 0, 2);
	expect_counts(&sum.resources, 0, 1, 0, 0, 9);
	assert_int_equal(sum.history_rows, 2);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history WHERE change = 'updated'"
				" AND entity_type = 'instance'"
				" AND diff = '{\"name\": {\"old\": \"one\", \"new\": \"one-renamed\"}}'"),
			 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history WHERE change = 'updated'"
				" AND entity_type = 'resource'"
				" AND diff = '{\"capacity\": {\"old\": 2, \"new\": 4}}'"),
			 1);
	/* raw and tags are compared member by member */
	assert_int_equal(q(&db, "SELECT count(*) WHERE aifleet.jsonb_diff("
				"'{\"raw\": {\"a\": 1, \"b\": 2}, \"tags\": {\"t\": \"x\"}, \"n\": 1}',"
				"'{\"raw\": {\"a\": 1, \"b\": 3}, \"tags\": null, \"n\": 1}') ="
				" '{\"raw.b\": {\"old\": 2, \"new\": 3},"
				"   \"tags.t\": {\"old\": \"x\", \"new\": null}}'"),
			 1);
	assert_int_equal(q(&db, "SELECT count(*) WHERE aifleet.jsonb_diff("
				"'{\"raw\": {\"a\": 1}}', '{\"raw\": {\"a\": 1}}') IS NULL"),
			 1);
	/* the old version ends exactly where the new one starts: run 2's start */
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history h JOIN aifleet.instance i"
				" ON h.entity_type = 'instance' AND h.entity_id = i.id AND i.native_id = 'tk-1'"
				" WHERE upper(h.valid) = (SELECT started_at FROM aifleet.sync_run WHERE id = 2)"
				" AND h.change = 'created'"),
			 1);
	/* compact history: the closed version took the old row as its
	 * content, the open one has none (the current row is its content) */
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history h JOIN aifleet.instance i"
				" ON h.entity_type = 'instance' AND h.entity_id = i.id AND i.native_id = 'tk-1'"
				" WHERE NOT upper_inf(h.valid) AND h.content ->> 'name' = 'one'"
				" AND (h.content ->> 'last_run_id')::int = 1"),
			 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history h JOIN aifleet.instance i"
				" ON h.entity_type = 'instance' AND h.entity_id = i.id AND i.native_id = 'tk-1'"
				" WHERE upper_inf(h.valid) AND h.content IS NULL AND i.name = 'one-renamed'"),
			 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.instances_as_of(now())"
				" WHERE native_id = 'tk-1' AND name = 'one-renamed'"),
			 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.instance WHERE native_id = 'tk-1'"
				" AND name = 'one-renamed' AND last_run_id = 2 AND first_seen_at < last_changed_at"),
			 1);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_deleted_with_children(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_load_summary sum;

	run(s, 0, false);
	sum = run(s, NO_TK1, false);
	expect_counts(&sum.instances, 0, 0, 1, 0, 2);
	expect_counts(&sum.services, 0, 0, 1, 0, 1);
	expect_counts(&sum.resources, 0, 0, 5, 0, 5);
	assert_int_equal(sum.history_rows, 7);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history WHERE change = 'deleted'"
				" AND isempty(valid) AND run_id = 2"),
			 7);
	/* no open version remains for anything tombstoned */
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history h WHERE upper_inf(h.valid)"
				" AND h.entity_type = 'instance' AND h.entity_id = (SELECT id FROM"
				" aifleet.instance WHERE native_id = 'tk-1')"),
			 0);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.instance WHERE deleted_at IS NOT NULL"), 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.current_instances"), 2);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.current_services"), 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.current_resources"), 5);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* A: partial, B: failed, C: sent records but never reported. */
static void test_untouched_unless_complete(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_run_options opts = {.trigger = "test"};
	af_load_summary sum;
	af_loader *l = NULL;

	assert_int_equal(af_loader_begin(&l, s, &opts), 0);
	feed(l, 0);
	assert_int_equal(st_inst(l, &C, "h-1", "node1"), 0);
	assert_int_equal(st_inst(l, &C, "h-2", "node2"), 0);
	st_done(l, &A, AF_SCOPE_COMPLETE);
	st_done(l, &B, AF_SCOPE_COMPLETE);
	st_done(l, &C, AF_SCOPE_COMPLETE);
	assert_int_equal(af_loader_commit(l, &sum), 0);
	af_loader_free(l);
	assert_int_equal(sum.instances.created, 5);

	assert_int_equal(af_loader_begin(&l, s, &opts), 0);
	/* ms-1 is missing from B too: B reports failed */
	assert_int_equal(st_inst(l, &A, "tk-1", "one"), 0);
	assert_int_equal(st_inst(l, &C, "h-1", "node1"), 0);
	st_done(l, &A, AF_SCOPE_PARTIAL);
	st_done(l, &B, AF_SCOPE_FAILED);
	assert_int_equal(af_loader_commit(l, &sum), 0);
	af_loader_free(l);
	expect_counts(&sum.instances, 0, 0, 0, 0, 2);
	expect_counts(&sum.services, 0, 0, 0, 0, 0);
	expect_counts(&sum.resources, 0, 0, 0, 0, 0);
	assert_int_equal(sum.history_rows, 0);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.instance WHERE deleted_at IS NULL"), 5);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.resource WHERE deleted_at IS NULL"), 10);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.scope_state WHERE region = 'cn-beijing'"
				" AND last_state = 'partial' AND last_run_id = 2"
				" AND last_error = 'simulated collection error'"),
			 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.scope_state WHERE product = 'tione'"
				" AND last_state = 'failed'"),
			 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.scope_state WHERE product = 'hologres'"
				" AND last_state = 'partial' AND last_error LIKE '%not reported%'"),
			 1);
	/* last complete stays at run 1 for all three */
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.scope_state WHERE last_complete_at ="
				" (SELECT started_at FROM aifleet.sync_run WHERE id = 1)"),
			 3);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.sync_run WHERE id = 2 AND status = 'partial'"
				" AND scopes_complete = 0 AND scopes_partial = 2 AND scopes_failed = 1"),
			 1);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* Runs 1 (all), 2 (tk-2 gone), 3 (tk-2 back, renamed). */
static void three_runs(af_store *s, af_load_summary *third)
{
	run(s, 0, false);
	run(s, NO_TK2, false);
	usleep(2000);
	*third = run(s, RENAME_TK2, false);
}

static void test_restored(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_load_summary sum;

	three_runs(s, &sum);
	expect_counts(&sum.instances, 0, 0, 0, 1, 2);
	expect_counts(&sum.resources, 0, 0, 0, 1, 9);
	assert_int_equal(sum.history_rows, 2);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history WHERE change = 'restored'"
				" AND entity_type = 'instance' AND upper_inf(valid) AND run_id = 3"
				" AND diff = '{\"name\": {\"old\": \"two\", \"new\": \"two-back\"}}'"),
			 1);
	/* restored unchanged content: no diff fields */
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.history WHERE change = 'restored'"
				" AND entity_type = 'resource' AND diff IS NULL"),
			 1);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.instance WHERE native_id = 'tk-2'"
				" AND deleted_at IS NULL AND name = 'two-back'"),
			 1);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_as_of_and_change_feed(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_load_summary sum;
	char *v;

	three_runs(s, &sum);
	/* before the first run: nothing */
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.fleet_as_of("
				"(SELECT started_at FROM aifleet.sync_run WHERE id = 1) - interval '1 second')"),
			 0);
	/* at run 1: everything, tk-2 with its first name */
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.fleet_as_of("
				"(SELECT started_at FROM aifleet.sync_run WHERE id = 1))"),
			 15);
	v = af_testdb_query_value(&db, "SELECT name FROM aifleet.fleet_as_of("
				       "(SELECT started_at FROM aifleet.sync_run WHERE id = 2) - interval '1 microsecond')"
				       " WHERE native_id = 'tk-2'");
	assert_string_equal(v, "two");
	free(v);
	/* between run 2 and 3: tk-2 and its resource are gone */
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.fleet_as_of("
				"(SELECT started_at FROM aifleet.sync_run WHERE id = 3) - interval '1 microsecond')"),
			 13);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.instances_as_of("
				"(SELECT started_at FROM aifleet.sync_run WHERE id = 2)) WHERE native_id = 'tk-2'"),
			 0);
	/* after run 3: back, renamed; typed as-of returns aifleet.instance rows */
	v = af_testdb_query_value(&db, "SELECT name FROM aifleet.instances_as_of(now())"
				       " WHERE native_id = 'tk-2'");
	assert_string_equal(v, "two-back");
	free(v);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.resources_as_of(now())"), 10);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.services_as_of(now())"), 2);
	/* the change feed, in order */
	v = af_testdb_query_value(&db, "SELECT string_agg(change || '@' || run_id, ',' ORDER BY time, seq)"
				       " FROM aifleet.change_feed WHERE native_id = 'tk-2'");
	assert_string_equal(v, "created@1,deleted@2,restored@3");
	free(v);
	v = af_testdb_query_value(&db, "SELECT string_agg(change || '@' || run_id, ',' ORDER BY time, seq)"
				       " FROM aifleet.change_feed WHERE native_id = 'tk-2/cpu_cores'");
	assert_string_equal(v, "created@1,deleted@2,restored@3");
	free(v);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.change_feed WHERE provider = 'alibaba'"
				" AND account = 'acct1' AND region = 'cn-beijing' AND product = 'tair_kvcache'"
				" AND entity_type = 'instance' AND name = 'two-back' AND diff IS NOT NULL"),
			 1);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_rejected_records(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_run_options opts = {.trigger = "test"};
	af_record_sink sink;
	af_instance bad;
	af_resource badres;
	af_load_summary sum;
	af_loader *l = NULL;
	char *longkey, *huge;

	run(s, 0, false);
	assert_int_equal(af_loader_begin(&l, s, &opts), 0);
	sink = af_loader_sink(l);
	feed(l, NO_TK2 | RENAME_TK1);
	/* no native id */
	assert_int_equal(st_inst(l, &A, "", "two"), AF_ERR_DATA);
	assert_non_null(strstr(af_error_last(), "alibaba/acct1/cn-beijing/tair_kvcache"));
	assert_non_null(strstr(af_error_last(), "native_id"));
	/* NaN and negative capacity */
	assert_int_equal(st_res(l, &A, AF_OWNER_INSTANCE, "tk-2", "cpu_cores", NAN, "cores", NULL),
			 AF_ERR_DATA);
	assert_non_null(strstr(af_error_last(), "tk-2/cpu_cores"));
	assert_non_null(strstr(af_error_last(), "capacity"));
	assert_int_equal(st_res(l, &A, AF_OWNER_INSTANCE, "tk-2", "cpu_cores", -1, "cores", NULL),
			 AF_ERR_DATA);
	assert_non_null(strstr(af_error_last(), "negative"));
	/* missing unit */
	assert_int_equal(st_res(l, &A, AF_OWNER_INSTANCE, "tk-2", "cpu_cores", 1, "", NULL), AF_ERR_DATA);
	/* bad JSON */
	memset(&bad, 0, sizeof(bad));
	bad.native_id = "tk-2";
	bad.created_at = bad.updated_at = bad.expires_at = AF_TIME_NULL;
	bad.tags_json = "[1, 2]";
	assert_int_equal(sink.instance(sink.ctx, &A, &bad), AF_ERR_DATA);
	assert_non_null(strstr(af_error_last(), "tk-2"));
	bad.tags_json = NULL;
	bad.raw_json = "{\"a\": 1} trailing";
	assert_int_equal(sink.instance(sink.ctx, &A, &bad), AF_ERR_DATA);
	bad.raw_json = "{\"a\": \"\\u0000\"}";
	assert_int_equal(sink.instance(sink.ctx, &A, &bad), AF_ERR_DATA);
	bad.raw_json = "{\"a\": ";
	assert_int_equal(sink.instance(sink.ctx, &A, &bad), AF_ERR_DATA);
	/* invalid UTF-8 */
	bad.raw_json = NULL;
	bad.name = "bad \xc3\x28";
	assert_int_equal(sink.instance(sink.ctx, &A, &bad), AF_ERR_DATA);
	/* a native id too long for a btree key would fail the whole merge */
	bad.name = NULL;
	longkey = malloc(3001);
	memset(longkey, 'k', 3000);
	longkey[3000] = '\0';
	bad.native_id = longkey;
	assert_int_equal(sink.instance(sink.ctx, &A, &bad), AF_ERR_DATA);
	assert_non_null(strstr(af_error_last(), "longer than 1024 bytes"));
	/* a record over the 16 MiB row limit is rejected alone, not the run */
	huge = malloc((size_t)17 << 20);
	memset(huge, 'h', ((size_t)17 << 20) - 1);
	huge[((size_t)17 << 20) - 1] = '\0';
	bad.native_id = "tk-huge";
	bad.name = huge;
	assert_int_equal(sink.instance(sink.ctx, &A, &bad), AF_ERR_DATA);
	assert_non_null(strstr(af_error_last(), "16 MiB"));
	free(huge);
	free(longkey);
	/* service without owner */
	assert_int_equal(st_svc(l, &A, NULL, "svc-x", "m", 1), AF_ERR_DATA);
	/* resource with no owner kind in range */
	memset(&badres, 0, sizeof(badres));
	badres.owner_kind = (af_owner_kind)7;
	badres.owner_id = "tk-1";
	badres.kind = "x";
	badres.unit = "u";
	assert_int_equal(sink.resource(sink.ctx, &A, &badres), AF_ERR_DATA);
	st_done(l, &A, AF_SCOPE_COMPLETE);
	st_done(l, &B, AF_SCOPE_COMPLETE);
	/* the run still loads */
	assert_int_equal(af_loader_commit(l, &sum), 0);
	af_loader_free(l);
	expect_counts(&sum.instances, 0, 1, 0, 0, 1);
	/* A had rejects: tk-2 is missing but not tombstoned; B is complete */
	expect_counts(&sum.resources, 0, 0, 0, 0, 9);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.instance WHERE native_id = 'tk-2'"
				" AND deleted_at IS NULL"),
			 1);
	assert_int_equal(q(&db, "SELECT rejected FROM aifleet.scope_state WHERE product = 'tair_kvcache'"
				" AND last_state = 'partial'"),
			 13);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.scope_state WHERE product = 'tione'"
				" AND last_state = 'complete' AND last_run_id = 2"),
			 1);
	assert_int_equal(q(&db, "SELECT rejected FROM aifleet.sync_run WHERE id = 2 AND status = 'partial'"), 13);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_orphans_rejected_at_merge(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_run_options opts = {.trigger = "test"};
	af_load_summary sum;
	af_loader *l = NULL;

	run(s, 0, false);
	assert_int_equal(af_loader_begin(&l, s, &opts), 0);
	feed(l, NO_TK2);
	assert_int_equal(st_svc(l, &A, "tk-unknown", "svc-orphan", "m", 1), 0);
	assert_int_equal(st_res(l, &A, AF_OWNER_SERVICE, "svc-orphan", "cpu_cores", 1, "cores", NULL), 0);
	st_done(l, &A, AF_SCOPE_COMPLETE);
	st_done(l, &B, AF_SCOPE_COMPLETE);
	assert_int_equal(af_loader_commit(l, &sum), 0);
	af_loader_free(l);
	/* the orphans made A partial: tk-2 is not tombstoned */
	assert_int_equal(sum.instances.deleted, 0);
	assert_int_equal(sum.services.staged, 2);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.service WHERE native_id = 'svc-orphan'"), 0);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.scope_state WHERE product = 'tair_kvcache'"
				" AND last_state = 'partial' AND rejected = 2"
				" AND last_error LIKE '%svc-orphan%owner%'"),
			 1);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void expect_nothing_written(const af_testdb *db)
{
	assert_int_equal(q(db, "SELECT count(*) FROM aifleet.sync_run"), 0);
	assert_int_equal(q(db, "SELECT count(*) FROM aifleet.instance"), 0);
	assert_int_equal(q(db, "SELECT count(*) FROM aifleet.service"), 0);
	assert_int_equal(q(db, "SELECT count(*) FROM aifleet.resource"), 0);
	assert_int_equal(q(db, "SELECT count(*) FROM aifleet.history"), 0);
	assert_int_equal(q(db, "SELECT count(*) FROM aifleet.scope_state"), 0);
}

static void test_connection_killed_commits_nothing(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_run_options opts = {.trigger = "test"};
	af_load_summary sum;
	af_loader *l = NULL;
	int err;

	assert_int_equal(af_loader_begin(&l, s, &opts), 0);
	feed(l, 0);
	st_done(l, &A, AF_SCOPE_COMPLETE);
	assert_int_equal(q(&db, "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
				" WHERE datname = current_database() AND application_name = 'aifleet') t"),
			 1);
	err = af_loader_commit(l, &sum);
	assert_true(err == AF_ERR_TRANSIENT || err == AF_ERR_DB);
	af_loader_free(l);
	af_store_free(s);
	expect_nothing_written(&db);
	af_testdb_drop(&db);
}

static void test_merge_failure_commits_nothing(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_run_options opts = {.trigger = "test"};
	af_load_summary sum;
	af_loader *l = NULL;

	/* Fail in the middle of the merge: instances are already inserted when
	 * the first service insert raises. */
	af_testdb_exec(&db, "CREATE FUNCTION public.boom() RETURNS trigger LANGUAGE plpgsql AS"
			    " $$BEGIN RAISE EXCEPTION 'boom'; END$$;"
			    " CREATE TRIGGER boom BEFORE INSERT ON aifleet.service"
			    " FOR EACH ROW EXECUTE FUNCTION public.boom()");
	assert_int_equal(af_loader_begin(&l, s, &opts), 0);
	feed(l, 0);
	st_done(l, &A, AF_SCOPE_COMPLETE);
	st_done(l, &B, AF_SCOPE_COMPLETE);
	assert_int_equal(af_loader_commit(l, &sum), AF_ERR_DB);
	assert_non_null(strstr(af_error_last(), "boom"));
	assert_int_equal(sum.run_id, 0);
	af_loader_free(l);
	expect_nothing_written(&db);
	/* the store is usable again, and the lock was released */
	af_testdb_exec(&db, "DROP TRIGGER boom ON aifleet.service");
	sum = run(s, 0, false);
	assert_int_equal(sum.instances.created, 3);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_free_without_commit_rolls_back(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_loader *l = NULL;

	assert_int_equal(af_loader_begin(&l, s, NULL), 0);
	feed(l, 0);
	st_done(l, &A, AF_SCOPE_COMPLETE);
	af_loader_free(l);
	expect_nothing_written(&db);
	af_store_free(s);
	af_testdb_drop(&db);
}

struct waiter {
	af_store *s;
	int rc;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	af_run_options opts = {.wait_for_lock = true, .trigger = "waiter"};
	af_loader *l = NULL;

	w->rc = af_loader_begin(&l, w->s, &opts);
	af_loader_free(l);
	return NULL;
}

static void test_concurrent_runs_locked(void **state)
{
	af_testdb db;
	af_store *s1 = st_open(&db);
	af_store *s2 = NULL;
	af_loader *l1 = NULL, *l2 = NULL;
	struct waiter w;
	pthread_t th;

	assert_int_equal(af_store_connect(&s2, db.conninfo), 0);
	assert_int_equal(af_loader_begin(&l1, s1, NULL), 0);
	assert_int_equal(af_loader_begin(&l2, s2, NULL), AF_ERR_LOCKED);
	assert_null(l2);
	assert_non_null(strstr(af_error_last(), "another aifleet run holds the lock (pid "));
	assert_non_null(strstr(af_error_last(), " since "));
	/* a waiting run gets the lock once the first one is done */
	w.s = s2;
	w.rc = -100;
	assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
	usleep(300 * 1000);
	assert_int_equal(w.rc, -100); /* still waiting */
	af_loader_free(l1);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, 0);
	assert_int_equal(af_loader_begin(&l2, s2, NULL), 0);
	af_loader_free(l2);
	af_store_free(s2);
	af_store_free(s1);
	af_testdb_drop(&db);
}

static void test_dry_run(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_load_summary dry, real;
	char *before, *after;

	dry = run(s, 0, true);
	assert_int_equal(dry.run_id, 0);
	expect_counts(&dry.instances, 3, 0, 0, 0, 0);
	expect_counts(&dry.resources, 10, 0, 0, 0, 0);
	assert_int_equal(dry.history_rows, 15);
	expect_nothing_written(&db);

	run(s, 0, false);
	before = af_testdb_query_value(&db, fingerprint_sql);
	dry = run(s, NO_TK2 | RENAME_TK1 | GPU4, true);
	after = af_testdb_query_value(&db, fingerprint_sql);
	assert_string_equal(before, after);
	free(before);
	free(after);
	assert_int_equal(q(&db, "SELECT count(*) FROM aifleet.sync_run"), 1);
	real = run(s, NO_TK2 | RENAME_TK1 | GPU4, false);
	assert_memory_equal(&dry.instances, &real.instances, sizeof(dry.instances));
	assert_memory_equal(&dry.services, &real.services, sizeof(dry.services));
	assert_memory_equal(&dry.resources, &real.resources, sizeof(dry.resources));
	assert_int_equal(dry.history_rows, real.history_rows);
	expect_counts(&real.instances, 0, 1, 1, 0, 1);
	expect_counts(&real.resources, 0, 1, 1, 0, 8);
	assert_int_equal(real.history_rows, 4);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* The history's keys: one open version and one version start per entity
 * (unique indexes; the loader keeps versions from overlapping). */
static void test_history_keys(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	PGconn *c;
	PGresult *res;

	run(s, 0, false);
	c = PQconnectdb(db.conninfo);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	res = PQexec(c, "INSERT INTO aifleet.history (entity_type, entity_id, valid, change, changed_at,"
			" run_id) SELECT 'instance', id, tstzrange(now() - interval '1 day', NULL),"
			" 'updated', now(), 1 FROM aifleet.instance WHERE native_id = 'tk-1'");
	assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
	assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23505");
	assert_non_null(strstr(PQresultErrorMessage(res), "history_open_version"));
	PQclear(res);
	res = PQexec(c, "INSERT INTO aifleet.history (entity_type, entity_id, valid, change, changed_at,"
			" run_id, content) SELECT 'instance', i.id, tstzrange(lower(h.valid),"
			" lower(h.valid) + interval '1 hour'), 'updated', now(), 1, '{}'"
			" FROM aifleet.instance i JOIN aifleet.history h ON h.entity_id = i.id"
			" WHERE native_id = 'tk-1'");
	assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
	assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23505");
	assert_non_null(strstr(PQresultErrorMessage(res), "history_version_start"));
	PQclear(res);
	/* a closed version must say what it was */
	res = PQexec(c, "INSERT INTO aifleet.history (entity_type, entity_id, valid, change, changed_at,"
			" run_id) SELECT 'instance', id, tstzrange(now() - interval '3 days',"
			" now() - interval '2 days'), 'updated', now(), 1 FROM aifleet.instance"
			" WHERE native_id = 'tk-1'");
	assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
	assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23514");
	PQclear(res);
	/* a non-overlapping earlier version is fine */
	res = PQexec(c, "INSERT INTO aifleet.history (entity_type, entity_id, valid, change, changed_at,"
			" run_id, content) SELECT 'instance', id, tstzrange(now() - interval '2 days',"
			" now() - interval '1 day'), 'updated', now(), 1, '{}' FROM aifleet.instance"
			" WHERE native_id = 'tk-1'");
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	PQfinish(c);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_capacity_summary(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	char *v;

	run(s, 0, false);
	v = af_testdb_query_value(&db,
		"SELECT string_agg(concat_ws('|', provider, region, coalesce(gpu_model, '-'), model,"
		" instances, gpu_cards, gpu_memory_gib, cpu_cores, memory_gib), ';'"
		" ORDER BY provider, region, gpu_model NULLS LAST)"
		" FROM aifleet.capacity_summary");
	/* tk-1: its own cores win over svc-1's 4; tk-2 is CPU-only; ms-1 through its service */
	assert_string_equal(v, "alibaba|cn-beijing|A10|qwen-72b|1|2|48|8|32;"
			       "alibaba|cn-beijing|-|qwen-72b|1|0|0|4|0;"
			       "tencent|ap-guangzhou|T4|llama|1|2|32|16|64");
	free(v);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_escaping_roundtrip_and_duplicates(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	static const char *tricky = "tab\there\nnl\r\\back \\N \xe4\xb8\xad end";
	af_load_summary sum;
	af_loader *l = NULL;
	af_record_sink sink;
	af_instance in;
	PGconn *c;
	PGresult *res;
	const char *params[1] = {tricky};

	assert_int_equal(af_loader_begin(&l, s, NULL), 0);
	sink = af_loader_sink(l);
	memset(&in, 0, sizeof(in));
	in.native_id = "dup";
	in.name = "first copy";
	in.created_at = in.updated_at = in.expires_at = AF_TIME_NULL;
	assert_int_equal(sink.instance(sink.ctx, &A, &in), 0);
	in.name = tricky;
	/* An escaped backslash before "u0000" is text, not a NUL escape. */
	in.raw_json = "{\"path\": \"C:\\\\dir\\ttab\", \"lit\": \"\\\\u0000\"}";
	in.created_at = -1; /* 1969-12-31 23:59:59.999999 */
	assert_int_equal(sink.instance(sink.ctx, &A, &in), 0);
	st_done(l, &A, AF_SCOPE_COMPLETE);
	assert_int_equal(af_loader_commit(l, &sum), 0);
	af_loader_free(l);
	/* the duplicate natural key collapsed, the last copy won */
	assert_int_equal(sum.instances.staged, 1);
	c = PQconnectdb(db.conninfo);
	res = PQexecParams(c, "SELECT count(*) FROM aifleet.instance WHERE name = $1"
			      " AND raw ->> 'path' = E'C:\\\\dir\\ttab'"
			      " AND raw ->> 'lit' = E'\\\\u0000'"
			      " AND created_at = '1969-12-31 23:59:59.999999+00'",
			   1, NULL, params, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(res, 0, 0), "1");
	PQclear(res);
	PQfinish(c);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_print_status(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	char buf[8192];
	size_t n;
	FILE *f = tmpfile();

	run(s, 0, false);
	run(s, NO_TK1, false);
	assert_non_null(f);
	assert_int_equal(af_store_print_status(s, f, 5), 0);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	assert_non_null(strstr(buf, "succeeded"));
	assert_non_null(strstr(buf, "alibaba/acct1/cn-beijing/tair_kvcache"));
	assert_non_null(strstr(buf, "complete"));
	af_store_free(s);
	af_testdb_drop(&db);
}

/*
 * The content hash is the loader's definition of "changed": a database
 * loaded by one build and reloaded by the next must classify everything as
 * unchanged. These hashes were computed by the loader as of commit aa939e6
 * (hand-written sink functions); any change to the hashed fields, their
 * order or their encoding breaks this test -- and would rewrite every row
 * of every existing database on the next sync.
 */
static void feed_hash_fleet(af_loader *l)
{
	af_record_sink sink = af_loader_sink(l);
	af_instance in;
	af_service sv;
	af_resource rs;

	/* every field set, with escapes, UTF-8 and a time before 1970 */
	memset(&in, 0, sizeof(in));
	in.native_id = "h-full";
	in.name = "full\tname \xe4\xb8\xad";
	in.status = "running";
	in.status_raw = "Running";
	in.charge_type = "prepaid";
	in.charge_type_raw = "PrePaid";
	in.zone = "cn-beijing-h";
	in.spec = "kvcache.x8";
	in.model = "qwen-72b";
	in.created_at = -1;
	in.updated_at = 1700000000123456LL;
	in.expires_at = 1800000000000000LL;
	in.tags_json = "{\"team\": \"ml\", \"env\": \"prod\"}";
	in.raw_json = "{\"InstanceId\": \"h-full\", \"Nested\": {\"a\": [1, 2.5, null]}}";
	assert_int_equal(sink.instance(sink.ctx, &A, &in), 0);
	/* nothing but the key */
	memset(&in, 0, sizeof(in));
	in.native_id = "h-sparse";
	in.created_at = in.updated_at = in.expires_at = AF_TIME_NULL;
	assert_int_equal(sink.instance(sink.ctx, &A, &in), 0);
	/* ("ab", NULL) and ("a", "b") must differ */
	in.native_id = "h-ab";
	in.name = "ab";
	assert_int_equal(sink.instance(sink.ctx, &B, &in), 0);
	in.native_id = "h-a-b";
	in.name = "a";
	in.status = "b";
	assert_int_equal(sink.instance(sink.ctx, &B, &in), 0);

	memset(&sv, 0, sizeof(sv));
	sv.instance_id = "h-full";
	sv.native_id = "s-full";
	sv.name = "svc";
	sv.model = "qwen-72b";
	sv.model_version = "v2";
	sv.status = "running";
	sv.status_raw = "Normal";
	sv.charge_type = "postpaid";
	sv.charge_type_raw = "POSTPAID_BY_HOUR";
	sv.replicas = (af_num){3, true};
	sv.created_at = 1600000000000000LL;
	sv.updated_at = 1600000000000001LL;
	sv.tags_json = "{}";
	sv.raw_json = "[\"any\", \"json\"]";
	assert_int_equal(sink.service(sink.ctx, &A, &sv), 0);
	memset(&sv, 0, sizeof(sv));
	sv.instance_id = "h-sparse";
	sv.native_id = "s-sparse";
	sv.created_at = sv.updated_at = AF_TIME_NULL;
	assert_int_equal(sink.service(sink.ctx, &A, &sv), 0);
	sv.native_id = "s-zero";
	sv.replicas = (af_num){0, true};
	assert_int_equal(sink.service(sink.ctx, &A, &sv), 0);

	memset(&rs, 0, sizeof(rs));
	rs.owner_kind = AF_OWNER_INSTANCE;
	rs.owner_id = "h-full";
	rs.kind = "gpu_count";
	rs.capacity = (af_num){2, true};
	rs.used = (af_num){0.5, true};
	rs.per_replica = (af_num){1e-300, true};
	rs.unit = "cards";
	rs.gpu_model = "A10";
	rs.basis = "reported";
	assert_int_equal(sink.resource(sink.ctx, &A, &rs), 0);
	memset(&rs, 0, sizeof(rs));
	rs.owner_kind = AF_OWNER_SERVICE;
	rs.owner_id = "s-full";
	rs.kind = "cpu_cores";
	rs.unit = "cores";
	assert_int_equal(sink.resource(sink.ctx, &A, &rs), 0);
}

static void test_content_hash_is_stable(void **state)
{
	static const char hashes_sql[] =
		"SELECT string_agg(id || '=' || encode(content_hash, 'hex'), ' ' ORDER BY id) FROM ("
		" SELECT native_id AS id, content_hash FROM aifleet.instance UNION ALL"
		" SELECT native_id, content_hash FROM aifleet.service UNION ALL"
		" SELECT owner_native_id || '/' || kind, content_hash FROM aifleet.resource) x";
	static const char expected[] =
		"h-a-b=fc0843c841a1d3c5c568ee0be8ab7a937e3046eca423ec787fa2a7f0a930a4b4"
		" h-ab=ecd34d638d753c03b3817ea47655170e39120ffa2ceba591f4bc73fa17c559c0"
		" h-full=f6047c6337e2cae59d2ca90df7f1435410c6e28359e2e0e141ccdb40c75f051e"
		" h-full/gpu_count=3f29fb59f15b4b9423682caa1e9d51e06156f256784a6deca7f5e90eb55c456c"
		" h-sparse=1add55922c3776c4e3829a3de7c9d38c54fae53b913891a491953ce7df16b524"
		" s-full=190f1f7fa3b33fdc4e4519f5343573981aff0a2fa65c00ef337404bcbad86083"
		" s-full/cpu_cores=83ffcf94e873a8a3a6a360a980c8af419a83ea1da950190c8f2faa79a743ed58"
		" s-sparse=c86e33383cd9eb6ed2f62557df16b1dc20ac8fb44d09f192f4e1a1b594b3eaca"
		" s-zero=7cc0e03c7773c217dd1d11871f650972683a876711df1752dd3f79be3be1c07e";
	af_testdb db;
	af_store *s = st_open(&db);
	af_load_summary sum;
	af_loader *l = NULL;
	char *v;

	assert_int_equal(af_loader_begin(&l, s, NULL), 0);
	feed_hash_fleet(l);
	st_done(l, &A, AF_SCOPE_COMPLETE);
	st_done(l, &B, AF_SCOPE_COMPLETE);
	assert_int_equal(af_loader_commit(l, &sum), 0);
	af_loader_free(l);
	assert_int_equal(sum.instances.created + sum.services.created + sum.resources.created, 9);
	v = af_testdb_query_value(&db, hashes_sql);
	assert_string_equal(v, expected);
	free(v);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* The rejection reasons, exactly: they reach the log and scope_state. */
static void expect_rejected(int rc, const char *what)
{
	const char *msg = af_error_last();
	size_t n = strlen(msg), k = strlen(what);

	assert_int_equal(rc, AF_ERR_DATA);
	if (n < k || strcmp(msg + n - k, what) != 0)
		fail_msg("rejection '%s' does not end with '%s'", msg, what);
}

static void reject_instances(af_record_sink sink, char *longid)
{
	af_instance in;

	memset(&in, 0, sizeof(in));
	in.created_at = in.updated_at = in.expires_at = AF_TIME_NULL;
	expect_rejected(sink.instance(sink.ctx, &A, &in),
			"rejected instance (no native id) in scope alibaba/acct1/cn-beijing/"
			"tair_kvcache: native_id is empty");
	/* the key comes first, then the rest in a fixed order */
	in.created_at = 253402300799000001LL;
	in.native_id = "";
	expect_rejected(sink.instance(sink.ctx, &A, &in), ": native_id is empty");
	in.native_id = longid;
	expect_rejected(sink.instance(sink.ctx, &A, &in),
			"... in scope alibaba/acct1/cn-beijing/tair_kvcache:"
			" native_id is longer than 1024 bytes");
	in.native_id = "tk-r";
	in.zone = "\xff";
	expect_rejected(sink.instance(sink.ctx, &A, &in),
			"rejected instance tk-r in scope alibaba/acct1/cn-beijing/tair_kvcache:"
			" a text field is not valid UTF-8");
	in.zone = NULL;
	expect_rejected(sink.instance(sink.ctx, &A, &in), ": a time is out of range");
	in.created_at = AF_TIME_NULL;
	in.expires_at = -62135596800000001LL;
	expect_rejected(sink.instance(sink.ctx, &A, &in), ": a time is out of range");
	in.expires_at = AF_TIME_NULL;
	in.tags_json = "[1]";
	in.raw_json = "nope";
	expect_rejected(sink.instance(sink.ctx, &A, &in), ": tags_json: not a JSON object");
	in.tags_json = "{\"a\": \"\xc3\x28\"}";
	expect_rejected(sink.instance(sink.ctx, &A, &in), ": tags_json: invalid utf-8 string");
	in.tags_json = "{}";
	in.raw_json = "{\"a\": 1} x";
	/* strict parsing: anything after the value is an unexpected character */
	expect_rejected(sink.instance(sink.ctx, &A, &in), ": raw_json: unexpected character");
	in.raw_json = "{\"a\": ";
	expect_rejected(sink.instance(sink.ctx, &A, &in), ": raw_json: truncated JSON");
	in.raw_json = "[\"\\u0000\"]";
	expect_rejected(sink.instance(sink.ctx, &A, &in),
			": raw_json: contains \\u0000, which PostgreSQL jsonb cannot store");
	/* a key of exactly 1024 bytes is fine */
	longid[1024] = '\0';
	in.native_id = longid;
	in.raw_json = NULL;
	assert_int_equal(sink.instance(sink.ctx, &A, &in), 0);
	longid[1024] = 'k';
}

static void reject_services(af_record_sink sink, const char *longid)
{
	af_service sv;

	memset(&sv, 0, sizeof(sv));
	sv.created_at = sv.updated_at = AF_TIME_NULL;
	sv.instance_id = "tk-1";
	expect_rejected(sink.service(sink.ctx, &A, &sv), ": native_id is empty");
	sv.native_id = "svc-r";
	sv.instance_id = "";
	expect_rejected(sink.service(sink.ctx, &A, &sv),
			"rejected service svc-r in scope alibaba/acct1/cn-beijing/tair_kvcache:"
			" instance_id (the owning instance) is empty");
	sv.instance_id = longid;
	expect_rejected(sink.service(sink.ctx, &A, &sv),
			": native_id or instance_id is longer than 1024 bytes");
	sv.instance_id = "tk-1";
	sv.model_version = "\xed\xa0\x80"; /* a surrogate */
	sv.replicas = (af_num){NAN, true};
	expect_rejected(sink.service(sink.ctx, &A, &sv), ": a text field is not valid UTF-8");
	sv.model_version = NULL;
	/* numbers say which rule they broke, replicas as resources' numbers do */
	expect_rejected(sink.service(sink.ctx, &A, &sv), ": replicas is not a finite number");
	sv.replicas = (af_num){-1, true};
	expect_rejected(sink.service(sink.ctx, &A, &sv), ": replicas is negative");
	sv.replicas = (af_num){-1, false}; /* unset: the value does not count */
	sv.updated_at = INT64_MAX;
	expect_rejected(sink.service(sink.ctx, &A, &sv), ": a time is out of range");
	sv.updated_at = AF_TIME_NULL;
	sv.raw_json = "[";
	expect_rejected(sink.service(sink.ctx, &A, &sv), ": raw_json: truncated JSON");
}

static void reject_resources(af_record_sink sink, const char *longid)
{
	af_resource rs;

	memset(&rs, 0, sizeof(rs));
	rs.owner_kind = (af_owner_kind)-1;
	expect_rejected(sink.resource(sink.ctx, &A, &rs),
			"rejected resource (no owner)/(no kind) in scope alibaba/acct1/cn-beijing/"
			"tair_kvcache: owner_kind is neither instance nor service");
	rs.owner_kind = AF_OWNER_SERVICE;
	expect_rejected(sink.resource(sink.ctx, &A, &rs), ": owner_id is empty");
	rs.owner_id = "svc-1";
	rs.kind = "";
	expect_rejected(sink.resource(sink.ctx, &A, &rs),
			"rejected resource svc-1/ in scope alibaba/acct1/cn-beijing/tair_kvcache:"
			" kind is empty");
	rs.kind = "cpu_cores";
	expect_rejected(sink.resource(sink.ctx, &A, &rs), ": unit is empty");
	rs.unit = "cores";
	rs.kind = longid;
	expect_rejected(sink.resource(sink.ctx, &A, &rs),
			": owner_id or kind is longer than 1024 bytes");
	rs.kind = "cpu_cores";
	rs.basis = "\xc0\xaf"; /* overlong */
	expect_rejected(sink.resource(sink.ctx, &A, &rs), ": a text field is not valid UTF-8");
	rs.basis = NULL;
	rs.capacity = (af_num){NAN, true};
	rs.used = (af_num){-1, true};
	expect_rejected(sink.resource(sink.ctx, &A, &rs), ": capacity is not a finite number");
	rs.capacity = (af_num){1, true};
	expect_rejected(sink.resource(sink.ctx, &A, &rs), ": used is negative");
	rs.used = (af_num){0, true};
	rs.per_replica = (af_num){INFINITY, true};
	expect_rejected(sink.resource(sink.ctx, &A, &rs), ": per_replica is not a finite number");
}

static void test_rejection_reasons(void **state)
{
	static const af_scope no_region = {"alibaba", "acct1", "", "tair_kvcache"};
	static const af_scope bad_account = {"alibaba", "acct\xff", "cn-beijing", "tair_kvcache"};
	af_testdb db;
	af_store *s = st_open(&db);
	af_loader *l = NULL;
	af_record_sink sink;
	char *longid = malloc(1026);

	memset(longid, 'k', 1025);
	longid[1025] = '\0';
	assert_int_equal(af_loader_begin(&l, s, NULL), 0);
	sink = af_loader_sink(l);
	assert_int_equal(st_inst(l, &A, "tk-1", "one"), 0);
	reject_instances(sink, longid);
	reject_services(sink, longid);
	reject_resources(sink, longid);
	/* scope problems come before the record's own */
	expect_rejected(st_inst(l, &no_region, "tk-9", "x"),
			"rejected instance tk-9: incomplete scope (scope fields missing or invalid)");
	expect_rejected(st_svc(l, &bad_account, "tk-1", "svc-1", "m", NAN),
			"rejected service svc-1: incomplete scope (scope fields missing or invalid)");
	expect_rejected(st_res(l, &no_region, AF_OWNER_INSTANCE, "tk-1", "x", -1, "", NULL),
			"rejected resource tk-1/x: incomplete scope (scope fields missing or invalid)");
	free(longid);
	af_loader_free(l);
	af_store_free(s);
	af_testdb_drop(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_created),
		cmocka_unit_test(test_unchanged_writes_nothing),
		cmocka_unit_test(test_updated_with_diff),
		cmocka_unit_test(test_deleted_with_children),
		cmocka_unit_test(test_untouched_unless_complete),
		cmocka_unit_test(test_restored),
		cmocka_unit_test(test_as_of_and_change_feed),
		cmocka_unit_test(test_rejected_records),
		cmocka_unit_test(test_orphans_rejected_at_merge),
		cmocka_unit_test(test_connection_killed_commits_nothing),
		cmocka_unit_test(test_merge_failure_commits_nothing),
		cmocka_unit_test(test_free_without_commit_rolls_back),
		cmocka_unit_test(test_concurrent_runs_locked),
		cmocka_unit_test(test_dry_run),
		cmocka_unit_test(test_history_keys),
		cmocka_unit_test(test_capacity_summary),
		cmocka_unit_test(test_escaping_roundtrip_and_duplicates),
		cmocka_unit_test(test_print_status),
		cmocka_unit_test(test_content_hash_is_stable),
		cmocka_unit_test(test_rejection_reasons),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
