/**
 * Hex and byte helpers without Buffer, so modules that use them also run in a browser wallet.
 */

const HEX_PATTERN = /^(?:[0-9A-Fa-f]{2})*$/;

export function isHex(text: string, byteLength?: number): boolean {
  return HEX_PATTERN.test(text) && (byteLength === undefined || text.length === byteLength * 2);
}

/** Returns undefined for odd-length or non-hex input instead of guessing. */
export function hexToBytes(text: string): Uint8Array | undefined {
  if (!HEX_PATTERN.test(text)) return undefined;
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = Number.parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

/** For callers that validated already: throws on bad input, since reaching it is a bug. */
export function mustHexToBytes(text: string): Uint8Array {
  const bytes = hexToBytes(text);
  if (bytes === undefined) throw new TypeError(`not an even-length hex string: "${text}"`);
  return bytes;
}

export function bytesToHex(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out.toUpperCase();
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function xorBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== b.length) throw new RangeError(`xor of ${a.length} and ${b.length} bytes`);
  return a.map((byte, i) => byte ^ (b[i] ?? 0));
}

/** Compares without an early exit, so timing does not reveal how many leading bytes matched. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  const length = Math.max(a.length, b.length);
  for (let i = 0; i < length; i += 1) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}
