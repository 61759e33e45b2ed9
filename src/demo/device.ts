import { generateKeyPairSync } from 'node:crypto';
import { CompactSign } from 'jose';
import type { DevicePublicKey, DeviceStatement } from '../cards/index.ts';

/**
 * A wallet device as tests, stories and benchmarks play it: an ECDSA P-256 key pair (the reference wallet page keeps its
 * private key as a non-extractable WebCrypto key) that signs device statements as compact JWS (ES256).
 */
export interface Device {
  readonly publicKey: DevicePublicKey;
  sign(statement: DeviceStatement): Promise<string>;
}

export function newDevice(): Device {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.x === undefined || jwk.y === undefined) throw new Error('no P-256 coordinates');
  return {
    publicKey: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y },
    sign: (statement) => new CompactSign(new TextEncoder().encode(JSON.stringify(statement))).setProtectedHeader({ alg: 'ES256' }).sign(privateKey),
  };
}
