import { positionLimit, type AccountService } from '../accounts/index.ts';
import type { Actor, AuditService } from '../audit/index.ts';
import type { Ledger, TransferInput } from '../ledger/index.ts';
import type { PaymentsModule } from '../payments/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable, Tx } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { formatMoney, type Money } from '../platform/money.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import { interparticipantLegs, positionAccounts, type PositionMove, type SettlementService } from '../settlement/index.ts';
import type { TransfersModule } from '../transfers/index.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { DisputesErrorCode } from './errors.ts';

type DErr = DomainError<DisputesErrorCode>;
const DAY_MS = 86_400_000;

/** How long after a payment its payer may dispute it: card schemes' 120 days; P2P 80 days (PIX MED). */
export const CARD_DISPUTE_WINDOW_MS = 120 * DAY_MS;
export const P2P_DISPUTE_WINDOW_MS = 80 * DAY_MS;
/** Each answer (the issuer's chargeback decision, the respondent's answer) is due within 10 days. */
export const DISPUTE_RESPONSE_MS = 10 * DAY_MS;
/** Fraud recalls (PIX MED 2.0): asked within 80 days of the payment, analysed within 7 days, refunded within 11. */
export const RECALL_WINDOW_MS = 80 * DAY_MS;
export const RECALL_ANALYSIS_MS = 7 * DAY_MS;
export const RECALL_REFUND_MS = 11 * DAY_MS;
/** How far a recall follows the money (hop 0 is the payee's account) and how many accounts it looks at in all. */
export const RECALL_MAX_HOP = 2;
export const RECALL_MAX_ACCOUNTS = 16;

export type DisputeKind = 'card' | 'p2p';
export type DisputeStatus = 'opened' | 'chargeback' | 'won_by_customer' | 'won_by_respondent' | 'rejected' | 'refunded';
export type RecallStatus = 'analysing' | 'refunded' | 'rejected' | 'expired';

export interface Step {
  readonly seq: number;
  readonly participantId: string | null;
  readonly action: string;
  readonly evidence: string | null;
  readonly amountMinor: bigint | null;
  readonly at: Date;
}

export interface Dispute {
  readonly id: string;
  readonly kind: DisputeKind;
  readonly paymentId: string;
  readonly walletParticipantId: string;
  readonly customerId: string;
  readonly issuerParticipantId: string;
  readonly respondentParticipantId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly reason: string;
  readonly status: DisputeStatus;
  /** A chargeback's refund still asking the customer's bank (the payment was paid from an account there); else null. */
  readonly chargebackAtBank: string | null;
  readonly respondBy: Date;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly steps: readonly Step[];
}

export interface RecallHold {
  readonly seq: number;
  readonly accountId: string;
  readonly ownerParticipantId: string;
  readonly hop: number;
  readonly amountMinor: bigint;
  readonly status: 'held' | 'refunded' | 'released';
}

export interface Recall {
  readonly id: string;
  readonly paymentId: string;
  readonly walletParticipantId: string;
  readonly customerId: string;
  readonly payeeParticipantId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly reason: string;
  readonly status: RecallStatus;
  readonly frozenMinor: bigint;
  readonly refundedMinor: bigint;
  readonly analysisDueAt: Date;
  readonly refundDueAt: Date;
  readonly createdAt: Date;
  readonly holds: readonly RecallHold[];
  readonly steps: readonly Step[];
}

interface DisputeRow {
  id: string;
  kind: DisputeKind;
  payment_id: string;
  wallet_participant_id: string;
  customer_id: string;
  issuer_participant_id: string;
  respondent_participant_id: string;
  payer_account_id: string;
  respondent_account_id: string;
  amount_minor: bigint;
  currency: string;
  reason: string;
  status: DisputeStatus;
  /** The chargeback's transfer; for a payment paid at a connected bank, its refund there (still `opened` while asking). */
  chargeback_transfer_id: string | null;
  respond_by: Date;
  created_at: Date;
  updated_at: Date;
}

interface RecallRow {
  id: string;
  payment_id: string;
  wallet_participant_id: string;
  customer_id: string;
  payee_participant_id: string;
  victim_account_id: string;
  amount_minor: bigint;
  currency: string;
  reason: string;
  status: RecallStatus;
  frozen_minor: bigint;
  refunded_minor: bigint;
  analysis_due_at: Date;
  refund_due_at: Date;
  created_at: Date;
}

interface HoldRow {
  recall_id: string;
  seq: number;
  account_id: string;
  owner_participant_id: string;
  hop: number;
  amount_minor: bigint;
  pending_ids: string[];
  position_move: { transferId: string; paymentId: string; payerParticipantId: string; payeeParticipantId: string; currency: string; amountMinor: string } | null;
  status: 'held' | 'refunded' | 'released';
}

