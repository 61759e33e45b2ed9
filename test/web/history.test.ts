import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { story, type Call } from '../../src/demo/card-story.ts';
import { demoParticipantId } from '../../src/demo/seed.ts';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

describe.each(engines)('unified history and operator transactions on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  const cus = (k: string) => t.demo.customers.get(k) ?? '';
  const key = () => ({ 'idempotency-key': randomUUID() });
  const call: Call = async (as, method, url, body, headers) => {
    const api = t.api(as);
    return method === 'GET' ? api.get(url, headers) : method === 'PATCH' ? api.patch(url, body, headers) : api.post(url, body, headers);
  };
  const history = (as: string, customer: string, extra = '') => t.api(as).get(`/v1/history?customerId=${cus(customer)}${extra}`);
  let paymentFromA = '';

  beforeAll(async () => {
    clock = createFakeClock(Date.UTC(2026, 0, 15, 8, 0, 0));
    t = await startTestHub(engine, { clock, config: { webhooks: { enabled: false, pollMs: 1000 }, accessTokenTtlS: 86_400 } });
    // 李伟 at wallet A pays 张敏 (before any link exists).
    clock.advance(60_000);
    const q = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: cus('li-at-wallet-a'), payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '12.34', currency: 'CNY' } });
    expect(q.status).toBe(201);
    const pay = await t.api('wallet-a').post('/v1/transfers/payments', { quoteId: q.body.id }, key());
    expect(pay.status).toBe(201);
    paymentFromA = pay.body.id;
    clock.advance(60_000);
  }, 120_000);
  afterAll(async () => t?.close());

  it('an unlinked customer sees only their own entries', async () => {
    const b = await history('wallet-b', 'li-at-wallet-b');
    expect(b.status).toBe(200);
    expect(b.body.linked).toEqual([expect.objectContaining({ participantId: demoParticipantId('wallet-b'), via: 'self' })]);
    expect(b.body.items.map((i: any) => i.id)).not.toContain(paymentFromA);
    for (const i of b.body.items) expect(i).toMatchObject({ participantId: demoParticipantId('wallet-b'), own: true });
    // Same name, same phone at wallet A: never merged without verification.
    const a = await history('wallet-a', 'li-at-wallet-a');
    expect(a.body.items.find((i: any) => i.id === paymentFromA)).toMatchObject({ kind: 'transfer', direction: 'out', own: true, participantId: demoParticipantId('wallet-a') });
    for (const i of a.body.items) expect(i.participantId).toBe(demoParticipantId('wallet-a'));
  });

  it("a wallet asking for another wallet's customer gets 404", async () => {
    const res = await t.api('wallet-b').get(`/v1/history?customerId=${cus('li-at-wallet-a')}`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('customer_not_found');
    expect((await t.api('wallet-b').get(`/v1/history/spending?customerId=${cus('li-at-wallet-a')}&by=category`)).status).toBe(404);
    expect((await t.api('wallet-b').get(`/v1/history?customerId=${cus('li-at-wallet-b')}&extra=1`)).status).toBe(400);
  });

  it("once 李伟 links his records with consent on both sides (not by a card step-up), wallet B sees the payment made from wallet A, named as such", async () => {
    const s = story(t.hub, call, t.demo);
    const card = await s.issue();
    // Passing the card's step-up in two wallets proves the card, not the person: the histories stay apart.
    await s.provision('wallet-a', { type: 'typed', cardNumber: card.cardNumber, expiry: card.expiry, cvv: card.cvv });
    await s.provision('wallet-b', { type: 'typed', cardNumber: card.cardNumber, expiry: card.expiry, cvv: card.cvv });
    expect((await history('wallet-b', 'li-at-wallet-b')).body.linked).toHaveLength(1);
    const toWalletA = await s.linkCustomer('wallet-b', 'li-at-wallet-b', 'wallet-a');
    await s.linkCustomer('wallet-b', 'li-at-wallet-b', 'bank-a');
    const b = await history('wallet-b', 'li-at-wallet-b');
    expect(b.status).toBe(200);
    expect(b.body.linked.map((r: any) => `${r.participantId}:${r.via}`)).toEqual(
      expect.arrayContaining([`${demoParticipantId('wallet-b')}:self`, `${demoParticipantId('wallet-a')}:customer_link`, `${demoParticipantId('bank-a')}:customer_link`]),
    );
    expect(JSON.stringify(b.body)).not.toContain(cus('li-at-wallet-a'));
    const fromA = b.body.items.find((i: any) => i.id === paymentFromA);
    expect(fromA).toMatchObject({ kind: 'transfer', direction: 'out', own: false, participantId: demoParticipantId('wallet-a'), amount: { amount: '12.34', currency: 'CNY' } });
    expect(fromA.participantName).toContain('Lantern Pay');
    // Money paid into his accounts at the other wallet and at the bank shows too.
    expect(b.body.items).toContainEqual(expect.objectContaining({ kind: 'account', direction: 'in', own: false, participantId: demoParticipantId('bank-a') }));
    // Newest first.
    const ats = b.body.items.map((i: any) => i.at);
    expect([...ats].sort().reverse()).toEqual(ats);
    // 张敏 (wallet B, never linked to 李伟) still sees only her own records.
    const z = await history('wallet-b', 'zhang-at-wallet-b');
    expect(z.body.linked).toHaveLength(1);
    expect(z.body.items.find((i: any) => i.id === paymentFromA)).toMatchObject({ direction: 'in', own: true });
    for (const i of z.body.items) expect(i.participantId).toBe(demoParticipantId('wallet-b'));
    // The spending summary covers the linked records too.
    const spend = await t.api('wallet-b').get(`/v1/history/spending?customerId=${cus('li-at-wallet-b')}&by=category&currency=CNY`);
    expect(spend.status).toBe(200);
    expect(spend.body.buckets).toContainEqual({ key: 'transfer', amount: expect.objectContaining({ currency: 'CNY' }), count: 1 });
    const byMonth = await t.api('wallet-b').get(`/v1/history/spending?customerId=${cus('li-at-wallet-b')}&by=month`);
    expect(byMonth.body.buckets.map((x: any) => x.key)).toContain('2026-01');
    expect((await t.api('wallet-b').get(`/v1/history/spending?customerId=${cus('li-at-wallet-b')}&by=week`)).status).toBe(400);
    // Revoked at either side, the merge ends at once.
    expect((await t.api('wallet-a').post(`/v1/customer-links/${toWalletA}/revoke`)).status).toBe(200);
    const after = await history('wallet-b', 'li-at-wallet-b');
    expect(after.body.items.find((i: any) => i.id === paymentFromA)).toBeUndefined();
  });

  it('the operator lists transfers newest first, searchable, paged; a participant token gets 401', async () => {
    const all = await t.api('operator').get('/v1/operator/transactions?limit=200');
    expect(all.status).toBe(200);
    expect(all.body.items.length).toBeGreaterThan(0);
    // A payment between two participants is three linked transfers: its position leg (payer participant → payee
    // participant, src/settlement) and its customers' legs through the two positions.
    const p2p = all.body.items.find((i: any) => i.reference?.id === paymentFromA && i.purpose === 'position');
    expect(p2p).toMatchObject({ kind: 'p2p', purpose: 'position', amount: { amount: '12.34', currency: 'CNY' }, reference: { type: 'p2p_payment' } });
    expect(p2p.debit.participantName).toContain('Lantern Pay');
    expect(p2p.credit.participantName).toContain('Jade Wallet');
    const created = all.body.items.map((i: any) => i.createdAt);
    expect([...created].sort().reverse()).toEqual(created);

    const found = await t.api('operator').get(`/v1/operator/transactions?q=${paymentFromA}`);
    expect(found.body.items.length).toBeGreaterThan(0);
    expect(found.body.items.length).toBeLessThan(all.body.items.length);
    for (const i of found.body.items) expect(i.reference?.id).toBe(paymentFromA);
    const byName = await t.api('operator').get(`/v1/operator/transactions?q=${encodeURIComponent('lantern')}&limit=200`);
    expect(byName.body.items.length).toBeGreaterThan(0);
    for (const i of byName.body.items) expect(`${i.debit.participantName} ${i.credit.participantName}`).toMatch(/Lantern/);
    const byPurpose = await t.api('operator').get('/v1/operator/transactions?q=p2p');
    for (const i of byPurpose.body.items) expect(`${i.id} ${i.purpose}`).toMatch(/p2p/);
    // By amount: 12.34 finds the payment's legs, and only transfers of 12.34 (in a currency with cents).
    const byAmount = await t.api('operator').get('/v1/operator/transactions?q=12.34&limit=200');
    expect(byAmount.body.items.some((i: any) => i.reference?.id === paymentFromA)).toBe(true);
    for (const i of byAmount.body.items) expect(i.amount.amount).toBe('12.34');
    // By alias: zhangmin's handle finds the transfers into or out of the account it points to.
    const byAlias = await t.api('operator').get('/v1/operator/transactions?q=zhangmin&limit=200');
    expect(byAlias.body.items.some((i: any) => i.reference?.id === paymentFromA)).toBe(true);
    const [zhangAccount] = await t.hub.db.query<{ account_id: string }>(`select account_id from aliases where type = 'handle' and value = 'zhangmin'`);
    for (const i of byAlias.body.items) expect([i.debit.accountId, i.credit.accountId]).toContain(zhangAccount?.account_id);

    // Pages: bounded size, a cursor to the next page, no overlap.
    const p1 = await t.api('operator').get('/v1/operator/transactions?limit=2');
    expect(p1.body.items).toHaveLength(2);
    expect(p1.body.nextCursor).not.toBeNull();
    const p2 = await t.api('operator').get(`/v1/operator/transactions?limit=2&cursor=${p1.body.nextCursor}`);
    expect(p2.body.items.map((i: any) => i.id)).toEqual(all.body.items.slice(2, 4).map((i: any) => i.id));
    expect((await t.api('operator').get('/v1/operator/transactions?limit=5000')).status).toBe(400);
    // Any cursor but a nextCursor it gave: undecodable, or naming a transfer that is not there or not at that time.
    const [at, id] = JSON.parse(Buffer.from(String(p1.body.nextCursor), 'base64url').toString('utf8')) as [string, string];
    const forged = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const cursor of ['bm9wZQ', forged([at, 'trf_unknown']), forged([new Date(Date.parse(at) + 1).toISOString(), id])]) {
      const refused = await t.api('operator').get(`/v1/operator/transactions?cursor=${cursor}`);
      expect(refused.status).toBe(400);
      expect(refused.body.error.code).toBe('invalid_page');
    }

    expect((await t.api('wallet-a').get('/v1/operator/transactions')).status).toBe(401);
    expect((await t.api('anonymous').get('/v1/operator/transactions')).status).toBe(401);
  });

  it('documents both endpoints in the OpenAPI document', async () => {
    const doc = (await t.api('anonymous').get('/openapi.json')).body;
    expect(doc.paths['/v1/history'].get.description).toMatch(/verification/);
    expect(doc.paths['/v1/history/spending']).toBeDefined();
    expect(doc.paths['/v1/operator/transactions'].get.security).toEqual([{ operator: [] }]);
  });
});
