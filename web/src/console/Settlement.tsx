import { useEffect, useState } from 'react';
import type { Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ErrorBox, Field, Money, Section, Select, useAction, useLoad } from '../shared/ui.tsx';

/**
 * The operator's settlement page: windows per currency (close the open one, record the settlement bank's confirmation
 * of a closed one), a window's net positions as a table and a chart, its instructions and ISO 20022 downloads, and each
 * participant's positions (liquidity, cap, what it may still send, what is not yet settled).
 */
interface WireMoney {
  amount: string;
  currency: string;
}
interface Window {
  id: string;
  currency: string;
  seq: string;
  status: 'open' | 'closed' | 'settled';
  openedAt: string;
  closedAt: string | null;
  settledAt: string | null;
  settlementReference: string | null;
}
interface Net {
  participantId: string;
  sent: WireMoney;
  received: WireMoney;
  sentCount: number;
  receivedCount: number;
  netPosition: WireMoney;
}
interface Report {
  window: Window;
  netPositions: Net[];
  instructions: { id: string; fromParticipantId: string; toParticipantId: string; amount: WireMoney }[];
}

/** Saves a document the API answers (the operator's bearer credential goes with it, so a plain link cannot). */
async function download(api: Api, path: string, filename: string) {
  const text = await api.text(path);
  const url = URL.createObjectURL(new Blob([text], { type: 'application/xml' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function SettlementPage({ api }: { api: Api }) {
  const { t } = useI18n();
  const participants = useLoad(async () => (await api.get<{ items: { id: string; name: string }[] }>('/v1/operator/participants?limit=200')).items, [api]);
  const nameOf = (id: string) => participants.data?.find((p) => p.id === id)?.name ?? id;
  const [filter, setFilter] = useState('');
  const windows = useLoad(async () => (await api.get<{ items: Window[] }>(`/v1/operator/settlement/windows?limit=50${filter === '' ? '' : `&currency=${filter}`}`)).items, [api, filter]);
  const [selected, setSelected] = useState<string | undefined>();
  const currencies = [...new Set((windows.data ?? []).map((w) => w.currency))].sort();
  const [closeCurrency, setCloseCurrency] = useState('');
  useEffect(() => {
    if (closeCurrency === '' && currencies[0] !== undefined) setCloseCurrency(currencies[0]);
  }, [currencies.join(',')]);
  const [confirming, setConfirming] = useState(false);
  const close = useAction(async () => {
    const r = await api.post<Report>('/v1/operator/settlement/windows/close', { currency: closeCurrency.trim().toUpperCase() });
    setConfirming(false);
    setSelected(r.window.id);
    await windows.reload();
  });
  const { date } = useI18n();
  return (
    <>
      <Section title={t('stl.windows')} testId="settlement-windows" actions={<button type="button" className="secondary" onClick={() => void windows.reload()}>{t('common.refresh')}</button>}>
        <ErrorBox error={windows.error ?? close.error} />
        <div className="row">
          <Select label={t('stl.filter')} name="settlement-currency" value={filter} onChange={setFilter} options={[{ value: '', label: t('stl.allCurrencies') }, ...currencies.map((c) => ({ value: c, label: c }))]} />
          <Field label={t('stl.closeCurrency')} name="close-currency" value={closeCurrency} onChange={setCloseCurrency} />
          {confirming ? (
            <span role="group" aria-label={t('stl.closeConfirm').replace('{currency}', closeCurrency)} className="row">
              <button type="button" onClick={() => void close.run()} disabled={close.busy} data-testid="settlement-close-yes">
                {t('stl.closeYes').replace('{currency}', closeCurrency)}
              </button>
              <button type="button" className="secondary" onClick={() => setConfirming(false)}>
                {t('common.cancel')}
              </button>
            </span>
          ) : (
            <button type="button" onClick={() => setConfirming(true)} disabled={!/^[A-Za-z]{3}$/.test(closeCurrency.trim())} data-testid="settlement-close">
              {t('stl.close')}
            </button>
          )}
        </div>
        <table>
          <thead>
            <tr>
              <th>{t('stl.window')}</th>
              <th>{t('common.currency')}</th>
              <th>{t('common.status')}</th>
              <th>{t('stl.opened')}</th>
              <th>{t('stl.closed')}</th>
              <th>{t('stl.reference')}</th>
            </tr>
          </thead>
          <tbody>
            {(windows.data ?? []).map((w) => (
              <tr key={w.id} data-testid="settlement-window-row" data-window-id={w.id} data-status={w.status}>
                <td>
                  <button type="button" className="secondary mono" aria-pressed={selected === w.id} onClick={() => setSelected(w.id)}>
                    {w.id}
                  </button>
                </td>
                <td>{w.currency}</td>
                <td>
                  <span className={`pill ${w.status}`}>{t(`stl.status.${w.status}`)}</span>
                </td>
                <td>{date(w.openedAt)}</td>
                <td>{w.closedAt === null ? '—' : date(w.closedAt)}</td>
                <td className="mono">{w.settlementReference ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {windows.data !== undefined && windows.data.length === 0 && <p className="muted">{t('common.none')}</p>}
      </Section>
      {selected !== undefined && <WindowReport api={api} windowId={selected} nameOf={nameOf} onChange={() => void windows.reload()} />}
      <Positions api={api} participants={participants.data ?? []} />
    </>
  );
}

function WindowReport({ api, windowId, nameOf, onChange }: { api: Api; windowId: string; nameOf: (id: string) => string; onChange: () => void }) {
  const { t } = useI18n();
  const report = useLoad(() => api.get<Report>(`/v1/operator/settlement/windows/${encodeURIComponent(windowId)}`), [api, windowId]);
  const [reference, setReference] = useState('');
  const settle = useAction(async () => {
    await api.post(`/v1/operator/settlement/windows/${encodeURIComponent(windowId)}/settlement`, { reference: reference.trim() });
    setReference('');
    await report.reload();
    onChange();
  });
  const get = useAction(async (path: string, filename: string) => download(api, path, filename));
  const r = report.data;
  const base = `/v1/operator/settlement/windows/${encodeURIComponent(windowId)}`;
  return (
    <Section title={`${t('stl.report')} · ${windowId}`} testId="settlement-report">
      <ErrorBox error={report.error ?? settle.error ?? get.error} />
      {r !== undefined && (
        <>
          <p>
            <span className={`pill ${r.window.status}`} data-testid="settlement-report-status">
              {t(`stl.status.${r.window.status}`)}
            </span>
            {r.window.status === 'open' && <span className="muted"> {t('stl.openNote')}</span>}
          </p>
          <h3>{t('stl.nets')}</h3>
          <table data-testid="settlement-nets">
            <thead>
              <tr>
                <th>{t('stl.participant')}</th>
                <th style={{ textAlign: 'right' }}>{t('stl.sent')}</th>
                <th style={{ textAlign: 'right' }}>{t('stl.received')}</th>
                <th style={{ textAlign: 'right' }}>{t('stl.net')}</th>
                <th>{t('stl.downloads')}</th>
              </tr>
            </thead>
            <tbody>
              {r.netPositions.map((n) => (
                <tr key={n.participantId} data-testid="settlement-net-row" data-participant-id={n.participantId} data-net={n.netPosition.amount}>
                  <td>{nameOf(n.participantId)}</td>
                  <td style={{ textAlign: 'right' }}>
                    <Money amount={n.sent.amount} currency={n.sent.currency} /> <span className="muted">({n.sentCount})</span>
                  </td>
                  <td style={{ textAlign: 'right' }}>
                    <Money amount={n.received.amount} currency={n.received.currency} /> <span className="muted">({n.receivedCount})</span>
                  </td>
                  <td style={{ textAlign: 'right' }}>
                    <Money amount={n.netPosition.amount} currency={n.netPosition.currency} />
                  </td>
                  <td>
                    <button
                      type="button"
                      className="secondary"
                      data-testid="download-camt053"
                      aria-label={`camt.053 · ${nameOf(n.participantId)}`}
                      onClick={() => void get.run(`${base}/participants/${encodeURIComponent(n.participantId)}/camt053`, `camt053-${windowId}-${n.participantId}.xml`)}
                    >
                      camt.053
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {r.netPositions.length === 0 && <p className="muted">{r.window.status === 'open' ? t('stl.notClosed') : t('common.none')}</p>}
          {r.netPositions.length > 0 && <NetChart nets={r.netPositions} nameOf={nameOf} />}
          <h3>{t('stl.instructions')}</h3>
          <table data-testid="settlement-instructions">
            <thead>
              <tr>
                <th>{t('stl.from')}</th>
                <th>{t('stl.to')}</th>
                <th style={{ textAlign: 'right' }}>{t('common.amount')}</th>
              </tr>
            </thead>
            <tbody>
              {r.instructions.map((i) => (
                <tr key={i.id} data-testid="settlement-instruction-row">
                  <td>{nameOf(i.fromParticipantId)}</td>
                  <td>{nameOf(i.toParticipantId)}</td>
                  <td style={{ textAlign: 'right' }}>
                    <Money amount={i.amount.amount} currency={i.amount.currency} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {r.instructions.length === 0 && <p className="muted">{t('common.none')}</p>}
          <div className="row">
            <button type="button" className="secondary" data-testid="download-pacs008" onClick={() => void get.run(`${base}/pacs008`, `pacs008-${windowId}.xml`)} disabled={r.window.status === 'open'}>
              {t('stl.pacs008')}
            </button>
            <button type="button" className="secondary" data-testid="download-pacs002" onClick={() => void get.run(`${base}/pacs002`, `pacs002-${windowId}.xml`)} disabled={r.window.status === 'open'}>
              {t('stl.pacs002')}
            </button>
          </div>
          {r.window.status === 'closed' && (
            <form
              className="row"
              onSubmit={(e) => {
                e.preventDefault();
                void settle.run();
              }}
            >
              <Field label={t('stl.bankReference')} name="settlement-reference" value={reference} onChange={setReference} />
              <button type="submit" disabled={settle.busy || reference.trim() === ''} data-testid="settlement-record">
                {t('stl.record')}
              </button>
            </form>
          )}
        </>
      )}
    </Section>
  );
}

/** Net positions as bars either side of zero: owed (right, received more) and owing (left). */
function NetChart({ nets, nameOf }: { nets: readonly Net[]; nameOf: (id: string) => string }) {
  const { t, money } = useI18n();
  const values = nets.map((n) => ({ n, v: Number(n.netPosition.amount) }));
  const max = Math.max(1e-9, ...values.map((x) => Math.abs(x.v)));
  const rowH = 28;
  const labelW = 180;
  const half = 200;
  const width = labelW + half * 2 + 10;
  const height = rowH * values.length + 10;
  const summary = values.map((x) => `${nameOf(x.n.participantId)} ${money(x.n.netPosition.amount, x.n.netPosition.currency)}`).join('; ');
  return (
    <figure className="net-chart" data-testid="settlement-chart">
      <svg viewBox={`0 0 ${width} ${height}`} width="100%" role="img" aria-label={`${t('stl.chart')}: ${summary}`} style={{ maxWidth: width }}>
        <line x1={labelW + half} x2={labelW + half} y1={0} y2={height} stroke="currentColor" strokeWidth={1} />
        {values.map((x, k) => {
          const w = Math.max(1, Math.round((Math.abs(x.v) / max) * (half - 10)));
          const y = 5 + k * rowH;
          return (
            <g key={x.n.participantId} data-testid="settlement-chart-bar" data-net={x.n.netPosition.amount}>
              <text x={labelW - 8} y={y + rowH / 2 + 4} textAnchor="end" fontSize={13} fill="currentColor">
                {nameOf(x.n.participantId).slice(0, 24)}
              </text>
              <rect x={x.v >= 0 ? labelW + half : labelW + half - w} y={y + 4} width={w} height={rowH - 10} fill={x.v >= 0 ? '#1b7f3b' : '#b3261e'} />
            </g>
          );
        })}
      </svg>
      <figcaption className="muted">{t('stl.chartNote')}</figcaption>
    </figure>
  );
}

function Positions({ api, participants }: { api: Api; participants: readonly { id: string; name: string }[] }) {
  const { t } = useI18n();
  const [who, setWho] = useState('');
  useEffect(() => {
    if (who === '' && participants[0] !== undefined) setWho(participants[0].id);
  }, [participants.length]);
  const positions = useLoad(
    async () =>
      who === ''
        ? []
        : (await api.get<{ items: { currency: string; liquidity: WireMoney; balance: WireMoney; reserved: WireMoney; netDebitCap: WireMoney; available: WireMoney; unsettledPosition: WireMoney }[] }>(`/v1/operator/settlement/participants/${encodeURIComponent(who)}/positions`)).items,
    [api, who],
  );
  return (
    <Section title={t('stl.positions')} testId="settlement-positions" actions={<button type="button" className="secondary" onClick={() => void positions.reload()}>{t('common.refresh')}</button>}>
      <ErrorBox error={positions.error} />
      <Select label={t('stl.participant')} name="positions-participant" value={who} onChange={setWho} options={participants.map((p) => ({ value: p.id, label: p.name }))} />
      <table>
        <thead>
          <tr>
            <th>{t('common.currency')}</th>
            <th style={{ textAlign: 'right' }}>{t('stl.liquidity')}</th>
            <th style={{ textAlign: 'right' }}>{t('stl.balance')}</th>
            <th style={{ textAlign: 'right' }}>{t('stl.reserved')}</th>
            <th style={{ textAlign: 'right' }}>{t('stl.cap')}</th>
            <th style={{ textAlign: 'right' }}>{t('stl.available')}</th>
            <th style={{ textAlign: 'right' }}>{t('stl.unsettled')}</th>
          </tr>
        </thead>
        <tbody>
          {(positions.data ?? []).map((p) => (
            <tr key={p.currency} data-testid="position-row" data-currency={p.currency}>
              <td>{p.currency}</td>
              {[p.liquidity, p.balance, p.reserved, p.netDebitCap, p.available, p.unsettledPosition].map((m, k) => (
                <td key={k} style={{ textAlign: 'right' }}>
                  <Money amount={m.amount} currency={m.currency} />
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {positions.data !== undefined && positions.data.length === 0 && <p className="muted">{t('common.none')}</p>}
    </Section>
  );
}
