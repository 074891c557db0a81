#ifndef AIFLEET_TESTUTIL_H
#define AIFLEET_TESTUTIL_H

#include <stddef.h>

/* Reads tests/fixtures/<rel> whole; aborts the test if missing. Caller frees. */
char *af_test_read_fixture(const char *rel, size_t *len);
/* Reads any file whole; NULL if it cannot. Caller frees. */
char *af_test_read_file(const char *path, size_t *len);
/* A fresh temporary directory (mkdtemp under $TMPDIR); caller frees. */
char *af_test_tempdir(void);

#endif
