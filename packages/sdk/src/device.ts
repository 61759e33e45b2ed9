/**
 * A wallet device's key (WebCrypto, so browsers and Node alike): the hub binds each token to the device's ECDSA P-256
 * public key at provisioning (`devicePublicKey` of POST /v1/wallet/tokens), and takes a new limited-use key
 * (POST /v1/wallet/tokens/{tokenRef}/keys) or a step-up answer only with a compact JWS (ES256) the device made:
 *
 *   replenish: { purpose: "replenish", tokenRef, keyCounter: <the key you hold> }
 *   step-up:   { purpose: "step_up", provisioningId }
 *
 * Keep the private key non-extractable (the default here) and, in a browser, in IndexedDB, which stores the CryptoKey
 * itself.
 */
export interface DevicePublicKey {
  readonly kty: 'EC';
  readonly crv: 'P-256';
  readonly x: string;
  readonly y: string;
}

export type DeviceStatement =
  | { readonly purpose: 'replenish'; readonly tokenRef: string; readonly keyCounter: number }
  | { readonly purpose: 'step_up'; readonly provisioningId: string };

/** A device's WebCrypto key pair. */
import type { webcrypto } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;

export interface DeviceKeyPair {
  readonly publicKey: CryptoKey;
  readonly privateKey: CryptoKey;
}

/** A new device key pair; the private key cannot be exported. */
export async function createDeviceKey(): Promise<DeviceKeyPair> {
  const { publicKey, privateKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  return { publicKey, privateKey };
}

/** The public key as the hub takes it. */
export async function devicePublicKey(pair: DeviceKeyPair): Promise<DevicePublicKey> {
  const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
  if (jwk.x === undefined || jwk.y === undefined) throw new RangeError('not a P-256 public key');
  return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
}

const base64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

/** The compact JWS (ES256) of `statement` by the device (WebCrypto's ECDSA signature is already JWS's r||s). */
export async function signDeviceStatement(pair: DeviceKeyPair, statement: DeviceStatement): Promise<string> {
  const encoder = new TextEncoder();
  const input = `${base64url(encoder.encode(JSON.stringify({ alg: 'ES256' })))}.${base64url(encoder.encode(JSON.stringify(statement)))}`;
  const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, encoder.encode(input));
  return `${input}.${base64url(new Uint8Array(signature))}`;
}
