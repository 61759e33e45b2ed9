import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { OPAQUE } from '../api/index.ts';
import { Type, type Static } from '@sinclair/typebox';
import type { Vault } from '../platform/vault.ts';
import { canonicalJson } from './chain.ts';

/**
 * Signed checkpoints of the audit chain. A checkpoint says "the chain held `chainSeq` records and its head hash was
 * `headHash` at `at`", is numbered (`seq`) and names the previous checkpoint's hash, and is signed with Ed25519.
 *
 * What is signed is the canonical JSON (keys sorted, no spaces) of
 *   { format, seq, chainSeq, headHash, at, prevHash, keyId }
 * with `seq` and `chainSeq` as decimal strings and `at` as ISO 8601 in UTC with milliseconds; `hash` is the SHA-256
 * (hex) of those same bytes. Anyone holding the public key (`GET /v1/operator/audit/public-key`) can check an
 * exported checkpoint without the hub.
 */
export const CHECKPOINT_FORMAT = 'hutong.audit.checkpoint.v1';

/** PKCS#8 DER header of an Ed25519 private key (RFC 8410): the 32-byte seed follows it. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED25519_SEED_BYTES = 32;

export interface CheckpointContent {
  readonly seq: bigint;
  readonly chainSeq: bigint;
  readonly headHash: string;
  readonly at: Date;
  readonly prevHash: string;
  readonly keyId: string;
}

export interface AuditCheckpoint extends CheckpointContent {
  readonly hash: string;
  /** base64url of the 64-byte Ed25519 signature. */
  readonly signature: string;
}

export interface AuditPublicKey {
  readonly algorithm: 'Ed25519';
  readonly keyId: string;
  /** SubjectPublicKeyInfo, PEM. */
  readonly pem: string;
  readonly jwk: { readonly kty: 'OKP'; readonly crv: 'Ed25519'; readonly x: string; readonly kid: string; readonly alg: 'EdDSA'; readonly use: 'sig' };
}

export interface CheckpointSigner {
  readonly publicKey: AuditPublicKey;
  sign(content: CheckpointContent): AuditCheckpoint;
  /** Whether the checkpoint's hash matches its content (false: a field was changed after signing). */
  hashMatches(checkpoint: AuditCheckpoint): boolean;
  /** Whether the checkpoint was signed by this key (its key id and its signature). */
  signatureValid(checkpoint: AuditCheckpoint): boolean;
}

export function checkpointPayload(content: CheckpointContent): string {
  return canonicalJson({
    format: CHECKPOINT_FORMAT,
    seq: content.seq.toString(),
    chainSeq: content.chainSeq.toString(),
    headHash: content.headHash,
    at: content.at.toISOString(),
    prevHash: content.prevHash,
    keyId: content.keyId,
  });
}

export function checkpointHash(content: CheckpointContent): string {
  return createHash('sha256').update(checkpointPayload(content)).digest('hex');
}

function describePublicKey(key: KeyObject): AuditPublicKey {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new Error('the audit signing key is not an Ed25519 key');
  // A short, stable name for the key: what a checkpoint records so that a checkpoint signed by another key is named as such.
  const keyId = createHash('sha256').update(Buffer.from(jwk.x, 'base64url')).digest('hex').slice(0, 16);
  const pem = key.export({ format: 'pem', type: 'spki' });
  return { algorithm: 'Ed25519', keyId, pem: typeof pem === 'string' ? pem : pem.toString('utf8'), jwk: { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid: keyId, alg: 'EdDSA', use: 'sig' } };
}

