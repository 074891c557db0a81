/*
 * The analytics of migration 005 against a real PostgreSQL: model keys,
 * the GPU catalog and the GPU memory derived from it, capacity over time
 * on a hand-built history whose GPU-hours are known exactly, changes per
 * day, and how a partially collected scope's time is counted.
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

static void q(af_testdb *db, const char *sql)
{
	af_testdb_exec(db, sql);
}

/* The value of one SQL expression as text ("" for NULL). Caller frees. */
static char *sql_text(af_testdb *db, const char *expr)
{
	char sql[1024];
	char *v;

	snprintf(sql, sizeof(sql), "SELECT coalesce((%s)::text, '')", expr);
	v = af_testdb_query_value(db, sql);
	assert_non_null(v);
	return v;
}

/* Whether the server refuses a statement (a constraint, a grant). */
static int refused(af_testdb *db, const char *sql, const char *role)
{
	PGconn *c = PQconnectdb(db->conninfo);
	PGresult *res;
	int no;

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	if (role) {
		char set[128];

		snprintf(set, sizeof(set), "SET ROLE %s", role);
		PQclear(PQexec(c, set));
	}
	res = PQexec(c, sql);
	no = PQresultStatus(res) == PGRES_FATAL_ERROR;
	PQclear(res);
	PQfinish(c);
	return no;
}

/* Checks the one value a query on `c` returns. */
static void want_on(PGconn *c, const char *sql, const char *want)
{
	PGresult *res = PQexec(c, sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	if (strcmp(PQgetvalue(res, 0, 0), want) != 0)
		fail_msg("%s: got '%s', want '%s'", sql, PQgetvalue(res, 0, 0), want);
	PQclear(res);
}

static void want_sql(af_testdb *db, const char *expr, const char *want)
{
	char *got = sql_text(db, expr);

	if (strcmp(got, want) != 0)
		fail_msg("%s: got '%s', want '%s'", expr, got, want);
	free(got);
}

/*
 * Every model name of the API pages (tests/fixtures/api, ../shared/api),
 * of the simulator's fleet (src/sim/fleet.c sim_models, src/sim/hologres.c
 * mtypes) and spellings of our own, with the key docs/schema.md's rules
 * give. The pairs the issue names come out equal.
 */
static void test_model_keys(void **state)
{
	static const char *const cases[][2] = {
	    /* API pages: Tair Model, Hologres modelType and modelName, TI-ONE
	     * ModelName (and names in the fixtures' examples) */
	    {"DeepSeek-OCR", "deepseek-ocr"},
	    {"qwen3.5-plus", "qwen3.5-plus"},
	    {"my_model", "my-model"},
	    {"chatglm-6b-tiacc-ft", "chatglm-6b-tiacc-ft"},
	    {"qwen-7b", "qwen-7b"},
	    {"qwen-chat", "qwen-chat"},
	    /* the simulator: one spelling per product */
	    {"Qwen3-32B", "qwen3-32b"},
	    {"Qwen2.5-72B-Instruct", "qwen2.5-72b-instruct"},
	    {"DeepSeek-V3", "deepseek-v3"},
	    {"deepseek-v3", "deepseek-v3"},
	    {"DeepSeek-R1", "deepseek-r1"},
	    {"GLM-4.5", "glm-4.5"},
	    {"glm-4.5", "glm-4.5"},
	    {"Llama-3.1-70B", "llama-3.1-70b"},
	    {"Llama-3.1-8B", "llama-3.1-8b"},
	    {"llama-3.1-8b", "llama-3.1-8b"},
	    {"Qwen3-Embedding-8B", "qwen3-embedding-8b"},
	    {"qwen3-embedding-8b", "qwen3-embedding-8b"},
	    /* org paths, vendor prefixes, separators, service suffixes */
	    {"deepseek-ai/DeepSeek-V3", "deepseek-v3"},
	    {"meta-llama/Meta-Llama-3.1-8B-Instruct", "llama-3.1-8b-instruct"},
	    {"Meta-Llama-3.1-8B", "llama-3.1-8b"},
	    {"  Qwen3 32B ", "qwen3-32b"},
	    {"qwen3__32b", "qwen3-32b"},
	    {"DeepSeek-V3-service", "deepseek-v3"},
	    {"qwen-7b-infer-svc", "qwen-7b"},
	    {"glm-4.5-online", "glm-4.5"},
	    /* shipped aliases */
	    {"llama3.1-8b", "llama-3.1-8b"},
	    {"Llama3.1-70B", "llama-3.1-70b"},
	    /* kept apart: variants are other models */
	    {"DeepSeek-V3-0324", "deepseek-v3-0324"},
	    {"qwen3-32b-awq", "qwen3-32b-awq"},
	    /* a vendor word alone, or a suffix alone, is a name */
	    {"meta", "meta"},
	    {"inference", "inference"},
	    {"   ", ""},
	    {"/", ""},
	};
	af_testdb db;
	af_store *s = st_open(&db);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char expr[256];

		snprintf(expr, sizeof(expr), "aifleet.model_key('%s')", cases[i][0]);
		want_sql(&db, expr, cases[i][1]);
	}
	want_sql(&db, "aifleet.model_key(NULL)", "");
	/* a key is a fixed point of the rules */
	want_sql(&db, "aifleet.model_key_rules(aifleet.model_key_rules('Meta-Llama-3.1-8B_Instruct'))",
		     "llama-3.1-8b-instruct");
	/* a user's alias brings together what the rules cannot */
	want_sql(&db, "aifleet.model_key('Qwen-Plus-Latest')", "qwen-plus-latest");
	q(&db, "INSERT INTO aifleet.model_alias (name_key, model_key, note)"
	       " VALUES ('qwen-plus-latest', 'qwen3.5-plus', 'Bailian alias')");
	want_sql(&db, "aifleet.model_key('Qwen Plus Latest')", "qwen3.5-plus");
	/* an alias must be written as the rules write names */
	assert_true(refused(&db, "INSERT INTO aifleet.model_alias (name_key, model_key)"
				 " VALUES ('Qwen Max', 'qwen-max')", NULL));
	af_store_free(s);
	af_testdb_drop(&db);
}

