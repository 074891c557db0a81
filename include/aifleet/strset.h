#ifndef AIFLEET_STRSET_H
#define AIFLEET_STRSET_H

/*
 * A set of strings that costs little per string: the per-scope indexes of
 * a sync (the ids a paged list has shown, the instance ids the
 * de-duplicating filter let through) hold an entry for every item of the
 * fleet. The strings live back to back in one arena, and an open-addressing
 * table of 8-byte slots (an offset and a hash) finds them: about the
 * string's length + 1, plus 10 to 20 bytes, an entry. A json-c lh_table
 * with strdup'd keys costs ~137 bytes an entry for 100k ids of 19
 * characters (a 40-byte entry in a table kept under 2/3 full, and a malloc
 * per key).
 *
 * Not locked: its owner serialises access.
 */

#include <stdbool.h>
#include <stddef.h>

typedef struct af_strset af_strset;

/* An empty set; AF_ERR_NOMEM. */
int af_strset_new(af_strset **out);
/* NULL is fine. */
void af_strset_free(af_strset *set);

/* Adds a copy of `s`: 1 if it was not there, 0 if it was, AF_ERR_NOMEM,
 * or AF_ERR_LIMIT (the set holds 4 GiB of strings). */
int af_strset_add(af_strset *set, const char *s);

bool af_strset_has(const af_strset *set, const char *s);
size_t af_strset_count(const af_strset *set);

/* Bytes the set holds allocated (arena and table). */
size_t af_strset_bytes(const af_strset *set);

#endif
