/*
 * The sync engine: turns the configuration into jobs (one per scope), runs
 * them on a bounded pool of worker threads, and feeds the loader. A run is
 * four steps, each its own function below:
 *
 *   prepare  scopes, credentials, HTTP client, jobs, database, loader;
 *   collect  the workers run the jobs, streaming records to the loader;
 *   report   every scope's report goes to the loader and the result;
 *   commit   the loader merges and commits (or rolls back a dry run).
 *
 * Ordering that matters:
 *  - credentials and endpoints are all resolved before anything is
 *    fetched or locked: an account without credentials fails its own
 *    scopes, and when no account has any the run stops there;
 *  - the loader's transaction is open for the whole collection and commits
 *    only at the end: a crash mid-way leaves the database as it was;
 *  - a scope is reported COMPLETE only if every page arrived and every item
 *    normalized; only complete scopes may tombstone.
 */
#include "aifleet/sync.h"
#include "sync_internal.h"
#include "aifleet/clock.h"
#include "aifleet/creds.h"
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/log.h"
#include "aifleet/threads.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct sync_run;

/* A renewal's context: the run and the account it renews. */
typedef struct account_ref {
	struct sync_run *run;
	size_t index;
} account_ref;

typedef struct sync_run {
	const af_config *cfg;
	const af_sync_options *opts;
	af_cred_provider **creds;    /* one per account, by account index */
	struct account_ref *refs;    /* what a renewal needs to find its account */
	/* Per account: 0 not resolved yet, 1 creds[i] loaded, or the negative
	 * class of the error that left it without credentials (its message
	 * in cred_error[i]): its scopes fail, the other accounts' run. */
	int *cred_state;
	char **cred_error;
	af_client *client;
	af_session_pool *sessions;   /* the collectors' helper threads' */
	af_store *store;
	af_loader *loader;
	af_record_sink sink;         /* the loader's; the jobs point here */
	af_delete_guard guard;
	af_job **jobs;
	size_t njobs;
	bool *busy;                  /* per job: another run holds its scope */
	atomic_size_t next;          /* the next job a worker takes */
	atomic_size_t done;
	pthread_mutex_t out_lock;    /* serializes the loader */
	pthread_mutex_t progress_lock;
	uint64_t progress_items;
} sync_run;

/* ---- prepare ------------------------------------------------------------ */

static bool account_listed(const af_sync_options *o, const af_account_config *a)
{
	if (!o->naccounts)
		return true;
	for (size_t i = 0; i < o->naccounts; i++)
		if (strcmp(o->accounts[i], a->name) == 0)
			return true;
	return false;
}

bool af_sync_scope_wanted(const af_sync_options *o, const af_account_config *a, size_t product,
			  size_t region)
{
	af_scope sc;

	if (!a->products[product].enabled ||
	    (o->only && strcmp(o->only, af_product_at(product)->name) != 0) ||
	    !account_listed(o, a))
		return false;
	if (o->shard_count == 0)
		return true;
	sc = (af_scope){a->provider, a->name, a->regions[region], af_product_at(product)->name};
	return af_scope_hash(&sc) % o->shard_count == o->shard_index;
}

bool af_sync_account_wanted(const af_sync_options *o, const af_account_config *a)
{
	for (size_t p = 0; p < af_product_count(); p++)
		for (size_t r = 0; r < a->nregions; r++)
			if (af_sync_scope_wanted(o, a, p, r))
				return true;
	return false;
}

int af_sync_check_selection(const af_config *cfg, const af_sync_options *o)
{
	char known[256];

	if (o->only && !af_product_find(o->only)) {
		af_product_names(known, sizeof(known));
		return af_error_set(AF_ERR_CONFIG, "--only: unknown product '%s' (%s)", o->only,
				    known);
	}
	for (size_t i = 0; i < o->naccounts; i++)
		if (!af_config_account(cfg, o->accounts[i]))
			return af_error_set(AF_ERR_CONFIG, "--account %s: no such account in %s",
					    o->accounts[i],
					    cfg->path ? cfg->path : "the configuration");
	if (o->shard_count > 0 && o->shard_index >= o->shard_count)
		return af_error_set(AF_ERR_CONFIG, "--shard %u/%u: K must be below N",
				    o->shard_index, o->shard_count);
	return 0;
}

