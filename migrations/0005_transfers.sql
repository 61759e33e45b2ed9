-- Issue 6: money between any wallet and any bank. Balances live only in the ledger (ledger_accounts); these tables
-- hold the directory, consents, quotes, payments, requests, splits, red packets, FX rates and risk state.

-- Account links: a wallet customer's access to an account another participant (a bank) holds for the same person.
create table account_link_consents (
  id text primary key,
  wallet_participant_id text not null references participants (id),
  wallet_customer_id text not null,
  bank_participant_id text not null references participants (id),
  bank_customer_id text not null,
  currency text,
  code_hash text not null,
  attempts integer not null default 0,
  status text not null check (status in ('pending', 'confirmed', 'failed', 'expired')),
  expires_at timestamptz not null,
  created_at timestamptz not null
);
create index account_link_consents_wallet on account_link_consents (wallet_participant_id, wallet_customer_id);

create table account_links (
  id text primary key,
  consent_id text not null,
  wallet_participant_id text not null references participants (id),
  wallet_customer_id text not null,
  bank_participant_id text not null references participants (id),
  bank_customer_id text not null,
  account_id text not null,
  status text not null check (status in ('active', 'revoked')),
  created_at timestamptz not null,
  revoked_at timestamptz
);
create unique index account_links_active on account_links (wallet_participant_id, wallet_customer_id, account_id) where status = 'active';
create index account_links_bank on account_links (bank_participant_id, bank_customer_id);

-- Alias directory (PIX keys / UPI addresses): each alias points to one account at one participant.
create table aliases (
  id text primary key,
  type text not null check (type in ('phone', 'email', 'handle')),
  value text not null,
  participant_id text not null references participants (id),
  customer_id text not null,
  account_id text not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  unique (type, value)
);
create index aliases_customer on aliases (participant_id, customer_id);
create index aliases_account on aliases (account_id);

create table alias_moves (
  id text primary key,
  alias_id text not null,
  to_participant_id text not null references participants (id),
  to_customer_id text not null,
  to_account_id text not null,
  code_hash text not null,
  attempts integer not null default 0,
  status text not null check (status in ('pending', 'confirmed', 'failed', 'expired')),
  expires_at timestamptz not null,
  created_at timestamptz not null
);

create table alias_flags (
  alias_id text not null,
  participant_id text not null references participants (id),
  reason text not null,
  created_at timestamptz not null,
  primary key (alias_id, participant_id)
);

-- FX: the reference table currently in force (replaced as a whole on refresh), liquidity accounts per currency.
create table fx_rates (
  currency text primary key,
  per_eur numeric not null,
  as_of text not null,
  loaded_at timestamptz not null
);

create table fx_liquidity_accounts (
  currency text primary key,
  account_id text not null
);

create table fee_schedules (
  payer_participant_id text not null,
  payee_participant_id text not null,
  fixed_minor bigint not null check (fixed_minor >= 0),
  fixed_currency text not null,
  bps integer not null check (bps between 0 and 10000),
  primary key (payer_participant_id, payee_participant_id)
);

create table quotes (
  id text primary key,
  payer_participant_id text not null,
  payer_customer_id text not null,
  source_account_id text not null,
  payee_alias_id text not null,
  payee_participant_id text not null,
  payee_customer_id text not null,
  payee_account_id text not null,
  send_minor bigint not null,
  send_currency text not null,
  receive_minor bigint not null,
  receive_currency text not null,
  fee_minor bigint not null,
  rate text,
  mid_rate text,
  spread_bps integer not null,
  ref_eur_cents bigint not null,
  risk jsonb not null,
  request_id text,
  status text not null check (status in ('open', 'used')),
  expires_at timestamptz not null,
  created_at timestamptz not null
);

create table payments (
  id text primary key,
  quote_id text not null unique,
  payer_participant_id text not null,
  payer_customer_id text not null,
  source_account_id text not null,
  payee_participant_id text not null,
  payee_customer_id text not null,
  payee_account_id text not null,
  send_minor bigint not null,
  send_currency text not null,
  receive_minor bigint not null,
  receive_currency text not null,
  fee_minor bigint not null,
  rate text,
  ref_eur_cents bigint not null,
  request_id text,
  status text not null check (status in ('completed')),
  transfer_ids text[] not null,
  created_at timestamptz not null
);
create index payments_payer on payments (payer_customer_id, created_at);
create index payments_payee on payments (payee_participant_id, created_at);
create index payments_pair on payments (payer_customer_id, payee_customer_id);

