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

/* ---- ACS3 ---- */

typedef struct hdr_list {
	af_kv kv[64];
	size_t n;
} hdr_list;

static enum MHD_Result collect_acs3(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
	hdr_list *h = cls;
	if (h->n < 64 && (strcasecmp(key, "host") == 0 || strcasecmp(key, "content-type") == 0 ||
	                  strncasecmp(key, "x-acs-", 6) == 0)) {
		h->kv[h->n].key = key;
		h->kv[h->n].value = value ? value : "";
		h->n++;
	}
	return MHD_YES;
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

int sim_auth_acs3(af_sim *s, sim_req *r, sim_resp *resp, bool roa)
{
	const char *auth = sim_req_header(r, "Authorization");
	const char *date = sim_req_header(r, "x-acs-date");
	const char *nonce = sim_req_header(r, "x-acs-signature-nonce");
	const char *sha = sim_req_header(r, "x-acs-content-sha256");
	char cred[128], signed_hdrs[1024], sig[80], body_hash[65];
	int64_t ts;
	hdr_list h = {.n = 0};
	af_sign_steps steps;
	int acc, rc = 1;
	sim_account *a;

	if (!auth || !*auth)
		return ali_reject(s, r, resp, roa, 400, "MissingAuthorization",
		                  "Authorization is mandatory for this action.");
	if (strncmp(auth, "ACS3-HMAC-SHA256 ", 17) != 0 ||
	    auth_field(cred, sizeof(cred), auth + 17, "Credential") < 0 ||
	    auth_field(signed_hdrs, sizeof(signed_hdrs), auth + 17, "SignedHeaders") < 0 ||
	    auth_field(sig, sizeof(sig), auth + 17, "Signature") < 0)
		return ali_reject(s, r, resp, roa, 400, "IncompleteSignature",
		                  "The Authorization header is not a valid ACS3-HMAC-SHA256 one.");
	acc = sim_account_by_key(s, SIM_ALIBABA, cred);
	if (acc < 0)
		return ali_reject(s, r, resp, roa, 404, "InvalidAccessKeyId.NotFound",
		                  "Specified access key is not found.");
	a = &s->accounts[acc];
	if (parse_acs_date(&ts, date) < 0)
		return ali_reject(s, r, resp, roa, 400, "InvalidTimeStamp.Format",
		                  "Specified time stamp or date value is not well formatted.");
	if (llabs(ts - (int64_t)time(NULL)) > ACS3_SKEW)
		return ali_reject(s, r, resp, roa, 400, "InvalidTimeStamp.Expired",
		                  "Specified time stamp or date value is expired.");
	if (!nonce || !*nonce)
		return ali_reject(s, r, resp, roa, 400, "MissingSignatureNonce",
		                  "x-acs-signature-nonce is mandatory for this action.");
	af_sha256_hex(body_hash, r->body.data ? r->body.data : "", r->body.len);
	if (sha && strcmp(sha, body_hash) != 0)
		return ali_reject(s, r, resp, roa, 400, "SignatureDoesNotMatch",
		                  "x-acs-content-sha256 does not match the request body.");

	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_acs3, &h);
	af_acs3_input in = {
	    .method = r->method,
	    .canonical_uri = r->path,
	    .query = r->params,
	    .nquery = r->nparams,
	    .headers = h.kv,
	    .nheaders = h.n,
	    .payload_hash = body_hash,
	    .access_key_id = a->key_id,
	    .access_key_secret = a->secret,
	};
	af_sign_steps_init(&steps);
	if (af_acs3_sign(&steps, &in) < 0) {
		ali_reject(s, r, resp, roa, 400, "SignatureDoesNotMatch",
		           "The request cannot be canonicalized.");
		goto done;
	}
	/* SignedHeaders must name exactly the headers that arrived (every x-acs-*) */
	if (strcmp(steps.signed_headers.data ? steps.signed_headers.data : "", signed_hdrs) != 0 ||
	    strlen(sig) != 64 || CRYPTO_memcmp(sig, steps.signature, 64) != 0) {
		if (s->opt.verbose)
			fprintf(stderr,
			        "aifleet-sim: %s: ACS3 mismatch; server canonical request:\n%s\n",
			        r->request_id, steps.canonical_request.data);
		ali_reject(s, r, resp, roa, 400, "SignatureDoesNotMatch",
		           "The request signature does not conform to Aliyun standards.");
		goto done;
	}
	if (a->token && !same_secret(a->token, sim_req_header(r, "x-acs-security-token"))) {
		ali_reject(s, r, resp, roa, 400, "InvalidSecurityToken.MismatchWithAccessKey",
		           "The security token does not match the access key.");
		goto done;
	}
	if (nonce_seen(s, a->label, nonce)) {
		ali_reject(s, r, resp, roa, 400, "SignatureNonceUsed",
		           "Specified signature nonce was used already.");
		goto done;
	}
	r->account = acc;
	rc = 0;
done:
	af_sign_steps_free(&steps);
	return rc;
}

