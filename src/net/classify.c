/*
 * What an API answer means (success, retry, throttle, give up), the retry
 * delay, the token bucket, and the default endpoints: pure functions kept
 * apart from the libcurl code so that they are unit-tested directly.
 */
#include "aifleet/error.h"
#include "aifleet/http.h"
#include "aifleet/record.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool any_prefix(const char *code, const char *const *list)
{
	for (; *list; list++)
		if (has_prefix(code, *list))
			return true;
	return false;
}

/* Alibaba (SPEC.md section 7). Prefix matches: "Throttling" covers
 * Throttling.User and Throttling.Api. */
static const char *const ali_auth[] = {
	"SignatureDoesNotMatch", "InvalidAccessKeyId", "Forbidden",    "InvalidSecurityToken",
	"IncompleteSignature",   "InvalidTimeStamp",   "NoPermission",
	/* STS: AssumeRoleWithOIDC's refusals, EntityNotExist.Role for a role not there */
	"AuthenticationFail",    "EntityNotExist.Role", NULL,
};
static const char *const ali_param[] = {
	"InvalidParameter", "MissingParameter", "InvalidRegionId", "InvalidAction", "InvalidVersion",
	NULL,
};
static const char *const ali_throttle[] = {"Throttling", NULL};
/* SignatureNonceUsed: the same signed request arrived twice -- libcurl
 * resends a request whose kept-alive connection died under it. The next
 * attempt is signed afresh, so it is a retry, not an authentication failure. */
static const char *const ali_transient[] = {"ServiceUnavailable", "InternalError",
					     "SignatureNonceUsed", NULL};

/* Tencent: only the documented transient codes are retried. */
static const char *const tc_auth[] = {"AuthFailure", "UnauthorizedOperation", NULL};
static const char *const tc_param[] = {
	"InvalidParameter", "MissingParameter", "UnknownParameter", "InvalidAction", NULL,
};
static const char *const tc_throttle[] = {"RequestLimitExceeded", NULL};

static void copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

