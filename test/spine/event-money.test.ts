import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { currencyMinorUnit } from '../../src/platform/money.ts';
import type { OutboxEvent } from '../../src/webhooks/events.ts';
import { availableEngines } from '../support/engines.ts';
import { startTestHub, type TestHub } from '../support/hub.ts';

/** Every event any hub in this file emits, in order: the real outbox still writes it (and its webhook). */
const emitted = vi.hoisted(() => [] as OutboxEvent[]);
vi.mock('../../src/webhooks/events.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/webhooks/events.ts')>();
  return {
    ...original,
    createEventOutbox: (deps: Parameters<typeof original.createEventOutbox>[0]) => {
      const outbox = original.createEventOutbox(deps);
      return {
        emit: async (tx: Parameters<typeof outbox.emit>[0], event: OutboxEvent) => {
          emitted.push(event);
          return outbox.emit(tx, event);
        },
      };
    },
  };
});

/** A key that names money (or a part of it): its value must be a `{ amount, currency }` object. */
const MONEY_KEY = /(amount|minor|fee|refunded|captured|total|balance|sum|liquidity|reserved|available|cap)$/i;
/** A currency kept apart from its amount (`sendCurrency` next to `sendAmount`). */
const SEPARATE_CURRENCY_KEY = /.Currency$/;

/**
 * What is wrong with the money in an event's payload: the wire format is `{ "amount": "12.30", "currency": "CNY" }`, a
 * decimal string with exactly the currency's minor-unit digits, as the API writes it (src/platform/money.ts).
 */
function moneyProblems(value: unknown, path: string): string[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => moneyProblems(item, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  const record = value as Record<string, unknown>;
  // A money object (its amount is a value, not a nested money object next to a currency of the payload's own).
  if ('amount' in record && 'currency' in record && (record.amount === null || typeof record.amount !== 'object')) {
    const { amount, currency } = record;
    if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) return [`${path}.currency: not an ISO 4217 code: ${JSON.stringify(currency)}`];
    const digits = currencyMinorUnit(currency) ?? 2;
    const decimal = digits === 0 ? /^-?[0-9]+$/ : new RegExp(`^-?[0-9]+\\.[0-9]{${digits}}$`);
    if (typeof amount !== 'string' || !decimal.test(amount)) return [`${path}.amount: ${JSON.stringify(amount)} is not a decimal with ${digits} digits after the point (minor units?)`];
    return [];
  }
  const problems: string[] = [];
  for (const [key, inner] of Object.entries(record)) {
    const at = `${path}.${key}`;
    if (SEPARATE_CURRENCY_KEY.test(key)) problems.push(`${at}: a currency apart from its amount`);
    else if (MONEY_KEY.test(key) && (inner === null || typeof inner !== 'object')) problems.push(`${at}: ${JSON.stringify(inner)} is money outside a { amount, currency } object`);
    else problems.push(...moneyProblems(inner, at));
  }
  return problems;
}

function problemsOf(events: readonly OutboxEvent[]): string[] {
  // As the webhook carries it: through JSON.
  return events.flatMap((e) => moneyProblems(JSON.parse(JSON.stringify(e.data)), e.type));
}

describe('the money checker', () => {
  it('flags the formats events used to carry, and passes the API’s', () => {
    expect(moneyProblems({ sendAmount: '300', sendCurrency: 'CNY' }, 'payment.sent')).toEqual([
      'payment.sent.sendAmount: "300" is money outside a { amount, currency } object',
      'payment.sent.sendCurrency: a currency apart from its amount',
    ]);
    expect(moneyProblems({ amount: '421', currency: 'CNY' }, 'red_packet.claimed')).toHaveLength(1);
    expect(moneyProblems({ amountMinor: '500', currency: 'SGD' }, 'money_request.received')).toHaveLength(1);
    expect(moneyProblems({ fee: '0.08', refunded: 0 }, 'payment.captured')).toHaveLength(2);
    expect(moneyProblems({ amount: { amount: 12.3, currency: 'CNY' } }, 'x')).toHaveLength(1);
    expect(moneyProblems({ items: [{ amount: { amount: '1', currency: 'CNY' } }] }, 'x')).toHaveLength(1);
    expect(moneyProblems({ amount: { amount: '12.30', currency: 'CNY' }, position: { available: { amount: '1500', currency: 'JPY' } }, currency: 'CNY', feeBps: 60 }, 'ok')).toEqual([]);
  });
});

