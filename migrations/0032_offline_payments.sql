-- Offline small payments. A purse is a customer's offline balance on one device: money moved from the customer's
-- account into a reserve account of its own (ledger, kind suspense, no overdraft) up to a limit per device, spent with
-- no network by payment tokens the device signs with its key (ECDSA P-256), settled from the reserve when the merchant
-- uploads them. loaded/settled/unloaded are the purse's running sums (the reserve holds loaded - settled - unloaded).
-- After an unload the purse takes only tokens whose counter is at most last_counter (those the device says it signed
-- before), until upload_deadline; a counter signed twice with different payments blocks the purse.
create table offline_purses (
  id text primary key,
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  currency text not null,
  source_account_id text not null,
  reserve_account_id text not null unique,
  device_id text,
  device_key jsonb not null,
  device_key_thumbprint text not null,
  limit_minor bigint not null check (limit_minor > 0),
  loaded_minor bigint not null default 0 check (loaded_minor >= 0),
  settled_minor bigint not null default 0 check (settled_minor >= 0),
  unloaded_minor bigint not null default 0 check (unloaded_minor >= 0),
  status text not null check (status in ('active', 'unloaded', 'blocked', 'closed')),
  last_counter integer,
  blocked_reason text,
  upload_deadline timestamptz,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  constraint offline_purses_reserve_check check (settled_minor + unloaded_minor <= loaded_minor)
);
-- One open purse per device key and currency.
create unique index offline_purses_device_idx on offline_purses (device_key_thumbprint, currency) where status in ('active', 'blocked');
create index offline_purses_customer_idx on offline_purses (participant_id, customer_id, created_at);
create index offline_purses_deadline_idx on offline_purses (upload_deadline) where status in ('unloaded', 'blocked');

-- Each token settled: one per purse and counter (a second token with the same counter is a double spend), and one per
-- token (the same token presented twice is a replay).
create table offline_payments (
  id text primary key,
  purse_id text not null references offline_purses (id),
  counter integer not null check (counter >= 1),
  token_hash text not null unique,
  merchant_id text not null references merchants (id),
  merchant_owner_id text not null references participants (id),
  amount_minor bigint not null check (amount_minor > 0),
  currency text not null,
  signed_at timestamptz not null,
  settled_at timestamptz not null,
  unique (purse_id, counter)
);
create index offline_payments_merchant_idx on offline_payments (merchant_id, settled_at);

-- Double spends found: the token refused and the one settled under the same counter (evidence for the wallet).
create table offline_double_spends (
  id text primary key,
  purse_id text not null references offline_purses (id),
  counter integer not null,
  token_hash text not null,
  settled_payment_id text not null references offline_payments (id),
  merchant_id text not null references merchants (id),
  amount_minor bigint not null,
  detected_at timestamptz not null
);
create index offline_double_spends_purse_idx on offline_double_spends (purse_id, detected_at);
