import type { AccountService } from '../accounts/index.ts';
import { customerAccountId } from '../accounts/index.ts';
import type { Actor, AuditService } from '../audit/index.ts';
import type { CustomerLinkService } from '../customers/index.ts';
import type { Ledger } from '../ledger/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { formatMoney, isCurrency } from '../platform/money.ts';
import { err, ok, type Result } from '../platform/result.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { VErr } from './errors.ts';

/**
 * Savings pots (table savings_pots): a customer moves money from their account at a participant into a named pot and
 * back. Each pot is a ledger account of kind `savings` (the customer's money, which no payment draws from: only
 * `withdraw` moves it out, into the customer's own account in the pot's currency), with an optional goal and an
 * optional lock: before `lockedUntil` a withdrawal is refused with `pot_locked`. Every wallet whose customer record is
 * linked with consent to the pot holder's record sees the pot (read only: `listVisible`).
 */
export interface Pot {
  readonly id: string;
  readonly participantId: string;
  readonly customerId: string;
  readonly name: string;
  readonly currency: string;
  readonly accountId: string;
  readonly goalMinor: bigint | null;
  readonly lockedUntil: Date | null;
  readonly balanceMinor: bigint;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface VisiblePot extends Pot {
  /** Whether the pot is held at the participant asking (false: at a linked record's participant, read only). */
  readonly own: boolean;
}

export interface PotService {
  create(tx: Queryable, actor: Actor, participantId: string, customerId: string, input: { name: string; currency: string; goalMinor: bigint | null; lockedUntil: Date | null }): Promise<Result<Pot, VErr>>;
  get(participantId: string, potId: string, q?: Queryable): Promise<Pot | undefined>;
  /** The customer's pots at this participant and at every participant their record is linked to with consent. */
  listVisible(participantId: string, customerId: string): Promise<VisiblePot[]>;
  /** Money from the customer's account into the pot (`in`) or back (`out`, refused while locked). */
  move(tx: Queryable, actor: Actor, participantId: string, potId: string, direction: 'in' | 'out', amountMinor: bigint, transferId: string): Promise<Result<Pot, VErr>>;
  /** Renames the pot, changes its goal or its lock (a lock still in force may be extended, never shortened or removed). */
  update(tx: Queryable, actor: Actor, participantId: string, potId: string, input: { name?: string | undefined; goalMinor?: bigint | null | undefined; lockedUntil?: Date | null | undefined }): Promise<Result<Pot, VErr>>;
}

interface PotRow {
  id: string;
  participant_id: string;
  customer_id: string;
  name: string;
  currency: string;
  account_id: string;
  goal_minor: string | bigint | null;
  locked_until: Date | null;
  created_at: Date;
  updated_at: Date;
}

const MAX_POTS_PER_CUSTOMER = 20;

export function createPotService(deps: { db: Db; clock: Clock; audit: AuditService; events: EventOutbox; ledger: Ledger; accounts: Pick<AccountService, 'ref'>; customerLinks: Pick<CustomerLinkService, 'linked'> }): PotService {
  const { db, clock, audit, events, ledger } = deps;

  const balances = async (accountIds: string[]): Promise<Map<string, bigint>> => {
    const accounts = await ledger.getAccounts(accountIds);
    return new Map(accounts.map((a) => [a.id, a.creditsPostedMinor - a.debitsPostedMinor]));
  };
  const toPot = (r: PotRow, balanceMinor: bigint): Pot => ({
    id: r.id,
    participantId: r.participant_id,
    customerId: r.customer_id,
    name: r.name,
    currency: r.currency,
    accountId: r.account_id,
    goalMinor: r.goal_minor === null ? null : BigInt(r.goal_minor),
    lockedUntil: r.locked_until,
    balanceMinor,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  });
  const load = async (q: Queryable, participantId: string, potId: string, lock = false): Promise<Pot | undefined> => {
    const [r] = await q.query<PotRow>(`select * from savings_pots where id = $1 and participant_id = $2${lock ? ' for update' : ''}`, [potId, participantId]);
    if (r === undefined) return undefined;
    return toPot(r, (await balances([r.account_id])).get(r.account_id) ?? 0n);
  };
  const wire = (p: Pot) => ({ potId: p.id, customerId: p.customerId, name: p.name, balance: formatMoney(p.balanceMinor, p.currency), goal: p.goalMinor === null ? null : formatMoney(p.goalMinor, p.currency) });

  return {
    async create(tx, actor, participantId, customerId, input) {
      if (!isCurrency(input.currency)) return err('unknown_currency', `unknown currency ${input.currency}`, { field: 'currency' });
      const own = await deps.accounts.ref(tx, customerAccountId(customerId, input.currency));
      if (own === undefined || own.ownerParticipantId !== participantId) return err('account_unavailable', `the customer has no ${input.currency} account here to save from`, { currency: input.currency });
      const [count] = await tx.query<{ n: number }>('select count(*)::int as n from savings_pots where participant_id = $1 and customer_id = $2', [participantId, customerId]);
      if ((count?.n ?? 0) >= MAX_POTS_PER_CUSTOMER) return err('pot_limit_reached', `at most ${MAX_POTS_PER_CUSTOMER} pots per customer`);
      const id = newId('pot');
      const accountId = `acc_${id}`;
      const created = await ledger.createAccount({ id: accountId, ownerParticipantId: participantId, customerId, currency: input.currency, kind: 'savings', debitsMustNotExceedCredits: true });
      if (!created.ok) throw new Error(`pot account: ${created.error.message}`);
      const now = clock.now();
      const [row] = await tx.query<PotRow>(
        `insert into savings_pots (id, participant_id, customer_id, name, currency, account_id, goal_minor, locked_until, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) returning *`,
        [id, participantId, customerId, input.name, input.currency, accountId, input.goalMinor, input.lockedUntil, now],
      );
      const pot = toPot(row!, 0n);
      await audit.record(tx, { actor, action: 'pot.created', objectType: 'savings_pot', objectId: id, details: { customerId, currency: input.currency, goalMinor: input.goalMinor?.toString() ?? null, lockedUntil: input.lockedUntil?.toISOString() ?? null } });
      return ok(pot);
    },

    get: (participantId, potId, q = db) => load(q, participantId, potId),

    async listVisible(participantId, customerId) {
      const linked = await deps.customerLinks.linked(participantId, customerId);
      const records = [{ participantId, customerId }, ...linked];
      const rows = await db.query<PotRow>(
        `select s.* from savings_pots s
          where (s.participant_id, s.customer_id) in (select * from unnest($1::text[], $2::text[])) order by s.created_at, s.id`,
        [records.map((r) => r.participantId), records.map((r) => r.customerId)],
      );
      const b = await balances(rows.map((r) => r.account_id));
      return rows.map((r) => ({ ...toPot(r, b.get(r.account_id) ?? 0n), own: r.participant_id === participantId }));
    },

    async move(tx, actor, participantId, potId, direction, amountMinor, transferId) {
      const pot = await load(tx, participantId, potId, true);
      if (pot === undefined) return err('pot_not_found', 'no such savings pot');
      const now = clock.now();
      if (direction === 'out' && pot.lockedUntil !== null && now < pot.lockedUntil) {
        return err('pot_locked', `the pot is locked until ${pot.lockedUntil.toISOString()}`, { lockedUntil: pot.lockedUntil.toISOString() });
      }
      const main = customerAccountId(pot.customerId, pot.currency);
      const [from, to] = direction === 'in' ? [main, pot.accountId] : [pot.accountId, main];
      const [r] = await ledger.applyInTx(tx, [{ id: transferId, debitAccountId: from, creditAccountId: to, amountMinor, currency: pot.currency, purpose: direction === 'in' ? 'pot_deposit' : 'pot_withdrawal', metadata: { potId } }]);
      if (r !== undefined && !r.ok) {
        if (r.error.code === 'insufficient_funds') return err('insufficient_funds', direction === 'in' ? 'the account does not hold enough money' : 'the pot does not hold that much', { available: formatMoney(direction === 'out' ? pot.balanceMinor : 0n, pot.currency).amount });
        if (r.error.code === 'account_not_found') return err('account_unavailable', `the customer has no ${pot.currency} account here`);
        return err('ledger_rejected', r.error.message);
      }
      const after = { ...pot, balanceMinor: pot.balanceMinor + (direction === 'in' ? amountMinor : -amountMinor), updatedAt: now };
      await tx.query('update savings_pots set updated_at = $2 where id = $1', [potId, now]);
      await audit.record(tx, { actor, action: direction === 'in' ? 'pot.deposited' : 'pot.withdrawn', objectType: 'savings_pot', objectId: potId, details: { amountMinor: amountMinor.toString(), transferId } });
      await events.emit(tx, { participantId, type: direction === 'in' ? 'pot.deposited' : 'pot.withdrawn', data: { ...wire(after), amount: formatMoney(amountMinor, pot.currency) } });
      if (direction === 'in' && after.goalMinor !== null && pot.balanceMinor < after.goalMinor && after.balanceMinor >= after.goalMinor) {
        await events.emit(tx, { participantId, type: 'pot.goal_reached', data: wire(after) });
      }
      return ok(after);
    },

    async update(tx, actor, participantId, potId, input) {
      const pot = await load(tx, participantId, potId, true);
      if (pot === undefined) return err('pot_not_found', 'no such savings pot');
      const now = clock.now();
      // A lock is a promise the customer made to themselves: while it holds it may be extended, never shortened.
      if (input.lockedUntil !== undefined && pot.lockedUntil !== null && now < pot.lockedUntil && (input.lockedUntil === null || input.lockedUntil < pot.lockedUntil)) {
        return err('pot_locked', `the pot is locked until ${pot.lockedUntil.toISOString()}: a lock may be extended, not shortened`, { lockedUntil: pot.lockedUntil.toISOString() });
      }
      const name = input.name ?? pot.name;
      const goal = input.goalMinor === undefined ? pot.goalMinor : input.goalMinor;
      const lockedUntil = input.lockedUntil === undefined ? pot.lockedUntil : input.lockedUntil;
      await tx.query('update savings_pots set name = $2, goal_minor = $3, locked_until = $4, updated_at = $5 where id = $1', [potId, name, goal, lockedUntil, now]);
      await audit.record(tx, { actor, action: 'pot.updated', objectType: 'savings_pot', objectId: potId, details: { goalMinor: goal?.toString() ?? null, lockedUntil: lockedUntil?.toISOString() ?? null } });
      return ok({ ...pot, name, goalMinor: goal, lockedUntil, updatedAt: now });
    },
  };
}
