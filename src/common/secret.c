/*
 * The secret policy (include/aifleet/secret.h): names, values, tree copies
 * and text redaction. Byte-oriented and locale-free on purpose: a secret
 * hidden behind a NUL, invalid UTF-8 or an odd spelling must still be seen.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/error.h"
#include "aifleet/secret.h"

#define REDACTED_LEN (sizeof(AF_SECRET_REDACTED) - 1)
/* An "sk-" key has at least this many key characters after the prefix. */
#define SK_MIN 16
/* Bytes that may separate the letters of a name: "API-KEY", "api__key". */
#define NAME_GAP 3

/* Folded: ASCII letters and digits only, lower case. */
static const char *const secret_names[] = {
    "apikey",    "apisecret",     "accesskeysecret", "secretaccesskey",
    "secretkey", "clientsecret",  "privatekey",      "password",
    "passwd",    "securitytoken", "sessiontoken",    "accesstoken",
    "authtoken", "refreshtoken",  "bearertoken",     "tctoken",
};

static bool is_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 'a' - 'A') : c;
}

static bool is_key_char(unsigned char c)
{
	return is_alnum(c) || c == '-' || c == '_';
}

static bool is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Between a name and its value: "apiKey\" : \"x". */
static bool is_filler(unsigned char c)
{
	return c == '"' || c == '\'' || c == '\\' || is_blank(c);
}

static bool ends_value(unsigned char c)
{
	switch (c) {
	case '"':
	case '\'':
	case '\\':
	case ',':
	case ';':
	case '&':
	case ')':
	case ']':
	case '}':
	case '<':
	case '>':
		return true;
	default:
		return is_blank(c);
	}
}

/* The bytes a secret name can start with (either case), from
 * secret_names: name_at looks at every byte of a page, and most start
 * none. */
static bool name_start[256];
static pthread_once_t name_start_once = PTHREAD_ONCE_INIT;

static void fill_name_start(void)
{
	for (size_t n = 0; n < sizeof(secret_names) / sizeof(secret_names[0]); n++) {
		unsigned char c = (unsigned char)secret_names[n][0];

		name_start[c] = true;
		if (c >= 'a' && c <= 'z')
			name_start[c - 'a' + 'A'] = true;
	}
}

/* Length of the secret name spelled from s[0], or 0. */
static size_t name_at(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;

	pthread_once(&name_start_once, fill_name_start);
	if (!len || !name_start[u[0]])
		return 0;
	for (size_t n = 0; n < sizeof(secret_names) / sizeof(secret_names[0]); n++) {
		const char *q = secret_names[n];
		size_t p = 0;

		if (!len || lower(u[0]) != (unsigned char)*q)
			continue;
		for (p = 1, q++; *q; p++, q++) {
			for (size_t gap = 0; p < len && !is_alnum(u[p]) && gap < NAME_GAP; gap++)
				p++;
			if (p >= len || lower(u[p]) != (unsigned char)*q)
				break;
		}
		if (!*q)
			return p;
	}
	return 0;
}

static bool names_in(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (name_at(s + i, len - i))
			return true;
	return false;
}

bool af_secret_name(const char *name)
{
	return name && names_in(name, strlen(name));
}

/* Length of an "sk-" key starting at s[i], or 0. */
static size_t sk_at(const char *s, size_t len, size_t i)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = 0;

	if (len - i < 3 + SK_MIN || memcmp(s + i, "sk-", 3) != 0 || (i > 0 && is_alnum(u[i - 1])))
		return 0;
	while (i + 3 + n < len && is_key_char(u[i + 3 + n]))
		n++;
	return n >= SK_MIN ? 3 + n : 0;
}

/* A secret name at s[i] followed by a value: the value's span. */
static bool pair_at(const char *s, size_t len, size_t i, size_t *start, size_t *end)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = name_at(s + i, len - i), j, k;

	if (!n)
		return false;
	for (j = i + n; j < len && is_filler(u[j]); j++)
		;
	if (j >= len || (u[j] != '=' && u[j] != ':'))
		return false;
	for (j++; j < len && is_filler(u[j]); j++)
		;
	if (len - j >= REDACTED_LEN && memcmp(s + j, AF_SECRET_REDACTED, REDACTED_LEN) == 0)
		return false;
	for (k = j; k < len && !ends_value(u[k]); k++)
		;
	if (k == j)
		return false;
	*start = j;
	*end = k;
	return true;
}

/* The first secret value at or after `from`. Scanning on from its end
 * gives the same spans as scanning the redacted text: a span always ends
 * before a byte that can start neither a name nor a key. */
