/*
 * The compact string set (aifleet/strset.h): an arena of NUL-terminated
 * strings and a linear-probing table of (offset + 1, hash) slots, kept at
 * most 3/4 full. The hash is FNV-1a with a final mix, so that the low bits
 * that pick a slot depend on every byte.
 */
#include "aifleet/strset.h"
#include "aifleet/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
	uint32_t off1; /* offset of the string in the arena + 1; 0: empty */
	uint32_t hash;
} slot;

struct af_strset {
	char *arena;
	size_t used, alloc;
	slot *slots;
	size_t cap; /* a power of two */
	size_t count;
};

#define FIRST_SLOTS 1024
#define FIRST_ARENA 16384

static uint32_t hash_of(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	/* splitmix64's finalizer */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return (uint32_t)h;
}

int af_strset_new(af_strset **out)
{
	af_strset *set;

	*out = NULL;
	if (!(set = calloc(1, sizeof(*set))) || !(set->slots = calloc(FIRST_SLOTS, sizeof(slot)))) {
		free(set);
		return af_error_oom();
	}
	set->cap = FIRST_SLOTS;
	*out = set;
	return 0;
}

void af_strset_free(af_strset *set)
{
	if (!set)
		return;
	free(set->arena);
	free(set->slots);
	free(set);
}

/* The slot holding `s`, or the empty slot where it would go. */
static size_t find(const af_strset *set, const char *s, uint32_t hash, bool *found)
{
	size_t mask = set->cap - 1, i = hash & mask;

	for (;; i = (i + 1) & mask) {
		const slot *sl = &set->slots[i];

		if (!sl->off1) {
			*found = false;
			return i;
		}
		if (sl->hash == hash && strcmp(set->arena + sl->off1 - 1, s) == 0) {
			*found = true;
			return i;
		}
	}
}

/* Twice the slots; every string goes to its slot in the new table. */
static int grow_slots(af_strset *set)
{
	size_t cap = set->cap * 2, mask = cap - 1;
	slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return af_error_oom();
	for (size_t i = 0; i < set->cap; i++) {
		size_t j;

		if (!set->slots[i].off1)
			continue;
		for (j = set->slots[i].hash & mask; slots[j].off1; j = (j + 1) & mask)
			;
		slots[j] = set->slots[i];
	}
	free(set->slots);
	set->slots = slots;
	set->cap = cap;
	return 0;
}

/* Room for `need` more bytes in the arena. */
static int reserve_arena(af_strset *set, size_t need)
{
	size_t alloc = set->alloc ? set->alloc : FIRST_ARENA;
	char *arena;

	if (need > UINT32_MAX - 1 - set->used)
		return af_error_set(AF_ERR_LIMIT, "string set over 4 GiB");
	if (set->used + need <= set->alloc)
		return 0;
	while (alloc < set->used + need)
		alloc *= 2;
	if (!(arena = realloc(set->arena, alloc)))
		return af_error_oom();
	set->arena = arena;
	set->alloc = alloc;
	return 0;
}

int af_strset_add(af_strset *set, const char *s)
{
	size_t len = strlen(s), i;
	uint32_t hash = hash_of(s, len);
	bool found;
	int err;

	find(set, s, hash, &found);
	if (found)
		return 0;
	if ((set->count + 1) * 4 > set->cap * 3 && (err = grow_slots(set)) < 0)
		return err;
	if ((err = reserve_arena(set, len + 1)) < 0)
		return err;
	i = find(set, s, hash, &found);
	memcpy(set->arena + set->used, s, len + 1);
	set->slots[i].off1 = (uint32_t)set->used + 1;
	set->slots[i].hash = hash;
	set->used += len + 1;
	set->count++;
	return 1;
}

bool af_strset_has(const af_strset *set, const char *s)
{
	size_t len = strlen(s);
	bool found;

	find(set, s, hash_of(s, len), &found);
	return found;
}

size_t af_strset_count(const af_strset *set)
{
	return set->count;
}

size_t af_strset_bytes(const af_strset *set)
{
	return set->alloc + set->cap * sizeof(slot);
}
