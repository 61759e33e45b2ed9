import type { Actor, AuditService } from '../audit/index.ts';
import type { AccountService } from '../accounts/index.ts';
import type { Ledger } from '../ledger/index.ts';
import type { Account } from '../ledger/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { formatAmount, formatMoney } from '../platform/money.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import type { EventOutbox } from '../webhooks/index.ts';

/**
 * No money from nothing: each participant holds, per currency, a POSITION at the hub — its funding account
 * (`fund_<participant>_<currency>`), the only account money enters its customers' accounts from (deposits, opening
 * balances) and the account a webhook issuer's approved card payments are held on. The position is credited by
 * LIQUIDITY the participant prefunded (a recorded transfer from its account at the settlement bank, mirrored in the
 * ledger as `sbk_<participant>_<currency>`, which the operator records when the bank confirms the funds) and may go
 * below zero only down to the NET DEBIT CAP the operator sets (the account's credit limit, 0 unless set). The ledger
 * enforces it under the position's row lock, so concurrent movements never cross it; a movement that would is refused
 * with `liquidity_exceeded`. (Settlement of positions between participants builds on this.)
 */
export type LiquidityErrorCode = 'liquidity_exceeded' | 'liquidity_invalid' | 'liquidity_request_not_found' | 'liquidity_request_decided';

type LErr = DomainError<LiquidityErrorCode | 'participant_not_found' | 'ledger_rejected'>;

export interface Position {
  readonly participantId: string;
  readonly currency: string;
  readonly accountId: string;
  /** Prefunded liquidity still at the hub: funds in minus funds out. */
  readonly liquidityMinor: bigint;
  /** The position's balance: liquidity minus what went out into customers' accounts (and card holds posted). */
  readonly balanceMinor: bigint;
  /** Held by pending transfers (card authorizations not yet captured). */
  readonly reservedMinor: bigint;
  readonly netDebitCapMinor: bigint;
  /** What may still go out: balance − reserved + cap. */
  readonly availableMinor: bigint;
}

export interface LiquidityService {
  /** The participant's position account in a currency, created (at cap 0) on first use. */
  positionAccount(participantId: string, currency: string): Promise<string>;
  position(participantId: string, currency: string, q?: Queryable): Promise<Position>;
  positions(participantId: string): Promise<Position[]>;
  /** The operator records prefunded liquidity the settlement bank confirmed: settlement mirror → position. */
  fundsIn(tx: Queryable, actor: Actor, input: { participantId: string; currency: string; amountMinor: bigint; transferId: string; reference?: string | undefined }): Promise<Result<Position, LErr>>;
  /** Liquidity back to the participant's settlement bank account: never into the cap, never below what is reserved. */
  fundsOut(tx: Queryable, actor: Actor, input: { participantId: string; currency: string; amountMinor: bigint; transferId: string; reference?: string | undefined }): Promise<Result<Position, LErr>>;
  setNetDebitCap(tx: Queryable, actor: Actor, input: { participantId: string; currency: string; capMinor: bigint }): Promise<Result<Position, LErr>>;
  participantExists(q: Queryable, participantId: string): Promise<boolean>;
}

