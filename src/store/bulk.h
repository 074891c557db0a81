#ifndef AIFLEET_STORE_BULK_H
#define AIFLEET_STORE_BULK_H

/*
 * A database's first load: while its entity tables and history are empty,
 * their indexes and natural keys are dropped inside the run's transaction
 * and built again, each by one sort, before the merge -- what PostgreSQL's
 * "Populating a Database" advises and pg_restore does. Keeping a btree up
 * to date row by row costs several times one sorted build; keeping the
 * natural keys (the resources': six text columns, inserted in no order)
 * was about a quarter of a whole first load of 1.3M rows.
 *
 * Dropped: every index that backs no constraint, and every UNIQUE
 * constraint no foreign key depends on (bulk.c has the list). A duplicate
 * then fails the run when its key is built, before the commit, instead of
 * when its row arrives: the first-load path writes a key once (keymap.c),
 * so none is expected. The primary keys stay. The partial unique index of
 * open versions is rebuilt as unique, so it is checked the same way. A
 * failed or killed run rolls the drop back with everything else. Until
 * the run commits, readers of these tables wait for it (the drop takes
 * their ACCESS EXCLUSIVE lock); on an empty database there is nothing they
 * could have read.
 */

#include <libpq-fe.h>
#include <stddef.h>

typedef struct af_deferred_indexes {
	char **drops;  /* DROP INDEX or ALTER TABLE ... DROP CONSTRAINT */
	char **builds; /* what builds it again, one or more statements */
	size_t n;
} af_deferred_indexes;

/* Drops the secondary indexes and unique constraints of the entity tables
 * and history when all of them are empty (*d then lists them; else it
 * stays empty). */
int af_bulk_defer_indexes(PGconn *conn, af_deferred_indexes *d);

/* Builds what af_bulk_defer_indexes dropped, and forgets the list. */
int af_bulk_rebuild_indexes(PGconn *conn, af_deferred_indexes *d);

void af_deferred_indexes_free(af_deferred_indexes *d);

#endif
