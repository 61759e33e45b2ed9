import { expect } from 'vitest';
import type { TestHub } from './hub.ts';

/** Every currency's debits equal its credits, posted and pending alike, and the ledger's invariants hold. */
export async function expectLedgerBalanced(t: TestHub): Promise<void> {
  const rows = await t.hub.db.query<{ currency: string; d: bigint; c: bigint; dp: bigint; cp: bigint }>(
    'select currency, sum(debits_posted)::int8 as d, sum(credits_posted)::int8 as c, sum(debits_pending)::int8 as dp, sum(credits_pending)::int8 as cp from ledger_accounts group by currency',
  );
  for (const r of rows) {
    expect(r.d, r.currency).toBe(r.c);
    expect(r.dp, r.currency).toBe(r.cp);
  }
  expect(await t.hub.ledger.checkInvariants()).toEqual([]);
}

/** The demo fixtures' API call (as a participant: a method and a path) through the test hub. */
export const apiCallOf =
  (t: TestHub) =>
  async (as: string, method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown, headers?: Record<string, string>) => {
    const api = t.api(as);
    return method === 'GET' ? api.get(path, headers) : method === 'POST' ? api.post(path, body, headers) : api.patch(path, body, headers);
  };
