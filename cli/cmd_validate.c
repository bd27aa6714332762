/*
 * cmd_validate.c - `assent validate FILE...`: load each workflow with every
 * check of engine/workflow.c and print its diagnostics, one line each
 * ("file:line:col: error CODE: message (at $.path)"), or all of them as one
 * JSON array with --json.  Exit 0 when no file has an error (warnings are
 * printed but allowed, unless --strict), 1 otherwise, 2 on a bad command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/workflow.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: assent validate [--json] [--strict] FILE...\n"
            "       assent validate --print-schema\n"
            "\n"
            "Check workflow definitions without running them: JSON syntax, duplicate and\n"
            "unknown keys, step types and their parameters, ${...} references and\n"
            "conditions, next targets, unreachable steps, cycles, references to steps\n"
            "that cannot have run before.  Every problem is printed as\n"
            "  FILE:LINE:COLUMN: SEVERITY CODE: message (at $.json.path)\n"
            "and a valid file gets one line \"ok: FILE (NAME vVERSION, N steps)\".\n"
            "\n"
            "  --json     print one JSON array of {file,line,column,path,code,severity,message}\n"
            "  --strict   treat warnings as errors\n"
            "  --print-schema  print the JSON Schema of the format (workflows/schema.json)\n"
            "\n"
            "exit status: 0 all files valid, 1 an error in some file (or a warning with\n"
            "--strict, or a file that cannot be read), 2 bad usage.\n"
            "Format: docs/workflow-format.md; codes: docs/workflow-format.md#diagnostics.\n");
}

static size_t count_sev(const struct diag_list *d, enum diag_severity sev)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += d->items[i].severity == sev;
    return n;
}

int cmd_validate(struct cli *cli, int argc, char **argv)
{
    int strict = 0, json = cli->json, rc = EXIT_OK, n_files = 0;
    json_t *all = NULL;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--print-schema") == 0) {
            json_t *schema = wf_schema();
            char *text = schema ? json_dumps(schema, JSON_INDENT(2)) : NULL;
            json_decref(schema);
            if (!text)
                return cli_error(EXIT_FAIL, "validate", "out of memory");
            printf("%s\n", text);
            free(text);
            return EXIT_OK;
        }
        if (strcmp(argv[i], "--strict") == 0)
            strict = 1;
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--") == 0)
            break;
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "assent validate: unknown option %s\n\n", argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        } else
            n_files++;
    }
    for (int i = 1, dashdash = 0; i < argc; i++) {
        if (!dashdash && strcmp(argv[i], "--") == 0) {
            dashdash = 1;
            continue;
        }
        if (dashdash)
            n_files++;
    }
    if (n_files == 0) {
        fprintf(stderr, "assent validate: no workflow file given\n\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (json && !(all = json_array()))
        return cli_error(EXIT_FAIL, "validate", "out of memory");

    for (int i = 1, dashdash = 0; i < argc; i++) {
        const char *path = argv[i];
        if (!dashdash && strcmp(path, "--") == 0) {
            dashdash = 1;
            continue;
        }
        if (!dashdash && path[0] == '-' && path[1] != '\0')
            continue;

        struct workflow *wf = NULL;
        struct diag_list diags = {0};
        struct as_err err = {0};
        enum as_code lrc = wf_load_file(path, &wf, &diags, &err);
        size_t n_err = count_sev(&diags, DIAG_ERROR), n_warn = count_sev(&diags, DIAG_WARNING);

        if (lrc != AS_OK && n_err == 0) {
            /* The file could not be read at all (missing, unreadable, too big, no memory). */
            diag_free(&diags);
            diag_add(&diags, DIAG_ERROR, "READ_ERROR", "$", "%s", err.msg);
            n_err = 1;
        }
        if (json) {
            if (wf_diags_append_json(all, &diags, path) != 0)
                rc = EXIT_FAIL;
        } else {
            wf_diags_print(&diags, path, 0, stdout);
            if (wf) {
                const char *v = wf->version;
                printf("ok: %s (%s %s%s, %zu step%s", path, wf->name,
                       (v[0] == 'v' || v[0] == 'V') ? "" : "v", v, wf->n_steps,
                       wf->n_steps == 1 ? "" : "s");
                if (n_warn)
                    printf(", %zu warning%s", n_warn, n_warn == 1 ? "" : "s");
                printf(")\n");
            } else {
                printf("invalid: %s: %zu error%s", path, n_err, n_err == 1 ? "" : "s");
                if (n_warn)
                    printf(", %zu warning%s", n_warn, n_warn == 1 ? "" : "s");
                printf("\n");
            }
        }
        if (n_err || (strict && n_warn))
            rc = EXIT_FAIL;
        wf_free(wf);
        diag_free(&diags);
    }
    if (json) {
        if (cli_print_json("validate", all) != EXIT_OK)
            rc = EXIT_FAIL;
        json_decref(all);
    }
    fflush(stdout);
    return rc;
}
