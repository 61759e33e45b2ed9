import { Type, type Static } from '@sinclair/typebox';
import { actorOf, created, okResponse, principalOf, type Idempotent } from '../api/index.ts';
import { CurrencyCode, Exactly, Money, Strict, Timestamp } from '../api/index.ts';
import { Ref } from '../api/index.ts';
import type { Db } from '../platform/db.ts';
import type { HttpServer } from '../platform/http.ts';
import { parseAmount } from '../platform/money.ts';
import { err } from '../platform/result.ts';
import { wireRate, type FxProviders, type FxTier } from './providers.ts';
import { parseScaledDecimal } from './rates.ts';

const RateSchema = Type.Object(
  {
    id: Type.String({ description: 'The rate: a quote binds it by this id (fxRateId)' }),
    providerParticipantId: Type.String({ description: 'The FX provider participant that posted it' }),
    sendCurrency: Type.String(),
    receiveCurrency: Type.String(),
    tiers: Type.Array(
      Type.Object(
        {
          min: Money,
          max: Type.Union([Money, Type.Null()], { description: 'null: no upper bound' }),
          rate: Type.String({ description: 'Receive units per send unit (the customer rate, spread included), 8 decimals' }),
        },
        { additionalProperties: false },
      ),
    ),
    postedAt: Timestamp,
    expiresAt: Timestamp,
  },
  {
    $id: 'FxProviderRate',
    additionalProperties: false,
    description: 'A rate an FX provider posted for a currency pair: size tiers on the amount sent, each its own rate, in force until it expires or the provider posts a newer one.',
  },
);
const RateDecimal = Type.String({ pattern: '^[0-9]{1,12}(\\.[0-9]{1,12})?$', maxLength: 25, description: 'Receive units per send unit, e.g. "1.0791"' });
const TierInput = Strict({
  min: Money,
  max: Type.Optional(Money),
  rate: RateDecimal,
});
const ProviderSchema = Type.Object({ participantId: Type.String(), registeredAt: Timestamp }, { additionalProperties: false, description: 'An FX provider participant' });

/**
 * FX providers: the operator registers a participant as one; the provider posts rates; every participant reads the
 * rates in force (a wallet may name the provider in its quote: `fxProviderId`).
 */
export function registerFxProviderRoutes(app: HttpServer, deps: { db: Db; providers: FxProviders; idempotent: Idempotent }): void {
  const { db, providers, idempotent } = deps;
  app.addSchema(RateSchema);
  const rates = Type.Object({ items: Type.Array(Type.Ref(RateSchema)) }, { additionalProperties: false });

  app.post(
    '/v1/operator/fx/providers',
    {
      config: { auth: 'operator', idempotency: 'optional' },
      schema: {
        tags: ['fx'],
        summary: 'Register a participant as an FX provider: it may then post rates, and payments across currencies convert through its positions',
        security: [{ operator: [] }],
        body: Strict({ participantId: Ref('participant', 'The participant') }),
        response: { 200: ProviderSchema },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const r = await providers.register(tx, actorOf(request), request.body.participantId);
        return okResponse(Exactly<Static<typeof ProviderSchema>>()({ participantId: r.participantId, registeredAt: r.registeredAt.toISOString() }));
      }),
  );

  app.post(
    '/v1/fx/provider-rates',
    {
      config: { idempotency: 'optional' },
      schema: {
        tags: ['fx'],
        summary: 'Post your rate for a currency pair (FX providers): size tiers and an expiry; it replaces your previous rate for the pair',
        description:
          'Tiers price the amount sent (in the send currency): sorted, not overlapping, the last one may leave `max` out. A quote binds the best rate in force that ' +
          'prices its amount (fx_tier_not_covered when none does; fx_rate_expired when the pair’s rates have expired), and the payment then moves your position up ' +
          'in the currency sent and down in the currency delivered.',
        security: [{ participant: [] }],
        body: Strict({
          sendCurrency: CurrencyCode,
          receiveCurrency: CurrencyCode,
          tiers: Type.Array(TierInput, { minItems: 1, maxItems: 10 }),
          expiresAt: Timestamp,
        }),
        response: { 201: Type.Ref(RateSchema) },
      },
    },
    async (request, reply) =>
      idempotent(request, reply, async (tx) => {
        const b = request.body;
        const tiers: FxTier[] = [];
        for (const [i, t] of b.tiers.entries()) {
          if (t.min.currency !== b.sendCurrency || (t.max !== undefined && t.max.currency !== b.sendCurrency)) return err('fx_rate_invalid', `tier ${i + 1}: amounts are in the send currency (${b.sendCurrency})`).error;
          const min = parseAmount(t.min.amount, b.sendCurrency, { field: `tiers[${i}].min` });
          if (!min.ok) return min.error;
          const max = t.max === undefined ? undefined : parseAmount(t.max.amount, b.sendCurrency, { field: `tiers[${i}].max` });
          if (max !== undefined && !max.ok) return max.error;
          const rate = parseScaledDecimal(t.rate);
          if (rate === undefined || rate <= 0n) return err('fx_rate_invalid', `tier ${i + 1}: the rate must be a positive decimal`).error;
          tiers.push({ minMinor: min.value, maxMinor: max === undefined ? null : max.value, rate });
        }
        const expiresAt = new Date(b.expiresAt);
        if (Number.isNaN(expiresAt.getTime())) return err('fx_rate_invalid', 'expiresAt is not a time').error;
        const r = await providers.post(tx, actorOf(request), principalOf(request).participantId, { sendCurrency: b.sendCurrency, receiveCurrency: b.receiveCurrency, tiers, expiresAt });
        return r.ok ? created(wireRate(r.value)) : r.error;
      }),
  );

  app.get(
    '/v1/fx/provider-rates',
    {
      config: { customer: true },
      schema: {
        tags: ['fx'],
        summary: 'The FX providers’ rates in force (newest per provider and pair), optionally for one pair or one provider',
        security: [{ participant: [] }],
        querystring: Strict({
          sendCurrency: Type.Optional(CurrencyCode),
          receiveCurrency: Type.Optional(CurrencyCode),
          providerId: Type.Optional(Ref('participant', 'Only this provider’s rates')),
        }),
        response: { 200: rates },
      },
    },
    async (request) => {
      const q = request.query;
      const found = await providers.current(db, { sendCurrency: q.sendCurrency, receiveCurrency: q.receiveCurrency, providerId: q.providerId });
      return { items: found.map(wireRate) };
    },
  );
}
