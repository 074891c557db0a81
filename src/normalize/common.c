/*
 * Shared pieces of the normalizers: typed field access that never trusts
 * the provider's types, vocabularies, tags, and raw payloads that are
 * valid jsonb without secrets.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aifleet/buf.h"
#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/secret.h"
#include "norm_internal.h"

#define NZ_COMPONENT "normalize"
#define REPLACEMENT  "\xEF\xBF\xBD" /* U+FFFD */

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

void nz_ctx_free(nz_ctx *c)
{
	for (size_t i = 0; i < c->nowned; i++)
		free(c->owned[i]);
	free(c->owned);
	c->owned = NULL;
	c->nowned = c->owned_cap = 0;
}

void nz_item_begin(nz_ctx *c)
{
	c->bad_field = NULL;
	c->bad_why = NULL;
}

void nz_ctx_item_index(nz_ctx *c, const char *what, size_t index)
{
	snprintf(c->item_buf, sizeof(c->item_buf), "%s #%zu", what, index);
	c->item = c->item_buf;
	nz_item_begin(c);
}

/* Keeps `s` until nz_ctx_free; NULL (and c->err) when out of memory. */
static char *keep(nz_ctx *c, char *s)
{
	if (!s)
		goto nomem;
	if (c->nowned == c->owned_cap) {
		size_t cap = c->owned_cap ? c->owned_cap * 2 : 16;
		char **p = realloc(c->owned, cap * sizeof(*p));

		if (!p) {
			free(s);
			goto nomem;
		}
		c->owned = p;
		c->owned_cap = cap;
	}
	c->owned[c->nowned++] = s;
	return s;
nomem:
	if (!c->err)
		c->err = af_error_oom();
	return NULL;
}

void nz_warn(nz_ctx *c, const char *field, const char *why)
{
	char scope[512];

	c->stats->warnings++;
	af_warn(NZ_COMPONENT, "%s: %s: field %s: %s", af_scope_name(scope, sizeof(scope), c->scope),
	        c->item, field, why);
}

void nz_reject(nz_ctx *c, const char *field, const char *why)
{
	char scope[512];

	c->stats->rejected++;
	af_warn(NZ_COMPONENT, "%s: %s rejected: %s%s%s%s",
	        af_scope_name(scope, sizeof(scope), c->scope), c->item, field ? "field " : "",
	        field ? field : "", field ? ": " : "", why);
}

void nz_bad(nz_ctx *c, const char *field, const char *why)
{
	if (!c->bad_field) {
		c->bad_field = field;
		c->bad_why = why;
	}
}

