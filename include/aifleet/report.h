#ifndef AIFLEET_REPORT_H
#define AIFLEET_REPORT_H

/*
 * aifleet report: a summary of the fleet for people and cron mail, in
 * four sections -- the fleet now (top models by GPU cards, capacity by
 * cloud and region), GPU-hours of the last 7 days by model, the changes
 * since the last report (or --since), and the stale or failing scopes.
 *
 * af_report_gather() reads every section in one snapshot of the database
 * (a read-only repeatable-read transaction); af_report_render() prints
 * what was gathered as text, markdown or JSON and reads the database no
 * more; af_report_record() writes the row that the next report starts
 * from. A caller records only after the report has been delivered, so a
 * report that could not be printed is covered again by the next one.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "aifleet/store.h"

typedef enum af_report_format {
	AF_REPORT_TEXT = 0,     /* aligned columns, for a terminal */
	AF_REPORT_MARKDOWN = 1, /* headings and tables, for mail and chat */
	AF_REPORT_JSON = 2,     /* one object, numbers as numbers */
} af_report_format;

/* Parses "text|markdown|json"; 0 or AF_ERR_CONFIG. */
int af_report_parse_format(af_report_format *out, const char *name);
/* The name af_report_parse_format() reads ("text", ...). */
const char *af_report_format_name(af_report_format format);

/* The default of stale_after: a daily report flags a scope that has not
 * completed since before the previous one (with two hours' slack). */
#define AF_REPORT_STALE_AFTER "26 hours"
/* The window of a first report without --since. */
#define AF_REPORT_DEFAULT_WINDOW "24 hours"

typedef struct af_report_options {
	/* Start of the changes window: an ISO-8601 time, or a duration back
	 * from now (24h, 7d, '90 minutes': any PostgreSQL interval; its sign
	 * is ignored). NULL: where the last recorded report ended, else the
	 * last 24 hours. A value that is neither is AF_ERR_PARAM. */
	const char *since;
	/* A scope whose last complete collection is older is stale: a
	 * PostgreSQL interval. NULL: AF_REPORT_STALE_AFTER. A bad value is
	 * AF_ERR_PARAM. */
	const char *stale_after;
	int top_models;  /* rows of the top models table; <= 0: 10 */
	int max_changes; /* changes listed one by one; <= 0: 20 */
} af_report_options;

typedef struct af_report af_report;

/* Reads every section. Errors: AF_ERR_PARAM (a bad since or stale_after:
 * the message names the option), AF_ERR_DB, AF_ERR_TRANSIENT (the
 * database went away), AF_ERR_NOMEM. *out is the caller's
 * (af_report_free). */
int af_report_gather(af_report **out, af_store *s, const af_report_options *opts);

/* Prints the report; AF_ERR_IO when `out` could not be written. */
int af_report_render(const af_report *r, af_report_format format, FILE *out);

/* Records the report in aifleet.report_run, so that the next report
 * without since starts where this one ended. A database that refuses the
 * write (a read-only role or server) or has no report_run table yet is
 * not an error: a warning says the report was not recorded, and *id (may
 * be NULL) is 0. Otherwise *id is the new row's id. */
int af_report_record(af_store *s, const af_report *r, af_report_format format, int64_t *id);

/* NULL is fine. */
void af_report_free(af_report *r);

#endif
