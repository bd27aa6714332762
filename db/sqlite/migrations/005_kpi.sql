-- 005_kpi: KPIs (saved filters over a report) with their value history,
-- protocol exceptions, and the scheduler's record of fired schedules.
--
-- Times are integer milliseconds since the Unix epoch (UTC).

CREATE TABLE kpis (
  id              INTEGER PRIMARY KEY,
  name            TEXT NOT NULL UNIQUE,
  report          TEXT NOT NULL CHECK (report IN ('users','signins')),
  definition      TEXT NOT NULL,          -- the KPI as canonical JSON (docs/kpis.md)
  schedule        TEXT,                   -- 5-field cron, NULL when not scheduled
  timezone        TEXT,                   -- IANA zone of the schedule
  sched_last_for  INTEGER,                -- latest fire time the scheduler handled
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);

-- One row per evaluation: the trend.
CREATE TABLE kpi_values (
  id         INTEGER PRIMARY KEY,
  kpi_id     INTEGER NOT NULL REFERENCES kpis(id) ON DELETE CASCADE,
  ts         INTEGER NOT NULL,
  value      INTEGER NOT NULL,            -- rows found (exempt rows left out)
  exempt     INTEGER NOT NULL DEFAULT 0,  -- rows left out because of exceptions
  breakdown  TEXT                         -- JSON {"IMAP4": 12, ...} when the KPI groups
);
CREATE INDEX kpi_values_kpi ON kpi_values(kpi_id, ts);

-- A user exempt from some protocols until expires_at.  Rows are never
-- deleted: `exception remove` sets removed_at, so the history stays.
CREATE TABLE exceptions (
  id          INTEGER PRIMARY KEY,
  upn         TEXT NOT NULL COLLATE NOCASE,
  protocols   TEXT NOT NULL,              -- JSON array of names, or ["all"]
  reason      TEXT NOT NULL CHECK (length(reason) > 0),
  granted_by  TEXT NOT NULL CHECK (length(granted_by) > 0),
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  removed_at  INTEGER,
  removed_by  TEXT,
  source      TEXT NOT NULL DEFAULT 'cli', -- "cli", "run:<id>"
  source_key  TEXT UNIQUE                  -- idempotency key of the step that recorded it
);
CREATE INDEX exceptions_upn ON exceptions(upn);
CREATE INDEX exceptions_active ON exceptions(expires_at) WHERE removed_at IS NULL;

-- Each schedule firing (and each catch-up after downtime) is recorded once.
CREATE TABLE schedule_runs (
  id             INTEGER PRIMARY KEY,
  kpi_id         INTEGER NOT NULL REFERENCES kpis(id) ON DELETE CASCADE,
  scheduled_for  INTEGER NOT NULL,           -- the fire time this run stands for
  missed         INTEGER NOT NULL DEFAULT 0, -- earlier fire times folded into it (downtime)
  status         TEXT NOT NULL CHECK (status IN ('running','done','failed')),
  started_at     INTEGER NOT NULL,
  finished_at    INTEGER,
  result         TEXT,                       -- JSON: rows, started, duplicates, deferred
  error          TEXT,
  UNIQUE (kpi_id, scheduled_for)
);
CREATE INDEX schedule_runs_status ON schedule_runs(status) WHERE status = 'running';
