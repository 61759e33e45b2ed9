import type { EventType, IssuerAuthorizationRequest } from '../webhooks/index.ts';
import type { AccountService } from '../accounts/index.ts';
import type { Actor, AuditService } from '../audit/index.ts';
import type { Card, Channel } from '../cards/index.ts';
import type { CardService } from '../cards/index.ts';
import { decodeCpm } from '../emv/index.ts';
import type { Ledger } from '../ledger/index.ts';
import type { TransferInput } from '../ledger/index.ts';
import type { Merchant, MerchantService } from '../merchants/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { RefLearner } from '../api/index.ts';
import { pipeliner, type Db, type Queryable, type TxHooks } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { formatAmount, formatMoney, type Money } from '../platform/money.ts';
import { err, ok, type Result } from '../platform/result.ts';
import { riskHistoryOf, riskHistorySql, type RiskAssessment, type RiskDecision, type RiskInput, type RiskReason, type RiskRules, type RiskService } from '../risk/index.ts';
import type { StepUpBinding, StepUpService } from '../stepup/index.ts';
import type { VerifiedTokenPayment, WalletTokenService } from '../cards/index.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { PErr } from './errors.ts';
import type { AppliedCoupon, ValueHooks } from './offers.ts';
import type { IssuerGateway, IssuerSettings } from './issuer.ts';
import type { PositionMove, SettlementService } from '../settlement/index.ts';
import { formatScaled, type FxProviders } from '../fx/index.ts';
import { authCode, authorizationFlusher, captureLegs, feeLegs, fxCaptureLegs, ledgerCode, merchantFee, refundLegs, SEVERITY, toAuth, yymmdd, type Authorization, type AuthRow, type PaymentChannel } from './model.ts';
import { bankRefusal, reasonText, type AskOutcome, type OutboxMessage } from '../connectors/index.ts';
import type { Connection } from '../participants/index.ts';
import { REASONS, type ConnectorRequest, type StatusReason } from '../participant-sdk/index.ts';
import { evaluatePaymentRules, type PaymentRuleStore, type PaymentRules } from './risk-rules.ts';

/**
 * The ONE pipeline behind every card payment — tap, consumer-presented QR, a scanned merchant QR, a payment link — for
 * one payment or many (a single request is a batch of one). Three stages, so that nothing slow runs under a lock:
 *
 * 1. decideMany, without a transaction or a lock: each channel's input resolved (the QR decoded, the link read), the
 *    token's cryptogram, state and counter checked (against the last counter committed), the source account, the
 *    card's controls, the shared and the card-payment risk rules (set-based reads for the whole batch; payments of one
 *    card or customer in a batch count against each other), step-up proof read. Refusals raise their risk alerts in a
 *    transaction of their own.
 * 2. askIssuer, per payment, on its own: an issuer that decides in real time is asked (within its deadline, stand-in
 *    rules after it) — after the ask is recorded, so that an approval the payment then does not use is reversed. A slow
 *    issuer delays its own payments, no one else's.
 * 3. commitMany, in the batch's transaction (the effect batcher: concurrent payments share one): the token rows locked
 *    in id order and each counter claimed (a replay loses), dynamic codes and links locked, spend limits re-checked
 *    under the token locks, step-up proof consumed; then ONE ledger call with every hold (and, for payments the payer
 *    pushes — QR, links — the capture and the merchant's fee, linked); then the records, set-based, with the COMMIT.
 *    A payment refused here after its issuer approved is reversed to the issuer (a signed webhook, retried), and
 *    sweepIssuerAsks reverses any approval a crash or a rollback left unused.
 *
 * An account at a bank that keeps its own books (a connected participant: the bank's own customer paying through the
 * bank, or a wallet's customer paying from an account linked by the bank's open-banking consent) takes the same three
 * stages: the bank is the issuer asked in stage 2, by the connector's signed `reserve` (naming the consent as mandate
 * when a wallet initiates), bounded by the bank's deadline; the hold and capture are on the bank's position (as for a
 * real-time issuer) and the COMMIT stages the connector `commit` in the outbox; a refusal, a missed deadline, a refusal
 * under lock or an ask a crash left unused stages `abort` instead, so the bank releases its hold once it is delivered.
 */

/** How a wallet pays: one of its tokens (with a fresh cryptogram) or an account its customer may debit. */
export type WalletSource =
  | { readonly type: 'token'; readonly tokenRef: string; readonly atc: number; readonly cryptogram: string; readonly unpredictableNumber: string }
  | { readonly type: 'account'; readonly accountId: string };

export interface WalletPayInput {
  readonly customerId: string;
  readonly source: WalletSource;
  readonly deviceId?: string | undefined;
  readonly deviceCountry?: string | undefined;
  /** After step_up_required: the challenge the customer completed for this payment. */
  readonly stepUpChallengeId?: string | undefined;
  /** A coupon the customer keeps to apply (it must apply); without it the best eligible one is applied. */
  readonly walletCouponId?: string | undefined;
  /** Across currencies: the FX provider to convert through; by default the one whose rate in force is best. */
  readonly fxProviderId?: string | undefined;
  /** False: apply no coupon. */
  readonly applyCoupon?: boolean | undefined;
}

export interface TapInput {
  readonly token: string;
  /** YYMM, as terminals read it (5F24 without the day). */
  readonly expiry: string;
  readonly atc: number;
  readonly unpredictableNumber: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly cryptogram: string;
}

/** A card payment as its channel presents it. */
export type CardPaymentInput =
  | { readonly channel: 'tap'; readonly actor: Actor; readonly owner: string; readonly merchantId: string; readonly tap: TapInput }
  | { readonly channel: 'cpm'; readonly actor: Actor; readonly owner: string; readonly merchantId: string; readonly payload: string; readonly amountMinor: bigint; readonly currency: string }
  | { readonly channel: 'qr'; readonly actor: Actor; readonly walletId: string; readonly payload: string; readonly amount?: Money | undefined; readonly pay: WalletPayInput }
  | { readonly channel: 'link'; readonly actor: Actor; readonly walletId: string; readonly linkId: string; readonly pay: WalletPayInput };

/** A payment stage 1 decided to go ahead with: everything the commit needs. */
export interface Decided {
  readonly kind: 'decided';
  readonly id: string;
  readonly actor: Actor;
  readonly channel: PaymentChannel;
  readonly merchant: Merchant;
  readonly amountMinor: bigint;
  readonly currency: string;
  /** A token source: the checked token and the participant that presented it (audited). */
  readonly token: { readonly verified: VerifiedTokenPayment; readonly channel: Channel; readonly presentedBy: string } | undefined;
  readonly card: Card | undefined;
  readonly issuerId: string;
  readonly payerParticipantId: string | null;
  readonly payerCustomerId: string | null;
  readonly riskInput: RiskInput;
  readonly score: number;
  readonly deviceId: string | null;
  readonly qrId: string | null;
  readonly linkId: string | null;
  /** Pushed by the payer (QR, link): captured in the same transaction. */
  readonly capture: boolean;
  readonly stepUp: { readonly challengeId: string; readonly binding: StepUpBinding } | undefined;
  /** The card has spend limits: re-checked under the token lock. */
  readonly spendLimited: boolean;
  /** An issuer deciding in real time, still to be asked. */
  readonly askIssuer: IssuerSettings | undefined;
  readonly decidedBy: Authorization['decidedBy'];
  readonly fundingAccountId: string | undefined;
  /** The issuer approved in real time: the approval is used or reversed. */
  readonly issuerApproved: boolean;
  /** The merchant's coupon applied: amountMinor is what is charged, after its discount. */
  readonly coupon?: AppliedCoupon | undefined;
  /** Across currencies: the rate bound and what is held on the payer's account, in its currency. */
  readonly fx?: DecidedFx | undefined;
  /** An account at a bank that keeps its own books: the bank is asked to reserve (stage 2), then told commit or abort. */
  readonly bank?: BankSide | undefined;
}

/** The FX provider's rate a payment across currencies bound in stage 1 (providers.ts `bind`, mode receive). */
export interface DecidedFx {
  readonly rateId: string;
  readonly providerParticipantId: string;
  readonly rate: bigint;
  readonly expiresAt: Date;
  readonly sourceCurrency: string;
  readonly sourceAmountMinor: bigint;
}

export type Staged = Decided | PErr;
export const isDecided = (s: Staged): s is Decided => 'kind' in s && s.kind === 'decided';

export interface CardPipeline {
  decideMany(inputs: readonly CardPaymentInput[]): Promise<Staged[]>;
  askIssuer(staged: Staged): Promise<Staged>;
  commitMany(tx: Queryable, staged: readonly Staged[]): Promise<Result<Authorization, PErr>[]>;
  /** Reverses issuer approvals left unused past their deadline (a crash, a rollback), at most `max` per call. */
  sweepIssuerAsks(max?: number): Promise<{ reversed: number; used: number }>;
  /**
   * A refund of a payment paid from an account at a connected bank (`reserve`: the bank's reserve of that payment),
   * written `asking` in the caller's transaction, whose lock on the payment's row it relies on: the refund and the
   * bank's ask recorded (the accept it will send kept with it, so that an unused one is aborted), nothing moved yet.
   */
  reserveRefundAtBank(tx: Queryable, input: { readonly actor: Actor; readonly authorization: Authorization; readonly merchant: Merchant; readonly amountMinor: bigint; readonly reserve: ConnectorRequest }): Promise<Result<{ refundId: string }, PErr>>;
  /**
   * Settles such a refund, outside any transaction: the bank asked to accept the credit to its customer's account
   * (bounded by its deadline), then decided in one transaction — the money moved at the hub and the commit staged in
   * the outbox, or nothing moved, the refund `failed` and the abort staged. A refund already decided is read, not asked
   * again (a replayed Idempotency-Key); one this process is settling is awaited.
   */
  settleRefundAtBank(refundId: string): Promise<BankRefund | undefined>;
  /** The hub's decision on a payment a connected bank was asked to reserve (that bank only), as pacs.002 states it. */
  connectorStatus(participantId: string, paymentId: string): Promise<{ TxId: string; TxSts: 'PDNG' | 'ACSC' | 'RJCT'; StsRsnInf?: StatusReason } | undefined>;
}

/** Why a refund credited at the payer's bank failed, as kept on it: the ISO reason, who gave it, and the hub's own refusal. */
interface StoredRefundReason extends StatusReason {
  readonly by: 'bank' | 'hub';
  readonly error?: PErr | undefined;
}

/** A refund credited at the payer's bank: its state and, once failed, why (the bank's ISO reason, or the hub's refusal). */
export interface BankRefund {
  readonly refundId: string;
  readonly authorizationId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly status: 'asking' | 'completed' | 'failed';
  readonly reason: StatusReason | null;
  /** What the API answers for a failed refund: refund_rejected (the bank refused or did not answer), or the ledger's own refusal (liquidity_exceeded…). */
  readonly error: PErr | undefined;
}

/** Bound on payments in one call of any stage. */
export const MAX_CARD_BATCH = 128;
/** How long after an issuer's deadline an unused approval is reversed by the sweep. */
export const ISSUER_ASK_GRACE_MS = 60_000;

