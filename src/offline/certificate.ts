import { createHash, createPrivateKey, createPublicKey, hkdfSync, sign, type KeyObject } from 'node:crypto';
import type { Vault } from '../platform/vault.ts';
import type { OfflineDeviceKey } from './token.ts';

/**
 * The hub's purse certificate: what lets a merchant's terminal, with no network, trust a device key it has never seen.
 * When a purse is opened or loaded the hub signs (Ed25519, compact JWS, alg EdDSA) the purse, its currency, the
 * device's public key and what the hub holds for it then; the device shows it to the terminal with each payment token,
 * and the terminal checks it against the hub's published key (GET /v1/offline/certificate-key) before it checks the
 * token against the device key (SDK: `verifyOfflinePayment`). A token whose key no certificate vouches for is refused at
 * the counter instead of at upload.
 *
 * The signing key is derived (HKDF-SHA-256, its own label) from the vault's audit signing secret: a key of its own per
 * database, wrapped by the KEK, with nothing new to store.
 */
export const CERTIFICATE_TYPE = 'hutong-offline-cert+jws';
/** A certificate is good for this long after it was issued; the wallet fetches a fresh one whenever it is online. */
export const CERTIFICATE_TTL_S = 30 * 86_400;

export interface PurseCertificateClaims {
  readonly purse: string;
  readonly cur: string;
  /** What the hub held for the purse when it signed (decimal string): no single payment above it can be covered. */
  readonly reserved: string;
  readonly key: OfflineDeviceKey;
  readonly iat: number;
  readonly exp: number;
}

export interface OfflineIssuerKey {
  readonly keyId: string;
  readonly jwk: { readonly kty: 'OKP'; readonly crv: 'Ed25519'; readonly x: string; readonly kid: string; readonly alg: 'EdDSA'; readonly use: 'sig' };
}

export interface OfflineIssuer {
  readonly publicKey: OfflineIssuerKey;
  certify(claims: PurseCertificateClaims): string;
}

const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

export function offlineIssuerFromSecret(secret: Buffer): OfflineIssuer {
  const seed = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'hutong/offline-purse-certificate/v1', 32));
  const privateKey: KeyObject = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new Error('not an Ed25519 key');
  const keyId = createHash('sha256').update(Buffer.from(jwk.x, 'base64url')).digest('hex').slice(0, 16);
  return {
    publicKey: { keyId, jwk: { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid: keyId, alg: 'EdDSA', use: 'sig' } },
    certify(claims) {
      const input = `${b64({ alg: 'EdDSA', typ: CERTIFICATE_TYPE, kid: keyId })}.${b64({ purse: claims.purse, cur: claims.cur, reserved: claims.reserved, key: { kty: 'EC', crv: 'P-256', x: claims.key.x, y: claims.key.y }, iat: claims.iat, exp: claims.exp })}`;
      return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
    },
  };
}

/** The issuer of this database's certificates, made once (call outside any transaction: the secret may be created). */
export function vaultOfflineIssuer(vault: Pick<Vault, 'secret'>): () => Promise<OfflineIssuer> {
  let issuer: Promise<OfflineIssuer> | undefined;
  return () => {
    issuer ??= vault
      .secret('audit_signing')
      .then(offlineIssuerFromSecret)
      .catch((error: unknown) => {
        issuer = undefined;
        throw error;
      });
    return issuer;
  };
}
