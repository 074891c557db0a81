/*
 * aifleet report against a real PostgreSQL: a TI-ONE-like and a
 * Hologres-like account serve one model under two spellings (DeepSeek-V3,
 * deepseek-v3), loaded twice so that there are changes. Every number of
 * the JSON report is checked against SQL of the test's own over the views;
 * the text and markdown reports against the same model key; the changes
 * window against the reports recorded before it -- including a run that
 * commits after a report began -- and a read-only role; and the CLI end to
 * end (a format, a bad --since, options of report given to another
 * command).
 */
#include <json-c/json.h>
#include <libpq-fe.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aifleet/error.h"
#include "aifleet/report.h"
#include "aifleet/store.h"
#include "storetest.h"
#include "testdb.h"
#include "testutil.h"

#define AIFLEET_BIN AF_BINARY_DIR "/src/cli/aifleet"
#define MUST(x)     assert_int_equal((x), 0)

static const af_scope TC = {"tencent", "tc", "ap-guangzhou", "tione"};
static const af_scope HG = {"alibaba", "ali", "cn-beijing", "hologres"};

/* A name that would show if a value were ever used as a format string,
 * or broke a row or a markdown cell. */
#define ODD_NAME "50%s|%n\nnext"

/* TI-ONE-like: the services hold the cards, reported without their memory
 * (the catalog gives an A10 24 GiB). ms-1 is renamed every round, ms-2's
 * service grows from 4 to 8 cards in round 2, ms-3 is gone after round 1. */
static void feed_tione(af_loader *l, int round)
{
	static const char *const names[] = {"group-1", "group-1-b", "group-1-c", "group-1-d"};

	MUST(st_inst(l, &TC, "ms-1", names[round - 1]));
	MUST(st_svc(l, &TC, "ms-1", "ms-1-a", "DeepSeek-V3", 1));
	MUST(st_res(l, &TC, AF_OWNER_SERVICE, "ms-1-a", "gpu_count", 2, "cards", "A10"));
	MUST(st_res(l, &TC, AF_OWNER_SERVICE, "ms-1-a", "cpu_cores", 16, "cores", NULL));
	MUST(st_res(l, &TC, AF_OWNER_SERVICE, "ms-1-a", "memory_gib", 64, "GiB", NULL));
	MUST(st_inst(l, &TC, "ms-2", "group-2"));
	MUST(st_svc(l, &TC, "ms-2", "ms-2-a", "Qwen2.5-72B-Instruct", 1));
	MUST(st_res(l, &TC, AF_OWNER_SERVICE, "ms-2-a", "gpu_count", round == 1 ? 4 : 8, "cards",
	            "H800"));
	if (round == 1) {
		MUST(st_inst(l, &TC, "ms-3", "group-3"));
		MUST(st_res(l, &TC, AF_OWNER_INSTANCE, "ms-3", "cpu_cores", 4, "cores", NULL));
	}
}

/* Hologres-like: an AI node reports its totals (2 cards, 48 GiB of GPU
 * memory), its model service its share of them (1 card, 24 GiB); hg-2
 * arrives in round 2. */
static void feed_hologres(af_loader *l, int round)
{
	MUST(st_inst(l, &HG, "hg-1", "node-1"));
	MUST(st_res(l, &HG, AF_OWNER_INSTANCE, "hg-1", "cpu_cores", 32, "cores", NULL));
	MUST(st_res(l, &HG, AF_OWNER_INSTANCE, "hg-1", "memory_gib", 128, "GiB", NULL));
	MUST(st_res(l, &HG, AF_OWNER_INSTANCE, "hg-1", "gpu_count", 2, "cards", "A10"));
	MUST(st_res(l, &HG, AF_OWNER_INSTANCE, "hg-1", "gpu_memory_gib", 48, "GiB", NULL));
	MUST(st_svc(l, &HG, "hg-1", "hg-1-a", "deepseek-v3", 1));
	MUST(st_res(l, &HG, AF_OWNER_SERVICE, "hg-1-a", "gpu_count", 1, "cards", "A10"));
	MUST(st_res(l, &HG, AF_OWNER_SERVICE, "hg-1-a", "gpu_memory_gib", 24, "GiB", NULL));
	if (round >= 2) {
		MUST(st_inst(l, &HG, "hg-2", ODD_NAME));
		MUST(st_res(l, &HG, AF_OWNER_INSTANCE, "hg-2", "cpu_cores", 8, "cores", NULL));
	}
}

