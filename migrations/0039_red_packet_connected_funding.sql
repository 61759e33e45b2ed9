-- A red packet funded from an account at a participant that keeps its own books (connected) is written `funding` with
-- a payment on the two-phase path (the payer's bank reserves, the hub commits into the escrow or aborts): `open` once
-- committed, `failed` when refused (nothing moved). Its unclaimed rest goes back to the sender's bank as a payment with
-- a connected payee (the bank accepts): the packet is `refunding` while that payment is decided or waits to be tried
-- again after a refusal (the money stays in the escrow meanwhile, `refund_at` the next try, `reason` the last refusal).
alter table red_packets drop constraint red_packets_status_check;
alter table red_packets add constraint red_packets_status_check check (status in ('funding', 'open', 'failed', 'refunding', 'completed', 'refunded'));
alter table red_packets add column funding_payment_id text;
alter table red_packets add column refund_payment_id text;
alter table red_packets add column refund_attempts integer not null default 0;
alter table red_packets add column refund_at timestamptz;
alter table red_packets add column reason text;
create index red_packets_refunding on red_packets (refund_at) where status = 'refunding';
create index red_packets_funding_payment on red_packets (funding_payment_id) where funding_payment_id is not null;
create index red_packets_refund_payment on red_packets (refund_payment_id) where refund_payment_id is not null;
-- The refund payment a share is being returned by (cleared when the bank refuses it: the share waits for the next try).
alter table red_packet_shares add column refund_payment_id text;
