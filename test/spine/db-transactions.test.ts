import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Flusher, Queryable } from '../../src/platform/db.ts';
import { availableEngines, openTestDb, type TestDatabase } from '../support/engines.ts';

const engines = await availableEngines();

/** Staged writes (audit, outbox, idempotency answers) must commit or roll back with the transaction that staged them. */
describe.each(engines)('transactions and staged writes on %s', (engine) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDb(engine, { migrate: false });
    await t.db.query('create table staged_probe (n int primary key, txid text not null)');
  });
  afterAll(async () => {
    await t?.drop();
  });

  /** Inserts every staged number with the id of the transaction the flush runs in. */
  const probe: Flusher<number> = {
    flush: (tx: Queryable, items) => tx.query('insert into staged_probe (n, txid) select n, txid_current()::text from unnest($1::int4[]) as n', [items]),
  };

  it('writes staged items in the same transaction, just before its COMMIT, and runs after-commit hooks after it', async () => {
    const events: string[] = [];
    const txid = await t.db.transaction(async (tx) => {
      tx.hooks!.stage(probe, 1);
      tx.hooks!.stage(probe, 2);
      tx.hooks!.afterCommit(() => events.push('after-commit'));
      const [row] = await tx.query<{ txid: string }>('select txid_current()::text as txid');
      // Nothing staged is written yet.
      const [seen] = await tx.query<{ n: bigint }>('select count(*) as n from staged_probe');
      expect(seen?.n).toBe(0n);
      events.push('body done');
      return row!.txid;
    });
    expect(events).toEqual(['body done', 'after-commit']);
    const rows = await t.db.query<{ n: number; txid: string }>('select n, txid from staged_probe order by n');
    expect(rows).toEqual([
      { n: 1, txid },
      { n: 2, txid },
    ]);
  });

  it('drops staged items and after-commit hooks when the transaction rolls back', async () => {
    let hookRan = false;
    await expect(
      t.db.transaction(async (tx) => {
        tx.hooks!.stage(probe, 3);
        tx.hooks!.afterCommit(() => {
          hookRan = true;
        });
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(hookRan).toBe(false);
    const [row] = await t.db.query<{ n: bigint }>('select count(*) as n from staged_probe where n = 3');
    expect(row?.n).toBe(0n);
  });

  it('rolls back the whole transaction when a staged write fails', async () => {
    // 1 exists already: the flush's insert violates the primary key, so the body's own insert must not survive either.
    await expect(
      t.db.transaction(async (tx) => {
        await tx.query('insert into staged_probe (n, txid) values (10, $1)', ['body']);
        tx.hooks!.stage(probe, 1);
      }),
    ).rejects.toThrow();
    const [row] = await t.db.query<{ n: bigint }>('select count(*) as n from staged_probe where n = 10');
    expect(row?.n).toBe(0n);
  });

  it('a nested transaction joins the outer one and stages into it', async () => {
    const txid = await t.db.transaction(async (outer) => {
      await t.db.transaction(async (inner) => {
        expect(inner.hooks).toBe(outer.hooks);
        inner.hooks!.stage(probe, 20);
      });
      const [row] = await outer.query<{ txid: string }>('select txid_current()::text as txid');
      return row!.txid;
    });
    const [row] = await t.db.query<{ txid: string }>('select txid from staged_probe where n = 20');
    expect(row?.txid).toBe(txid);
  });
});