interface PipelineDeps {
  readonly db: Db;
  readonly clock: Clock;
  readonly audit: AuditService;
  readonly events: EventOutbox;
  readonly ledger: Ledger;
  readonly accounts: AccountService;
  readonly cards: CardService;
  readonly walletTokens: WalletTokenService;
  readonly risk: RiskService;
  readonly merchants: MerchantService;
  readonly issuers: IssuerGateway;
  readonly paymentRules: PaymentRuleStore;
  readonly stepUp: StepUpService;
  readonly holdTtlMs: number;
  readonly refEurCents: (currency: string, amountMinor: bigint) => Promise<Result<bigint, PErr>>;
  /** Decodes a merchant-presented code into its merchant, its dynamic code (if any) and the amount it asks. */
  readonly resolveQr: (q: Queryable, payload: string) => Promise<Result<{ merchant: Merchant; qr: { id: string; paidAuthorizationId: string | null } | undefined; amountMinor: bigint | null; currency: string }, PErr>>;
  readonly notify: (tx: Queryable, a: Authorization, type: EventType, data?: Record<string, unknown>) => Promise<void>;
  /** Told each committed payment's holders (as payments/refs.ts reads them), so its capture costs no ownership query. */
  readonly refs?: RefLearner;
  /** Records the position legs of payments between participants in the open settlement window. */
  readonly settlement: Pick<SettlementService, 'recordMoves'>;
  /** Coupons and rewards (src/value), set by the composition root. */
  readonly value?: ValueHooks;
  /** A decline of a known card, kept for its issuer's insights. */
  readonly recordDeclines?: (q: Queryable, items: readonly Decline[]) => Promise<void>;
  /** Binds an FX provider's rate for a payment whose source account holds another currency than the merchant's. */
  readonly fxProviders: Pick<FxProviders, 'bind'>;
  /** Banks that keep their own books (connected participants): asked to reserve a debit of their customer's account. */
  readonly banks?: ConnectedBanks;
}

/** What the pipeline needs of the connector (main.ts wires the connectors service and the open-banking consents). */
export interface ConnectedBanks {
  /** The participant's connection in a currency when it keeps its own books; undefined when hosted. */
  connection(participantId: string, currency: string, q?: Queryable): Promise<Connection | undefined>;
  ask(connection: Connection, op: 'reserve' | 'accept', request: ConnectorRequest): Promise<AskOutcome>;
  enqueue(tx: Queryable, messages: readonly OutboxMessage[]): void;
  deliverSoon(): void;
  /** The bank's account id and the customer's name (the reserve's DbtrAcct and the hub's record). */
  debtor(bankParticipantId: string, customerId: string, q: Queryable): Promise<{ externalId: string; name: string } | undefined>;
  /** The open-banking consent a wallet's debit of a linked account relies on (its bank id is the reserve's mandate). */
  mandateFor(q: Queryable, walletParticipantId: string, walletCustomerId: string, accountId: string): Promise<{ consentId: string; bankConsentId: string } | undefined>;
  /** The bank refused a debit under the consent (MD01): the links end at the hub too. */
  endedAtBank(consentId: string, why: string): Promise<void>;
}

/** A margin on top of the bank's deadline for the hub's own work between the reserve and the commit. */
export const BANK_DEADLINE_MARGIN_MS = 1_000;

/** The bank's side of a payment from an account it keeps: who to ask, for which account, under which consent. */
export interface BankSide {
  readonly connection: Connection;
  /** The bank's own id of the account (DbtrAcct) and its holder's name. */
  readonly debtor: { readonly externalId: string; readonly name: string };
  /** The wallet's open-banking consent, when a wallet initiates from a linked account (the reserve's mandate). */
  readonly mandate: { readonly consentId: string; readonly bankConsentId: string } | undefined;
  readonly walletId: string;
  /** The reserve sent in stage 2; commit and abort restate it. */
  readonly request?: ConnectorRequest | undefined;
}

/** A card payment declined for a known card (the issuer's insights count them). */
export interface Decline {
  readonly issuerParticipantId: string;
  readonly cardId: string;
  readonly merchantId: string;
  readonly mcc: string;
  readonly channel: PaymentChannel;
  readonly walletParticipantId: string | null;
  readonly reason: string;
  readonly amountMinor: bigint;
  readonly currency: string;
}

/** A channel's input resolved to what every channel has: a merchant, an amount and how the payer pays. */
interface Resolved {
  readonly i: number;
  readonly actor: Actor;
  readonly channel: PaymentChannel;
  readonly merchant: Merchant;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly source:
    | { readonly kind: 'token'; readonly tokenNumber?: string; readonly tokenRef?: string; readonly wallet?: { id: string; customerId: string }; readonly atc: number; readonly cryptogram: string; readonly unpredictableNumber: string; readonly cryptogramAmountMinor: bigint; readonly cardChannel: Channel; readonly presentedBy: string; readonly terminalExpiry?: string }
    | { readonly kind: 'account'; readonly walletId: string; readonly customerId: string; readonly accountId: string };
  readonly deviceId: string | null;
  readonly deviceCountry: string | undefined;
  readonly stepUpChallengeId: string | undefined;
  readonly qrId: string | null;
  readonly linkId: string | null;
  readonly capture: boolean;
  readonly coupon?: AppliedCoupon | undefined;
  readonly fxProviderId?: string | undefined;
}

interface StatsRow {
  n: bigint;
  today: string;
  month: string;
  token_recent: bigint;
  card_recent: bigint;
  total: bigint;
  device_recent: bigint;
  device_known: boolean;
}

