/*
 * Signature verification. Everything is rebuilt from what arrived on the
 * wire (method, raw path, raw query decoded here, received headers, body
 * bytes) and handed to the same sign.h the clients use; signatures are then
 * compared in constant time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "aifleet/error.h"
#include "sim.h"

#define ACS3_SKEW 900 /* seconds: Alibaba accepts x-acs-date within 15 min */
#define TC3_SKEW  300 /* seconds: Tencent accepts X-TC-Timestamp within 5 min */

static void count_reject(af_sim *s, const char *code)
{
	pthread_mutex_lock(&s->lock);
	s->stats.rejected_signatures++;
	sim_stats_count(&s->stats.auth_errors, &s->stats.nauth_errors, code);
	pthread_mutex_unlock(&s->lock);
}

static int ali_reject(af_sim *s, sim_req *r, sim_resp *resp, bool roa, int status, const char *code,
                      const char *msg)
{
	count_reject(s, code);
	sim_ali_error(resp, r, status, roa, code, msg);
	return 1;
}

static int tc_reject(af_sim *s, sim_req *r, sim_resp *resp, const char *code, const char *msg)
{
	count_reject(s, code);
	sim_tc_error(resp, r, code, msg);
	return 1;
}

/* Finds "name=" in a comma separated list and copies its value. */
static int auth_field(char *out, size_t n, const char *hdr, const char *name)
{
	size_t nl = strlen(name);
	const char *p = hdr;
	while (p && *p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
			const char *v = p + nl + 1, *e = strchr(v, ',');
			size_t len = e ? (size_t)(e - v) : strlen(v);
			while (len > 0 && v[len - 1] == ' ')
				len--;
			if (len >= n)
				return -1;
			memcpy(out, v, len);
			out[len] = '\0';
			return 0;
		}
		p = strchr(p, ',');
	}
	return -1;
}

static bool same_secret(const char *a, const char *b)
{
	size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
	return a && b && la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

/* ---- nonce cache: open addressing on "account\nnonce", entries expire ---- */

static size_t nonce_slot(const sim_nonce *tab, size_t cap, const char *key)
{
	size_t i = (size_t)sim_hash_str(key) & (cap - 1);
	while (tab[i].nonce && strcmp(tab[i].nonce, key) != 0)
		i = (i + 1) & (cap - 1);
	return i;
}

static int nonce_rehash(af_sim *s, int64_t now)
{
	size_t cap = s->nonce_cap ? s->nonce_cap : 1024, live = 0;
	for (size_t i = 0; i < s->nonce_cap; i++)
		if (s->nonces[i].nonce && now - s->nonces[i].at <= ACS3_SKEW)
			live++;
	while (live * 2 >= cap)
		cap *= 2;
	sim_nonce *tab = calloc(cap, sizeof(*tab));
	if (!tab)
		return AF_ERR_NOMEM;
	s->nonce_len = 0;
	for (size_t i = 0; i < s->nonce_cap; i++) {
		sim_nonce *e = &s->nonces[i];
		if (!e->nonce)
			continue;
		if (now - e->at > ACS3_SKEW) {
			free(e->nonce);
			continue;
		}
		tab[nonce_slot(tab, cap, e->nonce)] = *e;
		s->nonce_len++;
	}
	free(s->nonces);
	s->nonces = tab;
	s->nonce_cap = cap;
	return 0;
}

/* 1 when the nonce was seen within the window, else records it and 0. */
static int nonce_seen(af_sim *s, const char *account, const char *nonce)
{
	char key[256];
	int64_t now = time(NULL);
	int seen = 0;
	size_t i;
	snprintf(key, sizeof(key), "%s\n%s", account, nonce);
	pthread_mutex_lock(&s->lock);
	if ((s->nonce_len + 1) * 2 > s->nonce_cap && nonce_rehash(s, now) < 0)
		goto done;
	i = nonce_slot(s->nonces, s->nonce_cap, key);
	if (s->nonces[i].nonce) {
		seen = now - s->nonces[i].at <= ACS3_SKEW;
		s->nonces[i].at = now;
	} else if ((s->nonces[i].nonce = strdup(key))) {
		s->nonces[i].at = now;
		s->nonce_len++;
	}
done:
	pthread_mutex_unlock(&s->lock);
	return seen;
}

void sim_nonces_free(af_sim *s)
{
	for (size_t i = 0; i < s->nonce_cap; i++)
		free(s->nonces[i].nonce);
	free(s->nonces);
	s->nonces = NULL;
	s->nonce_cap = s->nonce_len = 0;
}

/* ---- what arrived ---- */

const char *sim_wire_header(const sim_wire *w, const char *name)
{
	for (size_t i = 0; i < w->nheaders; i++)
		if (strcasecmp(w->headers[i].key, name) == 0)
			return w->headers[i].value;
	return NULL;
}

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
	sim_req *r = cls;
	(void)kind;
	if (r->nhdrs < SIM_MAX_HEADERS) {
		r->hdrs[r->nhdrs].key = key;
		r->hdrs[r->nhdrs].value = value ? value : "";
		r->nhdrs++;
	}
	return MHD_YES;
}