static size_t count_scopes(const af_config *cfg, const af_sync_options *o)
{
	size_t n = 0;

	for (size_t a = 0; a < cfg->naccounts; a++)
		for (size_t p = 0; p < af_product_count(); p++)
			for (size_t r = 0; r < cfg->accounts[a].nregions; r++)
				n += af_sync_scope_wanted(o, &cfg->accounts[a], p, r);
	return n;
}

static int select_scopes(sync_run *run)
{
	const af_sync_options *o = run->opts;
	int err;

	if ((err = af_sync_check_selection(run->cfg, o)) < 0)
		return err;
	run->njobs = count_scopes(run->cfg, o);
	if (run->njobs == 0)
		return af_error_set(AF_ERR_CONFIG, "nothing to collect: no account in %s has %s%s",
				    run->cfg->path ? run->cfg->path : "the configuration",
				    o->only ? o->only : "any product and region",
				    o->shard_count || o->naccounts ? " in this selection" : "");
	run->jobs = calloc(run->njobs, sizeof(*run->jobs));
	run->busy = calloc(run->njobs, sizeof(*run->busy));
	run->creds = calloc(run->cfg->naccounts, sizeof(*run->creds));
	if (!run->jobs || !run->busy || !run->creds)
		return af_error_oom();
	return 0;
}

int af_sync_load_credentials(af_credentials *out, const af_account_config *a,
			     af_session *session)
{
	af_metadata_options md = {.endpoint = a->metadata_endpoint, .role = a->role_name};
	af_chain_options chain = {.profile = a->profile, .session = session, .metadata = md,
				  .sts_endpoint = a->sts_endpoint};
	const char *step = NULL;
	int err;

	switch (a->cred_source) {
	case AF_CRED_ENV:
		err = af_credentials_from_env(out, a->id_env, a->secret_env, a->token_env);
		break;
	case AF_CRED_ALIYUN_CLI:
		err = af_credentials_from_aliyun_cli(out, a->cred_file, a->profile);
		break;
	case AF_CRED_ALIBABACLOUD_FILE:
		err = af_credentials_from_alibabacloud_file(out, a->cred_file, a->profile);
		break;
	case AF_CRED_TENCENT_FILE:
		err = af_credentials_from_tencent_file(out, a->cred_file, a->profile);
		break;
	case AF_CRED_ECS_RAM_ROLE:
		err = af_credentials_from_ecs_ram_role(out, session, &md);
		break;
	case AF_CRED_CVM_ROLE:
		err = af_credentials_from_cvm_role(out, session, &md);
		break;
	case AF_CRED_OIDC:
	case AF_CRED_TKE_OIDC:
		err = af_credentials_from_oidc_env(out, session, a->provider, a->sts_endpoint);
		break;
	case AF_CRED_URI:
		err = af_credentials_from_uri(out, session, a->credentials_uri
								 ? a->credentials_uri
								 : getenv("ALIBABA_CLOUD_CREDENTIALS_URI"));
		break;
	case AF_CRED_DEFAULT:
		if ((err = af_credentials_default(out, a->provider, &chain, &step)) == 0)
			af_info("sync", "account %s: credentials from the default chain's %s",
				a->name, step);
		break;
	default:
		err = af_error_set(AF_ERR_CONFIG, "unknown credential source");
	}
	if (err < 0)
		return af_error_prefix(AF_ERR_CONFIG, "account %s: ", a->name);
	return 0;
}

/* The role an account assumes, as the STS call wants it. */
static af_assume_role role_of(const af_account_config *a)
{
	af_assume_role r = {
		.role_arn = a->role_arn,
		.session_name = a->role_session_name,
		.external_id = a->external_id,
		.policy = a->policy,
		.duration_seconds = a->duration_seconds,
		.endpoint = a->sts_endpoint,
		.region = a->nregions ? a->regions[0] : NULL,
		.account = a->name,
	};

	return r;
}

static int resolve_credentials(sync_run *run, size_t index, af_session *session, int depth);

