/*
 * Shared pieces of the normalizers: typed field access that never trusts
 * the provider's types, vocabularies, tags, raw payloads without secrets.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aifleet/error.h"
#include "aifleet/log.h"
#include "norm_internal.h"

#define NZ_COMPONENT "normalize"
/* json_tokener caps nesting at 32; embedded JSON strings are re-parsed, so
 * the copy has its own cap to stay bounded whatever the input. */
#define NZ_MAX_DEPTH  64
#define NZ_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

void nz_ctx_init(nz_ctx *c, const af_scope *scope, const af_record_sink *sink, af_norm_stats *stats,
                 af_norm_stats *fallback)
{
	static const af_scope none = {"?", "?", "?", "?"};

	memset(c, 0, sizeof(*c));
	c->scope = scope ? scope : &none;
	c->sink = sink;
	c->stats = stats ? stats : fallback;
	c->item = "page";
}

void nz_ctx_item_index(nz_ctx *c, const char *what, size_t index)
{
	snprintf(c->item_buf, sizeof(c->item_buf), "%s #%zu", what, index);
	c->item = c->item_buf;
}

static const char *s_or(const char *s)
{
	return s ? s : "?";
}

void nz_warn(nz_ctx *c, const char *field, const char *why)
{
	c->stats->warnings++;
	af_warn(NZ_COMPONENT, "%s/%s/%s/%s: %s: field %s dropped: %s", s_or(c->scope->provider),
	        s_or(c->scope->account), s_or(c->scope->region), s_or(c->scope->product), c->item,
	        field, why);
}

void nz_reject(nz_ctx *c, const char *why)
{
	c->stats->rejected++;
	af_warn(NZ_COMPONENT, "%s/%s/%s/%s: %s rejected: %s", s_or(c->scope->provider),
	        s_or(c->scope->account), s_or(c->scope->region), s_or(c->scope->product), c->item,
	        why);
}

