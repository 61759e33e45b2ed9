-- Double-entry ledger modelled on TigerBeetle's accounts and transfers. Balances live on the account row and are only
-- written by the ledger engine while it holds that row's lock (select … for update, in id order).

-- Ids are compared byte-wise (collate "C"): every batch sorts, locks and probes thousands of them, and the byte order
-- is all an id needs.
create table ledger_accounts (
  id text collate "C" primary key,
  owner_participant_id text not null references participants (id),
  customer_id text,
  currency text not null check (currency ~ '^[A-Z]{3}$'),
  kind text not null check (kind in ('customer', 'settlement', 'fees', 'fx_liquidity', 'suspense', 'funding', 'merchant', 'credit')),
  debits_must_not_exceed_credits boolean not null,
  credits_must_not_exceed_debits boolean not null,
  -- Only with debits_must_not_exceed_credits: how far debits may exceed credits (an overdraft / credit line).
  credit_limit_minor bigint check (credit_limit_minor >= 0),
  closed boolean not null default false,
  debits_pending bigint not null default 0 check (debits_pending >= 0),
  debits_posted bigint not null default 0 check (debits_posted >= 0),
  credits_pending bigint not null default 0 check (credits_pending >= 0),
  credits_posted bigint not null default 0 check (credits_posted >= 0),
  -- Number of statement entries of this account so far: the next entry's seq is history_seq + 1.
  history_seq bigint not null default 0,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  check (not (debits_must_not_exceed_credits and credits_must_not_exceed_debits)),
  check (credit_limit_minor is null or debits_must_not_exceed_credits)
) with (fillfactor = 50);
-- fillfactor 50: balance updates rewrite every touched row each batch; free space on the page keeps them HOT updates.
create index ledger_accounts_owner on ledger_accounts (owner_participant_id, currency, id);
create index ledger_accounts_customer on ledger_accounts (customer_id) where customer_id is not null;

-- Transfers are immutable once written. Pending (two-phase) state lives in ledger_pending.
-- Each transfer is also both accounts' statement entries: each side's seq (per-account, from history_seq) and that
-- account's four balances right after the transfer. One row per transfer instead of one plus two history rows.
create table ledger_transfers (
  id text collate "C" primary key check (length(id) between 1 and 64),
  kind text not null check (kind in ('single_phase', 'pending', 'post_pending', 'void_pending')),
  debit_account_id text collate "C" not null,
  credit_account_id text collate "C" not null,
  amount_minor bigint not null check (amount_minor > 0),
  currency text not null,
  purpose text not null,
  metadata jsonb not null,
  linked boolean not null,
  pending_id text,
  timeout_ms bigint,
  expires_at timestamptz,
  -- Hash of the caller's fields: a retried id is compared to the original without re-reading every field.
  fingerprint text not null,
  created_at timestamptz not null,
  debit_seq bigint not null,
  debit_debits_pending bigint not null,
  debit_debits_posted bigint not null,
  debit_credits_pending bigint not null,
  debit_credits_posted bigint not null,
  credit_seq bigint not null,
  credit_debits_pending bigint not null,
  credit_debits_posted bigint not null,
  credit_credits_pending bigint not null,
  credit_credits_posted bigint not null
);
-- Statements: an account's entries are its transfers on either side, in seq order (plus ledger_history's).
create index ledger_transfers_debit_statement on ledger_transfers (debit_account_id, debit_seq);
create index ledger_transfers_credit_statement on ledger_transfers (credit_account_id, credit_seq);

create table ledger_pending (
  transfer_id text collate "C" primary key,
  debit_account_id text collate "C" not null,
  credit_account_id text collate "C" not null,
  amount_minor bigint not null check (amount_minor > 0),
  currency text not null,
  expires_at timestamptz,
  state text not null check (state in ('pending', 'posted', 'voided', 'expired')),
  resolved_by text,
  resolved_at timestamptz
);
create index ledger_pending_due on ledger_pending (expires_at) where state = 'pending' and expires_at is not null;

-- Ids that failed on a state-dependent error: a retry must replay the failure, not succeed later by surprise.
create table ledger_transfer_failures (
  id text collate "C" primary key,
  code text not null,
  fingerprint text not null,
  created_at timestamptz not null
);

-- Statement entries of balance changes that have no transfer row of their own (a pending transfer's expiry), with the
-- balances after them. Seqs share the account's history_seq with the transfers' debit_seq / credit_seq.
create table ledger_history (
  account_id text collate "C" not null,
  seq bigint not null,
  transfer_id text collate "C" not null,
  event text not null check (event in ('single_phase', 'pending', 'post_pending', 'void_pending', 'expired')),
  side text not null check (side in ('debit', 'credit')),
  amount_minor bigint not null,
  debits_pending bigint not null,
  debits_posted bigint not null,
  credits_pending bigint not null,
  credits_posted bigint not null,
  at timestamptz not null,
  primary key (account_id, seq)
);
