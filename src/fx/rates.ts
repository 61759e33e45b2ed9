import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { currencyMinorUnit } from '../platform/money.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';

/**
 * FX reference rates in the ECB daily format (eurofxref-daily.xml): `<Cube currency="USD" rate="1.0842"/>`, each
 * the number of currency units one EUR buys. Rates are kept as exact scaled integers (RATE_SCALE), never floats.
 *
 * Rounding rule (stated once, applied everywhere): every conversion rounds in the hub's favour — an amount the
 * customer receives is rounded down to the currency's minor unit, an amount the customer pays (or a fee) is rounded
 * up. The customer rate is the mid rate less the spread: target = source × mid × (1 − spreadBps/10 000).
 */
export const DEMO_RATES_PATH = fileURLToPath(new URL('./demo-rates.xml', import.meta.url));
export const RATE_SCALE_DIGITS = 12;
const RATE_SCALE = 10n ** BigInt(RATE_SCALE_DIGITS);
const BPS = 10_000n;

/** 10^minor unit of a currency of the rate table (the table holds only ISO 4217 currencies: see parseRates). */
function minorScale(currency: string): bigint {
  const unit = currencyMinorUnit(currency);
  if (unit === undefined) throw new Error(`rate table holds ${currency}, which has no ISO 4217 minor unit`);
  return 10n ** BigInt(unit);
}

export type FxErrorCode = 'fx_rates_invalid' | 'fx_rate_unavailable' | 'fx_rate_expired' | 'fx_tier_not_covered' | 'fx_provider_not_registered' | 'fx_rate_invalid';

export interface RateTable {
  /** The ECB publication date (YYYY-MM-DD); null for the empty table (no reference rates loaded). */
  readonly asOf: string | null;
  /** Units of the currency per 1 EUR, scaled by 10^RATE_SCALE_DIGITS. EUR itself is present as 1. */
  readonly perEur: ReadonlyMap<string, bigint>;
}

/** A table as published: it has a date. */
export type PublishedRateTable = RateTable & { readonly asOf: string };

/** No reference rates: every conversion and every EUR weighing of another currency answers `fx_rate_unavailable`. */
export const EMPTY_TABLE: RateTable = { asOf: null, perEur: new Map() };

/** Parses a decimal string to a scaled integer, exactly (no float on the way). */
export function parseScaledDecimal(text: string, scaleDigits = RATE_SCALE_DIGITS): bigint | undefined {
  const m = /^([0-9]{1,12})(?:\.([0-9]{1,12}))?$/.exec(text);
  if (m === null) return undefined;
  const frac = (m[2] ?? '').slice(0, scaleDigits).padEnd(scaleDigits, '0');
  return BigInt(m[1] ?? '0') * 10n ** BigInt(scaleDigits) + BigInt(frac);
}

export function formatScaled(value: bigint, digits = 8): string {
  // value is scaled by RATE_SCALE; print `digits` decimals, rounded half-even (display only).
  const factor = 10n ** BigInt(RATE_SCALE_DIGITS - digits);
  let q = value / factor;
  const r = value % factor;
  if (r * 2n > factor || (r * 2n === factor && q % 2n === 1n)) q += 1n;
  const s = q.toString().padStart(digits + 1, '0');
  return `${s.slice(0, -digits)}.${s.slice(-digits)}`;
}

