import { createPrivateKey, createPublicKey, KeyObject, sign as edSign, verify as edVerify, type webcrypto } from 'node:crypto';

/**
 * The connector protocol between the hub and a connected participant (a bank that keeps its customers' accounts in its
 * own core system). Shared by the hub (src/connectors) and the participant SDK (this folder, published as
 * packages/participant-sdk): this folder imports nothing from the hub, only Node's crypto.
 *
 * Messages are JSON whose element names follow ISO 20022 (pacs.008 for the instruction, pacs.002 for the status):
 * `TxId`/`EndToEndId` (the hub's payment id), `IntrBkSttlmAmt` ({ amount, currency }, a decimal string), `DbtrAcct` /
 * `CdtrAcct` (the customer's account at the bank), `TxSts` and `StsRsnInf.Rsn` (ISO external status reason codes).
 *
 * Every request and every answer is signed: a detached JWS (RFC 7515, appendix F) over the exact body bytes, EdDSA
 * (Ed25519), in the `x-jws-signature` header. Its protected header names the key (`kid`), the operation (`op`), the
 * signing time (`iat`) and the transfer (`txid`), so a signature cannot be moved to another operation or transfer.
 */
export const SIGNATURE_HEADER = 'x-jws-signature';
export const CONNECTOR_OPERATIONS = ['reserve', 'accept', 'commit', 'abort'] as const;
export type ConnectorOperation = (typeof CONNECTOR_OPERATIONS)[number];
/** How old a signature may be (clock skew included): older ones are refused. */
export const MAX_SIGNATURE_AGE_S = 300;

export interface Amount {
  readonly amount: string;
  readonly currency: string;
}
/** An account at the participant: its own identifier (`Othr.Id`), as the participant registered its customer. */
export interface AccountId {
  readonly Id: { readonly Othr: { readonly Id: string } };
  readonly Ccy: string;
}
export interface Agent {
  readonly FinInstnId: { readonly Othr: { readonly Id: string } };
}
export interface StatusReason {
  /** ISO 20022 ExternalStatusReason1Code: AC01, AC04, AM02, AM04, AB05, … */
  readonly Rsn: string;
  readonly AddtlInf?: string;
}

/**
 * What the hub sends. `reserve` goes to the payer's bank (debit `DbtrAcct` by the amount, held until commit or abort),
 * `accept` to the payee's bank (will it credit `CdtrAcct`?), then `commit` (`TxSts` ACSC) or `abort` (`TxSts` RJCT with
 * the reason) to each connected side.
 */
export interface ConnectorRequest {
  readonly MsgId: string;
  readonly CreDtTm: string;
  readonly Op: ConnectorOperation;
  readonly TxId: string;
  readonly EndToEndId: string;
  readonly IntrBkSttlmAmt: Amount;
  readonly DbtrAgt: Agent;
  readonly CdtrAgt: Agent;
  readonly DbtrAcct?: AccountId;
  readonly CdtrAcct?: AccountId;
  readonly Dbtr?: { readonly Nm: string };
  readonly Cdtr?: { readonly Nm: string };
  /**
   * On a reserve a wallet initiated from an account the customer linked by open-banking consent: the consent the bank
   * granted (its own id, `MndtId`) and the wallet that initiates (`InitgPty`). The bank authorizes the debit only while
   * that consent is active for `DbtrAcct` (else RJCT MD01).
   */
  readonly MndtRltdInf?: { readonly MndtId: string };
  readonly InitgPty?: { readonly Id: { readonly OrgId: { readonly Othr: { readonly Id: string } } } };
  /**
   * On an accept that returns money of an earlier transfer (a merchant's refund of a payment the customer paid from
   * this account): that transfer's TxId, as in a pacs.004 return. `EndToEndId` is then that transfer's too.
   */
  readonly OrgnlTxId?: string;
  /** The deadline of this payment: an answer after it is ignored, and the hub aborts. */
  readonly SttlmDdln: string;
  readonly TxSts?: 'ACSC' | 'RJCT';
  readonly StsRsnInf?: StatusReason;
}

