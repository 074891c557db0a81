/*
 * The run's metrics in the Prometheus text exposition format (version
 * 0.0.4), for the node exporter's textfile collector. Every value is a
 * gauge of the run that wrote the file: the file is replaced as a whole
 * after every run, so there is nothing to accumulate. The reference, with
 * alert rules, is docs/operations.md "Metrics".
 */
#include "aifleet/metrics.h"
#include "aifleet/buf.h"
#include "aifleet/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The per-scope counts, each a family of its own, in this order. */
static const struct {
	const char *name;
	const char *help;
	size_t offset;
} scope_counts[] = {
	{"aifleet_scope_items", "Items the last run fetched in the scope, after de-duplication.",
	 offsetof(af_scope_outcome, items)},
	{"aifleet_scope_rejected", "Items of the scope the last run rejected as malformed.",
	 offsetof(af_scope_outcome, rejected)},
	{"aifleet_scope_requests", "API requests the last run sent for the scope.",
	 offsetof(af_scope_outcome, requests)},
	{"aifleet_scope_retries", "Requests of the scope the last run retried.",
	 offsetof(af_scope_outcome, retries)},
	{"aifleet_scope_throttled", "Answers of the scope that said 'throttled' in the last run.",
	 offsetof(af_scope_outcome, throttled)},
	{"aifleet_scope_held_deletes",
	 "Tombstones the mass-delete guard held back in the scope (state held), else 0.",
	 offsetof(af_scope_outcome, held_deletes)},
};

static const char *const scope_states[] = {"complete", "partial", "failed", "held"};

static const char *const entity_labels[] = {"instance", "service", "resource"};

/* The text being built; the first failure sticks, so that no file is
 * written with a part missing. */
typedef struct metrics_text {
	af_buf buf;
	int err;
} metrics_text;

static void putn(metrics_text *o, const char *s, size_t n)
{
	if (o->err == 0 && (o->err = af_buf_append(&o->buf, s, n)) < 0)
		af_error_set(o->err, "metrics: out of memory");
}

static void put(metrics_text *o, const char *s)
{
	putn(o, s, strlen(s));
}

static void putf(metrics_text *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(metrics_text *o, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		if (o->err == 0)
			o->err = af_error_set(AF_ERR_GENERIC, "metrics: a line too long");
		return;
	}
	putn(o, line, (size_t)n);
}