/** Parses the ECB daily XML. Strict about what it accepts: known currencies, positive decimal rates, one date. */
export function parseEcbXml(xml: string): Result<PublishedRateTable, DomainError<FxErrorCode>> {
  if (xml.length > 200_000) return err('fx_rates_invalid', 'the rates document is too large');
  const time = /<Cube\s+time=["'](\d{4}-\d{2}-\d{2})["']\s*>/.exec(xml);
  if (time === null) return err('fx_rates_invalid', 'no <Cube time="YYYY-MM-DD"> element');
  const perEur = new Map<string, bigint>([['EUR', RATE_SCALE]]);
  const re = /<Cube\s+currency=["']([A-Z]{3})["']\s+rate=["']([0-9.]+)["']\s*\/>/g;
  let count = 0;
  for (let m = re.exec(xml); m !== null && count < 500; m = re.exec(xml)) {
    count++;
    const [, currency, rateText] = m;
    if (currency === undefined || rateText === undefined) continue;
    const rate = parseScaledDecimal(rateText);
    if (rate === undefined || rate <= 0n) return err('fx_rates_invalid', `bad rate for ${currency}: ${rateText}`, { currency });
    if (currencyMinorUnit(currency) === undefined) continue; // a currency the hub does not hold is ignored
    perEur.set(currency, rate);
  }
  if (perEur.size < 2) return err('fx_rates_invalid', 'no <Cube currency="…" rate="…"/> rates found');
  return ok({ asOf: time[1] ?? '', perEur });
}

export function loadRatesFile(path: string = DEMO_RATES_PATH): Result<PublishedRateTable, DomainError<FxErrorCode>> {
  return parseEcbXml(readFileSync(path, 'utf8'));
}

export interface Conversion {
  /** Customer rate (target units per source unit, after spread), scaled by RATE_SCALE. */
  readonly rate: bigint;
  readonly midRate: bigint;
  readonly spreadBps: number;
}

/** The mid rate and the customer rate from one currency to another. */
export function conversion(table: RateTable, from: string, to: string, spreadBps: number): Result<Conversion, DomainError<FxErrorCode>> {
  const rf = table.perEur.get(from);
  const rt = table.perEur.get(to);
  if (rf === undefined || rt === undefined) return err('fx_rate_unavailable', `no reference rate for ${from}/${to}`, { from, to });
  const spread = from === to ? 0 : spreadBps;
  const mid = (rt * RATE_SCALE) / rf;
  const rate = (rt * RATE_SCALE * (BPS - BigInt(spread))) / (rf * BPS);
  return ok({ rate, midRate: mid, spreadBps: spread });
}

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b;

/** Minor units received for `sendMinor` sent: rounded down (hub's favour). Exact from the reference rates. */
export function convertSendToReceive(table: RateTable, from: string, to: string, spreadBps: number, sendMinor: bigint): bigint {
  if (from === to) return sendMinor;
  const rf = table.perEur.get(from)!;
  const rt = table.perEur.get(to)!;
  const df = minorScale(from);
  const dt = minorScale(to);
  const spread = BigInt(spreadBps);
  return (sendMinor * rt * (BPS - spread) * dt) / (rf * BPS * df);
}

/** Minor units to send so that at least `receiveMinor` arrives: rounded up (hub's favour). */
export function convertReceiveToSend(table: RateTable, from: string, to: string, spreadBps: number, receiveMinor: bigint): bigint {
  if (from === to) return receiveMinor;
  const rf = table.perEur.get(from)!;
  const rt = table.perEur.get(to)!;
  const df = minorScale(from);
  const dt = minorScale(to);
  const spread = BigInt(spreadBps);
  return ceilDiv(receiveMinor * rf * BPS * df, rt * (BPS - spread) * dt);
}

/** Mid-rate equivalent in EUR cents, rounded up: the reference unit for limits and risk. */
export function toEurCents(table: RateTable, currency: string, amountMinor: bigint): Result<bigint, DomainError<'fx_rate_unavailable'>> {
  // EUR is the reference unit itself: weighed without any table.
  if (currency === 'EUR') return ok(amountMinor);
  const r = table.perEur.get(currency);
  // No reference rate: limits and risk cannot be weighed, so the payment is refused rather than counted in a unit it is not.
  if (r === undefined) {
    const why = table.perEur.size === 0 ? 'the operator has loaded no reference rates (POST /v1/operator/fx/rates)' : `no reference rate for ${currency}`;
    return err('fx_rate_unavailable', `${why}: limits and risk cannot be evaluated`, { currency });
  }
  const minorUnit = currencyMinorUnit(currency);
  if (minorUnit === undefined) return err('fx_rate_unavailable', `${currency} is not an ISO 4217 currency with a minor unit`, { currency });
  return ok(ceilDiv(amountMinor * 100n * RATE_SCALE, r * 10n ** BigInt(minorUnit)));
}

/** Fee: fixed + basis points of the amount, rounded up to the minor unit (hub's favour). */
export function computeFee(amountMinor: bigint, fixedMinor: bigint, bps: number): bigint {
  return fixedMinor + ceilDiv(amountMinor * BigInt(bps), BPS);
}
