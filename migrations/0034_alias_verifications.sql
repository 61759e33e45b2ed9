-- A customer adding a phone number or e-mail address as an alias from the wallet proves they control it with a
-- one-time code the wallet delivers there (the hub keeps only a keyed hash; the code travels sealed to the wallet in
-- the alias.verification_requested event). The alias is registered when the code is confirmed.
create table alias_verifications (
  id text primary key,
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  account_id text not null,
  type text not null check (type in ('phone', 'email')),
  value text not null,
  code_hash text not null,
  attempts integer not null default 0,
  status text not null check (status in ('pending', 'confirmed', 'failed')),
  expires_at timestamptz not null,
  created_at timestamptz not null
);
create index alias_verifications_customer_idx on alias_verifications (participant_id, customer_id, created_at);
