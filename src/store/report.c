/*
 * aifleet report (include/aifleet/report.h). Every table of the report is
 * one entry of `tables` below -- its section, its query and its columns --
 * so the gathering is one loop over the queries and the renderers walk the
 * same column descriptions: a new column is one line of a query and one
 * of its columns.
 *
 * The changes window: a report without --since starts where the last
 * recorded report ended. A run's changes are stamped with the start of its
 * transaction but become visible only when it commits, so a report taken
 * while a sync was running cannot see changes stamped before its own end.
 * The report therefore records the newest run it saw too, and the next one
 * starts at the earlier of the last report's end and the start of the
 * first run after that (runs are serialized by the run lock and start
 * after the one before committed, so no change is counted twice).
 */
#include "store_internal.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/report.h"

/* Every parameter goes as text and is cast in SQL, so that a query may
 * leave some unused (an untyped parameter a query never names is an
 * error). 25 is TEXTOID, fixed in pg_type since PostgreSQL's beginnings;
 * libpq has no header for it. */
#define TEXT_OID 25

#define DEFAULT_TOP_MODELS  10
#define DEFAULT_MAX_CHANGES 20
#define MAX_COLS            12

/* An instant as the report passes it between queries and prints it: UTC,
 * microseconds (so that it casts back to the same timestamptz), or
 * infinity / -infinity, which to_char cannot write. */
#define ISO_US(t)                                                                          \
	"CASE WHEN isfinite(" t ") THEN to_char(" t ", 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')" \
	" ELSE (" t ")::text END"
#define ISO_S(t) "to_char(" t ", 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

typedef enum col_type {
	COL_TEXT, /* as is; JSON string (or null) */
	COL_INT,  /* JSON integer */
	COL_NUM,  /* rounded by the query; JSON number, written as the query wrote it */
	COL_LIST, /* comma-joined by the query; JSON array of strings */
} col_type;

typedef struct report_col {
	const char *name; /* header and JSON key, in the query's column order */
	col_type type;
} report_col;

enum { SEC_FLEET, SEC_GPU_HOURS, SEC_CHANGES, SEC_STALE, NSECTIONS };
enum { T_TOP_MODELS, T_BY_REGION, T_GPU_HOURS, T_COUNTS, T_CHANGES, T_STALE, NTABLES };
/* The parameters of every query, in this order. */
enum { P_SINCE, P_UNTIL, P_TOP, P_MAX_CHANGES, P_STALE_AFTER, NPARAMS };

typedef struct report_table {
	int section;
	const char *key; /* JSON key, and the name in error messages */
	const char *sql;
	report_col cols[MAX_COLS]; /* up to the first without a name */
} report_table;