static void req_wire(sim_wire *w, sim_req *r)
{
	if (r->nhdrs == 0)
		MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect, r);
	w->method = r->method;
	w->path = r->path;
	w->params = r->params;
	w->nparams = r->nparams;
	w->headers = r->hdrs;
	w->nheaders = r->nhdrs;
	w->body = af_buf_data(&r->body) ? af_buf_data(&r->body) : "";
	w->body_len = af_buf_len(&r->body);
}

static int verdict(sim_verdict *v, int status, const char *code, const char *msg)
{
	v->status = status;
	v->code = code;
	v->message = msg;
	return -1;
}

/* ---- ACS3 ---- */

int sim_auth_credential(char *out, size_t n, const char *auth)
{
	const char *p;
	if (!auth)
		return -1;
	if (strncmp(auth, "ACS3-HMAC-SHA256 ", 17) == 0)
		return auth_field(out, n, auth + 17, "Credential");
	if (strncmp(auth, "TC3-HMAC-SHA256 ", 16) == 0 &&
	    auth_field(out, n, auth + 16, "Credential") == 0 && (p = strchr(out, '/'))) {
		out[p - out] = '\0'; /* the SecretId, before the scope */
		return 0;
	}
	return -1;
}

int sim_auth_tc3_service(char *out, size_t n, const char *auth)
{
	char cred[256];
	const char *p, *q;
	if (!auth || strncmp(auth, "TC3-HMAC-SHA256 ", 16) != 0 ||
	    auth_field(cred, sizeof(cred), auth + 16, "Credential") < 0)
		return -1;
	/* SecretId/date/service/tc3_request */
	if (!(p = strchr(cred, '/')) || !(p = strchr(p + 1, '/')) || !(q = strchr(p + 1, '/')) ||
	    (size_t)(q - p - 1) >= n)
		return -1;
	memcpy(out, p + 1, (size_t)(q - p - 1));
	out[q - p - 1] = '\0';
	return 0;
}

