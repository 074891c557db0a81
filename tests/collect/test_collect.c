/*
 * Collector logic without a network: paging decisions (unit), and whole
 * syncs replayed from saved pages (--from-raw) into a real PostgreSQL, to
 * pin what happens when a list shifts while paging, when a page is missing,
 * and when a list never ends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aifleet/buf.h"
#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/sync.h"
#include "aifleet/paging.h"
#include "testdb.h"
#include "testutil.h"

/* One page of a paging sequence: its item ids (JSON array of {"Id":...}
 * built from a compact spec) and TotalCount, and the decision expected. */
typedef struct page_case {
	const char *ids;   /* "a b c": item ids; "-" an item without an id; "" empty */
	const char *total; /* JSON text, or NULL for no TotalCount */
	int want;          /* af_paging_step or a negative af_error_class */
} page_case;

static json_object *page_list(const char *spec)
{
	json_object *list = json_object_new_array();
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		json_object *item = json_object_new_object();

		if (strcmp(t, "-") != 0)
			json_object_object_add(item, "Id", json_object_new_string(t));
		json_object_array_add(list, item);
	}
	return list;
}

static void test_paging_decisions(void **state)
{
	static const struct {
		const char *name;
		int page_size, max_pages;
		page_case pages[4];
	} cases[] = {
		{"empty list", 3, 10, {{"", "0", AF_PAGING_DONE}}},
		{"one short last page", 3, 10, {{"a b", "2", AF_PAGING_DONE}}},
		{"two pages", 3, 10, {{"a b c", "5", AF_PAGING_MORE}, {"d e", "5", AF_PAGING_DONE}}},
		{"exact pages", 2, 10, {{"a b", "4", AF_PAGING_MORE}, {"c d", "4", AF_PAGING_DONE}}},
		{"shifted list: one repeat, total reached", 2, 10,
		 {{"a b", "3", AF_PAGING_MORE}, {"b c", "3", AF_PAGING_DONE}}},
		{"empty page before the total", 3, 10,
		 {{"a b c", "5", AF_PAGING_MORE}, {"", "5", AF_ERR_DATA}}},
		{"empty first page, total says more", 3, 10, {{"", "5", AF_ERR_DATA}}},
		{"short page before the total", 3, 10,
		 {{"a b c", "9", AF_PAGING_MORE}, {"d", "9", AF_ERR_DATA}}},
		{"page larger than the total", 3, 10, {{"a b c", "2", AF_ERR_DATA}}},
		{"repeated page", 3, 10, {{"a b c", "9", AF_PAGING_MORE}, {"a b c", "9", AF_ERR_DATA}}},
		{"total changes once: restart", 2, 10,
		 {{"a b", "3", AF_PAGING_MORE},
		  {"c d", "4", AF_PAGING_RESTART},
		  {"a b", "4", AF_PAGING_MORE},
		  {"c d", "4", AF_PAGING_DONE}}},
		{"total changes twice", 2, 10,
		 {{"a b", "3", AF_PAGING_MORE},
		  {"c d", "4", AF_PAGING_RESTART},
		  {"a b", "4", AF_PAGING_MORE},
		  {"c", "3", AF_ERR_DATA}}},
		{"items without ids count once each", 2, 10,
		 {{"- -", "3", AF_PAGING_MORE}, {"-", "3", AF_PAGING_DONE}}},
		{"no total", 3, 10, {{"a b c", NULL, AF_ERR_DATA}}},
		{"null total", 3, 10, {{"a b c", "null", AF_ERR_DATA}}},
		{"string total", 3, 10, {{"a b c", "\"9\"", AF_ERR_DATA}}},
		{"fractional total", 3, 10, {{"a b c", "9.5", AF_ERR_DATA}}},
		{"negative total", 3, 10, {{"a b c", "-1", AF_ERR_DATA}}},
		{"absurd total", 3, 10, {{"a b c", "99999999999", AF_ERR_DATA}}},
		{"list that never ends", 3, 2,
		 {{"a b c", "1000", AF_PAGING_MORE}, {"d e f", "1000", AF_ERR_LIMIT}}},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		af_paging p;

		assert_int_equal(af_paging_init(&p, cases[i].max_pages), 0);
		for (size_t k = 0; k < 4 && cases[i].pages[k].ids; k++) {
			const page_case *pc = &cases[i].pages[k];
			json_object *list = page_list(pc->ids);
			json_object *total = pc->total ? json_tokener_parse(pc->total) : NULL;
			int got = af_paging_next(&p, list, "Id", total, cases[i].page_size);

			json_object_put(list);
			json_object_put(total);
			if (got != pc->want)
				fail_msg("%s, page %zu: got %d, want %d (%s)", cases[i].name, k + 1, got,
					 pc->want, got < 0 ? af_error_last() : "");
		}
		af_paging_free(&p);
	}
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void make_dirs(const char *path)
{
	char cmd[1400];

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
	assert_int_equal(system(cmd), 0);
}

static const char tair_item[] =
	"{\"InstanceId\":\"%s\",\"InstanceName\":\"kv-%s\",\"InstanceStatus\":\"Normal\","
	"\"ChargeType\":\"PostPaid\",\"Capacity\":256,\"ComputeUnitNum\":2,\"VNodeCount\":1,"
	"\"Model\":\"Qwen3-8B\",\"RegionId\":\"cn-beijing\"}";

/* A Tair page with the given ids and TotalCount. */
static void write_tair_page(const char *dir, int page, int total, const char *const *ids)
{
	char path[1200], item[512];
	af_buf body = AF_BUF_INIT;

	af_buf_printf(&body, "{\"RequestId\":\"r%d\",\"PageNumber\":%d,\"PageSize\":2,"
			     "\"TotalCount\":%d,\"Instances\":{\"TairInferInstanceDTO\":[",
		      page, page, total);
	for (size_t i = 0; ids[i]; i++) {
		snprintf(item, sizeof(item), tair_item, ids[i], ids[i]);
		af_buf_printf(&body, "%s%s", i ? "," : "", item);
	}
	af_buf_puts(&body, "]}}");
	snprintf(path, sizeof(path), "%s/page-%d.json", dir, page);
	write_file(path, af_buf_data(&body));
	af_buf_free(&body);
}

typedef struct replay_env {
	af_testdb db;
	char *root;
	char raw[1024];
	char scope_dir[1200];
	char config[1200];
} replay_env;

static void replay_up(replay_env *e, const char *extra)
{
	char text[2048];

	af_testdb_create(&e->db);
	e->root = af_test_tempdir();
	snprintf(e->raw, sizeof(e->raw), "%s/raw", e->root);
	snprintf(e->scope_dir, sizeof(e->scope_dir), "%s/alibaba/acct/cn-beijing/tair_kvcache",
		 e->raw);
	make_dirs(e->scope_dir);
	snprintf(e->config, sizeof(e->config), "%s/aifleet.ini", e->root);
	snprintf(text, sizeof(text),
		 "[database]\nconninfo = %s\n"
		 "[account acct]\nprovider = alibaba\nregions = cn-beijing\n"
		 "products = tair_kvcache\ntair_kvcache_page_size = 2\n%s",
		 e->db.conninfo, extra ? extra : "");
	write_file(e->config, text);
	chmod(e->config, 0600);
}

static void replay_down(replay_env *e)
{
	af_testdb_drop(&e->db);
	af_test_rmtree(e->root);
	free(e->root);
}

static int replay(const replay_env *e, af_sync_result *r)
{
	af_config cfg;
	af_sync_options o = {0};
	int err;

	af_config_init(&cfg);
	assert_int_equal(af_config_load(&cfg, e->config), 0);
	o.raw.replay_dir = e->raw;
	err = af_sync_run(&cfg, &o, r);
	af_sync_result_free(r); /* the outcomes point into cfg */
	af_config_free(&cfg);
	return err;
}

/* The list shifted while paging: page 2 repeats the last item of page 1
 * (an item before it was deleted while the total stayed the same, because
 * another was added at the end). Every item is stored once, the repeat is
 * counted, and the scope is complete: the unique items add up to the total. */
static void test_shifted_list_is_deduplicated(void **state)
{
	static const char *const p1[] = {"tk-a", "tk-b", NULL};
	static const char *const p2[] = {"tk-b", "tk-c", NULL};
	static const char *const p3[] = {NULL};
	af_sync_result r;
	replay_env e;

	replay_up(&e, NULL);
	write_tair_page(e.scope_dir, 1, 3, p1);
	write_tair_page(e.scope_dir, 2, 3, p2);
	write_tair_page(e.scope_dir, 3, 3, p3);
	assert_int_equal(replay(&e, &r), 0);
	assert_int_equal(r.complete, 1);
	assert_int_equal(r.items, 3);
	assert_int_equal(r.duplicates, 1);
	assert_int_equal(r.requests, 0);
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.instance"), 3);
	/* each instance has its model service and three resources, once */
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.service"), 3);
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT duplicates FROM aifleet.scope_state"),
			 1);
	replay_down(&e);
}

