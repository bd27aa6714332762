/*
 * testing.c - the PostgreSQL store's operations for tests (contract in
 * db/db_testing.h; db/sqlite/db_testing.c is the SQLite dialect): a digest
 * of the workflow state and the crash state of an approver.
 */
#include "db/postgres/pg.h"

#include <inttypes.h>
#include <string.h>

#include "base/encode.h"

/* One statement, so one snapshot; ORDER BY makes the text deterministic and
 * COALESCE keeps an empty table from turning the whole text NULL.  The text
 * is not SQLite's (a digest is only ever compared with one of the same
 * store). */
static const char SQL_STATE[] =
    "SELECT"
    " COALESCE((SELECT string_agg(id || ':' || status || ':' || COALESCE(decided_at::text, '')"
    "   || ':' || COALESCE(decided_by, '') || ':' || reminders_sent || ':'"
    "   || COALESCE(next_reminder_at::text, '') || ':' || resume_pending, ';' ORDER BY id)"
    "   FROM approvals), '')"
    " || '|' || COALESCE((SELECT string_agg(id || ':' || status || ':'"
    "   || COALESCE(sent_at::text, '') || ':' || n_links || ':' || COALESCE(decided_at::text, ''),"
    "   ';' ORDER BY id) FROM approval_approvers), '')"
    " || '|' || COALESCE((SELECT string_agg(token_hash || ':' || COALESCE(sent_at::text, ''),"
    "   ';' ORDER BY token_hash COLLATE \"C\") FROM approval_links), '')"
    " || '|' || (SELECT count(*) FROM events)"
    " || '|' || COALESCE((SELECT string_agg(id || ':' || status || ':' || due_at || ':' || attempt,"
    "   ';' ORDER BY id) FROM step_execs), '')"
    " || '|' || COALESCE((SELECT string_agg(id || ':' || status || ':' || updated_at, ';'"
    "   ORDER BY id) FROM runs), '')";

enum as_code db_pg_testing_state_digest(struct db *db, char digest[DB_TESTING_DIGEST_SIZE],
                                        struct as_err *err)
{
    struct db_conn *c;
    digest[0] = '\0';
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    PGresult *r = pg_run(c, SQL_STATE, NULL, "read the workflow state", err);
    db_pg_read_end(db, c);
    if (!r)
        return AS_EDB;
    const char *text = PQntuples(r) == 1 ? pg_text(r, 0, 0) : "";
    if (encode_sha256_hex(text, strlen(text), digest) != 0)
        rc = as_errf(err, AS_ENOMEM, "cannot compute a digest");
    PQclear(r);
    return rc;
}

enum as_code db_pg_testing_approver_unsent(struct db *db, int64_t approval_id, const char *email,
                                           struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_i64(&a, approval_id);
    pg_arg_text(&a, email);
    int64_t changed = 0;
    rc = pg_do(c,
               "UPDATE approval_approvers SET sent_at = NULL WHERE approval_id = $1 AND email = $2",
               &a, "forget an approver's email", &changed, err);
    if (!rc && changed != 1)
        rc = as_errf(err, AS_ENOTFOUND, "approval %" PRId64 " has no approver %s", approval_id,
                     email);
    return db_pg_write_end(db, rc, err);
}
