/**
 * EMV QR Code, merchant-presented mode (MPM): decoder, re-encoder and a structured encoder for the hub's own codes.
 *
 * Wire format: "TT" two-digit tag, "LL" two-digit length counted in characters (Unicode code points, so "0104最佳运输"
 * has length 04), then the value. Tag 63 (CRC, length 04) comes last and is CRC-16/CCITT-FALSE over the UTF-8 bytes of
 * everything before its value, "6304" included.
 *
 * Liberal in what it reads, strict in what it writes: the decoder accepts codes found in the wild that bend the
 * specification without making them ambiguous — national codes longer than EMVCo's 512 characters (an SGQR label that
 * lists many schemes), a CRC in lowercase hex — and reports each bend in `warnings`; the encoders only ever write
 * uppercase CRCs and payloads within 512 characters.
 */
import type { DomainError, Err, Ok } from '../platform/result.ts';
import { crc16Hex } from './crc16.ts';

/** EMVCo MPM's limit on a payload; the encoders keep to it, the decoder accepts longer codes with a warning. */
export const MPM_EMVCO_MAX_PAYLOAD_CHARS = 512;
/**
 * Upper bound on what we parse at all: the most characters a QR code symbol holds (version 40, level L, alphanumeric
 * mode: 4296), so nothing a camera can read is refused for its size, and hostile input stays cheap.
 */
export const MPM_MAX_PAYLOAD_CHARS = 4296;
/** Two decimal digits of length leave 99 characters per value. */
export const MPM_MAX_VALUE_CHARS = 99;

export type MpmReason =
  | 'not_a_string'
  | 'empty_payload'
  | 'payload_too_long'
  | 'truncated'
  | 'non_numeric_tag'
  | 'non_numeric_length'
  | 'bad_length'
  | 'value_too_long'
  | 'duplicate_tag'
  | 'missing_crc'
  | 'crc_not_last'
  | 'crc_format'
  | 'crc_mismatch'
  | 'payload_format_indicator_not_first'
  | 'invalid_payload_format_indicator'
  | 'missing_mandatory_tag'
  | 'missing_merchant_account'
  | 'invalid_point_of_initiation'
  | 'invalid_mcc'
  | 'invalid_currency'
  | 'invalid_amount'
  | 'invalid_country'
  | 'invalid_template'
  | 'invalid_language'
  | 'invalid_merchant_account_tag';

export interface MpmErrorDetails {
  /** Tag path: "54" for a top-level tag, "62.05" for a sub-field of a template. */
  readonly tag?: string;
  readonly reason: MpmReason;
  readonly expected?: string;
  readonly actual?: string;
}

export interface MpmError extends DomainError<'qr_invalid'> {
  readonly details: MpmErrorDetails;
}

export type MpmResult<T> = Ok<T> | Err<MpmError>;

export interface MpmPrimitiveField {
  readonly kind: 'primitive';
  readonly tag: string;
  readonly value: string;
}

export interface MpmTemplateField {
  readonly kind: 'template';
  readonly tag: string;
  /** Raw value as it appeared; the encoder ignores it and serialises `children`. */
  readonly value: string;
  readonly children: readonly MpmPrimitiveField[];
}

export type MpmField = MpmPrimitiveField | MpmTemplateField;

/** A departure from EMVCo MPM that the decoder accepted because real codes have it and it leaves nothing ambiguous. */
export interface MpmWarning {
  readonly code: 'payload_longer_than_emvco_limit' | 'lowercase_crc';
  readonly message: string;
}

export interface DecodedMpm {
  /** The payload as given (a lowercase CRC stays lowercase here; `crc` is uppercase). */
  readonly payload: string;
  /** Top-level fields in their original order, tag 63 last. */
  readonly fields: readonly MpmField[];
  /** Uppercase hex. */
  readonly crc: string;
  readonly warnings: readonly MpmWarning[];
}

export interface DecodeMpmOptions {
  /**
   * EMVCo also makes 52 (MCC), 59 (name) and 60 (city) mandatory; PromptPay codes in the wild omit them, so by default
   * only what every real-world profile carries is required (00, a merchant account, 53, 58, 63).
   */
  readonly requireEmvcoMandatory?: boolean;
}

type ErrorExtras = Omit<MpmErrorDetails, 'reason'>;

