-- Limited-use keys and device binding for wallet tokens. A token's master key (derived from the issuer's master key
-- and the token number) never leaves the hub: the wallet holds one limited-use key at a time, derived from it with a
-- key counter and valid for a range of transaction counters (a bounded number of payments) until it expires. A new
-- key is given only to a request signed by the device the token is bound to.
create table token_keys (
  token_id text not null references card_tokens (id),
  key_counter integer not null,
  -- The transaction counters (ATC) this key may sign, both inclusive: the hub finds the key of a cryptogram by its ATC.
  first_atc integer not null,
  last_atc integer not null,
  expires_at timestamptz not null,
  -- 'superseded' once a newer key replaced it (kept so that the issuer sees each key's use).
  status text not null check (status in ('active', 'superseded')),
  uses integer not null default 0,
  last_used_at timestamptz,
  created_at timestamptz not null,
  primary key (token_id, key_counter),
  check (first_atc <= last_atc)
);
create unique index token_keys_active on token_keys (token_id) where status = 'active';

-- The device's public key (JWK, ECDSA P-256) and its RFC 7638 thumbprint: the token's device.
alter table card_tokens add column device_key jsonb;
alter table card_tokens add column device_key_thumbprint text;
alter table token_provisionings add column device_key jsonb;
alter table token_provisionings add column device_key_thumbprint text;

-- Which cryptogram a product's tokens make: the hub's Visa CVN 18 model, or Mastercard M/Chip CVN 16 / 17 (the
-- layouts in src/emv/token-cryptogram.ts).
alter table card_products add column token_cryptogram text not null default 'visa_cvn18' check (token_cryptogram in ('visa_cvn18', 'mchip_cvn16', 'mchip_cvn17'));
