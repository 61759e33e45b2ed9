-- /health proves that the hub can COMMIT (a restarted, full, read-only or stalled database cannot): it writes this
-- one row, at most about once a second per hub process (src/system/routes.ts).
create table hub_heartbeat (
  id int primary key check (id = 1),
  beat_at timestamptz not null
);
