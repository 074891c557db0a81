/*
 * The store: connection, migrations and status. The loader is in loader.c.
 */
#include "store_internal.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/migrate.h"
#include "aifleet/store.h"

/*
 * The database went away (exit 75, try again) rather than refused: libpq
 * says so once it noticed, but the first sign may be the server's own
 * FATAL -- SQLSTATE class 08 (connection exception) or 57P01..57P03
 * (terminated by an administrator, crash shutdown, cannot connect now) --
 * while the connection still looks fine.
 */
static bool connection_lost(PGconn *conn, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (PQstatus(conn) == CONNECTION_BAD)
		return true;
	return state && (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
			 strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0);
}

int af_store_db_error(PGconn *conn, const PGresult *res, const char *what)
{
	const char *msg = res ? PQresultErrorMessage(res) : NULL;
	size_t len;

	if (!msg || !*msg)
		msg = PQerrorMessage(conn);
	len = strlen(msg);
	/* libpq messages end in a newline; keep the error one line. */
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		len--;
	return af_error_set(connection_lost(conn, res) ? AF_ERR_TRANSIENT : AF_ERR_DB, "%s: %.*s",
			    what, (int)len, msg);
}

int af_store_exec(PGconn *conn, const char *what, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	int err = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		err = af_store_db_error(conn, res, what);
	PQclear(res);
	return err;
}

int af_store_query_bool(PGconn *conn, const char *what, const char *sql, bool *out)
{
	PGresult *res = PQexec(conn, sql);
	int err = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 1)
		err = af_store_db_error(conn, res, what);
	else
		*out = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return err;
}

char *af_store_join_key(const char *const *fields, size_t n)
{
	af_buf b = AF_BUF_INIT;

	for (size_t i = 0; i < n; i++) {
		if ((i > 0 && af_buf_append(&b, "\x1f", 1) < 0) || af_buf_puts(&b, fields[i]) < 0) {
			af_buf_free(&b);
			return NULL;
		}
	}
	return af_buf_detach(&b);
}

int af_store_connect(af_store **out, const char *conninfo)
{
	af_store *s;
	int err = 0;

	*out = NULL;
	if (!(s = calloc(1, sizeof(*s))))
		return af_error_oom();
	s->conn = PQconnectdb(conninfo ? conninfo : "");
	if (!s->conn) {
		err = af_error_oom();
		goto done;
	}
	if (PQstatus(s->conn) != CONNECTION_OK) {
		/* PQerrorMessage never echoes the password, only host/port/user. */
		err = af_error_set(AF_ERR_TRANSIENT, "cannot connect to PostgreSQL: %s",
				   PQerrorMessage(s->conn));
		goto done;
	}
	/* Times are written and shown in UTC regardless of the server's zone. */
	if ((err = af_store_exec(s->conn, "session setup",
				 "SET TIME ZONE 'UTC'; SET application_name = 'aifleet';"
				 " SET client_min_messages = warning")) < 0)
		goto done;
	*out = s;
	s = NULL;
done:
	af_store_free(s);
	return err;
}

void af_store_free(af_store *s)
{
	if (!s)
		return;
	if (s->conn)
		PQfinish(s->conn);
	free(s);
}

