/**
 * CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no input/output reflection, xorout 0.
 * EMV QR (MPM) checksums use it over the UTF-8 bytes of the payload, so strings are encoded first.
 */

const POLY = 0x1021;
const INIT = 0xffff;

// A table keeps the per-byte cost at one lookup; payloads are short but the decoder runs on every scan.
const TABLE: Uint16Array = buildTable();

function buildTable(): Uint16Array {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte += 1) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit += 1) {
      crc = crc & 0x8000 ? ((crc << 1) ^ POLY) & 0xffff : (crc << 1) & 0xffff;
    }
    table[byte] = crc;
  }
  return table;
}

export function crc16Bytes(bytes: Uint8Array): number {
  let crc = INIT;
  for (const byte of bytes) {
    crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] ?? 0);
  }
  return crc;
}

const utf8 = new TextEncoder();

/** CRC over the UTF-8 encoding of `text`. */
export function crc16(text: string): number {
  return crc16Bytes(utf8.encode(text));
}

/** Four uppercase hex digits, the form EMV QR tag 63 carries. */
export function crc16Hex(text: string): string {
  return crc16(text).toString(16).toUpperCase().padStart(4, '0');
}