/*
 * The catalog resolves the GPUs the three products report, keeps a name
 * that stands for two cards ambiguous, and lets a user settle it or add a
 * card of their own.
 */
static void test_gpu_catalog(void **state)
{
	static const char *const cases[][2] = {
	    {"A10", "A10"},
	    {"T4", "T4"},
	    {"Tesla T4", "T4"},
	    {"A100-SXM4-80GB", "A100-80GB"},
	    {"NVIDIA A100-PCIE-40GB", "A100-40GB"},
	    {"nvidia_a100 80g", "A100-80GB"},
	    {"A100", ""},
	    {"A800", ""},
	    {"A800-SXM4-80GB", "A800-80GB"},
	    {"H800", "H800"},
	    {"H20", ""},
	    {"H20-96GB", "H20-96GB"},
	    {"H100", "H100"},
	    {"H100 NVL", "H100-NVL"},
	    {"L20", "L20"},
	    {"L40S", "L40S"},
	    {"V100", ""},
	    {"NVIDIA Tesla V100-SXM2-32GB", "V100-32GB"},
	    {"A10G", "A10G"},
	    {"XPU-9", ""},
	};
	af_testdb db;
	af_store *s = st_open(&db);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char expr[256];

		snprintf(expr, sizeof(expr), "aifleet.gpu_lookup('%s')", cases[i][0]);
		want_sql(&db, expr, cases[i][1]);
	}
	/* ambiguous names are ambiguous between cards of one family */
	want_sql(&db, "(SELECT string_agg(DISTINCT g.family, ',') FROM aifleet.gpu_alias a"
			  " JOIN aifleet.gpu_model g USING (gpu_key) WHERE a.name_key = 'A100')", "A100");
	want_sql(&db, "(SELECT count(*) FROM aifleet.gpu_alias WHERE name_key = 'A100')", "2");
	/* every card the issue names is in the catalog, with a source */
	want_sql(&db, "(SELECT count(DISTINCT family) FROM aifleet.gpu_model WHERE shipped"
			  " AND source <> '' AND family IN ('A10', 'A100', 'A800', 'H800', 'H20', 'H100',"
			  " 'L20', 'L40S', 'T4', 'V100'))", "10");
	want_sql(&db, "(SELECT string_agg(memory_gib::text, ',' ORDER BY memory_gib)"
			  " FROM aifleet.gpu_model WHERE family = 'A100')", "40,80");
	/* a user settles a name for their fleet; other names are untouched */
	q(&db, "INSERT INTO aifleet.gpu_alias (name_key, gpu_key) VALUES ('A100', 'A100-80GB')");
	want_sql(&db, "aifleet.gpu_lookup('a100')", "A100-80GB");
	want_sql(&db, "aifleet.gpu_lookup('V100')", "");
	/* and adds a card of their own */
	q(&db, "INSERT INTO aifleet.gpu_model (gpu_key, vendor, family, memory_gib, source)"
	       " VALUES ('PPU-810E', 'T-Head', 'PPU', 96, 'procurement sheet')");
	want_sql(&db, "aifleet.gpu_lookup('ppu 810e')", "PPU-810E");
	want_sql(&db, "(SELECT count(*) FROM aifleet.gpu_model WHERE NOT shipped)", "1");
	/* keys and names are stored as the lookup compares them */
	assert_true(refused(&db, "INSERT INTO aifleet.gpu_model (gpu_key, vendor, family, memory_gib,"
				 " source) VALUES ('a100 80g', 'NVIDIA', 'A100', 80, 'x')", NULL));
	assert_true(refused(&db, "INSERT INTO aifleet.gpu_alias (name_key, gpu_key)"
				 " VALUES ('Tesla T4', 'T4')", NULL));
	assert_true(refused(&db, "INSERT INTO aifleet.gpu_model (gpu_key, vendor, family, memory_gib,"
				 " source) VALUES ('B200', 'NVIDIA', 'B200', 0, 'x')", NULL));
	/* the reader reads the catalog, and cannot change it */
	assert_false(refused(&db, "SELECT aifleet.gpu_lookup(gpu_key) FROM aifleet.gpu_model",
			     "aifleet_reader"));
	assert_true(refused(&db, "DELETE FROM aifleet.gpu_alias", "aifleet_reader"));
	af_store_free(s);
	af_testdb_drop(&db);
}

