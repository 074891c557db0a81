#ifndef AIFLEET_NORMALIZE_H
#define AIFLEET_NORMALIZE_H

/*
 * Normalizers: pure functions from one provider payload to records
 * (include/aifleet/record.h). No I/O, no clock, no globals: the same input
 * gives the same records. One mapping per product; docs/mapping.md lists
 * every field.
 *
 * An item that cannot be read whole is rejected: counted in
 * stats->rejected, one warning naming the scope, the item and the field
 * (never its value), and nothing of it is emitted (a Tair instance with its
 * resources and model service; a TI-ONE group with its services, or one
 * service with its resources; a Hologres node with its services, or one
 * service); the other items go on. An item is
 * rejected when it is not an object, when its native id is missing, not a
 * string, blank, invalid UTF-8, holds a NUL or a secret, or is over 512
 * bytes, and when a mapped field is present but cannot be read: a quantity
 * that is not a finite number (1e400, "abc", true, json-c's saturated
 * integers), a time that does not parse, a status or charge type that is
 * not a clean string of at most 512 bytes, a text field that is not a
 * string or is over 64 KiB, tags that are not a list of {key, value}
 * objects or are over 64 KiB, a raw payload over 1 MiB. The caller must
 * treat a scope with rejected items as partial (nothing is tombstoned
 * there), so the stored version of a rejected item stands.
 *
 * Missing or JSON null is "not reported": unset, no warning (and "" for a
 * time means "never"). Text that is merely malformed is repaired visibly:
 * invalid UTF-8 bytes and NULs become U+FFFD, secret values "<redacted>",
 * with a warning (stats->warnings), and the item is kept.
 *
 * Secrets (aifleet/secret.h: the Hologres apiKey and its spellings,
 * sk-... keys anywhere in a string, embedded JSON included) are never
 * copied anywhere: not into raw_json, not into a log line, not masked.
 *
 * `stats` is added to, not reset (NULL is allowed); a sink callback may be
 * NULL (the record is then only counted). A page that is not an object, or
 * whose item list has the wrong type, gives AF_ERR_DATA and no records; a
 * missing or null list is an empty page. Every emitted string is valid
 * UTF-8 without NUL, and raw/tags JSON is valid jsonb by construction:
 * numbers in canonical JSON form (256. -> 256, 1.e5 -> 1e5), non-finite
 * numbers and json-c's saturated integers as null.
 */

#include <json-c/json.h>
#include <stdint.h>

#include "aifleet/record.h"

typedef struct af_norm_stats {
	uint64_t instances;
	uint64_t services;
	uint64_t resources;
	uint64_t rejected; /* items not emitted: a field could not be read */
	uint64_t warnings; /* repairs (U+FFFD, redaction), bad raw-only fields */
} af_norm_stats;

/* The shape of the paged normalizers below. */
typedef int (*af_page_normalizer)(const af_scope *scope, json_object *page,
				  const af_record_sink *sink, af_norm_stats *stats);

/* One DescribeTairKVCacheInferInstances response body (the whole page). */
int af_normalize_tair_page(const af_scope *scope, json_object *page, const af_record_sink *sink,
			   af_norm_stats *stats);

/* One DescribeModelServiceGroups response body ({"Response": {...}}). */
int af_normalize_tione_page(const af_scope *scope, json_object *page, const af_record_sink *sink,
			    af_norm_stats *stats);

/* One item of ListInstanceModel's instanceModelList, plus the
 * GetInstanceModel response for its holoInstanceId (detail may be NULL when
 * the node has none; then no services are emitted). */
int af_normalize_hologres_node(const af_scope *scope, json_object *list_item, json_object *detail,
			       const af_record_sink *sink, af_norm_stats *stats);

/* The same as one page, the shape the Hologres collector emits:
 * {"item": <list item>, "detail": <GetInstanceModel answer or absent>,
 * "requestId": <the answer's request id, for messages>}. */
int af_normalize_hologres_page(const af_scope *scope, json_object *page,
			       const af_record_sink *sink, af_norm_stats *stats);

/*
 * Parses the timestamp formats the API pages show into microseconds since
 * the epoch (UTC): 2025-04-07T04:46Z, 2025-11-04T02:09:26Z,
 * 2023-08-08T22:27:01+08:00, 2026-01-28T07:44:27.535Z, with surrounding
 * whitespace; also a space for 'T', offsets +HHMM/+HH, and no zone at all,
 * which is taken as UTC (2023-08-05 05:46:58). Dates and times are range
 * checked (no Feb 30, no second 60) and the instant must fall in years
 * 1..9999 UTC. Returns 0, or AF_ERR_DATA (and *out = AF_TIME_NULL).
 */
int af_time_parse(af_time *out, const char *s);

/* Formats as ISO 8601 UTC with microseconds, for COPY: "2025-04-07 04:46:00.000000+00". */
void af_time_format(char out[40], af_time t);

#endif
