-- 014_plans_org: organisation-level Exchange settings (db/db_plans.h).
--
-- tenant_mailbox_plans: the CAS mailbox plans (Get-CASMailboxPlan) as the
-- last `assent sync` read them (a complete listing replaces the set: rows
-- not stamped with that sync's id are deleted).
-- tenant_org_config: the organisation config (Get-OrganizationConfig
-- -RetrieveEwsOperationAccessPolicy), one row.
-- org_config_writes: the organisation-config writes Assent made, keyed by
-- the writing step's idempotency key, so that the step waiting for its
-- change to become visible does not write again meanwhile.
-- Times are integer milliseconds since the Unix epoch (UTC).
-- (013 is another change's number; a gap is fine.)

CREATE TABLE tenant_mailbox_plans (
  name          TEXT PRIMARY KEY,          -- Name: <DisplayName>-<GUID>
  display_name  TEXT NOT NULL,
  body          TEXT NOT NULL,             -- the plan object as Exchange returned it (JSON)
  sync_id       INTEGER NOT NULL,
  synced_at     INTEGER NOT NULL
);

CREATE TABLE tenant_org_config (
  id            INTEGER PRIMARY KEY CHECK (id = 1),
  body          TEXT NOT NULL,             -- the organisation config (JSON; allow list normalized)
  synced_at     INTEGER NOT NULL
);

CREATE TABLE org_config_writes (
  idem_key      TEXT PRIMARY KEY,          -- the writing step's idempotency key
  setting       TEXT NOT NULL,             -- e.g. EwsAllowedAppIDs
  value         TEXT NOT NULL,             -- what was written (JSON)
  run_id        INTEGER NOT NULL,
  written_at    INTEGER NOT NULL,
  visible_at    INTEGER                    -- NULL until a read shows the change
);

CREATE INDEX org_config_writes_written ON org_config_writes(written_at);
