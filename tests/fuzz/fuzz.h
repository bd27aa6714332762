/*
 * fuzz.h - helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * Each fuzz_<name>.c defines LLVMFuzzerTestOneInput; its seed corpus is
 * tests/fuzz/corpus/<name>/.  Targets are built only with -DASSENT_FUZZ=ON
 * and CC=clang (instrumented, ASan+UBSan); scripts/fuzz.sh runs them.  A
 * target aborts (FUZZ_ASSERT) when an invariant of Assent's own is broken,
 * so libFuzzer records the input as a crasher; bad input answered with an
 * error is the expected outcome, not a finding.
 */
#ifndef ASSENT_FUZZ_H
#define ASSENT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(cond)                                                                   \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* A NUL-terminated copy of data[0..size) (malloc'd; aborts on no memory). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_ASSERT(s);
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/*
 * Split data at the first n-1 occurrences of the separator byte 0x00 into n
 * NUL-terminated strings (a missing part is "").  parts[i] point into one
 * malloc'd buffer returned for free().
 */
static inline char *fuzz_split(const uint8_t *data, size_t size, char **parts, int n)
{
    char *buf = fuzz_strndup(data, size);
    char *p = buf, *end = buf + size;
    for (int i = 0; i < n; i++) {
        parts[i] = p < end ? p : end;
        if (i + 1 < n && p < end) {
            char *z = memchr(p, '\0', (size_t)(end - p));
            p = z ? z + 1 : end;
        }
    }
    return buf;
}

#endif
