/* migration.h - private to db/: one schema migration compiled into the
 * binary (cmake/embed_migrations.cmake), as each backend lists them. */
#ifndef ASSENT_DB_MIGRATION_H
#define ASSENT_DB_MIGRATION_H

struct db_migration {
    int version;      /* numeric prefix of the file: the schema version after it */
    const char *name; /* file name without .sql */
    const char *sql;  /* the whole file */
};

#endif
