import { positionLimit, type AccountService } from '../accounts/index.ts';
import type { Actor, AuditService } from '../audit/index.ts';
import { cardIdOfCreditAccount, type Card, type CardService, type CreditView, type WalletTokenService } from '../cards/index.ts';
import type { Ledger, Account } from '../ledger/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { currencyMinorUnit, formatMoney, isCurrency } from '../platform/money.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import { interparticipantLegs, positionAccounts, type SettlementService } from '../settlement/index.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { CreditErrorCode } from './errors.ts';

type CErr = DomainError<CreditErrorCode>;

/** Days from a statement to its due date, unless the issuer names another. */
export const DEFAULT_DUE_DAYS = 21;
/** The minimum payment: this share of the balance (rounded up), at least MINIMUM_FLOOR_MAJOR units, at most all of it. */
export const MINIMUM_PERCENT = 5n;
export const MINIMUM_FLOOR_MAJOR = 10n;

export type StatementStatus = 'due' | 'minimum_paid' | 'paid' | 'overdue';

export interface Statement {
  readonly id: string;
  readonly issuerParticipantId: string;
  readonly customerId: string;
  readonly cardId: string | null;
  readonly accountId: string;
  readonly currency: string;
  readonly periodStart: Date | null;
  readonly periodEnd: Date;
  readonly balanceMinor: bigint;
  readonly minimumMinor: bigint;
  readonly paidMinor: bigint;
  readonly dueAt: Date;
  readonly status: StatementStatus;
  readonly createdAt: Date;
}

export interface Repayment {
  readonly id: string;
  readonly accountId: string;
  readonly sourceAccountId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  /** What is still owed after it. */
  readonly owedMinor: bigint;
  readonly statement: Statement | null;
  readonly createdAt: Date;
}

export interface CreditLine {
  readonly accountId: string;
  readonly issuerParticipantId: string;
  readonly customerId: string;
  readonly view: CreditView;
}

interface StatementRow {
  id: string;
  issuer_participant_id: string;
  customer_id: string;
  card_id: string | null;
  account_id: string;
  currency: string;
  period_start: Date | null;
  period_end: Date;
  balance_minor: bigint;
  minimum_minor: bigint;
  paid_minor: bigint;
  due_at: Date;
  status: StatementStatus;
  created_at: Date;
}

const toStatement = (r: StatementRow): Statement => ({
  id: r.id,
  issuerParticipantId: r.issuer_participant_id,
  customerId: r.customer_id,
  cardId: r.card_id,
  accountId: r.account_id,
  currency: r.currency,
  periodStart: r.period_start,
  periodEnd: r.period_end,
  balanceMinor: BigInt(r.balance_minor),
  minimumMinor: BigInt(r.minimum_minor),
  paidMinor: BigInt(r.paid_minor),
  dueAt: r.due_at,
  status: r.status,
  createdAt: r.created_at,
});

/** The minimum payment of a balance: 5 % rounded up, at least 10 units of the currency, never more than the balance. */
export function minimumPayment(balanceMinor: bigint, currency: string): bigint {
  if (balanceMinor <= 0n) return 0n;
  const floor = MINIMUM_FLOOR_MAJOR * 10n ** BigInt(currencyMinorUnit(currency) ?? 2);
  const share = (balanceMinor * MINIMUM_PERCENT + 99n) / 100n;
  const minimum = share > floor ? share : floor;
  return minimum < balanceMinor ? minimum : balanceMinor;
}

/** Posted spending not yet repaid (a credit account's debit balance). */
const owedOf = (a: Account) => (a.debitsPostedMinor > a.creditsPostedMinor ? a.debitsPostedMinor - a.creditsPostedMinor : 0n);
/** What can still be spent: credits − debits − held + limit. */
const availableOf = (a: Account) => a.creditsPostedMinor - a.debitsPostedMinor - a.debitsPendingMinor + (a.creditLimitMinor ?? 0n);

