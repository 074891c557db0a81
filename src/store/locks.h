#ifndef AIFLEET_STORE_LOCKS_H
#define AIFLEET_STORE_LOCKS_H

/*
 * The advisory locks that keep runs (and prunes) apart; their keys are in
 * store_internal.h, their rules in docs/architecture.md "Locks". Every
 * function works on the caller's connection and reports a lock another
 * session holds as AF_ERR_LOCKED naming the holder.
 */

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aifleet/record.h"

typedef enum af_lock_mode { AF_LOCK_TRY, AF_LOCK_WAIT } af_lock_mode;

/* AF_ERR_LOCKED: "another aifleet run holds <what> (pid N since T, ...)",
 * the holder being a session that holds one of `keys` (a bigint[]
 * literal). */
int af_lock_busy_error(PGconn *conn, const char *keys, const char *what);

/* The run key for the session: shared (a run over listed scopes, a
 * prune) or exclusive (a run over the whole database). With AF_LOCK_TRY,
 * AF_ERR_LOCKED when it cannot be had. af_unlock_run_key gives it back. */
int af_lock_run_key(PGconn *conn, bool shared, af_lock_mode mode);
void af_unlock_run_key(PGconn *conn, bool shared);

/* The write lock, for the current transaction (released by its end).
 * *got: whether it was had (always, with AF_LOCK_WAIT). */
int af_lock_write(PGconn *conn, af_lock_mode mode, bool *got);

/* Scope locks held by a session: their keys (af_scope_hash), in key
 * order; `busy` counts the scopes asked for that another session held. */
typedef struct af_scope_locks {
	int64_t *keys;
	size_t n;
	size_t busy;
} af_scope_locks;

/*
 * A session lock on each of scopes[0..n), taken in key order with one
 * statement, so that sessions that wait cannot deadlock. With
 * AF_LOCK_TRY a scope another session holds is skipped and busy[i] set
 * (busy may be NULL); that is no error, even when every scope is busy --
 * af_lock_scopes_busy_error() says who holds them.
 */
int af_lock_scopes(PGconn *conn, const af_scope *scopes, size_t n, af_lock_mode mode,
		   bool *busy, af_scope_locks *held);
int af_lock_scopes_busy_error(PGconn *conn, const af_scope *scopes, size_t n,
			      const bool *busy, const char *what);
/* Gives every lock back (when the connection still works) and frees. */
void af_unlock_scopes(PGconn *conn, af_scope_locks *held);

#endif
