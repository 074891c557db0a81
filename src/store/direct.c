#include "direct.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/error.h"
#include "keymap.h"
#include "store_internal.h"

/* Ids taken from the sequence at a time, at most: a round trip per block. */
#define RESERVE_MAX 65536
/* Kinds remembered for the owner the resources follow; a resource beyond
 * that is staged. */
#define KINDS_MAX 16

/* The owner the next resources belong to: the last instance or service
 * this path took. Resources follow their owner in every normalizer; one
 * that does not is staged, which is correct, only slower. */
typedef struct owner_run {
	bool set;
	unsigned char key[AF_KEY_LEN];
	int64_t id;
	size_t nkinds;
	uint64_t kinds[KINDS_MAX];
} owner_run;

struct af_direct {
	char **triples; /* provider \x1f account \x1f product present, sorted */
	size_t ntriples;
	char tail[96];  /* "\t<now>\t<now>\t<run>\n": a row's bookkeeping columns */
	char now[40];
	int64_t run_id;
	af_direct_reserve_fn reserve;
	void *reserve_ctx;
	int64_t next_id, end_id; /* reserved, not yet used: next_id .. end_id - 1 */
	int64_t block;
	EVP_MD_CTX *md;
	/* Natural keys taken (instances and services, with their ids: a
	 * service finds its instance here) and staged (every entity). */
	af_key_map *taken_keys[AF_NENTITIES - 1];
	af_key_map *staged_keys;
	owner_run current[AF_NENTITIES - 1];
	uint64_t taken[AF_NENTITIES];
};

/* ---- what the tables hold ---------------------------------------------- */

static char *triple_key(const char *provider, const char *account, const char *product)
{
	const char *fields[] = {provider, account, product};

	return af_store_join_key(fields, 3);
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The distinct (provider, account, product) of one table, found by
 * walking its natural-key index from one value to the next (a loose index
 * scan): a few probes per value, however many rows the table has. */
static int put_triples_sql(af_buf *q, const char *table)
{
	return af_buf_printf(q,
			     "%s(WITH RECURSIVE t AS ("
			     " (SELECT provider, account, product FROM %s"
			     "  ORDER BY provider, account, product LIMIT 1)"
			     " UNION ALL"
			     " SELECT n.* FROM t, LATERAL (SELECT provider, account, product FROM %s r"
			     "  WHERE (r.provider, r.account, r.product) > (t.provider, t.account, t.product)"
			     "  ORDER BY provider, account, product LIMIT 1) n)"
			     " SELECT * FROM t)",
			     af_buf_len(q) ? " UNION " : "", table, table);
}

static int load_triples(af_direct *d, PGconn *conn)
{
	af_buf q = AF_BUF_INIT;
	PGresult *res = NULL;
	int i, n, err = 0;

	for (i = 0; i < AF_NENTITIES && !err; i++)
		err = put_triples_sql(&q, af_entities[i].table);
	if (err < 0)
		goto done;
	res = PQexec(conn, af_buf_data(&q));
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(conn, res, "reading which accounts the inventory holds");
		goto done;
	}
	n = PQntuples(res);
	if (n > 0 && !(d->triples = calloc((size_t)n, sizeof(*d->triples)))) {
		err = af_error_oom();
		goto done;
	}
	for (i = 0; i < n; i++) {
		if (!(d->triples[i] = triple_key(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
						 PQgetvalue(res, i, 2)))) {
			err = af_error_oom();
			goto done;
		}
		d->ntriples++;
	}
	if (d->ntriples > 1)
		qsort(d->triples, d->ntriples, sizeof(*d->triples), key_cmp);
done:
	PQclear(res);
	af_buf_free(&q);
	return err;
}

/* The transaction's timestamp, which every now() of the merge returns, in
 * a form COPY reads back exactly whatever the session's DateStyle. */
