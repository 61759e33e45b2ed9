import { createHash } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import type { AccountService } from '../accounts/index.ts';
import type { Actor, AuditService } from '../audit/index.ts';
import type { Ledger, TransferInput } from '../ledger/index.ts';
import type { MerchantService } from '../merchants/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable, Tx } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { currencyMinorUnit, formatAmount, formatMoney, parseAmount } from '../platform/money.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import { interparticipantLegs, type SettlementService } from '../settlement/index.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import { readOfflineToken, verifyCompactEs256, verifyStatement, type OfflineDeviceKey } from './token.ts';

/**
 * Offline small payments. A customer's device holds an offline purse: money moved from the customer's account at
 * their wallet into a reserve account of the purse's own (ledger, no overdraft), at most OFFLINE_DEVICE_LIMIT_MAJOR
 * in the currency per device. With no network the device pays a merchant's terminal with a token it signs with the
 * key the purse was opened with (src/offline/token.ts: purse, counter, amount, merchant). The merchant uploads it when
 * online; the hub checks the signature and settles it from the reserve to the merchant's settlement account (the
 * wallet's and the merchant owner's positions move as for any payment between participants).
 *
 * Double spends: the same token presented twice is refused (`offline_token_replayed`, nothing moves); a second token
 * under a counter already settled (the device signed two payments with one counter: a cloned or tampered device) is
 * refused (`offline_counter_reused`), recorded as evidence, blocks the purse (no more loads; the wallet is told) and
 * leaves the tokens of other counters payable. Whatever a device signs, the hub pays at most what the reserve holds
 * (`offline_reserve_exhausted` after that): the loss is bounded by the reserved balance.
 *
 * Unloading: the device signs the last counter it used and the balance it still has; that balance goes back to the
 * customer's account at once, and what is spent but not yet uploaded stays reserved for the merchants' tokens with
 * counters up to the last one, for OFFLINE_UPLOAD_WINDOW_MS; then `sweep` gives the customer back what is left.
 */

export const OFFLINE_DEVICE_LIMIT_MAJOR = 500n;
/** How long after an unload (or a block) merchants may still upload the tokens they took. */
export const OFFLINE_UPLOAD_WINDOW_MS = 30 * 86_400_000;
/** A token signed longer ago than this is refused (`offline_token_expired`). */
export const OFFLINE_TOKEN_MAX_AGE_MS = 30 * 86_400_000;
/** A token signed further in the future than this (by the device's clock) is refused as malformed. */
const CLOCK_SKEW_MS = 10 * 60_000;

export type OfflineErrorCode =
  | 'offline_purse_not_found'
  | 'offline_purse_exists'
  | 'offline_purse_closed'
  | 'offline_purse_blocked'
  | 'offline_limit_exceeded'
  | 'offline_reserve_exhausted'
  | 'offline_token_invalid'
  | 'offline_signature_invalid'
  | 'offline_token_replayed'
  | 'offline_counter_reused'
  | 'offline_token_expired'
  | 'offline_wrong_merchant'
  | 'offline_unload_invalid'
  | 'device_key_invalid'
  | 'account_unavailable'
  | 'insufficient_funds'
  | 'merchant_not_found'
  | 'ledger_rejected';
export type OErr = DomainError<OfflineErrorCode | 'unknown_currency' | 'invalid_amount' | 'amount_not_positive' | 'amount_precision' | 'amount_too_large'>;

export type PurseStatus = 'active' | 'unloaded' | 'blocked' | 'closed';

