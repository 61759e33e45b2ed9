import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { customerAccountId } from '../../src/accounts/index.ts';
import { cardInTwoWallets, tapBody, type CardInTwoWallets } from '../../src/demo/fixtures.ts';
import { demoCustomerId, demoParticipantId } from '../../src/demo/seed.ts';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { openSentCode } from '../../src/platform/sent-codes.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';
import { describeViolations, positionViolations, type PositionViolation } from '../support/positions-invariant.ts';
import { apiCallOf } from '../support/checks.ts';

/**
 * The positions invariant (see `test/support/positions-invariant.ts`): no payment between customers of two different
 * participants leaves their positions untouched. Checked over every kind of money movement the hub has: first the
 * demo stories (each on its own fresh embedded hub, as `hutong demo` runs them: PGlite; checked just before the hub
 * closes), then targeted calls for what they do not cover, on both engines.
 */

// Each demo story opens its own hub through the harness: check the invariant on it just before it closes.
const storyChecks = new Map<string, PositionViolation[]>();
let currentStory = '';
vi.mock('../../src/demo/harness.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/demo/harness.ts')>();
  return {
    ...original,
    openDemoHarness: async (io: Parameters<typeof original.openDemoHarness>[0]) => {
      const h = await original.openDemoHarness(io);
      const story = currentStory;
      const close = h.close.bind(h);
      h.close = async () => {
        storyChecks.set(story, await positionViolations(h.hub.db));
        await close();
      };
      return h;
    },
  };
});

describe('positions invariant over the demo stories', () => {
  it.each(['network', 'cards', 'pay', 'transfers', 'settlement', 'value'])('demo %s: every step checked, no crossing without a position move', async (scenario) => {
    currentStory = scenario;
    const { runDemo } = await import('../../src/demo/run.ts');
    const out: string[] = [];
    const code = await runDemo([scenario], { stdout: (s: string) => out.push(s), stderr: (s: string) => out.push(s) });
    expect(code, out.join('\n')).toBe(0);
    const vs = storyChecks.get(scenario);
    expect(vs, 'the story’s hub was checked before it closed').toBeDefined();
    expect(vs, describeViolations(vs ?? [])).toEqual([]);
  }, 180_000);
});

const engines = await availableEngines();
let keyNo = 0;
const key = () => ({ 'idempotency-key': `posinv-${Date.now()}-${++keyNo}` });
const me = demoParticipantId;