/* A run fed and reported, not committed: Hologres is partial in round 2. */
static af_loader *load_begin(af_store *s, int round)
{
	af_run_options opts = {.trigger = "test"};
	af_loader *l = NULL;

	if (af_loader_begin(&l, s, &opts) < 0)
		fail_msg("begin: %s", af_error_last());
	feed_tione(l, round);
	feed_hologres(l, round);
	st_done(l, &TC, AF_SCOPE_COMPLETE);
	st_done(l, &HG, round == 2 ? AF_SCOPE_PARTIAL : AF_SCOPE_COMPLETE);
	return l;
}

static void load_commit(af_loader *l)
{
	af_load_summary sum;

	if (af_loader_commit(l, &sum) < 0)
		fail_msg("commit: %s", af_error_last());
	af_loader_free(l);
}

static void load(af_store *s, int round)
{
	load_commit(load_begin(s, round));
}

/* ---- SQL of the test's own --------------------------------------------- */

static PGconn *sql_connect(const af_testdb *db)
{
	PGconn *c = PQconnectdb(db->conninfo);

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(c));
	return c;
}

/* The first value of a query with up to four text parameters, copied;
 * NULL for SQL NULL. */
static char *sql_value(PGconn *c, const char *q, const char *p1, const char *p2, const char *p3,
                       const char *p4)
{
	const char *params[4] = {p1, p2, p3, p4};
	int n = p4 ? 4 : p3 ? 3 : p2 ? 2 : p1 ? 1 : 0;
	PGresult *res = PQexecParams(c, q, n, NULL, params, NULL, NULL, 0);
	char *v = NULL;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("query failed: %s\n%s", PQerrorMessage(c), q);
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		v = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

static double sql_num(PGconn *c, const char *q, const char *p1, const char *p2)
{
	char *v = sql_value(c, q, p1, p2, NULL, NULL);
	double d = v ? strtod(v, NULL) : 0;

	free(v);
	return d;
}

static bool sql_true(PGconn *c, const char *q, const char *p1, const char *p2, const char *p3)
{
	char *v = sql_value(c, q, p1, p2, p3, NULL);
	bool t = v && strcmp(v, "t") == 0;

	free(v);
	return t;
}

/* ---- the report ---------------------------------------------------------- */

static af_report *gather(af_store *s, const char *since, const char *stale_after)
{
	af_report_options opts = {since, stale_after, 0, 0};
	af_report *r = NULL;

	if (af_report_gather(&r, s, &opts) < 0)
		fail_msg("gather: %s", af_error_last());
	return r;
}

/* Rendered into a temporary file: GCC 12 takes a buffer of open_memstream
 * for a pointer to the local that held it (-Wdangling-pointer). */
static char *render(const af_report *r, af_report_format format)
{
	FILE *f = tmpfile();
	char *text;
	long len;

	assert_non_null(f);
	MUST(af_report_render(r, format, f));
	len = ftell(f);
	assert_true(len >= 0);
	text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	rewind(f);
	assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return text;
}

static json_object *render_json(const af_report *r)
{
	char *text = render(r, AF_REPORT_JSON);
	json_object *j = json_tokener_parse(text);

	if (!j)
		fail_msg("the JSON report does not parse:\n%s", text);
	free(text);
	return j;
}

/* o.a(.b) */
static json_object *jget(json_object *o, const char *a, const char *b)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, a, &v) || (b && !json_object_object_get_ex(v, b, &v)))
		fail_msg("no %s%s%s in the JSON report", a, b ? "." : "", b ? b : "");
	return v;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v = jget(o, key, NULL);

	return v ? json_object_get_string(v) : NULL;
}

