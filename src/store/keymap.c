#include "keymap.h"

#include <stdlib.h>
#include <string.h>

#include "aifleet/error.h"

#define FIRST_SLOTS 1024

/* id 0 marks an empty slot: entity ids come from a sequence that starts
 * at 1. */
typedef struct slot {
	unsigned char key[AF_KEY_LEN];
	int64_t id;
} slot;

struct af_key_map {
	slot *slots;
	size_t nslots; /* a power of two */
	size_t count;
};

/* The key's first eight bytes, as the slot index's source: uniformly
 * distributed, since every key is a cryptographic hash. */
static size_t home(const unsigned char key[AF_KEY_LEN], size_t nslots)
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return (size_t)h & (nslots - 1);
}

static slot *find(slot *slots, size_t nslots, const unsigned char key[AF_KEY_LEN])
{
	size_t i = home(key, nslots);

	while (slots[i].id != 0 && memcmp(slots[i].key, key, AF_KEY_LEN) != 0)
		i = (i + 1) & (nslots - 1);
	return &slots[i];
}

static int grow(af_key_map *m)
{
	size_t n = m->nslots ? 2 * m->nslots : FIRST_SLOTS;
	slot *slots = calloc(n, sizeof(*slots));

	if (!slots)
		return af_error_oom();
	for (size_t i = 0; i < m->nslots; i++)
		if (m->slots[i].id != 0)
			*find(slots, n, m->slots[i].key) = m->slots[i];
	free(m->slots);
	m->slots = slots;
	m->nslots = n;
	return 0;
}

int af_key_map_new(af_key_map **out)
{
	af_key_map *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (!m)
		return af_error_oom();
	*out = m;
	return 0;
}

bool af_key_map_get(const af_key_map *m, const unsigned char key[AF_KEY_LEN], int64_t *id)
{
	const slot *s;

	if (m->count == 0)
		return false;
	s = find(m->slots, m->nslots, key);
	if (s->id != 0 && id)
		*id = s->id;
	return s->id != 0;
}

int af_key_map_put(af_key_map *m, const unsigned char key[AF_KEY_LEN], int64_t id)
{
	slot *s;
	int err;

	if (4 * (m->count + 1) > 3 * m->nslots && (err = grow(m)) < 0)
		return err;
	if (id <= 0)
		return af_error_set(AF_ERR_PARAM, "key map ids must be positive");
	s = find(m->slots, m->nslots, key);
	if (s->id == 0)
		m->count++;
	memcpy(s->key, key, AF_KEY_LEN);
	s->id = id;
	return 0;
}

size_t af_key_map_count(const af_key_map *m)
{
	return m->count;
}

void af_key_map_free(af_key_map *m)
{
	if (!m)
		return;
	free(m->slots);
	free(m);
}
