/*
 * ACS3-HMAC-SHA256 (Alibaba Cloud V3) and TC3-HMAC-SHA256 (Tencent Cloud API
 * 3.0) request signing, SPEC.md sections 1 and 2. Pure functions: the caller
 * supplies the clock and the nonce, so the official vectors reproduce.
 */
#include "aifleet/sign.h"
#include "aifleet/error.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void hex_lower(char *out, const unsigned char *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

void af_sha256_hex(char out[65], const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	/* EVP_Digest only fails on allocation failure inside OpenSSL; an
	 * empty string then guarantees no signature can match. */
	if (!EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
		out[0] = '\0';
		return;
	}
	hex_lower(out, md, 32);
}

int af_hmac_sha256(unsigned char out[32], const void *key, size_t keylen, const void *msg,
		   size_t msglen)
{
	unsigned int outlen = 0;

	if (keylen > INT32_MAX)
		return af_error_set(AF_ERR_GENERIC, "HMAC key too long");
	if (!HMAC(EVP_sha256(), key ? key : "", (int)keylen, msg ? msg : (const void *)"", msglen,
		  out, &outlen) ||
	    outlen != 32)
		return af_error_set(AF_ERR_GENERIC, "HMAC-SHA256 failed");
	return 0;
}

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

int af_rfc3986_encode(af_buf *out, const char *s, size_t len)
{
	static const char digits[] = "0123456789ABCDEF";
	int err;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char enc[3];

		if (is_unreserved(c)) {
			if ((err = af_buf_append(out, &s[i], 1)) < 0)
				return err;
			continue;
		}
		enc[0] = '%';
		enc[1] = digits[c >> 4];
		enc[2] = digits[c & 0x0f];
		if ((err = af_buf_append(out, enc, 3)) < 0)
			return err;
	}
	/* Keep the buffer a valid (empty) C string even for empty input. */
	if (!af_buf_data(out))
		return af_buf_append(out, "", 0);
	return 0;
}

int af_rfc3986_encode_path(af_buf *out, const char *path)
{
	const char *p = path, *slash;
	int err;

	if (!path)
		return af_error_set(AF_ERR_PARAM, "path is NULL");
	for (;;) {
		slash = strchr(p, '/');
		if ((err = af_rfc3986_encode(out, p, slash ? (size_t)(slash - p) : strlen(p))) < 0)
			return err;
		if (!slash)
			break;
		if ((err = af_buf_append(out, "/", 1)) < 0)
			return err;
		p = slash + 1;
	}
	return 0;
}

typedef struct enc_pair {
	char *key;
	char *value;
} enc_pair;

static int pair_cmp(const void *a, const void *b)
{
	const enc_pair *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : strcmp(x->value, y->value);
}

static int encode_dup(char **out, const char *s)
{
	af_buf b = AF_BUF_INIT;
	int err;

	if ((err = af_rfc3986_encode(&b, s ? s : "", s ? strlen(s) : 0)) < 0) {
		af_buf_free(&b);
		return err;
	}
	*out = af_buf_detach(&b);
	return 0;
}

int af_canonical_query(af_buf *out, const af_kv *params, size_t n)
{
	enc_pair *pairs = NULL;
	size_t done_n = 0;
	int err = 0;

	if ((err = af_buf_append(out, "", 0)) < 0)
		return err;
	if (n == 0)
		return 0;
	if (!(pairs = calloc(n, sizeof(*pairs))))
		return af_error_oom();
	for (; done_n < n; done_n++) {
		if (!params[done_n].key) {
			err = af_error_set(AF_ERR_PARAM, "query parameter %zu has no name", done_n);
			goto done;
		}
		if ((err = encode_dup(&pairs[done_n].key, params[done_n].key)) < 0)
			goto done;
		if ((err = encode_dup(&pairs[done_n].value, params[done_n].value)) < 0) {
			free(pairs[done_n].key);
			goto done;
		}
	}
	/* Byte order of the encoded names, as both providers specify. */
	qsort(pairs, n, sizeof(*pairs), pair_cmp);
	for (size_t i = 0; i < n; i++) {
		if ((err = af_buf_printf(out, "%s%s=%s", i ? "&" : "", pairs[i].key,
					 pairs[i].value)) < 0)
			goto done;
	}
done:
	for (size_t i = 0; i < done_n; i++) {
		free(pairs[i].key);
		free(pairs[i].value);
	}
	free(pairs);
	return err;
}