/* A number the report typed as `type`. */
static double jnum(json_object *o, const char *key, json_type type)
{
	json_object *v = jget(o, key, NULL);

	if (!json_object_is_type(v, type))
		fail_msg("%s is a %s, not a %s", key, json_type_to_name(json_object_get_type(v)),
		         json_type_to_name(type));
	return json_object_get_double(v);
}

static void assert_near(double got, double want, double tolerance, const char *what)
{
	if (fabs(got - want) > tolerance)
		fail_msg("%s: the report says %.6f, SQL %.6f", what, got, want);
}

/* ---- the sections, against SQL ------------------------------------------ */

static const char cap_sql[] = "SELECT sum(%s) FROM aifleet.capacity_by_model"
                              " WHERE model_key IS NOT DISTINCT FROM $1";

static double cap_of_model(PGconn *c, const char *column, const char *key)
{
	char q[256];

	snprintf(q, sizeof(q), cap_sql, column);
	return sql_num(c, q, key, NULL);
}

static void check_top_models(PGconn *c, json_object *j)
{
	json_object *rows = jget(j, "fleet_now", "top_models");
	size_t n = json_object_array_length(rows);
	double prev = INFINITY;

	assert_int_equal(n, (size_t)sql_num(c,
	                                    "SELECT count(*) FROM (SELECT model_key"
	                                    " FROM aifleet.capacity_by_model GROUP BY 1"
	                                    " HAVING sum(gpu_cards) > 0) m",
	                                    NULL, NULL));
	for (size_t i = 0; i < n; i++) {
		json_object *row = json_object_array_get_idx(rows, i),
		            *p = jget(row, "providers", NULL);
		const char *key = jstr(row, "model_key");
		double cards = jnum(row, "gpu_cards", json_type_double);
		char *providers, joined[128] = "";

		assert_near(cards, cap_of_model(c, "gpu_cards", key), 0.005, "gpu_cards");
		assert_near(jnum(row, "gpu_memory_gib", json_type_double),
		            cap_of_model(c, "gpu_memory_gib", key), 0.05, "gpu_memory_gib");
		assert_near(jnum(row, "instances", json_type_int),
		            cap_of_model(c, "instances", key), 0, "instances");
		for (size_t k = 0; k < json_object_array_length(p); k++)
			snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s%s",
			         k ? "," : "",
			         json_object_get_string(json_object_array_get_idx(p, k)));
		providers = sql_value(c,
		                      "SELECT string_agg(DISTINCT provider, ',' ORDER BY provider)"
		                      " FROM aifleet.capacity_by_model"
		                      " WHERE model_key IS NOT DISTINCT FROM $1",
		                      key, NULL, NULL, NULL);
		assert_string_equal(joined, providers);
		free(providers);
		assert_true(cards <= prev);
		prev = cards;
	}
	/* and by hand: 2 + 1 cards; 2 x 24 GiB from the catalog + 24 reported;
	 * hg-1 keeps the card no service occupies, under its own model */
	assert_int_equal(n, 3);
	assert_near(cap_of_model(c, "gpu_cards", "deepseek-v3"), 3, 0, "deepseek-v3 cards");
	assert_near(cap_of_model(c, "gpu_memory_gib", "deepseek-v3"), 72, 0, "deepseek-v3 memory");
	assert_near(cap_of_model(c, "gpu_cards", "qwen-72b"), 1, 0, "hg-1's own card");
	assert_string_equal(jstr(json_object_array_get_idx(rows, 0), "model_key"),
	                    "qwen2.5-72b-instruct");
	/* what capacity_summary counts under hg-1 the report counts for its
	 * service: the totals agree */
	assert_true(sql_true(c,
	                     "SELECT (SELECT sum(gpu_cards) FROM aifleet.capacity_by_model)"
	                     " = (SELECT sum(gpu_cards) FROM aifleet.capacity_summary)",
	                     NULL, NULL, NULL));
}

