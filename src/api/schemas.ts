import { Type, type TSchema } from '@sinclair/typebox';

/** Shared wire schemas. Money is a decimal string plus an ISO 4217 code; the minor unit is checked by parseMoney. */
export const AmountString = Type.String({ pattern: '^-?[0-9]{1,31}(\\.[0-9]{1,31})?$', maxLength: 40, description: 'Decimal string in the currency, e.g. "12.30"', examples: ['12.30'] });
export const CurrencyCode = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 alphabetic code', examples: ['CNY'] });
export const Money = Type.Object({ amount: AmountString, currency: CurrencyCode }, { additionalProperties: false });
export const Id = (description = 'Object id') => Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$', description });
export const Timestamp = Type.String({ format: 'date-time' });
export const CountryCode = Type.String({ pattern: '^[A-Z]{2}$', description: 'ISO 3166-1 alpha-2' });

export const PAGE_LIMIT_MAX = 200;
export const PageQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: `Page size, 1–${PAGE_LIMIT_MAX} (default 50)` })),
    cursor: Type.Optional(Type.String({ maxLength: 200, description: 'The `nextCursor` of the previous page (any other cursor: 400 invalid_page)' })),
  },
  { additionalProperties: false },
);

export function pageLimit(limit: string | undefined, fallback = 50): number {
  const n = limit === undefined ? fallback : Number(limit);
  return Math.min(Math.max(n, 1), PAGE_LIMIT_MAX);
}

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false });

export const IdempotencyHeaders = Type.Object(
  { 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Retries with the same key replay the first response' })) },
  { additionalProperties: true },
);

/** Object schema that refuses unknown fields (the default for every request body). */
export const Strict = <T extends Parameters<typeof Type.Object>[0]>(properties: T) => Type.Object(properties, { additionalProperties: false });

/**
 * `value` typed as `S` when it has exactly S's keys: a wire object checked against its closed response schema
 * (`Exactly<Static<typeof Schema>>()(wire)`), since the serializer silently drops a field the schema lacks.
 */
export const Exactly = <S>() => <W extends S>(value: W & Record<Exclude<keyof W, keyof S>, never>): S => value;
