import { Type, type Static, type TSchema } from '@sinclair/typebox';

/**
 * THE catalogue of webhook events: every event type the hub emits, what it means and its payload (`data`). The outbox
 * takes only these types (`OutboxEvent.type` is `EventType`), so an event cannot be emitted without being documented;
 * /openapi.json lists them under `webhooks`. Money is `{ amount, currency }` with a decimal string, as in the API.
 *
 * Every delivery is a POST of `{ id, type, createdAt, data }`, signed per Standard Webhooks (`webhook-id`,
 * `webhook-timestamp`, `webhook-signature`; src/webhooks/signing.ts). Payloads may gain fields: ignore unknown ones.
 */

const Money = Type.Object(
  { amount: Type.String({ pattern: '^-?[0-9]+(\\.[0-9]+)?$', description: 'Decimal string in the currency, e.g. "12.30"' }), currency: Type.String({ pattern: '^[A-Z]{3}$' }) },
  { additionalProperties: false, description: 'Money: a decimal string and its ISO 4217 currency' },
);
const Id = (description: string) => Type.String({ description });
const Time = (description: string) => Type.String({ format: 'date-time', description });
const Sealed = Type.String({ description: 'A one-time code sealed to you (src/platform/recipient-seal.ts): open it with your webhook secret; never shown in clear' });
const Data = <P extends Parameters<typeof Type.Object>[0]>(properties: P) => Type.Object(properties, { additionalProperties: true });

