/*
 * The compact store of a long list (aifleet/items.h), without a network:
 *
 *   - a split takes the list out of the body: the envelope keeps every
 *     other member with the list as [], the store has each element as
 *     compact text, and the body's data now belongs to the store (the
 *     af_buf is empty): nothing of the answer is left as a tree;
 *   - what comes out is what json-c reads in the whole body: for every
 *     case of a table (valid, odd and invalid bodies), either the split
 *     gives the envelope and elements of json-c's own parse of the body
 *     (json_object_equal, numbers with their text), or it leaves the body
 *     untouched, byte for byte, for the caller to parse whole;
 *   - the nesting limit is counted from where the elements stood;
 *   - the store built from a parsed array reads back the same elements;
 *   - and af_job_fetch_list, replaying a saved Hologres list, hands back
 *     an answer without the elements and a store with every one of them:
 *     the collector's detail workers never see the list as one tree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "aifleet/buf.h"
#include "aifleet/collect.h"
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/items.h"
#include "testutil.h"

#define MEMBER "instanceModelList"

/* json-c's parse of a whole body, as the transport's classifier does it
 * (trailing whitespace allowed, nothing else). */
static json_object *parse_whole(const char *text, size_t len, bool *ok)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = json_tokener_parse_ex(tok, text, (int)len);
	size_t end = json_tokener_get_parse_end(tok);

	*ok = o && json_tokener_get_error(tok) == json_tokener_success;
	for (; *ok && end < len; end++)
		if (!strchr(" \t\r\n", text[end]))
			*ok = false;
	json_tokener_free(tok);
	if (!*ok) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static void buf_of(af_buf *b, const char *text, size_t len)
{
	af_buf_init(b, 0);
	assert_int_equal(af_buf_append(b, text, len), 0);
}

/* The envelope with the elements put back: json-c's tree of the whole. */
static json_object *rebuild(const char *envelope, const af_items *items)
{
	json_object *o = json_tokener_parse(envelope), *list = json_object_new_array();

	assert_non_null(o);
	for (size_t i = 0; i < af_items_count(items); i++) {
		json_object *e = NULL;

		assert_int_equal(af_items_parse(items, i, &e), 0);
		json_object_array_add(list, e);
	}
	json_object_object_add(o, MEMBER, list);
	return o;
}

typedef struct split_case {
	const char *body;
	int split; /* 1: split, 0: left whole */
} split_case;

static const split_case cases[] = {
    /* the shapes a list answer comes in */
    {"{\"requestId\":\"r\",\"" MEMBER "\":[{\"a\":1},{\"b\":\"x\"}]}", 1},
    {"{\"" MEMBER "\":[]}", 1},
    {"  {\n  \"" MEMBER "\" : [ { \"a\" : [ 1 , 2 ] } ,\n {\"s\":\" spaced  out \"} ] ,"
     " \"requestId\" : \"r\" }\n\t",
     1},
    {"{\"" MEMBER "\":[1,-2.50,1e3,true,false,null,\"s\",[],{}]}", 1},
    {"{\"" MEMBER "\":[{\"q\":\"a \\\" ] } , [ {\"},{\"u\":\"\\u00e9\\\\\"}]}", 1},
    {"{\"" MEMBER "\":[{\"big\":99999999999999999999999,\"d\":0.1000}]}", 1},
    {"{\"" MEMBER "\":[{\"a\":1,\"a\":2}],\"code\":\"200\"}", 1},
    /* json-c's leniencies inside an element are json-c's business */
    {"{\"" MEMBER "\":[{\"a\":[1,2,]},{\"n\":-Infinity}]}", 1},
    /* not the shape: parsed whole by the caller */
    {"[1,2]", 0},
    {"{}", 0},
    {"{\"other\":[1]}", 0},
    {"{\"" MEMBER "\":null}", 0},
    {"{\"" MEMBER "\":{\"a\":1}}", 0},
    {"{\"" MEMBER "\":[1],\"" MEMBER "\":[2]}", 0},
    {"{\"" MEMBER "\":[1],\"instanceModel\\u004cist\":null}", 0},
    /* odd syntax the walk does not take */
    {"{\"" MEMBER "\":[1,]}", 0},
    {"{\"" MEMBER "\":[,1]}", 0},
    {"{\"" MEMBER "\":[1],}", 0},
    {"{\"" MEMBER "\":[{\"a\":'x]'}]}", 0},
    {"{\"" MEMBER "\":[{\"a\":1}/* ] */]}", 0},
    {"{'" MEMBER "':[1]}", 0},
    /* invalid: the whole parse says why, as ever */
    {"{\"" MEMBER "\":[{\"a\":1}", 0},
    {"{\"" MEMBER "\":[{\"a\":1}]", 0},
    {"{\"" MEMBER "\":[{\"a\":1}]}x", 0},
    {"{\"" MEMBER "\":[{\"a\"1}]}", 0},
    {"{\"" MEMBER "\":[{\"a\":1}]  {}", 0},
    {"{\"" MEMBER "\":[tru]}", 0},
    {"{\"" MEMBER "\":[0x10]}", 0},
    {"{\"" MEMBER "\":[1 2]}", 0},
    {"{\"" MEMBER "\":[\"unterminated]}", 0},
    {"{\"x\" \"" MEMBER "\":[1]}", 0},
    {"{\"x\":,\"" MEMBER "\":[1]}", 0},
    {"", 0},
};