static void sha256_hex(char out[65], const char *text)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL);
	for (i = 0; i < len && i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

static const char bookkeeping_sql[] =
	"CREATE SCHEMA IF NOT EXISTS aifleet;"
	"CREATE TABLE IF NOT EXISTS aifleet.schema_migrations ("
	" version integer PRIMARY KEY,"
	" name text NOT NULL,"
	" checksum text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),"
	" applied_at timestamptz NOT NULL DEFAULT now());"
	"COMMENT ON TABLE aifleet.schema_migrations IS"
	" 'Migrations applied by aifleet (sql/NNN_name.sql embedded in the binary).';"
	"COMMENT ON COLUMN aifleet.schema_migrations.version IS 'NNN prefix of the file.';"
	"COMMENT ON COLUMN aifleet.schema_migrations.name IS 'File name.';"
	"COMMENT ON COLUMN aifleet.schema_migrations.checksum IS"
	" 'SHA-256 (hex) of the file text; a mismatch means the migration was edited after it was applied.';"
	"COMMENT ON COLUMN aifleet.schema_migrations.applied_at IS 'When it was applied.';";

static int apply_one(PGconn *conn, const af_migration *m, const char *checksum)
{
	char version[16];
	const char *params[3];
	char what[160];
	PGresult *res = NULL;
	int err;

	snprintf(what, sizeof(what), "migration %s", m->name);
	if ((err = af_store_exec(conn, what, "BEGIN")) < 0)
		return err;
	if ((err = af_store_exec(conn, what, m->sql)) < 0)
		goto done;
	snprintf(version, sizeof(version), "%d", m->version);
	params[0] = version;
	params[1] = m->name;
	params[2] = checksum;
	res = PQexecParams(conn,
			   "INSERT INTO aifleet.schema_migrations (version, name, checksum)"
			   " VALUES ($1, $2, $3)",
			   3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		err = af_store_db_error(conn, res, what);
		goto done;
	}
	err = af_store_exec(conn, what, "COMMIT");
done:
	PQclear(res);
	if (err < 0 && PQtransactionStatus(conn) != PQTRANS_IDLE)
		PQclear(PQexec(conn, "ROLLBACK"));
	return err;
}

int af_store_migrate(af_store *s, int *applied)
{
	PGconn *conn = s->conn;
	PGresult *res = NULL;
	char sql[128];
	int err, nrows, i, count = 0;
	size_t m;
	bool locked = false;

	if (applied)
		*applied = 0;
	/* Concurrent migrators (two timers firing at once) wait for each other;
	 * the second then finds everything applied. */
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%lld)", AF_STORE_MIGRATE_LOCK_KEY);
	if ((err = af_store_exec(conn, "taking the migration lock", sql)) < 0)
		goto done;
	locked = true;
	if ((err = af_store_exec(conn, "creating aifleet.schema_migrations", bookkeeping_sql)) < 0)
		goto done;
	res = PQexec(conn, "SELECT version, name, checksum FROM aifleet.schema_migrations ORDER BY version");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(conn, res, "reading aifleet.schema_migrations");
		goto done;
	}
	nrows = PQntuples(res);
	for (i = 0; i < nrows; i++) {
		int version = atoi(PQgetvalue(res, i, 0));
		bool known = false;

		for (m = 0; m < af_migrations_count; m++)
			known = known || af_migrations[m].version == version;
		if (!known) {
			err = af_error_set(AF_ERR_CONFIG,
					   "the database has migration %s, which this aifleet does not "
					   "know: upgrade aifleet",
					   PQgetvalue(res, i, 1));
			goto done;
		}
	}
	for (m = 0; m < af_migrations_count; m++) {
		const af_migration *mig = &af_migrations[m];
		char checksum[65];
		int row = -1;

		sha256_hex(checksum, mig->sql);
		for (i = 0; i < nrows; i++)
			if (atoi(PQgetvalue(res, i, 0)) == mig->version)
				row = i;
		if (row >= 0) {
			if (strcmp(PQgetvalue(res, row, 2), checksum) != 0) {
				err = af_error_set(AF_ERR_CONFIG,
						   "migration %s was changed after it was applied "
						   "(checksum in the database %.12s..., in this aifleet "
						   "%.12s...): refusing to continue",
						   mig->name, PQgetvalue(res, row, 2), checksum);
				goto done;
			}
			continue;
		}
		if ((err = apply_one(conn, mig, checksum)) < 0)
			goto done;
		af_info("store", "applied migration %s", mig->name);
		count++;
	}
	if (applied)
		*applied = count;
done:
	PQclear(res);
	if (locked) {
		snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%lld)",
			 AF_STORE_MIGRATE_LOCK_KEY);
		PQclear(PQexec(conn, sql));
	}
	return err;
}

int af_store_pending_migrations(af_store *s, int *pending)
{
	static const char *const queries[] = {
		/* The table may not exist yet: ask first, then count. */
		"SELECT to_regclass('aifleet.schema_migrations') IS NOT NULL",
		"SELECT count(*) FROM aifleet.schema_migrations",
	};
	int applied = 0;

	for (size_t i = 0; i < 2; i++) {
		PGresult *res = PQexec(s->conn, queries[i]);
		const char *v;

		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			int err = af_store_db_error(s->conn, res, "reading aifleet.schema_migrations");

			PQclear(res);
			return err;
		}
		v = PQgetvalue(res, 0, 0);
		if (i == 0 && strcmp(v, "t") != 0) {
			PQclear(res);
			break;
		}
		if (i == 1)
			applied = atoi(v);
		PQclear(res);
	}
	*pending = (int)af_migrations_count - applied;
	if (*pending < 0)
		*pending = 0;
	return 0;
}

