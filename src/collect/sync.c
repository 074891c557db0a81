/*
 * The sync engine: turns the configuration into jobs (one per scope), runs
 * them on a bounded pool of worker threads, and feeds the loader.
 *
 * Ordering that matters:
 *  - credentials are all resolved before anything is fetched, so a typo in
 *    a variable name fails fast, before the run lock is taken;
 *  - the loader's transaction is open for the whole collection and commits
 *    only at the end: a crash mid-way leaves the database as it was;
 *  - a scope is reported COMPLETE only if every page arrived and every item
 *    normalized; only complete scopes may tombstone.
 */
#include "aifleet/sync.h"
#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/threads.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct sync_state {
	const af_config *cfg;
	const af_sync_options *opts;
	af_client *client;
	af_job *jobs;
	size_t njobs;
	atomic_size_t next;
	atomic_size_t done;
	pthread_mutex_t out_lock;    /* serializes the loader */
	pthread_mutex_t progress_lock;
	uint64_t progress_items;
} sync_state;

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const product_order[] = {AF_PRODUCT_TAIR, AF_PRODUCT_HOLOGRES, AF_PRODUCT_TIONE};

static bool product_wanted(const af_account_config *a, const char *product, const char *only)
{
	const af_product_config *p = af_account_product((af_account_config *)a, product);

	return p && p->enabled && (!only || strcmp(only, product) == 0);
}

static int load_credentials(af_credentials *out, const af_account_config *a)
{
	int err;

	switch (a->cred_source) {
	case AF_CRED_ENV:
		err = af_credentials_from_env(out, a->id_env, a->secret_env, a->token_env);
		break;
	case AF_CRED_ALIYUN_CLI:
		err = af_credentials_from_aliyun_cli(out, a->cred_file, a->profile);
		break;
	case AF_CRED_TENCENT_FILE:
		err = af_credentials_from_tencent_file(out, a->cred_file, a->profile);
		break;
	default:
		err = af_error_set(AF_ERR_CONFIG, "unknown credential source");
	}
	if (err < 0)
		return af_error_prefix(AF_ERR_CONFIG, "account %s: ", a->name);
	return 0;
}

static int resolve_endpoint(af_job *job)
{
	const af_product_config *p = job->product;
	int err;

	if (p->endpoint)
		err = af_endpoint_expand(job->endpoint, sizeof(job->endpoint), p->endpoint,
					 job->scope.region);
	else
		err = af_default_endpoint(job->endpoint, sizeof(job->endpoint), job->scope.product,
					  job->scope.region, job->account->intl);
	if (err < 0)
		return af_error_prefix(AF_ERR_CONFIG, "account %s: %s endpoint: ", job->account->name,
				       job->scope.product);
	return 0;
}

static void show_progress(sync_state *st, const af_job *job)
{
	size_t done = atomic_fetch_add(&st->done, 1) + 1;

	pthread_mutex_lock(&st->progress_lock);
	st->progress_items += job->report.items;
	if (st->opts->progress)
		fprintf(stderr, "\r\033[Ksync: %zu/%zu scopes, %llu items", done, st->njobs,
			(unsigned long long)st->progress_items);
	pthread_mutex_unlock(&st->progress_lock);
}

static void run_job(sync_state *st, af_job *job)
{
	double started = now_seconds();
	int err;

	err = job->collector->collect(job);
	job->report.seconds = now_seconds() - started;
	/* The filter counted what the loader refused (under the loader lock);
	 * add what the normalizer refused, now that every worker is done. */
	job->report.rejected += job->norm.rejected;
	if (err < 0) {
		/* Overwrite whatever a worker recorded: this message has the
		 * scope in front and the cause behind it. */
		af_error_prefix(err, "%s/%s/%s/%s: ", job->scope.provider, job->scope.account,
				job->scope.region, job->scope.product);
		snprintf(job->error, sizeof(job->error), "%s", af_error_last());
		af_err("sync", "%s", job->error);
		job->report.state = job->report.pages > 0 ? AF_SCOPE_PARTIAL : AF_SCOPE_FAILED;
		job->last_error_class = err;
	} else if (job->report.rejected > 0) {
		snprintf(job->error, sizeof(job->error),
			 "%s/%s/%s/%s: %llu item(s) rejected as invalid; nothing tombstoned in this scope",
			 job->scope.provider, job->scope.account, job->scope.region,
			 job->scope.product, (unsigned long long)job->report.rejected);
		af_warn("sync", "%s", job->error);
		job->report.state = AF_SCOPE_PARTIAL;
	} else {
		job->report.state = AF_SCOPE_COMPLETE;
	}
	job->report.error = job->error[0] ? job->error : NULL;
	af_debug("sync", "%s/%s/%s/%s: %llu pages, %llu items, %.2f s", job->scope.provider,
		 job->scope.account, job->scope.region, job->scope.product,
		 (unsigned long long)job->report.pages, (unsigned long long)job->report.items,
		 job->report.seconds);
	show_progress(st, job);
}

