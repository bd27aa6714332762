/* The PostgreSQL migrations compiled into the binary (see cmake/embed_migrations.cmake). */
#ifndef ASSENT_DB_POSTGRES_MIGRATIONS_H
#define ASSENT_DB_POSTGRES_MIGRATIONS_H

#include "db/migration.h"

/* Ordered by version (schema_version.version after each; the same numbers
 * as SQLite's), terminated by an entry with version 0. */
extern const struct db_migration db_pg_migrations[];

#endif