static const af_scope TI = {"tencent", "t", "ap-shanghai", "tione"};
static const af_scope HO = {"alibaba", "h", "cn-hangzhou", "hologres"};

enum {
	MEM_REPORTED = 1, /* ms-1 reports its GPU memory itself */
	NODE_CARDS = 2,   /* a node and its service both report H800s, no memory */
};

static const af_scope NC = {"alibaba", "n", "cn-shanghai", "hologres"};

/* A TI-ONE group with two services (cards without memory: A10, and the
 * ambiguous A100) and a Hologres node (cards with memory, on the node and
 * on its service). */
static void load_gpu_fleet(af_store *s, unsigned flags)
{
	af_run_options opts = {.trigger = "test"};
	af_load_summary sum;
	af_loader *l = NULL;

	if (af_loader_begin(&l, s, &opts) < 0)
		fail_msg("begin: %s", af_error_last());
	assert_int_equal(st_inst(l, &TI, "grp-1", "group"), 0);
	assert_int_equal(st_svc(l, &TI, "grp-1", "ms-1", "DeepSeek-V3", 2), 0);
	assert_int_equal(st_res(l, &TI, AF_OWNER_SERVICE, "ms-1", "gpu_count", 2, "cards", "A10"), 0);
	if (flags & MEM_REPORTED)
		assert_int_equal(st_res(l, &TI, AF_OWNER_SERVICE, "ms-1", "gpu_memory_gib", 40, "GiB",
					NULL), 0);
	assert_int_equal(st_res(l, &TI, AF_OWNER_SERVICE, "ms-1", "cpu_cores", 12, "cores", NULL), 0);
	assert_int_equal(st_svc(l, &TI, "grp-1", "ms-2", "Qwen3-32B", 1), 0);
	assert_int_equal(st_res(l, &TI, AF_OWNER_SERVICE, "ms-2", "gpu_count", 1, "cards", "A100"), 0);
	assert_int_equal(st_inst(l, &HO, "node-1", "node"), 0);
	assert_int_equal(st_res(l, &HO, AF_OWNER_INSTANCE, "node-1", "gpu_count", 1, "cards", NULL), 0);
	assert_int_equal(st_res(l, &HO, AF_OWNER_INSTANCE, "node-1", "gpu_memory_gib", 24, "GiB", NULL),
			 0);
	assert_int_equal(st_svc(l, &HO, "node-1", "node-1/ds", "deepseek-v3", 1), 0);
	assert_int_equal(st_res(l, &HO, AF_OWNER_SERVICE, "node-1/ds", "gpu_count", 1, "cards", NULL), 0);
	assert_int_equal(st_res(l, &HO, AF_OWNER_SERVICE, "node-1/ds", "gpu_memory_gib", 24, "GiB", NULL),
			 0);
	if (flags & NODE_CARDS) {
		assert_int_equal(st_inst(l, &NC, "node-8", "node"), 0);
		assert_int_equal(st_res(l, &NC, AF_OWNER_INSTANCE, "node-8", "gpu_count", 8, "cards",
					"H800"), 0);
		assert_int_equal(st_svc(l, &NC, "node-8", "node-8/ds", "DeepSeek-R1", 1), 0);
		assert_int_equal(st_res(l, &NC, AF_OWNER_SERVICE, "node-8/ds", "gpu_count", 4, "cards",
					"H800"), 0);
		st_done(l, &NC, AF_SCOPE_COMPLETE);
	}
	st_done(l, &TI, AF_SCOPE_COMPLETE);
	st_done(l, &HO, AF_SCOPE_COMPLETE);
	if (af_loader_commit(l, &sum) < 0)
		fail_msg("commit: %s", af_error_last());
	af_loader_free(l);
}

/*
 * GPU memory from the catalog where only the cards' type is reported:
 * one derived row (basis catalog) for ms-1's A10s, none for the ambiguous
 * A100 until a user settles it, none where memory is reported, and none
 * once ms-1 reports its own. capacity_summary counts it, once.
 */
