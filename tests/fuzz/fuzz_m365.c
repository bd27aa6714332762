/*
 * fuzz_m365.c - what Microsoft 365 answers, read by steps/m365_parse.h
 * without a network: the first byte picks what the rest is.
 *
 *   0  the email app usage report CSV (m365_usage_parse): delivered rows
 *      all have a UPN with '@' (concealed reports deliver none) and fields
 *      within the 64 KiB cap;
 *   1  a Graph list page (JSON): every item of "value" goes to the
 *      callback, then one page boundary; a next link stays on the Graph
 *      host;
 *   2  an Exchange InvokeCommand page: items reach the callback without
 *      any "@" annotation key; the next link stays on the Exchange host;
 *   3  an error response: byte 1 the status, byte 2 Exchange or Graph
 *      order, the rest the body (JSON, NUL runs, text): a non-OK code and a
 *      message naming the status;
 *   4  a Retry-After value: -1 or a wait >= 0;
 *   5  a whole response: header lines up to a blank line, then the body:
 *      the kept header values fit their fields; Retry-After, the error and
 *      the Graph page are read as the client reads them.
 */
#include "tests/fuzz/fuzz.h"

#include <ctype.h>
#include <strings.h>

#include "m365/m365_parse.h"
#include "base/retry.h"
#include "steps/http_client.h"

#define GRAPH "https://graph.microsoft.com"
#define EXO "https://outlook.office365.com"
#define NOW_MS 1795000000000LL /* 2026-11-18, any fixed wall clock */

struct count {
    size_t items, boundaries;
};

static enum as_code count_item(const json_t *item, void *ud, struct as_err *err)
{
    struct count *c = ud;
    (void)err;
    if (item)
        c->items++;
    else
        c->boundaries++;
    return AS_OK;
}

static enum as_code exo_item(const json_t *item, void *ud, struct as_err *err)
{
    const char *key;
    const json_t *v;
    if (item) {
        FUZZ_ASSERT(json_is_object(item));
        json_object_foreach((json_t *)item, key, v)
            FUZZ_ASSERT(!strchr(key, '@'));
    }
    return count_item(item, ud, err);
}

static enum as_code usage_row(const struct m365_usage_row *row, void *ud, struct as_err *err)
{
    size_t *rows = ud;
    (void)err;
    FUZZ_ASSERT(row->upn && row->display_name && row->last_activity && row->refresh_date);
    FUZZ_ASSERT(strchr(row->upn, '@'));
    FUZZ_ASSERT(strlen(row->upn) <= 64 * 1024);
    (*rows)++;
    return AS_OK;
}

/* A next link on OK must be on base's origin (scheme and host, any case). */
static void check_next(const char *next, const char *base)
{
    if (!next)
        return;
    size_t n = strlen(base);
    FUZZ_ASSERT(strncasecmp(next, base, n) == 0);
    FUZZ_ASSERT(next[n] == '\0' || next[n] == '/' || next[n] == '?' || next[n] == '#');
}

static void fuzz_usage(const uint8_t *data, size_t size)
{
    if (!size)
        return;
    FILE *f = fmemopen((void *)data, size, "r");
    if (!f)
        return;
    struct as_err err = {0};
    size_t rows = 0;
    int concealed = -1;
    enum as_code rc = m365_usage_parse(f, usage_row, &rows, &concealed, &err);
    fclose(f);
    if (rc) {
        FUZZ_ASSERT(err.msg[0]);
        if (concealed)
            FUZZ_ASSERT(rows == 0); /* concealed: refused before any row */
    } else {
        FUZZ_ASSERT(concealed == 0);
    }
}

