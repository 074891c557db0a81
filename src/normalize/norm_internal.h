#ifndef AIFLEET_NORM_INTERNAL_H
#define AIFLEET_NORM_INTERNAL_H

/*
 * Helpers shared by the per-product mappings. Not a public header: the
 * contract is include/aifleet/normalize.h.
 */

#include <json-c/json.h>
#include <stdbool.h>

#include "aifleet/normalize.h"

/* The state of one normalizer call; `item` names the current item in
 * warnings (its native id, or "#<index>" before the id is known). */
typedef struct nz_ctx {
	const af_scope *scope;
	const af_record_sink *sink;
	af_norm_stats *stats;
	const char *item;
	char item_buf[48];
} nz_ctx;

void nz_ctx_init(nz_ctx *c, const af_scope *scope, const af_record_sink *sink, af_norm_stats *stats,
                 af_norm_stats *fallback);
/* Names the current item by position, for items that have no id yet. */
void nz_ctx_item_index(nz_ctx *c, const char *what, size_t index);

/* Logs a warning naming scope, item and field, and counts it. Never pass a
 * field value here: values may be secrets. */
void nz_warn(nz_ctx *c, const char *field, const char *why);
/* Counts a rejected item and logs why. */
void nz_reject(nz_ctx *c, const char *why);

/* obj[key] when obj is an object and the member exists and is not null. */
json_object *nz_get(json_object *obj, const char *key);
/* A string member; NULL (silently) if missing or null, NULL + warning if
 * another type. */
const char *nz_str(nz_ctx *c, json_object *obj, const char *key);
/* A required id: a non-empty string, or NULL (no warning; the caller
 * rejects the item). */
const char *nz_id(json_object *obj, const char *key);
/* A number member: JSON numbers and numeric strings, finite only. Missing
 * or null gives unset silently; anything else unset + warning. */
af_num nz_num(nz_ctx *c, json_object *obj, const char *key);
/* A timestamp member through af_time_parse; bad ones give AF_TIME_NULL +
 * warning. */
af_time nz_time(nz_ctx *c, json_object *obj, const char *key);

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
 * objects. *out is NULL when `arr` is missing or null (not reported).
 * Returns 0 or AF_ERR_NOMEM; malformed entries are skipped with a warning.
 */
int nz_tags(char **out, nz_ctx *c, json_object *arr, const char *field, const char *kname,
            const char *vname);

/*
 * The payload as compact JSON, minus the top-level members listed in `drop`
 * (NULL-terminated, may be NULL) and minus every secret member (apiKey and
 * its spellings) at any depth. Returns 0 or AF_ERR_NOMEM.
 */
int nz_raw(char **out, json_object *obj, const char *const *drop);
/* The same, for a tree whose top-level object is built by the caller. */
int nz_raw_merge(char **out, json_object *primary, json_object *secondary, const char *const *drop);

/* True when s[0..len) is valid UTF-8 without a NUL. */
bool nz_utf8_ok(const char *s, size_t len);

/* True for member names that hold secrets ("apiKey", "api_key", ...). */
bool nz_is_secret_key(const char *key);

/* Sink calls that count, and skip a NULL callback. */
int nz_emit_instance(nz_ctx *c, const af_instance *inst);
int nz_emit_service(nz_ctx *c, const af_service *svc);
int nz_emit_resource(nz_ctx *c, const af_resource *res);

#endif
