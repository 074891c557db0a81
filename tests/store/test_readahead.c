/*
 * Reading scopes' live rows ahead (src/store/readahead.c) against a real
 * PostgreSQL: a read holds exactly its scope's live rows, by their hashes
 * (tombstoned rows and other scopes' rows left out, a scope named with
 * quotes and backslashes read as itself); polling gets there without
 * waiting; the row limit drops a read and every one after it, and lifting
 * it reads them again; a read that fails says so and leaves the connection
 * usable for the ROLLBACK.
 */
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aifleet/error.h"
#include "aifleet/store.h"
#include "readahead.h"
#include "storetest.h"
#include "testdb.h"

static const af_scope A = {"alibaba", "a", "cn-beijing", "tair_kvcache"};
static const af_scope B = {"alibaba", "b", "cn-beijing", "tair_kvcache"};
/* quotes, a backslash: a literal badly quoted reads the wrong rows or none */
static const af_scope Q = {"alibaba", "o'brien \\ 'x'", "cn-beijing", "tair_kvcache"};

/* A scope with `n` instances, each with one resource, and one instance
 * more that the next run drops (tombstoned). */
static void load(af_store *s, const af_scope *sc, int n)
{
	af_run_options opts = {.trigger = "test", .guard = &st_allow_all_deletes};
	af_load_summary sum;
	af_loader *l = NULL;
	char id[32];

	for (int run = 0; run < 2; run++) {
		assert_int_equal(af_loader_begin(&l, s, &opts), 0);
		for (int i = 0; i <= n; i++) {
			if (run == 1 && i == n)
				break;
			snprintf(id, sizeof(id), "tk-%d", i);
			assert_int_equal(st_inst(l, sc, id, "name"), 0);
			assert_int_equal(
			    st_res(l, sc, AF_OWNER_INSTANCE, id, "cpu_cores", 8, "cores", NULL), 0);
		}
		st_done(l, sc, AF_SCOPE_COMPLETE);
		assert_int_equal(af_loader_commit(l, &sum), 0);
		af_loader_free(l);
	}
}

/* The connection takes a statement again: no read holds it. */
static void assert_free(PGconn *c)
{
	PGresult *res = PQexec(c, "ROLLBACK");

	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
}

static PGconn *begin(const af_testdb *db)
{
	PGconn *c = PQconnectdb(db->conninfo);

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PQclear(PQexec(c, "BEGIN"));
	return c;
}

/* Every live row of the scope's entity, by its hash, is in the set (taken
 * once), and the set holds nothing else. */
static void assert_holds(PGconn *c, af_live_read *r, const af_scope *sc, size_t e)
{
	const char *p[4] = {sc->provider, sc->account, sc->region, sc->product};
	char sql[256];
	PGresult *res;

	snprintf(sql, sizeof(sql),
	         "SELECT content_hash FROM %s WHERE (provider, account, region, product)"
	         " = ($1, $2, $3, $4) AND deleted_at IS NULL",
	         af_entities[e].table);
	res = PQexecParams(c, sql, 4, NULL, p, NULL, NULL, 1);
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	assert_true(PQntuples(res) > 0);
	assert_int_equal(af_live_set_count(r->set[e]), (size_t)PQntuples(res));
	for (int i = 0; i < PQntuples(res); i++) {
		assert_int_equal(PQgetlength(res, i, 0), 32);
		assert_true(af_live_set_take(r->set[e], (const unsigned char *)PQgetvalue(res, i, 0)));
	}
	PQclear(res);
}

static void assert_read(PGconn *c, af_live_read *r, const af_scope *sc)
{
	assert_true(r->done);
	assert_false(r->dropped);
	assert_holds(c, r, sc, AF_ENTITY_INSTANCE);
	assert_holds(c, r, sc, AF_ENTITY_RESOURCE);
	assert_int_equal(af_live_set_count(r->set[AF_ENTITY_SERVICE]), 0);
}