-- Requests to pay ("collect"): never debit anything by themselves; the payer approves, which makes a quote.
create table money_requests (
  id text primary key,
  requester_participant_id text not null,
  requester_customer_id text not null,
  requester_alias_id text,
  requester_account_id text not null,
  payer_alias_id text not null,
  payer_participant_id text not null,
  payer_customer_id text not null,
  amount_minor bigint not null,
  currency text not null,
  note text,
  first_time boolean not null,
  split_id text,
  status text not null check (status in ('pending', 'paid', 'declined', 'cancelled', 'expired')),
  payment_id text,
  expires_at timestamptz not null,
  reminded_at timestamptz,
  created_at timestamptz not null
);
create index money_requests_payer on money_requests (payer_participant_id, payer_customer_id, status);
create index money_requests_requester on money_requests (requester_participant_id, requester_customer_id);

create table payer_blocks (
  payer_participant_id text not null,
  payer_customer_id text not null,
  blocked_participant_id text not null,
  blocked_customer_id text not null,
  created_at timestamptz not null,
  primary key (payer_participant_id, payer_customer_id, blocked_participant_id, blocked_customer_id)
);

create table bill_splits (
  id text primary key,
  participant_id text not null,
  customer_id text not null,
  total_minor bigint not null,
  currency text not null,
  method text not null check (method in ('equal', 'shares', 'amounts')),
  note text,
  reminded_at timestamptz,
  created_at timestamptz not null
);

create table bill_split_members (
  split_id text not null,
  idx integer not null,
  alias_id text,
  participant_id text not null,
  customer_id text not null,
  amount_minor bigint not null,
  request_id text,
  is_payer boolean not null,
  primary key (split_id, idx)
);

-- Red packets: the shares are drawn when the packet is funded; a claim takes one unclaimed share row.
create table red_packets (
  id text primary key,
  participant_id text not null,
  customer_id text not null,
  source_account_id text not null,
  escrow_account_id text not null,
  total_minor bigint not null,
  currency text not null,
  share_count integer not null,
  mode text not null check (mode in ('equal', 'random')),
  message text,
  status text not null check (status in ('open', 'completed', 'refunded')),
  refunded_minor bigint not null default 0,
  expires_at timestamptz not null,
  created_at timestamptz not null
);
create index red_packets_due on red_packets (expires_at) where status = 'open';

create table red_packet_members (
  packet_id text not null,
  participant_id text not null,
  customer_id text not null,
  account_id text not null,
  claimed_minor bigint,
  claimed_at timestamptz,
  primary key (packet_id, participant_id, customer_id)
);

create table red_packet_shares (
  packet_id text not null,
  idx integer not null,
  amount_minor bigint not null check (amount_minor > 0),
  claimed_by_participant_id text,
  claimed_by_customer_id text,
  claimed_at timestamptz,
  refunded boolean not null default false,
  primary key (packet_id, idx)
);
create unique index red_packet_shares_one_per_member on red_packet_shares (packet_id, claimed_by_participant_id, claimed_by_customer_id) where claimed_by_customer_id is not null;

-- Risk: rules as data (participant_id '*' = the hub default), what every channel saw, and alerts.
create table risk_rules (
  participant_id text not null,
  rule text not null,
  params jsonb not null,
  enabled boolean not null,
  updated_at timestamptz not null,
  primary key (participant_id, rule)
);

create table risk_observations (
  id bigserial primary key,
  channel text not null,
  participant_id text not null,
  customer_id text not null,
  counterparty text not null,
  ref_eur_cents bigint not null,
  at timestamptz not null
);
create index risk_observations_customer on risk_observations (participant_id, customer_id, at);

create table risk_alerts (
  id text primary key,
  participant_id text not null,
  customer_id text not null,
  channel text not null,
  decision text not null check (decision in ('step_up', 'decline')),
  score integer not null,
  reasons jsonb not null,
  context jsonb not null,
  status text not null check (status in ('open', 'resolved')),
  resolution text,
  created_at timestamptz not null,
  resolved_at timestamptz
);
create index risk_alerts_participant on risk_alerts (participant_id, status, created_at);