static void test_derived_gpu_memory(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);

	(void)state;
	load_gpu_fleet(s, 0);
	want_sql(&db, "(SELECT string_agg(concat_ws(' ', owner_native_id, kind, capacity, unit, basis,"
			  " gpu_key, model_key), ';') FROM aifleet.derived_resources)",
		     "ms-1 gpu_memory_gib 48 GiB catalog A10 deepseek-v3");
	want_sql(&db, "(SELECT concat_ws(' ', gpu_cards, gpu_memory_gib, gpu_memory_gib_catalog,"
			  " model_key) FROM aifleet.capacity_summary WHERE provider = 'tencent'"
			  " AND model = 'DeepSeek-V3')", "2 48 48 deepseek-v3");
	/* the node's memory is its own; its service's share is not counted again */
	want_sql(&db, "(SELECT concat_ws(' ', gpu_cards, gpu_memory_gib, gpu_memory_gib_catalog)"
			  " FROM aifleet.capacity_summary WHERE provider = 'alibaba')", "1 24 0");
	want_sql(&db, "(SELECT gpu_memory_gib FROM aifleet.capacity_summary WHERE model = 'Qwen3-32B')",
		     "0");
	/* model_key in every current view */
	want_sql(&db, "(SELECT string_agg(DISTINCT model_key, ',' ORDER BY model_key)"
			  " FROM aifleet.current_services)", "deepseek-v3,qwen3-32b");
	want_sql(&db, "(SELECT count(*) FROM aifleet.current_resources WHERE model_key = 'deepseek-v3')",
		     "4");
	want_sql(&db, "(SELECT DISTINCT model_key FROM aifleet.current_instances)", "qwen-72b");
	/* the views' keys are model_key() of their names, row by row */
	want_sql(&db, "(SELECT count(*) FROM aifleet.current_resources"
		      " WHERE model_key IS DISTINCT FROM aifleet.model_key(model))", "0");
	want_sql(&db, "(SELECT string_agg(model || '=' || model_key, ',' ORDER BY model)"
		      " FROM aifleet.model_keys)", "DeepSeek-V3=deepseek-v3,Qwen3-32B=qwen3-32b,"
		      "deepseek-v3=deepseek-v3,qwen-72b=qwen-72b");

	/* the question the issue asks: GPUs serving DeepSeek-V3 across both
	 * clouds, spelled two ways -- the node's card counts for its service */
	want_sql(&db, "(SELECT concat_ws(' ', sum(gpu_cards), sum(gpu_memory_gib), count(*))"
		      " FROM aifleet.capacity_by_model WHERE model_key = 'deepseek-v3')", "3 72 2");
	want_sql(&db, "(SELECT string_agg(array_to_string(models, ','), ';' ORDER BY provider)"
		      " FROM aifleet.capacity_by_model WHERE model_key = 'deepseek-v3')",
		 "deepseek-v3;DeepSeek-V3");
	want_sql(&db, "(SELECT concat_ws(' ', gpu_cards, gpu_memory_gib) FROM aifleet.capacity_by_model"
		      " WHERE provider = 'alibaba' AND model_key = 'qwen-72b')", "0 0");
	/* what the fleet holds is the same in both views */
	want_sql(&db, "(SELECT (SELECT array[sum(gpu_cards), sum(gpu_memory_gib), sum(cpu_cores),"
		      " sum(memory_gib)] FROM aifleet.capacity_summary) = (SELECT array[sum(gpu_cards),"
		      " sum(gpu_memory_gib), sum(cpu_cores), sum(memory_gib)] FROM aifleet.capacity_by_model))",
		 "true");

	q(&db, "INSERT INTO aifleet.gpu_alias (name_key, gpu_key) VALUES ('A100', 'A100-80GB')");
	want_sql(&db, "(SELECT capacity FROM aifleet.derived_resources WHERE owner_native_id = 'ms-2')",
		     "80");
	want_sql(&db, "(SELECT gpu_memory_gib_catalog FROM aifleet.capacity_summary"
			  " WHERE model = 'Qwen3-32B')", "80");

	/* a reported figure is never overwritten, nor added to */
	load_gpu_fleet(s, MEM_REPORTED);
	want_sql(&db, "(SELECT count(*) FROM aifleet.derived_resources WHERE owner_native_id = 'ms-1')",
		     "0");
	want_sql(&db, "(SELECT concat_ws(' ', gpu_memory_gib, gpu_memory_gib_catalog)"
			  " FROM aifleet.capacity_summary WHERE model = 'DeepSeek-V3')", "40 0");
	assert_false(refused(&db, "SELECT * FROM aifleet.derived_resources", "aifleet_reader"));
	assert_false(refused(&db, "SELECT * FROM aifleet.capacity_by_model", "aifleet_reader"));

	/* cards reported by a node and, as its share, by its service, without
	 * memory: the catalog's memory is the node's, counted once */
	load_gpu_fleet(s, MEM_REPORTED | NODE_CARDS);
	want_sql(&db, "(SELECT string_agg(concat_ws(' ', owner_native_id, capacity), ';')"
		      " FROM aifleet.derived_resources WHERE product = 'hologres')", "node-8 640");
	want_sql(&db, "(SELECT concat_ws(' ', sum(gpu_cards), sum(gpu_memory_gib))"
		      " FROM aifleet.capacity_summary WHERE region = 'cn-shanghai')", "8 640");
	want_sql(&db, "(SELECT string_agg(concat_ws(' ', model_key, gpu_cards, gpu_memory_gib), ';'"
		      " ORDER BY model_key) FROM aifleet.capacity_by_model WHERE region = 'cn-shanghai')",
		 "deepseek-r1 4 0;qwen-72b 4 640");
	/* and over time the same: the node's 640 GiB beside the 4 cards it
	 * keeps (160 GiB-hours per GPU-hour), none beside its service's */
	want_sql(&db, "(SELECT string_agg(concat_ws(' ', model_key, round((gpu_memory_gib_hours"
		      " / gpu_hours)::numeric, 6)), ';' ORDER BY model_key)"
		      " FROM aifleet.capacity_over_time(now() - interval '1 hour', now() + interval '1 hour',"
		      " '2 hours') WHERE region = 'cn-shanghai')",
		 "deepseek-r1 0.000000;qwen-72b 160.000000");
	af_store_free(s);
	af_testdb_drop(&db);
}