/**
 * What the participant answers: to reserve/accept `ACSP` (accepted, settlement in process) or `RJCT` with a reason;
 * to commit `ACSC` (payer side: settled) or `ACCC` (payee side: credited to the customer); to abort `RJCT`.
 */
export interface ConnectorAnswer {
  readonly OrgnlMsgId: string;
  readonly TxId: string;
  readonly TxSts: 'ACSP' | 'ACSC' | 'ACCC' | 'RJCT';
  readonly StsRsnInf?: StatusReason;
}

/**
 * Messages the hub has for one participant at about the same time, sent together (POST {base}/batch): one signed
 * request and one signed answer instead of one exchange per transfer, as ISO 20022 groups transactions in one pacs
 * message (`GrpHdr.NbOfTxs`). Each item is the very request the hub would send alone (reserves and accepts of payments
 * being confirmed together; commits and aborts of one delivery round), answered by the same per-transfer rules (once
 * per operation and TxId; each reserve or accept within its own SttlmDdln); the answer lists one `TxInfAndSts` per
 * item, each transfer at most once per batch. The signature is bound to op `batch` and txid `MsgId`. A participant that
 * does not serve `/batch` (404) gets the messages one by one.
 */
export const BATCH_OPERATION = 'batch';
/** At most this many items in one batch (the hub sends no more; a participant refuses more). */
export const MAX_BATCH_ITEMS = 128;
export interface ConnectorBatch {
  readonly MsgId: string;
  readonly CreDtTm: string;
  readonly Op: typeof BATCH_OPERATION;
  readonly NbOfTxs: number;
  readonly TxInf: readonly ConnectorRequest[];
}
export interface ConnectorBatchAnswer {
  readonly OrgnlMsgId: string;
  readonly TxInfAndSts: readonly ConnectorAnswer[];
}

/** The hub's final word on a transfer (GET /v1/connector/transfers/{id}): PDNG while it is being decided. */
export interface TransferStatus {
  readonly TxId: string;
  readonly TxSts: 'PDNG' | 'ACSC' | 'RJCT';
  readonly StsRsnInf?: StatusReason;
}

/**
 * ISO 20022 status reason codes this protocol uses. A participant may answer any four-character code; the hub produces
 * AB05 (no valid answer before the deadline, or the participant no longer connected), AB03 (the deadline passed with the
 * payment undecided: the recovery job), DS0B (an answer whose signature does not verify), FF01 (an answer that is not a
 * valid message) and MD01 (the customer revoked the open-banking consent a wallet's debit relied on before the bank was
 * asked; a bank answers MD01 itself when its consent no longer covers the debit).
 */
export const REASONS = {
  AC01: 'incorrect account number',
  AC04: 'closed account',
  AC06: 'blocked account',
  AM02: 'amount not allowed (over a limit)',
  AM04: 'insufficient funds',
  AG01: 'transaction forbidden',
  RR04: 'regulatory reason',
  MD01: 'no mandate: the customer’s consent is revoked or does not cover the debit',
  AB03: 'aborted: settlement deadline passed',
  AB05: 'timeout at the participant',
  DS0B: 'signature invalid',
  FF01: 'invalid message format',
  NARR: 'narrative',
} as const;
export type ReasonCode = keyof typeof REASONS;
export const REASON_CODE = /^[A-Z0-9]{4}$/;

export type SigningKey = KeyObject | webcrypto.CryptoKey | Uint8Array;

export interface SignedHeader {
  readonly alg: 'EdDSA';
  readonly kid: string;
  readonly op: string;
  readonly txid: string;
  readonly iat: number;
}

/**
 * The key as Node's crypto uses it: a KeyObject as is, a WebCrypto key converted once (remembered per key). Raw bytes
 * are not an Ed25519 key.
 */
const keyObjects = new WeakMap<webcrypto.CryptoKey, KeyObject>();
function keyObjectOf(key: SigningKey): KeyObject {
  if (key instanceof KeyObject) return key;
  if (key instanceof Uint8Array) throw new Error('an Ed25519 key (KeyObject or CryptoKey) was expected, not raw bytes');
  let k = keyObjects.get(key);
  if (k === undefined) {
    k = KeyObject.from(key);
    keyObjects.set(key, k);
  }
  return k;
}

