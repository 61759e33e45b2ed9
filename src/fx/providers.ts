import type { Actor, AuditService } from '../audit/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Queryable } from '../platform/db.ts';
import { newId } from '../platform/ids.ts';
import { currencyMinorUnit, formatMoney } from '../platform/money.ts';
import { err, ok, type DomainError, type Result } from '../platform/result.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import { formatScaled, parseScaledDecimal, RATE_SCALE_DIGITS, type FxErrorCode } from './rates.ts';

/**
 * FX providers are participants (docs/ARCHITECTURE.md, "FX providers"). The operator registers a participant as one;
 * it then posts, per currency pair, a RATE: size tiers on the amount sent (each tier its own customer rate, receive
 * units per send unit, spread included) and an expiry. The newest rate a provider posted for a pair is the one in
 * force until it expires. A quote binds one rate by id (the best one that covers its amount, or the chosen provider's),
 * and the payment's FX legs move that provider's positions: up in the currency sent, down in the currency delivered.
 *
 * Rounding as for every conversion in the hub: what the customer receives is rounded down, what they pay rounded up.
 */
const RATE_SCALE = 10n ** BigInt(RATE_SCALE_DIGITS);
/** The longest a posted rate may stand. */
export const MAX_RATE_TTL_MS = 31 * 86_400_000;
export const MAX_TIERS = 10;
/** How long the demo provider's rates stand (re-posted at each demo start, and by `postDemoProviderRates`). */
export const DEMO_RATE_TTL_MS = 30 * 86_400_000;

export interface FxTier {
  /** The smallest amount sent (minor units of the send currency) this tier prices, inclusive. */
  readonly minMinor: bigint;
  /** The largest, inclusive; null: no upper bound. */
  readonly maxMinor: bigint | null;
  /** Receive units per send unit, scaled by 10^RATE_SCALE_DIGITS. */
  readonly rate: bigint;
}

export interface FxRate {
  readonly id: string;
  readonly providerParticipantId: string;
  readonly sendCurrency: string;
  readonly receiveCurrency: string;
  readonly tiers: readonly FxTier[];
  readonly postedAt: Date;
  readonly expiresAt: Date;
}

/** A rate bound to an amount: what a quote stores. */
export interface BoundRate {
  readonly rateId: string;
  readonly providerParticipantId: string;
  readonly rate: bigint;
  readonly expiresAt: Date;
  readonly sendMinor: bigint;
  readonly receiveMinor: bigint;
}

type FxErr = DomainError<FxErrorCode>;

export interface FxProviders {
  register(tx: Queryable, actor: Actor, participantId: string): Promise<{ participantId: string; registeredAt: Date }>;
  isProvider(q: Queryable, participantId: string): Promise<boolean>;
  post(tx: Queryable, actor: Actor, providerId: string, input: { sendCurrency: string; receiveCurrency: string; tiers: readonly FxTier[]; expiresAt: Date }): Promise<Result<FxRate, FxErr>>;
  /** The rates in force (newest per provider and pair), optionally for one pair or one provider; expired ones included when asked. */
  current(q: Queryable, filter: { sendCurrency?: string | undefined; receiveCurrency?: string | undefined; providerId?: string | undefined; includeExpired?: boolean }): Promise<FxRate[]>;
  get(q: Queryable, rateId: string): Promise<FxRate | undefined>;
  /**
   * The best rate in force for an amount (send or receive), among every provider or the one named: `fx_rate_expired`
   * when the pair's rates have all expired, `fx_tier_not_covered` when none of the tiers in force prices this amount,
   * `fx_rate_unavailable` when no provider quotes the pair.
   */
  bind(q: Queryable, input: { sendCurrency: string; receiveCurrency: string; mode: 'send' | 'receive'; amountMinor: bigint; providerId?: string | undefined }): Promise<Result<BoundRate, FxErr>>;
}

const scale = (currency: string) => 10n ** BigInt(currencyMinorUnit(currency) ?? 2);
const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b;

/** Minor units received for `sendMinor` sent at `rate`: rounded down. */
export function receiveFor(rate: bigint, from: string, to: string, sendMinor: bigint): bigint {
  return (sendMinor * rate * scale(to)) / (RATE_SCALE * scale(from));
}
/** Minor units to send so that at least `receiveMinor` arrives at `rate`: rounded up. */
export function sendFor(rate: bigint, from: string, to: string, receiveMinor: bigint): bigint {
  return ceilDiv(receiveMinor * RATE_SCALE * scale(from), rate * scale(to));
}

