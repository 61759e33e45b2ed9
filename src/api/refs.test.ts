import { describe, expect, it } from 'vitest';
import type { Queryable } from '../platform/db.ts';
import { createRefRegistry, type Holder } from './refs.ts';

/** A registry over a fake table: counts the statements the ownership check sends. */
function registryWith(rows: Record<string, Holder[]>, options: { immutable: boolean }) {
  const registry = createRefRegistry();
  let queries = 0;
  registry.define('quote', {
    notFound: { code: 'quote_not_found', message: 'no such quote' },
    immutable: options.immutable,
    async holders(_q, ids) {
      queries++;
      return new Map(ids.flatMap((id) => (rows[id] === undefined ? [] : [[id, rows[id]] as const])));
    },
  });
  return { registry, queries: () => queries };
}

const q = {} as Queryable;

describe('ownership registry: holders learned after a commit', () => {
  it('answers from what it was told, with no query, and still refuses every other scope', async () => {
    const { registry, queries } = registryWith({}, { immutable: true });
    registry.learn('quote', 'q1', [{ participantId: 'wallet-a', customerId: 'c1' }]);
    expect(await registry.check(q, { operator: false, participantId: 'wallet-a', customerId: 'c1' }, [{ kind: 'quote', id: 'q1' }])).toBeUndefined();
    expect((await registry.check(q, { operator: false, participantId: 'wallet-a', customerId: 'c2' }, [{ kind: 'quote', id: 'q1' }]))?.code).toBe('quote_not_found');
    expect((await registry.check(q, { operator: false, participantId: 'wallet-b', customerId: undefined }, [{ kind: 'quote', id: 'q1' }]))?.code).toBe('quote_not_found');
    expect(queries()).toBe(0);
    // An id it was not told about is looked up (and, absent, refused).
    expect((await registry.check(q, { operator: false, participantId: 'wallet-a', customerId: 'c1' }, [{ kind: 'quote', id: 'q2' }]))?.code).toBe('quote_not_found');
    expect(queries()).toBe(1);
  });

  it('refuses to learn holders of a kind whose holders can change', () => {
    const { registry } = registryWith({}, { immutable: false });
    expect(() => registry.learn('quote', 'q1', [{ participantId: 'wallet-a', customerId: null }])).toThrow(/not an immutable kind/);
  });
});
