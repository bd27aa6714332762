/* A db/ file that includes the engine: must not compile (lint.layers_build). */
#include "db/db.h"
#include "engine/engine.h"
