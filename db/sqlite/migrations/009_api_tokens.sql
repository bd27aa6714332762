-- 009_api_tokens: bearer tokens of the REST API (db/db_tokens.h).
--
-- Times are integer milliseconds since the Unix epoch (UTC).
-- A token is never stored: token_hash is the hex SHA-256 of it, found
-- through its unique index on every API request.  Rows are never deleted:
-- revoking sets revoked_at, so the record of who held which access stays.

CREATE TABLE api_tokens (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
  role        TEXT NOT NULL CHECK (role IN ('viewer','operator','admin')),
  token_hash  TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
  created_at  INTEGER NOT NULL,
  created_by  TEXT NOT NULL,
  expires_at  INTEGER,                     -- NULL: never
  revoked_at  INTEGER,                     -- NULL: in force (unless expired)
  revoked_by  TEXT
);
-- `assent token revoke NAME` means one token: a name is unique among the
-- tokens not revoked (an expired one keeps its name until revoked).
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens(name) WHERE revoked_at IS NULL;
