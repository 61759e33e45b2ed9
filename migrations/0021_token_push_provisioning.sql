-- Push provisioning: an issuer, from its own app, offers one of its cards to a named wallet. The hub answers a
-- one-time receipt (the receipt's id and a keyed MAC of it: never stored, so the table holds nothing a wallet could
-- redeem) that the issuer's app hands to the wallet app; the wallet redeems it for its customer within minutes, once.
-- The issuer's consent (the cardholder asked in the issuer's app) and the customer's (in the wallet) are recorded.
create table token_push_receipts (
  id text primary key,
  card_id text not null references cards (id),
  issuer_participant_id text not null references participants (id),
  wallet_participant_id text not null references participants (id),
  status text not null check (status in ('issued', 'redeemed')),
  expires_at timestamptz not null,
  issuer_consent_at timestamptz not null,
  -- Filled in when redeemed: the wallet's customer, when they consented, and the token it became.
  customer_id text references customers (id),
  customer_consent_at timestamptz,
  token_id text,
  redeemed_at timestamptz,
  created_at timestamptz not null
);
create index token_push_receipts_card on token_push_receipts (card_id, created_at);

alter table token_provisionings drop constraint token_provisionings_method_check;
alter table token_provisionings add constraint token_provisionings_method_check check (method in ('typed', 'token_ref', 'card_ref', 'push'));
alter table token_provisionings add column push_receipt_id text;
