import { useMemo, useState } from 'react';
import { createApi } from '../shared/api.ts';
import { useI18n } from '../shared/i18n.tsx';
import { ErrorBox, Field, LangSwitch, Section, useAction } from '../shared/ui.tsx';
import { IssuerDesk } from './Desk.tsx';

/**
 * 发卡行工作台 / the issuer desk (/issuer): a demo bank's cards and their tokens. Demo: the page gets a short-lived
 * bank token from POST /demo/v1/desk-session (no client secret in the browser), as the bank's own back end would.
 */
interface BankSession { key: string; name: string; token: string; expiresAtMs: number }
const KEY = 'hutong.issuer.session';
const load = (): BankSession | undefined => {
  try {
    const raw = sessionStorage.getItem(KEY);
    const s = raw === null ? undefined : (JSON.parse(raw) as BankSession);
    return s !== undefined && s.expiresAtMs > Date.now() + 30_000 ? s : undefined;
  } catch {
    return undefined;
  }
};

export function IssuerApp() {
  const { t } = useI18n();
  const [session, setSession] = useState<BankSession | undefined>(load);
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
          <BankSignIn
            onSession={(s) => {
              sessionStorage.setItem(KEY, JSON.stringify(s));
              setSession(s);
            }}
          />
        ) : (
          <IssuerDesk api={api} name={session.name} />
        )}
      </main>
    </>
  );
}

function BankSignIn({ onSession }: { onSession: (s: BankSession) => void }) {
  const { t } = useI18n();
  const [key, setKey] = useState('bank-a');
  const anonymous = useMemo(() => createApi(async () => undefined), []);
  const signIn = useAction(async () => {
    const r = await anonymous.post<{ accessToken: string; expiresInS: number; participant: { key: string; name: string } }>('/demo/v1/desk-session', { participant: key.trim() });
    onSession({ key: r.participant.key, name: r.participant.name, token: r.accessToken, expiresAtMs: Date.now() + r.expiresInS * 1000 });
  });
  return (
    <div className="center">
      <Section title={t('iss.signIn')}>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void signIn.run();
          }}
        >
          <Field label={t('iss.bank')} name="bank-key" value={key} onChange={setKey} />
          <button type="submit" disabled={signIn.busy || key.trim() === ''} data-testid="issuer-sign-in">
            {t('common.signIn')}
          </button>
          <ErrorBox error={signIn.error} />
        </form>
        <p className="muted">{t('iss.demoNote')}</p>
      </Section>
    </div>
  );
}
