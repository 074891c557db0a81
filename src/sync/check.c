/*
 * `aifleet check-config`: what a deploy pipeline asks of a configuration
 * before it ships it, without touching a cloud or the database. The file
 * was parsed and validated by af_config_load(); this resolves every
 * account's credential source as far as it can be resolved here, and
 * lists the scopes a run would collect, with their endpoints.
 *
 * Nothing that asks a server is called: not STS (roles, OIDC), not the
 * instance metadata service, not a credentials URI. Those sources are
 * checked as far as their local part goes (the variables and token file
 * OIDC needs) and reported as asked at run time. Local sources --
 * environment variables, the CLIs' files -- are loaded, so that a missing
 * variable, a wrong profile or a file others can read fails here, and
 * the credentials are wiped at once.
 */
#include "aifleet/sync.h"
#include "aifleet/error.h"
#include "sync_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum verdict {
	VERDICT_OK,         /* credentials loaded here */
	VERDICT_AT_RUN,     /* a server is asked at run time; the local part is fine */
	VERDICT_FAILED,
} verdict;

static const char *const verdict_names[] = {"ok", "at run time", "FAILED"};

/* Each variable of the NULL-terminated list is set, and the file the
 * last one names (a token file) readable. */
static verdict check_oidc_env(const char *const *vars, char *what, size_t n)
{
	const char *token = NULL;

	for (size_t i = 0; vars[i]; i++) {
		const char *v = getenv(vars[i]);

		if (!v || !*v) {
			snprintf(what, n, "%s is not set", vars[i]);
			return VERDICT_FAILED;
		}
		token = v;
	}
	if (access(token, R_OK) != 0) {
		snprintf(what, n, "the token file %s cannot be read", token);
		return VERDICT_FAILED;
	}
	snprintf(what, n, "token file readable; STS is asked at run time");
	return VERDICT_AT_RUN;
}

static verdict check_source(const af_account_config *a, char *what, size_t n)
{
	static const char *const rrsa[] = {"ALIBABA_CLOUD_ROLE_ARN",
					   "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
					   "ALIBABA_CLOUD_OIDC_TOKEN_FILE", NULL};
	static const char *const tke[] = {"TKE_ROLE_ARN", "TKE_PROVIDER_ID", "TKE_REGION",
					  "TKE_WEB_IDENTITY_TOKEN_FILE", NULL};
	af_chain_options chain = {.profile = a->profile};
	af_credentials creds;
	const char *step = NULL;
	bool remote = false;

	switch (a->cred_source) {
	case AF_CRED_DEFAULT:
		if (af_credentials_default_check(a->provider, &chain, &step, &remote) < 0)
			break;
		snprintf(what, n, "default chain: %s%s", step,
			 remote ? ", asked at run time" : ", loaded");
		return remote ? VERDICT_AT_RUN : VERDICT_OK;
	case AF_CRED_ECS_RAM_ROLE:
	case AF_CRED_CVM_ROLE:
		snprintf(what, n, "the instance's role, from the metadata service at run time");
		return VERDICT_AT_RUN;
	case AF_CRED_OIDC:
		return check_oidc_env(rrsa, what, n);
	case AF_CRED_TKE_OIDC:
		return check_oidc_env(tke, what, n);
	case AF_CRED_URI:
		if (!a->credentials_uri && !getenv("ALIBABA_CLOUD_CREDENTIALS_URI")) {
			snprintf(what, n, "no credentials_uri, and ALIBABA_CLOUD_CREDENTIALS_URI is "
					  "not set");
			return VERDICT_FAILED;
		}
		snprintf(what, n, "the credentials URI is asked at run time");
		return VERDICT_AT_RUN;
	default: /* the environment and the CLIs' files: local, so loaded */
		if (af_sync_load_credentials(&creds, a, NULL) < 0)
			break;
		af_credentials_clear(&creds);
		snprintf(what, n, "loaded");
		return VERDICT_OK;
	}
	snprintf(what, n, "%s", af_error_last());
	return VERDICT_FAILED;
}

/* An account's verdict: its source's, then the role it assumes with its
 * own or its source account's credentials (the config refused loops). */
