/*
 * STS on the simulator's port. Alibaba (sts 2015-04-01, RPC, x-acs-action):
 * AssumeRole, ACS3-signed by an account's AccessKey (or by credentials
 * issued earlier: a caller holding a role's credentials counts as the
 * role's account), and AssumeRoleWithOIDC, unsigned. Tencent (sts
 * 2018-08-13, API 3.0, X-TC-Action): AssumeRole, TC3-signed with the
 * credential-scope service "sts", and AssumeRoleWithWebIdentity, unsigned
 * (Authorization: SKIP). The roles are the config's [role NAME] sections;
 * what they issue the products' APIs accept until it expires.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "aifleet/record.h"
#include "sim.h"

#define ALI_STS_VERSION "2015-04-01"
#define TC_STS_VERSION  "2018-08-13"
#define FORM_MAX        32 /* parameters of a form body */

static const char *const ali_actions[] = {"AssumeRole", "AssumeRoleWithOIDC"};
static const char *const tc_actions[] = {"AssumeRole", "AssumeRoleWithWebIdentity"};

static bool in(const char *const *set, size_t n, const char *name)
{
	for (size_t i = 0; name && i < n; i++)
		if (strcmp(set[i], name) == 0)
			return true;
	return false;
}

/* RoleSessionName: 2 to 64 of letters, digits and . @ - _ (both vendors) */
static bool session_name_ok(const char *v)
{
	size_t n = v ? strlen(v) : 0;
	if (n < 2 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && !strchr(".@-_", v[i]))
			return false;
	return true;
}

static int duration(const char *v, int *out)
{
	long d = SIM_DURATION_DEF;
	if (v && *v && sim_parse_long(&d, v) < 0)
		return -1;
	if (d < SIM_DURATION_MIN || d > SIM_DURATION_MAX)
		return -1;
	*out = (int)d;
	return 0;
}

/* A role's id, stable for its ARN: what AssumedRoleId starts with. */
static void role_id(char *out, size_t n, const char *arn)
{
	snprintf(out, n, "3%017llu",
	         (unsigned long long)(sim_hash_str(arn) % 100000000000000000ULL));
}

/* ---- Alibaba ---- */

typedef struct form {
	af_kv kv[FORM_MAX];
	size_t n;
} form;

static char *form_unescape(const char *p, size_t len)
{
	char *d = malloc(len + 1);
	char *u;
	if (!d)
		return NULL;
	for (size_t i = 0; i < len; i++)
		d[i] = p[i] == '+' ? ' ' : p[i];
	u = sim_unescape(d, len);
	free(d);
	return u;
}

/* An application/x-www-form-urlencoded body. */
static void form_parse(form *f, const sim_req *r)
{
	const char *ct = sim_req_header(r, "Content-Type");
	const char *p = af_buf_data(&r->body);
	f->n = 0;
	if (!p || !ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0)
		return;
	while (*p && f->n < FORM_MAX) {
		const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		if (end > p && eq) {
			f->kv[f->n].key = form_unescape(p, (size_t)(eq - p));
			f->kv[f->n].value = form_unescape(eq + 1, (size_t)(end - eq - 1));
			if (f->kv[f->n].key && f->kv[f->n].value)
				f->n++;
			else {
				free((char *)f->kv[f->n].key);
				free((char *)f->kv[f->n].value);
			}
		}
		p = amp ? amp + 1 : end;
	}
}

static void form_free(form *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free((char *)f->kv[i].key);
		if (f->kv[i].value)
			OPENSSL_cleanse((char *)f->kv[i].value, strlen(f->kv[i].value));
		free((char *)f->kv[i].value);
	}
	f->n = 0;
}

/* A parameter from the query, else from the form body. */
static const char *ali_param(const sim_req *r, const form *f, const char *name)
{
	const char *v = sim_req_param(r, name);
	for (size_t i = 0; !v && i < f->n; i++)
		if (strcmp(f->kv[i].key, name) == 0)
			v = f->kv[i].value;
	return v;
}

