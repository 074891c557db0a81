#ifndef AIFLEET_METRICS_H
#define AIFLEET_METRICS_H

/*
 * The run's metrics for the Prometheus node exporter's textfile collector
 * (docs/operations.md "Metrics"): written at the end of every run, failed
 * ones too, in the text exposition format, atomically -- to a temporary
 * file in the same directory, then renamed over PATH -- so that a scrape
 * never reads half a file.
 */

#include "aifleet/sync.h"

/* Is `path` a file this process can write atomically: its directory
 * exists and is writable, and `path` is not a directory? AF_ERR_CONFIG
 * with the reason otherwise; asked before a run, so that a wrong path
 * fails at once and not after an hour of collection. */
int af_metrics_check_path(const char *path);

/*
 * Writes the metrics of `r` (which af_sync_run() filled, also when it
 * failed) and the run's exit code. `finished_at` is the Unix time the run
 * ended. AF_ERR_IO when the file cannot be written; `path` is then left
 * as it was.
 */
int af_metrics_write(const char *path, const af_sync_result *r, int exit_code,
		     double finished_at);

#endif
