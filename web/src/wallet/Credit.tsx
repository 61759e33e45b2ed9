import { useState } from 'react';
import type { Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ConfirmBar, ErrorBox, Field, Money, Select, useAction } from '../shared/ui.tsx';
import { useAccounts, type MoneyWire } from './accounts.tsx';
import type { WalletSession } from './session.ts';

/** A credit card's line as the hub shows it on the token (GET /v1/wallet/tokens: `credit`). */
export interface CreditLine {
  limit: MoneyWire;
  available: MoneyWire;
  owed: MoneyWire;
  statement: { id: string; balance: MoneyWire; minimumPayment: MoneyWire; paid: MoneyWire; dueAt: string; status: 'due' | 'minimum_paid' | 'paid' | 'overdue' } | null;
}

/**
 * A credit card's line on its tile: limit, available, owed, the latest statement (minimum and due date), and a
 * repayment from an account the customer pays from in this wallet (POST /v1/wallet/credit-repayments), asked first.
 */
export function CreditLinePanel({ api, session, tokenRef, credit, onChange }: { api: Api; session: WalletSession; tokenRef: string; credit: CreditLine; onChange: () => void }) {
  const { t, date } = useI18n();
  const accounts = useAccounts(api, session);
  const usable = (accounts.data ?? []).filter((a) => a.currency === credit.owed.currency);
  const [from, setFrom] = useState('');
  const [amount, setAmount] = useState('');
  const [asking, setAsking] = useState(false);
  const [done, setDone] = useState<string | undefined>();
  const fromId = usable.some((a) => a.id === from) ? from : (usable[0]?.id ?? '');
  const repay = useAction(async () => {
    const r = await api.post<{ amount: MoneyWire; owed: MoneyWire }>('/v1/wallet/credit-repayments', { customerId: session.customerId, tokenRef, fromAccountId: fromId, amount: { amount: amount.trim(), currency: credit.owed.currency } });
    setAsking(false);
    setAmount('');
    setDone(r.amount.amount);
    onChange();
  });
  const s = credit.statement;
  const question = t('credit.repayConfirm').replace('{amount}', `${amount.trim()} ${credit.owed.currency}`);
  return (
    <div className="credit-line" data-testid="credit-line" data-owed={credit.owed.amount} data-available={credit.available.amount}>
      <dl className="kv">
        <dt>{t('credit.limit')}</dt>
        <dd data-testid="credit-limit"><Money amount={credit.limit.amount} currency={credit.limit.currency} /></dd>
        <dt>{t('credit.available')}</dt>
        <dd data-testid="credit-available"><Money amount={credit.available.amount} currency={credit.available.currency} /></dd>
        <dt>{t('credit.owed')}</dt>
        <dd data-testid="credit-owed"><Money amount={credit.owed.amount} currency={credit.owed.currency} /></dd>
      </dl>
      {s === null ? (
        <p className="muted">{t('credit.noStatement')}</p>
      ) : (
        <p data-testid="credit-statement" data-status={s.status}>
          {t('credit.statement')}: <Money amount={s.balance.amount} currency={s.balance.currency} /> · {t('credit.minimum')} <Money amount={s.minimumPayment.amount} currency={s.minimumPayment.currency} /> · {t('credit.due')} {date(s.dueAt, false)} · {t(`credit.status.${s.status}`)}
        </p>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setDone(undefined);
          setAsking(true);
        }}
        data-testid="credit-repay"
      >
        <Select label={t('credit.from')} name="repay-from" value={fromId} onChange={setFrom} options={usable.map((a) => ({ value: a.id, label: `${a.heldBy.name} · ${a.currency} · ${a.available.amount}` }))} />
        <Field label={`${t('credit.amount')} (${credit.owed.currency})`} name="repay-amount" value={amount} onChange={setAmount} inputMode="decimal" />
        {usable.length === 0 && accounts.data !== undefined && <p className="muted">{t('credit.noAccount')}</p>}
        {!asking && (
          <button type="submit" disabled={fromId === '' || !/^[0-9]+(\.[0-9]{1,2})?$/.test(amount.trim())} data-testid="credit-repay-submit">
            {t('credit.repay')}
          </button>
        )}
      </form>
      {asking && <ConfirmBar question={question} yes={t('credit.repayYes')} busy={repay.busy} onYes={() => void repay.run()} onCancel={() => setAsking(false)} yesTestId="credit-repay-yes" />}
      {done !== undefined && (
        <p className="ok" role="status" data-testid="credit-repaid">
          {t('credit.repaid').replace('{amount}', `${done} ${credit.owed.currency}`)}
        </p>
      )}
      <ErrorBox error={repay.error ?? accounts.error} />
    </div>
  );
}