static bool ali_claims(const sim_req *r)
{
	const char *a = sim_req_header(r, "x-acs-action");
	if (!a)
		a = sim_req_param(r, "Action");
	return strcmp(r->path, "/") == 0 && in(ali_actions, 2, a);
}

/* Fills resp with an Alibaba STS error; returns -1 for the checks. */
static int ali_fail(sim_resp *resp, const sim_req *r, int status, const char *code,
                    const char *msg)
{
	sim_ali_error(resp, r, status, false, code, msg);
	return -1;
}

static void ali_answer(af_sim *s, sim_req *r, sim_resp *resp, int role, const char *session,
                       int dur, bool oidc)
{
	const sim_role *ro = &s->roles[role];
	json_object *o, *u, *c, *t;
	char exp[24], buf[512], id[24];
	sim_issued cr;

	if (sim_issue(s, &cr, role, dur) < 0) {
		ali_fail(resp, r, 500, "InternalError", "The request processing has failed.");
		return;
	}
	sim_iso_time(exp, cr.expires_ms);
	o = json_object_new_object();
	sim_set_str(o, "RequestId", r->request_id);
	u = json_object_new_object();
	snprintf(buf, sizeof(buf), "%s/%s", ro->arn, session);
	sim_set_str(u, "Arn", buf);
	role_id(id, sizeof(id), ro->arn);
	snprintf(buf, sizeof(buf), "%s:%s", id, session);
	sim_set_str(u, "AssumedRoleId", buf);
	json_object_object_add(o, "AssumedRoleUser", u);
	c = json_object_new_object();
	sim_set_str(c, "AccessKeyId", cr.key_id);
	sim_set_str(c, "AccessKeySecret", cr.secret);
	sim_set_str(c, "SecurityToken", cr.token);
	sim_set_str(c, "Expiration", exp);
	json_object_object_add(o, "Credentials", c);
	if (oidc) {
		t = json_object_new_object();
		sim_set_str(t, "Issuer", "https://oidc.aifleet-sim.invalid");
		sim_set_str(t, "Subject", "system:serviceaccount:aifleet:aifleet");
		sim_set_str(t, "ClientIds", "sts.aliyuncs.com");
		json_object_object_add(o, "OIDCTokenInfo", t);
	}
	sim_issued_wipe(&cr);
	sim_json_out(resp, 200, o);
}

/* RoleArn, RoleSessionName and DurationSeconds; -1 with resp filled. */
static int ali_check_request(sim_req *r, sim_resp *resp, form *f, const char **arn,
                             const char **session, int *dur)
{
	*arn = ali_param(r, f, "RoleArn");
	*session = ali_param(r, f, "RoleSessionName");
	if (!*arn || !**arn)
		return ali_fail(resp, r, 400, "MissingRoleArn", "RoleArn is mandatory for this action.");
	if (!*session || !**session)
		return ali_fail(resp, r, 400, "MissingRoleSessionName",
		                "RoleSessionName is mandatory for this action.");
	if (!session_name_ok(*session))
		return ali_fail(resp, r, 400, "InvalidParameter.RoleSessionName",
		                "The parameter RoleSessionName is wrongly formed.");
	if (duration(ali_param(r, f, "DurationSeconds"), dur) < 0)
		return ali_fail(resp, r, 400, "InvalidParameter.DurationSeconds",
		                "The Min/Max value of DurationSeconds is 15min/12hr.");
	return 0;
}

/* AssumeRole: the signing account is trusted, with the right ExternalId. */
static int ali_check_trust(af_sim *s, sim_req *r, sim_resp *resp, form *f, const sim_role *ro)
{
	const char *v = ali_param(r, f, "ExternalId");

	if (!sim_role_trusts(ro, s->accounts[r->account].label) ||
	    (ro->external_id && (!v || strcmp(v, ro->external_id) != 0)))
		return ali_fail(resp, r, 403, "NoPermission",
		                "You are not authorized to do this action. You should be "
		                "authorized by RAM.");
	return 0;
}

