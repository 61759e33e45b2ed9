import { describe, expect, it } from 'vitest';
import { valueCreditScenario } from '../../src/demo/value-credit.ts';

/** The credit and disputes part of `hutong demo value` runs on a fresh embedded hub and every step checks itself. */
describe('value demo: credit and disputes', () => {
  it('every step behaves as expected', async () => {
    const lines: string[] = [];
    const ok = await valueCreditScenario.run({ stdout: (s: string) => void lines.push(s), stderr: (s: string) => void lines.push(s) });
    expect(lines.join('\n')).not.toContain('✘');
    expect(ok).toBe(true);
    expect(lines.filter((l) => l.startsWith('✔')).length).toBe(8);
  }, 120_000);
});