static const report_table tables[NTABLES] = {
	/* capacity_by_model, not capacity_summary: a Hologres model service's
	 * share of its AI node counts for its model there (and the GPU-hours
	 * below attribute it so too), not for the node, which names none. */
	[T_TOP_MODELS] = {SEC_FLEET, "top_models",
		"SELECT model_key, round(sum(gpu_cards)::numeric, 2),"
		" round(sum(gpu_memory_gib)::numeric, 1), sum(instances),"
		" string_agg(DISTINCT provider, ',' ORDER BY provider)"
		" FROM aifleet.capacity_by_model GROUP BY model_key HAVING sum(gpu_cards) > 0"
		" ORDER BY sum(gpu_cards) DESC, model_key NULLS LAST LIMIT $3::int",
		{{"model_key", COL_TEXT}, {"gpu_cards", COL_NUM}, {"gpu_memory_gib", COL_NUM},
		 {"instances", COL_INT}, {"providers", COL_LIST}}},
	[T_BY_REGION] = {SEC_FLEET, "by_region",
		"SELECT provider, region, round(sum(gpu_cards)::numeric, 2),"
		" round(sum(gpu_memory_gib)::numeric, 1), round(sum(cpu_cores)::numeric, 2),"
		" round(sum(memory_gib)::numeric, 1)"
		" FROM aifleet.capacity_summary GROUP BY provider, region"
		" ORDER BY provider, region",
		{{"provider", COL_TEXT}, {"region", COL_TEXT}, {"gpu_cards", COL_NUM},
		 {"gpu_memory_gib", COL_NUM}, {"cpu_cores", COL_NUM}, {"memory_gib", COL_NUM}}},
	/* One bucket of seven days: its average and peak are per scope, and a
	 * model's peak here is the sum of its scopes' peaks (README). */
	[T_GPU_HOURS] = {SEC_GPU_HOURS, "gpu_hours_7d",
		"SELECT model_key, round(sum(gpu_hours)::numeric, 1),"
		" round(sum(avg_gpu_cards)::numeric, 2), round(sum(peak_gpu_cards)::numeric, 2)"
		" FROM aifleet.capacity_over_time(now() - interval '7 days', now(),"
		"  interval '7 days')"
		" GROUP BY model_key HAVING sum(gpu_hours) > 0"
		" ORDER BY sum(gpu_hours) DESC, model_key NULLS LAST",
		{{"model_key", COL_TEXT}, {"gpu_hours", COL_NUM}, {"avg_gpu_cards", COL_NUM},
		 {"peak_gpu_cards", COL_NUM}}},
	[T_COUNTS] = {SEC_CHANGES, "counts",
		"SELECT entity_type, sum(created), sum(updated), sum(deleted), sum(restored),"
		" sum(created + updated + deleted + restored)"
		" FROM aifleet.changes_by_day($1::timestamptz, $2::timestamptz)"
		" GROUP BY entity_type"
		" ORDER BY array_position(ARRAY['instance', 'service', 'resource'], entity_type),"
		" entity_type",
		{{"entity_type", COL_TEXT}, {"created", COL_INT}, {"updated", COL_INT},
		 {"deleted", COL_INT}, {"restored", COL_INT}, {"total", COL_INT}}},
	[T_CHANGES] = {SEC_CHANGES, "first",
		"SELECT " ISO_S("time") ", change, entity_type, provider, account, region, product,"
		" native_id, name FROM aifleet.change_feed"
		" WHERE time >= $1::timestamptz AND time < $2::timestamptz"
		" ORDER BY time, seq LIMIT $4::int",
		{{"time", COL_TEXT}, {"change", COL_TEXT}, {"entity_type", COL_TEXT},
		 {"provider", COL_TEXT}, {"account", COL_TEXT}, {"region", COL_TEXT},
		 {"product", COL_TEXT}, {"native_id", COL_TEXT}, {"name", COL_TEXT}}},
	[T_STALE] = {SEC_STALE, "stale_scopes",
		"SELECT provider, account, region, product, last_state,"
		" " ISO_S("last_complete_at") ","
		" justify_interval(date_trunc('second', age))::text, held_deletes, last_error"
		" FROM aifleet.scope_freshness"
		" WHERE last_state <> 'complete' OR last_complete_at IS NULL OR age > $5::interval"
		" ORDER BY provider, account, region, product",
		{{"provider", COL_TEXT}, {"account", COL_TEXT}, {"region", COL_TEXT},
		 {"product", COL_TEXT}, {"last_state", COL_TEXT}, {"last_complete_at", COL_TEXT},
		 {"age", COL_TEXT}, {"held_deletes", COL_INT}, {"last_error", COL_TEXT}}},
};

typedef enum since_from {
	SINCE_OPTION,      /* --since */
	SINCE_LAST_REPORT, /* where the last recorded report ended */
	SINCE_DEFAULT,     /* no report recorded yet: AF_REPORT_DEFAULT_WINDOW */
} since_from;

struct af_report {
	char since[40], until[40]; /* the changes window [since, until), ISO_US */
	since_from from;
	char *since_option; /* the --since value, copied */
	char *stale_after;  /* as given, or the default */
	int top_models, max_changes;
	int64_t last_report_id; /* SINCE_LAST_REPORT: its id */
	int64_t through_run_id; /* newest sync_run in the snapshot, 0 for none */
	bool has_report_table;  /* aifleet.report_run exists */
	bool can_read_reports;  /* ... and this role may read it */
	long long total_changes;
	PGresult *res[NTABLES];
};

/* ---- formats --------------------------------------------------------------- */

static const char *const format_names[] = {"text", "markdown", "json"};

