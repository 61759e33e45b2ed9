/**
 * EMV QR Code, consumer-presented mode (CPM): base64 of BER-TLV.
 *
 * Layout (EMVCo CPM v1.1):
 *   85 "CPV01"                             payload format indicator, first
 *   61 { 4F AID, 50 label, …, 63 { … } }   application template, one or more; 63 is its transparent template
 *   62 {                                   common data template (optional when the application template carries it)
 *     5A PAN/token (compressed numeric), 5F20 name, 5F24 expiry YYMMDD, 5F2D language,
 *     64 { 9F02 amount, 9F10 IAD, 9F26 AC, 9F36 ATC, 9F37 UN }   common data transparent template
 *   }
 * EMVCo lets the transaction data sit in the common data template (shared by every application) or in an application
 * template (that application's own): the decoder is liberal and reads both. UnionPay's codes, for instance, carry
 * everything in 61 — `61 { 4F, 57 track 2 equivalent data, 5F34 PSN, 63 { 9F26, 9F27, 9F10, 9F36, 82, 9F37 } }` — with
 * no 62 at all, and name the PAN in 57 rather than 5A. The encoder is strict: it always writes the EMVCo example's
 * layout (5A and the rest in 62, the cryptographic data in 64, in tag order).
 */
import type { DomainError, Err, Ok } from '../platform/result.ts';
import { constructedTlv, decodeBerTlv, encodeBerTlv, primitiveTlv, type BerTlv } from './ber-tlv.ts';
import { bytesToHex, hexToBytes, isHex } from './hex.ts';

export const CPM_MAX_PAYLOAD_BYTES = 1024;
const MAX_BASE64_CHARS = Math.ceil(CPM_MAX_PAYLOAD_BYTES / 3) * 4;
const PAYLOAD_FORMAT_INDICATOR = 'CPV01';

export type CpmReason =
  | 'not_base64'
  | 'payload_too_long'
  | 'tlv'
  | 'invalid_payload_format_indicator'
  | 'missing_application_template'
  | 'invalid_application_template'
  | 'missing_mandatory_tag'
  | 'invalid_field'
  | 'duplicate_tag';

export interface CpmError extends DomainError<'cpm_invalid'> {
  readonly details: { readonly reason: CpmReason; readonly tag?: string; readonly offsetBytes?: number };
}

export type CpmResult<T> = Ok<T> | Err<CpmError>;

export interface CpmApplication {
  /** Hex. */
  readonly aid: string;
  readonly label: string | undefined;
}

/**
 * Where the transaction data was read: the common data template 62 (the EMVCo example), an application template 61
 * (UnionPay's layout), or both (common data plus the application's own).
 */
export type CpmDataLayout = 'common' | 'application' | 'common_and_application';

export interface DecodedCpm {
  readonly tlv: readonly BerTlv[];
  readonly payloadFormatIndicator: string;
  readonly applications: readonly CpmApplication[];
  readonly layout: CpmDataLayout;
  /** PAN or payment token, digits only: from 5A (the compressed-numeric F padding removed) or else from 57's PAN. */
  readonly token: string;
  readonly cardholderName: string | undefined;
  readonly languagePreference: string | undefined;
  /** YYMMDD. */
  readonly expiry: string | undefined;
  /** Hex, 2 bytes. */
  readonly atc: string;
  /** Hex, 8 bytes. */
  readonly cryptogram: string;
  /** Hex, 4 bytes. */
  readonly unpredictableNumber: string;
  /** Hex. */
  readonly issuerApplicationData: string | undefined;
  readonly amountMinor: bigint | undefined;
}

function fail(reason: CpmReason, message: string, extras: { tag?: string; offsetBytes?: number } = {}): Err<CpmError> {
  return { ok: false, error: { code: 'cpm_invalid', message, details: { reason, ...extras } } };
}

function ok<T>(value: T): Ok<T> {
  return { ok: true, value };
}

