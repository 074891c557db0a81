/*
 * Hostile-server tests: the real aifleet binary against a lying Tair
 * KVCache API (hostile_srv.c, our own libmicrohttpd server on 127.0.0.1,
 * not the simulator) and a real PostgreSQL.
 *
 * Every case: one account (hostile-ali, credentials = env, dummy keys), one
 * product (tair_kvcache), two regions. cn-hangzhou ("good") always answers
 * 30 instances honestly. cn-beijing ("bad") answers 150 instances honestly
 * (2 pages of 100) on run 1, which must exit 0, and lies on run 2.
 * [sync] max_attempts = 2 and small timeouts keep retries quick.
 *
 * "contained" below means all of:
 *   - exit 2 (committed; cn-hangzhou complete, cn-beijing not);
 *   - a sync_run row was committed; scope_state: cn-hangzhou complete in
 *     this run, cn-beijing partial or failed;
 *   - nothing tombstoned: no history row with change = 'deleted', no row
 *     of instance/service/resource with deleted_at set;
 *   - cn-beijing's instance, service and resource rows (every column but
 *     last_run_id) and their history rows are byte-identical to run 1
 *     (md5 over to_jsonb of the rows, ordered by id), and so are
 *     cn-hangzhou's;
 *   - stderr names the scope alibaba/hostile-ali/cn-beijing/tair_kvcache
 *     and, where the lying answer was readable JSON with a RequestId, that
 *     request id ("R-1", or the HOSTILE-... id of the lying page);
 *   - every request had the expected shape and its own signature nonce.
 *
 * | #  | run 2: cn-beijing answers                    | expected outcome                       |
 * |----|----------------------------------------------|----------------------------------------|
 * | 1  | HTTP 200 {"Code":"InternalError",            | contained; stderr names R-1            |
 * |    | "Message":"boom","RequestId":"R-1"}, no list |                                        |
 * | 2  | page 2 empty while TotalCount is 150         | contained; request id named            |
 * | 3  | page 2 short (20 items), page 3 empty,       | contained; request id named            |
 * |    | TotalCount 150                               |                                        |
 * | 4  | TotalCount 10 while page 1 holds 100 items   | contained; request id named            |
 * | 5  | every page repeats page 1 (TotalCount 150)   | contained; request id named            |
 * | 6  | TotalCount 150 on page 1, 170 on later       | contained; request id named            |
 * |    | pages, on every attempt                      |                                        |
 * | 7  | "Capacity": 1e400 on one item (page 2)       | contained; request id named            |
 * | 8  | a 20 MB InstanceName on one item (page 2;    | that item rejected (scope_state        |
 * |    | the page stays under the 32 MB cap)          | rejected >= 1, stderr names            |
 * |    |                                              | tk-bj-0120), cn-beijing partial,       |
 * |    |                                              | cn-hangzhou loads: contained, exit 2;  |
 * |    |                                              | request id named                       |
 * | 9  | "Capacity": 256. on one item (json-c         | the run does not fail: exit 0 or 2,    |
 * |    | accepts it, jsonb refuses it)                | committed, cn-hangzhou complete,       |
 * |    |                                              | nothing tombstoned, 150 cn-beijing     |
 * |    |                                              | instances live; exit 0: kv_capacity    |
 * |    |                                              | is 256; exit 2: cn-beijing unchanged   |
 * | 10 | an HTML error page with HTTP 502; then       | contained, both times                  |
 * |    | one with HTTP 200 (text/html)                |                                        |
 * | 11 | 302 to /elsewhere/ on the same server,       | contained; the redirect is not         |
 * |    | which would answer an empty list             | followed (no request reaches it)       |
 * | 12 | gzip bomb: Content-Encoding: gzip, ~1 MB     | contained; aifleet's peak RSS          |
 * |    | that inflates to 1 GiB                       | < 512 MiB                              |
 * | 13 | the honest page, one byte every 200 ms       | contained; the run ends in < 9 s:      |
 * |    | (timeout_ms = 1500)                          | the client's timeout fired, not the    |
 * |    |                                              | server's 12 s bound                    |
 * | 14 | Tags.Tag = [[[[...]]]] 100,000 deep on one   | contained                              |
 * |    | item                                         |                                        |
 * | 15 | \u0000 and invalid UTF-8 bytes in the        | contained; request id named            |
 * |    | InstanceName and a tag value of one item     |                                        |
 * | 16 | TotalCount -150; then "150"; then 150.5      | contained, each time; request id       |
 * |    |                                              | named                                  |
 * | 17 | the connection closed after reading the      | exit 0, cn-beijing complete, nothing   |
 * |    | request, once, then honest: (a) page 1,      | deleted, rows unchanged; the retry     |
 * |    | every answer with Connection: close (a       | carried a fresh x-acs-signature-nonce  |
 * |    | fresh connection); (b) page 2, on page 1's   | (curl's own silent replay of the       |
 * |    | kept-alive connection                        | same signed request is not a retry)    |
 *
 * Each test prints one "[hostile]" line per hostile run with what was
 * observed (exit code, tombstones, scope states, ...) before asserting.
 * Bounds: the server's loops are bounded in count and time (hostile_srv.h);
 * every aifleet run is killed after RUN_LIMIT_S; children die with us
 * (PR_SET_PDEATHSIG); each test's database, server and temporary
 * directory are removed in its teardown, also when it fails.
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include <cmocka.h>

#include "hostile_srv.h"
#include "testdb.h"
#include "testutil.h"

#define AIFLEET_BIN        AF_BINARY_DIR "/src/cli/aifleet"
#define ACCOUNT            "hostile-ali"
#define SCOPE_BAD          "alibaba/" ACCOUNT "/" HS_BAD_REGION "/tair_kvcache"
#define RUN_LIMIT_S        90
#define DEFAULT_TIMEOUT_MS 5000
#define BOMB_INFLATED      ((size_t)1024 * 1024 * 1024) /* 1 GiB */
#define BOMB_RSS_LIMIT_KB  (512L * 1024)