int af_report_parse_format(af_report_format *out, const char *name)
{
	for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
		if (strcasecmp(name, format_names[i]) == 0) {
			*out = (af_report_format)i;
			return 0;
		}
	}
	return af_error_set(AF_ERR_CONFIG, "unknown report format '%s' (text, markdown, json)",
			    name);
}

const char *af_report_format_name(af_report_format format)
{
	return (unsigned)format < 3 ? format_names[format] : "text";
}

/* ---- gathering ------------------------------------------------------------- */

static int ncols(const report_table *t)
{
	int n = 0;

	while (n < MAX_COLS && t->cols[n].name)
		n++;
	return n;
}

static PGresult *query(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	static const Oid types[NPARAMS] = {TEXT_OID, TEXT_OID, TEXT_OID, TEXT_OID, TEXT_OID};

	return PQexecParams(conn, sql, nparams, nparams ? types : NULL, params, NULL, NULL, 0);
}

/* A query with at most one parameter that must answer rows; *res is the
 * caller's on success only. */
static int fetch(PGconn *conn, const char *what, const char *sql, const char *param,
		 PGresult **res)
{
	PGresult *r = query(conn, sql, param ? 1 : 0, &param);

	*res = NULL;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		int err = af_store_db_error(conn, r, what);

		PQclear(r);
		return err;
	}
	*res = r;
	return 0;
}

/* Casts a value the user gave, behind a savepoint: a value PostgreSQL
 * cannot read (SQLSTATE class 22, data exception) rolls back to it and
 * leaves *res NULL, so that the caller can try another reading and the
 * report's transaction goes on. */
static int try_cast(PGconn *conn, const char *what, const char *sql, const char *value,
		    PGresult **res)
{
	PGresult *r;
	const char *state;
	int err;

	*res = NULL;
	if ((err = af_store_exec(conn, what, "SAVEPOINT report_cast")) < 0)
		return err;
	r = query(conn, sql, 1, &value);
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		if ((err = af_store_exec(conn, what, "RELEASE SAVEPOINT report_cast")) < 0)
			PQclear(r);
		else
			*res = r;
		return err;
	}
	state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (!state || strncmp(state, "22", 2) != 0) {
		err = af_store_db_error(conn, r, what);
		PQclear(r);
		return err;
	}
	PQclear(r);
	return af_store_exec(conn, what, "ROLLBACK TO SAVEPOINT report_cast");
}

static void copy_value(char *dst, size_t size, const PGresult *res, int row, int col)
{
	snprintf(dst, size, "%s", PQgetvalue(res, row, col));
}

/* The end of the window, what the snapshot holds of runs and reports. */
static int read_now(af_report *r, PGconn *conn)
{
	PGresult *res;
	int err = fetch(conn, "reading the time",
			"SELECT " ISO_US("now()") ", to_regclass('aifleet.report_run') IS NOT NULL,"
			" coalesce(has_table_privilege(to_regclass('aifleet.report_run'),"
			"  'SELECT'), false),"
			" coalesce((SELECT max(id) FROM aifleet.run_status), 0)",
			NULL, &res);

	if (err < 0)
		return err;
	copy_value(r->until, sizeof(r->until), res, 0, 0);
	r->has_report_table = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	r->can_read_reports = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	r->through_run_id = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
	PQclear(res);
	return 0;
}

static int check_stale_after(af_report *r, PGconn *conn)
{
	PGresult *res;
	int err = try_cast(conn, "reading --stale-after", "SELECT $1::interval", r->stale_after,
			   &res);

	if (err < 0)
		return err;
	if (!res)
		return af_error_set(AF_ERR_PARAM,
				    "--stale-after: '%s' is not a duration (26h, 30min, '2 days')",
				    r->stale_after);
	PQclear(res);
	return 0;
}

/* --since: a time, or else a duration back from now (either sign: in
 * PostgreSQL '1 day ago' is minus one day). No string is both. */
