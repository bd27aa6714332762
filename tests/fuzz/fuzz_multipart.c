/* fuzz_multipart.c - the console's multipart/form-data decoder (web/form.c):
 * any body gives a form or an error; values are valid UTF-8 without NUL;
 * the caps hold. */
#include "tests/fuzz/fuzz.h"

#include "base/utf8.h"
#include "web/form.h"

#define MAX_BODY (64 * 1024)
#define MAX_FIELDS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct form *f = NULL;
    struct as_err err = {0};
    if (form_parse_multipart((const char *)data, size, "multipart/form-data; boundary=XyZ",
                             MAX_BODY, MAX_FIELDS, &f, &err) != AS_OK) {
        FUZZ_ASSERT(err.msg[0]);
        FUZZ_ASSERT(!f);
        return 0;
    }
    FUZZ_ASSERT(size <= MAX_BODY);
    FUZZ_ASSERT(form_count(f) <= MAX_FIELDS);
    for (size_t i = 0; i < form_count(f); i++) {
        FUZZ_ASSERT(form_name_at(f, i)[0]);
        FUZZ_ASSERT(utf8_valid(form_value_at(f, i)));
    }
    form_free(f);
    return 0;
}
