-- Connected participants: per currency a participant is `hosted` (the hub keeps its customers' accounts, the model
-- before this migration) or `connected` (its own core system keeps them and answers the hub's connector calls:
-- reserve, accept, commit, abort). No row means hosted.
create table participant_connections (
  participant_id text not null references participants(id),
  currency text not null,
  mode text not null check (mode in ('hosted', 'connected')),
  endpoint_url text,
  public_jwk jsonb,
  deadline_ms integer not null check (deadline_ms between 100 and 30000),
  updated_at timestamptz not null,
  primary key (participant_id, currency),
  check (mode = 'hosted' or (endpoint_url is not null and public_jwk is not null))
);

-- A P2P payment with a connected side is two-phase: `pending` once its hub legs are reserved (pending ledger
-- transfers) and the connected participants are being asked, then `completed` (legs posted) or `rejected` (legs
-- voided, `reason` an ISO 20022 status reason code such as AC04 or AB05). A payment between hosted sides is written
-- `completed` at once, as before.
alter table payments drop constraint payments_status_check;
alter table payments add constraint payments_status_check check (status in ('completed', 'pending', 'rejected'));
alter table payments add column reason text;
alter table payments add column connected text[] not null default '{}';
alter table payments add column deadline_at timestamptz;
alter table payments add column decided_at timestamptz;
create index payments_pending_deadline on payments (deadline_at) where status = 'pending';

-- The connectors' outbox: commit and abort messages to connected participants, retried with backoff until the
-- participant acknowledges them (bounded attempts; an exhausted message stays for the operator to see).
create table connector_messages (
  id text primary key,
  payment_id text not null,
  participant_id text not null,
  kind text not null check (kind in ('commit', 'abort')),
  body jsonb not null,
  attempts integer not null default 0,
  next_at timestamptz not null,
  acked_at timestamptz,
  last_error text,
  created_at timestamptz not null
);
create index connector_messages_due on connector_messages (next_at) where acked_at is null;
create index connector_messages_payment on connector_messages (payment_id);

-- The hub signs its connector requests with an Ed25519 key whose seed is a vault secret (purpose connector_signing,
-- wrapped by the KEK, one per database, like the audit checkpoints' key).
alter table data_keys drop constraint data_keys_purpose_check;
alter table data_keys add constraint data_keys_purpose_check check (purpose in ('data', 'index', 'jwt', 'audit_signing', 'connector_signing'));
create unique index data_keys_one_connector_signing_key on data_keys (purpose) where purpose = 'connector_signing' and retired_at is null;