const participantStatus = Data({ participantId: Id('The participant') });
const tokenChange = Data({
  tokenRef: Type.Optional(Id('The token (to the wallet)')),
  cardId: Type.Optional(Id('The card (to the issuer)')),
  tokenId: Type.Optional(Id('The token id (to the issuer)')),
  status: Type.String({ description: 'The token status now' }),
  by: Type.Optional(Type.String({ description: 'Who changed it: wallet, issuer or operator' })),
  reason: Type.Optional(Type.String({ description: 'Why, when the card changed (card_frozen, card_replaced, card_cancelled…)' })),
  walletParticipantId: Type.Optional(Id('The wallet holding the token (to the issuer)')),
});
const cardPayment = Data({
  authorizationId: Id('The card payment (authorization)'),
  merchantId: Id('The merchant'),
  status: Type.String({ description: 'authorized, captured, voided, refunded, expired…' }),
  amount: Money,
  captured: Money,
  refunded: Money,
  authorizationCode: Type.Union([Type.String(), Type.Null()]),
  fx: Type.Union(
    [
      Type.Object({
        rateId: Id('The FX provider’s posted rate the authorization bound'),
        providerParticipantId: Id('The FX provider participant whose positions convert it'),
        rate: Type.String({ description: 'Merchant-currency units per unit of the payer’s currency, 8 decimals' }),
        charged: Money,
        captured: Money,
        refunded: Money,
      }),
      Type.Null(),
    ],
    { description: 'Across currencies: the payer’s side in its account’s currency (as the payment’s answers show it); null when the payer’s account holds the merchant’s currency' },
  ),
});
const withCardPayment = <P extends Parameters<typeof Type.Object>[0]>(properties: P) => Type.Composite([cardPayment, Type.Object(properties)], { additionalProperties: true });
const disputeChange = Data({
  disputeId: Id('The dispute'),
  kind: Type.Union([Type.Literal('card'), Type.Literal('p2p')]),
  paymentId: Id('The disputed payment (card payment or P2P payment)'),
  status: Type.String({ description: 'opened, chargeback, won_by_customer, won_by_respondent, rejected or refunded' }),
  amount: Money,
  reason: Type.String(),
  respondBy: Time('When the next answer is due'),
  by: Type.Union([Id('The participant that acted'), Type.Null()], { description: 'null: the hub, on a deadline' }),
  evidence: Type.Union([Type.String(), Type.Null()]),
  customerId: Type.Union([Id('Your customer (to the wallet only)'), Type.Null()]),
});
const recallChange = Data({
  recallId: Id('The recall'),
  paymentId: Id('The P2P payment'),
  status: Type.String({ description: 'analysing, refunded, rejected or expired' }),
  amount: Money,
  frozen: Money,
  reason: Type.String(),
  analysisDueAt: Time('The payee’s participant analyses by then (7 days)'),
  refundDueAt: Time('The refund is made by then (11 days), else the holds lapse'),
  by: Type.Union([Id('The participant that acted'), Type.Null()]),
  holds: Type.Array(Data({ accountId: Id('Your account'), hop: Type.Integer(), amount: Money, status: Type.String() }), { description: 'The holds on your own accounts' }),
  customerId: Type.Union([Id('Your customer (to the wallet only)'), Type.Null()]),
});
const aliasChange = Data({ aliasId: Id('The alias'), customerId: Id('Your customer') });
const linkRevoked = Data({ linkId: Id('The link'), customerId: Type.Optional(Id('Your customer')), by: Type.Optional(Id('The participant that revoked it')), reason: Type.Optional(Type.String()) });
const liquidityRequest = Data({
  id: Id('The liquidity request'),
  direction: Type.String({ description: 'top_up (settlement bank → position) or cash_out (position → settlement bank)' }),
  amount: Money,
  status: Type.String({ description: 'pending_approval, completed or rejected' }),
  reference: Type.Union([Type.String(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
});
const cashMovement = Data({
  id: Id('The withdrawal or top-up'),
  kind: Type.String({ description: 'withdrawal or top_up' }),
  customerId: Id('Your customer'),
  amount: Money,
  status: Type.String(),
});
const position = Data({
  participantId: Id('The participant'),
  currency: Type.String(),
  liquidity: Money,
  balance: Money,
  reserved: Money,
  netDebitCap: Money,
  available: Money,
});

/**
 * What the hub POSTs to a real-time issuer's authorization endpoint (`authUrl`, webhook mode): not an event of the
 * outbox but a call answered at once (`{ "decision": "approve" }` or `{ "decision": "decline", "reason": "…" }`), signed
 * like webhooks. `amount` is what to hold, in the card's currency; across currencies `merchantAmount` is the merchant's
 * side and `fx` the rate the hub bound (absent fields before: issuers that ignore them decide as before).
 */
export const issuerAuthorizationRequest = Data({
  authorizationId: Id('The card payment (authorization) the hub will create if you approve'),
  cardId: Id('Your card'),
  customerId: Id('Your cardholder'),
  tokenId: Type.Union([Id('The token presented'), Type.Null()]),
  walletParticipantId: Type.Union([Id('The wallet that presented it'), Type.Null()]),
  amount: Type.Object(Money.properties, { additionalProperties: false, description: 'What to approve and hold, in the card’s currency (across currencies: the merchant’s amount at the bound rate, rounded up)' }),
  merchantAmount: Type.Object(Money.properties, { additionalProperties: false, description: 'What the merchant is paid, in its currency (the same as amount when the card pays in the merchant’s currency)' }),
  fx: Type.Union(
    [
      Type.Object(
        {
          rateId: Id('The FX provider’s posted rate the hub bound'),
          providerParticipantId: Id('The FX provider participant whose positions convert it'),
          rate: Type.String({ description: 'Merchant-currency units per unit of the card’s currency, 8 decimals' }),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ],
    { description: 'Across currencies: the rate bound (capture and refunds convert at it); null in one currency' },
  ),
  merchant: Type.Object({ id: Id('The merchant'), name: Type.String(), mcc: Type.String(), country: Type.String(), city: Type.String() }, { additionalProperties: false }),
  channel: Type.String({ description: 'mpm_static, mpm_dynamic, cpm, tap or link' }),
  riskScore: Type.Integer({ description: 'The hub’s risk score (0–100)' }),
});
export type IssuerAuthorizationRequest = Static<typeof issuerAuthorizationRequest>;

export interface EventEntry {
  readonly summary: string;
  readonly data: TSchema;
}

export const eventCatalogue = {
  // Participants and access
  'participant.active': { summary: 'The operator reactivated your participant', data: participantStatus },
  'participant.suspended': { summary: 'The operator suspended your participant: your calls answer participant_suspended', data: participantStatus },
  'credential.issued': { summary: 'A client credential was issued to you', data: Data({ credentialId: Id('The credential') }) },
  'credential.revoked': { summary: 'One of your client credentials was revoked', data: Data({ credentialId: Id('The credential') }) },
  // Customers and consent
  'customer.erased': { summary: 'A customer of yours was erased (data-rights request)', data: Data({ customerId: Id('Your customer'), externalId: Type.String({ description: 'The pseudonym now in its place' }), erasedAt: Time('When') }) },
  'customer_link.consent_requested': {
    summary: 'Another participant asks to link one of your customers: show the sealed code only to that customer, once authenticated',
    data: Data({ consentId: Id('The consent'), customerId: Id('Your customer'), requesterName: Type.String(), expiresAt: Time('The code expires'), codeSealed: Sealed }),
  },
  'customer_link.created': { summary: 'A customer link between you and another participant was confirmed', data: Data({ linkId: Id('The link'), customerId: Id('Your customer'), otherParticipantId: Id('The other participant') }) },
  'customer_link.revoked': { summary: 'A customer link was revoked', data: linkRevoked },
  // Step-up
  'step_up.code_requested': {
    summary: 'A one-time code for a customer step-up: deliver it to the customer (sealed to you)',
    data: Data({
      challengeId: Id('The challenge'),
      customerId: Id('Your customer'),
      cardId: Type.Optional(Id('The card, when the step-up is for one')),
      walletParticipantId: Id('The wallet that asked'),
      purpose: Type.String(),
      amount: Type.Optional(Type.Union([Money, Type.Null()])),
      payeeName: Type.Optional(Type.Union([Type.String(), Type.Null()])),
      expiresAt: Time('The code expires'),
      codeSealed: Sealed,
    }),
  },
  // Ledger and liquidity
  'ledger.account_opened': { summary: 'The operator opened a ledger account for you', data: Data({ accountId: Id('The account'), currency: Type.String(), kind: Type.String() }) },
  'ledger.account_funded': { summary: 'The operator funded one of your ledger accounts', data: Data({ accountId: Id('The account'), transferId: Id('The ledger transfer'), amount: Money }) },
  'liquidity.funds_in': { summary: 'Liquidity was added to your position', data: Data({ amount: Money, transferId: Id('The ledger transfer'), position }) },
  'liquidity.funds_out': { summary: 'Liquidity was withdrawn from your position', data: Data({ amount: Money, transferId: Id('The ledger transfer'), position }) },
  'liquidity.net_debit_cap_set': { summary: 'The operator set your net debit cap', data: Data({ position }) },
  'liquidity.low': {
    summary: 'Your position came within 10% of what you may use (liquidity plus net debit cap): add liquidity or ask for a higher cap',
    data: Data({ available: Money, netDebitCap: Money, liquidity: Money }),
  },
  // Settlement
  'settlement.window_closed': {
    summary: 'A settlement window closed: your multilateral net position in it (negative: you pay)',
    data: Data({ windowId: Id('The settlement window'), currency: Type.String(), netPosition: Money, sent: Money, received: Money }),
  },
  'settlement.settled': {
    summary: 'The settlement bank confirmed the window: your position moved by its net',
    data: Data({ windowId: Id('The settlement window'), currency: Type.String(), netPosition: Money, sent: Money, received: Money, reference: Type.String({ description: "The settlement bank's reference" }) }),
  },
  // FX providers
  'fx.rate_posted': {
    summary: 'You posted an FX rate: it is in force for its pair until it expires or you post a newer one',
    data: Data({
      id: Id('The rate'),
      providerParticipantId: Id('You'),
      from: Type.String({ description: 'The currency sent (the tiers are amounts of it)' }),
      to: Type.String({ description: 'The currency delivered' }),
      tiers: Type.Array(Data({ min: Money, max: Type.Union([Money, Type.Null()]), rate: Type.String() })),
      postedAt: Time('Posted'),
      expiresAt: Time('Expires'),
    }),
  },
  // Liquidity requests (a participant moving money between its settlement bank account and its position)
  'liquidity.request_created': { summary: 'Your liquidity request was recorded (completed at once, or waiting for the operator’s approval)', data: liquidityRequest },
  'liquidity.request_approved': { summary: 'The operator approved your liquidity request: the money moved', data: liquidityRequest },
  'liquidity.request_rejected': { summary: 'The operator rejected your liquidity request: nothing moved', data: liquidityRequest },
  // Customers' withdrawals to and top-ups from a linked bank account
  'cash.withdrawal_completed': {
    summary: 'A customer withdrew money to a bank account linked into their wallet (to the wallet: its customer paid out; to the bank: its customer credited)',
    data: cashMovement,
  },
  'cash.top_up_completed': {
    summary: 'A customer topped up their wallet from a linked bank account (to the wallet: its customer credited; to the bank: its customer debited)',
    data: cashMovement,
  },
  // Risk
  'risk.alert_raised': {
    summary: 'A risk rule raised an alert on one of your customers',
    data: Data({ alertId: Id('The alert'), customerId: Id('Your customer'), decision: Type.String({ description: 'allow, review, step_up or decline' }), score: Type.Number(), reasons: Type.Array(Type.String({ description: 'Rule name' })) }),
  },
  // Accounts and account links
  'account_link.consent_requested': {
    summary: 'A wallet asks to link one of your (bank) customer’s accounts: send the sealed code to the customer with the message',
    data: Data({ consentId: Id('The consent'), customerId: Id('Your customer'), walletName: Type.String(), codeSealed: Sealed, expiresAt: Time('The code expires'), messageTemplate: Type.String() }),
  },
  'account_link.created': {
    summary: 'Account links were confirmed (the wallet gets the link ids; the bank the accounts linked)',
    data: Data({
      consentId: Id('The consent'),
      linkIds: Type.Optional(Type.Array(Id('A link'))),
      customerId: Type.Optional(Id('Your customer (to the bank)')),
      links: Type.Optional(Type.Array(Data({ linkId: Id('A link'), accountId: Id('The account linked') }))),
    }),
  },
  'account_link.revoked': { summary: 'An account link was revoked', data: linkRevoked },
  // Aliases
  'alias.registered': { summary: 'An alias was registered for one of your customers', data: Data({ aliasId: Id('The alias'), type: Type.String({ description: 'phone, email or handle' }), customerId: Id('Your customer') }) },
  'alias.deleted': { summary: 'One of your aliases was deleted', data: Data({ aliasId: Id('The alias') }) },
  'alias.move_requested': {
    summary: 'Another participant asks to move one of your aliases: send the sealed code to the customer, who confirms it there',
    data: Data({ moveId: Id('The move'), aliasId: Id('The alias'), customerId: Id('Your customer'), toParticipantName: Type.String(), codeSealed: Sealed, expiresAt: Time('The code expires') }),
  },
  'alias.verification_requested': {
    summary: 'Your customer is adding a phone number or e-mail address as an alias: send the sealed code there; they confirm it in the wallet',
    data: Data({ verificationId: Id('The verification'), customerId: Id('Your customer'), type: Type.String({ description: 'phone or email' }), value: Type.String({ description: 'The normalized number (E.164) or address to send the code to' }), codeSealed: Sealed, expiresAt: Time('The code expires') }),
  },
  'alias.moved_away': { summary: 'One of your aliases moved to another participant', data: aliasChange },
  'alias.moved_in': { summary: 'An alias moved to you', data: aliasChange },
  'alias.flagged': { summary: 'A participant flagged one of your aliases for suspected fraud', data: aliasChange },
  // Transfers: P2P, requests, red packets
  'payment.sent': {
    summary: 'A P2P payment by your customer completed',
    data: Data({ paymentId: Id('The payment'), customerId: Id('Your customer (payer)'), sendAmount: Money, fee: Money, receiveAmount: Money, requestId: Type.Union([Id('The money request it paid'), Type.Null()]) }),
  },
  'payment.received': {
    summary: 'Your customer received a P2P payment (credited at once)',
    data: Data({ paymentId: Id('The payment'), customerId: Id('Your customer (payee)'), receiveAmount: Money, requestId: Type.Union([Id('The money request it paid'), Type.Null()]) }),
  },
  'payment.rejected': {
    summary: 'A P2P payment with a participant that keeps its own books was refused or timed out: nothing moved (ISO 20022 status RJCT and reason code)',
    data: Data({ paymentId: Id('The payment'), customerId: Id('Your customer (payer)'), status: Type.Literal('RJCT'), reason: Type.String({ description: 'ISO 20022 status reason code: AC01, AC04, AM02, AM04, AB03, AB05, DS0B, FF01…' }) }),
  },
  'money_request.created': { summary: 'Your customer’s money request was sent', data: Data({ requestId: Id('The request'), customerId: Id('Your customer') }) },
  'money_request.received': {
    summary: 'Your customer is asked for money',
    data: Data({
      requestId: Id('The request'),
      customerId: Id('Your customer (payer)'),
      requesterMaskedName: Type.String(),
      amount: Money,
      firstTime: Type.Boolean({ description: 'The payer never paid this requester' }),
      flagged: Type.Boolean({ description: 'The requester’s alias is flagged for fraud' }),
      warning: Type.Union([Type.String(), Type.Null()]),
    }),
  },
  'money_request.declined': { summary: 'The payer declined your customer’s request', data: Data({ requestId: Id('The request'), customerId: Id('Your customer (requester)') }) },
  'money_request.reminder': { summary: 'A reminder to pay a split share', data: Data({ requestId: Id('The request'), customerId: Id('Your customer (payer)'), warning: Type.String() }) },
  'red_packet.received': { summary: 'Your customers may claim a red packet', data: Data({ packetId: Id('The red packet'), customerIds: Type.Array(Id('Your customer')), message: Type.Union([Type.String(), Type.Null()]) }) },
  'red_packet.claimed': { summary: 'A red packet share was claimed (to the claimer: its amount)', data: Data({ packetId: Id('The red packet'), customerId: Id('The claiming (or sending) customer'), amount: Type.Optional(Money) }) },
  'red_packet.refunded': {
    summary: 'An expired red packet’s unclaimed amount went back to the sender (to the sender’s bank, which accepted it, when a bank that keeps its own books funded it)',
    data: Data({
      packetId: Id('The red packet'),
      customerId: Id('Your customer (sender)'),
      refunded: Money,
      status: Type.Optional(Type.Union([Type.Literal('refunded'), Type.Literal('refunding')], { description: 'Refunded through the sender’s bank: refunding while a share released since waits for the next refund' })),
      paymentId: Type.Optional(Id('Refunded through the sender’s bank: the refund payment (the TxId the bank knows)')),
    }),
  },
  'red_packet.funded': {
    summary: 'Your customer’s red packet, funded from an account at a bank that keeps its own books, is open: the bank reserved and the hub committed it into escrow',
    data: Data({ packetId: Id('The red packet'), customerId: Id('Your customer (sender)'), status: Type.Literal('open'), paymentId: Id('The funding payment (the TxId the bank knows)'), total: Money }),
  },
  'red_packet.failed': {
    summary: 'The sender’s bank refused (or did not answer in time) to fund your customer’s red packet: nothing moved, nobody can claim it',
    data: Data({ packetId: Id('The red packet'), customerId: Id('Your customer (sender)'), status: Type.Literal('failed'), paymentId: Id('The funding payment'), reason: Type.String({ description: 'ISO 20022 status reason code (AM04, AC04, MD01, AB05…)' }) }),
  },
  'red_packet.refund_delayed': {
    summary: 'The sender’s bank refused the refund of an expired red packet’s rest: the money stays in the hub’s escrow and the refund is tried again at retryAt',
    data: Data({ packetId: Id('The red packet'), customerId: Id('Your customer (sender)'), status: Type.Literal('refunding'), paymentId: Id('The refused refund payment'), reason: Type.String({ description: 'ISO 20022 status reason code' }), amount: Money, retryAt: Type.String({ format: 'date-time' }) }),
  },
  'red_packet.completed': { summary: 'A red packet expired with every share claimed', data: Data({ packetId: Id('The red packet'), customerId: Id('Your customer (sender)'), refunded: Money }) },
  // Cards and tokens
  'card.card_data_locked': { summary: 'Typed card data for one of your cards failed too often: locked for a while', data: Data({ cardId: Id('The card'), failures: Type.Integer(), lockedUntil: Time('Until') }) },
  'token.provisioned': { summary: 'A wallet provisioned a token for one of your cards', data: Data({ cardId: Id('The card'), tokenId: Id('The token'), walletParticipantId: Id('The wallet'), method: Type.String() }) },
  'token.step_up_requested': {
    summary: 'A wallet’s token request for your card needs the cardholder’s step-up (the code sealed to you, when by code)',
    data: Data({
      provisioningId: Id('The provisioning'),
      cardId: Id('The card'),
      customerId: Id('Your customer'),
      walletParticipantId: Id('The wallet'),
      method: Type.String(),
      expiresAt: Type.Union([Time('Expires'), Type.Null()]),
      codeSealed: Type.Optional(Sealed),
    }),
  },
  'token.suspended': { summary: 'A token was suspended (by its wallet, its issuer, or its card)', data: tokenChange },
  'token.resumed': { summary: 'A token was resumed', data: tokenChange },
  'token.deleted': { summary: 'A token was deleted', data: tokenChange },
  'token.card_replaced': {
    summary: 'The card behind a token was replaced: the token now maps to the new card',
    data: Type.Composite([tokenChange, Type.Object({ cardLast4: Type.String(), cardExpiry: Type.String() })], { additionalProperties: true }),
  },
  // Offline small payments (src/offline)
  'offline.payment_settled': {
    summary: 'An offline payment token a merchant uploaded was settled from the payer’s offline purse (to the wallet and to the merchant’s owner)',
    data: Data({
      offlinePaymentId: Id('The offline payment'),
      purseId: Id('The offline purse'),
      customerId: Type.Optional(Id('Your customer (to the wallet)')),
      counter: Type.Integer({ description: 'The device’s payment counter' }),
      merchantId: Id('The merchant'),
      amount: Money,
      signedAt: Time('When the device signed it'),
    }),
  },
  'offline.double_spend': {
    summary: 'A second payment token under a counter already settled was refused: the purse is blocked (no more loads) and pays other counters only from what it reserved',
    data: Data({
      purseId: Id('The offline purse'),
      customerId: Id('Your customer'),
      counter: Type.Integer({ description: 'The counter signed twice' }),
      settledPaymentId: Id('The payment settled under that counter'),
      merchantId: Id('The merchant that presented the refused token'),
      amount: Money,
      status: Type.String({ description: 'The purse status now' }),
    }),
  },
  'offline.purse_closed': {
    summary: 'An unloaded or blocked offline purse passed its upload window: what was left went back to your customer’s account',
    data: Data({ purseId: Id('The offline purse'), customerId: Id('Your customer'), released: Money }),
  },
  // Customers' budgets and alerts (kept at the hub, told to the customer's wallet)
  'budget.exceeded': {
    summary: "Your customer's spending this month passed the monthly budget they set (told once per month)",
    data: Data({ customerId: Id('Your customer'), currency: Type.String(), month: Type.String({ description: 'YYYY-MM (UTC)' }), spent: Money, monthlyLimit: Money }),
  },
  'budget.low_balance': {
    summary: "Your customer's available balance fell below the alert they set (told once, until it is back above)",
    data: Data({ customerId: Id('Your customer'), currency: Type.String(), available: Money, threshold: Money }),
  },
  // Value: savings pots, coupons and membership cards, rewards
  'pot.deposited': {
    summary: "Money moved from your customer's account into one of their savings pots",
    data: Data({ potId: Id('The pot'), customerId: Id('Your customer'), name: Type.String(), amount: Money, balance: Money, goal: Type.Union([Money, Type.Null()]) }),
  },
  'pot.withdrawn': {
    summary: "Money moved from your customer's savings pot back into their account",
    data: Data({ potId: Id('The pot'), customerId: Id('Your customer'), name: Type.String(), amount: Money, balance: Money, goal: Type.Union([Money, Type.Null()]) }),
  },
  'pot.goal_reached': {
    summary: "Your customer's savings pot reached its goal (told when a deposit crosses it)",
    data: Data({ potId: Id('The pot'), customerId: Id('Your customer'), name: Type.String(), balance: Money, goal: Type.Union([Money, Type.Null()]) }),
  },
  'coupon.claimed': {
    summary: "A wallet's customer kept one of your merchants' coupons (to the merchant's owner; no customer is named)",
    data: Data({ couponId: Id('The coupon'), merchantId: Id('The merchant'), claimedBy: Id('The wallet that keeps it'), source: Type.String({ description: 'claimed, or points (taken for reward points)' }) }),
  },
  'targeted_offer.accepted': {
    summary: 'A customer accepted one of your targeted offers (to the issuer; no customer, card or wallet is named)',
    data: Data({ offerId: Id('Your targeted offer'), acceptedCount: Type.Integer({ description: 'How many customers accepted it so far' }) }),
  },
  'membership.joined': {
    summary: "A wallet's customer joined one of your merchants' membership programmes (to the merchant's owner)",
    data: Data({ programId: Id('The programme'), merchantId: Id('The merchant'), memberNumber: Type.String(), walletParticipantId: Id('The wallet that keeps the card') }),
  },
  'reward.earned': {
    summary: 'One of your cards earned rewards on a captured payment (to the issuer)',
    data: Data({ cardId: Id('The card'), authorizationId: Id('The payment'), kind: Type.String({ description: 'points or cashback' }), points: Type.Optional(Type.String()), cashback: Type.Optional(Money) }),
  },
  'reward.reversed': {
    summary: "Rewards taken back from one of your cards because its payment was refunded (in proportion to the refund)",
    data: Data({ cardId: Id('The card'), authorizationId: Id('The payment'), refundId: Id('The refund'), kind: Type.String(), points: Type.Optional(Type.String()), cashback: Type.Optional(Money) }),
  },
  'reward.redeemed': {
    summary: "One of your cards' rewards redeemed: cashback paid into its account from your position, or points for a coupon",
    data: Data({ cardId: Id('The card'), kind: Type.String({ description: 'cashback or coupon' }), cashback: Type.Optional(Money), transferId: Type.Optional(Id('The ledger transfer of the cashback')), points: Type.Optional(Type.String()), couponId: Type.Optional(Id('The coupon')) }),
  },
  'token.keys_replenished': {
    summary: 'A token’s device obtained a new limited-use key (to the wallet and the issuer; never the key itself)',
    data: Data({
      tokenRef: Type.Optional(Id('The token (to the wallet)')),
      cardId: Type.Optional(Id('The card (to the issuer)')),
      tokenId: Type.Optional(Id('The token id (to the issuer)')),
      walletParticipantId: Type.Optional(Id('The wallet holding the token (to the issuer)')),
      keyCounter: Type.Integer({ description: 'The new key’s number' }),
      firstAtc: Type.Integer({ description: 'The first transaction counter it signs' }),
      lastAtc: Type.Integer({ description: 'The last transaction counter it signs' }),
      expiresAt: Time('When it stops being accepted'),
    }),
  },
  // Acceptance: merchants and card payments
  'merchant.created': { summary: 'A merchant profile was created', data: Data({ merchantId: Id('The merchant'), settlementAccountId: Id('Its settlement account') }) },
  'payment.authorized': { summary: 'A card payment was authorized', data: withCardPayment({ channel: Type.String({ description: 'mpm_static, mpm_dynamic, cpm, tap or link' }), decidedBy: Type.String({ description: 'hosted, issuer, stand_in or account' }) }) },
  'payment.captured': { summary: 'A card payment was captured (the merchant fee taken)', data: withCardPayment({ fee: Money }) },
  'payment.voided': { summary: 'A card payment was voided before capture', data: cardPayment },
  'payment.refunded': { summary: 'A card payment was refunded (in part or in full)', data: withCardPayment({ refundId: Id('The refund'), refundAmount: Money }) },
  'payment.expired': { summary: 'An uncaptured card authorization expired: its hold was released', data: cardPayment },
  'payment.authorization_reversed': {
    summary: 'An authorization your issuer approved did not complete: reverse your hold',
    data: Data({ authorizationId: Id('The authorization'), cardId: Type.Union([Id('The card'), Type.Null()]), amount: Type.Object(Money.properties, { additionalProperties: false, description: 'What you approved: the authorization request’s amount, in the card’s currency' }), reason: Type.String() }),
  },
  // Credit lines
  'credit.line_opened': { summary: 'You opened a credit line for a customer', data: Data({ accountId: Id('The credit line'), customerId: Id('Your customer'), limit: Money }) },
  'credit.limit_changed': { summary: "A credit line's limit changed", data: Data({ accountId: Id('The credit line'), customerId: Id('Your customer'), limit: Money }) },
  'credit.statement_issued': {
    summary: 'A statement of a credit line closed (to the issuer, and to every wallet holding a token of the card)',
    data: Data({
      statementId: Id('The statement'),
      accountId: Type.Optional(Id('The credit line (to the issuer)')),
      tokenRef: Type.Optional(Id('Your token of the card (to a wallet)')),
      customerId: Id('Your customer'),
      balance: Money,
      minimumPayment: Money,
      dueAt: Time('The due date'),
    }),
  },
  'credit.statement_overdue': {
    summary: 'A statement reached its due date with less than its minimum payment paid',
    data: Data({ statementId: Id('The statement'), accountId: Id('The credit line'), customerId: Id('Your customer'), minimumPayment: Money, paid: Money, dueAt: Time('The due date') }),
  },
  'credit.repayment_received': {
    summary: 'A credit line was repaid (to the issuer, and to the wallet that paid it)',
    data: Data({
      repaymentId: Id('The repayment'),
      accountId: Id('The credit line'),
      customerId: Type.Union([Id("The issuer's customer"), Type.Null()]),
      amount: Money,
      owed: Money,
      statementId: Type.Union([Id('The statement it counted against'), Type.Null()]),
    }),
  },
  // Disputes and fraud recalls
  'dispute.opened': { summary: 'A customer disputed a card or P2P payment (to the wallet, the issuer or payer’s participant, and the merchant’s or payee’s participant)', data: disputeChange },
  'dispute.updated': { summary: 'A dispute moved on: charged back, rejected, accepted, represented, refunded, or its deadline passed unanswered', data: disputeChange },
  'recall.opened': {
    summary: 'A fraud recall of a P2P payment froze what was left of the money (to the payer’s wallet, the payee’s participant and every participant holding a frozen account)',
    data: recallChange,
  },
  'recall.decided': { summary: 'A fraud recall was decided (refunded or rejected by the payee’s participant) or lapsed unanswered', data: recallChange },
} as const satisfies Record<string, EventEntry>;

export type EventType = keyof typeof eventCatalogue;
export const EVENT_TYPES = Object.keys(eventCatalogue).sort() as EventType[];

/** The envelope every webhook delivery carries. */
export const eventEnvelope = (type: string, data: TSchema) =>
  Type.Object(
    {
      id: Type.String({ description: 'The event id (also the `webhook-id` header): deduplicate on it' }),
      type: Type.Literal(type),
      createdAt: Type.String({ format: 'date-time' }),
      data,
    },
    { additionalProperties: false },
  );

const pascal = (type: string) =>
  type
    .split(/[^A-Za-z0-9]+/)
    .filter((p) => p.length > 0)
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join('');

const signatureHeaders = [
  { name: 'webhook-id', in: 'header', required: true, description: 'The event id: the same on every retry of this delivery (deduplicate on it)', schema: { type: 'string' } },
  { name: 'webhook-timestamp', in: 'header', required: true, description: 'Unix seconds when this attempt was signed: refuse one too far from your clock (5 minutes)', schema: { type: 'string', pattern: '^[0-9]+$' } },
  {
    name: 'webhook-signature',
    in: 'header',
    required: true,
    description:
      'Standard Webhooks: space-separated `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<raw body>">` under your secret `whsec_<base64 key>`; ' +
      'several during a secret rotation: accept the request when any matches (the SDK: `verifyWebhook`).',
    schema: { type: 'string' },
  },
];

/** The type of the issuer authorization request (not an event: see `issuerAuthorizationRequest`). */
export const AUTHORIZATION_REQUEST_TYPE = 'authorization.request';

/**
 * The OpenAPI 3.1 `webhooks` section: one POST to your webhook URL per event type, with its payload, and the
 * authorization request a real-time issuer's endpoint receives.
 */
export function webhooksDocument(): Record<string, unknown> {
  const authorizationRequest = {
    post: {
      operationId: 'onAuthorizationRequest',
      tags: ['webhooks'],
      summary: 'A card payment of yours to decide (real-time issuers: POST /v1/issuer/authorization-settings, mode webhook)',
      description:
        'Sent as a POST to your `authUrl` (not your webhook URL), signed per Standard Webhooks with your webhook secret, once per payment (a retried request ' +
        'replays its answer without asking again). Answer within your `deadlineMs`: `{ "decision": "approve" }` or `{ "decision": "decline", "reason": "…" }`; ' +
        'no valid answer in time lets your stand-in rule decide. Hold `amount` (your card’s currency); an approval the payment does not use is ' +
        'reversed by `payment.authorization_reversed`, in the same currency.',
      security: [],
      // The id is the request's (`areq_…`), not an event's: each request is sent once, never retried.
      parameters: signatureHeaders.map((h) => (h.name === 'webhook-id' ? { ...h, description: 'The request id (`areq_…`): each authorization request is sent once, never retried' } : h)),
      requestBody: {
        required: true,
        content: { 'application/json': { schema: Type.Object({ type: Type.Literal(AUTHORIZATION_REQUEST_TYPE), data: issuerAuthorizationRequest }, { additionalProperties: false }) } },
      },
      responses: {
        '200': {
          description: 'Your decision',
          content: {
            'application/json': {
              schema: Type.Object({ decision: Type.Union([Type.Literal('approve'), Type.Literal('decline')]), reason: Type.Optional(Type.String({ maxLength: 64, description: 'Why you declined (shown to the payer in details.reason)' })) }),
            },
          },
        },
      },
    },
  };
  return Object.fromEntries([
    [AUTHORIZATION_REQUEST_TYPE, authorizationRequest],
    ...EVENT_TYPES.map((type) => {
      const entry: EventEntry = eventCatalogue[type];
      return [
        type,
        {
          post: {
            operationId: `on${pascal(type)}`,
            tags: ['webhooks'],
            summary: entry.summary,
            description:
              `${entry.summary}. Sent as a POST to your webhook URL (PATCH /v1/me), signed per Standard Webhooks; retried with backoff until you answer 2xx. ` +
              'The same event may arrive more than once: deduplicate on `id`.',
            security: [],
            parameters: signatureHeaders,
            requestBody: { required: true, content: { 'application/json': { schema: eventEnvelope(type, entry.data) } } },
            responses: {
              '200': { description: 'Received: any 2xx answer acknowledges the event' },
              '400': { description: 'Refused (e.g. a bad signature): the hub retries, then gives up' },
            },
          },
        },
      ];
    }),
  ]);
}