int nz_item_check(nz_ctx *c)
{
	if (c->err)
		return c->err;
	if (!c->bad_field)
		return 1;
	nz_reject(c, c->bad_field, c->bad_why);
	nz_item_begin(c);
	return 0;
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

json_object *nz_obj(nz_ctx *c, json_object *obj, const char *key)
{
	json_object *v = nz_get(obj, key);

	if (v && !json_object_is_type(v, json_type_object)) {
		nz_bad(c, key, "not an object");
		return NULL;
	}
	return v;
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

/* PostgreSQL stores neither invalid UTF-8 nor NUL in text or jsonb. */
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

/* A copy with every invalid byte and every NUL replaced by U+FFFD. */
static char *utf8_repair(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out = malloc(len * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t n = p[i] ? utf8_seq(p + i, len - i) : 0;

		if (n) {
			memcpy(o, p + i, n);
			o += n;
			i += n;
		} else {
			memcpy(o, REPLACEMENT, 3);
			o += 3;
			i++;
		}
	}
	*o = '\0';
	return out;
}

/* A present string member of at most `max` bytes, or NULL: unset when
 * missing or null, the item marked bad (naming `limit`) when of another
 * type or too long. */
static const char *string_member(nz_ctx *c, json_object *obj, const char *key, size_t max,
                                 const char *limit, size_t *len)
{
	json_object *v = nz_get(obj, key);

	if (!v)
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		nz_bad(c, key, "not a string");
		return NULL;
	}
	*len = (size_t)json_object_get_string_len(v);
	if (*len > max) {
		nz_bad(c, key, limit);
		return NULL;
	}
	return json_object_get_string(v);
}

const char *nz_str(nz_ctx *c, json_object *obj, const char *key)
{
	size_t len = 0;
	const char *s = string_member(c, obj, key, NZ_MAX_TEXT, "longer than 64 KiB", &len);

	if (!s)
		return NULL;
	if (!nz_utf8_ok(s, len)) {
		if (!(s = keep(c, utf8_repair(s, len))))
			return NULL;
		len = strlen(s);
		nz_warn(c, key, "invalid UTF-8 or NUL replaced by U+FFFD");
	}
	if (af_secret_text(s, len)) {
		if (!(s = keep(c, af_secret_redact(s, len, NULL))))
			return NULL;
		nz_warn(c, key, "a secret-looking value redacted");
	}
	return s;
}

const char *nz_code(nz_ctx *c, json_object *obj, const char *key)
{
	size_t len = 0;
	const char *s = string_member(c, obj, key, NZ_MAX_ID, "longer than 512 bytes", &len);

	if (!s)
		return NULL;
	/* a repaired code is another code: it could not be read */
	if (!nz_utf8_ok(s, len)) {
		nz_bad(c, key, "not valid UTF-8 or holds a NUL");
		return NULL;
	}
	if (af_secret_text(s, len)) {
		nz_bad(c, key, "holds a secret-looking value");
		return NULL;
	}
	return s;
}

const char *nz_id(json_object *obj, const char *key, const char **why)
{
	json_object *v = nz_get(obj, key);
	const char *s;
	size_t len;

	*why = NULL;
	if (!v)
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		*why = "not a string";
		return NULL;
	}
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	/* an id of blanks, with a NUL inside or not UTF-8 cannot be a key */
	if (len > NZ_MAX_ID)
		*why = "longer than 512 bytes";
	else if (!nz_utf8_ok(s, len))
		*why = "not valid UTF-8 or holds a NUL";
	else if (af_secret_text(s, len))
		*why = "holds a secret-looking value";
	if (*why)
		return NULL;
	for (const char *p = s; *p; p++)
		if (!isspace((unsigned char)*p))
			return s;
	*why = "empty";
	return NULL;
}

/* Numeric strings are accepted ("12", " 1.5e3 "), but not hex, inf or nan,
 * which strtod would take. */
static bool parse_numeric_string(double *out, const char *s, size_t len)
{
	char *end;
	bool digit = false;

	if (strlen(s) != len)
		return false; /* a NUL inside */
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
			nz_bad(c, key, "number out of range");
			return n;
		}
		/* fall through */
	case json_type_double:
		d = json_object_get_double(v);
		if (!isfinite(d)) {
			nz_bad(c, key, "number out of range");
			return n;
		}
		break;
	case json_type_string:
		if (!parse_numeric_string(&d, json_object_get_string(v),
		                          (size_t)json_object_get_string_len(v))) {
			nz_bad(c, key, "string is not a number");
			return n;
		}
		break;
	default:
		nz_bad(c, key, "not a number");
		return n;
	}
	n.value = d;
	n.set = true;
	return n;
}

/* The timestamp, AF_TIME_NULL for "not reported", or *why. */
static af_time read_time(json_object *obj, const char *key, const char **why)
{
	json_object *v = nz_get(obj, key);
	const char *s;
	size_t len;
	af_time t;

	*why = NULL;
	if (!v)
		return AF_TIME_NULL;
	if (!json_object_is_type(v, json_type_string)) {
		*why = "not a string";
		return AF_TIME_NULL;
	}
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	/* an empty string is how some APIs say "never" */
	if (!len)
		return AF_TIME_NULL;
	if (len > 64 || strlen(s) != len || af_time_parse(&t, s) < 0) {
		af_error_clear();
		*why = "unparseable timestamp";
		return AF_TIME_NULL;
	}
	return t;
}

af_time nz_time(nz_ctx *c, json_object *obj, const char *key)
{
	const char *why;
	af_time t = read_time(obj, key, &why);

	if (why)
		nz_bad(c, key, why);
	return t;
}

void nz_time_check(nz_ctx *c, json_object *obj, const char *key)
{
	const char *why;

	(void)read_time(obj, key, &why);
	if (why)
		nz_warn(c, key, why);
}

