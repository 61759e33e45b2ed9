-- The hub's spine: participants and their credentials, customers, idempotency keys, the outbox with webhook
-- deliveries, the audit trail, and wrapped data keys. Later capabilities add their own numbered migrations.

create table data_keys (
  id text primary key,
  purpose text not null check (purpose in ('data', 'index', 'jwt')),
  kek_id text not null,
  wrapped text not null,
  created_at timestamptz not null,
  retired_at timestamptz
);
create index data_keys_purpose on data_keys (purpose, created_at desc);

create table participants (
  id text primary key,
  kind text not null check (kind in ('issuer', 'wallet', 'merchant', 'acquirer')),
  name text not null,
  country char(2) not null,
  currencies text[] not null,
  webhook_url text,
  -- The Standard Webhooks signing secret, sealed by the vault (never in clear).
  webhook_secret_sealed text not null,
  status text not null check (status in ('active', 'suspended')),
  rate_limit_per_s integer,
  demo_key text unique,
  created_at timestamptz not null,
  updated_at timestamptz not null
);

create table credentials (
  id text primary key,
  participant_id text not null references participants (id),
  -- SHA-256 of a 256-bit random secret: the secret has full entropy, so a slow hash adds nothing.
  secret_hash text not null,
  created_at timestamptz not null,
  revoked_at timestamptz
);
create index credentials_participant on credentials (participant_id);

create table customers (
  id text primary key,
  participant_id text not null references participants (id),
  external_id text not null,
  name text not null,
  phone text,
  kyc_level integer not null default 1,
  created_at timestamptz not null,
  unique (participant_id, external_id)
);

create table idempotency_keys (
  scope text not null,
  key text not null,
  request_hash text not null,
  state text not null check (state in ('running', 'done')),
  locked_until timestamptz,
  response_status integer,
  response_body jsonb,
  created_at timestamptz not null,
  primary key (scope, key)
);
create index idempotency_keys_created on idempotency_keys (created_at);

create table events (
  id bigserial primary key,
  event_id text not null unique,
  participant_id text not null,
  type text not null,
  payload jsonb not null,
  created_at timestamptz not null
);
create index events_participant on events (participant_id, id);

create table webhook_deliveries (
  id text primary key,
  event_id text not null,
  participant_id text not null,
  url text not null,
  status text not null check (status in ('pending', 'delivered', 'failed')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null,
  last_attempt_at timestamptz,
  last_status_code integer,
  last_error text,
  created_at timestamptz not null
);
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_participant on webhook_deliveries (participant_id, created_at desc);

-- Audit records are written inside the transaction of the change they describe, then chained by a single chainer
-- (advisory lock) in commit order: no hot row is locked by every transaction.
create table audit_log (
  id bigserial primary key,
  at timestamptz not null,
  actor_type text not null check (actor_type in ('operator', 'participant', 'customer', 'system')),
  actor_participant_id text,
  actor_customer_id text,
  action text not null,
  object_type text not null,
  object_id text not null,
  details jsonb not null,
  chain_seq bigint unique,
  prev_hash text,
  hash text
);
create index audit_log_unchained on audit_log (id) where chain_seq is null;
create index audit_log_object on audit_log (object_type, object_id);
create index audit_log_actor on audit_log (actor_participant_id, id);
