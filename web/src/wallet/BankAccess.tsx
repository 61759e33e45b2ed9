import { useEffect, useMemo, useRef, useState } from 'react';
import { createApi, type Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ErrorBox, Field, Money, Section, Select, useAction, useLoad } from '../shared/ui.tsx';
import { CurrencySelect, useCurrencies, useCurrency, type MoneyWire } from './accounts.tsx';
import type { WalletSession } from './session.ts';

/** An open-banking consent as the hub shows it (GET /v1/open-banking/consents): never the bank's grant itself. */
interface BankConsent {
  readonly id: string;
  readonly bankParticipantId: string;
  readonly currency: string;
  readonly status: 'awaiting_authorization' | 'active' | 'revoked' | 'failed';
  readonly links: readonly { readonly linkId: string; readonly accountId: string; readonly status: string }[];
  readonly authorizedAt: string | null;
  readonly revokedAt: string | null;
  readonly revokedBy: 'wallet' | 'bank' | null;
}
interface BalanceAtBank {
  readonly accountId: string;
  readonly balance: MoneyWire;
  readonly available: MoneyWire;
  readonly asOf: string;
}

/** The consent being approved at the bank, kept across the round trip through the bank's page (this tab only). */
const PENDING_KEY = 'hutong.wallet.openBanking';
/** The bank sends the customer back here, with code and state (or error) in the query. */
export const returnedFromBank = (): boolean => {
  const q = new URLSearchParams(location.search);
  return q.get('ob') === 'return' && (q.has('code') || q.has('error'));
};

/**
 * Bank accounts at a bank that keeps its own books, linked by the bank's consent (OAuth 2.0 with PKCE, the hub its
 * client): the customer approves at the bank's own page, comes back here, and the wallet reads the balance through the
 * hub; the customer revokes here (or at the bank).
 */