/* Fresh credentials for account `index`: its own source's, or its
 * `source` account's current ones, then -- with a role_arn -- the role's,
 * asked for with them. The config refused loops; `depth` is a second
 * guard. Also what a renewal runs. */
static int fetch_credentials(sync_run *run, size_t index, af_session *session, int depth,
			     af_credentials *out)
{
	const af_account_config *a = &run->cfg->accounts[index];
	af_credentials base = {0};
	af_assume_role role = role_of(a);
	int err;

	memset(out, 0, sizeof(*out));
	if (depth > AF_CONFIG_MAX_ROLE_HOPS)
		return af_error_set(AF_ERR_CONFIG, "account %s: role chain too long", a->name);
	if (a->source) {
		size_t src = (size_t)(af_config_account(run->cfg, a->source) - run->cfg->accounts);

		if ((err = resolve_credentials(run, src, session, depth + 1)) < 0)
			return af_error_prefix(err, "account %s: source ", a->name);
		if ((err = af_cred_provider_get(run->creds[src], session, &base)) < 0)
			return err;
	} else if ((err = af_sync_load_credentials(&base, a, session)) < 0) {
		return err;
	}
	if (!a->role_arn) {
		*out = base;
		return 0;
	}
	err = af_credentials_assume_role(out, session, a->provider, &base, &role);
	af_credentials_clear(&base);
	if (err < 0)
		return af_error_prefix(err == AF_ERR_AUTH ? err : AF_ERR_CONFIG, "account %s: ",
				       a->name);
	af_info("sync", "account %s: assumed role %s with the credentials of %s", a->name,
		a->role_arn, a->source ? a->source : "its own source");
	return 0;
}

static int renew_credentials(void *ctx, af_session *session, af_credentials *out)
{
	account_ref *ref = ctx;

	return fetch_credentials(ref->run, ref->index, session, 0, out);
}

/* Each account is resolved once, success or failure: a source shared by
 * many members is asked once, and its failure told once. Temporary
 * credentials get a holder that renews them. */
static int resolve_credentials(sync_run *run, size_t index, af_session *session, int depth)
{
	af_credentials fresh;
	int err;

	if (run->cred_state[index] > 0)
		return 0;
	if (run->cred_state[index] < 0)
		return af_error_set(run->cred_state[index], "%s", run->cred_error[index]);
	if ((err = fetch_credentials(run, index, session, depth, &fresh)) == 0) {
		run->refs[index] = (account_ref){run, index};
		if ((err = af_cred_provider_new(&run->creds[index], &fresh,
						fresh.expires_at ? renew_credentials : NULL,
						&run->refs[index],
						run->cfg->accounts[index].name)) < 0) {
			af_credentials_clear(&fresh);
			return err;
		}
		run->cred_state[index] = 1;
		return 0;
	}
	if (err == AF_ERR_NOMEM || !(run->cred_error[index] = strdup(af_error_last())))
		return af_error_oom();
	run->cred_state[index] = err;
	return af_error_set(err, "%s", run->cred_error[index]);
}

/* Replayed pages need no keys; otherwise every account this run uses gets
 * them before anything is collected or locked. An account whose keys
 * cannot be had fails its own scopes (exit 78), and the others run --
 * unless none has keys: then the run stops here, with the first error.
 * The instance role and STS calls go out on a session of their own. */
static int load_all_credentials(sync_run *run)
{
	const af_config *cfg = run->cfg;
	af_session *session = NULL;
	size_t loaded = 0, failed = 0;
	char first[1024] = "";
	int first_err = 0, err = 0;

	if (run->opts->raw.replay_dir)
		return 0;
	run->cred_state = calloc(cfg->naccounts, sizeof(*run->cred_state));
	run->cred_error = calloc(cfg->naccounts, sizeof(*run->cred_error));
	run->refs = calloc(cfg->naccounts, sizeof(*run->refs));
	if (!run->cred_state || !run->cred_error || !run->refs)
		return af_error_oom();
	if ((err = af_session_new(&session, run->client)) < 0)
		return err;
	for (size_t a = 0; a < cfg->naccounts && err == 0; a++) {
		if (!af_sync_account_wanted(run->opts, &cfg->accounts[a]))
			continue; /* a source alone is resolved by its members */
		if ((err = resolve_credentials(run, a, session, 0)) == 0) {
			loaded++;
			continue;
		}
		if (err == AF_ERR_NOMEM)
			break;
		if (!first_err) {
			first_err = err;
			snprintf(first, sizeof(first), "%s", af_error_last());
		}
		af_err("sync", "%s; its scopes fail, the other accounts go on", af_error_last());
		failed++;
		err = 0;
	}
	af_session_free(session);
	if (err == 0 && failed > 0 && loaded == 0)
		return af_error_set(first_err, "%s", first);
	return err;
}

