#include "bulk.h"

#include <stdlib.h>
#include <string.h>

#include "aifleet/buf.h"
#include "aifleet/error.h"
#include "store_internal.h"

/* The tables a first load fills; every one must be empty. */
#define BULK_TABLES "'aifleet.instance', 'aifleet.service', 'aifleet.resource', 'aifleet.history'"

static const char empty_sql[] =
	"SELECT NOT EXISTS (SELECT 1 FROM aifleet.instance)"
	" AND NOT EXISTS (SELECT 1 FROM aifleet.service)"
	" AND NOT EXISTS (SELECT 1 FROM aifleet.resource)"
	" AND NOT EXISTS (SELECT 1 FROM aifleet.history)";

/* Indexes of those tables that no constraint (primary key, unique,
 * exclusion) owns, the users' own included: they are built again as they
 * were. */
static const char secondary_sql[] =
	"SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
	" WHERE i.indrelid IN (SELECT unnest(ARRAY[" BULK_TABLES "])::regclass)"
	" AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
	" ORDER BY 1";

static int tables_empty(PGconn *conn, bool *empty)
{
	PGresult *res = PQexec(conn, empty_sql);
	int err = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		err = af_store_db_error(conn, res, "checking whether the inventory is empty");
	else
		*empty = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return err;
}

static int list_secondary(PGconn *conn, af_deferred_indexes *d)
{
	PGresult *res = PQexec(conn, secondary_sql);
	int n, err = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(conn, res, "listing the inventory's indexes");
		goto done;
	}
	n = PQntuples(res);
	d->names = calloc((size_t)n + 1, sizeof(*d->names));
	d->defs = calloc((size_t)n + 1, sizeof(*d->defs));
	if (!d->names || !d->defs) {
		err = af_error_oom();
		goto done;
	}
	for (int i = 0; i < n; i++) {
		d->names[i] = strdup(PQgetvalue(res, i, 0));
		d->defs[i] = strdup(PQgetvalue(res, i, 1));
		d->n++;
		if (!d->names[i] || !d->defs[i]) {
			err = af_error_oom();
			goto done;
		}
	}
done:
	PQclear(res);
	return err;
}

int af_bulk_defer_indexes(PGconn *conn, af_deferred_indexes *d)
{
	af_buf q = AF_BUF_INIT;
	bool empty = false;
	int err;

	memset(d, 0, sizeof(*d));
	if ((err = tables_empty(conn, &empty)) < 0 || !empty)
		return err;
	if ((err = list_secondary(conn, d)) < 0)
		goto done;
	for (size_t i = 0; i < d->n && !err; i++)
		err = af_buf_printf(&q, "DROP INDEX %s;", d->names[i]);
	if (err == 0 && d->n > 0)
		err = af_store_exec(conn, "deferring the indexes of a first load", af_buf_data(&q));
done:
	if (err < 0)
		af_deferred_indexes_free(d);
	af_buf_free(&q);
	return err;
}

int af_bulk_rebuild_indexes(PGconn *conn, af_deferred_indexes *d)
{
	int err = 0;

	/* One sort in memory per index, for this transaction only. */
	if (d->n > 0)
		err = af_store_exec(conn, "building the indexes of a first load",
				    "SET LOCAL maintenance_work_mem = '256MB'");
	for (size_t i = 0; i < d->n && !err; i++)
		err = af_store_exec(conn, "building the indexes of a first load", d->defs[i]);
	af_deferred_indexes_free(d);
	return err;
}

void af_deferred_indexes_free(af_deferred_indexes *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->names[i]);
		free(d->defs[i]);
	}
	free(d->names);
	free(d->defs);
	memset(d, 0, sizeof(*d));
}
