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
 * What an entity's columns are -- and so what is validated, hashed, staged
 * and merged -- is one table per entity in columns.c; this file runs the run.
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
#include "columns.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/clock.h"
#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/store.h"
#include "aifleet/version.h"

/* Bytes of COPY text buffered before PQputCopyData: memory stays flat
 * whatever the size of the fleet. */
#define BATCH_BYTES ((size_t)256 * 1024)
/* One record (with its raw payload) may not exceed this. */
#define ROW_MAX ((size_t)16 * 1024 * 1024)

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
	bool locked, in_tx, copying, committed;
	/* The error that ended the run (0 while it goes on), and its message:
	 * every later call fails with the same class, so a lost database
	 * stays a lost database (exit 75) however the caller learns of it. */
	int failed;
	char failure[512];
	int64_t run_id;
	uint64_t seq;
	af_stage stage; /* the staging table and merge SQL, from columns.c */
	af_buf batch;
	EVP_MD_CTX *md;
	json_tokener *tok;
	scope_entry *scopes;
	size_t nscopes, scopes_alloc;
	uint64_t rejected_unscoped;
	double t_begin;          /* af_clock_seconds() at begin */
};

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
			return af_error_oom();
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
		return af_error_oom();
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

/* ---- records ------------------------------------------------------------ */

static bool nonempty(const char *s)
{
	return s && *s;
}

/* Ends the run with `err` (the last error's message); returns `err`. */
static int fail_run(af_loader *l, int err)
{
	if (!l->failed) {
		l->failed = err;
		snprintf(l->failure, sizeof(l->failure), "%s", af_error_last());
	}
	return err;
}

/* After the run failed: the same class, the first cause named. */
static int run_failed(const af_loader *l, const char *what)
{
	return af_error_set(l->failed, "%s: the run failed earlier (%s)", what, l->failure);
}

/* Counts a rejected record against its scope (which becomes partial) and
 * sets the error that names it. */
static int reject(af_loader *l, const af_scope *sc, const char *what, const char *id,
		  const char *why)
{
	scope_entry *e;
	char name[1024];
	int err;

	if (!af_scope_valid(sc)) {
		l->rejected_unscoped++;
		return af_error_set(AF_ERR_DATA, "rejected %s %s: incomplete scope (%s)", what,
				    id ? id : "(no id)", why);
	}
	/* A hostile id may be kilobytes long: name it by its start. */
	af_error_set(AF_ERR_DATA, "rejected %s %.*s%s in scope %s: %s", what,
		     nonempty(id) ? 128 : 64, nonempty(id) ? id : "(no native id)",
		     nonempty(id) && strlen(id) > 128 ? "..." : "",
		     af_scope_name(name, sizeof(name), sc), why);
	if ((err = scope_find(&e, l, sc)) < 0)
		return fail_run(l, err);
	e->loader_rejected++;
	if (!e->first_reject)
		e->first_reject = strdup(af_error_last());
	af_warn("loader", "%s", af_error_last());
	return AF_ERR_DATA;
}

static int flush_batch(af_loader *l)
{
	if (af_buf_len(&l->batch) == 0)
		return 0;
	if (PQputCopyData(l->conn, af_buf_data(&l->batch), (int)af_buf_len(&l->batch)) != 1) {
		/* libpq reports a failed send while the connection still looks
		 * fine; reading what is left tells a lost server (which marks
		 * it bad, so the error is transient) from a refused COPY. */
		PQconsumeInput(l->conn);
		return fail_run(l, af_store_db_error(l->conn, NULL,
						     "streaming records to PostgreSQL"));
	}
	af_buf_reset(&l->batch);
	return 0;
}

