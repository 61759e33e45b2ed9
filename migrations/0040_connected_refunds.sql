-- A refund of a merchant payment paid from an account at a bank that keeps its own books credits the customer at the
-- bank (payments/service.ts): the refund is written `asking` (it counts against what is left to refund), the bank is
-- asked to accept the credit outside any transaction, then the refund is `completed` (the money moved at the hub, the
-- commit in the connector outbox) or `failed` (nothing moved; the abort in the outbox), with the bank's ISO reason.
-- Every refund before this one completed at once.
alter table pay_refunds add column status text not null default 'completed' check (status in ('asking', 'completed', 'failed'));
alter table pay_refunds add column reason jsonb;
-- The bank's ask of such a refund is an ask like a payment's, keyed by the refund's id (its connector TxId), so that the
-- sweep that aborts unused reserves and the bank's final-state query cover it; refund_of names the refunded payment.
alter table pay_issuer_asks add column refund_of text;