static void *worker(void *arg)
{
	sync_state *st = arg;
	af_session *session = NULL;
	int err = 0;

	if (!st->opts->raw.replay_dir && (err = af_session_new(&session, st->client)) < 0)
		af_err("sync", "cannot create an HTTP session: %s", af_error_last());
	for (;;) {
		size_t i = atomic_fetch_add(&st->next, 1);
		af_job *job;

		if (i >= st->njobs)
			break;
		job = &st->jobs[i];
		if (err < 0) {
			snprintf(job->error, sizeof(job->error), "no HTTP session");
			job->report.state = AF_SCOPE_FAILED;
			job->report.error = job->error;
			show_progress(st, job);
			continue;
		}
		job->session = session;
		run_job(st, job);
	}
	af_session_free(session);
	return NULL;
}

static size_t count_jobs(const af_config *cfg, const char *only)
{
	size_t n = 0;

	for (size_t a = 0; a < cfg->naccounts; a++)
		for (size_t p = 0; p < 3; p++)
			if (product_wanted(&cfg->accounts[a], product_order[p], only))
				n += cfg->accounts[a].nregions;
	return n;
}

static int build_jobs(sync_state *st, af_credentials *creds, const af_record_sink *sink)
{
	const af_config *cfg = st->cfg;
	size_t n = 0;
	int err;

	for (size_t a = 0; a < cfg->naccounts; a++) {
		af_account_config *acct = &cfg->accounts[a];

		for (size_t p = 0; p < 3; p++) {
			if (!product_wanted(acct, product_order[p], st->opts->only))
				continue;
			for (size_t r = 0; r < acct->nregions; r++) {
				af_job *job = &st->jobs[n++];

				job->scope.provider = acct->provider;
				job->scope.account = acct->name;
				job->scope.region = acct->regions[r];
				job->scope.product = product_order[p];
				job->collector = af_collector_find(product_order[p]);
				job->account = acct;
				job->product = af_account_product(acct, product_order[p]);
				job->config = cfg;
				job->creds = &creds[a];
				job->client = st->client;
				job->raw = &st->opts->raw;
				job->out = sink;
				job->out_lock = &st->out_lock;
				if ((err = resolve_endpoint(job)) < 0 || (err = af_job_init(job)) < 0)
					return err;
			}
		}
	}
	return 0;
}

/* Every --allow-deletes scope must be one of this run's: a typo must not
 * pass for an accepted deletion that never happens. */
static int check_allow_deletes(const sync_state *st)
{
	for (size_t i = 0; i < st->opts->nallow_deletes; i++) {
		const char *want = st->opts->allow_deletes[i];
		bool found = strcmp(want, "all") == 0;

		for (size_t j = 0; j < st->njobs && !found; j++) {
			const af_scope *sc = &st->jobs[j].scope;
			char name[1024];

			snprintf(name, sizeof(name), "%s/%s/%s/%s", sc->provider, sc->account,
				 sc->region, sc->product);
			found = strcmp(name, want) == 0;
		}
		if (!found)
			return af_error_set(AF_ERR_CONFIG,
					    "--allow-deletes %s: no such scope in this run (name one "
					    "as provider/account/region/product, as 'aifleet status' "
					    "lists them, or say 'all')",
					    want);
	}
	return 0;
}

static int configure_client(sync_state *st)
{
	const af_config *cfg = st->cfg;
	af_client_options o;
	int err;

	af_client_options_default(&o);
	o.ca_bundle = cfg->ca_bundle;
	o.connect_timeout_ms = cfg->connect_timeout_ms;
	o.total_timeout_ms = cfg->timeout_ms;
	o.max_response_bytes = (size_t)cfg->max_response_mb * 1024 * 1024;
	o.max_attempts = cfg->max_attempts;
	o.retry_budget = cfg->retry_budget;
	if ((err = af_client_new(&st->client, &o)) < 0)
		return err;
	for (size_t a = 0; a < cfg->naccounts; a++) {
		af_account_config *acct = &cfg->accounts[a];

		for (size_t p = 0; p < 3; p++) {
			af_product_config *pc = af_account_product(acct, product_order[p]);

			if (!pc->enabled || pc->rate_limit <= 0)
				continue;
			err = af_client_set_rate(st->client, acct->provider, product_order[p],
						 acct->name, pc->rate_limit,
						 pc->burst > 0 ? pc->burst : pc->rate_limit);
			if (err < 0)
				return err;
		}
	}
	return 0;
}

