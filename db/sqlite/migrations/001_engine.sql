-- 001_engine: workflow definitions, runs, step executions, the event log.
--
-- Times are integer milliseconds since the Unix epoch (UTC).
-- A step execution ("exec") is one visit of a run to a step.  Its row is the
-- durable state machine:
--
--   ready --claim--> running --result--> succeeded | failed
--     ^                 |  \--retry----> ready   (due_at = now + backoff)
--     |                 \----wait------> waiting (due_at = deadline)
--     +---resume--------------------------+  waiting --due_at passes--> running
--
-- and any open state -> cancelled.  A claim sets lease_until/lease_owner; a
-- running row whose lease has expired belongs to a dead or stuck process and
-- is claimed again (same idempotency key).  Timers (delay, retry backoff,
-- approval expiry) are just due_at on this row, so a million waiting
-- approvals are a million rows and no memory.
--
-- A step's result and the scheduling of its successor (the next exec row,
-- or the end of the run) are written in one transaction by the executor.
--
-- Written for the executor's hot path: no foreign keys (db/db_runs.c writes
-- a run with its first step and never deletes; an FK check is one more
-- b-tree lookup per row), as few indexes as the queries need, and status
-- conditions spelled with OR instead of IN (SQLite 3.40 builds a temporary
-- table for an IN list each time a statement runs).

-- One row of settings that belong to the database itself.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
-- Prefix of every idempotency key, so that two Assent databases talking to
-- the same service never produce the same key.
INSERT INTO meta (key, value) VALUES ('instance_id', lower(hex(randomblob(6))));

CREATE TABLE workflows (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL,
  version     TEXT NOT NULL,
  hash        TEXT NOT NULL UNIQUE,      -- SHA-256 of the canonical definition
  definition  TEXT NOT NULL,             -- canonical JSON
  source_path TEXT,
  created_at  INTEGER NOT NULL
);
CREATE INDEX workflows_name ON workflows(name, created_at);

CREATE TABLE runs (
  id           INTEGER PRIMARY KEY,
  workflow_id  INTEGER NOT NULL,         -- workflows.id: the version it started with
  workflow     TEXT NOT NULL,            -- its name (a new version keeps the dedupe keys)
  status       TEXT NOT NULL CHECK (status = 'running' OR status = 'waiting' OR status = 'succeeded'
                                    OR status = 'failed' OR status = 'cancelled'),
  input        TEXT NOT NULL DEFAULT '{}',
  error        TEXT,
  dry_run      INTEGER NOT NULL DEFAULT 0,
  dedupe_key   TEXT,                     -- e.g. "kpi:legacy:user@x"; one open run per key
  trigger      TEXT,                     -- "cli", "schedule:<kpi>", "api"
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  finished_at  INTEGER
);
CREATE INDEX runs_status ON runs(status, id);
CREATE INDEX runs_workflow ON runs(workflow, id);
-- A user never has two open runs of the same workflow (whatever its
-- version): the key is unique among runs that have not ended.
CREATE UNIQUE INDEX runs_open_dedupe ON runs(workflow, dedupe_key)
  WHERE dedupe_key IS NOT NULL AND (status = 'running' OR status = 'waiting');

CREATE TABLE step_execs (
  id              INTEGER PRIMARY KEY,
  run_id          INTEGER NOT NULL,             -- runs.id
  step            TEXT NOT NULL,
  visit           INTEGER NOT NULL DEFAULT 1,   -- nth time this run reaches this step
  status          TEXT NOT NULL CHECK (status = 'ready' OR status = 'running' OR status = 'waiting'
                                       OR status = 'succeeded' OR status = 'failed'
                                       OR status = 'cancelled'),
  attempt         INTEGER NOT NULL DEFAULT 0,   -- attempts started so far (reset by a wait and by `retry`)
  recoveries      INTEGER NOT NULL DEFAULT 0,   -- lost claims that had (most likely) started
  queued          INTEGER NOT NULL DEFAULT 0,   -- running: claimed ahead of a free worker
  due_at          INTEGER NOT NULL,             -- ready/waiting: not before this time
  lease_until     INTEGER,                      -- running: claim expires at
  lease_owner     TEXT,                         -- running: "host/pid/start-time" of the claimant
  idempotency_key TEXT NOT NULL,                -- "<instance>/run-<run>/<step>/<visit>": unique
                                                -- because (run_id, step, visit) is
  params          TEXT,                         -- resolved parameters of the last attempt
  output          TEXT,
  outcome         TEXT,
  error           TEXT,
  wait_state      TEXT,
  resume          TEXT,                         -- payload that woke a waiting step
  deadline_reached INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL,
  started_at      INTEGER,                      -- start of the last attempt
  finished_at     INTEGER,
  UNIQUE (run_id, step, visit)
);
-- The claim query: due work first.
CREATE INDEX step_execs_due ON step_execs(due_at) WHERE status = 'ready' OR status = 'waiting';
CREATE INDEX step_execs_lease ON step_execs(lease_until) WHERE status = 'running';
-- A run's executions are found through UNIQUE (run_id, step, visit): every
-- index is one more b-tree written per step, so there is no other.

-- Append-only audit trail.  hash = SHA-256(prev_hash || "id|run_id|exec_id|
-- ts|type|" || SHA-256(data)), digests in hex (see db/db_runs.c); the first
-- record's prev_hash is 64 zeros.
-- `assent audit verify` recomputes the chain.
CREATE TABLE events (
  id        INTEGER PRIMARY KEY,
  run_id    INTEGER,
  exec_id   INTEGER,
  ts        INTEGER NOT NULL,
  type      TEXT NOT NULL,
  data      TEXT NOT NULL DEFAULT '{}',
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL
);
CREATE INDEX events_run ON events(run_id, id);
