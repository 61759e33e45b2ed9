import { useEffect, useMemo, useState } from 'react';
import QRCode from 'qrcode';
import { ApiError, PageError, createApi, type Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ErrorBox, Field, LangSwitch, Money, Section, Select, TextArea, useAction, useLoad } from '../shared/ui.tsx';
import { cpmPayload, toMinor, tokenCryptogram, unpredictableNumber } from './emv.ts';
import { deviceId, ensureFreshKey, loadDeviceToken, loadSession, nextAtc, openSession, saveLimitedUseKey, saveSession, sessionApi, type LimitedUseKeyWire, type WalletSession } from './session.ts';
import { devicePublicKey, signAsDevice } from './device-key.ts';
import type { TokenCryptogramScheme } from '../../../src/emv/token-cryptogram.ts';
import { Me } from './Me.tsx';
import { CardControls, suspendedWhyKey } from './CardControls.tsx';
import { CurrencySelect, useAccounts, useCurrencies, useCurrency } from './accounts.tsx';
import { Budget } from './Budget.tsx';
import { CreditLinePanel, type CreditLine } from './Credit.tsx';
import { Disputes, useMyDisputes } from './Disputes.tsx';
import { Coupons, OfferLine, Pots } from './Value.tsx';
import { Offline } from './Offline.tsx';
import { returnedFromBank } from './BankAccess.tsx';
import { Payments, SentPackets, SentRequests } from './More.tsx';
import { StepUp, useStepUp } from './StepUp.tsx';
import { CameraScanner, PacketShare, ReceiveCode, decodeImage, parsePacketPayload, parseReceivePayload } from './Scan.tsx';

type MoneyWire = { amount: string; currency: string };
interface Token { tokenRef: string; status: string; suspendedBy: string | null; tokenLast4: string; cardLast4: string; brand: string; expiry: string; par: string; createdAt: string; cryptogramScheme?: TokenCryptogramScheme; credit?: CreditLine | null }
interface Provisioning { id: string; status: string; stepUp: { method: string; attemptsRemaining: number } | null; cardLast4: string; brand: string; token: Token | null; tokenNumber?: string; limitedUseKey?: LimitedUseKeyWire }

type TabKey = 'home' | 'add' | 'pay' | 'transfer' | 'history' | 'budget' | 'pots' | 'coupons' | 'offline' | 'me';

/** The five tabs of the bottom bar (首页 / 收付款 / 转账 / 账单 / 我的); "add a card" and "budget" open from them. */
const MAIN_TABS: readonly { key: TabKey; icon: string; label: string }[] = [
  { key: 'home', icon: '⌂', label: 'nav.home' },
  { key: 'pay', icon: '▦', label: 'nav.pay' },
  { key: 'transfer', icon: '⇄', label: 'nav.transfer' },
  { key: 'history', icon: '☰', label: 'nav.history' },
  { key: 'me', icon: '◉', label: 'nav.me' },
];
const parentTab = (tab: TabKey): TabKey => (tab === 'add' ? 'home' : tab === 'budget' || tab === 'pots' || tab === 'coupons' ? 'history' : tab === 'offline' ? 'pay' : tab);

/** A payment link the page was opened for (/wallet?link=<id>, the "open in wallet" of /pay/<id>). */
const linkFromAddress = (): string => new URLSearchParams(location.search).get('link') ?? '';
/**
 * A card the customer's bank pushed to this wallet (/wallet#push=<receipt>, opened by the bank's app): a one-time
 * receipt, kept in the fragment so that it reaches no server log, and removed from the address once read.
 */
const pushFromAddress = (): string => {
  const receipt = new URLSearchParams(location.hash.slice(1)).get('push') ?? '';
  if (receipt !== '') history.replaceState(null, '', `${location.pathname}${location.search}`);
  return receipt;
};
/** A red packet the page was opened for (/wallet?packet=<id>, a shared red packet's link). */
const packetFromAddress = (): string => new URLSearchParams(location.search).get('packet') ?? '';

export function WalletApp() {
  const { t } = useI18n();
  const [session, setSession] = useState<WalletSession | undefined>(loadSession);
  const [openLink] = useState(linkFromAddress);
  const [packet, setPacket] = useState(packetFromAddress);
  const [pushReceipt, setPushReceipt] = useState(pushFromAddress);
  const start: TabKey = pushReceipt !== '' ? 'add' : openLink !== '' ? 'pay' : packet !== '' ? 'transfer' : returnedFromBank() ? 'me' : 'home';
  const [tab, setTab] = useState<TabKey>(start);
  const [payee, setPayee] = useState<{ type: string; value: string } | undefined>();
  const signOut = () => {
    saveSession(undefined);
    setSession(undefined);
  };
  const api = useMemo(() => (session === undefined ? undefined : sessionApi(session, () => undefined)), [session]);
  const go = (k: TabKey) => {
    setTab(k);
    window.scrollTo(0, 0);
  };
  return (
    <>
      <header className="topbar">
        <h1>{t('app.wallet')}</h1>
        {session !== undefined && (
          <span className="who" data-testid="who">
            {session.customerName} · {session.walletName}
          </span>
        )}
        {session !== undefined && (
          <button type="button" onClick={() => go('add')} data-testid="tab-add" aria-label={t('nav.addCard')} aria-current={tab === 'add' ? 'page' : undefined}>
            +
          </button>
        )}
        <LangSwitch />
        {session !== undefined && (
          <button type="button" onClick={signOut} data-testid="sign-out">
            {t('common.signOut')}
          </button>
        )}
      </header>
      <main className={session !== undefined ? 'with-tabbar' : undefined}>
        {session === undefined || api === undefined ? (
          <SignIn
            onSignedIn={(s) => {
              saveSession(s);
              setSession(s);
              setTab(start);
            }}
          />
        ) : (
          <>
            {tab === 'home' && <Home api={api} session={session} go={go} />}
            {tab === 'add' && <AddCard api={api} session={session} pushReceipt={pushReceipt} onPushUsed={() => setPushReceipt('')} onAdded={() => go('home')} />}
            {tab === 'pay' && (
              <Pay
                api={api}
                session={session}
                openLink={openLink}
                onPayee={(alias) => {
                  setPayee(alias);
                  go('transfer');
                }}
                onPacket={(id) => {
                  setPacket(id);
                  go('transfer');
                }}
              />
            )}
            {tab === 'transfer' && <Transfer api={api} session={session} payee={payee} packet={packet} />}
            {(tab === 'history' || tab === 'budget' || tab === 'pots' || tab === 'coupons') && (
              <nav className="segmented" aria-label={t('nav.history')}>
                <button type="button" data-testid="tab-activity" aria-current={tab === 'history' ? 'page' : undefined} onClick={() => setTab('history')}>
                  {t('history.title')}
                </button>
                <button type="button" data-testid="tab-budget" aria-current={tab === 'budget' ? 'page' : undefined} onClick={() => setTab('budget')}>
                  {t('nav.budget')}
                </button>
                <button type="button" data-testid="tab-pots" aria-current={tab === 'pots' ? 'page' : undefined} onClick={() => setTab('pots')}>
                  {t('nav.pots')}
                </button>
                <button type="button" data-testid="tab-coupons" aria-current={tab === 'coupons' ? 'page' : undefined} onClick={() => setTab('coupons')}>
                  {t('nav.coupons')}
                </button>
              </nav>
            )}
            {tab === 'history' && <History api={api} session={session} />}
            {tab === 'budget' && <Budget api={api} session={session} />}
            {tab === 'pots' && <Pots api={api} session={session} />}
            {tab === 'coupons' && <Coupons api={api} session={session} />}
            {tab === 'offline' && <Offline api={api} session={session} />}
            {tab === 'me' && <Me api={api} session={session} />}
          </>
        )}
      </main>
      {session !== undefined && (
        <nav className="tabbar" aria-label={t('nav.main')}>
          {MAIN_TABS.map((m) => (
            <button key={m.key} type="button" data-testid={`tab-${m.key}`} aria-current={parentTab(tab) === m.key ? 'page' : undefined} onClick={() => go(m.key)}>
              <span className="icon" aria-hidden="true">
                {m.icon}
              </span>
              {t(m.label)}
            </button>
          ))}
        </nav>
      )}
    </>
  );
}