static int configure_client(sync_run *run)
{
	const af_config *cfg = run->cfg;
	af_client_options o;
	int err;

	af_client_options_default(&o);
	o.ca_bundle = cfg->ca_bundle;
	o.connect_timeout_ms = cfg->connect_timeout_ms;
	o.total_timeout_ms = cfg->timeout_ms;
	o.max_response_bytes = (size_t)cfg->max_response_mb * 1024 * 1024;
	o.max_attempts = cfg->max_attempts;
	o.retry_budget = cfg->retry_budget;
	if ((err = af_client_new(&run->client, &o)) < 0 ||
	    (err = af_session_pool_new(&run->sessions, run->client,
				       (size_t)cfg->concurrency * (size_t)cfg->detail_concurrency)) < 0)
		return err;
	for (size_t a = 0; a < cfg->naccounts; a++) {
		const af_account_config *acct = &cfg->accounts[a];

		for (size_t p = 0; p < af_product_count(); p++) {
			const af_product_config *pc = &acct->products[p];

			if (!pc->enabled || pc->rate_limit <= 0)
				continue;
			err = af_client_set_rate(run->client, acct->provider, af_product_at(p)->name,
						 acct->name, pc->rate_limit,
						 pc->burst > 0 ? pc->burst : pc->rate_limit);
			if (err < 0)
				return err;
		}
	}
	return 0;
}

int af_sync_endpoint(char *out, size_t n, const af_account_config *a, size_t product,
		     const char *region)
{
	const af_product *p = af_product_at(product);
	const af_product_config *pc = &a->products[product];
	int err;

	if (pc->endpoint)
		err = af_endpoint_expand(out, n, pc->endpoint, region);
	else
		err = af_default_endpoint(out, n, p->name, region, a->intl);
	if (err < 0)
		return af_error_prefix(AF_ERR_CONFIG, "account %s: %s endpoint: ", a->name, p->name);
	return 0;
}

static int add_job(sync_run *run, size_t *n, size_t account, size_t product, size_t region)
{
	const af_account_config *a = &run->cfg->accounts[account];
	char endpoint[512];
	af_job_setup setup = {
		.scope = {a->provider, a->name, a->regions[region], af_product_at(product)->name},
		.product = af_product_at(product),
		.settings = &a->products[product],
		.endpoint = endpoint,
		.max_pages = run->cfg->max_pages,
		.detail_concurrency = run->cfg->detail_concurrency,
		.creds = run->creds[account],
		.client = run->client,
		.sessions = run->sessions,
		.raw = &run->opts->raw,
		.out = &run->sink,
		.out_lock = &run->out_lock,
	};
	int err;

	if ((err = af_sync_endpoint(endpoint, sizeof(endpoint), a, product, a->regions[region])) < 0 ||
	    (err = af_job_new(&run->jobs[*n], &setup)) < 0)
		return err;
	if (run->cred_state && run->cred_state[account] < 0)
		af_job_skip(run->jobs[*n], run->cred_state[account], run->cred_error[account]);
	(*n)++;
	return 0;
}

/* Jobs in a stable order: accounts as configured, products in registry
 * order, regions as listed. */
static int build_jobs(sync_run *run)
{
	const af_config *cfg = run->cfg;
	size_t n = 0;
	int err;

	for (size_t a = 0; a < cfg->naccounts; a++)
		for (size_t p = 0; p < af_product_count(); p++)
			for (size_t r = 0; r < cfg->accounts[a].nregions; r++)
				if (af_sync_scope_wanted(run->opts, &cfg->accounts[a], p, r) &&
				    (err = add_job(run, &n, a, p, r)) < 0)
					return err;
	return 0;
}

