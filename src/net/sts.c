/*
 * STS AssumeRole: temporary credentials of a role, asked for with other
 * credentials (a central identity reading member accounts). Alibaba:
 * sts 2015-04-01, RPC, ACS3-signed; Tencent: sts 2018-08-13, API 3.0,
 * TC3-signed. Through the same transport as the inventory calls, so
 * signed, retried and redacted alike; the answer's secrets are copied out
 * and the parsed answer freed.
 */
#include "aifleet/creds.h"
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/normalize.h"
#include "aifleet/record.h"

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALI_STS_ENDPOINT "https://sts.aliyuncs.com"
#define TC_STS_ENDPOINT "https://sts.tencentcloudapi.com"
#define DEFAULT_SESSION "aifleet"
#define DEFAULT_DURATION 3600
#define TC_DEFAULT_REGION "ap-guangzhou"

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v = get(o, key);

	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Copies the three values out of the answer's credentials object. */
static int take(af_credentials *out, json_object *creds, const char *const names[3],
		const char *expiration, const char *role_arn)
{
	const char *id = str(creds, names[0]), *secret = str(creds, names[1]);
	const char *token = str(creds, names[2]);
	af_time t;

	if (!id || !*id || !secret || !*secret || !token || !*token)
		return af_error_set(AF_ERR_DATA, "role %s: the answer lacks %s, %s or %s", role_arn,
				    names[0], names[1], names[2]);
	if (!(out->access_key_id = strdup(id)) || !(out->access_key_secret = strdup(secret)) ||
	    !(out->security_token = strdup(token))) {
		af_credentials_clear(out);
		return af_error_oom();
	}
	if (expiration && af_time_parse(&t, expiration) == 0)
		out->expires_at = t / 1000000;
	return 0;
}

/* Sends an STS request and takes the credentials from its answer: under
 * Credentials (Alibaba, with Expiration inside) or Response.Credentials
 * (Tencent, with Response.Expiration). */
static int sts_exchange(af_credentials *out, af_session *s, const af_api_request *req,
			const af_credentials *base, const char *role_arn)
{
	static const char *const ali_names[3] = {"AccessKeyId", "AccessKeySecret",
						 "SecurityToken"};
	static const char *const tc_names[3] = {"TmpSecretId", "TmpSecretKey", "Token"};
	bool tc = req->style == AF_API_TC3;
	af_api_response resp;
	json_object *where, *creds;
	int err;

	af_api_response_init(&resp);
	if ((err = af_session_call(s, req, base, &resp)) == 0) {
		where = tc ? get(resp.json, "Response") : resp.json;
		creds = get(where, "Credentials");
		err = take(out, creds, tc ? tc_names : ali_names,
			   str(tc ? where : creds, "Expiration"), role_arn);
	}
	af_api_response_free(&resp);
	return err;
}

/* The fields every STS request shares: Alibaba sts 2015-04-01 (RPC) or
 * Tencent sts 2018-08-13 (TC3), labelled with the account. The caller adds
 * parameters or body, and the method when it sends a body. */
static void sts_request_init(af_api_request *req, bool tencent, const char *action,
			     const char *endpoint, const char *account)
{
	memset(req, 0, sizeof(*req));
	req->style = tencent ? AF_API_TC3 : AF_API_ACS3_RPC;
	req->endpoint = endpoint;
	req->method = tencent ? "POST" : "GET";
	req->path = "/";
	req->action = action;
	req->version = tencent ? "2018-08-13" : "2015-04-01";
	req->service = tencent ? "sts" : NULL;
	req->provider = tencent ? AF_PROVIDER_TENCENT : AF_PROVIDER_ALIBABA;
	req->product = "sts";
	req->account = account;
}

/* The members a Tencent STS body always has, json-c escaping them. */
static void tencent_role_members(json_object *body, const char *role_arn,
				 const char *session_name, int duration_seconds)
{
	json_object_object_add(body, "RoleArn", json_object_new_string(role_arn));
	json_object_object_add(body, "RoleSessionName",
			       json_object_new_string(session_name ? session_name
								   : DEFAULT_SESSION));
	json_object_object_add(body, "DurationSeconds",
			       json_object_new_int(duration_seconds > 0 ? duration_seconds
									: DEFAULT_DURATION));
}