/* Appends the record's COPY row to the batch, and hands a full batch on. */
static int stage_row(af_loader *l, const af_entity *e, const af_scope *sc, const void *rec,
		     const char *id)
{
	size_t start = af_buf_len(&l->batch);
	int err = af_stage_put_row(&l->stage, &l->batch, l->md, e, ++l->seq, sc, rec);

	if (err == 0)
		return af_buf_len(&l->batch) >= BATCH_BYTES ? flush_batch(l) : 0;
	/* Never leave half a row in the stream. */
	af_buf_truncate(&l->batch, start);
	/* A record too large for one COPY row (ROW_MAX) is rejected alone: one
	 * odd item must not fail every other scope of the run. */
	if (err == AF_ERR_LIMIT)
		return reject(l, sc, e->type, id,
			      "the record is larger than the loader's 16 MiB row limit");
	/* Bad data is that record's problem too; anything else ends the run. */
	return err == AF_ERR_DATA ? err : fail_run(l, err);
}

static int usable(af_loader *l)
{
	if (l->failed)
		return run_failed(l, "the loader is not accepting records");
	if (!l->copying)
		return af_error_set(AF_ERR_PARAM, "the loader is not accepting records (not "
				    "started or already committed)");
	return 0;
}

/* Validates a record against its entity's columns, then stages it; `id`
 * names it in a rejection. */
static int sink_record(af_loader *l, const af_entity *e, const af_scope *sc, const void *rec,
		       const char *id)
{
	const char *why;
	char msg[160];
	int err;

	if ((err = usable(l)) < 0)
		return err;
	if (!af_scope_valid(sc))
		return reject(l, sc, e->type, id, "scope fields missing or invalid");
	if ((why = af_record_problem(e, rec, l->tok, msg, sizeof(msg))) != NULL)
		return reject(l, sc, e->type, id, why);
	return stage_row(l, e, sc, rec, id);
}

static int sink_instance(void *ctx, const af_scope *sc, const af_instance *in)
{
	return sink_record(ctx, &af_entities[AF_ENTITY_INSTANCE], sc, in, in->native_id);
}

static int sink_service(void *ctx, const af_scope *sc, const af_service *sv)
{
	return sink_record(ctx, &af_entities[AF_ENTITY_SERVICE], sc, sv, sv->native_id);
}

static int sink_resource(void *ctx, const af_scope *sc, const af_resource *rs)
{
	char id[512];

	/* A resource has no id of its own: its owner's and its kind name it. */
	snprintf(id, sizeof(id), "%s/%s", rs->owner_id ? rs->owner_id : "(no owner)",
		 rs->kind ? rs->kind : "(no kind)");
	return sink_record(ctx, &af_entities[AF_ENTITY_RESOURCE], sc, rs, id);
}

af_record_sink af_loader_sink(af_loader *l)
{
	af_record_sink sink = {sink_instance, sink_service, sink_resource, l};

	return sink;
}

/* ---- begin ------------------------------------------------------------ */

/* The run's scope ledger, filled at commit (stage_scopes). af_stage itself
 * comes from the column tables (columns.c). */
static const char scope_table_sql[] =
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

/* A loader with its buffers, parser and generated SQL; no database work yet. */
static int loader_new(af_loader **out, af_store *s, const af_run_options *opts)
{
	af_loader *l = calloc(1, sizeof(*l));
	int err = 0;

	*out = NULL;
	if (!l)
		return af_error_oom();
	l->t_begin = af_clock_seconds();
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
		err = af_error_oom();
		goto done;
	}
	json_tokener_set_flags(l->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	if ((err = af_stage_init(&l->stage)) < 0)
		goto done;
	*out = l;
	l = NULL;
done:
	af_loader_free(l);
	return err;
}

static int insert_run_row(af_loader *l)
{
	const char *params[2] = {l->trigger, AIFLEET_VERSION};
	PGresult *res = PQexecParams(l->conn,
				     "INSERT INTO aifleet.sync_run (trigger, tool_version, status)"
				     " VALUES ($1, $2, 'running') RETURNING id",
				     2, NULL, params, NULL, NULL, 0);
	int err = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		err = af_store_db_error(l->conn, res, "recording the run (is the schema migrated?)");
	else
		l->run_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return err;
}

static int start_copy(af_loader *l)
{
	PGresult *res = PQexec(l->conn, l->stage.copy_sql);
	int err = 0;

	if (PQresultStatus(res) != PGRES_COPY_IN)
		err = af_store_db_error(l->conn, res, "starting COPY into staging");
	else
		l->copying = true;
	PQclear(res);
	return err;
}

