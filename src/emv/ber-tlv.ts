/**
 * BER-TLV as EMV uses it (EMV Book 3 Annex B): multi-byte tags, short and long-form definite lengths, constructed
 * objects (bit 6 of the first tag byte) decoded recursively. Indefinite lengths do not occur in EMV and are refused.
 */
import type { DomainError, Err, Ok } from '../platform/result.ts';
import { bytesToHex, concatBytes, hexToBytes } from './hex.ts';

/** EMV tags are at most 3 bytes; 4 leaves room for proprietary ones without letting a tag run on forever. */
const MAX_TAG_BYTES = 4;
/** Lengths up to 0x83 (3 length bytes, 16 MiB) are representable; callers cap total size well below that. */
const MAX_LENGTH_BYTES = 3;
/** Nesting bound so hostile input cannot exhaust the stack. */
const MAX_DEPTH = 8;

export interface BerTlvPrimitive {
  readonly kind: 'primitive';
  /** Uppercase hex, e.g. "9F26". */
  readonly tag: string;
  readonly value: Uint8Array;
}

export interface BerTlvConstructed {
  readonly kind: 'constructed';
  readonly tag: string;
  readonly children: readonly BerTlv[];
}

export type BerTlv = BerTlvPrimitive | BerTlvConstructed;

export type BerTlvReason = 'truncated_tag' | 'tag_too_long' | 'truncated_length' | 'indefinite_length' | 'length_too_long' | 'truncated_value' | 'too_deep' | 'invalid_tag';

export interface BerTlvError extends DomainError<'tlv_invalid'> {
  readonly details: { readonly reason: BerTlvReason; readonly offsetBytes: number; readonly tag?: string };
}

export type BerTlvResult<T> = Ok<T> | Err<BerTlvError>;

function fail(reason: BerTlvReason, offsetBytes: number, message: string, tag?: string): Err<BerTlvError> {
  const details = tag === undefined ? { reason, offsetBytes } : { reason, offsetBytes, tag };
  return { ok: false, error: { code: 'tlv_invalid', message, details } };
}

export function isConstructedTag(tag: string): boolean {
  const first = Number.parseInt(tag.slice(0, 2), 16);
  return (first & 0x20) !== 0;
}

interface Cursor {
  readonly bytes: Uint8Array;
  offset: number;
}

function readTag(cursor: Cursor): BerTlvResult<string> {
  const start = cursor.offset;
  const first = cursor.bytes[cursor.offset];
  if (first === undefined) return fail('truncated_tag', start, `no tag byte at offset ${start}`);
  cursor.offset += 1;
  // Low five bits all set: the tag continues while bit 8 of the following bytes is set.
  if ((first & 0x1f) === 0x1f) {
    for (;;) {
      const next = cursor.bytes[cursor.offset];
      if (next === undefined) return fail('truncated_tag', start, `tag starting at offset ${start} is cut off`);
      cursor.offset += 1;
      if (cursor.offset - start > MAX_TAG_BYTES) return fail('tag_too_long', start, `tag at offset ${start} exceeds ${MAX_TAG_BYTES} bytes`);
      if ((next & 0x80) === 0) break;
    }
  }
  return { ok: true, value: bytesToHex(cursor.bytes.subarray(start, cursor.offset)) };
}

function readLength(cursor: Cursor, tag: string): BerTlvResult<number> {
  const start = cursor.offset;
  const first = cursor.bytes[cursor.offset];
  if (first === undefined) return fail('truncated_length', start, `tag ${tag}: length missing`, tag);
  cursor.offset += 1;
  if (first < 0x80) return { ok: true, value: first };
  const lengthBytes = first & 0x7f;
  if (lengthBytes === 0) return fail('indefinite_length', start, `tag ${tag}: indefinite length is not allowed in EMV`, tag);
  if (lengthBytes > MAX_LENGTH_BYTES) return fail('length_too_long', start, `tag ${tag}: ${lengthBytes} length bytes, at most ${MAX_LENGTH_BYTES}`, tag);
  let lengthValue = 0;
  for (let i = 0; i < lengthBytes; i += 1) {
    const byte = cursor.bytes[cursor.offset];
    if (byte === undefined) return fail('truncated_length', start, `tag ${tag}: long-form length is cut off`, tag);
    lengthValue = lengthValue * 256 + byte;
    cursor.offset += 1;
  }
  return { ok: true, value: lengthValue };
}

