import type { MerchantService } from '../merchants/index.ts';
import type { Clock } from '../platform/clock.ts';
import type { Db, Queryable } from '../platform/db.ts';
import type { Decline } from './pipeline.ts';

/**
 * Issuer insights: what an issuer's own cards spent (captured less refunded), by merchant category, merchant, channel,
 * wallet and month, and the reasons its cards' payments were declined, per day. Every figure is computed only over
 * payments and declines whose card the issuer issued (pay_authorizations.issuer_participant_id, pay_declines), and
 * only as totals: no customer, card or payment is named, and no other participant's cards are counted.
 */
export interface InsightRow {
  readonly key: string;
  readonly currency: string;
  readonly count: number;
  readonly amountMinor: bigint;
}

export interface DeclineRow {
  readonly day: string;
  readonly reason: string;
  readonly count: number;
}

export interface IssuerInsights {
  readonly byCategory: InsightRow[];
  readonly byMerchant: (InsightRow & { readonly name: string })[];
  readonly byChannel: InsightRow[];
  readonly byWallet: InsightRow[];
  readonly byMonth: InsightRow[];
  readonly declines: DeclineRow[];
}

export interface InsightService {
  insights(issuerParticipantId: string, range: { from: Date; to: Date }): Promise<IssuerInsights>;
  recordDeclines(q: Queryable, items: readonly Decline[]): Promise<void>;
  /**
   * What some of one issuer's cards spent (captured less refunded, in one currency) since a time, in one merchant
   * category or at one merchant: for offers targeted by a consenting customer's own spending.
   */
  cardSpend(q: Queryable, input: { issuerParticipantId: string; cardIds: readonly string[]; currency: string; since: Date; until: Date; mcc: string | null; merchantId: string | null }): Promise<bigint>;
}

/** Merchant category codes (ISO 18245) grouped for the issuer desk; any other code is its own category. */
export const MCC_CATEGORIES: Readonly<Record<string, string>> = {
  '5411': 'groceries',
  '5412': 'groceries',
  '5499': 'groceries',
  '5812': 'dining',
  '5813': 'dining',
  '5814': 'dining',
  '4111': 'transport',
  '4121': 'transport',
  '4131': 'transport',
  '5541': 'fuel',
  '5542': 'fuel',
  '5311': 'shopping',
  '5651': 'shopping',
  '5691': 'shopping',
  '5732': 'electronics',
  '5734': 'electronics',
  '7011': 'travel',
  '4511': 'travel',
  '5912': 'health',
  '8062': 'health',
};
export const categoryOf = (mcc: string): string => MCC_CATEGORIES[mcc] ?? `mcc_${mcc}`;

interface Agg {
  key: string;
  currency: string;
  n: string | number;
  minor: string | bigint;
}

export function createInsightService(deps: { db: Db; clock: Clock; merchants: Pick<MerchantService, 'getManyById'> }): InsightService {
  const { db, clock } = deps;
  const toRow = (r: Agg): InsightRow => ({ key: r.key, currency: r.currency, count: Number(r.n), amountMinor: BigInt(r.minor) });
  const spendBy = async (issuer: string, range: { from: Date; to: Date }, keyExpr: string): Promise<Agg[]> =>
    db.query<Agg>(
      `select ${keyExpr} as key, currency, count(*)::int as n, sum(captured_minor - refunded_minor - charged_back_minor)::text as minor
         from pay_authorizations
        where issuer_participant_id = $1 and card_id is not null and captured_minor > 0 and created_at >= $2 and created_at < $3
        group by 1, 2 order by sum(captured_minor - refunded_minor - charged_back_minor) desc, 1 limit 50`,
      [issuer, range.from, range.to],
    );
  return {
    async insights(issuer, range) {
      const [mcc, merchant, channel, wallet, month, declines] = await Promise.all([
        spendBy(issuer, range, 'mcc'),
        spendBy(issuer, range, 'merchant_id'),
        spendBy(issuer, range, 'channel'),
        spendBy(issuer, range, `coalesce(payer_participant_id, 'terminal')`),
        spendBy(issuer, range, `to_char(created_at at time zone 'UTC', 'YYYY-MM')`),
        db.query<{ day: string; reason: string; n: number }>(
          `select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD') as day, reason, count(*)::int as n from pay_declines
            where issuer_participant_id = $1 and created_at >= $2 and created_at < $3 group by 1, 2 order by 1, 2 limit 1000`,
          [issuer, range.from, range.to],
        ),
      ]);
      // Categories merge their codes.
      const cat = new Map<string, InsightRow>();
      for (const r of mcc.map(toRow)) {
        const k = `${categoryOf(r.key)} ${r.currency}`;
        const e = cat.get(k);
        cat.set(k, e === undefined ? { ...r, key: categoryOf(r.key) } : { ...e, count: e.count + r.count, amountMinor: e.amountMinor + r.amountMinor });
      }
      const names = merchant.length === 0 ? new Map() : await deps.merchants.getManyById(merchant.map((m) => m.key));
      return {
        byCategory: [...cat.values()].sort((a, b) => (a.amountMinor === b.amountMinor ? a.key.localeCompare(b.key) : a.amountMinor > b.amountMinor ? -1 : 1)),
        byMerchant: merchant.map((m) => ({ ...toRow(m), name: names.get(m.key)?.name ?? m.key })),
        byChannel: channel.map(toRow),
        byWallet: wallet.map(toRow),
        byMonth: month.map(toRow).sort((a, b) => a.key.localeCompare(b.key)),
        declines: declines.map((d) => ({ day: d.day, reason: d.reason, count: Number(d.n) })),
      };
    },

    async cardSpend(q, input) {
      if (input.cardIds.length === 0) return 0n;
      const [r] = await q.query<{ spent: string | null }>(
        `select sum(captured_minor - refunded_minor - charged_back_minor)::text as spent from pay_authorizations
          where issuer_participant_id = $1 and card_id = any($2::text[]) and currency = $3 and captured_minor > 0 and created_at >= $4 and created_at <= $5
            and ($6::text is null or mcc = $6) and ($7::text is null or merchant_id = $7)`,
        [input.issuerParticipantId, [...input.cardIds], input.currency, input.since, input.until, input.mcc, input.merchantId],
      );
      return BigInt(r?.spent ?? '0');
    },

    async recordDeclines(q, items) {
      if (items.length === 0) return;
      await q.query(
        `insert into pay_declines (issuer_participant_id, card_id, merchant_id, mcc, channel, wallet_participant_id, reason, amount_minor, currency, created_at)
         select issuer, card, merchant, mcc, channel, wallet, reason, amount::bigint, currency, $10::timestamptz
           from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[]) as v(issuer, card, merchant, mcc, channel, wallet, reason, amount, currency)`,
        [
          items.map((d) => d.issuerParticipantId),
          items.map((d) => d.cardId),
          items.map((d) => d.merchantId),
          items.map((d) => d.mcc),
          items.map((d) => d.channel),
          items.map((d) => d.walletParticipantId),
          items.map((d) => d.reason),
          items.map((d) => d.amountMinor.toString()),
          items.map((d) => d.currency),
          clock.now(),
        ],
      );
    },
  };
}
