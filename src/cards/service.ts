import { createHmac, timingSafeEqual } from 'node:crypto';
import type { TokenCryptogramScheme } from '../emv/index.ts';
import type { Actor, AuditService } from '../audit/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { isCurrency } from '../platform/money.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import type { Vault } from '../platform/vault.ts';
import type { TokenPropagation } from './token-propagation.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import type { CardDeclineCode, CardsErrorCode } from './errors.ts';
import { CHANNELS, type Card, type CardControls, type CardProduct, type CardStatus, type CardType, type Channel, type IssuedCard } from './model.ts';
import { deriveCvv, expiryAfter, isExpired, maskNumber, newPar, overlapsTokenRange, randomCardNumber } from './numbers.ts';

type CErr = DomainError<CardsErrorCode | 'customer_not_found' | 'unknown_currency'>;

export interface NewProductInput {
  readonly name: string;
  readonly binPrefix: string;
  readonly panLength?: number;
  readonly brand: string;
  readonly currency: string;
  readonly cardType: CardType;
  readonly defaultCreditLimitMinor?: bigint;
  readonly validityYears?: number;
  readonly tokenCryptogram?: TokenCryptogramScheme;
  readonly demoKey?: string;
  readonly id?: string;
}

export interface IssueCardInput {
  readonly productId: string;
  readonly customerId: string;
  readonly fundingAccountId?: string;
  readonly creditLimitMinor?: bigint;
  readonly controls?: CardControls;
  readonly demoKey?: string;
  readonly id?: string;
}

/** Wrong attempts at typed card data before the card refuses typed data, and for how long it then refuses it. */
export const MAX_CARD_DATA_FAILURES = 5;
export const CARD_DATA_LOCK_MS = 24 * 3_600_000;

export interface ControlCheckInput {
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly mcc?: string;
  readonly country?: string;
  readonly channel?: Channel;
  /** What the card already spent today / this month (the payments issue sums its own authorisations). */
  readonly spentTodayMinor?: bigint;
  readonly spentMonthMinor?: bigint;
  readonly now?: Date;
}

/**
 * The card's own answer to a payment: undefined when it may go ahead, else a decline code. Pure: the payments issue
 * calls it with the card (cards.getById) and its running totals.
 */
export function checkControls(card: Pick<Card, 'status' | 'expiry' | 'currency' | 'controls'>, input: ControlCheckInput): CardDeclineCode | undefined {
  if (card.status !== 'active') return 'card_not_active';
  if (input.now !== undefined && isExpired(card.expiry, input.now)) return 'card_expired';
  if (input.currency !== card.currency) return 'currency_not_allowed';
  const c = card.controls;
  if (c.perTransactionMaxMinor !== undefined && input.amountMinor > c.perTransactionMaxMinor) return 'exceeds_transaction_limit';
  if (c.dailyLimitMinor !== undefined && (input.spentTodayMinor ?? 0n) + input.amountMinor > c.dailyLimitMinor) return 'exceeds_daily_limit';
  if (c.monthlyLimitMinor !== undefined && (input.spentMonthMinor ?? 0n) + input.amountMinor > c.monthlyLimitMinor) return 'exceeds_monthly_limit';
  if (input.mcc !== undefined) {
    if (c.blockedMccs?.includes(input.mcc) === true) return 'mcc_blocked';
    if (c.allowedMccs !== undefined && !c.allowedMccs.includes(input.mcc)) return 'mcc_blocked';
  } else if (c.allowedMccs !== undefined) return 'mcc_blocked';
  if (c.allowedCountries !== undefined && (input.country === undefined || !c.allowedCountries.includes(input.country))) return 'country_not_allowed';
  if (c.channels !== undefined && (input.channel === undefined || !c.channels.includes(input.channel))) return 'channel_not_allowed';
  return undefined;
}

const MAX_CONTROL_LIST = 100;

