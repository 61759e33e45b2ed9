/**
 * DES and Triple DES (FIPS 46-3, SP 800-67) in plain TypeScript. node:crypto is avoided on purpose: the same code runs
 * in the browser wallet, where WebCrypto has no DES. The standard's tables below are used as written; at load they are
 * compiled into lookup tables (each bit permutation as one table per input byte, the S-boxes merged with P), so that a
 * block is 32-bit word operations: the hub checks a cryptogram on every tap, several blocks each.
 */

const BLOCK_BYTES = 8;

// Tables from FIPS 46-3; entries are 1-based bit positions, bit 1 being the most significant bit of the input.
const IP = [
  58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51,
  43, 35, 27, 19, 11, 3, 61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
] as const;
const FP = [
  40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31, 38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13, 53, 21, 61, 29, 36, 4, 44, 12, 52, 20, 60, 28, 35, 3,
  43, 11, 51, 19, 59, 27, 34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25,
] as const;
const P = [16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25] as const;
const PC1 = [
  57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36, 63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
  14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
] as const;
const PC2 = [
  14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53,
  46, 42, 50, 36, 29, 32,
] as const;
const SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1] as const;
const S_BOXES: readonly (readonly number[])[] = [
  [14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8, 4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13],
  [15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5, 0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9],
  [10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1, 13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12],
  [7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9, 10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14],
  [2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6, 4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3],
  [12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8, 9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13],
  [4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6, 1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12],
  [13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2, 7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11],
];

/**
 * A bit permutation compiled to lookup tables: output bit j (0 = most significant; `table[j]` is its 1-based input
 * position, bit 1 being the most significant bit of the first input byte) is set by OR-ing one entry per input byte.
 * Outputs of up to 64 bits come back as two 32-bit words, bit j in word j >> 5 at bit 31 - (j & 31).
 */
interface Permutation {
  readonly inBytes: number;
  readonly hi: Int32Array;
  readonly lo: Int32Array;
}

function compilePermutation(table: readonly number[], inBits: number): Permutation {
  const inBytes = inBits / 8;
  const hi = new Int32Array(inBytes * 256);
  const lo = new Int32Array(inBytes * 256);
  table.forEach((position, j) => {
    const byteIndex = (position - 1) >> 3;
    const mask = 0x80 >> ((position - 1) & 7);
    for (let value = 0; value < 256; value += 1) {
      if ((value & mask) === 0) continue;
      const at = byteIndex * 256 + value;
      if (j < 32) hi[at] = (hi[at] ?? 0) | (1 << (31 - j));
      else lo[at] = (lo[at] ?? 0) | (1 << (63 - j));
    }
  });
  return { inBytes, hi, lo };
}

// Where permute() leaves its result: a typed array, since module variables holding 32-bit values that do not fit a
// small integer would allocate a heap number on every write. (One block at a time: JavaScript runs one at a time.)
const out = new Int32Array(2);

/** Applies a compiled permutation to the input bits held in two words (the first inBytes bytes, most significant first). */
function permute(p: Permutation, w0: number, w1: number): void {
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < p.inBytes; i += 1) {
    const byte = i < 4 ? (w0 >>> (24 - 8 * i)) & 0xff : (w1 >>> (56 - 8 * i)) & 0xff;
    const at = i * 256 + byte;
    hi |= p.hi[at] ?? 0;
    lo |= p.lo[at] ?? 0;
  }
  out[0] = hi;
  out[1] = lo;
}

const IP_TABLE = compilePermutation(IP, 64);
const FP_TABLE = compilePermutation(FP, 64);
const PC1_TABLE = compilePermutation(PC1, 64);
const PC2_TABLE = compilePermutation(PC2, 56);

/**
 * S-box i merged with P: SP[i * 64 + x] is P applied to S-box i's output for the 6-bit input x (bits b1..b6 of the
 * standard, b1 most significant: row b1b6, column b2b3b4b5), placed at the box's 4-bit position.
 */
const SP = ((): Int32Array => {
  const p = compilePermutation(P, 32);
  const table = new Int32Array(8 * 64);
  for (let box = 0; box < 8; box += 1) {
    for (let x = 0; x < 64; x += 1) {
      const row = ((x >> 4) & 2) | (x & 1);
      const column = (x >> 1) & 0xf;
      const value = S_BOXES[box]?.[row * 16 + column] ?? 0;
      permute(p, value << (28 - 4 * box), 0);
      table[box * 64 + x] = out[0] ?? 0;
    }
  }
  return table;
})();

/** The 16 round keys of a single DES key, each as eight 6-bit groups (the inputs XOR-ed into the S-boxes). */
type KeySchedule = Uint8Array;

const MASK_28 = 0x0fffffff;

