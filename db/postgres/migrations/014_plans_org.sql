-- 014_plans_org (PostgreSQL): organisation-level Exchange settings
-- (db/db_plans.h).  Same tables and meaning as
-- db/sqlite/migrations/014_plans_org.sql.

CREATE TABLE tenant_mailbox_plans (
  name          text PRIMARY KEY,          -- Name: <DisplayName>-<GUID>
  display_name  text NOT NULL,
  body          text NOT NULL,             -- the plan object as Exchange returned it (JSON)
  sync_id       bigint NOT NULL,
  synced_at     bigint NOT NULL
);

CREATE TABLE tenant_org_config (
  id            integer PRIMARY KEY CHECK (id = 1),
  body          text NOT NULL,             -- the organisation config (JSON; allow list normalized)
  synced_at     bigint NOT NULL
);

CREATE TABLE org_config_writes (
  idem_key      text PRIMARY KEY,          -- the writing step's idempotency key
  setting       text NOT NULL,             -- e.g. EwsAllowedAppIDs
  value         text NOT NULL,             -- what was written (JSON)
  run_id        bigint NOT NULL,
  written_at    bigint NOT NULL,
  visible_at    bigint                     -- NULL until a read shows the change
);

CREATE INDEX org_config_writes_written ON org_config_writes(written_at);
