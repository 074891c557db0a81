#ifndef AIFLEET_MIGRATE_H
#define AIFLEET_MIGRATE_H

/*
 * Schema migrations. The numbered files in sql/ are embedded at build time
 * (cmake/embed-migrations.cmake) into af_migrations[], sorted by version.
 */

#include <libpq-fe.h>
#include <stddef.h>

typedef struct af_migration {
	int version;      /* from the NNN_ prefix */
	const char *name; /* file name, e.g. 001_schema.sql */
	const char *sql;  /* full text */
} af_migration;

extern const af_migration af_migrations[];
extern const size_t af_migrations_count;

#endif