static int alibaba_assume(af_credentials *out, af_session *s, const af_credentials *base,
			  const af_assume_role *r)
{
	char duration[16];
	af_kv query[5];
	size_t n = 0;
	af_api_request req;

	snprintf(duration, sizeof(duration), "%d",
		 r->duration_seconds > 0 ? r->duration_seconds : DEFAULT_DURATION);
	query[n++] = (af_kv){"RoleArn", r->role_arn};
	query[n++] = (af_kv){"RoleSessionName", r->session_name ? r->session_name : DEFAULT_SESSION};
	query[n++] = (af_kv){"DurationSeconds", duration};
	if (r->external_id)
		query[n++] = (af_kv){"ExternalId", r->external_id};
	if (r->policy)
		query[n++] = (af_kv){"Policy", r->policy};
	sts_request_init(&req, false, "AssumeRole", r->endpoint ? r->endpoint : ALI_STS_ENDPOINT,
			 r->account);
	req.query = query;
	req.nquery = n;
	req.region = r->region;
	return sts_exchange(out, s, &req, base, r->role_arn);
}

static int tencent_assume(af_credentials *out, af_session *s, const af_credentials *base,
			  const af_assume_role *r)
{
	json_object *body = json_object_new_object();
	af_api_request req;
	const char *text;
	int err;

	if (!body)
		return af_error_oom();
	tencent_role_members(body, r->role_arn, r->session_name, r->duration_seconds);
	if (r->external_id)
		json_object_object_add(body, "ExternalId", json_object_new_string(r->external_id));
	if (r->policy)
		json_object_object_add(body, "Policy", json_object_new_string(r->policy));
	text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	sts_request_init(&req, true, "AssumeRole", r->endpoint ? r->endpoint : TC_STS_ENDPOINT,
			 r->account);
	req.body = text;
	req.body_len = strlen(text);
	req.region = r->region ? r->region : TC_DEFAULT_REGION;
	err = sts_exchange(out, s, &req, base, r->role_arn);
	json_object_put(body);
	return err;
}

int af_credentials_assume_role(af_credentials *out, af_session *s, const char *provider,
			       const af_credentials *base, const af_assume_role *r)
{
	int err;

	memset(out, 0, sizeof(*out));
	if (!r || !r->role_arn || !*r->role_arn)
		return af_error_set(AF_ERR_CONFIG, "AssumeRole: no role ARN");
	if (provider && strcmp(provider, AF_PROVIDER_ALIBABA) == 0)
		err = alibaba_assume(out, s, base, r);
	else
		err = tencent_assume(out, s, base, r);
	if (err < 0)
		return af_error_prefix(err, "AssumeRole %s: ", r->role_arn);
	return 0;
}

/* ---- OIDC: AssumeRoleWithOIDC (Alibaba RRSA), AssumeRoleWithWebIdentity (TKE) -- */

#define OIDC_TOKEN_MAX ((size_t)64 * 1024)

/* The token file, read whole (it is rotated by the platform: read it each
 * time), without trailing whitespace. Kubernetes projects it world-
 * readable, so no mode check here. */
static int read_token(char **out, const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	*out = NULL;
	if (!f)
		return af_error_set(AF_ERR_CONFIG, "OIDC token file %s: cannot open it", path);
	if (!(buf = malloc(OIDC_TOKEN_MAX + 1))) {
		fclose(f);
		return af_error_oom();
	}
	n = fread(buf, 1, OIDC_TOKEN_MAX + 1, f);
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n > OIDC_TOKEN_MAX ? OIDC_TOKEN_MAX : n] = '\0';
	if (n == 0 || n > OIDC_TOKEN_MAX) {
		OPENSSL_cleanse(buf, OIDC_TOKEN_MAX + 1);
		free(buf);
		return af_error_set(AF_ERR_CONFIG, "OIDC token file %s is %s", path,
				    n ? "larger than 64 KiB" : "empty");
	}
	*out = buf;
	return 0;
}

