import type { StepUpBinding, StepUpService } from '../stepup/service.ts';
import { randomInt } from 'node:crypto';
import { positionLimit, type AccountService } from '../accounts/service.ts';
import type { Actor, AuditService } from '../audit/service.ts';
import type { Card, Channel } from '../cards/model.ts';
import type { CardService } from '../cards/service.ts';
import { decodeCpm, decodeMpm, describeMpm, encodeMpm, type MpmWarning } from '../emv/index.ts';
import type { FxService } from '../fx/service.ts';
import { toEurCents } from '../fx/rates.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { TransferInput } from '../ledger/types.ts';
import type { Merchant, MerchantService } from '../merchants/service.ts';
import type { Clock } from '../platform/clock.ts';
import { pipeliner, type Db, type Flusher, type Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { formatAmount, formatMoney } from '../platform/money.ts';
import { err, ok, type Result } from '../platform/result.ts';
import type { Vault } from '../platform/vault.ts';
import { riskHistoryOf, riskHistorySql, type RiskAssessment, type RiskDecision, type RiskInput, type RiskReason, type RiskService } from '../risk/service.ts';
import type { VerifiedTokenPayment, WalletTokenService } from '../tokens/service.ts';
import type { EventOutbox } from '../webhooks/events.ts';
import type { PErr } from './errors.ts';
import type { IssuerGateway } from './issuer.ts';
import { evaluatePaymentRules, type PaymentRuleStore } from './risk-rules.ts';

/** The hub's globally unique id in merchant account templates (26–51) of the codes it issues. */
export const HUB_GUID = 'CN.HUTONG';
export const MERCHANT_ACCOUNT_TAG = 26;
export const DEFAULT_HOLD_TTL_MS = 7 * 24 * 3600_000;
export const DEFAULT_DYNAMIC_QR_TTL_S = 600;
const MAX_SWEEP = 500;

export type PaymentChannel = 'mpm_static' | 'mpm_dynamic' | 'cpm' | 'tap' | 'link';
export type AuthorizationStatus = 'authorized' | 'captured' | 'voided' | 'expired';

export interface Authorization {
  readonly id: string;
  readonly ownerParticipantId: string;
  readonly merchantId: string;
  readonly channel: PaymentChannel;
  readonly status: AuthorizationStatus;
  readonly sourceKind: 'token' | 'account';
  readonly issuerParticipantId: string;
  readonly cardId: string | null;
  readonly tokenId: string | null;
  readonly payerParticipantId: string | null;
  readonly payerCustomerId: string | null;
  readonly sourceAccountId: string;
  readonly deviceId: string | null;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly capturedMinor: bigint;
  readonly refundedMinor: bigint;
  readonly feeMinor: bigint;
  readonly authCode: string;
  readonly decidedBy: 'hosted' | 'issuer' | 'stand_in' | 'account';
  readonly holdTransferId: string;
  readonly holdExpiresAt: Date | null;
  readonly qrId: string | null;
  readonly linkId: string | null;
  readonly riskScore: number;
  readonly country: string;
  readonly mcc: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

interface AuthRow {
  id: string;
  owner_participant_id: string;
  merchant_id: string;
  channel: PaymentChannel;
  status: AuthorizationStatus;
  source_kind: 'token' | 'account';
  issuer_participant_id: string;
  card_id: string | null;
  token_id: string | null;
  payer_participant_id: string | null;
  payer_customer_id: string | null;
  source_account_id: string;
  device_id: string | null;
  amount_minor: bigint;
  currency: string;
  captured_minor: bigint;
  refunded_minor: bigint;
  fee_minor: bigint;
  auth_code: string;
  decided_by: Authorization['decidedBy'];
  hold_transfer_id: string;
  hold_expires_at: Date | null;
  qr_id: string | null;
  link_id: string | null;
  risk_score: number;
  country: string;
  mcc: string;
  created_at: Date;
  updated_at: Date;
}

const toAuth = (r: AuthRow): Authorization => ({
  id: r.id,
  ownerParticipantId: r.owner_participant_id,
  merchantId: r.merchant_id,
  channel: r.channel,
  status: r.status,
  sourceKind: r.source_kind,
  issuerParticipantId: r.issuer_participant_id,
  cardId: r.card_id,
  tokenId: r.token_id,
  payerParticipantId: r.payer_participant_id,
  payerCustomerId: r.payer_customer_id,
  sourceAccountId: r.source_account_id,
  deviceId: r.device_id,
  amountMinor: BigInt(r.amount_minor),
  currency: r.currency,
  capturedMinor: BigInt(r.captured_minor),
  refundedMinor: BigInt(r.refunded_minor),
  feeMinor: BigInt(r.fee_minor),
  authCode: r.auth_code,
  decidedBy: r.decided_by,
  holdTransferId: r.hold_transfer_id,
  holdExpiresAt: r.hold_expires_at,
  qrId: r.qr_id,
  linkId: r.link_id,
  riskScore: r.risk_score,
  country: r.country,
  mcc: r.mcc,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

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

export interface TapItem {
  readonly actor: Actor;
  readonly owner: string;
  readonly merchantId: string;
  readonly input: TapInput;
}

export interface CaptureItem {
  readonly actor: Actor;
  readonly owner: string;
  readonly authorizationId: string;
  readonly amountMinor?: bigint | undefined;
}

/** Bound on taps or captures handled in one transaction (one batch of their batcher). */
export const MAX_PAYMENT_BATCH = 128;

/** A decline's risk alert: raised after the rollback, in its own transaction, so that it survives the decline. */
export interface Deferred {
  alert?: { input: RiskInput; assessment: RiskAssessment; context: Record<string, unknown> };
}

type Source =
  | { kind: 'token'; channel: Channel; tokenNumber?: string; tokenRef?: string; requestorParticipantId: string; atc: number; cryptogram: string; unpredictableNumber: string; walletCustomerId?: string; cryptogramAmountMinor?: bigint }
  | { kind: 'account'; participantId: string; customerId: string; accountId: string };

interface AuthorizeInput {
  readonly actor: Actor;
  readonly merchant: Merchant;
  readonly channel: PaymentChannel;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly source: Source;
  readonly deviceId?: string | undefined;
  readonly deviceCountry?: string | undefined;
  readonly stepUpChallengeId?: string | undefined;
  readonly qrId?: string;
  readonly linkId?: string;
  /** Tap: the expiry the terminal read, checked against the token's. */
  readonly tokenExpiry?: string;
}

export interface PaymentService {
  createQr(tx: Queryable, actor: Actor, owner: string, merchantId: string, input: { kind: 'static' | 'dynamic'; amountMinor?: bigint; billNumber?: string; reference?: string; expiresInS?: number }): Promise<Result<QrCode, PErr>>;
  getQr(owner: string, merchantId: string, qrId: string): Promise<QrCode | undefined>;
  /** What a wallet shows before paying: the decoded code, the merchant and the amount due. */
  previewQr(payload: string): Promise<Result<ResolvedQr, PErr>>;
  payQr(tx: Queryable, actor: Actor, walletId: string, input: WalletPayInput & { payload: string; amountMinor?: bigint }, deferred: Deferred): Promise<Result<Authorization, PErr>>;
  authorizeCpm(tx: Queryable, actor: Actor, owner: string, merchantId: string, input: { payload: string; amountMinor: bigint; currency: string }, deferred: Deferred): Promise<Result<Authorization, PErr>>;
  authorizeTap(tx: Queryable, actor: Actor, owner: string, merchantId: string, input: TapInput, deferred: Deferred): Promise<Result<Authorization, PErr>>;
  createLink(tx: Queryable, actor: Actor, owner: string, merchantId: string, input: { amountMinor: bigint; currency: string; description: string; expiresInS: number; multipleUse: boolean }): Promise<Result<PaymentLink, PErr>>;
  getLink(linkId: string): Promise<{ link: PaymentLink; merchant: Merchant } | undefined>;
  payLink(tx: Queryable, actor: Actor, walletId: string, linkId: string, input: WalletPayInput, deferred: Deferred): Promise<Result<Authorization, PErr>>;
  capture(tx: Queryable, actor: Actor, owner: string, authorizationId: string, amountMinor?: bigint): Promise<Result<Authorization, PErr>>;
  /**
   * authorizeTap for up to MAX_PAYMENT_BATCH taps in the caller's transaction, one result per tap, in order: every
   * read set-based, every check decided in memory, then one ledger call for every hold (the merchant's settlement
   * row updated once) and set-based writes for the taps that went through. A declined tap writes nothing but its
   * risk alert (when risk declined it). Sent through the taps batcher (routes).
   */
  authorizeTaps(tx: Queryable, items: readonly TapItem[]): Promise<Result<Authorization, PErr>[]>;
  /** capture for up to MAX_PAYMENT_BATCH captures in the caller's transaction, likewise. */
  captureMany(tx: Queryable, items: readonly CaptureItem[]): Promise<Result<Authorization, PErr>[]>;
  void(tx: Queryable, actor: Actor, owner: string, authorizationId: string): Promise<Result<Authorization, PErr>>;
  refund(tx: Queryable, actor: Actor, owner: string, authorizationId: string, amountMinor?: bigint): Promise<Result<{ authorization: Authorization; refundId: string; amountMinor: bigint }, PErr>>;
  /** Scoped to the merchant's owner, or (viewer 'payer') to the paying wallet. */
  get(viewer: { participantId: string; as: 'merchant' | 'payer' }, authorizationId: string, q?: Queryable): Promise<Authorization | undefined>;
  list(owner: string, options: { merchantId?: string; limit: number }): Promise<Authorization[]>;
  /** Expires uncaptured holds: the ledger voids pendings past their deadline; the authorizations follow. */
  sweep(): Promise<{ expired: number }>;
}

export interface PaymentServiceDeps {
  readonly db: Db;
  readonly clock: Clock;
  readonly vault: Vault;
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
}

const SEVERITY: Record<RiskDecision, number> = { approve: 0, step_up: 1, decline: 2 };
const AUTH_CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
const authCode = () => Array.from({ length: 6 }, () => AUTH_CODE_ALPHABET[randomInt(AUTH_CODE_ALPHABET.length)]).join('');

const yymmdd = (d: Date) => d.toISOString().slice(2, 10).replace(/-/g, '');

/** Authorizations of a batch, inserted with the COMMIT (one statement). */
const authorizationFlusher: Flusher<Authorization> = {
  flush: (tx, rows) => {
    const col = <T>(f: (a: Authorization) => T) => rows.map(f);
    return tx.query(
      `insert into pay_authorizations (id, owner_participant_id, merchant_id, channel, status, source_kind, issuer_participant_id, card_id, token_id, payer_participant_id,
                                       payer_customer_id, source_account_id, device_id, amount_minor, currency, auth_code, decided_by, hold_transfer_id, hold_expires_at,
                                       qr_id, link_id, risk_score, country, mcc, created_at, updated_at)
       select id, owner, merchant, channel, status, source_kind, issuer, card, token, payer, payer_customer, source_account, device, amount::int8, currency, code, decided_by, hold,
              hold_expires::timestamptz, qr, link, score, country, mcc, at::timestamptz, at::timestamptz
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                     $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::int4[], $23::text[], $24::text[], $25::text[])
              as v(id, owner, merchant, channel, status, source_kind, issuer, card, token, payer, payer_customer, source_account, device, amount, currency, code, decided_by, hold,
                   hold_expires, qr, link, score, country, mcc, at)`,
      [
        col((a) => a.id),
        col((a) => a.ownerParticipantId),
        col((a) => a.merchantId),
        col((a) => a.channel),
        col((a) => a.status),
        col((a) => a.sourceKind),
        col((a) => a.issuerParticipantId),
        col((a) => a.cardId),
        col((a) => a.tokenId),
        col((a) => a.payerParticipantId),
        col((a) => a.payerCustomerId),
        col((a) => a.sourceAccountId),
        col((a) => a.deviceId),
        col((a) => a.amountMinor.toString()),
        col((a) => a.currency),
        col((a) => a.authCode),
        col((a) => a.decidedBy),
        col((a) => a.holdTransferId),
        col((a) => a.holdExpiresAt?.toISOString() ?? null),
        col((a) => a.qrId),
        col((a) => a.linkId),
        col((a) => a.riskScore),
        col((a) => a.country),
        col((a) => a.mcc),
        col((a) => a.createdAt.toISOString()),
      ],
    );
  },
};

/** Captured authorizations of a batch (id, captured amount, fee, at), updated with the COMMIT; their rows are locked. */
const captureFlusher: Flusher<readonly [string, string, string, string]> = {
  flush: (tx, rows) =>
    tx.query(
      `update pay_authorizations a set status = 'captured', captured_minor = v.amount::int8, fee_minor = v.fee::int8, updated_at = v.at::timestamptz
         from unnest($1::text[], $2::text[], $3::text[], $4::text[]) as v(id, amount, fee, at) where a.id = v.id`,
      [0, 1, 2, 3].map((i) => rows.map((r) => r[i])),
    ),
};

export function createPaymentService(deps: PaymentServiceDeps): PaymentService {
  const { db, clock, vault, audit, events, ledger, accounts, cards, walletTokens, risk, fx, merchants, issuers, paymentRules, stepUp } = deps;
  const holdTtlMs = deps.holdTtlMs ?? DEFAULT_HOLD_TTL_MS;

  /** Statements that do not depend on each other: pipelined on one PostgreSQL connection, one by one on PGlite. */
  const all = pipeliner(db);

  /**
   * A system account (merchant fees, a webhook issuer's funding) inside the caller's transaction. Remembered only once
   * seen committed: an account created by a transaction still open elsewhere is not there for this one yet (and is
   * gone if that one rolls back). A miss takes a transaction advisory lock on the id, which waits for any other
   * transaction creating it to end, then looks again and inserts only if still missing: a duplicate insert would abort
   * the caller's transaction (on PostgreSQL a failed statement fails the transaction even when its error is handled).
   * accounts.ensureSystemAccount is not used here: inside a transaction its insert joins that transaction, yet it
   * remembers the account as existing as soon as the (uncommitted) insert returns — concurrent captures then met
   * `account_not_found` (the authorize benchmark's failures).
   */
  const refEurCents = async (currency: string, amountMinor: bigint): Promise<bigint> => {
    try {
      return toEurCents(await fx.table(), currency, amountMinor);
    } catch {
      return amountMinor;
    }
  };

  type Notified = Pick<Authorization, 'id' | 'merchantId' | 'status' | 'amountMinor' | 'currency' | 'capturedMinor' | 'refundedMinor' | 'authCode' | 'ownerParticipantId' | 'issuerParticipantId' | 'payerParticipantId'>;
  const notify = async (tx: Queryable, a: Notified, type: string, data: Record<string, unknown> = {}) => {
    const payload = {
      authorizationId: a.id,
      merchantId: a.merchantId,
      status: a.status,
      amount: formatMoney(a.amountMinor, a.currency),
      captured: formatMoney(a.capturedMinor, a.currency),
      refunded: formatMoney(a.refundedMinor, a.currency),
      authorizationCode: a.authCode,
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

  const ledgerCode = (error: { code: string; details?: unknown } | undefined): PErr => {
    const code = error?.code ?? 'unknown';
    if (error !== undefined && positionLimit(error)) return { code: 'liquidity_exceeded', message: "the issuer's position at the hub cannot cover the amount (prefunded liquidity and net debit cap)" };
    if (code === 'insufficient_funds' || code === 'exceeds_credit_limit') return { code: 'insufficient_funds', message: 'the funding account cannot cover the amount' };
    if (code === 'pending_expired') return { code: 'payment_state', message: 'the authorization hold has expired', details: { status: 'expired' } };
    if (code === 'pending_already_resolved') return { code: 'payment_state', message: 'the authorization hold was already resolved' };
    return { code: 'payment_ledger_rejected', message: `the ledger refused the transfer: ${code}`, details: { ledgerCode: code } };
  };

  /** The one pipeline behind every channel: de-tokenize, controls, risk, issuer decision, hold, authorization code. */
  const authorize = async (tx: Queryable, input: AuthorizeInput, deferred: Deferred): Promise<Result<Authorization, PErr>> => {
    const { merchant } = input;
    const now = clock.now();
    if (input.currency !== merchant.currency) return err('payment_currency_mismatch', `this merchant takes ${merchant.currency}`, { currency: merchant.currency });
    const id = newId('pay');
    let card: Card | undefined;
    let tokenId: string | null = null;
    let payerParticipantId: string | null = null;
    let payerCustomerId: string | null = null;
    let issuerId: string;
    let riskCustomerId: string;
    let fundingAccountId: string | undefined;

    // (1)–(2) de-tokenize; token status, domain (wallet, channel), cryptogram and counter; then the card's controls.
    if (input.source.kind === 'token') {
      const s = input.source;
      const verified = await walletTokens.verifyTokenPayment(
        {
          ...(s.tokenNumber !== undefined ? { tokenNumber: s.tokenNumber } : {}),
          ...(s.tokenRef !== undefined ? { tokenRef: s.tokenRef } : {}),
          atc: s.atc,
          cryptogram: s.cryptogram,
          amountMinor: s.cryptogramAmountMinor ?? input.amountMinor,
          currency: input.currency,
          country: merchant.country,
          date: yymmdd(now),
          type: '00',
          unpredictableNumber: s.unpredictableNumber,
          channel: s.channel,
          requestorParticipantId: s.requestorParticipantId,
          actingParticipantId: input.actor.type === 'participant' ? input.actor.participantId : s.requestorParticipantId,
        },
        tx,
      );
      if (!verified.ok) return verified;
      if (s.walletCustomerId !== undefined && verified.value.walletCustomerId !== s.walletCustomerId) return err('payment_source_invalid', "the token is not this customer's");
      card = verified.value.card;
      tokenId = verified.value.tokenId;
      payerParticipantId = verified.value.requestorParticipantId;
      payerCustomerId = verified.value.walletCustomerId;
      issuerId = card.issuerParticipantId;
      riskCustomerId = card.customerId;
    } else {
      const s = input.source;
      const acc = await accounts.debitable(tx, s.participantId, s.customerId, s.accountId);
      if (acc === undefined) return err('payment_source_invalid', 'no such account for this customer');
      if (acc.currency !== input.currency) return err('payment_currency_mismatch', `the account holds ${acc.currency}`);
      payerParticipantId = s.participantId;
      payerCustomerId = s.customerId;
      issuerId = acc.ownerParticipantId;
      riskCustomerId = acc.customerId ?? s.customerId;
      fundingAccountId = acc.id;
    }

    let spentToday = 0n;
    let spentMonth = 0n;
    let tokenRecent = 0;
    let cardRecent = 0;
    let cardHistory = 0;
    let deviceKnown = false;
    const rules = await paymentRules.rules(issuerId);
    const riskInput: RiskInput = {
      channel: `card_${input.channel}`,
      participantId: issuerId,
      customerId: riskCustomerId,
      amountMinor: input.amountMinor,
      currency: input.currency,
      refEurCents: await refEurCents(input.currency, input.amountMinor),
      counterparty: { id: merchant.id },
      country: merchant.country,
      ...(input.deviceId !== undefined ? { device: input.deviceId } : {}),
    };

    // The reads below do not depend on each other: one round trip on PostgreSQL. Their checks then run in the order
    // they always did (token expiry, card controls, risk, issuer).
    type Stats = { today: string; month: string; token_recent: bigint; card_recent: bigint; n: bigint; device_known: boolean };
    const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const tokenSince = new Date(now.getTime() - (rules.token_velocity.windowS ?? 600) * 1000);
    const cardSince = new Date(now.getTime() - (rules.card_velocity.windowS ?? 600) * 1000);
    const deviceSince = new Date(now.getTime() - (rules.device_velocity.windowS ?? 600) * 1000);
    const none = async () => undefined;
    const [tokenRow, stats, deviceRow, history, settings] = await all([
      card !== undefined && tokenId !== null && input.tokenExpiry !== undefined
        ? async () => (await tx.query<{ expiry: string }>('select expiry from card_tokens where id = $1', [tokenId]))[0]
        : none,
      card !== undefined
        ? async () =>
            (
              await tx.query<Stats>(
                `select coalesce(sum(amount_minor - refunded_minor) filter (where created_at >= $2 and status in ('authorized', 'captured')), 0)::text as today,
                coalesce(sum(amount_minor - refunded_minor) filter (where created_at >= $3 and status in ('authorized', 'captured')), 0)::text as month,
                count(*) filter (where token_id = $4 and created_at > $5) as token_recent,
                count(*) filter (where created_at > $6) as card_recent,
                count(*) as n,
                coalesce(bool_or(device_id = $7), false) as device_known
           from pay_authorizations where card_id = $1 and created_at >= least($3::timestamptz, $5::timestamptz, $6::timestamptz)`,
                [card.id, dayStart, monthStart, tokenId, tokenSince, cardSince, input.deviceId ?? null],
              )
            )[0]
        : none,
      input.deviceId !== undefined ? async () => (await tx.query<{ n: bigint }>('select count(*) as n from pay_authorizations where device_id = $1 and created_at > $2', [input.deviceId, deviceSince]))[0] : none,
      () => risk.load(tx, riskInput),
      card !== undefined ? () => issuers.get(issuerId, tx) : none,
    ]);
    if (card !== undefined && input.tokenExpiry !== undefined) {
      const expected = tokenRow === undefined ? undefined : `${tokenRow.expiry.slice(3, 5)}${tokenRow.expiry.slice(0, 2)}`;
      if (expected !== input.tokenExpiry) return err('token_expired', 'the expiry read by the terminal does not match the token');
    }
    if (card !== undefined) {
      spentToday = BigInt(stats?.today ?? '0');
      spentMonth = BigInt(stats?.month ?? '0');
      tokenRecent = Number(stats?.token_recent ?? 0n);
      cardRecent = Number(stats?.card_recent ?? 0n);
      cardHistory = Number(stats?.n ?? 0n);
      deviceKnown = stats?.device_known === true;
      if (cardHistory > 0 && !deviceKnown && input.deviceId !== undefined) {
        const [seen] = await tx.query<{ x: number }>('select 1 as x from pay_authorizations where card_id = $1 and device_id = $2 limit 1', [card.id, input.deviceId]);
        deviceKnown = seen !== undefined;
      }
      const channel: Channel = input.source.kind === 'token' ? input.source.channel : 'qr';
      const declined = cards.checkControls(card, { amountMinor: input.amountMinor, currency: input.currency, mcc: merchant.mcc, country: merchant.country, channel, spentTodayMinor: spentToday, spentMonthMinor: spentMonth, now });
      if (declined !== undefined) return err(declined, `declined by the card's controls: ${declined}`);
    }
    const deviceRecent = Number(deviceRow?.n ?? 0n);

    // (3) real-time risk: the shared rules (src/risk) plus the card-payment rules, both data with per-issuer thresholds.
    const shared = risk.decide(riskInput, history);
    const own = evaluatePaymentRules(rules, {
      amountMinor: input.amountMinor,
      mcc: merchant.mcc,
      merchantCountry: merchant.country,
      deviceCountry: input.deviceCountry,
      deviceId: input.deviceId,
      tokenRecent,
      cardRecent,
      deviceRecent,
      cardHistory,
      deviceKnown,
    });
    const reasons: RiskReason[] = [...shared.reasons, ...own];
    const decision = reasons.reduce<RiskDecision>((d, x) => (SEVERITY[x.action] > SEVERITY[d] ? x.action : d), 'approve');
    const score = Math.min(100, reasons.reduce((s, x) => s + x.score, 0));
    if (decision !== 'approve') {
      const assessment: RiskAssessment = { decision, score, reasons };
      const context = { merchantId: merchant.id, paymentChannel: input.channel, cardId: card?.id ?? null, tokenId, deviceCountry: input.deviceCountry ?? null };
      // A step-up is cleared only by a challenge the paying customer completed for exactly this payment (used up here,
      // in this transaction); a decline stands. Only a wallet paying for its customer can be stepped up.
      const binding: StepUpBinding | undefined =
        payerParticipantId !== null && payerCustomerId !== null
          ? { purpose: 'card_payment', participantId: payerParticipantId, customerId: payerCustomerId, amountMinor: input.amountMinor, currency: input.currency, payee: `merchant:${merchant.id}` }
          : undefined;
      if (decision === 'step_up' && binding !== undefined && input.stepUpChallengeId !== undefined) {
        const used = await stepUp.consume(tx, input.stepUpChallengeId, binding, id);
        if (!used.ok) return used;
      } else {
        deferred.alert = { input: riskInput, assessment, context };
        if (decision === 'decline') return err('risk_declined', 'the payment was stopped by a risk rule', { reasons: reasons.map((r) => r.rule), score });
        const walletInitiated = binding !== undefined && input.actor.type !== 'operator' && input.actor.type !== 'system' && input.actor.participantId === binding.participantId;
        const offer =
          walletInitiated && binding !== undefined
            ? await stepUp.offer(
                tx,
                binding,
                { amount: { amount: formatAmount(input.amountMinor, input.currency), currency: input.currency }, payeeName: merchant.name },
                card !== undefined ? { participantId: card.issuerParticipantId, customerId: card.customerId, cardId: card.id } : { participantId: issuerId, customerId: riskCustomerId },
              )
            : undefined;
        return err(
          'step_up_required',
          offer !== undefined
            ? 'the customer must approve this payment: start a challenge with details.stepUp.request (POST /v1/step-up/challenges), complete it, then pay again with stepUpChallengeId'
            : 'the cardholder must approve this payment in their wallet',
          { reasons: reasons.map((r) => r.rule), score, ...(offer !== undefined ? { stepUp: offer } : {}) },
        );
      }
    }

    // (4) the issuer's decision.
    let decidedBy: Authorization['decidedBy'] = 'account';
    if (card !== undefined && settings !== undefined) {
      if (settings.mode === 'webhook') {
        const answer = await issuers.ask(
          settings,
          {
            authorizationId: id,
            cardId: card.id,
            customerId: card.customerId,
            tokenId,
            walletParticipantId: payerParticipantId,
            amount: { amount: formatAmount(input.amountMinor, input.currency), currency: input.currency },
            merchant: { id: merchant.id, name: merchant.name, mcc: merchant.mcc, country: merchant.country, city: merchant.city },
            channel: input.channel,
            riskScore: score,
          },
          input.amountMinor,
          tx,
        );
        decidedBy = answer.by;
        if (!answer.approved) {
          return answer.by === 'issuer'
            ? err('issuer_declined', 'the issuer declined the payment', { reason: answer.reason })
            : err('issuer_unavailable', 'the issuer did not answer in time and its stand-in rules decline', { reason: answer.reason });
        }
        fundingAccountId = await accounts.ensureSystemAccount('funding', issuerId, input.currency);
      } else {
        decidedBy = 'hosted';
        fundingAccountId = card.fundingAccountId ?? undefined;
        if (fundingAccountId === undefined) return err('no_funding_account', 'the card has no funding account at the hub');
      }
    }
    if (fundingAccountId === undefined) return err('no_funding_account', 'no funding account');

    // (5) the authorization, its audit record and events (one round trip), then the hold. The hold comes last because it
    // locks the funding and the merchant's settlement account rows, which every payment to this merchant needs, until
    // commit. A refused hold returns an error, and the error rolls back everything written before it.
    const holdId = `${id}_hold`;
    const holdExpiresAt = new Date(now.getTime() + holdTtlMs);
    const code = authCode();
    const notified: Notified = {
      id,
      merchantId: merchant.id,
      status: 'authorized',
      amountMinor: input.amountMinor,
      currency: input.currency,
      capturedMinor: 0n,
      refundedMinor: 0n,
      authCode: code,
      ownerParticipantId: merchant.ownerParticipantId,
      issuerParticipantId: issuerId,
      payerParticipantId,
    };
    const [rows] = await all([
      () =>
        tx.query<AuthRow>(
          `insert into pay_authorizations (id, owner_participant_id, merchant_id, channel, status, source_kind, issuer_participant_id, card_id, token_id, payer_participant_id,
                                       payer_customer_id, source_account_id, device_id, amount_minor, currency, auth_code, decided_by, hold_transfer_id, hold_expires_at,
                                       qr_id, link_id, risk_score, country, mcc, created_at, updated_at)
       values ($1, $2, $3, $4, 'authorized', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $24) returning *`,
          [
            id,
            merchant.ownerParticipantId,
            merchant.id,
            input.channel,
            input.source.kind,
            issuerId,
            card?.id ?? null,
            tokenId,
            payerParticipantId,
            payerCustomerId,
            fundingAccountId,
            input.deviceId ?? null,
            input.amountMinor,
            input.currency,
            code,
            decidedBy,
            holdId,
            holdExpiresAt,
            input.qrId ?? null,
            input.linkId ?? null,
            score,
            merchant.country,
            merchant.mcc,
            now,
          ],
        ),
      () => risk.observe(tx, riskInput),
      () => audit.record(tx, { actor: input.actor, action: 'payment.authorized', objectType: 'payment', objectId: id, details: { merchantId: merchant.id, channel: input.channel, amountMinor: input.amountMinor.toString(), currency: input.currency, decidedBy, cardId: card?.id ?? null, riskScore: score } }),
      () => notify(tx, notified, 'payment.authorized', { channel: input.channel, decidedBy }),
    ]);
    const row = rows[0];
    if (row === undefined) throw new Error('authorization insert returned nothing');
    const [held] = await ledger.applyInTx(tx, [
      {
        id: holdId,
        kind: 'pending',
        debitAccountId: fundingAccountId,
        creditAccountId: merchant.settlementAccountId,
        amountMinor: input.amountMinor,
        currency: input.currency,
        timeoutMs: holdTtlMs,
        purpose: 'card_authorization',
        metadata: { authorizationId: id, merchantId: merchant.id },
      },
    ]);
    if (held === undefined || !held.ok) return { ok: false, error: ledgerCode(held?.ok === false ? held.error : undefined) };
    return ok(toAuth(row));
  };

  const capture: PaymentService['capture'] = async (tx, actor, owner, authorizationId, amountMinor) => {
    const a = await lockAuth(tx, owner, authorizationId);
    if (a === undefined) return err('payment_not_found', 'no such payment');
    if (a.status === 'captured') return err('already_captured', 'the payment was already captured');
    if (a.status !== 'authorized') return err('payment_state', `the payment is ${a.status}`, { status: a.status });
    const amount = amountMinor ?? a.amountMinor;
    if (amount <= 0n) return err('capture_exceeds_authorized', 'capture a positive amount');
    if (amount > a.amountMinor) return err('capture_exceeds_authorized', 'cannot capture more than was authorized', { authorized: formatAmount(a.amountMinor, a.currency) });
    const merchant = await merchants.getById(a.merchantId, tx);
    if (merchant === undefined) throw new Error('merchant vanished');
    const fee = merchant.feeBps > 0 ? (amount * BigInt(merchant.feeBps) + 9_999n) / 10_000n : 0n;
    const transfers: TransferInput[] = [{ id: `${a.id}_capture`, kind: 'post_pending', pendingId: a.holdTransferId, amountMinor: amount, purpose: 'card_capture', metadata: { authorizationId: a.id }, ...(fee > 0n ? { linked: true } : {}) }];
    if (fee > 0n) {
      const feeAccount = await accounts.ensureSystemAccount('fees', a.issuerParticipantId, a.currency);
      transfers.push({ id: `${a.id}_fee`, debitAccountId: merchant.settlementAccountId, creditAccountId: feeAccount, amountMinor: fee, currency: a.currency, purpose: 'merchant_fee', metadata: { authorizationId: a.id, feeBps: merchant.feeBps } });
    }
    // The payment's own writes first (one round trip), the ledger last: it locks the merchant's settlement account row,
    // shared by every payment to this merchant, until commit. A ledger error rolls back the writes before it.
    const [rows] = await all([
      () => tx.query<AuthRow>(`update pay_authorizations set status = 'captured', captured_minor = $2, fee_minor = $3, updated_at = $4 where id = $1 returning *`, [a.id, amount, fee, clock.now()]),
      () => audit.record(tx, { actor, action: 'payment.captured', objectType: 'payment', objectId: a.id, details: { amountMinor: amount.toString(), feeMinor: fee.toString() } }),
      () => notify(tx, { ...a, status: 'captured', capturedMinor: amount }, 'payment.captured', { fee: formatMoney(fee, a.currency) }),
    ]);
    const row = rows[0];
    if (row === undefined) throw new Error('authorization vanished');
    const results = await ledger.applyInTx(tx, transfers);
    const failed = results.find((r) => !r.ok);
    if (failed !== undefined && !failed.ok) {
      const first = results.find((r) => !r.ok && r.error.code !== 'linked_transfer_failed');
      return { ok: false, error: ledgerCode(first !== undefined && !first.ok ? first.error : failed.error) };
    }
    return ok(toAuth(row));
  };

  const authorizeTaps: PaymentService['authorizeTaps'] = async (tx, items) => {
    if (items.length > MAX_PAYMENT_BATCH) throw new Error(`authorizeTaps: at most ${MAX_PAYMENT_BATCH} taps at once`);
    const out: (Result<Authorization, PErr> | undefined)[] = items.map(() => undefined);
    const now = clock.now();
    // The merchants and, in the same round trip, the token rows (locked) for every tap; each cryptogram is checked
    // under its merchant's country once both are in. Nothing is written yet.
    const merchantsRead = merchants.getManyById(
      items.map((i) => i.merchantId),
      tx,
    );
    const [merchantsById, verified] = await all([
      () => merchantsRead,
      () =>
        walletTokens.verifyTokenPayments(
          tx,
          items.map(({ input, owner, merchantId }) => ({
            tokenNumber: input.token,
            atc: input.atc,
            cryptogram: input.cryptogram,
            amountMinor: input.amountMinor,
            currency: input.currency,
            country: merchantsRead.then((m) => m.get(merchantId)?.country ?? 'ZZ'),
            date: yymmdd(now),
            type: '00',
            unpredictableNumber: input.unpredictableNumber,
            channel: 'tap' as const,
            actingParticipantId: owner,
          })),
        ),
    ]);
    const live: number[] = [];
    items.forEach((item, i) => {
      const m = merchantsById.get(item.merchantId);
      if (m === undefined || m.ownerParticipantId !== item.owner) out[i] = err('merchant_not_found', 'no such merchant');
      else if (item.input.currency !== m.currency) out[i] = err('payment_currency_mismatch', `this merchant takes ${m.currency}`, { currency: m.currency });
      else live.push(i);
    });
    interface Candidate {
      readonly i: number;
      readonly merchant: Merchant;
      readonly v: VerifiedTokenPayment;
      readonly riskInput: RiskInput;
    }
    const candidates: Candidate[] = [];
    for (const i of live) {
      const v = verified[i]!;
      if (!v.ok) {
        out[i] = v;
        continue;
      }
      const input = items[i]!.input;
      if (`${v.value.expiry.slice(3, 5)}${v.value.expiry.slice(0, 2)}` !== input.expiry) {
        out[i] = err('token_expired', 'the expiry read by the terminal does not match the token');
        continue;
      }
      const merchant = merchantsById.get(items[i]!.merchantId)!;
      const card = v.value.card;
      candidates.push({
        i,
        merchant,
        v: v.value,
        riskInput: {
          channel: 'card_tap',
          participantId: card.issuerParticipantId,
          customerId: card.customerId,
          amountMinor: input.amountMinor,
          currency: input.currency,
          refEurCents: await refEurCents(input.currency, input.amountMinor),
          counterparty: { id: merchant.id },
          country: merchant.country,
        },
      });
    }
    if (candidates.length === 0) return out.map((r) => r!);

    // Everything the controls and the rules read, for every candidate in one statement each (pipelined): the card's
    // spend and velocity, and the cardholder's risk history, under each issuer's own rule windows.
    const issuerIds = [...new Set(candidates.map((c) => c.v.card.issuerParticipantId))];
    const rulesOf = new Map(await Promise.all(issuerIds.map(async (id) => [id, await paymentRules.rules(id)] as const)));
    const sharedOf = new Map(await Promise.all(issuerIds.map(async (id) => [id, await risk.rulesVia(tx, id)] as const)));
    const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const sinceOf = (c: Candidate, rule: 'token_velocity' | 'card_velocity') => new Date(now.getTime() - (rulesOf.get(c.v.card.issuerParticipantId)![rule].windowS ?? 600) * 1000).toISOString();
    const [issuerSettings, stats, histories] = await all([
      () => Promise.all(issuerIds.map(async (id) => [id, await issuers.get(id, tx)] as const)),
      () =>
        tx.query<{ n: bigint; today: string; month: string; token_recent: bigint; card_recent: bigint; total: bigint }>(
          `select u.n,
                  coalesce(sum(a.amount_minor - a.refunded_minor) filter (where a.created_at >= $5 and a.status in ('authorized', 'captured')), 0)::text as today,
                  coalesce(sum(a.amount_minor - a.refunded_minor) filter (where a.status in ('authorized', 'captured')), 0)::text as month,
                  count(a.id) filter (where a.token_id = u.token_id and a.created_at > u.token_since::timestamptz) as token_recent,
                  count(a.id) filter (where a.created_at > u.card_since::timestamptz) as card_recent,
                  count(a.id) as total
             from unnest($1::text[], $2::text[], $3::text[], $4::text[]) with ordinality as u(card_id, token_id, token_since, card_since, n)
             left join pay_authorizations a on a.card_id = u.card_id and a.created_at >= least($6::timestamptz, u.token_since::timestamptz, u.card_since::timestamptz)
            group by u.n`,
          [candidates.map((c) => c.v.card.id), candidates.map((c) => c.v.tokenId), candidates.map((c) => sinceOf(c, 'token_velocity')), candidates.map((c) => sinceOf(c, 'card_velocity')), dayStart, monthStart],
        ),
      () =>
        tx.query<{ n: bigint; recent: bigint | null; hn: bigint | null; avg: string | null; known: boolean | null }>(
          `select u.n, h.recent, h.n as hn, h.avg, h.known
             from unnest($1::text[], $2::text[], $3::text[], $4::text[]) with ordinality as u(participant_id, customer_id, counterparty, since, n)
             cross join lateral (${riskHistorySql({ participantId: 'u.participant_id', customerId: 'u.customer_id', counterparty: 'u.counterparty', since: 'u.since::timestamptz' })}) h`,
          [
            candidates.map((c) => c.riskInput.participantId),
            candidates.map((c) => c.riskInput.customerId),
            candidates.map((c) => c.riskInput.counterparty.id),
            candidates.map((c) => sharedOf.get(c.riskInput.participantId)!.windowStart.toISOString()),
          ],
        ),
    ]);
    const settingsOf = new Map(issuerSettings);
    const statsOf = new Map(stats.map((r) => [Number(r.n) - 1, r]));
    const historyOf = new Map(histories.map((r) => [Number(r.n) - 1, r]));

    // (3)–(4) each tap in arrival order; taps of one card in this batch count against each other's totals and velocity.
    const byCard = new Map<string, { spent: bigint; count: number; tokens: Map<string, number> }>();
    const byCustomer = new Map<string, { count: number; counterparties: Set<string> }>();
    interface Approved {
      readonly c: Candidate;
      readonly id: string;
      readonly score: number;
      decidedBy: Authorization['decidedBy'];
      fundingAccountId: string | undefined;
    }
    const approved: Approved[] = [];
    const asks: Promise<void>[] = [];
    for (const [k, c] of candidates.entries()) {
      const input = items[c.i]!.input;
      const card = c.v.card;
      const st = statsOf.get(k);
      const mine = byCard.get(card.id) ?? { spent: 0n, count: 0, tokens: new Map<string, number>() };
      const declined = cards.checkControls(card, {
        amountMinor: input.amountMinor,
        currency: input.currency,
        mcc: c.merchant.mcc,
        country: c.merchant.country,
        channel: 'tap',
        spentTodayMinor: BigInt(st?.today ?? '0') + mine.spent,
        spentMonthMinor: BigInt(st?.month ?? '0') + mine.spent,
        now,
      });
      if (declined !== undefined) {
        out[c.i] = err(declined, `declined by the card's controls: ${declined}`);
        continue;
      }
      const seen = byCustomer.get(card.customerId);
      const h = historyOf.get(k);
      const stored = riskHistoryOf(sharedOf.get(card.issuerParticipantId)!.rules, h === undefined ? undefined : { recent: h.recent, n: h.hn, avg: h.avg, known: h.known });
      const history = seen === undefined ? stored : { ...stored, recent: stored.recent + seen.count, count: stored.count + seen.count, knownCounterparty: stored.knownCounterparty || seen.counterparties.has(c.merchant.id) };
      const shared = risk.decide(c.riskInput, history);
      const own = evaluatePaymentRules(rulesOf.get(card.issuerParticipantId)!, {
        amountMinor: input.amountMinor,
        mcc: c.merchant.mcc,
        merchantCountry: c.merchant.country,
        tokenRecent: Number(st?.token_recent ?? 0n) + (mine.tokens.get(c.v.tokenId) ?? 0),
        cardRecent: Number(st?.card_recent ?? 0n) + mine.count,
        deviceRecent: 0,
        cardHistory: Number(st?.total ?? 0n) + mine.count,
        deviceKnown: false,
      });
      const reasons: RiskReason[] = [...shared.reasons, ...own];
      const decision = reasons.reduce<RiskDecision>((d, x) => (SEVERITY[x.action] > SEVERITY[d] ? x.action : d), 'approve');
      const score = Math.min(100, reasons.reduce((sum, x) => sum + x.score, 0));
      if (decision !== 'approve') {
        // A tap carries no step-up: either action stops it. Its alert is the one thing a declined tap writes.
        await risk.raiseAlert(tx, c.riskInput, { decision, score, reasons }, { merchantId: c.merchant.id, paymentChannel: 'tap', cardId: card.id, tokenId: c.v.tokenId, deviceCountry: null });
        out[c.i] =
          decision === 'decline'
            ? err('risk_declined', 'the payment was stopped by a risk rule', { reasons: reasons.map((r) => r.rule), score })
            : err('step_up_required', 'the cardholder must re-authenticate in the wallet', { reasons: reasons.map((r) => r.rule), score });
        continue;
      }
      mine.spent += input.amountMinor;
      mine.count += 1;
      mine.tokens.set(c.v.tokenId, (mine.tokens.get(c.v.tokenId) ?? 0) + 1);
      byCard.set(card.id, mine);
      const cs = seen ?? { count: 0, counterparties: new Set<string>() };
      cs.count += 1;
      cs.counterparties.add(c.merchant.id);
      byCustomer.set(card.customerId, cs);
      const a: Approved = { c, id: newId('pay'), score, decidedBy: 'hosted', fundingAccountId: card.fundingAccountId ?? undefined };
      approved.push(a);
      const settings = settingsOf.get(card.issuerParticipantId)!;
      if (settings.mode === 'webhook') {
        // Webhook issuers are asked together (each within its deadline), before any lock on a ledger account is taken.
        asks.push(
          (async () => {
            const answer = await issuers.ask(
              settings,
              {
                authorizationId: a.id,
                cardId: card.id,
                customerId: card.customerId,
                tokenId: c.v.tokenId,
                walletParticipantId: c.v.requestorParticipantId,
                amount: { amount: formatAmount(input.amountMinor, input.currency), currency: input.currency },
                merchant: { id: c.merchant.id, name: c.merchant.name, mcc: c.merchant.mcc, country: c.merchant.country, city: c.merchant.city },
                channel: 'tap',
                riskScore: score,
              },
              input.amountMinor,
              tx,
            );
            a.decidedBy = answer.by;
            if (!answer.approved) {
              out[c.i] =
                answer.by === 'issuer'
                  ? err('issuer_declined', 'the issuer declined the payment', { reason: answer.reason })
                  : err('issuer_unavailable', 'the issuer did not answer in time and its stand-in rules decline', { reason: answer.reason });
              return;
            }
            a.fundingAccountId = await accounts.ensureSystemAccount('funding', card.issuerParticipantId, input.currency);
          })(),
        );
      } else if (a.fundingAccountId === undefined) {
        out[c.i] = err('no_funding_account', 'the card has no funding account at the hub');
      }
    }
    await Promise.all(asks);
    const holding = approved.filter((a) => out[a.c.i] === undefined);
    if (holding.length === 0) return out.map((r) => r!);

    // (5) Every hold in one ledger call: each its own pending transfer (not linked), the merchant's row updated once.
    const planned = holding.map((a) => {
      const input = items[a.c.i]!.input;
      return { a, id: a.id, holdId: `${a.id}_hold`, input };
    });
    const results = await ledger.applyInTx(
      tx,
      planned.map((p) => ({
        id: p.holdId,
        kind: 'pending' as const,
        debitAccountId: p.a.fundingAccountId!,
        creditAccountId: p.a.c.merchant.settlementAccountId,
        amountMinor: p.input.amountMinor,
        currency: p.input.currency,
        timeoutMs: holdTtlMs,
        purpose: 'card_authorization',
        metadata: { authorizationId: p.id, merchantId: p.a.c.merchant.id },
      })),
    );
    const uses: Parameters<WalletTokenService['recordTokenUses']>[1][number][] = [];
    for (const [k, p] of planned.entries()) {
      const held = results[k];
      if (held === undefined || !held.ok) {
        out[p.a.c.i] = { ok: false, error: ledgerCode(held?.ok === false ? held.error : undefined) };
        continue;
      }
      const { c } = p.a;
      const auth: Authorization = {
        id: p.id,
        ownerParticipantId: c.merchant.ownerParticipantId,
        merchantId: c.merchant.id,
        channel: 'tap',
        status: 'authorized',
        sourceKind: 'token',
        issuerParticipantId: c.v.card.issuerParticipantId,
        cardId: c.v.card.id,
        tokenId: c.v.tokenId,
        payerParticipantId: c.v.requestorParticipantId,
        payerCustomerId: c.v.walletCustomerId,
        sourceAccountId: p.a.fundingAccountId!,
        deviceId: null,
        amountMinor: p.input.amountMinor,
        currency: p.input.currency,
        capturedMinor: 0n,
        refundedMinor: 0n,
        feeMinor: 0n,
        authCode: authCode(),
        decidedBy: p.a.decidedBy,
        holdTransferId: p.holdId,
        holdExpiresAt: new Date(now.getTime() + holdTtlMs),
        qrId: null,
        linkId: null,
        riskScore: p.a.score,
        country: c.merchant.country,
        mcc: c.merchant.mcc,
        createdAt: now,
        updatedAt: now,
      };
      tx.hooks!.stage(authorizationFlusher, auth);
      uses.push({ verified: c.v, channel: 'tap', actingParticipantId: items[c.i]!.owner });
      await risk.observe(tx, c.riskInput);
      await audit.record(tx, { actor: items[c.i]!.actor, action: 'payment.authorized', objectType: 'payment', objectId: auth.id, details: { merchantId: c.merchant.id, channel: 'tap', amountMinor: auth.amountMinor.toString(), currency: auth.currency, decidedBy: auth.decidedBy, cardId: auth.cardId, riskScore: auth.riskScore } });
      await notify(tx, auth, 'payment.authorized', { channel: 'tap', decidedBy: auth.decidedBy });
      out[c.i] = ok(auth);
    }
    await walletTokens.recordTokenUses(tx, uses);
    return out.map((r) => r!);
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
    const planned: { i: number; a: Authorization; amount: bigint; fee: bigint; transfers: TransferInput[] }[] = [];
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
      const fee = merchant.feeBps > 0 ? (amount * BigInt(merchant.feeBps) + 9_999n) / 10_000n : 0n;
      const transfers: TransferInput[] = [{ id: `${a.id}_capture`, kind: 'post_pending', pendingId: a.holdTransferId, amountMinor: amount, purpose: 'card_capture', metadata: { authorizationId: a.id }, ...(fee > 0n ? { linked: true } : {}) }];
      if (fee > 0n) {
        const feeAccount = await accounts.ensureSystemAccount('fees', a.issuerParticipantId, a.currency);
        transfers.push({ id: `${a.id}_fee`, debitAccountId: merchant.settlementAccountId, creditAccountId: feeAccount, amountMinor: fee, currency: a.currency, purpose: 'merchant_fee', metadata: { authorizationId: a.id, feeBps: merchant.feeBps } });
      }
      taken.add(a.id);
      planned.push({ i, a, amount, fee, transfers });
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
      if (failed !== undefined && !failed.ok) out[p.i] = { ok: false, error: ledgerCode(failed.error) };
      else done.push(p);
    }
    if (done.length === 0) return out.map((r) => r!);
    const now = clock.now();
    for (const p of done) {
      tx.hooks!.stage(captureFlusher, [p.a.id, p.amount.toString(), p.fee.toString(), now.toISOString()]);
      const captured: Authorization = { ...p.a, status: 'captured', capturedMinor: p.amount, feeMinor: p.fee, updatedAt: now };
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

  const walletSource = (walletId: string, input: WalletPayInput, channel: Channel): Source =>
    input.source.type === 'token'
      ? { kind: 'token', channel, tokenRef: input.source.tokenRef, requestorParticipantId: walletId, atc: input.source.atc, cryptogram: input.source.cryptogram, unpredictableNumber: input.source.unpredictableNumber, walletCustomerId: input.customerId }
      : { kind: 'account', participantId: walletId, customerId: input.customerId, accountId: input.source.accountId };

  /** Who the token belongs to, for channels where the terminal does not know the wallet (tap, CPM). */
  const requestorOf = async (q: Queryable, tokenNumber: string): Promise<string | undefined> => {
    const [row] = await q.query<{ requestor_participant_id: string }>('select requestor_participant_id from card_tokens where token_index = $1', [await vault.indexHash(tokenNumber)]);
    return row?.requestor_participant_id;
  };

  const ownMerchant = async (q: Queryable, owner: string, merchantId: string) => merchants.get(owner, merchantId, q);

  return {
    authorizeTaps,
    captureMany,
    async createQr(tx, actor, owner, merchantId, input) {
      const merchant = await ownMerchant(tx, owner, merchantId);
      if (merchant === undefined) return err('merchant_not_found', 'no such merchant');
      const id = newId('qr');
      const dynamic = input.kind === 'dynamic';
      if (dynamic && input.amountMinor === undefined) return err('amount_required', 'a dynamic code needs an amount');
      if (!dynamic && input.amountMinor !== undefined) return err('merchant_invalid', 'a static code carries no amount; the payer enters it');
      const currencyNumeric = (await import('../cards/numbers.ts')).currencyNumeric(merchant.currency);
      if (currencyNumeric === undefined) return err('merchant_invalid', 'currency has no numeric code');
      const expiresAt = dynamic ? new Date(clock.nowMs() + (input.expiresInS ?? DEFAULT_DYNAMIC_QR_TTL_S) * 1000) : null;
      const encoded = encodeMpm({
        pointOfInitiation: input.kind,
        // A dynamic code names itself in the hub's template, so the reference label (62.05) stays the merchant's.
        merchantAccount: { tag: MERCHANT_ACCOUNT_TAG, globallyUniqueId: HUB_GUID, merchantId: merchant.id, ...(dynamic ? { codeId: id } : {}) },
        mcc: merchant.mcc,
        currencyNumeric,
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
    async payQr(tx, actor, walletId, input, deferred) {
      const resolved = await resolveQr(tx, input.payload);
      if (!resolved.ok) return resolved;
      const { merchant, qr } = resolved.value;
      let amount: bigint;
      if (qr !== undefined) {
        const [locked] = await tx.query<{ paid_authorization_id: string | null }>('select paid_authorization_id from pay_qr_codes where id = $1 for update', [qr.id]);
        if (locked?.paid_authorization_id !== null && locked?.paid_authorization_id !== undefined) return err('qr_already_paid', 'this dynamic code was already paid');
        if (input.amountMinor !== undefined && input.amountMinor !== qr.amountMinor) return err('amount_mismatch', 'the amount differs from the amount in the code');
        amount = qr.amountMinor ?? 0n;
      } else {
        if (input.amountMinor === undefined) return err('amount_required', 'a static code: send the amount the payer entered');
        amount = input.amountMinor;
      }
      const channel: PaymentChannel = qr !== undefined ? 'mpm_dynamic' : 'mpm_static';
      const authorized = await authorize(
        tx,
        { actor, merchant, channel, amountMinor: amount, currency: merchant.currency, source: walletSource(walletId, input, 'qr'), deviceId: input.deviceId, deviceCountry: input.deviceCountry, stepUpChallengeId: input.stepUpChallengeId, ...(qr !== undefined ? { qrId: qr.id } : {}) },
        deferred,
      );
      if (!authorized.ok) return authorized;
      if (qr !== undefined) await tx.query('update pay_qr_codes set paid_authorization_id = $2 where id = $1', [qr.id, authorized.value.id]);
      // The payer pushed the payment: it is captured at once.
      return capture(tx, actor, merchant.ownerParticipantId, authorized.value.id);
    },
    async authorizeCpm(tx, actor, owner, merchantId, input, deferred) {
      const merchant = await ownMerchant(tx, owner, merchantId);
      if (merchant === undefined) return err('merchant_not_found', 'no such merchant');
      const decoded = decodeCpm(input.payload);
      if (!decoded.ok) return err('cpm_invalid', decoded.error.message, decoded.error.details);
      const cpm = decoded.value;
      if (cpm.amountMinor !== undefined && cpm.amountMinor !== input.amountMinor) return err('amount_mismatch', 'the amount in the code differs from the amount charged');
      const requestor = await requestorOf(tx, cpm.token);
      if (requestor === undefined) return err('token_unknown', 'unknown token');
      return authorize(
        tx,
        {
          actor,
          merchant,
          channel: 'cpm',
          amountMinor: input.amountMinor,
          currency: input.currency,
          source: { kind: 'token', channel: 'qr', tokenNumber: cpm.token, requestorParticipantId: requestor, atc: parseInt(cpm.atc, 16), cryptogram: cpm.cryptogram, unpredictableNumber: cpm.unpredictableNumber, cryptogramAmountMinor: cpm.amountMinor ?? 0n },
        },
        deferred,
      );
    },
    async authorizeTap(tx, actor, owner, merchantId, input, deferred) {
      const [merchant, requestor] = await all([() => ownMerchant(tx, owner, merchantId), () => requestorOf(tx, input.token)]);
      if (merchant === undefined) return err('merchant_not_found', 'no such merchant');
      if (requestor === undefined) return err('token_unknown', 'unknown token');
      return authorize(
        tx,
        {
          actor,
          merchant,
          channel: 'tap',
          amountMinor: input.amountMinor,
          currency: input.currency,
          source: { kind: 'token', channel: 'tap', tokenNumber: input.token, requestorParticipantId: requestor, atc: input.atc, cryptogram: input.cryptogram, unpredictableNumber: input.unpredictableNumber },
          tokenExpiry: input.expiry,
        },
        deferred,
      );
    },
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
    async payLink(tx, actor, walletId, linkId, input, deferred) {
      const [row] = await tx.query<LinkRow>('select * from pay_links where id = $1 for update', [linkId]);
      if (row === undefined) return err('payment_link_not_found', 'no such payment link');
      const link = toLink(row);
      if (clock.now() >= link.expiresAt) return err('payment_link_expired', 'the payment link has expired');
      if (!link.multipleUse && link.payCount > 0) return err('payment_link_used', 'the payment link was already paid');
      const merchant = await merchants.getById(link.merchantId, tx);
      if (merchant === undefined) throw new Error('merchant vanished');
      const authorized = await authorize(
        tx,
        { actor, merchant, channel: 'link', amountMinor: link.amountMinor, currency: link.currency, source: walletSource(walletId, input, 'online'), deviceId: input.deviceId, deviceCountry: input.deviceCountry, stepUpChallengeId: input.stepUpChallengeId, linkId: link.id },
        deferred,
      );
      if (!authorized.ok) return authorized;
      await tx.query('update pay_links set pay_count = pay_count + 1 where id = $1', [link.id]);
      return capture(tx, actor, merchant.ownerParticipantId, authorized.value.id);
    },
    capture,
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
      const remaining = a.capturedMinor - a.refundedMinor;
      const amount = amountMinor ?? remaining;
      if (amount <= 0n || amount > remaining) return err('refund_exceeds_captured', 'refunds cannot exceed what was captured', { refundable: formatAmount(remaining, a.currency) });
      const merchant = await merchants.getById(a.merchantId, tx);
      if (merchant === undefined) throw new Error('merchant vanished');
      const refundId = newId('rfd');
      const [r] = await ledger.applyInTx(tx, [{ id: refundId, debitAccountId: merchant.settlementAccountId, creditAccountId: a.sourceAccountId, amountMinor: amount, currency: a.currency, purpose: 'card_refund', metadata: { authorizationId: a.id } }]);
      if (r === undefined || !r.ok) return { ok: false, error: ledgerCode(r?.ok === false ? r.error : undefined) };
      await tx.query('insert into pay_refunds (id, authorization_id, amount_minor, transfer_id, created_at) values ($1, $2, $3, $4, $5)', [refundId, a.id, amount, refundId, clock.now()]);
      await tx.query('update pay_authorizations set refunded_minor = refunded_minor + $2, updated_at = $3 where id = $1', [a.id, amount, clock.now()]);
      const after = await reloadAuth(tx, a.id);
      await audit.record(tx, { actor, action: 'payment.refunded', objectType: 'payment', objectId: a.id, details: { refundId, amountMinor: amount.toString() } });
      await notify(tx, after, 'payment.refunded', { refundId, refundAmount: formatMoney(amount, a.currency) });
      return ok({ authorization: after, refundId, amountMinor: amount });
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
      return { expired };
    },
  };
}