/* One case: split, or the body untouched; a split is json-c's whole parse. */
static void check_case(const split_case *c)
{
	size_t len = strlen(c->body), envelope_len = 0;
	af_items *items = NULL;
	char *envelope = NULL;
	json_object *whole, *back;
	bool ok;
	af_buf body;

	whole = parse_whole(c->body, len, &ok);
	buf_of(&body, c->body, len);
	assert_int_equal(af_items_split(&items, &envelope, &envelope_len, &body, MEMBER), 0);
	if (!c->split) {
		if (items)
			fail_msg("split although it should not: %s", c->body);
		assert_null(envelope);
		assert_int_equal(af_buf_len(&body), len);
		assert_memory_equal(af_buf_data(&body), c->body, len);
		af_buf_free(&body);
		json_object_put(whole);
		return;
	}
	if (!items)
		fail_msg("not split: %s", c->body);
	assert_true(ok); /* a split body is a valid one */
	/* the store owns the body's data now */
	assert_null(af_buf_data(&body));
	assert_int_equal(af_buf_len(&body), 0);
	assert_int_equal(strlen(envelope), envelope_len);
	back = rebuild(envelope, items);
	if (!json_object_equal(back, whole))
		fail_msg("%s\nreads back as\n%s", c->body, json_object_to_json_string(back));
	json_object_put(back);
	json_object_put(whole);
	af_items_free(items);
	free(envelope);
}

static void test_split_is_the_whole_parse(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
}

/* A NUL byte inside the body (json-c would stop there): left whole. */
static void test_nul_byte_left_whole(void **state)
{
	static const char text[] = "{\"" MEMBER "\":[{\"a\":\"x\0y\"}]}";
	af_items *items = NULL;
	char *envelope = NULL;
	size_t envelope_len;
	af_buf body;

	buf_of(&body, text, sizeof(text) - 1);
	assert_int_equal(af_items_split(&items, &envelope, &envelope_len, &body, MEMBER), 0);
	assert_null(items);
	assert_int_equal(af_buf_len(&body), sizeof(text) - 1);
	af_buf_free(&body);
}

/* What the store holds: each element without the whitespace around its
 * tokens (strings as they came), NUL-terminated; numbers keep their text;
 * the envelope keeps the other members as they came. */