/* The gzip bomb, built once for the whole program. */
static unsigned char *bomb;
static size_t bomb_len;

typedef struct env {
	af_testdb db;
	bool db_made;
	hs_server *srv;
	char *dir;
	char config[700];
	int phase;
	long long runs; /* sync_run rows so far */
	char *sum_bad, *sum_good;
	af_test_run_result last; /* the last aifleet run; freed by the next one or teardown */
} env;

typedef struct observation {
	long long tombstones;
	bool committed;
	char good_state[64], bad_state[64];
	bool good_complete, bad_complete;
	bool bad_same, good_same;
	bool scope_named, rid_named;
	bool nonces_unique;
	int bad_requests;
} observation;

/* ---- the gzip bomb --------------------------------------------------- */

static int make_bomb(void)
{
	static const char prefix[] = "{\"RequestId\":\"BOMB\",\"Pad\":\"";
	size_t chunk = (size_t)1024 * 1024, cap = (size_t)8 * 1024 * 1024;
	unsigned char *in = malloc(chunk);
	z_stream z;
	int rc = -1;

	memset(&z, 0, sizeof(z));
	bomb = malloc(cap);
	if (!in || !bomb)
		goto done;
	memset(in, 'A', chunk);
	/* windowBits 15 + 16: a gzip wrapper, as Content-Encoding: gzip wants */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		goto done;
	z.next_out = bomb;
	z.avail_out = (uInt)cap;
	z.next_in = (unsigned char *)prefix;
	z.avail_in = (uInt)(sizeof(prefix) - 1);
	if (deflate(&z, Z_NO_FLUSH) != Z_OK)
		goto end;
	for (size_t done = 0; done < BOMB_INFLATED; done += chunk) {
		z.next_in = in;
		z.avail_in = (uInt)chunk;
		if (deflate(&z, Z_NO_FLUSH) != Z_OK || z.avail_out == 0)
			goto end;
	}
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		goto end;
	bomb_len = cap - z.avail_out;
	rc = 0;
end:
	deflateEnd(&z);
done:
	free(in);
	return rc;
}

static int group_setup(void **state)
{
	(void)state;
	if (make_bomb() < 0) {
		fprintf(stderr, "test_hostile: cannot build the gzip bomb\n");
		return -1;
	}
	/* Dummy keys: the hostile server does not verify signatures. */
	setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tHostileDummy000001", 1);
	setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "hostile-dummy-secret-NOT-REAL", 1);
	unsetenv("ALIBABA_CLOUD_SECURITY_TOKEN");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	free(bomb);
	bomb = NULL;
	return 0;
}

/* ---- environment: server, database, temporary directory ---------------- */