json_object *nz_get(json_object *obj, const char *key)
{
	json_object *v = NULL;

	if (!obj || !json_object_is_type(obj, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v; /* a JSON null is a NULL json_object in json-c */
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
	size_t n;
	unsigned int cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		n = 2, cp = p[0] & 0x1F;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		n = 3, cp = p[0] & 0x0F;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/* PostgreSQL stores neither invalid UTF-8 nor NUL in text or jsonb, and
 * the loader rejects a record that has them. */
bool nz_utf8_ok(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < len;) {
		size_t n = p[i] ? utf8_seq(p + i, len - i) : 0;

		if (!n)
			return false;
		i += n;
	}
	return true;
}

/* A copy up to the first NUL, every invalid byte replaced by U+FFFD. */
static char *utf8_clean(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(len * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len && p[i];) {
		size_t n = utf8_seq(p + i, len - i);

		if (n) {
			memcpy(o, p + i, n);
			o += n;
			i += n;
		} else {
			memcpy(o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	*o = '\0';
	return out;
}

const char *nz_str(nz_ctx *c, json_object *obj, const char *key)
{
	json_object *v = nz_get(obj, key);

	if (!v)
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		nz_warn(c, key, "not a string");
		return NULL;
	}
	if (!nz_utf8_ok(json_object_get_string(v), (size_t)json_object_get_string_len(v))) {
		nz_warn(c, key, "not valid UTF-8 or holds a NUL");
		return NULL;
	}
	return json_object_get_string(v);
}

const char *nz_id(json_object *obj, const char *key)
{
	json_object *v = nz_get(obj, key);
	const char *s;

	if (!v || !json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	/* an id of blanks, with a NUL inside or not UTF-8 cannot be a key */
	if (!s || !*s || !nz_utf8_ok(s, (size_t)json_object_get_string_len(v)))
		return NULL;
	for (const char *p = s; *p; p++)
		if (!isspace((unsigned char)*p))
			return s;
	return NULL;
}

/* Numeric strings are accepted ("12", " 1.5e3 "), but not hex, inf or nan,
 * which strtod would take. */
static bool parse_numeric_string(double *out, const char *s)
{
	char *end;
	bool digit = false;

	for (const char *p = s; *p; p++) {
		if (isdigit((unsigned char)*p))
			digit = true;
		else if (!strchr("+-.eE \t\r\n", *p))
			return false;
	}
	if (!digit)
		return false;
	*out = strtod(s, &end);
	while (*end && isspace((unsigned char)*end))
		end++;
	return *end == '\0' && end != s && isfinite(*out);
}

af_num nz_num(nz_ctx *c, json_object *obj, const char *key)
{
	json_object *v = nz_get(obj, key);
	af_num n = {0, false};
	double d;

	if (!v)
		return n;
	switch (json_object_get_type(v)) {
	case json_type_int:
		/* json-c saturates integers beyond 64 bits at these values */
		if (json_object_get_uint64(v) == UINT64_MAX ||
		    json_object_get_int64(v) == INT64_MIN) {
			nz_warn(c, key, "number out of range");
			return n;
		}
		/* fall through */
	case json_type_double:
		d = json_object_get_double(v);
		if (!isfinite(d)) {
			nz_warn(c, key, "number out of range");
			return n;
		}
		n.value = d;
		n.set = true;
		return n;
	case json_type_string:
		if (!parse_numeric_string(&d, json_object_get_string(v))) {
			nz_warn(c, key, "string is not a number");
			return n;
		}
		n.value = d;
		n.set = true;
		return n;
	default:
		nz_warn(c, key, "not a number");
		return n;
	}
}

af_time nz_time(nz_ctx *c, json_object *obj, const char *key)
{
	const char *s = nz_str(c, obj, key);
	af_time t;

	if (!s)
		return AF_TIME_NULL;
	/* an empty string is how some APIs say "never" */
	if (!*s)
		return AF_TIME_NULL;
	if (af_time_parse(&t, s) < 0) {
		af_error_clear();
		nz_warn(c, key, "unparseable timestamp");
		return AF_TIME_NULL;
	}
	return t;
}

int nz_seen(json_object *set, const char *id)
{
	if (json_object_object_get_ex(set, id, NULL))
		return 1;
	if (json_object_object_add(set, id, NULL) < 0)
		return af_error_set(AF_ERR_NOMEM, "out of memory");
	return 0;
}

af_num nz_scale(af_num n, double factor)
{
	af_num r = {0, false};

	if (!n.set)
		return r;
	r.value = n.value * factor;
	r.set = isfinite(r.value);
	return r;
}

/* ---- vocabularies ---- */

typedef struct nz_map {
	const char *raw;
	const char *norm;
} nz_map;

/*
 * Raw values of all three products (compared ignoring case, '_', '-' and
 * blanks, so CREATE_FAILED = CreateFailed). docs/mapping.md lists them.
 */
static const nz_map status_map[] = {
    /* running */
    {"normal", "running"},
    {"running", "running"},
    {"resourceready", "running"},
    {"available", "running"},
    {"active", "running"},
    /* creating */
    {"creating", "creating"},
    {"instancewaiting", "creating"},
    {"pending", "creating"},
    {"waiting", "creating"},
    {"starting", "creating"},
    {"deploying", "creating"},
    {"preparing", "creating"},
    /* stopped */
    {"stopped", "stopped"},
    {"inactive", "stopped"},
    {"suspended", "stopped"},
    {"paused", "stopped"},
    /* stopping */
    {"stopping", "stopping"},
    /* updating */
    {"changing", "updating"},
    {"updating", "updating"},
    {"upgrading", "updating"},
    {"scaling", "updating"},
    {"migrating", "updating"},
    {"transforming", "updating"},
    {"flushing", "updating"},
    {"backuprecovering", "updating"},
    {"minorversionupgrading", "updating"},
    {"majorversionupgrading", "updating"},
    {"networkmodifying", "updating"},
    {"sslmodifying", "updating"},
    /* failed */
    {"createfailed", "failed"},
    {"failed", "failed"},
    {"abnormal", "failed"},
    {"error", "failed"},
    {"unavailable", "failed"},
    /* deleting */
    {"deleting", "deleting"},
    {"releasing", "deleting"},
    {"released", "deleting"},
    {"deleted", "deleting"},
    /* expired */
    {"expired", "expired"},
    {"overdue", "expired"},
    {"arrears", "expired"},
};

static const nz_map charge_map[] = {
    {"prepaid", "prepaid"},     {"prepay", "prepaid"},          {"subscription", "prepaid"},
    {"postpaid", "postpaid"},   {"postpaidbyhour", "postpaid"}, {"postpay", "postpaid"},
    {"payasyougo", "postpaid"}, {"hybridpaid", "hybrid"},
};

/* Folds "POSTPAID_BY_HOUR" to "postpaidbyhour"; false if it does not fit. */
static bool fold(char *out, size_t size, const char *raw)
{
	size_t n = 0;

	for (const char *p = raw; *p; p++) {
		if (*p == '_' || *p == '-' || isspace((unsigned char)*p))
			continue;
		if (n + 1 >= size)
			return false;
		out[n++] = (char)tolower((unsigned char)*p);
	}
	out[n] = '\0';
	return true;
}

static const char *lookup(const nz_map *map, size_t n, const char *raw)
{
	char key[40];

	if (!raw)
		return NULL;
	if (!fold(key, sizeof(key), raw))
		return "unknown";
	for (size_t i = 0; i < n; i++)
		if (strcmp(map[i].raw, key) == 0)
			return map[i].norm;
	return "unknown";
}

const char *nz_status(const char *raw)
{
	return lookup(status_map, sizeof(status_map) / sizeof(status_map[0]), raw);
}

const char *nz_charge(const char *raw)
{
	return lookup(charge_map, sizeof(charge_map) / sizeof(charge_map[0]), raw);
}

/* ---- tags ---- */

static char *dup_json(json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, NZ_JSON_FLAGS);

	return s ? strdup(s) : NULL;
}

int nz_tags(char **out, nz_ctx *c, json_object *arr, const char *field, const char *kname,
            const char *vname)
{
	json_object *tags = NULL;
	int err = 0;
	size_t n;

	*out = NULL;
	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array)) {
		nz_warn(c, field, "not an array");
		return 0;
	}
	if (!(tags = json_object_new_object()))
		return af_error_set(AF_ERR_NOMEM, "out of memory building tags");
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		json_object *t = json_object_array_get_idx(arr, i);
		json_object *k = nz_get(t, kname), *v = nz_get(t, vname), *s;
		const char *vs;

		if (!k || !json_object_is_type(k, json_type_string)) {
			nz_warn(c, field, "a tag without a string key");
			continue;
		}
		if (nz_is_secret_key(json_object_get_string(k)))
			continue;
		if (!v)
			continue; /* null value: nothing to say */
		if (json_object_is_type(v, json_type_string))
			vs = json_object_get_string(v);
		else /* 900 -> "900", true -> "true", objects as compact JSON */
			vs = json_object_to_json_string_ext(v, NZ_JSON_FLAGS);
		if (!vs || !(s = json_object_new_string(vs))) {
			err = af_error_set(AF_ERR_NOMEM, "out of memory building tags");
			goto done;
		}
		/* a repeated key: the last one wins, as in a JSON object */
		if (json_object_object_add(tags, json_object_get_string(k), s) < 0) {
			json_object_put(s);
			err = af_error_set(AF_ERR_NOMEM, "out of memory building tags");
			goto done;
		}
	}
	/* through nz_raw, so that keys and values are valid UTF-8 */
	err = nz_raw(out, tags, NULL);
done:
	json_object_put(tags);
	return err;
}

/* ---- raw payloads without secrets ---- */

bool nz_is_secret_key(const char *key)
{
	char f[40];

	if (!key || !fold(f, sizeof(f), key))
		return false;
	return strcmp(f, "apikey") == 0 || strcmp(f, "accesskeysecret") == 0 ||
	       strcmp(f, "secretkey") == 0;
}

static bool contains_secret(json_object *o, int depth);
static bool secret_pair(json_object *o);

/* A string that holds a JSON document (Hologres modelParams) may carry a
 * key too: parse it when it looks like JSON. NULL if it does not parse. */
static json_object *parse_embedded(json_object *str)
{
	const char *s = json_object_get_string(str);

	while (s && isspace((unsigned char)*s))
		s++;
	if (!s || (*s != '{' && *s != '['))
		return NULL;
	return json_tokener_parse(s);
}

static bool contains_secret(json_object *o, int depth)
{
	json_object *inner;
	bool found = false;

	if (!o || depth > NZ_MAX_DEPTH)
		return false;
	switch (json_object_get_type(o)) {
	case json_type_object: {
		if (secret_pair(o))
			return true;
		json_object_object_foreach(o, k, v)
		{
			if (nz_is_secret_key(k) || contains_secret(v, depth + 1))
				return true;
		}
		return false;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			if (contains_secret(json_object_array_get_idx(o, i), depth + 1))
				return true;
		return false;
	case json_type_string:
		if ((inner = parse_embedded(o))) {
			found = contains_secret(inner, depth + 1);
			json_object_put(inner);
		}
		return found;
	default:
		return false;
	}
}

/* A tag {"Key": "apiKey", "Value": ...} hides a secret as well as a member
 * named apiKey does. */
static bool secret_pair(json_object *o)
{
	json_object *k = nz_get(o, "Key");

	if (!k)
		k = nz_get(o, "TagKey");
	return k && json_object_is_type(k, json_type_string) &&
	       nz_is_secret_key(json_object_get_string(k));
}

static bool in_list(const char *key, const char *const *list)
{
	for (; list && *list; list++)
		if (strcmp(key, *list) == 0)
			return true;
	return false;
}

/*
 * A copy of `o` without secret members. Scalars are shared (reference
 * counted), containers rebuilt. *out may be NULL for a JSON null. Beyond
 * NZ_MAX_DEPTH a subtree becomes null rather than risk keeping a secret.
 */
static int strip(json_object **out, json_object *o, const char *const *drop, int depth)
{
	json_object *copy = NULL, *child, *inner = NULL;
	int err = 0;

	*out = NULL;
	if (!o || depth > NZ_MAX_DEPTH)
		return 0;
	switch (json_object_get_type(o)) {
	case json_type_object: {
		bool pair = secret_pair(o);

		if (!(copy = json_object_new_object()))
			goto nomem;
		json_object_object_foreach(o, k, v)
		{
			if (nz_is_secret_key(k) || in_list(k, drop))
				continue;
			if (pair && (strcmp(k, "Value") == 0 || strcmp(k, "TagValue") == 0))
				continue;
			if ((err = strip(&child, v, NULL, depth + 1)) < 0)
				goto done;
			if (!nz_utf8_ok(k, strlen(k))) {
				char *ck = utf8_clean(k, strlen(k));
				int rc = ck ? json_object_object_add(copy, ck, child) : -1;

				free(ck);
				if (rc < 0) {
					json_object_put(child);
					goto nomem;
				}
				continue;
			}
			if (json_object_object_add(copy, k, child) < 0) {
				json_object_put(child);
				goto nomem;
			}
		}
		break;
	}
	case json_type_array:
		if (!(copy = json_object_new_array()))
			goto nomem;
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			if ((err = strip(&child, json_object_array_get_idx(o, i), NULL,
			                 depth + 1)) < 0)
				goto done;
			if (json_object_array_add(copy, child) < 0) {
				json_object_put(child);
				goto nomem;
			}
		}
		break;
	case json_type_string:
		if (!nz_utf8_ok(json_object_get_string(o), (size_t)json_object_get_string_len(o))) {
			char *clean = utf8_clean(json_object_get_string(o),
			                         (size_t)json_object_get_string_len(o));

			copy = clean ? json_object_new_string(clean) : NULL;
			free(clean);
			if (!copy)
				goto nomem;
			break;
		}
		if ((inner = parse_embedded(o)) && contains_secret(inner, depth + 1)) {
			json_object *clean;
			const char *s;

			if ((err = strip(&clean, inner, NULL, depth + 1)) < 0)
				goto done;
			s = json_object_to_json_string_ext(clean, NZ_JSON_FLAGS);
			copy = s ? json_object_new_string(s) : NULL;
			json_object_put(clean);
			if (!copy)
				goto nomem;
			break;
		}
		copy = json_object_get(o);
		break;
	case json_type_double:
		/* json-c reads NaN, Infinity and 1e400 (inf); jsonb takes none
		 * of NaN/Infinity, so non-finite numbers become null */
		if (!isfinite(json_object_get_double(o)))
			break;
		copy = json_object_get(o);
		break;
	default:
		copy = json_object_get(o);
		break;
	}
	*out = copy;
	copy = NULL;
	goto done;
nomem:
	err = af_error_set(AF_ERR_NOMEM, "out of memory copying a payload");
done:
	json_object_put(copy);
	json_object_put(inner);
	return err;
}

int nz_raw(char **out, json_object *obj, const char *const *drop)
{
	json_object *copy = NULL;
	int err;

	*out = NULL;
	if ((err = strip(&copy, obj, drop, 0)) < 0)
		return err;
	if (!copy)
		return 0;
	if (!(*out = dup_json(copy)))
		err = af_error_set(AF_ERR_NOMEM, "out of memory serializing a payload");
	json_object_put(copy);
	return err;
}

int nz_raw_merge(char **out, json_object *primary, json_object *secondary, const char *const *drop)
{
	json_object *merged = NULL;
	int err = 0;

	*out = NULL;
	if (!(merged = json_object_new_object()))
		return af_error_set(AF_ERR_NOMEM, "out of memory merging payloads");
	/* secondary first, so that primary's members overwrite them */
	json_object *parts[2] = {secondary, primary};
	for (int i = 0; i < 2; i++) {
		if (!parts[i] || !json_object_is_type(parts[i], json_type_object))
			continue;
		json_object_object_foreach(parts[i], k, v)
		{
			if (in_list(k, drop) || nz_is_secret_key(k))
				continue;
			if (json_object_object_add(merged, k, json_object_get(v)) < 0) {
				json_object_put(v);
				err = af_error_set(AF_ERR_NOMEM, "out of memory merging payloads");
				goto done;
			}
		}
	}
	err = nz_raw(out, merged, NULL);
done:
	json_object_put(merged);
	return err;
}

/* ---- sink ---- */

int nz_emit_instance(nz_ctx *c, const af_instance *inst)
{
	c->stats->instances++;
	if (!c->sink || !c->sink->instance)
		return 0;
	return c->sink->instance(c->sink->ctx, c->scope, inst);
}

int nz_emit_service(nz_ctx *c, const af_service *svc)
{
	c->stats->services++;
	if (!c->sink || !c->sink->service)
		return 0;
	return c->sink->service(c->sink->ctx, c->scope, svc);
}

int nz_emit_resource(nz_ctx *c, const af_resource *res)
{
	c->stats->resources++;
	if (!c->sink || !c->sink->resource)
		return 0;
	return c->sink->resource(c->sink->ctx, c->scope, res);
}
