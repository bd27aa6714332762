-- 012_playbook (PostgreSQL): evidence of Basic use and drift.  Same tables
-- and meaning as db/sqlite/migrations/012_playbook.sql.

ALTER TABLE tenant_signins ADD COLUMN interactive integer NOT NULL DEFAULT 1;

CREATE TABLE tenant_smtp_auth (
  upn_lower      text PRIMARY KEY,
  upn            text NOT NULL,
  basic_messages bigint NOT NULL,
  oauth_messages bigint NOT NULL,
  imported_at    bigint NOT NULL
);
ALTER TABLE tenant_org ADD COLUMN smtp_auth_imported_at bigint;

CREATE TABLE m365_disabled (
  upn_lower   text NOT NULL,
  protocol    text NOT NULL CHECK (protocol IN ('pop','imap','smtp','activesync','ews')),
  upn         text NOT NULL,
  disabled_at bigint NOT NULL,
  run_id      bigint,
  drift_at    bigint,
  PRIMARY KEY (upn_lower, protocol)
);
CREATE INDEX m365_disabled_drift ON m365_disabled(drift_at) WHERE drift_at IS NOT NULL;
