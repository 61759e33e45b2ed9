import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_RATES_PATH, toEurCents } from '../../src/fx/index.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

const engines = await availableEngines();

// The reference rates (limits and risk weigh every amount in EUR by them) are the operator's: a hub that is not a demo
// has none until the operator loads them, and nothing shipped with the hub stands in for them.
describe.each(engines)('FX reference rates on %s', (engine) => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub(engine, { seed: false });
  }, 300_000);
  afterAll(async () => {
    await t?.close();
  });

  it('none until the operator loads them: other currencies than EUR cannot be weighed; EUR needs no rate', async () => {
    const shown = await t.api('operator').get('/v1/operator/fx');
    expect(shown.status).toBe(200);
    expect(shown.body.asOf).toBeNull();
    expect(shown.body.rates).toEqual({});

    const table = await t.hub.transfers.fx.table();
    const cny = toEurCents(table, 'CNY', 10_000n);
    expect(cny.ok ? 'weighed' : cny.error).toMatchObject({ code: 'fx_rate_unavailable', details: { currency: 'CNY' } });
    expect(cny.ok ? '' : cny.error.message).toContain('POST /v1/operator/fx/rates');
    expect(toEurCents(table, 'EUR', 12_345n)).toEqual({ ok: true, value: 12_345n });

    const loaded = await t.api('operator').post('/v1/operator/fx/rates', { xml: readFileSync(DEMO_RATES_PATH, 'utf8') });
    expect(loaded.status).toBe(200);
    expect(loaded.body.asOf).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    const after = await t.api('operator').get('/v1/operator/fx');
    expect(after.body.asOf).toBe(loaded.body.asOf);
    expect(Object.keys(after.body.rates)).toContain('CNY');
    const weighed = toEurCents(await t.hub.transfers.fx.table(), 'CNY', 10_000n);
    expect(weighed.ok && weighed.value > 0n && weighed.value < 10_000n).toBe(true);
  });
});