/* Every --allow-deletes scope must be one of this run's: a typo must not
 * pass for an accepted deletion that never happens. */
static int check_allow_deletes(const sync_run *run)
{
	for (size_t i = 0; i < run->opts->nallow_deletes; i++) {
		const char *want = run->opts->allow_deletes[i];
		bool found = strcmp(want, "all") == 0;
		char name[1024];

		for (size_t j = 0; j < run->njobs && !found; j++)
			found = strcmp(af_scope_name(name, sizeof(name),
						     &af_job_report(run->jobs[j])->scope), want) == 0;
		if (!found)
			return af_error_set(AF_ERR_CONFIG,
					    "--allow-deletes %s: no such scope in this run (name one "
					    "as provider/account/region/product, as 'aifleet status' "
					    "lists them, or say 'all')",
					    want);
	}
	return 0;
}

/* Migrates, or for a dry run (which writes nothing, not even the schema)
 * insists that there is nothing to migrate. */
static int open_store(sync_run *run)
{
	const char *conninfo = run->opts->db_conninfo ? run->opts->db_conninfo
						      : run->cfg->db_conninfo;
	int pending = 0, err;

	if ((err = af_store_connect(&run->store, conninfo)) < 0)
		return err;
	if (!run->opts->dry_run)
		return af_store_migrate(run->store, NULL);
	if ((err = af_store_pending_migrations(run->store, &pending)) < 0)
		return err;
	if (pending > 0)
		return af_error_set(AF_ERR_CONFIG,
				    "the database schema is not up to date (%d migration(s) pending) "
				    "and a dry run writes nothing: run 'aifleet migrate' first",
				    pending);
	return 0;
}

/* The scopes another run holds are not collected: that run has them. */
static void skip_busy(sync_run *run)
{
	char name[1024];

	for (size_t i = 0; i < run->njobs; i++) {
		if (!run->busy[i])
			continue;
		af_job_skip(run->jobs[i], AF_ERR_LOCKED, "held by another run");
		af_warn("sync", "%s: another run holds the scope; it is not collected by this one",
			af_scope_name(name, sizeof(name), af_job_scope(run->jobs[i])));
	}
}

static int begin_loader(sync_run *run)
{
	const af_sync_options *opts = run->opts;
	af_run_options ro = {0};
	af_scope *scopes;
	char shard[32];
	int err;

	run->guard.max_fraction = run->cfg->max_delete_fraction;
	run->guard.min_deletes = (uint64_t)run->cfg->max_delete_min;
	run->guard.allow = opts->allow_deletes;
	run->guard.nallow = opts->nallow_deletes;
	ro.dry_run = opts->dry_run;
	ro.wait_for_lock = opts->wait_for_lock || run->cfg->wait_for_lock;
	ro.trigger = opts->trigger ? opts->trigger : "aifleet sync";
	ro.guard = &run->guard;
	if (!(scopes = calloc(run->njobs, sizeof(*scopes))))
		return af_error_oom();
	for (size_t i = 0; i < run->njobs; i++)
		scopes[i] = *af_job_scope(run->jobs[i]);
	ro.scopes = scopes;
	ro.nscopes = run->njobs;
	ro.busy = run->busy;
	if (opts->shard_count > 0) {
		snprintf(shard, sizeof(shard), "%u/%u", opts->shard_index, opts->shard_count);
		ro.shard = shard;
	}
	err = af_loader_begin(&run->loader, run->store, &ro);
	free(scopes);
	if (err < 0)
		return err;
	run->sink = af_loader_sink(run->loader);
	skip_busy(run);
	return 0;
}

static int prepare(sync_run *run)
{
	int err;

	if ((err = select_scopes(run)) < 0 || (err = configure_client(run)) < 0 ||
	    (err = load_all_credentials(run)) < 0 || (err = build_jobs(run)) < 0 ||
	    (err = check_allow_deletes(run)) < 0 || (err = open_store(run)) < 0)
		return err;
	return begin_loader(run);
}

/* ---- collect ------------------------------------------------------------ */

