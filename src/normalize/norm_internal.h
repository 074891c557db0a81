#ifndef AIFLEET_NORM_INTERNAL_H
#define AIFLEET_NORM_INTERNAL_H

/*
 * Helpers shared by the per-product mappings. Not a public header: the
 * contract is include/aifleet/normalize.h.
 */

#include <json-c/json.h>
#include <stdbool.h>

#include "aifleet/normalize.h"

/* Size limits (docs/mapping.md, "bad values"): a field over its limit
 * cannot be stored as it is, so its item is rejected. Ids and codes are
 * in unique keys, whose btree entries must stay well under 2.7 kB. */
#define NZ_MAX_ID   512           /* native ids, status, charge type */
#define NZ_MAX_TEXT (64 * 1024)   /* name, model, zone, ... */
#define NZ_MAX_TAGS (64 * 1024)   /* tags_json */
#define NZ_MAX_RAW  (1024 * 1024) /* raw_json */

/* The state of one normalizer call; `item` names the current item in
 * warnings (its native id, or "#<index>" before the id is known). */
typedef struct nz_ctx {
	const af_scope *scope;
	const af_record_sink *sink;
	af_norm_stats *stats;
	const char *item;
	char item_buf[48];
	/* the first unreadable field of the current item, which rejects it */
	const char *bad_field;
	const char *bad_why;
	int err; /* out of memory while reading: the call fails */
	/* repaired copies of strings, freed by nz_ctx_free */
	char **owned;
	size_t nowned, owned_cap;
} nz_ctx;

void nz_ctx_init(nz_ctx *c, const af_scope *scope, const af_record_sink *sink, af_norm_stats *stats,
                 af_norm_stats *fallback);
void nz_ctx_free(nz_ctx *c);
/* Starts an item named by position (it has no id yet). */
void nz_ctx_item_index(nz_ctx *c, const char *what, size_t index);
/* Starts an item (forgets the previous one's unreadable field). */
void nz_item_begin(nz_ctx *c);

/*
 * Reading an item: every field is read before anything is emitted. A
 * field that is present but cannot be read marks the item (nz_bad); then
 * nz_item_check rejects it: 1 = emit it, 0 = rejected (counted, logged
 * with the field), < 0 = error.
 */
void nz_bad(nz_ctx *c, const char *field, const char *why);
int nz_item_check(nz_ctx *c);

/* Logs a warning naming scope, item and field, and counts it. Never pass a
 * field value here: values may be secrets. */
void nz_warn(nz_ctx *c, const char *field, const char *why);
/* Counts a rejected item and logs why; `field` may be NULL. */
void nz_reject(nz_ctx *c, const char *field, const char *why);

/* obj[key] when obj is an object and the member exists and is not null. */
json_object *nz_get(json_object *obj, const char *key);
/* An object member; NULL if missing or null, NULL + nz_bad otherwise. */
json_object *nz_obj(nz_ctx *c, json_object *obj, const char *key);
/* A text member (name, model, ...): NULL if missing or null; nz_bad if
 * not a string or over NZ_MAX_TEXT. Invalid UTF-8 and NULs become U+FFFD,
 * secret values "<redacted>", each with a warning. */
const char *nz_str(nz_ctx *c, json_object *obj, const char *key);
/* A code member (status, charge type): as nz_str, but what would need a
 * repair (bad UTF-8, NUL, a secret, over NZ_MAX_ID) is unreadable. */
const char *nz_code(nz_ctx *c, json_object *obj, const char *key);
/* A required id: a non-blank valid UTF-8 string without NUL or secret, up
 * to NZ_MAX_ID. NULL otherwise, with *why (NULL when missing or null). */
const char *nz_id(json_object *obj, const char *key, const char **why);
/* A number member: JSON numbers and numeric strings, finite only. Missing
 * or null gives unset; anything else unset + nz_bad. */
af_num nz_num(nz_ctx *c, json_object *obj, const char *key);
/* A timestamp member through af_time_parse. Missing, null or "" gives
 * AF_TIME_NULL; anything unparseable AF_TIME_NULL + nz_bad. */
af_time nz_time(nz_ctx *c, json_object *obj, const char *key);
/* The same for a raw-only timestamp: unparseable is only a warning. */
void nz_time_check(nz_ctx *c, json_object *obj, const char *key);

/* An af_num scaled by `factor` (unit conversion), or unset. */
af_num nz_scale(af_num n, double factor);

/* A set of the ids seen in one list (a JSON object used as a hash set): a
 * repeated id would give two records with one key. nz_seen returns 1 if
 * `id` was there already, else adds it and returns 0; AF_ERR_NOMEM. */
int nz_seen(json_object *set, const char *id);

/* Normalized vocabularies; NULL for a NULL raw value. */
const char *nz_status(const char *raw);
const char *nz_charge(const char *raw);

/*
 * Tags as a compact JSON object of strings, from an array of {key, value}
 * objects. *out is NULL when `arr` is missing or null (not reported). A
 * list that is not an array, an entry that is not an object or has no
 * string key, or tags over NZ_MAX_TAGS: nz_bad. Returns 0 or AF_ERR_NOMEM.
 */
int nz_tags(nz_ctx *c, char **out, json_object *arr, const char *field, const char *kname,
            const char *vname);

/*
 * The payload as compact JSON for jsonb, minus the top-level members
 * listed in `drop` (NULL-terminated, may be NULL) and minus every secret
 * (aifleet/secret.h). Valid jsonb by construction: numbers re-emitted in
 * canonical form (non-finite and json-c's saturated integers as null),
 * invalid UTF-8 and NUL as U+FFFD (with a warning). Over NZ_MAX_RAW:
 * nz_bad. Returns 0 or AF_ERR_NOMEM.
 */
int nz_raw(nz_ctx *c, char **out, json_object *obj, const char *const *drop);
/* The same, for the members of `secondary` overlaid with `primary`'s. */
int nz_raw_merge(nz_ctx *c, char **out, json_object *primary, json_object *secondary,
                 const char *const *drop);

/* True when s[0..len) is valid UTF-8 without a NUL. */
bool nz_utf8_ok(const char *s, size_t len);

/* Sink calls that count, and skip a NULL callback. */
int nz_emit_instance(nz_ctx *c, const af_instance *inst);
int nz_emit_service(nz_ctx *c, const af_service *svc);
int nz_emit_resource(nz_ctx *c, const af_resource *res);
/* res[0..n) in order; stops at the first failure. */
int nz_emit_resources(nz_ctx *c, const af_resource *res, size_t n);
/* The end of a service item: `svc` as its raw payload, then -- unless a
 * field of the item was unreadable (nz_item_check) -- the service and its
 * resources. 0 or a negative af_error_class. */
int nz_emit_service_item(nz_ctx *c, af_service *s, json_object *svc, const af_resource *res,
                         size_t nres);

#endif
