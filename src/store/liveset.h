#ifndef AIFLEET_STORE_LIVESET_H
#define AIFLEET_STORE_LIVESET_H

/*
 * The live rows of the scopes a run merges, by content hash (loader.c):
 * a spooled record whose hash is in the set is unchanged, so it is counted
 * and not staged -- the merge then handles only what changed -- and a live
 * row no record matched is a candidate for the tombstone pass.
 *
 * Compact on purpose: 25 bytes a row (a 128-bit prefix of the hash, the
 * id, a mark) and, once sealed, a hash table of 4-byte row indexes (1.33
 * to 2.67 of them a row).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct af_live_set af_live_set;

int af_live_set_new(af_live_set **out);
/* Bytes of a content hash that decide (its prefix): what the loader reads
 * back of each live row. */
#define AF_LIVE_KEY_LEN 16

/* Adds a row by its hash's first AF_LIVE_KEY_LEN bytes; the set must not
 * be sealed yet. */
int af_live_set_add(af_live_set *s, int64_t id, const unsigned char key[AF_LIVE_KEY_LEN]);
/* Indexes the rows; after this, take and each_unseen. */
void af_live_set_seal(af_live_set *s);
/* True when a live row has this hash; marks it seen. */
bool af_live_set_take(af_live_set *s, const unsigned char hash[32]);
/* Calls fn with the id of every row not taken; a negative return stops. */
int af_live_set_each_unseen(const af_live_set *s, int (*fn)(void *ctx, int64_t id), void *ctx);
size_t af_live_set_count(const af_live_set *s);
void af_live_set_free(af_live_set *s);

#endif