void af_sign_steps_init(af_sign_steps *s)
{
	af_buf_init(&s->canonical_request, 0);
	s->canonical_request_hash[0] = '\0';
	af_buf_init(&s->string_to_sign, 0);
	af_buf_init(&s->signed_headers, 0);
	s->signature[0] = '\0';
	af_buf_init(&s->authorization, 0);
}

void af_sign_steps_free(af_sign_steps *s)
{
	if (!s)
		return;
	af_buf_free(&s->canonical_request);
	af_buf_free(&s->string_to_sign);
	af_buf_free(&s->signed_headers);
	/* The Authorization value carries the AccessKeyId / SecretId. */
	af_buf_free_secret(&s->authorization);
	s->canonical_request_hash[0] = '\0';
	s->signature[0] = '\0';
}

static void steps_reset(af_sign_steps *s)
{
	af_buf_reset(&s->canonical_request);
	af_buf_reset(&s->string_to_sign);
	af_buf_reset(&s->signed_headers);
	af_buf_reset(&s->authorization);
	s->canonical_request_hash[0] = '\0';
	s->signature[0] = '\0';
}

typedef struct canon_header {
	char *name;  /* lowercased */
	const char *value; /* trimmed start, `vlen` bytes */
	size_t vlen;
} canon_header;

