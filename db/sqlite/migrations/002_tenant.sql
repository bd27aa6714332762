-- 002_tenant: what `assent sync` last saw of the Microsoft 365 tenant, the
-- source of `assent report`, `assent plan` and the KPIs.
--
-- Each sync has a row in tenant_syncs; every synced row carries the id of the
-- sync that last wrote it (sync_id) and when (synced_at, ms since the epoch),
-- so rows the tenant no longer has are the ones a complete listing did not
-- touch.  A section that fails (e.g. sign-ins without an Entra ID P1 licence)
-- leaves that section's previous rows in place, and the sync row says so.

CREATE TABLE tenant_syncs (
  id          INTEGER PRIMARY KEY,
  started_at  INTEGER NOT NULL,
  finished_at INTEGER,
  status      TEXT NOT NULL CHECK (status IN ('running','ok','partial','failed')),
  summary     TEXT NOT NULL DEFAULT '{}',  -- counts, warnings[], duration_ms (JSON)
  error       TEXT
);

-- Entra users (Graph /users).
CREATE TABLE tenant_users (
  id              TEXT PRIMARY KEY,        -- Entra object id
  upn             TEXT NOT NULL,
  upn_lower       TEXT NOT NULL,
  display_name    TEXT,
  mail            TEXT,
  account_enabled INTEGER,                 -- 0/1, NULL when unknown
  licensed        INTEGER,                 -- has assigned licences
  sync_id         INTEGER NOT NULL,
  synced_at       INTEGER NOT NULL
);
CREATE INDEX tenant_users_upn ON tenant_users(upn_lower);

-- CAS mailbox protocol switches (Exchange Get-CASMailbox), one per user with a mailbox.
CREATE TABLE tenant_cas (
  user_id            TEXT PRIMARY KEY,     -- tenant_users.id
  identity           TEXT,
  primary_smtp       TEXT,
  activesync         INTEGER,
  owa                INTEGER,
  pop                INTEGER,
  imap               INTEGER,
  mapi               INTEGER,
  ews                INTEGER,
  smtp_auth_disabled INTEGER,              -- NULL: follows the organisation setting
  sync_id            INTEGER NOT NULL,
  synced_at          INTEGER NOT NULL
);

-- Email-app usage report, last 30 days, keyed by lower-cased UPN.
CREATE TABLE tenant_usage (
  upn_lower     TEXT PRIMARY KEY,
  pop3          INTEGER NOT NULL,
  imap4         INTEGER NOT NULL,
  smtp          INTEGER NOT NULL,
  last_activity TEXT,
  report_date   TEXT,
  sync_id       INTEGER NOT NULL,
  synced_at     INTEGER NOT NULL
);

-- Legacy-client sign-in events of the last 30 days.
CREATE TABLE tenant_signins (
  id          TEXT PRIMARY KEY,
  created_ms  INTEGER NOT NULL,
  created_at  TEXT NOT NULL,
  user_id     TEXT,
  upn         TEXT,
  client_app  TEXT NOT NULL,
  app_name    TEXT,
  ip_address  TEXT,
  error_code  INTEGER,
  sync_id     INTEGER NOT NULL
);
CREATE INDEX tenant_signins_user ON tenant_signins(user_id, created_ms);
CREATE INDEX tenant_signins_time ON tenant_signins(created_ms);

-- Organisation-wide state: transport config and which sections have data.
CREATE TABLE tenant_org (
  id                        INTEGER PRIMARY KEY CHECK (id = 1),
  smtp_client_auth_disabled INTEGER,       -- Get-TransportConfig SmtpClientAuthenticationDisabled
  allow_legacy_tls_clients  INTEGER,
  transport                 TEXT,          -- the whole Get-TransportConfig object (JSON)
  transport_synced_at       INTEGER,
  usage_synced_at           INTEGER,       -- last sync whose usage report was stored
  signins_synced_at         INTEGER        -- last sync whose sign-ins were stored
);
