-- 013_console_sessions: sessions of the admin console (db/db_sessions.h).
--
-- Times are integer milliseconds since the Unix epoch (UTC).
-- A session cookie is never stored: session_hash is the hex SHA-256 of
-- it, found through its unique index on every console request, so every
-- node sharing the database knows every session.  A session was opened
-- with an API token (token_id; NULL for the admin_token_file token) and
-- has that token's name and role; it ends at expires_at, when its token is
-- revoked or expires, or at logout (the row is deleted).  Opening and
-- ending are in the audit chain (console.login, console.logout).
-- 011 and 012 are other changes' numbers.

CREATE TABLE console_sessions (
  id            INTEGER PRIMARY KEY,
  session_hash  TEXT NOT NULL UNIQUE CHECK (length(session_hash) = 64),
  token_id      INTEGER REFERENCES api_tokens(id),   -- NULL: admin_token_file
  name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
  role          TEXT NOT NULL CHECK (role IN ('viewer','operator','admin')),
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  client_addr   TEXT NOT NULL DEFAULT '',
  user_agent    TEXT NOT NULL DEFAULT ''
);
-- Expired sessions are removed by the next login (any node).
CREATE INDEX console_sessions_expires ON console_sessions(expires_at);
