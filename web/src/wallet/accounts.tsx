import { useState } from 'react';
import type { Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { Select, useLoad } from '../shared/ui.tsx';
import type { WalletSession } from './session.ts';

export type MoneyWire = { amount: string; currency: string };
export interface Account { id: string; currency: string; balance: MoneyWire; available: MoneyWire; heldBy: { participantId: string; name: string }; linkId: string | null }

/** The customer's accounts: their own at this wallet and the bank accounts linked into it, in every currency. */
export function useAccounts(api: Api, session: WalletSession) {
  return useLoad(async () => (await api.get<{ items: Account[] }>(`/v1/accounts?customerId=${encodeURIComponent(session.customerId)}`)).items, [api]);
}

/** The currencies the customer holds (CNY until their accounts have loaded, or when they hold none). */
export function useCurrencies(api: Api, session: WalletSession): string[] {
  const accounts = useAccounts(api, session);
  const held = [...new Set((accounts.data ?? []).map((a) => a.currency))];
  return held.length > 0 ? held : ['CNY'];
}

export function CurrencySelect({ currencies, value, onChange, name }: { currencies: string[]; value: string; onChange: (v: string) => void; name: string }) {
  const { t } = useI18n();
  return <Select label={t('common.currency')} name={name} value={value} onChange={onChange} options={currencies.map((c) => ({ value: c, label: c }))} />;
}

/** The chosen currency, kept to one the customer holds once their accounts have loaded. */
export function useCurrency(currencies: string[]): [string, (c: string) => void] {
  const [currency, setCurrency] = useState('');
  const first = currencies[0] ?? 'CNY';
  return [currencies.includes(currency) ? currency : first, setCurrency];
}