function SignIn({ onSignedIn }: { onSignedIn: (s: WalletSession) => void }) {
  const { t } = useI18n();
  const anonymous = useMemo(() => createApi(async () => undefined), []);
  const dir = useLoad(() => anonymous.get<{ wallets: { key: string; name: string; customers: { id: string; name: string }[] }[] }>('/demo/v1/directory'), []);
  const [wallet, setWallet] = useState('wallet-a');
  const [customer, setCustomer] = useState('');
  const w = dir.data?.wallets.find((x) => x.key === wallet);
  useEffect(() => {
    if (w !== undefined && !w.customers.some((c) => c.id === customer)) setCustomer(w.customers[0]?.id ?? '');
  }, [w, customer]);
  const action = useAction(async () => onSignedIn(await openSession(wallet, customer)));
  return (
    <div className="center">
      <Section title={t('signin.title')}>
        <ErrorBox error={dir.error} />
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void action.run();
          }}
        >
          <Select label={t('signin.wallet')} name="wallet" value={wallet} onChange={setWallet} options={(dir.data?.wallets ?? []).map((x) => ({ value: x.key, label: x.name }))} />
          <Select label={t('signin.customer')} name="customer" value={customer} onChange={setCustomer} options={(w?.customers ?? []).map((c) => ({ value: c.id, label: `${c.name} (${c.id})` }))} />
          <button type="submit" disabled={action.busy || customer === ''} data-testid="sign-in">
            {t('common.signIn')}
          </button>
          <ErrorBox error={action.error} />
        </form>
        <p className="muted">{t('signin.demoNote')}</p>
      </Section>
    </div>
  );
}

/** The signed-in customer's own cards (a customer session sees no other customer's; the page asks for its own by name). */
function useTokens(api: Api, session: WalletSession) {
  return useLoad(async () => (await api.get<{ items: Token[] }>(`/v1/wallet/tokens?customerId=${encodeURIComponent(session.customerId)}&limit=100`)).items, [api]);
}