static void test_compact_texts(void **state)
{
	static const char text[] = "{ \"requestId\" : \"r-1\" , \"" MEMBER "\" : [\n"
	                           "  { \"cpu\" : 1.50 , \"name\" : \"a  b\" } ,\n"
	                           "  null ,\n  [ 1 , { } ]\n] , \"code\" : \"200\" }\n";
	af_items *items = NULL;
	char *envelope = NULL;
	size_t envelope_len, n;
	json_object *e = NULL, *v;
	af_buf body;

	buf_of(&body, text, sizeof(text) - 1);
	assert_int_equal(af_items_split(&items, &envelope, &envelope_len, &body, MEMBER), 0);
	assert_non_null(items);
	assert_int_equal(af_items_count(items), 3);
	assert_string_equal(af_items_text(items, 0, &n), "{\"cpu\":1.50,\"name\":\"a  b\"}");
	assert_int_equal(n, strlen("{\"cpu\":1.50,\"name\":\"a  b\"}"));
	assert_string_equal(af_items_text(items, 1, NULL), "null");
	assert_string_equal(af_items_text(items, 2, NULL), "[1,{}]");
	assert_string_equal(envelope, "{ \"requestId\" : \"r-1\" , \"" MEMBER
	                              "\" : [] , \"code\" : \"200\" }");
	/* the store is the texts and their index, nothing more */
	assert_true(af_items_bytes(items) <=
	            strlen("{\"cpu\":1.50,\"name\":\"a  b\"}null[1,{}]") + 3 + 4 * sizeof(size_t));

	assert_int_equal(af_items_parse(items, 0, &e), 0);
	assert_true(json_object_object_get_ex(e, "cpu", &v));
	assert_string_equal(json_object_get_string(v), "1.50");
	json_object_put(e);
	assert_int_equal(af_items_parse(items, 1, &e), 0);
	assert_null(e);
	af_items_free(items);
	free(envelope);
}

/* An element may nest as deep as json-c allows it inside the whole body,
 * and no deeper. */
static void test_depth_counted_from_the_body(void **state)
{
	int deep_enough = 0, too_deep = 0;

	for (int levels = JSON_TOKENER_DEFAULT_DEPTH - 5; levels <= JSON_TOKENER_DEFAULT_DEPTH + 1;
	     levels++) {
		af_buf text = AF_BUF_INIT, body;
		af_items *items = NULL;
		char *envelope = NULL;
		size_t envelope_len;
		json_object *whole, *back;
		bool ok;

		af_buf_puts(&text, "{\"" MEMBER "\":[");
		for (int i = 0; i < levels; i++)
			af_buf_puts(&text, "[");
		for (int i = 0; i < levels; i++)
			af_buf_puts(&text, "]");
		af_buf_puts(&text, "]}");
		whole = parse_whole(af_buf_data(&text), af_buf_len(&text), &ok);
		buf_of(&body, af_buf_data(&text), af_buf_len(&text));
		assert_int_equal(af_items_split(&items, &envelope, &envelope_len, &body, MEMBER),
		                 0);
		if (!ok) {
			/* too deep for the whole parse: not split either */
			assert_null(items);
			too_deep++;
		} else {
			deep_enough++;
			if (!items)
				fail_msg("%d levels parse whole but were not split", levels);
			back = rebuild(envelope, items);
			assert_true(json_object_equal(back, whole));
			json_object_put(back);
		}
		json_object_put(whole);
		af_items_free(items);
		free(envelope);
		af_buf_free(&body);
		af_buf_free(&text);
	}
	/* the range straddles json-c's limit */
	assert_true(deep_enough > 0 && too_deep > 0);
}

static void test_from_array(void **state)
{
	json_object *list = json_tokener_parse("[{\"a\":1.50,\"s\":\"x/y\"},null,\"t\",[]]"), *e;
	af_items *items = NULL;

	assert_int_equal(af_items_from_array(&items, list), 0);
	assert_int_equal(af_items_count(items), 4);
	assert_string_equal(af_items_text(items, 0, NULL), "{\"a\":1.50,\"s\":\"x/y\"}");
	assert_string_equal(af_items_text(items, 1, NULL), "null");
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(af_items_parse(items, i, &e), 0);
		assert_true(json_object_equal(e, json_object_array_get_idx(list, i)));
		json_object_put(e);
	}
	af_items_free(items);
	assert_int_equal(af_items_from_array(&items, NULL), AF_ERR_GENERIC);
	json_object_put(list);
	assert_int_equal(af_items_from_array(&items, list = json_object_new_array()), 0);
	assert_int_equal(af_items_count(items), 0);
	af_items_free(items);
	json_object_put(list);
	af_items_free(NULL);
}

