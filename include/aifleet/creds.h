#ifndef AIFLEET_CREDS_H
#define AIFLEET_CREDS_H

/*
 * Credentials for one account. They come from environment variables or
 * from the official CLIs' files, never from argv. af_credentials_clear()
 * wipes them (OPENSSL_cleanse) before freeing.
 */

#include <stdbool.h>
#include <stdint.h>

struct af_session;

typedef struct af_credentials {
	char *access_key_id;     /* Alibaba AccessKeyId / Tencent SecretId */
	char *access_key_secret; /* Alibaba AccessKeySecret / Tencent SecretKey */
	char *security_token;    /* STS / session token, or NULL */
	int64_t expires_at;      /* Unix seconds when temporary ones expire; 0: never */
} af_credentials;

/* Reads the named variables; token_var may be NULL or name an unset variable.
 * Missing id or secret -> AF_ERR_CONFIG naming the variable (never its value). */
int af_credentials_from_env(af_credentials *out, const char *id_var, const char *secret_var,
			    const char *token_var);

/* ~/.aliyun/config.json, modes AK and StsToken. path NULL -> default
 * ($ALIBABA_CLOUD_CONFIG_FILE or ~/.aliyun/config.json); profile NULL -> the
 * file's "current". */
int af_credentials_from_aliyun_cli(af_credentials *out, const char *path, const char *profile);

/* ~/.tencentcloud/credentials INI ([profile] secret_id, secret_key, token).
 * path NULL -> $TENCENTCLOUD_CREDENTIALS_FILE or the default; profile NULL -> default. */
int af_credentials_from_tencent_file(af_credentials *out, const char *path, const char *profile);

/* ~/.alibabacloud/credentials INI ([profile] type = access_key,
 * access_key_id, access_key_secret). path NULL -> $ALIBABA_CLOUD_CREDENTIALS_FILE
 * or the default; profile NULL -> $ALIBABA_CLOUD_PROFILE or "default". The
 * role types (ecs_ram_role, ram_role_arn) are refused: they need STS or the
 * metadata service. */
int af_credentials_from_alibabacloud_file(af_credentials *out, const char *path,
					  const char *profile);

/* The instance metadata service: where it is (NULL: the vendor's address,
 * http://100.100.100.200 or http://metadata.tencentyun.com), and the role
 * (NULL: $ALIBABA_CLOUD_ECS_METADATA on ECS, else the one the service
 * lists). */
typedef struct af_metadata_options {
	const char *endpoint;
	const char *role;
} af_metadata_options;

/* The ECS instance's RAM role: IMDSv2 (PUT /latest/api/token, then the
 * token on every call), falling back to IMDSv1 unless
 * $ALIBABA_CLOUD_IMDSV1_DISABLED is "true"; then
 * /latest/meta-data/ram/security-credentials/<role>. */
int af_credentials_from_ecs_ram_role(af_credentials *out, struct af_session *s,
				     const af_metadata_options *o);

/* The CVM instance's CAM role:
 * /latest/meta-data/cam/security-credentials/<role>. */
int af_credentials_from_cvm_role(af_credentials *out, struct af_session *s,
				 const af_metadata_options *o);

/* STS AssumeRole: the role, and how to ask for it. */
typedef struct af_assume_role {
	const char *role_arn;     /* acs:ram::<uid>:role/<name> or qcs::cam::uin/<uin>:roleName/<name> */
	const char *session_name; /* NULL: "aifleet" */
	const char *external_id;  /* NULL: none */
	const char *policy;       /* a policy (JSON) narrowing the role, or NULL */
	int duration_seconds;     /* 0: 3600 */
	const char *endpoint;     /* NULL: https://sts.aliyuncs.com, https://sts.tencentcloudapi.com */
	const char *region;       /* Tencent's X-TC-Region; NULL: ap-guangzhou */
	const char *account;      /* the account label, for messages and the rate limit */
} af_assume_role;

/* The role's temporary credentials, asked for with `base` (signed): the
 * provider's (AF_PROVIDER_*) STS AssumeRole. Errors name the role ARN and
 * the STS answer (code, request id), never a value. */
int af_credentials_assume_role(af_credentials *out, struct af_session *s, const char *provider,
			       const af_credentials *base, const af_assume_role *r);

/* A role assumed with an OIDC token (Alibaba RRSA: AssumeRoleWithOIDC;
 * Tencent TKE: AssumeRoleWithWebIdentity). Neither call is signed. */
typedef struct af_oidc_role {
	const char *role_arn;
	const char *provider;     /* Alibaba OIDCProviderArn, Tencent ProviderId */
	const char *token_file;   /* read on every call: the platform rotates it */
	const char *session_name; /* NULL: "aifleet" */
	int duration_seconds;     /* 0: 3600 */
	const char *endpoint;     /* NULL: the vendor's STS, regional when `region` is set (Alibaba) */
	const char *region;       /* Alibaba: the STS region; Tencent: X-TC-Region */
	bool vpc;                 /* Alibaba: the sts-vpc endpoint of the region */
	const char *account;
} af_oidc_role;

