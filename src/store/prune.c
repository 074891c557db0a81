/*
 * History retention: aifleet/prune.h says what it promises. The parts:
 *
 *   cutoff   PostgreSQL reads --older-than or --before (its own interval
 *            and time syntax), and the cutoff must be in the past;
 *   locks    the run key shared (a run over the whole database excludes
 *            a prune) and the lock of every scope the ledger knows: a
 *            scope a run holds is left alone (busy), and the prune holds
 *            no sync up for longer than its batches;
 *   batches  history ids in windows of batch_ids, oldest first, each one
 *            DELETE in its own transaction: nothing is held for long,
 *            and a prune that stops leaves whole batches done.
 *
 * What goes: a closed version whose period ended at or before the cutoff
 * (it answers no as-of question at the cutoff or later), and a deletion
 * marker from before it (the change feed's record of a deletion; the
 * version it closed ended then too). Open versions, and the current
 * rows, are never touched.
 */
#include "aifleet/prune.h"
#include "locks.h"
#include "store_internal.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/error.h"
#include "aifleet/log.h"

#define DEFAULT_BATCH_IDS 10000

/* The rows of history a prune removes, for alias h, the cutoff $1, among
 * the scopes of af_prune_scope. */
#define PRUNABLE                                                                           \
	" ((NOT isempty(h.valid) AND NOT upper_inf(h.valid) AND upper(h.valid) <= $1)"    \
	"  OR (isempty(h.valid) AND h.changed_at < $1))"                                   \
	" AND (h.content ->> 'provider', h.content ->> 'account', h.content ->> 'region',"  \
	"  h.content ->> 'product') IN (SELECT provider, account, region, product"         \
	"  FROM af_prune_scope)"

/* The cutoff as RFC 3339 in UTC (the session's zone), from exactly one of
 * --older-than and --before; AF_ERR_PARAM when PostgreSQL cannot read it
 * or it is not in the past. */
static int read_cutoff(PGconn *conn, const af_prune_options *o, char *out, size_t n)
{
	const char *value = o->older_than ? o->older_than : o->before;
	const char *flag = o->older_than ? "--older-than" : "--before";
	const char *params[1] = {value};
	PGresult *res;
	const char *state;
	int err = 0;

	if (!o->older_than == !o->before)
		return af_error_set(AF_ERR_PARAM, "prune needs one cutoff: --older-than DURATION "
						  "or --before TIME");
	res = PQexecParams(conn,
			   o->older_than
				   ? "SELECT to_char(now() - $1::interval, 'YYYY-MM-DD\"T\"HH24:MI:SS.USTZH:TZM'),"
				     " now() - $1::interval < now()"
				   : "SELECT to_char($1::timestamptz, 'YYYY-MM-DD\"T\"HH24:MI:SS.USTZH:TZM'),"
				     " $1::timestamptz < now()",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state && strncmp(state, "22", 2) == 0)
			err = af_error_set(AF_ERR_PARAM, "%s: '%s' is not a %s", flag, value,
					   o->older_than ? "duration (180d, '6 months', 26h)"
							 : "time (2026-01-01, 2026-01-01T00:00Z)");
		else
			err = af_store_db_error(conn, res, "reading the cutoff");
	} else if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
		err = af_error_set(AF_ERR_PARAM, "%s %s: the cutoff %s is not in the past", flag,
				   value, PQgetvalue(res, 0, 0));
	} else {
		snprintf(out, n, "%s", PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	return err;
}

/* Every scope the ledger knows, for the locks. The strings live in *res. */
static int ledger_scopes(PGconn *conn, PGresult **res, af_scope **scopes, size_t *n)
{
	*res = PQexec(conn, "SELECT provider, account, region, product FROM aifleet.scope_state"
			    " ORDER BY 1, 2, 3, 4");
	if (PQresultStatus(*res) != PGRES_TUPLES_OK)
		return af_store_db_error(conn, *res, "reading the scope ledger");
	*n = (size_t)PQntuples(*res);
	if (!(*scopes = calloc(*n ? *n : 1, sizeof(**scopes))))
		return af_error_oom();
	for (size_t i = 0; i < *n; i++)
		(*scopes)[i] = (af_scope){PQgetvalue(*res, (int)i, 0), PQgetvalue(*res, (int)i, 1),
					  PQgetvalue(*res, (int)i, 2), PQgetvalue(*res, (int)i, 3)};
	return 0;
}

/* The scopes whose locks are held, as the temporary table PRUNABLE reads:
 * exactly those, in one statement (a JSON array, json-c's to quote). */
static int stage_scopes(PGconn *conn, const af_scope *scopes, size_t n, const bool *busy)
{
	json_object *list = json_object_new_array();
	const char *params[1];
	PGresult *res;
	int err = 0;

	if (!list)
		return af_error_oom();
	for (size_t i = 0; i < n && err == 0; i++) {
		json_object *o;

		if (busy[i])
			continue;
		if (!(o = json_object_new_object()) || json_object_array_add(list, o) < 0 ||
		    json_object_object_add(o, "provider", json_object_new_string(scopes[i].provider)) ||
		    json_object_object_add(o, "account", json_object_new_string(scopes[i].account)) ||
		    json_object_object_add(o, "region", json_object_new_string(scopes[i].region)) ||
		    json_object_object_add(o, "product", json_object_new_string(scopes[i].product)))
			err = af_error_oom();
	}
	if (err == 0 && !(params[0] = json_object_to_json_string_ext(list, JSON_C_TO_STRING_PLAIN)))
		err = af_error_oom();
	if (err == 0) {
		res = PQexecParams(conn,
				   "CREATE TEMP TABLE af_prune_scope AS SELECT * FROM json_to_recordset($1)"
				   " AS s (provider text, account text, region text, product text)",
				   1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			err = af_store_db_error(conn, res, "preparing the prune");
		PQclear(res);
	}
	json_object_put(list);
	return err;
}

/* Runs a statement with the cutoff (and a window) that answers one row of
 * two counts: versions, markers. */
static int count_query(PGconn *conn, const char *what, const char *sql, int nparams,
		       const char *const *params, uint64_t *versions, uint64_t *markers)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	int err = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		err = af_store_db_error(conn, res, what);
	} else {
		*versions += strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		*markers += strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	}
	PQclear(res);
	return err;
}

