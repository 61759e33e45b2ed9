import { Type } from '@sinclair/typebox';
import type { FastifyBaseLogger } from 'fastify';
import { actorOf, principalOf } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import { AmountString, CurrencyCode, Money, Strict, Timestamp } from '../api/index.ts';
import type { AccountService } from '../accounts/index.ts';
import type { Actor, AuditService } from '../audit/index.ts';
import type { CustomerService } from '../customers/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import { formatMoney, isCurrency, parseAmount, type MoneyError } from '../platform/money.ts';
import { err, ok, type Result } from '../platform/result.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import { linkedRecords, spendingOf } from './history.ts';

/**
 * Budgets and low-balance alerts, kept at the hub per customer and currency (table customer_budgets): a monthly
 * spending limit (spending as GET /v1/history/spending counts it, over every record verified as the same person) and a
 * balance below which the customer wants to hear. Each crossing is told ONCE to the customer's wallet by webhook —
 * `budget.exceeded` once per month, `budget.low_balance` once until the balance is back at or above the threshold —
 * the alert state lives in the row, changed in the transaction that emits the event. Crossings are found when the
 * customer saves a budget and by a background sweep over the budgets least recently checked (`sweep`).
 */

type Log = Pick<FastifyBaseLogger, 'warn'>;

export interface Budget {
  readonly currency: string;
  readonly monthlyLimitMinor: bigint | null;
  readonly lowBalanceMinor: bigint | null;
  readonly updatedAt: Date;
}

export interface BudgetStatus extends Budget {
  readonly month: string;
  readonly spentMinor: bigint;
  readonly availableMinor: bigint;
  readonly overBudget: boolean;
  readonly nearBudget: boolean;
  readonly lowBalance: boolean;
}

export interface BudgetService {
  /** The customer's budgets with this month's spending and the balance available in each currency. */
  status(participantId: string, customerId: string, log?: Log): Promise<BudgetStatus[]>;
  /** Sets (or, with neither limit, removes) the budget of one currency, then checks it at once; answers its status. */
  set(actor: Actor, participantId: string, customerId: string, input: { currency: string; monthlyLimit: string | null; lowBalance: string | null }): Promise<Result<BudgetStatus | null, MoneyError>>;
  /** Notifies the crossings of one customer's budgets (each told once). */
  check(participantId: string, customerId: string, log?: Log): Promise<void>;
  /** Checks the budgets least recently checked and notifies crossings; returns how many it checked. */
  sweep(limit?: number): Promise<number>;
}

interface Row {
  participant_id: string;
  customer_id: string;
  currency: string;
  monthly_limit_minor: string | bigint | null;
  low_balance_minor: string | bigint | null;
  budget_alerted_month: string | null;
  low_alerted: boolean;
  updated_at: Date;
}

const big = (v: string | bigint | null): bigint | null => (v === null ? null : BigInt(v));
const toBudget = (r: Row): Budget => ({ currency: r.currency, monthlyLimitMinor: big(r.monthly_limit_minor), lowBalanceMinor: big(r.low_balance_minor), updatedAt: r.updated_at });
const COLUMNS = 'participant_id, customer_id, currency, monthly_limit_minor, low_balance_minor, budget_alerted_month, low_alerted, updated_at';
/** "Close to the budget" from 80 % of it. */
const NEAR_PERCENT = 80n;
const SWEEP_BATCH = 200;

