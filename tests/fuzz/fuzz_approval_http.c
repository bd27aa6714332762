/*
 * fuzz_approval_http.c - an HTTP request to an approval link, as the
 * server reads it before the database is involved: the route and the token
 * in the path (web/routes.c, web/token.c), the body headers
 * (web_body_check_max), the same-origin and Content-Type checks of a POST
 * (approval_post_check), the form (web/form.c), its CSRF token against the
 * link (token_csrf_verify) and the answer (approval_answer_check).
 *
 * Input: NUL-separated parts, an empty part being an absent header:
 *   path \0 method \0 Sec-Fetch-Site \0 Origin \0 Content-Type \0
 *   Content-Length \0 Transfer-Encoding \0 body
 * The body is also offered a valid CSRF token for its link in place of a
 * "csrf=@" field, so the answer checks behind the token are reached.
 *
 * Invariants: a token is accepted only in its one canonical shape and
 * hashes to 64 lower-case hex digits; only the CSRF token issued for this
 * link verifies; an answer that passes is approve or reject; origins
 * normalise to lower-case scheme://host[:port].
 */
#include "tests/fuzz/fuzz.h"

#include <ctype.h>

#include "web/approval_pages.h"
#include "web/form.h"
#include "web/routes.h"
#include "web/server.h"
#include "approvals/token.h"

#define PUBLIC_ORIGIN "https://assent.contoso.com"
#define NOW_MS 1795000000000LL

static const unsigned char secret[CSRF_SECRET_LEN] = "fuzz-csrf-secret-0123456789abcd";

static const char *header(const char *part)
{
    return *part ? part : NULL;
}

static void check_origin(const char *origin)
{
    char norm[512];
    if (!origin || web_url_origin(origin, norm, sizeof norm) != 0)
        return;
    FUZZ_ASSERT(strncmp(norm, "http://", 7) == 0 || strncmp(norm, "https://", 8) == 0);
    for (const char *p = norm; *p; p++)
        FUZZ_ASSERT(!isupper((unsigned char)*p));
    FUZZ_ASSERT(!strpbrk(strstr(norm, "://") + 3, "/?#@"));
}

/* The form's answer, with the link's real CSRF token where the body says "csrf=@". */
static void check_form(const char *body, size_t body_len, const char *link_hash)
{
    struct form *f = NULL;
    struct as_err err = {0};
    if (form_parse(body, body_len, &f, &err) != AS_OK) {
        FUZZ_ASSERT(err.msg[0]);
        form_free(f);
        return;
    }
    char issued[96];
    token_csrf_issue(secret, sizeof secret, link_hash, NOW_MS, issued, sizeof issued);
    FUZZ_ASSERT(token_csrf_verify(secret, sizeof secret, link_hash, issued, NOW_MS,
                                  APPROVAL_CSRF_MAX_AGE_MS) == AS_OK);
    const char *csrf = form_get(f, "csrf");
    enum as_code crc = AS_EAUTH;
    if (csrf && strcmp(csrf, "@") == 0)
        crc = AS_OK; /* stands for the page's own token */
    else if (csrf) {
        crc = token_csrf_verify(secret, sizeof secret, link_hash, csrf, NOW_MS,
                                APPROVAL_CSRF_MAX_AGE_MS);
        /* Nobody without the secret makes a token that verifies. */
        if (crc == AS_OK)
            FUZZ_ASSERT(strcmp(csrf, issued) == 0);
    }
    if (crc == AS_OK) {
        const char *decision = NULL, *comment = NULL;
        int bad = approval_answer_check(f, &decision, &comment);
        FUZZ_ASSERT(bad >= 0 && bad <= 2);
        if (!bad) {
            FUZZ_ASSERT(strcmp(decision, "approve") == 0 || strcmp(decision, "reject") == 0);
            FUZZ_ASSERT(!comment || strlen(comment) <= 4000);
        }
    }
    form_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p[8];
    char *buf = fuzz_split(data, size, p, 8);
    const char *path = p[0], *method = p[1];
    const char *site = header(p[2]), *origin = header(p[3]), *ctype = header(p[4]);
    const char *cl = header(p[5]), *te = header(p[6]);
    const char *body = p[7];
    size_t body_len = size - (size_t)(body - buf);

    check_origin(origin);
    const struct web_route *route = web_route_find(path);
    if (!route)
        goto out;
    FUZZ_ASSERT(strncmp(path, route->path, strlen(route->path)) == 0);
    int st = web_body_check_max(cl, te, web_route_max_body(route));
    FUZZ_ASSERT(st == 0 || st == 400 || st == 413);
    if (st == 0 && cl && !route->takes_body)
        FUZZ_ASSERT(strtoull(cl, NULL, 10) == 0);
    if (st || body_len > WEB_MAX_BODY || strcmp(route->name, "approval") != 0)
        goto out;

    const char *token = path + strlen(route->path);
    if (!token_well_formed(token))
        goto out;
    FUZZ_ASSERT(strlen(token) == TOKEN_LEN);
    char link_hash[TOKEN_HASH_LEN + 1];
    token_hash(token, link_hash);
    FUZZ_ASSERT(strlen(link_hash) == TOKEN_HASH_LEN);
    for (const char *h = link_hash; *h; h++)
        FUZZ_ASSERT((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f'));
    if (strcmp(method, "POST") != 0)
        goto out;
    st = approval_post_check(site, origin, PUBLIC_ORIGIN, ctype);
    FUZZ_ASSERT(st == 0 || st == 403 || st == 415);
    if (st == 0 && origin && strcmp(origin, "null") != 0) {
        char norm[512];
        FUZZ_ASSERT(web_url_origin(origin, norm, sizeof norm) == 0);
        FUZZ_ASSERT(strcmp(norm, PUBLIC_ORIGIN) == 0);
    }
    if (st == 0)
        check_form(body, body_len, link_hash);
out:
    free(buf);
    return 0;
}
