#include "aifleet/buf.h"
#include "aifleet/error.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void af_buf_init(af_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->max = max;
}

static size_t buf_cap(const af_buf *b)
{
	return b->max ? b->max : AF_BUF_DEFAULT_MAX;
}

static int buf_reserve(af_buf *b, size_t extra)
{
	size_t need, alloc;
	char *p;

	if (extra > buf_cap(b) - b->len)
		return af_error_set(AF_ERR_LIMIT, "buffer limit of %zu bytes exceeded", buf_cap(b));
	need = b->len + extra + 1;
	if (need <= b->alloc)
		return 0;
	alloc = b->alloc ? b->alloc : 256;
	while (alloc < need)
		alloc *= 2;
	p = realloc(b->data, alloc);
	if (!p)
		return af_error_oom();
	b->data = p;
	b->alloc = alloc;
	return 0;
}

/* The external definition of the inline af_buf_append (C99 6.7.4). */
extern inline int af_buf_append(af_buf *b, const void *data, size_t len);

int af_buf_append_grow(af_buf *b, const void *data, size_t len)
{
	int err;

	if ((err = buf_reserve(b, len)) < 0)
		return err;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int af_buf_puts(af_buf *b, const char *s)
{
	return af_buf_append(b, s, strlen(s));
}

int af_buf_printf(af_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return af_error_set(AF_ERR_GENERIC, "format error");
	if ((err = buf_reserve(b, (size_t)n)) < 0)
		return err;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

const char *af_buf_data(const af_buf *b)
{
	return b->data;
}

size_t af_buf_len(const af_buf *b)
{
	return b->len;
}

void af_buf_reset(af_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void af_buf_truncate(af_buf *b, size_t len)
{
	if (len >= b->len)
		return;
	b->len = len;
	b->data[len] = '\0';
}

char *af_buf_detach(af_buf *b)
{
	char *p = b->data;

	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	return p;
}

void af_buf_free(af_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
}

void af_buf_free_secret(af_buf *b)
{
	if (b->data)
		OPENSSL_cleanse(b->data, b->alloc);
	af_buf_free(b);
}
