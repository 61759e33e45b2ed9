import type { Db } from '../../src/platform/db.ts';
import { createFakeClock, type FakeClock } from '../../src/platform/clock.ts';
import { createLedger, type Ledger } from '../../src/ledger/ledger.ts';
import type { Account, NewAccount, TransferInput, TransferResult } from '../../src/ledger/types.ts';
import { openTestDb, type Engine, type TestDatabase } from '../support/engines.ts';

export const PARTICIPANT_ID = 'par_ledger_test';

export async function insertParticipant(db: Db, id: string = PARTICIPANT_ID): Promise<void> {
  await db.query(
    `insert into participants (id, kind, name, country, currencies, webhook_secret_sealed, status, created_at, updated_at)
     values ($1, 'wallet', 'Ledger test', 'CN', '{CNY,USD}', 'sealed', 'active', now(), now()) on conflict do nothing`,
    [id],
  );
}

export interface LedgerFixture {
  readonly testDb: TestDatabase;
  readonly db: Db;
  readonly clock: FakeClock;
  readonly ledger: Ledger;
  account(overrides?: Partial<NewAccount>): Promise<Account>;
  /** applyInTx (the ledger's one way in) in a transaction of its own, committed. */
  apply(transfers: readonly TransferInput[], ledger?: Ledger): Promise<TransferResult[]>;
  /** Credits `amountMinor` to the account from a fresh funding account (no limits). */
  fund(accountId: string, amountMinor: bigint, currency?: string): Promise<void>;
  drop(): Promise<void>;
}

let counter = 0;

export async function ledgerFixture(engine: Engine): Promise<LedgerFixture> {
  const testDb = await openTestDb(engine);
  await insertParticipant(testDb.db);
  const clock = createFakeClock();
  const ledger = createLedger({ db: testDb.db, clock });
  const apply = (transfers: readonly TransferInput[], via: Ledger = ledger): Promise<TransferResult[]> => testDb.db.transaction((tx) => via.applyInTx(tx, transfers));
  const fundingByCurrency = new Map<string, string>();
  const account = async (overrides: Partial<NewAccount> = {}): Promise<Account> => {
    const created = await ledger.createAccount({ ownerParticipantId: PARTICIPANT_ID, currency: 'CNY', kind: 'customer', ...overrides });
    if (!created.ok) throw new Error(`account: ${created.error.code}`);
    return created.value;
  };
  return {
    testDb,
    db: testDb.db,
    clock,
    ledger,
    account,
    apply,
    async fund(accountId, amountMinor, currency = 'CNY') {
      let funding = fundingByCurrency.get(currency);
      if (funding === undefined) {
        funding = (await account({ kind: 'funding', currency })).id;
        fundingByCurrency.set(currency, funding);
      }
      const [result] = await apply([{ id: `fund_${++counter}_${accountId}`, debitAccountId: funding, creditAccountId: accountId, amountMinor, currency, purpose: 'funding' }]);
      if (result?.ok !== true) throw new Error(`fund: ${JSON.stringify(result)}`);
    },
    async drop() {
      await testDb.drop();
    },
  };
}

/** Sum over accounts of credits_posted − debits_posted (credit-normal balance). */
export function creditBalance(a: Account): bigint {
  return a.creditsPostedMinor - a.debitsPostedMinor;
}
