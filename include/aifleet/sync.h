#ifndef AIFLEET_SYNC_H
#define AIFLEET_SYNC_H

/*
 * `aifleet sync`: migrate, take the run lock, collect every scope
 * (account x region x product) concurrently within the rate limits,
 * normalize, load, merge, commit.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "aifleet/collect.h"
#include "aifleet/config.h"
#include "aifleet/store.h"

typedef struct af_sync_options {
	const char *db_conninfo; /* overrides the config's; NULL = config, then PG* env */
	const char *only;        /* collect only this product, or NULL */
	/* --account: only these accounts (labels; NULL: every one). */
	const char *const *accounts;
	size_t naccounts;
	/* --shard K/N: only the scopes whose af_scope_hash() % N is K
	 * (shard_count 0: every scope). */
	unsigned shard_index, shard_count;
	bool dry_run;
	bool wait_for_lock;
	bool progress;           /* redraw a progress line on stderr */
	af_raw_options raw;
	const char *trigger;
	FILE *plan_out;          /* dry run: where the plan is printed; NULL = none */
	/* Fill af_sync_result.outcomes (the metrics file wants them): the
	 * scopes' reports, and the ledger read once more after the run. */
	bool outcomes;
	/* --allow-deletes: scopes (provider/account/region/product, or "all")
	 * whose tombstones the mass-delete guard lets through this once. */
	const char *const *allow_deletes;
	size_t nallow_deletes;
} af_sync_options;

/* One scope of the run, as the metrics file reports it. */
typedef struct af_scope_outcome {
	af_scope scope;         /* points into the configuration */
	/* complete, partial, failed or held: the loader's last word, as the
	 * ledger recorded it; failed when the run committed nothing. */
	const char *state;
	uint64_t items;
	uint64_t rejected;
	uint64_t requests;
	uint64_t retries;
	uint64_t throttled;
	uint64_t held_deletes;  /* state held: the tombstones held back */
	double attempted_at;    /* Unix time this run started */
	/* Unix time of the start of the last run that collected the scope
	 * completely (the ledger's), this one or an earlier; 0 = never, or
	 * the ledger could not be read (the database was lost). */
	double completed_at;
} af_scope_outcome;

typedef struct af_sync_result {
	af_load_summary load;
	/* Scopes as finally judged (by the collectors, then the loader: a
	 * rejected record or orphan makes a scope partial, the mass-delete
	 * guard makes it held). complete + partial + failed + busy = scopes;
	 * held scopes are counted in partial too. */
	size_t scopes;
	size_t complete;
	size_t partial;
	size_t failed;
	size_t held;
	/* Scopes another run held when this one started: not collected, not
	 * reported to the loader, not complete (counted in scopes only). */
	size_t busy;
	uint64_t items;
	uint64_t duplicates;
	uint64_t rejected;
	uint64_t requests;
	uint64_t retries;
	uint64_t throttled;
	size_t auth_failures;    /* scopes refused authentication */
	size_t config_failures;  /* scopes that failed on configuration or TLS verification */
	double seconds;          /* wall time of the whole run */
	double collect_seconds;  /* wall time of the collection phase */
	double fetch_seconds;    /* summed over workers: waiting for HTTP */
	double normalize_seconds;/* summed: normalizing + streaming COPY */
	double started_at;       /* Unix time */
	bool committed;
	/* With af_sync_options.outcomes: every scope the run was to collect
	 * (another run's busy ones aside), sorted by provider, account, region
	 * and product; also after a failed run (then: as far as it got).
	 * Owned by the result: af_sync_result_free(). */
	af_scope_outcome *outcomes;
	size_t noutcomes;
} af_sync_result;

/*
 * Returns 0 when the run committed (check result->partial/failed for
 * scopes that did not complete), or a negative af_error_class when
 * nothing was committed. Either way, `result` must be freed with
 * af_sync_result_free().
 */
int af_sync_run(const af_config *cfg, const af_sync_options *opts, af_sync_result *result);

/* Frees what af_sync_run() allocated in `r` (the outcomes). */
void af_sync_result_free(af_sync_result *r);

/*
 * `aifleet check-config`: prints each account's credential source and
 * whether its credentials could be had here -- local sources are loaded
 * and wiped, a source that asks a server (STS, instance metadata, a
 * credentials URI) is only checked as far as its local part -- and every
 * scope a run with `opts` would collect (--only, --account, --shard),
 * with its endpoint. Calls no server and no database. Returns 0, or AF_ERR_CONFIG
 * when an account's credentials cannot be had, an endpoint is wrong or
 * there is nothing to collect (all of it printed first).
 */
int af_sync_check_config(const af_config *cfg, const af_sync_options *opts, FILE *out);

/* One line: "sync: run 12 partial: 9 scopes (8 complete, 1 failed), ..." */
void af_sync_print_summary(FILE *out, const af_sync_result *r, bool dry_run);

#endif
