#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

char *af_test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	long size;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto done;
	data = malloc((size_t)size + 1);
	if (!data)
		goto done;
	if (fread(data, 1, (size_t)size, f) != (size_t)size) {
		free(data);
		data = NULL;
		goto done;
	}
	data[size] = '\0';
	if (len)
		*len = (size_t)size;
done:
	fclose(f);
	return data;
}

char *af_test_read_fixture(const char *rel, size_t *len)
{
	char path[1024];
	char *data;

	snprintf(path, sizeof(path), "%s/%s", AF_FIXTURES_DIR, rel);
	data = af_test_read_file(path, len);
	if (!data)
		fail_msg("cannot read fixture %s", path);
	return data;
}

char *af_test_tempdir(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[1024];
	char *dir;

	snprintf(tmpl, sizeof(tmpl), "%s/aifleet-test-XXXXXX", base && *base ? base : "/tmp");
	dir = mkdtemp(tmpl);
	if (!dir)
		fail_msg("mkdtemp failed");
	return strdup(dir);
}
