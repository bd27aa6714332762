/* db.c - SQLite open, migrations, the single writer and the reader pool
 * (db_sqlite_backend's entries of db/db.h; db_open() chooses the backend). */
#include "db/db.h"
#include "db/sqlite/sqlite.h"
#include "base/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/sqlite/migrations.h"
#include "base/log.h"
#include "base/secret_file.h"

#define STMT_CACHE_SIZE 256
#define MAX_READERS 64

struct stmt_slot {
    uint64_t hash;   /* FNV-1a of the text; 0 = empty bucket */
    char *sql;       /* our own copy of the text: the key */
    sqlite3_stmt *st;
};

struct db_conn {
    struct db_head head; /* first: the dispatch reads it (db/backend.h) */
    sqlite3 *h;
    int n_stmts;
    /* Open addressing, twice the capacity so probes stay short.  The
     * dispatcher looks up several statements per step: a linear scan with
     * strcmp cost more than the statements' own bookkeeping. */
    struct stmt_slot stmts[2 * STMT_CACHE_SIZE];
    struct db_conn *next_free;
};

struct db {
    struct db_head head; /* first: the dispatch reads it (db/backend.h) */
    char *path;
    char synchronous[8];
    pthread_mutex_t write_lock;
    struct db_conn *writer;
    pthread_mutex_t pool_lock;
    struct db_conn *free_readers;
    struct db_conn *all_readers[MAX_READERS];
    int n_readers;
};

enum as_code db_error(struct db_conn *conn, const char *what, struct as_err *err)
{
    return as_errf(err, AS_EDB, "%s: (%d) %s", what, sqlite3_extended_errcode(conn->h),
                   sqlite3_errmsg(conn->h));
}

sqlite3 *db_conn_handle(struct db_conn *conn)
{
    return conn->h;
}

const char *db_col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

void db_bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

void db_bind_nonempty_or_null(sqlite3_stmt *st, int i, const char *s)
{
    db_bind_text_or_null(st, i, s && *s ? s : NULL);
}

enum as_code db_step_done(struct db_conn *conn, sqlite3_stmt *st, const char *what,
                          struct as_err *err)
{
    int r = sqlite3_step(st);
    enum as_code rc = AS_OK;
    if (r != SQLITE_DONE && r != SQLITE_ROW)
        rc = db_error(conn, what, err);
    db_stmt_done(st);
    return rc;
}

enum as_code db_exec(struct db_conn *conn, const char *sql, struct as_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(conn->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        enum as_code rc = as_errf(err, AS_EDB, "(%d) %s", sqlite3_extended_errcode(conn->h),
                                  msg ? msg : sqlite3_errmsg(conn->h));
        sqlite3_free(msg);
        return rc;
    }
    return AS_OK;
}

/* ROLLBACK after a failure: nothing more can be done if it fails too, and
 * SQLite has then already rolled back on its own. */
static void rollback_quiet(struct db_conn *conn)
{
    sqlite3_exec(conn->h, "ROLLBACK", NULL, NULL, NULL);
}


sqlite3_stmt *db_stmt(struct db_conn *conn, const char *sql, struct as_err *err)
{
    const size_t mask = 2 * STMT_CACHE_SIZE - 1;
    uint64_t h = db_sql_hash(sql);
    size_t i = (size_t)h & mask;
    for (; conn->stmts[i].hash; i = (i + 1) & mask) {
        struct stmt_slot *s = &conn->stmts[i];
        if (s->hash == h && strcmp(s->sql, sql) == 0) {
            /* db_stmt_done() normally reset it already; a caller that
             * returned early may not have. */
            if (sqlite3_stmt_busy(s->st))
                sqlite3_reset(s->st);
            sqlite3_clear_bindings(s->st);
            return s->st;
        }
    }
    if (conn->n_stmts >= STMT_CACHE_SIZE) {
        /* A programmer added too many distinct statements. */
        LOG_ERROR("db", "statement cache full (%d); raise STMT_CACHE_SIZE", STMT_CACHE_SIZE);
        as_errf(err, AS_ELIMIT, "statement cache full");
        return NULL;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(conn->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        db_error(conn, "prepare", err);
        return NULL;
    }
    char *copy = strdup(sql);
    if (!copy) {
        sqlite3_finalize(st);
        as_errf(err, AS_ENOMEM, "out of memory");
        return NULL;
    }
    conn->stmts[i] = (struct stmt_slot){.hash = h, .sql = copy, .st = st};
    conn->n_stmts++;
    return st;
}

void db_stmt_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

static void conn_close(struct db_conn *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < 2 * STMT_CACHE_SIZE; i++) {
        if (c->stmts[i].hash) {
            sqlite3_finalize(c->stmts[i].st);
            free(c->stmts[i].sql);
        }
    }
    sqlite3_close(c->h);
    free(c);
}

