-- 006_engine_resume (PostgreSQL): a resume that arrives while its step is
-- still running is held here until that attempt ends with a wait
-- (db/sqlite/migrations/006_engine_resume.sql explains).
ALTER TABLE step_execs ADD COLUMN resume_held text;
