import { useEffect, useMemo, useState } from 'react';
import { createApi, type Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { CodeForm, ConfirmBar, ErrorBox, Field, Money, Section, Select, useAction, useLoad } from '../shared/ui.tsx';
import { useAccounts, type MoneyWire } from './accounts.tsx';
import type { WalletSession } from './session.ts';
import { CashMoves } from './Cash.tsx';

/** A status in words of the page's language (status.<code>); an unknown one shows as it came. */
function useStatusWord() {
  const { t } = useI18n();
  return (status: string) => {
    const key = `status.${status}`;
    const word = t(key);
    return word === key ? status : word;
  };
}

const q = (session: WalletSession) => `customerId=${encodeURIComponent(session.customerId)}`;

// ---- bank accounts (Me) ------------------------------------------------------------------------------------------

interface AccountLink {
  id: string;
  bankParticipantId: string;
  accountId: string;
  status: 'active' | 'revoked';
  createdAt: string;
}

/**
 * The customer's bank accounts linked into this wallet: the bank gives its customer a one-time code (here, the demo
 * bank's code is shown), typed here once; the linked accounts then pay and show their balances in the wallet. Unlinking
 * takes effect at once, asked first.
 */
export function BankAccounts({ api, session }: { api: Api; session: WalletSession }) {
  const { t, date } = useI18n();
  const word = useStatusWord();
  const links = useLoad(async () => (await api.get<{ items: AccountLink[] }>(`/v1/account-links?${q(session)}`)).items, [api]);
  const accounts = useAccounts(api, session);
  const anonymous = useMemo(() => createApi(async () => undefined), []);
  const directory = useLoad(() => anonymous.get<{ banks: { participantId: string; name: string }[] }>('/demo/v1/directory'), []);
  const banks = directory.data?.banks ?? [];
  const [bank, setBank] = useState('');
  useEffect(() => {
    if (bank === '' && banks[0] !== undefined) setBank(banks[0].participantId);
  }, [bank, banks]);
  const [consent, setConsent] = useState<{ id: string } | undefined>();
  const [demoCode, setDemoCode] = useState<string | undefined>();
  const [code, setCode] = useState('');
  const [linked, setLinked] = useState(false);
  const [confirming, setConfirming] = useState<string | undefined>();
  const request = useAction(async () => {
    setLinked(false);
    setDemoCode(undefined);
    const c = await api.post<{ id: string }>('/v1/account-links', { customerId: session.customerId, bankParticipantId: bank });
    setConsent(c);
    try {
      setDemoCode((await api.get<{ code: string }>(`/demo/v1/codes/account-link-consents/${encodeURIComponent(c.id)}`)).code);
    } catch {
      setDemoCode(undefined);
    }
  });
  const confirm = useAction(async () => {
    if (consent === undefined) return;
    await api.post(`/v1/account-links/consents/${encodeURIComponent(consent.id)}/confirm`, { code });
    setConsent(undefined);
    setCode('');
    setDemoCode(undefined);
    setLinked(true);
    await Promise.all([links.reload(), accounts.reload()]);
  });
  const unlink = useAction(async (id: string) => {
    await api.del(`/v1/account-links/${encodeURIComponent(id)}`);
    setConfirming(undefined);
    await Promise.all([links.reload(), accounts.reload()]);
  });
  const bankName = (id: string) => banks.find((b) => b.participantId === id)?.name ?? id;
  const balanceOf = (accountId: string) => accounts.data?.find((a) => a.id === accountId);
  const active = (links.data ?? []).filter((l) => l.status === 'active');
  return (
    <Section title={t('me.banks')} testId="bank-accounts">
      <p className="muted">{t('me.banksHint')}</p>
      <ErrorBox error={links.error ?? directory.error ?? unlink.error} />
      {links.data === undefined && links.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
      {links.data !== undefined && active.length === 0 && <p className="muted">{t('me.noBanks')}</p>}
      {active.map((l) => {
        const a = balanceOf(l.accountId);
        return (
          <div key={l.id} className="list-row" data-testid="bank-link" data-link-id={l.id}>
            <div className="row" style={{ justifyContent: 'space-between' }}>
              <div>
                <strong>{bankName(l.bankParticipantId)}</strong> {a !== undefined && <Money amount={a.available.amount} currency={a.available.currency} />}
                <div className="muted">
                  {t('links.linkedOn')} {date(l.createdAt)} · {word(l.status)}
                </div>
              </div>
              {confirming !== l.id && (
                <button type="button" className="secondary" onClick={() => setConfirming(l.id)} data-testid="bank-unlink">
                  {t('me.unlink')}
                </button>
              )}
            </div>
            {confirming === l.id && <ConfirmBar question={t('me.unlinkConfirm')} yes={t('me.unlinkYes')} busy={unlink.busy} onYes={() => void unlink.run(l.id)} onCancel={() => setConfirming(undefined)} yesTestId="bank-unlink-yes" />}
          </div>
        );
      })}
      {consent === undefined ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void request.run();
          }}
        >
          <Select label={t('me.bank')} name="bank" value={bank} onChange={setBank} options={banks.map((b) => ({ value: b.participantId, label: b.name }))} />
          <button type="submit" disabled={request.busy || bank === ''} data-testid="bank-link-request">
            {t('me.linkBank')}
          </button>
        </form>
      ) : (
        <CodeForm
          sent={t('me.bankCodeSent').replace('{name}', bankName(bank))}
          demo={demoCode === undefined ? undefined : { label: `${t('links.demoCode')} ${bankName(bank)}:`, code: demoCode, testId: 'bank-demo-code' }}
          name="bank-code"
          code={code}
          onCode={setCode}
          busy={confirm.busy}
          onSubmit={() => void confirm.run()}
          onCancel={() => setConsent(undefined)}
          testId="bank-consent"
          submitTestId="bank-confirm"
        />
      )}
      <ErrorBox error={request.error ?? confirm.error} />
      {linked && (
        <p className="ok" data-testid="bank-linked">
          {t('me.bankLinked')} ✓
        </p>
      )}
      <CashMoves api={api} session={session} links={active} accounts={accounts.data ?? []} bankName={bankName} onMoved={() => accounts.reload()} />
    </Section>
  );
}