/* ---- af_job_fetch_list over a replayed Hologres list ---------------------- */

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static void make_dirs(const char *path)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0700);
			*p = '/';
		}
	mkdir(buf, 0700);
}

/* The answer comes back without its elements, and the store has them all:
 * this fails if the list were handed on (or kept) as one tree. */
static void fetch_list_case(const char *page, size_t want, const char *member_json)
{
	char *root = af_test_tempdir(), dir[1024], path[1200];
	af_raw_options raw = {NULL, NULL};
	af_job_setup setup = {0};
	af_api_request req;
	af_items *items = NULL;
	json_object *body = NULL, *list;
	af_job *job = NULL;

	snprintf(dir, sizeof(dir), "%s/alibaba/acct/cn-beijing/hologres", root);
	make_dirs(dir);
	snprintf(path, sizeof(path), "%s/list.json", dir);
	write_text(path, page);
	raw.replay_dir = root;
	setup.scope = (af_scope){AF_PROVIDER_ALIBABA, "acct", "cn-beijing", "hologres"};
	setup.product = af_product_find("hologres");
	setup.raw = &raw;
	assert_int_equal(af_job_new(&job, &setup), 0);
	af_job_request_init(job, &req, AF_API_ACS3_ROA, "ListInstanceModel", "2022-06-01");
	assert_int_equal(af_job_fetch_list(job, NULL, &req, "list", MEMBER, &body, &items), 0);
	assert_non_null(body);
	assert_true(json_object_object_get_ex(body, MEMBER, &list));
	assert_string_equal(json_object_to_json_string_ext(list, JSON_C_TO_STRING_PLAIN),
	                    member_json);
	if (want == (size_t)-1) {
		assert_null(items);
	} else {
		assert_non_null(items);
		assert_int_equal(af_items_count(items), want);
		for (size_t i = 0; i < want; i++) {
			json_object *node = NULL, *id;
			char expect[32];

			assert_int_equal(af_items_parse(items, i, &node), 0);
			assert_true(json_object_object_get_ex(node, "aiInstanceId", &id));
			snprintf(expect, sizeof(expect), "ai-%zu", i);
			assert_string_equal(json_object_get_string(id), expect);
			json_object_put(node);
		}
	}
	assert_int_equal(af_job_report(job)->pages, 1);
	json_object_put(body);
	af_items_free(items);
	af_job_free(job);
	af_test_rmtree(root);
	free(root);
}

static void test_fetch_list_hands_no_tree(void **state)
{
	/* as --save-raw writes it, and as json-c's PRETTY printer did */
	fetch_list_case("{\n  \"requestId\": \"r\",\n  \"" MEMBER "\": [\n"
	                "    {\"aiInstanceId\":\"ai-0\"},\n    {\"aiInstanceId\":\"ai-1\"},\n"
	                "    {\"aiInstanceId\":\"ai-2\"}\n  ]\n}\n",
	                3, "[]");
	/* a page the splitter does not take (a comment): parsed whole, and
	 * its list still handed on as a store */
	fetch_list_case("{\"requestId\":\"r\",\"" MEMBER "\":[{\"aiInstanceId\":\"ai-0\"},"
	                "{\"aiInstanceId\":\"ai-1\"} /* two */]}",
	                2, "[]");
	/* no AI nodes in the region: the null stays, no store */
	fetch_list_case("{\"requestId\":\"r\",\"" MEMBER "\":null}", (size_t)-1, "null");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split_is_the_whole_parse),
	    cmocka_unit_test(test_nul_byte_left_whole),
	    cmocka_unit_test(test_compact_texts),
	    cmocka_unit_test(test_depth_counted_from_the_body),
	    cmocka_unit_test(test_from_array),
	    cmocka_unit_test(test_fetch_list_hands_no_tree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