static int since_from_option(af_report *r, PGconn *conn)
{
	static const char time_sql[] = "SELECT " ISO_US("$1::timestamptz");
	static const char duration_sql[] =
		"SELECT " ISO_US("now() - CASE WHEN $1::interval < interval '0'"
				 " THEN -$1::interval ELSE $1::interval END");
	PGresult *res;
	int err;

	if ((err = try_cast(conn, "reading --since", time_sql, r->since_option, &res)) < 0)
		return err;
	if (!res && (err = try_cast(conn, "reading --since", duration_sql, r->since_option,
				    &res)) < 0)
		return err;
	if (!res)
		return af_error_set(AF_ERR_PARAM,
				    "--since: '%s' is neither a time nor a duration (2026-05-01, "
				    "2026-05-01T08:00Z, 24h, 7d, '90 minutes')",
				    r->since_option);
	copy_value(r->since, sizeof(r->since), res, 0, 0);
	r->from = SINCE_OPTION;
	PQclear(res);
	return 0;
}

/* Where the last recorded report ended, or the start of the first run it
 * did not see if that is earlier (see the top of the file). *found is
 * false when no report is recorded. */
static int since_last_report(af_report *r, PGconn *conn, bool *found)
{
	PGresult *res;
	int err = fetch(conn, "reading the last report",
			"SELECT p.id, " ISO_US("least(p.reported_at, (SELECT min(s.started_at)"
					       " FROM aifleet.run_status s"
					       " WHERE s.id > coalesce(p.through_run_id, 0)))")
			" FROM (SELECT id, reported_at, through_run_id FROM aifleet.report_run"
			" ORDER BY id DESC LIMIT 1) p",
			NULL, &res);

	*found = false;
	if (err < 0)
		return err;
	if (PQntuples(res) == 1) {
		r->last_report_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		copy_value(r->since, sizeof(r->since), res, 0, 1);
		r->from = SINCE_LAST_REPORT;
		*found = true;
	}
	PQclear(res);
	return 0;
}

static int since_default(af_report *r, PGconn *conn)
{
	PGresult *res;
	int err = fetch(conn, "reading the time",
			"SELECT " ISO_US("now() - interval '" AF_REPORT_DEFAULT_WINDOW "'"), NULL,
			&res);

	if (err < 0)
		return err;
	copy_value(r->since, sizeof(r->since), res, 0, 0);
	r->from = SINCE_DEFAULT;
	PQclear(res);
	return 0;
}

static int read_window(af_report *r, PGconn *conn)
{
	bool found = false;
	int err;

	if ((err = read_now(r, conn)) < 0 || (err = check_stale_after(r, conn)) < 0)
		return err;
	if (r->since_option)
		return since_from_option(r, conn);
	if (r->has_report_table && !r->can_read_reports)
		af_warn("report", "this role may not read aifleet.report_run: the changes "
				  "shown are of the last " AF_REPORT_DEFAULT_WINDOW);
	if (r->can_read_reports && (err = since_last_report(r, conn, &found)) < 0)
		return err;
	return found ? 0 : since_default(r, conn);
}

static int read_tables(af_report *r, PGconn *conn)
{
	char top[16], max[16], what[64];
	const char *params[NPARAMS] = {r->since, r->until, top, max, r->stale_after};

	snprintf(top, sizeof(top), "%d", r->top_models);
	snprintf(max, sizeof(max), "%d", r->max_changes);
	for (int t = 0; t < NTABLES; t++) {
		snprintf(what, sizeof(what), "reading the report's %s", tables[t].key);
		r->res[t] = query(conn, tables[t].sql, NPARAMS, params);
		if (PQresultStatus(r->res[t]) != PGRES_TUPLES_OK)
			return af_store_db_error(conn, r->res[t], what);
		/* the renderers read every column of the description */
		if (PQnfields(r->res[t]) != ncols(&tables[t]))
			return af_error_set(AF_ERR_GENERIC, "%s: %d columns, %d described", what,
					    PQnfields(r->res[t]), ncols(&tables[t]));
	}
	for (int i = 0; i < PQntuples(r->res[T_COUNTS]); i++)
		r->total_changes += strtoll(PQgetvalue(r->res[T_COUNTS], i, 5), NULL, 10);
	return 0;
}