static verdict check_account(const af_config *cfg, const af_account_config *a, char *what,
			     size_t n)
{
	char inner[1024];
	verdict v;

	if (a->source) {
		v = check_account(cfg, af_config_account(cfg, a->source), inner, sizeof(inner));
		if (v == VERDICT_FAILED) {
			snprintf(what, n, "its source %s: %s", a->source, inner);
			return v;
		}
	} else {
		v = check_source(a, inner, sizeof(inner));
		if (v == VERDICT_FAILED || !a->role_arn) {
			snprintf(what, n, "%s: %s", af_cred_source_name(a->cred_source), inner);
			return v;
		}
	}
	snprintf(what, n, "assumes %s with the credentials of %s (%s); STS is asked at run time",
		 a->role_arn, a->source ? a->source : af_cred_source_name(a->cred_source),
		 a->source ? verdict_names[v] : inner);
	return VERDICT_AT_RUN;
}

static size_t print_scopes(const af_config *cfg, const af_sync_options *opts, FILE *out,
			   int *err)
{
	char endpoint[512], name[1024];
	size_t n = 0;

	fprintf(out, "\nScopes a run would collect:\n");
	for (size_t a = 0; a < cfg->naccounts; a++) {
		const af_account_config *acct = &cfg->accounts[a];

		for (size_t p = 0; p < af_product_count(); p++) {
			for (size_t r = 0; r < acct->nregions; r++) {
				af_scope scope = {acct->provider, acct->name, acct->regions[r],
						  af_product_at(p)->name};

				if (!af_sync_scope_wanted(opts, acct, p, r))
					continue;
				if (af_sync_endpoint(endpoint, sizeof(endpoint), acct, p,
						     acct->regions[r]) < 0) {
					snprintf(endpoint, sizeof(endpoint), "FAILED: %s",
						 af_error_last());
					*err = AF_ERR_CONFIG;
				}
				fprintf(out, "  %-56s %s\n", af_scope_name(name, sizeof(name), &scope),
					endpoint);
				n++;
			}
		}
	}
	if (n == 0)
		fprintf(out, "  (none)\n");
	return n;
}

/* Does the selection take a scope of account `a`, or of an account whose
 * source it is (a sync would then read its keys)? */
static bool account_used(const af_config *cfg, const af_sync_options *opts,
			 const af_account_config *a, int depth)
{
	if (af_sync_account_wanted(opts, a))
		return true;
	if (depth > AF_CONFIG_MAX_ROLE_HOPS)
		return false;
	for (size_t m = 0; m < cfg->naccounts; m++)
		if (cfg->accounts[m].source && strcmp(cfg->accounts[m].source, a->name) == 0 &&
		    account_used(cfg, opts, &cfg->accounts[m], depth + 1))
			return true;
	return false;
}

int af_sync_check_config(const af_config *cfg, const af_sync_options *opts, FILE *out)
{
	size_t counts[3] = {0}, scopes, used = 0;
	char what[2048];
	int err;

	if ((err = af_sync_check_selection(cfg, opts)) < 0)
		return err;
	fprintf(out, "Configuration %s: parsed, %zu account(s)\n\nAccounts:\n",
		cfg->path ? cfg->path : "(none)", cfg->naccounts);
	/* what --only, --account and --shard leave out is not asked for */
	for (size_t a = 0; a < cfg->naccounts; a++) {
		const af_account_config *acct = &cfg->accounts[a];
		verdict v;

		if (!account_used(cfg, opts, acct, 0))
			continue;
		used++;
		v = check_account(cfg, acct, what, sizeof(what));
		counts[v]++;
		fprintf(out, "  %-20s %-8s %-12s %s%s\n", acct->name, acct->provider,
			verdict_names[v], what, acct->nregions ? "" : " (no regions: a source only)");
	}
	if (used == 0)
		fprintf(out, "  (none)\n");
	scopes = print_scopes(cfg, opts, out, &err);
	fprintf(out,
		"\ncheck-config: %zu account(s): %zu ok, %zu asked at run time, %zu failed; "
		"%zu scope(s)\n",
		used, counts[VERDICT_OK], counts[VERDICT_AT_RUN], counts[VERDICT_FAILED], scopes);
	if (counts[VERDICT_FAILED])
		return af_error_set(AF_ERR_CONFIG, "check-config: the credentials of %zu account(s) "
						   "cannot be had (listed above)",
				    counts[VERDICT_FAILED]);
	if (err < 0)
		return af_error_set(err, "check-config: a scope has no usable endpoint (listed "
					 "above)");
	if (scopes == 0)
		return af_error_set(AF_ERR_CONFIG, "check-config: nothing to collect");
	return 0;
}
