-- 001_engine: workflow definitions, runs, step executions, the event log.
--
-- Times are integer milliseconds since the Unix epoch (UTC).
-- A step execution ("exec") is one visit of a run to a step.  Its row is the
-- durable state machine: ready -> running (claimed, lease_until) -> one of
-- succeeded | failed | cancelled, or waiting (due_at = deadline) -> ready ...
-- Timers (delay, retry backoff, approval expiry) are just due_at on this row,
-- so a million waiting approvals are a million rows and no memory.

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
  workflow_id  INTEGER NOT NULL REFERENCES workflows(id),
  status       TEXT NOT NULL CHECK (status IN ('running','waiting','succeeded','failed','cancelled')),
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
CREATE INDEX runs_workflow ON runs(workflow_id, id);
-- A user never has two open runs of the same workflow: the key is unique
-- among runs that have not ended.
CREATE UNIQUE INDEX runs_open_dedupe ON runs(workflow_id, dedupe_key)
  WHERE dedupe_key IS NOT NULL AND status IN ('running','waiting');

CREATE TABLE step_execs (
  id              INTEGER PRIMARY KEY,
  run_id          INTEGER NOT NULL REFERENCES runs(id),
  step            TEXT NOT NULL,
  visit           INTEGER NOT NULL DEFAULT 1,   -- nth time this run reaches this step
  status          TEXT NOT NULL CHECK (status IN ('ready','running','waiting','succeeded','failed','cancelled')),
  attempt         INTEGER NOT NULL DEFAULT 0,   -- attempts started so far
  due_at          INTEGER NOT NULL,             -- ready/waiting: not before this time
  lease_until     INTEGER,                      -- running: claim expires at
  lease_owner     TEXT,
  idempotency_key TEXT NOT NULL UNIQUE,
  params          TEXT,                         -- resolved parameters of the last attempt
  output          TEXT,
  outcome         TEXT,
  error           TEXT,
  wait_state      TEXT,
  resume          TEXT,                         -- payload that woke a waiting step
  deadline_reached INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL,
  started_at      INTEGER,
  finished_at     INTEGER,
  UNIQUE (run_id, step, visit)
);
-- The claim query: due work first.
CREATE INDEX step_execs_due ON step_execs(due_at) WHERE status IN ('ready','waiting');
CREATE INDEX step_execs_lease ON step_execs(lease_until) WHERE status = 'running';
CREATE INDEX step_execs_run ON step_execs(run_id, id);

-- Append-only audit trail.  hash = SHA-256(prev_hash || canonical record);
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
