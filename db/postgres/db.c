/*
 * db.c - the PostgreSQL store's connections: opening (the connection string,
 * the password file, the migrations under an advisory lock), the pool,
 * transactions, and the statement helpers of pg.h.
 */
#include "db/postgres/pg.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/postgres/migrations.h"
#include "base/log.h"
#include "base/secret_file.h"

/* The key of the session advisory lock the migrations run under: "Assent"
 * in ASCII, a constant no other user of the database is expected to take. */
#define MIGRATION_LOCK_KEY "71964113071732"

/* libpq's messages end in a newline and may continue on tab-indented
 * lines; ours are one line. */
static void one_line(const char *msg, char *buf, size_t size)
{
    size_t o = 0;
    int space = 0;
    for (const char *p = msg ? msg : ""; *p && o + 1 < size; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
            space = o > 0;
            continue;
        }
        if (space && o + 2 < size)
            buf[o++] = ' ';
        space = 0;
        buf[o++] = *p;
    }
    buf[o] = '\0';
}

static enum as_code oom(struct as_err *err)
{
    return as_errf(err, AS_ENOMEM, "out of memory");
}

/* ---- statements ------------------------------------------------------------ */

void pg_arg_text(struct pg_args *a, const char *s)
{
    assert(a->n < PG_MAX_ARGS);
    a->v[a->n++] = s;
}

void pg_arg_nonempty(struct pg_args *a, const char *s)
{
    pg_arg_text(a, s && *s ? s : NULL);
}

void pg_arg_i64(struct pg_args *a, int64_t v)
{
    assert(a->n < PG_MAX_ARGS);
    snprintf(a->num[a->n], sizeof a->num[a->n], "%" PRId64, v);
    a->v[a->n] = a->num[a->n];
    a->n++;
}

int64_t pg_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

const char *pg_text(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col);
}

char *pg_dup(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

int pg_isnull(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col);
}

int pg_unique_violation(const struct db_conn *c)
{
    return strcmp(c->sqlstate, "23505") == 0;
}

/* Record the failure of a statement: AS_EDB "what: message", its SQLSTATE,
 * and whether the connection is gone. */
static enum as_code statement_error(struct db_conn *c, const PGresult *r, const char *what,
                                    struct as_err *err)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(c->sqlstate, sizeof c->sqlstate, "%s", state ? state : "");
    if (PQstatus(c->pg) != CONNECTION_OK)
        c->broken = 1;
    char msg[900];
    one_line(r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : PQerrorMessage(c->pg), msg,
             sizeof msg);
    return as_errf(err, AS_EDB, "%s: %s", what, msg);
}


/* The name of sql prepared on c, preparing it on first use; NULL on error. */
static const char *stmt_name(struct db_conn *c, const char *sql, const char *what,
                             struct as_err *err)
{
    const size_t mask = 2 * PG_STMT_CACHE - 1;
    uint64_t h = db_sql_hash(sql);
    size_t i = (size_t)h & mask;
    for (; c->stmts[i].hash; i = (i + 1) & mask)
        if (c->stmts[i].hash == h && strcmp(c->stmts[i].sql, sql) == 0)
            return c->stmts[i].name;
    if (c->n_stmts >= PG_STMT_CACHE) {
        /* A programmer added too many distinct statements. */
        LOG_ERROR("db", "PostgreSQL statement cache full (%d); raise PG_STMT_CACHE", PG_STMT_CACHE);
        as_errf(err, AS_ELIMIT, "statement cache full");
        return NULL;
    }
    struct pg_stmt *s = &c->stmts[i];
    snprintf(s->name, sizeof s->name, "s%d", c->n_stmts + 1);
    PGresult *r = PQprepare(c->pg, s->name, sql, 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        statement_error(c, r, what, err);
        as_err_prefix(err, "prepare");
        PQclear(r);
        s->name[0] = '\0';
        return NULL;
    }
    PQclear(r);
    s->sql = strdup(sql);
    if (!s->sql) {
        /* Prepared but not remembered: the name is taken on the server, so
         * the connection cannot be trusted with the next one. */
        c->broken = 1;
        oom(err);
        return NULL;
    }
    s->hash = h;
    c->n_stmts++;
    return s->name;
}

PGresult *pg_run(struct db_conn *c, const char *sql, const struct pg_args *a, const char *what,
                 struct as_err *err)
{
    const char *name = stmt_name(c, sql, what, err);
    if (!name)
        return NULL;
    PGresult *r = PQexecPrepared(c->pg, name, a ? a->n : 0, a ? a->v : NULL, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        c->sqlstate[0] = '\0';
        return r;
    }
    statement_error(c, r, what, err);
    PQclear(r);
    return NULL;
}