/*
 * A history written by hand, with times chosen so that every figure is
 * known (T = 2026-01-01 00:00 UTC; hours after it):
 *
 * TI-ONE (tencent/t1/ap-shanghai): service ms-1 served Qwen3-32B until
 * 2:30, DeepSeek-V3 after. Its A10 cards (24 GiB each, from the catalog):
 * 2 from 0:30, 4 from 1:45 (mid-bucket), deleted at 3:15. Its 12 CPU
 * cores throughout.
 *
 * Hologres (alibaba/a1/cn-hangzhou): node-1, since the day before, has 1
 * card with 24 GiB reported and 100 GiB of memory; its service, serving
 * deepseek-v3, occupies that card (its share: the node keeps no card, and
 * the memory no service reports). node-2 (4 cores) is deleted at 1:00 and
 * restored at 2:00. A resource of node-1 deleted before T is outside
 * every bucket.
 */
static const char history_sql[] =
	"CREATE TEMP TABLE t0 AS SELECT timestamptz '2026-01-01 00:00+00' AS t;"
	"CREATE FUNCTION pg_temp.at(h float8) RETURNS timestamptz LANGUAGE sql AS"
	" $$ SELECT t + h * interval '1 hour' FROM t0 $$;"
	"INSERT INTO aifleet.instance (id, provider, account, region, product, native_id, name,"
	" content_hash, first_seen_at, last_changed_at, deleted_at, last_run_id) VALUES"
	" (1001, 'tencent', 't1', 'ap-shanghai', 'tione', 'grp-1', 'g', '\\x01', pg_temp.at(0),"
	"  pg_temp.at(0), NULL, 1),"
	" (2001, 'alibaba', 'a1', 'cn-hangzhou', 'hologres', 'node-1', 'n1', '\\x01', pg_temp.at(-24),"
	"  pg_temp.at(-24), NULL, 1),"
	" (2006, 'alibaba', 'a1', 'cn-hangzhou', 'hologres', 'node-2', 'n2', '\\x01', pg_temp.at(-24),"
	"  pg_temp.at(2), NULL, 1);"
	"INSERT INTO aifleet.service (id, instance_id, provider, account, region, product, native_id,"
	" instance_native_id, model, content_hash, first_seen_at, last_changed_at, last_run_id) VALUES"
	" (1002, 1001, 'tencent', 't1', 'ap-shanghai', 'tione', 'ms-1', 'grp-1', 'DeepSeek-V3', '\\x01',"
	"  pg_temp.at(0), pg_temp.at(2.5), 1),"
	" (2004, 2001, 'alibaba', 'a1', 'cn-hangzhou', 'hologres', 'node-1/ds', 'node-1', 'deepseek-v3',"
	"  '\\x01', pg_temp.at(-24), pg_temp.at(-24), 1);"
	"INSERT INTO aifleet.resource (id, instance_id, service_id, provider, account, region, product,"
	" owner_kind, owner_native_id, kind, capacity, unit, gpu_model, basis, content_hash,"
	" first_seen_at, last_changed_at, deleted_at, last_run_id) VALUES"
	" (1003, NULL, 1002, 'tencent', 't1', 'ap-shanghai', 'tione', 'service', 'ms-1', 'gpu_count', 4,"
	"  'cards', 'A10', 'per_replica_x_replicas', '\\x01', pg_temp.at(0.5), pg_temp.at(3.25),"
	"  pg_temp.at(3.25), 1),"
	" (1004, NULL, 1002, 'tencent', 't1', 'ap-shanghai', 'tione', 'service', 'ms-1', 'cpu_cores', 12,"
	"  'cores', NULL, 'per_replica_x_replicas', '\\x01', pg_temp.at(0), pg_temp.at(0), NULL, 1),"
	" (2002, 2001, NULL, 'alibaba', 'a1', 'cn-hangzhou', 'hologres', 'instance', 'node-1', 'gpu_count',"
	"  1, 'cards', NULL, 'reported', '\\x01', pg_temp.at(-24), pg_temp.at(-24), NULL, 1),"
	" (2003, 2001, NULL, 'alibaba', 'a1', 'cn-hangzhou', 'hologres', 'instance', 'node-1',"
	"  'gpu_memory_gib', 24, 'GiB', NULL, 'reported', '\\x01', pg_temp.at(-24), pg_temp.at(-24), NULL, 1),"
	" (2008, 2001, NULL, 'alibaba', 'a1', 'cn-hangzhou', 'hologres', 'instance', 'node-1', 'memory_gib',"
	"  100, 'GiB', NULL, 'reported', '\\x01', pg_temp.at(-24), pg_temp.at(-24), NULL, 1),"
	" (2009, 2001, NULL, 'alibaba', 'a1', 'cn-hangzhou', 'hologres', 'instance', 'node-1', 'cpu_cores',"
	"  99, 'cores', NULL, 'reported', '\\x01', pg_temp.at(-24), pg_temp.at(-1), pg_temp.at(-1), 1),"
	" (2005, NULL, 2004, 'alibaba', 'a1', 'cn-hangzhou', 'hologres', 'service', 'node-1/ds',"
	"  'gpu_count', 1, 'cards', NULL, 'reported', '\\x01', pg_temp.at(-24), pg_temp.at(-24), NULL, 1),"
	" (2007, 2006, NULL, 'alibaba', 'a1', 'cn-hangzhou', 'hologres', 'instance', 'node-2', 'cpu_cores',"
	"  4, 'cores', NULL, 'reported', '\\x01', pg_temp.at(-24), pg_temp.at(2), NULL, 1);"
	/* versions: (entity, type, from, to (NULL: open), change, content overrides) */
	"CREATE TEMP TABLE v (id bigint, type text, lo float8, hi float8, change text, over jsonb);"
	"INSERT INTO v VALUES"
	" (1001, 'instance', 0, NULL, 'created', NULL),"
	" (1002, 'service', 0, 2.5, 'created', '{\"model\": \"Qwen3-32B\"}'),"
	" (1002, 'service', 2.5, NULL, 'updated', NULL),"
	" (1003, 'resource', 0.5, 1.75, 'created', '{\"capacity\": 2, \"deleted_at\": null}'),"
	" (1003, 'resource', 1.75, 3.25, 'updated', '{\"deleted_at\": null}'),"
	" (1004, 'resource', 0, NULL, 'created', NULL),"
	" (2001, 'instance', -24, NULL, 'created', NULL),"
	" (2004, 'service', -24, NULL, 'created', NULL),"
	" (2002, 'resource', -24, NULL, 'created', NULL),"
	" (2003, 'resource', -24, NULL, 'created', NULL),"
	" (2008, 'resource', -24, NULL, 'created', NULL),"
	" (2005, 'resource', -24, NULL, 'created', NULL),"
	" (2009, 'resource', -24, -1, 'created', '{\"deleted_at\": null}'),"
	" (2006, 'instance', -24, 1, 'created', '{}'),"
	" (2006, 'instance', 2, NULL, 'restored', NULL),"
	" (2007, 'resource', -24, 1, 'created', '{}'),"
	" (2007, 'resource', 2, NULL, 'restored', NULL);"
	"CREATE TEMP TABLE rows AS"
	" SELECT 'instance' AS type, id, to_jsonb(t) AS j FROM aifleet.instance t"
	" UNION ALL SELECT 'service', id, to_jsonb(t) FROM aifleet.service t"
	" UNION ALL SELECT 'resource', id, to_jsonb(t) FROM aifleet.resource t;"
	"INSERT INTO aifleet.history (entity_type, entity_id, valid, change, changed_at, run_id, content)"
	" SELECT v.type, v.id, tstzrange(pg_temp.at(v.lo), CASE WHEN v.hi IS NOT NULL THEN pg_temp.at(v.hi) END),"
	"  v.change, pg_temp.at(v.lo), 1, CASE WHEN v.over IS NOT NULL THEN r.j || v.over END"
	" FROM v JOIN rows r USING (type, id);"
	/* deletion markers: where a closed version is not followed by another */
	"INSERT INTO aifleet.history (entity_type, entity_id, valid, change, changed_at, run_id, content)"
	" SELECT v.type, v.id, 'empty', 'deleted', pg_temp.at(v.hi), 1, r.j"
	" FROM v JOIN rows r USING (type, id)"
	" WHERE v.hi IS NOT NULL AND NOT EXISTS (SELECT 1 FROM v n WHERE n.id = v.id AND n.lo = v.hi);";

