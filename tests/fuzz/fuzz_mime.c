/* fuzz_mime.c - MIME building with address parsing.  The input is split at
 * NUL bytes into from, to, a second to, cc, reply_to, subject, text, html
 * and the idempotency key.  Whatever they hold, a built message has CRLF
 * line ends only, a header block of exactly the headers Assent writes
 * (each once; other lines are folded continuations), and MIME boundaries
 * only where the builder put them: no value can add a header or a part. */
#include "tests/fuzz/fuzz.h"

#include "steps/mail_mime.h"

static const char *const allowed[] = {
    "Date", "From", "To", "Cc", "Reply-To", "Subject", "Message-ID", "MIME-Version",
    "Auto-Submitted", "X-Auto-Response-Suppress", "Content-Type", "Content-Transfer-Encoding"};
#define N_ALLOWED (sizeof allowed / sizeof allowed[0])

static void check_message(const char *m, size_t len, int multipart)
{
    FUZZ_ASSERT(strlen(m) == len);
    for (size_t i = 0; i < len; i++) {
        if (m[i] == '\n')
            FUZZ_ASSERT(i > 0 && m[i - 1] == '\r');
        if (m[i] == '\r')
            FUZZ_ASSERT(i + 1 < len && m[i + 1] == '\n');
    }
    int seen[N_ALLOWED] = {0};
    const char *p = m;
    int in_headers = 1, boundaries = 0;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        FUZZ_ASSERT(eol);
        size_t n = (size_t)(eol - p);
        FUZZ_ASSERT(n <= 998);
        if (in_headers) {
            if (n == 0) {
                in_headers = 0;
            } else if (*p != ' ' && *p != '\t') {
                const char *colon = memchr(p, ':', n);
                FUZZ_ASSERT(colon);
                size_t k = 0;
                for (; k < N_ALLOWED; k++)
                    if (strlen(allowed[k]) == (size_t)(colon - p) &&
                        memcmp(allowed[k], p, (size_t)(colon - p)) == 0)
                        break;
                FUZZ_ASSERT(k < N_ALLOWED);
                /* Content-Type appears again only inside parts. */
                FUZZ_ASSERT(!seen[k]++);
            }
        } else if (n >= 11 && memcmp(p, "--=_assent_", 11) == 0) {
            boundaries++;
        }
        p = eol + 2;
    }
    FUZZ_ASSERT(!in_headers);
    FUZZ_ASSERT(seen[0] && seen[1] && seen[2] && seen[5] && seen[6]);
    FUZZ_ASSERT(boundaries == (multipart ? 3 : 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *f[9];
    char *buf = fuzz_split(data, size, f, 9);
    struct mail_addr a = {0};
    struct as_err err = {0};
    /* Every part is also tried as an address on its own. */
    for (int i = 0; i < 5; i++) {
        if (mail_addr_parse(f[i], &a, &err) == AS_OK) {
            FUZZ_ASSERT(a.addr && !strpbrk(a.addr, "\r\n <>\""));
            FUZZ_ASSERT(!a.name || !strpbrk(a.name, "\r\n"));
            FUZZ_ASSERT(mail_addr_domain(&a));
        }
        mail_addr_clear(&a);
    }
    char mid[300];
    const char *domain = "example.org";
    if (mail_addr_parse(f[0], &a, &err) == AS_OK)
        domain = mail_addr_domain(&a);
    if (mail_mime_message_id(f[8], domain, mid, sizeof mid, &err) == AS_OK) {
        const char *to[3] = {f[1], *f[2] ? f[2] : NULL, NULL};
        const char *cc[2] = {f[3], NULL};
        int text = *f[6] != '\0' || !*f[7], html = *f[7] != '\0';
        struct mail_mime_in in = {.from = f[0], .to = to, .cc = *f[3] ? cc : NULL,
                                  .reply_to = f[4], .subject = f[5],
                                  .text = text ? f[6] : NULL, .html = html ? f[7] : NULL,
                                  .message_id = mid, .date_ms = 1700000000000LL};
        char *out = NULL;
        size_t len = 0;
        if (mail_mime_build(&in, &out, &len, &err) == AS_OK) {
            check_message(out, len, text && html);
            free(out);
        } else {
            FUZZ_ASSERT(!out && err.msg[0]);
        }
    }
    mail_addr_clear(&a);
    free(buf);
    return 0;
}
