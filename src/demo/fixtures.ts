import { randomBytes } from 'node:crypto';
import { customerAccountId } from '../accounts/index.ts';
import type { CardControls } from '../cards/index.ts';
import { countryNumeric, currencyNumeric } from '../cards/index.ts';
import { demoCustomerId, demoParticipantId } from './seed.ts';
import { encodeCpm } from '../emv/index.ts';
import { computeTokenCryptogram, type TokenCryptogramScheme } from '../emv/index.ts';
import type { Hub } from '../main.ts';
import { newId } from '../platform/ids.ts';
import { newDevice } from './device.ts';

/**
 * Shared by the payments tests, `hutong demo pay` and the authorize benchmark: a debit card at bank-a funded by a
 * ledger account, added by typing it in wallet A, then added to wallet B by reference to wallet A's token; and the
 * wallet-side cryptogram and CPM code. Uses only the other modules' public services and HTTP API.
 */
export type Caller = (as: string, method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; body: any }>;

export interface WalletToken {
  readonly wallet: string;
  readonly customerId: string;
  readonly tokenRef: string;
  readonly tokenNumber: string;
  readonly tokenKey: string;
  /** The card product's cryptogram (default visa_cvn18). */
  readonly scheme?: TokenCryptogramScheme;
  /** YYMM as a terminal reads it. */
  readonly expiryYymm: string;
  atc: number;
}

export interface CardInTwoWallets {
  readonly cardId: string;
  readonly fundingAccountId: string;
  readonly a: WalletToken;
  readonly b: WalletToken;
}

const SYSTEM = { type: 'system' } as const;
/**
 * The fixture's issuers let one limited-use key sign many payments for a long time: payment tests and the benchmark
 * pay hundreds of times with one token and move the clock by months, which is not what they test.
 */
const FIXTURE_KEY_TRANSACTIONS = 65_535;
const FIXTURE_KEY_HOURS = 26_280;

export async function cardInTwoWallets(
  hub: Hub,
  call: Caller,
  options: { depositMinor?: bigint; controls?: CardControls; /** bank-a's customer holding the card (default: the demo's 李伟) */ holderId?: string } = {},
): Promise<CardInTwoWallets> {
  const bankA = demoParticipantId('bank-a');
  const holder = options.holderId ?? demoCustomerId('li-at-bank-a');
  const fundingAccountId = customerAccountId(holder, 'CNY');
  const issued = await hub.db.transaction(async (tx) => {
    const opened = await hub.transfers.accounts.openCustomerAccount(tx, SYSTEM, bankA, holder, 'CNY');
    if (!opened.ok && opened.error.code !== 'customer_account_exists') throw new Error(`open account: ${opened.error.code}`);
    const dep = await hub.transfers.accounts.deposit(tx, SYSTEM, bankA, fundingAccountId, options.depositMinor ?? 1_000_000n, 'CNY', newId('dep'));
    if (!dep.ok) throw new Error(`deposit: ${dep.error.code}`);
    const card = await hub.cards.cards.issue(tx, SYSTEM, bankA, { productId: 'cpr_demo_bank_a_debit', customerId: holder, fundingAccountId, ...(options.controls !== undefined ? { controls: options.controls } : {}) });
    if (!card.ok) throw new Error(`issue: ${card.error.code}`);
    const active = await hub.cards.cards.transition(tx, SYSTEM, bankA, card.value.card.id, 'activate');
    if (!active.ok) throw new Error(`activate: ${active.error.code}`);
    await hub.cards.walletTokens.setRules(tx, SYSTEM, bankA, { typed: 'approve', byReference: 'approve', newDevice: 'approve', keyMaxTransactions: FIXTURE_KEY_TRANSACTIONS, keyTtlHours: FIXTURE_KEY_HOURS });
    return card.value;
  });
  const provision = async (wallet: string, customerKey: string, source: unknown, deviceId: string): Promise<WalletToken> => {
    const customerId = demoCustomerId(customerKey);
    const res = await call(wallet, 'POST', '/v1/wallet/tokens', { customerId, consent: true, deviceId, devicePublicKey: newDevice().publicKey, source }, { 'idempotency-key': newId('k') });
    if (res.status !== 201 || res.body.tokenNumber === undefined) throw new Error(`provision in ${wallet}: ${res.status} ${JSON.stringify(res.body)}`);
    const expiry = String(res.body.token.expiry); // MM/YY
    return { wallet, customerId, tokenRef: res.body.token.tokenRef, tokenNumber: res.body.tokenNumber, tokenKey: res.body.limitedUseKey.key, expiryYymm: `${expiry.slice(3, 5)}${expiry.slice(0, 2)}`, atc: 0 };
  };
  const a = await provision('wallet-a', 'li-at-wallet-a', { type: 'typed', cardNumber: issued.cardNumber, expiry: issued.card.expiry, cvv: issued.cvv }, 'phone-a');
  // Each wallet adds the card with its data (nothing here links the two wallet records: by reference needs that).
  const b = await provision('wallet-b', 'li-at-wallet-b', { type: 'typed', cardNumber: issued.cardNumber, expiry: issued.card.expiry, cvv: issued.cvv }, 'phone-b');
  return { cardId: issued.card.id, fundingAccountId, a, b };
}

/**
 * A card of any demo issuer in one wallet: the holder's hosted account (opened, funded) funds it. For tests that need
 * cards of two issuers (bank-b's HKD card pays merchant-b).
 */
