#ifndef AIFLEET_BUF_H
#define AIFLEET_BUF_H

/*
 * A growable byte buffer with a hard cap (after curl's dynbuf): a runaway
 * response or record cannot eat the machine. The contents are always
 * NUL-terminated so they can be handed to C string APIs.
 */

#include <stddef.h>

typedef struct af_buf {
	char *data;     /* NUL-terminated; NULL until the first append */
	size_t len;     /* bytes used, excluding the terminator */
	size_t alloc;   /* bytes allocated */
	size_t max;     /* hard cap on len; 0 means AF_BUF_DEFAULT_MAX */
} af_buf;

#define AF_BUF_DEFAULT_MAX ((size_t)64 * 1024 * 1024)
#define AF_BUF_INIT { NULL, 0, 0, 0 }

void af_buf_init(af_buf *b, size_t max);
/* Returns 0, AF_ERR_NOMEM or AF_ERR_LIMIT (the cap would be exceeded). */
int af_buf_append(af_buf *b, const void *data, size_t len);
int af_buf_puts(af_buf *b, const char *s);
int af_buf_printf(af_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void af_buf_reset(af_buf *b);
/* Takes ownership of the data (caller frees); the buffer is left empty. */
char *af_buf_detach(af_buf *b);
/* Frees the data; wipes it first when `secret` is set. */
void af_buf_free(af_buf *b);
void af_buf_free_secret(af_buf *b);

#endif
