#ifndef AIFLEET_ITEMS_H
#define AIFLEET_ITEMS_H

/*
 * A compact store of a long JSON list: the elements of one array member of
 * an answer, each kept as its JSON text (whitespace outside strings taken
 * out, NUL-terminated) in one arena, and parsed again one at a time by
 * whoever needs it.
 *
 * Why: an API without paging (Hologres ListInstanceModel) answers with
 * every item of a scope in one document. As one json-c tree that costs
 * about 3 KiB per item (an object, its hash table and a json_object per
 * member), some 320 MiB for 100k AI nodes, while the same items as text
 * cost what they weigh on the wire (~400 bytes). af_items_split() never
 * builds the tree: it finds the elements in the body, checks each with
 * json-c, and moves them, compacted, to the front of the body's own
 * allocation, which it then takes over and shrinks.
 *
 * The elements are parsed exactly as they were within the whole document
 * (same tokener, same flags, the nesting limit counted from where they
 * stood), so af_items_parse() gives the tree json-c would have built for
 * that element in place. Anything the splitter does not know for certain
 * leaves the body as it was, for the caller to parse whole as before.
 *
 * The store is read-only once built: any number of threads may call
 * af_items_text() and af_items_parse() at once.
 */

#include <json-c/json.h>
#include <stddef.h>

#include "aifleet/buf.h"

typedef struct af_items af_items;

/* Nesting levels above a list's elements: the answer object and the
 * array. An element may nest what json-c allows the whole document
 * (JSON_TOKENER_DEFAULT_DEPTH) minus these. */
#define AF_ITEMS_LEVELS 2

/*
 * Splits `body`, a JSON object, at its top-level member `member`, an array.
 * On success *out holds the array's elements and takes over the body's
 * data (the af_buf is left empty, its cap kept), and *envelope (malloc'd,
 * NUL-terminated, *envelope_len bytes) is the object as it came with that
 * member's value replaced by [] -- what to classify the answer on.
 *
 * Returns 0 with *out NULL and the body untouched when the body is not of
 * that shape or holds anything the splitter does not handle for certain:
 * not an object, no such member or more than one, not an array, invalid
 * JSON anywhere (json-c checks every element), json-c's non-standard
 * forms (comments, single quotes, NaN), NUL bytes, trailing data. The
 * caller then parses the body whole, which gives the same verdict as ever.
 * AF_ERR_NOMEM otherwise.
 */
int af_items_split(af_items **out, char **envelope, size_t *envelope_len, af_buf *body,
                   const char *member);

/* The same store from a parsed array (for an answer that was parsed whole:
 * a replayed page the splitter did not take); each element is serialized
 * as json-c prints it. AF_ERR_NOMEM, or AF_ERR_GENERIC if `array` is not
 * an array. */
int af_items_from_array(af_items **out, json_object *array);

size_t af_items_count(const af_items *items);

/* Bytes the store holds: the arena plus its index. */
size_t af_items_bytes(const af_items *items);

/* Element i's compact JSON text (borrowed, NUL-terminated; *len, if not
 * NULL, its length). i must be below af_items_count(). */
const char *af_items_text(const af_items *items, size_t i, size_t *len);

/* Element i parsed afresh: *out is the caller's to json_object_put(),
 * NULL for a JSON null. AF_ERR_DATA if it does not parse (it always does
 * for a store af_items_split or af_items_from_array built), AF_ERR_NOMEM. */
int af_items_parse(const af_items *items, size_t i, json_object **out);

/* Wipes (items can hold secrets: a Hologres apiKey) and frees; NULL is
 * fine. */
void af_items_free(af_items *items);

#endif
