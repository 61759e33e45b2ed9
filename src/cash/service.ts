import type { Actor, AuditService } from '../audit/index.ts';
import type { AccountService } from '../accounts/index.ts';
import { customerAccountId } from '../accounts/index.ts';
import type { Ledger } from '../ledger/index.ts';
import type { LiquidityErrorCode } from '../liquidity/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { formatMoney } from '../platform/money.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import { interparticipantLegs, positionAccounts, type SettlementService } from '../settlement/index.ts';
import type { TransfersErrorCode } from '../transfers/index.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { CashErrorCode } from './errors.ts';

/**
 * A hosted participant's customer moves money between their wallet account and a bank account linked into the wallet
 * with the bank's consent (accounts/: account links):
 *   - a WITHDRAWAL pays out from the wallet account to the bank account,
 *   - a TOP-UP pays in from the bank account to the wallet account.
 * Money leaves and enters through the positions like any payment between two participants (settlement/
 * `interparticipantLegs`: the paying participant's position leg first, checked against its liquidity and net debit
 * cap, then both customer legs, one linked chain) and the position leg is recorded in the currency's open settlement
 * window. A bank that keeps its customers' accounts in its own books (connected) is not reachable this way: the link
 * is refused with `cash_link_invalid`.
 */
export type CashKind = 'withdrawal' | 'top_up';

export interface CashMovement {
  readonly id: string;
  readonly participantId: string;
  readonly customerId: string;
  readonly kind: CashKind;
  readonly walletAccountId: string;
  readonly bankAccountId: string;
  readonly bankParticipantId: string;
  readonly bankCustomerId: string;
  readonly linkId: string;
  readonly currency: string;
  readonly amountMinor: bigint;
  readonly status: 'completed';
  readonly transferIds: readonly string[];
  readonly createdAt: Date;
}

export type CashErr = DomainError<CashErrorCode | Extract<TransfersErrorCode, 'link_not_found' | 'account_unavailable' | 'insufficient_funds' | 'ledger_rejected'> | Extract<LiquidityErrorCode, 'liquidity_exceeded'>>;

export interface CashService {
  move(tx: Queryable, actor: Actor, input: { kind: CashKind; participantId: string; customerId: string; linkId: string; amountMinor: bigint; currency: string }): Promise<Result<CashMovement, CashErr>>;
  get(q: Queryable, id: string, participantId: string, customerId: string): Promise<CashMovement | undefined>;
  list(q: Queryable, participantId: string, customerId: string, limit: number): Promise<CashMovement[]>;
}

interface Row {
  id: string;
  participant_id: string;
  customer_id: string;
  kind: CashKind;
  wallet_account_id: string;
  bank_account_id: string;
  bank_participant_id: string;
  bank_customer_id: string;
  link_id: string;
  currency: string;
  amount_minor: bigint;
  status: 'completed';
  transfer_ids: string[];
  created_at: Date;
}
const toMovement = (r: Row): CashMovement => ({
  id: r.id,
  participantId: r.participant_id,
  customerId: r.customer_id,
  kind: r.kind,
  walletAccountId: r.wallet_account_id,
  bankAccountId: r.bank_account_id,
  bankParticipantId: r.bank_participant_id,
  bankCustomerId: r.bank_customer_id,
  linkId: r.link_id,
  currency: r.currency,
  amountMinor: r.amount_minor,
  status: r.status,
  transferIds: r.transfer_ids,
  createdAt: r.created_at,
});