const covers = (t: FxTier, sendMinor: bigint) => sendMinor >= t.minMinor && (t.maxMinor === null || sendMinor <= t.maxMinor);

/** Checks posted tiers: 1 to MAX_TIERS, positive rates, sorted by amount and not overlapping. */
export function validateTiers(tiers: readonly FxTier[]): string | undefined {
  if (tiers.length === 0 || tiers.length > MAX_TIERS) return `give 1 to ${MAX_TIERS} tiers`;
  let prevMax: bigint | null | undefined;
  for (const [i, t] of tiers.entries()) {
    if (t.rate <= 0n) return `tier ${i + 1}: the rate must be positive`;
    if (t.minMinor < 1n) return `tier ${i + 1}: the minimum must be at least one minor unit`;
    if (t.maxMinor !== null && t.maxMinor < t.minMinor) return `tier ${i + 1}: the maximum is below the minimum`;
    if (prevMax === null) return `tier ${i}: an unbounded tier must be the last`;
    if (prevMax !== undefined && t.minMinor <= prevMax) return `tier ${i + 1} overlaps the one before (tiers go up in amount)`;
    prevMax = t.maxMinor;
  }
  return undefined;
}

interface RateRow {
  id: string;
  provider_participant_id: string;
  send_currency: string;
  receive_currency: string;
  tiers: unknown;
  posted_at: Date;
  expires_at: Date;
}
const toRate = (r: RateRow): FxRate => {
  const raw = (typeof r.tiers === 'string' ? JSON.parse(r.tiers) : r.tiers) as { minMinor: string; maxMinor: string | null; rate: string }[];
  return {
    id: r.id,
    providerParticipantId: r.provider_participant_id,
    sendCurrency: r.send_currency,
    receiveCurrency: r.receive_currency,
    tiers: raw.map((t) => ({ minMinor: BigInt(t.minMinor), maxMinor: t.maxMinor === null ? null : BigInt(t.maxMinor), rate: parseScaledDecimal(t.rate) ?? 0n })),
    postedAt: r.posted_at,
    expiresAt: r.expires_at,
  };
};