function Home({ api, session, go }: { api: Api; session: WalletSession; go: (tab: TabKey) => void }) {
  const { t, money } = useI18n();
  const tokens = useTokens(api, session);
  const accounts = useAccounts(api, session);
  const mine = (tokens.data ?? []).filter((x) => x.status !== 'deleted');
  // One figure per currency the customer holds (own accounts and linked ones), as the hero of the page.
  const totals = new Map<string, number>();
  for (const a of accounts.data ?? []) totals.set(a.currency, (totals.get(a.currency) ?? 0) + Number(a.available.amount));
  return (
    <>
      <div className="hero" data-testid="balances">
        <div className="label">{t('home.available')}</div>
        {accounts.data === undefined && accounts.error === undefined && <div className="label">{t('common.loading')}</div>}
        {[...totals].map(([currency, amount]) => (
          <div className="figure" key={currency} data-currency={currency}>
            {money(amount, currency)}
          </div>
        ))}
        {accounts.data !== undefined && totals.size === 0 && <div className="label">{t('home.noAccounts')}</div>}
      </div>
      <nav className="quick" aria-label={t('home.quick')}>
        <button type="button" onClick={() => go('pay')} data-testid="quick-scan">
          <span className="icon" aria-hidden="true">▣</span>
          {t('quick.scan')}
        </button>
        <button type="button" onClick={() => go('pay')} data-testid="quick-code">
          <span className="icon" aria-hidden="true">▦</span>
          {t('quick.code')}
        </button>
        <button type="button" onClick={() => go('transfer')} data-testid="quick-transfer">
          <span className="icon" aria-hidden="true">⇄</span>
          {t('nav.transfer')}
        </button>
        <button type="button" onClick={() => go('transfer')} data-testid="quick-packet">
          <span className="icon" aria-hidden="true">✉</span>
          {t('quick.packet')}
        </button>
        <button type="button" onClick={() => go('add')} data-testid="quick-add">
          <span className="icon" aria-hidden="true">+</span>
          {t('nav.addCard')}
        </button>
        <button type="button" onClick={() => go('budget')} data-testid="quick-budget">
          <span className="icon" aria-hidden="true">◔</span>
          {t('nav.budget')}
        </button>
        <button type="button" onClick={() => go('offline')} data-testid="quick-offline">
          <span className="icon" aria-hidden="true">⇣</span>
          {t('nav.offline')}
        </button>
      </nav>
      <div className="grid" style={{ marginTop: '0.75rem' }}>
        <Section title={t('home.cards')} testId="cards">
          <ErrorBox error={tokens.error} />
          {tokens.data === undefined && tokens.error === undefined && <p className="skeleton" data-testid="cards-loading">{t('common.loading')}</p>}
          {tokens.data !== undefined && mine.length === 0 && <p className="muted">{t('home.noCards')}</p>}
          {mine.map((tok) => (
            <div key={tok.tokenRef}>
              <CardTile api={api} token={tok} onChange={() => void tokens.reload()} />
              {tok.credit !== undefined && tok.credit !== null && <CreditLinePanel api={api} session={session} tokenRef={tok.tokenRef} credit={tok.credit} onChange={() => void tokens.reload()} />}
            </div>
          ))}
        </Section>
        <Section title={t('home.accounts')} testId="accounts">
          <ErrorBox error={accounts.error} />
          {accounts.data === undefined && accounts.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
          {(accounts.data ?? []).map((a) => (
            <div key={a.id} className="activity-row">
              <div>
                <div className="title">
                  {a.heldBy.name} · {a.currency}
                </div>
                <div className="sub mono">{a.id}</div>
              </div>
              <div className="amt">
                <Money amount={a.balance.amount} currency={a.balance.currency} />
                <div className="sub">
                  {t('home.available')} <Money amount={a.available.amount} currency={a.available.currency} />
                </div>
              </div>
            </div>
          ))}
          {accounts.data?.length === 0 && <p className="muted">{t('common.none')}</p>}
        </Section>
      </div>
    </>
  );
}

function CardTile({ api, token, onChange }: { api: Api; token: Token; onChange: () => void }) {
  const { t, date } = useI18n();
  const [wallets, setWallets] = useState<{ id: string; walletName: string; walletParticipantId: string; status: string; tokenLast4: string; addedAt: string }[] | undefined>();
  const [copied, setCopied] = useState(false);
  const [confirming, setConfirming] = useState<string | undefined>();
  const load = useAction(async () => setWallets((await api.get(`/v1/wallet/tokens/${token.tokenRef}/card-wallets`)).items));
  const revoke = useAction(async (entryId: string) => {
    await api.post(`/v1/wallet/tokens/${token.tokenRef}/card-wallets/${entryId}/revoke`);
    setConfirming(undefined);
    await load.run();
    onChange();
  });
  return (
    <div className={`paycard ${token.status}`} data-testid="card-tile" data-token-ref={token.tokenRef}>
      <div className="row" style={{ justifyContent: 'space-between' }}>
        <strong>{token.brand}</strong>
        <span>{t(`card.status.${token.status}`)}</span>
      </div>
      <div className="num">•••• •••• •••• {token.cardLast4}</div>
      <CardControls api={api} token={token} onChange={onChange} />
      <div className="muted" style={{ color: '#ffe6ea' }}>
        {t('home.tokenRef')}:
      </div>
      <div className="row">
        <span className="mono" data-testid="token-ref">
          {token.tokenRef}
        </span>
        <button
          type="button"
          aria-label={`${t('common.copy')} ${token.tokenRef}`}
          onClick={() => {
            void navigator.clipboard?.writeText(token.tokenRef).catch(() => undefined);
            setCopied(true);
          }}
        >
          {copied ? t('common.copied') : t('common.copy')}
        </button>
        <button type="button" onClick={() => void load.run()} data-testid="show-wallets">
          {t('home.showWallets')}
        </button>
      </div>
      <ErrorBox error={load.error ?? revoke.error} />
      {wallets !== undefined && (
        <div className="scroll-x">
          <table aria-label={t('home.wallets')} style={{ color: 'white', marginTop: '0.5rem' }}>
            <tbody>
              {wallets.map((w) => (
                <tr key={w.id}>
                  <td>
                    {w.walletName} …{w.tokenLast4}
                    <div>{date(w.addedAt, false)}</div>
                  </td>
                  <td>{t(`card.status.${w.status}`)}</td>
                  <td>
                    {w.status !== 'deleted' &&
                      (confirming === w.id ? (
                        <span role="group" aria-label={t('home.revokeConfirm').replace('{name}', w.walletName)} className="row">
                          <button type="button" onClick={() => void revoke.run(w.id)} disabled={revoke.busy} data-testid="wallet-revoke-yes">
                            {t('home.revokeYes')}
                          </button>
                          <button type="button" onClick={() => setConfirming(undefined)}>
                            {t('common.cancel')}
                          </button>
                        </span>
                      ) : (
                        <button type="button" onClick={() => setConfirming(w.id)} data-testid="wallet-revoke">
                          {t('home.revoke')}
                        </button>
                      ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function AddCard({ api, session, pushReceipt, onPushUsed, onAdded }: { api: Api; session: WalletSession; pushReceipt: string; onPushUsed: () => void; onAdded: () => void }) {
  const { t } = useI18n();
  const [mode, setMode] = useState<'typed' | 'ref'>('typed');
  const [cardNumber, setCardNumber] = useState('');
  const [expiry, setExpiry] = useState('');
  const [cvv, setCvv] = useState('');
  const [tokenRef, setTokenRef] = useState('');
  const [cardRef, setCardRef] = useState('');
  const [consent, setConsent] = useState(false);
  const [prov, setProv] = useState<Provisioning | undefined>();
  const [demoCode, setDemoCode] = useState<string | undefined>();
  const [code, setCode] = useState('');
  const [done, setDone] = useState<Provisioning | undefined>();

  const remember = (p: Provisioning) => {
    if (p.token !== null && p.limitedUseKey !== undefined && p.tokenNumber !== undefined) {
      saveLimitedUseKey(session.participantId, { tokenRef: p.token.tokenRef, tokenNumber: p.tokenNumber, expiry: p.token.expiry, atc: 0, scheme: p.token.cryptogramScheme }, p.limitedUseKey);
    }
  };
  const finish = (p: Provisioning) => {
    remember(p);
    if (p.status === 'approved') setDone(p);
  };
  const submit = useAction(async () => {
    setDone(undefined);
    setDemoCode(undefined);
    const source =
      pushReceipt !== ''
        ? { type: 'push_receipt', receipt: pushReceipt }
        : mode === 'typed'
          ? { type: 'typed', cardNumber: cardNumber.replace(/\s+/g, ''), expiry, cvv }
          : tokenRef.trim() !== ''
            ? { type: 'token_ref', tokenRef: tokenRef.trim() }
            : { type: 'card_ref', cardRef: cardRef.trim() };
    // The token is bound to this browser's device key: only it obtains the token's next keys.
    const p = await api.post<Provisioning>('/v1/wallet/tokens', { customerId: session.customerId, consent, deviceId: deviceId(), devicePublicKey: await devicePublicKey(), source });
    setProv(p);
    setCardNumber('');
    setCvv('');
    // A receipt is good once: whatever the answer, the next attempt is the customer's own.
    if (pushReceipt !== '') onPushUsed();
    if (p.status === 'pending_step_up') {
      // Demo: read the code the demo bank "texted" the cardholder (the hub only holds it sealed to the bank).
      try {
        setDemoCode((await api.get<{ code: string }>(`/demo/v1/step-up-codes/${p.id}`)).code);
      } catch {
        setDemoCode(undefined);
      }
    } else finish(p);
  });
  const confirm = useAction(async () => {
    if (prov === undefined) return;
    const p = await api.post<Provisioning>(`/v1/wallet/provisionings/${prov.id}/step-up`, { code, deviceSignature: await signAsDevice({ purpose: 'step_up', provisioningId: prov.id }) });
    setProv(p);
    setCode('');
    finish(p);
  });

  return (
    <Section title={t('nav.addCard')} testId="add-card">
      <div className="row" role="radiogroup" aria-label={t('nav.addCard')} style={{ marginBottom: '0.8rem' }}>
        <label>
          <input type="radio" name="mode" checked={mode === 'typed'} onChange={() => setMode('typed')} data-testid="mode-typed" /> {t('add.typed')}
        </label>
        <label>
          <input type="radio" name="mode" checked={mode === 'ref'} onChange={() => setMode('ref')} data-testid="mode-ref" /> {t('add.byRef')}
        </label>
      </div>
      {prov === undefined || prov.status !== 'pending_step_up' ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void submit.run();
          }}
        >
          {pushReceipt !== '' ? (
            <p className="ok" data-testid="push-offer">
              {t('add.pushOffer')}
            </p>
          ) : mode === 'typed' ? (
            <>
              <Field label={t('add.cardNumber')} name="cardNumber" value={cardNumber} onChange={setCardNumber} inputMode="numeric" autoComplete="cc-number" />
              <div className="row">
                <Field label={t('add.expiry')} name="expiry" value={expiry} onChange={setExpiry} placeholder="MM/YY" autoComplete="cc-exp" />
                <Field label={t('add.cvv')} name="cvv" value={cvv} onChange={setCvv} inputMode="numeric" autoComplete="cc-csc" type="password" />
              </div>
            </>
          ) : (
            <>
              <Field label={t('add.tokenRef')} name="tokenRef" value={tokenRef} onChange={setTokenRef} placeholder="tok_…" />
              <Field label={t('add.cardRef')} name="cardRef" value={cardRef} onChange={setCardRef} placeholder="crd_…" />
            </>
          )}
          <label className="row" style={{ marginBottom: '0.7rem' }}>
            <input type="checkbox" name="consent" checked={consent} onChange={(e) => setConsent(e.target.checked)} /> {t('add.consent')}
          </label>
          <button type="submit" disabled={submit.busy || !consent} data-testid="add-submit">
            {pushReceipt !== '' ? t('add.pushSubmit') : t('add.submit')}
          </button>
        </form>
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void confirm.run();
          }}
        >
          <p>
            {t('add.stepUp')} ({prov.brand} …{prov.cardLast4})
          </p>
          {demoCode !== undefined && (
            <p className="warn">
              {t('add.demoCode')}: <strong data-testid="demo-code">{demoCode}</strong>
            </p>
          )}
          <Field label={t('add.code')} name="code" value={code} onChange={setCode} inputMode="numeric" autoComplete="one-time-code" />
          <button type="submit" disabled={confirm.busy || code.length < 6} data-testid="code-submit">
            {t('common.confirm')}
          </button>
        </form>
      )}
      <ErrorBox error={submit.error ?? confirm.error} />
      {submit.error instanceof ApiError && submit.error.code === 'reference_not_found' && (
        <p className="warn" data-testid="add-link-hint">
          {t('add.linkFirst')}
        </p>
      )}
      {prov?.status === 'declined' && <p className="error">{t('add.declined')}</p>}
      {done !== undefined && (
        <p className="ok" data-testid="card-added">
          {t('add.added')}: {done.brand} …{done.cardLast4}{' '}
          <button type="button" className="secondary" onClick={onAdded}>
            {t('nav.home')}
          </button>
        </p>
      )}
    </Section>
  );
}

// ---- pay ---------------------------------------------------------------------------------------------------------

interface QrPreview {
  merchant: { id?: string; name: string; city?: string; country: string; mcc?: string };
  amount: MoneyWire | null;
  currency?: string;
  kind?: string;
}

function PaySource({ api, session, value, onChange }: { api: Api; session: WalletSession; value: string; onChange: (v: string) => void }) {
  const { t, money } = useI18n();
  const tokens = useTokens(api, session);
  const accounts = useAccounts(api, session);
  const options = [
    ...(tokens.data ?? []).filter((x) => x.status === 'active').map((x) => ({ value: `token:${x.tokenRef}`, label: `${x.brand} …${x.cardLast4}` })),
    ...(accounts.data ?? []).map((a) => ({ value: `account:${a.id}`, label: `${a.heldBy.name} ${money(a.available.amount, a.currency)}` })),
  ];
  useEffect(() => {
    if (value === '' && options[0] !== undefined) onChange(options[0].value);
  }, [value, options, onChange]);
  return <Select label={t('pay.payWith')} name="source" value={value} onChange={onChange} options={options} />;
}

/** The wallet's payment source: a token with a fresh cryptogram over the amount (under a key that can sign it), or an account. */
async function buildSource(api: Api, session: WalletSession, source: string, amount: MoneyWire, country: string) {
  const [kind, id = ''] = source.split(/:(.*)/s);
  if (kind === 'account') return { type: 'account', accountId: id };
  await ensureFreshKey(api, session.participantId, id, signAsDevice);
  const device = loadDeviceToken(session.participantId, id);
  const atc = nextAtc(session.participantId, id);
  if (device === undefined || atc === undefined) throw new PageError('pay.noKey');
  const un = unpredictableNumber();
  const cryptogram = tokenCryptogram({ scheme: device.scheme, tokenKey: device.tokenKey, atc, amountMinor: toMinor(amount.amount, amount.currency), currency: amount.currency, country, un });
  return { type: 'token', tokenRef: id, atc, cryptogram, unpredictableNumber: un };
}

/** A payment link named in a scanned or pasted text: its id, from a /pay/<id> address or the bare id. */
function linkIdIn(text: string): string | undefined {
  const m = /\/pay\/([A-Za-z0-9_.:-]+)/.exec(text) ?? /[?&]link=([A-Za-z0-9_.:-]+)/.exec(text);
  return m?.[1];
}

function Pay({ api, session, openLink, onPayee, onPacket }: { api: Api; session: WalletSession; openLink: string; onPayee: (alias: { type: string; value: string }) => void; onPacket: (id: string) => void }) {
  const { t, money } = useI18n();
  const [payload, setPayload] = useState('');
  const [preview, setPreview] = useState<QrPreview | undefined>();
  const [amount, setAmount] = useState('');
  const [source, setSource] = useState('');
  const [paid, setPaid] = useState<any>();
  const [camera, setCamera] = useState(false);
  const [link, setLink] = useState(openLink);
  const stepUp = useStepUp();
  const decode = useAction(async (text?: string) => {
    setPaid(undefined);
    stepUp.cancel();
    setPreview(undefined);
    setPreview(await api.post<QrPreview>('/v1/wallet/qr/preview', { payload: (text ?? payload).trim() }));
  });
  /** What a scan found: a friend's receive code opens "send money", a payment link opens it, else a merchant code. */
  const scanned = (text: string) => {
    setCamera(false);
    const alias = parseReceivePayload(text);
    if (alias !== undefined) return onPayee(alias);
    const packetId = parsePacketPayload(text);
    if (packetId !== undefined) return onPacket(packetId);
    const linkId = linkIdIn(text);
    if (linkId !== undefined) return setLink(linkId);
    setPayload(text);
    void decode.run(text);
  };
  // Sent again after a step-up with the approved challenge: a new cryptogram (and ATC) and a new Idempotency-Key.
  const payOnce = async (stepUpChallengeId: string | undefined) => {
    if (preview === undefined) return;
    const due = preview.amount ?? { amount, currency: preview.currency ?? 'CNY' };
    const body = {
      customerId: session.customerId,
      payload: payload.trim(),
      source: await buildSource(api, session, source, due, preview.merchant.country),
      deviceId: deviceId(),
      ...(preview.amount === null ? { amount: due } : {}),
      ...(stepUpChallengeId !== undefined ? { stepUpChallengeId } : {}),
    };
    setPaid(await api.post('/v1/wallet/payments/qr', body));
  };
  const pay = useAction(() => stepUp.attempt(payOnce));
  const upload = useAction(async (file: File) => {
    try {
      scanned(await decodeImage(file));
    } catch {
      throw new PageError('scan.notFound');
    }
  });
  return (
    <div className="grid">
      <PaymentCode api={api} session={session} />
      <ReceiveCode api={api} session={session} />
      <Section title={t('pay.mpm')} testId="pay-qr">
        {camera ? (
          <CameraScanner onCode={scanned} onClose={() => setCamera(false)} />
        ) : (
          <button type="button" onClick={() => setCamera(true)} data-testid="scan-camera" style={{ width: '100%', marginBottom: '0.75rem' }}>
            ▣ {t('scan.start')}
          </button>
        )}
        <div className="field">
          <label htmlFor="qr-image">{t('pay.image')}</label>
          <input id="qr-image" name="qr-image" type="file" accept="image/*" onChange={(e) => e.target.files?.[0] !== undefined && void upload.run(e.target.files[0])} />
        </div>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            scanned(payload.trim());
          }}
        >
          <TextArea label={t('pay.payload')} name="payload" value={payload} onChange={setPayload} />
          <button type="submit" disabled={payload.trim() === '' || decode.busy} data-testid="qr-decode">
            {t('pay.decode')}
          </button>
        </form>
        <ErrorBox error={decode.error ?? upload.error} />
        {decode.busy && <p className="skeleton">{t('common.loading')}</p>}
        {preview !== undefined && (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              void pay.run();
            }}
            data-testid="qr-preview"
          >
            <p>
              {t('pay.merchant')}: <strong data-testid="qr-merchant">{preview.merchant.name}</strong> {preview.merchant.city ?? ''}
            </p>
            {preview.amount !== null ? (
              <p className="figure">{money(preview.amount.amount, preview.amount.currency)}</p>
            ) : (
              <Field label={`${t('common.amount')} (${preview.currency ?? ''})`} name="amount" value={amount} onChange={setAmount} inputMode="decimal" />
            )}
            <OfferLine api={api} session={session} payload={payload.trim()} amount={preview.amount === null ? { amount, currency: preview.currency ?? 'CNY' } : null} />
            <PaySource api={api} session={session} value={source} onChange={setSource} />
            <button type="submit" disabled={pay.busy || source === '' || stepUp.offer !== undefined || paid !== undefined} data-testid="qr-pay">
              {t('pay.payNow')}
            </button>
          </form>
        )}
        <ErrorBox error={pay.error} />
        {stepUp.offer !== undefined && (
          <StepUp key={stepUp.offer.request} api={api} offer={stepUp.offer} onApproved={(id) => stepUp.attempt(payOnce, id)} onRestart={() => stepUp.attempt(payOnce)} onCancel={stepUp.cancel} />
        )}
        {paid !== undefined && (
          <p className="ok" data-testid="qr-paid">
            {t('pay.paid')} ✓ {paid.amount !== undefined ? money(paid.amount.amount, paid.amount.currency) : ''} <span className="mono">{paid.id}</span>
          </p>
        )}
      </Section>
      <PayLink key={link} api={api} session={session} initial={link} />
    </div>
  );
}

function PaymentCode({ api, session }: { api: Api; session: WalletSession }) {
  const { t } = useI18n();
  const tokens = useTokens(api, session);
  const [tokenRef, setTokenRef] = useState('');
  const [image, setImage] = useState<string | undefined>();
  const [shown, setShown] = useState<{ payload: string; atc: number } | undefined>();
  const [error, setError] = useState<unknown>();
  const [tick, setTick] = useState(0);
  const active = (tokens.data ?? []).filter((x) => x.status === 'active');
  const current = active.find((x) => x.tokenRef === tokenRef) ?? active[0];
  const frozen = (tokens.data ?? []).find((x) => x.status === 'suspended');
  // The code refreshes every 30 s (a new ATC and cryptogram); the seconds left are shown, and "refresh" starts over.
  const [left, setLeft] = useState(30);
  useEffect(() => {
    setLeft(30);
    const timer = setInterval(() => setLeft((n) => Math.max(0, n - 1)), 1000);
    return () => clearInterval(timer);
  }, [tick]);
  useEffect(() => {
    if (left === 0) setTick((k) => k + 1);
  }, [left]);
  useEffect(() => {
    setImage(undefined);
    setShown(undefined);
    setError(undefined);
    if (current === undefined) return;
    let stale = false;
    void (async () => {
      try {
        // A code shown offline later must still verify: renew the key first when it cannot sign the next counter.
        await ensureFreshKey(api, session.participantId, current.tokenRef, signAsDevice);
        if (stale) return;
        const atc = nextAtc(session.participantId, current.tokenRef);
        const device = loadDeviceToken(session.participantId, current.tokenRef);
        if (device === undefined || atc === undefined) {
          setError(new PageError('pay.noKey'));
          return;
        }
        const payload = cpmPayload({ scheme: device.scheme, tokenNumber: device.tokenNumber, tokenKey: device.tokenKey, expiry: device.expiry, atc, brand: current.brand, currency: 'CNY', country: 'CN' });
        setShown({ payload, atc });
        QRCode.toDataURL(payload, { errorCorrectionLevel: 'M', margin: 1, width: 440 }).then(setImage, setError);
      } catch (e) {
        setError(e);
      }
    })();
    return () => {
      stale = true;
    };
  }, [current?.tokenRef, tick, session.participantId, t]);
  return (
    <Section
      title={t('pay.cpm')}
      testId="payment-code"
      actions={
        // A new code at once (a new ATC and cryptogram), as when the cashier's scan failed, without waiting for the timer.
        <button type="button" className="secondary" data-testid="cpm-refresh" disabled={current === undefined} onClick={() => setTick((n) => n + 1)}>
          {t('common.refresh')}
        </button>
      }
    >
      {active.length > 1 && <Select label={t('pay.payWith')} value={current?.tokenRef ?? ''} onChange={setTokenRef} options={active.map((x) => ({ value: x.tokenRef, label: `${x.brand} …${x.cardLast4}` }))} />}
      {tokens.data !== undefined && current === undefined && frozen === undefined && <p className="muted">{t('home.noCards')}</p>}
      {current === undefined && frozen !== undefined && (
        // A frozen card is not "no cards": the code is withheld until the card is unfrozen, and the page says why.
        <p className="warn" data-testid="cpm-frozen">
          {t('card.codeFrozen').replace('{last4}', frozen.cardLast4)} {t(suspendedWhyKey(frozen.suspendedBy))}
        </p>
      )}
      {image !== undefined && (
        <div className="qr">
          <img src={image} alt={`${t('pay.cpm')} ${current?.brand ?? ''} …${current?.cardLast4 ?? ''}`} data-testid="cpm-qr" />
        </div>
      )}
      {image !== undefined && shown !== undefined && (
        <details>
          <summary>{t('pay.cpmText')}</summary>
          <code className="mono" style={{ wordBreak: 'break-all' }} data-testid="cpm-payload" data-atc={shown.atc}>
            {shown.payload}
          </code>
        </details>
      )}
      {image !== undefined && (
        <p className="countdown" data-testid="cpm-countdown" aria-live="off">
          {t('pay.refreshIn').replace('{n}', String(left))}
        </p>
      )}
      {tokens.data === undefined && tokens.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
      <ErrorBox error={error ?? tokens.error} />
      <p className="muted">{t('pay.cpmHint')}</p>
    </Section>
  );
}

function PayLink({ api, session, initial }: { api: Api; session: WalletSession; initial: string }) {
  const { t, money } = useI18n();
  const [link, setLink] = useState(initial);
  const [info, setInfo] = useState<any>();
  const [source, setSource] = useState('');
  const [paid, setPaid] = useState<any>();
  const stepUp = useStepUp();
  const id = () => link.trim().split(/[/?#]/).filter((s) => s !== '').pop() ?? '';
  const open = useAction(async () => {
    setPaid(undefined);
    stepUp.cancel();
    setInfo(await api.get(`/v1/payment-links/${encodeURIComponent(id())}`));
  });
  const payOnce = async (stepUpChallengeId: string | undefined) => {
    const amount: MoneyWire = info.amount;
    setPaid(
      await api.post(`/v1/payment-links/${encodeURIComponent(id())}/pay`, {
        customerId: session.customerId,
        source: await buildSource(api, session, source, amount, info.merchant?.country ?? 'CN'),
        deviceId: deviceId(),
        ...(stepUpChallengeId !== undefined ? { stepUpChallengeId } : {}),
      }),
    );
  };
  const pay = useAction(() => stepUp.attempt(payOnce));
  // Opened for a link (/wallet?link=…, or a scanned /pay/… code): show it at once.
  useEffect(() => {
    if (initial !== '') void open.run();
  }, []);
  return (
    <Section title={t('pay.link')} testId="pay-link">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void open.run();
        }}
      >
        <Field label={t('pay.linkUrl')} name="link" value={link} onChange={setLink} />
        <button type="submit" disabled={link.trim() === '' || open.busy} data-testid="link-open">
          {t('pay.open')}
        </button>
      </form>
      <ErrorBox error={open.error} />
      {info !== undefined && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void pay.run();
          }}
        >
          <p data-testid="link-info">
            {info.merchant?.name} — {info.description} <strong>{info.amount !== undefined ? money(info.amount.amount, info.amount.currency) : ''}</strong>
          </p>
          <PaySource api={api} session={session} value={source} onChange={setSource} />
          <button type="submit" disabled={pay.busy || source === '' || paid !== undefined || stepUp.offer !== undefined} data-testid="link-pay">
            {t('pay.payNow')}
          </button>
        </form>
      )}
      <ErrorBox error={pay.error} />
      {stepUp.offer !== undefined && (
        <StepUp key={stepUp.offer.request} api={api} offer={stepUp.offer} onApproved={(sid) => stepUp.attempt(payOnce, sid)} onRestart={() => stepUp.attempt(payOnce)} onCancel={stepUp.cancel} />
      )}
      {paid !== undefined && (
        <p className="ok" data-testid="link-paid">
          {t('pay.paid')} ✓ {paid.amount !== undefined ? money(paid.amount.amount, paid.amount.currency) : ''} <span className="mono">{paid.id}</span>
        </p>
      )}
    </Section>
  );
}