/* SQLite's memory statistics take a global mutex on every allocation (a few
 * per statement); nothing here reads them.  Must precede the first open. */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); /* SQLITE_MISUSE if already initialised: harmless */
    sqlite3_initialize();
}

static enum as_code conn_open(struct db *db, int readonly, struct db_conn **out, struct as_err *err)
{
    pthread_once(&sqlite_once, sqlite_setup);
    struct db_conn *c = calloc(1, sizeof *c);
    if (!c)
        return as_errf(err, AS_ENOMEM, "out of memory");
    c->head.backend = &db_sqlite_backend;
    int flags = SQLITE_OPEN_NOMUTEX | (readonly ? SQLITE_OPEN_READONLY
                                                 : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(db->path, &c->h, flags, NULL) != SQLITE_OK) {
        enum as_code rc = as_errf(err, AS_EDB, "%s: %s", db->path,
                                  c->h ? sqlite3_errmsg(c->h) : "cannot open");
        conn_close(c);
        return rc;
    }
    sqlite3_busy_timeout(c->h, 10000);
    sqlite3_extended_result_codes(c->h, 1);
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "%sPRAGMA synchronous=%s; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;",
             readonly ? "" : "PRAGMA journal_mode=WAL; ", db->synchronous);
    /* Switching a new file to WAL needs an exclusive lock, and SQLite does
     * not wait for one (its busy handler is skipped where waiting could
     * deadlock) while another process is creating the same database: wait
     * here instead, bounded, so that two commands started together on a new
     * file both open it. */
    enum as_code rc;
    int64_t started = time_mono_ms();
    for (;;) {
        rc = db_exec(c, pragmas, err);
        int code = sqlite3_errcode(c->h) & 0xff;
        if (!rc || (code != SQLITE_BUSY && code != SQLITE_LOCKED) ||
            time_mono_ms() - started > 60000)
            break;
        memset(err, 0, sizeof *err);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (rc) {
        as_err_prefix(err, "%s", db->path);
        conn_close(c);
        return rc;
    }
    *out = c;
    return AS_OK;
}

static enum as_code migrate(struct db *db, struct as_err *err)
{
    struct db_conn *c = db->writer;
    for (const struct db_migration *m = db_migrations; m->version; m++) {
        enum as_code rc = db_exec(c, "BEGIN IMMEDIATE", err);
        if (rc)
            return rc;
        sqlite3_stmt *st = NULL;
        int current = 0;
        if (sqlite3_prepare_v2(c->h, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            current = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (current >= m->version) {
            rc = db_exec(c, "COMMIT", err);
            if (rc)
                return rc;
            continue;
        }
        /* The migration and its version bump commit together, so a crash
         * leaves the schema either before or after it, never half-way. */
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version=%d", m->version);
        rc = db_exec(c, m->sql, err);
        if (!rc)
            rc = db_exec(c, bump, err);
        if (rc) {
            as_err_prefix(err, "migration %s", m->name);
            rollback_quiet(c);
            return rc;
        }
        rc = db_exec(c, "COMMIT", err);
        if (rc)
            return rc;
        LOG_DEBUG("db", "applied migration %s", m->name);
    }
    return AS_OK;
}

/*
 * The database holds approver addresses, comments, client addresses and the
 * CSRF HMAC secret, so everything Assent creates for it is private whatever
 * the umask: the folders 0700, the file 0600.  SQLite would create the file
 * 0644 less the umask; it gives the -wal, -shm and -journal files it creates
 * later the mode of the database file (and sets it exactly, umask or not),
 * so creating the file ourselves first covers all four.  Existing folders
 * and files are left as they are, with a warning when others can read them.
 */
static enum as_code make_parent_dir(const char *path, struct as_err *err)
{
    char dir[4096];
    if ((size_t)snprintf(dir, sizeof dir, "%s", path) >= sizeof dir)
        return as_errf(err, AS_EINVAL, "database path too long");
    char *slash = strrchr(dir, '/');
    if (!slash) {
        secret_dir_warn(".", "the database");
        return AS_OK;
    }
    if (slash == dir) {
        secret_dir_warn("/", "the database");
        return AS_OK;
    }
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(dir, 0700) != 0 && errno != EEXIST)
                return as_errf(err, AS_EIO, "mkdir %s: %s", dir, strerror(errno));
            *p = '/';
        }
    }
    if (mkdir(dir, 0700) == 0)
        return AS_OK;
    if (errno != EEXIST)
        return as_errf(err, AS_EIO, "mkdir %s: %s", dir, strerror(errno));
    secret_dir_warn(dir, "the database");
    return AS_OK;
}