export interface DisputeService {
  /** `amount` (default: all that is disputable) is in the payment's currency: another is currency_mismatch, nothing written. */
  open(tx: Queryable, actor: Actor, input: { walletId: string; customerId: string; kind: DisputeKind; paymentId: string; reason: string; amount?: Money | undefined }): Promise<Result<Dispute, DErr>>;
  get(id: string, q?: Queryable): Promise<Dispute | undefined>;
  list(participantId: string, limit: number): Promise<Dispute[]>;
  /** The card issuer charges the payment back (money from the merchant to the cardholder) or rejects the dispute. */
  issuerDecides(tx: Queryable, actor: Actor, participantId: string, id: string, input: { decision: 'chargeback' | 'reject'; evidence: string }): Promise<Result<Dispute, DErr>>;
  /**
   * A chargeback of a payment paid from an account at a connected bank, after issuerDecides' COMMIT and outside any
   * transaction: the bank asked to accept the credit to its customer (the payments capability's refund at the bank),
   * then the dispute decided — `chargeback` once the refund completed, still `opened` (the failure as a step) when the
   * bank refused or did not answer, nothing moved. `refundId` is the dispute's `chargebackAtBank` as issuerDecides
   * answered it: a replay reads the decided refund (the bank is not asked again) and answers the same decision.
   */
  settleChargebackAtBank(id: string, refundId: string): Promise<Result<Dispute, DErr> | undefined>;
  /** The merchant's owner (after a chargeback) or the payee's participant (P2P) accepts, or represents with evidence. */
  respond(tx: Queryable, actor: Actor, participantId: string, id: string, input: { decision: 'accept' | 'represent'; evidence?: string | undefined }): Promise<Result<Dispute, DErr>>;
  openRecall(tx: Queryable, actor: Actor, input: { walletId: string; customerId: string; paymentId: string; reason: string }): Promise<Result<Recall, DErr>>;
  getRecall(id: string, q?: Queryable): Promise<Recall | undefined>;
  /** The payee's participant's analysis: confirmed fraud refunds what was frozen; rejected releases it. */
  analyseRecall(tx: Queryable, actor: Actor, participantId: string, id: string, input: { decision: 'accept' | 'reject'; evidence: string }): Promise<Result<Recall, DErr>>;
  /** Deadlines: a chargeback the merchant did not answer in time stands; a recall not refunded in time lapses. */
  sweep(): Promise<{ disputes: number; recalls: number }>;
}

