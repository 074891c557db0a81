#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/log.h"
#include "aifleet/secret.h"
#include "fuzz_common.h"


json_object *fz_parse(const uint8_t *data, size_t size)
{
	json_tokener *tok;
	json_object *o;

	/* quiet: warnings for every bad field would drown the fuzzer's output */
	af_log_setup(AF_LOG_OFF, AF_LOG_TEXT);
	if (size > 1 << 20 || !(tok = json_tokener_new()))
		return NULL;
	o = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	json_tokener_free(tok);
	return o;
}

/* The whole text parses as JSON (json-c, depth as for pages). */
static json_object *parse_whole(const char *s, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;

	CHECK(tok != NULL);
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (o && json_tokener_get_parse_end(tok) != len) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* No secret name or value anywhere, strings holding JSON included. This
 * walk is the harness's own; af_secret_tree_has below is the policy's.
 * JSON inside a string is text to jsonb: its numbers are not checked. */
static void no_secrets(json_object *o, int depth, bool embedded)
{
	if (!o || depth > 200)
		return;
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v)
		{
			CHECK(!af_secret_name(k));
			CHECK(!af_secret_text(k, strlen(k)));
			no_secrets(v, depth + 1, embedded);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			no_secrets(json_object_array_get_idx(o, i), depth + 1, embedded);
	} else if (json_object_is_type(o, json_type_string)) {
		const char *s = json_object_get_string(o);
		size_t len = (size_t)json_object_get_string_len(o);
		json_object *inner;

		CHECK(!af_secret_text(s, len));
		if (len && (*s == '{' || *s == '[') && (inner = parse_whole(s, len))) {
			no_secrets(inner, depth + 1, true);
			json_object_put(inner);
		}
	} else if (!embedded && json_object_is_type(o, json_type_double)) {
		double d = json_object_get_double(o);

		CHECK(d == d && d - d == 0); /* jsonb has no NaN or Infinity */
	}
}

/* A real \u0000 escape: "\u0000" after an even number of backslashes (an
 * escaped backslash followed by the text u0000 is harmless). */
static bool has_nul_escape(const char *text)
{
	for (const char *p = text; (p = strstr(p, "\\u0000")); p++) {
		size_t n = 0;

		for (const char *q = p; q > text && q[-1] == '\\'; q--)
			n++;
		if (n % 2 == 0)
			return true;
	}
	return false;
}

/* RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool canonical_number(const char *p, size_t n)
{
	size_t i = 0, d;

	if (i < n && p[i] == '-')
		i++;
	if (i < n && p[i] == '0')
		i++;
	else if (i < n && p[i] >= '1' && p[i] <= '9')
		while (i < n && isdigit((unsigned char)p[i]))
			i++;
	else
		return false;
	if (i < n && p[i] == '.') {
		for (d = ++i; i < n && isdigit((unsigned char)p[i]); i++)
			;
		if (i == d)
			return false;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		if (++i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		for (d = i; i < n && isdigit((unsigned char)p[i]); i++)
			;
		if (i == d)
			return false;
	}
	return i == n;
}

/*
 * json-c, even strict, reads numbers such as 256., 01.5, -.5, 1.e5 and the
 * words NaN and Infinity, which PostgreSQL refuses: every token outside
 * the strings must be a canonical number or true, false, null.
 */
static void tokens_canonical(const char *t)
{
	for (const char *p = t; *p;) {
		size_t n;

		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			CHECK(*p == '"');
			p++;
			continue;
		}
		n = strspn(p, "+-.0123456789eEabcdfghijklmnopqrstuvwxyzABCDFGHIJKLMNOPQRSTUVWXYZ");
		if (!n) {
			p++;
			continue;
		}
		CHECK((n == 4 && (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))) ||
		      (n == 5 && !strncmp(p, "false", 5)) || canonical_number(p, n));
		p += n;
	}
}

/* Parses as PostgreSQL jsonb would accept: strict, valid UTF-8, no
 * \u0000, canonical numbers only. */
