-- 007_recheck: acting on the tenant as it is now (docs/kpis.md).
--
-- runs.end_status refines how an ended run ended, for people: a run a later
-- trigger of its KPI found no longer needed is stored with status
-- 'cancelled' (every rule about ended runs applies to it unchanged) and
-- end_status 'superseded', which listings show as its status.
-- runs.kpi names the KPI whose trigger started the run, so that trigger can
-- find its own open runs again.
ALTER TABLE runs ADD COLUMN end_status TEXT CHECK (end_status IS NULL OR end_status = 'superseded');
ALTER TABLE runs ADD COLUMN kpi TEXT;
CREATE INDEX runs_open_kpi ON runs(kpi, workflow)
  WHERE kpi IS NOT NULL AND (status = 'running' OR status = 'waiting');

-- Why an exception was removed (exception remove --reason).
ALTER TABLE exceptions ADD COLUMN removed_reason TEXT;
