-- 003_approvals: approval requests, their approvers, the links mailed to
-- them, and per-installation secrets of the web server.
--
-- Times are integer milliseconds since the Unix epoch (UTC).
-- Tokens are never stored: a link row holds the hex SHA-256 of its token.
-- One approval belongs to one step execution (idempotency_key is the
-- step's key), so a re-run of the step finds it instead of asking twice.

CREATE TABLE approvals (
  id               INTEGER PRIMARY KEY,
  run_id           INTEGER NOT NULL REFERENCES runs(id),
  exec_id          INTEGER NOT NULL REFERENCES step_execs(id),
  step             TEXT NOT NULL,
  workflow         TEXT NOT NULL,
  idempotency_key  TEXT NOT NULL UNIQUE,
  policy           TEXT NOT NULL CHECK (policy IN ('any','all','sequential')),
  status           TEXT NOT NULL CHECK (status IN ('pending','approved','rejected','expired')),
  subject          TEXT NOT NULL,
  message          TEXT NOT NULL DEFAULT '',
  requested_by     TEXT NOT NULL DEFAULT '',
  details          TEXT NOT NULL DEFAULT '{}',   -- JSON object shown as a table
  request          TEXT NOT NULL DEFAULT '{}',   -- canonical JSON of the exact change
  request_hash     TEXT NOT NULL,                -- SHA-256 hex of `request`
  require_comment_on_reject INTEGER NOT NULL DEFAULT 0,
  escalate_to      TEXT NOT NULL DEFAULT '[]',   -- JSON array of addresses
  reminder_every_ms INTEGER,                     -- NULL: no reminders
  next_reminder_at INTEGER,                      -- NULL: no further reminder
  reminders_sent   INTEGER NOT NULL DEFAULT 0,
  expires_at       INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  decided_at       INTEGER,
  decided_by       TEXT,                         -- approver address, or "cli:<user>"
  decided_via      TEXT,                         -- web | cli | expiry
  comment          TEXT,
  escalated_at     INTEGER,
  -- 1 while a decision still has to wake the step (db_exec_resume found it
  -- running, e.g. still sending the first emails); retried until it waits.
  resume_pending   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX approvals_status ON approvals(status, expires_at);
CREATE INDEX approvals_run ON approvals(run_id);
CREATE INDEX approvals_resume ON approvals(id) WHERE resume_pending = 1;

-- status: queued (sequential, not yet asked) -> pending (asked) ->
-- approved | rejected, or closed (the approval was decided without them).
CREATE TABLE approval_approvers (
  id           INTEGER PRIMARY KEY,
  approval_id  INTEGER NOT NULL REFERENCES approvals(id),
  position     INTEGER NOT NULL,                -- 0-based order (sequential)
  email        TEXT NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('queued','pending','approved','rejected','closed')),
  sent_at      INTEGER,                         -- the request email went out
  n_links      INTEGER NOT NULL DEFAULT 0,
  decided_at   INTEGER,
  decided_via  TEXT,                            -- web | cli
  actor        TEXT,                            -- who pressed the button
  comment      TEXT,
  client_addr  TEXT,
  user_agent   TEXT,
  UNIQUE (approval_id, position),
  UNIQUE (approval_id, email)
);

-- Every link made for an email (request, reminder).  All links of an
-- approver stay valid while the approver is pending: a reminder adds a link
-- rather than invalidating the one in the first email, and a re-run after
-- a crash adds a new token rather than revoking one that may have been
-- delivered (see db_approvals_link_sent).
CREATE TABLE approval_links (
  token_hash   TEXT PRIMARY KEY,                -- hex SHA-256 of the token
  approver_id  INTEGER NOT NULL REFERENCES approval_approvers(id),
  seq          INTEGER NOT NULL,                -- nth link of this approver
  purpose      TEXT NOT NULL CHECK (purpose IN ('request','reminder')),
  created_at   INTEGER NOT NULL,
  sent_at      INTEGER,                         -- its email is known to have gone out
  UNIQUE (approver_id, seq)
);

-- Per-installation secrets (e.g. the key of the CSRF HMAC).  Readable by
-- whoever can read the database file, which already holds everything else.
CREATE TABLE web_secrets (
  name        TEXT PRIMARY KEY,
  value       BLOB NOT NULL,
  created_at  INTEGER NOT NULL
);