static enum as_code create_db_file(const char *path, struct as_err *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        struct stat st;
        if (errno != EEXIST)
            return as_errf(err, AS_EIO, "%s: %s", path, strerror(errno));
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & (S_IRWXG | S_IRWXO)))
            LOG_WARN("files", "database %s can be read by group or others (mode %03o); run: chmod 600 %s*",
                     path, (unsigned)(st.st_mode & 0777), path);
        return AS_OK;
    }
    /* The umask can only have removed bits; set exactly 0600 all the same. */
    enum as_code rc = AS_OK;
    if (fchmod(fd, 0600) != 0)
        rc = as_errf(err, AS_EIO, "%s: chmod: %s", path, strerror(errno));
    close(fd);
    return rc;
}

enum as_code db_sqlite_open(const char *path, const struct db_options *opts, struct db **out,
                            struct as_err *err)
{
    enum as_code rc;
    const char *synchronous = opts->synchronous;
    *out = NULL;
    if (!synchronous || (strcmp(synchronous, "NORMAL") && strcmp(synchronous, "FULL")))
        return as_errf(err, AS_EINVAL, "synchronous must be NORMAL or FULL");
    if (strcmp(path, ":memory:") == 0)
        return as_errf(err, AS_EINVAL, "Assent needs a database file, not :memory:");
    rc = make_parent_dir(path, err);
    if (!rc)
        rc = create_db_file(path, err);
    if (rc)
        return rc;
    struct db *db = calloc(1, sizeof *db);
    if (!db)
        return as_errf(err, AS_ENOMEM, "out of memory");
    db->head.backend = &db_sqlite_backend;
    db->path = strdup(path);
    snprintf(db->synchronous, sizeof db->synchronous, "%s", synchronous);
    pthread_mutex_init(&db->write_lock, NULL);
    pthread_mutex_init(&db->pool_lock, NULL);
    if (!db->path) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto fail;
    }
    rc = conn_open(db, 0, &db->writer, err);
    if (rc)
        goto fail;
    rc = migrate(db, err);
    if (rc)
        goto fail;
    *out = db;
    return AS_OK;
fail:
    db_sqlite_close(db);
    return rc;
}

void db_sqlite_close(struct db *db)
{
    if (!db)
        return;
    for (int i = 0; i < db->n_readers; i++)
        conn_close(db->all_readers[i]);
    if (db->writer) {
        /* Fold the WAL back so the file is self-contained after a clean stop. */
        sqlite3_wal_checkpoint_v2(db->writer->h, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        conn_close(db->writer);
    }
    pthread_mutex_destroy(&db->write_lock);
    pthread_mutex_destroy(&db->pool_lock);
    free(db->path);
    free(db);
}

const char *db_sqlite_path(const struct db *db)
{
    return db->path;
}

int db_sqlite_schema_version(struct db *db)
{
    int v = -1;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&db->write_lock);
    if (sqlite3_prepare_v2(db->writer->h, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->write_lock);
    return v;
}

enum as_code db_sqlite_write_begin(struct db *db, struct db_conn **conn, struct as_err *err)
{
    if ((*conn = db_joined(db))) /* inside this thread's open one (db_join) */
        return AS_OK;
    pthread_mutex_lock(&db->write_lock);
    sqlite3_stmt *st = db_stmt(db->writer, "BEGIN IMMEDIATE", err);
    if (!st) {
        pthread_mutex_unlock(&db->write_lock);
        return AS_EDB;
    }
    if (sqlite3_step(st) != SQLITE_DONE) {
        enum as_code rc = db_error(db->writer, "BEGIN IMMEDIATE", err);
        db_stmt_done(st);
        pthread_mutex_unlock(&db->write_lock);
        return rc;
    }
    db_stmt_done(st);
    *conn = db->writer;
    return AS_OK;
}

enum as_code db_write_commit(struct db *db, struct as_err *err)
{
    enum as_code rc = AS_OK;
    if (db_joined(db))
        return AS_OK; /* the joined transaction commits */
    sqlite3_stmt *st = db_stmt(db->writer, "COMMIT", err);
    if (!st) {
        rc = AS_EDB;
    } else if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_error(db->writer, "COMMIT", err);
    }
    db_stmt_done(st);
    if (rc && !sqlite3_get_autocommit(db->writer->h))
        rollback_quiet(db->writer);
    pthread_mutex_unlock(&db->write_lock);
    return rc;
}

