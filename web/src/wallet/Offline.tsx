import { useState } from 'react';
import { signOfflinePayment, signOfflineUnload } from '../../../src/offline/token.ts';
import { PageError, type Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ErrorBox, Field, Section, useAction, useLoad } from '../shared/ui.tsx';
import { useAccounts, type MoneyWire } from './accounts.tsx';
import { deviceKeyPair, devicePublicKey } from './device-key.ts';
import type { WalletSession } from './session.ts';

/** An offline purse as the hub keeps it (GET /v1/offline/purses). */
interface HubPurse {
  id: string;
  currency: string;
  accountId: string;
  balance: MoneyWire;
  limit: MoneyWire;
  settled: MoneyWire;
  status: 'active' | 'unloaded' | 'blocked' | 'closed';
  lastSettledCounter: number | null;
  certificate: string | null;
}
interface HubOfflinePayment {
  id: string;
  counter: number;
  merchantId: string;
  amount: MoneyWire;
}

/**
 * What this device knows without the network, kept in its own storage: the purse, the last counter it signed a
 * payment with (never reused) and the balance it has left to spend offline, with the tokens it signed.
 */
interface DeviceState {
  purseId: string;
  currency: string;
  counter: number;
  remainingMinor: number;
  /** The hub's latest certificate for this device's key: shown to the terminal with each token. */
  certificate: string | null;
  tokens: { counter: number; merchantId: string; amount: string; token: string; certificate: string | null }[];
}

const stateKey = (session: WalletSession) => `hutong.offline.${session.participantId}.${session.customerId}`;
const loadState = (session: WalletSession): DeviceState | undefined => {
  try {
    const raw = localStorage.getItem(stateKey(session));
    return raw === null ? undefined : (JSON.parse(raw) as DeviceState);
  } catch {
    return undefined;
  }
};
const saveState = (session: WalletSession, s: DeviceState | undefined) => {
  if (s === undefined) localStorage.removeItem(stateKey(session));
  else localStorage.setItem(stateKey(session), JSON.stringify(s));
};
const toMinor = (amount: string) => Math.round(Number(amount) * 100);
const fromMinor = (minor: number) => (minor / 100).toFixed(2);
const newKey = () => crypto.randomUUID();

/**
 * Offline payments: load a small balance the hub reserves for this device (its WebCrypto key, the same that binds
 * cards), pay a shop's terminal with no network (a token this device signs: purse, counter, amount, shop), take back
 * what is left. Paying needs no network at all: the token is made here and handed to the terminal.
 */