static const char *val(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? "-" : PQgetvalue(res, row, col);
}

/* The retained span of history (migration 007); a database that has not
 * applied it says so instead. */
static int print_history_span(af_store *s, FILE *out)
{
	PGresult *res;
	int pending = 0, err;

	if ((err = af_store_pending_migrations(s, &pending)) < 0)
		return err;
	if (pending > 0) {
		fprintf(out, "\nHistory: %d migration(s) pending: run 'aifleet migrate'\n", pending);
		return 0;
	}
	res = PQexec(s->conn,
		     "SELECT history_rows, coalesce(to_char(complete_from, 'YYYY-MM-DD HH24:MI:SS'),"
		     " '-'), to_char(pruned_before, 'YYYY-MM-DD HH24:MI:SS'),"
		     " to_char(last_prune_at, 'YYYY-MM-DD HH24:MI:SS') FROM aifleet.history_span");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(s->conn, res, "reading the history span");
		PQclear(res);
		return err;
	}
	fprintf(out, "\nHistory: %s rows; as-of answers complete from %s", val(res, 0, 0),
		val(res, 0, 1));
	if (!PQgetisnull(res, 0, 2))
		fprintf(out, " (pruned before %s by the prune of %s)", val(res, 0, 2),
			val(res, 0, 3));
	else
		fprintf(out, " (the first run; never pruned)");
	fprintf(out, "\n");
	PQclear(res);
	return 0;
}

int af_store_print_status(af_store *s, FILE *out, int max_runs)
{
	PGresult *res = NULL;
	char limit[16];
	const char *params[1] = {limit};
	int err = 0, i;

	snprintf(limit, sizeof(limit), "%d", max_runs > 0 ? max_runs : 10);
	res = PQexecParams(s->conn,
			   "SELECT id, to_char(started_at, 'YYYY-MM-DD HH24:MI:SS'),"
			   " round(extract(epoch FROM duration)::numeric, 1), status,"
			   " created, updated, deleted, restored, unchanged, history_rows, rejected"
			   " FROM aifleet.run_status ORDER BY id DESC LIMIT $1::int",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(s->conn, res, "reading runs");
		goto done;
	}
	fprintf(out, "Recent runs (UTC):\n");
	fprintf(out, "%6s  %-19s  %8s  %-9s  %8s %8s %8s %8s %9s %8s %8s\n", "run", "started",
		"seconds", "status", "created", "updated", "deleted", "restored", "unchanged",
		"history", "rejected");
	for (i = 0; i < PQntuples(res); i++)
		fprintf(out, "%6s  %-19s  %8s  %-9s  %8s %8s %8s %8s %9s %8s %8s\n", val(res, i, 0),
			val(res, i, 1), val(res, i, 2), val(res, i, 3), val(res, i, 4),
			val(res, i, 5), val(res, i, 6), val(res, i, 7), val(res, i, 8),
			val(res, i, 9), val(res, i, 10));
	if (PQntuples(res) == 0)
		fprintf(out, "  (no runs yet)\n");
	PQclear(res);
	res = PQexec(s->conn,
		     "SELECT provider || '/' || account || '/' || region || '/' || product, last_state,"
		     " to_char(last_complete_at, 'YYYY-MM-DD HH24:MI:SS'),"
		     " CASE WHEN age IS NULL THEN NULL ELSE"
		     "  justify_interval(date_trunc('second', age))::text END,"
		     " last_error FROM aifleet.scope_freshness ORDER BY 1");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(s->conn, res, "reading scope freshness");
		goto done;
	}
	fprintf(out, "\nScopes:\n");
	fprintf(out, "%-48s  %-8s  %-19s  %-16s  %s\n", "scope", "state", "last complete", "age",
		"last error");
	for (i = 0; i < PQntuples(res); i++)
		fprintf(out, "%-48s  %-8s  %-19s  %-16s  %s\n", val(res, i, 0), val(res, i, 1),
			val(res, i, 2), val(res, i, 3), val(res, i, 4));
	if (PQntuples(res) == 0)
		fprintf(out, "  (no scopes yet)\n");
	PQclear(res);
	res = NULL;
	err = print_history_span(s, out);
