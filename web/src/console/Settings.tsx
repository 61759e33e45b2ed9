import { useState } from 'react';
import type { Api } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ErrorBox, Section, Select, useLoad } from '../shared/ui.tsx';

interface FxView {
  asOf: string;
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
              {t('set.asOf')} {date(`${fx.data.asOf}T00:00:00Z`, false)} · {t('set.spread')} <strong data-testid="fx-spread">{nf.format(fx.data.spreadBps / 100)} %</strong>
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
      <Section title={t('set.fees')}>
        <p className="muted">{t('set.feesNote')}</p>
      </Section>
    </div>
  );
}
