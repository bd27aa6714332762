-- 004_mail (PostgreSQL): one row per idempotency key of an email
-- (steps/mail.c).  Same table and meaning as db/sqlite/migrations/004_mail.sql.

CREATE TABLE mail_sends (
  idempotency_key text PRIMARY KEY,
  message_id      text NOT NULL,             -- "<hex@assent.domain>"
  transport       text NOT NULL,             -- smtp | graph | file
  state           text NOT NULL CHECK (state IN ('sending','sent','failed')),
  attempts        integer NOT NULL DEFAULT 1, -- sends started
  resends         integer NOT NULL DEFAULT 0, -- of which after a crash left 'sending'
  owner           text,                      -- host:pid sending now
  lease_until     bigint,                    -- 'sending': the owner is done before this
  date_ms         bigint NOT NULL,           -- the Date header, kept for an identical re-send
  result          text,                      -- JSON answer of the last finished attempt
  error           text,                      -- error of the last failed attempt
  created_at      bigint NOT NULL,
  updated_at      bigint NOT NULL
);
CREATE INDEX mail_sends_message ON mail_sends(message_id);
