/*
 * The vendors' default credential chains (docs/credentials.md), in the
 * order of the official SDKs (Alibaba: credentials-go's default provider;
 * Tencent: tencentcloud-sdk-python's DefaultCredentialProvider).
 *
 * A step is skipped only when it is not configured: its variables unset,
 * its file absent. The first configured step decides: its credentials, or
 * its error. The SDKs go on past a step that fails; aifleet does not, so
 * that a broken profile never silently hands the run to another identity
 * (an instance role with other rights, say).
 */
#include "aifleet/creds.h"
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/record.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TENCENT_SYSTEM_FILE "/etc/tencentcloud/credentials"

typedef struct chain_step {
	const char *name; /* for the log and messages: never a value */
	/* true when configured; else *why says what was missing. `path`
	 * receives the file a file step found. */
	bool (*configured)(const af_chain_options *o, char *path, size_t n, char *why,
			   size_t nwhy);
	int (*load)(af_credentials *out, const af_chain_options *o, const char *path);
	bool remote; /* load asks a server: the metadata service, a URI, STS */
} chain_step;

static bool set(const char *var)
{
	const char *v = getenv(var);

	return v && v[0];
}

static bool is_true(const char *var)
{
	const char *v = getenv(var);

	return v && strcmp(v, "true") == 0;
}

/* A file step's file: the variable's value when set (then it must exist:
 * somebody asked for it), else `rel` under HOME when it exists. */
static bool find_file(const char *var, const char *rel, char *path, size_t n, char *why,
		      size_t nwhy)
{
	const char *home = getenv("HOME");

	if (set(var)) {
		snprintf(path, n, "%s", getenv(var));
		return true;
	}
	if (!home || !home[0]) {
		snprintf(why, nwhy, "neither %s nor HOME is set", var);
		return false;
	}
	snprintf(path, n, "%s/%s", home, rel);
	if (access(path, F_OK) == 0)
		return true;
	snprintf(why, nwhy, "no %s", path);
	return false;
}

static int no_session(void)
{
	return af_error_set(AF_ERR_CONFIG, "the instance metadata service cannot be asked here "
			    "(no network session)");
}

static int oidc_load(af_credentials *out, const af_chain_options *o, const char *path)
{
	return o->session ? af_credentials_from_oidc_env(out, o->session, AF_PROVIDER_ALIBABA,
							   o->sts_endpoint)
			  : no_session();
}

static int tke_load(af_credentials *out, const af_chain_options *o, const char *path)
{
	return o->session ? af_credentials_from_oidc_env(out, o->session, AF_PROVIDER_TENCENT,
							   o->sts_endpoint)
			  : no_session();
}

static int uri_load(af_credentials *out, const af_chain_options *o, const char *path)
{
	return o->session ? af_credentials_from_uri(out, o->session,
						    getenv("ALIBABA_CLOUD_CREDENTIALS_URI"))
			  : no_session();
}

static int ecs_load(af_credentials *out, const af_chain_options *o, const char *path)
{
	return o->session ? af_credentials_from_ecs_ram_role(out, o->session, &o->metadata)
			  : no_session();
}

static int cvm_load(af_credentials *out, const af_chain_options *o, const char *path)
{
	return o->session ? af_credentials_from_cvm_role(out, o->session, &o->metadata)
			  : no_session();
}

/* ---- Alibaba Cloud ------------------------------------------------------- */

static bool ali_env_configured(const af_chain_options *o, char *path, size_t n, char *why,
			       size_t nwhy)
{
	if (set("ALIBABA_CLOUD_ACCESS_KEY_ID"))
		return true;
	snprintf(why, nwhy, "ALIBABA_CLOUD_ACCESS_KEY_ID is not set");
	return false;
}

static int ali_env_load(af_credentials *out, const af_chain_options *o, const char *path)
{
	return af_credentials_from_env(out, "ALIBABA_CLOUD_ACCESS_KEY_ID",
				       "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
				       "ALIBABA_CLOUD_SECURITY_TOKEN");
}

static bool ali_oidc_configured(const af_chain_options *o, char *path, size_t n, char *why,
				size_t nwhy)
{
	if (set("ALIBABA_CLOUD_OIDC_TOKEN_FILE") && set("ALIBABA_CLOUD_OIDC_PROVIDER_ARN") &&
	    set("ALIBABA_CLOUD_ROLE_ARN"))
		return true;
	snprintf(why, nwhy, "ALIBABA_CLOUD_OIDC_TOKEN_FILE, _OIDC_PROVIDER_ARN and _ROLE_ARN are "
		 "not all set");
	return false;
}

