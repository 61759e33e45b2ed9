import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/index.ts';
import { valueRewardsScenario } from '../../src/demo/value-rewards.ts';

/** The value story runs on a fresh embedded hub and every step (each checking its own outcome) behaves. */
describe('the value demo story', () => {
  it('runs pots, coupons, rewards and insights with their failure paths, every step checked', async () => {
    const out: string[] = [];
    const io: CliIo = { stdout: (s) => out.push(s), stderr: (s) => out.push(s) };
    const ok = await valueRewardsScenario.run(io);
    expect(ok, out.join('\n')).toBe(true);
    expect(out.join('\n')).toContain('pot_locked');
    expect(out.join('\n')).toContain('coupon_limit_reached');
  }, 180_000);
});