static int setup(void **state)
{
	env *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	env *e = *state;

	if (!e)
		return 0;
	hs_stop(e->srv);
	if (e->db_made)
		af_testdb_drop(&e->db);
	if (e->dir) {
		af_test_rmtree(e->dir);
		free(e->dir);
	}
	free(e->sum_bad);
	free(e->sum_good);
	af_test_run_free(&e->last);
	free(e);
	return 0;
}

static void write_config(env *e, long timeout_ms)
{
	FILE *f;

	snprintf(e->config, sizeof(e->config), "%s/aifleet.ini", e->dir);
	f = fopen(e->config, "w");
	assert_non_null(f);
	fprintf(f,
	        "[database]\nconninfo = %s\n\n"
	        "[sync]\nconcurrency = 2\nmax_attempts = 2\nretry_budget = 20\n"
	        "connect_timeout_ms = 1000\ntimeout_ms = %ld\n\n"
	        "[account " ACCOUNT "]\nprovider = alibaba\ncredentials = env\n"
	        "regions = " HS_GOOD_REGION ", " HS_BAD_REGION "\nproducts = tair_kvcache\n"
	        "tair_kvcache_endpoint = http://127.0.0.1:%d/{region}\n"
	        "tair_kvcache_rate_limit = 1000\ntair_kvcache_burst = 100\n"
	        "tair_kvcache_page_size = 100\n",
	        e->db.conninfo, timeout_ms, hs_port(e->srv));
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(e->config, 0600), 0);
}

static void env_up(env *e, long timeout_ms)
{
	e->dir = af_test_tempdir();
	af_testdb_create(&e->db);
	e->db_made = true;
	e->srv = hs_start(bomb, bomb_len);
	if (!e->srv)
		fail_msg("cannot start the hostile server");
	write_config(e, timeout_ms);
}

/* ---- running aifleet ---------------------------------------------------- */

/* Runs `aifleet --config ... --no-progress sync` in a new phase with
 * `mode`; the result stays valid until the next run. */
static af_test_run_result *run_phase(env *e, hs_mode mode)
{
	af_test_run_result *r = &e->last;
	const char *argv[] = {AIFLEET_BIN, "--config", e->config, "--no-progress", "sync", NULL};

	hs_set_phase(e->srv, ++e->phase, mode);
	if (af_test_run(AIFLEET_BIN, argv, e->dir, RUN_LIMIT_S, r) < 0)
		fail_msg("aifleet did not finish within %d s (phase %d)", RUN_LIMIT_S, e->phase);
	return r;
}

/* The last bytes of stderr, non-printable bytes shown as '?'. */
static const char *tail(const char *s)
{
	static char buf[3001];
	size_t len = strlen(s), from = len > 3000 ? len - 3000 : 0, n = 0;

	for (size_t i = from; i < len; i++)
		buf[n++] = (s[i] == '\n' || (s[i] >= 0x20 && s[i] < 0x7f)) ? s[i] : '?';
	buf[n] = '\0';
	return buf;
}