void db_write_rollback(struct db *db)
{
    if (db_joined(db))
        return; /* the joiner undoes what failed */
    if (!sqlite3_get_autocommit(db->writer->h))
        rollback_quiet(db->writer);
    pthread_mutex_unlock(&db->write_lock);
}

enum as_code db_sqlite_write_end(struct db *db, enum as_code rc, struct as_err *err)
{
    if (rc) {
        db_write_rollback(db);
        return rc;
    }
    return db_write_commit(db, err);
}

enum as_code db_sqlite_read_begin(struct db *db, struct db_conn **conn, struct as_err *err)
{
    pthread_mutex_lock(&db->pool_lock);
    struct db_conn *c = db->free_readers;
    if (c) {
        db->free_readers = c->next_free;
        pthread_mutex_unlock(&db->pool_lock);
        *conn = c;
        return AS_OK;
    }
    if (db->n_readers >= MAX_READERS) {
        pthread_mutex_unlock(&db->pool_lock);
        return as_errf(err, AS_ELIMIT, "more than %d concurrent readers", MAX_READERS);
    }
    enum as_code rc = conn_open(db, 0, &c, err);
    if (!rc)
        db->all_readers[db->n_readers++] = c;
    pthread_mutex_unlock(&db->pool_lock);
    if (!rc)
        *conn = c;
    return rc;
}

enum as_code db_read_stmt(struct db *db, const char *sql, struct db_conn **conn,
                          sqlite3_stmt **st, struct as_err *err)
{
    enum as_code rc = db_sqlite_read_begin(db, conn, err);
    if (rc)
        return rc;
    *st = db_stmt(*conn, sql, err);
    if (!*st) {
        db_sqlite_read_end(db, *conn);
        return AS_EDB;
    }
    return AS_OK;
}

void db_sqlite_read_end(struct db *db, struct db_conn *conn)
{
    if (!conn)
        return;
    /* A reader may have left a statement mid-iteration; resetting ends the
     * implicit read transaction so the WAL can be checkpointed. */
    for (size_t i = 0; i < 2 * STMT_CACHE_SIZE; i++)
        if (conn->stmts[i].hash)
            sqlite3_reset(conn->stmts[i].st);
    pthread_mutex_lock(&db->pool_lock);
    conn->next_free = db->free_readers;
    db->free_readers = conn;
    pthread_mutex_unlock(&db->pool_lock);
}

enum as_code db_sqlite_ping(struct db *db, struct as_err *err)
{
    struct db_conn *c = NULL;
    sqlite3_stmt *st = NULL;
    enum as_code rc = db_read_stmt(db, "SELECT 1", &c, &st, err);
    if (rc)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW)
        rc = db_error(c, "ping", err);
    db_stmt_done(st);
    db_read_end(db, c);
    return rc;
}

/* Savepoints through the statement cache: a decision in the engine's group
 * commit takes two of them, so they are prepared once. */
enum as_code db_sqlite_savepoint_begin(struct db_conn *conn, struct as_err *err)
{
    sqlite3_stmt *st = db_stmt(conn, "SAVEPOINT part", err);
    return st ? db_step_done(conn, st, "savepoint", err) : AS_EDB;
}

enum as_code db_sqlite_savepoint_end(struct db_conn *conn, enum as_code rc, struct as_err *err)
{
    if (rc == AS_OK) {
        sqlite3_stmt *st = db_stmt(conn, "RELEASE part", err);
        return st ? db_step_done(conn, st, "release savepoint", err) : AS_EDB;
    }
    struct as_err e2 = {0};
    /* Undo the part; the transaction itself goes on. */
    if (db_exec(conn, "ROLLBACK TO part; RELEASE part", &e2) != AS_OK)
        LOG_ERROR("db", "cannot roll back to a savepoint: %s", e2.msg);
    return rc;
}