/* The role's temporary credentials for the token in r->token_file. Errors
 * name the role and the STS answer, never the token. */
int af_credentials_assume_role_oidc(af_credentials *out, struct af_session *s,
				    const char *provider, const af_oidc_role *r);

/* A copy of `in` (all three values and the expiry). */
int af_credentials_copy(af_credentials *out, const af_credentials *in);

/*
 * An account's credentials for a whole run, shared by its scope workers:
 * temporary ones are fetched again (with `fetch`) when 180 s or less
 * remain, and once more when an answer says the token expired. NULL
 * `fetch`: static credentials. Thread-safe.
 */
typedef struct af_cred_provider af_cred_provider;
typedef int (*af_cred_fetch)(void *ctx, struct af_session *s, af_credentials *out);

/* Takes ownership of *initial (left zeroed); `label` names the account in
 * the log and must outlive the provider. */
int af_cred_provider_new(af_cred_provider **out, af_credentials *initial, af_cred_fetch fetch,
			 void *ctx, const char *label);
void af_cred_provider_free(af_cred_provider *p);

/* A copy valid now (renewed first when near expiry), for one request;
 * af_credentials_clear it. `s` is the session a renewal goes out on. */
int af_cred_provider_get(af_cred_provider *p, struct af_session *s, af_credentials *out);

/* An answer refused `used` as expired: renew, unless another worker
 * already did. AF_ERR_AUTH for credentials that cannot be renewed. */
int af_cred_provider_expired(af_cred_provider *p, struct af_session *s,
			     const af_credentials *used);

/* How many times the credentials were renewed. */
unsigned af_cred_provider_refreshes(af_cred_provider *p);

/* True for the error codes that mean "your temporary token expired". */
bool af_credentials_expired_code(const char *code);

/* A local credentials server (ALIBABA_CLOUD_CREDENTIALS_URI): GET `uri`,
 * an answer like the ECS role document (Code, AccessKeyId,
 * AccessKeySecret, SecurityToken, Expiration). */
int af_credentials_from_uri(af_credentials *out, struct af_session *s, const char *uri);

/* Where the default chains look; members may be NULL (defaults). */
typedef struct af_chain_options {
	const char *profile;             /* the account's profile, NULL: the files' rules */
	const char *tencent_system_file; /* NULL: /etc/tencentcloud/credentials */
	struct af_session *session;      /* for the metadata and OIDC steps; NULL: they fail */
	af_metadata_options metadata;
	const char *sts_endpoint;        /* the OIDC steps' STS; NULL: the vendor's */
} af_chain_options;

/* The OIDC role the platform describes in the environment: Alibaba RRSA
 * (ALIBABA_CLOUD_ROLE_ARN, _OIDC_PROVIDER_ARN, _OIDC_TOKEN_FILE, optional
 * _ROLE_SESSION_NAME, _STS_REGION, _VPC_ENDPOINT_ENABLED) or Tencent TKE
 * (TKE_ROLE_ARN, TKE_PROVIDER_ID, TKE_WEB_IDENTITY_TOKEN_FILE, TKE_REGION).
 * sts_endpoint NULL: the vendor's. */
int af_credentials_from_oidc_env(af_credentials *out, struct af_session *s, const char *provider,
				 const char *sts_endpoint);

/*
 * The provider's (AF_PROVIDER_*) default credential chain, in the official
 * SDKs' order (docs/credentials.md). A step is skipped only when it is not
 * configured (variables unset, file absent); the first configured step
 * decides, with its credentials or its error. On success *step names the
 * step used, for the log (never a value). AF_ERR_CONFIG names the step that
 * failed, or, when none was configured, what each one lacked. The instance
 * role and credentials URI steps ask their servers, and the OIDC steps
 * STS, through opts->session.
 */
int af_credentials_default(af_credentials *out, const char *provider,
			   const af_chain_options *opts, const char **step);

/* What `aifleet check-config` asks of the chain: the step it would take,
 * without asking any server. A local step (environment, files) loads its
 * credentials, so that a wrong profile or file mode fails here, and wipes
 * them; a step that asks a server (instance metadata, a URI, STS for
 * OIDC) is only named, with *remote set. Errors as af_credentials_default. */
int af_credentials_default_check(const char *provider, const af_chain_options *opts,
				 const char **step, bool *remote);

/* Refuses a credentials or config file that group or others can read. */
int af_credentials_check_file_mode(const char *path);

void af_credentials_clear(af_credentials *c);

#endif