static void check(bool ok, const af_test_run_result *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void check(bool ok, const af_test_run_result *r, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (ok)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* straight to stdout: cmocka's message buffers are shorter than this */
	if (r)
		printf("--- aifleet stdout ---\n%s--- aifleet stderr (tail) ---\n%s\n---\n",
		       r->out ? r->out : "", r->err ? tail(r->err) : "");
	fflush(stdout);
	fail_msg("%s", msg);
}

/* ---- what the database says --------------------------------------------- */

static char *region_sum(env *e, const char *region)
{
	char sql[2048];
	char *v;

	/* Every column but last_run_id (bookkeeping of which run last wrote
	 * the row), and the history rows of those entities. */
	snprintf(
	    sql, sizeof(sql),
	    "WITH p AS (SELECT '%s'::text AS r), "
	    "i AS (SELECT * FROM aifleet.instance WHERE region = (SELECT r FROM p)), "
	    "s AS (SELECT * FROM aifleet.service WHERE region = (SELECT r FROM p)), "
	    "rs AS (SELECT * FROM aifleet.resource WHERE region = (SELECT r FROM p)), "
	    "h AS (SELECT * FROM aifleet.history WHERE entity_id IN "
	    "(SELECT id FROM i UNION ALL SELECT id FROM s UNION ALL SELECT id FROM rs)) "
	    "SELECT (SELECT count(*) FROM i) || '/' || (SELECT count(*) FROM s) || '/' || "
	    "(SELECT count(*) FROM rs) || '/' || (SELECT count(*) FROM h) || ':' || md5("
	    "coalesce((SELECT string_agg((to_jsonb(i) - 'last_run_id')::text, '|' ORDER BY id) "
	    "FROM i), '') || '#' || "
	    "coalesce((SELECT string_agg((to_jsonb(s) - 'last_run_id')::text, '|' ORDER BY id) "
	    "FROM s), '') || '#' || "
	    "coalesce((SELECT string_agg((to_jsonb(rs) - 'last_run_id')::text, '|' ORDER BY id) "
	    "FROM rs), '') || '#' || "
	    "coalesce((SELECT string_agg(to_jsonb(h)::text, '|' ORDER BY id) FROM h), ''))",
	    region);
	v = af_testdb_query_value(&e->db, sql);
	assert_non_null(v);
	return v;
}

static long long tombstones(env *e)
{
	return af_testdb_query_int(
	    &e->db, "SELECT (SELECT count(*) FROM aifleet.history WHERE change = 'deleted') + "
	            "(SELECT count(*) FROM aifleet.instance WHERE deleted_at IS NOT NULL) + "
	            "(SELECT count(*) FROM aifleet.service WHERE deleted_at IS NOT NULL) + "
	            "(SELECT count(*) FROM aifleet.resource WHERE deleted_at IS NOT NULL)");
}

static long long sync_runs(env *e)
{
	return af_testdb_query_int(&e->db, "SELECT count(*) FROM aifleet.sync_run");
}

/* "state/run/rejected" of a region's scope, "none" without a ledger row. */
static void scope_state(env *e, const char *region, char *out, size_t n)
{
	char sql[512];
	char *v;

	snprintf(sql, sizeof(sql),
	         "SELECT last_state || '/run ' || last_run_id || '/rejected ' || rejected "
	         "FROM aifleet.scope_state WHERE provider = 'alibaba' AND account = '" ACCOUNT "' "
	         "AND region = '%s' AND product = 'tair_kvcache'",
	         region);
	v = af_testdb_query_value(&e->db, sql);
	snprintf(out, n, "%s", v ? v : "none");
	free(v);
}

static long long live_instances(env *e, const char *region)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM aifleet.instance WHERE region = '%s' AND deleted_at IS NULL",
	         region);
	return af_testdb_query_int(&e->db, sql);
}

static bool nonces_unique(env *e)
{
	static hs_arrival a[HS_MAX_ARRIVALS];
	size_t n = hs_arrivals(e->srv, a, HS_MAX_ARRIVALS);

	if (n > HS_MAX_ARRIVALS)
		n = HS_MAX_ARRIVALS;
	for (size_t i = 0; i < n; i++) {
		if (!a[i].nonce[0])
			return false;
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(a[i].nonce, a[j].nonce) == 0)
				return false;
	}
	return true;
}

/* ---- run 1 and the checks of run 2 ------------------------------------ */

static void honest_run(env *e)
{
	af_test_run_result *r;

	r = run_phase(e, HS_HONEST);
	check(r->code == 0, r, "honest run 1: exit %d, expected 0", r->code);
	check(live_instances(e, HS_GOOD_REGION) == HS_GOOD_ITEMS, r,
	      "honest run 1: %lld " HS_GOOD_REGION " instances, expected %d",
	      live_instances(e, HS_GOOD_REGION), HS_GOOD_ITEMS);
	check(live_instances(e, HS_BAD_REGION) == HS_BAD_ITEMS, r,
	      "honest run 1: %lld " HS_BAD_REGION " instances, expected %d",
	      live_instances(e, HS_BAD_REGION), HS_BAD_ITEMS);
	check(tombstones(e) == 0, r, "honest run 1 tombstoned something");
	check(hs_bad_requests(e->srv) == 0, r, "honest run 1: %d malformed requests",
	      hs_bad_requests(e->srv));
	e->runs = sync_runs(e);
	assert_int_equal(e->runs, 1);
	free(e->sum_bad);
	free(e->sum_good);
	e->sum_bad = region_sum(e, HS_BAD_REGION);
	e->sum_good = region_sum(e, HS_GOOD_REGION);
}

