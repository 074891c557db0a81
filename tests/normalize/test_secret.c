/*
 * The secret policy (aifleet/secret.h): names, values, redaction of text,
 * and tree copies that fail closed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aifleet/secret.h"

#define KEY "sk-abcdefghijklmnop1234"

static void names(void **state)
{
	static const char *const yes[] = {
	    "apiKey",
	    "ApiKey",
	    "api_key",
	    "API-KEY",
	    "apikey",
	    "api key",
	    "accessKeySecret",
	    "access_key_secret",
	    "AccessKeySecret",
	    "secretKey",
	    "SECRET_KEY",
	    "SecurityToken",
	    "x-acs-security-token",
	    "OPENAI_API_KEY",
	    "dashscopeApiKey",
	    "password",
	    "X-TC-Token",
	    "client_secret",
	    "api\xef\xbf\xbdKey",
	};
	static const char *const no[] = {
	    "key",        "Key",         "KeyName",   "AccessKeyId", "secret_id",
	    "InstanceId", "modelName",   "MaxTokens", "TagKey",      "api",
	    "keep",       "modelParams", "apiKe",     "TokenCount",  "",
	};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!af_secret_name(yes[i]))
			fail_msg("%s should be a secret name", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (af_secret_name(no[i]))
			fail_msg("%s should not be a secret name", no[i]);
	assert_false(af_secret_name(NULL));
}

static bool text(const char *s)
{
	return af_secret_text(s, strlen(s));
}

static void values(void **state)
{
	static const char nul[] = "x\0" KEY;

	assert_true(text(KEY));
	assert_true(text("use " KEY " now"));
	assert_true(text("Bearer:" KEY));
	assert_true(text("sk-proj-AAAAAAAAAAAAAAAA"));
	assert_false(text("sk-abcdefghijklmno"));             /* 15 after the prefix */
	assert_false(text("risk-assessment-model-v2-large")); /* no boundary */
	assert_false(text("disk-0123456789abcdef0123"));
	assert_true(af_secret_text(nul, sizeof(nul) - 1)); /* behind a NUL */
	assert_false(af_secret_text(nul, 1));
	assert_true(text("apiKey=abc"));
	assert_true(text("\"apiKey\":\"abc\""));
	assert_true(text("{\\\"api_key\\\": \\\"abc\\\"}"));
	assert_true(text("x-acs-security-token: tok"));
	assert_false(text("apiKey=<redacted>"));
	assert_false(text("the apiKey is rotated monthly"));
	assert_false(text("apiKey:"));
	assert_false(text("{\"timeout\":600}"));
	assert_false(af_secret_text(NULL, 0));
}

static void redact_is(const char *in, const char *want)
{
	size_t n;
	char *got = af_secret_redact(in, strlen(in), &n);

	assert_non_null(got);
	assert_string_equal(got, want);
	assert_int_equal(n, strlen(want));
	/* a fixpoint: nothing is left to find */
	assert_false(af_secret_text(got, n));
	free(got);
}

static void redact_text(void **state)
{
	char buf[64];

	redact_is("a " KEY " b", "a <redacted> b");
	redact_is("apiKey=abc&x=1", "apiKey=<redacted>&x=1");
	redact_is("{\"apiKey\":\"" KEY "\",\"k\":1}", "{\"apiKey\":\"<redacted>\",\"k\":1}");
	redact_is("apiKey=apiKey=x y", "apiKey=<redacted> y");
	redact_is("GET /?AccessKeySecret=s3cr3t HTTP/1.1",
	          "GET /?AccessKeySecret=<redacted> HTTP/1.1");
	redact_is("x-acs-security-token: tok\nnext", "x-acs-security-token: <redacted>\nnext");
	redact_is("nothing here", "nothing here");
	redact_is("", "");

	snprintf(buf, sizeof(buf), "code 403: password=hunter2 for %s", KEY);
	assert_true(af_secret_redact_in_place(buf, sizeof(buf)));
	assert_string_equal(buf, "code 403: password=<redacted> for <redacted>");
	assert_false(af_secret_redact_in_place(buf, sizeof(buf)));

	/* growing past the buffer cuts the end, never leaves the secret */
	snprintf(buf, 12, "apiKey=x y");
	assert_true(af_secret_redact_in_place(buf, 12));
	assert_string_equal(buf, "apiKey=<red");
}

