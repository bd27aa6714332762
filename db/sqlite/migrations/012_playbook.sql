-- 012_playbook: evidence of Basic use and drift (issue: the whole playbook).
--
-- Times are integer milliseconds since the Unix epoch (UTC).

-- Which sign-in stream an event came from: 1 interactive (Graph v1.0),
-- 0 non-interactive (Graph beta, signInEventTypes nonInteractiveUser).
ALTER TABLE tenant_signins ADD COLUMN interactive INTEGER NOT NULL DEFAULT 1;

-- The Exchange admin center's SMTP AUTH clients report, as last imported by
-- `assent import smtp-auth-report`: messages per sender and authentication
-- protocol over the period the export covers.  An import replaces it whole.
CREATE TABLE tenant_smtp_auth (
  upn_lower      TEXT PRIMARY KEY,
  upn            TEXT NOT NULL,
  basic_messages INTEGER NOT NULL,
  oauth_messages INTEGER NOT NULL,
  imported_at    INTEGER NOT NULL
);
ALTER TABLE tenant_org ADD COLUMN smtp_auth_imported_at INTEGER;

-- Protocols Assent turned off for a mailbox (manage_cas), so that a later
-- sync that finds one on again with no exception in force records drift.
CREATE TABLE m365_disabled (
  upn_lower   TEXT NOT NULL,
  protocol    TEXT NOT NULL CHECK (protocol IN ('pop','imap','smtp','activesync','ews')),
  upn         TEXT NOT NULL,
  disabled_at INTEGER NOT NULL,
  run_id      INTEGER,
  drift_at    INTEGER,            -- a sync found it on again (NULL: no drift now)
  PRIMARY KEY (upn_lower, protocol)
);
CREATE INDEX m365_disabled_drift ON m365_disabled(drift_at) WHERE drift_at IS NOT NULL;
