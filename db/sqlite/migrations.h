/* The SQL migrations compiled into the binary (see cmake/embed_migrations.cmake). */
#ifndef ASSENT_DB_MIGRATIONS_H
#define ASSENT_DB_MIGRATIONS_H

struct db_migration {
    int version;      /* numeric prefix of the file; PRAGMA user_version after it */
    const char *name; /* file name without .sql */
    const char *sql;  /* the whole file */
};

/* Ordered by version, terminated by an entry with version 0. */
extern const struct db_migration db_migrations[];

#endif