static void fuzz_page(const uint8_t *data, size_t size, int exo)
{
    json_t *page = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    json_t *warnings = json_array();
    FUZZ_ASSERT(warnings);
    struct count c = {0};
    struct as_err err = {0};
    char *next = NULL;
    enum as_code rc;
    if (exo)
        rc = m365_exo_page(page, "Exchange Get-CASMailbox", EXO, exo_item, &c, warnings, &next,
                           &err);
    else
        rc = m365_graph_page(page, "Graph GET /v1.0/users", GRAPH, count_item, &c, &next, &err);
    if (rc) {
        FUZZ_ASSERT(err.msg[0]);
        FUZZ_ASSERT(!next);
    } else {
        FUZZ_ASSERT(c.boundaries == 1);
        const json_t *value = json_object_get(page, "value");
        if (!exo)
            FUZZ_ASSERT(c.items == json_array_size(value));
        else
            FUZZ_ASSERT(c.items <= json_array_size(value));
        check_next(next, exo ? EXO : GRAPH);
    }
    free(next);
    json_decref(warnings);
    json_decref(page);
}

static void fuzz_error(const uint8_t *data, size_t size)
{
    static const long statuses[] = {400, 401, 403, 404, 409, 429, 500, 502, 503, 504, 418, 302};
    if (size < 2)
        return;
    struct m365_resp resp = {0};
    resp.status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
    int exo = data[1] & 1;
    resp.body = fuzz_strndup(data + 2, size - 2);
    resp.len = size - 2;
    struct as_err err = {0};
    enum as_code rc = m365_http_error(exo ? "Exchange Set-CASMailbox" : "Graph GET /v1.0/users",
                                      exo, &resp, &err);
    FUZZ_ASSERT(rc != AS_OK);
    char want[32];
    snprintf(want, sizeof want, ": HTTP %ld", resp.status);
    FUZZ_ASSERT(strstr(err.msg, want));
    FUZZ_ASSERT(strlen(err.msg) < sizeof err.msg);
    free(resp.body);
}

static void fuzz_retry_after(const uint8_t *data, size_t size)
{
    char *v = fuzz_strndup(data, size);
    int64_t ms = retry_after_parse(v, NOW_MS);
    FUZZ_ASSERT(ms >= -1 && ms <= RETRY_AFTER_SATURATE_MS);
    free(v);
}

static void fuzz_response(const uint8_t *data, size_t size)
{
    struct m365_resp resp = {.status = 429};
    json_t *headers = json_object();
    char retry_after[96] = "";
    size_t off = 0;
    while (off < size) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t n = nl ? (size_t)(nl - (data + off)) + 1 : size - off;
        if (n <= 2 && (data[off] == '\r' || data[off] == '\n')) {
            off += n;
            break; /* the blank line: the body follows */
        }
        http_header_line(headers, (const char *)data + off, n, retry_after, sizeof retry_after);
        off += n;
    }
    FUZZ_ASSERT(strlen(retry_after) < sizeof retry_after);
    FUZZ_ASSERT(json_object_size(headers) <= 16);
    const char *rid = json_string_value(json_object_get(headers, "request-id"));
    if (rid)
        snprintf(resp.request_id, sizeof resp.request_id, "%s", rid);
    if (retry_after[0])
        FUZZ_ASSERT(retry_after_parse(retry_after, NOW_MS) >= -1);
    json_decref(headers);
    resp.body = fuzz_strndup(data + off, size - off);
    resp.len = size - off;
    struct as_err err = {0};
    FUZZ_ASSERT(m365_http_error("Graph GET /v1.0/users", 0, &resp, &err) == AS_ETRANSIENT);
    if (resp.request_id[0] && !strstr(resp.body, "request-id"))
        FUZZ_ASSERT(strstr(err.msg, "(request-id "));
    free(resp.body);
    fuzz_page(data + off, size - off, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 6) {
    case 0:
        fuzz_usage(data + 1, size - 1);
        break;
    case 1:
        fuzz_page(data + 1, size - 1, 0);
        break;
    case 2:
        fuzz_page(data + 1, size - 1, 1);
        break;
    case 3:
        fuzz_error(data + 1, size - 1);
        break;
    case 4:
        fuzz_retry_after(data + 1, size - 1);
        break;
    default:
        fuzz_response(data + 1, size - 1);
        break;
    }
    return 0;
}