static int id_range(PGconn *conn, int64_t *lo, int64_t *hi)
{
	PGresult *res = PQexec(conn, "SELECT coalesce(min(id), 0), coalesce(max(id), -1)"
				     " FROM aifleet.history");
	int err = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		err = af_store_db_error(conn, res, "reading history's ids");
	else {
		*lo = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		*hi = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	}
	PQclear(res);
	return err;
}

/* The batches: [lo, lo + step), ... up to hi, oldest first. */
static int delete_batches(PGconn *conn, const af_prune_options *o, af_prune_result *r)
{
	int64_t lo = 0, hi = -1, step = o->batch_ids > 0 ? o->batch_ids : DEFAULT_BATCH_IDS;
	char from[24], to[24];
	const char *params[3] = {r->cutoff, from, to};
	int err;

	if ((err = id_range(conn, &lo, &hi)) < 0)
		return err;
	for (int64_t at = lo; at <= hi; at += step) {
		snprintf(from, sizeof(from), "%" PRId64, at);
		snprintf(to, sizeof(to), "%" PRId64, at + step);
		if ((err = count_query(conn, "deleting history",
				       "WITH d AS (DELETE FROM aifleet.history h WHERE h.id >= $2"
				       " AND h.id < $3 AND" PRUNABLE " RETURNING isempty(h.valid) AS m)"
				       " SELECT count(*) FILTER (WHERE NOT m), count(*) FILTER (WHERE m)"
				       " FROM d",
				       3, params, &r->versions, &r->markers)) < 0)
			return err;
		r->batches++;
		if (o->after_batch &&
		    (err = o->after_batch(o->ctx, r->batches, r->versions + r->markers)) < 0)
			return err;
	}
	return 0;
}