export function createBudgetService(deps: { db: Db; clock: Clock; audit: AuditService; events: EventOutbox; accounts: Pick<AccountService, 'listForCustomer'> }): BudgetService {
  const { db, clock, audit, events, accounts } = deps;
  const thisMonth = () => clock.now().toISOString().slice(0, 7);

  /** This month's spending and the available balance per currency, for one customer (read outside any lock). */
  const figures = async (participantId: string, customerId: string, log: Log) => {
    const records = await linkedRecords(db, participantId, customerId, log);
    const month = thisMonth();
    const spent = new Map<string, bigint>();
    for (const s of await spendingOf(db, records, 'month', undefined, log)) if (s.key === month) spent.set(s.currency, (spent.get(s.currency) ?? 0n) + s.minor);
    const available = new Map<string, bigint>();
    for (const l of await accounts.listForCustomer(participantId, customerId)) {
      const a = l.account;
      available.set(a.currency, (available.get(a.currency) ?? 0n) + a.creditsPostedMinor - a.debitsPostedMinor - a.debitsPendingMinor);
    }
    return { month, spent, available };
  };

  const judge = (b: Budget, spentMinor: bigint, availableMinor: bigint, month: string): BudgetStatus => ({
    ...b,
    month,
    spentMinor,
    availableMinor,
    overBudget: b.monthlyLimitMinor !== null && spentMinor > b.monthlyLimitMinor,
    nearBudget: b.monthlyLimitMinor !== null && spentMinor <= b.monthlyLimitMinor && spentMinor * 100n >= b.monthlyLimitMinor * NEAR_PERCENT,
    lowBalance: b.lowBalanceMinor !== null && availableMinor < b.lowBalanceMinor,
  });

  /**
   * Notifies the crossings of one customer's budgets. The figures are read first, outside the transaction (no lock is
   * held while the spending is summed); then the rows are locked (skipped when another hub process is checking them) and
   * the alert state changes with the event in one transaction, so a crossing is told once.
   */
  const check = async (participantId: string, customerId: string, log: Log = console): Promise<void> => {
    const f = await figures(participantId, customerId, log);
    await db.transaction(async (tx) => {
      const rows = await tx.query<Row>(`select ${COLUMNS} from customer_budgets where participant_id = $1 and customer_id = $2 for update skip locked`, [participantId, customerId]);
      for (const r of rows) {
        const s = judge(toBudget(r), f.spent.get(r.currency) ?? 0n, f.available.get(r.currency) ?? 0n, f.month);
        let alertedMonth = r.budget_alerted_month;
        let lowAlerted = r.low_alerted;
        if (s.overBudget && s.monthlyLimitMinor !== null && alertedMonth !== f.month) {
          alertedMonth = f.month;
          await events.emit(tx, {
            participantId,
            type: 'budget.exceeded',
            data: { customerId, currency: r.currency, month: f.month, spent: formatMoney(s.spentMinor, r.currency), monthlyLimit: formatMoney(s.monthlyLimitMinor, r.currency) },
          });
        }
        if (s.lowBalance && s.lowBalanceMinor !== null && !lowAlerted) {
          lowAlerted = true;
          await events.emit(tx, {
            participantId,
            type: 'budget.low_balance',
            data: { customerId, currency: r.currency, available: formatMoney(s.availableMinor, r.currency), threshold: formatMoney(s.lowBalanceMinor, r.currency) },
          });
        } else if (!s.lowBalance && lowAlerted) lowAlerted = false;
        await tx.query('update customer_budgets set budget_alerted_month = $4, low_alerted = $5, checked_at = $6 where participant_id = $1 and customer_id = $2 and currency = $3', [
          participantId,
          customerId,
          r.currency,
          alertedMonth,
          lowAlerted,
          clock.now(),
        ]);
      }
    });
  };

  const status: BudgetService['status'] = async (participantId, customerId, log = console) => {
    const rows = await db.query<Row>(`select ${COLUMNS} from customer_budgets where participant_id = $1 and customer_id = $2 order by currency`, [participantId, customerId]);
    if (rows.length === 0) return [];
    const f = await figures(participantId, customerId, log);
    return rows.map((r) => judge(toBudget(r), f.spent.get(r.currency) ?? 0n, f.available.get(r.currency) ?? 0n, f.month));
  };

  return {
    status,
    check,

    async set(actor, participantId, customerId, input) {
      if (!isCurrency(input.currency)) return err('unknown_currency', `unknown currency ${input.currency}`, { field: 'currency' });
      const parse = (v: string | null, field: string): Result<bigint | null, MoneyError> => {
        if (v === null) return ok(null);
        const r = parseAmount(v, input.currency, { field });
        return r.ok ? ok(r.value) : r;
      };
      const limit = parse(input.monthlyLimit, 'monthlyLimit');
      if (!limit.ok) return limit;
      const low = parse(input.lowBalance, 'lowBalance');
      if (!low.ok) return low;
      const now = clock.now();
      const saved = await db.transaction(async (tx): Promise<Budget | null> => {
        let saved: Budget | null = null;
        if (limit.value === null && low.value === null) {
          await tx.query('delete from customer_budgets where participant_id = $1 and customer_id = $2 and currency = $3', [participantId, customerId, input.currency]);
        } else {
          // A changed threshold is a new promise: its crossing is told again.
          const [row] = await tx.query<Row>(
            `insert into customer_budgets (participant_id, customer_id, currency, monthly_limit_minor, low_balance_minor, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $6)
             on conflict (participant_id, customer_id, currency) do update
               set monthly_limit_minor = excluded.monthly_limit_minor, low_balance_minor = excluded.low_balance_minor, updated_at = excluded.updated_at,
                   budget_alerted_month = case when customer_budgets.monthly_limit_minor is distinct from excluded.monthly_limit_minor then null else customer_budgets.budget_alerted_month end,
                   low_alerted = case when customer_budgets.low_balance_minor is distinct from excluded.low_balance_minor then false else customer_budgets.low_alerted end
             returning ${COLUMNS}`,
            [participantId, customerId, input.currency, limit.value, low.value, now],
          );
          if (row === undefined) throw new Error('budget upsert returned no row');
          saved = toBudget(row);
        }
        await audit.record(tx, {
          actor,
          action: saved === null ? 'budget.removed' : 'budget.set',
          objectType: 'customer',
          objectId: customerId,
          details: { currency: input.currency, monthlyLimit: input.monthlyLimit, lowBalance: input.lowBalance },
        });
        return saved;
      });
      if (saved === null) return ok(null);
      await check(participantId, customerId);
      return ok((await status(participantId, customerId)).find((b) => b.currency === input.currency) ?? null);
    },

    async sweep(limit = SWEEP_BATCH) {
      const due = await db.query<{ participant_id: string; customer_id: string }>(
        `select participant_id, customer_id from customer_budgets group by participant_id, customer_id order by min(checked_at) nulls first limit $1`,
        [limit],
      );
      for (const d of due) await check(d.participant_id, d.customer_id);
      return due.length;
    },
  };
}

