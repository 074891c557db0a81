#ifndef AIFLEET_STORE_DIRECT_H
#define AIFLEET_STORE_DIRECT_H

/*
 * The first-load path: the records of a provider, account and product the
 * database has never held go straight into aifleet.<type> and
 * aifleet.history by COPY, with ids taken from the entity sequence before
 * the rows are sent and owners resolved here, in C. There is nothing to
 * join them with -- no row of theirs exists -- so staging and classifying
 * them would only cost time.
 *
 * A record is taken only when that is provably what the merge would do:
 * its natural key is new to the run, and its owner (for a service, its
 * instance; for a resource, the instance or service it follows) was taken
 * too. Anything else -- a key seen twice, an owner not seen yet, a
 * resource apart from its owner -- is left to staging, and so is every
 * later record with its key, so that the merge sees the copies in their
 * order and the last one wins, as it does for staged records
 * (loader.c's classify overwrites a row this path wrote: action 'o').
 */

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "aifleet/buf.h"
#include "columns.h"

typedef struct af_direct af_direct;

/* Gives n fresh entity ids, *first .. *first + n - 1. */
typedef int (*af_direct_reserve_fn)(void *ctx, int64_t n, int64_t *first);

/*
 * Reads, inside the run's transaction and under its lock, which
 * (provider, account, product) the entity tables hold and the
 * transaction's timestamp (the merge's now()). Runs SQL: call it while no
 * COPY is open.
 */
int af_direct_new(af_direct **out, PGconn *conn, int64_t run_id, af_direct_reserve_fn reserve,
		  void *ctx);

/* True when no row of the scope's provider, account and product exists:
 * its records may take this path. */
bool af_direct_scope_new(const af_direct *d, const af_scope *sc);

/*
 * Offers a valid record of such a scope, with its content hash. Taken
 * (*taken true): its row is appended to `row` (for the entity's
 * direct_copy_sql) and its first version to `hist` (for
 * AF_DIRECT_HISTORY_COPY). Not taken: nothing is appended; stage it.
 * Errors: AF_ERR_NOMEM, the reserve callback's, af_direct_put_row's.
 */
int af_direct_offer(af_direct *d, const af_entity *e, const af_scope *sc, const void *rec,
		    const unsigned char hash[AF_CONTENT_HASH_LEN], af_buf *row, af_buf *hist,
		    bool *taken);

#define AF_DIRECT_HISTORY_COPY                                                                     \
	"COPY aifleet.history (entity_type, entity_id, valid, change, changed_at, run_id)"         \
	" FROM STDIN"

/* Rows of one entity (AF_ENTITY_*) taken so far. */
uint64_t af_direct_taken(const af_direct *d, int entity);
void af_direct_free(af_direct *d);

#endif
