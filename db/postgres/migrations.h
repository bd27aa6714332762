/* The PostgreSQL migrations compiled into the binary (see cmake/embed_migrations.cmake). */
#ifndef ASSENT_DB_POSTGRES_MIGRATIONS_H
#define ASSENT_DB_POSTGRES_MIGRATIONS_H

#include "db/migration.h"

/* Ordered by version (schema_version.version after each), terminated by an
 * entry with version 0.  Both backends number from one sequence: a number
 * is the same change on both, and one only PostgreSQL needs (010_nodes)
 * is left unused by SQLite (a gap is fine). */
extern const struct db_migration db_pg_migrations[];

#endif