export interface CreditService {
  /** Credit lines of these accounts (accounts that are not credit lines are absent), with their latest statements. */
  lines(accountIds: readonly string[], q?: Queryable): Promise<Map<string, CreditView>>;
  /** A bank's credit line without a card: a credit account of its customer that the customer may link into any wallet. */
  openLine(tx: Queryable, actor: Actor, issuerId: string, input: { customerId: string; currency: string; limitMinor: bigint }): Promise<Result<CreditLine, CErr>>;
  /** The issuer's credit line (a credit card's or a bank line), or undefined. */
  line(issuerId: string, accountId: string, q?: Queryable): Promise<CreditLine | undefined>;
  /** Sets a line's limit (the ledger applies it to every later authorisation). */
  setLimit(tx: Queryable, actor: Actor, issuerId: string, accountId: string, limitMinor: bigint): Promise<Result<CreditLine, CErr>>;
  /** Closes a statement now: what is owed, the minimum payment and the due date. */
  issueStatement(tx: Queryable, actor: Actor, issuerId: string, accountId: string, input: { dueInDays?: number | undefined; cardId?: string | undefined }): Promise<Result<Statement, CErr>>;
  statements(issuerId: string, accountId: string, limit: number): Promise<Statement[]>;
  /**
   * Moves `amountMinor` from a customer's account into the credit line (between participants through both positions,
   * recorded for settlement) and counts it against the latest open statement.
   */
  repay(tx: Queryable, actor: Actor, input: { id: string; issuerId: string; accountId: string; sourceAccountId: string; initiatorId: string; amountMinor: bigint }): Promise<Result<Repayment, CErr>>;
  /** Marks statements past their due date with less than the minimum paid as overdue (and tells the issuer). */
  markOverdue(): Promise<number>;
  /** The credit account of a card this issuer issued, or the error to answer. */
  cardLine(issuerId: string, cardId: string, q?: Queryable): Promise<Result<{ card: Card; accountId: string }, CErr>>;
}

