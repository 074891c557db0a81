#ifndef AIFLEET_STORE_SPOOL_H
#define AIFLEET_STORE_SPOOL_H

/*
 * What lets the loader skip a scope that did not change (loader.c):
 *
 *   af_scope_digest  an order-independent digest of a scope's records,
 *                    compared with the one the ledger kept from the last
 *                    clean run of the scope;
 *   af_spool         the COPY rows of the scopes that may be skipped, held
 *                    in an unlinked temporary file (not in memory) until
 *                    their digest is known, then replayed into the COPY of
 *                    the scopes that changed, or dropped.
 */

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define AF_SCOPE_DIGEST_LEN 32

/*
 * The multiset of a scope's content hashes, as four 64-bit lane sums and a
 * count: records may arrive in any order (pages, concurrent workers), the
 * sum does not care. A content hash covers the record's entity, scope,
 * natural key and every hashed column, so a changed, added or removed
 * record changes the digest (the lanes sum SHA-256 outputs, so matching a
 * different multiset by chance is as unlikely as a hash collision).
 */
typedef struct af_scope_digest {
	uint64_t lane[4];
	uint64_t records;
} af_scope_digest;

void af_scope_digest_add(af_scope_digest *d, const unsigned char hash[32]);
/* The digest as stored: SHA-256 over the count and the lanes. */
int af_scope_digest_final(const af_scope_digest *d, EVP_MD_CTX *md,
                          unsigned char out[AF_SCOPE_DIGEST_LEN]);

typedef struct af_spool af_spool;

/* A spool in $TMPDIR (or /tmp), unlinked at once: nothing is left behind
 * whatever ends the process, and no other process can open it by name.
 * AF_ERR_IO names the directory when it cannot be created. */
int af_spool_open(af_spool **out);
/* What the spool keeps beside a row, for the replay to decide on it. */
typedef struct af_spool_tag {
	uint32_t scope;         /* an index of the caller's */
	uint32_t entity;        /* likewise */
	unsigned char hash[32]; /* the row's content hash */
} af_spool_tag;

/* Appends one row with its tag. */
int af_spool_put(af_spool *s, const af_spool_tag *tag, const void *row, size_t len);

/* Called for every row in the order spooled; a negative return stops. */
typedef int (*af_spool_row_fn)(void *ctx, const af_spool_tag *tag, const char *row, size_t len);
/* Reads the spool back from the start; it can be replayed again. */
int af_spool_replay(af_spool *s, af_spool_row_fn fn, void *ctx);
/* Bytes spooled so far. */
uint64_t af_spool_bytes(const af_spool *s);
void af_spool_free(af_spool *s);

#endif