const b64url = (bytes: Buffer | string) => Buffer.from(bytes).toString('base64url');

/*
 * Signing and verifying use Node's crypto (Ed25519, RFC 8037) directly on the JWS signing input of RFC 7515 (§5.1:
 * BASE64URL(protected) "." BASE64URL(payload)); the output is the standard detached compact form, which any JOSE
 * library verifies (test/connected/sdk.test.ts checks it both ways against `jose`). Why not `jose` here: it signs
 * through WebCrypto, whose every call is a job handed to libuv's thread pool; on a busy machine that hand-off cost
 * about a quarter of the reference bank's CPU per payment (four signatures per payment), where a synchronous Ed25519
 * signature is about 30 µs.
 */

/** Signs `body` (the exact bytes sent): the detached compact JWS `protected..signature`. */
export async function signDetached(body: string, key: SigningKey, header: Omit<SignedHeader, 'alg'>): Promise<string> {
  const protectedB64 = b64url(JSON.stringify({ alg: 'EdDSA', kid: header.kid, op: header.op, txid: header.txid, iat: header.iat }));
  const signature = edSign(null, Buffer.from(`${protectedB64}.${b64url(body)}`, 'ascii'), keyObjectOf(key));
  return `${protectedB64}..${b64url(signature)}`;
}

export type VerifyFailure = 'missing' | 'malformed' | 'bad_signature' | 'wrong_binding' | 'stale';

const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** The protected header when it is a JSON object this protocol can verify: EdDSA, no `crit`, no unencoded payload. */
function protectedHeaderOf(b64: string): Record<string, unknown> | undefined {
  if (!BASE64URL.test(b64)) return undefined;
  try {
    const header: unknown = JSON.parse(Buffer.from(b64, 'base64url').toString('utf8'));
    if (typeof header !== 'object' || header === null || Array.isArray(header)) return undefined;
    const h = header as Record<string, unknown>;
    return h.alg === 'EdDSA' && h.crit === undefined && h.b64 === undefined ? h : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Verifies a detached JWS over `body` with `key`, and that it was made for this operation and transfer, within
 * MAX_SIGNATURE_AGE_S of `nowS`.
 */
export async function verifyDetached(
  body: string,
  signature: string | undefined,
  key: SigningKey,
  expect: { op: string; txid: string; nowS: number },
): Promise<{ ok: true; header: SignedHeader } | { ok: false; reason: VerifyFailure }> {
  if (signature === undefined || signature === '') return { ok: false, reason: 'missing' };
  const parts = signature.split('.');
  if (parts.length !== 3 || parts[1] !== '' || parts[0] === undefined || parts[2] === undefined) return { ok: false, reason: 'malformed' };
  const h = protectedHeaderOf(parts[0]);
  if (h === undefined || !BASE64URL.test(parts[2])) return { ok: false, reason: 'bad_signature' };
  let valid: boolean;
  try {
    valid = edVerify(null, Buffer.from(`${parts[0]}.${b64url(body)}`, 'ascii'), keyObjectOf(key), Buffer.from(parts[2], 'base64url'));
  } catch {
    valid = false;
  }
  if (!valid) return { ok: false, reason: 'bad_signature' };
  const header = h as unknown as SignedHeader;
  if (header.op !== expect.op || header.txid !== expect.txid) return { ok: false, reason: 'wrong_binding' };
  if (typeof header.iat !== 'number' || Math.abs(expect.nowS - header.iat) > MAX_SIGNATURE_AGE_S) return { ok: false, reason: 'stale' };
  return { ok: true, header };
}

/** Imported public keys by `x`: a key is imported once, not for every message it verifies (bounded; oldest dropped). */
const publicKeys = new Map<string, KeyObject>();
const MAX_CACHED_PUBLIC_KEYS = 256;

/** An Ed25519 public JWK as a verification key. */
export async function publicKeyOf(jwk: { readonly kty: string; readonly crv: string; readonly x: string }): Promise<SigningKey> {
  const cacheKey = `${jwk.kty}:${jwk.crv}:${jwk.x}`;
  const cached = publicKeys.get(cacheKey);
  if (cached !== undefined) return cached;
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') throw new Error('an Ed25519 public key was expected');
  const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' });
  if (publicKeys.size >= MAX_CACHED_PUBLIC_KEYS) publicKeys.delete(publicKeys.keys().next().value ?? '');
  publicKeys.set(cacheKey, key);
  return key;
}

/** An Ed25519 private JWK (with `d`) as a signing key. */
export async function privateKeyOf(jwk: { readonly kty: string; readonly crv: string; readonly x: string; readonly d: string }): Promise<SigningKey> {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') throw new Error('an Ed25519 private key was expected');
  return createPrivateKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, d: jwk.d }, format: 'jwk' });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isAmount = (v: unknown): v is Amount => isObject(v) && typeof v.amount === 'string' && /^[0-9]{1,18}(\.[0-9]{1,4})?$/.test(v.amount) && typeof v.currency === 'string' && /^[A-Z]{3}$/.test(v.currency);