function fail(reason: MpmReason, message: string, extras: ErrorExtras = {}): Err<MpmError> {
  return { ok: false, error: { code: 'qr_invalid', message, details: { reason, ...extras } } };
}

function ok<T>(value: T): Ok<T> {
  return { ok: true, value };
}

function tagNumber(tag: string): number {
  return Number(tag);
}

/** Merchant account information templates (26–51), additional data (62), alternate language (64), unreserved (80–99). */
export function isTemplateTag(tag: string): boolean {
  const n = tagNumber(tag);
  return (n >= 26 && n <= 51) || n === 62 || n === 64 || (n >= 80 && n <= 99);
}

function isMerchantAccountTag(tag: string): boolean {
  const n = tagNumber(tag);
  return n >= 2 && n <= 51;
}

function joinPath(parent: string | undefined, tag: string): string {
  return parent === undefined ? tag : `${parent}.${tag}`;
}

const TWO_DIGITS = /^[0-9]{2}$/;

interface RawTlv {
  readonly tag: string;
  readonly value: string;
}

/** Reads one TLV at `offsetChars`; returns the entry and the offset after it. */
function readTlv(chars: readonly string[], offsetChars: number, parent: string | undefined): MpmResult<{ tlv: RawTlv; nextOffsetChars: number }> {
  const remainingChars = chars.length - offsetChars;
  if (remainingChars < 4) {
    return fail('truncated', `only ${remainingChars} character(s) left at position ${offsetChars}, a tag and length need 4`, parent === undefined ? {} : { tag: parent });
  }
  const tag = chars.slice(offsetChars, offsetChars + 2).join('');
  if (!TWO_DIGITS.test(tag)) {
    return fail('non_numeric_tag', `tag "${tag}" at position ${offsetChars} is not two digits`, parent === undefined ? {} : { tag: parent });
  }
  const path = joinPath(parent, tag);
  const lengthText = chars.slice(offsetChars + 2, offsetChars + 4).join('');
  if (!TWO_DIGITS.test(lengthText)) {
    return fail('non_numeric_length', `tag ${path}: length "${lengthText}" is not two digits`, { tag: path });
  }
  const lengthChars = Number(lengthText);
  if (lengthChars === 0) {
    return fail('bad_length', `tag ${path}: length 00 is not allowed`, { tag: path });
  }
  const valueStart = offsetChars + 4;
  const valueEnd = valueStart + lengthChars;
  if (valueEnd > chars.length) {
    return fail('truncated', `tag ${path}: declares ${lengthChars} characters but only ${chars.length - valueStart} remain`, { tag: path });
  }
  return ok({ tlv: { tag, value: chars.slice(valueStart, valueEnd).join('') }, nextOffsetChars: valueEnd });
}

function parseTlvList(text: string, parent: string | undefined): MpmResult<RawTlv[]> {
  // Code points, not UTF-16 units: lengths count characters and CJK names outside the BMP must count as one.
  const chars = Array.from(text);
  const entries: RawTlv[] = [];
  const seen = new Set<string>();
  let offsetChars = 0;
  while (offsetChars < chars.length) {
    const read = readTlv(chars, offsetChars, parent);
    if (!read.ok) return read;
    const { tlv, nextOffsetChars } = read.value;
    if (seen.has(tlv.tag)) {
      const path = joinPath(parent, tlv.tag);
      return fail('duplicate_tag', `tag ${path} appears more than once`, { tag: path });
    }
    seen.add(tlv.tag);
    entries.push(tlv);
    offsetChars = nextOffsetChars;
  }
  return ok(entries);
}

function toField(tlv: RawTlv): MpmResult<MpmField> {
  if (!isTemplateTag(tlv.tag)) return ok({ kind: 'primitive', tag: tlv.tag, value: tlv.value });
  const children = parseTlvList(tlv.value, tlv.tag);
  if (!children.ok) return children;
  return ok({
    kind: 'template',
    tag: tlv.tag,
    value: tlv.value,
    children: children.value.map((c) => ({ kind: 'primitive', tag: c.tag, value: c.value })),
  });
}