/* AssumeRoleWithOIDC: the role's provider and token. */
static int ali_check_oidc(sim_req *r, sim_resp *resp, form *f, const sim_role *ro)
{
	const char *pa = ali_param(r, f, "OIDCProviderArn");
	const char *tok = ali_param(r, f, "OIDCToken");

	if (!pa || !*pa)
		return ali_fail(resp, r, 400, "MissingOIDCProviderArn",
		                "OIDCProviderArn is mandatory for this action.");
	if (!tok || !*tok)
		return ali_fail(resp, r, 400, "MissingOIDCToken",
		                "OIDCToken is mandatory for this action.");
	if (!ro->oidc_provider || strcmp(pa, ro->oidc_provider) != 0)
		return ali_fail(resp, r, 404, "EntityNotExist.OIDCProvider",
		                "The specified OIDCProvider not exists.");
	if (!ro->oidc_token || strcmp(tok, ro->oidc_token) != 0)
		return ali_fail(resp, r, 400, "AuthenticationFail.OIDCToken.Invalid",
		                "The OIDCToken is invalid.");
	return 0;
}

static void ali_handle(af_sim *s, sim_req *r, sim_resp *resp)
{
	const char *action = sim_req_header(r, "x-acs-action");
	const char *version = sim_req_header(r, "x-acs-version");
	const char *arn, *session;
	bool oidc;
	int role, dur;
	form f;

	sim_request_id(r->request_id, true);
	if (!action)
		action = sim_req_param(r, "Action");
	if (!version)
		version = sim_req_param(r, "Version");
	oidc = strcmp(action, "AssumeRoleWithOIDC") == 0;
	sim_service_count(s, "alibaba-sts", action);
	form_parse(&f, r);
	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "POST") != 0)
		ali_fail(resp, r, 400, "UnsupportedHTTPMethod",
		         "This action does not support the HTTP method.");
	else if (version && strcmp(version, ALI_STS_VERSION) != 0)
		ali_fail(resp, r, 400, "InvalidVersion", "Specified version is not valid.");
	else if ((oidc || sim_auth_acs3_as(s, r, resp, AF_PROVIDER_ALIBABA) == 0) &&
	         ali_check_request(r, resp, &f, &arn, &session, &dur) == 0) {
		if ((role = sim_role_by_arn(s, AF_PROVIDER_ALIBABA, arn)) < 0)
			ali_fail(resp, r, 404, "EntityNotExist.Role", "The specified Role not exists.");
		else if ((oidc ? ali_check_oidc(r, resp, &f, &s->roles[role])
		               : ali_check_trust(s, r, resp, &f, &s->roles[role])) == 0)
			ali_answer(s, r, resp, role, session, dur, oidc);
	}
	form_free(&f);
}

const sim_service sim_service_alibaba_sts = {
    .name = "alibaba-sts",
    .acs_request_id = true,
    .claims = ali_claims,
    .handle = ali_handle,
};

/* ---- Tencent ---- */

static bool tc_claims(const sim_req *r)
{
	return in(tc_actions, 2, sim_req_header(r, "X-TC-Action"));
}

