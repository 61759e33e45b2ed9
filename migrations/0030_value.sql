-- Value beyond paying: issuers' rewards, merchants' coupons and membership cards, customers' savings pots, and the
-- card-payment declines the issuer insights count.

-- A savings pot is a ledger account of its own kind: money in it is the customer's, but no payment draws from it.
alter table ledger_accounts drop constraint if exists ledger_accounts_kind_check;
alter table ledger_accounts add constraint ledger_accounts_kind_check
  check (kind in ('customer', 'settlement', 'fees', 'fx_liquidity', 'suspense', 'funding', 'merchant', 'credit', 'savings'));

-- Rewards rules per card product: points per 1.00 spent, or cashback in basis points, optionally for one merchant
-- category (MCC), optionally capped per calendar month (UTC) per card (points, or cashback in minor units).
create table reward_rules (
  id text collate "C" primary key,
  issuer_participant_id text not null references participants (id),
  card_product_id text not null references card_products (id),
  kind text not null check (kind in ('points', 'cashback')),
  mcc text check (mcc ~ '^[0-9]{4}$'),
  points_per_unit integer check (points_per_unit > 0),
  cashback_bps integer check (cashback_bps > 0 and cashback_bps <= 10000),
  monthly_cap bigint check (monthly_cap > 0),
  active boolean not null default true,
  created_at timestamptz not null,
  check ((kind = 'points' and points_per_unit is not null and cashback_bps is null) or (kind = 'cashback' and cashback_bps is not null and points_per_unit is null))
);
create index reward_rules_product_idx on reward_rules (card_product_id) where active;

-- Every change to a card's rewards: earned at capture (one per rule and payment), reversed on refund, redeemed. The
-- balance is the sum. Points have no currency; cashback is in the payment's currency.
create table reward_entries (
  id text collate "C" primary key,
  card_id text not null references cards (id),
  issuer_participant_id text not null references participants (id),
  rule_id text references reward_rules (id),
  authorization_id text,
  refund_id text,
  reason text not null check (reason in ('earned', 'reversed', 'redeemed')),
  kind text not null check (kind in ('points', 'cashback')),
  amount bigint not null,
  currency text,
  month text not null,
  redemption jsonb,
  created_at timestamptz not null
);
create unique index reward_entries_earned_once on reward_entries (rule_id, authorization_id) where reason = 'earned';
create index reward_entries_card_idx on reward_entries (card_id, kind, month);
create index reward_entries_auth_idx on reward_entries (authorization_id) where authorization_id is not null;

-- A merchant's coupon: amount or percent off, a minimum spend, an expiry, how many times one customer may use it,
-- and optionally a price in reward points (an issuer's cardholder may take it for points).
create table coupons (
  id text collate "C" primary key,
  merchant_id text not null references merchants (id),
  owner_participant_id text not null references participants (id),
  name text not null,
  kind text not null check (kind in ('amount', 'percent')),
  amount_off_minor bigint check (amount_off_minor > 0),
  percent_off integer check (percent_off > 0 and percent_off <= 100),
  min_spend_minor bigint not null default 0 check (min_spend_minor >= 0),
  currency text not null,
  per_customer_limit integer not null check (per_customer_limit > 0),
  points_cost bigint check (points_cost > 0),
  expires_at timestamptz not null,
  status text not null default 'active' check (status in ('active', 'withdrawn')),
  created_at timestamptz not null,
  check ((kind = 'amount' and amount_off_minor is not null and percent_off is null) or (kind = 'percent' and percent_off is not null and amount_off_minor is null))
);
create index coupons_merchant_idx on coupons (merchant_id);

-- A coupon kept in a customer's wallet, and how many times they used it.
create table wallet_coupons (
  id text collate "C" primary key,
  coupon_id text not null references coupons (id),
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  uses integer not null default 0 check (uses >= 0),
  source text not null check (source in ('claimed', 'points')),
  created_at timestamptz not null,
  unique (coupon_id, participant_id, customer_id)
);
create index wallet_coupons_customer_idx on wallet_coupons (participant_id, customer_id);

-- A coupon applied to a card payment (the discount the merchant gave).
create table coupon_redemptions (
  id text collate "C" primary key,
  wallet_coupon_id text not null references wallet_coupons (id),
  coupon_id text not null references coupons (id),
  authorization_id text not null unique,
  original_minor bigint not null,
  discount_minor bigint not null check (discount_minor > 0),
  currency text not null,
  created_at timestamptz not null
);

-- A merchant's membership programme, and the membership cards customers keep in their wallets.
create table membership_programs (
  id text collate "C" primary key,
  merchant_id text not null references merchants (id),
  owner_participant_id text not null references participants (id),
  name text not null,
  created_at timestamptz not null
);
create table membership_cards (
  id text collate "C" primary key,
  program_id text not null references membership_programs (id),
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  member_number text not null,
  created_at timestamptz not null,
  unique (program_id, participant_id, customer_id),
  unique (program_id, member_number)
);
create index membership_cards_customer_idx on membership_cards (participant_id, customer_id);

-- A customer's savings pot: a named ledger account (kind savings) with an optional goal and lock.
create table savings_pots (
  id text collate "C" primary key,
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  name text not null,
  currency text not null,
  account_id text not null unique,
  goal_minor bigint check (goal_minor > 0),
  locked_until timestamptz,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index savings_pots_customer_idx on savings_pots (participant_id, customer_id);

-- Card payments declined for a known card (controls, risk, the issuer, its cover): what the issuer insights count.
create table pay_declines (
  id bigint generated always as identity primary key,
  issuer_participant_id text not null,
  card_id text not null,
  merchant_id text,
  mcc text,
  channel text,
  wallet_participant_id text,
  reason text not null,
  amount_minor bigint not null,
  currency text not null,
  created_at timestamptz not null
);
create index pay_declines_issuer_idx on pay_declines (issuer_participant_id, created_at);
