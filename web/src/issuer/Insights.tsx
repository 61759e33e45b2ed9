import type { Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { Bars, ErrorBox, Section, useLoad } from '../shared/ui.tsx';

type MoneyWire = { amount: string; currency: string };
interface Row { key: string; name?: string; count: number; spend: MoneyWire }
interface Insights { byCategory: Row[]; byMerchant: Row[]; byChannel: Row[]; byWallet: Row[]; byMonth: Row[]; declines: { day: string; reason: string; count: number }[] }

/**
 * The issuer's insights (GET /v1/issuer/insights): totals over its own cards only — spend by category, merchant,
 * channel and wallet, and declines by reason — as bar charts. No customer, card or payment is named.
 */
export function IssuerInsights({ api }: { api: Api }) {
  const { t, money } = useI18n();
  const data = useLoad(() => api.get<Insights>('/v1/issuer/insights'), [api]);
  const bars = (title: string, rows: Row[], label: (r: Row) => string) => {
    const currency = rows[0]?.spend.currency ?? '';
    const same = rows.filter((r) => r.spend.currency === currency);
    return (
      <div>
        <h3>
          {title} {currency !== '' ? `(${currency})` : ''}
        </h3>
        {same.length === 0 ? <p className="muted">{t('common.none')}</p> : <Bars label={title} rows={same.map((r) => ({ label: `${label(r)} · ${r.count}`, value: Number(r.spend.amount) }))} format={(v) => money(v, currency)} />}
      </div>
    );
  };
  const declines = new Map<string, number>();
  for (const d of data.data?.declines ?? []) declines.set(d.reason, (declines.get(d.reason) ?? 0) + d.count);
  return (
    <Section title={t('iss.insights')} testId="issuer-insights">
      <ErrorBox error={data.error} />
      {data.data === undefined && data.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
      {data.data !== undefined && (
        <div className="grid">
          {bars(t('iss.byCategory'), data.data.byCategory, (r) => {
            const w = t(`cat.${r.key}`);
            return w === `cat.${r.key}` ? r.key : w;
          })}
          {bars(t('iss.byMerchant'), data.data.byMerchant, (r) => r.name ?? r.key)}
          {bars(t('iss.byChannel'), data.data.byChannel, (r) => r.key)}
          {bars(t('iss.byWallet'), data.data.byWallet, (r) => r.key)}
          <div>
            <h3>{t('iss.declines')}</h3>
            {declines.size === 0 ? <p className="muted">{t('common.none')}</p> : <Bars label={t('iss.declines')} rows={[...declines.entries()].map(([reason, n]) => ({ label: reason, value: n }))} format={(v) => String(v)} />}
          </div>
        </div>
      )}
    </Section>
  );
}