const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 (padding required, no whitespace); atob exists in browsers and in Node ≥ 16. */
export function base64ToBytes(text: string): Uint8Array | undefined {
  if (!BASE64_PATTERN.test(text)) return undefined;
  const binary = atob(text);
  return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
}

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

const latin1 = new TextDecoder('latin1');
function ascii(bytes: Uint8Array): string {
  return latin1.decode(bytes);
}

/** Compressed numeric (cn): BCD digits left-aligned, padded on the right with hex F nibbles. */
export function decodeCompressedNumeric(bytes: Uint8Array): string | undefined {
  const nibbles = bytesToHex(bytes);
  const match = /^([0-9]*)(F*)$/.exec(nibbles);
  return match?.[1];
}

export function encodeCompressedNumeric(digits: string): Uint8Array {
  const padded = digits.length % 2 === 0 ? digits : `${digits}F`;
  return hexToBytes(padded) ?? new Uint8Array();
}

/** Numeric (n): BCD right-aligned, left-padded with zero nibbles to `byteLength`. */
function encodeNumeric(value: bigint, byteLength: number): Uint8Array {
  return hexToBytes(value.toString().padStart(byteLength * 2, '0')) ?? new Uint8Array();
}

/** Primitive values of a template, keyed by tag, descending into the transparent template `transparentTag`. */
function collectPrimitives(template: BerTlv, transparentTag: string): CpmResult<Map<string, Uint8Array>> {
  const values = new Map<string, Uint8Array>();
  const visit = (nodes: readonly BerTlv[]): CpmResult<true> => {
    for (const node of nodes) {
      if (node.kind === 'constructed') {
        if (node.tag !== transparentTag) continue;
        const inner = visit(node.children);
        if (!inner.ok) return inner;
        continue;
      }
      if (values.has(node.tag)) return fail('duplicate_tag', `tag ${node.tag} appears more than once in template ${template.tag}`, { tag: node.tag });
      values.set(node.tag, node.value);
    }
    return ok(true);
  };
  if (template.kind !== 'constructed') return fail('invalid_field', `tag ${template.tag} must be a template`, { tag: template.tag });
  const visited = visit(template.children);
  return visited.ok ? ok(values) : visited;
}

function decodeApplication(values: ReadonlyMap<string, Uint8Array>): CpmResult<CpmApplication> {
  const aid = values.get('4F');
  if (aid === undefined || aid.length < 5 || aid.length > 16) {
    return fail('invalid_application_template', 'application template 61 needs a 4F AID of 5–16 bytes', { tag: '4F' });
  }
  const label = values.get('50');
  if (label !== undefined && (label.length > 16 || !PRINTABLE_ASCII.test(ascii(label)))) {
    return fail('invalid_application_template', 'application label 50 must be 1–16 printable ASCII characters', { tag: '50' });
  }
  return ok({ aid: bytesToHex(aid), label: label === undefined ? undefined : ascii(label) });
}

/** Tags of an application template that describe the application itself rather than the transaction. */
const APPLICATION_IDENTITY_TAGS = new Set(['4F', '50', '9F12', '87']);

/** True when an application template carries transaction data (anything beyond its AID, label, name and priority). */
function carriesTransactionData(values: ReadonlyMap<string, Uint8Array>): boolean {
  return [...values.keys()].some((tag) => !APPLICATION_IDENTITY_TAGS.has(tag));
}

/** Track 2 equivalent data (57): PAN, separator D, expiry YYMM, service code, discretionary data, F padding. */
const TRACK2 = /^([0-9]{8,19})D([0-9]{4})([0-9]{3})([0-9]*)F?$/;

function panFromTrack2(value: Uint8Array): string | undefined {
  return TRACK2.exec(bytesToHex(value))?.[1];
}

interface FieldRule {
  readonly name: string;
  readonly check: (value: Uint8Array) => boolean;
}

const YYMMDD = /^[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])$/;
const PRINTABLE_ASCII = /^[\x20-\x7E]+$/;