export function Offline({ api, session }: { api: Api; session: WalletSession }) {
  const { t, money } = useI18n();
  const accounts = useAccounts(api, session);
  const [state, setState] = useState<DeviceState | undefined>(() => loadState(session));
  const update = (s: DeviceState | undefined) => {
    saveState(session, s);
    setState(s);
  };
  const purse = useLoad(async () => (state === undefined ? undefined : await api.get<{ purse: HubPurse; payments: HubOfflinePayment[] }>(`/v1/offline/purses/${encodeURIComponent(state.purseId)}`)), [api, state?.purseId]);
  const [amount, setAmount] = useState('');
  const [merchant, setMerchant] = useState('');
  const [pay, setPay] = useState('');
  const own = (accounts.data ?? []).find((a) => a.linkId === null && a.currency === (state?.currency ?? 'CNY'));

  const load = useAction(async () => {
    if (state === undefined) {
      if (own === undefined) return;
      const p = await api.post<HubPurse>('/v1/offline/purses', { customerId: session.customerId, accountId: own.id, devicePublicKey: await devicePublicKey(), amount: amount.trim() }, { idempotencyKey: newKey() });
      update({ purseId: p.id, currency: p.currency, counter: p.lastSettledCounter ?? 0, remainingMinor: toMinor(p.balance.amount), certificate: p.certificate, tokens: [] });
    } else {
      const p = await api.post<HubPurse>(`/v1/offline/purses/${encodeURIComponent(state.purseId)}/load`, { amount: amount.trim() }, { idempotencyKey: newKey() });
      update({ ...state, remainingMinor: state.remainingMinor + toMinor(amount.trim()), certificate: p.certificate });
    }
    setAmount('');
    await purse.reload();
  });

  // No network here: the device signs the payment with its own key and keeps its counter and balance.
  const payOffline = useAction(async () => {
    if (state === undefined) return;
    const minor = toMinor(pay.trim());
    if (!(minor > 0) || minor > state.remainingMinor) throw new PageError('offline.notEnough');
    const counter = state.counter + 1;
    const token = await signOfflinePayment((await deviceKeyPair()).privateKey, { purse: state.purseId, ctr: counter, amt: fromMinor(minor), cur: state.currency, mer: merchant.trim(), iat: Math.floor(Date.now() / 1000) });
    update({ ...state, counter, remainingMinor: state.remainingMinor - minor, tokens: [...state.tokens, { counter, merchantId: merchant.trim(), amount: fromMinor(minor), token, certificate: state.certificate }] });
    setPay('');
  });

  const unload = useAction(async () => {
    if (state === undefined) return;
    const remaining = fromMinor(state.remainingMinor);
    const deviceSignature = await signOfflineUnload((await deviceKeyPair()).privateKey, { purseId: state.purseId, lastCounter: state.counter, remaining });
    await api.post(`/v1/offline/purses/${encodeURIComponent(state.purseId)}/unload`, { lastCounter: state.counter, remaining, deviceSignature }, { idempotencyKey: newKey() });
    update(undefined);
    await accounts.reload();
  });

  const settled = new Set((purse.data?.payments ?? []).map((p) => p.counter));
  return (
    <div className="grid">
      <Section title={t('offline.title')} testId="offline">
        <p className="muted">{t('offline.about')}</p>
        {state !== undefined && (
          <p data-testid="offline-balance">
            {t('offline.onDevice')}: <strong>{money(fromMinor(state.remainingMinor), state.currency)}</strong>
          </p>
        )}
        {purse.data !== undefined && (
          <p className="muted" data-testid="offline-reserved" data-status={purse.data.purse.status}>
            {t('offline.reserved')}: {money(purse.data.purse.balance.amount, purse.data.purse.currency)} · {t('offline.settled')}: {money(purse.data.purse.settled.amount, purse.data.purse.currency)}
          </p>
        )}
        <ErrorBox error={accounts.error ?? load.error} />
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void load.run();
          }}
        >
          <Field label={`${t('offline.load')} (${state?.currency ?? own?.currency ?? 'CNY'})`} name="offline-load" value={amount} onChange={setAmount} inputMode="decimal" />
          <button type="submit" disabled={load.busy || (state === undefined && own === undefined)} data-testid="offline-load">
            {t('offline.load')}
          </button>
        </form>
      </Section>
      {state !== undefined && (
        <Section title={t('offline.pay')} testId="offline-pay">
          <ErrorBox error={payOffline.error} />
          <form
            onSubmit={(e) => {
              e.preventDefault();
              void payOffline.run();
            }}
          >
            <div className="row">
              <Field label={t('offline.merchant')} name="offline-merchant" value={merchant} onChange={setMerchant} />
              <Field label={`${t('common.amount')} (${state.currency})`} name="offline-amount" value={pay} onChange={setPay} inputMode="decimal" />
            </div>
            <button type="submit" disabled={payOffline.busy} data-testid="offline-pay-submit">
              {t('offline.pay')}
            </button>
          </form>
          <ul className="list" data-testid="offline-tokens">
            {state.tokens.map((tok) => (
              <li key={tok.counter} data-testid="offline-token" data-counter={tok.counter} data-settled={settled.has(tok.counter) ? 'true' : 'false'}>
                #{tok.counter} · {money(tok.amount, state.currency)} · {tok.merchantId} · {settled.has(tok.counter) ? t('offline.tokenSettled') : t('offline.tokenWaiting')}
                <textarea readOnly value={tok.token} rows={2} aria-label={t('offline.token')} data-testid="offline-token-text" />
                {tok.certificate !== null && <textarea readOnly value={tok.certificate} rows={2} aria-label={t('offline.certificate')} data-testid="offline-certificate-text" />}
              </li>
            ))}
          </ul>
          <ErrorBox error={unload.error} />
          <div className="row">
            <button type="button" onClick={() => void purse.reload()} data-testid="offline-refresh">
              {t('offline.refresh')}
            </button>
            <button type="button" onClick={() => void unload.run()} disabled={unload.busy} data-testid="offline-unload">
              {t('offline.unload')}
            </button>
          </div>
        </Section>
      )}
    </div>
  );
}
