import { Writable } from 'node:stream';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { availableEngines, createScratchPostgres } from '../../test/support/engines.ts';
import { createHub } from '../main.ts';
import { seedDemoNetwork, demoParticipantId } from '../demo/seed.ts';
import { createFakeClock } from '../platform/clock.ts';
import { defaultKeyDir, loadConfig } from '../platform/config.ts';
import { openPglite, openPostgres } from '../platform/db.ts';
import { createLogger, luhnValid } from '../platform/logger.ts';

const engines = await availableEngines();

import { story, type Call } from '../demo/card-story.ts';
import { newDevice } from '../demo/device.ts';

/** Every file under a directory, recursively. */
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

describe.each(engines)('no card number in clear after a full card story (%s)', (engine) => {
  it('database rows, data files and logs hold no issued card number', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hutong-cards-dump-'));
    const logs: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        logs.push(chunk.toString('utf8'));
        done();
      },
    });
    const scratch = engine === 'postgres' ? await createScratchPostgres() : undefined;
    const db = scratch !== undefined ? openPostgres({ url: scratch.url, maxConnections: 5 }) : await openPglite(join(dataDir, 'pglite'));
    const clock = createFakeClock(Date.UTC(2026, 0, 15, 8));
    const config = loadConfig({ HUTONG_DATA_DIR: dataDir, HUTONG_LOG_LEVEL: 'debug' }, { operatorToken: 'op_test_token', webhooks: { enabled: false, pollMs: 1000 } });
    const hub = await createHub(config, { db, clock, logger: createLogger({ level: 'debug', destination }) });
    const demo = await seedDemoNetwork(hub);
    const tokenOf = new Map<string, string>();
    const call: Call = async (as, method, url, body, headers = {}) => {
      let token = tokenOf.get(as);
      if (token === undefined) {
        const p = demo.participants.find((d) => d.key === as);
        const res = await hub.app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: p?.clientId, client_secret: p?.clientSecret } });
        token = (res.json() as { access_token: string }).access_token;
        tokenOf.set(as, token);
      }
      const res = await hub.app.inject({ method, url, headers: { authorization: `Bearer ${token}`, ...headers }, ...(body !== undefined ? { payload: body as object } : {}) });
      return { status: res.statusCode, body: res.json() };
    };
    const pans: string[] = [];
    try {
      const s = story(hub, call, demo);
      const seeded = await hub.cards.cards.reveal(demoParticipantId('bank-a'), 'crd_demo_li_bank_a');
      if (seeded !== undefined) pans.push(seeded.cardNumber);
      const card = await s.issue();
      pans.push(card.cardNumber);
      // With an Idempotency-Key, typed provisioning and issuance keep no response and no unkeyed hash of card data.
      const retried = await call('bank-a', 'POST', '/v1/issuer/cards', { productId: 'cpr_demo_bank_a_debit', customerId: demo.customers.get('li-at-bank-a') }, { 'idempotency-key': 'k1' });
      const replayed = await call('bank-a', 'POST', '/v1/issuer/cards', { productId: 'cpr_demo_bank_a_debit', customerId: demo.customers.get('li-at-bank-a') }, { 'idempotency-key': 'k1' });
      expect(replayed.body.card.id).toBe(retried.body.card.id);
      expect(replayed.body.cardNumber).toBe(retried.body.cardNumber);
      pans.push(retried.body.cardNumber);
      await call('bank-a', 'POST', `/v1/issuer/cards/${retried.body.card.id}/activate`);
      const a = await s.provision('wallet-a', { type: 'typed', cardNumber: card.cardNumber, expiry: card.expiry, cvv: card.cvv });
      const bad = await call('wallet-b', 'POST', '/v1/wallet/tokens', { customerId: demo.customers.get('li-at-wallet-b'), consent: true, devicePublicKey: newDevice().publicKey, source: { type: 'typed', cardNumber: card.cardNumber, expiry: card.expiry, cvv: card.cvv === '000' ? '001' : '000' } }, { 'idempotency-key': 'k2' });
      expect(bad.status).toBe(422);
      await s.linkCustomer('wallet-b', 'li-at-wallet-b', 'wallet-a');
      await s.provision('wallet-b', { type: 'token_ref', tokenRef: a.tokenRef });
      await call('bank-a', 'POST', `/v1/issuer/cards/${card.cardId}/freeze`);
      await call('bank-a', 'POST', `/v1/issuer/cards/${card.cardId}/unfreeze`);
      const replaced = await call('bank-a', 'POST', `/v1/issuer/cards/${card.cardId}/replace`, undefined, { 'idempotency-key': 'k3' });
      pans.push(replaced.body.cardNumber);
      await call('bank-a', 'POST', `/v1/issuer/cards/${replaced.body.card.id}/cancel`);
      hub.logger.info({ note: 'end of card story' }, 'story done');
      expect(pans.length).toBe(4);
      for (const pan of pans) expect(luhnValid(pan)).toBe(true);

      const tables = await db.query<{ table_name: string }>(`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`);
      expect(tables.map((x) => x.table_name)).toContain('cards');
      let dump = '';
      for (const { table_name } of tables) {
        const rows = await db.query<{ r: string }>(`select t::text as r from "${table_name}" t`);
        dump += rows.map((r) => r.r).join('\n');
      }
      expect(dump).toContain(pans[0]?.slice(-4));
      for (const pan of pans) expect(dump.includes(pan)).toBe(false);
      const logText = logs.join('');
      expect(logText.length).toBeGreaterThan(100);
      for (const pan of pans) expect(logText.includes(pan)).toBe(false);
    } finally {
      await hub.close();
      await db.close();
    }
    if (engine === 'pglite') {
      const all = files(join(dataDir, 'pglite'));
      expect(all.length).toBeGreaterThan(10);
      for (const path of all) {
        const content = readFileSync(path).toString('latin1');
        for (const pan of pans) expect(content.includes(pan), path).toBe(false);
      }
    }
    await scratch?.drop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(defaultKeyDir(dataDir), { recursive: true, force: true });
  });
});
