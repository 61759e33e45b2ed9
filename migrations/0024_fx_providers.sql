-- FX providers are participants: the operator registers a participant as one, it posts rates per currency pair (size
-- tiers on the amount sent, an expiry), and a quote binds one posted rate by id. The conversion's two legs then move
-- the provider's positions (up in the currency sent, down in the currency delivered) like any payment between
-- participants. The newest rate a provider posted for a pair is the one in force until it expires.
create table fx_providers (
  participant_id text primary key references participants (id),
  registered_at timestamptz not null
);

create table fx_provider_rates (
  id text collate "C" primary key,
  provider_participant_id text not null references fx_providers (participant_id),
  send_currency text not null,
  receive_currency text not null,
  -- [{ "minMinor": "…", "maxMinor": "…" | null, "rate": "…" }]: amounts sent (send currency, minor units), the rate as
  -- receive units per send unit (decimal), tiers sorted and not overlapping.
  tiers jsonb not null,
  posted_at timestamptz not null,
  expires_at timestamptz not null,
  check (send_currency <> receive_currency),
  check (expires_at > posted_at)
);
create index fx_provider_rates_pair on fx_provider_rates (send_currency, receive_currency, provider_participant_id, posted_at desc, id desc);

-- The rate a quote bound (null for a quote in one currency).
alter table quotes add column fx_rate_id text;
alter table quotes add column fx_provider_participant_id text;