export function createCashService(deps: {
  clock: Clock;
  audit: AuditService;
  events: EventOutbox;
  ledger: Ledger;
  accounts: AccountService;
  settlement: Pick<SettlementService, 'recordMoves'>;
  /** Whether a participant keeps its own books in a currency (connected). */
  connected?: ((participantId: string, currency: string, q: Queryable) => Promise<boolean>) | undefined;
}): CashService {
  const { clock, audit, events, ledger, accounts, settlement } = deps;

  return {
    async move(tx, actor, input) {
      if (input.amountMinor <= 0n) return err('cash_link_invalid', 'the amount must be positive');
      const link = await accounts.activeLink(tx, input.linkId, input.participantId, input.customerId);
      if (link === undefined) return err('link_not_found', 'no active link of this customer with that id');
      const bank = await accounts.ref(tx, link.accountId);
      if (bank === undefined || bank.closed) return err('cash_link_invalid', 'the linked bank account is closed');
      if (bank.currency !== input.currency) return err('cash_link_invalid', `the linked bank account holds ${bank.currency}`, { currency: bank.currency });
      const walletAccountId = customerAccountId(input.customerId, input.currency);
      const wallet = await accounts.ref(tx, walletAccountId);
      if (wallet === undefined || wallet.closed || wallet.ownerParticipantId !== input.participantId || wallet.customerId !== input.customerId) {
        return err('account_unavailable', `the customer has no open ${input.currency} account here`, { currency: input.currency });
      }
      if (deps.connected !== undefined && ((await deps.connected(link.bankParticipantId, input.currency, tx)) || (await deps.connected(input.participantId, input.currency, tx)))) {
        return err('cash_link_invalid', `a participant on this link keeps its ${input.currency} accounts in its own books: withdraw or top up there`);
      }
      const id = newId('csh');
      const out = input.kind === 'withdrawal';
      const payerP = out ? input.participantId : link.bankParticipantId;
      const payeeP = out ? link.bankParticipantId : input.participantId;
      const chain = interparticipantLegs({
        legId: (leg) => `${id}:${leg}`,
        sourceAccountId: out ? walletAccountId : bank.id,
        payeeAccountId: out ? bank.id : walletAccountId,
        payerParticipantId: payerP,
        payeeParticipantId: payeeP,
        ...(await positionAccounts(accounts, payerP, payeeP, input.currency)),
        amountMinor: input.amountMinor,
        currency: input.currency,
        purpose: out ? 'withdrawal' : 'top_up',
        paymentId: id,
        metadata: { cashMovementId: id, linkId: link.id },
      });
      const legs = chain.legs.map((l, k) => ({ ...l, linked: k < chain.legs.length - 1 }));
      const results = await ledger.applyInTx(tx, legs);
      const bad = results.find((r) => !r.ok && r.error.code !== 'linked_transfer_failed') ?? results.find((r) => !r.ok);
      if (bad !== undefined && !bad.ok) {
        const leg = legs[results.indexOf(bad)];
        const code = bad.error.code;
        if ((code === 'insufficient_funds' || code === 'exceeds_credit_limit') && leg?.purpose === 'position') {
          return err('liquidity_exceeded', `the ${out ? 'wallet' : 'bank'}'s position cannot cover this ${out ? 'withdrawal' : 'top-up'} (prefunded liquidity and net debit cap)`, { currency: input.currency });
        }
        if (code === 'insufficient_funds') return err('insufficient_funds', `the ${out ? 'wallet' : 'bank'} account does not hold enough money`);
        if (code === 'account_closed') return err('account_unavailable', 'an account in this movement is closed');
        return err('ledger_rejected', bad.error.message, { ledgerCode: code });
      }
      if (chain.move !== undefined) await settlement.recordMoves(tx, [chain.move]);
      const now = clock.now();
      const m: CashMovement = {
        id,
        participantId: input.participantId,
        customerId: input.customerId,
        kind: input.kind,
        walletAccountId,
        bankAccountId: bank.id,
        bankParticipantId: link.bankParticipantId,
        bankCustomerId: link.bankCustomerId,
        linkId: link.id,
        currency: input.currency,
        amountMinor: input.amountMinor,
        status: 'completed',
        transferIds: legs.map((l) => l.id),
        createdAt: now,
      };
      await tx.query(
        `insert into cash_movements (id, participant_id, customer_id, kind, wallet_account_id, bank_account_id, bank_participant_id, bank_customer_id, link_id, currency, amount_minor, status, transfer_ids, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'completed', $12::text[], $13)`,
        [id, m.participantId, m.customerId, m.kind, walletAccountId, bank.id, m.bankParticipantId, m.bankCustomerId, m.linkId, m.currency, m.amountMinor, m.transferIds, now],
      );
      const amount = formatMoney(m.amountMinor, m.currency);
      await audit.record(tx, { actor, action: out ? 'cash.withdrawal_completed' : 'cash.top_up_completed', objectType: 'cash_movement', objectId: id, details: { amount, linkId: link.id } });
      const type = out ? 'cash.withdrawal_completed' : 'cash.top_up_completed';
      await events.emit(tx, { participantId: m.participantId, type, data: { id, kind: m.kind, customerId: m.customerId, amount, status: m.status } });
      if (m.bankParticipantId !== m.participantId) await events.emit(tx, { participantId: m.bankParticipantId, type, data: { id, kind: m.kind, customerId: m.bankCustomerId, amount, status: m.status } });
      return ok(m);
    },
    async get(q, id, participantId, customerId) {
      const [r] = await q.query<Row>('select * from cash_movements where id = $1 and participant_id = $2 and customer_id = $3', [id, participantId, customerId]);
      return r === undefined ? undefined : toMovement(r);
    },
    async list(q, participantId, customerId, limit) {
      const rows = await q.query<Row>('select * from cash_movements where participant_id = $1 and customer_id = $2 order by created_at desc, id desc limit $3', [participantId, customerId, limit]);
      return rows.map(toMovement);
    },
  };
}

export function wireCashMovement(m: CashMovement) {
  return {
    id: m.id,
    kind: m.kind,
    customerId: m.customerId,
    linkId: m.linkId,
    walletAccountId: m.walletAccountId,
    bankAccountId: m.bankAccountId,
    bankParticipantId: m.bankParticipantId,
    amount: formatMoney(m.amountMinor, m.currency),
    status: m.status,
    transferIds: [...m.transferIds],
    createdAt: m.createdAt.toISOString(),
  };
}