int nz_seen(json_object *set, const char *id)
{
	if (json_object_object_get_ex(set, id, NULL))
		return 1;
	if (json_object_object_add(set, id, NULL) < 0)
		return af_error_oom();
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

/* ---- canonical JSON for jsonb ---- */

/*
 * json-c re-emits numbers as it read them ("256.", "01.5", "-.5", "1.e5"),
 * which jsonb refuses, and keeps invalid UTF-8. This writer emits only
 * what PostgreSQL's JSON grammar accepts.
 */
typedef struct nz_out {
	af_buf buf;
	unsigned repairs; /* bytes replaced by U+FFFD */
} nz_out;

static int put(nz_out *w, const char *s, size_t n)
{
	return af_buf_append(&w->buf, s, n);
}

static int put_string(nz_out *w, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t start = 0, i = 0;
	int err;

	if ((err = put(w, "\"", 1)) < 0)
		return err;
	while (i < len) {
		const char *rep;
		char esc[8];
		size_t n = 1;

		if (p[i] >= 0x80 && (n = utf8_seq(p + i, len - i))) {
			i += n;
			continue;
		}
		if (p[i] >= 0x80 || p[i] == 0) {
			/* jsonb refuses \u0000 too */
			rep = REPLACEMENT;
			n = 1;
			w->repairs++;
		} else if (p[i] == '"') {
			rep = "\\\"";
		} else if (p[i] == '\\') {
			rep = "\\\\";
		} else if (p[i] == '\n') {
			rep = "\\n";
		} else if (p[i] == '\t') {
			rep = "\\t";
		} else if (p[i] == '\r') {
			rep = "\\r";
		} else if (p[i] < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
			rep = esc;
		} else {
			i++;
			continue;
		}
		if ((err = put(w, s + start, i - start)) < 0 ||
		    (err = put(w, rep, strlen(rep))) < 0)
			return err;
		i += n;
		start = i;
	}
	if ((err = put(w, s + start, i - start)) < 0)
		return err;
	return put(w, "\"", 1);
}

/* The shortest %g that reads back as `d`, in JSON's number grammar:
 * "1e+308" -> "1e308", "1.5e-07" -> "1.5e-7", a locale's ',' -> '.'. */
static int put_double(nz_out *w, double d)
{
	char tmp[40], out[40];
	size_t n = 0;

	if (!isfinite(d))
		return put(w, "null", 4);
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	for (const char *p = tmp; *p; p++) {
		if (isdigit((unsigned char)*p) || *p == '-') {
			out[n++] = *p;
		} else if (*p == 'e' || *p == 'E') {
			out[n++] = 'e';
			if (p[1] == '+' || p[1] == '-')
				if (*++p == '-')
					out[n++] = '-';
			while (p[1] == '0' && isdigit((unsigned char)p[2]))
				p++;
		} else if (n && out[n - 1] != '.') {
			out[n++] = '.';
		}
	}
	return put(w, out, n);
}

static int put_json(nz_out *w, json_object *o, int depth)
{
	char num[32];
	int err;

	/* the secret copy cut the tree at AF_SECRET_MAX_DEPTH already */
	if (!o || depth > AF_SECRET_MAX_DEPTH + 1)
		return put(w, "null", 4);
	switch (json_object_get_type(o)) {
	case json_type_boolean:
		return json_object_get_boolean(o) ? put(w, "true", 4) : put(w, "false", 5);
	case json_type_int: {
		int64_t i = json_object_get_int64(o);
		uint64_t u = json_object_get_uint64(o);

		/* json-c saturates integers beyond 64 bits at these values */
		if (u == UINT64_MAX || i == INT64_MIN)
			return put(w, "null", 4);
		if (i == INT64_MAX && u > (uint64_t)INT64_MAX)
			snprintf(num, sizeof(num), "%llu", (unsigned long long)u);
		else
			snprintf(num, sizeof(num), "%lld", (long long)i);
		return put(w, num, strlen(num));
	}
	case json_type_double:
		return put_double(w, json_object_get_double(o));
	case json_type_string:
		return put_string(w, json_object_get_string(o),
		                  (size_t)json_object_get_string_len(o));
	case json_type_array:
		if ((err = put(w, "[", 1)) < 0)
			return err;
		for (size_t i = 0; i < json_object_array_length(o); i++)
			if ((i && (err = put(w, ",", 1)) < 0) ||
			    (err = put_json(w, json_object_array_get_idx(o, i), depth + 1)) < 0)
				return err;
		return put(w, "]", 1);
	case json_type_object: {
		bool first = true;

		if ((err = put(w, "{", 1)) < 0)
			return err;
		json_object_object_foreach(o, k, v)
		{
			if ((!first && (err = put(w, ",", 1)) < 0) ||
			    (err = put_string(w, k, strlen(k))) < 0 || (err = put(w, ":", 1)) < 0 ||
			    (err = put_json(w, v, depth + 1)) < 0)
				return err;
			first = false;
		}
		return put(w, "}", 1);
	}
	default:
		return put(w, "null", 4);
	}
}

/* *out: `o` as canonical JSON, at most `max` bytes. Returns 0,
 * AF_ERR_LIMIT or AF_ERR_NOMEM; *repairs counts U+FFFD replacements. */
static int json_text(char **out, json_object *o, size_t max, unsigned *repairs)
{
	nz_out w = {AF_BUF_INIT, 0};
	int err;

	*out = NULL;
	af_buf_init(&w.buf, max);
	if ((err = put_json(&w, o, 0)) < 0) {
		af_buf_free(&w.buf);
		return err;
	}
	*out = af_buf_detach(&w.buf);
	if (repairs)
		*repairs += w.repairs;
	return 0;
}

/* Serializes a copy already without secrets into *out (NULL for NULL). */
static int finish(nz_ctx *c, char **out, json_object *clean, size_t max, const char *field,
                  const char *too_big)
{
	unsigned repairs = 0;
	int err;

	*out = NULL;
	if (!clean)
		return 0;
	err = json_text(out, clean, max, &repairs);
	if (err == AF_ERR_LIMIT) {
		af_error_clear();
		nz_bad(c, field, too_big);
		return 0;
	}
	if (err < 0)
		return err;
	if (repairs)
		nz_warn(c, field, "invalid UTF-8 or NUL replaced by U+FFFD");
	return 0;
}

/* ---- tags ---- */

/* Tags are strings: a value the secret policy nulled (one it could not
 * inspect, fail-closed) is dropped with its key, not kept as null. */
static void drop_null_members(json_object *o)
{
	bool again = true;

	while (again) {
		char *gone = NULL;

		json_object_object_foreach(o, k, v)
		{
			if (!v) {
				gone = strdup(k); /* the key dies with its member */
				break;
			}
		}
		again = gone != NULL;
		if (gone)
			json_object_object_del(o, gone);
		free(gone);
	}
}

int nz_tags(nz_ctx *c, char **out, json_object *arr, const char *field, const char *kname,
            const char *vname)
{
	json_object *tags = NULL, *clean = NULL;
	int err = 0;
	size_t n;

	*out = NULL;
	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array)) {
		nz_bad(c, field, "not an array");
		return 0;
	}
	if (!(tags = json_object_new_object()))
		return af_error_set(AF_ERR_NOMEM, "out of memory building tags");
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		json_object *t = json_object_array_get_idx(arr, i), *k, *v, *s = NULL;
		const char *ks;
		char *fixed = NULL, *vs = NULL;
		size_t klen;

		if (!t || !json_object_is_type(t, json_type_object)) {
			nz_bad(c, field, "a tag that is not an object");
			goto done;
		}
		k = nz_get(t, kname);
		v = nz_get(t, vname);
		if (!k || !json_object_is_type(k, json_type_string)) {
			nz_bad(c, field, "a tag without a string key");
			goto done;
		}
		if (!v)
			continue; /* null value: nothing to say */
		ks = json_object_get_string(k);
		klen = (size_t)json_object_get_string_len(k);
		/* a key cut at a NUL would be another key */
		if (!nz_utf8_ok(ks, klen)) {
			if (!(fixed = utf8_repair(ks, klen)))
				goto nomem;
			ks = fixed;
			nz_warn(c, field, "invalid UTF-8 or NUL replaced by U+FFFD");
		}
		if (json_object_is_type(v, json_type_string)) {
			s = json_object_get(v);
		} else { /* 900 -> "900", true -> "true", objects as compact JSON */
			err = json_text(&vs, v, NZ_MAX_TAGS, NULL);
			if (err == AF_ERR_LIMIT) {
				af_error_clear();
				free(fixed);
				err = 0;
				nz_bad(c, field, "tags larger than 64 KiB");
				goto done;
			}
			if (err < 0 || !(s = json_object_new_string(vs))) {
				free(fixed);
				free(vs);
				goto nomem;
			}
			free(vs);
		}
		/* a repeated key: the last one wins, as in a JSON object */
		err = json_object_object_add(tags, ks, s);
		free(fixed);
		if (err < 0) {
			json_object_put(s);
			goto nomem;
		}
	}
	if ((err = af_secret_copy(&clean, tags)) < 0)
		goto done;
	drop_null_members(clean);
	err = finish(c, out, clean, NZ_MAX_TAGS, field, "tags larger than 64 KiB");
	goto done;
