import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Actor, AuditEntry, AuditService } from '../audit/index.ts';
import type { CardsErrorCode, TokenPaymentDeclineCode } from './errors.ts';
import type { Card, Channel } from './model.ts';
import { countryNumeric, currencyNumeric, expiryAfter, isExpired, randomCardNumber, TOKEN_BIN_PREFIXES, TOKEN_LENGTH } from './numbers.ts';
import type { CardService } from './service.ts';
import { deriveLimitedUseKey, deriveTokenKey, verifyTokenCryptogram, type TokenCryptogramScheme } from '../emv/index.ts';
import { deviceKeyThumbprint, verifyDeviceStatement, type DevicePublicKey } from './device-keys.ts';
import type { Clock } from '../platform/clock.ts';
import { pipeliner, type Db, type Flusher, type Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { newOneTimeCode, sealForParticipant } from '../platform/recipient-seal.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import type { Vault } from '../platform/vault.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { StepUpService } from '../stepup/index.ts';

type TErr = DomainError<CardsErrorCode | 'customer_not_found'>;

export const STEP_UP_TTL_MS = 5 * 60_000;
export const STEP_UP_MAX_ATTEMPTS = 5;
export const TOKEN_VALIDITY_YEARS = 3;
/** Most live tokens one card may have (bounds every fan-out of a card change). */
export const MAX_TOKENS_PER_CARD = 20;

export type RuleDecision = 'approve' | 'step_up' | 'decline';
/** Hosted provisioning rules per issuer, and how far one limited-use key of its tokens goes. */
export interface ProvisioningRules {
  readonly typed: RuleDecision;
  readonly byReference: RuleDecision;
  readonly newDevice: RuleDecision;
  /** Payments (transaction counters) one limited-use key may sign. */
  readonly keyMaxTransactions: number;
  /** Hours a limited-use key lives. */
  readonly keyTtlHours: number;
}
export type ProvisioningRulesInput = Omit<ProvisioningRules, 'keyMaxTransactions' | 'keyTtlHours'> & Partial<Pick<ProvisioningRules, 'keyMaxTransactions' | 'keyTtlHours'>>;
export const DEFAULT_RULES: ProvisioningRules = { typed: 'step_up', byReference: 'step_up', newDevice: 'step_up', keyMaxTransactions: 20, keyTtlHours: 72 };
/** The highest transaction counter (2 bytes in the cryptogram). */
const MAX_ATC = 0xffff;

export type ProvisionSource =
  | { readonly type: 'typed'; readonly cardNumber: string; readonly expiry: string; readonly cvv: string }
  | { readonly type: 'token_ref'; readonly tokenRef: string }
  | { readonly type: 'card_ref'; readonly cardRef: string }
  /** A receipt the card's issuer made for this wallet (push provisioning): one use, minutes long. */
  | { readonly type: 'push_receipt'; readonly receipt: string };

export type ProvisioningMethod = 'typed' | 'token_ref' | 'card_ref' | 'push';
/** How long a push receipt may be redeemed. */
export const PUSH_RECEIPT_TTL_MS = 10 * 60_000;

/** A push receipt as its issuer gets it, once. */
export interface PushReceipt {
  readonly id: string;
  /** The one-time secret the issuer's app hands to the wallet app (never stored: the hub keeps only its id). */
  readonly receipt: string;
  readonly cardId: string;
  readonly walletParticipantId: string;
  readonly expiresAt: Date;
}

export interface ProvisionInput {
  readonly customerId: string;
  readonly consent: boolean;
  readonly deviceId?: string;
  /** The device's public key, required: the token is bound to it (new keys and step-up answers need the device's signature). */
  readonly devicePublicKey: DevicePublicKey;
  readonly channels?: readonly Channel[];
  readonly source: ProvisionSource;
}

export type ProvisioningStatus = 'pending_step_up' | 'approved' | 'declined' | 'failed' | 'expired';

export interface Provisioning {
  readonly id: string;
  readonly requestorParticipantId: string;
  readonly customerId: string;
  readonly method: ProvisioningMethod;
  readonly status: ProvisioningStatus;
  readonly stepUpMethod: 'otp' | 'totp' | null;
  readonly attemptsRemaining: number;
  readonly expiresAt: Date | null;
  readonly tokenId: string | null;
  readonly cardLast4: string;
  readonly brand: string;
  readonly createdAt: Date;
}

export type TokenStatus = 'active' | 'suspended' | 'deleted';

export interface WalletToken {
  readonly id: string;
  readonly tokenRef: string;
  readonly cardId: string;
  readonly issuerParticipantId: string;
  readonly requestorParticipantId: string;
  readonly customerId: string;
  readonly tokenLast4: string;
  readonly expiry: string;
  readonly status: TokenStatus;
  readonly suspendedBy: string | null;
  readonly channels: readonly Channel[];
  readonly deviceId: string | null;
  /** Bound to a device key: only that device obtains new limited-use keys. */
  readonly deviceBound: boolean;
  /** The current limited-use key (never the key itself), or null when it has none. */
  readonly key: KeyInfo | null;
  readonly lastAtc: number | null;
  readonly lastUsedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly par: string;
  readonly cardLast4: string;
  readonly brand: string;
  /** The cryptogram the token makes (its card product's). */
  readonly cryptogramScheme: TokenCryptogramScheme;
  /** A credit card's credit account (whose limit and balance every wallet holding the card shows), else null. */
  readonly creditAccountId: string | null;
}

/** A limited-use key as the issuer and the wallet see it (without the key). */
export interface KeyInfo {
  readonly keyCounter: number;
  /** The transaction counters it may sign, both inclusive. */
  readonly firstAtc: number;
  readonly lastAtc: number;
  readonly expiresAt: Date;
  readonly status: 'active' | 'superseded';
  readonly uses: number;
  readonly lastUsedAt: Date | null;
  readonly createdAt: Date;
}

/** A limited-use key with the key itself: answered to the wallet when it is made (and to a retry of that request). */
export interface LimitedUseKey extends KeyInfo {
  /** 32 hex characters: the key for src/emv/token-cryptogram.ts. */
  readonly key: string;
}

/** Given to the wallet when its token is created: the token number (never a card number) and its first limited-use key. */
export interface ProvisionedToken {
  readonly token: WalletToken;
  readonly tokenNumber: string;
  readonly limitedUseKey: LimitedUseKey;
}

export interface ProvisionOutcome {
  readonly provisioning: Provisioning;
  readonly provisioned?: ProvisionedToken;
}

/** One wallet holding a token for a card, as the customer's consent view shows it. */
export interface ConsentEntry {
  readonly id: string;
  readonly walletParticipantId: string;
  readonly walletName: string;
  readonly status: TokenStatus;
  readonly suspendedBy: string | null;
  readonly tokenLast4: string;
  readonly deviceId: string | null;
  readonly addedAt: Date;
  readonly lastUsedAt: Date | null;
}

export interface VerifyTokenPaymentInput {
  readonly tokenNumber?: string;
  readonly tokenRef?: string;
  readonly atc: number;
  readonly cryptogram: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  /** ISO 3166-1 alpha-2 or numeric. */
  readonly country: string;
  /** The transaction date (UTC) or YYMMDD. */
  readonly date: Date | string;
  /** Two digits, "00" purchase. */
  readonly type: string;
  readonly unpredictableNumber: string;
  readonly channel: Channel;
  /** The wallet that presented the token: must be the token's own requestor. */
  readonly requestorParticipantId: string;
  /** Who asks (an acquirer, the payments service); audited. Defaults to the requestor. */
  readonly actingParticipantId?: string;
}

export interface VerifiedTokenPayment {
  readonly tokenId: string;
  readonly tokenRef: string;
  readonly card: Card;
  readonly par: string;
  readonly requestorParticipantId: string;
  readonly walletCustomerId: string;
  readonly atc: number;
  /** The limited-use key the cryptogram was made under. */
  readonly keyCounter: number;
}

export type TokenParty = { readonly kind: 'wallet'; readonly participantId: string; readonly customerId?: string } | { readonly kind: 'issuer'; readonly participantId: string } | { readonly kind: 'customer'; readonly participantId: string; readonly customerId: string };

interface ProvisioningRow {
  id: string;
  requestor_participant_id: string;
  customer_id: string;
  card_id: string;
  issuer_participant_id: string;
  method: ProvisioningMethod;
  device_id: string | null;
  device_key: DevicePublicKey | null;
  device_key_thumbprint: string | null;
  channels: Channel[];
  status: ProvisioningStatus;
  step_up_method: 'otp' | 'totp' | null;
  code_hmac: string | null;
  attempts: number;
  max_attempts: number;
  expires_at: Date | null;
  token_id: string | null;
  created_at: Date;
}

interface TokenRow {
  id: string;
  token_ref: string;
  card_id: string;
  issuer_participant_id: string;
  requestor_participant_id: string;
  customer_id: string;
  token_sealed: string;
  token_last4: string;
  expiry: string;
  status: TokenStatus;
  suspended_by: string | null;
  channels: Channel[];
  device_id: string | null;
  device_key: DevicePublicKey | null;
  device_key_thumbprint: string | null;
  last_atc: number | null;
  last_used_at: Date | null;
  created_at: Date;
  updated_at: Date;
  key_counter: number | null;
  key_first_atc: number | null;
  key_last_atc: number | null;
  key_expires_at: Date | null;
  key_uses: number | null;
  key_last_used_at: Date | null;
  key_created_at: Date | null;
  par: string;
  pan_last4: string;
  brand: string;
  token_cryptogram: TokenCryptogramScheme;
  card_funding_account_id: string | null;
  card_type: string;
}

const TOKEN_SELECT = `select t.*, c.par, c.pan_last4, c.funding_account_id as card_funding_account_id, p.card_type, p.brand, p.token_cryptogram, k.key_counter, k.first_atc as key_first_atc, k.last_atc as key_last_atc, k.expires_at as key_expires_at,
                              k.uses as key_uses, k.last_used_at as key_last_used_at, k.created_at as key_created_at
                         from card_tokens t join cards c on c.id = t.card_id join card_products p on p.id = c.product_id
                         left join token_keys k on k.token_id = t.id and k.status = 'active'`;

const keyOf = (r: TokenRow): KeyInfo | null =>
  r.key_counter === null || r.key_first_atc === null || r.key_last_atc === null || r.key_expires_at === null || r.key_created_at === null
    ? null
    : { keyCounter: r.key_counter, firstAtc: r.key_first_atc, lastAtc: r.key_last_atc, expiresAt: r.key_expires_at, status: 'active', uses: r.key_uses ?? 0, lastUsedAt: r.key_last_used_at, createdAt: r.key_created_at };

const toToken = (r: TokenRow): WalletToken => ({
  id: r.id,
  tokenRef: r.token_ref,
  cardId: r.card_id,
  issuerParticipantId: r.issuer_participant_id,
  requestorParticipantId: r.requestor_participant_id,
  customerId: r.customer_id,
  tokenLast4: r.token_last4,
  expiry: r.expiry,
  status: r.status,
  suspendedBy: r.suspended_by,
  channels: r.channels,
  deviceId: r.device_id,
  deviceBound: r.device_key !== null,
  key: keyOf(r),
  lastAtc: r.last_atc,
  lastUsedAt: r.last_used_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  par: r.par,
  cardLast4: r.pan_last4,
  brand: r.brand,
  cryptogramScheme: r.token_cryptogram,
  creditAccountId: r.card_type === 'credit' ? r.card_funding_account_id : null,
});

export interface WalletTokenService {
  provision(tx: Queryable, actor: Actor, walletId: string, input: ProvisionInput): Promise<Result<ProvisionOutcome, TErr>>;
  /**
   * After a provisioning with typed card data was refused (and rolled back): counts the wrong attempt against the card,
   * when there is such a card and the data did not match, in the caller's transaction (which commits).
   */
  recordTypedFailure(tx: Queryable, source: Extract<ProvisionSource, { type: 'typed' }>): Promise<void>;
  /** Commits its own attempt count: call it in a transaction that commits even when it answers an error. */
  completeStepUp(tx: Queryable, actor: Actor, walletId: string, provisioningId: string, code: string, deviceSignature?: string): Promise<Result<ProvisionOutcome, TErr>>;
  /**
   * A new limited-use key for a device-bound token, on a request its device signed (a compact ES256 JWS of
   * {purpose: "replenish", tokenRef, keyCounter: the current key's counter}). The current key is superseded.
   */
  replenish(tx: Queryable, actor: Actor, walletId: string, tokenRef: string, deviceSignature: string): Promise<Result<LimitedUseKey, TErr>>;
  /**
   * Push provisioning: the issuer offers one of its active cards to a wallet, the cardholder having asked for it in the
   * issuer's app (cardholderConsent). The receipt is redeemed by that wallet only, once, within PUSH_RECEIPT_TTL_MS, as
   * the source of a provisioning; the issuer's own ID&V stands for the step-up.
   */
  createPushReceipt(tx: Queryable, actor: Actor, issuerId: string, cardId: string, input: { walletParticipantId: string; cardholderConsent: boolean }): Promise<Result<PushReceipt, TErr>>;
  /** Every limited-use key of one of the issuer's tokens, newest first, with its use (never the key itself). */
  listKeys(issuerId: string, cardId: string, tokenId: string): Promise<Result<KeyInfo[], TErr>>;
  getProvisioning(walletId: string, provisioningId: string, q?: Queryable): Promise<Provisioning | undefined>;
  /** The token's current limited-use key again, for an idempotent retry of the request that created the token (same wallet only). */
  reissue(walletId: string, tokenId: string, q?: Queryable): Promise<ProvisionedToken | undefined>;
  listForWallet(walletId: string, options: { customerId?: string; afterId?: string; limit: number }): Promise<WalletToken[]>;
  getForWallet(walletId: string, tokenRef: string, q?: Queryable): Promise<WalletToken | undefined>;
  /** Suspend / resume / delete, by the wallet (its own token), the issuer (a token of its card) or the customer. */
  act(tx: Queryable, actor: Actor, party: TokenParty, token: WalletToken, action: 'suspend' | 'resume' | 'delete'): Promise<Result<WalletToken, TErr>>;
  /** Every wallet holding a live token for the card behind one of this wallet's tokens (the customer's consent view). */
  consentList(walletId: string, tokenRef: string): Promise<Result<ConsentEntry[], TErr>>;
  /** The customer, through one of their wallets, deletes any token of the same card. */
  revokeByConsent(tx: Queryable, actor: Actor, walletId: string, tokenRef: string, entryId: string): Promise<Result<WalletToken, TErr>>;
  listForCard(issuerId: string, cardId: string): Promise<Result<ConsentEntry[], TErr>>;
  getForIssuer(issuerId: string, cardId: string, tokenId: string, q?: Queryable): Promise<WalletToken | undefined>;
  getRules(issuerId: string): Promise<ProvisioningRules>;
  setRules(tx: Queryable, actor: Actor, issuerId: string, rules: ProvisioningRulesInput): Promise<ProvisioningRules>;
  verifyTokenPayment(input: VerifyTokenPaymentInput, tx?: Queryable): Promise<Result<VerifiedTokenPayment, DomainError<TokenPaymentDeclineCode>>>;
  /**
   * Checks many presented tokens (by number, or by reference when the wallet presents its own token) WITHOUT locking
   * or writing anything: status, wallet domain, channel, expiry, the card, the cryptogram, and the counter against the
   * last one committed (a counter used earlier in the same call counts as used). The first, lock-free phase of a card
   * payment; claimTokenCounters then settles the counters under the token rows' locks.
   */
  checkTokenPayments(
    q: Queryable,
    inputs: readonly (Omit<VerifyTokenPaymentInput, 'requestorParticipantId' | 'country'> & { requestorParticipantId?: string; country: string })[],
  ): Promise<Result<VerifiedTokenPayment & { readonly expiry: string }, DomainError<TokenPaymentDeclineCode>>[]>;
  /**
   * Locks the token rows of these uses (in id order) and answers, per use, whether its token is still active and its
   * counter still beyond the last one committed (of two uses of one counter, the first wins). Writes nothing:
   * recordTokenUses stages the counters of the uses that went through.
   */
  claimTokenCounters(tx: Queryable, uses: readonly { tokenId: string; atc: number }[]): Promise<(DomainError<TokenPaymentDeclineCode> | undefined)[]>;
  recordTokenUses(tx: Queryable, uses: readonly { verified: VerifiedTokenPayment; channel: Channel; actingParticipantId: string }[]): Promise<void>;
}

/**
 * The checks of a presented token that need no database read of their own: the wallet that presents it, its state,
 * expiry and channel, its card's state, and the cryptogram (under the token key derived from the issuer's master key).
 * The counter is the caller's: it depends on how the token row was read.
 */
function checkPresentedToken(
  token: WalletToken,
  card: Card | undefined,
  input: Omit<VerifyTokenPaymentInput, 'requestorParticipantId' | 'tokenNumber'> & { tokenNumber: string; requestorParticipantId?: string | undefined },
  masterKeyHex: string,
  now: Date,
): DomainError<TokenPaymentDeclineCode> | undefined {
  const refuse = (code: TokenPaymentDeclineCode, message: string) => ({ code, message });
  // Another wallet's token gets the answer of a token that does not exist: presenting one learns nothing about it.
  if (input.requestorParticipantId !== undefined && token.requestorParticipantId !== input.requestorParticipantId) return refuse('token_unknown', 'unknown token');
  if (token.status !== 'active') return refuse('token_not_active', `the token is ${token.status}`);
  if (isExpired(token.expiry, now)) return refuse('token_expired', 'the token has expired');
  if (!token.channels.includes(input.channel)) return refuse('channel_not_allowed', `the token is not valid for ${input.channel}`);
  if (card === undefined || card.status !== 'active') return refuse('card_not_active', 'the card is not active');
  const currency = currencyNumeric(input.currency);
  const country = countryNumeric(input.country);
  const date = typeof input.date === 'string' ? input.date : input.date.toISOString().slice(2, 10).replace(/-/g, '');
  // The key of a cryptogram is the token's current limited-use key when the counter is at or past its first counter;
  // a counter below it belongs to a superseded key (or to none), which verifies nothing.
  const key = token.key;
  let valid = false;
  if (key !== null && currency !== undefined && country !== undefined && Number.isInteger(input.atc) && input.atc >= key.firstAtc && input.atc <= MAX_ATC) {
    try {
      valid = verifyTokenCryptogram({
        scheme: token.cryptogramScheme,
        tokenKeyHex: deriveLimitedUseKey(deriveTokenKey(masterKeyHex, input.tokenNumber, '00'), key.keyCounter),
        atc: input.atc,
        amountMinor: input.amountMinor,
        currencyNumeric: currency,
        countryNumeric: country,
        transactionDate: date,
        transactionType: input.type,
        unpredictableNumber: input.unpredictableNumber,
        cryptogramHex: input.cryptogram,
      });
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
    }
  }
  if (!valid || key === null) return refuse('cryptogram_invalid', 'the cryptogram does not verify');
  // A genuine cryptogram under a key that is used up or too old: the wallet must fetch a new key from its device.
  if (input.atc > key.lastAtc) return refuse('key_exhausted', 'the limited-use key has signed all its payments; replenish it');
  if (now >= key.expiresAt) return refuse('key_exhausted', 'the limited-use key has expired; replenish it');
  return undefined;
}

const verifiedOf = (token: WalletToken, card: Card, atc: number): VerifiedTokenPayment => ({
  // checkPresentedToken accepted it: the token has a current key.
  keyCounter: token.key?.keyCounter ?? 0,
  tokenId: token.id,
  tokenRef: token.tokenRef,
  card,
  par: card.par,
  requestorParticipantId: token.requestorParticipantId,
  walletCustomerId: token.customerId,
  atc,
});

/** The audit record of a token's use: who presented it, on which channel, with which counter. */
const tokenUsed = (v: VerifiedTokenPayment, channel: Channel, actingParticipantId: string): AuditEntry => ({
  actor: { type: 'participant', participantId: actingParticipantId },
  action: 'token.used',
  objectType: 'token',
  objectId: v.tokenId,
  details: { cardId: v.card.id, atc: v.atc, keyCounter: v.keyCounter, channel, requestorParticipantId: v.requestorParticipantId },
});

/** Token counters advanced by a batch of payments (the highest per token), written with the COMMIT. */
const counterFlusher: Flusher<readonly [tokenId: string, atc: number, at: string, keyCounter: number]> = {
  flush: async (tx, rows) => {
    const highest = new Map<string, readonly [number, string]>();
    for (const [id, atc, at] of rows) if ((highest.get(id)?.[0] ?? -1) < atc) highest.set(id, [atc, at]);
    // Each limited-use key's use, for the issuer: payments per (token, key).
    const perKey = new Map<string, { id: string; key: number; n: number; at: string }>();
    for (const [id, , at, key] of rows) {
      const k = `${id} ${key}`;
      const seen = perKey.get(k);
      perKey.set(k, { id, key, n: (seen?.n ?? 0) + 1, at });
    }
    const keys = [...perKey.values()];
    await tx.query(
      `update token_keys k set uses = k.uses + v.n, last_used_at = v.at::timestamptz from unnest($1::text[], $2::int4[], $3::int4[], $4::text[]) as v(id, kc, n, at) where k.token_id = v.id and k.key_counter = v.kc`,
      [keys.map((v) => v.id), keys.map((v) => v.key), keys.map((v) => v.n), keys.map((v) => v.at)],
    );
    return tx.query(`update card_tokens t set last_atc = v.atc, last_used_at = v.at::timestamptz from unnest($1::text[], $2::int4[], $3::text[]) as v(id, atc, at) where t.id = v.id`, [
      [...highest.keys()],
      [...highest.values()].map((v) => v[0]),
      [...highest.values()].map((v) => v[1]),
    ]);
  },
};

export function createWalletTokenService(deps: { db: Db; clock: Clock; vault: Vault; audit: AuditService; events: EventOutbox; cards: CardService; stepUp: Pick<StepUpService, 'verifyTotp'> }): WalletTokenService {
  const { db, clock, vault, audit, events, cards } = deps;

  let codeKeyPromise: Promise<Buffer> | undefined;
  const codeKey = () => (codeKeyPromise ??= vault.secret('index').then((k) => createHmac('sha256', k).update('hutong:step-up-hmac:v1').digest()));
  const codeHmac = async (provisioningId: string, code: string) => createHmac('sha256', await codeKey()).update(`${provisioningId}|${code}`).digest('base64url');
  let pushKeyPromise: Promise<Buffer> | undefined;
  const pushKey = () => (pushKeyPromise ??= vault.secret('index').then((k) => createHmac('sha256', k).update('hutong:push-receipt:v1').digest()));
  /** A receipt is its id and a MAC of it under a vault key: redeemable without the hub storing anything redeemable. */
  const pushReceiptOf = async (id: string) => `${id}.${createHmac('sha256', await pushKey()).update(id).digest('base64url')}`;
  const pushReceiptId = async (receipt: string): Promise<string | undefined> => {
    const id = receipt.split('.')[0] ?? '';
    const given = Buffer.from(receipt);
    const expected = Buffer.from(await pushReceiptOf(id));
    return given.length === expected.length && timingSafeEqual(given, expected) ? id : undefined;
  };

  const settings = async (q: Queryable, issuerId: string): Promise<{ masterKeyHex: string; rules: ProvisioningRules }> => {
    let [row] = await q.query<{ master_key_sealed: string; rules: Partial<ProvisioningRules> }>('select master_key_sealed, rules from issuer_token_settings where issuer_participant_id = $1', [issuerId]);
    if (row === undefined) {
      const now = clock.now();
      await q.query(
        `insert into issuer_token_settings (issuer_participant_id, master_key_sealed, rules, created_at, updated_at) values ($1, $2, $3, $4, $4)
         on conflict (issuer_participant_id) do nothing`,
        [issuerId, await vault.seal(randomBytes(16).toString('hex').toUpperCase()), DEFAULT_RULES, now],
      );
      [row] = await q.query<{ master_key_sealed: string; rules: Partial<ProvisioningRules> }>('select master_key_sealed, rules from issuer_token_settings where issuer_participant_id = $1', [issuerId]);
      if (row === undefined) throw new Error('issuer token settings vanished');
    }
    return { masterKeyHex: await vault.open(row.master_key_sealed), rules: { ...DEFAULT_RULES, ...row.rules } };
  };

  const tokenById = async (id: string, q: Queryable = db) => {
    const [row] = await q.query<TokenRow>(`${TOKEN_SELECT} where t.id = $1`, [id]);
    return row === undefined ? undefined : toToken(row);
  };

  const toProvisioning = (r: ProvisioningRow, card: Card): Provisioning => ({
    id: r.id,
    requestorParticipantId: r.requestor_participant_id,
    customerId: r.customer_id,
    method: r.method,
    status: r.status,
    stepUpMethod: r.step_up_method,
    attemptsRemaining: Math.max(0, r.max_attempts - r.attempts),
    expiresAt: r.expires_at,
    tokenId: r.token_id,
    cardLast4: card.last4,
    brand: card.brand,
    createdAt: r.created_at,
  });

  const provisioningRow = async (q: Queryable, walletId: string, id: string, lock = false) => {
    const [row] = await q.query<ProvisioningRow>(`select * from token_provisionings where id = $1 and requestor_participant_id = $2${lock ? ' for update' : ''}`, [id, walletId]);
    return row;
  };


  /**
   * Makes key number `keyCounter` of a token, for the counters after `lastAtc` (the highest one used), under the
   * issuer's key rules; the caller holds the token row's lock and has superseded the previous key.
   */
  const makeKey = async (tx: Queryable, tokenId: string, tokenNumber: string, keyCounter: number, lastAtc: number | null, masterKeyHex: string, rules: ProvisioningRules): Promise<LimitedUseKey | undefined> => {
    const firstAtc = (lastAtc ?? 0) + 1;
    if (firstAtc > MAX_ATC || keyCounter > 0xffff) return undefined;
    const now = clock.now();
    const info: KeyInfo = {
      keyCounter,
      firstAtc,
      lastAtc: Math.min(MAX_ATC, firstAtc + rules.keyMaxTransactions - 1),
      expiresAt: new Date(now.getTime() + rules.keyTtlHours * 3_600_000),
      status: 'active',
      uses: 0,
      lastUsedAt: null,
      createdAt: now,
    };
    await tx.query(`insert into token_keys (token_id, key_counter, first_atc, last_atc, expires_at, status, uses, created_at) values ($1, $2, $3, $4, $5, 'active', 0, $6)`, [
      tokenId,
      keyCounter,
      info.firstAtc,
      info.lastAtc,
      info.expiresAt,
      now,
    ]);
    return { ...info, key: deriveLimitedUseKey(deriveTokenKey(masterKeyHex, tokenNumber, '00'), keyCounter) };
  };

  const createToken = async (tx: Queryable, actor: Actor, prov: ProvisioningRow, card: Card): Promise<ProvisionedToken> => {
    const { masterKeyHex, rules } = await settings(tx, card.issuerParticipantId);
    const now = clock.now();
    const id = newId('tok');
    const tokenRef = newId('tref');
    const expiry = expiryAfter(now, TOKEN_VALIDITY_YEARS);
    let tokenNumber: string | undefined;
    for (let attempt = 0; attempt < 20 && tokenNumber === undefined; attempt++) {
      const candidate = randomCardNumber(TOKEN_BIN_PREFIXES[0] ?? '489537', TOKEN_LENGTH);
      const rows = await tx.query<{ id: string }>(
        `insert into card_tokens (id, token_ref, card_id, issuer_participant_id, requestor_participant_id, customer_id, provisioning_id, token_sealed, token_index,
                                  token_last4, expiry, status, channels, device_id, device_key, device_key_thumbprint, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'active', $12, $13, $14, $15, $16, $16) on conflict (token_index) do nothing returning id`,
        [id, tokenRef, card.id, card.issuerParticipantId, prov.requestor_participant_id, prov.customer_id, prov.id, await vault.seal(candidate), await vault.indexHash(candidate), candidate.slice(-4), expiry, prov.channels, prov.device_id, prov.device_key, prov.device_key_thumbprint, now],
      );
      if (rows.length === 1) tokenNumber = candidate;
    }
    if (tokenNumber === undefined) throw new Error('no free token number');
    const limitedUseKey = await makeKey(tx, id, tokenNumber, 1, null, masterKeyHex, rules);
    if (limitedUseKey === undefined) throw new Error('a new token has room for keys');
    await tx.query(`update token_provisionings set status = 'approved', token_id = $2, updated_at = $3 where id = $1`, [prov.id, id, now]);
    await audit.record(tx, { actor, action: 'token.provisioned', objectType: 'token', objectId: id, details: { cardId: card.id, requestorParticipantId: prov.requestor_participant_id, method: prov.method, provisioningId: prov.id } });
    await events.emit(tx, { participantId: card.issuerParticipantId, type: 'token.provisioned', data: { cardId: card.id, tokenId: id, walletParticipantId: prov.requestor_participant_id, method: prov.method } });
    const token = await tokenById(id, tx);
    if (token === undefined) throw new Error('token vanished');
    return { token, tokenNumber, limitedUseKey };
  };

  const resolveCard = async (tx: Queryable, walletId: string, source: ProvisionSource): Promise<Result<Card, TErr>> => {
    if (source.type === 'push_receipt') {
      const id = await pushReceiptId(source.receipt);
      // Locked: of two redemptions at once, the second waits and finds it redeemed.
      const [row] = id === undefined ? [] : await tx.query<{ card_id: string; status: 'issued' | 'redeemed'; expires_at: Date }>(
        'select card_id, status, expires_at from token_push_receipts where id = $1 and wallet_participant_id = $2 for update',
        [id, walletId],
      );
      if (row === undefined) return err('push_receipt_invalid', 'no such push receipt for this wallet');
      if (row.status === 'redeemed') return err('push_receipt_used', 'the push receipt was redeemed already');
      if (clock.now() >= row.expires_at) return err('push_receipt_expired', 'the push receipt has expired; ask the bank’s app again');
      const card = await cards.getById(row.card_id, tx);
      if (card === undefined) throw new Error('card vanished');
      return ok(card);
    }
    if (source.type === 'typed') {
      const digits = source.cardNumber.replace(/[ -]/g, '');
      const match = await cards.matchCardData(digits, source.expiry, source.cvv, tx);
      // One answer for "no such card" and "wrong expiry or CVV": the request learns nothing about which.
      if (match === undefined || !match.matches) return err('card_data_invalid', 'the card details were not accepted');
      return ok(match.card);
    }
    let cardId: string | undefined;
    if (source.type === 'token_ref') {
      const [row] = await tx.query<{ card_id: string }>(`select card_id from card_tokens where token_ref = $1 and status <> 'deleted'`, [source.tokenRef]);
      cardId = row?.card_id;
    } else {
      cardId = source.cardRef;
    }
    const card = cardId === undefined ? undefined : await cards.getById(cardId, tx);
    if (card === undefined || card.status === 'replaced' || card.status === 'cancelled') return err('reference_not_found', 'no card behind this reference');
    return ok(card);
  };

  const reveal = async (token: WalletToken, q: Queryable): Promise<ProvisionedToken | undefined> => {
    const [row] = await q.query<{ token_sealed: string }>('select token_sealed from card_tokens where id = $1', [token.id]);
    if (row === undefined) throw new Error('token vanished');
    const tokenNumber = await vault.open(row.token_sealed);
    const { masterKeyHex } = await settings(q, token.issuerParticipantId);
    if (token.key === null) return undefined;
    return { token, tokenNumber, limitedUseKey: { ...token.key, key: deriveLimitedUseKey(deriveTokenKey(masterKeyHex, tokenNumber, '00'), token.key.keyCounter) } };
  };

  const entries = async (cardId: string): Promise<ConsentEntry[]> => {
    const rows = await db.query<{ id: string; requestor_participant_id: string; name: string; status: TokenStatus; suspended_by: string | null; token_last4: string; device_id: string | null; created_at: Date; last_used_at: Date | null }>(
      `select t.id, t.requestor_participant_id, p.name, t.status, t.suspended_by, t.token_last4, t.device_id, t.created_at, t.last_used_at
         from card_tokens t join participants p on p.id = t.requestor_participant_id
        where t.card_id = $1 and t.status <> 'deleted' order by t.created_at, t.id limit $2`,
      [cardId, MAX_TOKENS_PER_CARD],
    );
    return rows.map((r) => ({
      id: r.id,
      walletParticipantId: r.requestor_participant_id,
      walletName: r.name,
      status: r.status,
      suspendedBy: r.suspended_by,
      tokenLast4: r.token_last4,
      deviceId: r.device_id,
      addedAt: r.created_at,
      lastUsedAt: r.last_used_at,
    }));
  };

  const act: WalletTokenService['act'] = async (tx, actor, party, token, action) => {
    const [locked] = await tx.query<{ status: TokenStatus; suspended_by: string | null }>('select status, suspended_by from card_tokens where id = $1 for update', [token.id]);
    if (locked === undefined) return err('token_not_found', 'no such token');
    if (locked.status === 'deleted') return err('token_state', 'the token is deleted', { status: 'deleted' });
    const by = party.kind;
    let status: TokenStatus;
    let suspendedBy: string | null;
    if (action === 'suspend') {
      if (locked.status !== 'active') return err('token_state', `the token is ${locked.status}`, { status: locked.status });
      status = 'suspended';
      suspendedBy = by;
    } else if (action === 'resume') {
      if (locked.status !== 'suspended') return err('token_state', `the token is ${locked.status}`, { status: locked.status });
      // A card-level suspension lifts with the card; the issuer may lift anyone's; others only their own.
      if (locked.suspended_by === 'card' || (by !== 'issuer' && locked.suspended_by !== by)) {
        return err('token_state', `the token was suspended by the ${locked.suspended_by ?? 'hub'}`, { suspendedBy: locked.suspended_by });
      }
      const card = await cards.getById(token.cardId, tx);
      if (card?.status !== 'active') return err('card_state', 'the card is not active');
      status = 'active';
      suspendedBy = null;
    } else {
      status = 'deleted';
      suspendedBy = locked.suspended_by;
    }
    await tx.query('update card_tokens set status = $2, suspended_by = $3, updated_at = $4 where id = $1', [token.id, status, suspendedBy, clock.now()]);
    const auditAction = ({ suspend: 'token.suspended', resume: 'token.resumed', delete: 'token.deleted' } as const)[action];
    await audit.record(tx, { actor, action: auditAction, objectType: 'token', objectId: token.id, details: { cardId: token.cardId, by, requestorParticipantId: token.requestorParticipantId } });
    const data = { tokenRef: token.tokenRef, status, by };
    await events.emit(tx, { participantId: token.requestorParticipantId, type: auditAction, data });
    if (party.participantId !== token.issuerParticipantId) {
      await events.emit(tx, { participantId: token.issuerParticipantId, type: auditAction, data: { cardId: token.cardId, tokenId: token.id, status, by, walletParticipantId: token.requestorParticipantId } });
    }
    const fresh = await tokenById(token.id, tx);
    if (fresh === undefined) throw new Error('token vanished');
    return ok(fresh);
  };

  const getForWallet = async (walletId: string, tokenRef: string, q: Queryable = db) => {
    const [row] = await q.query<TokenRow>(`${TOKEN_SELECT} where t.token_ref = $1 and t.requestor_participant_id = $2`, [tokenRef, walletId]);
    return row === undefined ? undefined : toToken(row);
  };

  return {
    async provision(tx, actor, walletId, input) {
      if (!input.consent) return err('consent_required', "the customer's consent to add the card is required (consent: true)");
      const [customer] = await tx.query<{ id: string }>('select id from customers where id = $1 and participant_id = $2', [input.customerId, walletId]);
      if (customer === undefined) return err('customer_not_found', 'no such customer', { customerId: input.customerId });
      const resolved = await resolveCard(tx, walletId, input.source);
      if (!resolved.ok) return resolved;
      const card = resolved.value;
      if (card.status !== 'active') return err('card_state', 'the card cannot be added to a wallet now', { status: card.status });
      const deviceId = input.deviceId ?? null;
      // Every new token is bound to a device key (tokens made before binding was required may have none).
      const deviceKey = input.devicePublicKey;
      const thumbprint = await deviceKeyThumbprint(deviceKey);
      if (thumbprint === undefined) return err('device_key_invalid', 'devicePublicKey is not an ECDSA P-256 public key');
      const [{ n } = { n: 0n }] = await tx.query<{ n: bigint }>(`select count(*) as n from card_tokens where card_id = $1 and status <> 'deleted'`, [card.id]);
      if (n >= BigInt(MAX_TOKENS_PER_CARD)) return err('token_exists', `a card holds at most ${MAX_TOKENS_PER_CARD} tokens`);
      const [dup] = await tx.query<{ token_ref: string }>(
        `select token_ref from card_tokens where card_id = $1 and requestor_participant_id = $2 and customer_id = $3 and status <> 'deleted'
            and (coalesce(device_id, '') = coalesce($4, '') or device_key_thumbprint = $5)`,
        [card.id, walletId, input.customerId, deviceId, thumbprint],
      );
      if (dup !== undefined) return err('token_exists', 'this wallet already holds a token for this card on this device', { tokenRef: dup.token_ref });

      const { rules } = await settings(tx, card.issuerParticipantId);
      const method: ProvisioningMethod = input.source.type === 'push_receipt' ? 'push' : input.source.type;
      const decisions: RuleDecision[] = [method === 'typed' ? rules.typed : rules.byReference];
      const [seen] = await tx.query<{ id: string }>(
        `select id from card_tokens where card_id = $1 and requestor_participant_id = $2 and customer_id = $3 and device_id is not distinct from $4 limit 1`,
        [card.id, walletId, input.customerId, deviceId],
      );
      if (seen === undefined) decisions.push(rules.newDevice);
      {
        // Moving a card to another device: the customer held it in this wallet on a device with another key. Only the
        // issuer's ID&V (a step-up) binds it to the new one, whatever the rules say for a first device.
        const [moved] = await tx.query<{ id: string }>(
          `select id from card_tokens where card_id = $1 and requestor_participant_id = $2 and customer_id = $3 and device_key_thumbprint is not null and device_key_thumbprint <> $4 limit 1`,
          [card.id, walletId, input.customerId, thumbprint],
        );
        if (moved !== undefined) decisions.push('step_up');
      }
      // A push comes from the issuer's own app, where the cardholder signed in: that is the issuer's ID&V.
      if (method === 'push') decisions.splice(0, decisions.length, 'approve');
      const decision: RuleDecision = decisions.includes('decline') ? 'decline' : decisions.includes('step_up') ? 'step_up' : 'approve';

      const id = newId('prv');
      const now = clock.now();
      const channels = [...new Set(input.channels ?? ['qr', 'tap', 'online'])];
      let stepUpMethod: 'otp' | 'totp' | null = null;
      let code: string | undefined;
      if (decision === 'step_up') {
        const [auth] = await tx.query<{ customer_id: string }>('select customer_id from customer_authenticators where participant_id = $1 and customer_id = $2', [card.issuerParticipantId, card.customerId]);
        stepUpMethod = auth !== undefined ? 'totp' : 'otp';
        if (stepUpMethod === 'otp') code = newOneTimeCode();
      }
      const status: ProvisioningStatus = decision === 'decline' ? 'declined' : decision === 'step_up' ? 'pending_step_up' : 'approved';
      const [row] = await tx.query<ProvisioningRow>(
        `insert into token_provisionings (id, requestor_participant_id, customer_id, card_id, issuer_participant_id, method, device_id, channels, status, step_up_method,
                                          code_hmac, attempts, max_attempts, expires_at, created_at, updated_at, device_key, device_key_thumbprint)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, $13, $14, $14, $15, $16) returning *`,
        [id, walletId, input.customerId, card.id, card.issuerParticipantId, method, deviceId, channels, status, stepUpMethod, code === undefined ? null : await codeHmac(id, code), STEP_UP_MAX_ATTEMPTS, decision === 'step_up' ? new Date(now.getTime() + STEP_UP_TTL_MS) : null, now, deviceKey, thumbprint],
      );
      if (row === undefined) throw new Error('insert returned nothing');
      await audit.record(tx, { actor, action: `token.provisioning_${decision === 'approve' ? 'approved' : decision === 'decline' ? 'declined' : 'step_up'}`, objectType: 'token_provisioning', objectId: id, details: { cardId: card.id, method, stepUpMethod } });
      if (decision === 'step_up') {
        await events.emit(tx, {
          participantId: card.issuerParticipantId,
          type: 'token.step_up_requested',
          data: {
            provisioningId: id,
            cardId: card.id,
            customerId: card.customerId,
            walletParticipantId: walletId,
            method: stepUpMethod,
            expiresAt: row.expires_at?.toISOString() ?? null,
            // Only for the issuer: the code, encrypted under a key derived from the issuer's webhook secret.
            ...(code !== undefined ? { codeSealed: await sealForParticipant(tx, vault, card.issuerParticipantId, code, id) } : {}),
          },
        });
      }
      if (decision === 'approve') {
        const provisioned = await createToken(tx, actor, row, card);
        if (input.source.type === 'push_receipt') {
          const pushId = await pushReceiptId(input.source.receipt);
          await tx.query(`update token_push_receipts set status = 'redeemed', customer_id = $2, customer_consent_at = $3, token_id = $4, redeemed_at = $3 where id = $1`, [pushId, input.customerId, now, provisioned.token.id]);
          await tx.query('update token_provisionings set push_receipt_id = $2 where id = $1', [id, pushId]);
          await audit.record(tx, { actor, action: 'token.push_redeemed', objectType: 'token_push_receipt', objectId: pushId ?? '', details: { cardId: card.id, tokenId: provisioned.token.id, customerId: input.customerId } });
        }
        const fresh = await provisioningRow(tx, walletId, id);
        if (fresh === undefined) throw new Error('provisioning vanished');
        return ok({ provisioning: toProvisioning(fresh, card), provisioned });
      }
      return ok({ provisioning: toProvisioning(row, card) });
    },

    async completeStepUp(tx, actor, walletId, provisioningId, code, deviceSignature) {
      const row = await provisioningRow(tx, walletId, provisioningId, true);
      if (row === undefined) return err('provisioning_not_found', 'no such provisioning');
      const card = await cards.getById(row.card_id, tx);
      if (card === undefined) throw new Error('card vanished');
      if (row.status !== 'pending_step_up') return err('provisioning_state', `the provisioning is ${row.status}`, { status: row.status, tokenId: row.token_id });
      // The answer of a device-bound provisioning comes from that device: the wallet's server alone cannot complete it.
      // Refused before the code is looked at, so it costs no attempt.
      if (row.device_key !== null && (deviceSignature === undefined || !(await verifyDeviceStatement(row.device_key, deviceSignature, { purpose: 'step_up', provisioningId: row.id })))) {
        return err('device_signature_invalid', 'the step-up answer is not signed by the device the card is being added to');
      }
      const now = clock.now();
      if (row.expires_at === null || now >= row.expires_at) {
        await tx.query(`update token_provisionings set status = 'expired', updated_at = $2 where id = $1`, [row.id, now]);
        await audit.record(tx, { actor, action: 'token.step_up_expired', objectType: 'token_provisioning', objectId: row.id });
        return err('step_up_expired', 'the code has expired; start the provisioning again');
      }
      if (row.attempts >= row.max_attempts) return err('step_up_locked', 'too many wrong codes; start the provisioning again');
      let valid = false;
      if (row.step_up_method === 'otp' && row.code_hmac !== null && /^[0-9]{6}$/.test(code)) {
        const given = Buffer.from(await codeHmac(row.id, code));
        const expected = Buffer.from(row.code_hmac);
        valid = given.length === expected.length && timingSafeEqual(given, expected);
      } else if (row.step_up_method === 'totp') {
        // The cardholder's authenticator app, enrolled at the issuer (a used time step is refused: no replay).
        valid = await deps.stepUp.verifyTotp(tx, card.issuerParticipantId, card.customerId, code);
      }
      if (!valid) {
        const attempts = row.attempts + 1;
        const locked = attempts >= row.max_attempts;
        await tx.query(`update token_provisionings set attempts = $2, status = $3, updated_at = $4 where id = $1`, [row.id, attempts, locked ? 'failed' : 'pending_step_up', now]);
        await audit.record(tx, { actor, action: 'token.step_up_failed', objectType: 'token_provisioning', objectId: row.id, details: { attempts } });
        return locked
          ? err('step_up_locked', 'too many wrong codes; start the provisioning again', { attemptsRemaining: 0 })
          : err('step_up_failed', 'the code was not accepted', { attemptsRemaining: row.max_attempts - attempts });
      }
      if (card.status !== 'active') return err('card_state', 'the card cannot be added to a wallet now', { status: card.status });
      await tx.query('update token_provisionings set code_hmac = null where id = $1', [row.id]);
      const provisioned = await createToken(tx, actor, row, card);
      const fresh = await provisioningRow(tx, walletId, row.id);
      if (fresh === undefined) throw new Error('provisioning vanished');
      return ok({ provisioning: toProvisioning(fresh, card), provisioned });
    },

    async getProvisioning(walletId, provisioningId, q = db) {
      const row = await provisioningRow(q, walletId, provisioningId);
      if (row === undefined) return undefined;
      const card = await cards.getById(row.card_id, q);
      return card === undefined ? undefined : toProvisioning(row, card);
    },

    async replenish(tx, actor, walletId, tokenRef, deviceSignature) {
      const token = await getForWallet(walletId, tokenRef, tx);
      if (token === undefined) return err('token_not_found', 'no such token');
      const [locked] = await tx.query<{ status: TokenStatus; device_key: DevicePublicKey | null; last_atc: number | null; token_sealed: string }>(
        'select status, device_key, last_atc, token_sealed from card_tokens where id = $1 for update',
        [token.id],
      );
      if (locked === undefined) return err('token_not_found', 'no such token');
      if (locked.status !== 'active') return err('token_state', `the token is ${locked.status}`, { status: locked.status });
      if (locked.device_key === null) return err('device_not_bound', 'the token is bound to no device: add the card again from the device');
      const [current] = await tx.query<{ key_counter: number }>(`select key_counter from token_keys where token_id = $1 and status = 'active'`, [token.id]);
      const keyCounter = current?.key_counter ?? 0;
      if (!(await verifyDeviceStatement(locked.device_key, deviceSignature, { purpose: 'replenish', tokenRef: token.tokenRef, keyCounter }))) {
        // Also a signature over another counter: a replayed request for a key already replaced.
        return err('device_signature_invalid', "the request is not signed by the token's device for its current key");
      }
      const { masterKeyHex, rules } = await settings(tx, token.issuerParticipantId);
      await tx.query(`update token_keys set status = 'superseded' where token_id = $1 and status = 'active'`, [token.id]);
      const made = await makeKey(tx, token.id, await vault.open(locked.token_sealed), keyCounter + 1, locked.last_atc, masterKeyHex, rules);
      if (made === undefined) return err('token_state', "the token's transaction counter is used up: add the card again", { status: 'exhausted' });
      await audit.record(tx, { actor, action: 'token.keys_replenished', objectType: 'token', objectId: token.id, details: { cardId: token.cardId, keyCounter: made.keyCounter, firstAtc: made.firstAtc, lastAtc: made.lastAtc } });
      const data = { keyCounter: made.keyCounter, firstAtc: made.firstAtc, lastAtc: made.lastAtc, expiresAt: made.expiresAt.toISOString() };
      await events.emit(tx, { participantId: token.requestorParticipantId, type: 'token.keys_replenished', data: { tokenRef: token.tokenRef, ...data } });
      await events.emit(tx, { participantId: token.issuerParticipantId, type: 'token.keys_replenished', data: { cardId: token.cardId, tokenId: token.id, walletParticipantId: token.requestorParticipantId, ...data } });
      return ok(made);
    },

    async createPushReceipt(tx, actor, issuerId, cardId, input) {
      if (!input.cardholderConsent) return err('consent_required', "the cardholder's consent, given in your app, is required (cardholderConsent: true)");
      const card = await cards.get(issuerId, cardId, tx);
      if (card === undefined) return err('card_not_found', 'no such card');
      if (card.status !== 'active') return err('card_state', 'the card cannot be added to a wallet now', { status: card.status });
      const [wallet] = await tx.query<{ kind: string; status: string }>('select kind, status from participants where id = $1', [input.walletParticipantId]);
      if (wallet?.kind !== 'wallet' || wallet.status !== 'active') return err('push_wallet_invalid', 'the named participant is not an active wallet');
      const id = newId('ppr');
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + PUSH_RECEIPT_TTL_MS);
      await tx.query(
        `insert into token_push_receipts (id, card_id, issuer_participant_id, wallet_participant_id, status, expires_at, issuer_consent_at, created_at) values ($1, $2, $3, $4, 'issued', $5, $6, $6)`,
        [id, card.id, issuerId, input.walletParticipantId, expiresAt, now],
      );
      await audit.record(tx, { actor, action: 'token.push_receipt_created', objectType: 'token_push_receipt', objectId: id, details: { cardId: card.id, walletParticipantId: input.walletParticipantId, cardholderConsent: true } });
      return ok({ id, receipt: await pushReceiptOf(id), cardId: card.id, walletParticipantId: input.walletParticipantId, expiresAt });
    },

    async listKeys(issuerId, cardId, tokenId) {
      const token = await tokenById(tokenId);
      if (token === undefined || token.issuerParticipantId !== issuerId || token.cardId !== cardId) return err('token_not_found', 'no such token');
      const rows = await db.query<{ key_counter: number; first_atc: number; last_atc: number; expires_at: Date; status: 'active' | 'superseded'; uses: number; last_used_at: Date | null; created_at: Date }>(
        'select key_counter, first_atc, last_atc, expires_at, status, uses, last_used_at, created_at from token_keys where token_id = $1 order by key_counter desc limit 100',
        [token.id],
      );
      return ok(rows.map((r) => ({ keyCounter: r.key_counter, firstAtc: r.first_atc, lastAtc: r.last_atc, expiresAt: r.expires_at, status: r.status, uses: r.uses, lastUsedAt: r.last_used_at, createdAt: r.created_at })));
    },

    async reissue(walletId, tokenId, q = db) {
      const token = await tokenById(tokenId, q);
      if (token === undefined || token.requestorParticipantId !== walletId) return undefined;
      return reveal(token, q);
    },

    async listForWallet(walletId, options) {
      const rows = await db.query<TokenRow>(
        `${TOKEN_SELECT} where t.requestor_participant_id = $1 and ($2::text is null or t.customer_id = $2) and ($3::text is null or t.token_ref > $3) order by t.token_ref limit $4`,
        [walletId, options.customerId ?? null, options.afterId ?? null, options.limit],
      );
      return rows.map(toToken);
    },
    getForWallet,
    act,

    async consentList(walletId, tokenRef) {
      const mine = await getForWallet(walletId, tokenRef);
      if (mine === undefined || mine.status === 'deleted') return err('token_not_found', 'no such token');
      return ok(await entries(mine.cardId));
    },

    async revokeByConsent(tx, actor, walletId, tokenRef, entryId) {
      const mine = await getForWallet(walletId, tokenRef, tx);
      if (mine === undefined || mine.status === 'deleted') return err('token_not_found', 'no such token');
      const target = await tokenById(entryId, tx);
      if (target === undefined || target.cardId !== mine.cardId) return err('token_not_found', 'no such wallet entry for this card');
      return act(tx, actor, { kind: 'customer', participantId: walletId, customerId: mine.customerId }, target, 'delete');
    },

    async listForCard(issuerId, cardId) {
      const card = await cards.get(issuerId, cardId);
      if (card === undefined) return err('card_not_found', 'no such card');
      return ok(await entries(card.id));
    },

    async getForIssuer(issuerId, cardId, tokenId, q = db) {
      const token = await tokenById(tokenId, q);
      return token !== undefined && token.issuerParticipantId === issuerId && token.cardId === cardId ? token : undefined;
    },

    async getRules(issuerId) {
      return (await settings(db, issuerId)).rules;
    },

    async setRules(tx, actor, issuerId, input) {
      const rules: ProvisioningRules = { ...DEFAULT_RULES, ...input };
      await settings(tx, issuerId);
      await tx.query('update issuer_token_settings set rules = $2, updated_at = $3 where issuer_participant_id = $1', [issuerId, rules, clock.now()]);
      await audit.record(tx, { actor, action: 'token.rules_set', objectType: 'issuer_token_settings', objectId: issuerId, details: { ...rules } });
      return rules;
    },

    async verifyTokenPayment(input, outer) {
      const run = async (tx: Queryable): Promise<Result<VerifiedTokenPayment, DomainError<TokenPaymentDeclineCode>>> => {
        let row: TokenRow | undefined;
        if (input.tokenRef !== undefined) [row] = await tx.query<TokenRow>(`${TOKEN_SELECT} where t.token_ref = $1`, [input.tokenRef]);
        else if (input.tokenNumber !== undefined) [row] = await tx.query<TokenRow>(`${TOKEN_SELECT} where t.token_index = $1`, [await vault.indexHash(input.tokenNumber)]);
        if (row === undefined) return err('token_unknown', 'unknown token');
        const token = toToken(row);
        const card = await cards.getById(token.cardId, tx);
        const tokenNumber = input.tokenNumber ?? (await vault.open(row.token_sealed));
        const { masterKeyHex } = await settings(tx, token.issuerParticipantId);
        const now = clock.now();
        const refused = checkPresentedToken(token, card, { ...input, tokenNumber }, masterKeyHex, now);
        if (refused !== undefined) return { ok: false, error: refused };
        // One statement: of two requests with the same counter, the second finds the row already moved on.
        const moved = await tx.query<{ id: string }>(
          `update card_tokens set last_atc = $2, last_used_at = $3 where id = $1 and status = 'active' and (last_atc is null or last_atc < $2) returning id`,
          [token.id, input.atc, now],
        );
        if (moved.length === 0) return err('atc_replayed', 'the transaction counter was already used');
        const verified = verifiedOf(token, card!, input.atc);
        await tx.query('update token_keys set uses = uses + 1, last_used_at = $3 where token_id = $1 and key_counter = $2', [token.id, verified.keyCounter, now]);
        await audit.record(tx, tokenUsed(verified, input.channel, input.actingParticipantId ?? input.requestorParticipantId));
        return ok(verified);
      };
      return outer !== undefined ? run(outer) : db.transaction(run);
    },

    async checkTokenPayments(q, inputs) {
      if (inputs.length === 0) return [];
      const indexes = await Promise.all(inputs.map((i) => (i.tokenNumber !== undefined ? vault.indexHash(i.tokenNumber) : undefined)));
      const refs = inputs.map((i) => (i.tokenNumber === undefined ? i.tokenRef : undefined));
      const rows = await q.query<TokenRow & { token_index: string; token_sealed: string }>(`${TOKEN_SELECT} where t.token_index = any($1::text[]) or t.token_ref = any($2::text[])`, [
        [...new Set(indexes.filter((x): x is string => x !== undefined))],
        [...new Set(refs.filter((x): x is string => x !== undefined))],
      ]);
      const byIndex = new Map(rows.map((r) => [r.token_index, r]));
      const byRef = new Map(rows.map((r) => [r.token_ref, r]));
      const issuerIds = [...new Set(rows.map((r) => r.issuer_participant_id))];
      const [cardsById, keys] = await pipeliner(db)([
        () => cards.getManyById(
            rows.map((r) => r.card_id),
            q,
          ),
        () => Promise.all(issuerIds.map(async (id) => [id, (await settings(q, id)).masterKeyHex] as const)),
      ]);
      const masterKeys = new Map(keys);
      const now = clock.now();
      const accepted = new Map<string, number>();
      const out: Result<VerifiedTokenPayment & { readonly expiry: string }, DomainError<TokenPaymentDeclineCode>>[] = [];
      for (const [i, input] of inputs.entries()) {
        const index = indexes[i];
        const ref = refs[i];
        const row = index !== undefined ? byIndex.get(index) : ref !== undefined ? byRef.get(ref) : undefined;
        if (row === undefined) {
          out.push(err('token_unknown', 'unknown token'));
          continue;
        }
        const token = toToken(row);
        const card = cardsById.get(token.cardId);
        // A wallet presenting its own token by reference: the number (for the key derivation) comes from the vault.
        const tokenNumber = input.tokenNumber ?? (await vault.open(row.token_sealed));
        const refused = checkPresentedToken(token, card, { ...input, tokenNumber }, masterKeys.get(token.issuerParticipantId)!, now);
        if (refused !== undefined) {
          out.push({ ok: false, error: refused });
          continue;
        }
        const last = Math.max(row.last_atc ?? -1, accepted.get(token.id) ?? -1);
        if (input.atc <= last) {
          out.push(err('atc_replayed', 'the transaction counter was already used'));
          continue;
        }
        accepted.set(token.id, input.atc);
        out.push(ok({ ...verifiedOf(token, card!, input.atc), expiry: token.expiry }));
      }
      return out;
    },

    async claimTokenCounters(tx, uses) {
      if (uses.length === 0) return [];
      const rows = await tx.query<{ id: string; status: TokenStatus; last_atc: number | null }>(
        'select id, status, last_atc from card_tokens where id = any($1::text[]) order by id for update',
        [[...new Set(uses.map((u) => u.tokenId))]],
      );
      const byId = new Map(rows.map((r) => [r.id, r]));
      const claimed = new Map<string, number>();
      return uses.map((u) => {
        const row = byId.get(u.tokenId);
        if (row === undefined || row.status !== 'active') return { code: 'token_not_active' as const, message: `the token is ${row?.status ?? 'gone'}` };
        // The row is locked: its last counter is the truth; a counter claimed earlier in this call counts as used.
        const last = Math.max(row.last_atc ?? -1, claimed.get(u.tokenId) ?? -1);
        if (u.atc <= last) return { code: 'atc_replayed' as const, message: 'the transaction counter was already used' };
        claimed.set(u.tokenId, u.atc);
        return undefined;
      });
    },

    async recordTokenUses(tx, uses) {
      if (uses.length === 0) return;
      // The rows are locked by claimTokenCounters: the counters go out with the COMMIT.
      const at = clock.now().toISOString();
      for (const u of uses) tx.hooks!.stage(counterFlusher, [u.verified.tokenId, u.verified.atc, at, u.verified.keyCounter]);
      for (const u of uses) await audit.record(tx, tokenUsed(u.verified, u.channel, u.actingParticipantId));
    },

    async recordTypedFailure(tx, source) {
      const match = await cards.matchCardData(source.cardNumber.replace(/[ -]/g, ''), source.expiry, source.cvv, tx);
      if (match !== undefined && !match.matches && !match.locked) await cards.recordCardDataFailure(tx, match.card.id);
    },

  };
}
