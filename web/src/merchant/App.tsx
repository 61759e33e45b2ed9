import { useCallback, useEffect, useMemo, useState } from 'react';
import QRCode from 'qrcode';
import { createApi, type Api } from '../shared/api.ts';
import { DeskSignIn, loadDeskSession, type DeskSession } from '../shared/desk-session.tsx';
import { useI18n } from '../shared/i18n.tsx';
import { ErrorBox, Field, LangSwitch, Money, Section, TextArea, useAction, useLoad } from '../shared/ui.tsx';
import { CameraScanner } from '../wallet/Scan.tsx';

/**
 * 收银台 / the merchant counter (/merchant): enter an amount, show a dynamic QR and watch it turn to "paid"; take a
 * customer's payment code; today's payments with capture, void and refund; payment links as hosted pages; a daily
 * summary. Demo: the page gets a short-lived merchant token from POST /demo/v1/desk-session (no secret in the
 * browser), as the merchant's own back end would hold the credential.
 */
interface Merchant { id: string; name: string; nameZh: string | null; currency: string; country: string; city: string | null }
interface Payment { id: string; status: string; channel: string; amount: { amount: string; currency: string }; captured: { amount: string; currency: string }; refunded: { amount: string; currency: string }; qrId: string | null; linkId: string | null; createdAt: string }
interface Qr { id: string; kind: string; payload: string; amount: { amount: string; currency: string } | null; expiresAt: string | null }
interface Link { id: string; amount: { amount: string; currency: string }; description: string; expiresAt: string }

const KEY = 'hutong.merchant.session';
const load = (): DeskSession | undefined => loadDeskSession(KEY);

type TabKey = 'counter' | 'payments' | 'links';

export function MerchantApp() {
  const { t } = useI18n();
  const [session, setSession] = useState<DeskSession | undefined>(load);
  const [tab, setTab] = useState<TabKey>('counter');
  const api = useMemo(() => (session === undefined ? undefined : createApi(async () => session.token, () => setSession(undefined))), [session]);
  const merchants = useLoad(async () => (api === undefined ? [] : (await api.get<{ items: Merchant[] }>('/v1/merchants')).items), [api]);
  const merchant = merchants.data?.[0];
  const signOut = () => {
    sessionStorage.removeItem(KEY);
    setSession(undefined);
  };
  return (
    <>
      <header className="topbar">
        <h1>{t('merchant.title')}</h1>
        {session !== undefined && (
          <span className="who" data-testid="merchant-who">
            {merchant?.name ?? session.name}
          </span>
        )}
        <LangSwitch />
        {session !== undefined && (
          <button type="button" onClick={signOut} data-testid="merchant-sign-out">
            {t('common.signOut')}
          </button>
        )}
      </header>
      <main>
        {api === undefined ? (
          <DeskSignIn
            defaultKey="merchant-a" title="merchant.signIn" label="merchant.key" note="merchant.demoNote" fieldName="merchant-key" testId="merchant-sign-in"
            onSession={(s) => {
              sessionStorage.setItem(KEY, JSON.stringify(s));
              setSession(s);
            }}
          />
        ) : (
          <>
            <nav className="segmented" aria-label={t('merchant.title')}>
              {(['counter', 'payments', 'links'] as const).map((k) => (
                <button key={k} type="button" data-testid={`mtab-${k}`} aria-current={tab === k ? 'page' : undefined} onClick={() => setTab(k)}>
                  {t(`merchant.tab.${k}`)}
                </button>
              ))}
            </nav>
            <ErrorBox error={merchants.error} />
            {merchants.data === undefined && merchants.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
            {merchants.data !== undefined && merchant === undefined && <p className="muted">{t('merchant.none')}</p>}
            {merchant !== undefined && tab === 'counter' && <Counter api={api} merchant={merchant} />}
            {merchant !== undefined && tab === 'payments' && <Payments api={api} merchant={merchant} />}
            {merchant !== undefined && tab === 'links' && <Links api={api} merchant={merchant} />}
          </>
        )}
      </main>
    </>
  );
}


const KEYPAD = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '.', '0', '⌫'] as const;