// ---- transfers ---------------------------------------------------------------------------------------------------

const ALIAS_TYPES = ['handle', 'phone', 'email'] as const;

function AliasInput({ type, value, onType, onValue, prefix }: { type: string; value: string; onType: (v: string) => void; onValue: (v: string) => void; prefix: string }) {
  const { t } = useI18n();
  return (
    <div className="row">
      <Select label={t('xfer.aliasType')} name={`${prefix}-type`} value={type} onChange={onType} options={ALIAS_TYPES.map((a) => ({ value: a, label: t(`alias.${a}`) }))} />
      <Field label={t('xfer.alias')} name={`${prefix}-alias`} value={value} onChange={onValue} />
    </div>
  );
}

/** The currencies the customer holds (an account in each), the first one the default: amounts are never CNY-only. */
function Transfer({ api, session, payee, packet }: { api: Api; session: WalletSession; payee?: { type: string; value: string } | undefined; packet: string }) {
  return (
    <div className="grid">
      <SendMoney api={api} session={session} initial={payee} />
      <RequestMoney api={api} session={session} />
      <IncomingRequests api={api} session={session} />
      <SplitBill api={api} session={session} />
      <RedPacket api={api} session={session} />
      <ClaimPacket api={api} session={session} initial={packet} />
      <Payments api={api} session={session} />
      <SentRequests api={api} session={session} />
      <SentPackets api={api} session={session} />
    </div>
  );
}

