-- A chargeback of a card payment paid at the hub moves the disputed amount from the merchant back to the payer
-- (disputes/service.ts); the payment records it here so that what its merchant may still refund, and what a later
-- dispute may claim, count it: refundable = captured - refunded - charged back - refunds still asking a bank. A
-- representment gives it back. In the payment's (the merchant's) currency, as the dispute. A chargeback of a payment
-- paid at a bank that keeps its own books is a refund there (refunded_minor), never counted here.
alter table pay_authorizations add column charged_back_minor int8 not null default 0;

-- Chargebacks made at the hub before this column stand (the dispute charged back, or the chargeback accepted or left
-- unanswered): the payment records them now. A chargeback at a bank is a refund row (its id the dispute's
-- chargeback_transfer_id) and already in refunded_minor.
update pay_authorizations a
   set charged_back_minor = c.total
  from (select d.payment_id, sum(d.amount_minor)::int8 as total
          from disputes d
         where d.kind = 'card' and d.status in ('chargeback', 'won_by_customer') and d.chargeback_transfer_id is not null
           and not exists (select 1 from pay_refunds r where r.id = d.chargeback_transfer_id)
         group by d.payment_id) c
 where a.id = c.payment_id;
