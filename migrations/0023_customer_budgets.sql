-- A customer's monthly budget and low-balance alert, per currency, kept at the hub (not in one browser's storage) so
-- that the wallet can be told by webhook when a threshold is crossed. The alert state makes each crossing notify once:
-- budget_alerted_month is the month (YYYY-MM, UTC) whose over-budget notice was sent; low_alerted is set when the
-- low-balance notice was sent and cleared when the balance is back at or above the threshold.
create table customer_budgets (
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  currency text not null,
  monthly_limit_minor bigint,
  low_balance_minor bigint,
  budget_alerted_month text,
  low_alerted boolean not null default false,
  checked_at timestamptz,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  primary key (participant_id, customer_id, currency),
  constraint customer_budgets_limits_check check ((monthly_limit_minor is null or monthly_limit_minor > 0) and (low_balance_minor is null or low_balance_minor > 0)),
  constraint customer_budgets_some_limit_check check (monthly_limit_minor is not null or low_balance_minor is not null)
);
create index customer_budgets_checked_idx on customer_budgets (checked_at nulls first);
