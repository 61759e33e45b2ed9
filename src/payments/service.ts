import type { EventType } from '../webhooks/index.ts';
import type { RefLearner } from '../api/index.ts';
import type { AccountService } from '../accounts/index.ts';
import type { Actor, AuditService } from '../audit/index.ts';
import type { CardService } from '../cards/index.ts';
import { currencyNumeric } from '../cards/index.ts';
import { decodeMpm, describeMpm, encodeMpm, type MpmWarning } from '../emv/index.ts';
import type { FxService } from '../fx/index.ts';
import { toEurCents } from '../fx/index.ts';
import type { Ledger } from '../ledger/index.ts';
import type { TransferInput } from '../ledger/index.ts';
import type { Merchant, MerchantService } from '../merchants/index.ts';
import type { Clock } from '../platform/clock.ts';
import { pipeliner, type Db, type Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { formatAmount, formatMoney } from '../platform/money.ts';
import { err, ok, type Result } from '../platform/result.ts';
import type { RiskService } from '../risk/index.ts';
import type { StepUpService } from '../stepup/index.ts';
import type { WalletTokenService } from '../cards/index.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { PositionMove, SettlementService } from '../settlement/index.ts';
import type { PErr } from './errors.ts';
import type { IssuerGateway } from './issuer.ts';
import { wireCardFx } from './model.ts';
import { captureFlusher, captureLegs, DEFAULT_DYNAMIC_QR_TTL_S, DEFAULT_HOLD_TTL_MS, feeLegs, fxCaptureLegs, fxRefundLegs, fxSourceForCapture, fxSourceForRefund, HUB_GUID, ledgerCode, MAX_SWEEP, MERCHANT_ACCOUNT_TAG, merchantFee, refundLegs, toAuth, type Authorization, type AuthRow } from './model.ts';
import { createCardPipeline, type CardPaymentInput, type CardPipeline, type ConnectedBanks, type Decline } from './pipeline.ts';
import type { ValueHooks } from './offers.ts';
import type { PaymentRuleStore } from './risk-rules.ts';
import type { ConnectorRequest } from '../participant-sdk/index.ts';

export type { Authorization, AuthorizationStatus, PaymentChannel } from './model.ts';
export type { BankRefund, CardPaymentInput, ConnectedBanks, TapInput, WalletPayInput, WalletSource } from './pipeline.ts';

export interface QrCode {
  readonly id: string;
  readonly merchantId: string;
  readonly kind: 'static' | 'dynamic';
  readonly amountMinor: bigint | null;
  readonly currency: string;
  readonly billNumber: string | null;
  readonly reference: string | null;
  readonly payload: string;
  readonly expiresAt: Date | null;
  readonly paidAuthorizationId: string | null;
  readonly createdAt: Date;
}

/** A scanned merchant code the hub can be paid through, and the departures from EMVCo its decoder accepted. */
export interface ResolvedQr {
  readonly merchant: Merchant;
  readonly qr: QrCode | undefined;
  readonly amountMinor: bigint | null;
  readonly currency: string;
  readonly warnings: readonly MpmWarning[];
}

interface QrRow {
  id: string;
  merchant_id: string;
  owner_participant_id: string;
  kind: 'static' | 'dynamic';
  amount_minor: bigint | null;
  currency: string;
  bill_number: string | null;
  reference: string | null;
  payload: string;
  expires_at: Date | null;
  paid_authorization_id: string | null;
  created_at: Date;
}

const toQr = (r: QrRow): QrCode => ({
  id: r.id,
  merchantId: r.merchant_id,
  kind: r.kind,
  amountMinor: r.amount_minor === null ? null : BigInt(r.amount_minor),
  currency: r.currency,
  billNumber: r.bill_number,
  reference: r.reference,
  payload: r.payload,
  expiresAt: r.expires_at,
  paidAuthorizationId: r.paid_authorization_id,
  createdAt: r.created_at,
});

export interface PaymentLink {
  readonly id: string;
  readonly merchantId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly description: string;
  readonly multipleUse: boolean;
  readonly expiresAt: Date;
  readonly payCount: number;
  readonly createdAt: Date;
}

interface LinkRow {
  id: string;
  merchant_id: string;
  owner_participant_id: string;
  amount_minor: bigint;
  currency: string;
  description: string;
  multiple_use: boolean;
  expires_at: Date;
  pay_count: number;
  created_at: Date;
}

const toLink = (r: LinkRow): PaymentLink => ({
  id: r.id,
  merchantId: r.merchant_id,
  amountMinor: BigInt(r.amount_minor),
  currency: r.currency,
  description: r.description,
  multipleUse: r.multiple_use,
  expiresAt: r.expires_at,
  payCount: r.pay_count,
  createdAt: r.created_at,
});

export interface CaptureItem {
  readonly actor: Actor;
  readonly owner: string;
  readonly authorizationId: string;
  readonly amountMinor?: bigint | undefined;
}

/** Bound on taps or captures handled in one transaction (one batch of their batcher). */
export const MAX_PAYMENT_BATCH = 128;
/**
 * Acceptance after and around the card pipeline (pipeline.ts, which every card channel's payment takes): merchant
 * codes and payment links, capture, void, refund, reads, and the sweeps.
 */
export interface PaymentService extends CardPipeline {
  createQr(tx: Queryable, actor: Actor, owner: string, merchantId: string, input: { kind: 'static' | 'dynamic'; amountMinor?: bigint; billNumber?: string; reference?: string; expiresInS?: number }): Promise<Result<QrCode, PErr>>;
  getQr(owner: string, merchantId: string, qrId: string): Promise<QrCode | undefined>;
  /** What a wallet shows before paying: the decoded code, the merchant and the amount due. */
  previewQr(payload: string): Promise<Result<ResolvedQr, PErr>>;
  createLink(tx: Queryable, actor: Actor, owner: string, merchantId: string, input: { amountMinor: bigint; currency: string; description: string; expiresInS: number; multipleUse: boolean }): Promise<Result<PaymentLink, PErr>>;
  getLink(linkId: string): Promise<{ link: PaymentLink; merchant: Merchant } | undefined>;
  /**
   * The pipeline's three stages for a caller without an HTTP request (the demo, the CLI): decided, issuers asked, and
   * committed in one transaction of its own. HTTP requests take the same stages with their Idempotency-Keys (routes).
   */
  pay(inputs: readonly CardPaymentInput[]): Promise<Result<Authorization, PErr>[]>;
  /**
   * Captures up to MAX_PAYMENT_BATCH authorizations in the caller's transaction, one result per item, in order: the
   * rows locked in id order, one ledger call (capture and fee linked), set-based writes. The one capture path.
   */
  captureMany(tx: Queryable, items: readonly CaptureItem[]): Promise<Result<Authorization, PErr>[]>;
  void(tx: Queryable, actor: Actor, owner: string, authorizationId: string): Promise<Result<Authorization, PErr>>;
  /**
   * A refund, in the caller's transaction. Of a payment paid from an account at a bank that keeps its own books it is
   * only written asking (`atBank`, `authorization` as it will be once completed): the caller settles it after its
   * COMMIT with settleRefundAtBank, outside any transaction.
   */
  refund(tx: Queryable, actor: Actor, owner: string, authorizationId: string, amountMinor?: bigint): Promise<Result<{ authorization: Authorization; refundId: string; amountMinor: bigint; atBank: boolean }, PErr>>;
  /**
   * A chargeback of a payment paid at the hub, in the caller's transaction (the disputes capability moves the money in
   * the same one): recorded on the payment so that refunds and later disputes count it. The payment's row is locked:
   * at most what is left after refunds, refunds still asking a bank and earlier chargebacks
   * (`refund_exceeds_captured`, details.refundable, nothing written). Only a captured payment in one currency
   * (`payment_state`, `payment_currency_mismatch`: the chargeback's money would have to convert back through the FX
   * provider). A payment paid at a bank that keeps its own books is charged back through `refund` (its refunded
   * amount), never here.
   */
  chargedBack(tx: Queryable, authorizationId: string, amountMinor: bigint): Promise<Result<Authorization, PErr>>;
  /** A representment: `amountMinor` of what was charged back (chargedBack) is the merchant's again, and refundable. */
  represented(tx: Queryable, authorizationId: string, amountMinor: bigint): Promise<Result<Authorization, PErr>>;
  /**
   * Whether a payment was paid from an account at a bank that keeps its own books (its money comes back only through
   * the bank: refundAtBank), and how much of it refunds still asking the bank take (not in refundedMinor yet).
   */
  bankSide(authorizationId: string, q?: Queryable): Promise<{ atBank: boolean; askingMinor: bigint }>;
  /** Scoped to the merchant's owner, or (viewer 'payer') to the paying wallet. */
  get(viewer: { participantId: string; as: 'merchant' | 'payer' }, authorizationId: string, q?: Queryable): Promise<Authorization | undefined>;
  list(owner: string, options: { merchantId?: string; limit: number }): Promise<Authorization[]>;
  /** Expires uncaptured holds (the ledger voids pendings past their deadline; the authorizations follow) and reverses unused issuer approvals. */
  sweep(): Promise<{ expired: number; reversed: number }>;
  /** Reverses issuer approvals and aborts banks' reserves left unused past their deadline (the hold expiry's sweep does it too, less often). */
  sweepAsks(): Promise<{ reversed: number; used: number }>;
}

export interface PaymentServiceDeps {
  readonly db: Db;
  readonly clock: Clock;
  readonly audit: AuditService;
  readonly events: EventOutbox;
  readonly ledger: Ledger;
  readonly accounts: AccountService;
  readonly cards: CardService;
  readonly walletTokens: WalletTokenService;
  readonly risk: RiskService;
  readonly fx: FxService;
  readonly merchants: MerchantService;
  readonly issuers: IssuerGateway;
  readonly paymentRules: PaymentRuleStore;
  readonly stepUp: StepUpService;
  readonly holdTtlMs?: number;
  readonly refs?: RefLearner;
  /** Records the position legs of card payments between participants in the open settlement window. */
  readonly settlement: Pick<SettlementService, 'recordMoves'>;
  /** Coupons and rewards (src/value), set by the composition root after it creates them. */
  readonly value?: ValueHooks;
  /** Keeps declines of known cards for their issuers' insights. */
  readonly recordDeclines?: (q: Queryable, items: readonly Decline[]) => Promise<void>;
  /** Banks that keep their own books: a payment from an account there is reserved at the bank (pipeline.ts). */
  readonly banks?: ConnectedBanks;
}

export function createPaymentService(deps: PaymentServiceDeps): PaymentService {
  const { db, clock, audit, events, ledger, accounts, fx, merchants } = deps;
  const holdTtlMs = deps.holdTtlMs ?? DEFAULT_HOLD_TTL_MS;

  /** Statements that do not depend on each other: pipelined on one PostgreSQL connection, one by one on PGlite. */
  const all = pipeliner(db);

  const refEurCents = async (currency: string, amountMinor: bigint) => toEurCents(await fx.table(), currency, amountMinor);

  type Notified = Pick<Authorization, 'id' | 'merchantId' | 'status' | 'amountMinor' | 'currency' | 'capturedMinor' | 'refundedMinor' | 'authCode' | 'ownerParticipantId' | 'issuerParticipantId' | 'payerParticipantId' | 'fx'>;
  const notify = async (tx: Queryable, a: Notified, type: EventType, data: Record<string, unknown> = {}) => {
    const payload = {
      authorizationId: a.id,
      merchantId: a.merchantId,
      status: a.status,
      amount: formatMoney(a.amountMinor, a.currency),
      captured: formatMoney(a.capturedMinor, a.currency),
      refunded: formatMoney(a.refundedMinor, a.currency),
      authorizationCode: a.authCode,
      // Across currencies, the payer's side as the answers show it (null: one currency).
      fx: wireCardFx(a.fx),
      ...data,
    };
    const targets = new Set([a.ownerParticipantId, a.issuerParticipantId, ...(a.payerParticipantId !== null ? [a.payerParticipantId] : [])]);
    await all([...targets].map((participantId) => () => events.emit(tx, { participantId, type, data: payload })));
  };

  const lockAuth = async (tx: Queryable, owner: string, id: string) => {
    const [row] = await tx.query<AuthRow>('select * from pay_authorizations where id = $1 and owner_participant_id = $2 for update', [id, owner]);
    return row === undefined ? undefined : toAuth(row);
  };

  const reloadAuth = async (tx: Queryable, id: string) => {
    const [row] = await tx.query<AuthRow>('select * from pay_authorizations where id = $1', [id]);
    if (row === undefined) throw new Error('authorization vanished');
    return toAuth(row);
  };

  const captureMany: PaymentService['captureMany'] = async (tx, items) => {
    if (items.length > MAX_PAYMENT_BATCH) throw new Error(`captureMany: at most ${MAX_PAYMENT_BATCH} captures at once`);
    const out: (Result<Authorization, PErr> | undefined)[] = items.map(() => undefined);
    // Lock every authorization (in id order, before the ledger's accounts), then decide each.
    const rows = await tx.query<AuthRow>('select * from pay_authorizations where id = any($1::text[]) order by id for update', [[...new Set(items.map((i) => i.authorizationId))]]);
    const byId = new Map(rows.map((r) => [r.id, toAuth(r)]));
    const merchantsById = await merchants.getManyById(
      rows.map((r) => r.merchant_id),
      tx,
    );
    const taken = new Set<string>();
    const planned: { i: number; a: Authorization; amount: bigint; fee: bigint; transfers: TransferInput[]; moves: PositionMove[]; sourceMinor: bigint | null; fxOut: string | undefined }[] = [];
    for (const [i, item] of items.entries()) {
      const a = byId.get(item.authorizationId);
      if (a === undefined || a.ownerParticipantId !== item.owner) {
        out[i] = err('payment_not_found', 'no such payment');
        continue;
      }
      if (a.status === 'captured' || taken.has(a.id)) {
        out[i] = err('already_captured', 'the payment was already captured');
        continue;
      }
      if (a.status !== 'authorized') {
        out[i] = err('payment_state', `the payment is ${a.status}`, { status: a.status });
        continue;
      }
      const amount = item.amountMinor ?? a.amountMinor;
      if (amount <= 0n) {
        out[i] = err('capture_exceeds_authorized', 'capture a positive amount');
        continue;
      }
      if (amount > a.amountMinor) {
        out[i] = err('capture_exceeds_authorized', 'cannot capture more than was authorized', { authorized: formatAmount(a.amountMinor, a.currency) });
        continue;
      }
      const merchant = merchantsById.get(a.merchantId);
      if (merchant === undefined) throw new Error('merchant vanished');
      const fee = merchantFee(amount, merchant.feeBps);
      // A capture refused by the issuer's cover may be tried again later: the ledger remembers failed ids, so each
      // attempt's legs have their own.
      const attempt = newId('c').slice(-6);
      const common = { authorizationId: a.id, attempt, holdId: a.holdTransferId, amountMinor: amount, currency: a.currency, issuerParticipantId: a.issuerParticipantId, merchantOwnerId: merchant.ownerParticipantId, sourceAccountId: a.sourceAccountId, merchantAccountId: merchant.settlementAccountId };
      // Across currencies the capture converts at the authorization's bound rate (a partial capture takes its share of
      // the hold, rounded up), through the provider's positions in both currencies.
      const fx = a.fx;
      const sourceMinor = fx === null ? null : fxSourceForCapture({ ...a, fx }, amount);
      const captured =
        fx === null || sourceMinor === null
          ? await captureLegs(accounts, common).then((c) => ({ legs: c.legs, moves: c.move === undefined ? [] : [c.move], providerPosition: undefined }))
          : await fxCaptureLegs(accounts, { ...common, sourceMinor, sourceCurrency: fx.sourceCurrency, providerParticipantId: fx.providerParticipantId, rateId: fx.rateId });
      const legs: TransferInput[] = [...captured.legs];
      const moves = [...captured.moves];
      if (fee > 0n) {
        const charged = await feeLegs(accounts, { authorizationId: a.id, attempt, feeMinor: fee, feeBps: merchant.feeBps, currency: a.currency, issuerParticipantId: a.issuerParticipantId, merchantOwnerId: merchant.ownerParticipantId, merchantAccountId: merchant.settlementAccountId });
        legs.push(...charged.legs);
        if (charged.move !== undefined) moves.push(charged.move);
      }
      const transfers = legs.map((l, k) => ({ ...l, linked: k < legs.length - 1 }));
      taken.add(a.id);
      planned.push({ i, a, amount, fee, transfers, moves, sourceMinor, fxOut: captured.providerPosition });
    }
    if (planned.length === 0) return out.map((r) => r!);
    const results = await ledger.applyInTx(
      tx,
      planned.flatMap((p) => p.transfers),
    );
    const done: typeof planned = [];
    let at = 0;
    for (const p of planned) {
      const mine = results.slice(at, at + p.transfers.length);
      at += p.transfers.length;
      const failed = mine.find((r) => !r.ok && r.error.code !== 'linked_transfer_failed') ?? mine.find((r) => !r.ok);
      if (failed !== undefined && !failed.ok) out[p.i] = { ok: false, error: ledgerCode(failed.error, p.fxOut) };
      else done.push(p);
    }
    if (done.length === 0) return out.map((r) => r!);
    // The committed position legs, in the settlement window open at this COMMIT.
    const moves = done.flatMap((p) => p.moves);
    if (moves.length > 0) await deps.settlement.recordMoves(tx, moves);
    const earned = done.flatMap((p) => (p.a.cardId === null ? [] : [{ authorizationId: p.a.id, cardId: p.a.cardId, issuerParticipantId: p.a.issuerParticipantId, mcc: p.a.mcc, amountMinor: p.amount, currency: p.a.currency }]));
    if (deps.value?.rewards !== undefined && earned.length > 0) await deps.value.rewards.captured(tx, earned);
    const now = clock.now();
    for (const p of done) {
      tx.hooks!.stage(captureFlusher, [p.a.id, p.amount.toString(), p.fee.toString(), now.toISOString(), p.sourceMinor?.toString() ?? null]);
      const fx = p.a.fx === null || p.sourceMinor === null ? p.a.fx : { ...p.a.fx, sourceCapturedMinor: p.sourceMinor };
      const captured: Authorization = { ...p.a, status: 'captured', capturedMinor: p.amount, feeMinor: p.fee, fx, updatedAt: now };
      await audit.record(tx, { actor: items[p.i]!.actor, action: 'payment.captured', objectType: 'payment', objectId: p.a.id, details: { amountMinor: p.amount.toString(), feeMinor: p.fee.toString() } });
      await notify(tx, captured, 'payment.captured', { fee: formatMoney(p.fee, p.a.currency) });
      out[p.i] = ok(captured);
    }
    return out.map((r) => r!);
  };

  const resolveQr = async (q: Queryable, payload: string): Promise<Result<ResolvedQr, PErr>> => {
    const decoded = decodeMpm(payload);
    if (!decoded.ok) return err('qr_invalid', decoded.error.message, decoded.error.details);
    const { warnings } = decoded.value;
    const view = describeMpm(decoded.value);
    const account = view.merchantAccounts.find((m) => m.globallyUniqueId === HUB_GUID);
    const merchantId = account?.fields['01'];
    const merchant = merchantId === undefined ? undefined : await merchants.getById(merchantId, q);
    if (merchant === undefined) return err('qr_unknown_merchant', 'the code does not name a merchant of this hub');
    if (view.mcc !== merchant.mcc || view.country !== merchant.country) return err('qr_invalid', 'the code does not match the merchant on file', { reason: 'merchant_mismatch' });
    const currency = merchant.currency;
    if (view.pointOfInitiation === 'dynamic') {
      // The code's id is in the hub's template (26.02). Codes issued before it moved there carried it in the reference
      // label (62.05); they live at most a day (expiresInS ≤ 86 400), so that fallback can go after the next release.
      const codeId = account?.fields['02'] ?? view.additionalData?.referenceLabel;
      const [row] = codeId === undefined ? [] : await q.query<QrRow>('select * from pay_qr_codes where id = $1 and merchant_id = $2', [codeId, merchant.id]);
      if (row === undefined) return err('qr_not_found', 'the hub did not issue this dynamic code');
      const qr = toQr(row);
      if (qr.expiresAt !== null && clock.now() >= qr.expiresAt) return err('qr_expired', 'the dynamic code has expired', { expiresAt: qr.expiresAt.toISOString() });
      if (qr.amountMinor === null || view.amount !== formatAmount(qr.amountMinor, currency)) return err('amount_mismatch', 'the amount in the code differs from the amount the merchant asked for');
      if (qr.payload !== payload) return err('qr_invalid', 'the code differs from the one the hub issued', { reason: 'payload_mismatch' });
      return ok({ merchant, qr, amountMinor: qr.amountMinor, currency, warnings });
    }
    if (view.amount !== undefined) return err('qr_invalid', 'a static code carries no amount', { reason: 'static_with_amount' });
    return ok({ merchant, qr: undefined, amountMinor: null, currency, warnings });
  };

  const ownMerchant = async (q: Queryable, owner: string, merchantId: string) => merchants.get(owner, merchantId, q);

  const pipeline = createCardPipeline({ ...deps, holdTtlMs, refEurCents, resolveQr, notify, fxProviders: fx.providers });
  /** The bank's reserve of a payment paid from an account it keeps (undefined when hosted), and the sum of its refunds still asking. */
  const bankReserve = async (q: Queryable, authorizationId: string) =>
    (
      await q.query<{ connector_request: ConnectorRequest; asking: string }>(
        `select k.connector_request, (select coalesce(sum(r.amount_minor), 0) from pay_refunds r where r.authorization_id = k.authorization_id and r.status = 'asking')::text as asking
           from pay_issuer_asks k where k.authorization_id = $1 and k.connector_request is not null`,
        [authorizationId],
      )
    )[0];

  /**
   * What is left to refund or charge back of a captured payment: not refunded, not charged back, not taken by refunds
   * still asking a bank (`atBank`: its bankReserve).
   */
  const refundable = (a: Authorization, atBank: { asking: string } | undefined) => a.capturedMinor - a.refundedMinor - a.chargedBackMinor - (atBank === undefined ? 0n : BigInt(atBank.asking));
  const lockById = async (tx: Queryable, id: string) => {
    const [row] = await tx.query<AuthRow>('select * from pay_authorizations where id = $1 for update', [id]);
    return row === undefined ? undefined : toAuth(row);
  };

  return {
    async bankSide(authorizationId, q = db) {
      const r = await bankReserve(q, authorizationId);
      return r === undefined ? { atBank: false, askingMinor: 0n } : { atBank: true, askingMinor: BigInt(r.asking) };
    },
    ...pipeline,
    async pay(inputs) {
      const staged = await Promise.all((await pipeline.decideMany(inputs)).map((s) => pipeline.askIssuer(s)));
      return db.transaction((tx) => pipeline.commitMany(tx, staged));
    },
    captureMany,
    async createQr(tx, actor, owner, merchantId, input) {
      const merchant = await ownMerchant(tx, owner, merchantId);
      if (merchant === undefined) return err('merchant_not_found', 'no such merchant');
      const id = newId('qr');
      const dynamic = input.kind === 'dynamic';
      if (dynamic && input.amountMinor === undefined) return err('amount_required', 'a dynamic code needs an amount');
      if (!dynamic && input.amountMinor !== undefined) return err('merchant_invalid', 'a static code carries no amount; the payer enters it');
      const numeric = currencyNumeric(merchant.currency);
      if (numeric === undefined) return err('merchant_invalid', 'currency has no numeric code');
      const expiresAt = dynamic ? new Date(clock.nowMs() + (input.expiresInS ?? DEFAULT_DYNAMIC_QR_TTL_S) * 1000) : null;
      const encoded = encodeMpm({
        pointOfInitiation: input.kind,
        // A dynamic code names itself in the hub's template, so the reference label (62.05) stays the merchant's.
        merchantAccount: { tag: MERCHANT_ACCOUNT_TAG, globallyUniqueId: HUB_GUID, merchantId: merchant.id, ...(dynamic ? { codeId: id } : {}) },
        mcc: merchant.mcc,
        currencyNumeric: numeric,
        ...(dynamic && input.amountMinor !== undefined ? { amount: formatAmount(input.amountMinor, merchant.currency) } : {}),
        country: merchant.country,
        merchantName: merchant.name,
        merchantCity: merchant.city,
        ...(input.billNumber !== undefined ? { billNumber: input.billNumber } : {}),
        ...(input.reference !== undefined ? { referenceLabel: input.reference } : {}),
        alternateLanguage: { language: 'ZH', merchantName: merchant.nameZh },
      });
      if (!encoded.ok) return err('qr_invalid', encoded.error.message, encoded.error.details);
      const [row] = await tx.query<QrRow>(
        `insert into pay_qr_codes (id, merchant_id, owner_participant_id, kind, amount_minor, currency, bill_number, reference, payload, expires_at, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning *`,
        [id, merchant.id, owner, input.kind, input.amountMinor ?? null, merchant.currency, input.billNumber ?? null, input.reference ?? null, encoded.value, expiresAt, clock.now()],
      );
      if (row === undefined) throw new Error('qr insert returned nothing');
      await audit.record(tx, { actor, action: 'payment.qr_created', objectType: 'qr_code', objectId: id, details: { merchantId: merchant.id, kind: input.kind } });
      return ok(toQr(row));
    },
    async getQr(owner, merchantId, qrId) {
      const [row] = await db.query<QrRow>('select * from pay_qr_codes where id = $1 and merchant_id = $2 and owner_participant_id = $3', [qrId, merchantId, owner]);
      return row === undefined ? undefined : toQr(row);
    },
    previewQr: (payload) => resolveQr(db, payload),
    async createLink(tx, actor, owner, merchantId, input) {
      const merchant = await ownMerchant(tx, owner, merchantId);
      if (merchant === undefined) return err('merchant_not_found', 'no such merchant');
      if (input.currency !== merchant.currency) return err('payment_currency_mismatch', `this merchant takes ${merchant.currency}`);
      const id = newId('plk');
      const [row] = await tx.query<LinkRow>(
        `insert into pay_links (id, merchant_id, owner_participant_id, amount_minor, currency, description, multiple_use, expires_at, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning *`,
        [id, merchant.id, owner, input.amountMinor, input.currency, input.description, input.multipleUse, new Date(clock.nowMs() + input.expiresInS * 1000), clock.now()],
      );
      if (row === undefined) throw new Error('link insert returned nothing');
      await audit.record(tx, { actor, action: 'payment.link_created', objectType: 'payment_link', objectId: id, details: { merchantId: merchant.id, amountMinor: input.amountMinor.toString(), multipleUse: input.multipleUse } });
      return ok(toLink(row));
    },
    async getLink(linkId) {
      const [row] = await db.query<LinkRow>('select * from pay_links where id = $1', [linkId]);
      if (row === undefined) return undefined;
      const merchant = await merchants.getById(row.merchant_id);
      return merchant === undefined ? undefined : { link: toLink(row), merchant };
    },
    async void(tx, actor, owner, authorizationId) {
      const a = await lockAuth(tx, owner, authorizationId);
      if (a === undefined) return err('payment_not_found', 'no such payment');
      if (a.status !== 'authorized') return err('payment_state', `the payment is ${a.status}`, { status: a.status });
      const [r] = await ledger.applyInTx(tx, [{ id: `${a.id}_void`, kind: 'void_pending', pendingId: a.holdTransferId, purpose: 'card_void', metadata: { authorizationId: a.id } }]);
      if (r === undefined || !r.ok) return { ok: false, error: ledgerCode(r?.ok === false ? r.error : undefined) };
      await tx.query(`update pay_authorizations set status = 'voided', updated_at = $2 where id = $1`, [a.id, clock.now()]);
      const after = await reloadAuth(tx, a.id);
      await audit.record(tx, { actor, action: 'payment.voided', objectType: 'payment', objectId: a.id });
      await notify(tx, after, 'payment.voided');
      return ok(after);
    },
    async refund(tx, actor, owner, authorizationId, amountMinor) {
      const a = await lockAuth(tx, owner, authorizationId);
      if (a === undefined) return err('payment_not_found', 'no such payment');
      if (a.status !== 'captured') return err('payment_state', `only a captured payment can be refunded; this one is ${a.status}`, { status: a.status });
      // Paid from an account at a bank that keeps its own books (the bank reserved the debit): the refund credits the
      // customer there, so the bank must accept it first. Refunds still asking and chargebacks count against what is
      // left to refund (the payment's row is locked: two refunds, or a refund and a chargeback, cannot both take the
      // same rest).
      const atBank = await bankReserve(tx, a.id);
      const remaining = refundable(a, atBank);
      const amount = amountMinor ?? remaining;
      if (amount <= 0n || amount > remaining) return err('refund_exceeds_captured', 'refunds cannot exceed what was captured, less what was refunded or charged back', { refundable: formatAmount(remaining > 0n ? remaining : 0n, a.currency) });
      const merchant = await merchants.getById(a.merchantId, tx);
      if (merchant === undefined) throw new Error('merchant vanished');
      if (atBank !== undefined) {
        // Written asking, nothing moved: the route's answer step asks the bank and decides (settleRefundAtBank).
        const reserved = await pipeline.reserveRefundAtBank(tx, { actor, authorization: a, merchant, amountMinor: amount, reserve: atBank.connector_request });
        if (!reserved.ok) return reserved;
        return ok({ authorization: { ...a, refundedMinor: a.refundedMinor + amount }, refundId: reserved.value.refundId, amountMinor: amount, atBank: true });
      }
      const refundId = newId('rfd');
      const common = { refundId, amountMinor: amount, currency: a.currency, issuerParticipantId: a.issuerParticipantId, merchantOwnerId: merchant.ownerParticipantId, sourceAccountId: a.sourceAccountId, merchantAccountId: merchant.settlementAccountId, authorizationId: a.id };
      // Across currencies the refund converts back at the authorization's bound rate (rounded down for the payer; the
      // refund that completes the captured amount returns all that is left of what was taken).
      const fx = a.fx;
      const sourceMinor = fx === null ? null : fxSourceForRefund({ ...a, fx }, amount);
      if (sourceMinor !== null && sourceMinor <= 0n) return err('refund_exceeds_captured', 'this refund is less than one minor unit of the payer’s currency once converted', { refundable: formatAmount(remaining, a.currency) });
      const refund =
        fx === null || sourceMinor === null
          ? await refundLegs(accounts, common).then((r) => ({ legs: r.legs, moves: r.move === undefined ? [] : [r.move], providerPosition: undefined }))
          : await fxRefundLegs(accounts, { ...common, sourceMinor, sourceCurrency: fx.sourceCurrency, providerParticipantId: fx.providerParticipantId, rateId: fx.rateId });
      const results = await ledger.applyInTx(tx, refund.legs);
      const bad = results.find((r) => !r.ok && r.error.code !== 'linked_transfer_failed') ?? results.find((r) => !r.ok);
      if (results.length === 0 || (bad !== undefined && !bad.ok)) return { ok: false, error: ledgerCode(bad?.ok === false ? bad.error : undefined, refund.providerPosition) };
      if (refund.moves.length > 0) await deps.settlement.recordMoves(tx, refund.moves);
      await tx.query('insert into pay_refunds (id, authorization_id, amount_minor, transfer_id, created_at, source_amount_minor) values ($1, $2, $3, $4, $5, $6)', [refundId, a.id, amount, refundId, clock.now(), sourceMinor]);
      await tx.query('update pay_authorizations set refunded_minor = refunded_minor + $2, source_refunded_minor = source_refunded_minor + $4, updated_at = $3 where id = $1', [a.id, amount, clock.now(), sourceMinor]);
      await deps.value?.rewards?.refunded(tx, { authorizationId: a.id, refundId, amountMinor: amount, capturedMinor: a.capturedMinor, refundedMinor: a.refundedMinor + amount });
      const after = await reloadAuth(tx, a.id);
      await audit.record(tx, { actor, action: 'payment.refunded', objectType: 'payment', objectId: a.id, details: { refundId, amountMinor: amount.toString() } });
      await notify(tx, after, 'payment.refunded', { refundId, refundAmount: formatMoney(amount, a.currency) });
      return ok({ authorization: after, refundId, amountMinor: amount, atBank: false });
    },
    async chargedBack(tx, authorizationId, amountMinor) {
      if (amountMinor <= 0n) throw new Error('chargedBack: the amount must be positive');
      const a = await lockById(tx, authorizationId);
      if (a === undefined) return err('payment_not_found', 'no such payment');
      if (a.status !== 'captured') return err('payment_state', `only a captured payment can be charged back; this one is ${a.status}`, { status: a.status });
      if (a.fx !== null) return err('payment_currency_mismatch', 'a payment across currencies cannot be charged back at the hub: its money would convert back through the FX provider', { currency: a.currency, sourceCurrency: a.fx.sourceCurrency });
      const atBank = await bankReserve(tx, a.id);
      if (atBank !== undefined) throw new Error('chargedBack: a payment paid at a bank is charged back through its refund');
      const left = refundable(a, atBank);
      if (amountMinor > left) return err('refund_exceeds_captured', 'a chargeback cannot exceed what is left of the captured amount after refunds and chargebacks', { refundable: formatAmount(left > 0n ? left : 0n, a.currency) });
      await tx.query('update pay_authorizations set charged_back_minor = charged_back_minor + $2, updated_at = $3 where id = $1', [a.id, amountMinor, clock.now()]);
      return ok(await reloadAuth(tx, a.id));
    },
    async represented(tx, authorizationId, amountMinor) {
      if (amountMinor <= 0n) throw new Error('represented: the amount must be positive');
      const a = await lockById(tx, authorizationId);
      if (a === undefined) return err('payment_not_found', 'no such payment');
      // Only what chargedBack recorded comes back: more would make refundable more than was captured.
      if (amountMinor > a.chargedBackMinor) throw new Error(`represented: ${amountMinor} exceeds the ${a.chargedBackMinor} charged back of ${a.id}`);
      await tx.query('update pay_authorizations set charged_back_minor = charged_back_minor - $2, updated_at = $3 where id = $1', [a.id, amountMinor, clock.now()]);
      return ok(await reloadAuth(tx, a.id));
    },
    async get(viewer, authorizationId, q = db) {
      const column = viewer.as === 'merchant' ? 'owner_participant_id' : 'payer_participant_id';
      const [row] = await q.query<AuthRow>(`select * from pay_authorizations where id = $1 and ${column} = $2`, [authorizationId, viewer.participantId]);
      return row === undefined ? undefined : toAuth(row);
    },
    async list(owner, options) {
      const rows = await db.query<AuthRow>(
        `select * from pay_authorizations where owner_participant_id = $1 and ($2::text is null or merchant_id = $2) order by created_at desc, id limit $3`,
        [owner, options.merchantId ?? null, options.limit],
      );
      return rows.map(toAuth);
    },
    sweepAsks: () => pipeline.sweepIssuerAsks(MAX_SWEEP),
    async sweep() {
      await ledger.expirePending({ maxCount: MAX_SWEEP });
      const due = await db.query<{ id: string; hold_transfer_id: string }>(
        `select id, hold_transfer_id from pay_authorizations where status = 'authorized' and hold_expires_at <= $1 order by hold_expires_at limit $2`,
        [clock.now(), MAX_SWEEP],
      );
      let expired = 0;
      for (const d of due) {
        const t = await ledger.getTransfer(d.hold_transfer_id);
        if (!t.ok || t.value.pendingState !== 'expired') continue;
        await db.transaction(async (tx) => {
          const rows = await tx.query<AuthRow>(`update pay_authorizations set status = 'expired', updated_at = $2 where id = $1 and status = 'authorized' returning *`, [d.id, clock.now()]);
          const row = rows[0];
          if (row === undefined) return;
          expired += 1;
          const a = toAuth(row);
          await audit.record(tx, { actor: { type: 'system' }, action: 'payment.hold_expired', objectType: 'payment', objectId: a.id });
          await notify(tx, a, 'payment.expired');
        });
      }
      const asks = await pipeline.sweepIssuerAsks(MAX_SWEEP);
      return { expired, reversed: asks.reversed };
    },
  };
}