export async function cardInWallet(
  hub: Hub,
  call: Caller,
  spec: { issuerKey: string; productId: string; currency: string; holderKey: string; wallet: string; walletCustomerKey: string; depositMinor?: bigint },
): Promise<{ cardId: string; fundingAccountId: string; token: WalletToken }> {
  const issuerId = demoParticipantId(spec.issuerKey);
  const holder = demoCustomerId(spec.holderKey);
  const fundingAccountId = customerAccountId(holder, spec.currency);
  const issued = await hub.db.transaction(async (tx) => {
    const opened = await hub.transfers.accounts.openCustomerAccount(tx, SYSTEM, issuerId, holder, spec.currency);
    if (!opened.ok && opened.error.code !== 'customer_account_exists') throw new Error(`open account: ${opened.error.code}`);
    const dep = await hub.transfers.accounts.deposit(tx, SYSTEM, issuerId, fundingAccountId, spec.depositMinor ?? 1_000_000n, spec.currency, newId('dep'));
    if (!dep.ok) throw new Error(`deposit: ${dep.error.code}`);
    const card = await hub.cards.cards.issue(tx, SYSTEM, issuerId, { productId: spec.productId, customerId: holder, fundingAccountId });
    if (!card.ok) throw new Error(`issue: ${card.error.code}`);
    const active = await hub.cards.cards.transition(tx, SYSTEM, issuerId, card.value.card.id, 'activate');
    if (!active.ok) throw new Error(`activate: ${active.error.code}`);
    await hub.cards.walletTokens.setRules(tx, SYSTEM, issuerId, { typed: 'approve', byReference: 'approve', newDevice: 'approve', keyMaxTransactions: FIXTURE_KEY_TRANSACTIONS, keyTtlHours: FIXTURE_KEY_HOURS });
    return card.value;
  });
  const customerId = demoCustomerId(spec.walletCustomerKey);
  const source = { type: 'typed', cardNumber: issued.cardNumber, expiry: issued.card.expiry, cvv: issued.cvv };
  const res = await call(spec.wallet, 'POST', '/v1/wallet/tokens', { customerId, consent: true, deviceId: `phone-${spec.walletCustomerKey}`, devicePublicKey: newDevice().publicKey, source }, { 'idempotency-key': newId('k') });
  if (res.status !== 201 || res.body.tokenNumber === undefined) throw new Error(`provision in ${spec.wallet}: ${res.status} ${JSON.stringify(res.body)}`);
  const expiry = String(res.body.token.expiry);
  return {
    cardId: issued.card.id,
    fundingAccountId,
    token: { wallet: spec.wallet, customerId, tokenRef: res.body.token.tokenRef, tokenNumber: res.body.tokenNumber, tokenKey: res.body.limitedUseKey.key, expiryYymm: `${expiry.slice(3, 5)}${expiry.slice(0, 2)}`, atc: 0 },
  };
}

/** What the wallet computes: the next ATC, a fresh unpredictable number and the cryptogram over them. */
export function nextCryptogram(t: WalletToken, input: { amountMinor: bigint; currency?: string; country?: string; now: Date; atc?: number }) {
  const atc = input.atc ?? (t.atc += 1);
  const unpredictableNumber = randomBytes(4).toString('hex').toUpperCase();
  const cryptogram = computeTokenCryptogram({
    ...(t.scheme !== undefined ? { scheme: t.scheme } : {}),
    tokenKeyHex: t.tokenKey,
    atc,
    amountMinor: input.amountMinor,
    currencyNumeric: currencyNumeric(input.currency ?? 'CNY') ?? '156',
    countryNumeric: countryNumeric(input.country ?? 'CN') ?? '156',
    transactionDate: input.now.toISOString().slice(2, 10).replace(/-/g, ''),
    transactionType: '00',
    unpredictableNumber,
  });
  return { atc, unpredictableNumber, cryptogram };
}

/** A consumer-presented code (base64 BER-TLV, CPV01) with the amount in 9F02, so that the cryptogram binds it. */
export function cpmPayload(t: WalletToken, input: { amountMinor: bigint; country?: string; now: Date }): string {
  const c = nextCryptogram(t, input);
  const encoded = encodeCpm({
    aid: 'A000000333010101',
    label: 'HUTONG',
    token: t.tokenNumber,
    expiry: `${t.expiryYymm}28`,
    atc: c.atc.toString(16).toUpperCase().padStart(4, '0'),
    cryptogram: c.cryptogram,
    unpredictableNumber: c.unpredictableNumber,
    amountMinor: input.amountMinor,
  } as Parameters<typeof encodeCpm>[0]);
  if (!encoded.ok) throw new Error(`cpm: ${encoded.error.message}`);
  return encoded.value;
}

/** The body a terminal sends for a tap. */
export function tapBody(t: WalletToken, input: { amountMinor: bigint; amount: string; currency?: string; country?: string; now: Date; atc?: number }) {
  const c = nextCryptogram(t, input);
  return { token: t.tokenNumber, expiry: t.expiryYymm, atc: c.atc, unpredictableNumber: c.unpredictableNumber, amount: { amount: input.amount, currency: input.currency ?? 'CNY' }, cryptogram: c.cryptogram };
}

/** A wallet's token source for MPM and payment links. */
export function tokenSource(t: WalletToken, input: { amountMinor: bigint; currency?: string; country?: string; now: Date; atc?: number }) {
  const c = nextCryptogram(t, input);
  return { type: 'token' as const, tokenRef: t.tokenRef, atc: c.atc, cryptogram: c.cryptogram, unpredictableNumber: c.unpredictableNumber };
}
