import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionLost, databaseUnavailable, DatabaseDeadlineError, openPostgres, sqlState, type Db, type Flusher, type Queryable } from '../../src/platform/db.ts';
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

/**
 * postgres.js 3.4.9 kept a closed session's query and error on the connection object: the first statement on the
 * reconnected session was failed with the old session's FATAL without being run (patches/postgres+3.4.9.patch).
 */
describe.runIf(engines.includes('postgres'))('PostgreSQL ending a connection', () => {
  let t: TestDatabase;
  let admin: Db;
  beforeAll(async () => {
    // One connection: the statement after the loss must go to the very connection object that lost its session.
    t = await openTestDb('postgres', { migrate: false, maxConnections: 1 });
    admin = openPostgres({ url: t.url!, maxConnections: 1 });
  });
  afterAll(async () => {
    await admin?.close();
    await t?.drop();
  });

  /** Ends this database's session running `pg_sleep` (found by its query text) once it is running. */
  async function endSleepingSession(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const rows = await admin.query<{ ended: boolean }>(
        `select pg_terminate_backend(pid) as ended from pg_stat_activity where datname = current_database() and query like 'select pg_sleep%' and pid <> pg_backend_pid()`,
      );
      if (rows.some((r) => r.ended)) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error('the sleeping session never showed up');
  }

  it('a statement after the server ended the session runs on a new one, and is not failed with the old session’s error', async () => {
    const sleeping = t.db.query('select pg_sleep(30)').then(
      () => null,
      (error: unknown) => error,
    );
    await endSleepingSession();
    expect(connectionLost(await sleeping)).toBe(true);
    const [next] = await t.db.query<{ answer: number }>('select 42 as answer');
    expect(next).toMatchObject({ answer: 42 });
    // And the same once more from inside a transaction: the next transaction runs whole.
    const inTx = t.db
      .transaction(async (tx) => {
        await tx.query('select pg_sleep(30)');
      })
      .then(
        () => null,
        (error: unknown) => error,
      );
    await endSleepingSession();
    expect(connectionLost(await inTx)).toBe(true);
    const answer = await t.db.transaction(async (tx) => (await tx.query<{ answer: number }>('select 43 as answer'))[0]?.answer);
    expect(answer).toBe(43);
  });
});

/**
 * Liveness on PostgreSQL: nothing waits for ever on a connection. postgres.js 3.4.9 lost a reserve() that was queued
 * when the connection it waited for was ended by the server (porsager/postgres#1195): the transaction, and a batcher
 * behind it, waited for good (patches/postgres+3.4.9.patch). Deadlines bound the rest (db.ts, DbTimeouts).
 */
describe.runIf(engines.includes('postgres'))('PostgreSQL: every wait is bounded', () => {
  let t: TestDatabase;
  let admin: Db;
  beforeAll(async () => {
    t = await openTestDb('postgres', { migrate: false, maxConnections: 1 });
    admin = openPostgres({ url: t.url!, maxConnections: 1 });
  });
  afterAll(async () => {
    await admin?.close();
    await t?.drop();
  });

  const endSessionsRunning = async (pattern: string) => {
    for (let i = 0; i < 200; i++) {
      const rows = await admin.query<{ ended: boolean }>(
        `select pg_terminate_backend(pid) as ended from pg_stat_activity where datname = current_database() and query like $1 and pid <> pg_backend_pid()`,
        [pattern],
      );
      if (rows.some((r) => r.ended)) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error('the session never showed up');
  };

  it('a transaction waiting for the only connection gets one after the server ends it (the reserve is not lost)', async () => {
    const holder = t.db.transaction((tx) => tx.query('select pg_sleep(30)')).then(
      () => null,
      (error: unknown) => error,
    );
    for (let i = 0; i < 200; i++) {
      const [seen] = await admin.query<{ n: bigint }>(`select count(*) as n from pg_stat_activity where datname = current_database() and query like 'select pg_sleep(30)%'`);
      if (seen?.n === 1n) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // Queued behind the holder (one connection); then the server ends the holder's session.
    const waiting = t.db.transaction(async (tx) => (await tx.query<{ answer: number }>('select 7 as answer'))[0]?.answer);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    await endSessionsRunning('select pg_sleep(30)%');
    expect(connectionLost(await holder)).toBe(true);
    expect(await waiting).toBe(7);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('a transaction past its deadline is answered with DB_DEADLINE (503 at the edge), and its connection comes back to the pool', async () => {
    const short = openPostgres({ url: t.url!, maxConnections: 1, timeouts: { transactionMs: 300 } });
    try {
      const started = performance.now();
      const outcome = await short.transaction((tx) => tx.query('select pg_sleep(1)')).then(
        () => null,
        (error: unknown) => error,
      );
      expect(outcome).toBeInstanceOf(DatabaseDeadlineError);
      expect(databaseUnavailable(outcome)).toBe(true);
      expect(performance.now() - started).toBeLessThan(1_000);
      // The abandoned transaction ends on its own (ROLLBACK), and its connection is given back: the next one runs.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const [row] = await short.transaction((tx) => tx.query<{ answer: number }>('select 8 as answer'));
      expect(row?.answer).toBe(8);
    } finally {
      await short.close();
    }
  });

  it('a statement past the server’s statement timeout fails as unavailable, and the next one runs', async () => {
    const short = openPostgres({ url: t.url!, maxConnections: 1, timeouts: { statementMs: 200 } });
    try {
      const outcome = await short.query('select pg_sleep(2)').then(
        () => null,
        (error: unknown) => error,
      );
      expect(sqlState(outcome)).toBe('57014');
      expect(databaseUnavailable(outcome)).toBe(true);
      const [row] = await short.query<{ answer: number }>('select 9 as answer');
      expect(row?.answer).toBe(9);
    } finally {
      await short.close();
    }
  });
});
