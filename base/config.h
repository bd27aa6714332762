/*
 * config.h - Assent's configuration: one JSON file (--config or ASSENT_CONFIG),
 * every key overridable by an ASSENT_<KEY> environment variable (upper case),
 * validated at start.  Precedence: built-in default < file < environment <
 * command-line flag (config_set()).
 *
 * Keys live in one table in config.c; add a key there and read it with
 * config_str()/config_int()/config_bool().  Secrets are marked in the table
 * and redacted by config_dump().  Secrets themselves are only ever read from
 * files (*_file keys) or the config file, never from the command line.
 *
 * A struct config is immutable after config_load() returns, so any thread may
 * read it without locking.
 */
#ifndef ASSENT_CONFIG_H
#define ASSENT_CONFIG_H

#include <jansson.h>

#include "base/error.h"

struct config;

/*
 * Build the effective configuration: defaults, then the JSON file at `path`
 * (NULL: $ASSENT_CONFIG if set, else none), then ASSENT_* environment.
 * Unknown keys in the file, wrong types and invalid values are errors that
 * name the key and where it came from.  A file that holds a secret inline
 * (client_secret) and that group or others can access is refused
 * (AS_EINVAL, the file and the key named, never the value), as secret files
 * are.  Caller frees with config_free().
 */
enum as_code config_load(const char *path, struct config **out, struct as_err *err) AS_WUR;

/* A configuration of defaults only (tests).  Caller frees. */
struct config *config_defaults(void);

/* Override one key (from a command-line flag).  Validates like the file. */
enum as_code config_set(struct config *cfg, const char *key, const char *value,
                        struct as_err *err) AS_WUR;

/* Borrowed string, valid while cfg lives; "" when unset.  Unknown key aborts (programmer error). */
const char *config_str(const struct config *cfg, const char *key);
long long config_int(const struct config *cfg, const char *key);
int config_bool(const struct config *cfg, const char *key);

/* Where the value came from: "default", "file", "env", "flag". */
const char *config_source(const struct config *cfg, const char *key);

/* Effective configuration as a new JSON object, secrets shown as "***".  Caller decrefs. */
json_t *config_dump(const struct config *cfg);

void config_free(struct config *cfg);

#endif