export function createLiquidityService(deps: { db: Db; clock: Clock; audit: AuditService; events: EventOutbox; ledger: Ledger; accounts: AccountService }): LiquidityService {
  const { db, audit, events, ledger, accounts } = deps;

  const toPosition = (participantId: string, currency: string, pos: Account | undefined, mirror: Account | undefined, accountId: string): Position => {
    const balance = pos === undefined ? 0n : pos.creditsPostedMinor - pos.debitsPostedMinor;
    const reserved = pos?.debitsPendingMinor ?? 0n;
    const cap = pos?.creditLimitMinor ?? 0n;
    return {
      participantId,
      currency,
      accountId,
      liquidityMinor: mirror === undefined ? 0n : mirror.debitsPostedMinor - mirror.creditsPostedMinor,
      balanceMinor: balance,
      reservedMinor: reserved,
      netDebitCapMinor: cap,
      availableMinor: balance - reserved + cap,
    };
  };

  const position = async (participantId: string, currency: string): Promise<Position> => {
    const posId = await accounts.ensureSystemAccount('funding', participantId, currency);
    const mirrorId = await accounts.ensureSystemAccount('settlement', participantId, currency);
    const found = await ledger.getAccounts([posId, mirrorId]);
    return toPosition(participantId, currency, found.find((a) => a.id === posId), found.find((a) => a.id === mirrorId), posId);
  };

  const participantExists = async (q: Queryable, id: string) => (await q.query<{ id: string }>('select id from participants where id = $1', [id])).length === 1;

  const move = async (tx: Queryable, actor: Actor, direction: 'in' | 'out', input: { participantId: string; currency: string; amountMinor: bigint; transferId: string; reference?: string | undefined }): Promise<Result<Position, LErr>> => {
    if (input.amountMinor <= 0n) return err('liquidity_invalid', 'the amount must be positive');
    if (!(await participantExists(tx, input.participantId))) return err('participant_not_found', 'no such participant');
    const posId = await accounts.ensureSystemAccount('funding', input.participantId, input.currency);
    const mirrorId = await accounts.ensureSystemAccount('settlement', input.participantId, input.currency);
    if (direction === 'out') {
      // Liquidity goes back only from what the participant prefunded and has not spent: the cap is credit, not money.
      const [locked] = await tx.query<{ cpo: bigint; dpo: bigint; dp: bigint }>(
        'select credits_posted as cpo, debits_posted as dpo, debits_pending as dp from ledger_accounts where id = $1 for update',
        [posId],
      );
      const free = locked === undefined ? 0n : locked.cpo - locked.dpo - locked.dp;
      if (input.amountMinor > free) return err('liquidity_exceeded', 'the position holds less prefunded liquidity than that', { available: formatMoney(free > 0n ? free : 0n, input.currency) });
    }
    const [moved] = await ledger.applyInTx(tx, [
      direction === 'in'
        ? { id: input.transferId, debitAccountId: mirrorId, creditAccountId: posId, amountMinor: input.amountMinor, currency: input.currency, purpose: 'liquidity_in', metadata: { reference: input.reference ?? null } }
        : { id: input.transferId, debitAccountId: posId, creditAccountId: mirrorId, amountMinor: input.amountMinor, currency: input.currency, purpose: 'liquidity_out', metadata: { reference: input.reference ?? null } },
    ]);
    if (moved === undefined || !moved.ok) return err('ledger_rejected', moved?.ok === false ? moved.error.message : 'the ledger refused the transfer');
    const after = await positionIn(tx, input.participantId, input.currency, posId, mirrorId);
    const amount = formatMoney(input.amountMinor, input.currency);
    await audit.record(tx, { actor, action: direction === 'in' ? 'liquidity.funds_in' : 'liquidity.funds_out', objectType: 'position', objectId: posId, details: { amount, transferId: input.transferId, reference: input.reference ?? null } });
    await events.emit(tx, { participantId: input.participantId, type: direction === 'in' ? 'liquidity.funds_in' : 'liquidity.funds_out', data: { amount, transferId: input.transferId, position: wirePosition(after) } });
    return ok(after);
  };

  /** A position read inside a transaction (what it just changed). */
  const positionIn = async (q: Queryable, participantId: string, currency: string, posId: string, mirrorId: string): Promise<Position> => {
    const rows = await q.query<{ id: string; dp: bigint; dpo: bigint; cpo: bigint; lim: bigint | null }>(
      'select id, debits_pending as dp, debits_posted as dpo, credits_posted as cpo, credit_limit_minor as lim from ledger_accounts where id = any($1::text[])',
      [[posId, mirrorId]],
    );
    const pos = rows.find((r) => r.id === posId);
    const mirror = rows.find((r) => r.id === mirrorId);
    const balance = pos === undefined ? 0n : pos.cpo - pos.dpo;
    const reserved = pos?.dp ?? 0n;
    const cap = pos?.lim ?? 0n;
    return { participantId, currency, accountId: posId, liquidityMinor: mirror === undefined ? 0n : mirror.dpo - mirror.cpo, balanceMinor: balance, reservedMinor: reserved, netDebitCapMinor: cap, availableMinor: balance - reserved + cap };
  };

  return {
    positionAccount: (participantId, currency) => accounts.ensureSystemAccount('funding', participantId, currency),
    participantExists,
    position: (participantId, currency) => position(participantId, currency),
    async positions(participantId) {
      const rows = await db.query<{ currency: string }>(`select distinct currency from ledger_accounts where owner_participant_id = $1 and kind = 'funding' order by currency limit 50`, [participantId]);
      return Promise.all(rows.map((r) => position(participantId, r.currency)));
    },
    fundsIn: (tx, actor, input) => move(tx, actor, 'in', input),
    fundsOut: (tx, actor, input) => move(tx, actor, 'out', input),
    async setNetDebitCap(tx, actor, input) {
      if (input.capMinor < 0n) return err('liquidity_invalid', 'the cap cannot be negative');
      if (!(await participantExists(tx, input.participantId))) return err('participant_not_found', 'no such participant');
      const posId = await accounts.ensureSystemAccount('funding', input.participantId, input.currency);
      const mirrorId = await accounts.ensureSystemAccount('settlement', input.participantId, input.currency);
      // The cap is never set below what the position already uses: the ledger's limit must hold for what it holds.
      const [locked] = await tx.query<{ used: bigint }>('select debits_posted + debits_pending - credits_posted as used from ledger_accounts where id = $1 for update', [posId]);
      const used = locked?.used ?? 0n;
      if (input.capMinor < used) {
        return err('liquidity_invalid', `the position already uses ${formatAmount(used, input.currency)} below zero: the cap cannot be lower until liquidity comes in`, { used: formatMoney(used, input.currency) });
      }
      const set = await ledger.setCreditLimit(tx, posId, input.capMinor);
      if (!set.ok) return err('ledger_rejected', set.error.message);
      const after = await positionIn(tx, input.participantId, input.currency, posId, mirrorId);
      const cap = formatMoney(input.capMinor, input.currency);
      await audit.record(tx, { actor, action: 'liquidity.net_debit_cap_set', objectType: 'position', objectId: posId, details: { cap } });
      await events.emit(tx, { participantId: input.participantId, type: 'liquidity.net_debit_cap_set', data: { position: wirePosition(after) } });
      return ok(after);
    },
  };
}

export function wirePosition(p: Position) {
  return {
    participantId: p.participantId,
    currency: p.currency,
    liquidity: formatMoney(p.liquidityMinor, p.currency),
    balance: formatMoney(p.balanceMinor, p.currency),
    reserved: formatMoney(p.reservedMinor, p.currency),
    netDebitCap: formatMoney(p.netDebitCapMinor, p.currency),
    available: formatMoney(p.availableMinor, p.currency),
  };
}
