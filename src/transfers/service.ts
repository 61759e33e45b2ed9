import type { RefLearner } from '../api/index.ts';
import type { Actor, AuditService } from '../audit/index.ts';
import { customerAccountId, type AccountRef, type AccountService } from '../accounts/index.ts';
import { FLAGGED_WARNING, type AliasRecord, type AliasService } from '../aliases/index.ts';
import { formatMoney } from '../platform/money.ts';
import { maskName, type AliasType } from '../aliases/index.ts';
import { interparticipantLegs, positionAccounts, type PositionMove, type SettlementService } from '../settlement/index.ts';
import type { StepUpBinding, StepUpService } from '../stepup/index.ts';
import type { CustomerService } from '../customers/index.ts';
import { computeFee, conversion, convertReceiveToSend, formatScaled, toEurCents } from '../fx/index.ts';
import type { BoundRate, FxService } from '../fx/index.ts';
import type { Ledger } from '../ledger/index.ts';
import type { TransferInput, TransferResult } from '../ledger/index.ts';
import { riskHistoryOf, riskHistorySql, type RiskInput, type RiskRules, type RiskService } from '../risk/index.ts';
import type { Clock } from '../platform/clock.ts';
import { pipeliner, type Db, type Flusher, type Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { createCoalescer } from '../platform/coalescer.ts';
import { createTokenBucketLimiter } from '../platform/rate-limit.ts';
import { err, ok, type Result } from '../platform/result.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { Connection } from '../participants/index.ts';
import type { AskOutcome, OutboxMessage } from '../connectors/index.ts';
import type { OpenBankingService } from '../accounts/index.ts';
import type { ConnectorRequest, StatusReason, TransferStatus } from '../participant-sdk/index.ts';
import type { TErr } from './errors.ts';
import { splitByShares, splitEqual, splitRandom } from './split.ts';

export const QUOTE_TTL_MS = 30_000;
export const REQUEST_TTL_MS = 7 * 24 * 3_600_000;
export const RED_PACKET_TTL_MS = 24 * 3_600_000;
export const MAX_PENDING_REQUESTS_PER_PAYER = 5;
export const REMINDER_INTERVAL_MS = 3_600_000;

/** Daily and monthly limits per KYC level, in EUR cents at mid rate (every currency counts against one limit). */
export const KYC_LIMITS_EUR_CENTS: Readonly<Record<number, { daily: bigint; monthly: bigint }>> = {
  0: { daily: 10_000n, monthly: 30_000n },
  1: { daily: 100_000n, monthly: 500_000n },
  2: { daily: 500_000n, monthly: 2_000_000n },
  3: { daily: 5_000_000n, monthly: 20_000_000n },
};

export const REQUEST_WARNING =
  'Approving this request SENDS money from your account. You never receive money by approving a request. Only approve if you know the requester and expect to pay them.';
export const FIRST_TIME_WARNING = 'You have never paid this person before: it may be a scam.';

/** Bound on the connected payments decided in one transaction. */
const MAX_DECIDE_BATCH = 64;
/** A bound on the fee schedules listed at once (one per ordered pair of participants that has one). */
export const FEE_LIST_LIMIT = 500;

export interface FeeScheduleRecord {
  readonly payerParticipantId: string;
  readonly payeeParticipantId: string;
  readonly fixedMinor: bigint;
  readonly fixedCurrency: string;
  readonly bps: number;
}

export interface MoneyMover {
  readonly name: string;
  move(tx: Queryable, legs: readonly TransferInput[]): Promise<TransferResult[]>;
}

/*
 * Why confirms are batched (confirmMany, run by the route's effect batcher): a batch of confirms is ONE transaction
 * holding every payment's records (payment, audit, outbox, idempotency answer) and its money (ledger.applyInTx, the
 * ledger's one way in, with one linked chain per payment): all or nothing per payment, one commit per batch, and a hot
 * payee's row updated once per batch. The money never commits apart from the records, so no sweeper has to finish what
 * a crash left in between.
 */
export function ledgerMoneyMover(ledger: Ledger): MoneyMover {
  return { name: 'hub-ledger', move: (tx, legs) => ledger.applyInTx(tx, legs) };
}

export interface Payee {
  readonly aliasId: string;
  readonly participantId: string;
  readonly participantName: string;
  readonly customerId: string;
  readonly customerName: string;
  readonly accountId: string;
  readonly currency: string;
  readonly flagged: boolean;
}

export interface Quote {
  readonly id: string;
  readonly payerParticipantId: string;
  readonly payerCustomerId: string;
  readonly sourceAccountId: string;
  readonly payee: { readonly maskedName: string; readonly participantId: string; readonly participantName: string; readonly flagged: boolean };
  readonly sendMinor: bigint;
  readonly sendCurrency: string;
  readonly receiveMinor: bigint;
  readonly receiveCurrency: string;
  readonly feeMinor: bigint;
  readonly rate: string | null;
  readonly midRate: string | null;
  readonly spreadBps: number;
  /** The FX provider's posted rate this quote bound (null in one currency). */
  readonly fxRateId: string | null;
  readonly fxProviderId: string | null;
  readonly requestId: string | null;
  readonly warnings: readonly string[];
  readonly expiresAt: Date;
  readonly createdAt: Date;
}

/** A quote as planned, with what storing it needs beyond what the payer is shown. */
type PlannedQuote = Quote & { readonly payeeAliasId: string; readonly payeeCustomerId: string; readonly payeeAccountId: string; readonly refEurCents: bigint };

/**
 * What a payment with a connected side needs from the participants' modes and the connectors (src/connectors), given
 * by the composition root: the transfers capability decides, the connectors carry the messages.
 */
export interface ConnectedSides {
  /** The participant's connection in a currency when it is connected; undefined when hosted. */
  connection(participantId: string, currency: string, q?: Queryable): Promise<Connection | undefined>;
  ask(connection: Connection, op: 'reserve' | 'accept', request: ConnectorRequest): Promise<AskOutcome>;
  enqueue(tx: Queryable, messages: readonly OutboxMessage[]): void;
  /** Sends the staged commit/abort messages now (after the deciding COMMIT), without waiting. */
  deliverSoon(): void;
  /** How long each phase of a connected payment took (the bank's reserve or accept, the hub's decision), for /metrics. */
  observe?(phase: ConnectedPhase, ms: number): void;
}
export type ConnectedPhase = 'reserve' | 'accept' | 'decide';

/** The hub's own MD01: the consent the debit relied on ended at the hub before the bank was asked (the bank is not asked). */
export const CONSENT_ENDED_AT_HUB: StatusReason = { Rsn: 'MD01', AddtlInf: 'the customer revoked the consent to debit this account' };

/** A margin on top of the connected sides' deadlines for the hub's own work between the calls. */
export const CONNECTED_DEADLINE_MARGIN_MS = 1_000;

export interface Payment {
  readonly id: string;
  readonly quoteId: string;
  /** `pending` while a connected participant is being asked; `rejected` (with `reason`, ISO 20022) when it refused or the deadline passed. */
  readonly status: 'completed' | 'pending' | 'rejected';
  readonly reason: StatusReason | null;
  readonly payerParticipantId: string;
  readonly payerCustomerId: string;
  readonly payeeParticipantId: string;
  readonly payeeCustomerId: string;
  readonly sendMinor: bigint;
  readonly sendCurrency: string;
  readonly receiveMinor: bigint;
  readonly receiveCurrency: string;
  readonly feeMinor: bigint;
  readonly rate: string | null;
  readonly requestId: string | null;
  readonly transferIds: readonly string[];
  /** The payer's account debited and the payee's account credited (disputes and recalls move money between them). */
  readonly sourceAccountId: string;
  readonly payeeAccountId: string;
  /** Its sides at participants that keep their own books (the money moved at the bank, not in a hub account). */
  readonly connected: readonly ('payer' | 'payee')[];
  /** A red packet's own movement (its funding or refund at the sender's bank, a share paid to a connected member), not a customer's payment. */
  readonly redPacket: boolean;
  readonly createdAt: Date;
}

export interface MoneyRequest {
  readonly id: string;
  readonly requesterParticipantId: string;
  readonly requesterCustomerId: string;
  readonly requesterMaskedName: string;
  readonly requesterParticipantName: string;
  readonly payerParticipantId: string;
  readonly payerCustomerId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly note: string | null;
  readonly firstTime: boolean;
  readonly flagged: boolean;
  readonly splitId: string | null;
  readonly status: 'pending' | 'paid' | 'declined' | 'cancelled' | 'expired';
  readonly paymentId: string | null;
  readonly warning: string;
  readonly expiresAt: Date;
  readonly createdAt: Date;
}

export interface SplitView {
  readonly id: string;
  readonly participantId: string;
  readonly customerId: string;
  readonly totalMinor: bigint;
  readonly currency: string;
  readonly method: 'equal' | 'shares' | 'amounts';
  readonly note: string | null;
  readonly members: readonly { idx: number; maskedName: string; amountMinor: bigint; isPayer: boolean; requestId: string | null; status: 'paid' | 'pending' | 'declined' | 'expired' | 'cancelled' }[];
  readonly createdAt: Date;
}

export interface RedPacketView {
  readonly id: string;
  readonly participantId: string;
  readonly customerId: string;
  readonly totalMinor: bigint;
  readonly currency: string;
  readonly shareCount: number;
  readonly mode: 'equal' | 'random';
  readonly message: string | null;
  /**
   * `funding` while the sender's bank is asked to reserve (a packet funded from an account at a connected bank), then
   * `open`, or `failed` (refused: nothing moved); at expiry `completed`, `refunded`, or `refunding` while the rest goes
   * back to the sender's bank (waiting in the escrow for the next try after a refusal).
   */
  readonly status: RedPacketStatus;
  /** The payment that funds it from an account at a connected bank (null when funded from an account at the hub). */
  readonly fundingPaymentId: string | null;
  /** Why the funding was refused (`failed`), or the last refund attempt (`refunding`): ISO 20022. */
  readonly reason: StatusReason | null;
  /** `refunding` after a refusal: when the refund is tried again. */
  readonly refundRetryAt: Date | null;
  readonly claimedCount: number;
  readonly claimedMinor: bigint;
  readonly refundedMinor: bigint;
  readonly claims: readonly { maskedName: string; amountMinor: bigint; claimedAt: Date }[];
  readonly expiresAt: Date;
  readonly createdAt: Date;
}

export type RedPacketStatus = 'funding' | 'open' | 'failed' | 'refunding' | 'completed' | 'refunded';

/** Payments of red packets funded from (and refunded to) an account at a connected bank: their ids say which. */
const FUNDING_PREFIX = 'pay_rpf_';
const REFUND_PREFIX = 'pay_rpr_';
/** A share of a red packet paid to a member at a connected bank. */
const CLAIM_PREFIX = 'pay_rpk_';
const isRedPacketPayment = (id: string) => id.startsWith(FUNDING_PREFIX) || id.startsWith(REFUND_PREFIX) || id.startsWith(CLAIM_PREFIX);
/** A refund the sender's bank refused is tried again after 1 min, doubling, at most hourly: the money waits in escrow. */
export const REFUND_RETRY_MS = 60_000;
const REFUND_RETRY_MAX_MS = 3_600_000;
export const refundRetryDelayMs = (attempts: number) => Math.min(REFUND_RETRY_MS * 2 ** Math.max(0, Math.min(attempts - 1, 10)), REFUND_RETRY_MAX_MS);

type Participant = { readonly id: string; readonly country: string };

export interface ConfirmInput {
  readonly actor: Actor;
  readonly participantId: string;
  readonly quoteId: string;
  /** A completed step-up challenge for this payment (after `step_up_required`). */
  readonly stepUpChallengeId?: string | undefined;
}

export interface QuoteInput {
  readonly customerId: string;
  readonly sourceAccountId?: string | undefined;
  readonly payee: { readonly type: AliasType; readonly value: string };
  readonly sendAmount?: { readonly amountMinor: bigint; readonly currency: string } | undefined;
  readonly receiveAmount?: { readonly amountMinor: bigint; readonly currency: string } | undefined;
  /** The FX provider to convert through (across currencies); by default the one whose rate in force is best. */
  readonly fxProviderId?: string | undefined;
}

/** Bound on quotes planned in one transaction (one batch of the quotes batcher). */
export const MAX_QUOTE_BATCH = 128;

/** Bound on payments confirmed in one transaction (one batch of the payments batcher). */
export const MAX_CONFIRM_BATCH = 128;

export interface TransferLimits {
  requestsPerMinute: number;
  requestBurst: number;
}

export interface TransferService {
  readonly requestLimits: TransferLimits;
  /**
   * Quotes up to MAX_QUOTE_BATCH payments in the caller's transaction (reads and the insert set-based), one result
   * per item, in order; only the successful ones are stored. Sent through the quotes batcher (routes).
   */
  quoteMany(tx: Queryable, items: readonly { payer: Participant; input: QuoteInput }[]): Promise<Result<Quote, TErr>[]>;
  /**
   * Confirms up to MAX_CONFIRM_BATCH quotes in the caller's transaction, one result per input, in order. A refused
   * payment writes nothing but its risk alert (when risk refused it); the others commit with the transaction. Sent
   * through the payments batcher (routes), so that concurrent confirms share one transaction and set-based statements.
   */
  confirmMany(tx: Queryable, inputs: readonly ConfirmInput[]): Promise<Result<Payment, TErr>[]>;
  getPayment(participantId: string, id: string): Promise<Payment | undefined>;
  listPayments(participantId: string, customerId: string | undefined, limit: number): Promise<Payment[]>;
  setFee(tx: Queryable, actor: Actor, input: { payerParticipantId: string; payeeParticipantId: string; fixedMinor: bigint; fixedCurrency: string; bps: number }): Promise<Result<void, TErr>>;
  /** The fee schedules in force, by payer then payee (at most FEE_LIST_LIMIT). */
  listFees(): Promise<FeeScheduleRecord[]>;

  createRequest(
    tx: Queryable,
    actor: Actor,
    requester: Participant,
    input: { customerId: string; payer: { type: AliasType; value: string }; amountMinor: bigint; currency: string; note?: string | undefined; accountId?: string | undefined },
  ): Promise<Result<MoneyRequest, TErr>>;
  listRequests(participantId: string, customerId: string, role: 'payer' | 'requester', limit: number): Promise<MoneyRequest[]>;
  getRequest(participantId: string, id: string): Promise<MoneyRequest | undefined>;
  approveRequest(tx: Queryable, actor: Actor, payer: Participant, requestId: string, input: { customerId: string; sourceAccountId?: string | undefined }): Promise<Result<Quote, TErr>>;
  declineRequest(tx: Queryable, actor: Actor, participantId: string, requestId: string, input: { customerId: string; block?: boolean | undefined }): Promise<Result<MoneyRequest, TErr>>;

  createSplit(
    tx: Queryable,
    actor: Actor,
    creator: Participant,
    input: { customerId: string; totalMinor: bigint; currency: string; method: 'equal' | 'shares' | 'amounts'; note?: string | undefined; members: readonly { alias: { type: AliasType; value: string }; shares?: number | undefined; amountMinor?: bigint | undefined }[] },
  ): Promise<Result<SplitView, TErr>>;
  getSplit(participantId: string, id: string, q?: Queryable): Promise<SplitView | undefined>;
  remind(tx: Queryable, actor: Actor, participantId: string, splitId: string): Promise<Result<{ reminded: number }, TErr>>;

  createRedPacket(
    tx: Queryable,
    actor: Actor,
    sender: Participant,
    input: { customerId: string; sourceAccountId?: string | undefined; totalMinor: bigint; currency: string; shares: number; mode: 'equal' | 'random'; members: readonly { type: AliasType; value: string }[]; message?: string | undefined; expiresInS?: number | undefined },
  ): Promise<Result<RedPacketView, TErr>>;
  /** A member at a participant that keeps its own books is paid through the two-phase path: `paymentId`, pending (settleConnected decides). */
  claimRedPacket(tx: Queryable, actor: Actor, participantId: string, packetId: string, customerId: string): Promise<Result<{ amountMinor: bigint; currency: string; packet: RedPacketView; paymentId?: string }, TErr>>;
  getRedPacket(participantId: string, id: string, q?: Queryable): Promise<RedPacketView | undefined>;
  /** Refunds what is unclaimed in packets past expiry, at most `maxPackets` per call. */
  sweepRedPackets(maxPackets?: number): Promise<{ refunded: number; completed: number }>;

  /**
   * Finishes a pending payment with a connected side: asks the payer's bank to reserve and the payee's bank to accept
   * (outside any transaction), then commits the hub's legs and tells both to commit, or voids them and tells both to
   * release. Idempotent: a decided payment is answered as it is. Undefined: no such payment.
   */
  settleConnected(paymentId: string): Promise<Payment | undefined>;
  /**
   * A quote between two accounts the customer may use here: their own, and one linked into the wallet (a top-up from a
   * bank account, a withdrawal to it). Confirmed as any quote (POST /v1/transfers/payments): with a connected bank, the
   * bank reserves the debit or accepts the credit.
   */
  quoteOwnTransfer(
    tx: Queryable,
    payer: Participant,
    input: { customerId: string; sourceAccountId: string; payeeAccountId: string; amountMinor: bigint; currency: string },
  ): Promise<Result<Quote, TErr>>;
  /** Aborts (AB03) pending payments whose deadline passed: after a crash nothing stays reserved. Returns how many. */
  recoverConnected(limit?: number): Promise<number>;
  /** A transfer's state as the connector protocol says it, for one of its two participants. */
  connectorStatus(participantId: string, paymentId: string): Promise<TransferStatus | undefined>;
}

interface QuoteRow {
  id: string;
  payer_participant_id: string;
  payer_customer_id: string;
  source_account_id: string;
  payee_alias_id: string;
  payee_participant_id: string;
  payee_customer_id: string;
  payee_account_id: string;
  send_minor: bigint;
  send_currency: string;
  receive_minor: bigint;
  receive_currency: string;
  fee_minor: bigint;
  rate: string | null;
  mid_rate: string | null;
  fx_rate_id: string | null;
  fx_provider_participant_id: string | null;
  spread_bps: number;
  ref_eur_cents: bigint;
  request_id: string | null;
  status: 'open' | 'used';
  expires_at: Date;
  created_at: Date;
}

interface PaymentRow {
  id: string;
  quote_id: string;
  status: 'completed' | 'pending' | 'rejected';
  reason: string | null;
  connected: string[];
  deadline_at: Date | null;
  payer_participant_id: string;
  payer_customer_id: string;
  payee_participant_id: string;
  payee_customer_id: string;
  send_minor: bigint;
  send_currency: string;
  receive_minor: bigint;
  receive_currency: string;
  fee_minor: bigint;
  rate: string | null;
  request_id: string | null;
  transfer_ids: string[];
  source_account_id: string;
  payee_account_id: string;
  created_at: Date;
}
const toPayment = (r: PaymentRow): Payment => ({
  id: r.id,
  quoteId: r.quote_id,
  status: r.status,
  reason: r.reason === null ? null : reasonOf(r.reason),
  payerParticipantId: r.payer_participant_id,
  payerCustomerId: r.payer_customer_id,
  payeeParticipantId: r.payee_participant_id,
  payeeCustomerId: r.payee_customer_id,
  sendMinor: r.send_minor,
  sendCurrency: r.send_currency,
  receiveMinor: r.receive_minor,
  receiveCurrency: r.receive_currency,
  feeMinor: r.fee_minor,
  rate: r.rate,
  requestId: r.request_id,
  transferIds: r.transfer_ids,
  sourceAccountId: r.source_account_id,
  payeeAccountId: r.payee_account_id,
  connected: r.connected.filter((side): side is 'payer' | 'payee' => side === 'payer' || side === 'payee'),
  redPacket: isRedPacketPayment(r.id),
  createdAt: r.created_at,
});

interface RequestRow {
  id: string;
  requester_participant_id: string;
  requester_customer_id: string;
  requester_name: string;
  requester_participant_name: string;
  requester_account_id: string;
  payer_participant_id: string;
  payer_customer_id: string;
  amount_minor: bigint;
  currency: string;
  note: string | null;
  first_time: boolean;
  flagged: boolean;
  split_id: string | null;
  status: MoneyRequest['status'];
  payment_id: string | null;
  expires_at: Date;
  created_at: Date;
}
const REQUEST_SELECT = `select r.*, c.name as requester_name, p.name as requester_participant_name,
  exists (select 1 from alias_flags f join aliases a on a.id = f.alias_id where a.participant_id = r.requester_participant_id and a.customer_id = r.requester_customer_id) as flagged
  from money_requests r join customers c on c.id = r.requester_customer_id join participants p on p.id = r.requester_participant_id`;

function toRequest(r: RequestRow, nowMs: number): MoneyRequest {
  const status = r.status === 'pending' && r.expires_at.getTime() <= nowMs ? 'expired' : r.status;
  const warning = [REQUEST_WARNING, ...(r.first_time ? [FIRST_TIME_WARNING] : []), ...(r.flagged ? [FLAGGED_WARNING] : [])].join(' ');
  return {
    id: r.id,
    requesterParticipantId: r.requester_participant_id,
    requesterCustomerId: r.requester_customer_id,
    requesterMaskedName: maskName(r.requester_name),
    requesterParticipantName: r.requester_participant_name,
    payerParticipantId: r.payer_participant_id,
    payerCustomerId: r.payer_customer_id,
    amountMinor: r.amount_minor,
    currency: r.currency,
    note: r.note,
    firstTime: r.first_time,
    flagged: r.flagged,
    splitId: r.split_id,
    status,
    paymentId: r.payment_id,
    warning,
    expiresAt: r.expires_at,
    createdAt: r.created_at,
  };
}

/** A stored reason `CODE` or `CODE: text` as ISO's StsRsnInf. */
const reasonOf = (stored: string): StatusReason => {
  const at = stored.indexOf(': ');
  return at < 0 ? { Rsn: stored } : { Rsn: stored.slice(0, at), AddtlInf: stored.slice(at + 2) };
};
const storedReason = (r: StatusReason) => (r.AddtlInf === undefined ? r.Rsn : `${r.Rsn}: ${r.AddtlInf}`.slice(0, 500));

const failed = (results: readonly TransferResult[]) => results.find((r) => !r.ok && r.error.code !== 'linked_transfer_failed') ?? results.find((r) => !r.ok);

/**
 * A confirmed payment as staged: payment id, quote id, its transfer ids (comma-separated), created at (ISO), status,
 * its connected sides (comma-separated), its deadline (ISO, or null).
 */
type StagedPayment = readonly [string, string, string, string, string, string, string | null];

/**
 * Writes a batch's confirmed payments with its COMMIT, in one statement: each quote marked used, its payment recorded
 * (the quote's amounts), the money request it pays (if any) marked paid. The quotes and requests are locked by the
 * batch already.
 */
const paymentFlusher: Flusher<StagedPayment> = {
  flush: (tx, rows) =>
    tx.query(
      `with v as (select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) with ordinality as v(id, quote_id, tids, at, status, sides, deadline, n)),
            used as (update quotes q set status = 'used' from v where q.id = v.quote_id returning q.*),
            paid as (update money_requests r set status = 'paid', payment_id = v.id from v join used u on u.id = v.quote_id where r.id = u.request_id returning r.id)
       insert into payments (id, quote_id, payer_participant_id, payer_customer_id, source_account_id, payee_participant_id, payee_customer_id, payee_account_id, send_minor, send_currency,
                             receive_minor, receive_currency, fee_minor, rate, ref_eur_cents, request_id, status, transfer_ids, created_at, connected, deadline_at)
       select v.id, q.id, q.payer_participant_id, q.payer_customer_id, q.source_account_id, q.payee_participant_id, q.payee_customer_id, q.payee_account_id, q.send_minor, q.send_currency,
              q.receive_minor, q.receive_currency, q.fee_minor, q.rate, q.ref_eur_cents, q.request_id, v.status, string_to_array(v.tids, ','), v.at::timestamptz,
              case when v.sides = '' then '{}'::text[] else string_to_array(v.sides, ',') end, v.deadline::timestamptz
         from v join used q on q.id = v.quote_id
        order by v.n`,
      [0, 1, 2, 3, 4, 5, 6].map((i) => rows.map((r) => r[i])),
    ),
};

export function createTransferService(deps: {
  db: Db;
  clock: Clock;
  audit: AuditService;
  events: EventOutbox;
  customers: CustomerService;
  accounts: AccountService;
  aliases: AliasService;
  fx: FxService;
  risk: RiskService;
  stepUp: StepUpService;
  mover: MoneyMover;
  /** Records the position legs of payments between two participants in the open settlement window (src/settlement). */
  settlement?: Pick<SettlementService, 'recordMoves'> | undefined;
  limits?: Partial<TransferLimits>;
  /** The ownership registry, told each committed quote's payer, so that its confirm costs no ownership query. */
  refs?: RefLearner;
  /** Participants that keep their own books (connected) and the connectors that reach them; without it, every side is hosted. */
  connected?: ConnectedSides | undefined;
  /** Accounts at connected banks linked by the bank's consent: every debit of one names the consent at reserve time. */
  openBanking?: Pick<OpenBankingService, 'mandateFor' | 'revokedFor' | 'endedAtBank'> | undefined;
}): TransferService {
  const { db, clock, audit, events, customers, accounts, aliases, fx, risk, stepUp, mover, settlement, connected: sides, openBanking } = deps;
  const requestLimits: TransferLimits = { requestsPerMinute: 10, requestBurst: 10, ...deps.limits };
  const requestLimiter = createTokenBucketLimiter({ ratePerS: () => requestLimits.requestsPerMinute / 60, burst: () => requestLimits.requestBurst, nowMs: () => clock.nowMs() });
  const reminderLimiter = createTokenBucketLimiter({ ratePerS: () => 1 / 3600, burst: () => 1, nowMs: () => clock.nowMs() });
  const feeCache = new Map<string, { fixedMinor: bigint; fixedCurrency: string; bps: number } | null>();


  const feeFor = async (q: Queryable, payer: string, payee: string) => {
    const key = `${payer}>${payee}`;
    if (feeCache.has(key)) return feeCache.get(key) ?? null;
    const [r] = await q.query<{ fixed_minor: bigint; fixed_currency: string; bps: number }>('select * from fee_schedules where payer_participant_id = $1 and payee_participant_id = $2', [payer, payee]);
    const v = r === undefined ? null : { fixedMinor: r.fixed_minor, fixedCurrency: r.fixed_currency, bps: r.bps };
    if (feeCache.size > 10_000) feeCache.clear();
    feeCache.set(key, v);
    return v;
  };

  const usedToday = async (q: Queryable, customerId: string): Promise<{ day: bigint; month: bigint }> => {
    const now = clock.now();
    const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const [r] = await q.query<{ day: bigint | null; month: bigint | null }>(
      `select sum(ref_eur_cents) filter (where created_at >= $2)::int8 as day, sum(ref_eur_cents)::int8 as month from payments where payer_customer_id = $1 and created_at >= $3 and status <> 'rejected'`,
      [customerId, dayStart, monthStart],
    );
    return { day: r?.day ?? 0n, month: r?.month ?? 0n };
  };

  const checkLimits = async (q: Queryable, customerId: string, kycLevel: number, refEurCents: bigint): Promise<TErr | undefined> => {
    const limits = KYC_LIMITS_EUR_CENTS[Math.max(0, Math.min(3, kycLevel))]!;
    const used = await usedToday(q, customerId);
    if (used.day + refEurCents > limits.daily) return { code: 'limit_exceeded', message: 'the daily limit for this customer’s KYC level would be exceeded', details: { period: 'daily', kycLevel } };
    if (used.month + refEurCents > limits.monthly) return { code: 'limit_exceeded', message: 'the monthly limit for this customer’s KYC level would be exceeded', details: { period: 'monthly', kycLevel } };
    return undefined;
  };

  /** Limits against usage already read (the pure half of checkLimits). */
  const limitError = (used: { day: bigint; month: bigint }, kycLevel: number, refEurCents: bigint): TErr | undefined => {
    const limits = KYC_LIMITS_EUR_CENTS[Math.max(0, Math.min(3, kycLevel))]!;
    if (used.day + refEurCents > limits.daily) return { code: 'limit_exceeded', message: 'the daily limit for this customer’s KYC level would be exceeded', details: { period: 'daily', kycLevel } };
    if (used.month + refEurCents > limits.monthly) return { code: 'limit_exceeded', message: 'the monthly limit for this customer’s KYC level would be exceeded', details: { period: 'monthly', kycLevel } };
    return undefined;
  };

  /** Statements that do not depend on each other (see pipeliner). */
  const all = pipeliner(db);
  const both = <A, B>(a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> => all<[A, B]>([a, b]);

  const periodStarts = () => {
    const now = clock.now();
    return { dayStart: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())), monthStart: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)) };
  };

  /**
   * Everything quoting needs to know about the payer, in one statement: the customer (scoped to the participant), the
   * day/month usage for KYC limits, and the candidate source account with whether this customer may debit it (their
   * own, or linked and active). No row: no such customer.
   */
  interface PayerContext {
    readonly kycLevel: number;
    readonly used: { day: bigint; month: bigint };
    readonly source: AccountRef | undefined;
  }
  /** payerContext for many payers in one statement, one answer per item, in order. */
  const payerContexts = async (q: Queryable, items: readonly { participantId: string; customerId: string; accountId: string }[]): Promise<(PayerContext | undefined)[]> => {
    if (items.length === 0) return [];
    const { dayStart, monthStart } = periodStarts();
    const rows = await q.query<{ n: bigint; kyc_level: number; day: bigint | null; month: bigint | null; acc_id: string | null; owner_participant_id: string | null; acc_customer_id: string | null; acc_currency: string | null; kind: AccountRef['kind'] | null; closed: boolean | null; linked: boolean }>(
      `select u.n, c.kyc_level, x.day, x.month, a.id as acc_id, a.owner_participant_id, a.customer_id as acc_customer_id, a.currency as acc_currency, a.kind, a.closed,
              exists (select 1 from account_links l where l.wallet_participant_id = u.pid and l.wallet_customer_id = u.cid and l.account_id = u.aid and l.status = 'active') as linked
         from unnest($1::text[], $2::text[], $3::text[]) with ordinality as u(cid, pid, aid, n)
         join customers c on c.id = u.cid and c.participant_id = u.pid
         cross join lateral (select sum(ref_eur_cents) filter (where created_at >= $4)::int8 as day, sum(ref_eur_cents)::int8 as month
                               from payments where payer_customer_id = u.cid and created_at >= $5 and status <> 'rejected') x
         left join ledger_accounts a on a.id = u.aid`,
      [items.map((i) => i.customerId), items.map((i) => i.participantId), items.map((i) => i.accountId), dayStart, monthStart],
    );
    const out: (PayerContext | undefined)[] = items.map(() => undefined);
    for (const r of rows) {
      const item = items[Number(r.n) - 1]!;
      const acc: AccountRef | undefined =
        r.acc_id === null ? undefined : { id: r.acc_id, ownerParticipantId: r.owner_participant_id!, customerId: r.acc_customer_id, currency: r.acc_currency!, kind: r.kind!, closed: r.closed! };
      const debitable = acc !== undefined && acc.kind === 'customer' && !acc.closed && ((acc.ownerParticipantId === item.participantId && acc.customerId === item.customerId) || r.linked);
      out[Number(r.n) - 1] = { kycLevel: r.kyc_level, used: { day: r.day ?? 0n, month: r.month ?? 0n }, source: debitable ? acc : undefined };
    }
    return out;
  };
  const payerContext = async (q: Queryable, participantId: string, customerId: string, accountId: string): Promise<PayerContext | undefined> =>
    (await payerContexts(q, [{ participantId, customerId, accountId }]))[0];

  const payeeFromAlias = (a: AliasRecord): Payee => ({
    aliasId: a.id,
    participantId: a.participantId,
    participantName: a.participantName,
    customerId: a.customerId,
    customerName: a.customerName,
    accountId: a.accountId,
    currency: a.currency,
    flagged: a.flagged,
  });

  const pickSource = async (q: Queryable, participantId: string, customerId: string, given: string | undefined, currency: string): Promise<AccountRef | undefined> => {
    if (given !== undefined) return accounts.debitable(q, participantId, customerId, given);
    const own = await accounts.debitable(q, participantId, customerId, customerAccountId(customerId, currency));
    if (own !== undefined) return own;
    // No account in that currency: the customer's first own account (the payment converts).
    const [first] = await q.query<{ id: string }>(`select id from ledger_accounts where owner_participant_id = $1 and customer_id = $2 and kind = 'customer' and not closed order by id limit 1`, [participantId, customerId]);
    return first === undefined ? undefined : accounts.debitable(q, participantId, customerId, first.id);
  };

  /**
   * The core of quoting, for a payee already resolved (by alias, or the requester of a money request): every check and
   * the amounts, nothing written (insertQuotes stores it).
   */
  async function planQuote(
    tx: Queryable,
    payer: Participant,
    customerId: string,
    payee: Payee,
    amount: { mode: 'send' | 'receive'; amountMinor: bigint; currency: string },
    sourceAccountId: string | undefined,
    requestId: string | null,
    context?: PayerContext | undefined | 'missing',
    fxProviderId?: string | undefined,
    /** Between two accounts the customer may both use (a top-up from a linked bank account, a withdrawal to it). */
    ownAccounts = false,
  ): Promise<Result<PlannedQuote, TErr>> {
    const wanted = sourceAccountId ?? customerAccountId(customerId, amount.mode === 'send' ? amount.currency : payee.currency);
    const ctx = context === 'missing' ? undefined : (context ?? (await payerContext(tx, payer.id, customerId, wanted)));
    if (ctx === undefined) return err('customer_not_found', 'no such customer', { customerId });
    if (amount.mode === 'receive' && amount.currency !== payee.currency) return err('currency_not_receivable', `the payee receives ${payee.currency} only`, { currency: amount.currency, receivable: payee.currency });
    // No account in that currency: the customer's first own account (the payment converts).
    const source = ctx.source ?? (sourceAccountId === undefined ? await pickSource(tx, payer.id, customerId, undefined, amount.mode === 'send' ? amount.currency : payee.currency) : undefined);
    if (source === undefined) return err('account_unavailable', 'no such account to pay from (or its link was revoked)', { sourceAccountId: sourceAccountId ?? null });
    if (source.id === payee.accountId || (!ownAccounts && payee.participantId === payer.id && payee.customerId === customerId)) return err('cannot_pay_self', 'the payee is the payer');
    if (amount.mode === 'send' && amount.currency !== source.currency) return err('source_currency_mismatch', `the source account holds ${source.currency}`, { currency: source.currency });
    if (amount.mode === 'receive' && amount.currency !== payee.currency) return err('currency_not_receivable', `the payee receives ${payee.currency} only`, { currency: amount.currency, receivable: payee.currency });
    const table = await fx.table();
    const sendCurrency = source.currency;
    const receiveCurrency = payee.currency;
    let sendMinor: bigint;
    let receiveMinor: bigint;
    // Across currencies the conversion is an FX provider's (src/fx/providers.ts): the best rate in force that prices
    // the amount, or the chosen provider's; the quote binds it by id and lives no longer than it.
    let bound: BoundRate | undefined;
    let midRate: string | null = null;
    let spreadBps = 0;
    if (sendCurrency === receiveCurrency) {
      sendMinor = amount.amountMinor;
      receiveMinor = amount.amountMinor;
    } else {
      const b = await fx.providers.bind(tx, { sendCurrency, receiveCurrency, mode: amount.mode, amountMinor: amount.amountMinor, providerId: fxProviderId });
      if (!b.ok) return b;
      bound = b.value;
      sendMinor = bound.sendMinor;
      receiveMinor = bound.receiveMinor;
      const mid = conversion(table, sendCurrency, receiveCurrency, 0);
      if (mid.ok) {
        midRate = formatScaled(mid.value.midRate, 8);
        const bps = ((mid.value.midRate - bound.rate) * 10_000n) / mid.value.midRate;
        spreadBps = bps < 0n ? 0 : bps > 9_999n ? 9_999 : Number(bps);
      }
    }
    if (receiveMinor <= 0n || sendMinor <= 0n) return err('currency_not_receivable', 'the amount is below one minor unit once converted');
    const fee = await feeFor(tx, payer.id, payee.participantId);
    let feeMinor = 0n;
    if (fee !== null) {
      const fixed = fee.fixedCurrency === sendCurrency ? fee.fixedMinor : convertReceiveToSend(table, sendCurrency, fee.fixedCurrency, 0, fee.fixedMinor);
      feeMinor = computeFee(sendMinor, fixed, fee.bps);
    }
    const reference = toEurCents(table, sendCurrency, sendMinor + feeMinor);
    if (!reference.ok) return reference;
    const refEurCents = reference.value;
    const limit = limitError(ctx.used, ctx.kycLevel, refEurCents);
    if (limit !== undefined) return { ok: false, error: limit };
    const now = clock.now();
    return ok({
      id: newId('quo'),
      payerParticipantId: payer.id,
      payerCustomerId: customerId,
      sourceAccountId: source.id,
      payee: { maskedName: maskName(payee.customerName), participantId: payee.participantId, participantName: payee.participantName, flagged: payee.flagged },
      sendMinor,
      sendCurrency,
      receiveMinor,
      receiveCurrency,
      feeMinor,
      rate: bound === undefined ? null : formatScaled(bound.rate, 8),
      midRate,
      spreadBps,
      fxRateId: bound?.rateId ?? null,
      fxProviderId: bound?.providerParticipantId ?? null,
      requestId,
      warnings: payee.flagged ? [FLAGGED_WARNING] : [],
      expiresAt: new Date(Math.min(now.getTime() + QUOTE_TTL_MS, bound?.expiresAt.getTime() ?? Infinity)),
      createdAt: now,
      payeeAliasId: payee.aliasId,
      payeeCustomerId: payee.customerId,
      payeeAccountId: payee.accountId,
      refEurCents,
    });
  }

  /** Stores planned quotes, in one statement. */
  const insertQuotes = async (tx: Queryable, quotes: readonly PlannedQuote[]): Promise<void> => {
    if (quotes.length === 0) return;
    const col = <T>(f: (q: PlannedQuote) => T) => quotes.map(f);
    await tx.query(
      `insert into quotes (id, payer_participant_id, payer_customer_id, source_account_id, payee_alias_id, payee_participant_id, payee_customer_id, payee_account_id,
         send_minor, send_currency, receive_minor, receive_currency, fee_minor, rate, mid_rate, spread_bps, ref_eur_cents, risk, request_id, status, expires_at, created_at,
         fx_rate_id, fx_provider_participant_id)
       select id, pp, pc, src, pa, pep, pec, pea, sm::int8, sc, rm::int8, rc, fm::int8, rate, mid, bps, ref::int8, '{}'::jsonb, req, 'open', exp::timestamptz, at::timestamptz, fxr, fxp
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                     $14::text[], $15::text[], $16::int4[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[])
              as v(id, pp, pc, src, pa, pep, pec, pea, sm, sc, rm, rc, fm, rate, mid, bps, ref, req, exp, at, fxr, fxp)`,
      [
        col((q) => q.id),
        col((q) => q.payerParticipantId),
        col((q) => q.payerCustomerId),
        col((q) => q.sourceAccountId),
        col((q) => q.payeeAliasId),
        col((q) => q.payee.participantId),
        col((q) => q.payeeCustomerId),
        col((q) => q.payeeAccountId),
        col((q) => q.sendMinor.toString()),
        col((q) => q.sendCurrency),
        col((q) => q.receiveMinor.toString()),
        col((q) => q.receiveCurrency),
        col((q) => q.feeMinor.toString()),
        col((q) => q.rate),
        col((q) => q.midRate),
        col((q) => q.spreadBps),
        col((q) => q.refEurCents.toString()),
        col((q) => q.requestId),
        col((q) => q.expiresAt.toISOString()),
        col((q) => q.createdAt.toISOString()),
        col((q) => q.fxRateId),
        col((q) => q.fxProviderId),
      ],
    );
    const learner = deps.refs;
    if (learner !== undefined) {
      tx.hooks?.afterCommit(() => {
        for (const q of quotes) learner.learn('quote', q.id, [{ participantId: q.payerParticipantId, customerId: q.payerCustomerId }]);
      });
    }
  };

  /** Plans and stores one quote (money requests approved by the payer). */
  async function makeQuote(...args: Parameters<typeof planQuote>): Promise<Result<Quote, TErr>> {
    const planned = await planQuote(...args);
    if (planned.ok) await insertQuotes(args[0], [planned.value]);
    return planned;
  }

  // Red packets ---------------------------------------------------------------------------------------------------
  interface PacketRow {
    id: string;
    participant_id: string;
    customer_id: string;
    source_account_id: string;
    escrow_account_id: string;
    total_minor: bigint;
    currency: string;
    share_count: number;
    mode: 'equal' | 'random';
    message: string | null;
    status: RedPacketStatus;
    refunded_minor: bigint;
    funding_payment_id: string | null;
    refund_payment_id: string | null;
    refund_attempts: number;
    refund_at: Date | null;
    reason: string | null;
    expires_at: Date;
    created_at: Date;
  }

  const packetView = async (q: Queryable, row: PacketRow): Promise<RedPacketView> => {
    const claims = await q.query<{ name: string; amount_minor: bigint; claimed_at: Date }>(
      `select c.name, s.amount_minor, s.claimed_at from red_packet_shares s join customers c on c.id = s.claimed_by_customer_id
        where s.packet_id = $1 and s.claimed_at is not null order by s.claimed_at, s.idx`,
      [row.id],
    );
    return {
      id: row.id,
      participantId: row.participant_id,
      customerId: row.customer_id,
      totalMinor: row.total_minor,
      currency: row.currency,
      shareCount: row.share_count,
      mode: row.mode,
      message: row.message,
      status: row.status,
      fundingPaymentId: row.funding_payment_id,
      reason: row.reason === null ? null : reasonOf(row.reason),
      refundRetryAt: row.status === 'refunding' && row.refund_payment_id === null ? row.refund_at : null,
      claimedCount: claims.length,
      claimedMinor: claims.reduce((s, c) => s + c.amount_minor, 0n),
      refundedMinor: row.refunded_minor,
      claims: claims.map((c) => ({ maskedName: maskName(c.name), amountMinor: c.amount_minor, claimedAt: c.claimed_at })),
      expiresAt: row.expires_at,
      createdAt: row.created_at,
    };
  };

  /** Tells each member's participant its customers may claim the packet (once it is open). */
  const announcePacket = async (tx: Queryable, packetId: string, message: string | null) => {
    const byParticipant = await tx.query<{ participant_id: string; customer_ids: string[] }>(
      'select participant_id, array_agg(customer_id order by customer_id) as customer_ids from red_packet_members where packet_id = $1 group by participant_id order by participant_id',
      [packetId],
    );
    for (const m of byParticipant) await events.emit(tx, { participantId: m.participant_id, type: 'red_packet.received', data: { packetId, customerIds: m.customer_ids, message } });
  };

  const visiblePacket = async (q: Queryable, participantId: string, id: string): Promise<PacketRow | undefined> => {
    const [row] = await q.query<PacketRow>(
      `select * from red_packets p where id = $1 and (participant_id = $2 or exists (select 1 from red_packet_members m where m.packet_id = p.id and m.participant_id = $2))`,
      [id, participantId],
    );
    return row;
  };

  // Requests ------------------------------------------------------------------------------------------------------
  async function insertRequest(
    tx: Queryable,
    actor: Actor,
    requester: Participant,
    customerId: string,
    payer: AliasRecord,
    amountMinor: bigint,
    currency: string,
    note: string | null,
    accountId: string | undefined,
    splitId: string | null,
  ): Promise<Result<MoneyRequest, TErr>> {
    const account = await accounts.ref(tx, accountId ?? customerAccountId(customerId, currency));
    if (account === undefined || account.ownerParticipantId !== requester.id || account.customerId !== customerId || account.kind !== 'customer') {
      return err('currency_not_receivable', `the requester has no ${currency} account to receive into`, { currency });
    }
    if (account.currency !== currency) return err('currency_not_receivable', `the receiving account holds ${account.currency}`, { currency });
    if (payer.participantId === requester.id && payer.customerId === customerId) return err('cannot_pay_self', 'you cannot request money from yourself');
    const [blocked] = await tx.query(
      'select 1 as x from payer_blocks where payer_participant_id = $1 and payer_customer_id = $2 and blocked_participant_id = $3 and blocked_customer_id = $4',
      [payer.participantId, payer.customerId, requester.id, customerId],
    );
    if (blocked !== undefined) return err('request_blocked', 'this payer does not accept requests from you');
    const now = clock.now();
    const [pending] = await tx.query<{ n: bigint }>(
      `select count(*) as n from money_requests where payer_participant_id = $1 and payer_customer_id = $2 and status = 'pending' and expires_at > $3`,
      [payer.participantId, payer.customerId, now],
    );
    if ((pending?.n ?? 0n) >= BigInt(MAX_PENDING_REQUESTS_PER_PAYER)) return err('too_many_pending_requests', 'this payer has too many requests waiting; try later', { max: MAX_PENDING_REQUESTS_PER_PAYER });
    const [paidBefore] = await tx.query('select 1 as x from payments where payer_customer_id = $1 and payee_customer_id = $2 limit 1', [payer.customerId, customerId]);
    const [ownAlias] = await tx.query<{ id: string }>('select id from aliases where participant_id = $1 and customer_id = $2 order by created_at limit 1', [requester.id, customerId]);
    const id = newId('req');
    const expiresAt = new Date(now.getTime() + REQUEST_TTL_MS);
    await tx.query(
      `insert into money_requests (id, requester_participant_id, requester_customer_id, requester_alias_id, requester_account_id, payer_alias_id, payer_participant_id, payer_customer_id,
         amount_minor, currency, note, first_time, split_id, status, expires_at, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending', $14, $15)`,
      [id, requester.id, customerId, ownAlias?.id ?? null, account.id, payer.id, payer.participantId, payer.customerId, amountMinor, currency, note, paidBefore === undefined, splitId, expiresAt, now],
    );
    const [row] = await tx.query<RequestRow>(`${REQUEST_SELECT} where r.id = $1`, [id]);
    const request = toRequest(row!, clock.nowMs());
    await audit.record(tx, { actor, action: 'money_request.created', objectType: 'money_request', objectId: id, details: { payerParticipantId: payer.participantId, amountMinor: amountMinor.toString(), currency, splitId } });
    await events.emit(tx, { participantId: requester.id, type: 'money_request.created', data: { requestId: id, customerId } });
    await events.emit(tx, {
      participantId: payer.participantId,
      type: 'money_request.received',
      data: { requestId: id, customerId: payer.customerId, requesterMaskedName: request.requesterMaskedName, amount: formatMoney(amountMinor, currency), firstTime: request.firstTime, flagged: request.flagged, warning: request.warning },
    });
    return ok(request);
  }


  // Connected participants: the second phase ------------------------------------------------------------------------
  interface PendingRow extends PaymentRow {
    payee_account_id: string;
    source_account_id: string;
    payer_external: string;
    payer_name: string;
    payee_external: string;
    payee_name: string;
    source_owner: string;
    payee_owner: string;
  }
  const PENDING_SELECT = `select p.*, pc.external_id as payer_external, pc.name as payer_name, ec.external_id as payee_external, ec.name as payee_name,
              coalesce(sa.owner_participant_id, p.payer_participant_id) as source_owner, coalesce(pa.owner_participant_id, p.payee_participant_id) as payee_owner
         from payments p
         left join ledger_accounts sa on sa.id = p.source_account_id
         join customers pc on pc.id = coalesce(sa.customer_id, p.payer_customer_id)
         join customers ec on ec.id = p.payee_customer_id
         left join ledger_accounts pa on pa.id = p.payee_account_id`;
  /** A payment as its second phase needs it; concurrent reads (payments answered reserved together) go out as one statement. */
  const pendingReads = createCoalescer(
    async (ids: readonly string[]) => {
      const rows = new Map((await db.query<PendingRow>(`${PENDING_SELECT} where p.id = any($1::text[])`, [[...new Set(ids)]])).map((r) => [r.id, r]));
      return ids.map((id) => rows.get(id));
    },
    { maxBatch: MAX_DECIDE_BATCH, maxInFlight: 2 },
  );
  const readPending = (paymentId: string): Promise<PendingRow | undefined> => pendingReads.load(paymentId);
  /** Payments to decide, their rows locked in id order (every decider takes them in that order: no deadlock between two). */
  const lockPending = async (tx: Queryable, paymentIds: readonly string[]): Promise<Map<string, PendingRow>> => {
    const rows = await tx.query<PendingRow>(`${PENDING_SELECT} where p.id = any($1::text[]) order by p.id for update of p`, [[...paymentIds]]);
    return new Map(rows.map((r) => [r.id, r]));
  };

  /** The reserve of a debit a wallet initiates from an account linked by open-banking consent names that consent. */
  const mandateOf = (m: { bankConsentId: string } | undefined, p: PendingRow): Partial<ConnectorRequest> =>
    m === undefined ? {} : { MndtRltdInf: { MndtId: m.bankConsentId }, InitgPty: { Id: { OrgId: { Othr: { Id: p.payer_participant_id } } } } };

  const connectorRequest = (p: PendingRow, op: ConnectorRequest['Op'], extra: Partial<ConnectorRequest> = {}): ConnectorRequest => ({
    MsgId: `${p.id}:${op}`,
    CreDtTm: clock.now().toISOString(),
    Op: op,
    TxId: p.id,
    EndToEndId: p.id,
    // The payer's bank debits its customer what the payer pays (amount and fee); the payee's bank credits the amount.
    IntrBkSttlmAmt: formatMoney(op === 'accept' ? p.receive_minor : p.send_minor + (p.connected.includes('payer') ? p.fee_minor : 0n), p.send_currency),
    DbtrAgt: { FinInstnId: { Othr: { Id: p.source_owner } } },
    CdtrAgt: { FinInstnId: { Othr: { Id: p.payee_owner } } },
    ...(op === 'reserve' ? { DbtrAcct: { Id: { Othr: { Id: p.payer_external } }, Ccy: p.send_currency }, Cdtr: { Nm: maskName(p.payee_name) } } : {}),
    ...(op === 'accept' ? { CdtrAcct: { Id: { Othr: { Id: p.payee_external } }, Ccy: p.receive_currency }, Dbtr: { Nm: maskName(p.payer_name) } } : {}),
    SttlmDdln: (p.deadline_at ?? clock.now()).toISOString(),
    ...extra,
  });

  /** The commit or abort message to one connected side (its reserve or accept, restated, with the decision). */
  const decisionFor = (p: PendingRow, side: 'payer' | 'payee', reason: StatusReason | undefined): OutboxMessage => {
    const original = connectorRequest(p, side === 'payer' ? 'reserve' : 'accept');
    const op = reason === undefined ? ('commit' as const) : ('abort' as const);
    return {
      paymentId: p.id,
      participantId: side === 'payer' ? p.source_owner : p.payee_owner,
      kind: op,
      request: { ...original, MsgId: `${p.id}:${op}:${side}`, Op: op, TxSts: reason === undefined ? 'ACSC' : 'RJCT', ...(reason !== undefined ? { StsRsnInf: reason } : {}) },
    };
  };

  /**
   * A red packet share whose payment (to a connected member) was aborted: claimable again while the packet is open, or
   * refunded to the sender when the packet was swept meanwhile (nothing stays in the escrow).
   */
  const releaseShare = async (tx: Queryable, paymentId: string) => {
    const [share] = await tx.query<{ packet_id: string; idx: number; amount_minor: bigint; claimed_by_participant_id: string; claimed_by_customer_id: string }>(
      'select packet_id, idx, amount_minor, claimed_by_participant_id, claimed_by_customer_id from red_packet_shares where payment_id = $1 for update',
      [paymentId],
    );
    if (share === undefined) return;
    const [packet] = await tx.query<{ status: string; escrow_account_id: string; source_account_id: string; currency: string; funding_payment_id: string | null; refund_payment_id: string | null }>(
      'select status, escrow_account_id, source_account_id, currency, funding_payment_id, refund_payment_id from red_packets where id = $1 for update',
      [share.packet_id],
    );
    const open = packet?.status === 'open';
    // Funded from a connected bank: the rest goes back to the bank by a payment (never into the account's hub address),
    // so a share released after the sweep waits, unclaimed, for the packet's next refund.
    const viaBank = packet !== undefined && packet.funding_payment_id !== null;
    await tx.query(
      `update red_packet_shares set claimed_by_participant_id = null, claimed_by_customer_id = null, claimed_at = null, payment_id = null, refunded = $3 where packet_id = $1 and idx = $2`,
      [share.packet_id, share.idx, !open && !viaBank],
    );
    await tx.query('update red_packet_members set claimed_minor = null, claimed_at = null where packet_id = $1 and participant_id = $2 and customer_id = $3', [share.packet_id, share.claimed_by_participant_id, share.claimed_by_customer_id]);
    if (!open && viaBank) {
      await tx.query(`update red_packets set status = 'refunding', refund_at = case when refund_payment_id is null then $2::timestamptz else refund_at end where id = $1`, [share.packet_id, clock.now()]);
      return;
    }
    if (!open && packet !== undefined) {
      const [moved] = await mover.move(tx, [{ id: `${share.packet_id}:refund:${share.idx}`, debitAccountId: packet.escrow_account_id, creditAccountId: packet.source_account_id, amountMinor: share.amount_minor, currency: packet.currency, purpose: 'red_packet_refund', metadata: { packetId: share.packet_id } }]);
      if (moved === undefined || !moved.ok) throw new Error(`red packet ${share.packet_id}: refund of an aborted share failed`);
      await tx.query('update red_packets set refunded_minor = coalesce(refunded_minor, 0) + $2 where id = $1', [share.packet_id, share.amount_minor]);
    }
  };

  /** A packet's funding payment decided: the packet opens (its members told), or fails with nothing moved. */
  const packetFunded = async (tx: Queryable, paymentId: string, reason: StatusReason | undefined) => {
    const [packet] = await tx.query<PacketRow>(`update red_packets set status = $2, reason = $3 where funding_payment_id = $1 and status = 'funding' returning *`, [
      paymentId,
      reason === undefined ? 'open' : 'failed',
      reason === undefined ? null : storedReason(reason),
    ]);
    if (packet === undefined) return;
    const data = { packetId: packet.id, customerId: packet.customer_id, status: packet.status, paymentId };
    if (reason === undefined) {
      await audit.record(tx, { actor: { type: 'system' }, action: 'red_packet.funded', objectType: 'red_packet', objectId: packet.id, details: { paymentId } });
      await events.emit(tx, { participantId: packet.participant_id, type: 'red_packet.funded', data: { ...data, total: formatMoney(packet.total_minor, packet.currency) } });
      await announcePacket(tx, packet.id, packet.message);
    } else {
      await audit.record(tx, { actor: { type: 'system' }, action: 'red_packet.failed', objectType: 'red_packet', objectId: packet.id, details: { paymentId, reason: reason.Rsn } });
      await events.emit(tx, { participantId: packet.participant_id, type: 'red_packet.failed', data: { ...data, reason: reason.Rsn } });
    }
  };

  /**
   * A refund to the sender's bank decided. Committed: the shares it carried are refunded, and the packet `refunded`
   * unless a share was released meanwhile (then `refunding` again, due now). Refused: the money is back in the escrow,
   * its shares wait for the next try (backing off), the packet stays `refunding` with the bank's reason.
   */
  const packetRefundDecided = async (tx: Queryable, p: PendingRow, reason: StatusReason | undefined) => {
    const [packet] = await tx.query<PacketRow>('select * from red_packets where refund_payment_id = $1 for update', [p.id]);
    if (packet === undefined) return;
    const now = clock.now();
    if (reason === undefined) {
      const [left] = await tx.query<{ n: number }>('select count(*)::int as n from red_packet_shares where packet_id = $1 and claimed_at is null and not refunded', [packet.id]);
      const done = (left?.n ?? 0) === 0;
      await tx.query(`update red_packets set refunded_minor = refunded_minor + $2, refund_payment_id = null, reason = null, status = $3, refund_at = $4 where id = $1`, [
        packet.id,
        p.receive_minor,
        done ? 'refunded' : 'refunding',
        done ? null : now,
      ]);
      await audit.record(tx, { actor: { type: 'system' }, action: 'red_packet.refunded', objectType: 'red_packet', objectId: packet.id, details: { refundedMinor: p.receive_minor.toString(), paymentId: p.id } });
      await events.emit(tx, { participantId: packet.participant_id, type: 'red_packet.refunded', data: { packetId: packet.id, customerId: packet.customer_id, refunded: formatMoney(p.receive_minor, p.receive_currency), status: done ? 'refunded' : 'refunding', paymentId: p.id } });
      return;
    }
    await tx.query('update red_packet_shares set refunded = false, refund_payment_id = null where packet_id = $1 and refund_payment_id = $2', [packet.id, p.id]);
    // The attempt was counted when its payment was written (refundViaBank).
    const attempts = Math.max(1, packet.refund_attempts);
    const retryAt = new Date(now.getTime() + refundRetryDelayMs(attempts));
    await tx.query(`update red_packets set refund_payment_id = null, refund_at = $2, reason = $3 where id = $1`, [packet.id, retryAt, storedReason(reason)]);
    await audit.record(tx, { actor: { type: 'system' }, action: 'red_packet.refund_delayed', objectType: 'red_packet', objectId: packet.id, details: { paymentId: p.id, reason: reason.Rsn, attempts, retryAt: retryAt.toISOString() } });
    await events.emit(tx, {
      participantId: packet.participant_id,
      type: 'red_packet.refund_delayed',
      data: { packetId: packet.id, customerId: packet.customer_id, status: 'refunding', paymentId: p.id, reason: reason.Rsn, amount: formatMoney(p.receive_minor, p.receive_currency), retryAt: retryAt.toISOString() },
    });
  };

  type Wanted = { commit: true } | { commit: false; reason: StatusReason };
  type DecidedRow = PendingRow | undefined;
  /**
   * Decides pending payments in one transaction, set-based as confirms are: their rows locked in id order, every
   * commit's legs in ONE ledger call (a linked chain per payment: all or nothing each), the voids of the others in one
   * more, their position moves recorded together, one update of the payments. Each hot account (the connected bank's
   * position, a payee participant's) is locked once per batch and only for these few statements: deciding payments
   * one statement group after another held those locks for the whole batch and made every confirm wait behind it.
   */
  const decideMany = async (tx: Queryable, items: readonly { paymentId: string; wanted: Wanted }[]): Promise<DecidedRow[]> => {
    const rows = await lockPending(tx, [...new Set(items.map((i) => i.paymentId))]);
    const nowMs = clock.nowMs();
    // The first answer for a payment decides it (a later one in the same batch finds it decided).
    const outcomes = new Map<string, Wanted>();
    for (const item of items) {
      const p = rows.get(item.paymentId);
      if (p === undefined || p.status !== 'pending' || outcomes.has(p.id)) continue;
      // An answer that arrives after the deadline is ignored: the recovery job may be aborting it, and the banks were
      // told the deadline.
      const late = item.wanted.commit && p.deadline_at !== null && p.deadline_at.getTime() < nowMs;
      outcomes.set(p.id, late ? { commit: false, reason: { Rsn: 'AB05', AddtlInf: 'the answers came after the deadline' } } : item.wanted);
    }
    if (outcomes.size === 0) return items.map((i) => rows.get(i.paymentId));
    const added = new Map<string, string[]>();
    // Commits: each payment's pending legs posted and, for a hosted payee, its credit, as one linked chain.
    const commitLegs: TransferInput[] = [];
    const chainOf = new Map<string, string>();
    for (const [id, outcome] of outcomes) {
      const p = rows.get(id);
      if (p === undefined || !outcome.commit) continue;
      const meta = { paymentId: id };
      const legs: TransferInput[] = p.transfer_ids.map((t) => ({ kind: 'post_pending' as const, id: `${t}:post`, pendingId: t, purpose: 'p2p_commit', metadata: meta }));
      // A payee credit already reserved (a red packet funded by the bank's own customer: its position → the escrow) is
      // posted with the others.
      if (!p.connected.includes('payee') && !p.transfer_ids.includes(`${id}:in`)) {
        const payeePos = await accounts.ensureSystemAccount('funding', p.payee_owner, p.receive_currency);
        legs.push({ id: `${id}:in`, debitAccountId: payeePos, creditAccountId: p.payee_account_id, amountMinor: p.receive_minor, currency: p.receive_currency, purpose: 'p2p', metadata: meta });
      }
      legs.forEach((l, k) => {
        commitLegs.push({ ...l, linked: k < legs.length - 1 });
        chainOf.set(l.id, id);
      });
    }
    if (commitLegs.length > 0) {
      const results = await mover.move(tx, commitLegs);
      const byPayment = new Map<string, TransferResult[]>();
      results.forEach((r, k) => {
        const id = chainOf.get(commitLegs[k]?.id ?? '');
        if (id !== undefined) byPayment.set(id, [...(byPayment.get(id) ?? []), r]);
      });
      const moves: PositionMove[] = [];
      for (const [id, rs] of byPayment) {
        const p = rows.get(id);
        if (p === undefined) continue;
        const bad = failed(rs);
        if (bad !== undefined && !bad.ok) {
          outcomes.set(id, { commit: false, reason: { Rsn: 'NARR', AddtlInf: `the hub could not commit (${bad.error.code})` } });
          continue;
        }
        added.set(id, commitLegs.filter((l) => chainOf.get(l.id) === id).map((l) => l.id));
        const posId = p.transfer_ids.find((t) => t.endsWith(':pos'));
        if (posId !== undefined) moves.push({ transferId: `${posId}:post`, paymentId: id, payerParticipantId: p.source_owner, payeeParticipantId: p.payee_owner, currency: p.send_currency, amountMinor: p.send_minor });
      }
      if (settlement !== undefined) await settlement.recordMoves(tx, moves);
    }
    // Aborts (refused, late, or a commit the ledger refused): every pending leg voided.
    const voids: TransferInput[] = [];
    for (const [id, outcome] of outcomes) {
      const p = rows.get(id);
      if (p === undefined || outcome.commit) continue;
      const legs = p.transfer_ids.map((t) => ({ kind: 'void_pending' as const, id: `${t}:void`, pendingId: t, purpose: 'p2p_abort', metadata: { paymentId: id } }));
      voids.push(...legs);
      added.set(id, legs.map((l) => l.id));
    }
    if (voids.length > 0) {
      const results = await mover.move(tx, voids);
      const bad = results.find((r) => !r.ok && r.error.code !== 'pending_already_resolved');
      if (bad !== undefined && !bad.ok) throw new Error(`void of a reserved payment failed: ${bad.error.code}`);
    }
    const decidedIds = [...outcomes.keys()];
    const updated = await tx.query<PaymentRow>(
      `update payments p set status = u.status, reason = u.reason, decided_at = $4, transfer_ids = p.transfer_ids || string_to_array(u.added, ',')
         from unnest($1::text[], $2::text[], $3::text[], $5::text[]) as u(id, status, reason, added)
        where p.id = u.id returning p.*`,
      [
        decidedIds,
        decidedIds.map((id) => (outcomes.get(id)?.commit === true ? 'completed' : 'rejected')),
        decidedIds.map((id) => {
          const o = outcomes.get(id);
          return o === undefined || o.commit ? null : storedReason(o.reason);
        }),
        new Date(nowMs),
        decidedIds.map((id) => (added.get(id) ?? []).join(',')),
      ],
    );
    const after = new Map(updated.map((r) => [r.id, r]));
    const actor = { type: 'system' } as const;
    for (const [id, outcome] of outcomes) {
      const p = rows.get(id);
      const row = after.get(id);
      if (p === undefined || row === undefined) continue;
      const packetPayment = id.startsWith(FUNDING_PREFIX) || id.startsWith(REFUND_PREFIX);
      if (packetPayment) {
        // A red packet's funding or refund: the packet's own state and events say what happened.
        await audit.record(tx, { actor, action: outcome.commit ? 'payment.completed' : 'payment.rejected', objectType: 'payment', objectId: id, details: { quoteId: p.quote_id, connected: p.connected, reason: row.reason } });
        const why = outcome.commit ? undefined : outcome.reason;
        if (id.startsWith(FUNDING_PREFIX)) await packetFunded(tx, id, why);
        else await packetRefundDecided(tx, p, why);
      } else if (outcome.commit) {
        const receiveAmount = formatMoney(p.receive_minor, p.receive_currency);
        await audit.record(tx, { actor, action: 'payment.completed', objectType: 'payment', objectId: id, details: { quoteId: p.quote_id, connected: p.connected } });
        await events.emit(tx, { participantId: p.payer_participant_id, type: 'payment.sent', data: { paymentId: id, sendAmount: formatMoney(p.send_minor, p.send_currency), fee: formatMoney(p.fee_minor, p.send_currency), receiveAmount, requestId: p.request_id, customerId: p.payer_customer_id } });
        await events.emit(tx, { participantId: p.payee_participant_id, type: 'payment.received', data: { paymentId: id, receiveAmount, requestId: p.request_id, customerId: p.payee_customer_id } });
      } else {
        if (p.request_id !== null) await tx.query(`update money_requests set status = 'pending', payment_id = null where id = $1 and payment_id = $2`, [p.request_id, id]);
        await releaseShare(tx, id);
        await audit.record(tx, { actor, action: 'payment.rejected', objectType: 'payment', objectId: id, details: { quoteId: p.quote_id, reason: row.reason } });
        await events.emit(tx, { participantId: p.payer_participant_id, type: 'payment.rejected', data: { paymentId: id, customerId: p.payer_customer_id, status: 'RJCT', reason: outcome.reason.Rsn } });
      }
      // Both connected sides hear the decision, the one never asked included (releasing nothing is harmless).
      const why = outcome.commit ? undefined : outcome.reason;
      sides?.enqueue(tx, p.connected.map((side) => decisionFor(p, side as 'payer' | 'payee', why)));
      rows.set(id, { ...p, ...row });
    }
    return items.map((i) => rows.get(i.paymentId));
  };
  type Decided = { ok: true; row: DecidedRow } | { ok: false; error: unknown };
  /**
   * Payments whose banks answered at about the same time are decided in one transaction (decideMany), as confirms are
   * batched. A batch that fails (a bug in one payment) is decided again one payment per transaction, so that each
   * caller gets its own payment's answer.
   */
  const decisions = createCoalescer(
    async (items: readonly { paymentId: string; wanted: Wanted }[]): Promise<Decided[]> => {
      try {
        return (await db.transaction((tx) => decideMany(tx, items))).map((row) => ({ ok: true, row }));
      } catch {
        const out: Decided[] = [];
        for (const item of items) {
          try {
            out.push({ ok: true, row: (await db.transaction((tx) => decideMany(tx, [item])))[0] });
          } catch (error) {
            out.push({ ok: false, error });
          }
        }
        return out;
      }
    },
    { maxBatch: MAX_DECIDE_BATCH },
  );
  const decide = async (paymentId: string, wanted: Wanted): Promise<Payment | undefined> => {
    const decided = await decisions.load({ paymentId, wanted });
    if (!decided.ok) throw decided.error;
    if (decided.row !== undefined) sides?.deliverSoon();
    return decided.row === undefined ? undefined : toPayment(decided.row);
  };

  const settleConnected = async (paymentId: string): Promise<Payment | undefined> => {
    const p = await readPending(paymentId);
    if (p === undefined || p.status !== 'pending' || sides === undefined) return p === undefined ? undefined : toPayment(p);
    let outcome: AskOutcome = { ok: true };
    // A wallet paying from an account its customer linked at the bank: the bank authorizes the debit under that consent.
    const linked = p.connected.includes('payer') && p.source_owner !== p.payer_participant_id && openBanking !== undefined;
    const mandate = linked ? await openBanking.mandateFor(db, p.payer_participant_id, p.payer_customer_id, p.source_account_id) : undefined;
    if (linked && mandate === undefined && (await openBanking.revokedFor(db, p.payer_participant_id, p.payer_customer_id, p.source_account_id))) {
      outcome = { ok: false, reason: CONSENT_ENDED_AT_HUB, hubReason: true };
    }
    for (const side of ['payer', 'payee'] as const) {
      if (!outcome.ok || !p.connected.includes(side)) continue;
      const connection = await sides.connection(side === 'payer' ? p.source_owner : p.payee_owner, p.send_currency);
      const op = side === 'payer' ? 'reserve' : 'accept';
      const askedAt = performance.now();
      outcome =
        connection === undefined
          ? { ok: false, reason: { Rsn: 'AB05', AddtlInf: 'the participant is no longer connected in this currency' }, hubReason: true }
          : await sides.ask(connection, op, connectorRequest(p, op, side === 'payer' ? mandateOf(mandate, p) : {}));
      if (connection !== undefined) sides.observe?.(op, performance.now() - askedAt);
      // The bank refused the debit for lack of consent: the customer revoked it at the bank; the links end here too.
      if (!outcome.ok && !outcome.hubReason && side === 'payer' && mandate !== undefined && outcome.reason.Rsn === 'MD01') {
        await openBanking!.endedAtBank(mandate.consentId, 'the bank refused a debit under it (MD01)');
      }
    }
    const decidingAt = performance.now();
    const decided = await decide(paymentId, outcome.ok ? { commit: true } : { commit: false, reason: outcome.reason });
    sides.observe?.('decide', performance.now() - decidingAt);
    return decided;
  };

  /**
   * The rest of an expired packet funded from an account at a connected bank goes back there: a payment with a connected
   * payee (escrow → the sender participant's position → the bank's, pending; the bank accepts, then committed), never
   * into the account's hub address. Nothing left: `completed` (or `refunded` after earlier refunds). Written in the
   * sweep's transaction, the packet `refunding` meanwhile; answers the payment to decide after the COMMIT. When the hub
   * cannot reserve it (the sender participant's position), the packet waits for the next try with the money in escrow.
   */
  async function refundViaBank(tx: Queryable, p: PacketRow, sum: bigint): Promise<string | undefined> {
    const now = clock.now();
    if (sum === 0n) {
      const status = p.refunded_minor > 0n ? 'refunded' : 'completed';
      await tx.query(`update red_packets set status = $2, refund_at = null where id = $1`, [p.id, status]);
      await audit.record(tx, { actor: { type: 'system' }, action: `red_packet.${status}`, objectType: 'red_packet', objectId: p.id, details: { refundedMinor: p.refunded_minor.toString() } });
      if (p.status === 'open') await events.emit(tx, { participantId: p.participant_id, type: 'red_packet.completed', data: { packetId: p.id, customerId: p.customer_id, refunded: formatMoney(0n, p.currency) } });
      return undefined;
    }
    const [source] = await tx.query<{ owner_participant_id: string; customer_id: string | null }>('select owner_participant_id, customer_id from ledger_accounts where id = $1', [p.source_account_id]);
    const bankConn = source === undefined || sides === undefined ? undefined : await sides.connection(source.owner_participant_id, p.currency, tx);
    const attempts = p.refund_attempts + 1;
    const wait = async (reason: StatusReason) => {
      const retryAt = new Date(now.getTime() + refundRetryDelayMs(attempts));
      await tx.query(`update red_packets set status = 'refunding', refund_attempts = $2, refund_at = $3, reason = $4 where id = $1`, [p.id, attempts, retryAt, storedReason(reason)]);
      await audit.record(tx, { actor: { type: 'system' }, action: 'red_packet.refund_delayed', objectType: 'red_packet', objectId: p.id, details: { reason: reason.Rsn, attempts, retryAt: retryAt.toISOString() } });
      return undefined;
    };
    if (source === undefined || source.customer_id === null || bankConn === undefined) return wait({ Rsn: 'AB05', AddtlInf: 'the sender’s bank is not connected in this currency' });
    const paymentId = `${REFUND_PREFIX}${p.id.slice(4)}_${attempts}`;
    const legId = (leg: string) => `${paymentId}:${leg}`;
    const senderPos = await accounts.ensureSystemAccount('funding', p.participant_id, p.currency);
    const bankPos = await accounts.ensureSystemAccount('funding', source.owner_participant_id, p.currency);
    const meta = { paymentId, packetId: p.id };
    const legs: TransferInput[] = [
      { kind: 'pending', id: legId('p2p'), debitAccountId: p.escrow_account_id, creditAccountId: senderPos, amountMinor: sum, currency: p.currency, purpose: 'red_packet_refund', metadata: meta },
      ...(senderPos === bankPos ? [] : [{ kind: 'pending' as const, id: legId('pos'), debitAccountId: senderPos, creditAccountId: bankPos, amountMinor: sum, currency: p.currency, purpose: 'position', metadata: meta }]),
    ];
    const reserved = await mover.move(tx, legs.map((l, k) => ({ ...l, linked: k < legs.length - 1 })));
    const bad = failed(reserved);
    if (bad !== undefined && !bad.ok) return wait({ Rsn: 'NARR', AddtlInf: `the hub could not reserve the refund (${bad.error.code})` });
    const deadline = new Date(now.getTime() + bankConn.deadlineMs + CONNECTED_DEADLINE_MARGIN_MS);
    await tx.query(
      `insert into payments (id, quote_id, payer_participant_id, payer_customer_id, source_account_id, payee_participant_id, payee_customer_id, payee_account_id, send_minor, send_currency,
                             receive_minor, receive_currency, fee_minor, rate, ref_eur_cents, request_id, status, transfer_ids, created_at, connected, deadline_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9, $10, 0, null, 0, null, 'pending', $11, $12, '{payee}', $13)`,
      [paymentId, `rpk:${paymentId}`, p.participant_id, p.customer_id, p.escrow_account_id, source.owner_participant_id, source.customer_id, p.source_account_id, sum, p.currency, legs.map((l) => l.id), now, deadline],
    );
    await tx.query('update red_packet_shares set refunded = true, refund_payment_id = $2 where packet_id = $1 and claimed_at is null and not refunded', [p.id, paymentId]);
    await tx.query(`update red_packets set status = 'refunding', refund_payment_id = $2, refund_attempts = $3, refund_at = null where id = $1`, [p.id, paymentId, attempts]);
    await audit.record(tx, { actor: { type: 'system' }, action: 'payment.reserved', objectType: 'payment', objectId: paymentId, details: { packetId: p.id, connected: ['payee'], deadline: deadline.toISOString() } });
    return paymentId;
  }

  const service: TransferService = {
    requestLimits,
    settleConnected,
    async recoverConnected(limit = 64) {
      const due = await db.query<{ id: string }>(`select id from payments where status = 'pending' and deadline_at < $1 order by deadline_at limit $2`, [clock.now(), limit]);
      let aborted = 0;
      for (const { id } of due) {
        const p = await decide(id, { commit: false, reason: { Rsn: 'AB03', AddtlInf: 'the deadline passed before the payment was decided' } });
        if (p?.status === 'rejected') aborted += 1;
      }
      return aborted;
    },
    async connectorStatus(participantId, paymentId) {
      const p = await readPending(paymentId);
      if (p === undefined || (p.source_owner !== participantId && p.payee_owner !== participantId && p.payer_participant_id !== participantId && p.payee_participant_id !== participantId)) return undefined;
      if (p.status === 'pending') return { TxId: p.id, TxSts: 'PDNG' };
      if (p.status === 'completed') return { TxId: p.id, TxSts: 'ACSC' };
      return { TxId: p.id, TxSts: 'RJCT', ...(p.reason !== null ? { StsRsnInf: reasonOf(p.reason) } : {}) };
    },
    async quoteMany(tx, items) {
      if (items.length > MAX_QUOTE_BATCH) throw new Error(`quoteMany: at most ${MAX_QUOTE_BATCH} quotes at once`);
      const amounts = items.map(({ input }) =>
        input.sendAmount !== undefined ? { mode: 'send' as const, ...input.sendAmount } : input.receiveAmount !== undefined ? { mode: 'receive' as const, ...input.receiveAmount } : undefined,
      );
      // The payer's side does not depend on the payee when the source account is known (given, or the send currency's):
      // both reads go out together, each one statement for the whole batch.
      const known = items.map(({ input }, i) => input.sourceAccountId ?? (amounts[i]?.mode === 'send' ? customerAccountId(input.customerId, amounts[i].currency) : undefined));
      const withKnown = items.flatMap(({ payer, input }, i) => (known[i] === undefined ? [] : [{ i, participantId: payer.id, customerId: input.customerId, accountId: known[i] }]));
      const [found, contexts] = await both(
        () => aliases.resolveMany(tx, items.map(({ payer, input }) => ({ type: input.payee.type, value: input.payee.value, defaultCountry: payer.country }))),
        () => payerContexts(tx, withKnown),
      );
      const contextOf = new Map(withKnown.map((w, k) => [w.i, contexts[k] ?? ('missing' as const)]));
      const out: Result<Quote, TErr>[] = [];
      const planned: PlannedQuote[] = [];
      for (const [i, { payer, input }] of items.entries()) {
        const amount = amounts[i];
        const alias = found[i];
        if (amount === undefined) out.push(err('quote_amount_required', 'give the amount: sendAmount (what the payer pays) or receiveAmount (what the payee gets)'));
        else if (input.sendAmount !== undefined && input.receiveAmount !== undefined) out.push(err('quote_amount_conflict', 'give one of sendAmount and receiveAmount, not both: the hub computes the other'));
        else if (alias === undefined) out.push(err('alias_not_found', 'no account is registered under this alias'));
        else {
          const quote = await planQuote(tx, payer, input.customerId, payeeFromAlias(alias), amount, input.sourceAccountId, null, contextOf.get(i), input.fxProviderId);
          if (quote.ok) planned.push(quote.value);
          out.push(quote);
        }
      }
      await insertQuotes(tx, planned);
      return out;
    },

    async confirmMany(tx, inputs) {
      const out: (Result<Payment, TErr> | undefined)[] = inputs.map(() => undefined);
      if (inputs.length === 0) return [];
      if (inputs.length > MAX_CONFIRM_BATCH) throw new Error(`confirmMany: at most ${MAX_CONFIRM_BATCH} payments at once`);
      const nowMs = clock.nowMs();
      const now = new Date(nowMs);
      const { dayStart, monthStart } = periodStarts();

      // The rules in force for each payer participant (a short cache; a miss reads through the transaction).
      const windows = new Map<string, { rules: RiskRules; windowStart: Date }>();
      for (const pid of new Set(inputs.map((i) => i.participantId))) windows.set(pid, await risk.rulesVia(tx, pid));

      // (1) Lock every quote with its payer customer, in customer-id order. The customer lock serializes a customer's
      // own payments (limits are checked against committed totals); every batch, in every hub process, takes these
      // locks in that one order and only then the ledger its account locks (in id order): no deadlock between them.
      // (2) In the same round trip, everything the checks read, for every quote: PostgreSQL runs it once (1) holds its
      // locks, and under read committed it then sees every payment these customers committed before: day/month usage
      // for limits, the source account and whether it is still debitable, whether the payee is flagged, the payer's
      // country and the risk history (its window per payer participant's rules).
      const ids = inputs.map((i) => i.quoteId);
      const participants = inputs.map((i) => i.participantId);
      const [locked, contexts] = await both(
        () =>
          tx.query<QuoteRow & { kyc_level: number; n: bigint }>(
            `select q.*, c.kyc_level, u.n
               from unnest($1::text[], $2::text[]) with ordinality as u(id, participant_id, n)
               join quotes q on q.id = u.id and q.payer_participant_id = u.participant_id
               join customers c on c.id = q.payer_customer_id
              order by c.id, u.n
                for update of q, c`,
            [ids, participants],
          ),
        () =>
          tx.query<{ n: bigint; day: bigint | null; month: bigint | null; acc_id: string | null; owner_participant_id: string | null; payee_owner: string | null; acc_customer_id: string | null; kind: string | null; closed: boolean | null; linked: boolean; flagged: boolean; country: string; recent: bigint | null; hn: bigint | null; avg: string | null; known: boolean | null }>(
            `select u.n, x.day, x.month, a.id as acc_id, a.owner_participant_id, pa.owner_participant_id as payee_owner, a.customer_id as acc_customer_id, a.kind, a.closed,
                    exists (select 1 from account_links l where l.wallet_participant_id = q.payer_participant_id and l.wallet_customer_id = q.payer_customer_id
                              and l.account_id = q.source_account_id and l.status = 'active') as linked,
                    case when q.payee_alias_id = '' then exists (select 1 from alias_flags f join aliases al on al.id = f.alias_id where al.participant_id = q.payee_participant_id and al.customer_id = q.payee_customer_id)
                         else exists (select 1 from alias_flags f join aliases al on al.id = f.alias_id where f.alias_id = q.payee_alias_id) end as flagged,
                    pp.country,
                    h.recent, h.n as hn, h.avg, h.known
               from unnest($1::text[], $2::text[], $3::text[]) with ordinality as u(id, participant_id, since, n)
               join quotes q on q.id = u.id and q.payer_participant_id = u.participant_id
               join participants pp on pp.id = q.payer_participant_id
               cross join lateral (select sum(ref_eur_cents) filter (where created_at >= $4)::int8 as day, sum(ref_eur_cents)::int8 as month
                                     from payments where payer_customer_id = q.payer_customer_id and created_at >= $5 and status <> 'rejected') x
               cross join lateral (${riskHistorySql({ participantId: 'q.payer_participant_id', customerId: 'q.payer_customer_id', counterparty: "q.payee_participant_id || ':' || q.payee_customer_id", since: 'u.since::timestamptz' })}) h
               left join ledger_accounts a on a.id = q.source_account_id
               left join ledger_accounts pa on pa.id = q.payee_account_id`,
            [ids, participants, participants.map((pid) => windows.get(pid)!.windowStart.toISOString()), dayStart, monthStart],
          ),
      );
      const quoteOf = new Map<number, QuoteRow & { kyc_level: number }>();
      for (const row of locked) quoteOf.set(Number(row.n) - 1, row);
      const taken = new Set<string>();
      const live: number[] = [];
      inputs.forEach((input, i) => {
        const q = quoteOf.get(i);
        if (q === undefined) out[i] = err('quote_not_found', 'no such quote', { quoteId: input.quoteId });
        else if (q.status === 'used' || taken.has(q.id)) out[i] = err('quote_already_used', 'this quote was used already', { quoteId: input.quoteId });
        else if (q.expires_at.getTime() <= nowMs) out[i] = err('quote_expired', 'the quote expired; ask for a new one', { quoteId: input.quoteId });
        else {
          taken.add(q.id);
          live.push(i);
        }
      });
      if (live.length === 0) return out.map((r) => r!);
      // Money requests being paid (rare): locked in id order, after the customers, before the ledger's accounts.
      const requestIds = [...new Set(live.map((i) => quoteOf.get(i)!.request_id).filter((r): r is string => r !== null))].sort();
      const requests = requestIds.length === 0 ? [] : await tx.query<{ id: string; status: string }>(`select id, status from money_requests where id = any($1::text[]) order by id for update`, [requestIds]);
      const contextOf = new Map(contexts.map((c) => [Number(c.n) - 1, c]));
      const pendingRequests = new Set(requests.filter((r) => r.status === 'pending').map((r) => r.id));
      // Step-up challenges named by these confirms (after step_up_required), locked after the customers they belong to.
      const challengeIds = [...new Set(live.map((i) => inputs[i]!.stepUpChallengeId).filter((c): c is string => c !== undefined))].sort();
      const challenges = new Map(
        (challengeIds.length === 0
          ? []
          : await tx.query<{ id: string; participant_id: string; customer_id: string; binding: string; status: string; expires_at: Date }>(
              `select id, participant_id, customer_id, binding, status, expires_at from step_up_challenges where id = any($1::text[]) order by id for update`,
              [challengeIds],
            )
        ).map((c) => [c.id, c]),
      );
      const usedChallenges = new Set<string>();
      const stepUpBinding = (q: QuoteRow): StepUpBinding => ({
        purpose: 'transfer',
        participantId: q.payer_participant_id,
        customerId: q.payer_customer_id,
        amountMinor: q.send_minor + q.fee_minor,
        currency: q.send_currency,
        payee: `customer:${q.payee_participant_id}/${q.payee_customer_id}`,
      });

      // (3) Decide each payment in arrival order. Payments of one customer in this batch count against each other's
      // limits and risk history as if they had come one after the other.
      const usedBy = new Map<string, { day: bigint; month: bigint }>();
      const seenBy = new Map<string, { recent: number; count: number; counterparties: Set<string> }>();
      const attempt = newId('att').slice(4, 12); // leg ids per attempt: a refused attempt's recorded failure never blocks a retry
      interface Planned {
        readonly i: number;
        readonly q: QuoteRow & { kyc_level: number };
        readonly paymentId: string;
        readonly legs: TransferInput[];
        readonly riskInput: RiskInput;
        readonly challengeUsed: string | undefined;
        readonly moves: readonly PositionMove[];
        /** Across currencies: the FX provider's position in the currency delivered (its cover refuses as fx_liquidity_insufficient). */
        readonly fxProviderPosition: string | undefined;
        /** A payment with a connected side: its legs are reserved (pending) now, committed or voided once the participants answered. */
        readonly twoPhase: { readonly sides: readonly ('payer' | 'payee')[]; readonly deadline: Date } | undefined;
      }
      const planned: Planned[] = [];
      for (const i of live) {
        const input = inputs[i]!;
        const q = quoteOf.get(i)!;
        const c = contextOf.get(i);
        const debitable =
          c !== undefined && c.acc_id !== null && c.kind === 'customer' && c.closed === false && ((c.owner_participant_id === input.participantId && c.acc_customer_id === q.payer_customer_id) || c.linked);
        if (!debitable) {
          out[i] =
            openBanking !== undefined && (await openBanking.revokedFor(tx, input.participantId, q.payer_customer_id, q.source_account_id))
              ? err('consent_revoked', 'the customer revoked the consent to use this account (in the wallet or at the bank): link it again to pay from it', { accountId: q.source_account_id })
              : err('account_unavailable', 'the source account is no longer available (link revoked?)');
          continue;
        }
        if (q.request_id !== null && !pendingRequests.has(q.request_id)) {
          out[i] = err('request_not_pending', 'the request is no longer pending');
          continue;
        }
        const earlier = usedBy.get(q.payer_customer_id) ?? { day: 0n, month: 0n };
        const limit = limitError({ day: (c.day ?? 0n) + earlier.day, month: (c.month ?? 0n) + earlier.month }, q.kyc_level, q.ref_eur_cents);
        if (limit !== undefined) {
          out[i] = { ok: false, error: limit };
          continue;
        }
        const counterpartyId = `${q.payee_participant_id}:${q.payee_customer_id}`;
        const seen = seenBy.get(q.payer_customer_id);
        const stored = riskHistoryOf(windows.get(input.participantId)!.rules, { recent: c.recent, n: c.hn, avg: c.avg, known: c.known });
        const history = seen === undefined ? stored : { ...stored, recent: stored.recent + seen.recent, count: stored.count + seen.count, knownCounterparty: stored.knownCounterparty || seen.counterparties.has(counterpartyId) };
        const riskInput: RiskInput = {
          channel: 'p2p',
          participantId: input.participantId,
          customerId: q.payer_customer_id,
          amountMinor: q.send_minor,
          currency: q.send_currency,
          refEurCents: q.ref_eur_cents,
          counterparty: { id: counterpartyId, flagged: c.flagged },
          country: c.country,
        };
        const assessment = risk.decide(riskInput, history);
        let challengeUsed: string | undefined;
        if (assessment.decision === 'step_up' && input.stepUpChallengeId !== undefined) {
          // Proof given: a completed, unexpired, unused challenge of this customer, bound to this amount and payee.
          const ch = challenges.get(input.stepUpChallengeId);
          const binding = stepUpBinding(q);
          const valid =
            ch !== undefined &&
            !usedChallenges.has(ch.id) &&
            ch.status === 'completed' &&
            ch.expires_at.getTime() > nowMs &&
            ch.participant_id === binding.participantId &&
            ch.customer_id === binding.customerId &&
            ch.binding === (await stepUp.bindingHash(binding));
          if (!valid) {
            out[i] = err('step_up_invalid', 'the step-up challenge is not a completed, unused, unexpired challenge for this payment: confirm without it for a new one');
            continue;
          }
          challengeUsed = ch.id;
          usedChallenges.add(ch.id);
        }
        if (assessment.decision === 'decline' || (assessment.decision === 'step_up' && challengeUsed === undefined)) {
          // The refusal's alert is the one thing a refused payment writes: the issuer and the operator must see it.
          await risk.raiseAlert(tx, riskInput, assessment, { quoteId: q.id });
          const reasons = { score: assessment.score, reasons: assessment.reasons.map((r) => r.rule) };
          if (assessment.decision === 'decline') {
            out[i] = err('risk_declined', 'the payment was stopped by risk checks', reasons);
          } else {
            const [payee] = await tx.query<{ name: string }>('select name from customers where id = $1', [q.payee_customer_id]);
            const holder = c.owner_participant_id !== null && c.acc_customer_id !== null ? { participantId: c.owner_participant_id, customerId: c.acc_customer_id } : { participantId: q.payer_participant_id, customerId: q.payer_customer_id };
            const binding = stepUpBinding(q);
            const offer = await stepUp.offer(tx, binding, { amount: formatMoney(binding.amountMinor, binding.currency), payeeName: maskName(payee?.name ?? '') }, holder);
            out[i] = err('step_up_required', 'the customer must approve this payment: start a challenge with details.stepUp.request (POST /v1/step-up/challenges), complete it, then confirm again with stepUpChallengeId', {
              ...reasons,
              stepUp: offer,
            });
          }
          continue;
        }
        const paymentId = `pay_${q.id.slice(4)}`;
        const legId = (leg: string) => `${paymentId}:${attempt}:${leg}`;
        const meta = { paymentId };
        const legs: TransferInput[] = [];
        let move: PositionMove | undefined;
        const fxMoves: PositionMove[] = [];
        let fxProviderPosition: string | undefined;
        let twoPhase: Planned['twoPhase'];
        const payerOwner = c?.owner_participant_id ?? q.payer_participant_id;
        const payeeOwner = c?.payee_owner ?? q.payee_participant_id;
        const payerConn = sides === undefined ? undefined : await sides.connection(payerOwner, q.send_currency, tx);
        const payeeConn = sides === undefined ? undefined : await sides.connection(payeeOwner, q.receive_currency, tx);
        if (payerConn !== undefined || payeeConn !== undefined) {
          // Two-phase (docs/ARCHITECTURE.md, "Connected participants"): the hub reserves what it holds now — the payer
          // participant's position against its cap and a hosted payer's money — as pending transfers; a connected
          // side's customer account is moved by its own bank, which the hub asks after this COMMIT.
          if (q.send_currency !== q.receive_currency) {
            out[i] = err('currency_not_receivable', 'a payment with a participant that keeps its own books is in one currency: convert at the bank');
            continue;
          }
          if (payerOwner === payeeOwner) {
            out[i] = err('currency_not_receivable', 'a payment between two customers of one connected participant stays in its own books');
            continue;
          }
          const payerPos = await accounts.ensureSystemAccount('funding', payerOwner, q.send_currency);
          const payeePos = await accounts.ensureSystemAccount('funding', payeeOwner, q.send_currency);
          legs.push({ kind: 'pending', id: legId('pos'), debitAccountId: payerPos, creditAccountId: payeePos, amountMinor: q.send_minor, currency: q.send_currency, purpose: 'position', metadata: meta });
          if (payerConn === undefined) legs.push({ kind: 'pending', id: legId('p2p'), debitAccountId: q.source_account_id, creditAccountId: payerPos, amountMinor: q.send_minor, currency: q.send_currency, purpose: 'p2p', metadata: meta });
          if (q.fee_minor > 0n) {
            const feeAccount = await accounts.ensureSystemAccount('fees', input.participantId, q.send_currency);
            // A connected payer's bank debits its customer send + fee; the fee leaves its position.
            legs.push({ kind: 'pending', id: legId('fee'), debitAccountId: payerConn === undefined ? q.source_account_id : payerPos, creditAccountId: feeAccount, amountMinor: q.fee_minor, currency: q.send_currency, purpose: 'p2p_fee', metadata: meta });
          }
          const deadline = new Date(nowMs + (payerConn?.deadlineMs ?? 0) + (payeeConn?.deadlineMs ?? 0) + CONNECTED_DEADLINE_MARGIN_MS);
          twoPhase = { sides: [...(payerConn !== undefined ? ['payer' as const] : []), ...(payeeConn !== undefined ? ['payee' as const] : [])], deadline };
          move = { transferId: `${legId('pos')}:post`, paymentId, payerParticipantId: payerOwner, payeeParticipantId: payeeOwner, currency: q.send_currency, amountMinor: q.send_minor };
        } else if (q.send_currency === q.receive_currency) {
          // Between two participants' customers the payment moves the payer participant's position down and the payee
          // participant's up, in the same linked chain (src/settlement); inside one participant, one leg.
          const payerP = c?.owner_participant_id ?? q.payer_participant_id;
          const payeeP = c?.payee_owner ?? q.payee_participant_id;
          // Without settlement (no positions kept) the chain is written as one inside the payer's participant.
          const positionPayee = settlement !== undefined ? payeeP : payerP;
          const chain = interparticipantLegs({
            legId,
            sourceAccountId: q.source_account_id,
            payeeAccountId: q.payee_account_id,
            payerParticipantId: payerP,
            payeeParticipantId: positionPayee,
            ...(await positionAccounts(accounts, payerP, positionPayee, q.send_currency)),
            amountMinor: q.send_minor,
            currency: q.send_currency,
            purpose: 'p2p',
            paymentId,
            metadata: meta,
          });
          legs.push(...chain.legs);
          move = chain.move;
        } else {
          // Across currencies, through the FX provider the quote bound (src/fx/providers.ts), as two payments between
          // participants: the payer's participant pays the provider in the currency sent (the provider's position
          // rises there), the provider pays the payee's participant in the currency delivered (its position falls
          // there, within its liquidity and cap). A side that is the provider itself moves no position.
          const provider = q.fx_provider_participant_id;
          if (provider === null) {
            out[i] = err('fx_rate_unavailable', 'this quote bound no FX provider’s rate: quote again');
            continue;
          }
          const payerP = c?.owner_participant_id ?? q.payer_participant_id;
          const payeeP = c?.payee_owner ?? q.payee_participant_id;
          const providerIn = await accounts.ensureSystemAccount('funding', provider, q.send_currency);
          const providerOut = await accounts.ensureSystemAccount('funding', provider, q.receive_currency);
          const sendSide = interparticipantLegs({
            legId: (l) => legId(`fx_in_${l}`),
            sourceAccountId: q.source_account_id,
            payeeAccountId: providerIn,
            payerParticipantId: payerP,
            payeeParticipantId: provider,
            payerPositionAccountId: await accounts.ensureSystemAccount('funding', payerP, q.send_currency),
            payeePositionAccountId: providerIn,
            amountMinor: q.send_minor,
            currency: q.send_currency,
            purpose: 'p2p_fx_in',
            paymentId,
            metadata: { ...meta, fxRateId: q.fx_rate_id },
          });
          const receiveSide = interparticipantLegs({
            legId: (l) => legId(`fx_out_${l}`),
            sourceAccountId: providerOut,
            payeeAccountId: q.payee_account_id,
            payerParticipantId: provider,
            payeeParticipantId: payeeP,
            payerPositionAccountId: providerOut,
            payeePositionAccountId: await accounts.ensureSystemAccount('funding', payeeP, q.receive_currency),
            amountMinor: q.receive_minor,
            currency: q.receive_currency,
            purpose: 'p2p_fx_out',
            paymentId,
            metadata: { ...meta, fxRateId: q.fx_rate_id },
          });
          legs.push(...sendSide.legs, ...receiveSide.legs);
          if (settlement !== undefined) for (const m of [sendSide.move, receiveSide.move]) if (m !== undefined) fxMoves.push(m);
          fxProviderPosition = providerOut;
        }
        if (q.fee_minor > 0n && twoPhase === undefined) {
          const feeAccount = await accounts.ensureSystemAccount('fees', input.participantId, q.send_currency);
          legs.push({ id: legId('fee'), debitAccountId: q.source_account_id, creditAccountId: feeAccount, amountMinor: q.fee_minor, currency: q.send_currency, purpose: 'p2p_fee', metadata: meta });
        }
        planned.push({ i, q, paymentId, legs: legs.map((l, k) => ({ ...l, linked: k < legs.length - 1 })), riskInput, challengeUsed, moves: move === undefined ? fxMoves : [move, ...fxMoves], fxProviderPosition, twoPhase });
        usedBy.set(q.payer_customer_id, { day: earlier.day + q.ref_eur_cents, month: earlier.month + q.ref_eur_cents });
        const s0 = seen ?? { recent: 0, count: 0, counterparties: new Set<string>() };
        s0.recent += 1;
        s0.count += 1;
        s0.counterparties.add(counterpartyId);
        seenBy.set(q.payer_customer_id, s0);
      }
      if (planned.length === 0) return out.map((r) => r!);

      // (4) The money: every payment's legs as one linked chain each, in one ledger call (each chain all or nothing: never
      // a debit without its credit, no overdraft under the ledger's row locks; a hot payee's row is updated once).
      const results = await mover.move(
        tx,
        planned.flatMap((p) => p.legs),
      );
      const done: Planned[] = [];
      let at = 0;
      for (const p of planned) {
        const mine = results.slice(at, at + p.legs.length);
        at += p.legs.length;
        const bad = failed(mine);
        if (bad === undefined || bad.ok) {
          done.push(p);
          continue;
        }
        const code = bad.error.code;
        const leg = p.legs[mine.indexOf(bad)];
        out[p.i] =
          (code === 'insufficient_funds' || code === 'exceeds_credit_limit') && leg !== undefined && leg.purpose === 'position' && p.fxProviderPosition !== undefined && 'debitAccountId' in leg && leg.debitAccountId === p.fxProviderPosition
            ? err('fx_liquidity_insufficient', "the FX provider's position cannot deliver this amount right now (its liquidity and net debit cap)", { currency: p.q.receive_currency })
            : (code === 'insufficient_funds' || code === 'exceeds_credit_limit') && leg !== undefined && leg.purpose === 'position'
            ? err('liquidity_exceeded', "the payer participant's position cannot cover this payment (prefunded liquidity and net debit cap)", { currency: p.q.send_currency })
            : code === 'insufficient_funds'
            ? err('insufficient_funds', 'the source account does not hold enough money')
            : code === 'account_closed'
              ? err('account_unavailable', 'an account in this payment is closed')
              : err('ledger_rejected', bad.error.message, { ledgerCode: code });
      }
      if (done.length === 0) return out.map((r) => r!);
      // The committed position legs, in the settlement window open at this COMMIT (a two-phase payment's at its commit).
      const moves = done.flatMap((p) => (p.twoPhase !== undefined ? [] : p.moves));
      if (moves.length > 0 && settlement !== undefined) await settlement.recordMoves(tx, moves);

      // (5) The records of the payments whose money moved (payment, quote used, request paid), their audit records,
      // outbox events and risk observations: all staged, written set-based with the COMMIT.
      for (const p of done) {
        tx.hooks!.stage(paymentFlusher, [
          p.paymentId,
          p.q.id,
          p.legs.map((l) => l.id).join(','),
          now.toISOString(),
          p.twoPhase === undefined ? 'completed' : 'pending',
          p.twoPhase?.sides.join(',') ?? '',
          p.twoPhase?.deadline.toISOString() ?? null,
        ]);
      }
      // A challenge pays once: used up by the payment it approved (its row is locked above, so no other batch has it).
      const consumed = done.filter((p) => p.challengeUsed !== undefined);
      if (consumed.length > 0) {
        await tx.query(`update step_up_challenges set status = 'consumed', consumed_at = $3, consumed_by = u.payment from unnest($1::text[], $2::text[]) as u(id, payment) where step_up_challenges.id = u.id`, [
          consumed.map((p) => p.challengeUsed),
          consumed.map((p) => p.paymentId),
          now,
        ]);
      }
      for (const p of done) {
        const q = p.q;
        const input = inputs[p.i]!;
        // Money as the API writes it ({ amount, currency }, decimal). The payee hears what it receives, as
        // GET /v1/transfers/payments/{id} shows it: what the payer paid and its fee are the payer's.
        const receiveAmount = formatMoney(q.receive_minor, q.receive_currency);
        const sent = { paymentId: p.paymentId, sendAmount: formatMoney(q.send_minor, q.send_currency), fee: formatMoney(q.fee_minor, q.send_currency), receiveAmount, requestId: q.request_id };
        const received = { paymentId: p.paymentId, receiveAmount, requestId: q.request_id };
        await risk.observe(tx, p.riskInput);
        if (p.twoPhase !== undefined) {
          // Reserved: the payment is told to the participants once it is decided (settleConnected).
          await audit.record(tx, { actor: input.actor, action: 'payment.reserved', objectType: 'payment', objectId: p.paymentId, details: { quoteId: q.id, connected: p.twoPhase.sides, deadline: p.twoPhase.deadline.toISOString() } });
        } else {
        await audit.record(tx, { actor: input.actor, action: 'payment.completed', objectType: 'payment', objectId: p.paymentId, details: { quoteId: q.id, sendMinor: q.send_minor.toString(), sendCurrency: q.send_currency, receiveMinor: q.receive_minor.toString(), receiveCurrency: q.receive_currency } });
        await events.emit(tx, { participantId: input.participantId, type: 'payment.sent', data: { ...sent, customerId: q.payer_customer_id } });
        await events.emit(tx, { participantId: q.payee_participant_id, type: 'payment.received', data: { ...received, customerId: q.payee_customer_id } });
        }
        out[p.i] = ok({
          id: p.paymentId,
          quoteId: q.id,
          status: p.twoPhase === undefined ? 'completed' : 'pending',
          reason: null,
          payerParticipantId: input.participantId,
          payerCustomerId: q.payer_customer_id,
          payeeParticipantId: q.payee_participant_id,
          payeeCustomerId: q.payee_customer_id,
          sendMinor: q.send_minor,
          sendCurrency: q.send_currency,
          receiveMinor: q.receive_minor,
          receiveCurrency: q.receive_currency,
          feeMinor: q.fee_minor,
          rate: q.rate,
          requestId: q.request_id,
          transferIds: p.legs.map((l) => l.id),
          sourceAccountId: q.source_account_id,
          payeeAccountId: q.payee_account_id,
          connected: p.twoPhase?.sides ?? [],
          redPacket: false,
          createdAt: now,
        });
      }
      return out.map((r) => r!);
    },

    async getPayment(participantId, id) {
      const [r] = await db.query<PaymentRow>('select * from payments where id = $1 and (payer_participant_id = $2 or payee_participant_id = $2)', [id, participantId]);
      return r === undefined ? undefined : toPayment(r);
    },
    async listPayments(participantId, customerId, limit) {
      const rows = await db.query<PaymentRow>(
        `select * from payments where (payer_participant_id = $1 and ($2::text is null or payer_customer_id = $2)) or (payee_participant_id = $1 and ($2::text is null or payee_customer_id = $2))
          order by created_at desc, id limit $3`,
        [participantId, customerId ?? null, limit],
      );
      return rows.map(toPayment);
    },
    async listFees() {
      const rows = await db.query<{ payer_participant_id: string; payee_participant_id: string; fixed_minor: bigint; fixed_currency: string; bps: number }>(
        'select payer_participant_id, payee_participant_id, fixed_minor, fixed_currency, bps from fee_schedules order by payer_participant_id, payee_participant_id limit $1',
        [FEE_LIST_LIMIT],
      );
      return rows.map((r) => ({ payerParticipantId: r.payer_participant_id, payeeParticipantId: r.payee_participant_id, fixedMinor: BigInt(r.fixed_minor), fixedCurrency: r.fixed_currency, bps: r.bps }));
    },
    async setFee(tx, actor, input) {
      if (input.bps < 0 || input.bps > 10_000 || input.fixedMinor < 0n) return err('fee_schedule_invalid', 'bps must be 0–10000 and the fixed fee ≥ 0');
      await tx.query(
        `insert into fee_schedules (payer_participant_id, payee_participant_id, fixed_minor, fixed_currency, bps) values ($1, $2, $3, $4, $5)
         on conflict (payer_participant_id, payee_participant_id) do update set fixed_minor = excluded.fixed_minor, fixed_currency = excluded.fixed_currency, bps = excluded.bps`,
        [input.payerParticipantId, input.payeeParticipantId, input.fixedMinor, input.fixedCurrency, input.bps],
      );
      feeCache.clear();
      await audit.record(tx, { actor, action: 'fee_schedule.set', objectType: 'fee_schedule', objectId: `${input.payerParticipantId}>${input.payeeParticipantId}`, details: { fixedMinor: input.fixedMinor.toString(), fixedCurrency: input.fixedCurrency, bps: input.bps } });
      return ok(undefined);
    },

    async createRequest(tx, actor, requester, input) {
      const customer = await customers.get(requester.id, input.customerId, tx);
      if (customer === undefined) return err('customer_not_found', 'no such customer');
      const limited = requestLimiter.take(`${requester.id}:${input.customerId}`);
      if (!limited.allowed) return err('request_rate_limited', 'too many requests sent; try later', { retryAfterMs: limited.retryAfterMs });
      const payer = await aliases.resolve(tx, input.payer.type, input.payer.value, requester.country);
      if (payer === undefined) return err('alias_not_found', 'no account is registered under this alias');
      return insertRequest(tx, actor, requester, input.customerId, payer, input.amountMinor, input.currency, input.note ?? null, input.accountId, null);
    },
    async listRequests(participantId, customerId, role, limit) {
      const column = role === 'payer' ? 'payer' : 'requester';
      const rows = await db.query<RequestRow>(`${REQUEST_SELECT} where r.${column}_participant_id = $1 and r.${column}_customer_id = $2 order by r.created_at desc, r.id limit $3`, [participantId, customerId, limit]);
      return rows.map((r) => toRequest(r, clock.nowMs()));
    },
    async getRequest(participantId, id) {
      const [r] = await db.query<RequestRow>(`${REQUEST_SELECT} where r.id = $1 and (r.payer_participant_id = $2 or r.requester_participant_id = $2)`, [id, participantId]);
      return r === undefined ? undefined : toRequest(r, clock.nowMs());
    },
    async approveRequest(tx, _actor, payer, requestId, input) {
      const [r] = await tx.query<RequestRow>(`${REQUEST_SELECT} where r.id = $1 and r.payer_participant_id = $2`, [requestId, payer.id]);
      if (r === undefined) return err('request_not_found', 'no such request', { requestId });
      if (r.payer_customer_id !== input.customerId) return err('not_request_payer', 'this request was sent to another customer');
      const request = toRequest(r, clock.nowMs());
      if (request.status !== 'pending') return err('request_not_pending', `the request is ${request.status}`);
      const payee: Payee = {
        aliasId: '',
        participantId: r.requester_participant_id,
        participantName: r.requester_participant_name,
        customerId: r.requester_customer_id,
        customerName: r.requester_name,
        accountId: r.requester_account_id,
        currency: r.currency,
        flagged: r.flagged,
      };
      const quote = await makeQuote(tx, payer, input.customerId, payee, { mode: 'receive', amountMinor: r.amount_minor, currency: r.currency }, input.sourceAccountId, requestId);
      if (quote.ok) {
        const warnings = [REQUEST_WARNING, ...(r.first_time ? [FIRST_TIME_WARNING] : []), ...quote.value.warnings];
        return ok({ ...quote.value, warnings });
      }
      return quote;
    },
    async quoteOwnTransfer(tx, payer, input) {
      // The destination: the customer's own account here, or an account linked into this wallet (active link).
      const target = await accounts.debitable(tx, payer.id, input.customerId, input.payeeAccountId);
      if (target === undefined) return err('account_unavailable', 'no such account to move money to (or its link was revoked)', { accountId: input.payeeAccountId });
      if (target.customerId === null) return err('account_unavailable', 'not a customer account', { accountId: input.payeeAccountId });
      const [holder] = await tx.query<{ name: string; participant_name: string }>(
        'select c.name, p.name as participant_name from customers c join participants p on p.id = c.participant_id where c.id = $1',
        [target.customerId],
      );
      const payee: Payee = {
        aliasId: '',
        participantId: target.ownerParticipantId,
        participantName: holder?.participant_name ?? target.ownerParticipantId,
        customerId: target.customerId,
        customerName: holder?.name ?? '',
        accountId: target.id,
        currency: target.currency,
        flagged: false,
      };
      return makeQuote(tx, payer, input.customerId, payee, { mode: 'send', amountMinor: input.amountMinor, currency: input.currency }, input.sourceAccountId, null, undefined, undefined, true);
    },
    async declineRequest(tx, actor, participantId, requestId, input) {
      const [r] = await tx.query<RequestRow>(`${REQUEST_SELECT} where r.id = $1 and r.payer_participant_id = $2`, [requestId, participantId]);
      if (r === undefined) return err('request_not_found', 'no such request', { requestId });
      if (r.payer_customer_id !== input.customerId) return err('not_request_payer', 'this request was sent to another customer');
      if (toRequest(r, clock.nowMs()).status !== 'pending') return err('request_not_pending', `the request is ${r.status}`);
      await tx.query(`update money_requests set status = 'declined' where id = $1`, [requestId]);
      if (input.block === true) {
        await tx.query(
          `insert into payer_blocks (payer_participant_id, payer_customer_id, blocked_participant_id, blocked_customer_id, created_at) values ($1, $2, $3, $4, $5) on conflict do nothing`,
          [participantId, input.customerId, r.requester_participant_id, r.requester_customer_id, clock.now()],
        );
      }
      await audit.record(tx, { actor, action: input.block === true ? 'money_request.declined_and_blocked' : 'money_request.declined', objectType: 'money_request', objectId: requestId });
      await events.emit(tx, { participantId: r.requester_participant_id, type: 'money_request.declined', data: { requestId, customerId: r.requester_customer_id } });
      const [after] = await tx.query<RequestRow>(`${REQUEST_SELECT} where r.id = $1`, [requestId]);
      return ok(toRequest(after!, clock.nowMs()));
    },

    async createSplit(tx, actor, creator, input) {
      const customer = await customers.get(creator.id, input.customerId, tx);
      if (customer === undefined) return err('customer_not_found', 'no such customer');
      const n = input.members.length;
      if (n < 2 || n > 50) return err('split_invalid', 'a split has 2–50 members');
      let amounts: bigint[];
      if (input.method === 'equal') {
        if (input.totalMinor < BigInt(n)) return err('split_invalid', 'the total is too small to give every member at least one minor unit');
        amounts = splitEqual(input.totalMinor, n);
      } else if (input.method === 'shares') {
        const shares = input.members.map((m) => m.shares ?? 0);
        if (shares.some((s) => !Number.isInteger(s) || s < 1 || s > 1000)) return err('split_invalid', 'every member needs shares, an integer 1–1000');
        amounts = splitByShares(input.totalMinor, shares);
        if (amounts.some((a) => a <= 0n)) return err('split_invalid', 'the total is too small for these shares');
      } else {
        if (input.members.some((m) => m.amountMinor === undefined || m.amountMinor <= 0n)) return err('split_invalid', 'every member needs a positive amount');
        amounts = input.members.map((m) => m.amountMinor!);
        const sum = amounts.reduce((a, b) => a + b, 0n);
        if (sum !== input.totalMinor) return err('split_amounts_mismatch', 'the members’ amounts do not add up to the total', { sumMinor: sum.toString(), totalMinor: input.totalMinor.toString() });
      }
      const limited = requestLimiter.take(`${creator.id}:${input.customerId}`);
      if (!limited.allowed) return err('request_rate_limited', 'too many requests sent; try later', { retryAfterMs: limited.retryAfterMs });
      const id = newId('spl');
      const now = clock.now();
      await tx.query(`insert into bill_splits (id, participant_id, customer_id, total_minor, currency, method, note, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8)`, [
        id,
        creator.id,
        input.customerId,
        input.totalMinor,
        input.currency,
        input.method,
        input.note ?? null,
        now,
      ]);
      const seen = new Set<string>();
      for (const [idx, member] of input.members.entries()) {
        const alias = await aliases.resolve(tx, member.alias.type, member.alias.value, creator.country);
        if (alias === undefined) return err('alias_not_found', `member ${idx + 1}: no account is registered under this alias`, { member: idx });
        const who = `${alias.participantId}:${alias.customerId}`;
        if (seen.has(who)) return err('split_invalid', `member ${idx + 1} is listed twice`, { member: idx });
        seen.add(who);
        const isPayer = alias.participantId === creator.id && alias.customerId === input.customerId;
        let requestId: string | null = null;
        if (!isPayer) {
          const request = await insertRequest(tx, actor, creator, input.customerId, alias, amounts[idx]!, input.currency, input.note ?? 'bill split', undefined, id);
          if (!request.ok) return request;
          requestId = request.value.id;
        }
        await tx.query(
          `insert into bill_split_members (split_id, idx, alias_id, participant_id, customer_id, amount_minor, request_id, is_payer) values ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [id, idx, alias.id, alias.participantId, alias.customerId, amounts[idx]!, requestId, isPayer],
        );
      }
      await audit.record(tx, { actor, action: 'bill_split.created', objectType: 'bill_split', objectId: id, details: { members: n, method: input.method } });
      return ok((await service.getSplit(creator.id, id, tx))!);
    },
    async getSplit(participantId, id, q = db) {
      const [s] = await q.query<{ id: string; participant_id: string; customer_id: string; total_minor: bigint; currency: string; method: SplitView['method']; note: string | null; created_at: Date }>(
        'select * from bill_splits where id = $1 and participant_id = $2',
        [id, participantId],
      );
      if (s === undefined) return undefined;
      const members = await q.query<{ idx: number; name: string; amount_minor: bigint; is_payer: boolean; request_id: string | null; status: string | null; expires_at: Date | null }>(
        `select m.idx, c.name, m.amount_minor, m.is_payer, m.request_id, r.status, r.expires_at from bill_split_members m join customers c on c.id = m.customer_id
           left join money_requests r on r.id = m.request_id where m.split_id = $1 order by m.idx`,
        [id],
      );
      return {
        id: s.id,
        participantId: s.participant_id,
        customerId: s.customer_id,
        totalMinor: s.total_minor,
        currency: s.currency,
        method: s.method,
        note: s.note,
        createdAt: s.created_at,
        members: members.map((m) => ({
          idx: m.idx,
          maskedName: maskName(m.name),
          amountMinor: m.amount_minor,
          isPayer: m.is_payer,
          requestId: m.request_id,
          status: m.is_payer ? 'paid' : m.status === 'pending' && m.expires_at !== null && m.expires_at.getTime() <= clock.nowMs() ? 'expired' : ((m.status ?? 'pending') as 'paid'),
        })),
      };
    },
    async remind(tx, actor, participantId, splitId) {
      const [s] = await tx.query<{ reminded_at: Date | null }>('select reminded_at from bill_splits where id = $1 and participant_id = $2 for update', [splitId, participantId]);
      if (s === undefined) return err('split_not_found', 'no such split', { splitId });
      if (s.reminded_at !== null && clock.nowMs() - s.reminded_at.getTime() < REMINDER_INTERVAL_MS) {
        return err('reminder_rate_limited', 'members were reminded less than an hour ago', { retryAfterMs: REMINDER_INTERVAL_MS - (clock.nowMs() - s.reminded_at.getTime()) });
      }
      const limited = reminderLimiter.take(splitId);
      if (!limited.allowed) return err('reminder_rate_limited', 'members were reminded recently', { retryAfterMs: limited.retryAfterMs });
      const unpaid = await tx.query<{ id: string; payer_participant_id: string; payer_customer_id: string }>(
        `select r.id, r.payer_participant_id, r.payer_customer_id from bill_split_members m join money_requests r on r.id = m.request_id
          where m.split_id = $1 and r.status = 'pending' and r.expires_at > $2 order by m.idx`,
        [splitId, clock.now()],
      );
      for (const r of unpaid) await events.emit(tx, { participantId: r.payer_participant_id, type: 'money_request.reminder', data: { requestId: r.id, customerId: r.payer_customer_id, warning: REQUEST_WARNING } });
      await tx.query('update bill_splits set reminded_at = $2 where id = $1', [splitId, clock.now()]);
      await audit.record(tx, { actor, action: 'bill_split.reminded', objectType: 'bill_split', objectId: splitId, details: { reminded: unpaid.length } });
      return ok({ reminded: unpaid.length });
    },

    async createRedPacket(tx, actor, sender, input) {
      const customer = await customers.get(sender.id, input.customerId, tx);
      if (customer === undefined) return err('customer_not_found', 'no such customer');
      if (!Number.isInteger(input.shares) || input.shares < 1 || input.shares > 200) return err('red_packet_invalid', 'shares must be 1–200');
      if (input.totalMinor < BigInt(input.shares)) return err('red_packet_invalid', 'every share needs at least one minor unit of the currency');
      if (input.members.length < 1 || input.members.length > 500) return err('red_packet_invalid', 'a group has 1–500 members');
      const ttlMs = (input.expiresInS ?? RED_PACKET_TTL_MS / 1000) * 1000;
      if (ttlMs < 60_000 || ttlMs > 7 * 24 * 3_600_000) return err('red_packet_invalid', 'expiresInS must be 60 s – 7 days');
      const source = await pickSource(tx, sender.id, input.customerId, input.sourceAccountId, input.currency);
      if (source === undefined) return err('account_unavailable', 'no such account to pay from');
      if (source.currency !== input.currency) return err('source_currency_mismatch', `the source account holds ${source.currency}`);
      // A red packet's money waits in the hub's escrow until claimed. An account at a participant that keeps its own
      // books (connected: the bank's own customer, or an account a wallet's customer linked by the bank's consent)
      // funds it through the one two-phase path: a payment, payer connected, payee the escrow (below).
      const bankConn = sides === undefined ? undefined : await sides.connection(source.ownerParticipantId, input.currency, tx);
      const table = await fx.table();
      const reference = toEurCents(table, input.currency, input.totalMinor);
      if (!reference.ok) return reference;
      const limit = await checkLimits(tx, input.customerId, customer.kycLevel, reference.value);
      if (limit !== undefined) return { ok: false, error: limit };
      const members = new Map<string, AliasRecord>();
      for (const [i, m] of input.members.entries()) {
        const alias = await aliases.resolve(tx, m.type, m.value, sender.country);
        if (alias === undefined) return err('alias_not_found', `member ${i + 1}: no account is registered under this alias`, { member: i });
        if (alias.currency !== input.currency) return err('currency_not_receivable', `member ${i + 1} cannot receive ${input.currency}`, { member: i });
        members.set(`${alias.participantId}:${alias.customerId}`, alias);
      }
      const escrow = await accounts.ensureSystemAccount('suspense', sender.id, input.currency);
      const id = newId('rpk');
      const now = clock.now();
      const amounts = input.mode === 'equal' ? splitEqual(input.totalMinor, input.shares) : splitRandom(input.totalMinor, input.shares);
      let fundingPaymentId: string | null = null;
      if (bankConn === undefined) {
        const [funded] = await mover.move(tx, [{ id: `${id}:fund`, debitAccountId: source.id, creditAccountId: escrow, amountMinor: input.totalMinor, currency: input.currency, purpose: 'red_packet_fund', metadata: { packetId: id } }]);
        if (funded === undefined || !funded.ok) return funded?.ok === false && funded.error.code === 'insufficient_funds' ? err('insufficient_funds', 'the source account does not hold enough money') : err('ledger_rejected', 'the packet could not be funded');
      } else {
        // Reserved here (the hub's legs pending, against the bank's position), the bank asked to reserve after this
        // COMMIT (settleConnected, the create route's `after` step), then committed into the escrow (the packet
        // `open`) or voided (`failed`). The bank's own customer: its position → the escrow. A wallet's customer paying
        // from a linked account: the bank's position → the wallet's (a settlement move), and the wallet's → the escrow
        // at the commit, as for any payment to a hosted payee.
        const paymentId = `${FUNDING_PREFIX}${id.slice(4)}`;
        const bankPos = await accounts.ensureSystemAccount('funding', source.ownerParticipantId, input.currency);
        const meta = { paymentId, packetId: id };
        const leg: TransferInput =
          source.ownerParticipantId === sender.id
            ? { kind: 'pending', id: `${paymentId}:in`, debitAccountId: bankPos, creditAccountId: escrow, amountMinor: input.totalMinor, currency: input.currency, purpose: 'red_packet_fund', metadata: meta }
            : { kind: 'pending', id: `${paymentId}:pos`, debitAccountId: bankPos, creditAccountId: await accounts.ensureSystemAccount('funding', sender.id, input.currency), amountMinor: input.totalMinor, currency: input.currency, purpose: 'position', metadata: meta };
        const [reserved] = await mover.move(tx, [leg]);
        if (reserved === undefined || !reserved.ok) {
          const code = reserved?.ok === false ? reserved.error.code : 'no_result';
          return code === 'insufficient_funds' || code === 'exceeds_credit_limit'
            ? err('liquidity_exceeded', "the bank's position cannot cover this packet (prefunded liquidity and net debit cap)", { currency: input.currency })
            : err('ledger_rejected', 'the packet could not be reserved', { ledgerCode: code });
        }
        const deadline = new Date(now.getTime() + bankConn.deadlineMs + CONNECTED_DEADLINE_MARGIN_MS);
        await tx.query(
          `insert into payments (id, quote_id, payer_participant_id, payer_customer_id, source_account_id, payee_participant_id, payee_customer_id, payee_account_id, send_minor, send_currency,
                                 receive_minor, receive_currency, fee_minor, rate, ref_eur_cents, request_id, status, transfer_ids, created_at, connected, deadline_at)
           values ($1, $2, $3, $4, $5, $3, $4, $6, $7, $8, $7, $8, 0, null, $9, null, 'pending', $10, $11, '{payer}', $12)`,
          [paymentId, `rpk:${paymentId}`, sender.id, input.customerId, source.id, escrow, input.totalMinor, input.currency, reference.value, [leg.id], now, deadline],
        );
        await audit.record(tx, { actor, action: 'payment.reserved', objectType: 'payment', objectId: paymentId, details: { packetId: id, connected: ['payer'], deadline: deadline.toISOString() } });
        fundingPaymentId = paymentId;
      }
      await tx.query(
        `insert into red_packets (id, participant_id, customer_id, source_account_id, escrow_account_id, total_minor, currency, share_count, mode, message, status, expires_at, created_at, funding_payment_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $13, $11, $12, $14)`,
        [id, sender.id, input.customerId, source.id, escrow, input.totalMinor, input.currency, input.shares, input.mode, input.message ?? null, new Date(now.getTime() + ttlMs), now, fundingPaymentId === null ? 'open' : 'funding', fundingPaymentId],
      );
      await tx.query(`insert into red_packet_shares (packet_id, idx, amount_minor) select $1, u.i::int - 1, u.a::int8 from unnest($2::text[]) with ordinality as u(a, i)`, [id, amounts.map(String)]);
      const list = [...members.values()];
      await tx.query(`insert into red_packet_members (packet_id, participant_id, customer_id, account_id) select $1, p, c, a from unnest($2::text[], $3::text[], $4::text[]) as u(p, c, a)`, [
        id,
        list.map((m) => m.participantId),
        list.map((m) => m.customerId),
        list.map((m) => m.accountId),
      ]);
      await audit.record(tx, { actor, action: 'red_packet.created', objectType: 'red_packet', objectId: id, details: { totalMinor: input.totalMinor.toString(), currency: input.currency, shares: input.shares, mode: input.mode, fundingPaymentId } });
      // Members hear of a packet funded by a bank once it is open (packetFunded).
      if (fundingPaymentId === null) {
        for (const p of new Set(list.map((m) => m.participantId))) {
          await events.emit(tx, { participantId: p, type: 'red_packet.received', data: { packetId: id, customerIds: list.filter((m) => m.participantId === p).map((m) => m.customerId), message: input.message ?? null } });
        }
      }
      const [row] = await tx.query<PacketRow>('select * from red_packets where id = $1', [id]);
      return ok(await packetView(tx, row!));
    },
    async claimRedPacket(tx, actor, participantId, packetId, customerId) {
      const packet = await visiblePacket(tx, participantId, packetId);
      if (packet === undefined) return err('red_packet_not_found', 'no such red packet', { packetId });
      // The member's row lock serializes two claims by the same member; the partial unique index backs it up.
      const [member] = await tx.query<{ account_id: string; claimed_at: Date | null }>(
        'select account_id, claimed_at from red_packet_members where packet_id = $1 and participant_id = $2 and customer_id = $3 for update',
        [packetId, participantId, customerId],
      );
      if (member === undefined) return err('red_packet_not_member', 'this customer is not in the packet’s group');
      if (member.claimed_at !== null) return err('red_packet_already_claimed', 'this customer claimed this packet already');
      // A packet its sender's bank has not funded (yet, or refused) holds nothing to claim.
      if (packet.status === 'funding' || packet.status === 'failed') return err('red_packet_not_open', packet.status === 'funding' ? 'the red packet is still being funded by the sender’s bank' : 'the sender’s bank refused to fund the red packet', { status: packet.status });
      if (packet.status !== 'open' || packet.expires_at.getTime() <= clock.nowMs()) return err('red_packet_expired', 'the red packet has expired');
      // One unclaimed share, skipping shares other claims hold right now: never two claims on one share.
      const [share] = await tx.query<{ idx: number; amount_minor: bigint }>(
        `update red_packet_shares set claimed_by_participant_id = $2, claimed_by_customer_id = $3, claimed_at = $4
          where packet_id = $1 and idx = (select idx from red_packet_shares where packet_id = $1 and claimed_at is null and not refunded order by idx limit 1 for update skip locked)
          returning idx, amount_minor`,
        [packetId, participantId, customerId, clock.now()],
      );
      if (share === undefined) return err('red_packet_empty', 'every share was claimed');
      const memberConn = sides === undefined ? undefined : await sides.connection(participantId, packet.currency, tx);
      if (memberConn !== undefined && sides !== undefined) {
        // The member's bank keeps its own books: the share is paid as a payment with a connected payee (the one
        // two-phase path): reserved here (escrow → the sender participant's position → the bank's position, pending),
        // then the bank is asked to accept (settleConnected, after this COMMIT) and the payment decided.
        // One payment per attempt: a share released by a refusal is paid by a new one when claimed again.
        const paymentId = `${CLAIM_PREFIX}${packetId.slice(4)}_${share.idx}_${newId('att').slice(4, 12)}`;
        const legId = (leg: string) => `${paymentId}:${leg}`;
        const payerPos = await accounts.ensureSystemAccount('funding', packet.participant_id, packet.currency);
        const payeePos = await accounts.ensureSystemAccount('funding', participantId, packet.currency);
        const meta = { paymentId, packetId };
        // A packet the member's own bank funded (its escrow is that bank's) moves no position between participants.
        const legs: TransferInput[] = [
          { kind: 'pending', id: legId('p2p'), debitAccountId: packet.escrow_account_id, creditAccountId: payerPos, amountMinor: share.amount_minor, currency: packet.currency, purpose: 'red_packet_claim', metadata: meta },
          ...(payerPos === payeePos
            ? []
            : [{ kind: 'pending' as const, id: legId('pos'), debitAccountId: payerPos, creditAccountId: payeePos, amountMinor: share.amount_minor, currency: packet.currency, purpose: 'position', metadata: meta }]),
        ];
        const reserved = await mover.move(tx, legs.map((l, k) => ({ ...l, linked: k < legs.length - 1 })));
        const bad = failed(reserved);
        if (bad !== undefined && !bad.ok) return err('ledger_rejected', 'the share could not be reserved', { ledgerCode: bad.error.code });
        const now = clock.now();
        const deadline = new Date(now.getTime() + memberConn.deadlineMs + CONNECTED_DEADLINE_MARGIN_MS);
        await tx.query(
          `insert into payments (id, quote_id, payer_participant_id, payer_customer_id, source_account_id, payee_participant_id, payee_customer_id, payee_account_id, send_minor, send_currency,
                                 receive_minor, receive_currency, fee_minor, rate, ref_eur_cents, request_id, status, transfer_ids, created_at, connected, deadline_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9, $10, 0, null, 0, null, 'pending', $11, $12, '{payee}', $13)`,
          [paymentId, `rpk:${paymentId}`, packet.participant_id, packet.customer_id, packet.escrow_account_id, participantId, customerId, member.account_id, share.amount_minor, packet.currency, legs.map((l) => l.id), now, deadline],
        );
        await tx.query('update red_packet_shares set payment_id = $3 where packet_id = $1 and idx = $2', [packetId, share.idx, paymentId]);
        await tx.query('update red_packet_members set claimed_minor = $4, claimed_at = $5 where packet_id = $1 and participant_id = $2 and customer_id = $3', [packetId, participantId, customerId, share.amount_minor, now]);
        await audit.record(tx, { actor, action: 'payment.reserved', objectType: 'payment', objectId: paymentId, details: { packetId, connected: ['payee'], deadline: deadline.toISOString() } });
        return ok({ amountMinor: share.amount_minor, currency: packet.currency, packet: await packetView(tx, packet), paymentId });
      }
      // The escrow holds money the sender's participant answers for (its customer's, or its position's when a connected
      // bank funded the packet): a member at another participant is paid through the positions (escrow → the sender
      // participant's → the member's participant's → the member), the move recorded for settlement, as a payment from
      // the sender would be. A member at the sender's own participant moves no position.
      const viaPositions = packet.participant_id !== participantId;
      const claimId = `${packetId}:claim:${share.idx}`;
      const claimLegs: TransferInput[] = viaPositions
        ? [
            { id: `${claimId}:out`, debitAccountId: packet.escrow_account_id, creditAccountId: await accounts.ensureSystemAccount('funding', packet.participant_id, packet.currency), amountMinor: share.amount_minor, currency: packet.currency, purpose: 'red_packet_claim', metadata: { packetId } },
            ...interparticipantLegs({
              legId: (leg) => `${claimId}:${leg}`,
              sourceAccountId: await accounts.ensureSystemAccount('funding', packet.participant_id, packet.currency),
              payeeAccountId: member.account_id,
              payerParticipantId: packet.participant_id,
              payeeParticipantId: participantId,
              payerPositionAccountId: await accounts.ensureSystemAccount('funding', packet.participant_id, packet.currency),
              payeePositionAccountId: await accounts.ensureSystemAccount('funding', participantId, packet.currency),
              amountMinor: share.amount_minor,
              currency: packet.currency,
              purpose: 'red_packet_claim',
              paymentId: claimId,
              metadata: { packetId },
            }).legs,
          ]
        : [{ id: claimId, debitAccountId: packet.escrow_account_id, creditAccountId: member.account_id, amountMinor: share.amount_minor, currency: packet.currency, purpose: 'red_packet_claim', metadata: { packetId } }];
      const claimed = await mover.move(tx, claimLegs.map((l, k) => ({ ...l, linked: k < claimLegs.length - 1 })));
      const moved = failed(claimed) ?? claimed[0];
      if (moved === undefined || !moved.ok) return err('ledger_rejected', 'the share could not be paid', { ledgerCode: moved?.ok === false ? moved.error.code : null });
      if (viaPositions && settlement !== undefined) {
        await settlement.recordMoves(tx, [{ transferId: `${claimId}:pos`, paymentId: claimId, payerParticipantId: packet.participant_id, payeeParticipantId: participantId, currency: packet.currency, amountMinor: share.amount_minor }]);
      }
      await tx.query('update red_packet_members set claimed_minor = $4, claimed_at = $5 where packet_id = $1 and participant_id = $2 and customer_id = $3', [packetId, participantId, customerId, share.amount_minor, clock.now()]);
      await audit.record(tx, { actor, action: 'red_packet.claimed', objectType: 'red_packet', objectId: packetId, details: { customerId, amountMinor: share.amount_minor.toString() } });
      await events.emit(tx, { participantId, type: 'red_packet.claimed', data: { packetId, customerId, amount: formatMoney(share.amount_minor, packet.currency) } });
      if (packet.participant_id !== participantId) await events.emit(tx, { participantId: packet.participant_id, type: 'red_packet.claimed', data: { packetId, customerId: packet.customer_id } });
      return ok({ amountMinor: share.amount_minor, currency: packet.currency, packet: await packetView(tx, packet) });
    },
    async getRedPacket(participantId, id, q = db) {
      const row = await visiblePacket(q, participantId, id);
      return row === undefined ? undefined : packetView(q, row);
    },
    async sweepRedPackets(maxPackets = 100) {
      const now = clock.now();
      // Expired open packets, and packets whose refund to the sender's bank is due (again).
      const due = await db.query<{ id: string }>(
        `select id from (select id, expires_at as at from red_packets where status = 'open' and expires_at <= $1
                          union all select id, refund_at from red_packets where status = 'refunding' and refund_payment_id is null and refund_at <= $1) d
          order by at limit $2`,
        [now, Math.min(maxPackets, 1000)],
      );
      let refunded = 0;
      let completed = 0;
      for (const { id } of due) {
        const refundPayment = await db.transaction(async (tx): Promise<string | undefined> => {
          const [p] = await tx.query<PacketRow>(
            `select * from red_packets where id = $1 and (status = 'open' or (status = 'refunding' and refund_payment_id is null)) for update`,
            [id],
          );
          if (p === undefined) return undefined;
          // Waits for claims in flight on these shares; rows they claimed drop out when rechecked.
          const rest = await tx.query<{ idx: number; amount_minor: bigint }>(`select idx, amount_minor from red_packet_shares where packet_id = $1 and claimed_at is null and not refunded for update`, [id]);
          const sum = rest.reduce((s, r) => s + r.amount_minor, 0n);
          if (p.funding_payment_id !== null) return refundViaBank(tx, p, sum);
          if (sum > 0n) {
            const [moved] = await mover.move(tx, [{ id: `${id}:refund`, debitAccountId: p.escrow_account_id, creditAccountId: p.source_account_id, amountMinor: sum, currency: p.currency, purpose: 'red_packet_refund', metadata: { packetId: id } }]);
            if (moved === undefined || !moved.ok) throw new Error(`red packet ${id}: refund failed: ${moved?.ok === false ? moved.error.code : 'no result'}`);
            await tx.query('update red_packet_shares set refunded = true where packet_id = $1 and claimed_at is null', [id]);
            refunded++;
          } else completed++;
          await tx.query(`update red_packets set status = $2, refunded_minor = $3 where id = $1`, [id, sum > 0n ? 'refunded' : 'completed', sum]);
          await audit.record(tx, { actor: { type: 'system' }, action: sum > 0n ? 'red_packet.refunded' : 'red_packet.completed', objectType: 'red_packet', objectId: id, details: { refundedMinor: sum.toString() } });
          await events.emit(tx, { participantId: p.participant_id, type: sum > 0n ? 'red_packet.refunded' : 'red_packet.completed', data: { packetId: id, customerId: p.customer_id, refunded: formatMoney(sum, p.currency) } });
          return undefined;
        });
        if (refundPayment === undefined) continue;
        // The sender's bank asked to accept the refund, outside any transaction; a failure here leaves the payment
        // pending, and the recovery job aborts it at its deadline (the packet then waits for the next try).
        const decided = await settleConnected(refundPayment).catch(() => undefined);
        if (decided?.status === 'completed') refunded++;
      }
      return { refunded, completed };
    },
  };
  return service;
}