export function createFxProviders(deps: { clock: Clock; audit: AuditService; events: EventOutbox }): FxProviders {
  const { clock, audit, events } = deps;

  const current: FxProviders['current'] = async (q, filter) => {
    const rows = await q.query<RateRow>(
      `select distinct on (provider_participant_id, send_currency, receive_currency) *
         from fx_provider_rates
        where ($1::text is null or send_currency = $1) and ($2::text is null or receive_currency = $2) and ($3::text is null or provider_participant_id = $3)
        order by provider_participant_id, send_currency, receive_currency, posted_at desc, id desc
        limit 500`,
      [filter.sendCurrency ?? null, filter.receiveCurrency ?? null, filter.providerId ?? null],
    );
    const now = clock.nowMs();
    return rows.map(toRate).filter((r) => filter.includeExpired === true || r.expiresAt.getTime() > now);
  };

  const isProvider = async (q: Queryable, participantId: string) => (await q.query('select 1 as x from fx_providers where participant_id = $1', [participantId])).length === 1;

  return {
    async register(tx, actor, participantId) {
      const now = clock.now();
      const [row] = await tx.query<{ registered_at: Date }>(
        'insert into fx_providers (participant_id, registered_at) values ($1, $2) on conflict (participant_id) do update set participant_id = excluded.participant_id returning registered_at',
        [participantId, now],
      );
      await audit.record(tx, { actor, action: 'fx.provider_registered', objectType: 'participant', objectId: participantId });
      return { participantId, registeredAt: row?.registered_at ?? now };
    },
    isProvider,
    async post(tx, actor, providerId, input) {
      if (!(await isProvider(tx, providerId))) return err('fx_provider_not_registered', 'you are not registered as an FX provider: the operator registers FX providers');
      if (currencyMinorUnit(input.sendCurrency) === undefined || currencyMinorUnit(input.receiveCurrency) === undefined) return err('fx_rate_invalid', 'both currencies must be ISO 4217 codes');
      if (input.sendCurrency === input.receiveCurrency) return err('fx_rate_invalid', 'a rate converts between two different currencies');
      const bad = validateTiers(input.tiers);
      if (bad !== undefined) return err('fx_rate_invalid', bad);
      const now = clock.now();
      if (input.expiresAt.getTime() <= now.getTime()) return err('fx_rate_invalid', 'the expiry must be in the future');
      if (input.expiresAt.getTime() - now.getTime() > MAX_RATE_TTL_MS) return err('fx_rate_invalid', 'a rate stands for at most 31 days');
      const id = newId('fxr');
      const stored = input.tiers.map((t) => ({ minMinor: t.minMinor.toString(), maxMinor: t.maxMinor === null ? null : t.maxMinor.toString(), rate: formatScaled(t.rate, RATE_SCALE_DIGITS) }));
      await tx.query(
        `insert into fx_provider_rates (id, provider_participant_id, send_currency, receive_currency, tiers, posted_at, expires_at) values ($1, $2, $3, $4, $5::jsonb, $6, $7)`,
        [id, providerId, input.sendCurrency, input.receiveCurrency, JSON.stringify(stored), now, input.expiresAt],
      );
      const rate: FxRate = { id, providerParticipantId: providerId, sendCurrency: input.sendCurrency, receiveCurrency: input.receiveCurrency, tiers: input.tiers, postedAt: now, expiresAt: input.expiresAt };
      await audit.record(tx, { actor, action: 'fx.rate_posted', objectType: 'fx_rate', objectId: id, details: { pair: `${input.sendCurrency}/${input.receiveCurrency}`, tiers: input.tiers.length, expiresAt: input.expiresAt.toISOString() } });
      // The event names the pair as from/to (money in events is { amount, currency }; no currency stands apart from an amount).
      const { sendCurrency: from, receiveCurrency: to, ...rest } = wireRate(rate);
      await events.emit(tx, { participantId: providerId, type: 'fx.rate_posted', data: { ...rest, from, to } });
      return ok(rate);
    },
    current,
    async get(q, rateId) {
      const [r] = await q.query<RateRow>('select * from fx_provider_rates where id = $1', [rateId]);
      return r === undefined ? undefined : toRate(r);
    },
    async bind(q, input) {
      const all = await current(q, { sendCurrency: input.sendCurrency, receiveCurrency: input.receiveCurrency, providerId: input.providerId, includeExpired: true });
      const now = clock.nowMs();
      const live = all.filter((r) => r.expiresAt.getTime() > now);
      const pair = `${input.sendCurrency}/${input.receiveCurrency}`;
      if (all.length === 0) return err('fx_rate_unavailable', `no FX provider quotes ${pair}`, { from: input.sendCurrency, to: input.receiveCurrency });
      if (live.length === 0) {
        const newest = all.reduce((a, b) => (a.expiresAt > b.expiresAt ? a : b));
        return err('fx_rate_expired', `the ${pair} rate expired at ${newest.expiresAt.toISOString()}: the provider must post a new one`, { rateId: newest.id, expiredAt: newest.expiresAt.toISOString() });
      }
      let best: BoundRate | undefined;
      for (const r of live) {
        for (const t of r.tiers) {
          const sendMinor = input.mode === 'send' ? input.amountMinor : sendFor(t.rate, input.sendCurrency, input.receiveCurrency, input.amountMinor);
          if (!covers(t, sendMinor)) continue;
          const receiveMinor = input.mode === 'send' ? receiveFor(t.rate, input.sendCurrency, input.receiveCurrency, sendMinor) : input.amountMinor;
          if (receiveMinor <= 0n) continue;
          const better = best === undefined || (input.mode === 'send' ? receiveMinor > best.receiveMinor : sendMinor < best.sendMinor);
          if (better) best = { rateId: r.id, providerParticipantId: r.providerParticipantId, rate: t.rate, expiresAt: r.expiresAt, sendMinor, receiveMinor };
        }
      }
      if (best === undefined) {
        const tiers = live.flatMap((r) => r.tiers.map((t) => ({ min: formatMoney(t.minMinor, input.sendCurrency), max: t.maxMinor === null ? null : formatMoney(t.maxMinor, input.sendCurrency) })));
        return err('fx_tier_not_covered', `no ${pair} rate in force prices this amount`, { tiers });
      }
      return ok(best);
    },
  };
}

export function wireRate(r: FxRate) {
  return {
    id: r.id,
    providerParticipantId: r.providerParticipantId,
    sendCurrency: r.sendCurrency,
    receiveCurrency: r.receiveCurrency,
    tiers: r.tiers.map((t) => ({ min: formatMoney(t.minMinor, r.sendCurrency), max: t.maxMinor === null ? null : formatMoney(t.maxMinor, r.sendCurrency), rate: formatScaled(t.rate, 8) })),
    postedAt: r.postedAt.toISOString(),
    expiresAt: r.expiresAt.toISOString(),
  };
}
