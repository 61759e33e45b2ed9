import { useEffect, useState } from 'react';
import type { Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { Bars, ErrorBox, Field, Section, useAction, useLoad } from '../shared/ui.tsx';
import { CurrencySelect, useCurrencies, useCurrency, type MoneyWire } from './accounts.tsx';
import type { WalletSession } from './session.ts';

/** A budget as the hub keeps it (GET /v1/budgets): thresholds, this month's spending and the balance available. */
export interface HubBudget {
  currency: string;
  monthlyLimit: MoneyWire | null;
  lowBalance: MoneyWire | null;
  month: string;
  spent: MoneyWire;
  available: MoneyWire;
  overBudget: boolean;
  nearBudget: boolean;
  lowBalanceReached: boolean;
}

interface SpendingBucket {
  key: string;
  amount: MoneyWire;
  count: number;
}

/** Spending summed on the hub over the whole history (GET /v1/history/spending), in one currency. */
async function loadSpending(api: Api, session: WalletSession, by: 'category' | 'month', currency: string): Promise<SpendingBucket[]> {
  return (await api.get<{ buckets: SpendingBucket[] }>(`/v1/history/spending?customerId=${encodeURIComponent(session.customerId)}&by=${by}&currency=${encodeURIComponent(currency)}`)).buckets;
}

/**
 * The monthly budget and low-balance alert, per currency the customer holds, kept at the hub (POST /v1/budgets): the
 * same on every device, and the hub tells the wallet by webhook when one is crossed. Spending charts in that currency.
 */
export function Budget({ api, session }: { api: Api; session: WalletSession }) {
  const { t, money, month } = useI18n();
  const currencies = useCurrencies(api, session);
  const [currency, setCurrency] = useCurrency(currencies);
  const budgets = useLoad(async () => (await api.get<{ items: HubBudget[] }>(`/v1/budgets?customerId=${encodeURIComponent(session.customerId)}`)).items, [api]);
  const byCategory = useLoad(() => loadSpending(api, session, 'category', currency), [api, currency]);
  const byMonth = useLoad(() => loadSpending(api, session, 'month', currency), [api, currency]);
  const current = budgets.data?.find((b) => b.currency === currency);
  const [limit, setLimit] = useState('');
  const [low, setLow] = useState('');
  const [saved, setSaved] = useState(false);
  // The form shows what the hub keeps for the chosen currency, once loaded.
  useEffect(() => {
    setLimit(current?.monthlyLimit?.amount ?? '');
    setLow(current?.lowBalance?.amount ?? '');
  }, [currency, current?.monthlyLimit?.amount, current?.lowBalance?.amount]);
  const save = useAction(async () => {
    setSaved(false);
    await api.post('/v1/budgets', { customerId: session.customerId, currency, monthlyLimit: limit.trim() === '' ? null : limit.trim(), lowBalance: low.trim() === '' ? null : low.trim() });
    await budgets.reload();
    setSaved(true);
  });
  const limitN = Number(current?.monthlyLimit?.amount ?? 0);
  const spent = Number(current?.spent.amount ?? 0);
  return (
    <div className="grid">
      <Section title={t('budget.title')} testId="budget">
        <p className="muted">{t('budget.atHub')}</p>
        <ErrorBox error={budgets.error} />
        {budgets.data === undefined && budgets.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void save.run();
          }}
        >
          {currencies.length > 1 && <CurrencySelect name="budget-currency" currencies={currencies} value={currency} onChange={setCurrency} />}
          <div className="row">
            <Field label={`${t('budget.limit')} (${currency})`} name="budget-limit" value={limit} onChange={setLimit} inputMode="decimal" />
            <Field label={`${t('budget.lowBalance')} (${currency})`} name="budget-low" value={low} onChange={setLow} inputMode="decimal" />
          </div>
          <button type="submit" disabled={save.busy} data-testid="budget-save">
            {t('budget.save')}
          </button>
        </form>
        <ErrorBox error={save.error} />
        {saved && save.error === undefined && (
          <p className="ok" data-testid="budget-saved">
            {t('budget.saved')} ✓
          </p>
        )}
        {current !== undefined && (
          <div data-testid="budget-status" data-currency={current.currency} data-over={String(current.overBudget)} data-low={String(current.lowBalanceReached)}>
            {current.monthlyLimit !== null && (
              <>
                <p>
                  {t('budget.spent')}: <strong>{money(current.spent.amount, currency)}</strong> / {money(current.monthlyLimit.amount, currency)}
                </p>
                <div className="bar-track" role="meter" aria-label={t('budget.spent')} aria-valuemin={0} aria-valuemax={limitN || 1} aria-valuenow={spent}>
                  <span className="bar" style={{ width: `${Math.min(100, Math.round((spent / (limitN || 1)) * 100))}%`, background: current.overBudget ? 'var(--red-dark)' : undefined }} />
                </div>
              </>
            )}
            {current.overBudget && (
              <p className="error" role="alert" data-testid="budget-over">
                {t('budget.over')}
              </p>
            )}
            {current.nearBudget && <p className="warn">{t('budget.near')}</p>}
            {current.lowBalanceReached && (
              <p className="warn" role="alert" data-testid="budget-low">
                {t('budget.low')}: {money(current.available.amount, currency)}
              </p>
            )}
          </div>
        )}
        {(budgets.data ?? []).filter((b) => b.currency !== currency).length > 0 && (
          <ul className="muted" aria-label={t('budget.others')}>
            {(budgets.data ?? [])
              .filter((b) => b.currency !== currency)
              .map((b) => (
                <li key={b.currency}>
                  {b.currency}: {b.monthlyLimit !== null ? `${money(b.spent.amount, b.currency)} / ${money(b.monthlyLimit.amount, b.currency)}` : ''}
                  {b.lowBalance !== null ? ` · ${t('budget.lowBalance')} ${money(b.lowBalance.amount, b.currency)}` : ''}
                </li>
              ))}
          </ul>
        )}
      </Section>
      <Section title={`${t('budget.byCategory')} (${currency})`}>
        <ErrorBox error={byCategory.error} />
        <Bars label={t('budget.byCategory')} rows={(byCategory.data ?? []).map((b) => ({ label: t(`cat.${b.key}`), value: Number(b.amount.amount) }))} format={(v) => money(v, currency)} />
        {byCategory.data?.length === 0 && <p className="muted">{t('history.empty')}</p>}
      </Section>
      <Section title={`${t('budget.byMonth')} (${currency})`}>
        <ErrorBox error={byMonth.error} />
        <Bars label={t('budget.byMonth')} rows={(byMonth.data ?? []).map((b) => ({ label: month(`${b.key}-01T00:00:00Z`), value: Number(b.amount.amount) }))} format={(v) => money(v, currency)} />
        {byMonth.data?.length === 0 && <p className="muted">{t('history.empty')}</p>}
      </Section>
    </div>
  );
}
