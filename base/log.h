/*
 * log.h - one line per event on stderr, with a level; text or JSON lines.
 *
 * Every message is escaped before it is written: CR, LF and other control
 * characters in user-supplied text become \r \n \xNN, so nobody can forge a
 * log line through a workflow input, a request or an email address.  Never
 * pass a secret (token, password, client secret) to these functions.
 * Thread-safe: each line is written with one write(2).
 */
#ifndef ASSENT_LOG_H
#define ASSENT_LOG_H

#include "base/error.h"

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };
enum log_format { LOG_FMT_TEXT, LOG_FMT_JSON };

/* Set the threshold and format.  Call once at start; default is info/text. */
void log_init(enum log_level level, enum log_format format);

/* Parse "debug|info|warn|error" / "text|json"; return -1 when unknown. */
int log_level_parse(const char *s);
int log_format_parse(const char *s);

/* Emit one event from component `comp` (e.g. "engine", "web"). */
void log_msg(enum log_level level, const char *comp, const char *fmt, ...) AS_PRINTF(3, 4);

/* True when messages of `level` are emitted (to skip costly formatting). */
int log_enabled(enum log_level level);

#define LOG_DEBUG(comp, ...) log_msg(LOG_LVL_DEBUG, comp, __VA_ARGS__)
#define LOG_INFO(comp, ...) log_msg(LOG_LVL_INFO, comp, __VA_ARGS__)
#define LOG_WARN(comp, ...) log_msg(LOG_LVL_WARN, comp, __VA_ARGS__)
#define LOG_ERROR(comp, ...) log_msg(LOG_LVL_ERROR, comp, __VA_ARGS__)

/*
 * Escape `in` into out (size outsize, always NUL-terminated): control
 * characters as \n \r \t \xNN; with json=1 also '"' and '\\'.  Exposed for
 * tests.
 */
void log_escape(char *out, size_t outsize, const char *in, int json);

#endif
