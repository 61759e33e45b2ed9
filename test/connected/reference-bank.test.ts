import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReferenceBank, type ReferenceBank } from '../../src/demo/bank/reference-bank.ts';
import { StartupError } from '../../src/platform/startup-error.ts';
import { signDetached, type ConnectorBatch, type ConnectorRequest } from '../../src/participant-sdk/protocol.ts';
import { availableEngines, createScratchPostgres } from '../support/engines.ts';

/**
 * The reference bank's own books, on PGlite (one connection: statements run one at a time) and on a PostgreSQL
 * database of its own (a pool: reserves of one account run at once on several connections). A hold is taken only when
 * it fits the balance less what is already held, also when many reserves of one account arrive together; commits and
 * releases move the balance, the clearing account and the held amount so that Σ customers + clearing never changes.
 */
const engines = await availableEngines();

describe.each(engines)('the reference bank’s books on %s', (engine) => {
  const hub = generateKeyPairSync('ed25519');
  const hubJwk = hub.publicKey.export({ format: 'jwk' });
  let bank: ReferenceBank;
  let drop: (() => Promise<void>) | undefined;
  let n = 0;

  beforeAll(async () => {
    const scratch = engine === 'postgres' ? await createScratchPostgres() : undefined;
    drop = scratch?.drop;
    bank = await createReferenceBank({ hubPublicJwk: { kty: 'OKP', crv: 'Ed25519', x: String(hubJwk.x) }, ...(scratch !== undefined ? { databaseUrl: scratch.url } : {}) });
  }, 60_000);
  afterAll(async () => {
    await bank?.close();
    await drop?.();
  });

  const request = (op: ConnectorRequest['Op'], txId: string, account: string, amount: string): ConnectorRequest => ({
    MsgId: `${txId}:${op}`,
    CreDtTm: new Date().toISOString(),
    Op: op,
    TxId: txId,
    EndToEndId: txId,
    IntrBkSttlmAmt: { amount, currency: 'CNY' },
    DbtrAgt: { FinInstnId: { Othr: { Id: 'par_bank' } } },
    CdtrAgt: { FinInstnId: { Othr: { Id: 'par_wallet' } } },
    DbtrAcct: { Id: { Othr: { Id: account } }, Ccy: 'CNY' },
    SttlmDdln: new Date(Date.now() + 30_000).toISOString(),
  });
  const send = async (op: string, message: ConnectorRequest | ConnectorBatch, txid: string) => {
    const body = JSON.stringify(message);
    const signature = await signDetached(body, hub.privateKey, { kid: 'hub', op, txid, iat: Math.floor(Date.now() / 1000) });
    const reply = await bank.connector.handle(op, body, signature);
    expect(reply.status, reply.body).toBe(200);
    return JSON.parse(reply.body) as { TxSts?: string; StsRsnInf?: { Rsn: string }; TxInfAndSts?: { TxId: string; TxSts: string }[] };
  };

  it('concurrent reserves of one account hold only what its balance covers, singly and in batches', async () => {
    const account = `RB-${engine}-1`;
    await bank.openAccount({ id: account, name: 'Concurrent payer', currency: 'CNY', balanceMinor: 50_000n });
    const books0 = await bank.books('CNY');
    // 20 single reserves of 60.00 and two batches of 10 at once, on a balance of 500.00: 8 fit, whatever the order.
    const singles = Array.from({ length: 20 }, () => `tx_rb_${engine}_${++n}`);
    const batches = [0, 1].map(() => Array.from({ length: 10 }, () => `tx_rb_${engine}_${++n}`));
    const answers = await Promise.all([
      ...singles.map(async (id) => ({ id, sts: (await send('reserve', request('reserve', id, account, '60.00'), id)).TxSts })),
      ...batches.map(async (ids, k) => {
        const msgId = `batch_rb_${engine}_${k}_${n}`;
        const batch: ConnectorBatch = { MsgId: msgId, CreDtTm: new Date().toISOString(), Op: 'batch', NbOfTxs: ids.length, TxInf: ids.map((id) => request('reserve', id, account, '60.00')) };
        return (await send('batch', batch, msgId)).TxInfAndSts!.map((a) => ({ id: a.TxId, sts: a.TxSts }));
      }),
    ]);
    const all = answers.flat();
    expect(all).toHaveLength(40);
    const held = all.filter((a) => a.sts === 'ACSP').map((a) => a.id);
    expect(held).toHaveLength(8);
    expect(all.filter((a) => a.sts === 'RJCT')).toHaveLength(32);
    for (const id of held) expect((await bank.hold(id))?.state).toBe('held');
    expect((await bank.books('CNY')).held - books0.held).toBe(48_000n);

    // Half committed, half released, in one batch: the balance moves by the committed ones only, clearing mirrors it,
    // and the released amounts can be held again.
    const [commit, release] = [held.slice(0, 4), held.slice(4)];
    const msgId = `batch_rb_${engine}_settle_${n}`;
    const settle: ConnectorBatch = {
      MsgId: msgId,
      CreDtTm: new Date().toISOString(),
      Op: 'batch',
      NbOfTxs: held.length,
      TxInf: [...commit.map((id) => request('commit', id, account, '60.00')), ...release.map((id) => request('abort', id, account, '60.00'))],
    };
    expect((await send('batch', settle, msgId)).TxInfAndSts!.map((a) => a.TxSts)).toEqual([...commit.map(() => 'ACSC'), ...release.map(() => 'RJCT')]);
    expect(await bank.balance(account)).toBe(50_000n - 24_000n);
    const books = await bank.books('CNY');
    expect(books.customers + books.clearing).toBe(books0.customers + books0.clearing);
    expect(books.held).toBe(books0.held);
    // 260.00 left: four more reserves of 60.00 fit, a fifth does not.
    const again = await Promise.all(Array.from({ length: 5 }, async () => {
      const id = `tx_rb_${engine}_${++n}`;
      return (await send('reserve', request('reserve', id, account, '60.00'), id)).TxSts;
    }));
    expect(again.filter((s) => s === 'ACSP')).toHaveLength(4);
  });

  it('refuses with the reason the account gives: unknown (AC01), closed (AC04), short (AM04)', async () => {
    const account = `RB-${engine}-2`;
    await bank.openAccount({ id: account, name: 'Refused payer', currency: 'CNY', balanceMinor: 1_000n });
    const reason = async (acc: string, amount: string) => {
      const id = `tx_rb_${engine}_${++n}`;
      return (await send('reserve', request('reserve', id, acc, amount), id)).StsRsnInf?.Rsn;
    };
    expect(await reason('RB-nobody', '1.00')).toBe('AC01');
    expect(await reason(account, '10.01')).toBe('AM04');
    expect(await reason(account, '10.00')).toBeUndefined();
    await bank.closeAccount(account);
    expect(await reason(account, '0.01')).toBe('AC04');
  });
});

