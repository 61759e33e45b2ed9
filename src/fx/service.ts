import type { Actor, AuditService } from '../audit/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import { ok, type DomainError, type Result } from '../platform/result.ts';
import type { EventOutbox } from '../webhooks/index.ts';
import { createFxProviders, type FxProviders } from './providers.ts';
import { EMPTY_TABLE, formatScaled, parseEcbXml, parseScaledDecimal, RATE_SCALE_DIGITS, type FxErrorCode, type PublishedRateTable, type RateTable } from './rates.ts';

/**
 * The REFERENCE rate table in force (mid rates: limits and risk weigh every currency in EUR by it, quotes show the mid
 * rate beside the provider's): the operator's data (`POST /v1/operator/fx/rates`), kept in the database (so every hub
 * process and restart sees the same one) and cached in memory. `refresh(xml)` replaces it as a whole; quotes already
 * issued keep the rate they locked. Until the operator loads one the table is empty and every amount that must be
 * weighed in EUR is refused (`fx_rate_unavailable`): no file shipped with the hub stands in for the operator's rates
 * (the bundled demo file is the demo FX provider's source, and the demo network loads it as its operator would).
 */
export interface FxService {
  /** The table in force; empty (`asOf` null) while the operator has loaded none. */
  table(): Promise<RateTable>;
  refresh(tx: Queryable, actor: Actor, xml: string): Promise<Result<PublishedRateTable, DomainError<FxErrorCode>>>;
  spreadBps(): number;
  setSpreadBps(bps: number): void;
  /** FX provider participants and the rates they post: what payments across currencies convert through. */
  readonly providers: FxProviders;
}

/**
 * What reference table the database holds (for `hutong doctor`, which reads a database without building a hub):
 * how many currencies and their date; undefined when the database has not been migrated yet.
 */
export async function referenceRatesIn(q: Queryable): Promise<{ currencies: number; asOf: string | null } | undefined> {
  const [table] = await q.query<{ t: string | null }>(`select to_regclass('fx_rates')::text as t`);
  if (table?.t == null) return undefined;
  const [row] = await q.query<{ n: bigint; as_of: string | null }>('select count(*) as n, max(as_of) as as_of from fx_rates');
  return { currencies: Number(row?.n ?? 0n), asOf: row?.as_of ?? null };
}

/** How long an empty answer is kept before the database is read again (another process may load the rates). */
const EMPTY_RECHECK_MS = 1_000;

export function createFxService(deps: { db: Db; clock: Clock; audit: AuditService; events: EventOutbox; spreadBps?: number }): FxService {
  const { db, clock, audit } = deps;
  let cached: RateTable | undefined;
  let emptyUntilMs = 0;
  let spread = deps.spreadBps ?? 50;

  const readDb = async (q: Queryable): Promise<RateTable | undefined> => {
    const rows = await q.query<{ currency: string; per_eur: string; as_of: string }>('select currency, per_eur::text as per_eur, as_of from fx_rates');
    if (rows.length === 0) return undefined;
    const perEur = new Map<string, bigint>();
    for (const r of rows) {
      const v = parseScaledDecimal(r.per_eur);
      if (v !== undefined) perEur.set(r.currency, v);
    }
    return { asOf: rows[0]?.as_of ?? '', perEur };
  };

  const write = async (q: Queryable, table: PublishedRateTable) => {
    await q.query('delete from fx_rates');
    const entries = [...table.perEur.entries()];
    await q.query(
      `insert into fx_rates (currency, per_eur, as_of, loaded_at) select c, r::numeric, $3, $4 from unnest($1::text[], $2::text[]) as u(c, r)`,
      [entries.map(([c]) => c), entries.map(([, v]) => formatScaled(v, RATE_SCALE_DIGITS)), table.asOf, clock.now()],
    );
  };

  const providers = createFxProviders({ clock, audit, events: deps.events });

  return {
    providers,
    async table() {
      if (cached !== undefined) return cached;
      if (clock.nowMs() < emptyUntilMs) return EMPTY_TABLE;
      const fromDb = await readDb(db);
      if (fromDb !== undefined) {
        cached = fromDb;
        return fromDb;
      }
      emptyUntilMs = clock.nowMs() + EMPTY_RECHECK_MS;
      return EMPTY_TABLE;
    },
    async refresh(tx, actor, xml) {
      const parsed = parseEcbXml(xml);
      if (!parsed.ok) return parsed;
      await write(tx, parsed.value);
      cached = parsed.value;
      emptyUntilMs = 0;
      await audit.record(tx, { actor, action: 'fx.rates_refreshed', objectType: 'fx_rates', objectId: parsed.value.asOf, details: { currencies: parsed.value.perEur.size } });
      return ok(parsed.value);
    },
    spreadBps: () => spread,
    setSpreadBps(bps) {
      if (!Number.isInteger(bps) || bps < 0 || bps >= 10_000) throw new Error('spread must be 0–9999 bps');
      spread = bps;
    },
  };
}
