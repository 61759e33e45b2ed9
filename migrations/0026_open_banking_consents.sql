-- Open-banking account access: a wallet's customer links an account at a connected bank by a consent the bank grants
-- (OAuth 2.0 authorization code with PKCE, the hub the bank's client). The hub keeps the PKCE verifier and the access
-- grant sealed (vault envelope encryption), the state as a keyed hash; the links the consent opens are account_links
-- rows whose consent_id is this consent's id. A consent revoked by the wallet or at the bank ends its links.
create table open_banking_consents (
  id text primary key,
  wallet_participant_id text not null references participants (id),
  wallet_customer_id text not null,
  bank_participant_id text not null references participants (id),
  currency text not null,
  status text not null check (status in ('awaiting_authorization', 'active', 'revoked', 'failed')),
  state_hash text not null,
  redirect_uri text not null,
  verifier_sealed text not null,
  scope text not null,
  bank_consent_id text,
  access_token_sealed text,
  grant_expires_at timestamptz,
  expires_at timestamptz not null,
  created_at timestamptz not null,
  authorized_at timestamptz,
  revoked_at timestamptz,
  revoked_by text check (revoked_by in ('wallet', 'bank'))
);
create index open_banking_consents_wallet on open_banking_consents (wallet_participant_id, wallet_customer_id);
create index account_links_consent on account_links (consent_id);
