#ifndef AIFLEET_CREDS_H
#define AIFLEET_CREDS_H

/*
 * Credentials for one account. They come from environment variables or
 * from the official CLIs' files, never from argv. af_credentials_clear()
 * wipes them (OPENSSL_cleanse) before freeing.
 */

typedef struct af_credentials {
	char *access_key_id;     /* Alibaba AccessKeyId / Tencent SecretId */
	char *access_key_secret; /* Alibaba AccessKeySecret / Tencent SecretKey */
	char *security_token;    /* STS / session token, or NULL */
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

/* Refuses a credentials or config file that group or others can read. */
int af_credentials_check_file_mode(const char *path);

void af_credentials_clear(af_credentials *c);

#endif