const FIELD_RULES: Readonly<Record<string, FieldRule>> = {
  '5A': { name: 'PAN/token (8–19 digits, cn)', check: (v) => /^[0-9]{8,19}$/.test(decodeCompressedNumeric(v) ?? '') },
  '57': { name: 'track 2 equivalent data (PAN, D, YYMM, service code; ≤ 19 bytes)', check: (v) => v.length <= 19 && panFromTrack2(v) !== undefined },
  '5F20': { name: 'cardholder name (2–26 printable characters)', check: (v) => v.length >= 2 && v.length <= 26 && PRINTABLE_ASCII.test(ascii(v)) },
  '5F24': { name: 'expiry date (YYMMDD)', check: (v) => v.length === 3 && YYMMDD.test(bytesToHex(v)) },
  '5F2D': { name: 'language preference (1–4 ISO 639 codes)', check: (v) => v.length >= 2 && v.length <= 8 && v.length % 2 === 0 && /^[a-z]+$/.test(ascii(v)) },
  '9F02': { name: 'amount (n12)', check: (v) => v.length === 6 && /^[0-9]{12}$/.test(bytesToHex(v)) },
  '9F10': { name: 'issuer application data (≤ 32 bytes)', check: (v) => v.length >= 1 && v.length <= 32 },
  '9F26': { name: 'application cryptogram (8 bytes)', check: (v) => v.length === 8 },
  '9F36': { name: 'ATC (2 bytes)', check: (v) => v.length === 2 },
  '9F37': { name: 'unpredictable number (4 bytes)', check: (v) => v.length === 4 },
};

const MANDATORY_CRYPTOGRAM_TAGS = ['9F26', '9F36', '9F37'] as const;

function checkTransactionData(values: ReadonlyMap<string, Uint8Array>): CpmResult<true> {
  if (!values.has('5A') && !values.has('57')) {
    return fail('missing_mandatory_tag', 'the code carries no PAN or token: neither 5A nor 57 (track 2 equivalent data) is present', { tag: '5A' });
  }
  for (const tag of MANDATORY_CRYPTOGRAM_TAGS) {
    if (!values.has(tag)) return fail('missing_mandatory_tag', `the code lacks tag ${tag}`, { tag });
  }
  for (const [tag, value] of values) {
    const rule = FIELD_RULES[tag];
    if (rule !== undefined && !rule.check(value)) {
      return fail('invalid_field', `tag ${tag}: invalid ${rule.name}: ${bytesToHex(value)}`, { tag });
    }
  }
  return ok(true);
}

function optionalHex(value: Uint8Array | undefined): string | undefined {
  return value === undefined ? undefined : bytesToHex(value);
}

/**
 * The data of one transaction: the common data template's, joined with the application template's own. The first
 * application template that carries transaction data is the one used (templates are listed in priority order); a tag
 * present in both with different values is refused, because two PANs or two cryptograms leave no right answer.
 */
function transactionData(
  common: ReadonlyMap<string, Uint8Array> | undefined,
  application: ReadonlyMap<string, Uint8Array> | undefined,
): CpmResult<{ values: Map<string, Uint8Array>; layout: CpmDataLayout }> {
  const values = new Map(common ?? []);
  if (application === undefined) return ok({ values, layout: 'common' });
  for (const [tag, value] of application) {
    if (APPLICATION_IDENTITY_TAGS.has(tag)) continue;
    const shared = values.get(tag);
    if (shared !== undefined && bytesToHex(shared) !== bytesToHex(value)) {
      return fail('duplicate_tag', `tag ${tag} has one value in the common data template 62 and another in the application template 61`, { tag });
    }
    values.set(tag, value);
  }
  return ok({ values, layout: common === undefined ? 'application' : 'common_and_application' });
}

