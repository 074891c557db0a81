/*
 * The entities' column tables, and what is generated from them: validation,
 * the COPY row and content hash, the staging DDL and the merge lists.
 *
 * The content hash of a record is SHA-256 over: the entity code, the scope
 * columns, then the entity's hashed columns, in table order, each as
 * hash_bytes encodes it. It is what decides "changed" against every
 * database already loaded, so the order of a table's rows is fixed: a new
 * column goes at the end, and (being hashed) changes every hash of its
 * entity once -- the next run then rewrites each of those rows, with a
 * diff naming only the columns whose values changed.
 */
#include "columns.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aifleet/error.h"

/* Natural-key parts are indexed by btree, whose entries PostgreSQL caps at
 * about 2.7 kB: a longer key would fail the whole merge, so the record is
 * rejected alone. No real id comes near this. */
#define KEY_MAX 1024

/* af_time range PostgreSQL and gmtime agree on: years 1..9999. */
#define TIME_MIN (-62135596800LL * 1000000LL)
#define TIME_MAX (253402300799LL * 1000000LL)

typedef enum col_type {
	TYPE_TEXT,        /* const char *; NULL is SQL NULL */
	TYPE_TIME,        /* af_time; AF_TIME_NULL is SQL NULL */
	TYPE_NUMBER,      /* af_num, finite and non-negative; unset is SQL NULL */
	TYPE_JSON_OBJECT, /* const char *: a JSON object (tags) */
	TYPE_JSON,        /* const char *: any JSON value (raw) */
	TYPE_OWNER_KIND,  /* af_owner_kind, stored as 'instance' or 'service' */
} col_type;

static const struct {
	const char *staged; /* its type in af_stage */
	const char *cast;   /* from the staged value to aifleet.<type>'s type */
} types[] = {
	[TYPE_TEXT] = {"text", ""},
	[TYPE_TIME] = {"timestamptz", ""},
	[TYPE_NUMBER] = {"float8", ""},
	/* JSON stays text in staging: it is validated in C, and only rows
	 * that are inserted or updated pay for the jsonb conversion. */
	[TYPE_JSON_OBJECT] = {"text", "::jsonb"},
	[TYPE_JSON] = {"text", "::jsonb"},
	[TYPE_OWNER_KIND] = {"text", ""},
};

enum col_flags {
	KEY = 1,      /* part of the natural key */
	REQUIRED = 2, /* must be there: text non-empty, a number or time set */
	BOUNDED = 4,  /* at most KEY_MAX bytes: it is in a btree index */
	HASHED = 8,   /* part of content_hash */
};

struct af_column {
	const char *name;  /* in af_stage, m_<type> and aifleet.<type> */
	col_type type;
	size_t offset;     /* of the member in the record */
	const char *field; /* the member's name, as rejections say it */
	unsigned flags;
	const char *gloss; /* said after `field` when a REQUIRED one is missing */
};

/*
 * COL_TEXT(af_service, model) gives the type, offset and field of a
 * column; the build fails if the member's C type does not match the column
 * type (_Generic has no default).
 */
#define MEMBER(rec, member, ctype)                                                                 \
	offsetof(rec, member) + 0 * sizeof(char[_Generic(((rec *)0)->member, ctype: 1)]), #member
#define COL_TEXT(rec, m)        TYPE_TEXT, MEMBER(rec, m, const char *)
#define COL_TIME(rec, m)        TYPE_TIME, MEMBER(rec, m, af_time)
#define COL_NUMBER(rec, m)      TYPE_NUMBER, MEMBER(rec, m, af_num)
#define COL_JSON_OBJECT(rec, m) TYPE_JSON_OBJECT, MEMBER(rec, m, const char *)
#define COL_JSON(rec, m)        TYPE_JSON, MEMBER(rec, m, const char *)
#define COL_OWNER_KIND(rec, m)  TYPE_OWNER_KIND, MEMBER(rec, m, af_owner_kind)

/* Every entity starts with these, read from the record's af_scope. */
static const af_column scope_columns[] = {
	{"provider", COL_TEXT(af_scope, provider), KEY | REQUIRED | HASHED, NULL},
	{"account", COL_TEXT(af_scope, account), KEY | REQUIRED | HASHED, NULL},
	{"region", COL_TEXT(af_scope, region), REQUIRED | HASHED, NULL},
	{"product", COL_TEXT(af_scope, product), KEY | REQUIRED | HASHED, NULL},
};

/*
 * The entities. A row: the column, its type and the record member it is
 * read from, its flags, the gloss. The rows' order is the content hash's
 * order (see the top of this file): add at the end, never reorder.
 */
