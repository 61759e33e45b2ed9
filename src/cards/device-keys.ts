import { calculateJwkThumbprint, compactVerify, importJWK } from 'jose';

/**
 * A device's public key (ECDSA P-256, as WebCrypto exports it in JWK form): a token is bound to it at provisioning, and
 * every request that needs the device itself (a new limited-use key, a step-up answer) carries a compact JWS (ES256)
 * made with its private key, which in the reference wallet is a non-extractable WebCrypto key that never leaves the
 * browser.
 */
export interface DevicePublicKey {
  readonly kty: 'EC';
  readonly crv: 'P-256';
  readonly x: string;
  readonly y: string;
}

/** What a device signs: the purpose, and the object the signature is good for (so it cannot be reused elsewhere). */
export type DeviceStatement =
  | { readonly purpose: 'replenish'; readonly tokenRef: string; readonly keyCounter: number }
  | { readonly purpose: 'step_up'; readonly provisioningId: string };

/** The key's RFC 7638 thumbprint, or undefined when it is not a usable P-256 public key (not on the curve, etc.). */
export async function deviceKeyThumbprint(key: DevicePublicKey): Promise<string | undefined> {
  const jwk = { kty: key.kty, crv: key.crv, x: key.x, y: key.y };
  try {
    await importJWK(jwk, 'ES256');
    return await calculateJwkThumbprint(jwk, 'sha256');
  } catch {
    return undefined;
  }
}

/**
 * True when `jws` is a compact ES256 JWS by `key` whose payload is exactly `expected` (same fields, same values).
 * Anything malformed is simply not a valid signature.
 */
export async function verifyDeviceStatement(key: DevicePublicKey, jws: string, expected: DeviceStatement): Promise<boolean> {
  try {
    const publicKey = await importJWK({ kty: key.kty, crv: key.crv, x: key.x, y: key.y }, 'ES256');
    const { payload, protectedHeader } = await compactVerify(jws, publicKey, { algorithms: ['ES256'] });
    if (protectedHeader.alg !== 'ES256') return false;
    const parsed: unknown = JSON.parse(new TextDecoder().decode(payload));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return false;
    const given = parsed as Record<string, unknown>;
    const want = expected as unknown as Record<string, unknown>;
    const keys = Object.keys(want);
    return Object.keys(given).length === keys.length && keys.every((k) => given[k] === want[k]);
  } catch {
    return false;
  }
}