export function validateControls(c: CardControls): string | undefined {
  for (const [name, v] of [
    ['perTransactionMax', c.perTransactionMaxMinor],
    ['dailyLimit', c.dailyLimitMinor],
    ['monthlyLimit', c.monthlyLimitMinor],
  ] as const) {
    if (v !== undefined && v < 0n) return `${name} must not be negative`;
  }
  for (const list of [c.allowedMccs, c.blockedMccs]) {
    if (list !== undefined && (list.length > MAX_CONTROL_LIST || list.some((m) => !/^[0-9]{4}$/.test(m)))) return 'MCCs are 4-digit codes, at most 100';
  }
  if (c.allowedCountries !== undefined && (c.allowedCountries.length > MAX_CONTROL_LIST || c.allowedCountries.some((x) => !/^[A-Z]{2}$/.test(x)))) return 'countries are ISO 3166-1 alpha-2 codes';
  if (c.channels !== undefined && c.channels.some((x) => !(CHANNELS as readonly string[]).includes(x))) return `channels are ${CHANNELS.join(', ')}`;
  return undefined;
}

interface StoredControls {
  perTransactionMaxMinor?: string;
  dailyLimitMinor?: string;
  monthlyLimitMinor?: string;
  allowedMccs?: string[];
  blockedMccs?: string[];
  allowedCountries?: string[];
  channels?: Channel[];
}

function storeControls(c: CardControls): StoredControls {
  const out: StoredControls = {};
  if (c.perTransactionMaxMinor !== undefined) out.perTransactionMaxMinor = c.perTransactionMaxMinor.toString();
  if (c.dailyLimitMinor !== undefined) out.dailyLimitMinor = c.dailyLimitMinor.toString();
  if (c.monthlyLimitMinor !== undefined) out.monthlyLimitMinor = c.monthlyLimitMinor.toString();
  if (c.allowedMccs !== undefined) out.allowedMccs = [...c.allowedMccs];
  if (c.blockedMccs !== undefined) out.blockedMccs = [...c.blockedMccs];
  if (c.allowedCountries !== undefined) out.allowedCountries = [...c.allowedCountries];
  if (c.channels !== undefined) out.channels = [...c.channels];
  return out;
}

function loadControls(s: StoredControls): CardControls {
  return {
    ...(s.perTransactionMaxMinor !== undefined ? { perTransactionMaxMinor: BigInt(s.perTransactionMaxMinor) } : {}),
    ...(s.dailyLimitMinor !== undefined ? { dailyLimitMinor: BigInt(s.dailyLimitMinor) } : {}),
    ...(s.monthlyLimitMinor !== undefined ? { monthlyLimitMinor: BigInt(s.monthlyLimitMinor) } : {}),
    ...(s.allowedMccs !== undefined ? { allowedMccs: s.allowedMccs } : {}),
    ...(s.blockedMccs !== undefined ? { blockedMccs: s.blockedMccs } : {}),
    ...(s.allowedCountries !== undefined ? { allowedCountries: s.allowedCountries } : {}),
    ...(s.channels !== undefined ? { channels: s.channels } : {}),
  };
}

interface ProductRow {
  id: string;
  issuer_participant_id: string;
  name: string;
  bin_prefix: string;
  pan_length: number;
  brand: string;
  currency: string;
  card_type: CardType;
  default_credit_limit_minor: bigint | null;
  validity_years: number;
  token_cryptogram: TokenCryptogramScheme;
  created_at: Date;
}

const toProduct = (r: ProductRow): CardProduct => ({
  id: r.id,
  issuerParticipantId: r.issuer_participant_id,
  name: r.name,
  binPrefix: r.bin_prefix,
  panLength: r.pan_length,
  brand: r.brand,
  currency: r.currency,
  cardType: r.card_type,
  defaultCreditLimitMinor: r.default_credit_limit_minor,
  validityYears: r.validity_years,
  tokenCryptogram: r.token_cryptogram,
  createdAt: r.created_at,
});

interface CardRow {
  id: string;
  issuer_participant_id: string;
  product_id: string;
  customer_id: string;
  pan_sealed: string;
  pan_first6: string;
  pan_last4: string;
  expiry: string;
  status: CardStatus;
  par: string;
  funding_account_id: string | null;
  credit_limit_minor: bigint | null;
  repayment_account_id: string | null;
  controls: StoredControls;
  replaces_card_id: string | null;
  replaced_by_card_id: string | null;
  created_at: Date;
  updated_at: Date;
  brand: string;
  currency: string;
  card_type: CardType;
  pan_length: number;
}