static void print_plan(FILE *out, const sync_state *st, af_loader *loader,
		       const af_sync_result *r)
{
	const af_entity_counts *c[3] = {&r->load.instances, &r->load.services, &r->load.resources};
	const char *names[3] = {"instances", "services", "resources"};

	fprintf(out, "Dry run: nothing was written.\n\n");
	fprintf(out, "%-10s %-16s %-16s %-14s %-9s %7s %s\n", "provider", "account", "region",
		"product", "state", "items", "error");
	for (size_t i = 0; i < st->njobs; i++) {
		const af_scope_report *rep = &st->jobs[i].report;
		static const char *const states[] = {"complete", "partial", "failed"};
		uint64_t deletes = 0, live = 0;
		bool held = af_loader_scope_held(loader, &rep->scope, &deletes, &live);
		char why[128];

		if (held)
			snprintf(why, sizeof(why),
				 "would be held: %llu of %llu live entities would be tombstoned",
				 (unsigned long long)deletes, (unsigned long long)live);
		fprintf(out, "%-10s %-16s %-16s %-14s %-9s %7llu %s\n", rep->scope.provider,
			rep->scope.account, rep->scope.region, rep->scope.product,
			held ? "held" : states[rep->state], (unsigned long long)rep->items,
			held ? why : rep->error ? rep->error : "");
	}
	fprintf(out, "\n%-10s %9s %9s %9s %9s %9s\n", "plan", "create", "update", "delete",
		"restore", "unchanged");
	for (int i = 0; i < 3; i++)
		fprintf(out, "%-10s %9llu %9llu %9llu %9llu %9llu\n", names[i],
			(unsigned long long)c[i]->created, (unsigned long long)c[i]->updated,
			(unsigned long long)c[i]->deleted, (unsigned long long)c[i]->restored,
			(unsigned long long)c[i]->unchanged);
}

