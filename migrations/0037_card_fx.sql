-- Card and QR payments across currencies (docs/ARCHITECTURE.md, "FX providers"): an authorization whose source account
-- holds another currency than the merchant's binds an FX provider's posted rate by id. The payer's account is held, and
-- captures and refunds convert, at that bound rate; these columns keep the bound rate and the payer's side of the
-- payment in the source currency (all null for a payment in one currency).
alter table pay_authorizations
  add column fx_rate_id text,
  add column fx_provider_participant_id text references participants (id),
  add column fx_rate text,
  add column source_currency text,
  add column source_amount_minor int8,
  add column source_captured_minor int8,
  add column source_refunded_minor int8;

-- A refund of a payment across currencies: what went back to the payer's account, in its currency.
alter table pay_refunds add column source_amount_minor int8;