/* The lock, the run's transaction, its staging tables and sync_run row,
 * then COPY: from here on the sink accepts records. */
static int open_run(af_loader *l, bool wait_for_lock)
{
	int err;

	if ((err = take_lock(l, wait_for_lock)) < 0)
		return err;
	if ((err = af_store_exec(l->conn, "starting the run transaction", "BEGIN")) < 0)
		return err;
	l->in_tx = true;
	if ((err = af_store_exec(l->conn, "creating staging tables", l->stage.create_sql)) < 0 ||
	    (err = af_store_exec(l->conn, "creating staging tables", scope_table_sql)) < 0)
		return err;
	if ((err = insert_run_row(l)) < 0)
		return err;
	return start_copy(l);
}

int af_loader_begin(af_loader **out, af_store *s, const af_run_options *opts)
{
	static const af_run_options defaults = {false, false, NULL, NULL};
	af_loader *l = NULL;
	int err;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (s->in_run)
		return af_error_set(AF_ERR_PARAM, "a run is already in progress on this connection");
	if ((err = loader_new(&l, s, opts)) < 0)
		return err;
	s->in_run = true;
	if ((err = open_run(l, opts->wait_for_lock)) < 0) {
		af_loader_free(l);
		return err;
	}
	*out = l;
	return 0;
}

int af_loader_scope_done(af_loader *l, const af_scope_report *report)
{
	scope_entry *e;
	int err;

	if (l->failed)
		return run_failed(l, "the loader is not accepting scope reports");
	if (l->committed)
		return af_error_set(AF_ERR_PARAM, "the loader is not accepting scope reports");
	if (!af_scope_valid(&report->scope))
		return af_error_set(AF_ERR_PARAM, "scope report without a complete scope");
	if ((err = scope_find(&e, l, &report->scope)) < 0)
		return fail_run(l, err);
	free(e->err_copy);
	e->err_copy = NULL;
	if (report->error && !(e->err_copy = strdup(report->error)))
		return fail_run(l, af_error_oom());
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
	af_scope sc = {e->provider, e->account, e->region, e->product};
	char name[1024];

	af_scope_name(name, sizeof(name), &sc);
	for (size_t i = 0; i < l->guard.nallow; i++)
		if (strcmp(l->guard.allow[i], "all") == 0 || strcmp(l->guard.allow[i], name) == 0)
			return true;
	return false;
}

/* One scope's row of af_scope: its report, judged with the loader's own
 * rejections. */
static int stage_scope(af_loader *l, const scope_entry *e)
{
	const af_scope_report *r = &e->report;
	char nums[8][32];
	const char *state = "partial";
	const char *error = e->reported ? r->error : "scope not reported by the collector";
	uint64_t rejected = r->rejected + e->loader_rejected;
	bool eligible = e->reported && r->state == AF_SCOPE_COMPLETE && rejected == 0;
	const char *p[17] = {e->provider, e->account, e->region, e->product,
			     e->reported ? "t" : "f", NULL, NULL, nums[0], nums[1], nums[2],
			     nums[3], nums[4], nums[5], nums[6], nums[7], eligible ? "t" : "f",
			     deletes_allowed(l, e) ? "t" : "f"};

	if (e->reported && r->state == AF_SCOPE_FAILED)
		state = "failed";
	else if (eligible)
		state = "complete";
	if (!error && e->first_reject)
		error = e->first_reject;
	p[5] = state;
	p[6] = error;
	snprintf(nums[0], 32, "%" PRIu64, r->pages);
	snprintf(nums[1], 32, "%" PRIu64, r->items);
	snprintf(nums[2], 32, "%" PRIu64, r->duplicates);
	snprintf(nums[3], 32, "%" PRIu64, rejected);
	snprintf(nums[4], 32, "%" PRIu64, r->requests);
	snprintf(nums[5], 32, "%" PRIu64, r->retries);
	snprintf(nums[6], 32, "%" PRIu64, r->throttled);
	snprintf(nums[7], 32, "%.3f", isfinite(r->seconds) ? r->seconds : 0.0);
	return exec_params(l, "staging scope reports",
			   "INSERT INTO af_scope (provider, account, region, product,"
			   " reported, state, error, pages, items, duplicates, rejected,"
			   " requests, retries, throttled, seconds, eligible, allow_deletes)"
			   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
			   " $13, $14, $15, $16, $17)",
			   17, p, NULL);
}

