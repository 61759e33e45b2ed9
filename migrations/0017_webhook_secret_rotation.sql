-- Webhook signing secret rotation (Standard Webhooks): after a rotation the previous secret stays active until
-- webhook_secret_previous_expires_at, and every webhook (and issuer authorization request) carries one signature per
-- active secret in `webhook-signature`, so a receiver can switch to the new secret whenever it is ready.
alter table participants add column webhook_secret_previous_sealed text;
alter table participants add column webhook_secret_previous_expires_at timestamptz;
alter table participants add column webhook_secret_rotated_at timestamptz;
alter table participants add constraint participants_webhook_secret_previous_check
  check ((webhook_secret_previous_sealed is null) = (webhook_secret_previous_expires_at is null));
