#ifndef AIFLEET_TESTDB_H
#define AIFLEET_TESTDB_H

/*
 * A fresh database per test on the throwaway server named by
 * AIFLEET_TEST_DSN (set by scripts/test.sh). Tests that need PostgreSQL
 * fail (not skip) when it is missing: the suite is meant to run with it.
 */

typedef struct af_testdb {
	char name[64];      /* database name, aifleet_test_<pid>_<n> */
	char conninfo[512]; /* conninfo for that database */
} af_testdb;

/* Creates an empty database; aborts the test on failure. */
void af_testdb_create(af_testdb *db);
/* Drops it (terminating leftover connections). */
void af_testdb_drop(af_testdb *db);

/* Runs SQL on the database, returns the first column of the first row as a
 * malloc'd string (NULL for no row / SQL NULL). Aborts the test on error. */
char *af_testdb_query_value(const af_testdb *db, const char *sql);
long long af_testdb_query_int(const af_testdb *db, const char *sql);
void af_testdb_exec(const af_testdb *db, const char *sql);

#endif