export function createCreditService(deps: {
  db: Db;
  clock: Clock;
  audit: AuditService;
  events: EventOutbox;
  ledger: Ledger;
  accounts: AccountService;
  settlement: SettlementService;
  cards: CardService;
  walletTokens: WalletTokenService;
}): CreditService {
  const { db, clock, audit, events, ledger, accounts, settlement, cards, walletTokens } = deps;

  const latestStatements = async (q: Queryable, accountIds: readonly string[]) => {
    if (accountIds.length === 0) return new Map<string, Statement>();
    const rows = await q.query<StatementRow>(
      `select distinct on (account_id) * from credit_statements where account_id = any($1::text[]) order by account_id, period_end desc, id desc`,
      [[...accountIds]],
    );
    return new Map(rows.map((r) => [r.account_id, toStatement(r)]));
  };

  const viewOf = (a: Account, statement: Statement | undefined): CreditView => ({
    currency: a.currency,
    limitMinor: a.creditLimitMinor ?? 0n,
    availableMinor: availableOf(a),
    owedMinor: owedOf(a),
    statement:
      statement === undefined
        ? null
        : { id: statement.id, balanceMinor: statement.balanceMinor, minimumMinor: statement.minimumMinor, paidMinor: statement.paidMinor, dueAt: statement.dueAt, status: statement.status },
  });

  const lines: CreditService['lines'] = async (accountIds, q = db) => {
    const credit = (await ledger.getAccounts(accountIds)).filter((a) => a.kind === 'credit' && a.customerId !== null);
    const latest = await latestStatements(q, credit.map((a) => a.id));
    return new Map(credit.map((a) => [a.id, viewOf(a, latest.get(a.id))]));
  };

  const line: CreditService['line'] = async (issuerId, accountId, q = db) => {
    const got = await ledger.getAccount(accountId);
    if (!got.ok) return undefined;
    const a = got.value;
    if (a.kind !== 'credit' || a.ownerParticipantId !== issuerId || a.customerId === null) return undefined;
    const latest = await latestStatements(q, [a.id]);
    return { accountId: a.id, issuerParticipantId: issuerId, customerId: a.customerId, view: viewOf(a, latest.get(a.id)) };
  };

  const notLine = (accountId: string) => err('credit_line_not_found', 'no credit line of yours has this account', { accountId });

  return {
    lines,
    line,
    async cardLine(issuerId, cardId, q = db) {
      const card = await cards.get(issuerId, cardId, q);
      if (card === undefined) return err('card_not_found', 'no such card', { cardId });
      if (card.cardType !== 'credit' || card.fundingAccountId === null) return err('card_not_credit', 'this is not a credit card', { cardId });
      return ok({ card, accountId: card.fundingAccountId });
    },
    async openLine(tx, actor, issuerId, input) {
      if (!isCurrency(input.currency)) return err('currency_not_receivable', `${input.currency} is not a supported currency`, { currency: input.currency });
      const id = newId('acc_line');
      const created = await ledger.createAccount({ id, ownerParticipantId: issuerId, customerId: input.customerId, currency: input.currency, kind: 'credit', debitsMustNotExceedCredits: true, creditLimitMinor: input.limitMinor });
      if (!created.ok) return created.error.code === 'participant_not_found' ? err('customer_not_found', 'no such customer') : err('credit_line_not_found', created.error.message);
      await audit.record(tx, { actor, action: 'credit.line_opened', objectType: 'account', objectId: id, details: { customerId: input.customerId, currency: input.currency, limitMinor: input.limitMinor.toString() } });
      await events.emit(tx, { participantId: issuerId, type: 'credit.line_opened', data: { accountId: id, customerId: input.customerId, limit: formatMoney(input.limitMinor, input.currency) } });
      return ok({ accountId: id, issuerParticipantId: issuerId, customerId: input.customerId, view: viewOf(created.value, undefined) });
    },
    async setLimit(tx, actor, issuerId, accountId, limitMinor) {
      const current = await line(issuerId, accountId, tx);
      if (current === undefined) return notLine(accountId);
      const set = await ledger.setCreditLimit(tx as Parameters<Ledger['setCreditLimit']>[0], accountId, limitMinor);
      if (!set.ok) return notLine(accountId);
      await audit.record(tx, { actor, action: 'credit.limit_set', objectType: 'account', objectId: accountId, details: { from: current.view.limitMinor.toString(), to: limitMinor.toString() } });
      await events.emit(tx, { participantId: issuerId, type: 'credit.limit_changed', data: { accountId, customerId: current.customerId, limit: formatMoney(limitMinor, set.value.currency) } });
      const latest = await latestStatements(tx, [accountId]);
      return ok({ ...current, view: viewOf(set.value, latest.get(accountId)) });
    },
    async issueStatement(tx, actor, issuerId, accountId, input) {
      const current = await line(issuerId, accountId, tx);
      if (current === undefined) return notLine(accountId);
      const now = clock.now();
      const dueInDays = input.dueInDays ?? DEFAULT_DUE_DAYS;
      const previous = current.view.statement;
      const [prev] = previous === null ? [] : await tx.query<{ period_end: Date }>('select period_end from credit_statements where id = $1', [previous.id]);
      const balance = current.view.owedMinor;
      const currency = current.view.currency;
      const rows = await tx.query<StatementRow>(
        `insert into credit_statements (id, issuer_participant_id, customer_id, card_id, account_id, currency, period_start, period_end, balance_minor, minimum_minor, paid_minor, due_at, status, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $12, $8, $8) returning *`,
        [
          newId('cst'),
          issuerId,
          current.customerId,
          input.cardId ?? cardIdOfCreditAccount(accountId) ?? null,
          accountId,
          currency,
          prev?.period_end ?? null,
          now,
          balance,
          minimumPayment(balance, currency),
          new Date(now.getTime() + dueInDays * 86_400_000),
          balance === 0n ? 'paid' : 'due',
        ],
      );
      const statement = toStatement(rows[0]!);
      await audit.record(tx, { actor, action: 'credit.statement_issued', objectType: 'credit_statement', objectId: statement.id, details: { accountId, balanceMinor: balance.toString(), minimumMinor: statement.minimumMinor.toString(), dueAt: statement.dueAt.toISOString() } });
      await events.emit(tx, {
        participantId: issuerId,
        type: 'credit.statement_issued',
        data: { statementId: statement.id, accountId, customerId: current.customerId, balance: formatMoney(balance, currency), minimumPayment: formatMoney(statement.minimumMinor, currency), dueAt: statement.dueAt.toISOString() },
      });
      // Every wallet holding a live token of the card is told too, by its own token and customer.
      if (statement.cardId !== null) {
        const held = await walletTokens.listForCard(issuerId, statement.cardId);
        for (const entry of held.ok ? held.value : []) {
          if (entry.status !== 'active') continue;
          const token = await walletTokens.getForIssuer(issuerId, statement.cardId, entry.id, tx);
          if (token === undefined) continue;
          await events.emit(tx, {
            participantId: token.requestorParticipantId,
            type: 'credit.statement_issued',
            data: { statementId: statement.id, tokenRef: token.tokenRef, customerId: token.customerId, balance: formatMoney(balance, currency), minimumPayment: formatMoney(statement.minimumMinor, currency), dueAt: statement.dueAt.toISOString() },
          });
        }
      }
      return ok(statement);
    },
    async statements(issuerId, accountId, limit) {
      const rows = await db.query<StatementRow>('select * from credit_statements where account_id = $1 and issuer_participant_id = $2 order by period_end desc, id desc limit $3', [accountId, issuerId, limit]);
      return rows.map(toStatement);
    },
    async repay(tx, actor, input) {
      const current = await line(input.issuerId, input.accountId, tx);
      if (current === undefined) return notLine(input.accountId);
      const source = await accounts.ref(tx, input.sourceAccountId);
      if (source === undefined || source.closed || source.kind !== 'customer') return err('repayment_account_invalid', 'repayments come from a customer account', { accountId: input.sourceAccountId });
      const currency = current.view.currency;
      if (source.currency !== currency) return err('repayment_account_invalid', `the credit line is in ${currency}`, { accountId: input.sourceAccountId, currency });
      if (input.amountMinor > current.view.owedMinor) {
        return err('repayment_exceeds_balance', 'the repayment is more than is owed', { owed: formatMoney(current.view.owedMinor, currency) });
      }
      const chain = interparticipantLegs({
        legId: (leg) => (leg === 'credit_repayment' ? input.id : `${input.id}_${leg}`),
        sourceAccountId: source.id,
        payeeAccountId: input.accountId,
        payerParticipantId: source.ownerParticipantId,
        payeeParticipantId: input.issuerId,
        ...(await positionAccounts(accounts, source.ownerParticipantId, input.issuerId, currency)),
        amountMinor: input.amountMinor,
        currency,
        purpose: 'credit_repayment',
        paymentId: input.id,
        metadata: { creditAccountId: input.accountId },
      });
      const legs = chain.legs.map((l, k) => ({ ...l, linked: k < chain.legs.length - 1 }));
      const results = await ledger.applyInTx(tx as Parameters<Ledger['applyInTx']>[0], legs);
      const failed = results.find((r) => !r.ok && r.error.code !== 'linked_transfer_failed') ?? results.find((r) => !r.ok);
      if (failed !== undefined && !failed.ok) {
        // A customer account has no credit limit (insufficient_funds); a position has its net debit cap.
        if (positionLimit(failed.error) || failed.error.code === 'exceeds_credit_limit') return err('liquidity_exceeded', `the paying participant's ${currency} position cannot cover the repayment`);
        if (failed.error.code === 'insufficient_funds') return err('insufficient_funds', 'the account does not hold enough money', { accountId: source.id });
        throw new Error(`credit repayment: ledger refused ${failed.error.code}: ${failed.error.message}`);
      }
      if (chain.move !== undefined) await settlement.recordMoves(tx, [chain.move]);
      const now = clock.now();
      await tx.query(
        `insert into credit_repayments (id, account_id, issuer_participant_id, customer_id, source_account_id, initiated_by, amount_minor, currency, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [input.id, input.accountId, input.issuerId, current.customerId, source.id, input.initiatorId, input.amountMinor, currency, now],
      );
      // The latest statement not yet paid in full counts it.
      const [row] = await tx.query<StatementRow>(
        `update credit_statements set paid_minor = paid_minor + $2, updated_at = $3,
                status = case when paid_minor + $2 >= balance_minor then 'paid' when paid_minor + $2 >= minimum_minor and status = 'due' then 'minimum_paid' else status end
          where id = (select id from credit_statements where account_id = $1 and status <> 'paid' order by period_end desc, id desc limit 1) returning *`,
        [input.accountId, input.amountMinor, now],
      );
      const statement = row === undefined ? null : toStatement(row);
      const owedMinor = current.view.owedMinor - input.amountMinor;
      await audit.record(tx, { actor, action: 'credit.repaid', objectType: 'account', objectId: input.accountId, details: { repaymentId: input.id, sourceAccountId: source.id, amountMinor: input.amountMinor.toString(), initiatedBy: input.initiatorId } });
      const data = { repaymentId: input.id, accountId: input.accountId, customerId: current.customerId, amount: formatMoney(input.amountMinor, currency), owed: formatMoney(owedMinor, currency), statementId: statement?.id ?? null };
      await events.emit(tx, { participantId: input.issuerId, type: 'credit.repayment_received', data });
      if (input.initiatorId !== input.issuerId) await events.emit(tx, { participantId: input.initiatorId, type: 'credit.repayment_received', data: { ...data, customerId: null } });
      return ok({ id: input.id, accountId: input.accountId, sourceAccountId: source.id, amountMinor: input.amountMinor, currency, owedMinor, statement, createdAt: now });
    },
    async markOverdue() {
      return db.transaction(async (tx) => {
        const rows = await tx.query<StatementRow>(
          `update credit_statements set status = 'overdue', updated_at = $1 where status = 'due' and due_at <= $1 and paid_minor < minimum_minor returning *`,
          [clock.now()],
        );
        for (const r of rows) {
          const s = toStatement(r);
          await audit.record(tx, { actor: { type: 'system' }, action: 'credit.statement_overdue', objectType: 'credit_statement', objectId: s.id, details: { accountId: s.accountId, minimumMinor: s.minimumMinor.toString(), paidMinor: s.paidMinor.toString() } });
          await events.emit(tx, {
            participantId: s.issuerParticipantId,
            type: 'credit.statement_overdue',
            data: { statementId: s.id, accountId: s.accountId, customerId: s.customerId, minimumPayment: formatMoney(s.minimumMinor, s.currency), paid: formatMoney(s.paidMinor, s.currency), dueAt: s.dueAt.toISOString() },
          });
        }
        return rows.length;
      });
    },
  };
}