export function createDisputeService(deps: {
  db: Db;
  clock: Clock;
  audit: AuditService;
  events: EventOutbox;
  ledger: Ledger;
  accounts: AccountService;
  settlement: SettlementService;
  payments: PaymentsModule['payments'];
  merchants: PaymentsModule['merchants'];
  transfers: TransfersModule['transfers'];
}): DisputeService {
  const { db, clock, audit, events, ledger, accounts, settlement } = deps;

  const stepsOf = async (q: Queryable, id: string): Promise<Step[]> =>
    (await q.query<{ seq: number; participant_id: string | null; action: string; evidence: string | null; amount_minor: bigint | null; at: Date }>('select * from dispute_steps where object_id = $1 order by seq', [id])).map((r) => ({
      seq: r.seq,
      participantId: r.participant_id,
      action: r.action,
      evidence: r.evidence,
      amountMinor: r.amount_minor === null ? null : BigInt(r.amount_minor),
      at: r.at,
    }));

  const addStep = async (q: Queryable, id: string, participantId: string | null, action: string, evidence: string | null, amountMinor: bigint | null) => {
    await q.query(
      `insert into dispute_steps (object_id, seq, participant_id, action, evidence, amount_minor, at)
       values ($1, (select coalesce(max(seq), 0) + 1 from dispute_steps where object_id = $1), $2, $3, $4, $5, $6)`,
      [id, participantId, action, evidence, amountMinor, clock.now()],
    );
  };

  const toDispute = async (q: Queryable, r: DisputeRow): Promise<Dispute> => ({
    id: r.id,
    kind: r.kind,
    paymentId: r.payment_id,
    walletParticipantId: r.wallet_participant_id,
    customerId: r.customer_id,
    issuerParticipantId: r.issuer_participant_id,
    respondentParticipantId: r.respondent_participant_id,
    amountMinor: BigInt(r.amount_minor),
    currency: r.currency,
    reason: r.reason,
    status: r.status,
    chargebackAtBank: r.status === 'opened' ? r.chargeback_transfer_id : null,
    respondBy: r.respond_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    steps: await stepsOf(q, r.id),
  });

  const disputeRow = async (q: Queryable, id: string, lock = false) => (await q.query<DisputeRow>(`select * from disputes where id = $1${lock ? ' for update' : ''}`, [id]))[0];

  const get: DisputeService['get'] = async (id, q = db) => {
    const r = await disputeRow(q, id);
    return r === undefined ? undefined : toDispute(q, r);
  };

  const partiesOf = (d: DisputeRow) => [...new Set([d.wallet_participant_id, d.issuer_participant_id, d.respondent_participant_id])];

  const tellDispute = async (tx: Queryable, d: DisputeRow, type: 'dispute.opened' | 'dispute.updated', by: string | null, evidence: string | null) => {
    for (const participantId of partiesOf(d)) {
      await events.emit(tx, {
        participantId,
        type,
        data: {
          disputeId: d.id,
          kind: d.kind,
          paymentId: d.payment_id,
          status: d.status,
          amount: formatMoney(BigInt(d.amount_minor), d.currency),
          reason: d.reason,
          respondBy: d.respond_by.toISOString(),
          by,
          evidence,
          customerId: participantId === d.wallet_participant_id ? d.customer_id : null,
        },
      });
    }
  };

  /** Moves money from one side's account to the other's (through both positions when they are at two participants). */
  const move = async (tx: Queryable, input: { id: string; fromAccountId: string; fromParticipantId: string; toAccountId: string; toParticipantId: string; amountMinor: bigint; currency: string; purpose: string; objectId: string }): Promise<Result<void, DErr>> => {
    const chain = interparticipantLegs({
      legId: (leg) => (leg === input.purpose ? input.id : `${input.id}_${leg}`),
      sourceAccountId: input.fromAccountId,
      payeeAccountId: input.toAccountId,
      payerParticipantId: input.fromParticipantId,
      payeeParticipantId: input.toParticipantId,
      ...(await positionAccounts(accounts, input.fromParticipantId, input.toParticipantId, input.currency)),
      amountMinor: input.amountMinor,
      currency: input.currency,
      purpose: input.purpose,
      paymentId: input.id,
      metadata: { disputeId: input.objectId },
    });
    const legs = chain.legs.map((l, k) => ({ ...l, linked: k < chain.legs.length - 1 }));
    const results = await ledger.applyInTx(tx as Tx, legs);
    const failed = results.find((r) => !r.ok && r.error.code !== 'linked_transfer_failed') ?? results.find((r) => !r.ok);
    if (failed !== undefined && !failed.ok) {
      if (positionLimit(failed.error) || failed.error.code === 'exceeds_credit_limit') return err('liquidity_exceeded', `the paying participant's ${input.currency} position cannot cover the amount`);
      if (failed.error.code === 'insufficient_funds') return err('insufficient_funds', 'the account the money comes back from does not hold enough', { accountId: input.fromAccountId });
      throw new Error(`dispute: ledger refused ${failed.error.code}: ${failed.error.message}`);
    }
    if (chain.move !== undefined) await settlement.recordMoves(tx, [chain.move]);
    return ok(undefined);
  };

  const setStatus = async (tx: Queryable, id: string, status: DisputeStatus, extra: { respondBy?: Date; chargeback?: string; representment?: string } = {}) => {
    const [row] = await tx.query<DisputeRow>(
      `update disputes set status = $2, updated_at = $3, respond_by = coalesce($4, respond_by), chargeback_transfer_id = coalesce($5, chargeback_transfer_id),
              representment_transfer_id = coalesce($6, representment_transfer_id) where id = $1 returning *`,
      [id, status, clock.now(), extra.respondBy ?? null, extra.chargeback ?? null, extra.representment ?? null],
    );
    return row!;
  };

  // ---------------------------------------------------------------------------------------------------------------
  // Recalls

  const holdsOf = async (q: Queryable, id: string) => q.query<HoldRow>('select * from recall_holds where recall_id = $1 order by seq', [id]);
  const recallRow = async (q: Queryable, id: string, lock = false) => (await q.query<RecallRow>(`select * from recalls where id = $1${lock ? ' for update' : ''}`, [id]))[0];
  const toRecall = async (q: Queryable, r: RecallRow): Promise<Recall> => ({
    id: r.id,
    paymentId: r.payment_id,
    walletParticipantId: r.wallet_participant_id,
    customerId: r.customer_id,
    payeeParticipantId: r.payee_participant_id,
    amountMinor: BigInt(r.amount_minor),
    currency: r.currency,
    reason: r.reason,
    status: r.status,
    frozenMinor: BigInt(r.frozen_minor),
    refundedMinor: BigInt(r.refunded_minor),
    analysisDueAt: r.analysis_due_at,
    refundDueAt: r.refund_due_at,
    createdAt: r.created_at,
    holds: (await holdsOf(q, r.id)).map((h) => ({ seq: h.seq, accountId: h.account_id, ownerParticipantId: h.owner_participant_id, hop: h.hop, amountMinor: BigInt(h.amount_minor), status: h.status })),
    steps: await stepsOf(q, r.id),
  });
  const getRecall: DisputeService['getRecall'] = async (id, q = db) => {
    const r = await recallRow(q, id);
    return r === undefined ? undefined : toRecall(q, r);
  };

  const tellRecall = async (tx: Queryable, r: RecallRow, type: 'recall.opened' | 'recall.decided', by: string | null) => {
    const holds = await holdsOf(tx, r.id);
    const parties = [...new Set([r.wallet_participant_id, r.payee_participant_id, ...holds.map((h) => h.owner_participant_id)])];
    for (const participantId of parties) {
      await events.emit(tx, {
        participantId,
        type,
        data: {
          recallId: r.id,
          paymentId: r.payment_id,
          status: r.status,
          amount: formatMoney(BigInt(r.amount_minor), r.currency),
          frozen: formatMoney(BigInt(r.frozen_minor), r.currency),
          reason: r.reason,
          analysisDueAt: r.analysis_due_at.toISOString(),
          refundDueAt: r.refund_due_at.toISOString(),
          by,
          // Each participant sees the holds on its own accounts only.
          holds: holds.filter((h) => h.owner_participant_id === participantId).map((h) => ({ accountId: h.account_id, hop: h.hop, amount: formatMoney(BigInt(h.amount_minor), r.currency), status: h.status })),
          customerId: participantId === r.wallet_participant_id ? r.customer_id : null,
        },
      });
    }
  };

  /** Where money that left `accountId` after `since` went next: customer accounts, through positions when needed. */
  const nextAccounts = async (accountId: string, since: Date): Promise<string[]> => {
    const out: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 5; page++) {
      const h = await ledger.history(accountId, { limit: 200, ...(cursor !== undefined ? { cursor } : {}) });
      if (!h.ok) break;
      for (const e of h.value.entries) {
        if (e.side !== 'debit' || e.event !== 'single_phase' || e.at.getTime() < since.getTime()) continue;
        const t = await ledger.getTransfer(e.transferId);
        if (!t.ok) continue;
        let next = t.value.creditAccountId;
        // Between participants the money goes to the payer's position, then from the payee's position (the `_in` leg).
        if (!(await isCustomerAccount(next))) {
          const inLeg = await ledger.getTransfer(`${t.value.id}_in`);
          if (!inLeg.ok) continue;
          next = inLeg.value.creditAccountId;
        }
        if ((await isCustomerAccount(next)) && !out.includes(next)) out.push(next);
      }
      cursor = h.value.nextCursor ?? undefined;
      if (cursor === undefined) break;
    }
    return out;
  };
  /**
   * P2P payments the hub cannot dispute or recall by moving its own accounts. A red packet's own movements (its funding
   * or refund at the sender's bank, a share paid to a connected member) are not a customer's payment: the packet itself
   * returns what is unclaimed. A payment with a side at a bank that keeps its own books moved that side's money in the
   * bank's books, not in a hub account: a refund would credit (or a recall freeze) the bank's position at the hub,
   * never its customer, so the claim goes to that bank.
   */
  const notReturnable = (p: { id: string; redPacket: boolean; connected: readonly string[] }, what: 'disputed' | 'recalled'): Result<never, DErr> | undefined => {
    if (p.redPacket) return err('dispute_internal_payment', `a red packet’s own payment cannot be ${what}: the packet returns what is not claimed`, { paymentId: p.id });
    if (p.connected.length > 0) return err('dispute_at_connected_bank', `this payment moved money at a bank that keeps its own books: it cannot be ${what} at the hub; the claim goes to that bank`, { paymentId: p.id, connected: [...p.connected] });
    return undefined;
  };
  const isCustomerAccount = async (id: string) => {
    const a = await accounts.ref(db, id);
    return a !== undefined && a.kind === 'customer';
  };

  const settleChargebackAtBank: DisputeService['settleChargebackAtBank'] = async (id, refundId) => {
    const settled = await deps.payments.settleRefundAtBank(refundId);
    if (settled === undefined) return undefined;
    if (settled.status === 'asking') return err('dispute_state', 'the chargeback is still being decided with the customer’s bank: ask again', { refundId });
    return db.transaction(async (tx): Promise<Result<Dispute, DErr>> => {
      const now = await disputeRow(tx, id, true);
      if (now === undefined) throw new Error('dispute vanished');
      const first = now.status === 'opened' && now.chargeback_transfer_id === refundId;
      const amount = BigInt(now.amount_minor);
      if (!first && settled.status === 'completed') return ok(await toDispute(tx, now));
      if (first && settled.status === 'completed') {
        const updated = await setStatus(tx, id, 'chargeback', { respondBy: new Date(clock.nowMs() + DISPUTE_RESPONSE_MS) });
        await addStep(tx, id, now.issuer_participant_id, 'chargeback', null, amount);
        await audit.record(tx, { actor: { type: 'system' }, action: 'dispute.charged_back', objectType: 'dispute', objectId: id, details: { by: now.issuer_participant_id, refundId } });
        await tellDispute(tx, updated, 'dispute.updated', now.issuer_participant_id, null);
        return ok(await toDispute(tx, updated));
      }
      // Refused or unanswered: nothing moved anywhere; the dispute stays open (the issuer may charge back again). A
      // replay answers the same refusal.
      if (first) {
        await tx.query('update disputes set chargeback_transfer_id = null, updated_at = $2 where id = $1', [id, clock.now()]);
        const why = settled.reason === null ? 'refused' : `${settled.reason.Rsn}${settled.reason.AddtlInf !== undefined ? `: ${settled.reason.AddtlInf}` : ''}`;
        await addStep(tx, id, null, 'chargeback_failed', why, null);
        await audit.record(tx, { actor: { type: 'system' }, action: 'dispute.chargeback_failed', objectType: 'dispute', objectId: id, details: { refundId, reason: settled.reason?.Rsn ?? null } });
      }
      const e = settled.error;
      if (e !== undefined && e.code === 'liquidity_exceeded') return err('liquidity_exceeded', e.message, e.details);
      return err('refund_rejected', e?.message ?? 'the customer’s bank refused the chargeback’s credit: nothing moved', { refundId, reason: settled.reason });
    });
   };

  return {
    async open(tx, actor, input) {
      const now = clock.now();
      let row: Omit<DisputeRow, 'id' | 'status' | 'respond_by' | 'created_at' | 'updated_at' | 'reason' | 'amount_minor' | 'chargeback_transfer_id'> & { disputable: bigint; paidAt: Date };
      if (input.kind === 'card') {
        const a = await deps.payments.get({ participantId: input.walletId, as: 'payer' }, input.paymentId, tx);
        if (a === undefined || a.payerCustomerId !== input.customerId) return err('payment_not_found', 'no such payment of this customer');
        if (a.status !== 'captured') return err('payment_state', `only a captured payment can be disputed; this one is ${a.status}`, { status: a.status });
        if (now.getTime() - a.createdAt.getTime() > CARD_DISPUTE_WINDOW_MS) return err('dispute_window_closed', 'card payments can be disputed within 120 days', { paidAt: a.createdAt.toISOString() });
        // A chargeback moves the merchant's currency back; the payer's account holds another, so the money would have to
        // convert back through the FX provider, which the hub's chargeback does not do.
        if (a.fx !== null) return err('currency_mismatch', 'a card payment converted between currencies cannot be disputed at the hub', { currency: a.currency, sourceCurrency: a.fx.sourceCurrency });
        // Paid from an account at a bank that keeps its own books: a chargeback credits the customer there through the
        // refund's path (settleChargebackAtBank); refunds still asking the bank take their part of what is left.
        const side = await deps.payments.bankSide(a.id, tx);
        const merchant = await deps.merchants.getById(a.merchantId, tx);
        if (merchant === undefined) throw new Error('merchant vanished');
        row = {
          kind: 'card',
          payment_id: a.id,
          wallet_participant_id: input.walletId,
          customer_id: input.customerId,
          issuer_participant_id: a.issuerParticipantId,
          respondent_participant_id: merchant.ownerParticipantId,
          payer_account_id: a.sourceAccountId,
          respondent_account_id: merchant.settlementAccountId,
          currency: a.currency,
          // Refunds still asking a bank are not in refundedMinor yet but take their part of what is left; what earlier
          // disputes charged back is not the merchant's to give back again.
          disputable: a.capturedMinor - a.refundedMinor - a.chargedBackMinor - side.askingMinor,
          paidAt: a.createdAt,
        };
      } else {
        const p = await deps.transfers.getPayment(input.walletId, input.paymentId);
        if (p === undefined || p.payerParticipantId !== input.walletId || p.payerCustomerId !== input.customerId) return err('payment_not_found', 'no such payment sent by this customer');
        const refused = notReturnable(p, 'disputed');
        if (refused !== undefined) return refused;
        if (p.status !== 'completed') return err('payment_state', `only a completed payment can be disputed; this one is ${p.status}`, { status: p.status });
        if (p.sendCurrency !== p.receiveCurrency) return err('currency_mismatch', 'a payment converted between currencies is recalled by its payee’s participant, not disputed here');
        if (now.getTime() - p.createdAt.getTime() > P2P_DISPUTE_WINDOW_MS) return err('dispute_window_closed', 'P2P payments can be disputed within 80 days', { paidAt: p.createdAt.toISOString() });
        row = {
          kind: 'p2p',
          payment_id: p.id,
          wallet_participant_id: input.walletId,
          customer_id: input.customerId,
          issuer_participant_id: p.payerParticipantId,
          respondent_participant_id: p.payeeParticipantId,
          payer_account_id: p.sourceAccountId,
          respondent_account_id: p.payeeAccountId,
          currency: p.sendCurrency,
          disputable: p.sendMinor,
          paidAt: p.createdAt,
        };
      }
      if (input.amount !== undefined && input.amount.currency !== row.currency) return err('currency_mismatch', `the payment is in ${row.currency}`, { currency: row.currency });
      const amount = input.amount?.amountMinor ?? row.disputable;
      if (amount <= 0n || amount > row.disputable) return err('dispute_amount_invalid', 'a dispute is for at most what was paid (less refunds and chargebacks)', { disputable: formatMoney(row.disputable, row.currency) });
      const [open] = await tx.query<{ id: string }>(`select id from disputes where payment_id = $1 and status in ('opened', 'chargeback') limit 1`, [row.payment_id]);
      if (open !== undefined) return err('dispute_exists', 'this payment already has an open dispute', { disputeId: open.id });
      const id = newId('dsp');
      const [inserted] = await tx.query<DisputeRow>(
        `insert into disputes (id, kind, payment_id, wallet_participant_id, customer_id, issuer_participant_id, respondent_participant_id, payer_account_id, respondent_account_id,
                               amount_minor, currency, reason, status, respond_by, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'opened', $13, $14, $14) returning *`,
        [id, row.kind, row.payment_id, row.wallet_participant_id, row.customer_id, row.issuer_participant_id, row.respondent_participant_id, row.payer_account_id, row.respondent_account_id, amount, row.currency, input.reason, new Date(now.getTime() + DISPUTE_RESPONSE_MS), now],
      );
      await addStep(tx, id, input.walletId, 'opened', input.reason, amount);
      await audit.record(tx, { actor, action: 'dispute.opened', objectType: 'dispute', objectId: id, details: { kind: row.kind, paymentId: row.payment_id, amountMinor: amount.toString() } });
      await tellDispute(tx, inserted!, 'dispute.opened', input.walletId, input.reason);
      return ok(await toDispute(tx, inserted!));
    },
    get,
    async list(participantId, limit) {
      const rows = await db.query<DisputeRow>(
        `select * from disputes where wallet_participant_id = $1 or issuer_participant_id = $1 or respondent_participant_id = $1 order by created_at desc, id limit $2`,
        [participantId, limit],
      );
      return Promise.all(rows.map((r) => toDispute(db, r)));
    },
    async issuerDecides(tx, actor, participantId, id, input) {
      const d = await disputeRow(tx, id, true);
      if (d === undefined) return err('dispute_not_found', 'no such dispute');
      if (d.kind !== 'card' || d.issuer_participant_id !== participantId) return err('dispute_not_party', 'only the card issuer charges back or rejects a card dispute');
      if (d.status !== 'opened') return err('dispute_state', `the dispute is ${d.status}`, { status: d.status });
      if (d.respond_by.getTime() < clock.nowMs()) return err('dispute_deadline_passed', 'the issuer’s decision was due by respondBy', { respondBy: d.respond_by.toISOString() });
      if (d.chargeback_transfer_id !== null) return err('dispute_state', 'a chargeback is being decided with the customer’s bank', { status: d.status, refundId: d.chargeback_transfer_id });
      const amount = BigInt(d.amount_minor);
      let updated: DisputeRow;
      if (input.decision === 'chargeback' && (await deps.payments.bankSide(d.payment_id, tx)).atBank) {
        // Never a move between hub accounts (it would credit the bank's position, its customer never credited): the
        // merchant's owner refunds through the bank (accept, then commit or abort through the outbox). Written
        // asking here; settleChargebackAtBank asks the bank after this COMMIT and decides the dispute.
        const refund = await deps.payments.refund(tx, actor, d.respondent_participant_id, d.payment_id, amount);
        if (!refund.ok) {
          if (refund.error.code === 'refund_exceeds_captured') return err('dispute_amount_invalid', 'refunds since the dispute was opened leave less than it claims', refund.error.details);
          if (refund.error.code === 'refund_rejected') return err('refund_rejected', refund.error.message, refund.error.details);
          if (refund.error.code === 'payment_state' || refund.error.code === 'payment_not_found') return err(refund.error.code, refund.error.message, refund.error.details);
          throw new Error(`dispute: the chargeback's refund was refused: ${refund.error.code}`);
        }
        if (!refund.value.atBank) throw new Error('dispute: a payment paid at a bank was refunded at the hub');
        const [row] = await tx.query<DisputeRow>('update disputes set chargeback_transfer_id = $2, updated_at = $3 where id = $1 returning *', [id, refund.value.refundId, clock.now()]);
        if (row === undefined) throw new Error(`dispute ${id} vanished under its lock`);
        await addStep(tx, id, participantId, 'chargeback_asked_bank', input.evidence, amount);
        await audit.record(tx, { actor, action: 'dispute.chargeback_asked', objectType: 'dispute', objectId: id, details: { by: participantId, refundId: refund.value.refundId } });
        return ok(await toDispute(tx, row));
      }
      if (input.decision === 'chargeback') {
        // Recorded on the payment first (its row locked), so that its merchant cannot refund the same money again and
        // refunds made since the dispute was opened are counted: refused with nothing moved when they left less.
        const recorded = await deps.payments.chargedBack(tx, d.payment_id, amount);
        if (!recorded.ok) {
          const e = recorded.error;
          if (e.code === 'refund_exceeds_captured') {
            const left = e.details !== undefined && 'refundable' in e.details && typeof e.details.refundable === 'string' ? e.details.refundable : undefined;
            if (left === undefined) throw new Error('dispute: a refusal of the chargeback without what is left');
            return err('dispute_amount_invalid', 'refunds since the dispute was opened leave less than it claims', { disputable: { amount: left, currency: d.currency }, paymentId: d.payment_id });
          }
          if (e.code === 'payment_currency_mismatch') return err('currency_mismatch', e.message, e.details);
          if (e.code === 'payment_state' || e.code === 'payment_not_found') return err(e.code, e.message, e.details);
          throw new Error(`dispute: the payment refused the chargeback: ${e.code}`);
        }
        const transferId = newId('chb');
        const moved = await move(tx, { id: transferId, fromAccountId: d.respondent_account_id, fromParticipantId: d.respondent_participant_id, toAccountId: d.payer_account_id, toParticipantId: d.issuer_participant_id, amountMinor: amount, currency: d.currency, purpose: 'chargeback', objectId: id });
        if (!moved.ok) return moved;
        updated = await setStatus(tx, id, 'chargeback', { respondBy: new Date(clock.nowMs() + DISPUTE_RESPONSE_MS), chargeback: transferId });
        await addStep(tx, id, participantId, 'chargeback', input.evidence, amount);
      } else {
        updated = await setStatus(tx, id, 'rejected');
        await addStep(tx, id, participantId, 'rejected', input.evidence, null);
      }
      await audit.record(tx, { actor, action: `dispute.${input.decision === 'chargeback' ? 'charged_back' : 'rejected'}`, objectType: 'dispute', objectId: id, details: { by: participantId } });
      await tellDispute(tx, updated, 'dispute.updated', participantId, input.evidence);
      return ok(await toDispute(tx, updated));
    },
    settleChargebackAtBank,
    async respond(tx, actor, participantId, id, input) {
      const d = await disputeRow(tx, id, true);
      if (d === undefined) return err('dispute_not_found', 'no such dispute');
      if (d.respondent_participant_id !== participantId) return err('dispute_not_party', d.kind === 'card' ? 'only the merchant’s participant answers a chargeback' : 'only the payee’s participant answers a P2P dispute');
      const expected = d.kind === 'card' ? 'chargeback' : 'opened';
      if (d.status !== expected) return err('dispute_state', `the dispute is ${d.status}`, { status: d.status });
      if (d.respond_by.getTime() < clock.nowMs()) return err('dispute_deadline_passed', 'the answer was due by respondBy', { respondBy: d.respond_by.toISOString() });
      if (input.decision === 'represent' && (input.evidence === undefined || input.evidence.trim() === '')) return err('dispute_state', 'a representment needs evidence');
      // A chargeback credited at the customer's bank cannot be represented by the hub: the money back to the merchant
      // would be a debit of the customer's account at the bank, which the hub has no mandate to reserve.
      if (d.kind === 'card' && input.decision === 'represent' && d.chargeback_transfer_id !== null && (await deps.payments.bankSide(d.payment_id, tx)).atBank) {
        return err('dispute_at_connected_bank', 'the chargeback was credited at the customer’s bank: a representment is taken up with that bank', { paymentId: d.payment_id });
      }
      const amount = BigInt(d.amount_minor);
      let updated: DisputeRow;
      let action: string;
      if (d.kind === 'card' && input.decision === 'accept') {
        updated = await setStatus(tx, id, 'won_by_customer');
        action = 'accepted';
      } else if (d.kind === 'card') {
        // Representment: the chargeback's money goes back to the merchant, and the payment's merchant may refund it again.
        const given = await deps.payments.represented(tx, d.payment_id, amount);
        if (!given.ok) throw new Error(`dispute: the payment refused the representment: ${given.error.code}`);
        const transferId = newId('rpm');
        const moved = await move(tx, { id: transferId, fromAccountId: d.payer_account_id, fromParticipantId: d.issuer_participant_id, toAccountId: d.respondent_account_id, toParticipantId: d.respondent_participant_id, amountMinor: amount, currency: d.currency, purpose: 'representment', objectId: id });
        if (!moved.ok) return moved;
        updated = await setStatus(tx, id, 'won_by_respondent', { representment: transferId });
        action = 'represented';
      } else if (input.decision === 'accept') {
        const transferId = newId('dre');
        const moved = await move(tx, { id: transferId, fromAccountId: d.respondent_account_id, fromParticipantId: d.respondent_participant_id, toAccountId: d.payer_account_id, toParticipantId: d.issuer_participant_id, amountMinor: amount, currency: d.currency, purpose: 'dispute_refund', objectId: id });
        if (!moved.ok) return moved;
        updated = await setStatus(tx, id, 'refunded', { chargeback: transferId });
        action = 'refunded';
      } else {
        updated = await setStatus(tx, id, 'won_by_respondent');
        action = 'contested';
      }
      await addStep(tx, id, participantId, action, input.evidence ?? null, action === 'accepted' || action === 'contested' ? null : amount);
      await audit.record(tx, { actor, action: `dispute.${action}`, objectType: 'dispute', objectId: id, details: { by: participantId } });
      await tellDispute(tx, updated, 'dispute.updated', participantId, input.evidence ?? null);
      return ok(await toDispute(tx, updated));
    },

    async openRecall(tx, actor, input) {
      const now = clock.now();
      const p = await deps.transfers.getPayment(input.walletId, input.paymentId);
      if (p === undefined || p.payerParticipantId !== input.walletId || p.payerCustomerId !== input.customerId) return err('payment_not_found', 'no such payment sent by this customer');
      const refused = notReturnable(p, 'recalled');
      if (refused !== undefined) return refused;
      if (p.status !== 'completed') return err('payment_state', `only a completed payment can be recalled; this one is ${p.status}`, { status: p.status });
      if (p.sendCurrency !== p.receiveCurrency) return err('currency_mismatch', 'a payment converted between currencies cannot be recalled here');
      if (now.getTime() - p.createdAt.getTime() > RECALL_WINDOW_MS) return err('recall_window_closed', 'fraud is reported within 80 days of the payment', { paidAt: p.createdAt.toISOString() });
      const [existing] = await tx.query<{ id: string }>(`select id from recalls where payment_id = $1 and status in ('analysing', 'refunded') limit 1`, [p.id]);
      if (existing !== undefined) return err('recall_exists', 'this payment was already recalled', { recallId: existing.id });
      const id = newId('rcl');
      const currency = p.sendCurrency;
      await tx.query(
        `insert into recalls (id, payment_id, wallet_participant_id, customer_id, payee_participant_id, victim_account_id, amount_minor, currency, reason, status, analysis_due_at, refund_due_at, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'analysing', $10, $11, $12, $12)`,
        [id, p.id, input.walletId, input.customerId, p.payeeParticipantId, p.sourceAccountId, p.sendMinor, currency, input.reason, new Date(now.getTime() + RECALL_ANALYSIS_MS), new Date(now.getTime() + RECALL_REFUND_MS), now],
      );
      await addStep(tx, id, input.walletId, 'opened', input.reason, p.sendMinor);
      // Follow the money: freeze what is still in the payee's account, then in the accounts it went to next.
      let remaining = p.sendMinor;
      let frozen = 0n;
      let seq = 0;
      const seen = new Set<string>([p.sourceAccountId]);
      let frontier = [p.payeeAccountId];
      for (let hop = 0; hop <= RECALL_MAX_HOP && remaining > 0n && frontier.length > 0; hop++) {
        const next: string[] = [];
        for (const accountId of frontier) {
          if (seen.has(accountId) || seen.size > RECALL_MAX_ACCOUNTS || remaining <= 0n) continue;
          seen.add(accountId);
          const got = await ledger.getAccount(accountId);
          if (!got.ok || got.value.kind !== 'customer' || got.value.closed || got.value.currency !== currency) continue;
          const a = got.value;
          const available = a.creditsPostedMinor - a.debitsPostedMinor - a.debitsPendingMinor;
          const take = available < remaining ? available : remaining;
          if (take > 0n) {
            seq += 1;
            const holdId = `${id}_h${seq}`;
            const chain = interparticipantLegs({
              legId: (leg) => `${holdId}_${leg}`,
              sourceAccountId: a.id,
              payeeAccountId: p.sourceAccountId,
              payerParticipantId: a.ownerParticipantId,
              payeeParticipantId: p.payerParticipantId,
              ...(await positionAccounts(accounts, a.ownerParticipantId, p.payerParticipantId, currency)),
              amountMinor: take,
              currency,
              purpose: 'fraud_recall',
              paymentId: id,
              metadata: { recallId: id },
            });
            const legs: TransferInput[] = chain.legs.map((l, k) => ({ ...(l as Extract<TransferInput, { debitAccountId: string }>), kind: 'pending' as const, timeoutMs: RECALL_REFUND_MS, linked: k < chain.legs.length - 1 }));
            const results = await ledger.applyInTx(tx as Tx, legs);
            if (results.every((r) => r.ok)) {
              const moveRow = chain.move === undefined ? null : { ...chain.move, transferId: `${chain.move.transferId}_post`, amountMinor: chain.move.amountMinor.toString() };
              await tx.query(
                `insert into recall_holds (recall_id, seq, account_id, owner_participant_id, hop, amount_minor, pending_ids, position_move, status) values ($1, $2, $3, $4, $5, $6, $7, $8, 'held')`,
                [id, seq, a.id, a.ownerParticipantId, hop, take, legs.map((l) => l.id), moveRow],
              );
              await addStep(tx, id, a.ownerParticipantId, `frozen_hop_${hop}`, null, take);
              remaining -= take;
              frozen += take;
            }
          }
          if (hop < RECALL_MAX_HOP && remaining > 0n) next.push(...(await nextAccounts(a.id, p.createdAt)));
        }
        frontier = next;
      }
      const [row] = await tx.query<RecallRow>('update recalls set frozen_minor = $2 where id = $1 returning *', [id, frozen]);
      await audit.record(tx, { actor, action: 'recall.opened', objectType: 'recall', objectId: id, details: { paymentId: p.id, amountMinor: p.sendMinor.toString(), frozenMinor: frozen.toString(), holds: seq } });
      await tellRecall(tx, row!, 'recall.opened', input.walletId);
      return ok(await toRecall(tx, row!));
    },
    getRecall,
    async analyseRecall(tx, actor, participantId, id, input) {
      const r = await recallRow(tx, id, true);
      if (r === undefined) return err('recall_not_found', 'no such recall');
      if (r.payee_participant_id !== participantId) return err('dispute_not_party', 'only the payee’s participant analyses a recall');
      if (r.status !== 'analysing') return err('recall_state', `the recall is ${r.status}`, { status: r.status });
      if (r.analysis_due_at.getTime() < clock.nowMs()) return err('recall_deadline_passed', 'the analysis was due within 7 days', { analysisDueAt: r.analysis_due_at.toISOString() });
      const holds = (await holdsOf(tx, id)).filter((h) => h.status === 'held');
      const refund = input.decision === 'accept';
      const ops: TransferInput[] = holds.flatMap((h) => h.pending_ids.map((pid) => (refund ? { kind: 'post_pending' as const, id: `${pid}_post`, pendingId: pid, purpose: 'fraud_refund' } : { kind: 'void_pending' as const, id: `${pid}_void`, pendingId: pid, purpose: 'fraud_release' })));
      const results = await ledger.applyInTx(tx as Tx, ops);
      const bad = results.find((x) => !x.ok);
      if (bad !== undefined && !bad.ok) {
        if (bad.error.code === 'pending_expired') return err('recall_deadline_passed', 'the holds lapsed: the refund was due within 11 days');
        throw new Error(`recall: ledger refused ${bad.error.code}`);
      }
      if (refund) {
        const moves: PositionMove[] = holds.flatMap((h) => (h.position_move === null ? [] : [{ ...h.position_move, amountMinor: BigInt(h.position_move.amountMinor) }]));
        if (moves.length > 0) await settlement.recordMoves(tx, moves);
      }
      await tx.query(`update recall_holds set status = $2 where recall_id = $1 and status = 'held'`, [id, refund ? 'refunded' : 'released']);
      const [row] = await tx.query<RecallRow>(`update recalls set status = $2, refunded_minor = $3, updated_at = $4 where id = $1 returning *`, [id, refund ? 'refunded' : 'rejected', refund ? r.frozen_minor : 0n, clock.now()]);
      await addStep(tx, id, participantId, refund ? 'fraud_confirmed_refunded' : 'rejected', input.evidence, refund ? BigInt(r.frozen_minor) : null);
      await audit.record(tx, { actor, action: refund ? 'recall.refunded' : 'recall.rejected', objectType: 'recall', objectId: id, details: { by: participantId, frozenMinor: String(r.frozen_minor) } });
      await tellRecall(tx, row!, 'recall.decided', participantId);
      return ok(await toRecall(tx, row!));
    },
    async sweep() {
      const now = clock.now();
      let disputes = 0;
      let recalls = 0;
      const dueDisputes = await db.query<{ id: string }>(`select id from disputes where status = 'chargeback' and respond_by < $1 order by respond_by limit 100`, [now]);
      for (const { id } of dueDisputes) {
        await db.transaction(async (tx) => {
          const d = await disputeRow(tx, id, true);
          if (d === undefined || d.status !== 'chargeback' || d.respond_by.getTime() >= clock.nowMs()) return;
          const updated = await setStatus(tx, id, 'won_by_customer');
          await addStep(tx, id, null, 'chargeback_stands_unanswered', null, null);
          await audit.record(tx, { actor: { type: 'system' }, action: 'dispute.unanswered', objectType: 'dispute', objectId: id, details: { respondBy: d.respond_by.toISOString() } });
          await tellDispute(tx, updated, 'dispute.updated', null, null);
          disputes += 1;
        });
      }
      // A chargeback at a bank left asking (the hub stopped between its COMMIT and the ask): decided now — the refund's
      // own sweep fails it past the bank's deadline (AB03, aborted at the bank), or the bank is asked. A minute's
      // grace leaves the route's own answer step to do it.
      const atBank = await db.query<{ id: string; chargeback_transfer_id: string }>(
        `select id, chargeback_transfer_id from disputes where status = 'opened' and chargeback_transfer_id is not null and updated_at < $1 order by updated_at limit 100`,
        [new Date(now.getTime() - 60_000)],
      );
      for (const { id, chargeback_transfer_id: refundId } of atBank) {
        const r = await settleChargebackAtBank(id, refundId);
        if (r?.ok === true && r.value.status === 'chargeback') disputes += 1;
      }
      const dueRecalls = await db.query<{ id: string }>(`select id from recalls where status = 'analysing' and refund_due_at < $1 order by refund_due_at limit 100`, [now]);
      // The holds' own deadline is the refund deadline: the ledger voids them (as its background job would).
      if (dueRecalls.length > 0) await ledger.expirePending();
      for (const { id } of dueRecalls) {
        await db.transaction(async (tx) => {
          const r = await recallRow(tx, id, true);
          if (r === undefined || r.status !== 'analysing') return;
          const holds = (await holdsOf(tx, id)).filter((h) => h.status === 'held');
          // Holds the ledger has not expired yet are released now; ones it expired already need nothing.
          await ledger.applyInTx(tx, holds.flatMap((h) => h.pending_ids.map((pid) => ({ kind: 'void_pending' as const, id: `${pid}_void`, pendingId: pid, purpose: 'fraud_release' }))));
          await tx.query(`update recall_holds set status = 'released' where recall_id = $1 and status = 'held'`, [id]);
          const [row] = await tx.query<RecallRow>(`update recalls set status = 'expired', updated_at = $2 where id = $1 returning *`, [id, clock.now()]);
          await addStep(tx, id, null, 'expired_unanswered', null, null);
          await audit.record(tx, { actor: { type: 'system' }, action: 'recall.expired', objectType: 'recall', objectId: id, details: { refundDueAt: r.refund_due_at.toISOString() } });
          await tellRecall(tx, row!, 'recall.decided', null);
          recalls += 1;
        });
      }
      return { disputes, recalls };
    },
  };
}
