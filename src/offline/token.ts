/**
 * The offline payment token: what a device signs, with no network, to pay a merchant's terminal from its offline purse.
 * A compact JWS (ES256) by the purse's device key (ECDSA P-256; in the reference wallet a non-extractable WebCrypto
 * key) over one payment: the purse, a counter the device increments for every payment (never reused), the amount and
 * currency, the merchant, and when it was signed. The merchant's terminal keeps it and uploads it once online
 * (POST /v1/offline/payments); the hub checks the signature against the key the purse was opened with, settles it from
 * the purse's reserve, and refuses a token presented twice or a second token under the same counter.
 *
 * This module is shared by the hub and the wallet side: it uses only WebCrypto and TextEncoder (no Node-only import).
 */

/** A WebCrypto ECDSA P-256 private key (whatever this environment's WebCrypto calls its key type). */
type SigningKey = Parameters<typeof crypto.subtle.sign>[1];

export const OFFLINE_TOKEN_TYPE = 'hutong-offline+jws';

export interface OfflinePaymentClaims {
  /** Format version. */
  readonly v: 1;
  /** The offline purse. */
  readonly purse: string;
  /** The device's payment counter: 1, 2, 3… one per payment. */
  readonly ctr: number;
  /** Decimal string in the currency, e.g. "12.30". */
  readonly amt: string;
  readonly cur: string;
  /** The merchant paid. */
  readonly mer: string;
  /** When the device signed it (Unix seconds, the device's clock). */
  readonly iat: number;
}

/** What a device signs to take back what it has not spent: the last counter it used and the balance it has left. */
export interface OfflineUnloadStatement {
  readonly purpose: 'offline_unload';
  readonly purseId: string;
  readonly lastCounter: number;
  readonly remaining: string;
}

const b64url = (bytes: Uint8Array): string => {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

const fromB64url = (text: string): Uint8Array<ArrayBuffer> | undefined => {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  try {
    const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i += 1) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
};

/** A compact JWS (ES256) of `payload` by a WebCrypto ECDSA P-256 private key (WebCrypto's signature is already r‖s). */
export async function signCompactEs256(privateKey: SigningKey, payload: object, typ?: string): Promise<string> {
  const header = typ === undefined ? { alg: 'ES256' } : { alg: 'ES256', typ };
  const input = `${b64url(new TextEncoder().encode(JSON.stringify(header)))}.${b64url(new TextEncoder().encode(JSON.stringify(payload)))}`;
  const signature = new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, new TextEncoder().encode(input)));
  return `${input}.${b64url(signature)}`;
}

/** The device side: the token for one offline payment. */
export function signOfflinePayment(privateKey: SigningKey, claims: Omit<OfflinePaymentClaims, 'v'>): Promise<string> {
  return signCompactEs256(privateKey, { v: 1, purse: claims.purse, ctr: claims.ctr, amt: claims.amt, cur: claims.cur, mer: claims.mer, iat: claims.iat }, OFFLINE_TOKEN_TYPE);
}

/** The device side: the statement that takes the unspent balance back (POST /v1/offline/purses/{id}/unload). */
export function signOfflineUnload(privateKey: SigningKey, statement: Omit<OfflineUnloadStatement, 'purpose'>): Promise<string> {
  return signCompactEs256(privateKey, { purpose: 'offline_unload', purseId: statement.purseId, lastCounter: statement.lastCounter, remaining: statement.remaining });
}

const AMOUNT = /^[0-9]{1,15}(\.[0-9]{1,4})?$/;
const ID = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * The claims of a token, read WITHOUT checking its signature (the hub then checks it against the purse's key; a
 * terminal against the key it was shown). Undefined when it is not a well-formed offline token.
 */
export function readOfflineToken(token: string): { header: Record<string, unknown>; claims: OfflinePaymentClaims } | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [h, p] = parts as [string, string, string];
  try {
    const header: unknown = JSON.parse(new TextDecoder().decode(fromB64url(h) ?? new Uint8Array()));
    const payload: unknown = JSON.parse(new TextDecoder().decode(fromB64url(p) ?? new Uint8Array()));
    if (typeof header !== 'object' || header === null || Array.isArray(header)) return undefined;
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return undefined;
    const c = payload as Record<string, unknown>;
    if ((header as Record<string, unknown>).alg !== 'ES256' || (header as Record<string, unknown>).typ !== OFFLINE_TOKEN_TYPE) return undefined;
    const keys = Object.keys(c).sort().join(',');
    if (keys !== 'amt,ctr,cur,iat,mer,purse,v' || c.v !== 1) return undefined;
    if (typeof c.purse !== 'string' || !ID.test(c.purse) || typeof c.mer !== 'string' || !ID.test(c.mer)) return undefined;
    if (typeof c.ctr !== 'number' || !Number.isSafeInteger(c.ctr) || c.ctr < 1 || c.ctr > 2_147_483_647) return undefined;
    if (typeof c.amt !== 'string' || !AMOUNT.test(c.amt) || typeof c.cur !== 'string' || !/^[A-Z]{3}$/.test(c.cur)) return undefined;
    if (typeof c.iat !== 'number' || !Number.isSafeInteger(c.iat) || c.iat < 0) return undefined;
    return { header: header as Record<string, unknown>, claims: { v: 1, purse: c.purse, ctr: c.ctr, amt: c.amt, cur: c.cur, mer: c.mer, iat: c.iat } };
  } catch {
    return undefined;
  }
}