const BudgetSchema = Type.Object(
  {
    currency: CurrencyCode,
    monthlyLimit: Type.Union([Money, Type.Null()], { description: 'Spending per calendar month (UTC) the customer wants to stay under' }),
    lowBalance: Type.Union([Money, Type.Null()], { description: 'Tell the customer when the available balance falls below this' }),
    month: Type.String({ description: 'The month the figures are for, YYYY-MM (UTC)' }),
    spent: Money,
    available: Money,
    overBudget: Type.Boolean(),
    nearBudget: Type.Boolean({ description: 'At or above 80 % of the budget, not over it' }),
    lowBalanceReached: Type.Boolean(),
    updatedAt: Timestamp,
  },
  { $id: 'CustomerBudget', additionalProperties: false },
);

const wireStatus = (s: BudgetStatus) => ({
  currency: s.currency,
  monthlyLimit: s.monthlyLimitMinor === null ? null : formatMoney(s.monthlyLimitMinor, s.currency),
  lowBalance: s.lowBalanceMinor === null ? null : formatMoney(s.lowBalanceMinor, s.currency),
  month: s.month,
  spent: formatMoney(s.spentMinor, s.currency),
  available: formatMoney(s.availableMinor, s.currency),
  overBudget: s.overBudget,
  nearBudget: s.nearBudget,
  lowBalanceReached: s.lowBalance,
  updatedAt: s.updatedAt.toISOString(),
});

const CUSTOMER = { customer: true } as const;
const sec = [{ participant: [] }];

export function registerBudgetRoutes(app: HttpServer, deps: { budgets: BudgetService; customers: CustomerService }): void {
  const { budgets, customers } = deps;
  app.addSchema(BudgetSchema);

  app.get(
    '/v1/budgets',
    {
      config: CUSTOMER,
      schema: {
        tags: ['history'],
        summary: "Your customer's budgets and low-balance alerts, with this month's spending and the available balance per currency",
        description: 'Spending is counted as GET /v1/history/spending counts it (every record verified as the same person). Another participant’s customer answers 404.',
        security: sec,
        querystring: Strict({ customerId: Ref('customer', 'Your customer') }),
        response: { 200: Type.Object({ items: Type.Array(Type.Ref(BudgetSchema)) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const participantId = principalOf(request).participantId;
      if ((await customers.get(participantId, request.query.customerId)) === undefined) return reply.fail({ code: 'customer_not_found', message: 'no such customer' });
      return { items: (await budgets.status(participantId, request.query.customerId, request.log)).map(wireStatus) };
    },
  );

  app.post(
    '/v1/budgets',
    {
      // Setting a value is idempotent by itself (the same request twice leaves the same budget): no Idempotency-Key runner.
      config: CUSTOMER,
      schema: {
        tags: ['history'],
        summary: "Set your customer's monthly budget and low-balance alert in one currency (both null removes them)",
        description:
          'Kept at the hub. When spending this month passes the budget, your webhook receives `budget.exceeded` (once per month); when the available ' +
          'balance falls below the alert, `budget.low_balance` (once, until the balance is back at or above it). A changed threshold is told again when crossed.',
        security: sec,
        body: Strict({
          customerId: Ref('customer', 'Your customer'),
          currency: CurrencyCode,
          monthlyLimit: Type.Union([AmountString, Type.Null()], { description: 'Decimal string in the currency, or null for no budget' }),
          lowBalance: Type.Union([AmountString, Type.Null()], { description: 'Decimal string in the currency, or null for no alert' }),
        }),
        response: { 200: Type.Object({ budget: Type.Union([Type.Ref(BudgetSchema), Type.Null()]) }, { additionalProperties: false }) },
      },
    },
    async (request, reply) => {
      const participantId = principalOf(request).participantId;
      const { customerId, currency, monthlyLimit, lowBalance } = request.body;
      if ((await customers.get(participantId, customerId)) === undefined) return reply.fail({ code: 'customer_not_found', message: 'no such customer' });
      const r = await budgets.set(actorOf(request, customerId), participantId, customerId, { currency, monthlyLimit, lowBalance });
      if (!r.ok) return reply.fail(r.error);
      return { budget: r.value === null ? null : wireStatus(r.value) };
    },
  );
}
