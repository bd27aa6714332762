/* log.c - escaped, single-write log lines on stderr (see log.h). */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level g_level = LOG_LVL_INFO;
static enum log_format g_format = LOG_FMT_TEXT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(enum log_level level, enum log_format format)
{
    g_level = level;
    g_format = format;
}

int log_enabled(enum log_level level)
{
    return level >= g_level;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int log_format_parse(const char *s)
{
    if (s && strcmp(s, "text") == 0)
        return LOG_FMT_TEXT;
    if (s && strcmp(s, "json") == 0)
        return LOG_FMT_JSON;
    return -1;
}

void log_escape(char *out, size_t outsize, const char *in, int json)
{
    size_t o = 0;
    if (outsize == 0)
        return;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        char tmp[8];
        const char *rep = NULL;
        switch (*p) {
        case '\n': rep = "\\n"; break;
        case '\r': rep = "\\r"; break;
        case '\t': rep = "\\t"; break;
        case '"': rep = json ? "\\\"" : NULL; break;
        case '\\': rep = json ? "\\\\" : NULL; break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(tmp, sizeof tmp, json ? "\\u%04x" : "\\x%02x", *p);
                rep = tmp;
            }
        }
        size_t n = rep ? strlen(rep) : 1;
        if (o + n >= outsize)
            break;
        if (rep)
            memcpy(out + o, rep, n);
        else
            out[o] = (char)*p;
        o += n;
    }
    out[o] = '\0';
}

void log_msg(enum log_level level, const char *comp, const char *fmt, ...)
{
    if (level < g_level)
        return;
    char raw[2048], esc[4096], line[4600], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t k = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + k, sizeof ts - k, ".%03ldZ", now.tv_nsec / 1000000);

    int n;
    if (g_format == LOG_FMT_JSON) {
        log_escape(esc, sizeof esc, raw, 1);
        n = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"comp\":\"%s\",\"msg\":\"%s\"}\n",
                     ts, level_names[level], comp, esc);
    } else {
        log_escape(esc, sizeof esc, raw, 0);
        n = snprintf(line, sizeof line, "%s %-5s %s: %s\n", ts, level_names[level], comp, esc);
    }
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    /* One write per line so concurrent threads never interleave inside a line. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
