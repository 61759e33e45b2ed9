import { useEffect, useMemo, useRef, useState } from 'react';
import { createApi, type Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { Settings } from './Settings.tsx';
import { ErrorBox, Field, LangSwitch, Money, Section, Select, Tabs, useAction, useLoad } from '../shared/ui.tsx';
import { IssuerDesk } from '../issuer/Desk.tsx';
import { SettlementPage } from './Settlement.tsx';

type TabKey = 'participants' | 'transactions' | 'settlement' | 'risk' | 'webhooks' | 'audit' | 'figures' | 'issuer' | 'settings';
const TOKEN_KEY = 'hutong.console.operator';

export function ConsoleApp() {
  const { t } = useI18n();
  const [token, setToken] = useState<string | null>(() => sessionStorage.getItem(TOKEN_KEY));
  const [tab, setTab] = useState<TabKey>('participants');
  const api = useMemo(() => (token === null ? undefined : createApi(async () => token)), [token]);
  const signOut = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    setToken(null);
  };
  return (
    <>
      <header className="topbar">
        <h1>{t('app.console')}</h1>
        <LangSwitch />
        {token !== null && (
          <button type="button" onClick={signOut}>
            {t('common.signOut')}
          </button>
        )}
      </header>
      <main>
        {api === undefined ? (
          <SignIn
            onToken={(v) => {
              sessionStorage.setItem(TOKEN_KEY, v);
              setToken(v);
            }}
          />
        ) : (
          <>
            <Tabs
              label="console"
              current={tab}
              onChange={setTab}
              tabs={(['participants', 'transactions', 'settlement', 'risk', 'webhooks', 'audit', 'figures', 'issuer', 'settings'] as const).map((k) => ({ key: k, label: t(`tab.${k}`) }))}
            />
            {tab === 'participants' && <Participants api={api} />}
            {tab === 'transactions' && <Transactions api={api} />}
            {tab === 'settlement' && <SettlementPage api={api} />}
            {tab === 'risk' && <Risk api={api} />}
            {tab === 'webhooks' && <Webhooks api={api} />}
            {tab === 'audit' && <Audit api={api} />}
            {tab === 'figures' && <Figures api={api} />}
            {tab === 'issuer' && <Issuer api={api} />}
            {tab === 'settings' && <Settings api={api} />}
          </>
        )}
      </main>
    </>
  );
}

function SignIn({ onToken }: { onToken: (t: string) => void }) {
  const { t } = useI18n();
  const [value, setValue] = useState('');
  const check = useAction(async () => {
    await createApi(async () => value.trim()).get('/v1/operator/participants?limit=1');
    onToken(value.trim());
  });
  return (
    <div className="center">
      <Section title={t('common.signIn')}>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void check.run();
          }}
        >
          <Field label={t('console.token')} name="operatorToken" type="password" value={value} onChange={setValue} autoComplete="current-password" />
          <button type="submit" disabled={value.trim() === '' || check.busy} data-testid="console-sign-in">
            {t('common.signIn')}
          </button>
        </form>
        <ErrorBox error={check.error} />
        <p className="muted">{t('console.tokenNote')}</p>
      </Section>
    </div>
  );
}