static int record_start(PGconn *conn, af_prune_result *r)
{
	char scopes[24], busy[24];
	const char *p[3] = {r->cutoff, scopes, busy};
	PGresult *res;
	int err = 0;

	snprintf(scopes, sizeof(scopes), "%zu", r->scopes);
	snprintf(busy, sizeof(busy), "%zu", r->busy);
	res = PQexecParams(conn,
			   "INSERT INTO aifleet.history_prune (cutoff, status, scopes, scopes_busy)"
			   " VALUES ($1, 'running', $2, $3) RETURNING id",
			   3, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		err = af_store_db_error(conn, res, "recording the prune (is the schema migrated?)");
	else
		r->prune_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return err;
}

/* However it ended; a failure to record it is only told (the database may
 * be what failed). */
static void record_end(PGconn *conn, const af_prune_result *r, int err)
{
	char id[24], versions[24], markers[24];
	const char *p[5] = {id, err < 0 ? "failed" : "finished", versions, markers,
			    err < 0 ? af_error_last() : NULL};
	PGresult *res;

	snprintf(id, sizeof(id), "%" PRId64, r->prune_id);
	snprintf(versions, sizeof(versions), "%" PRIu64, r->versions);
	snprintf(markers, sizeof(markers), "%" PRIu64, r->markers);
	res = PQexecParams(conn,
			   "UPDATE aifleet.history_prune SET finished_at = now(), status = $2,"
			   " versions = $3, markers = $4, error = $5 WHERE id = $1",
			   5, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		af_warn("prune", "cannot record the end of prune %s: %s", id,
			PQresultErrorMessage(res));
	PQclear(res);
}

int af_prune(af_store *s, const af_prune_options *o, af_prune_result *r)
{
	af_lock_mode mode = o->wait ? AF_LOCK_WAIT : AF_LOCK_TRY;
	af_scope_locks held = {0};
	af_scope *scopes = NULL;
	PGresult *ledger = NULL;
	bool run_key = false, *busy = NULL;
	const char *params[1];
	char why[1024];
	size_t n = 0;
	int pending = 0, err;

	memset(r, 0, sizeof(*r));
	if ((err = read_cutoff(s->conn, o, r->cutoff, sizeof(r->cutoff))) < 0 ||
	    (err = af_store_pending_migrations(s, &pending)) < 0)
		goto done;
	if (pending > 0) {
		err = af_error_set(AF_ERR_CONFIG, "the database schema is not up to date (%d "
						  "migration(s) pending): run 'aifleet migrate' first",
				   pending);
		goto done;
	}
	if ((err = af_lock_run_key(s->conn, true, mode)) < 0)
		goto done;
	run_key = true;
	if ((err = ledger_scopes(s->conn, &ledger, &scopes, &n)) < 0)
		goto done;
	if (!(busy = calloc(n ? n : 1, sizeof(*busy)))) {
		err = af_error_oom();
		goto done;
	}
	if ((err = af_lock_scopes(s->conn, scopes, n, mode, busy, &held)) < 0)
		goto done;
	r->scopes = held.n;
	r->busy = held.busy;
	if (n > 0 && held.n == 0) {
		err = af_lock_scopes_busy_error(s->conn, scopes, n, busy, "every scope");
		goto done;
	}
	if ((err = stage_scopes(s->conn, scopes, n, busy)) < 0)
		goto done;
	params[0] = r->cutoff;
	if (o->dry_run) {
		err = count_query(s->conn, "counting history",
				  "SELECT count(*) FILTER (WHERE NOT isempty(h.valid)),"
				  " count(*) FILTER (WHERE isempty(h.valid))"
				  " FROM aifleet.history h WHERE" PRUNABLE,
				  1, params, &r->versions, &r->markers);
		goto done;
	}
	if ((err = record_start(s->conn, r)) < 0)
		goto done;
	err = delete_batches(s->conn, o, r);
	snprintf(why, sizeof(why), "%s", af_error_last());
	record_end(s->conn, r, err);
	if (err < 0)
		af_error_set(err, "%s", why);
	else
		af_info("prune", "prune %" PRId64 ": %" PRIu64 " versions and %" PRIu64
			" deletion markers that ended before %s deleted in %" PRIu64 " batches",
			r->prune_id, r->versions, r->markers, r->cutoff, r->batches);
done:
	if (PQstatus(s->conn) == CONNECTION_OK)
		PQclear(PQexec(s->conn, "DROP TABLE IF EXISTS af_prune_scope"));
	af_unlock_scopes(s->conn, &held);
	if (run_key)
		af_unlock_run_key(s->conn, true);
	free(busy);
	free(scopes);
	PQclear(ledger);
	return err;
}