/** Amount entry by keypad or keyboard, kept to a decimal with at most two places. */
function typeKey(current: string, key: string): string {
  if (key === '⌫') return current.slice(0, -1);
  const next = current === '0' && key !== '.' ? key : current + key;
  return /^\d{0,9}(\.\d{0,2})?$/.test(next) ? next : current;
}

function QrImage({ payload, label, testId }: { payload: string; label: string; testId: string }) {
  const [src, setSrc] = useState<string | undefined>();
  useEffect(() => {
    void QRCode.toDataURL(payload, { errorCorrectionLevel: 'M', margin: 1, width: 440 }).then(setSrc);
  }, [payload]);
  return src === undefined ? null : (
    <div className="qr">
      <img src={src} alt={label} data-testid={testId} data-payload={payload} />
    </div>
  );
}

function Counter({ api, merchant }: { api: Api; merchant: Merchant }) {
  const { t, money } = useI18n();
  const [amount, setAmount] = useState('');
  const [qr, setQr] = useState<Qr | undefined>();
  const [paid, setPaid] = useState<Payment | undefined>();
  const [staticQr, setStaticQr] = useState<Qr | undefined>();
  const [cpm, setCpm] = useState('');
  const [camera, setCamera] = useState(false);
  const [taken, setTaken] = useState<Payment | undefined>();
  const valid = /^\d+(\.\d{1,2})?$/.test(amount) && Number(amount) > 0;
  const show = useAction(async () => {
    setPaid(undefined);
    setTaken(undefined);
    setQr(await api.post<Qr>(`/v1/merchants/${merchant.id}/qr-codes`, { kind: 'dynamic', amount, reference: `C${Date.now().toString(36).toUpperCase()}`, expiresInS: 600 }));
  });
  const showStatic = useAction(async () => setStaticQr(await api.post<Qr>(`/v1/merchants/${merchant.id}/qr-codes`, { kind: 'static' })));
  // The dynamic code turns to "paid" when a payment names it (polled every 2 s while it is on screen).
  useEffect(() => {
    if (qr === undefined || paid !== undefined) return undefined;
    const timer = setInterval(() => {
      void api
        .get<{ items: Payment[] }>(`/v1/payments?merchantId=${merchant.id}`)
        .then((r) => {
          const found = r.items.find((p) => p.qrId === qr.id && (p.status === 'authorized' || p.status === 'captured'));
          if (found !== undefined) setPaid(found);
        })
        .catch(() => undefined);
    }, 2000);
    return () => clearInterval(timer);
  }, [qr?.id, paid, api, merchant.id]);
  const take = useAction(async (payload?: string) => {
    setTaken(undefined);
    setTaken(await api.post<Payment>(`/v1/merchants/${merchant.id}/payments/cpm`, { payload: (payload ?? cpm).trim(), amount: { amount, currency: merchant.currency } }));
    setCpm('');
  });
  const onScan = useCallback(
    (text: string) => {
      setCamera(false);
      setCpm(text);
      void take.run(text);
    },
    [take.run],
  );
  const reset = () => {
    setAmount('');
    setQr(undefined);
    setPaid(undefined);
    setTaken(undefined);
  };
  return (
    <div className="grid">
      <Section title={t('merchant.charge')} testId="counter">
        <p className="counter-amount" aria-live="polite" data-testid="counter-amount">
          {money(amount === '' ? 0 : Number(amount), merchant.currency)}
        </p>
        <Field label={`${t('common.amount')} (${merchant.currency})`} name="counter-amount" value={amount} onChange={(v) => setAmount(v.replace(/[^0-9.]/g, '').slice(0, 12))} inputMode="decimal" />
        <div className="keypad" role="group" aria-label={t('merchant.keypad')}>
          {KEYPAD.map((k) => (
            <button key={k} type="button" aria-label={k === '⌫' ? t('merchant.backspace') : k} onClick={() => setAmount((a) => typeKey(a, k))}>
              {k}
            </button>
          ))}
        </div>
        <div className="row" style={{ marginTop: '0.75rem' }}>
          <button type="button" disabled={!valid || show.busy} onClick={() => void show.run()} data-testid="counter-qr">
            {t('merchant.showQr')}
          </button>
          <button type="button" className="secondary" onClick={reset} data-testid="counter-reset">
            {t('merchant.newSale')}
          </button>
        </div>
        <ErrorBox error={show.error} />
        {qr !== undefined && paid === undefined && (
          <div data-testid="counter-waiting">
            <QrImage payload={qr.payload} label={`${t('merchant.dynamicQr')} ${qr.amount !== null ? money(qr.amount.amount, qr.amount.currency) : ''}`} testId="counter-qr-image" />
            <p className="muted" aria-live="polite">
              {t('merchant.waiting')}
            </p>
          </div>
        )}
        {paid !== undefined && (
          <p className="ok paid-banner" role="status" data-testid="counter-paid">
            ✓ {t('merchant.paid')} {money(paid.amount.amount, paid.amount.currency)}
          </p>
        )}
      </Section>
      <Section title={t('merchant.scanCustomer')} testId="counter-cpm">
        <p className="muted">{t('merchant.scanHint')}</p>
        {camera ? (
          <CameraScanner onCode={onScan} onClose={() => setCamera(false)} />
        ) : (
          <button type="button" className="secondary" disabled={!valid} onClick={() => setCamera(true)} data-testid="counter-camera">
            ▣ {t('scan.start')}
          </button>
        )}
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void take.run();
          }}
        >
          <TextArea label={t('merchant.customerCode')} name="cpm-payload" value={cpm} onChange={setCpm} />
          <button type="submit" disabled={!valid || cpm.trim() === '' || take.busy} data-testid="counter-cpm-submit">
            {t('merchant.charge')} {valid ? money(amount, merchant.currency) : ''}
          </button>
        </form>
        <ErrorBox error={take.error} />
        {taken !== undefined && (
          <p className="ok paid-banner" role="status" data-testid="counter-cpm-paid">
            ✓ {t('merchant.paid')} {money(taken.amount.amount, taken.amount.currency)}
          </p>
        )}
      </Section>
      <Section title={t('merchant.staticQr')} testId="counter-static">
        <p className="muted">{t('merchant.staticHint')}</p>
        {staticQr === undefined ? (
          <button type="button" className="secondary" onClick={() => void showStatic.run()} disabled={showStatic.busy} data-testid="counter-static-show">
            {t('merchant.showStatic')}
          </button>
        ) : (
          <QrImage payload={staticQr.payload} label={t('merchant.staticQr')} testId="counter-static-image" />
        )}
        <ErrorBox error={showStatic.error} />
      </Section>
    </div>
  );
}

