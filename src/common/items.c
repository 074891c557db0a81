/*
 * The compact store of a long JSON list (aifleet/items.h).
 *
 * af_items_split() works in two passes over the body. The first only
 * reads: it walks the top-level object, finds the member's elements
 * (their byte spans) and has json-c check each element and the rest of
 * the object; if anything is off, nothing was changed and the caller
 * parses the body whole. The second moves each element, without its
 * whitespace, to the front of the same allocation: every element's
 * compact text plus its NUL is no longer than its span plus the comma or
 * bracket after it, so the write position never passes the read position.
 *
 * The walk only has to find where values begin and end; json-c decides
 * what they are. So it is strict about the structure between the
 * elements, and gives up (rather than guess) on what could hide a bracket
 * or a comma from it: json-c's comments and single-quoted strings.
 */
#include "aifleet/items.h"
#include "aifleet/error.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A body's elements can hold a secret (a Hologres apiKey): wipe them. */
struct af_items {
	char *arena;   /* element texts, each NUL-terminated, back to back */
	size_t used;   /* bytes of the arena in use */
	size_t *start; /* element i is arena + start[i]; start[n] == used */
	size_t n;
};

typedef struct span {
	size_t begin, end;
} span;

/* The first pass: a cursor over the body and what it found. */
typedef struct walk {
	const char *s;
	size_t len, pos;
	const char *member;
	span list;   /* the member's value, brackets included */
	int found;   /* times the member was seen */
	span *elems; /* the elements' spans */
	size_t n, cap;
} walk;

/* ---- the walk ------------------------------------------------------------ */

static int peek(const walk *w)
{
	return w->pos < w->len ? (unsigned char)w->s[w->pos] : -1;
}

/* JSON's whitespace, which is also json-c's. */
static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void skip_ws(walk *w)
{
	while (w->pos < w->len && is_ws(w->s[w->pos]))
		w->pos++;
}

/* At a '"': past the closing quote. A NUL byte (which json-c would read as
 * the end of the text) or the end of the body: false. */
static bool skip_string(walk *w)
{
	for (w->pos++; w->pos < w->len; w->pos++) {
		char c = w->s[w->pos];

		if (c == '\0')
			return false;
		if (c == '\\') {
			w->pos++;
			continue;
		}
		if (c == '"') {
			w->pos++;
			return true;
		}
	}
	return false;
}

/* A number or a bare word (true, false, null; json-c's NaN and Infinity
 * too): json-c judges it, the walk only needs its end. */
static bool skip_scalar(walk *w)
{
	size_t begin = w->pos;

	while (w->pos < w->len) {
		char c = w->s[w->pos];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '-' || c == '+' || c == '.'))
			break;
		w->pos++;
	}
	return w->pos > begin;
}

/* At '{' or '[': past the bracket that closes it. Brackets are counted, not
 * matched: json-c checks the value afterwards. */
static bool skip_container(walk *w)
{
	size_t depth = 0;

	while (w->pos < w->len) {
		char c = w->s[w->pos];

		if (c == '"') {
			if (!skip_string(w))
				return false;
			continue;
		}
		if (c == '\0' || c == '\'' || c == '/')
			return false; /* a NUL, a single-quoted string, a comment */
		w->pos++;
		if (c == '{' || c == '[')
			depth++;
		else if ((c == '}' || c == ']') && --depth == 0)
			return true;
	}
	return false;
}

static bool skip_value(walk *w)
{
	switch (peek(w)) {
	case '"':
		return skip_string(w);
	case '{':
	case '[':
		return skip_container(w);
	default:
		return skip_scalar(w);
	}
}

static bool expect(walk *w, char c)
{
	skip_ws(w);
	if (peek(w) != (unsigned char)c)
		return false;
	w->pos++;
	skip_ws(w);
	return true;
}

/*
 * Parses text[0, len) as exactly one JSON value, the way json-c parses it
 * inside a larger document: a number or a bare word there ends at the next
 * character, here at the NUL fed after it. `depth` is the nesting json-c
 * allows. 0 (*out NULL for a JSON null), AF_ERR_DATA, AF_ERR_NOMEM.
 */
static int parse_value(const char *text, size_t len, int depth, json_object **out)
{
	json_tokener *tok;
	json_object *o;
	enum json_tokener_error jerr;
	int err = AF_ERR_DATA;

	*out = NULL;
	if (len > INT32_MAX)
		return AF_ERR_DATA;
	if (!(tok = json_tokener_new_ex(depth)))
		return AF_ERR_NOMEM;
	o = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	if (jerr == json_tokener_success && json_tokener_get_parse_end(tok) != len)
		goto done; /* something after the value */
	if (jerr == json_tokener_continue) {
		o = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
	}
	if (jerr != json_tokener_success)
		goto done;
	*out = o;
	o = NULL;
	err = 0;
done:
	json_object_put(o);
	json_tokener_free(tok);
	return err;
}

