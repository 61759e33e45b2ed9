import { Pool } from 'undici';
import { tapBody, type WalletToken } from '../src/demo/fixtures.ts';
import type { HttpLoadOptions } from './http-load.ts';

/**
 * The load generator's process (see http-load.ts): runs `clients` closed loops of one operation against the hub and
 * sends back the latencies of the operations that started inside the measured window.
 */
interface Ctx {
  call(method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; body: any }>;
  fail(what: string, detail?: string): void;
}

export interface P2pData {
  readonly tag: string;
  readonly headersOf: Record<string, Record<string, string>>;
  readonly payers: readonly { participantKey: string; customerId: string; handle: string }[];
  readonly payees: readonly { participantKey: string; customerId: string; handle: string }[];
  /** Every payment to payees[0]. */
  readonly hotPayee: boolean;
}

export interface AuthorizeData {
  readonly tag: string;
  readonly merchantId: string;
  readonly headers: Record<string, string>;
  /**
   * Client c taps with tokens c, c + clients, c + 2 × clients, … in turn: each token belongs to one client, since a
   * token's transaction counter must rise with every tap.
   */
  readonly tokens: WalletToken[];
  readonly clients: number;
}

type Op = (ctx: Ctx, client: number, n: number) => Promise<void>;

const OPS: Record<HttpLoadOptions['op'], (data: any) => Op> = {
  /** The floor: one request to an empty route (bench/floor.ts), the cost of HTTP and this load generator alone. */
  floor: () => async (ctx) => {
    const res = await ctx.call('GET', '/floor', {});
    if (res.status !== 200) ctx.fail(`floor_${res.status}`);
  },
  /** One payment: alias lookup, quote, confirm. Payer and payee are drawn independently (multiplicative hashing). */
  p2p: (d: P2pData) => async (ctx, _client, n) => {
    const payer = d.payers[(n * 7919) % d.payers.length]!;
    const payee = d.hotPayee ? d.payees[0]! : d.payees[(n * 104729 + 13) % d.payees.length]!;
    const headers = d.headersOf[payer.participantKey]!;
    const look = await ctx.call('GET', `/v1/aliases/lookup?customerId=${payer.customerId}&type=handle&value=${payee.handle}`, headers);
    if (look.status !== 200) return ctx.fail(`lookup_${look.body?.error?.code ?? look.status}`);
    const quote = await ctx.call('POST', '/v1/transfers/quotes', headers, { customerId: payer.customerId, payee: { type: 'handle', value: payee.handle }, sendAmount: { amount: '1.00', currency: 'CNY' } });
    if (quote.status !== 201) return ctx.fail(`quote_${quote.body?.error?.code ?? quote.status}`);
    const paid = await ctx.call('POST', '/v1/transfers/payments', { ...headers, 'idempotency-key': `${d.tag}-${n}` }, { quoteId: quote.body.id });
    if (paid.status !== 201) return ctx.fail(`confirm_${paid.body?.error?.code ?? paid.status}`, JSON.stringify(paid.body));
  },
  /** One card payment: a tap with a fresh cryptogram (authorization, hosted hold), then its capture. */
  authorize: (d: AuthorizeData) => {
    const perClient = Math.max(1, Math.floor(d.tokens.length / d.clients));
    const turns = new Map<number, number>();
    return async (ctx, client, n) => {
      const turn = turns.get(client) ?? 0;
      turns.set(client, turn + 1);
      const token = d.tokens[(client + d.clients * (turn % perClient)) % d.tokens.length]!;
      const auth = await ctx.call('POST', `/v1/merchants/${d.merchantId}/payments/tap`, { ...d.headers, 'idempotency-key': `${d.tag}-a-${n}` }, tapBody(token, { amount: '1.00', amountMinor: 100n, now: new Date() }));
      if (auth.status !== 201) return ctx.fail(`tap_${auth.body?.error?.code ?? auth.status}`, JSON.stringify(auth.body));
      const cap = await ctx.call('POST', `/v1/payments/${auth.body.id}/capture`, { ...d.headers, 'idempotency-key': `${d.tag}-c-${n}` }, {});
      if (cap.status !== 200) return ctx.fail(`capture_${cap.body?.error?.code ?? cap.status}`, JSON.stringify(cap.body));
    };
  },
};

process.once('message', (raw) => {
  const job = raw as Omit<HttpLoadOptions, 'onMeasureStart'>;
  const pools = job.bases.map((base) => new Pool(base, { connections: job.clients, pipelining: 1, keepAliveTimeout: 60_000 }));
  // Calls go to every hub in turn: a payment's quote and its confirmation land on different processes.
  let nextPool = 0;
  const failures: Record<string, number> = {};
  let firstFailure: string | undefined;
  const ctx: Ctx = {
    async call(method, path, headers, body) {
      const pool = pools[nextPool++ % pools.length]!;
      const res = await pool.request({
        method,
        path,
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.body.text();
      return { status: res.statusCode, body: text.length > 0 ? JSON.parse(text) : undefined };
    },
    fail(what, detail) {
      failures[what] = (failures[what] ?? 0) + 1;
      firstFailure ??= `${what} ${detail ?? ''}`.slice(0, 300);
    },
  };
  const op = OPS[job.op](job.data);
  const started = performance.now();
  const measureFrom = started + job.warmupSeconds * 1000;
  const end = measureFrom + job.seconds * 1000;
  const latencies: number[] = [];
  let issued = 0;
  let cpu0 = process.cpuUsage();
  let measuredAt = measureFrom;
  const startMeasuring = setTimeout(() => {
    cpu0 = process.cpuUsage();
    measuredAt = performance.now();
    process.send!({ type: 'measuring' });
  }, job.warmupSeconds * 1000);
  const loop = async (client: number) => {
    while (performance.now() < end && issued < job.maxOps) {
      const n = issued++;
      const t0 = performance.now();
      try {
        await op(ctx, client, n);
      } catch (error) {
        const e = error as { code?: string; cause?: { code?: string } };
        ctx.fail(`error_${e.cause?.code ?? e.code ?? 'request'}`, String(error));
      }
      if (t0 >= measureFrom) latencies.push(performance.now() - t0);
    }
  };
  void Promise.all(Array.from({ length: job.clients }, (_, c) => loop(c))).then(async () => {
    clearTimeout(startMeasuring);
    const cpu = process.cpuUsage(cpu0);
    const elapsedMs = performance.now() - measuredAt;
    await Promise.all(pools.map((p) => p.close()));
    process.send!({ type: 'done', latenciesMs: latencies, elapsedMs, failures, firstFailure, clientCpuMs: (cpu.user + cpu.system) / 1000 }, () => process.exit(0));
  });
});
