-- A wallet paying a merchant (QR, payment link) from an account at a bank that keeps its own books asks the bank to
-- reserve the debit outside any transaction, as a real-time issuer is asked (payments/pipeline.ts). The ask keeps the
-- signed reserve it sent, so that an approval the payment does not use (refused under lock, rolled back, a crash, the
-- deadline) is aborted at the bank with the same message restated, through the connector outbox. Null for issuers
-- asked by webhook.
alter table pay_issuer_asks add column connector_request jsonb;