static void observe(env *e, const char *label, const af_test_run_result *r, const char *rid,
                    observation *o)
{
	char *bad = region_sum(e, HS_BAD_REGION), *good = region_sum(e, HS_GOOD_REGION);
	long long runs = sync_runs(e);
	char want_run[32];

	memset(o, 0, sizeof(*o));
	o->tombstones = tombstones(e);
	o->committed = runs == e->runs + 1;
	scope_state(e, HS_GOOD_REGION, o->good_state, sizeof(o->good_state));
	scope_state(e, HS_BAD_REGION, o->bad_state, sizeof(o->bad_state));
	snprintf(want_run, sizeof(want_run), "/run %lld/", runs);
	o->good_complete =
	    strncmp(o->good_state, "complete/", 9) == 0 && strstr(o->good_state, want_run) != NULL;
	o->bad_complete = strncmp(o->bad_state, "complete/", 9) == 0;
	o->bad_same = strcmp(bad, e->sum_bad) == 0;
	o->good_same = strcmp(good, e->sum_good) == 0;
	o->scope_named = strstr(r->err, SCOPE_BAD) != NULL;
	o->rid_named = !rid || strstr(r->err, rid) != NULL;
	o->nonces_unique = nonces_unique(e);
	o->bad_requests = hs_bad_requests(e->srv);
	print_message(
	    "[hostile] %s: exit %d (%.1f s), tombstones %lld, committed %s, " HS_GOOD_REGION
	    " %s, " HS_BAD_REGION " %s, " HS_BAD_REGION " rows %s "
	    "(%s -> %s), scope named %s, request id %s%s\n",
	    label, r->code, r->seconds, o->tombstones, o->committed ? "yes" : "NO", o->good_state,
	    o->bad_state, o->bad_same ? "unchanged" : "CHANGED", e->sum_bad, bad,
	    o->scope_named ? "yes" : "NO",
	    rid ? (o->rid_named ? "named " : "NOT named ") : "not expected", rid ? rid : "");
	e->runs = runs;
	free(bad);
	free(good);
	{
		/* what aifleet said about the bad scope: the first line naming it */
		const char *bol = strstr(r->err, SCOPE_BAD), *eol;
		size_t len;

		if (bol) {
			while (bol > r->err && bol[-1] != '\n')
				bol--;
			eol = strchr(bol, '\n');
			len = eol ? (size_t)(eol - bol) : strlen(bol);
			print_message("[hostile] %s: said: %.*s\n", label,
			              (int)(len > 400 ? 400 : len), bol);
		}
	}
}

/* Run 2 (or later) with `mode` on the bad region: "contained" (see the top).
 * With `defer_rid` the caller checks the request id itself, later. */
static af_test_run_result *expect_contained_ex(env *e, hs_mode mode, const char *label,
                                               const char *rid, bool defer_rid)
{
	af_test_run_result *r;
	observation o;

	r = run_phase(e, mode);
	observe(e, label, r, rid, &o);
	check(r->code == 2, r, "%s: exit %d, expected 2", label, r->code);
	check(o.tombstones == 0, r, "%s: %lld rows tombstoned, expected 0", label, o.tombstones);
	check(o.committed, r, "%s: no sync_run row committed", label);
	check(o.good_complete, r,
	      "%s: " HS_GOOD_REGION " scope is '%s', expected complete in "
	      "this run",
	      label, o.good_state);
	check(!o.bad_complete && strcmp(o.bad_state, "none") != 0, r,
	      "%s: " HS_BAD_REGION " scope is '%s', expected partial or failed", label,
	      o.bad_state);
	check(o.bad_same, r, "%s: " HS_BAD_REGION " rows or history changed", label);
	check(o.good_same, r, "%s: " HS_GOOD_REGION " rows or history changed", label);
	check(o.scope_named, r, "%s: stderr does not name " SCOPE_BAD, label);
	check(o.bad_requests == 0, r, "%s: %d malformed requests", label, o.bad_requests);
	check(o.nonces_unique, r, "%s: a signature nonce was missing or used twice", label);
	check(defer_rid || o.rid_named, r, "%s: stderr does not name the request id %s", label,
	      rid);
	return r;
}

static af_test_run_result *expect_contained(env *e, hs_mode mode, const char *label,
                                            const char *rid)
{
	return expect_contained_ex(e, mode, label, rid, false);
}

static void contained_case(void **state, hs_mode mode, const char *label, const char *rid)
{
	env *e = *state;

	env_up(e, DEFAULT_TIMEOUT_MS);
	honest_run(e);
	expect_contained(e, mode, label, rid);
}