static int report_new(af_report **out, const af_report_options *opts)
{
	af_report *r = calloc(1, sizeof(*r));
	const char *stale = opts && opts->stale_after ? opts->stale_after : AF_REPORT_STALE_AFTER;

	*out = NULL;
	if (!r)
		return af_error_oom();
	r->top_models = opts && opts->top_models > 0 ? opts->top_models : DEFAULT_TOP_MODELS;
	r->max_changes = opts && opts->max_changes > 0 ? opts->max_changes : DEFAULT_MAX_CHANGES;
	r->stale_after = strdup(stale);
	r->since_option = opts && opts->since ? strdup(opts->since) : NULL;
	if (!r->stale_after || (opts && opts->since && !r->since_option)) {
		af_report_free(r);
		return af_error_oom();
	}
	*out = r;
	return 0;
}

int af_report_gather(af_report **out, af_store *s, const af_report_options *opts)
{
	af_report *r = NULL;
	int err;

	*out = NULL;
	if ((err = report_new(&r, opts)) < 0)
		return err;
	/* One snapshot: the sections agree with each other, and the window
	 * ends at this transaction's now(). */
	if ((err = af_store_exec(s->conn, "starting the report",
				 "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) < 0)
		goto done;
	if ((err = read_window(r, s->conn)) < 0 || (err = read_tables(r, s->conn)) < 0)
		goto done;
	err = af_store_exec(s->conn, "ending the report", "COMMIT");
done:
	if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		PQclear(PQexec(s->conn, "ROLLBACK"));
	if (err == 0) {
		*out = r;
		r = NULL;
	}
	af_report_free(r);
	return err;
}

void af_report_free(af_report *r)
{
	if (!r)
		return;
	for (int t = 0; t < NTABLES; t++)
		PQclear(r->res[t]);
	free(r->since_option);
	free(r->stale_after);
	free(r);
}

/* ---- recording ------------------------------------------------------------- */

int af_report_record(af_store *s, const af_report *r, af_report_format format, int64_t *id)
{
	char through[24];
	const char *params[4] = {r->until, r->since, af_report_format_name(format), through};
	PGresult *res;
	const char *state;
	int err = 0;

	if (id)
		*id = 0;
	if (!r->has_report_table) {
		af_warn("report", "report not recorded: the database has no aifleet.report_run "
				  "(aifleet migrate creates it)");
		return 0;
	}
	snprintf(through, sizeof(through), "%lld", (long long)r->through_run_id);
	res = query(s->conn,
		    "INSERT INTO aifleet.report_run (reported_at, since, format, through_run_id)"
		    " VALUES ($1::timestamptz, $2::timestamptz, $3, nullif($4::bigint, 0))"
		    " RETURNING id",
		    4, params);
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		if (id)
			*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	} else if (state && (strcmp(state, "42501") == 0 || strcmp(state, "25006") == 0)) {
		/* insufficient_privilege, read_only_sql_transaction: a reader's
		 * or a standby's report is a report all the same */
		af_warn("report", "report not recorded (%s): the next report starts where the last "
				  "recorded one ended",
			PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
	} else {
		err = af_store_db_error(s->conn, res, "recording the report");
	}
	PQclear(res);
	return err;
}

/* ---- text and markdown ----------------------------------------------------- */

/* One character of UTF-8 at p: its length in bytes (1 for a byte that
 * starts no valid sequence) and its code point. */
static size_t utf8_next(const unsigned char *p, uint32_t *cp)
{
	size_t n = *p >= 0xc2 && *p <= 0xdf ? 2 : *p >= 0xe0 && *p <= 0xef ? 3
		 : *p >= 0xf0 && *p <= 0xf4 ? 4 : 1;

	if (n == 1) {
		*cp = *p;
		return 1;
	}
	*cp = *p & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			*cp = *p;
			return 1;
		}
		*cp = (*cp << 6) | (p[i] & 0x3f);
	}
	return n;
}

/* East Asian wide and fullwidth characters take two columns of a terminal
 * (names in Chinese are common here): the main blocks. */
static bool is_wide(uint32_t cp)
{
	static const uint32_t ranges[][2] = {
		{0x1100, 0x115f},   {0x2e80, 0x303e},   {0x3041, 0x33ff}, {0x3400, 0x4dbf},
		{0x4e00, 0x9fff},   {0xa000, 0xa4cf},   {0xac00, 0xd7a3}, {0xf900, 0xfaff},
		{0xfe30, 0xfe4f},   {0xff00, 0xff60},   {0xffe0, 0xffe6}, {0x1f300, 0x1f64f},
		{0x1f900, 0x1f9ff}, {0x20000, 0x3fffd},
	};

	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		if (cp >= ranges[i][0] && cp <= ranges[i][1])
			return true;
	return false;
}

static size_t text_width(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t w = 0;
	uint32_t cp;

	while (*p) {
		p += utf8_next(p, &cp);
		w += is_wide(cp) ? 2 : 1;
	}
	return w;
}

/* A value from the database, printed as data: a control character (a
 * newline in an error message) as a blank, so that a row stays one line;
 * in markdown also | and \ escaped, so that a cell stays one cell. */
static void put_text(FILE *out, const char *s, bool markdown)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			fputc(' ', out);
		else if (markdown && (c == '|' || c == '\\'))
			fprintf(out, "\\%c", c);
		else
			fputc(c, out);
	}
}

