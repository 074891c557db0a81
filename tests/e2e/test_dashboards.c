/*
 * The Grafana dashboard of deploy/grafana, held to what it promises: every
 * panel's query runs on a database that aifleet-sim and aifleet filled, as
 * aifleet_reader (so the reader's grants suffice), and returns the columns
 * its panel was built for; it reads only the documented views and
 * functions, through the provisioned data source.
 */
#include <ctype.h>
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "aifleet/buf.h"
#include "e2e.h"
#include "testdb.h"
#include "testutil.h"

#define GRAFANA_DIR   AF_SOURCE_DIR "/deploy/grafana"
#define DASHBOARD     GRAFANA_DIR "/dashboards/aifleet.json"
#define DATASOURCE    GRAFANA_DIR "/provisioning/datasources/aifleet.yml"
#define DASH_PROVIDER GRAFANA_DIR "/provisioning/dashboards/aifleet.yml"

/*
 * What each panel's query returns, in order, keyed by panel title. A panel
 * that is not here, or a line here whose panel is gone, fails the test: a
 * new panel comes with the columns its visualization reads, and a view
 * that renames or drops one of them breaks here, not on someone's screen.
 * min_rows is what the demo data of test_queries_run_as_reader() give at
 * least (0: may be empty there).
 */
typedef struct panel_expect {
	const char *title;
	int min_rows;
	const char *columns; /* comma-separated */
} panel_expect;

static const panel_expect expected[] = {
	{"Fleet now", 1,
	 "instances,services,gpu_cards,gpu_memory_gib,gpu_memory_gib_catalog,cpu_cores,memory_gib"},
	{"Fleet now by cloud", 1, "provider,gpu_cards,gpu_memory_gib"},
	{"Fleet now by region", 1,
	 "provider,region,instances,gpu_cards,gpu_memory_gib,cpu_cores,memory_gib"},
	{"Fleet now by GPU model", 1, "gpu_model,gpu_cards,gpu_memory_gib"},
	{"Fleet now by model key", 1,
	 "model_key,clouds,services,gpu_cards,gpu_memory_gib,cpu_cores,memory_gib"},
	{"GPU-hours by model key", 1, "time,metric,gpu_hours"},
	{"Average GPU cards by GPU model", 1, "time,metric,avg_gpu_cards"},
	{"Changes per day", 1, "time,created,updated,deleted,restored"},
	{"Recent changes", 1,
	 "time,run_id,change,entity_type,provider,account,region,product,native_id,name,diff"},
	{"Scope freshness and errors", 1,
	 "provider,account,region,product,last_state,last_complete_at,age_seconds,last_attempt_at,"
	 "last_run_id,last_error"},
	{"Scopes", 1, "scopes,not_complete,held,oldest_complete_age_seconds"},
	{"Held deletes", 1,
	 "provider,account,region,product,held_deletes,held_live,last_attempt_at,accept_with"},
	{"Last runs", 3,
	 "id,started_at,finished_at,duration_seconds,status,trigger,created,updated,deleted,"
	 "restored,unchanged,history_rows,rejected,error"},
	/* the simulator's GPU types decide this one */
	{"GPU names the catalog does not resolve", 0,
	 "provider,product,gpu_model,resources,gpu_cards"},
	{"GPU memory from the catalog", 1,
	 "provider,account,region,product,owner_kind,owner_native_id,model_key,gpu_model,gpu_key,"
	 "gpu_memory_gib"},
	{"GPU catalog", 1, "gpu_key,vendor,family,memory_gib,architecture,shipped,source"},
	{"Model names by key", 1, "model_key,reported_as,provider,product,entities"},
	{"Model aliases", 1, "name_key,model_key,note,shipped"},
};
#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

/* The objects of schema aifleet that aifleet_reader is meant to read
 * (docs/schema.md, sql/005_analytics.sql) and the dashboard may use. A
 * query that names anything else of the schema (a table, an as-of function
 * the dashboard has no use for) fails, even where the reader could read it. */
static const char *const readable[] = {
	"current_instances", "current_services",  "current_resources",  "capacity_summary",
	"capacity_by_model", "derived_resources", "change_feed",        "run_status",
	"scope_freshness",   "gpu_model",         "model_alias",        "capacity_over_time",
	"changes_by_day",    "model_key",         "gpu_lookup",
};

