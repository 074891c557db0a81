/*
 * The loader: one run = one transaction.
 *
 *   begin   advisory lock, BEGIN, TEMP staging tables, sync_run row, the
 *           ledger's scopes and digests, COPY
 *   sink    validate + hash each record in C, add the hash to its scope's
 *           digest, and route its COPY row: a scope the ledger never saw
 *           streams into COPY (in batches); any other has its live rows
 *           read meanwhile, and a record they hold as it is goes no
 *           further; the rest of it goes to the spool
 *   commit  skip the clean scopes whose digest did not change; filter the
 *           other spooled scopes against their live rows, staging only
 *           what changed; then merge set-based (classify, insert, update,
 *           owner check, guard, tombstones), update the run and the scope
 *           ledger, COMMIT (or ROLLBACK for a dry run)
 *
 * What an entity's columns are -- and so what is validated, hashed, staged
 * and merged -- is one table per entity in columns.c; the digest and the
 * spool are spool.c, the live set liveset.c, reading it while records
 * arrive readahead.c; this file runs the run.
 *
 * A failed run leaves no trace in the database: the sync_run row is written
 * inside the run's transaction, so a failure rolls it back with everything
 * else and the error is reported by the caller (log + exit code).
 *
 * A rejected record (missing key, bad number, bad JSON) is not a failure of
 * the run: the sink returns AF_ERR_DATA naming the record, the record is not
 * staged, and its scope becomes partial (nothing in it is tombstoned). The
 * rest of the run still loads.
 */
#include "bulk.h"
#include "columns.h"
#include "direct.h"
#include "liveset.h"
#include "locks.h"
#include "readahead.h"
#include "spool.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aifleet/clock.h"
#include "aifleet/error.h"
#include "aifleet/log.h"
#include "aifleet/store.h"
#include "aifleet/version.h"

/* An entity's owner id columns (af_entity.owners). */
#define COUNT_OWNERS (sizeof(((af_entity *)0)->owners) / sizeof(((af_entity *)0)->owners[0]))

/* Bytes of COPY text buffered per target before PQputCopyData: memory
 * stays flat whatever the size of the fleet, and a COPY is switched to
 * another table once per batch at most. */
#define BATCH_BYTES ((size_t)1024 * 1024)
/* Rows created in one run after which the table is analyzed, if they are
 * also a tenth of what the planner thinks it holds (analyze_table). */
#define ANALYZE_AFTER 1000
/* A merge whose stage is at most this share of the rows the filter read
 * back (1/20) is planned as probes into cached tables (merge_entities). */
#define SMALL_MERGE_SHARE 20
/* Live rows read while records arrive, at most (about 34 bytes each, so
 * 51 MiB): a sync's peak memory stays near what its collection needs.
 * The scopes past it are read at the commit, if they changed. */
#define READ_AHEAD_ROWS ((size_t)3 << 19)
/* A known scope's records before its live rows are read while records
 * arrive: a read is a query or two of round trips, worth it for a large
 * scope, not for thousands of small ones (those are read at the commit,
 * and only if they changed). */
#define READ_AHEAD_AFTER 256
/* One record (with its raw payload) may not exceed this. */
#define ROW_MAX ((size_t)16 * 1024 * 1024)

typedef struct scope_entry {
	char *provider, *account, *region, *product;
	bool reported;
	af_scope_report report; /* error points to err_copy */
	char *err_copy;
	uint64_t loader_rejected;
	char *first_reject; /* first rejection message, for the ledger */
	bool held;          /* set by the commit: the guard held its tombstones */
	uint64_t held_deletes, held_live;
	/*
	 * A scope the ledger knows is spooled: its rows wait in the spool
	 * until the commit knows whether it changed. Unchanged (its digest
	 * is the one its last clean run left), it is skipped; changed, it is
	 * filtered: only rows its live rows do not hold as they are are
	 * staged. Its live rows are read while records arrive (readahead.h):
	 * a record that comes once they are in and that they hold is counted
	 * in seen_by and not spooled at all.
	 */
	af_scope_digest digest;
	uint64_t records[AF_NENTITIES]; /* sent, per entity */
	bool spooled;
	af_live_read *live;             /* its live rows, once asked for */
	uint64_t seen_by[AF_NENTITIES]; /* records its live rows held as they are */
	bool direct; /* its provider, account and product are new: direct.c */
	bool has_stored;
	unsigned char stored[AF_SCOPE_DIGEST_LEN];
	bool skipped;  /* set by the commit: unchanged, nothing of it loaded */
	bool filtered; /* set by the commit: spooled, not skipped */
	uint64_t seen; /* filtered: records its live rows held (unchanged) */
	bool clean;    /* set by the commit: its digest may be kept */
	unsigned char final[AF_SCOPE_DIGEST_LEN];
} scope_entry;

/* A scope the ledger knows, by scope_key(), with its digest if it kept one. */
typedef struct ledger_scope {
	char *key;
	bool has_digest;
	unsigned char digest[AF_SCOPE_DIGEST_LEN];
} ledger_scope;

/*
 * Where COPY rows go: the staging table, the filter's unseen ids, and for
 * the first-load path the entity tables and history. One COPY is open at
 * a time (open_target); each target buffers its rows, and a full buffer
 * switches the open COPY to its table.
 */
enum {
	TARGET_STAGE,
	TARGET_UNSEEN,
	TARGET_TABLE, /* + AF_ENTITY_*: aifleet.<type> */
	TARGET_HISTORY = TARGET_TABLE + AF_NENTITIES,
	NTARGETS,
	NO_TARGET = -1
};

struct af_loader {
	af_store *store;
	PGconn *conn;
	bool dry_run;
	char *trigger;
	af_delete_guard guard; /* allow[] borrowed from the caller for the run */
	bool no_direct;
	bool in_tx, accepting, committed;
	/*
	 * Runs over listed scopes collect side by side and write one at a
	 * time (store_internal.h names the keys). They share the run key;
	 * the scope locks (a session lock per scope) keep two of them off one
	 * scope; the write lock (for the transaction) serializes what they
	 * write: ids, the first load's indexes, the merge. One that finds the
	 * write lock taken spools everything and takes it, waiting, at its
	 * commit. A run over the whole database holds the run key alone.
	 */
	enum { RUN_KEY_NONE, RUN_KEY_SHARED, RUN_KEY_EXCLUSIVE } run_key;
	bool write_deferred;
	af_scope_locks scope_locks;
	char **allowed;         /* the listed scopes' keys, sorted; NULL: any scope */
	size_t nallowed;
	size_t nbusy;           /* listed scopes another run held */
	char *shard;
	/* The error that ended the run (0 while it goes on), and its message:
	 * every later call fails with the same class, so a lost database
	 * stays a lost database (exit 75) however the caller learns of it. */
	int failed;
	char failure[512];
	int64_t run_id;
	uint64_t seq;
	af_stage stage; /* the staging table and merge SQL, from columns.c */
	af_buf out[NTARGETS]; /* COPY rows not sent yet, per target */
	int open_target;      /* the COPY open, or NO_TARGET */
	af_buf row;     /* the record being staged */
	af_buf hist;    /* its first version, on the first-load path */
	af_direct *direct; /* the first-load path; NULL when disabled */
	af_deferred_indexes deferred; /* dropped for a database's first load: bulk.c */
	af_spool *spool; /* rows of the scopes that may be skipped; NULL until one */
	af_readahead *ahead; /* the spooled scopes' live rows, read meanwhile */
	unsigned polls;      /* records since the last poll of `ahead` */
	ledger_scope *ledger; /* the scopes scope_state knows, sorted by key */
	size_t nledger;
	size_t last_scope; /* scope_find's first guess: records come in runs */
	uint64_t seen[AF_NENTITIES];      /* records of filtered scopes found unchanged */
	uint64_t vanished[AF_NENTITIES];  /* rows in v_<type> */
	uint64_t staged_rows;             /* rows sent to af_stage */
	uint64_t live_rows;               /* rows the filter read back */
	uint64_t spooled_bytes;           /* what the spool held, for the log */
	EVP_MD_CTX *md;
	json_tokener *tok;
	scope_entry *scopes;
	size_t nscopes, scopes_alloc;
	/* scope_lookup's index of scopes[]: open addressing on scope_hash;
	 * a slot holds an index + 1, 0 is empty. Size a power of two. */
	size_t *scope_slots;
	size_t scope_cap;
	uint64_t rejected_unscoped;
	double t_begin;          /* af_clock_seconds() at begin */
};

/* ---- scopes ---------------------------------------------------------- */

static bool str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

static bool scope_is(const scope_entry *e, const af_scope *sc)
{
	return str_eq(e->provider, sc->provider) && str_eq(e->account, sc->account) &&
	       str_eq(e->region, sc->region) && str_eq(e->product, sc->product);
}

/* A scope's name for the ledger lookup: the four fields joined by a unit
 * separator, which none of them can contain. */
static char *scope_key(const char *provider, const char *account, const char *region,
		       const char *product)
{
	const char *fields[] = {provider, account, region, product};

	return af_store_join_key(fields, 4);
}

static int ledger_cmp(const void *a, const void *b)
{
	return strcmp(((const ledger_scope *)a)->key, ((const ledger_scope *)b)->key);
}

/* Does the ledger know the scope (then it may have rows), and with which
 * digest? */
static int look_up_ledger(af_loader *l, scope_entry *e, bool *known)
{
	ledger_scope want, *hit;

	*known = false;
	if (l->nledger == 0)
		return 0;
	if (!(want.key = scope_key(e->provider, e->account, e->region, e->product)))
		return af_error_oom();
	hit = bsearch(&want, l->ledger, l->nledger, sizeof(*l->ledger), ledger_cmp);
	free(want.key);
	if (hit) {
		*known = true;
		e->has_stored = hit->has_digest;
		memcpy(e->stored, hit->digest, sizeof(e->stored));
	}
	return 0;
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A run over listed scopes loads those only: they are what it locked. */
static int check_allowed(const af_loader *l, const af_scope *sc)
{
	char *key, name[1024];
	bool ok;

	if (!l->allowed)
		return 0;
	if (!(key = scope_key(sc->provider, sc->account, sc->region, sc->product)))
		return af_error_oom();
	ok = bsearch(&key, l->allowed, l->nallowed, sizeof(*l->allowed), key_cmp) != NULL;
	free(key);
	if (ok)
		return 0;
	return af_error_set(AF_ERR_PARAM,
			    "scope %s is not one of the run's (it holds no lock on it)",
			    af_scope_name(name, sizeof(name), sc));
}

/* FNV-1a over the four fields, each ended by a unit separator: cheap,
 * and asked once per page, not once per record (scope_find's guess). */
static uint64_t scope_hash(const char *provider, const char *account, const char *region,
			   const char *product)
{
	const char *fields[4] = {provider, account, region, product};
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < 4; i++) {
		for (const unsigned char *c = (const unsigned char *)(fields[i] ? fields[i] : "");
		     *c; c++)
			h = (h ^ *c) * 0x100000001b3ULL;
		h = (h ^ 0x1f) * 0x100000001b3ULL;
	}
	return h;
}

