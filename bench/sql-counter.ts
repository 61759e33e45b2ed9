import type { Db, Queryable, Tx } from '../src/platform/db.ts';

/** Statements and transactions that went through a Db, with the most frequent statement texts and their mean time. */
export interface SqlCounter {
  statements: number;
  transactions: number;
  readonly byText: Map<string, { n: number; ms: number }>;
  reset(): void;
}

/**
 * Wraps a Db so that every statement (top level or inside a transaction) is counted and timed. The wrapper keeps the
 * transaction's hooks, so staged writes (audit, outbox) still go out with the COMMIT; those flush statements do not
 * pass through the wrapper and are not counted (they are one per kind per transaction).
 */
export function countingDb(inner: Db): { db: Db; counter: SqlCounter } {
  const counter: SqlCounter = {
    statements: 0,
    transactions: 0,
    byText: new Map(),
    reset() {
      this.statements = 0;
      this.transactions = 0;
      this.byText.clear();
    },
  };
  const counted = (q: Queryable): Queryable => ({
    async query<T extends object>(text: string, params?: readonly unknown[]) {
      const t0 = performance.now();
      try {
        return await q.query<T>(text, params);
      } finally {
        counter.statements++;
        const key = text.replace(/\s+/g, ' ').slice(0, 110);
        const e = counter.byText.get(key);
        if (e === undefined) counter.byText.set(key, { n: 1, ms: performance.now() - t0 });
        else {
          e.n++;
          e.ms += performance.now() - t0;
        }
      }
    },
    ...(q.hooks !== undefined ? { hooks: q.hooks } : {}),
  });
  const top = counted(inner);
  const db: Db = {
    engine: inner.engine,
    query: (text, params) => top.query(text, params),
    transaction: (fn, options) =>
      inner.transaction((tx: Tx) => {
        counter.transactions++;
        return fn(counted(tx));
      }, options),
    exec: (script) => inner.exec(script),
    listen: (channel, onNotify, onReconnect) => inner.listen(channel, onNotify, onReconnect),
    session: async () => {
      const session = await inner.session();
      return { ...counted(session), release: () => session.release() };
    },
    close: () => inner.close(),
  };
  return { db, counter };
}