static bool next_secret(const char *s, size_t len, size_t from, size_t *start, size_t *end)
{
	for (size_t i = from; i < len; i++) {
		size_t n = s[i] == 's' ? sk_at(s, len, i) : 0;

		if (n) {
			*start = i;
			*end = i + n;
			return true;
		}
		if (pair_at(s, len, i, start, end))
			return true;
	}
	return false;
}

bool af_secret_text(const char *s, size_t len)
{
	size_t a, b;

	return s && next_secret(s, len, 0, &a, &b);
}

char *af_secret_redact(const char *s, size_t len, size_t *out_len)
{
	size_t pos = 0, start, end, n = 0;
	char *out, *o;

	while (next_secret(s, len, pos, &start, &end)) {
		n += start - pos + REDACTED_LEN;
		pos = end;
	}
	n += len - pos;
	if (!(out = malloc(n + 1)))
		return NULL;
	o = out;
	pos = 0;
	while (next_secret(s, len, pos, &start, &end)) {
		memcpy(o, s + pos, start - pos);
		o += start - pos;
		memcpy(o, AF_SECRET_REDACTED, REDACTED_LEN);
		o += REDACTED_LEN;
		pos = end;
	}
	memcpy(o, s + pos, len - pos);
	o[len - pos] = '\0';
	if (out_len)
		*out_len = n;
	return out;
}

bool af_secret_redact_in_place(char *buf, size_t size)
{
	size_t len, n;
	char *red;

	if (!buf || !size)
		return false;
	len = strnlen(buf, size - 1);
	buf[len] = '\0';
	if (!af_secret_text(buf, len))
		return false;
	if (!(red = af_secret_redact(buf, len, &n))) {
		/* no memory to redact precisely: drop the whole text */
		snprintf(buf, size, "%s", AF_SECRET_REDACTED);
		return true;
	}
	snprintf(buf, size, "%s", red);
	free(red);
	return true;
}

/* ---- trees ---- */

static int copy_node(json_object **out, json_object *o, int depth, bool *changed);