static void family(metrics_text *b, const char *name, const char *help)
{
	putf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* A label value: backslash, double quote and line feed escaped. */
static void label_value(metrics_text *b, const char *s)
{
	put(b, "\"");
	for (; *s; s++) {
		if (*s == '\\')
			put(b, "\\\\");
		else if (*s == '"')
			put(b, "\\\"");
		else if (*s == '\n')
			put(b, "\\n");
		else
			putn(b, s, 1);
	}
	put(b, "\"");
}

/* name{provider="...",account="...",region="...",product="..."[,extra] */
static void scope_series(metrics_text *b, const char *name, const af_scope *sc)
{
	putf(b, "%s{provider=", name);
	label_value(b, sc->provider);
	put(b, ",account=");
	label_value(b, sc->account);
	put(b, ",region=");
	label_value(b, sc->region);
	put(b, ",product=");
	label_value(b, sc->product);
}

static void scope_metrics(metrics_text *b, const af_sync_result *r)
{
	family(b, "aifleet_scope_last_attempt_timestamp_seconds",
	       "Start of the last run that attempted the scope (Unix time).");
	for (size_t i = 0; i < r->noutcomes; i++) {
		scope_series(b, "aifleet_scope_last_attempt_timestamp_seconds", &r->outcomes[i].scope);
		putf(b, "} %.3f\n", r->outcomes[i].attempted_at);
	}
	family(b, "aifleet_scope_last_success_timestamp_seconds",
	       "Start of the last run that collected the scope completely (Unix time); "
	       "absent while it never was, or when the database could not say.");
	for (size_t i = 0; i < r->noutcomes; i++) {
		if (r->outcomes[i].completed_at <= 0)
			continue;
		scope_series(b, "aifleet_scope_last_success_timestamp_seconds", &r->outcomes[i].scope);
		putf(b, "} %.3f\n", r->outcomes[i].completed_at);
	}
	family(b, "aifleet_scope_state",
	       "1 for the state the last run left the scope in (complete, partial, failed, held), "
	       "0 for the others.");
	for (size_t i = 0; i < r->noutcomes; i++)
		for (size_t s = 0; s < sizeof(scope_states) / sizeof(scope_states[0]); s++) {
			scope_series(b, "aifleet_scope_state", &r->outcomes[i].scope);
			putf(b, ",state=\"%s\"} %d\n", scope_states[s],
				      strcmp(r->outcomes[i].state, scope_states[s]) == 0);
		}
	for (size_t m = 0; m < sizeof(scope_counts) / sizeof(scope_counts[0]); m++) {
		family(b, scope_counts[m].name, scope_counts[m].help);
		for (size_t i = 0; i < r->noutcomes; i++) {
			const char *o = (const char *)&r->outcomes[i];
			uint64_t v;

			memcpy(&v, o + scope_counts[m].offset, sizeof(v));
			scope_series(b, scope_counts[m].name, &r->outcomes[i].scope);
			putf(b, "} %llu\n", (unsigned long long)v);
		}
	}
}

static void run_metrics(metrics_text *b, const af_sync_result *r, int exit_code, double finished_at)
{
	const af_entity_counts *entities[] = {&r->load.instances, &r->load.services,
					      &r->load.resources};
	const struct {
		const char *state;
		size_t n;
	} scopes[] = {
		{"complete", r->complete}, {"partial", r->partial}, {"failed", r->failed},
		{"held", r->held}, {"busy", r->busy},
	};

	family(b, "aifleet_run_exit_code", "Exit code of the last run (README: Exit codes).");
	putf(b, "aifleet_run_exit_code %d\n", exit_code);
	family(b, "aifleet_run_id", "aifleet.sync_run id of the last run; 0 if it committed nothing.");
	putf(b, "aifleet_run_id %lld\n", r->committed ? (long long)r->load.run_id : 0LL);
	family(b, "aifleet_run_start_timestamp_seconds", "Start of the last run (Unix time).");
	putf(b, "aifleet_run_start_timestamp_seconds %.3f\n", r->started_at);
	family(b, "aifleet_run_end_timestamp_seconds", "End of the last run (Unix time).");
	putf(b, "aifleet_run_end_timestamp_seconds %.3f\n", finished_at);
	family(b, "aifleet_run_duration_seconds",
	       "Wall time of the last run (phase total) and of its phases: collect (fetch, "
	       "normalize, stream), copy (COPY into the database), merge (to the commit).");
	putf(b,
		      "aifleet_run_duration_seconds{phase=\"total\"} %.3f\n"
		      "aifleet_run_duration_seconds{phase=\"collect\"} %.3f\n"
		      "aifleet_run_duration_seconds{phase=\"copy\"} %.3f\n"
		      "aifleet_run_duration_seconds{phase=\"merge\"} %.3f\n",
		      r->seconds, r->collect_seconds, r->load.copy_seconds, r->load.merge_seconds);
	family(b, "aifleet_run_scopes",
	       "Scopes of the last run by the state it left them in (held scopes are counted "
	       "in partial too; busy: another run held them, they were not collected).");
	for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++)
		putf(b, "aifleet_run_scopes{state=\"%s\"} %zu\n", scopes[i].state,
			      scopes[i].n);
	family(b, "aifleet_run_scopes_unchanged",
	       "Complete scopes of the last run that had not changed since their last clean run "
	       "(nothing of them was loaded).");
	putf(b, "aifleet_run_scopes_unchanged %zu\n", r->load.scopes_skipped);
	family(b, "aifleet_run_rows",
	       "Rows the last run created, updated, deleted (tombstoned), restored or left "
	       "unchanged, by entity.");
	for (size_t e = 0; e < sizeof(entities) / sizeof(entities[0]); e++) {
		const af_entity_counts *c = entities[e];
		const struct {
			const char *change;
			uint64_t n;
		} changes[] = {
			{"created", c->created}, {"updated", c->updated}, {"deleted", c->deleted},
			{"restored", c->restored}, {"unchanged", c->unchanged},
		};

		for (size_t k = 0; k < sizeof(changes) / sizeof(changes[0]); k++)
			putf(b, "aifleet_run_rows{entity=\"%s\",change=\"%s\"} %llu\n",
				      entity_labels[e], changes[k].change,
				      (unsigned long long)changes[k].n);
	}
	family(b, "aifleet_run_history_rows", "History rows the last run wrote.");
	putf(b, "aifleet_run_history_rows %llu\n", (unsigned long long)r->load.history_rows);
}