static void put_spaces(FILE *out, size_t n)
{
	while (n-- > 0)
		fputc(' ', out);
}

/* row < 0 is the header. */
static const char *cell(const PGresult *res, const report_table *t, int row, int col)
{
	if (row < 0)
		return t->cols[col].name;
	return PQgetisnull(res, row, col) ? "-" : PQgetvalue(res, row, col);
}

static bool right_aligned(const report_col *c)
{
	return c->type == COL_INT || c->type == COL_NUM;
}

static void text_row(FILE *out, const PGresult *res, const report_table *t, int row,
		     const size_t *width, int n)
{
	for (int c = 0; c < n; c++) {
		const char *v = cell(res, t, row, c);
		size_t pad = width[c] - text_width(v);

		if (c > 0)
			fputs("  ", out);
		if (right_aligned(&t->cols[c]))
			put_spaces(out, pad);
		put_text(out, v, false);
		if (!right_aligned(&t->cols[c]) && c + 1 < n)
			put_spaces(out, pad);
	}
	fputc('\n', out);
}

static void text_table(FILE *out, const PGresult *res, const report_table *t)
{
	size_t width[MAX_COLS];
	int n = ncols(t), rows = PQntuples(res);

	if (rows == 0) {
		fputs("(none)\n", out);
		return;
	}
	for (int c = 0; c < n; c++) {
		width[c] = text_width(t->cols[c].name);
		for (int i = 0; i < rows; i++) {
			size_t w = text_width(cell(res, t, i, c));

			width[c] = w > width[c] ? w : width[c];
		}
	}
	for (int i = -1; i < rows; i++)
		text_row(out, res, t, i, width, n);
}

static void markdown_row(FILE *out, const PGresult *res, const report_table *t, int row, int n)
{
	for (int c = 0; c < n; c++) {
		fputs(c ? " | " : "| ", out);
		put_text(out, cell(res, t, row, c), true);
	}
	fputs(" |\n", out);
}

static void markdown_table(FILE *out, const PGresult *res, const report_table *t)
{
	int n = ncols(t);

	if (PQntuples(res) == 0) {
		fputs("_none_\n", out);
		return;
	}
	markdown_row(out, res, t, -1, n);
	for (int c = 0; c < n; c++)
		fputs(right_aligned(&t->cols[c]) ? "|---:" : "|---", out);
	fputs("|\n", out);
	for (int i = 0; i < PQntuples(res); i++)
		markdown_row(out, res, t, i, n);
}

/* "2026-05-01T08:00:00.123456Z" as people read it, to the second. */
static const char *display_time(const char *iso, char buf[24])
{
	if (strlen(iso) < 19 || iso[10] != 'T')
		return iso; /* infinity, -infinity */
	snprintf(buf, 24, "%.19sZ", iso);
	return buf;
}