static void check_by_region(PGconn *c, json_object *j)
{
	static const char *const cols[] = {"gpu_cards", "gpu_memory_gib", "cpu_cores",
	                                   "memory_gib"};
	json_object *rows = jget(j, "fleet_now", "by_region");
	size_t n = json_object_array_length(rows);
	char q[256];

	assert_int_equal(n, (size_t)sql_num(c,
	                                    "SELECT count(DISTINCT (provider, region))"
	                                    " FROM aifleet.capacity_summary",
	                                    NULL, NULL));
	for (size_t i = 0; i < n; i++) {
		json_object *row = json_object_array_get_idx(rows, i);

		for (size_t k = 0; k < 4; k++) {
			snprintf(q, sizeof(q),
			         "SELECT sum(%s) FROM aifleet.capacity_summary"
			         " WHERE provider = $1 AND region = $2",
			         cols[k]);
			assert_near(jnum(row, cols[k], json_type_double),
			            sql_num(c, q, jstr(row, "provider"), jstr(row, "region")), 0.05,
			            cols[k]);
		}
	}
}

/* The test's now() is later than the report's: GPU-hours and averages
 * grow meanwhile, the peaks do not. */
static void check_gpu_hours(PGconn *c, json_object *j)
{
	static const char q[] =
	    "SELECT sum(%s) FROM aifleet.capacity_over_time(now() - interval '7 days', now(),"
	    " interval '7 days') WHERE model_key IS NOT DISTINCT FROM $1";
	json_object *rows = jget(j, "gpu_hours_7d", NULL);
	size_t n = json_object_array_length(rows);
	char sql[256];

	assert_int_equal(n, (size_t)sql_num(c,
	                                    "SELECT count(*) FROM (SELECT model_key"
	                                    " FROM aifleet.capacity_over_time(now() - interval"
	                                    " '7 days', now(), interval '7 days') GROUP BY 1"
	                                    " HAVING sum(gpu_hours) > 0) m",
	                                    NULL, NULL));
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		json_object *row = json_object_array_get_idx(rows, i);
		const char *key = jstr(row, "model_key");

		snprintf(sql, sizeof(sql), q, "gpu_hours");
		assert_near(jnum(row, "gpu_hours", json_type_double), sql_num(c, sql, key, NULL),
		            0.06, "gpu_hours");
		snprintf(sql, sizeof(sql), q, "avg_gpu_cards");
		assert_near(jnum(row, "avg_gpu_cards", json_type_double),
		            sql_num(c, sql, key, NULL), 0.006, "avg_gpu_cards");
		snprintf(sql, sizeof(sql), q, "peak_gpu_cards");
		assert_near(jnum(row, "peak_gpu_cards", json_type_double),
		            sql_num(c, sql, key, NULL), 0.005, "peak_gpu_cards");
		/* by hand: ms-2 had 4 cards, then 8; deepseek 2 + 1 in two scopes;
		 * hg-1 one of its own */
		assert_near(jnum(row, "peak_gpu_cards", json_type_double),
		            strcmp(key, "deepseek-v3") == 0 ? 3
		            : strcmp(key, "qwen-72b") == 0  ? 1
		                                            : 8,
		            0, "peak by hand");
	}
}

static const char feed_window[] = " FROM aifleet.change_feed"
                                  " WHERE time >= $1::timestamptz AND time < $2::timestamptz";

static double feed_count(PGconn *c, json_object *changes, const char *extra, const char *p3,
                         const char *p4)
{
	char q[512], *v;
	double n;

	snprintf(q, sizeof(q), "SELECT count(*)%s%s", feed_window, extra);
	v = sql_value(c, q, jstr(changes, "since"), jstr(changes, "until"), p3, p4);
	n = strtod(v, NULL);
	free(v);
	return n;
}

