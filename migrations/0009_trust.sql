-- Trust: explicit consent to link one person's records, real step-up challenges, passkeys, and positions with caps.

-- Person links were made by a card step-up (possession of a card is not personhood) and merged histories on it. They
-- are replaced by customer links, which each side consents to; links made the old way are not carried over.
drop table person_links;
drop table persons;

-- A customer asks, in participant A's app, to link their record at participant B; B delivers a one-time code to its own
-- customer (B's consent: only B's authenticated customer sees it), who types it into A's app (A's side). Only a keyed
-- hash of the code is kept.
create table customer_link_consents (
  id text primary key,
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  other_participant_id text not null references participants (id),
  other_customer_id text not null references customers (id),
  code_hash text not null,
  attempts integer not null default 0,
  status text not null check (status in ('pending', 'confirmed', 'failed', 'expired')),
  expires_at timestamptz not null,
  created_at timestamptz not null
);
create index customer_link_consents_customer on customer_link_consents (participant_id, customer_id, created_at);

-- One row per side of a link (each side's view), written and revoked together: a grant lookup is one index probe.
create table customer_links (
  id text not null,
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  other_participant_id text not null references participants (id),
  other_customer_id text not null references customers (id),
  consent_id text not null,
  status text not null check (status in ('active', 'revoked')),
  created_at timestamptz not null,
  revoked_at timestamptz,
  revoked_by text,
  primary key (id, participant_id)
);
create index customer_links_side on customer_links (participant_id, customer_id, other_participant_id, other_customer_id) where status = 'active';

-- A step-up challenge: what the customer approves (bound by a keyed hash of amount, currency, payee and customer),
-- how (a one-time code delivered by the issuer or the wallet, the customer's TOTP, a passkey), and its life: pending →
-- completed (proof given) → consumed (by exactly one payment), or failed / expired.
create table step_up_challenges (
  id text primary key,
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  purpose text not null check (purpose in ('transfer', 'card_payment')),
  binding text not null,
  summary jsonb not null,
  method text not null check (method in ('otp', 'totp', 'passkey')),
  otp_participant_id text references participants (id),
  code_hash text,
  webauthn_challenge text,
  attempts integer not null default 0,
  max_attempts integer not null,
  status text not null check (status in ('pending', 'completed', 'consumed', 'failed', 'expired')),
  expires_at timestamptz not null,
  completed_at timestamptz,
  consumed_at timestamptz,
  consumed_by text,
  created_at timestamptz not null
);
create index step_up_challenges_customer on step_up_challenges (participant_id, customer_id, created_at);

-- Passkeys (WebAuthn) a participant's customer registered: the public key only; the private key never leaves the device.
create table customer_passkeys (
  credential_id text primary key,
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  public_key text not null,
  counter bigint not null check (counter >= 0),
  transports text[] not null,
  created_at timestamptz not null,
  last_used_at timestamptz
);
create index customer_passkeys_customer on customer_passkeys (participant_id, customer_id);

create table passkey_registrations (
  id text primary key,
  participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  challenge text not null,
  status text not null check (status in ('pending', 'done', 'expired')),
  expires_at timestamptz not null,
  created_at timestamptz not null
);

-- Positions: a participant's funding account is its position at the hub in that currency. Money enters its customers'
-- accounts only from it, so it may go negative only down to the operator's net debit cap (its credit limit) plus what
-- the participant prefunded. Accounts made before this rule keep their current depth as their cap.
update ledger_accounts
   set debits_must_not_exceed_credits = true,
       credits_must_not_exceed_debits = false,
       credit_limit_minor = greatest(0, debits_pending + debits_posted - credits_posted)
 where kind = 'funding';
