/* fuzz_form.c - the approval form decoder (web/form.c): any body gives a
 * form or an error; decoded values are valid UTF-8 without NUL; names are
 * unique. */
#include "tests/fuzz/fuzz.h"

#include "base/utf8.h"
#include "web/form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct form *f = NULL;
    struct as_err err = {0};
    if (form_parse((const char *)data, size, &f, &err) != AS_OK) {
        FUZZ_ASSERT(err.msg[0]);
        form_free(f);
        return 0;
    }
    FUZZ_ASSERT(size <= FORM_MAX_BODY);
    FUZZ_ASSERT(form_count(f) <= FORM_MAX_FIELDS);
    static const char *const names[] = {"decision", "comment", "csrf", "token", "a", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = form_get(f, names[i]);
        if (v)
            FUZZ_ASSERT(utf8_valid(v));
    }
    form_free(f);
    return 0;
}
