-- Disputes: a customer contests a card payment or a P2P payment from the wallet. The issuer (card) charges back or
-- rejects; the respondent (the merchant's owner, or the payee's participant) accepts or represents with evidence.
-- Every step is a row of dispute_steps with the participant who acted (liability); money moves as ledger transfers.
create table disputes (
  id text primary key,
  kind text not null check (kind in ('card', 'p2p')),
  payment_id text not null,
  wallet_participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  -- card: the card issuer; p2p: the payer's participant (who holds the money sent)
  issuer_participant_id text not null references participants (id),
  -- card: the merchant's owner (acquirer); p2p: the payee's participant
  respondent_participant_id text not null references participants (id),
  payer_account_id text not null,
  respondent_account_id text not null,
  amount_minor bigint not null check (amount_minor > 0),
  currency text not null,
  reason text not null,
  status text not null check (status in ('opened', 'chargeback', 'won_by_customer', 'won_by_respondent', 'rejected', 'refunded')),
  respond_by timestamptz not null,
  chargeback_transfer_id text,
  representment_transfer_id text,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index disputes_payment on disputes (payment_id);
create index disputes_wallet on disputes (wallet_participant_id, created_at desc);
create index disputes_issuer on disputes (issuer_participant_id, created_at desc);
create index disputes_respondent on disputes (respondent_participant_id, created_at desc);
create index disputes_due on disputes (respond_by) where status in ('opened', 'chargeback');

-- Fraud recalls of P2P payments (after PIX's MED 2.0): the money is followed from the payee's account into the accounts
-- it went to next, and what is still there is frozen (pending ledger transfers back to the victim); the payee's
-- participant analyses within 7 days; the refund is made within 11 days, else the holds lapse.
create table recalls (
  id text primary key,
  payment_id text not null,
  wallet_participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  payee_participant_id text not null references participants (id),
  victim_account_id text not null,
  amount_minor bigint not null check (amount_minor > 0),
  currency text not null,
  reason text not null,
  status text not null check (status in ('analysing', 'refunded', 'rejected', 'expired')),
  frozen_minor bigint not null default 0,
  refunded_minor bigint not null default 0,
  analysis_due_at timestamptz not null,
  refund_due_at timestamptz not null,
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index recalls_payment on recalls (payment_id);
create index recalls_due on recalls (refund_due_at) where status = 'analysing';

-- What a recall froze: one row per account the money was found in (hop 0: the payee's account; 1, 2: where it went next).
create table recall_holds (
  recall_id text not null references recalls (id),
  seq integer not null,
  account_id text not null,
  owner_participant_id text not null references participants (id),
  hop integer not null,
  amount_minor bigint not null check (amount_minor > 0),
  pending_ids text[] not null,
  position_move jsonb,
  status text not null check (status in ('held', 'refunded', 'released')),
  primary key (recall_id, seq)
);
create index recall_holds_owner on recall_holds (owner_participant_id);

-- The trail of a dispute or a recall: who did what, with what evidence.
create table dispute_steps (
  object_id text not null,
  seq integer not null,
  participant_id text references participants (id),
  action text not null,
  evidence text,
  amount_minor bigint,
  at timestamptz not null,
  primary key (object_id, seq)
);
