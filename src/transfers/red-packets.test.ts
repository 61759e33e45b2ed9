import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { postgresReachable } from '../../test/support/engines.ts';
import { startTestHub } from '../../test/support/hub.ts';
import { demoParticipantId } from '../demo/seed.ts';
import { createFakeClock } from '../platform/clock.ts';
import { splitByShares, splitEqual, splitRandom } from './split.ts';
import { maskName } from '../aliases/normalize.ts';

describe('split algorithms', () => {
  it('random red-packet shares: every share ≥ 1 minor unit and they sum exactly to the total', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.bigInt({ min: 0n, max: 10n ** 12n }), (count, extra) => {
        const total = BigInt(count) + extra;
        const shares = splitRandom(total, count);
        expect(shares).toHaveLength(count);
        expect(shares.every((s) => s >= 1n)).toBe(true);
        expect(shares.reduce((a, b) => a + b, 0n)).toBe(total);
      }),
      { numRuns: 500 },
    );
  });
  it('equal and share splits sum exactly and follow the stated remainder rule', () => {
    expect(splitEqual(1000n, 3)).toEqual([334n, 333n, 333n]);
    expect(splitByShares(10000n, [1, 2])).toEqual([3333n, 6667n]);
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10n ** 15n }), fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 50 }), (total, shares) => {
        expect(splitByShares(total, shares).reduce((a, b) => a + b, 0n)).toBe(total);
        expect(splitEqual(total, shares.length).reduce((a, b) => a + b, 0n)).toBe(total);
      }),
    );
  });
  it('random split is fair: every position has the same mean (double-average, shuffled)', () => {
    const sums = [0, 0, 0, 0, 0];
    const runs = 4000;
    for (let i = 0; i < runs; i++) splitRandom(10_000n, 5).forEach((s, j) => (sums[j]! += Number(s)));
    for (const s of sums) expect(Math.abs(s / runs - 2000)).toBeLessThan(120);
  });
  it('masks names for verification of payee', () => {
    expect(maskName('张敏')).toBe('张*');
    expect(maskName('Zhang San')).toBe('Z** S**');
  });
});

describe('red packet concurrency on PostgreSQL', async () => {
  const reachable = await postgresReachable();
  it.skipIf(!reachable)('50 parallel claims on 10 shares: exactly 10 winners and the sum equals the total', async () => {
    const t = await startTestHub('postgres', { clock: createFakeClock(Date.now()) });
    try {
      const { transfers, aliases, accounts } = t.hub.transfers;
      const walletB = (await t.hub.participants.get(demoParticipantId('wallet-b')))!;
      const members: { customerId: string }[] = [];
      for (let i = 0; i < 50; i++) {
        await t.hub.db.transaction(async (tx) => {
          const c = await t.hub.customers.create(tx, { type: 'system' }, walletB, { externalId: `rp-${i}`, name: `Member ${i}` });
          if (!c.ok) throw new Error(c.error.code);
          const a = await accounts.openCustomerAccount(tx, { type: 'system' }, walletB.id, c.value.id, 'CNY');
          if (!a.ok) throw new Error(a.error.code);
          const r = await aliases.register(tx, { type: 'system' }, walletB, { customerId: c.value.id, type: 'handle', value: `member_${i}`, accountId: a.value.id });
          if (!r.ok) throw new Error(r.error.code);
          members.push({ customerId: c.value.id });
        });
      }
      const walletA = (await t.hub.participants.get(demoParticipantId('wallet-a')))!;
      const packet = await t.hub.db.transaction((tx) =>
        transfers.createRedPacket(tx, { type: 'system' }, walletA, {
          customerId: t.demo.customers.get('li-at-wallet-a')!,
          totalMinor: 10_000n,
          currency: 'CNY',
          shares: 10,
          mode: 'random',
          members: members.map((_, i) => ({ type: 'handle' as const, value: `member_${i}` })),
        }),
      );
      if (!packet.ok) throw new Error(packet.error.code);
      const results = await Promise.all(
        members.map((m) => t.hub.db.transaction((tx) => transfers.claimRedPacket(tx, { type: 'system' }, walletB.id, packet.value.id, m.customerId))),
      );
      const winners = results.filter((r) => r.ok);
      expect(winners).toHaveLength(10);
      expect(results.filter((r) => !r.ok).every((r) => !r.ok && r.error.code === 'red_packet_empty')).toBe(true);
      expect(winners.reduce((s, r) => s + (r.ok ? r.value.amountMinor : 0n), 0n)).toBe(10_000n);
      let credited = 0n;
      for (const m of members) {
        const acc = await t.hub.transfers.ledger.getAccount(`acc_${m.customerId}_CNY`);
        if (acc.ok) credited += acc.value.creditsPostedMinor;
      }
      expect(credited).toBe(10_000n);
      expect(await t.hub.transfers.ledger.checkInvariants()).toEqual([]);
    } finally {
      await t.close();
    }
  }, 60_000);
});

describe('alias lookup rate limits', () => {
  it('a customer enumerating aliases is stopped; misses cost more than hits', async () => {
    const t = await startTestHub('pglite', { clock: createFakeClock(Date.now()) });
    try {
      const li = t.demo.customers.get('li-at-wallet-a')!;
      let misses = 0;
      let limited = 0;
      for (let i = 0; i < 12; i++) {
        const r = await t.api('wallet-a').get(`/v1/aliases/lookup?customerId=${li}&type=handle&value=guess_${i}`);
        if (r.status === 404) misses++;
        if (r.status === 429) {
          limited++;
          expect(r.body.error.code).toBe('alias_lookup_limited');
          expect(r.headers['retry-after']).toBeDefined();
        }
      }
      expect(misses).toBe(4); // burst 20, a miss costs 5
      expect(limited).toBe(8);
      const zhang = t.demo.customers.get('zhang-at-wallet-b')!;
      let hits = 0;
      for (let i = 0; i < 20; i++) if ((await t.api('wallet-b').get(`/v1/aliases/lookup?customerId=${zhang}&type=handle&value=liwei`)).status === 200) hits++;
      expect(hits).toBe(20);
    } finally {
      await t.close();
    }
  }, 60_000);
});
