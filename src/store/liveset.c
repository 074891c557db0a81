/*
 * The live set (liveset.h). 128 bits of SHA-256 decide "unchanged": two
 * different records agreeing on them by chance is as likely as a collision
 * of a 128-bit hash, which no inventory comes near.
 */
#include "liveset.h"

#include <stdlib.h>
#include <string.h>

#include "aifleet/error.h"

#define KEY_LEN 16

typedef struct live_row {
	unsigned char key[KEY_LEN];
	int64_t id;
} live_row;

struct af_live_set {
	live_row *rows;
	unsigned char *seen; /* one mark per row, allocated by seal */
	size_t n, cap;
	bool sealed;
};

int af_live_set_new(af_live_set **out)
{
	if (!(*out = calloc(1, sizeof(**out))))
		return af_error_oom();
	return 0;
}

int af_live_set_add(af_live_set *s, int64_t id, const unsigned char hash[32])
{
	if (s->sealed)
		return af_error_set(AF_ERR_GENERIC, "internal error: the live set is sealed");
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		live_row *p = realloc(s->rows, cap * sizeof(*p));

		if (!p)
			return af_error_oom();
		s->rows = p;
		s->cap = cap;
	}
	memcpy(s->rows[s->n].key, hash, KEY_LEN);
	s->rows[s->n].id = id;
	s->n++;
	return 0;
}

static int row_cmp(const void *a, const void *b)
{
	return memcmp(((const live_row *)a)->key, ((const live_row *)b)->key, KEY_LEN);
}

void af_live_set_seal(af_live_set *s)
{
	if (s->sealed)
		return;
	if (s->n > 1)
		qsort(s->rows, s->n, sizeof(*s->rows), row_cmp);
	/* A failed allocation leaves seen NULL: take then finds nothing, so
	 * every record is staged -- slower, never wrong. */
	s->seen = calloc(s->n ? s->n : 1, 1);
	s->sealed = true;
}

bool af_live_set_take(af_live_set *s, const unsigned char hash[32])
{
	size_t lo = 0, hi = s->n;

	if (!s->sealed || !s->seen)
		return false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(s->rows[mid].key, hash, KEY_LEN);

		if (c == 0) {
			s->seen[mid] = 1;
			return true;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
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
	free(s->seen);
	free(s);
}