function checkCrc(payload: string, entries: readonly RawTlv[], warnings: MpmWarning[]): MpmResult<string> {
  const crcIndex = entries.findIndex((e) => e.tag === '63');
  if (crcIndex === -1) return fail('missing_crc', 'tag 63 (CRC) is missing', { tag: '63' });
  if (crcIndex !== entries.length - 1) return fail('crc_not_last', 'tag 63 (CRC) must be the last field', { tag: '63' });
  const crc = entries[crcIndex]?.value ?? '';
  if (crc.length !== 4) return fail('bad_length', `tag 63: length must be 04, got ${String(crc.length).padStart(2, '0')}`, { tag: '63' });
  if (!/^[0-9A-Fa-f]{4}$/.test(crc)) return fail('crc_format', `tag 63: "${crc}" is not four hex digits`, { tag: '63', actual: crc });
  // The CRC value is four ASCII characters, so dropping four UTF-16 units leaves exactly the checksummed prefix.
  const expected = crc16Hex(payload.slice(0, -4));
  if (expected !== crc.toUpperCase()) {
    return fail('crc_mismatch', `tag 63: CRC mismatch, expected ${expected}, payload carries ${crc}`, { tag: '63', expected, actual: crc });
  }
  // EMVCo asks for uppercase; some generators print lowercase. The value is the same number, so nothing is ambiguous.
  if (crc !== expected) warnings.push({ code: 'lowercase_crc', message: `tag 63: the CRC is in lowercase hex ("${crc}"); EMVCo specifies uppercase` });
  return ok(expected);
}

function checkPayloadFormatIndicator(entries: readonly RawTlv[]): MpmResult<true> {
  const first = entries[0];
  if (first?.tag !== '00') {
    return fail('payload_format_indicator_not_first', 'tag 00 (payload format indicator) must be the first field', { tag: '00' });
  }
  if (first.value !== '01') {
    return fail('invalid_payload_format_indicator', `tag 00: payload format indicator must be "01", got "${first.value}"`, { tag: '00', expected: '01', actual: first.value });
  }
  return ok(true);
}

const BASE_MANDATORY_TAGS = ['00', '53', '58', '63'] as const;
const EMVCO_EXTRA_MANDATORY_TAGS = ['52', '59', '60'] as const;

function checkMandatory(fields: readonly MpmField[], options: DecodeMpmOptions): MpmResult<true> {
  const present = new Set(fields.map((f) => f.tag));
  const required: readonly string[] = options.requireEmvcoMandatory === true ? [...BASE_MANDATORY_TAGS, ...EMVCO_EXTRA_MANDATORY_TAGS] : BASE_MANDATORY_TAGS;
  for (const tag of required) {
    if (!present.has(tag)) return fail('missing_mandatory_tag', `mandatory tag ${tag} is missing`, { tag });
  }
  if (!fields.some((f) => isMerchantAccountTag(f.tag))) {
    return fail('missing_merchant_account', 'at least one merchant account information field (02–51) is required');
  }
  return ok(true);
}

interface FormatRule {
  readonly pattern: RegExp;
  readonly reason: MpmReason;
  readonly what: string;
}

// Amount: digits with at most one "." as decimal mark, 13 characters at most (EMVCo MPM 4.7.x, tag 54).
const FORMAT_RULES: Readonly<Record<string, FormatRule>> = {
  '01': { pattern: /^1[12]$/, reason: 'invalid_point_of_initiation', what: 'point of initiation must be "11" (static) or "12" (dynamic)' },
  '52': { pattern: /^[0-9]{4}$/, reason: 'invalid_mcc', what: 'merchant category code must be 4 digits' },
  '53': { pattern: /^[0-9]{3}$/, reason: 'invalid_currency', what: 'currency must be a 3-digit ISO 4217 numeric code' },
  '54': { pattern: /^(?=.{1,13}$)(?=[^0-9]*[0-9])[0-9]*\.?[0-9]*$/, reason: 'invalid_amount', what: 'amount must be a decimal of at most 13 characters' },
  '58': { pattern: /^[A-Z]{2}$/, reason: 'invalid_country', what: 'country must be two uppercase letters (ISO 3166-1 alpha-2)' },
};

function checkFormats(fields: readonly MpmField[]): MpmResult<true> {
  for (const field of fields) {
    const rule = FORMAT_RULES[field.tag];
    if (rule !== undefined && !rule.pattern.test(field.value)) {
      return fail(rule.reason, `tag ${field.tag}: ${rule.what}, got "${field.value}"`, { tag: field.tag, actual: field.value });
    }
  }
  return ok(true);
}