export function createCardPipeline(deps: PipelineDeps): CardPipeline {
  const { db, clock, audit, events, ledger, accounts, cards, walletTokens, risk, merchants, issuers, paymentRules, stepUp } = deps;
  const all = pipeliner(db);

  /** Spend and velocity of each card (and device) since the windows of its issuer's rules, for a set of payments. */
  const cardStats = async (q: Queryable, rows: readonly { cardId: string | null; tokenId: string | null; deviceId: string | null; tokenSince: Date; cardSince: Date; deviceSince: Date }[], now: Date): Promise<Map<number, StatsRow>> => {
    if (rows.length === 0) return new Map();
    const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const stats = await q.query<StatsRow>(
      `select u.n,
              coalesce(sum(coalesce(a.source_amount_minor - a.source_refunded_minor, a.amount_minor - a.refunded_minor)) filter (where a.created_at >= $7 and a.status in ('authorized', 'captured')), 0)::text as today,
              coalesce(sum(coalesce(a.source_amount_minor - a.source_refunded_minor, a.amount_minor - a.refunded_minor)) filter (where a.status in ('authorized', 'captured')), 0)::text as month,
              count(a.id) filter (where a.token_id = u.token_id and a.created_at > u.token_since::timestamptz) as token_recent,
              count(a.id) filter (where a.created_at > u.card_since::timestamptz) as card_recent,
              count(a.id) as total,
              coalesce(max(d.n), 0) as device_recent,
              coalesce(bool_or(k.known), false) as device_known
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) with ordinality as u(card_id, token_id, device, token_since, card_since, device_since, n)
         left join pay_authorizations a on a.card_id = u.card_id and a.created_at >= least($8::timestamptz, u.token_since::timestamptz, u.card_since::timestamptz)
         left join lateral (select count(*) as n from pay_authorizations x where u.device is not null and x.device_id = u.device and x.created_at > u.device_since::timestamptz) d on true
         left join lateral (select true as known from pay_authorizations y where u.device is not null and y.card_id = u.card_id and y.device_id = u.device limit 1) k on true
        group by u.n`,
      [
        rows.map((r) => r.cardId),
        rows.map((r) => r.tokenId),
        rows.map((r) => r.deviceId),
        rows.map((r) => r.tokenSince.toISOString()),
        rows.map((r) => r.cardSince.toISOString()),
        rows.map((r) => r.deviceSince.toISOString()),
        dayStart,
        monthStart,
      ],
    );
    return new Map(stats.map((r) => [Number(r.n) - 1, r]));
  };

  /** (1) Each channel's input resolved to merchant, amount and source; a refusal answers the payment. */
  const resolve = async (inputs: readonly CardPaymentInput[], out: (Staged | undefined)[]): Promise<Resolved[]> => {
    const merchantsById = await merchants.getManyById(
      inputs.flatMap((x) => (x.channel === 'tap' || x.channel === 'cpm' ? [x.merchantId] : [])),
      db,
    );
    const resolved: Resolved[] = [];
    for (const [i, input] of inputs.entries()) {
      const base = { i, actor: input.actor, stepUpChallengeId: undefined as string | undefined, deviceId: null as string | null, deviceCountry: undefined as string | undefined, qrId: null as string | null, linkId: null as string | null };
      if (input.channel === 'tap' || input.channel === 'cpm') {
        const merchant = merchantsById.get(input.merchantId);
        if (merchant === undefined || merchant.ownerParticipantId !== input.owner) {
          out[i] = { code: 'merchant_not_found', message: 'no such merchant' };
          continue;
        }
        if (input.channel === 'tap') {
          const t = input.tap;
          resolved.push({
            ...base,
            channel: 'tap',
            merchant,
            amountMinor: t.amountMinor,
            currency: t.currency,
            source: { kind: 'token', tokenNumber: t.token, atc: t.atc, cryptogram: t.cryptogram, unpredictableNumber: t.unpredictableNumber, cryptogramAmountMinor: t.amountMinor, cardChannel: 'tap', presentedBy: input.owner, terminalExpiry: t.expiry },
            capture: false,
          });
          continue;
        }
        const decoded = decodeCpm(input.payload);
        if (!decoded.ok) {
          out[i] = { code: 'cpm_invalid', message: decoded.error.message, ...(decoded.error.details !== undefined ? { details: decoded.error.details } : {}) };
          continue;
        }
        const cpm = decoded.value;
        if (cpm.amountMinor !== undefined && cpm.amountMinor !== input.amountMinor) {
          out[i] = { code: 'amount_mismatch', message: 'the amount in the code differs from the amount charged' };
          continue;
        }
        resolved.push({
          ...base,
          channel: 'cpm',
          merchant,
          amountMinor: input.amountMinor,
          currency: input.currency,
          source: { kind: 'token', tokenNumber: cpm.token, atc: parseInt(cpm.atc, 16), cryptogram: cpm.cryptogram, unpredictableNumber: cpm.unpredictableNumber, cryptogramAmountMinor: cpm.amountMinor ?? 0n, cardChannel: 'qr', presentedBy: input.owner },
          capture: false,
        });
        continue;
      }
      // Wallet-initiated: a scanned merchant code, or a payment link.
      const pay = input.pay;
      let merchant: Merchant;
      let amountMinor: bigint;
      let channel: PaymentChannel;
      let qrId: string | null = null;
      let linkId: string | null = null;
      if (input.channel === 'qr') {
        const qr = await deps.resolveQr(db, input.payload);
        if (!qr.ok) {
          out[i] = qr.error;
          continue;
        }
        merchant = qr.value.merchant;
        // The payer's amount is checked in the code's currency, not only in its minor units: 1.00 HKD is not 1.00 CNY.
        if (input.amount !== undefined && input.amount.currency !== qr.value.currency) {
          out[i] = { code: 'payment_currency_mismatch', message: `this merchant takes ${qr.value.currency}`, details: { currency: qr.value.currency } };
          continue;
        }
        if (qr.value.qr !== undefined) {
          if (qr.value.qr.paidAuthorizationId !== null) {
            out[i] = { code: 'qr_already_paid', message: 'this dynamic code was already paid' };
            continue;
          }
          if (input.amount !== undefined && input.amount.amountMinor !== qr.value.amountMinor) {
            out[i] = { code: 'amount_mismatch', message: 'the amount differs from the amount in the code' };
            continue;
          }
          amountMinor = qr.value.amountMinor ?? 0n;
          channel = 'mpm_dynamic';
          qrId = qr.value.qr.id;
        } else {
          if (input.amount === undefined) {
            out[i] = { code: 'amount_required', message: 'a static code: send the amount the payer entered' };
            continue;
          }
          amountMinor = input.amount.amountMinor;
          channel = 'mpm_static';
        }
      } else {
        const [link] = await db.query<{ id: string; merchant_id: string; amount_minor: bigint; currency: string; multiple_use: boolean; pay_count: number; expires_at: Date }>(
          'select id, merchant_id, amount_minor, currency, multiple_use, pay_count, expires_at from pay_links where id = $1',
          [input.linkId],
        );
        if (link === undefined) {
          out[i] = { code: 'payment_link_not_found', message: 'no such payment link' };
          continue;
        }
        if (clock.nowMs() >= link.expires_at.getTime()) {
          out[i] = { code: 'payment_link_expired', message: 'the payment link has expired' };
          continue;
        }
        if (!link.multiple_use && link.pay_count > 0) {
          out[i] = { code: 'payment_link_used', message: 'the payment link was already paid' };
          continue;
        }
        const m = await merchants.getById(link.merchant_id, db);
        if (m === undefined) throw new Error('merchant vanished');
        merchant = m;
        amountMinor = BigInt(link.amount_minor);
        channel = 'link';
        linkId = link.id;
      }
      // The merchant's coupon the customer keeps: the named one (it must apply) or the best eligible one.
      let coupon: AppliedCoupon | undefined;
      const offers = deps.value?.offers;
      if (offers !== undefined && (pay.applyCoupon !== false || pay.walletCouponId !== undefined)) {
        const chosen = await offers.choose(db, { participantId: input.walletId, customerId: pay.customerId, merchantId: merchant.id, amountMinor, currency: merchant.currency, walletCouponId: pay.walletCouponId, apply: pay.applyCoupon !== false });
        if (!chosen.ok) {
          out[i] = chosen.error;
          continue;
        }
        coupon = chosen.value;
      }
      const source: Resolved['source'] =
        pay.source.type === 'token'
          ? {
              kind: 'token',
              tokenRef: pay.source.tokenRef,
              wallet: { id: input.walletId, customerId: pay.customerId },
              atc: pay.source.atc,
              cryptogram: pay.source.cryptogram,
              unpredictableNumber: pay.source.unpredictableNumber,
              cryptogramAmountMinor: amountMinor,
              cardChannel: input.channel === 'qr' ? 'qr' : 'online',
              presentedBy: input.walletId,
            }
          : { kind: 'account', walletId: input.walletId, customerId: pay.customerId, accountId: pay.source.accountId };
      resolved.push({
        ...base,
        channel,
        merchant,
        // The cryptogram covers the amount due; the customer is charged it less the coupon's discount.
        amountMinor: coupon === undefined ? amountMinor : amountMinor - coupon.discountMinor,
        currency: merchant.currency,
        source,
        coupon,
        deviceId: pay.deviceId ?? null,
        deviceCountry: pay.deviceCountry,
        stepUpChallengeId: pay.stepUpChallengeId,
        qrId,
        linkId,
        capture: true,
        fxProviderId: pay.fxProviderId,
      });
    }
    return resolved;
  };

  /** The reserve of a debit at the bank (the payment's id is the transfer's), bounded by the bank's deadline. */
  const reserveOf = (d: Decided, b: BankSide): ConnectorRequest => ({
    MsgId: `${d.id}:reserve`,
    CreDtTm: clock.now().toISOString(),
    Op: 'reserve',
    TxId: d.id,
    EndToEndId: d.id,
    IntrBkSttlmAmt: formatMoney(d.amountMinor, d.currency),
    DbtrAgt: { FinInstnId: { Othr: { Id: d.issuerId } } },
    CdtrAgt: { FinInstnId: { Othr: { Id: d.merchant.ownerParticipantId } } },
    DbtrAcct: { Id: { Othr: { Id: b.debtor.externalId } }, Ccy: d.currency },
    Cdtr: { Nm: d.merchant.name },
    ...(b.mandate !== undefined ? { MndtRltdInf: { MndtId: b.mandate.bankConsentId }, InitgPty: { Id: { OrgId: { Othr: { Id: b.walletId } } } } } : {}),
    SttlmDdln: new Date(clock.nowMs() + b.connection.deadlineMs + BANK_DEADLINE_MARGIN_MS).toISOString(),
  });
  /** The commit (no reason) or abort of a reserve, restating it, for the connector outbox. */
  const decisionOf = (paymentId: string, bankId: string, request: ConnectorRequest, reason: StatusReason | undefined, side: 'payer' | 'payee' = 'payer'): OutboxMessage => {
    const op = reason === undefined ? ('commit' as const) : ('abort' as const);
    return { paymentId, participantId: bankId, kind: op, request: { ...request, MsgId: `${paymentId}:${op}:${side}`, Op: op, TxSts: reason === undefined ? 'ACSC' : 'RJCT', ...(reason !== undefined ? { StsRsnInf: reason } : {}) } };
  };
  /** The bank's answer as the API says it: what the customer can act on, the ISO reason in details. */
  const refusalOf = (paymentId: string, reason: StatusReason, hubReason: boolean): PErr => {
    // The payment's id is the TxId the bank knows it by (its final state: GET /v1/connector/transfers/{id}).
    if (hubReason) return { code: 'issuer_unavailable', message: `the bank gave no valid answer before the deadline (${reasonText(reason)}): nothing was debited`, details: { paymentId, status: 'RJCT', reason } };
    // A card payment's own contract for the rest: issuer_declined, as a card issuer's refusal.
    return bankRefusal({ paymentId, reason, side: 'payer', refused: 'the debit', outcome: 'nothing was debited' }, 'issuer_declined');
  };
  /** Stages the abort at the bank in `tx` (delivered after its COMMIT, retried until acknowledged). */
  const abortAtBank = (tx: Queryable, paymentId: string, bankId: string, request: ConnectorRequest, reason: StatusReason) => {
    const banks = deps.banks;
    if (banks === undefined) throw new Error('card pipeline: a bank ask without connected banks');
    banks.enqueue(tx, [decisionOf(paymentId, bankId, request, reason, request.Op === 'accept' ? 'payee' : 'payer')]);
    hooksOf(tx).afterCommit(() => banks.deliverSoon());
  };

  /** What the payer's card or account is charged, in its own currency (across currencies: at the bound rate). */
  const chargedOf = (d: Decided) => (d.fx === undefined ? { amountMinor: d.amountMinor, currency: d.currency } : { amountMinor: d.fx.sourceAmountMinor, currency: d.fx.sourceCurrency });

  const reversal = async (tx: Queryable, d: Decided, reason: string) => {
    const request = d.bank?.request;
    if (request !== undefined) {
      // A bank's reserve the payment does not use: aborted at the bank (its hold released), not a webhook.
      abortAtBank(tx, d.id, d.issuerId, request, { Rsn: reason === 'bank_deadline' ? 'AB05' : 'NARR', AddtlInf: `the hub did not complete the payment (${reason})` });
      await tx.query(`update pay_issuer_asks set status = 'reversed', resolved_at = $2 where authorization_id = $1 and status = 'asking'`, [d.id, clock.now()]);
      await audit.record(tx, { actor: { type: 'system' }, action: 'payment.authorization_reversed', objectType: 'payment', objectId: d.id, details: { issuerParticipantId: d.issuerId, reason, connected: true } });
      return;
    }
    // The issuer approved the amount in its card's currency: the reversal names that amount.
    const charged = chargedOf(d);
    await events.emit(tx, {
      participantId: d.issuerId,
      type: 'payment.authorization_reversed',
      data: { authorizationId: d.id, cardId: d.card?.id ?? null, amount: formatMoney(charged.amountMinor, charged.currency), reason },
    });
    await tx.query(`update pay_issuer_asks set status = 'reversed', resolved_at = $2 where authorization_id = $1 and status = 'asking'`, [d.id, clock.now()]);
    await audit.record(tx, { actor: { type: 'system' }, action: 'payment.authorization_reversed', objectType: 'payment', objectId: d.id, details: { issuerParticipantId: d.issuerId, reason } });
  };

  /**
   * Stage 2 for an account at a bank that keeps its own books: the ask recorded first (with the reserve, so that whatever
   * happens next an unused reserve is aborted), then the signed reserve, outside any transaction, bounded by the bank's
   * deadline. A refusal or no valid answer stages the abort at once (a bank that reserved late releases on it).
   */
  const askBank = async (d: Decided, b: BankSide): Promise<Staged> => {
    const banks = deps.banks;
    if (banks === undefined) throw new Error('card pipeline: a bank ask without connected banks');
    const request = reserveOf(d, b);
    await db.query(
      `insert into pay_issuer_asks (authorization_id, issuer_participant_id, card_id, amount_minor, currency, status, created_at, expires_at, connector_request) values ($1, $2, null, $3, $4, 'asking', $5, $6, $7::text::jsonb)`,
      [d.id, d.issuerId, d.amountMinor, d.currency, clock.now(), new Date(request.SttlmDdln), JSON.stringify(request)],
    );
    const answer = await banks.ask(b.connection, 'reserve', request);
    if (!answer.ok) {
      await db.transaction(async (tx) => {
        const [asked] = await tx.query<{ status: string }>(`update pay_issuer_asks set status = 'declined', resolved_at = $2 where authorization_id = $1 and status = 'asking' returning status`, [d.id, clock.now()]);
        // Told even when it refused (releasing nothing is harmless): a bank that reserved after the deadline releases.
        if (asked !== undefined) abortAtBank(tx, d.id, d.issuerId, request, answer.reason);
        await audit.record(tx, { actor: d.actor, action: 'payment.declined', objectType: 'payment', objectId: d.id, details: { issuerParticipantId: d.issuerId, merchantId: d.merchant.id, reason: answer.reason.Rsn, connected: true } });
      });
      if (!answer.hubReason && answer.reason.Rsn === 'MD01' && b.mandate !== undefined) await banks.endedAtBank(b.mandate.consentId, 'the bank refused a card payment’s debit under it (MD01)');
      return refusalOf(d.id, answer.reason, answer.hubReason);
    }
    const fundingAccountId = await accounts.ensureSystemAccount('funding', d.issuerId, d.currency);
    return { ...d, bank: { ...b, request }, decidedBy: 'issuer', fundingAccountId, issuerApproved: true };
  };

  /**
   * Decides a refund credited at the payer's bank, in `tx`: the payment's row locked first (as a refund's reservation
   * locks it), then the ask and the refund. Accepted before the deadline → the money moves merchant → its owner's
   * position → the bank's position (a payment between participants, recorded in the settlement window), the refund is
   * `completed`, the commit staged in the outbox and `payment.refunded` emitted. Otherwise (refused, no valid answer,
   * late, or the ledger refusing it: the merchant owner's position past its cover) nothing moves: the refund is `failed` with the reason and the
   * abort is staged. A refund already decided (by a replay, or the sweep) is left as it is.
   */
  const decideRefund = async (tx: Queryable, refundId: string, authorizationId: string, answer: AskOutcome, request: ConnectorRequest): Promise<'completed' | 'failed' | 'decided'> => {
    const [row] = await tx.query<AuthRow>('select * from pay_authorizations where id = $1 for update', [authorizationId]);
    const [ask] = await tx.query<{ status: string }>('select status from pay_issuer_asks where authorization_id = $1 for update', [refundId]);
    const [refund] = await tx.query<{ status: string; amount_minor: bigint }>('select status, amount_minor from pay_refunds where id = $1 for update', [refundId]);
    if (row === undefined || ask === undefined || refund === undefined) throw new Error(`refund ${refundId}: its payment, ask or record vanished`);
    if (ask.status !== 'asking' || refund.status !== 'asking') return 'decided';
    const a = toAuth(row);
    const amount = BigInt(refund.amount_minor);
    const now = clock.now();
    let failure: StoredRefundReason | undefined;
    if (!answer.ok) failure = { ...answer.reason, by: answer.hubReason ? 'hub' : 'bank' };
    else if (now.getTime() > Date.parse(request.SttlmDdln)) failure = { Rsn: 'AB05', AddtlInf: 'the answer came after the deadline', by: 'hub' };
    else {
      const merchant = await merchants.getById(a.merchantId, tx);
      if (merchant === undefined) throw new Error('merchant vanished');
      const legs = await refundLegs(accounts, { refundId, amountMinor: amount, currency: a.currency, issuerParticipantId: a.issuerParticipantId, merchantOwnerId: merchant.ownerParticipantId, sourceAccountId: a.sourceAccountId, merchantAccountId: merchant.settlementAccountId, authorizationId: a.id });
      const results = await ledger.applyInTx(tx, legs.legs);
      const bad = results.find((r) => !r.ok && r.error.code !== 'linked_transfer_failed') ?? results.find((r) => !r.ok);
      if (results.length === 0 || (bad !== undefined && !bad.ok)) {
        const error = ledgerCode(bad?.ok === false ? bad.error : undefined);
        failure = { Rsn: 'NARR', AddtlInf: `the hub could not move the refund (${error.code})`, by: 'hub', error };
      } else if (legs.move !== undefined) await deps.settlement.recordMoves(tx, [legs.move]);
    }
    if (failure !== undefined) {
      abortAtBank(tx, refundId, a.issuerParticipantId, request, { Rsn: failure.Rsn, ...(failure.AddtlInf !== undefined ? { AddtlInf: failure.AddtlInf } : {}) });
      await tx.query('update pay_issuer_asks set status = $2, resolved_at = $3 where authorization_id = $1', [refundId, failure.by === 'bank' ? 'declined' : 'reversed', now]);
      await tx.query(`update pay_refunds set status = 'failed', reason = $2::text::jsonb where id = $1`, [refundId, JSON.stringify(failure)]);
      await audit.record(tx, { actor: { type: 'system' }, action: 'payment.refund_failed', objectType: 'payment', objectId: a.id, details: { refundId, amountMinor: amount.toString(), reason: failure.Rsn, connected: true } });
      return 'failed';
    }
    // The bank credits its customer once this COMMIT is durable (the outbox delivers it, retried until acknowledged).
    const banks = deps.banks;
    if (banks === undefined) throw new Error('card pipeline: a bank refund without connected banks');
    banks.enqueue(tx, [decisionOf(refundId, a.issuerParticipantId, request, undefined, 'payee')]);
    hooksOf(tx).afterCommit(() => banks.deliverSoon());
    await all([
      () => tx.query(`update pay_issuer_asks set status = 'used', resolved_at = $2 where authorization_id = $1`, [refundId, now]),
      () => tx.query(`update pay_refunds set status = 'completed' where id = $1`, [refundId]),
      () => tx.query('update pay_authorizations set refunded_minor = refunded_minor + $2, updated_at = $3 where id = $1', [a.id, amount, now]),
    ]);
    await deps.value?.rewards?.refunded(tx, { authorizationId: a.id, refundId, amountMinor: amount, capturedMinor: a.capturedMinor, refundedMinor: a.refundedMinor + amount });
    const after: Authorization = { ...a, refundedMinor: a.refundedMinor + amount, updatedAt: now };
    await audit.record(tx, { actor: { type: 'system' }, action: 'payment.refunded', objectType: 'payment', objectId: a.id, details: { refundId, amountMinor: amount.toString(), connected: true } });
    await deps.notify(tx, after, 'payment.refunded', { refundId, refundAmount: formatMoney(amount, a.currency) });
    return 'completed';
  };

  interface BankRefundRow {
    id: string;
    authorization_id: string;
    amount_minor: bigint;
    status: BankRefund['status'];
    reason: StoredRefundReason | null;
    currency: string;
    issuer_participant_id: string;
    connector_request: ConnectorRequest | null;
  }
  const readBankRefund = async (refundId: string) =>
    (
      await db.query<BankRefundRow>(
        `select r.id, r.authorization_id, r.amount_minor, r.status, r.reason, k.currency, k.issuer_participant_id, k.connector_request
           from pay_refunds r join pay_issuer_asks k on k.authorization_id = r.id where r.id = $1 and k.refund_of is not null`,
        [refundId],
      )
    )[0];
  const toBankRefund = (r: BankRefundRow): BankRefund => {
    const reason = r.reason === null ? null : { Rsn: r.reason.Rsn, ...(r.reason.AddtlInf !== undefined ? { AddtlInf: r.reason.AddtlInf } : {}) };
    const details = { refundId: r.id, paymentId: r.authorization_id, status: 'failed', reason };
    let error: PErr | undefined;
    if (r.status === 'failed' && r.reason !== null) {
      const why = r.reason;
      if (why.error !== undefined) error = { ...why.error, details: { ...details, ...(typeof why.error.details === 'object' && why.error.details !== null ? why.error.details : {}) } };
      else if (why.by === 'bank') error = { code: 'refund_rejected', message: `the customer’s bank refused the credit: ${REASONS[why.Rsn as keyof typeof REASONS] ?? 'refused'} (${why.Rsn}); nothing was refunded`, details };
      else error = { code: 'refund_rejected', message: `the customer’s bank gave no valid answer in time (${why.Rsn}); nothing was refunded`, details };
    }
    return { refundId: r.id, authorizationId: r.authorization_id, amountMinor: BigInt(r.amount_minor), currency: r.currency, status: r.status, reason, error };
  };
  /** Refunds this process is settling: a replay waits for the same ask instead of sending another. */
  const settling = new Map<string, Promise<BankRefund | undefined>>();

  return {
    async reserveRefundAtBank(tx, { actor, authorization: a, merchant, amountMinor, reserve }) {
      const banks = deps.banks;
      const connection = banks === undefined ? undefined : await banks.connection(a.issuerParticipantId, a.currency, tx);
      if (connection === undefined || reserve.DbtrAcct === undefined) {
        return err('refund_rejected', 'the payer’s bank no longer keeps its own books through the hub in this currency: nothing was refunded', { paymentId: a.id, reason: { Rsn: 'AB05', AddtlInf: 'the participant is no longer connected in this currency' } });
      }
      const refundId = newId('rfd');
      const now = clock.now();
      // The credit goes back to the account the payment was debited from; the end-to-end id is the payment's, so that
      // the bank books it against the debit it made (OrgnlTxId, as a pacs.004 return names the original).
      const request: ConnectorRequest = {
        MsgId: `${refundId}:accept`,
        CreDtTm: now.toISOString(),
        Op: 'accept',
        TxId: refundId,
        EndToEndId: a.id,
        OrgnlTxId: a.id,
        IntrBkSttlmAmt: formatMoney(amountMinor, a.currency),
        DbtrAgt: { FinInstnId: { Othr: { Id: merchant.ownerParticipantId } } },
        CdtrAgt: { FinInstnId: { Othr: { Id: a.issuerParticipantId } } },
        CdtrAcct: reserve.DbtrAcct,
        Dbtr: { Nm: merchant.name },
        SttlmDdln: new Date(now.getTime() + connection.deadlineMs + BANK_DEADLINE_MARGIN_MS).toISOString(),
      };
      await all([
        () => tx.query(`insert into pay_refunds (id, authorization_id, amount_minor, transfer_id, created_at, status) values ($1, $2, $3, $1, $4, 'asking')`, [refundId, a.id, amountMinor, now]),
        () =>
          tx.query(
            `insert into pay_issuer_asks (authorization_id, issuer_participant_id, card_id, amount_minor, currency, status, created_at, expires_at, connector_request, refund_of) values ($1, $2, null, $3, $4, 'asking', $5, $6, $7::text::jsonb, $8)`,
            [refundId, a.issuerParticipantId, amountMinor, a.currency, now, new Date(request.SttlmDdln), JSON.stringify(request), a.id],
          ),
      ]);
      await audit.record(tx, { actor, action: 'payment.refund_requested', objectType: 'payment', objectId: a.id, details: { refundId, amountMinor: amountMinor.toString(), bankParticipantId: a.issuerParticipantId } });
      return ok({ refundId });
    },

    settleRefundAtBank(refundId) {
      const running = settling.get(refundId);
      if (running !== undefined) return running;
      const settled = (async () => {
        const r = await readBankRefund(refundId);
        const request = r?.connector_request ?? null;
        if (r === undefined || r.status !== 'asking' || request === null) return r === undefined ? undefined : toBankRefund(r);
        const banks = deps.banks;
        const connection = banks === undefined ? undefined : await banks.connection(r.issuer_participant_id, r.currency);
        const answer: AskOutcome =
          banks === undefined || connection === undefined ? { ok: false, reason: { Rsn: 'AB05', AddtlInf: 'the participant is no longer connected in this currency' }, hubReason: true } : await banks.ask(connection, 'accept', request);
        await db.transaction((tx) => decideRefund(tx, refundId, r.authorization_id, answer, request));
        const decided = await readBankRefund(refundId);
        return decided === undefined ? undefined : toBankRefund(decided);
      })();
      settling.set(refundId, settled);
      const forget = () => {
        if (settling.get(refundId) === settled) settling.delete(refundId);
      };
      settled.then(forget, forget);
      return settled;
    },

    async decideMany(inputs) {
      if (inputs.length > MAX_CARD_BATCH) throw new Error(`decideMany: at most ${MAX_CARD_BATCH} payments at once`);
      const out: (Staged | undefined)[] = inputs.map(() => undefined);
      const now = clock.now();
      const resolved = await resolve(inputs, out);

      // (2) Tokens (checked, not locked) and source accounts.
      const tokenItems = resolved.filter((r) => r.source.kind === 'token');
      const checked = await walletTokens.checkTokenPayments(
        db,
        tokenItems.map((r) => {
          const s = r.source as Extract<Resolved['source'], { kind: 'token' }>;
          return {
            ...(s.tokenNumber !== undefined ? { tokenNumber: s.tokenNumber } : {}),
            ...(s.tokenRef !== undefined ? { tokenRef: s.tokenRef } : {}),
            ...(s.wallet !== undefined ? { requestorParticipantId: s.wallet.id } : {}),
            atc: s.atc,
            cryptogram: s.cryptogram,
            amountMinor: s.cryptogramAmountMinor,
            currency: r.currency,
            country: r.merchant.country,
            date: yymmdd(now),
            type: '00',
            unpredictableNumber: s.unpredictableNumber,
            channel: s.cardChannel,
          };
        }),
      );
      const checkedOf = new Map(tokenItems.map((r, k) => [r.i, checked[k]!]));

      interface Candidate {
        readonly r: Resolved;
        readonly token: Decided['token'];
        readonly card: Card | undefined;
        readonly issuerId: string;
        readonly payerParticipantId: string | null;
        readonly payerCustomerId: string | null;
        readonly fundingAccountId: string | undefined;
        readonly riskInput: RiskInput;
        /** The currency the payer's account holds (the card's for a card). */
        readonly sourceCurrency: string;
        readonly bank?: BankSide | undefined;
      }
      const candidates: Candidate[] = [];
      for (const r of resolved) {
        if (r.currency !== r.merchant.currency) {
          out[r.i] = { code: 'payment_currency_mismatch', message: `this merchant takes ${r.merchant.currency}`, details: { currency: r.merchant.currency } };
          continue;
        }
        const reference = await deps.refEurCents(r.currency, r.amountMinor);
        if (!reference.ok) {
          out[r.i] = reference.error;
          continue;
        }
        const base = {
          channel: `card_${r.channel}`,
          amountMinor: r.amountMinor,
          currency: r.currency,
          refEurCents: reference.value,
          counterparty: { id: r.merchant.id },
          country: r.merchant.country,
          ...(r.deviceId !== null ? { device: r.deviceId } : {}),
        };
        if (r.source.kind === 'token') {
          const v = checkedOf.get(r.i);
          if (v === undefined) throw new Error('token check missing');
          if (!v.ok) {
            out[r.i] = v.error;
            continue;
          }
          if (r.source.wallet !== undefined && v.value.walletCustomerId !== r.source.wallet.customerId) {
            out[r.i] = { code: 'payment_source_invalid', message: "the token is not this customer's" };
            continue;
          }
          if (r.source.terminalExpiry !== undefined && `${v.value.expiry.slice(3, 5)}${v.value.expiry.slice(0, 2)}` !== r.source.terminalExpiry) {
            out[r.i] = { code: 'token_expired', message: 'the expiry read by the terminal does not match the token' };
            continue;
          }
          const card = v.value.card;
          candidates.push({
            r,
            token: { verified: v.value, channel: r.source.cardChannel, presentedBy: r.source.presentedBy },
            card,
            issuerId: card.issuerParticipantId,
            payerParticipantId: v.value.requestorParticipantId,
            payerCustomerId: v.value.walletCustomerId,
            fundingAccountId: card.fundingAccountId ?? undefined,
            riskInput: { ...base, participantId: card.issuerParticipantId, customerId: card.customerId },
            sourceCurrency: card.currency,
          });
        } else {
          const acc = await accounts.debitable(db, r.source.walletId, r.source.customerId, r.source.accountId);
          if (acc === undefined) {
            out[r.i] = { code: 'payment_source_invalid', message: 'no such account for this customer' };
            continue;
          }
          // An account at a bank that keeps its own books: the hub's account is only its address (it holds nothing), so
          // the bank is asked to reserve the debit (stage 2); a wallet other than the bank debits it only under the
          // customer's open-banking consent, which the reserve names.
          const banks = deps.banks;
          const connection = banks === undefined ? undefined : await banks.connection(acc.ownerParticipantId, acc.currency, db);
          let bank: BankSide | undefined;
          if (banks !== undefined && connection !== undefined) {
            const own = acc.ownerParticipantId === r.source.walletId;
            const mandate = own ? undefined : await banks.mandateFor(db, r.source.walletId, r.source.customerId, acc.id);
            const debtor = acc.customerId === null ? undefined : await banks.debtor(acc.ownerParticipantId, acc.customerId, db);
            if ((!own && mandate === undefined) || debtor === undefined) {
              out[r.i] = { code: 'payment_source_invalid', message: 'the bank has not authorized this wallet to debit the account' };
              continue;
            }
            // The bank converts nothing for the hub: its customer pays in the merchant's currency.
            if (acc.currency !== r.currency) {
              out[r.i] = { code: 'payment_currency_mismatch', message: `the account holds ${acc.currency}; an account at a bank that keeps its own books pays in the merchant's currency` };
              continue;
            }
            bank = { connection, debtor, mandate, walletId: r.source.walletId };
          }
          candidates.push({
            bank,
            r,
            token: undefined,
            card: undefined,
            issuerId: acc.ownerParticipantId,
            payerParticipantId: r.source.walletId,
            payerCustomerId: r.source.customerId,
            fundingAccountId: acc.id,
            riskInput: { ...base, participantId: acc.ownerParticipantId, customerId: acc.customerId ?? r.source.customerId },
            sourceCurrency: acc.currency,
          });
        }
      }

      // (3) Everything the controls and the rules read, for every candidate (set-based, pipelined): rules per issuer,
      // spend and velocity per card and device, risk history per customer, issuer settings, step-up proof.
      const issuerIds = [...new Set(candidates.map((c) => c.issuerId))];
      const rulesOf = new Map<string, PaymentRules>(await Promise.all(issuerIds.map(async (id) => [id, await paymentRules.rules(id)] as const)));
      const sharedOf = new Map<string, { rules: RiskRules; windowStart: Date }>(await Promise.all(issuerIds.map(async (id) => [id, await risk.rulesVia(db, id)] as const)));
      // Read above for every issuer of a candidate: a miss is a bug.
      const sharedFor = (issuerId: string) => {
        const shared = sharedOf.get(issuerId);
        if (shared === undefined) throw new Error(`decideMany: no risk rules read for issuer ${issuerId}`);
        return shared;
      };
      const since = (c: Candidate, rule: 'token_velocity' | 'card_velocity' | 'device_velocity') => new Date(now.getTime() - (rulesOf.get(c.issuerId)![rule].windowS ?? 600) * 1000);
      const challengeIds = [...new Set(candidates.map((c) => c.r.stepUpChallengeId).filter((x): x is string => x !== undefined))];
      const [settings, stats, histories, challenges] = await all([
        () => Promise.all(issuerIds.map(async (id) => [id, await issuers.get(id, db)] as const)),
        () =>
          cardStats(
            db,
            candidates.map((c) => ({ cardId: c.card?.id ?? null, tokenId: c.token?.verified.tokenId ?? null, deviceId: c.r.deviceId, tokenSince: since(c, 'token_velocity'), cardSince: since(c, 'card_velocity'), deviceSince: since(c, 'device_velocity') })),
            now,
          ),
        () =>
          candidates.length === 0
            ? Promise.resolve([])
            : db.query<{ n: bigint; recent: bigint | null; hn: bigint | null; avg: string | null; known: boolean | null }>(
                `select u.n, h.recent, h.n as hn, h.avg, h.known
                   from unnest($1::text[], $2::text[], $3::text[], $4::text[]) with ordinality as u(participant_id, customer_id, counterparty, since, n)
                   cross join lateral (${riskHistorySql({ participantId: 'u.participant_id', customerId: 'u.customer_id', counterparty: 'u.counterparty', since: 'u.since::timestamptz' })}) h`,
                [
                  candidates.map((c) => c.riskInput.participantId),
                  candidates.map((c) => c.riskInput.customerId),
                  candidates.map((c) => c.riskInput.counterparty.id),
                  candidates.map((c) => sharedFor(c.issuerId).windowStart.toISOString()),
                ],
              ),
        () =>
          challengeIds.length === 0
            ? Promise.resolve([])
            : db.query<{ id: string; participant_id: string; customer_id: string; binding: string; status: string; expires_at: Date }>(
                'select id, participant_id, customer_id, binding, status, expires_at from step_up_challenges where id = any($1::text[])',
                [challengeIds],
              ),
      ]);
      const settingsOf = new Map(settings);
      const historyOf = new Map(histories.map((h) => [Number(h.n) - 1, h]));
      const challengeOf = new Map(challenges.map((c) => [c.id, c]));

      // (4) Each payment in arrival order: payments of one card, token, device or customer in this batch count against
      // each other's totals and velocity as if they had come one after the other.
      const byCard = new Map<string, { spent: bigint; count: number; tokens: Map<string, number> }>();
      const byDevice = new Map<string, number>();
      const byCustomer = new Map<string, { count: number; counterparties: Set<string> }>();
      const usedChallenges = new Set<string>();
      const alerts: { input: RiskInput; assessment: RiskAssessment; context: Record<string, unknown> }[] = [];
      for (const [k, c] of candidates.entries()) {
        const { r, card } = c;
        const st = stats.get(k);
        // Across currencies (the payer's account holds another currency than the merchant's): an FX provider's rate in
        // force is bound now (the chosen provider's, or the best that prices the amount), as a P2P quote binds one; the
        // merchant gets its amount, the payer's account is held what it costs at that rate. A real-time issuer's card is
        // bound the same way: the issuer is asked for the amount in the card's currency, held on its position there.
        let fx: DecidedFx | undefined;
        if (c.sourceCurrency !== r.currency) {
          const bound = await deps.fxProviders.bind(db, { sendCurrency: c.sourceCurrency, receiveCurrency: r.currency, mode: 'receive', amountMinor: r.amountMinor, providerId: r.fxProviderId });
          if (!bound.ok) {
            const e = bound.error;
            out[r.i] = { code: e.code === 'fx_rate_expired' || e.code === 'fx_tier_not_covered' ? e.code : 'fx_rate_unavailable', message: e.message, ...(e.details !== undefined ? { details: e.details } : {}) };
            continue;
          }
          const b = bound.value;
          fx = { rateId: b.rateId, providerParticipantId: b.providerParticipantId, rate: b.rate, expiresAt: b.expiresAt, sourceCurrency: c.sourceCurrency, sourceAmountMinor: b.sendMinor };
        }
        // What the payer's card is charged, in its own currency: what its controls and spend limits weigh.
        const charged = fx === undefined ? { amountMinor: r.amountMinor, currency: r.currency } : { amountMinor: fx.sourceAmountMinor, currency: fx.sourceCurrency };
        const mine = card === undefined ? undefined : (byCard.get(card.id) ?? { spent: 0n, count: 0, tokens: new Map<string, number>() });
        if (card !== undefined && mine !== undefined) {
          const declined = cards.checkControls(card, {
            amountMinor: charged.amountMinor,
            currency: charged.currency,
            mcc: r.merchant.mcc,
            country: r.merchant.country,
            channel: c.token?.channel ?? 'qr',
            spentTodayMinor: BigInt(st?.today ?? '0') + mine.spent,
            spentMonthMinor: BigInt(st?.month ?? '0') + mine.spent,
            now,
          });
          if (declined !== undefined) {
            out[r.i] = { code: declined, message: `declined by the card's controls: ${declined}` };
            continue;
          }
        }
        const customerKey = `${c.riskInput.participantId}:${c.riskInput.customerId}`;
        const seen = byCustomer.get(customerKey);
        const h = historyOf.get(k);
        const stored = riskHistoryOf(sharedFor(c.issuerId).rules, h === undefined ? undefined : { recent: h.recent, n: h.hn, avg: h.avg, known: h.known });
        const history = seen === undefined ? stored : { ...stored, recent: stored.recent + seen.count, count: stored.count + seen.count, knownCounterparty: stored.knownCounterparty || seen.counterparties.has(r.merchant.id) };
        const shared = risk.decide(c.riskInput, history);
        const cardHistory = Number(st?.total ?? 0n) + (mine?.count ?? 0);
        const own = evaluatePaymentRules(rulesOf.get(c.issuerId)!, {
          amountMinor: r.amountMinor,
          mcc: r.merchant.mcc,
          merchantCountry: r.merchant.country,
          deviceCountry: r.deviceCountry,
          deviceId: r.deviceId ?? undefined,
          tokenRecent: Number(st?.token_recent ?? 0n) + (c.token !== undefined ? (mine?.tokens.get(c.token.verified.tokenId) ?? 0) : 0),
          cardRecent: Number(st?.card_recent ?? 0n) + (mine?.count ?? 0),
          deviceRecent: Number(st?.device_recent ?? 0n) + (r.deviceId !== null ? (byDevice.get(r.deviceId) ?? 0) : 0),
          cardHistory,
          deviceKnown: st?.device_known === true,
        });
        const reasons: RiskReason[] = [...shared.reasons, ...own];
        const decision = reasons.reduce<RiskDecision>((d, x) => (SEVERITY[x.action] > SEVERITY[d] ? x.action : d), 'approve');
        const score = Math.min(100, reasons.reduce((sum, x) => sum + x.score, 0));
        const binding: StepUpBinding | undefined =
          c.payerParticipantId !== null && c.payerCustomerId !== null
            ? { purpose: 'card_payment', participantId: c.payerParticipantId, customerId: c.payerCustomerId, amountMinor: r.amountMinor, currency: r.currency, payee: `merchant:${r.merchant.id}` }
            : undefined;
        let proof: Decided['stepUp'];
        if (decision !== 'approve') {
          const assessment: RiskAssessment = { decision, score, reasons };
          const context = { merchantId: r.merchant.id, paymentChannel: r.channel, cardId: card?.id ?? null, tokenId: c.token?.verified.tokenId ?? null, deviceCountry: r.deviceCountry ?? null };
          // A step-up is cleared only by a challenge the paying customer completed for exactly this payment; a decline
          // stands. Only a wallet paying for its customer can be stepped up (a terminal cannot show a challenge).
          if (decision === 'step_up' && binding !== undefined && r.stepUpChallengeId !== undefined) {
            const ch = challengeOf.get(r.stepUpChallengeId);
            const valid =
              ch !== undefined &&
              !usedChallenges.has(ch.id) &&
              ch.status === 'completed' &&
              ch.expires_at.getTime() > now.getTime() &&
              ch.participant_id === binding.participantId &&
              ch.customer_id === binding.customerId &&
              ch.binding === (await stepUp.bindingHash(binding));
            if (!valid) {
              out[r.i] = { code: 'step_up_invalid', message: 'the step-up challenge is not a completed, unused, unexpired challenge for this payment: pay again without it for a new one' };
              continue;
            }
            usedChallenges.add(ch.id);
            proof = { challengeId: ch.id, binding };
          } else {
            alerts.push({ input: c.riskInput, assessment, context });
            if (decision === 'decline') {
              out[r.i] = { code: 'risk_declined', message: 'the payment was stopped by a risk rule', details: { reasons: reasons.map((x) => x.rule), score } };
              continue;
            }
            const walletInitiated = binding !== undefined && r.source.kind !== 'token' ? true : binding !== undefined && r.source.kind === 'token' && r.source.wallet !== undefined;
            const offer =
              walletInitiated && binding !== undefined
                ? await stepUp.offer(
                    db,
                    binding,
                    { amount: { amount: formatAmount(r.amountMinor, r.currency), currency: r.currency }, payeeName: r.merchant.name },
                    card !== undefined ? { participantId: card.issuerParticipantId, customerId: card.customerId, cardId: card.id } : { participantId: c.issuerId, customerId: c.riskInput.customerId },
                  )
                : undefined;
            out[r.i] = {
              code: 'step_up_required',
              message:
                offer !== undefined
                  ? 'the customer must approve this payment: start a challenge with details.stepUp.request (POST /v1/step-up/challenges), complete it, then pay again with stepUpChallengeId'
                  : 'the cardholder must approve this payment in their wallet',
              details: { reasons: reasons.map((x) => x.rule), score, ...(offer !== undefined ? { stepUp: offer } : {}) },
            };
            continue;
          }
        }
        // The issuer: hosted issuers hold on the card's funding account; real-time issuers are asked (stage 2) and hold
        // on their position. An account source is the account itself.
        const issuerSettings = card !== undefined ? settingsOf.get(c.issuerId) : undefined;
        const realTime = issuerSettings?.mode === 'webhook';
        if (card !== undefined && !realTime && c.fundingAccountId === undefined) {
          out[r.i] = { code: 'no_funding_account', message: 'the card has no funding account at the hub' };
          continue;
        }
        if (card !== undefined && mine !== undefined && c.token !== undefined) {
          mine.spent += charged.amountMinor;
          mine.count += 1;
          mine.tokens.set(c.token.verified.tokenId, (mine.tokens.get(c.token.verified.tokenId) ?? 0) + 1);
          byCard.set(card.id, mine);
        }
        if (r.deviceId !== null) byDevice.set(r.deviceId, (byDevice.get(r.deviceId) ?? 0) + 1);
        const cs = seen ?? { count: 0, counterparties: new Set<string>() };
        cs.count += 1;
        cs.counterparties.add(r.merchant.id);
        byCustomer.set(customerKey, cs);
        out[r.i] = {
          kind: 'decided',
          id: newId('pay'),
          actor: r.actor,
          channel: r.channel,
          merchant: r.merchant,
          amountMinor: r.amountMinor,
          currency: r.currency,
          token: c.token,
          card,
          issuerId: c.issuerId,
          payerParticipantId: c.payerParticipantId,
          payerCustomerId: c.payerCustomerId,
          riskInput: c.riskInput,
          score,
          deviceId: r.deviceId,
          qrId: r.qrId,
          linkId: r.linkId,
          capture: r.capture,
          stepUp: proof,
          spendLimited: card !== undefined && (card.controls.dailyLimitMinor !== undefined || card.controls.monthlyLimitMinor !== undefined),
          askIssuer: realTime ? issuerSettings : undefined,
          decidedBy: card === undefined ? 'account' : 'hosted',
          // A real-time issuer's or a bank's payment is held on its position once it approved (stage 2).
          fundingAccountId: realTime || c.bank !== undefined ? undefined : c.fundingAccountId,
          issuerApproved: false,
          coupon: r.coupon,
          fx,
          bank: c.bank,
        };
      }
      // A refusal by risk writes its alert (the issuer and the operator list and resolve them); a decline of a known
      // card is kept for the issuer's insights. Nothing else is written.
      const declines: Decline[] = [];
      for (const c of candidates) {
        const o = out[c.r.i];
        // An FX refusal (no rate for the pair, expired, no tier) is not the card's: nothing is written for it.
        if (c.card !== undefined && o !== undefined && !isDecided(o) && o.code !== 'step_up_required' && !o.code.startsWith('fx_')) {
          declines.push({ issuerParticipantId: c.card.issuerParticipantId, cardId: c.card.id, merchantId: c.r.merchant.id, mcc: c.r.merchant.mcc, channel: c.r.channel, walletParticipantId: c.payerParticipantId, reason: o.code, amountMinor: c.r.amountMinor, currency: c.r.currency });
        }
      }
      const recordDeclines = deps.recordDeclines;
      if (alerts.length > 0 || (declines.length > 0 && recordDeclines !== undefined)) await db.transaction(async (tx) => {
        for (const a of alerts) await risk.raiseAlert(tx, a.input, a.assessment, a.context);
        if (declines.length > 0) await recordDeclines?.(tx, declines);
      });
      return out.map((o, i) => o ?? { code: 'payment_ledger_rejected', message: `payment ${i} was not decided` });
    },

    async askIssuer(staged) {
      if (isDecided(staged) && staged.bank !== undefined && staged.bank.request === undefined) return askBank(staged, staged.bank);
      if (!isDecided(staged) || staged.askIssuer === undefined || staged.card === undefined) return staged;
      const d = staged;
      const card = staged.card;
      const s = staged.askIssuer;
      // The issuer keeps its card's books in the card's currency: across currencies it is asked (and its stand-in rule
      // weighs, and a reversal names) the amount at the rate bound in stage 1, with the merchant's side to show.
      const charged = chargedOf(d);
      // Recorded before the ask: whatever happens next (a refusal under lock, a rollback, a crash), an approval this
      // payment does not use is reversed to the issuer (commitMany, or sweepIssuerAsks after the deadline).
      await db.query(
        `insert into pay_issuer_asks (authorization_id, issuer_participant_id, card_id, amount_minor, currency, status, created_at, expires_at) values ($1, $2, $3, $4, $5, 'asking', $6, $7)`,
        [d.id, d.issuerId, card.id, charged.amountMinor, charged.currency, clock.now(), new Date(clock.nowMs() + s.deadlineMs + ISSUER_ASK_GRACE_MS)],
      );
      const request: IssuerAuthorizationRequest = {
        authorizationId: d.id,
        cardId: card.id,
        customerId: card.customerId,
        tokenId: d.token?.verified.tokenId ?? null,
        walletParticipantId: d.payerParticipantId,
        amount: formatMoney(charged.amountMinor, charged.currency),
        merchantAmount: formatMoney(d.amountMinor, d.currency),
        fx: d.fx === undefined ? null : { rateId: d.fx.rateId, providerParticipantId: d.fx.providerParticipantId, rate: formatScaled(d.fx.rate, 8) },
        merchant: { id: d.merchant.id, name: d.merchant.name, mcc: d.merchant.mcc, country: d.merchant.country, city: d.merchant.city },
        channel: d.channel,
        riskScore: d.score,
      };
      const answer = await issuers.ask(s, request, charged.amountMinor, db);
      if (!answer.approved) {
        await db.query(`update pay_issuer_asks set status = 'declined', resolved_at = $2 where authorization_id = $1`, [d.id, clock.now()]);
        await deps.recordDeclines?.(db, [declineOf(d, card.id, answer.by === 'issuer' ? 'issuer_declined' : 'issuer_unavailable')]);
        return answer.by === 'issuer'
          ? { code: 'issuer_declined', message: 'the issuer declined the payment', details: { reason: answer.reason } }
          : { code: 'issuer_unavailable', message: 'the issuer did not answer in time and its stand-in rules decline', details: { reason: answer.reason } };
      }
      // An approved payment of a real-time issuer is held on the issuer's position at the hub, in the card's currency.
      const fundingAccountId = await accounts.ensureSystemAccount('funding', d.issuerId, charged.currency);
      return { ...d, askIssuer: undefined, decidedBy: answer.by, fundingAccountId, issuerApproved: true };
    },

    async commitMany(tx, staged) {
      if (staged.length > MAX_CARD_BATCH) throw new Error(`commitMany: at most ${MAX_CARD_BATCH} payments at once`);
      const out: (Result<Authorization, PErr> | undefined)[] = staged.map((s) => (isDecided(s) ? undefined : { ok: false, error: s }));
      const live: { i: number; d: Decided }[] = [];
      staged.forEach((s, i) => {
        if (isDecided(s)) live.push({ i, d: s });
      });
      const now = clock.now();
      // A rate bound in stage 1 that expired since is refused before any lock or money (no counter claimed): pay again.
      // A real-time issuer that approved it meanwhile is told at once (its reversal, with the COMMIT).
      for (const [k, x] of [...live.entries()].reverse()) {
        const fx = x.d.fx;
        if (fx !== undefined && fx.expiresAt.getTime() <= now.getTime()) {
          out[x.i] = { ok: false, error: { code: 'fx_rate_expired', message: `the ${fx.sourceCurrency}/${x.d.currency} rate expired at ${fx.expiresAt.toISOString()}: pay again`, details: { rateId: fx.rateId, expiredAt: fx.expiresAt.toISOString() } } };
          live.splice(k, 1);
          if (x.d.issuerApproved) await reversal(tx, x.d, 'fx_rate_expired');
        }
      }
      if (live.length === 0) return settled(out);
      const refuse = async (x: { i: number; d: Decided }, error: PErr) => {
        out[x.i] = { ok: false, error };
        if (x.d.issuerApproved) await reversal(tx, x.d, error.code === 'issuer_unavailable' && x.d.bank !== undefined ? 'bank_deadline' : error.code);
        // A refusal of the card (its cover, limits, counter, the issuer): not a code or link already used, not a coupon.
        if (x.d.card !== undefined && !/^(coupon_|qr_|payment_link_)/.test(error.code)) await deps.recordDeclines?.(tx, [declineOf(x.d, x.d.card.id, error.code)]);
      };

      // (1) Locks, in one global order before any ledger account: token rows (each counter claimed), dynamic codes,
      // links, then the step-up proofs. Spend limits are re-read under the token locks: two batches cannot both pass them.
      const tokenUses = live.flatMap((x) => (x.d.token === undefined ? [] : [{ x, verified: x.d.token.verified }]));
      const claims = await walletTokens.claimTokenCounters(
        tx,
        tokenUses.map((u) => ({ tokenId: u.verified.tokenId, atc: u.verified.atc })),
      );
      for (const [k, u] of tokenUses.entries()) {
        const refused = claims[k];
        if (refused !== undefined) await refuse(u.x, refused);
      }
      const qrIds = [...new Set(live.flatMap((x) => (out[x.i] === undefined && x.d.qrId !== null ? [x.d.qrId] : [])))].sort();
      const linkIds = [...new Set(live.flatMap((x) => (out[x.i] === undefined && x.d.linkId !== null ? [x.d.linkId] : [])))].sort();
      const [qrRows, linkRows] = await all([
        () => (qrIds.length === 0 ? Promise.resolve([]) : tx.query<{ id: string; paid_authorization_id: string | null }>('select id, paid_authorization_id from pay_qr_codes where id = any($1::text[]) order by id for update', [qrIds])),
        () =>
          linkIds.length === 0
            ? Promise.resolve([])
            : tx.query<{ id: string; multiple_use: boolean; pay_count: number; expires_at: Date }>('select id, multiple_use, pay_count, expires_at from pay_links where id = any($1::text[]) order by id for update', [linkIds]),
      ]);
      const paidQr = new Set(qrRows.filter((q) => q.paid_authorization_id !== null).map((q) => q.id));
      const linkOf = new Map(linkRows.map((l) => [l.id, { ...l, count: l.pay_count }]));
      for (const x of live) {
        if (out[x.i] !== undefined) continue;
        if (x.d.qrId !== null) {
          if (paidQr.has(x.d.qrId)) await refuse(x, { code: 'qr_already_paid', message: 'this dynamic code was already paid' });
          else paidQr.add(x.d.qrId);
        } else if (x.d.linkId !== null) {
          const l = linkOf.get(x.d.linkId);
          if (l === undefined) await refuse(x, { code: 'payment_link_not_found', message: 'no such payment link' });
          else if (now >= l.expires_at) await refuse(x, { code: 'payment_link_expired', message: 'the payment link has expired' });
          else if (!l.multiple_use && l.count > 0) await refuse(x, { code: 'payment_link_used', message: 'the payment link was already paid' });
          else l.count += 1;
        }
      }
      // An issuer's approval is used only while its ask is still open: the sweep may have reversed it (a commit that
      // came after the deadline and its grace). The rows are locked, so that the sweep and this commit decide in turn.
      const approved = live.filter((x) => out[x.i] === undefined && x.d.issuerApproved);
      if (approved.length > 0) {
        const asks = await tx.query<{ authorization_id: string; status: string }>(
          'select authorization_id, status from pay_issuer_asks where authorization_id = any($1::text[]) order by authorization_id for update',
          [approved.map((x) => x.d.id)],
        );
        const open = new Set(asks.filter((a) => a.status === 'asking').map((a) => a.authorization_id));
        for (const x of approved) {
          if (!open.has(x.d.id)) out[x.i] = { ok: false, error: { code: 'issuer_unavailable', message: "the issuer's approval lapsed before the payment completed: pay again" } };
          // A bank's reserve holds until the deadline it was told: past it the bank may release, so the hub aborts.
          else if (x.d.bank?.request !== undefined && now.getTime() > Date.parse(x.d.bank.request.SttlmDdln)) await refuse(x, { code: 'issuer_unavailable', message: 'the payment was not completed before the bank’s deadline: nothing was debited', details: { paymentId: x.d.id, status: 'RJCT', reason: { Rsn: 'AB05' } } });
        }
      }
      const limited = live.flatMap((x) => (out[x.i] === undefined && x.d.spendLimited && x.d.card !== undefined ? [{ x, card: x.d.card }] : []));
      if (limited.length > 0) {
        const spend = await cardStats(
          tx,
          limited.map(({ card }) => ({ cardId: card.id, tokenId: null, deviceId: null, tokenSince: now, cardSince: now, deviceSince: now })),
          now,
        );
        const byCard = new Map<string, bigint>();
        for (const [k, { x, card }] of limited.entries()) {
          const st = spend.get(k);
          const earlier = byCard.get(card.id) ?? 0n;
          const charged = x.d.fx === undefined ? { amountMinor: x.d.amountMinor, currency: x.d.currency } : { amountMinor: x.d.fx.sourceAmountMinor, currency: x.d.fx.sourceCurrency };
          const declined = cards.checkControls(card, {
            amountMinor: charged.amountMinor,
            currency: charged.currency,
            mcc: x.d.merchant.mcc,
            country: x.d.merchant.country,
            channel: x.d.token?.channel ?? 'qr',
            spentTodayMinor: BigInt(st?.today ?? '0') + earlier,
            spentMonthMinor: BigInt(st?.month ?? '0') + earlier,
            now,
          });
          if (declined !== undefined) await refuse(x, { code: declined, message: `declined by the card's controls: ${declined}` });
          else byCard.set(card.id, earlier + charged.amountMinor);
        }
      }
      // The coupons applied, locked and checked again (their expiry, the uses left, counting this batch's own).
      const offers = deps.value?.offers;
      const couponed = live.flatMap((x) => (out[x.i] === undefined && x.d.coupon !== undefined ? [{ x, coupon: x.d.coupon }] : []));
      if (offers !== undefined && couponed.length > 0) {
        const refused = await offers.claim(tx, couponed.map((c) => c.coupon));
        for (const [k, c] of couponed.entries()) {
          const r = refused[k];
          if (r !== undefined) await refuse(c.x, r);
        }
      }
      const proofs = live.flatMap((x) => (out[x.i] === undefined && x.d.stepUp !== undefined ? [{ x, proof: x.d.stepUp }] : []));
      for (const { x, proof } of proofs) {
        const used = await stepUp.consume(tx, proof.challengeId, proof.binding, x.d.id);
        if (!used.ok) await refuse(x, used.error);
      }

      // (2) The money: one ledger call. Each payment its hold; one the payer pushes (QR, link) also its capture and the
      // merchant's fee, linked to the hold (all or nothing). The merchant's settlement row is updated once per batch.
      interface Planned {
        readonly x: { i: number; d: Decided };
        readonly legs: TransferInput[];
        readonly fee: bigint;
        readonly moves: PositionMove[];
        /** Across currencies, captured at once: the FX provider's position that pays the merchant's side. */
        readonly fxOut: string | undefined;
      }
      const planned: Planned[] = [];
      for (const x of live) {
        if (out[x.i] !== undefined) continue;
        const { d } = x;
        if (d.fundingAccountId === undefined) {
          await refuse(x, { code: 'no_funding_account', message: 'no funding account' });
          continue;
        }
        const holdId = `${d.id}_hold`;
        const fee = d.capture ? merchantFee(d.amountMinor, d.merchant.feeBps) : 0n;
        const fx = d.fx;
        // Across currencies the payer's account is held in its own currency, towards the FX provider's position there
        // (released at capture, when the money goes through the provider's positions in both currencies).
        const legs: TransferInput[] = [
          fx === undefined
            ? { id: holdId, kind: 'pending', debitAccountId: d.fundingAccountId, creditAccountId: d.merchant.settlementAccountId, amountMinor: d.amountMinor, currency: d.currency, timeoutMs: deps.holdTtlMs, purpose: 'card_authorization', metadata: { authorizationId: d.id, merchantId: d.merchant.id } }
            : {
                id: holdId,
                kind: 'pending',
                debitAccountId: d.fundingAccountId,
                creditAccountId: await accounts.ensureSystemAccount('funding', fx.providerParticipantId, fx.sourceCurrency),
                amountMinor: fx.sourceAmountMinor,
                currency: fx.sourceCurrency,
                timeoutMs: deps.holdTtlMs,
                purpose: 'card_authorization',
                metadata: { authorizationId: d.id, merchantId: d.merchant.id, fxRateId: fx.rateId },
              },
        ];
        const moves: PositionMove[] = [];
        let fxOut: string | undefined;
        if (d.capture && fx !== undefined) {
          const captured = await fxCaptureLegs(accounts, {
            authorizationId: d.id,
            holdId,
            amountMinor: d.amountMinor,
            currency: d.currency,
            sourceMinor: fx.sourceAmountMinor,
            sourceCurrency: fx.sourceCurrency,
            providerParticipantId: fx.providerParticipantId,
            rateId: fx.rateId,
            issuerParticipantId: d.issuerId,
            merchantOwnerId: d.merchant.ownerParticipantId,
            sourceAccountId: d.fundingAccountId,
            merchantAccountId: d.merchant.settlementAccountId,
          });
          legs.push(...captured.legs);
          moves.push(...captured.moves);
          fxOut = captured.providerPosition;
        } else if (d.capture) {
          const captured = await captureLegs(accounts, {
            authorizationId: d.id,
            holdId,
            amountMinor: d.amountMinor,
            currency: d.currency,
            issuerParticipantId: d.issuerId,
            merchantOwnerId: d.merchant.ownerParticipantId,
            sourceAccountId: d.fundingAccountId,
            merchantAccountId: d.merchant.settlementAccountId,
          });
          legs.push(...captured.legs);
          if (captured.move !== undefined) moves.push(captured.move);
        }
        if (d.capture) {
          if (fee > 0n) {
            const charged = await feeLegs(accounts, { authorizationId: d.id, feeMinor: fee, feeBps: d.merchant.feeBps, currency: d.currency, issuerParticipantId: d.issuerId, merchantOwnerId: d.merchant.ownerParticipantId, merchantAccountId: d.merchant.settlementAccountId });
            legs.push(...charged.legs);
            if (charged.move !== undefined) moves.push(charged.move);
          }
        }
        planned.push({ x, legs: legs.map((l, k) => ({ ...l, linked: k < legs.length - 1 })), fee, moves, fxOut });
      }
      const results = planned.length === 0 ? [] : await ledger.applyInTx(tx, planned.flatMap((p) => p.legs));
      const done: Planned[] = [];
      let at = 0;
      for (const p of planned) {
        const mine = results.slice(at, at + p.legs.length);
        at += p.legs.length;
        const failed = mine.find((r) => !r.ok && r.error.code !== 'linked_transfer_failed') ?? mine.find((r) => !r.ok);
        if (failed !== undefined && !failed.ok) await refuse(p.x, ledgerCode(failed.error, p.fxOut));
        else done.push(p);
      }
      // The committed position legs, in the settlement window open at this COMMIT.
      const moves = done.flatMap((p) => p.moves);
      if (moves.length > 0) await deps.settlement.recordMoves(tx, moves);

      // (3) The records of the payments whose money moved, staged or set-based, with the COMMIT.
      const tokenUsed: Parameters<WalletTokenService['recordTokenUses']>[1][number][] = [];
      const paidQrs: [string, string][] = [];
      const paidLinks: string[] = [];
      const usedAsks: string[] = [];
      for (const { x, fee } of done) {
        const { d } = x;
        const a: Authorization = {
          id: d.id,
          ownerParticipantId: d.merchant.ownerParticipantId,
          merchantId: d.merchant.id,
          channel: d.channel,
          status: d.capture ? 'captured' : 'authorized',
          sourceKind: d.token !== undefined ? 'token' : 'account',
          issuerParticipantId: d.issuerId,
          cardId: d.card?.id ?? null,
          tokenId: d.token?.verified.tokenId ?? null,
          payerParticipantId: d.payerParticipantId,
          payerCustomerId: d.payerCustomerId,
          sourceAccountId: d.fundingAccountId!,
          deviceId: d.deviceId,
          amountMinor: d.amountMinor,
          currency: d.currency,
          capturedMinor: d.capture ? d.amountMinor : 0n,
          refundedMinor: 0n,
          chargedBackMinor: 0n,
          feeMinor: fee,
          authCode: authCode(),
          decidedBy: d.decidedBy,
          holdTransferId: `${d.id}_hold`,
          holdExpiresAt: new Date(now.getTime() + deps.holdTtlMs),
          qrId: d.qrId,
          linkId: d.linkId,
          riskScore: d.score,
          country: d.merchant.country,
          mcc: d.merchant.mcc,
          fx:
            d.fx === undefined
              ? null
              : {
                  rateId: d.fx.rateId,
                  providerParticipantId: d.fx.providerParticipantId,
                  rate: d.fx.rate,
                  sourceCurrency: d.fx.sourceCurrency,
                  sourceAmountMinor: d.fx.sourceAmountMinor,
                  sourceCapturedMinor: d.capture ? d.fx.sourceAmountMinor : 0n,
                  sourceRefundedMinor: 0n,
                },
          createdAt: now,
          updatedAt: now,
        };
        const hooks = hooksOf(tx);
        hooks.stage(authorizationFlusher, a);
        const learner = deps.refs;
        if (learner !== undefined) {
          const holders = [{ participantId: a.ownerParticipantId, customerId: null }, ...(a.payerParticipantId !== null ? [{ participantId: a.payerParticipantId, customerId: a.payerCustomerId }] : [])];
          hooks.afterCommit(() => learner.learn('card_payment', a.id, holders));
        }
        if (d.token !== undefined) tokenUsed.push({ verified: d.token.verified, channel: d.token.channel, actingParticipantId: d.token.presentedBy });
        if (d.qrId !== null) paidQrs.push([d.qrId, d.id]);
        if (d.linkId !== null) paidLinks.push(d.linkId);
        if (d.issuerApproved) usedAsks.push(d.id);
        // The bank commits its hold once this COMMIT is durable (the outbox delivers it, retried until acknowledged).
        if (d.bank?.request !== undefined) {
          deps.banks?.enqueue(tx, [decisionOf(d.id, d.issuerId, d.bank.request, undefined)]);
          const banks = deps.banks;
          if (banks !== undefined) hooks.afterCommit(() => banks.deliverSoon());
        }
        await risk.observe(tx, d.riskInput);
        await audit.record(tx, { actor: d.actor, action: 'payment.authorized', objectType: 'payment', objectId: d.id, details: { merchantId: d.merchant.id, channel: d.channel, amountMinor: d.amountMinor.toString(), currency: d.currency, decidedBy: d.decidedBy, cardId: a.cardId, riskScore: d.score } });
        await deps.notify(tx, { ...a, status: 'authorized', capturedMinor: 0n, fx: a.fx === null ? null : { ...a.fx, sourceCapturedMinor: 0n } }, 'payment.authorized', {
          channel: d.channel,
          decidedBy: d.decidedBy,
          ...(d.coupon === undefined ? {} : { coupon: { couponId: d.coupon.couponId, name: d.coupon.name, amountDue: formatMoney(d.coupon.originalMinor, d.currency), discount: formatMoney(d.coupon.discountMinor, d.currency) } }),
        });
        if (d.capture) {
          await audit.record(tx, { actor: d.actor, action: 'payment.captured', objectType: 'payment', objectId: d.id, details: { amountMinor: d.amountMinor.toString(), feeMinor: fee.toString() } });
          await deps.notify(tx, a, 'payment.captured', { fee: formatMoney(fee, d.currency) });
        }
        out[x.i] = ok(a);
      }
      await walletTokens.recordTokenUses(tx, tokenUsed);
      const used = done.flatMap(({ x }) => (x.d.coupon === undefined ? [] : [{ authorizationId: x.d.id, coupon: x.d.coupon, currency: x.d.currency }]));
      if (offers !== undefined && used.length > 0) await offers.record(tx, used);
      const rewards = deps.value?.rewards;
      const earned = done.flatMap(({ x }) => (x.d.capture && x.d.card !== undefined ? [{ authorizationId: x.d.id, cardId: x.d.card.id, issuerParticipantId: x.d.issuerId, mcc: x.d.merchant.mcc, amountMinor: x.d.amountMinor, currency: x.d.currency }] : []));
      if (rewards !== undefined && earned.length > 0) await rewards.captured(tx, earned);
      await all([
        () =>
          paidQrs.length === 0
            ? Promise.resolve([])
            : tx.query('update pay_qr_codes q set paid_authorization_id = v.auth from unnest($1::text[], $2::text[]) as v(id, auth) where q.id = v.id', [paidQrs.map((p) => p[0]), paidQrs.map((p) => p[1])]),
        () => (paidLinks.length === 0 ? Promise.resolve([]) : tx.query('update pay_links l set pay_count = l.pay_count + v.n from (select id, count(*) as n from unnest($1::text[]) as u(id) group by id) v where l.id = v.id', [paidLinks])),
        () => (usedAsks.length === 0 ? Promise.resolve([]) : tx.query(`update pay_issuer_asks set status = 'used', resolved_at = $2 where authorization_id = any($1::text[])`, [usedAsks, now])),
      ]);
      return settled(out);
    },

    async sweepIssuerAsks(max = 500) {
      const due = await db.query<{ authorization_id: string; issuer_participant_id: string; card_id: string | null; amount_minor: bigint; currency: string; connector_request: ConnectorRequest | null; refund_of: string | null }>(
        `select k.authorization_id, k.issuer_participant_id, k.card_id, k.amount_minor, k.currency, k.connector_request, k.refund_of
           from pay_issuer_asks k where k.status = 'asking' and k.expires_at <= $1 order by k.expires_at limit $2`,
        [clock.now(), Math.min(max, 1000)],
      );
      let reversed = 0;
      let used = 0;
      for (const row of due) {
        const refundOf = row.refund_of;
        if (refundOf !== null && row.connector_request !== null) {
          // A refund's accept left undecided (the hub stopped between the ask and the decision): decided as failed, the
          // abort staged (a refund decided meanwhile is left as it is).
          const request = row.connector_request;
          const outcome = await db.transaction((tx) => decideRefund(tx, row.authorization_id, refundOf, { ok: false, reason: { Rsn: 'AB03', AddtlInf: 'the deadline passed before the refund was completed' }, hubReason: true }, request));
          if (outcome === 'failed') reversed += 1;
          else if (outcome === 'completed') used += 1;
          continue;
        }
        await db.transaction(async (tx) => {
          // Locked: a commit still running for this payment decides first (it marks the ask used, or reverses it).
          const [locked] = await tx.query<{ status: string }>('select status from pay_issuer_asks where authorization_id = $1 for update', [row.authorization_id]);
          if (locked?.status !== 'asking') return;
          const [exists] = await tx.query<{ id: string }>('select id from pay_authorizations where id = $1', [row.authorization_id]);
          if (exists !== undefined) {
            used += 1;
            await tx.query(`update pay_issuer_asks set status = 'used', resolved_at = $2 where authorization_id = $1`, [row.authorization_id, clock.now()]);
            return;
          }
          reversed += 1;
          if (row.connector_request !== null) {
            // A bank's reserve left unused (a crash between the ask and the commit, a rollback): aborted at the bank.
            abortAtBank(tx, row.authorization_id, row.issuer_participant_id, row.connector_request, { Rsn: 'AB03', AddtlInf: 'the deadline passed before the payment was completed' });
            await tx.query(`update pay_issuer_asks set status = 'reversed', resolved_at = $2 where authorization_id = $1`, [row.authorization_id, clock.now()]);
            await audit.record(tx, { actor: { type: 'system' }, action: 'payment.authorization_reversed', objectType: 'payment', objectId: row.authorization_id, details: { issuerParticipantId: row.issuer_participant_id, reason: 'not_completed', connected: true } });
            return;
          }
          await events.emit(tx, {
            participantId: row.issuer_participant_id,
            type: 'payment.authorization_reversed',
            data: { authorizationId: row.authorization_id, cardId: row.card_id, amount: formatMoney(BigInt(row.amount_minor), row.currency), reason: 'not_completed' },
          });
          await tx.query(`update pay_issuer_asks set status = 'reversed', resolved_at = $2 where authorization_id = $1`, [row.authorization_id, clock.now()]);
          await audit.record(tx, { actor: { type: 'system' }, action: 'payment.authorization_reversed', objectType: 'payment', objectId: row.authorization_id, details: { issuerParticipantId: row.issuer_participant_id, reason: 'not_completed' } });
        });
      }
      return { reversed, used };
    },

    async connectorStatus(participantId, paymentId) {
      // A refund's accept is keyed by the refund's id, and keeps why it failed.
      const [k] = await db.query<{ status: string; reason: StoredRefundReason | null }>(
        'select k.status, r.reason from pay_issuer_asks k left join pay_refunds r on r.id = k.authorization_id where k.authorization_id = $1 and k.issuer_participant_id = $2 and k.connector_request is not null',
        [paymentId, participantId],
      );
      if (k === undefined) return undefined;
      if (k.status === 'asking') return { TxId: paymentId, TxSts: 'PDNG' };
      if (k.status === 'used') return { TxId: paymentId, TxSts: 'ACSC' };
      if (k.reason !== null) return { TxId: paymentId, TxSts: 'RJCT', StsRsnInf: { Rsn: k.reason.Rsn, ...(k.reason.AddtlInf !== undefined ? { AddtlInf: k.reason.AddtlInf } : {}) } };
      return { TxId: paymentId, TxSts: 'RJCT', StsRsnInf: { Rsn: k.status === 'declined' ? 'NARR' : 'AB03', AddtlInf: 'the hub did not complete the payment' } };
    },
  };
}

function declineOf(d: Decided, cardId: string, reason: string): Decline {
  return { issuerParticipantId: d.issuerId, cardId, merchantId: d.merchant.id, mcc: d.merchant.mcc, channel: d.channel, walletParticipantId: d.payerParticipantId, reason, amountMinor: d.amountMinor, currency: d.currency };
}

/** Every slot of a batch's answers is filled by the time it returns; an empty one is a bug. */
function settled<T>(out: readonly (T | undefined)[]): T[] {
  return out.map((r, i) => {
    if (r === undefined) throw new Error(`card pipeline: payment ${i} of the batch was left undecided`);
    return r;
  });
}

/** commitMany runs inside a hub transaction, which always has hooks. */
function hooksOf(tx: Queryable): TxHooks {
  if (tx.hooks === undefined) throw new Error('card pipeline: commitMany must run inside a transaction');
  return tx.hooks;
}
