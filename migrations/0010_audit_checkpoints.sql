-- Signed checkpoints of the audit hash chain. The chainer writes one after every run that chained records, and at
-- least every few minutes when idle: an Ed25519 signature over (checkpoint number, records covered, head hash, time,
-- previous checkpoint's hash). The signing key is a vault secret (purpose 'audit_signing', wrapped by the KEK, which
-- is outside the database), so whoever can write the database but cannot read the KEK cannot sign a checkpoint: a
-- record altered and the chain recomputed no longer matches the checkpoints signed before, and records deleted from
-- the end of the chain are still counted by the newest checkpoint. Checkpoints are chained to each other through
-- prev_hash, so deleting one leaves a gap or a broken link.
create table audit_checkpoints (
  seq bigint primary key,
  -- How many records the checkpoint covers: the chain_seq of the head record (0 for an empty chain).
  chain_seq bigint not null,
  head_hash text not null,
  at timestamptz not null,
  prev_hash text not null,
  -- SHA-256 of the signed payload; the next checkpoint's prev_hash.
  hash text not null,
  key_id text not null,
  signature text not null
);

alter table data_keys drop constraint data_keys_purpose_check;
alter table data_keys add constraint data_keys_purpose_check check (purpose in ('data', 'index', 'jwt', 'audit_signing'));
-- One audit signing key, whichever hub process creates it first: two processes starting on a fresh database would
-- otherwise each sign with a key of their own, and each other's checkpoints would look forged. The loser's insert
-- fails on this index and it reads the winner's key.
create unique index data_keys_one_audit_signing_key on data_keys (purpose) where purpose = 'audit_signing' and retired_at is null;