function SendMoney({ api, session, initial }: { api: Api; session: WalletSession; initial?: { type: string; value: string } | undefined }) {
  const { t, money } = useI18n();
  const [type, setType] = useState(initial?.type ?? 'handle');
  const [value, setValue] = useState(initial?.value ?? '');
  const currencies = useCurrencies(api, session);
  const [currency, setCurrency] = useCurrency(currencies);
  const [amount, setAmount] = useState('');
  const [payee, setPayee] = useState<any>();
  const [quote, setQuote] = useState<any>();
  const [sent, setSent] = useState<any>();
  const stepUp = useStepUp();
  const lookup = useAction(async () => {
    setQuote(undefined);
    setSent(undefined);
    stepUp.cancel();
    setPayee(await api.get(`/v1/aliases/lookup?customerId=${encodeURIComponent(session.customerId)}&type=${type}&value=${encodeURIComponent(value.trim())}`));
  });
  const newQuote = () => api.post<TransferQuote>('/v1/transfers/quotes', { customerId: session.customerId, payee: { type, value: value.trim() }, sendAmount: { amount: amount.trim(), currency } });
  const getQuote = useAction(async () => {
    stepUp.cancel();
    setQuote(await newQuote());
  });
  const confirmOnce = async (stepUpChallengeId: string | undefined) => {
    if (quote === undefined) return;
    const extra = stepUpChallengeId !== undefined ? { stepUpChallengeId } : {};
    let current: TransferQuote = quote;
    try {
      setSent(await api.post('/v1/transfers/payments', { quoteId: current.id, ...extra }));
    } catch (e) {
      // A quote lives 30 s; approving a payment can take longer. The approval is bound to the amount and the payee,
      // not to the quote, so the same payment is quoted again and paid with it.
      if (!(e instanceof ApiError && e.code === 'quote_expired')) throw e;
      current = await newQuote();
      setQuote(current);
      setSent(await api.post('/v1/transfers/payments', { quoteId: current.id, ...extra }));
    }
    setQuote(undefined);
  };
  const confirm = useAction(() => stepUp.attempt(confirmOnce));
  return (
    <Section title={t('xfer.send')} testId="send-money">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void (payee === undefined ? lookup.run() : getQuote.run());
        }}
      >
        <AliasInput prefix="send" type={type} value={value} onType={(v) => (setType(v), setPayee(undefined))} onValue={(v) => (setValue(v), setPayee(undefined))} />
        {payee === undefined ? (
          <button type="submit" disabled={value.trim() === '' || lookup.busy} data-testid="send-lookup">
            {t('xfer.lookup')}
          </button>
        ) : (
          <>
            <p data-testid="payee">
              {t('xfer.payee')}: <strong>{payee.maskedName}</strong> · {payee.participantName}
            </p>
            {payee.warning !== null && <p className="warn">{serverWarning(payee.warning, t)}</p>}
            <div className="row">
              <Field label={`${t('common.amount')} (${currency})`} name="send-amount" value={amount} onChange={setAmount} inputMode="decimal" />
              {currencies.length > 1 && <CurrencySelect name="send-currency" currencies={currencies} value={currency} onChange={setCurrency} />}
            </div>
            <button type="submit" disabled={amount.trim() === '' || getQuote.busy} data-testid="send-quote">
              {t('xfer.quote')}
            </button>
          </>
        )}
      </form>
      <ErrorBox error={lookup.error ?? getQuote.error ?? confirm.error} />
      {quote !== undefined && (
        <div>
          <p data-testid="send-quote-details">
            {t('xfer.fee')}: {money(quote.fee.amount, quote.fee.currency)} · {t('xfer.receives')}: <strong>{money(quote.receiveAmount.amount, quote.receiveAmount.currency)}</strong>
          </p>
          {quote.receiveAmount.currency !== quote.totalDebit.currency && (
            <p className="warn" data-testid="send-fx">
              {t('xfer.fx')}: 1 {quote.totalDebit.currency} = {quote.rate ?? '—'} {quote.receiveAmount.currency}
            </p>
          )}
          {(quote.warnings as string[]).map((w) => (
            <p className="warn" key={w}>
              {serverWarning(w, t)}
            </p>
          ))}
          <button type="button" onClick={() => void confirm.run()} disabled={confirm.busy || stepUp.offer !== undefined} data-testid="send-confirm">
            {t('common.confirm')} {money(quote.totalDebit.amount, quote.totalDebit.currency)}
          </button>
        </div>
      )}
      {stepUp.offer !== undefined && (
        <StepUp key={stepUp.offer.request} api={api} offer={stepUp.offer} onApproved={(id) => stepUp.attempt(confirmOnce, id)} onRestart={() => stepUp.attempt(confirmOnce)} onCancel={stepUp.cancel} />
      )}
      {sent !== undefined && (
        <p className="ok" data-testid="sent">
          {t('xfer.sent')} ✓ {money(sent.receiveAmount.amount, sent.receiveAmount.currency)} → {payee?.maskedName}
        </p>
      )}
    </Section>
  );
}