static void check_changes(PGconn *c, json_object *j)
{
	static const char *const kinds[] = {"created", "updated", "deleted", "restored"};
	json_object *ch = jget(j, "changes", NULL), *counts = jget(ch, "counts", NULL);
	json_object *first = jget(ch, "first", NULL);
	double total = feed_count(c, ch, "", NULL, NULL), sum = 0;
	char q[512], *want;

	assert_near(jnum(ch, "total", json_type_int), total, 0, "total changes");
	assert_true(total > 20); /* both runs, so that the list is cut */
	for (size_t i = 0; i < json_object_array_length(counts); i++) {
		json_object *row = json_object_array_get_idx(counts, i);

		for (size_t k = 0; k < 4; k++)
			assert_near(jnum(row, kinds[k], json_type_int),
			            feed_count(c, ch, " AND entity_type = $3 AND change = $4",
			                       jstr(row, "entity_type"), kinds[k]),
			            0, kinds[k]);
		sum += jnum(row, "total", json_type_int);
	}
	assert_near(sum, total, 0, "sum of the counts");
	assert_int_equal(json_object_array_length(first), 20);
	snprintf(q, sizeof(q), "SELECT native_id%s ORDER BY time, seq LIMIT 1", feed_window);
	want = sql_value(c, q, jstr(ch, "since"), jstr(ch, "until"), NULL, NULL);
	assert_string_equal(jstr(json_object_array_get_idx(first, 0), "native_id"), want);
	free(want);
	/* no report recorded: the last 24 hours */
	assert_string_equal(jstr(ch, "since_from"), "default");
	assert_true(sql_true(c, "SELECT $2::timestamptz - $1::timestamptz = interval '24 hours'",
	                     jstr(ch, "since"), jstr(ch, "until"), NULL));
}

static void check_stale(PGconn *c, json_object *j)
{
	json_object *rows = jget(j, "stale_scopes", NULL), *row;

	assert_int_equal(
	    json_object_array_length(rows),
	    (size_t)sql_num(c,
	                    "SELECT count(*) FROM aifleet.scope_freshness"
	                    " WHERE last_state <> 'complete' OR age > interval '26 hours'",
	                    NULL, NULL));
	assert_int_equal(json_object_array_length(rows), 1);
	row = json_object_array_get_idx(rows, 0);
	assert_string_equal(jstr(row, "product"), "hologres");
	assert_string_equal(jstr(row, "last_state"), "partial");
	assert_string_equal(jstr(row, "last_error"), "simulated collection error");
	assert_null(jget(row, "held_deletes", NULL));
}

static void test_json_matches_sql(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	PGconn *c = sql_connect(&db);
	af_report *r;
	json_object *j;

	(void)state;
	load(s, 1);
	load(s, 2);
	r = gather(s, NULL, NULL);
	j = render_json(r);
	check_top_models(c, j);
	check_by_region(c, j);
	check_gpu_hours(c, j);
	check_changes(c, j);
	check_stale(c, j);
	assert_string_equal(jstr(j, "stale_after"), AF_REPORT_STALE_AFTER);
	json_object_put(j);
	af_report_free(r);
	/* every scope is older than a microsecond */
	r = gather(s, NULL, "1 microsecond");
	j = render_json(r);
	assert_int_equal(json_object_array_length(jget(j, "stale_scopes", NULL)), 2);
	json_object_put(j);
	af_report_free(r);
	PQfinish(c);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* ---- text and markdown --------------------------------------------------- */

/* The part of `text` from `from` to `to`, copied. */
static char *between(const char *text, const char *from, const char *to)
{
	const char *a = strstr(text, from), *b;

	if (!a || !(b = strstr(a, to)))
		fail_msg("no '%s' ... '%s' in:\n%s", from, to, text);
	return strndup(a, (size_t)(b - a));
}

static int occurrences(const char *text, const char *word)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, word)); p += strlen(word))
		n++;
	return n;
}

/* Every table is a header row, a separator row of ---, and its rows;
 * returns how many tables. */
static int check_markdown_tables(const char *md)
{
	char *copy = strdup(md), *save = NULL, *prev = NULL;
	int tables = 0, in_table = 0;

	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		bool row = line[0] == '|';

		if (row && in_table == 1) {
			if (strncmp(line, "|---", 4) != 0 || line[strlen(line) - 1] != '|')
				fail_msg("no separator under the header '%s': '%s'", prev, line);
			tables++;
		}
		in_table = row ? in_table + 1 : 0;
		prev = line;
	}
	free(copy);
	return tables;
}