/** A P-256 public key in JWK form (as WebCrypto exports it, less ext and key_ops). */
export interface OfflineDeviceKey {
  readonly kty: 'EC';
  readonly crv: 'P-256';
  readonly x: string;
  readonly y: string;
}

/** Whether `jws` is a compact ES256 JWS by `key` over its own header and payload (payload not interpreted). */
export async function verifyCompactEs256(key: OfflineDeviceKey, jws: string): Promise<boolean> {
  const parts = jws.split('.');
  if (parts.length !== 3) return false;
  const [h, p, s] = parts as [string, string, string];
  const signature = fromB64url(s);
  if (signature?.length !== 64) return false;
  try {
    const header: unknown = JSON.parse(new TextDecoder().decode(fromB64url(h) ?? new Uint8Array()));
    if (typeof header !== 'object' || header === null || (header as Record<string, unknown>).alg !== 'ES256') return false;
    const publicKey = await crypto.subtle.importKey('jwk', { kty: key.kty, crv: key.crv, x: key.x, y: key.y }, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
    return await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, publicKey, signature, new TextEncoder().encode(`${h}.${p}`));
  } catch {
    return false;
  }
}

/** Whether `jws` is by `key` and its payload is exactly `expected` (same fields, same values). */
export async function verifyStatement(key: OfflineDeviceKey, jws: string, expected: object): Promise<boolean> {
  if (!(await verifyCompactEs256(key, jws))) return false;
  try {
    const payload: unknown = JSON.parse(new TextDecoder().decode(fromB64url(jws.split('.')[1] ?? '') ?? new Uint8Array()));
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return false;
    const given = payload as Record<string, unknown>;
    const want = expected as Record<string, unknown>;
    const keys = Object.keys(want);
    return Object.keys(given).length === keys.length && keys.every((k) => given[k] === want[k]);
  } catch {
    return false;
  }
}

/** The hub's certificate key as it publishes it (GET /v1/offline/certificate-key). */
export interface OfflineHubKey {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
}

export type OfflineCheck =
  | { readonly ok: true; readonly claims: OfflinePaymentClaims; readonly reserved: string }
  | { readonly ok: false; readonly reason: 'certificate_invalid' | 'certificate_expired' | 'token_invalid' | 'wrong_purse' | 'over_reserved' | 'signature_invalid' };

/**
 * The terminal's check, with no network: the purse certificate is the hub's (Ed25519 under `hubKey`) and current; the
 * token is for that purse and currency, within what the hub reserved, and signed by the device key the certificate
 * names. Whether the counter was used before is the terminal's own record to keep (and the hub's at upload).
 */
export async function verifyOfflinePayment(hubKey: OfflineHubKey, certificate: string, token: string, nowS: number): Promise<OfflineCheck> {
  const parts = certificate.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'certificate_invalid' };
  const [h, p, s] = parts as [string, string, string];
  const signature = fromB64url(s);
  let cert: Record<string, unknown>;
  try {
    const header = JSON.parse(new TextDecoder().decode(fromB64url(h) ?? new Uint8Array())) as Record<string, unknown>;
    if (header.alg !== 'EdDSA' || signature === undefined) return { ok: false, reason: 'certificate_invalid' };
    const publicKey = await crypto.subtle.importKey('jwk', { kty: hubKey.kty, crv: hubKey.crv, x: hubKey.x }, { name: 'Ed25519' }, false, ['verify']);
    if (!(await crypto.subtle.verify({ name: 'Ed25519' }, publicKey, signature, new TextEncoder().encode(`${h}.${p}`)))) return { ok: false, reason: 'certificate_invalid' };
    cert = JSON.parse(new TextDecoder().decode(fromB64url(p) ?? new Uint8Array())) as Record<string, unknown>;
  } catch {
    return { ok: false, reason: 'certificate_invalid' };
  }
  const key = cert.key as OfflineDeviceKey | undefined;
  if (typeof cert.purse !== 'string' || typeof cert.cur !== 'string' || typeof cert.reserved !== 'string' || typeof cert.exp !== 'number' || key === undefined || typeof key !== 'object') {
    return { ok: false, reason: 'certificate_invalid' };
  }
  if (cert.exp <= nowS) return { ok: false, reason: 'certificate_expired' };
  const read = readOfflineToken(token);
  if (read === undefined) return { ok: false, reason: 'token_invalid' };
  if (read.claims.purse !== cert.purse || read.claims.cur !== cert.cur) return { ok: false, reason: 'wrong_purse' };
  if (minorOf(read.claims.amt) > minorOf(cert.reserved)) return { ok: false, reason: 'over_reserved' };
  if (!(await verifyCompactEs256(key, token))) return { ok: false, reason: 'signature_invalid' };
  return { ok: true, claims: read.claims, reserved: cert.reserved };
}

/** A decimal string as an integer of its smallest unit at 4 decimals (for comparing two amounts of one currency). */
const minorOf = (amount: string): bigint => {
  const [whole = '0', frac = ''] = amount.split('.');
  return BigInt(whole) * 10_000n + BigInt((frac + '0000').slice(0, 4));
};
