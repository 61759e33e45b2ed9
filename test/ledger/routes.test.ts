import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

describe.each(engines)('ledger routes on %s', (engine) => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub(engine);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('opens and funds a settlement account by a recorded transfer, exactly once per Idempotency-Key', async () => {
    const opened = await t.api('operator').post('/v1/operator/ledger/accounts', { participantId: 'par_demo_wallet_c', currency: 'SGD', kind: 'settlement' });
    expect(opened.status).toBe(201);
    const accountId = opened.body.id as string;
    expect(opened.body).toMatchObject({ kind: 'settlement', balance: { amount: '0.00', currency: 'SGD' } });

    const fund = (key: string, amount = '1000.50') => t.api('operator').post(`/v1/operator/ledger/accounts/${accountId}/fund`, { amount: { amount, currency: 'SGD' }, reference: 'prefund' }, { 'idempotency-key': key });
    const first = await fund('fund-1');
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ purpose: 'operator_funding', creditAccountId: accountId, amount: { amount: '1000.50', currency: 'SGD' } });
    const replay = await fund('fund-1');
    expect(replay.body).toEqual(first.body);

    const own = await t.api('wallet-c').get(`/v1/ledger/accounts/${accountId}`);
    expect(own.body.balance).toEqual({ amount: '1000.50', currency: 'SGD' });
    const statement = await t.api('wallet-c').get(`/v1/ledger/accounts/${accountId}/statement`);
    expect(statement.body.items).toEqual([expect.objectContaining({ transferId: first.body.id, side: 'credit', balanceAfter: { amount: '1000.50', currency: 'SGD' } })]);
    const list = await t.api('wallet-c').get('/v1/ledger/accounts?currency=SGD');
    expect(list.body.items.map((a: { id: string }) => a.id)).toContain(accountId);

    // Another participant's account is not found, and not listed.
    expect((await t.api('wallet-a').get(`/v1/ledger/accounts/${accountId}`)).status).toBe(404);
    expect((await t.api('wallet-a').get(`/v1/ledger/accounts/${accountId}/statement`)).status).toBe(404);
    expect((await t.api('wallet-a').get('/v1/ledger/accounts?currency=SGD')).body.items.map((a: { id: string }) => a.id)).not.toContain(accountId);
  });

  it('refuses bad funding requests with their codes and moves nothing', async () => {
    const opened = await t.api('operator').post('/v1/operator/ledger/accounts', { participantId: 'par_demo_wallet_b', currency: 'CNY', kind: 'settlement' });
    const accountId = opened.body.id as string;
    const fund = (amount: unknown, key: string) => t.api('operator').post(`/v1/operator/ledger/accounts/${accountId}/fund`, { amount }, { 'idempotency-key': key });
    expect((await fund({ amount: '10.005', currency: 'CNY' }, 'b1')).body.error.code).toBe('amount_precision');
    expect((await fund({ amount: '0', currency: 'CNY' }, 'b2')).body.error.code).toBe('amount_not_positive');
    expect((await fund({ amount: '-5', currency: 'CNY' }, 'b3')).body.error.code).toBe('amount_not_positive');
    expect((await fund({ amount: '5', currency: 'HKD' }, 'b4')).body.error.code).toBe('currency_mismatch');
    expect((await fund({ amount: '5', currency: 'ZZZ' }, 'b5')).body.error.code).toBe('unknown_currency');
    expect((await fund({ amount: '92233720368547758.08', currency: 'CNY' }, 'b6')).body.error.code).toBe('amount_too_large');
    expect((await fund({ amount: 5, currency: 'CNY' }, 'b7')).body.error.code).toBe('validation_failed');
    const noKey = await t.api('operator').post(`/v1/operator/ledger/accounts/${accountId}/fund`, { amount: { amount: '1', currency: 'CNY' } });
    expect(noKey.body.error.code).toBe('idempotency_key_required');
    expect((await t.api('operator').post('/v1/operator/ledger/accounts/acc_nope/fund', { amount: { amount: '1', currency: 'CNY' } }, { 'idempotency-key': 'b8' })).status).toBe(404);
    const account = await t.api('wallet-b').get(`/v1/ledger/accounts/${accountId}`);
    expect(account.body.balance).toEqual({ amount: '0.00', currency: 'CNY' });
    expect(await t.hub.ledger.checkInvariants()).toEqual([]);
  });
});
