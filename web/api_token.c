/* api_token.c - making and checking the REST API's bearer tokens (see api_token.h). */
#include "web/api_token.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "approvals/token.h"
#include "base/encode.h"

static const char *const role_names[] = {"none", "viewer", "operator", "admin"};

const char *api_role_name(enum api_role role)
{
    return role >= API_ROLE_NONE && role <= API_ROLE_ADMIN ? role_names[role] : "none";
}

enum api_role api_role_parse(const char *s)
{
    for (int r = API_ROLE_VIEWER; s && r <= API_ROLE_ADMIN; r++)
        if (strcmp(s, role_names[r]) == 0)
            return (enum api_role)r;
    return API_ROLE_NONE;
}

int api_token_name_ok(const char *name)
{
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-'))
            return 0;
    }
    return n >= 1 && n <= DB_TOKEN_NAME_MAX && strcmp(name, API_ADMIN_FILE_NAME) != 0;
}

enum as_code api_token_create(struct db *db, const char *name, enum api_role role,
                              int64_t expires_at, const char *created_by, int64_t now,
                              char *token, size_t token_size, struct db_api_token *rec,
                              struct as_err *err)
{
    unsigned char raw[32];
    struct db_api_token t;
    char text[API_TOKEN_LEN + 1];
    enum as_code rc = AS_OK;

    if (!api_token_name_ok(name))
        return as_errf(err, AS_EINVAL, "a token name is 1 to %d letters, digits or . _ @ - "
                       "(and not \"%s\")", DB_TOKEN_NAME_MAX, API_ADMIN_FILE_NAME);
    if (role == API_ROLE_NONE)
        return as_errf(err, AS_EINVAL, "the role must be viewer, operator or admin");
    if (token_size < sizeof text)
        return as_errf(err, AS_EINVAL, "no room for the token");
    if (RAND_bytes(raw, sizeof raw) != 1)
        return as_errf(err, AS_EIO, "the random number generator failed");
    memcpy(text, API_TOKEN_PREFIX, strlen(API_TOKEN_PREFIX));
    size_t n = encode_b64url(raw, sizeof raw, text + strlen(API_TOKEN_PREFIX),
                             sizeof text - strlen(API_TOKEN_PREFIX));
    OPENSSL_cleanse(raw, sizeof raw);
    memset(&t, 0, sizeof t);
    if (n != API_TOKEN_LEN - strlen(API_TOKEN_PREFIX) ||
        encode_sha256_hex(text, strlen(text), t.token_hash) != 0) {
        rc = as_errf(err, AS_EIO, "cannot encode or hash the token");
        goto out;
    }
    snprintf(t.name, sizeof t.name, "%s", name);
    snprintf(t.role, sizeof t.role, "%s", api_role_name(role));
    snprintf(t.created_by, sizeof t.created_by, "%s", created_by && *created_by ? created_by : "unknown");
    t.created_at = now;
    t.expires_at = expires_at;
    rc = db_api_token_add(db, &t, err);
    if (rc)
        goto out;
    memcpy(token, text, sizeof text);
    if (rec)
        *rec = t;
out:
    OPENSSL_cleanse(text, sizeof text);
    return rc;
}

enum as_code api_token_check(struct db *db, const char *presented, int64_t now,
                             struct db_api_token *out, struct as_err *err)
{
    char hash[ENCODE_SHA256_HEX_SIZE];
    /* Anything longer is no token of ours; hashing it would only cost time. */
    size_t len = strnlen(presented, 4097);
    if (len == 0 || len > 4096)
        return as_errf(err, AS_EAUTH, "unknown token");
    if (encode_sha256_hex(presented, len, hash) != 0)
        return as_errf(err, AS_EIO, "cannot hash the token");
    enum as_code rc = db_api_token_find(db, hash, out, err);
    if (rc == AS_ENOTFOUND)
        return as_errf(err, AS_EAUTH, "unknown token");
    if (rc)
        return rc;
    /* The index found it by equality; compare again without an early exit,
     * so the time taken never depends on where two hashes differ. */
    if (!token_equal(out->token_hash, hash))
        return as_errf(err, AS_EAUTH, "unknown token");
    if (out->revoked_at)
        return as_errf(err, AS_EAUTH, "the token \"%s\" was revoked", out->name);
    if (out->expires_at && now >= out->expires_at)
        return as_errf(err, AS_EEXPIRED, "the token \"%s\" has expired", out->name);
    return AS_OK;
}