/* Does the key at `key` (quotes included) decode to the member's name? An
 * escaped spelling is decoded by json-c, as the whole parse would do it.
 * -1: not known (out of memory). */
static int key_is(const walk *w, span key)
{
	size_t n = strlen(w->member), klen = key.end - key.begin;
	json_object *decoded = NULL;
	int same;

	if (!memchr(w->s + key.begin, '\\', klen))
		return klen == n + 2 && memcmp(w->s + key.begin + 1, w->member, n) == 0;
	if (parse_value(w->s + key.begin, klen, 1, &decoded) == AF_ERR_NOMEM)
		return -1;
	same = json_object_is_type(decoded, json_type_string) &&
	       (size_t)json_object_get_string_len(decoded) == n &&
	       memcmp(json_object_get_string(decoded), w->member, n) == 0;
	json_object_put(decoded);
	return same;
}

static int add_elem(walk *w, span e)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		span *p = realloc(w->elems, cap * sizeof(*p));

		if (!p)
			return af_error_oom();
		w->elems = p;
		w->cap = cap;
	}
	w->elems[w->n++] = e;
	return 0;
}

/* At the member's '[': records its elements. 1 if it is a well-formed
 * list of values, 0 if not, AF_ERR_NOMEM. */
static int walk_list(walk *w)
{
	span e;
	int err;

	w->list.begin = w->pos++;
	skip_ws(w);
	if (peek(w) == ']') {
		w->list.end = ++w->pos;
		return 1;
	}
	for (;;) {
		e.begin = w->pos;
		if (!skip_value(w))
			return 0;
		e.end = w->pos;
		if ((err = add_elem(w, e)) < 0)
			return err;
		skip_ws(w);
		if (peek(w) == ']')
			break;
		if (!expect(w, ','))
			return 0;
	}
	w->list.end = ++w->pos;
	return 1;
}

/* One "key": value of the top-level object. 1, 0 (not splittable),
 * AF_ERR_NOMEM. */
static int walk_member(walk *w)
{
	span key;
	int is;

	skip_ws(w);
	key.begin = w->pos;
	if (peek(w) != '"' || !skip_string(w))
		return 0;
	key.end = w->pos;
	if ((is = key_is(w, key)) < 0 || !expect(w, ':'))
		return 0;
	if (!is)
		return skip_value(w) ? 1 : 0;
	/* Twice: json-c keeps the last, the walk does not try to. */
	if (++w->found > 1 || peek(w) != '[')
		return 0;
	return walk_list(w);
}

/* The whole body: an object, the member once among its members, nothing
 * but whitespace after it. On 1, *end is where the object ends. */
static int walk_body(walk *w, size_t *end)
{
	int ok;

	skip_ws(w);
	if (peek(w) != '{')
		return 0;
	w->pos++;
	skip_ws(w);
	if (peek(w) == '}')
		return 0; /* no members, so not the member */
	for (;;) {
		if ((ok = walk_member(w)) <= 0)
			return ok;
		skip_ws(w);
		if (peek(w) == '}')
			break;
		if (!expect(w, ','))
			return 0;
	}
	*end = ++w->pos;
	skip_ws(w);
	return w->pos == w->len && w->found == 1;
}

/* ---- checking with json-c -------------------------------------------------- */

static int element_depth(void)
{
	return JSON_TOKENER_DEFAULT_DEPTH - AF_ITEMS_LEVELS;
}

/* Every element parses as json-c would parse it in place. 1, 0, NOMEM. */
static int check_elements(const walk *w)
{
	json_object *o;
	int err;

	for (size_t i = 0; i < w->n; i++) {
		err = parse_value(w->s + w->elems[i].begin, w->elems[i].end - w->elems[i].begin,
		                  element_depth(), &o);
		json_object_put(o);
		if (err == AF_ERR_NOMEM)
			return af_error_oom();
		if (err < 0)
			return 0;
	}
	return 1;
}

/* The object with the member's value replaced by []: *out malloc'd. 1 if
 * json-c parses it, 0 if not, AF_ERR_NOMEM. */
static int make_envelope(const walk *w, size_t end, char **out, size_t *out_len)
{
	size_t head = w->list.begin, tail = end - w->list.end, n = head + 2 + tail;
	json_object *o;
	char *env;
	int err;

	*out = NULL;
	if (!(env = malloc(n + 1)))
		return af_error_oom();
	memcpy(env, w->s, head);
	memcpy(env + head, "[]", 2);
	memcpy(env + head + 2, w->s + w->list.end, tail);
	env[n] = '\0';
	err = parse_value(env, n, JSON_TOKENER_DEFAULT_DEPTH, &o);
	json_object_put(o);
	if (err < 0) {
		free(env);
		return err == AF_ERR_NOMEM ? af_error_oom() : 0;
	}
	*out = env;
	*out_len = n;
	return 1;
}

/* ---- the second pass ------------------------------------------------------- */