export function BankAccess({ api, session }: { api: Api; session: WalletSession }) {
  const { t, date } = useI18n();
  const anonymous = useMemo(() => createApi(async () => undefined), []);
  const directory = useLoad(() => anonymous.get<{ banks: { participantId: string; name: string }[] }>('/demo/v1/directory'), []);
  const banks = directory.data?.banks ?? [];
  const nameOf = (id: string) => banks.find((b) => b.participantId === id)?.name ?? id;
  const [bank, setBank] = useState('');
  useEffect(() => {
    if (bank === '' && banks[0] !== undefined) setBank(banks[0].participantId);
  }, [bank, banks]);
  const currencies = useCurrencies(api, session);
  const [currency, setCurrency] = useCurrency(currencies);
  const consents = useLoad(async () => (await api.get<{ items: BankConsent[] }>(`/v1/open-banking/consents?customerId=${encodeURIComponent(session.customerId)}`)).items, [api]);
  const [balances, setBalances] = useState<Record<string, readonly BalanceAtBank[]>>({});
  const [linked, setLinked] = useState(false);

  const start = useAction(async () => {
    const redirectUri = `${location.origin}${location.pathname}?ob=return`;
    const started = await api.post<{ id: string; authorizeUrl: string }>('/v1/open-banking/consents', { customerId: session.customerId, bankParticipantId: bank, currency, redirectUri });
    sessionStorage.setItem(PENDING_KEY, started.id);
    location.assign(started.authorizeUrl);
  });
  // Back from the bank: hand the code and state to the hub (once), then clear them from the address.
  const finished = useRef(false);
  const finish = useAction(async () => {
    const q = new URLSearchParams(location.search);
    const consentId = sessionStorage.getItem(PENDING_KEY);
    history.replaceState(null, '', location.pathname);
    sessionStorage.removeItem(PENDING_KEY);
    if (consentId === null || q.get('error') !== null) throw new Error(t('bankAccess.denied'));
    await api.post(`/v1/open-banking/consents/${encodeURIComponent(consentId)}/authorize`, { code: q.get('code') ?? '', state: q.get('state') ?? '' });
    setLinked(true);
    await consents.reload();
  });
  useEffect(() => {
    if (!finished.current && returnedFromBank()) {
      finished.current = true;
      void finish.run();
    }
  }, [finish]);
  const read = useAction(async (consentId: string) => {
    try {
      const r = await api.get<{ items: BalanceAtBank[] }>(`/v1/open-banking/consents/${encodeURIComponent(consentId)}/balances`);
      setBalances((b) => ({ ...b, [consentId]: r.items }));
    } catch (e) {
      // Refused (revoked at the bank, say): the consent's state changed at the hub too.
      await consents.reload();
      throw e;
    }
  });
  const revoke = useAction(async (consentId: string) => {
    await api.del(`/v1/open-banking/consents/${encodeURIComponent(consentId)}`);
    setBalances((b) => ({ ...b, [consentId]: [] }));
    await consents.reload();
  });
  // Top-up from the bank account or withdrawal to it: a quote between the customer's own accounts, then confirmed (the
  // bank authorizes the debit, or accepts the credit).
  const [amount, setAmount] = useState('');
  const [moved, setMoved] = useState<string | undefined>();
  const move = useAction(async (consentId: string, kind: 'top-ups' | 'withdrawals', currencyOf: string) => {
    setMoved(undefined);
    const quote = await api.post<{ id: string }>(`/v1/open-banking/consents/${encodeURIComponent(consentId)}/${kind}`, { amount: { amount: amount.trim(), currency: currencyOf } });
    await api.post('/v1/transfers/payments', { quoteId: quote.id });
    setMoved(kind === 'top-ups' ? t('bankAccess.toppedUp') : t('bankAccess.withdrawn'));
    setAmount('');
    await read.run(consentId);
  });
  const shown = (consents.data ?? []).filter((c) => c.status === 'active' || c.status === 'revoked');

  return (
    <Section title={t('bankAccess.title')} testId="bank-access">
      <p className="muted">{t('bankAccess.intro')}</p>
      <ErrorBox error={directory.error ?? consents.error ?? start.error ?? finish.error ?? read.error ?? revoke.error ?? move.error} />
      {moved !== undefined && (
        <p className="ok" data-testid="bank-access-moved" role="status">
          {moved}
        </p>
      )}
      {linked && (
        <p className="ok" data-testid="bank-access-linked" role="status">
          {t('bankAccess.linked')}
        </p>
      )}
      <ul className="list" data-testid="bank-access-consents">
        {shown.map((c) => (
          <li key={c.id} data-testid="bank-access-consent" data-status={c.status}>
            <div>
              <strong>{nameOf(c.bankParticipantId)}</strong> · {c.currency} ·{' '}
              <span data-testid="bank-access-status">
                {c.status === 'active' ? t('bankAccess.active') : c.revokedBy === 'bank' ? t('bankAccess.revokedAtBank') : t('bankAccess.revokedHere')}
              </span>
              {c.authorizedAt !== null && (
                <span className="muted">
                  {' '}
                  · {t('bankAccess.since')} {date(c.authorizedAt)}
                </span>
              )}
            </div>
            {(balances[c.id] ?? []).map((b) => (
              <p key={b.accountId} data-testid="bank-access-balance">
                {t('bankAccess.balance')}: <Money amount={b.balance.amount} currency={b.balance.currency} /> · {t('bankAccess.available')}: <Money amount={b.available.amount} currency={b.available.currency} />
              </p>
            ))}
            {c.status === 'active' && (
              <div className="row">
                <button type="button" data-testid="bank-access-read" disabled={read.busy} onClick={() => void read.run(c.id)}>
                  {t('bankAccess.read')}
                </button>
                <button type="button" className="secondary" data-testid="bank-access-revoke" disabled={revoke.busy} onClick={() => void revoke.run(c.id)}>
                  {t('bankAccess.revoke')}
                </button>
              </div>
            )}
            {c.status === 'active' && (
              <div className="row">
                <Field label={`${t('bankAccess.amount')} (${c.currency})`} name="bank-access-amount" value={amount} onChange={setAmount} inputMode="decimal" />
                <button type="button" data-testid="bank-access-top-up" disabled={move.busy || amount.trim() === ''} onClick={() => void move.run(c.id, 'top-ups', c.currency)}>
                  {t('bankAccess.topUp')}
                </button>
                <button type="button" className="secondary" data-testid="bank-access-withdraw" disabled={move.busy || amount.trim() === ''} onClick={() => void move.run(c.id, 'withdrawals', c.currency)}>
                  {t('bankAccess.withdraw')}
                </button>
              </div>
            )}
          </li>
        ))}
      </ul>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void start.run();
        }}
      >
        <Select label={t('bankAccess.bank')} name="bank-access-bank" value={bank} onChange={setBank} options={banks.map((b) => ({ value: b.participantId, label: b.name }))} />
        {currencies.length > 1 && <CurrencySelect name="bank-access-currency" currencies={currencies} value={currency} onChange={setCurrency} />}
        <button type="submit" disabled={start.busy || bank === ''} data-testid="bank-access-start">
          {t('bankAccess.start')}
        </button>
      </form>
    </Section>
  );
}