/** A parsed request, or why it is not one. */
export function parseRequest(text: string): ConnectorRequest | undefined {
  return requestOf(jsonOf(text));
}

/** The JSON value of `text`, or undefined when it is not JSON. */
function jsonOf(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function requestOf(v: unknown): ConnectorRequest | undefined {
  if (!isObject(v)) return undefined;
  if (typeof v.MsgId !== 'string' || typeof v.TxId !== 'string' || typeof v.EndToEndId !== 'string' || typeof v.SttlmDdln !== 'string') return undefined;
  if (typeof v.Op !== 'string' || !(CONNECTOR_OPERATIONS as readonly string[]).includes(v.Op)) return undefined;
  if (!isAmount(v.IntrBkSttlmAmt)) return undefined;
  return v as unknown as ConnectorRequest;
}

export function parseAnswer(text: string): ConnectorAnswer | undefined {
  return answerOf(jsonOf(text));
}

function answerOf(v: unknown): ConnectorAnswer | undefined {
  if (!isObject(v) || typeof v.TxId !== 'string' || typeof v.OrgnlMsgId !== 'string') return undefined;
  if (v.TxSts !== 'ACSP' && v.TxSts !== 'ACSC' && v.TxSts !== 'ACCC' && v.TxSts !== 'RJCT') return undefined;
  if (v.StsRsnInf !== undefined && (!isObject(v.StsRsnInf) || typeof v.StsRsnInf.Rsn !== 'string' || !REASON_CODE.test(v.StsRsnInf.Rsn))) return undefined;
  if (v.TxSts === 'RJCT' && v.StsRsnInf === undefined) return undefined;
  return v as unknown as ConnectorAnswer;
}

/** A parsed batch: valid requests, at most MAX_BATCH_ITEMS, each transfer once, NbOfTxs true. */
export function parseBatch(text: string): ConnectorBatch | undefined {
  const v = jsonOf(text);
  if (!isObject(v) || typeof v.MsgId !== 'string' || v.Op !== BATCH_OPERATION || !Array.isArray(v.TxInf)) return undefined;
  if (v.TxInf.length === 0 || v.TxInf.length > MAX_BATCH_ITEMS || v.NbOfTxs !== v.TxInf.length) return undefined;
  const txIds = new Set<string>();
  for (const item of v.TxInf as unknown[]) {
    const r = requestOf(item);
    if (r === undefined || txIds.has(r.TxId)) return undefined;
    txIds.add(r.TxId);
  }
  return v as unknown as ConnectorBatch;
}

/** A parsed batch answer: every status valid (as parseAnswer checks one). */
export function parseBatchAnswer(text: string): ConnectorBatchAnswer | undefined {
  const v = jsonOf(text);
  if (!isObject(v) || typeof v.OrgnlMsgId !== 'string' || !Array.isArray(v.TxInfAndSts)) return undefined;
  for (const a of v.TxInfAndSts as unknown[]) if (answerOf(a) === undefined) return undefined;
  return v as unknown as ConnectorBatchAnswer;
}
