import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type ApiResponse, type TestHub } from '../support/hub.ts';

/**
 * Concurrent retries under one Idempotency-Key: all get the stored answer (never 409 `idempotency_in_progress` for a
 * key that is done, never a second effect), on the batched path (P2P confirms, platform/effect-batcher.ts) and the
 * one-transaction path (deposits, platform/idempotency.ts), on both engines.
 */
const engines = await availableEngines();
const REPLAYS = 50;

describe.each(engines)('concurrent replays of one key on %s', (engine) => {
  let t: TestHub;
  const cus = (k: string) => t.demo.customers.get(k)!;
  const account = (k: string) => `acc_${cus(k)}_CNY`;

  beforeAll(async () => {
    t = await startTestHub(engine);
  }, 120_000);
  afterAll(async () => t?.close());

  const quote = async () => {
    const q = await t.api('wallet-a').post('/v1/transfers/quotes', { customerId: cus('li-at-wallet-a'), payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '1.00', currency: 'CNY' } });
    expect(q.status).toBe(201);
    return q.body.id as string;
  };
  const expectAllStored = (first: ApiResponse, answers: readonly ApiResponse[]) => {
    const byStatus: Record<number, number> = {};
    for (const a of answers) byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
    expect(byStatus).toEqual({ [first.status]: REPLAYS });
    for (const a of answers) {
      expect(a.body).toEqual(first.body);
      expect(a.headers['idempotent-replayed']).toBe('true');
    }
  };

  it(`${REPLAYS} concurrent replays of a completed payment all get its stored answer`, async () => {
    const quoteId = await quote();
    const headers = { 'idempotency-key': `replay-pay-${engine}` };
    const first = await t.api('wallet-a').post('/v1/transfers/payments', { quoteId }, headers);
    expect(first.status).toBe(201);
    const answers = await Promise.all(Array.from({ length: REPLAYS }, () => t.api('wallet-a').post('/v1/transfers/payments', { quoteId }, headers)));
    expectAllStored(first, answers);
  });

  it(`${REPLAYS} concurrent first tries of one payment key pay once, and all get that payment`, async () => {
    const quoteId = await quote();
    const headers = { 'idempotency-key': `replay-race-${engine}` };
    const answers = await Promise.all(Array.from({ length: REPLAYS }, () => t.api('wallet-a').post('/v1/transfers/payments', { quoteId }, headers)));
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: REPLAYS }, () => 201));
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect(answers.filter((a) => a.headers['idempotent-replayed'] !== 'true')).toHaveLength(1);
    const [paid] = await t.hub.db.query<{ n: bigint }>('select count(*) as n from payments where quote_id = $1', [quoteId]);
    expect(paid?.n).toBe(1n);
  });

  it(`${REPLAYS} concurrent replays of a completed deposit (one transaction per request) all get its stored answer`, async () => {
    const headers = { 'idempotency-key': `replay-dep-${engine}` };
    const body = { amount: { amount: '2.00', currency: 'CNY' } };
    const first = await t.api('wallet-a').post(`/v1/accounts/${account('li-at-wallet-a')}/deposits`, body, headers);
    expect(first.status).toBe(201);
    const answers = await Promise.all(Array.from({ length: REPLAYS }, () => t.api('wallet-a').post(`/v1/accounts/${account('li-at-wallet-a')}/deposits`, body, headers)));
    expectAllStored(first, answers);
  });

  it('a different request under a completed key is refused as a reuse, however many come at once', async () => {
    const headers = { 'idempotency-key': `replay-dep-${engine}` };
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => t.api('wallet-a').post(`/v1/accounts/${account('li-at-wallet-a')}/deposits`, { amount: { amount: '3.00', currency: 'CNY' } }, headers)),
    );
    expect(answers.map((a) => a.body.error?.code)).toEqual(Array.from({ length: 10 }, () => 'idempotency_key_reused'));
  });
});
