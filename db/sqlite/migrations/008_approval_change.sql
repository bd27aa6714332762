-- 008_approval_change: what an approval page shows beside the request it
-- freezes, and which is NOT part of the request hash: the values, at the
-- time of asking, of the settings the request changes, and the cmdlet that
-- makes the change (the approval step's `current` and `cmdlet` parameters).
-- (007 belongs to the runs' end states.)
ALTER TABLE approvals ADD COLUMN current_settings TEXT;  -- JSON object; NULL: not given
ALTER TABLE approvals ADD COLUMN cmdlet TEXT;            -- e.g. Set-CASMailbox; NULL: none
