#ifndef AIFLEET_STORE_H
#define AIFLEET_STORE_H

/*
 * The PostgreSQL store: migrations, the loader, and status queries. This is
 * the only module that talks to PostgreSQL.
 *
 * A run: af_loader_begin() takes the run's locks and opens its
 * transaction, records go through af_loader_sink() (streamed with COPY
 * into staging, or spooled when their scope may turn out unchanged), each
 * scope is reported with af_loader_scope_done(), and af_loader_commit()
 * skips the unchanged scopes, stages what changed in the others, merges
 * set-based and commits -- or, for a dry run, computes the plan and rolls
 * back. A failure anywhere commits nothing.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "aifleet/record.h"

typedef struct af_store af_store;

/* conninfo: libpq keyword/value string or URI; NULL or "" uses the PG*
 * environment. */
int af_store_connect(af_store **out, const char *conninfo);
void af_store_free(af_store *s);

/* Applies pending migrations, each in its own transaction, recorded with a
 * SHA-256 checksum; an applied migration whose text changed is an error.
 * *applied (may be NULL) receives how many were applied now. */
int af_store_migrate(af_store *s, int *applied);

/* How many embedded migrations the database has not applied yet (all of
 * them for an empty database). Reads only. */
int af_store_pending_migrations(af_store *s, int *pending);

/* Prints recent runs and per-scope freshness and errors. */
int af_store_print_status(af_store *s, FILE *out, int max_runs);
/* The same as one JSON document: {generated_at, pending_migrations, runs:
 * [...], scopes: [...]}; docs/operations.md lists its fields. */
int af_store_print_status_json(af_store *s, FILE *out, int max_runs);

/* One row of the scope ledger (aifleet.scope_state); its strings are the
 * store's, valid during the callback only. */
typedef struct af_ledger_row {
	af_scope scope;
	const char *state;        /* complete, partial, failed or held */
	int64_t last_run_id;
	double last_attempt_at;   /* Unix time */
	double last_complete_at;  /* Unix time; 0 = never complete */
	uint64_t held_deletes;    /* state held: the tombstones held back */
} af_ledger_row;

/* Calls fn for every scope the ledger holds (any order); stops at, and
 * returns, the first negative value fn returns. Reads only. */
int af_store_each_ledger_row(af_store *s, int (*fn)(void *ctx, const af_ledger_row *row),
			     void *ctx);

/*
 * The mass-delete guard: in a complete scope, if the run would tombstone
 * more than max_fraction of the scope's live entities (instances, services
 * and resources together) and more than min_deletes of them, nothing in
 * that scope is tombstoned and the scope is recorded as held -- unless the
 * operator accepted it with --allow-deletes (a scope named
 * provider/account/region/product, or "all").
 */
typedef struct af_delete_guard {
	double max_fraction;          /* default 0.5 */
	uint64_t min_deletes;         /* default 10 */
	const char *const *allow;     /* scopes whose deletes are accepted, or "all" */
	size_t nallow;
} af_delete_guard;

#define AF_DELETE_GUARD_FRACTION 0.5
#define AF_DELETE_GUARD_MIN 10

typedef struct af_run_options {
	bool dry_run;         /* compute the plan, then roll back */
	bool wait_for_lock;   /* wait for a concurrent run instead of failing */
	const char *trigger;  /* free text stored with the run, e.g. "aifleet sync" */
	const af_delete_guard *guard; /* NULL: the defaults above, nothing allowed */
	/* Load accounts new to the database through staging and the merge
	 * like every other, not straight into the tables (the tests compare
	 * the two paths; see docs/architecture.md "The load path"). */
	bool no_direct;
	/*
	 * The scopes the run will load. Each is locked for the run (a session
	 * advisory lock on its af_scope_hash, taken in key order), so that runs
	 * over disjoint scopes collect side by side while two runs of one scope
	 * never interleave; what they write is serialized by the write lock,
	 * which a run that finds it taken waits for at its commit. A scope
	 * another run holds is busy (busy[i] set, with wait_for_lock false:
	 * it waits otherwise): the run must not load it, and fails with
	 * AF_ERR_LOCKED only when every scope is busy. Records and reports of
	 * a scope not listed are refused. NULL: the whole database is the
	 * run's, behind the write lock alone (library callers, benchmarks).
	 */
	const af_scope *scopes;
	size_t nscopes;
	bool *busy;          /* nscopes entries, filled by af_loader_begin; may be NULL */
	const char *shard;   /* "K/N", recorded with the run; NULL: no shard */
} af_run_options;

typedef struct af_entity_counts {
	uint64_t staged;
	uint64_t created;
	uint64_t updated;
	uint64_t deleted;
	uint64_t restored;
	uint64_t unchanged;
} af_entity_counts;

typedef struct af_load_summary {
	int64_t run_id;             /* 0 for a dry run */
	af_entity_counts instances;
	af_entity_counts services;
	af_entity_counts resources;
	uint64_t history_rows;
	/* Rows written straight into their tables by the first-load path (an
	 * account new to the database), with their first versions; counted
	 * in created and history_rows too. */
	uint64_t direct_rows;
	/* Scopes as the loader finally judged them: a scope reported complete
	 * is partial after a rejected record or an orphan, and held when the
	 * guard stopped its tombstones (held scopes count as partial too). */
	size_t scopes_complete;
	size_t scopes_partial;
	size_t scopes_failed;
	size_t scopes_held;
	/* Complete scopes whose records matched the digest of their last clean
	 * run: nothing of them was staged or merged (counted complete too). */
	size_t scopes_skipped;
	double copy_seconds;
	double merge_seconds;
} af_load_summary;

typedef struct af_loader af_loader;

/* Fails with AF_ERR_LOCKED (the message says who holds it) when another
 * run holds the run's scopes (every one of them) or, without a scope list,
 * the write lock -- unless wait_for_lock. */
int af_loader_begin(af_loader **out, af_store *s, const af_run_options *opts);

/* The sink to hand to normalizers. Not thread-safe: callers serialize. */
af_record_sink af_loader_sink(af_loader *l);

int af_loader_scope_done(af_loader *l, const af_scope_report *report);

/* Merges and commits (or rolls back for a dry run). */
int af_loader_commit(af_loader *l, af_load_summary *out);

/* After af_loader_commit: true if the guard held the scope's tombstones,
 * with how many it would have written and the scope's live entities. */
bool af_loader_scope_held(af_loader *l, const af_scope *scope, uint64_t *deletes,
			  uint64_t *live);

/* Rolls back unless committed, releases the lock, frees. NULL is fine. */
void af_loader_free(af_loader *l);

#endif