/* clang-format off */
static const af_column instance_columns[] = {
	{"native_id",       COL_TEXT(af_instance, native_id),        KEY | REQUIRED | BOUNDED | HASHED, NULL},
	{"name",            COL_TEXT(af_instance, name),             HASHED,                            NULL},
	{"status",          COL_TEXT(af_instance, status),           HASHED,                            NULL},
	{"status_raw",      COL_TEXT(af_instance, status_raw),       HASHED,                            NULL},
	{"charge_type",     COL_TEXT(af_instance, charge_type),      HASHED,                            NULL},
	{"charge_type_raw", COL_TEXT(af_instance, charge_type_raw),  HASHED,                            NULL},
	{"zone",            COL_TEXT(af_instance, zone),             HASHED,                            NULL},
	{"spec",            COL_TEXT(af_instance, spec),             HASHED,                            NULL},
	{"model",           COL_TEXT(af_instance, model),            HASHED,                            NULL},
	{"created_at",      COL_TIME(af_instance, created_at),       HASHED,                            NULL},
	{"updated_at",      COL_TIME(af_instance, updated_at),       HASHED,                            NULL},
	{"expires_at",      COL_TIME(af_instance, expires_at),       HASHED,                            NULL},
	{"tags",            COL_JSON_OBJECT(af_instance, tags_json), HASHED,                            NULL},
	{"raw",             COL_JSON(af_instance, raw_json),         HASHED,                            NULL},
};

static const af_column service_columns[] = {
	{"native_id",          COL_TEXT(af_service, native_id),        KEY | REQUIRED | BOUNDED | HASHED, NULL},
	{"instance_native_id", COL_TEXT(af_service, instance_id),      REQUIRED | BOUNDED | HASHED,
	 "the owning instance"},
	{"name",               COL_TEXT(af_service, name),             HASHED,                            NULL},
	{"status",             COL_TEXT(af_service, status),           HASHED,                            NULL},
	{"status_raw",         COL_TEXT(af_service, status_raw),       HASHED,                            NULL},
	{"charge_type",        COL_TEXT(af_service, charge_type),      HASHED,                            NULL},
	{"charge_type_raw",    COL_TEXT(af_service, charge_type_raw),  HASHED,                            NULL},
	{"model",              COL_TEXT(af_service, model),            HASHED,                            NULL},
	{"model_version",      COL_TEXT(af_service, model_version),    HASHED,                            NULL},
	{"replicas",           COL_NUMBER(af_service, replicas),       HASHED,                            NULL},
	{"created_at",         COL_TIME(af_service, created_at),       HASHED,                            NULL},
	{"updated_at",         COL_TIME(af_service, updated_at),       HASHED,                            NULL},
	{"tags",               COL_JSON_OBJECT(af_service, tags_json), HASHED,                            NULL},
	{"raw",                COL_JSON(af_service, raw_json),         HASHED,                            NULL},
};

static const af_column resource_columns[] = {
	{"owner_kind",      COL_OWNER_KIND(af_resource, owner_kind), KEY | HASHED,                      NULL},
	{"owner_native_id", COL_TEXT(af_resource, owner_id),         KEY | REQUIRED | BOUNDED | HASHED, NULL},
	{"kind",            COL_TEXT(af_resource, kind),             KEY | REQUIRED | BOUNDED | HASHED, NULL},
	{"capacity",        COL_NUMBER(af_resource, capacity),       HASHED,                            NULL},
	{"used",            COL_NUMBER(af_resource, used),           HASHED,                            NULL},
	{"per_replica",     COL_NUMBER(af_resource, per_replica),    HASHED,                            NULL},
	{"unit",            COL_TEXT(af_resource, unit),             REQUIRED | HASHED,                 NULL},
	{"gpu_model",       COL_TEXT(af_resource, gpu_model),        HASHED,                            NULL},
	{"basis",           COL_TEXT(af_resource, basis),            HASHED,                            NULL},
};
/* clang-format on */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const af_entity af_entities[AF_NENTITIES] = {
	[AF_ENTITY_INSTANCE] = {"instance", "aifleet.instance", 'i', instance_columns,
				COUNT(instance_columns), "", "false", {{NULL, NULL, NULL, -1}}},
	[AF_ENTITY_SERVICE] = {"service", "aifleet.service", 's', service_columns,
			       COUNT(service_columns),
			       " LEFT JOIN aifleet.instance o ON o.provider = s.provider"
			       " AND o.account = s.account AND o.product = s.product"
			       " AND o.native_id = s.instance_native_id",
			       "o.id IS NULL",
			       {{"instance_id", "o.id", "aifleet.instance", AF_ENTITY_INSTANCE}}},
	[AF_ENTITY_RESOURCE] = {"resource", "aifleet.resource", 'r', resource_columns,
				COUNT(resource_columns),
				" LEFT JOIN aifleet.instance oi ON s.owner_kind = 'instance'"
				" AND oi.provider = s.provider AND oi.account = s.account"
				" AND oi.product = s.product AND oi.native_id = s.owner_native_id"
				" LEFT JOIN aifleet.service os ON s.owner_kind = 'service'"
				" AND os.provider = s.provider AND os.account = s.account"
				" AND os.product = s.product AND os.native_id = s.owner_native_id",
				"oi.id IS NULL AND os.id IS NULL",
				{{"instance_id", "oi.id", "aifleet.instance", AF_ENTITY_INSTANCE},
				 {"service_id", "os.id", "aifleet.service", AF_ENTITY_SERVICE}}},
};