done:
	PQclear(res);
	return err;
}

/*
 * The same as af_store_print_status, as one JSON document for scripts
 * (docs/operations.md "aifleet status --format json"), on one line, its
 * keys in a fixed order. PostgreSQL builds it, so quoting and numbers are
 * json's own; times are RFC 3339 in UTC (the session's zone).
 */
int af_store_print_status_json(af_store *s, FILE *out, int max_runs)
{
	static const char sql[] =
		"SELECT json_build_object("
		" 'generated_at', now(),"
		" 'pending_migrations', $2::int,"
		" 'history', $3::json,"
		" 'runs', coalesce((SELECT json_agg(r ORDER BY r.id DESC) FROM ("
		"   SELECT id, started_at, finished_at,"
		"    round(extract(epoch FROM duration)::numeric, 3) AS duration_seconds, status,"
		"    trigger, created, updated, deleted, restored, unchanged, history_rows,"
		"    rejected, error"
		"   FROM aifleet.run_status ORDER BY id DESC LIMIT $1::int) r), '[]'),"
		" 'scopes', coalesce((SELECT json_agg(c ORDER BY c.provider, c.account, c.region,"
		"   c.product) FROM ("
		"   SELECT provider, account, region, product, last_state, last_run_id,"
		"    last_attempt_at, last_complete_at,"
		"    round(extract(epoch FROM now() - last_complete_at)::numeric, 3) AS age_seconds,"
		"    last_error, pages, items, duplicates, rejected, requests, retries, throttled,"
		"    round(seconds::numeric, 3) AS seconds, held_deletes, held_live"
		"   FROM aifleet.scope_state) c), '[]'))";
	PGresult *res = NULL, *span = NULL;
	char limit[16], pending_text[16];
	const char *params[3] = {limit, pending_text, NULL};
	int pending = 0, err;

	if ((err = af_store_pending_migrations(s, &pending)) < 0)
		return err;
	/* history_span is migration 007's: null until it is applied */
	if (pending == 0) {
		span = PQexec(s->conn, "SELECT row_to_json(h) FROM aifleet.history_span h");
		if (PQresultStatus(span) != PGRES_TUPLES_OK) {
			err = af_store_db_error(s->conn, span, "reading the history span");
			goto done;
		}
		params[2] = PQgetvalue(span, 0, 0);
	}
	snprintf(limit, sizeof(limit), "%d", max_runs > 0 ? max_runs : 10);
	snprintf(pending_text, sizeof(pending_text), "%d", pending);
	res = PQexecParams(s->conn, sql, 3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		err = af_store_db_error(s->conn, res, "reading the status");
		goto done;
	}
	fprintf(out, "%s\n", PQgetvalue(res, 0, 0));
done:
	PQclear(span);
	PQclear(res);
	return err;
}

int af_store_each_ledger_row(af_store *s, int (*fn)(void *ctx, const af_ledger_row *row),
			     void *ctx)
{
	PGresult *res;
	int err = 0;

	res = PQexec(s->conn,
		     "SELECT provider, account, region, product, last_state, last_run_id,"
		     " extract(epoch FROM last_attempt_at),"
		     " coalesce(extract(epoch FROM last_complete_at), 0),"
		     " coalesce(held_deletes, 0) FROM aifleet.scope_state");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(s->conn, res, "reading the scope ledger");
		goto done;
	}
	for (int i = 0; i < PQntuples(res) && err >= 0; i++) {
		af_ledger_row row = {
			.scope = {PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
				  PQgetvalue(res, i, 2), PQgetvalue(res, i, 3)},
			.state = PQgetvalue(res, i, 4),
			.last_run_id = strtoll(PQgetvalue(res, i, 5), NULL, 10),
			.last_attempt_at = strtod(PQgetvalue(res, i, 6), NULL),
			.last_complete_at = strtod(PQgetvalue(res, i, 7), NULL),
			.held_deletes = strtoull(PQgetvalue(res, i, 8), NULL, 10),
		};

		err = fn(ctx, &row);
	}
done:
	PQclear(res);
	return err < 0 ? err : 0;
}
