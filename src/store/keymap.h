#ifndef AIFLEET_STORE_KEYMAP_H
#define AIFLEET_STORE_KEYMAP_H

/*
 * A map from a 128-bit key (a prefix of a SHA-256 of a natural key) to an
 * entity id: the first-load path (direct.c) finds a service's instance by
 * it, and tells a record seen twice from a new one.
 *
 * Open addressing with linear probing, at most three quarters full, 24
 * bytes a slot; keys are hashes already, so their first bytes pick the
 * slot, and being uniform they keep the probes short.
 * 128 bits make a collision as unlikely as one of the content hashes the
 * loader trusts everywhere else.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AF_KEY_LEN 16

typedef struct af_key_map af_key_map;

int af_key_map_new(af_key_map **out);
/* True and *id when the key is in the map. */
bool af_key_map_get(const af_key_map *m, const unsigned char key[AF_KEY_LEN], int64_t *id);
/* Adds a key, or gives a known one a new id; id > 0. 0, AF_ERR_PARAM or
 * AF_ERR_NOMEM. */
int af_key_map_put(af_key_map *m, const unsigned char key[AF_KEY_LEN], int64_t id);
size_t af_key_map_count(const af_key_map *m);
void af_key_map_free(af_key_map *m);

#endif
