import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { Clock } from './clock.ts';
import { sqlState, type Db, type Queryable } from './db.ts';
import { newId } from './ids.ts';
import { StartupError } from './startup-error.ts';

/**
 * The key-encrypting key the hub was given does not open a data key of its database (another HUTONG_KEK, another key
 * file): nothing sealed could be read. Found at start by `warm()`, so the hub refuses to start, in one line.
 */
export class KekMismatchError extends StartupError {
  constructor(detail: string) {
    super(`the key-encrypting key does not open this database's data keys: ${detail}`);
    this.name = 'KekMismatchError';
  }
}

/**
 * Envelope encryption for everything the hub must keep secret but read back (card numbers, webhook signing secrets,
 * token keys). A key-encrypting key (KEK) from config or a 0600 key file (in a key directory outside the data
 * directory, so that a copy of the data is not also a copy of its key) wraps data keys stored in `data_keys`;
 * data keys encrypt values with AES-256-GCM. Every ciphertext names its data key, every wrapped data key names its
 * KEK, so `hutong keys rotate` re-wraps data keys under a new KEK without touching (or stopping reads of) the values.
 * Lookups never decrypt: they use a keyed hash (HMAC-SHA256 under the stable `index` key).
 */
export interface KekRing {
  readonly activeId: string;
  readonly keys: Readonly<Record<string, string>>; // id → base64 32-byte key
}

export interface KeySource {
  load(): KekRing;
  /** Adds a new active KEK (old ones stay for unwrapping until rotation finishes). */
  addActive(): KekRing;
  /** Drops every KEK but the active one, after a rotation re-wrapped all data keys. */
  retireInactive(): KekRing;
  readonly description: string;
}

export function fileKeySource(path: string): KeySource & { created: boolean } {
  let created = false;
  const write = (ring: KekRing) => {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, JSON.stringify(ring, null, 2), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  };
  const fresh = (): KekRing => {
    const id = newId('kek');
    return { activeId: id, keys: { [id]: randomBytes(32).toString('base64') } };
  };
  const source = {
    description: `key file ${path}`,
    get created() {
      return created;
    },
    load(): KekRing {
      if (!existsSync(path)) {
        write(fresh());
        created = true;
      }
      return JSON.parse(readFileSync(path, 'utf8')) as KekRing;
    },
    addActive(): KekRing {
      const ring = source.load();
      const next = fresh();
      const updated = { activeId: next.activeId, keys: { ...ring.keys, ...next.keys } };
      write(updated);
      return updated;
    },
    retireInactive(): KekRing {
      const ring = source.load();
      const active = ring.keys[ring.activeId];
      if (active === undefined) throw new Error('key file has no active key');
      const updated = { activeId: ring.activeId, keys: { [ring.activeId]: active } };
      write(updated);
      return updated;
    },
  };
  return source;
}

/** A KEK given in config (HUTONG_KEK, base64 of 32 bytes). Rotation of a configured KEK is the operator's job. */
export function envKeySource(base64: string, id = 'kek_env'): KeySource {
  if (Buffer.from(base64, 'base64').length !== 32) throw new StartupError('HUTONG_KEK must be base64 of 32 bytes');
  const ring = { activeId: id, keys: { [id]: base64 } };
  return {
    description: 'HUTONG_KEK',
    load: () => ring,
    addActive: () => {
      throw new Error('the KEK comes from HUTONG_KEK: rotate it by configuring a new key, not with this command');
    },
    retireInactive: () => ring,
  };
}

/** Where the hub keeps its key file, and where it was kept before: inside the data directory, beside the data. */
export interface KeyFileSettings {
  readonly dataDir: string;
  readonly keyDir: string;
  /** HUTONG_KEK: when set, no key file is used. */
  readonly kek: string | undefined;
}

export const keyFilePath = (keyDir: string) => join(keyDir, 'kek.json');
/** The key file's location before it moved out of the data directory. */
export const legacyKeyFilePath = (dataDir: string) => join(dataDir, 'keys', 'kek.json');

export type KeyFileNotice = (level: 'info' | 'warn', message: string) => void;

/**
 * Moves a key file found at the old location (`<data dir>/keys/kek.json`) to the key directory, so that data written
 * under it stays readable. Nothing moves when the new location already has a key file (the old one is then reported
 * and left alone: it may hold a key-encrypting key the new one lacks). Safe when several processes start at once: the
 * move is a rename, and the process that loses the race finds the file already moved.
 */
