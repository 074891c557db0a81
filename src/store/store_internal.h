#ifndef AIFLEET_STORE_INTERNAL_H
#define AIFLEET_STORE_INTERNAL_H

/*
 * Internals of the store module shared by store.c, loader.c and copytext.c
 * (and the store tests). Not part of the public contract.
 */

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "aifleet/buf.h"
#include "aifleet/record.h"

struct af_store {
	PGconn *conn;
	bool in_run; /* a loader owns the connection */
};

/*
 * Advisory lock keys (bigint form). The run key: shared by every run over
 * listed scopes for its whole life, exclusive for a run over the whole
 * database (and for aifleet before migration 006), so the two kinds
 * exclude each other. The write key: exclusive, for the transaction, while
 * a run over listed scopes writes. Each scope's own lock is its
 * af_scope_hash(). Migrations have their own key.
 */
#define AF_STORE_RUN_LOCK_KEY 0x61696601LL
#define AF_STORE_MIGRATE_LOCK_KEY 0x61696602LL
#define AF_STORE_WRITE_LOCK_KEY 0x61696603LL

/* Runs a command, turns a failure into AF_ERR_DB (or AF_ERR_TRANSIENT when the
 * connection is gone) with `what` and the server's message. */
int af_store_exec(PGconn *conn, const char *what, const char *sql);
/* Runs a query of one boolean (one row, one column): *out is its value;
 * a failure as af_store_exec's. */
int af_store_query_bool(PGconn *conn, const char *what, const char *sql, bool *out);
/* Maps the connection / result state to an error class and sets the message. */
int af_store_db_error(PGconn *conn, const PGresult *res, const char *what);

/* `n` fields joined by a unit separator (0x1f), which no provider, account,
 * region or product holds: a key to sort and bsearch scopes by. NULL when
 * out of memory; the caller frees it. */
char *af_store_join_key(const char *const *fields, size_t n);

/*
 * COPY text format helpers (PostgreSQL "COPY ... FROM STDIN", text format):
 * fields separated by tabs, rows by newlines, NULL as \N, and backslash,
 * tab, newline and carriage return escaped with a backslash.
 */
int af_store_copy_text(af_buf *b, const char *s);   /* NULL -> \N */
int af_store_copy_time(af_buf *b, af_time t);       /* AF_TIME_NULL -> \N */
int af_store_copy_num(af_buf *b, af_num n);         /* unset -> \N */
int af_store_copy_hash(af_buf *b, const unsigned char hash[32]); /* bytea hex */
/* NULL, the field separator and the end of a row: inline, being a few
 * bytes each, dozens of times per row. */
static inline int af_store_copy_null(af_buf *b)
{
	return af_buf_append(b, "\\N", 2);
}

static inline int af_store_copy_sep(af_buf *b)
{
	return af_buf_append(b, "\t", 1);
}

static inline int af_store_copy_eol(af_buf *b)
{
	return af_buf_append(b, "\n", 1);
}

/* v in decimal (as printf's %llu writes it) into `out`, not terminated;
 * returns the number of digits. */
size_t af_store_format_u64(char out[20], uint64_t v);

#endif