static bool string_is_secret_name(json_object *v)
{
	return v && json_object_is_type(v, json_type_string) &&
	       names_in(json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

/* {"Key": "apiKey", "Value": ...} and {"Name": "OPENAI_API_KEY", "Value":
 * ...} hide a secret as well as a member named apiKey does. */
static bool pair_names_secret(json_object *o)
{
	static const char *const keys[] = {"Key", "TagKey", "key", "tagKey", "Name", "name"};
	json_object *v;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (json_object_object_get_ex(o, keys[i], &v) && string_is_secret_name(v))
			return true;
	return false;
}

static bool is_pair_value(const char *k)
{
	return strcmp(k, "Value") == 0 || strcmp(k, "TagValue") == 0 || strcmp(k, "value") == 0 ||
	       strcmp(k, "tagValue") == 0;
}

static bool looks_like_json(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && is_blank((unsigned char)s[i]))
		i++;
	return i < len && (s[i] == '{' || s[i] == '[');
}

/* json-c stops at a NUL and cuts keys at \u0000: what follows is unseen. */
static bool has_nul(const char *s, size_t len)
{
	if (memchr(s, '\0', len))
		return true;
	for (size_t i = 0; i + 6 <= len; i++)
		if (s[i] == '\\' && memcmp(s + i + 1, "u0000", 5) == 0)
			return true;
	return false;
}

static bool blank_from(const char *s, size_t from, size_t len)
{
	for (size_t i = from; i < len; i++)
		if (!is_blank((unsigned char)s[i]))
			return false;
	return true;
}

/* A string that holds JSON: inspected as a tree, re-serialized only when
 * something was taken out. *out NULL means "replace by null". */
static int copy_embedded(json_object **out, json_object *o, const char *s, size_t len, int depth,
                         bool *changed)
{
	int limit = AF_SECRET_MAX_DEPTH - depth, err = 0;
	json_tokener *tok = NULL;
	json_object *inner = NULL, *clean = NULL;
	bool inner_changed = false;
	const char *text;

	*out = NULL;
	if (limit < 1 || len > INT_MAX || has_nul(s, len))
		goto drop;
	/* json-c's depth N admits N - 1 nested containers */
	if (!(tok = json_tokener_new_ex(limit + 1)))
		goto nomem;
	inner = json_tokener_parse_ex(tok, s, (int)len);
	if (!inner || !blank_from(s, json_tokener_get_parse_end(tok), len)) {
		if (json_tokener_get_error(tok) == json_tokener_error_depth || names_in(s, len) ||
		    af_secret_text(s, len))
			goto drop;
		*out = json_object_get(o); /* not JSON after all: plain text */
		goto done;
	}
	if ((err = copy_node(&clean, inner, depth + 1, &inner_changed)) < 0)
		goto done;
	if (!inner_changed) {
		*out = json_object_get(o);
		goto done;
	}
	text = clean ? json_object_to_json_string_ext(clean, JSON_C_TO_STRING_PLAIN |
	                                                         JSON_C_TO_STRING_NOSLASHESCAPE)
	             : "null";
	if (!text || !(*out = json_object_new_string(text)))
		goto nomem;
	*changed = true;
	goto done;
drop:
	*changed = true;
	goto done;
nomem:
	err = af_error_set(AF_ERR_NOMEM, "out of memory removing secrets");
done:
	json_object_put(clean);
	json_object_put(inner);
	if (tok)
		json_tokener_free(tok);
	return err;
}

static int copy_string(json_object **out, json_object *o, int depth, bool *changed)
{
	const char *s = json_object_get_string(o);
	size_t len = (size_t)json_object_get_string_len(o), n;
	char *red;

	if (looks_like_json(s, len))
		return copy_embedded(out, o, s, len, depth, changed);
	if (!af_secret_text(s, len)) {
		*out = json_object_get(o);
		return 0;
	}
	if (!(red = af_secret_redact(s, len, &n)))
		return af_error_set(AF_ERR_NOMEM, "out of memory removing secrets");
	*out = n <= INT_MAX ? json_object_new_string_len(red, (int)n) : NULL;
	free(red);
	if (!*out)
		return af_error_set(AF_ERR_NOMEM, "out of memory removing secrets");
	*changed = true;
	return 0;
}

static int copy_object(json_object **out, json_object *o, int depth, bool *changed)
{
	bool pair = pair_names_secret(o);
	json_object *copy, *child;
	int err = 0;

	if (!(copy = json_object_new_object()))
		return af_error_set(AF_ERR_NOMEM, "out of memory removing secrets");
	json_object_object_foreach(o, k, v)
	{
		size_t klen = strlen(k);

		if (names_in(k, klen) || af_secret_text(k, klen) || (pair && is_pair_value(k))) {
			*changed = true;
			continue;
		}
		if ((err = copy_node(&child, v, depth + 1, changed)) < 0)
			goto fail;
		if (json_object_object_add(copy, k, child) < 0) {
			json_object_put(child);
			err = af_error_set(AF_ERR_NOMEM, "out of memory removing secrets");
			goto fail;
		}
	}
	*out = copy;
	return 0;
fail:
	json_object_put(copy);
	return err;
}

static int copy_array(json_object **out, json_object *o, int depth, bool *changed)
{
	size_t n = json_object_array_length(o);
	json_object *copy, *child;
	int err = 0;

	if (!(copy = json_object_new_array()))
		return af_error_set(AF_ERR_NOMEM, "out of memory removing secrets");
	for (size_t i = 0; i < n; i++) {
		if ((err = copy_node(&child, json_object_array_get_idx(o, i), depth + 1, changed)) <
		    0)
			goto fail;
		if (json_object_array_add(copy, child) < 0) {
			json_object_put(child);
			err = af_error_set(AF_ERR_NOMEM, "out of memory removing secrets");
			goto fail;
		}
	}
	*out = copy;
	return 0;
fail:
	json_object_put(copy);
	return err;
}

static int copy_node(json_object **out, json_object *o, int depth, bool *changed)
{
	*out = NULL;
	if (!o)
		return 0;
	if (depth > AF_SECRET_MAX_DEPTH) {
		*changed = true;
		return 0;
	}
	switch (json_object_get_type(o)) {
	case json_type_object:
		return copy_object(out, o, depth, changed);
	case json_type_array:
		return copy_array(out, o, depth, changed);
	case json_type_string:
		return copy_string(out, o, depth, changed);
	default:
		*out = json_object_get(o);
		return 0;
	}
}

int af_secret_copy(json_object **out, json_object *in)
{
	return af_secret_copy_nested(out, in, 0);
}

int af_secret_copy_nested(json_object **out, json_object *in, int depth)
{
	bool changed = false;

	return copy_node(out, in, depth, &changed);
}

bool af_secret_tree_has(json_object *o)
{
	json_object *copy = NULL;
	bool changed = false;
	int err = copy_node(&copy, o, 0, &changed);

	json_object_put(copy);
	if (err < 0)
		af_error_clear();
	return changed || err < 0;
}

void af_secret_redact_value(char *msg, size_t n, const char *secret)
{
	static const char mark[] = AF_SECRET_REDACTED;
	size_t sl, ml = sizeof(mark) - 1;
	char *p;

	if (!secret || (sl = strlen(secret)) < 4 || n <= ml)
		return;
	while ((p = strstr(msg, secret))) {
		size_t tail = strlen(p + sl);

		if ((size_t)(p - msg) + ml + tail + 1 > n)
			tail = n - (size_t)(p - msg) - ml - 1;
		memmove(p + ml, p + sl, tail);
		p[ml + tail] = '\0';
		memcpy(p, mark, ml);
	}
}