// ---- aliases (Me) ------------------------------------------------------------------------------------------------

interface Alias {
  id: string;
  type: string;
  value: string;
  accountId: string;
  flagged: boolean;
}

/**
 * The customer's aliases (phone, e-mail, handle): how others pay them, each pointing at one of their accounts. A handle
 * is added at once; a phone number or e-mail address after the code the wallet sends to it (here, in the demo, the code
 * the demo wallet "sent" is shown); removing one is asked first.
 */
export function Aliases({ api, session }: { api: Api; session: WalletSession }) {
  const { t } = useI18n();
  const list = useLoad(async () => (await api.get<{ items: Alias[] }>(`/v1/aliases?${q(session)}`)).items, [api]);
  const accounts = useAccounts(api, session);
  const currencyOf = (id: string) => accounts.data?.find((a) => a.id === id)?.currency ?? '';
  const [type, setType] = useState<'handle' | 'phone' | 'email'>('handle');
  const [value, setValue] = useState('');
  const [accountId, setAccountId] = useState('');
  const target = accountId !== '' ? accountId : (accounts.data?.[0]?.id ?? '');
  const [pending, setPending] = useState<{ id: string; value: string } | undefined>();
  const [demoCode, setDemoCode] = useState<string | undefined>();
  const [code, setCode] = useState('');
  const [added, setAdded] = useState<string | undefined>();
  const [confirming, setConfirming] = useState<string | undefined>();
  const add = useAction(async () => {
    setAdded(undefined);
    const body = { customerId: session.customerId, type, value: value.trim(), accountId: target };
    if (type === 'handle') {
      const a = await api.post<Alias>('/v1/aliases', body);
      setValue('');
      setAdded(a.value);
      await list.reload();
      return;
    }
    const v = await api.post<{ id: string }>('/v1/aliases/verifications', body);
    setPending({ id: v.id, value: value.trim() });
    try {
      setDemoCode((await api.get<{ code: string }>(`/demo/v1/codes/alias-verifications/${encodeURIComponent(v.id)}`)).code);
    } catch {
      setDemoCode(undefined);
    }
  });
  const confirm = useAction(async () => {
    if (pending === undefined) return;
    const a = await api.post<Alias>(`/v1/aliases/verifications/${encodeURIComponent(pending.id)}/confirm`, { code });
    setPending(undefined);
    setCode('');
    setDemoCode(undefined);
    setValue('');
    setAdded(a.value);
    await list.reload();
  });
  const remove = useAction(async (id: string) => {
    await api.del(`/v1/aliases/${encodeURIComponent(id)}`);
    setConfirming(undefined);
    await list.reload();
  });
  return (
    <Section title={t('alias.title')} testId="aliases">
      <p className="muted">{t('alias.hint')}</p>
      <ErrorBox error={list.error ?? remove.error} />
      {list.data === undefined && list.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
      {list.data?.length === 0 && <p className="muted">{t('alias.none')}</p>}
      {(list.data ?? []).map((a) => (
        <div key={a.id} className="list-row" data-testid="alias-row" data-value={a.value}>
          <div className="row" style={{ justifyContent: 'space-between' }}>
            <span>
              {t(`alias.${a.type}`)}: <strong>{a.value}</strong> → {currencyOf(a.accountId)}
              {a.flagged && <span className="pill failed"> {t('alias.flagged')}</span>}
            </span>
            {confirming !== a.id && (
              <button type="button" className="secondary" onClick={() => setConfirming(a.id)} data-testid="alias-remove">
                {t('alias.remove')}
              </button>
            )}
          </div>
          {confirming === a.id && <ConfirmBar question={t('alias.removeConfirm')} yes={t('alias.removeYes')} busy={remove.busy} onYes={() => void remove.run(a.id)} onCancel={() => setConfirming(undefined)} yesTestId="alias-remove-yes" />}
        </div>
      ))}
      {added !== undefined && (
        <p className="ok" data-testid="alias-added">
          {t('alias.added').replace('{value}', added)} ✓
        </p>
      )}
      {pending === undefined ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void add.run();
          }}
          data-testid="alias-add"
        >
          <Select label={t('xfer.aliasType')} name="alias-type" value={type} onChange={(v) => setType(v === 'phone' || v === 'email' ? v : 'handle')} options={(['handle', 'phone', 'email'] as const).map((k) => ({ value: k, label: t(`alias.${k}`) }))} />
          <Field label={t('xfer.alias')} name="alias-value" value={value} onChange={setValue} />
          <Select label={t('alias.account')} name="alias-account" value={target} onChange={setAccountId} options={(accounts.data ?? []).map((a) => ({ value: a.id, label: a.currency }))} />
          <ErrorBox error={add.error} />
          <button type="submit" disabled={add.busy || value.trim() === '' || target === ''} data-testid="alias-add-submit">
            {type === 'handle' ? t('alias.add') : t('alias.sendCode')}
          </button>
        </form>
      ) : (
        <CodeForm
          sent={t('alias.codeSent').replace('{value}', pending.value)}
          demo={demoCode === undefined ? undefined : { label: t('alias.demoCode'), code: demoCode, testId: 'alias-demo-code' }}
          name="alias-code"
          code={code}
          onCode={setCode}
          busy={confirm.busy}
          onSubmit={() => void confirm.run()}
          onCancel={() => setPending(undefined)}
          testId="alias-verify"
          submitTestId="alias-verify-submit"
        >
          <ErrorBox error={confirm.error} />
        </CodeForm>
      )}
    </Section>
  );
}