enum as_code pg_do(struct db_conn *c, const char *sql, const struct pg_args *a, const char *what,
                   int64_t *changed, struct as_err *err)
{
    PGresult *r = pg_run(c, sql, a, what, err);
    if (!r)
        return AS_EDB;
    if (changed)
        *changed = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return AS_OK;
}

enum as_code pg_each(struct db_conn *c, const char *sql, const struct pg_args *a,
                     int (*row)(void *ud, const PGresult *res, int i), void *ud, const char *what,
                     struct as_err *err)
{
    PGresult *r = pg_run(c, sql, a, what, err);
    if (!r)
        return AS_EDB;
    for (int i = 0, n = PQntuples(r); i < n; i++)
        if (row(ud, r, i))
            break;
    PQclear(r);
    return AS_OK;
}

enum as_code pg_each_stream(struct db_conn *c, const char *sql, const struct pg_args *a,
                            int (*row)(void *ud, const PGresult *res, int i), void *ud,
                            const char *what, struct as_err *err)
{
    const char *name = stmt_name(c, sql, what, err);
    if (!name)
        return AS_EDB;
    if (!PQsendQueryPrepared(c->pg, name, a ? a->n : 0, a ? a->v : NULL, NULL, NULL, 0))
        return statement_error(c, NULL, what, err);
    /* Cannot fail right after a send; were it to, the rows come in one result. */
    (void)PQsetSingleRowMode(c->pg);
    enum as_code rc = AS_OK;
    int stop = 0;
    PGresult *r;
    /* Every result is read, also after row() stopped: the connection is
     * usable again only when the statement has ended. */
    while ((r = PQgetResult(c->pg)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
            for (int i = 0, n = PQntuples(r); i < n && !stop && !rc; i++)
                stop = row(ud, r, i);
        } else if (st != PGRES_COMMAND_OK && !rc) {
            rc = statement_error(c, r, what, err);
        }
        PQclear(r);
    }
    if (!rc)
        c->sqlstate[0] = '\0';
    return rc;
}

enum as_code pg_exec(struct db_conn *c, const char *sql, const char *what, struct as_err *err)
{
    PGresult *r = PQexec(c->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    enum as_code rc = AS_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = statement_error(c, r, what, err);
    PQclear(r);
    return rc;
}

enum as_code pg_instance_id(struct db_conn *c, char *out, size_t size, struct as_err *err)
{
    struct db *db = c->db;
    pthread_mutex_lock(&db->instance_lock);
    if (db->instance_id[0]) {
        snprintf(out, size, "%s", db->instance_id);
        pthread_mutex_unlock(&db->instance_lock);
        return AS_OK;
    }
    pthread_mutex_unlock(&db->instance_lock);
    PGresult *r = pg_run(c, "SELECT value FROM meta WHERE key = 'instance_id'", NULL,
                         "read instance id", err);
    if (!r)
        return AS_EDB;
    enum as_code rc = AS_OK;
    if (PQntuples(r) == 1) {
        snprintf(out, size, "%s", pg_text(r, 0, 0));
        pthread_mutex_lock(&db->instance_lock);
        snprintf(db->instance_id, sizeof db->instance_id, "%s", out);
        pthread_mutex_unlock(&db->instance_lock);
    } else {
        rc = as_errf(err, AS_EDB, "read instance id: the meta table has none");
    }
    PQclear(r);
    return rc;
}

/* ---- connections ------------------------------------------------------------ */

/* Server notices ("relation ... already exists, skipping") go to the debug
 * log instead of libpq's default, stderr. */
static void notice_to_log(void *arg, const char *message)
{
    (void)arg;
    char line[512];
    one_line(message, line, sizeof line);
    LOG_DEBUG("db", "PostgreSQL: %s", line);
}

static void conn_close(struct db_conn *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < 2 * PG_STMT_CACHE; i++)
        free(c->stmts[i].sql);
    PQfinish(c->pg);
    free(c);
}