/* ---- the cases ---------------------------------------------------------- */

static void test_01_api_error_in_http_200(void **state)
{
	contained_case(state, HS_API_ERROR, "01 InternalError in HTTP 200", "R-1");
}

static void test_02_page2_empty(void **state)
{
	contained_case(state, HS_PAGE2_EMPTY, "02 page 2 empty, TotalCount 150", HS_HOSTILE_RID);
}

static void test_03_page2_short(void **state)
{
	contained_case(state, HS_PAGE2_SHORT, "03 page 2 short, TotalCount 150", HS_HOSTILE_RID);
}

static void test_04_total_smaller_than_page(void **state)
{
	contained_case(state, HS_TOTAL_SMALL, "04 TotalCount 10, page of 100", HS_HOSTILE_RID);
}

static void test_05_every_page_is_page1(void **state)
{
	contained_case(state, HS_REPEAT_PAGE1, "05 every page repeats page 1", HS_HOSTILE_RID);
}

static void test_06_total_drifts(void **state)
{
	contained_case(state, HS_TOTAL_DRIFT, "06 TotalCount 150 then 170", HS_HOSTILE_RID);
}

static void test_07_capacity_1e400(void **state)
{
	contained_case(state, HS_CAPACITY_1E400, "07 Capacity 1e400", HS_HOSTILE_RID);
}

static void test_08_name_20mb(void **state)
{
	env *e = *state;
	af_test_run_result *r;
	char sql[256];

	env_up(e, 30000);
	honest_run(e);
	/* the request id is checked last, after what is particular to this case */
	r = expect_contained_ex(e, HS_NAME_20MB, "08 20 MB InstanceName", HS_HOSTILE_RID, true);
	/* the item is rejected, not the page: the scope is partial */
	check(strncmp(e->sum_bad, "150/", 4) == 0, r, "08: unexpected run-1 rows %s", e->sum_bad);
	{
		char st[64];

		scope_state(e, HS_BAD_REGION, st, sizeof(st));
		check(strncmp(st, "partial/", 8) == 0, r,
		      "08: " HS_BAD_REGION " is '%s', "
		      "expected partial (only the item rejected)",
		      st);
		check(strstr(st, "/rejected 0") == NULL, r,
		      "08: " HS_BAD_REGION " '%s': the item was not counted as rejected", st);
	}
	check(strstr(r->err, HS_EVIL_ID) != NULL, r, "08: stderr does not name " HS_EVIL_ID);
	snprintf(sql, sizeof(sql), "SELECT coalesce(max(length(name)), 0) FROM aifleet.instance");
	check(af_testdb_query_int(&e->db, sql) < 100, r, "08: a huge name reached the database");
	check(strstr(r->err, HS_HOSTILE_RID) != NULL, r,
	      "08: stderr does not name the request id " HS_HOSTILE_RID "...");
}

static void test_09_capacity_trailing_dot(void **state)
{
	env *e = *state;
	af_test_run_result *r;
	observation o;
	char *bad;

	env_up(e, DEFAULT_TIMEOUT_MS);
	honest_run(e);
	r = run_phase(e, HS_CAPACITY_DOT);
	observe(e, "09 Capacity 256.", r, NULL, &o);
	check(r->code == 0 || r->code == 2, r, "09: exit %d, expected 0 or 2", r->code);
	check(o.committed, r, "09: no sync_run row committed");
	check(o.good_complete, r, "09: " HS_GOOD_REGION " is '%s', expected complete",
	      o.good_state);
	check(o.tombstones == 0, r, "09: %lld rows tombstoned", o.tombstones);
	check(live_instances(e, HS_BAD_REGION) == HS_BAD_ITEMS, r,
	      "09: " HS_BAD_REGION " lost instances");
	check(o.good_same, r, "09: " HS_GOOD_REGION " rows changed");
	if (r->code == 0) {
		check(o.bad_complete, r, "09: exit 0 but " HS_BAD_REGION " is '%s'", o.bad_state);
		bad = af_testdb_query_value(
		    &e->db,
		    "SELECT capacity FROM aifleet.resource WHERE owner_native_id = '" HS_EVIL_ID
		    "' AND kind = 'kv_capacity'");
		check(bad && strcmp(bad, "256") == 0, r, "09: kv_capacity of " HS_EVIL_ID " is %s",
		      bad ? bad : "NULL");
		free(bad);
	} else {
		check(!o.bad_complete, r, "09: exit 2 but " HS_BAD_REGION " is complete");
		check(o.bad_same, r, "09: " HS_BAD_REGION " rows changed");
	}
	check(o.bad_requests == 0, r, "09: %d malformed requests", o.bad_requests);
}