/* A missing page fails the scope after what did arrive: nothing that was
 * stored before is tombstoned. */
static void test_missing_page_fails_scope_without_tombstones(void **state)
{
	static const char *const p1[] = {"tk-a", "tk-b", NULL};
	static const char *const p2[] = {"tk-c", "tk-d", NULL};
	static const char *const p3[] = {NULL};
	af_sync_result r;
	char path[1300];
	replay_env e;

	replay_up(&e, NULL);
	write_tair_page(e.scope_dir, 1, 4, p1);
	write_tair_page(e.scope_dir, 2, 4, p2);
	write_tair_page(e.scope_dir, 3, 4, p3);
	assert_int_equal(replay(&e, &r), 0);
	assert_int_equal(r.complete, 1);

	/* Next "run": page 2 is lost. */
	snprintf(path, sizeof(path), "%s/page-2.json", e.scope_dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(replay(&e, &r), 0);
	assert_int_equal(r.partial, 1);
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.instance "
						   "WHERE deleted_at IS NULL"),
			 4);
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.scope_state "
						   "WHERE last_state = 'partial' "
						   "AND last_error LIKE '%page 2%page-2.json%'"),
			 1);
	replay_down(&e);
}

/* An item the normalizer rejects (no InstanceId) makes its scope partial:
 * the rest loads, nothing in the scope is tombstoned. */