static json_object *parse_strict(const char *text)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;

	CHECK(tok != NULL);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)strlen(text));
	json_tokener_free(tok);
	CHECK(o != NULL);
	CHECK(!has_nul_escape(text));
	tokens_canonical(text);
	return o;
}

static void check_raw(const char *raw)
{
	json_object *o;

	if (!raw)
		return;
	o = parse_strict(raw);
	no_secrets(o, 0, false);
	CHECK(!af_secret_tree_has(o));
	json_object_put(o);
}

static void check_text(const char *s)
{
	CHECK(!s || !af_secret_text(s, strlen(s)));
}

static void check_tags(const char *tags)
{
	json_object *o;

	if (!tags)
		return;
	o = parse_strict(tags);
	no_secrets(o, 0, false);
	CHECK(!af_secret_tree_has(o));
	CHECK(json_object_is_type(o, json_type_object));
	json_object_object_foreach(o, k, v)
	{
		(void)k;
		CHECK(json_object_is_type(v, json_type_string));
	}
	json_object_put(o);
}

static void check_time(af_time t)
{
	char buf[40];
	af_time back;

	if (t == AF_TIME_NULL)
		return;
	af_time_format(buf, t);
	CHECK(af_time_parse(&back, buf) == 0 && back == t);
}

static void check_num(af_num n)
{
	/* finite only: inf or nan would not survive COPY into numeric */
	CHECK(!n.set || (n.value == n.value && n.value - n.value == 0));
}

static int on_inst(void *ctx, const af_scope *scope, const af_instance *in)
{
	((fz_counts *)ctx)->inst++;
	CHECK(in->native_id && *in->native_id);
	CHECK(!in->status == !in->status_raw);
	check_raw(in->raw_json);
	check_tags(in->tags_json);
	check_text(in->native_id);
	check_text(in->name);
	check_text(in->zone);
	check_text(in->spec);
	check_text(in->model);
	check_text(in->status_raw);
	check_text(in->charge_type_raw);
	check_time(in->created_at);
	check_time(in->updated_at);
	check_time(in->expires_at);
	return 0;
}

static int on_svc(void *ctx, const af_scope *scope, const af_service *s)
{
	((fz_counts *)ctx)->svc++;
	CHECK(s->native_id && *s->native_id);
	CHECK(s->instance_id && *s->instance_id);
	check_raw(s->raw_json);
	check_tags(s->tags_json);
	check_text(s->native_id);
	check_text(s->name);
	check_text(s->model);
	check_text(s->model_version);
	check_text(s->status_raw);
	check_text(s->charge_type_raw);
	check_num(s->replicas);
	check_time(s->created_at);
	check_time(s->updated_at);
	return 0;
}

static int on_res(void *ctx, const af_scope *scope, const af_resource *r)
{
	((fz_counts *)ctx)->res++;
	CHECK(r->owner_id && *r->owner_id);
	CHECK(r->kind && r->unit);
	check_num(r->capacity);
	check_num(r->used);
	check_num(r->per_replica);
	return 0;
}

af_record_sink fz_sink(fz_counts *counts)
{
	af_record_sink s = {on_inst, on_svc, on_res, counts};

	memset(counts, 0, sizeof(*counts));
	return s;
}

void fz_check_stats(const af_norm_stats *st, const fz_counts *c, int err)
{
	if (err < 0)
		return;
	CHECK(st->instances == c->inst);
	CHECK(st->services == c->svc);
	CHECK(st->resources == c->res);
}

int fz_run_page(const uint8_t *data, size_t size, af_page_normalizer normalize)
{
	static const af_scope scope = {"fuzz", "fuzz", "fuzz", "fuzz"};
	json_object *page = fz_parse(data, size);
	af_norm_stats st = {0};
	fz_counts counts;
	af_record_sink sink = fz_sink(&counts);
	int err;

	if (!page)
		return 0;
	err = normalize(&scope, page, &sink, &st);
	fz_check_stats(&st, &counts, err);
	json_object_put(page);
	return 0;
}