static void test_10_html_error_pages(void **state)
{
	env *e = *state;

	env_up(e, DEFAULT_TIMEOUT_MS);
	honest_run(e);
	expect_contained(e, HS_HTML_502, "10a HTML page, HTTP 502", NULL);
	expect_contained(e, HS_HTML_200, "10b HTML page, HTTP 200", NULL);
}

static void test_11_redirect_not_followed(void **state)
{
	static hs_arrival a[HS_MAX_ARRIVALS];
	env *e = *state;
	af_test_run_result *r;
	size_t n;

	env_up(e, DEFAULT_TIMEOUT_MS);
	honest_run(e);
	r = expect_contained(e, HS_REDIRECT, "11 302 redirect", NULL);
	check(strstr(r->err, "HTTP 302") && strstr(r->err, "a redirect, not followed"), r,
	      "11: stderr does not say the redirect was not followed");
	n = hs_arrivals(e->srv, a, HS_MAX_ARRIVALS);
	for (size_t i = 0; i < n && i < HS_MAX_ARRIVALS; i++)
		if (strncmp(a[i].path, "/elsewhere", 10) == 0)
			fail_msg("11: the client followed the redirect to %s", a[i].path);
}

static void test_12_gzip_bomb(void **state)
{
	env *e = *state;
	af_test_run_result *r;

	env_up(e, DEFAULT_TIMEOUT_MS);
	honest_run(e);
	print_message("[hostile] 12: gzip bomb of %zu bytes inflating to %zu\n", bomb_len,
	              BOMB_INFLATED);
	r = expect_contained(e, HS_GZIP_BOMB, "12 gzip bomb", NULL);
	print_message("[hostile] 12: aifleet peak RSS %ld KiB\n", r->maxrss_kb);
	check(r->maxrss_kb < BOMB_RSS_LIMIT_KB, r, "12: aifleet peak RSS %ld KiB (limit %ld)",
	      r->maxrss_kb, BOMB_RSS_LIMIT_KB);
}

static void test_13_slow_drip(void **state)
{
	env *e = *state;
	af_test_run_result *r;

	env_up(e, 1500);
	honest_run(e);
	r = expect_contained(e, HS_SLOW_DRIP, "13 slow drip", NULL);
	/* 2 attempts x 1.5 s + backoff; a client without a working timeout
	 * would wait for the server's 12 s bound per attempt. */
	check(r->seconds < 9.0, r, "13: the run took %.1f s: the client's timeout did not fire",
	      r->seconds);
}

static void test_14_deep_nesting(void **state)
{
	contained_case(state, HS_DEEP_NESTING_100K, "14 100k-deep nesting", NULL);
}

/* Text that is merely malformed is repaired visibly, not a reason to stop:
 * the NUL and the invalid bytes become U+FFFD, a warning names the field,
 * the scope completes, and nothing is tombstoned. */
static void test_15_nul_and_invalid_utf8(void **state)
{
	env *e = *state;
	af_test_run_result *r;
	observation o;
	char sql[256];
	long long repaired;

	env_up(e, DEFAULT_TIMEOUT_MS);
	honest_run(e);
	r = run_phase(e, HS_BAD_STRINGS);
	observe(e, "15 NUL and invalid UTF-8", r, HS_HOSTILE_RID, &o);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM aifleet.instance WHERE native_id = 'tk-bj-%04d'"
	         " AND name LIKE 'kvcache-%%' || U&'\\FFFD' || '%%-bj'"
	         " AND tags->>'team' LIKE 'infra-%%' || U&'\\FFFD' || '%%'",
	         HS_EVIL_ITEM);
	repaired = af_testdb_query_int(&e->db, sql);
	print_message("[hostile] 15: exit %d, %lld tombstones, bad scope %s, repaired rows %lld\n",
	              r->code, o.tombstones, o.bad_state, repaired);
	check(r->code == 0, r, "15: exit %d, expected 0 (repaired, complete)", r->code);
	check(o.tombstones == 0, r, "15: %lld rows tombstoned, expected 0", o.tombstones);
	check(o.bad_complete && o.good_complete, r, "15: scopes %s / %s, expected complete",
	      o.bad_state, o.good_state);
	check(repaired == 1, r, "15: the name and tag were not stored repaired (U+FFFD)");
	check(strstr(r->err, "InstanceName") != NULL, r, "15: no warning names InstanceName");
	check(o.nonces_unique, r, "15: a signature nonce was missing or used twice");
}