function readOne(cursor: Cursor, depth: number): BerTlvResult<BerTlv> {
  const start = cursor.offset;
  const tag = readTag(cursor);
  if (!tag.ok) return tag;
  const length = readLength(cursor, tag.value);
  if (!length.ok) return length;
  const valueStart = cursor.offset;
  const valueEnd = valueStart + length.value;
  if (valueEnd > cursor.bytes.length) {
    return fail('truncated_value', start, `tag ${tag.value}: declares ${length.value} bytes, ${cursor.bytes.length - valueStart} remain`, tag.value);
  }
  cursor.offset = valueEnd;
  const value = cursor.bytes.subarray(valueStart, valueEnd);
  if (!isConstructedTag(tag.value)) return { ok: true, value: { kind: 'primitive', tag: tag.value, value: value.slice() } };
  if (depth >= MAX_DEPTH) return fail('too_deep', start, `tag ${tag.value}: nesting deeper than ${MAX_DEPTH}`, tag.value);
  const children = decodeList(value, depth + 1, valueStart);
  if (!children.ok) return children;
  return { ok: true, value: { kind: 'constructed', tag: tag.value, children: children.value } };
}

function decodeList(bytes: Uint8Array, depth: number, baseOffset: number): BerTlvResult<BerTlv[]> {
  const cursor: Cursor = { bytes, offset: 0 };
  const out: BerTlv[] = [];
  while (cursor.offset < bytes.length) {
    const one = readOne(cursor, depth);
    if (!one.ok) {
      // Offsets are reported relative to the outermost buffer, which is what a person reading a hex dump needs.
      const d = one.error.details;
      return fail(d.reason, d.offsetBytes + baseOffset, one.error.message, d.tag);
    }
    out.push(one.value);
  }
  return { ok: true, value: out };
}

export function decodeBerTlv(bytes: Uint8Array): BerTlvResult<BerTlv[]> {
  return decodeList(bytes, 0, 0);
}

function encodeLength(lengthBytes: number): Uint8Array {
  if (lengthBytes < 0x80) return Uint8Array.of(lengthBytes);
  const digits: number[] = [];
  for (let rest = lengthBytes; rest > 0; rest = Math.floor(rest / 256)) digits.unshift(rest % 256);
  return Uint8Array.of(0x80 | digits.length, ...digits);
}

function encodeTag(tag: string): Uint8Array {
  const bytes = hexToBytes(tag);
  if (bytes === undefined || bytes.length === 0 || bytes.length > MAX_TAG_BYTES) throw new RangeError(`invalid BER-TLV tag "${tag}"`);
  return bytes;
}

/**
 * Minimal-length encoding. Throws on a malformed tag: tags come from code, not from input, so a bad one is a bug.
 * A node whose kind disagrees with the tag's constructed bit is encoded as given; decoding it back would differ.
 */
export function encodeBerTlv(nodes: readonly BerTlv[]): Uint8Array {
  return concatBytes(
    ...nodes.map((node) => {
      const value = node.kind === 'primitive' ? node.value : encodeBerTlv(node.children);
      return concatBytes(encodeTag(node.tag), encodeLength(value.length), value);
    }),
  );
}

export function primitiveTlv(tag: string, value: Uint8Array): BerTlvPrimitive {
  return { kind: 'primitive', tag, value };
}

export function constructedTlv(tag: string, children: readonly BerTlv[]): BerTlvConstructed {
  return { kind: 'constructed', tag, children };
}

export function findTlv(nodes: readonly BerTlv[], tag: string): BerTlv | undefined {
  return nodes.find((n) => n.tag === tag);
}

export type BerTlvJson = { readonly tag: string; readonly hex: string } | { readonly tag: string; readonly children: readonly BerTlvJson[] };

/** JSON-friendly view (hex values) for printing. */
export function berTlvToJson(nodes: readonly BerTlv[]): BerTlvJson[] {
  return nodes.map((n) => (n.kind === 'primitive' ? { tag: n.tag, hex: bytesToHex(n.value) } : { tag: n.tag, children: berTlvToJson(n.children) }));
}
