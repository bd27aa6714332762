-- 011_ca (PostgreSQL): Conditional Access (db/db_ca.h).  Same tables and
-- meaning as db/sqlite/migrations/011_ca.sql.

CREATE TABLE tenant_ca_policies (
  id               text PRIMARY KEY,       -- conditionalAccessPolicy id
  display_name     text NOT NULL,
  state            text NOT NULL,          -- enabled | disabled | enabledForReportingButNotEnforced
  managed          integer NOT NULL,       -- 1: Microsoft-managed (never written by Assent)
  client_app_types text NOT NULL,          -- JSON array
  grant_controls   text NOT NULL,          -- JSON array of builtInControls
  modified_at      text,                   -- modifiedDateTime as Graph gave it
  body             text NOT NULL,          -- the whole policy object (JSON)
  sync_id          bigint NOT NULL,
  synced_at        bigint NOT NULL
);

CREATE TABLE ca_assent_policies (
  name        text PRIMARY KEY,            -- the policy's display name in the workflow
  policy_id   text NOT NULL,
  group_id    text,                        -- the exclusion group, when there is one
  body_hash   text NOT NULL CHECK (length(body_hash) = 64),
  body        text NOT NULL,               -- what Assent last wrote (JSON)
  written_at  bigint NOT NULL
);