/** Event types that carry money: each must show up below, so that the check cannot silently stop covering one. */
const MONEY_EVENT_TYPES_IN_STORIES = [
  'liquidity.funds_in',
  'payment.authorized',
  'payment.captured',
  'payment.refunded',
  'payment.voided',
  'payment.sent',
  'payment.received',
  'money_request.received',
  'red_packet.claimed',
  'red_packet.refunded',
  'settlement.window_closed',
  'settlement.settled',
];

describe('money in events', () => {
  it('every event the demo stories emit writes money as { amount, currency } decimal strings', async () => {
    const { runDemo } = await import('../../src/demo/run.ts');
    const from = emitted.length;
    for (const name of ['network', 'cards', 'pay', 'transfers', 'settlement']) {
      let output = '';
      const io = { stdout: (s: string) => void (output += `${s}\n`), stderr: (s: string) => void (output += `${s}\n`) };
      expect(await runDemo([name], io), output).toBe(0);
    }
    const events = emitted.slice(from);
    expect([...new Set(events.map((e) => e.type))]).toEqual(expect.arrayContaining(MONEY_EVENT_TYPES_IN_STORIES));
    expect(problemsOf(events)).toEqual([]);
    // The payee hears what it receives; what the payer paid (and its fee) stay the payer's, as in the API.
    const received = events.find((e) => e.type === 'payment.received');
    expect(Object.keys(received?.data ?? {}).sort()).toEqual(['customerId', 'paymentId', 'receiveAmount', 'requestId']);
  }, 600_000);

  describe('operator flows the stories do not reach', () => {
    let t: TestHub;
    beforeAll(async () => {
      const [engine] = await availableEngines();
      if (engine === undefined) throw new Error('no engine');
      t = await startTestHub(engine);
    });
    afterAll(async () => {
      await t?.close();
    });

    it('funding an account, liquidity out and a net debit cap write money the same way', async () => {
      const from = emitted.length;
      const op = t.api('operator');
      const opened = await op.post('/v1/operator/ledger/accounts', { participantId: 'par_demo_wallet_c', currency: 'SGD', kind: 'settlement' });
      expect(opened.status).toBe(201);
      // Typed as "12.5" and "7": the events write the hub's form, "12.50" and "7.00".
      expect((await op.post(`/v1/operator/ledger/accounts/${opened.body.id}/fund`, { amount: { amount: '12.5', currency: 'SGD' } }, { 'idempotency-key': 'evt-fund-1' })).status).toBe(201);
      expect((await op.post('/v1/operator/participants/par_demo_bank_a/liquidity/withdrawals', { amount: { amount: '7', currency: 'CNY' } }, { 'idempotency-key': 'evt-liq-out-1' })).status).toBe(201);
      expect((await op.post('/v1/operator/participants/par_demo_bank_a/net-debit-cap', { cap: { amount: '100', currency: 'CNY' } }, { 'idempotency-key': 'evt-cap-1' })).status).toBe(200);
      // A participant's liquidity request, approved by the operator.
      const asked = await t.api('wallet-c').post('/v1/liquidity/requests', { direction: 'top_up', amount: { amount: '5', currency: 'SGD' } }, { 'idempotency-key': 'evt-liq-req-1' });
      expect(asked.status).toBe(201);
      expect((await op.post(`/v1/operator/liquidity/requests/${asked.body.id as string}/approve`, {})).status).toBe(200);
      const events = emitted.slice(from);
      expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['ledger.account_funded', 'liquidity.funds_out', 'liquidity.net_debit_cap_set', 'liquidity.request_created', 'liquidity.request_approved']));
      expect(events.find((e) => e.type === 'liquidity.request_approved')?.data.amount).toEqual({ amount: '5.00', currency: 'SGD' });
      expect(events.find((e) => e.type === 'ledger.account_funded')?.data.amount).toEqual({ amount: '12.50', currency: 'SGD' });
      expect(events.find((e) => e.type === 'liquidity.funds_out')?.data.amount).toEqual({ amount: '7.00', currency: 'CNY' });
      expect(problemsOf(events)).toEqual([]);
    });
  });
});
