/*
 * events.c - the parts of the event log (db_events.h) that are the same on
 * every backend: the chained hash, appends of JSON or text (over the
 * backend's db_event_append_chained) and the verification of the chain
 * (over the backend's db_run_events).
 */
#include "db/backend.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/encode.h"
#include "base/timeutil.h"

const char db_event_zero_hash[65] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static enum as_code oom(struct as_err *err)
{
    return as_errf(err, AS_ENOMEM, "out of memory");
}

/*
 * The chained hash of an event: SHA-256 over prev_hash (hex) followed by
 * "id|run_id|exec_id|ts|type|" (empty run_id/exec_id for none) and the hex
 * SHA-256 of data.  The fields are integers, a type limited to [a-z0-9._-]
 * and fixed-length digests, so the text is unambiguous; hashing data apart
 * lets the executor's workers digest it in parallel.
 */
/* SHA-256, fetched once (an implicit fetch per digest costs as much as the
 * digest), with one reusable context per thread. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;
static pthread_key_t sha256_ctx_key;

static void sha256_ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void sha256_init(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (pthread_key_create(&sha256_ctx_key, sha256_ctx_free) != 0) {
        EVP_MD_free(sha256_md);
        sha256_md = NULL;
    }
}

/* Hex SHA-256 of the concatenation of n parts; 0 on success. */
static int sha256_parts(const char *const *parts, const size_t *lens, int n, char out[65])
{
    pthread_once(&sha256_once, sha256_init);
    if (!sha256_md)
        return -1;
    EVP_MD_CTX *ctx = pthread_getspecific(sha256_ctx_key);
    if (!ctx) {
        ctx = EVP_MD_CTX_new();
        if (!ctx || pthread_setspecific(sha256_ctx_key, ctx) != 0) {
            EVP_MD_CTX_free(ctx);
            return -1;
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = EVP_DigestInit_ex(ctx, sha256_md, NULL);
    for (int i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(ctx, parts[i], lens[i]);
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen);
    if (!ok || mdlen != 32)
        return -1;
    encode_hex(md, 32, out);
    return 0;
}

int db_event_digest(const char *data, char out[65])
{
    const char *parts[1] = {data ? data : "{}"};
    size_t lens[1] = {strlen(parts[0])};
    return sha256_parts(parts, lens, 1, out);
}

/* Decimal digits of v (>= 0) at p; returns the length.  ("" for 0 when zero_empty.) */
static size_t put_i64(char *p, int64_t v, int zero_empty)
{
    char tmp[24];
    size_t n = 0;
    if (v == 0 && zero_empty)
        return 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (v < 0)
        p[len++] = '-';
    while (n)
        p[len++] = tmp[--n];
    return len;
}

int db_event_hash(const char *prev_hash, int64_t id, int64_t run_id, int64_t exec_id, int64_t ts,
                  const char *type, const char *data_digest, char out[65])
{
    char head[256];
    size_t tl = strlen(type), hl = 0;
    if (tl > 100 || strlen(prev_hash) != 64 || strlen(data_digest) != 64)
        return -1;
    hl += put_i64(head + hl, id, 0);
    head[hl++] = '|';
    hl += put_i64(head + hl, run_id, 1);
    head[hl++] = '|';
    hl += put_i64(head + hl, exec_id, 1);
    head[hl++] = '|';
    hl += put_i64(head + hl, ts, 0);
    head[hl++] = '|';
    memcpy(head + hl, type, tl);
    hl += tl;
    head[hl++] = '|';
    const char *parts[3] = {prev_hash, head, data_digest};
    size_t lens[3] = {64, hl, 64};
    return sha256_parts(parts, lens, 3, out);
}

int db_event_type_ok(const char *type)
{
    size_t n = 0;
    for (const char *p = type; *p; p++, n++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n >= 1 && n <= 64;
}

enum as_code db_event_append_text(struct db_conn *conn, int64_t run_id, int64_t exec_id,
                                  const char *type, const char *data, int64_t now,
                                  struct as_err *err)
{
    return db_event_append_chained(conn, NULL, run_id, exec_id, type, data, NULL, now, err);
}

enum as_code db_event_append(struct db_conn *conn, int64_t run_id, int64_t exec_id,
                             const char *type, const json_t *data, struct as_err *err)
{
    char *text = NULL;
    if (data) {
        text = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (!text)
            return oom(err);
    }
    enum as_code rc = db_event_append_text(conn, run_id, exec_id, type, text, time_now_ms(), err);
    free(text);
    return rc;
}

enum as_code db_audit_append(struct db *db, const char *type, const json_t *data,
                             struct as_err *err)
{
    struct db_conn *conn;
    enum as_code rc = db_write_begin(db, &conn, err);
    if (rc)
        return rc;
    rc = db_event_append(conn, 0, 0, type, data, err);
    return db_write_end(db, rc, err);
}

struct verify_state {
    struct db_audit_report *rep;
    int64_t prev_id;
    char prev_hash[65];
    int64_t anchor_id;
    const char *anchor_hash;
    int anchor_seen, anchor_ok;
};

static int verify_one(void *ud, const struct db_event_info *ev)
{
    struct verify_state *vs = ud;
    struct db_audit_report *rep = vs->rep;
    char computed[65];
    rep->n_events++;
    char digest[65];
    int self_ok = db_event_digest(ev->data, digest) == 0 &&
                  db_event_hash(ev->prev_hash, ev->id, ev->run_id, ev->exec_id, ev->ts, ev->type,
                                digest, computed) == 0 &&
                  strcmp(computed, ev->hash) == 0;
    int link_ok = strcmp(ev->prev_hash, vs->prev_hash) == 0;
    int gap = ev->id != vs->prev_id + 1;
    if (ev->id == vs->anchor_id) {
        vs->anchor_seen = 1;
        vs->anchor_ok = vs->anchor_hash && strcmp(ev->hash, vs->anchor_hash) == 0;
    }
    if (!rep->bad_id && (!self_ok || !link_ok || gap)) {
        rep->bad_id = ev->id;
        char prev[48];
        if (vs->prev_id)
            snprintf(prev, sizeof prev, "event %" PRId64, vs->prev_id);
        else
            snprintf(prev, sizeof prev, "the start of the log");
        if (gap && self_ok)
            snprintf(rep->problem, sizeof rep->problem,
                     "events %" PRId64 "..%" PRId64 " were deleted: event %" PRId64
                     " no longer follows %s",
                     vs->prev_id + 1, ev->id - 1, ev->id, prev);
        else if (gap)
            snprintf(rep->problem, sizeof rep->problem,
                     "event %" PRId64 " was inserted: its id does not follow %s and its hash "
                     "does not match its content",
                     ev->id, prev);
        else if (!self_ok && link_ok)
            snprintf(rep->problem, sizeof rep->problem,
                     "event %" PRId64 " was altered: its content no longer matches its hash",
                     ev->id);
        else if (!self_ok)
            snprintf(rep->problem, sizeof rep->problem,
                     "event %" PRId64 " was inserted or altered: it does not link to %s and its "
                     "hash does not match its content",
                     ev->id, prev);
        else
            snprintf(rep->problem, sizeof rep->problem,
                     "event %" PRId64 " does not link to %s: %s was altered and re-hashed, or "
                     "event %" PRId64 " was inserted",
                     ev->id, prev, prev, ev->id);
    }
    vs->prev_id = ev->id;
    snprintf(vs->prev_hash, sizeof vs->prev_hash, "%s", ev->hash);
    rep->head_id = ev->id;
    snprintf(rep->head_hash, sizeof rep->head_hash, "%s", ev->hash);
    return 0;
}

enum as_code db_audit_verify(struct db_conn *conn, int64_t anchor_id, const char *anchor_hash,
                             struct db_audit_report *rep, struct as_err *err)
{
    memset(rep, 0, sizeof *rep);
    struct verify_state vs = {.rep = rep, .anchor_id = anchor_id, .anchor_hash = anchor_hash};
    memcpy(vs.prev_hash, db_event_zero_hash, sizeof vs.prev_hash);
    enum as_code rc = db_run_events(conn, 0, verify_one, &vs, err);
    if (rc)
        return rc;
    if (!rep->bad_id && anchor_id > 0) {
        if (!vs.anchor_seen) {
            rep->bad_id = anchor_id;
            snprintf(rep->problem, sizeof rep->problem,
                     "anchored event %" PRId64 " is missing: the newest events were deleted",
                     anchor_id);
        } else if (!vs.anchor_ok) {
            rep->bad_id = anchor_id;
            snprintf(rep->problem, sizeof rep->problem,
                     "event %" PRId64 " does not carry the anchored hash: the log was rewritten "
                     "from there on",
                     anchor_id);
        }
    }
    return AS_OK;
}
