import { useMemo, useState } from 'react';
import { createApi } from '../shared/api.ts';
import { DeskSignIn, loadDeskSession, type DeskSession } from '../shared/desk-session.tsx';
import { useI18n } from '../shared/i18n.tsx';
import { LangSwitch } from '../shared/ui.tsx';
import { IssuerDesk } from './Desk.tsx';
import { IssuerDisputes } from './Disputes.tsx';
import { IssuerInsights } from './Insights.tsx';

/**
 * 发卡行工作台 / the issuer desk (/issuer): a demo bank's cards and their tokens. Demo: the page gets a short-lived
 * bank token from POST /demo/v1/desk-session (no client secret in the browser), as the bank's own back end would.
 */
const KEY = 'hutong.issuer.session';
const load = (): DeskSession | undefined => loadDeskSession(KEY);

export function IssuerApp() {
  const { t } = useI18n();
  const [session, setSession] = useState<DeskSession | undefined>(load);
  const api = useMemo(() => (session === undefined ? undefined : createApi(async () => session.token, () => setSession(undefined))), [session]);
  return (
    <>
      <header className="topbar">
        <h1>{t('iss.title')}</h1>
        {session !== undefined && <span className="who">{session.name}</span>}
        <LangSwitch />
        {session !== undefined && (
          <button
            type="button"
            data-testid="issuer-sign-out"
            onClick={() => {
              sessionStorage.removeItem(KEY);
              setSession(undefined);
            }}
          >
            {t('common.signOut')}
          </button>
        )}
      </header>
      <main>
        {api === undefined || session === undefined ? (
          <DeskSignIn
            defaultKey="bank-a" title="iss.signIn" label="iss.bank" note="iss.demoNote" fieldName="bank-key" testId="issuer-sign-in"
            onSession={(s) => {
              sessionStorage.setItem(KEY, JSON.stringify(s));
              setSession(s);
            }}
          />
        ) : (
          <>
            <IssuerDesk api={api} name={session.name} />
            <IssuerDisputes api={api} />
            <IssuerInsights api={api} />
          </>
        )}
      </main>
    </>
  );
}