/* ---- reading a record's fields ------------------------------------------ */

static const void *member(const af_column *c, const void *rec)
{
	return (const char *)rec + c->offset;
}

static const char *owner_kind_name(af_owner_kind k)
{
	switch (k) {
	case AF_OWNER_INSTANCE: return "instance";
	case AF_OWNER_SERVICE: return "service";
	}
	return NULL;
}

/* The column as text, for the text-like types (JSON included); NULL for
 * an unknown owner kind. */
static const char *text_of(const af_column *c, const void *rec)
{
	if (c->type == TYPE_OWNER_KIND)
		return owner_kind_name(*(const af_owner_kind *)member(c, rec));
	return *(const char *const *)member(c, rec);
}

static bool is_text_like(const af_column *c)
{
	return c->type != TYPE_TIME && c->type != TYPE_NUMBER;
}

static af_time time_of(const af_column *c, const void *rec)
{
	return *(const af_time *)member(c, rec);
}

static af_num number_of(const af_column *c, const void *rec)
{
	return *(const af_num *)member(c, rec);
}

static bool is_missing(const af_column *c, const void *rec)
{
	const char *s;

	switch (c->type) {
	case TYPE_TIME: return time_of(c, rec) == AF_TIME_NULL;
	case TYPE_NUMBER: return !number_of(c, rec).set;
	default: s = text_of(c, rec); return !s || !*s;
	}
}

/* ---- validation ---------------------------------------------------------- */

/* The end of the multi-byte UTF-8 character at s (a byte >= 0x80), or
 * NULL if it is not one: a bad lead byte, a missing continuation byte (the
 * terminator is none), an overlong form, a surrogate or beyond U+10FFFF. */
