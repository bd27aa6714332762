/* The SQLite migrations compiled into the binary (see cmake/embed_migrations.cmake). */
#ifndef ASSENT_DB_SQLITE_MIGRATIONS_H
#define ASSENT_DB_SQLITE_MIGRATIONS_H

#include "db/migration.h"

/* Ordered by version (PRAGMA user_version after each), terminated by an
 * entry with version 0. */
extern const struct db_migration db_migrations[];

#endif
