import { useState } from 'react';
import type { Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ConfirmBar, ErrorBox, Field, Money, Section, Select, useAction, useLoad } from '../shared/ui.tsx';

interface FxView {
  /** null while the operator has loaded no reference rates. */
  asOf: string | null;
  base: string;
  spreadBps: number;
  rates: Record<string, string>;
}

type Rule = { action: string; score: number; enabled: boolean } & Record<string, unknown>;

/** Thresholds a rule may carry, in the order they are shown. */
const THRESHOLDS = ['windowS', 'maxCount', 'multiple', 'minHistory', 'minRefEurCents'] as const;

/**
 * The operator's read-only view of what prices and guards payments: the FX reference rates in force with the spread,
 * and the real-time risk rules (the hub's defaults, or one participant's with its overrides).
 */
export function Settings({ api }: { api: Api }) {
  const { t, date, lang } = useI18n();
  const fx = useLoad(() => api.get<FxView>('/v1/operator/fx'), [api]);
  const participants = useLoad(async () => (await api.get<{ items: { id: string; name: string }[] }>('/v1/operator/participants?limit=200')).items, [api]);
  const [participantId, setParticipantId] = useState('');
  const rules = useLoad(() => api.get<{ rules: Record<string, Rule> }>(`/v1/operator/risk/rules${participantId === '' ? '' : `?participantId=${encodeURIComponent(participantId)}`}`), [api, participantId]);
  const nf = new Intl.NumberFormat(lang, { maximumFractionDigits: 6 });
  return (
    <div className="grid" data-testid="settings">
      <Section title={t('set.fx')} testId="settings-fx">
        <ErrorBox error={fx.error} />
        {fx.data === undefined && fx.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
        {fx.data !== undefined && (
          <>
            <p>
              {fx.data.asOf === null ? <span data-testid="fx-none">{t('set.noRates')}</span> : <>{t('set.asOf')} {date(`${fx.data.asOf}T00:00:00Z`, false)}</>} · {t('set.spread')}{' '}
              <strong data-testid="fx-spread">{nf.format(fx.data.spreadBps / 100)} %</strong>
            </p>
            <table aria-label={t('set.fx')}>
              <thead>
                <tr>
                  <th scope="col">{t('common.currency')}</th>
                  <th scope="col">{t('set.perEur')}</th>
                </tr>
              </thead>
              <tbody>
                {Object.entries(fx.data.rates).map(([currency, rate]) => (
                  <tr key={currency} data-testid="fx-rate" data-currency={currency}>
                    <td>{currency}</td>
                    <td className="mono">{nf.format(Number(rate))}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </Section>
      <Section title={t('set.rules')} testId="settings-rules">
        <Select
          label={t('set.rulesFor')}
          name="rules-participant"
          value={participantId}
          onChange={setParticipantId}
          options={[{ value: '', label: t('set.hubDefaults') }, ...(participants.data ?? []).map((p) => ({ value: p.id, label: p.name }))]}
        />
        <ErrorBox error={rules.error ?? participants.error} />
        {rules.data === undefined && rules.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
        {Object.entries(rules.data?.rules ?? {}).map(([name, r]) => (
          <div key={name} className="list-row" data-testid="risk-rule" data-rule={name}>
            <strong>{t(`set.rule.${name}`)}</strong> · {r.enabled ? t(`set.action.${r.action}`) : t('set.disabled')} · {t('set.score')} {r.score}
            <div className="muted">
              {THRESHOLDS.filter((k) => typeof r[k] === 'number')
                .map((k) => `${t(`set.param.${k}`)} ${nf.format(Number(r[k]))}`)
                .join(' · ')}
            </div>
          </div>
        ))}
      </Section>
      <Fees api={api} participants={participants.data ?? []} />
    </div>
  );
}

interface Fee {
  payerParticipantId: string;
  payeeParticipantId: string;
  fixed: { amount: string; currency: string };
  bps: number;
}

/**
 * The fee schedules in force (payer → payee: a fixed part plus basis points of the amount, charged to the payer), and
 * setting one: the page shows what will be charged and asks before it changes what every such payment costs.
 */
function Fees({ api, participants }: { api: Api; participants: readonly { id: string; name: string }[] }) {
  const { t, lang } = useI18n();
  const fees = useLoad(async () => (await api.get<{ items: Fee[] }>('/v1/operator/fees')).items, [api]);
  const [payer, setPayer] = useState('');
  const [payee, setPayee] = useState('');
  const [fixed, setFixed] = useState('0.00');
  const [currency, setCurrency] = useState('CNY');
  const [bps, setBps] = useState('0');
  const [asking, setAsking] = useState(false);
  const nameOf = (id: string) => participants.find((p) => p.id === id)?.name ?? id;
  const pct = new Intl.NumberFormat(lang, { maximumFractionDigits: 2 });
  const options = [{ value: '', label: t('set.feeChoose') }, ...participants.map((p) => ({ value: p.id, label: p.name }))];
  const valid = payer !== '' && payee !== '' && /^[0-9]+(\.[0-9]{1,3})?$/.test(fixed.trim()) && /^[0-9]{1,5}$/.test(bps.trim()) && Number(bps) <= 10_000 && /^[A-Z]{3}$/.test(currency.trim());
  const save = useAction(async () => {
    await api.post('/v1/operator/fees', { payerParticipantId: payer, payeeParticipantId: payee, fixed: { amount: fixed.trim(), currency: currency.trim() }, bps: Number(bps) });
    setAsking(false);
    await fees.reload();
  });
  return (
    <Section title={t('set.fees')} testId="settings-fees">
      <p className="muted">{t('set.feesHint')}</p>
      <ErrorBox error={fees.error} />
      {fees.data === undefined && fees.error === undefined && <p className="skeleton">{t('common.loading')}</p>}
      {fees.data?.length === 0 && <p className="muted">{t('set.feesNone')}</p>}
      {(fees.data ?? []).length > 0 && (
        <table aria-label={t('set.fees')}>
          <thead>
            <tr>
              <th scope="col">{t('set.feePayer')}</th>
              <th scope="col">{t('set.feePayee')}</th>
              <th scope="col">{t('set.feeFixed')}</th>
              <th scope="col">{t('set.feeRate')}</th>
            </tr>
          </thead>
          <tbody>
            {(fees.data ?? []).map((f) => (
              <tr key={`${f.payerParticipantId}>${f.payeeParticipantId}`} data-testid="fee-row" data-payer={f.payerParticipantId} data-payee={f.payeeParticipantId}>
                <td>{nameOf(f.payerParticipantId)}</td>
                <td>{nameOf(f.payeeParticipantId)}</td>
                <td>
                  <Money amount={f.fixed.amount} currency={f.fixed.currency} />
                </td>
                <td className="mono">{pct.format(f.bps / 100)} %</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setAsking(true);
        }}
        data-testid="fee-form"
      >
        <Select label={t('set.feePayer')} name="fee-payer" value={payer} onChange={setPayer} options={options} />
        <Select label={t('set.feePayee')} name="fee-payee" value={payee} onChange={setPayee} options={options} />
        <Field label={t('set.feeFixed')} name="fee-fixed" value={fixed} onChange={setFixed} inputMode="decimal" />
        <Field label={t('common.currency')} name="fee-currency" value={currency} onChange={(v) => setCurrency(v.toUpperCase())} />
        <Field label={t('set.feeBps')} name="fee-bps" value={bps} onChange={setBps} inputMode="numeric" />
        {!asking && (
          <button type="submit" disabled={!valid} data-testid="fee-set">
            {t('set.feeSet')}
          </button>
        )}
      </form>
      {asking && (
        <div data-testid="fee-confirm">
          <ConfirmBar
            question={t('set.feeConfirm').replace('{payer}', nameOf(payer)).replace('{payee}', nameOf(payee)).replace('{fixed}', `${fixed.trim()} ${currency.trim()}`).replace('{pct}', pct.format(Number(bps) / 100))}
            yes={t('common.confirm')}
            busy={save.busy}
            onYes={() => void save.run()}
            onCancel={() => setAsking(false)}
            yesTestId="fee-set-yes"
          />
        </div>
      )}
      <ErrorBox error={save.error} />
    </Section>
  );
}
