-- Offers targeted by a customer's own card spending: an issuer publishes an offer for its cardholders (a spending
-- condition over a merchant category or a merchant, and a merchant's coupon it links to); the hub evaluates it only for
-- customers whose wallet recorded their consent, only over that issuer's cards of that customer. The issuer sees counts.

-- A customer's consent to targeted offers, kept by their wallet (no row: no consent). Every change is also audited.
create table offer_consents (
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  consented boolean not null,
  given_at timestamptz,
  withdrawn_at timestamptz,
  updated_at timestamptz not null,
  primary key (participant_id, customer_id)
);

-- An issuer's targeted offer: spent at least min_spend_minor (in currency) in the last window_days, on its cards, at
-- one merchant category (mcc) or one merchant; what is offered is a merchant's free coupon, kept in the wallet.
create table targeted_offers (
  id text collate "C" primary key,
  issuer_participant_id text not null references participants (id),
  name text not null,
  mcc text check (mcc ~ '^[0-9]{4}$'),
  merchant_id text references merchants (id),
  min_spend_minor bigint not null check (min_spend_minor > 0),
  currency text not null,
  window_days integer not null check (window_days between 1 and 365),
  coupon_id text not null references coupons (id),
  expires_at timestamptz not null,
  status text not null default 'active' check (status in ('active', 'withdrawn')),
  created_at timestamptz not null,
  check ((mcc is null) <> (merchant_id is null))
);
create index targeted_offers_issuer_idx on targeted_offers (issuer_participant_id) where status = 'active';

-- A consenting customer found eligible for an offer (counted for the issuer, never shown to it); removed when the
-- consent is withdrawn unless the offer was accepted.
create table targeted_offer_eligibility (
  offer_id text not null references targeted_offers (id),
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  first_eligible_at timestamptz not null,
  primary key (offer_id, participant_id, customer_id)
);

-- An offer the customer accepted: the coupon it put in their wallet.
create table targeted_offer_acceptances (
  id text collate "C" primary key,
  offer_id text not null references targeted_offers (id),
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  wallet_coupon_id text not null references wallet_coupons (id),
  created_at timestamptz not null,
  unique (offer_id, participant_id, customer_id)
);

-- A coupon kept in a wallet may come from an accepted targeted offer.
alter table wallet_coupons drop constraint if exists wallet_coupons_source_check;
alter table wallet_coupons add constraint wallet_coupons_source_check check (source in ('claimed', 'points', 'offer'));
