-- Issue 5, "pay anywhere": merchant profiles, merchant-presented QR codes, payment links, card authorizations with
-- capture / void / refund, issuer authorization settings and card-payment risk rules. Money itself only moves in
-- the ledger (ledger_transfers); these tables keep the payment's state and the ids of its ledger transfers.

create table merchants (
  id text primary key,
  -- Who acts for the merchant on the API: the merchant participant itself or its acquirer.
  owner_participant_id text not null references participants (id),
  merchant_participant_id text references participants (id),
  name text not null,
  name_zh text not null,
  mcc text not null check (mcc ~ '^[0-9]{4}$'),
  country text not null check (country ~ '^[A-Z]{2}$'),
  city text not null,
  currency text not null check (currency ~ '^[A-Z]{3}$'),
  settlement_account_id text not null,
  fee_bps integer not null default 0 check (fee_bps between 0 and 1000),
  demo_key text unique,
  created_at timestamptz not null
);
create index merchants_owner on merchants (owner_participant_id, id);

create table pay_qr_codes (
  id text primary key,
  merchant_id text not null references merchants (id),
  owner_participant_id text not null,
  kind text not null check (kind in ('static', 'dynamic')),
  amount_minor bigint check (amount_minor > 0),
  currency text not null,
  bill_number text,
  reference text,
  payload text not null,
  expires_at timestamptz,
  paid_authorization_id text,
  created_at timestamptz not null
);
create index pay_qr_codes_merchant on pay_qr_codes (merchant_id, created_at);

create table pay_links (
  id text primary key,
  merchant_id text not null references merchants (id),
  owner_participant_id text not null,
  amount_minor bigint not null check (amount_minor > 0),
  currency text not null,
  description text not null,
  multiple_use boolean not null,
  expires_at timestamptz not null,
  pay_count integer not null default 0,
  created_at timestamptz not null
);
create index pay_links_merchant on pay_links (merchant_id, created_at);

create table pay_authorizations (
  id text primary key,
  owner_participant_id text not null,
  merchant_id text not null references merchants (id),
  channel text not null check (channel in ('mpm_static', 'mpm_dynamic', 'cpm', 'tap', 'link')),
  status text not null check (status in ('authorized', 'captured', 'voided', 'expired')),
  source_kind text not null check (source_kind in ('token', 'account')),
  issuer_participant_id text not null,
  card_id text,
  token_id text,
  payer_participant_id text,
  payer_customer_id text,
  source_account_id text not null,
  device_id text,
  amount_minor bigint not null check (amount_minor > 0),
  currency text not null,
  captured_minor bigint not null default 0,
  refunded_minor bigint not null default 0,
  fee_minor bigint not null default 0,
  auth_code text not null,
  decided_by text not null check (decided_by in ('hosted', 'issuer', 'stand_in', 'account')),
  hold_transfer_id text not null,
  hold_expires_at timestamptz,
  qr_id text,
  link_id text,
  risk_score integer not null default 0,
  country text not null,
  mcc text not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  check (captured_minor <= amount_minor and refunded_minor <= captured_minor)
);
create index pay_authorizations_owner on pay_authorizations (owner_participant_id, created_at desc);
create index pay_authorizations_card on pay_authorizations (card_id, created_at) where card_id is not null;
create index pay_authorizations_token on pay_authorizations (token_id, created_at) where token_id is not null;
create index pay_authorizations_device on pay_authorizations (device_id, created_at) where device_id is not null;
create index pay_authorizations_payer on pay_authorizations (payer_participant_id, created_at desc);
create index pay_authorizations_hold on pay_authorizations (hold_expires_at) where status = 'authorized';

create table pay_refunds (
  id text primary key,
  authorization_id text not null references pay_authorizations (id),
  amount_minor bigint not null check (amount_minor > 0),
  transfer_id text not null,
  created_at timestamptz not null
);
create index pay_refunds_authorization on pay_refunds (authorization_id);

-- Per issuer: hosted (the hub holds funds on the card's funding account) or a real-time webhook to the issuer.
create table pay_issuer_settings (
  issuer_participant_id text primary key references participants (id),
  mode text not null check (mode in ('hosted', 'webhook')),
  auth_url text,
  deadline_ms integer not null check (deadline_ms between 50 and 10000),
  stand_in_action text not null check (stand_in_action in ('approve', 'decline')),
  stand_in_max_minor bigint not null check (stand_in_max_minor >= 0),
  updated_at timestamptz not null
);

-- Card-payment risk rules as data: participant '*' holds the hub defaults, an issuer overrides per rule.
create table pay_risk_rules (
  participant_id text not null,
  rule text not null,
  params jsonb not null,
  enabled boolean not null,
  updated_at timestamptz not null,
  primary key (participant_id, rule)
);
