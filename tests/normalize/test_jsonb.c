/*
 * Raw and tags are valid jsonb by construction: every string the
 * normalizers emit, for every fixture page, every fuzz corpus file and
 * crafted hostile input, goes through PostgreSQL's own parser on the test
 * server ($1::jsonb for raw and tags, $n::text for text, ::numeric for
 * quantities). Needs AIFLEET_TEST_DSN.
 */
#include <dirent.h>
#include <libpq-fe.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aifleet/log.h"
#include "aifleet/normalize.h"
#include "rec.h"
#include "testdb.h"
#include "testutil.h"

static const af_scope scope = {AF_PROVIDER_ALIBABA, "acct", "cn-beijing", "tair_kvcache"};

typedef struct pg_sink {
	PGconn *conn;
	const char *input; /* named in failures */
	unsigned long jsonb, text, records;
} pg_sink;

/* Sends the values (NULL = SQL NULL) through `SELECT $1::type, ...`. */
static void pg_check(pg_sink *p, const char *const *types, const char *const *vals, int n)
{
	char sql[1024];
	size_t len = 0;
	PGresult *res;

	len += (size_t)snprintf(sql + len, sizeof(sql) - len, "SELECT ");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s$%d::%s", i ? "," : "",
		                        i + 1, types[i]);
	res = PQexecParams(p->conn, sql, n, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		for (int i = 0; i < n; i++)
			if (vals[i])
				fprintf(stderr, "  $%d::%s = %.300s\n", i + 1, types[i], vals[i]);
		fail_msg("%s: PostgreSQL refused an emitted value: %s", p->input,
		         PQerrorMessage(p->conn));
	}
	PQclear(res);
	for (int i = 0; i < n; i++)
		if (vals[i])
			*(strcmp(types[i], "jsonb") == 0 ? &p->jsonb : &p->text) += 1;
	p->records++;
}

static void num_text(char *buf, size_t n, af_num v, const char **out)
{
	*out = NULL;
	if (!v.set)
		return;
	assert_true(isfinite(v.value));
	snprintf(buf, n, "%.17g", v.value);
	*out = buf;
}

static int on_inst(void *ctx, const af_scope *s, const af_instance *in)
{
	static const char *const types[] = {"jsonb", "jsonb", "text", "text", "text", "text",
	                                    "text",  "text",  "text", "text", "text"};
	const char *vals[] = {in->raw_json, in->tags_json,  in->native_id,   in->name,
	                      in->status,   in->status_raw, in->charge_type, in->charge_type_raw,
	                      in->zone,     in->spec,       in->model};

	pg_check(ctx, types, vals, 11);
	return 0;
}

static int on_svc(void *ctx, const af_scope *s, const af_service *v)
{
	static const char *const types[] = {"jsonb", "jsonb", "text", "text", "text", "text",
	                                    "text",  "text",  "text", "text", "text", "numeric"};
	char rep[40];
	const char *vals[] = {v->raw_json,   v->tags_json,   v->instance_id,     v->native_id,
	                      v->name,       v->model,       v->model_version,   v->status,
	                      v->status_raw, v->charge_type, v->charge_type_raw, NULL};

	num_text(rep, sizeof(rep), v->replicas, &vals[11]);
	pg_check(ctx, types, vals, 12);
	return 0;
}

static int on_res(void *ctx, const af_scope *s, const af_resource *r)
{
	static const char *const types[] = {"text", "text",    "text",    "text",   "text",
	                                    "text", "numeric", "numeric", "numeric"};
	char a[40], b[40], c[40];
	const char *vals[] = {r->owner_id, r->kind, r->unit, r->gpu_model, r->basis,
	                      NULL,        NULL,    NULL,    NULL};

	num_text(a, sizeof(a), r->capacity, &vals[5]);
	num_text(b, sizeof(b), r->used, &vals[6]);
	num_text(c, sizeof(c), r->per_replica, &vals[7]);
	pg_check(ctx, types, vals, 8);
	return 0;
}

static PGconn *connect_db(af_testdb *db)
{
	PGconn *conn;
	PGresult *res;

	af_testdb_create(db);
	conn = PQconnectdb(db->conninfo);
	if (PQstatus(conn) != CONNECTION_OK)
		fail_msg("cannot connect: %s", PQerrorMessage(conn));
	/* text and jsonb check UTF-8 only in a UTF8 database */
	res = PQexec(conn, "SHOW server_encoding");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(res, 0, 0), "UTF8");
	PQclear(res);
	return conn;
}

