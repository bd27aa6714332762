-- 015_sign_in: sign-in with Entra ID (OpenID Connect; db/db_signin.h).
-- 014 is another change's number.
--
-- Times are integer milliseconds since the Unix epoch (UTC).
--
-- signin_flows: one row per sign-in under way, made when the browser is
-- sent to the identity platform and deleted when its callback takes it
-- (single use), so any node sharing the database can finish the flow.
-- state_hash is the hex SHA-256 of the `state` parameter, browser_hash that
-- of the browser's flow cookie (a callback from another browser is
-- refused).  The nonce and the PKCE code verifier are kept as they are:
-- both must be sent or compared in the clear, and both are worthless once
-- the row expires (10 minutes) or is taken.
CREATE TABLE signin_flows (
  id             INTEGER PRIMARY KEY,
  state_hash     TEXT NOT NULL UNIQUE CHECK (length(state_hash) = 64),
  browser_hash   TEXT NOT NULL CHECK (length(browser_hash) = 64),
  nonce          TEXT NOT NULL,
  code_verifier  TEXT NOT NULL,
  return_to      TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL
);
CREATE INDEX signin_flows_expires ON signin_flows(expires_at);

-- signin_sessions: a person signed in to answer approval links (the
-- cookie's hex SHA-256, never the cookie), with the verified identity.
CREATE TABLE signin_sessions (
  id            INTEGER PRIMARY KEY,
  session_hash  TEXT NOT NULL UNIQUE CHECK (length(session_hash) = 64),
  upn           TEXT NOT NULL,
  oid           TEXT NOT NULL CHECK (length(oid) BETWEEN 1 AND 64),
  tid           TEXT NOT NULL,
  name          TEXT NOT NULL DEFAULT '',
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  client_addr   TEXT NOT NULL DEFAULT '',
  user_agent    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX signin_sessions_expires ON signin_sessions(expires_at);

-- A console session opened by signing in with Entra ID carries who signed
-- in ('' for a session opened with a token).
ALTER TABLE console_sessions ADD COLUMN upn TEXT NOT NULL DEFAULT '';
ALTER TABLE console_sessions ADD COLUMN oid TEXT NOT NULL DEFAULT '';
ALTER TABLE console_sessions ADD COLUMN tid TEXT NOT NULL DEFAULT '';

-- An approval whose links show the decision form only to its approver,
-- signed in (the step's require_sign_in).
ALTER TABLE approvals ADD COLUMN require_sign_in INTEGER NOT NULL DEFAULT 0;