/** The Ed25519 key whose 32-byte seed is the given secret. */
export function signerFromSeed(seed: Buffer): CheckpointSigner {
  if (seed.length !== ED25519_SEED_BYTES) throw new Error('the audit signing seed must be 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKeyObject = createPublicKey(privateKey);
  const publicKey = describePublicKey(publicKeyObject);
  return {
    publicKey,
    sign(content) {
      if (content.keyId !== publicKey.keyId) throw new Error('a checkpoint must name the key that signs it');
      const payload = Buffer.from(checkpointPayload(content));
      return { ...content, hash: createHash('sha256').update(payload).digest('hex'), signature: sign(null, payload, privateKey).toString('base64url') };
    },
    hashMatches: (checkpoint) => checkpointHash(checkpoint) === checkpoint.hash,
    signatureValid(checkpoint) {
      if (checkpoint.keyId !== publicKey.keyId) return false;
      const signature = Buffer.from(checkpoint.signature, 'base64url');
      if (signature.length !== 64) return false;
      return verify(null, Buffer.from(checkpointPayload(checkpoint)), publicKeyObject, signature);
    },
  };
}

/**
 * The hub's checkpoint signer: its seed is the vault's `audit_signing` secret (created on first use, wrapped by the
 * KEK, shared through the database). Call it outside any transaction: a key created inside one would vanish with its
 * rollback while this process kept using it.
 */
export function vaultCheckpointSigner(vault: Vault): () => Promise<CheckpointSigner> {
  let signer: Promise<CheckpointSigner> | undefined;
  return () => {
    signer ??= vault.secret('audit_signing')
      .then(signerFromSeed)
      .catch((error: unknown) => {
        signer = undefined; // the next call tries again (the database may be back)
        throw error;
      });
    return signer;
  };
}

// ---- the wire and export format (the JSON `hutong audit checkpoint` prints and `--against` reads) ----

const Hex64 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Int8String = (min: 0 | 1) => Type.String({ pattern: min === 0 ? '^(0|[1-9][0-9]{0,17})$' : '^[1-9][0-9]{0,17}$' });

export const AuditCheckpointSchema = Type.Object(
  {
    format: Type.Literal(CHECKPOINT_FORMAT),
    seq: Int8String(1),
    chainSeq: Int8String(0),
    headHash: Hex64,
    at: Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$', description: 'ISO 8601, UTC, milliseconds' }),
    prevHash: Hex64,
    keyId: Type.String({ pattern: '^[0-9a-f]{16}$', description: 'The signing key’s fingerprint (not a hub object)', 'x-ref': OPAQUE }),
    hash: Hex64,
    signature: Type.String({ pattern: '^[A-Za-z0-9_-]{86}$', description: 'Ed25519 signature, base64url' }),
    publicKey: Type.Optional(Type.String({ maxLength: 400, description: 'The signing public key (SPKI PEM), in exported checkpoints' })),
  },
  { $id: 'AuditCheckpoint', additionalProperties: false },
);
export type AuditCheckpointWire = Static<typeof AuditCheckpointSchema>;

export function checkpointToWire(checkpoint: AuditCheckpoint, publicKey?: AuditPublicKey): AuditCheckpointWire {
  return {
    format: CHECKPOINT_FORMAT,
    seq: checkpoint.seq.toString(),
    chainSeq: checkpoint.chainSeq.toString(),
    headHash: checkpoint.headHash,
    at: checkpoint.at.toISOString(),
    prevHash: checkpoint.prevHash,
    keyId: checkpoint.keyId,
    hash: checkpoint.hash,
    signature: checkpoint.signature,
    ...(publicKey !== undefined ? { publicKey: publicKey.pem } : {}),
  };
}

/**
 * An exported checkpoint read back (already checked against AuditCheckpointSchema); undefined when its time is not a
 * real instant written the way the hub writes it (then it cannot be the payload the hub signed).
 */
export function checkpointFromWire(wire: AuditCheckpointWire): { checkpoint: AuditCheckpoint; publicKeyPem: string | undefined } | undefined {
  const at = new Date(wire.at);
  if (Number.isNaN(at.getTime()) || at.toISOString() !== wire.at) return undefined;
  return {
    checkpoint: {
      seq: BigInt(wire.seq),
      chainSeq: BigInt(wire.chainSeq),
      headHash: wire.headHash,
      at,
      prevHash: wire.prevHash,
      keyId: wire.keyId,
      hash: wire.hash,
      signature: wire.signature,
    },
    publicKeyPem: wire.publicKey,
  };
}
