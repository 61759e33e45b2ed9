import { useState } from 'react';
import type { Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ConfirmBar, ErrorBox, Money, Section, TextArea, useAction, useLoad } from '../shared/ui.tsx';
import { DisputeTrail, disputeStatusWord, type Dispute } from '../wallet/Disputes.tsx';

/**
 * The issuer's disputes (GET /v1/disputes): the bank's cardholders' disputes with their status and trail; on a card
 * dispute still open and due to the bank, charge back (the merchant's settlement account pays the cardholder back) or
 * reject, each with the evidence the bank relies on, asked first.
 */
export function IssuerDisputes({ api }: { api: Api }) {
  const { t, date } = useI18n();
  const list = useLoad(async () => (await api.get<{ items: Dispute[] }>('/v1/disputes')).items, [api]);
  const [evidence, setEvidence] = useState<Record<string, string>>({});
  const [confirming, setConfirming] = useState<{ id: string; action: 'chargeback' | 'reject' } | undefined>();
  const decide = useAction(async (id: string, action: 'chargeback' | 'reject') => {
    await api.post(`/v1/disputes/${encodeURIComponent(id)}/${action}`, { evidence: (evidence[id] ?? '').trim() });
    setConfirming(undefined);
    await list.reload();
  });
  const mine = list.data ?? [];
  return (
    <Section
      title={t('iss.disputes')}
      testId="issuer-disputes"
      actions={
        <button type="button" className="secondary" onClick={() => void list.reload()}>
          {t('common.refresh')}
        </button>
      }
    >
      <ErrorBox error={list.error} />
      {list.data !== undefined && mine.length === 0 && <p className="muted">{t('common.none')}</p>}
      <ul className="activity">
        {mine.map((d) => {
          const open = d.kind === 'card' && d.status === 'opened';
          const text = (evidence[d.id] ?? '').trim();
          return (
            <li key={d.id} className="dispute-row" data-testid="issuer-dispute" data-dispute-id={d.id} data-status={d.status}>
              <div className="row" style={{ justifyContent: 'space-between' }}>
                <strong>{d.reason}</strong>
                <Money amount={d.amount.amount} currency={d.amount.currency} />
              </div>
              <div>
                <span className={`pill ${d.status}`} data-testid="issuer-dispute-status">
                  {disputeStatusWord(d.status, t)}
                </span>{' '}
                <span className="muted">
                  {t(`dispute.kind.${d.kind}`)} · <span className="mono">{d.paymentId}</span> · {t('dispute.respondBy')} {date(d.respondBy)}
                </span>
              </div>
              <DisputeTrail dispute={d} asIssuer />
              {open && (
                <>
                  <TextArea label={t('dispute.evidence')} name={`evidence-${d.id}`} rows={2} value={evidence[d.id] ?? ''} onChange={(v) => setEvidence({ ...evidence, [d.id]: v })} />
                  {confirming?.id === d.id ? (
                    <ConfirmBar
                      question={(confirming.action === 'chargeback' ? t('dispute.chargebackConfirm') : t('dispute.rejectConfirm')).replace('{amount}', `${d.amount.amount} ${d.amount.currency}`)}
                      yes={confirming.action === 'chargeback' ? t('dispute.chargeback') : t('dispute.reject')}
                      busy={decide.busy}
                      onYes={() => void decide.run(d.id, confirming.action)}
                      onCancel={() => setConfirming(undefined)}
                      yesTestId="issuer-dispute-yes"
                    />
                  ) : (
                    <div className="row">
                      <button type="button" disabled={text === ''} onClick={() => setConfirming({ id: d.id, action: 'chargeback' })} data-testid="issuer-chargeback">
                        {t('dispute.chargeback')}
                      </button>
                      <button type="button" className="secondary" disabled={text === ''} onClick={() => setConfirming({ id: d.id, action: 'reject' })} data-testid="issuer-reject">
                        {t('dispute.reject')}
                      </button>
                    </div>
                  )}
                </>
              )}
            </li>
          );
        })}
      </ul>
      <ErrorBox error={decide.error} />
    </Section>
  );
}