function checkTemplate(field: MpmTemplateField): MpmResult<true> {
  const sub = new Map(field.children.map((c) => [c.tag, c.value]));
  const n = tagNumber(field.tag);
  if (((n >= 26 && n <= 51) || n >= 80) && !sub.has('00')) {
    return fail('invalid_template', `tag ${field.tag}: template lacks sub-field 00 (globally unique identifier)`, { tag: `${field.tag}.00` });
  }
  if (n === 64) {
    const language = sub.get('00');
    if (language === undefined || !/^[A-Za-z]{2}$/.test(language)) {
      return fail('invalid_language', 'tag 64: sub-field 00 (language preference) must be two letters (ISO 639-1)', { tag: '64.00' });
    }
    if (!sub.has('01')) return fail('invalid_template', 'tag 64: sub-field 01 (merchant name, alternate language) is required', { tag: '64.01' });
  }
  return ok(true);
}

function checkTemplates(fields: readonly MpmField[]): MpmResult<true> {
  for (const field of fields) {
    if (field.kind !== 'template') continue;
    const checked = checkTemplate(field);
    if (!checked.ok) return checked;
  }
  return ok(true);
}

function parseFields(entries: readonly RawTlv[]): MpmResult<MpmField[]> {
  const fields: MpmField[] = [];
  for (const entry of entries) {
    const field = toField(entry);
    if (!field.ok) return field;
    fields.push(field.value);
  }
  return ok(fields);
}

function checkSize(payload: unknown, warnings: MpmWarning[]): MpmResult<string> {
  if (typeof payload !== 'string') return fail('not_a_string', 'payload must be a string');
  if (payload.length === 0) return fail('empty_payload', 'payload is empty');
  // A code point takes at most two UTF-16 units, so this bounds the work before Array.from runs.
  const countChars = payload.length > MPM_MAX_PAYLOAD_CHARS * 2 ? Infinity : Array.from(payload).length;
  if (countChars > MPM_MAX_PAYLOAD_CHARS) {
    return fail('payload_too_long', `payload exceeds ${MPM_MAX_PAYLOAD_CHARS} characters`, { actual: String(countChars) });
  }
  if (countChars > MPM_EMVCO_MAX_PAYLOAD_CHARS) {
    warnings.push({ code: 'payload_longer_than_emvco_limit', message: `payload is ${countChars} characters; EMVCo MPM allows ${MPM_EMVCO_MAX_PAYLOAD_CHARS}` });
  }
  return ok(payload);
}

/** Decodes and validates an MPM payload. Structure first, then CRC, then the meaning of individual fields. */
export function decodeMpm(payload: string, options: DecodeMpmOptions = {}): MpmResult<DecodedMpm> {
  const warnings: MpmWarning[] = [];
  const sized = checkSize(payload, warnings);
  if (!sized.ok) return sized;
  const entries = parseTlvList(payload, undefined);
  if (!entries.ok) return entries;
  const crc = checkCrc(payload, entries.value, warnings);
  if (!crc.ok) return crc;
  const pfi = checkPayloadFormatIndicator(entries.value);
  if (!pfi.ok) return pfi;
  const fields = parseFields(entries.value);
  if (!fields.ok) return fields;
  for (const check of [checkTemplates, checkFormats, (f: readonly MpmField[]) => checkMandatory(f, options)]) {
    const result = check(fields.value);
    if (!result.ok) return result;
  }
  return ok({ payload, fields: fields.value, crc: crc.value, warnings });
}

function serialiseTlv(tag: string, value: string, path: string): MpmResult<string> {
  const lengthChars = Array.from(value).length;
  if (lengthChars === 0) return fail('bad_length', `tag ${path}: empty values cannot be encoded`, { tag: path });
  if (lengthChars > MPM_MAX_VALUE_CHARS) {
    return fail('value_too_long', `tag ${path}: value is ${lengthChars} characters, at most ${MPM_MAX_VALUE_CHARS} fit`, { tag: path, actual: String(lengthChars) });
  }
  if (!TWO_DIGITS.test(tag)) return fail('non_numeric_tag', `tag "${path}" is not two digits`, { tag: path });
  return ok(`${tag}${String(lengthChars).padStart(2, '0')}${value}`);
}

function serialiseField(field: MpmField): MpmResult<string> {
  if (field.kind === 'primitive') return serialiseTlv(field.tag, field.value, field.tag);
  let inner = '';
  for (const child of field.children) {
    const part = serialiseTlv(child.tag, child.value, `${field.tag}.${child.tag}`);
    if (!part.ok) return part;
    inner += part.value;
  }
  return serialiseTlv(field.tag, inner, field.tag);
}

