/*
 * The live set (liveset.h). 128 bits of SHA-256 decide "unchanged": two
 * different records agreeing on them by chance is as likely as a collision
 * of a 128-bit hash, which no inventory comes near.
 */
#include "liveset.h"

#include <stdlib.h>
#include <string.h>

#include "aifleet/error.h"

#define KEY_LEN AF_LIVE_KEY_LEN
#define EMPTY UINT32_MAX

typedef struct live_row {
	unsigned char key[KEY_LEN];
	int64_t id;
} live_row;

/*
 * The rows in the order they came and, once sealed, an open-addressing
 * table of their indexes (linear probing, at most three quarters full);
 * a SHA-256 prefix is uniform already, so its first 8 bytes pick the slot.
 * Not the key map (keymap.h): that one grows while it is filled, a slot
 * holding key and id (24 bytes, and a rehash at every doubling); this set
 * is filled once, then only searched, so 4-byte slots are built once over
 * the rows -- 40 MB for 1.3M rows where the key map would take 75 at its
 * last growth. It replaced a qsort and a bisection per record, whose memcmp
 * calls were a fifth of the client's time in a churned 1.3M-row fleet.
 */
struct af_live_set {
	live_row *rows;
	uint32_t *slots;     /* row indexes, EMPTY where free; built by seal */
	size_t mask;         /* slots - 1; slots a power of two */
	unsigned char *seen; /* one mark per row, allocated by seal */
	size_t n, cap;
	/* The row after the last one taken. Records tend to come in the
	 * order their rows were read (both are the order the scope was first
	 * loaded in): that row is tried before the table, and a run of them
	 * is then a walk through memory instead of a cache miss each. */
	size_t next;
	bool sealed;
};

int af_live_set_new(af_live_set **out)
{
	if (!(*out = calloc(1, sizeof(**out))))
		return af_error_oom();
	return 0;
}

int af_live_set_add(af_live_set *s, int64_t id, const unsigned char key[AF_LIVE_KEY_LEN])
{
	if (s->sealed)
		return af_error_set(AF_ERR_GENERIC, "internal error: the live set is sealed");
	if (s->n == EMPTY)
		return af_error_set(AF_ERR_LIMIT, "more than %u live rows in one run", EMPTY - 1);
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		live_row *p = realloc(s->rows, cap * sizeof(*p));

		if (!p)
			return af_error_oom();
		s->rows = p;
		s->cap = cap;
	}
	memcpy(s->rows[s->n].key, key, KEY_LEN);
	s->rows[s->n].id = id;
	s->n++;
	return 0;
}

static size_t slot_of(const af_live_set *s, const unsigned char *key)
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return (size_t)h & s->mask;
}

void af_live_set_seal(af_live_set *s)
{
	size_t nslots = 16;

	if (s->sealed)
		return;
	s->sealed = true;
	while (nslots - nslots / 4 < s->n)
		nslots *= 2;
	s->slots = malloc(nslots * sizeof(*s->slots));
	s->seen = calloc(s->n ? s->n : 1, 1);
	if (!s->slots || !s->seen) {
		/* Without them take finds nothing, so every record is staged --
		 * slower, never wrong. */
		free(s->slots);
		free(s->seen);
		s->slots = NULL;
		s->seen = NULL;
		return;
	}
	memset(s->slots, 0xff, nslots * sizeof(*s->slots));
	s->mask = nslots - 1;
	for (size_t i = 0; i < s->n; i++) {
		size_t j = slot_of(s, s->rows[i].key);

		while (s->slots[j] != EMPTY)
			j = (j + 1) & s->mask;
		s->slots[j] = (uint32_t)i;
	}
}

/* Marks row i seen, unless it is already; the next row is tried next. */
static bool take_row(af_live_set *s, size_t i)
{
	if (s->seen[i])
		return false;
	s->seen[i] = 1;
	s->next = i + 1;
	return true;
}

bool af_live_set_take(af_live_set *s, const unsigned char hash[32])
{
	bool found = false;
	uint32_t i;

	if (!s->sealed || !s->slots)
		return false;
	if (s->next < s->n && memcmp(s->rows[s->next].key, hash, KEY_LEN) == 0 &&
	    take_row(s, s->next))
		return true;
	/* Rows with one hash (none are expected: the hash covers the natural
	 * key) are taken one per record; a further record with that hash
	 * still finds it live. */
	for (size_t j = slot_of(s, hash); (i = s->slots[j]) != EMPTY; j = (j + 1) & s->mask) {
		if (memcmp(s->rows[i].key, hash, KEY_LEN) != 0)
			continue;
		found = true;
		if (take_row(s, i))
			break;
	}
	return found;
}

int af_live_set_each_unseen(const af_live_set *s, int (*fn)(void *ctx, int64_t id), void *ctx)
{
	int err;

	for (size_t i = 0; i < s->n; i++)
		if ((!s->seen || !s->seen[i]) && (err = fn(ctx, s->rows[i].id)) < 0)
			return err;
	return 0;
}

size_t af_live_set_count(const af_live_set *s)
{
	return s->n;
}

void af_live_set_free(af_live_set *s)
{
	if (!s)
		return;
	free(s->rows);
	free(s->slots);
	free(s->seen);
	free(s);
}