static void test_rejected_item_makes_scope_partial(void **state)
{
	static const char *const p1[] = {"tk-a", "tk-b", NULL};
	static const char *const p2[] = {NULL};
	af_sync_result r;
	char path[1300];
	replay_env e;

	replay_up(&e, NULL);
	write_tair_page(e.scope_dir, 1, 2, p1);
	write_tair_page(e.scope_dir, 2, 2, p2);
	assert_int_equal(replay(&e, &r), 0);
	assert_int_equal(r.complete, 1);

	/* tk-b vanished, and an item without an id arrived. */
	snprintf(path, sizeof(path), "%s/page-1.json", e.scope_dir);
	write_file(path, "{\"RequestId\":\"r\",\"TotalCount\":2,\"Instances\":"
			 "{\"TairInferInstanceDTO\":[{\"InstanceId\":\"tk-a\"},"
			 "{\"InstanceName\":\"nameless\"}]}}");
	assert_int_equal(replay(&e, &r), 0);
	assert_int_equal(r.partial, 1);
	assert_int_equal(r.rejected, 1);
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.instance "
						   "WHERE native_id = 'tk-b' AND deleted_at IS NULL"),
			 1);
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT rejected FROM aifleet.scope_state"), 1);
	replay_down(&e);
}

/* A list whose TotalCount keeps it going forever stops at max_pages with an
 * error, and the scope is not complete. */
static void test_endless_list_is_cut(void **state)
{
	static const char *const ids[][3] = {
		{"tk-1", "tk-2", NULL}, {"tk-3", "tk-4", NULL}, {"tk-5", "tk-6", NULL}};
	af_sync_result r;
	replay_env e;

	replay_up(&e, "[sync]\nmax_pages = 3\n");
	for (int i = 0; i < 3; i++)
		write_tair_page(e.scope_dir, i + 1, 1000000, ids[i]);
	assert_int_equal(replay(&e, &r), 0);
	assert_int_equal(r.complete, 0);
	assert_int_equal(r.partial, 1);
	assert_int_equal(af_testdb_query_int(&e.db, "SELECT count(*) FROM aifleet.scope_state "
						   "WHERE last_error LIKE '%did not end after 3 pages%'"),
			 1);
	replay_down(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paging_decisions),
		cmocka_unit_test(test_shifted_list_is_deduplicated),
		cmocka_unit_test(test_missing_page_fails_scope_without_tombstones),
		cmocka_unit_test(test_rejected_item_makes_scope_partial),
		cmocka_unit_test(test_endless_list_is_cut),
	};

	af_log_setup(AF_LOG_ERROR, AF_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