static void section_heading(const af_report *r, int section, char *buf, size_t size)
{
	char since[24], until[24], origin[160];

	switch (section) {
	case SEC_FLEET: snprintf(buf, size, "Fleet now"); return;
	case SEC_GPU_HOURS: snprintf(buf, size, "GPU-hours of the last 7 days by model"); return;
	case SEC_STALE:
		snprintf(buf, size, "Stale or failing scopes (not complete, or last complete "
				    "more than %s ago)",
			 r->stale_after);
		return;
	}
	if (r->from == SINCE_OPTION)
		snprintf(origin, sizeof(origin), "--since %s", r->since_option);
	else if (r->from == SINCE_LAST_REPORT)
		snprintf(origin, sizeof(origin), "since the last report, #%lld",
			 (long long)r->last_report_id);
	else
		snprintf(origin, sizeof(origin), "no earlier report: the last %s",
			 AF_REPORT_DEFAULT_WINDOW);
	snprintf(buf, size, "Changes from %s to %s (%s): %lld", display_time(r->since, since),
		 display_time(r->until, until), origin, r->total_changes);
}

/* NULL: the table goes under its section's heading without a title. */
static const char *table_title(const af_report *r, int t, char *buf, size_t size)
{
	int shown = PQntuples(r->res[t]);

	switch (t) {
	case T_TOP_MODELS:
		snprintf(buf, size, "Top %d models by GPU cards", r->top_models);
		return buf;
	case T_BY_REGION: return "Capacity by cloud and region";
	case T_COUNTS: return "Changes by entity type";
	case T_CHANGES:
		if (r->total_changes > shown)
			snprintf(buf, size, "The first %d of %lld changes (all: %s)", shown,
				 r->total_changes, "aifleet.change_feed");
		else
			snprintf(buf, size, "Every change, oldest first");
		return buf;
	default: return NULL;
	}
}

typedef struct table_style {
	bool markdown;
	void (*table)(FILE *out, const PGresult *res, const report_table *t);
} table_style;

/* level 0: the report's title, 1: a section, 2: a table */
static void heading(FILE *out, const table_style *st, int level, const char *text)
{
	static const char *const md[] = {"# ", "## ", "### "};
	static const char *const before[] = {"", "== ", ""};
	static const char *const after[] = {"\n\n", " ==\n", "\n"};

	fputs(st->markdown ? md[level] : before[level], out);
	put_text(out, text, st->markdown);
	fputs(st->markdown ? "\n\n" : after[level], out);
}

static void render_tables(const af_report *r, const table_style *st, FILE *out)
{
	char title[256], until[24];

	snprintf(title, sizeof(title), "aifleet report, %s", display_time(r->until, until));
	heading(out, st, 0, title);
	for (int sec = 0; sec < NSECTIONS; sec++) {
		section_heading(r, sec, title, sizeof(title));
		heading(out, st, 1, title);
		for (int t = 0; t < NTABLES; t++) {
			const char *sub;

			if (tables[t].section != sec)
				continue;
			if ((sub = table_title(r, t, title, sizeof(title))))
				heading(out, st, 2, sub);
			st->table(out, r->res[t], &tables[t]);
			fputc('\n', out);
		}
	}
}

/* ---- JSON ------------------------------------------------------------------ */

/* Adds v under key; v NULL is out of memory (JSON null goes through
 * put_null), and v is released when it cannot be added. */
