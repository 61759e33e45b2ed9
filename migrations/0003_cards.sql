-- Cards issued by issuers, the wallet tokens that stand for them, and the verified links between one person's
-- customer records at different participants. Card and token numbers are only ever stored sealed by the vault,
-- looked up by the vault's keyed index hash, and shown masked (first 6 / last 4 at most).

create table card_products (
  id text primary key,
  issuer_participant_id text not null references participants (id),
  name text not null,
  bin_prefix text not null check (bin_prefix ~ '^[0-9]{6,8}$'),
  pan_length integer not null check (pan_length between 16 and 19),
  brand text not null,
  currency text not null check (currency ~ '^[A-Z]{3}$'),
  card_type text not null check (card_type in ('debit', 'credit')),
  default_credit_limit_minor bigint check (default_credit_limit_minor >= 0),
  validity_years integer not null check (validity_years between 1 and 10),
  demo_key text unique,
  created_at timestamptz not null
);
create unique index card_products_bin on card_products (bin_prefix);
create index card_products_issuer on card_products (issuer_participant_id, id);

create table cards (
  id text primary key,
  issuer_participant_id text not null references participants (id),
  product_id text not null references card_products (id),
  customer_id text not null references customers (id),
  pan_sealed text not null,
  pan_index text not null unique,
  pan_first6 text not null,
  pan_last4 text not null,
  expiry text not null check (expiry ~ '^(0[1-9]|1[0-2])/[0-9]{2}$'),
  status text not null check (status in ('inactive', 'active', 'frozen', 'lost', 'stolen', 'replaced', 'cancelled')),
  -- Payment account reference: 29 characters, the same for every token of the card and kept across replacement.
  par text not null check (length(par) = 29),
  -- The ledger account that funds the card (a credit account for credit cards, the customer's account for debit).
  funding_account_id text,
  credit_limit_minor bigint check (credit_limit_minor >= 0),
  controls jsonb not null,
  replaces_card_id text,
  replaced_by_card_id text,
  demo_key text unique,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index cards_issuer on cards (issuer_participant_id, id);
create index cards_customer on cards (customer_id);
create index cards_par on cards (par);

-- One person, many participants: customer records are linked only when the person proved control of both through
-- the issuer's verification (a step-up code sent to the cardholder), never by matching names or phone numbers.
create table persons (
  id text primary key,
  created_at timestamptz not null
);

create table person_links (
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  person_id text not null references persons (id),
  via text not null,
  verified_at timestamptz not null,
  primary key (participant_id, customer_id)
);
create index person_links_person on person_links (person_id);

-- TOTP authenticators enrolled by an issuer for its cardholders (the seed sealed by the vault).
create table customer_authenticators (
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  secret_sealed text not null,
  last_time_step bigint,
  created_at timestamptz not null,
  primary key (participant_id, customer_id)
);

-- Per issuer: the token master key (sealed) and the hosted provisioning rules.
create table issuer_token_settings (
  issuer_participant_id text primary key references participants (id),
  master_key_sealed text not null,
  rules jsonb not null,
  created_at timestamptz not null,
  updated_at timestamptz not null
);

create table token_provisionings (
  id text primary key,
  requestor_participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  card_id text not null references cards (id),
  issuer_participant_id text not null references participants (id),
  method text not null check (method in ('typed', 'token_ref', 'card_ref')),
  device_id text,
  channels text[] not null,
  status text not null check (status in ('pending_step_up', 'approved', 'declined', 'failed', 'expired')),
  step_up_method text check (step_up_method in ('otp', 'totp')),
  -- HMAC of the one-time code under a vault key: never the code itself.
  code_hmac text,
  attempts integer not null default 0,
  max_attempts integer not null,
  expires_at timestamptz,
  token_id text,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index token_provisionings_requestor on token_provisionings (requestor_participant_id, id);

create table card_tokens (
  id text primary key,
  -- The token reference id the wallet knows its token by.
  token_ref text not null unique,
  card_id text not null references cards (id),
  issuer_participant_id text not null references participants (id),
  requestor_participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  provisioning_id text not null,
  token_sealed text not null,
  token_index text not null unique,
  token_last4 text not null,
  expiry text not null,
  status text not null check (status in ('active', 'suspended', 'deleted')),
  -- Who suspended it: 'card' (frozen, lost or stolen card: lifted by the card's recovery) or the party that did.
  suspended_by text,
  channels text[] not null,
  device_id text,
  last_atc integer,
  last_used_at timestamptz,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index card_tokens_card on card_tokens (card_id);
create index card_tokens_requestor on card_tokens (requestor_participant_id, id);

-- Idempotency for the requests whose answer carries a secret (a new card's number and CVV, a token key): the hub
-- keeps the object id and a keyed hash of the request, never the response, and rebuilds the answer on a retry.
create table card_request_keys (
  scope text not null,
  key text not null,
  request_hmac text not null,
  object_id text not null,
  created_at timestamptz not null,
  primary key (scope, key)
);
