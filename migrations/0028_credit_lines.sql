-- Credit lines. A credit card's funding account is a ledger account of kind 'credit' opened for it at issuance, whose
-- credit limit the ledger enforces (its debits may exceed its credits up to the limit); repayment_account_id is the
-- customer's account the issuer takes repayments from by default (what the issuer named as the card's account).
alter table cards add column repayment_account_id text;

-- A statement of a credit line: what was owed when it closed, the minimum to pay and by when. paid_minor counts the
-- repayments received since it was issued (oldest open statement first). A bank's credit line without a card has
-- card_id null and is named by its account.
create table credit_statements (
  id text primary key,
  issuer_participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  card_id text references cards (id),
  account_id text not null,
  currency text not null,
  period_start timestamptz,
  period_end timestamptz not null,
  balance_minor bigint not null check (balance_minor >= 0),
  minimum_minor bigint not null check (minimum_minor >= 0 and minimum_minor <= balance_minor),
  paid_minor bigint not null default 0 check (paid_minor >= 0),
  due_at timestamptz not null,
  status text not null check (status in ('due', 'minimum_paid', 'paid', 'overdue')),
  created_at timestamptz not null,
  updated_at timestamptz not null
);
create index credit_statements_account on credit_statements (account_id, period_end desc);
create index credit_statements_due on credit_statements (due_at) where status = 'due';

-- Repayments of a credit line: from which account, how much, by whom.
create table credit_repayments (
  id text primary key,
  account_id text not null,
  issuer_participant_id text not null references participants (id),
  customer_id text not null references customers (id),
  source_account_id text not null,
  initiated_by text not null references participants (id),
  amount_minor bigint not null check (amount_minor > 0),
  currency text not null,
  created_at timestamptz not null
);
create index credit_repayments_account on credit_repayments (account_id, created_at desc);