const isToday = (iso: string) => new Date(iso).toDateString() === new Date().toDateString();

function Payments({ api, merchant }: { api: Api; merchant: Merchant }) {
  const { t, date, money } = useI18n();
  const list = useLoad(async () => (await api.get<{ items: Payment[] }>(`/v1/payments?merchantId=${merchant.id}`)).items, [api, merchant.id], 5000);
  const [confirming, setConfirming] = useState<{ id: string; action: 'void' | 'refund' } | undefined>();
  const act = useAction(async (id: string, action: 'capture' | 'void' | 'refund') => {
    await api.post(`/v1/payments/${id}/${action === 'refund' ? 'refunds' : action}`, {});
    setConfirming(undefined);
    await list.reload();
  });
  const today = (list.data ?? []).filter((p) => isToday(p.createdAt));
  const sum = (f: (p: Payment) => string) => today.reduce((s, p) => s + Number(f(p)), 0);
  const captured = sum((p) => p.captured.amount);
  const refunded = sum((p) => p.refunded.amount);
  return (
    <div className="grid">
      <Section title={t('merchant.summary')} testId="merchant-summary">
        <div className="hero">
          <div className="label">{t('merchant.net')}</div>
          <div className="figure" data-testid="summary-net">
            {money(captured - refunded, merchant.currency)}
          </div>
          <div className="label">
            {t('merchant.count').replace('{n}', String(today.length))} · {t('status.refunded')} {money(refunded, merchant.currency)}
          </div>
        </div>
      </Section>
      <Section
        title={t('merchant.today')}
        testId="merchant-payments"
        actions={
          <button type="button" className="secondary" onClick={() => void list.reload()}>
            {t('common.refresh')}
          </button>
        }
      >
        <ErrorBox error={list.error ?? act.error} />
        {list.data === undefined && list.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
        {list.data !== undefined && today.length === 0 && <p className="muted">{t('merchant.noPayments')}</p>}
        <ul className="activity">
          {today.map((p) => (
            <li key={p.id} className="activity-row" data-testid="merchant-payment" data-status={p.status}>
              <div>
                <div className="title">
                  {t(`merchant.channel.${p.channel}`)} · {date(p.createdAt)}
                </div>
                <div className="sub mono">{p.id}</div>
                <div className="row">
                  {p.status === 'authorized' && (
                    <>
                      <button type="button" onClick={() => void act.run(p.id, 'capture')} disabled={act.busy} data-testid="payment-capture">
                        {t('merchant.capture')}
                      </button>
                      <button type="button" className="secondary" onClick={() => setConfirming({ id: p.id, action: 'void' })} disabled={act.busy} data-testid="payment-void">
                        {t('merchant.void')}
                      </button>
                    </>
                  )}
                  {p.status === 'captured' && Number(p.refunded.amount) < Number(p.captured.amount) && (
                    <button type="button" className="secondary" onClick={() => setConfirming({ id: p.id, action: 'refund' })} disabled={act.busy} data-testid="payment-refund">
                      {t('merchant.refund')}
                    </button>
                  )}
                </div>
                {confirming?.id === p.id && (
                  <div role="group" aria-label={t(`merchant.confirm.${confirming.action}`)} className="warn">
                    <p>{t(`merchant.confirm.${confirming.action}`)}</p>
                    <div className="row">
                      <button type="button" onClick={() => void act.run(p.id, confirming.action)} disabled={act.busy} data-testid="payment-confirm">
                        {t('common.confirm')}
                      </button>
                      <button type="button" className="secondary" onClick={() => setConfirming(undefined)}>
                        {t('common.cancel')}
                      </button>
                    </div>
                  </div>
                )}
              </div>
              <div className="amt">
                <Money amount={p.amount.amount} currency={p.amount.currency} />
                <div>
                  <span className={`pill ${p.status}`}>{t(`status.${p.status}`)}</span>
                </div>
                {Number(p.refunded.amount) > 0 && (
                  <div className="sub">
                    {t('status.refunded')} {money(p.refunded.amount, p.refunded.currency)}
                  </div>
                )}
              </div>
            </li>
          ))}
        </ul>
      </Section>
    </div>
  );
}

function Links({ api, merchant }: { api: Api; merchant: Merchant }) {
  const { t, money, date } = useI18n();
  const [amount, setAmount] = useState('');
  const [description, setDescription] = useState('');
  const [made, setMade] = useState<Link[]>([]);
  const create = useAction(async () => {
    const link = await api.post<Link>(`/v1/merchants/${merchant.id}/payment-links`, { amount: { amount: amount.trim(), currency: merchant.currency }, description: description.trim(), expiresInS: 86_400 });
    setMade((m) => [link, ...m]);
    setAmount('');
    setDescription('');
  });
  const pageUrl = (id: string) => `${location.origin}/pay/${id}`;
  return (
    <div className="grid">
      <Section title={t('merchant.newLink')} testId="merchant-links">
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void create.run();
          }}
        >
          <Field label={`${t('common.amount')} (${merchant.currency})`} name="link-amount" value={amount} onChange={setAmount} inputMode="decimal" />
          <Field label={t('merchant.linkDescription')} name="link-description" value={description} onChange={setDescription} />
          <button type="submit" disabled={create.busy || amount.trim() === '' || description.trim() === ''} data-testid="link-create">
            {t('merchant.createLink')}
          </button>
        </form>
        <ErrorBox error={create.error} />
      </Section>
      {made.map((l) => (
        <Section key={l.id} title={`${l.description} · ${money(l.amount.amount, l.amount.currency)}`} testId="merchant-link">
          <QrImage payload={pageUrl(l.id)} label={`${t('merchant.linkQr')} ${l.description}`} testId="merchant-link-qr" />
          <p>
            <a href={`/pay/${l.id}`} data-testid="merchant-link-url">
              {pageUrl(l.id)}
            </a>
          </p>
          <p className="muted">
            {t('merchant.expires')} {date(l.expiresAt)}
          </p>
        </Section>
      ))}
    </div>
  );
}