export interface OfflinePurse {
  readonly id: string;
  readonly participantId: string;
  readonly customerId: string;
  readonly currency: string;
  readonly sourceAccountId: string;
  readonly deviceId: string | null;
  readonly deviceKeyThumbprint: string;
  readonly deviceKey: OfflineDeviceKey;
  readonly limitMinor: bigint;
  /** What the reserve holds now: loaded − settled − unloaded. */
  readonly balanceMinor: bigint;
  readonly loadedMinor: bigint;
  readonly settledMinor: bigint;
  readonly unloadedMinor: bigint;
  readonly status: PurseStatus;
  readonly lastCounter: number | null;
  readonly lastSettledCounter: number | null;
  readonly uploadDeadline: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface OfflinePayment {
  readonly id: string;
  readonly purseId: string;
  readonly counter: number;
  readonly merchantId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly signedAt: Date;
  readonly settledAt: Date;
}

export interface OfflineService {
  /** Opens a purse for the customer's device key and loads it from the customer's own account at the wallet. */
  open(tx: Tx, actor: Actor, walletId: string, input: { customerId: string; accountId: string; devicePublicKey: OfflineDeviceKey; deviceId?: string | undefined; amount: string; transferKey: string }): Promise<Result<OfflinePurse, OErr>>;
  /** Moves more into an active purse (up to its limit) from the account it was opened from. */
  load(tx: Tx, actor: Actor, walletId: string, purseId: string, input: { amount: string; transferKey: string }): Promise<Result<OfflinePurse, OErr>>;
  /** Takes back what the device says it has not spent, on a statement the device signed (token.ts signOfflineUnload). */
  unload(tx: Tx, actor: Actor, walletId: string, purseId: string, input: { lastCounter: number; remaining: string; deviceSignature: string }): Promise<Result<OfflinePurse, OErr>>;
  /** Settles one token a merchant took offline. */
  settle(tx: Tx, actor: Actor, callerId: string, merchantId: string, token: string): Promise<Result<OfflinePayment, OErr>>;
  /**
   * After `settle` answered offline_counter_reused (and rolled back): records the evidence and blocks the purse, in a
   * transaction of its own. Re-checks everything itself (signature, a settled payment under the counter).
   */
  recordDoubleSpend(tx: Tx, merchantId: string, token: string): Promise<boolean>;
  get(q: Queryable, walletId: string, purseId: string): Promise<OfflinePurse | undefined>;
  list(q: Queryable, walletId: string, customerId: string): Promise<OfflinePurse[]>;
  payments(q: Queryable, purseId: string): Promise<OfflinePayment[]>;
  /** What a merchant was paid by offline tokens, newest first (at most `limit`, settled before `before` when given). */
  merchantPayments(q: Queryable, merchantId: string, limit: number, before?: Date): Promise<OfflinePayment[]>;
  /** Purses unloaded or blocked whose upload window has passed: what is left goes back to the customer. */
  sweep(limit?: number): Promise<number>;
}

interface PurseRow {
  id: string;
  participant_id: string;
  customer_id: string;
  currency: string;
  source_account_id: string;
  reserve_account_id: string;
  device_id: string | null;
  device_key: OfflineDeviceKey;
  device_key_thumbprint: string;
  limit_minor: bigint | string;
  loaded_minor: bigint | string;
  settled_minor: bigint | string;
  unloaded_minor: bigint | string;
  status: PurseStatus;
  last_counter: number | null;
  last_settled_counter: number | null;
  upload_deadline: Date | null;
  created_at: Date;
  updated_at: Date;
}

const PURSE_COLUMNS = `p.id, p.participant_id, p.customer_id, p.currency, p.source_account_id, p.reserve_account_id, p.device_id, p.device_key, p.device_key_thumbprint,
  p.limit_minor, p.loaded_minor, p.settled_minor, p.unloaded_minor, p.status, p.last_counter, p.upload_deadline, p.created_at, p.updated_at,
  (select max(o.counter) from offline_payments o where o.purse_id = p.id) as last_settled_counter`;

const toPurse = (r: PurseRow): OfflinePurse => {
  const loaded = BigInt(r.loaded_minor);
  const settled = BigInt(r.settled_minor);
  const unloaded = BigInt(r.unloaded_minor);
  return {
    id: r.id,
    participantId: r.participant_id,
    customerId: r.customer_id,
    currency: r.currency,
    sourceAccountId: r.source_account_id,
    deviceId: r.device_id,
    deviceKeyThumbprint: r.device_key_thumbprint,
    deviceKey: r.device_key,
    limitMinor: BigInt(r.limit_minor),
    balanceMinor: loaded - settled - unloaded,
    loadedMinor: loaded,
    settledMinor: settled,
    unloadedMinor: unloaded,
    status: r.status,
    lastCounter: r.last_counter,
    lastSettledCounter: r.last_settled_counter === null ? null : Number(r.last_settled_counter),
    uploadDeadline: r.upload_deadline,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
};

interface PaymentRow {
  id: string;
  purse_id: string;
  counter: number;
  merchant_id: string;
  amount_minor: bigint | string;
  currency: string;
  signed_at: Date;
  settled_at: Date;
}
const toPayment = (r: PaymentRow): OfflinePayment => ({
  id: r.id,
  purseId: r.purse_id,
  counter: r.counter,
  merchantId: r.merchant_id,
  amountMinor: BigInt(r.amount_minor),
  currency: r.currency,
  signedAt: r.signed_at,
  settledAt: r.settled_at,
});

export const reserveAccountId = (purseId: string) => `off_${purseId}`;
export const offlineLimitMinor = (currency: string): bigint => OFFLINE_DEVICE_LIMIT_MAJOR * 10n ** BigInt(currencyMinorUnit(currency) ?? 2);
const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

export function createOfflineService(deps: {
  db: Db;
  clock: Clock;
  audit: AuditService;
  events: EventOutbox;
  ledger: Ledger;
  accounts: Pick<AccountService, 'ref' | 'ensureSystemAccount'>;
  merchants: Pick<MerchantService, 'getById'>;
  settlement: Pick<SettlementService, 'recordMoves'>;
}): OfflineService {
  const { db, clock, audit, events, ledger, accounts, merchants, settlement } = deps;

  const lockPurse = async (tx: Queryable, purseId: string): Promise<(PurseRow & { view: OfflinePurse }) | undefined> => {
    const [r] = await tx.query<PurseRow>(`select ${PURSE_COLUMNS} from offline_purses p where p.id = $1 for update of p`, [purseId]);
    return r === undefined ? undefined : { ...r, view: toPurse(r) };
  };
  const read = async (q: Queryable, purseId: string): Promise<OfflinePurse | undefined> => {
    const [r] = await q.query<PurseRow>(`select ${PURSE_COLUMNS} from offline_purses p where p.id = $1`, [purseId]);
    return r === undefined ? undefined : toPurse(r);
  };

  /** One single-phase ledger move; the first refusal's code, or undefined when it went through. */
  const move = async (tx: Tx, transfer: TransferInput): Promise<string | undefined> => {
    const [r] = await ledger.applyInTx(tx, [transfer]);
    if (r === undefined) return 'ledger_rejected';
    return r.ok ? undefined : r.error.code;
  };

  /** Moves `amountMinor` from the purse's source account into its reserve, within its limit. */
  const loadInto = async (tx: Tx, actor: Actor, purse: OfflinePurse, amountMinor: bigint, transferKey: string): Promise<Result<void, OErr>> => {
    if (purse.balanceMinor + amountMinor > purse.limitMinor) {
      return err('offline_limit_exceeded', `an offline purse holds at most ${formatAmount(purse.limitMinor, purse.currency)} ${purse.currency} per device`, {
        limit: formatMoney(purse.limitMinor, purse.currency),
        balance: formatMoney(purse.balanceMinor, purse.currency),
      });
    }
    const code = await move(tx, { id: transferKey, debitAccountId: purse.sourceAccountId, creditAccountId: reserveAccountId(purse.id), amountMinor, currency: purse.currency, purpose: 'offline_load', metadata: { purseId: purse.id } });
    if (code === 'insufficient_funds') return err('insufficient_funds', 'the account does not hold enough to load the offline purse', { accountId: purse.sourceAccountId });
    if (code === 'account_closed') return err('account_unavailable', 'the account is closed', { accountId: purse.sourceAccountId });
    if (code !== undefined) return err('ledger_rejected', `the load was refused by the ledger (${code})`);
    await tx.query('update offline_purses set loaded_minor = loaded_minor + $2, updated_at = $3 where id = $1', [purse.id, amountMinor, clock.now()]);
    await audit.record(tx, { actor, action: 'offline.loaded', objectType: 'offline_purse', objectId: purse.id, details: { amountMinor: amountMinor.toString(), transferId: transferKey } });
    return ok(undefined);
  };

  const amountOf = (amount: string, currency: string): Result<bigint, OErr> => parseAmount(amount, currency, { field: 'amount' });

  return {
    async open(tx, actor, walletId, input) {
      const key = input.devicePublicKey;
      let thumbprint: string;
      try {
        if (!(await crypto.subtle.importKey('jwk', { kty: key.kty, crv: key.crv, x: key.x, y: key.y }, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']))) throw new Error('no key');
        thumbprint = await calculateJwkThumbprint({ kty: key.kty, crv: key.crv, x: key.x, y: key.y }, 'sha256');
      } catch {
        return err('device_key_invalid', 'devicePublicKey is not an ECDSA P-256 public key');
      }
      const account = await accounts.ref(tx, input.accountId);
      // Only the customer's own account at this wallet: the reserve is the wallet's, so is the money that fills it.
      if (account === undefined || account.ownerParticipantId !== walletId || account.customerId !== input.customerId || account.kind !== 'customer' || account.closed) {
        return err('account_unavailable', "an offline purse is loaded from the customer's own account at your wallet", { accountId: input.accountId });
      }
      const amount = amountOf(input.amount, account.currency);
      if (!amount.ok) return amount;
      const [existing] = await tx.query<{ id: string }>(`select id from offline_purses where device_key_thumbprint = $1 and currency = $2 and status in ('active', 'blocked')`, [thumbprint, account.currency]);
      if (existing !== undefined) return err('offline_purse_exists', 'this device already has an open offline purse in this currency', { purseId: existing.id });
      const id = newId('opu');
      const now = clock.now();
      const created = await ledger.createAccount({ id: reserveAccountId(id), ownerParticipantId: walletId, currency: account.currency, kind: 'suspense', debitsMustNotExceedCredits: true });
      if (!created.ok) return err('ledger_rejected', `the reserve account could not be opened (${created.error.code})`);
      await tx.query(
        `insert into offline_purses (id, participant_id, customer_id, currency, source_account_id, reserve_account_id, device_id, device_key, device_key_thumbprint, limit_minor, status, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11, $11)`,
        [id, walletId, input.customerId, account.currency, account.id, reserveAccountId(id), input.deviceId ?? null, { kty: key.kty, crv: key.crv, x: key.x, y: key.y }, thumbprint, offlineLimitMinor(account.currency), now],
      );
      await audit.record(tx, { actor, action: 'offline.purse_opened', objectType: 'offline_purse', objectId: id, details: { customerId: input.customerId, currency: account.currency, deviceKeyThumbprint: thumbprint } });
      const purse = await read(tx, id);
      if (purse === undefined) throw new Error('offline purse vanished inside its own transaction');
      const loaded = await loadInto(tx, actor, purse, amount.value, input.transferKey);
      if (!loaded.ok) return loaded;
      return ok((await read(tx, id)) ?? purse);
    },

    async load(tx, actor, walletId, purseId, input) {
      const locked = await lockPurse(tx, purseId);
      if (locked === undefined || locked.participant_id !== walletId) return err('offline_purse_not_found', 'no such offline purse');
      const purse = locked.view;
      if (purse.status === 'blocked') return err('offline_purse_blocked', 'this purse is blocked: a payment counter was signed twice', { purseId });
      if (purse.status !== 'active') return err('offline_purse_closed', 'this purse was unloaded: open a new one', { purseId });
      const amount = amountOf(input.amount, purse.currency);
      if (!amount.ok) return amount;
      const loaded = await loadInto(tx, actor, purse, amount.value, input.transferKey);
      if (!loaded.ok) return loaded;
      return ok((await read(tx, purseId)) ?? purse);
    },

    async unload(tx, actor, walletId, purseId, input) {
      const locked = await lockPurse(tx, purseId);
      if (locked === undefined || locked.participant_id !== walletId) return err('offline_purse_not_found', 'no such offline purse');
      const purse = locked.view;
      if (purse.status === 'blocked') return err('offline_purse_blocked', 'this purse is blocked: what is left goes back once its upload window has passed', { purseId, uploadDeadline: purse.uploadDeadline?.toISOString() });
      if (purse.status !== 'active') return err('offline_purse_closed', 'this purse was already unloaded', { purseId });
      const remaining = parseAmount(input.remaining, purse.currency, { allowZero: true, field: 'remaining' });
      if (!remaining.ok) return remaining;
      const statement = { purpose: 'offline_unload', purseId, lastCounter: input.lastCounter, remaining: input.remaining };
      if (!(await verifyStatement(locked.device_key, input.deviceSignature, statement))) {
        return err('offline_signature_invalid', "the unload is not signed by the purse's device over this purse, last counter and remaining balance");
      }
      if (remaining.value > purse.balanceMinor) {
        return err('offline_unload_invalid', 'the device claims more than the reserve holds', { balance: formatMoney(purse.balanceMinor, purse.currency) });
      }
      if (purse.lastSettledCounter !== null && input.lastCounter < purse.lastSettledCounter) {
        return err('offline_unload_invalid', `a payment with counter ${purse.lastSettledCounter} was already settled: the last counter cannot be lower`, { lastSettledCounter: purse.lastSettledCounter });
      }
      const now = clock.now();
      if (remaining.value > 0n) {
        const code = await move(tx, { id: `${purseId}_unload`, debitAccountId: reserveAccountId(purseId), creditAccountId: purse.sourceAccountId, amountMinor: remaining.value, currency: purse.currency, purpose: 'offline_unload', metadata: { purseId } });
        if (code !== undefined) return err('ledger_rejected', `the unload was refused by the ledger (${code})`);
      }
      // Nothing outstanding: closed at once. Otherwise the merchants' tokens up to lastCounter are still paid.
      const outstanding = purse.balanceMinor - remaining.value;
      const status: PurseStatus = outstanding === 0n ? 'closed' : 'unloaded';
      await tx.query('update offline_purses set unloaded_minor = unloaded_minor + $2, status = $3, last_counter = $4, upload_deadline = $5, updated_at = $6 where id = $1', [
        purseId,
        remaining.value,
        status,
        input.lastCounter,
        status === 'closed' ? null : new Date(now.getTime() + OFFLINE_UPLOAD_WINDOW_MS),
        now,
      ]);
      await audit.record(tx, { actor, action: 'offline.unloaded', objectType: 'offline_purse', objectId: purseId, details: { remainingMinor: remaining.value.toString(), lastCounter: input.lastCounter, outstandingMinor: outstanding.toString() } });
      return ok((await read(tx, purseId)) ?? purse);
    },

    async settle(tx, actor, callerId, merchantId, token) {
      const merchant = await merchants.getById(merchantId, tx);
      if (merchant === undefined || merchant.ownerParticipantId !== callerId) return err('merchant_not_found', 'no such merchant');
      const read = readOfflineToken(token);
      if (read === undefined) return err('offline_token_invalid', 'not an offline payment token');
      const c = read.claims;
      if (c.mer !== merchantId) return err('offline_wrong_merchant', 'this token pays another merchant', { merchantId: c.mer });
      const locked = await lockPurse(tx, c.purse);
      if (locked === undefined) return err('offline_token_invalid', 'the token names no offline purse');
      const purse = locked.view;
      if (!(await verifyCompactEs256(locked.device_key, token))) return err('offline_signature_invalid', "the token is not signed by the purse's device key");
      const hash = tokenHash(token);
      const [seen] = await tx.query<{ id: string; token_hash: string }>('select id, token_hash from offline_payments where token_hash = $1 or (purse_id = $2 and counter = $3) order by (token_hash = $1) desc limit 1', [hash, purse.id, c.ctr]);
      if (seen !== undefined && seen.token_hash === hash) return err('offline_token_replayed', 'this token was already presented and settled', { paymentId: seen.id });
      if (seen !== undefined) return err('offline_counter_reused', `another payment was already settled under counter ${c.ctr}: a double spend; the purse is blocked`, { paymentId: seen.id, counter: c.ctr });
      const now = clock.now();
      if (purse.status === 'closed' || (purse.uploadDeadline !== null && now > purse.uploadDeadline)) return err('offline_purse_closed', 'the purse is closed: its upload window has passed', { purseId: purse.id });
      if (purse.status === 'unloaded' && purse.lastCounter !== null && c.ctr > purse.lastCounter) {
        return err('offline_purse_closed', `the purse was unloaded after counter ${purse.lastCounter}: a later token is not covered`, { purseId: purse.id, lastCounter: purse.lastCounter });
      }
      const signedAtMs = c.iat * 1000;
      if (signedAtMs > now.getTime() + CLOCK_SKEW_MS) return err('offline_token_invalid', 'the token is signed in the future');
      if (now.getTime() - signedAtMs > OFFLINE_TOKEN_MAX_AGE_MS) return err('offline_token_expired', 'the token was signed too long ago to be uploaded', { signedAt: new Date(signedAtMs).toISOString() });
      if (c.cur !== purse.currency || c.cur !== merchant.currency) return err('offline_token_invalid', `the token's currency is not the purse's and the merchant's`, { currency: c.cur });
      const amount = parseAmount(c.amt, c.cur, { field: 'amt' });
      if (!amount.ok) return err('offline_token_invalid', `the token's amount is not valid: ${amount.error.message}`);
      if (amount.value > purse.balanceMinor) {
        return err('offline_reserve_exhausted', 'the purse’s reserve does not cover this token: the hub pays at most what was reserved', { balance: formatMoney(purse.balanceMinor, purse.currency) });
      }
      const id = newId('ofp');
      const payerPos = await accounts.ensureSystemAccount('funding', purse.participantId, purse.currency);
      const payeePos = await accounts.ensureSystemAccount('funding', merchant.ownerParticipantId, purse.currency);
      const chain = interparticipantLegs({
        legId: (leg) => `${id}_${leg}`,
        sourceAccountId: reserveAccountId(purse.id),
        payeeAccountId: merchant.settlementAccountId,
        payerParticipantId: purse.participantId,
        payeeParticipantId: merchant.ownerParticipantId,
        payerPositionAccountId: payerPos,
        payeePositionAccountId: payeePos,
        amountMinor: amount.value,
        currency: purse.currency,
        purpose: 'offline_payment',
        paymentId: id,
        metadata: { offlinePaymentId: id, purseId: purse.id, counter: c.ctr },
      });
      // The reserve pays the wallet's position before the position pays the merchant owner's: money the hub already
      // holds for this payment, so it never waits on the wallet's cover.
      const legs = [...chain.legs.filter((l) => 'debitAccountId' in l && l.debitAccountId === reserveAccountId(purse.id)), ...chain.legs.filter((l) => !('debitAccountId' in l) || l.debitAccountId !== reserveAccountId(purse.id))];
      const results = await ledger.applyInTx(tx, legs.map((l, k) => ({ ...l, linked: k < legs.length - 1 })));
      const bad = results.find((r) => !r.ok);
      if (bad !== undefined && !bad.ok) {
        if (bad.error.code === 'insufficient_funds') return err('offline_reserve_exhausted', 'the purse’s reserve does not cover this token', { balance: formatMoney(purse.balanceMinor, purse.currency) });
        return err('ledger_rejected', `the payment was refused by the ledger (${bad.error.code})`);
      }
      if (chain.move !== undefined) await settlement.recordMoves(tx, [chain.move]);
      await tx.query(
        `insert into offline_payments (id, purse_id, counter, token_hash, merchant_id, merchant_owner_id, amount_minor, currency, signed_at, settled_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [id, purse.id, c.ctr, hash, merchant.id, merchant.ownerParticipantId, amount.value, purse.currency, new Date(signedAtMs), now],
      );
      await tx.query('update offline_purses set settled_minor = settled_minor + $2, updated_at = $3 where id = $1', [purse.id, amount.value, now]);
      // Everything the device declared spent is in: nothing is left outstanding after an unload.
      if (purse.status === 'unloaded' && purse.balanceMinor - amount.value === 0n) await tx.query(`update offline_purses set status = 'closed', upload_deadline = null where id = $1`, [purse.id]);
      await audit.record(tx, { actor, action: 'offline.payment_settled', objectType: 'offline_payment', objectId: id, details: { purseId: purse.id, counter: c.ctr, merchantId: merchant.id, amountMinor: amount.value.toString() } });
      const data = { offlinePaymentId: id, purseId: purse.id, counter: c.ctr, merchantId: merchant.id, amount: formatMoney(amount.value, purse.currency), signedAt: new Date(signedAtMs).toISOString() };
      await events.emit(tx, { participantId: purse.participantId, type: 'offline.payment_settled', data: { ...data, customerId: purse.customerId } });
      if (merchant.ownerParticipantId !== purse.participantId) await events.emit(tx, { participantId: merchant.ownerParticipantId, type: 'offline.payment_settled', data });
      return ok({ id, purseId: purse.id, counter: c.ctr, merchantId: merchant.id, amountMinor: amount.value, currency: purse.currency, signedAt: new Date(signedAtMs), settledAt: now });
    },

    async recordDoubleSpend(tx, merchantId, token) {
      const read = readOfflineToken(token);
      if (read === undefined) return false;
      const locked = await lockPurse(tx, read.claims.purse);
      if (locked === undefined || !(await verifyCompactEs256(locked.device_key, token))) return false;
      const hash = tokenHash(token);
      const [settled] = await tx.query<{ id: string; token_hash: string }>('select id, token_hash from offline_payments where purse_id = $1 and counter = $2', [locked.id, read.claims.ctr]);
      if (settled === undefined || settled.token_hash === hash) return false;
      const [already] = await tx.query<{ id: string }>('select id from offline_double_spends where token_hash = $1', [hash]);
      if (already !== undefined) return false;
      const amount = parseAmount(read.claims.amt, locked.currency, { field: 'amt' });
      const now = clock.now();
      const id = newId('ods');
      await tx.query(
        `insert into offline_double_spends (id, purse_id, counter, token_hash, settled_payment_id, merchant_id, amount_minor, detected_at) values ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [id, locked.id, read.claims.ctr, hash, settled.id, merchantId, amount.ok ? amount.value : 0n, now],
      );
      const purse = locked.view;
      if (purse.status === 'active') {
        await tx.query(`update offline_purses set status = 'blocked', blocked_reason = 'counter_reused', upload_deadline = $2, updated_at = $3 where id = $1`, [locked.id, new Date(now.getTime() + OFFLINE_UPLOAD_WINDOW_MS), now]);
      }
      await audit.record(tx, { actor: { type: 'system' }, action: 'offline.double_spend', objectType: 'offline_purse', objectId: locked.id, details: { counter: read.claims.ctr, settledPaymentId: settled.id, merchantId } });
      await events.emit(tx, {
        participantId: purse.participantId,
        type: 'offline.double_spend',
        data: { purseId: purse.id, customerId: purse.customerId, counter: read.claims.ctr, settledPaymentId: settled.id, merchantId, amount: formatMoney(amount.ok ? amount.value : 0n, purse.currency), status: purse.status === 'active' ? 'blocked' : purse.status },
      });
      return true;
    },

    get: async (q, walletId, purseId) => {
      const purse = await read(q, purseId);
      return purse?.participantId === walletId ? purse : undefined;
    },
    async list(q, walletId, customerId) {
      const rows = await q.query<PurseRow>(`select ${PURSE_COLUMNS} from offline_purses p where p.participant_id = $1 and p.customer_id = $2 order by p.created_at, p.id`, [walletId, customerId]);
      return rows.map(toPurse);
    },
    async payments(q, purseId) {
      const rows = await q.query<PaymentRow>('select id, purse_id, counter, merchant_id, amount_minor, currency, signed_at, settled_at from offline_payments where purse_id = $1 order by counter', [purseId]);
      return rows.map(toPayment);
    },

    async merchantPayments(q, merchantId, limit, before) {
      const rows = await q.query<PaymentRow>(
        `select id, purse_id, counter, merchant_id, amount_minor, currency, signed_at, settled_at from offline_payments
          where merchant_id = $1 and ($2::timestamptz is null or settled_at < $2) order by settled_at desc, id desc limit $3`,
        [merchantId, before ?? null, limit],
      );
      return rows.map(toPayment);
    },

    async sweep(limit = 100) {
      const due = await db.query<{ id: string }>(`select id from offline_purses where status in ('unloaded', 'blocked') and upload_deadline < $1 order by upload_deadline limit $2`, [clock.now(), limit]);
      let done = 0;
      for (const d of due) {
        const closed = await db.transaction(async (tx) => {
          const locked = await lockPurse(tx, d.id);
          if (locked === undefined || (locked.status !== 'unloaded' && locked.status !== 'blocked') || locked.upload_deadline === null || locked.upload_deadline >= clock.now()) return false;
          const purse = locked.view;
          if (purse.balanceMinor > 0n) {
            const code = await move(tx, { id: `${purse.id}_release`, debitAccountId: reserveAccountId(purse.id), creditAccountId: purse.sourceAccountId, amountMinor: purse.balanceMinor, currency: purse.currency, purpose: 'offline_release', metadata: { purseId: purse.id } });
            if (code !== undefined) throw new Error(`offline purse ${purse.id}: release refused by the ledger (${code})`);
          }
          await tx.query(`update offline_purses set status = 'closed', unloaded_minor = unloaded_minor + $2, upload_deadline = null, updated_at = $3 where id = $1`, [purse.id, purse.balanceMinor, clock.now()]);
          await audit.record(tx, { actor: { type: 'system' }, action: 'offline.purse_closed', objectType: 'offline_purse', objectId: purse.id, details: { releasedMinor: purse.balanceMinor.toString() } });
          await events.emit(tx, { participantId: purse.participantId, type: 'offline.purse_closed', data: { purseId: purse.id, customerId: purse.customerId, released: formatMoney(purse.balanceMinor, purse.currency) } });
          return true;
        });
        if (closed) done += 1;
      }
      return done;
    },
  };
}
