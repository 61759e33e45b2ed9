import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/platform/clock.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/**
 * kill -9 of a hub process between a window's close and its settlement posting, and in the middle of the posting (its
 * ledger work done, its COMMIT not): the close survives as it committed, the cut posting left nothing, and recording
 * the settlement bank's confirmation afterwards (on another hub process) posts each instruction exactly once;
 * recording it again changes nothing. PostgreSQL only (two processes on one database).
 */
const engines = await availableEngines();

describe.skipIf(!engines.includes('postgres'))('kill -9 between the close and the settlement posting, on PostgreSQL', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub('postgres', { clock: systemClock, config: { webhooks: { enabled: false, pollMs: 500 } } });
  }, 120_000);
  afterAll(async () => t?.close());

  const key = () => ({ 'idempotency-key': randomBytes(8).toString('hex') });
  const op = () => t.api('operator');
  const newWallet = async (currency: string) => {
    const created = await op().post('/v1/operator/participants', { kind: 'wallet', name: `Crash ${randomBytes(3).toString('hex')}`, country: 'SG', currencies: [currency] });
    const token = await t.api('anonymous').post('/oauth/token', { grant_type: 'client_credentials', client_id: created.body.credential.clientId, client_secret: created.body.credential.clientSecret });
    const auth = { authorization: `Bearer ${token.body.access_token}` };
    const id = created.body.participant.id as string;
    expect((await op().post(`/v1/operator/participants/${id}/liquidity`, { amount: { amount: '1000.00', currency } }, key())).status).toBe(201);
    return { id, post: (url: string, body: unknown, headers: Record<string, string> = {}) => t.api('anonymous').post(url, body, { ...auth, ...headers }) };
  };
  type Wallet = Awaited<ReturnType<typeof newWallet>>;
  const customer = async (w: Wallet, currency: string, deposit: string) => {
    const c = await w.post('/v1/customers', { externalId: `crash-${randomBytes(4).toString('hex')}`, name: 'Crash Tester', kycLevel: 3 });
    const a = await w.post('/v1/accounts', { customerId: c.body.id, currency });
    const handle = `crash_${randomBytes(4).toString('hex')}`;
    expect((await w.post('/v1/aliases', { customerId: c.body.id, type: 'handle', value: handle, accountId: a.body.id })).status).toBe(201);
    if (deposit !== '0') expect((await w.post(`/v1/accounts/${a.body.id}/deposits`, { amount: { amount: deposit, currency } }, key())).status).toBe(201);
    return { w, customerId: c.body.id as string, handle };
  };
  const pay = async (from: Awaited<ReturnType<typeof customer>>, to: Awaited<ReturnType<typeof customer>>, amount: string, currency: string) => {
    const q = await from.w.post('/v1/transfers/quotes', { customerId: from.customerId, payee: { type: 'handle', value: to.handle }, sendAmount: { amount, currency } }, key());
    expect((await from.w.post('/v1/transfers/payments', { quoteId: q.body.id }, key())).status).toBe(201);
  };
  const mirrors = async (ids: readonly string[], currency: string) =>
    Object.fromEntries(
      (await t.hub.db.query<{ id: string; l: bigint }>('select id, debits_posted - credits_posted as l from ledger_accounts where id = any($1::text[])', [ids.map((p) => `sbk_${p}_${currency}`)])).map((r) => [r.id, r.l]),
    );

  /** Runs the worker to `stage`, kills it with SIGKILL when it prints that line, answers the window it closed. */
  const killAt = async (currency: string, stage: 'closed' | 'posting') => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/faults/settlement-worker.ts', t.database.url!, t.dataDir, currency, stage], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    const line = stage === 'closed' ? 'closed ' : 'posted ';
    const windowId = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = new RegExp(`(?:^|\\n)${line}(\\S+)\\n`).exec(out);
        if (m?.[1] !== undefined) resolve(m[1]);
      });
      child.on('exit', () => reject(new Error(`worker exited before "${line}": ${err}`)));
    });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    return windowId;
  };

  for (const [stage, currency] of [['closed', 'EUR'], ['posting', 'USD']] as const) {
    it(`killed ${stage === 'closed' ? 'right after the close' : 'in the middle of the posting'}: the settlement posts once afterwards`, async () => {
      const w1 = await newWallet(currency);
      const w2 = await newWallet(currency);
      const a = await customer(w1, currency, '300.00');
      const b = await customer(w2, currency, '100.00');
      await pay(a, b, '70.00', currency);
      await pay(b, a, '20.00', currency);
      const before = await mirrors([w1.id, w2.id], currency);

      const windowId = await killAt(currency, stage);
      // The close committed: the window is closed with its net positions and instructions; a new one is open.
      const report = await op().get(`/v1/operator/settlement/windows/${windowId}`);
      expect(report.body.window.status).toBe('closed');
      const nets = Object.fromEntries(report.body.netPositions.map((n: { participantId: string; netPosition: { amount: string } }) => [n.participantId, n.netPosition.amount]));
      expect({ w1: nets[w1.id], w2: nets[w2.id] }).toEqual({ w1: '-50.00', w2: '50.00' });
      const windows = await op().get(`/v1/operator/settlement/windows?currency=${currency}`);
      expect(windows.body.items.filter((w: { status: string }) => w.status === 'open')).toHaveLength(1);
      // The cut posting left nothing: no instruction transfer, liquidity where it was.
      const ids = report.body.instructions.map((i: { id: string }) => i.id);
      expect(ids.length).toBeGreaterThan(0);
      expect((await t.hub.db.query('select id from ledger_transfers where id = any($1::text[])', [ids])).length).toBe(0);
      expect(await mirrors([w1.id, w2.id], currency)).toEqual(before);

      // The operator records the confirmation on the hub still running: each instruction posts once …
      const settled = await op().post(`/v1/operator/settlement/windows/${windowId}/settlement`, { reference: 'SBK-AFTER' }, key());
      expect(settled.status).toBe(200);
      expect(settled.body.window).toMatchObject({ status: 'settled', settlementReference: 'SBK-AFTER' });
      const after = await mirrors([w1.id, w2.id], currency);
      expect(after[`sbk_${w1.id}_${currency}`]).toBe((before[`sbk_${w1.id}_${currency}`] ?? 0n) - 5000n);
      expect(after[`sbk_${w2.id}_${currency}`]).toBe((before[`sbk_${w2.id}_${currency}`] ?? 0n) + 5000n);
      // … and recording it again (a retry, another key) changes nothing.
      const again = await op().post(`/v1/operator/settlement/windows/${windowId}/settlement`, { reference: 'SBK-AGAIN' }, key());
      expect(again.body.window.settlementReference).toBe('SBK-AFTER');
      expect(await mirrors([w1.id, w2.id], currency)).toEqual(after);
      expect((await t.hub.db.query('select id from ledger_transfers where id = any($1::text[])', [ids])).length).toBe(ids.length);
      expect(await t.hub.ledger.checkInvariants()).toEqual([]);
    }, 120_000);
  }
});