/* Parses any bytes as json-c does for the collectors (default depth). */
static json_object *parse_bytes(const char *text, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;

	assert_non_null(tok);
	o = len <= 1 << 24 ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
	json_tokener_free(tok);
	return o;
}

/* Every normalizer over one parsed input; records counted. */
static unsigned long run_all(pg_sink *p, json_object *o)
{
	af_record_sink sink = {on_inst, on_svc, on_res, p};
	json_object *list = NULL, *detail = NULL;
	unsigned long before = p->records;

	(void)af_normalize_tair_page(&scope, o, &sink, NULL);
	(void)af_normalize_tione_page(&scope, o, &sink, NULL);
	if (!json_object_object_get_ex(o, "list", &list))
		list = o;
	json_object_object_get_ex(o, "detail", &detail);
	(void)af_normalize_hologres_node(&scope, list, detail, &sink, NULL);
	return p->records - before;
}

static unsigned long run_dir(pg_sink *p, const char *dir, unsigned long *files)
{
	struct dirent *e;
	unsigned long n = 0;
	DIR *d = opendir(dir);

	if (!d)
		fail_msg("cannot open %s", dir);
	while ((e = readdir(d))) {
		char path[2048];
		size_t len;
		char *text;
		json_object *o;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (!(text = af_test_read_file(path, &len)))
			continue; /* a directory */
		p->input = path;
		if ((o = parse_bytes(text, len))) {
			n += run_all(p, o);
			json_object_put(o);
		}
		(*files)++;
		free(text);
	}
	closedir(d);
	return n;
}

/* The oracle is real: PostgreSQL refuses what json-c itself re-emits. */
static void server_refuses_json_c_numbers(void **state)
{
	static const char *const bad[] = {"[256.]", "[01.5]", "[-.5]",
	                                  "[1.e5]", "[NaN]",  "[\"\\u0000\"]"};
	af_testdb db;
	PGconn *conn = connect_db(&db);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_object *o = json_tokener_parse(bad[i]);
		const char *again =
		    o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : bad[i];
		const char *vals[] = {again};
		PGresult *res =
		    PQexecParams(conn, "SELECT $1::jsonb", 1, NULL, vals, NULL, NULL, 0);

		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			fail_msg("the server took %s", again);
		PQclear(res);
		json_object_put(o);
	}
	PQfinish(conn);
	af_testdb_drop(&db);
}

static void fixtures_and_corpus(void **state)
{
	static const char *const dirs[] = {"tests/fixtures/api",         "tests/fixtures/normalize",
	                                   "tests/fuzz/corpus/tair",     "tests/fuzz/corpus/tione",
	                                   "tests/fuzz/corpus/hologres", "tests/fuzz/corpus/time"};
	pg_sink p = {0};
	af_testdb db;
	unsigned long files = 0;

	p.conn = connect_db(&db);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char dir[1024];
		unsigned long n;

		snprintf(dir, sizeof(dir), "%s/%s", AF_SOURCE_DIR, dirs[i]);
		n = run_dir(&p, dir, &files);
		/* the page directories all hold pages that give records */
		if (i < 5 && n == 0)
			fail_msg("no record from %s", dirs[i]);
	}
	/* the Hologres example needs its list item and detail together */
	{
		json_object *list = rec_load("api/hologres_list_example.json");
		json_object *detail = rec_load("api/hologres_get_example.json");
		json_object *arr = json_object_object_get(list, "instanceModelList");
		af_record_sink sink = {on_inst, on_svc, on_res, &p};
		unsigned long before = p.records;

		p.input = "hologres list + get examples";
		assert_int_equal(af_normalize_hologres_node(&scope,
		                                            json_object_array_get_idx(arr, 0),
		                                            detail, &sink, NULL),
		                 0);
		assert_int_equal(p.records - before, 10);
		json_object_put(list);
		json_object_put(detail);
	}
	fprintf(stderr, "checked %lu files: %lu records, %lu jsonb and %lu text/numeric values\n",
	        files, p.records, p.jsonb, p.text);
	assert_true(files > 200);
	assert_true(p.jsonb > 200);
	PQfinish(p.conn);
	af_testdb_drop(&db);
}