static int parse_acs_date(int64_t *out, const char *v)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = v ? strptime(v, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
	if (!end || *end)
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

static bool acs3_signed(const char *name)
{
	return strcasecmp(name, "host") == 0 || strcasecmp(name, "content-type") == 0 ||
	       strncasecmp(name, "x-acs-", 6) == 0;
}

int sim_acs3_check(sim_verdict *v, const sim_wire *w, const char *key_id, const char *secret,
                   int64_t now)
{
	const char *auth = sim_wire_header(w, "Authorization");
	const char *date = sim_wire_header(w, "x-acs-date");
	const char *nonce = sim_wire_header(w, "x-acs-signature-nonce");
	const char *sha = sim_wire_header(w, "x-acs-content-sha256");
	char cred[128], signed_hdrs[1024], sig[80], body_hash[65];
	af_kv h[SIM_MAX_HEADERS];
	size_t nh = 0;
	int64_t ts;
	af_sign_steps steps;
	int rc;

	if (!auth || strncmp(auth, "ACS3-HMAC-SHA256 ", 17) != 0 ||
	    auth_field(cred, sizeof(cred), auth + 17, "Credential") < 0 ||
	    auth_field(signed_hdrs, sizeof(signed_hdrs), auth + 17, "SignedHeaders") < 0 ||
	    auth_field(sig, sizeof(sig), auth + 17, "Signature") < 0 || strcmp(cred, key_id) != 0)
		return verdict(v, 400, "IncompleteSignature",
		               "The Authorization header is not a valid ACS3-HMAC-SHA256 one.");
	if (parse_acs_date(&ts, date) < 0)
		return verdict(v, 400, "InvalidTimeStamp.Format",
		               "Specified time stamp or date value is not well formatted.");
	if (llabs(ts - now) > ACS3_SKEW)
		return verdict(v, 400, "InvalidTimeStamp.Expired",
		               "Specified time stamp or date value is expired.");
	if (!nonce || !*nonce)
		return verdict(v, 400, "MissingSignatureNonce",
		               "x-acs-signature-nonce is mandatory for this action.");
	af_sha256_hex(body_hash, w->body, w->body_len);
	if (sha && strcmp(sha, body_hash) != 0)
		return verdict(v, 400, "SignatureDoesNotMatch",
		               "x-acs-content-sha256 does not match the request body.");
	for (size_t i = 0; i < w->nheaders; i++)
		if (acs3_signed(w->headers[i].key))
			h[nh++] = w->headers[i];
	af_acs3_input in = {
	    .method = w->method,
	    .canonical_uri = w->path,
	    .query = w->params,
	    .nquery = w->nparams,
	    .headers = h,
	    .nheaders = nh,
	    .payload_hash = body_hash,
	    .access_key_id = key_id,
	    .access_key_secret = secret,
	};
	af_sign_steps_init(&steps);
	/* SignedHeaders must name exactly the headers that arrived (every x-acs-*) */
	if (af_acs3_sign(&steps, &in) < 0 ||
	    strcmp(af_buf_data(&steps.signed_headers) ? af_buf_data(&steps.signed_headers) : "",
	           signed_hdrs) != 0 ||
	    strlen(sig) != 64 || CRYPTO_memcmp(sig, steps.signature, 64) != 0)
		rc = verdict(v, 400, "SignatureDoesNotMatch",
		             "The request signature does not conform to Aliyun standards.");
	else
		rc = 0;
	af_sign_steps_free(&steps);
	return rc;
}

/* Who signs: a configured account, or temporary credentials the
 * simulator issued for a role (then they read the role's account). */
typedef struct signer {
	int account;
	const char *key_id, *secret, *token; /* token: NULL when none is needed */
	bool issued;
	int64_t expires_ms;
	sim_issued copy; /* holds the issued values; wiped */
} signer;

static int signer_find(af_sim *s, signer *g, const char *provider, const char *key_id)
{
	int acc = sim_account_by_key(s, provider, key_id);
	memset(g, 0, sizeof(*g));
	if (acc >= 0) {
		sim_account *a = &s->accounts[acc];
		g->account = acc;
		g->key_id = a->key_id;
		g->secret = a->secret;
		g->token = a->token;
		return 0;
	}
	if (sim_issued_find(s, &g->copy, provider, key_id) < 0)
		return -1;
	g->account = g->copy.account;
	g->key_id = g->copy.key_id;
	g->secret = g->copy.secret;
	g->token = g->copy.token;
	g->issued = true;
	g->expires_ms = g->copy.expires_ms;
	return 0;
}

static int auth_acs3(af_sim *s, sim_req *r, sim_resp *resp, const char *provider, bool roa)
{
	const char *auth = sim_req_header(r, "Authorization");
	const char *tok;
	char cred[128];
	sim_wire w;
	sim_verdict v;
	signer g;
	int rc = 1;

	if (!auth || !*auth)
		return ali_reject(s, r, resp, roa, 400, "MissingAuthorization",
		                  "Authorization is mandatory for this action.");
	if (strncmp(auth, "ACS3-HMAC-SHA256 ", 17) != 0 ||
	    sim_auth_credential(cred, sizeof(cred), auth) < 0)
		return ali_reject(s, r, resp, roa, 400, "IncompleteSignature",
		                  "The Authorization header is not a valid ACS3-HMAC-SHA256 one.");
	if (signer_find(s, &g, provider, cred) < 0)
		return ali_reject(s, r, resp, roa, 404, "InvalidAccessKeyId.NotFound",
		                  "Specified access key is not found.");
	req_wire(&w, r);
	tok = sim_req_header(r, "x-acs-security-token");
	if (sim_acs3_check(&v, &w, g.key_id, g.secret, (int64_t)time(NULL)) < 0)
		rc = ali_reject(s, r, resp, roa, v.status, v.code, v.message);
	else if (g.issued && (!tok || !*tok))
		rc = ali_reject(s, r, resp, roa, 400, "InvalidSecurityToken.Mismatch",
		                "Specified SecurityToken is missing for a temporary access key.");
	else if (g.token && !same_secret(g.token, tok))
		rc = ali_reject(s, r, resp, roa, 400, "InvalidSecurityToken.MismatchWithAccessKey",
		                "The security token does not match the access key.");
	else if (g.issued && sim_wall_ms() >= g.expires_ms)
		rc = ali_reject(s, r, resp, roa, 400, "InvalidSecurityToken.Expired",
		                "Specified SecurityToken is expired.");
	else if (nonce_seen(s, s->accounts[g.account].label,
	                    sim_req_header(r, "x-acs-signature-nonce")))
		rc = ali_reject(s, r, resp, roa, 400, "SignatureNonceUsed",
		                "Specified signature nonce was used already.");
	else
		rc = 0;
	if (rc == 0)
		r->account = g.account;
	sim_issued_wipe(&g.copy);
	return rc;
}

int sim_auth_acs3(af_sim *s, sim_req *r, sim_resp *resp)
{
	const sim_product *p = sim_product_at((size_t)r->product);
	return auth_acs3(s, r, resp, p->product->provider, p->style == SIM_ACS3_ROA);
}

int sim_auth_acs3_as(af_sim *s, sim_req *r, sim_resp *resp, const char *provider)
{
	return auth_acs3(s, r, resp, provider, false);
}

/* ---- TC3 ---- */

static bool tc3_matches(af_tc3_input *in, const char *sig)
{
	af_sign_steps steps;
	bool ok;
	af_sign_steps_init(&steps);
	ok = af_tc3_sign(&steps, in) == 0 && CRYPTO_memcmp(sig, steps.signature, 64) == 0;
	af_sign_steps_free(&steps);
	return ok;
}

int sim_tc3_check(sim_verdict *v, const sim_wire *w, const char *secret_id, const char *secret,
                  const char *service, int64_t now)
{
	const char *auth = sim_wire_header(w, "Authorization");
	const char *tsh = sim_wire_header(w, "X-TC-Timestamp");
	const char *host = sim_wire_header(w, "Host");
	const char *ct = sim_wire_header(w, "Content-Type");
	char cred[256], signed_hdrs[256], sig[80], body_hash[65], date[16], host_noport[256];
	char *id, *cdate, *svc, *term, *save = NULL, *endp = NULL;
	int64_t ts;

	if (!auth || strncmp(auth, "TC3-HMAC-SHA256 ", 16) != 0 ||
	    auth_field(cred, sizeof(cred), auth + 16, "Credential") < 0 ||
	    auth_field(signed_hdrs, sizeof(signed_hdrs), auth + 16, "SignedHeaders") < 0 ||
	    auth_field(sig, sizeof(sig), auth + 16, "Signature") < 0)
		return verdict(v, 200, "AuthFailure.InvalidAuthorization",
		               "The Authorization header is not a valid TC3-HMAC-SHA256 one.");
	id = strtok_r(cred, "/", &save);
	cdate = strtok_r(NULL, "/", &save);
	svc = strtok_r(NULL, "/", &save);
	term = strtok_r(NULL, "/", &save);
	if (!id || !cdate || !svc || !term || strcmp(term, "tc3_request") != 0 ||
	    strcmp(id, secret_id) != 0)
		return verdict(v, 200, "AuthFailure.InvalidAuthorization",
		               "The credential scope is malformed.");
	/* the service comes from the scope as sent, and must be this API's */
	if (strcmp(svc, service) != 0)
		return verdict(v, 200, "AuthFailure.InvalidAuthorization",
		               "The credential scope names another service.");
	ts = tsh ? strtoll(tsh, &endp, 10) : 0;
	if (!tsh || !*tsh || *endp)
		return verdict(v, 200, "AuthFailure.InvalidAuthorization",
		               "X-TC-Timestamp is missing or malformed.");
	if (llabs(ts - now) > TC3_SKEW)
		return verdict(v, 200, "AuthFailure.SignatureExpire",
		               "Signature expired: the timestamp is more than 5 minutes off.");
	{
		time_t tt = (time_t)ts;
		struct tm tm;
		gmtime_r(&tt, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	}
	if (strcmp(date, cdate) != 0 || strcmp(signed_hdrs, "content-type;host") != 0 ||
	    strlen(sig) != 64 || !host || !ct)
		return verdict(v, 200, "AuthFailure.SignatureFailure",
		               "The provided credentials could not be validated.");
	af_sha256_hex(body_hash, w->body, w->body_len);
	af_tc3_input in = {
	    .method = w->method,
	    .query = w->nparams ? w->params : NULL,
	    .nquery = w->nparams,
	    .content_type = ct,
	    .host = host,
	    .payload_hash = body_hash,
	    .service = svc,
	    .timestamp = ts,
	    .secret_id = secret_id,
	    .secret_key = secret,
	};
	if (tc3_matches(&in, sig))
		return 0;
	/* the official SDKs sign the host without the port */
	if (strchr(host, ':') && strlen(host) < sizeof(host_noport)) {
		snprintf(host_noport, sizeof(host_noport), "%s", host);
		*strrchr(host_noport, ':') = '\0';
		in.host = host_noport;
		if (tc3_matches(&in, sig))
			return 0;
	}
	return verdict(v, 200, "AuthFailure.SignatureFailure",
	               "The provided credentials could not be validated.");
}

static int auth_tc3(af_sim *s, sim_req *r, sim_resp *resp, const char *provider,
                    const char *service)
{
	const char *auth = sim_req_header(r, "Authorization");
	char id[256];
	sim_wire w;
	sim_verdict v;
	signer g;
	int rc = 1;

	if (!auth || !*auth)
		return tc_reject(s, r, resp, "AuthFailure.InvalidAuthorization",
		                 "Authorization is missing.");
	if (strncmp(auth, "TC3-HMAC-SHA256 ", 16) != 0 ||
	    sim_auth_credential(id, sizeof(id), auth) < 0)
		return tc_reject(s, r, resp, "AuthFailure.InvalidAuthorization",
		                 "The Authorization header is not a valid TC3-HMAC-SHA256 one.");
	if (signer_find(s, &g, provider, id) < 0)
		return tc_reject(s, r, resp, "AuthFailure.SecretIdNotFound",
		                 "The SecretId is not found.");
	req_wire(&w, r);
	if (sim_tc3_check(&v, &w, g.key_id, g.secret, service, (int64_t)time(NULL)) < 0)
		rc = tc_reject(s, r, resp, v.code, v.message);
	else if (g.token && !same_secret(g.token, sim_req_header(r, "X-TC-Token")))
		rc = tc_reject(s, r, resp, "AuthFailure.TokenFailure", "The token is invalid.");
	else if (g.issued && sim_wall_ms() >= g.expires_ms)
		rc = tc_reject(s, r, resp, "AuthFailure.TokenFailure", "The token has expired.");
	else
		rc = 0;
	if (rc == 0)
		r->account = g.account;
	sim_issued_wipe(&g.copy);
	return rc;
}

int sim_auth_tc3(af_sim *s, sim_req *r, sim_resp *resp)
{
	const sim_product *p = sim_product_at((size_t)r->product);
	return auth_tc3(s, r, resp, p->product->provider, p->tc3_service);
}

int sim_auth_tc3_as(af_sim *s, sim_req *r, sim_resp *resp, const char *provider,
                    const char *service)
{
	return auth_tc3(s, r, resp, provider, service);
}