function keySchedule(key: Uint8Array): KeySchedule {
  if (key.length !== BLOCK_BYTES) throw new RangeError(`DES key must be 8 bytes, got ${key.length}`);
  permute(PC1_TABLE, word(key, 0), word(key, 4));
  // PC1 gives 56 bits: C is the first 28, D the next 28.
  const pc1Hi = out[0] ?? 0;
  let c = pc1Hi >>> 4;
  let d = ((pc1Hi & 0xf) << 24) | ((out[1] ?? 0) >>> 8);
  const schedule = new Uint8Array(16 * 8);
  for (let round = 0; round < 16; round += 1) {
    const shift = SHIFTS[round] ?? 1;
    c = ((c << shift) | (c >>> (28 - shift))) & MASK_28;
    d = ((d << shift) | (d >>> (28 - shift))) & MASK_28;
    permute(PC2_TABLE, (c << 4) | (d >>> 24), d << 8);
    // 48 bits: the first 32 in out[0], the last 16 at the top of out[1]; eight groups of 6.
    const hi = out[0] ?? 0;
    const lo = out[1] ?? 0;
    const at = round * 8;
    schedule[at] = hi >>> 26;
    schedule[at + 1] = (hi >>> 20) & 0x3f;
    schedule[at + 2] = (hi >>> 14) & 0x3f;
    schedule[at + 3] = (hi >>> 8) & 0x3f;
    schedule[at + 4] = (hi >>> 2) & 0x3f;
    schedule[at + 5] = ((hi & 3) << 4) | (lo >>> 28);
    schedule[at + 6] = (lo >>> 22) & 0x3f;
    schedule[at + 7] = (lo >>> 16) & 0x3f;
  }
  return schedule;
}

function word(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] ?? 0) << 24) | ((bytes[offset + 1] ?? 0) << 16) | ((bytes[offset + 2] ?? 0) << 8) | (bytes[offset + 3] ?? 0);
}

/** The round function: E expansion (the eight 6-bit groups read straight off R), key mixing, S-boxes and P. */
function feistel(r: number, k: Uint8Array, at: number): number {
  return (
    (SP[(((r & 1) << 5) | (r >>> 27)) ^ (k[at] ?? 0)] ?? 0) |
    (SP[64 + (((r >>> 23) & 0x3f) ^ (k[at + 1] ?? 0))] ?? 0) |
    (SP[128 + (((r >>> 19) & 0x3f) ^ (k[at + 2] ?? 0))] ?? 0) |
    (SP[192 + (((r >>> 15) & 0x3f) ^ (k[at + 3] ?? 0))] ?? 0) |
    (SP[256 + (((r >>> 11) & 0x3f) ^ (k[at + 4] ?? 0))] ?? 0) |
    (SP[320 + (((r >>> 7) & 0x3f) ^ (k[at + 5] ?? 0))] ?? 0) |
    (SP[384 + (((r >>> 3) & 0x3f) ^ (k[at + 6] ?? 0))] ?? 0) |
    (SP[448 + ((((r & 0x1f) << 1) | (r >>> 31)) ^ (k[at + 7] ?? 0))] ?? 0)
  );
}

/** One DES pass over the block held in two words; leaves the result in `out`. */
function cryptWords(w0: number, w1: number, schedule: KeySchedule, decrypt: boolean): void {
  permute(IP_TABLE, w0, w1);
  let left = out[0] ?? 0;
  let right = out[1] ?? 0;
  for (let round = 0; round < 16; round += 1) {
    const next = left ^ feistel(right, schedule, (decrypt ? 15 - round : round) * 8);
    left = right;
    right = next;
  }
  // The halves are swapped once more before the final permutation.
  permute(FP_TABLE, right, left);
}

function cryptBlock(block: Uint8Array, schedule: KeySchedule, decrypt: boolean): Uint8Array {
  if (block.length !== BLOCK_BYTES) throw new RangeError(`DES block must be 8 bytes, got ${block.length}`);
  cryptWords(word(block, 0), word(block, 4), schedule, decrypt);
  const hi = out[0] ?? 0;
  const lo = out[1] ?? 0;
  return Uint8Array.of(hi >>> 24, hi >>> 16, hi >>> 8, hi, lo >>> 24, lo >>> 16, lo >>> 8, lo);
}

export function desEncryptBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  return cryptBlock(block, keySchedule(key), false);
}

export function desDecryptBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  return cryptBlock(block, keySchedule(key), true);
}