/* Pages no provider should send, each of which must still load. */
static const char *const crafted[] = {
    /* json-c's lenient numbers, non-finite, saturated and huge integers */
    "{\"Instances\":{\"TairInferInstanceDTO\":[{\"InstanceId\":\"tk-1\",\"Capacity\":256.,"
    "\"X\":[01.5,-.5,1.e5,1E400,-1E400,-0,-0.0,1e-400,NaN,Infinity,-Infinity,00,"
    "99999999999999999999999,-99999999999999999999999,18446744073709551615,"
    "9223372036854775808,-9223372036854775808,4.9e-324,1.7976931348623157e308,0.1,1e21]}]}}",
    /* NUL escapes and control characters in values and keys, invalid UTF-8,
     * surrogates, U+2028 */
    "{\"Instances\":{\"TairInferInstanceDTO\":[{\"InstanceId\":\"tk-2\","
    "\"InstanceName\":\"a\\u0000b\\u001f\\u007f\xff\xfe\",\"k\\u0000\":\"v\",\"\xc0\xaf\":1,"
    "\"Z\":\"\\ud800 \\udc00 \\ud83d\\ude80 \xed\xa0\x80 \xe2\x80\xa8 \\\\u0000\","
    "\"Tags\":{\"Tag\":[{\"Key\":\"t\\u0000\",\"Value\":\"\\u0000\xff\"},"
    "{\"Key\":\"n\",\"Value\":[256.,NaN]}]}}]}}",
    /* deep nesting: the page up to json-c's limit, modelParams past it */
    "{\"Instances\":{\"TairInferInstanceDTO\":[{\"InstanceId\":\"tk-3\",\"D\":"
    "[[[[[[[[[[[[[[[[[[[[[[[[[[1.e5]]]]]]]]]]]]]]]]]]]]]]]]]]}]}}",
    /* TI-ONE: the same in services and tags */
    "{\"Response\":{\"ServiceGroups\":[{\"ServiceGroupId\":\"ms-1\",\"Weird\":-.5,"
    "\"Tags\":[{\"TagKey\":\"a\",\"TagValue\":01.5},{\"TagKey\":\"b\xff\",\"TagValue\":\"\\u0000\"}"
    "],"
    "\"Services\":[{\"ServiceId\":\"ms-1-1\",\"ServiceInfo\":{\"Replicas\":2.,\"Resources\":"
    "{\"Cpu\":1.e3,\"Memory\":01024,\"Gpu\":-0}},\"Env\":[{\"Name\":\"OPENAI_API_KEY\","
    "\"Value\":\"x\"}],\"BillingInfo\":1E400}]}]}}",
    /* Hologres: modelParams with odd numbers, NULs and depth */
    "{\"list\":{\"aiInstanceId\":\"holo-1\",\"cpu\":8.,\"x\":NaN},\"detail\":{\"modelServiceList\":"
    "["
    "{\"modelName\":\"m1\",\"gpu\":1.e0,\"modelParams\":\"{\\\"t\\\":256.,\\\"apiKey\\\":\\\"k\\\"}"
    "\"},"
    "{\"modelName\":\"m2\",\"modelParams\":\"{\\\"a\\\":\\\"\\\\u0000\\\"}\"},"
    "{\"modelName\":\"m3\",\"modelParams\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]"
    "]]]]]]]]]]]]]]]]]]]]]]]]]]]]\"}]}}",
};

static void crafted_inputs(void **state)
{
	pg_sink p = {0};
	af_testdb db;

	p.conn = connect_db(&db);
	for (size_t i = 0; i < sizeof(crafted) / sizeof(crafted[0]); i++) {
		json_object *o = parse_bytes(crafted[i], strlen(crafted[i]));

		if (!o)
			fail_msg("crafted page %zu does not parse", i);
		p.input = crafted[i];
		/* none of them is rejected: each gives records, all loadable */
		if (run_all(&p, o) == 0)
			fail_msg("crafted page %zu gave no record", i);
		json_object_put(o);
	}
	assert_true(p.jsonb >= 10);
	PQfinish(p.conn);
	af_testdb_drop(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(server_refuses_json_c_numbers),
	    cmocka_unit_test(fixtures_and_corpus),
	    cmocka_unit_test(crafted_inputs),
	};
	af_log_setup(AF_LOG_OFF, AF_LOG_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