export function relocateLegacyKeyFile(settings: KeyFileSettings, notice: KeyFileNotice): void {
  const legacy = legacyKeyFilePath(settings.dataDir);
  const target = keyFilePath(settings.keyDir);
  if (legacy === target || !existsSync(legacy)) return;
  if (existsSync(target)) {
    notice('warn', `a key file is at the old location ${legacy} as well as at ${target}: the hub uses ${target}; remove the old one once no data needs it`);
    return;
  }
  mkdirSync(settings.keyDir, { recursive: true, mode: 0o700 });
  try {
    renameSync(legacy, target);
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? error.code : undefined;
    if (code === 'ENOENT' && existsSync(target)) return; // another process moved it first
    if (code !== 'EXDEV') throw error;
    // Another filesystem: copy to a temporary name, then rename into place (never a half-written key file).
    const tmp = `${target}.tmp`;
    copyFileSync(legacy, tmp);
    chmodSync(tmp, 0o600);
    renameSync(tmp, target);
    unlinkSync(legacy);
  }
  chmodSync(target, 0o600);
  // The old keys/ directory goes when the key file was all it held (another starting process may have removed it).
  const legacyDir = dirname(legacy);
  try {
    if (readdirSync(legacyDir).length === 0) rmdirSync(legacyDir);
  } catch {
    // Already gone, or refilled: either way nothing of ours to remove.
  }
  notice('info', `moved the key file from ${legacy} to ${target}: it no longer sits in the data directory beside the data it protects`);
}

/** HUTONG_KEK when configured, else the key file in the key directory (moved there from the data directory if need be). */
export function defaultKeySource(settings: KeyFileSettings, notice: KeyFileNotice = () => undefined): KeySource {
  if (settings.kek !== undefined && settings.kek !== '') return envKeySource(settings.kek);
  relocateLegacyKeyFile(settings, notice);
  return fileKeySource(keyFilePath(settings.keyDir));
}

export type KeyPurpose = 'data' | 'index' | 'jwt' | 'audit_signing' | 'connector_signing';

/** The purposes of the stable secrets (`Vault.secret`): one key each, shared by every hub process through the database. */
export type SecretPurpose = Exclude<KeyPurpose, 'data'>;

const GCM_IV_BYTES = 12;
const UNIQUE_VIOLATION = '23505';
const MAX_ROTATION_ROUNDS = 10;

function gcmSeal(key: Buffer, plaintext: Buffer, aad: string): string {
  const iv = randomBytes(GCM_IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, ct, cipher.getAuthTag()]).toString('base64url');
}

function gcmOpen(key: Buffer, sealed: string, aad: string): Buffer {
  const raw = Buffer.from(sealed, 'base64url');
  const iv = raw.subarray(0, GCM_IV_BYTES);
  const tag = raw.subarray(raw.length - 16);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(raw.subarray(GCM_IV_BYTES, raw.length - 16)), decipher.final()]);
}

export interface Vault {
  /** Encrypts a value: `v1.<dataKeyId>.<iv|ciphertext|tag>`. */
  seal(plaintext: string): Promise<string>;
  open(sealed: string): Promise<string>;
  /** Keyed hash for lookups (stable across KEK rotation). */
  indexHash(value: string): Promise<string>;
  /** A stable 32-byte secret for a purpose (the JWT signing key, the seed of the audit checkpoints' Ed25519 key). */
  secret(purpose: SecretPurpose): Promise<Buffer>;
  /**
   * Makes sure the data, index and JWT keys exist, outside any transaction. Called once at start: a key created
   * inside a request's transaction would vanish with its rollback while this process kept using it.
   */
  warm(): Promise<void>;
  /** Re-wraps every data key under a new KEK; returns how many were re-wrapped. */
  rotate(onProgress?: (done: number, total: number) => void): Promise<{ rewrapped: number; kekId: string }>;
}

