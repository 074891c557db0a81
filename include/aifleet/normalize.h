#ifndef AIFLEET_NORMALIZE_H
#define AIFLEET_NORMALIZE_H

/*
 * Normalizers: pure functions from one provider payload to records
 * (include/aifleet/record.h). No I/O, no clock, no globals: the same input
 * gives the same records. One mapping per product; docs/mapping.md lists
 * every field.
 *
 * An item that cannot be normalized (no native id, wrong type for a key
 * field) is rejected: counted in stats->rejected, a warning logged naming
 * the scope and the item, and the other items go on. The caller must treat
 * a scope with rejected items as partial (nothing is tombstoned there),
 * since a rejected item may well still exist.
 *
 * The Hologres apiKey is never copied anywhere: not into raw_json, not into
 * a log line, not masked.
 *
 * `stats` is added to, not reset (NULL is allowed); a sink callback may be
 * NULL (the record is then only counted). A page that is not an object, or
 * whose item list has the wrong type, gives AF_ERR_DATA and no records; a
 * missing or null list is an empty page. Every emitted string is valid
 * UTF-8 without NUL, and raw/tags JSON has no NaN/Infinity (jsonb-safe).
 */

#include <json-c/json.h>
#include <stdint.h>

#include "aifleet/record.h"

typedef struct af_norm_stats {
	uint64_t instances;
	uint64_t services;
	uint64_t resources;
	uint64_t rejected; /* items skipped as invalid */
	uint64_t warnings; /* fields dropped (bad timestamp, wrong type, ...) */
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
