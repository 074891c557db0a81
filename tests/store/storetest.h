#ifndef AIFLEET_STORETEST_H
#define AIFLEET_STORETEST_H

/* Helpers shared by the store integration tests. */

#include "aifleet/store.h"
#include "testdb.h"

/* The mass-delete guard's defaults, with every scope allowed ("all"): the
 * tests delete on purpose, from fleets small enough for any deletion to
 * look like a mass one. */
extern const af_delete_guard st_allow_all_deletes;

/* Creates a database, connects and migrates; aborts the test on failure. */
af_store *st_open(af_testdb *db);

/* Record builders with fixed, readable values for the other fields. */
int st_inst(af_loader *l, const af_scope *sc, const char *id, const char *name);
int st_svc(af_loader *l, const af_scope *sc, const char *inst, const char *id, const char *model,
	   double replicas);
/* The same, with a name of its own (st_svc names a service by its id). */
int st_svc_named(af_loader *l, const af_scope *sc, const char *inst, const char *id,
		 const char *name, const char *model, double replicas);
int st_res(af_loader *l, const af_scope *sc, af_owner_kind ok, const char *owner,
	   const char *kind, double capacity, const char *unit, const char *gpu);
void st_done(af_loader *l, const af_scope *sc, af_scope_state state);

#endif