/**
 * A reference bank's books are a PGlite directory, which has no lock of its own: two openers each keep their own copy
 * and overwrite each other's files (the hub says completed; after a restart the bank's balance is the old one). So
 * one directory has one opener at a time, and a second is refused with a message naming the holder. Openers of one
 * PostgreSQL database share its books, so this is PGlite's alone.
 */
const HUB_KEY = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };
const root = mkdtempSync(join(tmpdir(), 'hutong-bank-dir-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("a reference bank's data directory", () => {
  it('has one opener at a time: a second is refused while the first runs, and opens the same books after it closes', async () => {
    const dataDir = join(root, 'books');
    const first = await createReferenceBank({ dataDir, hubPublicJwk: HUB_KEY });
    await first.openAccount({ id: 'ACC-1', name: 'Wang', currency: 'CNY', balanceMinor: 12_345n });
    const second = createReferenceBank({ dataDir, hubPublicJwk: HUB_KEY });
    await expect(second).rejects.toBeInstanceOf(StartupError);
    await expect(second).rejects.toThrow(/data directory .*books is in use by process \d+ \(this one\).*another --data-dir/);
    await first.close();
    expect(existsSync(`${dataDir}.lock`)).toBe(false);
    const reopened = await createReferenceBank({ dataDir, hubPublicJwk: HUB_KEY });
    expect(await reopened.balance('ACC-1')).toBe(12_345n);
    await reopened.close();
  });

  it('takes over a lock whose process is gone (a bank that crashed)', async () => {
    const dataDir = join(root, 'crashed');
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(`${dataDir}.lock`, `${gone.stdout}\n`);
    const bank = await createReferenceBank({ dataDir, hubPublicJwk: HUB_KEY });
    expect(readFileSync(`${dataDir}.lock`, 'utf8').trim()).toBe(String(process.pid));
    await bank.close();
  });
});

describe('books kept before accounts had a held amount', () => {
  it('are given it once, from their open debit holds, when the bank next starts', async () => {
    const dataDir = join(root, 'older');
    const older = await createReferenceBank({ dataDir, hubPublicJwk: HUB_KEY });
    await older.openAccount({ id: 'ACC-OLD', name: 'Li', currency: 'CNY', balanceMinor: 10_000n });
    // The books as an earlier version left them: an open debit hold of 60.00 and no held amount on the account.
    await older.db.query(`insert into holds (tx_id, side, account_id, currency, amount_minor, state) values ('tx_old_1', 'debit', 'ACC-OLD', 'CNY', 6_000, 'held')`);
    await older.db.query('alter table accounts drop column held_minor');
    await older.close();
    const bank = await createReferenceBank({ dataDir, hubPublicJwk: HUB_KEY });
    const [row] = await bank.db.query<{ held_minor: bigint }>(`select held_minor from accounts where id = 'ACC-OLD'`);
    expect(row?.held_minor).toBe(6_000n);
    await bank.close();
  });
});
