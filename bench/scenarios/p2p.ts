import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHub } from '../../src/main.ts';
import { seedDemoNetwork } from '../../src/demo/seed.ts';
import { demoParticipantId } from '../../src/demo/seed.ts';
import { loadConfig } from '../../src/platform/config.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { createScratchPostgres } from '../../test/support/engines.ts';
import { createLatencyRecorder, runClosedLoop, summarize, type BenchResult } from '../recorder.ts';
import type { Scenario } from './index.ts';

/**
 * p2p: alias lookup → quote → confirm over HTTP against a hub on PostgreSQL (scratch database), listening on a local
 * port, driven by concurrent fetch clients. One op = one payment (3 HTTP calls). Options: --seconds=N --clients=N
 * --payers=N --pool=N.
 */
function option(args: readonly string[], name: string, fallback: number): number {
  const found = args.find((a) => a.startsWith(`--${name}=`));
  return found === undefined ? fallback : Number(found.slice(name.length + 3));
}

export const p2pScenario: Scenario = {
  name: 'p2p',
  description: 'alias lookup → quote → confirm over HTTP, hub on PostgreSQL',
  async *run(args): AsyncIterable<BenchResult> {
    const seconds = option(args, 'seconds', 15);
    const clients = option(args, 'clients', 64);
    const payers = option(args, 'payers', 200);
    const pool = option(args, 'pool', 32);
    const scratch = await createScratchPostgres();
    const dataDir = mkdtempSync(join(tmpdir(), 'hutong-bench-'));
    const config = loadConfig({ HUTONG_DATA_DIR: dataDir, HUTONG_LOG_LEVEL: 'silent', DATABASE_URL: scratch.url, HUTONG_RATE_LIMIT_PER_S: '1000000', HUTONG_DB_MAX_CONNECTIONS: String(pool), HUTONG_WEBHOOKS: '0' }, { port: 0, host: '127.0.0.1', operatorToken: 'op_bench' });
    const hub = await createHub(config, { logger: createLogger({ level: 'silent' }) });
    try {
      const demo = await seedDemoNetwork(hub);
      const m = hub.transfers;
      Object.assign(m.aliases.limits, { customerPerS: 1e6, customerBurst: 1e6, participantPerS: 1e6, participantBurst: 1e6 });
      const walletA = (await hub.participants.get(demoParticipantId('wallet-a')))!;
      // Many payers at wallet A (so the per-customer row lock and limits do not serialize the run), funded by the ledger.
      const payerIds: string[] = [];
      for (let i = 0; i < payers; i++) {
        await hub.db.transaction(async (tx) => {
          const c = await hub.customers.create(tx, { type: 'system' }, walletA, { externalId: `bench-${i}`, name: `Bench ${i}`, kycLevel: 3 });
          if (!c.ok) throw new Error(c.error.code);
          const a = await m.accounts.openCustomerAccount(tx, { type: 'system' }, walletA.id, c.value.id, 'CNY');
          if (!a.ok) throw new Error(a.error.code);
          const d = await m.accounts.deposit(tx, { type: 'system' }, walletA.id, a.value.id, 10_000_000_00n, `bench_fund_${i}`);
          if (!d.ok) throw new Error(d.error.code);
          payerIds.push(c.value.id);
        });
      }
      // The velocity rule would (rightly) step these payers up; the bench measures the payment path.
      await hub.db.query(`insert into risk_rules (participant_id, rule, params, enabled, updated_at) values ($1, 'velocity', '{"action":"step_up","score":40,"windowS":600,"maxCount":20}', false, now())`, [walletA.id]);
      const base = await hub.listen();
      const cred = demo.participants.find((p) => p.key === 'wallet-a')!;
      const tok = (await (await fetch(`${base}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', client_id: cred.clientId, client_secret: cred.clientSecret }) })).json()) as { access_token: string };
      const headers = { authorization: `Bearer ${tok.access_token}`, 'content-type': 'application/json' };
      const recorder = createLatencyRecorder();
      let failures = 0;
      const elapsed = await runClosedLoop({
        clients,
        maxOps: 2_000_000,
        maxMs: seconds * 1000,
        recorder,
        op: async (_c, n) => {
          const payer = payerIds[n % payerIds.length]!;
          const look = await fetch(`${base}/v1/aliases/lookup?customerId=${payer}&type=handle&value=zhangmin`, { headers });
          await look.arrayBuffer();
          const q = await fetch(`${base}/v1/transfers/quotes`, { method: 'POST', headers, body: JSON.stringify({ customerId: payer, payee: { type: 'handle', value: 'zhangmin' }, sendAmount: { amount: '1.00', currency: 'CNY' } }) });
          const quote = (await q.json()) as { id?: string };
          const p = await fetch(`${base}/v1/transfers/payments`, { method: 'POST', headers: { ...headers, 'idempotency-key': `b-${n}` }, body: JSON.stringify({ quoteId: quote.id }) });
          await p.arrayBuffer();
          if (look.status !== 200 || q.status !== 201 || p.status !== 201) failures++;
        },
      });
      yield summarize('p2p', 'postgres', recorder, elapsed, { clients, payers, pool, failures });
    } finally {
      await hub.close();
      await scratch.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
};