function RequestMoney({ api, session }: { api: Api; session: WalletSession }) {
  const { t } = useI18n();
  const currencies = useCurrencies(api, session);
  const [currency, setCurrency] = useCurrency(currencies);
  const [type, setType] = useState('handle');
  const [value, setValue] = useState('');
  const [amount, setAmount] = useState('');
  const [note, setNote] = useState('');
  const [done, setDone] = useState<any>();
  const send = useAction(async () => {
    setDone(await api.post('/v1/transfers/requests', { customerId: session.customerId, payer: { type, value: value.trim() }, amount: { amount: amount.trim(), currency }, ...(note !== '' ? { note } : {}) }));
  });
  return (
    <Section title={t('xfer.request')} testId="request-money">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void send.run();
        }}
      >
        <AliasInput prefix="request" type={type} value={value} onType={setType} onValue={setValue} />
        <div className="row">
          <Field label={`${t('common.amount')} (${currency})`} name="request-amount" value={amount} onChange={setAmount} inputMode="decimal" />
          {currencies.length > 1 && <CurrencySelect name="request-currency" currencies={currencies} value={currency} onChange={setCurrency} />}
        </div>
        <Field label={t('common.note')} name="request-note" value={note} onChange={setNote} />
        <button type="submit" disabled={send.busy || value === '' || amount === ''} data-testid="request-send">
          {t('xfer.request')}
        </button>
      </form>
      <ErrorBox error={send.error} />
      {done !== undefined && (
        <p className="ok" data-testid="requested">
          {t('xfer.requested')} ✓ <span className="mono">{done.id}</span>
        </p>
      )}
    </Section>
  );
}

interface TransferQuote { id: string; fee: MoneyWire; receiveAmount: MoneyWire; totalDebit: MoneyWire; warnings: string[]; rate?: string | null }

/**
 * The hub's warnings are fixed English sentences (src/transfers/service.ts, src/aliases/service.ts): each known one is
 * shown in the page's language; an unknown one as it came.
 */
const WARNINGS: readonly [string, string][] = [
  ['Approving this request SENDS money from your account.', 'warning.request'],
  ['You have never paid this person before', 'warning.firstTime'],
  ['a participant has reported this payee for suspected fraud', 'warning.flagged'],
];
function serverWarning(text: string, t: (key: string) => string): string {
  const known = WARNINGS.filter(([needle]) => text.includes(needle)).map(([, key]) => t(key));
  return known.length > 0 ? known.join(' ') : text;
}

