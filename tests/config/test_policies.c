/*
 * The least-privilege policies shipped in deploy/ grant exactly the
 * actions the registered products declare (af_product.permissions), no
 * more and no fewer, allow only, on every resource (the APIs have no
 * resource-level permissions).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "aifleet/product.h"
#include "aifleet/record.h"

/* A policy's statement list, whatever the case of its member names
 * (RAM: Statement/Effect/Action; CAM: statement/effect/action). */
static json_object *member(json_object *o, const char *upper, const char *lower)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, upper, &v))
		json_object_object_get_ex(o, lower, &v);
	return v;
}

static bool declared(const char *provider, const char *action)
{
	for (size_t i = 0; i < af_product_count(); i++) {
		const af_product *p = af_product_at(i);

		if (strcmp(p->provider, provider) != 0)
			continue;
		for (const char *const *a = p->permissions; a && *a; a++)
			if (strcmp(*a, action) == 0)
				return true;
	}
	return false;
}

static bool granted(json_object *actions, const char *action)
{
	for (size_t i = 0; i < json_object_array_length(actions); i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(actions, i)), action) == 0)
			return true;
	return false;
}

static void check_policy(const char *file, const char *provider, const char *allow)
{
	char path[1024];
	json_object *policy, *statements, *st, *actions, *effect, *resource;
	size_t wanted = 0;

	snprintf(path, sizeof(path), "%s/deploy/%s", AF_SOURCE_DIR, file);
	policy = json_object_from_file(path);
	assert_non_null(policy);
	statements = member(policy, "Statement", "statement");
	assert_true(json_object_is_type(statements, json_type_array));
	assert_int_equal(json_object_array_length(statements), 1);
	st = json_object_array_get_idx(statements, 0);
	effect = member(st, "Effect", "effect");
	assert_string_equal(json_object_get_string(effect), allow);
	resource = member(st, "Resource", "resource");
	assert_non_null(resource);
	assert_non_null(strstr(json_object_to_json_string(resource), "\"*\""));
	actions = member(st, "Action", "action");
	assert_true(json_object_is_type(actions, json_type_array));

	/* no action the products do not call ... */
	for (size_t i = 0; i < json_object_array_length(actions); i++) {
		const char *a = json_object_get_string(json_object_array_get_idx(actions, i));

		if (!declared(provider, a))
			fail_msg("%s grants %s, which no %s product calls", file, a, provider);
	}
	/* ... and every one they do */
	for (size_t i = 0; i < af_product_count(); i++) {
		const af_product *p = af_product_at(i);

		if (strcmp(p->provider, provider) != 0)
			continue;
		assert_non_null(p->permissions);
		for (const char *const *a = p->permissions; *a; a++, wanted++)
			if (!granted(actions, *a))
				fail_msg("%s lacks %s, which %s calls", file, *a, p->name);
	}
	assert_int_equal(json_object_array_length(actions), wanted);
	json_object_put(policy);
}

static void test_alibaba_ram_policy(void **state)
{
	check_policy("alibaba-ram-policy.json", AF_PROVIDER_ALIBABA, "Allow");
}

static void test_tencent_cam_policy(void **state)
{
	check_policy("tencent-cam-policy.json", AF_PROVIDER_TENCENT, "allow");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alibaba_ram_policy),
		cmocka_unit_test(test_tencent_cam_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
