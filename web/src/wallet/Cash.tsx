import { useEffect, useState } from 'react';
import type { Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ErrorBox, Field, Money, Select, useAction, useLoad } from '../shared/ui.tsx';
import type { Account, MoneyWire } from './accounts.tsx';
import type { WalletSession } from './session.ts';

/** A withdrawal or top-up as the hub answers it (POST /v1/customers/{id}/withdrawals | top-ups). */
interface CashMovement {
  id: string;
  kind: 'withdrawal' | 'top_up';
  linkId: string;
  bankParticipantId: string;
  amount: MoneyWire;
  status: string;
  createdAt: string;
}

/**
 * Top up this wallet from a linked bank account, or withdraw to it: the hub moves the money between the wallet and the
 * bank through both participants' positions, at once, and lists what was moved. Asked first, like any payment.
 */
export function CashMoves({
  api,
  session,
  links,
  accounts,
  bankName,
  onMoved,
}: {
  api: Api;
  session: WalletSession;
  links: readonly { id: string; bankParticipantId: string; accountId: string }[];
  accounts: readonly Account[];
  bankName: (participantId: string) => string;
  onMoved: () => Promise<unknown>;
}) {
  const { t, date } = useI18n();
  const path = `/v1/customers/${encodeURIComponent(session.customerId)}`;
  const moves = useLoad(async () => (await api.get<{ items: CashMovement[] }>(`${path}/cash-movements?limit=5`)).items, [api]);
  const [linkId, setLinkId] = useState('');
  const [amount, setAmount] = useState('');
  const [kind, setKind] = useState<'top_up' | 'withdrawal'>('top_up');
  const [asking, setAsking] = useState(false);
  const [done, setDone] = useState<CashMovement | undefined>();
  useEffect(() => {
    if (!links.some((l) => l.id === linkId) && links[0] !== undefined) setLinkId(links[0].id);
  }, [linkId, links]);
  const link = links.find((l) => l.id === linkId);
  const currency = accounts.find((a) => a.id === link?.accountId)?.currency ?? link?.accountId.slice(-3) ?? '';
  const move = useAction(async () => {
    setDone(undefined);
    const m = await api.post<CashMovement>(`${path}/${kind === 'top_up' ? 'top-ups' : 'withdrawals'}`, { linkId, amount: { amount: amount.trim(), currency } });
    setDone(m);
    setAsking(false);
    setAmount('');
    await Promise.all([moves.reload(), onMoved()]);
  });
  if (links.length === 0) return null;
  const label = (l: { bankParticipantId: string; accountId: string }) => `${bankName(l.bankParticipantId)} · ${accounts.find((a) => a.id === l.accountId)?.currency ?? l.accountId.slice(-3)}`;
  return (
    <div data-testid="cash">
      <h3>{t('cash.title')}</h3>
      <p className="muted">{t('cash.hint')}</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setAsking(true);
        }}
      >
        <Select label={t('cash.account')} name="cash-link" value={linkId} onChange={setLinkId} options={links.map((l) => ({ value: l.id, label: label(l) }))} />
        <Select
          label={t('cash.direction')}
          name="cash-kind"
          value={kind}
          onChange={(v) => setKind(v === 'withdrawal' ? 'withdrawal' : 'top_up')}
          options={[
            { value: 'top_up', label: t('cash.topUp') },
            { value: 'withdrawal', label: t('cash.withdraw') },
          ]}
        />
        <Field label={`${t('cash.amount')} (${currency})`} name="cash-amount" value={amount} onChange={setAmount} inputMode="decimal" />
        {!asking && (
          <button type="submit" disabled={amount.trim() === '' || linkId === ''} data-testid="cash-submit">
            {kind === 'top_up' ? t('cash.topUp') : t('cash.withdraw')}
          </button>
        )}
      </form>
      {asking && (
        <div className="warn row" role="group" aria-label={t('cash.confirm')}>
          <span data-testid="cash-confirm-text">
            {(kind === 'top_up' ? t('cash.confirmTopUp') : t('cash.confirmWithdraw')).replace('{amount}', `${amount.trim()} ${currency}`).replace('{bank}', link === undefined ? '' : bankName(link.bankParticipantId))}
          </span>
          <button type="button" onClick={() => void move.run()} disabled={move.busy} data-testid="cash-yes">
            {t('common.confirm')}
          </button>
          <button type="button" className="secondary" onClick={() => setAsking(false)}>
            {t('common.cancel')}
          </button>
        </div>
      )}
      <ErrorBox error={move.error ?? moves.error} />
      {done !== undefined && (
        <p className="ok" data-testid="cash-done">
          {done.kind === 'top_up' ? t('cash.toppedUp') : t('cash.withdrawn')} <Money amount={done.amount.amount} currency={done.amount.currency} /> ✓
        </p>
      )}
      {(moves.data ?? []).map((m) => (
        <div key={m.id} className="list-row" data-testid="cash-movement" data-kind={m.kind}>
          <Money amount={m.amount.amount} currency={m.amount.currency} sign={m.kind === 'top_up' ? 'in' : 'out'} />{' '}
          <span className="muted">
            {m.kind === 'top_up' ? t('cash.topUp') : t('cash.withdraw')} · {bankName(m.bankParticipantId)} · {date(m.createdAt)}
          </span>
        </div>
      ))}
    </div>
  );
}