nomem:
	err = af_error_set(AF_ERR_NOMEM, "out of memory building tags");
done:
	json_object_put(clean);
	json_object_put(tags);
	return err;
}

/* ---- raw payloads ---- */

static bool in_list(const char *key, const char *const *list)
{
	for (; list && *list; list++)
		if (strcmp(key, *list) == 0)
			return true;
	return false;
}

/* Adds the members of `from` not in `drop` to `to` (shared, not copied). */
static int add_members(json_object *to, json_object *from, const char *const *drop)
{
	if (!from || !json_object_is_type(from, json_type_object))
		return 0;
	json_object_object_foreach(from, k, v)
	{
		if (in_list(k, drop))
			continue;
		if (json_object_object_add(to, k, json_object_get(v)) < 0) {
			json_object_put(v);
			return af_error_set(AF_ERR_NOMEM, "out of memory copying a payload");
		}
	}
	return 0;
}

static int raw_of(nz_ctx *c, char **out, json_object *obj)
{
	json_object *clean = NULL;
	int err;

	*out = NULL;
	if ((err = af_secret_copy(&clean, obj)) < 0)
		return err;
	err = finish(c, out, clean, NZ_MAX_RAW, "raw", "raw payload larger than 1 MiB");
	json_object_put(clean);
	return err;
}