function Participants({ api }: { api: Api }) {
  const { t, date } = useI18n();
  const list = useLoad(async () => (await api.get<{ items: any[] }>('/v1/operator/participants?limit=200')).items, [api]);
  const [selected, setSelected] = useState<string | undefined>();
  const [kind, setKind] = useState('wallet');
  const [name, setName] = useState('');
  const [country, setCountry] = useState('CN');
  const [currencies, setCurrencies] = useState('CNY');
  const [webhookUrl, setWebhookUrl] = useState('');
  const [secret, setSecret] = useState<{ clientId: string; clientSecret: string; webhookSecret: string } | undefined>();
  const create = useAction(async () => {
    const r = await api.post('/v1/operator/participants', {
      kind,
      name: name.trim(),
      country: country.trim().toUpperCase(),
      currencies: currencies.split(/[,\s]+/).filter((c) => c !== '').map((c) => c.toUpperCase()),
      // Optional: the participant can set or change it later itself (PATCH /v1/me).
      ...(webhookUrl.trim() !== '' ? { webhookUrl: webhookUrl.trim() } : {}),
    });
    setSecret({ clientId: r.credential.clientId, clientSecret: r.credential.clientSecret, webhookSecret: r.webhookSecret });
    setName('');
    setWebhookUrl('');
    await list.reload();
  });
  const [confirming, setConfirming] = useState<string | undefined>();
  const act = useAction(async (id: string, action: 'suspend' | 'reactivate') => {
    await api.post(`/v1/operator/participants/${id}/${action}`);
    setConfirming(undefined);
    await list.reload();
  });
  return (
    <>
      <Section title={t('tab.participants')} testId="participants" actions={<button type="button" className="secondary" onClick={() => void list.reload()}>{t('common.refresh')}</button>}>
        <ErrorBox error={list.error ?? act.error} />
        <table>
          <thead>
            <tr>
              <th>{t('common.name')}</th>
              <th>{t('common.kind')}</th>
              <th>{t('p.country')}</th>
              <th>{t('common.status')}</th>
              <th>{t('p.created')}</th>
              <th>{t('common.actions')}</th>
            </tr>
          </thead>
          <tbody>
            {(list.data ?? []).map((p) => (
              <tr key={p.id} data-testid="participant-row" data-participant-id={p.id}>
                <td>
                  <button type="button" className="secondary" onClick={() => setSelected(p.id)} aria-label={`${t('p.credentials')}: ${p.name}`}>
                    {p.name}
                  </button>
                  <div className="muted mono">{p.id}</div>
                  <div className="muted mono" data-testid="participant-webhook-url">
                    {p.webhookUrl ?? t('p.noWebhook')}
                  </div>
                </td>
                <td>{p.kind}</td>
                <td>{p.country}</td>
                <td>
                  <span className={`pill ${p.status}`}>{t(`status.${p.status}`)}</span>
                </td>
                <td>{date(p.createdAt)}</td>
                <td>
                  {p.status === 'active' ? (
                    confirming === p.id ? (
                      <span role="group" aria-label={t('p.suspendConfirm').replace('{name}', p.name)} className="row">
                        <button type="button" onClick={() => void act.run(p.id, 'suspend')} disabled={act.busy} data-testid="participant-suspend-yes">
                          {t('p.suspendYes')}
                        </button>
                        <button type="button" className="secondary" onClick={() => setConfirming(undefined)}>
                          {t('common.cancel')}
                        </button>
                      </span>
                    ) : (
                      <button type="button" className="secondary" onClick={() => setConfirming(p.id)} data-testid="participant-suspend">
                        {t('p.suspend')}
                      </button>
                    )
                  ) : (
                    <button type="button" onClick={() => void act.run(p.id, 'reactivate')}>
                      {t('p.reactivate')}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      {selected !== undefined && <Credentials api={api} participantId={selected} />}
      <Section title={t('p.create')}>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void create.run();
          }}
        >
          <div className="row">
            <Select label={t('common.kind')} name="kind" value={kind} onChange={setKind} options={['issuer', 'wallet', 'merchant', 'acquirer'].map((k) => ({ value: k, label: k }))} />
            <Field label={t('common.name')} name="name" value={name} onChange={setName} />
            <Field label={t('p.country')} name="country" value={country} onChange={setCountry} />
            <Field label={t('p.currencies')} name="currencies" value={currencies} onChange={setCurrencies} />
            <Field label={t('p.webhookUrl')} name="webhookUrl" value={webhookUrl} onChange={setWebhookUrl} />
          </div>
          <button type="submit" disabled={create.busy || name.trim() === ''} data-testid="participant-create">
            {t('p.create')}
          </button>
        </form>
        <ErrorBox error={create.error} />
        {secret !== undefined && (
          <>
            <p className="warn" data-testid="participant-secret">
              client_id <span className="mono">{secret.clientId}</span> · {t('p.secretOnce')}: <span className="mono">{secret.clientSecret}</span>
            </p>
            <p className="warn" data-testid="participant-webhook-secret">
              {t('p.webhookSecretOnce')}: <span className="mono">{secret.webhookSecret}</span>
            </p>
          </>
        )}
      </Section>
    </>
  );
}

function Credentials({ api, participantId }: { api: Api; participantId: string }) {
  const { t, date } = useI18n();
  const p = useLoad(() => api.get<any>(`/v1/operator/participants/${participantId}`), [api, participantId]);
  const [secret, setSecret] = useState<{ clientId: string; clientSecret: string } | undefined>();
  const rotate = useAction(async () => {
    const r = await api.post(`/v1/operator/participants/${participantId}/credentials`);
    setSecret({ clientId: r.clientId ?? r.id, clientSecret: r.clientSecret ?? r.secret });
    await p.reload();
  });
  const [confirming, setConfirming] = useState<string | undefined>();
  const revoke = useAction(async (id: string) => {
    await api.post(`/v1/operator/participants/${participantId}/credentials/${id}/revoke`);
    setConfirming(undefined);
    await p.reload();
  });
  const creds: any[] = p.data?.credentials ?? [];
  return (
    <Section title={`${t('p.credentials')} — ${p.data?.participant?.name ?? participantId}`} testId="credentials">
      <ErrorBox error={p.error ?? rotate.error ?? revoke.error} />
      <table>
        <tbody>
          {creds.map((c) => (
            <tr key={c.id ?? c.clientId} data-testid="credential-row">
              <td className="mono">{c.id ?? c.clientId}</td>
              <td>{c.createdAt !== undefined ? date(c.createdAt) : ''}</td>
              <td>{c.revokedAt !== null && c.revokedAt !== undefined ? <span className="pill suspended">{t('status.revoked')}</span> : <span className="pill active">{t('status.active')}</span>}</td>
              <td>
                {(c.revokedAt === null || c.revokedAt === undefined) &&
                  (confirming === (c.id ?? c.clientId) ? (
                    <span role="group" aria-label={t('p.revokeConfirm')} className="row">
                      <button type="button" onClick={() => void revoke.run(c.id ?? c.clientId)} disabled={revoke.busy} data-testid="credential-revoke-yes">
                        {t('p.revoke')}
                      </button>
                      <button type="button" className="secondary" onClick={() => setConfirming(undefined)}>
                        {t('common.cancel')}
                      </button>
                    </span>
                  ) : (
                    <button type="button" className="secondary" onClick={() => setConfirming(c.id ?? c.clientId)} data-testid="credential-revoke">
                      {t('p.revoke')}
                    </button>
                  ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <button type="button" onClick={() => void rotate.run()} disabled={rotate.busy} data-testid="credential-rotate">
        {t('p.rotate')}
      </button>
      {secret !== undefined && (
        <p className="warn" data-testid="credential-secret">
          client_id <span className="mono">{secret.clientId}</span> · {t('p.secretOnce')}: <span className="mono">{secret.clientSecret}</span>
        </p>
      )}
    </Section>
  );
}

/**
 * Live transactions: the hub's money movements (GET /v1/operator/transactions — ledger transfers with the participants
 * on each side and the payment they belong to), polled, searched on the hub, paged with the cursor.
 */
function Transactions({ api }: { api: Api }) {
  const { t, date } = useI18n();
  const [q, setQ] = useState('');
  const [older, setOlder] = useState<{ cursor: string; items: any[] }[]>([]);
  const query = q.trim() === '' ? '' : `&q=${encodeURIComponent(q.trim())}`;
  const list = useLoad(() => api.get<{ items: any[]; nextCursor: string | null }>(`/v1/operator/transactions?limit=50${query}`), [api, query], 3000);
  // A new search starts from the newest page again.
  useEffect(() => setOlder([]), [api, query]);
  const more = useAction(async () => {
    const cursor = older.at(-1)?.cursor ?? list.data?.nextCursor;
    if (cursor === undefined || cursor === null) return;
    const page = await api.get<{ items: any[]; nextCursor: string | null }>(`/v1/operator/transactions?limit=50${query}&cursor=${encodeURIComponent(cursor)}`);
    setOlder((o) => [...o, { cursor: page.nextCursor ?? '', items: page.items }]);
  });
  // The live first page moves while older pages stay: keep each transfer once.
  const rows = [...new Map([...(list.data?.items ?? []), ...older.flatMap((p) => p.items)].map((r) => [r.id as string, r])).values()];
  const hasMore = older.length > 0 ? older.at(-1)?.cursor !== '' : (list.data?.nextCursor ?? null) !== null;
  const side = (s: any) => s.participantName ?? s.accountId;
  return (
    <Section title={t('tab.transactions')} testId="transactions">
      <div className="row">
        <Field label={t('common.search')} name="search" value={q} onChange={setQ} />
        <span className="muted">{t('tx.live')}</span>
      </div>
      <ErrorBox error={list.error ?? more.error} />
      <table>
        <thead>
          <tr>
            <th>{t('common.date')}</th>
            <th>{t('tx.kind')}</th>
            <th>{t('tx.debit')}</th>
            <th>{t('tx.credit')}</th>
            <th>{t('tx.purpose')}</th>
            <th>{t('tx.reference')}</th>
            <th style={{ textAlign: 'right' }}>{t('common.amount')}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.id} data-testid="transaction-row" data-kind={r.kind}>
              <td>{date(r.createdAt)}</td>
              <td>
                {r.kind}
                {r.phase !== 'single_phase' && <span className="muted"> · {r.phase}</span>}
              </td>
              <td>{side(r.debit)}</td>
              <td>{side(r.credit)}</td>
              <td>{r.purpose}</td>
              <td className="mono" title={r.id}>
                {r.reference !== null ? `${r.reference.id}${r.reference.description !== null ? ` · ${r.reference.description}` : ''}` : r.id}
              </td>
              <td style={{ textAlign: 'right' }}>
                <Money amount={r.amount.amount} currency={r.amount.currency} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data !== undefined && rows.length === 0 && <p className="muted">{t('common.none')}</p>}
      {hasMore && (
        <button type="button" className="secondary" data-testid="transactions-more" onClick={() => void more.run()}>
          {t('tx.more')}
        </button>
      )}
    </Section>
  );
}

/** A risk rule in words (risk.rule.<rule>), or its code. */
function riskRule(rule: string, t: (key: string) => string): string {
  const w = t(`risk.rule.${rule}`);
  return w === `risk.rule.${rule}` ? rule : w;
}

/** Minor units (the alert's context) as a decimal string: two places, none for zero-decimal currencies. */
function minorToAmount(minor: string, currency: string): string {
  const places = ['JPY', 'KRW', 'VND', 'IDR', 'CLP', 'ISK', 'HUF', 'TWD'].includes(currency) ? 0 : 2;
  if (places === 0) return minor;
  const neg = minor.startsWith('-');
  const digits = (neg ? minor.slice(1) : minor).padStart(3, '0');
  return `${neg ? '-' : ''}${digits.slice(0, -2)}.${digits.slice(-2)}`;
}

function Risk({ api }: { api: Api }) {
  const { t, date } = useI18n();
  const [status, setStatus] = useState('open');
  const list = useLoad(async () => (await api.get<{ items: any[] }>(`/v1/operator/risk/alerts?status=${status}`)).items, [api, status], 5000);
  const [resolution, setResolution] = useState('reviewed: legitimate');
  const [confirming, setConfirming] = useState<string | undefined>();
  const resolve = useAction(async (id: string) => {
    await api.post(`/v1/operator/risk/alerts/${id}/resolve`, { resolution });
    setConfirming(undefined);
    await list.reload();
  });
  return (
    <Section title={t('tab.risk')} testId="risk">
      <div className="row">
        <Select label={t('common.status')} name="risk-status" value={status} onChange={setStatus} options={[{ value: 'open', label: t('risk.open') }, { value: 'resolved', label: t('risk.resolved') }]} />
        <Field label={t('risk.resolution')} name="resolution" value={resolution} onChange={setResolution} />
      </div>
      <ErrorBox error={list.error ?? resolve.error} />
      <ul className="activity">
        {(list.data ?? []).map((a) => (
          <li key={a.id} className="activity-row" data-testid="risk-alert-row" data-alert-id={a.id} data-status={a.status}>
            <div>
              <div className="title">
                {(a.reasons as { rule?: string; message?: string }[]).map((r, i) => (
                  <span key={i}>
                    {i > 0 ? ' · ' : ''}
                    {typeof r === 'string' ? r : riskRule(r.rule ?? '', t)} <span className="sub mono">({typeof r === 'string' ? r : r.rule})</span>
                  </span>
                ))}
              </div>
              <div className="sub">
                {date(a.createdAt)} · {a.channel} · {t('risk.score')} {a.score} · <span className={`pill ${a.decision}`}>{a.decision}</span>
              </div>
              <div className="sub mono">
                {t('risk.customer')} {a.customerId} · {a.participantId}
              </div>
              {a.status === 'open' ? (
                confirming === a.id ? (
                  <span role="group" aria-label={t('risk.confirm')} className="row">
                    <button type="button" onClick={() => void resolve.run(a.id)} disabled={resolve.busy} data-testid="risk-resolve-yes">
                      {t('risk.resolve')}: {resolution}
                    </button>
                    <button type="button" className="secondary" onClick={() => setConfirming(undefined)}>
                      {t('common.cancel')}
                    </button>
                  </span>
                ) : (
                  <button type="button" onClick={() => setConfirming(a.id)} data-testid="risk-resolve">
                    {t('risk.resolve')}
                  </button>
                )
              ) : (
                <div className="sub">{a.resolution}</div>
              )}
            </div>
            <div className="amt">
              {a.context?.amountMinor !== undefined && a.context?.currency !== undefined ? <Money amount={minorToAmount(String(a.context.amountMinor), String(a.context.currency))} currency={String(a.context.currency)} /> : null}
            </div>
          </li>
        ))}
      </ul>
      {list.data?.length === 0 && <p className="muted">{t('common.none')}</p>}
    </Section>
  );
}

function Webhooks({ api }: { api: Api }) {
  const { t, date } = useI18n();
  const word = (x: string) => (t(`status.${x}`) === `status.${x}` ? x : t(`status.${x}`));
  const list = useLoad(async () => (await api.get<{ items: any[] }>('/v1/operator/webhooks/deliveries?limit=100')).items, [api], 5000);
  const [resent, setResent] = useState<string | undefined>();
  const redeliver = useAction(async (id: string) => {
    setResent(undefined);
    await api.post(`/v1/operator/webhooks/deliveries/${encodeURIComponent(id)}/redeliver`);
    setResent(id);
    await list.reload();
  });
  return (
    <Section title={t('tab.webhooks')} testId="webhooks">
      <ErrorBox error={list.error ?? redeliver.error} />
      {resent !== undefined && (
        <p className="ok" role="status" data-testid="webhook-resent">
          {t('wh.resent')} ✓
        </p>
      )}
      <table>
        <thead>
          <tr>
            <th>{t('common.date')}</th>
            <th>{t('wh.type')}</th>
            <th>{t('common.status')}</th>
            <th>{t('wh.attempts')}</th>
            <th>URL</th>
            <th>{t('wh.reason')}</th>
            <th>
              <span className="sr-only">{t('wh.redeliver')}</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {(list.data ?? []).map((d) => (
            <tr key={d.id} data-testid="webhook-row">
              <td>{date(d.createdAt)}</td>
              <td>{d.type ?? d.eventType}</td>
              <td>
                <span className={`pill ${d.status}`}>{word(d.status)}</span>
              </td>
              <td>{d.attempts}</td>
              <td className="mono">{d.url ?? ''}</td>
              <td>{d.lastError !== null && d.lastError !== undefined ? <span className="mono">{d.lastError}</span> : d.status === 'delivered' ? '' : t('wh.noReason')}</td>
              <td>
                {d.status !== 'pending' && (
                  <button type="button" className="secondary" onClick={() => void redeliver.run(d.id)} disabled={redeliver.busy} data-testid="webhook-redeliver">
                    {t('wh.redeliver')}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data?.length === 0 && <p className="muted">{t('common.none')}</p>}
    </Section>
  );
}

function Audit({ api }: { api: Api }) {
  const { t, date } = useI18n();
  const list = useLoad(async () => (await api.get<{ items: any[] }>('/v1/operator/audit?limit=50')).items, [api]);
  const [result, setResult] = useState<any>();
  const verify = useAction(async () => setResult(await api.post('/v1/operator/audit/verify')));
  return (
    <Section
      title={t('tab.audit')}
      testId="audit"
      actions={
        <button type="button" onClick={() => void verify.run()} disabled={verify.busy} data-testid="audit-verify">
          {t('audit.verify')}
        </button>
      }
    >
      <ErrorBox error={verify.error ?? list.error} />
      {result !== undefined && (
        <p className={result.ok === true ? 'ok' : 'error'} role="status" data-testid="audit-result">
          {result.ok === true ? t('audit.ok') : t('audit.broken')} — {result.checked} {t('audit.checked')}
          {result.headHash !== undefined && <span className="mono"> · {String(result.headHash).slice(0, 24)}…</span>}
          {result.firstBad !== undefined && <span className="mono"> · {JSON.stringify(result.firstBad)}</span>}
        </p>
      )}
      <table>
        <tbody>
          {(list.data ?? []).map((r) => (
            <tr key={r.id}>
              <td>{date(r.createdAt ?? r.at)}</td>
              <td>{r.action}</td>
              <td className="mono">{r.actor?.participantId ?? r.actor?.type ?? ''}</td>
              <td className="mono">{r.object !== undefined && r.object !== null ? `${r.object.type} ${r.object.id}` : (r.objectId ?? '')}</td>
              <td className="mono">{r.hash !== undefined && r.hash !== null ? `${String(r.hash).slice(0, 12)}…` : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}

/** Requests/s and p99 from /metrics (Prometheus text): counter deltas between polls, p99 from the histogram buckets. */
export function parseMetrics(text: string): { total: number; errors: number; buckets: Map<number, number>; count: number } {
  let total = 0;
  let errors = 0;
  let count = 0;
  const buckets = new Map<number, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([0-9.eE+-]+|NaN|\+Inf)/.exec(line);
    if (m === null) continue;
    const [, name = '', labels = '', v = '0'] = m;
    const value = Number(v);
    if (name.endsWith('_requests_total')) {
      total += value;
      if (/status="5/.test(labels)) errors += value;
    } else if (name.endsWith('_duration_seconds_bucket')) {
      const le = /le="([^"]+)"/.exec(labels)?.[1];
      if (le !== undefined) {
        const bound = le === '+Inf' ? Infinity : Number(le);
        buckets.set(bound, (buckets.get(bound) ?? 0) + value);
      }
    } else if (name.endsWith('_duration_seconds_count')) count += value;
  }
  return { total, errors, buckets, count };
}

function quantile(prev: ReturnType<typeof parseMetrics> | undefined, cur: ReturnType<typeof parseMetrics>, q: number): number | undefined {
  const bounds = [...cur.buckets.keys()].sort((a, b) => a - b);
  const n = cur.count - (prev?.count ?? 0);
  if (n <= 0) return undefined;
  for (const b of bounds) {
    const c = (cur.buckets.get(b) ?? 0) - (prev?.buckets.get(b) ?? 0);
    if (c >= q * n) return b;
  }
  return undefined;
}

function Figures({ api }: { api: Api }) {
  const { t, lang } = useI18n();
  const prev = useRef<{ at: number; m: ReturnType<typeof parseMetrics> } | undefined>(undefined);
  const [fig, setFig] = useState<{ rps: number; p99?: number; total: number; errors: number } | undefined>();
  const load = useLoad(
    async () => {
      // /metrics takes the operator credential (the console's own).
      const m = parseMetrics(await api.text('/metrics'));
      const now = performance.now();
      const p = prev.current;
      const p99 = quantile(p?.m, m, 0.99);
      setFig({ rps: p === undefined ? 0 : Math.max(0, (m.total - p.m.total) / ((now - p.at) / 1000)), ...(p99 !== undefined ? { p99 } : {}), total: m.total, errors: m.errors });
      prev.current = { at: now, m };
      return true;
    },
    [api],
    2000,
  );
  const nf = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
  return (
    <div className="grid" data-testid="figures">
      <ErrorBox error={load.error} />
      <Section title={t('fig.rps')}>
        <div className="figure">{fig === undefined ? '…' : nf.format(fig.rps)}</div>
      </Section>
      <Section title={t('fig.p99')}>
        <div className="figure">{fig?.p99 === undefined ? '—' : fig.p99 === Infinity ? '> 10 s' : `≤ ${nf.format(fig.p99 * 1000)} ms`}</div>
      </Section>
      <Section title={t('fig.total')}>
        <div className="figure">{fig === undefined ? '…' : nf.format(fig.total)}</div>
      </Section>
      <Section title={t('fig.errors')}>
        <div className="figure">{fig === undefined ? '…' : nf.format(fig.errors)}</div>
      </Section>
    </div>
  );
}

/** The issuer view acts as a demo bank through a short-lived token the operator obtains (POST /demo/v1/issuer-session). */
function Issuer({ api }: { api: Api }) {
  const { t } = useI18n();
  const [bank, setBank] = useState('bank-a');
  const [bankApi, setBankApi] = useState<{ api: Api; name: string } | undefined>();
  const open = useAction(async () => {
    const s = await api.post<{ accessToken: string; bank: { name: string } }>('/demo/v1/issuer-session', { bank });
    setBankApi({ api: createApi(async () => s.accessToken), name: s.bank.name });
  });
  return (
    <>
      <Section title={t('tab.issuer')}>
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            void open.run();
          }}
        >
          <Select label={t('iss.bank')} name="bank" value={bank} onChange={setBank} options={[{ value: 'bank-a', label: 'bank-a' }, { value: 'bank-b', label: 'bank-b' }]} />
          <button type="submit">{t('iss.open')}</button>
        </form>
        <ErrorBox error={open.error} />
      </Section>
      {bankApi !== undefined && <IssuerDesk api={bankApi.api} name={bankApi.name} />}
    </>
  );
}
