import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createReferenceBank } from '../../src/demo/bank/reference-bank.ts';
import { StartupError } from '../../src/platform/startup-error.ts';

/**
 * A reference bank's books are a PGlite directory, which has no lock of its own: two openers each keep their own copy
 * and overwrite each other's files (the hub says completed; after a restart the bank's balance is the old one). So
 * one directory has one opener at a time, and a second is refused with a message naming the holder. The bank keeps
 * its books in PGlite whatever engine a hub uses, so this runs once.
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
