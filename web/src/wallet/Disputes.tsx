import { useState } from 'react';
import type { Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ErrorBox, Field, Money, Section, useAction, useLoad } from '../shared/ui.tsx';
import type { MoneyWire } from './accounts.tsx';
import type { WalletSession } from './session.ts';

export interface DisputeStep { seq: number; participantId: string | null; action: string; evidence: string | null; amount: MoneyWire | null; at: string }
export interface Dispute { id: string; kind: 'card' | 'p2p'; paymentId: string; customerId: string | null; issuerParticipantId: string; respondentParticipantId: string; walletParticipantId: string; amount: MoneyWire; reason: string; status: string; respondBy: string; createdAt: string; steps: DisputeStep[] }

/** A step of a dispute's trail in words of the page's language (dispute.step.<action>), or the action as it came. */
export function stepWord(action: string, t: (key: string) => string): string {
  const key = `dispute.step.${action}`;
  const w = t(key);
  return w === key ? action : w;
}

export function disputeStatusWord(status: string, t: (key: string) => string): string {
  const key = `dispute.status.${status}`;
  const w = t(key);
  return w === key ? status : w;
}

/** The trail of a dispute: each step, who acted (the wallet, the bank, the merchant's side, the hub), the amount moved; `asIssuer` words it for the bank's desk. */
export function DisputeTrail({ dispute, asIssuer }: { dispute: Dispute; asIssuer?: boolean }) {
  const { t, date } = useI18n();
  const who = (id: string | null) => (id === null ? t('dispute.who.hub') : id === dispute.walletParticipantId ? t(asIssuer === true ? 'dispute.who.holderWallet' : 'dispute.who.wallet') : id === dispute.issuerParticipantId ? t(asIssuer === true ? 'dispute.who.you' : 'dispute.who.issuer') : id === dispute.respondentParticipantId ? t('dispute.who.respondent') : id);
  return (
    <ol className="trail" data-testid="dispute-trail">
      {dispute.steps.map((s) => (
        <li key={s.seq} data-action={s.action}>
          {date(s.at)} · {who(s.participantId)}: {stepWord(s.action, t)}
          {s.amount !== null && (
            <>
              {' '}
              <Money amount={s.amount.amount} currency={s.amount.currency} />
            </>
          )}
          {s.evidence !== null && <span className="muted"> — {s.evidence}</span>}
        </li>
      ))}
    </ol>
  );
}

/** The customer's disputes (GET /v1/disputes: a customer session lists its own customer's), newest first. */
export function useMyDisputes(api: Api, session: WalletSession) {
  return useLoad(async () => (await api.get<{ items: Dispute[] }>(`/v1/disputes?customerId=${encodeURIComponent(session.customerId)}`)).items, [api]);
}

/**
 * "Dispute this payment" (POST /v1/wallet/disputes: a payment the customer made, its reason, optionally part of its
 * amount) and the customer's disputes with their status and trail (GET /v1/disputes, a customer session sees its own).
 * `payment` is the payment the customer chose in their history or payment detail; a card payment made with a card in
 * the wallet can also be named by the reference on its receipt.
 */
export function Disputes({ api, session, list, payment, onClear }: { api: Api; session: WalletSession; list: ReturnType<typeof useMyDisputes>; payment?: { kind: 'card' | 'p2p'; id: string; title: string; amount: MoneyWire } | undefined; onClear?: () => void }) {
  const { t } = useI18n();
  const [reference, setReference] = useState('');
  const [reason, setReason] = useState('');
  const [amount, setAmount] = useState('');
  const [opened, setOpened] = useState<string | undefined>();
  const ref = payment?.id ?? reference.trim();
  const kind = payment?.kind ?? (ref.startsWith('tr') ? 'p2p' : 'card');
  const open = useAction(async () => {
    const body: Record<string, unknown> = { customerId: session.customerId, reason: reason.trim(), ...(kind === 'card' ? { cardPaymentId: ref } : { transferId: ref }) };
    if (amount.trim() !== '') body.amount = { amount: amount.trim(), currency: payment?.amount.currency ?? 'CNY' };
    const d = await api.post<Dispute>('/v1/wallet/disputes', body);
    setOpened(d.id);
    setReason('');
    setAmount('');
    setReference('');
    onClear?.();
    await list.reload();
  });
  return (
    <Section title={t('dispute.title')} testId="disputes">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setOpened(undefined);
          void open.run();
        }}
        data-testid="dispute-form"
      >
        {payment !== undefined ? (
          <p data-testid="dispute-payment">
            {t('dispute.payment')}: {payment.title} <Money amount={payment.amount.amount} currency={payment.amount.currency} />{' '}
            <button type="button" className="secondary" onClick={onClear}>
              {t('common.cancel')}
            </button>
          </p>
        ) : (
          <Field label={t('dispute.reference')} name="dispute-reference" value={reference} onChange={setReference} />
        )}
        <Field label={t('dispute.reason')} name="dispute-reason" value={reason} onChange={setReason} />
        <Field label={t('dispute.amount')} name="dispute-amount" value={amount} onChange={setAmount} inputMode="decimal" />
        <button type="submit" disabled={open.busy || ref === '' || reason.trim() === ''} data-testid="dispute-submit">
          {t('dispute.open')}
        </button>
      </form>
      <ErrorBox error={open.error} />
      {opened !== undefined && (
        <p className="ok" role="status" data-testid="dispute-opened">
          {t('dispute.opened')}
        </p>
      )}
      <h3>{t('dispute.mine')}</h3>
      <ErrorBox error={list.error} />
      {list.data?.length === 0 && <p className="muted">{t('common.none')}</p>}
      <ul className="activity">
        {(list.data ?? []).map((d) => (
          <li key={d.id} className="dispute-row" data-testid="dispute-row" data-dispute-id={d.id} data-status={d.status}>
            <div className="row" style={{ justifyContent: 'space-between' }}>
              <strong>{d.reason}</strong>
              <Money amount={d.amount.amount} currency={d.amount.currency} />
            </div>
            <div>
              <span className={`pill ${d.status}`} data-testid="dispute-status">
                {disputeStatusWord(d.status, t)}
              </span>{' '}
              <span className="muted">{t(`dispute.kind.${d.kind}`)}</span>
            </div>
            <DisputeTrail dispute={d} />
          </li>
        ))}
      </ul>
    </Section>
  );
}
