-- 007_recheck (PostgreSQL): how an ended run ended for people (end_status
-- 'superseded'), the KPI whose trigger started a run, and why an exception
-- was removed (db/sqlite/migrations/007_recheck.sql explains).
ALTER TABLE runs ADD COLUMN end_status text CHECK (end_status IS NULL OR end_status = 'superseded');
ALTER TABLE runs ADD COLUMN kpi text;
CREATE INDEX runs_open_kpi ON runs(kpi, workflow)
  WHERE kpi IS NOT NULL AND (status = 'running' OR status = 'waiting');

ALTER TABLE exceptions ADD COLUMN removed_reason text;
