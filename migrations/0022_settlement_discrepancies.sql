-- Reconciliation: each comparison a participant asked for (its uploaded view of a window against the hub's legs), kept
-- so that the operator sees the discrepancies participants found. Amounts in minor units; the listed differences
-- (at most 200) as JSON with decimal-string amounts.
create table settlement_discrepancy_reports (
  id text collate "C" primary key,
  window_id text collate "C" not null references settlement_windows (id),
  participant_id text not null,
  currency text not null,
  matched integer not null,
  hub_count integer not null,
  participant_count integer not null,
  hub_net_minor bigint not null,
  participant_net_minor bigint not null,
  -- Per kind (missing_at_participant, missing_at_hub, direction, counterparty, amount, currency, duplicate).
  counts jsonb not null,
  items jsonb not null,
  created_at timestamptz not null
);
create index settlement_discrepancy_reports_window on settlement_discrepancy_reports (window_id, created_at);