static const char *get_str(json_object *o, const char *a, const char *b)
{
	json_object *v;

	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	if (json_object_object_get_ex(o, a, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	if (b && json_object_object_get_ex(o, b, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

/* Parses the whole body as one JSON value; NULL and a description if not. */
static json_object *parse_body(const char *body, size_t len, char *why, size_t n)
{
	json_tokener *tok;
	json_object *o;
	enum json_tokener_error jerr;
	size_t end;

	if (!body || len == 0) {
		copy_str(why, n, "empty body");
		return NULL;
	}
	if (len > INT32_MAX) {
		copy_str(why, n, "body too large to parse");
		return NULL;
	}
	if (!(tok = json_tokener_new())) {
		copy_str(why, n, "out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!o || jerr != json_tokener_success) {
		/* A truncated document leaves the tokener waiting for more. */
		snprintf(why, n, "unparseable JSON body: %s",
			 jerr == json_tokener_continue ? "unexpected end of data"
						       : json_tokener_error_desc(jerr));
		json_object_put(o);
		json_tokener_free(tok);
		return NULL;
	}
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	for (; end < len; end++) {
		if (!strchr(" \t\r\n", body[end])) {
			copy_str(why, n, "unparseable JSON body: trailing data after the document");
			json_object_put(o);
			return NULL;
		}
	}
	return o;
}

static void verdict_fail(af_api_verdict *v, int klass, bool retry)
{
	v->klass = klass;
	v->retry = retry;
}

/*
 * An error can come with HTTP 200 too: a body with an error Code (or ROA's
 * lowercase code) or "success": false is that error, whatever the status.
 * Some ROA APIs put a success code in the body, so those values are not
 * errors.
 */
static bool alibaba_error_body(json_object *o)
{
	static const char *const ok_codes[] = {"200", "0", "OK", "Success", NULL};
	const char *code = get_str(o, "Code", "code");
	json_object *success = NULL;

	if (json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "success", &success) &&
	    json_object_is_type(success, json_type_boolean) && !json_object_get_boolean(success))
		return true;
	if (!code)
		return false;
	for (const char *const *ok = ok_codes; *ok; ok++)
		if (strcasecmp(code, *ok) == 0)
			return false;
	return true;
}

static void classify_alibaba(af_api_verdict *v, json_object **json, long status, json_object *o,
			     long retry_after_ms)
{
	const char *code = get_str(o, "Code", "code");

	copy_str(v->request_id, sizeof(v->request_id), get_str(o, "RequestId", "requestId"));
	if (status >= 200 && status < 300 && o && !alibaba_error_body(o)) {
		if (!json_object_is_type(o, json_type_object)) {
			copy_str(v->message, sizeof(v->message), "body is not a JSON object");
			verdict_fail(v, AF_ERR_DATA, false);
			return;
		}
		v->klass = 0;
		if (json)
			*json = json_object_get(o);
		return;
	}
	copy_str(v->code, sizeof(v->code), code);
	if (o && get_str(o, "Message", "message"))
		copy_str(v->message, sizeof(v->message), get_str(o, "Message", "message"));
	if (code && any_prefix(code, ali_auth))
		return verdict_fail(v, AF_ERR_AUTH, false);
	if (code && any_prefix(code, ali_param))
		return verdict_fail(v, AF_ERR_PARAM, false);
	if ((code && any_prefix(code, ali_throttle)) || status == 429 || retry_after_ms > 0) {
		v->throttled = true;
		return verdict_fail(v, AF_ERR_TRANSIENT, true);
	}
	if ((code && any_prefix(code, ali_transient)) || status >= 500)
		return verdict_fail(v, AF_ERR_TRANSIENT, true);
	if (status == 401 || status == 403)
		return verdict_fail(v, AF_ERR_AUTH, false);
	if (!o)
		return verdict_fail(v, AF_ERR_DATA, false);
	verdict_fail(v, AF_ERR_GENERIC, false);
}

static void classify_tencent(af_api_verdict *v, json_object **json, long status, json_object *o)
{
	json_object *resp = NULL, *error = NULL;
	const char *code;

	if (o && json_object_is_type(o, json_type_object))
		json_object_object_get_ex(o, "Response", &resp);
	if (resp && !json_object_is_type(resp, json_type_object))
		resp = NULL;
	copy_str(v->request_id, sizeof(v->request_id), get_str(resp, "RequestId", NULL));
	if (resp)
		json_object_object_get_ex(resp, "Error", &error);
	if (error) {
		/* Errors come with HTTP 200: the body decides, not the status. */
		code = get_str(error, "Code", NULL);
		copy_str(v->code, sizeof(v->code), code ? code : "UnknownError");
		copy_str(v->message, sizeof(v->message), get_str(error, "Message", NULL));
		if (!code)
			return verdict_fail(v, AF_ERR_DATA, false);
		if (any_prefix(code, tc_auth))
			return verdict_fail(v, AF_ERR_AUTH, false);
		if (any_prefix(code, tc_param))
			return verdict_fail(v, AF_ERR_PARAM, false);
		if (any_prefix(code, tc_throttle)) {
			v->throttled = true;
			return verdict_fail(v, AF_ERR_TRANSIENT, true);
		}
		if (strcmp(code, "InternalError") == 0)
			return verdict_fail(v, AF_ERR_TRANSIENT, true);
		return verdict_fail(v, AF_ERR_GENERIC, false);
	}
	if (status >= 500 || status == 429) {
		v->throttled = status == 429;
		return verdict_fail(v, AF_ERR_TRANSIENT, true);
	}
	if (status == 401 || status == 403)
		return verdict_fail(v, AF_ERR_AUTH, false);
	if (status != 200) {
		snprintf(v->message, sizeof(v->message), "unexpected HTTP status");
		return verdict_fail(v, o ? AF_ERR_GENERIC : AF_ERR_DATA, false);
	}
	if (!resp) {
		copy_str(v->message, sizeof(v->message), "no \"Response\" object in the body");
		return verdict_fail(v, AF_ERR_DATA, false);
	}
	v->klass = 0;
	if (json)
		*json = json_object_get(o);
}

void af_api_classify(af_api_verdict *out, json_object **json, af_api_style style,
		     long http_status, const char *body, size_t len, long retry_after_ms)
{
	char why[256];
	json_object *o;

	memset(out, 0, sizeof(*out));
	if (json)
		*json = NULL;
	if (http_status >= 300 && http_status < 400) {
		/* A signed request is only good for the host it was signed for. */
		copy_str(out->message, sizeof(out->message),
			 "a redirect, not followed: check the product's endpoint in the configuration");
		verdict_fail(out, AF_ERR_GENERIC, false);
		return;
	}
	o = parse_body(body, len, why, sizeof(why));
	if (!o && http_status >= 200 && http_status < 300) {
		copy_str(out->message, sizeof(out->message), why);
		verdict_fail(out, AF_ERR_DATA, false);
		return;
	}
	if (style == AF_API_TC3)
		classify_tencent(out, json, http_status, o);
	else
		classify_alibaba(out, json, http_status, o, retry_after_ms);
	if (!o && !out->message[0])
		copy_str(out->message, sizeof(out->message), why);
	json_object_put(o);
}

long af_backoff_delay_ms(long base_ms, long max_ms, int attempt, long retry_after_ms, double u)
{
	double cap;
	long d;

	if (max_ms < 0)
		max_ms = 0;
	if (retry_after_ms > 0)
		return retry_after_ms < max_ms ? retry_after_ms : max_ms;
	if (base_ms < 0)
		base_ms = 0;
	if (attempt < 0)
		attempt = 0;
	/* ldexp keeps base * 2^attempt finite for any attempt count. */
	cap = ldexp((double)base_ms, attempt > 62 ? 62 : attempt);
	if (cap > (double)max_ms)
		cap = (double)max_ms;
	if (!(u >= 0.0))
		u = 0.0;
	if (u >= 1.0)
		u = 0.999999;
	d = (long)floor(u * (cap + 1.0));
	return d > (long)cap ? (long)cap : d;
}

static void bucket_refill(af_token_bucket *b, double now)
{
	if (now > b->last) {
		b->tokens += (now - b->last) * b->rate;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last = now;
	}
}

void af_token_bucket_init(af_token_bucket *b, double rps, double burst, double now)
{
	if (!(rps > 0))
		rps = 1;
	if (!(burst >= 1))
		burst = 1;
	b->rate = rps;
	b->max_rate = rps;
	b->min_rate = rps < 1.0 ? rps : 1.0;
	b->burst = burst;
	b->tokens = burst;
	b->last = now;
}

double af_token_bucket_reserve(af_token_bucket *b, double now)
{
	bucket_refill(b, now);
	b->tokens -= 1.0;
	if (b->tokens >= 0)
		return 0;
	/* In debt: this caller's slot is when the debt is repaid. */
	return -b->tokens / b->rate;
}

void af_token_bucket_throttled(af_token_bucket *b, double now)
{
	/* Settle past refills at the old rate before the rate changes. */
	bucket_refill(b, now);
	b->rate *= 0.5;
	if (b->rate < b->min_rate)
		b->rate = b->min_rate;
}

void af_token_bucket_success(af_token_bucket *b, double now)
{
	double step = b->max_rate / 20.0;

	bucket_refill(b, now);
	if (step < 0.1)
		step = 0.1;
	b->rate += step;
	if (b->rate > b->max_rate)
		b->rate = b->max_rate;
}

static bool region_ok(const char *r)
{
	if (!r || !r[0])
		return false;
	for (; *r; r++)
		if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
			return false;
	return true;
}

int af_endpoint_expand(char *out, size_t n, const char *tmpl, const char *region)
{
	static const char ph[] = "{region}";
	size_t o = 0;

	if (!tmpl || n == 0)
		return af_error_set(AF_ERR_CONFIG, "no endpoint template");
	for (const char *p = tmpl; *p;) {
		const char *piece = p;
		size_t plen = 1;

		if (strncmp(p, ph, sizeof(ph) - 1) == 0) {
			if (!region_ok(region))
				return af_error_set(AF_ERR_CONFIG,
						    "endpoint %s needs a region, none given", tmpl);
			piece = region;
			plen = strlen(region);
			p += sizeof(ph) - 1;
		} else {
			p++;
		}
		if (o + plen >= n)
			return af_error_set(AF_ERR_LIMIT, "endpoint longer than %zu bytes", n);
		memcpy(out + o, piece, plen);
		o += plen;
	}
	out[o] = '\0';
	return 0;
}
