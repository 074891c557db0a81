/*
 * The instance metadata services, on the simulator's port: Alibaba ECS
 * (http://100.100.100.200: an IMDSv2 session token, then the RAM role and
 * its credentials) and Tencent CVM (http://metadata.tencentyun.com: the CAM
 * role and its credentials). "The instance" has the roles of the provider
 * with instance = true; the credentials are issued as STS issues them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aifleet/record.h"
#include "sim.h"

#define MD_TOKEN_PATH   "/latest/api/token"
#define ECS_ROLES       "/latest/meta-data/ram/security-credentials/"
#define CVM_ROLES       "/latest/meta-data/cam/security-credentials/"
#define ECS_TTL_HEADER  "X-aliyun-ecs-metadata-token-ttl-seconds"
#define ECS_TOKEN_HDR   "X-aliyun-ecs-metadata-token"
#define ECS_TOKEN_MAX   21600
#define MD_ROLE_SECONDS 21600 /* what an instance role's credentials last */

static void text(sim_resp *resp, int status, const char *body)
{
	resp->status = status;
	resp->content_type = "text/plain";
	af_buf_reset(&resp->body);
	af_buf_puts(&resp->body, body);
}

/* The instance role of the provider named `name` (NULL: the first), or -1. */
static int instance_role(const af_sim *s, const char *provider, const char *name)
{
	for (size_t i = 0; i < s->nroles; i++) {
		const sim_role *ro = &s->roles[i];
		if (ro->instance && strcmp(sim_role_provider(s, ro), provider) == 0 &&
		    (!name || strcmp(ro->name, name) == 0))
			return (int)i;
	}
	return -1;
}

/* GET <roles>: the names, one a line (an instance has one role). GET
 * <roles><name>: its credentials. */
static void role_call(af_sim *s, sim_req *r, sim_resp *resp, const char *service,
                      const char *provider, const char *roles, bool ali)
{
	const char *name = r->path + strlen(roles);
	sim_issued c;
	char exp[24], now[24];
	json_object *o;
	int role;

	if (strcmp(r->method, "GET") != 0) {
		text(resp, 405, "Method Not Allowed");
		return;
	}
	if (!*name) {
		sim_service_count(s, service, "ListRoles");
		if ((role = instance_role(s, provider, NULL)) < 0)
			text(resp, 404, "Not Found");
		else
			text(resp, 200, s->roles[role].name);
		return;
	}
	sim_service_count(s, service, "GetRoleCredentials");
	if (strchr(name, '/') || (role = instance_role(s, provider, name)) < 0) {
		text(resp, 404, "Not Found");
		return;
	}
	if (sim_issue(s, &c, role, MD_ROLE_SECONDS) < 0) {
		text(resp, 500, "Internal Error");
		return;
	}
	sim_iso_time(exp, c.expires_ms);
	sim_iso_time(now, sim_wall_ms());
	o = json_object_new_object();
	if (ali) {
		sim_set_str(o, "AccessKeyId", c.key_id);
		sim_set_str(o, "AccessKeySecret", c.secret);
		sim_set_str(o, "SecurityToken", c.token);
		sim_set_str(o, "Expiration", exp);
		sim_set_str(o, "LastUpdated", now);
	} else {
		sim_set_str(o, "TmpSecretId", c.key_id);
		sim_set_str(o, "TmpSecretKey", c.secret);
		sim_set_str(o, "Token", c.token);
		sim_set_int(o, "ExpiredTime", c.expires_ms / 1000);
		sim_set_str(o, "Expiration", exp);
	}
	sim_set_str(o, "Code", "Success");
	sim_issued_wipe(&c);
	sim_json_out(resp, 200, o);
}

/* ---- ECS ---- */

static bool ecs_claims(const sim_req *r)
{
	return strcmp(r->path, MD_TOKEN_PATH) == 0 ||
	       strncmp(r->path, "/latest/meta-data/ram/", 22) == 0;
}

static void ecs_token(af_sim *s, sim_req *r, sim_resp *resp)
{
	const char *ttl = sim_req_header(r, ECS_TTL_HEADER);
	sim_md_token *t;
	char tok[64];
	long secs;

	sim_service_count(s, "ecs-metadata", "PutToken");
	if (strcmp(r->method, "PUT") != 0) {
		text(resp, 405, "Method Not Allowed");
		return;
	}
	if (!ttl || sim_parse_long(&secs, ttl) < 0 || secs < 1 || secs > ECS_TOKEN_MAX) {
		text(resp, 400, "Bad Request");
		return;
	}
	sim_random_alnum(tok, 57);
	pthread_mutex_lock(&s->lock);
	t = &s->md_tokens[s->md_next];
	s->md_next = (s->md_next + 1) % SIM_MD_TOKENS;
	memcpy(t->token, tok, sizeof(tok));
	t->expires_ms = sim_wall_ms() + (int64_t)secs * 1000;
	pthread_mutex_unlock(&s->lock);
	text(resp, 200, tok);
	OPENSSL_cleanse(tok, sizeof(tok));
}

/* A session token, when one came, must be one handed out and alive;
 * without one, IMDSv1, unless IMDSv2 is required. */
static bool ecs_token_ok(af_sim *s, const sim_req *r)
{
	const char *tok = sim_req_header(r, ECS_TOKEN_HDR);
	int64_t now = sim_wall_ms();
	bool ok = false;

	if (!tok)
		return !s->opt.imdsv2_required;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < SIM_MD_TOKENS && !ok; i++) {
		const sim_md_token *t = &s->md_tokens[i];
		ok = t->token[0] && strlen(tok) == strlen(t->token) &&
		     CRYPTO_memcmp(tok, t->token, strlen(tok)) == 0 && now < t->expires_ms;
	}
	pthread_mutex_unlock(&s->lock);
	return ok;
}

static void ecs_handle(af_sim *s, sim_req *r, sim_resp *resp)
{
	if (strcmp(r->path, MD_TOKEN_PATH) == 0) {
		ecs_token(s, r, resp);
		return;
	}
	if (strncmp(r->path, ECS_ROLES, strlen(ECS_ROLES)) != 0) {
		sim_service_count(s, "ecs-metadata", "Other");
		text(resp, 404, "Not Found");
		return;
	}
	if (!ecs_token_ok(s, r)) {
		sim_service_count(s, "ecs-metadata", "Unauthorized");
		text(resp, 401, "Unauthorized");
		return;
	}
	role_call(s, r, resp, "ecs-metadata", AF_PROVIDER_ALIBABA, ECS_ROLES, true);
}

const sim_service sim_service_ecs_metadata = {
    .name = "ecs-metadata",
    .acs_request_id = false,
    .claims = ecs_claims,
    .handle = ecs_handle,
};

/* ---- CVM ---- */

static bool cvm_claims(const sim_req *r)
{
	return strncmp(r->path, "/latest/meta-data/cam/", 22) == 0;
}

static void cvm_handle(af_sim *s, sim_req *r, sim_resp *resp)
{
	if (strncmp(r->path, CVM_ROLES, strlen(CVM_ROLES)) != 0) {
		sim_service_count(s, "cvm-metadata", "Other");
		text(resp, 404, "Not Found");
		return;
	}
	role_call(s, r, resp, "cvm-metadata", AF_PROVIDER_TENCENT, CVM_ROLES, false);
}

const sim_service sim_service_cvm_metadata = {
    .name = "cvm-metadata",
    .acs_request_id = false,
    .claims = cvm_claims,
    .handle = cvm_handle,
};
