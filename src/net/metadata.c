/*
 * Temporary credentials of the instance's role, from the instance
 * metadata service: the RAM role of an Alibaba ECS instance (IMDSv2: a
 * session token first, IMDSv1 as the fallback the SDK allows) and the CAM
 * role of a Tencent CVM. Same transport as the API calls (af_session_plain:
 * timeouts, retries); a short connect timeout, since off an instance the
 * address leads nowhere. Messages name the URL and the role, never a
 * value; the answers are wiped.
 */
#include "aifleet/creds.h"
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/log.h"
#include "aifleet/normalize.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ECS_METADATA "http://100.100.100.200"
#define CVM_METADATA "http://metadata.tencentyun.com"
#define ECS_ROLES "/latest/meta-data/ram/security-credentials/"
#define CVM_ROLES "/latest/meta-data/cam/security-credentials/"
#define METADATA_CONNECT_MS 1000
#define METADATA_TOTAL_MS 5000
#define ECS_TOKEN_TTL "21600"

/* GET or PUT base+path (with the token header when `token`); 0 and the
 * body on HTTP 200, else AF_ERR_CONFIG naming what and the status. */
static int metadata_call(af_session *s, const char *method, const char *base, const char *path,
			 const af_kv *header, const char *what, af_buf *body)
{
	char url[2048];
	af_plain_request req = {.method = method, .url = url, .headers = header,
				.nheaders = header ? 1 : 0, .connect_timeout_ms = METADATA_CONNECT_MS,
				.total_timeout_ms = METADATA_TOTAL_MS, .what = what};
	long status = 0;
	int err;

	if ((size_t)snprintf(url, sizeof(url), "%s%s", base, path) >= sizeof(url))
		return af_error_set(AF_ERR_CONFIG, "%s: metadata URL too long", what);
	if ((err = af_session_plain(s, &req, &status, body)) < 0)
		return err;
	if (status != 200) {
		af_buf_free_secret(body);
		return af_error_set(AF_ERR_CONFIG, "%s: %s %s: HTTP %ld", what, method, url, status);
	}
	return 0;
}