static int header_cmp(const void *a, const void *b)
{
	const canon_header *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static int acs3_header_is_signed(const char *lname)
{
	return strcmp(lname, "host") == 0 || strcmp(lname, "content-type") == 0 ||
	       strncmp(lname, "x-acs-", 6) == 0;
}

static void trim(const char *v, const char **start, size_t *len)
{
	const char *end;

	while (*v == ' ' || *v == '\t')
		v++;
	end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*start = v;
	*len = (size_t)(end - v);
}

/* Appends CanonicalHeaders to cr and the SignedHeaders list to sh. */
static int acs3_canonical_headers(af_buf *cr, af_buf *sh, const af_kv *headers, size_t n)
{
	canon_header *h = NULL;
	size_t nh = 0;
	int err = 0;

	if (n && !(h = calloc(n, sizeof(*h))))
		return af_error_oom();
	for (size_t i = 0; i < n; i++) {
		char *lname;

		if (!headers[i].key || !headers[i].value) {
			err = af_error_set(AF_ERR_PARAM, "header %zu has no name or value", i);
			goto done;
		}
		if (!(lname = strdup(headers[i].key))) {
			err = af_error_oom();
			goto done;
		}
		for (char *p = lname; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (!acs3_header_is_signed(lname)) {
			free(lname);
			continue;
		}
		h[nh].name = lname;
		trim(headers[i].value, &h[nh].value, &h[nh].vlen);
		nh++;
	}
	qsort(h, nh, sizeof(*h), header_cmp);
	for (size_t i = 0; i < nh; i++) {
		if ((err = af_buf_printf(cr, "%s:%.*s\n", h[i].name, (int)h[i].vlen,
					 h[i].value)) < 0 ||
		    (err = af_buf_printf(sh, "%s%s", i ? ";" : "", h[i].name)) < 0)
			goto done;
	}
	if ((err = af_buf_append(sh, "", 0)) < 0)
		goto done;
done:
	for (size_t i = 0; i < nh; i++)
		free(h[i].name);
	free(h);
	return err;
}

int af_acs3_sign(af_sign_steps *out, const af_acs3_input *in)
{
	unsigned char mac[32];
	int err;

	steps_reset(out);
	if (!in->method || !in->canonical_uri || !in->access_key_id || !in->access_key_secret)
		return af_error_set(AF_ERR_PARAM,
				    "ACS3 signing needs method, canonical URI and credentials");
	if ((err = af_buf_printf(&out->canonical_request, "%s\n%s\n", in->method,
				 in->canonical_uri)) < 0 ||
	    (err = af_canonical_query(&out->canonical_request, in->query, in->nquery)) < 0 ||
	    (err = af_buf_append(&out->canonical_request, "\n", 1)) < 0 ||
	    (err = acs3_canonical_headers(&out->canonical_request, &out->signed_headers,
					  in->headers, in->nheaders)) < 0 ||
	    (err = af_buf_printf(&out->canonical_request, "\n%s\n%s",
				 af_buf_data(&out->signed_headers),
				 in->payload_hash ? in->payload_hash : EMPTY_SHA256)) < 0)
		goto done;
	af_sha256_hex(out->canonical_request_hash, af_buf_data(&out->canonical_request),
		      af_buf_len(&out->canonical_request));
	if ((err = af_buf_printf(&out->string_to_sign, "ACS3-HMAC-SHA256\n%s",
				 out->canonical_request_hash)) < 0)
		goto done;
	if ((err = af_hmac_sha256(mac, in->access_key_secret, strlen(in->access_key_secret),
				  af_buf_data(&out->string_to_sign),
				  af_buf_len(&out->string_to_sign))) < 0)
		goto done;
	hex_lower(out->signature, mac, sizeof(mac));
	err = af_buf_printf(&out->authorization,
			    "ACS3-HMAC-SHA256 Credential=%s,SignedHeaders=%s,Signature=%s",
			    in->access_key_id, af_buf_data(&out->signed_headers), out->signature);
done:
	OPENSSL_cleanse(mac, sizeof(mac));
	return err;
}

static int tc3_date(char out[11], int64_t ts)
{
	time_t t = (time_t)ts;
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(out, 11, "%Y-%m-%d", &tm) != 10)
		return af_error_set(AF_ERR_PARAM, "TC3 timestamp %lld out of range", (long long)ts);
	return 0;
}

int af_tc3_sign(af_sign_steps *out, const af_tc3_input *in)
{
	unsigned char k1[32], k2[32], k3[32], mac[32];
	char date[11];
	const char *ct, *host;
	size_t ctlen, hostlen;
	af_buf key = AF_BUF_INIT;
	int err;

	steps_reset(out);
	if (!in->method || !in->content_type || !in->host || !in->service || !in->service[0] ||
	    !in->secret_id || !in->secret_key)
		return af_error_set(AF_ERR_PARAM, "TC3 signing needs method, content type, host, "
						  "service and credentials");
	if ((err = tc3_date(date, in->timestamp)) < 0)
		return err;
	trim(in->content_type, &ct, &ctlen);
	trim(in->host, &host, &hostlen);
	if ((err = af_buf_printf(&out->canonical_request, "%s\n%s\n", in->method,
				 in->canonical_uri ? in->canonical_uri : "/")) < 0 ||
	    (err = af_canonical_query(&out->canonical_request, in->query, in->nquery)) < 0 ||
	    (err = af_buf_printf(&out->canonical_request,
				 "\ncontent-type:%.*s\nhost:%.*s\n\ncontent-type;host\n%s",
				 (int)ctlen, ct, (int)hostlen, host,
				 in->payload_hash ? in->payload_hash : EMPTY_SHA256)) < 0 ||
	    (err = af_buf_puts(&out->signed_headers, "content-type;host")) < 0)
		goto done;
	af_sha256_hex(out->canonical_request_hash, af_buf_data(&out->canonical_request),
		      af_buf_len(&out->canonical_request));
	if ((err = af_buf_printf(&out->string_to_sign, "TC3-HMAC-SHA256\n%lld\n%s/%s/tc3_request\n%s",
				 (long long)in->timestamp, date, in->service,
				 out->canonical_request_hash)) < 0)
		goto done;
	if ((err = af_buf_printf(&key, "TC3%s", in->secret_key)) < 0 ||
	    (err = af_hmac_sha256(k1, af_buf_data(&key), af_buf_len(&key), date, strlen(date))) <
		0 ||
	    (err = af_hmac_sha256(k2, k1, sizeof(k1), in->service, strlen(in->service))) < 0 ||
	    (err = af_hmac_sha256(k3, k2, sizeof(k2), "tc3_request", 11)) < 0 ||
	    (err = af_hmac_sha256(mac, k3, sizeof(k3), af_buf_data(&out->string_to_sign),
				  af_buf_len(&out->string_to_sign))) < 0)
		goto done;
	hex_lower(out->signature, mac, sizeof(mac));
	err = af_buf_printf(&out->authorization,
			    "TC3-HMAC-SHA256 Credential=%s/%s/%s/tc3_request, "
			    "SignedHeaders=content-type;host, Signature=%s",
			    in->secret_id, date, in->service, out->signature);
done:
	af_buf_free_secret(&key);
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	OPENSSL_cleanse(k3, sizeof(k3));
	OPENSSL_cleanse(mac, sizeof(mac));
	return err;
}

void af_acs3_format_date(char out[21], int64_t unix_seconds)
{
	time_t t = (time_t)unix_seconds;
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) != 20)
		out[0] = '\0';
}

int af_sign_nonce(char out[33])
{
	unsigned char raw[16];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return af_error_set(AF_ERR_GENERIC, "RAND_bytes failed: no nonce");
	hex_lower(out, raw, sizeof(raw));
	return 0;
}