function IncomingRequests({ api, session }: { api: Api; session: WalletSession }) {
  const { t, money } = useI18n();
  const list = useLoad(async () => (await api.get<{ items: any[] }>(`/v1/transfers/requests?customerId=${encodeURIComponent(session.customerId)}&role=payer`)).items, [api]);
  // Approving answers a quote (fee, what the requester receives, the warnings again): the payer confirms it to pay.
  const [quote, setQuote] = useState<{ requestId: string; quote: TransferQuote } | undefined>();
  const [paid, setPaid] = useState<{ receiveAmount: MoneyWire } | undefined>();
  const stepUp = useStepUp();
  const approveRequest = (id: string) => api.post<TransferQuote>(`/v1/transfers/requests/${id}/approve`, { customerId: session.customerId });
  const approve = useAction(async (id: string) => {
    setPaid(undefined);
    stepUp.cancel();
    setQuote({ requestId: id, quote: await approveRequest(id) });
  });
  const confirmOnce = async (stepUpChallengeId: string | undefined) => {
    if (quote === undefined) return;
    const extra = stepUpChallengeId !== undefined ? { stepUpChallengeId } : {};
    try {
      setPaid(await api.post<{ receiveAmount: MoneyWire }>('/v1/transfers/payments', { quoteId: quote.quote.id, ...extra }));
    } catch (e) {
      // The quote expired while the payer approved the payment: approving the request again quotes it again.
      if (!(e instanceof ApiError && e.code === 'quote_expired')) throw e;
      const fresh = await approveRequest(quote.requestId);
      setQuote({ requestId: quote.requestId, quote: fresh });
      setPaid(await api.post<{ receiveAmount: MoneyWire }>('/v1/transfers/payments', { quoteId: fresh.id, ...extra }));
    }
    setQuote(undefined);
    await list.reload();
  };
  const confirm = useAction(() => stepUp.attempt(confirmOnce));
  const decline = useAction(async (id: string) => {
    await api.post(`/v1/transfers/requests/${id}/decline`, { customerId: session.customerId });
    if (quote?.requestId === id) setQuote(undefined);
    await list.reload();
  });
  const pending = (list.data ?? []).filter((r) => r.status === 'pending');
  return (
    <Section
      title={t('xfer.incoming')}
      testId="incoming-requests"
      actions={
        <button type="button" className="secondary" onClick={() => void list.reload()}>
          {t('common.refresh')}
        </button>
      }
    >
      <ErrorBox error={list.error ?? approve.error ?? confirm.error ?? decline.error} />
      {pending.length === 0 && <p className="muted">{t('common.none')}</p>}
      {pending.map((r) => {
        const q = quote !== undefined && quote.requestId === r.id ? quote.quote : undefined;
        return (
        <div key={r.id} data-testid="incoming-request" data-request-id={r.id} style={{ borderBottom: '1px solid var(--line)', padding: '0.5rem 0' }}>
          <div className="row" style={{ justifyContent: 'space-between' }}>
            <span>
              {r.requester.maskedName} · {r.requester.participantName} · {money(r.amount.amount, r.amount.currency)} {r.note ?? ''}
            </span>
            <span className="row">
              <button type="button" onClick={() => void approve.run(r.id)} disabled={approve.busy || quote?.requestId === r.id} data-testid="request-approve">
                {t('xfer.approve')}
              </button>
              <button type="button" className="secondary" onClick={() => void decline.run(r.id)} disabled={decline.busy} data-testid="request-decline">
                {t('xfer.decline')}
              </button>
            </span>
          </div>
          {r.warning !== null && r.warning !== undefined && r.warning !== '' && (
            <p className="warn" data-testid="request-warning">
              {serverWarning(r.warning, t)}
            </p>
          )}
          {q !== undefined && (
            <div data-testid="request-quote">
              <p>
                {t('xfer.fee')}: {money(q.fee.amount, q.fee.currency)} · {t('xfer.receives')}: <strong>{money(q.receiveAmount.amount, q.receiveAmount.currency)}</strong>
              </p>
              {q.warnings.map((w) => (
                <p className="warn" key={w} role="alert">
                  {serverWarning(w, t)}
                </p>
              ))}
              <span className="row">
                <button type="button" onClick={() => void confirm.run()} disabled={confirm.busy || stepUp.offer !== undefined} data-testid="request-confirm">
                  {t('common.confirm')} {money(q.totalDebit.amount, q.totalDebit.currency)}
                </button>
                <button type="button" className="secondary" onClick={() => (setQuote(undefined), stepUp.cancel())}>
                  {t('common.cancel')}
                </button>
              </span>
              {stepUp.offer !== undefined && (
                <StepUp key={stepUp.offer.request} api={api} offer={stepUp.offer} onApproved={(sid) => stepUp.attempt(confirmOnce, sid)} onRestart={() => stepUp.attempt(confirmOnce)} onCancel={stepUp.cancel} />
              )}
            </div>
          )}
        </div>
        );
      })}
      {paid !== undefined && (
        <p className="ok" data-testid="request-paid">
          {t('xfer.sent')} ✓ {money(paid.receiveAmount.amount, paid.receiveAmount.currency)}
        </p>
      )}
    </Section>
  );
}

function parseAliases(text: string) {
  return text
    .split(/[,，\s]+/)
    .filter((s) => s !== '')
    .map((v) => ({ type: v.includes('@') ? 'email' : /^\+?[0-9]{6,}$/.test(v) ? 'phone' : 'handle', value: v }));
}

function SplitBill({ api, session }: { api: Api; session: WalletSession }) {
  const { t, money } = useI18n();
  const currencies = useCurrencies(api, session);
  const [currency, setCurrency] = useCurrency(currencies);
  const [total, setTotal] = useState('');
  const [members, setMembers] = useState('');
  const [note, setNote] = useState('');
  const [split, setSplit] = useState<any>();
  const create = useAction(async () => {
    setSplit(await api.post('/v1/transfers/splits', { customerId: session.customerId, total: { amount: total.trim(), currency }, method: 'equal', members: parseAliases(members).map((alias) => ({ alias })), ...(note !== '' ? { note } : {}) }));
  });
  return (
    <Section title={t('xfer.split')} testId="split-bill">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void create.run();
        }}
      >
        <div className="row">
          <Field label={`${t('xfer.total')} (${currency})`} name="split-total" value={total} onChange={setTotal} inputMode="decimal" />
          {currencies.length > 1 && <CurrencySelect name="split-currency" currencies={currencies} value={currency} onChange={setCurrency} />}
        </div>
        <Field label={t('xfer.members')} name="split-members" value={members} onChange={setMembers} placeholder="liwei, zhangmin" />
        <Field label={t('common.note')} name="split-note" value={note} onChange={setNote} />
        <button type="submit" disabled={create.busy || total.trim() === '' || members.trim() === ''} data-testid="split-submit">
          {t('xfer.split')}
        </button>
      </form>
      <ErrorBox error={create.error} />
      {split !== undefined && (
        <div className="ok" data-testid="split-done">
          {t('xfer.splitDone')}:
          <ul>
            {(split.members as any[]).map((m) => (
              <li key={m.index} data-testid="split-member">
                {m.maskedName} {money(m.amount.amount, m.amount.currency)} <span className={`pill ${m.status}`}>{statusWord(m.status, t)}</span>
              </li>
            ))}
          </ul>
        </div>
      )}
    </Section>
  );
}

function RedPacket({ api, session }: { api: Api; session: WalletSession }) {
  const { t, money } = useI18n();
  const currencies = useCurrencies(api, session);
  const [currency, setCurrency] = useCurrency(currencies);
  const [total, setTotal] = useState('');
  const [shares, setShares] = useState('1');
  const [mode, setMode] = useState('random');
  const [members, setMembers] = useState('');
  const [message, setMessage] = useState('恭喜发财');
  const [packet, setPacket] = useState<any>();
  const send = useAction(async () => {
    setPacket(
      await api.post('/v1/transfers/red-packets', { customerId: session.customerId, total: { amount: total.trim(), currency }, shares: Number(shares), mode, members: parseAliases(members), ...(message !== '' ? { message } : {}) }),
    );
  });
  return (
    <Section title={t('xfer.packet')} testId="red-packet">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void send.run();
        }}
      >
        <div className="row">
          <Field label={`${t('xfer.total')} (${currency})`} name="packet-total" value={total} onChange={setTotal} inputMode="decimal" />
          {currencies.length > 1 && <CurrencySelect name="packet-currency" currencies={currencies} value={currency} onChange={setCurrency} />}
        </div>
        <div className="row">
          <Field label={t('xfer.shares')} name="packet-shares" value={shares} onChange={setShares} inputMode="numeric" />
          <Select label={t('xfer.mode')} name="packet-mode" value={mode} onChange={setMode} options={[{ value: 'random', label: t('xfer.mode.random') }, { value: 'equal', label: t('xfer.mode.equal') }]} />
        </div>
        <Field label={t('xfer.members')} name="packet-members" value={members} onChange={setMembers} placeholder="zhangmin" />
        <Field label={t('xfer.message')} name="packet-message" value={message} onChange={setMessage} />
        <button type="submit" disabled={send.busy} data-testid="packet-send">
          {t('xfer.packet')}
        </button>
      </form>
      <ErrorBox error={send.error} />
      {packet !== undefined && (
        <p className="ok">
          {t('xfer.packetSent')}: <span className="mono" data-testid="packet-id">{packet.id}</span> ({money(packet.total.amount, packet.total.currency)})
        </p>
      )}
      {packet !== undefined && (
        <PacketShare id={packet.id} />
      )}
    </Section>
  );
}

