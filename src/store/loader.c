/*
 * The loader: one run = one transaction.
 *
 *   begin   advisory lock, BEGIN, TEMP staging tables, sync_run row, COPY
 *   sink    validate + hash each record in C, append it as COPY text to a
 *           fixed-size batch, hand full batches to PQputCopyData
 *   commit  end COPY, then merge set-based (classify, insert, update, close
 *           versions, tombstone), update the run and the scope ledger, COMMIT
 *           (or ROLLBACK for a dry run)
 *
 * A failed run leaves no trace in the database: the sync_run row is written
 * inside the run's transaction, so a failure rolls it back with everything
 * else and the error is reported by the caller (log + exit code).
 *
 * A rejected record (missing key, bad number, bad JSON) is not a failure of
 * the run: the sink returns AF_ERR_DATA naming the record, the record is not
 * staged, and its scope becomes partial (nothing in it is tombstoned). The
 * rest of the run still loads.
 */
#include "store_internal.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/store.h"
#include "aifleet/version.h"

/* Bytes of COPY text buffered before PQputCopyData: memory stays flat
 * whatever the size of the fleet. */
#define BATCH_BYTES ((size_t)256 * 1024)
/* One record (with its raw payload) may not exceed this. */
#define ROW_MAX ((size_t)16 * 1024 * 1024)

/* af_time range PostgreSQL and gmtime agree on: years 1..9999. */
#define TIME_MIN (-62135596800LL * 1000000LL)
#define TIME_MAX (253402300799LL * 1000000LL)

typedef struct scope_entry {
	char *provider, *account, *region, *product;
	bool reported;
	af_scope_report report; /* error points to err_copy */
	char *err_copy;
	uint64_t loader_rejected;
	char *first_reject; /* first rejection message, for the ledger */
	bool held;          /* set by the commit: the guard held its tombstones */
	uint64_t held_deletes, held_live;
} scope_entry;

struct af_loader {
	af_store *store;
	PGconn *conn;
	bool dry_run;
	char *trigger;
	af_delete_guard guard; /* allow[] borrowed from the caller for the run */
	bool locked, in_tx, copying, failed, committed;
	int64_t run_id;
	uint64_t seq;
	af_buf batch;
	EVP_MD_CTX *md;
	json_tokener *tok;
	scope_entry *scopes;
	size_t nscopes, scopes_alloc;
	uint64_t rejected_unscoped;
	struct timespec t_begin;
};

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* ---- scopes ---------------------------------------------------------- */

static bool str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

static int scope_find(scope_entry **out, af_loader *l, const af_scope *sc)
{
	scope_entry *e;
	size_t i;

	for (i = 0; i < l->nscopes; i++) {
		e = &l->scopes[i];
		if (str_eq(e->provider, sc->provider) && str_eq(e->account, sc->account) &&
		    str_eq(e->region, sc->region) && str_eq(e->product, sc->product)) {
			*out = e;
			return 0;
		}
	}
	if (l->nscopes == l->scopes_alloc) {
		size_t n = l->scopes_alloc ? 2 * l->scopes_alloc : 16;
		scope_entry *p = realloc(l->scopes, n * sizeof(*p));

		if (!p)
			return af_error_set(AF_ERR_NOMEM, "out of memory");
		l->scopes = p;
		l->scopes_alloc = n;
	}
	e = &l->scopes[l->nscopes];
	memset(e, 0, sizeof(*e));
	e->provider = dup_or_empty(sc->provider);
	e->account = dup_or_empty(sc->account);
	e->region = dup_or_empty(sc->region);
	e->product = dup_or_empty(sc->product);
	l->nscopes++;
	if (!e->provider || !e->account || !e->region || !e->product)
		return af_error_set(AF_ERR_NOMEM, "out of memory");
	*out = e;
	return 0;
}

static void scope_entry_free(scope_entry *e)
{
	free(e->provider);
	free(e->account);
	free(e->region);
	free(e->product);
	free(e->err_copy);
	free(e->first_reject);
}

/* ---- validation -------------------------------------------------------- */

static bool nonempty(const char *s)
{
	return s && *s;
}

/* Natural-key parts are indexed by btree, whose entries PostgreSQL caps at
 * about 2.7 kB: a longer key would fail the whole merge, so the record is
 * rejected alone. No real id comes near this. */
#define KEY_MAX 1024

static bool key_too_long(const char *s)
{
	return s && strlen(s) > KEY_MAX;
}

/* Structural UTF-8 check (no overlongs, no surrogates): PostgreSQL refuses
 * invalid UTF-8 in COPY, which would fail the whole run instead of one record. */
