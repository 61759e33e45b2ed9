import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

/**
 * GET /demo/v1/directory: what the reference wallet offers at sign-in (the demo wallets and their customers) and in
 * "Me" to link a customer's records at (the demo banks, and the other wallets). Only demo participants that are active.
 */
describe.each(engines)('the demo directory on %s', (engine) => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub(engine);
  }, 120_000);
  afterAll(async () => t?.close());

  it('lists the active demo wallets with their customers and the active demo banks, and no other participant', async () => {
    // A bank the operator adds is not a demo bank; a suspended demo bank is not offered.
    const added = await t.api('operator').post('/v1/operator/participants', { kind: 'issuer', name: 'Not A Demo Bank', country: 'CN', currencies: ['CNY'] }, { 'idempotency-key': 'directory-bank' });
    expect(added.status).toBe(201);
    expect((await t.api('operator').post('/v1/operator/participants/par_demo_bank_b/suspend', {}, { 'idempotency-key': 'directory-suspend' })).status).toBe(200);
    const res = await t.api('anonymous').get('/demo/v1/directory');
    expect(res.status).toBe(200);
    expect(res.body.banks).toEqual([{ key: 'bank-a', participantId: 'par_demo_bank_a', name: 'Hutong Commercial Bank 互通商业银行' }]);
    expect((res.body.wallets as { key: string }[]).map((w) => w.key)).toEqual(['wallet-a', 'wallet-b', 'wallet-c']);
    expect(res.body.wallets[0].customers).toEqual([{ id: 'cus_demo_li_at_wallet_a', name: '李伟' }]);
    expect(JSON.stringify(res.body)).not.toContain('Not A Demo Bank');
    expect(JSON.stringify(res.body)).not.toContain('merchant');
  });
});
