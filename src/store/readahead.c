/*
 * Reading spooled scopes' live rows ahead (readahead.h).
 *
 * A read is one COPY of the scope's live rows in its three tables, each
 * line "<entity code>\t<id>\t\\x<hex of the first AF_LIVE_KEY_LEN bytes of
 * its content hash>": by COPY because libpq would hold a whole result set
 * of a large scope, and half the hash because that is what the live set
 * compares. The scope is named by literals (COPY takes no parameters),
 * quoted by libpq.
 *
 * A read goes queued -> sent (waiting for the COPY to start) -> copying ->
 * ending (waiting for its result) -> done. One function drives it, polling
 * or waiting: polling returns as soon as the next step needs data the
 * server has not sent yet.
 */
#include "readahead.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/buf.h"
#include "aifleet/error.h"
#include "store_internal.h"

typedef struct pending_read {
	af_buf sql;
	af_live_read *into;
	struct pending_read *next;
} pending_read;

struct af_readahead {
	PGconn *conn;
	pending_read *head, *tail; /* head is the read under way, if any */
	enum { IDLE, SENT, COPYING, ENDING } state;
	size_t rows, max_rows; /* rows read so far; the limit (0: none) */
	bool full;             /* the limit was reached: the reads left are dropped */
	int failed;            /* a read failed: every later call says so */
};

int af_readahead_new(af_readahead **out, PGconn *conn, size_t max_rows)
{
	if (!(*out = calloc(1, sizeof(**out))))
		return af_error_oom();
	(*out)->conn = conn;
	(*out)->max_rows = max_rows;
	return 0;
}

void af_readahead_unlimit(af_readahead *ra)
{
	ra->max_rows = 0;
	ra->full = false;
}

bool af_readahead_busy(const af_readahead *ra)
{
	return ra && ra->head;
}

void af_live_read_free(af_live_read *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < AF_NENTITIES; i++)
		af_live_set_free(r->set[i]);
	free(r);
}

/* The read's statement, into the empty q: the scope's live rows in every
 * entity table. */
static int read_sql(PGconn *conn, const af_scope *sc, af_buf *q)
{
	const char *fields[4] = {sc->provider, sc->account, sc->region, sc->product};
	char *lit[4] = {NULL, NULL, NULL, NULL};
	int err = 0;

	for (size_t i = 0; i < 4 && err == 0; i++) {
		const char *f = fields[i] ? fields[i] : "";

		if (!(lit[i] = PQescapeLiteral(conn, f, strlen(f))))
			err = af_error_set(AF_ERR_DB, "quoting a scope for reading its live rows: %s",
					   PQerrorMessage(conn));
	}
	if (err == 0)
		err = af_buf_puts(q, "COPY (");
	for (size_t i = 0; i < AF_NENTITIES && err == 0; i++)
		err = af_buf_printf(q,
				    "%sSELECT '%c', id, substring(content_hash FOR %d) FROM %s"
				    " WHERE provider = %s AND account = %s AND region = %s"
				    " AND product = %s AND deleted_at IS NULL",
				    i ? " UNION ALL " : "", af_entities[i].code, AF_LIVE_KEY_LEN,
				    af_entities[i].table, lit[0], lit[1], lit[2], lit[3]);
	if (err == 0)
		err = af_buf_puts(q, ") TO STDOUT");
	for (size_t i = 0; i < 4; i++)
		PQfreemem(lit[i]);
	return err;
}

int af_readahead_queue(af_readahead *ra, const af_scope *sc, af_live_read **out)
{
	pending_read *p = calloc(1, sizeof(*p));
	af_live_read *r = calloc(1, sizeof(*r));
	int err = 0;

	*out = NULL;
	if (!p || !r)
		err = af_error_oom();
	for (size_t i = 0; i < AF_NENTITIES && err == 0; i++)
		err = af_live_set_new(&r->set[i]);
	if (err == 0)
		err = read_sql(ra->conn, sc, &p->sql);
	if (err < 0) {
		if (p)
			af_buf_free(&p->sql);
		free(p);
		af_live_read_free(r);
		return err;
	}
	p->into = r;
	if (ra->tail)
		ra->tail->next = p;
	else
		ra->head = p;
	ra->tail = p;
	*out = r;
	return 0;
}

/* A hex digit's value + 1, 0 for any other byte: a lookup, where a test
 * of digit or letter per character is a branch that the random digits of
 * a hash mispredict half the time. */
