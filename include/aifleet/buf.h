#ifndef AIFLEET_BUF_H
#define AIFLEET_BUF_H

/*
 * A growable byte buffer with a hard cap (after curl's dynbuf): a runaway
 * response or record cannot eat the machine. Once anything has been
 * appended the contents are NUL-terminated, so they can be handed to C
 * string APIs; before that there is no data at all (NULL).
 *
 * The members are the buffer's own: read them through af_buf_data() and
 * af_buf_len(), change them through the functions below.
 */

#include <stddef.h>
#include <string.h>

typedef struct af_buf {
	char *data;     /* NUL-terminated; NULL until the first append */
	size_t len;     /* bytes used, excluding the terminator */
	size_t alloc;   /* bytes allocated */
	size_t max;     /* hard cap on len; 0 means AF_BUF_DEFAULT_MAX */
} af_buf;

#define AF_BUF_DEFAULT_MAX ((size_t)64 * 1024 * 1024)
#define AF_BUF_INIT { NULL, 0, 0, 0 }

void af_buf_init(af_buf *b, size_t max);
/* Each returns 0, AF_ERR_NOMEM, or AF_ERR_LIMIT (the cap would be exceeded;
 * af_buf_printf also AF_ERR_GENERIC for a bad format). On failure the
 * contents are left as they were. */
inline int af_buf_append(af_buf *b, const void *data, size_t len);
int af_buf_puts(af_buf *b, const char *s);
int af_buf_printf(af_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The contents (borrowed: valid until the buffer next changes), and their
 * length without the terminator. The data is NULL while nothing was ever
 * appended, so a NULL after building a string means its first append failed. */
const char *af_buf_data(const af_buf *b);
size_t af_buf_len(const af_buf *b);

/* Empties the buffer; keeps the allocation for reuse. */
void af_buf_reset(af_buf *b);
/* Shrinks the contents to their first `len` bytes and terminates them there,
 * keeping the allocation (e.g. to drop a half-written row); a `len` at or
 * beyond the current length changes nothing. */
void af_buf_truncate(af_buf *b, size_t len);
/* Takes ownership of the data (caller frees; NULL if nothing was appended);
 * the buffer is left empty, with its cap. */
char *af_buf_detach(af_buf *b);
/* Frees the data. af_buf_free_secret wipes all of the allocation first, for
 * buffers that held credentials or signatures. */
void af_buf_free(af_buf *b);
void af_buf_free_secret(af_buf *b);

/* af_buf_append when the buffer must grow or the cap is reached: buf.c's,
 * for the inline part below. */
int af_buf_append_grow(af_buf *b, const void *data, size_t len);

/*
 * Appending is what COPY rows are made of, a few bytes at a time, dozens
 * of times per record: the case where the bytes fit in what is allocated
 * is inline, the rest (growing, the cap) is af_buf_append_grow.
 */
inline int af_buf_append(af_buf *b, const void *data, size_t len)
{
	size_t cap = b->max ? b->max : AF_BUF_DEFAULT_MAX;

	/* len + 1 (the terminator) fits the allocation; nothing allocated
	 * (alloc 0) never does */
	if (len < b->alloc - b->len && len <= cap - b->len) {
		if (len)
			memcpy(b->data + b->len, data, len);
		b->len += len;
		b->data[b->len] = '\0';
		return 0;
	}
	return af_buf_append_grow(b, data, len);
}

#endif