/** What the demo stories do not cover, each followed by the check; every case asserts its own position move too. */
describe.each(engines)('positions invariant over targeted payments on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  let card: CardInTwoWallets;
  const entriesOf = async (paymentId: string) =>
    t.hub.db.query<{ transfer_id: string; payer_participant_id: string; payee_participant_id: string; amount_minor: bigint }>(
      'select transfer_id, payer_participant_id, payee_participant_id, amount_minor from settlement_entries where payment_id = $1 order by transfer_id',
      [paymentId],
    );
  const clean = async () => {
    const vs = await positionViolations(t.hub.db);
    expect(vs, describeViolations(vs)).toEqual([]);
  };
  /** 李伟's bank-a card, paid by tap at merchant-a (another participant) through wallet A's token, captured. */
  const cardPayment = async (amount: string, amountMinor: bigint) => {
    const res = await t.api('merchant-a').post('/v1/merchants/mer_demo_merchant_a/payments/tap', tapBody(card.a, { amount, amountMinor, now: clock.now() }), key());
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    if (res.body.status !== 'captured') expect((await t.api('merchant-a').post(`/v1/payments/${res.body.id}/capture`, {}, key())).status).toBe(200);
    return String(res.body.id);
  };

  beforeAll(async () => {
    clock = createFakeClock(Date.now());
    t = await startTestHub(engine, { clock });
    const call = apiCallOf(t);
    card = await cardInTwoWallets(t.hub, call);
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  it('a captured card payment between the issuer and the merchant owner: the capture AND the merchant fee move positions', async () => {
    const id = await cardPayment('100.00', 100_00n);
    const [fee] = await t.hub.db.query<{ fee_minor: bigint }>('select fee_minor from pay_authorizations where id = $1', [id]);
    expect(fee?.fee_minor).toBeGreaterThan(0n);
    expect(await entriesOf(id)).toEqual([expect.objectContaining({ payer_participant_id: me('bank-a'), payee_participant_id: me('merchant-a'), amount_minor: 100_00n })]);
    // The fee goes from the merchant's account to the issuer's fees account: a payment back, merchant owner → issuer.
    expect(await entriesOf(`${id}_fee`)).toEqual([expect.objectContaining({ payer_participant_id: me('merchant-a'), payee_participant_id: me('bank-a'), amount_minor: fee?.fee_minor })]);
    // A refund is a payment the other way.
    const refund = await t.api('merchant-a').post(`/v1/payments/${id}/refunds`, { amount: '40.00' }, key());
    expect(refund.status, JSON.stringify(refund.body)).toBe(201);
    await clean();
  });

  it('card disputes: a chargeback and its representment move the positions both ways', async () => {
    const id = await cardPayment('88.00', 88_00n);
    const opened = await t.api('wallet-a').post('/v1/wallet/disputes', { customerId: card.a.customerId, cardPaymentId: id, reason: 'goods not received' }, key());
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    expect((await t.api('bank-a').post(`/v1/disputes/${opened.body.id}/chargeback`, { evidence: 'order never delivered' }, key())).status).toBe(200);
    await clean();
    expect((await t.api('merchant-a').post(`/v1/disputes/${opened.body.id}/represent`, { evidence: 'delivered and signed for' }, key())).status).toBe(200);
    await clean();
    // A second one the merchant accepts: the chargeback stands.
    const id2 = await cardPayment('12.00', 12_00n);
    const d2 = await t.api('wallet-a').post('/v1/wallet/disputes', { customerId: card.a.customerId, cardPaymentId: id2, reason: 'duplicate' }, key());
    expect((await t.api('bank-a').post(`/v1/disputes/${d2.body.id}/chargeback`, { evidence: 'duplicate' }, key())).status).toBe(200);
    expect((await t.api('merchant-a').post(`/v1/disputes/${d2.body.id}/accept`, {}, key())).status).toBe(200);
    await clean();
  });

  it('a hosted red packet claimed by a member at another participant moves the positions (escrow → sender participant → member participant)', async () => {
    const li = demoCustomerId('li-at-wallet-a');
    const p = await t.api('wallet-a').post('/v1/transfers/red-packets', { customerId: li, total: { amount: '20.00', currency: 'CNY' }, shares: 2, mode: 'equal', members: [{ type: 'handle', value: 'zhangmin' }] }, key());
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    const c = await t.api('wallet-b').post(`/v1/transfers/red-packets/${p.body.id}/claim`, { customerId: demoCustomerId('zhang-at-wallet-b') }, key());
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    const [claim] = await t.hub.db.query<{ payment_id: string; payer_participant_id: string; payee_participant_id: string; amount_minor: bigint }>(
      `select payment_id, payer_participant_id, payee_participant_id, amount_minor from settlement_entries where payment_id like $1`,
      [`${p.body.id}:claim:%`],
    );
    expect(claim).toMatchObject({ payer_participant_id: me('wallet-a'), payee_participant_id: me('wallet-b'), amount_minor: 10_00n });
    await clean();
  });

  it("a wallet customer's withdrawal to and top-up from a linked bank account move both positions", async () => {
    const wa = t.api('wallet-a');
    const li = demoCustomerId('li-at-wallet-a');
    const consent = await wa.post('/v1/account-links', { customerId: li, bankParticipantId: me('bank-a') }, key());
    expect(consent.status).toBe(201);
    const linked = await wa.post(`/v1/account-links/consents/${consent.body.id}/confirm`, { code: await openSentCode(t.hub, 'account_link.consent_requested', consent.body.id) });
    expect(linked.status).toBe(201);
    const link = (linked.body.items as { id: string; accountId: string }[]).find((l) => l.accountId.endsWith('_CNY'));
    if (link === undefined) throw new Error('no CNY link');
    const withdrawal = await wa.post(`/v1/customers/${li}/withdrawals`, { linkId: link.id, amount: { amount: '30.00', currency: 'CNY' } }, key());
    expect(withdrawal.status, JSON.stringify(withdrawal.body)).toBe(201);
    const topUp = await wa.post(`/v1/customers/${li}/top-ups`, { linkId: link.id, amount: { amount: '10.00', currency: 'CNY' } }, key());
    expect(topUp.status, JSON.stringify(topUp.body)).toBe(201);
    expect((await entriesOf(withdrawal.body.id)).map((e) => [e.payer_participant_id, e.payee_participant_id, e.amount_minor])).toEqual([[me('wallet-a'), me('bank-a'), 30_00n]]);
    expect((await entriesOf(topUp.body.id)).map((e) => [e.payer_participant_id, e.payee_participant_id, e.amount_minor])).toEqual([[me('bank-a'), me('wallet-a'), 10_00n]]);
    await clean();
  });

  it('the fee leg never asks the merchant owner to cover it: with none of its liquidity free it still captures, fee and all', async () => {
    const merchantA = me('merchant-a');
    const pos = await t.hub.liquidity.position(merchantA, 'CNY');
    const free = pos.balanceMinor - pos.reservedMinor;
    if (free > 0n) {
      const out = await t.hub.db.transaction((tx) => t.hub.liquidity.fundsOut(tx, { type: 'system' }, { participantId: merchantA, currency: 'CNY', amountMinor: free, transferId: 'posinv_out' }));
      expect(out.ok).toBe(true);
    }
    const id = await cardPayment('50.00', 50_00n);
    expect((await entriesOf(`${id}_fee`)).map((e) => [e.payer_participant_id, e.payee_participant_id])).toEqual([[merchantA, me('bank-a')]]);
    await clean();
  });

  it('the check itself: a transfer straight from one participant\'s customer to another\'s is reported, and nothing else', async () => {
    await clean();
    const from = customerAccountId(demoCustomerId('li-at-wallet-a'), 'CNY');
    const to = customerAccountId(demoCustomerId('zhang-at-wallet-b'), 'CNY');
    const seen = await t.hub.db
      .transaction(async (tx) => {
        const [r] = await t.hub.ledger.applyInTx(tx, [{ id: 'posinv_bypass', debitAccountId: from, creditAccountId: to, amountMinor: 1_00n, currency: 'CNY', purpose: 'transfer' }]);
        expect(r?.ok).toBe(true);
        const vs = await positionViolations(tx);
        // Never committed: the hub's books stay as they were.
        throw Object.assign(new Error('roll back'), { vs });
      })
      .catch((e: { vs?: PositionViolation[] }) => e.vs ?? []);
    expect(seen.map((v) => [v.kind, v.transferId, v.from, v.to, v.amountMinor])).toEqual([['unrecorded_crossing', 'posinv_bypass', me('wallet-a'), me('wallet-b'), 1_00n]]);
    await clean();
  });
});
