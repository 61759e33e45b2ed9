-- A participant's requests to move money between its settlement bank account and its position (top-up: funds in,
-- cash-out: funds out). At or below the currency's approval threshold a request completes at once; above it, it waits
-- for the operator to approve (the money then moves) or reject it. The movement itself is a ledger transfer
-- (liquidity_in / liquidity_out) whose id is the request's.
create table liquidity_requests (
  id text collate "C" primary key,
  participant_id text not null references participants (id),
  direction text not null check (direction in ('top_up', 'cash_out')),
  currency text not null,
  amount_minor bigint not null check (amount_minor > 0),
  reference text,
  status text not null check (status in ('pending_approval', 'completed', 'rejected')),
  reason text,
  transfer_id text,
  created_at timestamptz not null,
  decided_at timestamptz
);
create index liquidity_requests_participant on liquidity_requests (participant_id, created_at desc, id desc);
create index liquidity_requests_pending on liquidity_requests (created_at, id) where status = 'pending_approval';

-- The operator's threshold per currency: requests above it need approval (no row: every request needs approval).
create table liquidity_approval_thresholds (
  currency text primary key,
  threshold_minor bigint not null check (threshold_minor >= 0),
  updated_at timestamptz not null
);

-- A hosted participant's customer moving money between their wallet account and a bank account linked into the
-- wallet with the bank's consent (account_links): a withdrawal pays out to the bank account, a top-up pays in from it.
-- Both go through the two participants' positions like any payment between them (ledger transfers, settlement legs).
create table cash_movements (
  id text collate "C" primary key,
  participant_id text not null references participants (id),
  customer_id text not null,
  kind text not null check (kind in ('withdrawal', 'top_up')),
  wallet_account_id text not null,
  bank_account_id text not null,
  bank_participant_id text not null,
  bank_customer_id text not null,
  link_id text not null,
  currency text not null,
  amount_minor bigint not null check (amount_minor > 0),
  status text not null check (status in ('completed')),
  transfer_ids text[] not null,
  created_at timestamptz not null
);
create index cash_movements_customer on cash_movements (participant_id, customer_id, created_at desc, id desc);