static json_object *parse(const char *s)
{
	json_object *o = json_tokener_parse(s);

	if (!o && strcmp(s, "null") != 0)
		fail_msg("does not parse: %s", s);
	return o;
}

/* af_secret_copy(in) serialized, compared with `want` as JSON. */
static void copy_is(const char *in, const char *want)
{
	json_object *o = parse(in), *c = NULL, *w = want ? parse(want) : NULL;

	assert_int_equal(af_secret_copy(&c, o), 0);
	if (!json_object_equal(c, w))
		fail_msg("copy of %s\n got  %s\n want %s", in, json_object_to_json_string(c),
		         want ? want : "null");
	assert_false(af_secret_tree_has(c));
	assert_int_equal(af_secret_tree_has(o), !json_object_equal(o, c));
	json_object_put(c);
	json_object_put(w);
	json_object_put(o);
}

static void copy_members(void **state)
{
	copy_is("{\"a\":1,\"apiKey\":\"x\",\"ApiKey\":2,\"api_key\":[1],\"API-KEY\":{},"
	        "\"n\":{\"accessKeySecret\":\"s\",\"in\":[{\"secretKey\":\"k\",\"keep\":true}]}}",
	        "{\"a\":1,\"n\":{\"in\":[{\"keep\":true}]}}");
	/* tags and env lists name the secret in a sibling */
	copy_is(
	    "[{\"Key\":\"apiKey\",\"Value\":\"x\"},{\"TagKey\":\"API_KEY\",\"TagValue\":\"y\"},"
	    "{\"Name\":\"OPENAI_API_KEY\",\"Value\":\"z\"},{\"Key\":\"env\",\"Value\":\"prod\"}]",
	    "[{\"Key\":\"apiKey\"},{\"TagKey\":\"API_KEY\"},{\"Name\":\"OPENAI_API_KEY\"},"
	    "{\"Key\":\"env\",\"Value\":\"prod\"}]");
	/* values in strings and in member names */
	copy_is("{\"m\":\"use " KEY "\",\"" KEY "\":1,\"q\":\"apiKey=hunter2\"}",
	        "{\"m\":\"use <redacted>\",\"q\":\"apiKey=<redacted>\"}");
	/* a redacted string does not start to look like JSON (fuzz_hologres:
	 * a second look used to null what the first had redacted) */
	copy_is("{\"g\":\"" KEY "\\\":300,\\\"api_key\\\":\\\"" KEY "\\\"}\"}",
	        "{\"g\":\"<redacted>\\\":300,\\\"api_key\\\":\\\"<redacted>\\\"}\"}");
	/* nothing to remove */
	copy_is("{\"a\":[1,2.5,\"x\",null,true]}", "{\"a\":[1,2.5,\"x\",null,true]}");
	copy_is("null", NULL);
}