static int stage_scopes(af_loader *l)
{
	int err;

	for (size_t i = 0; i < l->nscopes; i++)
		if ((err = stage_scope(l, &l->scopes[i])) < 0)
			return err;
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

static int run_sql(af_loader *l, const char *what, af_buf *q, const char *run_id, uint64_t *n)
{
	const char *params[1] = {run_id};

	if (!af_buf_data(q))
		return af_error_oom();
	return exec_params(l, what, af_buf_data(q), run_id ? 1 : 0, params, n);
}

/* Staging rows of one entity, de-duplicated (the last copy of a natural key
 * wins), joined to the current table and classified into m_<type>:
 * c(reated) u(pdated) r(estored) n(unchanged) x(orphan: owner unknown). */
static int classify(af_loader *l, const af_entity *e, const af_merge_sql *m)
{
	af_buf q = AF_BUF_INIT;
	int err;

	if ((err = af_buf_printf(&q,
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
				 e->type, m->owner_ids, e->orphan, m->key, e->code, m->key,
				 e->owner_joins, e->table, m->key_match)) < 0 ||
	    (err = run_sql(l, "classifying staged records", &q, NULL, NULL)) < 0)
		goto done;
	/* Without statistics the planner takes the fresh table for empty and
	 * picks nested loops for the tombstone anti-join: quadratic. The index
	 * keeps the anti-join cheap even when the target table's statistics
	 * are stale (right after a large first load). */
	af_buf_reset(&q);
	if ((err = af_buf_printf(&q, "ANALYZE m_%s; CREATE INDEX ON m_%s (tid)", e->type,
				 e->type)) < 0)
		goto done;
	err = af_store_exec(l->conn, "analyzing classified records", af_buf_data(&q));
done:
	af_buf_free(&q);
	return err;
}

/* The staged rows of m_<type> by action; orphans are rejected, not staged. */
static int count_actions(af_loader *l, const af_entity *e, af_entity_counts *c)
{
	char sql[128];
	PGresult *res;
	int i, err = 0;

	snprintf(sql, sizeof(sql), "SELECT action, count(*) FROM m_%s GROUP BY action", e->type);
	res = PQexec(l->conn, sql);
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
		default: continue;
		}
		c->staged += n;
	}
done:
	PQclear(res);
	return err;
}

/* An orphan (service of an unknown instance, resource of an unknown owner)
 * is rejected: its scope becomes partial and keeps its rows. */
static int reject_orphans(af_loader *l, const af_entity *e)
{
	af_buf q = AF_BUF_INIT;
	int err;

	if ((err = af_buf_printf(&q,
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
				 e->type, e->type)) == 0)
		err = run_sql(l, "rejecting orphans", &q, NULL, NULL);
	af_buf_free(&q);
	return err;
}

/* created: the row and its first version, open-ended. */
static int insert_created(af_loader *l, const af_entity *e, const af_merge_sql *m,
			  const char *run_id, uint64_t *hist)
{
	af_buf q = AF_BUF_INIT;
	uint64_t n = 0;
	int err;

	if ((err = af_buf_printf(&q,
				 "WITH ins AS (INSERT INTO %s (%s,"
				 "  content_hash, first_seen_at, last_changed_at, last_run_id)"
				 "  SELECT %s, m.content_hash, now(), now(), $1"
				 "  FROM m_%s m WHERE m.action = 'c' RETURNING *)"
				 " INSERT INTO aifleet.history (entity_type, entity_id, valid, change,"
				 "  changed_at, run_id, diff, content)"
				 " SELECT '%s', ins.id, tstzrange(now(), NULL), 'created', now(), $1,"
				 "  NULL, to_jsonb(ins) FROM ins",
				 e->table, m->insert_cols, m->insert_vals, e->type, e->type)) == 0 &&
	    (err = run_sql(l, "inserting new records", &q, run_id, &n)) == 0)
		*hist += n;
	af_buf_free(&q);
	return err;
}

