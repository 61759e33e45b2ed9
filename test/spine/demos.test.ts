import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'hutong.js');

/**
 * Each `hutong demo <scenario>` tells its story on a fresh embedded hub and exits 0 only when every step behaved as the
 * story says (each step checks its own outcome). Run as a user would, through the CLI.
 */
describe('hutong demo', () => {
  it.each(['network', 'cards', 'pay', 'transfers', 'settlement', 'value'])('`hutong demo %s` exits 0 with every step checked', async (scenario) => {
    const { stdout } = await run(process.execPath, [BIN, 'demo', scenario], { env: { ...process.env, HUTONG_LOG_LEVEL: 'silent' }, timeout: 120_000 });
    expect(stdout).toContain(`✔ demo ${scenario}: every step behaved as expected`);
    expect(stdout).not.toContain('✘');
  }, 150_000);

  it('refuses an unknown scenario with a usage exit code', async () => {
    const failed = await run(process.execPath, [BIN, 'demo', 'nosuch'], { timeout: 60_000 }).catch((e: { code: number; stderr: string }) => e);
    expect('code' in failed && failed.code).toBe(64);
    expect('stderr' in failed && failed.stderr).toContain('unknown demo scenario');
  });
});