enum as_code pg_connect(struct db *db, PGconn **out, struct as_err *err)
{
    *out = NULL;
    /* Keywords are applied in order, so the connection string (dbname,
     * expanded) overrides the timeout before it; the password file's
     * password and the encoding after it are ours. */
    const char *keys[8], *vals[8];
    int n = 0;
    keys[n] = "connect_timeout", vals[n++] = "10";
    keys[n] = "dbname", vals[n++] = db->conninfo;
    keys[n] = "fallback_application_name", vals[n++] = "assent";
    keys[n] = "client_encoding", vals[n++] = "UTF8";
    if (db->password)
        keys[n] = "password", vals[n++] = db->password;
    keys[n] = NULL, vals[n] = NULL;
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg)
        return oom(err);
    if (PQstatus(pg) != CONNECTION_OK) {
        char msg[900];
        one_line(PQerrorMessage(pg), msg, sizeof msg);
        PQfinish(pg);
        return as_errf(err, AS_EDB, "cannot connect to PostgreSQL at %s: %s", db->where, msg);
    }
    PQsetNoticeProcessor(pg, notice_to_log, NULL);
    *out = pg;
    return AS_OK;
}

static enum as_code conn_open(struct db *db, struct db_conn **out, struct as_err *err)
{
    PGconn *pg = NULL;
    enum as_code rc = pg_connect(db, &pg, err);
    if (rc)
        return rc;
    struct db_conn *c = calloc(1, sizeof *c);
    if (!c) {
        PQfinish(pg);
        return oom(err);
    }
    c->head.backend = &db_pg_backend;
    c->db = db;
    c->pg = pg;
    *out = c;
    return AS_OK;
}

/* Lend a connection: an idle one, else a new one (at most PG_MAX_CONNS). */
static enum as_code conn_get(struct db *db, struct db_conn **out, struct as_err *err)
{
    pthread_mutex_lock(&db->lock);
    struct db_conn *c = db->idle;
    if (c) {
        db->idle = c->next_idle;
        c->next_idle = NULL;
        pthread_mutex_unlock(&db->lock);
        *out = c;
        return AS_OK;
    }
    if (db->n_conns >= PG_MAX_CONNS) {
        pthread_mutex_unlock(&db->lock);
        return as_errf(err, AS_ELIMIT, "more than %d concurrent PostgreSQL connections",
                       PG_MAX_CONNS);
    }
    db->n_conns++;
    pthread_mutex_unlock(&db->lock);
    enum as_code rc = conn_open(db, out, err);
    if (rc) {
        pthread_mutex_lock(&db->lock);
        db->n_conns--;
        pthread_mutex_unlock(&db->lock);
    }
    return rc;
}

/* Take a connection back; one that failed is closed (the next is new). */
static void conn_put(struct db *db, struct db_conn *c)
{
    if (c->broken || PQstatus(c->pg) != CONNECTION_OK ||
        PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        conn_close(c);
        pthread_mutex_lock(&db->lock);
        db->n_conns--;
        pthread_mutex_unlock(&db->lock);
        return;
    }
    pthread_mutex_lock(&db->lock);
    c->next_idle = db->idle;
    db->idle = c;
    pthread_mutex_unlock(&db->lock);
}

/* ---- opening ---------------------------------------------------------------- */

/*
 * Check the connection string and describe where it points for messages
 * ("host:port, database D, user U"; libpq's defaults where it names none).
 */
static enum as_code parse_conninfo(struct db *db, const char *path, struct as_err *err)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(path, &msg);
    if (!opts) {
        char shown[512], why[512];
        db_display_name(path, shown, sizeof shown);
        one_line(msg ? msg : "out of memory", why, sizeof why);
        PQfreemem(msg);
        return as_errf(err, AS_EINVAL, "invalid PostgreSQL connection string \"%s\": %s", shown,
                       why);
    }
    const char *host = NULL, *hostaddr = NULL, *port = NULL, *dbname = NULL, *user = NULL;
    int has_password = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (strcmp(o->keyword, "password") == 0)
            has_password = 1;
        else if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            dbname = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
    }
    if (!host)
        host = hostaddr ? hostaddr : getenv("PGHOST");
    if (!port)
        port = getenv("PGPORT");
    if (!user)
        user = getenv("PGUSER");
    if (!dbname)
        dbname = getenv("PGDATABASE");
    snprintf(db->where, sizeof db->where, "%s:%s, database %s, user %s",
             host && *host ? host : "the local socket", port && *port ? port : "5432",
             dbname && *dbname ? dbname : user && *user ? user : "(the user's)",
             user && *user ? user : "(the login name)");
    PQconninfoFree(opts);
    if (has_password)
        return as_errf(err, AS_EINVAL,
                       "the PostgreSQL connection string holds a password: put it in a password "
                       "file instead (config db_password_file, PGPASSFILE or ~/.pgpass)");
    return AS_OK;
}

/*
 * Apply pending migrations, each in its own transaction with its version,
 * under a session advisory lock: nodes that start at once wait for each
 * other, and the later ones find nothing left to do.
 */
