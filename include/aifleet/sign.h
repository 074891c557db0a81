#ifndef AIFLEET_SIGN_H
#define AIFLEET_SIGN_H

/*
 * Request signing for the two clouds, pure functions (no I/O, no clock):
 *   ACS3-HMAC-SHA256  Alibaba Cloud V3 signature (RPC and ROA)
 *   TC3-HMAC-SHA256   Tencent Cloud API 3.0 signature
 * See ../shared/api/SPEC.md sections 1 and 2. Every intermediate step is
 * exposed in af_sign_steps so the official vectors can be checked byte for
 * byte, and so the simulator can verify what arrived on the wire.
 */

#include <stddef.h>
#include <stdint.h>

#include "aifleet/buf.h"

typedef struct af_kv {
	const char *key;
	const char *value;
} af_kv;

/* Lowercase hex SHA-256 of data into out (65 bytes with NUL). */
void af_sha256_hex(char out[65], const void *data, size_t len);
/* HMAC-SHA256 into out (32 raw bytes). Returns 0 or AF_ERR_GENERIC. */
int af_hmac_sha256(unsigned char out[32], const void *key, size_t keylen, const void *msg,
		   size_t msglen);

/* RFC 3986 percent-encoding over UTF-8 bytes: keeps A-Z a-z 0-9 - _ . ~,
 * everything else %XX with uppercase hex (space -> %20, '*' -> %2A). */
int af_rfc3986_encode(af_buf *out, const char *s, size_t len);
/* The same per path segment: '/' separators are kept. */
int af_rfc3986_encode_path(af_buf *out, const char *path);

/* Canonical query string from decoded parameters: each name and value
 * RFC 3986-encoded, sorted by encoded name (then value), joined with '&';
 * an empty value gives "k=". Order of `params` does not matter. */
int af_canonical_query(af_buf *out, const af_kv *params, size_t n);

typedef struct af_sign_steps {
	af_buf canonical_request;
	char canonical_request_hash[65];
	af_buf string_to_sign;
	af_buf signed_headers;
	char signature[65];
	af_buf authorization; /* the full Authorization header value */
} af_sign_steps;

void af_sign_steps_init(af_sign_steps *s);
void af_sign_steps_free(af_sign_steps *s);

typedef struct af_acs3_input {
	const char *method;        /* GET, POST */
	const char *canonical_uri; /* "/" for RPC; the encoded ROA path as sent */
	const af_kv *query;        /* decoded query parameters (flattened: Tag.1.Key) */
	size_t nquery;
	const af_kv *headers;      /* headers sent; host, content-type and x-acs-* are signed */
	size_t nheaders;
	const char *payload_hash;  /* af_sha256_hex of the body bytes */
	const char *access_key_id;
	const char *access_key_secret;
} af_acs3_input;

int af_acs3_sign(af_sign_steps *out, const af_acs3_input *in);

typedef struct af_tc3_input {
	const char *method;       /* POST (query empty) or GET */
	const af_kv *query;       /* decoded query parameters for GET; NULL for POST */
	size_t nquery;
	const char *content_type; /* exactly the Content-Type header sent */
	const char *host;         /* exactly the Host header sent */
	const char *payload_hash; /* af_sha256_hex of the body bytes */
	const char *service;      /* credential-scope service, e.g. "tione" */
	int64_t timestamp;        /* X-TC-Timestamp, Unix seconds */
	const char *secret_id;
	const char *secret_key;
	/* Added after the first contract, so NULL keeps the old behaviour:
	 * the canonical URI, i.e. the path as sent; NULL means "/". */
	const char *canonical_uri;
} af_tc3_input;

int af_tc3_sign(af_sign_steps *out, const af_tc3_input *in);

/* x-acs-date value for a Unix time: yyyy-MM-ddTHH:mm:ssZ (UTC). */
void af_acs3_format_date(char out[21], int64_t unix_seconds);
/* A fresh random nonce: 32 lowercase hex characters. */
int af_sign_nonce(char out[33]);

#endif