/* The directory `path` is in, into out (n bytes). */
static int directory_of(char *out, size_t n, const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return snprintf(out, n, ".") < (int)n ? 0 : -1;
	if (slash == path)
		return snprintf(out, n, "/") < (int)n ? 0 : -1;
	return snprintf(out, n, "%.*s", (int)(slash - path), path) < (int)n ? 0 : -1;
}

int af_metrics_check_path(const char *path)
{
	char dir[4096];
	struct stat st;

	if (!path || !*path || path[strlen(path) - 1] == '/')
		return af_error_set(AF_ERR_CONFIG, "metrics file '%s': not a file name",
				    path ? path : "");
	if (directory_of(dir, sizeof(dir), path) < 0)
		return af_error_set(AF_ERR_CONFIG, "metrics file '%s': path too long", path);
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return af_error_set(AF_ERR_CONFIG, "metrics file '%s': no directory %s", path, dir);
	if (access(dir, W_OK | X_OK) != 0)
		return af_error_set(AF_ERR_CONFIG,
				    "metrics file '%s': cannot create files in %s (%s)", path, dir,
				    strerror(errno));
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return af_error_set(AF_ERR_CONFIG, "metrics file '%s': exists and is not a file",
				    path);
	return 0;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The textfile collector reads only names ending in ".prom", so the
 * temporary name (PATH.XXXXXX) is never scraped; rename() replaces PATH
 * in one step. 0644: the exporter usually runs as another user.
 */
int af_metrics_write(const char *path, const af_sync_result *r, int exit_code,
		     double finished_at)
{
	metrics_text text = {.err = 0};
	char *tmp = NULL;
	int fd = -1, err = 0;

	/* about 1.5 kB a scope: 60,000 scopes fit */
	af_buf_init(&text.buf, (size_t)256 * 1024 * 1024);
	run_metrics(&text, r, exit_code, finished_at);
	scope_metrics(&text, r);
	if ((err = text.err) < 0)
		goto done;
	if (!(tmp = malloc(strlen(path) + 8))) {
		err = af_error_oom();
		goto done;
	}
	sprintf(tmp, "%s.XXXXXX", path);
	if ((fd = mkstemp(tmp)) < 0) {
		err = af_error_set(AF_ERR_IO, "metrics file %s: cannot create a temporary file: %s",
				   path, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto done;
	}
	if (fchmod(fd, 0644) != 0 || write_all(fd, af_buf_data(&text.buf), af_buf_len(&text.buf)) < 0 ||
	    fsync(fd) != 0) {
		err = af_error_set(AF_ERR_IO, "metrics file %s: cannot write %s: %s", path, tmp,
				   strerror(errno));
		goto done;
	}
	if (close(fd) != 0) {
		fd = -1;
		err = af_error_set(AF_ERR_IO, "metrics file %s: cannot write %s: %s", path, tmp,
				   strerror(errno));
		goto done;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		err = af_error_set(AF_ERR_IO, "metrics file %s: cannot replace it: %s", path,
				   strerror(errno));
		goto done;
	}
	free(tmp);
	tmp = NULL;
done:
	if (fd >= 0)
		close(fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	af_buf_free(&text.buf);
	return err;
}
