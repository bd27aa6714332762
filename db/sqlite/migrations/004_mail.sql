-- 004_mail: one row per idempotency key of an email (steps/mail.c).
--
-- The row is written 'sending' before the transport is called and 'sent'
-- or 'failed' after it answers, in two short transactions.  A row left
-- 'sending' means the process died in between: the next attempt re-sends
-- the same message (same message_id and date_ms) and counts it in resends.
-- owner ("host:pid") and lease_until tell a live sender from a dead one.

CREATE TABLE mail_sends (
  idempotency_key TEXT PRIMARY KEY,
  message_id      TEXT NOT NULL,             -- "<hex@assent.domain>"
  transport       TEXT NOT NULL,             -- smtp | graph | file
  state           TEXT NOT NULL CHECK (state IN ('sending','sent','failed')),
  attempts        INTEGER NOT NULL DEFAULT 1, -- sends started
  resends         INTEGER NOT NULL DEFAULT 0, -- of which after a crash left 'sending'
  owner           TEXT,                      -- host:pid sending now
  lease_until     INTEGER,                   -- 'sending': the owner is done before this
  date_ms         INTEGER NOT NULL,          -- the Date header, kept for an identical re-send
  result          TEXT,                      -- JSON answer of the last finished attempt
  error           TEXT,                      -- error of the last failed attempt
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);
CREATE INDEX mail_sends_message ON mail_sends(message_id);
