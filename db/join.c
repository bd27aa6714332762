/* join.c - the store's writes inside a thread's open transaction (db.h db_join). */
#include "db/backend.h"

static __thread const struct db *join_db;
static __thread struct db_conn *join_conn;
static __thread struct db_event_chain *join_chain;

void db_join(struct db *db, struct db_conn *conn, struct db_event_chain *chain)
{
    join_db = db;
    join_conn = conn;
    join_chain = chain;
}

void db_unjoin(void)
{
    join_db = NULL;
    join_conn = NULL;
    join_chain = NULL;
}

struct db_conn *db_joined(const struct db *db)
{
    return db && db == join_db ? join_conn : NULL;
}

struct db_event_chain *db_joined_chain(const struct db_conn *conn)
{
    return conn && conn == join_conn ? join_chain : NULL;
}
