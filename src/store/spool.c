/*
 * The scope digest and the spool (spool.h). A spooled row is a header --
 * its tag and length, in host order (the file never outlives the process)
 * -- followed by the row's bytes.
 */
#include "spool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aifleet/error.h"

/* A row longer than this cannot have been spooled (the loader caps rows at
 * 16 MiB); a header saying otherwise means the file was damaged. */
#define SPOOL_ROW_MAX ((size_t)64 * 1024 * 1024)
#define SPOOL_BUFFER  ((size_t)1024 * 1024)

typedef struct spool_head {
	af_spool_tag tag;
	uint32_t len;
} spool_head;

struct af_spool {
	FILE *f;
	uint64_t bytes;
	char *row; /* replay's scratch */
	size_t row_cap;
};

void af_scope_digest_add(af_scope_digest *d, const unsigned char hash[32])
{
	for (size_t i = 0; i < 4; i++) {
		uint64_t v = 0;

		for (size_t b = 0; b < 8; b++)
			v |= (uint64_t)hash[8 * i + b] << (8 * b);
		d->lane[i] += v; /* unsigned: wraps, mod 2^64 */
	}
	d->records++;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (size_t b = 0; b < 8; b++)
		p[b] = (unsigned char)(v >> (8 * b));
}

int af_scope_digest_final(const af_scope_digest *d, EVP_MD_CTX *md,
                          unsigned char out[AF_SCOPE_DIGEST_LEN])
{
	unsigned char in[40], full[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	put_le64(in, d->records);
	for (size_t i = 0; i < 4; i++)
		put_le64(in + 8 + 8 * i, d->lane[i]);
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, in, sizeof(in)) != 1 || EVP_DigestFinal_ex(md, full, &len) != 1)
		return af_error_set(AF_ERR_GENERIC, "SHA-256 failed");
	memcpy(out, full, AF_SCOPE_DIGEST_LEN);
	return 0;
}

int af_spool_open(af_spool **out)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	af_spool *s;
	int fd;

	*out = NULL;
	if (!dir || !*dir)
		dir = "/tmp";
	if ((size_t)snprintf(path, sizeof(path), "%s/aifleet-spool.XXXXXX", dir) >= sizeof(path))
		return af_error_set(AF_ERR_IO, "TMPDIR is too long for the loader's spool file");
	if (!(s = calloc(1, sizeof(*s))))
		return af_error_oom();
	/* mkstemp creates the file 0600; unlinked, it lives as long as the fd. */
	if ((fd = mkstemp(path)) < 0) {
		free(s);
		return af_error_set(AF_ERR_IO,
		                    "cannot create the loader's spool file in %s: %s "
		                    "(set TMPDIR to a writable directory)",
		                    dir, strerror(errno));
	}
	unlink(path);
	if (!(s->f = fdopen(fd, "w+b"))) {
		close(fd);
		free(s);
		return af_error_oom();
	}
	setvbuf(s->f, NULL, _IOFBF, SPOOL_BUFFER);
	*out = s;
	return 0;
}

static int spool_io_error(const char *what)
{
	return af_error_set(AF_ERR_IO, "%s the loader's spool file: %s", what,
	                    errno ? strerror(errno) : "short read");
}

int af_spool_put(af_spool *s, const af_spool_tag *tag, const void *row, size_t len)
{
	spool_head head;

	memset(&head, 0, sizeof(head));
	head.tag = *tag;
	head.len = (uint32_t)len;
	if (len > SPOOL_ROW_MAX)
		return af_error_set(AF_ERR_LIMIT, "a row of %zu bytes is too long for the spool",
		                    len);
	errno = 0;
	if (fwrite(&head, sizeof(head), 1, s->f) != 1 || fwrite(row, 1, len, s->f) != len)
		return spool_io_error("writing");
	s->bytes += sizeof(head) + len;
	return 0;
}

static int reserve_row(af_spool *s, size_t len)
{
	char *p;

	if (len <= s->row_cap)
		return 0;
	if (!(p = realloc(s->row, len)))
		return af_error_oom();
	s->row = p;
	s->row_cap = len;
	return 0;
}

int af_spool_replay(af_spool *s, af_spool_row_fn fn, void *ctx)
{
	spool_head head;
	int err;

	errno = 0;
	if (fflush(s->f) != 0 || fseeko(s->f, 0, SEEK_SET) != 0)
		return spool_io_error("rewinding");
	for (;;) {
		size_t got = fread(&head, 1, sizeof(head), s->f);

		if (got == 0 && feof(s->f))
			break;
		if (got != sizeof(head) || head.len > SPOOL_ROW_MAX)
			return spool_io_error("reading");
		if ((err = reserve_row(s, head.len ? head.len : 1)) < 0)
			return err;
		if (fread(s->row, 1, head.len, s->f) != head.len)
			return spool_io_error("reading");
		if ((err = fn(ctx, &head.tag, s->row, head.len)) < 0)
			return err;
	}
	/* Further rows go after the replayed ones. */
	if (fseeko(s->f, 0, SEEK_END) != 0)
		return spool_io_error("seeking in");
	return 0;
}

uint64_t af_spool_bytes(const af_spool *s)
{
	return s->bytes;
}

void af_spool_free(af_spool *s)
{
	if (!s)
		return;
	if (s->f)
		fclose(s->f);
	free(s->row);
	free(s);
}