const CARD_SELECT = `select c.*, p.brand, p.currency, p.card_type, p.pan_length from cards c join card_products p on p.id = c.product_id`;

const toCard = (r: CardRow): Card => ({
  id: r.id,
  issuerParticipantId: r.issuer_participant_id,
  productId: r.product_id,
  customerId: r.customer_id,
  first6: r.pan_first6,
  last4: r.pan_last4,
  maskedNumber: `${r.pan_first6}${'*'.repeat(Math.max(0, r.pan_length - 10))}${r.pan_last4}`,
  expiry: r.expiry,
  status: r.status,
  par: r.par,
  brand: r.brand,
  currency: r.currency,
  cardType: r.card_type,
  fundingAccountId: r.funding_account_id,
  creditLimitMinor: r.credit_limit_minor,
  repaymentAccountId: r.repayment_account_id,
  controls: loadControls(r.controls),
  replacesCardId: r.replaces_card_id,
  replacedByCardId: r.replaced_by_card_id,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** Where each lifecycle action may start from. */
const TRANSITIONS: Record<'activate' | 'freeze' | 'unfreeze' | 'report_lost' | 'replace' | 'cancel', readonly CardStatus[]> = {
  activate: ['inactive'],
  freeze: ['active'],
  unfreeze: ['frozen'],
  report_lost: ['inactive', 'active', 'frozen'],
  replace: ['inactive', 'active', 'frozen', 'lost', 'stolen'],
  cancel: ['inactive', 'active', 'frozen', 'lost', 'stolen'],
};

export type CardAction = keyof typeof TRANSITIONS;

const MAX_NUMBER_ATTEMPTS = 20;

export interface CardService {
  createProduct(tx: Queryable, actor: Actor, issuerId: string, input: NewProductInput): Promise<Result<CardProduct, CErr>>;
  getProduct(issuerId: string, productId: string, q?: Queryable): Promise<CardProduct | undefined>;
  listProducts(issuerId: string, options: { afterId?: string; limit: number }): Promise<CardProduct[]>;
  issue(tx: Queryable, actor: Actor, issuerId: string, input: IssueCardInput): Promise<Result<IssuedCard, CErr>>;
  /** The number and CVV of a card, for the issuer's own retry of an issuance (never for a wallet). */
  reveal(issuerId: string, cardId: string, q?: Queryable): Promise<IssuedCard | undefined>;
  /** Scoped to the issuer: another issuer's card is not found. */
  get(issuerId: string, cardId: string, q?: Queryable): Promise<Card | undefined>;
  /** Unscoped, for the hub's own services (tokens, payments). */
  getById(cardId: string, q?: Queryable): Promise<Card | undefined>;
  /** getById for many cards in one statement (unknown ids are absent from the map). */
  getManyById(cardIds: readonly string[], q?: Queryable): Promise<Map<string, Card>>;
  list(issuerId: string, options: { customerId?: string; afterId?: string; limit: number }): Promise<Card[]>;
  /**
   * The card with this number (by the vault's index hash) and whether expiry and CVV match; undefined if none. A card
   * locked after too many wrong attempts never matches (`locked`); a match clears the count of wrong attempts.
   */
  matchCardData(pan: string, expiry: string, cvv: string, q?: Queryable): Promise<{ card: Card; matches: boolean; locked: boolean } | undefined>;
  /**
   * Counts a wrong attempt at typed card data (in a transaction that commits although the request it belongs to was
   * refused); the MAX_CARD_DATA_FAILURES-th locks typed data out for CARD_DATA_LOCK_MS and tells the issuer.
   */
  recordCardDataFailure(tx: Queryable, cardId: string): Promise<{ locked: boolean }>;
  transition(tx: Queryable, actor: Actor, issuerId: string, cardId: string, action: Exclude<CardAction, 'replace'>, reason?: 'lost' | 'stolen'): Promise<Result<Card, CErr>>;
  /** A new number and expiry for the same account (same PAR): the tokens follow the new card and keep working. */
  replace(tx: Queryable, actor: Actor, issuerId: string, cardId: string): Promise<Result<IssuedCard, CErr>>;
  setControls(tx: Queryable, actor: Actor, issuerId: string, cardId: string, controls: CardControls): Promise<Result<Card, CErr>>;
  checkControls: typeof checkControls;
}

/** Opens a credit card's credit account (the ledger enforces its limit), in the issuing transaction. */
export type OpenCreditAccount = (input: { id: string; issuerId: string; customerId: string; currency: string; limitMinor: bigint }) => Promise<void>;

/** A credit card's own ledger account. */
export const creditAccountIdOf = (cardId: string) => `acc_credit_${cardId}`;
/** The card whose own credit account this is, or undefined for any other account. */
export const cardIdOfCreditAccount = (accountId: string): string | undefined => (accountId.startsWith('acc_credit_') ? accountId.slice('acc_credit_'.length) : undefined);

export function createCardService(deps: { db: Db; clock: Clock; vault: Vault; audit: AuditService; events: EventOutbox; tokens: TokenPropagation; openCreditAccount?: OpenCreditAccount }): CardService {
  const { db, clock, vault, audit, events, tokens } = deps;

  let cvvKeyPromise: Promise<Buffer> | undefined;
  const cvvKey = () => {
    cvvKeyPromise ??= vault.secret('index').then((k) => createHmac('sha256', k).update('hutong:cvv-key:v1').digest());
    return cvvKeyPromise;
  };

  const getById = async (cardId: string, q: Queryable = db) => {
    const [row] = await q.query<CardRow>(`${CARD_SELECT} where c.id = $1`, [cardId]);
    return row === undefined ? undefined : toCard(row);
  };
  const getManyById = async (cardIds: readonly string[], q: Queryable = db) => {
    if (cardIds.length === 0) return new Map<string, Card>();
    const rows = await q.query<CardRow>(`${CARD_SELECT} where c.id = any($1::text[])`, [[...new Set(cardIds)]]);
    return new Map(rows.map((r) => [r.id, toCard(r)]));
  };
  const get = async (issuerId: string, cardId: string, q: Queryable = db) => {
    const [row] = await q.query<CardRow>(`${CARD_SELECT} where c.id = $1 and c.issuer_participant_id = $2`, [cardId, issuerId]);
    return row === undefined ? undefined : toCard(row);
  };
  const lockCard = async (tx: Queryable, issuerId: string, cardId: string) => {
    const [row] = await tx.query<{ id: string }>('select id from cards where id = $1 and issuer_participant_id = $2 for update', [cardId, issuerId]);
    return row === undefined ? undefined : get(issuerId, cardId, tx);
  };
  const getProduct = async (issuerId: string, productId: string, q: Queryable = db) => {
    const [row] = await q.query<ProductRow>('select * from card_products where id = $1 and issuer_participant_id = $2', [productId, issuerId]);
    return row === undefined ? undefined : toProduct(row);
  };

  /** A fresh number in the product's range; the unique index on the index hash settles collisions. */
  const insertCard = async (
    tx: Queryable,
    product: CardProduct,
    fields: { id: string; customerId: string; par: string; fundingAccountId: string | null; creditLimitMinor: bigint | null; repaymentAccountId: string | null; controls: CardControls; replacesCardId: string | null; demoKey: string | null },
  ): Promise<{ pan: string; expiry: string }> => {
    const now = clock.now();
    const expiry = expiryAfter(now, product.validityYears);
    for (let attempt = 0; attempt < MAX_NUMBER_ATTEMPTS; attempt++) {
      const pan = randomCardNumber(product.binPrefix, product.panLength);
      const rows = await tx.query<{ id: string }>(
        `insert into cards (id, issuer_participant_id, product_id, customer_id, pan_sealed, pan_index, pan_first6, pan_last4, expiry, status, par,
                            funding_account_id, credit_limit_minor, controls, replaces_card_id, demo_key, created_at, updated_at, repayment_account_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'inactive', $10, $11, $12, $13, $14, $15, $16, $16, $17)
         on conflict (pan_index) do nothing returning id`,
        [
          fields.id,
          product.issuerParticipantId,
          product.id,
          fields.customerId,
          await vault.seal(pan),
          await vault.indexHash(pan),
          pan.slice(0, 6),
          pan.slice(-4),
          expiry,
          fields.par,
          fields.fundingAccountId,
          fields.creditLimitMinor,
          storeControls(fields.controls),
          fields.replacesCardId,
          fields.demoKey,
          now,
          fields.repaymentAccountId,
        ],
      );
      if (rows.length === 1) return { pan, expiry };
    }
    throw new Error(`no free card number in range ${product.binPrefix} after ${MAX_NUMBER_ATTEMPTS} attempts`);
  };

  const issued = async (card: Card, pan: string): Promise<IssuedCard> => ({ card, cardNumber: pan, cvv: deriveCvv(await cvvKey(), pan, card.expiry) });

  return {
    checkControls,
    getById,
    getManyById,
    get,
    getProduct,
    async createProduct(tx, actor, issuerId, input) {
      if (!isCurrency(input.currency)) return err('unknown_currency', `${input.currency} is not a supported ISO 4217 currency`, { currency: input.currency });
      if (!/^[0-9]{6,8}$/.test(input.binPrefix)) return err('invalid_controls', 'binPrefix must be 6 to 8 digits');
      if (overlapsTokenRange(input.binPrefix)) return err('bin_in_token_range', 'this BIN range overlaps the hub token range', { binPrefix: input.binPrefix });
      if (input.cardType === 'debit' && input.defaultCreditLimitMinor !== undefined) return err('invalid_credit_limit', 'a debit product has no credit limit');
      // Ranges of different products must not overlap either (one prefix of another).
      const [clash] = await tx.query<{ id: string }>(`select id from card_products where starts_with($1, bin_prefix) or starts_with(bin_prefix, $1) limit 1`, [input.binPrefix]);
      if (clash !== undefined) return err('bin_taken', 'this BIN range overlaps an existing card product', { binPrefix: input.binPrefix });
      const id = input.id ?? newId('cpr');
      const rows = await tx.query<ProductRow>(
        `insert into card_products (id, issuer_participant_id, name, bin_prefix, pan_length, brand, currency, card_type, default_credit_limit_minor, validity_years, demo_key, created_at, token_cryptogram)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) returning *`,
        [id, issuerId, input.name, input.binPrefix, input.panLength ?? 16, input.brand, input.currency, input.cardType, input.defaultCreditLimitMinor ?? null, input.validityYears ?? 4, input.demoKey ?? null, clock.now(), input.tokenCryptogram ?? 'visa_cvn18'],
      );
      const row = rows[0];
      if (row === undefined) throw new Error('insert returned nothing');
      await audit.record(tx, { actor, action: 'card_product.created', objectType: 'card_product', objectId: id, details: { binPrefix: input.binPrefix, cardType: input.cardType } });
      return ok(toProduct(row));
    },
    async listProducts(issuerId, options) {
      const rows = await db.query<ProductRow>(
        'select * from card_products where issuer_participant_id = $1 and ($2::text is null or id > $2) order by id limit $3',
        [issuerId, options.afterId ?? null, options.limit],
      );
      return rows.map(toProduct);
    },
    async issue(tx, actor, issuerId, input) {
      const product = await getProduct(issuerId, input.productId, tx);
      if (product === undefined) return err('card_product_not_found', 'no such card product', { productId: input.productId });
      const [customer] = await tx.query<{ id: string }>('select id from customers where id = $1 and participant_id = $2', [input.customerId, issuerId]);
      if (customer === undefined) return err('customer_not_found', 'no such customer', { customerId: input.customerId });
      if (product.cardType === 'debit' && input.creditLimitMinor !== undefined) return err('invalid_credit_limit', 'a debit card has no credit limit');
      const controls = input.controls ?? {};
      const invalid = validateControls(controls);
      if (invalid !== undefined) return err('invalid_controls', invalid);
      const id = input.id ?? newId('crd');
      const creditLimit = product.cardType === 'credit' ? (input.creditLimitMinor ?? product.defaultCreditLimitMinor ?? 0n) : null;
      // A credit card spends from its own credit account, whose limit the ledger enforces; the account the issuer names
      // is where repayments come from. (Without the ledger wired, the old behaviour: the named account funds it.)
      const credit = creditLimit !== null && deps.openCreditAccount !== undefined;
      if (credit) await deps.openCreditAccount!({ id: creditAccountIdOf(id), issuerId, customerId: input.customerId, currency: product.currency, limitMinor: creditLimit });
      const { pan } = await insertCard(tx, product, {
        id,
        customerId: input.customerId,
        par: newPar(),
        fundingAccountId: credit ? creditAccountIdOf(id) : (input.fundingAccountId ?? null),
        creditLimitMinor: creditLimit,
        repaymentAccountId: credit ? (input.fundingAccountId ?? null) : null,
        controls,
        replacesCardId: null,
        demoKey: input.demoKey ?? null,
      });
      await audit.record(tx, { actor, action: 'card.issued', objectType: 'card', objectId: id, details: { productId: product.id, customerId: input.customerId, masked: maskNumber(pan) } });
      const card = await get(issuerId, id, tx);
      if (card === undefined) throw new Error('card vanished inside its own transaction');
      return ok(await issued(card, pan));
    },
    async reveal(issuerId, cardId, q = db) {
      const [row] = await q.query<{ pan_sealed: string }>('select pan_sealed from cards where id = $1 and issuer_participant_id = $2', [cardId, issuerId]);
      const card = await get(issuerId, cardId, q);
      if (row === undefined || card === undefined) return undefined;
      return issued(card, await vault.open(row.pan_sealed));
    },
    async list(issuerId, options) {
      const rows = await db.query<CardRow>(
        `${CARD_SELECT} where c.issuer_participant_id = $1 and ($2::text is null or c.customer_id = $2) and ($3::text is null or c.id > $3) order by c.id limit $4`,
        [issuerId, options.customerId ?? null, options.afterId ?? null, options.limit],
      );
      return rows.map(toCard);
    },
    async matchCardData(pan, expiry, cvv, q = db) {
      const [row] = await q.query<{ id: string; card_data_failures: number; card_data_locked_until: Date | null }>(
        'select id, card_data_failures, card_data_locked_until from cards where pan_index = $1',
        [await vault.indexHash(pan)],
      );
      if (row === undefined) return undefined;
      const card = await getById(row.id, q);
      if (card === undefined) return undefined;
      const locked = row.card_data_locked_until !== null && row.card_data_locked_until.getTime() > clock.nowMs();
      const expected = deriveCvv(await cvvKey(), pan, card.expiry);
      const matches = !locked && card.expiry === expiry && expected.length === cvv.length && timingSafeEqual(Buffer.from(expected), Buffer.from(cvv));
      if (matches && row.card_data_failures > 0) await q.query('update cards set card_data_failures = 0 where id = $1', [card.id]);
      return { card, matches, locked };
    },
    async recordCardDataFailure(tx, cardId) {
      const now = clock.now();
      const [row] = await tx.query<{ card_data_failures: number; issuer_participant_id: string }>(
        `update cards set card_data_failures = card_data_failures + 1 where id = $1 returning card_data_failures, issuer_participant_id`,
        [cardId],
      );
      if (row === undefined || row.card_data_failures < MAX_CARD_DATA_FAILURES) return { locked: false };
      const until = new Date(now.getTime() + CARD_DATA_LOCK_MS);
      await tx.query('update cards set card_data_failures = 0, card_data_locked_until = $2 where id = $1', [cardId, until]);
      await audit.record(tx, { actor: { type: 'system' }, action: 'card.card_data_locked', objectType: 'card', objectId: cardId, details: { failures: MAX_CARD_DATA_FAILURES, until: until.toISOString() } });
      await events.emit(tx, { participantId: row.issuer_participant_id, type: 'card.card_data_locked', data: { cardId, failures: MAX_CARD_DATA_FAILURES, lockedUntil: until.toISOString() } });
      return { locked: true };
    },
    async transition(tx, actor, issuerId, cardId, action, reason) {
      const card = await lockCard(tx, issuerId, cardId);
      if (card === undefined) return err('card_not_found', 'no such card', { cardId });
      if (!TRANSITIONS[action].includes(card.status)) return err('card_state', `a ${card.status} card cannot be ${action.replace('_', ' ')}ed`, { status: card.status, action });
      const next: CardStatus =
        action === 'activate' || action === 'unfreeze' ? 'active' : action === 'freeze' ? 'frozen' : action === 'cancel' ? 'cancelled' : (reason ?? 'lost');
      await tx.query('update cards set status = $2, updated_at = $3 where id = $1', [cardId, next, clock.now()]);
      const auditAction = { activate: 'card.activated', freeze: 'card.frozen', unfreeze: 'card.unfrozen', report_lost: `card.reported_${next}`, cancel: 'card.cancelled' }[action];
      await audit.record(tx, { actor, action: auditAction, objectType: 'card', objectId: cardId, details: { from: card.status, to: next } });
      const updated = { ...card, status: next };
      if (action === 'freeze' || action === 'report_lost') await tokens.cardSuspended(tx, actor, updated, next);
      if (action === 'unfreeze') await tokens.cardResumed(tx, actor, updated);
      if (action === 'cancel') await tokens.cardCancelled(tx, actor, updated);
      const fresh = await get(issuerId, cardId, tx);
      if (fresh === undefined) throw new Error('card vanished');
      return ok(fresh);
    },
    async replace(tx, actor, issuerId, cardId) {
      const old = await lockCard(tx, issuerId, cardId);
      if (old === undefined) return err('card_not_found', 'no such card', { cardId });
      if (!TRANSITIONS.replace.includes(old.status)) return err('card_state', `a ${old.status} card cannot be replaced`, { status: old.status });
      const product = await getProduct(issuerId, old.productId, tx);
      if (product === undefined) throw new Error('card product vanished');
      const id = newId('crd');
      const { pan } = await insertCard(tx, product, {
        id,
        customerId: old.customerId,
        par: old.par,
        fundingAccountId: old.fundingAccountId,
        creditLimitMinor: old.creditLimitMinor,
        repaymentAccountId: old.repaymentAccountId,
        controls: old.controls,
        replacesCardId: old.id,
        demoKey: null,
      });
      // The replacement is usable at once when the old card was (or was only lost/frozen): the cardholder asked for it.
      const now = clock.now();
      await tx.query(`update cards set status = 'active', updated_at = $2 where id = $1`, [id, now]);
      await tx.query(`update cards set status = 'replaced', replaced_by_card_id = $2, updated_at = $3 where id = $1`, [old.id, id, now]);
      await audit.record(tx, { actor, action: 'card.replaced', objectType: 'card', objectId: old.id, details: { replacedBy: id, masked: maskNumber(pan), previousStatus: old.status } });
      const card = await get(issuerId, id, tx);
      if (card === undefined) throw new Error('card vanished');
      await tokens.cardReplaced(tx, actor, old, card);
      return ok(await issued(card, pan));
    },
    async setControls(tx, actor, issuerId, cardId, controls) {
      const invalid = validateControls(controls);
      if (invalid !== undefined) return err('invalid_controls', invalid);
      const rows = await tx.query<{ id: string }>(
        `update cards set controls = $3, updated_at = $4 where id = $1 and issuer_participant_id = $2 and status not in ('replaced', 'cancelled') returning id`,
        [cardId, issuerId, storeControls(controls), clock.now()],
      );
      if (rows.length === 0) {
        const exists = await get(issuerId, cardId, tx);
        return exists === undefined ? err('card_not_found', 'no such card', { cardId }) : err('card_state', `a ${exists.status} card has no controls to change`);
      }
      await audit.record(tx, { actor, action: 'card.controls_set', objectType: 'card', objectId: cardId, details: { controls: storeControls(controls) } });
      const card = await get(issuerId, cardId, tx);
      if (card === undefined) throw new Error('card vanished');
      return ok(card);
    },
  };
}

