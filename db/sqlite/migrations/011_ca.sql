-- 011_ca: Conditional Access (db/db_ca.h).
--
-- tenant_ca_policies: the Conditional Access policies concerning legacy
-- authentication as the last `assent sync` read them (a complete listing
-- replaces the set: rows not stamped with that sync's id are deleted).
-- ca_assent_policies: Assent's own record of each policy it manages, keyed
-- by the display name the workflow gives: the policy's id (found again by
-- it before falling back to the name), the exclusion group, and the body
-- Assent last wrote with its SHA-256, so a policy edited outside Assent
-- since is noticed and not overwritten without approval.
-- Times are integer milliseconds since the Unix epoch (UTC).

CREATE TABLE tenant_ca_policies (
  id               TEXT PRIMARY KEY,       -- conditionalAccessPolicy id
  display_name     TEXT NOT NULL,
  state            TEXT NOT NULL,          -- enabled | disabled | enabledForReportingButNotEnforced
  managed          INTEGER NOT NULL,       -- 1: Microsoft-managed (never written by Assent)
  client_app_types TEXT NOT NULL,          -- JSON array
  grant_controls   TEXT NOT NULL,          -- JSON array of builtInControls
  modified_at      TEXT,                   -- modifiedDateTime as Graph gave it
  body             TEXT NOT NULL,          -- the whole policy object (JSON)
  sync_id          INTEGER NOT NULL,
  synced_at        INTEGER NOT NULL
);

CREATE TABLE ca_assent_policies (
  name        TEXT PRIMARY KEY,            -- the policy's display name in the workflow
  policy_id   TEXT NOT NULL,
  group_id    TEXT,                        -- the exclusion group, when there is one
  body_hash   TEXT NOT NULL CHECK (length(body_hash) = 64),
  body        TEXT NOT NULL,               -- what Assent last wrote (JSON)
  written_at  INTEGER NOT NULL
);
