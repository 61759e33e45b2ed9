import { describe, expect, it } from 'vitest';
import { createCoalescer } from './coalescer.ts';

describe('coalescer', () => {
  it('answers the loads of one turn with one call, then everything that arrived meanwhile with the next, in order, within maxBatch', async () => {
    const calls: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const c = createCoalescer<number, string>(
      async (keys) => {
        calls.push([...keys]);
        if (calls.length === 1) await gate;
        return keys.map((k) => `v${k}`);
      },
      { maxBatch: 3 },
    );
    const first = [0, 1].map((k) => c.load(k));
    // The first batch is out (the loop turned) and waits: these form the next ones.
    await new Promise((r) => setImmediate(r));
    const rest = [2, 3, 4, 5].map((k) => c.load(k));
    release();
    expect(await Promise.all(first)).toEqual(['v0', 'v1']);
    expect(await Promise.all(rest)).toEqual(['v2', 'v3', 'v4', 'v5']);
    expect(calls).toEqual([[0, 1], [2, 3, 4], [5]]);
  });

  it('rejects every load of a failed batch, and keeps serving later ones', async () => {
    let fail = true;
    const c = createCoalescer<number, number>(
      async (keys) => {
        if (fail) throw new Error('database down');
        return keys.map((k) => k * 2);
      },
      { maxBatch: 10 },
    );
    await expect(c.load(1)).rejects.toThrow('database down');
    fail = false;
    expect(await c.load(2)).toBe(4);
  });

  it('refuses a loader that does not answer every key', async () => {
    const c = createCoalescer<number, number>(async () => [], { maxBatch: 10 });
    await expect(c.load(1)).rejects.toThrow('answer every key');
  });
});