/* What the history above must give, bucket by bucket (hour after T):
 * provider, model key, GPU model, average and peak cards, GPU-hours,
 * GPU-memory GiB-hours, core-hours, memory GiB-hours. The last bucket is
 * half an hour: the window ends at 3:30. */
static const char expected_sql[] =
	"CREATE TEMP TABLE want AS SELECT * FROM (VALUES"
	" (0, 'tencent', 'qwen3-32b', 'A10', 1.0, 2, 1.0, 24, 12, 0),"
	" (1, 'tencent', 'qwen3-32b', 'A10', 2.5, 4, 2.5, 60, 12, 0),"
	" (2, 'tencent', 'qwen3-32b', 'A10', 2.0, 4, 2.0, 48, 6, 0),"
	" (2, 'tencent', 'deepseek-v3', 'A10', 2.0, 4, 2.0, 48, 6, 0),"
	" (3, 'tencent', 'deepseek-v3', 'A10', 2.0, 4, 1.0, 24, 6, 0),"
	" (0, 'alibaba', 'deepseek-v3', NULL, 1.0, 1, 1.0, 0, 0, 0),"
	" (1, 'alibaba', 'deepseek-v3', NULL, 1.0, 1, 1.0, 0, 0, 0),"
	" (2, 'alibaba', 'deepseek-v3', NULL, 1.0, 1, 1.0, 0, 0, 0),"
	" (3, 'alibaba', 'deepseek-v3', NULL, 1.0, 1, 0.5, 0, 0, 0),"
	" (0, 'alibaba', NULL, NULL, 0, 0, 0, 24, 4, 100),"
	" (1, 'alibaba', NULL, NULL, 0, 0, 0, 24, 0, 100),"
	" (2, 'alibaba', NULL, NULL, 0, 0, 0, 24, 4, 100),"
	" (3, 'alibaba', NULL, NULL, 0, 0, 0, 12, 2, 50)"
	") w(h, provider, model_key, gpu_model, avg, peak, gpu_h, gmem_h, cpu_h, mem_h);"
	"CREATE TEMP TABLE got AS"
	" SELECT (extract(epoch FROM c.bucket_start - t0.t) / 3600)::int AS h, c.provider, c.model_key,"
	"  c.gpu_model, round(c.avg_gpu_cards::numeric, 9) AS avg, round(c.peak_gpu_cards::numeric, 9) AS peak,"
	"  round(c.gpu_hours::numeric, 9) AS gpu_h, round(c.gpu_memory_gib_hours::numeric, 9) AS gmem_h,"
	"  round(c.cpu_core_hours::numeric, 9) AS cpu_h, round(c.memory_gib_hours::numeric, 9) AS mem_h"
	" FROM t0, aifleet.capacity_over_time((SELECT t FROM t0), pg_temp.at(3.5), '1 hour') c;";

