-- 010_nodes (PostgreSQL only): the nodes that share this database, each
-- an engine (`assent serve`, `assent worker`, `assent run --wait`) named by
-- its lease owner "host/pid/start-time" (base/lease_owner.h).  A node
-- beats every third of its node_timeout (db_node_heartbeat); a node whose
-- last beat is older than its timeout is dead, and other nodes take over
-- its claims at once instead of waiting for their leases to end
-- (db/postgres/execs.c).  Times are the database's clock, ms since the
-- epoch, so that nodes whose own clocks disagree agree on who is dead.
-- SQLite needs no such table: one host, whose dead processes are found by
-- their process ids.

CREATE TABLE nodes (
  owner        text PRIMARY KEY,   -- the engine's lease owner
  started_at   bigint NOT NULL,    -- its first beat
  heartbeat_at bigint NOT NULL,    -- its last beat
  expires_at   bigint NOT NULL     -- heartbeat_at + its node_timeout: dead after this
);
CREATE INDEX nodes_expires ON nodes(expires_at);