static int put(json_object *o, const char *key, json_object *v)
{
	if (!v)
		return -1;
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

static int put_null(json_object *o, const char *key)
{
	return json_object_object_add(o, key, NULL);
}

static int json_list(json_object **out, const char *s)
{
	json_object *arr = json_object_new_array();

	*out = NULL;
	while (arr && *s) {
		size_t n = strcspn(s, ",");
		json_object *v = json_object_new_string_len(s, (int)n);

		if (!v || json_object_array_add(arr, v) < 0) {
			json_object_put(v);
			json_object_put(arr);
			return -1;
		}
		s += n + (s[n] == ',');
	}
	*out = arr;
	return arr ? 0 : -1;
}

/* *out NULL with 0 is JSON null (SQL NULL). */
static int json_cell(json_object **out, const PGresult *res, int row, int col, col_type type)
{
	const char *v = PQgetvalue(res, row, col);
	double d;

	*out = NULL;
	if (PQgetisnull(res, row, col))
		return 0;
	switch (type) {
	case COL_INT: *out = json_object_new_int64(strtoll(v, NULL, 10)); break;
	case COL_NUM:
		/* PostgreSQL's numeric text is JSON's number syntax, except NaN */
		d = strtod(v, NULL);
		if (!isfinite(d))
			return 0;
		*out = json_object_new_double_s(d, v);
		break;
	case COL_LIST: return json_list(out, v);
	default: *out = json_object_new_string(v); break;
	}
	return *out ? 0 : -1;
}

static json_object *json_rows(const PGresult *res, const report_table *t)
{
	json_object *arr = json_object_new_array();
	int n = ncols(t);

	for (int i = 0; arr && i < PQntuples(res); i++) {
		json_object *row = json_object_new_object(), *v;

		if (!row || json_object_array_add(arr, row) < 0) {
			json_object_put(row);
			goto oom;
		}
		for (int c = 0; c < n; c++) {
			if (json_cell(&v, res, i, c, t->cols[c].type) < 0)
				goto oom;
			if ((v ? put(row, t->cols[c].name, v) : put_null(row, t->cols[c].name)) < 0)
				goto oom;
		}
	}
	return arr;
oom:
	json_object_put(arr);
	return NULL;
}

static const char *const since_from_names[] = {"option", "last_report", "default"};

static int json_changes(json_object *changes, const af_report *r)
{
	if (put(changes, "since", json_object_new_string(r->since)) < 0 ||
	    put(changes, "until", json_object_new_string(r->until)) < 0 ||
	    put(changes, "since_from", json_object_new_string(since_from_names[r->from])) < 0)
		return -1;
	if ((r->since_option ? put(changes, "since_option", json_object_new_string(r->since_option))
			     : put_null(changes, "since_option")) < 0)
		return -1;
	if ((r->last_report_id
		     ? put(changes, "last_report_id", json_object_new_int64(r->last_report_id))
		     : put_null(changes, "last_report_id")) < 0)
		return -1;
	if (put(changes, "total", json_object_new_int64(r->total_changes)) < 0 ||
	    put(changes, "counts", json_rows(r->res[T_COUNTS], &tables[T_COUNTS])) < 0 ||
	    put(changes, "first", json_rows(r->res[T_CHANGES], &tables[T_CHANGES])) < 0)
		return -1;
	return 0;
}

static json_object *json_report(const af_report *r)
{
	json_object *root = json_object_new_object(), *fleet, *changes;

	if (!root || put(root, "generated_at", json_object_new_string(r->until)) < 0)
		goto oom;
	if (put(root, "fleet_now", fleet = json_object_new_object()) < 0 ||
	    put(fleet, "top_models", json_rows(r->res[T_TOP_MODELS], &tables[T_TOP_MODELS])) < 0 ||
	    put(fleet, "by_region", json_rows(r->res[T_BY_REGION], &tables[T_BY_REGION])) < 0)
		goto oom;
	if (put(root, "gpu_hours_7d", json_rows(r->res[T_GPU_HOURS], &tables[T_GPU_HOURS])) < 0 ||
	    put(root, "changes", changes = json_object_new_object()) < 0 ||
	    json_changes(changes, r) < 0)
		goto oom;
	if (put(root, "stale_after", json_object_new_string(r->stale_after)) < 0 ||
	    put(root, "stale_scopes", json_rows(r->res[T_STALE], &tables[T_STALE])) < 0)
		goto oom;
	return root;
oom:
	json_object_put(root);
	return NULL;
}

static int render_json(const af_report *r, FILE *out)
{
	json_object *root = json_report(r);
	const char *text = root ? json_object_to_json_string_ext(
					  root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							JSON_C_TO_STRING_NOSLASHESCAPE)
				: NULL;

	if (text) {
		fputs(text, out);
		fputc('\n', out);
	}
	json_object_put(root);
	return text ? 0 : af_error_oom();
}

int af_report_render(const af_report *r, af_report_format format, FILE *out)
{
	static const table_style text = {false, text_table}, markdown = {true, markdown_table};
	int err = 0;

	if (format == AF_REPORT_JSON)
		err = render_json(r, out);
	else
		render_tables(r, format == AF_REPORT_MARKDOWN ? &markdown : &text, out);
	/* the caller records the report only if it reached its reader */
	if (err == 0 && (fflush(out) != 0 || ferror(out)))
		err = af_error_set(AF_ERR_IO, "writing the report: %s", strerror(errno));
	return err;
}