static void wipe(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* Alibaba: the token goes in a form body, never in the URL (which the
 * debug log shows). */
static int alibaba_oidc(af_credentials *out, af_session *s, const af_oidc_role *r,
			const char *token)
{
	static const af_credentials none = {0};
	const char *keys[] = {"RoleArn", "OIDCProviderArn", "OIDCToken", "RoleSessionName"};
	const char *vals[] = {r->role_arn, r->provider, token,
			      r->session_name ? r->session_name : DEFAULT_SESSION};
	af_api_request req;
	af_buf body = AF_BUF_INIT;
	int err = 0;

	for (size_t i = 0; i < 4 && err == 0; i++)
		if ((err = af_buf_printf(&body, "%s%s=", i ? "&" : "", keys[i])) == 0)
			err = af_rfc3986_encode(&body, vals[i], strlen(vals[i]));
	if (err == 0)
		err = af_buf_printf(&body, "&DurationSeconds=%d",
				    r->duration_seconds > 0 ? r->duration_seconds : DEFAULT_DURATION);
	if (err < 0) {
		af_buf_free_secret(&body);
		return err;
	}
	sts_request_init(&req, false, "AssumeRoleWithOIDC", r->endpoint, r->account);
	req.method = "POST";
	req.body = af_buf_data(&body);
	req.body_len = af_buf_len(&body);
	req.content_type = "application/x-www-form-urlencoded";
	req.unsigned_call = true;
	req.redact = token;
	err = sts_exchange(out, s, &req, &none, r->role_arn);
	af_buf_free_secret(&body);
	return err;
}

static int tencent_web_identity(af_credentials *out, af_session *s, const af_oidc_role *r,
				const char *token)
{
	static const af_credentials none = {0};
	json_object *body = json_object_new_object();
	af_api_request req;
	const char *text;
	int err;

	if (!body)
		return af_error_oom();
	json_object_object_add(body, "ProviderId", json_object_new_string(r->provider));
	json_object_object_add(body, "WebIdentityToken", json_object_new_string(token));
	tencent_role_members(body, r->role_arn, r->session_name, r->duration_seconds);
	text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	sts_request_init(&req, true, "AssumeRoleWithWebIdentity", r->endpoint, r->account);
	req.body = text;
	req.body_len = strlen(text);
	req.unsigned_call = true;
	req.redact = token;
	req.region = r->region ? r->region : TC_DEFAULT_REGION;
	err = sts_exchange(out, s, &req, &none, r->role_arn);
	/* json-c's copies of the token are freed, not wiped (the token lives
	 * minutes, and core dumps are off: src/cli/main.c) */
	json_object_put(body);
	return err;
}

int af_credentials_assume_role_oidc(af_credentials *out, af_session *s, const char *provider,
				    const af_oidc_role *r)
{
	bool ali = provider && strcmp(provider, AF_PROVIDER_ALIBABA) == 0;
	af_oidc_role role = *r;
	char endpoint[256];
	char *token = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	if (!r->role_arn || !r->provider || !r->token_file)
		return af_error_set(AF_ERR_CONFIG, "OIDC: role ARN, provider and token file needed");
	if (!role.endpoint) {
		if (ali && r->region)
			snprintf(endpoint, sizeof(endpoint), "https://sts%s.%s.aliyuncs.com",
				 r->vpc ? "-vpc" : "", r->region);
		else
			snprintf(endpoint, sizeof(endpoint), "%s", ali ? ALI_STS_ENDPOINT
								      : TC_STS_ENDPOINT);
		role.endpoint = endpoint;
	}
	if ((err = read_token(&token, r->token_file)) == 0)
		err = ali ? alibaba_oidc(out, s, &role, token)
			  : tencent_web_identity(out, s, &role, token);
	wipe(token);
	if (err < 0)
		return af_error_prefix(err, "%s %s: ",
				       ali ? "AssumeRoleWithOIDC" : "AssumeRoleWithWebIdentity",
				       r->role_arn);
	return 0;
}

int af_credentials_copy(af_credentials *out, const af_credentials *in)
{
	memset(out, 0, sizeof(*out));
	if ((in->access_key_id && !(out->access_key_id = strdup(in->access_key_id))) ||
	    (in->access_key_secret && !(out->access_key_secret = strdup(in->access_key_secret))) ||
	    (in->security_token && !(out->security_token = strdup(in->security_token)))) {
		af_credentials_clear(out);
		return af_error_oom();
	}
	out->expires_at = in->expires_at;
	return 0;
}