static void test_16_total_count_not_a_count(void **state)
{
	env *e = *state;

	env_up(e, DEFAULT_TIMEOUT_MS);
	honest_run(e);
	expect_contained(e, HS_TOTAL_NEGATIVE, "16a TotalCount -150", HS_HOSTILE_RID);
	expect_contained(e, HS_TOTAL_STRING, "16b TotalCount \"150\"", HS_HOSTILE_RID);
	expect_contained(e, HS_TOTAL_FRACTION, "16c TotalCount 150.5", HS_HOSTILE_RID);
}

/* One dropped request of the bad region (page `page`), then honest. */
static void expect_drop_retried(env *e, hs_mode mode, const char *label, int page)
{
	static hs_arrival a[HS_MAX_ARRIVALS];
	af_test_run_result *r;
	observation o;
	size_t n, tries = 0, dropped_at = 0;
	bool reused = false;

	r = run_phase(e, mode);
	observe(e, label, r, NULL, &o);
	n = hs_arrivals(e->srv, a, HS_MAX_ARRIVALS);
	if (n > HS_MAX_ARRIVALS)
		n = HS_MAX_ARRIVALS;
	for (size_t i = 0; i < n; i++) {
		if (a[i].phase != e->phase || strcmp(a[i].region, HS_BAD_REGION) != 0 ||
		    a[i].page != page)
			continue;
		if (tries++ == 0)
			dropped_at = i;
		print_message("[hostile] %s: page %d request %zu: port %d, nonce %s%s\n", label,
		              page, tries, a[i].client_port, a[i].nonce,
		              a[i].dropped ? " (dropped)" : "");
	}
	for (size_t i = 0; tries && i < dropped_at; i++)
		if (a[i].phase == e->phase && a[i].client_port == a[dropped_at].client_port)
			reused = true;
	print_message("[hostile] %s: the dropped request came on a %s connection\n", label,
	              reused ? "reused" : "fresh");
	check(r->code == 0, r, "%s: exit %d, expected 0", label, r->code);
	check(o.tombstones == 0, r, "%s: %lld rows tombstoned", label, o.tombstones);
	check(o.committed && o.good_complete, r, "%s: " HS_GOOD_REGION " is '%s'", label,
	      o.good_state);
	check(o.bad_complete, r, "%s: " HS_BAD_REGION " is '%s', expected complete", label,
	      o.bad_state);
	check(o.bad_same && o.good_same, r, "%s: rows changed", label);
	check(o.bad_requests == 0, r, "%s: %d malformed requests", label, o.bad_requests);
	check(tries >= 2 && a[dropped_at].dropped, r,
	      "%s: %zu request(s) for page %d, expected the dropped one and a retry", label, tries,
	      page);
	/* A replay of the same signed request (same nonce) is what a real API
	 * refuses with SignatureNonceUsed once the first one got through. */
	check(o.nonces_unique, r, "%s: the retry reused the signature nonce %s", label,
	      a[dropped_at].nonce);
}

static void test_17_dropped_connection_retried(void **state)
{
	env *e = *state;

	env_up(e, DEFAULT_TIMEOUT_MS);
	honest_run(e);
	expect_drop_retried(e, HS_DROP_ONCE, "17a dropped on a fresh connection", 1);
	expect_drop_retried(e, HS_DROP_ONCE_REUSED, "17b dropped on a kept-alive connection", 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_01_api_error_in_http_200, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_02_page2_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_03_page2_short, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_04_total_smaller_than_page, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_05_every_page_is_page1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_06_total_drifts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_07_capacity_1e400, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_08_name_20mb, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_09_capacity_trailing_dot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_10_html_error_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_11_redirect_not_followed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_12_gzip_bomb, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_13_slow_drip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_14_deep_nesting, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_15_nul_and_invalid_utf8, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_16_total_count_not_a_count, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_17_dropped_connection_retried, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