/* The run's entry of a scope, or NULL. */
static scope_entry *scope_lookup(af_loader *l, const af_scope *sc)
{
	size_t mask = l->scope_cap - 1, i;

	if (!l->scope_cap)
		return NULL;
	for (i = scope_hash(sc->provider, sc->account, sc->region, sc->product) & mask;
	     l->scope_slots[i]; i = (i + 1) & mask)
		if (scope_is(&l->scopes[l->scope_slots[i] - 1], sc))
			return &l->scopes[l->scope_slots[i] - 1];
	return NULL;
}

static void slot_put(size_t *slots, size_t cap, const scope_entry *e, size_t index)
{
	size_t i = scope_hash(e->provider, e->account, e->region, e->product) & (cap - 1);

	while (slots[i])
		i = (i + 1) & (cap - 1);
	slots[i] = index + 1;
}

/* Enters scopes[index], the newest entry, into the index, which grows to
 * stay at most half full. */
static int index_scope(af_loader *l, size_t index)
{
	if (l->nscopes * 2 > l->scope_cap) {
		size_t cap = l->scope_cap ? 2 * l->scope_cap : 64;
		size_t *slots = calloc(cap, sizeof(*slots));

		if (!slots)
			return af_error_oom();
		for (size_t k = 0; k < index; k++)
			slot_put(slots, cap, &l->scopes[k], k);
		free(l->scope_slots);
		l->scope_slots = slots;
		l->scope_cap = cap;
	}
	slot_put(l->scope_slots, l->scope_cap, &l->scopes[index], index);
	return 0;
}

/* Queues the read of a spooled scope's live rows. */
static int ask_live_rows(af_loader *l, scope_entry *e, const af_scope *sc)
{
	int err;

	if (!l->ahead && (err = af_readahead_new(&l->ahead, l->conn, READ_AHEAD_ROWS)) < 0)
		return err;
	return af_readahead_queue(l->ahead, sc, &e->live);
}

/* The run's entry of a scope, made if it has none yet. */
static int scope_find(scope_entry **out, af_loader *l, const af_scope *sc)
{
	scope_entry *e;
	int err;

	if (l->last_scope < l->nscopes && scope_is(&l->scopes[l->last_scope], sc)) {
		*out = &l->scopes[l->last_scope];
		return 0;
	}
	if ((e = scope_lookup(l, sc)) != NULL) {
		l->last_scope = (size_t)(e - l->scopes);
		*out = e;
		return 0;
	}
	if ((err = check_allowed(l, sc)) < 0)
		return err;
	if (l->nscopes == l->scopes_alloc) {
		size_t n = l->scopes_alloc ? 2 * l->scopes_alloc : 16;
		scope_entry *p = realloc(l->scopes, n * sizeof(*p));

		if (!p)
			return af_error_oom();
		l->scopes = p;
		l->scopes_alloc = n;
	}
	e = &l->scopes[l->nscopes];
	memset(e, 0, sizeof(*e));
	e->provider = dup_or_empty(sc->provider);
	e->account = dup_or_empty(sc->account);
	e->region = dup_or_empty(sc->region);
	e->product = dup_or_empty(sc->product);
	l->nscopes++;
	if (!e->provider || !e->account || !e->region || !e->product)
		return af_error_oom();
	if ((err = index_scope(l, l->nscopes - 1)) < 0)
		return err;
	l->last_scope = l->nscopes - 1;
	*out = e;
	/* A scope the ledger knows is spooled: it may have rows, and may turn
	 * out unchanged. One it never saw has none: its records stream to
	 * COPY while the collection goes on. Without the write lock, nothing
	 * is known yet: everything waits in the spool. */
	if (l->write_deferred) {
		e->spooled = true;
		return 0;
	}
	if ((err = look_up_ledger(l, e, &e->spooled)) < 0)
		return err;
	e->direct = !e->spooled && l->direct && af_direct_scope_new(l->direct, sc);
	return 0;
}

static void scope_entry_free(scope_entry *e)
{
	free(e->provider);
	free(e->account);
	free(e->region);
	free(e->product);
	free(e->err_copy);
	free(e->first_reject);
	af_live_read_free(e->live);
	e->live = NULL;
}

/* ---- records ------------------------------------------------------------ */

static bool nonempty(const char *s)
{
	return s && *s;
}

/* Ends the run with `err` (the last error's message); returns `err`. */
static int fail_run(af_loader *l, int err)
{
	if (!l->failed) {
		l->failed = err;
		snprintf(l->failure, sizeof(l->failure), "%s", af_error_last());
	}
	return err;
}

/* After the run failed: the same class, the first cause named. */
static int run_failed(const af_loader *l, const char *what)
{
	return af_error_set(l->failed, "%s: the run failed earlier (%s)", what, l->failure);
}

/* Counts a rejected record against its scope (which becomes partial) and
 * sets the error that names it. */
static int reject(af_loader *l, const af_scope *sc, const af_entity *ent, const void *rec,
		  const char *why)
{
	const char *what = ent->type;
	char name[1024], idbuf[512];
	const char *id = idbuf;
	af_record_key k;
	scope_entry *e;
	int err;

	/* A resource has no id of its own: its owner's and its kind name it.
	 * Built here, as only a rejection says it. */
	af_record_key_of(ent, rec, &k);
	if (ent != &af_entities[AF_ENTITY_RESOURCE])
		id = k.name;
	else
		snprintf(idbuf, sizeof(idbuf), "%s/%s", k.owner_id ? k.owner_id : "(no owner)",
			 k.name ? k.name : "(no kind)");

	if (!af_scope_valid(sc)) {
		l->rejected_unscoped++;
		return af_error_set(AF_ERR_DATA, "rejected %s %s: incomplete scope (%s)", what,
				    id ? id : "(no id)", why);
	}
	/* A hostile id may be kilobytes long: name it by its start. */
	af_error_set(AF_ERR_DATA, "rejected %s %.*s%s in scope %s: %s", what,
		     nonempty(id) ? 128 : 64, nonempty(id) ? id : "(no native id)",
		     nonempty(id) && strlen(id) > 128 ? "..." : "",
		     af_scope_name(name, sizeof(name), sc), why);
	if ((err = scope_find(&e, l, sc)) < 0)
		return fail_run(l, err);
	e->loader_rejected++;
	if (!e->first_reject)
		e->first_reject = strdup(af_error_last());
	af_warn("loader", "%s", af_error_last());
	return AF_ERR_DATA;
}

/* ---- COPY targets ------------------------------------------------------ */

static const char *target_sql(const af_loader *l, int t)
{
	if (t == TARGET_STAGE)
		return l->stage.copy_sql;
	if (t == TARGET_UNSEEN)
		return "COPY af_unseen (entity, id) FROM STDIN";
	if (t == TARGET_HISTORY)
		return AF_DIRECT_HISTORY_COPY;
	return l->stage.direct_copy_sql[t - TARGET_TABLE];
}

/* After a COPY: every result, as psql's handleCopyIn drains them; the first
 * failure named by `what` unless `err` already says what went wrong. */