/* ---- the dashboard file ---------------------------------------------------- */

static json_object *load_dashboard(void)
{
	char *text = af_test_read_file(DASHBOARD, NULL);
	enum json_tokener_error jerr;
	json_object *dash;

	if (!text)
		fail_msg("cannot read %s", DASHBOARD);
	dash = json_tokener_parse_verbose(text, &jerr);
	if (!dash)
		fail_msg("%s: %s", DASHBOARD, json_tokener_error_desc(jerr));
	free(text);
	return dash;
}

static const char *get_string(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Every panel, those inside rows too (a collapsed row holds its panels in
 * its own "panels"), into `out` (borrowed from the dashboard). */
static size_t collect_panels(json_object *panels, json_object **out, size_t n, size_t max)
{
	for (size_t i = 0; panels && i < json_object_array_length(panels); i++) {
		json_object *p = json_object_array_get_idx(panels, i), *inner;

		assert_true(n < max);
		out[n++] = p;
		if (json_object_object_get_ex(p, "panels", &inner))
			n = collect_panels(inner, out, n, max);
	}
	return n;
}

static bool is_row(json_object *panel)
{
	const char *type = get_string(panel, "type");

	return type && strcmp(type, "row") == 0;
}

static const panel_expect *find_expect(const char *title)
{
	for (size_t i = 0; i < N_EXPECTED; i++)
		if (strcmp(expected[i].title, title) == 0)
			return &expected[i];
	return NULL;
}

/* A datasource reference must name the provisioned data source by uid. */
static void check_datasource(const char *title, json_object *holder)
{
	json_object *ds;
	const char *uid;

	if (!json_object_object_get_ex(holder, "datasource", &ds))
		fail_msg("panel \"%s\": a target without a datasource", title);
	uid = get_string(ds, "uid");
	if (!uid || strcmp(uid, "aifleet") != 0)
		fail_msg("panel \"%s\": datasource uid %s, not aifleet", title,
			 uid ? uid : "(none)");
}

/*
 * Every aifleet.<name> in the query is on the reader's list, and the query
 * names at least one (an unqualified name resolves to nothing of the
 * schema: aifleet is on no search_path). A quoted "aifleet" would hide a
 * name from this scan, so it is refused too.
 */
static void check_objects(const char *title, const char *sql)
{
	char *lower = strdup(sql);
	size_t found = 0;

	for (char *c = lower; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (strstr(lower, "\"aifleet\""))
		fail_msg("panel \"%s\": quoted schema name in\n%s", title, sql);
	for (const char *p = lower; (p = strstr(p, "aifleet.")) != NULL; p += 8) {
		const char *name = p + 8;
		size_t len = 0;
		bool ok = false;

		if (p > lower && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
			continue; /* part of a longer word */
		while (isalnum((unsigned char)name[len]) || name[len] == '_')
			len++;
		for (size_t i = 0; i < sizeof(readable) / sizeof(readable[0]) && !ok; i++)
			ok = strlen(readable[i]) == len && strncmp(readable[i], name, len) == 0;
		if (!ok)
			fail_msg("panel \"%s\" reads aifleet.%.*s, which is not among the reader's "
				 "documented views and functions",
				 title, (int)len, name);
		found++;
	}
	if (!found)
		fail_msg("panel \"%s\" reads nothing of schema aifleet:\n%s", title, sql);
	free(lower);
}

/* The time range the macros stand for, as SQL literals. */
typedef struct range {
	char from[48], to[48];
} range;

static void range_now(range *r)
{
	time_t now = time(NULL), from = now - 7 * 86400, to = now + 60;
	struct tm tm;

	/* RFC 3339 in UTC, as Grafana writes them */
	strftime(r->from, sizeof(r->from), "'%Y-%m-%dT%H:%M:%SZ'::timestamptz",
		 gmtime_r(&from, &tm));
	strftime(r->to, sizeof(r->to), "'%Y-%m-%dT%H:%M:%SZ'::timestamptz", gmtime_r(&to, &tm));
}

static bool ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/*
 * The query as Grafana would send it for the last 7 days with 1 h buckets.
 * Only $__timeFrom(), $__timeTo(), $__timeFilter(column) and $__interval
 * are allowed: any other macro or a dashboard variable fails, so that what
 * runs here is what Grafana runs. Caller frees.
 */
static char *expand_macros(const char *title, const char *sql, const range *r)
{
	af_buf out = AF_BUF_INIT;
	const char *p = sql;

	while (*p) {
		if (*p != '$') {
			af_buf_append(&out, p, 1);
			p++;
		} else if (strncmp(p, "$__timeFrom()", 13) == 0) {
			af_buf_puts(&out, r->from);
			p += 13;
		} else if (strncmp(p, "$__timeTo()", 11) == 0) {
			af_buf_puts(&out, r->to);
			p += 11;
		} else if (strncmp(p, "$__interval", 11) == 0 && !ident_char(p[11])) {
			af_buf_puts(&out, "1h");
			p += 11;
		} else if (strncmp(p, "$__timeFilter(", 14) == 0) {
			const char *arg = p + 14, *end = arg;
			int depth = 1;

			for (; *end && depth > 0; end++)
				depth += *end == '(' ? 1 : *end == ')' ? -1 : 0;
			if (depth)
				fail_msg("panel \"%s\": $__timeFilter( is not closed", title);
			af_buf_printf(&out, "%.*s BETWEEN %s AND %s", (int)(end - 1 - arg), arg,
				      r->from, r->to);
			p = end;
		} else if (strncmp(p, "$__", 3) == 0) {
			fail_msg("panel \"%s\": macro %.20s is not one the dashboards may use",
				 title, p);
		} else {
			fail_msg("panel \"%s\": variable %.20s: the dashboard has none", title, p);
		}
	}
	return af_buf_detach(&out);
}

/* The checks that need no database, for one target; returns its rawSql. */
static const char *check_target(const char *title, json_object *target, size_t index,
				json_object *targets)
{
	const char *ref = get_string(target, "refId"), *fmt = get_string(target, "format");
	const char *sql = get_string(target, "rawSql");

	if (!ref || !*ref)
		fail_msg("panel \"%s\": target %zu has no refId", title, index);
	for (size_t j = 0; j < index; j++)
		if (strcmp(get_string(json_object_array_get_idx(targets, j), "refId"), ref) == 0)
			fail_msg("panel \"%s\": refId %s twice", title, ref);
	if (!fmt || (strcmp(fmt, "table") != 0 && strcmp(fmt, "time_series") != 0))
		fail_msg("panel \"%s\": format %s, not table or time_series", title,
			 fmt ? fmt : "(none)");
	if (!sql || !*sql)
		fail_msg("panel \"%s\": target %s has no rawSql", title, ref);
	check_datasource(title, target);
	check_objects(title, sql);
	return sql;
}

/*
 * Walks every panel: ids unique, a title each, every non-row panel in
 * `expected` with at least one target, and every line of `expected` used.
 * With `reader` set, also runs each target's query there and compares its
 * columns and row count.
 */
static void check_dashboard(json_object *dash, PGconn *reader)
{
	json_object *all[256], *panels, *version;
	bool seen[N_EXPECTED] = {false};
	const char *uid = get_string(dash, "uid");
	size_t n;
	range r;

	range_now(&r);
	assert_non_null(uid);
	assert_string_equal(uid, "aifleet-fleet");
	assert_true(json_object_object_get_ex(dash, "schemaVersion", &version));
	assert_true(json_object_object_get_ex(dash, "panels", &panels));
	n = collect_panels(panels, all, 0, sizeof(all) / sizeof(all[0]));
	assert_true(n > 0);
	for (size_t i = 0; i < n; i++) {
		const char *title = get_string(all[i], "title");
		json_object *id, *targets, *ds;
		const panel_expect *want;

		if (!title || !*title)
			fail_msg("panel %zu has no title", i);
		if (!json_object_object_get_ex(all[i], "id", &id) ||
		    !json_object_is_type(id, json_type_int))
			fail_msg("panel \"%s\" has no id", title);
		for (size_t j = 0; j < i; j++) {
			json_object *other;

			json_object_object_get_ex(all[j], "id", &other);
			if (json_object_get_int64(other) == json_object_get_int64(id))
				fail_msg("panels \"%s\" and \"%s\" share id %lld", title,
					 get_string(all[j], "title"),
					 (long long)json_object_get_int64(id));
		}
		if (is_row(all[i]))
			continue;
		want = find_expect(title);
		if (!want)
			fail_msg("panel \"%s\" has no line in expected[] (what its query returns)",
				 title);
		if (seen[want - expected])
			fail_msg("two panels are titled \"%s\"", title);
		seen[want - expected] = true;
		if (json_object_object_get_ex(all[i], "datasource", &ds))
			check_datasource(title, all[i]);
		if (!json_object_object_get_ex(all[i], "targets", &targets) ||
		    json_object_array_length(targets) == 0)
			fail_msg("panel \"%s\" has no targets", title);

		for (size_t t = 0; t < json_object_array_length(targets); t++) {
			json_object *target = json_object_array_get_idx(targets, t);
			const char *sql = check_target(title, target, t, targets);
			char *run = expand_macros(title, sql, &r);
			af_buf cols = AF_BUF_INIT;
			PGresult *res;

			/* Grafana's time series format needs a column named time */
			if (strcmp(get_string(target, "format"), "time_series") == 0 &&
			    strncmp(want->columns, "time,", 5) != 0)
				fail_msg("panel \"%s\": a time series without a time column first",
					 title);
			if (!reader) {
				free(run);
				continue;
			}
			res = PQexec(reader, run);
			if (PQresultStatus(res) != PGRES_TUPLES_OK)
				fail_msg("panel \"%s\" as aifleet_reader: %s\n%s", title,
					 PQerrorMessage(reader), run);
			for (int c = 0; c < PQnfields(res); c++)
				af_buf_printf(&cols, "%s%s", c ? "," : "", PQfname(res, c));
			if (strcmp(af_buf_data(&cols), want->columns) != 0)
				fail_msg("panel \"%s\" returns columns\n  %s\nnot\n  %s", title,
					 af_buf_data(&cols), want->columns);
			if (PQntuples(res) < want->min_rows)
				fail_msg("panel \"%s\": %d rows on the demo data, want at least %d",
					 title, PQntuples(res), want->min_rows);
			af_buf_free(&cols);
			PQclear(res);
			free(run);
		}
	}
	for (size_t i = 0; i < N_EXPECTED; i++)
		if (!seen[i])
			fail_msg("expected[] has \"%s\", which no panel is titled",
				 expected[i].title);
}

/* ---- the provisioning files ------------------------------------------------ */

/* The value of `key:` on a line of a YAML file written like ours (one key a
 * line, no flow style), or NULL. Skips comment lines; borrowed from
 * `line`, which it cuts at the end of the line. */
static const char *yaml_value(char *line, const char *key)
{
	size_t len = strlen(key);

	while (*line == ' ' || *line == '-')
		line++;
	if (*line == '#' || strncmp(line, key, len) != 0 || line[len] != ':')
		return NULL;
	line += len + 1;
	while (*line == ' ')
		line++;
	return line;
}

/* Does the YAML file have `key: value` on some line? Also checks that each
 * of `env_keys` (NULL-terminated) takes its value from the environment. */
static bool yaml_has(const char *path, const char *key, const char *value,
		     const char *const *env_keys)
{
	char *text = af_test_read_file(path, NULL), *save = NULL;
	bool found = false;

	if (!text)
		fail_msg("cannot read %s", path);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *v = yaml_value(line, key);

		if (v && strcmp(v, value) == 0)
			found = true;
		for (size_t i = 0; env_keys && env_keys[i]; i++) {
			v = yaml_value(line, env_keys[i]);
			if (v && v[0] != '$')
				fail_msg("%s: %s is \"%s\": it must come from the environment "
					 "($NAME)",
					 path, env_keys[i], v);
		}
	}
	free(text);
	return found;
}

/* The data source is the one the panels name, and it holds no secret and
 * no address: all of them come from Grafana's environment. */
static void test_provisioning_files(void **state)
{
	static const char *const from_env[] = {"url", "user", "database", "password", "sslmode",
					       NULL};

	(void)state;
	assert_true(yaml_has(DATASOURCE, "uid", "aifleet", from_env));
	assert_true(yaml_has(DATASOURCE, "type", "grafana-postgresql-datasource", NULL));
	assert_true(yaml_has(DATASOURCE, "password", "$AIFLEET_PG_PASSWORD", NULL));
	assert_true(yaml_has(DASH_PROVIDER, "type", "file", NULL));
	assert_true(yaml_has(DASH_PROVIDER, "folder", "aifleet", NULL));
}

/* Everything that needs no database: the panels, their targets, their
 * macros and the objects they name. */
static void test_panels_are_wired(void **state)
{
	json_object *dash = load_dashboard();

	(void)state;
	check_dashboard(dash, NULL);
	json_object_put(dash);
}

/* ---- the queries, on a real fleet ------------------------------------------ */

static void mutate(const e2e_sim *sim, const char *body)
{
	json_object *m = e2e_sim_request(sim, "POST", "/_sim/mutate", body);

	assert_non_null(m);
	json_object_put(m);
}

/* What test_queries_run_as_reader() starts, for its teardown to stop:
 * cmocka runs a teardown after a failed test too, so that a failing panel
 * leaves no database, directory or simulator behind. */
typedef struct fleet {
	e2e_world w;
	PGconn *reader;
	json_object *dash;
} fleet;

static int fleet_up(void **state)
{
	static const char *const sim_args[] = {"--items", "20", "--seed", "5", NULL};
	fleet *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	*state = f;
	e2e_world_up(&f->w, sim_args);
	return 0;
}

static int fleet_down(void **state)
{
	fleet *f = *state;

	if (!f)
		return 0;
	json_object_put(f->dash);
	PQfinish(f->reader);
	e2e_world_down(&f->w);
	free(f);
	return 0;
}

/*
 * The demo fleet, synced, changed and synced again (so that history has
 * updates and deletes), then a Tair scope losing 60% of its instances
 * (held by the mass-delete guard: a row for "Held deletes"); then every
 * query of the dashboard, as aifleet_reader.
 */
static void test_queries_run_as_reader(void **state)
{
	fleet *f = *state;
	const char *migrate[] = {"--config", f->w.config, "migrate", NULL};
	const char *sync[] = {"--config", f->w.config, "--no-progress", "sync", NULL};
	char *err = NULL;
	PGresult *res;
	int code;

	assert_int_equal(e2e_run_aifleet(f->w.dir, migrate, NULL, NULL), 0);
	assert_int_equal(e2e_run_aifleet(f->w.dir, sync, NULL, NULL), 0);
	mutate(&f->w.sim, "{\"create\":0.1,\"update\":0.1,\"delete\":0.1,\"seed\":9}");
	assert_int_equal(e2e_run_aifleet(f->w.dir, sync, NULL, NULL), 0);
	mutate(&f->w.sim, "{\"delete\":0.6,\"seed\":10,\"product\":\"tair_kvcache\","
			"\"account\":\"demo-ali\",\"region\":\"cn-beijing\"}");
	code = e2e_run_aifleet(f->w.dir, sync, NULL, &err);
	if (code != 2)
		fail_msg("third sync: exit %d, want 2 (one scope held)\n%s", code, err);
	free(err);
	assert_true(af_testdb_query_int(&f->w.db, "SELECT count(*) FROM aifleet.history"
						" WHERE change IN ('updated', 'deleted')") > 0);

	/* A login role granted aifleet_reader, as Grafana's, holds exactly its
	 * privileges after SET ROLE. */
	f->reader = PQconnectdb(f->w.db.conninfo);
	assert_int_equal(PQstatus(f->reader), CONNECTION_OK);
	res = PQexec(f->reader, "SET ROLE aifleet_reader");
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	/* the role is what it claims: no table of the schema for it */
	res = PQexec(f->reader, "SELECT 1 FROM aifleet.instance LIMIT 1");
	assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
	PQclear(res);

	f->dash = load_dashboard();
	check_dashboard(f->dash, f->reader);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_provisioning_files),
		cmocka_unit_test(test_panels_are_wired),
		cmocka_unit_test_setup_teardown(test_queries_run_as_reader, fleet_up, fleet_down),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
