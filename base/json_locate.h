/*
 * json_locate.h - map JSON paths ("$.steps.check.next.true") to line and
 * column in the source text.
 *
 * Jansson reports positions only for syntax errors, so after a successful
 * parse the loader scans the (already valid) text once more with this small
 * scanner and records where every value and every object key starts.
 * Columns are 1-based *character* columns, as jansson counts them (a UTF-8
 * sequence is one column, a tab is one column).
 *
 * Paths: "$" is the document; an object member is ".name" when the name is
 * an identifier ([A-Za-z_][A-Za-z0-9_-]*) and ["name"] otherwise (JSON string
 * escapes); an array element is "[3]".  jl_path_key/jl_path_index build them
 * the same way for the validator.
 *
 * The scanner is bounded: it stops recording below JL_MAX_DEPTH levels, for
 * paths longer than JL_MAX_PATH bytes, and after JL_MAX_ENTRIES values; it
 * never reads past the text and never fails on unexpected input (it just
 * stops).  It also finds every duplicate object key (jansson names only the
 * first).
 */
#ifndef ASSENT_JSON_LOCATE_H
#define ASSENT_JSON_LOCATE_H

#include <stddef.h>

#include "base/error.h"

#define JL_MAX_DEPTH 256
#define JL_MAX_PATH 512
#define JL_MAX_ENTRIES 100000

struct jl_pos {
    int line;         /* 1-based */
    int column;       /* 1-based character column */
    size_t offset;    /* byte offset */
};

struct jl_entry {
    char *path;
    struct jl_pos value; /* where the value starts */
    struct jl_pos key;   /* where its key starts (object members), else = value */
    size_t parent_id;    /* id of the containing container (0 for the root) */
    int is_member;       /* 1 when the value is an object member */
};

struct json_locmap {
    struct jl_entry *entries; /* sorted by path, then offset */
    size_t n, cap;
    size_t *dups;             /* indexes into entries of keys repeated in their object */
    size_t n_dups;
};

/* Scan text[0..len).  *out is a new map; free with jl_free().  Fails only for lack of memory. */
enum as_code jl_build(const char *text, size_t len, struct json_locmap **out,
                      struct as_err *err) AS_WUR;

/* The entry for path (the last one when the key was repeated), or NULL. */
const struct jl_entry *jl_find(const struct json_locmap *m, const char *path);

/* The entry for path or its nearest recorded ancestor, or NULL. */
const struct jl_entry *jl_find_nearest(const struct json_locmap *m, const char *path);

void jl_free(struct json_locmap *m);

/* Append a member / element segment to parent into buf.  Returns 0, or -1
 * when it does not fit (buf then holds a truncated path). */
int jl_path_key(char *buf, size_t size, const char *parent, const char *key);
int jl_path_index(char *buf, size_t size, const char *parent, size_t index);

/* Length of the parent's prefix of path ("$.a.b" -> 3), or 0 for "$". */
size_t jl_path_parent_len(const char *path);

/*
 * Position of byte `decoded_off` of the decoded string whose JSON literal
 * starts (at its opening quote) at `at` in text: steps over escapes so a
 * column inside a string value is exact.  Returns `at` moved accordingly.
 */
struct jl_pos jl_string_pos(const char *text, size_t len, struct jl_pos at, size_t decoded_off);

#endif
