#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aifleet/error.h"
#include "rec.h"
#include "testutil.h"

static char *dup(rec *r, const char *s)
{
	size_t n;
	char *c;

	if (!s)
		return NULL;
	n = strlen(s);
	c = strdup(s);
	assert_non_null(c);
	r->all = realloc(r->all, r->all_len + n + 2);
	assert_non_null(r->all);
	memcpy(r->all + r->all_len, s, n);
	r->all_len += n;
	r->all[r->all_len++] = '\n';
	r->all[r->all_len] = '\0';
	return c;
}

static int tick(rec *r, char kind)
{
	r->calls++;
	assert_true(r->norder < sizeof(r->order) - 1);
	r->order[r->norder++] = kind;
	r->order[r->norder] = '\0';
	if (r->fail_after > 0 && r->calls >= r->fail_after)
		return af_error_set(AF_ERR_DB, "test sink refuses");
	return 0;
}

static int on_instance(void *ctx, const af_scope *scope, const af_instance *in)
{
	rec *r = ctx;
	af_instance *c;

	assert_non_null(scope);
	assert_non_null(in->native_id);
	assert_true(r->ninst < REC_MAX);
	c = &r->inst[r->ninst++];
	*c = *in;
	c->native_id = dup(r, in->native_id);
	c->name = dup(r, in->name);
	c->status = dup(r, in->status);
	c->status_raw = dup(r, in->status_raw);
	c->charge_type = dup(r, in->charge_type);
	c->charge_type_raw = dup(r, in->charge_type_raw);
	c->zone = dup(r, in->zone);
	c->spec = dup(r, in->spec);
	c->model = dup(r, in->model);
	c->tags_json = dup(r, in->tags_json);
	c->raw_json = dup(r, in->raw_json);
	return tick(r, 'I');
}

static int on_service(void *ctx, const af_scope *scope, const af_service *in)
{
	rec *r = ctx;
	af_service *c;

	assert_non_null(in->native_id);
	assert_non_null(in->instance_id);
	assert_true(r->nsvc < REC_MAX);
	c = &r->svc[r->nsvc++];
	*c = *in;
	c->instance_id = dup(r, in->instance_id);
	c->native_id = dup(r, in->native_id);
	c->name = dup(r, in->name);
	c->model = dup(r, in->model);
	c->model_version = dup(r, in->model_version);
	c->status = dup(r, in->status);
	c->status_raw = dup(r, in->status_raw);
	c->charge_type = dup(r, in->charge_type);
	c->charge_type_raw = dup(r, in->charge_type_raw);
	c->tags_json = dup(r, in->tags_json);
	c->raw_json = dup(r, in->raw_json);
	return tick(r, 'S');
}

static int on_resource(void *ctx, const af_scope *scope, const af_resource *in)
{
	rec *r = ctx;
	af_resource *c;

	/* the record contract: owner, kind and unit are required */
	assert_non_null(in->owner_id);
	assert_non_null(in->kind);
	assert_non_null(in->unit);
	assert_true(r->nres < REC_MAX);
	c = &r->res[r->nres++];
	*c = *in;
	c->owner_id = dup(r, in->owner_id);
	c->kind = dup(r, in->kind);
	c->unit = dup(r, in->unit);
	c->gpu_model = dup(r, in->gpu_model);
	c->basis = dup(r, in->basis);
	return tick(r, 'R');
}

void rec_init(rec *r)
{
	memset(r, 0, sizeof(*r));
	r->sink.instance = on_instance;
	r->sink.service = on_service;
	r->sink.resource = on_resource;
	r->sink.ctx = r;
}

void rec_free(rec *r)
{
	for (size_t i = 0; i < r->ninst; i++) {
		af_instance *c = &r->inst[i];
		const char *s[] = {c->native_id,  c->name,        c->status,
		                   c->status_raw, c->charge_type, c->charge_type_raw,
		                   c->zone,       c->spec,        c->model,
		                   c->tags_json,  c->raw_json};
		for (size_t j = 0; j < sizeof(s) / sizeof(s[0]); j++)
			free((char *)s[j]);
	}
	for (size_t i = 0; i < r->nsvc; i++) {
		af_service *c = &r->svc[i];
		const char *s[] = {c->instance_id,     c->native_id, c->name,       c->model,
		                   c->model_version,   c->status,    c->status_raw, c->charge_type,
		                   c->charge_type_raw, c->tags_json, c->raw_json};
		for (size_t j = 0; j < sizeof(s) / sizeof(s[0]); j++)
			free((char *)s[j]);
	}
	for (size_t i = 0; i < r->nres; i++) {
		af_resource *c = &r->res[i];
		const char *s[] = {c->owner_id, c->kind, c->unit, c->gpu_model, c->basis};
		for (size_t j = 0; j < sizeof(s) / sizeof(s[0]); j++)
			free((char *)s[j]);
	}
	free(r->all);
	memset(r, 0, sizeof(*r));
}

const af_resource *rec_res_opt(const rec *r, const char *owner, const char *kind)
{
	for (size_t i = 0; i < r->nres; i++)
		if (strcmp(r->res[i].owner_id, owner) == 0 && strcmp(r->res[i].kind, kind) == 0)
			return &r->res[i];
	return NULL;
}

const af_resource *rec_res(const rec *r, const char *owner, const char *kind)
{
	const af_resource *x = rec_res_opt(r, owner, kind);

	if (!x)
		fail_msg("no resource %s of %s", kind, owner);
	return x;
}

const af_service *rec_svc(const rec *r, const char *native_id)
{
	for (size_t i = 0; i < r->nsvc; i++)
		if (strcmp(r->svc[i].native_id, native_id) == 0)
			return &r->svc[i];
	fail_msg("no service %s", native_id);
	return NULL;
}

const af_instance *rec_inst(const rec *r, const char *native_id)
{
	for (size_t i = 0; i < r->ninst; i++)
		if (strcmp(r->inst[i].native_id, native_id) == 0)
			return &r->inst[i];
	fail_msg("no instance %s", native_id);
	return NULL;
}

json_object *rec_load(const char *rel)
{
	size_t len;
	char *text = af_test_read_fixture(rel, &len);
	json_tokener *tok = json_tokener_new();
	json_object *o;

	assert_non_null(tok);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (!o)
		fail_msg("%s: %s", rel, json_tokener_error_desc(json_tokener_get_error(tok)));
	json_tokener_free(tok);
	free(text);
	return o;
}

void rec_assert_absent(const rec *r, const char *needle)
{
	if (r->all && strstr(r->all, needle))
		fail_msg("an emitted string contains [%s]", needle);
}

void rec_num_eq(af_num n, double want)
{
	double tol = 1e-9 * (fabs(want) > 1 ? fabs(want) : 1);

	assert_true(n.set);
	if (fabs(n.value - want) > tol)
		fail_msg("number %.17g, want %.17g", n.value, want);
}

void rec_num_unset(af_num n)
{
	assert_false(n.set);
}

void rec_json_eq(const char *got, const char *want)
{
	json_object *g, *w;

	assert_non_null(got);
	g = json_tokener_parse(got);
	w = json_tokener_parse(want);
	assert_non_null(g);
	assert_non_null(w);
	if (!json_object_equal(g, w))
		fail_msg("JSON differs:\n got  %s\n want %s", got, want);
	json_object_put(g);
	json_object_put(w);
}