static void test_reads_hold_their_scopes(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_live_read *ra_a = NULL, *ra_b = NULL, *ra_q = NULL;
	af_readahead *ra = NULL;
	PGconn *c;
	int polls = 0;

	(void)state;
	load(s, &A, 300);
	load(s, &B, 5);
	load(s, &Q, 7);
	assert_int_equal(af_testdb_query_int(&db, "SELECT count(*) FROM aifleet.instance"
	                                          " WHERE deleted_at IS NOT NULL"),
	                 3);
	c = begin(&db);
	assert_int_equal(af_readahead_new(&ra, c, 0), 0);
	assert_false(af_readahead_busy(ra));
	assert_int_equal(af_readahead_queue(ra, &A, &ra_a), 0);
	assert_int_equal(af_readahead_queue(ra, &Q, &ra_q), 0);
	assert_int_equal(af_readahead_queue(ra, &B, &ra_b), 0);
	assert_true(af_readahead_busy(ra));
	assert_false(ra_a->done);
	/* polled, never waited on: done in order, in the end */
	while (af_readahead_busy(ra) && polls < 100000) {
		assert_int_equal(af_readahead_poll(ra), 0);
		assert_true(!ra_b->done || (ra_a->done && ra_q->done));
		polls++;
		usleep(100);
	}
	assert_false(af_readahead_busy(ra));
	assert_read(c, ra_a, &A);
	assert_read(c, ra_b, &B);
	assert_read(c, ra_q, &Q);
	assert_int_equal(af_live_set_count(ra_q->set[AF_ENTITY_INSTANCE]), 7);
	assert_free(c);
	af_readahead_free(ra);
	af_live_read_free(ra_a);
	af_live_read_free(ra_b);
	af_live_read_free(ra_q);
	PQfinish(c);
	af_store_free(s);
	af_testdb_drop(&db);
}

static void test_row_limit_drops_then_reads_again(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_live_read *r1 = NULL, *r2 = NULL, *r3 = NULL, *again = NULL;
	af_readahead *ra = NULL;
	PGconn *c;

	(void)state;
	load(s, &B, 5);  /* 10 live rows */
	load(s, &A, 20); /* 40 */
	c = begin(&db);
	assert_int_equal(af_readahead_new(&ra, c, 30), 0);
	assert_int_equal(af_readahead_queue(ra, &B, &r1), 0);
	assert_int_equal(af_readahead_queue(ra, &A, &r2), 0); /* passes 30: dropped */
	assert_int_equal(af_readahead_queue(ra, &B, &r3), 0); /* after it: dropped too */
	assert_int_equal(af_readahead_finish(ra), 0);
	assert_false(af_readahead_busy(ra));
	assert_read(c, r1, &B);
	assert_true(r2->dropped && !r2->done);
	assert_true(r3->dropped && !r3->done);
	for (size_t e = 0; e < AF_NENTITIES; e++)
		assert_null(r2->set[e]);
	/* without the limit, what was dropped is read */
	af_readahead_unlimit(ra);
	assert_int_equal(af_readahead_queue(ra, &A, &again), 0);
	assert_int_equal(af_readahead_finish(ra), 0);
	assert_read(c, again, &A);
	assert_free(c);
	af_readahead_free(ra);
	af_live_read_free(r1);
	af_live_read_free(r2);
	af_live_read_free(r3);
	af_live_read_free(again);
	PQfinish(c);
	af_store_free(s);
	af_testdb_drop(&db);
}

/* A read refused (the transaction is aborted) and a read whose server has
 * gone away: an error naming the read, the same one on every later call,
 * and a connection no longer in a COPY. */
static void test_failed_reads(void **state)
{
	af_testdb db;
	af_store *s = st_open(&db);
	af_live_read *r = NULL, *r2 = NULL;
	af_readahead *ra = NULL;
	PGconn *c, *killer;
	char sql[128];
	int err;

	(void)state;
	load(s, &A, 2000);
	c = begin(&db);
	PQclear(PQexec(c, "SELECT 1/0"));
	assert_int_equal(af_readahead_new(&ra, c, 0), 0);
	assert_int_equal(af_readahead_queue(ra, &A, &r), 0);
	err = af_readahead_finish(ra);
	assert_int_equal(err, AF_ERR_DB);
	assert_non_null(strstr(af_error_last(), "reading live rows"));
	assert_non_null(strstr(af_error_last(), "aborted"));
	assert_int_equal(af_readahead_poll(ra), err);
	assert_false(r->done);
	af_readahead_free(ra);
	assert_free(c);

	/* the backend killed while its rows stream */
	PQclear(PQexec(c, "BEGIN"));
	killer = PQconnectdb(db.conninfo);
	assert_int_equal(PQstatus(killer), CONNECTION_OK);
	assert_int_equal(af_readahead_new(&ra, c, 0), 0);
	assert_int_equal(af_readahead_queue(ra, &A, &r2), 0);
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d, 10000)", PQbackendPID(c));
	PQclear(PQexec(killer, sql));
	err = af_readahead_finish(ra);
	assert_true(err == AF_ERR_TRANSIENT || err == AF_ERR_DB);
	assert_non_null(strstr(af_error_last(), "reading live rows"));
	assert_false(r2->done);
	af_readahead_free(ra);
	assert_int_not_equal(PQstatus(c), CONNECTION_OK);
	PQfinish(killer);
	PQfinish(c);
	af_live_read_free(r);
	af_live_read_free(r2);
	af_store_free(s);
	af_testdb_drop(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reads_hold_their_scopes),
	    cmocka_unit_test(test_row_limit_drops_then_reads_again),
	    cmocka_unit_test(test_failed_reads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