static bool ali_cli_configured(const af_chain_options *o, char *path, size_t n, char *why,
			       size_t nwhy)
{
	if (is_true("ALIBABA_CLOUD_CLI_PROFILE_DISABLED")) {
		snprintf(why, nwhy, "ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true");
		return false;
	}
	return find_file("ALIBABA_CLOUD_CONFIG_FILE", ".aliyun/config.json", path, n, why, nwhy);
}

static int ali_cli_load(af_credentials *out, const af_chain_options *o, const char *path)
{
	return af_credentials_from_aliyun_cli(out, path, o->profile);
}

static bool ali_file_configured(const af_chain_options *o, char *path, size_t n, char *why,
				size_t nwhy)
{
	return find_file("ALIBABA_CLOUD_CREDENTIALS_FILE", ".alibabacloud/credentials", path, n,
			 why, nwhy);
}

static int ali_file_load(af_credentials *out, const af_chain_options *o, const char *path)
{
	return af_credentials_from_alibabacloud_file(out, path, o->profile);
}

static bool ali_ecs_configured(const af_chain_options *o, char *path, size_t n, char *why,
			       size_t nwhy)
{
	if (!is_true("ALIBABA_CLOUD_ECS_METADATA_DISABLED"))
		return true; /* the SDK always asks the metadata service */
	snprintf(why, nwhy, "ALIBABA_CLOUD_ECS_METADATA_DISABLED=true");
	return false;
}

static bool ali_uri_configured(const af_chain_options *o, char *path, size_t n, char *why,
			       size_t nwhy)
{
	if (set("ALIBABA_CLOUD_CREDENTIALS_URI"))
		return true;
	snprintf(why, nwhy, "ALIBABA_CLOUD_CREDENTIALS_URI is not set");
	return false;
}

static const chain_step alibaba_chain[] = {
	{"environment (ALIBABA_CLOUD_ACCESS_KEY_ID)", ali_env_configured, ali_env_load, false},
	{"OIDC role (ALIBABA_CLOUD_OIDC_TOKEN_FILE)", ali_oidc_configured, oidc_load, true},
	{"Alibaba Cloud CLI profile (~/.aliyun/config.json)", ali_cli_configured, ali_cli_load, false},
	{"credentials file (~/.alibabacloud/credentials)", ali_file_configured, ali_file_load, false},
	{"ECS RAM role (instance metadata)", ali_ecs_configured, ecs_load, true},
	{"credentials URI (ALIBABA_CLOUD_CREDENTIALS_URI)", ali_uri_configured, uri_load, true},
};

/* ---- Tencent Cloud ------------------------------------------------------- */

static bool tc_env_configured(const af_chain_options *o, char *path, size_t n, char *why,
			      size_t nwhy)
{
	if (set("TENCENTCLOUD_SECRET_ID"))
		return true;
	snprintf(why, nwhy, "TENCENTCLOUD_SECRET_ID is not set");
	return false;
}

static int tc_env_load(af_credentials *out, const af_chain_options *o, const char *path)
{
	return af_credentials_from_env(out, "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY",
				       "TENCENTCLOUD_SESSION_TOKEN");
}

/* ~/.tencentcloud/credentials, else the system-wide file. */
static bool tc_file_configured(const af_chain_options *o, char *path, size_t n, char *why,
			       size_t nwhy)
{
	const char *system = o->tencent_system_file ? o->tencent_system_file
						    : TENCENT_SYSTEM_FILE;
	size_t used;

	if (find_file("TENCENTCLOUD_CREDENTIALS_FILE", ".tencentcloud/credentials", path, n, why,
		      nwhy))
		return true;
	if (access(system, F_OK) == 0) {
		snprintf(path, n, "%s", system);
		return true;
	}
	used = strlen(why);
	snprintf(why + used, nwhy - used, ", no %s", system);
	return false;
}

static int tc_file_load(af_credentials *out, const af_chain_options *o, const char *path)
{
	return af_credentials_from_tencent_file(out, path, o->profile);
}

static bool always(const af_chain_options *o, char *path, size_t n, char *why, size_t nwhy)
{
	return true;
}

static bool tke_configured(const af_chain_options *o, char *path, size_t n, char *why,
			   size_t nwhy)
{
	if (set("TKE_REGION") && set("TKE_PROVIDER_ID") && set("TKE_WEB_IDENTITY_TOKEN_FILE") &&
	    set("TKE_ROLE_ARN"))
		return true;
	snprintf(why, nwhy, "TKE_REGION, TKE_PROVIDER_ID, TKE_WEB_IDENTITY_TOKEN_FILE and "
		 "TKE_ROLE_ARN are not all set");
	return false;
}