static void test_text_and_markdown(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	PGconn *c = sql_connect(&db);
	char *cards, *text, *md, *part, line[64];
	af_report *r;

	(void)state;
	load(s, 1);
	load(s, 2);
	cards = sql_value(c,
	                  "SELECT round(sum(gpu_cards)::numeric, 2) FROM aifleet.capacity_by_model"
	                  " WHERE model_key = 'deepseek-v3'",
	                  NULL, NULL, NULL, NULL);
	assert_string_equal(cards, "3.00");
	r = gather(s, NULL, NULL);
	text = render(r, AF_REPORT_TEXT);
	md = render(r, AF_REPORT_MARKDOWN);

	part = between(text, "Top 10 models by GPU cards", "Capacity by cloud and region");
	assert_int_equal(occurrences(part, "deepseek-v3"), 1);
	assert_int_equal(occurrences(part, "DeepSeek-V3"), 0);
	assert_non_null(strstr(strstr(part, "deepseek-v3"), cards));
	free(part);
	assert_non_null(strstr(text, "The first 20 of "));

	part = between(md, "### Top 10 models by GPU cards", "### Capacity by cloud and region");
	assert_int_equal(occurrences(part, "deepseek-v3"), 1);
	snprintf(line, sizeof(line), "| deepseek-v3 | %s |", cards);
	assert_non_null(strstr(part, line));
	free(part);
	assert_non_null(strstr(md, "## Fleet now"));
	/* top models, by region, GPU-hours, counts, changes, stale scopes */
	assert_int_equal(check_markdown_tables(md), 6);
	free(text);
	free(md);
	af_report_free(r);

	/* round 2 alone, where the odd name is: printed as data, one row, one cell */
	free(cards);
	cards = sql_value(c, "SELECT started_at::text FROM aifleet.sync_run WHERE id = 2", NULL,
	                  NULL, NULL, NULL);
	r = gather(s, cards, NULL);
	text = render(r, AF_REPORT_TEXT);
	md = render(r, AF_REPORT_MARKDOWN);
	assert_non_null(strstr(text, "50%s|%n next"));
	assert_non_null(strstr(md, "50%s\\|%n next"));
	assert_non_null(strstr(text, "Every change, oldest first"));
	free(text);
	free(md);
	af_report_free(r);
	free(cards);
	PQfinish(c);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* ---- the window ---------------------------------------------------------- */

static void expect_param_error(af_store *s, const char *since, const char *stale,
                               const char *option)
{
	af_report_options opts = {since, stale, 0, 0};
	af_report *r = NULL;

	assert_int_equal(af_report_gather(&r, s, &opts), AF_ERR_PARAM);
	assert_null(r);
	assert_non_null(strstr(af_error_last(), option));
	assert_non_null(strstr(af_error_last(), since ? since : stale));
}

static void test_since(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	PGconn *c = sql_connect(&db);
	af_report *r;
	json_object *j, *ch;

	(void)state;
	load(s, 1);
	load(s, 2);
	r = gather(s, "2999-01-01T00:00Z", NULL);
	j = render_json(r);
	ch = jget(j, "changes", NULL);
	assert_near(jnum(ch, "total", json_type_int), 0, 0, "changes from the future");
	assert_int_equal(json_object_array_length(jget(ch, "counts", NULL)), 0);
	assert_int_equal(json_object_array_length(jget(ch, "first", NULL)), 0);
	assert_string_equal(jstr(ch, "since_from"), "option");
	assert_string_equal(jstr(ch, "since_option"), "2999-01-01T00:00Z");
	json_object_put(j);
	af_report_free(r);

	/* a duration counts back from the report's own now(), either sign */
	for (size_t i = 0; i < 4; i++) {
		static const char *const given[] = {"90min", "1 day ago", "P2D", "7d"};
		static const char *const back[] = {"90 minutes", "1 day", "2 days", "7 days"};

		r = gather(s, given[i], NULL);
		j = render_json(r);
		ch = jget(j, "changes", NULL);
		if (!sql_true(c, "SELECT $2::timestamptz - $1::timestamptz = $3::interval",
		              jstr(ch, "since"), jstr(ch, "until"), back[i]))
			fail_msg("--since %s: from %s to %s is not %s", given[i], jstr(ch, "since"),
			         jstr(ch, "until"), back[i]);
		json_object_put(j);
		af_report_free(r);
	}

	expect_param_error(s, "yesterdayish", NULL, "--since");
	expect_param_error(s, NULL, "soon", "--stale-after");
	/* the connection is fine after a refused value */
	af_report_free(gather(s, "24h", NULL));
	PQfinish(c);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* ---- recorded reports ---------------------------------------------------- */

typedef struct window {
	char since[40], until[40], from[16];
	long long last_id, total;
} window;

/* One report; recorded (and *id its row) when `record`. */
static window report_once(af_store *s, bool record, int64_t *id)
{
	af_report *r = gather(s, NULL, NULL);
	json_object *j = render_json(r), *ch = jget(j, "changes", NULL);
	json_object *last = jget(ch, "last_report_id", NULL);
	window w;

	snprintf(w.since, sizeof(w.since), "%s", jstr(ch, "since"));
	snprintf(w.until, sizeof(w.until), "%s", jstr(ch, "until"));
	snprintf(w.from, sizeof(w.from), "%s", jstr(ch, "since_from"));
	w.last_id = last ? json_object_get_int64(last) : 0;
	w.total = (long long)jnum(ch, "total", json_type_int);
	if (record)
		MUST(af_report_record(s, r, AF_REPORT_JSON, id));
	json_object_put(j);
	af_report_free(r);
	return w;
}

static long long run_changes(PGconn *c, const char *run)
{
	return (long long)sql_num(
	    c, "SELECT count(*) FROM aifleet.change_feed WHERE run_id = $1::bigint", run, NULL);
}

static long long reports(PGconn *c)
{
	return (long long)sql_num(c, "SELECT count(*) FROM aifleet.report_run", NULL, NULL);
}

static void test_recorded_window(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db), *s2 = NULL;
	PGconn *c = sql_connect(&db);
	af_loader *l;
	int64_t id = -1;
	window a, b, w3, w4;

	(void)state;
	load(s, 1);
	load(s, 2);
	a = report_once(s, true, &id);
	assert_int_equal(id, 1);
	assert_string_equal(a.from, "default");
	assert_true(sql_true(c,
	                     "SELECT reported_at = $1::timestamptz AND since = $2::timestamptz"
	                     " AND through_run_id = 2 AND format = 'json'"
	                     " FROM aifleet.report_run WHERE id = 1",
	                     a.until, a.since, NULL));

	/* the next report starts where the recorded one ended; an unrecorded
	 * one (--no-record) moves nothing */
	load(s, 3);
	b = report_once(s, false, NULL);
	assert_string_equal(b.from, "last_report");
	assert_int_equal(b.last_id, 1);
	assert_string_equal(b.since, a.until);
	assert_int_equal(b.total, run_changes(c, "3"));
	assert_true(b.total > 0);
	assert_int_equal(reports(c), 1);
	b = report_once(s, true, &id);
	assert_int_equal(id, 2);
	assert_string_equal(b.since, a.until);

	/* run 4 begins before report 3 and commits after it: its changes are
	 * stamped before report 3 ended, and report 4 has them all the same */
	if (af_store_connect(&s2, db.conninfo) < 0)
		fail_msg("connect: %s", af_error_last());
	l = load_begin(s2, 4);
	w3 = report_once(s, true, &id);
	assert_int_equal(id, 3);
	assert_int_equal(w3.total, 0);
	load_commit(l);
	w4 = report_once(s, true, &id);
	assert_int_equal(w4.last_id, 3);
	assert_true(strcmp(w4.since, w3.until) < 0);
	assert_true(
	    sql_true(c, "SELECT started_at = $1::timestamptz FROM aifleet.sync_run WHERE id = 4",
	             w4.since, NULL, NULL));
	assert_int_equal(w4.total, run_changes(c, "4"));
	assert_true(w4.total > 0);
	af_store_free(s2);
	PQfinish(c);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* A role granted aifleet_reader makes the whole report, from where the
 * last recorded one ended, and cannot record it: not an error. */
static void test_read_only_role(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db), *ro = NULL;
	PGconn *c = sql_connect(&db);
	char role[64], sql[256], conninfo[640];
	int64_t id = -1;
	window w;

	(void)state;
	load(s, 1);
	load(s, 2);
	report_once(s, true, &id);
	assert_int_equal(id, 1);
	snprintf(role, sizeof(role), "aifleet_test_ro_%ld", (long)getpid());
	snprintf(sql, sizeof(sql),
	         "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN IN ROLE aifleet_reader", role, role);
	af_testdb_exec(&db, sql);
	snprintf(conninfo, sizeof(conninfo), "%s user=%s", db.conninfo, role);
	if (af_store_connect(&ro, conninfo) < 0)
		fail_msg("connect as %s: %s", role, af_error_last());
	w = report_once(ro, true, &id);
	assert_int_equal(id, 0);
	assert_string_equal(w.from, "last_report");
	assert_int_equal(w.last_id, 1);
	assert_int_equal(reports(c), 1);
	af_store_free(ro);
	snprintf(sql, sizeof(sql), "DROP ROLE %s", role);
	af_testdb_exec(&db, sql);
	PQfinish(c);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* A database without aifleet.report_run (before the migration that makes
 * it): the report is made and says it was not recorded. */
static void test_no_report_table(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	int64_t id = -1;
	window w;

	(void)state;
	load(s, 1);
	af_testdb_exec(&db, "DROP TABLE IF EXISTS aifleet.report_run");
	w = report_once(s, true, &id);
	assert_int_equal(id, 0);
	assert_string_equal(w.from, "default");
	af_store_free(s);
	af_testdb_drop(&db);
}

/* ---- the CLI ------------------------------------------------------------- */

static int run_cli(const char *dir, const char *const *args, af_test_run_result *res)
{
	const char *argv[16];
	size_t n = 0;

	argv[n++] = AIFLEET_BIN;
	while (*args && n < 15)
		argv[n++] = *args++;
	argv[n] = NULL;
	return af_test_run(AIFLEET_BIN, argv, dir, 120, res);
}

static void test_cli(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	PGconn *c = sql_connect(&db);
	char *dir = af_test_tempdir();
	af_test_run_result res = {0};
	json_object *j;

	(void)state;
	load(s, 1);
	load(s, 2);
	{
		const char *args[] = {"--db", db.conninfo, "report", "--format", "markdown", NULL};

		assert_int_equal(run_cli(dir, args, &res), 0);
		assert_non_null(strstr(res.out, "## Fleet now"));
		assert_non_null(strstr(res.out, "| deepseek-v3 | 3.00 |"));
		assert_int_equal(reports(c), 1);
	}
	{
		const char *args[] = {"--db", db.conninfo, "report", "--since", "not-a-time", NULL};

		assert_int_equal(run_cli(dir, args, &res), 64);
		assert_non_null(strstr(res.err, "--since: 'not-a-time'"));
		assert_string_equal(res.out, "");
		assert_int_equal(reports(c), 1);
	}
	{
		const char *args[] = {"--db", db.conninfo, "report", "--format", "yaml", NULL};

		assert_int_equal(run_cli(dir, args, &res), 64);
		assert_non_null(strstr(res.err, "--format"));
	}
	{
		const char *args[] = {"--db", db.conninfo, "status", "--since", "1h", NULL};

		assert_int_equal(run_cli(dir, args, &res), 64);
		assert_non_null(strstr(res.err, "--since is an option of report"));
	}
	{
		const char *args[] = {"--db", db.conninfo,   "report", "--format",
		                      "json", "--no-record", NULL};

		assert_int_equal(run_cli(dir, args, &res), 0);
		assert_non_null(j = json_tokener_parse(res.out));
		assert_string_equal(jstr(jget(j, "changes", NULL), "since_from"), "last_report");
		json_object_put(j);
		assert_int_equal(reports(c), 1);
	}
	af_test_run_free(&res);
	af_test_rmtree(dir);
	free(dir);
	PQfinish(c);
	af_store_free(s);
	af_testdb_drop(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_matches_sql),
	    cmocka_unit_test(test_text_and_markdown),
	    cmocka_unit_test(test_since),
	    cmocka_unit_test(test_recorded_window),
	    cmocka_unit_test(test_read_only_role),
	    cmocka_unit_test(test_no_report_table),
	    cmocka_unit_test(test_cli),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
