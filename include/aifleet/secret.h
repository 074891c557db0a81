#ifndef AIFLEET_SECRET_H
#define AIFLEET_SECRET_H

/*
 * The one secret policy: what is a secret, and how it is taken out of
 * payloads (normalizer raw and tags, --save-raw pages) and text (logs,
 * error messages). It fails closed: what it cannot inspect fully is
 * dropped, never kept.
 *
 * Secret names: member names that contain, compared on ASCII letters and
 * digits only and ignoring case (so apiKey = api_key = API-KEY =
 * "api key"), one of apikey, apisecret, accesskeysecret, secretaccesskey,
 * secretkey, clientsecret, privatekey, password, passwd, securitytoken,
 * sessiontoken, accesstoken, authtoken, refreshtoken, bearertoken,
 * tctoken.
 *
 * Secret values, anywhere inside a string:
 *   - "sk-" (not preceded by an ASCII letter or digit) followed by 16 or
 *     more of [A-Za-z0-9_-]: OpenAI-style keys (Bailian, DashScope, ...);
 *   - a secret name, then optional quotes, backslashes or blanks, '=' or
 *     ':', optional quotes, backslashes or blanks, and a value (up to a
 *     blank, quote, backslash or one of ,;&)]}<>): apiKey=x, "apiKey":"x".
 *     A value that is already "<redacted>" is not a secret.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* Nesting limit of af_secret_copy, embedded JSON strings included. */
#define AF_SECRET_MAX_DEPTH 64
/* The mark that replaces a secret; it does not look like JSON ('{' or
 * '['), so a redacted string stays what it was on a second look. */
#define AF_SECRET_REDACTED  "<redacted>"

/* True when a member name names a secret (NULL: false). */
bool af_secret_name(const char *name);

/* True when s[0..len) holds a secret value (NULs and invalid UTF-8 are
 * scanned like any other byte). */
bool af_secret_text(const char *s, size_t len);

/*
 * A copy of `in` without secrets; *out is NULL for a JSON null (or when
 * everything was dropped). Numbers, booleans and unchanged strings are
 * shared with `in` (reference counted); containers are new. Removed:
 *   - members whose name is a secret name or holds a secret value;
 *   - the Value/TagValue/value/tagValue of an object whose Key, TagKey,
 *     key, tagKey, Name or name is a secret name (tags, env lists);
 *   - in other strings, secret values, replaced by "<redacted>".
 * A string that looks like JSON (first non-blank is '{' or '[') is parsed
 * and inspected as a tree; it is re-serialized only when something was
 * removed. Replaced by null (fails closed):
 *   - anything nested deeper than AF_SECRET_MAX_DEPTH, embedded levels
 *     included (so embedded JSON that json-c refuses for its depth);
 *   - a JSON-looking string holding a NUL or a \u0000 escape (json-c would
 *     cut it there);
 *   - a JSON-looking string json-c cannot parse to its end when it
 *     contains a secret name or value (others are kept as text).
 * Returns 0 or AF_ERR_NOMEM.
 */
int af_secret_copy(json_object **out, json_object *in);

/* af_secret_copy for a value that stood `depth` levels down its document
 * (an element of a top-level list: AF_ITEMS_LEVELS), so that the nesting
 * limit counts as it would for the whole document. */
int af_secret_copy_nested(json_object **out, json_object *in, int depth);

/* True when af_secret_copy would change `o` (it holds a secret or
 * something it cannot inspect); true as well when out of memory. */
bool af_secret_tree_has(json_object *o);

/*
 * Text with every secret value replaced by "<redacted>", for log lines and
 * error messages. af_secret_redact returns a malloc'd NUL-terminated copy
 * (its length in *out_len if not NULL) or NULL when out of memory;
 * af_secret_redact_in_place rewrites a NUL-terminated string in a buffer
 * of `size` bytes, cutting the end if the result would not fit, and
 * returns true when it redacted something. Neither touches af_error, so
 * error paths may call them.
 */
char *af_secret_redact(const char *s, size_t len, size_t *out_len);
bool af_secret_redact_in_place(char *buf, size_t size);

/* Replaces every occurrence of one known secret value (a key, a token we
 * sent) in the NUL-terminated msg[n] with AF_SECRET_REDACTED; values
 * shorter than 4 bytes, or NULL, are left alone. */
void af_secret_redact_value(char *msg, size_t n, const char *secret);

#endif