function decodeStructure(tlv: readonly BerTlv[]): CpmResult<DecodedCpm> {
  const first = tlv[0];
  const pfi = first?.kind === 'primitive' && first.tag === '85' ? ascii(first.value) : undefined;
  if (pfi !== PAYLOAD_FORMAT_INDICATOR) {
    return fail('invalid_payload_format_indicator', `the first data object must be 85 "${PAYLOAD_FORMAT_INDICATOR}"`, { tag: '85' });
  }
  const applications: CpmApplication[] = [];
  let applicationData: Map<string, Uint8Array> | undefined;
  for (const node of tlv.filter((n) => n.tag === '61')) {
    const values = collectPrimitives(node, '63');
    if (!values.ok) return values;
    const app = decodeApplication(values.value);
    if (!app.ok) return app;
    applications.push(app.value);
    if (applicationData === undefined && carriesTransactionData(values.value)) applicationData = values.value;
  }
  if (applications.length === 0) return fail('missing_application_template', 'at least one application template 61 is required', { tag: '61' });
  const commonNodes = tlv.filter((n) => n.tag === '62');
  if (commonNodes.length > 1) return fail('duplicate_tag', 'common data template 62 appears more than once', { tag: '62' });
  const common = commonNodes[0];
  let commonData: Map<string, Uint8Array> | undefined;
  if (common !== undefined) {
    const collected = collectPrimitives(common, '64');
    if (!collected.ok) return collected;
    commonData = collected.value;
  }
  const joined = transactionData(commonData, applicationData);
  if (!joined.ok) return joined;
  const { values, layout } = joined.value;
  const checked = checkTransactionData(values);
  if (!checked.ok) return checked;
  const get = (tag: string): Uint8Array | undefined => values.get(tag);
  const pan = get('5A');
  const track2 = get('57');
  const token = pan !== undefined ? decodeCompressedNumeric(pan) : track2 !== undefined ? panFromTrack2(track2) : undefined;
  const track2Pan = track2 === undefined ? undefined : panFromTrack2(track2);
  if (token === undefined) throw new Error('checkTransactionData let a code without a PAN through');
  if (track2Pan !== undefined && track2Pan !== token) return fail('invalid_field', 'tag 57: the track 2 equivalent data names another PAN than 5A', { tag: '57' });
  const amount = get('9F02');
  return ok({
    tlv,
    payloadFormatIndicator: pfi,
    applications,
    layout,
    token,
    cardholderName: mapDefined(get('5F20'), ascii),
    languagePreference: mapDefined(get('5F2D'), ascii),
    expiry: optionalHex(get('5F24')),
    atc: bytesToHex(get('9F36') ?? new Uint8Array()),
    cryptogram: bytesToHex(get('9F26') ?? new Uint8Array()),
    unpredictableNumber: bytesToHex(get('9F37') ?? new Uint8Array()),
    issuerApplicationData: optionalHex(get('9F10')),
    amountMinor: amount === undefined ? undefined : BigInt(bytesToHex(amount)),
  });
}

function mapDefined<T, U>(value: T | undefined, fn: (v: T) => U): U | undefined {
  return value === undefined ? undefined : fn(value);
}

/** Decodes a base64 CPM payload. The size bound is checked before decoding anything. */
export function decodeCpmBytes(bytes: Uint8Array): CpmResult<DecodedCpm> {
  if (bytes.length > CPM_MAX_PAYLOAD_BYTES) return fail('payload_too_long', `payload exceeds ${CPM_MAX_PAYLOAD_BYTES} bytes`);
  const tlv = decodeBerTlv(bytes);
  if (!tlv.ok) {
    const d = tlv.error.details;
    return fail('tlv', `BER-TLV: ${tlv.error.message} (${d.reason})`, d.tag === undefined ? { offsetBytes: d.offsetBytes } : { tag: d.tag, offsetBytes: d.offsetBytes });
  }
  return decodeStructure(tlv.value);
}

export function decodeCpm(base64: string): CpmResult<DecodedCpm> {
  if (base64.length > MAX_BASE64_CHARS) return fail('payload_too_long', `payload exceeds ${CPM_MAX_PAYLOAD_BYTES} bytes`);
  const bytes = base64ToBytes(base64);
  if (bytes === undefined) return fail('not_base64', 'payload is not strict base64 (A–Z a–z 0–9 + / with = padding)');
  return decodeCpmBytes(bytes);
}

