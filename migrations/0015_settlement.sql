-- Settlement between participants (issue 17): windows per currency, the position legs each window collected, and the
-- multilateral net positions and instructions a closed window produced.

create table settlement_windows (
  id text collate "C" primary key,
  currency text not null check (currency ~ '^[A-Z]{3}$'),
  -- Per currency, 1, 2, 3, … in the order the windows opened.
  seq bigint not null,
  status text not null check (status in ('open', 'closed', 'settled')),
  opened_at timestamptz not null,
  closed_at timestamptz,
  settled_at timestamptz,
  -- The settlement bank's reference the operator recorded with its confirmation.
  settlement_reference text,
  unique (currency, seq)
);
-- One open window per currency at a time.
create unique index settlement_windows_open on settlement_windows (currency) where status = 'open';

-- One row per position leg (a ledger transfer between two participants' positions), in the window that was open when
-- its transaction committed: the transaction holds the open window's row FOR SHARE until its COMMIT, and closing takes
-- it FOR UPDATE, so a close waits for every payment that named the window and no payment names it afterwards.
create table settlement_entries (
  transfer_id text collate "C" primary key,
  window_id text collate "C" not null references settlement_windows (id),
  currency text not null,
  payer_participant_id text not null,
  payee_participant_id text not null,
  amount_minor bigint not null check (amount_minor > 0),
  -- The payment it belongs to: the end-to-end id of its ISO 20022 messages.
  payment_id text not null,
  created_at timestamptz not null
);
create index settlement_entries_payer on settlement_entries (window_id, payer_participant_id, transfer_id);
create index settlement_entries_payee on settlement_entries (window_id, payee_participant_id, transfer_id);

-- Written when a window closes: each participant's multilateral net position (they sum to zero per window).
create table settlement_net_positions (
  window_id text collate "C" not null references settlement_windows (id),
  participant_id text not null,
  currency text not null,
  sent_minor bigint not null,
  received_minor bigint not null,
  sent_count bigint not null,
  received_count bigint not null,
  -- received − sent: positive, the participant is owed; negative, it owes.
  net_minor bigint not null,
  primary key (window_id, participant_id)
);

-- The settlement instructions a close produced: who pays whom at the settlement bank (greedy pairing of the nets).
create table settlement_instructions (
  id text collate "C" primary key,
  window_id text collate "C" not null references settlement_windows (id),
  seq int not null,
  from_participant_id text not null,
  to_participant_id text not null,
  currency text not null,
  amount_minor bigint not null check (amount_minor > 0),
  unique (window_id, seq)
);