/** K1, K2, K3 of a 2-key (K1K2, used as K1K2K1) or 3-key Triple DES key. */
function tdesSchedules(key: Uint8Array): readonly [KeySchedule, KeySchedule, KeySchedule] {
  if (key.length !== 16 && key.length !== 24) throw new RangeError(`Triple DES key must be 16 or 24 bytes, got ${key.length}`);
  const k1 = keySchedule(key.subarray(0, 8));
  const k2 = keySchedule(key.subarray(8, 16));
  const k3 = key.length === 24 ? keySchedule(key.subarray(16, 24)) : k1;
  return [k1, k2, k3];
}

type BlockCipher = (block: Uint8Array) => Uint8Array;

function tdesEncryptor(key: Uint8Array): BlockCipher {
  const [k1, k2, k3] = tdesSchedules(key);
  return (block) => cryptBlock(cryptBlock(cryptBlock(block, k1, false), k2, true), k3, false);
}

function tdesDecryptor(key: Uint8Array): BlockCipher {
  const [k1, k2, k3] = tdesSchedules(key);
  return (block) => cryptBlock(cryptBlock(cryptBlock(block, k3, true), k2, false), k1, true);
}

function blocks(data: Uint8Array): Uint8Array[] {
  if (data.length % BLOCK_BYTES !== 0) throw new RangeError(`data must be a multiple of 8 bytes, got ${data.length}`);
  const out: Uint8Array[] = [];
  for (let offset = 0; offset < data.length; offset += BLOCK_BYTES) out.push(data.subarray(offset, offset + BLOCK_BYTES));
  return out;
}

function joinBlocks(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.length * BLOCK_BYTES);
  parts.forEach((p, i) => out.set(p, i * BLOCK_BYTES));
  return out;
}

function xor8(a: Uint8Array, b: Uint8Array): Uint8Array {
  return a.map((byte, i) => byte ^ (b[i] ?? 0));
}

function ecb(cipher: BlockCipher, data: Uint8Array): Uint8Array {
  return joinBlocks(blocks(data).map(cipher));
}

function cbcEncrypt(cipher: BlockCipher, data: Uint8Array, iv: Uint8Array): Uint8Array {
  let chain = iv;
  return joinBlocks(
    blocks(data).map((block) => {
      chain = cipher(xor8(block, chain));
      return chain;
    }),
  );
}

function cbcDecrypt(cipher: BlockCipher, data: Uint8Array, iv: Uint8Array): Uint8Array {
  let chain = iv;
  return joinBlocks(
    blocks(data).map((block) => {
      const plain = xor8(cipher(block), chain);
      chain = block;
      return plain;
    }),
  );
}

const ZERO_IV = new Uint8Array(BLOCK_BYTES);

function checkIv(iv: Uint8Array): Uint8Array {
  if (iv.length !== BLOCK_BYTES) throw new RangeError(`IV must be 8 bytes, got ${iv.length}`);
  return iv;
}

export function desEncryptEcb(key: Uint8Array, data: Uint8Array): Uint8Array {
  const schedule = keySchedule(key);
  return ecb((b) => cryptBlock(b, schedule, false), data);
}

export function desEncryptCbc(key: Uint8Array, data: Uint8Array, iv: Uint8Array = ZERO_IV): Uint8Array {
  const schedule = keySchedule(key);
  return cbcEncrypt((b) => cryptBlock(b, schedule, false), data, checkIv(iv));
}

export function tdesEncryptEcb(key: Uint8Array, data: Uint8Array): Uint8Array {
  return ecb(tdesEncryptor(key), data);
}

export function tdesDecryptEcb(key: Uint8Array, data: Uint8Array): Uint8Array {
  return ecb(tdesDecryptor(key), data);
}

export function tdesEncryptCbc(key: Uint8Array, data: Uint8Array, iv: Uint8Array = ZERO_IV): Uint8Array {
  return cbcEncrypt(tdesEncryptor(key), data, checkIv(iv));
}

export function tdesDecryptCbc(key: Uint8Array, data: Uint8Array, iv: Uint8Array = ZERO_IV): Uint8Array {
  return cbcDecrypt(tdesDecryptor(key), data, checkIv(iv));
}

/** Sets the low bit of each byte so every byte has an odd number of 1 bits (DES key parity). */
export function adjustKeyParity(key: Uint8Array): Uint8Array {
  return key.map((byte) => {
    let ones = 0;
    for (let v = byte >> 1; v > 0; v >>= 1) ones += v & 1;
    return (byte & 0xfe) | (ones % 2 === 0 ? 1 : 0);
  });
}

/** Key check value: leftmost bytes of the key encrypting a zero block (EMV/ANSI convention, 2 or 3 bytes). */
export function keyCheckValue(key: Uint8Array, lengthBytes = 3): Uint8Array {
  const encrypted = key.length === 8 ? desEncryptBlock(key, ZERO_IV) : tdesEncryptEcb(key, ZERO_IV);
  return encrypted.slice(0, lengthBytes);
}