export interface CpmEncodeInput {
  readonly aid: string;
  readonly label: string;
  /** Further application templates, after the first. */
  readonly additionalApplications?: readonly { readonly aid: string; readonly label: string }[];
  readonly token: string;
  readonly cardholderName?: string;
  readonly languagePreference?: string;
  /** YYMMDD. */
  readonly expiry?: string;
  /** Hex, 2 bytes. */
  readonly atc: string;
  /** Hex, 8 bytes. */
  readonly cryptogram: string;
  /** Hex, 4 bytes. */
  readonly unpredictableNumber: string;
  /** Hex. */
  readonly issuerApplicationData?: string;
  readonly amountMinor?: bigint;
}

const asciiEncoder = new TextEncoder();

function hexField(tag: string, hex: string | undefined): BerTlv[] {
  if (hex === undefined) return [];
  // Invalid hex becomes an empty value, which the validating decode below reports against the tag.
  return [primitiveTlv(tag, hexToBytes(hex) ?? new Uint8Array())];
}

function textField(tag: string, text: string | undefined): BerTlv[] {
  return text === undefined ? [] : [primitiveTlv(tag, asciiEncoder.encode(text))];
}

function buildTree(input: CpmEncodeInput): BerTlv[] {
  const apps = [{ aid: input.aid, label: input.label }, ...(input.additionalApplications ?? [])];
  const transparent = [
    // Range already checked by checkEncodeInput.
    ...(input.amountMinor === undefined ? [] : [primitiveTlv('9F02', encodeNumeric(input.amountMinor, 6))]),
    ...hexField('9F10', input.issuerApplicationData),
    ...hexField('9F26', input.cryptogram),
    ...hexField('9F36', input.atc),
    ...hexField('9F37', input.unpredictableNumber),
  ];
  return [
    primitiveTlv('85', asciiEncoder.encode(PAYLOAD_FORMAT_INDICATOR)),
    ...apps.map((app) => constructedTlv('61', [...hexField('4F', app.aid), ...textField('50', app.label)])),
    constructedTlv('62', [
      primitiveTlv('5A', /^[0-9]+$/.test(input.token) ? encodeCompressedNumeric(input.token) : new Uint8Array()),
      ...textField('5F20', input.cardholderName),
      ...hexField('5F24', input.expiry),
      ...textField('5F2D', input.languagePreference),
      constructedTlv('64', transparent),
    ]),
  ];
}

function checkEncodeInput(input: CpmEncodeInput): CpmResult<true> {
  if (input.amountMinor !== undefined && (input.amountMinor < 0n || input.amountMinor >= 10n ** 12n)) {
    return fail('invalid_field', 'tag 9F02: amount must be 0 to 999999999999 minor units', { tag: '9F02' });
  }
  const hexInputs: ReadonlyArray<readonly [string, string | undefined]> = [
    ['4F', input.aid],
    ['9F36', input.atc],
    ['9F26', input.cryptogram],
    ['9F37', input.unpredictableNumber],
    ['9F10', input.issuerApplicationData],
    ...(input.additionalApplications ?? []).map((a) => ['4F', a.aid] as const),
  ];
  for (const [tag, hex] of hexInputs) {
    if (hex !== undefined && !isHex(hex)) return fail('invalid_field', `tag ${tag}: "${hex}" is not hex`, { tag });
  }
  return ok(true);
}

/** Builds a CPM payload; the result is decoded again so that only payloads our decoder accepts leave here. */
export function encodeCpm(input: CpmEncodeInput): CpmResult<string> {
  const checked = checkEncodeInput(input);
  if (!checked.ok) return checked;
  const bytes = encodeBerTlv(buildTree(input));
  const decoded = decodeCpmBytes(bytes);
  return decoded.ok ? ok(bytesToBase64(bytes)) : decoded;
}