export function createVault(deps: { db: Db; clock: Clock; keys: KeySource }): Vault {
  const { db, clock, keys } = deps;
  let ring = keys.load();
  const unwrapped = new Map<string, Buffer>();
  let activeDataKey: Promise<{ id: string; key: Buffer }> | undefined;
  const secrets = new Map<string, Promise<Buffer>>();

  const kek = (id: string): Buffer => {
    let value = ring.keys[id];
    if (value === undefined) {
      // Another process may have rotated: read the key source again before giving up.
      ring = keys.load();
      value = ring.keys[id];
    }
    if (value === undefined) throw new Error(`key-encrypting key ${id} is not available (${keys.description})`);
    return Buffer.from(value, 'base64');
  };

  const unwrap = async (id: string, q: Queryable = db): Promise<Buffer> => {
    const cached = unwrapped.get(id);
    if (cached !== undefined) return cached;
    const [row] = await q.query<{ kek_id: string; wrapped: string }>('select kek_id, wrapped from data_keys where id = $1', [id]);
    if (row === undefined) throw new Error(`data key ${id} not found`);
    let wrapping: Buffer;
    try {
      wrapping = kek(row.kek_id);
    } catch {
      throw new KekMismatchError(`data key ${id} is wrapped under ${row.kek_id}, which ${keys.description} does not hold`);
    }
    let key: Buffer;
    try {
      key = gcmOpen(wrapping, row.wrapped, id);
    } catch {
      // GCM's tag does not verify: a key of the same id, but not the one that wrapped this data key.
      throw new KekMismatchError(`data key ${id} is wrapped under ${row.kek_id}, and the key ${keys.description} gives under that id does not open it`);
    }
    unwrapped.set(id, key);
    return key;
  };

  const createKey = async (purpose: KeyPurpose): Promise<{ id: string; key: Buffer }> => {
    const id = newId('dk');
    const key = randomBytes(32);
    await db.query('insert into data_keys (id, purpose, kek_id, wrapped, created_at) values ($1, $2, $3, $4, $5)', [
      id,
      purpose,
      ring.activeId,
      gcmSeal(kek(ring.activeId), key, id),
      clock.now(),
    ]);
    unwrapped.set(id, key);
    return { id, key };
  };

  const newest = async (purpose: KeyPurpose): Promise<{ id: string; key: Buffer }> => {
    // Oldest first for the stable keys (index, jwt) so that two processes racing to create one converge on the same.
    const order = purpose === 'data' ? 'desc' : 'asc';
    const [row] = await db.query<{ id: string }>(
      `select id from data_keys where purpose = $1 and retired_at is null order by created_at ${order}, id ${order} limit 1`,
      [purpose],
    );
    if (row !== undefined) return { id: row.id, key: await unwrap(row.id) };
    // A unique index may allow one key of the purpose only (audit_signing): another process created it first.
    await createKey(purpose).catch((error: unknown) => {
      if (sqlState(error) !== UNIQUE_VIOLATION) throw error;
    });
    return newest(purpose);
  };

  const dataKey = () => {
    activeDataKey ??= newest('data').catch((error: unknown) => {
      activeDataKey = undefined;
      throw error;
    });
    return activeDataKey;
  };

  const secret = (purpose: SecretPurpose): Promise<Buffer> => {
    let cached = secrets.get(purpose);
    if (cached === undefined) {
      cached = newest(purpose).then((k) => k.key);
      cached.catch(() => secrets.delete(purpose));
      secrets.set(purpose, cached);
    }
    return cached;
  };

  return {
    async seal(plaintext) {
      const { id, key } = await dataKey();
      return `v1.${id}.${gcmSeal(key, Buffer.from(plaintext, 'utf8'), id)}`;
    },
    async open(sealed) {
      const [version, id, body] = sealed.split('.');
      if (version !== 'v1' || id === undefined || body === undefined) throw new Error('not a sealed value');
      return gcmOpen(await unwrap(id), body, id).toString('utf8');
    },
    async indexHash(value) {
      return createHmac('sha256', await secret('index')).update(value).digest('base64url');
    },
    secret,
    async warm() {
      await dataKey();
      await secret('index');
      await secret('jwt');
    },
    async rotate(onProgress) {
      ring = keys.addActive();
      let done = 0;
      // Re-read until no key is wrapped under an old KEK: a process that started during the rotation may have
      // created a data key under the KEK it had loaded. Bounded: each round re-wraps what it finds.
      for (let round = 0; round < MAX_ROTATION_ROUNDS; round++) {
        const rows = await db.query<{ id: string }>('select id from data_keys where kek_id <> $1 order by id', [ring.activeId]);
        if (rows.length === 0) break;
        const total = done + rows.length;
        for (const { id } of rows) {
          await db.transaction(async (tx) => {
            const [row] = await tx.query<{ kek_id: string; wrapped: string }>('select kek_id, wrapped from data_keys where id = $1 for update', [id]);
            if (row === undefined || row.kek_id === ring.activeId) return;
            const key = gcmOpen(kek(row.kek_id), row.wrapped, id);
            await tx.query('update data_keys set kek_id = $2, wrapped = $3 where id = $1', [id, ring.activeId, gcmSeal(kek(ring.activeId), key, id)]);
          });
          done++;
          onProgress?.(done, total);
        }
      }
      ring = keys.retireInactive();
      return { rewrapped: done, kekId: ring.activeId };
    },
  };
}
