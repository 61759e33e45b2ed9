import { FlattenedSign, flattenedVerify, importJWK, type JWK } from 'jose';
import type { KeyObject, webcrypto } from 'node:crypto';

/**
 * The connector protocol between the hub and a connected participant (a bank that keeps its customers' accounts in its
 * own core system). Shared by the hub (src/connectors) and the participant SDK (this folder, published as
 * packages/participant-sdk): this folder imports nothing from the hub, only `jose` and Node's crypto types.
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

const enc = new TextEncoder();

/** Signs `body` (the exact bytes sent): the detached compact JWS `protected..signature`. */
export async function signDetached(body: string, key: SigningKey, header: Omit<SignedHeader, 'alg'>): Promise<string> {
  const jws = await new FlattenedSign(enc.encode(body)).setProtectedHeader({ alg: 'EdDSA', kid: header.kid, op: header.op, txid: header.txid, iat: header.iat }).sign(key);
  return `${jws.protected ?? ''}..${jws.signature}`;
}

export type VerifyFailure = 'missing' | 'malformed' | 'bad_signature' | 'wrong_binding' | 'stale';

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
  let header: SignedHeader;
  try {
    const verified = await flattenedVerify({ protected: parts[0], payload: Buffer.from(body, 'utf8').toString('base64url'), signature: parts[2] }, key, { algorithms: ['EdDSA'] });
    header = verified.protectedHeader as unknown as SignedHeader;
  } catch {
    return { ok: false, reason: 'bad_signature' };
  }
  if (header.op !== expect.op || header.txid !== expect.txid) return { ok: false, reason: 'wrong_binding' };
  if (typeof header.iat !== 'number' || Math.abs(expect.nowS - header.iat) > MAX_SIGNATURE_AGE_S) return { ok: false, reason: 'stale' };
  return { ok: true, header };
}

/** Imported public keys by `x`: a key is imported once, not for every message it verifies (bounded; oldest dropped). */
const publicKeys = new Map<string, Promise<SigningKey>>();
const MAX_CACHED_PUBLIC_KEYS = 256;

/** An Ed25519 public JWK as a verification key. */
export function publicKeyOf(jwk: { readonly kty: string; readonly crv: string; readonly x: string }): Promise<SigningKey> {
  const cacheKey = `${jwk.kty}:${jwk.crv}:${jwk.x}`;
  const cached = publicKeys.get(cacheKey);
  if (cached !== undefined) return cached;
  const imported = importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x } as JWK, 'EdDSA').then((key) => {
    if (key instanceof Uint8Array) throw new Error('an Ed25519 public key was expected');
    return key;
  });
  // A key that fails to import is not remembered.
  imported.catch(() => publicKeys.delete(cacheKey));
  if (publicKeys.size >= MAX_CACHED_PUBLIC_KEYS) publicKeys.delete(publicKeys.keys().next().value ?? '');
  publicKeys.set(cacheKey, imported);
  return imported;
}

/** An Ed25519 private JWK (with `d`) as a signing key. */
export async function privateKeyOf(jwk: { readonly kty: string; readonly crv: string; readonly x: string; readonly d: string }): Promise<SigningKey> {
  const key = await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, d: jwk.d } as JWK, 'EdDSA');
  if (key instanceof Uint8Array) throw new Error('an Ed25519 private key was expected');
  return key;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isAmount = (v: unknown): v is Amount => isObject(v) && typeof v.amount === 'string' && /^[0-9]{1,18}(\.[0-9]{1,4})?$/.test(v.amount) && typeof v.currency === 'string' && /^[A-Z]{3}$/.test(v.currency);

/** A parsed request, or why it is not one. */
export function parseRequest(text: string): ConnectorRequest | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(v)) return undefined;
  if (typeof v.MsgId !== 'string' || typeof v.TxId !== 'string' || typeof v.EndToEndId !== 'string' || typeof v.SttlmDdln !== 'string') return undefined;
  if (typeof v.Op !== 'string' || !(CONNECTOR_OPERATIONS as readonly string[]).includes(v.Op)) return undefined;
  if (!isAmount(v.IntrBkSttlmAmt)) return undefined;
  return v as unknown as ConnectorRequest;
}

export function parseAnswer(text: string): ConnectorAnswer | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(v) || typeof v.TxId !== 'string' || typeof v.OrgnlMsgId !== 'string') return undefined;
  if (v.TxSts !== 'ACSP' && v.TxSts !== 'ACSC' && v.TxSts !== 'ACCC' && v.TxSts !== 'RJCT') return undefined;
  if (v.StsRsnInf !== undefined && (!isObject(v.StsRsnInf) || typeof v.StsRsnInf.Rsn !== 'string' || !REASON_CODE.test(v.StsRsnInf.Rsn))) return undefined;
  if (v.TxSts === 'RJCT' && v.StsRsnInf === undefined) return undefined;
  return v as unknown as ConnectorAnswer;
}
