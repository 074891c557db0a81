#ifndef AIFLEET_TEST_REC_H
#define AIFLEET_TEST_REC_H

/*
 * A recording sink for the normalizer tests: deep-copies every record it
 * is handed (the strings are borrowed and die after the call), keeps the
 * order of calls, and concatenates every emitted string so that a test can
 * search all of them for a secret at once.
 */

#include <json-c/json.h>
#include <stddef.h>

#include "aifleet/normalize.h"
#include "aifleet/record.h"

#define REC_MAX 64

typedef struct rec {
	af_instance inst[REC_MAX];
	af_service svc[REC_MAX];
	af_resource res[REC_MAX];
	size_t ninst, nsvc, nres;
	char order[REC_MAX * 3]; /* 'I', 'S', 'R' in call order */
	size_t norder;
	char *all; /* every emitted string, '\n'-separated */
	size_t all_len;
	int fail_after; /* > 0: the n-th call returns AF_ERR_DB */
	int calls;
	af_record_sink sink;
} rec;

void rec_init(rec *r);
void rec_free(rec *r);

/* Finders; fail the test when absent. */
const af_resource *rec_res(const rec *r, const char *owner, const char *kind);
const af_service *rec_svc(const rec *r, const char *native_id);
const af_instance *rec_inst(const rec *r, const char *native_id);
/* NULL when absent. */
const af_resource *rec_res_opt(const rec *r, const char *owner, const char *kind);

/* Parses a fixture file under tests/fixtures/ with json-c. */
json_object *rec_load(const char *rel);

/* Asserts that no emitted string contains `needle`. */
void rec_assert_absent(const rec *r, const char *needle);

/* Asserts an af_num is set to `want` (within 1e-9) or unset. */
void rec_num_eq(af_num n, double want);
void rec_num_unset(af_num n);

/* Asserts that two JSON texts are equal as JSON (json-c's equality). */
void rec_json_eq(const char *got, const char *want);

#endif
