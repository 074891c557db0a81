#ifndef AIFLEET_STORE_READAHEAD_H
#define AIFLEET_STORE_READAHEAD_H

/*
 * The live rows of the spooled scopes, read while the run's records still
 * arrive (loader.c). A spooled scope's records wait for the commit, so the
 * connection has nothing to do during the collection: the loader queues a
 * read of a spooled scope's live rows once the scope has sent a few hundred
 * records, and polls between records. Once a scope's rows are in, each of its records is
 * checked at once against them, and one the database holds as it is costs
 * neither a COPY row nor spool space -- the spool keeps what changed, and
 * the commit replays only that.
 *
 * One read at a time on the run's own connection, in its transaction (so
 * it sees what the merge will see: the scope locks keep other runs off
 * these scopes). Nothing else may use the connection while a read is under
 * way: the loader finishes the reads first (af_readahead_finish).
 */

#include <libpq-fe.h>
#include <stdbool.h>

#include "columns.h"
#include "liveset.h"

/* One scope's read: a live set per entity, sealed when the read is done;
 * or dropped, its sets freed, when the reads' row limit was reached. */
typedef struct af_live_read {
	af_live_set *set[AF_NENTITIES];
	bool done, dropped;
} af_live_read;

typedef struct af_readahead af_readahead;

/* Reads that hold at most `max_rows` rows in all (0: no limit). The read
 * that would pass it, and every read queued after, is dropped: memory
 * stays bounded however large the run, and what was dropped can be read
 * again when it is needed (after af_readahead_finish, without a limit). */
int af_readahead_new(af_readahead **out, PGconn *conn, size_t max_rows);
void af_readahead_unlimit(af_readahead *ra);
/* Queues the read of the scope's live rows into a new *out (the caller's
 * to free with af_live_read_free, after af_readahead_free at the latest:
 * the queue writes into it until then). */
int af_readahead_queue(af_readahead *ra, const af_scope *sc, af_live_read **out);
/* Takes what the server has sent so far, without waiting, and starts the
 * next read when one ends. */
int af_readahead_poll(af_readahead *ra);
/* Waits until every queued read is done: the connection is free then. */
int af_readahead_finish(af_readahead *ra);
bool af_readahead_busy(const af_readahead *ra);
/* Ends a read under way (its rows are dropped) and frees the queue. */
void af_readahead_free(af_readahead *ra);

void af_live_read_free(af_live_read *r);

#endif