static const unsigned char hex_digit[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
	['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

/* One line of the COPY into its entity's live set. */
static int add_line(af_live_read *r, const char *line, int len)
{
	unsigned char key[AF_LIVE_KEY_LEN];
	const char *id = line + 2, *tab, *hex;
	char *end;
	unsigned invalid = 0;
	long long v;
	size_t e;

	for (e = 0; e < AF_NENTITIES && af_entities[e].code != line[0]; e++)
		;
	if (len < 4 || e == AF_NENTITIES || line[1] != '\t')
		goto bad;
	if (!(tab = memchr(id, '\t', (size_t)(line + len - id))))
		goto bad;
	hex = tab + 4;
	if (line + len - hex < 2 * AF_LIVE_KEY_LEN || memcmp(tab + 1, "\\\\x", 3))
		goto bad;
	v = strtoll(id, &end, 10);
	if (end != tab)
		goto bad;
	for (size_t i = 0; i < AF_LIVE_KEY_LEN; i++) {
		unsigned hi = hex_digit[(unsigned char)hex[2 * i]];
		unsigned lo = hex_digit[(unsigned char)hex[2 * i + 1]];

		invalid |= !hi | !lo;
		key[i] = (unsigned char)((hi - 1) << 4 | (lo - 1));
	}
	if (invalid)
		goto bad;
	return af_live_set_add(r->set[e], v, key);
bad:
	return af_error_set(AF_ERR_DB, "reading live rows: unexpected line from PostgreSQL");
}

static int fail(af_readahead *ra, int err)
{
	if (!ra->failed)
		ra->failed = err;
	return err;
}

/* Drops a read: its rows are not kept (a COPY under way is read on to its
 * end all the same). */
static void drop(af_live_read *r)
{
	for (size_t i = 0; i < AF_NENTITIES; i++) {
		af_live_set_free(r->set[i]);
		r->set[i] = NULL;
	}
	r->dropped = true;
}

/* One more row held: past the limit, the read is dropped, and so is every
 * one after it. */
static void count_row(af_readahead *ra)
{
	if (++ra->rows <= ra->max_rows || ra->max_rows == 0)
		return;
	ra->full = true;
	drop(ra->head->into);
}

/* The read under way is done: its sets are sealed, the next one may go. */
static void read_done(af_readahead *ra)
{
	pending_read *p = ra->head;

	for (size_t i = 0; i < AF_NENTITIES && !p->into->dropped; i++)
		af_live_set_seal(p->into->set[i]);
	p->into->done = !p->into->dropped;
	ra->head = p->next;
	if (!ra->head)
		ra->tail = NULL;
	af_buf_free(&p->sql);
	free(p);
	ra->state = IDLE;
}

/* Input for the next step: without `wait`, whether the server has sent it
 * yet (read without blocking). */
static bool input_ready(af_readahead *ra, bool wait, bool *consumed)
{
	if (wait || !PQisBusy(ra->conn))
		return true;
	if (*consumed)
		return false;
	*consumed = true;
	PQconsumeInput(ra->conn);
	return !PQisBusy(ra->conn);
}

/* Drives the reads: until all are done, or (without `wait`) until the
 * next step would block. */
static int drive(af_readahead *ra, bool wait)
{
	bool consumed = false;
	PGresult *res;
	char *line;
	int n, err;

	if (ra->failed)
		return ra->failed;
	while (ra->head) {
		switch (ra->state) {
		case IDLE:
			if (ra->full) {
				drop(ra->head->into);
				read_done(ra);
				break;
			}
			if (!PQsendQuery(ra->conn, af_buf_data(&ra->head->sql)))
				return fail(ra, af_store_db_error(ra->conn, NULL, "reading live rows"));
			ra->state = SENT;
			break;
		case SENT:
			if (!input_ready(ra, wait, &consumed))
				return 0;
			res = PQgetResult(ra->conn);
			if (PQresultStatus(res) != PGRES_COPY_OUT) {
				err = af_store_db_error(ra->conn, res, "reading live rows");
				PQclear(res);
				while ((res = PQgetResult(ra->conn)) != NULL)
					PQclear(res);
				return fail(ra, err);
			}
			PQclear(res);
			ra->state = COPYING;
			break;
		case COPYING:
			n = PQgetCopyData(ra->conn, &line, !wait);
			if (n > 0) {
				err = ra->head->into->dropped ? 0 : add_line(ra->head->into, line, n);
				PQfreemem(line);
				if (err < 0)
					return fail(ra, err);
				if (!ra->head->into->dropped)
					count_row(ra);
			} else if (n == 0) {
				if (consumed)
					return 0;
				consumed = true;
				if (!PQconsumeInput(ra->conn))
					return fail(ra, af_store_db_error(ra->conn, NULL,
									  "reading live rows"));
			} else if (n == -1) {
				ra->state = ENDING;
			} else {
				return fail(ra, af_store_db_error(ra->conn, NULL, "reading live rows"));
			}
			break;
		case ENDING:
			if (!input_ready(ra, wait, &consumed))
				return 0;
			if (!(res = PQgetResult(ra->conn))) {
				read_done(ra);
				break;
			}
			if (PQresultStatus(res) != PGRES_COMMAND_OK) {
				err = af_store_db_error(ra->conn, res, "reading live rows");
				PQclear(res);
				return fail(ra, err);
			}
			PQclear(res);
			break;
		}
	}
	return 0;
}

int af_readahead_poll(af_readahead *ra)
{
	return drive(ra, false);
}

int af_readahead_finish(af_readahead *ra)
{
	return drive(ra, true);
}

void af_readahead_free(af_readahead *ra)
{
	PGresult *res;
	char *line;

	if (!ra)
		return;
	/* A read under way is read to its end (and dropped): the connection
	 * must be free for the ROLLBACK that follows. */
	if (ra->head && ra->state != IDLE) {
		while (PQgetCopyData(ra->conn, &line, 0) > 0)
			PQfreemem(line);
		while ((res = PQgetResult(ra->conn)) != NULL)
			PQclear(res);
	}
	while (ra->head) {
		pending_read *p = ra->head;

		ra->head = p->next;
		af_buf_free(&p->sql);
		free(p);
	}
	free(ra);
}