/* updated and restored: close the open version first (the exclusion
 * constraint is checked row by row), then write the row and open the next
 * version, with the diff against the old content. */
static int update_changed(af_loader *l, const af_entity *e, const af_merge_sql *m,
			  const char *run_id, uint64_t *hist)
{
	af_buf q = AF_BUF_INIT;
	uint64_t n = 0;
	int err;

	if ((err = af_buf_printf(&q,
				 "UPDATE aifleet.history h SET valid = tstzrange(lower(h.valid), now())"
				 " FROM m_%s m WHERE m.action = 'u' AND h.entity_type = '%s'"
				 " AND h.entity_id = m.tid AND upper_inf(h.valid)"
				 " AND NOT isempty(h.valid)",
				 e->type, e->type)) < 0 ||
	    (err = run_sql(l, "closing changed versions", &q, NULL, NULL)) < 0)
		goto done;
	af_buf_reset(&q);
	if ((err = af_buf_printf(&q,
				 "WITH upd AS (UPDATE %s t SET %s, content_hash = m.content_hash,"
				 "  last_changed_at = now(), deleted_at = NULL, last_run_id = $1"
				 "  FROM m_%s m WHERE t.id = m.tid AND m.action IN ('u', 'r')"
				 "  RETURNING t.*, m.action AS af_action, m.old AS af_old)"
				 " INSERT INTO aifleet.history (entity_type, entity_id, valid, change,"
				 "  changed_at, run_id, diff, content)"
				 " SELECT '%s', upd.id, tstzrange(now(), NULL),"
				 "  CASE upd.af_action WHEN 'u' THEN 'updated' ELSE 'restored' END,"
				 "  now(), $1, aifleet.jsonb_diff(upd.af_old, c.content), c.content"
				 " FROM upd CROSS JOIN LATERAL"
				 "  (SELECT to_jsonb(upd) - 'af_action' - 'af_old' AS content) c",
				 e->table, m->set, e->type, e->type)) < 0 ||
	    (err = run_sql(l, "updating changed records", &q, run_id, &n)) < 0)
		goto done;
	*hist += n;
done:
	af_buf_free(&q);
	return err;
}

/* One entity's part of the merge, up to (not including) the tombstones. */
static int merge_entity(af_loader *l, size_t i, const char *run_id, af_entity_counts *c,
			uint64_t *hist)
{
	const af_entity *e = &af_entities[i];
	const af_merge_sql *m = &l->stage.merge[i];
	int err;

	if ((err = classify(l, e, m)) < 0 || (err = count_actions(l, e, c)) < 0 ||
	    (err = reject_orphans(l, e)) < 0 || (err = insert_created(l, e, m, run_id, hist)) < 0)
		return err;
	return update_changed(l, e, m, run_id, hist);
}

/*
 * The rows a complete (eligible) scope no longer has, found once into
 * v_<type>: the mass-delete guard counts them, apply_deletes tombstones
 * those of the scopes still eligible after it. Rows written by this run
 * (created, updated, restored) are present; unchanged ones are matched in
 * m_<type> by id.
 */
static int find_vanished(af_loader *l, const af_entity *e, const char *run_id)
{
	af_buf q = AF_BUF_INIT;
	int err;

	/* CREATE TABLE AS takes no parameters: run_id is our own integer. */
	if ((err = af_buf_printf(&q,
				 "CREATE TEMP TABLE v_%s ON COMMIT DROP AS"
				 " SELECT t.id, t.provider, t.account, t.region, t.product"
				 " FROM %s t JOIN af_scope sc USING (provider, account, region, product)"
				 " WHERE sc.eligible AND t.deleted_at IS NULL AND t.last_run_id <> %s"
				 " AND NOT EXISTS (SELECT 1 FROM m_%s m WHERE m.tid = t.id)",
				 e->type, e->table, run_id, e->type)) == 0)
		err = run_sql(l, "finding vanished records", &q, NULL, NULL);
	af_buf_free(&q);
	return err;
}