static int load_now(af_direct *d, PGconn *conn)
{
	PGresult *res = PQexec(conn, "SELECT to_char(now() AT TIME ZONE 'UTC',"
				     " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
	int err = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		err = af_store_db_error(conn, res, "reading the run's timestamp");
	else
		snprintf(d->now, sizeof(d->now), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return err;
}

int af_direct_new(af_direct **out, PGconn *conn, int64_t run_id, af_direct_reserve_fn reserve,
		  void *ctx)
{
	af_direct *d = calloc(1, sizeof(*d));
	int err = 0;

	*out = NULL;
	if (!d)
		return af_error_oom();
	d->run_id = run_id;
	d->reserve = reserve;
	d->reserve_ctx = ctx;
	d->block = 1024;
	if (!(d->md = EVP_MD_CTX_new())) {
		err = af_error_oom();
		goto done;
	}
	for (int i = 0; i < AF_NENTITIES - 1 && !err; i++)
		err = af_key_map_new(&d->taken_keys[i]);
	if (err < 0 || (err = af_key_map_new(&d->staged_keys)) < 0)
		goto done;
	if ((err = load_triples(d, conn)) < 0 || (err = load_now(d, conn)) < 0)
		goto done;
	snprintf(d->tail, sizeof(d->tail), "\t%s\t%s\t%" PRId64 "\n", d->now, d->now, run_id);
	*out = d;
	d = NULL;
done:
	af_direct_free(d);
	return err;
}

bool af_direct_scope_new(const af_direct *d, const af_scope *sc)
{
	char *k = triple_key(sc->provider, sc->account, sc->product);
	bool present;

	if (!k)
		return false; /* staging is always correct */
	present = d->ntriples > 0 &&
		  bsearch(&k, d->triples, d->ntriples, sizeof(*d->triples), key_cmp) != NULL;
	free(k);
	return !present;
}

/* ---- keys ----------------------------------------------------------------- */

_Static_assert(AF_KEY_LEN == AF_KEY_HASH_LEN, "the key map holds af_key_hash's keys");

/* FNV-1a: a resource kind among its owner's few; a collision only stages
 * the resource. */
static uint64_t kind_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int next_id(af_direct *d, int64_t *id)
{
	int err;

	if (d->next_id == d->end_id) {
		if ((err = d->reserve(d->reserve_ctx, d->block, &d->next_id)) < 0)
			return err;
		d->end_id = d->next_id + d->block;
		if (d->block < RESERVE_MAX)
			d->block *= 2;
	}
	*id = d->next_id++;
	return 0;
}

/* ---- offering a record ------------------------------------------------------ */

/* Whether an instance or service can be taken: its key is new to the run,
 * and a service's instance was taken (its id in *owner). */
static int parent_takeable(af_direct *d, const af_entity *e, const af_scope *sc,
			   const af_record_key *k, const unsigned char key[AF_KEY_LEN],
			   int64_t owner_ids[2], bool *ok)
{
	const int ent = (int)(e - af_entities);
	unsigned char okey[AF_KEY_LEN];
	int err;

	*ok = !af_key_map_get(d->taken_keys[ent], key, NULL);
	if (!*ok || k->owner < 0)
		return 0;
	if ((err = af_key_hash(d->md, sc, &k->owner_id, 1, okey)) < 0)
		return err;
	*ok = af_key_map_get(d->taken_keys[k->owner], okey, &owner_ids[0]);
	return 0;
}

/* Whether a resource can be taken: it names the owner taken last of its
 * kind, and that owner has no resource of this kind yet. */
static int resource_takeable(af_direct *d, const af_entity *e, const af_scope *sc,
			     const af_record_key *k, int64_t owner_ids[2], bool *ok)
{
	owner_run *o = &d->current[k->owner];
	unsigned char okey[AF_KEY_LEN];
	uint64_t kh = kind_hash(k->name);
	int err;

	*ok = false;
	if (!o->set || o->nkinds == KINDS_MAX)
		return 0;
	if ((err = af_key_hash(d->md, sc, &k->owner_id, 1, okey)) < 0)
		return err;
	if (memcmp(okey, o->key, AF_KEY_LEN) != 0)
		return 0;
	for (size_t i = 0; i < o->nkinds; i++)
		if (o->kinds[i] == kh)
			return 0;
	o->kinds[o->nkinds++] = kh;
	for (size_t i = 0; i < 2 && e->owners[i].column; i++)
		owner_ids[i] = e->owners[i].entity == k->owner ? o->id : AF_NO_OWNER;
	*ok = true;
	return 0;
}

/* The record's natural key; a resource's names its owner's kind, id and
 * its own kind. */
static int record_key(af_direct *d, const af_entity *e, const af_scope *sc,
		      const af_record_key *k, unsigned char key[AF_KEY_LEN])
{
	const char *kind = k->owner == AF_ENTITY_SERVICE ? "service" : "instance";
	const char *parts[3] = {kind, k->owner_id, k->name};

	if (e - af_entities == AF_ENTITY_RESOURCE)
		return af_key_hash(d->md, sc, parts, 3, key);
	return af_key_hash(d->md, sc, &k->name, 1, key);
}

static int put_history(af_direct *d, af_buf *hist, const af_entity *e, int64_t id)
{
	return af_buf_printf(hist, "%s\t%" PRId64 "\t[\"%s\",)\tcreated\t%s\t%" PRId64 "\n",
			     e->type, id, d->now, d->now, d->run_id);
}

/* A parent taken becomes the owner its resources follow. */
static void follow(af_direct *d, int ent, const unsigned char key[AF_KEY_LEN], int64_t id)
{
	owner_run *o = &d->current[ent];

	o->set = true;
	memcpy(o->key, key, AF_KEY_LEN);
	o->id = id;
	o->nkinds = 0;
}

int af_direct_offer(af_direct *d, const af_entity *e, const af_scope *sc, const void *rec,
		    const unsigned char hash[AF_CONTENT_HASH_LEN], af_buf *row, af_buf *hist,
		    bool *taken)
{
	const int ent = (int)(e - af_entities);
	int64_t id, owner_ids[2] = {AF_NO_OWNER, AF_NO_OWNER};
	unsigned char key[AF_KEY_LEN];
	af_record_key k;
	bool ok = false;
	int err;

	*taken = false;
	af_record_key_of(e, rec, &k);
	if ((err = record_key(d, e, sc, &k, key)) < 0)
		return err;
	if (!af_key_map_get(d->staged_keys, key, NULL)) {
		err = ent == AF_ENTITY_RESOURCE
			      ? resource_takeable(d, e, sc, &k, owner_ids, &ok)
			      : parent_takeable(d, e, sc, &k, key, owner_ids, &ok);
		if (err < 0)
			return err;
	}
	if (!ok) {
		/* Every later copy of this key is staged too: the merge then
		 * sees them all, in order. */
		if (ent != AF_ENTITY_RESOURCE)
			d->current[ent].set = false;
		return af_key_map_put(d->staged_keys, key, 1);
	}
	if ((err = next_id(d, &id)) < 0 ||
	    (err = af_direct_put_row(row, e, id, owner_ids, sc, rec, hash, d->tail)) < 0 ||
	    (err = put_history(d, hist, e, id)) < 0)
		return err;
	if (ent != AF_ENTITY_RESOURCE) {
		if ((err = af_key_map_put(d->taken_keys[ent], key, id)) < 0)
			return err;
		follow(d, ent, key, id);
	}
	d->taken[ent]++;
	*taken = true;
	return 0;
}

uint64_t af_direct_taken(const af_direct *d, int entity)
{
	return d && entity >= 0 && entity < AF_NENTITIES ? d->taken[entity] : 0;
}

void af_direct_free(af_direct *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->ntriples; i++)
		free(d->triples[i]);
	free(d->triples);
	EVP_MD_CTX_free(d->md);
	for (int i = 0; i < AF_NENTITIES - 1; i++)
		af_key_map_free(d->taken_keys[i]);
	af_key_map_free(d->staged_keys);
	free(d);
}