int af_sync_run(const af_config *cfg, const af_sync_options *opts, af_sync_result *result)
{
	sync_state st;
	af_credentials *creds = NULL;
	af_store *store = NULL;
	af_loader *loader = NULL;
	af_record_sink sink;
	af_run_options run_opts = {0};
	af_delete_guard guard;
	size_t want;
	double started = now_seconds(), collect_started;
	int err = 0;

	memset(result, 0, sizeof(*result));
	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	st.opts = opts;
	pthread_mutex_init(&st.out_lock, NULL);
	pthread_mutex_init(&st.progress_lock, NULL);

	if (opts->only && !af_collector_find(opts->only)) {
		err = af_error_set(AF_ERR_CONFIG, "--only: unknown product '%s' "
				   "(tair_kvcache, hologres, tione)", opts->only);
		goto done;
	}
	st.njobs = count_jobs(cfg, opts->only);
	if (st.njobs == 0) {
		err = af_error_set(AF_ERR_CONFIG, "nothing to collect: no account in %s has %s",
				   cfg->path ? cfg->path : "the configuration",
				   opts->only ? opts->only : "any product and region");
		goto done;
	}
	st.jobs = calloc(st.njobs, sizeof(*st.jobs));
	creds = calloc(cfg->naccounts, sizeof(*creds));
	if (!st.jobs || !creds) {
		err = af_error_set(AF_ERR_NOMEM, "out of memory");
		goto done;
	}
	if (!opts->raw.replay_dir) {
		for (size_t a = 0; a < cfg->naccounts; a++) {
			bool used = false;

			for (size_t p = 0; p < 3; p++)
				used |= product_wanted(&cfg->accounts[a], product_order[p], opts->only);
			if (used && (err = load_credentials(&creds[a], &cfg->accounts[a])) < 0)
				goto done;
		}
	}
	if ((err = configure_client(&st)) < 0)
		goto done;

	if ((err = af_store_connect(&store, opts->db_conninfo ? opts->db_conninfo
							      : cfg->db_conninfo)) < 0)
		goto done;
	if (!opts->dry_run) {
		if ((err = af_store_migrate(store, NULL)) < 0)
			goto done;
	} else {
		/* A dry run writes nothing, not even the schema. */
		int pending = 0;

		if ((err = af_store_pending_migrations(store, &pending)) < 0)
			goto done;
		if (pending > 0) {
			err = af_error_set(AF_ERR_CONFIG,
					   "the database schema is not up to date (%d migration(s) "
					   "pending) and a dry run writes nothing: run 'aifleet "
					   "migrate' first",
					   pending);
			goto done;
		}
	}
	run_opts.dry_run = opts->dry_run;
	run_opts.wait_for_lock = opts->wait_for_lock || cfg->wait_for_lock;
	run_opts.trigger = opts->trigger ? opts->trigger : "aifleet sync";
	guard.max_fraction = cfg->max_delete_fraction;
	guard.min_deletes = (uint64_t)cfg->max_delete_min;
	guard.allow = opts->allow_deletes;
	guard.nallow = opts->nallow_deletes;
	run_opts.guard = &guard;
	if ((err = af_loader_begin(&loader, store, &run_opts)) < 0)
		goto done;
	sink = af_loader_sink(loader);
	if ((err = build_jobs(&st, creds, &sink)) < 0 || (err = check_allow_deletes(&st)) < 0)
		goto done;

	collect_started = now_seconds();
	want = (size_t)cfg->concurrency < st.njobs ? (size_t)cfg->concurrency : st.njobs;
	if (af_threads_run(want, worker, &st) == 0) {
		err = af_error_set(AF_ERR_GENERIC, "cannot start worker threads");
		goto done;
	}
	if (opts->progress)
		fputc('\n', stderr);
	result->collect_seconds = now_seconds() - collect_started;

	for (size_t i = 0; i < st.njobs; i++) {
		af_job *job = &st.jobs[i];

		result->scopes++;
		result->items += job->report.items;
		result->duplicates += job->report.duplicates;
		result->rejected += job->report.rejected;
		result->requests += job->report.requests;
		result->retries += job->report.retries;
		result->throttled += job->report.throttled;
		result->fetch_seconds += job->fetch_seconds;
		result->normalize_seconds += job->normalize_seconds;
		if (job->last_error_class == AF_ERR_AUTH)
			result->auth_failures++;
		else if (job->last_error_class == AF_ERR_CONFIG)
			result->config_failures++;
		if ((err = af_loader_scope_done(loader, &job->report)) < 0)
			goto done;
	}
	if ((err = af_loader_commit(loader, &result->load)) < 0)
		goto done;
	/* The loader has the last word on each scope. */
	result->complete = result->load.scopes_complete;
	result->partial = result->load.scopes_partial;
	result->failed = result->load.scopes_failed;
	result->held = result->load.scopes_held;
	if (opts->dry_run && opts->plan_out)
		print_plan(opts->plan_out, &st, loader, result);

done:
	result->seconds = now_seconds() - started;
	af_loader_free(loader);
	af_store_free(store);
	for (size_t i = 0; st.jobs && i < st.njobs; i++)
		af_job_cleanup(&st.jobs[i]);
	free(st.jobs);
	for (size_t a = 0; creds && a < cfg->naccounts; a++)
		af_credentials_clear(&creds[a]);
	free(creds);
	af_client_free(st.client);
	pthread_mutex_destroy(&st.out_lock);
	pthread_mutex_destroy(&st.progress_lock);
	return err;
}

void af_sync_print_summary(FILE *out, const af_sync_result *r, bool dry_run)
{
	const af_entity_counts *c[3] = {&r->load.instances, &r->load.services, &r->load.resources};
	uint64_t created = 0, updated = 0, deleted = 0, restored = 0, unchanged = 0;
	const char *status;

	for (int i = 0; i < 3; i++) {
		created += c[i]->created;
		updated += c[i]->updated;
		deleted += c[i]->deleted;
		restored += c[i]->restored;
		unchanged += c[i]->unchanged;
	}
	status = r->complete == r->scopes ? "ok" : r->complete + r->held > 0 ? "partial" : "failed";
	if (dry_run)
		fprintf(out, "sync: dry run %s: ", status);
	else
		fprintf(out, "sync: run %lld %s: ", (long long)r->load.run_id, status);
	fprintf(out,
		"%zu scopes (%zu complete, %zu partial, %zu failed, %zu held), %llu items "
		"(%llu duplicates, %llu rejected); rows created %llu, updated %llu, deleted %llu, "
		"restored %llu, unchanged %llu; %llu history rows; %llu requests, %llu retries, "
		"%llu throttled; %.2f s (collect %.2f s [worker time: fetch %.2f s, "
		"normalize+copy %.2f s], merge %.2f s)\n",
		r->scopes, r->complete, r->partial, r->failed, r->held, (unsigned long long)r->items,
		(unsigned long long)r->duplicates, (unsigned long long)r->rejected,
		(unsigned long long)created, (unsigned long long)updated,
		(unsigned long long)deleted, (unsigned long long)restored,
		(unsigned long long)unchanged, (unsigned long long)r->load.history_rows,
		(unsigned long long)r->requests, (unsigned long long)r->retries,
		(unsigned long long)r->throttled, r->seconds, r->collect_seconds,
		r->fetch_seconds, r->normalize_seconds, r->load.merge_seconds);
}