static const chain_step tencent_chain[] = {
	{"environment (TENCENTCLOUD_SECRET_ID)", tc_env_configured, tc_env_load, false},
	{"credentials file (~/.tencentcloud/credentials)", tc_file_configured, tc_file_load, false},
	{"CVM role (instance metadata)", always, cvm_load, true},
	{"TKE OIDC (TKE_WEB_IDENTITY_TOKEN_FILE)", tke_configured, tke_load, true},
};

/* ---- the chain ----------------------------------------------------------- */

/* The first configured step of the provider's chain decides: it loads
 * (or, with !load_remote, a step that asks a server is only named). */
static int walk_chain(af_credentials *out, const char *provider, const af_chain_options *opts,
		      bool load_remote, const char **step, bool *remote)
{
	static const af_chain_options none = {0};
	const af_chain_options *o = opts ? opts : &none;
	bool ali = provider && strcmp(provider, AF_PROVIDER_ALIBABA) == 0;
	const chain_step *chain = ali ? alibaba_chain : tencent_chain;
	size_t n = ali ? sizeof(alibaba_chain) / sizeof(alibaba_chain[0])
		       : sizeof(tencent_chain) / sizeof(tencent_chain[0]);
	char skipped[1024] = "", path[4096], why[512];
	int err;

	memset(out, 0, sizeof(*out));
	*step = NULL;
	*remote = false;
	for (size_t i = 0; i < n; i++) {
		size_t used = strlen(skipped);

		why[0] = path[0] = '\0';
		if (!chain[i].configured(o, path, sizeof(path), why, sizeof(why))) {
			snprintf(skipped + used, sizeof(skipped) - used, "%s%s: %s", used ? "; " : "",
				 chain[i].name, why);
			continue;
		}
		*remote = chain[i].remote;
		if ((!chain[i].remote || load_remote) && (err = chain[i].load(out, o, path)) < 0)
			return af_error_prefix(err, "default credentials, step %s: ", chain[i].name);
		*step = chain[i].name;
		return 0;
	}
	return af_error_set(AF_ERR_CONFIG, "default credentials: no step is configured (%s)",
			    skipped);
}

int af_credentials_default(af_credentials *out, const char *provider,
			   const af_chain_options *opts, const char **step)
{
	bool remote;

	return walk_chain(out, provider, opts, true, step, &remote);
}

int af_credentials_default_check(const char *provider, const af_chain_options *opts,
				 const char **step, bool *remote)
{
	af_credentials creds;
	int err = walk_chain(&creds, provider, opts, false, step, remote);

	af_credentials_clear(&creds);
	return err;
}

int af_credentials_from_oidc_env(af_credentials *out, struct af_session *s, const char *provider,
				 const char *sts_endpoint)
{
	bool ali = provider && strcmp(provider, AF_PROVIDER_ALIBABA) == 0;
	af_oidc_role r = {.endpoint = sts_endpoint, .account = "(oidc)"};

	if (ali) {
		r.role_arn = getenv("ALIBABA_CLOUD_ROLE_ARN");
		r.provider = getenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN");
		r.token_file = getenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE");
		r.session_name = set("ALIBABA_CLOUD_ROLE_SESSION_NAME")
					 ? getenv("ALIBABA_CLOUD_ROLE_SESSION_NAME")
					 : NULL;
		r.region = set("ALIBABA_CLOUD_STS_REGION") ? getenv("ALIBABA_CLOUD_STS_REGION") : NULL;
		r.vpc = is_true("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED");
	} else {
		r.role_arn = getenv("TKE_ROLE_ARN");
		r.provider = getenv("TKE_PROVIDER_ID");
		r.token_file = getenv("TKE_WEB_IDENTITY_TOKEN_FILE");
		r.region = getenv("TKE_REGION");
	}
	if (!r.role_arn || !*r.role_arn || !r.provider || !*r.provider || !r.token_file ||
	    !*r.token_file)
		return af_error_set(AF_ERR_CONFIG, "OIDC: %s are not all set",
				    ali ? "ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN "
					  "and ALIBABA_CLOUD_OIDC_TOKEN_FILE"
					: "TKE_ROLE_ARN, TKE_PROVIDER_ID and TKE_WEB_IDENTITY_TOKEN_FILE");
	return af_credentials_assume_role_oidc(out, s, provider, &r);
}
