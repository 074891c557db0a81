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

/*
 * What is dropped, and the statements that build it again as it was, a
 * comment included:
 *  - every index of those tables that no constraint owns, the users' own
 *    included: DROP INDEX, then its pg_get_indexdef;
 *  - every UNIQUE constraint (the natural keys, a user's own too) that is
 *    not deferrable and that no foreign key depends on: DROP CONSTRAINT,
 *    then its index by pg_get_indexdef and ADD CONSTRAINT ... USING INDEX,
 *    which takes that index as it is.
 * Primary keys stay: ids ascend, so their btrees grow at the right edge,
 * which costs little row by row. The constraints come first, so a
 * duplicate fails the run before the rest is built.
 */
static const char deferrable_sql[] =
	"SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),"
	" pg_get_indexdef(c.conindid)"
	" || format('; ALTER TABLE %s ADD CONSTRAINT %I UNIQUE USING INDEX %I',"
	"           c.conrelid::regclass, c.conname, i.relname)"
	" || coalesce(format('; COMMENT ON CONSTRAINT %I ON %s IS %L', c.conname, c.conrelid::regclass,"
	"                    obj_description(c.oid, 'pg_constraint')), ''),"
	" 0 AS pass, c.conname::text AS name"
	" FROM pg_constraint c JOIN pg_class i ON i.oid = c.conindid"
	" WHERE c.conrelid IN (SELECT unnest(ARRAY[" BULK_TABLES "])::regclass)"
	" AND c.contype = 'u' AND NOT c.condeferrable"
	" AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)"
	" UNION ALL"
	" SELECT format('DROP INDEX %s', x.indexrelid::regclass), pg_get_indexdef(x.indexrelid)"
	" || coalesce(format('; COMMENT ON INDEX %s IS %L', x.indexrelid::regclass,"
	"                    obj_description(x.indexrelid, 'pg_class')), ''),"
	" 1, x.indexrelid::regclass::text"
	" FROM pg_index x"
	" WHERE x.indrelid IN (SELECT unnest(ARRAY[" BULK_TABLES "])::regclass)"
	" AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
	" ORDER BY pass, name";

static int list_deferrable(PGconn *conn, af_deferred_indexes *d)
{
	PGresult *res = PQexec(conn, deferrable_sql);
	int n, err = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(conn, res, "listing the inventory's indexes");
		goto done;
	}
	n = PQntuples(res);
	d->drops = calloc((size_t)n + 1, sizeof(*d->drops));
	d->builds = calloc((size_t)n + 1, sizeof(*d->builds));
	if (!d->drops || !d->builds) {
		err = af_error_oom();
		goto done;
	}
	for (int i = 0; i < n; i++) {
		d->drops[i] = strdup(PQgetvalue(res, i, 0));
		d->builds[i] = strdup(PQgetvalue(res, i, 1));
		d->n++;
		if (!d->drops[i] || !d->builds[i]) {
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
	if ((err = af_store_query_bool(conn, "checking whether the inventory is empty", empty_sql,
				       &empty)) < 0 || !empty)
		return err;
	if ((err = list_deferrable(conn, d)) < 0)
		goto done;
	for (size_t i = 0; i < d->n && !err; i++)
		err = af_buf_printf(&q, "%s;", d->drops[i]);
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
		err = af_store_exec(conn, "building the indexes of a first load", d->builds[i]);
	af_deferred_indexes_free(d);
	return err;
}

void af_deferred_indexes_free(af_deferred_indexes *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->drops[i]);
		free(d->builds[i]);
	}
	free(d->drops);
	free(d->builds);
	memset(d, 0, sizeof(*d));
}