/**
 * Serialises fields in the given order and appends a fresh CRC, in uppercase (any tag 63 in `fields` is dropped, since
 * its value depends on everything before it). Re-encoding a decoded payload's fields reproduces that payload byte for
 * byte, except a lowercase CRC, which comes out in uppercase.
 */
export function encodeMpmFields(fields: readonly MpmField[]): MpmResult<string> {
  let body = '';
  for (const field of fields) {
    if (field.tag === '63') continue;
    const part = serialiseField(field);
    if (!part.ok) return part;
    body += part.value;
  }
  const withCrcHeader = `${body}6304`;
  return ok(`${withCrcHeader}${crc16Hex(withCrcHeader)}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Friendly view

export interface MpmMerchantAccountView {
  readonly tag: string;
  /** Sub-field 00 of a template (26–51); undefined for the primitive scheme-reserved tags 02–25. */
  readonly globallyUniqueId: string | undefined;
  readonly fields: Readonly<Record<string, string>>;
  readonly value: string;
}

export interface MpmAdditionalDataView {
  readonly billNumber: string | undefined;
  readonly mobileNumber: string | undefined;
  readonly storeLabel: string | undefined;
  readonly loyaltyNumber: string | undefined;
  readonly referenceLabel: string | undefined;
  readonly customerLabel: string | undefined;
  readonly terminalLabel: string | undefined;
  readonly purposeOfTransaction: string | undefined;
  readonly additionalConsumerDataRequest: string | undefined;
  /** Every sub-field by tag, including ones without a name above. */
  readonly fields: Readonly<Record<string, string>>;
}

export interface MpmAlternateLanguageView {
  readonly language: string | undefined;
  readonly merchantName: string | undefined;
  readonly merchantCity: string | undefined;
}

export interface MpmView {
  readonly pointOfInitiation: 'static' | 'dynamic' | undefined;
  readonly merchantAccounts: readonly MpmMerchantAccountView[];
  readonly mcc: string | undefined;
  readonly currencyNumeric: string | undefined;
  readonly amount: string | undefined;
  readonly country: string | undefined;
  readonly merchantName: string | undefined;
  readonly merchantCity: string | undefined;
  readonly postalCode: string | undefined;
  readonly additionalData: MpmAdditionalDataView | undefined;
  readonly alternateLanguage: MpmAlternateLanguageView | undefined;
  readonly crc: string;
}

function childMap(field: MpmField | undefined): Record<string, string> {
  if (field?.kind !== 'template') return {};
  return Object.fromEntries(field.children.map((c) => [c.tag, c.value]));
}

function describeAdditionalData(field: MpmField | undefined): MpmAdditionalDataView | undefined {
  if (field === undefined) return undefined;
  const sub = childMap(field);
  return {
    billNumber: sub['01'],
    mobileNumber: sub['02'],
    storeLabel: sub['03'],
    loyaltyNumber: sub['04'],
    referenceLabel: sub['05'],
    customerLabel: sub['06'],
    terminalLabel: sub['07'],
    purposeOfTransaction: sub['08'],
    additionalConsumerDataRequest: sub['09'],
    fields: sub,
  };
}

function describeAlternateLanguage(field: MpmField | undefined): MpmAlternateLanguageView | undefined {
  if (field === undefined) return undefined;
  const sub = childMap(field);
  return { language: sub['00'], merchantName: sub['01'], merchantCity: sub['02'] };
}

function describePointOfInitiation(value: string | undefined): MpmView['pointOfInitiation'] {
  if (value === '11') return 'static';
  if (value === '12') return 'dynamic';
  return undefined;
}

export function describeMpm(decoded: DecodedMpm): MpmView {
  const byTag = new Map(decoded.fields.map((f) => [f.tag, f]));
  const valueOf = (tag: string): string | undefined => byTag.get(tag)?.value;
  return {
    pointOfInitiation: describePointOfInitiation(valueOf('01')),
    merchantAccounts: decoded.fields
      .filter((f) => isMerchantAccountTag(f.tag))
      .map((f) => {
        const fields = childMap(f);
        return { tag: f.tag, globallyUniqueId: fields['00'], fields, value: f.value };
      }),
    mcc: valueOf('52'),
    currencyNumeric: valueOf('53'),
    amount: valueOf('54'),
    country: valueOf('58'),
    merchantName: valueOf('59'),
    merchantCity: valueOf('60'),
    postalCode: valueOf('61'),
    additionalData: describeAdditionalData(byTag.get('62')),
    alternateLanguage: describeAlternateLanguage(byTag.get('64')),
    crc: decoded.crc,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Structured encoder for the hub's own codes

export interface MpmEncodeInput {
  readonly pointOfInitiation: 'static' | 'dynamic';
  /**
   * `tag` is a merchant account information template number, 26–51. Sub-field 01 carries `merchantId`; sub-field 02,
   * when given, `codeId`: the scheme's own id for this one code (the scheme that owns the globally unique identifier
   * defines the template's other sub-fields), which leaves the reference label (62.05) to the merchant.
   */
  readonly merchantAccount: { readonly tag: number; readonly globallyUniqueId: string; readonly merchantId: string; readonly codeId?: string };
  readonly mcc: string;
  readonly currencyNumeric: string;
  readonly amount?: string;
  readonly country: string;
  readonly merchantName: string;
  readonly merchantCity: string;
  readonly postalCode?: string;
  readonly billNumber?: string;
  readonly referenceLabel?: string;
  readonly terminalLabel?: string;
  readonly alternateLanguage?: { readonly language: string; readonly merchantName: string; readonly merchantCity?: string };
}

function primitive(tag: string, value: string): MpmPrimitiveField {
  return { kind: 'primitive', tag, value };
}

function template(tag: string, children: readonly MpmPrimitiveField[]): MpmTemplateField {
  // `value` is informational only; serialisation rebuilds it from the children.
  return { kind: 'template', tag, value: '', children };
}

function optionalPrimitives(pairs: ReadonlyArray<readonly [string, string | undefined]>): MpmPrimitiveField[] {
  return pairs.flatMap(([tag, value]) => (value === undefined ? [] : [primitive(tag, value)]));
}

function buildFields(input: MpmEncodeInput): MpmField[] {
  const account = input.merchantAccount;
  const fields: MpmField[] = [
    primitive('00', '01'),
    primitive('01', input.pointOfInitiation === 'static' ? '11' : '12'),
    template(String(account.tag), [primitive('00', account.globallyUniqueId), primitive('01', account.merchantId), ...optionalPrimitives([['02', account.codeId]])]),
    primitive('52', input.mcc),
    primitive('53', input.currencyNumeric),
    ...optionalPrimitives([['54', input.amount]]),
    primitive('58', input.country),
    primitive('59', input.merchantName),
    primitive('60', input.merchantCity),
    ...optionalPrimitives([['61', input.postalCode]]),
  ];
  const additional = optionalPrimitives([
    ['01', input.billNumber],
    ['05', input.referenceLabel],
    ['07', input.terminalLabel],
  ]);
  if (additional.length > 0) fields.push(template('62', additional));
  const alt = input.alternateLanguage;
  if (alt !== undefined) {
    fields.push(template('64', [primitive('00', alt.language), primitive('01', alt.merchantName), ...optionalPrimitives([['02', alt.merchantCity]])]));
  }
  return fields;
}

/**
 * Builds a payload for one of the hub's own merchants. The result is run through `decodeMpm` with the full EMVCo
 * mandatory set and must draw no warning (so it stays within EMVCo's 512 characters): whatever this returns is
 * something our own decoder, and a conforming scanner, accepts.
 */
export function encodeMpm(input: MpmEncodeInput): MpmResult<string> {
  const accountTag = input.merchantAccount.tag;
  if (!Number.isInteger(accountTag) || accountTag < 26 || accountTag > 51) {
    return fail('invalid_merchant_account_tag', `merchant account tag must be 26–51, got ${accountTag}`, { actual: String(accountTag) });
  }
  const encoded = encodeMpmFields(buildFields(input));
  if (!encoded.ok) return encoded;
  const checked = decodeMpm(encoded.value, { requireEmvcoMandatory: true });
  if (!checked.ok) return checked;
  const chars = Array.from(encoded.value).length;
  if (chars > MPM_EMVCO_MAX_PAYLOAD_CHARS) {
    return fail('payload_too_long', `the code would be ${chars} characters; EMVCo MPM allows ${MPM_EMVCO_MAX_PAYLOAD_CHARS} (shorten the name, city or references)`, { actual: String(chars) });
  }
  return ok(encoded.value);
}
