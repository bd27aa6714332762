-- 006_engine_resume: a resume that arrives while its step is still running.
--
-- db_exec_resume() on a running (or ready) execution cannot wake it: it is
-- not waiting yet (an approval step mails its approvers before it waits, and
-- an approver may click first).  The payload is held here instead; when that
-- attempt ends with a wait, the executor makes the row ready at once with
-- this payload as its resume (db_exec_record), so the decision is never lost
-- and nothing has to poll for it.  A later held resume replaces an earlier
-- one (the newest state is what a step needs).
ALTER TABLE step_execs ADD COLUMN resume_held TEXT;