static const char *tc_str(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int tc_duration(json_object *o, int *out)
{
	json_object *v;
	int64_t d;
	if (!json_object_object_get_ex(o, "DurationSeconds", &v) || !v) {
		*out = SIM_DURATION_DEF;
		return 0;
	}
	if (!json_object_is_type(v, json_type_int))
		return -1;
	d = json_object_get_int64(v);
	if (d < SIM_DURATION_MIN || d > SIM_DURATION_MAX)
		return -1;
	*out = (int)d;
	return 0;
}

static void tc_answer(af_sim *s, sim_req *r, sim_resp *resp, int role, int dur)
{
	json_object *o, *in_, *c;
	char exp[24];
	sim_issued cr;

	if (sim_issue(s, &cr, role, dur) < 0) {
		sim_tc_error(resp, r, "InternalError", "An internal error occurred.");
		return;
	}
	sim_iso_time(exp, cr.expires_ms);
	o = json_object_new_object();
	in_ = json_object_new_object();
	c = json_object_new_object();
	sim_set_str(c, "Token", cr.token);
	sim_set_str(c, "TmpSecretId", cr.key_id);
	sim_set_str(c, "TmpSecretKey", cr.secret);
	json_object_object_add(in_, "Credentials", c);
	sim_set_int(in_, "ExpiredTime", cr.expires_ms / 1000);
	sim_set_str(in_, "Expiration", exp);
	sim_set_str(in_, "RequestId", r->request_id);
	json_object_object_add(o, "Response", in_);
	sim_issued_wipe(&cr);
	sim_json_out(resp, 200, o);
}

static void tc_handle(af_sim *s, sim_req *r, sim_resp *resp)
{
	const char *action = sim_req_header(r, "X-TC-Action");
	const char *version = sim_req_header(r, "X-TC-Version");
	bool web = strcmp(action, "AssumeRoleWithWebIdentity") == 0;
	enum json_tokener_error jerr = json_tokener_success;
	const char *arn, *session, *v;
	const sim_role *ro;
	int role, dur;

	sim_request_id(r->request_id, false);
	sim_service_count(s, "tencent-sts", action);
	if (strcmp(r->method, "POST") != 0) {
		sim_tc_error(resp, r, "InvalidParameter",
		             "Only POST with a JSON body is supported.");
		return;
	}
	if (version && strcmp(version, TC_STS_VERSION) != 0) {
		sim_tc_error(resp, r, "NoSuchVersion", "The API version does not exist.");
		return;
	}
	if (!web && sim_auth_tc3_as(s, r, resp, AF_PROVIDER_TENCENT, "sts") != 0)
		return;
	r->json =
	    json_tokener_parse_verbose(af_buf_data(&r->body) ? af_buf_data(&r->body) : "{}", &jerr);
	if (!r->json || !json_object_is_type(r->json, json_type_object)) {
		sim_tc_error(resp, r, "InvalidParameter", "The request body is not a JSON object.");
		return;
	}
	arn = tc_str(r->json, "RoleArn");
	session = tc_str(r->json, "RoleSessionName");
	if (!arn || !*arn || !session || !*session) {
		sim_tc_error(resp, r, "MissingParameter",
		             "The RoleArn or RoleSessionName parameter is missing.");
		return;
	}
	if (!session_name_ok(session)) {
		sim_tc_error(resp, r, "InvalidParameterValue", "RoleSessionName is invalid.");
		return;
	}
	if (tc_duration(r->json, &dur) < 0) {
		sim_tc_error(resp, r, "InvalidParameterValue",
		             "DurationSeconds must be from 900 to 43200.");
		return;
	}
	if ((role = sim_role_by_arn(s, AF_PROVIDER_TENCENT, arn)) < 0) {
		sim_tc_error(resp, r, "ResourceNotFound.RoleNotExist", "The role does not exist.");
		return;
	}
	ro = &s->roles[role];
	if (!web) {
		v = tc_str(r->json, "ExternalId");
		if (!sim_role_trusts(ro, s->accounts[r->account].label) ||
		    (ro->external_id && (!v || strcmp(v, ro->external_id) != 0))) {
			sim_tc_error(resp, r, "AuthFailure.UnauthorizedOperation",
			             "The caller is not authorized to assume this role.");
			return;
		}
	} else {
		const char *pid = tc_str(r->json, "ProviderId");
		const char *tok = tc_str(r->json, "WebIdentityToken");
		if (!pid || !*pid || !tok || !*tok) {
			sim_tc_error(resp, r, "MissingParameter",
			             "The ProviderId or WebIdentityToken parameter is missing.");
			return;
		}
		if (!ro->oidc_provider || strcmp(pid, ro->oidc_provider) != 0 || !ro->oidc_token ||
		    strcmp(tok, ro->oidc_token) != 0) {
			sim_tc_error(resp, r, "InvalidParameter.WebIdentityTokenError",
			             "The web identity token or its provider is invalid.");
			return;
		}
	}
	tc_answer(s, r, resp, role, dur);
}

const sim_service sim_service_tencent_sts = {
    .name = "tencent-sts",
    .acs_request_id = false,
    .claims = tc_claims,
    .handle = tc_handle,
};
