/**
 * DES and Triple DES (FIPS 46-3, SP 800-67) in plain TypeScript. node:crypto is avoided on purpose: the same code runs
 * in the browser wallet, where WebCrypto has no DES. EMV cryptograms are a handful of blocks, so clarity wins over
 * speed here: blocks are expanded to arrays of bits and the standard's tables are applied as written.
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
const E = [
  32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17, 16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28,
  29, 30, 31, 32, 1,
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

type Bits = readonly number[];

function toBits(bytes: Uint8Array): number[] {
  const bits: number[] = [];
  for (const byte of bytes) for (let i = 7; i >= 0; i -= 1) bits.push((byte >> i) & 1);
  return bits;
}

function fromBits(bits: Bits): Uint8Array {
  const out = new Uint8Array(bits.length / 8);
  bits.forEach((bit, i) => {
    out[i >> 3] = (out[i >> 3] ?? 0) | (bit << (7 - (i & 7)));
  });
  return out;
}

function permute(bits: Bits, table: readonly number[]): number[] {
  return table.map((position) => bits[position - 1] ?? 0);
}

function rotateLeft(bits: Bits, count: number): number[] {
  return [...bits.slice(count), ...bits.slice(0, count)];
}

/** The 16 48-bit round keys of a single DES key. */
type KeySchedule = readonly Bits[];

function keySchedule(key: Uint8Array): KeySchedule {
  if (key.length !== BLOCK_BYTES) throw new RangeError(`DES key must be 8 bytes, got ${key.length}`);
  const permuted = permute(toBits(key), PC1);
  let c = permuted.slice(0, 28);
  let d = permuted.slice(28);
  return SHIFTS.map((shift) => {
    c = rotateLeft(c, shift);
    d = rotateLeft(d, shift);
    return permute([...c, ...d], PC2);
  });
}

function feistel(right: Bits, roundKey: Bits): number[] {
  const mixed = permute(right, E).map((bit, i) => bit ^ (roundKey[i] ?? 0));
  const substituted: number[] = [];
  for (let box = 0; box < 8; box += 1) {
    const six = mixed.slice(box * 6, box * 6 + 6);
    const row = ((six[0] ?? 0) << 1) | (six[5] ?? 0);
    const column = ((six[1] ?? 0) << 3) | ((six[2] ?? 0) << 2) | ((six[3] ?? 0) << 1) | (six[4] ?? 0);
    const value = S_BOXES[box]?.[row * 16 + column] ?? 0;
    for (let i = 3; i >= 0; i -= 1) substituted.push((value >> i) & 1);
  }
  return permute(substituted, P);
}

function cryptBlock(block: Uint8Array, schedule: KeySchedule, decrypt: boolean): Uint8Array {
  if (block.length !== BLOCK_BYTES) throw new RangeError(`DES block must be 8 bytes, got ${block.length}`);
  const bits = permute(toBits(block), IP);
  let left: Bits = bits.slice(0, 32);
  let right: Bits = bits.slice(32);
  for (let round = 0; round < 16; round += 1) {
    const roundKey = schedule[decrypt ? 15 - round : round] ?? [];
    const f = feistel(right, roundKey);
    [left, right] = [right, left.map((bit, i) => bit ^ (f[i] ?? 0))];
  }
  // The halves are swapped once more before the final permutation.
  return fromBits(permute([...right, ...left], FP));
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