int nz_raw(nz_ctx *c, char **out, json_object *obj, const char *const *drop)
{
	json_object *top;
	int err;

	if (!drop || !obj || !json_object_is_type(obj, json_type_object))
		return raw_of(c, out, obj);
	*out = NULL;
	if (!(top = json_object_new_object()))
		return af_error_set(AF_ERR_NOMEM, "out of memory copying a payload");
	if ((err = add_members(top, obj, drop)) == 0)
		err = raw_of(c, out, top);
	json_object_put(top);
	return err;
}

int nz_raw_merge(nz_ctx *c, char **out, json_object *primary, json_object *secondary,
                 const char *const *drop)
{
	json_object *merged;
	int err;

	*out = NULL;
	if (!(merged = json_object_new_object()))
		return af_error_set(AF_ERR_NOMEM, "out of memory merging payloads");
	/* secondary first, so that primary's members overwrite them */
	if ((err = add_members(merged, secondary, drop)) == 0 &&
	    (err = add_members(merged, primary, drop)) == 0)
		err = raw_of(c, out, merged);
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

int nz_emit_resources(nz_ctx *c, const af_resource *res, size_t n)
{
	int err;

	for (size_t i = 0; i < n; i++)
		if ((err = nz_emit_resource(c, &res[i])) < 0)
			return err;
	return 0;
}

int nz_emit_service_item(nz_ctx *c, af_service *s, json_object *svc, const af_resource *res,
                         size_t nres)
{
	char *raw = NULL;
	int err;

	if ((err = nz_raw(c, &raw, svc, NULL)) < 0)
		goto done;
	s->raw_json = raw;
	if ((err = nz_item_check(c)) <= 0)
		goto done;
	if ((err = nz_emit_service(c, s)) < 0)
		goto done;
	err = nz_emit_resources(c, res, nres);
done:
	s->raw_json = NULL;
	free(raw);
	return err < 0 ? err : 0;
}
