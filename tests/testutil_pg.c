/*
 * testutil_pg.c - the PostgreSQL server of the tests (testutil.h): its URI
 * from the ctest fixture "pg" (scripts/pg.sh), a fresh database per test,
 * and raw SQL on a connection of the test's own.
 */
#include "tests/testutil.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t pg_lock = PTHREAD_MUTEX_INITIALIZER;
static char pg_uri[1024];
static char pg_reason[1024];

/* Read the first line of dir/name into buf; 0 when there was one. */
static int read_line(const char *dir, const char *name, char *buf, size_t size)
{
    char *path = tu_path(dir, name);
    char *text = tu_read_file(path);
    free(path);
    if (!text)
        return -1;
    text[strcspn(text, "\r\n")] = '\0';
    snprintf(buf, size, "%s", text);
    free(text);
    return buf[0] ? 0 : -1;
}

static void find_server(void)
{
    const char *env = getenv("ASSENT_TEST_PG_URI");
    if (env && *env) {
        snprintf(pg_uri, sizeof pg_uri, "%s", env);
        return;
    }
    const char *dir = getenv("ASSENT_TEST_PG_DIR");
    if (!dir || !*dir) {
        snprintf(pg_reason, sizeof pg_reason,
                 "neither ASSENT_TEST_PG_URI nor ASSENT_TEST_PG_DIR is set: run this test "
                 "through ctest (its fixture \"pg\" starts a server with scripts/pg.sh), or "
                 "under scripts/pg.sh run -- ...");
        return;
    }
    if (read_line(dir, "uri", pg_uri, sizeof pg_uri) != 0) {
        char why[900] = "";
        if (read_line(dir, "error", why, sizeof why) != 0)
            snprintf(why, sizeof why, "%s/uri is missing: did the ctest fixture pg.start run?",
                     dir);
        snprintf(pg_reason, sizeof pg_reason, "no PostgreSQL test server: %s", why);
        pg_uri[0] = '\0';
        return;
    }
    char *pgpass = tu_path(dir, "pgpass");
    setenv("PGPASSFILE", pgpass, 1);
    free(pgpass);
}

const char *tu_pg_uri(void)
{
    pthread_mutex_lock(&pg_lock);
    if (!pg_uri[0] && !pg_reason[0])
        find_server();
    pthread_mutex_unlock(&pg_lock);
    if (!pg_uri[0])
        fail_msg("%s", pg_reason);
    return pg_uri;
}

/* "database ... does not exist, skipping" and the like: not for stderr. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *connect_or_fail(const char *uri)
{
    PGconn *c = PQconnectdb(uri);
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
        PQfinish(c);
        fail_msg("cannot connect to the PostgreSQL test server (%s): %s", uri, msg);
    }
    PQsetNoticeProcessor(c, ignore_notice, NULL);
    return c;
}

void tu_pg_exec(const char *uri, const char *sql)
{
    PGconn *c = connect_or_fail(uri);
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(c);
        fail_msg("SQL failed: %s: %s", sql, msg);
    }
    PQclear(r);
    PQfinish(c);
}

char *tu_pg_query(const char *uri, const char *sql)
{
    PGconn *c = connect_or_fail(uri);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(c);
        fail_msg("SQL failed: %s: %s", sql, msg);
    }
    char *v = NULL;
    if (PQntuples(r) > 0 && PQnfields(r) > 0)
        v = strdup(PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return v;
}

/* base with its database replaced by dbname, malloc'd. */
static char *uri_with_db(const char *base, const char *dbname)
{
    size_t size = strlen(base) + strlen(dbname) + 16;
    char *out = malloc(size);
    assert_non_null(out);
    if (strncmp(base, "postgresql://", 13) == 0 || strncmp(base, "postgres://", 11) == 0) {
        const char *authority = strstr(base, "//") + 2;
        const char *path = strchr(authority, '/');
        const char *query = strchr(authority, '?');
        if (path && query && query < path)
            path = NULL;
        size_t keep = path ? (size_t)(path - base) : query ? (size_t)(query - base) : strlen(base);
        snprintf(out, size, "%.*s/%s%s", (int)keep, base, dbname, query ? query : "");
    } else {
        /* key=value: a later keyword wins. */
        snprintf(out, size, "%s dbname=%s", base, dbname);
    }
    return out;
}

/* The database name a URI made by tu_pg_db_new ends in, into buf. */
static const char *db_name_of(const char *uri, char *buf, size_t size)
{
    const char *p = strstr(uri, "dbname=");
    if (p)
        p += 7;
    else {
        p = strrchr(uri, '/');
        p = p ? p + 1 : uri;
    }
    snprintf(buf, size, "%.*s", (int)strcspn(p, "? "), p);
    return buf;
}

char *tu_pg_db_new(const char *tag)
{
    static int counter;
    const char *base = tu_pg_uri();
    char name[64], sql[128];
    pthread_mutex_lock(&pg_lock);
    int n = ++counter;
    pthread_mutex_unlock(&pg_lock);
    snprintf(name, sizeof name, "t_%.20s_%ld_%d", tag, (long)getpid(), n);
    for (char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            *p = '_';
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    tu_pg_exec(base, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    tu_pg_exec(base, sql);
    return uri_with_db(base, name);
}

void tu_pg_db_drop(char *uri)
{
    if (!uri)
        return;
    char name[128], sql[256];
    db_name_of(uri, name, sizeof name);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    tu_pg_exec(tu_pg_uri(), sql);
    free(uri);
}
