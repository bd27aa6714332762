/* fuzz_workflow.c - workflow load + validate (wf_load_buffer): any bytes give
 * either a workflow or diagnostics, each with a code and a position. */
#include "tests/fuzz/fuzz.h"

#include "base/diag.h"
#include "base/log.h"
#include "cli/cli.h"
#include "engine/workflow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet++) {
        log_init(LOG_LVL_ERROR, LOG_FMT_TEXT);
        cli_register_types();
    }
    struct diag_list diags = {0};
    struct workflow *wf = NULL;
    struct as_err err = {0};
    enum as_code rc = wf_load_buffer((const char *)data, size, "fuzz.json", &wf, &diags, &err);
    if (rc == AS_OK) {
        FUZZ_ASSERT(wf);
        FUZZ_ASSERT(diag_errors(&diags) == 0);
        wf_free(wf);
    } else {
        FUZZ_ASSERT(!wf);
    }
    for (size_t i = 0; i < diags.n; i++) {
        char line[2048];
        wf_diag_format(&diags.items[i], "fuzz.json", line, sizeof line);
        FUZZ_ASSERT(diags.items[i].code[0] != '\0');
        /* One line per diagnostic: input text quoted in a message cannot
         * start a line of its own. */
        FUZZ_ASSERT(strchr(line, '\n') == NULL);
    }
    json_t *arr = json_array();
    FUZZ_ASSERT(arr && wf_diags_append_json(arr, &diags, "fuzz.json") == 0);
    json_decref(arr);
    diag_free(&diags);
    return 0;
}
