/* join.c - the store's writes inside a thread's open transaction (db.h db_join). */
#include "db/backend.h"

static __thread const struct db *join_db;
static __thread struct db_conn *join_conn;

void db_join(struct db *db, struct db_conn *conn)
{
    join_db = db;
    join_conn = conn;
}

void db_unjoin(void)
{
    join_db = NULL;
    join_conn = NULL;
}

struct db_conn *db_joined(const struct db *db)
{
    return db && db == join_db ? join_conn : NULL;
}
