import { parsePhoneNumberFromString } from 'libphonenumber-js';

export type AliasType = 'phone' | 'email' | 'handle';
export const ALIAS_TYPES: readonly AliasType[] = ['phone', 'email', 'handle'];

/** What a handle must be once normalised (lower case, without a leading '@'): 3–30 characters. */
export const HANDLE_PATTERN = /^[a-z0-9][a-z0-9_.]{2,29}$/;
export const HANDLE_RULE = "3 to 30 characters: lower-case letters a-z, digits, '_' and '.', the first a letter or digit (a leading '@' is dropped and upper case lowered)";
/** How each type's value is read (the OpenAPI description of an alias's value). */
export const ALIAS_VALUE_DESCRIPTION = `phone: a number in E.164 (+8613800138000) or national form (read in your participant's country); email: an address, lower-cased; handle: ${HANDLE_RULE}`;

/** Normalises an alias: phone → E.164 (read in the participant's country when it has no country code), email → lower case, handle → lower case without '@'. */
export function normalizeAlias(type: AliasType, value: string, defaultCountry: string): string | undefined {
  const v = value.trim();
  if (type === 'phone') {
    const parsed = parsePhoneNumberFromString(v, defaultCountry as Parameters<typeof parsePhoneNumberFromString>[1]);
    return parsed?.isValid() === true ? parsed.number : undefined;
  }
  if (type === 'email') {
    const e = v.toLowerCase();
    return e.length <= 254 && /^[a-z0-9._%+-]{1,64}@[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(e) ? e : undefined;
  }
  const h = v.replace(/^@/, '').toLowerCase();
  return HANDLE_PATTERN.test(h) ? h : undefined;
}

const CJK = /[\u3400-\u9fff\uf900-\ufaff]/u;

/**
 * Masked name for verification of payee: the first character of each part, then asterisks. CJK names are one part
 * per name and keep one asterisk per hidden character (张敏 → 张*); other scripts get a fixed two asterisks per part so
 * the length is not revealed (Maria Tan → M** T**).
 */
export function maskName(name: string): string {
  const trimmed = name.trim();
  if (trimmed === '') return '*';
  const chars = [...trimmed];
  if (CJK.test(chars[0] ?? '')) return `${chars[0]}${'*'.repeat(Math.max(1, chars.length - 1))}`;
  return trimmed
    .split(/\s+/)
    .map((part) => `${[...part][0] ?? ''}**`)
    .join(' ');
}