static void show_progress(sync_run *run, const af_job *job)
{
	size_t done = atomic_fetch_add(&run->done, 1) + 1;

	pthread_mutex_lock(&run->progress_lock);
	run->progress_items += af_job_report(job)->items;
	if (run->opts->progress)
		fprintf(stderr, "\r\033[Ksync: %zu/%zu scopes, %llu items", done, run->njobs,
			(unsigned long long)run->progress_items);
	pthread_mutex_unlock(&run->progress_lock);
}

static void *worker(void *arg)
{
	sync_run *run = arg;
	af_session *session = NULL;
	int err = 0;

	if (!run->opts->raw.replay_dir && (err = af_session_new(&session, run->client)) < 0)
		af_err("sync", "cannot create an HTTP session: %s", af_error_last());
	for (;;) {
		size_t i = atomic_fetch_add(&run->next, 1);

		if (i >= run->njobs)
			break;
		if (err < 0)
			af_job_skip(run->jobs[i], 0, "no HTTP session");
		else
			af_job_run(run->jobs[i], session);
		show_progress(run, run->jobs[i]);
	}
	af_session_free(session);
	return NULL;
}

static int collect(sync_run *run, af_sync_result *result)
{
	double started = af_clock_seconds();
	size_t want = (size_t)run->cfg->concurrency < run->njobs ? (size_t)run->cfg->concurrency
								  : run->njobs;

	if (af_threads_run(want, worker, run) == 0)
		return af_error_set(AF_ERR_GENERIC, "cannot start worker threads");
	if (run->opts->progress)
		fputc('\n', stderr);
	result->collect_seconds = af_clock_seconds() - started;
	return 0;
}

/* ---- report ------------------------------------------------------------- */

static void add_report(af_sync_result *result, const af_job *job)
{
	const af_scope_report *rep = af_job_report(job);
	double fetch, normalize;

	result->scopes++;
	result->items += rep->items;
	result->duplicates += rep->duplicates;
	result->rejected += rep->rejected;
	result->requests += rep->requests;
	result->retries += rep->retries;
	result->throttled += rep->throttled;
	af_job_times(job, &fetch, &normalize);
	result->fetch_seconds += fetch;
	result->normalize_seconds += normalize;
	if (af_job_error_class(job) == AF_ERR_AUTH)
		result->auth_failures++;
	else if (af_job_error_class(job) == AF_ERR_CONFIG)
		result->config_failures++;
}

static int report(sync_run *run, af_sync_result *result)
{
	int err;

	for (size_t i = 0; i < run->njobs; i++) {
		add_report(result, run->jobs[i]);
		if (run->busy[i]) {
			result->busy++;
			continue;
		}
		if ((err = af_loader_scope_done(run->loader, af_job_report(run->jobs[i]))) < 0)
			return err;
	}
	return 0;
}

/* ---- commit ------------------------------------------------------------- */

#define NENTITIES 3
static const char *const entity_names[NENTITIES] = {"instances", "services", "resources"};

static const af_entity_counts *entity_counts(const af_load_summary *load, size_t i)
{
	const af_entity_counts *c[NENTITIES] = {&load->instances, &load->services,
						&load->resources};

	return c[i];
}

