-- 008_approval_change (PostgreSQL): what an approval page shows beside the
-- request it freezes, not part of the request hash
-- (db/sqlite/migrations/008_approval_change.sql explains).
ALTER TABLE approvals ADD COLUMN current_settings text;  -- JSON object; NULL: not given
ALTER TABLE approvals ADD COLUMN cmdlet text;            -- e.g. Set-CASMailbox; NULL: none
