#ifndef AIFLEET_CONFIG_H
#define AIFLEET_CONFIG_H

/*
 * The INI configuration (inih). deploy/aifleet.example.ini documents every
 * key. Nothing secret lives here: accounts say *where* their credentials
 * are (environment variables or the official CLIs' files), not what they are.
 */

#include <stdbool.h>
#include <stddef.h>

#include "aifleet/product.h"

#define AF_CONFIG_MAX_REGIONS 32

typedef enum af_cred_source {
	AF_CRED_ENV = 0,        /* environment variables (names configurable) */
	AF_CRED_ALIYUN_CLI = 1, /* ~/.aliyun/config.json profile */
	AF_CRED_TENCENT_FILE = 2, /* ~/.tencentcloud/credentials profile */
	AF_CRED_ALIBABACLOUD_FILE = 3, /* ~/.alibabacloud/credentials profile */
	AF_CRED_DEFAULT = 4,    /* the vendor's default chain (docs/credentials.md) */
	AF_CRED_ECS_RAM_ROLE = 5, /* the ECS instance's RAM role (metadata service) */
	AF_CRED_CVM_ROLE = 6,   /* the CVM instance's CAM role (metadata service) */
	AF_CRED_OIDC = 7,       /* Alibaba RRSA: AssumeRoleWithOIDC, from the environment */
	AF_CRED_TKE_OIDC = 8,   /* Tencent TKE: AssumeRoleWithWebIdentity, from the environment */
	AF_CRED_URI = 9,        /* a local credentials server (credentials_uri) */
} af_cred_source;

/* Per product settings inside an account. */
typedef struct af_product_config {
	bool enabled;
	char *endpoint;    /* override, may contain {region}; NULL = default */
	double rate_limit; /* requests per second; 0 = default */
	double burst;      /* token bucket size; 0 = default */
	int page_size;     /* 0 = product default */
} af_product_config;

typedef struct af_account_config {
	char *name;     /* label used in logs, the database and messages */
	char *provider; /* AF_PROVIDER_* */
	af_cred_source cred_source;
	char *id_env;     /* names of environment variables, never values */
	char *secret_env;
	char *token_env;
	char *cred_file;  /* NULL = the CLI's default path */
	char *profile;    /* NULL = the CLI's default profile */
	char *role_name;  /* instance role; NULL = the one the metadata service lists */
	char *metadata_endpoint; /* NULL = the vendor's metadata address */
	char *credentials_uri;   /* credentials-uri; NULL = $ALIBABA_CLOUD_CREDENTIALS_URI */
	/* AssumeRole: the credentials above (or those of the account named by
	 * `source`) ask STS for this role's; docs/credentials.md. */
	char *role_arn;
	char *role_session_name; /* NULL = "aifleet" */
	char *external_id;
	char *policy;
	int duration_seconds;    /* 0 = 3600 */
	char *source;            /* label of the account whose credentials assume the role */
	char *sts_endpoint;      /* NULL = the vendor's STS */
	bool intl;        /* Tencent: use the international endpoint */
	char *regions[AF_CONFIG_MAX_REGIONS];
	size_t nregions;
	/* Per product, at the product's registry index (af_product_index). */
	af_product_config products[AF_PRODUCTS_MAX];
} af_account_config;

typedef struct af_config {
	char *path;          /* file it came from, or NULL */
	char *db_conninfo;   /* NULL = libpq defaults (PG* environment) */
	bool wait_for_lock;
	char *history_retention; /* aifleet prune's default --older-than; NULL = none */
	int concurrency;     /* scopes collected at once; default 4 */
	int detail_concurrency; /* Hologres GetInstanceModel calls in flight per scope; default 4 */
	int max_attempts;
	int retry_budget;
	long connect_timeout_ms;
	long timeout_ms;
	long max_response_mb;
	char *ca_bundle;
	char *metrics_file;  /* Prometheus textfile written after every run; NULL = none */
	int max_pages;       /* guard against paging that never ends; default 10000 */
	/* Mass-delete guard: the share of a scope's live items one run may
	 * delete, in (0, 1]; default 0.5 */
	double max_delete_fraction;
	int max_delete_min;  /* deleting this many items or fewer is never refused; default 10 */
	af_account_config *accounts;
	size_t naccounts;
} af_config;

/* The longest chain of `source` accounts one role may hang off. */
#define AF_CONFIG_MAX_ROLE_HOPS 3

/* Defaults only (no accounts). */
void af_config_init(af_config *cfg);

/* Parses and validates an INI file; errors (AF_ERR_CONFIG) name the file,
 * line and key. A file that group or others may write is refused, and so
 * are an [account] defined twice and a key given twice in one section
 * (or in two [sync] or [database] sections). */
int af_config_load(af_config *cfg, const char *path);

void af_config_free(af_config *cfg);

/* The source's name in the file ("env", "aliyun-cli", ...). */
const char *af_cred_source_name(af_cred_source source);

/* The account with this label, or NULL. */
const af_account_config *af_config_account(const af_config *cfg, const char *label);

/* The account's settings of a product, by name; NULL for a product the
 * registry does not know. */
af_product_config *af_account_product(af_account_config *a, const char *product);
const af_product_config *af_account_product_const(const af_account_config *a,
						  const char *product);

#endif