static void test_capacity_over_time_exact(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	PGconn *c;
	PGresult *res;

	(void)state;
	c = PQconnectdb(db.conninfo);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	res = PQexec(c, history_sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fail_msg("history: %s", PQerrorMessage(c));
	PQclear(res);
	res = PQexec(c, expected_sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fail_msg("capacity_over_time: %s", PQerrorMessage(c));
	PQclear(res);
	/* the same rows both ways, and the buckets' bounds */
	res = PQexec(c, "SELECT count(*) FROM ((SELECT * FROM want EXCEPT ALL SELECT * FROM got)"
			" UNION ALL (SELECT * FROM got EXCEPT ALL SELECT * FROM want)) d");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	if (strcmp(PQgetvalue(res, 0, 0), "0") != 0) {
		PGresult *d = PQexec(c, "SELECT 'got', * FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM want) g"
					" UNION ALL SELECT 'want', * FROM (SELECT * FROM want EXCEPT ALL"
					" SELECT * FROM got) w ORDER BY 2, 3, 1");
		for (int i = 0; i < PQntuples(d); i++) {
			fprintf(stderr, "  ");
			for (int j = 0; j < PQnfields(d); j++)
				fprintf(stderr, "%s ", PQgetisnull(d, i, j) ? "NULL" : PQgetvalue(d, i, j));
			fprintf(stderr, "\n");
		}
		PQclear(d);
		fail_msg("capacity_over_time differs from the hand-computed figures");
	}
	PQclear(res);
	want_on(c, "SELECT string_agg(DISTINCT to_char(bucket_end - bucket_start, 'HH24:MI'), ',')"
			" FROM aifleet.capacity_over_time(timestamptz '2026-01-01 00:00+00',"
			" timestamptz '2026-01-01 03:30+00', '1 hour')",
		"00:30,01:00");
	/* one bucket over the whole window: the sums are the buckets' sums,
	 * the peak the highest of theirs */
	want_on(c, "SELECT concat_ws(' ', round(sum(gpu_hours)::numeric, 6), max(peak_gpu_cards))"
			" FROM aifleet.capacity_over_time(timestamptz '2026-01-01 00:00+00',"
			" timestamptz '2026-01-01 03:30+00', '1 day') WHERE provider = 'tencent'",
		"8.500000 4");
	/* nothing is counted after now(): a window in the future is empty */
	want_on(c, "SELECT count(*) FROM aifleet.capacity_over_time(now() + interval '1 day',"
			" now() + interval '2 days', '1 hour')",
		"0");
	/* the reader may ask */
	PQclear(PQexec(c, "SET ROLE aifleet_reader"));
	want_on(c, "SELECT count(*) FROM aifleet.capacity_over_time(timestamptz '2026-01-01 00:00+00',"
			" timestamptz '2026-01-01 03:30+00', '1 hour')",
		"13");
	/* changes per day from the same history: node-2's restoration day */
	want_on(c, "SELECT string_agg(concat_ws(' ', to_char(day, 'MM-DD'), product, entity_type,"
			" created, updated, deleted, restored), ';' ORDER BY day, product, entity_type)"
			" FROM aifleet.changes_by_day(timestamptz '2025-12-31 00:00+00',"
			" timestamptz '2026-01-02 00:00+00')",
		"12-31 hologres instance 2 0 0 0;12-31 hologres resource 6 0 1 0;"
			    "12-31 hologres service 1 0 0 0;"
			    "01-01 hologres instance 0 0 1 1;01-01 hologres resource 0 0 1 1;"
			    "01-01 tione instance 1 0 0 0;01-01 tione resource 2 1 1 0;"
			    "01-01 tione service 1 1 0 0");
	PQfinish(c);
	af_store_free(s);
	af_testdb_drop(&db);
}

/*
 * A scope collected partially keeps what it last saw: nothing in it is
 * tombstoned, so its resources' versions stay open and their time goes
 * on counting. Run 1 sees 8 cores; run 2 is partial and does not see
 * them; run 3 sees them again. Core-hours from run 1's start to now are
 * 8 x that span, with no gap.
 */
static void test_partial_scope_counts(void **state)
{
	static const af_scope P = {"alibaba", "p", "cn-beijing", "tair_kvcache"};
	af_testdb db;
	af_store *s = st_open(&db);

	(void)state;
	for (int run = 1; run <= 3; run++) {
		af_run_options opts = {.trigger = "test"};
		af_load_summary sum;
		af_loader *l = NULL;

		if (af_loader_begin(&l, s, &opts) < 0)
			fail_msg("begin: %s", af_error_last());
		if (run != 2) {
			assert_int_equal(st_inst(l, &P, "kv-1", "one"), 0);
			assert_int_equal(st_res(l, &P, AF_OWNER_INSTANCE, "kv-1", "cpu_cores", 8, "cores", NULL),
					 0);
		}
		st_done(l, &P, run == 2 ? AF_SCOPE_PARTIAL : AF_SCOPE_COMPLETE);
		if (af_loader_commit(l, &sum) < 0)
			fail_msg("commit: %s", af_error_last());
		af_loader_free(l);
	}
	want_sql(&db, "(SELECT last_state FROM aifleet.scope_state)", "complete");
	want_sql(&db, "(SELECT count(*) FROM aifleet.history WHERE entity_type = 'resource')", "1");
	/* now() is one instant in a statement: the function's and ours */
	want_sql(&db, "(SELECT abs(sum(c.cpu_core_hours) - 8 * extract(epoch FROM now() - r.started_at) / 3600)"
		      " < 1e-9 FROM aifleet.sync_run r, aifleet.capacity_over_time(r.started_at, now() +"
		      " interval '1 hour', '1 hour') c WHERE r.id = 1 GROUP BY r.started_at)", "true");
	af_store_free(s);
	af_testdb_drop(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_model_keys),
	    cmocka_unit_test(test_gpu_catalog),
	    cmocka_unit_test(test_derived_gpu_memory),
	    cmocka_unit_test(test_capacity_over_time_exact),
	    cmocka_unit_test(test_partial_scope_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