static enum as_code migrate(struct db_conn *c, struct as_err *err)
{
    enum as_code rc = pg_exec(c, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")",
                              "take the migration lock", err);
    if (rc)
        return rc;
    rc = pg_exec(c,
                 "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL); "
                 "INSERT INTO schema_version (version) SELECT 0 "
                 "WHERE NOT EXISTS (SELECT 1 FROM schema_version)",
                 "create schema_version", err);
    int current = 0;
    if (!rc) {
        PGresult *r = PQexec(c->pg, "SELECT max(version) FROM schema_version");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            current = (int)pg_i64(r, 0, 0);
        else
            rc = statement_error(c, r, "read schema version", err);
        PQclear(r);
    }
    for (const struct db_migration *m = db_pg_migrations; !rc && m->version; m++) {
        if (m->version <= current)
            continue;
        char bump[80];
        snprintf(bump, sizeof bump, "UPDATE schema_version SET version = %d", m->version);
        rc = pg_exec(c, "BEGIN", "BEGIN", err);
        if (!rc)
            rc = pg_exec(c, m->sql, m->name, err);
        if (!rc)
            rc = pg_exec(c, bump, "bump schema version", err);
        if (!rc)
            rc = pg_exec(c, "COMMIT", "COMMIT", err);
        if (rc) {
            struct as_err ignored = {0};
            as_err_prefix(err, "migration %s", m->name);
            if (pg_exec(c, "ROLLBACK", "ROLLBACK", &ignored) != AS_OK)
                c->broken = 1;
        } else {
            LOG_DEBUG("db", "applied PostgreSQL migration %s", m->name);
        }
    }
    struct as_err ignored = {0};
    /* Should the unlock fail, closing the session releases the lock. */
    if (pg_exec(c, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")", "release the lock",
                &ignored) != AS_OK)
        c->broken = 1;
    return rc;
}

enum as_code db_pg_open(const char *path, const struct db_options *opts, struct db **out,
                        struct as_err *err)
{
    *out = NULL;
    struct db *db = calloc(1, sizeof *db);
    if (!db)
        return oom(err);
    db->head.backend = &db_pg_backend;
    pthread_mutex_init(&db->lock, NULL);
    pthread_mutex_init(&db->instance_lock, NULL);
    enum as_code rc;
    if (pthread_key_create(&db->writer, NULL) != 0) {
        pthread_mutex_destroy(&db->lock);
        pthread_mutex_destroy(&db->instance_lock);
        free(db);
        return as_errf(err, AS_ELIMIT, "no thread-specific key left");
    }
    db->conninfo = strdup(path);
    if (!db->conninfo) {
        rc = oom(err);
        goto fail;
    }
    rc = parse_conninfo(db, path, err);
    if (rc)
        goto fail;
    if (opts && opts->password_file && *opts->password_file) {
        rc = secret_file_read(opts->password_file, 4096, 1, &db->password, NULL, err);
        if (rc) {
            /* A password file that cannot be used is a configuration error. */
            as_err_prefix(err, "db_password_file");
            rc = err ? (err->code = AS_EINVAL) : AS_EINVAL;
            goto fail;
        }
    }
    struct db_conn *c = NULL;
    rc = conn_get(db, &c, err);
    if (rc)
        goto fail;
    rc = migrate(c, err);
    conn_put(db, c);
    if (rc)
        goto fail;
    *out = db;
    return AS_OK;
fail:
    db_pg_close(db);
    return rc;
}

void db_pg_close(struct db *db)
{
    if (!db)
        return;
    /* No db_* call may be in flight, so every connection is idle. */
    while (db->idle) {
        struct db_conn *c = db->idle;
        db->idle = c->next_idle;
        conn_close(c);
    }
    pthread_key_delete(db->writer);
    pthread_mutex_destroy(&db->lock);
    pthread_mutex_destroy(&db->instance_lock);
    secret_free(db->password);
    free(db->conninfo);
    free(db);
}

const char *db_pg_path(const struct db *db)
{
    return db->conninfo;
}

int db_pg_schema_version(struct db *db)
{
    struct db_conn *c = NULL;
    struct as_err err = {0};
    if (conn_get(db, &c, &err) != AS_OK)
        return -1;
    int v = -1;
    PGresult *r = PQexec(c->pg, "SELECT max(version) FROM schema_version");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        v = (int)pg_i64(r, 0, 0);
    PQclear(r);
    conn_put(db, c);
    return v;
}

/* ---- transactions ----------------------------------------------------------- */