/* The role: the configured one, else the first the service lists. */
static int find_role(char *role, size_t n, af_session *s, const char *base, const char *roles,
		     const af_kv *token, const char *what)
{
	af_buf body = AF_BUF_INIT;
	const char *text;
	size_t len;
	int err;

	if ((err = metadata_call(s, "GET", base, roles, token, what, &body)) < 0)
		return err;
	text = af_buf_data(&body) ? af_buf_data(&body) : "";
	len = strcspn(text, "\r\n");
	if (len == 0 || len >= n || strspn(text, "abcdefghijklmnopqrstuvwxyz"
					    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@") < len) {
		af_buf_free_secret(&body);
		return af_error_set(AF_ERR_CONFIG, "%s: no usable role name in %s%s (is a role "
				    "attached to this instance?)", what, base, roles);
	}
	memcpy(role, text, len);
	role[len] = '\0';
	af_buf_free_secret(&body);
	return 0;
}

static const char *json_string(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

static int set_field(char **dst, const char *v)
{
	return (*dst = strdup(v)) ? 0 : af_error_oom();
}

/* The role's credentials document: Code "Success" and the three values
 * under the vendor's names; the expiry from `expiry` (ISO 8601). */
static int parse_credentials(af_credentials *out, const char *text, const char *const names[4],
			     const char *what, const char *role)
{
	json_object *doc = json_tokener_parse(text ? text : "");
	const char *code, *id, *secret, *token, *expiry;
	af_time t;
	int err = 0;

	memset(out, 0, sizeof(*out));
	if (!json_object_is_type(doc, json_type_object)) {
		err = af_error_set(AF_ERR_DATA, "%s: role %s: the answer is not a JSON object",
				   what, role);
		goto done;
	}
	code = json_string(doc, "Code");
	id = json_string(doc, names[0]);
	secret = json_string(doc, names[1]);
	token = json_string(doc, names[2]);
	expiry = json_string(doc, names[3]);
	if (code && strcmp(code, "Success") != 0) {
		err = af_error_set(AF_ERR_AUTH, "%s: role %s: Code %.64s", what, role, code);
		goto done;
	}
	if (!id || !*id || !secret || !*secret || !token || !*token) {
		err = af_error_set(AF_ERR_DATA, "%s: role %s: the answer lacks %s, %s or %s", what,
				   role, names[0], names[1], names[2]);
		goto done;
	}
	if ((err = set_field(&out->access_key_id, id)) < 0 ||
	    (err = set_field(&out->access_key_secret, secret)) < 0 ||
	    (err = set_field(&out->security_token, token)) < 0)
		goto done;
	if (expiry && af_time_parse(&t, expiry) == 0)
		out->expires_at = t / 1000000;
done:
	if (err < 0)
		af_credentials_clear(out);
	json_object_put(doc);
	return err;
}

int af_credentials_from_ecs_ram_role(af_credentials *out, af_session *s,
				     const af_metadata_options *o)
{
	static const char *const names[4] = {"AccessKeyId", "AccessKeySecret", "SecurityToken",
					     "Expiration"};
	const char *base = o && o->endpoint ? o->endpoint : ECS_METADATA;
	const char *env_role = getenv("ALIBABA_CLOUD_ECS_METADATA");
	const char *v1_off = getenv("ALIBABA_CLOUD_IMDSV1_DISABLED");
	af_kv ttl = {"X-aliyun-ecs-metadata-token-ttl-seconds", ECS_TOKEN_TTL};
	af_kv token = {"X-aliyun-ecs-metadata-token", NULL};
	af_buf t = AF_BUF_INIT, body = AF_BUF_INIT;
	char role[256], path[512];
	int err;

	memset(out, 0, sizeof(*out));
	/* IMDSv2: a session token first; without one, IMDSv1 if allowed. */
	if ((err = metadata_call(s, "PUT", base, "/latest/api/token", &ttl, "ECS metadata token",
				 &t)) == 0) {
		token.value = af_buf_data(&t);
	} else if (v1_off && strcmp(v1_off, "true") == 0) {
		err = af_error_prefix(err, "ECS RAM role: IMDSv1 is disabled "
				      "(ALIBABA_CLOUD_IMDSV1_DISABLED) and: ");
		goto done;
	} else {
		af_warn("creds", "ECS metadata: no IMDSv2 token (%s); trying IMDSv1", af_error_last());
	}
	if (o && o->role)
		snprintf(role, sizeof(role), "%s", o->role);
	else if (env_role && *env_role)
		snprintf(role, sizeof(role), "%s", env_role);
	else if ((err = find_role(role, sizeof(role), s, base, ECS_ROLES,
				  token.value ? &token : NULL, "ECS RAM role")) < 0)
		goto done;
	snprintf(path, sizeof(path), ECS_ROLES "%s", role);
	if ((err = metadata_call(s, "GET", base, path, token.value ? &token : NULL,
				 "ECS RAM role", &body)) < 0)
		goto done;
	err = parse_credentials(out, af_buf_data(&body), names, "ECS RAM role", role);
done:
	af_buf_free_secret(&t);
	af_buf_free_secret(&body);
	return err;
}

int af_credentials_from_cvm_role(af_credentials *out, af_session *s, const af_metadata_options *o)
{
	static const char *const names[4] = {"TmpSecretId", "TmpSecretKey", "Token", "Expiration"};
	const char *base = o && o->endpoint ? o->endpoint : CVM_METADATA;
	af_buf body = AF_BUF_INIT;
	char role[256], path[512];
	int err;

	memset(out, 0, sizeof(*out));
	if (o && o->role)
		snprintf(role, sizeof(role), "%s", o->role);
	else if ((err = find_role(role, sizeof(role), s, base, CVM_ROLES, NULL, "CVM role")) < 0)
		return err;
	snprintf(path, sizeof(path), CVM_ROLES "%s", role);
	if ((err = metadata_call(s, "GET", base, path, NULL, "CVM role", &body)) == 0)
		err = parse_credentials(out, af_buf_data(&body), names, "CVM role", role);
	af_buf_free_secret(&body);
	return err;
}

int af_credentials_from_uri(af_credentials *out, af_session *s, const char *uri)
{
	static const char *const names[4] = {"AccessKeyId", "AccessKeySecret", "SecurityToken",
					     "Expiration"};
	af_buf body = AF_BUF_INIT;
	int err;

	memset(out, 0, sizeof(*out));
	if (!uri || (strncmp(uri, "http://", 7) != 0 && strncmp(uri, "https://", 8) != 0))
		return af_error_set(AF_ERR_CONFIG, "credentials URI: not an http(s) URL");
	/* The URI is the whole address: the path is part of it. */
	if ((err = metadata_call(s, "GET", uri, "", NULL, "credentials URI", &body)) == 0)
		err = parse_credentials(out, af_buf_data(&body), names, "credentials URI", "-");
	af_buf_free_secret(&body);
	return err;
}
