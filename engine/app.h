/*
 * app.h - the process-wide context handed to commands, steps and the web
 * server: configuration, database and (when running) the engine.
 * Everything in it is either immutable after start or thread-safe.
 */
#ifndef ASSENT_APP_H
#define ASSENT_APP_H

struct config;
struct db;
struct engine;

struct app {
    struct config *cfg;    /* owned by main; immutable once loaded */
    struct db *db;         /* owned by main; thread-safe (see db/db.h) */
    struct engine *engine; /* set while workers run (assent worker/serve/run --wait), else NULL */
};

#endif
