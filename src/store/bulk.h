#ifndef AIFLEET_STORE_BULK_H
#define AIFLEET_STORE_BULK_H

/*
 * A database's first load: while its entity tables and history are empty,
 * their secondary indexes are dropped inside the run's transaction and
 * built again, each by one sort, before the merge -- what PostgreSQL's
 * "Populating a Database" advises and pg_restore does. Keeping a btree up
 * to date row by row costs several times one sorted build.
 *
 * Only indexes that back no constraint are dropped: the primary keys and
 * natural keys keep guarding every row as it arrives. The partial unique
 * index of open versions is rebuilt as unique, so a duplicate would fail
 * the run. A failed or killed run rolls the drop back with everything else.
 * Until the run commits, readers of these tables wait for it (the drop
 * takes their ACCESS EXCLUSIVE lock); on an empty database there is
 * nothing they could have read.
 */

#include <libpq-fe.h>
#include <stddef.h>

typedef struct af_deferred_indexes {
	char **names; /* schema-qualified */
	char **defs;  /* pg_get_indexdef */
	size_t n;
} af_deferred_indexes;

/* Drops the secondary indexes of the entity tables and history when all
 * of them are empty (*d then lists them; else it stays empty). */
int af_bulk_defer_indexes(PGconn *conn, af_deferred_indexes *d);

/* Builds what af_bulk_defer_indexes dropped, and forgets the list. */
int af_bulk_rebuild_indexes(PGconn *conn, af_deferred_indexes *d);

void af_deferred_indexes_free(af_deferred_indexes *d);

#endif
