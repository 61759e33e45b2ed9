-- A card payment whose issuer decides in real time asks it outside any transaction (payments/pipeline.ts). The ask is
-- recorded first, so that an approval the payment then does not use (refused under lock, rolled back, a crash) is
-- reversed to the issuer: by the commit that refuses it, or by the sweep once the ask is past its deadline.
create table pay_issuer_asks (
  authorization_id text primary key,
  issuer_participant_id text not null,
  card_id text,
  amount_minor bigint not null check (amount_minor > 0),
  currency text not null,
  status text not null check (status in ('asking', 'declined', 'used', 'reversed')),
  created_at timestamptz not null,
  expires_at timestamptz not null,
  resolved_at timestamptz
);
create index pay_issuer_asks_due on pay_issuer_asks (expires_at) where status = 'asking';
