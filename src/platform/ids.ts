import { createHash, randomBytes, randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lower case: no i, l, o, u.

function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * Random bytes for identifiers, drawn from a pool refilled 8 KiB at a time: one CSPRNG call per ~800 ids instead of
 * one per id (each call is a system call, and ids are made on every request). Bytes are never handed out twice.
 * Secrets and IVs do not come from here (they call randomBytes themselves).
 */
const ID_POOL_BYTES = 8_192;
const idPool = Buffer.alloc(ID_POOL_BYTES);
let idPoolOffset = ID_POOL_BYTES;

export function idRandomBytes(n: number): Uint8Array {
  if (n > ID_POOL_BYTES) throw new Error('idRandomBytes: too many bytes');
  if (idPoolOffset + n > ID_POOL_BYTES) {
    randomFillSync(idPool);
    idPoolOffset = 0;
  }
  const out = idPool.subarray(idPoolOffset, idPoolOffset + n);
  idPoolOffset += n;
  return out;
}

/** A random object id with a type prefix (`par_…`, `cus_…`): 80 bits of randomness, safe to show. */
export function newId(prefix: string): string {
  return `${prefix}_${base32(idRandomBytes(10))}`;
}

/** A deterministic id: the same inputs always give the same id (used to make retried effects idempotent). */
export function deterministicId(prefix: string, ...parts: string[]): string {
  const digest = createHash('sha256').update(parts.join('\u0000')).digest();
  return `${prefix}_${base32(digest.subarray(0, 10))}`;
}

export function randomSecret(prefix: string, bytes = 32): string {
  return `${prefix}_${randomBytes(bytes).toString('base64url')}`;
}