static bool utf8_valid(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	if (!s)
		return true;
	while (*s) {
		unsigned char c = *s;
		int n;
		unsigned int cp, min;

		if (c < 0x80) {
			s++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		s++;
		while (n-- > 0) {
			if ((*s & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (*s++ & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
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
static const char *json_problem(af_loader *l, const char *s, bool want_object)
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
	json_tokener_reset(l->tok);
	obj = json_tokener_parse_ex(l->tok, s, (int)len);
	jerr = json_tokener_get_error(l->tok);
	if (!obj || jerr != json_tokener_success)
		why = jerr == json_tokener_continue ? "truncated JSON" : json_tokener_error_desc(jerr);
	else if (json_tokener_get_parse_end(l->tok) != len)
		why = "trailing characters after the JSON value";
	else if (want_object && !json_object_is_type(obj, json_type_object))
		why = "not a JSON object";
	json_object_put(obj);
	return why;
}

static const char *num_problem(af_num n)
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

static bool scope_ok(const af_scope *sc)
{
	return sc && nonempty(sc->provider) && nonempty(sc->account) && nonempty(sc->region) &&
	       nonempty(sc->product) && utf8_valid(sc->provider) && utf8_valid(sc->account) &&
	       utf8_valid(sc->region) && utf8_valid(sc->product);
}

/* Counts a rejected record against its scope (which becomes partial) and
 * sets the error that names it. */
static int reject(af_loader *l, const af_scope *sc, const char *what, const char *id,
		  const char *why)
{
	scope_entry *e;
	int err;

	if (!scope_ok(sc)) {
		l->rejected_unscoped++;
		return af_error_set(AF_ERR_DATA, "rejected %s %s: incomplete scope (%s)", what,
				    id ? id : "(no id)", why);
	}
	/* A hostile id may be kilobytes long: name it by its start. */
	af_error_set(AF_ERR_DATA, "rejected %s %.*s%s in scope %s/%s/%s/%s: %s", what,
		     nonempty(id) ? 128 : 64, nonempty(id) ? id : "(no native id)",
		     nonempty(id) && strlen(id) > 128 ? "..." : "", sc->provider, sc->account,
		     sc->region, sc->product, why);
	if ((err = scope_find(&e, l, sc)) < 0) {
		l->failed = true;
		return err;
	}
	e->loader_rejected++;
	if (!e->first_reject)
		e->first_reject = strdup(af_error_last());
	af_warn("loader", "%s", af_error_last());
	return AF_ERR_DATA;
}

/* ---- the COPY row writer --------------------------------------------- */

typedef struct row {
	af_buf *b;
	EVP_MD_CTX *md;
	int nfields;
	int err;
} row;

static void row_sep(row *r)
{
	if (r->nfields++ > 0 && !r->err)
		r->err = af_store_copy_sep(r->b);
}

/* Each field is hashed with a presence byte and its length, so that
 * ("ab", NULL) and ("a", "b") hash differently. */
static void hash_bytes(row *r, const void *p, size_t len, bool present)
{
	unsigned char tag = present ? 1 : 0;
	uint64_t n = len;

	EVP_DigestUpdate(r->md, &tag, 1);
	if (!present)
		return;
	EVP_DigestUpdate(r->md, &n, sizeof(n));
	EVP_DigestUpdate(r->md, p, len);
}

static void row_text(row *r, const char *s, bool hashed)
{
	row_sep(r);
	if (r->err)
		return;
	r->err = af_store_copy_text(r->b, s);
	if (hashed)
		hash_bytes(r, s, s ? strlen(s) : 0, s != NULL);
}

static void row_time(row *r, af_time t)
{
	row_sep(r);
	if (r->err)
		return;
	r->err = af_store_copy_time(r->b, t);
	hash_bytes(r, &t, sizeof(t), t != AF_TIME_NULL);
}

static void row_num(row *r, af_num n)
{
	row_sep(r);
	if (r->err)
		return;
	r->err = af_store_copy_num(r->b, n);
	hash_bytes(r, &n.value, sizeof(n.value), n.set);
}

static void row_seq(row *r, uint64_t seq)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRIu64, seq);
	row_text(r, s, false);
}

static void row_begin(row *r, af_loader *l, char entity, const af_scope *sc)
{
	char ent[2] = {entity, '\0'};

	r->b = &l->batch;
	r->md = l->md;
	r->nfields = 0;
	r->err = 0;
	if (EVP_DigestInit_ex(l->md, EVP_sha256(), NULL) != 1) {
		r->err = af_error_set(AF_ERR_GENERIC, "SHA-256 initialisation failed");
		return;
	}
	row_text(r, ent, true);
	row_seq(r, ++l->seq);
	row_text(r, sc->provider, true);
	row_text(r, sc->account, true);
	row_text(r, sc->region, true);
	row_text(r, sc->product, true);
}

static int flush_batch(af_loader *l)
{
	if (l->batch.len == 0)
		return 0;
	if (PQputCopyData(l->conn, l->batch.data, (int)l->batch.len) != 1) {
		l->failed = true;
		return af_store_db_error(l->conn, NULL, "streaming records to PostgreSQL");
	}
	af_buf_reset(&l->batch);
	return 0;
}

static int row_end(row *r, af_loader *l, size_t start)
{
	unsigned char hash[EVP_MAX_MD_SIZE];
	unsigned int hlen = 0;

	row_sep(r);
	if (!r->err && EVP_DigestFinal_ex(r->md, hash, &hlen) != 1)
		r->err = af_error_set(AF_ERR_GENERIC, "SHA-256 failed");
	if (!r->err)
		r->err = af_store_copy_hash(r->b, hash);
	if (!r->err)
		r->err = af_store_copy_eol(r->b);
	if (r->err) {
		/* Never leave half a row in the stream. */
		r->b->len = start;
		if (r->b->data)
			r->b->data[start] = '\0';
		/* A row over the cap is that record's problem (see
		 * end_or_reject); anything else ends the run. */
		if (r->err != AF_ERR_DATA && r->err != AF_ERR_LIMIT)
			l->failed = true;
		return r->err;
	}
	if (l->batch.len >= BATCH_BYTES)
		return flush_batch(l);
	return 0;
}

/* A record too large for one COPY row (ROW_MAX) is rejected alone: one odd
 * item must not fail every other scope of the run. */
static int end_or_reject(row *r, af_loader *l, size_t start, const af_scope *sc, const char *what,
			 const char *id)
{
	int err = row_end(r, l, start);

	if (err == AF_ERR_LIMIT)
		return reject(l, sc, what, id, "the record is larger than the loader's 16 MiB row limit");
	return err;
}

static int usable(af_loader *l)
{
	if (!l->copying || l->failed)
		return af_error_set(AF_ERR_PARAM, "the loader is not accepting records (%s)",
				    l->failed ? "the run failed" : "not started or already committed");
	return 0;
}

/* The two JSON fields instances and services carry: tags must be an
 * object, raw any JSON value. Returns a reason (in msg) or NULL. */
static const char *json_fields_problem(af_loader *l, const char *tags, const char *raw,
				       char *msg, size_t n)
{
	const char *p;

	if ((p = json_problem(l, tags, true)) != NULL)
		snprintf(msg, n, "tags_json: %s", p);
	else if ((p = json_problem(l, raw, false)) != NULL)
		snprintf(msg, n, "raw_json: %s", p);
	return p ? msg : NULL;
}

/* Fields that staging does not have for this entity. */
static void row_nulls(row *r, int n)
{
	while (n-- > 0)
		row_text(r, NULL, false);
}

static int sink_instance(void *ctx, const af_scope *sc, const af_instance *in)
{
	af_loader *l = ctx;
	const char *why = NULL;
	char msg[160];
	size_t start;
	row r;
	int err;

	if ((err = usable(l)) < 0)
		return err;
	if (!scope_ok(sc))
		return reject(l, sc, "instance", in->native_id, "scope fields missing or invalid");
	if (!nonempty(in->native_id))
		why = "native_id is empty";
	else if (key_too_long(in->native_id))
		why = "native_id is longer than 1024 bytes";
	else if (!utf8_valid(in->native_id) || !utf8_valid(in->name) || !utf8_valid(in->status) ||
		 !utf8_valid(in->status_raw) || !utf8_valid(in->charge_type) ||
		 !utf8_valid(in->charge_type_raw) || !utf8_valid(in->zone) || !utf8_valid(in->spec) ||
		 !utf8_valid(in->model))
		why = "a text field is not valid UTF-8";
	else if (!time_ok(in->created_at) || !time_ok(in->updated_at) || !time_ok(in->expires_at))
		why = "a time is out of range";
	else
		why = json_fields_problem(l, in->tags_json, in->raw_json, msg, sizeof(msg));
	if (why)
		return reject(l, sc, "instance", in->native_id, why);

	start = l->batch.len;
	row_begin(&r, l, 'i', sc);
	row_text(&r, in->native_id, true);
	row_nulls(&r, 4); /* instance_native_id, owner_kind, owner_native_id, kind */
	row_text(&r, in->name, true);
	row_text(&r, in->status, true);
	row_text(&r, in->status_raw, true);
	row_text(&r, in->charge_type, true);
	row_text(&r, in->charge_type_raw, true);
	row_text(&r, in->zone, true);
	row_text(&r, in->spec, true);
	row_text(&r, in->model, true);
	row_nulls(&r, 2); /* model_version, replicas */
	row_time(&r, in->created_at);
	row_time(&r, in->updated_at);
	row_time(&r, in->expires_at);
	row_text(&r, in->tags_json, true);
	row_text(&r, in->raw_json, true);
	row_nulls(&r, 6); /* capacity, used, per_replica, unit, gpu_model, basis */
	return end_or_reject(&r, l, start, sc, "instance", in->native_id);
}

static int sink_service(void *ctx, const af_scope *sc, const af_service *sv)
{
	af_loader *l = ctx;
	const char *why = NULL;
	char msg[160];
	size_t start;
	row r;
	int err;

	if ((err = usable(l)) < 0)
		return err;
	if (!scope_ok(sc))
		return reject(l, sc, "service", sv->native_id, "scope fields missing or invalid");
	if (!nonempty(sv->native_id))
		why = "native_id is empty";
	else if (!nonempty(sv->instance_id))
		why = "instance_id (the owning instance) is empty";
	else if (key_too_long(sv->native_id) || key_too_long(sv->instance_id))
		why = "native_id or instance_id is longer than 1024 bytes";
	else if (!utf8_valid(sv->native_id) || !utf8_valid(sv->instance_id) ||
		 !utf8_valid(sv->name) || !utf8_valid(sv->model) || !utf8_valid(sv->model_version) ||
		 !utf8_valid(sv->status) || !utf8_valid(sv->status_raw) ||
		 !utf8_valid(sv->charge_type) || !utf8_valid(sv->charge_type_raw))
		why = "a text field is not valid UTF-8";
	else if (num_problem(sv->replicas))
		why = "replicas is not a finite non-negative number";
	else if (!time_ok(sv->created_at) || !time_ok(sv->updated_at))
		why = "a time is out of range";
	else
		why = json_fields_problem(l, sv->tags_json, sv->raw_json, msg, sizeof(msg));
	if (why)
		return reject(l, sc, "service", sv->native_id, why);

	start = l->batch.len;
	row_begin(&r, l, 's', sc);
	row_text(&r, sv->native_id, true);
	row_text(&r, sv->instance_id, true);
	row_nulls(&r, 3); /* owner_kind, owner_native_id, kind */
	row_text(&r, sv->name, true);
	row_text(&r, sv->status, true);
	row_text(&r, sv->status_raw, true);
	row_text(&r, sv->charge_type, true);
	row_text(&r, sv->charge_type_raw, true);
	row_nulls(&r, 2); /* zone, spec */
	row_text(&r, sv->model, true);
	row_text(&r, sv->model_version, true);
	row_num(&r, sv->replicas);
	row_time(&r, sv->created_at);
	row_time(&r, sv->updated_at);
	row_nulls(&r, 1); /* expires_at */
	row_text(&r, sv->tags_json, true);
	row_text(&r, sv->raw_json, true);
	row_nulls(&r, 6);
	return end_or_reject(&r, l, start, sc, "service", sv->native_id);
}

static int sink_resource(void *ctx, const af_scope *sc, const af_resource *rs)
{
	af_loader *l = ctx;
	const char *why = NULL, *p;
	char id[512], msg[64];
	size_t start;
	row r;
	int err;

	if ((err = usable(l)) < 0)
		return err;
	snprintf(id, sizeof(id), "%s/%s", rs->owner_id ? rs->owner_id : "(no owner)",
		 rs->kind ? rs->kind : "(no kind)");
	if (!scope_ok(sc))
		return reject(l, sc, "resource", id, "scope fields missing or invalid");
	if (rs->owner_kind != AF_OWNER_INSTANCE && rs->owner_kind != AF_OWNER_SERVICE)
		why = "owner_kind is neither instance nor service";
	else if (!nonempty(rs->owner_id))
		why = "owner_id is empty";
	else if (!nonempty(rs->kind))
		why = "kind is empty";
	else if (!nonempty(rs->unit))
		why = "unit is empty";
	else if (key_too_long(rs->owner_id) || key_too_long(rs->kind))
		why = "owner_id or kind is longer than 1024 bytes";
	else if (!utf8_valid(rs->owner_id) || !utf8_valid(rs->kind) || !utf8_valid(rs->unit) ||
		 !utf8_valid(rs->gpu_model) || !utf8_valid(rs->basis))
		why = "a text field is not valid UTF-8";
	else if ((p = num_problem(rs->capacity)) != NULL)
		why = snprintf(msg, sizeof(msg), "capacity %s", p) > 0 ? msg : p;
	else if ((p = num_problem(rs->used)) != NULL)
		why = snprintf(msg, sizeof(msg), "used %s", p) > 0 ? msg : p;
	else if ((p = num_problem(rs->per_replica)) != NULL)
		why = snprintf(msg, sizeof(msg), "per_replica %s", p) > 0 ? msg : p;
	if (why)
		return reject(l, sc, "resource", id, why);

	start = l->batch.len;
	row_begin(&r, l, 'r', sc);
	row_nulls(&r, 2); /* native_id, instance_native_id */
	row_text(&r, rs->owner_kind == AF_OWNER_INSTANCE ? "instance" : "service", true);
	row_text(&r, rs->owner_id, true);
	row_text(&r, rs->kind, true);
	row_nulls(&r, 13); /* name .. expires_at */
	row_nulls(&r, 2);  /* tags, raw */
	row_num(&r, rs->capacity);
	row_num(&r, rs->used);
	row_num(&r, rs->per_replica);
	row_text(&r, rs->unit, true);
	row_text(&r, rs->gpu_model, true);
	row_text(&r, rs->basis, true);
	return end_or_reject(&r, l, start, sc, "resource", id);
}

af_record_sink af_loader_sink(af_loader *l)
{
	af_record_sink sink = {sink_instance, sink_service, sink_resource, l};

	return sink;
}

/* ---- begin ------------------------------------------------------------ */

static const char stage_sql[] =
	"CREATE TEMP TABLE af_stage ("
	" entity \"char\" NOT NULL, seq bigint NOT NULL,"
	" provider text NOT NULL, account text NOT NULL, region text NOT NULL, product text NOT NULL,"
	" native_id text, instance_native_id text, owner_kind text, owner_native_id text, kind text,"
	" name text, status text, status_raw text, charge_type text, charge_type_raw text,"
	" zone text, spec text, model text, model_version text, replicas float8,"
	" created_at timestamptz, updated_at timestamptz, expires_at timestamptz,"
	/* JSON stays text here: it is validated in C, and only rows that are
	 * inserted or updated pay for the jsonb conversion. */
	" tags text, raw text,"
	" capacity float8, used float8, per_replica float8, unit text, gpu_model text, basis text,"
	" content_hash bytea NOT NULL"
	") ON COMMIT DROP;"
	"CREATE TEMP TABLE af_scope ("
	" provider text, account text, region text, product text,"
	" reported boolean NOT NULL, state text NOT NULL, error text,"
	" pages bigint, items bigint, duplicates bigint, rejected bigint, requests bigint,"
	" retries bigint, throttled bigint, seconds float8, eligible boolean NOT NULL,"
	" allow_deletes boolean NOT NULL DEFAULT false, held_deletes bigint, held_live bigint,"
	" PRIMARY KEY (provider, account, region, product)"
	") ON COMMIT DROP";

static int lock_busy_error(PGconn *conn)
{
	char sql[512];
	PGresult *res;
	int err;

	snprintf(sql, sizeof(sql),
		 "SELECT a.pid, coalesce(to_char(coalesce(a.xact_start, a.backend_start),"
		 " 'YYYY-MM-DD HH24:MI:SS TZ'), '?'), coalesce(a.application_name, '')"
		 " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
		 " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %lld::oid"
		 " AND l.objid = %lld::oid AND l.objsubid = 1",
		 AF_STORE_RUN_LOCK_KEY >> 32, AF_STORE_RUN_LOCK_KEY & 0xffffffffLL);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
		err = af_error_set(AF_ERR_LOCKED,
				   "another aifleet run holds the lock (pid %s since %s, "
				   "application '%s'); try again later or use --wait",
				   PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
	else
		err = af_error_set(AF_ERR_LOCKED, "another aifleet run holds the lock (holder not "
						  "visible: it may have just finished)");
	PQclear(res);
	return err;
}

static int take_lock(af_loader *l, bool wait)
{
	char sql[96];
	PGresult *res;
	int err = 0;

	snprintf(sql, sizeof(sql), "SELECT %s(%lld)",
		 wait ? "pg_advisory_lock" : "pg_try_advisory_lock", AF_STORE_RUN_LOCK_KEY);
	res = PQexec(l->conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(l->conn, res, "taking the run lock");
	} else if (!wait && strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		err = lock_busy_error(l->conn);
	} else {
		l->locked = true;
	}
	PQclear(res);
	return err;
}

int af_loader_begin(af_loader **out, af_store *s, const af_run_options *opts)
{
	static const af_run_options defaults = {false, false, NULL, NULL};
	af_loader *l;
	PGresult *res = NULL;
	const char *params[2];
	int err = 0;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (s->in_run)
		return af_error_set(AF_ERR_PARAM, "a run is already in progress on this connection");
	if (!(l = calloc(1, sizeof(*l))))
		return af_error_set(AF_ERR_NOMEM, "out of memory");
	clock_gettime(CLOCK_MONOTONIC, &l->t_begin);
	l->store = s;
	l->conn = s->conn;
	l->dry_run = opts->dry_run;
	l->guard.max_fraction = AF_DELETE_GUARD_FRACTION;
	l->guard.min_deletes = AF_DELETE_GUARD_MIN;
	if (opts->guard)
		l->guard = *opts->guard;
	af_buf_init(&l->batch, BATCH_BYTES + ROW_MAX);
	l->md = EVP_MD_CTX_new();
	l->tok = json_tokener_new();
	l->trigger = opts->trigger ? strdup(opts->trigger) : NULL;
	if (!l->md || !l->tok || (opts->trigger && !l->trigger)) {
		err = af_error_set(AF_ERR_NOMEM, "out of memory");
		goto done;
	}
	json_tokener_set_flags(l->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	s->in_run = true;

	if ((err = take_lock(l, opts->wait_for_lock)) < 0)
		goto done;
	if ((err = af_store_exec(l->conn, "starting the run transaction", "BEGIN")) < 0)
		goto done;
	l->in_tx = true;
	if ((err = af_store_exec(l->conn, "creating staging tables", stage_sql)) < 0)
		goto done;
	params[0] = l->trigger;
	params[1] = AIFLEET_VERSION;
	res = PQexecParams(l->conn,
			   "INSERT INTO aifleet.sync_run (trigger, tool_version, status)"
			   " VALUES ($1, $2, 'running') RETURNING id",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(l->conn, res, "recording the run (is the schema migrated?)");
		goto done;
	}
	l->run_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	res = PQexec(l->conn,
		     "COPY af_stage (entity, seq, provider, account, region, product, native_id,"
		     " instance_native_id, owner_kind, owner_native_id, kind, name, status, status_raw,"
		     " charge_type, charge_type_raw, zone, spec, model, model_version, replicas,"
		     " created_at, updated_at, expires_at, tags, raw, capacity, used, per_replica,"
		     " unit, gpu_model, basis, content_hash) FROM STDIN");
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		err = af_store_db_error(l->conn, res, "starting COPY into staging");
		goto done;
	}
	l->copying = true;
	*out = l;
	l = NULL;
done:
	PQclear(res);
	af_loader_free(l);
	return err;
}

int af_loader_scope_done(af_loader *l, const af_scope_report *report)
{
	scope_entry *e;
	int err;

	if (l->failed || l->committed)
		return af_error_set(AF_ERR_PARAM, "the loader is not accepting scope reports");
	if (!scope_ok(&report->scope))
		return af_error_set(AF_ERR_PARAM, "scope report without a complete scope");
	if ((err = scope_find(&e, l, &report->scope)) < 0) {
		l->failed = true;
		return err;
	}
	free(e->err_copy);
	e->err_copy = NULL;
	if (report->error && !(e->err_copy = strdup(report->error))) {
		l->failed = true;
		return af_error_set(AF_ERR_NOMEM, "out of memory");
	}
	e->report = *report;
	e->report.scope.provider = e->provider;
	e->report.scope.account = e->account;
	e->report.scope.region = e->region;
	e->report.scope.product = e->product;
	e->report.error = e->err_copy;
	e->reported = true;
	return 0;
}

/* ---- commit: the merge -------------------------------------------------- */

static int exec_params(af_loader *l, const char *what, const char *sql, int n,
		       const char *const *params, uint64_t *affected)
{
	PGresult *res = PQexecParams(l->conn, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	int err = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		err = af_store_db_error(l->conn, res, what);
	else if (affected)
		*affected = strtoull(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return err;
}

static int end_copy(af_loader *l)
{
	PGresult *res;
	int err = 0;

	if ((err = flush_batch(l)) < 0)
		return err;
	l->copying = false;
	if (PQputCopyEnd(l->conn, NULL) != 1)
		return af_store_db_error(l->conn, NULL, "ending COPY into staging");
	/* Drain every result, as psql's handleCopyIn does. */
	while ((res = PQgetResult(l->conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && !err)
			err = af_store_db_error(l->conn, res, "COPY into staging");
		PQclear(res);
	}
	return err;
}

/* --allow-deletes names a scope as provider/account/region/product, or "all". */
static bool deletes_allowed(const af_loader *l, const scope_entry *e)
{
	char name[1024];

	snprintf(name, sizeof(name), "%s/%s/%s/%s", e->provider, e->account, e->region,
		 e->product);
	for (size_t i = 0; i < l->guard.nallow; i++)
		if (strcmp(l->guard.allow[i], "all") == 0 || strcmp(l->guard.allow[i], name) == 0)
			return true;
	return false;
}

static int stage_scopes(af_loader *l)
{
	size_t i;
	int err;

	for (i = 0; i < l->nscopes; i++) {
		scope_entry *e = &l->scopes[i];
		const af_scope_report *r = &e->report;
		char nums[9][32];
		const char *p[17];
		const char *state = "partial";
		const char *error = e->reported ? r->error : "scope not reported by the collector";
		uint64_t rejected = r->rejected + e->loader_rejected;
		bool eligible = e->reported && r->state == AF_SCOPE_COMPLETE && rejected == 0;

		if (e->reported && r->state == AF_SCOPE_FAILED)
			state = "failed";
		else if (eligible)
			state = "complete";
		if (!error && e->first_reject)
			error = e->first_reject;
		snprintf(nums[0], 32, "%" PRIu64, r->pages);
		snprintf(nums[1], 32, "%" PRIu64, r->items);
		snprintf(nums[2], 32, "%" PRIu64, r->duplicates);
		snprintf(nums[3], 32, "%" PRIu64, rejected);
		snprintf(nums[4], 32, "%" PRIu64, r->requests);
		snprintf(nums[5], 32, "%" PRIu64, r->retries);
		snprintf(nums[6], 32, "%" PRIu64, r->throttled);
		snprintf(nums[7], 32, "%.3f", isfinite(r->seconds) ? r->seconds : 0.0);
		p[0] = e->provider;
		p[1] = e->account;
		p[2] = e->region;
		p[3] = e->product;
		p[4] = e->reported ? "t" : "f";
		p[5] = state;
		p[6] = error;
		p[7] = nums[0];
		p[8] = nums[1];
		p[9] = nums[2];
		p[10] = nums[3];
		p[11] = nums[4];
		p[12] = nums[5];
		p[13] = nums[6];
		p[14] = nums[7];
		p[15] = eligible ? "t" : "f";
		p[16] = deletes_allowed(l, e) ? "t" : "f";
		if ((err = exec_params(l, "staging scope reports",
				       "INSERT INTO af_scope (provider, account, region, product,"
				       " reported, state, error, pages, items, duplicates, rejected,"
				       " requests, retries, throttled, seconds, eligible, allow_deletes)"
				       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
				       " $13, $14, $15, $16, $17)",
				       17, p, NULL)) < 0)
			return err;
	}
	/* Scopes that sent records but were never reported: partial, so nothing
	 * in them is tombstoned. */
	return af_store_exec(l->conn, "finding unreported scopes",
			     "INSERT INTO af_scope (provider, account, region, product, reported,"
			     " state, error, pages, items, duplicates, rejected, requests, retries,"
			     " throttled, seconds, eligible)"
			     " SELECT DISTINCT provider, account, region, product, false, 'partial',"
			     " 'scope not reported by the collector', 0, 0, 0, 0, 0, 0, 0, 0, false"
			     " FROM af_stage ON CONFLICT DO NOTHING");
}

/* Per-entity SQL fragments: the merge is the same shape for all three. */
typedef struct entity_sql {
	const char *type;     /* instance | service | resource */
	char code;            /* staging discriminator */
	const char *table;    /* aifleet.<type> */
	const char *key;      /* natural key columns */
	const char *key_on;   /* the natural key as a join condition s -> t */
	const char *cols;     /* content columns (same names in staging, m_ and table) */
	const char *vals;     /* the same, as expressions over m (jsonb casts) */
	const char *set;      /* UPDATE SET list from m */
	const char *extra;    /* classify: extra select list (owner ids) */
	const char *joins;    /* classify: joins that resolve owner ids */
	const char *orphan;   /* classify: condition for an unresolved owner */
	const char *ins_cols; /* owner id columns to insert */
	const char *ins_vals;
} entity_sql;

#define KEY_ON                                                                                     \
	"t.provider = s.provider AND t.account = s.account AND t.product = s.product"              \
	" AND t.native_id = s.native_id"

static const entity_sql entities[] = {
	{"instance", 'i', "aifleet.instance", "provider, account, product, native_id", KEY_ON,
	 "region, native_id, name, status, status_raw, charge_type, charge_type_raw, zone, spec,"
	 " model, created_at, updated_at, expires_at, tags, raw",
	 "m.region, m.native_id, m.name, m.status, m.status_raw, m.charge_type, m.charge_type_raw,"
	 " m.zone, m.spec, m.model, m.created_at, m.updated_at, m.expires_at, m.tags::jsonb,"
	 " m.raw::jsonb",
	 "region = m.region, name = m.name, status = m.status, status_raw = m.status_raw,"
	 " charge_type = m.charge_type, charge_type_raw = m.charge_type_raw, zone = m.zone,"
	 " spec = m.spec, model = m.model, created_at = m.created_at, updated_at = m.updated_at,"
	 " expires_at = m.expires_at, tags = m.tags::jsonb, raw = m.raw::jsonb",
	 "", "", "false", "", ""},
	{"service", 's', "aifleet.service", "provider, account, product, native_id", KEY_ON,
	 "region, native_id, instance_native_id, name, model, model_version, status, status_raw,"
	 " charge_type, charge_type_raw, replicas, created_at, updated_at, tags, raw",
	 "m.region, m.native_id, m.instance_native_id, m.name, m.model, m.model_version, m.status,"
	 " m.status_raw, m.charge_type, m.charge_type_raw, m.replicas, m.created_at,"
	 " m.updated_at, m.tags::jsonb, m.raw::jsonb",
	 "region = m.region, instance_id = m.owner_iid, instance_native_id = m.instance_native_id,"
	 " name = m.name, model = m.model, model_version = m.model_version, status = m.status,"
	 " status_raw = m.status_raw, charge_type = m.charge_type,"
	 " charge_type_raw = m.charge_type_raw, replicas = m.replicas,"
	 " created_at = m.created_at, updated_at = m.updated_at, tags = m.tags::jsonb,"
	 " raw = m.raw::jsonb",
	 ", o.id AS owner_iid",
	 " LEFT JOIN aifleet.instance o ON o.provider = s.provider AND o.account = s.account"
	 " AND o.product = s.product AND o.native_id = s.instance_native_id",
	 "o.id IS NULL", "instance_id, ", "m.owner_iid, "},
	{"resource", 'r', "aifleet.resource",
	 "provider, account, product, owner_kind, owner_native_id, kind",
	 "t.provider = s.provider AND t.account = s.account AND t.product = s.product"
	 " AND t.owner_kind = s.owner_kind AND t.owner_native_id = s.owner_native_id"
	 " AND t.kind = s.kind",
	 "region, owner_kind, owner_native_id, kind, capacity, used, per_replica, unit, gpu_model,"
	 " basis",
	 "m.region, m.owner_kind, m.owner_native_id, m.kind, m.capacity, m.used, m.per_replica,"
	 " m.unit, m.gpu_model, m.basis",
	 "region = m.region, instance_id = m.owner_iid, service_id = m.owner_sid,"
	 " capacity = m.capacity, used = m.used, per_replica = m.per_replica, unit = m.unit,"
	 " gpu_model = m.gpu_model, basis = m.basis",
	 ", oi.id AS owner_iid, os.id AS owner_sid",
	 " LEFT JOIN aifleet.instance oi ON s.owner_kind = 'instance' AND oi.provider = s.provider"
	 " AND oi.account = s.account AND oi.product = s.product"
	 " AND oi.native_id = s.owner_native_id"
	 " LEFT JOIN aifleet.service os ON s.owner_kind = 'service' AND os.provider = s.provider"
	 " AND os.account = s.account AND os.product = s.product"
	 " AND os.native_id = s.owner_native_id",
	 "oi.id IS NULL AND os.id IS NULL", "instance_id, service_id, ", "m.owner_iid, m.owner_sid, "},
};

static int run_sql(af_loader *l, const char *what, af_buf *q, const char *run_id, uint64_t *n)
{
	const char *params[1] = {run_id};

	if (!q->data)
		return af_error_set(AF_ERR_NOMEM, "out of memory");
	return exec_params(l, what, q->data, run_id ? 1 : 0, params, n);
}

/* Staging rows of one entity, de-duplicated (the last copy of a natural key
 * wins), joined to the current table and classified:
 * c(reated) u(pdated) r(estored) n(unchanged) x(orphan: owner unknown). */
static int classify(af_loader *l, const entity_sql *e, af_entity_counts *c)
{
	af_buf q = AF_BUF_INIT;
	PGresult *res = NULL;
	int err, i;

	af_buf_printf(&q,
		      "CREATE TEMP TABLE m_%s ON COMMIT DROP AS"
		      " SELECT s.*%s, t.id AS tid,"
		      " CASE WHEN %s THEN 'x' WHEN t.id IS NULL THEN 'c'"
		      " WHEN t.deleted_at IS NOT NULL THEN 'r'"
		      " WHEN t.content_hash <> s.content_hash THEN 'u' ELSE 'n' END AS action,"
		      " CASE WHEN t.id IS NOT NULL AND (t.deleted_at IS NOT NULL"
		      "  OR t.content_hash <> s.content_hash) THEN to_jsonb(t) END AS old"
		      " FROM (SELECT DISTINCT ON (%s) * FROM af_stage WHERE entity = '%c'"
		      "  ORDER BY %s, seq DESC) s%s"
		      " LEFT JOIN %s t ON %s",
		      e->type, e->extra, e->orphan, e->key, e->code, e->key, e->joins, e->table,
		      e->key_on);
	if ((err = run_sql(l, "classifying staged records", &q, NULL, NULL)) < 0)
		goto done;
	/* Without statistics the planner takes the fresh table for empty and
	 * picks nested loops for the tombstone anti-join: quadratic. */
	af_buf_reset(&q);
	/* The index keeps the anti-join cheap even when the target table's
	 * statistics are stale (right after a large first load). */
	af_buf_printf(&q, "ANALYZE m_%s; CREATE INDEX ON m_%s (tid)", e->type, e->type);
	if ((err = af_store_exec(l->conn, "analyzing classified records", q.data)) < 0)
		goto done;
	af_buf_reset(&q);
	af_buf_printf(&q, "SELECT action, count(*) FROM m_%s GROUP BY action", e->type);
	res = PQexec(l->conn, q.data);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(l->conn, res, "counting staged records");
		goto done;
	}
	for (i = 0; i < PQntuples(res); i++) {
		uint64_t n = strtoull(PQgetvalue(res, i, 1), NULL, 10);

		switch (PQgetvalue(res, i, 0)[0]) {
		case 'c': c->created = n; break;
		case 'u': c->updated = n; break;
		case 'r': c->restored = n; break;
		case 'n': c->unchanged = n; break;
		default: continue; /* orphans are rejected, not staged */
		}
		c->staged += n;
	}
	PQclear(res);
	res = NULL;
	/* An orphan (service of an unknown instance, resource of an unknown
	 * owner) is rejected: its scope becomes partial and keeps its rows. */
	af_buf_reset(&q);
	af_buf_printf(&q,
		      "WITH o AS (SELECT provider, account, region, product, count(*) AS n,"
		      "  min(coalesce(native_id, owner_native_id || '/' || kind)) AS id"
		      "  FROM m_%s WHERE action = 'x' GROUP BY 1, 2, 3, 4)"
		      " UPDATE af_scope sc SET eligible = false,"
		      "  state = CASE sc.state WHEN 'failed' THEN 'failed' ELSE 'partial' END,"
		      "  rejected = sc.rejected + o.n,"
		      "  error = coalesce(sc.error, 'rejected %s ' || o.id ||"
		      "   ': its owner is not in the inventory')"
		      " FROM o WHERE (sc.provider, sc.account, sc.region, sc.product)"
		      "  = (o.provider, o.account, o.region, o.product)",
		      e->type, e->type);
	err = run_sql(l, "rejecting orphans", &q, NULL, NULL);
done:
	PQclear(res);
	af_buf_free(&q);
	return err;
}

static int apply_upserts(af_loader *l, const entity_sql *e, const char *run_id, uint64_t *hist)
{
	af_buf q = AF_BUF_INIT;
	uint64_t n = 0;
	int err;

	/* created: the row and its first version, open-ended. */
	af_buf_printf(&q,
		      "WITH ins AS (INSERT INTO %s (provider, account, product, %s%s,"
		      "  content_hash, first_seen_at, last_changed_at, last_run_id)"
		      "  SELECT m.provider, m.account, m.product, %s%s, m.content_hash, now(), now(), $1"
		      "  FROM m_%s m WHERE m.action = 'c' RETURNING *)"
		      " INSERT INTO aifleet.history (entity_type, entity_id, valid, change, changed_at,"
		      "  run_id, diff, content)"
		      " SELECT '%s', ins.id, tstzrange(now(), NULL), 'created', now(), $1, NULL,"
		      "  to_jsonb(ins) FROM ins",
		      e->table, e->ins_cols, e->cols, e->ins_vals, e->vals, e->type, e->type);
	if ((err = run_sql(l, "inserting new records", &q, run_id, &n)) < 0)
		goto done;
	*hist += n;

	/* updated: close the open version first (the exclusion constraint is
	 * checked row by row), then write the row and open the next version. */
	af_buf_reset(&q);
	af_buf_printf(&q,
		      "UPDATE aifleet.history h SET valid = tstzrange(lower(h.valid), now())"
		      " FROM m_%s m WHERE m.action = 'u' AND h.entity_type = '%s'"
		      " AND h.entity_id = m.tid AND upper_inf(h.valid) AND NOT isempty(h.valid)",
		      e->type, e->type);
	if ((err = run_sql(l, "closing changed versions", &q, NULL, NULL)) < 0)
		goto done;
	af_buf_reset(&q);
	af_buf_printf(&q,
		      "WITH upd AS (UPDATE %s t SET %s, content_hash = m.content_hash,"
		      "  last_changed_at = now(), deleted_at = NULL, last_run_id = $1"
		      "  FROM m_%s m WHERE t.id = m.tid AND m.action IN ('u', 'r')"
		      "  RETURNING t.*, m.action AS af_action, m.old AS af_old)"
		      " INSERT INTO aifleet.history (entity_type, entity_id, valid, change, changed_at,"
		      "  run_id, diff, content)"
		      " SELECT '%s', upd.id, tstzrange(now(), NULL),"
		      "  CASE upd.af_action WHEN 'u' THEN 'updated' ELSE 'restored' END, now(), $1,"
		      "  aifleet.jsonb_diff(upd.af_old, c.content), c.content"
		      " FROM upd CROSS JOIN LATERAL"
		      "  (SELECT to_jsonb(upd) - 'af_action' - 'af_old' AS content) c",
		      e->table, e->set, e->type, e->type);
	if ((err = run_sql(l, "updating changed records", &q, run_id, &n)) < 0)
		goto done;
	*hist += n;
done:
	af_buf_free(&q);
	return err;
}

/*
 * The rows a complete (eligible) scope no longer has, found once into
 * v_<type>: the mass-delete guard counts them, apply_deletes tombstones
 * those of the scopes still eligible after it. Rows written by this run
 * (created, updated, restored) are present; unchanged ones are matched in
 * m_<type> by id.
 */
static int find_vanished(af_loader *l, const entity_sql *e, const char *run_id)
{
	af_buf q = AF_BUF_INIT;
	int err;

	/* CREATE TABLE AS takes no parameters: run_id is our own integer. */
	af_buf_printf(&q,
		      "CREATE TEMP TABLE v_%s ON COMMIT DROP AS"
		      " SELECT t.id, t.provider, t.account, t.region, t.product"
		      " FROM %s t JOIN af_scope sc USING (provider, account, region, product)"
		      " WHERE sc.eligible AND t.deleted_at IS NULL AND t.last_run_id <> %s"
		      " AND NOT EXISTS (SELECT 1 FROM m_%s m WHERE m.tid = t.id)",
		      e->type, e->table, run_id, e->type);
	err = run_sql(l, "finding vanished records", &q, NULL, NULL);
	af_buf_free(&q);
	return err;
}

/* Tombstones the vanished rows of the scopes still eligible: closes the
 * open version and adds a deletion marker with an empty validity period. */
static int apply_deletes(af_loader *l, const entity_sql *e, const char *run_id,
			 af_entity_counts *c, uint64_t *hist)
{
	af_buf q = AF_BUF_INIT;
	uint64_t n = 0;
	int err;

	af_buf_printf(&q,
		      "WITH del AS (UPDATE %s t SET deleted_at = now(), last_changed_at = now(),"
		      "  last_run_id = $1"
		      "  FROM v_%s v JOIN af_scope sc USING (provider, account, region, product)"
		      "  WHERE sc.eligible AND t.id = v.id"
		      "  RETURNING t.*),"
		      " closed AS (UPDATE aifleet.history h SET valid = tstzrange(lower(h.valid), now())"
		      "  FROM del WHERE h.entity_type = '%s' AND h.entity_id = del.id"
		      "  AND upper_inf(h.valid) AND NOT isempty(h.valid))"
		      " INSERT INTO aifleet.history (entity_type, entity_id, valid, change, changed_at,"
		      "  run_id, diff, content)"
		      " SELECT '%s', del.id, 'empty', 'deleted', now(), $1, NULL, to_jsonb(del)"
		      " FROM del",
		      e->table, e->type, e->type, e->type);
	if ((err = run_sql(l, "tombstoning vanished records", &q, run_id, &n)) < 0)
		goto done;
	c->deleted = n;
	*hist += n;
done:
	af_buf_free(&q);
	return err;
}

static scope_entry *scope_lookup(af_loader *l, const char *provider, const char *account,
				 const char *region, const char *product)
{
	for (size_t i = 0; i < l->nscopes; i++) {
		scope_entry *e = &l->scopes[i];

		if (str_eq(e->provider, provider) && str_eq(e->account, account) &&
		    str_eq(e->region, region) && str_eq(e->product, product))
			return e;
	}
	return NULL;
}

/*
 * The mass-delete guard, between the upserts and the tombstones: per
 * complete scope, what the tombstone pass would take (find_vanished)
 * against what was live before the run (that, plus the staged rows that
 * were live: updated or unchanged). A scope over both
 * thresholds, and not accepted with --allow-deletes, is held: no longer
 * eligible, so apply_deletes leaves it alone.
 */
static int hold_mass_deletes(af_loader *l, const char *run_id, af_load_summary *sum)
{
	af_buf q = AF_BUF_INIT;
	PGresult *res = NULL;
	char fraction[32], min[32];
	const char *params[2] = {fraction, min};
	int err = 0, i;

	snprintf(fraction, sizeof(fraction), "%.6f", l->guard.max_fraction);
	snprintf(min, sizeof(min), "%" PRIu64, l->guard.min_deletes);
	for (i = 0; i < 3; i++)
		if ((err = find_vanished(l, &entities[i], run_id)) < 0)
			goto done;
	af_buf_puts(&q, "WITH doomed AS (");
	for (i = 0; i < 3; i++)
		af_buf_printf(&q,
			      "%sSELECT provider, account, region, product, count(*) AS n"
			      " FROM v_%s v JOIN af_scope sc USING (provider, account, region, product)"
			      " WHERE NOT sc.allow_deletes GROUP BY 1, 2, 3, 4",
			      i ? " UNION ALL " : "", entities[i].type);
	af_buf_puts(&q, "), kept AS (");
	for (i = 0; i < 3; i++)
		af_buf_printf(&q,
			      "%sSELECT provider, account, region, product, count(*) AS n FROM m_%s"
			      " WHERE action IN ('u', 'n') GROUP BY 1, 2, 3, 4",
			      i ? " UNION ALL " : "", entities[i].type);
	af_buf_puts(&q,
		    "), c AS (SELECT d.provider, d.account, d.region, d.product, d.n AS doomed,"
		    "  d.n + coalesce((SELECT sum(k.n) FROM kept k WHERE (k.provider, k.account,"
		    "   k.region, k.product) = (d.provider, d.account, d.region, d.product)), 0) AS live"
		    "  FROM (SELECT provider, account, region, product, sum(n) AS n FROM doomed"
		    "   GROUP BY 1, 2, 3, 4) d)"
		    " UPDATE af_scope sc SET eligible = false, state = 'held',"
		    "  held_deletes = c.doomed, held_live = c.live,"
		    "  error = format('mass-delete guard: this run would tombstone %s of the scope''s"
		    " %s live entities (more than %s%% and more than %s), so nothing in it was"
		    " tombstoned; if they are really gone, accept with: aifleet sync"
		    " --allow-deletes %s/%s/%s/%s', c.doomed, c.live, round($1::numeric * 100, 1),"
		    "   $2, sc.provider, sc.account, sc.region, sc.product)"
		    " FROM c WHERE (sc.provider, sc.account, sc.region, sc.product)"
		    "  = (c.provider, c.account, c.region, c.product)"
		    "  AND c.doomed > $2::bigint AND c.doomed > $1::float8 * c.live"
		    " RETURNING sc.provider, sc.account, sc.region, sc.product, c.doomed, c.live,"
		    "  sc.error");
	if (!q.data) {
		err = af_error_set(AF_ERR_NOMEM, "out of memory");
		goto done;
	}
	res = PQexecParams(l->conn, q.data, 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(l->conn, res, "checking the mass-delete guard");
		goto done;
	}
	for (i = 0; i < PQntuples(res); i++) {
		scope_entry *e = scope_lookup(l, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
					      PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));

		if (e) {
			e->held = true;
			e->held_deletes = strtoull(PQgetvalue(res, i, 4), NULL, 10);
			e->held_live = strtoull(PQgetvalue(res, i, 5), NULL, 10);
		}
		af_warn("loader", "%s/%s/%s/%s: %s%s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
			PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
			l->dry_run ? "(dry run: would be held) " : "", PQgetvalue(res, i, 6));
	}
	sum->scopes_held = (size_t)PQntuples(res);
done:
	PQclear(res);
	af_buf_free(&q);
	return err;
}

bool af_loader_scope_held(af_loader *l, const af_scope *sc, uint64_t *deletes, uint64_t *live)
{
	scope_entry *e = scope_lookup(l, sc->provider, sc->account, sc->region, sc->product);

	if (!e || !e->held)
		return false;
	if (deletes)
		*deletes = e->held_deletes;
	if (live)
		*live = e->held_live;
	return true;
}

static int finish_run(af_loader *l, const char *run_id, af_load_summary *sum)
{
	char v[16][24];
	const char *p[17];
	const af_entity_counts *ec[3] = {&sum->instances, &sum->services, &sum->resources};
	uint64_t unscoped = l->rejected_unscoped;
	PGresult *res;
	int i, err;

	for (i = 0; i < 3; i++) {
		snprintf(v[5 * i + 0], 24, "%" PRIu64, ec[i]->staged);
		snprintf(v[5 * i + 1], 24, "%" PRIu64, ec[i]->created);
		snprintf(v[5 * i + 2], 24, "%" PRIu64, ec[i]->updated);
		snprintf(v[5 * i + 3], 24, "%" PRIu64, ec[i]->deleted);
		snprintf(v[5 * i + 4], 24, "%" PRIu64, ec[i]->restored);
	}
	snprintf(v[15], 24, "%" PRIu64, sum->history_rows);
	p[0] = run_id;
	for (i = 0; i < 16; i++)
		p[i + 1] = v[i];
	/* unchanged = staged - the rest, computed in SQL to keep the params short */
	res = PQexecParams(
		     l->conn,
		     "WITH sc AS (SELECT count(*) FILTER (WHERE eligible) AS complete,"
		     "  count(*) FILTER (WHERE state = 'failed') AS failed,"
		     "  count(*) FILTER (WHERE NOT eligible AND state <> 'failed') AS partial,"
		     "  count(*) FILTER (WHERE state = 'held') AS held,"
		     "  sum(rejected) AS rejected,"
		     "  (SELECT error FROM af_scope WHERE error IS NOT NULL"
		     "   ORDER BY provider, account, region, product LIMIT 1) AS error FROM af_scope)"
		     " UPDATE aifleet.sync_run r SET finished_at = clock_timestamp(),"
		     " status = CASE WHEN sc.partial = 0 AND sc.failed = 0 THEN 'succeeded'"
		     "  WHEN sc.complete = 0 AND sc.partial = 0 THEN 'failed' ELSE 'partial' END,"
		     " instances_staged = $2, instances_created = $3, instances_updated = $4,"
		     " instances_deleted = $5, instances_restored = $6,"
		     " instances_unchanged = $2::bigint - $3 - $4 - $6,"
		     " services_staged = $7, services_created = $8, services_updated = $9,"
		     " services_deleted = $10, services_restored = $11,"
		     " services_unchanged = $7::bigint - $8 - $9 - $11,"
		     " resources_staged = $12, resources_created = $13, resources_updated = $14,"
		     " resources_deleted = $15, resources_restored = $16,"
		     " resources_unchanged = $12::bigint - $13 - $14 - $16,"
		     " history_rows = $17, scopes_complete = sc.complete, scopes_partial = sc.partial,"
		     " scopes_failed = sc.failed, scopes_held = sc.held,"
		     " rejected = coalesce(sc.rejected, 0), error = sc.error"
		     " FROM sc WHERE r.id = $1 RETURNING sc.complete, sc.partial, sc.failed",
		     17, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		err = af_store_db_error(l->conn, res, "recording the run");
		PQclear(res);
		return err;
	}
	sum->scopes_complete = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	sum->scopes_partial = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	sum->scopes_failed = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
	PQclear(res);
	if (unscoped > 0)
		af_warn("loader", "%" PRIu64 " records without a complete scope were rejected",
			unscoped);
	p[0] = run_id;
	return exec_params(
		l, "updating the scope ledger",
		"INSERT INTO aifleet.scope_state AS ss (provider, account, region, product,"
		" last_run_id, last_attempt_at, last_complete_at, last_state, last_error, pages, items,"
		" duplicates, rejected, requests, retries, throttled, seconds, held_deletes,"
		" held_live)"
		" SELECT provider, account, region, product, $1, now(),"
		"  CASE WHEN eligible THEN now() END,"
		"  CASE WHEN eligible THEN 'complete' WHEN state IN ('failed', 'held') THEN state"
		"   ELSE 'partial' END, error, pages, items, duplicates, rejected, requests, retries,"
		"  throttled, seconds, held_deletes, held_live FROM af_scope"
		" ON CONFLICT (provider, account, region, product) DO UPDATE SET"
		" last_run_id = EXCLUDED.last_run_id, last_attempt_at = EXCLUDED.last_attempt_at,"
		" last_complete_at = coalesce(EXCLUDED.last_complete_at, ss.last_complete_at),"
		" last_state = EXCLUDED.last_state, last_error = EXCLUDED.last_error,"
		" pages = EXCLUDED.pages, items = EXCLUDED.items, duplicates = EXCLUDED.duplicates,"
		" rejected = EXCLUDED.rejected, requests = EXCLUDED.requests,"
		" retries = EXCLUDED.retries, throttled = EXCLUDED.throttled,"
		" seconds = EXCLUDED.seconds, held_deletes = EXCLUDED.held_deletes,"
		" held_live = EXCLUDED.held_live",
		1, p, NULL);
}

int af_loader_commit(af_loader *l, af_load_summary *out)
{
	af_load_summary sum;
	af_entity_counts *counts[3];
	struct timespec t_merge;
	char run_id[24];
	size_t i;
	int err = 0;

	memset(&sum, 0, sizeof(sum));
	counts[0] = &sum.instances;
	counts[1] = &sum.services;
	counts[2] = &sum.resources;
	if (out)
		memset(out, 0, sizeof(*out));
	if (l->committed || !l->in_tx)
		return af_error_set(AF_ERR_PARAM, "the run is not open");
	if (l->failed) {
		err = af_error_set(AF_ERR_PARAM, "the run failed earlier; nothing was committed");
		goto done;
	}
	snprintf(run_id, sizeof(run_id), "%" PRId64, l->run_id);
	if ((err = end_copy(l)) < 0)
		goto done;
	sum.copy_seconds = seconds_since(&l->t_begin);
	clock_gettime(CLOCK_MONOTONIC, &t_merge);
	if ((err = stage_scopes(l)) < 0)
		goto done;
	/* Sorting and hashing a large staging table in memory is what keeps
	 * the merge fast; the setting ends with the transaction. */
	if ((err = af_store_exec(l->conn, "preparing the merge",
				 "SET LOCAL work_mem = '128MB'; ANALYZE af_stage; ANALYZE af_scope")) <
	    0)
		goto done;
	/* Parents first, so that children can resolve their owner's id. */
	for (i = 0; i < 3; i++) {
		if ((err = classify(l, &entities[i], counts[i])) < 0)
			goto done;
		if ((err = apply_upserts(l, &entities[i], run_id, &sum.history_rows)) < 0)
			goto done;
	}
	/* Tombstones last, after every orphan made its scope ineligible and
	 * the guard held the scopes that would lose too much. */
	if ((err = hold_mass_deletes(l, run_id, &sum)) < 0)
		goto done;
	for (i = 0; i < 3; i++)
		if ((err = apply_deletes(l, &entities[i], run_id, counts[i], &sum.history_rows)) < 0)
			goto done;
	for (i = 0; i < 3; i++)
		counts[i]->unchanged = counts[i]->staged - counts[i]->created - counts[i]->updated -
				       counts[i]->restored;
	if ((err = finish_run(l, run_id, &sum)) < 0)
		goto done;
	sum.merge_seconds = seconds_since(&t_merge);
	if (l->dry_run) {
		err = af_store_exec(l->conn, "rolling back the dry run", "ROLLBACK");
		sum.run_id = 0;
	} else {
		err = af_store_exec(l->conn, "committing the run", "COMMIT");
		sum.run_id = l->run_id;
	}
	l->in_tx = false;
	if (err < 0)
		goto done;
	l->committed = true;
	if (out)
		*out = sum;
	af_info("loader",
		"run %" PRId64 "%s: instances +%" PRIu64 " ~%" PRIu64 " -%" PRIu64 " services +%" PRIu64
		" ~%" PRIu64 " -%" PRIu64 " resources +%" PRIu64 " ~%" PRIu64 " -%" PRIu64
		", %" PRIu64 " history rows, copy %.2fs merge %.2fs",
		l->run_id, l->dry_run ? " (dry run, rolled back)" : "", sum.instances.created,
		sum.instances.updated, sum.instances.deleted, sum.services.created,
		sum.services.updated, sum.services.deleted, sum.resources.created,
		sum.resources.updated, sum.resources.deleted, sum.history_rows, sum.copy_seconds,
		sum.merge_seconds);
done:
	if (err < 0)
		l->failed = true;
	return err;
}

void af_loader_free(af_loader *l)
{
	PGresult *res;
	char sql[96];
	size_t i;

	if (!l)
		return;
	if (l->copying) {
		/* Abort the COPY: the server fails it, and the ROLLBACK below
		 * discards the transaction. */
		PQputCopyEnd(l->conn, "aifleet run aborted");
		while ((res = PQgetResult(l->conn)) != NULL)
			PQclear(res);
		l->copying = false;
	}
	if (l->in_tx && PQstatus(l->conn) == CONNECTION_OK)
		PQclear(PQexec(l->conn, "ROLLBACK"));
	if (l->locked && PQstatus(l->conn) == CONNECTION_OK) {
		snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%lld)", AF_STORE_RUN_LOCK_KEY);
		PQclear(PQexec(l->conn, sql));
	}
	if (l->store)
		l->store->in_run = false;
	for (i = 0; i < l->nscopes; i++)
		scope_entry_free(&l->scopes[i]);
	free(l->scopes);
	free(l->trigger);
	af_buf_free(&l->batch);
	EVP_MD_CTX_free(l->md);
	if (l->tok)
		json_tokener_free(l->tok);
	free(l);
}
