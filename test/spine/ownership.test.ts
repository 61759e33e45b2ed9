import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectRefs, OPAQUE, REF_KINDS, type NamedRef, type RefKind } from '../../src/api/refs.ts';
import { openSentCode } from '../../src/platform/sent-codes.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { createFakeClock } from '../../src/platform/clock.ts';
import { cardInTwoWallets, tapBody } from '../../src/demo/fixtures.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { newDevice } from '../../src/demo/device.ts';

const engines = await availableEngines();

/**
 * The ownership sweep, generated from /openapi.json: for every participant operation, every id it names — in its path,
 * its query or its body, at any depth — is replaced by a real id of ANOTHER participant's object (and, where the
 * request acts for a customer, by another customer's object of the same participant); each must answer 404 with the
 * kind's code and write nothing (every table carries a write-counting trigger for the test). A customer session is
 * swept the same way, and may not call operations its customer's app does not need. New routes are covered the day
 * they are added: an operation with an id field the sweep cannot exercise fails it, and an id-shaped field without a
 * declared kind fails the declaration check.
 */

/** Who calls an operation in the sweep, by path: the participant the route is for. */
const CALLERS: readonly [RegExp, string][] = [
  [/^\/v1\/issuer\//, 'bank-a'],
  [/^\/v1\/(card-products|cards)\//, 'bank-a'],
  [/^\/v1\/coupons\//, 'merchant-a'],
  [/^\/v1\/(merchants|payments|offline\/payments)(\/|$)/, 'merchant-a'],
  [/^\/(v1|demo\/v1)\//, 'wallet-a'],
];
const callerOf = (path: string) => CALLERS.find(([re]) => re.test(path))?.[1];

/**
 * Where each kind's objects live and whom they belong to — written here independently of the hub's own ownership
 * specs, so that the sweep checks them rather than trusts them. `participant` is the owner, `customer` the
 * owner-side customer (null for a participant's own objects).
 */
const KIND_TABLES: Record<RefKind, string> = {
  participant: `select id, id as participant, null as customer from participants`,
  payment_link: `select id, owner_participant_id as participant, null as customer from pay_links`,
  credential: `select id, participant_id as participant, null as customer from credentials`,
  customer: `select id, participant_id as participant, id as customer from customers`,
  account: `select id, owner_participant_id as participant, customer_id as customer from ledger_accounts`,
  account_link: `select id, wallet_participant_id as participant, wallet_customer_id as customer from account_links`,
  account_link_consent: `select id, wallet_participant_id as participant, wallet_customer_id as customer from account_link_consents`,
  open_banking_consent: `select id, wallet_participant_id as participant, wallet_customer_id as customer from open_banking_consents`,
  alias: `select id, participant_id as participant, customer_id as customer from aliases`,
  alias_move: `select id, to_participant_id as participant, to_customer_id as customer from alias_moves`,
  alias_verification: `select id, participant_id as participant, customer_id as customer from alias_verifications`,
  webhook_delivery: `select id, participant_id as participant, null as customer from webhook_deliveries`,
  card_product: `select id, issuer_participant_id as participant, null as customer from card_products`,
  card: `select id, issuer_participant_id as participant, customer_id as customer from cards`,
  card_ref: `select id, issuer_participant_id as participant, customer_id as customer from cards`,
  issuer_token: `select id, issuer_participant_id as participant, null as customer from card_tokens`,
  token: `select token_ref as id, requestor_participant_id as participant, customer_id as customer from card_tokens`,
  shared_token_ref: `select token_ref as id, requestor_participant_id as participant, customer_id as customer from card_tokens`,
  card_wallet_entry: `select id, requestor_participant_id as participant, customer_id as customer from card_tokens`,
  provisioning: `select id, requestor_participant_id as participant, customer_id as customer from token_provisionings`,
  quote: `select id, payer_participant_id as participant, payer_customer_id as customer from quotes`,
  transfer: `select id, payer_participant_id as participant, payer_customer_id as customer from payments`,
  money_request: `select id, requester_participant_id as participant, requester_customer_id as customer from money_requests`,
  split: `select id, participant_id as participant, customer_id as customer from bill_splits`,
  red_packet: `select id, participant_id as participant, customer_id as customer from red_packets`,
  risk_alert: `select id, participant_id as participant, null as customer from risk_alerts`,
  merchant: `select id, owner_participant_id as participant, null as customer from merchants`,
  qr_code: `select id, owner_participant_id as participant, null as customer from pay_qr_codes`,
  card_payment: `select id, owner_participant_id as participant, null as customer from pay_authorizations`,
  step_up_challenge: `select id, participant_id as participant, customer_id as customer from step_up_challenges`,
  customer_link: `select id, participant_id as participant, customer_id as customer from customer_links`,
  customer_link_consent: `select id, participant_id as participant, customer_id as customer from customer_link_consents`,
  passkey: `select id, participant_id as participant, customer_id as customer from passkey_registrations`,
  settlement_window: `select id, null as participant, null as customer from settlement_windows`,
  dispute: `select id, wallet_participant_id as participant, customer_id as customer from disputes`,
  recall: `select id, wallet_participant_id as participant, customer_id as customer from recalls`,
  liquidity_request: `select id, participant_id as participant, null as customer from liquidity_requests`,
  cash_movement: `select id, participant_id as participant, customer_id as customer from cash_movements`,
  coupon: `select id, owner_participant_id as participant, null as customer from coupons`,
  wallet_coupon: `select id, participant_id as participant, customer_id as customer from wallet_coupons`,
  membership_program: `select id, owner_participant_id as participant, null as customer from membership_programs`,
  savings_pot: `select id, participant_id as participant, customer_id as customer from savings_pots`,
  targeted_offer: `select id, issuer_participant_id as participant, null as customer from targeted_offers`,
  offline_purse: `select id, participant_id as participant, customer_id as customer from offline_purses`,
};

/** Kinds anyone authenticated may name: a participant in the directory, a payment link its merchant published. */
const PUBLIC_KINDS: ReadonlySet<RefKind> = new Set(['participant', 'payment_link', 'settlement_window', 'coupon', 'membership_program', 'targeted_offer']);

/**
 * Objects another participant may legitimately name (the relations the ownership rule grants: both sides of a money
 * request, payment, link or red packet; a token of a card this wallet also holds): never used as "another
 * participant's" object, since naming them is allowed.
 */
const SHARED_SQL: Partial<Record<RefKind, string>> = {
  transfer: `select id from payments where payee_participant_id = $1 or payer_participant_id = $1`,
  money_request: `select id from money_requests where payer_participant_id = $1 or requester_participant_id = $1`,
  red_packet: `select packet_id as id from red_packet_members where participant_id = $1 union select id from red_packets where participant_id = $1`,
  account_link: `select id from account_links where bank_participant_id = $1 or wallet_participant_id = $1`,
  customer_link: `select id from customer_links where participant_id = $1`,
  card_payment: `select id from pay_authorizations where payer_participant_id = $1 or owner_participant_id = $1`,
  account: `select account_id as id from account_links where wallet_participant_id = $1 and status = 'active'`,
  card_wallet_entry: `select e.id from card_tokens e join card_tokens mine on mine.card_id = e.card_id where mine.requestor_participant_id = $1`,
  shared_token_ref: `select t.token_ref as id from card_tokens t join cards c on c.id = t.card_id join customer_links l on l.participant_id = $1
                       and ((l.other_participant_id = t.requestor_participant_id and l.other_customer_id = t.customer_id) or (l.other_participant_id = c.issuer_participant_id and l.other_customer_id = c.customer_id))`,
  dispute: `select id from disputes where wallet_participant_id = $1 or issuer_participant_id = $1 or respondent_participant_id = $1`,
  recall: `select id from recalls where wallet_participant_id = $1 or payee_participant_id = $1 union select recall_id from recall_holds where owner_participant_id = $1`,
  card_ref: `select c.id from cards c join customer_links l on l.other_participant_id = c.issuer_participant_id and l.other_customer_id = c.customer_id where l.participant_id = $1`,
};

type Json = Record<string, any>;
interface Inventory {
  readonly byKind: Map<RefKind, { id: string; participant: string; customer: string | null }[]>;
  readonly shared: Map<RefKind, Set<string>>;
}

describe.each(engines)('ownership sweep on %s', (engine) => {
  let t: TestHub;
  let doc: Json;
  const clock = createFakeClock(Date.UTC(2026, 5, 1, 9, 0, 0));
  const key = () => ({ 'idempotency-key': randomBytes(9).toString('base64url') });
  const me = (k: string) => demoParticipantId(k);
  const cus = (k: string) => demoCustomerId(k);

  beforeAll(async () => {
    t = await startTestHub(engine, { clock, config: { webhooks: { enabled: false, pollMs: 1000 }, accessTokenTtlS: 86_400 } });
    doc = (await t.api('anonymous').get('/openapi.json')).body;
    await buildObjects();
    await installWriteCounter();
  }, 240_000);
  afterAll(async () => t?.close());

  const ok = async (p: Promise<{ status: number; body: any }>, status: number) => {
    const r = await p;
    expect(r.status, JSON.stringify(r.body)).toBe(status);
    return r.body;
  };

  /** Objects of every kind on both sides: wallet A's 李伟 (the caller's own), wallet B's and others' (the foreign). */
  async function buildObjects() {
    const wa = t.api('wallet-a');
    const wb = t.api('wallet-b');
    const call = async (as: string, method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown, headers?: Record<string, string>) =>
      method === 'GET' ? t.api(as).get(path, headers) : method === 'PATCH' ? t.api(as).patch(path, body, headers) : t.api(as).post(path, body, headers);
    // Cards and tokens: bank A's card for 李伟 in wallets A and B; bank B's card for 张敏 in wallet B.
    const card = await cardInTwoWallets(t.hub, call);
    const zhangCard = await ok(t.api('bank-b').post('/v1/issuer/cards', { productId: 'cpr_demo_bank_b_credit', customerId: cus('zhang-at-bank-b') }, key()), 201);
    await ok(t.api('bank-b').post(`/v1/issuer/cards/${zhangCard.card.id}/activate`), 200);
    const typed = { type: 'typed', cardNumber: zhangCard.cardNumber, expiry: zhangCard.card.expiry, cvv: zhangCard.cvv };
    const zhangPhone = newDevice();
    const prov = await ok(wb.post('/v1/wallet/tokens', { customerId: cus('zhang-at-wallet-b'), consent: true, deviceId: 'zb-1', devicePublicKey: zhangPhone.publicKey, source: typed }, key()), 201);
    if (prov.status === 'pending_step_up') {
      const code = await openSentCode(t.hub, 'token.step_up_requested', prov.id);
      await ok(wb.post(`/v1/wallet/provisionings/${prov.id}/step-up`, { code, deviceSignature: await zhangPhone.sign({ purpose: 'step_up', provisioningId: prov.id }) }), 200);
    }
    // Card payments at each merchant (the one at merchant B written directly: its currency needs another card).
    await ok(t.api('merchant-a').post('/v1/merchants/mer_demo_merchant_a/payments/tap', tapBody(card.a, { amountMinor: 100n, amount: '1.00', now: clock.now() }), key()), 201);
    await ok(t.api('merchant-a').post('/v1/merchants/mer_demo_merchant_a/payments/tap', tapBody(card.b, { amountMinor: 100n, amount: '1.00', now: clock.now() }), key()), 201);
    await t.hub.db.query(
      `insert into pay_authorizations (id, owner_participant_id, merchant_id, channel, status, source_kind, issuer_participant_id, source_account_id, amount_minor, currency,
                                      auth_code, decided_by, hold_transfer_id, country, mcc, created_at, updated_at)
       values ('pay_sweep_merchant_b', $1, 'mer_demo_merchant_b', 'tap', 'authorized', 'account', $2, 'acc_sweep', 100, 'HKD', 'ABC123', 'hosted', 'hold_sweep', 'HK', '5814', $3, $3)`,
      [me('merchant-b'), me('bank-b'), clock.now()],
    );
    // A dispute and a fraud recall of wallet B's customer (written directly: the sweep needs objects, not their story).
    await t.hub.db.query(
      `insert into disputes (id, kind, payment_id, wallet_participant_id, customer_id, issuer_participant_id, respondent_participant_id, payer_account_id, respondent_account_id,
                             amount_minor, currency, reason, status, respond_by, created_at, updated_at)
       values ('dsp_sweep', 'card', 'pay_sweep_merchant_b', $1, $2, $3, $4, 'acc_sweep', 'acc_sweep_m', 100, 'HKD', 'sweep', 'opened', $5, $5, $5)`,
      [me('wallet-b'), cus('zhang-at-wallet-b'), me('bank-b'), me('merchant-b'), new Date(clock.nowMs() + 86_400_000)],
    );
    await t.hub.db.query(
      `insert into recalls (id, payment_id, wallet_participant_id, customer_id, payee_participant_id, victim_account_id, amount_minor, currency, reason, status, analysis_due_at, refund_due_at, created_at, updated_at)
       values ('rcl_sweep', 'pay_sweep', $1, $2, $3, 'acc_sweep', 100, 'CNY', 'sweep', 'analysing', $4, $4, $4, $4)`,
      [me('wallet-b'), cus('zhang-at-wallet-b'), me('wallet-c'), new Date(clock.nowMs() + 86_400_000)],
    );
    for (const m of ['a', 'b']) await ok(t.api(`merchant-${m}`).post(`/v1/merchants/mer_demo_merchant_${m}/qr-codes`, { kind: 'static' }, key()), 201);
    await ok(t.api('merchant-a').post('/v1/merchants/mer_demo_merchant_a/payment-links', { amount: { amount: '5.00', currency: 'CNY' }, description: 'Sweep', expiresInS: 3600 }, key()), 201);
    // P2P: quotes and payments both ways, money requests, splits, red packets (to a CNY member of wallet B, not wallet A).
    await ok(wb.post('/v1/aliases', { customerId: cus('li-at-wallet-b'), type: 'handle', value: 'li.jade', accountId: 'acc_cus_demo_li_at_wallet_b_CNY' }, key()), 201);
    for (const [as, from, to, second] of [
      ['wallet-a', 'li-at-wallet-a', 'zhangmin', 'maria.tan'],
      ['wallet-b', 'zhang-at-wallet-b', 'maria.tan', 'liwei'],
    ] as const) {
      const q = await ok(t.api(as).post('/v1/transfers/quotes', { customerId: cus(from), payee: { type: 'handle', value: to }, sendAmount: { amount: '1.00', currency: 'CNY' } }, key()), 201);
      await ok(t.api(as).post('/v1/transfers/payments', { quoteId: q.id }, key()), 201);
      await ok(t.api(as).post('/v1/transfers/quotes', { customerId: cus(from), payee: { type: 'handle', value: to }, sendAmount: { amount: '2.00', currency: 'CNY' } }, key()), 201);
      await ok(t.api(as).post('/v1/transfers/requests', { customerId: cus(from), payer: { type: 'handle', value: to }, amount: { amount: '3.00', currency: 'CNY' } }, key()), 201);
      await ok(t.api(as).post('/v1/transfers/splits', { customerId: cus(from), total: { amount: '10.00', currency: 'CNY' }, method: 'equal', members: [{ alias: { type: 'handle', value: to } }, { alias: { type: 'handle', value: second } }] }, key()), 201);
      await ok(t.api(as).post('/v1/transfers/red-packets', { customerId: cus(from), total: { amount: '2.00', currency: 'CNY' }, shares: 1, mode: 'equal', members: [{ type: 'handle', value: as === 'wallet-a' ? to : 'li.jade' }] }, key()), 201);
    }
    // Account links and customer links (consent on both sides), alias moves.
    for (const [as, who, bank] of [
      ['wallet-a', 'li-at-wallet-a', 'bank-a'],
      ['wallet-b', 'zhang-at-wallet-b', 'bank-b'],
    ] as const) {
      const consent = await ok(t.api(as).post('/v1/account-links', { customerId: cus(who), bankParticipantId: me(bank) }, key()), 201);
      await ok(t.api(as).post(`/v1/account-links/consents/${consent.id}/confirm`, { code: await openSentCode(t.hub, 'account_link.consent_requested', consent.id) }), 201);
      await ok(t.api(as).post('/v1/account-links', { customerId: cus(who), bankParticipantId: me(bank) }, key()), 201);
      const link = await ok(t.api(as).post('/v1/customer-links', { customerId: cus(who), participantId: me(bank) }, key()), 201);
      await ok(t.api(as).post(`/v1/customer-links/consents/${link.id}/confirm`, { code: await openSentCode(t.hub, 'customer_link.consent_requested', link.id) }), 201);
    }
    // Liquidity requests of two participants; top-ups of two wallets' customers from their linked bank accounts.
    for (const p of ['wallet-a', 'wallet-b']) await ok(t.api(p).post('/v1/liquidity/requests', { direction: 'top_up', amount: { amount: '1.00', currency: 'CNY' } }, key()), 201);
    await ok(wb.post('/v1/accounts', { customerId: cus('zhang-at-wallet-b'), currency: 'HKD' }, key()), 201);
    for (const [as, who, cur] of [
      ['wallet-a', 'li-at-wallet-a', 'CNY'],
      ['wallet-b', 'zhang-at-wallet-b', 'HKD'],
    ] as const) {
      const links = await ok(t.api(as).get(`/v1/account-links?customerId=${cus(who)}`), 200);
      const link = (links.items as { id: string; accountId: string; status: string }[]).find((l) => l.status === 'active' && l.accountId.endsWith(`_${cur}`));
      expect(link).toBeDefined();
      await ok(t.api(as).post(`/v1/customers/${cus(who)}/top-ups`, { linkId: link!.id, amount: { amount: '1.00', currency: cur } }, key()), 201);
    }
    // Open-banking consents (their start needs a connected bank, absent here): written directly, one per wallet customer.
    await t.hub.db.query(
      `insert into open_banking_consents (id, wallet_participant_id, wallet_customer_id, bank_participant_id, currency, status, state_hash, redirect_uri, verifier_sealed, scope, expires_at, created_at)
       select 'obc_sweep_' || c.id, c.participant_id, c.id, $3, 'CNY', 'awaiting_authorization', 'h', 'https://wallet.example/cb', 'sealed', 'accounts payments', $4, $4
         from customers c where c.participant_id in ($1, $2)`,
      [me('wallet-a'), me('wallet-b'), me('bank-a'), clock.now()],
    );
    await ok(wa.post('/v1/aliases/moves', { customerId: cus('li-at-wallet-a'), type: 'handle', value: 'maria.tan', accountId: 'acc_cus_demo_li_at_wallet_a_CNY' }, key()), 201);
    await ok(wb.post('/v1/aliases/moves', { customerId: cus('zhang-at-wallet-b'), type: 'handle', value: 'liwei', accountId: 'acc_cus_demo_zhang_at_wallet_b_CNY' }, key()), 201);
    await ok(wa.post('/v1/aliases/verifications', { customerId: cus('li-at-wallet-a'), type: 'email', value: 'li.sweep@example.com', accountId: 'acc_cus_demo_li_at_wallet_a_CNY' }, key()), 201);
    await ok(wb.post('/v1/aliases/verifications', { customerId: cus('zhang-at-wallet-b'), type: 'email', value: 'zhang.sweep@example.com', accountId: 'acc_cus_demo_zhang_at_wallet_b_CNY' }, key()), 201);
    // Step-up challenges and passkey registrations, through the service (their routes are swept below).
    for (const [p, c] of [
      ['wallet-a', 'li-at-wallet-a'],
      ['wallet-b', 'zhang-at-wallet-b'],
    ] as const) {
      await t.hub.db.transaction(async (tx) => {
        const binding = { purpose: 'transfer' as const, participantId: me(p), customerId: cus(c), amountMinor: 100n, currency: 'CNY', payee: 'customer:x/y' };
        const offer = await t.hub.stepUp.offer(tx, binding, { amount: { amount: '1.00', currency: 'CNY' }, payeeName: 'X' }, { participantId: me(p), customerId: cus(c) });
        const ch = await t.hub.stepUp.createChallenge(tx, { type: 'system' }, { participantId: me(p), customerId: cus(c) }, offer.request, 'otp');
        expect(ch.ok).toBe(true);
        expect((await t.hub.stepUp.passkeyRegistrationOptions(tx, me(p), cus(c), c)).ok).toBe(true);
      });
    }
    // Webhook deliveries of two participants (a failed one each).
    for (const p of ['wallet-a', 'wallet-b']) {
      await t.hub.db.query(
        `insert into webhook_deliveries (id, event_id, participant_id, url, status, attempts, next_attempt_at, last_error, created_at)
         select $1, event_id, participant_id, 'https://example.com/hooks', 'failed', 8, $3, 'HTTP 500', $3 from events where participant_id = $2 order by id limit 1`,
        [`whd_sweep_${p}`, me(p), clock.now()],
      );
    }
    // Risk alerts of two participants.
    for (const p of ['wallet-a', 'wallet-b']) {
      await t.hub.db.query(
        `insert into risk_alerts (id, participant_id, customer_id, channel, decision, score, reasons, context, status, created_at) values ($1, $2, $3, 'p2p', 'step_up', 10, '[]', '{}', 'open', $4)`,
        [`ral_sweep_${p}`, me(p), cus(p === 'wallet-a' ? 'li-at-wallet-a' : 'zhang-at-wallet-b'), clock.now()],
      );
    }
    // Coupons and membership programmes of both merchants, kept by customers of both wallets; savings pots.
    const coupons: Record<string, string> = {};
    for (const m of ['a', 'b']) {
      const c = await ok(t.api(`merchant-${m}`).post(`/v1/merchants/mer_demo_merchant_${m}/coupons`, { name: `Sweep ${m}`, amountOff: '1.00', minSpend: '5.00', perCustomerLimit: 2, expiresAt: '2027-01-01T00:00:00Z' }, key()), 201);
      coupons[m] = c.id;
      await ok(t.api(`merchant-${m}`).post(`/v1/merchants/mer_demo_merchant_${m}/membership-programs`, { name: `Club ${m}` }, key()), 201);
    }
    await ok(wa.post('/v1/wallet/coupons', { customerId: cus('li-at-wallet-a'), couponId: coupons.a }, key()), 201);
    await ok(wb.post('/v1/wallet/coupons', { customerId: cus('zhang-at-wallet-b'), couponId: coupons.a }, key()), 201);
    // Targeted offers of both banks (public ids: wallets name them to accept them).
    for (const b of ['a', 'b']) await ok(t.api(`bank-${b}`).post('/v1/issuer/targeted-offers', { name: `Sweep ${b}`, minSpend: { amount: '1.00', currency: 'CNY' }, windowDays: 30, couponId: coupons.a, expiresAt: '2027-01-01T00:00:00Z' }, key()), 201);
    await ok(wa.post('/v1/pots', { customerId: cus('li-at-wallet-a'), name: 'Trip', currency: 'CNY' }, key()), 201);
    await ok(wb.post('/v1/pots', { customerId: cus('zhang-at-wallet-b'), name: 'Trip', currency: 'CNY' }, key()), 201);
    // A second customer at wallet A with objects of its own (the "another customer" side).
    const other = await ok(wa.post('/v1/customers', { externalId: `sweep-other-${randomBytes(3).toString('hex')}`, name: 'Other Customer', phone: '+8613700000999' }, key()), 201);
    const otherAcc = await ok(wa.post('/v1/accounts', { customerId: other.id, currency: 'CNY' }, key()), 201);
    await ok(wa.post(`/v1/accounts/${otherAcc.id}/deposits`, { amount: { amount: '50.00', currency: 'CNY' } }, key()), 201);
    await ok(wa.post('/v1/aliases', { customerId: other.id, type: 'handle', value: 'sweep.other', accountId: otherAcc.id }, key()), 201);
    await ok(wa.post('/v1/aliases/verifications', { customerId: other.id, type: 'email', value: 'other.sweep@example.com', accountId: otherAcc.id }, key()), 201);
    const oq = await ok(wa.post('/v1/transfers/quotes', { customerId: other.id, payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '1.00', currency: 'CNY' } }, key()), 201);
    await ok(wa.post('/v1/transfers/payments', { quoteId: oq.id }, key()), 201);
    await ok(wa.post('/v1/transfers/quotes', { customerId: other.id, payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '1.00', currency: 'CNY' } }, key()), 201);
    await ok(wa.post('/v1/transfers/requests', { customerId: other.id, payer: { type: 'handle', value: 'maria.tan' }, amount: { amount: '1.00', currency: 'CNY' } }, key()), 201);
    await ok(wa.post('/v1/transfers/splits', { customerId: other.id, total: { amount: '2.00', currency: 'CNY' }, method: 'equal', members: [{ alias: { type: 'handle', value: 'maria.tan' } }, { alias: { type: 'handle', value: 'zhangmin' } }] }, key()), 201);
    await ok(wa.post('/v1/transfers/red-packets', { customerId: other.id, total: { amount: '1.00', currency: 'CNY' }, shares: 1, mode: 'equal', members: [{ type: 'handle', value: 'li.jade' }] }, key()), 201);
    await ok(wa.post('/v1/wallet/coupons', { customerId: other.id, couponId: coupons.a }, key()), 201);
    await ok(wa.post('/v1/pots', { customerId: other.id, name: 'Other pot', currency: 'CNY' }, key()), 201);
    await t.hub.db.transaction(async (tx) => {
      const binding = { purpose: 'transfer' as const, participantId: me('wallet-a'), customerId: other.id, amountMinor: 100n, currency: 'CNY', payee: 'customer:x/z' };
      const offer = await t.hub.stepUp.offer(tx, binding, { amount: { amount: '1.00', currency: 'CNY' }, payeeName: 'X' }, { participantId: me('wallet-a'), customerId: other.id });
      await t.hub.stepUp.createChallenge(tx, { type: 'system' }, { participantId: me('wallet-a'), customerId: other.id }, offer.request, 'otp');
      await t.hub.stepUp.passkeyRegistrationOptions(tx, me('wallet-a'), other.id, 'other');
    });
    // Offline purses: 李伟's at wallet A, the other customer's at wallet A, 张敏's at wallet B (each its own device key).
    for (const [as, customerId, accountId] of [
      ['wallet-a', cus('li-at-wallet-a'), 'acc_cus_demo_li_at_wallet_a_CNY'],
      ['wallet-a', other.id, otherAcc.id],
      ['wallet-b', cus('zhang-at-wallet-b'), 'acc_cus_demo_zhang_at_wallet_b_CNY'],
    ] as const) {
      const device = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
      const jwk = await crypto.subtle.exportKey('jwk', device.publicKey);
      await ok(t.api(as).post('/v1/offline/purses', { customerId, accountId, devicePublicKey: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }, amount: '5.00' }, key()), 201);
    }
  }

  /** Counts every write to every table (statement-level triggers), so that "writes nothing" is checked exactly. */
  async function installWriteCounter() {
    await t.hub.db.exec(`
      create table if not exists sweep_writes (n bigserial primary key, tbl text not null);
      create or replace function sweep_count_write() returns trigger language plpgsql as $$
      begin insert into sweep_writes (tbl) values (tg_table_name); return null; end $$;`);
    const tables = await t.hub.db.query<{ tablename: string }>(`select tablename from pg_tables where schemaname = 'public' and tablename <> 'sweep_writes'`);
    expect(tables.length).toBeGreaterThan(30);
    for (const { tablename } of tables) {
      await t.hub.db.exec(`create trigger sweep_writes_${tablename} after insert or update or delete on "${tablename}" for each statement execute function sweep_count_write();`);
    }
  }
  const writes = async () => (await t.hub.db.query<{ n: bigint }>('select count(*) as n from sweep_writes'))[0]?.n ?? 0n;

  async function inventory(participantId: string): Promise<Inventory> {
    const byKind = new Map<RefKind, { id: string; participant: string; customer: string | null }[]>();
    const shared = new Map<RefKind, Set<string>>();
    for (const kind of REF_KINDS) {
      byKind.set(kind, await t.hub.db.query(`${KIND_TABLES[kind]} order by id`));
      const sharedSql = SHARED_SQL[kind];
      shared.set(kind, new Set(sharedSql === undefined ? [] : (await t.hub.db.query<{ id: string }>(sharedSql, [participantId])).map((r) => r.id)));
    }
    return { byKind, shared };
  }

  // ---- building requests from the document --------------------------------------------------------------------------

  interface Field {
    readonly part: 'path' | 'query' | 'body';
    /** Property path inside the body (or the parameter name). */
    readonly path: readonly (string | number)[];
    readonly kind: RefKind;
  }

  const deref = (s: Json): Json => (typeof s?.$ref === 'string' ? deref(doc.components.schemas[s.$ref.replace('#/components/schemas/', '')]) : s);

  /** Every declared id field of a body schema (objects, arrays, unions), with its path. */
  function bodyFields(schema: Json, path: (string | number)[] = [], out: Field[] = []): Field[] {
    const s = deref(schema);
    if (s === undefined || s === null) return out;
    if (typeof s['x-ref'] === 'string') {
      if (s['x-ref'] !== OPAQUE) out.push({ part: 'body', path, kind: s['x-ref'] as RefKind });
      return out;
    }
    for (const v of s.anyOf ?? s.oneOf ?? []) bodyFields(v, path, out);
    for (const [name, p] of Object.entries<Json>(s.properties ?? {})) bodyFields(p, [...path, name], out);
    if (s.items !== undefined) bodyFields(s.items, [...path, 0], out);
    return out;
  }

  const sample = <T>(arb: fc.Arbitrary<T>): T => fc.sample(arb, { numRuns: 1, seed: 20261206 })[0] as T;

  /** A schema-valid value, with ids taken from `ids` (kind → id) and the branch holding `want` chosen in unions. */
  function valueFor(schema: Json, ids: (kind: RefKind) => string, want: readonly (string | number)[] | undefined): unknown {
    const s = deref(schema);
    if (typeof s['x-ref'] === 'string') return s['x-ref'] === OPAQUE ? 'opaque-1' : ids(s['x-ref'] as RefKind);
    if (s.const !== undefined) return s.const;
    if (Array.isArray(s.enum)) return s.enum[0];
    const variants: Json[] | undefined = s.anyOf ?? s.oneOf;
    if (variants !== undefined) {
      const head = want?.[0];
      const chosen = (typeof head === 'string' && variants.find((v) => deref(v).properties?.[head] !== undefined)) || variants.find((v) => deref(v).type === 'object') || variants[0];
      return valueFor(chosen as Json, ids, want);
    }
    switch (s.type) {
      case 'object': {
        const out: Json = {};
        const required: string[] = s.required ?? [];
        for (const [name, p] of Object.entries<Json>(s.properties ?? {})) {
          const onPath = want?.[0] === name;
          if (required.includes(name) || onPath) out[name] = valueFor(p, ids, onPath ? want?.slice(1) : undefined);
        }
        return out;
      }
      case 'array':
        return Array.from({ length: Math.max(s.minItems ?? 0, want !== undefined ? 1 : 0) }, () => valueFor(s.items, ids, want?.slice(1)));
      case 'integer':
      case 'number':
        return s.minimum ?? (s.maximum !== undefined ? Math.min(0, s.maximum) : 1);
      case 'boolean':
        return true;
      case 'string':
        if (s.format === 'date-time') return new Date(clock.nowMs()).toISOString();
        if (typeof s.pattern === 'string') {
          const x = sample(fc.stringMatching(new RegExp(s.pattern), { size: 'xsmall' }));
          return x.length > (s.maxLength ?? 1e9) ? x.slice(0, s.maxLength) : x;
        }
        return 'x'.repeat(Math.max(1, s.minLength ?? 1));
      default:
        return null;
    }
  }

  const setAt = (obj: Json, path: readonly (string | number)[], value: unknown) => {
    let o: any = obj;
    for (const p of path.slice(0, -1)) o = o[p];
    const last = path[path.length - 1];
    if (last !== undefined) o[last] = value;
  };

  // ---- the sweep -----------------------------------------------------------------------------------------------------

  it('every id-shaped request field of every operation declares what it names', () => {
    const undeclared: string[] = [];
    const idShaped = /(^id$|Id$|Ids$|Ref$|^cursor$)/;
    for (const [path, ops] of Object.entries<Json>(doc.paths)) {
      for (const [method, op] of Object.entries<Json>(ops)) {
        for (const p of op.parameters ?? []) if (p.name !== 'cursor' && idShaped.test(p.name) && p.schema?.['x-ref'] === undefined) undeclared.push(`${method} ${path} ${p.in}:${p.name}`);
        const walk = (schema: Json, at: string) => {
          const s = deref(schema);
          if (s === undefined || s === null) return;
          for (const v of s.anyOf ?? s.oneOf ?? []) walk(v, at);
          for (const [name, prop] of Object.entries<Json>(s.properties ?? {})) {
            if (idShaped.test(name) && deref(prop)['x-ref'] === undefined) undeclared.push(`${method} ${path} body:${at}${name}`);
            walk(prop, `${at}${name}.`);
          }
          if (s.items !== undefined) walk(s.items, `${at}[].`);
        };
        walk(op.requestBody?.content?.['application/json']?.schema, '');
      }
    }
    expect(undeclared).toEqual([]);
  });

  it("another participant's or another customer's id answers 404 with its kind's code and writes nothing, on every operation", async () => {
    const tried: string[] = [];
    const problems: string[] = [];
    const untestable: string[] = [];
    const inventories = new Map<string, Inventory>();
    for (const [path, ops] of Object.entries<Json>(doc.paths)) {
      for (const [method, op] of Object.entries<Json>(ops)) {
        const security = (op.security ?? []).flatMap((s: Json) => Object.keys(s));
        if (!security.includes('participant')) continue;
        const caller = callerOf(path);
        if (caller === undefined) {
          problems.push(`${method.toUpperCase()} ${path}: no caller in CALLERS for this path`);
          continue;
        }
        const participantId = me(caller);
        const inv = inventories.get(participantId) ?? (await inventory(participantId));
        inventories.set(participantId, inv);
        const params: Json[] = op.parameters ?? [];
        const bodySchema: Json | undefined = op.requestBody?.content?.['application/json']?.schema;
        const fields: Field[] = [
          ...params.filter((p) => p.in === 'path' || p.in === 'query').filter((p) => typeof p.schema?.['x-ref'] === 'string' && p.schema['x-ref'] !== OPAQUE).map((p) => ({ part: p.in === 'path' ? ('path' as const) : ('query' as const), path: [p.name], kind: p.schema['x-ref'] as RefKind })),
          ...(bodySchema === undefined ? [] : bodyFields(bodySchema)),
        ];
        // The request acts for a customer when it names one: the caller's own customers with objects of every kind.
        const actsForCustomer = fields.some((f) => f.kind === 'customer');
        const actingCustomer = caller === 'bank-a' ? cus('li-at-bank-a') : caller === 'wallet-a' ? cus('li-at-wallet-a') : undefined;
        const own = (kind: RefKind): string | undefined => {
          const rows = inv.byKind.get(kind) ?? [];
          if (PUBLIC_KINDS.has(kind)) return rows[0]?.id;
          const mine = rows.filter((r) => r.participant === participantId && (!actsForCustomer || r.customer === null || r.customer === actingCustomer || kind === 'customer'));
          const preferred = kind === 'customer' ? mine.find((r) => r.id === actingCustomer) : (mine.find((r) => r.customer === actingCustomer) ?? mine[0]);
          return (preferred ?? mine[0])?.id;
        };
        for (const target of fields) {
          if (PUBLIC_KINDS.has(target.kind)) continue; // anyone may name them
          const label = `${method.toUpperCase()} ${path} ${target.part}:${target.path.join('.')} (${target.kind})`;
          const foreignOwner = (inv.byKind.get(target.kind) ?? []).find((r) => r.participant !== participantId && !(inv.shared.get(target.kind)?.has(r.id) ?? false));
          const foreignCustomer = actsForCustomer
            ? (inv.byKind.get(target.kind) ?? []).find((r) => r.participant === participantId && r.customer !== null && r.customer !== actingCustomer && !(inv.shared.get(target.kind)?.has(r.id) ?? false))
            : undefined;
          const substitutes = [foreignOwner, target.kind !== 'customer' || !actsForCustomer ? foreignCustomer : undefined].filter((x): x is NonNullable<typeof x> => x !== undefined);
          if (foreignOwner === undefined) {
            untestable.push(`${label}: no object of another participant`);
            continue;
          }
          for (const sub of substitutes) {
            const ids = (kind: RefKind) => own(kind) ?? `missing_${kind}`;
            const url = path.replace(/\{(\w+)\}/g, (_m, name: string) => {
              const p = params.find((x) => x.in === 'path' && x.name === name);
              const kind = p?.schema?.['x-ref'] as RefKind | undefined;
              return encodeURIComponent(target.part === 'path' && target.path[0] === name ? sub.id : kind !== undefined ? ids(kind) : 'x');
            });
            const query = new URLSearchParams();
            for (const p of params.filter((x) => x.in === 'query')) {
              const isTarget = target.part === 'query' && target.path[0] === p.name;
              if (isTarget) query.set(p.name, sub.id);
              else if (p.required === true) query.set(p.name, String(valueFor(p.schema, ids, undefined)));
            }
            let body: unknown;
            if (bodySchema !== undefined) {
              body = valueFor(bodySchema, ids, target.part === 'body' ? target.path : undefined);
              if (target.part === 'body') setAt(body as Json, target.path, sub.id);
            }
            // The request must fail on the substituted id, not on another of its ids: the others resolve for the caller.
            const refs: NamedRef[] = [];
            for (const p of params.filter((x) => x.in === 'path' && x.schema?.['x-ref'] !== undefined && x.schema['x-ref'] !== OPAQUE)) {
              if (!(target.part === 'path' && target.path[0] === p.name)) refs.push({ kind: p.schema['x-ref'], id: ids(p.schema['x-ref']) });
            }
            if (body !== undefined && bodySchema !== undefined) {
              const all: NamedRef[] = [];
              collectRefs(deepDeref(bodySchema), body, all);
              refs.push(...all.filter((r) => r.id !== sub.id));
            }
            const scope = { operator: false, participantId, customerId: actsForCustomer ? actingCustomer : undefined };
            const baseRefused = await t.hub.refs.check(t.hub.db, scope, refs);
            if (baseRefused !== undefined || refs.some((r) => r.id.startsWith('missing_'))) {
              untestable.push(`${label}: the caller has no own object for another of its ids (${refs.filter((r) => r.id.startsWith('missing_')).map((r) => r.kind).join(', ') || baseRefused?.code})`);
              continue;
            }
            const before = await writes();
            const headers = { ...key(), 'content-type': 'application/json' };
            const full = `${url}${query.size > 0 ? `?${query}` : ''}`;
            const res = await t.api(caller).raw({ method: method.toUpperCase() as 'GET' | 'POST' | 'PATCH' | 'DELETE', url: full, headers, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
            const after = await writes();
            tried.push(`${label} ← ${sub.participant === participantId ? 'another customer' : 'another participant'}`);
            const code = (res.body as Json)?.error?.code;
            if (res.status !== 404 || typeof code !== 'string' || !code.endsWith('not_found')) problems.push(`${label} with ${sub.id}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
            else if (after !== before) problems.push(`${label} with ${sub.id}: 404 but wrote ${after - before} statement(s)`);
          }
        }
      }
    }
    console.log(`ownership sweep (${engine}): ${tried.length} substitutions answered 404 and wrote nothing; ${untestable.length} not exercisable`);
    expect(problems).toEqual([]);
    // Every declared id of every operation was exercised (a new route with an id the sweep cannot set up fails here).
    expect(untestable).toEqual([]);
    expect(tried.length).toBeGreaterThan(80);
  }, 300_000);

  it("a customer session reaches only its customer app's operations, and only its customer's objects", async () => {
    const session = await ok(t.api('wallet-a').post('/v1/customer-sessions', { customerId: cus('li-at-wallet-a') }), 201);
    const auth = { authorization: `Bearer ${session.accessToken}` };
    const asSession = (method: string, url: string, body: unknown) =>
      t.api('anonymous').raw({ method: method.toUpperCase() as 'GET' | 'POST' | 'PATCH' | 'DELETE', url, headers: { ...auth, ...key(), 'content-type': 'application/json' }, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
    const inv = await inventory(me('wallet-a'));
    const mine = (kind: RefKind) => (inv.byKind.get(kind) ?? []).find((r) => r.participant === me('wallet-a') && (r.customer === null || r.customer === cus('li-at-wallet-a')))?.id ?? `missing_${kind}`;
    const problems: string[] = [];
    let forbidden = 0;
    let refused = 0;
    for (const [path, ops] of Object.entries<Json>(doc.paths)) {
      for (const [method, op] of Object.entries<Json>(ops)) {
        const security = (op.security ?? []).flatMap((x: Json) => Object.keys(x));
        if (!security.includes('participant') || callerOf(path) !== 'wallet-a') continue;
        const params: Json[] = op.parameters ?? [];
        const bodySchema: Json | undefined = op.requestBody?.content?.['application/json']?.schema;
        const url = path.replace(/\{(\w+)\}/g, (_m, name: string) => {
          const kind = params.find((x) => x.in === 'path' && x.name === name)?.schema?.['x-ref'] as RefKind | undefined;
          return encodeURIComponent(kind !== undefined ? mine(kind) : 'x');
        });
        const before = await writes();
        if (op['x-customer-session'] !== true) {
          const res = await asSession(method, url, bodySchema === undefined ? undefined : valueFor(bodySchema, mine, undefined));
          forbidden++;
          if (res.status !== 403 || (res.body as Json).error?.code !== 'forbidden') problems.push(`${method.toUpperCase()} ${path}: a customer session got ${res.status}`);
        } else {
          // Each id of a customer's object, replaced by another customer's object at the same wallet.
          const fields: Field[] = [
            ...params.filter((p) => p.in === 'path' && typeof p.schema?.['x-ref'] === 'string' && p.schema['x-ref'] !== OPAQUE).map((p) => ({ part: 'path' as const, path: [p.name], kind: p.schema['x-ref'] as RefKind })),
            ...(bodySchema === undefined ? [] : bodyFields(bodySchema)),
          ];
          for (const f of fields) {
            const other = (inv.byKind.get(f.kind) ?? []).find((r) => r.participant === me('wallet-a') && r.customer !== null && r.customer !== cus('li-at-wallet-a') && !(inv.shared.get(f.kind)?.has(r.id) ?? false));
            if (other === undefined) continue;
            const target = f.part === 'path' ? url.replace(encodeURIComponent(mine(f.kind)), encodeURIComponent(other.id)) : url;
            const body: unknown = bodySchema === undefined ? undefined : valueFor(bodySchema, mine, f.part === 'body' ? f.path : undefined);
            if (f.part === 'body' && body !== undefined) setAt(body as Json, f.path, other.id);
            const res = await asSession(method, target, body);
            refused++;
            if (res.status !== 404) problems.push(`${method.toUpperCase()} ${path} ${f.part}:${f.path.join('.')} (${f.kind}) as a customer session with another customer's ${other.id}: ${res.status}`);
          }
        }
        if ((await writes()) !== before) problems.push(`${method.toUpperCase()} ${path}: a refused customer-session request wrote`);
      }
    }
    console.log(`customer session sweep (${engine}): ${forbidden} back-end operations answered 403, ${refused} other-customer ids answered 404`);
    expect(problems).toEqual([]);
    expect(forbidden).toBeGreaterThan(10);
    expect(refused).toBeGreaterThan(20);
  }, 300_000);

  /** The document's schema with every $ref replaced (collectRefs walks plain schemas). */
  function deepDeref(schema: Json): Json {
    const s = deref(schema);
    if (s === null || typeof s !== 'object') return s;
    if (Array.isArray(s)) return s.map(deepDeref);
    return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, typeof v === 'object' && v !== null ? deepDeref(v) : v]));
  }
});
