/*
 * libFuzzer target: af_items_split against json-c's parse of the whole body.
 * Whatever the input, either the split gives back exactly what the whole
 * parse gives (the envelope with its elements put back, compared as json-c
 * prints them, so NaN compares too), or the body is left byte for byte as
 * it was. A split of a body the whole parse refuses, or any difference,
 * aborts. The member is "instanceModelList" when the input names it, else
 * "l" (short enough for the fuzzer to find).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/buf.h"
#include "aifleet/items.h"
#include "fuzz_common.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* As the transport's classifier parses a body: whole, trailing blanks only. */
static json_object *parse_whole(const char *s, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;
	size_t end;

	CHECK(tok != NULL);
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		json_tokener_free(tok);
		return NULL;
	}
	for (end = json_tokener_get_parse_end(tok); end < len; end++)
		if (!strchr(" \t\r\n", s[end])) {
			json_object_put(o);
			o = NULL;
			break;
		}
	json_tokener_free(tok);
	return o;
}

static void check_split(const char *member, const af_items *items, const char *envelope,
                        json_object *whole)
{
	json_object *back = json_tokener_parse(envelope), *list = json_object_new_array();

	CHECK(whole != NULL);
	CHECK(back != NULL && list != NULL);
	for (size_t i = 0; i < af_items_count(items); i++) {
		json_object *e = NULL;

		CHECK(af_items_parse(items, i, &e) == 0);
		CHECK(json_object_array_add(list, e) == 0);
	}
	CHECK(json_object_object_add(back, member, list) == 0);
	CHECK(strcmp(json_object_to_json_string_ext(back, JSON_C_TO_STRING_PLAIN),
	             json_object_to_json_string_ext(whole, JSON_C_TO_STRING_PLAIN)) == 0);
	json_object_put(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *member = memmem(data, size, "instanceModelList", 17) ? "instanceModelList" : "l";
	json_object *whole;
	af_items *items = NULL;
	char *envelope = NULL;
	size_t envelope_len;
	af_buf body;

	if (size > 1 << 20)
		return 0;
	whole = parse_whole(text, size);
	af_buf_init(&body, 0);
	CHECK(af_buf_append(&body, data, size) == 0);
	CHECK(af_items_split(&items, &envelope, &envelope_len, &body, member) == 0);
	if (items) {
		CHECK(af_buf_len(&body) == 0);
		CHECK(strlen(envelope) == envelope_len);
		check_split(member, items, envelope, whole);
	} else {
		CHECK(af_buf_len(&body) == size && memcmp(af_buf_data(&body), data, size) == 0);
	}
	af_items_free(items);
	free(envelope);
	af_buf_free(&body);
	json_object_put(whole);
	return 0;
}