enum as_code db_pg_write_begin(struct db *db, struct db_conn **conn, struct as_err *err)
{
    struct db_conn *c = NULL;
    if ((*conn = db_joined(db))) /* inside this thread's open one (db_join) */
        return AS_OK;
    /* One write transaction per thread and store, as with SQLite's writer. */
    assert(pthread_getspecific(db->writer) == NULL);
    enum as_code rc = conn_get(db, &c, err);
    if (rc)
        return rc;
    rc = pg_exec(c, "BEGIN", "BEGIN", err);
    if (rc) {
        conn_put(db, c);
        return rc;
    }
    c->in_write = 1;
    c->chain_locked = 0;
    c->notify_due = 0;
    pthread_setspecific(db->writer, c);
    *conn = c;
    return AS_OK;
}

enum as_code db_pg_write_end(struct db *db, enum as_code rc, struct as_err *err)
{
    if (db_joined(db))
        return rc; /* the joined transaction commits, or its joiner undoes rc */
    struct db_conn *c = pthread_getspecific(db->writer);
    assert(c && c->in_write);
    pthread_setspecific(db->writer, NULL);
    /* Work made due here wakes every listening node (wakeups.c) when this
     * commits: NOTIFY is delivered at COMMIT, and not at all on ROLLBACK.
     * One round trip, only in such transactions. */
    if (!rc && c->notify_due && PQtransactionStatus(c->pg) == PQTRANS_INTRANS)
        rc = pg_exec(c, "NOTIFY " PG_WAKEUP_CHANNEL, "NOTIFY", err);
    if (rc) {
        struct as_err ignored = {0};
        if (pg_exec(c, "ROLLBACK", "ROLLBACK", &ignored) != AS_OK)
            c->broken = 1;
    } else {
        /* A transaction in which a statement failed ends in ROLLBACK even
         * when asked to COMMIT: say so instead of reporting a commit. */
        PGresult *r = PQexec(c->pg, "COMMIT");
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = statement_error(c, r, "COMMIT", err);
        else if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
            rc = as_errf(err, AS_EDB,
                         "COMMIT: the transaction was rolled back (a statement in it had failed)");
        PQclear(r);
    }
    c->in_write = 0;
    c->chain_locked = 0;
    c->notify_due = 0;
    conn_put(db, c);
    return rc;
}

enum as_code db_pg_read_begin(struct db *db, struct db_conn **conn, struct as_err *err)
{
    return conn_get(db, conn, err);
}

void db_pg_read_end(struct db *db, struct db_conn *conn)
{
    if (conn)
        conn_put(db, conn);
}

/* PostgreSQL checkpoints on its own: there is nothing to take over. */
enum as_code db_pg_checkpointer_start(struct db *db, struct db_checkpointer **out,
                                      struct as_err *err)
{
    *out = NULL;
    return AS_OK;
}

void db_pg_checkpointer_stop(struct db_checkpointer *ck)
{
    /* db_pg_checkpointer_start never makes one. */
}

enum as_code db_pg_ping(struct db *db, struct as_err *err)
{
    struct db_conn *c = NULL;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    rc = pg_exec(c, "SELECT 1", "ping", err);
    db_pg_read_end(db, c);
    return rc;
}

enum as_code db_pg_savepoint_begin(struct db_conn *conn, struct as_err *err)
{
    conn->sp_chain_locked = conn->chain_locked;
    conn->sp_chain_id = conn->chain_id;
    memcpy(conn->sp_chain_hash, conn->chain_hash, sizeof conn->sp_chain_hash);
    return pg_exec(conn, "SAVEPOINT part", "savepoint", err);
}

enum as_code db_pg_savepoint_end(struct db_conn *conn, enum as_code rc, struct as_err *err)
{
    if (rc == AS_OK)
        return pg_exec(conn, "RELEASE SAVEPOINT part", "release savepoint", err);
    struct as_err e2 = {0};
    /* Undo the part (a failed statement left the transaction aborted until
     * then); the transaction itself goes on. */
    if (pg_exec(conn, "ROLLBACK TO SAVEPOINT part", "roll back to savepoint", &e2) != AS_OK ||
        pg_exec(conn, "RELEASE SAVEPOINT part", "release savepoint", &e2) != AS_OK)
        LOG_ERROR("db", "cannot roll back to a savepoint: %s", e2.msg);
    /* The part's events are gone, and so is the chain's lock when the part
     * took it (a row lock of an aborted subtransaction is released): the
     * next append starts from the head as it was, or locks and reads it
     * again. */
    conn->chain_locked = conn->sp_chain_locked;
    conn->chain_id = conn->sp_chain_id;
    memcpy(conn->chain_hash, conn->sp_chain_hash, sizeof conn->chain_hash);
    return rc;
}
