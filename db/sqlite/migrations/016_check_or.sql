-- The CHECK constraints written "col IN ('a','b',...)" say the same as
-- "col = 'a' OR col = 'b' ...", but SQLite evaluates an IN list in a CHECK
-- by building a temporary b-tree of the list each time a statement inserts
-- or updates a row: about a sixth of the work of inserting an approver, and
-- a part of every approval created or decided.  Only the schema's text
-- changes, as SQLite's documentation allows for CHECK constraints (the rows
-- already satisfy the same rule; the file format is untouched): edited in
-- sqlite_schema with writable_schema, and RESET reloads the schema of this
-- connection.  The engine's tables were written the OR way from the start.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(sql, 'status IN (''running'',''ok'',''partial'',''failed'')', 'status = ''running'' OR status = ''ok'' OR status = ''partial'' OR status = ''failed''')
 WHERE type = 'table' AND name = 'tenant_syncs';
UPDATE sqlite_schema SET sql = replace(sql, 'policy IN (''any'',''all'',''sequential'')', 'policy = ''any'' OR policy = ''all'' OR policy = ''sequential''')
 WHERE type = 'table' AND name = 'approvals';
UPDATE sqlite_schema SET sql = replace(sql, 'status IN (''pending'',''approved'',''rejected'',''expired'')', 'status = ''pending'' OR status = ''approved'' OR status = ''rejected'' OR status = ''expired''')
 WHERE type = 'table' AND name = 'approvals';
UPDATE sqlite_schema SET sql = replace(sql, 'status IN (''queued'',''pending'',''approved'',''rejected'',''closed'')', 'status = ''queued'' OR status = ''pending'' OR status = ''approved'' OR status = ''rejected'' OR status = ''closed''')
 WHERE type = 'table' AND name = 'approval_approvers';
UPDATE sqlite_schema SET sql = replace(sql, 'purpose IN (''request'',''reminder'')', 'purpose = ''request'' OR purpose = ''reminder''')
 WHERE type = 'table' AND name = 'approval_links';
UPDATE sqlite_schema SET sql = replace(sql, 'state IN (''sending'',''sent'',''failed'')', 'state = ''sending'' OR state = ''sent'' OR state = ''failed''')
 WHERE type = 'table' AND name = 'mail_sends';
UPDATE sqlite_schema SET sql = replace(sql, 'report IN (''users'',''signins'')', 'report = ''users'' OR report = ''signins''')
 WHERE type = 'table' AND name = 'kpis';
UPDATE sqlite_schema SET sql = replace(sql, 'status IN (''running'',''done'',''failed'')', 'status = ''running'' OR status = ''done'' OR status = ''failed''')
 WHERE type = 'table' AND name = 'schedule_runs';
UPDATE sqlite_schema SET sql = replace(sql, 'role IN (''viewer'',''operator'',''admin'')', 'role = ''viewer'' OR role = ''operator'' OR role = ''admin''')
 WHERE type = 'table' AND name = 'api_tokens';
UPDATE sqlite_schema SET sql = replace(sql, 'protocol IN (''pop'',''imap'',''smtp'',''activesync'',''ews'')', 'protocol = ''pop'' OR protocol = ''imap'' OR protocol = ''smtp'' OR protocol = ''activesync'' OR protocol = ''ews''')
 WHERE type = 'table' AND name = 'm365_disabled';
UPDATE sqlite_schema SET sql = replace(sql, 'role IN (''viewer'',''operator'',''admin'')', 'role = ''viewer'' OR role = ''operator'' OR role = ''admin''')
 WHERE type = 'table' AND name = 'console_sessions';
PRAGMA writable_schema = RESET;