function ClaimPacket({ api, session, initial }: { api: Api; session: WalletSession; initial: string }) {
  const { t, money } = useI18n();
  const [id, setId] = useState(initial);
  const [claimed, setClaimed] = useState<any>();
  const claim = useAction(async () => {
    setClaimed(await api.post(`/v1/transfers/red-packets/${encodeURIComponent(id.trim())}/claim`, { customerId: session.customerId }));
  });
  return (
    <Section title={t('xfer.claim')} testId="claim-packet">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void claim.run();
        }}
      >
        <Field label={t('xfer.packetId')} name="claim-id" value={id} onChange={setId} />
        <button type="submit" disabled={claim.busy || id.trim() === ''} data-testid="packet-claim">
          {t('xfer.claim')}
        </button>
      </form>
      <ErrorBox error={claim.error} />
      {claimed !== undefined && (
        <p className="ok packet-open" data-testid="packet-claimed">
          🧧 {t('xfer.claimed')} {money(claimed.amount.amount, claimed.amount.currency)} {claimed.packet.message ?? ''}
        </p>
      )}
    </Section>
  );
}

// ---- history, charts, budget --------------------------------------------------------------------------------------

export interface HistoryItem {
  id: string;
  at: string;
  kind: 'transfer' | 'merchant' | 'red_packet' | 'account';
  direction: 'in' | 'out';
  amount: MoneyWire;
  title: string;
  mcc: string | null;
  status: string;
  /** The wallet or bank where it happened: the person's records linked through verification are merged. */
  participantId: string;
  participantName: string;
  own: boolean;
}

interface LinkedRecord {
  participantId: string;
  participantName: string;
  participantKind: string;
  via: 'self' | 'customer_link' | 'account_link';
}

/**
 * The person's unified history (GET /v1/history): transfers, merchant payments, red packets and top-ups at this wallet
 * and at every wallet and bank the hub linked to them through verification, newest first.
 */
async function loadHistory(api: Api, session: WalletSession): Promise<{ items: HistoryItem[]; linked: LinkedRecord[] }> {
  return api.get(`/v1/history?customerId=${encodeURIComponent(session.customerId)}&limit=200`);
}

/** A status as words of the page's language (status.<code>); an unknown status shows as it came. */
export function statusWord(status: string, t: (key: string) => string): string {
  const key = `status.${status}`;
  const word = t(key);
  return word === key ? status : word;
}

/** A history title: account movements carry a purpose code (demo_opening_balance, top_up…), said in words. */
function historyTitle(i: HistoryItem, t: (key: string) => string): string {
  if (i.kind !== 'account') return i.title;
  const key = `purpose.${i.title}`;
  const word = t(key);
  return word === key ? t('history.kind.account') : word;
}

const HISTORY_KINDS = ['all', 'transfer', 'merchant', 'red_packet', 'account'] as const;

function History({ api, session }: { api: Api; session: WalletSession }) {
  const { t, date, month, money } = useI18n();
  const h = useLoad(() => loadHistory(api, session), [api]);
  const [disputing, setDisputing] = useState<HistoryItem | undefined>();
  const disputes = useMyDisputes(api, session);
  // A payment with a dispute still being decided offers no second one (the hub would answer dispute_exists).
  const disputed = new Set((disputes.data ?? []).filter((d) => d.status === 'opened' || d.status === 'chargeback').map((d) => d.paymentId));
  const [query, setQuery] = useState('');
  const [kind, setKind] = useState<string>('all');
  const others = (h.data?.linked ?? []).filter((r) => r.via !== 'self');
  const q = query.trim().toLowerCase();
  const shown = (h.data?.items ?? []).filter(
    (i) =>
      (kind === 'all' || i.kind === kind) &&
      (q === '' || [historyTitle(i, t), i.participantName, i.amount?.amount ?? '', money(i.amount?.amount ?? '0', i.amount?.currency ?? 'CNY'), statusWord(i.status, t)].some((x) => x.toLowerCase().includes(q))),
  );
  // Grouped by month, newest first (the hub answers newest first).
  const months: { key: string; items: HistoryItem[] }[] = [];
  for (const i of shown) {
    const key = i.at.slice(0, 7);
    const last = months[months.length - 1];
    if (last !== undefined && last.key === key) last.items.push(i);
    else months.push({ key, items: [i] });
  }
  return (
    <>
    <Section
      title={t('history.title')}
      testId="history"
      actions={
        <button type="button" className="secondary" onClick={() => void h.reload()}>
          {t('common.refresh')}
        </button>
      }
    >
      <ErrorBox error={h.error} />
      {h.data === undefined && h.error === undefined && <p className="skeleton" data-testid="history-loading">{t('common.loading')}</p>}
      {h.data !== undefined && (
        <p className="muted" data-testid="history-linked">
          {others.length > 0 ? `${t('history.linked')}: ${others.map((r) => r.participantName).join(' · ')}` : t('history.unlinked')}
        </p>
      )}
      <div className="row">
        <Field label={t('common.search')} name="history-search" value={query} onChange={setQuery} />
        <Select label={t('common.kind')} name="history-kind" value={kind} onChange={setKind} options={HISTORY_KINDS.map((k) => ({ value: k, label: k === 'all' ? t('history.all') : t(`history.kind.${k}`) }))} />
      </div>
      {h.data?.items.length === 0 && <p className="muted">{t('history.empty')}</p>}
      {h.data !== undefined && h.data.items.length > 0 && shown.length === 0 && <p className="muted">{t('history.noMatch')}</p>}
      <div className="activity">
        {months.map((m) => (
          <section key={m.key} aria-label={month(`${m.key}-01T00:00:00Z`)}>
            <h3>{month(`${m.key}-01T00:00:00Z`)}</h3>
            <ul className="activity">
              {m.items.map((i) => (
                <li key={`${i.kind}-${i.id}`} className="activity-row" data-testid="history-row" data-kind={i.kind} data-participant={i.participantId} data-own={String(i.own)}>
                  <div>
                    <div className="title">{historyTitle(i, t)}</div>
                    <div className="sub">
                      {t(`history.kind.${i.kind}`)} · {date(i.at)}
                    </div>
                    <div className="sub">
                      {t('history.where')}: {i.participantName}
                    </div>
                  </div>
                  <div className="amt">
                    {i.amount !== undefined && <Money amount={i.amount.amount} currency={i.amount.currency} sign={i.direction} />}
                    <div>
                      <span className={`pill ${i.status}`}>{statusWord(i.status, t)}</span>
                    </div>
                    {i.own && i.direction === 'out' && (i.kind === 'merchant' || i.kind === 'transfer') && i.amount !== undefined && !disputed.has(i.id) && (
                      <button type="button" className="secondary" onClick={() => setDisputing(i)} data-testid="history-dispute" aria-label={`${t('dispute.this')}: ${historyTitle(i, t)}`}>
                        {t('dispute.this')}
                      </button>
                    )}
                  </div>
                </li>
              ))}
            </ul>
          </section>
        ))}
      </div>
    </Section>
    <Disputes
      api={api}
      session={session}
      list={disputes}
      payment={disputing === undefined || disputing.amount === undefined ? undefined : { kind: disputing.kind === 'merchant' ? 'card' : 'p2p', id: disputing.id, title: historyTitle(disputing, t), amount: disputing.amount }}
      onClear={() => setDisputing(undefined)}
    />
    </>
  );
}
