#ifndef AIFLEET_STORE_COLUMNS_H
#define AIFLEET_STORE_COLUMNS_H

/*
 * The loader's entities, each described by one static table of columns
 * (columns.c), and everything generated from those tables: a record's
 * validation, its COPY row and content hash, the staging table, and the
 * column lists of the merge statements.
 *
 * A column has one name in af_stage, m_<type> and aifleet.<type>. Adding
 * one is a line in its entity's table plus the migration that adds it to
 * aifleet.<type>.
 */

#include <json-c/json.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "store_internal.h"

/* One column of one entity; defined in columns.c, which alone reads it. */
typedef struct af_column af_column;

/* An owner id column (services: instance_id; resources: instance_id and
 * service_id), taken from the owner_joins of classify. */
typedef struct af_owner_ref {
	const char *column; /* in aifleet.<type> */
	const char *id;     /* the owner's id in owner_joins, e.g. "o.id" */
	const char *table;  /* where that id lives: the run's orphan check */
	int entity;         /* the owner's entity (AF_ENTITY_*), as af_record_key names it */
} af_owner_ref;

typedef struct af_entity {
	const char *type;  /* instance | service | resource: names m_<type>, v_<type>, history */
	const char *table; /* aifleet.<type> */
	char code;         /* the staging discriminator, and the first byte hashed */
	const af_column *columns; /* in content-hash order: see columns.c */
	size_t ncolumns;
	/* Owner resolution: hand-written SQL over staging (s). */
	const char *owner_joins; /* classify: joins that find the owner's id */
	const char *orphan;      /* classify: true when the owner was not found */
	af_owner_ref owners[2];  /* owner id columns; column NULL ends the list */
} af_entity;

/* Parents first: the merge walks them in this order, so that children can
 * resolve their owner's id. */
enum { AF_ENTITY_INSTANCE, AF_ENTITY_SERVICE, AF_ENTITY_RESOURCE, AF_NENTITIES };
extern const af_entity af_entities[AF_NENTITIES];

/* An owner id column's value in a first-load row: none (SQL NULL). */
#define AF_NO_OWNER ((int64_t)0)

/* One entity's merge lists, generated from its columns (s: staging, t: the
 * table, m: m_<type>). */
typedef struct af_merge_sql {
	char *key;         /* natural key columns, for DISTINCT ON and ORDER BY */
	char *key_match;   /* the natural key as a join condition of t and s */
	char *owner_ids;   /* classify's extra select list: ", <id> AS owner_<column>" */
	char *insert_cols; /* INSERT column list (content_hash and bookkeeping aside) */
	char *insert_vals; /* the same as expressions over m, with jsonb casts */
	char *set;         /* UPDATE SET list from m: every non-key column */
} af_merge_sql;

#define AF_STAGE_MAX_COLUMNS 64

/* A column of af_stage: one name shared by the entities that have it. */
typedef struct af_stage_column {
	const af_column *of[AF_NENTITIES]; /* each entity's column; NULL: it has none */
	const af_column *def;              /* the first of them: name and type */
} af_stage_column;

/* The staging table and the SQL generated for one run. */
typedef struct af_stage {
	/* Record columns: the union of the entities' columns, after entity,
	 * seq and the scope columns, before content_hash. */
	af_stage_column columns[AF_STAGE_MAX_COLUMNS];
	size_t ncolumns;
	char *create_sql; /* CREATE TEMP TABLE af_stage (...) ON COMMIT DROP */
	char *copy_sql;   /* COPY af_stage (...) FROM STDIN */
	/* COPY aifleet.<type> (id, owner ids, columns, content_hash,
	 * first_seen_at, last_changed_at, last_run_id): the first-load path */
	char *direct_copy_sql[AF_NENTITIES];
	af_merge_sql merge[AF_NENTITIES];
} af_stage;

/* Builds the staging layout and its SQL; 0, AF_ERR_NOMEM, or AF_ERR_GENERIC
 * when the tables contradict themselves (one name, two staging types). */
int af_stage_init(af_stage *st);
/* Frees what af_stage_init built; safe on a zeroed or freed stage. */
void af_stage_free(af_stage *st);

/* True if every scope field is present and valid UTF-8. */
bool af_scope_valid(const af_scope *sc);

/*
 * Why the record `rec` (an af_instance, af_service or af_resource, as `e`
 * says) cannot be stored, or NULL when it can. The reason is a constant or
 * written into msg[n]. `tok` parses the JSON columns (strict, UTF-8).
 */
const char *af_record_problem(const af_entity *e, const void *rec, json_tokener *tok, char *msg,
			      size_t n);

/* Bytes of a content hash (SHA-256). */
#define AF_CONTENT_HASH_LEN 32

/*
 * Appends the staging COPY row of a valid record (`e` one of af_entities),
 * its content hash `hash` (af_content_hash) and the newline included, to
 * `b`. On failure (AF_ERR_LIMIT: the buffer's cap; AF_ERR_NOMEM;
 * AF_ERR_GENERIC) part of the row may be in `b`: the caller cuts it off.
 */
int af_stage_put_row(const af_stage *st, af_buf *b, const af_entity *e, uint64_t seq,
		     const af_scope *sc, const void *rec,
		     const unsigned char hash[AF_CONTENT_HASH_LEN]);

/*
 * What the first-load path (direct.c) needs of a record's natural key:
 * the text that tells it from its siblings (an instance's or service's
 * native id, a resource's kind) and, for a service or resource, the owner
 * it names (owner: AF_ENTITY_INSTANCE or AF_ENTITY_SERVICE, -1 for none).
 * The provider, account and product complete the key.
 */
typedef struct af_record_key {
	const char *name;
	int owner;
	const char *owner_id;
} af_record_key;

void af_record_key_of(const af_entity *e, const void *rec, af_record_key *k);

/* Bytes of af_key_hash's key: a prefix of a SHA-256, 128 bits. */
#define AF_KEY_HASH_LEN 16

/* The key of a natural key in C: the scope's key columns (provider,
 * account, product) and then `parts` (NULL allowed), each hashed as the
 * content hash hashes a column, so that no two keys run together. */
int af_key_hash(EVP_MD_CTX *md, const af_scope *sc, const char *const *parts, size_t nparts,
		unsigned char key[AF_KEY_HASH_LEN]);

/* The content hash of a valid record: what decides "changed", and what its
 * scope's digest sums. */
int af_content_hash(EVP_MD_CTX *md, const af_entity *e, const af_scope *sc, const void *rec,
		    unsigned char hash[AF_CONTENT_HASH_LEN]);

/*
 * Appends the row of a valid record for e's direct_copy_sql: `id`, then
 * one value per owner id column (owner_ids[i] for e->owners[i];
 * AF_NO_OWNER is NULL), the columns, the content hash `hash` (from
 * af_content_hash), then `tail` as it is (the bookkeeping columns'
 * values, each after a tab, and the newline). Fails as af_stage_put_row.
 */
int af_direct_put_row(af_buf *b, const af_entity *e, int64_t id, const int64_t owner_ids[2],
		      const af_scope *sc, const void *rec, const unsigned char hash[AF_CONTENT_HASH_LEN],
		      const char *tail);

#endif
