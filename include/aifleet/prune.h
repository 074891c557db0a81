#ifndef AIFLEET_PRUNE_H
#define AIFLEET_PRUNE_H

/*
 * `aifleet prune`: history retention (docs/operations.md "History
 * retention"). Deletes the history versions that ended at or before a
 * cutoff, and the deletion markers of before it, so that every as-of
 * answer for the cutoff and later stays exactly what it was.
 *
 * It works in bounded batches of history ids, oldest first, each batch
 * its own transaction, holding the locks of the scopes it prunes (a
 * scope another run holds is left alone). A prune that stops midway --
 * an error, a kill, a lost database -- leaves every entity with a
 * contiguous run of its latest versions: the batches go in id order,
 * and an entity's versions are written in the order they begin.
 */

#include <stdbool.h>
#include <stdint.h>

#include "aifleet/store.h"

typedef struct af_prune_options {
	/* The cutoff: exactly one of the two, as PostgreSQL reads them. */
	const char *older_than; /* an interval back from now: 180d, '6 months' */
	const char *before;     /* a time: 2026-01-01, 2026-01-01T00:00Z */
	bool dry_run;           /* count, delete nothing, record nothing */
	bool wait;              /* wait for scopes other runs hold */
	int64_t batch_ids;      /* history ids per batch; 0: 10000 */
	/* Called after each batch (may be NULL); a negative return stops the
	 * prune there with that error (tests play a failure with it). */
	int (*after_batch)(void *ctx, uint64_t batches, uint64_t deleted);
	void *ctx;
} af_prune_options;

typedef struct af_prune_result {
	char cutoff[40];        /* RFC 3339, UTC */
	int64_t prune_id;       /* aifleet.history_prune.id; 0 for a dry run */
	uint64_t versions;      /* closed versions deleted (or, dry, that would be) */
	uint64_t markers;       /* deletion markers likewise */
	uint64_t batches;
	size_t scopes;          /* scopes pruned (their locks held) */
	size_t busy;            /* scopes another run held: left alone */
} af_prune_result;

/*
 * AF_ERR_PARAM for a cutoff PostgreSQL cannot read, or one not in the
 * past; AF_ERR_LOCKED when a run over the whole database holds the run
 * lock, or other runs hold every scope. On an error after the first
 * batch, `r` says what was deleted, and the prune is recorded as failed.
 */
int af_prune(af_store *s, const af_prune_options *o, af_prune_result *r);

#endif
