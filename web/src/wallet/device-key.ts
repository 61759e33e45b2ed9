/**
 * The device key of this browser: an ECDSA P-256 key pair made by WebCrypto with a NON-extractable private key, kept
 * in IndexedDB (which stores the CryptoKey object itself, so the private key's bytes are never readable by script).
 * Tokens are bound to its public key when a card is added; a new limited-use key and a step-up answer are requests
 * this key signs (compact JWS, ES256: WebCrypto's ECDSA signature is already the r||s form JWS wants).
 */
const DB_NAME = 'hutong-device';
const STORE = 'keys';
const ID = 'device-key-v1';

export interface DevicePublicKey {
  readonly kty: 'EC';
  readonly crv: 'P-256';
  readonly x: string;
  readonly y: string;
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

async function openStore(): Promise<IDBDatabase> {
  const open = indexedDB.open(DB_NAME, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(STORE);
  return request(open);
}

let pair: Promise<CryptoKeyPair> | undefined;

/** This browser's key pair, made once and kept. */
export function deviceKeyPair(): Promise<CryptoKeyPair> {
  pair ??= (async () => {
    const db = await openStore();
    const found = (await request(db.transaction(STORE, 'readonly').objectStore(STORE).get(ID))) as CryptoKeyPair | undefined;
    if (found !== undefined) return found;
    const made = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
    await request(db.transaction(STORE, 'readwrite').objectStore(STORE).put(made, ID));
    return made;
  })();
  return pair;
}

/** The public half in the JWK form the hub takes (the public key of a pair is always exportable). */
export async function devicePublicKey(): Promise<DevicePublicKey> {
  const jwk = await crypto.subtle.exportKey('jwk', (await deviceKeyPair()).publicKey);
  if (jwk.x === undefined || jwk.y === undefined) throw new Error('the device key has no P-256 coordinates');
  return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
}

const base64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

/** A compact JWS (ES256) over `statement`, made by the device's private key. */
export async function signAsDevice(statement: Record<string, string | number>): Promise<string> {
  const encoder = new TextEncoder();
  const input = `${base64url(encoder.encode(JSON.stringify({ alg: 'ES256' })))}.${base64url(encoder.encode(JSON.stringify(statement)))}`;
  const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, (await deviceKeyPair()).privateKey, encoder.encode(input));
  return `${input}.${base64url(new Uint8Array(signature))}`;
}
