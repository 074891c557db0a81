#include "testdb.h"

#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static int db_counter;

static const char *base_dsn(void)
{
	const char *dsn = getenv("AIFLEET_TEST_DSN");

	if (!dsn || !*dsn)
		fail_msg("AIFLEET_TEST_DSN is not set: run the tests through scripts/test.sh");
	return dsn;
}

static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static PGconn *connect_or_fail(const char *conninfo)
{
	PGconn *conn = PQconnectdb(conninfo);

	if (PQstatus(conn) != CONNECTION_OK)
		fail_msg("cannot connect to test server: %s", PQerrorMessage(conn));
	/* "database ... does not exist, skipping" is expected noise here. */
	PQsetNoticeProcessor(conn, ignore_notice, NULL);
	return conn;
}

static void exec_or_fail(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("SQL failed: %s\n%s", PQerrorMessage(conn), sql);
	PQclear(res);
}

void af_testdb_create(af_testdb *db)
{
	char sql[256];
	PGconn *conn = connect_or_fail(base_dsn());

	snprintf(db->name, sizeof(db->name), "aifleet_test_%ld_%d", (long)getpid(), ++db_counter);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db->name);
	exec_or_fail(conn, sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db->name);
	exec_or_fail(conn, sql);
	PQfinish(conn);
	snprintf(db->conninfo, sizeof(db->conninfo), "%s dbname=%s", base_dsn(), db->name);
}

void af_testdb_drop(af_testdb *db)
{
	char sql[256];
	PGconn *conn;

	if (!db->name[0])
		return;
	conn = connect_or_fail(base_dsn());
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
	exec_or_fail(conn, sql);
	PQfinish(conn);
	db->name[0] = '\0';
}

char *af_testdb_query_value(const af_testdb *db, const char *sql)
{
	PGconn *conn = connect_or_fail(db->conninfo);
	PGresult *res = PQexec(conn, sql);
	char *value = NULL;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("query failed: %s\n%s", PQerrorMessage(conn), sql);
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		value = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(conn);
	return value;
}

long long af_testdb_query_int(const af_testdb *db, const char *sql)
{
	char *v = af_testdb_query_value(db, sql);
	long long n;

	if (!v)
		fail_msg("query returned no value: %s", sql);
	n = strtoll(v, NULL, 10);
	free(v);
	return n;
}

void af_testdb_exec(const af_testdb *db, const char *sql)
{
	PGconn *conn = connect_or_fail(db->conninfo);

	exec_or_fail(conn, sql);
	PQfinish(conn);
}