// ---- requests sent, splits, red packets, payments (Transfer) -----------------------------------------------------

interface SentRequest {
  id: string;
  status: string;
  amount: MoneyWire;
  note: string | null;
  splitId: string | null;
  createdAt: string;
  expiresAt: string;
}

interface Split {
  id: string;
  total: MoneyWire;
  note: string | null;
  paidCount: number;
  members: { index: number; maskedName: string; amount: MoneyWire; isPayer: boolean; status: string }[];
}

/** Requests the customer sent (alone or as a bill split), each with its status; a split's members and reminders. */
export function SentRequests({ api, session }: { api: Api; session: WalletSession }) {
  const { t, date, money } = useI18n();
  const word = useStatusWord();
  const list = useLoad(async () => (await api.get<{ items: SentRequest[] }>(`/v1/transfers/requests?${q(session)}&role=requester`)).items, [api]);
  const single = (list.data ?? []).filter((r) => r.splitId === null);
  const splitIds = [...new Set((list.data ?? []).flatMap((r) => (r.splitId === null ? [] : [r.splitId])))];
  return (
    <Section
      title={t('xfer.sentRequests')}
      testId="sent-requests"
      actions={
        <button type="button" className="secondary" onClick={() => void list.reload()}>
          {t('common.refresh')}
        </button>
      }
    >
      <ErrorBox error={list.error} />
      {list.data === undefined && list.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
      {list.data?.length === 0 && <p className="muted">{t('common.none')}</p>}
      <ul className="activity">
        {single.map((r) => (
          <li key={r.id} className="activity-row" data-testid="sent-request" data-status={r.status}>
            <div>
              <div className="title">{r.note ?? t('xfer.request')}</div>
              <div className="sub">{date(r.createdAt)}</div>
            </div>
            <div className="amt">
              {money(r.amount.amount, r.amount.currency)}
              <div>
                <span className={`pill ${r.status}`}>{word(r.status)}</span>
              </div>
            </div>
          </li>
        ))}
      </ul>
      {splitIds.map((id) => (
        <SplitStatus key={id} api={api} id={id} />
      ))}
    </Section>
  );
}

function SplitStatus({ api, id }: { api: Api; id: string }) {
  const { t, money } = useI18n();
  const word = useStatusWord();
  const split = useLoad(() => api.get<Split>(`/v1/transfers/splits/${encodeURIComponent(id)}`), [api, id]);
  const [reminded, setReminded] = useState(false);
  const remind = useAction(async () => {
    await api.post(`/v1/transfers/splits/${encodeURIComponent(id)}/remind`);
    setReminded(true);
  });
  const s = split.data;
  const others = s?.members.filter((m) => !m.isPayer) ?? [];
  const unpaid = others.filter((m) => m.status !== 'paid').length;
  return (
    <div className="list-row" data-testid="split-status" data-split-id={id}>
      <ErrorBox error={split.error} />
      {s !== undefined && (
        <>
          <p>
            <strong>{s.note ?? t('xfer.split')}</strong> {money(s.total.amount, s.total.currency)} ·{' '}
            <span data-testid="split-paid">{t('xfer.paidOf').replace('{n}', String(others.length - unpaid)).replace('{m}', String(others.length))}</span>
          </p>
          <ul>
            {others.map((m) => (
              <li key={m.index}>
                {m.maskedName} {money(m.amount.amount, m.amount.currency)} <span className={`pill ${m.status}`}>{word(m.status)}</span>
              </li>
            ))}
          </ul>
          {unpaid > 0 && (
            <button type="button" className="secondary" onClick={() => void remind.run()} disabled={remind.busy || reminded} data-testid="split-remind">
              {reminded ? `${t('xfer.reminded')} ✓` : t('xfer.remind')}
            </button>
          )}
        </>
      )}
      <ErrorBox error={remind.error} />
    </div>
  );
}

interface Packet {
  id: string;
  total: MoneyWire;
  shares: number;
  message: string | null;
  status: string;
  claimedCount: number;
  claimed: MoneyWire;
  refunded: MoneyWire;
  claims: { maskedName: string; amount: MoneyWire; claimedAt: string }[];
  expiresAt: string;
}

/** Red packets the customer sent (from their history): who opened them, what is left, what came back. */
export function SentPackets({ api, session }: { api: Api; session: WalletSession }) {
  const { t, date, money } = useI18n();
  const sent = useLoad(
    async () => (await api.get<{ items: { id: string; kind: string; direction: string; own: boolean; amount: MoneyWire; title: string; at: string }[] }>(`/v1/history?${q(session)}&limit=200`)).items.filter((i) => i.kind === 'red_packet' && i.direction === 'out' && i.own),
    [api],
  );
  const [open, setOpen] = useState<string | undefined>();
  return (
    <Section title={t('xfer.sentPackets')} testId="sent-packets">
      <ErrorBox error={sent.error} />
      {sent.data === undefined && sent.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
      {sent.data?.length === 0 && <p className="muted">{t('common.none')}</p>}
      {(sent.data ?? []).map((p) => (
        <div key={p.id} className="list-row" data-testid="sent-packet" data-packet-id={p.id}>
          <div className="row" style={{ justifyContent: 'space-between' }}>
            <span>
              🧧 {p.title} · {money(p.amount.amount, p.amount.currency)} · {date(p.at)}
            </span>
            <button type="button" className="secondary" aria-expanded={open === p.id} onClick={() => setOpen(open === p.id ? undefined : p.id)} data-testid="packet-details">
              {t('xfer.details')}
            </button>
          </div>
          {open === p.id && <PacketDetails api={api} id={p.id} />}
        </div>
      ))}
    </Section>
  );
}

function PacketDetails({ api, id }: { api: Api; id: string }) {
  const { t, date, money } = useI18n();
  const word = useStatusWord();
  const p = useLoad(() => api.get<Packet>(`/v1/transfers/red-packets/${encodeURIComponent(id)}`), [api, id]);
  if (p.error !== undefined) return <ErrorBox error={p.error} />;
  if (p.data === undefined) return <p className="skeleton">{t('common.loading')}</p>;
  const d = p.data;
  return (
    <div data-testid="packet-detail" data-status={d.status}>
      <p>
        <span className={`pill ${d.status}`}>{word(d.status)}</span> {t('xfer.opened').replace('{n}', String(d.claimedCount)).replace('{m}', String(d.shares))} ·{' '}
        {money(d.claimed.amount, d.claimed.currency)} / {money(d.total.amount, d.total.currency)}
        {Number(d.refunded.amount) > 0 && ` · ${t('xfer.refundedBack')} ${money(d.refunded.amount, d.refunded.currency)}`}
      </p>
      <ul>
        {d.claims.map((c, i) => (
          <li key={i}>
            {c.maskedName} {money(c.amount.amount, c.amount.currency)} · {date(c.claimedAt)}
          </li>
        ))}
      </ul>
      <p className="muted">
        {t('xfer.expires')} {date(d.expiresAt)}
      </p>
    </div>
  );
}

interface Payment {
  id: string;
  status: string;
  role: 'payer' | 'payee';
  sendAmount?: MoneyWire;
  fee?: MoneyWire;
  receiveAmount: MoneyWire;
  rate: string | null;
  createdAt: string;
}

/** Payments sent and received, each with its status; one opened shows its amounts, fee and rate (GET by id). */
export function Payments({ api, session }: { api: Api; session: WalletSession }) {
  const { t, date } = useI18n();
  const word = useStatusWord();
  const list = useLoad(async () => (await api.get<{ items: Payment[] }>(`/v1/transfers/payments?${q(session)}&limit=20`)).items, [api]);
  const [open, setOpen] = useState<string | undefined>();
  return (
    <Section title={t('xfer.payments')} testId="payments">
      <ErrorBox error={list.error} />
      {list.data === undefined && list.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
      {list.data?.length === 0 && <p className="muted">{t('common.none')}</p>}
      <ul className="activity">
        {(list.data ?? []).map((p) => {
          const shown = p.role === 'payer' && p.sendAmount !== undefined ? p.sendAmount : p.receiveAmount;
          return (
            <li key={p.id} data-testid="payment-row" data-payment-id={p.id}>
              <button type="button" className="activity-row plain" aria-expanded={open === p.id} onClick={() => setOpen(open === p.id ? undefined : p.id)}>
                <span>
                  <span className="title">{p.role === 'payer' ? t('xfer.paidOut') : t('xfer.paidIn')}</span>
                  <span className="sub"> · {date(p.createdAt)}</span>
                </span>
                <span className="amt">
                  <Money amount={shown.amount} currency={shown.currency} sign={p.role === 'payer' ? 'out' : 'in'} /> <span className={`pill ${p.status}`}>{word(p.status)}</span>
                </span>
              </button>
              {open === p.id && <PaymentDetail api={api} id={p.id} />}
            </li>
          );
        })}
      </ul>
      {list.data !== undefined && list.data.length > 0 && <p className="muted">{t('xfer.tapForStatus')}</p>}
    </Section>
  );
}

function PaymentDetail({ api, id }: { api: Api; id: string }) {
  const { t, money } = useI18n();
  const word = useStatusWord();
  const p = useLoad(() => api.get<Payment>(`/v1/transfers/payments/${encodeURIComponent(id)}`), [api, id]);
  if (p.error !== undefined) return <ErrorBox error={p.error} />;
  if (p.data === undefined) return <p className="skeleton">{t('common.loading')}</p>;
  const d = p.data;
  return (
    <dl className="detail" data-testid="payment-detail" data-status={d.status}>
      <dt>{t('common.status')}</dt>
      <dd>{word(d.status)}</dd>
      {d.sendAmount !== undefined && (
        <>
          <dt>{t('xfer.sent')}</dt>
          <dd>{money(d.sendAmount.amount, d.sendAmount.currency)}</dd>
        </>
      )}
      {d.fee !== undefined && (
        <>
          <dt>{t('xfer.fee')}</dt>
          <dd>{money(d.fee.amount, d.fee.currency)}</dd>
        </>
      )}
      <dt>{t('xfer.receives')}</dt>
      <dd>{money(d.receiveAmount.amount, d.receiveAmount.currency)}</dd>
      {d.rate !== null && d.sendAmount?.currency !== d.receiveAmount.currency && (
        <>
          <dt>{t('xfer.fx')}</dt>
          <dd>{d.rate}</dd>
        </>
      )}
      <dt>{t('common.id')}</dt>
      <dd className="mono">{d.id}</dd>
    </dl>
  );
}