static void print_scope_plan(FILE *out, af_loader *loader, const af_scope_report *rep)
{
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

static void print_plan(FILE *out, const sync_run *run, const af_sync_result *r)
{
	fprintf(out, "Dry run: nothing was written.\n\n");
	fprintf(out, "%-10s %-16s %-16s %-14s %-9s %7s %s\n", "provider", "account", "region",
		"product", "state", "items", "error");
	for (size_t i = 0; i < run->njobs; i++)
		print_scope_plan(out, run->loader, af_job_report(run->jobs[i]));
	fprintf(out, "\n%-10s %9s %9s %9s %9s %9s\n", "plan", "create", "update", "delete",
		"restore", "unchanged");
	for (size_t i = 0; i < NENTITIES; i++) {
		const af_entity_counts *c = entity_counts(&r->load, i);

		fprintf(out, "%-10s %9llu %9llu %9llu %9llu %9llu\n", entity_names[i],
			(unsigned long long)c->created, (unsigned long long)c->updated,
			(unsigned long long)c->deleted, (unsigned long long)c->restored,
			(unsigned long long)c->unchanged);
	}
}

static int commit(sync_run *run, af_sync_result *result)
{
	int err;

	if ((err = af_loader_commit(run->loader, &result->load)) < 0)
		return err;
	/* The loader has the last word on each scope. */
	result->complete = result->load.scopes_complete;
	result->partial = result->load.scopes_partial;
	result->failed = result->load.scopes_failed;
	result->held = result->load.scopes_held;
	if (run->opts->dry_run && run->opts->plan_out)
		print_plan(run->opts->plan_out, run, result);
	return 0;
}

/* ---- outcomes ----------------------------------------------------------- */

static int scope_cmp(const af_scope *a, const af_scope *b)
{
	int c;

	if ((c = strcmp(a->provider, b->provider)) != 0 ||
	    (c = strcmp(a->account, b->account)) != 0 || (c = strcmp(a->region, b->region)) != 0)
		return c;
	return strcmp(a->product, b->product);
}

static int outcome_cmp(const void *a, const void *b)
{
	return scope_cmp(&((const af_scope_outcome *)a)->scope,
			 &((const af_scope_outcome *)b)->scope);
}

/* What every job's report says, whether the run got as far as its commit
 * or not (a job that never ran reports nothing). */
static int gather_outcomes(const sync_run *run, af_sync_result *result)
{
	size_t n = 0;

	if (!run->jobs)
		return 0;
	if (!(result->outcomes = calloc(run->njobs, sizeof(*result->outcomes))))
		return af_error_oom();
	for (size_t i = 0; i < run->njobs; i++) {
		const af_scope_report *rep;
		af_scope_outcome *o;

		if (!run->jobs[i] || (run->busy && run->busy[i]))
			continue; /* busy: the other run reports it */
		rep = af_job_report(run->jobs[i]);
		o = &result->outcomes[n++];
		o->scope = rep->scope;
		o->state = "failed";
		o->items = rep->items;
		o->rejected = rep->rejected;
		o->requests = rep->requests;
		o->retries = rep->retries;
		o->throttled = rep->throttled;
		o->attempted_at = result->started_at;
	}
	result->noutcomes = n;
	qsort(result->outcomes, n, sizeof(*result->outcomes), outcome_cmp);
	return 0;
}

static const char *ledger_state(const char *state)
{
	static const char *const known[] = {"complete", "partial", "failed", "held"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(state, known[i]) == 0)
			return known[i];
	return "failed";
}

static int take_ledger_row(void *ctx, const af_ledger_row *row)
{
	af_sync_result *result = ctx;
	af_scope_outcome key = {.scope = row->scope}, *o;

	o = bsearch(&key, result->outcomes, result->noutcomes, sizeof(key), outcome_cmp);
	if (!o)
		return 0; /* a scope of another configuration, or of an earlier one */
	o->completed_at = row->last_complete_at;
	if (result->committed && row->last_run_id == result->load.run_id) {
		/* the loader's last word: rejected records, orphans, the guard */
		o->state = ledger_state(row->state);
		o->held_deletes = row->held_deletes;
		o->attempted_at = row->last_attempt_at;
	}
	return 0;
}

/* The ledger after the run: each scope's last complete collection (this
 * run's or an earlier one's) and, when the run committed, the state it
 * recorded. Without the database (it may be why the run failed) the
 * outcomes keep what the jobs said, and no time of completion. */
static void read_ledger(sync_run *run, af_sync_result *result)
{
	if (!run->store || run->opts->dry_run || result->noutcomes == 0)
		return;
	/* the run has told its own error; this one only thins the metrics */
	if (af_store_each_ledger_row(run->store, take_ledger_row, result) < 0)
		af_debug("sync", "cannot read the scope ledger for the run's metrics: %s",
			 af_error_last());
}

/* The outcomes, after the run and whatever its end; the run's own error,
 * if it failed, stays the one to tell. */
static void keep_outcomes(sync_run *run, af_sync_result *result, int err)
{
	char why[2048];

	snprintf(why, sizeof(why), "%s", af_error_last());
	if (gather_outcomes(run, result) < 0)
		af_warn("sync", "no per-scope outcomes for the run's metrics: %s", af_error_last());
	else
		read_ledger(run, result);
	if (err < 0)
		af_error_set(err, "%s", why);
}

void af_sync_result_free(af_sync_result *r)
{
	free(r->outcomes);
	r->outcomes = NULL;
	r->noutcomes = 0;
}

/* ---- the run ------------------------------------------------------------ */

static void run_free(sync_run *run)
{
	af_loader_free(run->loader);
	af_store_free(run->store);
	for (size_t i = 0; run->jobs && i < run->njobs; i++)
		af_job_free(run->jobs[i]);
	free(run->jobs);
	free(run->busy);
	for (size_t a = 0; run->creds && a < run->cfg->naccounts; a++)
		af_cred_provider_free(run->creds[a]);
	free(run->creds);
	free(run->refs);
	for (size_t a = 0; run->cred_error && a < run->cfg->naccounts; a++)
		free(run->cred_error[a]);
	free(run->cred_error);
	free(run->cred_state);
	af_session_pool_free(run->sessions);
	af_client_free(run->client);
	pthread_mutex_destroy(&run->out_lock);
	pthread_mutex_destroy(&run->progress_lock);
}

int af_sync_run(const af_config *cfg, const af_sync_options *opts, af_sync_result *result)
{
	double started = af_clock_seconds();
	sync_run run;
	int err;

	memset(result, 0, sizeof(*result));
	memset(&run, 0, sizeof(run));
	run.cfg = cfg;
	run.opts = opts;
	pthread_mutex_init(&run.out_lock, NULL);
	pthread_mutex_init(&run.progress_lock, NULL);

	result->started_at = af_clock_unix();
	if ((err = prepare(&run)) == 0 && (err = collect(&run, result)) == 0 &&
	    (err = report(&run, result)) == 0 && (err = commit(&run, result)) == 0)
		result->committed = !opts->dry_run;

	/* The loader rolls back what did not commit before the ledger is read
	 * on its connection. */
	af_loader_free(run.loader);
	run.loader = NULL;
	if (opts->outcomes)
		keep_outcomes(&run, result, err);
	result->seconds = af_clock_seconds() - started;
	run_free(&run);
	return err;
}

void af_sync_print_summary(FILE *out, const af_sync_result *r, bool dry_run)
{
	uint64_t created = 0, updated = 0, deleted = 0, restored = 0, unchanged = 0;
	const char *status;

	for (size_t i = 0; i < NENTITIES; i++) {
		const af_entity_counts *c = entity_counts(&r->load, i);

		created += c->created;
		updated += c->updated;
		deleted += c->deleted;
		restored += c->restored;
		unchanged += c->unchanged;
	}
	status = r->complete == r->scopes ? "ok" : r->complete + r->held > 0 ? "partial" : "failed";
	if (dry_run)
		fprintf(out, "sync: dry run %s: ", status);
	else
		fprintf(out, "sync: run %lld %s: ", (long long)r->load.run_id, status);
	fprintf(out,
		"%zu scopes (%zu complete, %zu skipped unchanged, %zu partial, "
		"%zu failed, %zu held, %zu busy), %llu items "
		"(%llu duplicates, %llu rejected); rows created %llu, updated %llu, deleted %llu, "
		"restored %llu, unchanged %llu; %llu history rows; %llu requests, %llu retries, "
		"%llu throttled; %.2f s (collect %.2f s [worker time: fetch %.2f s, "
		"normalize+copy %.2f s], merge %.2f s)\n",
		r->scopes, r->complete, r->load.scopes_skipped, r->partial, r->failed, r->held,
		r->busy,
		(unsigned long long)r->items,
		(unsigned long long)r->duplicates, (unsigned long long)r->rejected,
		(unsigned long long)created, (unsigned long long)updated,
		(unsigned long long)deleted, (unsigned long long)restored,
		(unsigned long long)unchanged, (unsigned long long)r->load.history_rows,
		(unsigned long long)r->requests, (unsigned long long)r->retries,
		(unsigned long long)r->throttled, r->seconds, r->collect_seconds,
		r->fetch_seconds, r->normalize_seconds, r->load.merge_seconds);
}
