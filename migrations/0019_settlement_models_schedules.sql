-- Settlement models per currency and scheduled closes.

-- How a currency settles: deferred net (the default, also when a currency has no row: windows close into net positions
-- and the operator records the settlement bank's confirmation) or immediate gross (each payment between participants
-- moves their liquidity at once, in its own transaction; windows then only report).
create table settlement_currency_models (
  currency text collate "C" primary key check (currency ~ '^[A-Z]{3}$'),
  model text not null check (model in ('deferred_net', 'immediate_gross')),
  updated_at timestamptz not null
);

-- A position leg that was settled gross when it committed (liquidity already moved): not in any instruction.
alter table settlement_entries add column gross boolean not null default false;

-- When each currency's open window closes by itself: every N minutes, or daily at a cut-off time (UTC). The job closes
-- the window when next_close_at has passed and moves next_close_at on, in one transaction (a crash repeats nothing).
create table settlement_schedules (
  currency text collate "C" primary key check (currency ~ '^[A-Z]{3}$'),
  every_minutes integer check (every_minutes between 1 and 10080),
  cutoff_utc text check (cutoff_utc ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
  next_close_at timestamptz not null,
  updated_at timestamptz not null,
  check ((every_minutes is null) <> (cutoff_utc is null))
);