static int drain_results(af_loader *l, const char *what, int err)
{
	PGresult *res;

	while ((res = PQgetResult(l->conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && !err)
			err = af_store_db_error(l->conn, res, what);
		PQclear(res);
	}
	return err;
}

/* Ends the open COPY, if any: the connection can take a statement again. */
static int close_copy(af_loader *l)
{
	int err;

	if (l->open_target == NO_TARGET)
		return 0;
	l->open_target = NO_TARGET;
	if (PQputCopyEnd(l->conn, NULL) != 1)
		return fail_run(l, af_store_db_error(l->conn, NULL, "ending a COPY"));
	err = drain_results(l, "COPY of the run's rows", 0);
	return err < 0 ? fail_run(l, err) : 0;
}

/* The reads of live rows still under way, waited for: the connection is
 * free for a COPY or a statement then. */
static int finish_reads(af_loader *l)
{
	int err;

	if (af_readahead_busy(l->ahead) && (err = af_readahead_finish(l->ahead)) < 0)
		return fail_run(l, err);
	return 0;
}

/* Sends the target's buffer, switching the open COPY to it first. */
static int send_target(af_loader *l, int t)
{
	af_buf *b = &l->out[t];
	PGresult *res;
	int err;

	if (af_buf_len(b) == 0)
		return 0;
	if (l->open_target != t) {
		if ((err = close_copy(l)) < 0 || (err = finish_reads(l)) < 0)
			return err;
		res = PQexec(l->conn, target_sql(l, t));
		if (PQresultStatus(res) != PGRES_COPY_IN)
			err = af_store_db_error(l->conn, res, "starting a COPY of the run's rows");
		PQclear(res);
		if (err < 0)
			return fail_run(l, err);
		l->open_target = t;
	}
	if (PQputCopyData(l->conn, af_buf_data(b), (int)af_buf_len(b)) != 1) {
		/* libpq reports a failed send while the connection still looks
		 * fine; reading what is left tells a lost server (which marks
		 * it bad, so the error is transient) from a refused COPY. */
		PQconsumeInput(l->conn);
		return fail_run(l, af_store_db_error(l->conn, NULL,
						     "streaming records to PostgreSQL"));
	}
	af_buf_reset(b);
	return 0;
}

/* Appends one COPY row to a target, handing its buffer on first if the
 * row would overfill it. */
static int put_row(af_loader *l, int t, const char *row, size_t len)
{
	int err;

	if (af_buf_len(&l->out[t]) + len > BATCH_BYTES && (err = send_target(l, t)) < 0)
		return err;
	if ((err = af_buf_append(&l->out[t], row, len)) < 0)
		return fail_run(l, err);
	if (t == TARGET_STAGE)
		l->staged_rows++;
	return 0;
}

/* Sends every buffered row and ends the COPY: what follows is SQL. */
static int flush_targets(af_loader *l)
{
	int err;

	/* The open target first: one switch fewer. */
	if (l->open_target != NO_TARGET && (err = send_target(l, l->open_target)) < 0)
		return err;
	for (int t = 0; t < NTARGETS; t++)
		if ((err = send_target(l, t)) < 0)
			return err;
	return close_copy(l);
}

/* The row goes to the spool when its scope may turn out unchanged (the
 * commit decides), else straight into the COPY stream. */
static int route_row(af_loader *l, const scope_entry *se, const af_spool_tag *tag)
{
	int err;

	if (!se->spooled)
		return put_row(l, TARGET_STAGE, af_buf_data(&l->row), af_buf_len(&l->row));
	if (!l->spool && (err = af_spool_open(&l->spool)) < 0)
		return fail_run(l, err);
	if ((err = af_spool_put(l->spool, tag, af_buf_data(&l->row), af_buf_len(&l->row))) < 0)
		return fail_run(l, err);
	return 0;
}

/* A row direct.c took: into its table, its first version into history. */
static int put_direct(af_loader *l, const af_entity *e)
{
	int err;

	if ((err = put_row(l, TARGET_TABLE + (int)(e - af_entities), af_buf_data(&l->row),
			   af_buf_len(&l->row))) < 0)
		return err;
	return put_row(l, TARGET_HISTORY, af_buf_data(&l->hist), af_buf_len(&l->hist));
}

/* Records between two looks at what the reads of live rows received: a
 * look is a system call, a record a few microseconds. */
#define POLL_EVERY 64

/* Lets the reads of live rows go on, without waiting -- while no COPY
 * holds the connection (send_target finishes them before it opens one). */
static int poll_reads(af_loader *l)
{
	int err;

	if (!af_readahead_busy(l->ahead) || l->open_target != NO_TARGET ||
	    ++l->polls < POLL_EVERY)
		return 0;
	l->polls = 0;
	if ((err = af_readahead_poll(l->ahead)) < 0)
		return fail_run(l, err);
	return 0;
}

/* A spooled scope's live rows are read while records arrive once it has
 * sent READ_AHEAD_AFTER of them -- only with the write lock, when the
 * ledger says which scopes have rows (a run without it reads them at its
 * commit). */
static int maybe_read_ahead(af_loader *l, scope_entry *se, const af_scope *sc)
{
	uint64_t sent = 0;

	if (se->live || l->write_deferred)
		return 0;
	for (size_t i = 0; i < AF_NENTITIES; i++)
		sent += se->records[i];
	return sent < READ_AHEAD_AFTER ? 0 : ask_live_rows(l, se, sc);
}

/* A spooled scope's record that its live rows, read already, hold as it
 * is: nothing to stage or spool, whatever the commit decides. */
static bool known_unchanged(scope_entry *se, const af_entity *e, const unsigned char *hash)
{
	size_t i = (size_t)(e - af_entities);

	if (!se->live || !se->live->done || !af_live_set_take(se->live->set[i], hash))
		return false;
	se->seen_by[i]++;
	return true;
}

/* A record the run keeps (staged, spooled, or known unchanged): in its
 * scope's digest and counts. */
static void count_sent(scope_entry *se, const af_entity *e, const unsigned char *hash)
{
	af_scope_digest_add(&se->digest, hash);
	se->records[e - af_entities]++;
}

/* Hashes the record, adds the hash to its scope's digest, and routes its
 * row: on the first-load path into its table when direct.c takes it, else
 * -- unless its scope's live rows hold it -- a staging row to COPY or the
 * spool. */
static int stage_row(af_loader *l, const af_entity *e, const af_scope *sc, const void *rec)
{
	af_spool_tag tag;
	scope_entry *se;
	bool taken = false;
	int err;

	if ((err = poll_reads(l)) < 0 || (err = scope_find(&se, l, sc)) < 0 ||
	    (err = af_content_hash(l->md, e, sc, rec, tag.hash)) < 0)
		return fail_run(l, err);
	if (se->spooled && (err = maybe_read_ahead(l, se, sc)) < 0)
		return fail_run(l, err);
	if (se->spooled && known_unchanged(se, e, tag.hash)) {
		count_sent(se, e, tag.hash);
		return 0;
	}
	if (se->direct) {
		af_buf_reset(&l->row);
		af_buf_reset(&l->hist);
		err = af_direct_offer(l->direct, e, sc, rec, tag.hash, &l->row, &l->hist, &taken);
	}
	if (!err && !taken) {
		af_buf_reset(&l->row);
		err = af_stage_put_row(&l->stage, &l->row, e, ++l->seq, sc, rec, tag.hash);
	}
	/* A record too large for one COPY row (ROW_MAX) is rejected alone: one
	 * odd item must not fail every other scope of the run. */
	if (err == AF_ERR_LIMIT)
		return reject(l, sc, e, rec,
			      "the record is larger than the loader's 16 MiB row limit");
	/* Bad data is that record's problem too; anything else ends the run. */
	if (err < 0)
		return err == AF_ERR_DATA ? err : fail_run(l, err);
	count_sent(se, e, tag.hash);
	if (taken)
		return put_direct(l, e);
	tag.scope = (uint32_t)(se - l->scopes);
	tag.entity = (uint32_t)(e - af_entities);
	return route_row(l, se, &tag);
}

static int usable(af_loader *l)
{
	if (l->failed)
		return run_failed(l, "the loader is not accepting records");
	if (!l->accepting)
		return af_error_set(AF_ERR_PARAM, "the loader is not accepting records (not "
				    "started or already committed)");
	return 0;
}

/* Validates a record against its entity's columns, then stages it. */
static int sink_record(af_loader *l, const af_entity *e, const af_scope *sc, const void *rec)
{
	const char *why;
	char msg[160];
	int err;

	if ((err = usable(l)) < 0)
		return err;
	if (!af_scope_valid(sc))
		return reject(l, sc, e, rec, "scope fields missing or invalid");
	if ((why = af_record_problem(e, rec, l->tok, msg, sizeof(msg))) != NULL)
		return reject(l, sc, e, rec, why);
	return stage_row(l, e, sc, rec);
}

static int sink_instance(void *ctx, const af_scope *sc, const af_instance *in)
{
	return sink_record(ctx, &af_entities[AF_ENTITY_INSTANCE], sc, in);
}

static int sink_service(void *ctx, const af_scope *sc, const af_service *sv)
{
	return sink_record(ctx, &af_entities[AF_ENTITY_SERVICE], sc, sv);
}

static int sink_resource(void *ctx, const af_scope *sc, const af_resource *rs)
{
	return sink_record(ctx, &af_entities[AF_ENTITY_RESOURCE], sc, rs);
}

af_record_sink af_loader_sink(af_loader *l)
{
	af_record_sink sink = {sink_instance, sink_service, sink_resource, l};

	return sink;
}

/* ---- begin ------------------------------------------------------------ */

/* The run's scope ledger, filled at commit (stage_scopes). af_stage itself
 * comes from the column tables (columns.c). */
static const char scope_table_sql[] =
	"CREATE TEMP TABLE af_scope ("
	" provider text, account text, region text, product text,"
	" reported boolean NOT NULL, state text NOT NULL, error text,"
	" pages bigint, items bigint, duplicates bigint, rejected bigint, requests bigint,"
	" retries bigint, throttled bigint, seconds float8, eligible boolean NOT NULL,"
	" allow_deletes boolean NOT NULL DEFAULT false, held_deletes bigint, held_live bigint,"
	" skipped boolean NOT NULL DEFAULT false, digest bytea,"
	" filtered boolean NOT NULL DEFAULT false, seen bigint NOT NULL DEFAULT 0,"
	" PRIMARY KEY (provider, account, region, product)"
	") ON COMMIT DROP;"
	/* the live rows of filtered scopes that no record matched, by
	 * entity code (af_entity.code), as af_stage names them */
	"CREATE TEMP TABLE af_unseen (entity \"char\" NOT NULL, id bigint PRIMARY KEY)"
	" ON COMMIT DROP";

/* The scopes the run may load, as sorted keys, for check_allowed. */
static int list_allowed(af_loader *l, const af_run_options *opts, const bool *busy)
{
	if (!(l->allowed = calloc(opts->nscopes ? opts->nscopes : 1, sizeof(*l->allowed))))
		return af_error_oom();
	for (size_t i = 0; i < opts->nscopes; i++) {
		const af_scope *sc = &opts->scopes[i];

		if (busy[i])
			continue;
		if (!(l->allowed[l->nallowed] = scope_key(sc->provider, sc->account, sc->region,
							   sc->product)))
			return af_error_oom();
		l->nallowed++;
	}
	qsort(l->allowed, l->nallowed, sizeof(*l->allowed), key_cmp);
	return 0;
}

/* The listed scopes' locks (locks.c). Without wait, a scope another run
 * holds is busy: opts->busy[i] is set, and the run goes on without it --
 * unless every scope is busy (AF_ERR_LOCKED). */
static int take_scope_locks(af_loader *l, const af_run_options *opts, af_lock_mode mode)
{
	bool *busy = opts->busy ? opts->busy : calloc(opts->nscopes ? opts->nscopes : 1, 1);
	int err;

	if (!busy)
		return af_error_oom();
	if ((err = af_lock_scopes(l->conn, opts->scopes, opts->nscopes, mode, busy,
				  &l->scope_locks)) == 0) {
		l->nbusy = l->scope_locks.busy;
		if (opts->nscopes > 0 && l->scope_locks.n == 0)
			err = af_lock_scopes_busy_error(l->conn, opts->scopes, opts->nscopes, busy,
							opts->nscopes == 1 ? "the run's scope"
									   : "every scope of the run");
		else
			err = list_allowed(l, opts, busy);
	}
	if (busy != opts->busy)
		free(busy);
	return err;
}

/* A loader with its buffers, parser and generated SQL; no database work yet. */
static int loader_new(af_loader **out, af_store *s, const af_run_options *opts)
{
	af_loader *l = calloc(1, sizeof(*l));
	int err = 0;

	*out = NULL;
	if (!l)
		return af_error_oom();
	l->t_begin = af_clock_seconds();
	l->store = s;
	l->conn = s->conn;
	l->dry_run = opts->dry_run;
	l->guard.max_fraction = AF_DELETE_GUARD_FRACTION;
	l->guard.min_deletes = AF_DELETE_GUARD_MIN;
	if (opts->guard)
		l->guard = *opts->guard;
	l->open_target = NO_TARGET;
	l->no_direct = opts->no_direct;
	for (int t = 0; t < NTARGETS; t++)
		af_buf_init(&l->out[t], BATCH_BYTES + ROW_MAX);
	af_buf_init(&l->row, ROW_MAX);
	af_buf_init(&l->hist, ROW_MAX);
	l->md = EVP_MD_CTX_new();
	l->tok = json_tokener_new();
	l->trigger = opts->trigger ? strdup(opts->trigger) : NULL;
	if (!l->md || !l->tok || (opts->trigger && !l->trigger)) {
		err = af_error_oom();
		goto done;
	}
	json_tokener_set_flags(l->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	if ((err = af_stage_init(&l->stage)) < 0)
		goto done;
	*out = l;
	l = NULL;
done:
	af_loader_free(l);
	return err;
}

/* The columns of migration 006 are written only by runs that have
 * values for them (a sync always migrates first; library callers and
 * the upgrade tests run on older schemas too). */
static int insert_run_row(af_loader *l)
{
	const char *params[3] = {l->trigger, AIFLEET_VERSION, l->shard};
	PGresult *res = PQexecParams(l->conn,
				     l->shard ? "INSERT INTO aifleet.sync_run (trigger,"
						" tool_version, status, shard)"
						" VALUES ($1, $2, 'running', $3) RETURNING id"
					      : "INSERT INTO aifleet.sync_run (trigger,"
						" tool_version, status)"
						" VALUES ($1, $2, 'running') RETURNING id",
				     l->shard ? 3 : 2, NULL, params, NULL, NULL, 0);
	int err = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		err = af_store_db_error(l->conn, res, "recording the run (is the schema migrated?)");
	else
		l->run_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return err;
}

/* The scopes the ledger knows and the digests it kept (read under the run
 * lock, so they describe the database this run merges into), sorted for
 * look_up_ledger. */
static int load_ledger(af_loader *l)
{
	PGresult *res = PQexec(l->conn, "SELECT provider, account, region, product,"
					" CASE WHEN octet_length(digest) = 32 THEN digest END"
					" FROM aifleet.scope_state");
	int err = 0, n;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(l->conn, res, "reading the scope ledger's digests");
		goto done;
	}
	n = PQntuples(res);
	if (n > 0 && !(l->ledger = calloc((size_t)n, sizeof(*l->ledger)))) {
		err = af_error_oom();
		goto done;
	}
	for (int i = 0; i < n; i++) {
		ledger_scope *d = &l->ledger[l->nledger];
		unsigned char *raw = NULL;
		size_t len = 0;

		if (!PQgetisnull(res, i, 4) &&
		    !(raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 4), &len))) {
			err = af_error_oom();
			goto done;
		}
		d->has_digest = raw && len == sizeof(d->digest);
		if (d->has_digest)
			memcpy(d->digest, raw, len);
		PQfreemem(raw);
		if (!(d->key = scope_key(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
					 PQgetvalue(res, i, 2), PQgetvalue(res, i, 3)))) {
			err = af_error_oom();
			goto done;
		}
		l->nledger++;
	}
	if (l->nledger > 1)
		qsort(l->ledger, l->nledger, sizeof(*l->ledger), ledger_cmp);
