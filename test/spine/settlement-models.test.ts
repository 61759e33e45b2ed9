import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

/**
 * Settlement models per currency and scheduled closes, on both engines: in an immediate-gross currency each payment
 * between participants moves their liquidity at once (nothing is left unsettled; its window closes settled, with no
 * instructions), next to a deferred-net currency in the same hub; a schedule closes a window every N minutes or at a
 * daily cut-off, driven by the fake clock through the job the hub runs in the background.
 */
describe.each(engines)('settlement models and schedules on %s', (engine) => {
  let t: TestHub;
  let clock: FakeClock;
  beforeAll(async () => {
    clock = createFakeClock(Date.parse('2026-03-02T08:00:00Z'));
    t = await startTestHub(engine, { clock });
  });
  afterAll(async () => t?.close());

  const key = () => ({ 'idempotency-key': randomBytes(8).toString('hex') });
  const op = () => t.api('operator');
  const newWallet = async (currency: string, liquidity: string, also: string[] = []) => {
    const created = await op().post('/v1/operator/participants', { kind: 'wallet', name: `Model ${randomBytes(3).toString('hex')}`, country: 'SG', currencies: [currency, ...also] });
    expect(created.status).toBe(201);
    const token = await t.api('anonymous').post('/oauth/token', { grant_type: 'client_credentials', client_id: created.body.credential.clientId, client_secret: created.body.credential.clientSecret });
    const auth = { authorization: `Bearer ${token.body.access_token}` };
    const as = t.api('anonymous');
    const id = created.body.participant.id as string;
    expect((await op().post(`/v1/operator/participants/${id}/liquidity`, { amount: { amount: liquidity, currency } }, key())).status).toBe(201);
    return { id, get: (url: string) => as.get(url, auth), getText: async (url: string) => String((await as.raw({ method: 'GET', url, headers: auth })).body), post: (url: string, body: unknown, headers: Record<string, string> = {}) => as.post(url, body, { ...auth, ...headers }) };
  };
  type Wallet = Awaited<ReturnType<typeof newWallet>>;
  let handles = 0;
  const openCustomer = async (w: Wallet, currency: string, deposit: string) => {
    const c = await w.post('/v1/customers', { externalId: `mdl-${randomBytes(4).toString('hex')}`, name: 'Model Tester', kycLevel: 3 });
    const a = await w.post('/v1/accounts', { customerId: c.body.id, currency });
    const handle = `mdl_${randomBytes(3).toString('hex')}_${(handles += 1)}`;
    expect((await w.post('/v1/aliases', { customerId: c.body.id, type: 'handle', value: handle, accountId: a.body.id })).status).toBe(201);
    if (deposit !== '0') expect((await w.post(`/v1/accounts/${a.body.id}/deposits`, { amount: { amount: deposit, currency } }, key())).status).toBe(201);
    return { w, customerId: c.body.id as string, accountId: a.body.id as string, handle };
  };
  type Customer = Awaited<ReturnType<typeof openCustomer>>;
  const pay = async (from: Customer, to: Customer, amount: string, currency: string) => {
    const q = await from.w.post('/v1/transfers/quotes', { customerId: from.customerId, payee: { type: 'handle', value: to.handle }, sendAmount: { amount, currency } }, key());
    expect(q.status).toBe(201);
    return from.w.post('/v1/transfers/payments', { quoteId: q.body.id }, key());
  };
  const position = async (w: Wallet, currency: string) => {
    const r = await w.get('/v1/settlement/positions');
    const p = r.body.items.find((x: { currency: string }) => x.currency === currency);
    return { liquidity: String(p?.liquidity.amount), unsettled: String(p?.unsettledPosition.amount) };
  };

  it('immediate gross: each payment moves liquidity at once and leaves nothing unsettled; deferred net beside it is unchanged', async () => {
    // EUR settles gross, USD (same participants) deferred net.
    const set = await op().post('/v1/operator/settlement/currencies/EUR/model', { model: 'immediate_gross' }, key());
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ currency: 'EUR', model: 'immediate_gross' });
    expect((await op().post('/v1/operator/settlement/currencies/EUR/model', { model: 'nightly' }, key())).status).toBe(400);
    const listed = await op().get('/v1/operator/settlement/currencies');
    expect(listed.body.items).toContainEqual({ currency: 'EUR', model: 'immediate_gross', schedule: null });

    const w1 = await newWallet('EUR', '500.00', ['USD']);
    const w2 = await newWallet('EUR', '500.00', ['USD']);
    for (const w of [w1, w2]) expect((await op().post(`/v1/operator/participants/${w.id}/liquidity`, { amount: { amount: '500.00', currency: 'USD' } }, key())).status).toBe(201);
    const a = await openCustomer(w1, 'EUR', '100.00');
    const b = await openCustomer(w2, 'EUR', '0');
    const au = await openCustomer(w1, 'USD', '100.00');
    const bu = await openCustomer(w2, 'USD', '0');

    expect((await pay(a, b, '40.00', 'EUR')).status).toBe(201);
    expect((await pay(au, bu, '25.00', 'USD')).status).toBe(201);
    // Gross: the liquidity moved with the payment, nothing is owed; net: liquidity waits for the window's settlement.
    expect(await position(w1, 'EUR')).toEqual({ liquidity: '460.00', unsettled: '0.00' });
    expect(await position(w2, 'EUR')).toEqual({ liquidity: '540.00', unsettled: '0.00' });
    expect(await position(w1, 'USD')).toEqual({ liquidity: '500.00', unsettled: '-25.00' });
    const [gross] = await t.hub.db.query<{ n: bigint }>(`select count(*) as n from ledger_transfers where purpose = 'settlement_gross' and currency = 'EUR' and amount_minor = 4000`);
    expect(gross?.n).toBe(1n);

    // Closing the gross window reports the net positions and settles at once, with no instructions.
    const closed = await op().post('/v1/operator/settlement/windows/close', { currency: 'EUR' }, key());
    expect(closed.status).toBe(200);
    expect(closed.body.window).toMatchObject({ status: 'settled', settlementReference: 'immediate_gross' });
    expect(closed.body.instructions).toEqual([]);
    const mine = closed.body.netPositions.filter((n: { participantId: string }) => n.participantId === w1.id || n.participantId === w2.id);
    expect(mine.map((n: { netPosition: { amount: string } }) => n.netPosition.amount).sort()).toEqual(['-40.00', '40.00']);
    // Recording a settlement for it changes nothing (it is settled).
    const again = await op().post(`/v1/operator/settlement/windows/${closed.body.window.id}/settlement`, { reference: 'X' }, key());
    expect(again.body.window.settlementReference).toBe('immediate_gross');
    expect(await position(w1, 'EUR')).toEqual({ liquidity: '460.00', unsettled: '0.00' });

    // USD stays deferred net: its close gives instructions, the settlement moves liquidity.
    const usd = await op().post('/v1/operator/settlement/windows/close', { currency: 'USD' }, key());
    expect(usd.body.window.status).toBe('closed');
    expect(usd.body.instructions.length).toBeGreaterThan(0);
    // Back to deferred net: the next EUR payment waits for its window's settlement.
    expect((await op().post('/v1/operator/settlement/currencies/EUR/model', { model: 'deferred_net' }, key())).status).toBe(200);
    expect((await pay(a, b, '10.00', 'EUR')).status).toBe(201);
    expect(await position(w1, 'EUR')).toEqual({ liquidity: '460.00', unsettled: '-10.00' });
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });

  it('a schedule closes the window every N minutes, or daily at a cut-off (UTC), through the background job', async () => {
    const w1 = await newWallet('SGD', '500.00');
    const w2 = await newWallet('SGD', '500.00');
    const a = await openCustomer(w1, 'SGD', '100.00');
    const b = await openCustomer(w2, 'SGD', '0');
    expect((await op().post('/v1/operator/settlement/currencies/SGD/schedule', { everyMinutes: 30, cutoffUtc: '17:00' }, key())).body.error.code).toBe('settlement_invalid');
    const set = await op().post('/v1/operator/settlement/currencies/SGD/schedule', { everyMinutes: 30 }, key());
    expect(set.status).toBe(200);
    expect(set.body.schedule).toEqual({ everyMinutes: 30, cutoffUtc: null, nextCloseAt: new Date(clock.nowMs() + 30 * 60_000).toISOString() });
    const openId = async () => (await op().get('/v1/operator/settlement/windows?currency=SGD')).body.items.find((w: { status: string }) => w.status === 'open')?.id as string;

    expect((await pay(a, b, '5.00', 'SGD')).status).toBe(201);
    const first = await openId();
    clock.advance(29 * 60_000);
    expect(await t.hub.settlement.runSchedules()).toEqual([]);
    clock.advance(60_000);
    expect(await t.hub.settlement.runSchedules()).toEqual([first]);
    // Run again at the same moment (another hub process, a retry): nothing more closes.
    expect(await t.hub.settlement.runSchedules()).toEqual([]);
    const report = await op().get(`/v1/operator/settlement/windows/${first}`);
    expect(report.body.window.status).toBe('closed');
    expect(report.body.netPositions.find((n: { participantId: string }) => n.participantId === w1.id)?.netPosition.amount).toBe('-5.00');
    // The hub was down for 2 h: one close when it comes back, and the next one 30 minutes after the last due time past now.
    clock.advance(2 * 3600_000);
    expect((await t.hub.settlement.runSchedules()).length).toBe(1);
    const after = (await op().get('/v1/operator/settlement/currencies')).body.items.find((c: { currency: string }) => c.currency === 'SGD');
    expect(Date.parse(after.schedule.nextCloseAt)).toBeGreaterThan(clock.nowMs());
    expect(Date.parse(after.schedule.nextCloseAt) - clock.nowMs()).toBeLessThanOrEqual(30 * 60_000);

    // A daily cut-off at 17:00 UTC: nothing closes at 16:59, the window closes at 17:00, the next is tomorrow's.
    const now = new Date(clock.nowMs());
    const cutoff = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), 17, 0);
    const daily = await op().post('/v1/operator/settlement/currencies/SGD/schedule', { cutoffUtc: '17:00' }, key());
    const next = Date.parse(daily.body.schedule.nextCloseAt);
    expect(next === cutoff || next === cutoff + 86_400_000).toBe(true);
    clock.advance(next - clock.nowMs() - 60_000);
    expect(await t.hub.settlement.runSchedules()).toEqual([]);
    const before = await openId();
    clock.advance(60_000);
    expect(await t.hub.settlement.runSchedules()).toEqual([before]);
    const tomorrow = (await op().get('/v1/operator/settlement/currencies')).body.items.find((c: { currency: string }) => c.currency === 'SGD');
    expect(Date.parse(tomorrow.schedule.nextCloseAt)).toBe(next + 86_400_000);
    // Removed: nothing closes by itself any more.
    expect((await op().post('/v1/operator/settlement/currencies/SGD/schedule', {}, key())).body.schedule).toBeNull();
    clock.advance(3 * 86_400_000);
    expect(await t.hub.settlement.runSchedules()).toEqual([]);
  });
  it('reconciliation: a participant uploads its own view (CSV) and gets its differences from the hub; the operator sees the report', async () => {
    const w1 = await newWallet('HKD', '500.00');
    const w2 = await newWallet('HKD', '500.00');
    const a = await openCustomer(w1, 'HKD', '100.00');
    const b = await openCustomer(w2, 'HKD', '100.00');
    for (const [from, to, amount] of [[a, b, '10.00'], [a, b, '20.00'], [b, a, '5.00'], [a, b, '1.25']] as const) expect((await pay(from, to, amount, 'HKD')).status).toBe(201);
    const closed = await op().post('/v1/operator/settlement/windows/close', { currency: 'HKD' }, key());
    const windowId = closed.body.window.id as string;
    // The participant's books: the hub's CSV, with one leg missing, one amount different, one row the hub never saw.
    const hubCsv = await w1.getText(`/v1/settlement/windows/${windowId}/transfers.csv`);
    const lines = hubCsv.trim().split(/\r?\n/);
    expect(lines).toHaveLength(5);
    const [header, first, second, third, fourth] = lines as [string, string, string, string, string];
    const changed = second.replace(/,(\d+\.\d{2}),HKD,/, (_m, amt: string) => `,${(Number(amt) + 1).toFixed(2)},HKD,`);
    const upload = [header, first, changed, fourth, 'tr_not_at_hub,pay_x,received,someone,3.00,HKD,2026-03-02T08:00:00Z'].join('\r\n');
    const r = await w1.post(`/v1/settlement/windows/${windowId}/discrepancies`, { csv: upload }, key());
    expect({ status: r.status, error: r.body.error, upload }).toMatchObject({ status: 201 });
    expect(r.body).toMatchObject({ windowId, participantId: w1.id, matched: 2, hubCount: 4, participantCount: 4, hubNet: { amount: '-26.25', currency: 'HKD' } });
    expect(r.body.counts).toMatchObject({ missing_at_participant: 1, missing_at_hub: 1, amount: 1, direction: 0 });
    expect(r.body.items.find((i: { kind: string }) => i.kind === 'missing_at_participant').transferId).toBe(third.split(',')[0]);
    expect(r.body.items.find((i: { kind: string }) => i.kind === 'missing_at_hub')).toMatchObject({ transferId: 'tr_not_at_hub', line: 5, hub: null });
    // The hub's own CSV uploaded unchanged: no difference, the totals equal the net position.
    const same = await w1.post(`/v1/settlement/windows/${windowId}/discrepancies`, { csv: hubCsv }, key());
    expect(same.body).toMatchObject({ matched: 4, items: [], hubNet: { amount: '-26.25' }, participantNet: { amount: '-26.25' } });
    // A file the hub cannot read: a clear 422 naming the line, nothing kept.
    const bad = await w1.post(`/v1/settlement/windows/${windowId}/discrepancies`, { csv: `${header}\r\nt1,p1,sideways,x,1.00,HKD,now` }, key());
    expect(bad.status).toBe(422);
    expect(bad.body.error).toMatchObject({ code: 'settlement_csv_invalid', details: { line: 2, column: 'direction' } });
    expect((await w1.post(`/v1/settlement/windows/${windowId}/discrepancies`, { csv: 'a,b\r\n1,2' }, key())).body.error.code).toBe('settlement_csv_invalid');
    expect((await w1.post('/v1/settlement/windows/win_HKD_999/discrepancies', { csv: hubCsv }, key())).status).toBe(404);
    const listed = await op().get(`/v1/operator/settlement/discrepancies?windowId=${windowId}`);
    expect(listed.body.items.map((i: { id: string }) => i.id).sort()).toEqual([r.body.id, same.body.id].sort());
    expect(listed.body.items.find((i: { id: string }) => i.id === r.body.id)).toEqual(r.body);
  });
});