static void copy_embedded(void **state)
{
	json_object *o, *c = NULL;

	/* embedded JSON: re-serialized without the key */
	copy_is(
	    "{\"p\":\"{\\\"t\\\":600,\\\"api_key\\\":\\\"x\\\",\\\"n\\\":{\\\"apiKey\\\":1}}\"}",
	    "{\"p\":\"{\\\"t\\\":600,\\\"n\\\":{}}\"}");
	/* JSON in JSON in JSON */
	copy_is("{\"p\":\"[\\\"{\\\\\\\"apiKey\\\\\\\":\\\\\\\"x\\\\\\\"}\\\"]\"}",
	        "{\"p\":\"[\\\"{}\\\"]\"}");
	/* not JSON after all, and no secret in it: kept */
	copy_is("{\"p\":\"[beta] model\"}", "{\"p\":\"[beta] model\"}");
	/* not parseable and names a secret: dropped */
	copy_is("{\"p\":\"{apiKey: x}\"}", "{\"p\":null}");
	copy_is("{\"p\":\"{\\\"a\\\":1} {\\\"apiKey\\\":2}\"}", "{\"p\":null}");
	/* a NUL or \u0000 would cut json-c's view short: dropped */
	copy_is("{\"p\":\"{\\\"a\\\":1}\\u0000{\\\"apiKey\\\":2}\"}", "{\"p\":null}");
	copy_is("{\"p\":\"{\\\"a\\\\u0000b\\\":1}\"}", "{\"p\":null}");

	/* an embedded JSON without a secret is the same string object */
	o = parse("{\"p\":\"{\\\"timeout\\\": 5}\"}");
	assert_int_equal(af_secret_copy(&c, o), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(c, "p")),
	                    "{\"timeout\": 5}");
	assert_ptr_equal(json_object_object_get(c, "p"), json_object_object_get(o, "p"));
	json_object_put(c);
	json_object_put(o);
}

/* A JSON text nested `depth` objects deep with a secret at the bottom. */
static char *deep(int depth)
{
	char *s = malloc((size_t)depth * 8 + 64), *p = s;

	assert_non_null(s);
	for (int i = 0; i < depth; i++)
		p += sprintf(p, "{\"a\":");
	p += sprintf(p, "{\"apiKey\":\"hunter2\",\"t\":1}");
	for (int i = 0; i < depth; i++)
		*p++ = '}';
	*p = '\0';
	return s;
}

static void copy_depth(void **state)
{
	json_object *o, *c = NULL, *leaf, *tree;
	const char *text;
	char *s;

	/* embedded deeper than json-c's default 32, within the policy's 64 */
	s = deep(40);
	o = json_object_new_object();
	json_object_object_add(o, "p", json_object_new_string(s));
	assert_true(af_secret_tree_has(o));
	assert_int_equal(af_secret_copy(&c, o), 0);
	text = json_object_get_string(json_object_object_get(c, "p"));
	assert_null(strstr(text, "hunter2"));
	assert_non_null(strstr(text, "\"t\":1"));
	json_object_put(c);
	json_object_put(o);
	free(s);

	/* deeper than the policy: the string is dropped */
	s = deep(AF_SECRET_MAX_DEPTH + 5);
	o = json_object_new_object();
	json_object_object_add(o, "p", json_object_new_string(s));
	assert_int_equal(af_secret_copy(&c, o), 0);
	assert_null(json_object_object_get(c, "p"));
	assert_true(json_object_object_get_ex(c, "p", NULL));
	json_object_put(c);
	json_object_put(o);
	free(s);

	/* a tree built deeper than the limit: the part past it is null */
	leaf = json_object_new_object();
	json_object_object_add(leaf, "apiKey", json_object_new_string("hunter2"));
	json_object_object_add(leaf, "k", json_object_new_string("hunter2"));
	tree = leaf;
	for (int i = 0; i < AF_SECRET_MAX_DEPTH + 10; i++) {
		json_object *up = json_object_new_array();

		json_object_array_add(up, tree);
		tree = up;
	}
	assert_true(af_secret_tree_has(tree));
	assert_int_equal(af_secret_copy(&c, tree), 0);
	assert_null(strstr(json_object_to_json_string(c), "hunter2"));
	assert_false(af_secret_tree_has(c));
	json_object_put(c);
	json_object_put(tree);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(names),         cmocka_unit_test(values),
	    cmocka_unit_test(redact_text),   cmocka_unit_test(copy_members),
	    cmocka_unit_test(copy_embedded), cmocka_unit_test(copy_depth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