done:
	PQclear(res);
	return err;
}

/* direct.c's ids: a block of the entity sequence. Under the write lock
 * (or the run key, exclusive) no one else draws from it, and the merge's
 * own inserts draw after it. */
static int reserve_ids(void *ctx, int64_t n, int64_t *first)
{
	af_loader *l = ctx;
	char sql[160], count[24];
	PGresult *res;
	int err;

	if ((err = close_copy(l)) < 0 || (err = finish_reads(l)) < 0)
		return err;
	snprintf(count, sizeof(count), "%" PRId64, n);
	snprintf(sql, sizeof(sql),
		 "SELECT setval('aifleet.entity_id_seq', nextval('aifleet.entity_id_seq') + %s - 1)"
		 " - %s + 1", count, count);
	res = PQexec(l->conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		err = fail_run(l, af_store_db_error(l->conn, res, "reserving entity ids"));
	else
		*first = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return err;
}

/* Under the write lock: the ledger, as it is now, and the first-load
 * path's view of the tables (which direct.c and bulk.c may then write). */
static int open_writes(af_loader *l)
{
	int err;

	if ((err = load_ledger(l)) < 0)
		return err;
	if (!l->no_direct &&
	    ((err = af_direct_new(&l->direct, l->conn, l->run_id, reserve_ids, l)) < 0 ||
	     (err = af_bulk_defer_indexes(l->conn, &l->deferred)) < 0))
		return err;
	return 0;
}

/* The locks, the run's transaction, its staging tables and sync_run row,
 * the ledger, and what the first-load path needs to know of the tables:
 * from here on the sink accepts records (a COPY starts with the first
 * full buffer). Without the write lock (another run writes), only the
 * transaction and its staging tables: the rest waits for the commit. */
static int open_run(af_loader *l, const af_run_options *opts)
{
	af_lock_mode mode = opts->wait_for_lock ? AF_LOCK_WAIT : AF_LOCK_TRY;
	bool got = true;
	int err;

	if ((err = af_lock_run_key(l->conn, opts->scopes != NULL, mode)) < 0)
		return err;
	l->run_key = opts->scopes ? RUN_KEY_SHARED : RUN_KEY_EXCLUSIVE;
	if (opts->scopes && (err = take_scope_locks(l, opts, mode)) < 0)
		return err;
	if ((err = af_store_exec(l->conn, "starting the run transaction", "BEGIN")) < 0)
		return err;
	l->in_tx = true;
	/* Its scopes are the run's own: it need not wait to collect them. */
	if (opts->scopes && (err = af_lock_write(l->conn, AF_LOCK_TRY, &got)) < 0)
		return err;
	l->write_deferred = !got;
	if ((err = af_store_exec(l->conn, "creating staging tables", l->stage.create_sql)) < 0 ||
	    (err = af_store_exec(l->conn, "creating staging tables", scope_table_sql)) < 0)
		return err;
	if ((err = insert_run_row(l)) < 0)
		return err;
	if (!l->write_deferred && (err = open_writes(l)) < 0)
		return err;
	l->accepting = true;
	return 0;
}

int af_loader_begin(af_loader **out, af_store *s, const af_run_options *opts)
{
	static const af_run_options defaults = {0};
	af_loader *l = NULL;
	int err;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (s->in_run)
		return af_error_set(AF_ERR_PARAM, "a run is already in progress on this connection");
	if ((err = loader_new(&l, s, opts)) < 0)
		return err;
	s->in_run = true;
	if (opts->shard && !(l->shard = strdup(opts->shard))) {
		af_loader_free(l);
		return af_error_oom();
	}
	if ((err = open_run(l, opts)) < 0) {
		af_loader_free(l);
		return err;
	}
	*out = l;
	return 0;
}

int af_loader_scope_done(af_loader *l, const af_scope_report *report)
{
	scope_entry *e;
	int err;

	if (l->failed)
		return run_failed(l, "the loader is not accepting scope reports");
	if (l->committed)
		return af_error_set(AF_ERR_PARAM, "the loader is not accepting scope reports");
	if (!af_scope_valid(&report->scope))
		return af_error_set(AF_ERR_PARAM, "scope report without a complete scope");
	if ((err = scope_find(&e, l, &report->scope)) < 0)
		return fail_run(l, err);
	free(e->err_copy);
	e->err_copy = NULL;
	if (report->error && !(e->err_copy = strdup(report->error)))
		return fail_run(l, af_error_oom());
	e->report = *report;
	e->report.scope.provider = e->provider;
	e->report.scope.account = e->account;
	e->report.scope.region = e->region;
	e->report.scope.product = e->product;
	e->report.error = e->err_copy;
	e->reported = true;
	return 0;
}

/* ---- commit: the merge -------------------------------------------------- */

static int exec_params(af_loader *l, const char *what, const char *sql, int n,
		       const char *const *params, uint64_t *affected)
{
	PGresult *res = PQexecParams(l->conn, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	int err = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		err = af_store_db_error(l->conn, res, what);
	else if (affected)
		*affected = strtoull(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return err;
}

/* --allow-deletes names a scope as provider/account/region/product, or "all". */
static bool deletes_allowed(const af_loader *l, const scope_entry *e)
{
	af_scope sc = {e->provider, e->account, e->region, e->product};
	char name[1024];

	af_scope_name(name, sizeof(name), &sc);
	for (size_t i = 0; i < l->guard.nallow; i++)
		if (strcmp(l->guard.allow[i], "all") == 0 || strcmp(l->guard.allow[i], name) == 0)
			return true;
	return false;
}

/* Whether a scope's records can stand for it in the ledger: collected
 * completely, nothing rejected, no item seen twice (which copy of a
 * duplicate wins depends on arrival order, which the digest ignores). */
static bool scope_clean(const scope_entry *e)
{
	const af_scope_report *r = &e->report;

	return e->reported && r->state == AF_SCOPE_COMPLETE && r->rejected == 0 &&
	       e->loader_rejected == 0 && r->duplicates == 0;
}

/*
 * Before the COPY ends: a clean scope whose digest is the one the ledger
 * kept from its last clean run sent exactly the records the database
 * already holds for it -- merging them would change nothing -- so it is
 * skipped: its spooled rows are dropped, only its ledger row moves.
 */
static int judge_digests(af_loader *l)
{
	int err;

	for (size_t i = 0; i < l->nscopes; i++) {
		scope_entry *e = &l->scopes[i];

		e->clean = scope_clean(e);
		if (e->clean) {
			if ((err = af_scope_digest_final(&e->digest, l->md, e->final)) < 0)
				return fail_run(l, err);
			e->skipped = e->has_stored &&
				     memcmp(e->final, e->stored, sizeof(e->final)) == 0;
		}
		e->filtered = e->spooled && !e->skipped;
	}
	return 0;
}

/* One scope's row of af_scope, in COPY text: its report, judged with the
 * loader's own rejections. */
static int scope_row(af_loader *l, const scope_entry *e, af_buf *b)
{
	const af_scope_report *r = &e->report;
	const char *state = "partial";
	const char *error = e->reported ? r->error : "scope not reported by the collector";
	uint64_t rejected = r->rejected + e->loader_rejected;
	bool eligible = e->reported && r->state == AF_SCOPE_COMPLETE && rejected == 0 &&
			!e->skipped;
	const char *texts[4] = {e->provider, e->account, e->region, e->product};
	int err = 0;

	if (e->reported && r->state == AF_SCOPE_FAILED)
		state = "failed";
	else if (eligible || e->skipped)
		state = "complete";
	if (!error && e->first_reject)
		error = e->first_reject;
	for (size_t i = 0; i < 4 && err == 0; i++)
		if ((err = af_store_copy_text(b, texts[i])) == 0)
			err = af_store_copy_sep(b);
	if (err == 0)
		err = af_buf_printf(b, "%s\t%s\t", e->reported ? "t" : "f", state);
	if (err == 0 && (err = af_store_copy_text(b, error)) == 0)
		err = af_buf_printf(b,
				    "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64
				    "\t%" PRIu64 "\t%" PRIu64 "\t%.3f\t%s\t%s\t%s\t",
				    r->pages, r->items, r->duplicates, rejected, r->requests,
				    r->retries, r->throttled, isfinite(r->seconds) ? r->seconds : 0.0,
				    eligible ? "t" : "f", deletes_allowed(l, e) ? "t" : "f",
				    e->skipped ? "t" : "f");
	if (err == 0)
		err = e->clean ? af_store_copy_hash(b, e->final) : af_store_copy_null(b);
	if (err == 0)
		err = af_buf_printf(b, "\t%s\n", e->filtered ? "t" : "f");
	return err < 0 ? af_error_oom() : 0;
}

/* Every scope that sent a record or a report has an entry (a scope that
 * sent records but no report is partial: nothing in it is tombstoned):
 * all of them in one COPY, not one statement each -- thousands of small
 * scopes are thousands of round trips otherwise. */
static int stage_scopes(af_loader *l)
{
	af_buf b = AF_BUF_INIT;
	PGresult *res;
	int err;

	if (l->nscopes == 0)
		return 0;
	if ((err = close_copy(l)) < 0)
		return err;
	res = PQexec(l->conn, "COPY af_scope (provider, account, region, product, reported, state,"
			      " error, pages, items, duplicates, rejected, requests, retries, throttled,"
			      " seconds, eligible, allow_deletes, skipped, digest, filtered) FROM STDIN");
	if (PQresultStatus(res) != PGRES_COPY_IN)
		err = af_store_db_error(l->conn, res, "staging scope reports");
	PQclear(res);
	if (err < 0)
		return fail_run(l, err);
	/* sent a megabyte at a time: every scope's error may be long */
	for (size_t i = 0; i <= l->nscopes && err == 0; i++) {
		if (i < l->nscopes && (err = scope_row(l, &l->scopes[i], &b)) < 0)
			break;
		if ((i == l->nscopes || af_buf_len(&b) >= BATCH_BYTES) && af_buf_len(&b) > 0) {
			if (PQputCopyData(l->conn, af_buf_data(&b), (int)af_buf_len(&b)) != 1)
				err = af_store_db_error(l->conn, NULL, "staging scope reports");
			af_buf_reset(&b);
		}
	}
	if (PQputCopyEnd(l->conn, err < 0 ? "aifleet: staging scope reports failed" : NULL) != 1 &&
	    err == 0)
		err = af_store_db_error(l->conn, NULL, "staging scope reports");
	err = drain_results(l, "staging scope reports", err);
	af_buf_free(&b);
	return err < 0 ? fail_run(l, err) : 0;
}

/* ---- commit: the filter ------------------------------------------------- */

/* A spooled row: dropped with its skipped scope, counted when its scope's
 * live rows hold it (unchanged), else staged. */
static int replay_row(void *ctx, const af_spool_tag *tag, const char *row, size_t len)
{
	af_loader *l = ctx;
	scope_entry *e;

	if (tag->scope >= l->nscopes || tag->entity >= AF_NENTITIES)
		return fail_run(l, af_error_set(AF_ERR_IO, "the loader's spool is damaged"));
	e = &l->scopes[tag->scope];
	if (e->skipped || known_unchanged(e, &af_entities[tag->entity], tag->hash))
		return 0;
	return put_row(l, TARGET_STAGE, row, len);
}

/* af_live_set_each_unseen's context: the loader and the entity whose
 * live set it walks. */
typedef struct unseen_writer {
	af_loader *l;
	char code;
} unseen_writer;

static int copy_unseen_id(void *ctx, int64_t id)
{
	const unseen_writer *w = ctx;
	char line[40];
	int n = snprintf(line, sizeof(line), "%c\t%" PRId64 "\n", w->code, id);

	return put_row(w->l, TARGET_UNSEEN, line, (size_t)n);
}

/* The live rows of a filtered scope that no record matched, for the
 * tombstone pass; and what its records matched, counted. */
static int put_unseen(af_loader *l, scope_entry *e)
{
	int err;

	for (size_t i = 0; i < AF_NENTITIES; i++) {
		unseen_writer w = {l, af_entities[i].code};

		if ((err = af_live_set_each_unseen(e->live->set[i], copy_unseen_id, &w)) < 0)
			return err;
		e->seen += e->seen_by[i];
		l->seen[i] += e->seen_by[i];
	}
	return 0;
}

/* The seen counts of the filtered scopes, for the guard's live count. */
static int stage_seen(af_loader *l)
{
	char n[32];
	int err;

	for (size_t i = 0; i < l->nscopes; i++) {
		scope_entry *e = &l->scopes[i];
		const char *p[5] = {e->provider, e->account, e->region, e->product, n};

		if (e->seen == 0)
			continue;
		snprintf(n, sizeof(n), "%" PRIu64, e->seen);
		if ((err = exec_params(l, "staging scope reports",
				       "UPDATE af_scope SET seen = $5 WHERE (provider, account, region,"
				       " product) = ($1, $2, $3, $4)",
				       5, p, NULL)) < 0)
			return err;
	}
	return 0;
}

static void drop_spool(af_loader *l)
{
	l->spooled_bytes = af_spool_bytes(l->spool);
	af_spool_free(l->spool);
	l->spool = NULL;
}

/* The filtered scopes' live rows, every one read: those not read while
 * records arrived (past READ_AHEAD_ROWS, or in a run that collected
 * without the write lock) now. */
static int read_filtered(af_loader *l)
{
	int err;

	if ((err = finish_reads(l)) < 0)
		return err;
	if (!l->ahead && (err = af_readahead_new(&l->ahead, l->conn, 0)) < 0)
		return fail_run(l, err);
	af_readahead_unlimit(l->ahead);
	for (size_t i = 0; i < l->nscopes; i++) {
		scope_entry *e = &l->scopes[i];
		af_scope sc = {e->provider, e->account, e->region, e->product};

		if (!e->filtered)
			continue;
		if (e->live && e->live->dropped) {
			af_live_read_free(e->live);
			e->live = NULL;
		}
		if (!e->live && (err = ask_live_rows(l, e, &sc)) < 0)
			return fail_run(l, err);
	}
	if ((err = finish_reads(l)) < 0)
		return err;
	for (size_t i = 0; i < l->nscopes; i++) {
		scope_entry *e = &l->scopes[i];

		if (!e->filtered)
			continue;
		if (!e->live->done)
			return fail_run(l, af_error_set(AF_ERR_GENERIC, "internal error: a changed"
							" scope's live rows were not read"));
		for (size_t k = 0; k < AF_NENTITIES; k++)
			l->live_rows += af_live_set_count(e->live->set[k]);
	}
	return 0;
}

/* The live rows are needed no more: their memory goes before the merge. */
static void free_live_rows(af_loader *l)
{
	for (size_t i = 0; i < l->nscopes; i++) {
		af_live_read_free(l->scopes[i].live);
		l->scopes[i].live = NULL;
	}
	af_readahead_free(l->ahead);
	l->ahead = NULL;
}

/*
 * The filter: the records of the scopes that changed are compared with
 * those scopes' live rows; only the rows the database does not hold as
 * they are (new, changed, restored) are staged, and the live rows no
 * record matched go to af_unseen for the tombstone pass. The merge then
 * costs what changed, not what exists. Most records were compared as
 * they came (known_unchanged); the spool holds the others, replayed here.
 */
static int filter_spooled(af_loader *l)
{
	int err = 0;

	if ((err = read_filtered(l)) < 0)
		goto done;
	if (l->spool && (err = af_spool_replay(l->spool, replay_row, l)) < 0) {
		err = fail_run(l, err);
		goto done;
	}
	for (size_t i = 0; i < l->nscopes && !err; i++)
		if (l->scopes[i].filtered)
			err = put_unseen(l, &l->scopes[i]);
	if (err < 0 || (err = flush_targets(l)) < 0)
		goto done;
	err = stage_seen(l);
done:
	free_live_rows(l);
	if (l->spool)
		drop_spool(l);
	return err;
}

static int run_sql(af_loader *l, const char *what, af_buf *q, const char *run_id, uint64_t *n)
{
	const char *params[1] = {run_id};

	if (!af_buf_data(q))
		return af_error_oom();
	return exec_params(l, what, af_buf_data(q), run_id ? 1 : 0, params, n);
}

/* Staging rows of one entity, de-duplicated (the last copy of a natural key
 * wins), joined to the current table and classified into m_<type>:
 * c(reated) u(pdated) r(estored) n(unchanged) x(orphan: owner unknown),
 * o(verwrite: a later copy of a row the first-load path wrote in this
 * run -- the only rows of this entity the run has written yet). */
static int classify(af_loader *l, const af_entity *e, const af_merge_sql *m, const char *run_id)
{
	af_buf q = AF_BUF_INIT;
	int err;

	if ((err = af_buf_printf(&q,
				 "CREATE TEMP TABLE m_%s ON COMMIT DROP AS"
				 " SELECT s.*%s, t.id AS tid,"
				 " CASE WHEN %s THEN 'x' WHEN t.id IS NULL THEN 'c'"
				 " WHEN t.last_run_id = %s THEN 'o'"
				 " WHEN t.deleted_at IS NOT NULL THEN 'r'"
				 " WHEN t.content_hash <> s.content_hash THEN 'u' ELSE 'n' END AS action,"
				 " CASE WHEN t.id IS NOT NULL AND (t.deleted_at IS NOT NULL"
				 "  OR t.content_hash <> s.content_hash) THEN to_jsonb(t) END AS old"
				 " FROM (SELECT DISTINCT ON (%s) * FROM af_stage WHERE entity = '%c'"
				 "  ORDER BY %s, seq DESC) s%s"
				 " LEFT JOIN %s t ON %s",
				 e->type, m->owner_ids, e->orphan, run_id, m->key, e->code, m->key,
				 e->owner_joins, e->table, m->key_match)) < 0 ||
	    (err = run_sql(l, "classifying staged records", &q, NULL, NULL)) < 0)
		goto done;
	/* Without statistics the planner takes the fresh table for empty and
	 * picks nested loops for the tombstone anti-join: quadratic. The index
	 * keeps the anti-join cheap even when the target table's statistics
	 * are stale (right after a large first load). */
	af_buf_reset(&q);
	if ((err = af_buf_printf(&q, "ANALYZE m_%s; CREATE INDEX ON m_%s (tid)", e->type,
				 e->type)) < 0)
		goto done;
	err = af_store_exec(l->conn, "analyzing classified records", af_buf_data(&q));
done:
	af_buf_free(&q);
	return err;
}

/* The staged rows of m_<type> by action; orphans are rejected, not staged,
 * and overwrites (*overwrite) count as the row they overwrite. */
static int count_actions(af_loader *l, const af_entity *e, af_entity_counts *c,
			 uint64_t *overwrite)
{
	char sql[128];
	PGresult *res;
	int i, err = 0;

	snprintf(sql, sizeof(sql), "SELECT action, count(*) FROM m_%s GROUP BY action", e->type);
	res = PQexec(l->conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(l->conn, res, "counting staged records");
		goto done;
	}
	for (i = 0; i < PQntuples(res); i++) {
		uint64_t n = strtoull(PQgetvalue(res, i, 1), NULL, 10);

		switch (PQgetvalue(res, i, 0)[0]) {
		case 'c': c->created = n; break;
		case 'u': c->updated = n; break;
		case 'r': c->restored = n; break;
		case 'n': c->unchanged = n; break;
		case 'o': *overwrite = n; continue;
		default: continue;
		}
		c->staged += n;
	}
done:
	PQclear(res);
	return err;
}

/* An orphan (service of an unknown instance, resource of an unknown owner)
 * is rejected: its scope becomes partial and keeps its rows. */
static int reject_orphans(af_loader *l, const af_entity *e)
{
	af_buf q = AF_BUF_INIT;
	int err;

	if ((err = af_buf_printf(&q,
				 "WITH o AS (SELECT provider, account, region, product, count(*) AS n,"
				 "  min(coalesce(native_id, owner_native_id || '/' || kind)) AS id"
				 "  FROM m_%s WHERE action = 'x' GROUP BY 1, 2, 3, 4)"
				 " UPDATE af_scope sc SET eligible = false,"
				 "  state = CASE sc.state WHEN 'failed' THEN 'failed' ELSE 'partial' END,"
				 "  rejected = sc.rejected + o.n,"
				 "  error = coalesce(sc.error, 'rejected %s ' || o.id ||"
				 "   ': its owner is not in the inventory')"
				 " FROM o WHERE (sc.provider, sc.account, sc.region, sc.product)"
				 "  = (o.provider, o.account, o.region, o.product)",
				 e->type, e->type)) == 0)
		err = run_sql(l, "rejecting orphans", &q, NULL, NULL);
	af_buf_free(&q);
	return err;
}

/* created: the row and its first version, open-ended; the version's
 * content is the row itself (compact history: NULL until it closes). */
static int insert_created(af_loader *l, const af_entity *e, const af_merge_sql *m,
			  const char *run_id, uint64_t *hist)
{
	af_buf q = AF_BUF_INIT;
	uint64_t n = 0;
	int err;

	if ((err = af_buf_printf(&q,
				 "WITH ins AS (INSERT INTO %s (%s,"
				 "  content_hash, first_seen_at, last_changed_at, last_run_id)"
				 "  SELECT %s, m.content_hash, now(), now(), $1"
				 "  FROM m_%s m WHERE m.action = 'c' RETURNING id)"
				 " INSERT INTO aifleet.history (entity_type, entity_id, valid, change,"
				 "  changed_at, run_id)"
				 " SELECT '%s', ins.id, tstzrange(now(), NULL), 'created', now(), $1"
				 " FROM ins",
				 e->table, m->insert_cols, m->insert_vals, e->type, e->type)) == 0 &&
	    (err = run_sql(l, "inserting new records", &q, run_id, &n)) == 0)
		*hist += n;
	af_buf_free(&q);
	return err;
}

/* updated and restored: close the open version first, giving it the
 * content it had (the row before this run, classify's old), then write the
 * row and open the next version, with the diff against the old content.
 * A restored row has no open version: its tombstone closed it. */
static int update_changed(af_loader *l, const af_entity *e, const af_merge_sql *m,
			  const char *run_id, uint64_t *hist)
{
	af_buf q = AF_BUF_INIT;
	uint64_t n = 0;
	int err;

	if ((err = af_buf_printf(&q,
				 "UPDATE aifleet.history h SET valid = tstzrange(lower(h.valid), now()),"
				 "  content = coalesce(h.content, m.old)"
				 " FROM m_%s m WHERE m.action = 'u' AND h.entity_type = '%s'"
				 " AND h.entity_id = m.tid AND upper_inf(h.valid)"
				 " AND NOT isempty(h.valid)",
				 e->type, e->type)) < 0 ||
	    (err = run_sql(l, "closing changed versions", &q, NULL, NULL)) < 0)
		goto done;
	af_buf_reset(&q);
	if ((err = af_buf_printf(&q,
				 "WITH upd AS (UPDATE %s t SET %s, content_hash = m.content_hash,"
				 "  last_changed_at = now(), deleted_at = NULL, last_run_id = $1"
				 "  FROM m_%s m WHERE t.id = m.tid AND m.action IN ('u', 'r')"
				 "  RETURNING t.*, m.action AS af_action, m.old AS af_old)"
				 " INSERT INTO aifleet.history (entity_type, entity_id, valid, change,"
				 "  changed_at, run_id, diff)"
				 " SELECT '%s', upd.id, tstzrange(now(), NULL),"
				 "  CASE upd.af_action WHEN 'u' THEN 'updated' ELSE 'restored' END,"
				 "  now(), $1, aifleet.jsonb_diff(upd.af_old,"
				 "   to_jsonb(upd) - 'af_action' - 'af_old')"
				 " FROM upd",
				 e->table, m->set, e->type, e->type)) < 0 ||
	    (err = run_sql(l, "updating changed records", &q, run_id, &n)) < 0)
		goto done;
	*hist += n;
done:
	af_buf_free(&q);
	return err;
}

/* o: the row the first-load path wrote takes a later copy's values; its
 * version stays the one it opened (content NULL, as the row is its
 * content), as if only the last copy had been loaded. */
static int overwrite_written(af_loader *l, const af_entity *e, const af_merge_sql *m)
{
	af_buf q = AF_BUF_INIT;
	int err;

	if ((err = af_buf_printf(&q,
				 "UPDATE %s t SET %s, content_hash = m.content_hash"
				 " FROM m_%s m WHERE t.id = m.tid AND m.action = 'o'",
				 e->table, m->set, e->type)) == 0)
		err = run_sql(l, "overwriting records seen twice", &q, NULL, NULL);
	af_buf_free(&q);
	return err;
}

/*
 * After a large insert the planner must learn that the table grew: a
 * table loaded from empty in this transaction still looks empty to it (no
 * VACUUM or ANALYZE has run), and the next statement that joins a few
 * staged rows against it -- the children's owner lookup in this run, the
 * next run's filtered merge -- would pick nested loops over sequential
 * scans: minutes instead of milliseconds. ANALYZE sees the rows this
 * transaction wrote; it samples, so it costs little even on large tables
 * -- but not nothing (0.3 s at a million rows), so a table that grew by
 * less than a tenth of what its statistics say (autovacuum's own
 * threshold) keeps them.
 */
static int analyze_table(af_loader *l, const af_entity *e, uint64_t created)
{
	char sql[160];
	PGresult *res;
	double known;

	if (created < ANALYZE_AFTER)
		return 0;
	snprintf(sql, sizeof(sql),
		 "SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = '%s'::regclass",
		 e->table);
	res = PQexec(l->conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		int err = af_store_db_error(l->conn, res, "reading a table's statistics");

		PQclear(res);
		return err;
	}
	known = strtod(PQgetvalue(res, 0, 0), NULL);
	PQclear(res);
	if ((double)created < known / 10)
		return 0;
	snprintf(sql, sizeof(sql), "ANALYZE %s", e->table);
	return af_store_exec(l->conn, "analyzing a grown table", sql);
}

/* One entity's part of the merge, up to (not including) the tombstones. */
static int merge_entity(af_loader *l, size_t i, const char *run_id, af_entity_counts *c,
			uint64_t *hist)
{
	const af_entity *e = &af_entities[i];
	const af_merge_sql *m = &l->stage.merge[i];
	uint64_t overwrite = 0;
	int err;

	/* What the first-load path wrote is joined below like any row. */
	if ((err = analyze_table(l, e, af_direct_taken(l->direct, (int)i))) < 0)
		return err;
	if ((err = classify(l, e, m, run_id)) < 0 ||
	    (err = count_actions(l, e, c, &overwrite)) < 0 || (err = reject_orphans(l, e)) < 0)
		return err;
	if (overwrite > 0 && (err = overwrite_written(l, e, m)) < 0)
		return err;
	/* A statement with nothing to do still scans what it joins. */
	if (c->created > 0 && (err = insert_created(l, e, m, run_id, hist)) < 0)
		return err;
	if (c->updated + c->restored > 0 && (err = update_changed(l, e, m, run_id, hist)) < 0)
		return err;
	return analyze_table(l, e, c->created);
}

/*
 * The rows a complete (eligible) scope no longer has, found once into
 * v_<type>: the mass-delete guard counts them, apply_deletes tombstones
 * those of the scopes still eligible after it. In a scope staged whole,
 * that is every live row not written by this run nor matched in m_<type>;
 * in a filtered one, the live rows no record matched (af_unseen) that are
 * not in m_<type> either (an updated row's old hash is unseen too).
 *
 * The unseen rows are found by primary key, one probe each (LATERAL ...
 * LIMIT 1 keeps the planner from flattening it into a join): it costs
 * random reads as if nothing were cached and would rather hash the whole
 * table, which for 10k unseen resources among a million was 0.2 s.
 */
static int find_vanished(af_loader *l, const af_entity *e, const char *run_id)
{
	af_buf q = AF_BUF_INIT;
	int err;

	/* CREATE TABLE AS takes no parameters: run_id is our own integer. */
	if ((err = af_buf_printf(&q,
				 "CREATE TEMP TABLE v_%s ON COMMIT DROP AS"
				 " SELECT t.id, t.provider, t.account, t.region, t.product"
				 " FROM %s t JOIN af_scope sc USING (provider, account, region, product)"
				 " WHERE sc.eligible AND NOT sc.filtered AND t.deleted_at IS NULL"
				 " AND t.last_run_id <> %s"
				 " AND NOT EXISTS (SELECT 1 FROM m_%s m WHERE m.tid = t.id)"
				 " UNION ALL"
				 " SELECT t.id, t.provider, t.account, t.region, t.product"
				 " FROM af_unseen u CROSS JOIN LATERAL (SELECT t.id, t.provider,"
				 "  t.account, t.region, t.product FROM %s t"
				 "  WHERE t.id = u.id AND t.deleted_at IS NULL LIMIT 1) t"
				 " JOIN af_scope sc USING (provider, account, region, product)"
				 " WHERE u.entity = '%c' AND sc.eligible AND sc.filtered"
				 " AND NOT EXISTS (SELECT 1 FROM m_%s m WHERE m.tid = t.id)",
				 e->type, e->table, run_id, e->type, e->table, e->code, e->type)) == 0)
		err = run_sql(l, "finding vanished records", &q, NULL,
			      &l->vanished[e - af_entities]);
	af_buf_free(&q);
	return err;
}

/* Tombstones the vanished rows of the scopes still eligible: closes the
 * open version with the row's content (read before the tombstone changes
 * the row), then marks the row and adds a deletion marker with an empty
 * validity period, whose content is the tombstoned row. */
static int apply_deletes(af_loader *l, const af_entity *e, const char *run_id,
			 af_entity_counts *c, uint64_t *hist)
{
	af_buf q = AF_BUF_INIT;
	uint64_t n = 0;
	int err;

	if ((err = af_buf_printf(
		     &q,
		     "UPDATE aifleet.history h SET valid = tstzrange(lower(h.valid), now()),"
		     " content = coalesce(h.content, to_jsonb(t))"
		     " FROM v_%s v JOIN af_scope sc USING (provider, account, region, product)"
		     " JOIN %s t ON t.id = v.id"
		     " WHERE sc.eligible AND h.entity_type = '%s' AND h.entity_id = v.id"
		     " AND upper_inf(h.valid) AND NOT isempty(h.valid)",
		     e->type, e->table, e->type)) < 0 ||
	    (err = run_sql(l, "closing vanished versions", &q, NULL, NULL)) < 0)
		goto done;
	af_buf_reset(&q);
	if ((err = af_buf_printf(
		     &q,
		     "WITH del AS (UPDATE %s t SET deleted_at = now(), last_changed_at = now(),"
		     "  last_run_id = $1"
		     "  FROM v_%s v JOIN af_scope sc USING (provider, account, region, product)"
		     "  WHERE sc.eligible AND t.id = v.id"
		     "  RETURNING t.*)"
		     " INSERT INTO aifleet.history (entity_type, entity_id, valid, change, changed_at,"
		     "  run_id, diff, content)"
		     " SELECT '%s', del.id, 'empty', 'deleted', now(), $1, NULL, to_jsonb(del)"
		     " FROM del",
		     e->table, e->type, e->type)) < 0 ||
	    (err = run_sql(l, "tombstoning vanished records", &q, run_id, &n)) < 0)
		goto done;
	c->deleted = n;
	*hist += n;
done:
	af_buf_free(&q);
	return err;
}

/* The guard's counts per scope not accepted with --allow-deletes, as the
 * CTEs doomed (what the tombstone pass would take: v_<type>) and kept (the
 * staged rows that were live: updated or unchanged, and the records the
 * filter found unchanged). */
static int put_guard_counts(af_buf *q)
{
	size_t i;
	int err = af_buf_puts(q, "WITH doomed AS (");

	for (i = 0; !err && i < AF_NENTITIES; i++)
		err = af_buf_printf(q,
				    "%sSELECT provider, account, region, product, count(*) AS n"
				    " FROM v_%s v JOIN af_scope sc USING (provider, account, region,"
				    " product) WHERE NOT sc.allow_deletes GROUP BY 1, 2, 3, 4",
				    i ? " UNION ALL " : "", af_entities[i].type);
	if (!err)
		err = af_buf_puts(q, "), kept AS (");
	for (i = 0; !err && i < AF_NENTITIES; i++)
		err = af_buf_printf(q,
				    "%sSELECT provider, account, region, product, count(*) AS n"
				    " FROM m_%s WHERE action IN ('u', 'n') GROUP BY 1, 2, 3, 4",
				    i ? " UNION ALL " : "", af_entities[i].type);
	if (!err)
		err = af_buf_puts(q, " UNION ALL SELECT provider, account, region, product, seen"
				     " FROM af_scope WHERE seen > 0");
	return err ? err : af_buf_puts(q, ")");
}

/* After put_guard_counts: holds the scopes over both thresholds ($1 the
 * fraction, $2 the minimum) and returns them. */
static const char guard_hold_sql[] =
	", c AS (SELECT d.provider, d.account, d.region, d.product, d.n AS doomed,"
	"  d.n + coalesce((SELECT sum(k.n) FROM kept k WHERE (k.provider, k.account,"
	"   k.region, k.product) = (d.provider, d.account, d.region, d.product)), 0) AS live"
	"  FROM (SELECT provider, account, region, product, sum(n) AS n FROM doomed"
	"   GROUP BY 1, 2, 3, 4) d)"
	" UPDATE af_scope sc SET eligible = false, state = 'held',"
	"  held_deletes = c.doomed, held_live = c.live,"
	"  error = format('mass-delete guard: this run would tombstone %s of the scope''s"
	" %s live entities (more than %s%% and more than %s), so nothing in it was"
	" tombstoned; if they are really gone, accept with: aifleet sync"
	" --allow-deletes %s/%s/%s/%s', c.doomed, c.live, round($1::numeric * 100, 1),"
	"   $2, sc.provider, sc.account, sc.region, sc.product)"
	" FROM c WHERE (sc.provider, sc.account, sc.region, sc.product)"
	"  = (c.provider, c.account, c.region, c.product)"
	"  AND c.doomed > $2::bigint AND c.doomed > $1::float8 * c.live"
	" RETURNING sc.provider, sc.account, sc.region, sc.product, c.doomed, c.live,"
	"  sc.error";

/* Notes each scope the guard held (guard_hold_sql's rows), and says so. */
static void note_held(af_loader *l, const PGresult *res, af_load_summary *sum)
{
	for (int i = 0; i < PQntuples(res); i++) {
		af_scope sc = {PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
			       PQgetvalue(res, i, 3)};
		scope_entry *e = scope_lookup(l, &sc);

		if (e) {
			e->held = true;
			e->held_deletes = strtoull(PQgetvalue(res, i, 4), NULL, 10);
			e->held_live = strtoull(PQgetvalue(res, i, 5), NULL, 10);
		}
		af_warn("loader", "%s/%s/%s/%s: %s%s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
			PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
			l->dry_run ? "(dry run: would be held) " : "", PQgetvalue(res, i, 6));
	}
	sum->scopes_held = (size_t)PQntuples(res);
}

/*
 * The mass-delete guard, between the upserts and the tombstones: per
 * complete scope, what the tombstone pass would take (find_vanished)
 * against what was live before the run (that, plus the staged rows that
 * were live: updated or unchanged). A scope over both
 * thresholds, and not accepted with --allow-deletes, is held: no longer
 * eligible, so apply_deletes leaves it alone.
 */
static int hold_mass_deletes(af_loader *l, const char *run_id, af_load_summary *sum)
{
	af_buf q = AF_BUF_INIT;
	PGresult *res = NULL;
	char fraction[32], min[32];
	const char *params[2] = {fraction, min};
	int err = 0;

	snprintf(fraction, sizeof(fraction), "%.6f", l->guard.max_fraction);
	snprintf(min, sizeof(min), "%" PRIu64, l->guard.min_deletes);
	for (size_t i = 0; i < AF_NENTITIES; i++)
		if ((err = find_vanished(l, &af_entities[i], run_id)) < 0)
			goto done;
	if ((err = put_guard_counts(&q)) < 0 || (err = af_buf_puts(&q, guard_hold_sql)) < 0)
		goto done;
	res = PQexecParams(l->conn, af_buf_data(&q), 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		err = af_store_db_error(l->conn, res, "checking the mass-delete guard");
		goto done;
	}
	note_held(l, res, sum);
done:
	PQclear(res);
	af_buf_free(&q);
	return err;
}

bool af_loader_scope_held(af_loader *l, const af_scope *sc, uint64_t *deletes, uint64_t *live)
{
	scope_entry *e = scope_lookup(l, sc);

	if (!e || !e->held)
		return false;
	if (deletes)
		*deletes = e->held_deletes;
	if (live)
		*live = e->held_live;
	return true;
}

/* The run's row: counts and outcome. $1 the run, $2.. the counts of
 * record_run; unchanged = staged - the rest, computed here to keep the
 * parameters short. Returns the scope counts. */
static const char record_run_sql[] =
	"WITH sc AS (SELECT count(*) FILTER (WHERE state = 'complete') AS complete,"
	"  count(*) FILTER (WHERE state = 'failed') AS failed,"
	"  count(*) FILTER (WHERE state IN ('partial', 'held')) AS partial,"
	"  count(*) FILTER (WHERE state = 'held') AS held,"
	"  count(*) FILTER (WHERE skipped) AS skipped,"
	"  sum(rejected) AS rejected,"
	"  (SELECT error FROM af_scope WHERE error IS NOT NULL"
	"   ORDER BY provider, account, region, product LIMIT 1) AS error FROM af_scope)"
	" UPDATE aifleet.sync_run r SET finished_at = clock_timestamp(),"
	" status = CASE WHEN sc.partial = 0 AND sc.failed = 0 THEN 'succeeded'"
	"  WHEN sc.complete = 0 AND sc.partial = 0 THEN 'failed' ELSE 'partial' END,"
	" instances_staged = $2, instances_created = $3, instances_updated = $4,"
	" instances_deleted = $5, instances_restored = $6,"
	" instances_unchanged = $2::bigint - $3 - $4 - $6,"
	" services_staged = $7, services_created = $8, services_updated = $9,"
	" services_deleted = $10, services_restored = $11,"
	" services_unchanged = $7::bigint - $8 - $9 - $11,"
	" resources_staged = $12, resources_created = $13, resources_updated = $14,"
	" resources_deleted = $15, resources_restored = $16,"
	" resources_unchanged = $12::bigint - $13 - $14 - $16,"
	" history_rows = $17, scopes_complete = sc.complete, scopes_partial = sc.partial,"
	" scopes_failed = sc.failed, scopes_held = sc.held, scopes_skipped = sc.skipped,"
	" rejected = coalesce(sc.rejected, 0), error = sc.error"
	" FROM sc WHERE r.id = $1 RETURNING sc.complete, sc.partial, sc.failed, sc.skipped";

/* The scope ledger from af_scope; $1 the run. A scope keeps its digest
 * only when it ended complete: not held, no orphan, nothing rejected. */
static const char update_ledger_sql[] =
	"INSERT INTO aifleet.scope_state AS ss (provider, account, region, product,"
	" last_run_id, last_attempt_at, last_complete_at, last_state, last_error, pages, items,"
	" duplicates, rejected, requests, retries, throttled, seconds, held_deletes,"
	" held_live, digest)"
	" SELECT provider, account, region, product, $1, now(),"
	"  CASE WHEN state = 'complete' THEN now() END, state, error, pages, items,"
	"  duplicates, rejected, requests, retries, throttled, seconds, held_deletes,"
	"  held_live, CASE WHEN state = 'complete' THEN digest END FROM af_scope"
	" ON CONFLICT (provider, account, region, product) DO UPDATE SET"
	" last_run_id = EXCLUDED.last_run_id, last_attempt_at = EXCLUDED.last_attempt_at,"
	" last_complete_at = coalesce(EXCLUDED.last_complete_at, ss.last_complete_at),"
	" last_state = EXCLUDED.last_state, last_error = EXCLUDED.last_error,"
	" pages = EXCLUDED.pages, items = EXCLUDED.items, duplicates = EXCLUDED.duplicates,"
	" rejected = EXCLUDED.rejected, requests = EXCLUDED.requests,"
	" retries = EXCLUDED.retries, throttled = EXCLUDED.throttled,"
	" seconds = EXCLUDED.seconds, held_deletes = EXCLUDED.held_deletes,"
	" held_live = EXCLUDED.held_live, digest = EXCLUDED.digest";

static int record_run(af_loader *l, const char *run_id, af_load_summary *sum)
{
	const af_entity_counts *ec[3] = {&sum->instances, &sum->services, &sum->resources};
	char v[16][24];
	const char *p[17];
	PGresult *res;
	int i, err = 0;

	for (i = 0; i < 3; i++) {
		snprintf(v[5 * i + 0], 24, "%" PRIu64, ec[i]->staged);
		snprintf(v[5 * i + 1], 24, "%" PRIu64, ec[i]->created);
		snprintf(v[5 * i + 2], 24, "%" PRIu64, ec[i]->updated);
		snprintf(v[5 * i + 3], 24, "%" PRIu64, ec[i]->deleted);
		snprintf(v[5 * i + 4], 24, "%" PRIu64, ec[i]->restored);
	}
	snprintf(v[15], 24, "%" PRIu64, sum->history_rows);
	p[0] = run_id;
	for (i = 0; i < 16; i++)
		p[i + 1] = v[i];
	res = PQexecParams(l->conn, record_run_sql, 17, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		err = af_store_db_error(l->conn, res, "recording the run");
	} else {
		sum->scopes_complete = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		sum->scopes_partial = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
		sum->scopes_failed = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
		sum->scopes_skipped = strtoull(PQgetvalue(res, 0, 3), NULL, 10);
	}
	PQclear(res);
	return err;
}

/*
 * A row that moved to another region changed scope: the digest its old
 * scope kept still counts it, so that scope must be merged next time (its
 * digest goes). Run after the ledger update, which may have written it.
 */
static int forget_moved_digests(af_loader *l)
{
	af_buf q = AF_BUF_INIT;
	int err = 0;

	for (size_t i = 0; !err && i < AF_NENTITIES; i++) {
		af_buf_reset(&q);
		if ((err = af_buf_printf(
			     &q,
			     "UPDATE aifleet.scope_state ss SET digest = NULL"
			     " FROM (SELECT DISTINCT old ->> 'provider' AS provider,"
			     "  old ->> 'account' AS account, old ->> 'region' AS region,"
			     "  old ->> 'product' AS product FROM m_%s"
			     "  WHERE action IN ('u', 'r') AND old ->> 'region' <> region) o"
			     " WHERE ss.digest IS NOT NULL AND (ss.provider, ss.account, ss.region,"
			     "  ss.product) = (o.provider, o.account, o.region, o.product)",
			     af_entities[i].type)) == 0)
			err = run_sql(l, "updating the digests of moved records", &q, NULL, NULL);
	}
	af_buf_free(&q);
	return err;
}

/* A run over listed scopes: which it loaded, and how many another run
 * held. */
static int record_scopes(af_loader *l, const char *run_id)
{
	char busy[24];
	const char *p[2] = {run_id, busy};

	snprintf(busy, sizeof(busy), "%zu", l->nbusy);
	return exec_params(l, "recording the run's scopes",
			   "UPDATE aifleet.sync_run SET scopes_busy = $2, scopes = (SELECT"
			   " array_agg(provider || '/' || account || '/' || region || '/'"
			   " || product ORDER BY provider, account, region, product)"
			   " FROM af_scope)"
			   " WHERE id = $1",
			   2, p, NULL);
}

static int finish_run(af_loader *l, const char *run_id, bool merged, af_load_summary *sum)
{
	const char *p[1] = {run_id};
	int err;

	if ((err = record_run(l, run_id, sum)) < 0)
		return err;
	if (l->rejected_unscoped > 0)
		af_warn("loader", "%" PRIu64 " records without a complete scope were rejected",
			l->rejected_unscoped);
	err = exec_params(l, "updating the scope ledger", update_ledger_sql, 1, p, NULL);
	if (err == 0 && l->allowed)
		err = record_scopes(l, run_id);
	if (err < 0)
		return err;
	return merged ? forget_moved_digests(l) : 0;
}

/*
 * What the foreign keys of schema 002 checked row by row, once per run:
 * every row this run wrote has its owner. The merge resolved the owners
 * and rejected orphans, so this fails only on a bug -- and then nothing is
 * committed.
 */
static int check_owners(af_loader *l, const af_entity *e)
{
	af_buf q = AF_BUF_INIT;
	PGresult *res = NULL;
	int err = 0;

	for (size_t i = 0; i < COUNT_OWNERS && e->owners[i].column; i++) {
		const af_owner_ref *o = &e->owners[i];

		af_buf_reset(&q);
		if ((err = af_buf_printf(&q,
					 "SELECT count(*) FROM m_%s m WHERE m.action IN ('c', 'u', 'r', 'o')"
					 " AND m.owner_%s IS NOT NULL AND NOT EXISTS"
					 " (SELECT 1 FROM %s o WHERE o.id = m.owner_%s)",
					 e->type, o->column, o->table, o->column)) < 0)
			break;
		PQclear(res);
		res = PQexec(l->conn, af_buf_data(&q));
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			err = af_store_db_error(l->conn, res, "checking the owners of written rows");
			break;
		}
		if (strcmp(PQgetvalue(res, 0, 0), "0") != 0) {
			err = af_error_set(AF_ERR_GENERIC,
					   "internal error: the merge would write %s %s rows whose %s"
					   " is not in %s; nothing was committed",
					   PQgetvalue(res, 0, 0), e->type, o->column, o->table);
			break;
		}
	}
	PQclear(res);
	af_buf_free(&q);
	return err;
}

/* Whether any scope has to be merged: one that was not skipped. */
static bool merge_needed(const af_loader *l)
{
	for (size_t i = 0; i < l->nscopes; i++)
		if (!l->scopes[i].skipped)
			return true;
	return false;
}

/* The merge proper, inside the run's transaction, after the COPY: the
 * upserts, the owner check, the guard, the tombstones. */
static int merge_entities(af_loader *l, const char *run_id, af_load_summary *sum,
			  af_entity_counts *counts[AF_NENTITIES])
{
	size_t i;
	int err;

	/* Sorting and hashing a large staging table in memory is what keeps
	 * the merge fast; the settings end with the transaction. */
	if ((err = af_store_exec(l->conn, "preparing the merge",
				 "SET LOCAL work_mem = '128MB'; ANALYZE af_stage; ANALYZE af_scope")) <
	    0)
		return err;
	/*
	 * A merge of a few changed rows among many the run has just read back
	 * probes the tables it joins; at the default random_page_cost (4: a
	 * disk seek for every probe) the planner hashed whole tables instead.
	 * At 1.1, what PostgreSQL's manual suggests for data in cache, 1%
	 * churn in every scope of 1.3M rows merged in 3.6 s instead of 4.2.
	 * Only then: for a merge of a whole fleet (nothing read back, or a
	 * stage as large as what was) it chose probes where hashing was
	 * faster, 67 s instead of 53.
	 */
	if (l->live_rows > 0 && l->staged_rows <= l->live_rows / SMALL_MERGE_SHARE &&
	    (err = af_store_exec(l->conn, "preparing the merge",
				 "SET LOCAL random_page_cost = 1.1")) < 0)
		return err;
	/* Parents first (af_entities' order), so that children can resolve
	 * their owner's id. */
	for (i = 0; i < AF_NENTITIES; i++)
		if ((err = merge_entity(l, i, run_id, counts[i], &sum->history_rows)) < 0)
			return err;
	for (i = 0; i < AF_NENTITIES; i++)
		if ((err = check_owners(l, &af_entities[i])) < 0)
			return err;
	/* Tombstones last, after every orphan made its scope ineligible and
	 * the guard held the scopes that would lose too much. */
	if ((err = hold_mass_deletes(l, run_id, sum)) < 0)
		return err;
	for (i = 0; i < AF_NENTITIES; i++) {
		if (l->vanished[i] == 0)
			continue; /* nothing to tombstone (held or not) */
		if ((err = apply_deletes(l, &af_entities[i], run_id, counts[i],
					 &sum->history_rows)) < 0)
			return err;
	}
	return 0;
}

/* The run's part after the COPY: merge what changed, count what was
 * skipped as seen unchanged, record the run and the ledger. */
static int merge(af_loader *l, const char *run_id, af_load_summary *sum)
{
	af_entity_counts *counts[AF_NENTITIES] = {&sum->instances, &sum->services,
						  &sum->resources};
	bool merged = merge_needed(l);
	size_t i, k;
	int err;

	if ((err = stage_scopes(l)) < 0 || (err = filter_spooled(l)) < 0)
		return err;
	if (merged && (err = merge_entities(l, run_id, sum, counts)) < 0)
		return err;
	/* What was seen unchanged without being staged counts as staged and
	 * unchanged, as if the merge had compared it; what the first-load
	 * path wrote, as staged and created. */
	for (i = 0; i < AF_NENTITIES; i++) {
		uint64_t direct = af_direct_taken(l->direct, (int)i);

		counts[i]->staged += l->seen[i] + direct;
		counts[i]->created += direct;
		sum->history_rows += direct;
		sum->direct_rows += direct;
	}
	for (k = 0; k < l->nscopes; k++)
		for (i = 0; l->scopes[k].skipped && i < AF_NENTITIES; i++)
			counts[i]->staged += l->scopes[k].records[i];
	for (i = 0; i < AF_NENTITIES; i++)
		counts[i]->unchanged = counts[i]->staged - counts[i]->created - counts[i]->updated -
				       counts[i]->restored;
	return finish_run(l, run_id, merged, sum);
}

static void log_summary(const af_loader *l, const af_load_summary *sum)
{
	af_info("loader",
		"run %" PRId64 "%s: instances +%" PRIu64 " ~%" PRIu64 " -%" PRIu64 " services +%" PRIu64
		" ~%" PRIu64 " -%" PRIu64 " resources +%" PRIu64 " ~%" PRIu64 " -%" PRIu64
		", %" PRIu64 " history rows, %" PRIu64 " rows loaded directly, %zu of %zu scopes"
		" skipped unchanged, %.1f MiB spooled, copy %.2fs merge %.2fs",
		l->run_id, l->dry_run ? " (dry run, rolled back)" : "", sum->instances.created,
		sum->instances.updated, sum->instances.deleted, sum->services.created,
		sum->services.updated, sum->services.deleted, sum->resources.created,
		sum->resources.updated, sum->resources.deleted, sum->history_rows, sum->direct_rows,
		sum->scopes_skipped, l->nscopes, (double)l->spooled_bytes / (1024.0 * 1024.0),
		sum->copy_seconds, sum->merge_seconds);
}

/* A run that collected without the write lock: it waits for it now, then
 * reads the ledger as it is under it, for its digests and filter. */
static int take_deferred_writes(af_loader *l)
{
	double waited = af_clock_seconds();
	bool got, known;
	int err;

	if ((err = af_lock_write(l->conn, AF_LOCK_WAIT, &got)) < 0 || (err = load_ledger(l)) < 0)
		return fail_run(l, err);
	for (size_t i = 0; i < l->nscopes; i++)
		if ((err = look_up_ledger(l, &l->scopes[i], &known)) < 0)
			return fail_run(l, err);
	l->write_deferred = false;
	af_info("loader", "run %" PRId64 ": waited %.2fs for another run's writes", l->run_id,
		af_clock_seconds() - waited);
	return 0;
}

int af_loader_commit(af_loader *l, af_load_summary *out)
{
	af_load_summary sum;
	double t_merge;
	char run_id[24];
	int err = 0;

	memset(&sum, 0, sizeof(sum));
	if (out)
		memset(out, 0, sizeof(*out));
	if (l->committed || !l->in_tx)
		return af_error_set(AF_ERR_PARAM, "the run is not open");
	if (l->failed)
		return run_failed(l, "nothing was committed");
	snprintf(run_id, sizeof(run_id), "%" PRId64, l->run_id);
	l->accepting = false;
	if ((l->write_deferred && (err = take_deferred_writes(l)) < 0) ||
	    (err = judge_digests(l)) < 0 || (err = flush_targets(l)) < 0 ||
	    (err = finish_reads(l)) < 0)
		goto done;
	sum.copy_seconds = af_clock_seconds() - l->t_begin;
	t_merge = af_clock_seconds();
	if ((err = af_bulk_rebuild_indexes(l->conn, &l->deferred)) < 0 ||
	    (err = merge(l, run_id, &sum)) < 0)
		goto done;
	sum.merge_seconds = af_clock_seconds() - t_merge;
	if (l->dry_run) {
		err = af_store_exec(l->conn, "rolling back the dry run", "ROLLBACK");
		sum.run_id = 0;
	} else {
		err = af_store_exec(l->conn, "committing the run", "COMMIT");
		sum.run_id = l->run_id;
	}
	l->in_tx = false;
	if (err < 0)
		goto done;
	l->committed = true;
	if (out)
		*out = sum;
	log_summary(l, &sum);
done:
	if (err < 0)
		fail_run(l, err);
	return err;
}

void af_loader_free(af_loader *l)
{
	PGresult *res;
	size_t i;

	if (!l)
		return;
	if (l->open_target != NO_TARGET) {
		/* Abort the COPY: the server fails it, and the ROLLBACK below
		 * discards the transaction. */
		PQputCopyEnd(l->conn, "aifleet run aborted");
		while ((res = PQgetResult(l->conn)) != NULL)
			PQclear(res);
		l->open_target = NO_TARGET;
	}
	/* a read of live rows under way is ended first */
	af_readahead_free(l->ahead);
	l->ahead = NULL;
	if (l->in_tx && PQstatus(l->conn) == CONNECTION_OK)
		PQclear(PQexec(l->conn, "ROLLBACK"));
	af_unlock_scopes(l->conn, &l->scope_locks);
	if (l->run_key != RUN_KEY_NONE)
		af_unlock_run_key(l->conn, l->run_key == RUN_KEY_SHARED);
	for (i = 0; i < l->nallowed; i++)
		free(l->allowed[i]);
	free(l->allowed);
	free(l->shard);
	if (l->store)
		l->store->in_run = false;
	for (i = 0; i < l->nscopes; i++)
		scope_entry_free(&l->scopes[i]);
	free(l->scopes);
	free(l->scope_slots);
	free(l->trigger);
	for (i = 0; i < NTARGETS; i++)
		af_buf_free(&l->out[i]);
	af_buf_free(&l->row);
	af_buf_free(&l->hist);
	af_direct_free(l->direct);
	af_deferred_indexes_free(&l->deferred);
	af_spool_free(l->spool);
	for (i = 0; i < l->nledger; i++)
		free(l->ledger[i].key);
	free(l->ledger);
	af_stage_free(&l->stage);
	EVP_MD_CTX_free(l->md);
	if (l->tok)
		json_tokener_free(l->tok);
	free(l);
}
