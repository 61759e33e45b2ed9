-- A red packet share claimed by a customer of a participant that keeps its own books (connected) is paid through the
-- two-phase path of payments (reserved at the hub, accepted by the member's bank, then committed or aborted): the share
-- names that payment while it is decided; an aborted payment releases the share.
alter table red_packet_shares add column payment_id text;
create index red_packet_shares_payment on red_packet_shares (payment_id) where payment_id is not null;