/* ---- TC3 ---- */

int sim_auth_tc3(af_sim *s, sim_req *r, sim_resp *resp)
{
	const char *auth = sim_req_header(r, "Authorization");
	const char *tsh = sim_req_header(r, "X-TC-Timestamp");
	const char *host = sim_req_header(r, "Host");
	const char *ct = sim_req_header(r, "Content-Type");
	char cred[256], signed_hdrs[256], sig[80], body_hash[65], date[16];
	char *id, *cdate, *service, *term, *save = NULL, *endp = NULL;
	char host_noport[256];
	int64_t ts;
	int acc, rc = 1;
	af_sign_steps steps;
	sim_account *a;

	af_sign_steps_init(&steps);
	if (!auth || !*auth)
		return tc_reject(s, r, resp, "AuthFailure.InvalidAuthorization",
		                 "Authorization is missing.");
	if (strncmp(auth, "TC3-HMAC-SHA256 ", 16) != 0 ||
	    auth_field(cred, sizeof(cred), auth + 16, "Credential") < 0 ||
	    auth_field(signed_hdrs, sizeof(signed_hdrs), auth + 16, "SignedHeaders") < 0 ||
	    auth_field(sig, sizeof(sig), auth + 16, "Signature") < 0)
		return tc_reject(s, r, resp, "AuthFailure.InvalidAuthorization",
		                 "The Authorization header is not a valid TC3-HMAC-SHA256 one.");
	id = strtok_r(cred, "/", &save);
	cdate = strtok_r(NULL, "/", &save);
	service = strtok_r(NULL, "/", &save);
	term = strtok_r(NULL, "/", &save);
	if (!id || !cdate || !service || !term || strcmp(term, "tc3_request") != 0)
		return tc_reject(s, r, resp, "AuthFailure.InvalidAuthorization",
		                 "The credential scope is malformed.");
	acc = sim_account_by_key(s, SIM_TENCENT, id);
	if (acc < 0)
		return tc_reject(s, r, resp, "AuthFailure.SecretIdNotFound",
		                 "The SecretId is not found.");
	a = &s->accounts[acc];
	if (strcmp(service, "tione") != 0)
		return tc_reject(s, r, resp, "AuthFailure.InvalidAuthorization",
		                 "The credential scope service must be tione.");
	ts = tsh ? strtoll(tsh, &endp, 10) : 0;
	if (!tsh || !*tsh || *endp)
		return tc_reject(s, r, resp, "AuthFailure.InvalidAuthorization",
		                 "X-TC-Timestamp is missing or malformed.");
	if (llabs(ts - (int64_t)time(NULL)) > TC3_SKEW)
		return tc_reject(s, r, resp, "AuthFailure.SignatureExpire",
		                 "Signature expired: the timestamp is more than 5 minutes off.");
	{
		time_t tt = (time_t)ts;
		struct tm tm;
		gmtime_r(&tt, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	}
	if (strcmp(date, cdate) != 0 || strcmp(signed_hdrs, "content-type;host") != 0 ||
	    strlen(sig) != 64 || !host || !ct)
		return tc_reject(s, r, resp, "AuthFailure.SignatureFailure",
		                 "The provided credentials could not be validated.");
	af_sha256_hex(body_hash, r->body.data ? r->body.data : "", r->body.len);
	af_tc3_input in = {
	    .method = r->method,
	    .query = r->nparams ? r->params : NULL,
	    .nquery = r->nparams,
	    .content_type = ct,
	    .host = host,
	    .payload_hash = body_hash,
	    .service = service,
	    .timestamp = ts,
	    .secret_id = a->key_id,
	    .secret_key = a->secret,
	};
	bool ok = af_tc3_sign(&steps, &in) == 0 && CRYPTO_memcmp(sig, steps.signature, 64) == 0;
	if (!ok && strchr(host, ':')) {
		/* the official SDKs sign the host without the port */
		snprintf(host_noport, sizeof(host_noport), "%s", host);
		*strrchr(host_noport, ':') = '\0';
		in.host = host_noport;
		af_sign_steps_free(&steps);
		af_sign_steps_init(&steps);
		ok = af_tc3_sign(&steps, &in) == 0 && CRYPTO_memcmp(sig, steps.signature, 64) == 0;
	}
	if (!ok) {
		tc_reject(s, r, resp, "AuthFailure.SignatureFailure",
		          "The provided credentials could not be validated.");
		goto done;
	}
	if (a->token && !same_secret(a->token, sim_req_header(r, "X-TC-Token"))) {
		tc_reject(s, r, resp, "AuthFailure.TokenFailure", "The token is invalid.");
		goto done;
	}
	r->account = acc;
	rc = 0;
done:
	af_sign_steps_free(&steps);
	return rc;
}
