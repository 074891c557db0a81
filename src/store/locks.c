/*
 * Advisory locks: the run key, the write lock and one lock per scope.
 * Keys are bigints; pg_locks shows one as classid (high 32 bits), objid
 * (low 32 bits) and objsubid 1, which is how the holder is found.
 */
#include "locks.h"
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/buf.h"
#include "aifleet/error.h"

int af_lock_busy_error(PGconn *conn, const char *keys, const char *what)
{
	const char *params[1] = {keys};
	PGresult *res;
	int err;

	res = PQexecParams(conn,
			   "SELECT a.pid, coalesce(to_char(coalesce(a.xact_start, a.backend_start),"
			   " 'YYYY-MM-DD HH24:MI:SS TZ'), '?'), coalesce(a.application_name, '')"
			   " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
			   " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
			   " AND (l.classid::bigint << 32 | l.objid::bigint) = ANY ($1::bigint[])"
			   " AND l.pid <> pg_backend_pid() LIMIT 1",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
		err = af_error_set(AF_ERR_LOCKED,
				   "another aifleet run holds %s (pid %s since %s, application "
				   "'%s'); try again later or use --wait",
				   what, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
				   PQgetvalue(res, 0, 2));
	else
		err = af_error_set(AF_ERR_LOCKED, "another aifleet run holds %s (holder not "
						  "visible: it may have just finished)", what);
	PQclear(res);
	return err;
}

int af_lock_run_key(PGconn *conn, bool shared, af_lock_mode mode)
{
	char sql[96], key[32];
	PGresult *res;
	int err = 0;

	snprintf(sql, sizeof(sql), "SELECT pg_%sadvisory_lock%s(%lld)",
		 mode == AF_LOCK_WAIT ? "" : "try_", shared ? "_shared" : "",
		 AF_STORE_RUN_LOCK_KEY);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(conn, res, "taking the run lock");
	} else if (mode == AF_LOCK_TRY && strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		snprintf(key, sizeof(key), "{%lld}", AF_STORE_RUN_LOCK_KEY);
		err = af_lock_busy_error(conn, key,
					 shared ? "the run lock over the whole database"
						: "the lock");
	}
	PQclear(res);
	return err;
}

void af_unlock_run_key(PGconn *conn, bool shared)
{
	char sql[96];

	if (PQstatus(conn) != CONNECTION_OK)
		return; /* the server let go with the session */
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock%s(%lld)", shared ? "_shared" : "",
		 AF_STORE_RUN_LOCK_KEY);
	PQclear(PQexec(conn, sql));
}

int af_lock_write(PGconn *conn, af_lock_mode mode, bool *got)
{
	char sql[96];
	PGresult *res;
	int err = 0;

	snprintf(sql, sizeof(sql), "SELECT %s(%lld)",
		 mode == AF_LOCK_WAIT ? "pg_advisory_xact_lock" : "pg_try_advisory_xact_lock",
		 AF_STORE_WRITE_LOCK_KEY);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		err = af_store_db_error(conn, res, "taking the run's write lock");
	else
		*got = mode == AF_LOCK_WAIT || strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return err;
}

typedef struct wanted {
	int64_t key;
	size_t index; /* in the caller's scopes */
} wanted;

static int wanted_cmp(const void *a, const void *b)
{
	int64_t x = ((const wanted *)a)->key, y = ((const wanted *)b)->key;

	return (x > y) - (x < y);
}

/* keys[0..n) as a bigint[] literal. */
static int key_array(af_buf *b, const int64_t *keys, size_t n)
{
	int err = af_buf_puts(b, "{");

	for (size_t i = 0; i < n && err == 0; i++)
		err = af_buf_printf(b, "%s%" PRId64, i ? "," : "", keys[i]);
	if (err == 0)
		err = af_buf_puts(b, "}");
	return err < 0 ? af_error_oom() : 0;
}

/* A scope listed twice is locked twice (advisory locks stack within a
 * session) and given back twice: no special case. */
int af_lock_scopes(PGconn *conn, const af_scope *scopes, size_t n, af_lock_mode mode,
		   bool *busy, af_scope_locks *held)
{
	wanted *w = calloc(n ? n : 1, sizeof(*w));
	int64_t *keys = calloc(n ? n : 1, sizeof(*keys));
	af_buf list = AF_BUF_INIT;
	const char *params[1];
	PGresult *res = NULL;
	int err = 0;

	memset(held, 0, sizeof(*held));
	if (!w || !keys) {
		err = af_error_oom();
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		w[i] = (wanted){(int64_t)af_scope_hash(&scopes[i]), i};
	qsort(w, n, sizeof(*w), wanted_cmp);
	for (size_t i = 0; i < n; i++)
		keys[i] = w[i].key;
	if ((err = key_array(&list, keys, n)) < 0)
		goto done;
	params[0] = af_buf_data(&list);
	res = PQexecParams(conn,
			   mode == AF_LOCK_WAIT
				   ? "SELECT pg_advisory_lock(k) IS NULL FROM unnest($1::bigint[])"
				     " WITH ORDINALITY AS u (k, i) ORDER BY i"
				   : "SELECT pg_try_advisory_lock(k) FROM unnest($1::bigint[])"
				     " WITH ORDINALITY AS u (k, i) ORDER BY i",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || (size_t)PQntuples(res) != n) {
		err = af_store_db_error(conn, res, "taking the scope locks");
		goto done;
	}
	/* keys[] keeps the ones had, still in key order */
	for (size_t i = 0; i < n; i++) {
		if (mode == AF_LOCK_WAIT || strcmp(PQgetvalue(res, (int)i, 0), "t") == 0) {
			keys[held->n++] = w[i].key;
			continue;
		}
		held->busy++;
		if (busy)
			busy[w[i].index] = true;
	}
	held->keys = keys;
	keys = NULL;
done:
	PQclear(res);
	af_buf_free(&list);
	free(keys);
	free(w);
	return err;
}

int af_lock_scopes_busy_error(PGconn *conn, const af_scope *scopes, size_t n,
			      const bool *busy, const char *what)
{
	af_buf list = AF_BUF_INIT;
	size_t k = 0;
	int err = af_buf_puts(&list, "{");

	for (size_t i = 0; i < n && err == 0; i++)
		if (busy[i])
			err = af_buf_printf(&list, "%s%" PRId64, k++ ? "," : "",
					    (int64_t)af_scope_hash(&scopes[i]));
	if (err == 0)
		err = af_buf_puts(&list, "}");
	err = err < 0 ? af_error_oom() : af_lock_busy_error(conn, af_buf_data(&list), what);
	af_buf_free(&list);
	return err;
}

void af_unlock_scopes(PGconn *conn, af_scope_locks *held)
{
	af_buf list = AF_BUF_INIT;
	const char *params[1];

	if (held->n > 0 && PQstatus(conn) == CONNECTION_OK &&
	    key_array(&list, held->keys, held->n) == 0) {
		params[0] = af_buf_data(&list);
		PQclear(PQexecParams(conn, "SELECT pg_advisory_unlock(k) FROM unnest($1::bigint[]) k",
				     1, NULL, params, NULL, NULL, 0));
	}
	af_buf_free(&list);
	free(held->keys);
	memset(held, 0, sizeof(*held));
}