/* Copies src[0, n) to dst without the whitespace outside strings, and a
 * NUL; dst may be src or before it. Returns the bytes written. */
static size_t compact(char *dst, const char *src, size_t n)
{
	size_t o = 0;
	bool in_string = false, escaped = false;

	for (size_t i = 0; i < n; i++) {
		char c = src[i];

		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (is_ws(c)) {
			continue;
		}
		dst[o++] = c;
	}
	dst[o++] = '\0';
	return o;
}

/* Moves the elements to the front of the body's data, which `items` then
 * owns, shrunk to what they need. */
static int take_body(af_items *items, const walk *w, af_buf *body)
{
	char *data = (char *)af_buf_data(body), *shrunk;
	size_t len = af_buf_len(body);

	if (!(items->start = malloc((w->n + 1) * sizeof(*items->start))))
		return af_error_oom();
	for (size_t i = 0; i < w->n; i++) {
		items->start[i] = items->used;
		items->used += compact(data + items->used, data + w->elems[i].begin,
		                       w->elems[i].end - w->elems[i].begin);
	}
	items->start[w->n] = items->used;
	items->n = w->n;
	/* The rest is the body as it came: wipe it before the allocator has it. */
	OPENSSL_cleanse(data + items->used, len + 1 - items->used);
	af_buf_detach(body);
	shrunk = realloc(data, items->used ? items->used : 1);
	items->arena = shrunk ? shrunk : data;
	return 0;
}

/* ---- the interface --------------------------------------------------------- */

int af_items_split(af_items **out, char **envelope, size_t *envelope_len, af_buf *body,
                   const char *member)
{
	walk w = {.s = af_buf_data(body), .len = af_buf_len(body), .member = member};
	af_items *items = NULL;
	char *env = NULL;
	size_t end = 0, env_len = 0;
	int ok;

	*out = NULL;
	*envelope = NULL;
	*envelope_len = 0;
	if (!w.s)
		return 0;
	if ((ok = walk_body(&w, &end)) <= 0 || (ok = check_elements(&w)) <= 0 ||
	    (ok = make_envelope(&w, end, &env, &env_len)) <= 0)
		goto done;
	if (!(items = calloc(1, sizeof(*items)))) {
		ok = af_error_oom();
		goto done;
	}
	if ((ok = take_body(items, &w, body)) < 0)
		goto done;
	*out = items;
	*envelope = env;
	*envelope_len = env_len;
	items = NULL;
	env = NULL;
done:
	af_items_free(items);
	free(env);
	free(w.elems);
	return ok < 0 ? ok : 0;
}

int af_items_from_array(af_items **out, json_object *array)
{
	size_t n;
	af_buf arena;
	af_items *items;
	int err = 0;

	*out = NULL;
	if (!json_object_is_type(array, json_type_array))
		return af_error_set(AF_ERR_GENERIC, "not a JSON array");
	n = json_object_array_length(array);
	if (!(items = calloc(1, sizeof(*items))) ||
	    !(items->start = malloc((n + 1) * sizeof(*items->start)))) {
		free(items);
		return af_error_oom();
	}
	af_buf_init(&arena, SIZE_MAX / 2);
	for (size_t i = 0; i < n && err == 0; i++) {
		json_object *e = json_object_array_get_idx(array, i);
		const char *text =
		    e ? json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN |
		                                              JSON_C_TO_STRING_NOSLASHESCAPE)
		      : "null";

		items->start[i] = af_buf_len(&arena);
		err = text ? af_buf_append(&arena, text, strlen(text) + 1) : af_error_oom();
	}
	items->n = n;
	items->used = af_buf_len(&arena);
	items->start[n] = items->used;
	items->arena = af_buf_detach(&arena);
	if (err < 0 || (!items->arena && !(items->arena = calloc(1, 1)))) {
		af_items_free(items);
		return err < 0 ? err : af_error_oom();
	}
	*out = items;
	return 0;
}

size_t af_items_count(const af_items *items)
{
	return items ? items->n : 0;
}

size_t af_items_bytes(const af_items *items)
{
	return items ? items->used + (items->n + 1) * sizeof(*items->start) : 0;
}

const char *af_items_text(const af_items *items, size_t i, size_t *len)
{
	if (len)
		*len = items->start[i + 1] - items->start[i] - 1;
	return items->arena + items->start[i];
}

int af_items_parse(const af_items *items, size_t i, json_object **out)
{
	size_t len;
	const char *text = af_items_text(items, i, &len);
	int err = parse_value(text, len, element_depth(), out);

	if (err == AF_ERR_NOMEM)
		return af_error_oom();
	if (err < 0)
		return af_error_set(AF_ERR_DATA, "list element %zu does not parse", i);
	return 0;
}

void af_items_free(af_items *items)
{
	if (!items)
		return;
	if (items->arena)
		OPENSSL_cleanse(items->arena, items->used);
	free(items->arena);
	free(items->start);
	free(items);
}