static const unsigned char *utf8_char(const unsigned char *s)
{
	unsigned char c = *s;
	int n;
	unsigned int cp, min;

	if ((c & 0xe0) == 0xc0) {
		n = 1, cp = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 2, cp = c & 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 3, cp = c & 0x07, min = 0x10000;
	} else {
		return NULL;
	}
	s++;
	while (n-- > 0) {
		if ((*s & 0xc0) != 0x80)
			return NULL;
		cp = (cp << 6) | (*s++ & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return NULL;
	return s;
}

/* Structural UTF-8 check (no overlongs, no surrogates): PostgreSQL refuses
 * invalid UTF-8 in COPY, which would fail the whole run instead of one record. */
static bool utf8_valid(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	if (!s)
		return true;
	for (;;) {
		/* ASCII, 1..0x7f, in one test per byte: most text is all of it. */
		while ((unsigned char)(*s - 1) < 0x7f)
			s++;
		if (*s == 0)
			return true;
		if (!(s = utf8_char(s)))
			return false;
	}
}

/* True if the JSON text has a \u0000 escape. An escaped backslash followed
 * by "u0000" (the six characters \\u0000 in the text) is not one: count
 * the backslashes before the 'u'; an odd number makes an escape. */
static bool has_nul_escape(const char *s)
{
	for (const char *p = strstr(s, "u0000"); p; p = strstr(p + 1, "u0000")) {
		size_t slashes = 0;

		while (p - slashes > s && p[-(ptrdiff_t)slashes - 1] == '\\')
			slashes++;
		if (slashes % 2 == 1)
			return true;
	}
	return false;
}

/* NULL or valid JSON (an object when want_object); returns a reason or NULL. */
static const char *json_problem(json_tokener *tok, const char *s, bool want_object)
{
	json_object *obj;
	enum json_tokener_error jerr;
	size_t len;
	const char *why = NULL;

	if (!s)
		return NULL;
	len = strlen(s);
	/* jsonb cannot store \u0000; json-c would accept it. */
	if (has_nul_escape(s))
		return "contains \\u0000, which PostgreSQL jsonb cannot store";
	json_tokener_reset(tok);
	obj = json_tokener_parse_ex(tok, s, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!obj || jerr != json_tokener_success)
		why = jerr == json_tokener_continue ? "truncated JSON" : json_tokener_error_desc(jerr);
	else if (json_tokener_get_parse_end(tok) != len)
		why = "trailing characters after the JSON value";
	else if (want_object && !json_object_is_type(obj, json_type_object))
		why = "not a JSON object";
	json_object_put(obj);
	return why;
}

static const char *number_problem(af_num n)
{
	if (!n.set)
		return NULL;
	if (!isfinite(n.value))
		return "is not a finite number";
	if (n.value < 0)
		return "is negative";
	return NULL;
}

static bool time_ok(af_time t)
{
	return t == AF_TIME_NULL || (t >= TIME_MIN && t <= TIME_MAX);
}

/*
 * The checks, each over all columns of one record, run in a fixed order
 * (the first problem found is the one reported): owner kind, missing
 * fields, key lengths, UTF-8, numbers, times, JSON.
 */
typedef struct check {
	const af_column *cols;
	size_t n;
	const void *rec;
	json_tokener *tok;
	char *msg;
	size_t msg_size;
} check;

static const char *check_owner_kinds(const check *k)
{
	for (size_t i = 0; i < k->n; i++) {
		const af_column *c = &k->cols[i];

		if (c->type == TYPE_OWNER_KIND && !text_of(c, k->rec)) {
			snprintf(k->msg, k->msg_size, "%s is neither instance nor service", c->field);
			return k->msg;
		}
	}
	return NULL;
}

static const char *check_required(const check *k)
{
	for (size_t i = 0; i < k->n; i++) {
		const af_column *c = &k->cols[i];

		if (!(c->flags & REQUIRED) || !is_missing(c, k->rec))
			continue;
		snprintf(k->msg, k->msg_size, "%s%s%s%s is %s", c->field, c->gloss ? " (" : "",
			 c->gloss ? c->gloss : "", c->gloss ? ")" : "",
			 is_text_like(c) ? "empty" : "missing");
		return k->msg;
	}
	return NULL;
}

/* One message names every bounded field: "owner_id or kind is longer...". */
static const char *check_key_lengths(const check *k)
{
	size_t i, used = 0;
	bool too_long = false;

	for (i = 0; i < k->n; i++) {
		const char *s = k->cols[i].flags & BOUNDED ? text_of(&k->cols[i], k->rec) : NULL;

		too_long = too_long || (s && strlen(s) > KEY_MAX);
	}
	if (!too_long)
		return NULL;
	k->msg[0] = '\0';
	for (i = 0; i < k->n; i++)
		if (k->cols[i].flags & BOUNDED && used < k->msg_size)
			used += (size_t)snprintf(k->msg + used, k->msg_size - used, "%s%s",
						 used ? " or " : "", k->cols[i].field);
	if (used < k->msg_size)
		snprintf(k->msg + used, k->msg_size - used, " is longer than %d bytes", KEY_MAX);
	return k->msg;
}

static const char *check_utf8(const check *k)
{
	for (size_t i = 0; i < k->n; i++)
		if (k->cols[i].type == TYPE_TEXT && !utf8_valid(text_of(&k->cols[i], k->rec)))
			return "a text field is not valid UTF-8";
	return NULL;
}

static const char *check_numbers(const check *k)
{
	for (size_t i = 0; i < k->n; i++) {
		const af_column *c = &k->cols[i];
		const char *p = c->type == TYPE_NUMBER ? number_problem(number_of(c, k->rec)) : NULL;

		if (p) {
			snprintf(k->msg, k->msg_size, "%s %s", c->field, p);
			return k->msg;
		}
	}
	return NULL;
}

static const char *check_times(const check *k)
{
	for (size_t i = 0; i < k->n; i++)
		if (k->cols[i].type == TYPE_TIME && !time_ok(time_of(&k->cols[i], k->rec)))
			return "a time is out of range";
	return NULL;
}

static const char *check_json(const check *k)
{
	for (size_t i = 0; i < k->n; i++) {
		const af_column *c = &k->cols[i];
		const char *p = NULL;

		if (c->type == TYPE_JSON_OBJECT || c->type == TYPE_JSON)
			p = json_problem(k->tok, text_of(c, k->rec), c->type == TYPE_JSON_OBJECT);
		if (p) {
			snprintf(k->msg, k->msg_size, "%s: %s", c->field, p);
			return k->msg;
		}
	}
	return NULL;
}

bool af_scope_valid(const af_scope *sc)
{
	check k = {scope_columns, COUNT(scope_columns), sc, NULL, NULL, 0};

	/* No message is wanted (the caller has its own), so none is built. */
	for (size_t i = 0; sc && i < k.n; i++)
		if (is_missing(&k.cols[i], sc))
			return false;
	return sc && !check_utf8(&k);
}

const char *af_record_problem(const af_entity *e, const void *rec, json_tokener *tok, char *msg,
			      size_t n)
{
	static const char *(*const checks[])(const check *) = {
		check_owner_kinds, check_required, check_key_lengths, check_utf8,
		check_numbers,     check_times,    check_json,
	};
	check k = {e->columns, e->ncolumns, rec, tok, msg, n};
	const char *why;

	for (size_t i = 0; i < COUNT(checks); i++)
		if ((why = checks[i](&k)) != NULL)
			return why;
	return NULL;
}

/* ---- the COPY row and the content hash ----------------------------------- */

/*
 * What content_hash feeds SHA-256, gathered: one EVP_DigestUpdate per
 * record instead of three per column (an update costs far more than the
 * few bytes most of them carry). The bytes hashed are the same.
 */
typedef struct hash_input {
	EVP_MD_CTX *md;
	size_t len;
	unsigned char buf[2048];
} hash_input;

static void hash_flush(hash_input *h)
{
	if (h->len)
		EVP_DigestUpdate(h->md, h->buf, h->len);
	h->len = 0;
}

static void hash_append(hash_input *h, const void *p, size_t len)
{
	if (len > sizeof(h->buf) - h->len) {
		hash_flush(h);
		if (len > sizeof(h->buf)) {
			EVP_DigestUpdate(h->md, p, len);
			return;
		}
	}
	memcpy(h->buf + h->len, p, len);
	h->len += len;
}

/* Each field is hashed with a presence byte and its length, so that
 * ("ab", NULL) and ("a", "b") hash differently. */
static inline void hash_bytes(hash_input *h, const void *p, size_t len, bool present)
{
	unsigned char tag = present ? 1 : 0;
	uint64_t n = len;

	if (present && 1 + sizeof(n) + len <= sizeof(h->buf) - h->len) {
		/* the usual case, all three in one go */
		h->buf[h->len] = tag;
		memcpy(h->buf + h->len + 1, &n, sizeof(n));
		memcpy(h->buf + h->len + 1 + sizeof(n), p, len);
		h->len += 1 + sizeof(n) + len;
		return;
	}
	hash_append(h, &tag, 1);
	if (!present)
		return;
	hash_append(h, &n, sizeof(n));
	hash_append(h, p, len);
}

static void hash_column(hash_input *h, const af_column *c, const void *rec)
{
	const char *s;
	af_time t;
	af_num num;

	switch (c->type) {
	case TYPE_TIME:
		t = time_of(c, rec);
		hash_bytes(h, &t, sizeof(t), t != AF_TIME_NULL);
		break;
	case TYPE_NUMBER:
		num = number_of(c, rec);
		hash_bytes(h, &num.value, sizeof(num.value), num.set);
		break;
	default:
		s = text_of(c, rec);
		hash_bytes(h, s, s ? strlen(s) : 0, s != NULL);
		break;
	}
}

static void hash_columns(hash_input *h, const af_column *cols, size_t n, const void *rec)
{
	for (size_t i = 0; i < n; i++)
		if (cols[i].flags & HASHED)
			hash_column(h, &cols[i], rec);
}

/* A SHA-256 fed through `h`. After the first record the context keeps the
 * digest it fetched: naming EVP_sha256() again would fetch it again, under
 * a lock, for every record. */
static int hash_begin(hash_input *h, EVP_MD_CTX *md)
{
	const EVP_MD *type = EVP_MD_CTX_get0_md(md) ? NULL : EVP_sha256();

	h->md = md;
	h->len = 0;
	if (EVP_DigestInit_ex(md, type, NULL) != 1)
		return af_error_set(AF_ERR_GENERIC, "SHA-256 initialisation failed");
	return 0;
}

static int hash_end(hash_input *h, unsigned char out[EVP_MAX_MD_SIZE])
{
	unsigned int len = 0;

	hash_flush(h);
	if (EVP_DigestFinal_ex(h->md, out, &len) != 1)
		return af_error_set(AF_ERR_GENERIC, "SHA-256 failed");
	return 0;
}

static int content_hash(EVP_MD_CTX *md, const af_entity *e, const af_scope *sc, const void *rec,
			unsigned char out[EVP_MAX_MD_SIZE])
{
	const char code[2] = {e->code, '\0'};
	hash_input h;
	int err;

	if ((err = hash_begin(&h, md)) < 0)
		return err;
	hash_bytes(&h, code, 1, true);
	hash_columns(&h, scope_columns, COUNT(scope_columns), sc);
	hash_columns(&h, e->columns, e->ncolumns, rec);
	return hash_end(&h, out);
}

int af_key_hash(EVP_MD_CTX *md, const af_scope *sc, const char *const *parts, size_t nparts,
		unsigned char key[AF_KEY_HASH_LEN])
{
	unsigned char out[EVP_MAX_MD_SIZE];
	hash_input h;
	size_t i;
	int err;

	if ((err = hash_begin(&h, md)) < 0)
		return err;
	for (i = 0; i < COUNT(scope_columns); i++)
		if (scope_columns[i].flags & KEY)
			hash_column(&h, &scope_columns[i], sc);
	for (i = 0; i < nparts; i++)
		hash_bytes(&h, parts[i], parts[i] ? strlen(parts[i]) : 0, parts[i] != NULL);
	if ((err = hash_end(&h, out)) < 0)
		return err;
	memcpy(key, out, AF_KEY_HASH_LEN);
	return 0;
}

/* The column's value, then the field separator. */
static int put_field(af_buf *b, const af_column *c, const void *rec)
{
	int err;

	if (!c)
		err = af_store_copy_null(b);
	else if (c->type == TYPE_TIME)
		err = af_store_copy_time(b, time_of(c, rec));
	else if (c->type == TYPE_NUMBER)
		err = af_store_copy_num(b, number_of(c, rec));
	else
		err = af_store_copy_text(b, text_of(c, rec));
	return err < 0 ? err : af_store_copy_sep(b);
}

/* The fields in af_stage's order: entity, seq, scope, record columns (NULL
 * where the entity has none), each followed by a separator. */
static int put_fields(const af_stage *st, af_buf *b, const af_entity *e, uint64_t seq,
		      const af_scope *sc, const void *rec)
{
	/* A run of columns the entity has not is one append of this text's
	 * start (a resource row has 17 such columns). */
#define NULLS4  "\\N\t\\N\t\\N\t\\N\t"
#define NULLS16 NULLS4 NULLS4 NULLS4 NULLS4
	static const char nulls[] = NULLS16 NULLS16 NULLS16 NULLS16;
#undef NULLS16
#undef NULLS4
	const size_t ent = (size_t)(e - af_entities);
	char head[32];
	size_t i, j, n;
	int err;

	_Static_assert(sizeof(nulls) - 1 == 3 * AF_STAGE_MAX_COLUMNS, "a \\N per column");
	/* The code and seq need no escaping. */
	head[0] = e->code;
	head[1] = '\t';
	n = 2 + af_store_format_u64(head + 2, seq);
	head[n++] = '\t';
	if ((err = af_buf_append(b, head, n)) < 0)
		return err;
	for (i = 0; i < COUNT(scope_columns); i++)
		if ((err = put_field(b, &scope_columns[i], sc)) < 0)
			return err;
	for (i = 0; i < st->ncolumns; i = j) {
		for (j = i; j < st->ncolumns && !st->columns[j].of[ent]; j++)
			;
		if (j > i)
			err = af_buf_append(b, nulls, 3 * (j - i));
		else
			err = put_field(b, st->columns[j++].of[ent], rec);
		if (err < 0)
			return err;
	}
	return 0;
}

int af_stage_put_row(const af_stage *st, af_buf *b, const af_entity *e, uint64_t seq,
		     const af_scope *sc, const void *rec,
		     const unsigned char hash[AF_CONTENT_HASH_LEN])
{
	int err;

	if ((err = put_fields(st, b, e, seq, sc, rec)) < 0 ||
	    (err = af_store_copy_hash(b, hash)) < 0)
		return err;
	return af_store_copy_eol(b);
}

/* ---- the first-load row -------------------------------------------------- */

void af_record_key_of(const af_entity *e, const void *rec, af_record_key *k)
{
	const af_service *sv = rec;
	const af_resource *rs = rec;

	k->owner = -1;
	k->owner_id = NULL;
	switch (e - af_entities) {
	case AF_ENTITY_INSTANCE: k->name = ((const af_instance *)rec)->native_id; break;
	case AF_ENTITY_SERVICE:
		k->name = sv->native_id;
		k->owner = AF_ENTITY_INSTANCE;
		k->owner_id = sv->instance_id;
		break;
	default:
		k->name = rs->kind;
		k->owner = rs->owner_kind == AF_OWNER_SERVICE ? AF_ENTITY_SERVICE : AF_ENTITY_INSTANCE;
		k->owner_id = rs->owner_id;
	}
}

int af_content_hash(EVP_MD_CTX *md, const af_entity *e, const af_scope *sc, const void *rec,
		    unsigned char hash[AF_CONTENT_HASH_LEN])
{
	unsigned char md_out[EVP_MAX_MD_SIZE];
	int err;

	if ((err = content_hash(md, e, sc, rec, md_out)) < 0)
		return err;
	memcpy(hash, md_out, AF_CONTENT_HASH_LEN);
	return 0;
}

/* An id column's value, then the field separator. */
static int put_id(af_buf *b, int64_t id)
{
	char num[24];
	int err;

	if (id == AF_NO_OWNER)
		return (err = af_store_copy_null(b)) < 0 ? err : af_store_copy_sep(b);
	snprintf(num, sizeof(num), "%" PRId64 "\t", id);
	return af_buf_puts(b, num);
}

int af_direct_put_row(af_buf *b, const af_entity *e, int64_t id, const int64_t owner_ids[2],
		      const af_scope *sc, const void *rec, const unsigned char hash[AF_CONTENT_HASH_LEN],
		      const char *tail)
{
	size_t i;
	int err;

	if ((err = put_id(b, id)) < 0)
		return err;
	for (i = 0; i < COUNT(e->owners) && e->owners[i].column; i++)
		if ((err = put_id(b, owner_ids[i])) < 0)
			return err;
	for (i = 0; i < COUNT(scope_columns); i++)
		if ((err = put_field(b, &scope_columns[i], sc)) < 0)
			return err;
	for (i = 0; i < e->ncolumns; i++)
		if ((err = put_field(b, &e->columns[i], rec)) < 0)
			return err;
	if ((err = af_store_copy_hash(b, hash)) < 0)
		return err;
	return af_buf_puts(b, tail);
}

/* ---- the staging table --------------------------------------------------- */

static af_stage_column *stage_column(af_stage *st, const char *name)
{
	for (size_t i = 0; i < st->ncolumns; i++)
		if (strcmp(st->columns[i].def->name, name) == 0)
			return &st->columns[i];
	return NULL;
}

/* The union of the entities' columns, by name, in order of appearance. */
static int collect_columns(af_stage *st)
{
	for (size_t ent = 0; ent < AF_NENTITIES; ent++) {
		const af_entity *e = &af_entities[ent];

		for (size_t i = 0; i < e->ncolumns; i++) {
			const af_column *c = &e->columns[i];
			af_stage_column *sc = stage_column(st, c->name);

			if (!sc && st->ncolumns == AF_STAGE_MAX_COLUMNS)
				return af_error_set(AF_ERR_GENERIC, "more than %d staging columns",
						    AF_STAGE_MAX_COLUMNS);
			if (!sc) {
				sc = &st->columns[st->ncolumns++];
				sc->def = c;
			}
			if (sc->of[ent])
				return af_error_set(AF_ERR_GENERIC, "column %s is twice in %s",
						    c->name, e->type);
			if (strcmp(types[sc->def->type].staged, types[c->type].staged) != 0)
				return af_error_set(AF_ERR_GENERIC,
						    "column %s has two staging types (%s, %s)",
						    c->name, types[sc->def->type].staged,
						    types[c->type].staged);
			sc->of[ent] = c;
		}
	}
	return 0;
}

/* "name type, ..." (declare) or "name, ..." for entity, seq, the scope
 * columns, the record columns and content_hash. */
static int put_stage_columns(af_buf *b, const af_stage *st, bool declare)
{
	size_t i;
	int err = af_buf_puts(b, declare ? "entity \"char\" NOT NULL, seq bigint NOT NULL"
					 : "entity, seq");

	/* Every row has its scope: only these can be NOT NULL. */
	for (i = 0; !err && i < COUNT(scope_columns); i++)
		err = af_buf_printf(b, ", %s%s%s%s", scope_columns[i].name, declare ? " " : "",
				    declare ? types[scope_columns[i].type].staged : "",
				    declare ? " NOT NULL" : "");
	for (i = 0; !err && i < st->ncolumns; i++)
		err = af_buf_printf(b, ", %s%s%s", st->columns[i].def->name, declare ? " " : "",
				    declare ? types[st->columns[i].def->type].staged : "");
	if (!err)
		err = af_buf_puts(b, declare ? ", content_hash bytea NOT NULL" : ", content_hash");
	return err;
}

static int build_stage_sql(af_stage *st)
{
	af_buf create = AF_BUF_INIT, copy = AF_BUF_INIT;
	int err;

	if ((err = af_buf_puts(&create, "CREATE TEMP TABLE af_stage (")) < 0 ||
	    (err = put_stage_columns(&create, st, true)) < 0 ||
	    (err = af_buf_puts(&create, ") ON COMMIT DROP")) < 0)
		goto done;
	if ((err = af_buf_puts(&copy, "COPY af_stage (")) < 0 ||
	    (err = put_stage_columns(&copy, st, false)) < 0 ||
	    (err = af_buf_puts(&copy, ") FROM STDIN")) < 0)
		goto done;
	st->create_sql = af_buf_detach(&create);
	st->copy_sql = af_buf_detach(&copy);
done:
	af_buf_free(&create);
	af_buf_free(&copy);
	return err;
}

/* ---- the merge lists ----------------------------------------------------- */

typedef enum list_form {
	AS_NAME,       /* col */
	AS_VALUE,      /* m.col, cast to the table's type */
	AS_ASSIGNMENT, /* col = m.col, cast */
	AS_MATCH,      /* t.col = s.col */
} list_form;

typedef enum list_columns { ALL_COLUMNS, KEY_COLUMNS, NON_KEY_COLUMNS } list_columns;

static bool wanted(const af_column *c, list_columns which)
{
	return which == ALL_COLUMNS || (which == KEY_COLUMNS) == ((c->flags & KEY) != 0);
}

static int put_column(af_buf *b, const af_column *c, list_form form, bool first)
{
	const char *sep = first ? "" : form == AS_MATCH ? " AND " : ", ";
	const char *n = c->name, *cast = types[c->type].cast;

	switch (form) {
	case AS_NAME: return af_buf_printf(b, "%s%s", sep, n);
	case AS_VALUE: return af_buf_printf(b, "%sm.%s%s", sep, n, cast);
	case AS_ASSIGNMENT: return af_buf_printf(b, "%s%s = m.%s%s", sep, n, n, cast);
	case AS_MATCH: return af_buf_printf(b, "%st.%s = s.%s", sep, n, n);
	}
	return af_error_set(AF_ERR_GENERIC, "unknown list form");
}

/* The owner id columns, resolved by classify into m.owner_<column>. */
static int put_owners(af_buf *b, const af_entity *e, list_form form)
{
	int err = 0;

	for (size_t i = 0; !err && i < COUNT(e->owners) && e->owners[i].column; i++) {
		const char *col = e->owners[i].column;

		if (form == AS_NAME)
			err = af_buf_printf(b, ", %s", col);
		else if (form == AS_VALUE)
			err = af_buf_printf(b, ", m.owner_%s", col);
		else
			err = af_buf_printf(b, ", %s = m.owner_%s", col, col);
	}
	return err;
}

/* The chosen columns of e (scope columns first) in one form, and for the
 * content lists its owner id columns; *out is "" rather than NULL if empty. */
static int build_list(char **out, const af_entity *e, list_columns which, list_form form,
		      bool owners)
{
	af_buf b = AF_BUF_INIT;
	bool first = true;
	size_t i;
	int err = af_buf_append(&b, "", 0);

	for (i = 0; !err && i < COUNT(scope_columns) + e->ncolumns; i++) {
		const af_column *c = i < COUNT(scope_columns)
					     ? &scope_columns[i]
					     : &e->columns[i - COUNT(scope_columns)];

		if (wanted(c, which)) {
			err = put_column(&b, c, form, first);
			first = false;
		}
	}
	if (!err && owners)
		err = put_owners(&b, e, form);
	if (!err)
		*out = af_buf_detach(&b);
	af_buf_free(&b);
	return err;
}

static int build_owner_ids(char **out, const af_entity *e)
{
	af_buf b = AF_BUF_INIT;
	int err = af_buf_append(&b, "", 0);

	for (size_t i = 0; !err && i < COUNT(e->owners) && e->owners[i].column; i++)
		err = af_buf_printf(&b, ", %s AS owner_%s", e->owners[i].id, e->owners[i].column);
	if (!err)
		*out = af_buf_detach(&b);
	af_buf_free(&b);
	return err;
}

static int build_merge_sql(af_merge_sql *m, const af_entity *e)
{
	int err;

	if ((err = build_list(&m->key, e, KEY_COLUMNS, AS_NAME, false)) < 0 ||
	    (err = build_list(&m->key_match, e, KEY_COLUMNS, AS_MATCH, false)) < 0 ||
	    (err = build_owner_ids(&m->owner_ids, e)) < 0 ||
	    (err = build_list(&m->insert_cols, e, ALL_COLUMNS, AS_NAME, true)) < 0 ||
	    (err = build_list(&m->insert_vals, e, ALL_COLUMNS, AS_VALUE, true)) < 0 ||
	    (err = build_list(&m->set, e, NON_KEY_COLUMNS, AS_ASSIGNMENT, true)) < 0)
		return err;
	return 0;
}

static void merge_sql_free(af_merge_sql *m)
{
	free(m->key);
	free(m->key_match);
	free(m->owner_ids);
	free(m->insert_cols);
	free(m->insert_vals);
	free(m->set);
	memset(m, 0, sizeof(*m));
}

/* COPY aifleet.<type> (...) FROM STDIN for af_direct_put_row's rows. */
static int build_direct_copy_sql(char **out, const af_entity *e)
{
	af_buf b = AF_BUF_INIT;
	char *cols = NULL;
	int err;

	if ((err = build_list(&cols, e, ALL_COLUMNS, AS_NAME, false)) == 0 &&
	    (err = af_buf_printf(&b, "COPY %s (id", e->table)) == 0 &&
	    (err = put_owners(&b, e, AS_NAME)) == 0 &&
	    (err = af_buf_printf(&b, ", %s, content_hash, first_seen_at, last_changed_at,"
				     " last_run_id) FROM STDIN", cols)) == 0)
		*out = af_buf_detach(&b);
	free(cols);
	af_buf_free(&b);
	return err;
}

int af_stage_init(af_stage *st)
{
	int err;

	memset(st, 0, sizeof(*st));
	if ((err = collect_columns(st)) < 0 || (err = build_stage_sql(st)) < 0)
		goto done;
	for (size_t i = 0; i < AF_NENTITIES; i++)
		if ((err = build_merge_sql(&st->merge[i], &af_entities[i])) < 0 ||
		    (err = build_direct_copy_sql(&st->direct_copy_sql[i], &af_entities[i])) < 0)
			goto done;
done:
	if (err < 0)
		af_stage_free(st);
	return err;
}

void af_stage_free(af_stage *st)
{
	free(st->create_sql);
	free(st->copy_sql);
	for (size_t i = 0; i < AF_NENTITIES; i++) {
		merge_sql_free(&st->merge[i]);
		free(st->direct_copy_sql[i]);
	}
	memset(st, 0, sizeof(*st));
}