/* Tombstones the vanished rows of the scopes still eligible: closes the
 * open version and adds a deletion marker with an empty validity period. */
static int apply_deletes(af_loader *l, const af_entity *e, const char *run_id,
			 af_entity_counts *c, uint64_t *hist)
{
	af_buf q = AF_BUF_INIT;
	uint64_t n = 0;
	int err;

	if ((err = af_buf_printf(
		     &q,
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
		     e->table, e->type, e->type, e->type)) < 0 ||
	    (err = run_sql(l, "tombstoning vanished records", &q, run_id, &n)) < 0)
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

/* The guard's counts per scope not accepted with --allow-deletes, as the
 * CTEs doomed (what the tombstone pass would take: v_<type>) and kept (the
 * staged rows that were live: updated or unchanged). */
static int put_guard_counts(af_buf *q)
{
	size_t i;
	int err = af_buf_puts(q, "WITH doomed AS (");

	for (i = 0; !err && i < AF_NENTITIES; i++)
		err = af_buf_printf(q,
				    "%sSELECT provider, account, region, product, count(*) AS n"
				    " FROM v_%s v JOIN af_scope sc USING (provider, account, region,"
				    " product) WHERE NOT sc.allow_deletes GROUP BY 1, 2, 3, 4",
				    i ? " UNION ALL " : "", af_entities[i].type);
	if (!err)
		err = af_buf_puts(q, "), kept AS (");
	for (i = 0; !err && i < AF_NENTITIES; i++)
		err = af_buf_printf(q,
				    "%sSELECT provider, account, region, product, count(*) AS n"
				    " FROM m_%s WHERE action IN ('u', 'n') GROUP BY 1, 2, 3, 4",
				    i ? " UNION ALL " : "", af_entities[i].type);
	return err ? err : af_buf_puts(q, ")");
}

/* After put_guard_counts: holds the scopes over both thresholds ($1 the
 * fraction, $2 the minimum) and returns them. */
static const char guard_hold_sql[] =
	", c AS (SELECT d.provider, d.account, d.region, d.product, d.n AS doomed,"
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
	"  sc.error";

/* Notes each scope the guard held (guard_hold_sql's rows), and says so. */
static void note_held(af_loader *l, const PGresult *res, af_load_summary *sum)
{
	for (int i = 0; i < PQntuples(res); i++) {
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
	int err = 0;

	snprintf(fraction, sizeof(fraction), "%.6f", l->guard.max_fraction);
	snprintf(min, sizeof(min), "%" PRIu64, l->guard.min_deletes);
	for (size_t i = 0; i < AF_NENTITIES; i++)
		if ((err = find_vanished(l, &af_entities[i], run_id)) < 0)
			goto done;
	if ((err = put_guard_counts(&q)) < 0 || (err = af_buf_puts(&q, guard_hold_sql)) < 0)
		goto done;
	res = PQexecParams(l->conn, af_buf_data(&q), 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(l->conn, res, "checking the mass-delete guard");
		goto done;
	}
	note_held(l, res, sum);
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

/* The run's row: counts and outcome. $1 the run, $2.. the counts of
 * record_run; unchanged = staged - the rest, computed here to keep the
 * parameters short. Returns the scope counts. */
static const char record_run_sql[] =
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
	" FROM sc WHERE r.id = $1 RETURNING sc.complete, sc.partial, sc.failed";

/* The scope ledger from af_scope; $1 the run. */
static const char update_ledger_sql[] =
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
	" held_live = EXCLUDED.held_live";

static int record_run(af_loader *l, const char *run_id, af_load_summary *sum)
{
	const af_entity_counts *ec[3] = {&sum->instances, &sum->services, &sum->resources};
	char v[16][24];
	const char *p[17];
	PGresult *res;
	int i, err = 0;

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
	res = PQexecParams(l->conn, record_run_sql, 17, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		err = af_store_db_error(l->conn, res, "recording the run");
	} else {
		sum->scopes_complete = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		sum->scopes_partial = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
		sum->scopes_failed = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
	}
	PQclear(res);
	return err;
}

static int finish_run(af_loader *l, const char *run_id, af_load_summary *sum)
{
	const char *p[1] = {run_id};
	int err;

	if ((err = record_run(l, run_id, sum)) < 0)
		return err;
	if (l->rejected_unscoped > 0)
		af_warn("loader", "%" PRIu64 " records without a complete scope were rejected",
			l->rejected_unscoped);
	return exec_params(l, "updating the scope ledger", update_ledger_sql, 1, p, NULL);
}

/* The merge proper, inside the run's transaction, after the COPY. */
static int merge(af_loader *l, const char *run_id, af_load_summary *sum)
{
	af_entity_counts *counts[AF_NENTITIES] = {&sum->instances, &sum->services,
						  &sum->resources};
	size_t i;
	int err;

	if ((err = stage_scopes(l)) < 0)
		return err;
	/* Sorting and hashing a large staging table in memory is what keeps
	 * the merge fast; the setting ends with the transaction. */
	if ((err = af_store_exec(l->conn, "preparing the merge",
				 "SET LOCAL work_mem = '128MB'; ANALYZE af_stage; ANALYZE af_scope")) <
	    0)
		return err;
	/* Parents first (af_entities' order), so that children can resolve
	 * their owner's id. */
	for (i = 0; i < AF_NENTITIES; i++)
		if ((err = merge_entity(l, i, run_id, counts[i], &sum->history_rows)) < 0)
			return err;
	/* Tombstones last, after every orphan made its scope ineligible and
	 * the guard held the scopes that would lose too much. */
	if ((err = hold_mass_deletes(l, run_id, sum)) < 0)
		return err;
	for (i = 0; i < AF_NENTITIES; i++)
		if ((err = apply_deletes(l, &af_entities[i], run_id, counts[i],
					 &sum->history_rows)) < 0)
			return err;
	for (i = 0; i < AF_NENTITIES; i++)
		counts[i]->unchanged = counts[i]->staged - counts[i]->created - counts[i]->updated -
				       counts[i]->restored;
	return finish_run(l, run_id, sum);
}

static void log_summary(const af_loader *l, const af_load_summary *sum)
{
	af_info("loader",
		"run %" PRId64 "%s: instances +%" PRIu64 " ~%" PRIu64 " -%" PRIu64 " services +%" PRIu64
		" ~%" PRIu64 " -%" PRIu64 " resources +%" PRIu64 " ~%" PRIu64 " -%" PRIu64
		", %" PRIu64 " history rows, copy %.2fs merge %.2fs",
		l->run_id, l->dry_run ? " (dry run, rolled back)" : "", sum->instances.created,
		sum->instances.updated, sum->instances.deleted, sum->services.created,
		sum->services.updated, sum->services.deleted, sum->resources.created,
		sum->resources.updated, sum->resources.deleted, sum->history_rows, sum->copy_seconds,
		sum->merge_seconds);
}

int af_loader_commit(af_loader *l, af_load_summary *out)
{
	af_load_summary sum;
	double t_merge;
	char run_id[24];
	int err = 0;

	memset(&sum, 0, sizeof(sum));
	if (out)
		memset(out, 0, sizeof(*out));
	if (l->committed || !l->in_tx)
		return af_error_set(AF_ERR_PARAM, "the run is not open");
	if (l->failed)
		return run_failed(l, "nothing was committed");
	snprintf(run_id, sizeof(run_id), "%" PRId64, l->run_id);
	if ((err = end_copy(l)) < 0)
		goto done;
	sum.copy_seconds = af_clock_seconds() - l->t_begin;
	t_merge = af_clock_seconds();
	if ((err = merge(l, run_id, &sum)) < 0)
		goto done;
	sum.merge_seconds = af_clock_seconds() - t_merge;
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
	log_summary(l, &sum);
done:
	if (err < 0)
		fail_run(l, err);
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
	af_stage_free(&l->stage);
	EVP_MD_CTX_free(l->md);
	if (l->tok)
		json_tokener_free(l->tok);
	free(l);
}
